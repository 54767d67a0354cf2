"""Read, print and validate a checkpoint image: ``ipyckpt inspect``.

The layout comes from native/image.h through ``ipyckpt._layout`` (cffi):
every size, offset and field type below is asked of ``ffi``, so this module
follows the header when it changes instead of silently misreading images.

The reusable API, for ``ipyckpt inspect`` and whatever else lists or checks
checkpoints (an ``ipyckpt list``, the Jupyter magics):

    ckpt = load(prefix, epoch=None)   # NoCheckpoint, DamagedImage
    problems = validate(ckpt)         # [] if the restorer would accept it
    result = verify(ckpt)             # problems, warnings, epochs needed

Validation mirrors native/restore.c: the checks of its phase 1, then the
copy of phase 2 replayed on paper.  Epochs are walked from the map's epoch
down, each epoch's data records before its pristine records, a page restored
by a newer epoch is never overwritten, pages outside the map's ranges are
skipped, and the walk stops once every range is covered.  The bytes each
range would receive are then streamed through zlib's CRC-32 and compared with
the map.  The plan holds one segment per (record, range) piece rather than
one entry per page, so a multi-GiB image costs memory in proportion to its
record count, and its bytes are read a MiB at a time.
"""
import bisect
import mmap
import os
import sys
import zlib
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from . import launch
from ._layout import ffi, lib

MAP_HEADER = "struct ckpt_map_header"
RANGE_REC = "struct ckpt_range_rec"
FILE_REC = "struct ckpt_file_rec"
STATE_HEADER = "struct ckpt_state_header"
VMA_REC = "struct ckpt_vma_rec"
SIG_REC = "struct ckpt_sig_rec"
FILE_ID = "struct ckpt_file_id"
PRISTINE_REC = "struct ckpt_pristine_rec"

CHUNK = 1 << 20  # bytes read at a time while checking CRCs
ZEROS = memoryview(bytes(CHUNK))

VMA_KINDS = {
    lib.CKPT_VMA_ANON: "anon",
    lib.CKPT_VMA_FILE: "file",
    lib.CKPT_VMA_HEAP: "heap",
    lib.CKPT_VMA_STACK: "stack",
    lib.CKPT_VMA_ALTSTACK: "sigstack",
}

# Longest first where one flag's bits include another's (O_SYNC, O_TMPFILE).
OPEN_FLAGS = [name for name in (
    "O_TMPFILE", "O_SYNC", "O_DSYNC", "O_APPEND", "O_CREAT", "O_EXCL", "O_TRUNC",
    "O_NONBLOCK", "O_CLOEXEC", "O_DIRECTORY", "O_NOFOLLOW", "O_NOCTTY", "O_NOATIME",
    "O_DIRECT", "O_ASYNC", "O_PATH") if getattr(os, name, 0)]


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


# ---- reading -----------------------------------------------------------------


def _array(ctype, buf, offset, count):
    """count structs of ctype at offset in buf, as cdata (valid while buf is)."""
    size = ffi.sizeof(ctype)
    return ffi.from_buffer(ctype + "[]", memoryview(buf)[offset:offset + count * size])


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def map_path(prefix, epoch=None):
    """P.map, or P.map.N of epoch N."""
    return "%s.map" % prefix if epoch is None else "%s.map.%d" % (prefix, epoch)


def load(prefix, epoch=None):
    """Parse P.map (or P.map.N) and the files of its epoch and of every older
    one on disk.  Raises NoCheckpoint if the map is not there and
    DamagedImage if it cannot be parsed; other damage is recorded in the
    problems of the checkpoint and of its epochs, for validate() to report."""
    path = map_path(prefix, epoch)
    try:
        raw = _read(path)
    except FileNotFoundError:
        raise NoCheckpoint(_no_checkpoint_message(prefix, path)) from None
    ckpt = _parse_map(prefix, path, raw)
    if epoch is not None and ckpt.epoch != epoch:
        ckpt.problems.append(Problem(path, "holds epoch %d, not %d" % (ckpt.epoch, epoch)))
    numbers = {n for n in _epochs_with_files(prefix) if n <= ckpt.epoch} | {ckpt.epoch}
    ckpt.epochs = {n: load_epoch(prefix, n) for n in sorted(numbers, reverse=True)}
    return ckpt


