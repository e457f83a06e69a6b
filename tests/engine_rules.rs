//! One hand-computed case per rule of SPEC 6, on scenarios/tiny.toml:
//! L = 2, P = 4, D = 3, Wa = 200 B, Wm = 400 B, k = 100 B, HBM 100 B/s, LINK 20 B/s, EXTI 40 B/s,
//! KV budget 1100 B (capacity 2300 B - 1200 B of weights), 800 B of prefill KV on HBM.
//! Bytes / bandwidth gives seconds directly, so every expected value below is exact.

mod common;

use common::*;
use kvtier::engine::Layers;
use kvtier::memory::Tier;
use kvtier::scenario::{Access, ByteSize, Duplex, Hierarchy, Overlap};
use kvtier::tokenset::TokenSet;

#[test]
fn all_hbm_decode_time_is_bytes_over_bandwidth() {
    let mut f = tiny_file();
    f.hbm.capacity = ByteSize(10_000); // budget 8800 B: nothing falls back
    let sc = build(f);
    let (recs, t) = run(&sc, &mut TestPolicy::fixed(Tier::Hbm));
    // Per layer at step n: attention reads 200 + 100 n, writes 100; MLP reads 400.
    // n = 4: 2 x (700 + 400) = 2200; n = 5: 2 x 1200 = 2400; n = 6: 2 x 1300 = 2600.
    // 7200 B / 100 B/s = 72 s.
    assert_eq!(t.decode_time_s, 72.0);
    assert_eq!(t.charges.hbm, 7200);
    assert_eq!(t.charges.link(), 0);
    assert_eq!(recs.len(), 3 * 2 * 2);
    assert!(recs.iter().all(|r| r.charges.alpha() == Some(1.0)));
}

#[test]
fn fallback_when_hbm_is_full() {
    let sc = build(tiny_file());
    let (recs, t) = run(&sc, &mut TestPolicy::fixed(Tier::Hbm));
    // Budget 1100 - 800 = room for 3 entries: (4,0), (4,1), (5,0) go to HBM; (5,1), (6,0),
    // (6,1) fall back to EXT.
    assert_eq!(t.counters.fallbacks, 3);
    assert_eq!(t.counters.peak_hbm_kv_bytes, 1100);
    // (5,1): reads 200 + 500 from HBM (7 s); writes 100 over LINK (5 s) and EXTI (2.5 s).
    let r = row(&recs, 5, Some(1), "attn");
    assert_eq!(
        (r.charges.hbm, r.charges.link(), r.charges.exti),
        (700, 100, 100)
    );
    assert_eq!(r.time_s, 7.0);
    // (6,1): HBM 200 + 5 x 100 = 700 (7 s); EXT read of position 5 (100) + write (100) = 200 B
    // of LINK (10 s) and EXTI (5 s): 10 s. alpha = 700 / 800.
    let r = row(&recs, 6, Some(1), "attn");
    assert_eq!(
        (r.charges.hbm, r.charges.link(), r.charges.exti),
        (700, 200, 200)
    );
    assert_eq!(r.time_s, 10.0);
    assert_eq!(r.charges.alpha(), Some(700.0 / 800.0));
    // Step totals: 22 + 23 + 26 = 71 s (each step: attn + mlp of both layers).
    assert_eq!(t.decode_time_s, 71.0);
}

fn all_on_ext() -> kvtier::scenario::ScenarioFile {
    let mut f = tiny_file();
    f.initial.prefill_kv_on_hbm = 0.0;
    f
}

#[test]
fn ext_reads_cross_link_in_fetch_mode_only() {
    // Step 4, layer 0, placement ext, prefill on EXT: Wa 200 from HBM (2 s); 4 entries = 400 B
    // read from EXT; new entry written to EXT (100 B over LINK and EXTI).
    let sc = build(all_on_ext());
    let (recs, _) = run(&sc, &mut TestPolicy::fixed(Tier::Ext));
    let r = row(&recs, 4, Some(0), "attn");
    // fetch: LINK 400 + 100 = 500 (25 s), EXTI 500 (12.5 s).
    assert_eq!(
        (r.charges.hbm, r.charges.link(), r.charges.exti),
        (200, 500, 500)
    );
    assert_eq!(r.time_s, 25.0);
    assert_eq!(r.charges.alpha(), Some(200.0 / 600.0));

    let mut f = all_on_ext();
    f.ext.access = Access::NearData;
    let sc = build(f);
    let (recs, _) = run(&sc, &mut TestPolicy::fixed(Tier::Ext));
    let r = row(&recs, 4, Some(0), "attn");
    // near_data: KV reads charge EXTI only: LINK 100 (write, 5 s), EXTI 500 (12.5 s).
    assert_eq!(
        (r.charges.hbm, r.charges.link(), r.charges.exti),
        (200, 100, 500)
    );
    assert_eq!(r.time_s, 12.5);
    assert_eq!(r.charges.alpha(), Some(200.0 / 600.0));
}

