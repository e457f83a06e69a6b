//! Shared helpers for the integration tests: the tiny scenario, policies built from closures, and
//! traces from text.
#![allow(dead_code)]

pub mod spy;

use std::path::Path;

use anyhow::Result;
use kvtier::engine::{self, Policy, Record, RunTotals, Sim};
use kvtier::memory::Tier;
use kvtier::scenario::{Scenario, ScenarioFile};
use kvtier::trace::text::TextTraceReader;
use kvtier::trace::TraceSource;

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// scenarios/tiny.toml, parsed, for tests to change field by field.
pub fn tiny_file() -> ScenarioFile {
    let text = std::fs::read_to_string(repo().join("scenarios/tiny.toml")).unwrap();
    toml::from_str(&text).unwrap()
}

pub fn build(f: ScenarioFile) -> Scenario {
    Scenario::from_file(f, None).unwrap()
}

pub type PlaceFn = Box<dyn FnMut(&mut Sim, usize) -> Result<Tier>>;
pub type StepFn = Box<dyn FnMut(&mut Sim) -> Result<()>>;
pub type LayerFn = Box<dyn FnMut(&mut Sim, usize) -> Result<()>>;

/// A policy made of a fixed placement and optional hooks.
pub struct TestPolicy {
    pub place: PlaceFn,
    pub on_step: Option<StepFn>,
    pub on_layer: Option<LayerFn>,
}

impl TestPolicy {
    pub fn fixed(t: Tier) -> TestPolicy {
        TestPolicy {
            place: Box::new(move |_, _| Ok(t)),
            on_step: None,
            on_layer: None,
        }
    }
}

impl Policy for TestPolicy {
    fn name(&self) -> String {
        "test".into()
    }
    fn place(&mut self, sim: &mut Sim, layer: usize) -> Result<Tier> {
        (self.place)(sim, layer)
    }
    fn has_on_step(&self) -> bool {
        self.on_step.is_some()
    }
    fn past_steps(&self) -> usize {
        kvtier::trace::PAST_STEPS
    }
    fn on_step(&mut self, sim: &mut Sim) -> Result<()> {
        self.on_step.as_mut().map_or(Ok(()), |f| f(sim))
    }
    fn has_on_layer(&self) -> bool {
        self.on_layer.is_some()
    }
    fn on_layer(&mut self, sim: &mut Sim, layer: usize) -> Result<()> {
        self.on_layer.as_mut().map_or(Ok(()), |f| f(sim, layer))
    }
}

/// A trace source reading kvtrace text from a string.
pub fn text_trace(text: &str) -> Box<dyn TraceSource> {
    Box::new(
        TextTraceReader::new(
            "test.kvtrace".into(),
            Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
        )
        .unwrap(),
    )
}

/// Runs with the scenario's own trace and returns every record.
pub fn run(sc: &Scenario, p: &mut dyn Policy) -> (Vec<Record>, RunTotals) {
    let mut recs = Vec::new();
    let t = engine::run(sc, p, &mut recs).unwrap();
    (recs, t)
}

/// Runs with a trace given as kvtrace text.
pub fn run_text(sc: &Scenario, p: &mut dyn Policy, trace: &str) -> (Vec<Record>, RunTotals) {
    let mut recs = Vec::new();
    let t = engine::run_with_trace(sc, text_trace(trace), p, &mut recs).unwrap();
    (recs, t)
}

/// The record of `(step, layer, sublayer)`.
pub fn row<'a>(recs: &'a [Record], step: usize, layer: Option<usize>, sub: &str) -> &'a Record {
    recs.iter()
        .find(|r| r.step == step && r.layer == layer && r.sublayer.name() == sub)
        .unwrap_or_else(|| panic!("no {sub} row at step {step} layer {layer:?}"))
}

pub fn has_row(recs: &[Record], step: usize, layer: Option<usize>, sub: &str) -> bool {
    recs.iter()
        .any(|r| r.step == step && r.layer == layer && r.sublayer.name() == sub)
}

/// A trace source over steps built in memory.
pub struct VecSource {
    pub dims: kvtier::trace::TraceDims,
    pub steps: std::collections::VecDeque<kvtier::trace::StepSkips>,
}

impl TraceSource for VecSource {
    fn dims(&self) -> kvtier::trace::TraceDims {
        self.dims
    }
    fn next_step(&mut self, out: &mut kvtier::trace::StepSkips) -> Result<()> {
        *out = self
            .steps
            .pop_front()
            .expect("asked for more steps than the trace has");
        Ok(())
    }
}

/// Every step of a source.
pub fn collect(src: &mut dyn TraceSource) -> Vec<kvtier::trace::StepSkips> {
    (0..src.dims().decode)
        .map(|_| {
            let mut s = kvtier::trace::StepSkips::default();
            src.next_step(&mut s).unwrap();
            s
        })
        .collect()
}

/// Positions not read at `(step, layer)`, straight from the trace window: the skipped ones, or
/// every position before the step when the whole layer is skipped.
pub fn not_read(sim: &Sim, step: usize, layer: usize) -> kvtier::tokenset::TokenSet {
    let ls = &sim.window.get(step).expect("step inside the window").layers[layer];
    let mut s = kvtier::tokenset::TokenSet::new(sim.sizes.positions());
    if ls.layer {
        s.insert_range(0, step);
    } else {
        s.union_with(&ls.tokens);
    }
    s
}

/// A test's outside dependency (a Python package, a browser) is missing: under CI (`CI` set)
/// the test fails, since CI installs them; elsewhere it says SKIPPED on stderr and returns
/// normally (README.md lists which tests need what).
pub fn missing_dependency(test: &str, what: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: {what} (.ci/run installs it)"
    );
    eprintln!("SKIPPED {test}: {what}");
}
