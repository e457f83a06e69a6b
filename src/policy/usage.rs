//! How entries have been used and will be used, for the classic cache baselines: per-entry read
//! frequency and recency over the past window (LFU, H2O, LRU) and the distance to the next read
//! inside the look-ahead window (Belady). Each question picks `count` entries of a given set in
//! a defined order, natively, so no script loops over positions.
//!
//! A *use* of entry `p` at a step `s` is a read of `p` by the attention of `(s, layer)` or the
//! write of `p` itself (at step `s = p`): a cache counts the insertion as a use, which keeps the
//! entries written a moment ago from looking cold. Ties always go to the older position for
//! "least" questions and to the newer one for "most" questions, so every answer is one set.
//!
//! Not here: the skip-based questions ([`super::query`]), the script bindings ([`super::ctx`]).

use std::collections::VecDeque;

use anyhow::Result;

use super::query::{check_layer, past_steps, step_skips};
use crate::engine::Sim;
use crate::tokenset::TokenSet;
use crate::trace::StepSkips;

/// Word `j` of the uses at step `s.step` of `layer`: the positions before the step it reads (none
/// when the whole layer is skipped) and, with `write`, the entry written at the step.
fn uses_word(s: &StepSkips, layer: usize, j: usize, write: bool) -> u64 {
    let step = s.step;
    let mut w = 0;
    let ls = &s.layers[layer];
    if !ls.layer && j * 64 < step {
        let below = if (j + 1) * 64 <= step {
            u64::MAX
        } else {
            crate::tokenset::mask_bits(0, step % 64)
        };
        let skip = if ls.token_count > 0 {
            ls.tokens.words().get(j).copied().unwrap_or(0)
        } else {
            0
        };
        w = below & !skip;
    }
    if write && step / 64 == j {
        w |= 1 << (step % 64);
    }
    w
}

/// Every word of the uses at step `s.step` of `layer`, its write included (as [`uses_word`]).
fn step_uses(s: &StepSkips, layer: usize, out: &mut [u64]) {
    out.fill(0);
    let ls = &s.layers[layer];
    let step = s.step;
    if !ls.layer {
        let full = (step / 64).min(out.len());
        out[..full].fill(u64::MAX);
        if full < out.len() && !step.is_multiple_of(64) {
            out[full] = crate::tokenset::mask_bits(0, step % 64);
        }
        if ls.token_count > 0 {
            for (o, &k) in out.iter_mut().zip(ls.tokens.words()) {
                *o &= !k;
            }
        }
    }
    if step / 64 < out.len() {
        out[step / 64] |= 1 << (step % 64);
    }
}

/// `out = cur` minus the uses of `s` (reads, and the write with `write`); returns `out`'s count.
fn minus_uses(out: &mut [u64], cur: &[u64], s: &StepSkips, layer: usize, write: bool) -> u64 {
    let mut n = 0;
    for (j, (o, &c)) in out.iter_mut().zip(cur).enumerate() {
        *o = if c == 0 {
            0
        } else {
            c & !uses_word(s, layer, j, write)
        };
        n += o.count_ones() as u64;
    }
    n
}

/// Per-position counters over many sets, bit-sliced: plane `b` holds bit `b` of each count, so
/// adding a set or comparing every count with a constant costs a few word operations per 64
/// positions, plane by plane over whole arrays (loops the compiler vectorises).
pub struct SlicedCounts {
    planes: Vec<Vec<u64>>,
    /// Scratch for carries and comparisons, one word per word of positions.
    scratch: Vec<u64>,
}

/// Positions whose count is at least `v`, and exactly `v`, per word (see [`SlicedCounts::compare`]).
pub struct Comparison {
    pub at_least: Vec<u64>,
    pub equal: Vec<u64>,
}

impl SlicedCounts {
    /// Counters for `words` words of positions, each up to `max` (inclusive).
    pub fn new(words: usize, max: usize) -> SlicedCounts {
        let bits = (usize::BITS - max.leading_zeros()).max(1) as usize;
        SlicedCounts {
            planes: vec![vec![0; words]; bits],
            scratch: vec![0; words],
        }
    }

    /// Adds one to the count of every position of `set` (a word slice of the same length).
    pub fn add(&mut self, set: &[u64]) {
        let carry = &mut self.scratch;
        carry.copy_from_slice(set);
        for plane in self.planes.iter_mut() {
            for (p, c) in plane.iter_mut().zip(carry.iter_mut()) {
                let old = *p;
                *p = old ^ *c;
                *c &= old;
            }
        }
    }

