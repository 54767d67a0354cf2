"""ipyckpt: incremental whole-memory checkpoints of Python kernels and C programs."""

__version__ = "0.1.0"
