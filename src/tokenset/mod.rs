//! `TokenSet`: a set of token positions as a bitset of `u64` words.
//!
//! This is the one representation of "which positions" used everywhere: residency in
//! [`crate::memory`], skip sets in [`crate::trace`], and the sets policies move. It owns no notion
//! of layers, tiers or bytes; it only answers set questions fast (word-wise, popcount).
//!
//! A set has a fixed capacity in bits (positions `0..capacity`); operations between two sets use
//! the shorter one's words and treat missing words as zero, so a skip set sized to the current
//! step can be combined with a residency set sized to the whole run.

mod wide;

use std::fmt;

pub(crate) use wide::wide;

/// A set of positions `0..capacity`, one bit per position.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct TokenSet {
    words: Vec<u64>,
    capacity: usize,
}

#[inline]
fn words_for(bits: usize) -> usize {
    bits.div_ceil(64)
}

thread_local! {
    /// Word buffers of sets given back ([`TokenSet::recycle`]), for the next sets this thread
    /// builds: the sets a hook builds and drops on every call are kilobytes each, beyond the
    /// allocator's per-thread cache, so each took a trip through its shared bins.
    static SPARE: std::cell::RefCell<Vec<Vec<u64>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Most buffers [`SPARE`] keeps.
const SPARE_MAX: usize = 8;

/// An empty word buffer with room for `n` words, a spare one when this thread has one.
fn buffer(n: usize) -> Vec<u64> {
    match SPARE.with(|s| s.borrow_mut().pop()) {
        Some(mut v) => {
            v.clear();
            v.reserve(n);
            v
        }
        None => Vec::with_capacity(n),
    }
}

impl TokenSet {
    /// An empty set able to hold positions `0..capacity`.
    pub fn new(capacity: usize) -> Self {
        TokenSet {
            words: vec![0; words_for(capacity)],
            capacity,
        }
    }

    /// The set `start..end` (half-open) with room for `capacity` positions.
    pub fn range(capacity: usize, start: usize, end: usize) -> Self {
        let mut set = TokenSet::new(capacity);
        set.insert_range(start, end);
        set
    }

    /// Empties the set (capacity 0) and keeps its words' buffer for a set this thread builds
    /// next.
    pub fn recycle(&mut self) {
        let words = std::mem::take(&mut self.words);
        self.capacity = 0;
        if words.capacity() > 0 {
            SPARE.with(|s| {
                let mut s = s.borrow_mut();
                if s.len() < SPARE_MAX {
                    s.push(words);
                }
            });
        }
    }

    /// Number of positions the set can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The raw words (bit `i % 64` of word `i / 64` is position `i`).
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Mutable raw words, for generators that build sets a word at a time. Bits at or past
    /// `capacity` must stay zero.
    pub fn words_mut(&mut self) -> &mut [u64] {
        &mut self.words
    }

    /// Empties the set and changes its capacity, reusing the allocation.
    pub fn reset(&mut self, capacity: usize) {
        self.words.clear();
        self.words.resize(words_for(capacity), 0);
        self.capacity = capacity;
    }

    /// Makes room for a capacity of `capacity` positions without changing the set, so that
    /// later resets up to it do not reallocate.
    pub fn reserve_room(&mut self, capacity: usize) {
        let n = words_for(capacity);
        if self.words.capacity() < n {
            self.words.reserve_exact(n - self.words.len());
        }
    }

    /// The positions of `src` below `capacity`, in a set of that capacity (one pass).
    pub fn from_prefix(src: &TokenSet, capacity: usize) -> TokenSet {
        let n = words_for(capacity);
        let mut words = Vec::with_capacity(n);
        words.extend_from_slice(&src.words[..n.min(src.words.len())]);
        words.resize(n, 0);
        let mut set = TokenSet { words, capacity };
        set.clear_tail();
        set
    }

    /// `(src ^ invert) & (other ^ negate)` at the positions below `end`, as a new set of
    /// `capacity` positions, in one pass: a word past the end of `src` or `other` reads as
    /// empty (so a negated one as full), and no `other` is full. So `from_prefix(src, c)`
    /// then `intersect_with(o)`, `subtract(o)` or `keep_below_minus(e, Some(o))` is
    /// `combine(src, false, Some((o, false)), c, c)`, `combine(src, false, Some((o, true)), c,
    /// c)` or `combine(src, false, Some((o, true)), e, c)`; `not_below(src, end, c)` is
    /// `combine(src, true, None, end, c)`.
    pub fn combine(
        src: &TokenSet,
        invert: bool,
        other: Option<(&TokenSet, bool)>,
        end: usize,
        capacity: usize,
    ) -> TokenSet {
        let flip = |on: bool| if on { u64::MAX } else { 0 };
        let inv = flip(invert);
        let end = end.min(capacity);
        let full = end / 64;
        let s = &src.words[..full.min(src.words.len())];
        let mut words = buffer(words_for(capacity));
        // The words below `full` that both sets have, vectorized (allocation outside).
        match other {
            Some((o, negate)) => {
                let neg = flip(negate);
                let m = s.len().min(o.words.len());
                let (s, o) = (&s[..m], &o.words[..m]);
                wide(|| words.extend(s.iter().zip(o).map(|(a, b)| (a ^ inv) & (b ^ neg))));
            }
            None => wide(|| words.extend(s.iter().map(|a| a ^ inv))),
        }
        // Then the full words past either set, and the one cut at `end`.
        let word = |i: usize| {
            let a = src.words.get(i).copied().unwrap_or(0) ^ inv;
            let b = other.map_or(u64::MAX, |(o, negate)| {
                o.words.get(i).copied().unwrap_or(0) ^ flip(negate)
            });
            a & b
        };
        while words.len() < full {
            words.push(word(words.len()));
        }
        if !end.is_multiple_of(64) {
            words.push(word(full) & mask_bits(0, end % 64));
        }
        words.resize(words_for(capacity), 0);
        TokenSet { words, capacity }
    }

    /// `a - b` as a new set of `a`'s capacity (one pass).
    pub fn and_not(a: &TokenSet, b: &TokenSet) -> TokenSet {
        // Slices of equal length (not a chain padding `b` with zeros), so the loop vectorizes;
        // the allocation outside the loop's `wide` closure, which is then small enough to be
        // inlined into the AVX2 copy.
        let n = a.words.len().min(b.words.len());
        let mut words = Vec::with_capacity(a.words.len());
        wide(|| words.extend(a.words[..n].iter().zip(&b.words[..n]).map(|(x, y)| x & !y)));
        words.extend_from_slice(&a.words[n..]);
        TokenSet {
            words,
            capacity: a.capacity,
        }
    }

    /// `self &= keep - drop` (one pass; missing words of `keep` are empty, of `drop` empty).
    pub fn keep_minus(&mut self, keep: &TokenSet, drop: Option<&TokenSet>) {
        wide(|| {
            // Slices of equal length (not chains padded with zeros), so the loops vectorize.
            let n = self.words.len().min(keep.words.len());
            let (head, tail) = self.words.split_at_mut(n);
            tail.fill(0);
            let keep = &keep.words[..n];
            let m = drop.map_or(0, |d| n.min(d.words.len()));
            if let Some(d) = drop {
                for ((w, k), d) in head[..m].iter_mut().zip(&keep[..m]).zip(&d.words[..m]) {
                    *w &= k & !d;
                }
            }
            for (w, k) in head[m..].iter_mut().zip(&keep[m..]) {
                *w &= k;
            }
        })
    }

    /// `set & keep - drop` as a new set of `set`'s capacity: what a copy of `set` then
    /// [`TokenSet::keep_minus`] gives, in one pass instead of a copy and a pass.
    pub fn and_minus(set: &TokenSet, keep: &TokenSet, drop: Option<&TokenSet>) -> TokenSet {
        let n = set.words.len().min(keep.words.len());
        let (s, k) = (&set.words[..n], &keep.words[..n]);
        let m = drop.map_or(0, |d| n.min(d.words.len()));
        let mut words = Vec::with_capacity(set.words.len());
        if let Some(d) = drop {
            let both = s[..m].iter().zip(&k[..m]).zip(&d.words[..m]);
            wide(|| words.extend(both.map(|((w, k), d)| w & k & !d)));
        }
        wide(|| words.extend(s[m..].iter().zip(&k[m..]).map(|(w, k)| w & k)));
        words.resize(set.words.len(), 0);
        TokenSet {
            words,
            capacity: set.capacity,
        }
    }

    /// `(set & keep - drop).count()`, without building the set.
    pub fn count_and_minus(set: &TokenSet, keep: &TokenSet, drop: Option<&TokenSet>) -> u64 {
        wide(|| {
            let n = set.words.len().min(keep.words.len());
            let (s, k) = (&set.words[..n], &keep.words[..n]);
            let m = drop.map_or(0, |d| n.min(d.words.len()));
            let mut ones = 0u64;
            if let Some(d) = drop {
                let both = s[..m].iter().zip(&k[..m]).zip(&d.words[..m]);
                ones += both
                    .map(|((w, k), d)| u64::from((w & k & !d).count_ones()))
                    .sum::<u64>();
            }
            ones + s[m..]
                .iter()
                .zip(&k[m..])
                .map(|(w, k)| u64::from((w & k).count_ones()))
                .sum::<u64>()
        })
    }

    /// The positions below `end` that are not in `src`, as a set of `capacity` positions:
    /// `TokenSet::range(capacity, 0, end)` less `src` in one pass over `src` alone (a word past
    /// `src`'s end is empty). What `and_not(present, src)` truncated at `end` is while the
    /// present entries are the positions `0..m`, `m >= end`.
    pub fn not_below(src: &TokenSet, end: usize, capacity: usize) -> TokenSet {
        let end = end.min(capacity);
        let full = end / 64;
        let s = &src.words[..full.min(src.words.len())];
        let mut words = Vec::with_capacity(words_for(capacity));
        wide(|| words.extend(s.iter().map(|w| !w)));
        words.resize(full, u64::MAX);
        if !end.is_multiple_of(64) {
            let w = src.words.get(full).copied().unwrap_or(0);
            words.push(!w & mask_bits(0, end % 64));
        }
        words.resize(words_for(capacity), 0);
        TokenSet { words, capacity }
    }

    /// `self &= (0..end) - drop`: [`TokenSet::keep_minus`] with `keep` the positions `0..end`,
    /// without reading them.
    pub fn keep_below_minus(&mut self, end: usize, drop: Option<&TokenSet>) {
        wide(|| {
            let full = (end / 64).min(self.words.len());
            let (head, tail) = self.words.split_at_mut(full);
            if let Some(d) = drop {
                let m = full.min(d.words.len());
                for (w, d) in head[..m].iter_mut().zip(&d.words[..m]) {
                    *w &= !d;
                }
            }
            if let Some((partial, rest)) = tail.split_first_mut() {
                let dropped = drop.and_then(|d| d.words.get(full)).copied().unwrap_or(0);
                *partial &= mask_bits(0, end % 64) & !dropped;
                rest.fill(0);
            }
        })
    }

    /// `(set & (0..end) - drop).count()`: [`TokenSet::count_and_minus`] with `keep` the
    /// positions `0..end`, without reading them.
    pub fn count_below_minus(set: &TokenSet, end: usize, drop: Option<&TokenSet>) -> u64 {
        wide(|| {
            let full = (end / 64).min(set.words.len());
            let s = &set.words[..full];
            let mut ones = match drop {
                Some(d) => {
                    let m = full.min(d.words.len());
                    let both = s[..m].iter().zip(&d.words[..m]);
                    both.map(|(w, d)| u64::from((w & !d).count_ones()))
                        .sum::<u64>()
                        + s[m..]
                            .iter()
                            .map(|w| u64::from(w.count_ones()))
                            .sum::<u64>()
                }
                None => s.iter().map(|w| u64::from(w.count_ones())).sum::<u64>(),
            };
            if let Some(&w) = set.words.get(full) {
                let dropped = drop.and_then(|d| d.words.get(full)).copied().unwrap_or(0);
                ones += u64::from((w & mask_bits(0, end % 64) & !dropped).count_ones());
            }
            ones
        })
    }

    /// `self |= set & (0..end)`: [`TokenSet::union_and`] with `keep` the positions `0..end`,
    /// without reading them.
    pub fn union_below(&mut self, set: &TokenSet, end: usize) {
        wide(|| {
            let n = self.words.len().min(set.words.len());
            let full = (end / 64).min(n);
            for (o, w) in self.words[..full].iter_mut().zip(&set.words[..full]) {
                *o |= w;
            }
            if full < n {
                self.words[full] |= set.words[full] & mask_bits(0, end % 64);
            }
            self.clear_tail();
        })
    }

    /// `self |= set & keep` in one pass (no set built for the right side).
    pub fn union_and(&mut self, set: &TokenSet, keep: &TokenSet) {
        wide(|| {
            let n = self.words.len().min(set.words.len()).min(keep.words.len());
            let (o, s, k) = (&mut self.words[..n], &set.words[..n], &keep.words[..n]);
            for ((o, w), k) in o.iter_mut().zip(s).zip(k) {
                *o |= w & k;
            }
            self.clear_tail();
        })
    }

    /// `self -= set - drop` in one pass.
    pub fn subtract_minus(&mut self, set: &TokenSet, drop: Option<&TokenSet>) {
        wide(|| {
            let n = self.words.len().min(set.words.len());
            let (o, s) = (&mut self.words[..n], &set.words[..n]);
            let m = drop.map_or(0, |d| n.min(d.words.len()));
            if let Some(d) = drop {
                for ((o, w), d) in o[..m].iter_mut().zip(&s[..m]).zip(&d.words[..m]) {
                    *o &= !(w & !d);
                }
            }
            for (o, w) in o[m..].iter_mut().zip(&s[m..]) {
                *o &= !w;
            }
        })
    }

    /// Makes this set the positions of `src` below `capacity` (a copy of words, reusing the
    /// allocation).
    pub fn copy_prefix(&mut self, src: &TokenSet, capacity: usize) {
        let n = words_for(capacity);
        self.words.clear();
        self.words.extend_from_slice(&src.words[..n]);
        self.capacity = capacity;
        self.clear_tail();
    }

    /// Removes every position, keeping the capacity.
    pub fn clear(&mut self) {
        self.words.iter_mut().for_each(|w| *w = 0);
    }

    #[inline]
    pub fn contains(&self, pos: usize) -> bool {
        pos < self.capacity && (self.words[pos / 64] >> (pos % 64)) & 1 == 1
    }

    /// Adds `pos`. Panics if `pos >= capacity` (an engine bug, never user input).
    #[inline]
    pub fn insert(&mut self, pos: usize) {
        assert!(
            pos < self.capacity,
            "position {pos} outside set of capacity {}",
            self.capacity
        );
        self.words[pos / 64] |= 1 << (pos % 64);
    }

    /// Flips `pos` in or out of the set. Panics if `pos >= capacity`.
    #[inline]
    pub fn toggle(&mut self, pos: usize) {
        debug_assert!(pos < self.capacity);
        self.words[pos / 64] ^= 1 << (pos % 64);
    }

    #[inline]
    pub fn remove(&mut self, pos: usize) {
        if pos < self.capacity {
            self.words[pos / 64] &= !(1 << (pos % 64));
        }
    }

    /// Adds every position in `start..end` (clamped to the capacity).
    pub fn insert_range(&mut self, start: usize, end: usize) {
        self.for_range_words(start, end, |w, m| *w |= m);
    }

    /// Flips every position in `start..end` (clamped to the capacity).
    pub fn toggle_range(&mut self, start: usize, end: usize) {
        self.for_range_words(start, end, |w, m| *w ^= m);
    }

    /// Changes the capacity keeping the positions below the new one.
    pub fn set_capacity(&mut self, capacity: usize) {
        self.words.resize(words_for(capacity), 0);
        self.capacity = capacity;
        self.clear_tail();
    }

    /// Removes every position in `start..end` (clamped to the capacity).
    pub fn remove_range(&mut self, start: usize, end: usize) {
        self.for_range_words(start, end, |w, m| *w &= !m);
    }

    /// Number of positions in the set.
    pub fn count(&self) -> u64 {
        wide(|| self.words.iter().map(|w| w.count_ones() as u64).sum())
    }

    /// Number of positions below `end`.
    pub fn count_below(&self, end: usize) -> u64 {
        wide(|| {
            let end = end.min(self.capacity);
            let full = end / 64;
            let mut n: u64 = self.words[..full]
                .iter()
                .map(|w| w.count_ones() as u64)
                .sum();
            if !end.is_multiple_of(64) {
                n += (self.words[full] & mask_bits(0, end % 64)).count_ones() as u64;
            }
            n
        })
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// Number of positions in `start..end` (clamped to the capacity).
    pub fn count_in(&self, start: usize, end: usize) -> u64 {
        range_words(start, end.min(self.capacity))
            .map(|(w, mask)| u64::from((self.words[w] & mask).count_ones()))
            .sum()
    }

    /// The lowest position at or after `from`, if any.
    pub fn next_from(&self, from: usize) -> Option<usize> {
        if from >= self.capacity {
            return None;
        }
        let mut i = from / 64;
        let mut w = self.words[i] & !((1u64 << (from % 64)) - 1);
        loop {
            if w != 0 {
                return Some(i * 64 + w.trailing_zeros() as usize);
            }
            i += 1;
            if i >= self.words.len() {
                return None;
            }
            w = self.words[i];
        }
    }

    /// The highest position below `before`, if any.
    pub fn prev_below(&self, before: usize) -> Option<usize> {
        let before = before.min(self.capacity);
        if before == 0 {
            return None;
        }
        let mut i = (before - 1) / 64;
        let mut w = self.words[i] & mask_bits(0, (before - 1) % 64 + 1);
        loop {
            if w != 0 {
                return Some(i * 64 + 63 - w.leading_zeros() as usize);
            }
            if i == 0 {
                return None;
            }
            i -= 1;
            w = self.words[i];
        }
    }

    /// `self |= other & (start..end)`.
    pub fn union_range(&mut self, other: &TokenSet, start: usize, end: usize) {
        let end = end.min(self.capacity).min(other.capacity);
        for (w, mask) in range_words(start, end) {
            self.words[w] |= other.words[w] & mask;
        }
    }

    /// `self |= other`.
    pub fn union_with(&mut self, other: &TokenSet) {
        wide(|| {
            for (a, b) in self.words.iter_mut().zip(&other.words) {
                *a |= b;
            }
            self.clear_tail();
        })
    }

    /// `self &= other` (positions past `other`'s capacity are removed).
    pub fn intersect_with(&mut self, other: &TokenSet) {
        wide(|| {
            let n = other.words.len().min(self.words.len());
            for (a, b) in self.words[..n].iter_mut().zip(&other.words) {
                *a &= b;
            }
            self.words[n..].iter_mut().for_each(|w| *w = 0);
        })
    }

    /// `self -= other`.
    pub fn subtract(&mut self, other: &TokenSet) {
        wide(|| {
            for (a, b) in self.words.iter_mut().zip(&other.words) {
                *a &= !b;
            }
        })
    }

    /// Keeps the `n` highest positions (all when there are fewer): what
    /// `iter_rev().take(n)` visits, a word at a time.
    pub fn keep_newest(&mut self, n: u64) {
        let mut left = n;
        let mut words = self.words.iter_mut().rev();
        for w in words.by_ref() {
            let ones = u64::from(w.count_ones());
            if ones <= left {
                left -= ones;
                continue;
            }
            // Clear the lowest `ones - left` bits of this word, then every lower word.
            for _ in 0..ones - left {
                *w &= *w - 1;
            }
            break;
        }
        words.for_each(|w| *w = 0);
    }

    /// Keeps the `n` lowest positions (all when there are fewer): what `iter().take(n)`
    /// visits, a word at a time.
    pub fn keep_oldest(&mut self, n: u64) {
        let mut left = n;
        let mut words = self.words.iter_mut();
        for w in words.by_ref() {
            let ones = u64::from(w.count_ones());
            if ones <= left {
                left -= ones;
                continue;
            }
            // Keep the lowest `left` bits of this word, then clear every higher word.
            let mut rest = *w;
            for _ in 0..left {
                rest &= rest - 1;
            }
            *w &= !rest;
            break;
        }
        words.for_each(|w| *w = 0);
    }

    /// Keeps only positions below `end`.
    pub fn truncate(&mut self, end: usize) {
        self.remove_range(end, self.capacity);
    }

    /// Iterates positions in increasing order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| BitIter {
            word: w,
            base: i * 64,
        })
    }

    /// Iterates positions in decreasing order (newest first).
    pub fn iter_rev(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().rev().flat_map(|(i, &w)| {
            BitIter {
                word: w,
                base: i * 64,
            }
            .rev()
        })
    }

    /// Maximal runs of consecutive positions as half-open ranges, in increasing order.
    pub fn ranges(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut open: Option<usize> = None;
        let mut last = 0;
        for p in self.iter() {
            match open {
                Some(_) if p == last + 1 => {}
                Some(s) => {
                    out.push((s, last + 1));
                    open = Some(p);
                }
                None => open = Some(p),
            }
            last = p;
        }
        if let Some(s) = open {
            out.push((s, last + 1));
        }
        out
    }

    /// Calls `f(word, mask)` for each word overlapping `start..end` (clamped to the capacity),
    /// with the mask of the range's bits in that word.
    fn for_range_words(&mut self, start: usize, end: usize, f: impl Fn(&mut u64, u64)) {
        for (w, mask) in range_words(start, end.min(self.capacity)) {
            f(&mut self.words[w], mask);
        }
    }

    /// Clears bits at or past the capacity (after raw word writes).
    pub fn clear_tail(&mut self) {
        if !self.capacity.is_multiple_of(64) {
            if let Some(w) = self.words.last_mut() {
                *w &= mask_bits(0, self.capacity % 64);
            }
        }
    }
}

