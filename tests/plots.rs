//! Charts and the HTML report, on scenarios/tiny.toml, driven through the built binary: every
//! chart kind is written, parses back as SVG, and its sidecar holds the run's own numbers
//! (checked against the per-sublayer CSV and against hand arithmetic from tiny.toml).
//!
//! tiny.toml: L = 2, P = 4, D = 3, Wa = 200 B, Wm = 400 B, k = 100 B, HBM 100 B/s, LINK 20 B/s,
//! EXTI 40 B/s, KV budget 1100 B with 800 B of prefill KV on HBM (room for 3 new entries).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command as Process;

use assert_cmd::Command;

fn kvtier() -> Command {
    Command::cargo_bin("kvtier").unwrap()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A migration that moves position 0 (both layers) to EXT in the step phase of step 5.
const MOVE_ONE: &str = "// test: one move at step 5\n\
fn on_step(ctx) {\n    if ctx.step == 5 {\n        ctx.to_ext_all(ctx.hbm_any_layer().first(1));\n    }\n}\n";

/// A CSV file as rows of named fields (lines starting with `#` skipped).
fn read_csv(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines().filter(|l| !l.starts_with('#'));
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(String::from))
                .collect()
        })
        .collect()
}

fn num(row: &BTreeMap<String, String>, col: &str) -> f64 {
    row[col]
        .parse()
        .unwrap_or_else(|_| panic!("{col} = {:?}", row[col]))
}

fn opt_num(row: &BTreeMap<String, String>, col: &str) -> Option<f64> {
    (!row[col].is_empty()).then(|| num(row, col))
}

/// Parses an SVG file back (it must be well-formed XML with an `<svg>` root) and returns the
/// trimmed contents of its `<text>` elements: the labels a reader sees.
fn parse_svg(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("{} is not valid XML: {e}", path.display()));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or("").trim().to_string())
        .collect()
}

fn has(labels: &[String], s: &str) -> bool {
    labels.iter().any(|l| l == s)
}

fn run_with_plots(dir: &Path, migration: &str) -> std::path::PathBuf {
    let plots = dir.join("plots");
    let csv = dir.join("run.csv");
    let o = kvtier()
        .args(["run", "scenarios/tiny.toml", "--placement", "hbm"])
        .args(["--migration", migration])
        .arg("--csv")
        .arg(&csv)
        .arg("--plot")
        .arg(&plots)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    plots
}

const KINDS: [&str; 6] = [
    "alpha-hbm",
    "step-time-hbm",
    "occupancy-hbm",
    "moved-hbm",
    "heatmap-hbm__none",
    "decode-time",
];

#[test]
fn every_chart_kind_of_a_run_is_written_as_valid_svg_png_and_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let plots = run_with_plots(dir.path(), "none");
    for kind in KINDS {
        let labels = parse_svg(&plots.join(format!("{kind}.svg")));
        assert!(labels.len() > 3, "{kind}: no labels");
        let png = fs::read(plots.join(format!("{kind}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{kind}.png");
        assert!(plots.join(format!("{kind}.csv")).exists(), "{kind}.csv");
    }
    // Legends name the scripts, axes carry units.
    let alpha = parse_svg(&plots.join("alpha-hbm.svg"));
    assert!(
        has(&alpha, "none") && has(&alpha, "alpha target 0.833"),
        "{alpha:?}"
    );
    assert!(has(&alpha, "decode step n (position generated)"));
    assert!(has(&alpha, "alpha, attention") && has(&alpha, "alpha, MLP"));
    let time = parse_svg(&plots.join("step-time-hbm.svg"));
    assert!(has(&time, "time per step (s)"), "tiny's steps take seconds");
    let occ = parse_svg(&plots.join("occupancy-hbm.svg"));
    assert!(has(&occ, "HBM KV in use (kB)") && has(&occ, "KV budget"));
    let bars = parse_svg(&plots.join("decode-time.svg"));
    assert!(
        has(&bars, "hbm + none") && has(&bars, "ideal bound 55"),
        "{bars:?}"
    );
    // Nothing else was written, and no temporary file was left behind.
    let mut names: Vec<String> = fs::read_dir(&plots)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), KINDS.len() * 3, "{names:?}");
}

