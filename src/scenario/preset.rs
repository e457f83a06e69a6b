//! Presets: real parts and models as data files, each figure with its source
//! (`presets/hardware/*.toml`, `presets/models/*.toml`, embedded in the binary so a name works
//! from any folder). A scenario names them with `hardware = "gh200"` and `model =
//! "llama-3.1-70b"` (or `[model] preset = "..."`, or a path to a preset file); its own fields
//! win over the presets', the model preset's over the hardware preset's.
//!
//! A hardware preset gives scenario fields directly (`hbm.capacity`, `ext.link_read_bandwidth`,
//! ...), each with a datasheet figure, a measured one where one is published, and a source; the
//! measured figure is used unless the scenario says `hardware_figures = "datasheet"`. A model
//! preset gives the published architecture (layers, heads, sizes), from which the scenario's
//! model fields are derived: the KV entry, the query heads and the attention share of each
//! layer's weights.
//!
//! Not here: validation of the resulting scenario ([`super::validate`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

/// The shipped hardware presets, by name.
pub const HARDWARE: &[(&str, &str)] = &[
    ("b200", include_str!("../../presets/hardware/b200.toml")),
    ("gb200", include_str!("../../presets/hardware/gb200.toml")),
    ("gh200", include_str!("../../presets/hardware/gh200.toml")),
    (
        "gh200-144",
        include_str!("../../presets/hardware/gh200-144.toml"),
    ),
    (
        "h100-cxl",
        include_str!("../../presets/hardware/h100-cxl.toml"),
    ),
    (
        "h100-pcie",
        include_str!("../../presets/hardware/h100-pcie.toml"),
    ),
    (
        "h100-sxm",
        include_str!("../../presets/hardware/h100-sxm.toml"),
    ),
    ("h200", include_str!("../../presets/hardware/h200.toml")),
];

/// The shipped model presets, by name.
pub const MODELS: &[(&str, &str)] = &[
    (
        "deepseek-v3",
        include_str!("../../presets/models/deepseek-v3.toml"),
    ),
    (
        "llama-3.1-405b",
        include_str!("../../presets/models/llama-3.1-405b.toml"),
    ),
    (
        "llama-3.1-70b",
        include_str!("../../presets/models/llama-3.1-70b.toml"),
    ),
    (
        "llama-3.1-8b",
        include_str!("../../presets/models/llama-3.1-8b.toml"),
    ),
    (
        "mistral-large-2407",
        include_str!("../../presets/models/mistral-large-2407.toml"),
    ),
    (
        "qwen2.5-72b",
        include_str!("../../presets/models/qwen2.5-72b.toml"),
    ),
    (
        "seed-75b",
        include_str!("../../presets/models/seed-75b.toml"),
    ),
];

/// A hardware preset file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HardwarePreset {
    pub name: String,
    pub title: String,
    #[serde(default)]
    pub notes: String,
    pub figure: Vec<Figure>,
}

/// One figure of a hardware preset: the scenario field it sets and its value(s).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Figure {
    /// Dotted scenario field (`hbm.bandwidth`).
    pub field: String,
    /// A value with no datasheet/measured distinction (a capacity, a duplex mode).
    #[serde(default)]
    pub value: Option<toml::Value>,
    #[serde(default)]
    pub datasheet: Option<toml::Value>,
    #[serde(default)]
    pub measured: Option<toml::Value>,
    /// Values by the model's `dtype_bytes` (`"1"`, `"2"`): compute rates per precision.
    #[serde(default)]
    pub by_dtype_bytes: Option<toml::Table>,
    /// Where the figure is published, with the figure as published.
    pub source: String,
}

/// A model preset file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPreset {
    pub name: String,
    pub title: String,
    /// Where the architecture is published.
    pub source: String,
    #[serde(default)]
    pub notes: String,
    pub config: ModelConfig,
    /// The source of each `config` field.
    pub sources: BTreeMap<String, String>,
}

