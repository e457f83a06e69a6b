//! `kvtier._native`: the kvtier engine as a Python extension module.
//!
//! Thin on purpose: every call takes and returns plain data (text, JSON, byte columns) and the
//! Python package around it (`python/kvtier/`) makes Scenario objects, DataFrames and typed
//! exceptions of it. Nothing here simulates: it calls the same library functions as the
//! command line, so a result from Python is the CLI's, bit for bit.
//!
//! Long calls run on a worker thread while the calling thread waits without the GIL, waking
//! every 50 ms to let Python handle signals: Ctrl-C raises `KeyboardInterrupt` after asking
//! the runs in flight to stop ([`kvtier::interrupt`]).

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use kvtier::compare::GroupBy;
use kvtier::engine::{Record, RecordSink};
use kvtier::policy::{self, InlineScript, Kind, PolicyRef};
use kvtier::results::Format;
use kvtier::scenario::Scenario;

create_exception!(
    _native,
    NativeError,
    PyException,
    "A kvtier error: args are (kind, message, file, line, column); the package raises it again \
     as ScenarioError, PolicyError or Error."
);

/// Where an error arose, which decides its Python class when its position does not.
#[derive(Clone, Copy)]
enum Stage {
    Scenario,
    Policy,
    Run,
}

/// `FILE:LINE:COL: ` at the head of the innermost message that has one: kvtier's messages
/// start with the position they are about (`policies/x.rhai:3:5: in place (step 4, layer 0):
/// ...`, `s.toml:2:10: field ...`); contexts are joined before them with `: `.
fn location(text: &str) -> Option<Position> {
    for (i, _) in text.match_indices(": ") {
        // `head` ends with `FILE:LINE:COL`.
        let head = &text[..i];
        let mut parts = head.rsplitn(3, ':');
        let (Some(col), Some(line), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let (Ok(line), Ok(col)) = (line.parse::<u64>(), col.parse::<u64>()) else {
            continue;
        };
        // The file starts after the last context separator (or the text's start).
        let file = file.rsplit(": ").next().unwrap_or(file).trim();
        if !file.is_empty() && !file.contains('\n') {
            return Some((file.to_string(), line, col));
        }
    }
    None
}

/// A script's file as its messages name it: `x.rhai`, or `<name>` for built-in and inline ones.
fn is_script(file: &str) -> bool {
    file.ends_with(".rhai") || (file.starts_with('<') && file.ends_with('>'))
}

/// The class of an error message arising while pairs run (a compare's or sweep's error row):
/// `(kind, file, line, column)`.
#[pyfunction]
fn classify(text: &str) -> (&'static str, Option<String>, Option<u64>, Option<u64>) {
    let (kind, at) = kind_of(Stage::Run, text);
    match at {
        Some((f, l, c)) => (kind, Some(f), Some(l), Some(c)),
        None => (kind, None, None, None),
    }
}

type Position = (String, u64, u64);

fn kind_of(stage: Stage, text: &str) -> (&'static str, Option<Position>) {
    let at = location(text);
    let kind = match (&at, stage) {
        (Some((f, _, _)), _) if is_script(f) => "policy",
        (Some((f, _, _)), _) if f.ends_with(".toml") => "scenario",
        (_, Stage::Scenario) => "scenario",
        (_, Stage::Policy) => "policy",
        (_, Stage::Run) => "error",
    };
    (kind, at)
}

/// The exception of an error message arising at `stage`.
fn native_error(stage: Stage, text: String) -> PyErr {
    let (kind, at) = kind_of(stage, &text);
    let (file, line, col) = match at {
        Some((f, l, c)) => (Some(f), Some(l), Some(c)),
        None => (None, None, None),
    };
    NativeError::new_err((kind, text, file, line, col))
}

fn fail(stage: Stage) -> impl Fn(anyhow::Error) -> PyErr {
    move |e| native_error(stage, format!("{e:#}"))
}

/// Runs `job` on a worker thread; the calling thread waits without the GIL and checks for
/// signals every 50 ms. On Ctrl-C it asks the runs to stop, waits for them and returns the
/// `KeyboardInterrupt`.
fn call<T: Send>(py: Python<'_>, job: impl FnOnce() -> Result<T> + Send) -> PyResult<Result<T>> {
    let done: (Mutex<Option<Result<T>>>, Condvar) = (Mutex::new(None), Condvar::new());
    std::thread::scope(|s| {
        s.spawn(|| {
            let r = kvtier::no_panic(job);
            *done.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            done.1.notify_all();
        });
        let wait = |timeout: Option<Duration>| -> Option<Result<T>> {
            let mut slot = done.0.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if let Some(r) = slot.take() {
                    return Some(r);
                }
                match timeout {
                    Some(t) => {
                        let (g, res) = done
                            .1
                            .wait_timeout(slot, t)
                            .unwrap_or_else(|p| p.into_inner());
                        slot = g;
                        if res.timed_out() {
                            return slot.take();
                        }
                    }
                    None => slot = done.1.wait(slot).unwrap_or_else(|p| p.into_inner()),
                }
            }
        };
        loop {
            if let Some(r) = py.detach(|| wait(Some(Duration::from_millis(50)))) {
                return Ok(r);
            }
            if let Err(interrupt) = py.check_signals() {
                kvtier::interrupt::request();
                py.detach(|| wait(None));
                kvtier::interrupt::clear();
                return Err(interrupt);
            }
        }
    })
}

