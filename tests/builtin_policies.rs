//! The reference strategies are built into the binary: a copy of the binary run from a folder
//! with no `policies/` resolves bare names and the default folders as it does in the project,
//! a local `./policies/` script still wins, and `kvtier policies` lists and prints them.

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::repo;

/// The binary copied out of the build tree, as `cargo install` leaves it: nothing next to it.
fn installed(dir: &Path) -> PathBuf {
    let built = assert_cmd::cargo::cargo_bin("kvtier");
    let to = dir.join("kvtier");
    std::fs::copy(&built, &to).unwrap();
    to
}

fn run_in(bin: &Path, cwd: &Path, args: &[&str]) -> std::process::Output {
    // A test thread that forks while the copy's file is still open for writing makes the exec
    // fail with "Text file busy" (ETXTBSY) until that child execs in turn: try again.
    for _ in 0..50 {
        match Command::new(bin).current_dir(cwd).args(args).output() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            r => return r.unwrap(),
        }
    }
    panic!("{} stayed busy", bin.display())
}

fn ok(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn bare_names_and_default_folders_resolve_away_from_the_project() {
    let bin_dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let bin = installed(bin_dir.path());
    std::fs::copy(
        repo().join("scenarios/tiny.toml"),
        work.path().join("tiny.toml"),
    )
    .unwrap();
    let args = [
        "run",
        "tiny.toml",
        "--placement",
        "prefer_hbm",
        "--migration",
        "alpha",
        "--format",
        "json",
    ];
    let away = ok(&run_in(&bin, work.path(), &args));
    // The same run in the project, where the names are files under policies/.
    let scenario = repo().join("scenarios/tiny.toml").display().to_string();
    let mut here_args = args;
    here_args[1] = &scenario;
    let here = ok(&run_in(&bin, repo(), &here_args));
    let time =
        |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap()[0]["decode_time_s"].clone();
    assert_eq!(time(&away), time(&here));
    assert!(time(&away).as_f64().is_some(), "{away}");

    // compare's default folders (policies/placement x policies/migration) and the baselines.
    let csv = ok(&run_in(
        &bin,
        work.path(),
        &["compare", "tiny.toml", "--baselines", "--format", "csv"],
    ));
    let rows: Vec<(&str, &str)> = csv
        .lines()
        .skip(1)
        .map(|l| {
            // scenario, placement, migration, ...
            let mut f = l.split(',').skip(1);
            (f.next().unwrap(), f.next().unwrap())
        })
        .collect();
    // 5 placements x 7 migrations + 2 placement and 5 migration baselines, each run once.
    assert_eq!(rows.len(), 42, "{csv}");
    for want in [
        ("prefer_hbm", "alpha"),
        ("split_token", "none"),
        ("static_alpha", "none"),
        ("flexgen", "none"),
        ("hbm", "belady"),
    ] {
        assert!(rows.contains(&want), "{want:?} missing:\n{csv}");
    }
}

#[test]
fn a_script_in_the_local_policies_folder_wins_over_the_built_in_one() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("policies/placement");
    std::fs::create_dir_all(&dir).unwrap();
    // A prefer_hbm that puts every new entry on EXT.
    std::fs::write(dir.join("prefer_hbm.rhai"), "fn place(ctx) { \"ext\" }\n").unwrap();
    std::fs::copy(
        repo().join("scenarios/tiny.toml"),
        work.path().join("tiny.toml"),
    )
    .unwrap();
    let bin = assert_cmd::cargo::cargo_bin("kvtier");
    let t = |cwd: &Path, s: &str| {
        let o = ok(&run_in(
            &bin,
            cwd,
            &[
                "run",
                s,
                "--placement",
                "prefer_hbm",
                "--migration",
                "none",
                "--format",
                "json",
            ],
        ));
        serde_json::from_str::<serde_json::Value>(&o).unwrap()[0]["decode_time_s"]
            .as_f64()
            .unwrap()
    };
    let local = t(work.path(), "tiny.toml");
    let builtin = t(repo(), "scenarios/tiny.toml");
    // tiny: PreferHBM takes 71 s (tests/cli_policy.rs); all new entries on EXT is slower.
    assert_eq!(builtin, 71.0);
    assert!(local > builtin, "{local} vs {builtin}");
}

#[test]
fn policies_lists_every_script_and_show_prints_one() {
    let bin = assert_cmd::cargo::cargo_bin("kvtier");
    let elsewhere = tempfile::tempdir().unwrap();
    let list = ok(&run_in(&bin, elsewhere.path(), &["policies"]));
    for name in [
        "prefer_hbm",
        "alpha",
        "lookahead",
        "lru",
        "belady",
        "infinigen",
        "flexgen",
        "static_alpha",
    ] {
        assert!(list.contains(name), "{name}:\n{list}");
    }
    assert!(
        list.contains("demote the least recently used entries."),
        "{list}"
    );
    let alpha = ok(&run_in(
        &bin,
        elsewhere.path(),
        &["policies", "show", "alpha"],
    ));
    assert_eq!(
        alpha,
        std::fs::read_to_string(repo().join("policies/migration/alpha.rhai")).unwrap()
    );
    let both = run_in(
        &bin,
        elsewhere.path(),
        &["policies", "show", "lookahead_batch"],
    );
    let e = String::from_utf8_lossy(&both.stderr);
    assert!(
        !both.status.success()
            && e.contains("placement/lookahead_batch or migration/lookahead_batch"),
        "{e}"
    );
    let placement = ok(&run_in(
        &bin,
        elsewhere.path(),
        &["policies", "show", "placement/lookahead_batch"],
    ));
    assert!(placement.contains("fn place(ctx)"), "{placement}");
    let typo = run_in(&bin, elsewhere.path(), &["policies", "show", "alpah"]);
    let e = String::from_utf8_lossy(&typo.stderr);
    assert!(
        !typo.status.success() && e.contains("did you mean alpha?"),
        "{e}"
    );
}
