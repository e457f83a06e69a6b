//! kvtier: a simulator of where the KV cache and weights of a large language model live during
//! decode when GPU HBM is too small, and of strategies that place and migrate them.
//!
//! Data flows one way (see docs/ARCHITECTURE.md):
//! [`scenario`] -> [`memory`] + [`trace`] -> [`engine`] (calls a [`engine::Policy`]) ->
//! [`results`].

pub mod bench;
pub mod bounds;
pub mod compare;
pub mod digest;
pub mod engine;
pub mod input;
pub mod interrupt;
pub mod memory;
pub mod optimize;
pub mod output;
pub mod plot;
pub mod policy;
pub mod records;
pub mod report;
pub mod results;
pub mod rng;
pub mod scenario;
pub mod series;
pub mod study;
pub mod sweep;
pub mod sweep_run;
pub mod sweep_view;
pub mod tokenset;
pub mod trace;
pub mod watch;

use std::path::Path;

use anyhow::{bail, Result};

use crate::engine::{FixedPlacement, Policy, RecordSink};
use crate::memory::Tier;
use crate::results::{CsvSink, Summary};
use crate::scenario::Scenario;

/// Runs `f`, turning a panic into an error. A panic is a bug in kvtier; caught per pair, it
/// becomes that pair's error instead of ending a whole comparison, sweep or watch session.
pub fn no_panic<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            bail!("internal error (a bug in kvtier; please report it with the inputs): {msg}")
        }
    }
}

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
    simulate_traced(scenario, trace::open(scenario)?, policy, csv, extra)
}

/// [`simulate_into`] with the trace read from `source` (a [`trace::shared::SharedReader`] when
/// several runs share one trace).
pub fn simulate_traced(
    scenario: &Scenario,
    source: Box<dyn trace::TraceSource>,
    policy: &mut dyn Policy,
    csv: Option<&Path>,
    extra: &mut dyn RecordSink,
) -> Result<Summary> {
    let totals = match csv {
        None => engine::run_with_trace(scenario, source, policy, extra)?,
        Some(path) => {
            let mut totals = None;
            output::write_atomic(path, |w| {
                let mut sink = CsvSink::new(w)?;
                let mut tee = engine::Tee(&mut sink, extra);
                totals = Some(engine::run_with_trace(scenario, source, policy, &mut tee)?);
                Ok(())
            })?;
            let summary = Summary::new(
                scenario,
                policy.name(),
                &totals.expect("set by a successful run"),
            );
            write_csv_meta(path, scenario, &summary)?;
            return Ok(summary);
        }
    };
    Ok(Summary::new(scenario, policy.name(), &totals))
}

/// The metadata of a per-sublayer CSV, in `FILE.meta.json` beside it (SPEC 4: the idealized
/// mark of a per-sublayer CSV goes there, so the CSV itself is only the header and the rows).
#[derive(serde::Serialize)]
struct CsvMeta<'a> {
    kvtier: &'a str,
    /// What the CSV's columns are.
    columns: &'a str,
    scenario: &'a str,
    /// FNV-1a of the scenario as parsed (its every field, after any sweep's changes): two CSVs
    /// with the same digest come from the same scenario (with the same kvtier version).
    scenario_digest: String,
    policy: &'a str,
    idealized: Option<&'a str>,
    idealized_over_gb: Option<f64>,
    summary: &'a Summary,
}

/// Where the metadata of the per-sublayer CSV `csv` goes: `FILE.meta.json`.
pub fn csv_meta_path(csv: &Path) -> std::path::PathBuf {
    let mut name = csv.as_os_str().to_owned();
    name.push(".meta.json");
    name.into()
}

fn write_csv_meta(csv: &Path, scenario: &Scenario, summary: &Summary) -> Result<()> {
    let meta = CsvMeta {
        kvtier: env!("CARGO_PKG_VERSION"),
        columns: "SPEC 9 and 9b: one row per (step, layer, sublayer) and per non-empty step phase",
        scenario: &scenario.name,
        scenario_digest: digest::of(format!("{:?}", scenario.file).as_bytes()),
        policy: &summary.policy,
        idealized: summary.idealized.as_deref(),
        idealized_over_gb: summary.idealized_over_gb,
        summary,
    };
    output::write_atomic(&csv_meta_path(csv), |w| {
        serde_json::to_writer_pretty(&mut *w, &meta)?;
        writeln!(w)?;
        Ok(())
    })
}
