"""Checks that two training runs logged the same loss, gradient norm and validation loss, bit for
bit, at every step of their metrics.jsonl (a resumed run logs again from its checkpoint: the last
record of each step counts). Usage: same_metrics.py RUN_DIR_A RUN_DIR_B LABEL"""
import json
import sys


def steps(run):
    out = {}
    with open(f"{run}/metrics.jsonl") as f:
        for r in map(json.loads, f):
            if "event" not in r:
                out[r["step"]] = r
    return out


a_dir, b_dir, label = sys.argv[1:4]
a, b = steps(a_dir), steps(b_dir)
assert a.keys() == b.keys(), f"{label}: steps differ: {sorted(a.keys() ^ b.keys())[:10]}"
for s, r in a.items():
    for k in ("loss", "grad_norm", "val_loss"):
        assert r.get(k) == b[s].get(k), f"{label} step {s}: {k} {r.get(k)!r} in {a_dir}, {b[s].get(k)!r} in {b_dir}"
print(f"{label}: {len(a)} steps bitwise equal to the uninterrupted run")
