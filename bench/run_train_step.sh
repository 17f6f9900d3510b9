#!/usr/bin/env bash
# Runs the training-step benchmark of tandem (cpu backend) and PyTorch side by side: interleaved
# run by run on the same 2 threads, for --rounds rounds, and prints a table of the per-run
# medians (tokens/s) with the spread across steps, each side's peak memory (max RSS), and
# tandem's ratio to PyTorch at its best.
#
#   bench/run_train_step.sh [--build build/release] [--rounds 2] [--steps 10] [--warmup 2]
#                           [--shapes "llama-15m:8:256 gpt2-124m:4:64 gpt2-124m:4:1024"]
#                           [--peers best|all] [--quiet-wait 120]
#
# The machine is shared, so tandem and PyTorch at its best run at the same time in lockstep:
# each waits on a fifo for the other's step to end (blocked in read, using no CPU), so their
# steps alternate one by one and a neighbour's build lands on both sides alike; the per-step
# ratios are printed too. Before each pair (and each extra peer) the script also waits up to
# --quiet-wait seconds for the CPUs to be at least 90% idle, and prints the idle share it saw.
#
# Settings of each side (printed with the results):
# - tandem: OMP_NUM_THREADS=2 (OpenMP, which OpenBLAS's OpenMP build shares, so the two never
#   oversubscribe the cores). tandem picks its OpenBLAS kernels itself (src/backend/cpu/blas.cpp:
#   TANDEM_BLAS_CORETYPE, else detected for the CPU), whatever OPENBLAS_CORETYPE says.
# - pytorch-tcmalloc: PyTorch at its best here: torch.set_num_threads(2) with OMP_NUM_THREADS=2
#   (ATen and OpenBLAS share libgomp's pool), tcmalloc through LD_PRELOAD, and OPENBLAS_CORETYPE
#   unset so that OpenBLAS detects its AVX-512 kernels as it does for tandem.
# - with --peers all, also PyTorch as the environment has it: OPENBLAS_CORETYPE passed through
#   (often Haswell = AVX2), with and without tcmalloc.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=build/release ROUNDS=2 STEPS=10 WARMUP=2 PEERS=best QUIET_WAIT=120 QUIET_OTHERS=5
SHAPES="llama-15m:8:256 gpt2-124m:4:64 gpt2-124m:4:1024"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --shapes) SHAPES=$2; shift 2 ;;
    --peers) PEERS=$2; shift 2 ;;
    --quiet-wait) QUIET_WAIT=$2; shift 2 ;;
    *) echo "run_train_step.sh: unknown flag $1" >&2; exit 2 ;;
  esac
done
BENCH="$BUILD/bench/train_step_bench"
[[ -x "$BENCH" ]] || { echo "run_train_step.sh: $BENCH not built (ninja -C $BUILD train_step_bench)" >&2; exit 1; }
TCMALLOC=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
[[ -e "$TCMALLOC" ]] || { echo "run_train_step.sh: $TCMALLOC missing (apt-get install libtcmalloc-minimal4)" >&2; exit 1; }
export OMP_NUM_THREADS=2
ENV_CORETYPE=${OPENBLAS_CORETYPE:-}
OUT=$(mktemp)
FIFOS=$(mktemp -d)
mkfifo "$FIFOS/tandem" "$FIFOS/pytorch"
trap 'rm -rf "$OUT" "$FIFOS"' EXIT