/// A model's published architecture (names as in docs/presets.md; MLA and MoE fields optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub layers: u64,
    #[serde(default)]
    pub hidden: Option<u64>,
    pub heads: u64,
    #[serde(default)]
    pub kv_heads: Option<u64>,
    #[serde(default)]
    pub head_dim: Option<u64>,
    #[serde(default)]
    pub intermediate: Option<u64>,
    #[serde(default)]
    pub vocab: Option<u64>,
    #[serde(default)]
    pub tied_embeddings: Option<bool>,
    pub params: u64,
    /// MoE: parameters activated per token (read at every step).
    #[serde(default)]
    pub active_params: Option<u64>,
    // MLA
    #[serde(default)]
    pub kv_lora_rank: Option<u64>,
    #[serde(default)]
    pub qk_rope_head_dim: Option<u64>,
    #[serde(default)]
    pub qk_nope_head_dim: Option<u64>,
    #[serde(default)]
    pub v_head_dim: Option<u64>,
    #[serde(default)]
    pub q_lora_rank: Option<u64>,
    // MoE
    #[serde(default)]
    pub moe_intermediate: Option<u64>,
    #[serde(default)]
    pub routed_experts: Option<u64>,
    #[serde(default)]
    pub experts_per_token: Option<u64>,
    #[serde(default)]
    pub shared_experts: Option<u64>,
    #[serde(default)]
    pub dense_layers: Option<u64>,
}

impl ModelConfig {
    /// Multi-head latent attention (one cached latent per position).
    pub fn is_mla(&self) -> bool {
        self.kv_lora_rank.is_some()
    }

    /// Values cached per position and layer: `2 x kv_heads x head_dim`, or the MLA latent
    /// `kv_lora_rank + qk_rope_head_dim`.
    pub fn kv_values(&self) -> Option<u64> {
        match (self.kv_lora_rank, self.kv_heads, self.head_dim) {
            (Some(r), _, _) => Some(r + self.qk_rope_head_dim?),
            (None, Some(h), Some(d)) => Some(2 * h * d),
            _ => None,
        }
    }

    /// Attention weights of one layer: Q, K, V and O projections (MLA: its low-rank ones).
    pub fn attn_params(&self) -> Option<u64> {
        let h = self.hidden?;
        let heads = self.heads;
        if self.is_mla() {
            let (r, rope) = (self.kv_lora_rank?, self.qk_rope_head_dim?);
            let (nope, v) = (self.qk_nope_head_dim?, self.v_head_dim?);
            let q = match self.q_lora_rank {
                Some(qr) => h * qr + qr * heads * (nope + rope),
                None => h * heads * (nope + rope),
            };
            let kv = h * (r + rope) + r * heads * (nope + v);
            let o = heads * v * h;
            return Some(q + kv + o);
        }
        let d = self.head_dim?;
        let kv = self.kv_heads?;
        Some(2 * h * heads * d + 2 * h * kv * d)
    }

    /// MLP weights read at a step by layer `layer`: gate, up and down projections (SwiGLU);
    /// for an MoE layer those of the shared and the activated routed experts.
    pub fn mlp_params(&self, layer: u64) -> Option<u64> {
        let h = self.hidden?;
        let dense = self.dense_layers.unwrap_or(u64::MAX);
        match self.moe_intermediate {
            Some(mi) if layer >= dense => {
                let experts = self.experts_per_token? + self.shared_experts.unwrap_or(0);
                Some(3 * h * mi * experts)
            }
            _ => Some(3 * h * self.intermediate?),
        }
    }

    /// Share of the weights each layer reads that is attention: summed over the layers,
    /// attention / (attention + MLP read), from the dimensions.
    pub fn attn_share(&self) -> Option<f64> {
        let a = self.attn_params()? as f64 * self.layers as f64;
        let mut m = 0.0;
        for l in 0..self.layers {
            m += self.mlp_params(l)? as f64;
        }
        Some(a / (a + m))
    }

    /// Parameters from the dimensions (dense models): layers x (attention + MLP) plus the
    /// embedding and, when not tied, the output head. Norms and biases are left out.
    pub fn params_from_dims(&self) -> Option<u64> {
        let per_layer = self.attn_params()? + self.mlp_params(0)?;
        let emb = self.vocab? * self.hidden?;
        let heads = if self.tied_embeddings.unwrap_or(false) {
            1
        } else {
            2
        };
        Some(self.layers * per_layer + heads * emb)
    }
}

/// Where a scenario field's value came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Provenance {
    /// Dotted scenario field.
    pub field: String,
    /// The value it got, as TOML.
    pub value: String,
    /// `hardware gh200 (measured)`, `model llama-3.1-70b`.
    pub origin: String,
    /// The source text of the figure.
    pub source: String,
}