#[test]
fn sidecars_hold_the_numbers_of_the_per_sublayer_csv() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("move_one.rhai");
    fs::write(&script, MOVE_ONE).unwrap();
    let plots = run_with_plots(dir.path(), script.to_str().unwrap());
    let records = read_csv(&dir.path().join("run.csv"));

    // Per step, from the SPEC 9 rows, summed in row order as the series does.
    #[derive(Default)]
    struct Step {
        time: f64,
        attn: (f64, u32),
        mlp: (f64, u32),
        to_hbm: f64,
        to_ext: f64,
    }
    let mut steps: BTreeMap<u64, Step> = BTreeMap::new();
    for r in &records {
        let s = steps.entry(num(r, "step") as u64).or_default();
        s.time += num(r, "time_s");
        s.to_hbm += num(r, "to_hbm");
        s.to_ext += num(r, "to_ext");
        if let Some(a) = opt_num(r, "alpha") {
            match r["sublayer"].as_str() {
                "attn" => s.attn = (s.attn.0 + a, s.attn.1 + 1),
                "mlp" => s.mlp = (s.mlp.0 + a, s.mlp.1 + 1),
                _ => {}
            }
        }
    }
    assert_eq!(steps.len(), 3);

    let time = read_csv(&plots.join("step-time-hbm.csv"));
    let alpha = read_csv(&plots.join("alpha-hbm.csv"));
    let moved = read_csv(&plots.join("moved-hbm.csv"));
    for (n, s) in &steps {
        let at = |rows: &[BTreeMap<String, String>], series: &str| {
            rows.iter()
                .find(|r| {
                    num(r, "step_first") as u64 == *n
                        && r.get("series").or(r.get("migration")).unwrap() == series
                })
                .cloned()
                .unwrap_or_else(|| panic!("no row for step {n} of {series}"))
        };
        assert_eq!(num(&at(&time, "move_one"), "time_per_step_s"), s.time);
        let a = at(&alpha, "move_one");
        assert_eq!(opt_num(&a, "alpha_attn"), Some(s.attn.0 / s.attn.1 as f64));
        assert_eq!(opt_num(&a, "alpha_mlp"), Some(s.mlp.0 / s.mlp.1 as f64));
        let m = at(&moved, "move_one");
        assert_eq!(num(&m, "to_hbm_bytes"), s.to_hbm);
        assert_eq!(num(&m, "to_ext_bytes"), s.to_ext);
    }

    // Heat map: every attention row's alpha at its (layer, step).
    let heat = read_csv(&plots.join("heatmap-hbm__move_one.csv"));
    for r in records.iter().filter(|r| r["sublayer"] == "attn") {
        let h = heat
            .iter()
            .find(|h| h["layer"] == r["layer"] && h["step_first"] == r["step"])
            .unwrap();
        assert_eq!(opt_num(h, "alpha_attn"), opt_num(r, "alpha"));
    }

    // Bars: the run's decode time is the sum of every row's time.
    let bars = read_csv(&plots.join("decode-time.csv"));
    let total: f64 = records.iter().map(|r| num(r, "time_s")).sum();
    assert_eq!(num(&bars[0], "decode_time_s"), total);
}

