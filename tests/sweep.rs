//! Sweeps, studies, shards and merge, driven through the real binary on scenarios/tiny.toml
//! (2 layers, 4 + 3 tokens: a whole sweep runs in milliseconds).

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::repo;

const PLACEMENT: &str = "policies/placement/prefer_hbm.rhai";
const MIGRATION: &str = "policies/migration/alpha.rhai";

fn kvtier() -> Command {
    let mut c = Command::cargo_bin("kvtier").unwrap();
    c.current_dir(repo());
    c
}

/// The sweep of these tests: 2 x 2 points, 2 pairs = 8 runs.
fn sweep_args() -> Vec<&'static str> {
    vec![
        "sweep",
        "scenarios/tiny.toml",
        "--vary",
        "memory.hierarchy=inclusive,exclusive",
        "--vary",
        "initial.weights_on_hbm=0.5..1:0.5",
        "--placement",
        PLACEMENT,
        "--migration",
        "none",
        MIGRATION,
    ]
}

fn stdout(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `kvtier` expecting exit code 2; returns stderr.
fn fails(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{:?}", out);
    String::from_utf8(out.stderr).unwrap()
}

fn write_shards(dir: &Path, n: usize, extra: &[&str]) -> Vec<PathBuf> {
    (1..=n)
        .map(|i| {
            let f = dir.join(format!("shard{i}.json"));
            let shard = format!("{i}/{n}");
            kvtier()
                .args(sweep_args())
                .args(extra)
                .args(["--shard", &shard, "-o"])
                .arg(&f)
                .assert()
                .success();
            f
        })
        .collect()
}

#[test]
fn sweep_rows_equal_separate_runs_of_the_same_points() {
    let json = stdout(kvtier().args(sweep_args()).args(["--format", "json"]));
    let records: serde_json::Value = serde_json::from_str(&json).unwrap();
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 8);
    let dir = tempfile::tempdir().unwrap();
    let base: toml::Table =
        toml::from_str(&std::fs::read_to_string(repo().join("scenarios/tiny.toml")).unwrap())
            .unwrap();
    for (i, rec) in records.iter().enumerate() {
        // A record names its point by the varied keys' values.
        let hierarchy = rec["memory.hierarchy"].as_str().unwrap();
        let weights = rec["initial.weights_on_hbm"].as_f64().unwrap();
        let mut t = base.clone();
        t.insert(
            "memory".into(),
            toml::Value::Table(toml::Table::from_iter([(
                "hierarchy".to_string(),
                toml::Value::from(hierarchy),
            )])),
        );
        t.insert(
            "initial".into(),
            toml::Value::Table(toml::Table::from_iter([(
                "weights_on_hbm".to_string(),
                toml::Value::from(weights),
            )])),
        );
        let file = dir.path().join(format!("p{i}.toml"));
        std::fs::write(&file, toml::to_string(&t).unwrap()).unwrap();
        let migration = match rec["migration"].as_str().unwrap() {
            "none" => "none",
            _ => MIGRATION,
        };
        let single = stdout(
            kvtier()
                .arg("run")
                .arg(&file)
                .args(["--placement", PLACEMENT, "--migration", migration])
                .args(["--format", "json"]),
        );
        let single: serde_json::Value = serde_json::from_str(&single).unwrap();
        // The same record, field for field, but for the varied keys the run does not have.
        let single = single[0].as_object().unwrap();
        for (k, v) in single {
            assert_eq!(
                &rec[k], v,
                "record {i} ({hierarchy}, {weights}, {migration}): {k}"
            );
        }
        assert_eq!(rec.as_object().unwrap().len(), single.len() + 2);
    }
}

#[test]
fn rows_do_not_depend_on_the_thread_count() {
    let one = stdout(
        kvtier()
            .env("RAYON_NUM_THREADS", "1")
            .args(sweep_args())
            .args(["--format", "csv"]),
    );
    let four = stdout(
        kvtier()
            .env("RAYON_NUM_THREADS", "4")
            .args(sweep_args())
            .args(["--format", "csv"]),
    );
    assert_eq!(one, four);
}