#[test]
fn weights_on_ext_are_fetched_even_in_near_data_mode() {
    let mut f = tiny_file();
    f.initial.weights_on_hbm = 0.5;
    f.ext.access = Access::NearData;
    f.hbm.capacity = ByteSize(10_000);
    let sc = build(f);
    let (recs, _) = run(&sc, &mut TestPolicy::fixed(Tier::Hbm));
    // MLP: floor(400 x 0.5) = 200 B on HBM (2 s), 200 B fetched: LINK 10 s, EXTI 5 s.
    let r = row(&recs, 4, Some(0), "mlp");
    assert_eq!(
        (
            r.charges.hbm_read,
            r.charges.ext_read,
            r.charges.link(),
            r.charges.exti
        ),
        (200, 200, 200, 200)
    );
    assert_eq!(r.time_s, 10.0);
}

#[test]
fn full_duplex_separates_read_and_write_directions() {
    // Same row as above: LINK read 400, write 100.
    let mut f = all_on_ext();
    f.ext.link_duplex = Duplex::Full;
    let sc = build(f);
    let (recs, _) = run(&sc, &mut TestPolicy::fixed(Tier::Ext));
    let r = row(&recs, 4, Some(0), "attn");
    // Shared would be 500 / 20 = 25 s; full: max(400, 100) / 20 = 20 s > EXTI 12.5 s.
    assert_eq!(
        r.charges.link(),
        500,
        "link_bytes is reads plus writes whatever the duplex"
    );
    assert_eq!(r.time_s, 20.0);
}

#[test]
fn serial_overlap_adds_hbm_time_to_the_slower_ext_resource() {
    let mut f = all_on_ext();
    f.memory.overlap = Overlap::Serial;
    let sc = build(f);
    let (recs, _) = run(&sc, &mut TestPolicy::fixed(Tier::Ext));
    // HBM 2 s + max(LINK 25 s, EXTI 12.5 s) = 27 s.
    assert_eq!(row(&recs, 4, Some(0), "attn").time_s, 27.0);
    // MLP all on HBM: 4 s + 0.
    assert_eq!(row(&recs, 4, Some(0), "mlp").time_s, 4.0);
}

#[test]
fn inclusive_writes_through_and_demotes_for_free() {
    let mut f = tiny_file();
    f.memory.hierarchy = Hierarchy::Inclusive;
    let sc = build(f);
    let mut p = TestPolicy::fixed(Tier::Hbm);
    // At step 5, drop the HBM copies of positions 0-1 at layer 0.
    p.on_step = Some(Box::new(|sim| {
        if sim.step == 5 {
            let moved = sim.move_to_ext(Layers::One(0), &TokenSet::range(8, 0, 2), None)?;
            assert_eq!(moved, 200);
        }
        Ok(())
    }));
    let (recs, t) = run(&sc, &mut p);
    // (4,0) placed on HBM: HBM write 100 plus EXT write 100 (LINK and EXTI).
    let r = row(&recs, 4, Some(0), "attn");
    assert_eq!(
        (r.charges.hbm, r.charges.link(), r.charges.exti),
        (200 + 400 + 100, 100, 100)
    );
    // The demotion is free: the step phase moves 200 B but charges no resource and takes 0 s...
    let r = row(&recs, 5, None, "step");
    assert_eq!(
        (
            r.charges.hbm,
            r.charges.link(),
            r.charges.exti,
            r.charges.to_ext
        ),
        (0, 0, 0, 200)
    );
    assert_eq!(r.time_s, 0.0);
    // ...and (5,0) reads positions 0-1 from EXT: HBM 200 + 3 x 100 (0-1 gone, 2, 3, 4 there).
    let r = row(&recs, 5, Some(0), "attn");
    assert_eq!((r.charges.hbm_read, r.charges.ext_read), (500, 200));
    assert_eq!(t.charges.to_ext, 200);
}

