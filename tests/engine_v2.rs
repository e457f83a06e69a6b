//! One hand-computed case per rule of SPEC v2 (sections 10-13), on scenarios/tiny.toml:
//! L = 2, P = 4, D = 3, Wa = 200 B, Wm = 400 B, k = 100 B, HBM 100 B/s, LINK 20 B/s, EXTI 40 B/s,
//! KV budget 1100 B (capacity 2300 B - 1200 B of weights), 800 B of prefill KV on HBM.
//! Every expected value below is exact arithmetic on those numbers, written out.

mod common;

use common::*;
use kvtier::engine::{Layers, Sim};
use kvtier::memory::Tier;
use kvtier::scenario::{
    Access, Bandwidth, ByteSize, Duplex, Flops, Hierarchy, MigrationMode, Overlap, ScenarioFile,
    Seconds,
};
use kvtier::tokenset::TokenSet;

/// Positions of tiny: P + D = 7.
const POSITIONS: usize = 7;

fn pos(p: usize) -> TokenSet {
    TokenSet::range(POSITIONS, p, p + 1)
}

/// Prefill KV on EXT, new entries placed on EXT.
fn all_on_ext() -> ScenarioFile {
    let mut f = tiny_file();
    f.initial.prefill_kv_on_hbm = 0.0;
    f
}

/// Attention FLOPs 2 x 200 / 2 + 4 x q_heads 2 x head_dim 5 x r = 200 + 40 r; MLP 2 x 400 / 2 =
/// 400 (batch 1, dtype 2 B).
fn with_compute(mut f: ScenarioFile, flops: f64) -> ScenarioFile {
    f.model.head_dim = Some(5);
    f.model.q_heads = Some(2);
    f.gpu.flops = Some(Flops(flops));
    f
}

fn asynchronous(mut f: ScenarioFile) -> ScenarioFile {
    f.memory.migration = MigrationMode::Async;
    f
}

/// A policy placing on `tier` whose on_layer runs `f` at `(step, layer)` only.
fn at_layer(
    tier: Tier,
    step: usize,
    layer: usize,
    mut f: impl FnMut(&mut Sim) + 'static,
) -> TestPolicy {
    let mut p = TestPolicy::fixed(tier);
    p.on_layer = Some(Box::new(move |sim, l| {
        if sim.step == step && l == layer {
            f(sim);
        }
        Ok(())
    }));
    p
}

// ---- SPEC 10: link directions

#[test]
fn asymmetric_link_shares_one_channel_or_runs_both_directions_at_once() {
    // Step 4, layer 0, prefill on EXT, placement ext: LINK read 400 B (KV), write 100 B (new
    // entry); HBM 200 B (2 s), EXTI 500 B (12.5 s).
    let time = |duplex: Duplex, read: f64, write: f64| {
        let mut f = all_on_ext();
        f.ext.link_duplex = duplex;
        f.ext.link_read_bandwidth = Some(Bandwidth(read));
        f.ext.link_write_bandwidth = Some(Bandwidth(write));
        let (recs, _) = run(&build(f), &mut TestPolicy::fixed(Tier::Ext));
        let r = row(&recs, 4, Some(0), "attn");
        assert_eq!((r.charges.link_read, r.charges.link_write), (400, 100));
        r.time_s
    };
    // Shared: 400 / 20 + 100 / 10 = 20 + 10 = 30 s.
    assert_eq!(time(Duplex::Shared, 20.0, 10.0), 30.0);
    // Full duplex: max(400 / 20, 100 / 10) = 20 s.
    assert_eq!(time(Duplex::Full, 20.0, 10.0), 20.0);
    // Equal directions: v1's (400 + 100) / 20 = 25 s.
    assert_eq!(time(Duplex::Shared, 20.0, 20.0), 25.0);
}

#[test]
fn the_ideal_bound_and_alpha_target_use_the_read_direction() {
    let mut f = tiny_file();
    f.ext.link_read_bandwidth = Some(Bandwidth(30.0));
    f.ext.link_write_bandwidth = Some(Bandwidth(5.0));
    let sc = build(f);
    // alpha target = 100 / (100 + min(30, 40)).
    assert_eq!(sc.sizes.alpha_target, 100.0 / 130.0);
    let (recs, _) = run(&sc, &mut TestPolicy::fixed(Tier::Hbm));
    // (4,0) attention reads 200 + 400 B: 600 / (100 + 30).
    assert_eq!(row(&recs, 4, Some(0), "attn").bound_s, 600.0 / 130.0);
}