#[test]
fn merged_shards_equal_the_unsharded_sweep_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let shards = write_shards(dir.path(), 3, &[]);
    for format in ["table", "markdown", "csv", "json"] {
        let whole = stdout(kvtier().args(sweep_args()).args(["--format", format]));
        let merged = stdout(
            kvtier()
                .arg("merge")
                .args(&shards)
                .args(["--format", format]),
        );
        assert_eq!(whole, merged, "format {format}");
    }
    // Shards given in any order merge alike.
    let reversed: Vec<&PathBuf> = shards.iter().rev().collect();
    let a = stdout(kvtier().arg("merge").args(&shards));
    let b = stdout(kvtier().arg("merge").args(reversed));
    assert_eq!(a, b);
}

#[test]
fn merge_refuses_a_missing_run() {
    let dir = tempfile::tempdir().unwrap();
    let shards = write_shards(dir.path(), 3, &[]);
    let e = fails(kvtier().arg("merge").arg(&shards[0]).arg(&shards[2]));
    // Shard 2/3 holds runs 1, 4 and 7 (run % 3 == 1).
    assert!(e.contains("3 of 8 runs are missing"), "{e}");
    assert!(
        e.contains(
            "run 1 (memory.hierarchy=inclusive initial.weights_on_hbm=0.5, prefer_hbm + alpha)"
        ),
        "{e}"
    );
}

#[test]
fn merge_refuses_a_duplicated_run() {
    let dir = tempfile::tempdir().unwrap();
    let shards = write_shards(dir.path(), 2, &[]);
    let e = fails(
        kvtier()
            .arg("merge")
            .arg(&shards[0])
            .arg(&shards[1])
            .arg(&shards[0]),
    );
    assert!(
        e.contains("run 0 (memory.hierarchy=inclusive initial.weights_on_hbm=0.5, prefer_hbm + none) is in both"),
        "{e}"
    );
    assert!(e.contains("exactly once"), "{e}");
}

#[test]
fn merge_refuses_shards_of_different_sweeps() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_shards(dir.path(), 2, &[]);
    let other = dir.path().join("other.json");
    kvtier()
        .args(sweep_args())
        .args(["--param", "dead_band=0.1", "--shard", "2/2", "-o"])
        .arg(&other)
        .assert()
        .success();
    let e = fails(kvtier().arg("merge").arg(&a[0]).arg(&other));
    assert!(e.contains("shards of different sweeps"), "{e}");
    // Not a result file at all.
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{\"rows\": []}").unwrap();
    let e = fails(kvtier().arg("merge").arg(&junk));
    assert!(e.contains("not a kvtier sweep result file"), "{e}");
}

#[test]
fn an_unknown_key_fails_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("csv");
    let e = fails(
        kvtier()
            .args(["sweep", "scenarios/tiny.toml"])
            .args(["--vary", "memory.hierarchy=inclusive,exclusive"])
            .args(["--vary", "memory.hirarchy=inclusive"])
            .arg("--csv-dir")
            .arg(&csv),
    );
    assert!(e.contains("--vary memory.hirarchy=inclusive"), "{e}");
    assert!(e.contains("unknown field `hirarchy`"), "{e}");
    assert!(!csv.exists(), "nothing may run before every point is valid");
}

#[test]
fn a_value_of_the_wrong_type_fails_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("csv");
    // The first two points are valid; the third is not, so nothing runs at all.
    let out = kvtier()
        .args(["sweep", "scenarios/tiny.toml"])
        .args(["--vary", "workload.decode=2,3,many"])
        .arg("--csv-dir")
        .arg(&csv)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8(out.stderr).unwrap();
    assert!(e.contains("--vary workload.decode=many"), "{e}");
    assert!(e.contains("invalid type"), "{e}");
    assert!(out.stdout.is_empty());
    assert!(!csv.exists());
}

#[test]
fn a_param_that_overrides_a_varied_key_is_refused() {
    let e = fails(
        kvtier()
            .args(["sweep", "scenarios/tiny.toml"])
            .args(["--vary", "policy.params.lookahead=1,2"])
            .args(["--param", "lookahead=4"]),
    );
    assert!(e.contains("`policy.params.lookahead` is varied"), "{e}");
}

