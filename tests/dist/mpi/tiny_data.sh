# Sourced by the training scripts of the MPI tests (train_parity.sh, zero.sh) after they set
# $tandem: a temporary $dir, removed at exit, holding data/ prepared from two fortunes files with
# a 300-id tokenizer (the tiny Llama has 137k parameters with it), and mpirun allowed as root.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
corpus="/usr/share/games/fortunes/science /usr/share/games/fortunes/computers"
for f in $corpus; do [ -f "$f" ] || { echo "FAIL: $f is missing: run scripts/setup (Debian package fortunes)"; exit 1; }; done

"$tandem" tokenizer train --input $corpus --vocab-size 300 --special '<|endoftext|>' --out "$dir/tok.json" >/dev/null
"$tandem" prepare --tokenizer "$dir/tok.json" --input $corpus --doc-separator % --val-fraction 0.05 \
  --out "$dir/data" >/dev/null
