"""Loads a shared library given in argv[1] after start, checkpoints, waits while
`hold` exists, then calls it."""
import ctypes
import os
import sys
import time

import ipyckpt

lib = ctypes.CDLL(sys.argv[1])
print("loaded", lib.answer(), flush=True)
print("checkpoint", ipyckpt.checkpoint().value, flush=True)
while os.path.exists("hold"):
    time.sleep(0.05)
print("answer", lib.answer(), flush=True)
