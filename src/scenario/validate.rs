//! Validation of a parsed scenario (every field range-checked, with messages that name the field,
//! the value and what is valid) and the derivation of [`Sizes`].

use std::fmt;

use anyhow::{anyhow, bail, Result};

use super::file::*;
use super::units::Bandwidth;
use super::{fmt_gb, fraction_of, round_half_up, Compute, Sizes, GB};

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
        if !(v.is_finite() && (MIN_BANDWIDTH..=MAX_BANDWIDTH).contains(&v)) {
            self.fail(
                field,
                format!("{} GB/s", v / GB),
                "must be a bandwidth > 0, from 1e-6 B/s to 1e18 B/s (1e9 GB/s)",
            );
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

/// Bandwidths a scenario may give, in bytes/s: outside, times leave the range where sums over a
/// run stay finite and exact enough.
pub const MIN_BANDWIDTH: f64 = 1e-6;
pub const MAX_BANDWIDTH: f64 = 1e18;

/// Most bytes a run may read in all (decode steps x (weights + every KV entry)): sums of bytes
/// over a run are kept in 64 bits.
pub const MAX_RUN_BYTES: u64 = 1 << 62;

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
    let words = work_words(prefill, decode, layers);
    if words > MAX_WORK_WORDS as u128 {
        return Err(format!(
            "{layers} layers x {decode} decode steps over {prefill}..{positions} positions take about {:.3e} 64-bit words of bitset work (each step reads every position of every layer): at most {:.3e} (hours of work beyond); shorten the run",
            words as f64,
            MAX_WORK_WORDS as f64
        ));
    }
    Ok(())
}

/// The bitset words a run or a pass over a trace touches: at each step `n` every layer's set of
/// `n` positions, `n / 64` words.
pub fn work_words(prefill: u64, decode: u64, layers: u64) -> u128 {
    let (p, d) = (prefill as u128, decode as u128);
    // Sum over steps n = P .. P + D - 1 of n.
    let positions = d * p + d * d.saturating_sub(1) / 2;
    layers as u128 * (positions / 64 + d)
}

/// Most bitset words a run or a trace pass may take (about 1.4e11: minutes at most).
pub const MAX_WORK_WORDS: u64 = 1 << 37;

/// Memory a run may take at most: 16 GiB.
pub const MAX_RUN_MEMORY: u64 = 16 << 30;

/// Past steps the trace window keeps for scripted policies (`crate::trace::PAST_STEPS` is this;
/// defined here so that the memory estimate counts them).
pub const WINDOW_PAST_STEPS: u64 = 64;

/// Bytes of bitsets a run holds, at most: per layer, a set of all positions for each of the
/// residency sets (present, HBM, queued), each step of the trace window (look-ahead, the
/// current step, the past steps scripts may see) and the prefetch buffers and generator state
/// (16 more).
pub fn run_memory_bytes(positions: u64, layers: u64, lookahead: u64) -> u128 {
    let sets = 3 + lookahead as u128 + 1 + WINDOW_PAST_STEPS as u128 + 16;
    sets * layers as u128 * positions.div_ceil(64) as u128 * 8
}

