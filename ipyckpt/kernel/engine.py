"""The engine: a single-threaded CPython running IPython's InteractiveShell
with the checkpointing core preloaded.  It holds all the user's state; the
front starts it as

    setarch --addr-no-randomize <python> -m ipyckpt.kernel.engine

under the core's environment (see launch.core_environment), with its links
at fixed descriptors (see channel.py).  A checkpoint is this whole process;
a restart of it resumes wherever the checkpoint was taken - idle, inside
%checkpoint, or in the middle of a cell's loop for a periodic one - and the
core then raises NOTIFY_SIGNAL so that the engine can tell its new front.

The engine serves one request at a time, in the order the front sent them:
the front relies on that order to give every output the right parent.
"""
import signal

from .channel import NOTIFY_SIGNAL

# First thing of all: a periodic checkpoint may land while IPython is still
# being imported, and a process restored from it gets NOTIFY_SIGNAL, whose
# default disposition would end it.  The Engine installs its real handler
# once it exists; until then a restore is simply noted (the hello says it).
signal.signal(NOTIFY_SIGNAL, lambda signum, frame: None)

import builtins  # noqa: E402
import ctypes  # noqa: E402
import getpass  # noqa: E402
import glob  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from collections import deque  # noqa: E402

import ipyckpt  # noqa: E402

from . import engine_comm  # noqa: E402
from .channel import (  # noqa: E402
    MESSAGE_FD,
    REQUEST_FD,
    STDERR_FD,
    STDOUT_FD,
    ChannelClosed,
    CriticalSection,
    EngineChannel,
)
from .engine_shell import EngineShell, PipeText  # noqa: E402
from .sessions import Session  # noqa: E402

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None)  # prctl, and fflush for C extensions' printf

# Requests answered with a "reply" frame; the others (stale input replies)
# are consumed silently.
REPLIED = {"execute", "complete", "inspect", "is_complete", "history", "comm_info", "comm_open",
           "comm_msg", "comm_close", "shutdown"}


def bind_to_front():
    """Kernel state a memory image cannot carry, set at start and again
    after every restore: the channel stays out of child processes (a `!cmd`
    holding fd 4 would hide the engine's death from the front), and the
    engine dies with the front that started it (a front killed by SIGKILL
    must not leave an orphan engine writing checkpoints)."""
    for fd in (REQUEST_FD, MESSAGE_FD):
        try:
            os.set_inheritable(fd, False)
        except OSError:
            pass
    _libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() == 1:  # the front died before prctl took effect
        os._exit(1)


