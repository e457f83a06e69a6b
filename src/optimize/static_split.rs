//! The best static schedule for a trace (`kvtier optimize`): which KV entries of each layer live
//! on HBM for the whole run, new entries placed by the same rule, no migration.
//!
//! The family searched: for each layer `l` an order of its units (positions, or KV blocks) and a
//! count `c_l`; the layer keeps on HBM the first `c_l` units of its order. The orders are
//! *oldest first*, *newest first* and *most read first* (read count at that layer over the whole
//! run, ties to the older), chosen per layer. A prefix of the oldest order is what PreferHBM,
//! SplitToken and the initial layouts give; the most-read order is the oracle static choice.
//! The counts are chosen together under the HBM KV budget (an entry placed on HBM stays, so the
//! budget binds at the end of the run).
//!
//! Search: one pass over the trace counts, for every (layer, order) and a grid of counts, the
//! exact time of every attention row (through the engine's own charge functions); a dynamic
//! program over the layers picks the counts under the budget; passes on finer grids around the
//! chosen counts follow until the grid step is one unit. Small runs are exact (every count is
//! on the first grid and the budget is not quantised); on large ones the grid and the budget
//! quantum are reported. Every static placement script (the seed's and the baselines') is also
//! run as it is, so the result is never worse than any of them; the engine times the winner.
//!
//! Not here: the engine ([`crate::engine`]), FlexGen's LP ([`super::flexgen`]).

use anyhow::{bail, Result};

use crate::engine::{Policy, Sim};
use crate::memory::{kv_read_charges, new_entry_charges, Charges, Tier, Timing};
use crate::scenario::{Access, Scenario};
use crate::tokenset::TokenSet;
use crate::trace::{self, StepSkips};

/// Grid points per (layer, order) and pass.
const GRID: usize = 128;
/// Budget quanta of the dynamic program.
const QUANTA: u64 = 4096;

/// How a layer's units are ranked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    Oldest,
    Newest,
    MostRead,
}

impl Order {
    pub const ALL: [Order; 3] = [Order::Oldest, Order::Newest, Order::MostRead];

    pub fn name(self) -> &'static str {
        match self {
            Order::Oldest => "oldest",
            Order::Newest => "newest",
            Order::MostRead => "most_read",
        }
    }
}

/// One layer of a static schedule.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LayerChoice {
    pub order: Order,
    /// Units (positions, or blocks) of the order kept on HBM.
    pub units: usize,
    /// Entries of the layer on HBM at the end of the run, and entries in all.
    pub hbm_entries: u64,
    pub entries: u64,
}

/// A static schedule: the positions of each layer on HBM for the whole run.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub hbm: Vec<TokenSet>,
    pub name: String,
}

/// A [`Schedule`] as a policy: the prefill part is the initial split, a new entry goes to HBM
/// when its position is in the layer's set.
pub struct StaticPolicy {
    pub schedule: Schedule,
}

impl Policy for StaticPolicy {
    fn name(&self) -> String {
        self.schedule.name.clone()
    }
    fn has_initial(&self) -> bool {
        true
    }
    fn initial(&mut self, sim: &mut Sim, layer: usize) -> Result<Option<TokenSet>> {
        let mut s = self.schedule.hbm[layer].clone();
        s.truncate(sim.sizes.prefill);
        Ok(Some(s))
    }
    fn place(&mut self, sim: &mut Sim, layer: usize) -> Result<Tier> {
        Ok(if self.schedule.hbm[layer].contains(sim.step) {
            Tier::Hbm
        } else {
            Tier::Ext
        })
    }
}

/// What the scenario fixes for the evaluator.
struct Frame<'a> {
    sc: &'a Scenario,
    timing: Timing,
    layers: usize,
    units: usize,
    bt: usize,
}

