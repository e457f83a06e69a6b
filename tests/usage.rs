//! The usage verbs (frequency, recency, next read) against a position-by-position reading of
//! their definitions, on random traces, with one cache kept across the whole run as a script's
//! `ctx` keeps it (so the sliding window is checked step after step).

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::*;
use kvtier::engine::Sim;
use kvtier::memory::Tier;
use kvtier::policy::usage::{self, UsageCache};
use kvtier::tokenset::TokenSet;
use proptest::prelude::*;

/// Whether `(step, layer)` reads position `p` (read straight from the trace window).
fn reads(sim: &Sim, step: usize, layer: usize, p: usize) -> bool {
    p < step && !not_read(sim, step, layer).contains(p)
}

/// The reference ranking: the first `count` positions of `set` sorted by `key`.
fn first_by<K: Ord>(set: &TokenSet, count: u64, key: impl Fn(usize) -> K) -> Vec<usize> {
    let mut v: Vec<usize> = set.iter().collect();
    v.sort_by_key(|&p| key(p));
    v.truncate(count as usize);
    v.sort();
    v
}

/// Positions of `set` picked by a deterministic hash of the step (a set a script might pass).
fn some_of(set: &TokenSet, step: usize, salt: usize) -> TokenSet {
    let mut s = set.clone();
    for p in set.iter() {
        if (p * 7 + step * 13 + salt).is_multiple_of(5) {
            s.remove(p);
        }
    }
    s
}

fn check(sim: &Sim, layer: usize, cache: &mut UsageCache, w: usize, k: usize, count: u64) {
    let n = sim.step;
    let p0 = sim.sizes.prefill;
    let set = some_of(sim.memory.present(layer), n, layer);
    let past: Vec<usize> = (n.saturating_sub(w).max(p0)..n).collect();
    let uses = |p: usize| -> usize {
        past.iter()
            .filter(|&&s| reads(sim, s, layer, p) || p == s)
            .count()
    };
    let last = |p: usize| -> i64 {
        past.iter()
            .rev()
            .find(|&&s| reads(sim, s, layer, p) || p == s)
            .map_or(-1, |&s| s as i64)
    };
    let end = sim.window.end();
    let next = |p: usize| -> usize {
        (n..=n + k)
            .take_while(|&s| s < end)
            .find(|&s| reads(sim, s, layer, p))
            .unwrap_or(usize::MAX)
    };
    let got = |s: TokenSet| s.iter().collect::<Vec<_>>();

    let want = first_by(&set, count, |p| (uses(p), p));
    let have = got(usage::least_frequent(sim, cache, &set, layer, w, count).unwrap());
    assert_eq!(have, want, "least_frequent at step {n} layer {layer} w {w}");

    let want = first_by(&set, count, |p| {
        (std::cmp::Reverse(uses(p)), std::cmp::Reverse(p))
    });
    let have = got(usage::most_frequent(sim, cache, &set, layer, w, count).unwrap());
    assert_eq!(have, want, "most_frequent at step {n} layer {layer} w {w}");

    let want = first_by(&set, count, |p| (last(p), p));
    let have = got(usage::least_recent(sim, &set, layer, w, count).unwrap());
    assert_eq!(have, want, "least_recent at step {n} layer {layer} w {w}");

    let want = first_by(&set, count, |p| (std::cmp::Reverse(next(p)), p));
    let have = got(usage::farthest_next_read(sim, &set, layer, k, count).unwrap());
    assert_eq!(
        have, want,
        "farthest_next_read at step {n} layer {layer} k {k}"
    );
}

/// A random trace in kvtrace text: per (step, layer), a layer skip, nothing, or skipped ranges.
fn trace_text(prefill: usize, decode: usize, layers: usize, picks: &[u32]) -> String {
    let mut t = format!("kvtrace 1 prefill={prefill} decode={decode} layers={layers}\n");
    let mut i = 0;
    let mut pick = || {
        i += 1;
        picks[i % picks.len()]
    };
    for step in prefill..prefill + decode {
        for l in 0..layers {
            match pick() % 6 {
                0 => t.push_str(&format!("{step} {l} layer\n")),
                1 => {}
                _ => {
                    let mut ranges = Vec::new();
                    let mut a = (pick() as usize) % step.max(1);
                    while a < step && ranges.len() < 4 {
                        let b = (a + 1 + (pick() as usize) % 4).min(step);
                        ranges.push(format!("{a}-{b}"));
                        a = b + 1 + (pick() as usize) % 5;
                    }
                    if !ranges.is_empty() {
                        t.push_str(&format!("{step} {l} {}\n", ranges.join(" ")));
                    }
                }
            }
        }
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn usage_verbs_match_their_definitions(
        prefill in 1usize..40,
        decode in 1usize..30,
        layers in 1usize..3,
        w in 1usize..20,
        k in 0usize..6,
        count in 0u64..12,
        picks in proptest::collection::vec(0u32..1000, 1..64),
    ) {
        let mut f = tiny_file();
        f.model.layers = layers as u64;
        f.model.params = 300.0 * layers as f64;
        f.workload.prefill = prefill as u64;
        f.workload.decode = decode as u64;
        f.policy.lookahead = 8;
        f.hbm.capacity = kvtier::scenario::ByteSize(1_000_000);
        let sc = build(f);
        let text = trace_text(prefill, decode, layers, &picks);
        let cache = Rc::new(RefCell::new(UsageCache::default()));
        let mut p = TestPolicy::fixed(Tier::Hbm);
        let c = cache.clone();
        p.on_layer = Some(Box::new(move |sim, l| {
            // Two windows per layer share the cache: both must slide correctly.
            check(sim, l, &mut c.borrow_mut(), w, k, count);
            check(sim, l, &mut c.borrow_mut(), w + 3, k, count + 1);
            Ok(())
        }));
        run_text(&sc, &mut p, &text);
    }
}
