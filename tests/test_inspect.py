"""`ipyckpt inspect`: a real image from tests/programs/inspect_subject.c is
reported sound, and each kind of damage to it is named precisely.

The subject takes epochs 0, 1, 2 on demand; each test takes a fresh image and
damages it the way a full disk, a bad sector or a careless `rm` would.  Offsets
into the image are computed with the same cffi layout the inspector uses.
"""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import Run
from ipyckpt._layout import ffi

EPOCHS = 3
RANGE_REC = ffi.sizeof("struct ckpt_range_rec")


@pytest.fixture
def image(build, ckpt_dir, tmp_path):
    """The prefix of a fresh three-epoch checkpoint of inspect_subject."""
    return take_image(build("inspect_subject"), ckpt_dir / "subject", tmp_path / "out.txt")


def take_image(exe, prefix, out):
    """Run the subject under the core (manual mode); returns the prefix."""
    run = Run([exe, str(out), str(EPOCHS)], prefix)
    rc, stdout, stderr = run.wait()
    assert rc == 0, "inspect_subject failed (%s): %s%s" % (rc, stdout, stderr)
    assert os.path.exists(str(prefix) + ".map")
    return str(prefix)


def inspect(prefix, *extra):
    """Run the CLI; returns (exit status, stdout + stderr)."""
    p = subprocess.run([sys.executable, "-m", "ipyckpt", "inspect", str(prefix), *extra],
                       capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


def data_records(path):
    """(file offset of the record header, start, end) of each record."""
    records, off, size = [], 0, os.path.getsize(path)
    with open(path, "rb") as f:
        while off < size:
            f.seek(off)
            r = ffi.from_buffer("struct ckpt_range_rec *", f.read(RANGE_REC))
            records.append((off, r.start, r.end))
            off += RANGE_REC + r.end - r.start
    return records


def map_ranges(path):
    """(start, end) of each range record of a .map."""
    with open(path, "rb") as f:
        raw = f.read()
    h = ffi.from_buffer("struct ckpt_map_header *", raw)
    at = ffi.sizeof("struct ckpt_map_header")
    recs = ffi.from_buffer("struct ckpt_range_rec[]", raw[at:at + h.range_cnt * RANGE_REC])
    return [(r.start, r.end) for r in recs]


def flip_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xff]))


def replace_truncated(path, size):
    """Cut path to size bytes without touching its hard links (P.map.N)."""
    with open(path, "rb") as f:
        head = f.read(size)
    os.unlink(path)
    with open(path, "wb") as f:
        f.write(head)


def test_sound_image_is_reported_and_ok(image, tmp_path):
    rc, out = inspect(image)
    assert rc == 0, out
    assert "epoch          %d" % (EPOCHS - 1) in out
    assert "Ranges: " in out and "heap" in out and "stack" in out
    assert str(tmp_path / "out.txt") in out
    assert "O_WRONLY|O_APPEND" in out
    assert "umask          0" in out
    assert "a restore reads 2, 1, 0" in out
    assert out.rstrip().splitlines()[-1].startswith("OK: epoch %d is restorable" % (EPOCHS - 1))
    assert "CRCs match" in out


def test_api_validates_sound_image(image):
    from ipyckpt.image import load, validate, verify

    ckpt = load(image)
    assert ckpt.epoch == EPOCHS - 1
    assert validate(ckpt) == []
    assert verify(ckpt).needed == [2, 1, 0]
    assert [f.name.endswith("out.txt") for f in ckpt.files] == [True]


def test_epoch_option_inspects_older_map(image):
    rc, out = inspect(image, "--epoch", "0")
    assert rc == 0, out
    assert image + ".map.0" in out
    assert "a restore reads 0)" in out
    assert "OK: epoch 0 is restorable" in out


def test_older_epoch_does_not_read_newer_files(image):
    os.unlink(image + ".data.2")
    rc, out = inspect(image, "--epoch", "1")
    assert rc == 0, out
    assert "OK: epoch 1 is restorable" in out


def test_missing_epoch_option_lists_epochs_on_disk(image):
    rc, out = inspect(image, "--epoch", "7")
    assert rc == 1
    assert "no checkpoint at %s.map.7" % image in out
    assert "epochs on disk: 0, 1, 2" in out


