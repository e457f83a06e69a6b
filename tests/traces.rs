//! Skip traces: generators are deterministic, text round-trips exactly, and the generated skip
//! level is the requested one.

mod common;

use assert_cmd::Command;
use common::*;
use kvtier::scenario::{LayerRates, Scenario, SkipSource};
use kvtier::trace::{self, stats, text};

fn mid(source: SkipSource, rate: f64) -> Scenario {
    let mut f = tiny_file();
    f.model.layers = 8;
    f.model.params = 8.0 * 300.0;
    f.workload.prefill = 3000;
    f.workload.decode = 120;
    f.hbm.capacity = kvtier::scenario::ByteSize(10_000_000);
    f.skip.source = source;
    f.skip.rate = rate;
    f.seed = 11;
    build(f)
}

#[test]
fn generate_write_read_gives_identical_sets() {
    for source in [SkipSource::HeavyHitter, SkipSource::Uniform] {
        let mut sc = mid(source, 0.4);
        sc.file.skip.layer_skip_rate = LayerRates::Mean(0.1);
        sc.file.skip.mlp_skip_rate = LayerRates::Mean(0.1);
        let sc = build(sc.file);
        let generated = collect(trace::open(&sc).unwrap().as_mut());
        assert!(
            generated.iter().any(|s| s.layers.iter().any(|l| l.layer)),
            "some layer skips"
        );
        assert!(
            generated.iter().any(|s| s.layers.iter().any(|l| l.mlp)),
            "some MLP skips"
        );
        let mut buf = Vec::new();
        text::write_trace(&mut buf, trace::open(&sc).unwrap().as_mut(), "test").unwrap();
        let read = collect(text_trace(std::str::from_utf8(&buf).unwrap()).as_mut());
        assert_eq!(generated, read, "{source:?}");
    }
}

#[test]
fn generators_are_deterministic_and_seeded() {
    let a = collect(
        trace::open(&mid(SkipSource::HeavyHitter, 0.3))
            .unwrap()
            .as_mut(),
    );
    let b = collect(
        trace::open(&mid(SkipSource::HeavyHitter, 0.3))
            .unwrap()
            .as_mut(),
    );
    assert_eq!(a, b);
    let mut other = mid(SkipSource::HeavyHitter, 0.3).file;
    other.seed = 12;
    let c = collect(trace::open(&build(other)).unwrap().as_mut());
    assert_ne!(a, c);
}

#[test]
fn requested_skip_level_is_met_within_two_points() {
    for source in [SkipSource::HeavyHitter, SkipSource::Uniform] {
        for rate in [0.3, 0.6] {
            let sc = mid(source, rate);
            let st = stats::compute(trace::open(&sc).unwrap().as_mut(), 4, 64).unwrap();
            assert!(
                (st.all.skipped_share - rate).abs() <= 0.02,
                "{source:?} {rate}: {}",
                st.all.skipped_share
            );
        }
    }
}

#[test]
fn heavy_hitter_has_dense_early_layers_churn_and_depth_growth() {
    let sc = mid(SkipSource::HeavyHitter, 0.3);
    let st = stats::compute(trace::open(&sc).unwrap().as_mut(), 4, 64).unwrap();
    // Layers 0-1 dense by default.
    assert_eq!(st.layers[0].skipped_share, 0.0);
    assert_eq!(st.layers[1].skipped_share, 0.0);
    // Skipped share grows with depth.
    assert!(st.layers[7].skipped_share > st.layers[2].skipped_share + 0.1);
    // Read sets churn but mostly persist (70% of the paged read set kept per step).
    let j = st.layers[5].jaccard;
    assert!(j > 0.4 && j < 0.95, "jaccard {j}");
    // Sinks and the recent window are always read: at a skipped share, each read set holds
    // all 4 sinks and all 64 recent positions.
    assert!(st.layers[7].sink_share > 0.0 && st.layers[7].recent_share > 0.0);
}

