//! A policy wrapper that records what a scripted policy did (its `place` answers, and the
//! residency around each hook call), and small scenarios to run it on.

use std::path::{Path, PathBuf};

use anyhow::Result;
use kvtier::engine::{self, Policy, Record, Sim};
use kvtier::memory::Tier;
use kvtier::policy::{self, PolicyRef};
use kvtier::scenario::Scenario;
use kvtier::tokenset::TokenSet;

pub fn script(kind: &str, name: &str) -> PolicyRef {
    PolicyRef::Script(PathBuf::from(format!("policies/{kind}/{name}.rhai")))
}

pub fn native(name: &str) -> PolicyRef {
    PolicyRef::Native(name.into())
}

/// State before a hook call.
pub struct Before {
    pub hbm: Vec<TokenSet>,
    pub used: u64,
}

/// What the hook did, seen after the call.
pub struct Call<'s> {
    pub step: usize,
    /// `None` for on_step.
    pub layer: Option<usize>,
    pub before: Before,
    pub sim: &'s Sim,
}

impl Call<'_> {
    /// Entries that left HBM at `layer` during the call.
    pub fn demoted(&self, layer: usize) -> TokenSet {
        let mut d = self.before.hbm[layer].clone();
        d.subtract(self.sim.memory.hbm(layer));
        d
    }
    /// Entries that arrived on HBM at `layer` during the call.
    pub fn promoted(&self, layer: usize) -> TokenSet {
        let mut p = self.sim.memory.hbm(layer).clone();
        p.subtract(&self.before.hbm[layer]);
        p
    }
}

pub struct Spy<'a> {
    pub inner: Box<dyn Policy>,
    pub places: Vec<(usize, usize, Tier)>,
    pub after: Box<dyn FnMut(&Call) + 'a>,
}

impl<'a> Spy<'a> {
    pub fn new(p: &PolicyRef, m: &PolicyRef, sc: &Scenario, params: &[&str]) -> Spy<'a> {
        let params: Vec<String> = params.iter().map(|s| s.to_string()).collect();
        Spy {
            inner: policy::build(p, m, policy::params(sc, &params).unwrap()).unwrap(),
            places: Vec::new(),
            after: Box::new(|_| {}),
        }
    }
    pub fn after(mut self, f: impl FnMut(&Call) + 'a) -> Self {
        self.after = Box::new(f);
        self
    }
    pub fn snapshot(sim: &Sim) -> Before {
        Before {
            hbm: (0..sim.sizes.layers)
                .map(|l| sim.memory.hbm(l).clone())
                .collect(),
            used: sim.memory.hbm_used_bytes(),
        }
    }
    pub fn run(&mut self, sc: &Scenario) -> Vec<Record> {
        let mut records = Vec::new();
        engine::run(sc, self, &mut records).unwrap();
        records
    }
    /// Runs on a trace given as kvtrace text.
    pub fn run_trace(&mut self, sc: &Scenario, trace: &str) -> Vec<Record> {
        let mut records = Vec::new();
        engine::run_with_trace(sc, super::text_trace(trace), self, &mut records).unwrap();
        records
    }
}

impl Policy for Spy<'_> {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn past_steps(&self) -> usize {
        self.inner.past_steps()
    }
    fn place(&mut self, sim: &mut Sim, layer: usize) -> Result<Tier> {
        let t = self.inner.place(sim, layer)?;
        self.places.push((sim.step, layer, t));
        Ok(t)
    }
    fn has_initial(&self) -> bool {
        self.inner.has_initial()
    }
    fn initial(&mut self, sim: &mut Sim, layer: usize) -> Result<Option<TokenSet>> {
        self.inner.initial(sim, layer)
    }
    fn has_on_step(&self) -> bool {
        self.inner.has_on_step()
    }
    fn on_step(&mut self, sim: &mut Sim) -> Result<()> {
        let before = Spy::snapshot(sim);
        self.inner.on_step(sim)?;
        (self.after)(&Call {
            step: sim.step,
            layer: None,
            before,
            sim,
        });
        Ok(())
    }
    fn has_on_layer(&self) -> bool {
        self.inner.has_on_layer()
    }
    fn on_layer(&mut self, sim: &mut Sim, layer: usize) -> Result<()> {
        let before = Spy::snapshot(sim);
        self.inner.on_layer(sim, layer)?;
        (self.after)(&Call {
            step: sim.step,
            layer: Some(layer),
            before,
            sim,
        });
        Ok(())
    }
}

pub fn tiny() -> Scenario {
    Scenario::load(Path::new("scenarios/tiny.toml")).unwrap()
}

/// A small scenario: 2 layers, entries of 100 B, weights 1200 B (all on HBM, capacity adds the
/// KV budget), tiny's bandwidths; `extra` adds or replaces sections.
pub fn small(prefill: u64, decode: u64, kv_budget_bytes: u64, skip: &str, extra: &str) -> Scenario {
    Scenario::from_toml(
        &small_text(prefill, decode, kv_budget_bytes, skip, extra),
        None,
    )
    .unwrap()
}

/// The TOML of [`small`] (seed 7), for tests that change it further.
pub fn small_text(
    prefill: u64,
    decode: u64,
    kv_budget_bytes: u64,
    skip: &str,
    extra: &str,
) -> String {
    format!(
        r#"
name = "small"
seed = 7
[model]
layers = 2
params = 600
dtype_bytes = 2
kv_bytes = "100 B"
[workload]
prefill = {prefill}
decode = {decode}
[hbm]
capacity = "{cap} B"
bandwidth = "100 B/s"
[ext]
link_bandwidth = "20 B/s"
internal_bandwidth = "40 B/s"
[skip]
{skip}
{extra}
"#,
        cap = 1200 + kv_budget_bytes
    )
}
