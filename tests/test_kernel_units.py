"""The kernel's parts that need no kernel: framing, sessions, exit
descriptions, the critical section under the core, the magics outside it."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ipyckpt.kernel import channel, sessions
from ipyckpt.kernel.supervisor import describe_exit


def test_frames_survive_any_split():
    frames = [({"t": "iopub", "n": i, "text": "é" * i}, [bytes([i]) * i] * (i % 3))
              for i in range(20)]
    data = b"".join(channel.encode(m, b) for m, b in frames)
    for step in (1, 7, 64, len(data)):
        dec = channel.FrameDecoder()
        got = []
        for i in range(0, len(data), step):
            got += dec.feed(data[i:i + step])
        assert got == [(m, list(b)) for m, b in frames]


def test_a_desynchronised_stream_is_an_error_not_garbage():
    with pytest.raises(channel.FrameError):
        channel.FrameDecoder().feed(b"not a frame at all")


def test_json_of_display_data():
    import datetime

    frame = channel.encode({"png": b"\x89PNG", "when": datetime.datetime(2024, 1, 2, 3, 4, 5),
                            "set": {1}})
    [(msg, _)] = channel.FrameDecoder().feed(frame)
    assert msg == {"png": "iVBORw==", "when": "2024-01-02T03:04:05Z", "set": [1]}


def test_engine_channel_reads_what_the_front_writes():
    r, w = os.pipe()
    r2, w2 = os.pipe()
    try:
        chan = channel.EngineChannel(channel.CriticalSection(), rfd=r, wfd=w2)
        os.write(w, channel.encode({"t": "execute", "code": "1"}, [b"buf"]))
        assert chan.wait_readable(1)
        with chan.critical:
            assert chan.recv_in_section() == ({"t": "execute", "code": "1"}, [b"buf"])
        chan.send({"t": "reply"})
        assert channel.FrameDecoder().feed(os.read(r2, 100)) == [({"t": "reply"}, [])]
        os.close(w)
        with pytest.raises(channel.ChannelClosed), chan.critical:
            chan.recv_in_section()
    finally:
        for fd in (r, r2, w2):
            os.close(fd)


CRITICAL_PROBE = r"""
import signal, sys
from ipyckpt.kernel import channel

def blocked():
    with open("/proc/self/status") as f:
        line = [l for l in f if l.startswith("SigBlk:")][0]
    return int(line.split()[1], 16)

cs = channel.CriticalSection()
deferred = []
with cs:
    inside = blocked()
    cs.defer(lambda: deferred.append(1))
    with cs:
        pass
    assert not deferred
print(bool(inside & (1 << (signal.SIGINT - 1))), bool(inside & (1 << (signal.SIGSEGV - 1))),
      deferred)
