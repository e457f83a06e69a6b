//! Synthetic skip traces, deterministic from the scenario's seed (SPEC 5).
//!
//! - `none`: no token skipped (whole-layer and MLP-only rates still apply).
//! - `uniform`: each present entry skipped with probability `rate`, independently per step
//!   (the probability is quantised to 1/65536: 16 random words per 64 positions build the bits).
//! - `heavy_hitter`: attention sinks and a recent window are always read; the rest is chosen in
//!   pages; per layer a persistent set of skipped pages is sized so that the layer's skipped share
//!   matches its target, and each step a share `1 - keep` of the read pages is swapped with
//!   skipped ones (churn). Layers below `dense_layers` are dense; the target share grows linearly
//!   with depth around the requested mean, which is kept over all layers.
//!
//! Whole-layer and MLP-only skips are drawn per (step, layer) from their own stream, so changing
//! those rates leaves the token pattern unchanged.

use super::{StepSkips, TraceDims, TraceSource};
use crate::rng::{stream_seed, Rng};
use crate::scenario::{round_half_up, LayerRates, Scenario, SkipSection, SkipSource};
use crate::tokenset::{mask_bits, TokenSet};
use anyhow::Result;

/// Stream identifiers for [`stream_seed`].
const STREAM_TOKENS: u64 = 1;
const STREAM_FLAGS: u64 = 2;
/// Early releases from the recent window (`young_skip`): its own stream, so that the token
/// pattern of a scenario without them is unchanged.
const STREAM_YOUNG: u64 = 3;

/// A synthetic trace source.
pub struct Generator {
    dims: TraceDims,
    /// The layers this generator produces, ascending (all of them, or a part: see
    /// [`Generator::part`]); its steps hold these layers only, in this order.
    own: Vec<usize>,
    /// For each layer of the model, its index in `own` (`None`: another part's).
    slot: Vec<Option<usize>>,
    kind: Kind,
    layer_rates: Vec<f64>,
    mlp_rates: Vec<f64>,
    flags: Rng,
    /// Entries present at each own layer so far (prefill + unskipped decode steps).
    present: Vec<u64>,
    step: usize,
}

enum Kind {
    None,
    /// Probability in 1/65536 units, and one stream per layer.
    Uniform {
        p16: u32,
        rngs: Vec<Rng>,
    },
    HeavyHitter {
        params: HhParams,
        layers: HhLayers,
    },
}

/// The heavy-hitter layers' states, their page lists of `u16` while every page of the run has
/// such an index (at most 65,536 pages: up to a million positions in pages of 16, or 65,536 in
/// pages of one), else of `u32`. Narrow lists are half the bytes: at a million positions a
/// layer's two lists take 125 KB instead of 250 KB, and the churn's random reads and writes of
/// them miss the level-1 cache less (docs/performance.md has the 1M-position run and the
/// calibrated profile before and after). The width changes no draw and no page: the trace is
/// the same bit for bit.
enum HhLayers {
    Narrow(Vec<HhLayer<u16>>),
    Wide(Vec<HhLayer<u32>>),
}

/// A page's index in a layer's lists.
trait PageIndex: Copy {
    /// Page `p`, which the width holds (the generator picks the width that holds every page).
    fn of(p: usize) -> Self;
    fn page(self) -> u32;
}

/// `PageIndex` for an unsigned integer type at least 16 bits wide.
macro_rules! page_index {
    ($t:ty) => {
        impl PageIndex for $t {
            #[inline(always)]
            fn of(p: usize) -> $t {
                debug_assert!(p <= <$t>::MAX as usize);
                p as $t
            }
            #[inline(always)]
            fn page(self) -> u32 {
                u32::from(self)
            }
        }
    };
}
page_index!(u16);
page_index!(u32);

struct HhParams {
    sinks: usize,
    recent: usize,
    page: usize,
    keep: f64,
    /// Target skipped share per layer.
    targets: Vec<f64>,
    /// How a page's positions are flipped in a layer's skipped positions.
    flip: PageFlip,
    /// Share of new entries released early from the recent window, and the ages drawn.
    young: f64,
    young_window: u64,
    /// Leading layers never skipped (no early releases either).
    dense_layers: usize,
}

