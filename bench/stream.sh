#!/usr/bin/env bash
# The streaming benchmark: (a) pipeline alone, (b) a bare rdkafka consumer on a local
# Apache Kafka broker (4.x, KRaft, started from its Maven Central artifacts with the
# machine's Java, as the end-to-end tests do), (c) `demarc run` end to end as a
# fraction of (b), and produce-to-alert latency at a fixed rate. Needs Java 17+ and
# Maven (once, to fetch Kafka). Built with the `dist` profile (PROFILE=release for the
# quick build); BUILD=0 reuses the binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
MESSAGES="${MESSAGES:-300000}"
RATE="${RATE:-5000}"
SECONDS_AT_RATE="${SECONDS_AT_RATE:-20}"
TARGET="${CARGO_TARGET_DIR:-target}"
PROFILE="${PROFILE:-dist}"
if [ "${BUILD:-1}" = 1 ]; then
    cargo build --profile "$PROFILE" --locked -p demarc -p demarc-bench
fi
mkdir -p "$HOME/.cache/demarc/bench"
"$TARGET/$PROFILE/demarc-bench" stream --messages "$MESSAGES" --rate "$RATE" \
    --latency-seconds "$SECONDS_AT_RATE" --report "$HOME/.cache/demarc/bench/stream.json"
