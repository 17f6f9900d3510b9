#!/usr/bin/env bash
# The model the Node tests serve: a tiny Llama trained by tandem on Debian's fortunes (a BPE of
# 512 tokens with ChatML's <|im_start|> and <|im_end|>, 2 layers, d_model 64, context 256,
# 120 steps: under a minute on 2 cores), exported as a Hugging Face directory whose
# tokenizer_config.json carries Qwen3's chat template, so that /v1/chat/completions works and
# replies are text, not noise. Usage: make_model.sh TANDEM OUT_DIR (OUT_DIR/model is written;
# nothing is done when it is already there).
set -euo pipefail
tandem=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
[ -f "$out/model/tokenizer_config.json" ] && exit 0
corpus=(/usr/share/games/fortunes/{science,computers,literature,wisdom})
for f in "${corpus[@]}"; do
  [ -f "$f" ] || { echo "make_model.sh: $f is missing: run scripts/setup (Debian package fortunes)" >&2; exit 1; }
done
rm -rf "$out/work" "$out/model"
mkdir -p "$out/work"
w=$out/work
# The fortunes as JSON Lines, each without its closing newline: documents that end in "\n" teach
# the model that a line break ends the text, and ChatML's generation prompt ends in one.
node -e 'const fs = require("fs");
  const docs = process.argv.slice(1).flatMap(f => fs.readFileSync(f, "utf8").split(/^%$/m));
  process.stdout.write(docs.map(d => d.trim()).filter(d => d).map(d => JSON.stringify({text: d}) + "\n").join(""));' \
  "${corpus[@]}" > "$w/corpus.jsonl"
"$tandem" tokenizer train --input "$w/corpus.jsonl" --format jsonl --vocab-size 512 \
  --special '<|endoftext|>' --special '<|im_start|>' --special '<|im_end|>' --out "$w/tokenizer.json"
"$tandem" prepare --tokenizer "$w/tokenizer.json" --input "$w/corpus.jsonl" --format jsonl \
  --val-fraction 0.05 --out "$w/data" >/dev/null
cat > "$w/config.json" <<'JSON'
{"model": {"preset": "tiny", "n_layers": 2, "d_model": 64, "n_heads": 4, "n_heads_kv": 2,
 "head_dim": 16, "d_ffn": 192, "max_seq_len": 256}, "batch_size": 8, "seq_len": 128,
 "steps": 120, "lr": 5e-3, "lr_min": 5e-4, "warmup_steps": 10, "eval_every": 120,
 "eval_batches": 2, "checkpoint_every": 120, "log_every": 50, "seed": 7}
JSON
"$tandem" train --config "$w/config.json" --data "$w/data" --out "$w/run" >/dev/null
"$tandem" export --model "$w/run" --format hf --out "$w/model"
# Qwen3's own template (recognised by its markers; tandem renders ChatML from it), added to the
# tokenizer_config.json that export wrote.
node -e 'const fs = require("fs");
  const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  config.chat_template = fs.readFileSync(process.argv[1], "utf8");
  fs.writeFileSync(process.argv[2], JSON.stringify(config, null, 2));' \
  "$here/../../io/chat_templates/qwen3.jinja" "$w/model/tokenizer_config.json"
# The export's manifest vouches for the files as written; the directory is no longer that export
# (a Hugging Face directory needs no manifest).
rm "$w/model/MANIFEST.json"
mv "$w/model" "$out/model"
rm -rf "$w"
