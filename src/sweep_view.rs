//! Showing a sweep: its columns, the sweep table (table, markdown, CSV, JSON) and its charts.
//!
//! Not here: running a sweep and merging shards ([`crate::sweep_run`]).

use anyhow::{bail, Result};
use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Table};

use crate::compare::Outcome;
use crate::results::{Format, Summary};
use crate::scenario::GB;
use crate::sweep::value_text;
use crate::sweep_run::{SweepResult, SweepRow};

/// Columns a sweep shows by default.
pub const DEFAULT_COLUMNS: [&str; 7] = [
    "decode_time_s",
    "tokens_per_s",
    "x_ideal",
    "alpha_attn",
    "alpha_mlp",
    "moved_to_hbm_bytes",
    "moved_to_ext_bytes",
];

/// How a column is printed in tables.
#[derive(Clone, Copy)]
enum Shown {
    Seconds,
    Rate,
    Ratio,
    Gigabytes,
    Count,
}

/// Every column a sweep can show: the [`Summary`] field, its table header, how it is printed.
const COLUMNS: [(&str, &str, Shown); 20] = [
    ("decode_time_s", "decode time (s)", Shown::Seconds),
    ("tokens_per_s", "tokens/s", Shown::Rate),
    ("ideal_bound_s", "ideal bound (s)", Shown::Seconds),
    ("x_ideal", "x ideal", Shown::Ratio),
    ("placement_bound_s", "placement bound (s)", Shown::Seconds),
    ("x_placement", "x placement", Shown::Ratio),
    ("alpha_attn", "alpha attn", Shown::Ratio),
    ("alpha_mlp", "alpha mlp", Shown::Ratio),
    ("alpha_bytes", "alpha bytes", Shown::Ratio),
    ("moved_to_hbm_bytes", "GB to HBM", Shown::Gigabytes),
    ("moved_to_ext_bytes", "GB to EXT", Shown::Gigabytes),
    ("passive_bytes", "GB passive", Shown::Gigabytes),
    ("fallbacks", "fallbacks", Shown::Count),
    ("refused_bytes", "refused GB", Shown::Gigabytes),
    ("peak_hbm_kv_bytes", "peak HBM KV GB", Shown::Gigabytes),
    ("hbm_read_bytes", "GB read HBM", Shown::Gigabytes),
    ("ext_read_bytes", "GB read EXT", Shown::Gigabytes),
    ("queued_at_end_bytes", "GB queued at end", Shown::Gigabytes),
    ("compute_bound_rows", "compute-bound rows", Shown::Count),
    // Not a Summary field: decode time / the least time of the point's static rows (the best
    // static search's row and every migration `none` row); empty when the point has none.
    ("x_best_static", "x best static", Shown::Ratio),
];

/// The names of every column, for error messages and docs.
pub fn column_names() -> Vec<&'static str> {
    COLUMNS.iter().map(|c| c.0).collect()
}

/// A column's human name for tables and chart axes (`decode time (s)`); the name itself when
/// it is not a column.
pub fn column_header(name: &str) -> &str {
    COLUMNS.iter().find(|c| c.0 == name).map_or(name, |c| c.1)
}

/// Checks column names and a sort key (`-` in front: descending).
pub fn check_columns(columns: &[String], sort: Option<&str>) -> Result<()> {
    let known = column_names();
    for c in columns {
        if !known.contains(&c.as_str()) {
            bail!("unknown column {c:?}; the columns are {}", known.join(", "));
        }
    }
    if let Some(s) = sort {
        let name = s.strip_prefix('-').unwrap_or(s);
        if !known.contains(&name) {
            bail!(
                "cannot sort by {s:?}: not a column (the columns are {}; `-` in front sorts descending)",
                known.join(", ")
            );
        }
    }
    Ok(())
}

fn field(s: &Summary, name: &str) -> serde_json::Value {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.get(name).cloned())
        .unwrap_or(serde_json::Value::Null)
}

