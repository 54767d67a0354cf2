"""Checkpoint cost of a large Python process, full versus incremental.

A Python process holding 1 GiB of numpy data and a dict of 10^6 objects is
started under the core (``ipyckpt run``).  It takes a first checkpoint (all of
its memory), changes 1 % of the array, and takes a second one.  The ratio of
the second checkpoint's time to the first's is the figure that shows
checkpoints are incremental: it should be near the 1 % of memory that changed,
not near 1.  The process is then SIGKILLed and restarted, and the restart
time (to the first statement after the checkpoint) is measured too.

    python bench/bench_python_checkpoint.py [--gib 1.0] [--dir DIR]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

WORKLOAD = r'''
import json, os, sys, time
import numpy as np
import ipyckpt

gib = float(sys.argv[1])
n = int(gib * (1 << 30) // 8)
data = np.arange(n, dtype=np.float64)           # every page written
objs = {i: ("k%d" % i, i * 0.5) for i in range(1_000_000)}
report = {"array_bytes": data.nbytes, "dict_len": len(objs)}

def resumed():
    """The restart resumes in a checkpoint() call: say when, and what it holds."""
    print(json.dumps({"restarted": True, "resume_wall": time.time(),
                      "check": float(data.sum()) + objs[999_999][1]}), flush=True)
    sys.exit(0)

t = time.perf_counter()
if ipyckpt.checkpoint() is ipyckpt.Checkpoint.RESTARTED:
    resumed()
first = time.perf_counter() - t
st1 = ipyckpt.status()

# change 1 % of the array, spread over it (every 100th page)
page = os.sysconf("SC_PAGE_SIZE") // 8
data[::page * 100] += 1.0
t = time.perf_counter()
if ipyckpt.checkpoint() is ipyckpt.Checkpoint.RESTARTED:
    resumed()
second = time.perf_counter() - t
st2 = ipyckpt.status()
report.update(first_s=first, first_bytes=st1.last_bytes, second_s=second,
              second_bytes=st2.last_bytes, check=float(data.sum()) + objs[999_999][1])
print(json.dumps(report), flush=True)
time.sleep(3600)   # wait to be killed
'''


def du(prefix):
    d, base = os.path.split(prefix)
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.startswith(base + "."))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gib", type=float, default=1.0, help="size of the numpy array in GiB")
    ap.add_argument("--dir", help="where to put the checkpoint (default: a temporary folder)")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="ipyckpt-bench-", dir=args.dir)
    try:
        script = os.path.join(work, "workload.py")
        with open(script, "w") as f:
            f.write(WORKLOAD)
        prefix = os.path.join(work, "ckpt", "workload")
        cmd = [sys.executable, "-m", "ipyckpt"]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd + ["run", "--prefix", prefix, "--", sys.executable, script,
                                       str(args.gib)], stdout=subprocess.PIPE, text=True)
        report = json.loads(proc.stdout.readline())
        setup = time.perf_counter() - t0
        proc.kill()
        proc.wait()
        image = du(prefix)

        t0 = time.time()
        out = subprocess.run(cmd + ["restart", "--prefix", prefix, "--", sys.executable, script,
                                    str(args.gib)], capture_output=True, text=True, check=True)
        resumed = json.loads(out.stdout.splitlines()[-1])
        restart_s = resumed["resume_wall"] - t0
        if resumed["check"] != report["check"]:
            raise SystemExit("the restarted process does not hold the checkpointed data")

        mib = 1 << 20
        print("process: %.2f GiB numpy array + dict of %d objects (set up in %.1f s)"
              % (report["array_bytes"] / (1 << 30), report["dict_len"], setup))
        print("first checkpoint (all memory):  %8.3f s  %9.1f MiB written"
              % (report["first_s"], report["first_bytes"] / mib))
        print("second checkpoint (1 %% changed): %8.3f s  %9.1f MiB written"
              % (report["second_s"], report["second_bytes"] / mib))
        print("ratio second/first:              %8.3f (time)  %.3f (bytes)"
              % (report["second_s"] / report["first_s"],
                 report["second_bytes"] / report["first_bytes"]))
        print("image on disk (both epochs):     %8.1f MiB" % (image / mib))
        print("restart to first statement:      %8.3f s (exec, restore, CRC check)" % restart_s)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
