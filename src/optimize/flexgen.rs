//! FlexGen's choice of a static KV split (Sheng et al., "FlexGen: High-Throughput Generative
//! Inference of Large Language Models with a Single GPU", ICML 2023, section 4.3): a linear
//! cost model of one layer's decode, minimised once, offline, over the share of each tensor on
//! each tier.
//!
//! kvtier's reading, for two tiers: FlexGen times a layer as one stage whose I/O overlaps, so a
//! layer takes `T = max(H / BW_hbm, E / BW_ext)` with `H` the bytes it reads from HBM and `E`
//! the bytes it reads from and writes to EXT (`BW_ext` the effective EXT bandwidth of the alpha
//! target). It knows nothing of sparsity: every step reads the whole cache, whose length it
//! takes as the average over the run, `s = P + (D - 1) / 2`. With a share `c` of the KV on HBM
//! (weights stay where the scenario puts them, so that every pair of a comparison shares its
//! bounds):
//!
//! ```text
//! H(c) = Wh + c * s * k                      Wh: weights (attention + MLP) on HBM, per layer
//! E(c) = We + (1 - c) * (s + 1) * k          We: weights on EXT; + 1: the new entry's write
//! minimise T  subject to  T >= H(c) / BW_hbm,  T >= E(c) / BW_ext,
//!                         0 <= c <= 1,  c * L * (P + D) * k <= kv_budget
//! ```
//!
//! `H / BW_hbm` rises with `c` and `E / BW_ext` falls, so the optimum of this LP is where they
//! cross, clamped to the feasible interval (a closed form; no solver needed).

use crate::scenario::Sizes;

/// The LP's solution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Split {
    /// Share of the KV on HBM, `c`.
    pub kv_share: f64,
    /// Share of the weights on HBM (the scenario's, not a variable here).
    pub weights_share: f64,
    /// The average cache length the model assumes, `s`.
    pub avg_context: f64,
    /// Largest `c` the HBM KV budget allows at the end of the run.
    pub budget_cap: f64,
    /// The model's time of one layer of one step at `c`, seconds.
    pub layer_time_s: f64,
}

/// Solves FlexGen's LP for `sizes` (see the module docs).
pub fn solve(s: &Sizes) -> Split {
    let layers = s.layers as f64;
    let k = s.entry_bytes as f64;
    let wh = s.weights_on_hbm_bytes as f64 / layers;
    let we = s.weights_bytes as f64 / layers - wh;
    let avg = s.prefill as f64 + (s.decode as f64 - 1.0) / 2.0;
    let (bh, be) = (s.hbm_bw, s.ext_effective_bw);
    // H(c) / bh = E(c) / be  <=>  c * (s k / bh + (s + 1) k / be) = (We + (s + 1) k) / be - Wh / bh
    let slope = avg * k / bh + (avg + 1.0) * k / be;
    let cross = ((we + (avg + 1.0) * k) / be - wh / bh) / slope;
    let all_kv = layers * s.positions() as f64 * k;
    let budget_cap = (s.kv_budget_bytes as f64 / all_kv).min(1.0);
    let c = cross.clamp(0.0, budget_cap);
    let h = (wh + c * avg * k) / bh;
    let e = (we + (1.0 - c) * (avg + 1.0) * k) / be;
    Split {
        kv_share: c,
        weights_share: if s.weights_bytes == 0 {
            1.0
        } else {
            s.weights_on_hbm_bytes as f64 / s.weights_bytes as f64
        },
        avg_context: avg,
        budget_cap,
        layer_time_s: h.max(e),
    }
}
