#!/usr/bin/env bash
# Builds the 100 MB text used to time `tandem tokenizer train` (docs/PERFORMANCE.md, Tokenizer):
# the Debian fortunes corpus 8 times (English prose, ~21 MB), then the Python 3.11 standard
# library's .py files (code and docstrings), then C/C++ headers from /usr/include, each list in
# sorted order, cut at exactly 100,000,000 bytes. Usage: bench/make_training_corpus.sh OUT
set -euo pipefail
out=${1:?usage: make_training_corpus.sh OUT}
set +o pipefail  # head closes the pipe at 100 MB; the writers then die of SIGPIPE, as meant
{
  fortunes=$(find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.dat' ! -name '*.u8' | sort)
  for _ in 1 2 3 4 5 6 7 8; do cat $fortunes; done
  find /usr/lib/python3.11 -name '*.py' -type f -print0 | sort -z | xargs -0 cat 2>/dev/null
  find /usr/include -type f \( -name '*.h' -o -name '*.hpp' \) -print0 | sort -z | xargs -0 cat 2>/dev/null
} | head -c 100000000 > "$out"
ls -l "$out"
