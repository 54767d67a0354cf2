"""The front: the Jupyter side of the ipyckpt kernel (DESIGN §2).

An ipykernel Kernel (heartbeat, control, shell, stdin and IOPub come from
ipykernel) that runs no user code itself.  It starts the engine, forwards
each request to it over the channel, and publishes the engine's output with
the parent header of the request it belongs to.  It is never checkpointed,
so it outlives the engine: it notices when the engine dies, reports it in
the notebook and can bring the engine back from its latest checkpoint.

Routing.  Every request sent to the engine gets an id; the engine serves
requests one at a time in the order they were sent and tags every message
with the id it is serving.  The front keeps those ids in `_inflight` (the
engine's queue, as the front sees it) and the request records in
`_requests`.  An id the front never issued comes from a *restored* engine:
a checkpoint taken mid-request resumes that request, whose parent header
belongs to a front that no longer exists.  Its output waits in `_backlog`
until the user next executes a cell, which then shows a notice, the backlog
and the rest of the restored cell's live output, re-parented to it.
"""
import asyncio
import itertools
import os
import signal
import sys
import uuid
from collections import deque

from ipykernel.kernelbase import Kernel
from traitlets import Any, Bool

from .. import __version__
from ..config import IPyCkpt
from . import notices, sessions
from .front_lifecycle import LifecycleMixin
from .front_relay import RelayMixin, StreamRelay

RESTORE_COMMAND = "%ckpt_restore"