    /// Subtracts one from the count of every position of `set` (each count at least 1).
    pub fn sub(&mut self, set: &[u64]) {
        let borrow = &mut self.scratch;
        borrow.copy_from_slice(set);
        for plane in self.planes.iter_mut() {
            for (p, b) in plane.iter_mut().zip(borrow.iter_mut()) {
                let old = *p;
                *p = old ^ *b;
                *b &= !old;
            }
        }
    }

    /// The counts of positions `0..n`, one number each.
    pub fn values(&self, n: usize) -> Vec<u64> {
        (0..n)
            .map(|p| {
                self.planes
                    .iter()
                    .enumerate()
                    .map(|(b, plane)| (plane[p / 64] >> (p % 64) & 1) << b)
                    .sum()
            })
            .collect()
    }

    /// Compares every count with `v`, into `out` (reused between calls).
    pub fn compare(&self, v: usize, out: &mut Comparison) {
        let words = self.scratch.len();
        out.at_least.resize(words, 0);
        out.equal.resize(words, 0);
        if v >> self.planes.len() != 0 {
            out.at_least.fill(0);
            out.equal.fill(0);
            return;
        }
        // From the top bit down, branch-free: `gt` (kept in at_least) holds the positions already
        // known greater than v, `eq` those equal so far.
        out.at_least.fill(0);
        out.equal.fill(u64::MAX);
        for b in (0..self.planes.len()).rev() {
            let vb = 0u64.wrapping_sub(((v >> b) & 1) as u64);
            for ((gt, eq), &x) in out
                .at_least
                .iter_mut()
                .zip(out.equal.iter_mut())
                .zip(&self.planes[b])
            {
                *gt |= *eq & x & !vb;
                *eq &= !(x ^ vb);
            }
        }
        for (gt, &eq) in out.at_least.iter_mut().zip(&out.equal) {
            *gt |= eq;
        }
    }
}

/// Takes up to `left` positions of `group` into `out` (the oldest first, or the newest first),
/// lowering `left` by what it took.
fn take_into(out: &mut TokenSet, group: &TokenSet, left: &mut u64, newest: bool) {
    if *left == 0 {
        return;
    }
    let part = super::ctx::take(group, *left, newest);
    *left -= part.count();
    out.union_with(&part);
}

/// Use counts of one layer over a sliding window of past steps, kept between hook calls so that
/// a call one step after the last costs one step in and one step out, not `w` steps.
struct Window {
    layer: usize,
    w: usize,
    /// Steps counted are `end - ring.len() .. end`.
    end: usize,
    /// Uses of each counted step, oldest first.
    ring: VecDeque<Vec<u64>>,
    counts: SlicedCounts,
    words: usize,
    /// The class the last question ended at: where the next one starts looking.
    last_v: usize,
}

/// The sliding windows of a run's frequency questions, one per layer (a policy's `ctx` holds
/// one; a fresh one gives the same answers, only slower).
#[derive(Default)]
pub struct UsageCache {
    windows: Vec<Window>,
}

impl UsageCache {
    /// The window of `layer` over the last `w` steps before the current one (its index), updated
    /// from the last call where it can be, rebuilt otherwise.
    fn window(&mut self, sim: &Sim, layer: usize, w: usize) -> Result<usize> {
        let steps = past_steps(sim, w)?;
        let words = sim.sizes.positions().div_ceil(64);
        let i = match self
            .windows
            .iter()
            .position(|x| x.layer == layer && x.w == w)
        {
            Some(i) => i,
            None => {
                self.windows.push(Window {
                    layer,
                    w,
                    end: 0,
                    ring: VecDeque::new(),
                    counts: SlicedCounts::new(words, w),
                    words,
                    last_v: 0,
                });
                self.windows.len() - 1
            }
        };
        let win = &mut self.windows[i];
        let reusable = win.words == words
            && win.end <= steps.end
            && win.end >= steps.start
            && win.end - (win.ring.len()) <= steps.start;
        if !reusable {
            *win = Window {
                layer,
                w,
                end: steps.start,
                ring: VecDeque::new(),
                counts: SlicedCounts::new(words, w),
                words,
                last_v: 0,
            };
        }
        for step in win.end..steps.end {
            let s = step_skips(sim, step)?.expect("past");
            // Reuse the buffer of the step about to leave the window.
            let mut uses = if win.ring.len() >= steps.len() {
                let old = win.ring.pop_front().expect("non-empty");
                win.counts.sub(&old);
                old
            } else {
                vec![0; words]
            };
            step_uses(s, layer, &mut uses);
            win.counts.add(&uses);
            win.ring.push_back(uses);
        }
        win.end = steps.end;
        while win.ring.len() > steps.len() {
            let old = win.ring.pop_front().expect("non-empty");
            win.counts.sub(&old);
        }
        Ok(i)
    }
}

