"""Notebooks on the ipyckpt kernel, through nbclient: checkpoint, SIGKILL the
front and the engine, bring the notebook back with the "restart from
checkpoint" kernel; a cell resumed mid-way; an engine that dies alone; the
extension on the stock Python kernel; the demo notebook."""
import os
import shutil

import nbformat
from nbclient import NotebookClient

from kernel_support import (  # noqa: F401  (kernelspecs is a fixture)
    REPO,
    NotebookRun,
    committed_epoch,
    errors,
    kernel_env,
    kernelspecs,
    kill,
    output_text,
    execute,
    sessions,
    shell_reply,
    start_kernel,
    stream_text,
    wait_for,
)


def test_checkpoint_sigkill_both_then_restart_brings_everything_back(kernelspecs, tmp_path):
    nb = tmp_path / "analysis.ipynb"
    with NotebookRun(nb, "ipyckpt") as run:
        run.run("import json\nimport numpy as np\nx = 41\ndata = {'a': [1, 2, 3]}\n"
                "arr = np.arange(10)\ndef twice(v):\n    return 2 * v")
        ck = run.run("%checkpoint")
        assert "checkpoint epoch 0:" in output_text(ck.outputs)
        assert ck.execution_count == 2
        run.run("x = 1000  # after the checkpoint: lost with the kernel")
        session = run.session
        run.kill_all()
    assert os.path.dirname(session) == str(tmp_path / ".ipyckpt" / "analysis")
    assert committed_epoch(session) == 0

    with NotebookRun(nb, "ipyckpt-restart") as run:
        first = run.run("print(x, data, arr.sum(), twice(4), json.dumps(data), np.__name__)")
        text = output_text(first.outputs)
        assert not errors(first.outputs), text
        assert "restored epoch 0 of %s" % session in text
        assert "restored from checkpoint epoch 0" in text  # %checkpoint's own line, resumed
        assert "41 {'a': [1, 2, 3]} 45 8 {\"a\": [1, 2, 3]} numpy" in text
        assert first.execution_count == 3  # the counter continues after [2]
        second = run.run("x + 1")
        assert second.execution_count == 4
        assert output_text(second.outputs) == "42"
        listing = output_text(run.run("%ckpt_list").outputs)
        assert "cell [2] %checkpoint" in listing
        # the restored engine keeps checkpointing into the same timeline
        assert "checkpoint epoch 1:" in output_text(run.run("%checkpoint").outputs)


def test_periodic_checkpoints_then_sigkill_and_restart(kernelspecs, tmp_path):
    nb = tmp_path / "periodic.ipynb"
    with NotebookRun(nb, "ipyckpt") as run:
        run.run("import os\ny = 7")
        period = run.run("%ckpt_period 1")
        assert "every 1 s of CPU time" in output_text(period.outputs)
        assert "every 1 s" in output_text(run.run("%ckpt_period").outputs)
        run.send("n = 0\nwhile not os.path.exists('stop'):\n    n += 1\nprint('burnt', n > 0)")
        session = run.session
        wait_for(lambda: (committed_epoch(session) or -1) >= 1, 60, "two periodic epochs")
        run.kill_all()
    (tmp_path / "stop").touch()

    with NotebookRun(nb, "ipyckpt-restart") as run:
        cell = run.run("print(y, n > 0)")
        text = output_text(cell.outputs)
        assert not errors(cell.outputs), text
        # the burning cell was running at the periodic checkpoint: it resumed
        assert "cell [4] was running when checkpoint epoch" in text
        assert "burnt True" in text
        assert text.index("burnt True") < text.index("7 True")
        assert cell.execution_count == 5
        # the period is part of the image
        assert "every 1 s" in output_text(run.run("%ckpt_period").outputs)


