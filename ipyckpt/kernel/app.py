"""The application the kernelspecs start: ipykernel's IPKernelApp with the
ipyckpt front as its kernel.

    python -m ipyckpt.kernel [--restart] -f CONNECTION_FILE

Configuration: c.IPyCkpt.* (see ipyckpt.config) and the usual kernel
settings, in ipyckpt_kernel_config.py in a Jupyter config directory (e.g.
~/.jupyter) or in the IPython profile.
"""
import atexit

from ipykernel.kernelapp import IPKernelApp, kernel_flags
from jupyter_core.paths import jupyter_config_path
from traitlets import Dict, Type, default

from ..config import IPyCkpt
from .front import IPyCkptKernel

flags = dict(kernel_flags)
flags["restart"] = (
    {"IPyCkptKernel": {"restart_from_checkpoint": True}},
    "Start the engine from this notebook's latest checkpoint instead of fresh.",
)


class IPyCkptKernelApp(IPKernelApp):
    name = "ipyckpt-kernel"
    description = "The ipyckpt Jupyter kernel: a Jupyter front and a checkpointed engine."
    flags = Dict(flags)
    classes = [*IPKernelApp.classes, IPyCkptKernel, IPyCkpt]
    kernel_class = Type(
        IPyCkptKernel,
        klass="ipykernel.kernelbase.Kernel",
        help="The front's Kernel class (an IPyCkptKernel).",
    ).tag(config=True)

    @default("config_file_paths")
    def _config_paths(self):
        # Jupyter's config directories first (highest priority), then the
        # IPython profile that BaseIPythonApplication adds.
        return list(jupyter_config_path())

    def init_kernel(self):
        super().init_kernel()
        atexit.register(self.kernel.cleanup)

    def start(self):
        super().start()
        # The shell loop has stopped: a shutdown_request was handled on the
        # control thread, which may still be flushing that request's output
        # through the IOPub thread.  At exit ipykernel stops the IOPub thread
        # first; a flush still under way then waits for it until Jupyter
        # kills the kernel.  The front's shutdown, which stops the engine,
        # makes that race likely: let the control thread finish first.
        thread = self.control_thread
        if thread is not None and thread.is_alive():
            thread.join(timeout=10)


def main(argv=None):
    IPyCkptKernelApp.launch_instance(argv=argv)