/// How many entries of `set` have fewer than `v` uses and exactly `v` (`cmp` is scratch).
fn class_counts(
    set: &TokenSet,
    counts: &SlicedCounts,
    v: usize,
    cmp: &mut Comparison,
) -> (u64, u64) {
    counts.compare(v, cmp);
    let (mut below, mut at) = (0u64, 0u64);
    for ((&x, &ge), &eq) in set.words().iter().zip(&cmp.at_least).zip(&cmp.equal) {
        below += (x & !ge).count_ones() as u64;
        at += (x & eq).count_ones() as u64;
    }
    (below, at)
}

/// The entries of `set` with fewer than `v` uses, and those with exactly `v`.
fn classes(
    set: &TokenSet,
    counts: &SlicedCounts,
    v: usize,
    cmp: &mut Comparison,
) -> (TokenSet, TokenSet) {
    counts.compare(v, cmp);
    let mut below = set.clone();
    let mut at = set.clone();
    for (((b, a), &ge), &eq) in below
        .words_mut()
        .iter_mut()
        .zip(at.words_mut())
        .zip(&cmp.at_least)
        .zip(&cmp.equal)
    {
        *b &= !ge;
        *a &= eq;
    }
    (below, at)
}

/// `count` entries of `set` by use count at `layer` over the last `w` steps: the fewest first
/// (ties to the older position), or with `most` the most first (ties to the newer).
fn by_frequency(
    sim: &Sim,
    cache: &mut UsageCache,
    set: &TokenSet,
    layer: usize,
    (w, count): (usize, u64),
    most: bool,
) -> Result<TokenSet> {
    check_layer(sim, layer)?;
    let i = cache.window(sim, layer, w)?;
    let win = &mut cache.windows[i];
    let counts = &win.counts;
    let mut cmp = Comparison {
        at_least: Vec::new(),
        equal: Vec::new(),
    };
    let total = set.count();
    let count = count.min(total);
    if count == 0 {
        return Ok(TokenSet::new(set.capacity()));
    }
    // The answer is the class v where the ranking crosses `count`: fewest first, the entries
    // below v number less than count and those up to v at least count; most first, the same
    // counted from the top. Where the class moved away from the last answer, compare: +1 means
    // v is higher, -1 lower, 0 found.
    let side = |(n_below, n_at): (u64, u64)| -> i32 {
        let (before, through) = if most {
            let above = total - n_below - n_at;
            (above, above + n_at)
        } else {
            (n_below, n_below + n_at)
        };
        match (before >= count, through >= count) {
            (true, _) => {
                if most {
                    1
                } else {
                    -1
                }
            }
            (false, true) => 0,
            (false, false) => {
                if most {
                    -1
                } else {
                    1
                }
            }
        }
    };
    let mut v = win.last_v.min(w);
    let dir = side(class_counts(set, counts, v, &mut cmp));
    if dir != 0 {
        // Gallop from the last answer (the class moves little from one step to the next), then
        // bisect the bracket found.
        let (mut lo, mut hi) = (v, v);
        let mut step = 1;
        loop {
            let probe = if dir > 0 {
                (v + step).min(w)
            } else {
                v.saturating_sub(step)
            };
            let d = side(class_counts(set, counts, probe, &mut cmp));
            if d == 0 {
                v = probe;
                break;
            }
            if d != dir {
                // The answer lies strictly between the last probe and this one.
                (lo, hi) = if dir > 0 {
                    (lo + 1, probe - 1)
                } else {
                    (probe + 1, hi - 1)
                };
                loop {
                    let mid = (lo + hi) / 2;
                    match side(class_counts(set, counts, mid, &mut cmp)) {
                        0 => {
                            v = mid;
                            break;
                        }
                        d if d > 0 => lo = mid + 1,
                        _ => hi = mid - 1,
                    }
                }
                break;
            }
            if dir > 0 {
                lo = probe;
            } else {
                hi = probe;
            }
            step *= 2;
        }
    }
    win.last_v = v;
    // The entries beyond the crossing class, then the class's oldest (or newest).
    let (below, at) = classes(set, &win.counts, v, &mut cmp);
    let mut out = if most {
        let mut s = set.clone();
        s.subtract(&below);
        s.subtract(&at);
        s
    } else {
        below
    };
    let mut left = count - out.count();
    debug_assert!(left <= at.count());
    take_into(&mut out, &at, &mut left, most);
    Ok(out)
}

