"""The engine's IPython shell and its outputs: the parts of ipykernel's
ZMQInteractiveShell a notebook relies on, rebuilt over the engine's channel
instead of ZMQ sockets and an IOPub thread (the engine must stay
single-threaded, DESIGN §4 trap 6).

Every output object calls ``shell.engine.publish(msg_type, content, ...)``;
the engine tags it with the request being served and the front gives it the
parent header of that request.
"""
import io
import os
import sys

from IPython.core import page
from IPython.core.displayhook import DisplayHook
from IPython.core.displaypub import DisplayPublisher
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from traitlets import Any, CBool, Type

from .channel import write_all


class PipeBinary(io.RawIOBase):
    """sys.stdout.buffer: raw writes to a pipe, all bytes, no buffering."""

    def __init__(self, fd):
        super().__init__()
        self._fd = fd

    def writable(self):
        return True

    def fileno(self):
        return self._fd

    def write(self, b):
        write_all(self._fd, b)
        return len(b)


class PipeText(io.TextIOBase):
    """sys.stdout / sys.stderr of the engine: every write goes to the pipe at
    once.  Nothing is held back in Python buffers, so output streams live
    and, in a memory image, no half-sent text is waiting for the old front.
    C-level writes to the same descriptor reach the same pipe."""

    def __init__(self, fd, name):
        super().__init__()
        self.buffer = PipeBinary(fd)
        self._name = name

    @property
    def name(self):
        return self._name

    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "backslashreplace"

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        return self.buffer.fileno()

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        if s:
            self.buffer.write(s.encode("utf-8", "backslashreplace"))
        return len(s)

    def flush(self):
        pass


class EngineDisplayPublisher(DisplayPublisher):
    """display(), update_display() and clear_output() as iopub messages."""

    def _flush_streams(self):
        sys.stdout.flush()
        sys.stderr.flush()

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False,
                **kwargs):
        self._flush_streams()
        self._validate_data(data, metadata)
        content = {"data": data, "metadata": metadata or {}, "transient": transient or {}}
        self.shell.engine.publish("update_display_data" if update else "display_data", content)

    def clear_output(self, wait=False):
        self._flush_streams()
        self.shell.engine.publish("clear_output", {"wait": bool(wait)})


class EngineDisplayHook(DisplayHook):
    """The value of a cell's last expression, as execute_result."""

    msg = None

    def start_displayhook(self):
        self.msg = {"data": {}, "metadata": {}, "execution_count": None}

    def write_output_prompt(self):
        if self.msg is not None:
            self.msg["execution_count"] = self.prompt_count

    def write_format_data(self, format_dict, md_dict=None):
        if self.msg is not None:
            self.msg["data"] = format_dict
            self.msg["metadata"] = md_dict or {}

    def finish_displayhook(self):
        sys.stdout.flush()
        sys.stderr.flush()
        msg, self.msg = self.msg, None
        if msg and msg["data"]:
            self.shell.engine.publish("execute_result", msg)


class EngineShell(InteractiveShell):
    """InteractiveShell whose outputs go to the front over the channel."""

    displayhook_class = Type(EngineDisplayHook)
    display_pub_class = Type(EngineDisplayPublisher)
    # the engine, set right after construction (publish, payloads)
    engine = Any()
    # libraries look for a kernel object on the shell; there is none in here
    kernel = None
    readline_use = CBool(False)
    autoindent = CBool(False)

    # As ZMQInteractiveShell: the terminal niceties make no sense in a notebook.
    def init_environment(self):
        env = os.environ
        env["TERM"] = "xterm-color"
        env["CLICOLOR"] = "1"
        env["FORCE_COLOR"] = "1"
        env["CLICOLOR_FORCE"] = "1"
        env["PAGER"] = "cat"
        env["GIT_PAGER"] = "cat"

    def init_virtualenv(self):
        """A kernel runs in the environment it was installed in."""

    def init_hooks(self):
        super().init_hooks()
        # obj? and %page show their text in the notebook's pager, as a payload
        self.set_hook("show_in_pager", page.as_hook(self._page_payload), 99)

    def _page_payload(self, strg, start=0, screen_lines=0, pager_cmd=None):
        data = strg if isinstance(strg, dict) else {"text/plain": strg}
        self.payload_manager.write_payload({"source": "page", "data": data, "start": max(0, start)})

    def set_next_input(self, text, replace=False):
        self.payload_manager.write_payload(
            {"source": "set_next_input", "text": text, "replace": replace})

    def ask_exit(self):
        """exit / quit: ask the notebook to shut the kernel down."""
        self.exit_now = True
        self.payload_manager.write_payload({"source": "ask_exit", "keepkernel": False})

    def enable_gui(self, gui=None):
        # A GUI event loop would need a thread or an input hook polling in
        # the background; the engine is a plain single-threaded loop.
        if gui in (None, "inline"):
            return
        raise UsageError(
            "the ipyckpt engine cannot run a %r GUI event loop (it stays single-threaded so "
            "that it can be checkpointed); use %%matplotlib inline" % gui)

    def run_cell(self, *args, **kwargs):
        self._last_traceback = None
        self._last_traceback_during_displayhook = False
        return super().run_cell(*args, **kwargs)

    def _showtraceback(self, etype, evalue, stb):
        sys.stdout.flush()
        sys.stderr.flush()
        if getattr(self.displayhook, "msg", None) is not None:
            # an error while formatting the cell's value fails the cell
            self._last_traceback_during_displayhook = True
        self.engine.publish("error", {"traceback": stb, "ename": str(etype.__name__),
                                      "evalue": str(evalue)})
        self._last_traceback = stb
