#!/usr/bin/env bash
# Data-parallel training matches one rank (issue #17, items 2 and 3): a tiny Llama trained 50
# steps by `mpirun -np 2 tandem train` (batch 8, so 4 rows per rank) must give every step's loss
# and every validation loss of one rank with batch 8 to 1e-5 relative, and the bits of one rank
# taking the same 8 rows as 2 micro-batches of 4 (batch_size=4 grad_accum=2: final weights, and
# every step's loss and gradient norm); two 2-rank runs must be bitwise identical (metrics and
# final weights); rank 0 alone reports; a batch size the ranks do not divide is an error naming
# both numbers.
# usage: train_parity.sh MPIEXEC TANDEM
set -euo pipefail
mpiexec=$1 tandem=$2
source "$(dirname "$0")/tiny_data.sh"  # $dir, $dir/data
# The tiny preset (2 layers, width 64, 137k parameters with this 300-id vocabulary), seq_len 32.
cat >"$dir/config.json" <<'EOF'
{"model": {"preset": "tiny", "max_seq_len": 32}, "batch_size": 8, "seq_len": 32, "steps": 50,
 "lr": 5e-3, "lr_min": 5e-4, "warmup_steps": 5, "eval_every": 10, "eval_batches": 2,
 "checkpoint_every": 25, "seed": 7}
EOF
train() {  # train RANKS OUT [KEY=VALUE...]: stdout and stderr go to OUT.log
  local ranks=$1 out=$2
  shift 2
  if [ "$ranks" -eq 1 ]; then
    "$tandem" train --config "$dir/config.json" --data "$dir/data" --out "$dir/$out" "$@" >"$dir/$out.log" 2>&1
  else
    timeout 120 "$mpiexec" -np "$ranks" --oversubscribe "$tandem" train --config "$dir/config.json" \
      --data "$dir/data" --out "$dir/$out" "$@" >"$dir/$out.log" 2>&1
  fi
}
train 1 one || { cat "$dir/one.log"; echo "FAIL: the 1-rank run failed"; exit 1; }
train 1 one_accum batch_size=4 grad_accum=2 || { cat "$dir/one_accum.log"; echo "FAIL: the 1-rank run with grad_accum=2 failed"; exit 1; }
for run in two_a two_b; do
  train 2 $run || { cat "$dir/$run.log"; echo "FAIL: the 2-rank run $run failed"; exit 1; }
done

n_done=$(grep -c "^trained 50 steps" "$dir/two_a.log" || true)
if [ "$n_done" -ne 1 ]; then cat "$dir/two_a.log"; echo "FAIL: $n_done ranks reported the end of the run, not rank 0 alone"; exit 1; fi
if ! cmp -s "$dir/two_a/checkpoints/step-50/model.safetensors" "$dir/two_b/checkpoints/step-50/model.safetensors"; then
  echo "FAIL: two 2-rank runs ended with different weights"; exit 1
fi
if ! cmp -s "$dir/one_accum/checkpoints/step-50/model.safetensors" "$dir/two_a/checkpoints/step-50/model.safetensors"; then
  echo "FAIL: one rank with 2 micro-batches of 4 rows and 2 ranks of 4 rows ended with different weights"; exit 1
fi

python3 - "$dir" <<'EOF'
import json, sys
d = sys.argv[1]
def steps(run):
    with open(f"{d}/{run}/metrics.jsonl") as f:
        return [r for r in map(json.loads, f) if "event" not in r]
one, a, b, accum = steps("one"), steps("two_a"), steps("two_b"), steps("one_accum")
assert len(one) == len(a) == len(b) == len(accum) == 50, (len(one), len(a), len(b), len(accum))
keys = ("loss", "grad_norm", "val_loss")
for ra, rb in zip(a, b):
    for k in keys:
        assert ra.get(k) == rb.get(k), f"step {ra['step']}: {k} {ra.get(k)!r} != {rb.get(k)!r} in two 2-rank runs"
for ra, rc in zip(a, accum):
    for k in ("loss", "grad_norm"):
        assert ra[k] == rc[k], f"step {ra['step']}: {k} {ra[k]!r} on 2 ranks, {rc[k]!r} on 1 rank with grad_accum=2"
worst = {}
for r1, r2 in zip(one, a):
    for k in keys:
        if k not in r1 and k not in r2: continue
        assert k in r1 and k in r2, f"step {r1['step']}: {k} in one run only"
        rel = abs(r1[k] - r2[k]) / abs(r1[k])
        worst[k] = max(worst.get(k, 0), rel)
        assert rel <= 1e-5, f"step {r1['step']}: {k} {r1[k]} on 1 rank, {r2[k]} on 2 ranks (relative {rel:.2e} > 1e-5)"
print("train_parity: 1 rank vs 2 ranks, largest relative differences: " +
      ", ".join(f"{k} {v:.2e}" for k, v in worst.items()) + f"; final loss {one[-1]['loss']:.6f} vs {a[-1]['loss']:.6f}")
EOF

# A batch that 2 ranks cannot split: both numbers in the error, and a failed job.
if train 2 odd batch_size=7; then echo "FAIL: batch_size=7 on 2 ranks was accepted"; exit 1; fi
if ! grep -q "batch_size 7 is not divisible by the 2 ranks" "$dir/odd.log"; then
  cat "$dir/odd.log"; echo "FAIL: the error for batch_size=7 on 2 ranks does not name both"; exit 1
fi
echo "train_parity: ok"