/// Per-layer state of the heavy-hitter generator, its pages indexed by `P` ([`HhLayers`]).
struct HhLayer<P> {
    rng: Rng,
    /// Candidate pages currently read.
    read: Vec<P>,
    /// Pages currently skipped.
    skipped: Vec<P>,
    /// The positions of the skipped pages (kept as pages flip, so a step copies it instead of
    /// expanding pages into positions), unless `stale`.
    positions: TokenSet,
    /// Whether `positions` lags `skipped`: a step that sets its pages afresh writes them
    /// straight into the step's set and leaves `positions` behind, to be rebuilt only when a
    /// later step flips pages again.
    stale: bool,
    /// Pages that are candidates (fully older than the recent window).
    candidates: usize,
    young_rng: Rng,
    /// Entries released early, `(position, first step skipped)`, oldest first, until they
    /// become candidates.
    young: Vec<(usize, usize)>,
}

/// Highest skipped share the heavy-hitter generator gives one layer.
const MAX_LAYER_SHARE: f64 = 0.95;

/// `mean * shape`, with layers above `cap` clamped and their excess spread over the others in
/// proportion to their shape, so the mean over layers stays `mean` while it is reachable.
fn capped_targets(mean: f64, shape: &[f64], cap: f64) -> Vec<f64> {
    let mut t: Vec<f64> = shape.iter().map(|s| mean * s).collect();
    for _ in 0..shape.len() {
        let excess: f64 = t.iter().map(|v| (v - cap).max(0.0)).sum();
        if excess <= 1e-12 {
            break;
        }
        let open: f64 = shape
            .iter()
            .zip(&t)
            .filter(|(_, v)| **v < cap)
            .map(|(s, _)| s)
            .sum();
        if open <= 0.0 {
            break;
        }
        for (v, s) in t.iter_mut().zip(shape) {
            if *v >= cap {
                *v = cap;
            } else {
                *v += excess * s / open;
            }
        }
    }
    t.iter().map(|v| v.clamp(0.0, cap)).collect()
}

/// Per-layer values for a rate: explicit, or a mean shaped by `shape` (1 = flat).
fn layer_values(r: &LayerRates, shape: &[f64]) -> Vec<f64> {
    match r {
        LayerRates::PerLayer(v) => v.clone(),
        LayerRates::Mean(m) => shape.iter().map(|s| (m * s).clamp(0.0, 1.0)).collect(),
    }
}

/// Depth profile: 0 for dense layers, then a linear ramp from `1 - spread` to `1 + spread`,
/// scaled so that its mean over all layers is 1.
pub fn depth_shape(skip: &SkipSection, layers: usize) -> Vec<f64> {
    let dense = (skip.dense_layers as usize).min(layers);
    let sparse = layers - dense;
    if sparse == 0 {
        return vec![0.0; layers];
    }
    let scale = layers as f64 / sparse as f64;
    (0..layers)
        .map(|l| {
            if l < dense {
                0.0
            } else {
                let x = if sparse == 1 {
                    0.5
                } else {
                    (l - dense) as f64 / (sparse - 1) as f64
                };
                scale * (1.0 + skip.depth_spread * (2.0 * x - 1.0))
            }
        })
        .collect()
}

impl Generator {
    pub fn new(scenario: &Scenario) -> Generator {
        Generator::part(scenario, (0..scenario.sizes.layers).collect())
    }

