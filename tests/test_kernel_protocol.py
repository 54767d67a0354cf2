"""The "Python 3 (ipyckpt)" kernel speaks Jupyter like the stock Python
kernel: real kernels started through jupyter_client from the installed
kernelspec, driven with a BlockingKernelClient."""
import base64
import os
import re
import time
import uuid

import pytest

from kernel_support import (  # noqa: F401  (kernelspecs is a fixture)
    collect,
    execute,
    gone,
    kernelspecs,
    session_of,
    shell_reply,
    start_kernel,
    stream_text,
    wait_for,
)


@pytest.fixture(scope="module")
def kernel(kernelspecs, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("protocol")
    km, kc = start_kernel("ipyckpt", cwd, notebook="protocol.ipynb")
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=False)


@pytest.fixture
def kc(kernel):
    return kernel[1]


def of_type(msgs, msg_type):
    return [m for m in msgs if m["msg_type"] == msg_type]


def test_kernel_info(kc):
    msg_id = kc.kernel_info()
    content = shell_reply(kc, msg_id)["content"]
    assert content["implementation"] == "ipyckpt"
    assert content["language_info"]["name"] == "python"
    assert "kernel subshells" not in content.get("supported_features", [])


def test_stdout_stderr_and_c_level_writes(kc):
    msgs, reply = execute(kc, (
        "import os, sys, ctypes\n"
        "print('from print')\n"
        "os.write(1, b'from os.write\\n')\n"
        "ctypes.CDLL(None).printf(b'from printf %d\\n', 7)\n"
        "print('to stderr', file=sys.stderr)\n"
        "os.write(2, b'fd 2 directly\\n')\n"))
    assert reply["status"] == "ok"
    out, err = stream_text(msgs, "stdout"), stream_text(msgs, "stderr")
    assert out.index("from print") < out.index("from os.write")
    assert "from printf 7" in out
    assert "to stderr" in err and "fd 2 directly" in err


def test_execute_result_has_the_execution_count(kc):
    msgs, reply = execute(kc, "6 * 7")
    [inp] = of_type(msgs, "execute_input")
    [res] = of_type(msgs, "execute_result")
    assert res["content"]["data"]["text/plain"] == "42"
    assert res["content"]["execution_count"] == reply["execution_count"] == \
        inp["content"]["execution_count"]
    msgs2, reply2 = execute(kc, "'next'")
    assert reply2["execution_count"] == reply["execution_count"] + 1
    # silent cells do not count
    _, silent = execute(kc, "1", silent=True)
    _, after = execute(kc, "2")
    assert after["execution_count"] == reply2["execution_count"] + 1


def test_error_traceback(kc):
    msgs, reply = execute(kc, "def f():\n    raise ValueError('boom')\nf()")
    assert reply["status"] == "error"
    assert reply["ename"] == "ValueError" and reply["evalue"] == "boom"
    [err] = of_type(msgs, "error")
    assert err["content"]["ename"] == "ValueError"
    plain = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(err["content"]["traceback"]))
    assert "----> 3 f()" in plain and "ValueError: boom" in plain


def test_display_with_display_id_and_update(kc):
    msgs, reply = execute(kc, (
        "from IPython.display import display, HTML\n"
        "h = display(HTML('<b>first</b>'), display_id='d1')\n"
        "h.update(HTML('<b>second</b>'))\n"))
    assert reply["status"] == "ok"
    [disp] = of_type(msgs, "display_data")
    [upd] = of_type(msgs, "update_display_data")
    assert disp["content"]["transient"]["display_id"] == "d1"
    assert upd["content"]["transient"]["display_id"] == "d1"
    assert "first" in disp["content"]["data"]["text/html"]
    assert "second" in upd["content"]["data"]["text/html"]


def test_clear_output(kc):
    msgs, _ = execute(kc, "from IPython.display import clear_output\n"
                          "print('gone soon')\nclear_output(wait=True)\nprint('stays')")
    kinds = [m["msg_type"] for m in msgs if m["msg_type"] != "execute_input"]
    assert kinds.index("clear_output") > 0
    assert of_type(msgs, "clear_output")[0]["content"]["wait"] is True
    assert "stays" in stream_text(msgs[kinds.index("clear_output"):])


