#!/usr/bin/env bash
# The main job, on a fresh machine: install ipyckpt from this checkout, then
# checkpoint a notebook kernel, kill both of its processes with SIGKILL, start
# the "restart from checkpoint" kernel for the same notebook and show that its
# variables, imports and execution counter are back.
set -euo pipefail
cd "$(dirname "$0")"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "installing ipyckpt (builds the native core) and its two kernelspecs"
bash scripts/system-packages.sh
python3 -m pip install -q -e . 2> >(grep -Ev "^WARNING: (Location|Running pip as)" >&2)
python3 -m ipyckpt install --sys-prefix

python3 examples/notebook_demo.py 2> >(grep -v "without encryption" >&2)
