//! Property tests of the v2 time model (SPEC 10-13) over random small scenarios, traces and move
//! scripts, in sync and async mode: the engine keeps its invariants and its bounds hold whatever
//! a policy does.
//!
//! A case is one `u64`: every choice (dimensions, modes, bandwidths, compute, the trace, the
//! policy's moves) is drawn from an [`Rng`] seeded with it, so proptest shrinks towards small
//! seeds and a failure is reproduced by its seed.

mod common;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use common::*;
use kvtier::engine::{self, Layers, Record, RunTotals, Sim};
use kvtier::memory::Tier;
use kvtier::results::Summary;
use kvtier::rng::Rng;
use kvtier::scenario::{
    Access, Bandwidth, ByteSize, Duplex, Flops, Hierarchy, MigrationMode, Overlap, Scenario,
    Seconds,
};
use kvtier::tokenset::TokenSet;
use kvtier::trace::{StepSkips, TraceDims};
use proptest::prelude::*;

/// Draws a scenario from `seed`; `None` when the draw is not a valid scenario (a budget below
/// the initial HBM KV). `mode` forces the migration mode when given.
fn scenario(seed: u64, mode: Option<MigrationMode>) -> Option<Scenario> {
    let mut r = Rng::new(seed);
    let mut f = tiny_file();
    let pick = |r: &mut Rng, p: f64| r.chance(p);
    f.model.layers = 1 + r.below(3);
    f.model.params = 300.0 * f.model.layers as f64;
    f.workload.prefill = r.below(30);
    f.workload.decode = 1 + r.below(10);
    f.memory.hierarchy = if pick(&mut r, 0.3) {
        Hierarchy::Inclusive
    } else {
        Hierarchy::Exclusive
    };
    f.ext.access = if pick(&mut r, 0.3) {
        Access::NearData
    } else {
        Access::Fetch
    };
    f.memory.overlap = if pick(&mut r, 0.3) {
        Overlap::Serial
    } else {
        Overlap::Max
    };
    f.ext.link_duplex = if pick(&mut r, 0.5) {
        Duplex::Full
    } else {
        Duplex::Shared
    };
    f.memory.passive_migration = pick(&mut r, 0.3);
    if pick(&mut r, 0.7) {
        f.ext.link_read_bandwidth = Some(Bandwidth(5.0 + r.below(40) as f64));
        f.ext.link_write_bandwidth = Some(Bandwidth(5.0 + r.below(40) as f64));
    }
    if pick(&mut r, 0.5) {
        f.model.head_dim = Some(1 + r.below(8));
        f.model.q_heads = Some(1 + r.below(4));
        f.gpu.flops = Some(Flops(20.0 + r.below(200) as f64));
    }
    if pick(&mut r, 0.3) {
        f.gpu.sublayer_overhead = Some(Seconds(r.below(4) as f64 * 0.25));
    }
    f.memory.migration = mode.unwrap_or(if pick(&mut r, 0.5) {
        MigrationMode::Async
    } else {
        MigrationMode::Sync
    });
    if pick(&mut r, 0.5) {
        f.memory.copy_read_bandwidth = Some(Bandwidth(1.0 + r.below(60) as f64));
        f.memory.copy_write_bandwidth = Some(Bandwidth(1.0 + r.below(60) as f64));
    }
    f.initial.weights_on_hbm = r.below(5) as f64 / 4.0;
    f.initial.prefill_kv_on_hbm = r.below(5) as f64 / 4.0;
    f.hbm.kv_budget = Some(ByteSize(r.below(50) * 100 + r.below(100)));
    Scenario::from_file(f, None).ok()
}

/// A random trace: per (n, l) maybe skip the layer (if `layer_skips`), the MLP, and random
/// positions; positions in `cold` are never read.
fn trace(sc: &Scenario, seed: u64, cold: &TokenSet, layer_skips: bool) -> VecSource {
    let s = &sc.sizes;
    let mut rng = Rng::new(seed ^ 0x7ace);
    let dims = TraceDims {
        prefill: s.prefill,
        decode: s.decode,
        layers: s.layers,
    };
    let mut steps = VecDeque::new();
    for n in s.prefill..s.prefill + s.decode {
        let mut st = StepSkips::default();
        st.reset(n, s.layers);
        for ls in &mut st.layers {
            ls.layer = layer_skips && rng.chance(0.15);
            ls.mlp = rng.chance(0.2);
            for t in 0..n {
                if cold.contains(t) || rng.chance(0.3) {
                    ls.tokens.insert(t);
                }
            }
            ls.token_count = ls.tokens.count();
        }
        steps.push_back(st);
    }
    VecSource { dims, steps }
}

