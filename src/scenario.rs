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
//! All defaults live in the `Default` impls of the raw structs below and are listed, with their
//! meaning, in docs/scenario.md.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

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

// ---------------------------------------------------------------------------------------------
// Quantities with units

/// A byte size in a scenario: a number means GB; a string carries its unit
/// (`"57344 B"`, `"1.5 KB"`, `"141 GB"`, `"2 GiB"`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ByteSize(pub u64);

/// A bandwidth in a scenario: a number means GB/s; a string carries its unit
/// (`"900 GB/s"`, `"100 B/s"`, `"1.2 TB/s"`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bandwidth(pub f64);

fn unit_factor(unit: &str) -> Option<f64> {
    Some(match unit {
        "B" => 1.0,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0f64.powi(4),
        _ => return None,
    })
}

fn split_number_unit(s: &str) -> Option<(f64, &str)> {
    let s = s.trim();
    let idx = s.find(|c: char| c.is_ascii_alphabetic())?;
    let num: f64 = s[..idx].trim().replace('_', "").parse().ok()?;
    Some((num, s[idx..].trim()))
}

struct ByteSizeVisitor;

impl Visitor<'_> for ByteSizeVisitor {
    type Value = ByteSize;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(
            "a size: a number of GB, or a string such as \"57344 B\", \"1.5 MB\", \"141 GB\"",
        )
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
        self.visit_f64(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
        self.visit_f64(v as f64)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ByteSize, E> {
        if !(v.is_finite() && v >= 0.0) {
            return Err(E::custom(format!(
                "size {v} GB is not a finite number >= 0"
            )));
        }
        Ok(ByteSize(round_half_up(v * GB)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<ByteSize, E> {
        let (num, unit) = split_number_unit(s).ok_or_else(|| {
            E::custom(format!(
                "cannot read size {s:?}: expected e.g. \"57344 B\" or \"141 GB\""
            ))
        })?;
        let factor = unit_factor(unit).ok_or_else(|| {
            E::custom(format!(
                "unknown size unit {unit:?} in {s:?}: use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
            ))
        })?;
        if !(num.is_finite() && num >= 0.0) {
            return Err(E::custom(format!("size {s:?} is not a finite number >= 0")));
        }
        Ok(ByteSize(round_half_up(num * factor)))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ByteSizeVisitor)
    }
}

struct BandwidthVisitor;

impl Visitor<'_> for BandwidthVisitor {
    type Value = Bandwidth;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(
            "a bandwidth: a number of GB/s, or a string such as \"900 GB/s\" or \"100 B/s\"",
        )
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bandwidth, E> {
        self.visit_f64(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bandwidth, E> {
        self.visit_f64(v as f64)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Bandwidth, E> {
        // Range checks (> 0) happen in validation, where the field name is known.
        Ok(Bandwidth(v * GB))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Bandwidth, E> {
        let bad = || {
            E::custom(format!(
                "cannot read bandwidth {s:?}: expected e.g. \"900 GB/s\" or \"100 B/s\""
            ))
        };
        let (num, unit) = split_number_unit(s).ok_or_else(bad)?;
        let unit = unit.strip_suffix("/s").ok_or_else(bad)?;
        let factor = unit_factor(unit).ok_or_else(|| {
            E::custom(format!(
                "unknown bandwidth unit {unit:?}/s in {s:?}: use B/s, KB/s, MB/s, GB/s or TB/s"
            ))
        })?;
        Ok(Bandwidth(num * factor))
    }
}

impl<'de> Deserialize<'de> for Bandwidth {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BandwidthVisitor)
    }
}

// ---------------------------------------------------------------------------------------------
// Raw file structure (serde). Every field and its default is documented in docs/scenario.md.

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Free text shown in tables; defaults to the file stem.
    #[serde(default)]
    pub name: Option<String>,
    /// Seed of every pseudo-random choice (trace generators).
    #[serde(default)]
    pub seed: u64,
    pub model: ModelSection,
    pub workload: WorkloadSection,
    pub hbm: HbmSection,
    pub ext: ExtSection,
    #[serde(default)]
    pub memory: MemorySection,
    #[serde(default)]
    pub initial: InitialSection,
    #[serde(default)]
    pub skip: SkipSection,
    #[serde(default)]
    pub policy: PolicySection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    pub layers: u64,
    /// Parameter count (a float such as 75e9 is accepted when it is a whole number).
    pub params: f64,
    #[serde(default = "default_dtype_bytes")]
    pub dtype_bytes: u64,
    /// Share of each layer's weights in the attention sublayer; default exactly 1/3.
    #[serde(default)]
    pub attn_weight_fraction: Option<f64>,
    #[serde(default)]
    pub kv_heads: Option<u64>,
    #[serde(default)]
    pub head_dim: Option<u64>,
    #[serde(default = "default_dtype_bytes")]
    pub kv_dtype_bytes: u64,
    /// Bytes of one position's keys and values at one layer for ONE sequence; replaces
    /// `2 * kv_heads * head_dim * kv_dtype_bytes` and is multiplied by the batch.
    #[serde(default)]
    pub kv_bytes: Option<ByteSize>,
}

fn default_dtype_bytes() -> u64 {
    2
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSection {
    pub prefill: u64,
    pub decode: u64,
    #[serde(default = "one")]
    pub batch: u64,
}

fn one() -> u64 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HbmSection {
    pub capacity: ByteSize,
    pub bandwidth: Bandwidth,
    #[serde(default)]
    pub kv_budget: Option<ByteSize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Duplex {
    /// One LINK budget shared by both directions.
    Shared,
    /// Read and write directions are separate resources of `link_bandwidth` each.
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Fetch,
    NearData,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtSection {
    pub link_bandwidth: Bandwidth,
    pub internal_bandwidth: Bandwidth,
    #[serde(default = "default_duplex")]
    pub link_duplex: Duplex,
    #[serde(default = "default_access")]
    pub access: Access,
}

fn default_duplex() -> Duplex {
    Duplex::Shared
}
fn default_access() -> Access {
    Access::Fetch
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hierarchy {
    Exclusive,
    Inclusive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    Max,
    Serial,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemorySection {
    #[serde(default = "default_hierarchy")]
    pub hierarchy: Hierarchy,
    #[serde(default = "default_overlap")]
    pub overlap: Overlap,
    #[serde(default)]
    pub passive_migration: bool,
}

fn default_hierarchy() -> Hierarchy {
    Hierarchy::Exclusive
}
fn default_overlap() -> Overlap {
    Overlap::Max
}

impl Default for MemorySection {
    fn default() -> Self {
        MemorySection {
            hierarchy: Hierarchy::Exclusive,
            overlap: Overlap::Max,
            passive_migration: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightsLayout {
    Uniform,
    FirstLayers,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrefillLayout {
    Newest,
    Oldest,
    FirstLayers,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitialSection {
    #[serde(default = "one_f")]
    pub weights_on_hbm: f64,
    #[serde(default = "default_weights_layout")]
    pub weights_layout: WeightsLayout,
    #[serde(default = "one_f")]
    pub prefill_kv_on_hbm: f64,
    #[serde(default = "default_prefill_layout")]
    pub prefill_kv_layout: PrefillLayout,
}

fn one_f() -> f64 {
    1.0
}
fn default_weights_layout() -> WeightsLayout {
    WeightsLayout::Uniform
}
fn default_prefill_layout() -> PrefillLayout {
    PrefillLayout::Newest
}

impl Default for InitialSection {
    fn default() -> Self {
        InitialSection {
            weights_on_hbm: 1.0,
            weights_layout: WeightsLayout::Uniform,
            prefill_kv_on_hbm: 1.0,
            prefill_kv_layout: PrefillLayout::Newest,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipSource {
    None,
    Uniform,
    HeavyHitter,
    File,
}

/// A per-layer rate: one number (a mean, shaped by depth where the generator says so) or one
/// value per layer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum LayerRates {
    Mean(f64),
    PerLayer(Vec<f64>),
}

impl Default for LayerRates {
    fn default() -> Self {
        LayerRates::Mean(0.0)
    }
}

/// Named sets of heavy-hitter defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipProfile {
    /// The generator's own defaults (sinks 4, recent 64, pages of 16, keep 0.7, 2 dense layers).
    Default,
    /// Fitted to traces recorded from SmolLM2-135M under a 90%-attention-mass rule (see
    /// docs/traces.md): sinks 1, recent 48, per-position selection, keep 0.3, 1 dense layer, and
    /// a default rate of 0.65.
    Calibrated,
}

/// The `[skip]` section, with every default resolved (a profile's, then the generator's).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "SkipRaw")]
pub struct SkipSection {
    pub source: SkipSource,
    pub profile: SkipProfile,
    /// Mean share of past positions skipped by attention (uniform, heavy_hitter).
    pub rate: f64,
    /// Trace file for `source = "file"`, relative to the scenario file.
    pub file: Option<PathBuf>,
    /// Replay a trace file of other dimensions scaled to the scenario (see `trace::scale`).
    pub scale: bool,
    /// Probability that a whole layer is skipped at a step.
    pub layer_skip_rate: LayerRates,
    /// Probability that only the MLP sublayer is skipped at a step.
    pub mlp_skip_rate: LayerRates,
    pub sinks: u64,
    pub recent: u64,
    pub page: u64,
    /// Share of the important (read) set kept from one step to the next.
    pub keep: f64,
    /// Leading layers never skipped (tokens, layers or MLP).
    pub dense_layers: u64,
    /// How much the per-layer skipped share grows with depth: the shallowest sparse layer gets
    /// `mean * (1 - depth_spread)`, the deepest `mean * (1 + depth_spread)`.
    pub depth_spread: f64,
}

/// `[skip]` as written: what is absent comes from the profile, then the generator's defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SkipRaw {
    source: Option<SkipSource>,
    profile: Option<SkipProfile>,
    rate: Option<f64>,
    file: Option<PathBuf>,
    scale: Option<bool>,
    layer_skip_rate: Option<LayerRates>,
    mlp_skip_rate: Option<LayerRates>,
    sinks: Option<u64>,
    recent: Option<u64>,
    page: Option<u64>,
    keep: Option<f64>,
    dense_layers: Option<u64>,
    depth_spread: Option<f64>,
}

impl TryFrom<SkipRaw> for SkipSection {
    type Error = String;
    fn try_from(r: SkipRaw) -> Result<SkipSection, String> {
        let profile = r.profile.unwrap_or(SkipProfile::Default);
        let source = r.source.unwrap_or(SkipSource::None);
        if profile == SkipProfile::Calibrated && source != SkipSource::HeavyHitter {
            return Err("`profile = \"calibrated\"` shapes the heavy_hitter generator: set `source = \"heavy_hitter\"`".into());
        }
        // (sinks, recent, page, keep, dense_layers, depth_spread, rate)
        let d = match profile {
            SkipProfile::Default => (4, 64, 16, 0.7, 2, 0.5, 0.0),
            SkipProfile::Calibrated => (1, 48, 1, 0.3, 1, 0.5, 0.65),
        };
        Ok(SkipSection {
            source,
            profile,
            rate: r.rate.unwrap_or(d.6),
            file: r.file,
            scale: r.scale.unwrap_or(false),
            layer_skip_rate: r.layer_skip_rate.unwrap_or_default(),
            mlp_skip_rate: r.mlp_skip_rate.unwrap_or_default(),
            sinks: r.sinks.unwrap_or(d.0),
            recent: r.recent.unwrap_or(d.1),
            page: r.page.unwrap_or(d.2),
            keep: r.keep.unwrap_or(d.3),
            dense_layers: r.dense_layers.unwrap_or(d.4),
            depth_spread: r.depth_spread.unwrap_or(d.5),
        })
    }
}

impl Default for SkipSection {
    fn default() -> Self {
        SkipSection::try_from(SkipRaw::default()).expect("the default profile always resolves")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// Placement strategy: a native name (`hbm`, `ext`) or a script path.
    #[serde(default = "default_placement")]
    pub placement: String,
    /// Migration strategy: `none` or a script path.
    #[serde(default = "default_migration")]
    pub migration: String,
    /// How many future steps of the trace a policy may look at.
    #[serde(default = "default_lookahead")]
    pub lookahead: u64,
    /// Free parameters handed to the scripts.
    #[serde(default)]
    pub params: toml::Table,
}

fn default_placement() -> String {
    "hbm".into()
}
fn default_migration() -> String {
    "none".into()
}
fn default_lookahead() -> u64 {
    16
}

impl Default for PolicySection {
    fn default() -> Self {
        PolicySection {
            placement: default_placement(),
            migration: default_migration(),
            lookahead: default_lookahead(),
            params: toml::Table::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Validated scenario

/// A scenario that passed every check, with its derived sizes.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// Where it was read from (trace paths are relative to its folder); `None` when built in code.
    pub path: Option<PathBuf>,
    pub file: ScenarioFile,
    pub sizes: Sizes,
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
    /// `P * L * k`.
    pub prefill_kv_bytes: u64,
    /// Prefill KV placed on HBM by the initial layout.
    pub initial_hbm_kv_bytes: u64,
    pub capacity_bytes: u64,
    pub kv_budget_bytes: u64,
    /// `weights on HBM + kv_budget - capacity` when an explicit budget over-subscribes HBM.
    pub oversubscribed_bytes: Option<u64>,
    pub hbm_bw: f64,
    pub link_bw: f64,
    pub exti_bw: f64,
    /// Bandwidth of EXT for the alpha target: `min(LINK, EXTI)` in fetch mode, EXTI in near_data.
    pub ext_effective_bw: f64,
    /// `BW_hbm / (BW_hbm + BW_ext_effective)`.
    pub alpha_target: f64,
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
        let text = std::fs::read(path)
            .with_context(|| format!("cannot read scenario {}", path.display()))?;
        let text = String::from_utf8(text).map_err(|e| {
            anyhow!(
                "{}: not UTF-8 text (invalid byte at offset {})",
                path.display(),
                e.utf8_error().valid_up_to()
            )
        })?;
        Scenario::from_toml(&text, Some(path))
    }

    /// Parses and validates scenario text; `path` is used in messages and for relative paths.
    pub fn from_toml(text: &str, path: Option<&Path>) -> Result<Scenario> {
        let label = file_label(path);
        let file: ScenarioFile = toml::from_str(text).map_err(|e| toml_error(&label, text, &e))?;
        Scenario::from_file(file, path)
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

pub(crate) fn toml_error(label: &str, text: &str, e: &toml::de::Error) -> anyhow::Error {
    let msg = e.message();
    match e.span() {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            let src = text.lines().nth(line - 1).unwrap_or("");
            anyhow!("{label}:{line}:{col}: {msg}\n  {line} | {src}")
        }
        None => anyhow!("{label}: {msg}"),
    }
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

struct Check(Vec<String>);

impl Check {
    fn fail(&mut self, field: &str, value: impl fmt::Display, valid: &str) {
        self.0.push(format!("field `{field}` = {value}: {valid}"));
    }
    fn fraction(&mut self, field: &str, v: f64) {
        if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
            self.fail(field, v, "must be a fraction in [0, 1]");
        }
    }
    fn positive_bw(&mut self, field: &str, v: f64) {
        if !(v.is_finite() && v > 0.0) {
            self.fail(field, format!("{} GB/s", v / GB), "must be a bandwidth > 0");
        }
    }
    fn rates(&mut self, field: &str, r: &LayerRates, layers: u64) {
        match r {
            LayerRates::Mean(v) => self.fraction(field, *v),
            LayerRates::PerLayer(vs) => {
                if vs.len() as u64 != layers {
                    self.fail(
                        field,
                        format!("{} values", vs.len()),
                        &format!("needs one rate per layer ({layers})"),
                    );
                }
                for (i, v) in vs.iter().enumerate() {
                    self.fraction(&format!("{field}[{i}]"), *v);
                }
            }
        }
    }
}

/// Largest run we accept: positions and steps are kept in memory as bitsets per layer.
pub const MAX_POSITIONS: u64 = 1 << 26;
/// Largest `layers * positions`: one step of a trace holds that many bits (512 MiB).
pub const MAX_LAYER_POSITIONS: u64 = 1 << 32;

/// Whether run dimensions fit the limits above (shared by scenarios and trace readers).
pub fn check_dims(prefill: u64, decode: u64, layers: u64) -> std::result::Result<(), String> {
    let positions = prefill.saturating_add(decode);
    if decode == 0 || !(1..=10_000).contains(&layers) {
        return Err(format!(
            "decode = {decode}, layers = {layers}: need decode >= 1 and layers in 1..=10000"
        ));
    }
    if positions > MAX_POSITIONS || positions.saturating_mul(layers) > MAX_LAYER_POSITIONS {
        return Err(format!(
            "prefill + decode = {positions} positions x {layers} layers: at most {MAX_POSITIONS} positions and {MAX_LAYER_POSITIONS} layer-positions"
        ));
    }
    Ok(())
}

fn validate(f: &ScenarioFile) -> Result<Sizes> {
    let mut c = Check(Vec::new());
    let m = &f.model;
    if m.layers == 0 || m.layers > 10_000 {
        c.fail("model.layers", m.layers, "must be an integer in 1..=10000");
    }
    if !(m.params.is_finite() && m.params >= 1.0 && m.params.fract() == 0.0 && m.params < 1e18) {
        c.fail(
            "model.params",
            m.params,
            "must be a whole number of parameters >= 1",
        );
    }
    if !(1..=16).contains(&m.dtype_bytes) {
        c.fail(
            "model.dtype_bytes",
            m.dtype_bytes,
            "must be 1..=16 bytes per parameter",
        );
    }
    if !(1..=16).contains(&m.kv_dtype_bytes) {
        c.fail(
            "model.kv_dtype_bytes",
            m.kv_dtype_bytes,
            "must be 1..=16 bytes per value",
        );
    }
    let attn_fraction = m.attn_weight_fraction;
    if let Some(a) = attn_fraction {
        c.fraction("model.attn_weight_fraction", a);
    }
    let per_seq_kv = match (m.kv_bytes, m.kv_heads, m.head_dim) {
        (Some(b), None, None) => {
            if b.0 == 0 {
                c.fail("model.kv_bytes", "0 B", "must be > 0 bytes");
            }
            b.0
        }
        (Some(_), _, _) => {
            c.fail(
                "model.kv_bytes",
                "set",
                "give either `kv_bytes` or `kv_heads` + `head_dim`, not both",
            );
            0
        }
        (None, Some(h), Some(d)) => {
            if h == 0 {
                c.fail("model.kv_heads", h, "must be >= 1");
            }
            if d == 0 {
                c.fail("model.head_dim", d, "must be >= 1");
            }
            2 * h * d * m.kv_dtype_bytes
        }
        (None, _, _) => {
            c.fail(
                "model",
                "no KV size",
                "give `kv_heads` and `head_dim`, or `kv_bytes`",
            );
            0
        }
    };
    let w = &f.workload;
    if w.decode == 0 {
        c.fail("workload.decode", w.decode, "must be >= 1 decode step");
    }
    if w.batch == 0 || w.batch > 1 << 20 {
        c.fail("workload.batch", w.batch, "must be in 1..=1048576");
    }
    if m.layers > 0 && w.decode > 0 {
        if let Err(e) = check_dims(w.prefill, w.decode, m.layers) {
            c.fail(
                "workload.prefill + workload.decode",
                w.prefill.saturating_add(w.decode),
                &e,
            );
        }
    }
    c.positive_bw("hbm.bandwidth", f.hbm.bandwidth.0);
    c.positive_bw("ext.link_bandwidth", f.ext.link_bandwidth.0);
    c.positive_bw("ext.internal_bandwidth", f.ext.internal_bandwidth.0);
    c.fraction("initial.weights_on_hbm", f.initial.weights_on_hbm);
    c.fraction("initial.prefill_kv_on_hbm", f.initial.prefill_kv_on_hbm);
    let s = &f.skip;
    c.fraction("skip.rate", s.rate);
    if s.rate >= 1.0 {
        c.fail(
            "skip.rate",
            s.rate,
            "must be < 1 (a whole skipped layer is `skip.layer_skip_rate`)",
        );
    }
    c.rates("skip.layer_skip_rate", &s.layer_skip_rate, m.layers);
    c.rates("skip.mlp_skip_rate", &s.mlp_skip_rate, m.layers);
    c.fraction("skip.keep", s.keep);
    c.fraction("skip.depth_spread", s.depth_spread);
    if s.page == 0 || s.page > 1 << 16 {
        c.fail("skip.page", s.page, "must be in 1..=65536 positions");
    }
    if s.dense_layers > m.layers {
        c.fail(
            "skip.dense_layers",
            s.dense_layers,
            &format!("must be <= model.layers ({})", m.layers),
        );
    }
    match (s.source, &s.file) {
        (SkipSource::File, None) => c.fail(
            "skip.file",
            "missing",
            "`source = \"file\"` needs `file = \"path/to/trace.kvtrace\"`",
        ),
        (src, Some(_)) if src != SkipSource::File => {
            c.fail("skip.file", "set", "only used with `source = \"file\"`")
        }
        _ => {}
    }
    if s.scale && s.source != SkipSource::File {
        c.fail("skip.scale", true, "only used with `source = \"file\"`");
    }
    // `none` skips no token but may still skip whole layers or MLPs; a file says it all.
    if s.source == SkipSource::File
        && (s.layer_skip_rate != LayerRates::default() || s.mlp_skip_rate != LayerRates::default())
    {
        c.fail(
            "skip.layer_skip_rate / skip.mlp_skip_rate",
            "set",
            "not used with `source = \"file\"`: the trace says which layers are skipped",
        );
    }
    if s.source == SkipSource::File && s.rate > 0.0 {
        c.fail(
            "skip.rate",
            s.rate,
            "has no effect with `source = \"file\"`: the trace says what is skipped",
        );
    }
    if s.source == SkipSource::None && s.rate > 0.0 {
        c.fail(
            "skip.rate",
            s.rate,
            "has no effect with `source = \"none\"`: choose `uniform` or `heavy_hitter`",
        );
    }
    if f.policy.lookahead > 1 << 16 {
        c.fail(
            "policy.lookahead",
            f.policy.lookahead,
            "must be in 0..=65536 steps",
        );
    }
    if !c.0.is_empty() {
        bail!("{}", c.0.join("\n"));
    }

    // Derived sizes (SPEC 2-4).
    let layers = m.layers as usize;
    let weights_bytes = (m.params as u64)
        .checked_mul(m.dtype_bytes)
        .ok_or_else(|| {
            anyhow!(
                "field `model.params` = {}: weights overflow 64-bit bytes",
                m.params
            )
        })?;
    let layer_weight_bytes = weights_bytes / m.layers;
    let attn_weight_bytes = match attn_fraction {
        // The default is exactly 1/3, not the float nearest to it.
        None => layer_weight_bytes / 3,
        Some(a) => fraction_of(layer_weight_bytes, a),
    };
    let mlp_weight_bytes = layer_weight_bytes - attn_weight_bytes;
    let wf = f.initial.weights_on_hbm;
    let (attn_weight_hbm, mlp_weight_hbm): (Vec<u64>, Vec<u64>) = match f.initial.weights_layout {
        WeightsLayout::Uniform => (
            vec![fraction_of(attn_weight_bytes, wf); layers],
            vec![fraction_of(mlp_weight_bytes, wf); layers],
        ),
        WeightsLayout::FirstLayers => {
            let k = round_half_up(wf * m.layers as f64) as usize;
            (0..layers)
                .map(|l| {
                    if l < k {
                        (attn_weight_bytes, mlp_weight_bytes)
                    } else {
                        (0, 0)
                    }
                })
                .unzip()
        }
    };
    let weights_on_hbm_bytes: u64 = attn_weight_hbm.iter().chain(&mlp_weight_hbm).sum();
    let entry_bytes = per_seq_kv
        .checked_mul(w.batch)
        .ok_or_else(|| anyhow!("KV entry size overflows 64-bit bytes"))?;
    let prefill = w.prefill as usize;
    let prefill_kv_bytes = entry_bytes * w.prefill * m.layers;
    let initial_hbm_kv_bytes = entry_bytes * initial_hbm_entries(f, layers, prefill) as u64;
    let capacity_bytes = f.hbm.capacity.0;
    let (kv_budget_bytes, oversubscribed_bytes) = match f.hbm.kv_budget {
        Some(b) => {
            let over = (weights_on_hbm_bytes + b.0)
                .checked_sub(capacity_bytes)
                .filter(|&x| x > 0);
            (b.0, over)
        }
        None => {
            let b = capacity_bytes.checked_sub(weights_on_hbm_bytes).ok_or_else(|| {
                anyhow!(
                    "weights on HBM ({} GB = {} of {} GB) exceed `hbm.capacity` ({} GB): lower `initial.weights_on_hbm` or set `hbm.kv_budget` to run an idealized scenario",
                    fmt_gb(weights_on_hbm_bytes),
                    wf,
                    fmt_gb(weights_bytes),
                    fmt_gb(capacity_bytes)
                )
            })?;
            (b, None)
        }
    };
    if kv_budget_bytes < initial_hbm_kv_bytes {
        bail!(
            "initial HBM KV ({} bytes = {} GB: {} of the {} GB prefill KV) exceeds the HBM KV budget ({} bytes = {} GB{}): lower `initial.prefill_kv_on_hbm` or raise the budget",
            initial_hbm_kv_bytes,
            fmt_gb(initial_hbm_kv_bytes),
            f.initial.prefill_kv_on_hbm,
            fmt_gb(prefill_kv_bytes),
            kv_budget_bytes,
            fmt_gb(kv_budget_bytes),
            if f.hbm.kv_budget.is_some() { ", set by `hbm.kv_budget`" } else { ", derived as capacity - weights on HBM" }
        );
    }
    let (hbm_bw, link_bw, exti_bw) = (
        f.hbm.bandwidth.0,
        f.ext.link_bandwidth.0,
        f.ext.internal_bandwidth.0,
    );
    let ext_effective_bw = match f.ext.access {
        Access::Fetch => link_bw.min(exti_bw),
        Access::NearData => exti_bw,
    };
    Ok(Sizes {
        layers,
        prefill,
        decode: w.decode as usize,
        batch: w.batch,
        weights_bytes,
        layer_weight_bytes,
        attn_weight_bytes,
        mlp_weight_bytes,
        attn_weight_hbm,
        mlp_weight_hbm,
        weights_on_hbm_bytes,
        entry_bytes,
        prefill_kv_bytes,
        initial_hbm_kv_bytes,
        capacity_bytes,
        kv_budget_bytes,
        oversubscribed_bytes,
        hbm_bw,
        link_bw,
        exti_bw,
        ext_effective_bw,
        alpha_target: hbm_bw / (hbm_bw + ext_effective_bw),
    })
}

/// Prefill positions on HBM at one layer under the initial layout, as a half-open range.
pub fn initial_hbm_range(
    initial: &InitialSection,
    layers: usize,
    prefill: usize,
    layer: usize,
) -> (usize, usize) {
    let f = initial.prefill_kv_on_hbm;
    match initial.prefill_kv_layout {
        PrefillLayout::Newest => (prefill - fraction_of(prefill as u64, f) as usize, prefill),
        PrefillLayout::Oldest => (0, fraction_of(prefill as u64, f) as usize),
        PrefillLayout::FirstLayers => {
            if layer < round_half_up(f * layers as f64) as usize {
                (0, prefill)
            } else {
                (0, 0)
            }
        }
    }
}

fn initial_hbm_entries(f: &ScenarioFile, layers: usize, prefill: usize) -> usize {
    (0..layers)
        .map(|l| {
            let (a, b) = initial_hbm_range(&f.initial, layers, prefill, l);
            b - a
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = r#"
        [model]
        layers = 2
        params = 600
        dtype_bytes = 2
        kv_bytes = "100 B"
        [workload]
        prefill = 4
        decode = 3
        [hbm]
        capacity = "2000 B"
        bandwidth = "100 B/s"
        [ext]
        link_bandwidth = "20 B/s"
        internal_bandwidth = "40 B/s"
    "#;

    #[test]
    fn derived_sizes_follow_spec_2() {
        let s = Scenario::from_toml(TINY, None).unwrap().sizes;
        // W = 600 * 2 = 1200; W_l = 1200 / 2 = 600; Wa = 600 / 3 = 200; Wm = 400.
        assert_eq!(
            (
                s.weights_bytes,
                s.layer_weight_bytes,
                s.attn_weight_bytes,
                s.mlp_weight_bytes
            ),
            (1200, 600, 200, 400)
        );
        // Budget = capacity - weights on HBM = 2000 - 1200.
        assert_eq!(s.kv_budget_bytes, 800);
        // All 4 prefill positions x 2 layers x 100 B on HBM.
        assert_eq!(s.initial_hbm_kv_bytes, 800);
        // alpha target = 100 / (100 + min(20, 40)).
        assert!((s.alpha_target - 100.0 / 120.0).abs() < 1e-15);
    }

    #[test]
    fn unknown_field_is_named_with_line() {
        let text = TINY.replace("[workload]", "[workload]\nbatchsize = 4");
        let e = Scenario::from_toml(&text, Some(Path::new("t.toml")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.toml:") && e.contains("batchsize"), "{e}");
    }

    #[test]
    fn units_parse() {
        let text = TINY
            .replace("\"2000 B\"", "\"2 KB\"")
            .replace("\"100 B/s\"", "\"0.1 KB/s\"");
        let s = Scenario::from_toml(&text, None).unwrap().sizes;
        assert_eq!(s.capacity_bytes, 2000);
        assert!((s.hbm_bw - 100.0).abs() < 1e-9);
    }
}
