//! `kvtier watch` driven as a child process on a temp folder: every assertion waits for the
//! expected refresh with a generous deadline (no timing assertions).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(60);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

struct Watch {
    child: Child,
    lines: mpsc::Receiver<Value>,
    dir: tempfile::TempDir,
    last: Option<Value>,
}

impl Watch {
    fn start(extra: &[&str]) -> Watch {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            repo().join("scenarios/tiny.toml"),
            dir.path().join("s.toml"),
        )
        .unwrap();
        std::fs::copy(
            repo().join("policies/placement/prefer_hbm.rhai"),
            dir.path().join("p.rhai"),
        )
        .unwrap();
        std::fs::copy(
            repo().join("policies/migration/alpha.rhai"),
            dir.path().join("m.rhai"),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_kvtier"))
            .current_dir(dir.path())
            .args([
                "watch",
                "s.toml",
                "--placement",
                "p.rhai",
                "--migration",
                "m.rhai",
                "--json-lines",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
            }
        });
        Watch {
            child,
            lines: rx,
            dir,
            last: None,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Waits for a refresh satisfying `ok`; returns it.
    fn wait(&mut self, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + DEADLINE;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.last = Some(v.clone());
                    if ok(&v) {
                        return v;
                    }
                }
                Err(_) => panic!(
                    "no refresh with {what} within {DEADLINE:?}; last: {:#?}",
                    self.last
                ),
            }
        }
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }

    /// Saves like vim or VS Code: write a temporary file, rename it over the target.
    fn write_by_rename(&self, name: &str, text: &str) {
        let tmp = self.path(&format!(".{name}.swp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.path(name)).unwrap();
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < end, "watch did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn row(v: &Value) -> &Value {
    &v["rows"][0]
}

fn time(v: &Value) -> f64 {
    row(v)["decode_time_s"].as_f64().unwrap()
}

fn status(v: &Value) -> &str {
    row(v)["status"].as_str().unwrap()
}

const PLACE_EXT: &str = "fn place(ctx) {\n    \"ext\"\n}\n";
const PLACE_HBM: &str = "fn place(ctx) {\n    \"hbm\"\n}\n";

#[test]
fn watch_follows_edits_errors_deletes_and_the_scenario() {
    let mut w = Watch::start(&[]);
    let first = w.wait("the first run", |v| v["refresh"] == 1);
    let t0 = time(&first);
    assert_eq!(status(&first), "ok");

    // Edit in place so the number changes: everything on EXT is slower.
    w.write("p.rhai", PLACE_EXT);
    let v = w.wait("the slower time", |v| status(v) == "ok" && time(v) > t0);
    assert!(v["changed"][0].as_str().unwrap().ends_with("p.rhai"));
    assert!(row(&v)["decode_time_change_pct"].as_f64().unwrap() > 0.0);
    let t_ext = time(&v);

    // Save by rename, back to HBM: the first number again.
    w.write_by_rename("p.rhai", PLACE_HBM);
    w.wait("the first time again", |v| {
        time(v) == t0 && status(v) == "ok"
    });

    // Break the script: the error names file, line and column; the numbers stay.
    w.write("p.rhai", "fn place(ctx) {\n    let x = ;\n}\n");
    let v = w.wait("a stale row", |v| status(v) == "stale");
    let err = row(&v)["error"].as_str().unwrap();
    assert!(err.contains("p.rhai:2:13"), "{err}");
    assert!(err.contains("let x = ;"), "the source line is shown: {err}");
    assert_eq!(time(&v), t0);

    // Fix it.
    w.write("p.rhai", PLACE_EXT);
    w.wait("the fixed script", |v| {
        status(v) == "ok" && time(v) == t_ext
    });

    // Delete and re-create.
    std::fs::remove_file(w.path("p.rhai")).unwrap();
    w.wait("a gone row", |v| status(v) == "gone");
    w.write("p.rhai", PLACE_HBM);
    w.wait("the row back", |v| status(v) == "ok" && time(v) == t0);

    // Change the scenario: slower HBM, every row re-run.
    let s = std::fs::read_to_string(w.path("s.toml")).unwrap();
    w.write(
        "s.toml",
        &s.replace("bandwidth = \"100 B/s\"", "bandwidth = \"50 B/s\""),
    );
    w.wait("the slower scenario", |v| {
        status(v) == "ok" && time(v) > t0 && v["changed"][0].as_str().unwrap().ends_with("s.toml")
    });
    // A broken scenario keeps the previous one running and says why.
    w.write("s.toml", &s.replace("layers = 2", "layers = 0"));
    let v = w.wait("a scenario error", |v| !v["scenario_error"].is_null());
    assert!(v["scenario_error"]
        .as_str()
        .unwrap()
        .contains("model.layers"));
    assert_eq!(status(&v), "ok");

    let code = w.terminate();
    assert_eq!(code.code(), Some(0), "SIGTERM ends watch with exit 0");
}

#[test]
fn editor_noise_and_identical_saves_cause_no_refresh() {
    let mut w = Watch::start(&[]);
    w.wait("the first run", |v| v["refresh"] == 1);
    // Swap and backup files, and a save with the same bytes, are not changes.
    w.write(".p.rhai.swp", "garbage");
    w.write("p.rhai~", "garbage");
    w.write("4913", "");
    let same = std::fs::read_to_string(w.path("p.rhai")).unwrap();
    w.write("p.rhai", &same);
    // Then a real change: the next refresh must be number 2 and be about p.rhai.
    w.write("p.rhai", PLACE_EXT);
    let v = w.wait("the next refresh", |_| true);
    assert_eq!(v["refresh"], 2, "{v:#}");
    assert_eq!(v["changed"].as_array().unwrap().len(), 1);
    assert_eq!(w.terminate().code(), Some(0));
}

#[test]
fn polling_mode_sees_changes() {
    let mut w = Watch::start(&["--poll"]);
    let t0 = time(&w.wait("the first run", |v| v["refresh"] == 1));
    w.write("p.rhai", PLACE_EXT);
    w.wait("the slower time", |v| time(v) > t0);
    assert_eq!(w.terminate().code(), Some(0));
}

/// 200 random edits, broken and good, in place and by rename; then the table must equal a
/// fresh `compare` of the final files.
#[test]
fn soak_random_edits_end_equal_to_a_fresh_compare() {
    let mut w = Watch::start(&[]);
    w.wait("the first run", |v| v["refresh"] == 1);
    let goods = [
        PLACE_HBM,
        PLACE_EXT,
        "fn place(ctx) { if ctx.layer == 0 { \"hbm\" } else { \"ext\" } }\n",
    ];
    let bad = "fn place(ctx) { \"hbm\" \n";
    let mut rng = 0x2545F4914F6CDD1Du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut last = String::new();
    for i in 0..200 {
        let r = next();
        let text = if r % 4 == 0 {
            bad
        } else {
            goods[(r >> 8) as usize % goods.len()]
        };
        // The last edit is a good one so the final table has numbers to compare.
        let text = if i == 199 { goods[2] } else { text };
        if r & 16 == 0 {
            w.write("p.rhai", text);
        } else {
            w.write_by_rename("p.rhai", text);
        }
        last = text.to_string();
        std::thread::sleep(Duration::from_millis(next() % 60));
    }
    assert_eq!(std::fs::read_to_string(w.path("p.rhai")).unwrap(), last);
    let fresh = Command::new(env!("CARGO_BIN_EXE_kvtier"))
        .current_dir(w.dir.path())
        .args([
            "compare",
            "s.toml",
            "--placement",
            "p.rhai",
            "--migration",
            "m.rhai",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        fresh.status.success(),
        "{}",
        String::from_utf8_lossy(&fresh.stderr)
    );
    let fresh: Value = serde_json::from_slice(&fresh.stdout).unwrap();
    let want = fresh[0]["decode_time_s"].as_f64().unwrap();
    let want_alpha = fresh[0]["alpha_attn"].as_f64().unwrap();
    let mut v = w.wait("the final table", |v| status(v) == "ok" && time(v) == want);
    // Quiet for 2 s: no later refresh may change the table again.
    while let Ok(later) = w.lines.recv_timeout(Duration::from_secs(2)) {
        v = later;
    }
    assert_eq!((status(&v), time(&v)), ("ok", want));
    assert_eq!(row(&v)["alpha_attn"].as_f64().unwrap(), want_alpha);
    assert_eq!(w.terminate().code(), Some(0), "no crash after 200 edits");
}

// ---- hostile sessions (issue 12)

/// Resident memory of a process, in KiB (Linux).
fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_save_by_rename_then_a_quick_delete_marks_the_row_gone() {
    let mut w = Watch::start(&[]);
    let t0 = time(&w.wait("the first run", |v| v["refresh"] == 1));
    for i in 0..12u64 {
        let gap_ms = i * 13 % 150;
        // A change, saved by rename, then the file deleted before or just after the refresh.
        w.write_by_rename("p.rhai", if i % 2 == 0 { PLACE_EXT } else { PLACE_HBM });
        std::thread::sleep(Duration::from_millis(gap_ms));
        std::fs::remove_file(w.path("p.rhai")).unwrap();
        w.wait(&format!("a gone row ({gap_ms} ms)"), |v| {
            status(v) == "gone"
        });
        w.write("p.rhai", PLACE_HBM);
        w.wait("the row back", |v| status(v) == "ok" && time(v) == t0);
    }
    assert_eq!(w.terminate().code(), Some(0));
}

/// 240 mixed edits: good and broken scripts, a runtime error, deletes, saves by rename, and the
/// scenario broken and restored. The final table equals a fresh `compare` of the final files,
/// and the process's memory stays flat.
#[test]
fn soak_mixed_edits_end_equal_to_a_fresh_compare_with_flat_memory() {
    let mut w = Watch::start(&[]);
    w.wait("the first run", |v| v["refresh"] == 1);
    let scenario = std::fs::read_to_string(w.path("s.toml")).unwrap();
    let goods = [
        PLACE_HBM,
        PLACE_EXT,
        "fn place(ctx) { if ctx.layer == 0 { \"hbm\" } else { \"ext\" } }\n",
    ];
    let broken = "fn place(ctx) { \"hbm\" \n";
    let failing = "fn place(ctx) { ctx.hbm_set(99).count; \"hbm\" }\n";
    let mut rng = 0x9E3779B97F4A7C15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let pid = w.child.id();
    let mut early_rss = 0;
    for i in 0..240 {
        let r = next();
        match r % 10 {
            0 => {
                std::fs::remove_file(w.path("p.rhai")).ok();
            }
            1 => w.write("s.toml", &scenario.replace("layers = 2", "layers = 0")),
            2 => w.write("s.toml", &scenario),
            3 => w.write("p.rhai", broken),
            4 => w.write_by_rename("p.rhai", failing),
            _ if r & 32 == 0 => w.write("p.rhai", goods[(r >> 8) as usize % 3]),
            _ => w.write_by_rename("p.rhai", goods[(r >> 8) as usize % 3]),
        }
        std::thread::sleep(Duration::from_millis(next() % 40));
        if i == 60 {
            early_rss = rss_kib(pid);
        }
    }
    // End on good files.
    w.write("s.toml", &scenario);
    w.write_by_rename("p.rhai", goods[2]);
    let fresh = Command::new(env!("CARGO_BIN_EXE_kvtier"))
        .current_dir(w.dir.path())
        .args([
            "compare",
            "s.toml",
            "--placement",
            "p.rhai",
            "--migration",
            "m.rhai",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        fresh.status.success(),
        "{}",
        String::from_utf8_lossy(&fresh.stderr)
    );
    let fresh: Value = serde_json::from_slice(&fresh.stdout).unwrap();
    let want = fresh[0]["decode_time_s"].as_f64().unwrap();
    let mut v = w.wait("the final table", |v| {
        status(v) == "ok" && time(v) == want && v["scenario_error"].is_null()
    });
    while let Ok(later) = w.lines.recv_timeout(Duration::from_secs(2)) {
        v = later;
    }
    assert_eq!((status(&v), time(&v)), ("ok", want));
    assert!(v["scenario_error"].is_null());
    let late_rss = rss_kib(pid);
    assert!(
        late_rss <= early_rss + early_rss / 2 + 8 * 1024,
        "memory grew from {early_rss} KiB to {late_rss} KiB"
    );
    assert_eq!(w.terminate().code(), Some(0), "no crash after 240 edits");
}
