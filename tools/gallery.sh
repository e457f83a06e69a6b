#!/usr/bin/env bash
# Regenerates docs/gallery/: the charts of both seed scenarios (every placement x migration under
# policies/, as `kvtier compare --plot` writes them), their tables, and a headless Chromium
# screenshot of the seed-w100 report. Run from anywhere; needs a release build (made here) and
# Debian's chromium for the screenshot (apt-get install -y chromium).
#
# The gallery keeps the SVGs and their CSV sidecars; the PNG copies `--plot` also writes are
# dropped to keep the repository small (the SVGs render on GitHub and in any browser).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked
K=target/release/kvtier
G=docs/gallery
mkdir -p "$G"
for s in seed-w100 seed-w80; do
    rm -rf "${G:?}/$s"
    mkdir -p "$G/$s"
    "$K" compare "scenarios/$s.toml" --by placement --format markdown --plot "$G/$s" >"$G/$s/table.md"
    rm -f "$G/$s"/*.png
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$K" report scenarios/seed-w100.toml -o "$tmp/report.html"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$tmp/profile" \
    --screenshot="$tmp/report.png" --window-size=1200,2000 "file://$tmp/report.html" 2>/dev/null
cp "$tmp/report.png" "$G/report-seed-w100.png"
du -sh "$G"