#[test]
fn passive_install_is_newest_first_and_stops_at_the_budget() {
    let mut f = all_on_ext();
    f.memory.passive_migration = true;
    f.hbm.capacity = ByteSize(1200 + 250); // KV budget 250 B: room for 2 entries
    let sc = build(f);
    let mut p = TestPolicy::fixed(Tier::Ext);
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let s2 = seen.clone();
    p.on_step = Some(Box::new(move |sim| {
        s2.borrow_mut().push((
            sim.step,
            sim.memory.hbm(0).iter().collect::<Vec<_>>(),
            sim.memory.hbm(1).count(),
        ));
        Ok(())
    }));
    let (recs, t) = run(&sc, &mut p);
    // Step 4 layer 0 read positions 0-3 from EXT; the two newest (3, 2) were installed.
    assert_eq!(seen.borrow()[1], (5, vec![2, 3], 0));
    let r = row(&recs, 4, Some(0), "attn");
    // HBM: Wa 200 + install 200 (write only); LINK: read 400 + write of the new entry 100.
    assert_eq!(
        (r.charges.hbm, r.charges.link(), r.charges.to_hbm),
        (400, 500, 200)
    );
    assert_eq!(t.counters.passive_bytes, 200);
    assert_eq!(t.counters.peak_hbm_kv_bytes, 200);
}

#[test]
fn passive_migration_is_off_in_near_data_mode() {
    let mut f = all_on_ext();
    f.memory.passive_migration = true;
    f.ext.access = Access::NearData;
    let sc = build(f);
    let (_, t) = run(&sc, &mut TestPolicy::fixed(Tier::Ext));
    assert_eq!(t.counters.passive_bytes, 0);
    assert_eq!(t.charges.to_hbm, 0);
}

#[test]
fn skipped_layer_writes_no_entry_and_is_never_read() {
    let sc = build(tiny_file());
    let trace = "kvtrace 1 prefill=4 decode=3 layers=2\n4 0 layer\n";
    let (recs, t) = run_text(&sc, &mut TestPolicy::fixed(Tier::Hbm), trace);
    assert!(!has_row(&recs, 4, Some(0), "attn") && !has_row(&recs, 4, Some(0), "mlp"));
    // Step 5 layer 0 reads the 4 prefill entries only: 200 + 400 (position 4 never existed).
    assert_eq!(row(&recs, 5, Some(0), "attn").charges.hbm_read, 600);
    // Step 6 layer 0 reads 0-3 and 5.
    assert_eq!(row(&recs, 6, Some(0), "attn").charges.hbm_read, 700);
    // Budget room 3: (4,1), (5,0), (5,1) on HBM; (6,0), (6,1) fall back.
    assert_eq!(t.counters.fallbacks, 2);
}

#[test]
fn skipped_positions_are_not_read() {
    let sc = build(tiny_file());
    let trace = "kvtrace 1 prefill=4 decode=3 layers=2\n4 0 0-2\n4 1 1-2 3-4\n";
    let (recs, _) = run_text(&sc, &mut TestPolicy::fixed(Tier::Hbm), trace);
    // (4,0) reads positions 2, 3; (4,1) reads 0, 2.
    assert_eq!(row(&recs, 4, Some(0), "attn").charges.kv_read, 200);
    assert_eq!(row(&recs, 4, Some(1), "attn").charges.kv_read, 200);
}

#[test]
fn mlp_skip_drops_the_mlp_row_only() {
    let sc = build(tiny_file());
    let trace = "kvtrace 1 prefill=4 decode=3 layers=2\n4 1 mlp\n";
    let (recs, _) = run_text(&sc, &mut TestPolicy::fixed(Tier::Hbm), trace);
    assert!(has_row(&recs, 4, Some(1), "attn"));
    assert!(!has_row(&recs, 4, Some(1), "mlp"));
    assert_eq!(recs.len(), 11);
}

#[test]
fn step_phase_time_is_max_over_resources() {
    let mut f = all_on_ext();
    f.memory.overlap = Overlap::Serial; // the phase ignores it: always max
    let sc = build(f);
    let mut p = TestPolicy::fixed(Tier::Ext);
    p.on_step = Some(Box::new(|sim| {
        if sim.step == 4 {
            let moved = sim.move_to_hbm(Layers::One(0), &TokenSet::range(8, 0, 8), None)?;
            assert_eq!(moved, 400);
        }
        Ok(())
    }));
    let (recs, _) = run(&sc, &mut p);
    let r = row(&recs, 4, None, "step");
    // 4 entries EXT -> HBM: EXTI 400 (10 s), LINK 400 (20 s), HBM 400 (4 s) -> 20 s.
    assert_eq!(
        (
            r.charges.hbm,
            r.charges.link(),
            r.charges.exti,
            r.charges.to_hbm
        ),
        (400, 400, 400, 400)
    );
    assert_eq!(r.time_s, 20.0);
    assert_eq!(r.charges.alpha(), None);
    assert!(
        !has_row(&recs, 5, None, "step"),
        "an empty phase writes no row"
    );
}

