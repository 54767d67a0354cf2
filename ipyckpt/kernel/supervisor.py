"""The front's handle on one engine process: start it with its pipes at the
fixed descriptors, read its frames and output, write its requests, notice
its death, signal it, stop it.  Everything runs on the front's asyncio loop
(the main thread); nothing here blocks.
"""
import asyncio
import codecs
import errno
import fcntl
import os
import signal

from .channel import (
    MESSAGE_FD,
    REQUEST_FD,
    STDERR_FD,
    STDOUT_FD,
    FrameDecoder,
    FrameError,
    encode,
)

_SIGNAL_TEXT = {
    signal.SIGKILL: "was killed by SIGKILL (out of memory?)",
    signal.SIGSEGV: "crashed with a segmentation fault (SIGSEGV), usually a bug in C code",
    signal.SIGBUS: "crashed with a bus error (SIGBUS), usually a bug in C code or a "
                   "truncated memory-mapped file",
    signal.SIGABRT: "aborted (SIGABRT), usually a failed assertion in C code",
    signal.SIGFPE: "crashed with an arithmetic error (SIGFPE) in C code",
    signal.SIGILL: "crashed with an illegal instruction (SIGILL)",
    signal.SIGTERM: "was terminated (SIGTERM)",
}

# A restart the core refuses exits with this status (see checkpoint.h).
RESTART_REFUSED = 3


def describe_exit(code):
    """How a process with this exit code (as Popen.returncode) ended, in words."""
    if code is None:
        return "is running"
    if code < 0:
        sig = -code
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = "signal %d" % sig
        return _SIGNAL_TEXT.get(sig, "was killed by %s" % name)
    if code == RESTART_REFUSED:
        return "refused to restart from the checkpoint (status 3)"
    return "exited with status %d" % code


def _high(fd):
    """A close-on-exec copy of fd numbered 10 or more, so that the dup2()s
    onto 0..4 in the child can never overwrite a source they still need."""
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)


def _nonblocking(fd):
    os.set_blocking(fd, False)
    return fd


