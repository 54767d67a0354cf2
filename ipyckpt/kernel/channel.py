"""The link between the front and the engine: pipes at fixed descriptors, framed.

This is the only module the front and the engine share.

Why fixed descriptors: the engine is checkpointed, the front is not.  A pipe
is not part of a memory image, but a descriptor *number* is just an integer
in the image.  A restored engine started by a new front with new pipes at the
same numbers therefore finds its channel again (DESIGN §2).  The engine's
whole outside world is:

    fd 0  /dev/null
    fd 1  pipe to the front: stdout, C-level writes included
    fd 2  pipe to the front: stderr
    fd 3  REQUEST_FD  front -> engine frames
    fd 4  MESSAGE_FD  engine -> front frames

A frame is one message:

    12-byte header  b"IC1" + flags byte, JSON length (u32 LE), buffer count (u32 LE)
    JSON            a dict, UTF-8
    buffers         each: length (u64 LE) + bytes   (comm buffers, never base64)

The engine reads and writes frames with raw os.read/os.write (no Python-level
buffering: read-ahead bytes of the old pipe would otherwise sit in a memory
image and be taken for the new front's).  While one frame crosses the pipe,
the engine holds off SIGPROF (a periodic checkpoint landing mid-frame would
resume by writing the second half of a frame into a new front) and every
other asynchronous signal, and defers Python-level signal handlers (a
KeyboardInterrupt between two writes would cut a frame); see CriticalSection.
"""
import base64
import datetime
import json
import numbers
import os
import select
import signal
import struct

STDOUT_FD = 1
STDERR_FD = 2
REQUEST_FD = 3
MESSAGE_FD = 4

MAGIC = b"IC1\0"
_HEADER = struct.Struct("<4sII")
_BUFLEN = struct.Struct("<Q")
# A frame larger than this is a corrupted stream, not a message.
MAX_JSON = 1 << 31

# The signal the core raises in a restored engine just before it resumes
# (CKPT_NOTIFY); the engine's handler tells the front where it was.
NOTIFY_SIGNAL = signal.SIGUSR2

# Signals that arrive synchronously from a faulting instruction: never
# blocked (a blocked synchronous SIGSEGV kills the process, and the core's
# dirty tracker lives on SIGSEGV).
_SYNCHRONOUS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL, signal.SIGTRAP,
                signal.SIGSYS, signal.SIGABRT, signal.SIGKILL, signal.SIGSTOP}
ASYNC_SIGNALS = frozenset(signal.valid_signals()) - _SYNCHRONOUS


def sigprocmask(how, signals):
    """signal.pthread_sigmask; returns the previous mask."""
    return signal.pthread_sigmask(how, signals)


def _setmask(old):
    signal.pthread_sigmask(signal.SIG_SETMASK, old)


class ChannelClosed(EOFError):
    """The other end of the channel is gone."""


class FrameError(ValueError):
    """The byte stream is not a sequence of frames (a bug, or a desynchronised pipe)."""


def json_default(obj):
    """Make display data, comm data and headers JSON, as jupyter_client does."""
    if isinstance(obj, datetime.datetime):
        if obj.tzinfo is None:
            obj = obj.replace(tzinfo=datetime.timezone.utc)
        return obj.isoformat().replace("+00:00", "Z")
    if isinstance(obj, datetime.date):
        return obj.isoformat()
    if isinstance(obj, (bytes, bytearray, memoryview)):
        # image/png and friends travel base64-encoded in Jupyter messages
        return base64.b64encode(bytes(obj)).decode("ascii")
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        return float(obj)
    if isinstance(obj, (set, frozenset, tuple)) or hasattr(obj, "__iter__"):
        return list(obj)
    raise TypeError("%r is not JSON serializable" % (obj,))


def encode(msg, buffers=()):
    """One frame holding the dict msg and binary buffers, as bytes."""
    body = json.dumps(msg, default=json_default, ensure_ascii=False).encode("utf-8")
    parts = [_HEADER.pack(MAGIC, len(body), len(buffers)), body]
    for buf in buffers:
        buf = bytes(buf)
        parts.append(_BUFLEN.pack(len(buf)))
        parts.append(buf)
    return b"".join(parts)


