#!/usr/bin/env bash
# Install ipyckpt from this checkout, then show its core at work: a program is
# checkpointed every second of CPU time, killed with SIGKILL, and restarted
# from its latest checkpoint, where it carries on instead of starting over.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "installing ipyckpt (builds the native core)"
bash scripts/system-packages.sh
python3 -m pip install -q -e . 2> >(grep -Ev "^WARNING: (Location|Running pip as)" >&2)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
step "building examples/counter.c with \$(ipyckpt cc-flags)"
gcc -O1 examples/counter.c $(ipyckpt cc-flags) -o "$work/counter"
echo "gcc examples/counter.c $(ipyckpt cc-flags) -o counter"

step "running it with CKPT_PERIOD=1 (a checkpoint every CPU second)"
setarch --addr-no-randomize env CKPT_PREFIX="$work/ckpt/counter" CKPT_PERIOD=1 \
	"$work/counter" &
pid=$!
# wait until the second checkpoint is committed, then kill the program hard
for _ in $(seq 200); do
	[ -e "$work/ckpt/counter.map.1" ] && break
	sleep 0.05
done
kill -KILL "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
step "killed it with SIGKILL; on disk:"
ls -l "$work/ckpt"

step "ipyckpt inspect (validates every CRC)"
ipyckpt inspect "$work/ckpt/counter" | tail -n 4 || true

step "restarting it from the latest checkpoint"
setarch --addr-no-randomize env CKPT_PREFIX="$work/ckpt/counter" CKPT_RESTART=1 CKPT_DEBUG=1 \
	"$work/counter" 2> >(grep "restored epoch" >&2)
step "done: it went on from the checkpoint, not from the start"
