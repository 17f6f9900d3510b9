#!/usr/bin/env bash
# Does the anomaly guard cry wolf? Runs healthy training and a run that spikes once and
# recovers by itself, and counts the anomalies the guard raised (docs/RELIABILITY.md records the
# output). Usage: scripts/guard_check.sh [TANDEM_BINARY] [WORK_DIR]
#   1. ten seeds of a tiny Llama on two fortune files (lr 5e-3, 60 steps, batches of 8 x 64)
#   2. a tiny Llama at lr 3e-3, seed 7, 20 warm-up steps, on the licence texts of
#      /usr/share/common-licenses as one file: its gradient norm jumps ~25x at step 22 and the
#      run recovers by itself when the update is taken (shown with the spike test turned off)
#   3. the same with 30 warm-up steps: gradient norms 3.4-3.9x their median at steps 24-26,
#      healthy (the spike test alone called them spikes)
# One thread per run, so that the numbers do not depend on what else the machine does.
set -euo pipefail

tandem=$(realpath "${1:-build/dev/tandem}")
work=${2:-$(mktemp -d /tmp/guard_check.XXXXXX)}
mkdir -p "$work"
cd "$work"
export OMP_NUM_THREADS=1

anomalies() {  # the anomaly events of a run: "step:action" ...
    python3 - "$1/metrics.jsonl" <<'EOF'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]) if '"anomaly"' in l]
print(" ".join(f"{e['step']}:{e['action']}" for e in events) or "-")
EOF
}
last_step() {  # the last step line: "step loss grad_norm"
    python3 - "$1/metrics.jsonl" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"event"' not in l]
r = rows[-1]
print(f"{r['step']} {r['loss']:.4f} {r['grad_norm']:.3f}")
EOF
}

echo "tandem: $tandem"
echo
echo "## 1. healthy runs: tiny Llama, fortunes (science, computers), lr 5e-3, 60 steps"
fortunes="/usr/share/games/fortunes/science /usr/share/games/fortunes/computers"
"$tandem" tokenizer train --input $fortunes --vocab-size 512 --special '<|endoftext|>' \
    --out fortunes_tok.json >/dev/null 2>&1
"$tandem" prepare --tokenizer fortunes_tok.json --input $fortunes --doc-separator % \
    --val-fraction 0.05 --out fortunes_data >/dev/null 2>&1
cat >healthy.json <<'EOF'
{"model": {"preset": "tiny", "n_layers": 2, "d_model": 64, "n_heads": 4, "n_heads_kv": 2,
  "head_dim": 16, "d_ffn": 192, "max_seq_len": 64}, "batch_size": 8, "seq_len": 64, "steps": 60,
  "lr": 5e-3, "lr_min": 5e-4, "warmup_steps": 5, "eval_every": 0, "checkpoint_every": 60}
EOF
total=0
for seed in 1 2 3 4 5 6 7 8 9 10; do
    rm -rf "healthy-$seed"
    "$tandem" train --config healthy.json --data fortunes_data --out "healthy-$seed" "seed=$seed" \
        >/dev/null 2>&1 || true
    events=$(anomalies "healthy-$seed")
    n=0
    [ "$events" != "-" ] && n=$(wc -w <<<"$events")
    total=$((total + n))
    printf 'seed %2d: %d anomalies %s\n' "$seed" "$n" "$events"
done
echo "total: $total anomalies over 10 healthy runs"

echo
echo "## 2. a spike that recovers by itself: tiny Llama, licence texts, lr 3e-3, seed 7"
cat /usr/share/common-licenses/* >licenses.txt 2>/dev/null || true
"$tandem" tokenizer train --input licenses.txt --vocab-size 512 --special '<|endoftext|>' \
    --out lic_tok.json >/dev/null 2>&1
"$tandem" prepare --tokenizer lic_tok.json --input licenses.txt --val-fraction 0.05 \
    --out lic_data >/dev/null 2>&1
spike_run() {  # name, extra overrides
    local name=$1
    shift
    rm -rf "$name"
    local rc=0
    "$tandem" train --data lic_data --out "$name" model=tiny lr=3e-3 seed=7 steps=60 \
        warmup_steps=20 eval_every=0 checkpoint_every=60 "$@" >"$name.log" 2>&1 || rc=$?
    printf '%-28s exit %d, last step (step loss norm): %s, anomalies: %s\n' "$name" "$rc" \
        "$(last_step "$name")" "$(anomalies "$name")"
}
spike_run without-spike-test anomaly_zscore=1e12
spike_run default-guard
echo
echo "## 3. the same with 30 warm-up steps: gradient norms 3.4-3.9x their median at steps 24-26"
spike_run warmup-30 warmup_steps=30
