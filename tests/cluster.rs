//! The cluster recipes of docs/studies.md, run for real: a sharded study through GNU parallel
//! and through a Slurm job array (a single-node cluster that tools/slurm-single-node.sh starts),
//! each merged and compared with the unsharded study byte for byte.
//!
//! Needs GNU parallel, and for Slurm root with Debian's slurm-wlm and munge (`.ci/run` installs
//! them); without them the tests fail under CI and say SKIPPED elsewhere.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use common::repo;

/// Whether `program` is on the PATH (`sbatch --version` itself needs a cluster configuration).
fn has(program: &str) -> bool {
    Process::new("bash")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A small study (tiny, 3 points x 2 pairs) and its unsharded markdown table.
fn study(dir: &Path) -> (PathBuf, String) {
    let f = dir.join("small.toml");
    std::fs::write(
        &f,
        format!(
            "title = \"cluster recipe\"\nbase = {:?}\nplacements = [\"prefer_hbm\"]\nmigrations = [\"none\", \"alpha\"]\n[[vary]]\nkey = \"workload.decode\"\nvalues = [2, 3, 4]\n",
            repo().join("scenarios/tiny.toml").display().to_string()
        ),
    )
    .unwrap();
    let o = Process::new(kvtier())
        .arg("study")
        .arg(&f)
        .args(["--format", "markdown"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (f, String::from_utf8(o.stdout).unwrap())
}

fn kvtier() -> PathBuf {
    assert_cmd::cargo::cargo_bin("kvtier")
}

fn merged(results: &Path) -> String {
    let mut parts: Vec<PathBuf> = std::fs::read_dir(results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    parts.sort();
    let o = Process::new(kvtier())
        .arg("merge")
        .args(&parts)
        .args(["--format", "markdown"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn gnu_parallel_recipe_merges_to_the_unsharded_study() {
    if !has("parallel") {
        common::missing_dependency(
            "gnu_parallel_recipe_merges_to_the_unsharded_study",
            "GNU parallel is not installed (apt-get install parallel)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (study, whole) = study(dir.path());
    let results = dir.path().join("results");
    std::fs::create_dir(&results).unwrap();
    // docs/studies.md, "With GNU parallel on one machine", with N = 3 and this study.
    let recipe = format!(
        "N=3\nparallel --will-cite -j 2 \"RAYON_NUM_THREADS=1 {k} study {s} --shard {{}}/$N -o {r}/part-{{}}.json\" ::: $(seq 1 $N)\n",
        k = kvtier().display(),
        s = study.display(),
        r = results.display()
    );
    let o = Process::new("bash").args(["-c", &recipe]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(merged(&results), whole);
}

/// Stops the single-node cluster however the test ends.
struct Cluster(PathBuf);

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Process::new(repo().join("tools/slurm-single-node.sh"))
            .arg("stop")
            .arg(&self.0)
            .output();
    }
}

#[test]
fn slurm_job_array_recipe_merges_to_the_unsharded_study() {
    let root = Process::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    if !(root && has("slurmctld") && has("slurmd") && has("sbatch") && has("munged")) {
        common::missing_dependency(
            "slurm_job_array_recipe_merges_to_the_unsharded_study",
            "a single-node Slurm needs root, slurm-wlm and munge (apt-get install slurm-wlm munge)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (study, whole) = study(dir.path());
    let state = dir.path().join("slurm");
    let cluster = Cluster(state.clone());
    let o = Process::new(repo().join("tools/slurm-single-node.sh"))
        .arg("start")
        .arg(&state)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let conf = state.join("slurm.conf");
    let results = dir.path().join("results");
    // docs/studies.md, "As a Slurm job array", with N = 3, one CPU per task and this study.
    let sbatch = dir.path().join("study.sbatch");
    std::fs::write(
        &sbatch,
        format!(
            "#!/bin/bash\n#SBATCH --job-name=kvtier-test\n#SBATCH --array=1-3\n#SBATCH --cpus-per-task=1\n#SBATCH --time=00:10:00\nN=3\nexport RAYON_NUM_THREADS=$SLURM_CPUS_PER_TASK\nmkdir -p {r}\n{k} study {s} \\\n    --shard \"$SLURM_ARRAY_TASK_ID/$N\" -o \"{r}/part-$SLURM_ARRAY_TASK_ID.json\"\n",
            r = results.display(),
            k = kvtier().display(),
            s = study.display()
        ),
    )
    .unwrap();
    let md = dir.path().join("merged.md");
    // The recipe's two submissions: the array, then the merge once every task succeeded.
    let script = format!(
        "set -e\njobid=$(sbatch --parsable -o {d}/slurm-%a.out {b})\nsbatch --wait -o {d}/merge.out --dependency=afterok:$jobid --wrap \"{k} merge {r}/part-*.json --format markdown -o {m}\"\n",
        d = dir.path().display(),
        b = sbatch.display(),
        k = kvtier().display(),
        r = results.display(),
        m = md.display()
    );
    let o = Process::new("bash")
        .args(["-c", &script])
        .current_dir(dir.path())
        .env("SLURM_CONF", &conf)
        .output()
        .unwrap();
    let logs = std::fs::read_to_string(state.join("log/slurmd.log")).unwrap_or_default();
    assert!(
        o.status.success(),
        "{}\n{}\nslurmd.log:\n{logs}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(std::fs::read_to_string(&md).unwrap(), whole);
    assert_eq!(merged(&results), whole);
    drop(cluster);
}