impl Frame<'_> {
    /// Time of the attention row of `(step, layer)` reading `r` entries, `h` of them from HBM,
    /// writing its new entry to HBM or not: the engine's charges and timing.
    fn attn_time(&self, layer: usize, r: u64, h: u64, new_on_hbm: bool) -> f64 {
        let s = &self.sc.sizes;
        let mut c = Charges::default();
        c.read_hbm(s.attn_weight_hbm[layer]);
        c.fetch_ext(s.attn_weight_bytes - s.attn_weight_hbm[layer]);
        let access = self.sc.file.ext.access;
        kv_read_charges(&mut c, access, s.entry_bytes, r, h);
        let tier = if new_on_hbm { Tier::Hbm } else { Tier::Ext };
        new_entry_charges(&mut c, self.sc.file.memory.hierarchy, s.entry_bytes, tier);
        let gpu_entries = match access {
            Access::Fetch => r,
            Access::NearData => h,
        };
        c.sublayer_time(&self.timing, s.compute.attn_flops(gpu_entries))
    }
}

/// Reads per unit of each layer over the run, the units with an entry by the end, and the time
/// of the MLP rows (the same for every schedule).
struct TraceFacts {
    reads: Vec<Vec<u64>>,
    present_end: Vec<TokenSet>,
    mlp_s: f64,
}

/// Walks the trace once: for each decode step and layer not skipped, `f(step, layer, reads,
/// mlp_skipped)` with the entries the attention reads, then the new entry is written.
fn walk(
    sc: &Scenario,
    mut f: impl FnMut(usize, usize, &TokenSet, bool) -> Result<()>,
) -> Result<Vec<TokenSet>> {
    let s = &sc.sizes;
    let mut src = trace::open(sc)?;
    let mut present: Vec<TokenSet> = (0..s.layers)
        .map(|_| TokenSet::range(s.positions(), 0, s.prefill))
        .collect();
    let mut step = StepSkips::default();
    let mut reads = TokenSet::new(s.positions());
    for n in s.prefill..s.prefill + s.decode {
        // The search walks the trace several times: a stop request ends it between steps.
        crate::interrupt::check()?;
        src.next_step(&mut step)?;
        for (l, p) in present.iter_mut().enumerate() {
            let ls = &step.layers[l];
            if ls.layer {
                continue;
            }
            reads.clone_from(p);
            if ls.token_count > 0 {
                reads.subtract(&ls.tokens);
            }
            f(n, l, &reads, ls.mlp)?;
            p.insert(n);
        }
    }
    Ok(present)
}

fn facts(fr: &Frame) -> Result<TraceFacts> {
    let words = fr.sc.sizes.positions().div_ceil(64);
    let d = fr.sc.sizes.decode;
    let mut counts: Vec<crate::policy::usage::SlicedCounts> = (0..fr.layers)
        .map(|_| crate::policy::usage::SlicedCounts::new(words, d))
        .collect();
    let s = &fr.sc.sizes;
    let mut mlp_s = 0.0;
    let present_end = walk(fr.sc, |_, l, r, mlp_skipped| {
        counts[l].add(r.words());
        if !mlp_skipped {
            let mut m = Charges::default();
            m.read_hbm(s.mlp_weight_hbm[l]);
            m.fetch_ext(s.mlp_weight_bytes - s.mlp_weight_hbm[l]);
            mlp_s += m.sublayer_time(&fr.timing, s.compute.mlp_flops);
        }
        Ok(())
    })?;
    // Per position counts from the bit planes, then per unit.
    let mut reads = Vec::with_capacity(fr.layers);
    for c in &counts {
        let per_pos = c.values(fr.sc.sizes.positions());
        let mut per_unit = vec![0u64; fr.units];
        for (p, v) in per_pos.into_iter().enumerate() {
            per_unit[p / fr.bt] += v;
        }
        reads.push(per_unit);
    }
    Ok(TraceFacts {
        reads,
        present_end,
        mlp_s,
    })
}

