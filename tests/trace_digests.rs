//! The synthetic generators stay bit-identical: for a matrix of generator settings, a digest of
//! every generated step (flags, counts and the words of each skipped set) is pinned in
//! `tests/trace_digests.txt`. The digests were computed by this test on the generator as it was
//! before its speed work (commit 17af559), by running it with `KVTIER_TRACE_DIGESTS_OUT=FILE`;
//! they are never regenerated from later code, so any change to a generated trace fails here
//! (and would move every shipped study's numbers).

mod common;

use std::collections::BTreeMap;

use common::repo;
use kvtier::digest::Fnv;
use kvtier::scenario::Scenario;
use kvtier::trace::{self, StepSkips};

/// A scenario of `layers` layers, `prefill` + `decode` positions, with this `[skip]` body.
fn scenario(layers: u64, prefill: u64, decode: u64, skip: &str) -> Scenario {
    let text = format!(
        "name = \"digest\"\nseed = 7\n\
         [model]\nlayers = {layers}\nparams = 1e9\ndtype_bytes = 2\nkv_bytes = \"1 KB\"\n\
         [workload]\nprefill = {prefill}\ndecode = {decode}\n\
         [hbm]\ncapacity = 1000\nbandwidth = 3000\n\
         [ext]\nlink_bandwidth = 100\ninternal_bandwidth = 200\n\
         [skip]\n{skip}\n"
    );
    Scenario::from_toml(&text, None).unwrap_or_else(|e| panic!("{skip}: {e:#}"))
}

/// The generator settings pinned, by name.
fn cases() -> Vec<(&'static str, Scenario)> {
    let hh = "source = \"heavy_hitter\"";
    vec![
        ("hh-default", scenario(8, 3000, 48, &format!("{hh}\nrate = 0.3"))),
        ("hh-calibrated", scenario(8, 3000, 48, &format!("{hh}\nprofile = \"calibrated\""))),
        (
            "hh-page8-keep09",
            scenario(8, 3000, 48, &format!("{hh}\nrate = 0.4\npage = 8\nkeep = 0.9\nsinks = 10\nrecent = 100")),
        ),
        ("hh-page64", scenario(6, 4000, 40, &format!("{hh}\nrate = 0.5\npage = 64"))),
        ("hh-page100", scenario(6, 4000, 40, &format!("{hh}\nrate = 0.5\npage = 100\nsinks = 130"))),
        ("hh-page2", scenario(4, 1000, 40, &format!("{hh}\nrate = 0.5\npage = 2\nkeep = 0.5"))),
        (
            "hh-young",
            scenario(6, 2000, 64, &format!("{hh}\nrate = 0.3\npage = 32\nyoung_skip = 0.2\nyoung_window = 8")),
        ),
        (
            "hh-capped",
            scenario(6, 2000, 32, &format!("{hh}\nrate = 0.9\ndepth_spread = 1.0\ndense_layers = 0")),
        ),
        (
            "hh-flags",
            scenario(6, 2000, 32, &format!("{hh}\nrate = 0.3\nlayer_skip_rate = 0.1\nmlp_skip_rate = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]")),
        ),
        ("hh-short-prefill", scenario(4, 5, 200, &format!("{hh}\nrate = 0.5"))),
        ("hh-seed-size", scenario(32, 30000, 6, &format!("{hh}\nrate = 0.3"))),
        ("uniform-03", scenario(6, 2000, 32, "source = \"uniform\"\nrate = 0.3\nlayer_skip_rate = 0.1\nmlp_skip_rate = 0.2")),
        ("uniform-odd", scenario(4, 1001, 33, "source = \"uniform\"\nrate = 0.123456")),
        ("none-flags", scenario(4, 100, 20, "source = \"none\"\nlayer_skip_rate = 0.3\nmlp_skip_rate = 0.3")),
    ]
}

/// Digest of every step of a generated trace, and how many entries it skips in all: as one
/// generator makes it (`direct`) or as a run reads it (`trace::open`: read ahead on other
/// threads, a large one made by two generators of half the layers each).
fn digest(sc: &Scenario, direct: bool) -> String {
    let mut src = if direct {
        trace::open_direct(sc).unwrap()
    } else {
        trace::open(sc).unwrap()
    };
    let mut step = StepSkips::default();
    let mut h = Fnv::new();
    let mut skipped = 0u64;
    for _ in 0..src.dims().decode {
        src.next_step(&mut step).unwrap();
        h.add(&(step.step as u64).to_le_bytes());
        for l in &step.layers {
            assert_eq!(
                l.token_count,
                l.tokens.count(),
                "count kept by the producer"
            );
            assert_eq!(l.tokens.capacity(), step.step, "capacity is the step");
            h.add(&[l.layer as u8, l.mlp as u8]);
            h.add(&l.token_count.to_le_bytes());
            for w in l.tokens.words() {
                h.add(&w.to_le_bytes());
            }
            skipped += l.token_count;
        }
    }
    format!("{} skipped={skipped}", h.hex())
}

#[test]
fn generated_traces_are_unchanged() {
    let cases = cases();
    let got: BTreeMap<&str, String> = cases.iter().map(|(n, sc)| (*n, digest(sc, true))).collect();
    for (name, sc) in &cases {
        assert_eq!(
            digest(sc, false),
            got[name],
            "case {name}: a run reads another trace"
        );
    }
    if let Ok(out) = std::env::var("KVTIER_TRACE_DIGESTS_OUT") {
        let text: String = got.iter().map(|(n, d)| format!("{n} {d}\n")).collect();
        std::fs::write(out, text).unwrap();
        return;
    }
    let pinned = std::fs::read_to_string(repo().join("tests/trace_digests.txt")).unwrap();
    let want: BTreeMap<&str, String> = pinned
        .lines()
        .map(|l| l.split_once(' ').expect("name digest"))
        .map(|(n, d)| (n, d.to_string()))
        .collect();
    assert_eq!(
        got.len(),
        want.len(),
        "cases and pinned digests differ in number"
    );
    for (name, d) in &got {
        assert_eq!(Some(d), want.get(name), "trace of case {name} changed");
    }
}

#[test]
fn a_long_context_generated_by_two_threads_is_the_same_trace() {
    // 8 layers x 1,048,579 positions is past the size at which `trace::open` splits the layers
    // between two generator threads (2^23 layer-positions), which the cases above are not.
    let sc = scenario(
        8,
        1 << 20,
        3,
        "source = \"heavy_hitter\"\nrate = 0.4\nyoung_skip = 0.1",
    );
    assert_eq!(digest(&sc, false), digest(&sc, true));
}