#[test]
fn trace_gen_and_stats_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let scen = dir.path().join("mid.toml");
    let text = std::fs::read_to_string(repo().join("scenarios/tiny.toml"))
        .unwrap()
        .replace("prefill = 4", "prefill = 2000")
        .replace("decode = 3", "decode = 60")
        .replace("capacity = \"2300 B\"", "capacity = \"10 MB\"")
        .replace(
            "source = \"none\"",
            "source = \"heavy_hitter\"\nrate = 0.3\ndense_layers = 0",
        );
    std::fs::write(&scen, text).unwrap();
    let out = dir.path().join("t.kvtrace");
    Command::cargo_bin("kvtier")
        .unwrap()
        .args(["trace", "gen"])
        .arg(&scen)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    let head = std::fs::read_to_string(&out).unwrap();
    assert!(head.starts_with("kvtrace 1 prefill=2000 decode=60 layers=2\n"));
    let json = Command::cargo_bin("kvtier")
        .unwrap()
        .args(["trace", "stats", "--format", "json"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(json.status.success());
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let share = v["all"]["skipped_share"].as_f64().unwrap();
    assert!((share - 0.3).abs() <= 0.02, "{share}");
    // The same numbers from the scenario directly.
    let json2 = Command::cargo_bin("kvtier")
        .unwrap()
        .args(["trace", "stats", "--format", "json"])
        .arg(&scen)
        .output()
        .unwrap();
    assert_eq!(json.stdout, json2.stdout);
}

#[test]
fn trace_file_with_other_dimensions_is_rejected_with_both() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("t.kvtrace"),
        "kvtrace 1 prefill=4 decode=5 layers=2\n",
    )
    .unwrap();
    let mut f = tiny_file();
    f.skip.source = SkipSource::File;
    f.skip.file = Some("t.kvtrace".into());
    let sc = Scenario::from_file(f, Some(&dir.path().join("s.toml"))).unwrap();
    let e = trace::open(&sc).err().unwrap().to_string();
    assert!(
        e.contains("prefill=4 decode=5 layers=2") && e.contains("prefill=4 decode=3 layers=2"),
        "{e}"
    );
}

/// A heavy-hitter scenario with early releases from the recent window.
fn young(young_skip: f64, window: u64) -> Scenario {
    let text = format!(
        r#"
name = "young"
seed = 9
[model]
layers = 3
params = 900
dtype_bytes = 2
kv_bytes = "100 B"
[workload]
prefill = 40
decode = 30
[hbm]
capacity = "100000 B"
bandwidth = "100 B/s"
[ext]
link_bandwidth = "20 B/s"
internal_bandwidth = "40 B/s"
[skip]
source = "heavy_hitter"
rate = 0.3
sinks = 1
recent = 8
page = 1
dense_layers = 1
young_skip = {young_skip}
young_window = {window}
"#
    );
    Scenario::from_toml(&text, None).unwrap()
}

#[test]
fn young_skip_releases_new_entries_early_and_only_in_sparse_layers() {
    // young_skip = 1, window 1: every entry of a sparse layer is released at age 1, so at step
    // n the entries written at n-1 .. n-7 (younger than the 8-position recent window, all
    // decode entries here) are skipped; layer 0 is dense and skips nothing.
    let sc = young(1.0, 1);
    let steps = collect(trace::open(&sc).unwrap().as_mut());
    for s in &steps[8..] {
        let n = s.step;
        assert_eq!(s.layers[0].token_count, 0);
        for l in 1..3 {
            for p in n - 7..n {
                assert!(
                    s.layers[l].tokens.contains(p),
                    "step {n} layer {l} reads {p}"
                );
            }
        }
    }
    // The statistic sees it: every decode entry of layers 1, 2 is skipped within 16 steps,
    // none of layer 0's.
    let st = stats::compute(trace::open(&sc).unwrap().as_mut(), 1, 8).unwrap();
    assert_eq!(st.layers[0].young_skip_share, 0.0);
    assert_eq!(st.layers[1].young_skip_share, 1.0);
    // With young_skip = 0 the same positions are read at age 1 (the recent window).
    let plain = young(0.0, 1);
    let steps = collect(trace::open(&plain).unwrap().as_mut());
    assert!(steps
        .iter()
        .all(|s| s.layers.iter().all(|l| !l.tokens.contains(s.step - 1))));
}
