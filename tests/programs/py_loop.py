"""A pure-Python loop with progress: for periodic checkpoints from SIGPROF.

Prints `step N` every 200000 iterations (N from 1) and the final sum.  A
restart from a periodic checkpoint resumes mid-loop, so its first printed
step is not 1.
"""
import sys

total = 0
n = int(sys.argv[1]) if len(sys.argv) > 1 else 6_000_000
for i in range(n):
    total += (i * i) % 7
    if i % 200_000 == 199_999:
        print("step", (i + 1) // 200_000, flush=True)
print("sum", total, flush=True)