echo "# $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores visible; OMP_NUM_THREADS=$OMP_NUM_THREADS; environment OPENBLAS_CORETYPE=${ENV_CORETYPE:-unset}, OPENBLAS_L2_SIZE=${OPENBLAS_L2_SIZE:-unset}"
echo "# $(date -u +%FT%TZ), $ROUNDS rounds x $STEPS steps after $WARMUP warm-up; shapes $SHAPES"
idle_percent() {  # share of CPU time spent idle over the next second, from /proc/stat
  local u n s i w q sq st t1 i1
  read -r _ u n s i w q sq st _ < /proc/stat; t1=$((u + n + s + i + w + q + sq + st)); i1=$((i + w))
  sleep 1
  read -r _ u n s i w q sq st _ < /proc/stat
  echo $(( 100 * (i + w - i1) / (u + n + s + i + w + q + sq + st - t1) ))
}
wait_quiet() {  # wait_quiet <label>: until the CPUs are >= 90% idle, or QUIET_WAIT seconds
  local waited=0 idle=100
  if (( QUIET_WAIT > 0 )); then
    while idle=$(idle_percent); (( idle < 90 && waited < QUIET_WAIT )); do waited=$((waited + 1)); done
  fi
  echo "# $1: idle ${idle}% after waiting ${waited} s, load average $(cut -d' ' -f1-3 /proc/loadavg)"
}
pytorch() {  # pytorch <model> <B> <T> <env...> [-- extra flags]
  local model=$1 b=$2 t=$3; shift 3
  local envs=() extra=()
  while [[ $# -gt 0 && $1 != -- ]]; do envs+=("$1"); shift; done
  [[ $# -gt 0 ]] && { shift; extra=("$@"); }
  env "${envs[@]}" /usr/bin/python3 bench/pytorch_train_step.py --model "$model" --batch "$b" \
    --seq "$t" --steps "$STEPS" --warmup "$WARMUP" "${extra[@]}"
}
for round in $(seq 1 "$ROUNDS"); do
  for shape in $SHAPES; do
    IFS=: read -r model b t <<< "$shape"
    echo "# round $round $model B=$b T=$t"
    sgemm=--no-sgemm
    [[ $round == 1 ]] && sgemm=
    wait_quiet "tandem + pytorch-tcmalloc in lockstep"
    "$BENCH" --backend cpu --model "$model" --batch "$b" --seq "$t" --steps "$STEPS" \
      --warmup "$WARMUP" $sgemm --lockstep "$FIFOS/tandem" "$FIFOS/pytorch" \
      > "$FIFOS/tandem.out" 2> "$FIFOS/tandem.err" &
    pytorch "$model" "$b" "$t" -u OPENBLAS_CORETYPE LD_PRELOAD=$TCMALLOC \
      -- --lockstep "$FIFOS/pytorch" "$FIFOS/tandem" > "$FIFOS/pytorch.out" 2> "$FIFOS/pytorch.err" &
    printf s > "$FIFOS/tandem"  # tandem takes the first turn
    wait
    cat "$FIFOS/tandem.out" "$FIFOS/pytorch.out" >> "$OUT"
    grep -E "^(RESULT|FLOOR|# BLAS|# median|# [a-z0-9-]+ in torch)" "$FIFOS/tandem.out" "$FIFOS/pytorch.out" | cut -d: -f2-
    # One PAIR line per timed step: tandem's and PyTorch's seconds, and the share of the CPUs
    # that other processes used during each (see CpuShare in train_step_bench.cpp).
    paste <(grep -o "step [0-9]*: [0-9.]* s, loss [0-9.na]*, others [0-9]*%" "$FIFOS/tandem.err") \
          <(grep -o "step [0-9]*: [0-9.]* s, loss [0-9.na]*, others [0-9]*%" "$FIFOS/pytorch.err") |
      tr -d ':,%' | awk -v w="$WARMUP" -v m="$model" -v b="$b" -v t="$t" -v r="$round" \
        '$2 >= w { print "PAIR", m, b, t, r, $3, $11, $8, $16 }' | tee -a "$OUT" > "$FIFOS/pairs"
    awk -v q="$QUIET_OTHERS" '{ n++; if ($8 <= q && $9 <= q) c++ } END { printf "# %d step pairs, %d with others <= %d%% on both sides\n", n, c, q }' "$FIFOS/pairs"
    if [[ $PEERS == all && -n $ENV_CORETYPE ]]; then
      for preload in "LD_PRELOAD=$TCMALLOC" "LD_PRELOAD="; do
        wait_quiet "pytorch OPENBLAS_CORETYPE=$ENV_CORETYPE $preload"
        pytorch "$model" "$b" "$t" OPENBLAS_CORETYPE="$ENV_CORETYPE" "$preload" 2>/dev/null | tee -a "$OUT" | grep -E "^(RESULT|# )"
      done
    fi
  done
done

echo "# end: load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "Quiet step pairs only (other processes used <= $QUIET_OTHERS% of the CPUs during both steps of a"
echo "pair); tokens/s are medians over those steps, the ratio is the median of the per-pair ratios:"
echo
echo "| model | B x T | quiet pairs / all | tandem tok/s (min .. max) | pytorch-tcmalloc tok/s (min .. max) | tandem / pytorch: median (min .. max) | median over all pairs | peak RSS MiB tandem / pytorch |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
awk -v q="$QUIET_OTHERS" '
  function median(a, n,   i, j, x) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { x = a[i]; a[i] = a[j]; a[j] = x }
                                     return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  $1 == "RESULT" { key = $3 " | " substr($4, 3) " x " substr($5, 3); rss[key, ($2 ~ /^tandem/) ? "t" : "p"] = $NF }
  $1 == "PAIR" { key = $2 " | " $3 " x " $4; if (!(key in all)) order[++k] = key; all[key]++
    tokens = $3 * $4; ra[key, all[key]] = $7 / $6
    if ($8 <= q && $9 <= q) { c = ++clean[key]; tt[key, c] = tokens / $6; pt[key, c] = tokens / $7; rc[key, c] = $7 / $6 } }
  END { for (i = 1; i <= k; i++) { key = order[i]; n = clean[key] + 0
          split("", a); for (j = 1; j <= all[key]; j++) a[j] = ra[key, j]; mall = median(a, all[key])
          if (n == 0) { printf "| %s | 0 / %d | - | - | - | %.2fx | %s / %s |\n", key, all[key], mall, rss[key, "t"], rss[key, "p"]; continue }
          split("", a); lo = 1e30; hi = 0; for (j = 1; j <= n; j++) { a[j] = tt[key, j]; if (a[j] < lo) lo = a[j]; if (a[j] > hi) hi = a[j] } mt = median(a, n); tl = lo; th = hi
          split("", a); lo = 1e30; hi = 0; for (j = 1; j <= n; j++) { a[j] = pt[key, j]; if (a[j] < lo) lo = a[j]; if (a[j] > hi) hi = a[j] } mp = median(a, n); pl = lo; ph = hi
          split("", a); lo = 1e30; hi = 0; for (j = 1; j <= n; j++) { a[j] = rc[key, j]; if (a[j] < lo) lo = a[j]; if (a[j] > hi) hi = a[j] } mr = median(a, n)
          printf "| %s | %d / %d | %.1f (%.1f .. %.1f) | %.1f (%.1f .. %.1f) | **%.2fx** (%.2f .. %.2f) | %.2fx | %s / %s |\n",
                 key, n, all[key], mt, tl, th, mp, pl, ph, mr, lo, hi, mall, rss[key, "t"], rss[key, "p"] } }' "$OUT"
if [[ $PEERS == all ]]; then
  echo
  echo "Extra PyTorch configurations (run alone, after the pair; per-run medians):"
  grep '^RESULT pytorch-' "$OUT" | grep -v '^RESULT pytorch-tcmalloc ' | cut -d' ' -f2-9,11,13,17- || true
fi
echo
grep -E '^FLOOR' "$OUT" || true