/// `rank[u]` of each unit of a layer under `order`.
fn ranks(order: Order, units: usize, reads: &[u64]) -> Vec<u32> {
    let mut by: Vec<usize> = (0..units).collect();
    match order {
        Order::Oldest => {}
        Order::Newest => by.reverse(),
        Order::MostRead => by.sort_by_key(|&u| (std::cmp::Reverse(reads[u]), u)),
    }
    let mut rank = vec![0u32; units];
    for (i, u) in by.into_iter().enumerate() {
        rank[u] = i as u32;
    }
    rank
}

/// A curve: the time of a layer's attention rows (and its budget cost) at each grid count.
#[derive(Clone, Debug)]
struct Curve {
    order: Order,
    layer: usize,
    /// Counts, ascending.
    points: Vec<usize>,
    time: Vec<f64>,
    /// Units with an entry by the end among the first `points[g]`.
    cost: Vec<u64>,
}

/// Times every curve's grid in one pass over the trace. `rank` is indexed by order position in
/// [`Order::ALL`], then layer.
fn evaluate(fr: &Frame, rank: &[Vec<Vec<u32>>], curves: &mut [Curve]) -> Result<()> {
    // bucket[c][u]: grid points of curve c at or below the unit's rank.
    let oi = |o: Order| Order::ALL.iter().position(|&x| x == o).expect("listed");
    let buckets: Vec<Vec<u16>> = curves
        .iter()
        .map(|c| {
            let r = &rank[oi(c.order)][c.layer];
            r.iter()
                .map(|&x| c.points.partition_point(|&p| p <= x as usize) as u16)
                .collect()
        })
        .collect();
    let mut by_layer: Vec<Vec<usize>> = vec![Vec::new(); fr.layers];
    for (i, c) in curves.iter().enumerate() {
        by_layer[c.layer].push(i);
    }
    let mut cnt: Vec<Vec<i64>> = curves.iter().map(|c| vec![0; c.points.len() + 1]).collect();
    let mut prev: Vec<TokenSet> = (0..fr.layers)
        .map(|_| TokenSet::new(fr.sc.sizes.positions()))
        .collect();
    let bt = fr.bt;
    let present_end = walk(fr.sc, |n, l, reads, _| {
        if by_layer[l].is_empty() {
            return Ok(());
        }
        // Update each curve's per-bucket read counts by what changed since the layer's last row.
        for (w, (a, b)) in reads.words().iter().zip(prev[l].words()).enumerate() {
            let mut diff = a ^ b;
            while diff != 0 {
                let bit = diff.trailing_zeros() as usize;
                diff &= diff - 1;
                let p = w * 64 + bit;
                let delta = if a >> bit & 1 == 1 { 1 } else { -1 };
                for &ci in &by_layer[l] {
                    cnt[ci][buckets[ci][p / bt] as usize] += delta;
                }
            }
        }
        prev[l].clone_from(reads);
        let r = reads.count();
        for &ci in &by_layer[l] {
            let new_bucket = buckets[ci][n / bt] as usize;
            let c = &mut curves[ci];
            let mut h = 0i64;
            for (g, (t, &k)) in c.time.iter_mut().zip(&cnt[ci]).enumerate() {
                h += k;
                *t += fr.attn_time(l, r, h as u64, new_bucket <= g);
            }
        }
        Ok(())
    })?;
    for (ci, c) in curves.iter_mut().enumerate() {
        // Units, not entries: a unit counts once, at its first present position.
        let mut unit_bucket = vec![0u64; c.points.len() + 1];
        let mut last_unit = usize::MAX;
        for p in present_end[c.layer].iter() {
            let u = p / bt;
            if u != last_unit {
                unit_bucket[buckets[ci][u] as usize] += 1;
                last_unit = u;
            }
        }
        let mut acc = 0;
        for (cost, &u) in c.cost.iter_mut().zip(&unit_bucket) {
            acc += u;
            *cost = acc;
        }
    }
    Ok(())
}

