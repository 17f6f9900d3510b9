#!/usr/bin/python3
"""The table of bench/generate.sh: tandem against llama.cpp per weight type, each figure the
median over the rounds with its range (min-max), and the ratio of the medians.

Usage: generate_table.py RESULTS_DIR   (the files bench/generate.sh wrote there)
"""
import glob
import json
import os
import statistics
import sys


def spread(values):
    if not values:
        return "-", None
    m = statistics.median(values)
    return f"{m:8.1f} ({min(values):.1f}-{max(values):.1f})", m


def jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.startswith("{")]


def main(results):
    types = sorted({os.path.basename(p).split("-")[1] for p in glob.glob(os.path.join(results, "tandem-*.json"))})
    print(f"{'type':6} {'measure':22} {'tandem':>24} {'llama.cpp':>24} {'ratio':>6}")
    for t in types:
        ours = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(results, f"tandem-{t}-*.json")))]
        bench = [r for p in sorted(glob.glob(os.path.join(results, f"llama-bench-{t}-*.jsonl"))) for r in jsonl(p)]
        batched = [r for p in sorted(glob.glob(os.path.join(results, f"llama-batched-{t}-*.jsonl"))) for r in jsonl(p)]
        rows = []
        for P in sorted({p["tokens"] for o in ours for p in o["prefill"]}):
            rows.append((f"prefill {P} tok/s",
                         [p["tok_s"] for o in ours for p in o["prefill"] if p["tokens"] == P],
                         [r["avg_ts"] for r in bench if r["n_prompt"] == P and r["n_gen"] == 0]))
        for B in sorted({d["batch"] for o in ours for d in o["decode"]}):
            peer = [r["speed_tg"] for r in batched if r["pl"] == B]
            if B == 1:
                peer += [r["avg_ts"] for r in bench if r["n_gen"] > 0 and r["n_prompt"] == 0]
            rows.append((f"decode x{B} tok/s", [d["tok_s"] for o in ours for d in o["decode"] if d["batch"] == B], peer))
        rss = []
        for p in sorted(glob.glob(os.path.join(results, f"llama-bench-rss-{t}-*.txt"))):
            with open(p) as f:
                rss.append(int(f.read().split()[-1]) / 1024)
        rows.append(("peak RSS MB", [o["peak_rss_mb"] for o in ours], rss))
        for name, a, b in rows:
            (sa, ma), (sb, mb) = spread(a), spread(b)
            ratio = f"{ma / mb:6.2f}" if ma and mb else "     -"
            print(f"{t:6} {name:22} {sa:>24} {sb:>24} {ratio}")
        floor = statistics.median(o["decode_floor_tok_s"] for o in ours)
        triad = statistics.median(o["triad_gb_s"] for o in ours)
        budget = statistics.median(o["rss_budget_mb"] for o in ours)
        print(f"{t:6} triad {triad:.1f} GB/s: batch-1 decode floor {floor:.1f} tok/s; "
              f"memory target {budget:.0f} MB")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
