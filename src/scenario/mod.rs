//! Scenario files: parsing, validation and the sizes derived from them.
//!
//! A scenario is read once from TOML into raw serde structs (unknown fields rejected by name),
//! range-checked field by field, and turned into a [`Scenario`] whose [`Sizes`] hold every
//! derived byte count and bandwidth. Nothing downstream re-derives a size: the engine, the ideal
//! bound and the printed tables all read them from here.
//!
//! Not here: anything about scripts or Rhai (a policy is only a name or a path here), and
//! anything that changes during a run.
//!
//! The data flows through the submodules in order: [`units`] (quantities with units), [`file`]
//! (the raw TOML structure; all defaults live there and are listed, with their meaning, in
//! docs/scenario.md), [`validate`] (range checks and the derived [`Sizes`]).

mod file;
pub mod preset;
mod units;
mod validate;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};

pub use file::*;
pub use units::*;
use validate::validate;
pub use validate::{
    check_dims, initial_hbm_range, run_memory_bytes, work_words, MAX_LAYER_POSITIONS,
    MAX_POSITIONS, MAX_RUN_MEMORY, MAX_WORK_WORDS, WINDOW_PAST_STEPS,
};

/// GB as used in scenario files (SPEC 1: GB = 1e9 bytes).
pub const GB: f64 = 1e9;

/// `floor(b * f)`: the SPEC's fraction of a byte count.
pub fn fraction_of(bytes: u64, f: f64) -> u64 {
    (bytes as f64 * f).floor() as u64
}

/// `round(x)` as SPEC 1 defines it: half up.
pub fn round_half_up(x: f64) -> u64 {
    (x + 0.5).floor() as u64
}

/// A scenario that passed every check, with its derived sizes.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// Where it was read from (trace paths are relative to its folder); `None` when built in code.
    pub path: Option<PathBuf>,
    pub file: ScenarioFile,
    pub sizes: Sizes,
    /// The fields that came from a hardware or model preset, and their sources (empty when
    /// the scenario names no preset).
    pub provenance: Vec<preset::Provenance>,
}

/// Every number derived from a scenario, computed once.
#[derive(Debug, Clone, PartialEq)]
pub struct Sizes {
    pub layers: usize,
    pub prefill: usize,
    pub decode: usize,
    pub batch: u64,
    /// `W = params * dtype_bytes`.
    pub weights_bytes: u64,
    /// `W_l = W / L`.
    pub layer_weight_bytes: u64,
    /// `Wa = floor(W_l * attn_weight_fraction)`.
    pub attn_weight_bytes: u64,
    /// `Wm = W_l - Wa`.
    pub mlp_weight_bytes: u64,
    /// Per layer: bytes of the attention weights resident on HBM (the rest is on EXT).
    pub attn_weight_hbm: Vec<u64>,
    /// Per layer: bytes of the MLP weights resident on HBM.
    pub mlp_weight_hbm: Vec<u64>,
    /// Sum of the per-layer HBM weight parts.
    pub weights_on_hbm_bytes: u64,
    /// `k`: one KV entry (one position, one layer, whole batch).
    pub entry_bytes: u64,
    /// `bt`: positions per KV block (SPEC 14; 1 = per-token residency, v1).
    pub block_tokens: usize,
    /// `k * bt`: the HBM budget one block takes.
    pub block_bytes: u64,
    /// `P * L * k`.
    pub prefill_kv_bytes: u64,
    /// Prefill KV placed on HBM by the initial layout.
    pub initial_hbm_kv_bytes: u64,
    pub capacity_bytes: u64,
    pub kv_budget_bytes: u64,
    /// `weights on HBM + kv_budget - capacity` when an explicit budget over-subscribes HBM.
    pub oversubscribed_bytes: Option<u64>,
    pub hbm_bw: f64,
    /// LINK, EXT -> GPU/HBM direction (SPEC 10; `link_bandwidth` unless given on its own).
    pub link_read_bw: f64,
    /// LINK, GPU/HBM -> EXT direction.
    pub link_write_bw: f64,
    pub exti_bw: f64,
    /// Copy engine rates of async promotions and demotions (SPEC 12; default the link's).
    pub copy_read_bw: f64,
    pub copy_write_bw: f64,
    /// Bandwidth of EXT for the alpha target and the bounds: `min(LINK read, EXTI)` in fetch
    /// mode, EXTI in near_data.
    pub ext_effective_bw: f64,
    /// `BW_hbm / (BW_hbm + BW_ext_effective)`.
    pub alpha_target: f64,
    /// Compute (SPEC 11).
    pub compute: Compute,
}

/// What SPEC 11 needs to charge compute: the rate, the fixed cost per row and the FLOPs of each
/// sublayer's parts, derived once.
#[derive(Debug, Clone, PartialEq)]
pub struct Compute {
    /// `gpu.flops` in FLOP/s; `None`: compute is not modelled.
    pub flops_per_s: Option<f64>,
    /// `gpu.sublayer_overhead`, seconds added to every attention and MLP row.
    pub overhead_s: f64,
    /// `2 * B * Wa / dtype_bytes`.
    pub attn_weight_flops: f64,
    /// `2 * B * Wm / dtype_bytes`.
    pub mlp_flops: f64,
    /// `4 * B * q_heads * head_dim`: FLOPs per KV position the GPU reads; `None` when the model
    /// gives no `head_dim` or no `q_heads` (then `flops_per_s` is `None` too).
    pub kv_entry_flops: Option<f64>,
    pub q_heads: Option<u64>,
    pub head_dim: Option<u64>,
}