    /// A generator of the layers `own` only (ascending), whose steps are those layers of
    /// [`Generator::new`]'s steps, bit for bit (each layer has its own streams; the flags'
    /// stream is drawn whole).
    pub fn part(scenario: &Scenario, own: Vec<usize>) -> Generator {
        let s = &scenario.sizes;
        let skip = &scenario.file.skip;
        let seed = scenario.file.seed;
        let layers = s.layers;
        let flat = vec![1.0; layers];
        let (kind, shape) = match skip.source {
            SkipSource::Uniform => {
                let p16 = round_half_up(skip.rate * 65536.0).min(65535) as u32;
                let rngs = own
                    .iter()
                    .map(|&l| Rng::new(stream_seed(seed, STREAM_TOKENS, l as u64)))
                    .collect();
                (Kind::Uniform { p16, rngs }, flat)
            }
            SkipSource::HeavyHitter => {
                let shape = depth_shape(skip, layers);
                let targets = capped_targets(skip.rate, &shape, MAX_LAYER_SHARE);
                let params = HhParams {
                    sinks: skip.sinks as usize,
                    recent: skip.recent as usize,
                    page: skip.page as usize,
                    keep: skip.keep,
                    targets,
                    flip: PageFlip::new(skip.page as usize),
                    young: skip.young_skip,
                    young_window: skip.young_window,
                    dense_layers: skip.dense_layers as usize,
                };
                let n = s.positions();
                // Pages `0..candidates`, fewer than `positions / page + 1`.
                let layers = if n / params.page <= 1 << 16 {
                    HhLayers::Narrow(own.iter().map(|&l| HhLayer::new(seed, l, n)).collect())
                } else {
                    HhLayers::Wide(own.iter().map(|&l| HhLayer::new(seed, l, n)).collect())
                };
                (Kind::HeavyHitter { params, layers }, shape)
            }
            SkipSource::None | SkipSource::File => (Kind::None, flat),
        };
        Generator {
            dims: super::TraceDims::of(scenario),
            present: vec![s.prefill as u64; own.len()],
            slot: (0..layers)
                .map(|l| own.iter().position(|&o| o == l))
                .collect(),
            own,
            kind,
            layer_rates: layer_values(&skip.layer_skip_rate, &shape),
            mlp_rates: layer_values(&skip.mlp_skip_rate, &shape),
            flags: Rng::new(stream_seed(seed, STREAM_FLAGS, 0)),
            step: s.prefill,
        }
    }
}

impl TraceSource for Generator {
    fn dims(&self) -> TraceDims {
        self.dims
    }

    fn next_step(&mut self, out: &mut StepSkips) -> Result<()> {
        self.next_steps(std::slice::from_mut(out))
    }

    /// Steps layer by layer: the flags of every step first (their one stream goes step by step,
    /// in layer order: two draws per (step, layer) whatever the outcome, so streams stay
    /// aligned), then each layer's tokens over all the steps from the layer's own streams, so
    /// that a layer's state stays in cache over the batch.
    fn next_steps(&mut self, outs: &mut [StepSkips]) -> Result<()> {
        // Room for the last step's positions in every buffer: a recycled buffer then grows at
        // most once, not every 64 steps (each growth a reallocation and, with the allocator's
        // trimming, fresh pages).
        let room = self.dims.prefill + self.dims.decode;
        for (k, out) in outs.iter_mut().enumerate() {
            out.step = self.step + k;
            out.layers.resize_with(self.own.len(), Default::default);
            out.layers
                .iter_mut()
                .for_each(|ls| ls.tokens.reserve_room(room));
            for l in 0..self.dims.layers {
                let (a, b) = (self.flags.unit(), self.flags.unit());
                if let Some(ls) = self.slot[l].and_then(|i| out.layers.get_mut(i)) {
                    ls.layer = a < self.layer_rates[l];
                    ls.mlp = !ls.layer && b < self.mlp_rates[l];
                    ls.token_count = 0;
                }
            }
        }
        for (i, present) in self.present.iter_mut().enumerate() {
            let l = self.own[i];
            for out in outs.iter_mut() {
                let n = out.step;
                let ls = &mut out.layers[i];
                match &mut self.kind {
                    Kind::None => ls.tokens.reset(n),
                    Kind::Uniform { p16, rngs } => {
                        ls.tokens.reset(n);
                        if !ls.layer && *p16 > 0 {
                            bernoulli_words(&mut rngs[i], *p16, n, &mut ls.tokens);
                            ls.token_count = ls.tokens.count();
                        }
                    }
                    Kind::HeavyHitter { params, layers } => {
                        if ls.layer {
                            ls.tokens.reset(n);
                        } else {
                            let out = &mut ls.tokens;
                            ls.token_count = match layers {
                                HhLayers::Narrow(v) => v[i].step(params, l, n, *present, out),
                                HhLayers::Wide(v) => v[i].step(params, l, n, *present, out),
                            };
                        }
                    }
                }
                debug_assert_eq!(ls.token_count, ls.tokens.count());
                if !ls.layer {
                    *present += 1;
                }
            }
        }
        self.step += outs.len();
        Ok(())
    }
}