def test_a_cell_checkpointed_midway_resumes_and_its_output_follows(kernelspecs, tmp_path):
    nb = tmp_path / "midway.ipynb"
    (tmp_path / "hold").touch()
    with NotebookRun(nb, "ipyckpt") as run:
        run.run("import ipyckpt, os, time")
        run.send("for i in range(6):\n"
                 "    print('step', i, flush=True)\n"
                 "    if i == 2:\n"
                 "        ipyckpt.checkpoint()\n"
                 "        while os.path.exists('hold'):\n"
                 "            time.sleep(0.02)\n"
                 "print('loop done')")
        session = run.session
        wait_for(lambda: committed_epoch(session) == 0, 60, "the checkpoint inside the loop")
        run.kill_all()
    os.unlink(tmp_path / "hold")

    with NotebookRun(nb, "ipyckpt-restart") as run:
        cell = run.run("print('next cell')")
        text = output_text(cell.outputs)
        assert not errors(cell.outputs), text
        assert "cell [2] was running when checkpoint epoch 0 was taken" in text
        assert "for i in range(6):" in text  # the notice names the cell
        assert "step 2" not in text and "step 0" not in text  # resumed, not re-run
        positions = [text.index(s) for s in ("it resumed", "step 3", "step 4", "step 5",
                                             "loop done", "next cell")]
        assert positions == sorted(positions), text
        assert cell.execution_count == 3


def test_a_restored_cell_can_be_interrupted(kernelspecs, tmp_path):
    """SIGINT reaches a resumed cell: the handler and the signal mask came
    back with the image; the user's cell gets the KeyboardInterrupt."""
    nb = tmp_path / "spin.ipynb"
    with NotebookRun(nb, "ipyckpt") as run:
        run.send("import ipyckpt\nipyckpt.checkpoint()\nprint('spinning', flush=True)\n"
                 "while True:\n    pass")
        session = run.session
        wait_for(lambda: committed_epoch(session) == 0, 60, "the checkpoint")
        run.kill_all()
    km, kc = start_kernel("ipyckpt-restart", tmp_path, notebook=nb.name)
    try:
        # stop_on_error=False: the interrupted cell's error must not make the
        # kernel abort the next request, as Jupyter does for a failed cell
        msg_id = kc.execute("'never reached'", stop_on_error=False)
        wait_for(lambda: "spinning" in stream_text([kc.get_iopub_msg(timeout=30)]), 30,
                 "the resumed cell's output")
        km.interrupt_kernel()
        reply = shell_reply(kc, msg_id, timeout=30)["content"]
        assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
        msgs, reply = execute(kc, "'alive'")
        assert reply["status"] == "ok"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_a_restart_the_core_refuses_is_shown_and_the_kernel_starts_fresh(kernelspecs, tmp_path):
    nb = tmp_path / "refused.ipynb"
    with NotebookRun(nb, "ipyckpt") as run:
        run.run("%checkpoint")
        session = run.session
        run.kill_all()
    os.chmod(os.path.join(session, "engine.map.0"), 0o666)  # writable by others: untrusted
    with NotebookRun(nb, "ipyckpt-restart") as run:
        cell = run.run("'fresh'")
        text = output_text(cell.outputs)
        assert "could not be restored" in text and "started fresh" in text
        assert "nothing was changed" in text  # the core's own message, from its stderr
        assert cell.outputs[-1]["data"]["text/plain"] == "'fresh'"
        assert len(sessions(tmp_path, "refused")) == 2


def test_restart_kernel_without_a_checkpoint_starts_fresh_and_says_so(kernelspecs, tmp_path):
    with NotebookRun(tmp_path / "new.ipynb", "ipyckpt-restart") as run:
        cell = run.run("1 + 1")
        text = output_text(cell.outputs)
        assert "no checkpoint for %s" % (tmp_path / "new.ipynb") in text
        assert "started fresh" in text
        assert cell.outputs[-1]["data"]["text/plain"] == "2"
        assert cell.execution_count == 1


