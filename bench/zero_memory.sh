#!/usr/bin/env bash
# ZeRO-1's memory per rank (issue #17, item 4): a few steps of `tandem train` with zero=0 and
# zero=1 on 1, 2 and 4 ranks of one machine; for each rank, the bytes of AdamW's m and v it holds
# and its peak resident memory (the kernel's maxRSS, through /usr/bin/time), as a markdown table.
#   bench/zero_memory.sh [TANDEM] [RANKS...]     e.g. bench/zero_memory.sh build/release/tandem 1 2 4
# The model is the llama-15m shape with a 32,000-id vocabulary (15.2 M parameters), batch 8 × 64;
# the data is the fortunes corpus (Debian package fortunes) through a 512-id tokenizer.
set -euo pipefail
tandem=$(realpath "${1:-build/release/tandem}")
shift || true
[ $# -gt 0 ] && ranks=("$@") || ranks=(1 2 4)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_tcp_if_include=lo OMPI_MCA_oob_tcp_if_include=lo
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
corpus="/usr/share/games/fortunes/science /usr/share/games/fortunes/computers"
"$tandem" tokenizer train --input $corpus --vocab-size 512 --special '<|endoftext|>' --out "$dir/tok.json" >/dev/null 2>&1
"$tandem" prepare --tokenizer "$dir/tok.json" --input $corpus --doc-separator % --val-fraction 0.05 \
  --out "$dir/data" >/dev/null 2>&1
cat >"$dir/config.json" <<'JSON'
{"model": {"preset": "llama-15m", "vocab_size": 32000}, "batch_size": 8, "seq_len": 64, "steps": 3,
 "warmup_steps": 1, "eval_every": 0, "checkpoint_every": 1000, "seed": 3}
JSON
for n in "${ranks[@]}"; do
  for zero in 0 1; do
    # One thread per rank, so that the ranks do not fight over the cores.
    mpirun -np "$n" --oversubscribe -x OMP_NUM_THREADS=1 bash -c "/usr/bin/time -o '$dir/rss_${n}_${zero}_'\$OMPI_COMM_WORLD_RANK -f %M \
      '$tandem' train --config '$dir/config.json' --data '$dir/data' --out '$dir/run_${n}_$zero' zero=$zero" \
      >"$dir/log_${n}_$zero" 2>&1 || { cat "$dir/log_${n}_$zero"; exit 1; }
  done
done
python3 - "$dir" "${ranks[@]}" <<'PY'
import re, sys
d, ranks = sys.argv[1], [int(r) for r in sys.argv[2:]]
print("| ranks | zero | rank | m + v held (MB) | peak RSS (MB) |")
print("| --- | --- | --- | --- | --- |")
for n in ranks:
    logs = {zero: open(f"{d}/log_{n}_{zero}").read() for zero in (0, 1)}
    unsharded = int(re.search(r"bytes of m and v on rank 0 \((\d+) unsharded\)", logs[1]).group(1))
    params = unsharded // 8
    for zero in (0, 1):
        rss = [int(open(f"{d}/rss_{n}_{zero}_{rank}").read()) for rank in range(n)]  # KB
        for rank in range(n):
            q = params // n  # zero_shard(): equal ranges, the remainder on the last rank
            held = unsharded if zero == 0 else (q if rank < n - 1 else params - (n - 1) * q) * 8
            print(f"| {n} | {zero} | {rank} | {held / 1e6:.1f} | {rss[rank] * 1024 / 1e6:.0f} |")
PY