def _epochs_with_files(prefix):
    """Every N with some P.<kind>.N on disk (a damaged header's epoch may be
    anything, so the numbers come from the directory, not from counting)."""
    directory, base = os.path.split(prefix)
    heads = [base + kind + "." for kind in launch.EPOCH_FILES]
    return {int(name[len(h):]) for name in os.listdir(directory or ".") for h in heads
            if name.startswith(h) and name[len(h):].isdigit()}


def _no_checkpoint_message(prefix, path):
    on_disk = launch.epochs(prefix) if os.path.isdir(os.path.dirname(prefix) or ".") else []
    if not on_disk:
        return ("no checkpoint at %s; PREFIX is the CKPT_PREFIX the program ran with "
                "(files PREFIX.map, PREFIX.data.N)" % path)
    return "no checkpoint at %s; epochs on disk: %s" % (path, ", ".join(map(str, on_disk)))


def _parse_map(prefix, path, raw):
    head_size = ffi.sizeof(MAP_HEADER)
    if len(raw) < head_size:
        raise DamagedImage(Problem(path, "truncated: %d bytes, less than its %d-byte header"
                                   % (len(raw), head_size)))
    h = ffi.from_buffer(MAP_HEADER + " *", raw)
    if h.range_cnt < 0 or h.file_cnt < 0:
        raise DamagedImage(Problem(path, "negative record counts in the header (%d ranges, "
                                   "%d files)" % (h.range_cnt, h.file_cnt)))
    need = (head_size + h.range_cnt * ffi.sizeof(RANGE_REC) + h.file_cnt * ffi.sizeof(FILE_REC))
    if len(raw) != need:
        raise DamagedImage(Problem(path, "%d bytes, but a %d-byte header with %d ranges of %d "
                                   "bytes and %d files of %d bytes makes %d; the file is %s"
                                   % (len(raw), head_size, h.range_cnt, ffi.sizeof(RANGE_REC),
                                      h.file_cnt, ffi.sizeof(FILE_REC), need,
                                      "truncated" if len(raw) < need else "too long")))
    ranges = [Range(r.start, r.end, r.crc32, bool(r.write_protect))
              for r in _array(RANGE_REC, raw, head_size, h.range_cnt)]
    files_at = head_size + h.range_cnt * ffi.sizeof(RANGE_REC)
    problems = []
    files = []
    for i, f in enumerate(_array(FILE_REC, raw, files_at, h.file_cnt)):
        rec = _file_record(f)
        files.append(rec)
        problems += _file_problems(path, i, files_at + i * ffi.sizeof(FILE_REC), f, rec,
                                   h.maxfd)
    if h.period < 0:
        problems.append(Problem(path, "negative period %d" % h.period, "header"))
    return Checkpoint(prefix, path, h.epoch, h.period, h.brk, h.stack, h.maxfd, ranges, files,
                      {}, problems)


def _file_record(f):
    return FileRecord(os.fsdecode(ffi.string(f.name)), f.flags, f.fd, f.offset)


def _file_problems(path, i, offset, f, rec, maxfd):
    where = "file record %d at offset %d" % (i, offset)
    problems = []
    if b"\0" not in ffi.unpack(f.name, lib.MAXFILENAME):
        problems.append(Problem(path, "name is not NUL-terminated within %d bytes"
                                % lib.MAXFILENAME, where))
    elif not rec.name.startswith("/"):
        problems.append(Problem(path, "name %r is not an absolute path" % rec.name, where))
    if not 0 <= rec.fd <= maxfd:
        problems.append(Problem(path, "descriptor %d is outside 0..%d (maxfd)"
                                % (rec.fd, maxfd), where))
    if rec.offset < 0:
        problems.append(Problem(path, "negative offset %d" % rec.offset, where))
    return problems


def load_epoch(prefix, n):
    """The files of epoch n, parsed as far as they are sound."""
    ep = Epoch(n, "%s.data.%d" % (prefix, n), "%s.state.%d" % (prefix, n),
               "%s.relro.%d" % (prefix, n))
    ep.missing = [p for p in (ep.data_path, ep.state_path) if not os.path.exists(p)]
    if ep.state_path not in ep.missing:
        ep.state = _parse_state(ep.state_path, n, ep.problems)
    page = ep.state.page_size if ep.state else os.sysconf("SC_PAGE_SIZE")
    if ep.data_path not in ep.missing:
        ep.data = _parse_records(ep.data_path, page, ep.problems)
    if os.path.exists(ep.relro_path):
        ep.relro = _parse_records(ep.relro_path, page, ep.relro_problems)
    return ep