#[test]
fn sidecars_match_hand_arithmetic_on_tiny() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("move_one.rhai");
    fs::write(&script, MOVE_ONE).unwrap();
    let plots = run_with_plots(dir.path(), script.to_str().unwrap());
    let col = |file: &str, c: &str| -> Vec<f64> {
        read_csv(&plots.join(file))
            .iter()
            .filter(|r| r.get("series").or(r.get("migration")).unwrap() == "move_one")
            .map(|r| num(r, c))
            .collect()
    };
    // Step 4: per layer attn reads 200 + 400 and writes 100 (7 s), MLP 400 (4 s): 22 s.
    // Step 5: step phase moves position 0 of both layers to EXT, 200 B on HBM (2 s), LINK
    // (10 s) and EXTI (5 s): 10 s; then each attn reads 200 + 400 from HBM and position 0
    // from EXT (LINK 100 B, 5 s): 7 s; MLP 4 s: 10 + 2 x 11 = 32 s.
    // Step 6: (6,0) reads 200 + 500 from HBM, writes to HBM (8 s); (6,1) falls back and its
    // write plus the EXT read of position 0 take 200 B of LINK (10 s): 8 + 4 + 10 + 4 = 26 s.
    assert_eq!(
        col("step-time-hbm.csv", "time_per_step_s"),
        [22.0, 32.0, 26.0]
    );
    // HBM KV: 800 + 2 entries = 1000; -200 moved + 2 entries = 1000; + 1 entry = 1100 (full).
    assert_eq!(
        col("occupancy-hbm.csv", "hbm_kv_bytes"),
        [1000.0, 1000.0, 1100.0]
    );
    assert_eq!(col("moved-hbm.csv", "to_ext_bytes"), [0.0, 200.0, 0.0]);
    // alpha attention at step 5: 600 of 700 bytes from HBM on both layers.
    assert_eq!(col("alpha-hbm.csv", "alpha_attn")[1], 600.0 / 700.0);
    // The ideal bound per step: bytes read / (100 + 20) B/s. Step 4 reads 2 x (600 + 400).
    let bound: Vec<f64> = read_csv(&plots.join("step-time-hbm.csv"))
        .iter()
        .filter(|r| r["series"] == "ideal bound")
        .map(|r| num(r, "time_per_step_s"))
        .collect();
    assert_eq!(bound[0], 2.0 * (600.0 / 120.0 + 400.0 / 120.0));
    // The budget line is the KV budget: 2300 B - 1200 B of weights.
    let occ = read_csv(&plots.join("occupancy-hbm.csv"));
    let budget = occ.iter().find(|r| r["series"] == "KV budget").unwrap();
    assert_eq!(num(budget, "hbm_kv_bytes"), 1100.0);
}

#[test]
fn no_migration_run_matches_the_model_page_example() {
    // docs/model.md: placement hbm on tiny takes 22 + 23 + 26 = 71 s, ideal bound 55 s; (6,1)
    // reads 700 of 800 bytes from HBM.
    let dir = tempfile::tempdir().unwrap();
    let plots = run_with_plots(dir.path(), "none");
    let bars = read_csv(&plots.join("decode-time.csv"));
    assert_eq!(bars.len(), 1);
    assert_eq!(
        (
            num(&bars[0], "decode_time_s"),
            num(&bars[0], "ideal_bound_s")
        ),
        (71.0, 55.0)
    );
    let heat = read_csv(&plots.join("heatmap-hbm__none.csv"));
    let cell = heat
        .iter()
        .find(|r| r["layer"] == "1" && r["step_first"] == "6")
        .unwrap();
    assert_eq!(num(cell, "alpha_attn"), 700.0 / 800.0);
    let alpha = read_csv(&plots.join("alpha-hbm.csv"));
    // Mean over the two layers at step 6: (1 + 7/8) / 2.
    assert_eq!(num(&alpha[2], "alpha_attn"), (1.0 + 0.875) / 2.0);
}

#[test]
fn compare_plots_one_chart_per_placement_with_one_line_per_migration() {
    let dir = tempfile::tempdir().unwrap();
    let plots = dir.path().join("plots");
    let o = kvtier()
        .args([
            "compare",
            "scenarios/tiny.toml",
            "--placement",
            "hbm",
            "ext",
        ])
        .args(["--migration", "none", "policies/migration/alpha.rhai"])
        .arg("--plot")
        .arg(&plots)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    for p in ["hbm", "ext"] {
        for kind in ["alpha", "step-time", "occupancy", "moved"] {
            let labels = parse_svg(&plots.join(format!("{kind}-{p}.svg")));
            assert!(
                has(&labels, "none") && has(&labels, "alpha"),
                "{kind}-{p}: legend names both migrations"
            );
        }
        let alpha = read_csv(&plots.join(format!("alpha-{p}.csv")));
        assert_eq!(alpha.len(), 2 * 3, "two migrations x three steps");
    }
    // The heat map is the best pair's (hbm + none: 71 s, the fastest of the four).
    parse_svg(&plots.join("heatmap-hbm__none.svg"));
    let bars = read_csv(&plots.join("decode-time.csv"));
    assert_eq!(bars.len(), 4);
    assert_eq!(
        (bars[0]["placement"].as_str(), bars[0]["migration"].as_str()),
        ("hbm", "none")
    );
    let times: Vec<f64> = bars.iter().map(|r| num(r, "decode_time_s")).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "best first: {times:?}"
    );
}

