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
BUILD=build/release ROUNDS=2 STEPS=10 WARMUP=2 PEERS=best QUIET_WAIT=120
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
    paste <(grep -o "step [0-9]*: [0-9.]* s" "$FIFOS/tandem.err") \
          <(grep -o "step [0-9]*: [0-9.]* s" "$FIFOS/pytorch.err") |
      awk -v w="$WARMUP" '$2+0 >= w { r[++n] = $7 / $3 }
        END { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (r[j] < r[i]) { x = r[i]; r[i] = r[j]; r[j] = x }
              printf "STEPRATIO %s", n ? "" : "none"; for (i = 1; i <= n; i++) printf " %.2f", r[i]; printf "\n" }' |
      sed "s/^STEPRATIO/STEPRATIO $model B=$b T=$t (tandem speed \/ pytorch-tcmalloc, step pairs, sorted):/" | tee -a "$OUT"
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
echo "| model | B x T | implementation | runs | tokens/s (median of run medians) | slowest .. fastest step | peak RSS MiB | vs pytorch-tcmalloc |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
grep '^RESULT' "$OUT" | awk '
  { impl=$2; model=$3; shape=substr($4,3)" x "substr($5,3); med=$8; lo=$10; hi=$12; rss=$NF;
    key=model" | "shape" | "impl; group=model" | "shape;
    if (!(key in n)) { order[++k]=key; grp[key]=group; mn[key]=lo; mx[key]=hi; rs[key]=rss }
    vals[key, ++n[key]]=med; if (lo<mn[key]) mn[key]=lo; if (hi>mx[key]) mx[key]=hi;
    if (rss>rs[key]) rs[key]=rss }
  END { for (i=1;i<=k;i++) { key=order[i]; c=n[key];
          for (a=1;a<=c;a++) s[a]=vals[key,a];
          for (a=1;a<=c;a++) for (b=a+1;b<=c;b++) if (s[b]<s[a]) { t=s[a]; s[a]=s[b]; s[b]=t }
          m[key] = (c%2) ? s[(c+1)/2] : (s[c/2]+s[c/2+1])/2;
          if (key ~ /\| pytorch-tcmalloc$/) best[grp[key]]=m[key] }
        for (i=1;i<=k;i++) { key=order[i]; g=grp[key];
          ratio = (g in best) ? sprintf("%.2fx", m[key]/best[g]) : "";
          printf "| %s | %d | %.1f | %.1f .. %.1f | %d | %s |\n", key, n[key], m[key], mn[key], mx[key], rs[key], ratio } }'
echo
echo "Per-run tandem/pytorch-tcmalloc ratios (same round, same shape):"
grep '^RESULT' "$OUT" | awk '
  { key=$3" "$4" "$5 }
  $2 ~ /^tandem/ { t[key, ++nt[key]]=$8 }
  $2 == "pytorch-tcmalloc" { p[key, ++np[key]]=$8; if (!(key in seen)) { seen[key]=1; keys[++k]=key } }
  END { for (i=1;i<=k;i++) { key=keys[i]; line=key":";
          for (r=1;r<=np[key];r++) if ((key, r) in t) line=line sprintf(" %.2fx", t[key,r]/p[key,r]);
          print line } }'
