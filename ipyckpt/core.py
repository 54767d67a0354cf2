"""The checkpointing core, from Python, in a process started under it.

The core (libcheckpoint.so) is preloaded into the process by ``ipyckpt run``
and restores a checkpoint before Python even starts.  This module finds its
functions in the running process with dlsym and calls them through cffi; the
types come from the core's own header (see ``_build_layout.py``).

>>> import ipyckpt
>>> if ipyckpt.checkpoint() is ipyckpt.Checkpoint.RESTARTED:
...     print("resumed")
"""
import enum
import errno as _errno
import os
from dataclasses import dataclass

from ._layout import ffi, lib


class NotUnderCoreError(RuntimeError):
    """This process was not started under ipyckpt's checkpointing core."""


class CheckpointError(OSError):
    """A checkpoint could not be taken; the previous one is intact."""


class Checkpoint(enum.Enum):
    """What ``checkpoint()`` just did."""

    TAKEN = "taken"  # a checkpoint was committed; this process goes on
    RESTARTED = "restarted"  # this process was restarted from that checkpoint


HOW_TO_START = (
    "this process was not started under ipyckpt's checkpointing core; start it "
    "with `ipyckpt run -- python your_script.py` (or use the \"Python 3 (ipyckpt)\" "
    "Jupyter kernel)"
)

_SIGNATURES = {
    "ckpt_take": "int(*)(void)",
    "ckpt_get_status": "int(*)(struct ckpt_status *)",
    "ckpt_last_error": "const char *(*)(void)",
    "ckpt_set_period": "int(*)(int)",
}
_functions = None


def _core():
    """The core's functions in this process, or NotUnderCoreError."""
    global _functions
    if _functions is None:
        found = {}
        for name, ctype in _SIGNATURES.items():
            addr = lib.dlsym(ffi.NULL, name.encode())  # RTLD_DEFAULT
            if addr == ffi.NULL:
                raise NotUnderCoreError(HOW_TO_START)
            found[name] = ffi.cast(ctype, addr)
        st = ffi.new("struct ckpt_status *")
        if found["ckpt_get_status"](st) != 0:
            # Loaded, but dormant: not the program it was started for.
            raise NotUnderCoreError(HOW_TO_START)
        _functions = found
    return _functions


def available():
    """True if checkpoints can be taken in this process."""
    try:
        _core()
    except NotUnderCoreError:
        return False
    return True


def _error(default_errno):
    f = _core()
    msg = ffi.string(f["ckpt_last_error"]()).decode(errors="replace")
    code = ffi.errno or default_errno
    return CheckpointError(code, msg or os.strerror(code))


def checkpoint():
    """Take a checkpoint of this whole process now.

    Returns ``Checkpoint.TAKEN`` once it is committed to disk, and
    ``Checkpoint.RESTARTED`` when this process is a restart from it.  Works in
    periodic mode too.  Raises CheckpointError if it could not be taken (for
    example while the process has more than one thread), and
    NotUnderCoreError in a process not started under the core.
    """
    f = _core()
    rc = f["ckpt_take"]()
    if rc == lib.CKPT_TAKEN:
        return Checkpoint.TAKEN
    if rc == lib.CKPT_RESTARTED:
        return Checkpoint.RESTARTED
    raise _error(_errno.EIO)


def set_period(seconds):
    """Take a checkpoint every ``seconds`` of this process's CPU time (0: stop)."""
    seconds = int(seconds)
    if seconds < 0:
        raise ValueError("the period is a number of seconds, 0 or more")
    if _core()["ckpt_set_period"](seconds) != 0:
        raise _error(_errno.EINVAL)


@dataclass(frozen=True)
class Status:
    prefix: str
    epoch: int  # the epoch the next checkpoint will have
    period: int  # seconds of CPU time, 0: on demand
    checkpoints: int  # taken by this process
    restarted_from: "int | None"  # the epoch this process was restored from
    dirty_pages: int  # written since the last checkpoint
    dirty_bytes: int
    last_bytes: int  # memory written by the last checkpoint
    last_seconds: float  # how long it took


def status():
    """The core's state in this process (see Status)."""
    f = _core()
    st = ffi.new("struct ckpt_status *")
    f["ckpt_get_status"](st)
    page = os.sysconf("SC_PAGE_SIZE")
    restarted = None if st.restarted_from == 2**64 - 1 else int(st.restarted_from)
    return Status(
        prefix=ffi.string(st.prefix).decode(errors="replace"),
        epoch=int(st.epoch),
        period=int(st.period),
        checkpoints=int(st.checkpoints),
        restarted_from=restarted,
        dirty_pages=int(st.dirty_pages),
        dirty_bytes=int(st.dirty_pages) * page,
        last_bytes=int(st.last_bytes),
        last_seconds=st.last_ns / 1e9,
    )
