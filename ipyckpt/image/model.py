"""The parsed checkpoint image, and the problems found in it."""
import os
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from .._layout import lib

RANGE_REC = "struct ckpt_range_rec"

VMA_KINDS = {
    lib.CKPT_VMA_ANON: "anon",
    lib.CKPT_VMA_FILE: "file",
    lib.CKPT_VMA_HEAP: "heap",
    lib.CKPT_VMA_STACK: "stack",
    lib.CKPT_VMA_ALTSTACK: "sigstack",
}


# ---- results ----------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """Something that makes the restorer refuse the image (or would, were the
    epoch it is in needed): the file, where in it, and what is wrong."""

    path: str
    what: str
    where: str = ""

    def __str__(self):
        return "%s: %s%s" % (self.path, self.where + ": " if self.where else "", self.what)


class NoCheckpoint(FileNotFoundError):
    """There is no map at the prefix (or for the epoch asked for)."""

    def __str__(self):
        return self.args[0]


class DamagedImage(Exception):
    """The map itself cannot be parsed, so there is nothing more to look at."""

    def __init__(self, problem):
        super().__init__(str(problem))
        self.problem = problem


# ---- the parsed image ----------------------------------------------------------


@dataclass(frozen=True)
class Range:
    start: int
    end: int
    crc32: int
    write_protect: bool

    @property
    def size(self):
        return self.end - self.start


@dataclass(frozen=True)
class FileRecord:
    name: str
    flags: int
    fd: int
    offset: int


@dataclass(frozen=True)
class Vma:
    start: int
    end: int
    offset: int
    dev: int
    ino: int
    size: int
    mtime_ns: int
    prot: int
    kind: int
    path: Optional[str]
    shared: bool


@dataclass(frozen=True)
class DataRecord:
    """A record of P.data.N; offset is where its bytes start in the file."""

    start: int
    end: int
    offset: int


@dataclass
class DataFile:
    path: str
    size: int
    records: List[DataRecord]

    @property
    def memory_bytes(self):
        return sum(r.end - r.start for r in self.records)


@dataclass
class State:
    """The parts of P.state.N that a reader of the image cares about."""

    path: str
    epoch: int
    page_size: int
    umask: int
    cwd: Optional[str]
    exe: Optional[str]
    preload: Optional[str]
    rlimit_stack: int
    vdso: Tuple[int, int]
    vvar: Tuple[int, int]
    sig_cnt: int
    fid_cnt: int
    vmas: List[Vma]
    pristine: List[Tuple[int, int]]

    @property
    def pristine_bytes(self):
        return sum(e - s for s, e in self.pristine)


@dataclass
class Epoch:
    """The files of one epoch; data/state/relro are None if missing or
    unreadable.  problems are those of data and state, which every restore
    through this epoch reads; relro_problems those of P.relro.N, which only
    a restore of this very epoch reads."""

    number: int
    data_path: str
    state_path: str
    relro_path: str
    data: Optional[DataFile] = None
    state: Optional[State] = None
    relro: Optional[DataFile] = None
    missing: List[str] = field(default_factory=list)  # of data_path, state_path
    problems: List[Problem] = field(default_factory=list)
    relro_problems: List[Problem] = field(default_factory=list)


@dataclass
class Checkpoint:
    prefix: str
    map_path: str
    epoch: int
    period: int
    brk: int
    stack: int
    maxfd: int
    ranges: List[Range]
    files: List[FileRecord]
    epochs: dict  # number -> Epoch: the map's own and every older one with files
    problems: List[Problem]  # of the map itself

    @property
    def state(self):
        """The sidecar of the map's own epoch, which describes its mappings."""
        return self.epochs[self.epoch].state

    @property
    def page_size(self):
        return self.state.page_size if self.state else os.sysconf("SC_PAGE_SIZE")

    @property
    def memory_bytes(self):
        return sum(r.size for r in self.ranges)


# ---- sizes, in the words of both the problems and the report ---------------------


def _size(n):
    """A byte count in human terms: 512 B, 8 KiB, 1.0 MiB, 2.5 GiB."""
    if n < 1024:
        return "%d B" % n
    if n < 1 << 20:
        return ("%d KiB" if n % 1024 == 0 else "%.1f KiB") % (n / 1024)
    if n < 1 << 30:
        return "%.1f MiB" % (n / (1 << 20))
    return "%.1f GiB" % (n / (1 << 30))