pub(super) fn validate(f: &ScenarioFile) -> Result<Sizes> {
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
    // Bits of one cached value: `kv_dtype_bits` (sub-byte KV such as 4-bit) or the bytes.
    let kv_bits = match m.kv_dtype_bits {
        Some(b) if !(1..=64).contains(&b) => {
            c.fail("model.kv_dtype_bits", b, "must be 1..=64 bits per KV value");
            8
        }
        Some(b) => b,
        None => m.kv_dtype_bytes * 8,
    };
    // Values cached per position and layer: a K and a V per KV head, or one MLA latent.
    let kv_values = match (m.kv_bytes, m.kv_heads, m.kv_latent) {
        (Some(b), None, None) => {
            if b.0 == 0 {
                c.fail("model.kv_bytes", "0 B", "must be > 0 bytes");
            }
            None
        }
        (None, Some(h), None) => match m.head_dim {
            Some(d) => {
                if h == 0 {
                    c.fail("model.kv_heads", h, "must be >= 1");
                }
                if d == 0 {
                    c.fail("model.head_dim", d, "must be >= 1");
                }
                match 2u64.checked_mul(h).and_then(|x| x.checked_mul(d)) {
                    Some(v) => Some(v),
                    None => {
                        c.fail(
                            "model.kv_heads x model.head_dim",
                            format!("{h} x {d}"),
                            "2 x kv_heads x head_dim x kv_dtype_bytes overflows 64-bit bytes: give real head counts",
                        );
                        Some(0)
                    }
                }
            }
            None => {
                c.fail("model.head_dim", "missing", "`kv_heads` needs `head_dim`");
                Some(0)
            }
        },
        (None, None, Some(v)) => {
            if v == 0 {
                c.fail("model.kv_latent", v, "must be >= 1 values per position");
            }
            Some(v)
        }
        (None, None, None) => {
            c.fail(
                "model",
                "no KV size",
                "give `kv_heads` and `head_dim`, `kv_latent` (MLA), or `kv_bytes`",
            );
            Some(0)
        }
        _ => {
            c.fail(
                "model.kv_bytes / kv_heads / kv_latent",
                "more than one set",
                "give one of `kv_bytes`, `kv_heads` + `head_dim`, or `kv_latent`",
            );
            Some(0)
        }
    };
    let per_seq_kv = match kv_values {
        None => m.kv_bytes.map_or(0, |b| b.0),
        // Whole bytes: sub-byte values are packed, a partial byte rounds up.
        Some(v) => match v.checked_mul(kv_bits) {
            Some(bits) => bits.div_ceil(8),
            None => {
                c.fail(
                    "model.kv_heads x model.head_dim",
                    v,
                    "the KV entry overflows 64-bit bytes: give real head counts",
                );
                0
            }
        },
    };
    // With `kv_bytes`, `head_dim` (and `q_heads`) may still be given: they serve compute only.
    if m.kv_bytes.is_some() && m.head_dim == Some(0) {
        c.fail("model.head_dim", 0, "must be >= 1");
    }
    if m.q_heads == Some(0) {
        c.fail("model.q_heads", 0, "must be >= 1 query heads");
    }
    let q_heads = m.q_heads.or(m.kv_heads);
    if let Some(fl) = f.gpu.flops {
        if !(fl.0.is_finite() && fl.0 > 0.0) {
            c.fail(
                "gpu.flops",
                format!("{} FLOP/s", fl.0),
                "must be a compute rate > 0",
            );
        }
        match (q_heads, m.head_dim) {
            (Some(_), Some(_)) => {}
            (q, d) => c.fail(
                "gpu.flops",
                "set",
                &format!(
                    "compute needs `model.q_heads`{} and `model.head_dim`{} (attention FLOPs are 4 * B * q_heads * head_dim per position read); `model.kv_bytes` alone does not say them",
                    if q.is_none() { " (missing)" } else { "" },
                    if d.is_none() { " (missing)" } else { "" },
                ),
            ),
        }
    }
    let overhead_s = f.gpu.sublayer_overhead.map_or(0.0, |t| t.0);
    if !(overhead_s.is_finite() && overhead_s >= 0.0) {
        c.fail(
            "gpu.sublayer_overhead",
            format!("{overhead_s} s"),
            "must be a duration >= 0 seconds",
        );
    }
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
    let e = &f.ext;
    match (e.link_bandwidth, e.link_read_bandwidth, e.link_write_bandwidth) {
        (Some(b), _, _) => c.positive_bw("ext.link_bandwidth", b.0),
        (None, Some(_), Some(_)) => {}
        (None, r, w) => c.fail(
            "ext.link_bandwidth",
            "missing",
            &format!(
                "give `link_bandwidth` (both directions), or both `link_read_bandwidth` and `link_write_bandwidth` (missing: {})",
                [("link_read_bandwidth", r.is_none()), ("link_write_bandwidth", w.is_none())]
                    .iter()
                    .filter(|x| x.1)
                    .map(|x| x.0)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
    }
    for (field, v) in [
        ("ext.link_read_bandwidth", e.link_read_bandwidth),
        ("ext.link_write_bandwidth", e.link_write_bandwidth),
        ("memory.copy_read_bandwidth", f.memory.copy_read_bandwidth),
        ("memory.copy_write_bandwidth", f.memory.copy_write_bandwidth),
    ] {
        if let Some(b) = v {
            c.positive_bw(field, b.0);
        }
    }
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
    c.fraction("skip.young_skip", s.young_skip);
    if s.young_window == 0 || s.young_window > 1 << 16 {
        c.fail(
            "skip.young_window",
            s.young_window,
            "must be in 1..=65536 steps",
        );
    }
    if s.young_skip > 0.0 && s.source != SkipSource::HeavyHitter {
        c.fail(
            "skip.young_skip",
            s.young_skip,
            "shapes the heavy_hitter generator: set `source = \"heavy_hitter\"`",
        );
    }
    if s.page == 0 || s.page > 1 << 16 {
        c.fail("skip.page", s.page, "must be in 1..=65536 positions");
    }
    if s.dense_layers > m.layers && s.dense_layers_given {
        c.fail(
            "skip.dense_layers",
            s.dense_layers,
            &format!("must be <= model.layers ({})", m.layers),
        );
    }
    if s.file.as_ref().is_some_and(|f| f.as_os_str().is_empty()) {
        c.fail(
            "skip.file",
            "\"\"",
            "is empty: give the path of a trace file",
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
    if m.layers > 0 && w.decode > 0 && c.0.is_empty() {
        let positions = w.prefill + w.decode;
        let need = run_memory_bytes(positions, m.layers, f.policy.lookahead);
        if need > MAX_RUN_MEMORY as u128 {
            c.fail(
                "workload.prefill + workload.decode",
                positions,
                &format!(
                    "a run keeps {} + {} bitsets of {positions} positions for each of {} layers: {:.1} GiB, more than the {} GiB a run may take; fewer positions, layers or `policy.lookahead`",
                    3 + 1 + WINDOW_PAST_STEPS + 16,
                    f.policy.lookahead,
                    m.layers,
                    need as f64 / (1u64 << 30) as f64,
                    MAX_RUN_MEMORY >> 30
                ),
            );
        }
    }
    if !(1..=1 << 16).contains(&f.memory.block_tokens) {
        c.fail(
            "memory.block_tokens",
            f.memory.block_tokens,
            "must be in 1..=65536 positions per KV block (1 = per-token residency, 16 = vLLM's pages)",
        );
    }
    if f.policy.max_script_operations == 0 {
        c.fail(
            "policy.max_script_operations",
            0,
            "must be >= 1 (default 5000000000)",
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
    // Every KV entry of the run and every weight read at every step must fit the 64-bit sums.
    let all_entries = (w.prefill + w.decode) * m.layers;
    let run_bytes = entry_bytes
        .checked_mul(all_entries)
        .and_then(|kv| kv.checked_add(weights_bytes))
        .and_then(|b| b.checked_mul(w.decode))
        .filter(|&b| b <= MAX_RUN_BYTES);
    if run_bytes.is_none() {
        bail!(
            "KV entry {entry_bytes} B x {all_entries} entries (layers x positions) plus {weights_bytes} B of weights, read over {} decode steps, is more than the {MAX_RUN_BYTES} bytes a run can count: lower `model.kv_bytes` / heads, `workload.batch`, the positions or `model.params`",
            w.decode
        );
    }
    let prefill_kv_bytes = entry_bytes * w.prefill * m.layers;
    let block_tokens = f.memory.block_tokens as usize;
    let block_bytes = entry_bytes * f.memory.block_tokens;
    let initial_hbm_kv_bytes =
        block_bytes * initial_hbm_blocks(f, layers, prefill, block_tokens) as u64;
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
    let (hbm_bw, exti_bw) = (f.hbm.bandwidth.0, f.ext.internal_bandwidth.0);
    // Validation above made sure each direction has a bandwidth.
    let either = |own: Option<Bandwidth>| own.or(e.link_bandwidth).map_or(0.0, |b| b.0);
    let (link_read_bw, link_write_bw) = (
        either(e.link_read_bandwidth),
        either(e.link_write_bandwidth),
    );
    let ext_effective_bw = match f.ext.access {
        Access::Fetch => link_read_bw.min(exti_bw),
        Access::NearData => exti_bw,
    };
    let batch = w.batch as f64;
    let dtype = m.dtype_bytes as f64;
    let compute = Compute {
        flops_per_s: f.gpu.flops.map(|x| x.0),
        overhead_s,
        attn_weight_flops: 2.0 * batch * attn_weight_bytes as f64 / dtype,
        mlp_flops: 2.0 * batch * mlp_weight_bytes as f64 / dtype,
        kv_entry_flops: match (q_heads, m.head_dim) {
            (Some(q), Some(d)) => Some(4.0 * batch * q as f64 * d as f64),
            _ => None,
        },
        q_heads,
        head_dim: m.head_dim,
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
        block_tokens,
        block_bytes,
        prefill_kv_bytes,
        initial_hbm_kv_bytes,
        capacity_bytes,
        kv_budget_bytes,
        oversubscribed_bytes,
        hbm_bw,
        link_read_bw,
        link_write_bw,
        exti_bw,
        copy_read_bw: f.memory.copy_read_bandwidth.map_or(link_read_bw, |b| b.0),
        copy_write_bw: f.memory.copy_write_bandwidth.map_or(link_write_bw, |b| b.0),
        ext_effective_bw,
        alpha_target: hbm_bw / (hbm_bw + ext_effective_bw),
        compute,
    })
}

/// Prefill positions on HBM at one layer under the initial layout, as a half-open range. With
/// KV blocks of `block_tokens` positions (SPEC 14), `newest` and `oldest` keep on HBM only the
/// blocks whose present prefill positions all lie in the newest (oldest) `floor(P * f)`; the
/// range then starts on a block boundary (and ends at one, or at `P`).
pub fn initial_hbm_range(
    initial: &InitialSection,
    layers: usize,
    prefill: usize,
    layer: usize,
    block_tokens: usize,
) -> (usize, usize) {
    let f = initial.prefill_kv_on_hbm;
    let share = fraction_of(prefill as u64, f) as usize;
    let bt = block_tokens;
    match initial.prefill_kv_layout {
        PrefillLayout::Newest => (((prefill - share).div_ceil(bt) * bt).min(prefill), prefill),
        PrefillLayout::Oldest => (
            0,
            if share >= prefill {
                prefill
            } else {
                share / bt * bt
            },
        ),
        PrefillLayout::FirstLayers => {
            if layer < round_half_up(f * layers as f64) as usize {
                (0, prefill)
            } else {
                (0, 0)
            }
        }
    }
}

/// KV blocks on HBM before the first step, over all layers (each takes `k * block_tokens` of
/// the budget, a partly filled last prefill block too).
fn initial_hbm_blocks(f: &ScenarioFile, layers: usize, prefill: usize, bt: usize) -> usize {
    (0..layers)
        .map(|l| {
            let (a, b) = initial_hbm_range(&f.initial, layers, prefill, l, bt);
            (b - a).div_ceil(bt)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use crate::scenario::Scenario;
    use std::path::Path;

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
