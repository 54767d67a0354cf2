"""The traps of DESIGN section 4 and the core's refusals, each shown with a
small program from tests/programs in the zdtm shape: set up state,
checkpoint, kill, restart, verify.

- restart twice in a row (a restarted process checkpoints on, and its
  checkpoints restart too);
- system calls that write into write-protected memory (trap 1);
- SIGKILL in the middle of writing a checkpoint (trap 7);
- bad configuration (status 2, main never runs) and restarts that must be
  refused (status 3, a message naming the cause, nothing touched);
- threads (trap 6), a SIGSEGV handler of the program's own (trap 5), the
  mode of the image files (trap 8).
"""
import hashlib
import os
import signal
import time

import pytest

from conftest import map_epoch
from ipyckpt._layout import ffi
from test_seed_programs import (MODES, SEEDS, TWO_LINES, assert_files, read, run_to_end,
                                start, workdir)

RANGE_REC = ffi.sizeof("struct ckpt_range_rec")


# ---- restart twice -------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_restarted_process_checkpoints_again_and_restarts_again(build, ckpt_dir, tmp_path,
                                                                 mode):
    """rle: checkpoint, SIGKILL, restart; the restarted process takes a later
    epoch, SIGKILL again, restart again: data.rle and the output are those of
    an uninterrupted run."""
    seed = SEEDS["rle"]
    exe = build("rle")
    cwd = workdir(tmp_path, seed)
    prefix = ckpt_dir / "p"

    p = start(exe, cwd, prefix, period=MODES[mode])
    first = p.wait_checkpoint_after_line("rle: block 2")
    rc, out1, _ = p.kill()
    assert rc == -signal.SIGKILL, p.describe()

    p = start(exe, cwd, prefix, restart=True)
    p.wait_epoch(first + 1)                # taken by the restarted process
    rc, out2, _ = p.kill()
    assert rc == -signal.SIGKILL, "the restarted run ended before the kill:\n" + p.describe()
    assert "rle: block 1\n" not in out2 and "rle: block 2\n" not in out2, out2

    rc, out3, err3 = run_to_end(exe, cwd, prefix, restart=True)
    assert rc == 0, err3
    assert_files(cwd, seed)
    assert seed.stdout.endswith(out3), out3
    assert "rle: block 1\n" not in out3 and "rle: block 2\n" not in out3, out3
    assert len(out1) + len(out2) + len(out3) >= len(seed.stdout)


# ---- trap 1: the kernel writes into protected pages --------------------------------------

def fnv(data):
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return "%08x" % h


