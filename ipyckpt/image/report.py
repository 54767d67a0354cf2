"""Print a checkpoint image and its verdict: ``ipyckpt inspect``."""
import mmap
import os
import sys

from .. import launch
from .check import verify, vmas_overlapping
from .model import VMA_KINDS, DamagedImage, NoCheckpoint, _size
from .read import load, map_path

# Longest first where one flag's bits include another's (O_SYNC, O_TMPFILE).
OPEN_FLAGS = [name for name in (
    "O_TMPFILE", "O_SYNC", "O_DSYNC", "O_APPEND", "O_CREAT", "O_EXCL", "O_TRUNC",
    "O_NONBLOCK", "O_CLOEXEC", "O_DIRECTORY", "O_NOFOLLOW", "O_NOCTTY", "O_NOATIME",
    "O_DIRECT", "O_ASYNC", "O_PATH") if getattr(os, name, 0)]


# ---- printing ------------------------------------------------------------------


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