def _parse_records(path, page, problems):
    """Walk the record chain of P.data.N or P.relro.N (headers only: the
    bytes may be GiB)."""
    rec_size = ffi.sizeof(RANGE_REC)
    records = []
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        off = 0
        while off < size:
            where = "record %d at offset %d" % (len(records), off)
            f.seek(off)
            head = f.read(rec_size)
            if len(head) < rec_size:
                problems.append(Problem(path, "truncated: a record header needs %d bytes, "
                                        "only %d remain" % (rec_size, len(head)), where))
                break
            r = ffi.from_buffer(RANGE_REC + " *", head)
            if r.start >= r.end or r.start % page or r.end % page:
                problems.append(Problem(path, "range %#x-%#x is empty or not page aligned"
                                        % (r.start, r.end), where))
                break
            if off + rec_size + (r.end - r.start) > size:
                problems.append(Problem(path, "truncated: range %#x-%#x needs %d bytes after "
                                        "its header, the file has %d" % (
                                            r.start, r.end, r.end - r.start,
                                            size - off - rec_size), where))
                break
            records.append(DataRecord(r.start, r.end, off + rec_size))
            off += rec_size + (r.end - r.start)
    return DataFile(path, size, records)


def _parse_state(path, epoch, problems):
    """Parse P.state.N with the checks of restore.c's load_state; None if it
    is too damaged to read anything from."""
    raw = bytearray(_read(path))
    head_size = ffi.sizeof(STATE_HEADER)
    if len(raw) < head_size:
        problems.append(Problem(path, "truncated: %d bytes, less than its %d-byte header"
                                % (len(raw), head_size)))
        return None
    h = ffi.from_buffer(STATE_HEADER + " *", raw)
    if (h.magic, h.version, h.header_size) != (lib.CKPT_STATE_MAGIC, lib.CKPT_STATE_VERSION,
                                              head_size):
        problems.append(Problem(path, "not a version %d state file (magic %#x, version %d, "
                                "header size %d; expected %#x, %d, %d)" % (
                                    lib.CKPT_STATE_VERSION, h.magic, h.version, h.header_size,
                                    lib.CKPT_STATE_MAGIC, lib.CKPT_STATE_VERSION, head_size)))
        return None
    counts = [(VMA_REC, h.vma_cnt), (SIG_REC, h.sig_cnt), (FILE_ID, h.fid_cnt),
              (PRISTINE_REC, h.pristine_cnt)]
    need = head_size + sum(ffi.sizeof(t) * n for t, n in counts) + h.strtab_size
    if len(raw) != need:
        problems.append(Problem(path, "%d bytes, but its counts (%d mappings, %d signals, "
                                "%d file ids, %d pristine ranges, %d bytes of strings) make "
                                "%d" % (len(raw), h.vma_cnt, h.sig_cnt, h.fid_cnt,
                                        h.pristine_cnt, h.strtab_size, need)))
        return None
    stored = h.crc32
    h.crc32 = 0
    crc = zlib.crc32(raw)
    h.crc32 = stored
    if crc != stored:
        problems.append(Problem(path, "corrupted: CRC-32 of the file is %08x, its header "
                                "says %08x" % (crc, stored)))
        return None
    if h.epoch != epoch:
        problems.append(Problem(path, "belongs to epoch %d" % h.epoch, "header"))
    if h.page_size != os.sysconf("SC_PAGE_SIZE"):
        problems.append(Problem(path, "written with %d-byte pages, this machine has %d; "
                                "restore it where it was taken"
                                % (h.page_size, os.sysconf("SC_PAGE_SIZE")), "header"))
        return None
    return _state_records(path, raw, h, counts, problems)


