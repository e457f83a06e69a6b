//! Bad input through the real binary: one clear error naming the file and the line or field,
//! exit code 2, no panic, and no output file left behind.

mod common;

use std::path::Path;

use assert_cmd::Command;
use common::repo;

fn tiny_text() -> String {
    std::fs::read_to_string(repo().join("scenarios/tiny.toml")).unwrap()
}

/// Runs `kvtier run SCENARIO --csv out.csv` in a temp dir holding `files`; expects exit 2 with
/// every string of `want` in stderr and nothing written.
fn fails(files: &[(&str, &[u8])], want: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    let out = Command::cargo_bin("kvtier")
        .unwrap()
        .current_dir(dir.path())
        .args(["run", "s.toml", "--csv", "out.csv"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for w in want {
        assert!(err.contains(w), "expected {w:?} in: {err}");
    }
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error")).count(),
        1,
        "one error: {err}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !files.iter().any(|(f, _)| f == n))
        .collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

fn scenario_fails(text: &str, want: &[&str]) {
    fails(&[("s.toml", text.as_bytes())], want);
}

#[test]
fn unknown_field_is_named_with_its_line() {
    let text = tiny_text().replace("decode = 3", "decode = 3\nbatchsize = 4");
    scenario_fails(
        &text,
        &["s.toml:18:1:", "unknown field `batchsize`", "batch"],
    );
}

#[test]
fn negative_bandwidth_names_the_field() {
    let text = tiny_text().replace("bandwidth = \"100 B/s\"", "bandwidth = -5");
    scenario_fails(&text, &["s.toml", "`hbm.bandwidth`", "-5 GB/s", "> 0"]);
}

#[test]
fn fraction_above_one_names_the_field() {
    let text = tiny_text() + "\n[initial]\nweights_on_hbm = 1.5\n";
    scenario_fails(
        &text,
        &["s.toml", "`initial.weights_on_hbm` = 1.5", "[0, 1]"],
    );
}

#[test]
fn zero_layers_names_the_field() {
    let text = tiny_text().replace("layers = 2", "layers = 0");
    scenario_fails(&text, &["s.toml", "`model.layers` = 0"]);
}

#[test]
fn prefill_kv_over_the_budget_names_the_numbers() {
    let text = tiny_text().replace("capacity = \"2300 B\"", "capacity = \"1900 B\"");
    // Budget 1900 - 1200 = 700 B < 800 B of prefill KV on HBM.
    scenario_fails(
        &text,
        &["s.toml", "800 bytes", "700 bytes", "prefill_kv_on_hbm"],
    );
}

#[test]
fn toml_syntax_error_has_line_and_column() {
    let text = tiny_text().replace("decode = 3", "decode = = 3");
    scenario_fails(&text, &["s.toml:17:10:", "17 | decode = = 3"]);
}

#[test]
fn missing_scenario_file_is_named() {
    fails(&[], &["s.toml"]);
}

fn with_trace(trace: &[u8], want: &[&str]) {
    let text = tiny_text().replace(
        "source = \"none\"",
        "source = \"file\"\nfile = \"t.kvtrace\"",
    );
    fails(&[("s.toml", text.as_bytes()), ("t.kvtrace", trace)], want);
}

const HEADER: &str = "kvtrace 1 prefill=4 decode=3 layers=2\n";

#[test]
fn trace_with_wrong_header_is_rejected() {
    with_trace(
        b"kvtrace 1 prefill=4 decode=9 layers=2\n",
        &["t.kvtrace", "decode=9", "decode=3"],
    );
    with_trace(
        b"kvtrace 7 prefill=4 decode=3 layers=2\n",
        &["t.kvtrace:1:", "version"],
    );
}

#[test]
fn trace_position_at_or_after_the_step_is_rejected() {
    // Error on the last step: the run has started, and still no CSV is left.
    with_trace(
        format!("{HEADER}6 1 2-7\n").as_bytes(),
        &["t.kvtrace:2:", "position 6", "step 6"],
    );
}

#[test]
fn trace_overlapping_or_unsorted_ranges_are_rejected() {
    with_trace(
        format!("{HEADER}5 0 0-3 2-4\n").as_bytes(),
        &["t.kvtrace:2:", "overlaps"],
    );
    with_trace(
        format!("{HEADER}5 0 3-4 0-1\n").as_bytes(),
        &["t.kvtrace:2:", "sorted"],
    );
    with_trace(
        format!("{HEADER}5 1 0-1\n5 0 0-1\n").as_bytes(),
        &["t.kvtrace:3:", "step-major"],
    );
}

#[test]
fn trace_missing_line_ending_is_rejected() {
    with_trace(
        format!("{HEADER}4 0 0-1\n5 0 0-1").as_bytes(),
        &["t.kvtrace:3:", "no line ending"],
    );
}

#[test]
fn trace_garbage_bytes_are_rejected() {
    let mut bytes = HEADER.as_bytes().to_vec();
    bytes.extend_from_slice(b"4 0 \x00\xff\xfe\x80\n");
    with_trace(&bytes, &["t.kvtrace:2:", "0xff"]);
    with_trace(b"\x7fELF\x02\x01\x01\x00\n", &["t.kvtrace:1:", "not"]);
}

#[test]
fn a_good_run_writes_the_csv_with_spec_columns() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("out.csv");
    Command::cargo_bin("kvtier")
        .unwrap()
        .arg("run")
        .arg(repo().join("scenarios/tiny.toml"))
        .arg("--csv")
        .arg(&csv)
        .assert()
        .success();
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap(), kvtier::results::CSV_HEADER);
    // First row: step 4, layer 0 attention: 200 + 400 read from HBM, 100 written; 7 s. SPEC 9b
    // appends link_read, link_write, flops (empty: compute not modelled) and copy_bytes.
    assert_eq!(
        lines.next().unwrap(),
        "4,0,attn,600,0,700,0,0,0,0,7,1,0,0,,0"
    );
    // 3 steps x 2 layers x 2 sublayers.
    assert_eq!(text.lines().count(), 1 + 12);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&csv).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode, 0o644,
            "a result file is not private like its temporary file"
        );
    }
    assert!(Path::new(&csv).exists());
}

