#!/usr/bin/env bash
# The routing benchmark: (a) alerts/s through 3 routes and 4 sinks (two webhooks and a
# Slack sink to a local HTTP server, a JSON-lines file), spool to confirmation; (b) the
# receive-to-alert latency at a steady rate (5,000 events/s), routing off and on.
# Built with the `dist` profile (PROFILE=release for the quick build); BUILD=0 reuses
# the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
ALERTS="${ALERTS:-20000}"
RATE="${RATE:-5000}"
SECONDS_AT_RATE="${SECONDS_AT_RATE:-20}"
TARGET="${CARGO_TARGET_DIR:-target}"
PROFILE="${PROFILE:-dist}"
if [ "${BUILD:-1}" = 1 ]; then
    cargo build --profile "$PROFILE" --locked -p demarc-bench
fi
mkdir -p "$HOME/.cache/demarc/bench"
"$TARGET/$PROFILE/demarc-bench" routing --alerts "$ALERTS" --rate "$RATE" \
    --seconds "$SECONDS_AT_RATE" --report "$HOME/.cache/demarc/bench/routing.json"