def test_syscalls_write_into_pages_protected_by_a_checkpoint(build, ckpt_dir, tmp_path):
    """read() into a heap buffer and into stack pages below the checkpoint's
    stack pointer, stat() into a heap struct and recv() into a heap buffer,
    all untouched since a checkpoint, succeed; after a kill and restart from
    a later checkpoint the buffers still hold what was read."""
    exe = build("efault")
    data = bytes((i * 7 + i // 4096) & 0xFF for i in range(3 * 1024 * 1024))
    (tmp_path / "efault_input.bin").write_bytes(data)
    big, on_stack = data[:2 * 1024 * 1024], data[:96 * 1024]
    msg = "hello through a socketpair"
    expect = ["read %d bytes into the heap, fnv %s\n" % (len(big), fnv(big)),
              "read %d bytes into the stack, fnv %s\n" % (len(on_stack), fnv(on_stack)),
              "stat size %d\n" % len(data),
              "recv %d bytes: %s\n" % (len(msg) + 1, msg),
              "taking the second checkpoint\n"]
    after = "after: heap fnv %s, stat size %d, message %s\n" % (fnv(big), len(data), msg)

    p = start(exe, tmp_path, ckpt_dir / "p")
    p.wait_checkpoint_after_line("taking the second checkpoint")
    rc, out1, err1 = p.kill()
    assert rc == -signal.SIGKILL, p.describe()
    assert out1 == "".join(expect), err1

    rc, out2, err2 = run_to_end(exe, tmp_path, ckpt_dir / "p", restart=True)
    assert (rc, out2) == (0, after), err2


# ---- trap 7: a crash while a checkpoint is written ---------------------------------------

def test_sigkill_while_writing_a_checkpoint_keeps_the_previous_one(build, ckpt_dir, tmp_path):
    """dirty_heap rewrites 384 MiB before each checkpoint.  SIGKILL while
    P.data.2 is being written and P.map still names epoch 1: the restart
    comes back from epoch 1 (round 1) and finishes with every round's memory
    checked."""
    exe = build("dirty_heap")
    prefix = ckpt_dir / "p"
    data2 = str(prefix) + ".data.2"

    p = start(exe, tmp_path, prefix)
    p.wait_epoch(1)
    deadline = time.monotonic() + 60
    while not (os.path.exists(data2) and os.path.getsize(data2) > 0):
        assert p.proc.poll() is None and time.monotonic() < deadline, p.describe()
        time.sleep(0.001)
    assert map_epoch(prefix) == 1
    rc, out1, _ = p.kill()
    assert rc == -signal.SIGKILL, p.describe()
    assert map_epoch(prefix) == 1, "the kill came after epoch 2 was committed"
    assert "round 2\n" in out1

    rc, out2, err2 = run_to_end(exe, tmp_path, prefix, restart=True)
    assert rc == 0, err2
    assert out2 == "restarted in round 1\nround 2\nround 3\ndone, all rounds checked\n", err2


# ---- bad configuration: status 2 before main -------------------------------------------

@pytest.mark.parametrize("prefix, period, variable", [
    (None, None, "CKPT_PREFIX"),
    ("", None, "CKPT_PREFIX"),
    ("p", "abc", "CKPT_PERIOD"),
    ("p", "-1", "CKPT_PERIOD"),
], ids=["prefix_unset", "prefix_empty", "period_abc", "period_negative"])
def test_bad_configuration_exits_2_before_main(build, tmp_path, prefix, period, variable):
    """CKPT_PREFIX unset or empty, CKPT_PERIOD not a number of seconds: exit
    status 2 with a message naming the variable; main never ran."""
    cwd = workdir(tmp_path, SEEDS["read_file"])
    if prefix:
        prefix = str(tmp_path / prefix)
    rc, out, err = run_to_end(build("read_file"), cwd, prefix, period=period)
    assert rc == 2, (rc, out, err)
    assert variable in err
    assert "before checkpoint" not in out


def aslr_is_on_by_default():
    with open("/proc/sys/kernel/randomize_va_space") as f:
        return f.read().strip() != "0"


@pytest.mark.skipif(not aslr_is_on_by_default(), reason="ASLR is off on this machine")
def test_run_without_setarch_exits_2_naming_setarch(build, ckpt_dir, tmp_path):
    """With ASLR on no checkpoint could ever be restarted: exit 2 before
    main, pointing at setarch, and no image written."""
    cwd = workdir(tmp_path, SEEDS["read_file"])
    rc, out, err = run_to_end(build("read_file"), cwd, ckpt_dir / "p", aslr_off=False)
    assert rc == 2, (rc, out, err)
    assert "setarch" in err
    assert "before checkpoint" not in out
    assert not os.listdir(str(ckpt_dir))


# ---- restarts that are refused: status 3, nothing touched --------------------------------

def test_restart_without_a_checkpoint_exits_3(build, ckpt_dir, tmp_path):
    """CKPT_RESTART with no P.map: exit 3 naming the missing file; main never ran."""
    cwd = workdir(tmp_path, SEEDS["read_file"])
    rc, out, err = run_to_end(build("read_file"), cwd, ckpt_dir / "p", restart=True)
    assert rc == 3, (rc, out, err)
    assert "p.map" in err and "refused" in err
    assert out == ""


def snapshot(*dirs):
    """Name -> (mode, sha256) of every file in dirs."""
    state = {}
    for d in dirs:
        for name in sorted(os.listdir(str(d))):
            path = os.path.join(str(d), name)
            state[path] = (os.stat(path).st_mode, hashlib.sha256(read(path)).hexdigest())
    return state


@pytest.fixture
def killed(build, ckpt_dir, tmp_path):
    """read_file killed after its checkpoint (epoch 0): (exe, cwd, prefix)."""
    exe = build("read_file")
    cwd = workdir(tmp_path, SEEDS["read_file"])
    prefix = ckpt_dir / "p"
    p = start(exe, cwd, prefix)
    p.wait_checkpoint_after_line("before checkpoint")
    assert p.kill()[0] == -signal.SIGKILL
    return exe, cwd, prefix


def flip_payload_byte(data_file):
    """Flip a byte in the middle of the largest record's memory bytes."""
    raw = bytearray(read(data_file))
    off, best = 0, None
    while off < len(raw):
        rec = ffi.from_buffer("struct ckpt_range_rec *", raw[off:off + RANGE_REC])
        size = rec.end - rec.start
        if best is None or size > best[1]:
            best = (off + RANGE_REC, size)
        off += RANGE_REC + size
    at = best[0] + best[1] // 2
    raw[at] ^= 0xFF
    with open(data_file, "wb") as f:
        f.write(raw)


def damage(kind, prefix, cwd):
    p = str(prefix)
    if kind == "map_truncated_in_header":
        os.truncate(p + ".map", 500)
    elif kind == "map_truncated_in_records":
        os.truncate(p + ".map", os.path.getsize(p + ".map") - 100)
    elif kind == "data_byte_flipped":
        flip_payload_byte(p + ".data.0")
    elif kind == "data_deleted":
        os.unlink(p + ".data.0")
    elif kind == "map_world_writable":
        os.chmod(p + ".map", 0o666)
    elif kind == "read_file_changed":
        # same size, other bytes, a newer mtime
        (cwd / "test_file_1.txt").write_text(TWO_LINES.upper())


REFUSALS = {
    # kind: (words the message must contain, can it be undone)
    "map_truncated_in_header": (["p.map", "truncated"], False),
    "map_truncated_in_records": (["p.map"], False),
    "data_byte_flipped": (["CRC"], False),
    "data_deleted": (["p.data.0"], False),
    "map_world_writable": (["p.map", "writable by no one else"], True),
    "read_file_changed": (["test_file_1.txt", "changed"], False),
}


@pytest.mark.parametrize("kind", REFUSALS)
def test_damaged_image_or_changed_input_is_refused(killed, kind):
    """A damaged image or a changed input file: status 3, a message that
    says what is wrong, and no file touched."""
    exe, cwd, prefix = killed
    words, undoable = REFUSALS[kind]
    damage(kind, prefix, cwd)
    before = snapshot(prefix.parent, cwd)
    rc, out, err = run_to_end(exe, cwd, prefix, restart=True)
    assert rc == 3, (rc, out, err)
    for w in words:
        assert w in err, err
    assert out == ""
    assert snapshot(prefix.parent, cwd) == before
    if undoable:
        os.chmod(str(prefix) + ".map", 0o600)
        assert run_to_end(exe, cwd, prefix, restart=True)[:2] == (0, "after checkpoint\n")


def test_untrusted_map_message_names_its_mode_and_your_uid(killed):
    """The refusal of a world-writable P.map states its mode and your uid."""
    exe, cwd, prefix = killed
    os.chmod(str(prefix) + ".map", 0o666)
    rc, out, err = run_to_end(exe, cwd, prefix, restart=True)
    assert rc == 3, (rc, out, err)
    assert "mode 666" in err and "(uid %d)" % os.getuid() in err, err


@pytest.mark.skipif(not aslr_is_on_by_default(), reason="ASLR is off on this machine")
def test_restart_with_aslr_on_is_refused_naming_setarch(killed):
    """A restart without setarch is refused (exit 3, naming setarch) and
    touches nothing: the same image restarts under setarch afterwards."""
    exe, cwd, prefix = killed
    before = snapshot(prefix.parent, cwd)
    rc, out, err = run_to_end(exe, cwd, prefix, restart=True, aslr_off=False)
    assert rc == 3, (rc, out, err)
    assert "setarch" in err
    assert snapshot(prefix.parent, cwd) == before
    assert run_to_end(exe, cwd, prefix, restart=True)[:2] == (0, "after checkpoint\n")


def test_refused_restart_leaves_written_files_alone(build, ckpt_dir, tmp_path):
    """rle killed after a checkpoint, with bytes in data.rle past the
    checkpoint's offset (written after it); the image is damaged: the
    refused restart must not cut data.rle back."""
    seed = SEEDS["rle"]
    exe = build("rle")
    cwd = workdir(tmp_path, seed)
    prefix = ckpt_dir / "p"
    p = start(exe, cwd, prefix)
    epoch = p.wait_checkpoint_after_line("rle: block 2")
    assert p.kill()[0] == -signal.SIGKILL
    with open(str(cwd / "data.rle"), "ab") as f:
        f.write(b"7 41\n")        # as if written after the checkpoint
    flip_payload_byte("%s.data.%d" % (prefix, epoch))
    before = snapshot(prefix.parent, cwd)
    rc, out, err = run_to_end(exe, cwd, prefix, restart=True)
    assert rc == 3, (rc, out, err)
    assert "CRC" in err
    assert snapshot(prefix.parent, cwd) == before


# ---- trap 6: threads ---------------------------------------------------------------------

def test_checkpoint_with_a_second_thread_fails_with_ebusy(build, ckpt_dir, tmp_path):
    """checkpoint() with a live second thread returns -1/EBUSY and says the
    process has 2 threads; the program goes on, and after joining the thread
    checkpoint() works again."""
    rc, out, err = run_to_end(build("threads", "-pthread"), tmp_path, ckpt_dir / "p")
    assert rc == 0, err
    first, second = out.splitlines()
    assert first.startswith("with 2 threads: rc -1 errno EBUSY: ")
    assert "2 threads" in first.split(": ", 1)[1]
    assert second == "after join: rc 0"
    assert map_epoch(ckpt_dir / "p") == 0


# ---- trap 5: the program's own SIGSEGV handler -------------------------------------------

SEGV_AFTER = "values ok\nhandler: SIGSEGV at (nil)\n"


@pytest.mark.parametrize("variant", ["sigaction", "altstack"])
def test_program_segv_handler_keeps_tracking_and_gets_real_faults(build, ckpt_dir, tmp_path,
                                                                   variant):
    """A SIGSEGV handler installed in main: write faults on checkpointed
    memory still go to the core (values survive kill + restart), and the
    genuine NULL write afterwards reaches the program's handler (exit 42)."""
    exe = build("segv_handler")
    args = (variant,) if variant == "altstack" else ()
    rc, out, err = run_to_end(exe, tmp_path, ckpt_dir / "straight", args=args)
    assert (rc, out) == (42, "values written\n" + SEGV_AFTER), err

    p = start(exe, tmp_path, ckpt_dir / "p", args=args)
    p.wait_checkpoint_after_line("values written")
    assert p.kill()[0] == -signal.SIGKILL, p.describe()
    rc, out, err = run_to_end(exe, tmp_path, ckpt_dir / "p", restart=True)
    assert (rc, out) == (42, SEGV_AFTER), err


# ---- trap 8: image files are private -----------------------------------------------------

def test_image_files_are_0600_in_a_0700_directory_whatever_the_umask(build, tmp_path):
    """Under umask 0 (a plain open(..., 0666) would be world-writable) the
    image files are 0600, and the directory of CKPT_PREFIX, which does not
    exist yet, is created 0700."""
    cwd = workdir(tmp_path, SEEDS["read_file"])
    exe = build("read_file")
    images = tmp_path / "images"
    rc, out, err = run_to_end("sh", cwd, images / "p", args=("-c", 'umask 0; exec "$0"', exe))
    assert (rc, out) == (0, TWO_LINES), err
    assert os.stat(str(images)).st_mode & 0o777 == 0o700
    for name in ("p.map", "p.map.0", "p.data.0", "p.state.0"):
        mode = os.stat(str(images / name)).st_mode & 0o777
        assert mode == 0o600, "%s has mode %o" % (name, mode)
