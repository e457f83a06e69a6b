//! Latency of `kvtier watch`: from a save to the new table, on the seed scenario with one pair.
//! Target (issue 4): median <= that pair's run time + 300 ms.
//!
//! Run with `cargo bench --bench watch_latency` (release build). Prints every sample and the
//! medians; asserts nothing (the machine is shared and noisy).

use kvtier::results::median;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo.join("scenarios/seed-w100.toml"),
        dir.path().join("s.toml"),
    )
    .unwrap();
    let script = std::fs::read_to_string(repo.join("policies/placement/prefer_hbm.rhai")).unwrap();
    std::fs::write(dir.path().join("p.rhai"), &script).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvtier"))
        .current_dir(dir.path())
        .args([
            "watch",
            "s.toml",
            "--placement",
            "p.rhai",
            "--migration",
            "none",
            "--json-lines",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next =
        || -> serde_json::Value { serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap() };
    let first = next();
    println!("first run: {:.3} s", first["run_s"].as_f64().unwrap());
    let (mut lat, mut run, mut over) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..9 {
        std::thread::sleep(Duration::from_millis(500));
        let saved = Instant::now();
        std::fs::write(dir.path().join("p.rhai"), format!("{script}// save {i}\n")).unwrap();
        let v = next();
        let l = saved.elapsed().as_secs_f64();
        let r = v["run_s"].as_f64().unwrap();
        println!(
            "save {i}: new table after {l:.3} s, pair run {r:.3} s, overhead {:.3} s",
            l - r
        );
        lat.push(l);
        run.push(r);
        over.push(l - r);
    }
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let code = child.wait().unwrap();
    println!(
        "median: save -> table {:.3} s, pair run {:.3} s, overhead {:.3} s (target <= 0.300 s); exit {:?}",
        median(&mut lat),
        median(&mut run),
        median(&mut over),
        code.code()
    );
}
