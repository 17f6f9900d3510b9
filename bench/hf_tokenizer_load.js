// Hugging Face's side of bench/tokenizer_bench.cpp --load-rounds: loads TOKENIZER_JSON with HF's
// Rust tokenizers (npm @anush008/tokenizers, tokenizers 0.22) and prints one line,
// "hf_tokenizers <ms>", the time of Tokenizer.fromFile alone (node's start-up and the module's
// own load are not counted). Usage: node bench/hf_tokenizer_load.js TOKENIZER_JSON
"use strict";
const path = require("path");
const { Tokenizer } = require(
  path.resolve(__dirname, "../tests/interop/node_modules/@anush008/tokenizers"),
);

const t0 = process.hrtime.bigint();
const tok = Tokenizer.fromFile(process.argv[2]);
const ms = Number(process.hrtime.bigint() - t0) / 1e6;
if (tok.getVocabSize(true) <= 0) throw new Error("empty vocabulary");
process.stdout.write(`hf_tokenizers ${ms.toFixed(1)}\n`);