// ---- SPEC 11: compute and overhead

#[test]
fn compute_bound_rows_take_the_compute_time() {
    let mut f = with_compute(tiny_file(), 50.0);
    f.hbm.capacity = ByteSize(10_000);
    let (recs, t) = run(&build(f), &mut TestPolicy::fixed(Tier::Hbm));
    // (4,0) attention reads 4 entries: 200 + 40 x 4 = 360 FLOPs -> 7.2 s > memory 700 / 100 = 7 s.
    let a = row(&recs, 4, Some(0), "attn");
    assert_eq!(
        (a.flops, a.time_s, a.compute_bound),
        (Some(360.0), 7.2, true)
    );
    // MLP: 400 FLOPs -> 8 s > 400 / 100 = 4 s.
    let m = row(&recs, 4, Some(0), "mlp");
    assert_eq!(
        (m.flops, m.time_s, m.compute_bound),
        (Some(400.0), 8.0, true)
    );
    // (6,1) attention: 6 entries, 440 FLOPs = 8.8 s < memory (200 + 600 + 100) / 100 = 9 s.
    let a = row(&recs, 6, Some(1), "attn");
    assert_eq!(
        (a.flops, a.time_s, a.compute_bound),
        (Some(440.0), 9.0, false)
    );
    // Compute-bound: every MLP row (6) and attention at n = 4 on both layers (7.2 s > 7 s); at
    // n = 5 compute 400 / 50 = 8 s equals memory 800 / 100 = 8 s, which is not compute-bound.
    assert_eq!(t.compute_bound_rows, 6 + 2);
}

#[test]
fn overhead_is_added_once_per_sublayer_and_never_to_a_step_phase() {
    let mut f = tiny_file();
    f.hbm.capacity = ByteSize(10_000);
    f.gpu.sublayer_overhead = Some(Seconds(0.5));
    let mut p = TestPolicy::fixed(Tier::Hbm);
    p.on_step = Some(Box::new(|sim| {
        if sim.step == 4 {
            sim.move_to_ext(Layers::One(0), &pos(0), None)?;
        }
        Ok(())
    }));
    let (recs, t) = run(&build(f), &mut p);
    // Step phase: 100 B over HBM (1 s), LINK (5 s), EXTI (2.5 s) -> 5 s, no overhead.
    assert_eq!(row(&recs, 4, None, "step").time_s, 5.0);
    // (4,0) attention: 200 + 300 from HBM (5 s), entry 0 over LINK (5 s), write 100 to HBM:
    // max(6, 5) + 0.5.
    assert_eq!(row(&recs, 4, Some(0), "attn").time_s, 6.5);
    // MLP: 4 s + 0.5.
    assert_eq!(row(&recs, 4, Some(0), "mlp").time_s, 4.5);
    // 12 rows x 0.5 s on top of the overhead-free run.
    let (_, t0) = {
        let mut f = tiny_file();
        f.hbm.capacity = ByteSize(10_000);
        let mut p = TestPolicy::fixed(Tier::Hbm);
        p.on_step = Some(Box::new(|sim| {
            if sim.step == 4 {
                sim.move_to_ext(Layers::One(0), &pos(0), None)?;
            }
            Ok(())
        }));
        run(&build(f), &mut p)
    };
    assert_eq!(t.decode_time_s, t0.decode_time_s + 12.0 * 0.5);
    // The bounds get the overhead too: 12 rows.
    assert!((t.bound_s - (t0.bound_s + 6.0)).abs() < 1e-12);
}