def _state_records(path, raw, h, counts, problems):
    offsets = [ffi.sizeof(STATE_HEADER)]
    for ctype, n in counts:
        offsets.append(offsets[-1] + ffi.sizeof(ctype) * n)
    strtab = bytes(raw[offsets[-1]:])
    if strtab and strtab[-1] != 0:
        problems.append(Problem(path, "the string table is not NUL-terminated",
                                "offset %d" % (len(raw) - 1)))
        return None

    def string(off, what):
        if off == lib.CKPT_NO_STRING:
            return None
        if not 0 <= off < len(strtab):
            problems.append(Problem(path, "%s points at string %d, outside the %d-byte table"
                                    % (what, off, len(strtab))))
            return None
        return os.fsdecode(strtab[off:strtab.index(b"\0", off)])

    vmas = [Vma(v.start, v.end, v.offset, v.dev, v.ino, v.size, v.mtime_ns, v.prot, v.kind,
                string(v.path, "mapping %d" % i), bool(v.flags & lib.CKPT_VMAF_SHARED))
            for i, v in enumerate(_array(VMA_REC, raw, offsets[0], h.vma_cnt))]
    pristine = [(p.start, p.end) for p in _array(PRISTINE_REC, raw, offsets[3], h.pristine_cnt)]
    problems += _vma_problems(path, vmas, h.page_size, offsets[0])
    problems += _pristine_problems(path, pristine, h.page_size, offsets[3])
    return State(path, h.epoch, h.page_size, h.umask, string(h.cwd, "cwd"),
                 string(h.exe, "exe"), string(h.preload, "preload"), h.rlimit_stack,
                 (h.vdso_start, h.vdso_end), (h.vvar_start, h.vvar_end), h.sig_cnt, h.fid_cnt,
                 vmas, pristine)


def _vma_problems(path, vmas, page, base):
    problems = []
    for i, v in enumerate(vmas):
        where = "mapping %d at offset %d" % (i, base + i * ffi.sizeof(VMA_REC))
        if v.start >= v.end or v.start % page or v.end % page:
            problems.append(Problem(path, "%#x-%#x is empty or not page aligned"
                                    % (v.start, v.end), where))
        elif i and v.start < vmas[i - 1].end:
            problems.append(Problem(path, "%#x-%#x is out of order or overlaps the mapping "
                                    "before" % (v.start, v.end), where))
        if v.kind not in VMA_KINDS:
            problems.append(Problem(path, "unknown kind %d" % v.kind, where))
    return problems


def _pristine_problems(path, pristine, page, base):
    return [Problem(path, "%#x-%#x is empty or not page aligned" % (s, e),
                    "pristine record %d at offset %d" % (i, base + i * ffi.sizeof(PRISTINE_REC)))
            for i, (s, e) in enumerate(pristine) if s >= e or s % page or e % page]


# ---- checking the map against the format -----------------------------------------


def _range_problems(ckpt):
    """restore.c's check_ranges, plus: every range lies in a mapping of the
    map's epoch, or the restorer would have nowhere to copy it to."""
    page = ckpt.page_size
    problems = []
    for i, r in enumerate(ckpt.ranges):
        where = "range %d" % i
        if r.start >= r.end or r.start % page or r.end % page:
            problems.append(Problem(ckpt.map_path, "%#x-%#x is empty or not aligned to %d-byte "
                                    "pages" % (r.start, r.end, page), where))
        elif i and r.start < ckpt.ranges[i - 1].end:
            problems.append(Problem(ckpt.map_path, "%#x-%#x is out of order or overlaps the "
                                    "range before" % (r.start, r.end), where))
        elif ckpt.state and _uncovered(ckpt.state.vmas, r):
            a, b = _uncovered(ckpt.state.vmas, r)[0]
            problems.append(Problem(ckpt.map_path, "%#x-%#x is not mapped according to %s "
                                    "(first hole %#x-%#x)" % (r.start, r.end,
                                                              ckpt.state.path, a, b), where))
    return problems


def _relro_problems(ckpt):
    """restore.c's check_relro (trap 15): every restore of epoch N puts back
    P.relro.N, so it must be whole and hold only pages of read-only file
    mappings of the image."""
    ep = ckpt.epochs[ckpt.epoch]
    if ep.relro is None:
        return [Problem(ep.relro_path, "missing; it holds the relocated read-only pages "
                        "(RELRO) of epoch %d, which every restore of it puts back" % ckpt.epoch)]
    problems = list(ep.relro_problems)
    if not ckpt.state:
        return problems  # its mappings are unknown; plan() reports why
    vmas = ckpt.state.vmas
    for i, rec in enumerate(ep.relro.records):
        v = next((v for v in vmas_overlapping(vmas, rec.start, rec.end)
                  if v.start <= rec.start and rec.end <= v.end), None)
        if v is None or v.kind != lib.CKPT_VMA_FILE or v.prot & mmap.PROT_WRITE:
            problems.append(Problem(ep.relro_path, "%#x-%#x is not inside one read-only file "
                                    "mapping of %s" % (rec.start, rec.end, ep.state_path),
                                    "record %d at offset %d" % (
                                        i, rec.offset - ffi.sizeof(RANGE_REC))))
    return problems


