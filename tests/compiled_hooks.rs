//! Compiled hooks (src/policy/fast) against Rhai's interpreter on every shipped strategy: the
//! 42 pairs of `kvtier compare --baselines` give the same JSON, byte for byte, with hooks
//! compiled and with `KVTIER_INTERPRET=1`, in sync and async migration and with KV blocks.

use std::path::Path;

use assert_cmd::Command;

/// The seed scenario, shortened (2,000 prefill positions, 64 decode steps), with one line
/// replaced.
fn seed_with(dir: &Path, name: &str, (from, to): (&str, &str)) -> String {
    let text = std::fs::read_to_string("scenarios/seed-w100.toml").unwrap();
    assert!(text.contains("prefill = 30000") && text.contains("decode = 4096"));
    assert!(text.contains(from), "{from}");
    let text = text
        .replace("prefill = 30000", "prefill = 2000")
        .replace("decode = 4096", "decode = 64")
        .replace(from, to);
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn compare(scenario: &str, interpret: bool) -> Vec<u8> {
    let mut c = Command::cargo_bin("kvtier").unwrap();
    c.args(["compare", scenario, "--baselines", "--format", "json"]);
    if interpret {
        c.env("KVTIER_INTERPRET", "1");
    } else {
        c.env_remove("KVTIER_INTERPRET");
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o.stdout
}

#[test]
fn every_shipped_pair_gives_the_same_results_compiled_and_interpreted() {
    let dir = tempfile::tempdir().unwrap();
    let memory = "[memory]\n";
    for (name, change) in [
        ("sync.toml", (memory, memory)),
        ("async.toml", (memory, "[memory]\nmigration = \"async\"\n")),
        ("blocks.toml", (memory, "[memory]\nblock_tokens = 16\n")),
        (
            "inclusive.toml",
            ("hierarchy = \"exclusive\"", "hierarchy = \"inclusive\""),
        ),
    ] {
        let s = seed_with(dir.path(), name, change);
        let compiled = compare(&s, false);
        let interpreted = compare(&s, true);
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&compiled).unwrap();
        assert_eq!(rows.len(), 42, "{name}");
        // Every pair ran, and the migration scripts moved data both ways: there was
        // something to compare.
        assert!(rows.iter().all(|r| r["status"] == "ok"), "{name}");
        for field in ["moved_to_hbm_bytes", "moved_to_ext_bytes"] {
            let moving = rows.iter().filter(|r| r[field].as_u64() > Some(0)).count();
            assert!(moving >= 10, "{name}: {moving} pairs with {field} > 0");
        }
        assert!(
            compiled == interpreted,
            "{name}: compiled and interpreted differ"
        );
    }
}

/// An error raised inside a compiled hook, also where a set is combined with the HBM set in
/// place (`x & ctx.hbm_set(l)`) or built with it (`ctx.read_at(l, k) & ctx.ext_set(l)`), reads
/// the same as the interpreter's: file, line, column,
/// message.
#[test]
fn errors_are_the_same_compiled_and_interpreted() {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in [
        (
            "view.rhai",
            "let s = ctx.skipped_at(ctx.layer, 0) & ctx.hbm_set(7);",
        ),
        // The future set and the view in one pass: an error in either call, or a layer of
        // the wrong type (then the call is Rhai's), each at its own column.
        (
            "future.rhai",
            "let l = ctx.layer; let s = ctx.read_at(l, 99) & ctx.ext_set(l);",
        ),
        (
            "future_layer.rhai",
            "let l = ctx.layer; let m = 9; let s = ctx.skipped_at(l, 0) - ctx.hbm_set(m);",
        ),
        (
            "future_type.rhai",
            "let l = 0.5; let s = ctx.skipped_at(0, 1) & ctx.hbm_set(l);",
        ),
        ("verb.rhai", "let s = ctx.hbm_set(ctx.layer + 5);"),
        ("op.rhai", "let x = ctx.step * 4611686018427387904;"),
        (
            "type.rhai",
            "if ctx.layer { ctx.to_ext(ctx.hbm_set(0), 0); }",
        ),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("fn on_layer(ctx) {{\n    {body}\n}}\n")).unwrap();
        let run = |interpret: bool| {
            let mut c = Command::cargo_bin("kvtier").unwrap();
            c.args(["run", "scenarios/tiny.toml", "--migration"])
                .arg(&p);
            if interpret {
                c.env("KVTIER_INTERPRET", "1");
            } else {
                c.env_remove("KVTIER_INTERPRET");
            }
            let o = c.output().unwrap();
            assert!(!o.status.success(), "{name} ran");
            String::from_utf8(o.stderr).unwrap()
        };
        let (compiled, interpreted) = (run(false), run(true));
        assert!(compiled.contains(&format!("{name}:2:")), "{compiled}");
        assert_eq!(compiled, interpreted, "{name}");
    }
}