/// A grid of at most `GRID` counts spanning `lo..=hi`, both ends included.
fn grid(lo: usize, hi: usize) -> Vec<usize> {
    if hi - lo < GRID {
        return (lo..=hi).collect();
    }
    let mut g: Vec<usize> = (0..GRID)
        .map(|i| lo + ((hi - lo) as u128 * i as u128 / (GRID - 1) as u128) as usize)
        .collect();
    g.dedup();
    g
}

/// One candidate point of a layer: its order, count, cost and time.
#[derive(Clone, Copy, Debug)]
struct Point {
    order: Order,
    units: usize,
    cost: u64,
    time: f64,
}

/// Picks one point per layer minimising the total time with the summed cost within `budget`
/// units (quantised to `QUANTA` steps, costs rounded up). Returns the choice and the quantum.
fn allocate(points: &[Vec<Point>], budget: u64) -> Result<(Vec<Point>, u64)> {
    let q = budget.div_ceil(QUANTA).max(1);
    let cap = (budget / q) as usize;
    let layers = points.len();
    // best[b]: least time of the layers so far with at most b quanta; choice per layer.
    let mut best = vec![0.0f64; cap + 1];
    let mut pick: Vec<Vec<u32>> = Vec::with_capacity(layers);
    for pts in points {
        let mut next = vec![f64::INFINITY; cap + 1];
        let mut choice = vec![u32::MAX; cap + 1];
        for (i, p) in pts.iter().enumerate() {
            let c = p.cost.div_ceil(q) as usize;
            if c > cap {
                continue;
            }
            for b in c..=cap {
                let t = best[b - c] + p.time;
                if t < next[b] {
                    next[b] = t;
                    choice[b] = i as u32;
                }
            }
        }
        if next[cap].is_infinite() {
            bail!("no static split fits the HBM KV budget (even every layer's least cost)");
        }
        best = next;
        pick.push(choice);
    }
    // Walk back from the full budget.
    let mut b = cap;
    let mut out = vec![points[0][0]; layers];
    for l in (0..layers).rev() {
        let i = pick[l][b] as usize;
        out[l] = points[l][i];
        b -= (out[l].cost.div_ceil(q)) as usize;
    }
    Ok((out, q))
}

/// The result of `kvtier optimize`.
#[derive(Clone, Debug)]
pub struct Optimum {
    /// Per layer: the order and count chosen by the search.
    pub layers: Vec<LayerChoice>,
    /// The search's schedule.
    pub schedule: Schedule,
    /// Grid passes run, and the coarsest grid step left at a chosen count (1 = exact count).
    pub passes: usize,
    pub grid_step: usize,
    /// Budget quantum of the dynamic program, in units (1 = exact).
    pub quantum: u64,
    /// The decode time the search's evaluator gives the schedule (the engine's, up to the order
    /// of the floating-point sums).
    pub predicted_s: f64,
}

