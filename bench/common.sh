# What the benchmark scripts share; sourced, with OUT set to the results folder.

say() { printf '\n== %s\n' "$*" >&2; }

failed() {
    echo "$1 failed; the end of its stderr ($OUT/$1.stderr):" >&2
    tail -n 20 "$OUT/$1.stderr" >&2
    exit 1
}

# measure LABEL RUNS COMMAND...: runs the command RUNS times (output in
# $OUT/LABEL.{stdout,stderr}); prints the median wall seconds and the largest peak RSS
# (KiB, or "n/a" without GNU time).
measure() {
    local label=$1 runs=$2
    shift 2
    local times=() rss=0 run start end kib
    for ((run = 1; run <= runs; run++)); do
        start=$EPOCHREALTIME
        if [[ -x /usr/bin/time ]]; then
            /usr/bin/time -v -o "$OUT/$label.time" "$@" >"$OUT/$label.stdout" 2>"$OUT/$label.stderr" ||
                failed "$label"
            kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$OUT/$label.time")
            ((kib > rss)) && rss=$kib
        else
            "$@" >"$OUT/$label.stdout" 2>"$OUT/$label.stderr" || failed "$label"
            rss=n/a
        fi
        end=$EPOCHREALTIME
        times+=("$(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.3f", b - a}')")
        echo "  $label run $run: ${times[-1]} s" >&2
    done
    printf '%s\n' "${times[@]}" | sort -g | awk -v rss="$rss" \
        '{t[NR] = $1} END {printf "%s %s\n", t[int((NR + 1) / 2)], rss}'
}

# dist_binaries: builds demarc and demarc-synth with the `dist` profile (or PROFILE,
# e.g. PROFILE=release to measure the quick build) unless BUILD=0, and sets DEMARC,
# SYNTH and GENERATOR, a hash of the generator's source that names the archives it
# writes (a changed generator gets new archives).
dist_binaries() {
    local target=${CARGO_TARGET_DIR:-target}
    local profile=${PROFILE:-dist}
    if [[ ${BUILD:-1} == 1 ]]; then
        say "building $profile binaries"
        cargo build --locked --profile "$profile" -p demarc -p demarc-synth
    fi
    DEMARC=$target/$profile/demarc
    SYNTH=$target/$profile/demarc-synth
    [[ -x $DEMARC && -x $SYNTH ]] || {
        echo "no $DEMARC or $SYNTH: run with BUILD=1" >&2
        exit 1
    }
    GENERATOR=$(cat crates/synth/src/*.rs crates/synth/src/bin/*.rs | sha256sum | cut -c1-12)
}

# cloudtrail_archive: the CloudTrail archive of EVENTS events (1000000; PER_FILE, 750, a
# file; violations at VIOLATION_RATE, 0.001; SEED, 42) in the S3 gzip layout, generated
# once per parameters and generator source under BENCH_DIR; sets the parameters' defaults,
# NAME, ARCHIVE, LABELS and ALLOW (the generated organisation's allow tables).
cloudtrail_archive() {
    EVENTS=${EVENTS:-1000000}
    PER_FILE=${PER_FILE:-750}
    VIOLATION_RATE=${VIOLATION_RATE:-0.001}
    SEED=${SEED:-42}
    NAME="cloudtrail-${EVENTS}-pf${PER_FILE}-r${VIOLATION_RATE}-s${SEED}-g${GENERATOR}"
    ARCHIVE=$BENCH_DIR/$NAME
    LABELS=$BENCH_DIR/$NAME.labels.tsv
    # The organisation the events are generated for (its accounts trust each other).
    ALLOW=$BENCH_DIR/$NAME.allow
    if [[ ! -f $ARCHIVE/.complete || ! -f $ALLOW/trusted_accounts.csv ]]; then
        say "generating $EVENTS events into $ARCHIVE"
        rm -rf "$ARCHIVE"
        mkdir -p "$BENCH_DIR"
        "$SYNTH" cloudtrail --events "$EVENTS" --per-file "$PER_FILE" --seed "$SEED" \
            --violation-rate "$VIOLATION_RATE" --labels "$LABELS" --allow "$ALLOW" --out "$ARCHIVE"
        touch "$ARCHIVE/.complete"
    fi
}

# measure_lake LABEL RUNS PREFIX COMMAND...: measure, with `--lake PREFIX<time>` added to
# the command, so that each run writes a lake folder of its own as a first backfill does:
# a lake deleted just before would make ext4 skip its recently freed inodes one by one
# (without a journal, it does not reuse an inode for a minute after deletion), a cost of
# the benchmark's clean-up, not of writing a lake. The newest folder is kept.
measure_lake() {
    local label=$1 runs=$2 prefix=$3
    shift 3
    rm -rf "$prefix"*
    # shellcheck disable=SC2016 # expanded by the inner shell, once per run
    measure "$label" "$runs" bash -c 'exec "$@" --lake "$0$EPOCHREALTIME"' "$prefix" "$@"
    local lakes
    mapfile -t lakes < <(ls -d "$prefix"* | sort)
    rm -rf "${lakes[@]:0:${#lakes[@]}-1}"
}

# duckdb_venv: DuckDB from PyPI (DUCKDB_VERSION, or the latest) in a venv of its own
# under BENCH_DIR; sets PYTHON to its interpreter.
duckdb_venv() {
    local VENV=$BENCH_DIR/duckdb-venv
    if ! "$VENV/bin/python" -c 'import duckdb' 2>/dev/null; then
        say "installing duckdb into $VENV"
        if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
            echo "python3 -m venv is unavailable: apt-get install python3-venv" >&2
            exit 1
        fi
        rm -rf "$VENV"
        python3 -m venv "$VENV" || {
            echo "python3 -m venv failed: apt-get install python3-venv" >&2
            exit 1
        }
        "$VENV/bin/pip" install --quiet "duckdb${DUCKDB_VERSION:+==$DUCKDB_VERSION}"
    fi
    PYTHON=$VENV/bin/python
}