#[test]
fn layer_hook_moves_are_charged_to_the_attention_row() {
    let sc = build(all_on_ext());
    let mut p = TestPolicy::fixed(Tier::Ext);
    p.on_layer = Some(Box::new(|sim, l| {
        if sim.step == 4 && l == 1 {
            sim.move_to_hbm(Layers::One(1), &TokenSet::range(8, 3, 4), None)?;
        }
        Ok(())
    }));
    let (recs, _) = run(&sc, &mut p);
    let r = row(&recs, 4, Some(1), "attn");
    // Move of position 3: EXTI 100, LINK 100, HBM 100; then reads: Wa 200 + position 3 from HBM,
    // positions 0-2 from EXT (300); write 100 to EXT.
    assert_eq!((r.charges.hbm_read, r.charges.ext_read), (300, 300));
    assert_eq!(
        (
            r.charges.hbm,
            r.charges.link(),
            r.charges.exti,
            r.charges.to_hbm
        ),
        (400, 500, 500, 100)
    );
    assert_eq!(r.time_s, 25.0);
}

#[test]
fn promotion_without_room_counts_refused_bytes() {
    let mut f = all_on_ext();
    f.hbm.capacity = ByteSize(1200 + 250); // room for 2 entries
    let sc = build(f);
    let mut p = TestPolicy::fixed(Tier::Ext);
    p.on_step = Some(Box::new(|sim| {
        if sim.step == 4 {
            let moved = sim.move_to_hbm(Layers::All, &TokenSet::range(8, 0, 4), None)?;
            assert_eq!(moved, 200);
            // Newest first: positions 3 and 2 of layer 0.
            assert_eq!(sim.memory.hbm(0).iter().collect::<Vec<_>>(), vec![2, 3]);
        }
        Ok(())
    }));
    let (_, t) = run(&sc, &mut p);
    // Wanted 8 entries, moved 2: 600 B refused.
    assert_eq!(t.counters.refused_bytes, 600);
}

#[test]
fn move_cap_limits_bytes_and_demotion_is_oldest_first() {
    let sc = build(tiny_file());
    let mut p = TestPolicy::fixed(Tier::Ext);
    p.on_step = Some(Box::new(|sim| {
        if sim.step == 4 {
            let moved = sim.move_to_ext(Layers::One(1), &TokenSet::range(8, 0, 4), Some(250))?;
            assert_eq!(moved, 200, "a 250 B cap moves 2 whole entries");
            assert_eq!(sim.memory.hbm(1).iter().collect::<Vec<_>>(), vec![2, 3]);
        }
        Ok(())
    }));
    let (recs, t) = run(&sc, &mut p);
    // Exclusive demotion charges HBM, LINK and EXTI: 200 B each; LINK 10 s.
    let r = row(&recs, 4, None, "step");
    assert_eq!(
        (
            r.charges.hbm,
            r.charges.link(),
            r.charges.exti,
            r.charges.to_ext
        ),
        (200, 200, 200, 200)
    );
    assert_eq!(r.time_s, 10.0);
    assert_eq!(t.counters.refused_bytes, 0);
}

#[test]
fn placement_cannot_move() {
    let sc = build(tiny_file());
    let mut p = TestPolicy::fixed(Tier::Hbm);
    p.place = Box::new(|sim, _| {
        sim.move_to_ext(Layers::All, &TokenSet::range(8, 0, 4), None)?;
        Ok(Tier::Hbm)
    });
    let mut recs = Vec::new();
    let e = kvtier::engine::run(&sc, &mut p, &mut recs)
        .unwrap_err()
        .to_string();
    assert!(e.contains("only in on_step and on_layer"), "{e}");
}