/// Fills `out` (capacity `n`) with independent bits of probability `p16 / 65536`.
fn bernoulli_words(rng: &mut Rng, p16: u32, n: usize, out: &mut TokenSet) {
    let low = p16.trailing_zeros().min(16);
    for w in out.words_mut().iter_mut() {
        // Bits of p from least to most significant: OR for a one, AND for a zero; after all 16
        // the probability of a set bit is exactly p16 / 65536.
        let mut x = 0u64;
        for bit in low..16 {
            let r = rng.next_u64();
            x = if (p16 >> bit) & 1 == 1 { x | r } else { x & r };
        }
        *w = x;
    }
    if !n.is_multiple_of(64) {
        if let Some(last) = out.words_mut().last_mut() {
            *last &= mask_bits(0, n % 64);
        }
    }
}

/// How flipping one page changes a set of positions: pages that tile a word flip one masked
/// word (the common case: pages of 1 to 64 positions, powers of two); others flip a range.
#[derive(Clone, Copy)]
enum PageFlip {
    /// Pages of a power of two positions, `1 << per_word_log2` to a word.
    Word {
        per_word_log2: u32,
    },
    Range {
        page: usize,
    },
}

impl PageFlip {
    fn new(page: usize) -> PageFlip {
        if page.is_power_of_two() && page <= 64 {
            PageFlip::Word {
                per_word_log2: (64 / page).trailing_zeros(),
            }
        } else {
            PageFlip::Range { page }
        }
    }
}

/// Flips page `p` of `1 << (6 - PER_WORD_LOG2)` positions (`1 << PER_WORD_LOG2` pages to a
/// word).
#[inline(always)]
fn flip_word<const PER_WORD_LOG2: u32>(w: &mut [u64], p: u32) {
    let page_log2 = 6 - PER_WORD_LOG2;
    let mask = if page_log2 == 6 {
        u64::MAX
    } else {
        (1u64 << (1u32 << page_log2)) - 1
    };
    let in_word = (1u32 << PER_WORD_LOG2) - 1;
    w[(p >> PER_WORD_LOG2) as usize] ^= mask << ((p & in_word) << page_log2);
}

/// Sets (`on`) or clears page `p` of `1 << (6 - PER_WORD_LOG2)` positions, a page that is
/// clear when set and set when cleared, so that a flip does the same where a store cannot.
/// Pages of 8 to 64 positions are whole bytes of the words on a little-endian machine: one
/// plain store writes them, with no load and no mask to compute (setting a step's pages and
/// the churn's changes are most of the generator's time).
#[inline(always)]
fn put_page<const PER_WORD_LOG2: u32>(w: &mut [u64], p: u32, on: bool) {
    let little = cfg!(target_endian = "little");
    match PER_WORD_LOG2 {
        0 => w[p as usize] = if on { u64::MAX } else { 0 },
        1 if little => store(w, p as usize, if on { u32::MAX } else { 0 }),
        2 if little => store(w, p as usize, if on { u16::MAX } else { 0 }),
        3 if little => store(w, p as usize, if on { u8::MAX } else { 0 }),
        _ => flip_word::<PER_WORD_LOG2>(w, p),
    }
}

/// Writes `v` as the `i`-th `T` of the bytes of `w` (`T` one of `u8`, `u16`, `u32`, `u64`).
#[inline(always)]
fn store<T: Copy>(w: &mut [u64], i: usize, v: T) {
    let size = std::mem::size_of::<T>();
    debug_assert!(size <= 8 && 8 % size == 0 && std::mem::align_of::<T>() <= size);
    assert!(i < w.len() * (8 / size), "a page past the set");
    // SAFETY: `T` is a plain integer whose size divides 8 and whose alignment is at most its
    // size, so the `i`-th `T` from the start of `w` is aligned (the words are) and, by the
    // assert, lies inside `w`; every bit pattern is a valid `u64`.
    unsafe { (w.as_mut_ptr() as *mut T).add(i).write(v) }
}

