#!/usr/bin/env bash
# Compressed and local-steps runs resume bitwise (issue #17, items 5 and 6): for each of
# compress=int8, compress=powersgd:2 and compress=int8 with local_steps=4, a supervised 2-rank
# run killed at step 15 and restarted from its newest checkpoint (step 12, or 6 while 12 is
# still being written) ends with the same weights, AdamW moments and exchange state
# (exchange.safetensors: every rank's error-feedback residual, PowerSGD's Q, the outer anchor
# and momentum, each rank's own moments) and the same loss, gradient norm and validation loss at every step as an uninterrupted `mpirun -np 2` run.
# A checkpoint resumed with other settings says that the state starts afresh, on one rank that
# it is dropped; a rollback works.
# usage: exchange_resume.sh MPIEXEC TANDEM
set -euo pipefail
mpiexec=$1 tandem=$2
export TANDEM_MPIRUN=$mpiexec OMPI_MCA_rmaps_base_oversubscribe=1
source "$(dirname "$0")/tiny_data.sh"  # $dir, $dir/data
cat >"$dir/config.json" <<'JSON'
{"model": {"preset": "tiny", "max_seq_len": 32}, "batch_size": 8, "seq_len": 32, "steps": 24,
 "lr": 5e-3, "lr_min": 5e-4, "warmup_steps": 5, "eval_every": 8, "eval_batches": 2,
 "checkpoint_every": 6, "keep_checkpoints": 2, "seed": 7}
JSON
common=(--config "$dir/config.json" --data "$dir/data")
for s in "compress=int8" "compress=powersgd:2" "compress=int8 local_steps=4"; do
  name=$(echo "$s" | sed 's/ /_/g; s/=/-/g; s/:/./g')
  # shellcheck disable=SC2086  # a setting is several KEY=VALUE words
  timeout 120 "$mpiexec" -np 2 "$tandem" train "${common[@]}" --out "$dir/$name-whole" $s >"$dir/$name-whole.log" 2>&1 ||
    { cat "$dir/$name-whole.log"; echo "FAIL: the uninterrupted run with $s failed"; exit 1; }
  # shellcheck disable=SC2086
  timeout 120 "$tandem" train --supervise 2 --ranks 2 "${common[@]}" --out "$dir/$name-killed" --inject kill@15 $s \
    >"$dir/$name-killed.log" 2>&1 || { cat "$dir/$name-killed.log"; echo "FAIL: the killed run with $s failed"; exit 1; }
  grep -Eq "resumed from .*step-(6|12)$" "$dir/$name-killed.log" ||
    { cat "$dir/$name-killed.log"; echo "FAIL: the run with $s was not killed and resumed from step 6 or 12"; exit 1; }
  if grep -q "start afresh" "$dir/$name-killed.log"; then
    cat "$dir/$name-killed.log"; echo "FAIL: the resumed run with $s did not restore its exchange state"; exit 1
  fi
  for f in model.safetensors optimizer.safetensors exchange.safetensors; do
    cmp -s "$dir/$name-whole/checkpoints/step-24/$f" "$dir/$name-killed/checkpoints/step-24/$f" ||
      { echo "FAIL: $s: $f of the killed and resumed run differs from the uninterrupted run's"; exit 1; }
  done
  python3 "$(dirname "$0")/same_metrics.py" "$dir/$name-whole" "$dir/$name-killed" "exchange_resume: $s"
done
# Other settings than the checkpoint's: the run goes on, saying that the state starts afresh.
timeout 120 "$mpiexec" -np 2 "$tandem" train "${common[@]}" --out "$dir/compress-int8-whole" --resume \
  steps=30 compress=bf16 >"$dir/other.log" 2>&1 ||
  { cat "$dir/other.log"; echo "FAIL: resuming with compress=bf16 failed"; exit 1; }
grep -q "was written with compress=int8, this run has compress=bf16: .*start afresh" "$dir/other.log" ||
  { cat "$dir/other.log"; echo "FAIL: resuming with other settings does not say that the state starts afresh"; exit 1; }
# One rank has no link: resuming a compressed 2-rank checkpoint there says that its state is dropped.
timeout 120 "$tandem" train "${common[@]}" --out "$dir/compress-int8-whole" --resume steps=32 \
  >"$dir/one.log" 2>&1 || { cat "$dir/one.log"; echo "FAIL: resuming on one rank failed"; exit 1; }
grep -q "exchange.safetensors holds a compressed or local-steps run's state, which this run .* does not use: it is dropped" \
  "$dir/one.log" || { cat "$dir/one.log"; echo "FAIL: resuming on one rank does not say that the state is dropped"; exit 1; }
# A rollback puts the exchange's state back with the weights (each rank its own).
timeout 120 "$mpiexec" -np 2 "$tandem" train "${common[@]}" --out "$dir/rollback" compress=int8 anomaly_policy=rollback \
  --inject spike@16 >"$dir/rollback.log" 2>&1 || { cat "$dir/rollback.log"; echo "FAIL: the rollback run failed"; exit 1; }
grep -q "rolled back to step 12" "$dir/rollback.log" || { cat "$dir/rollback.log"; echo "FAIL: no rollback to step 12"; exit 1; }
echo "exchange_resume: ok"