/// Which of a hardware preset's figures a scenario uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Figures {
    /// The measured figure where one is published, else the datasheet's (default).
    Measured,
    Datasheet,
}

/// A preset named by a scenario: a shipped name or a file path (relative to the scenario).
fn preset_text(
    spec: &str,
    shipped: &[(&str, &str)],
    kind: &str,
    base: Option<&Path>,
) -> Result<(String, String)> {
    if let Some((_, text)) = shipped.iter().find(|(n, _)| *n == spec) {
        return Ok((spec.to_string(), text.to_string()));
    }
    if spec.contains('/') || spec.ends_with(".toml") {
        let p = PathBuf::from(spec);
        let p = match base.and_then(|b| b.parent()) {
            Some(dir) if p.is_relative() => dir.join(p),
            _ => p,
        };
        let text = crate::input::read_text(&p, &format!("{kind} preset"))?;
        return Ok((p.display().to_string(), text));
    }
    let names: Vec<&str> = shipped.iter().map(|(n, _)| *n).collect();
    bail!(
        "unknown {kind} preset {spec:?}: the shipped ones are {} (or give a path to a preset file)",
        names.join(", ")
    )
}

pub fn hardware(spec: &str, base: Option<&Path>) -> Result<HardwarePreset> {
    let (label, text) = preset_text(spec, HARDWARE, "hardware", base)?;
    toml::from_str(&text).map_err(|e| super::toml_error(&label, &text, &e))
}

pub fn model(spec: &str, base: Option<&Path>) -> Result<ModelPreset> {
    let (label, text) = preset_text(spec, MODELS, "model", base)?;
    let m: ModelPreset = toml::from_str(&text).map_err(|e| super::toml_error(&label, &text, &e))?;
    // Every architecture number carries its source.
    let given = toml::Value::try_from(&m.config)
        .ok()
        .and_then(|v| v.as_table().cloned())
        .unwrap_or_default();
    for k in given.keys() {
        if !m.sources.contains_key(k) {
            bail!(
                "{label}: config field `{k}` has no entry in [sources]: say where it is published"
            );
        }
    }
    Ok(m)
}

impl serde::Serialize for ModelConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        let mut put = |k: &str, v: Option<u64>| -> std::result::Result<(), S::Error> {
            match v {
                Some(v) => m.serialize_entry(k, &v),
                None => Ok(()),
            }
        };
        put("layers", Some(self.layers))?;
        put("hidden", self.hidden)?;
        put("heads", Some(self.heads))?;
        put("kv_heads", self.kv_heads)?;
        put("head_dim", self.head_dim)?;
        put("intermediate", self.intermediate)?;
        put("vocab", self.vocab)?;
        put("params", Some(self.params))?;
        put("active_params", self.active_params)?;
        put("kv_lora_rank", self.kv_lora_rank)?;
        put("qk_rope_head_dim", self.qk_rope_head_dim)?;
        put("qk_nope_head_dim", self.qk_nope_head_dim)?;
        put("v_head_dim", self.v_head_dim)?;
        put("q_lora_rank", self.q_lora_rank)?;
        put("moe_intermediate", self.moe_intermediate)?;
        put("routed_experts", self.routed_experts)?;
        put("experts_per_token", self.experts_per_token)?;
        put("shared_experts", self.shared_experts)?;
        put("dense_layers", self.dense_layers)?;
        if let Some(t) = self.tied_embeddings {
            m.serialize_entry("tied_embeddings", &t)?;
        }
        m.end()
    }
}