/// Swaps `swaps` random pairs of a read and a skipped page, calling `swapped` with each pair
/// (the page that was read, the page that was skipped). Both lists are non-empty when `swaps >
/// 0` (the churn takes at most as many swaps as there are skipped pages, and none when no page
/// is read), and shorter than 2^32 (pages are `u32` at most).
#[inline(always)]
fn churn<P: PageIndex>(
    rng: &mut Rng,
    read: &mut [P],
    skipped: &mut [P],
    swaps: usize,
    mut swapped: impl FnMut(u32, u32),
) {
    let (rl, sl) = (read.len() as u64, skipped.len() as u64);
    debug_assert!(
        swaps == 0 || (rl > 0 && sl > 0 && rl <= u32::MAX as u64 && sl <= u32::MAX as u64)
    );
    let mut r_state = rng.clone();
    for _ in 0..swaps {
        let r = r_state.next_u64();
        // Multiply-shift maps 32 random bits below the length: both indices are in range.
        let i = ((r as u32 as u64 * rl) >> 32) as usize;
        let j = (((r >> 32) * sl) >> 32) as usize;
        debug_assert!(i < read.len() && j < skipped.len());
        // SAFETY: `i < rl` and `j < sl`, since `(x * len) >> 32 < len` for `x < 2^32` (above).
        // This loop is most of the generator's time (docs/performance.md): its bounds checks
        // and the test for tracking were measurable.
        unsafe {
            let (a, b) = (*read.get_unchecked(i), *skipped.get_unchecked(j));
            *read.get_unchecked_mut(i) = b;
            *skipped.get_unchecked_mut(j) = a;
            swapped(a.page(), b.page());
        }
    }
    *rng = r_state;
}

impl<P: PageIndex> HhLayer<P> {
    /// Layer `l`'s state before the first step, for sets of `positions`.
    fn new(seed: u64, l: usize, positions: usize) -> HhLayer<P> {
        HhLayer {
            rng: Rng::new(stream_seed(seed, STREAM_TOKENS, l as u64)),
            read: Vec::new(),
            skipped: Vec::new(),
            positions: TokenSet::new(positions),
            stale: false,
            candidates: 0,
            young_rng: Rng::new(stream_seed(seed, STREAM_YOUNG, l as u64)),
            young: Vec::new(),
        }
    }

    /// The skipped set of step `n` into `out` (capacity `n`); returns its size.
    fn step(
        &mut self,
        hp: &HhParams,
        layer: usize,
        n: usize,
        present: u64,
        out: &mut TokenSet,
    ) -> u64 {
        // Pages entirely older than the recent window become candidates, read at first.
        let cands = n.saturating_sub(hp.recent) / hp.page;
        while self.candidates < cands {
            self.read.push(P::of(self.candidates));
            self.candidates += 1;
        }
        match hp.flip {
            // One copy of the loop per page size, so that the shifts are constants and the
            // churn loop keeps its state in registers.
            PageFlip::Word { per_word_log2 } => match per_word_log2 {
                0 => self.choose(hp, layer, present, n, out, put_page::<0>),
                1 => self.choose(hp, layer, present, n, out, put_page::<1>),
                2 => self.choose(hp, layer, present, n, out, put_page::<2>),
                3 => self.choose(hp, layer, present, n, out, put_page::<3>),
                4 => self.choose(hp, layer, present, n, out, put_page::<4>),
                5 => self.choose(hp, layer, present, n, out, put_page::<5>),
                _ => self.choose(hp, layer, present, n, out, put_page::<6>),
            },
            PageFlip::Range { page } => self.choose(
                hp,
                layer,
                present,
                n,
                out,
                |w: &mut [u64], p: u32, _on: bool| {
                    let (start, end) = (p as usize * page, (p as usize + 1) * page);
                    for (i, word) in w
                        .iter_mut()
                        .enumerate()
                        .take(end.div_ceil(64))
                        .skip(start / 64)
                    {
                        let lo = start.max(i * 64) - i * 64;
                        let hi = end.min(i * 64 + 64) - i * 64;
                        *word ^= mask_bits(lo, hi);
                    }
                },
            ),
        }
        let mut count = self.skipped.len() as u64 * hp.page as u64;
        if !self.skipped.is_empty() && hp.sinks > 0 {
            count -= out.count_in(0, hp.sinks);
            out.remove_range(0, hp.sinks);
        }
        if hp.young > 0.0 && layer >= hp.dense_layers {
            count += self.young_releases(hp, n, out);
        }
        count
    }