/// The least decode time of each point's static rows: the best static search's row and every
/// row with migration `none`.
fn best_static_by_point(r: &SweepResult) -> std::collections::HashMap<usize, f64> {
    let mut best = std::collections::HashMap::new();
    for x in &r.rows {
        let is_static = x.migration == "none" || x.placement == crate::optimize::SEARCH_LABEL;
        if let (true, Outcome::Summary(s)) = (is_static, &x.outcome) {
            let b = best.entry(x.point).or_insert(f64::INFINITY);
            *b = s.decode_time_s.min(*b);
        }
    }
    best
}

/// Column `name` of a row: its Summary field, or the derived `x_best_static`.
fn row_field(
    x: &SweepRow,
    s: &Summary,
    name: &str,
    best: &std::collections::HashMap<usize, f64>,
) -> serde_json::Value {
    if name == "x_best_static" {
        return best
            .get(&x.point)
            .and_then(|b| serde_json::Number::from_f64(s.decode_time_s / b))
            .map_or(serde_json::Value::Null, serde_json::Value::Number);
    }
    field(s, name)
}

fn number(v: &serde_json::Value) -> Option<f64> {
    v.as_f64()
}

fn table_cell(v: &serde_json::Value, how: Shown) -> String {
    let Some(x) = number(v) else {
        return "-".into();
    };
    match how {
        Shown::Seconds => format!("{x:.6}"),
        Shown::Rate => format!("{x:.3}"),
        Shown::Ratio => format!("{x:.4}"),
        Shown::Gigabytes => format!("{:.3}", x / GB),
        Shown::Count => v.to_string(),
    }
}

fn column(name: &str) -> (&'static str, &'static str, Shown) {
    *COLUMNS
        .iter()
        .find(|c| c.0 == name)
        .expect("columns are checked when the sweep is defined")
}

/// Rows in display order: the definition's sort (errors last, run number breaking ties), else
/// run order.
fn ordered(r: &SweepResult) -> Vec<&SweepRow> {
    let best = best_static_by_point(r);
    let mut rows: Vec<&SweepRow> = r.rows.iter().collect();
    rows.sort_by_key(|x| x.run);
    if let Some(sort) = &r.definition.sort {
        let (desc, name) = match sort.strip_prefix('-') {
            Some(n) => (true, n),
            None => (false, sort.as_str()),
        };
        let key = |x: &SweepRow| match &x.outcome {
            Outcome::Summary(s) => number(&row_field(x, s, name, &best)),
            Outcome::Error(_) => None,
        };
        rows.sort_by(|a, b| match (key(a), key(b)) {
            (Some(x), Some(y)) => {
                let o = x.total_cmp(&y);
                (if desc { o.reverse() } else { o }).then(a.run.cmp(&b.run))
            }
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.run.cmp(&b.run),
        });
    }
    rows
}

/// The idealized note shared by every run, if they all share one.
fn common_note(rows: &[&SweepRow]) -> (Option<String>, bool) {
    let notes: Vec<Option<&String>> = rows
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Summary(s) => Some(s.idealized.as_ref()),
            Outcome::Error(_) => None,
        })
        .collect();
    let first = notes.first().copied().flatten();
    let all_same = notes.iter().all(|n| *n == first);
    if all_same {
        (first.cloned(), false)
    } else {
        (None, true)
    }
}

/// The result file of a sweep or of one shard (JSON), what `kvtier merge` reads.
pub fn result_file(r: &SweepResult) -> Result<String> {
    Ok(serde_json::to_string_pretty(r)? + "\n")
}