class IPyCkptKernel(LifecycleMixin, RelayMixin, Kernel):
    """Jupyter's requests and their replies.  Relaying to and from the engine
    is in RelayMixin (front_relay); the engine's start-up, death and restores
    are in LifecycleMixin (front_lifecycle)."""

    implementation = "ipyckpt"
    implementation_version = __version__
    language_info = {
        "name": "python",
        "version": sys.version.split()[0],
        "mimetype": "text/x-python",
        "codemirror_mode": {"name": "ipython", "version": sys.version_info[0]},
        "pygments_lexer": "ipython%d" % sys.version_info[0],
        "nbconvert_exporter": "python",
        "file_extension": ".py",
    }
    help_links = [
        {"text": "Python Reference", "url": "https://docs.python.org/%d.%d"
         % sys.version_info[:2]},
        {"text": "IPython Reference", "url": "https://ipython.org/documentation.html"},
    ]
    msg_types = Kernel.msg_types + ["comm_open", "comm_msg", "comm_close"]

    restart_from_checkpoint = Bool(
        False,
        help="""Start the engine from the latest checkpoint of this notebook instead
        of fresh (the "restart from checkpoint" kernelspec sets it with --restart).""",
    ).tag(config=True)

    # passed by IPKernelApp.init_kernel; the front has no user namespace
    user_ns = Any()
    debugpy_stream = Any()

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.settings = IPyCkpt(parent=self)
        self.loop = None
        self.engine = None
        self.state = "starting"  # starting | ready | dead | stopping | stopped
        self.ckpt_session = None
        self.notebook = sessions.notebook_path()
        self.root = sessions.checkpoint_root(self.settings.checkpoint_dir, self.notebook)
        self.python = self.settings.python or sys.executable
        self._ids = itertools.count(1)
        self._id_prefix = uuid.uuid4().hex[:12]
        self._requests = {}
        self._inflight = deque()
        self._backlog = []
        self._backlog_chars = 0
        self._dropped_chars = 0
        self._notices = []
        self._held_input = {}
        self._startup_output = None  # collects output while the engine starts
        self._hello = None
        self._restored = None  # {"running": ..., "future": ...} of a resumed request
        self._restore_seen_pid = None
        self._next_count = 1
        self._death = None
        self._banner = None
        self._settled = None
        self._stdin_task = None

    # -- the count, as IPythonKernel: the engine's shell owns it -------------

    @property
    def execution_count(self):
        return self._next_count

    @execution_count.setter
    def execution_count(self, value):
        pass  # Kernel.execute_request increments; the engine's count rules

    @property
    def banner(self):
        return self._banner or "ipyckpt kernel (engine starting)"

    @property
    def kernel_info(self):
        info = super().kernel_info
        # one engine, one thread: no subshells; no debugpy in the engine
        info["supported_features"] = [f for f in info.get("supported_features", [])
                                      if f not in ("kernel subshells", "debugger")]
        return info

    # ipykernel sets SIGINT to raise KeyboardInterrupt around each handler;
    # in the front that would interrupt the event loop itself.  The front
    # ignores SIGINT; interrupts are for the engine.
    def pre_handler_hook(self):
        pass

    def post_handler_hook(self):
        pass

    # -- start-up ------------------------------------------------------------

    def start(self):
        super().start()
        self.loop = self.io_loop.asyncio_loop
        self._settled = asyncio.Event()
        self._stream = StreamRelay(self.loop, self._publish_stream)
        self.loop.create_task(self._boot())

    # -- execute -----------------------------------------------------------------

    async def execute_request(self, stream, ident, parent):
        # The engine must be up (or known to be dead) before Kernel publishes
        # execute_input with the execution count the engine will use.
        await self._settled.wait()
        await super().execute_request(stream, ident, parent)

    async def do_execute(self, code, silent, store_history=True, user_expressions=None,
                         allow_stdin=False, *, cell_meta=None, cell_id=None):
        parent = self.get_parent("shell")
        ident = self._get_shell_context_var(self._shell_parent_ident)
        if self._restored is not None:
            content = await self._adopt_restored(parent, ident, allow_stdin, silent)
            if content and content.get("status") == "error" and (
                    content.get("ename") in ("KeyboardInterrupt", "EngineDied")):
                return dict(content, execution_count=self._next_count - 1)
        elif not silent:
            self._show_pending(parent)
        if code.strip() == RESTORE_COMMAND and self.state == "dead":
            return await self._restore_command(parent, ident, allow_stdin)
        if self.state != "ready":
            text = notices.dead(self._death["pid"] if self._death else None,
                                self._death["how"] if self._death else "is not running",
                                self._latest())
            error = self._error_content("NoEngine", text)
            self._send_iopub(parent, "error", error)
            return dict(error, execution_count=self._next_count)
        req = self._submit("execute", {
            "code": code, "silent": silent, "store_history": store_history,
            "user_expressions": user_expressions or {}, "allow_stdin": allow_stdin,
        }, parent, ident, allow_stdin=allow_stdin, count=self._next_count)
        content = await req.future
        if content is None:
            content = self._error_content("EngineDied", "ipyckpt: the engine is gone")
        return content

    # -- the other shell requests ---------------------------------------------------

    async def do_complete(self, code, cursor_pos):
        content = await self._ask("complete", {"code": code, "cursor_pos": cursor_pos})
        if content is None:
            pos = len(code) if cursor_pos is None else cursor_pos
            return {"matches": [], "cursor_start": pos, "cursor_end": pos, "metadata": {},
                    "status": "ok"}
        return content

    async def do_inspect(self, code, cursor_pos, detail_level=0, omit_sections=()):
        content = await self._ask("inspect", {"code": code, "cursor_pos": cursor_pos,
                                              "detail_level": detail_level,
                                              "omit_sections": list(omit_sections)})
        return content or {"status": "ok", "data": {}, "metadata": {}, "found": False}

    async def do_is_complete(self, code):
        content = await self._ask("is_complete", {"code": code})
        if content is None:  # no engine to ask: IPython's rules, here
            from IPython.core.inputtransformer2 import TransformerManager

            status, indent = TransformerManager().check_complete(code)
            content = {"status": status}
            if status == "incomplete":
                content["indent"] = " " * (indent or 0)
        return content

    async def do_history(self, hist_access_type, output, raw, session=None, start=None,
                         stop=None, n=None, pattern=None, unique=False):
        content = await self._ask("history", {
            "hist_access_type": hist_access_type, "output": output, "raw": raw,
            "session": session, "start": start, "stop": stop, "n": n, "pattern": pattern,
            "unique": unique})
        return content or {"status": "ok", "history": []}

    async def comm_info_request(self, stream, ident, parent):
        target = parent["content"].get("target_name")
        content = await self._ask("comm_info", {"target_name": target})
        self.session.send(stream, "comm_info_reply", content or {"status": "ok", "comms": {}},
                          parent, ident)

    # -- control ---------------------------------------------------------------------

    def _send_interrupt_children(self):
        """SIGINT for the engine (and whatever it started): the front's own
        group when it leads one (the front ignores SIGINT), else the engine."""
        engine = self.engine
        pgid = os.getpgid(0)
        if pgid == os.getpid():
            os.killpg(pgid, signal.SIGINT)
        elif engine is not None and engine.alive:
            engine.signal(signal.SIGINT)

    async def do_shutdown(self, restart):
        # Called on the control thread; the engine lives on the main loop.
        if self.loop is not None and self.loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self._stop_engine(), self.loop)
            try:
                await asyncio.wait_for(asyncio.wrap_future(fut),
                                       self.settings.shutdown_timeout + 15)
            except Exception:
                self.log.exception("ipyckpt: stopping the engine")
        return {"status": "ok", "restart": restart}

    async def _stop_engine(self):
        self.state = "stopping"
        if self.engine is not None:
            await self.engine.stop(1.0, self.settings.shutdown_timeout)
        self.state = "stopped"
        self._release_session()

    def cleanup(self):
        """At exit of the front: no engine outlives it."""
        if self.engine is not None:
            self.state = "stopping"
            self.engine.kill_now()

    async def do_debug_request(self, msg):
        return {"type": "response", "success": False,
                "message": "the ipyckpt kernel has no debugger"}

    async def create_subshell_request(self, socket, ident, parent):
        self.session.send(socket, "create_subshell_reply", {
            "status": "error", "ename": "NotImplementedError",
            "evalue": "the ipyckpt kernel runs one engine: no subshells", "traceback": []},
            parent, ident)

    async def list_subshell_request(self, socket, ident, parent):
        self.session.send(socket, "list_subshell_reply", {"status": "ok", "subshell_id": []},
                          parent, ident)

    async def delete_subshell_request(self, socket, ident, parent):
        self.session.send(socket, "delete_subshell_reply", {
            "status": "error", "ename": "NotImplementedError",
            "evalue": "the ipyckpt kernel has no subshells", "traceback": []}, parent, ident)
