//! Results: the per-sublayer CSV of SPEC 9, the run summary, and its printed forms.
//!
//! Every number here comes from [`crate::engine::RunTotals`] and the scenario's
//! [`crate::scenario::Sizes`]; nothing is recomputed from the model.

use std::io::Write;

use anyhow::Result;
use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Table};
use serde::{Deserialize, Serialize};

use crate::bounds::Bounds;
use crate::engine::{Record, RecordSink, RunTotals};
use crate::memory::Timing;
use crate::scenario::{fmt_gb, Scenario, GB};

/// The CSV header: SPEC 9's columns, then SPEC 9b's (always appended).
pub const CSV_HEADER: &str = "step,layer,sublayer,hbm_read,ext_read,hbm_bytes,link_bytes,exti_bytes,to_hbm,to_ext,time_s,alpha,link_read,link_write,flops,copy_bytes";

/// Streams records as SPEC 9 / 9b CSV rows: the header, then the rows (the run's metadata,
/// the idealized mark included, goes to `FILE.meta.json` beside it: [`crate::csv_meta_path`]).
pub struct CsvSink<'a> {
    w: &'a mut dyn Write,
}

impl<'a> CsvSink<'a> {
    pub fn new(w: &'a mut dyn Write) -> Result<CsvSink<'a>> {
        writeln!(w, "{CSV_HEADER}")?;
        Ok(CsvSink { w })
    }
}

impl RecordSink for CsvSink<'_> {
    fn record(&mut self, r: &Record) -> Result<()> {
        let c = &r.charges;
        let layer = r.layer.map(|l| l.to_string()).unwrap_or_default();
        let alpha = c.alpha().map(|a| a.to_string()).unwrap_or_default();
        let flops = r.flops.map(|f| f.to_string()).unwrap_or_default();
        writeln!(
            self.w,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            r.step,
            layer,
            r.sublayer.name(),
            c.hbm_read,
            c.ext_read,
            c.hbm,
            c.link(),
            c.exti,
            c.to_hbm,
            c.to_ext,
            r.time_s,
            alpha,
            c.link_read,
            c.link_write,
            flops,
            c.copy
        )?;
        Ok(())
    }
}

/// A run's summary: what tables, CSV and JSON show for one run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub scenario: String,
    pub policy: String,
    pub decode_time_s: f64,
    pub tokens_per_s: f64,
    pub ideal_bound_s: f64,
    /// Decode time / ideal bound.
    pub x_ideal: f64,
    /// The placement bound (SPEC 13): a tighter lower bound than the ideal one.
    pub placement_bound_s: f64,
    /// Decode time / placement bound.
    pub x_placement: f64,
    /// Mean alpha of the attention sublayers that read something.
    pub alpha_attn: Option<f64>,
    /// Mean alpha of the MLP sublayers.
    pub alpha_mlp: Option<f64>,
    /// HBM bytes read / all bytes read, over the run.
    pub alpha_bytes: Option<f64>,
    pub moved_to_hbm_bytes: u64,
    pub moved_to_ext_bytes: u64,
    /// Part of `moved_to_hbm_bytes` installed by passive migration.
    pub passive_bytes: u64,
    pub fallbacks: u64,
    pub refused_bytes: u64,
    pub peak_hbm_kv_bytes: u64,
    pub kv_budget_bytes: u64,
    pub hbm_read_bytes: u64,
    pub ext_read_bytes: u64,
    /// Bytes still on the copy queue when the run ended (async migration; 0 in sync mode).
    pub queued_at_end_bytes: u64,
    /// Attention and MLP rows whose time compute set (0 when compute is not modelled).
    pub compute_bound_rows: u64,
    /// `Some("idealized (HBM over-subscribed by X GB)")` when the budget over-subscribes HBM.
    pub idealized: Option<String>,
    /// The same mark as a number: X, the GB by which the budget over-subscribes HBM.
    #[serde(default)]
    pub idealized_over_gb: Option<f64>,
}