def _mapped_file_problems(state):
    """restore.c's check_mappings (trap 4): a file mapped when the checkpoint
    was taken must still be the same file, or the image's view of it (code,
    pristine pages) would not match."""
    problems = []
    files = {(v.path, v.dev, v.ino, v.size, v.mtime_ns): v.start
             for v in reversed(state.vmas) if v.kind == lib.CKPT_VMA_FILE}
    for (path, dev, ino, size, mtime_ns), start in sorted(files.items(), key=lambda f: f[1]):
        if path is None:
            problems.append(Problem(state.path, "the file mapping at %#x has no path" % start))
            continue
        try:
            st = os.stat(path)
        except OSError as e:
            problems.append(Problem(path, "mapped at %#x when the checkpoint was taken, and "
                                    "gone now (%s)" % (start, e.strerror)))
            continue
        changes = _changes(st, dev, ino, size, mtime_ns)
        if changes:
            problems.append(Problem(path, "changed since the checkpoint (%s), when it was mapped "
                                    "at %#x; reinstalled or rebuilt?  Put the old one back or "
                                    "start afresh" % (changes, start)))
    return problems


def _changes(st, dev, ino, size, mtime_ns):
    """How a file differs from the identity a checkpoint recorded, in words."""
    changes = []
    if (st.st_dev, st.st_ino) != (dev, ino):
        changes.append("another inode")
    if st.st_size != size:
        changes.append("size %d, was %d" % (st.st_size, size))
    if st.st_mtime_ns != mtime_ns:
        changes.append("modified %.3f s later" % ((st.st_mtime_ns - mtime_ns) / 1e9))
    return ", ".join(changes)


def _uncovered(vmas, r):
    spans = _Spans()
    for v in vmas_overlapping(vmas, r.start, r.end):
        spans.add(v.start, v.end)
    return list(spans.gaps(r.start, r.end))


def vmas_overlapping(vmas, start, end):
    """The mappings (sorted, disjoint) that overlap [start, end)."""
    i = max(bisect.bisect_right([v.start for v in vmas], start) - 1, 0)
    return [v for v in vmas[i:] if v.start < end and v.end > start]


# ---- the restorer's walk, on paper ---------------------------------------------------


class _Spans:
    """Sorted, disjoint, merged [start, end) spans: the restorer's list of
    what is already restored (or found)."""

    def __init__(self):
        self.starts = []
        self.ends = []

    def add(self, start, end):
        i = bisect.bisect_left(self.ends, start)
        j = bisect.bisect_right(self.starts, end)
        if i < j:
            start = min(start, self.starts[i])
            end = max(end, self.ends[j - 1])
        self.starts[i:j] = [start]
        self.ends[i:j] = [end]

    def gaps(self, start, end):
        """The parts of [start, end) not in any span, in order."""
        i = bisect.bisect_right(self.ends, start)
        x = start
        while x < end and i < len(self.starts) and self.starts[i] < end:
            if self.starts[i] > x:
                yield x, self.starts[i]
            x = max(x, self.ends[i])
            i += 1
        if x < end:
            yield x, end


@dataclass(frozen=True)
class Segment:
    """A piece of one range and where the restorer takes its bytes from:
    path at offset (a data file, or the file a private mapping maps), or
    zeros when path is None."""

    start: int
    end: int
    epoch: int
    path: Optional[str] = None
    offset: int = 0


@dataclass
class Plan:
    segments: List[Segment]
    needed: List[int]  # the epochs the restorer reads, newest first
    problems: List[Problem]


def _new_spans(ranges, starts, done, start, end):
    """The parts of [start, end) inside the map's ranges and not yet done
    (restore.c's for_each_new, without the insert)."""
    i = max(bisect.bisect_right(starts, start) - 1, 0)
    for r in ranges[i:]:
        if r.start >= end:
            break
        yield from done.gaps(max(r.start, start), min(r.end, end))


def _pristine_segments(vmas, start, end, epoch):
    """Pristine pages as the restorer gets them back: dropping them leaves
    the file's bytes in a private file mapping and zeros anywhere else."""
    x = start
    for v in vmas_overlapping(vmas, start, end):
        a, b = max(v.start, start), min(v.end, end)
        if a > x:
            yield Segment(x, a, epoch)
        if v.kind == lib.CKPT_VMA_FILE and not v.shared:
            yield Segment(a, b, epoch, v.path, v.offset + (a - v.start))
        else:
            yield Segment(a, b, epoch)
        x = b
    if x < end:
        yield Segment(x, end, epoch)


