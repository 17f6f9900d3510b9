# Sourced by the MPI training tests: prepare_tiny_data TANDEM DIR writes DIR/tok.json (a 300-id
# tokenizer) and DIR/data (token shards of two fortunes files, 5% for validation), the data of
# the `tiny` Llama runs (2 layers, width 64, 137k parameters with this vocabulary).
prepare_tiny_data() {
  local tandem=$1 dir=$2
  local corpus="/usr/share/games/fortunes/science /usr/share/games/fortunes/computers" f
  for f in $corpus; do [ -f "$f" ] || { echo "FAIL: $f is missing: run scripts/setup (Debian package fortunes)"; exit 1; }; done
  "$tandem" tokenizer train --input $corpus --vocab-size 300 --special '<|endoftext|>' --out "$dir/tok.json" >/dev/null
  "$tandem" prepare --tokenizer "$dir/tok.json" --input $corpus --doc-separator % --val-fraction 0.05 \
    --out "$dir/data" >/dev/null
}
