//! Comparing strategies: every (placement, migration) pair of a scenario run in parallel, one
//! row each plus the ideal bound, best first.
//!
//! Each pair is an independent run (its own trace, memory and script engine), so results do not
//! depend on the number of threads or on the order runs finish in; rows are sorted by decode
//! time with names breaking ties. A pair that fails becomes an error row; the others go on.
//!
//! Not here: the decode loop ([`crate::engine`]), scripts ([`crate::policy`]).

use std::path::Path;

use anyhow::{Context, Result};
use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Table};
use serde::{Deserialize, Serialize};

use crate::policy::{self, PolicyRef};
use crate::results::{gb, opt, Format, Summary};
use crate::scenario::Scenario;
use crate::series::StepSeries;
use crate::trace::{self, shared, TraceSource};

/// The outcome of one pair.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PairRow {
    pub placement: String,
    pub migration: String,
    /// The run's summary, or the error that stopped it.
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Summary(Box<Summary>),
    Error(String),
}

/// All rows of a comparison, best first.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Comparison {
    pub scenario: String,
    /// Ideal bound of the run (the same for every pair: it depends on the trace only).
    pub ideal_bound_s: Option<f64>,
    /// Placement bound of the run (SPEC 13; the same for every pair).
    pub placement_bound_s: Option<f64>,
    /// Tokens generated (`D * B`), for the ideal row's tokens/s.
    pub tokens: u64,
    pub idealized: Option<String>,
    /// The best static schedule's decode time (`kvtier optimize`), when it was asked for: the
    /// tables then show a "best static" row and an "x best static" column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_static_s: Option<f64>,
    pub rows: Vec<PairRow>,
}

impl Comparison {
    /// One run as a comparison of one row (for the charts of `kvtier run --plot`).
    pub fn of_run(
        scenario: &Scenario,
        placement: String,
        migration: String,
        summary: Summary,
    ) -> Comparison {
        Comparison {
            scenario: scenario.name.clone(),
            ideal_bound_s: Some(summary.ideal_bound_s),
            placement_bound_s: Some(summary.placement_bound_s),
            tokens: scenario.sizes.decode as u64 * scenario.sizes.batch,
            idealized: scenario.idealized_note(),
            best_static_s: None,
            rows: vec![PairRow {
                placement,
                migration,
                outcome: Outcome::Summary(Box::new(summary)),
            }],
        }
    }
}

/// How rows are grouped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupBy {
    /// One list, best first.
    None,
    /// One block per placement (best block first), one row per migration, as the seed plots.
    Placement,
}

/// A (placement, migration) pair to run.
pub type Pair = (PolicyRef, PolicyRef);

/// Every pair of `placements` x `migrations`, placement-major.
pub fn cross(placements: &[PolicyRef], migrations: &[PolicyRef]) -> Vec<Pair> {
    placements
        .iter()
        .flat_map(|p| migrations.iter().map(move |m| (p.clone(), m.clone())))
        .collect()
}

/// Runs every pair on `scenario`, the trace produced once and shared by all; writes each pair's per-sublayer CSV into
/// `csv_dir` if given.
pub fn compare(
    scenario: &Scenario,
    pairs: &[Pair],
    overrides: &[String],
    csv_dir: Option<&Path>,
) -> Result<Comparison> {
    Ok(run_pairs(scenario, pairs, overrides, csv_dir, false, &|| {})?.0)
}

/// One pair's per-step series, collected while it ran (for plots).
#[derive(Clone, Debug)]
pub struct PairSeries {
    pub placement: String,
    pub migration: String,
    pub series: StepSeries,
}

/// [`compare`], also collecting each successful pair's per-step series in the same runs, in
/// the order of `pairs`.
pub fn compare_with_series(
    scenario: &Scenario,
    pairs: &[Pair],
    overrides: &[String],
    csv_dir: Option<&Path>,
) -> Result<(Comparison, Vec<PairSeries>)> {
    run_pairs(scenario, pairs, overrides, csv_dir, true, &|| {})
}

