#!/usr/bin/env bash
# The README's first command on a fresh machine: a minimal Debian 12 root (debootstrap,
# build-essential only) with this machine's Rust toolchain mounted read-only, where
#   1. building without the packages the README names fails (at openssl-sys);
#   2. with them installed, `cargo build --release -p demarc` runs from nothing (an
#      empty target folder and cargo home; crate downloads timed apart);
#   3. `cargo run --release -p demarc -- demo` then works as the README says.
# Prints the build's wall time and the binary's size; cargo's timing report (which
# crate took how long) is left in the root.
#
#   sudo bench/fresh-build.sh                  # needs root, debootstrap and a mirror
#
# Environment: ROOT (/var/tmp/demarc-fresh-root; kept between runs, its target folder
# is not), MIRROR (http://deb.debian.org/debian), PROFILE (release).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source bench/common.sh

ROOT=${ROOT:-/var/tmp/demarc-fresh-root}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
PROFILE=${PROFILE:-release}
# What README.md (Run it) tells a Debian or Ubuntu user to install beside the toolchain.
PACKAGES=(pkg-config libssl-dev)

[[ $(id -u) == 0 ]] || { echo "run as root (debootstrap, chroot, mount)" >&2; exit 1; }
command -v debootstrap >/dev/null || apt-get install -y -q debootstrap
sysroot=$(rustc --print sysroot)

if [[ ! -f $ROOT/.complete ]]; then
    say "debootstrap: Debian 12 with build-essential into $ROOT"
    rm -rf "$ROOT"
    debootstrap --variant=minbase --include=build-essential,ca-certificates,git \
        bookworm "$ROOT" "$MIRROR" >/dev/null
    touch "$ROOT/.complete"
fi
# Certificate authorities this machine adds (a TLS-inspecting proxy), so that the
# root reaches crates.io as this machine does; the resolver likewise.
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$ROOT/usr/local/share/ca-certificates/"
    chroot "$ROOT" update-ca-certificates >/dev/null 2>&1
fi
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"

mounted=()
cleanup() {
    local m
    for m in "${mounted[@]}"; do umount "$m" || true; done
}
trap cleanup EXIT
mkdir -p "$ROOT/opt/rust"
mount --bind "$sysroot" "$ROOT/opt/rust" && mounted=("$ROOT/opt/rust" "${mounted[@]}")
mount -o remount,ro,bind "$ROOT/opt/rust"
mount -t proc proc "$ROOT/proc" && mounted=("$ROOT/proc" "${mounted[@]}")
mount --bind /dev "$ROOT/dev" && mounted=("$ROOT/dev" "${mounted[@]}")

# The committed tree (HEAD), a new cargo home and an empty target folder.
rm -rf "$ROOT/src" "$ROOT/root/cargo" "$ROOT/root/target"
git clone -q "$PWD" "$ROOT/src"
in_root() {
    chroot "$ROOT" env -i HOME=/root CARGO_HOME=/root/cargo CARGO_TARGET_DIR=/root/target \
        PATH=/opt/rust/bin:/usr/local/bin:/usr/bin:/bin bash -c "cd /src && $1"
}

say "1. without ${PACKAGES[*]}"
chroot "$ROOT" apt-get purge -y -q "${PACKAGES[@]}" >/dev/null 2>&1 || true
if in_root "cargo build --locked --profile $PROFILE -p openssl-sys" >"$ROOT/root/without.log" 2>&1; then
    echo "openssl-sys built without ${PACKAGES[*]}: the README's list may be too long" >&2
else
    grep -m1 -o 'Could not find directory of OpenSSL installation' "$ROOT/root/without.log" ||
        tail -n 5 "$ROOT/root/without.log"
fi
rm -rf "$ROOT/root/target" "$ROOT/root/cargo"

say "2. apt-get install ${PACKAGES[*]}; cargo build --profile $PROFILE from nothing"
chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${PACKAGES[@]}" >/dev/null
start=$EPOCHREALTIME
in_root "cargo fetch --locked" >/dev/null 2>&1
fetched=$EPOCHREALTIME
in_root "cargo build --locked --profile $PROFILE -p demarc --timings" >"$ROOT/root/build.log" 2>&1 || {
    tail -n 30 "$ROOT/root/build.log" >&2
    exit 1
}
built=$EPOCHREALTIME
binary=$ROOT/root/target/$PROFILE/demarc

say "3. cargo run --profile $PROFILE -p demarc -- demo"
in_root "cargo run --locked --profile $PROFILE -p demarc -- demo --rate 2000" >"$ROOT/root/demo.log" 2>&1 || {
    tail -n 30 "$ROOT/root/demo.log" >&2
    exit 1
}
# The summary line: "873 messages, 831 events (…), 34 alerts, …".
grep -E '^[0-9]+ messages, .* [1-9][0-9]* alerts' "$ROOT/root/demo.log" || {
    echo "the demo raised no alert:" >&2
    tail -n 30 "$ROOT/root/demo.log" >&2
    exit 1
}

awk -v a="$start" -v b="$fetched" -v c="$built" -v size="$(stat -c %s "$binary")" \
    -v cores="$(nproc)" -v profile="$PROFILE" 'BEGIN {
        printf "download %.0f s; cargo build --profile %s from nothing: %d min %02d s on %d cores; binary %.0f MB\n",
            b - a, profile, (c - b) / 60, (c - b) % 60, cores, size / 1e6
    }'
echo "timing report: $(ls "$ROOT"/root/target/cargo-timings/cargo-timing-2*.html)" >&2
