#!/usr/bin/env bash
# The slow-link matrix of issue #17: 2 ranks (one core each) against 1 rank on one core, over
# Open MPI's TCP transport on a loopback shaped with tc tbf in a network namespace of its own
# (docs: ../shared/recipes/slow-links.md; the kernel has tbf but no netem, so rate is shaped and
# latency is not). For each link rate and setting it trains the same number of tokens and
# prints tokens/s, the speed-up over one rank, bytes sent per step and the final validation
# loss against the uncompressed 2-rank run. The one-rank run goes first and again last: the
# speed-ups are over the mean of the two, and the table shows both (this machine drifts). Needs root (ip netns, tc); deletes its namespace on
# every exit. Note that both ranks' traffic crosses the same shaped loopback: the rate is shared.
#
# usage: scripts/slow_links.sh [--data DIR] [--tandem PATH] [--steps N] [--out DIR]
#                              [--settings 'S1,S2,...'] [--dry-run]
#   --data     token shards from `tandem prepare` (default: the fortunes files, prepared into
#              OUT/data with a 2048-id tokenizer)
#   --steps    training steps per run (default 40); batch and model are fixed below
#   --settings the 2-rank settings to run, comma-separated (default: the whole matrix below);
#              compress=none is always run too, as the reference for the validation loss
#   --dry-run  print every command instead of running it
set -euo pipefail
cd "$(dirname "$0")/.."

tandem=build/release/tandem data="" steps=40 out=runs/slow-links dry_run=0 only=
while (($#)); do
  case "$1" in
    --data) data=$2; shift 2 ;;
    --tandem) tandem=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --settings) only=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    *) echo "usage: scripts/slow_links.sh [--data DIR] [--tandem PATH] [--steps N] [--out DIR] [--settings 'S1,S2'] [--dry-run]" >&2; exit 2 ;;
  esac
done
if ((!dry_run)); then
  [ "$(id -u)" -eq 0 ] || { echo "slow_links: needs root for ip netns and tc" >&2; exit 2; }
  [ -x "$tandem" ] || { echo "slow_links: no tandem binary at $tandem (build it, or pass --tandem)" >&2; exit 2; }
  command -v mpirun >/dev/null || { echo "slow_links: no mpirun: scripts/setup installs Open MPI" >&2; exit 2; }
  if [ -n "$data" ] && [ ! -f "$data/meta.json" ]; then
    echo "slow_links: $data has no meta.json: prepare it with tandem prepare" >&2; exit 2
  fi
fi

# The llama-15m shape (llama2.c's stories15M: 6 layers, width 288, its 32000-id vocabulary, so
# that the gradient is the real 15.2M values, 61 MB in f32) at one global batch of 8 x 128
# tokens: 2 ranks take half of it each. Evaluation only at the end, on the same 8 batches.
common=('model={"preset":"llama-15m","vocab_size":32000}' "steps=$steps" batch_size=8 seq_len=128
        lr=1e-3 lr_min=1e-4 warmup_steps=5 "eval_every=$steps" eval_batches=8
        "checkpoint_every=$steps" device=cpu seed=1)
rates=("1gbit burst 1mb latency 50ms" "100mbit burst 256kb latency 100ms")
settings=("compress=none" "compress=bf16" "compress=int8" "compress=powersgd:2" "compress=powersgd:4"
          "compress=powersgd:2:bf16" "local_steps=8" "local_steps=32" "compress=int8 local_steps=8")
if [ -n "$only" ]; then
  IFS=, read -ra chosen <<<"$only"
  settings=("compress=none")
  for s in "${chosen[@]}"; do [ "$s" = compress=none ] || settings+=("$s"); done
fi
ns=tandem-slow-$$
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1  # Open MPI refuses root otherwise