def test_matplotlib_inline_figure(kc):
    msgs, reply = execute(kc, "import matplotlib.pyplot as plt\n"
                              "plt.plot([1, 3, 2])\nplt.title('t')\nplt.show()", timeout=120)
    assert reply["status"] == "ok", reply
    images = [m for m in of_type(msgs, "display_data") if "image/png" in m["content"]["data"]]
    assert images
    assert base64.b64decode(images[0]["content"]["data"]["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"


def test_input_through_stdin(kc):
    msg_id = kc.execute("name = input('who? ')\nprint('hello', name)", allow_stdin=True)
    request = kc.get_stdin_msg(timeout=30)
    assert request["msg_type"] == "input_request"
    assert request["content"]["prompt"] == "who? "
    assert request["parent_header"]["msg_id"] == msg_id
    kc.input("bob")
    reply = shell_reply(kc, msg_id)
    assert reply["content"]["status"] == "ok"
    assert "hello bob" in stream_text(collect(kc, msg_id))


def test_input_without_stdin_is_an_error(kc):
    _, reply = execute(kc, "input()", allow_stdin=False)
    assert reply["status"] == "error" and reply["ename"] == "StdinNotImplementedError"


def test_complete(kc):
    execute(kc, "my_unusual_variable = 1")
    msg_id = kc.complete("my_unu", 6)
    content = shell_reply(kc, msg_id)["content"]
    assert "my_unusual_variable" in content["matches"]
    assert content["cursor_start"] == 0 and content["cursor_end"] == 6


def test_inspect(kc):
    execute(kc, "def documented(a, b=2):\n    'Adds things up.'\n    return a + b")
    msg_id = kc.inspect("documented", 10, detail_level=0)
    content = shell_reply(kc, msg_id)["content"]
    assert content["found"] is True
    assert "Adds things up." in content["data"]["text/plain"]
    # obj? in a cell: the pager payload
    _, reply = execute(kc, "documented?")
    assert reply["payload"] and reply["payload"][0]["source"] == "page"


def test_is_complete(kc):
    msg_id = kc.is_complete("for i in range(3):")
    content = shell_reply(kc, msg_id)["content"]
    assert content["status"] == "incomplete" and content["indent"] == "    "
    msg_id = kc.is_complete("x = 1")
    assert shell_reply(kc, msg_id)["content"]["status"] == "complete"
    msg_id = kc.is_complete("x = )")
    assert shell_reply(kc, msg_id)["content"]["status"] == "invalid"


def test_history(kc):
    marker = "history_marker_%s = 1" % uuid.uuid4().hex[:8]
    execute(kc, marker)
    msg_id = kc.history(hist_access_type="tail", n=5, raw=True, output=False)
    content = shell_reply(kc, msg_id)["content"]
    assert content["status"] == "ok"
    assert marker in [entry[2] for entry in content["history"]]


def test_ipywidgets_slider_through_comms(kc):
    msgs, reply = execute(kc, "import ipywidgets as w\ns = w.IntSlider(value=5)\ns")
    assert reply["status"] == "ok", reply
    opens = [m for m in of_type(msgs, "comm_open")
             if m["content"]["target_name"] == "jupyter.widget"]
    slider = [m for m in opens
              if m["content"]["data"]["state"].get("_model_name") == "IntSliderModel"]
    assert slider
    comm_id = slider[0]["content"]["comm_id"]
    views = [m for m in of_type(msgs, "execute_result")
             if "application/vnd.jupyter.widget-view+json" in m["content"]["data"]]
    assert views[0]["content"]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] \
        == comm_id

    # comm_info lists it
    msg_id = kc.comm_info(target_name="jupyter.widget")
    info = shell_reply(kc, msg_id)["content"]
    assert comm_id in info["comms"]

    # the frontend moves the slider: comm_msg reaches the engine's widget
    msg = kc.session.msg("comm_msg", {"comm_id": comm_id, "data": {
        "method": "update", "state": {"value": 7}, "buffer_paths": []}})
    kc.shell_channel.send(msg)
    collect(kc, msg["header"]["msg_id"])
    msgs, reply = execute(kc, "s.value")
    assert of_type(msgs, "execute_result")[0]["content"]["data"]["text/plain"] == "7"

    # a comm_open from the frontend (the widget manager's control comm)
    control = uuid.uuid4().hex
    msg = kc.session.msg("comm_open", {"comm_id": control, "target_name":
                                       "jupyter.widget.control", "data": {}},
                         metadata={"version": "1.0.0"})
    kc.shell_channel.send(msg)
    collect(kc, msg["header"]["msg_id"])
    msg = kc.session.msg("comm_msg", {"comm_id": control,
                                      "data": {"method": "request_states"}})
    kc.shell_channel.send(msg)
    answers = collect(kc, msg["header"]["msg_id"])
    states = [m for m in of_type(answers, "comm_msg")
              if m["content"]["data"].get("method") == "update_states"]
    assert states and comm_id in states[0]["content"]["data"]["states"]


def test_interrupt_stops_a_busy_loop_and_the_kernel_lives(kernel):
    km, kc = kernel
    msg_id = kc.execute("print('looping', flush=True)\nwhile True:\n    pass")
    wait_for(lambda: "looping" in stream_text([kc.get_iopub_msg(timeout=30)]), 30,
             "the loop to start")
    km.interrupt_kernel()
    reply = shell_reply(kc, msg_id, timeout=30)["content"]
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    errors = of_type(collect(kc, msg_id), "error")
    assert errors and errors[0]["content"]["ename"] == "KeyboardInterrupt"
    msgs, reply = execute(kc, "'still here'")
    assert reply["status"] == "ok"


def test_interrupt_while_waiting_for_input(kernel):
    km, kc = kernel
    msg_id = kc.execute("input('never answered ')", allow_stdin=True)
    assert kc.get_stdin_msg(timeout=30)["msg_type"] == "input_request"
    km.interrupt_kernel()
    reply = shell_reply(kc, msg_id, timeout=30)["content"]
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    _, reply = execute(kc, "1 + 1")
    assert reply["status"] == "ok"


def test_heartbeat_and_control_answer_while_a_cell_runs(kc):
    msg_id = kc.execute("import time\nprint('sleeping', flush=True)\ntime.sleep(4)\n'woke'")
    wait_for(lambda: "sleeping" in stream_text([kc.get_iopub_msg(timeout=30)]), 30,
             "the cell to start")
    assert kc.is_alive()  # the heartbeat channel is beating
    control = kc.session.msg("kernel_info_request")
    kc.control_channel.send(control)
    answer = kc.control_channel.get_msg(timeout=3)
    assert answer["parent_header"]["msg_id"] == control["header"]["msg_id"]
    # the cell is still running when control answered
    reply = shell_reply(kc, msg_id, timeout=30)
    assert reply["content"]["status"] == "ok"
    assert reply["header"]["date"] > answer["header"]["date"]


def test_shutdown_ends_front_and_engine(kernelspecs, tmp_path):
    km, kc = start_kernel("ipyckpt", tmp_path, notebook="down.ipynb")
    execute(kc, "x = 1")
    front = km.provisioner.process.pid
    session = wait_for(lambda: session_of(tmp_path, "down", front), 10, "session")
    with open(os.path.join(session, "engine.pid")) as f:
        engine = int(f.read())
    kc.stop_channels()
    started = time.monotonic()
    km.shutdown_kernel(now=False)
    assert time.monotonic() - started < 10
    wait_for(lambda: gone(front) and gone(engine), 10, "front and engine to end")


def test_restart_kernel_gives_a_fresh_engine(kernelspecs, tmp_path):
    km, kc = start_kernel("ipyckpt", tmp_path, notebook="again.ipynb")
    try:
        execute(kc, "before_restart = 1")
        km.restart_kernel(now=False)
        kc.wait_for_ready(timeout=60)
        msgs, reply = execute(kc, "before_restart")
        assert reply["status"] == "error" and reply["ename"] == "NameError"
        _, reply = execute(kc, "'after'")
        assert reply["status"] == "ok"
        # each engine had its own session folder
        assert len(os.listdir(tmp_path / ".ipyckpt" / "again")) == 2
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
