//! Questions a policy asks about the run, answered natively over bitsets: the trace's future
//! inside the look-ahead window, its recent past, and the alpha the current residency would give.
//!
//! Every function reads a [`Sim`] and returns plain values or [`TokenSet`]s sized to the run
//! (`P + D` positions); none changes anything. They are the Rust side of the script API in
//! [`super::ctx`] and are public so tests can check a script's effect with the same arithmetic.
//!
//! "Skipped" here means "not read": at a step where the whole layer is skipped, every position
//! before the step counts as skipped.

use anyhow::{bail, Result};

use crate::engine::Sim;
use crate::memory::{reads_by_word, reads_of_prefix};
use crate::tokenset::TokenSet;
use crate::trace::StepSkips;

/// The trace of `step`, which must lie in `n - past ..= n + lookahead` (`n` the current step).
/// `Ok(None)` for steps after the end of the run (nothing happens there).
pub(super) fn step_skips(sim: &Sim, step: usize) -> Result<Option<&StepSkips>> {
    let n = sim.step;
    let la = sim.window.lookahead();
    if step > n + la {
        bail!(
            "look-ahead to step {step} (n+{}) is past the window: the scenario's policy.lookahead is {la} steps",
            step - n
        );
    }
    if step < n && n - step > sim.window.past() {
        bail!(
            "history of step {step} (n-{}) is older than the {} past steps kept",
            n - step,
            sim.window.past()
        );
    }
    if step < sim.sizes.prefill {
        bail!(
            "step {step} is a prefill position: decode steps start at {}",
            sim.sizes.prefill
        );
    }
    if step >= sim.window.end() {
        return Ok(None);
    }
    match sim.window.get(step) {
        Some(s) => Ok(Some(s)),
        None => bail!("step {step} is not in the trace window (engine bug)"),
    }
}

pub(super) fn check_layer(sim: &Sim, layer: usize) -> Result<()> {
    if layer >= sim.sizes.layers {
        bail!(
            "layer {layer} does not exist (the model has layers 0..{})",
            sim.sizes.layers
        );
    }
    Ok(())
}

/// An empty set sized to the run.
pub fn empty(sim: &Sim) -> TokenSet {
    TokenSet::new(sim.sizes.positions())
}

/// ORs (or, with `and`, ANDs) the not-read set of `(step, layer)` into `acc`.
fn fold_skipped(acc: &mut TokenSet, s: &StepSkips, layer: usize, and: bool) {
    let ls = &s.layers[layer];
    let step = s.step;
    if ls.layer {
        // Nothing read: every position before the step is "skipped".
        let all = TokenSet::range(acc.capacity(), 0, step);
        if and {
            acc.intersect_with(&all);
        } else {
            acc.union_with(&all);
        }
    } else if and {
        acc.intersect_with(&ls.tokens);
    } else if ls.token_count > 0 {
        acc.union_with(&ls.tokens);
    }
}

/// A set a future query answers with, described before it is built, so that a view combined
/// with it (`ctx.skipped_at(l, k) & ctx.hbm_set(l)`) can be one pass over the trace's set and
/// the view's ([`Lazy::combine`]) instead of a copy and a pass in place.
pub enum Lazy<'a> {
    /// `TokenSet::from_prefix(src, capacity)`.
    Prefix(&'a TokenSet, usize),
    /// `TokenSet::not_below(src, end, capacity)`.
    NotBelow(&'a TokenSet, usize, usize),
    /// A set built already.
    Built(TokenSet),
}

impl Lazy<'_> {
    /// Words of the built set.
    pub fn words(&self) -> usize {
        match self {
            Lazy::Prefix(_, capacity) | Lazy::NotBelow(_, _, capacity) => capacity.div_ceil(64),
            Lazy::Built(set) => set.words().len(),
        }
    }

    /// The set itself.
    pub fn build(self) -> TokenSet {
        match self {
            Lazy::Prefix(src, capacity) => TokenSet::from_prefix(src, capacity),
            Lazy::NotBelow(src, end, capacity) => TokenSet::not_below(src, end, capacity),
            Lazy::Built(set) => set,
        }
    }

    /// The built set `& other` (`& !other` when negated; no `other`: itself) at the positions
    /// below `cut`, in one pass; `Err` gives the set back undescribed when it was built
    /// already.
    pub fn combine(self, other: Option<(&TokenSet, bool)>, cut: usize) -> Result<TokenSet, Self> {
        match self {
            Lazy::Prefix(src, capacity) => Ok(TokenSet::combine(src, false, other, cut, capacity)),
            Lazy::NotBelow(src, end, capacity) => {
                Ok(TokenSet::combine(src, true, other, end.min(cut), capacity))
            }
            built => Err(built),
        }
    }
}

