"""C unit tests of the core's parts, built from native/ and run on their own."""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NATIVE = os.path.join(ROOT, "native")


def build_and_run(tmp_path, test, *sources):
    exe = str(tmp_path / test)
    subprocess.run(["gcc", "-std=gnu11", "-O1", "-g", "-Wall", "-Werror", "-I" + NATIVE,
                    os.path.join(NATIVE, "tests", test + ".c"),
                    *[os.path.join(NATIVE, s) for s in sources], "-o", exe], check=True)
    return subprocess.run([exe], capture_output=True, text=True)


def test_range_lists_sort_coalesce_and_split(tmp_path):
    r = build_and_run(tmp_path, "test_ranges", "ranges.c", "palloc.c")
    failed = [line for line in r.stdout.splitlines() if line.startswith("not ok")]
    assert r.returncode == 0 and not failed, r.stdout
    assert r.stdout.count("\nok - ") >= 20