#[test]
fn compare_series_add_up_to_each_pairs_summary() {
    let sc = kvtier::scenario::Scenario::load(&common::repo().join("scenarios/tiny.toml")).unwrap();
    let p = [
        kvtier::policy::PolicyRef::Native("hbm".into()),
        kvtier::policy::PolicyRef::Native("ext".into()),
    ];
    let m = kvtier::policy::expand(
        common::repo()
            .join("policies/migration/alpha.rhai")
            .to_str()
            .unwrap(),
        kvtier::policy::Kind::Migration,
    )
    .unwrap();
    let (c, pairs) =
        kvtier::compare::compare_with_series(&sc, &kvtier::compare::cross(&p, &m), &[], None)
            .unwrap();
    assert_eq!(pairs.len(), 2);
    for ps in &pairs {
        let row = c
            .rows
            .iter()
            .find(|r| r.placement == ps.placement && r.migration == ps.migration)
            .unwrap();
        let kvtier::compare::Outcome::Summary(s) = &row.outcome else {
            panic!("{} failed", ps.placement)
        };
        let sum: f64 = ps.series.steps.iter().map(|p| p.time_s).sum();
        assert!((sum - s.decode_time_s).abs() < 1e-9);
        let moved: u64 = ps.series.steps.iter().map(|p| p.to_ext).sum();
        assert_eq!(moved, s.moved_to_ext_bytes);
        // After each step, HBM KV in use is within the budget and at most the run's peak.
        assert!(ps
            .series
            .occupancy()
            .iter()
            .all(|&b| b <= s.peak_hbm_kv_bytes));
        assert!(s.peak_hbm_kv_bytes <= s.kv_budget_bytes);
    }
}

#[test]
fn plot_into_an_existing_file_fails_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("plots");
    fs::write(&not_a_dir, "x").unwrap();
    let csv = dir.path().join("run.csv");
    let o = kvtier()
        .args(["run", "scenarios/tiny.toml", "--csv"])
        .arg(&csv)
        .arg("--plot")
        .arg(&not_a_dir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("--plot") && err.contains("not a folder"),
        "{err}"
    );
    assert!(!csv.exists(), "no half-done outputs");
}

