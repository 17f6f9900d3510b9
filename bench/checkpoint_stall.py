# Checkpoint cost from a run's metrics.jsonl: the snapshot stall, plus the extra time of the
# steps that ran while the background write was in flight (over the median step), as a share of
# 100 median steps (one checkpoint per 100 steps).
#   checkpoint_stall.py METRICS_JSONL BATCH SEQ
import json, statistics, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
B, T = int(sys.argv[2]), int(sys.argv[3])
steps = {r['step']: B * T / r['tokens_per_s'] for r in ev if 'event' not in r}
median = statistics.median(steps.values())
print(f"median step {median:.3f} s over {len(steps)} steps")
for r in ev:
    if r.get('event') != 'checkpoint': continue
    s, write = r['step'], r['write_s']
    # steps after s whose start fell inside the write
    t, extra, k = 0.0, 0.0, s + 1
    while k in steps and t < write:
        extra += max(0.0, steps[k] - median); t += steps[k]; k += 1
    lost = r['stall_s'] + extra
    print(f"step {s}: stall {r['stall_s']:.3f} s, write {write:.2f} s (CPU {r.get('write_cpu_s', 0):.2f} s), "
          f"slower steps +{extra:.2f} s, "
          f"lost {lost:.2f} s = {100 * lost / (100 * median):.2f}% of 100 steps")