/// The scenario `[model]` fields a model preset gives, each with its source.
pub fn model_fields(p: &ModelPreset) -> Vec<(String, toml::Value, String)> {
    let c = &p.config;
    let src = |k: &str| p.sources.get(k).cloned().unwrap_or_default();
    let int = |v: u64| toml::Value::Integer(v as i64);
    let mut out = vec![("model.layers".to_string(), int(c.layers), src("layers"))];
    match c.active_params {
        Some(a) => out.push((
            "model.params".into(),
            int(a),
            format!(
                "{} (the parameters read per token; all {} are not modelled)",
                src("active_params"),
                c.params
            ),
        )),
        None => out.push(("model.params".into(), int(c.params), src("params"))),
    }
    out.push(("model.q_heads".into(), int(c.heads), src("heads")));
    if c.is_mla() {
        if let Some(v) = c.kv_values() {
            out.push((
                "model.kv_latent".into(),
                int(v),
                format!(
                    "MLA latent: kv_lora_rank + qk_rope_head_dim ({}; {})",
                    src("kv_lora_rank"),
                    src("qk_rope_head_dim")
                ),
            ));
            out.push((
                "model.head_dim".into(),
                int(v),
                "MLA: each query head reads the whole latent (kvtier's reading for compute)".into(),
            ));
        }
    } else {
        if let Some(h) = c.kv_heads {
            out.push(("model.kv_heads".into(), int(h), src("kv_heads")));
        }
        if let Some(d) = c.head_dim {
            out.push(("model.head_dim".into(), int(d), src("head_dim")));
        }
    }
    if let (Some(share), Some(a)) = (c.attn_share(), c.attn_params()) {
        out.push((
            "model.attn_weight_fraction".into(),
            toml::Value::Float(share),
            format!(
                "derived from the dimensions: attention {:.1}M of the weights each layer reads (mean over layers)",
                a as f64 / 1e6
            ),
        ));
    }
    out
}

/// The value of a hardware figure for this scenario, or `None` when the figure has none for
/// the model's dtype.
fn figure_value(
    f: &Figure,
    figures: Figures,
    dtype_bytes: i64,
) -> Option<(toml::Value, &'static str)> {
    if let Some(v) = &f.value {
        return Some((v.clone(), ""));
    }
    if let Some(t) = &f.by_dtype_bytes {
        return t.get(&dtype_bytes.to_string()).map(|v| (v.clone(), ""));
    }
    match (figures, &f.measured, &f.datasheet) {
        (Figures::Measured, Some(m), _) => Some((m.clone(), "measured")),
        (_, _, Some(d)) => Some((d.clone(), "datasheet")),
        (Figures::Datasheet, Some(m), None) => Some((m.clone(), "measured")),
        _ => None,
    }
}

fn get_path<'a>(t: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let mut parts = path.split('.');
    let mut cur = t.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_table()?.get(p)?;
    }
    Some(cur)
}

/// Sets `path` in `t` unless it is already set; returns whether it set it.
fn set_if_absent(t: &mut toml::Table, path: &str, v: toml::Value) -> Result<bool> {
    let parts: Vec<&str> = path.split('.').collect();
    let (last, dirs) = parts.split_last().expect("a field path is not empty");
    let mut cur = t;
    for d in dirs {
        cur = cur
            .entry(d.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| {
                anyhow!("`{d}` is not a table, so `{path}` cannot be set from a preset")
            })?;
    }
    if cur.contains_key(*last) {
        return Ok(false);
    }
    cur.insert(last.to_string(), v);
    Ok(true)
}

/// Fields a scenario field stands in for: when the scenario sets the key, the preset's values
/// for the others are not used (so that what the scenario says wins).
fn superseded_by(field: &str) -> &'static [&'static str] {
    match field {
        "model.kv_bytes" => &["model.kv_heads", "model.kv_latent"],
        "model.kv_heads" => &["model.kv_latent"],
        "model.kv_latent" => &["model.kv_heads"],
        "ext.link_bandwidth" => &["ext.link_read_bandwidth", "ext.link_write_bandwidth"],
        _ => &[],
    }
}

