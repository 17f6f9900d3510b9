// npm tiktoken's side of bench/tokenizer_bench.cpp: encodes FILE with the GPT-2 encoding REPS
// times after one warm-up and prints one line: "tiktoken <MB/s of each rep, space-separated>".
// Usage: node bench/tiktoken_bench.js FILE REPS   (needs scripts/setup's tests/interop/node_modules)
"use strict";
const fs = require("fs");
const path = require("path");
const { get_encoding } = require(path.resolve(__dirname, "../tests/interop/node_modules/tiktoken"));

const [file, repsArg] = process.argv.slice(2);
const text = fs.readFileSync(file, "utf8");
const bytes = Buffer.byteLength(text, "utf8");
const enc = get_encoding("gpt2");
enc.encode_ordinary(text);  // warm-up: WebAssembly compilation, regex setup
const rates = [];
for (let r = 0; r < Number(repsArg || 5); ++r) {
  const t0 = process.hrtime.bigint();
  enc.encode_ordinary(text);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  rates.push((bytes / 1e6 / seconds).toFixed(2));
}
enc.free();
console.log("tiktoken " + rates.join(" "));
