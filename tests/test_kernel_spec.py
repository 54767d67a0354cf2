"""The two kernelspecs, both ways they reach Jupyter: written by
`ipyckpt install`, and shipped as data files that `pip install .` puts under
share/jupyter/kernels."""
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None

from kernel_support import REPO, execute, start_kernel

from ipyckpt.kernel import spec

NAMES = {"ipyckpt": "Python 3 (ipyckpt)",
         "ipyckpt-restart": "Python 3 (ipyckpt, restart from checkpoint)"}


def kernelspec_list(jupyter_data):
    env = dict(os.environ, JUPYTER_PATH=jupyter_data)
    out = subprocess.run([sys.executable, "-m", "jupyter", "kernelspec", "list", "--json"],
                         env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out)["kernelspecs"]


def test_install_command_writes_both_kernelspecs(tmp_path):
    r = subprocess.run([sys.executable, "-m", "ipyckpt", "install", "--prefix", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "installed kernelspec ipyckpt " in r.stdout
    found = kernelspec_list(str(tmp_path / "share" / "jupyter"))
    for name, display in NAMES.items():
        assert found[name]["spec"]["display_name"] == display
        argv = found[name]["spec"]["argv"]
        assert argv[:3] == ["setarch", "--addr-no-randomize", sys.executable]
        assert argv[3:5] == ["-m", "ipyckpt.kernel"]
        assert ("--restart" in argv) == (name == "ipyckpt-restart")
        assert argv[-2:] == ["-f", "{connection_file}"]
        assert os.path.exists(os.path.join(found[name]["resource_dir"], "logo-64x64.png"))


def test_install_choices_are_exclusive():
    r = subprocess.run([sys.executable, "-m", "ipyckpt", "install", "--user", "--sys-prefix"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "not allowed with" in r.stderr


def test_shipped_kernelspecs_match_the_install_command():
    for name in NAMES:
        with open(os.path.join(REPO, "jupyter-config", "kernels", name, "kernel.json")) as f:
            assert json.load(f) == spec.kernelspec(name, spec.DATA_FILE_PYTHON)


@pytest.mark.skipif(tomllib is None, reason="reads pyproject.toml with tomllib")
def test_pyproject_ships_every_kernelspec_file():
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        data_files = tomllib.load(f)["tool"]["setuptools"]["data-files"]
    for name in NAMES:
        listed = sorted(data_files["share/jupyter/kernels/%s" % name])
        folder = os.path.join("jupyter-config", "kernels", name)
        assert listed == sorted(os.path.join(folder, f)
                                for f in os.listdir(os.path.join(REPO, folder)))


def test_data_file_kernelspec_starts_a_working_kernel(tmp_path):
    """The shipped kernel.json, as Jupyter finds it after `pip install .`:
    its "{prefix}/bin/python3" is this interpreter's environment."""
    if not os.path.exists(os.path.join(sys.prefix, "bin", "python3")):
        pytest.skip("no python3 in %s/bin" % sys.prefix)
    data = tmp_path / "share" / "jupyter"
    shutil.copytree(os.path.join(REPO, "jupyter-config", "kernels"), data / "kernels")
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(data)
    try:
        km, kc = start_kernel("ipyckpt", tmp_path, notebook="shipped.ipynb")
        try:
            msgs, reply = execute(kc, "%checkpoint")
            assert reply["status"] == "ok"
            assert "checkpoint epoch 0" in "".join(
                m["content"].get("text", "") for m in msgs if m["msg_type"] == "stream")
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    finally:
        if old is None:
            os.environ.pop("JUPYTER_PATH")
        else:
            os.environ["JUPYTER_PATH"] = old


def test_a_built_wheel_carries_the_kernelspecs(tmp_path):
    """`pip install .` installs a wheel; its .data/data/share/jupyter/kernels go
    under the environment's prefix, where Jupyter finds them.  Built from a
    copy of the sources without build isolation (offline); not installed
    (pip would replace this environment's ipyckpt): its data tree is laid
    out as pip lays it out, and listed by Jupyter."""
    src = tmp_path / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".git", "build", "*.egg-info", "__pycache__", ".pytest_cache", "*.so", "tests",
        "notebooks", "bench", "examples", ".ipyckpt"))
    wheels = tmp_path / "wheels"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "-q", "-w", str(wheels), str(src)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot build a wheel here: %s" % r.stderr[-500:])
    [wheel] = os.listdir(wheels)
    prefix = tmp_path / "prefix"
    with zipfile.ZipFile(wheels / wheel) as z:
        data = [n for n in z.namelist() if ".data/data/" in n]
        for name in data:
            dest = prefix / name.split(".data/data/", 1)[1]
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(z.read(name))
    found = kernelspec_list(str(prefix / "share" / "jupyter"))
    for name, display in NAMES.items():
        assert found[name]["spec"]["display_name"] == display
        assert found[name]["spec"]["argv"][2] == spec.DATA_FILE_PYTHON