impl Compute {
    /// FLOPs of an attention sublayer whose GPU reads the KV of `positions` positions.
    pub fn attn_flops(&self, positions: u64) -> f64 {
        self.attn_weight_flops + self.kv_entry_flops.unwrap_or(0.0) * positions as f64
    }
}

impl Sizes {
    /// Positions in the whole run (`P + D`).
    pub fn positions(&self) -> usize {
        self.prefill + self.decode
    }
}

fn file_label(path: Option<&Path>) -> String {
    path.map(|p| p.display().to_string())
        .unwrap_or_else(|| "<scenario>".into())
}

impl Scenario {
    /// Reads, validates and derives a scenario file.
    pub fn load(path: &Path) -> Result<Scenario> {
        let text = crate::input::read_text(path, "scenario")?;
        Scenario::from_toml(&text, Some(path))
    }

    /// Parses and validates scenario text; `path` is used in messages and for relative paths.
    pub fn from_toml(text: &str, path: Option<&Path>) -> Result<Scenario> {
        let label = file_label(path);
        let table: toml::Table = toml::from_str(text).map_err(|e| toml_error(&label, text, &e))?;
        if preset::names_presets(&table) {
            return Scenario::from_table(table, path);
        }
        // No preset: parse the text itself, so that errors point at its lines.
        let file: ScenarioFile = toml::from_str(text).map_err(|e| toml_error(&label, text, &e))?;
        Scenario::from_file(file, path)
    }

    /// Validates a scenario given as a TOML table, first filling what its presets give.
    pub fn from_table(mut table: toml::Table, path: Option<&Path>) -> Result<Scenario> {
        let label = file_label(path);
        let provenance = preset::apply(&mut table, path).map_err(|e| anyhow!("{label}: {e:#}"))?;
        let file: ScenarioFile = toml::Value::Table(table).try_into().map_err(|e| {
            let msg = e.to_string().trim().replace('\n', " ");
            anyhow!("{label}: {msg}{}", suggestion(&msg))
        })?;
        let mut sc = Scenario::from_file(file, path)?;
        sc.provenance = provenance;
        Ok(sc)
    }

    /// Validates an already parsed scenario.
    pub fn from_file(file: ScenarioFile, path: Option<&Path>) -> Result<Scenario> {
        let label = file_label(path);
        let sizes = validate(&file).map_err(|e| anyhow!("{label}: {e}"))?;
        let name = file
            .name
            .clone()
            .or_else(|| {
                path.and_then(|p| p.file_stem())
                    .map(|s| s.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "scenario".into());
        Ok(Scenario {
            name,
            path: path.map(Path::to_path_buf),
            file,
            sizes,
            provenance: Vec::new(),
        })
    }

    /// The trace file named by the scenario, resolved against the scenario's folder.
    pub fn trace_path(&self) -> Option<PathBuf> {
        let f = self.file.skip.file.as_ref()?;
        if f.is_absolute() {
            return Some(f.clone());
        }
        let base = self
            .path
            .as_ref()
            .and_then(|p| p.parent())
            .unwrap_or(Path::new(""));
        Some(base.join(f))
    }

    /// Whether `kv_budget` over-subscribes HBM; the run is then *idealized*.
    pub fn idealized_note(&self) -> Option<String> {
        self.sizes
            .oversubscribed_bytes
            .map(|b| format!("idealized (HBM over-subscribed by {} GB)", fmt_gb(b)))
    }
}

/// Formats bytes as GB, exactly (9 decimals), trailing zeros removed.
pub fn fmt_gb(bytes: u64) -> String {
    let s = format!("{}.{:09}", bytes / 1_000_000_000, bytes % 1_000_000_000);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// "did you mean ..." for serde's `unknown field `x`, expected one of `a`, `b``.
fn suggestion(msg: &str) -> String {
    let Some(rest) = msg.strip_prefix("unknown field `") else {
        return String::new();
    };
    let Some((word, expected)) = rest.split_once("`, expected ") else {
        return String::new();
    };
    let names: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    crate::input::did_you_mean(word, &names)
        .map(|n| format!(" (did you mean `{n}`?)"))
        .unwrap_or_default()
}

pub(crate) fn toml_error(label: &str, text: &str, e: &toml::de::Error) -> anyhow::Error {
    let msg = e.message();
    match e.span() {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            let src = text.lines().nth(line - 1).unwrap_or("");
            // A bad value (`key = value` on its line) is named by its dotted field.
            let field = field_at(text, line)
                .filter(|f| !msg.contains(f.rsplit('.').next().unwrap_or(f)))
                .map(|f| format!("field `{f}`: "))
                .unwrap_or_default();
            let src = crate::input::pointed(line, src, col);
            anyhow!(
                "{label}:{line}:{col}: {field}{msg}{}\n{src}",
                suggestion(msg)
            )
        }
        None => anyhow!("{label}: {msg}"),
    }
}

/// The dotted field set on 1-based `line` (`memory.migration` for `migration = ...` under
/// `[memory]`), if that line is a `key = value` pair.
fn field_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let (key, _) = lines.get(line - 1)?.split_once('=')?;
    let key = key.trim();
    if key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        return None;
    }
    let table = lines[..line - 1]
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim());
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_string(),
    })
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|s| s.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}
