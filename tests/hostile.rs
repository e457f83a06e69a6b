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

// ---- 3. reads that never end

/// tiny.toml replaying the trace at `file` (a path as written in the scenario).
fn replaying(file: &str) -> String {
    tiny_with(
        "source = \"none\"",
        &format!("source = \"file\"\nfile = {file:?}"),
    )
}

fn run_bounded(args: &[&str]) -> Output {
    kvtier()
        .args(args)
        .timeout(std::time::Duration::from_secs(20))
        .output()
        .unwrap()
}

#[test]
fn a_trace_that_is_not_a_regular_file_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    // A device that never ends a line.
    let s = write(dir.path(), "zero.toml", &replaying("/dev/zero"));
    fails_with(
        &run_bounded(&["run", &s]),
        &["field `skip.file`", "/dev/zero", "not a regular file"],
    );
    // A FIFO nobody writes to: opening it would block forever.
    let fifo = dir.path().join("pipe.kvtrace");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let s = write(dir.path(), "fifo.toml", &replaying("pipe.kvtrace"));
    fails_with(
        &run_bounded(&["run", &s]),
        &["pipe.kvtrace", "not a regular file"],
    );
    fails_with(
        &run_bounded(&["trace", "stats", fifo.to_str().unwrap()]),
        &["pipe.kvtrace", "not a regular file"],
    );
    // A directory, and an empty path.
    let s = write(dir.path(), "dir.toml", &replaying("."));
    fails_with(
        &run_bounded(&["run", &s]),
        &["field `skip.file`", "is a directory"],
    );
    let s = write(dir.path(), "empty.toml", &replaying(""));
    fails_with(
        &run_bounded(&["run", &s]),
        &["field `skip.file`", "is empty"],
    );
}

#[test]
fn a_text_trace_line_without_end_is_refused_at_the_length_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = b"kvtrace 1 prefill=4 decode=3 layers=2\n4 0 ".to_vec();
    text.resize(text.len() + (65 << 20), b'0');
    let t = dir.path().join("long.kvtrace");
    fs::write(&t, &text).unwrap();
    fails_with(
        &run_bounded(&["trace", "stats", t.to_str().unwrap()]),
        &["long.kvtrace:2:", "line longer than 64 MiB"],
    );
}

// ---- 4. work that cannot finish

#[test]
fn a_trace_that_would_take_years_is_refused_with_the_figure() {
    let dir = tempfile::tempdir().unwrap();
    let t = write(
        dir.path(),
        "huge.kvtrace",
        "kvtrace 1 prefill=0 decode=67108864 layers=64\n",
    );
    for cmd in [
        &["trace", "stats", &t][..],
        &["trace", "convert", &t, "-o", "x.kvtb"][..],
    ] {
        let o = kvtier()
            .current_dir(dir.path())
            .args(cmd)
            .timeout(std::time::Duration::from_secs(20))
            .output()
            .unwrap();
        fails_with(&o, &["huge.kvtrace", "words of bitset work", "at most"]);
    }
    assert!(!dir.path().join("x.kvtb").exists());
}

#[test]
fn a_run_that_needs_too_much_memory_is_refused_before_it_starts() {
    // 64 layers x 67,108,848 prefill + 16 decode positions: within the dimension limits and
    // cheap in work (16 steps), but 84 bitsets of 8 MiB per layer are 45 GiB.
    let text = tiny_with("layers = 2", "layers = 64")
        .replace("prefill = 4", "prefill = 67108848")
        .replace("decode = 3", "decode = 16")
        .replace("capacity = \"2300 B\"", "capacity = \"1 TB\"");
    let o = run_scenario(&text);
    fails_with(&o, &["s.toml", "GiB, more than the 16 GiB a run may take"]);
}

// ---- 9. messages that say what is valid

