#!/usr/bin/env bash
# The lake: what writing it costs a backfill, its size against the gzip archive, and
# investigation queries over it, demarc beside DuckDB on the same Parquet files.
#
#   bench/lake.sh                                   # 9 M CloudTrail + 1 M GCP events
#   AWS_EVENTS=900000 GCP_EVENTS=100000 RUNS=1 bench/lake.sh
#
# Queries (median of RUNS, both tools in one run):
#   (a) one principal's activity over a week;
#   (b) count by operation for a day;
#   (c) one rule (aws-cloudtrail-logging-stopped) over a month: its SQL as is, and
#       `demarc rules backtest` (which also builds the alerts).
# Environment: AWS_EVENTS (9000000), GCP_EVENTS (1000000), RUNS (3), BENCH_DIR
# (~/.cache/demarc/bench), CARGO_TARGET_DIR, BUILD (1; 0 uses the binaries built).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

AWS_EVENTS=${AWS_EVENTS:-9000000}
GCP_EVENTS=${GCP_EVENTS:-1000000}
RUNS=${RUNS:-3}
BENCH_DIR=${BENCH_DIR:-$HOME/.cache/demarc/bench}

source bench/common.sh

dist_binaries

# 1. The archives (generated once per size and generator source).
ARCHIVE=$BENCH_DIR/lake-archive-${AWS_EVENTS}-${GCP_EVENTS}-g${GENERATOR}
if [[ ! -f $ARCHIVE/.complete ]]; then
    say "generating $AWS_EVENTS CloudTrail and $GCP_EVENTS GCP events into $ARCHIVE"
    rm -rf "$ARCHIVE"
    "$SYNTH" cloudtrail --events "$AWS_EVENTS" --per-file 1000 --out "$ARCHIVE/aws"
    "$SYNTH" gcp --events "$GCP_EVENTS" --per-file 1000 --out "$ARCHIVE/gcp"
    # GCS exports are NDJSON; gzip them as they are archived, so that the lake is
    # compared with compressed input on both sides.
    find "$ARCHIVE/gcp" -name '*.json' -exec gzip -6 {} +
    touch "$ARCHIVE/.complete"
fi
archive_bytes=$(find "$ARCHIVE" -name '*.gz' -printf '%s\n' | awk '{s += $1} END {print s}')
events=$((AWS_EVENTS + GCP_EVENTS))

OUT=$BENCH_DIR/results/lake-${AWS_EVENTS}-${GCP_EVENTS}
mkdir -p "$OUT"
LAKE=$OUT/lake


say "warming the page cache"
find "$ARCHIVE" -name '*.gz' -exec cat {} + >/dev/null

# 2. Backfill without and with the lake (the last run's lake is kept).
say "backfill, $events events"
no_lake=$(measure backfill "$RUNS" "$DEMARC" backfill "$ARCHIVE" --alerts "$OUT/alerts.jsonl")
# Each run writes a lake folder of its own (see measure_lake); the last one is kept.
rm -rf "$LAKE"
with_lake=$(measure_lake backfill-lake "$RUNS" "$OUT/lake-run-" "$DEMARC" \
    backfill "$ARCHIVE" --alerts "$OUT/alerts.jsonl")
