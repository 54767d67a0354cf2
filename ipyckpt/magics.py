"""IPython magics: %checkpoint, %ckpt_period, %ckpt_status, %ckpt_list.

Loaded by ``%load_ext ipyckpt`` (and automatically by the ipyckpt kernel's
engine).  They work in any IPython running under the checkpointing core
(the "Python 3 (ipyckpt)" kernel, or ``ipyckpt run -- ipython``); anywhere
else, loading says what cannot work there and how to switch, without a
traceback.
"""
import os
import sys
import time

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from . import core
from .kernel.sessions import PREFIX_NAME, Session

KERNEL_NAME = "Python 3 (ipyckpt)"
RESTART_KERNEL_NAME = "Python 3 (ipyckpt, restart from checkpoint)"

NOT_AN_ENGINE = (
    "ipyckpt: this kernel does not run under ipyckpt's checkpointing core, so %%checkpoint, "
    "%%ckpt_period, %%ckpt_status and %%ckpt_list cannot work here (a checkpoint is the "
    "memory of a process started under the core).\n"
    "To use them, switch this notebook to the \"%s\" kernel: Kernel \u2192 Change Kernel "
    "\u2192 \"%s\" (if it is not listed, run `ipyckpt install --sys-prefix` or "
    "`ipyckpt install --user` in a terminal first).  The kernel loads these magics by "
    "itself." % (KERNEL_NAME, KERNEL_NAME))


def human_bytes(n):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return ("%d %s" % (n, unit)) if unit == "bytes" else ("%.1f %s" % (n, unit))
        n /= 1024.0
    return str(n)


def _when(t):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def current_session():
    """The session directory of this engine, or None outside the kernel."""
    d = os.environ.get("IPYCKPT_SESSION_DIR")
    if d:
        return Session(d)
    try:
        prefix = core.status().prefix
    except core.NotUnderCoreError:
        return None
    if os.path.basename(prefix) == PREFIX_NAME:
        return Session(os.path.dirname(prefix))
    return None


@magics_class
class CheckpointMagics(Magics):
    """Checkpoints of this whole kernel process."""

    @line_magic
    def checkpoint(self, line=""):
        """Take a checkpoint of the whole kernel now.

        Prints the epoch, the bytes written and the time it took.  When the
        kernel is later restarted from that checkpoint, it resumes right here
        and this prints "restored from checkpoint epoch N" instead.
        """
        if line.strip():
            raise UsageError("%checkpoint takes no arguments")
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            what = core.checkpoint()
        except core.CheckpointError as e:
            raise UsageError("checkpoint refused: %s (the previous checkpoint is intact)"
                             % e.strerror) from None
        st = core.status()
        if what is core.Checkpoint.RESTARTED:
            print("restored from checkpoint epoch %d" % st.restarted_from)
        else:
            print("checkpoint epoch %d: %s written in %.2f s"
                  % (st.epoch - 1, human_bytes(st.last_bytes), st.last_seconds))

    @line_magic
    def ckpt_period(self, line=""):
        """%ckpt_period [SECONDS]: take a checkpoint every SECONDS of this
        kernel's CPU time (0 turns it off); without an argument, show it."""
        arg = line.strip()
        if not arg:
            period = core.status().period
            print("automatic checkpoints: every %d s of CPU time" % period if period
                  else "automatic checkpoints: off (only %checkpoint)")
            return
        try:
            seconds = int(arg)
            if seconds < 0:
                raise ValueError
        except ValueError:
            raise UsageError("%%ckpt_period takes a whole number of seconds >= 0, not %r"
                             % arg) from None
        core.set_period(seconds)
        print("automatic checkpoints: every %d s of CPU time" % seconds if seconds
              else "automatic checkpoints: off")

    @line_magic
    def ckpt_status(self, line=""):
        """Show where checkpoints go and what the core has done."""
        st = core.status()
        session = current_session()
        rows = [
            ("checkpoints in", os.path.dirname(st.prefix)),
            ("notebook", os.environ.get("IPYCKPT_NOTEBOOK") or "(unknown)"),
            ("next epoch", str(st.epoch)),
            ("period", "%d s of CPU time" % st.period if st.period else "off"),
            ("taken by this process", str(st.checkpoints)),
            ("restored from epoch", "-" if st.restarted_from is None else str(st.restarted_from)),
            ("written since last", "%d pages (%s)" % (st.dirty_pages, human_bytes(st.dirty_bytes))),
        ]
        if st.checkpoints:
            rows.append(("last checkpoint", "%s in %.2f s" % (human_bytes(st.last_bytes),
                                                              st.last_seconds)))
        if session is not None:
            last = session.committed_epoch()
            rows.append(("latest on disk", "none" if last is None else
                         "epoch %d (%s)" % (last, _when(session.commit_time()))))
        rows.append(("engine pid", str(os.getpid())))
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            print("%-*s  %s" % (width, k, v))

    @line_magic
    def ckpt_list(self, line=""):
        """List this kernel's checkpoints: epoch, time, data size, running cell."""
        session = current_session()
        if session is None:
            print("ipyckpt: no session folder is known for this process")
            return
        epochs = session.epochs()
        if not epochs:
            print("no checkpoint yet in %s (take one with %%checkpoint)" % session.path)
            return
        log = session.log()
        print("checkpoints in %s" % session.path)
        print("%5s  %-19s  %10s  %s" % ("epoch", "time", "data", "running"))
        for e, when, size in epochs:
            rec = log.get(e)
            if rec is None:
                running = "(not logged yet)"
            elif rec.get("kind") == "execute":
                running = "cell [%s] %s" % (rec.get("cell"), rec.get("first_line") or "")
            else:
                running = "(%s request)" % rec.get("kind")
            print("%5d  %-19s  %10s  %s" % (e, _when(when), human_bytes(size), running))

    @line_magic
    def ckpt_restore(self, line=""):
        """Bring back the latest checkpoint of a kernel whose engine died.

        Handled by the kernel's front when the engine is gone; while it is
        alive there is nothing to restore into.
        """
        print("ipyckpt: the engine is alive, so there is nothing to restore.  %ckpt_restore "
              "is for a kernel whose engine died; to go back to a checkpoint of this one, "
              "restart the kernel with the \"%s\" kernel." % RESTART_KERNEL_NAME)


@magics_class
class UnavailableMagics(Magics):
    """The same names, outside the core: each says why it cannot work here."""

    def _explain(self, line=""):
        print(NOT_AN_ENGINE)

    checkpoint = line_magic("checkpoint")(_explain)
    ckpt_period = line_magic("ckpt_period")(_explain)
    ckpt_status = line_magic("ckpt_status")(_explain)
    ckpt_list = line_magic("ckpt_list")(_explain)
    ckpt_restore = line_magic("ckpt_restore")(_explain)


def load_ipython_extension(ip):
    if core.available():
        ip.register_magics(CheckpointMagics)
    else:
        ip.register_magics(UnavailableMagics)
        print(NOT_AN_ENGINE)