def test_engine_killed_alone_is_reported_and_ckpt_restore_brings_it_back(kernelspecs, tmp_path):
    with NotebookRun(tmp_path / "crash.ipynb", "ipyckpt") as run:
        run.run("z = 5")
        run.run("%checkpoint")
        run.run("z = 6")
        dying = run.run("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
        text = output_text(dying.outputs)
        assert "EngineDied" in text
        assert "killed by SIGKILL (out of memory?)" in text
        assert "while cell [4] was running" in text
        assert "The latest checkpoint is epoch 0" in text and "%ckpt_restore" in text
        assert "restart from checkpoint" in text

        other = run.run("z")
        assert "has no engine" in output_text(other.outputs)
        assert "%ckpt_restore" in output_text(other.outputs)

        back = run.run("%ckpt_restore")
        text = output_text(back.outputs)
        assert not errors(back.outputs), text
        assert "restored epoch 0" in text and "restored from checkpoint epoch 0" in text
        after = run.run("z")
        assert output_text(after.outputs) == "5"


def test_segfault_in_c_code_is_reported(kernelspecs, tmp_path):
    with NotebookRun(tmp_path / "segv.ipynb", "ipyckpt") as run:
        cell = run.run("import ctypes\nctypes.string_at(0)")
        text = output_text(cell.outputs)
        assert "segmentation fault (SIGSEGV)" in text
        assert "no checkpoint of this session" in text
        # a fresh engine on request, in a new session folder
        again = run.run("%ckpt_restore")
        assert "started a fresh engine" in output_text(again.outputs)
        assert output_text(run.run("2 + 2").outputs) == "4"
        assert len(sessions(tmp_path, "segv")) == 2


def test_load_ext_on_the_stock_python_kernel_says_what_to_do(tmp_path):
    with NotebookRun(tmp_path / "stock.ipynb", "python3") as run:
        cell = run.run("%load_ext ipyckpt")
        assert not errors(cell.outputs)
        text = output_text(cell.outputs)
        assert "does not run under ipyckpt's checkpointing core" in text
        assert "Python 3 (ipyckpt)" in text and "Change Kernel" in text
        assert "Traceback" not in text
        later = run.run("%checkpoint")
        assert not errors(later.outputs)
        assert "Change Kernel" in output_text(later.outputs)


def test_checkpoint_dir_from_traitlets_config(kernelspecs, tmp_path):
    config_dir = tmp_path / "jupyter-config"
    config_dir.mkdir()
    target = tmp_path / "elsewhere"
    (config_dir / "ipyckpt_kernel_config.py").write_text(
        "c.IPyCkpt.checkpoint_dir = %r\nc.IPyCkpt.period = 600\n"
        % (str(target) + "/{notebook_stem}-ckpts"))
    nbdir = tmp_path / "work"
    nbdir.mkdir()
    with NotebookRun(nbdir / "conf.ipynb", "ipyckpt", JUPYTER_CONFIG_DIR=str(config_dir)) as run:
        text = output_text(run.run("%checkpoint\n%ckpt_status").outputs)
        assert str(target / "conf-ckpts") in text
        assert "every 600 s" in output_text(run.run("%ckpt_period").outputs)
    assert not (nbdir / ".ipyckpt").exists()
    [session] = os.listdir(target / "conf-ckpts")
    assert committed_epoch(str(target / "conf-ckpts" / session)) == 0


def test_demo_notebook_runs_end_to_end(kernelspecs, tmp_path):
    shutil.copy(os.path.join(REPO, "notebooks", "demo.ipynb"), tmp_path / "demo.ipynb")
    nb = nbformat.read(str(tmp_path / "demo.ipynb"), as_version=4)
    client = NotebookClient(nb, kernel_name="ipyckpt", timeout=120,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=kernel_env("demo.ipynb"))
    text = "\n".join(output_text(c.get("outputs", [])) for c in nb.cells if c.cell_type == "code")
    assert "checkpoint epoch 0:" in text
    assert not [e for c in nb.cells for e in errors(c.get("outputs", []))]