impl Summary {
    pub fn new(scenario: &Scenario, policy: String, t: &RunTotals) -> Summary {
        let s = &scenario.sizes;
        let div = |a: f64, b: u64| (b > 0).then(|| a / b as f64);
        let c = &t.charges;
        Summary {
            scenario: scenario.name.clone(),
            policy,
            decode_time_s: t.decode_time_s,
            tokens_per_s: (s.decode as u64 * s.batch) as f64 / t.decode_time_s,
            ideal_bound_s: t.bound_s,
            x_ideal: t.decode_time_s / t.bound_s,
            placement_bound_s: t.placement_bound_s,
            x_placement: t.decode_time_s / t.placement_bound_s,
            alpha_attn: div(t.attn_alpha_sum, t.attn_rows),
            alpha_mlp: div(t.mlp_alpha_sum, t.mlp_rows),
            alpha_bytes: c.alpha(),
            moved_to_hbm_bytes: c.to_hbm,
            // Async inclusive drops count here but in no row (SPEC 12).
            moved_to_ext_bytes: c.to_ext + t.counters.async_dropped_bytes,
            passive_bytes: t.counters.passive_bytes,
            fallbacks: t.counters.fallbacks,
            refused_bytes: t.counters.refused_bytes,
            peak_hbm_kv_bytes: t.counters.peak_hbm_kv_bytes,
            kv_budget_bytes: s.kv_budget_bytes,
            hbm_read_bytes: c.hbm_read,
            ext_read_bytes: c.ext_read,
            queued_at_end_bytes: t.queued_at_end_bytes,
            compute_bound_rows: t.compute_bound_rows,
            idealized: scenario.idealized_note(),
            idealized_over_gb: s.oversubscribed_bytes.map(|b| b as f64 / GB),
        }
    }
}

/// Median of timing samples (the mean of the middle two for an even count); sorts `v`.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// How to print summaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Markdown,
    Csv,
    Json,
}

/// Bytes as GB with 3 decimals, for table cells.
pub(crate) fn gb(b: u64) -> String {
    format!("{:.3}", b as f64 / GB)
}

/// A ratio with 4 decimals, `-` when absent, for table cells.
pub(crate) fn opt(a: Option<f64>) -> String {
    a.map(|a| format!("{a:.4}")).unwrap_or_else(|| "-".into())
}

/// Columns of the summary table, in order, with their values for one summary.
fn columns(s: &Summary) -> Vec<(&'static str, String)> {
    vec![
        ("policy", s.policy.clone()),
        ("decode time (s)", format!("{:.6}", s.decode_time_s)),
        ("tokens/s", format!("{:.3}", s.tokens_per_s)),
        ("x ideal", format!("{:.4}", s.x_ideal)),
        ("x placement", format!("{:.4}", s.x_placement)),
        ("alpha attn", opt(s.alpha_attn)),
        ("alpha mlp", opt(s.alpha_mlp)),
        ("alpha bytes", opt(s.alpha_bytes)),
        ("GB to HBM", gb(s.moved_to_hbm_bytes)),
        ("GB to EXT", gb(s.moved_to_ext_bytes)),
        ("fallbacks", s.fallbacks.to_string()),
        ("refused GB", gb(s.refused_bytes)),
        ("peak HBM KV GB", gb(s.peak_hbm_kv_bytes)),
        ("queued GB at end", gb(s.queued_at_end_bytes)),
        ("compute-bound rows", s.compute_bound_rows.to_string()),
    ]
}