/// Searches the family for `sc` (see the module docs). The caller times the schedule with the
/// engine.
pub fn search(sc: &Scenario) -> Result<Optimum> {
    if sc.file.memory.passive_migration {
        bail!("kvtier optimize needs memory.passive_migration = false: with passive installs no schedule stays static");
    }
    let s = &sc.sizes;
    let bt = s.block_tokens;
    let fr = Frame {
        sc,
        timing: Timing::of(sc),
        layers: s.layers,
        units: s.positions().div_ceil(bt),
        bt,
    };
    let facts = facts(&fr)?;
    let rank: Vec<Vec<Vec<u32>>> = Order::ALL
        .iter()
        .map(|&o| {
            (0..fr.layers)
                .map(|l| ranks(o, fr.units, &facts.reads[l]))
                .collect()
        })
        .collect();
    let budget_units = s.kv_budget_bytes / s.block_bytes;
    // Pass 1: every order, the whole range.
    let mut curves: Vec<Curve> = Vec::new();
    for l in 0..fr.layers {
        for o in Order::ALL {
            let points = grid(0, fr.units);
            curves.push(Curve {
                order: o,
                layer: l,
                time: vec![0.0; points.len()],
                cost: vec![0; points.len()],
                points,
            });
        }
    }
    evaluate(&fr, &rank, &mut curves)?;
    let mut all = curves;
    let mut passes = 1;
    loop {
        let points = candidates(&all, fr.layers);
        let (chosen, q) = allocate(&points, budget_units)?;
        // Refine around each chosen count on its curve where the grid is coarser than 1.
        let mut finer = Vec::new();
        let mut step = 1;
        for (l, p) in chosen.iter().enumerate() {
            let (lo, hi) = neighbours(&all, l, p.order, p.units);
            if hi - lo > 2 {
                step = step.max((hi - lo) / 2);
                let pts = grid(lo, hi);
                finer.push(Curve {
                    order: p.order,
                    layer: l,
                    time: vec![0.0; pts.len()],
                    cost: vec![0; pts.len()],
                    points: pts,
                });
            }
        }
        if finer.is_empty() || passes >= 6 {
            let layers = chosen
                .iter()
                .enumerate()
                .map(|(l, p)| {
                    let hbm = schedule_set(&fr, &rank, l, p.order, p.units);
                    let mut on = hbm.clone();
                    on.intersect_with(&facts.present_end[l]);
                    LayerChoice {
                        order: p.order,
                        units: p.units,
                        hbm_entries: on.count(),
                        entries: facts.present_end[l].count(),
                    }
                })
                .collect();
            let hbm = chosen
                .iter()
                .enumerate()
                .map(|(l, p)| schedule_set(&fr, &rank, l, p.order, p.units))
                .collect();
            return Ok(Optimum {
                layers,
                schedule: Schedule {
                    hbm,
                    name: "best static".into(),
                },
                passes,
                grid_step: step.max(1),
                quantum: q,
                predicted_s: chosen.iter().map(|p| p.time).sum::<f64>() + facts.mlp_s,
            });
        }
        evaluate(&fr, &rank, &mut finer)?;
        all.extend(finer);
        passes += 1;
    }
}

/// Every evaluated point of every layer, dominated ones (no cheaper and no faster) dropped.
fn candidates(curves: &[Curve], layers: usize) -> Vec<Vec<Point>> {
    let mut out: Vec<Vec<Point>> = vec![Vec::new(); layers];
    for c in curves {
        for g in 0..c.points.len() {
            out[c.layer].push(Point {
                order: c.order,
                units: c.points[g],
                cost: c.cost[g],
                time: c.time[g],
            });
        }
    }
    for pts in out.iter_mut() {
        pts.sort_by(|a, b| a.cost.cmp(&b.cost).then(a.time.total_cmp(&b.time)));
        let mut kept: Vec<Point> = Vec::new();
        for p in pts.iter() {
            if kept.last().is_none_or(|k| p.time < k.time) {
                kept.push(*p);
            }
        }
        *pts = kept;
    }
    out
}

/// The evaluated counts just below and above `units` on `(layer, order)`'s curves.
fn neighbours(curves: &[Curve], layer: usize, order: Order, units: usize) -> (usize, usize) {
    let (mut lo, mut hi) = (0, usize::MAX);
    for c in curves
        .iter()
        .filter(|c| c.layer == layer && c.order == order)
    {
        for &p in &c.points {
            if p < units {
                lo = lo.max(p);
            } else if p > units {
                hi = hi.min(p);
            }
        }
    }
    (lo, if hi == usize::MAX { units } else { hi })
}

/// The positions of the first `units` units of `order` at `layer`.
fn schedule_set(
    fr: &Frame,
    rank: &[Vec<Vec<u32>>],
    layer: usize,
    order: Order,
    units: usize,
) -> TokenSet {
    let oi = Order::ALL.iter().position(|&x| x == order).expect("listed");
    let n = fr.sc.sizes.positions();
    let mut s = TokenSet::new(n);
    for (u, &r) in rank[oi][layer].iter().enumerate() {
        if (r as usize) < units {
            s.insert_range(u * fr.bt, ((u + 1) * fr.bt).min(n));
        }
    }
    s
}
