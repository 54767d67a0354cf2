"""Periodic checkpoints that land inside numpy calls and malloc.

Sorts and multiplies arrays of a few MB again and again (most CPU time is
spent inside numpy's C loops and in the allocator) and prints a running
checksum every round.  A restart resumes mid-way with the same checksums.
"""
import sys

import numpy as np

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 60
rng = np.random.default_rng(1)
acc = 0.0
for r in range(1, rounds + 1):
    a = rng.random(400_000)
    b = np.sort(a)                         # inside numpy
    m = rng.random((120, 120)) @ rng.random((120, 120))
    acc += float(b[::1000].sum()) + float(m.trace())
    print("round", r, "%.6f" % acc, flush=True)
print("final %.6f" % acc, flush=True)
