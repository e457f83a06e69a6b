use super::*;

/// A set of `cap` positions from a seed (every position with probability ~1/2).
fn random(cap: usize, seed: u64) -> TokenSet {
    let mut r = crate::rng::Rng::new(seed);
    let mut s = TokenSet::new(cap);
    (0..cap)
        .filter(|_| r.next_u64() & 1 == 1)
        .for_each(|p| s.insert(p));
    s
}

proptest::proptest! {
    /// The kernels that take "the positions `0..end`" for a set (the present entries while
    /// they are a prefix) give what the general ones give with that set written out, for
    /// sets of different lengths and ends inside and past them.
    #[test]
    fn prefix_kernels_are_the_general_kernels_with_the_prefix_written_out(
        caps in proptest::array::uniform3(0usize..300),
        seed in proptest::prelude::any::<u64>(),
        end_at in 0usize..320,
        with_drop in proptest::prelude::any::<bool>(),
    ) {
        let [cs, ck, cd] = caps;
        let (set, other) = (random(cs, seed), random(cd, seed ^ 7));
        let drop = with_drop.then_some(&other);
        let end = end_at.min(ck);
        let keep = TokenSet::range(ck, 0, end);

        let mut want = set.clone();
        want.keep_minus(&keep, drop);
        let mut got = set.clone();
        got.keep_below_minus(end, drop);
        proptest::prop_assert_eq!(&got, &want);

        proptest::prop_assert_eq!(
            TokenSet::count_below_minus(&set, end, drop),
            TokenSet::count_and_minus(&set, &keep, drop)
        );

        let mut want = other.clone();
        want.union_and(&set, &keep);
        let mut got = other.clone();
        got.union_below(&set, end);
        proptest::prop_assert_eq!(&got, &want);

        // read_at's shape: present entries 0..m (`keep`), the step's skips `set`, cut at
        // the step (`end` here, at most m).
        let mut want = TokenSet::and_not(&keep, &set);
        want.truncate(end);
        proptest::prop_assert_eq!(TokenSet::not_below(&set, end, ck), want);
    }

    /// `combine` is the set built by `from_prefix` or `not_below`, then combined in place
    /// with a view the way `ctx.skipped_at(l, k) & ctx.hbm_set(l)` and the like are:
    /// sets of different lengths, cuts inside and past them.
    #[test]
    fn combine_is_the_built_set_then_the_view(
        caps in proptest::array::uniform3(0usize..300),
        seed in proptest::prelude::any::<u64>(),
        end_at in 0usize..320,
        cut_at in 0usize..320,
    ) {
        let [cs, co, c] = caps;
        let (src, o) = (random(cs, seed), random(co, seed ^ 7));
        let from = || TokenSet::from_prefix(&src, c);
        let not_below = || TokenSet::not_below(&src, end_at, c);
        let mut want = from();
        want.intersect_with(&o);
        proptest::prop_assert_eq!(TokenSet::combine(&src, false, Some((&o, false)), c, c), want);
        let mut want = from();
        want.subtract(&o);
        proptest::prop_assert_eq!(TokenSet::combine(&src, false, Some((&o, true)), c, c), want);
        let mut want = from();
        want.keep_below_minus(cut_at, Some(&o));
        proptest::prop_assert_eq!(TokenSet::combine(&src, false, Some((&o, true)), cut_at, c), want);
        let mut want = from();
        want.keep_below_minus(cut_at, None);
        proptest::prop_assert_eq!(TokenSet::combine(&src, false, None, cut_at, c), want);
        proptest::prop_assert_eq!(TokenSet::combine(&src, true, None, end_at, c), not_below());
        let mut want = not_below();
        want.intersect_with(&o);
        proptest::prop_assert_eq!(TokenSet::combine(&src, true, Some((&o, false)), end_at, c), want);
        let mut want = not_below();
        want.subtract(&o);
        proptest::prop_assert_eq!(TokenSet::combine(&src, true, Some((&o, true)), end_at, c), want);
        let mut want = not_below();
        want.keep_below_minus(cut_at, Some(&o));
        proptest::prop_assert_eq!(
            TokenSet::combine(&src, true, Some((&o, true)), end_at.min(cut_at), c),
            want
        );
    }

    /// Every kernel that runs through [`wide`] gives the same result with the baseline
    /// copies as with the AVX2 ones (where this CPU has them): sets up to 47 words, so
    /// that the vector loops run whole and with every remainder.
    #[test]
    fn the_wide_kernels_equal_the_baseline_ones(
        caps in proptest::array::uniform3(0usize..3000),
        seed in proptest::prelude::any::<u64>(),
        end_at in 0usize..3100,
    ) {
        let [ca, cb, cc] = caps;
        let (a, b, c) = (random(ca, seed), random(cb, seed ^ 7), random(cc, seed ^ 11));
        let end = end_at;
        let all = || {
            let mut outs = vec![
                TokenSet::and_not(&a, &b),
                TokenSet::and_minus(&a, &b, Some(&c)),
                TokenSet::and_minus(&a, &b, None),
                TokenSet::not_below(&a, end, cb),
                TokenSet::combine(&a, false, Some((&b, false)), end, cc),
                TokenSet::combine(&a, true, Some((&b, true)), end, cc),
                TokenSet::combine(&a, true, None, end, cb),
            ];
            let mut x = a.clone();
            x.keep_minus(&b, Some(&c));
            outs.push(x);
            let mut x = a.clone();
            x.keep_below_minus(end, Some(&b));
            outs.push(x);
            let mut x = a.clone();
            x.union_below(&b, end);
            outs.push(x);
            let mut x = a.clone();
            x.union_and(&b, &c);
            outs.push(x);
            let mut x = a.clone();
            x.subtract_minus(&b, Some(&c));
            outs.push(x);
            let mut x = a.clone();
            x.union_with(&b);
            outs.push(x);
            let mut x = a.clone();
            x.intersect_with(&b);
            outs.push(x);
            let mut x = a.clone();
            x.subtract(&b);
            outs.push(x);
            let counts = vec![
                a.count(),
                a.count_below(end),
                TokenSet::count_and_minus(&a, &b, Some(&c)),
                TokenSet::count_and_minus(&a, &b, None),
                TokenSet::count_below_minus(&a, end, Some(&b)),
                TokenSet::count_below_minus(&a, end, None),
            ];
            // The engine's reads: residency sets as long as the present ones.
            let h = random(ca, seed ^ 13);
            let reads = (
                crate::memory::reads_by_word(a.words(), h.words(), c.words(), end),
                crate::memory::reads_of_prefix(end.min(ca), h.words(), &c, c.count()),
            );
            (outs, counts, reads)
        };
        let baseline = wide::at_level(1, all);
        proptest::prop_assert_eq!(wide::at_level(2, all), baseline.clone());
        proptest::prop_assert_eq!(wide::at_level(3, all), baseline);
    }
}

