"""Where a notebook's checkpoints live, and what is in them.

Layout (the default root is next to the notebook, as Jupyter keeps
.ipynb_checkpoints/):

    <notebook dir>/.ipyckpt/<notebook stem>/           the root, c.IPyCkpt.checkpoint_dir
        20250101-120000-4242/                          one session per fresh engine
            session.json    notebook, python, started, front pid
            engine.pid      the engine's current pid (written by the front)
            epochs.jsonl    one JSON line per epoch: time, bytes, the running cell
            lock            flock()ed by the front that owns the session
            engine.map, engine.data.N, ...             the core's files (CKPT_PREFIX)

A fresh engine always gets a new session directory, so it can never
overwrite the data files of an older timeline.  A restart reuses the prefix
of the session it restores (the core requires the same CKPT_PREFIX).

Used by the front (choosing and creating sessions) and by the magics in the
engine (%ckpt_list), so it imports nothing heavy and nothing of either.
"""
import errno
import fcntl
import json
import os
import shutil
import sys
import time

PREFIX_NAME = "engine"
SESSION_FILE = "session.json"
PID_FILE = "engine.pid"
LOG_FILE = "epochs.jsonl"
LOCK_FILE = "lock"

DEFAULT_TEMPLATE = "{notebook_dir}/.ipyckpt/{notebook_stem}"
NO_NOTEBOOK_STEM = "kernel"


def notebook_path(env=None, cwd=None):
    """The notebook this kernel serves, or None.

    Jupyter Server sets JPY_SESSION_NAME to the notebook's path relative to
    its root (some clients pass an absolute one) and starts the kernel in the
    notebook's directory.
    """
    env = os.environ if env is None else env
    cwd = os.getcwd() if cwd is None else cwd
    name = env.get("JPY_SESSION_NAME", "").strip()
    if not name:
        return None
    if os.path.isabs(name):
        return os.path.normpath(name)
    for candidate in (os.path.join(cwd, name), os.path.join(cwd, os.path.basename(name))):
        if os.path.exists(candidate):
            return os.path.normpath(candidate)
    # not saved yet, or a root we cannot see: the kernel runs next to it
    return os.path.normpath(os.path.join(cwd, os.path.basename(name)))


def checkpoint_root(template, notebook, cwd=None):
    """Expand c.IPyCkpt.checkpoint_dir for this notebook."""
    cwd = os.getcwd() if cwd is None else cwd
    if notebook:
        nb_dir, nb_name = os.path.split(notebook)
        stem = os.path.splitext(nb_name)[0]
    else:
        nb_dir, nb_name, stem = cwd, "", NO_NOTEBOOK_STEM
    root = (template or DEFAULT_TEMPLATE).format(
        notebook_dir=nb_dir, notebook_stem=stem, notebook_name=nb_name, cwd=cwd)
    return os.path.abspath(os.path.expanduser(os.path.expandvars(root)))


