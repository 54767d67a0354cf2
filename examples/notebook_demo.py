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


def run(kc, code):
    """Execute one cell and print what the notebook would show."""
    print("\033[36mIn:\033[0m  " + code.replace("\n", "\n     "))
    msg_id = kc.execute(code)
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
        elif kind == "error":
            print("     %s: %s" % (content["ename"], content["evalue"]))
        elif kind == "status" and content["execution_state"] == "idle":
            return


def start(kernel, nbdir):
    env = dict(os.environ, JPY_SESSION_NAME=os.path.join(nbdir, "demo.ipynb"))
    return start_new_kernel(kernel_name=kernel, cwd=nbdir, env=env, startup_timeout=60)


def main():
    nbdir = tempfile.mkdtemp(prefix="ipyckpt-demo-")
    say('starting the "Python 3 (ipyckpt)" kernel for %s/demo.ipynb' % nbdir)
    km, kc = start("ipyckpt", nbdir)
    run(kc, "import numpy as np\n"
            "rng = np.random.default_rng(7)\n"
            "weights = rng.normal(size=(1000, 1000))\n"
            "history = [float(weights.sum())]\n"
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
    run(kc2, "print(len(history), history)\n"
             "print('weights', weights.shape, float(weights.sum()) == history[0])\n"
             "np.__name__")
    run(kc2, "%ckpt_status")
    kc2.stop_channels()
    km2.shutdown_kernel(now=False)
    say("done: variables, the numpy import and the execution counter came back "
        "from the checkpoint")
    return 0


if __name__ == "__main__":
    sys.exit(main())
