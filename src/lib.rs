//! kvtier: a simulator of where the KV cache and weights of a large language model live during
//! decode when GPU HBM is too small, and of strategies that place and migrate them.
//!
//! Data flows one way (see docs/ARCHITECTURE.md):
//! [`scenario`] -> [`memory`] + [`trace`] -> [`engine`] (calls a [`engine::Policy`]) ->
//! [`results`].

pub mod bounds;
pub mod compare;
pub mod engine;
pub mod memory;
pub mod output;
pub mod plot;
pub mod policy;
pub mod report;
pub mod results;
pub mod rng;
pub mod scenario;
pub mod series;
pub mod study;
pub mod sweep;
pub mod sweep_run;
pub mod tokenset;
pub mod trace;
pub mod watch;

use std::path::Path;

use anyhow::{bail, Result};

use crate::engine::{FixedPlacement, Policy, RecordSink};
use crate::memory::Tier;
use crate::results::{CsvSink, Summary};
use crate::scenario::Scenario;

/// The native placements built into the core, by name.
pub fn native_policy(name: &str) -> Result<Box<dyn Policy>> {
    match name {
        "hbm" => Ok(Box::new(FixedPlacement(Tier::Hbm))),
        "ext" => Ok(Box::new(FixedPlacement(Tier::Ext))),
        other => bail!("unknown placement {other:?}: the native placements are `hbm` and `ext`"),
    }
}

/// Runs one scenario with one policy; writes the per-sublayer CSV to `csv` if given (atomically:
/// a failed run leaves no file).
pub fn simulate(
    scenario: &Scenario,
    policy: &mut dyn Policy,
    csv: Option<&Path>,
) -> Result<Summary> {
    simulate_into(scenario, policy, csv, &mut engine::Discard)
}

/// [`simulate`], also sending every record to `extra` (e.g. a [`series::StepSeries`] for plots).
pub fn simulate_into(
    scenario: &Scenario,
    policy: &mut dyn Policy,
    csv: Option<&Path>,
    extra: &mut dyn RecordSink,
) -> Result<Summary> {
    let totals = match csv {
        None => engine::run(scenario, policy, extra)?,
        Some(path) => {
            let mut totals = None;
            output::write_atomic(path, |w| {
                let note = scenario.idealized_note();
                let mut sink = CsvSink::new(w, note.as_deref())?;
                let mut tee = engine::Tee(&mut sink, extra);
                totals = Some(engine::run(scenario, policy, &mut tee)?);
                Ok(())
            })?;
            totals.expect("set by a successful run")
        }
    };
    Ok(Summary::new(scenario, policy.name(), &totals))
}