/// Memory invariants with reservations: HBM KV in use (resident + reserved by queued
/// promotions) within the budget and equal to what the sets say; exclusive: every entry in
/// exactly one tier; queued entries exist.
fn check_memory(sim: &Sim, inclusive: bool) -> Result<(), String> {
    let m = &sim.memory;
    let k = m.entry_bytes();
    let mut in_use = 0;
    for l in 0..m.layers() {
        let (present, hbm, queued) = (m.present(l), m.hbm(l), m.queued(l));
        let mut reserved = queued.clone();
        reserved.subtract(hbm);
        in_use += (hbm.count() + reserved.count()) * k;
        let mut stray = queued.clone();
        stray.union_with(hbm);
        stray.subtract(present);
        if !stray.is_empty() {
            return Err(format!(
                "layer {l}: entries on HBM or queued that do not exist"
            ));
        }
        let ext = m.ext_set(l);
        let mut both = ext.clone();
        both.intersect_with(hbm);
        if !inclusive && !both.is_empty() {
            return Err(format!("layer {l}: entries in both tiers: {both:?}"));
        }
        let mut all = ext;
        all.union_with(hbm);
        if all != *present {
            return Err(format!("layer {l}: some entry is in no tier"));
        }
        if queued.count() != m.queued_count(l) || hbm.count() != m.hbm_count(l) {
            return Err(format!("layer {l}: counters disagree with the sets"));
        }
    }
    if in_use != m.hbm_used_bytes() || in_use > m.budget_bytes() {
        return Err(format!(
            "HBM KV in use {} (sets say {in_use}), budget {}",
            m.hbm_used_bytes(),
            m.budget_bytes()
        ));
    }
    Ok(())
}

fn random_set(rng: &mut Rng, cap: usize) -> TokenSet {
    let a = rng.below(cap as u64 + 1) as usize;
    let b = a + rng.below((cap - a) as u64 + 1) as usize;
    TokenSet::range(cap, a, b)
}

struct Outcome {
    recs: Vec<Record>,
    totals: RunTotals,
    /// Bytes the verbs returned for queued copies (async; inclusive drops excluded).
    queued_bytes: u64,
    failure: Option<String>,
}

/// Runs a policy of random moves in `on_step` and `on_layer` (layer by layer within a step),
/// checking the memory invariants at every hook.
fn run_random(sc: &Scenario, seed: u64) -> Outcome {
    let inclusive = sc.file.memory.hierarchy == Hierarchy::Inclusive;
    let asynchronous = sc.file.memory.migration == MigrationMode::Async;
    let failure: Rc<RefCell<Option<String>>> = Rc::default();
    let queued: Rc<RefCell<u64>> = Rc::default();
    let rng = Rc::new(RefCell::new(Rng::new(seed ^ 0xfeed)));
    let cap = sc.sizes.positions();
    let layers = sc.sizes.layers as u64;
    let mover = {
        let (failure, queued, rng) = (failure.clone(), queued.clone(), rng.clone());
        move |sim: &mut Sim, layer: Option<usize>| -> anyhow::Result<()> {
            let mut r = rng.borrow_mut();
            for _ in 0..r.below(3) {
                let set = random_set(&mut r, cap);
                let which = match layer {
                    Some(l) => Layers::One(l),
                    None if r.chance(0.5) => Layers::All,
                    None => Layers::One(r.below(layers) as usize),
                };
                let capb = r.chance(0.5).then(|| r.below(800));
                let up = r.chance(0.5);
                let b = if up {
                    sim.move_to_hbm(which, &set, capb)?
                } else {
                    sim.move_to_ext(which, &set, capb)?
                };
                if asynchronous && (up || !inclusive) {
                    *queued.borrow_mut() += b;
                }
            }
            if let Err(e) = check_memory(sim, inclusive) {
                failure.borrow_mut().get_or_insert(e);
            }
            Ok(())
        }
    };
    let (m1, m2) = (mover.clone(), mover);
    let (f3, r3) = (failure.clone(), rng.clone());
    let mut p = TestPolicy {
        place: Box::new(move |sim, _| {
            if let Err(e) = check_memory(sim, inclusive) {
                f3.borrow_mut().get_or_insert(e);
            }
            Ok(if r3.borrow_mut().chance(0.6) {
                Tier::Hbm
            } else {
                Tier::Ext
            })
        }),
        on_step: Some(Box::new(move |sim| m1(sim, None))),
        on_layer: Some(Box::new(move |sim, l| m2(sim, Some(l)))),
    };
    let mut recs = Vec::new();
    let src = trace(sc, seed, &TokenSet::new(cap), true);
    let totals = engine::run_with_trace(sc, Box::new(src), &mut p, &mut recs).unwrap();
    let queued_bytes = *queued.borrow();
    let failure = failure.borrow().clone();
    Outcome {
        recs,
        totals,
        queued_bytes,
        failure,
    }
}

