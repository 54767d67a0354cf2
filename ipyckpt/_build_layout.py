"""cffi build script: the module ``ipyckpt._layout``.

The layout of a checkpoint is declared once, in native/image.h, and the core's
public types in native/include/checkpoint.h.  This script feeds those very
headers to cffi (after the C preprocessor has removed the system includes, the
static asserts and the function prototypes, see ``CKPT_CDEF`` there), and the C
compiler checks every size and offset when it builds the module.  Python code
reads images only through ``ffi`` from this module.

The core's functions are not linked into this module: loading libcheckpoint.so
starts the checkpointer, which only a process started under it may do.  They
are found at run time with dlsym in the process that has the core preloaded
(ipyckpt/core.py).
"""
import os
import shlex
import subprocess
import sysconfig

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
NATIVE = os.path.join(os.path.dirname(HERE), "native")
HEADERS = [os.path.join(NATIVE, "image.h"), os.path.join(NATIVE, "include", "checkpoint.h")]


def _preprocessed(header):
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    out = subprocess.run(
        cc[:1] + ["-E", "-P", "-DCKPT_CDEF", "-x", "c", header],
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
    void *dlsym(void *handle, const char *symbol);
    """
)
for _header in HEADERS:
    ffibuilder.cdef(_preprocessed(_header))
ffibuilder.set_source(
    "ipyckpt._layout",
    '#include <dlfcn.h>\n#include "image.h"\n#include "include/checkpoint.h"',
    include_dirs=[NATIVE],
    libraries=["dl"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
