"""Memory that changes shape behind the tracker's back, killed and restarted."""
import subprocess
import sys

from conftest import Run, wait_for_epoch


def test_block_moved_by_realloc_stays_writable_and_is_saved(build, ckpt_dir):
    exe = build("realloc_move")
    prefix = ckpt_dir / "mv"
    r = Run([exe], prefix)
    rc, out, err = r.wait()
    assert rc == 0, err
    expected_sum = 3 + 1 * (10 * 256 - 1) + 2 * (30 * 256)
    assert out.splitlines() == ["first checkpoint 0", "moved 1",
                                "second checkpoint taken sum %d" % expected_sum]

    rc, out, err = Run([exe], prefix, restart=True).wait()
    assert rc == 0, err
    # the moved block came back from epoch 1 with its new content
    assert out.splitlines() == ["second checkpoint restarted sum %d" % expected_sum]
    inspect = subprocess.run([sys.executable, "-m", "ipyckpt", "inspect", str(prefix)], capture_output=True, text=True)
    assert inspect.returncode == 0, inspect.stdout + inspect.stderr


def test_file_mapping_past_the_end_of_its_file_is_left_out(build, ckpt_dir, tmp_path):
    exe = build("file_shrunk")
    prefix = ckpt_dir / "shrunk"
    rc, out, err = Run([exe], prefix, cwd=tmp_path).wait()
    assert rc == 0, err
    assert out.splitlines() == ["epoch 0: 0", "epoch 1: taken: first page, changed"]
    rc, out, err = Run([exe], prefix, restart=True, cwd=tmp_path).wait()
    assert rc == 0, err
    assert out.splitlines() == ["epoch 1: restarted: first page, changed"]
