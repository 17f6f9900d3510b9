#!/usr/bin/env bash
# A supervised data-parallel job survives ranks that die (issue #17, item 5): `tandem train
# --supervise --ranks 2` is killed KILLS times, each time one random rank by SIGKILL at a random
# moment of a new attempt (the moments spread over the run); every killed job must end within 30 s, the supervisor must restart it
# from the newest valid checkpoint, and the run must end bitwise equal to an uninterrupted
# `mpirun -np 2` run (final weights and optimizer state; every step's loss, gradient norm and
# validation loss in metrics.jsonl).
# usage: supervise_kills.sh MPIEXEC TANDEM [KILLS (default 3)] [SEED (default: random)]
set -euo pipefail
mpiexec=$1 tandem=$2 kills=${3:-3} seed=${4:-$RANDOM}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 TANDEM_MPIRUN=$mpiexec
export OMPI_MCA_rmaps_base_oversubscribe=1
RANDOM=$seed
echo "supervise_kills: $kills kills, seed $seed (pass it as the 4th argument to repeat the moments)"
source "$(dirname "$0")/tiny_data.sh"  # $dir, $dir/data
job=0
cleanup() { ((job)) && kill "$job" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
steps=$((150 * kills + 150))
cat >"$dir/config.json" <<JSON
{"model": {"preset": "tiny", "max_seq_len": 32}, "batch_size": 8, "seq_len": 32, "steps": $steps,
 "lr": 5e-3, "lr_min": 5e-4, "warmup_steps": 5, "eval_every": 50, "eval_batches": 2,
 "checkpoint_every": 10, "keep_checkpoints": 2, "seed": 7}
JSON
common=(--config "$dir/config.json" --data "$dir/data")

timeout 300 "$mpiexec" -np 2 "$tandem" train "${common[@]}" --out "$dir/whole" >"$dir/whole.log" 2>&1 ||
  { cat "$dir/whole.log"; echo "FAIL: the uninterrupted run failed"; exit 1; }

# The newest step in the killed run's metrics (0 before the first).
logged_step() {
  local s
  s=$(tail -n 20 "$dir/killed/metrics.jsonl" 2>/dev/null | grep -o '"step":[0-9]*' | tail -1 | cut -d: -f2 || true)
  echo "${s:-0}"
}
# The ranks of one attempt: processes whose environment holds this attempt and a rank number.
ranks_of_attempt() {
  local p env
  for p in $(pgrep -f -- "--out $dir/killed" || true); do
    env=$(tr '\0' '\n' 2>/dev/null <"/proc/$p/environ") || continue  # gone meanwhile
    grep -qx "TANDEM_SUPERVISED_ATTEMPT=$1" <<<"$env" && grep -q "^OMPI_COMM_WORLD_RANK=" <<<"$env" && echo "$p"
  done
  return 0
}
"$tandem" train --supervise $((kills + 2)) --ranks 2 "${common[@]}" --out "$dir/killed" >"$dir/killed.log" 2>&1 &
job=$!
done_kills=0
for ((attempt = 0; attempt < kills; ++attempt)); do
  pids=""
  for ((i = 0; i < 300 && ${#pids} == 0; ++i)); do
    kill -0 "$job" 2>/dev/null || break
    pids=$(ranks_of_attempt $attempt)
    [ -n "$pids" ] || sleep 0.05
  done
  [ -n "$pids" ] || break  # the job ended first
  # A random moment: past a random step of this attempt's share of the steps still to run (so
  # that the kills spread over the run and each leaves steps for the next), then a random few
  # milliseconds (a step, an evaluation, a checkpoint write). The job runs a few hundred steps a
  # second, so the moment is counted in steps, never in seconds.
  first=$(logged_step)
  share=$(((steps - first) / (kills - attempt + 1)))
  target=$((first + share / 2 + RANDOM % share))
  step=$first
  while ((step < target)) && kill -0 "$job" 2>/dev/null; do
    step=$(logged_step)
    ((step >= target)) || sleep 0.01
  done
  sleep "0.00$((RANDOM % 10))"
  read -ra list <<<"$(ranks_of_attempt $attempt | tr '\n' ' ')"
  ((${#list[@]})) || break
  victim=${list[$((RANDOM % ${#list[@]}))]}
  kill -9 "$victim" 2>/dev/null || continue
  start=$(date +%s%N)
  while [ -n "$(ranks_of_attempt $attempt)" ]; do
    if (( ($(date +%s%N) - start) / 1000000 >= 30000 )); then echo "FAIL: attempt $attempt still runs 30 s after a rank was killed"; exit 1; fi
    sleep 0.05
  done
  done_kills=$((done_kills + 1))
  echo "supervise_kills: kill $done_kills: pid $victim of attempt $attempt (past step $step); the job ended in $(( ($(date +%s%N) - start) / 1000000 )) ms"
done
rc=0
wait "$job" || rc=$?
job=0
if [ "$rc" -ne 0 ]; then cat "$dir/killed.log"; echo "FAIL: the supervised run exited with $rc"; exit 1; fi
if [ "$done_kills" -ne "$kills" ]; then cat "$dir/killed.log"; echo "FAIL: the run ended after $done_kills of $kills kills"; exit 1; fi
restarts=$(grep -c "restart [0-9]* of" "$dir/killed.log" || true)
if [ "$restarts" -ne "$kills" ]; then cat "$dir/killed.log"; echo "FAIL: $restarts restarts for $kills kills"; exit 1; fi
for f in model.safetensors optimizer.safetensors; do
  if ! cmp -s "$dir/whole/checkpoints/step-$steps/$f" "$dir/killed/checkpoints/step-$steps/$f"; then
    echo "FAIL: $f of the killed and resumed run differs from the uninterrupted run's"; exit 1
  fi
done
python3 "$(dirname "$0")/same_metrics.py" "$dir/whole" "$dir/killed" supervise_kills
# --ranks without --supervise is a usage error that names both.
if "$tandem" train --ranks 2 "${common[@]}" --out "$dir/bad" >"$dir/bad.log" 2>&1; then
  echo "FAIL: --ranks without --supervise was accepted"; exit 1
fi
grep -q -- "--ranks and --mpirun-args go with --supervise" "$dir/bad.log" || { cat "$dir/bad.log"; echo "FAIL: the error does not name --ranks and --supervise"; exit 1; }
echo "supervise_kills: ok"
