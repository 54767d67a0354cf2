"""The two kernelspecs, and `ipyckpt install`.

    ipyckpt           "Python 3 (ipyckpt)"
    ipyckpt-restart   "Python 3 (ipyckpt, restart from checkpoint)"

Both start the front under `setarch --addr-no-randomize`: the engine it
starts inherits a layout without address randomisation, and every restart
of it finds its libraries where the checkpoint left them.

They exist twice, with the same content except the interpreter:
- shipped as data files (jupyter-config/kernels/ -> share/jupyter/kernels/),
  installed by `pip install .` beside the interpreter; their interpreter is
  "{prefix}/bin/python3", which Jupyter fills in with its own prefix;
- written by `ipyckpt install [--user|--sys-prefix|--prefix P]` with the
  absolute path of the interpreter running it (any environment, editable
  installs, a Jupyter that runs elsewhere).
"""
import json
import os
import shutil
import sys
import tempfile

KERNELS = {
    "ipyckpt": ("Python 3 (ipyckpt)", False),
    "ipyckpt-restart": ("Python 3 (ipyckpt, restart from checkpoint)", True),
}

# What the data-file kernelspecs run: Jupyter replaces {prefix} with
# sys.prefix of the process that launches the kernel.
DATA_FILE_PYTHON = "{prefix}/bin/python3"

LOGOS = ("logo-32x32.png", "logo-64x64.png", "logo-svg.svg")


def kernelspec(name, python):
    """The kernel.json of kernel `name`, started with interpreter `python`."""
    display_name, restart = KERNELS[name]
    argv = ["setarch", "--addr-no-randomize", python, "-m", "ipyckpt.kernel"]
    if restart:
        argv.append("--restart")
    argv += ["-f", "{connection_file}"]
    return {
        "argv": argv,
        "display_name": display_name,
        "language": "python",
        # Jupyter sends SIGINT to the front's process group, which holds the
        # engine; the front ignores it, the engine stops the running cell.
        "interrupt_mode": "signal",
        "metadata": {"debugger": False, "ipyckpt": {"restart_from_checkpoint": restart}},
    }


def _logo_dir():
    try:
        import ipykernel

        d = os.path.join(os.path.dirname(ipykernel.__file__), "resources")
        return d if os.path.isdir(d) else None
    except ImportError:
        return None


def write_spec_dir(dest, name, python):
    """A kernelspec directory for `name` at dest (kernel.json and logos)."""
    os.makedirs(dest, exist_ok=True)
    with open(os.path.join(dest, "kernel.json"), "w") as f:
        json.dump(kernelspec(name, python), f, indent=1)
        f.write("\n")
    logos = _logo_dir()
    for logo in LOGOS:
        if logos and os.path.exists(os.path.join(logos, logo)):
            shutil.copy(os.path.join(logos, logo), os.path.join(dest, logo))


def install(user=False, prefix=None, python=None):
    """Install both kernelspecs with jupyter_client; returns {name: path}."""
    from jupyter_client.kernelspec import KernelSpecManager

    python = python or sys.executable
    ksm = KernelSpecManager()
    done = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in KERNELS:
            src = os.path.join(tmp, name)
            write_spec_dir(src, name, python)
            done[name] = ksm.install_kernel_spec(src, name, user=user, prefix=prefix,
                                                 replace=True)
    return done
