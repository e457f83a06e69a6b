//! KV blocks (SPEC 14), by hand on scenarios/tiny.toml (L = 2, P = 4, D = 3, Wa = 200 B,
//! Wm = 400 B, k = 100 B, HBM 100 B/s, LINK 20 B/s, EXTI 40 B/s), and as properties over random
//! scenarios and move scripts.

mod common;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use common::*;
use kvtier::engine::{self, Layers, Record, Sim};
use kvtier::memory::Tier;
use kvtier::results::CsvSink;
use kvtier::rng::Rng;
use kvtier::scenario::{ByteSize, Hierarchy, MigrationMode, PrefillLayout, Scenario, ScenarioFile};
use kvtier::tokenset::TokenSet;
use kvtier::trace::{StepSkips, TraceDims};
use proptest::prelude::*;

const POSITIONS: usize = 7;

fn blocks(mut f: ScenarioFile, bt: u64) -> ScenarioFile {
    f.memory.block_tokens = bt;
    f
}

/// A policy placing on `tier` that counts its placement calls.
fn counting(tier: Tier) -> (TestPolicy, Rc<RefCell<u32>>) {
    let calls = Rc::new(RefCell::new(0));
    let c = calls.clone();
    let p = TestPolicy {
        place: Box::new(move |_, _| {
            *c.borrow_mut() += 1;
            Ok(tier)
        }),
        on_step: None,
        on_layer: None,
    };
    (p, calls)
}

#[test]
fn a_blocks_first_entry_reserves_the_whole_block() {
    // Blocks of 4: the prefill (positions 0..4) is block 0 at each layer, on HBM: 2 x 400 B.
    // Budget 2900 - 1200 = 1700 B.
    let mut f = blocks(tiny_file(), 4);
    f.hbm.capacity = ByteSize(2900);
    let sc = build(f);
    assert_eq!(sc.sizes.initial_hbm_kv_bytes, 800);
    let (mut p, calls) = counting(Tier::Hbm);
    let (recs, t) = run(&sc, &mut p);
    // (4,0) opens block 1 of layer 0: the whole block's 400 B are taken for one entry.
    assert_eq!(row(&recs, 4, Some(0), "attn").hbm_kv_bytes, 1200);
    assert_eq!(row(&recs, 4, Some(1), "attn").hbm_kv_bytes, 1600);
    // (5, l) and (6, l) follow their block: no budget, no placement call.
    assert_eq!(row(&recs, 6, Some(1), "attn").hbm_kv_bytes, 1600);
    assert_eq!(
        *calls.borrow(),
        2,
        "placement asked once per block and layer"
    );
    // Each entry itself is still one write of 100 B to HBM: (5,0) reads 200 + 500, writes 100.
    assert_eq!(row(&recs, 5, Some(0), "attn").charges.hbm, 800);
    assert_eq!(
        (t.counters.fallbacks, t.counters.peak_hbm_kv_bytes),
        (0, 1600)
    );
}

#[test]
fn a_block_without_room_falls_back_whole() {
    // Budget 1100 B, 800 B taken: a new block needs 400 B. (4, l) fall back; (5, l) and
    // (6, l) follow their block to EXT without asking and without counting again.
    let sc = build(blocks(tiny_file(), 4));
    let (mut p, calls) = counting(Tier::Hbm);
    let (recs, t) = run(&sc, &mut p);
    assert_eq!(t.counters.fallbacks, 2);
    assert_eq!(*calls.borrow(), 2);
    // (5,0): HBM reads 200 + 400 (prefill), EXT read of (4,0) 100 + write 100 over the link.
    let r = row(&recs, 5, Some(0), "attn");
    assert_eq!(
        (r.charges.hbm, r.charges.link_read, r.charges.link_write),
        (600, 100, 100)
    );
    assert_eq!(t.end_hbm_kv_bytes, 800);
}