#[test]
fn keeping_the_newest_or_oldest_equals_taking_from_the_iterators() {
    for (cap, seed) in [(1, 1), (64, 2), (130, 3), (1000, 4), (4097, 5)] {
        let s = random(cap, seed);
        let total = s.count();
        for n in [
            0,
            1,
            2,
            63,
            64,
            65,
            total / 2,
            total.saturating_sub(1),
            total,
            total + 7,
        ] {
            let mut newest = s.clone();
            newest.keep_newest(n);
            let want: Vec<usize> = s.iter_rev().take(n as usize).collect();
            assert_eq!(
                newest.iter_rev().collect::<Vec<_>>(),
                want,
                "newest {cap} {n}"
            );
            let mut oldest = s.clone();
            oldest.keep_oldest(n);
            let want: Vec<usize> = s.iter().take(n as usize).collect();
            assert_eq!(oldest.iter().collect::<Vec<_>>(), want, "oldest {cap} {n}");
        }
    }
}

#[test]
fn fused_passes_equal_their_steps() {
    // Capacities that end inside a word and sets of different lengths, as skip sets (sized
    // to the step) against residency sets (sized to the run).
    for (ca, cb, cc) in [
        (200, 130, 200),
        (130, 200, 64),
        (64, 64, 1),
        (1000, 999, 37),
    ] {
        let (a, b, c) = (random(ca, 1), random(cb, 2), random(cc, 3));
        let mut slow = a.clone();
        slow.subtract(&b);
        assert_eq!(TokenSet::and_not(&a, &b), slow, "and_not {ca} {cb}");
        let mut fast = a.clone();
        fast.keep_minus(&b, Some(&c));
        let mut slow = a.clone();
        slow.intersect_with(&b);
        slow.subtract(&c);
        assert_eq!(fast, slow, "keep_minus {ca} {cb} {cc}");
        assert_eq!(
            TokenSet::and_minus(&a, &b, Some(&c)),
            slow,
            "and_minus {ca} {cb} {cc}"
        );
        let mut fast = a.clone();
        fast.keep_minus(&b, None);
        let mut slow = a.clone();
        slow.intersect_with(&b);
        assert_eq!(fast, slow, "keep {ca} {cb}");
        assert_eq!(TokenSet::and_minus(&a, &b, None), slow, "and {ca} {cb}");
    }
}

