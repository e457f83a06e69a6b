//! Every code example of the script API (docs/policy-api.md, from `src/policy/api.rs`) runs on
//! scenarios/tiny.toml and prints what the page says it prints; the walkthrough of
//! docs/write-a-strategy.md runs as written and gives the outputs it shows.
//!
//! The harness (described at the top of docs/policy-api.md): a statement example runs inside
//! `on_layer` at layer 1 of the first decode step, with PreferHBM placement, then prints each
//! variable it defines (`name = value`); a hook example runs as its own script. Every example
//! then reports the run's decode time, so examples that move entries show their effect.

mod common;

use std::path::Path;

use assert_cmd::Command;
use common::repo;
use kvtier::policy::api::{example_prints, VERBS};

/// The script a verb's example runs in, and whether it is the placement (else the migration).
fn harness(group: &str, name: &str, example: &str) -> (String, bool) {
    if group == "Hooks" {
        return match name {
            "place" => (example.to_string(), true),
            "initial" => (format!("fn place(ctx) {{ \"hbm\" }}\n{example}\n"), true),
            _ => (example.to_string(), false),
        };
    }
    let mut body: String = example.lines().map(|l| format!("        {l}\n")).collect();
    for var in defined(example) {
        body += &format!("        print(`{var} = ${{{var}}}`);\n");
    }
    (
        format!("fn on_layer(ctx) {{\n    if ctx.step == ctx.prefill && ctx.layer == 1 {{\n{body}    }}\n}}\n"),
        false,
    )
}

/// Names of the `let` bindings of an example, in order.
fn defined(example: &str) -> Vec<String> {
    example
        .split("let ")
        .skip(1)
        .filter_map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

/// What the example prints on tiny.toml: its `[script]` lines and the run's decode time,
/// joined with "; ".
fn run_example(dir: &Path, group: &str, name: &str, example: &str) -> String {
    let (script, is_placement) = harness(group, name, example);
    let file = dir.join(format!("{name}.rhai"));
    std::fs::write(&file, &script).unwrap();
    let file = file.display().to_string();
    let (placement, migration) = if is_placement {
        (file.as_str(), "none")
    } else {
        ("prefer_hbm", file.as_str())
    };
    let o = Command::cargo_bin("kvtier")
        .unwrap()
        .current_dir(repo())
        .args([
            "run",
            "scenarios/tiny.toml",
            "--placement",
            placement,
            "--migration",
            migration,
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "{name}: the example fails:\n{script}\n{err}"
    );
    let mut printed: Vec<String> = err
        .lines()
        .filter_map(|l| l.strip_prefix("[script] ").map(str::to_string))
        .collect();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    printed.push(format!("decode_time_s = {}", v[0]["decode_time_s"]));
    printed.join("; ")
}

#[test]
fn every_api_example_prints_what_the_docs_say() {
    let dir = tempfile::tempdir().unwrap();
    let mut wrong = Vec::new();
    for v in VERBS {
        let got = run_example(dir.path(), v.group, v.name, v.example);
        if example_prints(v.name) != Some(got.as_str()) {
            // Paste-ready for src/policy/api.rs's EXAMPLE_PRINTS once checked by eye.
            wrong.push(format!("    ({:?}, {:?}),", v.name, got));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} example(s) print something else than documented:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn shares_and_rates_in_the_examples_are_floats() {
    // Rhai divides ints as ints: a share that prints as 0 or 1 is the bug the docs once had.
    for (name, prints) in kvtier::policy::api::EXAMPLE_PRINTS {
        for part in prints.split("; ") {
            let Some((var, value)) = part.split_once(" = ") else {
                continue;
            };
            if ["share", "rate", "ratio", "gb", "backlog_gb", "tflops"].contains(&var) {
                assert!(
                    value.contains('.') || value.contains('e'),
                    "{name}: {var} = {value} is not a float"
                );
            }
        }
    }
}

/// stdout of a command that must succeed (its stderr in the failure message).
fn stdout_of(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The text of the fenced block of `lang` that follows `after` in `doc`.
fn block_after<'a>(doc: &'a str, after: &str, lang: &str) -> &'a str {
    let from = doc
        .find(after)
        .unwrap_or_else(|| panic!("{after:?} not in the page"));
    let open = format!("```{lang}\n");
    let start = from + doc[from..].find(&open).unwrap() + open.len();
    let end = start + doc[start..].find("```").unwrap();
    &doc[start..end]
}

#[test]
fn the_write_a_strategy_walkthrough_gives_the_outputs_it_shows() {
    let doc = std::fs::read_to_string(repo().join("docs/write-a-strategy.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("my")).unwrap();
    // Step 1-2: the reference script's header with the page's new on_step.
    let prior = std::fs::read_to_string(repo().join("policies/migration/prior.rhai")).unwrap();
    let header: String = prior
        .lines()
        .take_while(|l| !l.starts_with("fn "))
        .map(|l| format!("{l}\n"))
        .collect();
    let new_on_step = block_after(&doc, "## 2. Change it", "rhai");
    assert!(
        new_on_step.contains("ctx.tokens(0, ctx.param(\"sinks\", 4))"),
        "{new_on_step}"
    );
    let script = format!("{header}{new_on_step}");
    std::fs::write(dir.path().join("my/prior_keep_sinks.rhai"), &script).unwrap();
    let kvtier = || {
        let mut c = Command::cargo_bin("kvtier").unwrap();
        c.current_dir(dir.path());
        c
    };

    // Step 3: check prints the line the page shows (up to its "...").
    let shown = block_after(&doc, "## 3. Check it", "sh");
    let expected = shown
        .lines()
        .find_map(|l| l.strip_prefix("# "))
        .unwrap()
        .trim_end_matches("...")
        .to_string();
    let got = stdout_of(kvtier().args(["check", "my/prior_keep_sinks.rhai"]));
    assert!(got.starts_with(&expected), "page: {expected}\ngot:  {got}");

    // The mistake the page shows, and its error, word for word.
    let error = block_after(&doc, "file, line and column", "text");
    let broken = script.replace("ctx.param(\"sinks\", 4)", "ctx.param(\"sink\")");
    std::fs::write(dir.path().join("my/prior_keep_sinks.rhai"), &broken).unwrap();
    let out = kvtier()
        .args(["check", "my/prior_keep_sinks.rhai"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    for line in error.lines() {
        assert!(err.contains(line), "page: {line}\ngot:\n{err}");
    }
    std::fs::write(dir.path().join("my/prior_keep_sinks.rhai"), &script).unwrap();

    // Step 4: the comparison's rows as the page shows them (decode time, tokens/s, x ideal,
    // x placement; the page elides the columns after them).
    let table = block_after(&doc, "## 4. Run it and compare", "text");
    let seed = repo()
        .join("scenarios/seed-w100.toml")
        .display()
        .to_string();
    let got = stdout_of(kvtier().args([
        "compare",
        &seed,
        "--placement",
        "prefer_hbm",
        "--migration",
        "prior",
        "my/prior_keep_sinks.rhai",
        "none",
        "--format",
        "markdown",
    ]));
    let cells =
        |line: &str| -> Vec<String> { line.split('|').map(|c| c.trim().to_string()).collect() };
    for row in table.lines().skip(2) {
        let want = cells(row);
        let (p, m) = (&want[1], &want[2]);
        let found = got
            .lines()
            .map(cells)
            .find(|c| c.len() > 5 && &c[1] == p && &c[2] == m)
            .unwrap_or_else(|| panic!("no row {p} + {m} in:\n{got}"));
        assert_eq!(found[3..7], want[3..7], "{p} + {m}");
    }
}
