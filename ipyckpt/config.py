"""ipyckpt's settings, as traitlets: ``c.IPyCkpt.<name>`` in a Jupyter or
IPython config file, e.g. ~/.jupyter/ipyckpt_kernel_config.py:

    c.IPyCkpt.checkpoint_dir = "/scratch/{notebook_stem}"
    c.IPyCkpt.period = 300

The kernel's front reads them (through its application's config) and passes
what the engine needs in the engine's environment.
"""
from traitlets import Float, Integer, Unicode, validate
from traitlets.config import Configurable

from .kernel.sessions import DEFAULT_TEMPLATE


class IPyCkpt(Configurable):
    """Checkpoints of the "Python 3 (ipyckpt)" Jupyter kernel."""

    checkpoint_dir = Unicode(
        DEFAULT_TEMPLATE,
        help="""Folder holding the checkpoints of a notebook; each fresh kernel gets
        a session folder inside it.  Fields: {notebook_dir}, {notebook_stem},
        {notebook_name} (the notebook comes from JPY_SESSION_NAME; without it
        {notebook_dir} is the kernel's working directory and {notebook_stem}
        is "kernel") and {cwd}; ~ and $VARIABLES are expanded.  The default
        keeps them next to the notebook, as Jupyter keeps .ipynb_checkpoints/.""",
    ).tag(config=True)

    period = Integer(
        0,
        help="""Take a checkpoint automatically every this many seconds of the
        engine's CPU time (0: only %checkpoint).  %ckpt_period changes it in a
        running kernel; a restarted kernel keeps the period of its checkpoint.""",
    ).tag(config=True)

    keep_sessions = Integer(
        5,
        help="""Keep the checkpoints of this many sessions (kernels started fresh)
        per notebook; older ones are deleted when a new session starts.
        0 keeps all.""",
    ).tag(config=True)

    debug = Integer(
        0,
        help="""Diagnostics of the checkpointing core in the notebook's stderr
        (CKPT_DEBUG): 1 prints what each checkpoint saved, 2 every range.""",
    ).tag(config=True)

    python = Unicode(
        "",
        help="""The Python interpreter that runs the engine (it must have ipyckpt and
        IPython installed).  Default: the interpreter running the kernel's front.""",
    ).tag(config=True)

    startup_timeout = Float(
        120.0,
        help="""Seconds to wait for the engine to start or to be restored before
        giving up on it.""",
    ).tag(config=True)

    shutdown_timeout = Float(
        5.0,
        help="""Seconds the engine gets to end after SIGTERM at shutdown before it
        is killed with SIGKILL.""",
    ).tag(config=True)

    lock_timeout = Float(
        10.0,
        help="""Seconds a restarting kernel waits for the kernel that owned the
        checkpoints it restores to let go of them (a kernel being shut down).""",
    ).tag(config=True)

    @validate("period", "keep_sessions", "debug")
    def _not_negative(self, proposal):
        if proposal["value"] < 0:
            raise ValueError("c.IPyCkpt.%s cannot be negative" % proposal["trait"].name)
        return proposal["value"]
