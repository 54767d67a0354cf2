"""Parse the files of a checkpoint image: P.map (or P.map.N), and P.data.N,
P.relro.N and P.state.N of every epoch on disk."""
import os
import zlib

from .. import launch
from .._layout import ffi, lib
from .model import (RANGE_REC, VMA_KINDS, Checkpoint, DamagedImage, DataFile, DataRecord, Epoch,
                    FileRecord, NoCheckpoint, Problem, Range, State, Vma)

MAP_HEADER = "struct ckpt_map_header"
FILE_REC = "struct ckpt_file_rec"
STATE_HEADER = "struct ckpt_state_header"
VMA_REC = "struct ckpt_vma_rec"
SIG_REC = "struct ckpt_sig_rec"
FILE_ID = "struct ckpt_file_id"
PRISTINE_REC = "struct ckpt_pristine_rec"


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