fn report(dir: &Path) -> (std::path::PathBuf, String) {
    let out = dir.join("report.html");
    let o = kvtier()
        .args(["report", "scenarios/tiny.toml", "--placement", "hbm", "ext"])
        .args(["--migration", "none", "policies/migration/alpha.rhai", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let html = fs::read_to_string(&out).unwrap();
    (out, html)
}

#[test]
fn report_is_one_self_contained_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, html) = report(dir.path());
    // Nothing to fetch: no links, scripts, style sheets or images from elsewhere.
    let lower = html.to_lowercase();
    for bad in [
        "http://", "https://", "<script", "<link", "<img", "src=", "@import", "url(",
    ] {
        assert!(!lower.contains(bad), "the report contains {bad:?}");
    }
    assert!(html.starts_with("<!DOCTYPE html>"));
    // Contents, then the summary (best pairs, the bounds in words, the decode-time chart), the
    // comparison table, the charts grouped by metric, the scenario's sizes.
    let at = |s: &str| html.find(s).unwrap_or_else(|| panic!("{s:?} missing"));
    let order = [
        "<nav id=\"contents\">",
        "<h2 id=\"summary\">",
        "<figure id=\"decode-time\">",
        "<table id=\"comparison-table\">",
        "<h3 id=\"group-alpha\">Alpha per decode step</h3>",
        "<h3 id=\"group-moved\">Bytes moved per step</h3>",
        "<table id=\"scenario-table\">",
    ];
    for w in order.windows(2) {
        assert!(at(w[0]) < at(w[1]), "{} is not before {}", w[0], w[1]);
    }
    for link in [
        "#summary",
        "#comparison",
        "#group-alpha",
        "#group-step-time",
        "#scenario",
    ] {
        assert!(
            html.contains(&format!("<a href=\"{link}\">")),
            "no link to {link}"
        );
    }
    // tiny: hbm + none (71 s) is the best pair; the placement bound is 59 s (71 / 59 = 1.2034).
    assert!(
        html.contains("<li><b>hbm + none</b>: 71.000000 s, 1.2034x the placement bound</li>"),
        "best pairs"
    );
    assert!(html.contains("KV entry k (one position, one layer, whole batch)"));
    // Enums as a scenario file writes them, not as Rust names them.
    assert!(
        html.contains("shared / fetch / exclusive / max / sync"),
        "enum names"
    );
    assert!(html.contains("<td>hbm</td><td>none</td><td class=\"num\">71.000000</td>"));
    assert!(html.contains("<td>ext</td><td>alpha</td>"));
    assert!(html.matches("<svg").count() >= 10, "inline charts");
    assert!(html.contains("<figure id=\"decode-time\">"));
    // The same inputs give the same file.
    let dir2 = tempfile::tempdir().unwrap();
    assert_eq!(report(dir2.path()).1, html);
}

#[test]
fn report_with_a_bad_scenario_exits_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.html");
    let o = kvtier()
        .args(["report", "no-such-scenario.toml", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no-such-scenario.toml"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
}

#[test]
fn report_of_a_comparison_with_a_failing_pair_is_written_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.rhai");
    fs::write(&broken, "fn on_step(ctx) { throw \"boom\"; }\n").unwrap();
    let out = dir.path().join("report.html");
    let o = kvtier()
        .args([
            "report",
            "scenarios/tiny.toml",
            "--placement",
            "hbm",
            "--migration",
        ])
        .arg("none")
        .arg(&broken)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("1 of 2 pairs failed"), "{}", stderr(&o));
    // The pair that ran is charted; the failure is listed with its message.
    let html = fs::read_to_string(&out).unwrap();
    assert!(html.contains("<td>hbm</td><td>none</td>"));
    assert!(html.contains("Failed pairs:") && html.contains("boom"));
    assert!(html.contains("<figure id=\"alpha-hbm\">"));
}

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|c| {
        Process::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

#[test]
fn report_loads_in_headless_chromium_without_errors() {
    let Some(browser) = chromium() else {
        // Under CI the browser is a dependency the test needs: missing, it fails.
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is not installed; .ci/run installs it (apt-get install -y chromium)"
        );
        eprintln!(
            "SKIPPED report_loads_in_headless_chromium_without_errors: chromium is not \
             installed (apt-get install -y chromium; .ci/run installs it)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = report(dir.path());
    let profile = tempfile::tempdir().unwrap();
    // `timeout` keeps a browser that hangs from hanging the suite.
    let o = Process::new("timeout")
        .arg("120")
        .arg(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", out.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&o.stdout);
    let log = stderr(&o);
    assert!(o.status.success(), "chromium failed: {log}");
    // The page was parsed and laid out: the table and the inline charts are in its DOM.
    assert!(dom.contains("<table id=\"comparison-table\">"), "{dom}");
    assert!(dom.contains("<svg"), "{dom}");
    // No console messages (errors, failed loads) from the page.
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console output: {console:?}");
}

#[test]
fn sweep_plot_draws_the_metric_against_each_key_with_the_runs_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("plots");
    let json = dir.path().join("r.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kvtier"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "sweep",
            "scenarios/tiny.toml",
            "--vary",
            "initial.weights_on_hbm=0.5,1.0",
        ])
        .args([
            "--vary",
            "memory.hierarchy=exclusive,inclusive",
            "--placement",
            "hbm",
            "--migration",
            "none",
        ])
        .args(["--format", "json", "-o"])
        .arg(&json)
        .arg("--plot")
        .arg(&plot)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    for key in ["initial.weights_on_hbm", "memory.hierarchy"] {
        let svg =
            std::fs::read_to_string(plot.join(format!("sweep-decode_time_s-{key}.svg"))).unwrap();
        roxmltree::Document::parse(&svg).expect("valid SVG");
        assert!(plot.join(format!("sweep-decode_time_s-{key}.png")).exists());
        let csv =
            std::fs::read_to_string(plot.join(format!("sweep-decode_time_s-{key}.csv"))).unwrap();
        // One sidecar row per run, each with that run's decode time.
        assert_eq!(csv.lines().count(), 1 + 4, "{csv}");
        for row in r.as_array().unwrap() {
            let t = row["decode_time_s"].as_f64().unwrap();
            assert!(
                csv.lines().any(|l| l.ends_with(&format!(",{t}"))),
                "{t} missing from {csv}"
            );
        }
    }
    // tiny with all weights on HBM, exclusive: the 71 s of docs/model.md.
    let csv = std::fs::read_to_string(plot.join("sweep-decode_time_s-initial.weights_on_hbm.csv"))
        .unwrap();
    assert!(
        csv.contains("hbm + none (memory.hierarchy=exclusive),1.0,71"),
        "{csv}"
    );
}

/// Width and height of a PNG file, from its IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let b = fs::read(path).unwrap();
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    (be(16), be(20))
}