#[test]
fn a_bad_shard_is_a_clear_error() {
    for bad in ["0/3", "4/3", "x", "1/0"] {
        let e = fails(kvtier().args(sweep_args()).args(["--shard", bad]));
        assert!(e.contains("expected I/N with 1 <= I <= N"), "{bad}: {e}");
    }
}

fn write_study(dir: &Path, extra: &str) -> PathBuf {
    let f = dir.join("s.toml");
    let base = repo().join("scenarios/tiny.toml");
    std::fs::write(
        &f,
        format!(
            "title = \"t\"\nbase = {:?}\nplacements = [{:?}]\nmigrations = [\"none\"]\n{extra}\n[[vary]]\nkey = \"workload.decode\"\nvalues = [2, 3]\n",
            base.display().to_string(),
            repo().join(PLACEMENT).display().to_string()
        ),
    )
    .unwrap();
    f
}

#[test]
fn a_study_runs_like_the_same_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let f = write_study(dir.path(), "columns = [\"decode_time_s\", \"x_ideal\"]");
    let out = stdout(kvtier().arg("study").arg(&f).args(["--format", "csv"]));
    assert!(
        out.starts_with("workload.decode,scenario,placement,migration,status,decode_time_s,"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 3, "{out}");
    // The same records as the sweep it writes down.
    let tiny = repo().join("scenarios/tiny.toml");
    let sweep = stdout(
        kvtier()
            .arg("sweep")
            .arg(&tiny)
            .args(["--vary", "workload.decode=2,3", "--placement"])
            .arg(repo().join(PLACEMENT))
            .args(["--migration", "none", "--format", "csv"]),
    );
    assert_eq!(out, sweep);
}

#[test]
fn a_table_per_point_heads_each_point_and_drops_the_key_columns() {
    let dir = tempfile::tempdir().unwrap();
    let f = write_study(
        dir.path(),
        "columns = [\"decode_time_s\"]\ntable_per_point = true",
    );
    let md = stdout(kvtier().arg("study").arg(&f).args(["--format", "markdown"]));
    // One heading per point (decode 2, then 3), each followed by a one-row table whose first
    // column is the placement, not the varied key.
    let heads: Vec<&str> = md.lines().filter(|l| l.starts_with("#### ")).collect();
    assert_eq!(
        heads,
        ["#### workload.decode = 2", "#### workload.decode = 3"],
        "{md}"
    );
    let headers: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("| placement"))
        .collect();
    assert_eq!(headers.len(), 2, "{md}");
    assert!(!md.contains("| workload.decode"), "{md}");
    // CSV stays one flat table with the key column.
    let csv = stdout(kvtier().arg("study").arg(&f).args(["--format", "csv"]));
    assert!(
        csv.starts_with("workload.decode,scenario,placement,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 3, "{csv}");
}

#[test]
fn a_study_with_an_unknown_field_is_rejected_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let f = write_study(dir.path(), "colums = [\"x_ideal\"]");
    let e = fails(kvtier().arg("study").arg(&f));
    assert!(e.contains("unknown field `colums`"), "{e}");
    assert!(e.contains("s.toml:5:1"), "{e}");
    let f = write_study(dir.path(), "columns = [\"speed\"]");
    let e = fails(kvtier().arg("study").arg(&f));
    assert!(e.contains("unknown column \"speed\""), "{e}");
}

#[test]
fn every_shipped_study_parses_and_expands() {
    let dir = repo().join("scenarios/studies");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let s = kvtier::study::load(&p).unwrap_or_else(|e| panic!("{}: {e:#}", p.display()));
            // The largest is baselines: 12 points x 43 runs (seed pairs, baselines, search).
            assert!(
                s.runs() > 0 && s.runs() <= 600,
                "{}: {} runs",
                p.display(),
                s.runs()
            );
            n += 1;
        }
    }
    assert!(
        n >= 11,
        "expected a study per seed question and dimension, found {n}"
    );
}