#[test]
fn bad_values_get_messages_that_say_what_is_valid() {
    let o = run_scenario(&tiny_with(
        "source = \"none\"",
        "source = \"none\"\nlayer_skip_rate = \"high\"",
    ));
    fails_with(
        &o,
        &[
            "field `skip.layer_skip_rate`",
            "a number in [0, 1], or a list",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let ret = write(dir.path(), "ret.rhai", "fn place(ctx) {\n    ctx\n}\n");
    let o = kvtier()
        .args(["run", &tiny(), "--placement", &ret])
        .output()
        .unwrap();
    fails_with(&o, &["ret.rhai:1:1: in place", "got a Ctx"]);
    assert!(!stderr(&o).contains("kvtier::"), "{}", stderr(&o));
    let imp = write(
        dir.path(),
        "imp.rhai",
        "fn place(ctx) {\n    import \"x\" as y;\n    \"hbm\"\n}\n",
    );
    let o = kvtier()
        .args(["run", &tiny(), "--placement", &imp])
        .output()
        .unwrap();
    fails_with(&o, &["imp.rhai", "import is not available"]);
    // A scenario (or any non-script) named as a strategy is not quoted as Rhai.
    let o = kvtier()
        .args(["run", &tiny(), "--placement", &tiny()])
        .output()
        .unwrap();
    fails_with(&o, &["tiny.toml: not a strategy script"]);
    assert!(!stderr(&o).contains("reserved symbol"), "{}", stderr(&o));
}

#[test]
fn converting_a_text_trace_with_megabytes_of_comments_keeps_what_fits() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("kvtrace 1 prefill=4 decode=3 layers=2\n");
    for i in 0..30_000 {
        text += &format!("# comment line {i} of a long provenance text\n");
    }
    let t = write(dir.path(), "chatty.kvtrace", &text);
    let o = kvtier()
        .current_dir(dir.path())
        .args(["trace", "convert", &t, "-o", "c.kvtb"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let back = dir.path().join("c.kvtrace");
    let o = kvtier()
        .current_dir(dir.path())
        .args(["trace", "convert", "c.kvtb", "-o", back.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let again = fs::read_to_string(back).unwrap();
    assert!(again.contains("more bytes of comments from") && again.contains("chatty.kvtrace"));
}

// ---- 10. leftovers and floods

/// Temporary files kvtier left in `dir`.
fn temp_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".kvtier-") && n.ends_with(".tmp"))
        .collect()
}

/// Starts `kvtier run seed-w100.toml --csv out.csv` in `dir` and waits until its temporary
/// file exists.
fn start_long_csv_run(dir: &Path) -> std::process::Child {
    let bin = assert_cmd::cargo::cargo_bin("kvtier");
    let child = std::process::Command::new(bin)
        .current_dir(dir)
        .args([
            "run",
            repo().join("scenarios/seed-w100.toml").to_str().unwrap(),
            "--csv",
            "out.csv",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while temp_files(dir).is_empty() {
        assert!(start.elapsed().as_secs() < 30, "no temporary file appeared");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}

fn signal(child: &std::process::Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn an_interrupted_run_leaves_no_temporary_file() {
    for sig in ["-INT", "-TERM"] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = start_long_csv_run(dir.path());
        signal(&child, sig);
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "{sig}: the run should have been interrupted"
        );
        assert!(
            temp_files(dir.path()).is_empty(),
            "{sig}: {:?}",
            temp_files(dir.path())
        );
        assert!(!dir.path().join("out.csv").exists());
    }
}

#[test]
fn a_killed_runs_temporary_file_is_removed_by_the_next_write_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = start_long_csv_run(dir.path());
    signal(&child, "-KILL");
    child.wait().unwrap();
    assert_eq!(temp_files(dir.path()).len(), 1, "kill -9 cannot clean up");
    let o = kvtier()
        .current_dir(dir.path())
        .args(["run", &tiny(), "--csv", "tiny.csv"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        temp_files(dir.path()).is_empty(),
        "{:?}",
        temp_files(dir.path())
    );
}

#[test]
fn script_output_is_capped_per_run_and_says_how_much_was_dropped() {
    let dir = tempfile::tempdir().unwrap();
    // 6 calls of on_layer on tiny (3 steps x 2 layers), 500 lines each: 3,000 lines.
    let s = write(
        dir.path(),
        "chatty.rhai",
        "fn on_layer(ctx) {\n    for i in 0..500 { print(`line ${i}`); }\n}\n",
    );
    let o = kvtier()
        .args(["run", &tiny(), "--migration", &s])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let printed = err
        .lines()
        .filter(|l| l.starts_with("[script] line"))
        .count();
    assert_eq!(printed, 1000, "lines printed");
    assert!(
        err.contains("output limit of 1000 lines per run reached"),
        "{err}"
    );
    assert!(
        err.contains("2000 more lines of print/debug output were dropped"),
        "{err}"
    );
}

// ---- 5. scripts that escape their limits

/// tiny.toml with 16M prefill positions: one token set is 2 MiB.
fn tiny_16m(dir: &Path, extra_policy: &str) -> String {
    let text = tiny_with("prefill = 4", "prefill = 16777216")
        .replace("decode = 3", "decode = 1")
        .replace("capacity = \"2300 B\"", "capacity = \"10 TB\"")
        .replace("[policy]", &format!("[policy]\n{extra_policy}"));
    write(dir, "big.toml", &text)
}

#[test]
fn native_set_verbs_count_against_the_operation_limit() {
    let dir = tempfile::tempdir().unwrap();
    let sc = tiny_16m(dir.path(), "");
    let s = write(
        dir.path(),
        "unions.rhai",
        "fn on_step(ctx) {\n    let a = ctx.present(0);\n    loop {\n        a = a | ctx.present(1);\n    }\n}\n",
    );
    let start = std::time::Instant::now();
    let o = kvtier()
        .args(["run", &sc, "--migration", &s])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    fails_with(
        &o,
        &[
            "unions.rhai:1:1: in on_step",
            "operations in one call",
            "native verbs touch",
        ],
    );
    // Each union touches 262,144 words; 1M operations allow about 240 of them.
    assert!(start.elapsed().as_secs() < 30, "took {:?}", start.elapsed());
}

#[test]
fn scripts_cannot_hold_gigabytes_of_sets_and_the_other_pairs_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let sc = tiny_16m(dir.path(), "");
    let s = write(
        dir.path(),
        "hoard.rhai",
        "fn on_step(ctx) {\n    let all = [];\n    for i in 0..9999 { all.push(ctx.present(0)); }\n}\n",
    );
    let o = kvtier()
        .args([
            "compare",
            &sc,
            "--placement",
            "hbm",
            "--migration",
            &s,
            "none",
        ])
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("hbm + hoard: ") && out.contains("more than the 256 MiB a run may"),
        "{out}"
    );
    assert!(
        out.contains("│ hbm") && out.contains("┆ none"),
        "the other pair ran: {out}"
    );
}

#[test]
fn a_run_stops_when_its_scripts_spend_their_whole_budget() {
    let dir = tempfile::tempdir().unwrap();
    let text = tiny_with("[policy]", "[policy]\nmax_script_operations = 20000");
    let sc = write(dir.path(), "s.toml", &text);
    // About 10,000 operations per call; the third call goes over 20,000.
    let s = write(
        dir.path(),
        "busy.rhai",
        "fn on_layer(ctx) {\n    let x = 0;\n    for i in 0..2500 { x += i; }\n}\n",
    );
    let o = kvtier()
        .args(["run", &sc, "--migration", &s])
        .output()
        .unwrap();
    fails_with(
        &o,
        &[
            "busy.rhai:1:1: in on_layer",
            "more than 20000 operations in all",
            "policy.max_script_operations",
        ],
    );
}
