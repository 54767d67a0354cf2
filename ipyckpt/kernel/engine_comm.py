"""Comms (ipywidgets) in the engine, through the ``comm`` package.

ipykernel's own Comm publishes on its IOPub thread; the engine has no
threads, so it registers its own create_comm/get_comm_manager with the
``comm`` package (which ipywidgets asks for comms) and publishes comm
messages over the channel like any other output.
"""
import logging

import comm
from comm.base_comm import BaseComm, CommManager


class EngineComm(BaseComm):
    """A comm whose messages go to the front as iopub messages."""

    engine = None  # set by install()

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        content = dict(data={} if data is None else data, comm_id=self.comm_id, **keys)
        self.engine.publish(msg_type, content, metadata=metadata or {}, buffers=buffers or ())


def _create_comm(*args, **kwargs):
    return EngineComm(*args, **kwargs)


class Hooks:
    """The engine's comm hooks, and the means to keep them in place."""

    def __init__(self, engine):
        EngineComm.engine = engine
        # The engine's stderr is the notebook: keep comm's chatter ("No such
        # comm: ...", which a kernel logs to its terminal) out of it.
        logging.getLogger("Comm").setLevel(logging.ERROR)
        self.manager = CommManager()
        self._get = lambda: self.manager
        self.reassert()

    def reassert(self):
        """Importing ipykernel.ipkernel (some libraries do) points comm's
        hooks at ipykernel's, which need a running IPythonKernel: put ours
        back."""
        if comm.create_comm is not _create_comm or comm.get_comm_manager is not self._get:
            comm.create_comm = _create_comm
            comm.get_comm_manager = self._get


def install(engine):
    """Make comm.create_comm / comm.get_comm_manager the engine's."""
    return Hooks(engine)


def as_message(msg, buffers):
    """The dict a comm handler expects, from a forwarded frame."""
    return {
        "header": msg.get("header", {}),
        "parent_header": {},
        "metadata": msg.get("metadata", {}),
        "content": msg.get("content", {}),
        "buffers": list(buffers),
    }