def plan(ckpt):
    """Where the restorer would take every byte of every range from."""
    ranges = ckpt.ranges
    starts = [r.start for r in ranges]
    vmas = ckpt.state.vmas if ckpt.state else []
    done = _Spans()
    result = Plan([], [], [])
    for n in range(ckpt.epoch, -1, -1):
        if n != ckpt.epoch and not _missing_pages(ranges, done):
            break
        result.needed.append(n)
        ep = ckpt.epochs.get(n) or load_epoch(ckpt.prefix, n)
        if ep.missing or ep.problems:
            why = ("a restore of epoch %d reads it" % n if n == ckpt.epoch else
                   "restoring epoch %d needs it: %s of memory are in no newer epoch"
                   % (ckpt.epoch, _size(_missing_pages(ranges, done))))
            result.problems += [Problem(p, "missing; " + why) for p in ep.missing] + ep.problems
            return result
        for rec in ep.data.records:
            result.segments += [Segment(a, b, n, ep.data.path, rec.offset + (a - rec.start))
                                for a, b in _new_spans(ranges, starts, done, rec.start, rec.end)]
            done.add(rec.start, rec.end)
        for s, e in ep.state.pristine:
            for a, b in _new_spans(ranges, starts, done, s, e):
                result.segments += _pristine_segments(vmas, a, b, n)
            done.add(s, e)
    missing = _missing_pages(ranges, done)
    if missing:
        a, b = next(g for r in ranges for g in done.gaps(r.start, r.end))
        result.problems.append(Problem(ckpt.map_path, "the data files of epochs %d..0 do not "
                                       "hold %s of its memory, first %#x-%#x; a .data file is "
                                       "from another run" % (ckpt.epoch, _size(missing), a, b)))
    return result


def _missing_pages(ranges, done):
    """Bytes of the ranges not yet found."""
    return sum(b - a for r in ranges for a, b in done.gaps(r.start, r.end))


# ---- CRCs -------------------------------------------------------------------


class _Files:
    """Open files by path, each once, for the CRC pass."""

    def __init__(self):
        self.handles = {}

    def get(self, path):
        if path not in self.handles:
            self.handles[path] = open(path, "rb")
        return self.handles[path]

    def close(self):
        for f in self.handles.values():
            f.close()


def _segment_crc(seg, crc, files):
    """Fold the bytes of seg into crc, a MiB at a time; past the end of a
    backing file a mapping reads zeros."""
    length = seg.end - seg.start
    if seg.path is None:
        for done in range(0, length, CHUNK):
            crc = zlib.crc32(ZEROS[:min(CHUNK, length - done)], crc)
        return crc
    f = files.get(seg.path)
    f.seek(seg.offset)
    for done in range(0, length, CHUNK):
        want = min(CHUNK, length - done)
        chunk = f.read(want)
        crc = zlib.crc32(chunk + ZEROS[:want - len(chunk)], crc)
    return crc


def check_crcs(ckpt, segments):
    """Compare every range's reconstructed bytes with the map's CRC-32."""
    problems = []
    segments = sorted(segments, key=lambda s: s.start)
    starts = [s.start for s in segments]
    files = _Files()
    try:
        for i, r in enumerate(ckpt.ranges):
            lo, hi = bisect.bisect_left(starts, r.start), bisect.bisect_left(starts, r.end)
            crc = 0
            try:
                for seg in segments[lo:hi]:
                    crc = _segment_crc(seg, crc, files)
            except OSError as e:
                problems.append(Problem(e.filename, "cannot be read (%s); range %d needs it"
                                        % (e.strerror, i)))
                continue
            if crc != r.crc32:
                sources = sorted({s.epoch for s in segments[lo:hi]}, reverse=True)
                problems.append(Problem(ckpt.map_path, "%#x-%#x (%s): CRC-32 of the bytes a "
                                        "restore would put there is %08x, the map says %08x; "
                                        "they come from epoch%s %s" % (
                                            r.start, r.end, _size(r.size), crc, r.crc32,
                                            "s" if len(sources) > 1 else "",
                                            ", ".join(map(str, sources))), "range %d" % i))
    finally:
        files.close()
    return problems


# ---- verification ------------------------------------------------------------


@dataclass
class Verification:
    problems: List[Problem]  # the restorer would refuse, or resume a wrong image
    warnings: List[Problem]  # damage in epochs this restore does not read
    needed: List[int]        # epochs the restorer reads, newest first
    crc_checked: bool