/// A checked scenario, with the table it was made from (for `with_` and sweeps).
#[pyclass(frozen, module = "kvtier._native")]
struct NativeScenario {
    table: toml::Table,
    path: Option<PathBuf>,
    scenario: Scenario,
}

/// A JSON value (from Python) as a TOML one.
fn toml_of(v: serde_json::Value) -> Result<toml::Value> {
    use serde_json::Value as J;
    Ok(match v {
        J::Bool(b) => toml::Value::Boolean(b),
        J::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(
                n.as_f64()
                    .ok_or_else(|| anyhow!("{n}: out of TOML's range"))?,
            ),
        },
        J::String(s) => toml::Value::String(s),
        J::Array(a) => toml::Value::Array(a.into_iter().map(toml_of).collect::<Result<_>>()?),
        J::Object(o) => toml::Value::Table(
            o.into_iter()
                .map(|(k, v)| Ok((k, toml_of(v)?)))
                .collect::<Result<_>>()?,
        ),
        J::Null => anyhow::bail!("None has no TOML form: leave the field out instead"),
    })
}

fn parse_json(text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).context("not JSON (a bug in the kvtier package)")
}

#[pymethods]
impl NativeScenario {
    #[getter]
    fn name(&self) -> &str {
        &self.scenario.name
    }

    #[getter]
    fn path(&self) -> Option<String> {
        self.path.as_ref().map(|p| p.display().to_string())
    }

    /// A copy with dotted keys set: `assignments` is a JSON list of `[key, value]`.
    fn with_json(&self, assignments: &str) -> PyResult<NativeScenario> {
        let build = || -> Result<NativeScenario> {
            let mut table = self.table.clone();
            let serde_json::Value::Array(list) = parse_json(assignments)? else {
                anyhow::bail!("assignments are a list");
            };
            for item in list {
                let (k, v): (String, serde_json::Value) = serde_json::from_value(item)?;
                let v = toml_of(v).with_context(|| format!("`{k}`"))?;
                kvtier::sweep::set_path(&mut table, &k, v).with_context(|| format!("`{k}`"))?;
            }
            let scenario = Scenario::from_table(table.clone(), self.path.as_deref())?;
            Ok(NativeScenario {
                table,
                path: self.path.clone(),
                scenario,
            })
        };
        build().map_err(fail(Stage::Scenario))
    }

    /// The scenario as TOML (what `from_dict` was given, or the file's fields).
    fn toml(&self) -> PyResult<String> {
        toml::to_string(&self.table).map_err(|e| fail(Stage::Scenario)(e.into()))
    }

    /// The derived sizes and bounds, as JSON: numbers under the names of `Sizes`, then
    /// `kvtier scenario show`'s rows as text.
    fn show_json(&self) -> PyResult<String> {
        show(&self.scenario).map_err(fail(Stage::Scenario))
    }
}

