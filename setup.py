"""Build ipyckpt's native core with setuptools.

libcheckpoint.so is a plain C shared library, not a Python extension: the
build_ext subclass below only gives it its plain name and installs its public
header beside it, so that `ipyckpt cc-flags` can point a C compiler at both.
The image layout module (ipyckpt._layout) is built by cffi from native/image.h.
"""
import os
import shutil

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

CORE = "ipyckpt.libcheckpoint"
CORE_SOURCES = [
    "native/init.c",
    "native/palloc.c",
    "native/ranges.c",
    "native/maps.c",
    "native/track_mprotect.c",
    "native/signals.c",
    "native/writer.c",
    "native/crc_cache.c",
    "native/restore.c",
    "native/files.c",
    "native/mm_wrap.c",
    "native/syscall_dest.c",
    "native/log.c",
]
CORE_CFLAGS = [
    "-std=gnu11",
    "-O2",
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    "-Wno-missing-field-initializers",
    # DESIGN §4 trap 16: the restore path copies in the image's thread
    # descriptor, canary and pointer guard included, while its own frames
    # are live; a canary check on the way out would see the image's value.
    "-fno-stack-protector",
    # Only the public API and the libc wrappers are exported; calls inside
    # the core never go through the PLT, which a fault handler must not.
    "-fvisibility=hidden",
]
CORE_LDFLAGS = [
    # Resolve every symbol at load time: a lazy PLT resolution inside the
    # SIGSEGV handler would write a write-protected GOT page and fault again.
    "-Wl,-z,now",
    "-Wl,-z,relro",
    "-Wl,--no-undefined",
]


class BuildCore(build_ext):
    def get_ext_filename(self, fullname):
        # Asked both with the full dotted name and with its last component.
        if fullname == CORE:
            return os.path.join(*CORE.split(".")[:-1], "libcheckpoint.so")
        if fullname == CORE.rsplit(".", 1)[1]:
            return "libcheckpoint.so"
        return super().get_ext_filename(fullname)

    def get_export_symbols(self, ext):
        return [] if ext.name == CORE else super().get_export_symbols(ext)

    def run(self):
        super().run()
        targets = [os.path.join(self.build_lib, "ipyckpt", "include")]
        if self.inplace:
            targets.append(os.path.join("ipyckpt", "include"))
        for dest in targets:
            os.makedirs(dest, exist_ok=True)
            shutil.copy2(os.path.join("native", "include", "checkpoint.h"), dest)

    def get_outputs(self):
        return super().get_outputs() + [
            os.path.join(self.build_lib, "ipyckpt", "include", "checkpoint.h")
        ]


setup(
    ext_modules=[
        Extension(
            CORE,
            sources=CORE_SOURCES,
            depends=["native/" + h for h in os.listdir("native") if h.endswith(".h")],
            extra_compile_args=CORE_CFLAGS,
            extra_link_args=CORE_LDFLAGS,
            libraries=["z", "dl"],
        )
    ],
    cffi_modules=["ipyckpt/_build_layout.py:ffibuilder"],
    cmdclass={"build_ext": BuildCore},
)