/// Resolves the presets a scenario table names (and removes those keys), filling every field
/// the scenario does not set. Returns where each filled field came from.
pub fn apply(t: &mut toml::Table, base: Option<&Path>) -> Result<Vec<Provenance>> {
    let figures = match t.remove("hardware_figures") {
        None => Figures::Measured,
        Some(toml::Value::String(s)) if s == "measured" => Figures::Measured,
        Some(toml::Value::String(s)) if s == "datasheet" => Figures::Datasheet,
        Some(v) => {
            bail!("field `hardware_figures` = {v}: use \"measured\" (the default) or \"datasheet\"")
        }
    };
    let hardware_spec = match t.remove("hardware") {
        None => None,
        Some(toml::Value::String(s)) => Some(s),
        Some(v) => bail!("field `hardware` = {v}: give a preset name (`kvtier presets`) or a path"),
    };
    let model_spec = match t.get_mut("model") {
        Some(toml::Value::String(s)) => {
            let s = s.clone();
            t.remove("model");
            Some(s)
        }
        Some(toml::Value::Table(m)) => match m.remove("preset") {
            None => None,
            Some(toml::Value::String(s)) => Some(s),
            Some(v) => {
                bail!("field `model.preset` = {v}: give a preset name (`kvtier presets`) or a path")
            }
        },
        _ => None,
    };
    let mut out = Vec::new();
    let blocked = |t: &toml::Table, field: &str| {
        [
            "model.kv_bytes",
            "model.kv_heads",
            "model.kv_latent",
            "ext.link_bandwidth",
        ]
        .iter()
        .any(|k| get_path(t, k).is_some() && superseded_by(k).contains(&field))
    };
    if let Some(spec) = &model_spec {
        let p = model(spec, base).with_context(|| format!("field `model` = {spec:?}"))?;
        for (field, v, source) in model_fields(&p) {
            let value = v.to_string();
            if !blocked(t, &field) && set_if_absent(t, &field, v)? {
                out.push(Provenance {
                    field,
                    value,
                    origin: format!("model {}", p.name),
                    source,
                });
            }
        }
    }
    if let Some(spec) = &hardware_spec {
        let p = hardware(spec, base).with_context(|| format!("field `hardware` = {spec:?}"))?;
        let dtype = get_path(t, "model.dtype_bytes")
            .and_then(|v| v.as_integer())
            .unwrap_or(2);
        for f in &p.figure {
            let Some((v, which)) = figure_value(f, figures, dtype) else {
                continue;
            };
            let value = v.to_string();
            if !blocked(t, &f.field) && set_if_absent(t, &f.field, v)? {
                let origin = if which.is_empty() {
                    format!("hardware {}", p.name)
                } else {
                    format!("hardware {} ({which})", p.name)
                };
                out.push(Provenance {
                    field: f.field.clone(),
                    value,
                    origin,
                    source: f.source.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// Whether a scenario table names any preset.
pub fn names_presets(t: &toml::Table) -> bool {
    t.contains_key("hardware")
        || t.contains_key("hardware_figures")
        || matches!(t.get("model"), Some(toml::Value::String(_)))
        || get_path(t, "model.preset").is_some()
}

/// Table rows, one per preset, as printed.
pub type Rows = Vec<Vec<String>>;

/// One line per shipped preset with its key figures, for `kvtier presets`: hardware, models.
pub fn listing() -> Result<(Rows, Rows)> {
    let mut hw = Vec::new();
    for (name, _) in HARDWARE {
        let p = hardware(name, None)?;
        let fig = |field: &str, which: Figures, dtype: i64| {
            p.figure
                .iter()
                .find(|f| f.field == field)
                .and_then(|f| figure_value(f, which, dtype))
                .map(|(v, _)| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .unwrap_or_else(|| "-".into())
        };
        let both = |field: &str| {
            let (d, m) = (
                fig(field, Figures::Datasheet, 2),
                fig(field, Figures::Measured, 2),
            );
            if d == m {
                d
            } else {
                format!("{d} (measured {m})")
            }
        };
        hw.push(vec![
            name.to_string(),
            fig("hbm.capacity", Figures::Measured, 2),
            both("hbm.bandwidth"),
            both("ext.link_read_bandwidth"),
            both("ext.link_write_bandwidth"),
            both("ext.internal_bandwidth"),
            format!(
                "{} / {}",
                fig("gpu.flops", Figures::Measured, 2),
                fig("gpu.flops", Figures::Measured, 1)
            ),
        ]);
    }
    let mut models = Vec::new();
    for (name, _) in MODELS {
        let p = model(name, None)?;
        let c = &p.config;
        let kv = c.kv_values().map(|v| v * 2 * c.layers);
        models.push(vec![
            name.to_string(),
            c.layers.to_string(),
            match c.active_params {
                Some(a) => format!(
                    "{:.1}B ({:.1}B active)",
                    c.params as f64 / 1e9,
                    a as f64 / 1e9
                ),
                None => format!("{:.2}B", c.params as f64 / 1e9),
            },
            format!(
                "{} / {}",
                c.heads,
                c.kv_heads.map_or("MLA".into(), |k| k.to_string())
            ),
            kv.map_or("-".into(), |b| format!("{b}")),
            c.attn_share()
                .map_or("1/3 (default)".into(), |s| format!("{s:.4}")),
        ]);
    }
    Ok((hw, models))
}

/// The text of a shipped preset file, by name (hardware or model).
pub fn text_of(name: &str) -> Option<&'static str> {
    HARDWARE
        .iter()
        .chain(MODELS)
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
}
