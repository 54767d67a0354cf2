"""A CPU-bound loop whose restarts are announced by CKPT_NOTIFY (SIGUSR2).

The handler prints `notified`; a periodic checkpoint resumes through the
SIGPROF frame on the core's alternate stack, which the notification must
not disturb."""
import signal
import sys

signal.signal(signal.SIGUSR2, lambda s, f: print("notified", flush=True))
total = 0
for i in range(int(sys.argv[1])):
    total += (i * i) % 7
    if i % 500_000 == 499_999:
        print("step", (i + 1) // 500_000, flush=True)
print("sum", total, flush=True)