    /// Moves pages between read and skipped to reach the layer's target, then churns, and
    /// writes the skipped pages' positions into `out` (capacity `n`); `put` sets (`true`) or
    /// clears a page in a set's words, a page that is clear or set (so a flip will do).
    #[inline(always)]
    fn choose(
        &mut self,
        hp: &HhParams,
        layer: usize,
        present: u64,
        n: usize,
        out: &mut TokenSet,
        put: impl Fn(&mut [u64], u32, bool),
    ) {
        let target = round_half_up(hp.targets[layer] * present as f64 / hp.page as f64) as usize;
        let target = target.min(self.candidates);
        // Pages moved to reach the target: all from read to skipped, or all back.
        let grow = self.skipped.len() < target;
        let mut moved = Vec::new();
        while self.skipped.len() < target {
            let i = self.rng.below(self.read.len() as u64) as usize;
            let p = self.read.swap_remove(i);
            moved.push(p);
            self.skipped.push(p);
        }
        while self.skipped.len() > target {
            let i = self.rng.below(self.skipped.len() as u64) as usize;
            let p = self.skipped.swap_remove(i);
            moved.push(p);
            self.read.push(p);
        }
        // Churn: swap (1 - keep) of the read pages with skipped ones.
        let swaps = (round_half_up((1.0 - hp.keep) * self.read.len() as f64) as usize)
            .min(self.skipped.len());
        // Changing the two pages of every swap costs more than setting the skipped pages
        // afresh once the swaps outnumber half the skipped pages: then the loop only swaps.
        let rebuild = 2 * swaps > self.skipped.len();
        let track = !rebuild && !self.stale;
        let words = self.positions.words_mut();
        if track {
            moved.iter().for_each(|&p| put(words, p.page(), grow));
        }
        let (read, skipped) = (&mut self.read[..], &mut self.skipped[..]);
        // Two copies of the loop, so that the one that does not track has no pages to write.
        // A page swapped twice in one step is written twice, in order: its last state stays.
        if track {
            churn(&mut self.rng, read, skipped, swaps, |a, b| {
                put(words, a, true);
                put(words, b, false);
            });
        } else {
            churn(&mut self.rng, read, skipped, swaps, |_, _| {});
        }
        // Every skipped page lies whole below `n - recent` (and below the candidates): the
        // step's set needs no tail mask, and nothing past the candidates is ever set.
        if rebuild {
            out.reset(n);
            let step_words = out.words_mut();
            skipped
                .iter()
                .for_each(|&p| put(step_words, p.page(), true));
            self.stale = true;
            return;
        }
        if self.stale {
            // Changes resume with this step: bring `positions` up to date.
            words.fill(0);
            skipped.iter().for_each(|&p| put(words, p.page(), true));
            self.stale = false;
        }
        out.copy_prefix(&self.positions, n);
    }