/// LFU's victims: `count` entries of `set` used the fewest times at `layer` over the last `w`
/// steps (reads, plus one for an entry written in the window); ties to the older position.
pub fn least_frequent(
    sim: &Sim,
    cache: &mut UsageCache,
    set: &TokenSet,
    layer: usize,
    w: usize,
    count: u64,
) -> Result<TokenSet> {
    by_frequency(sim, cache, set, layer, (w, count), false)
}

/// H2O's heavy hitters: `count` entries of `set` used the most times at `layer` over the last
/// `w` steps; ties to the newer position.
pub fn most_frequent(
    sim: &Sim,
    cache: &mut UsageCache,
    set: &TokenSet,
    layer: usize,
    w: usize,
    count: u64,
) -> Result<TokenSet> {
    by_frequency(sim, cache, set, layer, (w, count), true)
}

/// LRU's victims: `count` entries of `set` whose last use at `layer` is the oldest. Entries not
/// used in the last `w` steps come first (older position first), then by last use, oldest first.
pub fn least_recent(
    sim: &Sim,
    set: &TokenSet,
    layer: usize,
    w: usize,
    count: u64,
) -> Result<TokenSet> {
    check_layer(sim, layer)?;
    let steps: Vec<&StepSkips> = past_steps(sim, w)?
        .rev()
        .map(|s| step_skips(sim, s).map(|x| x.expect("past")))
        .collect::<Result<_>>()?;
    // Newest step first: what survives the longest walk back was used the longest ago.
    Ok(last_survivors_ordered(set, &steps, layer, count, true))
}

/// Belady's victims: `count` entries of `set` whose next read at `layer`, from the current step
/// `n` to `n + k`, is the farthest. Entries not read in that window come first (older position
/// first), then by next read, farthest first. Step `n` counts as ahead: hooks run before the
/// layer's attention.
pub fn farthest_next_read(
    sim: &Sim,
    set: &TokenSet,
    layer: usize,
    k: usize,
    count: u64,
) -> Result<TokenSet> {
    check_layer(sim, layer)?;
    // Check the far end of the window first so an error names it.
    step_skips(sim, sim.step + k)?;
    let mut steps = Vec::new();
    for step in sim.step..=sim.step + k {
        match step_skips(sim, step)? {
            Some(s) => steps.push(s),
            None => break,
        }
    }
    Ok(last_survivors_ordered(set, &steps, layer, count, false))
}

/// The `count` entries of `set` that survive the longest when each step of `steps` in turn
/// removes its uses: the ones never removed first, then those removed last, each group oldest
/// position first.
fn last_survivors_ordered(
    set: &TokenSet,
    steps: &[&StepSkips],
    layer: usize,
    count: u64,
    write: bool,
) -> TokenSet {
    let mut cur = set.clone();
    let mut have = cur.count();
    if count >= have {
        return cur;
    }
    // R_i: what is left after the first i steps. Find the first i with |R_i| < count, keeping
    // R_(i-1) (>= count): the answer is R_i plus the oldest of R_(i-1) - R_i.
    let mut next = TokenSet::new(set.capacity());
    for s in steps {
        let n = minus_uses(next.words_mut(), cur.words(), s, layer, write);
        if n < count {
            let mut removed = cur;
            removed.subtract(&next);
            let mut left = count - n;
            take_into(&mut next, &removed, &mut left, false);
            return next;
        }
        std::mem::swap(&mut cur, &mut next);
        have = n;
    }
    debug_assert!(have >= count);
    super::ctx::take(&cur, count, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sliced_counts_count_and_compare() {
        // Position 0 added 3 times, 1 twice, 2 once, 3 never; then one subtracted from 0.
        let mut c = SlicedCounts::new(1, 4);
        c.add(&[0b0111]);
        c.add(&[0b0011]);
        c.add(&[0b0001]);
        c.add(&[0b0001]);
        c.sub(&[0b0001]);
        let mut cmp = Comparison {
            at_least: Vec::new(),
            equal: Vec::new(),
        };
        let mut at = |v: usize| {
            c.compare(v, &mut cmp);
            (cmp.at_least[0] & 0b1111, cmp.equal[0] & 0b1111)
        };
        assert_eq!(at(3), (0b0001, 0b0001));
        assert_eq!(at(2), (0b0011, 0b0010));
        assert_eq!(at(1), (0b0111, 0b0100));
        assert_eq!(at(0), (0b1111, 0b1000));
        // Counts above what the planes hold (3 bits: up to 7): nobody.
        assert_eq!(at(8), (0, 0));
    }
}
