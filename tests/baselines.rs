//! One test per baseline in policies/baselines: each checks the strategy's defining behaviour
//! on a small scenario and a hand-written trace, with the expected entries worked out by hand
//! in the comments (not through the script API).

mod common;

use std::cell::RefCell;

use common::row;
use common::spy::*;
use kvtier::memory::Tier;
use kvtier::optimize::flexgen;
use kvtier::scenario::Scenario;
use kvtier::tokenset::TokenSet;

fn baseline(kind: &str, name: &str) -> kvtier::policy::PolicyRef {
    script(&format!("baselines/{kind}"), name)
}

/// P = 4, D = 6 (steps 4..9), 2 layers; layer 1 is skipped at every step but step 8 (no reads,
/// no new entries), so layer 0 holds the story. KV budget 1400 B: the 800 B prefill, the 5
/// entries layer 0 writes at steps 4..8 and the one layer 1 writes at step 8; so HBM is full
/// first when layer 0 of step 9 is about to write (the hook of (8, 1) still saw 1300 B).
///
/// Layer 0 over steps 4..8 (positions 0-3 prefill, p >= 4 written at step p, read after):
///   position 0: read at 4, 5, 6, skipped at 7, 8   -> 3 uses, last use step 6
///   position 1: skipped at 4..7, read at 8          -> 1 use,  last use step 8
///   positions 2, 3: read at every step              -> 5 uses, last use step 8
///   entry 4: written 4, read 5..8 -> 5 uses; entry 5: 4 uses; 6: 3; 7: 2; 8: written only, 1
/// Step 9 (the decision) skips position 2.
const CACHE_TRACE: &str = "kvtrace 1 prefill=4 decode=6 layers=2
4 0 1-2
4 1 layer
5 0 1-2
5 1 layer
6 0 1-2
6 1 layer
7 0 0-2
7 1 layer
8 0 0-1
9 0 2-3
9 1 layer
";

fn cache_scenario() -> Scenario {
    small(4, 6, 1400, "source = \"none\"", "")
}

/// What the migration baseline `name` demoted at layer 0 of step 9 (and that it moved
/// nothing before).
fn demoted_at_step_9(name: &str, params: &[&str]) -> Vec<usize> {
    let sc = cache_scenario();
    let out = RefCell::new(Vec::new());
    let mut spy =
        Spy::new(&native("hbm"), &baseline("migration", name), &sc, params).after(|c: &Call| {
            let d = c.demoted(0);
            if c.step < 9 {
                assert!(
                    d.is_empty(),
                    "{name} demoted {d:?} at step {} (HBM had room)",
                    c.step
                );
            } else if c.layer == Some(0) {
                out.borrow_mut().extend(d.iter());
            }
        });
    spy.run_trace(&sc, CACHE_TRACE);
    drop(spy);
    out.into_inner()
}

#[test]
fn lru_demotes_the_least_recently_used_entry() {
    // Last uses: position 0 at step 6, everything else at step 8 (entry 8 by its write).
    assert_eq!(demoted_at_step_9("lru", &[]), vec![0]);
}

#[test]
fn lfu_demotes_the_least_frequently_used_entry() {
    // Uses: 1 -> 1, 8 -> 1 (its write), then 7 -> 2, 0 -> 3, 6 -> 3; a tie goes to the older.
    assert_eq!(demoted_at_step_9("lfu", &[]), vec![1]);
    // Two at once: both one-use entries.
    assert_eq!(demoted_at_step_9("lfu", &["batch=2"]), vec![1, 8]);
}

#[test]
fn belady_demotes_the_entry_read_farthest_ahead() {
    // Step 9 reads every entry but position 2: within the window, 2 is never read again.
    assert_eq!(demoted_at_step_9("belady", &[]), vec![2]);
}

#[test]
fn h2o_keeps_the_recent_window_and_the_most_read() {
    // Layer share 1400 / (2 layers x 100 B) = 7 entries; slack 1 leaves 6; recent=2 keeps
    // {7, 8}; so 4 heavy hitters among {0..6} by uses: 2, 3, 4 (5 each), 5 (4), then 0 and 6
    // tie at 3 and the newer, 6, wins. Demoted: 0, 1, 6.
    assert_eq!(
        demoted_at_step_9("h2o", &["recent=2", "slack=1"]),
        vec![0, 1, 6]
    );
}

