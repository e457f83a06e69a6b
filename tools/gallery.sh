#!/usr/bin/env bash
# Regenerates docs/gallery/: the charts of both seed scenarios (every placement x migration under
# policies/, as `kvtier compare --plot` writes them), their tables, and a headless Chromium
# screenshot of the seed-w100 report. Run from anywhere; needs a release build (made here) and
# Debian's chromium for the screenshot (apt-get install -y chromium).
#
# The gallery keeps only the SVGs: the PNG copies and CSV sidecars `--plot` also writes are
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
    rm -f "$G/$s"/*.png "$G/$s"/*.csv
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$K" report scenarios/seed-w100.toml -o "$tmp/report.html"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$tmp/profile" \
    --screenshot="$tmp/report.png" --window-size=1200,2000 "file://$tmp/report.html" 2>/dev/null
cp "$tmp/report.png" "$G/report-seed-w100.png"

# docs/gallery.md, written from the files just made (the heat map's pair is the best one).
placements="prefer_hbm split_token batch_ratio lookahead_batch layer_importance" # the seed's order
{
    cat <<'HEAD'
# Gallery

Every chart of the two seed scenarios, as `kvtier compare SCENARIO --plot DIR` draws them (all
5 placements x 7 migrations under `policies/`), and a screenshot of `kvtier report`. Regenerate
everything here with:

```sh
tools/gallery.sh     # release build, both compares, the report screenshot (needs chromium)
```

The scenarios run 4,096 decode steps; lines are drawn as means over bins of 16 steps (256
points per line) and the heat map as means over bins of 32 steps (128 columns), so that each
SVG stays small. `--plot` also writes a PNG of each chart and a CSV sidecar with exactly the
numbers plotted (which steps each point covers, and the values); the gallery keeps only the SVGs.

## The report

`kvtier report scenarios/seed-w100.toml -o report.html`: one self-contained HTML file (inline
SVG and CSS, nothing fetched), shown here in headless Chromium (top of the page).

![report screenshot](gallery/report-seed-w100.png)
HEAD
    for s in seed-w100 seed-w80; do
        case $s in
        seed-w100) what="all weights on HBM" ;;
        seed-w80) what="80% of the weights on HBM" ;;
        esac
        echo
        echo "## $s: $what"
        echo
        echo "Table: [$s/table.md](gallery/$s/table.md) (\`kvtier compare scenarios/$s.toml --by placement\`)."
        echo
        echo "### Decode time per pair, with the ideal and placement bounds"
        echo
        echo "![decode time, $s](gallery/$s/decode-time.svg)"
        echo
        echo "### alpha over decode steps, one figure per placement (the seed's figures)"
        for p in $placements; do
            echo
            echo "![alpha, $s, $p](gallery/$s/alpha-$p.svg)"
        done
        heat=$(cd "$G/$s" && ls heatmap-*.svg)
        echo
        echo "### Attention alpha per layer and step, best pair"
        echo
        echo "![heat map, $s](gallery/$s/$heat)"
        for kind in step-time occupancy moved; do
            case $kind in
            step-time) title="Time per decode step" ;;
            occupancy) title="HBM KV occupancy against the budget" ;;
            moved) title="Bytes moved per step" ;;
            esac
            echo
            echo "### $title"
            for p in $placements; do
                echo
                echo "![$kind, $s, $p](gallery/$s/$kind-$p.svg)"
            done
        done
    done
} >docs/gallery.md
du -sh "$G"
