"""A full disk during a checkpoint: a clear error, the previous epoch intact."""
import os
import subprocess
import time

import pytest

from conftest import Run, map_epoch


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB tmpfs (root only: CI and this project's machines run as root)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here: " + r.stderr.strip())
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)])


def test_full_disk_fails_checkpoint_and_keeps_previous_epoch(build, small_disk, tmp_path):
    exe = build("disk_full")
    prefix = small_disk / "df"
    (tmp_path / "hold").touch()
    run = Run([exe], prefix, cwd=tmp_path)
    try:
        deadline = time.time() + 60
        while not (tmp_path / "reported").exists():
            assert run.proc.poll() is None and time.time() < deadline, run.wait()
            time.sleep(0.02)
        # the failed epoch left nothing behind; the committed one is untouched
        assert map_epoch(prefix) == 0
        assert [n for n in os.listdir(small_disk) if n.endswith(".1")] == []
        rc, out, err = run.kill()
    finally:
        (tmp_path / "hold").unlink()
    lines = out.splitlines()
    assert lines[0] == "epoch 0: 0"
    assert lines[1] == "epoch 1: -1 errno ENOSPC"
    assert "No space left on device" in lines[2] and "previous checkpoint is intact" in lines[2]
    assert lines[3] == "still running, big[5] = 7"

    rc, out, err = Run([exe], prefix, restart=True, cwd=tmp_path).wait()
    assert rc == 0, err
    assert out.splitlines() == ["restarted from epoch 0, marker original"]
