"""What the front tells the user in the notebook, worded in one place."""
import html
import time

RESTART_KERNEL = "Python 3 (ipyckpt, restart from checkpoint)"


def when(t):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "?"


def as_display(text, kind="info"):
    """A notice as display_data content: plain text, and HTML set apart
    from the cell's own output."""
    color = {"info": "#555", "warning": "#a15c00", "error": "#b00020"}[kind]
    body = html.escape(text).replace("\n", "<br>")
    return {
        "data": {
            "text/plain": text,
            "text/html": '<div style="border-left:3px solid %s;padding:2px 8px;color:%s;'
                         'font-family:var(--jp-code-font-family,monospace);font-size:90%%">'
                         "%s</div>" % (color, color, body),
        },
        "metadata": {"ipyckpt": {"notice": kind}},
        "transient": {},
    }


def restored(epoch, session_path, next_count, running=None):
    text = ("ipyckpt: restored epoch %s of %s (execution count continues at %d)"
            % (epoch, session_path, next_count))
    if running and (running.get("first_line") or "").strip() == "%checkpoint":
        # the usual case: the image was taken by %checkpoint, which now says so
        text = ("ipyckpt: restored epoch %s of %s, taken by %%checkpoint in cell [%s] "
                "(execution count continues at %d)"
                % (epoch, session_path, running.get("count"), next_count))
    elif running and running.get("kind") == "execute":
        text = ("\u21bb ipyckpt: cell [%s] was running when checkpoint epoch %s was taken; it "
                "resumed and its output follows.\n    %s\n%s"
                % (running.get("count"), epoch, running.get("first_line") or "", text))
    elif running:
        text += "\n(a %s request was being served when the checkpoint was taken; it resumed)" \
            % running.get("kind")
    return text


def fresh_no_checkpoint(notebook, root, session_path):
    return ("ipyckpt: no checkpoint for %s in %s; this kernel started fresh "
            "(checkpoints go to %s)" % (notebook or "this kernel", root, session_path))


def refused(session_path, epoch, reason, new_session_path):
    return ("ipyckpt: the checkpoint (epoch %s) in %s could not be restored:\n%s\n"
            "This kernel started fresh; its checkpoints go to %s"
            % (epoch, session_path, reason.strip() or "(no message)", new_session_path))


def busy_session(session_path, new_session_path):
    return ("ipyckpt: the latest checkpoints, in %s, belong to a kernel that is still running; "
            "shut that kernel down first to restore them.  This kernel started fresh; its "
            "checkpoints go to %s" % (session_path, new_session_path))


def latest_line(latest):
    if latest is None:
        return ("There is no checkpoint of this session to come back from; %ckpt_restore (or "
                "Kernel \u2192 Restart Kernel) starts a fresh engine.")
    epoch, t, path = latest
    return ("The latest checkpoint is epoch %d, taken %s, in %s.\n"
            "Run %%ckpt_restore in a cell to bring the kernel back from it, or "
            "Kernel \u2192 Change Kernel \u2192 \"%s\"." % (epoch, when(t), path, RESTART_KERNEL))


def _engine(pid):
    return "the engine (pid %s)" % pid if pid else "the engine"


def death(pid, how, cell, latest):
    """Point 6 of the issue: what happened, and how to come back."""
    during = (" while cell [%s] was running" % cell) if cell is not None else ""
    return ("ipyckpt: %s %s%s.\n%s" % (_engine(pid), how, during, latest_line(latest)))


def dead(pid, how, latest):
    return ("ipyckpt: this kernel has no engine: %s %s.  Nothing was run.\n%s"
            % (_engine(pid), how, latest_line(latest)))


def startup_failed(how, output=""):
    text = "ipyckpt: the engine %s" % how.rstrip()
    if output.strip():
        text += "\n" + output.strip()
    return text if "\n" in text else text + "."


def fresh_after_restore_request(root_session):
    return ("ipyckpt: no checkpoint to restore; started a fresh engine (checkpoints go to %s)"
            % root_session)