"""


@pytest.mark.parametrize("period", [0, 1])
def test_critical_section_blocks_signals_under_the_core(tmp_path, period):
    """Also in periodic mode, where the core's sigprocmask wrapper undoes
    pthread_sigmask (the raw system call does not)."""
    r = subprocess.run([sys.executable, "-m", "ipyckpt", "run", "--prefix", str(tmp_path / "p"),
                        "--period", str(period), "--", sys.executable, "-c", CRITICAL_PROBE],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    # SIGINT blocked inside (SigBlk read while the read wrapper may add SIGPROF),
    # SIGSEGV never, deferred work ran at the end
    assert r.stdout.split() == ["True", "False", "[1]"]


def test_notebook_path_from_jpy_session_name(tmp_path):
    (tmp_path / "a.ipynb").touch()
    assert sessions.notebook_path({}, str(tmp_path)) is None
    assert sessions.notebook_path({"JPY_SESSION_NAME": "a.ipynb"}, str(tmp_path)) == \
        str(tmp_path / "a.ipynb")
    # relative to the server root: the kernel runs in the notebook's folder
    assert sessions.notebook_path({"JPY_SESSION_NAME": "sub/dir/a.ipynb"}, str(tmp_path)) == \
        str(tmp_path / "a.ipynb")
    assert sessions.notebook_path({"JPY_SESSION_NAME": "/x/y.ipynb"}, str(tmp_path)) == \
        "/x/y.ipynb"


def test_checkpoint_root_template(tmp_path, monkeypatch):
    nb = str(tmp_path / "proj" / "run.ipynb")
    assert sessions.checkpoint_root("", nb) == str(tmp_path / "proj" / ".ipyckpt" / "run")
    monkeypatch.setenv("SCRATCH", str(tmp_path / "s"))
    assert sessions.checkpoint_root("$SCRATCH/{notebook_stem}", nb) == str(tmp_path / "s" / "run")
    assert sessions.checkpoint_root("", None, cwd=str(tmp_path)) == \
        str(tmp_path / ".ipyckpt" / "kernel")


def _fake_commit(session, epoch, when):
    from ipyckpt._layout import ffi

    head = ffi.new("struct ckpt_map_header *")
    head.epoch = epoch
    with open(session.prefix + ".map", "wb") as f:
        f.write(bytes(ffi.buffer(head)))
    os.utime(session.prefix + ".map", (when, when))


def test_sessions_new_latest_and_prune(tmp_path):
    root = str(tmp_path / "root")
    made = [sessions.new_session(root, "nb.ipynb", sys.executable) for _ in range(4)]
    assert len({s.path for s in made}) == 4
    assert oct(os.stat(made[0].path).st_mode & 0o777) == "0o700"
    assert json.load(open(os.path.join(made[0].path, "session.json")))["notebook"] == "nb.ipynb"
    assert sessions.latest_committed(root) is None
    now = time.time()
    _fake_commit(made[2], 3, now - 10)
    _fake_commit(made[0], 1, now)  # an older session restarted, written to last
    assert sessions.latest_committed(root).path == made[0].path

    assert made[1].try_lock()  # as a live front holds its session
    for s, age in ((made[0], 0), (made[1], 100), (made[2], 10), (made[3], 50)):
        os.utime(s.path, (now - age, now - age))

    # least recently used go first; a live front's lock protects its session
    assert not sessions.Session(made[1].path).try_lock()
    assert sessions.prune(root, 2, protect=[made[0]]) == [made[3].path]
    made[1].unlock()
    assert sessions.prune(root, 2, protect=[made[0]]) == [made[1].path]
    assert sorted(s.path for s in sessions.sessions(root)) == [made[0].path, made[2].path]
    assert sessions.prune(root, 0) == []


def test_epoch_log_last_line_wins(tmp_path):
    s = sessions.new_session(str(tmp_path), None, sys.executable)
    s.append_log([{"epoch": 0, "cell": 1}, {"epoch": 1, "cell": 2}])
    with open(os.path.join(s.path, sessions.LOG_FILE), "a") as f:
        f.write('{"epoch": 1, "ce')  # cut by a crash
    s.append_log([{"epoch": 1, "cell": 5}])
    assert {e: r["cell"] for e, r in s.log().items()} == {0: 1, 1: 5}


def test_describe_exit():
    assert describe_exit(-signal.SIGKILL) == "was killed by SIGKILL (out of memory?)"
    assert "segmentation fault" in describe_exit(-signal.SIGSEGV)
    assert describe_exit(-signal.SIGUSR1) == "was killed by SIGUSR1"
    assert describe_exit(0) == "exited with status 0"
    assert "refused" in describe_exit(3)


def test_magics_outside_the_core_explain_without_a_traceback():
    code = ("from IPython.testing.globalipapp import get_ipython\n"
            "ip = get_ipython()\n"
            "ip.run_line_magic('load_ext', 'ipyckpt')\n"
            "ip.run_line_magic('checkpoint', '')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("does not run under ipyckpt's checkpointing core") == 2
    assert "Traceback" not in r.stderr
