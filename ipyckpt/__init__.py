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

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "NotUnderCoreError",
    "Status",
    "available",
    "checkpoint",
    "set_period",
    "status",
]
