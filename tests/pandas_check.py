"""Loads every tidy output kvtier writes with plain pandas and checks the dtypes.

Run by tests/pandas_outputs.rs: `python3 tests/pandas_check.py DIR`, where DIR holds
run/compare/sweep/study/merge outputs as CSV and JSON, and a per-sublayer CSV with its
metadata file. Prints one line per file and exits non-zero on the first wrong dtype.
"""
import json
import pathlib
import sys

import pandas as pd

INTS = [
    "moved_to_hbm_bytes", "moved_to_ext_bytes", "passive_bytes", "fallbacks", "refused_bytes",
    "peak_hbm_kv_bytes", "kv_budget_bytes", "hbm_read_bytes", "ext_read_bytes",
    "queued_at_end_bytes", "compute_bound_rows",
]
FLOATS = [
    "decode_time_s", "tokens_per_s", "ideal_bound_s", "x_ideal", "placement_bound_s",
    "x_placement", "alpha_attn", "alpha_mlp", "alpha_bytes", "idealized_over_gb", "x_best_static",
]
TEXT = ["scenario", "placement", "migration", "status"]


def check_records(path, df):
    cols = list(df.columns)
    assert cols[-(len(TEXT) + len(INTS) + len(FLOATS)):][:4] == TEXT, (path, cols)
    for c in INTS:
        assert str(df[c].dtype) == "int64", (path, c, df[c].dtype)
    for c in FLOATS:
        # float64; read_json makes a float column whose every value is integral (tiny's decode
        # times) int64, which is as good for arithmetic. An empty column is NaN.
        assert str(df[c].dtype) in ("float64", "int64"), (path, c, df[c].dtype)
    for c in TEXT:
        # object in pandas 2, the string dtype in pandas 3
        assert pd.api.types.is_string_dtype(df[c]), (path, c, df[c].dtype)
    assert (df["status"] == "ok").all(), (path, df["status"].tolist())
    if path.name.startswith("run."):
        # The idealized run: its mark as a number.
        assert df["idealized_over_gb"].tolist() == [4e-07], (path, df["idealized_over_gb"].tolist())
    assert len(df) > 0, path
    return len(df)


def main(root):
    root = pathlib.Path(root)
    seen = 0
    for path in sorted(root.glob("*.csv")):
        if path.name.startswith("sublayer"):
            continue
        n = check_records(path, pd.read_csv(path))
        print(f"{path.name}: {n} records, dtypes ok")
        seen += 1
    for path in sorted(root.glob("*.json")):
        if path.name.endswith(".meta.json"):
            continue
        n = check_records(path, pd.read_json(path))
        print(f"{path.name}: {n} records, dtypes ok")
        seen += 1
    # The per-sublayer CSV: no comment line, integer byte columns; `layer` is empty on step-phase
    # rows (SPEC 9), so it is an integer column only with a nullable dtype.
    sub = root / "sublayer.csv"
    df = pd.read_csv(sub, dtype={"layer": "Int64"})
    assert list(df.columns[:3]) == ["step", "layer", "sublayer"], list(df.columns)
    for c in ["step", "hbm_read", "ext_read", "hbm_bytes", "link_bytes", "exti_bytes", "to_hbm",
              "to_ext", "link_read", "link_write", "copy_bytes"]:
        assert str(df[c].dtype) == "int64", ("sublayer.csv", c, df[c].dtype)
    assert str(df["time_s"].dtype) in ("float64", "int64"), df["time_s"].dtype
    assert df["layer"].isna().sum() == (df["sublayer"] == "step").sum()
    meta = json.loads((root / "sublayer.csv.meta.json").read_text())
    assert meta["summary"]["decode_time_s"] > 0 and "scenario_digest" in meta, meta
    print(f"sublayer.csv: {len(df)} rows, dtypes ok; meta: {meta['scenario']}")
    seen += 1
    assert seen == 11, seen
    print("all ok")


if __name__ == "__main__":
    main(sys.argv[1])