#[test]
fn a_move_of_one_position_takes_its_whole_block() {
    // Blocks of 2: prefill {0,1} {2,3} on HBM. At step 4, move position 2 of layer 0 to EXT.
    let sc = build(blocks(tiny_file(), 2));
    let mut p = TestPolicy::fixed(Tier::Ext);
    p.on_step = Some(Box::new(|sim: &mut Sim| {
        if sim.step == 4 {
            let moved = sim.move_to_ext(Layers::One(0), &TokenSet::range(POSITIONS, 2, 3), None)?;
            assert_eq!(moved, 200, "block {{2, 3}}: two entries");
            assert_eq!(sim.memory.hbm(0).iter().collect::<Vec<_>>(), vec![0, 1]);
            assert_eq!(sim.memory.hbm_used_bytes(), 800 - 200);
            // A byte cap smaller than a block's entries admits nothing.
            let none =
                sim.move_to_ext(Layers::One(1), &TokenSet::range(POSITIONS, 0, 4), Some(150))?;
            assert_eq!(none, 0);
            // 250 B admits one block (oldest first), not two.
            let one =
                sim.move_to_ext(Layers::One(1), &TokenSet::range(POSITIONS, 0, 4), Some(250))?;
            assert_eq!(one, 200);
            assert_eq!(sim.memory.hbm(1).iter().collect::<Vec<_>>(), vec![2, 3]);
        }
        Ok(())
    }));
    let (recs, _) = run(&sc, &mut p);
    // Step phase: 400 B moved: HBM 400 (4 s), LINK 400 (20 s), EXTI 400 (10 s).
    let r = row(&recs, 4, None, "step");
    assert_eq!((r.charges.to_ext, r.time_s), (400, 20.0));
}

#[test]
fn prefill_layouts_keep_whole_blocks() {
    // Blocks of 4, 10 prefill positions, half on HBM: floor(10 x 0.5) = 5 positions.
    let at = |layout: PrefillLayout| {
        let mut f = blocks(tiny_file(), 4);
        f.workload.prefill = 10;
        f.initial.prefill_kv_on_hbm = 0.5;
        f.initial.prefill_kv_layout = layout;
        f.hbm.capacity = ByteSize(10_000);
        let sc = build(f);
        let seen = Rc::new(RefCell::new(Vec::new()));
        let s2 = seen.clone();
        let mut p = TestPolicy::fixed(Tier::Ext);
        p.on_step = Some(Box::new(move |sim: &mut Sim| {
            if sim.step == 10 {
                *s2.borrow_mut() = sim.memory.hbm(0).iter().collect();
            }
            Ok(())
        }));
        run(&sc, &mut p);
        let hbm = seen.borrow().clone();
        (sc.sizes.initial_hbm_kv_bytes, hbm)
    };
    // Newest 5 = positions 5..10: block [4, 8) is not wholly inside, block [8, 10) is. One
    // block per layer, 4 x 100 B of budget each although it holds 2 entries.
    assert_eq!(at(PrefillLayout::Newest), (2 * 400, vec![8, 9]));
    // Oldest 5 = positions 0..5: block [0, 4) only.
    assert_eq!(at(PrefillLayout::Oldest), (2 * 400, vec![0, 1, 2, 3]));
}

