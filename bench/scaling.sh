#!/usr/bin/env bash
# How demarc backfill scales: events/s and peak memory at 1 and 2 worker threads, on
# generated CloudTrail archives of 100 k, 1 M and 10 M events (gzip, S3 layout, every
# rule, the generated organisation's allow tables).
#
#   bench/scaling.sh
#   SIZES="100000 1000000" RUNS=1 BUILD=0 bench/scaling.sh
#
# Environment: SIZES ("100000 1000000 10000000"), RUNS (3; the median time is
# reported), PER_FILE, VIOLATION_RATE, SEED, BENCH_DIR, BUILD as in
# bench/backfill-vs-duckdb.sh. A 10 M-event archive takes about 2 GB.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source bench/common.sh

RUNS=${RUNS:-3}
BENCH_DIR=${BENCH_DIR:-$HOME/.cache/demarc/bench}
SIZES=${SIZES:-100000 1000000 10000000}

dist_binaries
OUT=$BENCH_DIR/results/scaling
mkdir -p "$OUT"
rows=()
for EVENTS in $SIZES; do
    cloudtrail_archive
    say "$EVENTS events: warming the page cache"
    find "$ARCHIVE" -name '*.json.gz' -exec cat {} + >/dev/null
    for threads in 1 2; do
        say "$EVENTS events, $threads thread(s)"
        read -r seconds kib < <(measure "scale-$EVENTS-$threads" "$RUNS" "$DEMARC" backfill \
            "$ARCHIVE" --allow "$ALLOW" --threads "$threads" \
            --alerts "$OUT/alerts-$EVENTS-$threads.jsonl")
        rows+=("$(awk -v n="$EVENTS" -v t="$threads" -v s="$seconds" -v k="$kib" 'BEGIN {
            printf "%-10d %7d %8.2f %10d %8d MiB", n, t, s, n / s, k / 1024 }')")
    done
done
say "demarc backfill, $(nproc) cores, medians of $RUNS"
printf '%-10s %7s %8s %10s %12s\n' events threads seconds events/s "peak RSS"
printf '%s\n' "${rows[@]}"
