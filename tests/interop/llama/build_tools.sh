#!/usr/bin/env bash
# Builds llama.cpp's tools for tandem's interop tests against the prebuilt libraries of npm
# node-llama-cpp (tests/interop/llama/node_modules, installed by scripts/test): llama-quantize
# from the llama.cpp source bundled in the package, and llama_greedy.cpp beside this script;
# with --bench also llama-bench and llama-batched-bench (bench/generate.sh's peer).
# Seconds, not minutes: nothing of llama.cpp itself is compiled.
# Usage: build_tools.sh OUT_DIR [--bench]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$1"
with_bench="${2:-}"
package="$here/node_modules/node-llama-cpp"
libs="$here/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
if [ ! -d "$package" ] || [ ! -d "$libs" ]; then
  echo "build_tools.sh: $here/node_modules lacks node-llama-cpp (run scripts/test, which installs it)" >&2
  exit 1
fi
mkdir -p "$out/bin"
# CTest runs each test of a suite in its own process, all calling this at once: one builds.
exec 9>"$out/.lock"
flock 9
if [ ! -f "$out/src/.complete" ]; then
  rm -rf "$out/src"
  git clone -q "$package/llama/gitRelease.bundle" "$out/src"
  touch "$out/src/.complete"
fi
cp -u "$libs"/*.so "$out/bin/"
src="$out/src"
flags=(-O2 -DNDEBUG -std=c++17 -I"$src/include" -I"$src/ggml/include" -I"$src/common" -I"$src/vendor"
       -L"$out/bin" -l:libllama-common.so -l:libllama.v0.5.0.so -l:libggml.v0.5.0.so -l:libggml-base.so
       '-Wl,-rpath,$ORIGIN' -pthread)
if [ ! -x "$out/bin/llama-quantize" ]; then
  g++ -I"$src/tools/quantize" "$src"/tools/quantize/*.cpp -o "$out/bin/llama-quantize" "${flags[@]}"
fi
if [ ! -x "$out/bin/llama_greedy" ] || [ "$here/llama_greedy.cpp" -nt "$out/bin/llama_greedy" ]; then
  g++ "$here/llama_greedy.cpp" -o "$out/bin/llama_greedy" "${flags[@]}"
fi
if [ "$with_bench" = "--bench" ]; then
  for tool in llama-bench batched-bench; do
    name="$tool"; [ "$tool" = batched-bench ] && name=llama-batched-bench
    [ -x "$out/bin/$name" ] || g++ -I"$src/tools/$tool" "$src/tools/$tool"/*.cpp -o "$out/bin/$name" "${flags[@]}"
  done
fi
echo "$out/bin"
