//! The reference scripts under async migration (SPEC 12): every pair runs unchanged in both
//! modes, and the alpha script does not pile up the copy queue.

mod common;

use std::path::PathBuf;

use anyhow::Result;
use common::*;
use kvtier::engine::{self, Policy, Sim};
use kvtier::memory::Tier;
use kvtier::policy::{self, PolicyRef};
use kvtier::scenario::{Bandwidth, ByteSize, MigrationMode, Scenario, SkipSource};

/// A small heavy-hitter scenario whose KV budget binds early: 4 layers, 256 prefill positions
/// (60% on HBM), 48 decode steps, room for 8 more entries; copy engine at `copy` B/s (a row
/// takes minutes at tiny's 100 B/s of HBM: 0.05 B/s copies an entry in several rows).
fn scenario(mode: MigrationMode, copy: f64) -> Scenario {
    let mut f = tiny_file();
    f.model.layers = 4;
    f.model.params = 1200.0;
    f.workload.prefill = 256;
    f.workload.decode = 48;
    f.skip.source = SkipSource::HeavyHitter;
    f.skip.rate = 0.3;
    f.skip.recent = 16;
    f.skip.sinks = 2;
    f.skip.page = 4;
    f.skip.dense_layers = 1;
    f.initial.prefill_kv_on_hbm = 0.6;
    // floor(256 x 0.6) = 153 positions x 4 layers x 100 B = 61,200 B on HBM; 8 entries of room.
    f.hbm.kv_budget = Some(ByteSize(61_200 + 800));
    f.memory.migration = mode;
    f.memory.copy_read_bandwidth = Some(Bandwidth(copy));
    f.memory.copy_write_bandwidth = Some(Bandwidth(copy));
    Scenario::from_file(f, None).unwrap()
}

fn script(kind: &str, name: &str) -> PolicyRef {
    PolicyRef::Script(repo().join(format!("policies/{kind}/{name}.rhai")))
}

fn names(kind: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo().join("policies").join(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn every_reference_pair_runs_in_both_modes() {
    for mode in [MigrationMode::Sync, MigrationMode::Async] {
        let sc = scenario(mode, 50.0);
        for p in names("placement") {
            for m in names("migration") {
                let mut pol = policy::build(
                    &script("placement", &p),
                    &script("migration", &m),
                    Default::default(),
                )
                .unwrap();
                let s = kvtier::simulate(&sc, pol.as_mut(), None)
                    .unwrap_or_else(|e| panic!("{p} + {m} in {mode:?}: {e:#}"));
                assert!(
                    s.decode_time_s >= s.placement_bound_s * (1.0 - 1e-9),
                    "{p} + {m}"
                );
                if mode == MigrationMode::Sync {
                    assert_eq!(s.queued_at_end_bytes, 0);
                }
            }
        }
    }
}

/// Forwards to a policy and records the largest copy queue seen after its hooks.
struct QueueWatch {
    inner: Box<dyn Policy>,
    max_queue: u64,
}

impl Policy for QueueWatch {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn place(&mut self, sim: &mut Sim, layer: usize) -> Result<Tier> {
        self.inner.place(sim, layer)
    }
    fn past_steps(&self) -> usize {
        self.inner.past_steps()
    }
    fn has_on_layer(&self) -> bool {
        self.inner.has_on_layer()
    }
    fn on_layer(&mut self, sim: &mut Sim, layer: usize) -> Result<()> {
        self.inner.on_layer(sim, layer)?;
        self.max_queue = self.max_queue.max(sim.memory.copy_queue_bytes());
        Ok(())
    }
}

/// The alpha script, or a copy of it without its async guard, with small caps: at most 5
/// entries (500 B) per direction per call, no new move while more than 1,000 B are queued.
fn alpha_queue(guarded: bool) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("policies/migration/alpha.rhai")).unwrap();
    let guard = "    if backlog > 0 && (backlog > ctx.param(\"max_queue\", cap) || !ctx.queued(l).is_empty()) {\n        return;\n    }\n";
    assert!(text.contains(guard), "the alpha script's async guard moved");
    let path: PathBuf = dir.path().join("alpha.rhai");
    let body = if guarded {
        text
    } else {
        text.replace(guard, "")
    };
    std::fs::write(&path, body).unwrap();
    let sc = scenario(MigrationMode::Async, 0.05);
    let mut params = policy::params(&sc, &[]).unwrap();
    for (k, v) in [("max_bytes", 500), ("max_queue", 1000), ("dead_band", 0)] {
        params.insert(k.into(), rhai::Dynamic::from_int(v));
    }
    let inner = policy::build(
        &PolicyRef::Native("hbm".into()),
        &PolicyRef::Script(path),
        params,
    )
    .unwrap();
    let mut w = QueueWatch {
        inner,
        max_queue: 0,
    };
    let mut recs = Vec::new();
    engine::run(&sc, &mut w, &mut recs).unwrap();
    w.max_queue
}

#[test]
fn the_alpha_script_does_not_pile_up_the_copy_queue() {
    // Guarded: a call queues only while at most 1,000 B wait, and at most 500 B each way.
    let guarded = alpha_queue(true);
    assert!(guarded <= 1000 + 2 * 500, "queue reached {guarded} B");
    // Without the guard the same script keeps asking for what is still being copied.
    let unguarded = alpha_queue(false);
    eprintln!("largest copy queue: guarded {guarded} B, unguarded {unguarded} B");
    assert!(
        unguarded > 2 * guarded,
        "guarded {guarded} B, unguarded {unguarded} B"
    );
}