fn show(sc: &Scenario) -> Result<String> {
    let s = &sc.sizes;
    let c = &s.compute;
    let bounds = kvtier::bounds::Bounds::new(s, kvtier::memory::Timing::of(sc), sc.file.ext.access);
    let (ideal, placement) = bounds.no_skip();
    let rows: serde_json::Map<String, serde_json::Value> = kvtier::results::scenario_rows(sc)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into()))
        .collect();
    let v = serde_json::json!({
        "name": sc.name,
        "layers": s.layers,
        "prefill": s.prefill,
        "decode": s.decode,
        "batch": s.batch,
        "weights_bytes": s.weights_bytes,
        "layer_weight_bytes": s.layer_weight_bytes,
        "attn_weight_bytes": s.attn_weight_bytes,
        "mlp_weight_bytes": s.mlp_weight_bytes,
        "weights_on_hbm_bytes": s.weights_on_hbm_bytes,
        "entry_bytes": s.entry_bytes,
        "block_tokens": s.block_tokens,
        "block_bytes": s.block_bytes,
        "prefill_kv_bytes": s.prefill_kv_bytes,
        "initial_hbm_kv_bytes": s.initial_hbm_kv_bytes,
        "capacity_bytes": s.capacity_bytes,
        "kv_budget_bytes": s.kv_budget_bytes,
        "oversubscribed_bytes": s.oversubscribed_bytes,
        "hbm_bw": s.hbm_bw,
        "link_read_bw": s.link_read_bw,
        "link_write_bw": s.link_write_bw,
        "exti_bw": s.exti_bw,
        "copy_read_bw": s.copy_read_bw,
        "copy_write_bw": s.copy_write_bw,
        "ext_effective_bw": s.ext_effective_bw,
        "alpha_target": s.alpha_target,
        "gpu_flops": c.flops_per_s,
        "sublayer_overhead_s": c.overhead_s,
        "mlp_flops": c.mlp_flops,
        "no_skip_ideal_bound_s": ideal,
        "no_skip_placement_bound_s": placement,
        "rows": rows,
    });
    Ok(serde_json::to_string(&v)?)
}

/// Reads and checks a scenario file.
#[pyfunction]
fn load(path: &str) -> PyResult<NativeScenario> {
    let build = || -> Result<NativeScenario> {
        let path = Path::new(path);
        let text = kvtier::input::read_text(path, "scenario")?;
        let scenario = Scenario::from_toml(&text, Some(path))?;
        let table: toml::Table = toml::from_str(&text)?;
        Ok(NativeScenario {
            table,
            path: Some(path.to_path_buf()),
            scenario,
        })
    };
    build().map_err(fail(Stage::Scenario))
}

/// Checks a scenario given as JSON (a Python dict); relative paths in it resolve against
/// `path`'s folder when given, else the working directory.
#[pyfunction]
#[pyo3(signature = (json, path=None))]
fn from_json(json: &str, path: Option<&str>) -> PyResult<NativeScenario> {
    let build = || -> Result<NativeScenario> {
        let toml::Value::Table(table) = toml_of(parse_json(json)?)? else {
            anyhow::bail!("a scenario is a dict of sections");
        };
        let path = path.map(PathBuf::from);
        let scenario = Scenario::from_table(table.clone(), path.as_deref())?;
        Ok(NativeScenario {
            table,
            path,
            scenario,
        })
    };
    build().map_err(fail(Stage::Scenario))
}

/// A strategy as the package passes it: `(spec, None)` names a native strategy, a file or a
/// built-in script; `(name, Some(source))` is a script given as text.
type Strategy = (String, Option<String>);

fn strategy((spec, source): Strategy, kind: Kind) -> Result<PolicyRef> {
    match source {
        Some(source) => Ok(PolicyRef::Inline(std::sync::Arc::new(InlineScript {
            name: spec,
            source,
        }))),
        None => policy::resolve(&spec, kind, None),
    }
}

fn strategies(list: Vec<Strategy>, kind: Kind) -> Result<Vec<PolicyRef>> {
    list.into_iter().map(|s| strategy(s, kind)).collect()
}

/// The per-sublayer records as columns of native-endian bytes (numpy's `frombuffer` reads
/// them without a copy): the CSV's columns, `layer_valid` (0 for step phases, whose `layer` is
/// empty) and `sublayer` as codes (0 attn, 1 mlp, 2 step); `alpha` and `flops` are NaN where
/// the CSV leaves them empty.
#[derive(Default)]
struct Columns {
    ints: [Vec<u8>; 12],
    floats: [Vec<u8>; 3],
    sublayer: Vec<u8>,
    layer_valid: Vec<u8>,
}

