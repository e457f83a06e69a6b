#!/usr/bin/env python3
"""The seed run as a researcher would write it in numpy, timed against kvtier (issue 16).

The peer does what `kvtier run scenarios/seed-w100.toml` does with the native `hbm` placement:
for every decode step and layer, a heavy-hitter skip mask (sinks and a recent window always
read, pages of 16 positions, a persistent skipped set per layer sized to the layer's target
share and churned by 30% of the read pages each step, the share growing with depth around a
mean of 0.3 over 30 sparse layers), then the KV read counted with one vectorised count over
bool arrays, then the new entry written on HBM while the 58 GB budget has room. Its random
stream is numpy's, so its skip masks are not kvtier's bit for bit; the work per step and layer
is the same, and the totals it prints land within a percent of kvtier's.

Usage (from the repository root, after `cargo build --release`):

    python3 benches/numpy_peer.py            # 5 interleaved repeats of both
    python3 benches/numpy_peer.py --repeat 3 --steps 1024

It prints each run's wall time, the medians, and kvtier's median as a fraction of the peer's.
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
KVTIER = REPO / "target" / "release" / "kvtier"

# scenarios/seed-w100.toml and the heavy-hitter generator's default profile.
LAYERS, PREFILL, DECODE = 32, 30000, 4096
ENTRY_BYTES = 2 * 112 * 128 * 2  # K and V, 112 KV heads of 128, FP16: 57,344 B
BUDGET_BYTES = 58 * 10**9
SINKS, RECENT, PAGE, KEEP, DENSE, SPREAD, RATE = 4, 64, 16, 0.7, 2, 0.5, 0.3


def layer_targets():
    """Skipped share per layer: 0 for dense layers, a linear ramp of mean RATE over all."""
    sparse = LAYERS - DENSE
    scale = LAYERS / sparse
    out = []
    for l in range(LAYERS):
        if l < DENSE:
            out.append(0.0)
        else:
            x = (l - DENSE) / (sparse - 1)
            out.append(min(0.95, RATE * scale * (1 + SPREAD * (2 * x - 1))))
    return out


def peer(steps, seed=42):
    rng = np.random.default_rng(seed)
    end = PREFILL + steps
    present = np.zeros((LAYERS, end), dtype=bool)
    present[:, :PREFILL] = True
    hbm = present.copy()
    used = PREFILL * LAYERS * ENTRY_BYTES
    pages = (end + PAGE - 1) // PAGE
    skipped = np.zeros((LAYERS, pages), dtype=bool)
    targets = layer_targets()
    read_entries = ext_entries = 0
    for n in range(PREFILL, end):
        cands = max(n - RECENT, 0) // PAGE
        for l in range(LAYERS):
            sk = skipped[l, :cands]
            want = round(targets[l] * n / PAGE)
            have = int(np.count_nonzero(sk))
            if want != have:
                pool = np.flatnonzero(~sk if want > have else sk)
                sk[rng.choice(pool, abs(want - have), replace=False)] ^= True
            read_pages = np.flatnonzero(~sk)
            skip_pages = np.flatnonzero(sk)
            swaps = min(round((1 - KEEP) * read_pages.size), skip_pages.size)
            if swaps:
                sk[rng.choice(read_pages, swaps, replace=False)] = True
                sk[rng.choice(skip_pages, swaps, replace=False)] = False
            mask = np.zeros(n, dtype=bool)
            mask[: cands * PAGE] = np.repeat(sk, PAGE)
            mask[:SINKS] = False
            read = present[l, :n] & ~mask
            total = int(np.count_nonzero(read))
            on_hbm = int(np.count_nonzero(read & hbm[l, :n]))
            read_entries += total
            ext_entries += total - on_hbm
            present[l, n] = True
            if used + ENTRY_BYTES <= BUDGET_BYTES:
                hbm[l, n] = True
                used += ENTRY_BYTES
    return read_entries, ext_entries


def kvtier_run(steps):
    scenario = (REPO / "scenarios" / "seed-w100.toml").read_text()
    if steps != DECODE:
        scenario = scenario.replace(f"decode = {DECODE}", f"decode = {steps}")
    path = REPO / "target" / "numpy-peer-seed.toml"
    path.write_text(scenario)
    start = time.perf_counter()
    out = subprocess.run(
        [str(KVTIER), "run", str(path), "--format", "json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return time.perf_counter() - start, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--steps", type=int, default=DECODE, help="decode steps (default: the seed's 4096)")
    a = ap.parse_args()
    if not KVTIER.exists():
        sys.exit(f"{KVTIER} is missing: run `cargo build --release` first")
    ours, theirs = [], []
    for i in range(a.repeat):
        t, out = kvtier_run(a.steps)
        ours.append(t)
        start = time.perf_counter()
        read, ext = peer(a.steps)
        theirs.append(time.perf_counter() - start)
        print(f"repeat {i + 1}: kvtier {ours[-1]:.3f} s, numpy {theirs[-1]:.3f} s", flush=True)
    import json

    s = json.loads(out)
    s = s[0] if isinstance(s, list) else s
    print(f"numpy peer: {read:,} KV entries read, {ext:,} from EXT "
          f"({read * ENTRY_BYTES / 1e9:.1f} GB, {ext * ENTRY_BYTES / 1e9:.1f} GB)")
    print(f"kvtier:     ext_read_bytes {s['ext_read_bytes'] / 1e9:.1f} GB")
    mo, mt = statistics.median(ours), statistics.median(theirs)
    print(f"median of {a.repeat}: kvtier {mo:.3f} s (process start included), numpy {mt:.3f} s: "
          f"numpy / kvtier = {mt / mo:.1f}x")


if __name__ == "__main__":
    main()
