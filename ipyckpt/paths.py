"""Where the installed native core and its header are."""
import os

_PKG = os.path.dirname(os.path.abspath(__file__))


def core_library():
    """Absolute path of libcheckpoint.so, installed inside the package."""
    return os.path.join(_PKG, "libcheckpoint.so")


def include_dir():
    """The folder holding checkpoint.h."""
    return os.path.join(_PKG, "include")


def check_installed():
    """Raise a clear error if the package was not built (a bare source tree)."""
    missing = [p for p in (core_library(), os.path.join(include_dir(), "checkpoint.h"))
               if not os.path.exists(p)]
    if missing:
        raise FileNotFoundError(
            "ipyckpt's native core is not built (missing %s); install the package "
            "with `pip install .` or `pip install -e .`" % ", ".join(missing))
