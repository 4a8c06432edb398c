#!/usr/bin/env python3
"""Recall and precision of the rules on the held-back labelled events.

    bench/heldback/score.py [DEMARC] [--json OUT]

DEMARC is the binary (default: target/dist/demarc, else target/release/demarc). The
events in aws/ and gcp/ were written from the providers' API references and the
detection catalog, and are kept out of the rules' fixtures: they measure the rules,
they never tune them. Each labels.tsv row names the rules that must alert on an event
(`expect`) or, for a near miss, the rule it resembles (`near`).

A pair (event, rule) is a true positive when the rule alerts on an event labelled with
it, a false negative when it does not, and a false positive when a rule alerts on an
event not labelled with it. The GCP events are written for an organisation whose
domain is example.com, which allow/trusted_domains.csv says.
"""
import collections
import csv
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def labels():
    rows = {}
    for provider in ("aws", "gcp"):
        path = os.path.join(HERE, provider, "labels.tsv")
        with open(path, newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                expect = {r for r in row["expect"].split(",") if r}
                rows[row["event_id"]] = {
                    "expect": expect,
                    "near": row["near"],
                    "class": row["class"],
                    "why": row["why"],
                }
    return rows


def alerts(demarc):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "alerts.jsonl")
        report = os.path.join(tmp, "report.json")
        subprocess.run(
            [demarc, "backfill", os.path.join(HERE, "aws"), os.path.join(HERE, "gcp"),
             "--allow", os.path.join(HERE, "allow"), "--alerts", out, "--report", report],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(report) as f:
            rep = json.load(f)
        pairs = set()
        with open(out) as f:
            for line in f:
                alert = json.loads(line)
                for event in alert["event_ids"]:
                    pairs.add((event, alert["rule_id"]))
        return pairs, rep


def main():
    args = sys.argv[1:]
    out_json = None
    if "--json" in args:
        i = args.index("--json")
        out_json = args[i + 1]
        del args[i:i + 2]
    demarc = args[0] if args else next(
        (p for p in (os.path.join(ROOT, "target/dist/demarc"),
                     os.path.join(ROOT, "target/release/demarc")) if os.path.exists(p)),
        "demarc")
    truth = labels()
    raised, report = alerts(demarc)
    tp = fn = fp = 0
    per_class = collections.defaultdict(lambda: [0, 0, 0])
    misses, false_alarms = [], []
    for event, label in sorted(truth.items()):
        got = {r for e, r in raised if e == event}
        for rule in sorted(label["expect"]):
            if rule in got:
                tp += 1
                per_class[label["class"]][0] += 1
            else:
                fn += 1
                per_class[label["class"]][1] += 1
                misses.append((event, rule, label["class"], label["why"]))
        for rule in sorted(got - label["expect"]):
            fp += 1
            per_class[label["class"]][2] += 1
            false_alarms.append((event, rule, label["class"], label["why"]))
    unknown = sorted({e for e, _ in raised} - set(truth))
    positives = sum(1 for l in truth.values() if l["expect"])
    rejected = report.get("rejected") or {}
    rejected = sum(rejected.values()) if isinstance(rejected, dict) else rejected
    print(f"{len(truth)} events ({positives} positive, {len(truth) - positives} near misses), "
          f"{rejected} rejected")
    recall = tp / (tp + fn) if tp + fn else 1.0
    precision = tp / (tp + fp) if tp + fp else 1.0
    print(f"recall {recall:.2f} ({tp}/{tp + fn})  precision {precision:.2f} ({tp}/{tp + fp})")
    print(f"{'class':<18} {'tp':>3} {'fn':>3} {'fp':>3}")
    for cls, (a, b, c) in sorted(per_class.items()):
        print(f"{cls:<18} {a:>3} {b:>3} {c:>3}")
    for event, rule, cls, why in misses:
        print(f"missed  {event} {rule} [{cls}]: {why}")
    for event, rule, cls, why in false_alarms:
        print(f"flagged {event} {rule} [{cls}]: {why}")
    for event in unknown:
        print(f"unlabelled alert on {event}")
    if out_json:
        with open(out_json, "w") as f:
            json.dump({"recall": recall, "precision": precision, "tp": tp, "fn": fn, "fp": fp,
                       "missed": misses, "flagged": false_alarms}, f, indent=1)


if __name__ == "__main__":
    main()
