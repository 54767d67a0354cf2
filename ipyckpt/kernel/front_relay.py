"""The front's relaying between Jupyter and the engine (see front.py):
requests sent to the engine and routed by id, the engine's output
published under the parent header of the request it belongs to, stdin
and comm messages forwarded."""
import asyncio

import zmq


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


class RelayMixin:
    """IPyCkptKernel's relaying; its state is set up in IPyCkptKernel.__init__."""

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

    def _send_iopub(self, parent, msg_type, content, metadata=None, buffers=None):
        self.session.send(self.iopub_socket, msg_type, content, parent=parent,
                          metadata=metadata or {}, buffers=buffers or None,
                          ident=self._topic(msg_type))

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

    # -- comms -------------------------------------------------------------------------

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