/// Renders summaries (one row each) in the chosen format. Tables carry the idealized note.
pub fn render(summaries: &[Summary], format: Format) -> Result<String> {
    let idealized = summaries.iter().find_map(|s| s.idealized.clone());
    match format {
        Format::Json => Ok(serde_json::to_string_pretty(summaries)? + "\n"),
        Format::Csv => {
            let mut out = String::new();
            if let Some(note) = &idealized {
                out += &format!("# {note}\n");
            }
            out += "scenario,policy,decode_time_s,tokens_per_s,ideal_bound_s,x_ideal,alpha_attn,alpha_mlp,alpha_bytes,moved_to_hbm_bytes,moved_to_ext_bytes,passive_bytes,fallbacks,refused_bytes,peak_hbm_kv_bytes,kv_budget_bytes,idealized,placement_bound_s,x_placement,queued_at_end_bytes,compute_bound_rows\n";
            let o = |a: Option<f64>| a.map(|a| a.to_string()).unwrap_or_default();
            for s in summaries {
                out += &format!(
                    "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                    s.scenario,
                    s.policy,
                    s.decode_time_s,
                    s.tokens_per_s,
                    s.ideal_bound_s,
                    s.x_ideal,
                    o(s.alpha_attn),
                    o(s.alpha_mlp),
                    o(s.alpha_bytes),
                    s.moved_to_hbm_bytes,
                    s.moved_to_ext_bytes,
                    s.passive_bytes,
                    s.fallbacks,
                    s.refused_bytes,
                    s.peak_hbm_kv_bytes,
                    s.kv_budget_bytes,
                    s.idealized.is_some(),
                    s.placement_bound_s,
                    s.x_placement,
                    s.queued_at_end_bytes,
                    s.compute_bound_rows
                );
            }
            Ok(out)
        }
        Format::Table | Format::Markdown => {
            let mut table = Table::new();
            table.load_preset(if format == Format::Markdown {
                presets::ASCII_MARKDOWN
            } else {
                presets::UTF8_FULL_CONDENSED
            });
            table.set_content_arrangement(ContentArrangement::Disabled);
            let Some(first) = summaries.first() else {
                return Ok(String::new());
            };
            table.set_header(columns(first).into_iter().map(|(h, _)| Cell::new(h)));
            for s in summaries {
                table.add_row(columns(s).into_iter().enumerate().map(|(i, (_, v))| {
                    let c = Cell::new(v);
                    if i == 0 {
                        c
                    } else {
                        c.set_alignment(CellAlignment::Right)
                    }
                }));
            }
            let mut out = String::new();
            if let Some(s) = summaries.first() {
                out += &format!("scenario: {}", s.scenario);
                out += &format!(
                    "   ideal bound: {:.6} s   placement bound: {:.6} s\n",
                    s.ideal_bound_s, s.placement_bound_s
                );
            }
            if let Some(note) = idealized {
                out += &format!("** {note} **\n");
            }
            out += &table.to_string();
            out.push('\n');
            Ok(out)
        }
    }
}

