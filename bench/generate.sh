#!/usr/bin/env bash
# tandem's inference engine beside llama.cpp on the same GGUF files, in one run: a model of
# Qwen3-0.6B's shape with random weights (the speed does not depend on the values), exported by
# tandem in each type, then rounds that alternate `tandem bench generate` with llama-bench
# (prefill, batch-1 decode) and llama-batched-bench (decode of 1/4/16/64 sequences), both on 2
# threads. Prints the medians, their spread and the ratios (bench/generate_table.py).
#   bench/generate.sh [--dir DIR] [--rounds N] [--types q8_0,q4_0,f32] [--batches 1,4,16,64]
# DIR (default bench/out/generate) keeps the model and the llama.cpp tools between runs. Needs
# scripts/setup --tests (Debian's PyTorch writes the model; npm's node-llama-cpp is the peer).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/bench/out/generate" rounds=3 types="q8_0,q4_0,f32" batches="1,4,16,64"
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --types) types="$2"; shift 2 ;;
    --batches) batches="$2"; shift 2 ;;
    *) echo "bench/generate.sh: unknown argument $1 (see the header of this script)" >&2; exit 2 ;;
  esac
done
tandem="${TANDEM:-$root/build/release/tandem}"
[ -x "$tandem" ] || { echo "bench/generate.sh: no $tandem (build first: cmake --preset release && cmake --build --preset release)" >&2; exit 1; }
mkdir -p "$dir/results"
results="$dir/results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$results"

if [ ! -f "$dir/hf/config.json" ]; then
  echo "writing a Qwen3-0.6B-shaped model with random weights to $dir/hf" >&2
  /usr/bin/python3 "$root/tests/interop/make_hf_models.py" --qwen3-0.6b "$dir/hf" >&2
fi
IFS=, read -ra type_list <<< "$types"
for t in "${type_list[@]}"; do
  [ -f "$dir/qwen3-0.6b-$t.gguf" ] || "$tandem" export --model "$dir/hf" --format gguf --type "$t" --out "$dir/qwen3-0.6b-$t.gguf" >&2
done
bin="$("$root/tests/interop/llama/build_tools.sh" "$dir/llama-tools" --bench | tail -1)"

# Both sides get the machine as they like it: 2 threads, no OpenBLAS core override.
unset OPENBLAS_CORETYPE
export OMP_NUM_THREADS=2
max_batch=$(tr , '\n' <<< "$batches" | sort -n | tail -1)
for round in $(seq 1 "$rounds"); do
  for t in "${type_list[@]}"; do
    model="$dir/qwen3-0.6b-$t.gguf"
    echo "round $round/$rounds: $t" >&2
    "$tandem" bench generate --model "$model" --quant "$t" --prompts 128,512 --batches "$batches" \
      --decode-tokens 64 --repeats 1 --json "$results/tandem-$t-$round.json" >&2
    /usr/bin/time -f "%M" -o "$results/llama-bench-rss-$t-$round.txt" \
      "$bin/llama-bench" -m "$model" -t 2 -p 128,512 -n 64 -r 1 -o jsonl > "$results/llama-bench-$t-$round.jsonl" 2>/dev/null
    "$bin/llama-batched-bench" -m "$model" -t 2 -c $((max_batch * 80)) -npp 1 -ntg 64 -npl "$batches" \
      --output-format jsonl 2>/dev/null | grep '^{' > "$results/llama-batched-$t-$round.jsonl"
  done
done
/usr/bin/python3 "$root/bench/generate_table.py" "$results"