/// Positions not read at `(step, layer)`; `step` is absolute and inside the window. Described,
/// not built ([`Lazy::build`]).
pub fn skipped_at(sim: &Sim, layer: usize, step: usize) -> Result<Lazy<'_>> {
    check_layer(sim, layer)?;
    let cap = sim.sizes.positions();
    Ok(match step_skips(sim, step)? {
        None => Lazy::Built(TokenSet::new(cap)),
        Some(s) if s.layers[layer].layer => Lazy::Built(TokenSet::range(cap, 0, s.step)),
        Some(s) => Lazy::Prefix(&s.layers[layer].tokens, cap),
    })
}

/// Existing entries of `layer` that `(step, layer)` reads (entries created after the current
/// step are not counted: they do not exist yet). Described, not built ([`Lazy::build`]).
pub fn read_at(sim: &Sim, layer: usize, step: usize) -> Result<Lazy<'_>> {
    check_layer(sim, layer)?;
    let Some(s) = step_skips(sim, step)? else {
        return Ok(Lazy::Built(empty(sim)));
    };
    if s.layers[layer].layer {
        return Ok(Lazy::Built(empty(sim)));
    }
    let skipped = &s.layers[layer].tokens;
    // While the present entries are the positions `0..m`, the read ones are the positions
    // below `min(m, step)` less the skipped ones: one pass over the skip set alone.
    if let Some(m) = sim.memory.present_prefix(layer) {
        let capacity = sim.memory.present(layer).capacity();
        return Ok(Lazy::NotBelow(skipped, m.min(step), capacity));
    }
    let mut read = TokenSet::and_not(sim.memory.present(layer), skipped);
    read.truncate(step);
    Ok(Lazy::Built(read))
}

/// Steps `n + from ..= n + to`, clamped to the end of the run.
fn future_steps(sim: &Sim, from: usize, to: usize) -> Result<std::ops::Range<usize>> {
    if from > to {
        bail!("empty step range n+{from}..=n+{to}");
    }
    // Check the far end first so a window error names it.
    step_skips(sim, sim.step + to)?;
    let end = (sim.step + to + 1).min(sim.window.end());
    Ok((sim.step + from).min(end)..end)
}

/// Union (`all = false`) or intersection (`all = true`) of the not-read sets of `layer` over
/// steps `n+from ..= n+to`. Empty when no step of the range is inside the run.
pub fn skipped_over(
    sim: &Sim,
    layer: usize,
    from: usize,
    to: usize,
    all: bool,
) -> Result<TokenSet> {
    check_layer(sim, layer)?;
    let steps = future_steps(sim, from, to)?;
    fold_steps(sim, layer, steps, all)
}

fn fold_steps(
    sim: &Sim,
    layer: usize,
    steps: std::ops::Range<usize>,
    all: bool,
) -> Result<TokenSet> {
    let mut acc = empty(sim);
    let mut first = true;
    for step in steps {
        let s = step_skips(sim, step)?.expect("clamped to the run");
        if all && first {
            fold_skipped(&mut acc, s, layer, false);
        } else {
            fold_skipped(&mut acc, s, layer, all);
        }
        first = false;
    }
    Ok(acc)
}

