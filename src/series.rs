//! Per-decode-step series of one run, aggregated from its records as they stream by: what the
//! charts of [`crate::plot`] draw.
//!
//! A [`StepSeries`] is a [`RecordSink`]: it adds each record to its step (time, ideal and placement bounds,
//! alpha sums, bytes moved, HBM KV occupancy) and keeps the attention alpha of every
//! `(step, layer)` for the heat map. Every number is a sum or a copy of record fields, so the
//! series adds up to the run's totals exactly as the per-sublayer CSV does.
//!
//! Not here: binning for plotting and drawing ([`crate::plot`]).

use std::ops::Range;

use anyhow::{bail, Result};

use crate::engine::{Record, RecordSink, Sublayer};
use crate::scenario::Scenario;

/// One decode step's sums over its records (sublayers and step phase).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepPoint {
    /// Decode step `n` (the position it generates).
    pub step: usize,
    /// Sum of the step's sublayer and step-phase times.
    pub time_s: f64,
    /// Sum of the step's ideal-bound times (SPEC 7).
    pub bound_s: f64,
    /// Sum of the step's placement-bound times (SPEC 13).
    pub placement_bound_s: f64,
    /// Sum of alpha over the attention sublayers that read, and their count.
    pub attn_alpha_sum: f64,
    pub attn_rows: u32,
    /// Sum of alpha over the MLP sublayers, and their count.
    pub mlp_alpha_sum: f64,
    pub mlp_rows: u32,
    /// Bytes moved to HBM (migrations and passive installs) and to EXT during the step.
    pub to_hbm: u64,
    pub to_ext: u64,
    /// HBM KV bytes in use after the step's last record; `None` when the step wrote no record.
    pub hbm_kv_bytes: Option<u64>,
}

impl StepPoint {
    /// Mean alpha of the step's attention sublayers that read (averaged over layers).
    pub fn alpha_attn(&self) -> Option<f64> {
        (self.attn_rows > 0).then(|| self.attn_alpha_sum / self.attn_rows as f64)
    }

    /// Mean alpha of the step's MLP sublayers.
    pub fn alpha_mlp(&self) -> Option<f64> {
        (self.mlp_rows > 0).then(|| self.mlp_alpha_sum / self.mlp_rows as f64)
    }
}

/// The per-step series of one run.
#[derive(Clone, Debug)]
pub struct StepSeries {
    /// First decode step (`P`).
    pub first_step: usize,
    pub layers: usize,
    pub kv_budget_bytes: u64,
    /// HBM KV bytes before the first step.
    pub initial_hbm_kv_bytes: u64,
    pub alpha_target: f64,
    /// One point per decode step, in order.
    pub steps: Vec<StepPoint>,
    /// Attention alpha per `(step, layer)`, step-major (`[i * layers + l]` for step
    /// `first_step + i`); NaN where the attention sublayer read nothing or did not run (half
    /// the memory of `Option<f64>`; read it through [`StepSeries::attn_alpha_at`]).
    attn_alpha: Vec<f64>,
}

impl StepSeries {
    /// An empty series shaped for `scenario`'s decode steps and layers.
    pub fn new(scenario: &Scenario) -> StepSeries {
        let s = &scenario.sizes;
        StepSeries {
            first_step: s.prefill,
            layers: s.layers,
            kv_budget_bytes: s.kv_budget_bytes,
            initial_hbm_kv_bytes: s.initial_hbm_kv_bytes,
            alpha_target: s.alpha_target,
            steps: (0..s.decode)
                .map(|i| StepPoint {
                    step: s.prefill + i,
                    ..StepPoint::default()
                })
                .collect(),
            attn_alpha: vec![f64::NAN; s.decode * s.layers],
        }
    }

    /// Attention alpha of `(first_step + i, layer)`.
    pub fn attn_alpha_at(&self, i: usize, layer: usize) -> Option<f64> {
        let a = self.attn_alpha[i * self.layers + layer];
        (!a.is_nan()).then_some(a)
    }

    /// HBM KV bytes after each step; a step without records keeps the value before it.
    pub fn occupancy(&self) -> Vec<u64> {
        let mut last = self.initial_hbm_kv_bytes;
        self.steps
            .iter()
            .map(|p| {
                if let Some(b) = p.hbm_kv_bytes {
                    last = b;
                }
                last
            })
            .collect()
    }

    /// Sum of the step times: the run's decode time.
    pub fn decode_time_s(&self) -> f64 {
        self.steps.iter().map(|p| p.time_s).sum()
    }
}

impl RecordSink for StepSeries {
    fn record(&mut self, r: &Record) -> Result<()> {
        let Some(i) = r.step.checked_sub(self.first_step) else {
            bail!("record of step {} before the first decode step", r.step);
        };
        let Some(p) = self.steps.get_mut(i) else {
            bail!("record of step {} after the last decode step", r.step);
        };
        let c = &r.charges;
        p.time_s += r.time_s;
        p.bound_s += r.bound_s;
        p.placement_bound_s += r.placement_bound_s;
        p.to_hbm += c.to_hbm;
        p.to_ext += c.to_ext;
        p.hbm_kv_bytes = Some(r.hbm_kv_bytes);
        if let Some(a) = c.alpha() {
            match r.sublayer {
                Sublayer::Attn => {
                    p.attn_alpha_sum += a;
                    p.attn_rows += 1;
                    if let Some(l) = r.layer {
                        self.attn_alpha[i * self.layers + l] = a;
                    }
                }
                Sublayer::Mlp => {
                    p.mlp_alpha_sum += a;
                    p.mlp_rows += 1;
                }
                Sublayer::Step => {}
            }
        }
        Ok(())
    }
}

/// Splits `0..len` into consecutive bins of equal width (the last may be shorter), at most
/// `max_bins` of them: long series are plotted as bin means so that a chart stays small.
pub fn bins(len: usize, max_bins: usize) -> Vec<Range<usize>> {
    let width = len.div_ceil(max_bins.max(1)).max(1);
    (0..len)
        .step_by(width)
        .map(|a| a..(a + width).min(len))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_cover_the_range_in_equal_widths() {
        assert_eq!(bins(3, 512), vec![0..1, 1..2, 2..3]);
        assert_eq!(bins(4096, 512).len(), 512);
        assert!(bins(4096, 512).iter().all(|b| b.len() == 8));
        // 10 steps into at most 4 bins: width 3, the last bin shorter.
        assert_eq!(bins(10, 4), vec![0..3, 3..6, 6..9, 9..10]);
        assert!(bins(0, 4).is_empty());
    }
}