/// `a >= b` up to a relative tolerance of 1e-9.
fn at_least(a: f64, b: f64) -> bool {
    a >= b - 1e-9 * b.abs().max(a.abs())
}

/// SPEC 13's `T_l(h)`, written out again from the contract (not through the crate's bounds):
/// the attention row of `layer` reading `kv` KV bytes, `h` of them from HBM, nothing written.
fn attn_time(sc: &Scenario, layer: usize, kv: f64, h: f64) -> f64 {
    let s = &sc.sizes;
    let f = &sc.file;
    let a = s.attn_weight_hbm[layer] as f64;
    let ew = (s.attn_weight_bytes - s.attn_weight_hbm[layer]) as f64;
    let (link_read, exti) = match f.ext.access {
        Access::Fetch => (ew + kv - h, ew + kv - h),
        Access::NearData => (ew, ew + kv - h),
    };
    // Nothing is written: shared `read / BW_read + 0 / BW_write` and full
    // `max(read / BW_read, 0)` are both the read time.
    let link = link_read / s.link_read_bw;
    let (hbm_t, exti_t) = ((a + h) / s.hbm_bw, exti / s.exti_bw);
    let memory = match f.memory.overlap {
        Overlap::Max => hbm_t.max(link).max(exti_t),
        Overlap::Serial => hbm_t + link.max(exti_t),
    };
    let c = &s.compute;
    let positions = match f.ext.access {
        Access::Fetch => kv / s.entry_bytes as f64,
        Access::NearData => 0.0,
    };
    let flops = 2.0 * s.batch as f64 * s.attn_weight_bytes as f64 / f.model.dtype_bytes as f64
        + c.kv_entry_flops.unwrap_or(0.0) * positions;
    let t = match c.flops_per_s {
        Some(fl) => memory.max(flops / fl),
        None => memory,
    };
    t + c.overhead_s
}

