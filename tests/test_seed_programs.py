"""The seed's nine test programs (tests/programs/*.c), run under the core the
way the seed's Makefile runs them, in manual and in periodic mode.

Each restartable program is run (a) straight through, which must give the
seed's output and files, and (b) killed with SIGKILL once a checkpoint taken
after a given line is on disk, then restarted with CKPT_RESTART=1: the
restarted process must finish with the same output and files as a straight
run and must not start over (the lines printed before that checkpoint do not
appear again).  readonly_write and unmapped_write must die by signal 11, as
they do without the core.

The helpers here (Proc, start, kill_after, ...) are shared with
test_core_traps.py.
"""
import itertools
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field

import pytest

from conftest import PROGRAMS, Run, map_epoch

PERIOD = 1                      # seconds of CPU time, as the seed's Makefile
MODES = {"manual": None, "periodic": PERIOD}


# ---- running a program and watching its output ---------------------------------

class Proc:
    """A Run whose stdout and stderr are collected line by line as they come,
    so that a test can wait for a line and still get the whole output."""

    def __init__(self, run):
        self.run = run
        self.proc = run.proc
        self.prefix = run.prefix
        self.lines = {"out": [], "err": []}
        self.cv = threading.Condition()
        self.pumps = [threading.Thread(target=self._pump, args=(f, self.lines[k]), daemon=True)
                      for k, f in (("out", self.proc.stdout), ("err", self.proc.stderr))]
        for t in self.pumps:
            t.start()

    def _pump(self, f, into):
        for line in iter(f.readline, ""):
            with self.cv:
                into.append(line)
                self.cv.notify_all()
        with self.cv:
            self.cv.notify_all()

    def text(self, stream):
        with self.cv:
            return "".join(self.lines[stream])

    def _ended(self):
        return self.proc.poll() is not None and not any(t.is_alive() for t in self.pumps)

    def describe(self):
        return "rc %s\nstdout:\n%s\nstderr:\n%s" % (self.proc.poll(), self.text("out"),
                                                     self.text("err"))

    def wait_line(self, line, stream="out", timeout=60):
        """Block until `line` (without its newline) was printed on `stream`."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while line + "\n" not in self.lines[stream]:
                if self._ended():
                    raise AssertionError("program ended before printing %r\n%s"
                                         % (line, self.describe()))
                if time.monotonic() > deadline:
                    raise AssertionError("no %r after %ss\n%s" % (line, timeout, self.describe()))
                self.cv.wait(0.05)

    def wait_epoch(self, epoch, timeout=60):
        """Block until P.map commits epoch >= `epoch`; returns the epoch."""
        deadline = time.monotonic() + timeout
        while True:
            e = map_epoch(self.prefix)
            if e is not None and e >= epoch:
                return e
            if self.proc.poll() is not None:
                self.finish()
                raise AssertionError("program ended before epoch %d was on disk\n%s"
                                     % (epoch, self.describe()))
            if time.monotonic() > deadline:
                raise AssertionError("epoch %d not on disk after %ss\n%s"
                                     % (epoch, timeout, self.describe()))
            time.sleep(0.005)

    def wait_checkpoint_after_line(self, line, stream="out", timeout=60):
        """Block until a checkpoint taken after `line` was printed is on disk.

        Once the line is seen, every checkpoint taken before it was printed is
        already committed (the program stops while it checkpoints), so any
        epoch newer than the one on disk now came after the line."""
        self.wait_line(line, stream, timeout)
        e = map_epoch(self.prefix)
        return self.wait_epoch(0 if e is None else e + 1, timeout)

    def finish(self, timeout=120):
        """Wait for the end; returns (returncode, stdout, stderr)."""
        self.proc.wait(timeout)
        for t in self.pumps:
            t.join(timeout)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode, self.text("out"), self.text("err")

    def kill(self):
        """SIGKILL, as the OOM killer would; returns (returncode, stdout, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        return self.finish()


def start(exe, cwd, prefix, args=(), period=None, restart=False, **kw):
    return Proc(Run([exe, *args], prefix, period=period, restart=restart, cwd=str(cwd), **kw))


def run_to_end(exe, cwd, prefix, **kw):
    return start(exe, cwd, prefix, **kw).finish()


def read(path):
    with open(path, "rb") as f:
        return f.read()


def rle(data):
    """The format rle.c documents: one "<count> <hex byte>" line per run."""
    return b"".join(b"%d %02x\n" % (len(list(g)), b) for b, g in itertools.groupby(data))


# ---- what each program must produce ------------------------------------------------

TWO_LINES = "before checkpoint\nafter checkpoint\n"
BLOCK = 16 * 1024


def rle_expected():
    data = read(os.path.join(PROGRAMS, "data.txt"))
    runs = rle(data)
    out = "".join("rle: block %d\n" % k for k in range(1, len(data) // BLOCK + 1))
    return out + "rle: done, %d runs\n" % runs.count(b"\n"), {"data.rle": runs}


@dataclass
class Seed:
    """A restartable seed program: what it prints and writes, and where the
    kill test stops it: once a checkpoint taken after `kill_line` (printed on
    `kill_stream`) is on disk."""
    name: str
    stdout: str
    kill_line: str
    kill_stream: str = "out"
    files: dict = field(default_factory=dict)     # name in cwd -> bytes
    inputs: tuple = ()                            # copied from tests/programs


_rle_out, _rle_files = rle_expected()
SEEDS = {
    "fib": Seed("fib", "fib(50) = 12586269025\n", "fib: at depth 50", "err"),
    # the second checkpoint, taken 50 frames deep: a restart needs a stack
    # larger than the new process has
    "fib2": Seed("fib2", "fib(50) = 12586269025\n", "fib2: at depth 50", "err"),
    # the first checkpoint, at depth 0: the restored stack must grow again
    "fib2-shallow": Seed("fib2", "fib(50) = 12586269025\n", "fib2: at depth 0", "err"),
    "heap": Seed("heap", "start array: 0123456789\nend array:   5678901234\n",
                 "heap: pass 3", "err"),
    "read_file": Seed("read_file", TWO_LINES, "before checkpoint",
                      inputs=("test_file_1.txt",)),
    "write_file": Seed("write_file", TWO_LINES, "before checkpoint",
                       files={"write_file_1.txt": TWO_LINES.encode()}),
    "multi_file": Seed("multi_file", TWO_LINES, "before checkpoint",
                       files={"write_file_2.txt": TWO_LINES.encode()},
                       inputs=("test_file_1.txt",)),
    "rle": Seed("rle", _rle_out, "rle: block 2", files=_rle_files, inputs=("data.txt",)),
}
STRAIGHT = [k for k in SEEDS if k != "fib2-shallow"]


def workdir(tmp_path, seed):
    """The run's cwd, with fresh copies of the program's input files."""
    d = tmp_path / "cwd"
    d.mkdir(exist_ok=True)
    for name in seed.inputs:
        shutil.copy(os.path.join(PROGRAMS, name), str(d / name))
    return d


def assert_files(cwd, seed):
    for name, want in seed.files.items():
        got = read(str(cwd / name))
        assert got == want, "%s differs from an uninterrupted run's:\n%r\n!=\n%r" % (
            name, got[-300:], want[-300:])


def lines_until(text, line):
    """The lines of text up to and including `line`."""
    lines = text.splitlines(keepends=True)
    return lines[:lines.index(line + "\n") + 1]


# ---- the tests ---------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", STRAIGHT)
def test_uninterrupted_run_gives_seed_output(build, ckpt_dir, tmp_path, name, mode):
    """Straight through under the core: the seed's output and files, and at
    least one checkpoint really taken (in periodic mode: by the timer)."""
    seed = SEEDS[name]
    cwd = workdir(tmp_path, seed)
    prefix = ckpt_dir / "p"
    rc, out, err = run_to_end(build(seed.name), cwd, prefix, period=MODES[mode])
    assert rc == 0, err
    assert out == seed.stdout, err
    assert_files(cwd, seed)
    assert map_epoch(prefix) is not None, "no checkpoint was taken:\n" + err


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", SEEDS)
def test_restart_after_sigkill_finishes_like_uninterrupted_run(build, ckpt_dir, tmp_path,
                                                               name, mode):
    """SIGKILL once a checkpoint taken after the kill line is on disk, then
    CKPT_RESTART=1: same final output and files as a straight run, and the
    restarted process resumes instead of starting over."""
    seed = SEEDS[name]
    exe = build(seed.name)
    cwd = workdir(tmp_path, seed)
    prefix = ckpt_dir / "p"

    p = start(exe, cwd, prefix, period=MODES[mode])
    epoch = p.wait_checkpoint_after_line(seed.kill_line, seed.kill_stream)
    rc, out1, err1 = p.kill()
    assert rc == -signal.SIGKILL, "the program ended before the kill:\n" + p.describe()
    assert map_epoch(prefix) >= epoch

    rc, out2, err2 = run_to_end(exe, cwd, prefix, restart=True)
    assert rc == 0, "restart failed (rc %s):\n%s%s" % (rc, out2, err2)
    assert_files(cwd, seed)
    # Everything printed by the killed run came from a straight run's output,
    # and the restarted run printed the rest of it ...
    assert seed.stdout.startswith(out1), out1
    assert seed.stdout.endswith(out2), out2
    assert len(out1) + len(out2) >= len(seed.stdout), (out1, out2)
    # ... without what came before the checkpoint it resumed from.
    before = lines_until(out1 if seed.kill_stream == "out" else err1, seed.kill_line)
    printed_again = [l for l in before if l in (out2 + err2).splitlines(keepends=True)]
    assert not printed_again, "the restarted run started over:\n" + out2 + err2


def variants(names):
    """(variant, mode) pairs for every variant in both modes."""
    return [pytest.param(v, m, id="%s-%s" % (v, m)) for v in names for m in MODES]


@pytest.mark.parametrize("variant, mode", variants(["rodata", "mprotect"]))
def test_readonly_write_dies_by_sigsegv(build, ckpt_dir, tmp_path, variant, mode):
    """A write to read-only memory is the program's fault: signal 11, as
    without the core; whether the memory was read-only from the start
    (.rodata) or made read-only by the program after a checkpoint."""
    args = () if variant == "rodata" else (variant,)
    rc, out, err = run_to_end(build("readonly_write"), tmp_path, ckpt_dir / "p", args=args,
                              period=MODES[mode])
    assert "writing to read-only memory" in out
    assert "succeeded" not in out, out
    assert rc == -signal.SIGSEGV, (rc, out, err)


@pytest.mark.parametrize("variant, mode", variants(["munmap", "remap", "null"]))
def test_unmapped_write_dies_by_sigsegv(build, ckpt_dir, tmp_path, variant, mode):
    """A write to memory that is not (or no longer) the program's writable
    memory is the program's fault: signal 11, as without the core."""
    rc, out, err = run_to_end(build("unmapped_write"), tmp_path, ckpt_dir / "p",
                              args=(variant,), period=MODES[mode])
    assert "writing to unmapped memory" in out
    assert "succeeded" not in out, out
    assert rc == -signal.SIGSEGV, (rc, out, err)
