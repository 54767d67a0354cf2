"""ipyckpt: incremental whole-memory checkpoints of Python kernels and C programs.

In a process started with ``ipyckpt run``::

    import ipyckpt
    if ipyckpt.checkpoint() is ipyckpt.Checkpoint.RESTARTED:
        print("resumed")
    print(ipyckpt.status())
"""

__version__ = "0.1.0"

from .core import (  # noqa: E402
    Checkpoint,
    CheckpointError,
    NotUnderCoreError,
    Status,
    available,
    checkpoint,
    set_period,
    status,
)


def load_ipython_extension(ip):
    """``%load_ext ipyckpt``: the %checkpoint magics (see ipyckpt.magics)."""
    from .magics import load_ipython_extension as load

    load(ip)


__all__ = [
    "Checkpoint",
    "CheckpointError",
    "NotUnderCoreError",
    "Status",
    "available",
    "checkpoint",
    "load_ipython_extension",
    "set_period",
    "status",
]