const INT_COLUMNS: [&str; 12] = [
    "step",
    "layer",
    "hbm_read",
    "ext_read",
    "hbm_bytes",
    "link_bytes",
    "exti_bytes",
    "to_hbm",
    "to_ext",
    "link_read",
    "link_write",
    "copy_bytes",
];
const FLOAT_COLUMNS: [&str; 3] = ["time_s", "alpha", "flops"];

impl RecordSink for Columns {
    fn record(&mut self, r: &Record) -> Result<()> {
        let c = &r.charges;
        let ints = [
            r.step as u64,
            r.layer.unwrap_or(0) as u64,
            c.hbm_read,
            c.ext_read,
            c.hbm,
            c.link(),
            c.exti,
            c.to_hbm,
            c.to_ext,
            c.link_read,
            c.link_write,
            c.copy,
        ];
        for (col, v) in self.ints.iter_mut().zip(ints) {
            let v = i64::try_from(v).context("a count beyond int64")?;
            col.extend_from_slice(&v.to_ne_bytes());
        }
        let floats = [
            r.time_s,
            c.alpha().unwrap_or(f64::NAN),
            r.flops.unwrap_or(f64::NAN),
        ];
        for (col, v) in self.floats.iter_mut().zip(floats) {
            col.extend_from_slice(&v.to_ne_bytes());
        }
        self.sublayer.push(match r.sublayer.name() {
            "attn" => 0,
            "mlp" => 1,
            _ => 2,
        });
        self.layer_valid.push(u8::from(r.layer.is_some()));
        Ok(())
    }
}

/// A byte column: its name, its kind for the package (`i64`, `f64`, `i64?` with a `valid`
/// column of the same name after it, `sublayer` codes), its bytes.
type ByteColumn = (&'static str, &'static str, Py<PyBytes>);

impl Columns {
    /// The columns in the CSV's order.
    fn into_py(self, py: Python<'_>) -> Result<Vec<ByteColumn>> {
        let mut out = Vec::with_capacity(17);
        for name in kvtier::results::CSV_HEADER.split(',') {
            let bytes = |b: &[u8]| PyBytes::new(py, b).unbind();
            if let Some(i) = INT_COLUMNS.iter().position(|c| *c == name) {
                let kind = if name == "layer" { "i64?" } else { "i64" };
                out.push((INT_COLUMNS[i], kind, bytes(&self.ints[i])));
                if name == "layer" {
                    out.push(("layer", "valid", bytes(&self.layer_valid)));
                }
            } else if let Some(i) = FLOAT_COLUMNS.iter().position(|c| *c == name) {
                out.push((FLOAT_COLUMNS[i], "f64", bytes(&self.floats[i])));
            } else if name == "sublayer" {
                out.push(("sublayer", "sublayer", bytes(&self.sublayer)));
            } else {
                anyhow::bail!("the CSV column {name} has no byte column (a bug in kvtier)");
            }
        }
        Ok(out)
    }
}

/// The per-sublayer CSV's columns, in order (SPEC 9, then 9b).
#[pyfunction]
fn row_columns() -> Vec<&'static str> {
    kvtier::results::CSV_HEADER.split(',').collect()
}