#[test]
fn batch_scales_kv_entry_bytes() {
    let mut f = tiny_file();
    f.model.kv_bytes = None;
    f.model.kv_heads = Some(2);
    f.model.head_dim = Some(5);
    f.model.kv_dtype_bytes = 1;
    f.workload.batch = 4;
    f.hbm.capacity = ByteSize(10_000);
    let sc = build(f);
    // k = 2 x 2 heads x 5 x 1 B x batch 4 = 80 B.
    assert_eq!(sc.sizes.entry_bytes, 80);
    let (recs, t) = run(&sc, &mut TestPolicy::fixed(Tier::Hbm));
    // (4,0): 200 + 4 x 80 read, 80 written.
    assert_eq!(row(&recs, 4, Some(0), "attn").charges.hbm, 200 + 320 + 80);
    // tokens/s counts every sequence: D x B / time.
    let s = kvtier::results::Summary::new(&sc, "hbm".into(), &t);
    assert_eq!(s.tokens_per_s, 12.0 / t.decode_time_s);
}

#[test]
fn ideal_bound_splits_reads_over_both_tiers() {
    let sc = build(tiny_file());
    let (recs, t) = run(&sc, &mut TestPolicy::fixed(Tier::Hbm));
    // Per step n, per layer: (200 + 100 n) / (100 + 20) + 400 / 120.
    // n = 4: 2 x (600 + 400) / 120; n = 5: 2 x 1100 / 120; n = 6: 2 x 1200 / 120 -> 55 s.
    assert!((t.bound_s - 55.0).abs() < 1e-12);
    assert_eq!(row(&recs, 4, Some(0), "attn").bound_s, 600.0 / 120.0);
    assert_eq!(
        t.bound_s,
        kvtier::engine::no_skip_bound(&sc.sizes, sc.file.ext.access)
    );
}

#[test]
fn near_data_bound_lets_kv_use_exti_alone() {
    let mut f = tiny_file();
    f.ext.access = Access::NearData;
    let sc = build(f);
    // Attention at n = 4 reads 200 B of weights and 400 B of KV: R = 600.
    // max(600 / (100 + 40), 200 / (100 + 20)) = max(4.2857, 1.6667).
    let b = kvtier::engine::ideal_bound(&sc.sizes, Access::NearData, 200, 400);
    assert_eq!(b, 600.0 / 140.0);
    // Weights only: 400 / (100 + min(20, 40)).
    assert_eq!(
        kvtier::engine::ideal_bound(&sc.sizes, Access::NearData, 400, 0),
        400.0 / 120.0
    );
}

#[test]
fn first_layers_layouts_place_whole_layers() {
    let mut f = tiny_file();
    f.initial.weights_on_hbm = 0.5;
    f.initial.weights_layout = kvtier::scenario::WeightsLayout::FirstLayers;
    f.initial.prefill_kv_on_hbm = 0.5;
    f.initial.prefill_kv_layout = kvtier::scenario::PrefillLayout::FirstLayers;
    let sc = build(f);
    // round(0.5 x 2) = 1 layer: layer 0 wholly on HBM, layer 1 wholly on EXT.
    assert_eq!(sc.sizes.attn_weight_hbm, vec![200, 0]);
    assert_eq!(sc.sizes.weights_on_hbm_bytes, 600);
    assert_eq!(sc.sizes.initial_hbm_kv_bytes, 400);
    let (recs, _) = run(&sc, &mut TestPolicy::fixed(Tier::Ext));
    assert_eq!(row(&recs, 4, Some(1), "attn").charges.hbm_read, 0);
    assert_eq!(row(&recs, 4, Some(0), "attn").charges.ext_read, 0);
}

#[test]
fn oldest_layout_keeps_the_oldest_prefill_positions() {
    let mut f = tiny_file();
    f.initial.prefill_kv_on_hbm = 0.5;
    f.initial.prefill_kv_layout = kvtier::scenario::PrefillLayout::Oldest;
    let sc = build(f);
    let mut p = TestPolicy::fixed(Tier::Ext);
    p.on_step = Some(Box::new(|sim| {
        if sim.step == 4 {
            // floor(4 x 0.5) = 2: positions 0, 1 at every layer.
            assert_eq!(sim.memory.hbm(0).iter().collect::<Vec<_>>(), vec![0, 1]);
            assert_eq!(sim.memory.hbm(1).iter().collect::<Vec<_>>(), vec![0, 1]);
        }
        Ok(())
    }));
    run(&sc, &mut p);
}

#[test]
fn idealized_scenario_is_marked() {
    let mut f = tiny_file();
    f.hbm.kv_budget = Some(ByteSize(1500)); // 1200 + 1500 - 2300 = 400 B over
    let sc = build(f);
    assert_eq!(sc.sizes.oversubscribed_bytes, Some(400));
    assert_eq!(
        sc.idealized_note().unwrap(),
        "idealized (HBM over-subscribed by 0.0000004 GB)"
    );
}
