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

import zmq
from ipykernel.kernelbase import Kernel
from traitlets import Any, Bool

from .. import __version__, launch
from ..config import IPyCkpt
from . import notices, sessions
from .supervisor import EngineProcess, describe_exit

RESTORE_COMMAND = "%ckpt_restore"


class Request:
    """A request the engine will answer, and where its output goes."""

    def __init__(self, rid, kind, parent, ident, future, allow_stdin=False, count=None):
        self.id = rid
        self.kind = kind
        self.parent = parent
        self.ident = ident
        self.future = future
        self.allow_stdin = allow_stdin
        self.count = count


class StreamRelay:
    """Engine stdout/stderr as stream messages: coalesced for a short while
    (a loop of prints is not a flood of messages), always flushed before any
    other message so that output keeps its order."""

    DELAY = 0.05

    def __init__(self, loop, publish):
        self.loop = loop
        self.publish = publish
        self.chunks = []
        self.handle = None

    def add(self, name, text):
        if self.chunks and self.chunks[-1][0] == name:
            self.chunks[-1][1].append(text)
        else:
            self.chunks.append((name, [text]))
        if self.handle is None:
            self.handle = self.loop.call_later(self.DELAY, self.flush)

    def flush(self):
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        chunks, self.chunks = self.chunks, []
        for name, parts in chunks:
            self.publish(name, "".join(parts))