#[test]
fn result_labels_follow_the_points_sweep_expands() {
    // merge labels runs from the definition alone; it must agree with the points that ran.
    let vary = vec![
        kvtier::sweep::parse_vary("workload.decode=2,3;seed=5,6").unwrap(),
        kvtier::sweep::parse_vary("memory.hierarchy=inclusive,exclusive").unwrap(),
    ];
    let base = repo().join("scenarios/tiny.toml");
    let points = kvtier::sweep::expand(&base, &vary).unwrap();
    let def = kvtier::sweep_run::SweepDef {
        title: None,
        base: base.display().to_string(),
        vary,
        placements: vec!["hbm".into()],
        migrations: vec!["none".into()],
        extra_pairs: vec![],
        params: vec![],
        columns: vec![],
        sort: None,
        table_per_point: false,
    };
    assert_eq!(def.points(), 4);
    assert_eq!(
        def.keys(),
        ["workload.decode", "seed", "memory.hierarchy"].map(String::from)
    );
    for (i, p) in points.iter().enumerate() {
        let values: Vec<toml::Value> = p.assignments.iter().map(|(_, v)| v.clone()).collect();
        assert_eq!(def.point_values(i), values, "point {i}");
    }
}

#[test]
fn merge_refuses_an_edited_result_file_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let shards = write_shards(dir.path(), 1, &[]);
    let text = std::fs::read_to_string(&shards[0]).unwrap();
    let bad = dir.path().join("bad.json");
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["definition"]["columns"][0] = "speed".into();
    std::fs::write(&bad, json.to_string()).unwrap();
    let e = fails(kvtier().arg("merge").arg(&bad));
    assert!(
        e.contains("bad.json: definition") && e.contains("unknown column \"speed\""),
        "{e}"
    );
}

#[test]
fn a_sweep_over_scenarios_and_the_best_static_column() {
    // Two scenario files (tiny and tiny with a slower link), two modes; PreferHBM with no
    // migration and the best static search at each point.
    let dir = tempfile::tempdir().unwrap();
    let tiny = std::fs::read_to_string(repo().join("scenarios/tiny.toml")).unwrap();
    std::fs::write(dir.path().join("a.toml"), &tiny).unwrap();
    std::fs::write(
        dir.path().join("b.toml"),
        tiny.replace("link_bandwidth = \"20 B/s\"", "link_bandwidth = \"10 B/s\""),
    )
    .unwrap();
    let out = stdout(kvtier().args([
        "sweep",
        &dir.path().join("a.toml").display().to_string(),
        "--vary",
        "scenario=a.toml,b.toml",
        "--vary",
        "memory.migration=sync,async",
        "--placement",
        "prefer_hbm",
        "--migration",
        "none",
        "--best-static",
        "--columns",
        "decode_time_s,x_best_static",
        "--format",
        "csv",
    ]));
    let header: Vec<&str> = out.lines().next().unwrap().split(',').collect();
    // The varied scenario file is `scenario_file`: `scenario` is the scenario's name.
    assert_eq!(
        header[..6],
        [
            "scenario_file",
            "memory.migration",
            "scenario",
            "placement",
            "migration",
            "status"
        ]
    );
    let col = |name: &str| header.iter().position(|c| *c == name).unwrap();
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 8, "{out}");
    let (time, x) = (col("decode_time_s"), col("x_best_static"));
    // tiny: PreferHBM 71 s, best static 69 s (cli_policy.rs); each point's rows are divided by
    // its own best static time.
    let prefer = &rows[0];
    assert_eq!(
        [prefer[0], prefer[1], prefer[3], prefer[4]],
        ["a.toml", "sync", "prefer_hbm", "none"]
    );
    let num = |s: &str| s.parse::<f64>().unwrap();
    assert_eq!(num(prefer[time]), 71.0);
    assert_eq!(num(prefer[x]), 71.0 / 69.0);
    assert_eq!(&rows[1][3..5], ["best static", "(search)"]);
    assert_eq!((num(rows[1][time]), num(rows[1][x])), (69.0, 1.0));
    // The slower link is another scenario: slower, and its own best static time.
    let slow = num(rows[4][time]);
    assert!(rows[4][0] == "b.toml" && slow > 71.0, "{out}");
    let best_b = num(rows[5][time]);
    assert_eq!(num(rows[4][x]), slow / best_b);
    // A scenario value that is not a file name is refused before anything runs.
    let e = fails(kvtier().args(["sweep", "scenarios/tiny.toml", "--vary", "scenario=1,2"]));
    assert!(e.contains("a scenario is a file name"), "{e}");
}