#[test]
fn near_data_leaves_ext_entries_out_of_the_gpu_flops() {
    let flops_at = |access: Access, on_hbm: f64| {
        let mut f = with_compute(tiny_file(), 1e9);
        f.ext.access = access;
        f.initial.prefill_kv_on_hbm = on_hbm;
        let (recs, _) = run(&build(f), &mut TestPolicy::fixed(Tier::Ext));
        row(&recs, 4, Some(0), "attn").flops.unwrap()
    };
    // Fetch: the GPU computes all 4 entries: 200 + 40 x 4.
    assert_eq!(flops_at(Access::Fetch, 0.0), 360.0);
    // near_data, all on EXT: the device computes them: 200.
    assert_eq!(flops_at(Access::NearData, 0.0), 200.0);
    // near_data, newest 2 of 4 on HBM: 200 + 40 x 2.
    assert_eq!(flops_at(Access::NearData, 0.5), 280.0);
}

// ---- SPEC 12: async migration

#[test]
fn async_promotion_completes_in_the_third_sublayer_and_is_read_from_ext_until_then() {
    // Prefill on EXT, placement ext; at on_layer(4, 0) promote entry (0, layer 1): one 100 B job.
    // Copy engine 2 B/s. Rows after the call, with their own times T0:
    //   (4,0,attn): LINK read 400 + write 100 = 25 s -> copies floor(25 x 2) = 50 B
    //   (4,0,mlp):  HBM 400 = 4 s                      -> copies floor(4 x 2) = 8 B
    //   (4,1,attn): 25 s                               -> copies the last 42 B: complete
    let mut f = asynchronous(all_on_ext());
    f.memory.copy_read_bandwidth = Some(Bandwidth(2.0));
    let sc = build(f);
    let mut p = at_layer(Tier::Ext, 4, 0, |sim| {
        let queued = sim.move_to_hbm(Layers::One(1), &pos(0), None).unwrap();
        assert_eq!(queued, 100, "a verb returns the bytes it queued");
        assert_eq!(sim.memory.copy_queue_bytes(), 100);
        assert!(sim.memory.queued(1).contains(0));
        assert!(
            !sim.memory.hbm(1).contains(0),
            "not on HBM before its copy completes"
        );
        // The promotion reserved its budget when queued.
        assert_eq!(sim.memory.hbm_used_bytes(), 100);
    });
    let (recs, t) = run(&sc, &mut p);
    let r = row(&recs, 4, Some(0), "attn");
    // Copies compete: LINK read 400 + 50, write 100: 550 / 20 = 27.5 s (from 25 s).
    assert_eq!(
        (r.charges.copy, r.charges.link_read, r.time_s),
        (50, 450, 27.5)
    );
    assert_eq!((r.charges.to_hbm, r.hbm_kv_bytes), (0, 100));
    let r = row(&recs, 4, Some(0), "mlp");
    // HBM 400 + 8 = 408 B: 4.08 s.
    assert_eq!((r.charges.copy, r.time_s), (8, 4.08));
    let r = row(&recs, 4, Some(1), "attn");
    // Still read from EXT here: KV 400 B over the link plus the last 42 B of copy.
    assert_eq!((r.charges.ext_read, r.charges.copy), (400, 42));
    // LINK (400 + 42 + 100) / 20 = 27.1 s; the entry completes at the end of the row.
    assert!((r.time_s - 27.1).abs() < 1e-12);
    assert_eq!(r.charges.to_hbm, 100);
    // Next step: entry 0 at layer 1 is read from HBM (Wa 200 + 100), entries 1..4 from EXT.
    let r = row(&recs, 5, Some(1), "attn");
    assert_eq!((r.charges.hbm_read, r.charges.ext_read), (300, 400));
    assert_eq!(
        (t.queued_at_end_bytes, t.charges.to_hbm, t.charges.copy),
        (0, 100, 100)
    );
}

