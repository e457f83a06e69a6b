//! What `kvtier watch` shows: a refresh (the rows of the live table and what changed), as a
//! table for people or a line of JSON.
//!
//! Not here: deciding what to re-run and running it (the parent module).

use std::io::Write;
use std::time::SystemTime;

use anyhow::Result;
use serde::Serialize;

/// Status of a row in the live table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowStatus {
    /// Numbers are from the current files.
    Ok,
    /// The last run failed: numbers are the last good ones.
    Stale,
    /// A file of the pair was deleted.
    Gone,
    /// Never ran successfully.
    Error,
}

/// One row of a refresh, as printed and as emitted in `--json-lines`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct WatchRow {
    pub placement: String,
    pub migration: String,
    pub status: RowStatus,
    pub decode_time_s: Option<f64>,
    pub alpha_attn: Option<f64>,
    pub alpha_mlp: Option<f64>,
    pub x_ideal: Option<f64>,
    pub x_placement: Option<f64>,
    pub moved_to_hbm_bytes: Option<u64>,
    pub moved_to_ext_bytes: Option<u64>,
    /// Change of decode time against the previous good table, in percent.
    pub decode_time_change_pct: Option<f64>,
    /// Change of attention alpha against the previous good table, in percent.
    pub alpha_attn_change_pct: Option<f64>,
    pub error: Option<String>,
}

/// One refresh, as emitted in `--json-lines`.
#[derive(Clone, Debug, Serialize)]
pub struct Refresh {
    pub refresh: u64,
    /// UTC time of day.
    pub time: String,
    /// Files whose change caused this refresh (empty for the first).
    pub changed: Vec<String>,
    /// Pairs run for this refresh.
    pub rerun: usize,
    /// Wall time of those runs.
    pub run_s: f64,
    pub scenario: String,
    /// Set when the scenario failed to load; the previous one is still in use.
    pub scenario_error: Option<String>,
    pub ideal_bound_s: Option<f64>,
    pub placement_bound_s: Option<f64>,
    pub rows: Vec<WatchRow>,
}

pub(super) fn time_of_day() -> String {
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let s = t.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03} UTC",
        s / 3600,
        s / 60 % 60,
        s % 60,
        t.subsec_millis()
    )
}

fn arrow(pct: Option<f64>) -> String {
    match pct {
        Some(p) if p.abs() < 0.005 => "= 0%".into(),
        Some(p) if p > 0.0 => format!("↑ {p:.2}%"),
        Some(p) => format!("↓ {:.2}%", -p),
        None => String::new(),
    }
}

/// The refresh as a table for people.
pub fn render(r: &Refresh) -> String {
    use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Table};
    let mut out = format!(
        "kvtier watch · {} · refresh {} at {}",
        r.scenario, r.refresh, r.time
    );
    if r.changed.is_empty() {
        out += " · first run";
    } else {
        out += &format!(" · changed: {}", r.changed.join(", "));
    }
    out += &format!(" · {} pair(s) run in {:.2} s\n", r.rerun, r.run_s);
    if let Some(e) = &r.scenario_error {
        out += &format!("scenario error: {e}\n");
    }
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    t.set_content_arrangement(ContentArrangement::Disabled);
    t.set_header([
        "placement",
        "migration",
        "status",
        "decode time (s)",
        "change",
        "alpha attn",
        "change",
        "x ideal",
        "x placement",
        "GB to HBM",
        "GB to EXT",
    ]);
    let f = |x: Option<f64>, d: usize| x.map(|v| format!("{v:.d$}")).unwrap_or_else(|| "-".into());
    let gb = |x: Option<u64>| x.map(crate::results::gb).unwrap_or_else(|| "-".into());
    if let (Some(ideal), Some(placement)) = (r.ideal_bound_s, r.placement_bound_s) {
        for (name, b) in [("ideal bound", ideal), ("placement bound", placement)] {
            t.add_row([
                name.to_string(),
                "-".into(),
                String::new(),
                format!("{b:.6}"),
                String::new(),
                "-".into(),
                String::new(),
                format!("{:.4}", b / ideal),
                format!("{:.4}", b / placement),
                "-".into(),
                "-".into(),
            ]);
        }
    }
    for row in &r.rows {
        let status = match row.status {
            RowStatus::Ok => "ok",
            RowStatus::Stale => "STALE",
            RowStatus::Gone => "gone",
            RowStatus::Error => "ERROR",
        };
        let cells = [
            row.placement.clone(),
            row.migration.clone(),
            status.to_string(),
            f(row.decode_time_s, 6),
            arrow(row.decode_time_change_pct),
            f(row.alpha_attn, 4),
            arrow(row.alpha_attn_change_pct),
            f(row.x_ideal, 4),
            f(row.x_placement, 4),
            gb(row.moved_to_hbm_bytes),
            gb(row.moved_to_ext_bytes),
        ];
        t.add_row(cells.into_iter().enumerate().map(|(i, c)| {
            let c = Cell::new(c);
            if i < 3 {
                c
            } else {
                c.set_alignment(CellAlignment::Right)
            }
        }));
    }
    out += &t.to_string();
    out.push('\n');
    for row in &r.rows {
        if let Some(e) = &row.error {
            out += &format!("{} + {}: {e}\n", row.placement, row.migration);
        }
    }
    out
}

pub(super) fn emit(out: &mut dyn Write, r: &Refresh, json: bool, tty: bool) -> Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string(r)?)?;
    } else {
        if tty {
            // Redraw in place: home, clear screen.
            write!(out, "\x1b[H\x1b[2J")?;
        }
        write!(out, "{}", render(r))?;
        if !tty {
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(())
}