class EngineProcess:
    """One engine process.

    on_message(msg, buffers)  a frame from the engine; output written before
                              it was already handed to on_output
    on_output(name, text)     stdout/stderr text (C-level writes included)
    on_exit(code)             the process ended (Popen-style code); called once,
                              after every frame and byte of output it left
    """

    def __init__(self, loop, on_message, on_output, on_exit, log):
        self.loop = loop
        self.on_message = on_message
        self.on_output = on_output
        self.on_exit = on_exit
        self.log = log
        self.pid = None
        self.returncode = None
        self.reason = None  # why the front ended it, if it did
        self._decoder = FrameDecoder()
        self._wbuf = bytearray()
        self._fds = {}
        self._text = {}
        self._pidfd = None
        self._exited = loop.create_future()

    @property
    def alive(self):
        return self.pid is not None and self.returncode is None

    # -- start --------------------------------------------------------------

    def spawn(self, argv, env):
        """Start argv (absolute argv[0]) with its pipes at the engine's fixed
        descriptors, in the front's working directory (the notebook's).
        posix_spawn, not fork+preexec_fn: the front runs ipykernel's
        threads, and posix_spawn is safe among threads."""
        req_r, req_w = os.pipe()
        msg_r, msg_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        child_ends = [_high(req_r), _high(msg_w), _high(out_w), _high(err_w)]
        for fd in (req_r, msg_w, out_w, err_w):
            os.close(fd)
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, child_ends[2], STDOUT_FD),
            (os.POSIX_SPAWN_DUP2, child_ends[3], STDERR_FD),
            (os.POSIX_SPAWN_DUP2, child_ends[0], REQUEST_FD),
            (os.POSIX_SPAWN_DUP2, child_ends[1], MESSAGE_FD),
        ]
        # The front ignores SIGINT (ipykernel does); an ignored disposition
        # survives exec, and Python would then never install its handler.
        resets = [signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP, signal.SIGPIPE,
                  signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD]
        try:
            self.pid = os.posix_spawn(argv[0], argv, env, file_actions=actions,
                                      setsigdef=resets, setsigmask=())
        finally:
            for fd in child_ends:
                os.close(fd)
        self._fds = {"req": _nonblocking(req_w), "msg": _nonblocking(msg_r),
                     "stdout": _nonblocking(out_r), "stderr": _nonblocking(err_r)}
        for name in ("stdout", "stderr"):
            self._text[name] = codecs.getincrementaldecoder("utf-8")("replace")
            self.loop.add_reader(self._fds[name], self._read_output, name)
        self.loop.add_reader(self._fds["msg"], self._read_messages)
        try:
            self._pidfd = os.pidfd_open(self.pid)
            self.loop.add_reader(self._pidfd, self._reap)
        except (AttributeError, OSError):
            self._pidfd = None  # an old kernel: poll instead
            self.loop.call_later(0.2, self._poll_exit)
        return self.pid

    # -- reading ------------------------------------------------------------

    def _read_output(self, name, final=False):
        fd = self._fds.get(name)
        if fd is None:
            return
        while True:
            try:
                data = os.read(fd, 1 << 16)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno == errno.EINTR:
                    continue
                data = b""
            if not data:
                self._close(name)
                text = self._text[name].decode(b"", final=True)
                if text:
                    self.on_output(name, text)
                return
            text = self._text[name].decode(data)
            if text:
                self.on_output(name, text)

    def drain_output(self):
        """Hand over all output the engine has written so far."""
        self._read_output("stdout")
        self._read_output("stderr")

    def _read_messages(self):
        fd = self._fds.get("msg")
        if fd is None:
            return
        while True:
            try:
                data = os.read(fd, 1 << 20)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._close("msg")
                if self._pidfd is None:
                    self.loop.call_later(0.02, self._poll_exit)
                return
            try:
                frames = self._decoder.feed(data)
            except FrameError as e:
                # a desynchronised channel cannot be trusted again
                self.log.error("ipyckpt: %s; stopping the engine", e)
                self.kill("was stopped: its channel to the front broke (%s)" % e)
                return
            if frames:
                # output written before these frames goes first
                self.drain_output()
            for msg, buffers in frames:
                try:
                    self.on_message(msg, buffers)
                except Exception:
                    self.log.exception("ipyckpt: handling %s from the engine", msg.get("t"))

    # -- writing ------------------------------------------------------------

    def send(self, msg, buffers=()):
        """Queue one frame for the engine (never blocks: an engine busy in a
        cell reads its requests later)."""
        if "req" not in self._fds:
            return False
        self._wbuf += encode(msg, buffers)
        self._write()
        return True

    def _write(self):
        fd = self._fds.get("req")
        if fd is None:
            self._wbuf.clear()
            return
        while self._wbuf:
            try:
                n = os.write(fd, self._wbuf)
            except BlockingIOError:
                break
            except OSError:  # EPIPE: the engine is gone; its death is reported elsewhere
                self._wbuf.clear()
                self._close("req")
                return
            del self._wbuf[:n]
        if self._wbuf:
            self.loop.add_writer(fd, self._write)
        else:
            self.loop.remove_writer(fd)

    # -- the end ------------------------------------------------------------

    def _close(self, name):
        fd = self._fds.pop(name, None)
        if fd is None:
            return
        self.loop.remove_reader(fd)
        self.loop.remove_writer(fd)
        os.close(fd)

    def _poll_exit(self):
        if self.returncode is not None:
            return
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.pid, 0
        if pid == 0:
            self.loop.call_later(0.2, self._poll_exit)
            return
        self._finish(os.waitstatus_to_exitcode(status))

    def _reap(self):
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.pid, 0
        if pid == 0:
            return  # spurious wake-up
        self.loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = None
        self._finish(os.waitstatus_to_exitcode(status))

    def _finish(self, code):
        self.returncode = code
        # everything the engine wrote before it died, in order
        self._read_messages()
        self.drain_output()
        for name in list(self._fds):
            self._close(name)
        if not self._exited.done():
            self._exited.set_result(code)
        try:
            self.on_exit(code)
        except Exception:
            self.log.exception("ipyckpt: handling the engine's exit")

    def kill(self, reason):
        """SIGKILL, remembering why (the front reports `reason`, not the signal)."""
        self.reason = reason
        self._close("msg")
        self.signal(signal.SIGKILL)

    def signal(self, sig):
        if self.alive:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    async def wait(self, timeout=None):
        """The exit code, or None if still running after timeout."""
        try:
            return await asyncio.wait_for(asyncio.shield(self._exited), timeout)
        except asyncio.TimeoutError:
            return None

    async def stop(self, grace, term_timeout):
        """Ask the engine to end (a shutdown frame it reads when idle), then
        SIGTERM, then SIGKILL."""
        if not self.alive:
            return self.returncode
        self.send({"t": "shutdown", "id": None})
        code = await self.wait(grace)
        if code is None:
            self.signal(signal.SIGTERM)
            code = await self.wait(term_timeout)
        if code is None:
            self.signal(signal.SIGKILL)
            code = await self.wait(10)
        return code

    def kill_now(self):
        """Last resort when the front itself exits: no engine outlives it."""
        if self.alive:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