/// Runs one pair; returns the CLI's JSON record (`kvtier run --format json`) and, when
/// `rows`, the per-sublayer records as byte columns.
#[pyfunction]
#[pyo3(signature = (scenario, placement, migration, params, rows))]
#[allow(clippy::type_complexity)]
fn run(
    py: Python<'_>,
    scenario: &Bound<'_, NativeScenario>,
    placement: Option<Strategy>,
    migration: Option<Strategy>,
    params: Vec<String>,
    rows: bool,
) -> PyResult<(String, Option<Vec<ByteColumn>>)> {
    let sc = &scenario.get().scenario;
    let resolve = || -> Result<_> {
        let p = placement
            .map(|p| strategy(p, Kind::Placement))
            .transpose()?;
        let m = migration
            .map(|m| strategy(m, Kind::Migration))
            .transpose()?;
        policy::scenario_pair(sc, p, m)
    };
    let (p, m) = resolve().map_err(fail(Stage::Policy))?;
    // A policy is not `Send`: it is built on the worker thread. The inner error is the
    // build's (a policy error), the outer one the run's.
    let outcome = call(py, || {
        let built = policy::params(sc, &params)
            .and_then(|params| policy::build_for(sc, &p, &m, params, None));
        let mut pol = match built {
            Ok(pol) => pol,
            Err(e) => return Ok(Err(e)),
        };
        let mut columns = rows.then(Columns::default);
        let mut discard = kvtier::engine::Discard;
        let sink: &mut dyn RecordSink = match columns.as_mut() {
            Some(c) => c,
            None => &mut discard,
        };
        let summary = kvtier::simulate_into(sc, pol.as_mut(), None, sink)?;
        Ok(Ok((summary, columns)))
    })?;
    let (summary, columns) = outcome
        .map_err(fail(Stage::Run))?
        .map_err(fail(Stage::Policy))?;
    let record = kvtier::records::RunRecord {
        keys: Vec::new(),
        scenario: &sc.name,
        placement: &p.label(),
        migration: &m.label(),
        outcome: Ok(&summary),
        x_best_static: None,
    };
    let json = kvtier::records::json(&[record]).map_err(fail(Stage::Run))?;
    let columns = columns
        .map(|c| c.into_py(py))
        .transpose()
        .map_err(fail(Stage::Run))?;
    Ok((json, columns))
}

/// Every placement with every migration (the seed's folders when both lists are empty), then
/// the baselines if asked: the CLI's `compare --format json` records.
#[pyfunction]
#[pyo3(signature = (scenario, placements, migrations, baselines, best_static, params))]
fn compare(
    py: Python<'_>,
    scenario: &Bound<'_, NativeScenario>,
    placements: Vec<Strategy>,
    migrations: Vec<Strategy>,
    baselines: bool,
    best_static: bool,
    params: Vec<String>,
) -> PyResult<String> {
    let sc = &scenario.get().scenario;
    let pairs = pairs_of(placements, migrations, baselines).map_err(fail(Stage::Policy))?;
    let outcome = call(py, || {
        let (mut c, _) = kvtier::compare::run_pairs(sc, &pairs, &params, None, false, &|| {})?;
        if best_static {
            kvtier::optimize::set_best_static(sc, &mut c)?;
        }
        kvtier::compare::render(&c, Format::Json, GroupBy::None)
    })?;
    outcome.map_err(fail(Stage::Run))
}

fn pairs_of(
    placements: Vec<Strategy>,
    migrations: Vec<Strategy>,
    baselines: bool,
) -> Result<Vec<kvtier::compare::Pair>> {
    let p = strategies_or(placements, &["policies/placement"], Kind::Placement)?;
    let m = strategies_or(migrations, &["policies/migration"], Kind::Migration)?;
    let mut pairs = kvtier::compare::cross(&p, &m);
    if baselines {
        pairs.extend(policy::baseline_pairs(Path::new(policy::BASELINES_DIR))?);
    }
    Ok(pairs)
}

/// The strategies given, else the command line's defaults (names, folders).
fn strategies_or(list: Vec<Strategy>, defaults: &[&str], kind: Kind) -> Result<Vec<PolicyRef>> {
    if list.is_empty() {
        return policy::expand_all(&[], defaults, kind);
    }
    strategies(list, kind)
}

