//! Lower bounds on a run's decode time, row by row: the ideal bound (SPEC 7) and the placement
//! bound (SPEC 13), both taking compute and the per-row overhead into account (SPEC 11).
//!
//! Each bound depends on what a row reads (its weights, how many KV bytes), never on where a
//! policy put them, so every pair of a comparison has the same bounds.
//!
//! Not here: the time of a run's own rows ([`crate::memory::Timing`]), which the bounds reuse.

use crate::memory::{row_time, Timing};
use crate::scenario::{Access, Overlap, Sizes};

/// Everything the bounds need, derived once per run.
#[derive(Clone, Debug)]
pub struct Bounds<'a> {
    sizes: &'a Sizes,
    timing: Timing,
    access: Access,
}

impl<'a> Bounds<'a> {
    pub fn new(sizes: &'a Sizes, timing: Timing, access: Access) -> Bounds<'a> {
        Bounds {
            sizes,
            timing,
            access,
        }
    }

    /// FLOPs the bounds charge an attention row reading `entries` KV entries: the KV positions
    /// count in fetch mode only (in near_data all KV could be computed in the device).
    pub fn attn_bound_flops(&self, entries: u64) -> f64 {
        match self.access {
            Access::Fetch => self.sizes.compute.attn_flops(entries),
            Access::NearData => self.sizes.compute.attn_flops(0),
        }
    }

    /// Ideal-bound time of one row reading `weight_bytes` of weights and `kv_bytes` of KV
    /// ([`ideal_memory`]), then `max` with compute plus the overhead (SPEC 11).
    pub fn ideal(&self, weight_bytes: u64, kv_bytes: u64, flops: f64) -> f64 {
        let memory = ideal_memory(self.sizes, self.access, weight_bytes, kv_bytes);
        self.timing.row_time(memory, flops)
    }

    /// Memory time of the attention row of `layer` with its weights where the scenario puts
    /// them and `h` of its `kv_bytes` KV bytes read from HBM, the rest from EXT, nothing written
    /// or moved. SPEC 13's `T_l(h)` is this with compute and overhead ([`Timing::row_time`]).
    pub fn attn_memory_at(&self, layer: usize, kv_bytes: u64, h: f64) -> f64 {
        let s = self.sizes;
        let w_hbm = s.attn_weight_hbm[layer] as f64;
        let w_ext = (s.attn_weight_bytes - s.attn_weight_hbm[layer]) as f64;
        let kv_ext = kv_bytes as f64 - h;
        match self.access {
            Access::Fetch => {
                let ext = w_ext + kv_ext;
                self.timing.memory_time(w_hbm + h, ext, 0.0, ext)
            }
            Access::NearData => self
                .timing
                .memory_time(w_hbm + h, w_ext, 0.0, w_ext + kv_ext),
        }
    }

    /// SPEC 13's break point `d_l`: the HBM KV bytes up to which moving KV from EXT to HBM makes
    /// the row faster (never negative; may exceed the row's KV).
    pub fn break_point(&self, layer: usize, kv_bytes: u64) -> f64 {
        let s = self.sizes;
        let t = &self.timing;
        let a = s.attn_weight_hbm[layer] as f64;
        let w_ext = (s.attn_weight_bytes - s.attn_weight_hbm[layer]) as f64;
        let k = kv_bytes as f64;
        let bw_kv = match self.access {
            Access::Fetch => s.link_read_bw.min(s.exti_bw),
            Access::NearData => s.exti_bw,
        };
        let d = match t.overlap {
            // The EXT term (ext bytes / bw_kv) falls, the HBM term (a + h) / bw_hbm rises: they
            // cross at d. (In near_data the weights' LINK term is a constant, which only
            // flattens the minimum and does not move it.)
            Overlap::Max => (s.hbm_bw * (w_ext + k) - bw_kv * a) / (s.hbm_bw + bw_kv),
            Overlap::Serial => {
                let slope = 1.0 / bw_kv - 1.0 / s.hbm_bw;
                if slope <= 0.0 {
                    0.0
                } else {
                    match self.access {
                        // The EXT-KV term sets max(LINK, EXTI) for every h up to all bytes.
                        Access::Fetch => w_ext + k,
                        // EXTI sets the EXT time until it drops to the weights' LINK time.
                        Access::NearData => w_ext + k - w_ext * s.exti_bw / s.link_read_bw,
                    }
                }
            }
        };
        d.max(0.0)
    }

    /// The least memory time of the attention row of `layer` reading `entries` KV entries:
    /// `min(d_l, K_l, C)` KV bytes on HBM.
    pub fn placement_attn_memory(&self, layer: usize, entries: u64) -> f64 {
        let s = self.sizes;
        let kv_bytes = entries * s.entry_bytes;
        let h_max = kv_bytes.min(s.kv_budget_bytes) as f64;
        let h = self.break_point(layer, kv_bytes).min(h_max);
        self.attn_memory_at(layer, kv_bytes, h)
    }

    /// Placement bound of the attention row of `layer` reading `entries` KV entries (SPEC 13):
    /// `T_l(min(d_l, K_l, C))`.
    pub fn placement_attn(&self, layer: usize, entries: u64) -> f64 {
        let memory = self.placement_attn_memory(layer, entries);
        self.timing.row_time(memory, self.attn_bound_flops(entries))
    }

    /// Memory time of the MLP row of `layer` (no copies).
    pub fn mlp_memory(&self, layer: usize) -> f64 {
        let s = self.sizes;
        let h = s.mlp_weight_hbm[layer] as f64;
        let e = (s.mlp_weight_bytes - s.mlp_weight_hbm[layer]) as f64;
        self.timing.memory_time(h, e, 0.0, e)
    }

    /// Time of the MLP row of `layer` with no copies: its own time, which is also its bound.
    pub fn mlp_time(&self, layer: usize) -> f64 {
        self.timing
            .row_time(self.mlp_memory(layer), self.sizes.compute.mlp_flops)
    }

    /// Of the layers, how many have an attention row reading `entries` entries that is
    /// compute-bound even at its best split, and how many MLP rows are compute-bound.
    pub fn compute_bound_layers(&self, entries: u64) -> (usize, usize) {
        let t = &self.timing;
        if t.flops_per_s.is_none() {
            return (0, 0);
        }
        let s = self.sizes;
        let attn_compute = t.compute_time(s.compute.attn_flops(entries));
        let mlp_compute = t.compute_time(s.compute.mlp_flops);
        (0..s.layers).fold((0, 0), |(a, m), l| {
            (
                a + usize::from(attn_compute > self.placement_attn_memory(l, entries)),
                m + usize::from(mlp_compute > self.mlp_memory(l)),
            )
        })
    }

    /// Ideal and placement bounds of a run where nothing is skipped: at step `n` every layer
    /// reads its weights and the `n` entries before it.
    pub fn no_skip(&self) -> (f64, f64) {
        let s = self.sizes;
        let mut placement = 0.0;
        for n in s.prefill..s.prefill + s.decode {
            for l in 0..s.layers {
                placement += self.placement_attn(l, n as u64) + self.mlp_time(l);
            }
        }
        (no_skip_ideal(s, self.access), placement)
    }
}

/// SPEC 7's ideal-bound memory time of one row's reads, `weight_bytes` of weights and
/// `kv_bytes` of KV split freely between the tiers, nothing moved. In near_data mode the KV part
/// may be served by EXTI alone while fetched weights need LINK too: the least time is
/// `max(R / (h + e), W / (h + min(l, e)))`; in fetch mode `R / (h + min(l, e))` (`l` the
/// link's read bandwidth, SPEC 10).
pub fn ideal_memory(sizes: &Sizes, access: Access, weight_bytes: u64, kv_bytes: u64) -> f64 {
    let fetch_bw = sizes.hbm_bw + sizes.link_read_bw.min(sizes.exti_bw);
    let total = (weight_bytes + kv_bytes) as f64;
    match access {
        Access::Fetch => total / fetch_bw,
        Access::NearData => {
            (total / (sizes.hbm_bw + sizes.exti_bw)).max(weight_bytes as f64 / fetch_bw)
        }
    }
}

/// Ideal bound of a run where nothing is skipped (compute and overhead included when the
/// scenario models them).
pub fn no_skip_ideal(sizes: &Sizes, access: Access) -> f64 {
    let c = &sizes.compute;
    let row = |memory: f64, flops: f64| row_time(memory, flops, c.flops_per_s, c.overhead_s);
    let kv_flops = |n: u64| match access {
        Access::Fetch => c.attn_flops(n),
        Access::NearData => c.attn_flops(0),
    };
    let mut total = 0.0;
    for n in sizes.prefill..sizes.prefill + sizes.decode {
        let n = n as u64;
        let kv = ideal_memory(
            sizes,
            access,
            sizes.attn_weight_bytes,
            n * sizes.entry_bytes,
        );
        let attn = row(kv, kv_flops(n));
        let mlp = row(
            ideal_memory(sizes, access, sizes.mlp_weight_bytes, 0),
            c.mlp_flops,
        );
        total += sizes.layers as f64 * (attn + mlp);
    }
    total
}