    /// Skips the entries released early from the recent window whose release step has come (and
    /// that are not yet candidates), then decides the release of the entry written at step `n`.
    /// Returns how many positions it added to `out`.
    fn young_releases(&mut self, hp: &HhParams, n: usize, out: &mut TokenSet) -> u64 {
        let first_young = self.candidates * hp.page;
        self.young.retain(|&(p, _)| p >= first_young);
        let mut added = 0;
        for &(p, from) in &self.young {
            if from <= n && p >= hp.sinks && !out.contains(p) {
                out.insert(p);
                added += 1;
            }
        }
        // Two draws per written entry whatever the outcome, so the stream stays aligned.
        let (u, age) = (self.young_rng.unit(), self.young_rng.below(hp.young_window));
        if u < hp.young {
            self.young.push((n, n + 1 + age as usize));
        }
        added
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The positions of `pages` below `n`, without the first `sinks`: what a step must hold.
    fn expand<P: PageIndex>(pages: &[P], page: usize, n: usize, sinks: usize) -> TokenSet {
        let mut s = TokenSet::new(n);
        for &p in pages {
            let start = p.page() as usize * page;
            s.insert_range(start.max(sinks).min(n), (start + page).min(n));
        }
        s
    }

    proptest! {
        /// Whichever way a step is built (pages flipped in the kept positions and copied, or set
        /// afresh in the step's set, which leaves the kept positions behind until a later step
        /// flips again), it holds exactly the skipped pages. `keep` changes from step to step so
        /// that steps switch between the two ways in every order. Lists of `u16` and of `u32`
        /// give the same steps.
        #[test]
        fn a_step_holds_exactly_the_skipped_pages(
            page in prop::sample::select(vec![1usize, 2, 8, 16, 64, 100]),
            keeps in prop::collection::vec(prop::sample::select(vec![0.0, 0.3, 0.7, 0.95, 1.0]), 1..30),
            share in 0.05f64..0.9,
            seed in any::<u64>(),
        ) {
            let mut hp = HhParams {
                sinks: 4,
                recent: 64,
                page,
                keep: 1.0,
                targets: vec![share],
                flip: PageFlip::new(page),
                young: 0.0,
                young_window: 1,
                dense_layers: 0,
            };
            let positions = 3000 + keeps.len();
            let mut narrow = HhLayer::<u16>::new(seed, 0, positions);
            let mut wide = HhLayer::<u32>::new(seed, 0, positions);
            let (mut out, mut out_wide) = (TokenSet::default(), TokenSet::default());
            for (k, &keep) in keeps.iter().enumerate() {
                hp.keep = keep;
                let n = 3000 + k;
                let count = narrow.step(&hp, 0, n, n as u64, &mut out);
                let want = expand(&narrow.skipped, page, n, hp.sinks);
                prop_assert!(out == want, "step {k}: the set differs from its pages");
                prop_assert_eq!(count, want.count());
                let count_wide = wide.step(&hp, 0, n, n as u64, &mut out_wide);
                prop_assert!(out_wide == out, "step {k}: u32 lists differ from u16 lists");
                prop_assert_eq!(count_wide, count);
            }
        }
    }

    /// The lists are `u16` while `positions / page` is at most 65,536 (the pages' indices are
    /// below it), and `u32` beyond: pages of 16 to 1,048,591 positions, pages of one to 65,536
    /// (prefill plus 8 decode steps below).
    #[test]
    fn lists_are_narrow_while_the_pages_fit() -> anyhow::Result<()> {
        let narrow = |prefill: usize, page: usize| -> anyhow::Result<bool> {
            let s = Scenario::from_toml(
                &format!(
                    "name = \"widths\"\n\
                     [model]\nlayers = 2\nparams = 1e6\ndtype_bytes = 2\nkv_bytes = \"1 KB\"\n\
                     [workload]\nprefill = {prefill}\ndecode = 8\n\
                     [hbm]\ncapacity = 100\nbandwidth = 1000\n\
                     [ext]\nlink_bandwidth = 100\ninternal_bandwidth = 200\n\
                     [skip]\nsource = \"heavy_hitter\"\nrate = 0.3\npage = {page}\n"
                ),
                None,
            )?;
            match Generator::new(&s).kind {
                Kind::HeavyHitter { layers, .. } => Ok(matches!(layers, HhLayers::Narrow(_))),
                _ => anyhow::bail!("not a heavy-hitter generator"),
            }
        };
        assert!(narrow(1_048_576 - 8, 16)?);
        assert!(narrow(1_048_576 + 15 - 8, 16)?);
        assert!(!narrow(1_048_576 + 16 - 8, 16)?);
        assert!(narrow(65_536 - 8, 1)?);
        assert!(!narrow(65_536 + 1 - 8, 1)?);
        Ok(())
    }
}
