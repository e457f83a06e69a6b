"""The Python package's speed against the CLI's (issue 17's targets), as ratios of medians.

    python3 benches/python_speed.py [--repeat 7] [--scenario scenarios/seed-w100.toml]

Interleaves, per repeat: the CLI (`kvtier run SCENARIO --format json`, a whole process, as a
user times it), `kvtier.run(SCENARIO)` (scenario load included, as the CLI does it) and
`kvtier.run(SCENARIO, rows=True)`. Prints the medians, `python / CLI` (target <= 1.05) and
what `rows=True` adds (target <= 0.5 s), and checks that both give the same summary.
Needs a release CLI (`cargo build --release`) and the package (`pip install ./python`).
"""

import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path

import kvtier

ROOT = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default="scenarios/seed-w100.toml")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--cli", default=str(ROOT / "target" / "release" / "kvtier"))
    a = ap.parse_args()

    cli, py, rows, frame_rows, pair = [], [], [], 0, ""
    for i in range(a.repeat + 1):
        t = time.perf_counter()
        out = subprocess.run([a.cli, "run", a.scenario, "--format", "json"], capture_output=True, text=True, check=True)
        t_cli = time.perf_counter() - t
        t = time.perf_counter()
        res = kvtier.run(a.scenario)
        t_py = time.perf_counter() - t
        t = time.perf_counter()
        with_rows = kvtier.run(a.scenario, rows=True)
        t_rows = time.perf_counter() - t
        if i == 0:  # warm-up: page cache, first import
            assert [res.summary] == json.loads(out.stdout), "Python and the CLI disagree"
            assert with_rows.summary == res.summary
            frame_rows = len(with_rows.rows)
            pair = f"{res.summary['placement']} + {res.summary['migration']}"
            continue
        cli.append(t_cli)
        py.append(t_py)
        rows.append(t_rows)

    m_cli, m_py, m_rows = (statistics.median(v) for v in (cli, py, rows))
    extra = statistics.median(r - p for r, p in zip(rows, py))
    print(f"{a.scenario} ({pair}), {a.repeat} interleaved repeats, medians:")
    print(f"  CLI `kvtier run --format json` (process)  {m_cli:.3f} s")
    print(f"  kvtier.run                                {m_py:.3f} s")
    print(f"  kvtier.run(rows=True) ({frame_rows} rows)    {m_rows:.3f} s")
    print(f"  python / CLI            {m_py / m_cli:.3f}   (target <= 1.05)")
    print(f"  rows=True adds          {extra:.3f} s (median of paired differences; target <= 0.5 s)")


if __name__ == "__main__":
    main()