#[test]
fn a_passive_install_takes_a_partly_skipped_block_whole() {
    // Blocks of 2, prefill on EXT, passive migration, placement ext. At (4, 0) the trace skips
    // position 1: entries 0, 2, 3 are read from EXT. Their blocks {2,3} and {0,1} are installed
    // newest first (block {4,5}, of the new entry, never): 2 + 1 entries just read cost an HBM
    // write (300 B); position 1, not read, is promoted (EXTI, LINK read, HBM: 100 B).
    let mut f = blocks(tiny_file(), 2);
    f.initial.prefill_kv_on_hbm = 0.0;
    f.memory.passive_migration = true;
    let sc = build(f);
    let (recs, t) = run_text(
        &sc,
        &mut TestPolicy::fixed(Tier::Ext),
        "kvtrace 1 prefill=4 decode=3 layers=2\n4 0 1-2\n",
    );
    let r = row(&recs, 4, Some(0), "attn");
    // HBM: Wa 200 + writes 300 + promotion 100 = 600 (6 s). LINK: reads 300 + promotion 100 +
    // new entry 100 = 500 (25 s). EXTI: 300 + 100 + 100 = 500 (12.5 s).
    assert_eq!(
        (r.charges.hbm, r.charges.link(), r.charges.exti),
        (600, 500, 500)
    );
    assert_eq!(r.time_s, 25.0);
    assert_eq!((r.charges.to_hbm, r.hbm_kv_bytes), (400, 400));
    assert!(t.counters.passive_bytes >= 400);
}

#[test]
fn an_entry_written_into_a_queued_block_joins_its_copy() {
    // Async, blocks of 4, prefill on EXT, placement ext, copy engine at 1 B/s. (4,0) opens
    // block 1 of layer 0 (positions 4..8) on EXT. At on_layer(5,0) its one entry is queued for
    // promotion (the whole block's 400 B reserved); entries 5 and 6, written into the queued
    // block, go to EXT (its source tier) and join the end of the job.
    let mut f = blocks(tiny_file(), 4);
    f.initial.prefill_kv_on_hbm = 0.0;
    f.memory.migration = MigrationMode::Async;
    f.memory.copy_read_bandwidth = Some(kvtier::scenario::Bandwidth(1.0));
    let sc = build(f);
    let mut p = TestPolicy::fixed(Tier::Ext);
    p.on_layer = Some(Box::new(|sim: &mut Sim, l| {
        if sim.step == 5 && l == 0 {
            let q = sim.move_to_hbm(Layers::One(0), &TokenSet::range(POSITIONS, 4, 5), None)?;
            assert_eq!(q, 100, "block 1 holds one entry");
            assert_eq!(
                sim.memory.hbm_used_bytes(),
                400,
                "the whole block is reserved"
            );
        }
        if sim.step == 6 && l == 0 {
            // Entry 5 joined the queued block: 200 B queued, minus what was copied.
            assert!(sim.memory.queued(0).contains(5));
        }
        Ok(())
    }));
    let (recs, t) = run(&sc, &mut p);
    // (5,0) and (6,0) go to EXT (the block's source tier) and are not counted as fallbacks.
    assert_eq!(t.counters.fallbacks, 0);
    assert_eq!(row(&recs, 5, Some(0), "attn").charges.link_write, 100);
    // At 1 B/s the block (3 entries, 300 B) cannot finish in 2 steps: it is still queued.
    assert!(t.queued_at_end_bytes > 0);
    assert_eq!(t.charges.to_hbm, 0);
    assert_eq!(t.charges.copy + t.queued_at_end_bytes, 300);
}

// ---- properties

/// A random small scenario with blocks of `bt` positions (or `None` when invalid).
fn scenario(seed: u64, bt: u64) -> Option<Scenario> {
    let mut r = Rng::new(seed);
    let mut f = tiny_file();
    f.model.layers = 1 + r.below(3);
    f.model.params = 300.0 * f.model.layers as f64;
    f.workload.prefill = r.below(30);
    f.workload.decode = 1 + r.below(12);
    f.memory.block_tokens = bt;
    if r.chance(0.3) {
        f.memory.hierarchy = Hierarchy::Inclusive;
    }
    f.memory.passive_migration = r.chance(0.4);
    if r.chance(0.5) {
        f.memory.migration = MigrationMode::Async;
        f.memory.copy_read_bandwidth = Some(kvtier::scenario::Bandwidth(1.0 + r.below(40) as f64));
        f.memory.copy_write_bandwidth = Some(kvtier::scenario::Bandwidth(1.0 + r.below(40) as f64));
    }
    f.initial.prefill_kv_on_hbm = r.below(5) as f64 / 4.0;
    f.initial.prefill_kv_layout = [
        PrefillLayout::Newest,
        PrefillLayout::Oldest,
        PrefillLayout::FirstLayers,
    ][r.below(3) as usize];
    f.hbm.kv_budget = Some(ByteSize(r.below(60) * 100 + r.below(100)));
    Scenario::from_file(f, None).ok()
}