run() {
  if ((dry_run)); then printf '+ %s\n' "$*"; else "$@"; fi
}
# The namespace goes on every exit: the end, a failed run (set -e), Ctrl-C or a kill.
cleanup() { ((dry_run)) || ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

run mkdir -p "$out"
if [ -z "$data" ]; then
  data=$out/data
  corpus=$(find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' | sort | head -20)
  if [ ! -f "$data/meta.json" ]; then
    # shellcheck disable=SC2086  # the corpus is a list of files
    run "$tandem" tokenizer train --input $corpus --vocab-size 2048 --special '<|endoftext|>' --out "$out/tokenizer.json"
    # shellcheck disable=SC2086
    run "$tandem" prepare --tokenizer "$out/tokenizer.json" --input $corpus --doc-separator % --val-fraction 0.05 --out "$data"
  fi
fi
run ip netns add "$ns"
run ip netns exec "$ns" ip link set lo up
run ip netns exec "$ns" ip link set lo mtu 1500  # tbf drops packets above its burst; lo's MTU is 64 KiB

# One rank on one core: the baseline every speed-up is against.
one_rank() {
  run rm -rf "$out/$1"
  run env OMP_NUM_THREADS=1 taskset -c 0 "$tandem" train --data "$data" --out "$out/$1" "${common[@]}"
}
one_rank one-rank

for rate in "${rates[@]}"; do
  tag=${rate%% *}
  # shellcheck disable=SC2086  # the rate's words are tc arguments
  run ip netns exec "$ns" tc qdisc replace dev lo root tbf rate $rate
  for setting in "${settings[@]}"; do
    name="$tag-$(echo "$setting" | sed 's/ /_/g; s/=/-/g; s/:/./g')"
    run rm -rf "$out/$name"
    # shellcheck disable=SC2086  # a setting is several KEY=VALUE words
    run ip netns exec "$ns" mpirun -np 2 --bind-to core --map-by core -x OMP_NUM_THREADS=1 \
      --mca btl self,tcp --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo \
      "$tandem" train --data "$data" --out "$out/$name" "${common[@]}" $setting
  done
done

# The table, from each run's metrics.jsonl (rank 0 writes it): tokens/s of the whole step (all
# ranks), bytes_sent per step (rank 0's communicator count), the last validation loss.
one_rank one-rank-after

table() {
  python3 - "$out" "${rates[@]}" -- "${settings[@]}" <<'PY'
import json, os, statistics, sys
out = sys.argv[1]
split = sys.argv.index("--")
rates, settings = [r.split()[0] for r in sys.argv[2:split]], sys.argv[split + 1:]
def read(name):
    path = os.path.join(out, name, "metrics.jsonl")
    if not os.path.exists(path):
        return None
    steps = [r for r in map(json.loads, open(path)) if "tokens_per_s" in r]
    val = [r["val_loss"] for r in steps if r.get("val_loss") is not None]
    timed = steps[1:] or steps  # the first step warms up
    # Every step has the same tokens, so the run's rate is the harmonic mean of the steps'
    # (a local-steps run is slow on its synchronising steps only); bytes are a mean likewise.
    return {"tok_s": len(timed) / sum(1 / r["tokens_per_s"] for r in timed),
            "bytes": statistics.mean(r.get("bytes_sent", 0) for r in steps),
            "val": val[-1] if val else float("nan")}
runs = [r for r in (read("one-rank"), read("one-rank-after")) if r]
base = dict(runs[0], tok_s=statistics.mean(r["tok_s"] for r in runs)) if runs else None
print("| link | setting | tokens/s | vs 1 rank | bytes sent/step | val loss | vs uncompressed |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
if base:
    each = " and ".join(f"{r['tok_s']:.0f}" for r in runs)
    print(f"| - | 1 rank, 1 core (before and after) | {base['tok_s']:.0f} ({each}) | 1.00x | 0 | {base['val']:.4f} | |")
for rate in rates:
    ref = read(f"{rate}-compress-none")
    for s in settings:
        r = read(f"{rate}-" + s.replace(" ", "_").replace("=", "-").replace(":", "."))
        if not r:
            continue
        speed = f"{r['tok_s'] / base['tok_s']:.2f}x" if base else "?"
        vs = f"{100 * (r['val'] / ref['val'] - 1):+.2f}%" if ref else "?"
        print(f"| {rate} | {s} | {r['tok_s']:.0f} | {speed} | {r['bytes'] / 1e6:.2f} MB | {r['val']:.4f} | {vs} |")
PY
}
if ((dry_run)); then
  echo "+ table from $out/*/metrics.jsonl"
else
  table
fi