#[test]
fn most_random_seeds_are_valid_scenarios() {
    // Guard against a generator that makes proptest check nothing.
    let valid = (0..300u64).filter(|&s| scenario(s, None).is_some()).count();
    assert!(
        valid >= 100,
        "only {valid} of 300 seeds are valid scenarios"
    );
    let asynchronous = (0..300u64)
        .filter_map(|s| scenario(s, None))
        .filter(|sc| sc.file.memory.migration == MigrationMode::Async)
        .count();
    assert!(asynchronous >= 30, "only {asynchronous} async scenarios");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn hbm_use_with_reservations_stays_within_budget_and_entries_stay_in_one_tier(seed in any::<u64>()) {
        let Some(sc) = scenario(seed, None) else { return Ok(()) };
        let o = run_random(&sc, seed);
        prop_assert!(o.failure.is_none(), "{:?}", o.failure);
        prop_assert!(o.totals.counters.peak_hbm_kv_bytes <= sc.sizes.kv_budget_bytes);
        prop_assert!(o.recs.iter().all(|r| r.hbm_kv_bytes <= sc.sizes.kv_budget_bytes));
    }

    #[test]
    fn queued_bytes_are_copied_or_still_queued(seed in any::<u64>()) {
        let Some(sc) = scenario(seed, Some(MigrationMode::Async)) else { return Ok(()) };
        let o = run_random(&sc, seed);
        let t = &o.totals;
        let k = sc.sizes.entry_bytes;
        // Bytes: every queued byte was copied in some row or is left at the end.
        prop_assert_eq!(o.queued_bytes, t.charges.copy + t.queued_at_end_bytes);
        // Entries: moved = completed + still queued. Only the head job can be partly copied, so
        // the entries not completed are the bytes left rounded up to whole entries.
        let still_queued = t.queued_at_end_bytes.div_ceil(k) * k;
        prop_assert_eq!(o.queued_bytes, t.charges.to_hbm - t.counters.passive_bytes + t.charges.to_ext + still_queued);
        // No step phases in async mode.
        prop_assert!(o.recs.iter().all(|r| r.layer.is_some()));
    }

    #[test]
    fn decode_time_is_at_least_the_placement_bound_which_is_at_least_the_ideal(seed in any::<u64>()) {
        let Some(sc) = scenario(seed, None) else { return Ok(()) };
        let o = run_random(&sc, seed);
        for r in &o.recs {
            prop_assert!(at_least(r.time_s, r.placement_bound_s), "row {r:?}");
            prop_assert!(at_least(r.placement_bound_s, r.bound_s), "row {r:?}");
        }
        let t = &o.totals;
        prop_assert!(at_least(t.decode_time_s, t.placement_bound_s), "{} < {}", t.decode_time_s, t.placement_bound_s);
        prop_assert!(at_least(t.placement_bound_s, t.bound_s), "{} < {}", t.placement_bound_s, t.bound_s);
    }

    #[test]
    fn the_placement_bound_is_the_least_time_over_every_split(seed in any::<u64>()) {
        let Some(sc) = scenario(seed, None) else { return Ok(()) };
        let o = run_random(&sc, seed);
        let c = sc.sizes.kv_budget_bytes as f64;
        for r in o.recs.iter().filter(|r| r.sublayer.name() == "attn" && r.charges.read() > 0) {
            let l = r.layer.unwrap();
            let kv = r.charges.kv_read as f64;
            let h_max = kv.min(c);
            // Brute force over 2001 splits; T is convex piecewise linear, so between grid points
            // it can dip below them by at most its steepest slope times the grid step.
            let steps = 2000;
            let grid: Vec<f64> = (0..=steps).map(|i| attn_time(&sc, l, kv, h_max * i as f64 / steps as f64)).collect();
            let best = grid.iter().copied().fold(f64::INFINITY, f64::min);
            let slope = grid.windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0, f64::max);
            prop_assert!(r.placement_bound_s <= best * (1.0 + 1e-9), "row {r:?}: bound above the grid's best {best}");
            prop_assert!(r.placement_bound_s >= best - slope - 1e-9 * best, "row {r:?}: bound {} below the best split {best}", r.placement_bound_s);
        }
    }

    #[test]
    fn with_instant_copies_async_moves_the_same_bytes_as_sync(seed in any::<u64>()) {
        let totals = |mode: MigrationMode| -> Option<(Summary, RunTotals)> {
            let sc = scenario(seed, Some(mode))?;
            let mut f = sc.file.clone();
            f.memory.copy_read_bandwidth = Some(Bandwidth(1e30));
            f.memory.copy_write_bandwidth = Some(Bandwidth(1e30));
            f.memory.passive_migration = false;
            let sc = Scenario::from_file(f, None).ok()?;
            // Positions 0 and 1 are cold: never read; the script moves only them, in on_step.
            // No whole-layer skips: every step has rows, so each step's copies finish in it.
            let cap = sc.sizes.positions();
            let cold = TokenSet::range(cap, 0, 2.min(cap));
            let rng = Rc::new(RefCell::new(Rng::new(seed ^ 0xc01d)));
            let layers = sc.sizes.layers as u64;
            let cold2 = cold.clone();
            let mut p = TestPolicy::fixed(Tier::Ext);
            p.on_step = Some(Box::new(move |sim| {
                let mut r = rng.borrow_mut();
                let which = if r.chance(0.5) { Layers::All } else { Layers::One(r.below(layers) as usize) };
                if r.chance(0.5) {
                    sim.move_to_hbm(which, &cold2, None)?;
                } else {
                    sim.move_to_ext(which, &cold2, None)?;
                }
                Ok(())
            }));
            let mut recs = Vec::new();
            let t = engine::run_with_trace(&sc, Box::new(trace(&sc, seed, &cold, false)), &mut p, &mut recs).unwrap();
            Some((Summary::new(&sc, "p".into(), &t), t))
        };
        let (Some((sa, ta)), Some((ss, ts))) = (totals(MigrationMode::Async), totals(MigrationMode::Sync)) else { return Ok(()) };
        prop_assert_eq!(ta.queued_at_end_bytes, 0);
        prop_assert_eq!((sa.moved_to_hbm_bytes, sa.moved_to_ext_bytes), (ss.moved_to_hbm_bytes, ss.moved_to_ext_bytes));
        prop_assert_eq!((sa.hbm_read_bytes, sa.ext_read_bytes, sa.fallbacks, sa.refused_bytes), (ss.hbm_read_bytes, ss.ext_read_bytes, ss.fallbacks, ss.refused_bytes));
        // The same bytes cross each resource, in the rows instead of step phases.
        let (ca, cs) = (&ta.charges, &ts.charges);
        prop_assert_eq!((ca.hbm, ca.link_read, ca.link_write, ca.exti), (cs.hbm, cs.link_read, cs.link_write, cs.exti));
        prop_assert_eq!(ta.end_hbm_kv_bytes, ts.end_hbm_kv_bytes);
    }
}