fn trace(sc: &Scenario, seed: u64) -> VecSource {
    let s = &sc.sizes;
    let mut rng = Rng::new(seed ^ 0xb10c);
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
            ls.layer = rng.chance(0.15);
            ls.mlp = rng.chance(0.2);
            for t in 0..n {
                if rng.chance(0.3) {
                    ls.tokens.insert(t);
                }
            }
            ls.token_count = ls.tokens.count();
        }
        steps.push_back(st);
    }
    VecSource { dims, steps }
}

/// Every block at every layer in one tier (its present entries all on HBM or none, in the
/// exclusive hierarchy), and HBM KV in use = HBM blocks x block bytes + reserved blocks.
fn check_blocks(sim: &Sim) -> Result<(), String> {
    let m = &sim.memory;
    let bt = m.block_tokens();
    let block_bytes = m.entry_bytes() * bt as u64;
    let mut blocks_in_use = 0;
    for l in 0..m.layers() {
        let (present, hbm, queued) = (m.present(l), m.hbm(l), m.queued(l));
        let cap = present.capacity();
        for b in 0..cap.div_ceil(bt) {
            let (lo, hi) = (b * bt, ((b + 1) * bt).min(cap));
            let p = present.count_in(lo, hi);
            let h = hbm.count_in(lo, hi);
            let q = queued.count_in(lo, hi);
            if h != 0 && h != p {
                return Err(format!("layer {l} block {b}: {h} of {p} entries on HBM"));
            }
            if q != 0 && q != p {
                return Err(format!("layer {l} block {b}: {q} of {p} entries queued"));
            }
            // On HBM, or reserved by a queued promotion (queued and not on HBM).
            if h > 0 || (q > 0 && h == 0) {
                blocks_in_use += 1;
            }
        }
    }
    if m.hbm_used_bytes() != blocks_in_use * block_bytes {
        return Err(format!(
            "HBM KV in use {} != {blocks_in_use} blocks x {block_bytes} B",
            m.hbm_used_bytes()
        ));
    }
    if m.hbm_used_bytes() > m.budget_bytes() {
        return Err("over budget".into());
    }
    Ok(())
}

