#!/usr/bin/env bash
# demarc backfill against DuckDB on the same CloudTrail archive: wall time, events/s,
# peak RSS, and recall / false positives against the violations injected by
# demarc-synth (each labelled with the one rule it must trigger).
#
#   bench/backfill-vs-duckdb.sh                  # 1,000,000 events
#   EVENTS=100000 RUNS=1 bench/backfill-vs-duckdb.sh
#
# Environment: EVENTS (1000000), PER_FILE (750), VIOLATION_RATE (0.001), SEED (42),
# RUNS (3; the median time is reported), BENCH_DIR (~/.cache/demarc/bench),
# CARGO_TARGET_DIR, DUCKDB_THREADS (all cores), DUCKDB_VERSION (latest on PyPI),
# BUILD (1; 0 uses the binaries already built).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS=${RUNS:-3}
BENCH_DIR=${BENCH_DIR:-$HOME/.cache/demarc/bench}

source bench/common.sh

# 1. The binaries (the `dist` profile).
dist_binaries

# 2. The archive, generated once per parameters and generator source.
cloudtrail_archive
files=$(find "$ARCHIVE" -name '*.json.gz' | wc -l)
bytes=$(du -sb "$ARCHIVE" | cut -f1)
labelled=$(($(wc -l <"$LABELS") - 1))

# 3. DuckDB from PyPI, in a venv of its own.
duckdb_venv

OUT=$BENCH_DIR/results/$NAME
mkdir -p "$OUT"

say "warming the page cache ($files files, $((bytes / 1000000)) MB)"
find "$ARCHIVE" -name '*.json.gz' -exec cat {} + >/dev/null

# 4. demarc backfill.
demarc_result=""
if [[ -x $DEMARC ]] && "$DEMARC" backfill --help >/dev/null 2>&1; then
    say "demarc backfill"
    demarc_result=$(measure demarc "$RUNS" "$DEMARC" backfill "$ARCHIVE" --allow "$ALLOW" \
        --alerts "$OUT/alerts.jsonl" --report "$OUT/report.json")
else
    say "skipping demarc: \`$DEMARC backfill\` is not available"
fi

# 5. DuckDB over the same files.
say "duckdb ($("$PYTHON" -c 'import duckdb; print(duckdb.__version__)'))"
duckdb_result=$(measure duckdb "$RUNS" "$PYTHON" bench/duckdb_rules.py "$ARCHIVE" \
    --out "$OUT/duckdb-matches.tsv" ${DUCKDB_THREADS:+--threads "$DUCKDB_THREADS"})
cat "$OUT/duckdb.stderr" >&2
"$PYTHON" bench/duckdb_rules.py --list-rules >"$OUT/duckdb-rules.txt"
for sql in queries/*.sql; do basename "$sql" .sql; done >"$OUT/demarc-rules.txt"

# 6. Recall and false positives against the labels, per tool, restricted to the rules
# the tool implements.
say "$EVENTS events, $files files, $labelled injected violations (rate $VIOLATION_RATE), $(nproc) cores"
python3 - "$EVENTS" "$LABELS" "$OUT" "$demarc_result" "$duckdb_result" <<'EOF'
import json, sys

events, labels_path, out, demarc, duckdb = sys.argv[1:6]
events = int(events)
with open(labels_path) as f:
    next(f)
    labels = {tuple(line.rstrip("\n").split("\t")[::-1]) for line in f}  # (rule, event)

def pairs_from_alerts(path):
    found = set()
    with open(path) as f:
        for line in f:
            if line.strip():
                alert = json.loads(line)
                found.update((alert["rule_id"], e) for e in alert["event_ids"])
    return found

def pairs_from_tsv(path):
    with open(path) as f:
        next(f)
        return {tuple(line.rstrip("\n").split("\t")) for line in f}

rows = []
for tool, result, found, rules in [
    ("demarc", demarc, lambda: pairs_from_alerts(f"{out}/alerts.jsonl"), f"{out}/demarc-rules.txt"),
    ("duckdb", duckdb, lambda: pairs_from_tsv(f"{out}/duckdb-matches.tsv"), f"{out}/duckdb-rules.txt"),
]:
    if not result:
        continue
    seconds, rss = result.split()
    implemented = set(open(rules).read().split())
    expected = {p for p in labels if p[0] in implemented}
    found = found()
    recall = len(found & expected) / len(expected) if expected else float("nan")
    false_positives = len(found - labels)
    rss = f"{int(rss) / 1024:.0f} MiB" if rss.isdigit() else rss
    rows.append((tool, float(seconds), recall, len(expected), false_positives, rss, len(implemented)))

print(f"{'tool':<8} {'rules':>5} {'seconds':>8} {'events/s':>10} {'recall':>14} {'false pos.':>10} {'peak RSS':>10}")
for tool, seconds, recall, expected, fp, rss, n in rows:
    print(f"{tool:<8} {n:>5} {seconds:>8.2f} {events / seconds:>10,.0f} "
          f"{recall:>6.3f} of {expected:<5} {fp:>10} {rss:>10}")
times = {r[0]: r[1] for r in rows}
if len(times) == 2:
    print(f"duckdb_time / demarc_time = {times['duckdb'] / times['demarc']:.2f}")
EOF
echo "outputs in $OUT" >&2
