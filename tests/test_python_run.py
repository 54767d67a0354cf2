"""CPython processes under the core: `ipyckpt run`, SIGKILL, `ipyckpt restart`.

Each test runs real interpreters started by the CLI, kills them with SIGKILL
once a checkpoint is on disk and checks what the restarted process prints.
"""
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import PROGRAMS, map_epoch

CLI = [sys.executable, "-m", "ipyckpt"]


def script(name, cwd):
    dest = os.path.join(cwd, name)
    shutil.copy(os.path.join(PROGRAMS, name), dest)
    return dest


def start(cwd, prefix, *argv, period=None):
    cmd = CLI + ["run", "--prefix", str(prefix)]
    if period:
        cmd += ["--period", str(period)]
    return subprocess.Popen(cmd + ["--", sys.executable, *argv], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def restart(cwd, prefix, *argv, epoch=None, extra=(), env=None):
    cmd = CLI + ["restart", "--prefix", str(prefix)]
    if epoch is not None:
        cmd += ["--epoch", str(epoch)]
    return subprocess.run(list(extra) + cmd + ["--", sys.executable, *argv], cwd=cwd,
                          capture_output=True, text=True, timeout=120, env=env)


def wait_epoch(proc, prefix, epoch, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        e = map_epoch(prefix)
        if e is not None and e >= epoch:
            return e
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError("exited %s before epoch %d\n%s\n%s" % (proc.returncode, epoch, out, err))
        time.sleep(0.02)
    raise AssertionError("no epoch %d after %ss" % (epoch, timeout))


def kill(proc):
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return out, err


@pytest.fixture
def work(tmp_path):
    with open(tmp_path / "data.txt", "w") as f:
        for i in range(50000):
            f.write("line %d\n" % i)
    return tmp_path


def after_checkpoint(out):
    return [l for l in out.splitlines() if not l.startswith(("checkpoint:", "before checkpoint"))]


def test_python_state_survives_sigkill_and_restart(work):
    prog = script("py_state.py", work)
    straight = subprocess.run(CLI + ["run", "--prefix", str(work / "s" / "p"), "--",
                                     sys.executable, prog], cwd=work, capture_output=True,
                              text=True, timeout=120)
    assert straight.returncode == 0, straight.stderr
    shutil.rmtree(work / "work")

    (work / "hold").touch()
    prefix = work / "ck" / "p"
    proc = start(work, prefix, prog)
    wait_epoch(proc, prefix, 0)
    out1, _ = kill(proc)
    # killed while holding after the checkpoint (its own line may not be out yet)
    assert out1.splitlines()[0] == "before checkpoint"
    assert set(out1.splitlines()) <= {"before checkpoint", "checkpoint: taken"}
    (work / "hold").unlink()

    r = restart(work, prefix, prog)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "checkpoint: restarted"
    assert "before checkpoint" not in r.stdout  # resumed, not re-run
    assert after_checkpoint(r.stdout) == after_checkpoint(straight.stdout)
    expect = {
        "cwd work", "umask 0o27", "instance 5.0 Point", "dlopen 3.0",
        "SIGINT raises KeyboardInterrupt", "faulthandler True", "handler [10]",
        "out.txt ['before', 'after']", "child sees core: False",
        "child can checkpoint: False", "recv_into True",
    }
    assert expect <= set(lines), r.stdout
    assert "dict 1000000 (123456, '123456') (999999, '999999')" in lines
    assert "readline line 1 14" in lines


def test_periodic_checkpoint_resumes_mid_loop(work):
    prog = script("py_loop.py", work)
    prefix = work / "ck" / "loop"
    proc = start(work, prefix, prog, "30000000", period=1)
    wait_epoch(proc, prefix, 1)
    time.sleep(random.uniform(0, 1))  # a kill at any moment after it
    out1, _ = kill(proc)
    steps_before = [int(l.split()[1]) for l in out1.splitlines() if l.startswith("step")]

    r = restart(work, prefix, prog, "30000000")
    assert r.returncode == 0, r.stderr
    steps = [int(l.split()[1]) for l in r.stdout.splitlines() if l.startswith("step")]
    assert steps and steps[0] > 1, "the restart began again from the start"
    assert steps[0] <= (steps_before[-1] + 1 if steps_before else 1)
    assert steps == list(range(steps[0], 151))
    assert r.stdout.splitlines()[-1] == "sum %d" % sum((i * i) % 7 for i in range(30000000))


def test_restart_from_older_epoch_sets_later_epochs_aside(work):
    prog = script("py_epochs.py", work)
    prefix = work / "ck" / "e"
    (work / "hold").touch()
    proc = start(work, prefix, prog, "5", "2")
    wait_epoch(proc, prefix, 2)
    kill(proc)
    (work / "hold").unlink()

    r = restart(work, prefix, prog, "5", "2", epoch=0)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "step 0 restarted state [0]"
    assert r.stdout.splitlines()[-1] == "end 10"
    aside = [d for d in os.listdir(work / "ck") if d.startswith("e.abandoned-")]
    assert len(aside) == 1 and "abandoned" in r.stderr
    assert sorted(os.listdir(work / "ck" / aside[0]))[:3] == ["e.data.1", "e.data.2", "e.map.1"]
    # the new timeline went on to epoch 4 and is restorable on its own
    assert map_epoch(prefix) == 4
    r2 = restart(work, prefix, prog, "5", "2")
    assert r2.returncode == 0, r2.stderr
    assert r2.stdout.splitlines() == ["step 4 restarted state [0, 1, 2, 3, 4]", "end 10"]


def test_two_restarts_in_a_row(work):
    prog = script("py_epochs.py", work)
    prefix = work / "ck" / "twice"
    (work / "hold").touch()
    proc = start(work, prefix, prog, "4", "1")
    wait_epoch(proc, prefix, 1)
    kill(proc)
    # first restart: hold at step 1 again (the file is still there), kill it
    # once it has checkpointed step 2 ... it cannot: it waits at step 1.  So
    # let it pass step 1 and hold at a later step through a second program run.
    os.unlink(work / "hold")
    r = restart(work, prefix, prog, "4", "1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "step 1 restarted state [0, 1]"
    assert map_epoch(prefix) == 3
    r = restart(work, prefix, prog, "4", "1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["step 3 restarted state [0, 1, 2, 3]", "end 6"]


def build_lib(path, value):
    src = str(path) + ".c"
    with open(src, "w") as f:
        f.write("int answer(void) { return %d; }\n" % value)
    subprocess.run(["gcc", "-shared", "-fPIC", src, "-o", str(path)], check=True)


def killed_after_loading_library(work):
    """py_dlopen.py loads libanswer.so (answer 42), checkpoints and is killed."""
    prog = script("py_dlopen.py", work)
    lib = work / "libanswer.so"
    build_lib(lib, 42)
    prefix = work / "ck" / "lib"
    (work / "hold").touch()
    proc = start(work, prefix, prog, str(lib))
    wait_epoch(proc, prefix, 0)
    out1, _ = kill(proc)
    assert "loaded 42" in out1
    (work / "hold").unlink()
    return prog, lib, prefix


def test_changed_library_refuses_restart(work):
    prog, lib, prefix = killed_after_loading_library(work)
    time.sleep(0.01)
    build_lib(lib, 7)  # rebuilt after the checkpoint
    r = restart(work, prefix, prog, str(lib))
    assert r.returncode == 3
    assert str(lib) in r.stderr and "changed since the checkpoint" in r.stderr
    assert "answer" not in r.stdout

    build_lib(lib, 42)  # not enough: a new file, even with the same code
    r = restart(work, prefix, prog, str(lib))
    assert r.returncode == 3 and "changed" in r.stderr


def test_library_unchanged_restart_calls_it(work):
    prog, lib, prefix = killed_after_loading_library(work)
    r = restart(work, prefix, prog, str(lib))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["checkpoint restarted", "answer 42"]


def test_checkpoint_with_two_threads_is_refused_and_program_goes_on(work):
    prog = script("py_threads.py", work)
    r = subprocess.run(CLI + ["run", "--prefix", str(work / "ck" / "t"), "--", sys.executable,
                              prog], cwd=work, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("refused:") and "2 threads" in lines[0]
    assert "OPENBLAS_NUM_THREADS=1" in lines[0]  # says how to avoid them
    assert lines[1] == "after join: taken"


def test_outside_the_core_checkpoint_says_how_to_start():
    r = subprocess.run([sys.executable, "-c", "import ipyckpt; ipyckpt.checkpoint()"],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "NotUnderCoreError" in r.stderr and "ipyckpt run" in r.stderr


def test_status_reports_epoch_and_dirty_pages(work):
    code = ("import ipyckpt\n"
            "ipyckpt.checkpoint()\n"
            "x = bytearray(10 << 20)\n"
            "s = ipyckpt.status()\n"
            "print(s.epoch, s.period, s.checkpoints, s.restarted_from, s.dirty_pages > 2000, "
            "s.last_bytes > 0, s.prefix.endswith('/st'))\n")
    r = subprocess.run(CLI + ["run", "--prefix", str(work / "ck" / "st"), "--", sys.executable,
                              "-c", code], cwd=work, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "0", "1", "None", "True", "True", "True"]


@pytest.mark.parametrize("how,message", [
    ("aslr", "setarch"),
    ("stack-limit", "stack size limit"),
    ("preload", "LD_PRELOAD differs"),
    ("interpreter", "another or a changed executable"),
])
def test_restart_with_another_layout_is_refused(work, how, message):
    prog = script("py_epochs.py", work)
    prefix = work / "ck" / "lay"
    r = subprocess.run(CLI + ["run", "--prefix", str(prefix), "--", sys.executable, prog, "1",
                              "9"], cwd=work, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    core = os.path.join(os.path.dirname(__import__("ipyckpt").__file__), "libcheckpoint.so")
    python = os.path.realpath(sys.executable)
    # As `ipyckpt restart` would start it, but by hand so one thing can differ.
    env = dict(os.environ, LD_PRELOAD=core, CKPT_PREFIX=str(prefix), CKPT_RESTART="1",
               CKPT_EXE=python)
    cmd = ["setarch", "--addr-no-randomize", python, prog, "1", "9"]
    if how == "aslr":
        cmd = cmd[2:]
    elif how == "stack-limit":
        cmd = ["sh", "-c", 'ulimit -s 16384 && exec "$@"', "sh"] + cmd
    elif how == "preload":
        env["LD_PRELOAD"] = core + ":" + "libz.so.1"
    elif how == "interpreter":
        copy = work / "python-copy"
        shutil.copy(python, copy)
        cmd[2] = env["CKPT_EXE"] = str(copy)
    r = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert message in r.stderr and "nothing was changed" in r.stderr
    assert "step" not in r.stdout


def test_cli_usage_errors():
    assert subprocess.run(CLI + ["run"], capture_output=True).returncode != 0
    r = subprocess.run(CLI + ["run", "--period", "-1", "--", "true"], capture_output=True, text=True)
    assert r.returncode == 2 and "negative" in r.stderr
    r = subprocess.run(CLI + ["run", "--period", "soon", "--", "true"], capture_output=True, text=True)
    assert r.returncode == 2 and "whole number" in r.stderr


def test_restart_without_checkpoint_says_so(tmp_path):
    r = subprocess.run(CLI + ["restart", "--prefix", str(tmp_path / "none"), "--", "true"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "no checkpoint" in r.stderr


def test_periodic_checkpoints_inside_numpy_resume_with_same_results(work):
    prog = script("py_numpy_loop.py", work)
    straight = subprocess.run([sys.executable, prog, "150"], capture_output=True, text=True,
                              timeout=300)
    assert straight.returncode == 0
    prefix = work / "ck" / "np"
    proc = start(work, prefix, prog, "150", period=1)
    wait_epoch(proc, prefix, 1)
    time.sleep(random.uniform(0, 0.5))
    out1, _ = kill(proc)

    r = restart(work, prefix, prog, "150")
    assert r.returncode == 0, r.stderr
    rounds = [l for l in r.stdout.splitlines() if l.startswith("round")]
    assert rounds and rounds[0] != "round 1", "the restart began again from the start"
    # every line the restarted run printed is the straight run's line
    assert r.stdout.splitlines() == straight.stdout.splitlines()[-len(r.stdout.splitlines()):]


def test_restart_notification_reaches_a_periodic_checkpoint_intact(work):
    """CKPT_NOTIFY's signal is held until the restored context runs: it must
    not land on the alternate stack over the SIGPROF frame being resumed."""
    from ipyckpt import launch

    prog = script("py_notify_loop.py", work)
    prefix = str(work / "ck" / "nt")
    os.makedirs(os.path.dirname(prefix))
    python = os.path.realpath(sys.executable)

    def env(restart):
        return launch.core_environment(prefix, python, period=1, restart=restart,
                                       notify=int(signal.SIGUSR2))

    cmd = launch.command([python, prog, "20000000"])
    proc = subprocess.Popen(cmd, cwd=work, env=env(False), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_epoch(proc, prefix, 1)
    kill(proc)
    r = subprocess.run(cmd, cwd=work, env=env(True), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "notified" and lines[1] != "step 1"
    assert lines[-1] == "sum %d" % sum((i * i) % 7 for i in range(20000000))


@pytest.mark.parametrize("period", [0, 1])
def test_signal_mask_calls_do_what_they_say_under_the_core(work, period):
    code = ("import signal\n"
            "old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})\n"
            "now = signal.pthread_sigmask(signal.SIG_BLOCK, set())\n"
            "signal.pthread_sigmask(signal.SIG_SETMASK, old)\n"
            "after = signal.pthread_sigmask(signal.SIG_BLOCK, set())\n"
            "print(sorted(s.name for s in old), sorted(s.name for s in now), "
            "sorted(s.name for s in after))\n")
    cmd = CLI + ["run", "--prefix", str(work / "ck" / "m")]
    if period:
        cmd += ["--period", str(period)]
    r = subprocess.run(cmd + ["--", sys.executable, "-c", code], cwd=work, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[] ['SIGUSR1'] []"
