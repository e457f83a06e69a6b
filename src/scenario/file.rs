//! The raw structure of a scenario file (serde): every section and field, unknown fields
//! rejected by name. Every field and its default is documented in docs/scenario.md; the defaults
//! live here, in the `default_*` functions and `Default` impls.

use std::path::PathBuf;

use serde::Deserialize;

use super::units::{Bandwidth, ByteSize, Flops, Seconds};

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
    pub gpu: GpuSection,
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
    /// Query heads (SPEC 11's attention FLOPs); default `kv_heads`.
    #[serde(default)]
    pub q_heads: Option<u64>,
    #[serde(default)]
    pub head_dim: Option<u64>,
    #[serde(default = "default_dtype_bytes")]
    pub kv_dtype_bytes: u64,
    /// Bits per KV value when not a whole number of bytes (4-bit KV); wins over
    /// `kv_dtype_bytes`.
    #[serde(default)]
    pub kv_dtype_bits: Option<u64>,
    /// Values cached per position and layer as one latent (MLA: `kv_lora_rank +
    /// qk_rope_head_dim`), instead of a K and a V per KV head.
    #[serde(default)]
    pub kv_latent: Option<u64>,
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
    /// Read and write directions are separate resources, each at its own bandwidth.
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
    /// Both directions of the link, unless a direction is given on its own (SPEC 10). Required
    /// unless both `link_read_bandwidth` and `link_write_bandwidth` are given.
    #[serde(default)]
    pub link_bandwidth: Option<Bandwidth>,
    /// EXT -> GPU/HBM: EXT reads and promotions.
    #[serde(default)]
    pub link_read_bandwidth: Option<Bandwidth>,
    /// GPU/HBM -> EXT: new entries written to EXT and demotions.
    #[serde(default)]
    pub link_write_bandwidth: Option<Bandwidth>,
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
    /// When moves happen: where they are asked for (`sync`, v1) or on a copy engine beside the
    /// kernels (`async`, SPEC 12).
    #[serde(default = "default_migration_mode")]
    pub migration: MigrationMode,
    /// Copy engine rate of promotions (EXT -> HBM); default the link's read bandwidth.
    #[serde(default)]
    pub copy_read_bandwidth: Option<Bandwidth>,
    /// Copy engine rate of demotions (HBM -> EXT); default the link's write bandwidth.
    #[serde(default)]
    pub copy_write_bandwidth: Option<Bandwidth>,
    /// Positions per KV block (SPEC 14): all present entries of a block at a layer are in one
    /// tier, and a block on HBM takes the budget of all its positions. 1 = per token (v1).
    #[serde(default = "one_u64")]
    pub block_tokens: u64,
}

fn one_u64() -> u64 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum MigrationMode {
    /// SPEC 6: a move is charged to the step phase or sublayer that asks for it.
    Sync,
    /// SPEC 12: moves queue on a copy engine that works during the sublayers that follow.
    Async,
}

impl MigrationMode {
    pub fn name(self) -> &'static str {
        match self {
            MigrationMode::Sync => "sync",
            MigrationMode::Async => "async",
        }
    }
}

fn default_migration_mode() -> MigrationMode {
    MigrationMode::Sync
}

/// `[gpu]`: compute and fixed costs (SPEC 11). Absent: compute is not modelled, as in v1.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuSection {
    /// Dense compute rate; absent = compute not modelled.
    #[serde(default)]
    pub flops: Option<Flops>,
    /// Seconds added to every attention and MLP row; default 0.
    #[serde(default)]
    pub sublayer_overhead: Option<Seconds>,
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
            migration: MigrationMode::Sync,
            copy_read_bandwidth: None,
            copy_write_bandwidth: None,
            block_tokens: 1,
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
#[derive(Debug, Clone, PartialEq)]
pub enum LayerRates {
    Mean(f64),
    PerLayer(Vec<f64>),
}

impl<'de> Deserialize<'de> for LayerRates {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, SeqAccess, Visitor};
        struct Rates;
        impl<'de> Visitor<'de> for Rates {
            type Value = LayerRates;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a rate: a number in [0, 1], or a list of one such number per layer")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<LayerRates, E> {
                Ok(LayerRates::Mean(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LayerRates, E> {
                Ok(LayerRates::Mean(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LayerRates, E> {
                Ok(LayerRates::Mean(v as f64))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LayerRates, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = seq.next_element::<f64>()? {
                    v.push(x);
                }
                Ok(LayerRates::PerLayer(v))
            }
        }
        d.deserialize_any(Rates)
    }
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
    /// Leading layers never skipped (tokens, layers or MLP); a default above the model's layer
    /// count means all layers (it is only an error when given).
    pub dense_layers: u64,
    /// Whether the file gave `dense_layers` (a default adapts to the model, a given value not).
    pub dense_layers_given: bool,
    /// How much the per-layer skipped share grows with depth: the shallowest sparse layer gets
    /// `mean * (1 - depth_spread)`, the deepest `mean * (1 + depth_spread)`.
    pub depth_spread: f64,
    /// heavy_hitter: share of new entries released early from the recent window, at an age drawn
    /// uniformly from `1..=young_window`, and skipped from then until they leave the window.
    pub young_skip: f64,
    pub young_window: u64,
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
    young_skip: Option<f64>,
    young_window: Option<u64>,
}

/// Share of new entries the recorded `essay-1k-mass90` trace does not read at some step of the
/// 16 after they are written, over its 29 sparse layers (27.8% over all 30 layers, x 30/29;
/// `kvtier trace stats`; docs/traces.md): the calibrated profile's `young_skip`, which applies
/// to the sparse layers only.
pub const CALIBRATED_YOUNG_SKIP: f64 = 0.287;

impl TryFrom<SkipRaw> for SkipSection {
    type Error = String;
    fn try_from(r: SkipRaw) -> Result<SkipSection, String> {
        let profile = r.profile.unwrap_or(SkipProfile::Default);
        let source = r.source.unwrap_or(SkipSource::None);
        if profile == SkipProfile::Calibrated && source != SkipSource::HeavyHitter {
            return Err("`profile = \"calibrated\"` shapes the heavy_hitter generator: set `source = \"heavy_hitter\"`".into());
        }
        // (sinks, recent, page, keep, dense_layers, depth_spread, rate, young_skip)
        let d = match profile {
            SkipProfile::Default => (4, 64, 16, 0.7, 2, 0.5, 0.0, 0.0),
            SkipProfile::Calibrated => (1, 48, 1, 0.3, 1, 0.5, 0.65, CALIBRATED_YOUNG_SKIP),
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
            dense_layers_given: r.dense_layers.is_some(),
            depth_spread: r.depth_spread.unwrap_or(d.5),
            young_skip: r.young_skip.unwrap_or(d.7),
            young_window: r.young_window.unwrap_or(16),
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
    /// Operations the scripts of one run may take in all (Rhai operations plus one per 64
    /// words of sets native verbs touch): a runaway stops with an error naming the hook.
    #[serde(default = "default_max_script_operations")]
    pub max_script_operations: u64,
}

fn default_max_script_operations() -> u64 {
    5_000_000_000
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
            max_script_operations: default_max_script_operations(),
        }
    }
}
