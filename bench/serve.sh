#!/usr/bin/env bash
# `tandem serve` beside llama.cpp's llama-server on the same GGUF file, in one run: a model of
# Qwen3-0.6B's shape with random weights in Q8_0 (bench/generate.sh's), 16 concurrent clients
# streaming greedy /v1/completions of the same length from each server in turn (llama-server with
# 16 parallel slots), both on 2 threads; then tandem's own engine at the same concurrency
# (`tandem bench generate --batches 16`). Prints, per server, the aggregate generated tokens/s, the
# decode rate (bench generate's definition) and time-to-first-token p50/p90, the median of the
# rounds (bench/serve_client.mjs measures; results land in DIR/results/DATE/).
#   bench/serve.sh [--dir DIR] [--rounds N] [--clients C] [--requests R] [--max-tokens N]
#                  [--prompt-tokens P] [--type q8_0] [--prompts same|distinct|both]
# Defaults: 2 rounds, 16 clients, 64 requests, 128 tokens each after a prompt of about 128, and
# both prompt modes: `same` (every request sends one prompt: both servers' prefix caches serve all
# but the first) and `distinct` (each request's prompt begins with its number: nothing shared).
# llama-server is built once with CMake from the llama.cpp source inside npm node-llama-cpp
# (tests/interop/llama/node_modules, from scripts/setup --tests; about 7 minutes on 2 cores, with
# this CPU's instruction sets but not AMX, see below) under DIR/llama; the model is shared with bench/generate.sh (bench/out/generate).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/bench/out/serve" rounds=2 clients=16 requests=64 max_tokens=128 prompt_tokens=128 type=q8_0
modes="same distinct"
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    --requests) requests="$2"; shift 2 ;;
    --max-tokens) max_tokens="$2"; shift 2 ;;
    --prompt-tokens) prompt_tokens="$2"; shift 2 ;;
    --type) type="$2"; shift 2 ;;
    --prompts) case "$2" in same|distinct) modes="$2" ;; both) modes="same distinct" ;;
                 *) echo "bench/serve.sh: --prompts is same, distinct or both" >&2; exit 2 ;; esac; shift 2 ;;
    *) echo "bench/serve.sh: unknown argument $1 (see the header of this script)" >&2; exit 2 ;;
  esac
done
tandem="${TANDEM:-$root/build/release/tandem}"
[ -x "$tandem" ] || { echo "bench/serve.sh: no $tandem (build first: cmake --preset release && cmake --build --preset release)" >&2; exit 1; }
results="$dir/results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$results"

# The model: bench/generate.sh's, made here when it is not there yet.
models="$root/bench/out/generate"
model="$models/qwen3-0.6b-$type.gguf"
if [ ! -f "$models/hf/config.json" ]; then
  echo "writing a Qwen3-0.6B-shaped model with random weights to $models/hf" >&2
  /usr/bin/python3 "$root/tests/interop/make_hf_models.py" --qwen3-0.6b "$models/hf" >&2
fi
[ -f "$model" ] || "$tandem" export --model "$models/hf" --format gguf --type "$type" --out "$model" >&2

# llama-server from the bundled source, built once, for this CPU's instruction sets but without
# AMX: GGML_NATIVE's -march=native turns on ggml's AMX matrix path wherever the CPU flags amx_int8,
# and on these machines (containers on Sapphire-Rapids-class Xeons) its first ldtilecfg dies with
# SIGSEGV (the kernel does not grant the tile state), so the sets are named one by one instead.
# LLAMA_USE_PREBUILT_UI=OFF: without it the build downloads the web UI's assets from Hugging
# Face (the page llama-server serves at /; the benchmark does not need it).
package="$root/tests/interop/llama/node_modules/node-llama-cpp"
server_bin="$dir/llama/native/bin/llama-server"
if [ ! -x "$server_bin" ]; then
  [ -d "$package" ] || { echo "bench/serve.sh: $package is missing (run scripts/setup --tests)" >&2; exit 1; }
  echo "building llama-server from $package/llama/gitRelease.bundle (minutes)" >&2
  rm -rf "$dir/llama"
  mkdir -p "$dir/llama"
  git clone -q "$package/llama/gitRelease.bundle" "$dir/llama/src"
  isa=()
  has() { grep -qw "$1" /proc/cpuinfo; }
  for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx512f:AVX512 avx512vbmi:AVX512_VBMI \
              avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16 avx_vnni:AVX_VNNI; do
    has "${pair%%:*}" && isa+=("-DGGML_${pair#*:}=ON")
  done
  cmake -S "$dir/llama/src" -B "$dir/llama/native" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE=OFF "${isa[@]}" -DLLAMA_CURL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF >&2
  cmake --build "$dir/llama/native" -j "$(nproc)" --target llama-server >&2
fi

