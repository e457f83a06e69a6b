//! Every tidy output (run, compare, sweep, study, merge; CSV and JSON; a per-sublayer CSV and its
//! metadata file) loads with plain `pandas.read_csv` / `pandas.read_json`, with integer columns
//! as int64 and the rest as float64 or text: tests/pandas_check.py checks, this test writes them.
//!
//! Needs python3 with pandas (`.ci/run` installs it); without it the test fails under CI and
//! says SKIPPED elsewhere.

mod common;

use std::path::Path;
use std::process::Command as Process;

use assert_cmd::Command;
use common::repo;

fn kvtier(dir: &Path, args: &[&str], out: &str) {
    let o = Command::cargo_bin("kvtier")
        .unwrap()
        .current_dir(repo())
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::write(dir.join(out), &o.stdout).unwrap();
}

#[test]
fn every_output_loads_in_pandas_with_integer_columns_as_integers() {
    let has_pandas = Process::new("python3")
        .args(["-c", "import pandas"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_pandas {
        common::missing_dependency(
            "every_output_loads_in_pandas_with_integer_columns_as_integers",
            "python3 with pandas is not installed (python3 -m pip install pandas)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tiny = "scenarios/tiny.toml";
    // tiny with a KV budget 400 B over its HBM: idealized, so idealized_over_gb has a value.
    let text = std::fs::read_to_string(repo().join(tiny)).unwrap();
    let ideal = d.join("ideal.toml");
    std::fs::write(
        &ideal,
        text.replace("[hbm]\n", "[hbm]\nkv_budget = \"1500 B\"\n"),
    )
    .unwrap();
    let ideal = ideal.display().to_string();
    let study = d.join("study.toml");
    std::fs::write(
        &study,
        format!(
            "title = \"t\"\nbase = {:?}\nplacements = [\"prefer_hbm\", \"split_token\"]\nmigrations = [\"none\", \"prior\"]\n[[vary]]\nkey = \"workload.decode\"\nvalues = [2, 3]\n",
            repo().join(tiny).display().to_string()
        ),
    )
    .unwrap();
    let study = study.display().to_string();
    for f in ["csv", "json"] {
        kvtier(
            d,
            &[
                "run",
                &ideal,
                "--placement",
                "prefer_hbm",
                "--migration",
                "none",
                "--format",
                f,
            ],
            &format!("run.{f}"),
        );
        kvtier(
            d,
            &[
                "compare",
                tiny,
                "--best-static",
                "--baselines",
                "--format",
                f,
            ],
            &format!("compare.{f}"),
        );
        let sweep = [
            "sweep",
            tiny,
            "--vary",
            "workload.decode=2,3",
            "--vary",
            "memory.migration=sync,async",
            "--migration",
            "none",
            "alpha",
            "--format",
            f,
        ];
        kvtier(d, &sweep, &format!("sweep.{f}"));
        kvtier(d, &["study", &study, "--format", f], &format!("study.{f}"));
    }
    // Two shards merged.
    for i in 1..=2 {
        let shard = format!("{i}/2");
        let out = d.join(format!("shard{i}.result"));
        let o = Command::cargo_bin("kvtier")
            .unwrap()
            .current_dir(repo())
            .args([
                "sweep",
                tiny,
                "--vary",
                "workload.decode=2,3",
                "--shard",
                &shard,
                "-o",
            ])
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let shards = [d.join("shard1.result"), d.join("shard2.result")];
    for f in ["csv", "json"] {
        let o = Command::cargo_bin("kvtier")
            .unwrap()
            .arg("merge")
            .args(&shards)
            .args(["--format", f])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::fs::write(d.join(format!("merge.{f}")), &o.stdout).unwrap();
    }
    // A per-sublayer CSV with step-phase rows (prior moves in on_step) and its metadata.
    let sub = d.join("sublayer.csv");
    let o = Command::cargo_bin("kvtier")
        .unwrap()
        .current_dir(repo())
        .args([
            "run",
            tiny,
            "--placement",
            "prefer_hbm",
            "--migration",
            "prior",
            "--csv",
        ])
        .arg(&sub)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Process::new("python3")
        .arg(repo().join("tests/pandas_check.py"))
        .arg(d)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("all ok"),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
