"""cffi build script: the image layout module ``ipyckpt._layout``.

The layout of a checkpoint is declared once, in native/image.h.  This script
feeds that very header to cffi (after the C preprocessor has removed the
system includes and the static asserts, see ``CKPT_CDEF`` there), and the C
compiler checks every size and offset when it builds the module.  Python code
reads images only through ``ffi`` from this module.
"""
import os
import shlex
import subprocess
import sysconfig

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
NATIVE = os.path.join(os.path.dirname(HERE), "native")
HEADER = os.path.join(NATIVE, "image.h")


def _preprocessed_header():
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    out = subprocess.run(
        cc[:1] + ["-E", "-P", "-DCKPT_CDEF", "-x", "c", HEADER],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out


ffibuilder = FFI()
# Types the header takes from system headers: cffi learns their size from
# the compiler ("..." means: ask the C compiler).
ffibuilder.cdef(
    """
    typedef struct { ...; } ucontext_t;
    typedef int... off_t;
    #define MAXFILENAME ...
    """
)
ffibuilder.cdef(_preprocessed_header())
ffibuilder.set_source("ipyckpt._layout", '#include "image.h"', include_dirs=[NATIVE])

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