class Session:
    """One session directory: one engine timeline."""

    def __init__(self, path):
        self.path = path
        self.prefix = os.path.join(path, PREFIX_NAME)
        self.name = os.path.basename(path)
        self._lock_fd = None

    def __repr__(self):
        return "Session(%r)" % self.path

    # -- the core's files -------------------------------------------------

    def committed_epoch(self):
        """The epoch engine.map commits, or None (see launch.committed_epoch)."""
        from ..launch import committed_epoch

        try:
            return committed_epoch(self.prefix)
        except OSError:
            return None

    def commit_time(self):
        """When the committed map was written (its mtime), or None."""
        try:
            return os.stat(self.prefix + ".map").st_mtime
        except OSError:
            return None

    def last_used(self):
        """When this timeline was last active: its newest checkpoint, or the
        last time an engine started in it (engine.pid is rewritten then)."""
        times = [self.commit_time() or 0]
        for name in ("", PID_FILE):
            try:
                times.append(os.stat(os.path.join(self.path, name)).st_mtime)
            except OSError:
                pass
        return max(times)

    def epochs(self):
        """[(epoch, time, data bytes)] of every epoch with a map, up to the committed one."""
        last = self.committed_epoch()
        if last is None:
            return []
        out = []
        base = PREFIX_NAME + ".map."
        for name in os.listdir(self.path):
            if name.startswith(base) and name[len(base):].isdigit():
                e = int(name[len(base):])
                if e > last:
                    continue  # written by a timeline a restart abandoned, or not committed
                try:
                    when = os.stat(os.path.join(self.path, name)).st_mtime
                    size = os.stat("%s.data.%d" % (self.prefix, e)).st_size
                except OSError:
                    continue
                out.append((e, when, size))
        return sorted(out)

    # -- our own files ----------------------------------------------------

    def info(self):
        try:
            with open(os.path.join(self.path, SESSION_FILE)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def write_pid(self, pid):
        _write_atomic(os.path.join(self.path, PID_FILE), "%d\n" % pid)

    def read_pid(self):
        try:
            with open(os.path.join(self.path, PID_FILE)) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def log(self):
        """{epoch: record} from epochs.jsonl; the last line for an epoch wins
        (a restored timeline logs its own epochs again)."""
        out = {}
        try:
            with open(os.path.join(self.path, LOG_FILE)) as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                        out[int(rec["epoch"])] = rec
                    except (ValueError, KeyError, TypeError):
                        continue  # a line cut by a crash
        except OSError:
            pass
        return out

    def append_log(self, records):
        """Append records (dicts with "epoch") to epochs.jsonl: open, append,
        close, so that the engine never holds the file open across a
        checkpoint (the core would rewind it on restore).  The caller holds
        off checkpoints meanwhile."""
        if not records:
            return
        # the leading newline ends a line a crash may have cut short
        text = "\n" + "".join(json.dumps(r, default=str) + "\n" for r in records)
        fd = os.open(os.path.join(self.path, LOG_FILE),
                     os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, text.encode("utf-8"))
        finally:
            os.close(fd)

    # -- ownership --------------------------------------------------------

    def try_lock(self):
        """Take the session's lock (True), or False if a live front holds it."""
        fd = os.open(os.path.join(self.path, LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                     0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return False
            raise
        self._lock_fd = fd
        return True

    def lock(self, timeout):
        """try_lock() for up to timeout seconds (a kernel being shut down lets go)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.try_lock():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def unlock(self):
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _write_atomic(path, text):
    tmp = "%s.tmp%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)
    os.replace(tmp, path)


def sessions(root):
    """Every session under root, oldest first (names sort by start time)."""
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    return [Session(os.path.join(root, n)) for n in names
            if os.path.isdir(os.path.join(root, n)) and not n.startswith(".")]


def latest_committed(root):
    """The session whose newest checkpoint is the most recent, or None."""
    best, best_time = None, None
    for s in sessions(root):
        if s.committed_epoch() is None:
            continue
        t = s.commit_time()
        if t is not None and (best_time is None or t > best_time):
            best, best_time = s, t
    return best


def new_session(root, notebook, python, extra=None):
    """Create a new, empty session directory under root (0700, as the core's)."""
    os.makedirs(root, mode=0o700, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        name = "%s-%d%s" % (stamp, os.getpid(), "" if n == 0 else "-%d" % n)
        path = os.path.join(root, name)
        try:
            os.mkdir(path, 0o700)
            break
        except FileExistsError:
            continue
    else:
        raise OSError("cannot create a session directory under %s" % root)
    info = {
        "notebook": notebook,
        "python": python,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "front_pid": os.getpid(),
        "ipyckpt_python": sys.executable,
    }
    info.update(extra or {})
    _write_atomic(os.path.join(path, SESSION_FILE), json.dumps(info, indent=1) + "\n")
    return Session(path)


def prune(root, keep, protect=()):
    """Delete all but the `keep` most recently used sessions (0: keep all),
    never one in `protect` nor one whose lock a live front holds.  Returns
    what was removed."""
    if keep <= 0:
        return []
    protected = {os.path.abspath(p.path if isinstance(p, Session) else p) for p in protect}
    # least recently used first: a session restored again and again stays
    old = sorted(sessions(root), key=lambda s: (s.last_used(), s.name))[:-keep]
    removed = []
    for s in old:
        if os.path.abspath(s.path) in protected:
            continue
        if not s.try_lock():
            continue  # in use by another kernel
        try:
            shutil.rmtree(s.path)
            removed.append(s.path)
        finally:
            s.unlock()
    return removed