/// Existing entries of `layer` read at least once (`all = false`) or at every step
/// (`all = true`) of `n+from ..= n+to`.
pub fn read_over(sim: &Sim, layer: usize, from: usize, to: usize, all: bool) -> Result<TokenSet> {
    check_layer(sim, layer)?;
    let steps = future_steps(sim, from, to)?;
    if steps.is_empty() {
        return Ok(empty(sim));
    }
    // Read at least once = present minus skipped at every step; read always = present minus
    // skipped at some step.
    let skipped = fold_steps(sim, layer, steps.clone(), !all)?;
    let mut read = sim.memory.present(layer).clone();
    read.truncate(steps.start);
    read.subtract(&skipped);
    Ok(read)
}

/// Whether position `pos` of `layer` is not read at some step of `n+1 ..= n+k`.
pub fn will_skip(sim: &Sim, layer: usize, pos: usize, k: usize) -> Result<bool> {
    check_layer(sim, layer)?;
    if k == 0 {
        return Ok(false);
    }
    for step in future_steps(sim, 1, k)? {
        let ls = &step_skips(sim, step)?.expect("clamped").layers[layer];
        if ls.layer || (pos < step && ls.tokens.contains(pos)) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Number of steps in `n+1 ..= n+k` at which the whole layer is skipped.
pub fn layer_skips_ahead(sim: &Sim, layer: usize, k: usize) -> Result<u64> {
    check_layer(sim, layer)?;
    if k == 0 {
        return Ok(0);
    }
    let mut c = 0;
    for step in future_steps(sim, 1, k)? {
        c += step_skips(sim, step)?.expect("clamped").layers[layer].layer as u64;
    }
    Ok(c)
}

/// The decode steps among the last `w` before the current one, oldest first.
pub(super) fn past_steps(sim: &Sim, w: usize) -> Result<std::ops::Range<usize>> {
    let n = sim.step;
    if w > sim.window.past() {
        bail!(
            "past window of {w} steps is longer than the {} steps kept",
            sim.window.past()
        );
    }
    let start = n.saturating_sub(w).max(sim.sizes.prefill);
    Ok(start..n)
}

/// Positions of `layer` not read at least `min` times in the last `w` steps (counting only
/// steps that happened: early in the run fewer than `w` exist, and `min` is capped at their
/// number). `min = 1` is the union, `min = w` the intersection.
pub fn past_skipped(sim: &Sim, layer: usize, w: usize, min: usize) -> Result<TokenSet> {
    check_layer(sim, layer)?;
    let steps = past_steps(sim, w)?;
    let mut out = empty(sim);
    if steps.is_empty() || min == 0 {
        if min == 0 {
            out.insert_range(0, sim.step);
        }
        return Ok(out);
    }
    let need = min.min(steps.len());
    if need == 1 {
        return fold_steps(sim, layer, steps, false);
    }
    if need == steps.len() {
        return fold_steps(sim, layer, steps, true);
    }
    let mut counts = super::usage::SlicedCounts::new(out.words().len(), steps.len());
    let mut scratch = empty(sim);
    for step in steps {
        scratch.clear();
        fold_skipped(
            &mut scratch,
            step_skips(sim, step)?.expect("past"),
            layer,
            false,
        );
        counts.add(scratch.words());
    }
    let mut cmp = super::usage::Comparison {
        at_least: Vec::new(),
        equal: Vec::new(),
    };
    counts.compare(need, &mut cmp);
    out.words_mut().copy_from_slice(&cmp.at_least);
    out.clear_tail();
    Ok(out)
}

/// Share of the possible KV reads of `layer` so far that did not happen: whole-layer skips plus
/// token skips, over the decode steps done. 0 before the first step.
pub fn skip_share(sim: &Sim, layer: usize) -> Result<f64> {
    check_layer(sim, layer)?;
    Ok(layer_skip_share(sim, layer))
}

/// [`skip_share`] of a layer that exists.
#[inline]
fn layer_skip_share(sim: &Sim, layer: usize) -> f64 {
    let h = &sim.history;
    let steps = sim.steps_done() + u64::from(sim.layer.is_some_and(|l| l > layer));
    if steps == 0 {
        return 0.0;
    }
    let read = h.kv_read_entries[layer] as f64;
    let skipped = h.kv_skipped_entries[layer] as f64;
    let layer_rate = h.layer_skips[layer] as f64 / steps as f64;
    let token_share = if read + skipped > 0.0 {
        skipped / (read + skipped)
    } else {
        0.0
    };
    layer_rate + (1.0 - layer_rate) * token_share
}

/// The mean of [`skip_share`] over the layers, summed in layer order.
pub fn mean_skip_share(sim: &Sim) -> f64 {
    let n = sim.sizes.layers;
    let sum = (0..n).fold(0.0, |sum, l| sum + layer_skip_share(sim, l));
    sum / n as f64
}

/// Bytes the attention sublayer of `(step, layer)` would read from HBM and from EXT with the
/// current residency: its weights plus the existing entries it reads. `None` if the layer is
/// skipped there or the step is past the run.
pub fn predicted_reads(sim: &Sim, layer: usize, step: usize) -> Result<Option<(u64, u64)>> {
    check_layer(sim, layer)?;
    let Some(s) = step_skips(sim, step)? else {
        return Ok(None);
    };
    let ls = &s.layers[layer];
    if ls.layer {
        return Ok(None);
    }
    let h = sim.memory.hbm(layer).words();
    let (total, on_hbm) = match sim.memory.present_prefix(layer) {
        // The entries are positions 0..m, all before the step: the step reads the m of them
        // less those skipped (arithmetic: the trace keeps its skip count), and every HBM entry
        // lies below m, so one popcount a word counts those read from HBM.
        Some(m) if m <= step => reads_of_prefix(m, h, &ls.tokens, ls.token_count),
        _ => reads_by_word(
            sim.memory.present(layer).words(),
            h,
            ls.tokens.words(),
            step,
        ),
    };
    let k = sim.sizes.entry_bytes;
    let w_hbm = sim.sizes.attn_weight_hbm[layer];
    let w_ext = sim.sizes.attn_weight_bytes - w_hbm;
    Ok(Some((w_hbm + on_hbm * k, w_ext + (total - on_hbm) * k)))
}

/// `alpha` the attention sublayer of `(step, layer)` would have with the current residency.
pub fn predicted_alpha(sim: &Sim, layer: usize, step: usize) -> Result<Option<f64>> {
    Ok(predicted_reads(sim, layer, step)?.and_then(|(h, e)| {
        let all = h + e;
        (all > 0).then(|| h as f64 / all as f64)
    }))
}

/// Union over layers of the entries on HBM.
pub fn hbm_any_layer(sim: &Sim) -> TokenSet {
    let mut acc = empty(sim);
    for l in 0..sim.sizes.layers {
        acc.union_with(sim.memory.hbm(l));
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// With the entries exactly `0..m` (m at most the step), the count from the skip
        /// count and one popcount a word is the word-by-word count.
        #[test]
        fn prefix_reads_are_the_word_by_word_reads(
            m in 0usize..300,
            ahead in 0usize..70,
            hbm in proptest::collection::vec(any::<bool>(), 300),
            skip in proptest::collection::vec(any::<bool>(), 370),
        ) {
            let step = m + ahead;
            let cap = 400;
            let present = TokenSet::range(cap, 0, m);
            let mut h = TokenSet::new(cap);
            let mut sk = TokenSet::new(step);
            for p in (0..m).filter(|&p| hbm[p]) {
                h.insert(p);
            }
            for p in (0..step).filter(|&p| skip[p]) {
                sk.insert(p);
            }
            let want = reads_by_word(present.words(), h.words(), sk.words(), step);
            prop_assert_eq!(reads_of_prefix(m, h.words(), &sk, sk.count()), want);
        }
    }
}
