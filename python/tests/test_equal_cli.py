"""Results from Python are the CLI's, bit for bit: the same records, the same rows."""

import io
import json

import numpy as np
import pandas as pd
import pytest

import kvtier

# pandas < 3 parses floats to within an ulp unless asked to round-trip (pandas 3 always does,
# and deprecates the option): the CLI prints shortest round-trip decimals.
EXACT = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}

PAIRS = [
    ("hbm", "none"),
    ("prefer_hbm", "alpha"),
    ("split_token", "lookahead"),
    ("batch_ratio", "past_window"),
]


@pytest.mark.parametrize("placement,migration", PAIRS)
def test_run_summary_is_the_cli_json(cli, small_seed, placement, migration):
    res = kvtier.run(small_seed, placement=placement, migration=migration)
    out = cli("run", small_seed.path, "--placement", placement, "--migration", migration, "--format", "json")
    # json.loads gives the same float for the same shortest repr: equality is bit equality.
    assert [res.summary] == json.loads(out.stdout)
    assert res.summary["status"] == "ok" and res.summary["decode_time_s"] > 0


def test_v2_scenario_is_the_cli_json(cli, tmp_path):
    # A v2 scenario (GH200 presets, KV blocks, link directions, compute), shortened.
    sc = kvtier.Scenario.load("scenarios/gh200-llama70b-blocks.toml").with_(**{"workload.decode": 16})
    path = tmp_path / "blocks.toml"
    path.write_text(sc.to_toml())
    res = kvtier.run(path, placement="prefer_hbm", migration="alpha", params={"lookahead": 2})
    out = cli("run", path, "--placement", "prefer_hbm", "--migration", "alpha", "--param", "lookahead=2", "--format", "json")
    assert [res.summary] == json.loads(out.stdout)


def test_rows_are_the_cli_csv(cli, small_seed, tmp_path):
    res = kvtier.run(small_seed, placement="split_token", migration="alpha", rows=True)
    csv = tmp_path / "rows.csv"
    cli("run", small_seed.path, "--placement", "split_token", "--migration", "alpha", "--csv", csv)
    want = pd.read_csv(csv, **EXACT)
    got = res.rows
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want) > 0
    for c in want.columns:
        if c == "layer":
            assert got[c].isna().tolist() == want[c].isna().tolist()
            assert (got[c].dropna().to_numpy() == want[c].dropna().to_numpy()).all()
        elif c == "sublayer":
            assert got[c].astype(str).tolist() == want[c].tolist()
        else:
            # Exact, NaN where the CSV is empty.
            np.testing.assert_array_equal(got[c].to_numpy(), want[c].to_numpy(), err_msg=c)
    # The rows add up to the summary (SPEC 9: the per-sublayer times sum to the decode time).
    assert got["hbm_read"].sum() == res.summary["hbm_read_bytes"]


def test_row_dtypes():
    rows = kvtier.run("scenarios/tiny.toml", rows=True).rows
    ints = [c for c in kvtier.ROW_COLUMNS if c not in ("layer", "sublayer", "time_s", "alpha", "flops")]
    assert all(rows[c].dtype == np.int64 for c in ints)
    assert rows["layer"].dtype == pd.Int64Dtype()
    assert isinstance(rows["sublayer"].dtype, pd.CategoricalDtype)
    assert rows["time_s"].dtype == np.float64
    # tiny: 3 decode steps x 2 layers x (attn, mlp) with native hbm: no step phases.
    assert len(rows) == 3 * 2 * 2
    assert rows["step"].tolist() == [4] * 4 + [5] * 4 + [6] * 4


def test_compare_is_the_cli_csv(cli, small_seed):
    placements = ["prefer_hbm", "split_token"]
    migrations = ["none", "alpha", "past_window"]
    got = kvtier.compare(small_seed, placements, migrations)
    args = ["compare", small_seed.path, "--format", "csv"]
    for p in placements:
        args += ["--placement", p]
    for m in migrations:
        args += ["--migration", m]
    want = pd.read_csv(io.StringIO(cli(*args).stdout), **EXACT)
    assert list(got.columns) == list(want.columns)
    # The CSV has empty (NaN, float) columns where Python has None objects: compare as text.
    pd.testing.assert_frame_equal(
        got.astype(str).replace({"None": "nan", "<NA>": "nan"}),
        want.astype(str),
        check_dtype=False,
    )
    assert len(got) == 6
    assert got["hbm_read_bytes"].dtype == np.int64


def test_compare_json_records_equal(cli, small_seed):
    got = kvtier.compare(small_seed, ["prefer_hbm"], ["alpha", "none"])
    out = cli("compare", small_seed.path, "--placement", "prefer_hbm", "--migration", "alpha", "--migration", "none", "--format", "json")
    want = json.loads(out.stdout)
    records = got.astype(object).where(got.notna(), None).to_dict("records")
    assert records == want


def test_sweep_is_the_cli_json(cli, small_seed):
    got = kvtier.sweep(small_seed, vary={"initial.weights_on_hbm": [0.5, 1.0]})
    out = cli("sweep", small_seed.path, "--vary", "initial.weights_on_hbm=0.5,1.0", "--format", "json")
    want = json.loads(out.stdout)
    assert list(got.columns) == list(want[0].keys())
    records = got.astype(object).where(got.notna(), None).to_dict("records")
    assert records == want
    # 2 points x (prefer_hbm with none and alpha).
    assert got["initial.weights_on_hbm"].tolist() == [0.5, 0.5, 1.0, 1.0]


def test_trace_stats_is_the_cli_csv(cli, small_seed):
    got = kvtier.trace.stats(small_seed)
    out = cli("trace", "stats", small_seed.path, "--format", "csv")
    want = pd.read_csv(io.StringIO(out.stdout))
    assert list(got.columns) == list(want.columns)
    assert got["layer"].iloc[:-1].tolist() == [int(x) for x in want["layer"].iloc[:-1]]
    assert want["layer"].iloc[-1] == "all" and pd.isna(got["layer"].iloc[-1])
    # The CLI prints 4 decimals.
    for c in want.columns[1:]:
        np.testing.assert_allclose(got[c], want[c], atol=5e-5, err_msg=c)


def test_with_sets_the_key_and_show_derives(small_seed):
    sc = small_seed.with_(**{"hbm.kv_budget": "40 GB"})
    assert sc.show()["kv_budget_bytes"] == 40_000_000_000
    assert small_seed.show()["kv_budget_bytes"] != 40_000_000_000
    shown = small_seed.show()
    assert shown["decode"] == 64 and shown["prefill"] == 4096
    # KV of the prefill: P x L x k.
    assert shown["prefill_kv_bytes"] == 4096 * shown["layers"] * shown["entry_bytes"]


def test_from_dict_equals_the_file(small_seed):
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib

    d = tomllib.loads(small_seed.to_toml())
    a = kvtier.run(kvtier.Scenario.from_dict(d), placement="prefer_hbm", migration="alpha")
    b = kvtier.run(small_seed, placement="prefer_hbm", migration="alpha")
    assert a.summary == b.summary


def test_inline_strategy_equals_its_file(small_seed):
    source = open("policies/migration/alpha.rhai").read()
    a = kvtier.run(small_seed, "prefer_hbm", kvtier.Strategy("my_alpha", source))
    b = kvtier.run(small_seed, "prefer_hbm", "alpha")
    assert a.summary["migration"] == "my_alpha"
    assert {k: v for k, v in a.summary.items() if k != "migration"} == {
        k: v for k, v in b.summary.items() if k != "migration"
    }