class IPyCkptKernel(Kernel):
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
    BACKLOG_LIMIT = 4 << 20  # characters of unseen stream output kept

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

    async def _boot(self):
        try:
            if self.restart_from_checkpoint:
                await self._boot_restore()
            else:
                await self._start_fresh()
        except Exception as e:
            self.log.exception("ipyckpt: starting the engine")
            self.state = "dead"
            self._death = {"pid": None, "how": "could not be started (%s)" % e, "cell": None}
            self._notices.append((notices.startup_failed(self._death["how"], ""), "error"))
        finally:
            self._settled.set()

    async def _boot_restore(self):
        s = sessions.latest_committed(self.root)
        if s is None:
            await self._start_fresh(lambda new: notices.fresh_no_checkpoint(
                self.notebook, self.root, new.path))
            return
        if not s.lock(self.settings.lock_timeout):
            await self._start_fresh(lambda new: notices.busy_session(s.path, new.path))
            return
        epoch = s.committed_epoch()
        ok, why = await self._start_engine(s, restart=True)
        if ok:
            return
        s.unlock()
        await self._start_fresh(lambda new: notices.refused(s.path, epoch, why, new.path))

    async def _start_fresh(self, notice=None):
        """A new engine in a new session directory (never over older files)."""
        self._release_session()
        s = sessions.new_session(self.root, self.notebook, self.python,
                                 {"restart_kernel": bool(self.restart_from_checkpoint)})
        s.lock(0)
        try:
            sessions.prune(self.root, self.settings.keep_sessions, protect=[s])
        except OSError as e:
            self.log.warning("ipyckpt: pruning old sessions in %s: %s", self.root, e)
        if notice is not None:
            self._notices.append((notice(s), "warning"))
        ok, why = await self._start_engine(s, restart=False)
        if not ok:
            self._notices.append((notices.startup_failed(why, ""), "error"))
        return ok

    def _release_session(self):
        if self.ckpt_session is not None:
            self.ckpt_session.unlock()
            self.ckpt_session = None

    def _engine_env(self, session, restart):
        exe = launch.intended_executable(self.python)
        base = dict(os.environ)
        base.update({
            "IPYCKPT_SESSION_DIR": session.path,
            "IPYCKPT_NOTEBOOK": self.notebook or "",
            # matplotlib figures inline, as ipykernel arranges it
            "MPLBACKEND": os.environ.get("MPLBACKEND")
            or "module://matplotlib_inline.backend_inline",
        })
        for key in ("JPY_PARENT_PID", "JPY_INTERRUPT_EVENT"):
            base.pop(key, None)
        return launch.core_environment(
            session.prefix, exe, period=None if restart else self.settings.period,
            restart=restart, debug=self.settings.debug, notify=int(signal.SIGUSR2), base=base)

    async def _start_engine(self, session, restart):
        """Start (or restore) the engine of `session`; (True, "") once it is
        up, (False, why) if it ended first."""
        self.ckpt_session = session
        self._hello = self.loop.create_future()
        self._startup_output = []
        self._death = None
        self._inflight.clear()
        self._restored = None
        engine = EngineProcess(self.loop, self._on_message, self._on_output, self._on_exit,
                               self.log)
        self.engine = engine
        self.state = "starting"
        try:
            argv = launch.command([self.python, "-m", "ipyckpt.kernel.engine"])
            engine.spawn(argv, self._engine_env(session, restart))
        except (OSError, launch.LaunchError) as e:
            self.state = "dead"
            self._startup_output = None
            self._death = {"pid": None, "how": "could not be started (%s)" % e, "cell": None}
            return False, self._death["how"]
        session.write_pid(engine.pid)
        self.log.info("ipyckpt: engine pid %d (%s) in %s", engine.pid,
                      "restoring" if restart else "fresh", session.path)
        try:
            hello = await asyncio.wait_for(asyncio.shield(self._hello),
                                           self.settings.startup_timeout)
        except asyncio.TimeoutError:
            engine.signal(signal.SIGKILL)
            await engine.wait(10)
            hello = None
            why = "did not start within %d s" % self.settings.startup_timeout
        output, self._startup_output = "".join(self._startup_output or []), None
        if hello is None or not engine.alive:
            if hello is not None or engine.returncode is not None:
                why = describe_exit(engine.returncode)
            if output.strip():
                why += ":\n" + output
            self.state = "dead"
            self._death = {"pid": engine.pid, "how": describe_exit(engine.returncode),
                           "cell": None}
            return False, why
        if output:
            self._to_backlog("stream", {"name": "stdout", "text": output}, {}, [])
        self.state = "ready"
        return True, ""

    # -- messages from the engine --------------------------------------------

    def _on_message(self, msg, buffers):
        self._stream.flush()
        t = msg.get("t")
        if t == "iopub":
            self._publish(msg.get("id"), msg["msg_type"], msg.get("content", {}),
                          msg.get("metadata", {}), buffers)
        elif t == "reply":
            self._on_reply(msg)
        elif t == "input_request":
            self._on_input_request(msg)
        elif t == "ready":
            self._on_ready(msg)
        elif t == "restored":
            self._on_restored(msg)
        else:
            self.log.warning("ipyckpt: unknown message from the engine: %r", t)

    def _on_ready(self, msg):
        self._banner = msg.get("banner")
        self._next_count = msg.get("next_count", self._next_count)
        if not msg.get("under_core"):
            self._notices.append(("ipyckpt: the engine is not running under the checkpointing "
                                  "core; checkpoints are not possible", "error"))
        if msg.get("restarted_from") is not None:
            # restored from a checkpoint taken while the engine was starting
            self._note_restore(msg.get("pid"), msg["restarted_from"], None, self._next_count)
        if self._hello is not None and not self._hello.done():
            self._hello.set_result(msg)

    def _on_restored(self, msg):
        self._next_count = msg.get("next_count", self._next_count)
        running = msg.get("running")
        if running and running.get("id") is not None:
            self._restored = {"running": running, "future": self.loop.create_future()}
            if running["id"] not in self._inflight:
                self._inflight.appendleft(running["id"])
        self._note_restore(msg.get("pid"), msg.get("epoch"), running, self._next_count)
        if self._hello is not None and not self._hello.done():
            self._hello.set_result(msg)

    def _note_restore(self, pid, epoch, running, next_count):
        if pid is not None and pid == self._restore_seen_pid:
            return  # already said (a restore seen by both the hello and the handler)
        self._restore_seen_pid = pid
        where = self.ckpt_session.path if self.ckpt_session else "?"
        self._notices.append((notices.restored(epoch, where, next_count, running), "info"))

    def _on_reply(self, msg):
        rid = msg.get("id")
        self._next_count = msg.get("next_count", self._next_count)
        try:
            self._inflight.remove(rid)
        except ValueError:
            pass
        req = self._requests.pop(rid, None)
        content = msg.get("content")
        if req is not None:
            if not req.future.done():
                req.future.set_result(content)
        elif self._restored is not None and self._restored["running"].get("id") == rid:
            if not self._restored["future"].done():
                self._restored["future"].set_result(content)
            if self._restored["running"].get("kind") != "execute":
                self._restored = None  # nothing for a cell to show but its output
        # else: the reply of a shutdown request, or of a restored non-cell request

    def _on_output(self, name, text):
        if self._startup_output is not None:
            self._startup_output.append(text)
        else:
            self._stream.add(name, text)

    def _publish_stream(self, name, text):
        rid = self._inflight[0] if self._inflight else None
        self._publish(rid, "stream", {"name": name, "text": text}, {}, [])

    def _publish(self, rid, msg_type, content, metadata, buffers):
        req = self._requests.get(rid) if rid is not None else None
        if req is None:
            # a restored request not yet shown, or output between requests
            self._to_backlog(msg_type, content, metadata, buffers)
            return
        self._send_iopub(req.parent, msg_type, content, metadata, buffers)

    def _to_backlog(self, msg_type, content, metadata, buffers):
        """Keep output for the next cell, within BACKLOG_LIMIT characters of
        stream text (a resumed cell may print for hours before anyone looks)."""
        self._backlog.append((msg_type, content, metadata, buffers))
        if msg_type != "stream":
            return
        self._backlog_chars += len(content.get("text", ""))
        while self._backlog_chars > self.BACKLOG_LIMIT:
            for i, (t, c, _, _) in enumerate(self._backlog):
                if t == "stream" and not c.get("ipyckpt_dropped"):
                    self._backlog_chars -= len(c.get("text", ""))
                    self._dropped_chars += len(c.get("text", ""))
                    del self._backlog[i]
                    break
            else:
                break
        if self._dropped_chars:
            marker = "[ipyckpt: %d earlier characters of output were dropped]\n" \
                % self._dropped_chars
            self._backlog = [b for b in self._backlog if not b[1].get("ipyckpt_dropped")]
            self._backlog.insert(0, ("stream", {"name": "stderr", "text": marker,
                                                "ipyckpt_dropped": True}, {}, []))

    def _send_iopub(self, parent, msg_type, content, metadata=None, buffers=None):
        self.session.send(self.iopub_socket, msg_type, content, parent=parent,
                          metadata=metadata or {}, buffers=buffers or None,
                          ident=self._topic(msg_type))

    # -- the engine's death --------------------------------------------------

    def _on_exit(self, code):
        self._stream.flush()
        engine = self.engine
        if self.state in ("stopping", "stopped"):
            self.state = "stopped"
            return
        if self._hello is not None and not self._hello.done():
            self._hello.set_result(None)  # died while starting: _start_engine reports it
            return
        how = (engine.reason if engine is not None else None) or describe_exit(code)
        running = None
        if self._inflight:
            head = self._requests.get(self._inflight[0])
            if head is not None and head.kind == "execute":
                running = head.count
            elif self._restored and self._restored["running"].get("id") == self._inflight[0]:
                running = self._restored["running"].get("count")
        self.state = "dead"
        self._death = {"pid": engine.pid if engine else None, "how": how, "cell": running}
        self.log.warning("ipyckpt: the engine (pid %s) %s", self._death["pid"], how)
        text = notices.death(self._death["pid"], how, running, self._latest())
        error = self._error_content("EngineDied", text)
        shown = False
        for rid in list(self._inflight):
            req = self._requests.pop(rid, None)
            if req is None:
                continue
            if req.kind == "execute":
                if not shown:  # the cell that was running says what happened
                    self._send_iopub(req.parent, "error", error)
                    shown = True
                req.future.set_result(dict(error, execution_count=req.count or 0))
            elif not req.future.done():
                req.future.set_result(None)
        if self._restored is not None and not self._restored["future"].done():
            self._restored["future"].set_result(dict(error, execution_count=0))
        for rid, req in list(self._requests.items()):  # ids that never reached the engine
            if not req.future.done():
                req.future.set_result(None)
        self._requests.clear()
        self._inflight.clear()
        if not shown:  # died between cells: say it at the next one
            self._notices.append((text, "error"))

    def _latest(self):
        """(epoch, time, session path) of the session's newest checkpoint, or None."""
        if self.ckpt_session is None:
            return None
        e = self.ckpt_session.committed_epoch()
        if e is None:
            return None
        return e, self.ckpt_session.commit_time(), self.ckpt_session.path

    @staticmethod
    def _error_content(ename, text):
        return {"status": "error", "ename": ename, "evalue": text.splitlines()[0],
                "traceback": text.splitlines(), "user_expressions": {}, "payload": []}

    # -- requests to the engine -------------------------------------------------

    def _submit(self, kind, fields, parent, ident, buffers=(), allow_stdin=False, count=None):
        # unique across fronts: a restored engine serves a request of an
        # earlier front, whose ids must never be mistaken for ours
        rid = "%s-%d" % (self._id_prefix, next(self._ids))
        req = Request(rid, kind, parent, ident, self.loop.create_future(), allow_stdin, count)
        self._requests[rid] = req
        self._inflight.append(rid)
        msg = dict(fields, t=kind, id=rid)
        if not self.engine.send(msg, buffers):
            self._requests.pop(rid, None)
            self._inflight.remove(rid)
            req.future.set_result(None)
        return req

    def _engine_free(self):
        """The engine can answer a query now (not while a resumed cell that
        no execution has taken over yet keeps it busy)."""
        return self.state == "ready" and (self._restored is None
                                          or self._restored["future"].done())

    async def _ask(self, kind, fields):
        """A query whose reply content is returned (None if the engine is gone)."""
        await self._settled.wait()
        if not self._engine_free():
            return None
        req = self._submit(kind, fields, self.get_parent("shell"),
                           self._get_shell_context_var(self._shell_parent_ident))
        return await req.future

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

    def _show_pending(self, parent):
        """Notices and output waiting for a cell to be shown in, under this one."""
        self._stream.flush()
        items, self._notices = self._notices, []
        for text, kind in items:
            self._send_iopub(parent, "display_data", notices.as_display(text, kind))
        backlog, self._backlog = self._backlog, []
        self._backlog_chars = self._dropped_chars = 0
        for msg_type, content, metadata, buffers in backlog:
            content.pop("ipyckpt_dropped", None)
            self._send_iopub(parent, msg_type, content, metadata, buffers)

    async def _adopt_restored(self, parent, ident, allow_stdin, silent):
        """A cell resumed by a restore is still running (or has finished
        unseen): show it under this request, wait for it to end."""
        restored = self._restored
        rid = restored["running"]["id"]
        if silent:  # not for the user's eyes: just wait for the engine
            content = await restored["future"]
            return content
        self._show_pending(parent)
        if not restored["future"].done():
            req = Request(rid, restored["running"].get("kind"), parent, ident,
                          restored["future"], allow_stdin, restored["running"].get("count"))
            self._requests[rid] = req
            held = self._held_input.pop(rid, None)
            if held is not None:
                self._on_input_request(held)
        content = await restored["future"]
        self._stream.flush()
        self._restored = None
        self._requests.pop(rid, None)
        return content

    async def _restore_command(self, parent, ident, allow_stdin):
        """%ckpt_restore, while the engine is dead: bring it back from the
        session's latest checkpoint (handled here: there is no engine to run it)."""
        session = self.ckpt_session
        epoch = session.committed_epoch() if session is not None else None
        if epoch is None:
            ok = await self._start_fresh(
                lambda new: notices.fresh_after_restore_request(new.path))
        else:
            ok, why = await self._start_engine(session, restart=True)
            if not ok:
                ok = await self._start_fresh(lambda new: notices.refused(
                    session.path, epoch, why, new.path))
        if self._restored is not None:
            content = await self._adopt_restored(parent, ident, allow_stdin, False)
            if content and content.get("status") == "error":
                return dict(content, execution_count=self._next_count - 1)
        else:
            self._show_pending(parent)
        if not ok:
            return dict(self._error_content("NoEngine", "ipyckpt: the engine could not start"),
                        execution_count=self._next_count)
        return {"status": "ok", "execution_count": self._next_count - 1, "payload": [],
                "user_expressions": {}}

    # -- stdin -------------------------------------------------------------------

    def _on_input_request(self, msg):
        req = self._requests.get(msg.get("id"))
        if req is None:
            # a restored cell waiting for input: ask once it is shown
            self._held_input[msg.get("id")] = msg
            return
        if not req.allow_stdin:
            self.engine.send({"t": "input_reply", "value": "\x04"})
            return
        if self._stdin_task is not None:
            self._stdin_task.cancel()
        self._stdin_task = self.loop.create_task(
            self._relay_input(req, msg.get("prompt", ""), bool(msg.get("password"))))

    async def _relay_input(self, req, prompt, password):
        """Kernel._input_request, made asynchronous: the front keeps relaying
        the engine's output and notices an interrupted or dead engine while
        the user types."""
        while True:  # purge stale replies
            try:
                self.stdin_socket.recv_multipart(zmq.NOBLOCK)
            except zmq.ZMQError:
                break
        self.session.send(self.stdin_socket, "input_request",
                          {"prompt": prompt, "password": password}, req.parent, ident=req.ident)
        while not req.future.done():
            ident, reply = self.session.recv(self.stdin_socket, zmq.NOBLOCK)
            if reply is not None:
                try:
                    value = reply["content"]["value"]
                except (KeyError, TypeError):
                    value = ""
                self.engine.send({"t": "input_reply", "value": value})
                return
            await asyncio.sleep(0.02)

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

    async def _forward_comm(self, kind, ident, parent):
        """Comm messages go to the engine in order.  The front waits for the
        engine to have handled one, so that what its callbacks output comes
        before the request's idle status, as with ipykernel.  While a cell
        runs, ipykernel dispatches comm messages concurrently: the engine
        serves them after the cell, and only this handler waits.  While a
        restored cell runs unseen, nothing waits for it (the user's next
        execution must be able to take over that cell)."""
        if self.state != "ready":
            return
        buffers = [bytes(b) for b in (parent.get("buffers") or [])]
        req = self._submit(kind, {"content": parent.get("content", {}),
                                  "metadata": parent.get("metadata", {}),
                                  "header": parent.get("header", {})},
                           parent, ident, buffers=buffers)
        if self._restored is None:
            await req.future

    async def comm_open(self, stream, ident, parent):
        await self._forward_comm("comm_open", ident, parent)

    async def comm_msg(self, stream, ident, parent):
        await self._forward_comm("comm_msg", ident, parent)

    async def comm_close(self, stream, ident, parent):
        await self._forward_comm("comm_close", ident, parent)

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