#[test]
fn infinigen_queues_the_next_layers_reads_one_layer_ahead_and_reads_them_from_hbm() {
    // Async, inclusive, prefill KV on EXT. Step 4: layer 1 reads positions 2, 3 only; step 5:
    // layer 1 reads 0, 1 only.
    let sc = small(
        4,
        2,
        1100,
        "source = \"none\"",
        "[memory]\nmigration = \"async\"\nhierarchy = \"inclusive\"\n[initial]\nprefill_kv_on_hbm = 0.0\n",
    );
    let trace = "kvtrace 1 prefill=4 decode=2 layers=2\n4 1 0-2\n5 1 2-5\n";
    let seen = RefCell::new(Vec::new());
    let mut spy = Spy::new(
        &native("hbm"),
        &baseline("migration", "infinigen"),
        &sc,
        &[],
    )
    .after(|c: &Call| {
        if c.layer == Some(0) {
            let q = c.sim.memory.queued(1).iter().collect::<Vec<_>>();
            let h = c.sim.memory.hbm(1).iter().collect::<Vec<_>>();
            seen.borrow_mut().push((c.step, q, h));
        }
    });
    let recs = spy.run_trace(&sc, trace);
    drop(spy);
    let seen = seen.into_inner();
    // Before layer 0 of step 4: copies of layer 1's positions 2, 3 queued, none done yet.
    assert_eq!(seen[0], (4, vec![2, 3], vec![]));
    // Layer 0's rows (>= 4 s of attention alone) give the copy engine time for 200 B at 20 B/s
    // (10 s): layer 1 then reads both entries from HBM, and its weights (200 B) too.
    let r = row(&recs, 4, Some(1), "attn");
    assert_eq!(r.charges.kv_read, 200);
    assert_eq!(r.charges.hbm_read, 200 + 200);
    assert_eq!(r.charges.ext_read, 0);
    // Before layer 0 of step 5: layer 1 will read 0, 1 only, so its copies of 2, 3 and of its
    // new entry 4 (written to HBM at step 4) are dropped and 0, 1 queued.
    assert_eq!(seen[1], (5, vec![0, 1], vec![]));
}

#[test]
fn static_alpha_splits_at_the_alpha_target_within_one_entry_and_keeps_it() {
    // P = 10, k = 100 B, Wa = 200 B all on HBM, HBM 100 B/s, LINK 35 B/s (EXTI 40):
    // target = 100 / (100 + 35) = 0.7407. A step reading all 10 entries: 200 + 1000 = 1200 B,
    // target x 1200 = 888.9 B on HBM -> m = floor((888.9 - 200) / 100) = 6 entries:
    // (200 + 600) / 1200 = 0.667 <= 0.741 < (200 + 700) / 1200 = 0.75.
    let mut f = common::tiny_file();
    f.workload.prefill = 10;
    f.workload.decode = 4;
    f.hbm.capacity = kvtier::scenario::ByteSize(1200 + 2000);
    f.ext.link_bandwidth = Some(kvtier::scenario::Bandwidth(35.0));
    let sc = common::build(f);
    let mut spy = Spy::new(
        &baseline("placement", "static_alpha"),
        &native("none"),
        &sc,
        &[],
    );
    spy.run(&sc);
    // Placements, layer 0 (h entries on HBM of n present, each answer keeps
    // 200 + (h + 1) 100 <= 0.7407 (200 + (n + 1) 100)):
    //   step 10: h 6, n 10: 900 <= 963.0 -> hbm;  step 11: h 7, n 11: 1000 <= 1037.0 -> hbm
    //   step 12: h 8, n 12: 1100 <= 1111.1 -> hbm; step 13: h 9, n 13: 1200 <= 1185.2 -> ext
    let layer0: Vec<Tier> = spy
        .places
        .iter()
        .filter(|p| p.1 == 0)
        .map(|p| p.2)
        .collect();
    assert_eq!(layer0, vec![Tier::Hbm, Tier::Hbm, Tier::Hbm, Tier::Ext]);
    // The initial split itself: the newest 6 prefill positions at each layer.
    let mut p = TestInitial::new(&baseline("placement", "static_alpha"), &sc);
    let sets = p.sets();
    for s in &sets {
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![4, 5, 6, 7, 8, 9]);
    }
}

