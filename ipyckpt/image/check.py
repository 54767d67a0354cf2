"""Check a parsed image as the restorer would, without restoring it.

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
import zlib
from dataclasses import dataclass
from typing import List, Optional

from .._layout import ffi, lib
from .model import RANGE_REC, Problem, _size
from .read import load_epoch

CHUNK = 1 << 20  # bytes read at a time while checking CRCs
ZEROS = memoryview(bytes(CHUNK))


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