def verify(ckpt):
    """Everything validate() finds, with the epochs the restore needs."""
    problems = ckpt.problems + _range_problems(ckpt) + _relro_problems(ckpt)
    if ckpt.state:
        problems += _mapped_file_problems(ckpt.state)
    p = plan(ckpt)
    problems += p.problems
    warnings = [q for n, ep in sorted(ckpt.epochs.items(), reverse=True)
                if n not in p.needed for q in ep.problems]
    crc_checked = not problems
    if crc_checked:
        problems = check_crcs(ckpt, p.segments)
    return Verification(problems, warnings, p.needed, crc_checked)


def validate(ckpt):
    """The problems that make the checkpoint unrestorable; [] if it is sound."""
    return verify(ckpt).problems


# ---- printing ------------------------------------------------------------------


def _size(n):
    """A byte count in human terms: 512 B, 8 KiB, 1.0 MiB, 2.5 GiB."""
    if n < 1024:
        return "%d B" % n
    if n < 1 << 20:
        return ("%d KiB" if n % 1024 == 0 else "%.1f KiB") % (n / 1024)
    if n < 1 << 30:
        return "%.1f MiB" % (n / (1 << 20))
    return "%.1f GiB" % (n / (1 << 30))


def open_flags(flags):
    """open(2) flags in the words of the C source: O_WRONLY|O_APPEND."""
    names = [{os.O_RDONLY: "O_RDONLY", os.O_WRONLY: "O_WRONLY", os.O_RDWR: "O_RDWR"}.get(
        flags & os.O_ACCMODE, "O_ACCMODE=%d" % (flags & os.O_ACCMODE))]
    rest = flags & ~os.O_ACCMODE
    for name in OPEN_FLAGS:
        bits = getattr(os, name)
        if rest & bits == bits:
            names.append(name)
            rest &= ~bits
    if rest:
        names.append("%#o" % rest)
    return "|".join(names)


def _prot(prot):
    return "".join(c if prot & bit else "-" for c, bit in (
        ("r", mmap.PROT_READ), ("w", mmap.PROT_WRITE), ("x", mmap.PROT_EXEC)))


