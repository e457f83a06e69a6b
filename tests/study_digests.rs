//! Speed work leaves results alone: the tidy CSV table of every shipped study
//! (`kvtier study FILE --format csv`) has the digest pinned in `tests/study_digests.txt`. The
//! digests were taken from the kvtier of commit 17af559, before the speed work of issue 16
//! (release build, `kvtier study scenarios/studies/NAME.toml --format csv -o NAME.csv`, then
//! FNV-1a 64 of the file's bytes); they are never regenerated from later code.
//!
//! A debug build needs hours for every study, so the test run by `cargo test` checks the studies
//! that take seconds; the rest are checked by the ignored test below, in a release build:
//!
//! ```sh
//! cargo test --release --test study_digests -- --include-ignored
//! ```
//!
//! which takes about 16 minutes on a 2-core machine (914 s and 971 s for the test itself in
//! the last two runs, plus the build), the baselines study the longest (docs/performance.md).

mod common;

use std::collections::BTreeMap;

use common::repo;

/// The study that takes seconds even in a debug build (24 short runs of a batched GH200 model).
const QUICK: [&str; 1] = ["batch-compute"];

fn pinned() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(repo().join("tests/study_digests.txt")).unwrap();
    text.lines()
        .map(|l| {
            let (name, rest) = l.split_once(' ').expect("name digest rows");
            (name.to_string(), rest.to_string())
        })
        .collect()
}

/// `digest rows=N` of a study's CSV table, run by the kvtier binary of this build.
fn digest(name: &str) -> String {
    let file = repo().join(format!("scenarios/studies/{name}.toml"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kvtier"))
        .current_dir(repo())
        .args(["study", file.to_str().unwrap(), "--format", "csv"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = out.stdout.iter().filter(|&&b| b == b'\n').count() - 1;
    format!("{} rows={rows}", kvtier::digest::of(&out.stdout))
}

fn check(names: &[&str]) {
    let want = pinned();
    for name in names {
        assert_eq!(
            Some(&digest(name)),
            want.get(*name),
            "the table of study {name} changed"
        );
    }
}

#[test]
fn every_shipped_study_is_pinned() {
    let mut shipped: Vec<String> = std::fs::read_dir(repo().join("scenarios/studies"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    shipped.sort();
    let pinned: Vec<String> = pinned().into_keys().collect();
    assert_eq!(shipped, pinned);
}

#[test]
fn quick_studies_are_unchanged() {
    check(&QUICK);
}

#[test]
#[ignore = "every study: about 16 minutes in a release build on two cores (see the module doc)"]
fn every_study_is_unchanged() {
    let names: Vec<String> = pinned().into_keys().collect();
    let names: Vec<&str> = names
        .iter()
        .map(|s| s.as_str())
        .filter(|n| !QUICK.contains(n))
        .collect();
    check(&names);
}
