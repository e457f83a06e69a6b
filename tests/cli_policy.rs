//! What users type: `kvtier run/compare/check/api` with scripts, driven through the built
//! binary. Includes the sandbox and error-reporting cases of a misbehaving script.

use std::fs;
use std::path::Path;

use assert_cmd::Command;

fn kvtier() -> Command {
    Command::cargo_bin("kvtier").unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_new_strategy_written_to_a_temp_dir_runs_without_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    // A copy of split_token with everything on EXT by default.
    let src = fs::read_to_string("policies/placement/split_token.rhai").unwrap();
    let mine = write(
        dir.path(),
        "all_ext.rhai",
        &src.replace("\"hbm_layer_share\", 0.5", "\"hbm_layer_share\", 0.0"),
    );
    let o = kvtier()
        .args([
            "run",
            "scenarios/tiny.toml",
            "--placement",
            &mine,
            "--migration",
            "none",
            "--format",
            "csv",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("tiny,all_ext,none,ok,"), "{out}");
    // Nothing was asked of HBM, so nothing fell back: the fallbacks column is 0.
    let col = out
        .lines()
        .next()
        .unwrap()
        .split(',')
        .position(|c| c == "fallbacks")
        .unwrap();
    let row = out.lines().find(|l| l.starts_with("tiny,")).unwrap();
    assert_eq!(row.split(',').nth(col), Some("0"), "{row}");

    // The same file in a comparison against a reference script, by folder.
    fs::copy(
        "policies/placement/prefer_hbm.rhai",
        dir.path().join("prefer_hbm.rhai"),
    )
    .unwrap();
    let o = kvtier()
        .args(["compare", "scenarios/tiny.toml", "--placement"])
        .arg(dir.path())
        .args(["--migration", "none", "--format", "csv"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("\ntiny,all_ext,none,ok,") && out.contains("\ntiny,prefer_hbm,none,ok,"),
        "{out}"
    );
    // Records only: the header and the two runs (the bounds are columns, not rows).
    assert_eq!(out.lines().count(), 3, "{out}");
}

#[test]
fn param_on_the_command_line_overrides_the_script_default() {
    let run = |extra: &[&str]| {
        let o = kvtier()
            .args([
                "run",
                "scenarios/tiny.toml",
                "--placement",
                "batch_ratio",
                "--format",
                "json",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v[0]["fallbacks"].as_u64().unwrap()
    };
    // Default 8 of 16 on HBM: tiny's 3 decode steps are decode indices 0..3, all on HBM:
    // 6 requests for 3 free entries -> 3 fallbacks. With hbm_per_batch=0 nothing asks for HBM.
    assert_eq!(run(&[]), 3);
    assert_eq!(run(&["--param", "hbm_per_batch=0"]), 0);
}

#[test]
fn misbehaving_scripts_are_clear_errors_and_the_other_pairs_still_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::copy("policies/placement/prefer_hbm.rhai", d.join("good.rhai")).unwrap();
    write(
        d,
        "forever.rhai",
        "fn place(ctx) {\n    let x = 0;\n    loop { x += 1; }\n}\n",
    );
    write(
        d,
        "recurse.rhai",
        "fn deeper(n) { deeper(n + 1) }\nfn place(ctx) {\n    deeper(0)\n}\n",
    );
    write(
        d,
        "huge.rhai",
        "fn place(ctx) {\n    let a = [];\n    for i in 0..100000 { a.push(i); }\n    \"hbm\"\n}\n",
    );
    write(d, "wrong_type.rhai", "fn place(ctx) {\n    42\n}\n");
    write(
        d,
        "unknown_param.rhai",
        "fn place(ctx) {\n    if ctx.param(\"nope\") > 1 { \"hbm\" } else { \"ext\" }\n}\n",
    );
    let m = tempfile::tempdir().unwrap();
    let past = write(
        m.path(),
        "too_far.rhai",
        "fn on_layer(ctx) {\n    let s = ctx.skipped_any(ctx.layer, 17);\n}\n",
    );
    let o = kvtier()
        .args(["compare", "scenarios/tiny.toml", "--placement"])
        .arg(d)
        .args(["--migration", "none", &past])
        .output()
        .unwrap();
    // Some pairs failed: exit code 2, but the table was printed with the good pair in it.
    assert_eq!(o.status.code(), Some(2));
    let out = stdout(&o);
    let err = stderr(&o);
    assert!(err.contains("11 of 12 pairs failed"), "{err}");
    let good = out
        .lines()
        .find(|l| l.contains("good") && l.contains("none"))
        .unwrap();
    assert!(good.contains("71.000000"), "{good}");
    // Runtime errors say where the run was: step 4 (the first decode step), layer 0.
    let expect = [
        "forever.rhai:1:1: in place (step 4, layer 0): Too many operations",
        "recurse.rhai:2:1: in place (step 4, layer 0): Stack overflow",
        "huge.rhai:1:1: in place (step 4, layer 0): Size of array",
        "wrong_type.rhai:1:1: in place: place must return \"hbm\" or \"ext\", got i64 42",
        "unknown_param.rhai:2:12: in place (step 4, layer 0): Runtime error: unknown param \"nope\"",
        "too_far.rhai:2:17: in on_layer (step 4, layer 0): Runtime error: look-ahead to step 21 (n+17) is past the window",
    ];
    for e in expect {
        assert!(out.contains(e), "missing {e:?} in\n{out}");
    }
    // One message per failing script: too_far fails with all six placements, listed once.
    assert_eq!(out.matches("too_far.rhai:2:17:").count(), 1, "{out}");
    assert!(
        out.contains("forever + too_far, good + too_far, huge + too_far, recurse + too_far"),
        "{out}"
    );
    // The offending source line is shown under the position.
    assert!(
        out.contains("  2 |     let s = ctx.skipped_any(ctx.layer, 17);"),
        "{out}"
    );
}

#[test]
fn sandbox_has_no_eval_and_no_moves_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let eval = write(
        dir.path(),
        "eval.rhai",
        "fn place(ctx) {\n    eval(\"40 + 2\");\n    \"hbm\"\n}\n",
    );
    let o = kvtier().args(["check", &eval]).output().unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("eval.rhai:2:5: syntax error: reserved keyword 'eval' is disabled"),
        "{}",
        stderr(&o)
    );
    let mv = write(
        dir.path(),
        "mv.rhai",
        "fn place(ctx) {\n    ctx.to_ext_all(ctx.empty());\n    \"hbm\"\n}\n",
    );
    let o = kvtier().args(["check", &mv]).output().unwrap();
    assert!(
        stderr(&o).contains(
            "mv.rhai:2:9: in place (step 4, layer 0): Runtime error: moves are allowed only in on_step and on_layer"
        ),
        "{}",
        stderr(&o)
    );
}

#[test]
fn check_reports_each_reference_script_ok_and_a_syntax_error_with_its_position() {
    for kind in ["placement", "migration"] {
        for e in fs::read_dir(format!("policies/{kind}")).unwrap() {
            let p = e.unwrap().path();
            let o = kvtier().arg("check").arg(&p).output().unwrap();
            assert!(o.status.success(), "{}: {}", p.display(), stderr(&o));
            assert!(stdout(&o).contains(": ok ("), "{}", stdout(&o));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.rhai",
        "fn place(ctx) {\n    let x = ;\n}\n",
    );
    let o = kvtier().args(["check", &bad]).output().unwrap();
    assert!(
        stderr(&o).contains("bad.rhai:2:13: syntax error"),
        "{}",
        stderr(&o)
    );
}

/// A scenario with token and layer skipping, small enough for a debug build.
fn skipping_scenario(dir: &Path) -> String {
    write(
        dir,
        "skips.toml",
        r#"
name = "skips"
seed = 11
[model]
layers = 4
params = 1200
dtype_bytes = 2
kv_bytes = "100 B"
[workload]
prefill = 64
decode = 48
[hbm]
capacity = "30000 B"
bandwidth = "100 B/s"
[ext]
link_bandwidth = "20 B/s"
internal_bandwidth = "40 B/s"
[skip]
source = "heavy_hitter"
rate = 0.4
recent = 8
sinks = 2
dense_layers = 1
layer_skip_rate = 0.1
"#,
    )
}

#[test]
fn compare_results_do_not_depend_on_the_number_of_threads() {
    let dir = tempfile::tempdir().unwrap();
    let sc = skipping_scenario(dir.path());
    let run = |threads: &str| {
        let o = kvtier()
            .env("RAYON_NUM_THREADS", threads)
            .args(["compare", &sc, "--format", "json"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let one = run("1");
    assert_eq!(one, run("2"));
    let v: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 35);
    // Best first.
    let times: Vec<f64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["decode_time_s"].as_f64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

#[test]
fn compare_by_placement_groups_rows_and_csv_dir_gets_one_file_per_pair() {
    let dir = tempfile::tempdir().unwrap();
    let sc = skipping_scenario(dir.path());
    let csv = dir.path().join("csv");
    let o = kvtier()
        .args([
            "compare",
            &sc,
            "--placement",
            "prefer_hbm",
            "split_token",
            "--migration",
            "none",
            "alpha",
            "--by",
            "placement",
            "--csv-dir",
        ])
        .arg(&csv)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.matches("placement: ").count(), 2, "{out}");
    let mut files: Vec<String> = fs::read_dir(&csv)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "prefer_hbm__alpha.csv",
            "prefer_hbm__alpha.csv.meta.json",
            "prefer_hbm__none.csv",
            "prefer_hbm__none.csv.meta.json",
            "split_token__alpha.csv",
            "split_token__alpha.csv.meta.json",
            "split_token__none.csv",
            "split_token__none.csv.meta.json"
        ]
    );
    let text = fs::read_to_string(csv.join("split_token__alpha.csv")).unwrap();
    assert!(text.starts_with("step,layer,sublayer,"), "{text}");
}

#[test]
fn api_prints_the_reference_in_docs_and_writes_definitions() {
    let o = kvtier().arg("api").output().unwrap();
    assert!(o.status.success());
    let docs = fs::read_to_string("docs/policy-api.md").unwrap();
    assert!(
        stdout(&o) == docs,
        "docs/policy-api.md is stale: run `kvtier api > docs/policy-api.md`"
    );
    let dir = tempfile::tempdir().unwrap();
    let o = kvtier()
        .args(["api", "--definitions"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let defs = fs::read_to_string(dir.path().join("__static__.d.rhai")).unwrap();
    assert!(
        defs.contains("fn to_hbm(ctx: Ctx, set: TokenSet, layer: int, cap_bytes: int) -> int;"),
        "{defs}"
    );
    assert!(defs.contains("fn get alpha_target(ctx: Ctx) -> float;"));
}

#[test]
fn scenario_names_its_scripts_relative_to_itself_and_passes_its_params() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = fs::read_to_string("scenarios/tiny.toml").unwrap();
    fs::copy(
        "policies/placement/batch_ratio.rhai",
        dir.path().join("ratio.rhai"),
    )
    .unwrap();
    // tiny's [policy] section is last: replace it.
    let head = &tiny[..tiny.find("[policy]").unwrap()];
    let sc = write(
        dir.path(),
        "mine.toml",
        &format!(
            "{head}[policy]\nplacement = \"ratio.rhai\"\nmigration = \"none\"\n[policy.params]\nhbm_per_batch = 0\n"
        ),
    );
    let o = kvtier()
        .args(["run", &sc, "--format", "json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (&v[0]["placement"], &v[0]["migration"]),
        (&"ratio".into(), &"none".into())
    );
    // hbm_per_batch = 0 from the scenario: nothing asks for HBM, so no fallback (default: 3).
    assert_eq!(v[0]["fallbacks"], 0);
    // The command line overrides the scenario.
    let o = kvtier()
        .args(["run", &sc, "--format", "json", "--param", "hbm_per_batch=8"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["fallbacks"], 3);
}

#[test]
fn optimize_and_compare_best_static_agree_and_show_the_ratio() {
    // tiny with no skips: the search finds 69 s (layer 0 keeps its newest 6 entries, layer 1
    // its oldest 5), better than every static placement (PreferHBM 71 s).
    let o = kvtier()
        .args(["optimize", "scenarios/tiny.toml", "--format", "json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["best_static_s"].as_f64(), Some(69.0));
    assert_eq!(v["search"]["layers"].as_array().unwrap().len(), 2);
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows[0]["placement"], "best static");
    // Every static placement: 5 seed ones and 2 baselines, plus the search.
    assert_eq!(rows.len(), 8);

    let o = kvtier()
        .args([
            "compare",
            "scenarios/tiny.toml",
            "--best-static",
            "--baselines",
            "--format",
            "csv",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let header = out.lines().next().unwrap();
    assert!(
        header.ends_with(",idealized_over_gb,x_best_static"),
        "{header}"
    );
    // PreferHBM + none at 71 / 69 (the best static time is a column's divisor, not a row).
    let prefer = out
        .lines()
        .find(|l| l.starts_with("tiny,prefer_hbm,none,"))
        .unwrap();
    let x: f64 = prefer.rsplit(',').next().unwrap().parse().unwrap();
    assert!((x - 71.0 / 69.0).abs() < 1e-12, "{prefer}");
    // A header, then one record per run: 35 seed pairs and 7 baselines.
    assert_eq!(out.lines().count(), 1 + 35 + 7);
}

#[test]
fn optimize_refuses_passive_migration_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let text = fs::read_to_string("scenarios/tiny.toml").unwrap()
        + "\n[memory]\npassive_migration = true\n";
    let sc = write(dir.path(), "p.toml", &text);
    let o = kvtier().args(["optimize", &sc]).output().unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("memory.passive_migration = false"),
        "{}",
        stderr(&o)
    );
}