/// Renders a sweep result (whole or merged) as a table or markdown, or as tidy records (CSV,
/// JSON: [`crate::records`], one per run, the varied keys first).
pub fn render(r: &SweepResult, format: Format) -> Result<String> {
    let def = &r.definition;
    let rows = ordered(r);
    let best = best_static_by_point(r);
    let keys = def.keys();
    if matches!(format, Format::Csv | Format::Json) {
        // x_best_static only where the best static schedule was asked for, as in `compare`.
        let searched = def
            .extra_pairs
            .iter()
            .any(|(p, _)| p == crate::optimize::SEARCH_LABEL);
        let records: Vec<crate::records::RunRecord> = rows
            .iter()
            .map(|x| crate::records::RunRecord {
                keys: keys.iter().map(String::as_str).zip(&x.values).collect(),
                scenario: match &x.outcome {
                    Outcome::Summary(s) => s.scenario.as_str(),
                    Outcome::Error(_) => "",
                },
                placement: &x.placement,
                migration: &x.migration,
                outcome: match &x.outcome {
                    Outcome::Summary(s) => Ok(s.as_ref()),
                    Outcome::Error(e) => Err(e.as_str()),
                },
                x_best_static: match &x.outcome {
                    Outcome::Summary(s) if searched => {
                        best.get(&x.point).map(|b| s.decode_time_s / b)
                    }
                    _ => None,
                },
            })
            .collect();
        return crate::records::csv_or_json(&records, format == Format::Json);
    }
    let cols: Vec<(&str, &str, Shown)> = def.columns.iter().map(|c| column(c)).collect();
    let (note, per_row_note) = common_note(&rows);
    let errors: Vec<String> = rows
        .iter()
        .filter_map(|x| match &x.outcome {
            Outcome::Error(e) => Some(format!("{}: {e}", def.describe_run(x.run))),
            Outcome::Summary(_) => None,
        })
        .collect();
    let mut out = String::new();
    match format {
        Format::Json | Format::Csv => unreachable!("handled above"),
        Format::Table | Format::Markdown => {
            match &def.title {
                Some(title) => out += &format!("study: {title}   base: {}", def.base),
                None => out += &format!("sweep: {}", def.base),
            }
            out += &format!("   runs: {}\n", r.rows.len());
            let table = |rows: &[&SweepRow], keys: &[String], per_row_note: bool| {
                let cells = TableCells {
                    keys,
                    cols: &cols,
                    best: &best,
                    per_row_note,
                };
                cells.render(rows, format)
            };
            if def.table_per_point && !keys.is_empty() {
                // Points in run order; rows within a point in the sort's order.
                let mut points: Vec<usize> = rows.iter().map(|x| x.point).collect();
                points.sort_unstable();
                points.dedup();
                for p in points {
                    let of_point: Vec<&SweepRow> =
                        rows.iter().copied().filter(|x| x.point == p).collect();
                    let values: Vec<String> = keys
                        .iter()
                        .zip(&of_point[0].values)
                        .map(|(k, v)| format!("{k} = {}", value_text(v)))
                        .collect();
                    if format == Format::Markdown {
                        out += &format!("\n#### {}\n\n", values.join(", "));
                    } else {
                        out += &format!("\n{}\n", values.join(", "));
                    }
                    let (note, per_row_note) = common_note(&of_point);
                    if let Some(n) = &note {
                        out += &format!("** {n} **\n");
                    }
                    if format == Format::Markdown && note.is_some() {
                        out.push('\n');
                    }
                    out += &format!("{}\n", table(&of_point, &[], per_row_note));
                }
            } else {
                if let Some(n) = &note {
                    out += &format!("** {n} **\n");
                }
                out += &format!("{}\n", table(&rows, &keys, per_row_note));
            }
            if !errors.is_empty() {
                out += &format!("\n{} run(s) failed:\n", errors.len());
                for e in &errors {
                    out += &format!("{e}\n");
                }
            }
        }
    }
    Ok(out)
}

/// What a table of sweep rows shows: the varied keys as leading columns (none in a table per
/// point), the chosen columns, and the idealized note per row when rows differ in it.
struct TableCells<'a> {
    keys: &'a [String],
    cols: &'a [(&'a str, &'a str, Shown)],
    best: &'a std::collections::HashMap<usize, f64>,
    per_row_note: bool,
}

