"""The engine's life as the front sees it (see front.py): starting it
fresh or from a checkpoint, what a restore resumed (its output kept for
the next cell, which adopts it), the notices waiting for that cell, the
engine's death and %ckpt_restore."""
import asyncio
import os
import signal

from .. import launch
from . import notices, sessions
from .front_relay import Request
from .supervisor import EngineProcess, describe_exit


class LifecycleMixin:
    """IPyCkptKernel's engine life; its state is set up in IPyCkptKernel.__init__."""

    BACKLOG_LIMIT = 4 << 20  # characters of unseen stream output kept

    # -- start-up ------------------------------------------------------------

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

    # -- the engine's hello, and restores ----------------------------------------

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

    # -- output and notices waiting for a cell; adopting a restored cell -----------

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
