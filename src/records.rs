//! Tidy records: what the CSV and JSON outputs of `run`, `compare`, `sweep`, `study` and `merge`
//! hold, one record per run and the same columns everywhere, so that `pandas.read_csv` and
//! `pandas.read_json` read any of them as they are.
//!
//! A record is the varied keys (sweeps and studies only), `scenario`, `placement`, `migration`,
//! `status` (`ok`, or the error that stopped the run), every summary field, the idealized mark
//! as a number (`idealized_over_gb`, empty when the run is not idealized) and `x_best_static`
//! (empty unless the best static schedule was asked for). No comment line, no pseudo-row (the
//! bounds are columns), and an integer column holds integers only (empty on error rows).
//!
//! Not here: tables and markdown, which keep their reference rows and notes
//! ([`crate::results`], [`crate::compare`], [`crate::sweep_view`]).

use anyhow::Result;
use serde_json::Value;

use crate::results::Summary;

/// The summary's columns, in order (every field but `scenario`, `policy` and the `idealized`
/// text, which the record splits into its own columns).
pub const SUMMARY_FIELDS: [&str; 21] = [
    "decode_time_s",
    "tokens_per_s",
    "ideal_bound_s",
    "x_ideal",
    "placement_bound_s",
    "x_placement",
    "alpha_attn",
    "alpha_mlp",
    "alpha_bytes",
    "moved_to_hbm_bytes",
    "moved_to_ext_bytes",
    "passive_bytes",
    "fallbacks",
    "refused_bytes",
    "peak_hbm_kv_bytes",
    "kv_budget_bytes",
    "hbm_read_bytes",
    "ext_read_bytes",
    "queued_at_end_bytes",
    "compute_bound_rows",
    "idealized_over_gb",
];

/// One run as a record.
pub struct RunRecord<'a> {
    /// The varied keys and this run's values (empty outside sweeps and studies).
    pub keys: Vec<(&'a str, &'a toml::Value)>,
    pub scenario: &'a str,
    pub placement: &'a str,
    pub migration: &'a str,
    pub outcome: Result<&'a Summary, &'a str>,
    /// Decode time / the best static time of the run's point, when there is one.
    pub x_best_static: Option<f64>,
}

/// A varied key's column: its key, but `scenario_file` for `--vary scenario=...` (the column
/// `scenario` is the scenario's name).
fn key_column(k: &str) -> &str {
    if k == "scenario" {
        "scenario_file"
    } else {
        k
    }
}

/// The columns after the keys.
fn fixed_columns() -> Vec<&'static str> {
    let mut c = vec!["scenario", "placement", "migration", "status"];
    c.extend(SUMMARY_FIELDS);
    c.push("x_best_static");
    c
}

/// A TOML value as a JSON one (a varied key's value).
fn json_of(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        toml::Value::Boolean(b) => Value::Bool(*b),
        other => Value::String(other.to_string()),
    }
}

impl RunRecord<'_> {
    /// The record's values, in [`fixed_columns`] order after the keys (nulls where empty).
    fn values(&self) -> Result<Vec<Value>> {
        let mut out: Vec<Value> = self.keys.iter().map(|(_, v)| json_of(v)).collect();
        out.push(self.scenario.into());
        out.push(self.placement.into());
        out.push(self.migration.into());
        match self.outcome {
            Ok(s) => {
                out.push("ok".into());
                let all = serde_json::to_value(s)?;
                out.extend(SUMMARY_FIELDS.iter().map(|f| all[*f].clone()));
            }
            Err(e) => {
                out.push(e.into());
                out.extend(SUMMARY_FIELDS.iter().map(|_| Value::Null));
            }
        }
        out.push(
            self.x_best_static
                .and_then(serde_json::Number::from_f64)
                .map_or(Value::Null, Value::Number),
        );
        Ok(out)
    }
}

fn csv_quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => csv_quote(s),
        other => other.to_string(),
    }
}

/// The records as CSV: a header, then one line per run.
pub fn csv(records: &[RunRecord]) -> Result<String> {
    let mut head: Vec<String> = records
        .first()
        .map(|r| {
            r.keys
                .iter()
                .map(|(k, _)| csv_quote(key_column(k)))
                .collect()
        })
        .unwrap_or_default();
    head.extend(fixed_columns().into_iter().map(String::from));
    let mut out = head.join(",") + "\n";
    for r in records {
        let cells: Vec<String> = r.values()?.iter().map(csv_cell).collect();
        out += &cells.join(",");
        out.push('\n');
    }
    Ok(out)
}

/// The records as JSON: an array of flat objects, keys in column order.
pub fn json(records: &[RunRecord]) -> Result<String> {
    let mut out = String::from("[");
    for (i, r) in records.iter().enumerate() {
        let names = r
            .keys
            .iter()
            .map(|(k, _)| key_column(k))
            .chain(fixed_columns());
        let fields: Vec<String> = names
            .zip(r.values()?)
            .map(|(k, v)| {
                Ok(format!(
                    "    {}: {}",
                    serde_json::to_string(k)?,
                    serde_json::to_string(&v)?
                ))
            })
            .collect::<Result<_>>()?;
        out += if i == 0 { "\n  {\n" } else { ",\n  {\n" };
        out += &fields.join(",\n");
        out += "\n  }";
    }
    out += if records.is_empty() { "]\n" } else { "\n]\n" };
    Ok(out)
}

/// [`json`] if `json`, else [`csv`].
pub fn csv_or_json(records: &[RunRecord], json: bool) -> Result<String> {
    if json {
        self::json(records)
    } else {
        csv(records)
    }
}

/// [`csv`] or [`json`] by format (`None` for table and markdown).
pub fn render(records: &[RunRecord], format: crate::results::Format) -> Option<Result<String>> {
    match format {
        crate::results::Format::Csv => Some(csv(records)),
        crate::results::Format::Json => Some(json(records)),
        _ => None,
    }
}
