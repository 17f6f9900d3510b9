#!/usr/bin/env bash
# Runs the training-step benchmark of tandem (cpu backend) and PyTorch (with and without
# tcmalloc) side by side: interleaved run by run, on the same 2 threads, for --rounds rounds, and
# prints a table of the per-run medians (tokens/s) with the spread across runs.
#
#   bench/run_train_step.sh [--build build/release] [--rounds 2] [--steps 10] [--warmup 2]
#
# The environment's OPENBLAS_CORETYPE (if any) is passed through unchanged and printed.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=build/release ROUNDS=2 STEPS=10 WARMUP=2
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    *) echo "run_train_step.sh: unknown flag $1" >&2; exit 2 ;;
  esac
done
BENCH="$BUILD/bench/train_step_bench"
[[ -x "$BENCH" ]] || { echo "run_train_step.sh: $BENCH not built (ninja -C $BUILD train_step_bench)" >&2; exit 1; }
TCMALLOC=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
export OMP_NUM_THREADS=2
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT

echo "# $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores visible; OMP_NUM_THREADS=$OMP_NUM_THREADS, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
echo "# $(date -u +%FT%TZ), $ROUNDS rounds x $STEPS steps after $WARMUP warm-up"
for round in $(seq 1 "$ROUNDS"); do
  for model in llama-15m gpt2-124m; do
    echo "# round $round $model: load average $(cut -d' ' -f1-3 /proc/loadavg)"
    sgemm=--no-sgemm
    [[ $round == 1 ]] && sgemm=
    "$BENCH" --backend cpu --model "$model" --steps "$STEPS" --warmup "$WARMUP" $sgemm 2>/dev/null | tee -a "$OUT" | grep -E "^(RESULT|FLOOR)"
    /usr/bin/python3 bench/pytorch_train_step.py --model "$model" --steps "$STEPS" --warmup "$WARMUP" 2>/dev/null | tee -a "$OUT" | grep "^RESULT"
    LD_PRELOAD=$TCMALLOC /usr/bin/python3 bench/pytorch_train_step.py --model "$model" --steps "$STEPS" --warmup "$WARMUP" 2>/dev/null | tee -a "$OUT" | grep "^RESULT"
  done
done

echo "# end: load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| model | implementation | runs | tokens/s (median of run medians) | lowest step min .. highest step max |"
echo "| --- | --- | --- | --- | --- |"
grep '^RESULT' "$OUT" | awk '
  { impl=$2; model=$3; med=$8; lo=$10; hi=$12; key=model" | "impl;
    if (!(key in n)) { order[++k]=key; mn[key]=lo; mx[key]=hi }
    vals[key, ++n[key]]=med; if (lo<mn[key]) mn[key]=lo; if (hi>mx[key]) mx[key]=hi }
  END { for (i=1;i<=k;i++) { key=order[i]; c=n[key];
          for (a=1;a<=c;a++) s[a]=vals[key,a];
          for (a=1;a<=c;a++) for (b=a+1;b<=c;b++) if (s[b]<s[a]) { t=s[a]; s[a]=s[b]; s[b]=t }
          m = (c%2) ? s[(c+1)/2] : (s[c/2]+s[c/2+1])/2;
          printf "| %s | %d | %.1f | %.1f .. %.1f |\n", key, c, m, mn[key], mx[key] } }'
