//! Per-layer statistics of a skip trace, for `kvtier trace stats` and for calibrating the
//! generators against recorded traces.

use anyhow::Result;
use serde::Serialize;

use super::{StepSkips, TraceSource};
use crate::tokenset::TokenSet;

/// Statistics of one layer, or of all layers pooled.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct LayerStats {
    /// Skipped entries / present entries over the steps where the layer ran.
    pub skipped_share: f64,
    /// Mean Jaccard index of the read sets of consecutive steps (both run), over the positions
    /// both steps could read.
    pub jaccard: f64,
    /// Steps at which the whole layer was skipped / steps.
    pub layer_skip_rate: f64,
    /// Steps at which only the MLP was skipped / steps.
    pub mlp_skip_rate: f64,
    /// Share of the read entries that are attention sinks (positions < sinks).
    pub sink_share: f64,
    /// Share of the read entries inside the recent window.
    pub recent_share: f64,
    /// Share of the decode entries not read at some step of the [`YOUNG_WINDOW`] after they
    /// are written (entries whose window ends inside the trace): what look-ahead placement can
    /// act on.
    pub young_skip_share: f64,
}

/// Steps after an entry's write that [`LayerStats::young_skip_share`] looks at (the seed's
/// look-ahead window).
pub const YOUNG_WINDOW: usize = 16;

#[derive(Clone, Debug, Serialize)]
pub struct TraceStats {
    pub layers: Vec<LayerStats>,
    pub all: LayerStats,
}

#[derive(Default, Clone)]
struct Acc {
    present: u64,
    skipped: u64,
    jaccard_sum: f64,
    jaccard_n: u64,
    layer_skips: u64,
    mlp_skips: u64,
    steps: u64,
    read: u64,
    sink_read: u64,
    recent_read: u64,
    young: u64,
    young_skipped: u64,
}

impl Acc {
    fn add(&mut self, o: &Acc) {
        self.present += o.present;
        self.skipped += o.skipped;
        self.jaccard_sum += o.jaccard_sum;
        self.jaccard_n += o.jaccard_n;
        self.layer_skips += o.layer_skips;
        self.mlp_skips += o.mlp_skips;
        self.steps += o.steps;
        self.read += o.read;
        self.sink_read += o.sink_read;
        self.recent_read += o.recent_read;
        self.young += o.young;
        self.young_skipped += o.young_skipped;
    }

    fn finish(&self) -> LayerStats {
        let div = |a: f64, b: u64| if b == 0 { 0.0 } else { a / b as f64 };
        LayerStats {
            skipped_share: div(self.skipped as f64, self.present),
            jaccard: div(self.jaccard_sum, self.jaccard_n),
            layer_skip_rate: div(self.layer_skips as f64, self.steps),
            mlp_skip_rate: div(self.mlp_skips as f64, self.steps),
            sink_share: div(self.sink_read as f64, self.read),
            recent_share: div(self.recent_read as f64, self.read),
            young_skip_share: div(self.young_skipped as f64, self.young),
        }
    }
}

/// Reads the whole trace and computes per-layer statistics. `sinks` and `recent` say which
/// positions count as sinks and as the recent window.
pub fn compute(source: &mut dyn TraceSource, sinks: usize, recent: usize) -> Result<TraceStats> {
    let d = source.dims();
    let cap = d.prefill + d.decode;
    let mut present: Vec<TokenSet> = (0..d.layers)
        .map(|_| TokenSet::range(cap, 0, d.prefill))
        .collect();
    let mut prev_read: Vec<Option<TokenSet>> = vec![None; d.layers];
    let mut accs = vec![Acc::default(); d.layers];
    let mut step = StepSkips::default();
    let mut read = TokenSet::new(cap);
    // Per layer: decode entries not read at some step since their write.
    let mut young: Vec<TokenSet> = (0..d.layers).map(|_| TokenSet::new(cap)).collect();
    for _ in 0..d.decode {
        source.next_step(&mut step)?;
        let n = step.step;
        let window = n.saturating_sub(YOUNG_WINDOW).max(d.prefill)..n;
        for (l, ls) in step.layers.iter().enumerate() {
            let a = &mut accs[l];
            a.steps += 1;
            for p in window.clone() {
                if present[l].contains(p) && (ls.layer || ls.tokens.contains(p)) {
                    young[l].insert(p);
                }
            }
            if let Some(p) = n.checked_sub(YOUNG_WINDOW).filter(|&p| p >= d.prefill) {
                if present[l].contains(p) {
                    a.young += 1;
                    a.young_skipped += young[l].contains(p) as u64;
                }
            }
            if ls.layer {
                a.layer_skips += 1;
                prev_read[l] = None;
                continue;
            }
            a.mlp_skips += ls.mlp as u64;
            read.clone_from(&present[l]);
            read.subtract(&ls.tokens);
            let present_n = present[l].count();
            let read_n = read.count();
            a.present += present_n;
            a.skipped += present_n - read_n;
            a.read += read_n;
            a.sink_read += read.count_below(sinks);
            a.recent_read += read_n - read.count_below(n.saturating_sub(recent));
            if let Some(prev) = &prev_read[l] {
                // Compare over positions < n - 1, which both steps could read.
                let mut now = read.clone();
                now.truncate(n - 1);
                let mut inter = now.clone();
                inter.intersect_with(prev);
                let mut uni = now;
                uni.union_with(prev);
                let u = uni.count();
                if u > 0 {
                    a.jaccard_sum += inter.count() as f64 / u as f64;
                    a.jaccard_n += 1;
                }
            }
            prev_read[l] = Some(read.clone());
            present[l].insert(n);
        }
    }
    let mut all = Acc::default();
    accs.iter().for_each(|a| all.add(a));
    Ok(TraceStats {
        layers: accs.iter().map(Acc::finish).collect(),
        all: all.finish(),
    })
}
