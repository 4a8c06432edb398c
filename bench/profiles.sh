#!/usr/bin/env bash
# What the build profiles cost at run time: the same commands with the `release`
# binary (the quick build, the README's first command) and the `dist` binary (LTO,
# every crate at opt-level 3: the container image, the other benchmarks), on the
# CloudTrail archive of bench/backfill-vs-duckdb.sh. Binary size, then medians of RUNS
# of: backfill without a lake, backfill with one (a new lake folder a run), and two
# queries over that lake (an aggregate; a JSON path and LIKE over every row).
#
#   bench/profiles.sh                  # 1,000,000 events, both profiles built
#   BUILD=0 EVENTS=100000 RUNS=1 bench/profiles.sh
#
# Environment: EVENTS (1000000), PER_FILE (750), VIOLATION_RATE (0.001), SEED (42),
# RUNS (3), BENCH_DIR (~/.cache/demarc/bench), CARGO_TARGET_DIR, BUILD (1; 0 uses the
# binaries already built), PROFILES ("release dist").
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS=${RUNS:-3}
BENCH_DIR=${BENCH_DIR:-$HOME/.cache/demarc/bench}
PROFILES=${PROFILES:-release dist}

source bench/common.sh

# 1. The binaries of each profile; the archive, written by the first profile's generator
# (the archive's name carries the generator's source hash, not the profile).
declare -A binary
for PROFILE in $PROFILES; do
    dist_binaries
    binary[$PROFILE]=$DEMARC
done
cloudtrail_archive

OUT=$BENCH_DIR/results/profiles-$NAME
mkdir -p "$OUT"
say "warming the page cache"
find "$ARCHIVE" -name '*.json.gz' -exec cat {} + >/dev/null

# 2. The same commands with each binary.
query_a="SELECT operation, count(*) AS n FROM events GROUP BY operation ORDER BY n DESC"
query_b="SELECT actor_principal, count(*) AS n FROM events
         WHERE json_get_str(request, 'bucketName') LIKE '%-%' GROUP BY 1 ORDER BY n DESC LIMIT 10"
rows=()
for PROFILE in $PROFILES; do
    demarc=${binary[$PROFILE]}
    say "$PROFILE: $demarc"
    size=$(stat -c %s "$demarc")
    plain=$(measure "$PROFILE-backfill" "$RUNS" "$demarc" backfill "$ARCHIVE" \
        --alerts "$OUT/$PROFILE-alerts.jsonl")
    lake=$(measure_lake "$PROFILE-backfill-lake" "$RUNS" "$OUT/$PROFILE-lake-" "$demarc" \
        backfill "$ARCHIVE" --alerts "$OUT/$PROFILE-alerts.jsonl")
    last=$(ls -d "$OUT/$PROFILE"-lake-*)
    a=$(measure "$PROFILE-query-a" "$RUNS" "$demarc" sql --lake "$last" --format csv "$query_a")
    b=$(measure "$PROFILE-query-b" "$RUNS" "$demarc" sql --lake "$last" --format csv "$query_b")
    rm -rf "$OUT/$PROFILE"-lake-*
    rows+=("$PROFILE $size $plain $lake $a $b")
done

# 3. One line per profile.
say "$EVENTS events, $(nproc) cores; medians of $RUNS; seconds (peak RSS MiB)"
printf '%s\n' "${rows[@]}" | awk -v events="$EVENTS" '
    BEGIN {
        printf "%-8s %9s %16s %16s %16s %16s\n", "profile", "size MB", "backfill",
            "with lake", "query a", "query b"
    }
    function cell(t, rss) { return sprintf("%.2f s (%d)", t, rss / 1024) }
    {
        printf "%-8s %9.0f %16s %16s %16s %16s\n", $1, $2 / 1e6, cell($3, $4),
            cell($5, $6), cell($7, $8), cell($9, $10)
    }'
echo "outputs in $OUT" >&2
