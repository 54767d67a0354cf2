"""Takes checkpoints 0..N-1 and prints which one each step came back from.

Each step prints `step K taken` or `step K restarted`; with a file `hold`
present it waits after step HOLD_AT (argv[2]) until killed.
"""
import os
import sys
import time

import ipyckpt

steps = int(sys.argv[1])
hold_at = int(sys.argv[2])
state = []
for k in range(steps):
    state.append(k)
    r = ipyckpt.checkpoint()
    print("step", k, r.value, "state", state, flush=True)
    if k == hold_at:
        while os.path.exists("hold"):
            time.sleep(0.05)
print("end", sum(state), flush=True)
