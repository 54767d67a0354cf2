"""A checkpoint while a second thread runs is refused; the program goes on."""
import threading

import ipyckpt

stop = threading.Event()
t = threading.Thread(target=stop.wait, name="worker")
t.start()
try:
    ipyckpt.checkpoint()
    print("checkpoint with 2 threads: taken!?")
except ipyckpt.CheckpointError as e:
    print("refused:", e)
stop.set()
t.join()
print("after join:", ipyckpt.checkpoint().value, flush=True)
