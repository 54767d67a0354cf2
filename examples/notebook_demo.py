"""The main job, end to end, printed: a notebook kernel survives SIGKILL.

Starts the "Python 3 (ipyckpt)" kernel for a notebook, runs cells that build
state and take a checkpoint, kills the kernel's two processes (the front and
the checkpointed engine) with SIGKILL, starts the "Python 3 (ipyckpt, restart
from checkpoint)" kernel for the same notebook and shows that the state is
back.  Needs the kernelspecs (`ipyckpt install --sys-prefix`); demo.sh does
it all.
"""
import glob
import json
import os
import signal
import sys
import tempfile
import time

from jupyter_client.manager import start_new_kernel


def say(text):
    print("\n\033[1m== %s\033[0m" % text, flush=True)


class CellError(Exception):
    """A cell of the demo failed: the demo does not show what it claims."""


def run(kc, code):
    """Execute one cell, print what the notebook would show, return its
    (execution count, text/plain result) or None; raise CellError if the
    cell failed."""
    print("\033[36mIn:\033[0m  " + code.replace("\n", "\n     "))
    msg_id = kc.execute(code)
    result, failed = None, None
    while True:
        msg = kc.get_iopub_msg(timeout=120)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            print("     " + content["text"].rstrip().replace("\n", "\n     "))
        elif kind in ("execute_result", "display_data"):
            text = content["data"].get("text/plain", "")
            count = content.get("execution_count")
            print(("\033[31mOut[%s]:\033[0m " % count if count else "     ") + text)
            if kind == "execute_result":
                result = (count, text)
        elif kind == "error":
            failed = "%s: %s" % (content["ename"], content["evalue"])
            print("     " + failed)
        elif kind == "status" and content["execution_state"] == "idle":
            if failed:
                raise CellError(failed)
            return result


def start(kernel, nbdir):
    env = dict(os.environ, JPY_SESSION_NAME=os.path.join(nbdir, "demo.ipynb"))
    return start_new_kernel(kernel_name=kernel, cwd=nbdir, env=env, startup_timeout=60)


def main():
    nbdir = tempfile.mkdtemp(prefix="ipyckpt-demo-")
    say('starting the "Python 3 (ipyckpt)" kernel for %s/demo.ipynb' % nbdir)
    km, kc = start("ipyckpt", nbdir)
    run(kc, "import math, statistics\n"
            "signal = [math.sin(i / 100) for i in range(500_000)]\n"
            "history = [round(statistics.fmean(signal), 12)]\n"
            "history")
    run(kc, "%checkpoint")
    run(kc, "history.append(-1.0)   # after the checkpoint: the restart will not have it\n"
            "len(history)")

    session = max(glob.glob(os.path.join(nbdir, ".ipyckpt", "demo", "*")), key=os.path.getmtime)
    with open(os.path.join(session, "engine.pid")) as f:
        engine = int(f.read())
    front = km.provisioner.process.pid
    say("killing the kernel: SIGKILL to the front (pid %d) and the engine (pid %d)"
        % (front, engine))
    for pid in (front, engine):
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    kc.stop_channels()
    print("checkpoints of this notebook: %s" % session)
    print("  " + " ".join(sorted(os.listdir(session))))

    say('starting "Python 3 (ipyckpt, restart from checkpoint)" for the same notebook')
    km2, kc2 = start("ipyckpt-restart", nbdir)
    back = run(kc2, "print(len(history), history)\n"
                    "print('signal', len(signal), round(statistics.fmean(signal), 12) == history[0])\n"
                    "(len(history), statistics.__name__)")
    run(kc2, "%ckpt_status")
    kc2.stop_channels()
    km2.shutdown_kernel(now=False)
    # cell [3] again: the count continues after the checkpoint's cell [2]
    if back != (3, "(1, 'statistics')"):
        print("the restarted kernel does not hold the checkpoint's state: %s" % back)
        return 1
    say("done: variables, imports and the execution counter came back from the "
        "checkpoint (the change made after it is gone, as it should be)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CellError as e:
        print("demo failed: a cell raised %s" % e, file=sys.stderr)
        sys.exit(1)