impl TableCells<'_> {
    fn render(&self, rows: &[&SweepRow], format: Format) -> Table {
        let mut t = Table::new();
        t.load_preset(if format == Format::Markdown {
            presets::ASCII_MARKDOWN
        } else {
            presets::UTF8_FULL_CONDENSED
        });
        t.set_content_arrangement(ContentArrangement::Disabled);
        let mut head: Vec<String> = self.keys.to_vec();
        head.extend(["placement".into(), "migration".into()]);
        head.extend(self.cols.iter().map(|c| c.1.to_string()));
        if self.per_row_note {
            head.push("idealized".into());
        }
        t.set_header(head.into_iter().map(Cell::new));
        let lead = self.keys.len() + 2;
        for x in rows {
            let mut v: Vec<String> = if self.keys.is_empty() {
                Vec::new()
            } else {
                x.values.iter().map(value_text).collect()
            };
            v.push(x.placement.clone());
            v.push(x.migration.clone());
            match &x.outcome {
                Outcome::Summary(s) => {
                    v.extend(
                        self.cols
                            .iter()
                            .map(|c| table_cell(&row_field(x, s, c.0, self.best), c.2)),
                    );
                    if self.per_row_note {
                        v.push(s.idealized.clone().unwrap_or_else(|| "-".into()));
                    }
                }
                Outcome::Error(_) => {
                    v.push("ERROR (below)".into());
                    v.extend(std::iter::repeat_n(
                        "-".to_string(),
                        self.cols.len() - 1 + self.per_row_note as usize,
                    ));
                }
            }
            t.add_row(v.into_iter().enumerate().map(|(i, s)| {
                let c = Cell::new(s);
                if i < lead {
                    c
                } else {
                    c.set_alignment(CellAlignment::Right)
                }
            }));
        }
        t
    }
}

/// Number of error rows.
pub fn failures(r: &SweepResult) -> usize {
    r.rows
        .iter()
        .filter(|x| matches!(x.outcome, Outcome::Error(_)))
        .count()
}

/// Summary fields a sweep chart can plot.
pub const PLOT_METRICS: &[&str] = &[
    "decode_time_s",
    "tokens_per_s",
    "x_ideal",
    "x_placement",
    "placement_bound_s",
    "compute_bound_rows",
    "queued_at_end_bytes",
    "alpha_attn",
    "alpha_mlp",
    "alpha_bytes",
    "moved_to_hbm_bytes",
    "moved_to_ext_bytes",
    "peak_hbm_kv_bytes",
];

/// Charts of a sweep: `metric` against each varied key, one line per pair; when several keys
/// are varied, the other keys' values are part of each line's label.
pub fn charts(r: &SweepResult, metric: &str) -> Result<Vec<crate::plot::Chart>> {
    if !PLOT_METRICS.contains(&metric) {
        bail!(
            "--metric {metric:?}: choose one of {}",
            PLOT_METRICS.join(", ")
        );
    }
    let keys = r.definition.keys();
    let value = |o: &Outcome| -> Option<f64> {
        match o {
            Outcome::Summary(s) => serde_json::to_value(s).ok()?.get(metric)?.as_f64(),
            Outcome::Error(_) => None,
        }
    };
    let mut out = Vec::with_capacity(keys.len());
    for (k, key) in keys.iter().enumerate() {
        let points: Vec<crate::plot::SweepPoint> = r
            .rows
            .iter()
            .map(|row| {
                let others: Vec<String> = keys
                    .iter()
                    .zip(&row.values)
                    .enumerate()
                    .filter(|(j, _)| *j != k)
                    .map(|(_, (kk, v))| format!("{kk}={}", crate::sweep::value_text(v)))
                    .collect();
                let mut pair = format!("{} + {}", row.placement, row.migration);
                if !others.is_empty() {
                    pair += &format!(" ({})", others.join(", "));
                }
                crate::plot::SweepPoint {
                    key_value: crate::sweep::value_text(&row.values[k]),
                    pair,
                    value: value(&row.outcome),
                }
            })
            .collect();
        out.push(crate::plot::sweep_chart(metric, key, &points));
    }
    Ok(out)
}