def test_truncated_map_names_file_and_sizes(image):
    full = os.path.getsize(image + ".map")
    replace_truncated(image + ".map", full - 100)
    rc, out = inspect(image)
    assert rc == 1, out
    assert "%s.map: %d bytes" % (image, full - 100) in out
    assert "makes %d" % full in out and "truncated" in out


def test_map_shorter_than_header_names_header_size(image):
    replace_truncated(image + ".map", 100)
    rc, out = inspect(image)
    assert rc == 1, out
    assert "%s.map: truncated: 100 bytes, less than its %d-byte header" % (
        image, ffi.sizeof("struct ckpt_map_header")) in out


def test_data_cut_mid_record_names_file_and_offset(image):
    path = image + ".data.0"
    off, start, end = data_records(path)[1]
    replace_truncated(path, off + RANGE_REC + (end - start) // 2)
    rc, out = inspect(image)
    assert rc == 1, out
    assert "%s: record 1 at offset %d: truncated" % (path, off) in out
    assert "DAMAGED: epoch 2 cannot be restored" in out


def test_data_cut_mid_header_names_file_and_offset(image):
    path = image + ".data.1"
    records = data_records(path)
    off = records[-1][0]
    replace_truncated(path, off + RANGE_REC // 2)
    rc, out = inspect(image)
    assert rc == 1, out
    assert ("%s: record %d at offset %d: truncated: a record header needs %d bytes, only %d "
            "remain" % (path, len(records) - 1, off, RANGE_REC, RANGE_REC // 2)) in out


def test_flipped_data_byte_is_crc_mismatch_naming_range(image):
    path = image + ".data.2"
    off, start, end = data_records(path)[0]
    flip_byte(path, off + RANGE_REC + 100)
    rc, out = inspect(image)
    assert rc == 1, out
    ranges = map_ranges(image + ".map")
    i, (rs, re) = next((i, r) for i, r in enumerate(ranges) if r[0] <= start < r[1])
    assert "range %d: %#x-%#x" % (i, rs, re) in out
    assert "CRC-32" in out and "the map says" in out
    assert "DAMAGED" in out


def test_api_names_the_damaged_range(image):
    from ipyckpt.image import load, validate

    path = image + ".data.0"
    off, start, end = data_records(path)[0]
    flip_byte(path, off + RANGE_REC)
    ranges = map_ranges(image + ".map")
    i = next(i for i, r in enumerate(ranges) if r[0] <= start < r[1])
    # the map of epoch 0 takes every page from P.data.0
    problems = validate(load(image, 0))
    assert [(p.path, p.where) for p in problems] == [(image + ".map.0", "range %d" % i)]


def test_corrupted_state_sidecar_is_refused(image):
    path = image + ".state.2"
    flip_byte(path, os.path.getsize(path) - 2)  # inside the string table
    rc, out = inspect(image)
    assert rc == 1, out
    assert "%s: corrupted: CRC-32 of the file is" % path in out


def test_truncated_state_sidecar_is_refused(image):
    path = image + ".state.1"
    replace_truncated(path, os.path.getsize(path) - 8)
    rc, out = inspect(image)
    assert rc == 1, out
    assert path + ": " in out and "its counts" in out


def test_missing_data_file_is_named(image):
    os.unlink(image + ".data.1")
    rc, out = inspect(image)
    assert rc == 1, out
    assert "%s.data.1: missing; restoring epoch 2 needs it" % image in out


def test_missing_relro_file_is_named(image):
    os.unlink(image + ".relro.2")
    rc, out = inspect(image)
    assert rc == 1, out
    assert "%s.relro.2: missing" % image in out


def test_changed_executable_is_not_restorable_here(build, ckpt_dir, tmp_path):
    exe = str(tmp_path / "subject")
    shutil.copy2(build("inspect_subject"), exe)
    prefix = take_image(exe, ckpt_dir / "subject", tmp_path / "out.txt")
    with open(exe, "ab") as f:
        f.write(b"\0")  # as a rebuild would
    rc, out = inspect(prefix)
    assert rc == 1, out
    assert "%s: changed since the checkpoint (size" % exe in out
    assert "NOT RESTORABLE HERE" in out


def test_missing_prefix_says_no_checkpoint(tmp_path):
    rc, out = inspect(tmp_path / "nothing")
    assert rc == 1
    assert "no checkpoint at %s.map" % (tmp_path / "nothing") in out
