"""The ``ipyckpt`` command line."""
import argparse
import os
import shlex
import sys

from . import __version__, launch, paths


def _seconds(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a whole number of seconds" % text)
    if value < 0:
        raise argparse.ArgumentTypeError("the period cannot be negative")
    return value


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


def _program(args):
    argv = list(args.program)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise SystemExit("ipyckpt: name the program to run after --, e.g. "
                         "`ipyckpt %s -- python train.py`" % args.command)
    return argv


def cmd_run(args):
    argv = _program(args)
    prefix = os.path.abspath(args.prefix or launch.default_prefix(argv))
    os.makedirs(os.path.dirname(prefix), mode=0o700, exist_ok=True)
    print("ipyckpt: checkpoints of this run go to %s%s\n"
          "ipyckpt: to restart it: ipyckpt restart --prefix %s -- %s"
          % (prefix, " every %d s of CPU time" % args.period if args.period else "",
             shlex.quote(prefix), " ".join(shlex.quote(a) for a in argv)),
          file=sys.stderr)
    launch.exec_under_core(argv, prefix, period=args.period, debug=args.debug)


def cmd_restart(args):
    argv = _program(args)
    prefix = os.path.abspath(args.prefix or launch.default_prefix(argv))
    latest = launch.committed_epoch(prefix)
    if latest is None:
        print("ipyckpt: no checkpoint at %s.map; run the program with `ipyckpt run` first"
              % prefix, file=sys.stderr)
        return 1
    if args.epoch is not None and args.epoch != latest:
        if args.epoch not in launch.epochs(prefix):
            print("ipyckpt: %s has no epoch %d (it has %s)"
                  % (prefix, args.epoch, ", ".join(map(str, launch.epochs(prefix)))),
                  file=sys.stderr)
            return 1
        moved = launch.rewind(prefix, args.epoch)
        if moved:
            print("ipyckpt: epochs after %d set aside in %s" % (args.epoch, moved),
                  file=sys.stderr)
        latest = args.epoch
    print("ipyckpt: restarting from epoch %d of %s" % (latest, prefix), file=sys.stderr)
    launch.exec_under_core(argv, prefix, restart=True, debug=args.debug)


def cmd_inspect(args):
    from .image import main as inspect_main

    return inspect_main(args)


def cmd_install(args):
    from .kernel import spec

    try:
        done = spec.install(user=args.user, prefix=args.prefix, python=args.python)
    except OSError as e:
        print("ipyckpt: cannot install the kernelspecs: %s (try --user or --sys-prefix)" % e,
              file=sys.stderr)
        return 1
    for name, path in done.items():
        print("installed kernelspec %s (\"%s\") in %s" % (name, spec.KERNELS[name][0], path))
    return 0


def _program_arguments(parser, prefix_default):
    """What `run` and `restart` share: where the checkpoints go, the core's
    diagnostics, and the program after --."""
    parser.add_argument("--prefix", help="path prefix of the checkpoint files " + prefix_default)
    parser.add_argument("--debug", action="store_true", help="diagnostics of the core on stderr")
    parser.add_argument("program", nargs=argparse.REMAINDER, metavar="-- PROGRAM [ARGS...]")


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
        "run",
        help="run a program under the core, checkpointable",
        description="Run PROGRAM with address space randomization off and the "
        "checkpointing core preloaded.  In Python: `import ipyckpt; ipyckpt.checkpoint()`; "
        "with --period, checkpoints happen on their own.",
    )
    s.add_argument("--period", type=_seconds, default=0, metavar="SECONDS",
                   help="take a checkpoint every SECONDS of CPU time (default: only on request)")
    _program_arguments(s, "(default: .ipyckpt/<script name> in the working directory)")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser(
        "restart",
        help="restart a program from its latest (or a given) checkpoint",
        description="Restart PROGRAM from a checkpoint of `ipyckpt run`.  Give the same "
        "PROGRAM and prefix.  With --epoch, the epochs after it are moved aside into "
        "PREFIX.abandoned-<time>/ and never mixed into a later restore.",
    )
    s.add_argument("--epoch", type=int, help="restart from this epoch instead of the latest")
    _program_arguments(s, "(default: as `ipyckpt run` chose it)")
    s.set_defaults(func=cmd_restart)

    s = sub.add_parser(
        "install",
        help="install the Jupyter kernelspecs (ipyckpt and ipyckpt-restart)",
        description="Install the \"Python 3 (ipyckpt)\" and \"Python 3 (ipyckpt, restart from "
        "checkpoint)\" kernelspecs, started with this Python interpreter.  Default: the "
        "system-wide Jupyter data directory.",
    )
    where = s.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true",
                       help="install for the current user (~/.local/share/jupyter)")
    where.add_argument("--sys-prefix", dest="prefix", action="store_const", const=sys.prefix,
                       help="install into this Python environment (%s)" % sys.prefix)
    where.add_argument("--prefix", dest="prefix", metavar="PREFIX",
                       help="install into PREFIX/share/jupyter/kernels")
    s.add_argument("--python", default=None, metavar="PYTHON",
                   help="the interpreter the kernel runs (default: %s)" % sys.executable)
    s.set_defaults(func=cmd_install)

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
    except (FileNotFoundError, launch.LaunchError) as e:
        print("ipyckpt: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
