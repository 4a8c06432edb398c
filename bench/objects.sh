#!/usr/bin/env bash
# demarc backfill from an S3-compatible server on loopback (moto's server mode) against
# the same CloudTrail archive on local disk (events/s, peak RSS), and the time to list
# one day out of a year of CloudTrail keys against a full listing (`--dry-run`).
#
#   bench/objects.sh                       # 1,000,000 events; a year of 96 keys a day
#   EVENTS=100000 RUNS=1 bench/objects.sh
#
# Environment: EVENTS, PER_FILE, VIOLATION_RATE, SEED (as bench/backfill-vs-duckdb.sh),
# RUNS (3; medians), KEYS_PER_DAY (96), FETCH_AHEAD (32), BENCH_DIR
# (~/.cache/demarc/bench), CARGO_TARGET_DIR, BUILD (1; 0 uses the binaries built).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS=${RUNS:-3}
KEYS_PER_DAY=${KEYS_PER_DAY:-96}
FETCH_AHEAD=${FETCH_AHEAD:-32}
BENCH_DIR=${BENCH_DIR:-$HOME/.cache/demarc/bench}

source bench/common.sh

dist_binaries
cloudtrail_archive
OUT=$BENCH_DIR/results/objects-$NAME
mkdir -p "$OUT"

# moto's S3 server, from PyPI, in a venv of its own.
VENV=$BENCH_DIR/moto-venv
if ! "$VENV/bin/python" -c 'import moto, boto3' 2>/dev/null; then
    say "installing moto into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet -r tests/store/requirements.txt
fi
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$OUT/moto.log" 2>&1 &
MOTO=$!
trap 'kill $MOTO 2>/dev/null || true' EXIT
ENDPOINT=http://127.0.0.1:$PORT
for _ in $(seq 100); do
    curl -s -o /dev/null "$ENDPOINT" && break
    sleep 0.2
done
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1

# upload BUCKET: puts the files of stdin's lines "KEY<TAB>PATH" (PATH empty: a small
# CloudTrail file for the key's day) into BUCKET, 16 at a time.
UPLOAD=$(
    cat <<'EOF'
import concurrent.futures, gzip, json, sys
import boto3
endpoint, bucket = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
s3.create_bucket(Bucket=bucket)
def put(line):
    key, path = line.rstrip("\n").split("\t")
    if path:
        body = open(path, "rb").read()
    else:
        day = "-".join(key.split("/")[4:7])
        event = {"eventVersion": "1.09", "eventID": key, "eventTime": day + "T12:00:00Z",
                 "eventSource": "s3.amazonaws.com", "eventName": "GetObject"}
        body = gzip.compress(json.dumps({"Records": [event]}).encode())
    s3.put_object(Bucket=bucket, Key=key, Body=body)
with concurrent.futures.ThreadPoolExecutor(16) as pool:
    n = len(list(pool.map(put, sys.stdin)))
print(f"{n} objects put into {bucket}", file=sys.stderr)
EOF
)
upload() { "$VENV/bin/python" -c "$UPLOAD" "$ENDPOINT" "$1"; }

say "uploading $ARCHIVE to $ENDPOINT"
(cd "$ARCHIVE" && find . -name '*.json.gz' | sed 's|^\./||' | sort |
    awk -v dir="$ARCHIVE" '{print $0 "\t" dir "/" $0}') | upload archive

say "warming the page cache"
find "$ARCHIVE" -name '*.json.gz' -exec cat {} + >/dev/null

report() {
    local label=$1
    "$DEMARC" backfill "${@:2}" --alerts /dev/null --report "$OUT/$label.json" >/dev/null 2>&1
    python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(r["events_in"], r["alerts"])' \
        "$OUT/$label.json"
}

read -r local_s local_kib < <(measure local "$RUNS" "$DEMARC" backfill "$ARCHIVE" --alerts /dev/null)
read -r s3_s s3_kib < <(measure s3 "$RUNS" "$DEMARC" backfill s3://archive/ --endpoint "$ENDPOINT" \
    --fetch-ahead "$FETCH_AHEAD" --alerts /dev/null)
read -r local_events local_alerts < <(report local-report "$ARCHIVE")
read -r s3_events s3_alerts < <(report s3-report s3://archive/ --endpoint "$ENDPOINT")

say "uploading a year of CloudTrail keys ($KEYS_PER_DAY a day)"
python3 - "$KEYS_PER_DAY" <<'EOF' | upload year
import datetime, sys
per_day = int(sys.argv[1])
day = datetime.date(2025, 1, 1)
for _ in range(365):
    for i in range(per_day):
        stamp = day.strftime("%Y%m%d")
        print(f"AWSLogs/111122223333/CloudTrail/us-east-1/{day:%Y/%m/%d}/"
              f"111122223333_CloudTrail_us-east-1_{stamp}T{i // 4:02d}{i % 4 * 15:02d}Z_{i:04d}.json.gz\t")
    day += datetime.timedelta(days=1)
EOF
read -r day_s _ < <(measure list-day "$RUNS" "$DEMARC" backfill s3://year/ --endpoint "$ENDPOINT" \
    --since 2025-06-01 --until 2025-06-02 --dry-run)
read -r year_s _ < <(measure list-year "$RUNS" "$DEMARC" backfill s3://year/ --endpoint "$ENDPOINT" --dry-run)
day_keys=$(grep -o '^[0-9]* inputs' "$OUT/list-day.stderr" | cut -d' ' -f1)
year_keys=$(grep -o '^[0-9]* inputs' "$OUT/list-year.stderr" | cut -d' ' -f1)

mib() { [[ $1 == n/a ]] && echo n/a || echo "$(($1 / 1024)) MiB"; }
rate() { awk -v e="$1" -v s="$2" 'BEGIN {printf "%.0f", e / s}'; }
cat <<EOF | tee "$OUT/summary.md"

$EVENTS CloudTrail events, $(find "$ARCHIVE" -name '*.json.gz' | wc -l) gzip files ($(du -sb "$ARCHIVE" | cut -f1) bytes), median of $RUNS:

| backfill from | seconds | events/s | peak RSS | events | alerts |
|---|---|---|---|---|---|
| local disk | $local_s | $(rate "$local_events" "$local_s") | $(mib "$local_kib") | $local_events | $local_alerts |
| S3 (moto on loopback, --fetch-ahead $FETCH_AHEAD) | $s3_s | $(rate "$s3_events" "$s3_s") | $(mib "$s3_kib") | $s3_events | $s3_alerts |

| listing a year of CloudTrail keys ($KEYS_PER_DAY a day) | seconds | keys |
|---|---|---|
| one day (--since 2025-06-01 --until 2025-06-02: that day and the next are listed) | $day_s | $day_keys |
| everything | $year_s | $year_keys |
EOF
