"""Starting programs under the core: ``ipyckpt run`` and ``ipyckpt restart``.

A program runs under the core when it starts as

    setarch --addr-no-randomize env LD_PRELOAD=<core> CKPT_...=... PROGRAM ARGS

ASLR off, so that a restart finds every library where the checkpoint left
it; the core preloaded, so that its constructor can restore a checkpoint
before the program (a Python interpreter above all) initialises itself.
CKPT_EXE names the executable the core is for: a shell script or a pyenv shim
on the way to it leaves the core dormant (DESIGN §4 trap 18).
"""
import os
import shutil
import subprocess
import sys
import time

from . import paths

# Libraries that start worker threads unless told otherwise; a checkpoint can
# hold only one thread (DESIGN §4 trap 6).  The user's own settings win.
SINGLE_THREAD_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
}

EPOCH_FILES = (".data", ".map", ".state", ".relro")


class LaunchError(Exception):
    """Something the user must fix before a run can start."""


def _is_script(path):
    with open(path, "rb") as f:
        return f.read(2) == b"#!"


def _shebang(path):
    with open(path, "rb") as f:
        line = f.readline(4096)[2:].decode(errors="replace").strip()
    return line.split()


def intended_executable(program):
    """The executable that will end up running ``program``, resolved.

    A Python wrapper script (a pyenv or conda shim) is asked for its real
    interpreter; any other script is run by the interpreter of its #! line.
    """
    path = shutil.which(program) if os.sep not in program else program
    if not path or not os.path.exists(path):
        raise LaunchError("%s: program not found" % program)
    path = os.path.realpath(path)
    for _ in range(8):
        if not _is_script(path):
            return path
        if os.path.basename(path).startswith("python"):
            out = subprocess.run(
                [path, "-c", "import os, sys; print(os.path.realpath(sys.executable))"],
                capture_output=True, text=True)
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        words = _shebang(path)
        if not words:
            raise LaunchError("%s: a script without an interpreter" % path)
        interp, rest = words[0], words[1:]
        if os.path.basename(interp) == "env" and rest:
            interp = shutil.which(rest[0]) or rest[0]
        path = os.path.realpath(interp)
    raise LaunchError("%s: too many levels of #! scripts" % program)


def default_prefix(argv):
    """.ipyckpt/<name> in the working directory, named after the script or module."""
    name = os.path.basename(argv[0])
    for i, arg in enumerate(argv[1:], 1):
        if arg == "-m" and i + 1 < len(argv):
            name = argv[i + 1]
            break
        if arg.endswith(".py"):
            name = os.path.splitext(os.path.basename(arg))[0]
            break
    return os.path.join(os.getcwd(), ".ipyckpt", name)


CORE_VARIABLES = ("CKPT_PREFIX", "CKPT_PERIOD", "CKPT_RESTART", "CKPT_DEBUG", "CKPT_EXE",
                  "CKPT_NOTIFY")


def core_environment(prefix, exe, period=None, restart=False, debug=False, notify=None,
                     base=None):
    """The environment of a program under the core (see checkpoint.h).

    notify: a signal number the core raises in a restarted process before it
    resumes (CKPT_NOTIFY).
    """
    env = dict(os.environ if base is None else base)
    for key in CORE_VARIABLES:
        env.pop(key, None)
    for key, value in SINGLE_THREAD_ENV.items():
        env.setdefault(key, value)
    env["LD_PRELOAD"] = paths.core_library()
    env["CKPT_PREFIX"] = prefix
    env["CKPT_EXE"] = exe
    if period:
        env["CKPT_PERIOD"] = str(int(period))
    if restart:
        env["CKPT_RESTART"] = "1"
    if debug:
        env["CKPT_DEBUG"] = "1" if debug is True else str(debug)
    if notify:
        env["CKPT_NOTIFY"] = str(int(notify))
    return env


def command(argv):
    """The command line that starts argv with ASLR off."""
    setarch = shutil.which("setarch")
    if not setarch:
        raise LaunchError("setarch is not installed (Debian/Ubuntu: apt-get install util-linux)")
    return [setarch, "--addr-no-randomize"] + list(argv)


def epochs(prefix):
    """The epochs that have a P.map.N, sorted."""
    d, base = os.path.split(prefix)
    found = []
    for name in os.listdir(d or "."):
        if name.startswith(base + ".map."):
            tail = name[len(base) + 5:]
            if tail.isdigit():
                found.append(int(tail))
    return sorted(found)


def committed_epoch(prefix):
    """The epoch P.map commits, or None."""
    from ._layout import ffi

    try:
        with open(prefix + ".map", "rb") as f:
            head = f.read(ffi.sizeof("struct ckpt_map_header"))
    except FileNotFoundError:
        return None
    if len(head) < ffi.sizeof("struct ckpt_map_header"):
        return None
    return int(ffi.from_buffer("struct ckpt_map_header *", head).epoch)


def rewind(prefix, epoch):
    """Make ``epoch`` the latest checkpoint of ``prefix``.

    The epochs after it belong to a timeline the restart abandons; their files
    are moved, not deleted, into PREFIX.abandoned-<time>/ so that they can
    never be mixed into a later restore yet are not lost.  Returns that folder
    (None if nothing was moved).
    """
    later = [e for e in epochs(prefix) if e > epoch]
    d, base = os.path.split(prefix)
    moved_to = None
    if later:
        moved_to = "%s.abandoned-%s" % (prefix, time.strftime("%Y%m%d-%H%M%S"))
        os.mkdir(moved_to, 0o700)
        for e in later:
            for kind in EPOCH_FILES:
                src = "%s%s.%d" % (prefix, kind, e)
                if os.path.exists(src):
                    os.rename(src, os.path.join(moved_to, os.path.basename(src)))
    # P.map -> P.map.N, atomically, as the core commits.
    tmp = prefix + ".map.tmp"
    if os.path.exists(tmp):
        os.unlink(tmp)
    os.link("%s.map.%d" % (prefix, epoch), tmp)
    os.rename(tmp, prefix + ".map")
    fd = os.open(d or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return moved_to


def exec_under_core(argv, prefix, period=None, restart=False, debug=False):
    """Replace this process by argv running under the core."""
    paths.check_installed()
    exe = intended_executable(argv[0])
    env = core_environment(prefix, exe, period=period, restart=restart, debug=debug)
    cmd = command(["env"] + argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(cmd[0], cmd, env)