#[test]
fn exclusive_async_demotion_frees_its_budget_only_when_its_copy_completes() {
    // Budget 800 B = the prefill: HBM is full. at on_layer(4, 0) demote entry (0, layer 0).
    // Sync: room at once, so the new entry (4,0) goes to HBM. Async: the demotion is queued,
    // the budget still full, so (4,0) falls back to EXT.
    let setup = |mode: MigrationMode| {
        let mut f = tiny_file();
        f.hbm.capacity = ByteSize(2000);
        f.memory.migration = mode;
        f.memory.copy_write_bandwidth = Some(Bandwidth(10.0));
        let mut p = at_layer(Tier::Hbm, 4, 0, |sim| {
            sim.move_to_ext(Layers::One(0), &pos(0), None).unwrap();
        });
        run(&build(f), &mut p)
    };
    let (sync_recs, _) = setup(MigrationMode::Sync);
    assert_eq!(row(&sync_recs, 4, Some(0), "attn").charges.link_write, 100);
    assert_eq!(row(&sync_recs, 4, Some(0), "attn").hbm_kv_bytes, 800);

    let (recs, t) = setup(MigrationMode::Async);
    // (4,0,attn): reads 600 B from HBM (6 s), fallback write 100 B over the link (5 s): T0 = 6 s;
    // the copy engine moves floor(6 x 10) = 60 B: HBM 660 (6.6 s), LINK 160 (8 s) -> 8 s.
    let r = row(&recs, 4, Some(0), "attn");
    assert_eq!(
        (r.charges.copy, r.charges.hbm, r.charges.link_write),
        (60, 660, 160)
    );
    assert_eq!(r.time_s, 8.0);
    // The entry is still in use: 800 B.
    assert_eq!((r.hbm_kv_bytes, r.charges.to_ext), (800, 0));
    // (4,0,mlp): T0 = 4 s, copies the last 40 B (HBM 440: 4.4 s) and completes: 700 B in use.
    let r = row(&recs, 4, Some(0), "mlp");
    assert_eq!((r.charges.copy, r.time_s), (40, 4.4));
    assert_eq!((r.charges.to_ext, r.hbm_kv_bytes), (100, 700));
    // Its room goes to (4,1)'s new entry.
    assert_eq!(row(&recs, 4, Some(1), "attn").hbm_kv_bytes, 800);
    assert!(t.counters.fallbacks >= 1);
}

#[test]
fn inclusive_async_demotion_is_immediate_free_and_in_no_row() {
    let mut f = asynchronous(tiny_file());
    f.memory.hierarchy = Hierarchy::Inclusive;
    let mut p = at_layer(Tier::Hbm, 4, 0, |sim| {
        let dropped = sim.move_to_ext(Layers::One(0), &pos(0), None).unwrap();
        assert_eq!(dropped, 100);
        assert!(!sim.memory.hbm(0).contains(0), "dropped at once");
        assert_eq!(sim.memory.hbm_used_bytes(), 700);
        assert_eq!(sim.memory.copy_queue_bytes(), 0, "never queued");
    });
    let sc = build(f);
    let (recs, t) = run(&sc, &mut p);
    assert!(recs
        .iter()
        .all(|r| r.charges.to_ext == 0 && r.charges.copy == 0));
    let s = kvtier::results::Summary::new(&sc, "t".into(), &t);
    assert_eq!(s.moved_to_ext_bytes, 100);
}

#[test]
fn the_copy_engine_finishes_two_jobs_in_one_sublayer() {
    // Two verb calls in on_step(4): two jobs of 100 B (promote entry 0, then entry 1, at layer
    // 0). Copy engine 10 B/s; (4,0,attn) has T0 = 25 s: job 1 takes 10 s, job 2 the next 10 s.
    let mut f = asynchronous(all_on_ext());
    f.memory.copy_read_bandwidth = Some(Bandwidth(10.0));
    let mut p = TestPolicy::fixed(Tier::Ext);
    p.on_step = Some(Box::new(|sim| {
        if sim.step == 4 {
            sim.move_to_hbm(Layers::One(0), &pos(0), None)?;
            sim.move_to_hbm(Layers::One(0), &pos(1), None)?;
            assert_eq!(sim.memory.copy_queue_bytes(), 200);
        }
        Ok(())
    }));
    let (recs, _) = run(&build(f), &mut p);
    // No step phase in async mode.
    assert!(!has_row(&recs, 4, None, "step"));
    let r = row(&recs, 4, Some(0), "attn");
    // Both entries were still read from EXT (completions at the end of the row).
    assert_eq!(r.charges.ext_read, 400);
    // LINK (400 + 200 + 100) / 20 = 35 s; both complete.
    assert_eq!(
        (r.charges.copy, r.time_s, r.charges.to_hbm),
        (200, 35.0, 200)
    );
}

