"""The ipyckpt Jupyter kernel: a front that speaks Jupyter and an engine that
is checkpointed (DESIGN §2).

    front.py       the Jupyter side (an ipykernel Kernel), never checkpointed
    app.py         its IPKernelApp, started by the kernelspecs (__main__.py)
    supervisor.py  the front's handle on the engine process and its pipes
    engine.py      the checkpointed process: IPython's InteractiveShell
    engine_shell.py, engine_comm.py   its outputs and comms
    channel.py     the only thing both share: descriptors and framing
    sessions.py    where a notebook's checkpoints live
    notices.py     what the front tells the user in the notebook
    spec.py        the two kernelspecs and `ipyckpt install`

This package's __init__ stays empty: the engine imports it, and must not
pull in ipykernel (its threads would make every checkpoint fail).
"""
