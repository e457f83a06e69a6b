//! Static schedules chosen offline: FlexGen's linear cost model ([`flexgen`]) and the best
//! static split of the KV for a trace ([`static_split`], `kvtier optimize`).
//!
//! Not here: the decode loop that times a schedule ([`crate::engine`]).

pub mod flexgen;
pub mod static_split;

use anyhow::{bail, Result};
use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Table};

use crate::compare::{self, Comparison, Outcome, Pair, PairRow};
use crate::policy::PolicyRef;
use crate::results::{Format, Summary};
use crate::scenario::Scenario;
use static_split::{Optimum, StaticPolicy};

/// Label of the search's schedule in tables.
pub const SEARCH_LABEL: &str = "best static";

/// `kvtier optimize`: the search's schedule timed by the engine, beside the static placements
/// run as they are.
#[derive(Debug)]
pub struct Optimized {
    pub optimum: Optimum,
    /// The engine's run of the search's schedule.
    pub search: Summary,
    /// The search's row and every static placement's, with the best static time set.
    pub comparison: Comparison,
}

/// Searches the static family (see [`static_split`]) and times its schedule with the engine.
pub fn search(sc: &Scenario) -> Result<(Optimum, Summary)> {
    let opt = static_split::search(sc)?;
    let mut pol = StaticPolicy {
        schedule: opt.schedule.clone(),
    };
    let s = crate::simulate(sc, &mut pol, None)?;
    if s.fallbacks > 0 || s.moved_to_hbm_bytes + s.moved_to_ext_bytes > 0 {
        bail!(
            "internal error: the best static schedule did not stay static ({} fallbacks, {} B moved); please report it with the scenario",
            s.fallbacks,
            s.moved_to_hbm_bytes + s.moved_to_ext_bytes
        );
    }
    Ok((opt, s))
}

/// Runs the search and, in parallel, each of `statics` with migration `none`.
pub fn optimize(sc: &Scenario, statics: &[PolicyRef], overrides: &[String]) -> Result<Optimized> {
    let pairs: Vec<Pair> = statics
        .iter()
        .map(|p| (p.clone(), PolicyRef::Native("none".into())))
        .collect();
    let (found, others) = rayon::join(
        || search(sc),
        || compare::compare(sc, &pairs, overrides, None),
    );
    let (optimum, search) = found?;
    let mut comparison = others?;
    comparison.rows.push(PairRow {
        placement: SEARCH_LABEL.into(),
        migration: "(search)".into(),
        outcome: Outcome::Summary(Box::new(search.clone())),
    });
    comparison.best_static_s = best_static(&comparison);
    Ok(Optimized {
        optimum,
        search,
        comparison,
    })
}

/// The least decode time of the static rows of `c` (migration `none`, or the search's row).
pub fn best_static(c: &Comparison) -> Option<f64> {
    c.rows
        .iter()
        .filter(|r| r.migration == "none" || r.placement == SEARCH_LABEL)
        .filter_map(|r| match &r.outcome {
            Outcome::Summary(s) => Some(s.decode_time_s),
            Outcome::Error(_) => None,
        })
        .min_by(f64::total_cmp)
}

/// Sets `c.best_static_s` (`compare --best-static`): the search's time, or a static row's if one
/// is better.
pub fn set_best_static(sc: &Scenario, c: &mut Comparison) -> Result<()> {
    let (_, s) = search(sc)?;
    let rows = best_static(c);
    c.best_static_s = Some(rows.map_or(s.decode_time_s, |b| b.min(s.decode_time_s)));
    Ok(())
}

/// The per-layer choice of the search, as a table, markdown or CSV (JSON: see
/// [`render_json`]).
pub fn render_layers(o: &Optimum, format: Format) -> String {
    let header = [
        "layer",
        "order",
        "units on HBM",
        "entries on HBM",
        "entries",
        "share on HBM",
    ];
    let rows: Vec<Vec<String>> = o
        .layers
        .iter()
        .enumerate()
        .map(|(l, c)| {
            vec![
                l.to_string(),
                c.order.name().to_string(),
                c.units.to_string(),
                c.hbm_entries.to_string(),
                c.entries.to_string(),
                format!("{:.4}", c.hbm_entries as f64 / c.entries.max(1) as f64),
            ]
        })
        .collect();
    if format == Format::Csv {
        let mut out = header.join(",") + "\n";
        for r in rows {
            out += &(r.join(",") + "\n");
        }
        return out;
    }
    let mut t = Table::new();
    t.load_preset(if format == Format::Markdown {
        presets::ASCII_MARKDOWN
    } else {
        presets::UTF8_FULL_CONDENSED
    });
    t.set_content_arrangement(ContentArrangement::Disabled);
    t.set_header(header.iter().map(Cell::new));
    for r in rows {
        t.add_row(r.into_iter().enumerate().map(|(i, s)| {
            let c = Cell::new(s);
            if i < 2 {
                c
            } else {
                c.set_alignment(CellAlignment::Right)
            }
        }));
    }
    format!("{t}\n")
}

/// How the search went, in one line.
pub fn describe(o: &Optimum) -> String {
    let grid = if o.grid_step <= 1 {
        "exact counts".to_string()
    } else {
        format!("counts on a grid of {} units", o.grid_step)
    };
    let budget = if o.quantum <= 1 {
        "exact budget".to_string()
    } else {
        format!("budget in steps of {} units", o.quantum)
    };
    format!(
        "search: per-layer prefixes of the oldest, newest or most-read order; {} pass{}, {grid}, {budget}",
        o.passes,
        if o.passes == 1 { "" } else { "es" }
    )
}

/// Everything as one JSON document: the comparison (rows, bounds, best static time) and the
/// search's per-layer choice.
pub fn render_json(r: &Optimized) -> Result<String> {
    #[derive(serde::Serialize)]
    struct Doc<'a> {
        #[serde(flatten)]
        comparison: &'a Comparison,
        search: Search<'a>,
    }
    #[derive(serde::Serialize)]
    struct Search<'a> {
        passes: usize,
        grid_step: usize,
        quantum: u64,
        predicted_s: f64,
        layers: &'a [static_split::LayerChoice],
    }
    let mut c = r.comparison.clone();
    c.rows = sorted(&c.rows);
    let doc = Doc {
        comparison: &c,
        search: Search {
            passes: r.optimum.passes,
            grid_step: r.optimum.grid_step,
            quantum: r.optimum.quantum,
            predicted_s: r.optimum.predicted_s,
            layers: &r.optimum.layers,
        },
    };
    Ok(serde_json::to_string_pretty(&doc)? + "\n")
}

fn sorted(rows: &[PairRow]) -> Vec<PairRow> {
    let c = Comparison {
        scenario: String::new(),
        ideal_bound_s: None,
        placement_bound_s: None,
        tokens: 0,
        idealized: None,
        best_static_s: None,
        rows: rows.to_vec(),
    };
    let _ = &c;
    let mut v = rows.to_vec();
    v.sort_by(|a, b| {
        let t = |r: &PairRow| match &r.outcome {
            Outcome::Summary(s) => s.decode_time_s,
            Outcome::Error(_) => f64::INFINITY,
        };
        t(a).total_cmp(&t(b))
            .then_with(|| a.placement.cmp(&b.placement))
            .then_with(|| a.migration.cmp(&b.migration))
    });
    v
}
