"""Read, print and validate a checkpoint image: ``ipyckpt inspect``.

The layout comes from native/image.h through ``ipyckpt._layout`` (cffi):
every size, offset and field type is asked of ``ffi``, so this package
follows the header when it changes instead of silently misreading images.

The reusable API, for ``ipyckpt inspect`` and whatever else lists or checks
checkpoints (an ``ipyckpt list``, the Jupyter magics):

    ckpt = load(prefix, epoch=None)   # NoCheckpoint, DamagedImage
    problems = validate(ckpt)         # [] if the restorer would accept it
    result = verify(ckpt)             # problems, warnings, epochs needed

One concern a module: ``model`` the parsed image and what can be wrong with
it, ``read`` parsing the files of an image, ``check`` what the restorer would
make of them, ``report`` the text and exit status of ``ipyckpt inspect``.
"""
from .check import (Plan, Segment, Verification, check_crcs, plan, validate, verify,
                    vmas_overlapping)
from .model import (Checkpoint, DamagedImage, DataFile, DataRecord, Epoch, FileRecord,
                    NoCheckpoint, Problem, Range, State, Vma)
from .read import load, load_epoch, map_path
from .report import main, open_flags, report, verdict

__all__ = [
    "Checkpoint",
    "DamagedImage",
    "DataFile",
    "DataRecord",
    "Epoch",
    "FileRecord",
    "NoCheckpoint",
    "Plan",
    "Problem",
    "Range",
    "Segment",
    "State",
    "Verification",
    "Vma",
    "check_crcs",
    "load",
    "load_epoch",
    "main",
    "map_path",
    "open_flags",
    "plan",
    "report",
    "validate",
    "verdict",
    "verify",
    "vmas_overlapping",
]
