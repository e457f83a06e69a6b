//! SPEC v2 leaves v1 alone: a scenario that uses no v2 field gives the same SPEC 9 columns in its
//! per-sublayer CSV and the same v1 summary figures as before v2 existed.
//!
//! `tests/v1_digests.txt` holds, per run, a CRC-32 and length of the CSV cut to its first 12
//! columns and of the v1 summary fields. They were computed by this test on the last commit
//! before v2 (f47dbb4), by running it with `KVTIER_V1_DIGESTS_OUT=FILE`; they are never
//! regenerated from later code, so a change to any v1 number fails here.
//!
//! The runs: every shipped scenario that uses no v2 field with its own pair, in full; each of
//! them whose trace allows it cut to 24 decode steps, with seven pairs that between them use every
//! reference placement and migration; and 32 variants of tiny.toml (every combination of the v1
//! modes: hierarchy, access, overlap, duplex, passive migration) with skipping, the same pairs.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::repo;
use kvtier::policy::{self, PolicyRef};
use kvtier::results::Summary;
use kvtier::scenario::{
    Access, ByteSize, Duplex, Hierarchy, LayerRates, MigrationMode, Overlap, Scenario,
    ScenarioFile, SkipSource,
};

/// Seven pairs that between them use every placement and every migration.
const PAIRS: [(&str, &str); 7] = [
    ("prefer_hbm", "alpha"),
    ("split_token", "lookahead"),
    ("lookahead_batch", "lookahead_batch"),
    ("batch_ratio", "past_window"),
    ("layer_importance", "prior"),
    ("hbm", "skipped_tokens"),
    ("ext", "none"),
];

fn policy_ref(name: &str, kind: &str) -> PolicyRef {
    match name {
        "hbm" | "ext" | "none" => PolicyRef::Native(name.into()),
        _ => PolicyRef::Script(repo().join(format!("policies/{kind}/{name}.rhai"))),
    }
}

/// CRC-32 and length of `bytes`, as one token.
fn digest(bytes: &[u8]) -> String {
    format!("{:08x}:{}", crc32fast::hash(bytes), bytes.len())
}

/// The v1 summary fields, each in Rust's exact float form.
fn summary_text(s: &Summary) -> String {
    format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        s.scenario,
        s.policy,
        s.decode_time_s,
        s.tokens_per_s,
        s.ideal_bound_s,
        s.x_ideal,
        s.alpha_attn,
        s.alpha_mlp,
        s.alpha_bytes,
        s.moved_to_hbm_bytes,
        s.moved_to_ext_bytes,
        s.passive_bytes,
        s.fallbacks,
        s.refused_bytes,
        s.peak_hbm_kv_bytes,
        s.kv_budget_bytes,
        s.hbm_read_bytes,
        s.ext_read_bytes,
        s.idealized
    )
}

/// The CSV with every line cut to its first 12 fields (the SPEC 9 columns); comment lines kept.
fn v1_columns(csv: &str) -> String {
    let mut out = String::with_capacity(csv.len());
    for line in csv.lines() {
        if line.starts_with('#') {
            out += line;
        } else {
            let fields: Vec<&str> = line.split(',').take(12).collect();
            out += &fields.join(",");
        }
        out.push('\n');
    }
    out
}

/// Runs one pair and returns `label csv=DIGEST summary=DIGEST`.
fn run_digest(label: &str, sc: &Scenario, placement: &str, migration: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("run.csv");
    let p = policy_ref(placement, "placement");
    let m = policy_ref(migration, "migration");
    let params = policy::params(sc, &[]).unwrap();
    let mut pol = policy::build(&p, &m, params).unwrap();
    let s =
        kvtier::simulate(sc, pol.as_mut(), Some(&csv)).unwrap_or_else(|e| panic!("{label}: {e:#}"));
    // Before issue 15 an idealized run's CSV began with `# <mark>`; the mark now lives in the
    // CSV's metadata file. Put it back in front to compare with the digests taken before v2.
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(kvtier::csv_meta_path(&csv)).unwrap())
            .unwrap();
    let mut text = match meta["idealized"].as_str() {
        Some(mark) => format!("# {mark}\n"),
        None => String::new(),
    };
    text += &std::fs::read_to_string(&csv).unwrap();
    format!(
        "{label} csv={} summary={}",
        digest(v1_columns(&text).as_bytes()),
        digest(summary_text(&s).as_bytes())
    )
}