def _table(rows, right=()):
    """Rows of cells as aligned text; columns in right are right-aligned."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [str(c).rjust(w) if i in right else str(c).ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  " + "  ".join(cells).rstrip())
    return lines


def _mapping_pieces(vmas, r):
    """The mappings under range r as (start, end, vma) pieces, adjacent ones
    that look alike (split by write protection) merged into one."""
    pieces = []
    for v in vmas_overlapping(vmas, r.start, r.end):
        a, b = max(v.start, r.start), min(v.end, r.end)
        last = pieces[-1][2] if pieces else None
        if last and pieces[-1][1] == a and (last.prot, last.kind, last.path, last.shared) == (
                v.prot, v.kind, v.path, v.shared):
            pieces[-1] = (pieces[-1][0], b, last)
        else:
            pieces.append((a, b, v))
    return pieces


def _range_rows(ckpt):
    rows = [("#", "start", "end", "size", "wp", "crc32", "prot", "kind", "mapping")]
    vmas = ckpt.state.vmas if ckpt.state else []
    for i, r in enumerate(ckpt.ranges):
        head = (i, "%#x" % r.start, "%#x" % r.end, _size(r.size),
                "yes" if r.write_protect else "no", "%08x" % r.crc32)
        pieces = _mapping_pieces(vmas, r)
        if not pieces:
            rows.append(head + ("?", "?", "(not in the state file's mappings)"))
        for a, b, v in pieces:
            where = v.path or ""
            if len(pieces) > 1:
                where = ("%#x-%#x %s" % (a, b, where)).rstrip()
            rows.append(head + (_prot(v.prot) + ("s" if v.shared else "p"),
                                VMA_KINDS.get(v.kind, str(v.kind)), where))
            head = ("",) * len(head)
    return rows


def _epoch_rows(ckpt, needed):
    page = ckpt.page_size
    rows = [("epoch", "data file", "records", "pages", "pristine pages", "relro pages",
             "restore")]
    for n, ep in sorted(ckpt.epochs.items(), reverse=True):
        data, state = ep.data, ep.state
        status = "needed" if n in needed else "not needed"
        if ep.problems:
            status += ", damaged"
        elif ep.missing:
            status += ", missing " + " and ".join(os.path.basename(p) for p in ep.missing)
        rows.append((n, "%s B" % format(data.size, ",") if data else "-",
                     len(data.records) if data else "-",
                     data.memory_bytes // page if data else "-",
                     state.pristine_bytes // page if state else "-",
                     ep.relro.memory_bytes // page if ep.relro else "-", status))
    return rows


def _facts(ckpt):
    s = ckpt.state
    facts = [("map", ckpt.map_path), ("epoch", ckpt.epoch),
             ("period", "%d s of CPU time" % ckpt.period if ckpt.period else "on demand"),
             ("program break", "%#x" % ckpt.brk), ("stack pointer", "%#x" % ckpt.stack)]
    if s:
        facts += [("executable", s.exe or "?"), ("cwd", s.cwd or "?"),
                  ("umask", "%04o" % s.umask), ("LD_PRELOAD", s.preload or "(none)"),
                  ("signals", "%d dispositions saved" % s.sig_cnt),
                  ("vdso", "%#x-%#x (vvar %#x-%#x)" % (s.vdso + s.vvar)),
                  ("stack limit", _size(s.rlimit_stack) if s.rlimit_stack < 1 << 62
                   else "unlimited"),
                  ("page size", s.page_size)]
    width = max(len(k) for k, _ in facts)
    return ["  %-*s  %s" % (width, k, v) for k, v in facts]


def report(ckpt, result):
    """The whole report as lines of text."""
    lines = ["Checkpoint %s" % ckpt.prefix] + _facts(ckpt)
    lines += ["", "Ranges: %d, %s of writable memory" % (len(ckpt.ranges),
                                                         _size(ckpt.memory_bytes))]
    lines += _table(_range_rows(ckpt), right=(0, 3))
    lines += ["", "Files: %d" % len(ckpt.files)]
    if ckpt.files:
        lines += _table([("fd", "flags", "offset", "name")] + [
            (f.fd, open_flags(f.flags), f.offset, f.name) for f in ckpt.files], right=(0, 2))
    lines += ["", "Epochs (newest first; a restore reads %s)"
              % ", ".join(map(str, result.needed))]
    lines += _table(_epoch_rows(ckpt, result.needed), right=(0, 1, 2, 3, 4, 5))
    if result.warnings:
        lines += ["", "Warnings (epochs this restore does not read):"]
        lines += ["  " + str(w) for w in result.warnings]
    if result.problems:
        lines += ["", "Problems:"] + ["  " + str(p) for p in result.problems]
    return lines + ["", verdict(ckpt, result)]


def verdict(ckpt, result):
    """One line: restorable or not, and what to do about it."""
    problems = result.problems
    if not problems:
        return "OK: epoch %d is restorable (%d ranges, %s, CRCs match)" % (
            ckpt.epoch, len(ckpt.ranges), _size(ckpt.memory_bytes))
    count = "%d problem%s%s" % (len(problems), "s" if len(problems) > 1 else "",
                                "" if result.crc_checked else "; CRCs not checked until fixed")
    image_files = [p for p in problems if p.path.startswith(ckpt.prefix + ".")]
    if not image_files:
        return ("NOT RESTORABLE HERE: files that epoch %d maps changed since it was taken (%s)"
                % (ckpt.epoch, count))
    return "DAMAGED: epoch %d cannot be restored (%s)%s" % (
        ckpt.epoch, count, _older_epoch_hint(ckpt.prefix, ckpt.map_path, ckpt.epoch))


def _older_epoch_hint(prefix, path, below=None):
    """Where to look next when the map at path is damaged: the newest other
    P.map.N (P.map is a hard link to one of them, damaged alike)."""
    older = [n for n in launch.epochs(prefix) if (below is None or n < below)
             and not os.path.samefile(map_path(prefix, n), path)]
    if not older:
        return ""
    return "; an older epoch may be sound: ipyckpt inspect %s --epoch %d" % (prefix, older[-1])


def main(args):
    """``ipyckpt inspect PREFIX [--epoch N]``: 0 if restorable, 1 if not."""
    try:
        ckpt = load(args.prefix, args.epoch)
    except NoCheckpoint as e:
        print("ipyckpt inspect: %s" % e, file=sys.stderr)
        return 1
    except DamagedImage as e:
        path = e.problem.path
        print("Problems:\n  %s\n\nDAMAGED: %s cannot be read (not written by this version "
              "of ipyckpt, or cut short)%s" % (e.problem, path,
                                                _older_epoch_hint(args.prefix, path, args.epoch)))
        return 1
    result = verify(ckpt)
    print("\n".join(report(ckpt, result)))
    return 1 if result.problems else 0