#[test]
fn every_png_is_print_resolution_and_every_chart_names_its_scenario_and_mark() {
    let dir = tempfile::tempdir().unwrap();
    // tiny with a KV budget 400 B over its HBM: idealized.
    let text = fs::read_to_string("scenarios/tiny.toml").unwrap();
    let sc = dir.path().join("ideal.toml");
    fs::write(
        &sc,
        text.replace("[hbm]\n", "[hbm]\nkv_budget = \"1500 B\"\n"),
    )
    .unwrap();
    let plot = dir.path().join("plots");
    let o = kvtier()
        .arg("compare")
        .arg(&sc)
        .args([
            "--placement",
            "prefer_hbm",
            "--migration",
            "none",
            "alpha",
            "--plot",
        ])
        .arg(&plot)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let mut pngs = 0;
    for e in fs::read_dir(&plot).unwrap() {
        let p = e.unwrap().path();
        match p.extension().and_then(|x| x.to_str()) {
            Some("png") => {
                pngs += 1;
                let (w, _) = png_size(&p);
                assert!(w >= 1600, "{}: {w} px wide", p.display());
            }
            Some("svg") => {
                let labels = parse_svg(&p);
                assert!(
                    has(
                        &labels,
                        "scenario tiny, idealized (HBM over-subscribed by 0.0000004 GB)"
                    ),
                    "{}: {labels:?}",
                    p.display()
                );
            }
            _ => {}
        }
    }
    assert!(pngs >= 5, "{pngs}");
}

#[test]
fn a_sweep_chart_has_a_tick_per_swept_value() {
    let dir = tempfile::tempdir().unwrap();
    let plot = dir.path().join("plots");
    let o = kvtier()
        .args([
            "sweep",
            "scenarios/tiny.toml",
            "--vary",
            "initial.weights_on_hbm=0.5..1.0:0.1",
        ])
        .args(["--migration", "none", "--plot"])
        .arg(&plot)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let labels = parse_svg(&plot.join("sweep-decode_time_s-initial.weights_on_hbm.svg"));
    // Six swept values, six ticks (before, only the two ends were labelled).
    for t in ["0.5", "0.6", "0.7", "0.8", "0.9", "1"] {
        assert!(has(&labels, t), "no tick {t}: {labels:?}");
    }
}