# About prompt_tokens tokens of plain English (Qwen's tokenizer: about 4.5 characters a token).
prompt_file="$results/prompt.txt"
sentence="The quick brown fox jumps over the lazy dog while the patient scientist records every step. "
text=""
while [ "${#text}" -lt $((prompt_tokens * 9 / 2)) ]; do text+="$sentence"; done
printf '%s' "${text:0:$((prompt_tokens * 9 / 2))}" > "$prompt_file"

unset OPENBLAS_CORETYPE
export OMP_NUM_THREADS=2
free_port() { node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'; }
wait_health() {  # URL PID LOG
  for _ in $(seq 1 600); do
    curl -sf "$1/health" >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || { echo "bench/serve.sh: the server died; its log $3:" >&2; tail -20 "$3" >&2; exit 1; }
    sleep 0.2
  done
  echo "bench/serve.sh: $1/health never answered" >&2; exit 1
}
# measure NAME ROUND URL: a warm-up request, then a timed run per prompt mode. The warm-up's
# prompt is not the runs', so that it leaves nothing in a prefix cache for them.
measure() {
  echo "Warm-up." > "$results/warmup.txt"
  node "$root/bench/serve_client.mjs" "$3" 1 1 8 "$results/warmup.txt" >/dev/null
  for mode in $modes; do
    node "$root/bench/serve_client.mjs" "$3" "$clients" "$requests" "$max_tokens" "$prompt_file" \
      "$mode" > "$results/$1-$mode-$2.json"
    echo "round $2: $1 ($mode prompts) $(cat "$results/$1-$mode-$2.json")" >&2
  done
}
ctx=$((prompt_tokens * 2 + max_tokens + 64))  # per sequence: the prompt (tokenized longer or shorter) and the reply
for round in $(seq 1 "$rounds"); do
  port=$(free_port)
  "$tandem" serve --model "$model" --quant "$type" --port "$port" --max-seqs "$clients" \
    --ctx "$ctx" 2> "$results/tandem-serve-$round.log" &
  pid=$!
  wait_health "http://127.0.0.1:$port" "$pid" "$results/tandem-serve-$round.log"
  measure tandem "$round" "http://127.0.0.1:$port"
  kill -TERM "$pid"; wait "$pid" || true

  port=$(free_port)
  "$server_bin" -m "$model" -t 2 -tb 2 -np "$clients" -c $((clients * ctx)) --host 127.0.0.1 \
    --port "$port" --no-webui 2> "$results/llama-server-$round.log" >&2 &
  pid=$!
  wait_health "http://127.0.0.1:$port" "$pid" "$results/llama-server-$round.log"
  measure llama-server "$round" "http://127.0.0.1:$port"
  kill -TERM "$pid"; wait "$pid" || true
done
"$tandem" bench generate --model "$model" --quant "$type" --prompts "$prompt_tokens" \
  --batches "$clients" --decode-prompt "$prompt_tokens" --decode-tokens "$max_tokens" \
  --repeats "$rounds" --json "$results/engine.json" >&2

node - "$results" "$rounds" "$clients" "$max_tokens" "$modes" <<'EOF'
const fs = require("fs");
const [dir, rounds, clients, maxTokens, modes] = process.argv.slice(2);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1;
                         return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const runs = (name) => Array.from({ length: Number(rounds) }, (_, i) =>
  JSON.parse(fs.readFileSync(`${dir}/${name}-${i + 1}.json`, "utf8")));
const row = (name) => {
  const r = runs(name);
  const m = (k) => median(r.map((x) => x[k]));
  return { name, tok_s: m("tok_s"), decode: m("decode_tok_s"), p50: m("ttft_p50_ms"), p90: m("ttft_p90_ms") };
};
const engine = JSON.parse(fs.readFileSync(`${dir}/engine.json`, "utf8")).decode[0].tok_s;
console.log(`${clients} concurrent streaming clients, ${maxTokens} tokens each, median of ${rounds} rounds:`);
console.log("server        | prompts  | tokens/s (all) | decode tokens/s | TTFT p50 ms | TTFT p90 ms");
for (const mode of modes.split(" ")) {
  const t = row(`tandem-${mode}`), l = row(`llama-server-${mode}`);
  for (const [name, r] of [["tandem", t], ["llama-server", l]])
    console.log(`${name.padEnd(13)} | ${mode.padEnd(8)} | ${r.tok_s.toFixed(1).padStart(14)} | ` +
                `${r.decode.toFixed(1).padStart(15)} | ${r.p50.toFixed(0).padStart(11)} | ${r.p90.toFixed(0).padStart(11)}`);
  console.log(`  ${mode} prompts: tandem serve / llama-server ${(t.tok_s / l.tok_s).toFixed(2)}x all, ` +
              `${(t.decode / l.decode).toFixed(2)}x decode; TTFT p50 ${(t.p50 / l.p50).toFixed(2)}x; ` +
              `serve decode / engine ${(t.decode / engine).toFixed(3)}`);
}
console.log(`tandem's engine alone (bench generate, batch ${clients}): ${engine.toFixed(1)} decode tokens/s`);
EOF
echo "results: $results" >&2