/// A sweep from the scenario: `vary` is a JSON list of `[key, [values...]]` (linked keys are
/// separate sweeps' business: one key per entry). Returns the CLI's `sweep --format json`
/// records.
#[pyfunction]
#[pyo3(signature = (scenario, vary, placements, migrations, baselines, best_static, params))]
#[allow(clippy::too_many_arguments)]
fn sweep(
    py: Python<'_>,
    scenario: &Bound<'_, NativeScenario>,
    vary: &str,
    placements: Vec<Strategy>,
    migrations: Vec<Strategy>,
    baselines: bool,
    best_static: bool,
    params: Vec<String>,
) -> PyResult<String> {
    let ns = scenario.get();
    let prepare = || -> Result<_> {
        let serde_json::Value::Array(list) = parse_json(vary)? else {
            anyhow::bail!("vary is a list");
        };
        let mut varies = Vec::new();
        for item in list {
            let (key, values): (String, Vec<serde_json::Value>) = serde_json::from_value(item)?;
            let values = values
                .into_iter()
                .map(toml_of)
                .collect::<Result<Vec<_>>>()
                .with_context(|| format!("vary `{key}`"))?;
            varies.push(kvtier::sweep::Vary {
                key,
                values,
                with: Vec::new(),
            });
        }
        Ok(varies)
    };
    let vary = prepare().map_err(fail(Stage::Scenario))?;
    let build = || -> Result<kvtier::sweep_run::Sweep> {
        let placements = strategies_or(placements, &["prefer_hbm"], Kind::Placement)?;
        let migrations = strategies_or(migrations, &["none", "alpha"], Kind::Migration)?;
        let def = kvtier::sweep_run::SweepDef {
            title: None,
            base: ns
                .path
                .as_ref()
                .map_or("<scenario>".into(), |p| p.display().to_string()),
            vary,
            placements: placements.iter().map(PolicyRef::label).collect(),
            migrations: migrations.iter().map(PolicyRef::label).collect(),
            extra_pairs: Vec::new(),
            params,
            columns: Vec::new(),
            sort: None,
            table_per_point: false,
        };
        let mut extra = if baselines {
            policy::baseline_pairs(Path::new(policy::BASELINES_DIR))?
        } else {
            Vec::new()
        };
        if best_static {
            extra.push(kvtier::sweep_run::search_pair());
        }
        kvtier::sweep_run::Sweep::of_table(
            def,
            (&ns.table, ns.path.as_deref()),
            placements,
            migrations,
            extra,
        )
    };
    let sweep = build().map_err(fail(Stage::Policy))?;
    let outcome = call(py, || {
        let result = sweep.run(None, None, &|| {})?;
        kvtier::sweep_run::render(&result, Format::Json)
    })?;
    outcome.map_err(fail(Stage::Run))
}

/// Per-layer statistics of a trace file, or of a scenario's trace: `kvtier trace stats
/// --format json`.
#[pyfunction]
#[pyo3(signature = (path, scenario, sinks, recent))]
fn trace_stats(
    py: Python<'_>,
    path: Option<String>,
    scenario: Option<&Bound<'_, NativeScenario>>,
    sinks: usize,
    recent: usize,
) -> PyResult<String> {
    let sc = scenario.map(|s| &s.get().scenario);
    let outcome = call(py, || {
        let mut source = match (sc, &path) {
            (Some(sc), _) => kvtier::trace::open(sc)?,
            (None, Some(p)) => kvtier::trace::open_file(Path::new(p))?,
            (None, None) => anyhow::bail!("give a trace file or a scenario"),
        };
        let st = kvtier::trace::stats::compute(source.as_mut(), sinks, recent)?;
        Ok(serde_json::to_string(&st)?)
    })?;
    outcome.map_err(fail(Stage::Run))
}

/// The built-in strategies: `(name, kind, baseline, first sentence of the header)`.
#[pyfunction]
fn builtin_strategies() -> Vec<(&'static str, &'static str, bool, String)> {
    policy::builtin::BUILTIN
        .iter()
        .map(|b| (b.name, b.kind.dir(), b.baseline, b.summary()))
        .collect()
}

/// The version of the kvtier crate this module was built from.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("NativeError", m.py().get_type::<NativeError>())?;
    m.add_class::<NativeScenario>()?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(from_json, m)?)?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(compare, m)?)?;
    m.add_function(wrap_pyfunction!(sweep, m)?)?;
    m.add_function(wrap_pyfunction!(trace_stats, m)?)?;
    m.add_function(wrap_pyfunction!(builtin_strategies, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(classify, m)?)?;
    m.add_function(wrap_pyfunction!(row_columns, m)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::location;

    #[test]
    fn location_is_the_innermost_position() {
        let e = "seed: policy.placement: policies/x.rhai:3:5: in place (step 4, layer 0): boom\n  3 | x";
        assert_eq!(location(e), Some(("policies/x.rhai".into(), 3, 5)));
        assert_eq!(
            location("<inline>:2:11: syntax error: Unexpected ';'"),
            Some(("<inline>".into(), 2, 11))
        );
        assert_eq!(location("no strategy \"x\": not a native one"), None);
        // A time like 12:30 in a message is not a position.
        assert_eq!(location("took 12:30: too long"), None);
    }
}