mv "$OUT"/lake-run-* "$LAKE"
lake_bytes=$(find "$LAKE" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
lake_files=$(find "$LAKE/events" -name '*.parquet' | wc -l)
compact=$(measure compact 1 "$DEMARC" lake compact "$LAKE")
compacted_bytes=$(find "$LAKE" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
compacted_files=$(find "$LAKE/events" -name '*.parquet' | wc -l)

# 3. The queries' parameters, from the lake itself: the busiest IAM user, a week from
# the second day, the third day, the second month.
principal=$("$DEMARC" sql --lake "$LAKE" --format csv \
    "SELECT actor_principal FROM events WHERE actor_type = 'IAMUser' GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1" | tail -n 1)
first=$("$DEMARC" sql --lake "$LAKE" --format csv "SELECT min(date) FROM events" | tail -n 1)
week_start=$(date -u -d "$first + 1 day" +%F)
week_end=$(date -u -d "$first + 8 days" +%F)
day=$(date -u -d "$first + 2 days" +%F)
month_start=$(date -u -d "$first + 30 days" +%F)
month_end=$(date -u -d "$first + 60 days" +%F)
rule_where=$(sed -n '/^WHERE/,$p' queries/aws-cloudtrail-logging-stopped.sql | tr '\n' ' ')
QA="SELECT time, operation, resource, outcome FROM events WHERE actor_principal = '$principal' AND time >= TIMESTAMP '${week_start}T00:00:00Z' AND time < TIMESTAMP '${week_end}T00:00:00Z' ORDER BY time"
QB="SELECT operation, count(*) AS n FROM events WHERE date = '$day' GROUP BY operation ORDER BY n DESC, operation"
QC="SELECT event_id, time, account_id, region, actor_principal, operation, resource FROM events $rule_where AND time >= TIMESTAMP '${month_start}T00:00:00Z' AND time < TIMESTAMP '${month_end}T00:00:00Z' ORDER BY time"

duckdb_venv
cat >"$OUT/duckdb_query.py" <<'PY'
import sys, duckdb
lake, sql = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{lake}/events/**/*.parquet', hive_partitioning = true)")
rows = con.execute(sql).fetchall()
for row in rows:
    print("\t".join("" if v is None else str(v) for v in row))
PY

say "queries (median of $RUNS)"
results=()
for q in a b c; do
    var=Q${q^^}
    sql=${!var}
    d=$(measure "query-$q-demarc" "$RUNS" "$DEMARC" sql --lake "$LAKE" --format csv "$sql")
    k=$(measure "query-$q-duckdb" "$RUNS" "$PYTHON" "$OUT/duckdb_query.py" "$LAKE" "$sql")
    demarc_rows=$(($(wc -l <"$OUT/query-$q-demarc.stdout") - 1))
    duckdb_rows=$(wc -l <"$OUT/query-$q-duckdb.stdout")
    results+=("$q ${d%% *} ${k%% *} $demarc_rows $duckdb_rows")
done
backtest=$(measure backtest "$RUNS" "$DEMARC" rules backtest queries/aws-cloudtrail-logging-stopped.sql \
    --lake "$LAKE" --since "$month_start" --until "$month_end")

python3 - "$events" "$archive_bytes" "$lake_bytes" "$lake_files" "$compacted_bytes" "$compacted_files" \
    "$no_lake" "$with_lake" "$compact" "$backtest" "$principal" "$day" "${results[@]}" <<'PY'
import sys
(events, archive, lake, files, compacted, compacted_files, no_lake, with_lake, compact,
 backtest, principal, day, *queries) = sys.argv[1:]
events, archive, lake, compacted = int(events), int(archive), int(lake), int(compacted)
t0, rss0 = no_lake.split(); t1, rss1 = with_lake.split()
print(f"\n{events:,} events, gzip archive {archive / 1e6:.0f} MB")
print(f"backfill without lake: {float(t0):.1f} s ({events / float(t0):,.0f} events/s), peak RSS {int(rss0) / 1024:.0f} MiB")
print(f"backfill with lake:    {float(t1):.1f} s ({events / float(t1):,.0f} events/s), peak RSS {int(rss1) / 1024:.0f} MiB"
      f" -> {float(t0) / float(t1) * 100:.0f} % of the no-lake rate")
print(f"lake: {lake / 1e6:.0f} MB in {files} event files = {lake / archive:.2f}x the gzip bytes;"
      f" compacted in {float(compact.split()[0]):.1f} s: {compacted / 1e6:.0f} MB in {compacted_files} files"
      f" = {compacted / archive:.2f}x")
print(f"queries (principal {principal}, day {day}):")
names = {"a": "(a) one principal, a week", "b": "(b) count by operation, a day", "c": "(c) a rule over a month"}
for q in queries:
    key, d, k, dr, kr = q.split()
    print(f"  {names[key]:32} demarc {float(d):6.2f} s   duckdb {float(k):6.2f} s   rows {dr} / {kr}")
print(f"  {'(c) as `demarc rules backtest`':32} demarc {float(backtest.split()[0]):6.2f} s (alerts built)")
PY
