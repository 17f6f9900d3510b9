#!/usr/bin/env bash
# Peak and final resident memory of `tandem generate` on a model, sampled every 20 ms from
# /proc (the kernel's own VmHWM is read too, as a check on the sampling), for the memory target
# of serving a checkpoint: weight bytes + KV cache + 100 MB.
#   bench/peak_rss.sh MODEL [TOKENS]     e.g. bench/peak_rss.sh runs/gpt2/checkpoints/step-1 1000
# A gpt2-124m checkpoint to measure: tandem train --data DATA --out runs/gpt2 \
#   'model={"preset":"gpt2-124m","vocab_size":50257}' steps=1 batch_size=1 seq_len=64 eval_batches=1
set -euo pipefail
model="$1"
tokens="${2:-1000}"
tandem="$(dirname "$0")/../build/release/tandem"
"$tandem" generate --model "$model" --prompt "Hello" --max-tokens "$tokens" --temperature 0 >/dev/null 2>&1 &
pid=$!
peak=0 hwm=0
while kill -0 "$pid" 2>/dev/null; do
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  h=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  [ -n "$rss" ] && [ "$rss" -gt "$peak" ] && peak=$rss
  [ -n "$h" ] && hwm=$h
  sleep 0.02
done
wait "$pid"
echo "peak_rss_mb=$((peak / 1024)) vm_hwm_mb=$((hwm / 1024))"