#[test]
fn copies_lengthen_an_hbm_bound_row_but_not_a_compute_bound_one() {
    // Demote entry 0 of layer 0 in on_step(4): a 100 B job; copy engine 10 B/s.
    let time = |flops: Option<f64>| {
        let mut f = asynchronous(tiny_file());
        if let Some(x) = flops {
            f = with_compute(f, x);
        }
        f.memory.copy_write_bandwidth = Some(Bandwidth(10.0));
        let mut p = TestPolicy::fixed(Tier::Hbm);
        p.on_step = Some(Box::new(|sim| {
            if sim.step == 4 {
                sim.move_to_ext(Layers::One(0), &pos(0), None)?;
            }
            Ok(())
        }));
        let (recs, _) = run(&build(f), &mut p);
        *row(&recs, 4, Some(0), "attn")
    };
    // HBM-bound: T0 = 700 / 100 = 7 s; 70 B copied: HBM 770 B = 7.7 s, LINK 70 / 20 = 3.5 s.
    let r = time(None);
    assert_eq!((r.charges.copy, r.time_s), (70, 7.7));
    // Compute-bound: 360 FLOPs at 36 FLOP/s = 10 s > 7 s; the engine copies 100 B in 10 s:
    // HBM 800 B = 8 s, still under 10 s.
    let r = time(Some(36.0));
    assert_eq!(
        (r.charges.copy, r.time_s, r.compute_bound),
        (100, 10.0, true)
    );
}

#[test]
fn bytes_left_on_the_queue_at_the_end_are_reported() {
    // on_step(6), the last step: promote entries 0..4 of layer 0 (400 B), copy engine 1 B/s.
    // Rows of step 6 and their T0 (prefill on EXT, placement ext):
    //   (6,0,attn) LINK 600 + 100 = 35 s -> 35 B;  (6,0,mlp) 4 s -> 4 B;
    //   (6,1,attn) 35 s -> 35 B;  (6,1,mlp) 4 s -> 4 B.   78 B copied, 322 B left.
    let mut f = asynchronous(all_on_ext());
    f.memory.copy_read_bandwidth = Some(Bandwidth(1.0));
    let mut p = TestPolicy::fixed(Tier::Ext);
    p.on_step = Some(Box::new(|sim| {
        if sim.step == 6 {
            sim.move_to_hbm(Layers::One(0), &TokenSet::range(POSITIONS, 0, 4), None)?;
        }
        Ok(())
    }));
    let sc = build(f);
    let (_, t) = run(&sc, &mut p);
    assert_eq!((t.charges.copy, t.queued_at_end_bytes), (78, 322));
    // No entry completed; the reservation stays counted.
    assert_eq!((t.charges.to_hbm, t.end_hbm_kv_bytes), (0, 400));
    let s = kvtier::results::Summary::new(&sc, "t".into(), &t);
    assert_eq!(s.queued_at_end_bytes, 322);
}

// ---- SPEC 13: the placement bound

fn placement_bound_at_4_0(f: ScenarioFile) -> f64 {
    let (recs, _) = run(&build(f), &mut TestPolicy::fixed(Tier::Ext));
    row(&recs, 4, Some(0), "attn").placement_bound_s
}

#[test]
fn placement_bound_of_an_attention_row_by_hand() {
    // (4,0) reads Wa = 200 B and K = 400 B of KV.
    // Fetch, max overlap, weights on HBM: d = (100 x 400 - 20 x 200) / (100 + 20) = 300 B;
    // h = min(300, 400, C = 1100): max((200 + 300) / 100, 100 / 20) = 5 s.
    assert_eq!(placement_bound_at_4_0(all_on_ext()), 5.0);
    // Budget C = 250 B binds: max(450 / 100, 150 / 20) = 7.5 s.
    let mut f = all_on_ext();
    f.hbm.kv_budget = Some(ByteSize(250));
    assert_eq!(placement_bound_at_4_0(f), 7.5);
    // Serial overlap, half the weights on EXT (100 B each side): s = 1/20 - 1/100 > 0, the EXT
    // term falls over all h, so h = min(K, C) = 400: 500 / 100 + max(100 / 20, 100 / 40) = 10 s.
    let mut f = all_on_ext();
    f.initial.weights_on_hbm = 0.5;
    f.memory.overlap = Overlap::Serial;
    assert_eq!(placement_bound_at_4_0(f), 10.0);
}