/// The derived sizes of a scenario as `kvtier scenario show` prints them (and the report).
/// An enum as a scenario file writes it: `NearData` is `near_data` (serde's snake_case).
fn as_written(v: &impl std::fmt::Debug) -> String {
    let mut out = String::new();
    for (i, c) in format!("{v:?}").chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

pub fn scenario_rows(sc: &Scenario) -> Vec<(&'static str, String)> {
    let s = &sc.sizes;
    let f = &sc.file;
    let gbs = |b: u64| format!("{} GB ({b} bytes)", fmt_gb(b));
    let bw = |b: f64| {
        if b >= GB {
            format!("{} GB/s", b / GB)
        } else {
            format!("{b} B/s")
        }
    };
    let bounds = Bounds::new(s, Timing::of(sc), f.ext.access);
    let mut rows = vec![
        (
            "layers / prefill / decode / batch",
            format!("{} / {} / {} / {}", s.layers, s.prefill, s.decode, s.batch),
        ),
        ("weights W", gbs(s.weights_bytes)),
        (
            "per layer W_l (attn Wa + mlp Wm)",
            format!(
                "{} B ({} + {})",
                s.layer_weight_bytes, s.attn_weight_bytes, s.mlp_weight_bytes
            ),
        ),
        (
            "weights on HBM",
            format!(
                "{} ({}, share {})",
                gbs(s.weights_on_hbm_bytes),
                as_written(&f.initial.weights_layout),
                f.initial.weights_on_hbm
            ),
        ),
        (
            "KV entry k (one position, one layer, whole batch)",
            format!("{} B", s.entry_bytes),
        ),
        (
            "KV per token (all layers)",
            format!("{} B", s.entry_bytes * s.layers as u64),
        ),
        ("prefill KV", gbs(s.prefill_kv_bytes)),
        (
            "prefill KV on HBM at start",
            format!(
                "{} ({}, share {})",
                gbs(s.initial_hbm_kv_bytes),
                as_written(&f.initial.prefill_kv_layout),
                f.initial.prefill_kv_on_hbm
            ),
        ),
        (
            "KV at end of run (no skips)",
            gbs(s.entry_bytes * s.layers as u64 * s.positions() as u64),
        ),
        ("HBM capacity", gbs(s.capacity_bytes)),
        (
            "HBM KV budget",
            format!(
                "{}{}",
                gbs(s.kv_budget_bytes),
                if f.hbm.kv_budget.is_some() {
                    " (set)"
                } else {
                    " (capacity - weights on HBM)"
                }
            ),
        ),
        (
            "idealized",
            sc.idealized_note().unwrap_or_else(|| "no".into()),
        ),
        (
            "bandwidth HBM / LINK read / LINK write / EXTI",
            format!(
                "{} / {} / {} / {}",
                bw(s.hbm_bw),
                bw(s.link_read_bw),
                bw(s.link_write_bw),
                bw(s.exti_bw)
            ),
        ),
        (
            "link duplex / access / hierarchy / overlap / migration",
            format!(
                "{} / {} / {} / {} / {}",
                as_written(&f.ext.link_duplex),
                as_written(&f.ext.access),
                as_written(&f.memory.hierarchy),
                as_written(&f.memory.overlap),
                f.memory.migration.name()
            ),
        ),
        (
            "copy engine promote / demote (async)",
            format!("{} / {}", bw(s.copy_read_bw), bw(s.copy_write_bw)),
        ),
        ("alpha target", format!("{:.6}", s.alpha_target)),
        ("GPU compute", compute_text(sc)),
    ];
    rows.extend(flops_rows(sc, &bounds));
    let (ideal, placement) = bounds.no_skip();
    rows.push(("ideal bound, no-skip run", format!("{ideal:.6} s")));
    rows.push(("placement bound, no-skip run", format!("{placement:.6} s")));
    rows
}

/// `gpu.flops` and the per-row overhead, or that compute is not modelled.
fn compute_text(sc: &Scenario) -> String {
    let c = &sc.sizes.compute;
    let overhead = format!("{} s added per attention and MLP row", c.overhead_s);
    match c.flops_per_s {
        Some(f) => format!("{} TFLOP/s; {overhead}", f / 1e12),
        None => format!("not modelled (no gpu.flops); {overhead}"),
    }
}

/// FLOPs per attention and MLP sublayer at the first and last step of a no-skip run, and
/// whether decode is compute-bound there (even at the best split of each row).
fn flops_rows(sc: &Scenario, bounds: &Bounds) -> Vec<(&'static str, String)> {
    let s = &sc.sizes;
    let c = &s.compute;
    let (first, last) = (s.prefill as u64, (s.prefill + s.decode - 1) as u64);
    let mut rows = vec![("FLOPs per MLP sublayer", format!("{:.6e}", c.mlp_flops))];
    if c.kv_entry_flops.is_some() {
        rows.push((
            "FLOPs per attention sublayer, first / last step",
            format!(
                "{:.6e} / {:.6e} (q_heads {}, head_dim {})",
                c.attn_flops(first),
                c.attn_flops(last),
                c.q_heads.unwrap_or(0),
                c.head_dim.unwrap_or(0)
            ),
        ));
    }
    if c.flops_per_s.is_some() {
        let (a0, m) = bounds.compute_bound_layers(first);
        let (a1, _) = bounds.compute_bound_layers(last);
        rows.push((
            "compute-bound layers at the best split, first / last step",
            format!(
                "attention {a0} / {a1}, MLP {m} / {m} of {} layers",
                s.layers
            ),
        ));
    }
    rows
}