#[test]
fn counted_and_in_place_passes_equal_a_built_set() {
    // Every order of three lengths (one ending inside a word), with and without `drop`.
    let caps = [
        (200, 130, 70),
        (130, 200, 64),
        (64, 64, 1),
        (1000, 999, 1037),
    ];
    for (ca, cb, cc) in caps {
        let (a, b, c, t) = (random(ca, 1), random(cb, 2), random(cc, 3), random(ca, 4));
        for drop in [Some(&c), None] {
            let built = TokenSet::and_minus(&a, &b, drop);
            let what = format!("{ca} {cb} {cc} {}", drop.is_some());
            assert_eq!(
                TokenSet::count_and_minus(&a, &b, drop),
                built.count(),
                "{what}"
            );
            // `set - drop` is `set & set - drop`.
            let (mut fast, mut slow) = (t.clone(), t.clone());
            fast.subtract_minus(&b, drop);
            slow.subtract(&TokenSet::and_minus(&b, &b, drop));
            assert_eq!(fast, slow, "subtract {what}");
        }
        let (mut fast, mut slow) = (t.clone(), t.clone());
        fast.union_and(&a, &b);
        slow.union_with(&TokenSet::and_minus(&a, &b, None));
        assert_eq!(fast, slow, "union {ca} {cb}");
    }
}

#[test]
fn ranges_span_word_boundaries() {
    let mut s = TokenSet::new(200);
    s.insert_range(60, 130);
    s.insert(199);
    assert_eq!(s.count(), 71);
    assert_eq!(s.ranges(), vec![(60, 130), (199, 200)]);
    s.remove_range(64, 128);
    assert_eq!(s.ranges(), vec![(60, 64), (128, 130), (199, 200)]);
    assert_eq!(s.count_below(129), 5);
}

#[test]
fn iter_rev_is_newest_first() {
    let mut s = TokenSet::new(130);
    for p in [0, 5, 64, 129] {
        s.insert(p);
    }
    assert_eq!(s.iter_rev().collect::<Vec<_>>(), vec![129, 64, 5, 0]);
    assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 5, 64, 129]);
}

#[test]
fn range_counts_and_neighbours() {
    let mut s = TokenSet::new(300);
    for p in [3, 63, 64, 130, 299] {
        s.insert(p);
    }
    assert_eq!(s.count_in(0, 64), 2);
    assert_eq!(s.count_in(63, 131), 3);
    assert_eq!(s.count_in(131, 299), 0);
    assert_eq!(s.count_in(0, 1000), 5);
    assert_eq!(s.next_from(4), Some(63));
    assert_eq!(s.next_from(65), Some(130));
    assert_eq!(s.next_from(300), None);
    assert_eq!(s.prev_below(130), Some(64));
    assert_eq!(s.prev_below(64), Some(63));
    assert_eq!(s.prev_below(3), None);
    assert_eq!(s.prev_below(1000), Some(299));
    let mut t = TokenSet::new(300);
    t.union_range(&s, 60, 131);
    assert_eq!(t.iter().collect::<Vec<_>>(), vec![63, 64, 130]);
}

#[test]
fn set_algebra_with_shorter_operand() {
    let a = TokenSet::range(256, 0, 200);
    let b = TokenSet::range(70, 10, 70);
    let mut i = a.clone();
    i.intersect_with(&b);
    assert_eq!(i.ranges(), vec![(10, 70)]);
    let mut d = a.clone();
    d.subtract(&b);
    assert_eq!(d.ranges(), vec![(0, 10), (70, 200)]);
}

/// A set built in the buffer of a set given back (here one full of ones, and larger) holds its
/// own words only.
#[test]
fn a_set_built_in_a_recycled_buffer_holds_only_its_own_words() {
    let mut old = TokenSet::range(5000, 0, 5000);
    old.recycle();
    assert_eq!((old.capacity(), old.words().len()), (0, 0));
    let (a, b) = (random(3000, 1), random(3000, 2));
    let built = TokenSet::combine(&a, false, Some((&b, false)), 3000, 3000);
    let mut want = a.clone();
    want.intersect_with(&b);
    assert_eq!(built, want);
}