#[test]
fn placement_bound_in_near_data_keeps_the_weights_link_time() {
    // near_data, half the weights on EXT: HBM (100 + h) / 100, LINK 100 / 20 = 5 s (fetched
    // weights), EXTI (100 + 400 - h) / 40. d = (100 x 500 - 40 x 100) / 140 = 328.57 B, where
    // HBM and EXTI take 4.29 s: the weights' 5 s of LINK set the bound.
    let mut f = all_on_ext();
    f.ext.access = Access::NearData;
    f.initial.weights_on_hbm = 0.5;
    let sc = build(f);
    let (recs, _) = run(&sc, &mut TestPolicy::fixed(Tier::Ext));
    let r = row(&recs, 4, Some(0), "attn");
    assert_eq!(r.placement_bound_s, 5.0);
    // The ideal bound splits the weights freely too: max(600 / 140, 200 / 120) = 4.29 s.
    assert_eq!(r.bound_s, 600.0 / 140.0);
    // Weights on HBM: d = (100 x 400 - 40 x 200) / 140 = 228.57 B, T = 428.57 / 100 = 600 / 140.
    let mut f = all_on_ext();
    f.ext.access = Access::NearData;
    assert!((placement_bound_at_4_0(f) - 600.0 / 140.0).abs() < 1e-12);
}

#[test]
fn mlp_rows_bound_at_their_own_time_without_copies() {
    let mut f = asynchronous(tiny_file());
    f.initial.weights_on_hbm = 0.5;
    f.hbm.capacity = ByteSize(5000);
    f.memory.copy_write_bandwidth = Some(Bandwidth(10.0));
    let mut p = TestPolicy::fixed(Tier::Hbm);
    p.on_step = Some(Box::new(|sim| {
        if sim.step == 4 {
            sim.move_to_ext(Layers::All, &TokenSet::range(POSITIONS, 0, 4), None)?;
        }
        Ok(())
    }));
    let (recs, _) = run(&build(f), &mut p);
    // MLP: 200 B HBM (2 s), 200 B fetched (LINK 10 s): 10 s; with copies it is longer.
    let r = row(&recs, 4, Some(0), "mlp");
    assert_eq!(r.placement_bound_s, 10.0);
    assert!(r.charges.copy > 0 && r.time_s > 10.0);
}

// ---- kvtier scenario show

#[test]
fn scenario_show_gives_the_v2_figures() {
    let mut f = with_compute(tiny_file(), 50.0);
    f.ext.link_write_bandwidth = Some(Bandwidth(10.0));
    let sc = build(f);
    let rows = kvtier::results::scenario_rows(&sc);
    let get = |k: &str| {
        rows.iter()
            .find(|r| r.0 == k)
            .unwrap_or_else(|| panic!("no row {k:?}"))
            .1
            .clone()
    };
    assert_eq!(
        get("bandwidth HBM / LINK read / LINK write / EXTI"),
        "100 B/s / 20 B/s / 10 B/s / 40 B/s"
    );
    // Attention at the first step reads 4 positions: 200 + 40 x 4; at the last, 6: 200 + 240.
    assert!(get("FLOPs per attention sublayer, first / last step")
        .starts_with("3.600000e2 / 4.400000e2 (q_heads 2, head_dim 5)"));
    assert_eq!(get("FLOPs per MLP sublayer"), "4.000000e2");
    // First step: compute 360 / 50 = 7.2 s against the best split's 5 s (d = 300 B: 500 / 100
    // on HBM, 100 / 20 over the link); last step 8.8 s against 6.67 s; MLP 8 s against 4 s.
    assert_eq!(
        get("compute-bound layers at the best split, first / last step"),
        "attention 2 / 2, MLP 2 / 2 of 2 layers"
    );
    // Every row compute-bound: attention 7.2 + 8 + 8.8 s, MLP 3 x 8 s, two layers: 96 s.
    assert_eq!(get("placement bound, no-skip run"), "96.000000 s");
}