/// [`compare`] (`collect` false) or [`compare_with_series`] (`collect` true), calling `done`
/// as each pair finishes (from the worker threads: for a progress bar).
pub fn run_pairs(
    scenario: &Scenario,
    pairs: &[Pair],
    overrides: &[String],
    csv_dir: Option<&Path>,
    collect: bool,
    done: &(dyn Fn() + Sync),
) -> Result<(Comparison, Vec<PairSeries>)> {
    let params = policy::params(scenario, overrides)?;
    if let Some(d) = csv_dir {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let run_one = |(p, m): &Pair, source: Option<Box<dyn TraceSource>>| {
        let mut series = collect.then(|| StepSeries::new(scenario));
        let run = || -> Result<Summary> {
            let mut pol = policy::build_for(scenario, p, m, params.clone(), None)?;
            let csv = csv_dir.map(|d| d.join(format!("{}__{}.csv", p.label(), m.label())));
            let source = match source {
                Some(s) => s,
                None => trace::open(scenario)?,
            };
            let mut discard = crate::engine::Discard;
            let extra: &mut dyn crate::engine::RecordSink = match series.as_mut() {
                Some(s) => s,
                None => &mut discard,
            };
            crate::simulate_traced(scenario, source, pol.as_mut(), csv.as_deref(), extra)
        };
        let outcome = match crate::no_panic(run) {
            Ok(s) => Outcome::Summary(Box::new(s)),
            Err(e) => {
                series = None;
                Outcome::Error(format!("{e:#}"))
            }
        };
        let row = PairRow {
            placement: p.label(),
            migration: m.label(),
            outcome,
        };
        done();
        (row, series)
    };
    let runs = shared::run_all(scenario, pairs, &run_one);
    let mut rows = Vec::with_capacity(runs.len());
    let mut collected = Vec::new();
    for (row, series) in runs {
        if let Some(series) = series {
            collected.push(PairSeries {
                placement: row.placement.clone(),
                migration: row.migration.clone(),
                series,
            });
        }
        rows.push(row);
    }
    sort_rows(&mut rows, GroupBy::None);
    let first = rows.iter().find_map(|r| match &r.outcome {
        Outcome::Summary(s) => Some((s.ideal_bound_s, s.placement_bound_s)),
        Outcome::Error(_) => None,
    });
    let comparison = Comparison {
        scenario: scenario.name.clone(),
        ideal_bound_s: first.map(|b| b.0),
        placement_bound_s: first.map(|b| b.1),
        tokens: scenario.sizes.decode as u64 * scenario.sizes.batch,
        idealized: scenario.idealized_note(),
        best_static_s: None,
        rows,
    };
    Ok((comparison, collected))
}

fn time_of(r: &PairRow) -> f64 {
    match &r.outcome {
        Outcome::Summary(s) => s.decode_time_s,
        Outcome::Error(_) => f64::INFINITY,
    }
}

/// Best first; errors last; names break ties. With `GroupBy::Placement`, blocks of one
/// placement, the block with the best row first.
pub fn sort_rows(rows: &mut [PairRow], by: GroupBy) {
    let key = |r: &PairRow| (r.placement.clone(), r.migration.clone());
    rows.sort_by(|a, b| time_of(a).total_cmp(&time_of(b)).then(key(a).cmp(&key(b))));
    if by == GroupBy::Placement {
        let mut order: Vec<String> = Vec::new();
        for r in rows.iter() {
            if !order.contains(&r.placement) {
                order.push(r.placement.clone());
            }
        }
        rows.sort_by_key(|r| order.iter().position(|p| *p == r.placement));
    }
}

/// Column names of the comparison table.
pub const HEADER: [&str; 12] = [
    "placement",
    "migration",
    "decode time (s)",
    "tokens/s",
    "x ideal",
    "x placement",
    "alpha attn",
    "alpha mlp",
    "GB to HBM",
    "GB to EXT",
    "fallbacks",
    "peak HBM KV GB",
];

/// The comparison table's cells for one row.
pub fn cells(r: &PairRow) -> Vec<String> {
    let mut v = vec![r.placement.clone(), r.migration.clone()];
    match &r.outcome {
        Outcome::Summary(s) => v.extend([
            format!("{:.6}", s.decode_time_s),
            format!("{:.3}", s.tokens_per_s),
            format!("{:.4}", s.x_ideal),
            format!("{:.4}", s.x_placement),
            opt(s.alpha_attn),
            opt(s.alpha_mlp),
            gb(s.moved_to_hbm_bytes),
            gb(s.moved_to_ext_bytes),
            s.fallbacks.to_string(),
            gb(s.peak_hbm_kv_bytes),
        ]),
        Outcome::Error(_) => {
            v.push("ERROR (below)".into());
            v.extend(std::iter::repeat_n("-".to_string(), 9));
        }
    }
    v
}

/// The reference rows of the comparison table, if any pair ran: the ideal bound (every byte
/// split freely) and the placement bound (weights where the scenario puts them, each attention
/// sublayer's KV at its best split), each with its multiple of the other.
pub fn bound_cells(c: &Comparison) -> Vec<Vec<String>> {
    let (Some(ideal), Some(placement)) = (c.ideal_bound_s, c.placement_bound_s) else {
        return Vec::new();
    };
    let mut refs = vec![("ideal bound", ideal), ("placement bound", placement)];
    refs.extend(c.best_static_s.map(|b| ("best static", b)));
    refs.into_iter()
        .map(|(name, b)| {
            let mut v = vec![
                name.to_string(),
                "-".to_string(),
                format!("{b:.6}"),
                format!("{:.3}", c.tokens as f64 / b),
                format!("{:.4}", b / ideal),
                format!("{:.4}", b / placement),
            ];
            v.extend(std::iter::repeat_n("-".to_string(), 6));
            v.extend(c.best_static_s.map(|s| format!("{:.4}", b / s)));
            v
        })
        .collect()
}

/// A row's cells, with "x best static" last when the comparison has a best static time.
pub fn cells_of(c: &Comparison, r: &PairRow) -> Vec<String> {
    let mut v = cells(r);
    if let Some(b) = c.best_static_s {
        v.push(match &r.outcome {
            Outcome::Summary(s) => format!("{:.4}", s.decode_time_s / b),
            Outcome::Error(_) => String::new(),
        });
    }
    v
}

/// Renders a comparison (rows already in the wanted order).
pub fn render(c: &Comparison, format: Format, by: GroupBy) -> Result<String> {
    let mut rows = c.rows.clone();
    sort_rows(&mut rows, by);
    // One message per failing script: pairs that failed with the same error share it.
    let mut failed = 0;
    let mut by_error: Vec<(&str, Vec<String>)> = Vec::new();
    for r in &rows {
        if let Outcome::Error(e) = &r.outcome {
            failed += 1;
            let pair = format!("{} + {}", r.placement, r.migration);
            match by_error.iter_mut().find(|(m, _)| *m == e.as_str()) {
                Some((_, pairs)) => pairs.push(pair),
                None => by_error.push((e, vec![pair])),
            }
        }
    }
    let errors: Vec<String> = by_error
        .iter()
        .map(|(e, pairs)| format!("{}: {e}", pairs.join(", ")))
        .collect();
    match format {
        Format::Json | Format::Csv => {
            let records: Vec<crate::records::RunRecord> = rows
                .iter()
                .map(|r| crate::records::RunRecord {
                    keys: Vec::new(),
                    scenario: &c.scenario,
                    placement: &r.placement,
                    migration: &r.migration,
                    outcome: match &r.outcome {
                        Outcome::Summary(s) => Ok(s.as_ref()),
                        Outcome::Error(e) => Err(e.as_str()),
                    },
                    x_best_static: match (&r.outcome, c.best_static_s) {
                        (Outcome::Summary(s), Some(b)) => Some(s.decode_time_s / b),
                        _ => None,
                    },
                })
                .collect();
            crate::records::csv_or_json(&records, format == Format::Json)
        }
        Format::Table | Format::Markdown => {
            let preset = if format == Format::Markdown {
                presets::ASCII_MARKDOWN
            } else {
                presets::UTF8_FULL_CONDENSED
            };
            let new_table = || {
                let mut t = Table::new();
                t.load_preset(preset);
                t.set_content_arrangement(ContentArrangement::Disabled);
                let extra = c.best_static_s.map(|_| "x best static");
                t.set_header(HEADER.iter().copied().chain(extra).map(Cell::new));
                t
            };
            let add = |t: &mut Table, v: Vec<String>| {
                t.add_row(v.into_iter().enumerate().map(|(i, s)| {
                    let c = Cell::new(s);
                    if i < 2 {
                        c
                    } else {
                        c.set_alignment(CellAlignment::Right)
                    }
                }));
            };
            let mut out = format!("scenario: {}", c.scenario);
            if let Some(b) = c.ideal_bound_s {
                out += &format!("   ideal bound: {b:.6} s");
            }
            if let Some(b) = c.placement_bound_s {
                out += &format!("   placement bound: {b:.6} s");
            }
            if let Some(b) = c.best_static_s {
                out += &format!("   best static: {b:.6} s");
            }
            out.push('\n');
            if let Some(n) = &c.idealized {
                out += &format!("** {n} **\n");
            }
            match by {
                GroupBy::None => {
                    let mut t = new_table();
                    for v in bound_cells(c) {
                        add(&mut t, v);
                    }
                    for r in &rows {
                        add(&mut t, cells_of(c, r));
                    }
                    out += &format!("{t}\n");
                }
                GroupBy::Placement => {
                    let mut i = 0;
                    while i < rows.len() {
                        let p = rows[i].placement.clone();
                        let mut t = new_table();
                        for v in bound_cells(c) {
                            add(&mut t, v);
                        }
                        while i < rows.len() && rows[i].placement == p {
                            add(&mut t, cells_of(c, &rows[i]));
                            i += 1;
                        }
                        out += &format!("\nplacement: {p}\n{t}\n");
                    }
                }
            }
            if !errors.is_empty() {
                out += &format!("\n{failed} pair(s) failed:\n");
                for e in &errors {
                    out += &format!("{e}\n");
                }
            }
            Ok(out)
        }
    }
}