/// Runs random moves (on_step and per layer); `force_blocks` runs the block code paths even
/// with one position per block. Returns the CSV and any invariant failure.
fn run_random(sc: &Scenario, seed: u64, force_blocks: bool) -> (Vec<u8>, Option<String>) {
    let failure: Rc<RefCell<Option<String>>> = Rc::default();
    let rng = Rc::new(RefCell::new(Rng::new(seed ^ 0x5eed)));
    let cap = sc.sizes.positions();
    let layers = sc.sizes.layers as u64;
    let (f1, f2, r1, r2, r3) = (
        failure.clone(),
        failure.clone(),
        rng.clone(),
        rng.clone(),
        rng.clone(),
    );
    let mut first = true;
    let mut p = TestPolicy {
        place: Box::new(move |_, _| {
            Ok(if r3.borrow_mut().chance(0.6) {
                Tier::Hbm
            } else {
                Tier::Ext
            })
        }),
        on_step: Some(Box::new(move |sim: &mut Sim| {
            if std::mem::take(&mut first) && force_blocks {
                sim.memory.use_block_paths();
            }
            let mut r = r1.borrow_mut();
            let a = r.below(cap as u64 + 1) as usize;
            let b = a + r.below((cap - a) as u64 + 1) as usize;
            let set = TokenSet::range(cap, a, b);
            let which = if r.chance(0.5) {
                Layers::All
            } else {
                Layers::One(r.below(layers) as usize)
            };
            let capb = r.chance(0.5).then(|| r.below(900));
            if r.chance(0.5) {
                sim.move_to_hbm(which, &set, capb)?;
            } else {
                sim.move_to_ext(which, &set, capb)?;
            }
            if let Err(e) = check_blocks(sim) {
                f1.borrow_mut().get_or_insert(e);
            }
            Ok(())
        })),
        on_layer: Some(Box::new(move |sim: &mut Sim, l| {
            let mut r = r2.borrow_mut();
            if r.chance(0.3) {
                let a = r.below(cap as u64) as usize;
                sim.move_to_hbm(Layers::One(l), &TokenSet::range(cap, a, a + 1), None)?;
            }
            if let Err(e) = check_blocks(sim) {
                f2.borrow_mut().get_or_insert(e);
            }
            Ok(())
        })),
    };
    let mut recs: Vec<Record> = Vec::new();
    engine::run_with_trace(sc, Box::new(trace(sc, seed)), &mut p, &mut recs).unwrap();
    let mut out = Vec::new();
    {
        let mut sink = CsvSink::new(&mut out).unwrap();
        for r in &recs {
            kvtier::engine::RecordSink::record(&mut sink, r).unwrap();
        }
    }
    let f = failure.borrow().clone();
    (out, f)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn with_one_position_per_block_the_block_rules_give_the_per_entry_results(seed in any::<u64>()) {
        let Some(sc) = scenario(seed, 1) else { return Ok(()) };
        let (per_entry, _) = run_random(&sc, seed, false);
        let (blockwise, _) = run_random(&sc, seed, true);
        prop_assert!(per_entry == blockwise, "the two code paths disagree");
    }

    #[test]
    fn every_block_is_in_one_tier_and_budget_use_is_whole_blocks(seed in any::<u64>(), bt in 2u64..6) {
        let Some(sc) = scenario(seed, bt) else { return Ok(()) };
        let (_, failure) = run_random(&sc, seed, false);
        prop_assert!(failure.is_none(), "{:?}", failure);
    }
}

#[test]
fn most_random_block_scenarios_are_valid() {
    let valid = (0..300u64).filter(|&s| scenario(s, 3).is_some()).count();
    assert!(valid >= 80, "only {valid} of 300");
}

#[test]
fn a_byte_cap_stops_at_the_first_block_that_does_not_fit() {
    // Blocks of 4, prefill 6 on HBM: block {0..4} (4 entries, 400 B) and {4, 5} (200 B).
    let mut f = blocks(tiny_file(), 4);
    f.workload.prefill = 6;
    f.hbm.capacity = ByteSize(10_000);
    let sc = build(f);
    let mut p = TestPolicy::fixed(Tier::Ext);
    p.on_step = Some(Box::new(|sim: &mut Sim| {
        if sim.step == 6 {
            let all = TokenSet::range(sim.sizes.positions(), 0, 6);
            // Oldest first: the 400 B block does not fit 300 B, so nothing moves, although
            // the later 200 B block would.
            assert_eq!(sim.move_to_ext(Layers::One(0), &all, Some(300))?, 0);
            // Newest first (a promotion back would start at {4, 5}): demote all, then promote
            // with 300 B: {4, 5} fits (200 B), then {0..4} does not.
            assert_eq!(sim.move_to_ext(Layers::One(0), &all, None)?, 600);
            assert_eq!(sim.move_to_hbm(Layers::One(0), &all, Some(300))?, 200);
            assert_eq!(sim.memory.hbm(0).iter().collect::<Vec<_>>(), vec![4, 5]);
        }
        Ok(())
    }));
    run(&sc, &mut p);
}
