//! Hostile and careless input through the real binary (issue 12): each case once panicked, hung,
//! grew without bound, lost work or said something unhelpful. Now: a clear error naming the
//! file and the line or field, exit code 2, nothing left behind, and the rest of a comparison
//! going on.

mod common;

use std::fs;
use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use common::repo;

fn kvtier() -> Command {
    Command::cargo_bin("kvtier").unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn tiny() -> String {
    repo().join("scenarios/tiny.toml").display().to_string()
}

/// Asserts a clean failure: exit code 2, no panic, every `want` in stderr.
fn fails_with(o: &Output, want: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    for w in want {
        assert!(err.contains(w), "expected {w:?} in: {err}");
    }
}

// ---- 1. positions past 65,535 and panics in one pair

/// A placement script whose `fn place` is on line `line`.
fn script_at_line(line: usize) -> String {
    let mut s = "// filler\n".repeat(line - 1);
    s.push_str("fn place(ctx) { \"hbm\" }\n");
    s
}

#[test]
fn a_script_too_long_for_positions_is_refused_with_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let s = write(dir.path(), "long.rhai", &script_at_line(65_536));
    let o = kvtier().args(["check", &s]).output().unwrap();
    fails_with(&o, &["long.rhai", "65536 lines", "at most 65535 lines"]);
    let o = kvtier()
        .args(["run", &tiny(), "--placement", &s])
        .output()
        .unwrap();
    fails_with(&o, &["long.rhai", "at most 65535 lines"]);
}

#[test]
fn one_bad_script_is_one_error_row_and_the_other_pairs_still_run() {
    let dir = tempfile::tempdir().unwrap();
    let long = write(dir.path(), "long.rhai", &script_at_line(65_536));
    let o = kvtier()
        .args([
            "compare",
            &tiny(),
            "--placement",
            &long,
            "hbm",
            "--migration",
            "none",
        ])
        .output()
        .unwrap();
    // A failed pair makes the exit code 2; the table still has the other pair.
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("│ hbm"), "{out}");
    assert!(
        out.contains("long + none: ") && out.contains("at most 65535 lines"),
        "{out}"
    );
}

#[test]
fn an_error_is_located_at_the_real_hook_not_a_commented_out_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = write(
        dir.path(),
        "loop.rhai",
        "/* an old version:\nfn on_layer(ctx) { }\n*/\nlet s = \"fn on_layer(ctx)\";\n\nfn on_layer(ctx) {\n    loop { }\n}\n",
    );
    let o = kvtier()
        .args(["run", &tiny(), "--migration", &s])
        .output()
        .unwrap();
    // The operation limit carries no position: it is reported at the hook, line 6.
    fails_with(&o, &["loop.rhai:6:1: in on_layer", "operations"]);
}

#[test]
fn a_huge_line_is_not_echoed_whole_into_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let big = "x".repeat(60_000);
    let s = write(
        dir.path(),
        "big.rhai",
        &format!("fn place(ctx) {{ \"{big}\" }}\n"),
    );
    let o = kvtier()
        .args(["run", &tiny(), "--placement", &s])
        .output()
        .unwrap();
    fails_with(&o, &["big.rhai:1", "place must return"]);
    assert!(
        stderr(&o).len() < 5_000,
        "{} bytes of stderr",
        stderr(&o).len()
    );
}

// ---- 6. determinism: no clock

#[test]
fn scripts_cannot_read_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let s = write(
        dir.path(),
        "clock.rhai",
        "fn place(ctx) {\n    let t = timestamp();\n    if t.elapsed > 0.0 { \"hbm\" } else { \"ext\" }\n}\n",
    );
    let o = kvtier()
        .args(["run", &tiny(), "--placement", &s])
        .output()
        .unwrap();
    fails_with(&o, &["clock.rhai:2:", "timestamp"]);
}

// ---- 7. overflow and absurd quantities

fn tiny_with(from: &str, to: &str) -> String {
    let text = fs::read_to_string(tiny()).unwrap();
    assert!(text.contains(from), "tiny.toml has no {from:?}");
    text.replace(from, to)
}

fn run_scenario(text: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let s = write(dir.path(), "s.toml", text);
    kvtier().args(["run", &s]).output().unwrap()
}

#[test]
fn kv_sizes_that_overflow_64_bits_are_refused() {
    let o = run_scenario(&tiny_with(
        "kv_bytes = \"100 B\"",
        "kv_heads = 1099511627776\nhead_dim = 1099511627776",
    ));
    fails_with(
        &o,
        &[
            "s.toml",
            "model.kv_heads x model.head_dim",
            "overflows 64-bit",
        ],
    );
    // Fits a u64 per entry, but not summed over a run.
    let o = run_scenario(&tiny_with("kv_bytes = \"100 B\"", "kv_bytes = \"9e17 B\""));
    fails_with(
        &o,
        &[
            "s.toml",
            "more than the 4611686018427387904 bytes a run can count",
        ],
    );
}

#[test]
fn absurd_sizes_and_bandwidths_are_refused_with_the_valid_range() {
    let o = run_scenario(&tiny_with("capacity = \"2300 B\"", "capacity = 1e30"));
    fails_with(&o, &["s.toml:", "hbm.capacity", "at most 1e18 bytes"]);
    let o = run_scenario(&tiny_with("bandwidth = \"100 B/s\"", "bandwidth = 1e-300"));
    fails_with(&o, &["field `hbm.bandwidth`", "from 1e-6 B/s to 1e18 B/s"]);
    // An exponent is a number, not a unit.
    let o = run_scenario(&tiny_with(
        "capacity = \"2300 B\"",
        "capacity = \"2.3e3 B\"",
    ));
    assert!(o.status.success(), "{}", stderr(&o));
}

// ---- 8. defaults adapt to the model

#[test]
fn a_one_layer_model_runs_with_the_default_dense_layers() {
    // heavy_hitter's default dense_layers is 2; with one layer it means "all layers".
    let text = tiny_with("layers = 2", "layers = 1")
        .replace("source = \"none\"", "source = \"heavy_hitter\"\nrate = 0.3");
    let o = run_scenario(&text);
    assert!(o.status.success(), "{}", stderr(&o));
    // Given explicitly, a count above the model's layers is still an error.
    let o = run_scenario(&text.replace("rate = 0.3", "rate = 0.3\ndense_layers = 2"));
    fails_with(&o, &["field `skip.dense_layers` = 2", "model.layers (1)"]);
}