def load_profile_config():
    """The user's IPython configuration (profile_default), as a kernel would
    load it, plus what the engine needs to stay single-threaded."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = Config()
    profile_dir = None
    from IPython.core.profiledir import ProfileDir, ProfileDirError
    from IPython.paths import get_ipython_dir

    try:
        profile_dir = ProfileDir.find_profile_dir_by_name(get_ipython_dir(), "default")
    except ProfileDirError:
        return config_for_engine(config), None  # none yet: the shell creates it
    try:
        for name in ("ipython_config.py", "ipython_kernel_config.py"):
            if os.path.exists(os.path.join(profile_dir.location, name)):
                config.merge(PyFileConfigLoader(name, profile_dir.location).load_config())
    except Exception as e:  # a broken profile must not keep the kernel from starting
        print("ipyckpt: ignoring the IPython profile configuration: %s" % e, file=sys.stderr)
    return config_for_engine(config), profile_dir


def config_for_engine(config):
    # No history-saving thread: a second thread makes every checkpoint fail
    # (DESIGN §4 trap 6).  History lives in memory, and so in the checkpoint.
    config.HistoryManager.hist_file = ":memory:"
    # Libraries (tqdm, ...) detect a notebook kernel by this section.
    if "IPKernelApp" not in config:
        config.IPKernelApp.ipyckpt_engine = True
    return config


class Engine:
    def __init__(self):
        self.critical = CriticalSection()
        self.chan = EngineChannel(self.critical)
        self.current = None  # the request being served (dict), or None when idle
        self.pending = deque()  # requests that arrived while input() waited
        self.in_user_code = False
        self.hello_sent = False
        self.restores = 0  # restores seen by this process (an input() wait asks again)
        self.waiting_input = False
        self.allow_stdin = False
        self._interrupt_deferred = False
        self._stale_loops = []
        session_dir = os.environ.get("IPYCKPT_SESSION_DIR")
        self.session = Session(session_dir) if session_dir else None
        self.logged_upto = -1

        bind_to_front()
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout = PipeText(STDOUT_FD, "<stdout>")
        sys.stderr = PipeText(STDERR_FD, "<stderr>")
        signal.signal(signal.SIGINT, self._on_sigint)
        signal.signal(NOTIFY_SIGNAL, self._on_notify)

        config, profile_dir = load_profile_config()
        kwargs = {"config": config, "engine": self}
        if profile_dir is not None:
            kwargs["profile_dir"] = profile_dir
        self.shell = EngineShell.instance(**kwargs)
        self.comm_hooks = engine_comm.install(self)
        self.comm_manager = self.comm_hooks.manager
        self.shell.extension_manager.load_extension("ipyckpt")
        self._run_startup_files(profile_dir)

    # -- signals ------------------------------------------------------------

    def _on_sigint(self, signum, frame):
        """KeyboardInterrupt in user code only (idle, SIGINT is ignored, as
        in ipykernel), and never in the middle of a frame."""
        if not self.in_user_code:
            return
        if self.critical.active:
            if not self._interrupt_deferred:
                self._interrupt_deferred = True
                self.critical.defer(self._deferred_interrupt)
            return
        raise KeyboardInterrupt

    def _deferred_interrupt(self):
        self._interrupt_deferred = False
        if self.in_user_code:
            raise KeyboardInterrupt

    def _on_notify(self, signum, frame):
        """This process was just restored from a checkpoint (CKPT_NOTIFY)."""
        self.restores += 1
        bind_to_front()
        self._drop_asyncio_loop()
        if not self.hello_sent:
            return  # the hello, still to come, reports the restore
        if self.critical.active:
            self.critical.defer(self.report_restored)
        else:
            self.report_restored()

    def _drop_asyncio_loop(self):
        """IPython's loop for top-level await holds an epoll descriptor and a
        socket pair that a restored process does not have.  Let IPython make
        a new one; keep the old object alive so that its finaliser never
        closes descriptor numbers that now belong to restored files."""
        try:
            from IPython.core import async_helpers
        except ImportError:
            return
        loop = getattr(async_helpers, "_asyncio_event_loop", None)
        if loop is not None and not loop.is_running():
            self._stale_loops.append(loop)
            async_helpers._asyncio_event_loop = None

    # -- talking to the front -----------------------------------------------

    def publish(self, msg_type, content, metadata=None, buffers=()):
        """An iopub message for the request being served."""
        req_id = self.current["id"] if self.current else None
        self.chan.send({"t": "iopub", "id": req_id, "msg_type": msg_type, "content": content,
                        "metadata": metadata or {}}, buffers)

    def flush_output(self):
        """Everything written so far is in the pipes before the next frame."""
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        _libc.fflush(None)  # printf() from C extensions

    def _status(self):
        try:
            return ipyckpt.status()
        except ipyckpt.NotUnderCoreError:
            return None

    def hello(self):
        st = self._status()
        with self.critical:
            self.chan.send({
                "t": "ready",
                "pid": os.getpid(),
                "next_count": self.shell.execution_count,
                "restarted_from": st.restarted_from if st else None,
                "under_core": st is not None,
                "prefix": st.prefix if st else None,
                "period": st.period if st else 0,
                "banner": self.shell.banner,
                "python": sys.version,
            })
            self.hello_sent = True

    def report_restored(self):
        st = self._status()
        cur = self.current
        running = None
        next_count = self.shell.execution_count
        if cur is not None:
            running = {k: cur.get(k) for k in ("id", "kind", "count", "first_line",
                                                "store_history")}
            running["waiting_input"] = self.waiting_input
            if cur["kind"] == "execute" and cur.get("store_history"):
                next_count = max(next_count, cur["count"] + 1)
        self.chan.send({
            "t": "restored",
            "pid": os.getpid(),
            "epoch": st.restarted_from if st else None,
            "prefix": st.prefix if st else None,
            "period": st.period if st else 0,
            "running": running,
            "next_count": next_count,
        })

    def finish(self, content):
        """Reply to the request being served; it is over."""
        self.flush_output()
        with self.critical:
            req, self.current = self.current, None
            self.chan.send({"t": "reply", "id": req["id"], "kind": req["kind"],
                            "content": content, "next_count": self.shell.execution_count})
        self.log_epochs(req)

    def log_epochs(self, req):
        """Note in the session's log which request was running when each new
        epoch was taken (for %ckpt_list)."""
        st = self._status()
        if self.session is None or st is None:
            return
        last = st.epoch - 1
        if last <= self.logged_upto:
            return
        records = []
        for e in range(self.logged_upto + 1, last + 1):
            try:
                when = os.stat("%s.map.%d" % (st.prefix, e)).st_mtime
                size = os.stat("%s.data.%d" % (st.prefix, e)).st_size
            except OSError:
                continue
            records.append({"epoch": e, "time": when, "bytes": size, "kind": req["kind"],
                            "cell": req.get("count"), "first_line": req.get("first_line"),
                            "pid": os.getpid()})
        try:
            with self.critical:  # never a checkpoint while the log is open
                self.session.append_log(records)
        except OSError as e:
            print("ipyckpt: cannot write %s: %s" % (self.session.path, e), file=sys.stderr)
        self.logged_upto = last

    # -- the loop -------------------------------------------------------------

    def run(self):
        self.hello()
        while True:
            if self.pending:
                msg, buffers = self.pending.popleft()
                with self.critical:
                    self.begin(msg)
            else:
                try:
                    if not self.chan.wait_readable():
                        continue
                    with self.critical:
                        msg, buffers = self.chan.recv_in_section()
                        self.begin(msg)
                except ChannelClosed:
                    return  # the front is gone
            self.dispatch(msg, buffers)

    def begin(self, msg):
        """Called in the same critical section as the read: a restore can
        never find a request read but not yet marked as being served."""
        kind = msg.get("t")
        if kind not in REPLIED:
            self.current = None
            return
        self.current = {"id": msg.get("id"), "kind": kind}
        if kind == "execute":
            code = msg.get("code", "")
            silent = bool(msg.get("silent", False))
            first = next((ln for ln in code.splitlines() if ln.strip()), "")
            self.current.update(count=self.shell.execution_count, first_line=first[:200],
                                store_history=bool(msg.get("store_history", not silent)))

    def dispatch(self, msg, buffers):
        if self.current is None:
            return  # a stale input_reply: nothing is waiting for it
        kind = self.current["kind"]
        self.comm_hooks.reassert()
        try:
            getattr(self, "on_" + kind)(msg, buffers)
        except SystemExit:
            raise
        except BaseException as e:  # a bug of the engine, not user code
            traceback.print_exc()
            if self.current is not None:
                self.finish({"status": "error", "ename": type(e).__name__, "evalue": str(e),
                             "traceback": traceback.format_exception(e)})

    # -- requests ---------------------------------------------------------------

    def on_execute(self, msg, buffers):
        shell = self.shell
        silent = bool(msg.get("silent", False))
        store_history = bool(msg.get("store_history", not silent))
        self.allow_stdin = bool(msg.get("allow_stdin", False))
        saved = builtins.input, getpass.getpass
        builtins.input, getpass.getpass = self.raw_input, self.getpass
        res = interrupted = None
        try:
            self.in_user_code = True
            res = shell.run_cell(msg.get("code", ""), store_history=store_history, silent=silent)
        except KeyboardInterrupt as e:  # landed in IPython's own code around the cell
            interrupted = e
        finally:
            self.in_user_code = False
            builtins.input, getpass.getpass = saved

        reply = {}
        if res is not None and res.success and not getattr(
                shell, "_last_traceback_during_displayhook", False):
            reply["status"] = "ok"
            reply["user_expressions"] = shell.user_expressions(msg.get("user_expressions") or {})
        else:
            err = interrupted
            if res is not None:
                err = res.error_before_exec if res.error_before_exec is not None \
                    else res.error_in_exec
            reply.update(status="error", traceback=shell._last_traceback or [],
                         ename=type(err).__name__ if err is not None else "Error",
                         evalue=str(err) if err is not None else "", user_expressions={})
            if interrupted is not None and not shell._last_traceback:
                shell.showtraceback()
                reply["traceback"] = shell._last_traceback or []
        reply["execution_count"] = shell.execution_count - 1
        reply["payload"] = shell.payload_manager.read_payload()
        shell.payload_manager.clear_payload()
        self.finish(reply)

    def raw_input(self, prompt=""):
        if not self.allow_stdin:
            from IPython.core.error import StdinNotImplementedError

            raise StdinNotImplementedError(
                "raw_input was called, but this frontend does not support input requests.")
        return self._input_request(str(prompt), password=False)

    def getpass(self, prompt="Password: ", stream=None):
        if not self.allow_stdin:
            from IPython.core.error import StdinNotImplementedError

            raise StdinNotImplementedError(
                "getpass was called, but this frontend does not support input requests.")
        return self._input_request(str(prompt), password=True)

    def _input_request(self, prompt, password):
        """Ask the front for a line; wait for it (interruptible).  If this
        process is restored while it waits, it asks its new front again."""
        self.flush_output()
        req_id = self.current["id"] if self.current else None
        asked = -1
        self.waiting_input = True
        try:
            while True:
                if asked != self.restores:
                    asked = self.restores
                    self.chan.send({"t": "input_request", "id": req_id, "prompt": prompt,
                                    "password": password})
                if not self.chan.wait_readable(0.5):
                    continue
                with self.critical:
                    msg, buffers = self.chan.recv_in_section()
                if msg.get("t") == "input_reply":
                    value = msg.get("value", "")
                    break
                self.pending.append((msg, buffers))  # e.g. a comm message; served later
        finally:
            self.waiting_input = False
        if value == "\x04":
            raise EOFError
        return value

    def on_complete(self, msg, buffers):
        from IPython.core.completer import provisionalcompleter, rectify_completions

        code = msg.get("code", "")
        cursor_pos = msg.get("cursor_pos")
        if cursor_pos is None:
            cursor_pos = len(code)
        with provisionalcompleter():
            completions = list(rectify_completions(
                code, self.shell.Completer.completions(code, cursor_pos)))
        types = [dict(start=c.start, end=c.end, text=c.text, type=c.type, signature=c.signature)
                 for c in completions]
        if completions:
            start, end = completions[0].start, completions[0].end
        else:
            start = end = cursor_pos
        self.finish({"matches": [c.text for c in completions], "cursor_start": start,
                     "cursor_end": end, "metadata": {"_jupyter_types_experimental": types},
                     "status": "ok"})

    def on_inspect(self, msg, buffers):
        from IPython.utils.tokenutil import token_at_cursor

        name = token_at_cursor(msg.get("code", ""), msg.get("cursor_pos", 0))
        reply = {"status": "ok", "data": {}, "metadata": {}, "found": False}
        try:
            bundle = self.shell.object_inspect_mime(
                name, detail_level=msg.get("detail_level", 0),
                omit_sections=set(msg.get("omit_sections", ())))
            if not self.shell.enable_html_pager:
                bundle.pop("text/html", None)
            reply["data"].update(bundle)
            reply["found"] = True
        except KeyError:
            pass
        self.finish(reply)

    def on_is_complete(self, msg, buffers):
        status, indent = self.shell.input_transformer_manager.check_complete(msg.get("code", ""))
        reply = {"status": status}
        if status == "incomplete":
            reply["indent"] = " " * (indent or 0)
        self.finish(reply)

    def on_history(self, msg, buffers):
        hm = self.shell.history_manager
        kind = msg.get("hist_access_type")
        raw, output = msg.get("raw", True), msg.get("output", False)
        if kind == "tail":
            hist = hm.get_tail(msg.get("n") or 10, raw=raw, output=output, include_latest=True)
        elif kind == "range":
            hist = hm.get_range(msg.get("session") or 0, msg.get("start") or 0, msg.get("stop"),
                                raw=raw, output=output)
        elif kind == "search":
            hist = hm.search(msg.get("pattern") or "*", raw=raw, output=output, n=msg.get("n"),
                             unique=msg.get("unique", False))
        else:
            hist = []
        self.finish({"status": "ok", "history": list(hist)})

    def on_comm_info(self, msg, buffers):
        target = msg.get("target_name")
        comms = {cid: {"target_name": c.target_name}
                 for cid, c in self.comm_manager.comms.items()
                 if target is None or c.target_name == target}
        self.finish({"status": "ok", "comms": comms})

    def _comm(self, kind, msg, buffers):
        handler = getattr(self.comm_manager, kind)
        try:
            self.in_user_code = True  # widget callbacks are user code: interruptible
            handler(None, None, engine_comm.as_message(msg, buffers))
        except KeyboardInterrupt:
            pass
        finally:
            self.in_user_code = False
        self.finish(None)

    def on_comm_open(self, msg, buffers):
        self._comm("comm_open", msg, buffers)

    def on_comm_msg(self, msg, buffers):
        self._comm("comm_msg", msg, buffers)

    def on_comm_close(self, msg, buffers):
        self._comm("comm_close", msg, buffers)

    def on_shutdown(self, msg, buffers):
        try:
            self.shell.atexit_operations()
        except Exception:
            traceback.print_exc()
        self.finish({"status": "ok", "restart": bool(msg.get("restart", False))})
        sys.exit(0)

    # -- start-up -----------------------------------------------------------------

    def _run_startup_files(self, profile_dir):
        """PYTHONSTARTUP and the profile's startup/ folder, as a kernel does."""
        files = []
        if os.environ.get("PYTHONSTARTUP"):
            files.append(os.environ["PYTHONSTARTUP"])
        if profile_dir is not None:
            files += sorted(glob.glob(os.path.join(profile_dir.startup_dir, "*.py")))
            files += sorted(glob.glob(os.path.join(profile_dir.startup_dir, "*.ipy")))
        for path in files:
            try:
                if path.endswith(".ipy"):
                    self.shell.safe_execfile_ipy(path)
                else:
                    self.shell.safe_execfile(path, self.shell.user_ns)
            except Exception:
                traceback.print_exc()


def main():
    Engine().run()


if __name__ == "__main__":
    main()
