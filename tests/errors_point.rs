//! Errors that point: a caret under the column, "did you mean" for a mistyped `ctx` property,
//! verb, parameter or scenario field, and `kvtier check` saying when its dry run never
//! exercised a migration.

use std::path::Path;

use assert_cmd::Command;

fn kvtier() -> Command {
    Command::cargo_bin("kvtier").unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// stderr of a command that must fail.
fn fails(c: &mut Command) -> String {
    let o = c.output().unwrap();
    assert!(!o.status.success());
    String::from_utf8(o.stderr).unwrap()
}

/// The caret line under the source line: the caret's column equals the reported one.
fn caret_column(err: &str, line_no: usize) -> usize {
    let lines: Vec<&str> = err.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.trim_start().starts_with(&format!("{line_no} | ")))
        .unwrap_or_else(|| panic!("no source line in {err}"));
    let src = lines[i];
    let caret = lines[i + 1];
    let bar = src.find(" | ").unwrap() + 3;
    assert_eq!(
        &caret[..bar],
        format!("{} | ", " ".repeat(bar - 3)),
        "{err}"
    );
    caret.find('^').unwrap() - bar + 1
}

#[test]
fn a_mistyped_ctx_property_gets_a_caret_and_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let s = write(
        dir.path(),
        "t.rhai",
        "fn on_layer(ctx) {\n    let x = ctx.layr;\n}\n",
    );
    let e = fails(kvtier().args(["check", &s]));
    assert!(
        e.contains("t.rhai:2:17: in on_layer (step 4, layer 0): Unknown property 'layr'"),
        "{e}"
    );
    assert!(e.contains("(did you mean `layer`?)"), "{e}");
    assert_eq!(caret_column(&e, 2), 17);
    // A mistyped verb too.
    let s = write(
        dir.path(),
        "v.rhai",
        "fn on_layer(ctx) {\n    let s = ctx.hbm_sett(0);\n}\n",
    );
    let e = fails(kvtier().args(["check", &s]));
    assert!(e.contains("(did you mean `hbm_set`?)"), "{e}");
}

#[test]
fn a_mistyped_parameter_is_matched_against_the_given_ones() {
    let dir = tempfile::tempdir().unwrap();
    let s = write(
        dir.path(),
        "p.rhai",
        "fn on_layer(ctx) {\n    let b = ctx.param(\"bach\");\n}\n",
    );
    let e = fails(kvtier().args(["check", &s, "--param", "batch=3"]));
    assert!(
        e.contains("unknown param \"bach\" (did you mean \"batch\"? it is given)"),
        "{e}"
    );
    // Nothing close given: no guess.
    let e = fails(kvtier().args(["check", &s, "--param", "threshold=0.5"]));
    assert!(!e.contains("did you mean"), "{e}");
}

#[test]
fn a_mistyped_scenario_field_gets_a_caret_and_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = std::fs::read_to_string("scenarios/tiny.toml").unwrap();
    let bad = tiny.replacen("layers = 2", "  layrs = 2", 1);
    let line = bad.lines().position(|l| l.contains("layrs")).unwrap() + 1;
    let f = write(dir.path(), "s.toml", &bad);
    let e = fails(kvtier().args(["run", &f]));
    assert!(
        e.contains(&format!("s.toml:{line}:3: unknown field `layrs`")),
        "{e}"
    );
    assert!(e.contains("(did you mean `layers`?)"), "{e}");
    assert_eq!(caret_column(&e, line), 3);
}

#[test]
fn check_says_when_the_dry_run_never_exercised_a_migration() {
    let dir = tempfile::tempdir().unwrap();
    // Acts only past step 1000: tiny's 3 decode steps never get there.
    let s = write(
        dir.path(),
        "late.rhai",
        "fn on_step(ctx) {\n    if ctx.step > 1000 { ctx.to_ext_all(ctx.hbm_any_layer()); }\n}\n",
    );
    let o = kvtier().args(["check", &s]).output().unwrap();
    assert!(o.status.success());
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("never moved anything on tiny (3 decode steps)") && out.contains("--scenario"),
        "{out}"
    );
    // A migration that moves on tiny gets no note.
    let o = kvtier()
        .args(["check", "policies/migration/prior.rhai"])
        .output()
        .unwrap();
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(o.status.success() && !out.contains("note:"), "{out}");
}
