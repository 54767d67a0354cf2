"""The ``ipyckpt`` command line."""
import argparse
import shlex
import sys

from . import __version__, paths


def cmd_cc_flags(args):
    paths.check_installed()
    lib_dir = shlex.quote(paths.include_dir().rsplit("/", 1)[0])
    flags = [
        "-I" + shlex.quote(paths.include_dir()),
        "-L" + lib_dir,
        "-Wl,-rpath," + lib_dir,
        # The core starts itself in a constructor: a program that never
        # calls checkpoint() (periodic mode only) must still load it, so
        # --as-needed (Debian's and Ubuntu's default) may not drop it.
        "-Wl,--push-state,--no-as-needed",
        "-lcheckpoint",
        "-Wl,--pop-state",
    ]
    print(" ".join(flags))
    return 0


def cmd_inspect(args):
    from .inspect_image import main as inspect_main

    return inspect_main(args)


def build_parser():
    p = argparse.ArgumentParser(
        prog="ipyckpt",
        description="Incremental whole-memory checkpoints of Python kernels and C programs.",
    )
    p.add_argument("--version", action="version", version="ipyckpt " + __version__)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser(
        "cc-flags",
        help="print the compiler and linker flags of a C program using the core",
        description="Print the flags to build a C program with the checkpointing core: "
        "gcc app.c $(ipyckpt cc-flags) -o app",
    )
    s.set_defaults(func=cmd_cc_flags)

    s = sub.add_parser(
        "inspect",
        help="print and validate a checkpoint",
        description="Print a checkpoint in human terms and validate it against the image "
        "format.  Exit status 0 if it is sound, 1 if it is damaged.",
    )
    s.add_argument("prefix", metavar="PREFIX", help="the checkpoint's CKPT_PREFIX")
    s.add_argument("--epoch", type=int, default=None,
                   help="inspect PREFIX.map.EPOCH instead of the latest PREFIX.map")
    s.set_defaults(func=cmd_inspect)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FileNotFoundError as e:
        print("ipyckpt: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