fn shipped() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

fn stem(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

/// Whether a scenario sets any field that SPEC v2 added (such a scenario has no v1 numbers).
fn uses_v2(f: &ScenarioFile) -> bool {
    f.model.q_heads.is_some()
        || f.ext.link_read_bandwidth.is_some()
        || f.ext.link_write_bandwidth.is_some()
        || f.gpu.flops.is_some()
        || f.gpu.sublayer_overhead.is_some()
        || f.memory.migration != MigrationMode::Sync
        || f.memory.copy_read_bandwidth.is_some()
        || f.memory.copy_write_bandwidth.is_some()
        || f.memory.block_tokens != 1
        || f.model.kv_dtype_bits.is_some()
        || f.model.kv_latent.is_some()
        || f.skip.young_skip > 0.0
}

fn all_digests() -> Vec<String> {
    let mut out = Vec::new();
    for path in shipped() {
        let sc = Scenario::load(&path).unwrap();
        if uses_v2(&sc.file) || !sc.provenance.is_empty() {
            continue;
        }
        let (p, m) = (
            sc.file.policy.placement.clone(),
            sc.file.policy.migration.clone(),
        );
        out.push(run_digest(&format!("{}:own", stem(&path)), &sc, &p, &m));
        // A replayed file fixes the run's dimensions unless it is scaled.
        let fixed_dims = sc.file.skip.source == SkipSource::File && !sc.file.skip.scale;
        let short = if fixed_dims {
            sc.clone()
        } else {
            let mut f = sc.file.clone();
            f.workload.decode = f.workload.decode.min(24);
            Scenario::from_file(f, Some(&path)).unwrap()
        };
        for (p, m) in PAIRS {
            out.push(run_digest(
                &format!("{}:short:{p}+{m}", stem(&path)),
                &short,
                p,
                m,
            ));
        }
    }
    for bits in 0..32u32 {
        let mut f = common::tiny_file();
        f.workload.prefill = 40;
        f.workload.decode = 12;
        f.hbm.capacity = ByteSize(1200 + 5000);
        f.skip.source = SkipSource::Uniform;
        f.skip.rate = 0.3;
        f.skip.layer_skip_rate = LayerRates::Mean(0.2);
        f.skip.mlp_skip_rate = LayerRates::Mean(0.2);
        f.initial.prefill_kv_on_hbm = 0.5;
        if bits & 1 != 0 {
            f.memory.hierarchy = Hierarchy::Inclusive;
        }
        if bits & 2 != 0 {
            f.ext.access = Access::NearData;
        }
        if bits & 4 != 0 {
            f.memory.overlap = Overlap::Serial;
        }
        if bits & 8 != 0 {
            f.ext.link_duplex = Duplex::Full;
        }
        if bits & 16 != 0 {
            f.memory.passive_migration = true;
        }
        let sc = Scenario::from_file(f, None).unwrap();
        for (p, m) in PAIRS {
            out.push(run_digest(&format!("tiny-modes-{bits}:{p}+{m}"), &sc, p, m));
        }
    }
    out
}

#[test]
fn v1_scenarios_give_the_numbers_they_gave_before_v2() {
    let got = all_digests();
    if let Ok(out) = std::env::var("KVTIER_V1_DIGESTS_OUT") {
        std::fs::write(out, got.join("\n") + "\n").unwrap();
        return;
    }
    let text = std::fs::read_to_string(repo().join("tests/v1_digests.txt")).unwrap();
    let want: BTreeMap<&str, &str> = text
        .lines()
        .map(|l| l.split_once(' ').expect("label digest"))
        .collect();
    assert_eq!(want.len(), got.len(), "a run was added or removed");
    let mut bad = Vec::new();
    for line in &got {
        let (label, d) = line.split_once(' ').unwrap();
        match want.get(label) {
            Some(w) if *w == d => {}
            Some(w) => bad.push(format!("{label}: now {d}, before v2 {w}")),
            None => bad.push(format!("{label}: no digest from before v2")),
        }
    }
    assert!(bad.is_empty(), "v1 numbers changed:\n{}", bad.join("\n"));
}