/// The words overlapping positions `start..end` (none when `start >= end`), each with the mask
/// of the range's bits in it.
fn range_words(start: usize, end: usize) -> impl Iterator<Item = (usize, u64)> {
    let words = if start < end {
        start / 64..(end - 1) / 64 + 1
    } else {
        0..0
    };
    let last = words.end.saturating_sub(1);
    words.map(move |w| {
        let lo = if w == start / 64 { start % 64 } else { 0 };
        let hi = if w == last { (end - 1) % 64 + 1 } else { 64 };
        (w, mask_bits(lo, hi))
    })
}

/// Bits `lo..hi` of a word set (0 <= lo < hi <= 64).
#[inline]
pub(crate) fn mask_bits(lo: usize, hi: usize) -> u64 {
    let upper = if hi == 64 { u64::MAX } else { (1u64 << hi) - 1 };
    upper & !((1u64 << lo) - 1)
}

struct BitIter {
    word: u64,
    base: usize,
}

impl Iterator for BitIter {
    type Item = usize;
    #[inline]
    fn next(&mut self) -> Option<usize> {
        if self.word == 0 {
            return None;
        }
        let tz = self.word.trailing_zeros() as usize;
        self.word &= self.word - 1;
        Some(self.base + tz)
    }
}

impl DoubleEndedIterator for BitIter {
    fn next_back(&mut self) -> Option<usize> {
        if self.word == 0 {
            return None;
        }
        let hi = 63 - self.word.leading_zeros() as usize;
        self.word &= !(1u64 << hi);
        Some(self.base + hi)
    }
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenSet(cap={}, ", self.capacity)?;
        let parts: Vec<String> = self
            .ranges()
            .iter()
            .map(|&(a, b)| {
                if b == a + 1 {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect();
        write!(f, "{{{}}})", parts.join(" "))
    }
}

#[cfg(test)]
mod tests;
