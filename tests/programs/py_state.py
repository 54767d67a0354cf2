"""Everything a Python program can observe, across a checkpoint.

Builds state of every kind DESIGN/issue 3 names, checkpoints, then prints what
that state yields.  With a file `hold` in the working directory it waits
after the checkpoint until killed (the test SIGKILLs it and restarts); the
restarted process finds no `hold` and goes on.
"""
import os
import signal
import sys
import time

import ipyckpt


def main():
    import ctypes
    import decimal
    import random
    import re
    import socket
    import sqlite3

    import numpy as np

    os.makedirs("work", exist_ok=True)
    os.chdir("work")
    os.umask(0o027)
    rng = np.random.default_rng(42)
    arr = rng.standard_normal((500, 1000))
    big = {i: (i, str(i)) for i in range(1_000_000)}
    counter = [10]

    def make_adder(k):
        return lambda x: x + k + counter[0]

    add5 = make_adder(5)
    gen = (i * i for i in range(10))
    first = [next(gen), next(gen)]

    class Point:
        def __init__(self, x, y):
            self.x, self.y = x, y

        def norm(self):
            return (self.x ** 2 + self.y ** 2) ** 0.5

    p = Point(3, 4)
    rx = re.compile(r"(\w+)@(\w+)\.com")
    decimal.getcontext().prec = 50
    db = sqlite3.connect(":memory:")
    db.execute("create table t (k integer, v text)")
    db.executemany("insert into t values (?, ?)", [(i, str(i) * 3) for i in range(1000)])
    random.seed(7)
    libm = ctypes.CDLL("libm.so.6")  # a library dlopen'ed after start
    libm.cbrt.restype = ctypes.c_double
    libm.cbrt.argtypes = [ctypes.c_double]
    out = open("out.txt", "w")
    out.write("before\n")
    out.flush()
    inp = open("../data.txt")
    inp.readline()
    usr1 = []
    signal.signal(signal.SIGUSR1, lambda s, f: usr1.append(s))
    # Destinations of reads, allocated before the checkpoint and not touched
    # after it: write-protected when the kernel fills them (EFAULT trap).
    buf = bytearray(4 << 20)
    got = bytearray(200000)

    print("before checkpoint", flush=True)
    r = ipyckpt.checkpoint()
    print("checkpoint:", r.value, flush=True)
    while os.path.exists("../hold"):
        time.sleep(0.05)

    out.write("after\n")
    out.flush()
    print("cwd", os.path.basename(os.getcwd()))
    u = os.umask(0)
    os.umask(u)
    print("umask", oct(u))
    print("numpy", round(float(arr.sum()), 6), arr.shape, rng.integers(0, 1000, 3).tolist())
    print("dict", len(big), big[123456], big[999999])
    print("closure", add5(1), "generator", first, list(gen))
    print("instance", p.norm(), type(p).__name__)
    print("regex", rx.findall("a@b.com c@d.com"))
    print("decimal", decimal.Decimal(1) / decimal.Decimal(7))
    print("sqlite", db.execute("select count(*), sum(k), max(v) from t").fetchone())
    print("random", random.random())
    print("dlopen", round(libm.cbrt(27.0), 9))
    print("readline", inp.readline().strip(), inp.tell())
    os.kill(os.getpid(), signal.SIGUSR1)
    time.sleep(0.01)
    print("handler", usr1)
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.5)
        print("SIGINT ignored!")
    except KeyboardInterrupt:
        print("SIGINT raises KeyboardInterrupt")
    import faulthandler

    faulthandler.enable()
    print("faulthandler", faulthandler.is_enabled())
    with open("../data.txt", "rb") as f:
        print("readinto", f.readinto(buf), bytes(buf[:6]))
    print("fromfile", np.fromfile("../data.txt", dtype=np.uint8).size)
    a, b = socket.socketpair()  # sockets do not survive a restart: made after it
    a.sendall(b"x" * 100000)
    print("recv_into", b.recv_into(got, 65536) > 0)
    import subprocess

    env = subprocess.run(["env"], capture_output=True, text=True).stdout
    print("child sees core:", "CKPT_" in env or "libcheckpoint" in env)
    child = subprocess.run([sys.executable, "-c", "import ipyckpt; print(ipyckpt.available())"],
                           capture_output=True, text=True).stdout.strip()
    print("child can checkpoint:", child)
    out.close()
    print("out.txt", open("out.txt").read().split())


main()
