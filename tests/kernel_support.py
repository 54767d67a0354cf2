"""Shared by the kernel tests (test_kernel_*.py): the kernelspecs as
`ipyckpt install` writes them, in a Jupyter data directory of the test
session (nothing is installed into the environment); kernels driven through
jupyter_client and notebooks through nbclient; SIGKILL of the front and the
engine; waiting on conditions."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


@pytest.fixture(scope="session")
def kernelspecs(tmp_path_factory):
    """`ipyckpt install --prefix P` and P/share/jupyter first on JUPYTER_PATH."""
    prefix = tmp_path_factory.mktemp("jupyter-prefix")
    subprocess.run([sys.executable, "-m", "ipyckpt", "install", "--prefix", str(prefix)],
                   check=True, capture_output=True)
    data = str(prefix / "share" / "jupyter")
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = data + (os.pathsep + old if old else "")
    yield data
    if old is None:
        os.environ.pop("JUPYTER_PATH", None)
    else:
        os.environ["JUPYTER_PATH"] = old


def wait_for(condition, timeout=60, what="condition", interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


def gone(pid):
    """The process no longer runs (a zombie nobody reaped counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def kernel_env(notebook=None, **extra):
    env = dict(os.environ)
    env.pop("JPY_SESSION_NAME", None)
    if notebook:
        env["JPY_SESSION_NAME"] = notebook
    env.update(extra)
    return env


def start_kernel(name, cwd, notebook=None, **env):
    from jupyter_client.manager import start_new_kernel

    return start_new_kernel(kernel_name=name, cwd=str(cwd), startup_timeout=60,
                            env=kernel_env(notebook, **env))


def collect(kc, msg_id, timeout=60):
    """iopub messages of one request up to its idle status."""
    out = []
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status":
            if msg["content"]["execution_state"] == "idle":
                return out
            continue
        out.append(msg)


def shell_reply(kc, msg_id, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg


def execute(kc, code, timeout=60, **kw):
    """(iopub messages, execute_reply content) of one cell."""
    msg_id = kc.execute(code, **kw)
    reply = shell_reply(kc, msg_id, timeout)
    return collect(kc, msg_id, timeout), reply["content"]


def stream_text(msgs, name=None):
    return "".join(m["content"]["text"] for m in msgs
                   if m["msg_type"] == "stream" and (name is None or m["content"]["name"] == name))


def output_text(outputs):
    """All text a notebook cell shows (nbformat outputs)."""
    parts = []
    for o in outputs:
        if o.get("output_type") == "stream":
            parts.append(o.get("text", ""))
        elif o.get("output_type") in ("display_data", "execute_result"):
            parts.append(o.get("data", {}).get("text/plain", ""))
        elif o.get("output_type") == "error":
            parts.append("%s: %s\n%s" % (o.get("ename"), o.get("evalue"),
                                         "\n".join(o.get("traceback", []))))
    return "\n".join(parts)


def errors(outputs):
    return [o for o in outputs if o.get("output_type") == "error"]


def checkpoint_root(nbdir, stem):
    return os.path.join(str(nbdir), ".ipyckpt", stem)


def sessions(nbdir, stem):
    root = checkpoint_root(nbdir, stem)
    try:
        return sorted(os.path.join(root, n) for n in os.listdir(root))
    except FileNotFoundError:
        return []


def session_of(nbdir, stem, front_pid):
    for path in sessions(nbdir, stem):
        try:
            with open(os.path.join(path, "session.json")) as f:
                if json.load(f).get("front_pid") == front_pid:
                    return path
        except (OSError, ValueError):
            continue
    return None


def engine_pid(session_path):
    with open(os.path.join(session_path, "engine.pid")) as f:
        return int(f.read())


def committed_epoch(session_path):
    """The epoch the session's engine.map commits, or None."""
    from ipyckpt.launch import committed_epoch as epoch_of

    return epoch_of(os.path.join(session_path, "engine"))


def kill(*pids):
    """SIGKILL, as the OOM killer or a pre-empted node would, and wait until gone."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in pids:
        wait_for(lambda: gone(pid), 30, "pid %d to die" % pid)


class NotebookRun:
    """A notebook executed cell by cell with nbclient, on a kernel that
    stays up until the `with` block ends (or is killed in it)."""

    def __init__(self, path, kernel_name, timeout=120, **env):
        import nbformat
        from nbclient import NotebookClient

        self.path = path
        self.nb = nbformat.v4.new_notebook()
        self.nb.metadata["kernelspec"] = {"name": kernel_name, "display_name": kernel_name,
                                          "language": "python"}
        self.client = NotebookClient(self.nb, kernel_name=kernel_name, timeout=timeout,
                                     allow_errors=True,
                                     resources={"metadata": {"path": str(path.parent)}})
        self.env = kernel_env(path.name, **env)

    def __enter__(self):
        self.client.km = self.client.create_kernel_manager()
        self.client.start_new_kernel(env=self.env)
        self.client.start_new_kernel_client()
        return self

    def __exit__(self, *exc):
        if self.client.km is not None:
            self.client._cleanup_kernel()
        return False

    def run(self, source):
        import nbformat

        cell = nbformat.v4.new_code_cell(source)
        self.nb.cells.append(cell)
        self.client.execute_cell(cell, len(self.nb.cells) - 1)
        return cell

    def send(self, source):
        """Start a cell without waiting for it (it may never end)."""
        return self.client.kc.execute(source)

    @property
    def front_pid(self):
        return self.client.km.provisioner.process.pid

    @property
    def stem(self):
        return os.path.splitext(self.path.name)[0]

    @property
    def session(self):
        return wait_for(lambda: session_of(self.path.parent, self.stem, self.front_pid), 30,
                        "the session folder")

    def kill_all(self):
        """SIGKILL both the front and the engine."""
        epid = engine_pid(self.session)
        kill(self.front_pid, epid)
        return epid

    def save(self):
        import nbformat

        nbformat.write(self.nb, str(self.path))