// ---- v2 fields (SPEC 10-12)

#[test]
fn a_per_direction_link_bandwidth_must_be_positive() {
    let add = |extra: &str| {
        tiny_text().replace(
            "internal_bandwidth",
            &format!("{extra}\ninternal_bandwidth"),
        )
    };
    scenario_fails(
        &add("link_read_bandwidth = -5"),
        &[
            "field `ext.link_read_bandwidth`",
            "-5 GB/s",
            "must be a bandwidth > 0",
        ],
    );
    scenario_fails(
        &add("link_write_bandwidth = \"0 B/s\""),
        &[
            "field `ext.link_write_bandwidth`",
            "must be a bandwidth > 0",
        ],
    );
    scenario_fails(
        &tiny_text().replace("[skip]", "[memory]\ncopy_read_bandwidth = 0\n[skip]"),
        &[
            "field `memory.copy_read_bandwidth`",
            "must be a bandwidth > 0",
        ],
    );
}

#[test]
fn a_link_without_both_directions_names_the_missing_one() {
    let text = tiny_text().replace(
        "link_bandwidth = \"20 B/s\"",
        "link_read_bandwidth = \"20 B/s\"",
    );
    scenario_fails(
        &text,
        &[
            "field `ext.link_bandwidth`",
            "missing: link_write_bandwidth",
        ],
    );
}

#[test]
fn gpu_flops_with_only_kv_bytes_names_both() {
    let text = tiny_text().replace("[skip]", "[gpu]\nflops = \"989 TFLOP/s\"\n[skip]");
    scenario_fails(
        &text,
        &[
            "field `gpu.flops`",
            "`model.q_heads`",
            "`model.head_dim`",
            "`model.kv_bytes`",
        ],
    );
}

#[test]
fn zero_query_heads_are_refused() {
    let text = tiny_text().replace(
        "kv_bytes = \"100 B\"",
        "kv_bytes = \"100 B\"\nq_heads = 0\nhead_dim = 4",
    );
    scenario_fails(&text, &["field `model.q_heads` = 0", "must be >= 1"]);
}

#[test]
fn an_unknown_migration_mode_names_the_field_and_the_valid_ones() {
    let text = tiny_text().replace("[skip]", "[memory]\nmigration = \"later\"\n[skip]");
    scenario_fails(
        &text,
        &[
            "s.toml:28:13:",
            "field `memory.migration`",
            "`sync` or `async`",
        ],
    );
}

#[test]
fn bad_compute_units_and_overheads_are_refused() {
    let text = tiny_text().replace("[skip]", "[gpu]\nflops = \"3 TFLOPS\"\n[skip]");
    scenario_fails(&text, &["field `gpu.flops`", "TFLOP/s"]);
    let text = tiny_text().replace("[skip]", "[gpu]\nsublayer_overhead = -1\n[skip]");
    scenario_fails(
        &text,
        &["field `gpu.sublayer_overhead`", "must be a duration >= 0"],
    );
}