class FrameDecoder:
    """Incremental decoder for a non-blocking reader (the front).

    feed(bytes) returns the list of complete (msg, buffers) frames so far.
    """

    def __init__(self):
        self._data = bytearray()

    def feed(self, data):
        self._data += data
        out = []
        while True:
            frame = self._take()
            if frame is None:
                return out
            out.append(frame)

    def _take(self):
        data = self._data
        if len(data) < _HEADER.size:
            return None
        magic, jlen, nbuf = _HEADER.unpack_from(data)
        if magic != MAGIC or jlen > MAX_JSON:
            raise FrameError("bad frame header %r" % bytes(data[:_HEADER.size]))
        pos = _HEADER.size + jlen
        if len(data) < pos:
            return None
        body = bytes(data[_HEADER.size:pos])
        buffers = []
        for _ in range(nbuf):
            if len(data) < pos + _BUFLEN.size:
                return None
            (blen,) = _BUFLEN.unpack_from(data, pos)
            pos += _BUFLEN.size
            if len(data) < pos + blen:
                return None
            buffers.append(bytes(data[pos:pos + blen]))
            pos += blen
        del data[:pos]
        return json.loads(body.decode("utf-8")), buffers


class CriticalSection:
    """Code during which no checkpoint may be taken and no Python-level
    signal handler may run: frame I/O, and the bookkeeping that must be
    atomic with it (an engine restored between "reply sent" and "cell no
    longer running" would wait for a reply that never comes).

    Blocks every asynchronous signal at the C level (SIGPROF included, so
    the core cannot take a periodic checkpoint here; a blocked signal also
    cannot cut a blocking pipe write short).  Python-level handlers that
    were already pending, or that the engine's own handlers choose to
    defer, consult ``active`` and run their work in ``on_exit`` callbacks.
    Re-entrant.
    """

    def __init__(self):
        self.depth = 0
        self._old = None
        self._deferred = []

    @property
    def active(self):
        return self.depth > 0

    def defer(self, fn):
        """Run fn() when the outermost section ends."""
        self._deferred.append(fn)

    def __enter__(self):
        if self.depth == 0:
            self._old = sigprocmask(signal.SIG_BLOCK, ASYNC_SIGNALS)
        self.depth += 1
        return self

    def __exit__(self, *exc):
        self.depth -= 1
        if self.depth == 0:
            _setmask(self._old)
            while self._deferred:
                self._deferred.pop(0)()
        return False


def write_all(fd, data):
    """Write all of data to a blocking descriptor."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def read_exactly(fd, n):
    """Read exactly n bytes from a blocking descriptor (ChannelClosed on EOF)."""
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise ChannelClosed("the front closed the channel")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


class EngineChannel:
    """The engine's end: blocking, one frame at a time, checkpoint-safe."""

    def __init__(self, critical, rfd=REQUEST_FD, wfd=MESSAGE_FD):
        self.critical = critical
        self.rfd = rfd
        self.wfd = wfd
        self._poll = select.poll()  # poll(2) is wrapped by the core (DESIGN §4 trap 1)
        self._poll.register(rfd, select.POLLIN)

    def send(self, msg, buffers=()):
        frame = encode(msg, buffers)
        with self.critical:
            write_all(self.wfd, frame)

    def wait_readable(self, timeout=None):
        """Block (signals allowed) until a frame starts to arrive."""
        ms = None if timeout is None else int(timeout * 1000)
        return bool(self._poll.poll(ms))

    def recv_in_section(self):
        """Read one whole frame; call inside ``critical``."""
        header = read_exactly(self.rfd, _HEADER.size)
        magic, jlen, nbuf = _HEADER.unpack(header)
        if magic != MAGIC or jlen > MAX_JSON:
            raise FrameError("bad frame header %r" % header)
        msg = json.loads(read_exactly(self.rfd, jlen).decode("utf-8"))
        buffers = []
        for _ in range(nbuf):
            (blen,) = _BUFLEN.unpack(read_exactly(self.rfd, _BUFLEN.size))
            buffers.append(read_exactly(self.rfd, blen))
        return msg, buffers