/// Runs a placement's `initial` hook through the engine and reads back the residency at the
/// first `place` call.
struct TestInitial {
    policy: Box<dyn kvtier::engine::Policy>,
    sc: Scenario,
}

impl TestInitial {
    fn new(p: &kvtier::policy::PolicyRef, sc: &Scenario) -> TestInitial {
        TestInitial {
            policy: kvtier::policy::build(p, &native("none"), Default::default()).unwrap(),
            sc: sc.clone(),
        }
    }

    /// The HBM set of each layer when the first decode step starts.
    fn sets(&mut self) -> Vec<TokenSet> {
        let out = RefCell::new(Vec::new());
        let inner = &mut self.policy;
        let layers = self.sc.sizes.layers;
        let mut wrapped = InitialOnly {
            inner,
            done: false,
            out: &out,
            layers,
        };
        let mut recs = Vec::new();
        kvtier::engine::run(&self.sc, &mut wrapped, &mut recs).unwrap();
        out.into_inner()
    }
}

/// Forwards `initial` to a real policy and records the residency at the first `place`.
struct InitialOnly<'a> {
    inner: &'a mut Box<dyn kvtier::engine::Policy>,
    done: bool,
    out: &'a RefCell<Vec<TokenSet>>,
    layers: usize,
}

impl kvtier::engine::Policy for InitialOnly<'_> {
    fn name(&self) -> String {
        "initial-only".into()
    }
    fn has_initial(&self) -> bool {
        self.inner.has_initial()
    }
    fn initial(
        &mut self,
        sim: &mut kvtier::engine::Sim,
        layer: usize,
    ) -> anyhow::Result<Option<TokenSet>> {
        self.inner.initial(sim, layer)
    }
    fn place(&mut self, sim: &mut kvtier::engine::Sim, _: usize) -> anyhow::Result<Tier> {
        if !self.done {
            self.done = true;
            *self.out.borrow_mut() = (0..self.layers)
                .map(|l| sim.memory.hbm(l).clone())
                .collect();
        }
        Ok(Tier::Ext)
    }
}

#[test]
fn flexgen_solves_its_lp_by_hand() {
    // tiny: L = 2, P = 4, D = 3, k = 100 B, weights 600 B per layer all on HBM (Wh = 600,
    // We = 0), HBM 100 B/s, EXT min(20, 40) = 20 B/s. Average context s = 4 + (3 - 1) / 2 = 5.
    // H(c) / 100 = E(c) / 20 with H = 600 + 500 c and E = (1 - c) x 600:
    //   6 + 5 c = 30 - 30 c  ->  c = 24 / 35 = 0.6857; T = 6 + 5 x 24/35 = 66/7 s.
    // Budget cap: 1100 B / (2 layers x 7 positions x 100 B) = 0.786 > c: not binding.
    let sc = tiny();
    let s = flexgen::solve(&sc.sizes);
    assert!((s.kv_share - 24.0 / 35.0).abs() < 1e-12, "{s:?}");
    assert!((s.layer_time_s - 66.0 / 7.0).abs() < 1e-12, "{s:?}");
    assert_eq!(s.avg_context, 5.0);
    assert_eq!(s.weights_share, 1.0);
    // A budget of 500 B binds: c = 500 / 1400 = 0.357; then E is the larger side:
    // (1 - 0.357) x 600 / 20 = 19.29 s.
    let mut f = common::tiny_file();
    f.hbm.kv_budget = Some(kvtier::scenario::ByteSize(500));
    f.initial.prefill_kv_on_hbm = 0.5;
    let s = flexgen::solve(&common::build(f).sizes);
    assert!((s.kv_share - 500.0 / 1400.0).abs() < 1e-12, "{s:?}");
    assert!((s.layer_time_s - (1.0 - 500.0 / 1400.0) * 600.0 / 20.0).abs() < 1e-9);

    // The script applies it: floor(0.6857 x 4) = 2 newest prefill positions per layer, then a
    // new entry goes to HBM while (h + 1) <= c (n + 1): step 4: 3 <= 3.43 hbm; step 5: 4 <= 4.11
    // hbm; step 6: 5 <= 4.80 ext.
    let sc = tiny();
    let mut p = TestInitial::new(&baseline("placement", "flexgen"), &sc);
    for s in p.sets() {
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![2, 3]);
    }
    let mut spy = Spy::new(&baseline("placement", "flexgen"), &native("none"), &sc, &[]);
    spy.run(&sc);
    let layer0: Vec<Tier> = spy
        .places
        .iter()
        .filter(|p| p.1 == 0)
        .map(|p| p.2)
        .collect();
    assert_eq!(layer0, vec![Tier::Hbm, Tier::Hbm, Tier::Ext]);
}

