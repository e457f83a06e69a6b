//! The native questions behind the script API, checked against naive recomputation from the
//! trace window, and `predicted_alpha` against the alpha the engine then records.

mod common;

use anyhow::Result;
use kvtier::engine::{self, Policy, Record, Sim, Sublayer};
use kvtier::memory::Tier;
use kvtier::policy::query;
use kvtier::scenario::Scenario;
use kvtier::tokenset::TokenSet;

/// Runs `probe` in on_layer at every (step, layer) of a run with native HBM placement.
struct Probe<F: FnMut(&Sim, usize)>(F);

impl<F: FnMut(&Sim, usize)> Policy for Probe<F> {
    fn name(&self) -> String {
        "probe".into()
    }
    fn place(&mut self, _: &mut Sim, _: usize) -> Result<Tier> {
        Ok(Tier::Hbm)
    }
    fn past_steps(&self) -> usize {
        kvtier::trace::PAST_STEPS
    }
    fn has_on_layer(&self) -> bool {
        true
    }
    fn on_layer(&mut self, sim: &mut Sim, layer: usize) -> Result<()> {
        (self.0)(sim, layer);
        Ok(())
    }
}

fn scenario() -> Scenario {
    Scenario::from_toml(
        r#"
seed = 5
[model]
layers = 3
params = 900
dtype_bytes = 2
kv_bytes = "100 B"
[workload]
prefill = 70
decode = 90
[hbm]
capacity = "30000 B"
bandwidth = "100 B/s"
[ext]
link_bandwidth = "20 B/s"
internal_bandwidth = "40 B/s"
[initial]
prefill_kv_on_hbm = 0.6
[skip]
source = "uniform"
rate = 0.5
layer_skip_rate = 0.1
[policy]
lookahead = 8
"#,
        None,
    )
    .unwrap()
}

#[test]
fn past_skipped_counts_match_a_naive_count() {
    let sc = scenario();
    let mut checks = 0;
    let mut probe = Probe(|sim: &Sim, l: usize| {
        let n = sim.step;
        for w in [1usize, 5, 16, 64] {
            let steps: Vec<usize> = (n.saturating_sub(w).max(70)..n).collect();
            for m in [1usize, 2, 3, w / 2, w] {
                let got = query::past_skipped(sim, l, w, m).unwrap();
                let need = m.min(steps.len());
                let mut want = TokenSet::new(sim.sizes.positions());
                if m == 0 {
                    want.insert_range(0, n);
                } else if !steps.is_empty() {
                    let sets: Vec<TokenSet> =
                        steps.iter().map(|&s| common::not_read(sim, s, l)).collect();
                    for p in 0..n {
                        let c = sets.iter().filter(|s| s.contains(p)).count();
                        if c >= need {
                            want.insert(p);
                        }
                    }
                }
                assert_eq!(got, want, "n {n} l {l} w {w} m {m}");
                checks += 1;
            }
        }
    });
    engine::run(&sc, &mut probe, &mut Vec::<Record>::new()).unwrap();
    assert!(checks > 1000);
}

#[test]
fn future_sets_match_the_window_and_stop_at_the_lookahead() {
    let sc = scenario();
    let mut probe = Probe(|sim: &Sim, l: usize| {
        let n = sim.step;
        let end = sim.sizes.positions();
        for k in [1usize, 3, 8] {
            let steps: Vec<usize> = (n + 1..(n + k + 1).min(end)).collect();
            let mut any = TokenSet::new(end);
            let mut all = TokenSet::new(end);
            for (i, &s) in steps.iter().enumerate() {
                let nr = common::not_read(sim, s, l);
                any.union_with(&nr);
                if i == 0 {
                    all = nr;
                } else {
                    all.intersect_with(&nr);
                }
            }
            assert_eq!(query::skipped_over(sim, l, 1, k, false).unwrap(), any);
            assert_eq!(query::skipped_over(sim, l, 1, k, true).unwrap(), all);
            let mut read_any = sim.memory.present(l).clone();
            if steps.is_empty() {
                read_any.clear();
            } else {
                read_any.subtract(&all);
            }
            assert_eq!(query::read_over(sim, l, 1, k, false).unwrap(), read_any);
            for p in [0usize, 1, n / 2, n - 1] {
                assert_eq!(query::will_skip(sim, l, p, k).unwrap(), any.contains(p));
            }
        }
        let err = query::skipped_over(sim, l, 1, 9, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("past the window"), "{err}");
    });
    engine::run(&sc, &mut probe, &mut Vec::<Record>::new()).unwrap();
}

#[test]
fn predicted_alpha_of_the_current_step_is_the_alpha_the_engine_records() {
    let sc = scenario();
    let mut predicted = Vec::new();
    let mut probe = Probe(|sim: &Sim, l: usize| {
        if let Some(a) = query::predicted_alpha(sim, l, sim.step).unwrap() {
            predicted.push((sim.step, l, a));
        }
    });
    let mut records = Vec::new();
    engine::run(&sc, &mut probe, &mut records).unwrap();
    let recorded: Vec<(usize, usize, f64)> = records
        .iter()
        .filter(|r| r.sublayer == Sublayer::Attn)
        .map(|r| (r.step, r.layer.unwrap(), r.charges.alpha().unwrap()))
        .collect();
    assert_eq!(predicted.len(), recorded.len());
    for (p, r) in predicted.iter().zip(&recorded) {
        assert_eq!((p.0, p.1), (r.0, r.1));
        assert!((p.2 - r.2).abs() < 1e-12, "{p:?} vs {r:?}");
    }
}

#[test]
fn first_and_last_take_the_oldest_and_newest_positions() {
    let mut s = TokenSet::new(300);
    for p in [3, 64, 65, 130, 200, 299] {
        s.insert(p);
    }
    let f = kvtier::policy::ctx::take(&s, 3, false);
    assert_eq!(f.iter().collect::<Vec<_>>(), vec![3, 64, 65]);
    let l = kvtier::policy::ctx::take(&s, 2, true);
    assert_eq!(l.iter().collect::<Vec<_>>(), vec![200, 299]);
    assert_eq!(kvtier::policy::ctx::take(&s, 99, true), s);
}

mod props {
    use kvtier::policy::ctx::take;
    use kvtier::tokenset::TokenSet;
    use proptest::prelude::*;

    proptest! {
        /// `first(k)` / `last(k)` are the k lowest / highest members, whatever the word layout.
        #[test]
        fn take_matches_sorted_members(members in proptest::collection::btree_set(0usize..500, 0..120), k in 0u64..130) {
            let mut s = TokenSet::new(500);
            for &p in &members {
                s.insert(p);
            }
            let all: Vec<usize> = members.iter().copied().collect();
            let n = (k as usize).min(all.len());
            prop_assert_eq!(take(&s, k, false).iter().collect::<Vec<_>>(), all[..n].to_vec());
            prop_assert_eq!(take(&s, k, true).iter().collect::<Vec<_>>(), all[all.len() - n..].to_vec());
        }
    }
}
