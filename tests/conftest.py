"""Shared fixtures: build C programs against the installed core and run them
under it, the way a user does (setarch --addr-no-randomize env CKPT_...)."""
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")


def cc_flags():
    out = subprocess.run([sys.executable, "-m", "ipyckpt", "cc-flags"], check=True,
                         capture_output=True, text=True).stdout
    return shlex.split(out)


@pytest.fixture(scope="session")
def build(tmp_path_factory):
    """build(name, *extra_flags) -> path of tests/programs/<name>.c compiled
    with `ipyckpt cc-flags`; each program is built once per session."""
    outdir = tmp_path_factory.mktemp("bin")
    flags = cc_flags()
    built = {}

    def _build(name, *extra):
        key = (name,) + extra
        if key not in built:
            exe = str(outdir / ("%s%s" % (name, "-" + "-".join(e.strip("-") for e in extra) if extra else "")))
            src = os.path.join(PROGRAMS, name + ".c")
            subprocess.run(["gcc", "-O1", "-g", "-Wall", src, *flags, *extra, "-o", exe],
                           check=True)
            built[key] = exe
        return built[key]

    return _build


class Run:
    """A program started under the core (non-blocking)."""

    def __init__(self, argv, prefix, period=None, restart=False, debug=False, cwd=None,
                 env=None, aslr_off=True):
        e = dict(os.environ)
        for k in ("CKPT_PREFIX", "CKPT_PERIOD", "CKPT_RESTART", "CKPT_DEBUG"):
            e.pop(k, None)
        if prefix is not None:
            e["CKPT_PREFIX"] = str(prefix)
        if period is not None:
            e["CKPT_PERIOD"] = str(period)
        if restart:
            e["CKPT_RESTART"] = "1"
        if debug:
            e["CKPT_DEBUG"] = "1"
        e.update(env or {})
        cmd = (["setarch", "--addr-no-randomize"] if aslr_off else []) + list(argv)
        self.prefix = prefix
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=e, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)

    def wait(self, timeout=120):
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err

    def kill(self):
        """SIGKILL, as the OOM killer or a pre-emption would; returns output so far."""
        self.proc.send_signal(signal.SIGKILL)
        return self.wait()


def map_epoch(prefix):
    """The epoch of the committed PREFIX.map, or None if there is none."""
    from ipyckpt._layout import ffi

    try:
        with open(str(prefix) + ".map", "rb") as f:
            head = f.read(ffi.sizeof("struct ckpt_map_header"))
    except FileNotFoundError:
        return None
    if len(head) < ffi.sizeof("struct ckpt_map_header"):
        return None
    return ffi.from_buffer("struct ckpt_map_header *", head).epoch


def wait_for_epoch(run, epoch, timeout=60):
    """Block until PREFIX.map commits epoch >= `epoch` (the checkpoint is on disk)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        e = map_epoch(run.prefix)
        if e is not None and e >= epoch:
            return e
        if run.proc.poll() is not None:
            rc, out, err = run.wait()
            raise AssertionError("program ended (rc %s) before epoch %d was on disk\n"
                                 "stdout: %s\nstderr: %s" % (rc, epoch, out, err))
        time.sleep(0.01)
    raise AssertionError("epoch %d not on disk after %ss" % (epoch, timeout))


@pytest.fixture
def ckpt_dir(tmp_path):
    d = tmp_path / "ckpt"
    d.mkdir(mode=0o700)
    return d