/// The error of a run of tiny with placement script `source` (migration none).
fn initial_error(source: &str, migration: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.rhai");
    std::fs::write(&p, source).unwrap();
    let (pl, mg) = match migration {
        None => (kvtier::policy::PolicyRef::Script(p), native("none")),
        Some(m) => {
            let q = dir.path().join("m.rhai");
            std::fs::write(&q, m).unwrap();
            (native("hbm"), kvtier::policy::PolicyRef::Script(q))
        }
    };
    let sc = tiny();
    let err = kvtier::policy::build(&pl, &mg, Default::default())
        .and_then(|mut pol| kvtier::simulate(&sc, pol.as_mut(), None).map(drop))
        .unwrap_err();
    format!("{err:#}")
}

#[test]
fn a_bad_initial_split_is_refused_with_the_hook_and_the_numbers() {
    // Position 4 is the first decode step's entry: it does not exist before decode.
    let e = initial_error(
        "fn initial(ctx) { ctx.tokens(0, 5) }\nfn place(ctx) { \"hbm\" }\n",
        None,
    );
    assert!(
        e.contains("p.rhai:1:1: in initial") && e.contains("position 4"),
        "{e}"
    );
    assert!(e.contains("prefill positions 0..4"), "{e}");
    // A number is not a set of positions.
    let e = initial_error("fn initial(ctx) { 0.5 }\nfn place(ctx) { \"hbm\" }\n", None);
    assert!(e.contains("initial must return a TokenSet"), "{e}");
    // 4 positions x 2 layers x 100 B fit tiny's 1100 B budget; a budget of 700 B does not:
    // layer 1 brings the total to 800 B.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.rhai");
    std::fs::write(
        &p,
        "fn initial(ctx) { ctx.tokens(0, 4) }\nfn place(ctx) { \"ext\" }\n",
    )
    .unwrap();
    let mut f = common::tiny_file();
    f.hbm.kv_budget = Some(kvtier::scenario::ByteSize(700));
    f.initial.prefill_kv_on_hbm = 0.5;
    let sc = common::build(f);
    let mut pol = kvtier::policy::build(
        &kvtier::policy::PolicyRef::Script(p),
        &native("none"),
        Default::default(),
    )
    .unwrap();
    let e = format!(
        "{:#}",
        kvtier::simulate(&sc, pol.as_mut(), None).unwrap_err()
    );
    assert!(e.contains("800 B by layer 1, budget 700 B"), "{e}");
    // The initial split belongs to the placement.
    let e = initial_error(
        "fn place(ctx) { \"hbm\" }\n",
        Some("fn initial(ctx) { ctx.tokens(0, 1) }\nfn on_step(ctx) {}\n"),
    );
    assert!(e.contains("fn initial(ctx) is a placement hook"), "{e}");
}

#[test]
fn an_initial_hook_returning_unit_keeps_the_scenarios_split() {
    // tiny keeps all 4 prefill positions on HBM: reads at step 4 layer 0 are 200 B of weights
    // plus 400 B of KV, all from HBM, with or without the hook.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.rhai");
    std::fs::write(&p, "fn initial(ctx) { () }\nfn place(ctx) { \"hbm\" }\n").unwrap();
    let sc = tiny();
    let mut pol = kvtier::policy::build(
        &kvtier::policy::PolicyRef::Script(p),
        &native("none"),
        Default::default(),
    )
    .unwrap();
    let mut recs = Vec::new();
    kvtier::engine::run(&sc, pol.as_mut(), &mut recs).unwrap();
    assert_eq!(row(&recs, 4, Some(0), "attn").charges.hbm_read, 600);
}
