#!/usr/bin/python3
"""Summarises `rewire lm train --log` files of MoE runs for the README.

For each NAME given (files NAME-s1.jsonl, NAME-s2.jsonl, ... and the
runs' stdout NAME-sK.out), prints the final val loss per seed and its mean
± standard deviation, and for runs with experts the load balance over the
last logged segment (with --eval-every 100 and 1000 steps: the last 10% of
training): per layer, the busiest expert's routed tokens over the mean,
as summed over that segment, and the mean over its batches of that ratio;
and the dropped share of assignments.
Usage: /usr/bin/python3 tools/moe_table.py runs/dense runs/moe ...
"""
import glob
import json
import re
import statistics
import sys


def summarise(prefix):
    losses, balance, batch_balance, dropped, secs = [], [], [], [], []
    for path in sorted(glob.glob(prefix + "-s*.jsonl")):
        lines = [json.loads(l) for l in open(path)]
        lm = [l for l in lines if l.get("event") == "lm"]
        if not lm or lm[-1]["step"] != lm[-1]["steps"]:
            continue  # unfinished
        losses.append(lm[-1]["val_loss"])
        last = lm[-1]["step"]
        for l in lines:
            if l.get("event") == "moe" and l["step"] == last:
                routed = l["routed"]
                balance.append(max(routed) / (sum(routed) / len(routed)))
                batch_balance.append(l["busiest_over_mean"])
                dropped.append(l["dropped"] / max(1, sum(routed)))
        out = open(path[:-len(".jsonl")] + ".out").read()
        m = re.search(r"train_seconds=([0-9.]+) steps=([0-9]+)", out)
        if m:
            secs.append(float(m.group(1)) / int(m.group(2)))
    if not losses:
        return f"{prefix}: no finished runs"
    sd = statistics.stdev(losses) if len(losses) > 1 else 0.0
    text = (f"{prefix}: {len(losses)} seeds, val loss {statistics.mean(losses):.4f} ± {sd:.4f} "
            f"({', '.join(f'{x:.4f}' for x in losses)}); s/step of the runs "
            f"{', '.join(f'{x:.3f}' for x in secs)}")
    if balance:
        text += (f"; last segment busiest/mean per layer: worst {max(balance):.2f}, mean "
                 f"{statistics.mean(balance):.2f}; per batch mean {statistics.mean(batch_balance):.2f}"
                 f"; dropped {100 * statistics.mean(dropped):.2f}%")
    return text


if __name__ == "__main__":
    for prefix in sys.argv[1:]:
        print(summarise(prefix))
