//! Two-tier memory state: where each KV entry lives, the HBM KV byte counter, the copy queue of
//! async migration, and the bytes every read, write and move charges to the three bandwidth
//! resources (SPEC 3, 6 and 12).
//!
//! Residency is kept per layer as bitsets over positions: `present` (the entry exists: every
//! prefill position, and each decode position whose layer was not skipped), `hbm` (the entry
//! has a copy on HBM) and `queued` (the entry has a move on the copy queue, async mode only). In
//! the exclusive hierarchy an entry is on EXT exactly when it is present and not on HBM; in the
//! inclusive hierarchy every present entry is on EXT.
//!
//! Architecture Invariant: the HBM KV bytes in use (resident entries plus the reservations of
//! queued promotions) never exceed the budget. Every operation that adds to HBM checks the room
//! first; nothing outside this module can set residency bits.
//!
//! Not here: the time rules ([`charges`]), policies, the trace.

mod blocks;
mod charges;
mod copy;

pub use charges::{row_time, Charges, Timing};

use std::ops::Range;

use crate::scenario::{initial_hbm_range, Access, Hierarchy, MigrationMode, Scenario, Sizes};
use crate::tokenset::TokenSet;
use copy::{CopyJob, CopyQueue};

/// Charges of an attention sublayer reading `total` KV entries of `k` bytes, `on_hbm` of them
/// from HBM and the rest from EXT (fetched over the link, or read inside the device in
/// near_data mode). The engine and the optimizer's evaluator both charge through this.
pub fn kv_read_charges(c: &mut Charges, access: Access, k: u64, total: u64, on_hbm: u64) {
    let on_ext = total - on_hbm;
    c.read_hbm(on_hbm * k);
    c.kv_read += total * k;
    match access {
        Access::Fetch => c.fetch_ext(on_ext * k),
        Access::NearData => c.near_read_ext(on_ext * k),
    }
}

/// Charges of writing one new entry of `k` bytes to `tier` (an inclusive hierarchy also writes
/// an HBM entry's EXT copy).
pub fn new_entry_charges(c: &mut Charges, hierarchy: Hierarchy, k: u64, tier: Tier) {
    if tier == Tier::Hbm {
        c.write_hbm(k);
        if hierarchy == Hierarchy::Inclusive {
            c.write_ext(k);
        }
    } else {
        c.write_ext(k);
    }
}

/// A memory tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tier {
    Hbm,
    Ext,
}

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Tier::Hbm => "hbm",
            Tier::Ext => "ext",
        }
    }
}

#[derive(Clone, Debug)]
struct LayerResidency {
    present: TokenSet,
    hbm: TokenSet,
    /// Entries with a move on the copy queue (async mode); empty in sync mode.
    queued: TokenSet,
    present_count: u64,
    /// One past the highest present position: `present` is exactly `0..present_end` when it
    /// holds `present_end` entries (see [`Memory::present_prefix`]).
    present_end: usize,
    hbm_count: u64,
    queued_count: u64,
}

impl LayerResidency {
    /// `Some(m)` when the present entries are exactly the positions `0..m`.
    fn present_prefix(&self) -> Option<usize> {
        (self.present_count == self.present_end as u64).then_some(self.present_end)
    }

    /// Makes the entry at `pos` exist.
    fn insert_present(&mut self, pos: usize) {
        debug_assert!(!self.present.contains(pos), "entry {pos} written twice");
        self.present.insert(pos);
        self.present_count += 1;
        self.present_end = self.present_end.max(pos + 1);
    }
}

/// Counters a run reports about memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryCounters {
    /// Placements on HBM that went to EXT for lack of room.
    pub fallbacks: u64,
    /// Bytes a promotion wanted to move to HBM but found no room for.
    pub refused_bytes: u64,
    /// Highest HBM KV bytes seen.
    pub peak_hbm_kv_bytes: u64,
    /// Bytes installed in HBM by passive migration.
    pub passive_bytes: u64,
    /// Bytes of HBM copies dropped by inclusive demotions in async mode: immediate and free,
    /// counted in the summary's moved-to-EXT figure but in no row (SPEC 12).
    pub async_dropped_bytes: u64,
}

/// KV residency of the whole model.
#[derive(Clone, Debug)]
pub struct Memory {
    layers: Vec<LayerResidency>,
    hierarchy: Hierarchy,
    access: Access,
    entry_bytes: u64,
    /// Positions per KV block (SPEC 14; 1 = per-token residency).
    block_tokens: usize,
    /// `entry_bytes * block_tokens`: the budget one block on HBM takes.
    block_bytes: u64,
    /// Whether moves, passive installs and new entries take the block code paths (always with
    /// `block_tokens > 1`; tests also run them with one position per block).
    block_paths: bool,
    budget_bytes: u64,
    /// Resident HBM KV (whole blocks) plus the reservations of queued promotions.
    hbm_used_bytes: u64,
    mode: MigrationMode,
    copies: CopyQueue,
    pub counters: MemoryCounters,
}

/// Which entries a move may take first when it cannot take them all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    NewestFirst,
    OldestFirst,
}

impl Memory {
    /// The state before the first decode step (SPEC 4).
    pub fn initial(scenario: &Scenario) -> Memory {
        let s: &Sizes = &scenario.sizes;
        let positions = s.positions();
        let layers = (0..s.layers)
            .map(|l| {
                let present = TokenSet::range(positions, 0, s.prefill);
                let (a, b) = initial_hbm_range(
                    &scenario.file.initial,
                    s.layers,
                    s.prefill,
                    l,
                    s.block_tokens,
                );
                let hbm = TokenSet::range(positions, a, b);
                LayerResidency {
                    present,
                    hbm,
                    queued: TokenSet::new(positions),
                    present_count: s.prefill as u64,
                    present_end: s.prefill,
                    hbm_count: (b - a) as u64,
                    queued_count: 0,
                }
            })
            .collect();
        let used = s.initial_hbm_kv_bytes;
        Memory {
            layers,
            hierarchy: scenario.file.memory.hierarchy,
            access: scenario.file.ext.access,
            entry_bytes: s.entry_bytes,
            block_tokens: s.block_tokens,
            block_bytes: s.block_bytes,
            block_paths: s.block_tokens > 1,
            budget_bytes: s.kv_budget_bytes,
            hbm_used_bytes: used,
            mode: scenario.file.memory.migration,
            copies: CopyQueue::new(s.copy_read_bw, s.copy_write_bw, s.entry_bytes),
            counters: MemoryCounters {
                peak_hbm_kv_bytes: used,
                ..Default::default()
            },
        }
    }

    /// Replaces the initial HBM split of the layers given `Some` set of prefill positions (a
    /// placement's `initial` hook): with KV blocks every block holding a chosen position goes
    /// wholly to HBM. Call before the first decode step. Fails when the split does not fit the
    /// HBM KV budget.
    pub fn set_initial_hbm(&mut self, sets: Vec<Option<TokenSet>>) -> anyhow::Result<()> {
        let bt = self.block_tokens;
        let mut used = 0u64;
        for (l, (r, set)) in self.layers.iter_mut().zip(sets).enumerate() {
            if let Some(set) = set {
                let mut hbm = TokenSet::new(r.present.capacity());
                for (a, b) in set.ranges() {
                    hbm.insert_range(a / bt * bt, b.div_ceil(bt) * bt);
                }
                hbm.intersect_with(&r.present);
                r.hbm_count = hbm.count();
                r.hbm = hbm;
            }
            let blocks = if bt == 1 {
                r.hbm_count
            } else {
                let mut blocks = 0;
                let mut x = 0;
                while let Some(p) = r.hbm.next_from(x) {
                    blocks += 1;
                    x = (p / bt + 1) * bt;
                }
                blocks
            };
            used += blocks * self.block_bytes;
            if used > self.budget_bytes {
                anyhow::bail!(
                    "the placement's initial split does not fit the HBM KV budget: {used} B by layer {l}, budget {} B",
                    self.budget_bytes
                );
            }
        }
        self.hbm_used_bytes = used;
        self.counters.peak_hbm_kv_bytes = used;
        Ok(())
    }

    pub fn layers(&self) -> usize {
        self.layers.len()
    }
    pub fn entry_bytes(&self) -> u64 {
        self.entry_bytes
    }
    pub fn hierarchy(&self) -> Hierarchy {
        self.hierarchy
    }
    pub fn budget_bytes(&self) -> u64 {
        self.budget_bytes
    }
    pub fn hbm_used_bytes(&self) -> u64 {
        self.hbm_used_bytes
    }
    pub fn hbm_free_bytes(&self) -> u64 {
        self.budget_bytes - self.hbm_used_bytes
    }
    /// Positions per KV block.
    pub fn block_tokens(&self) -> usize {
        self.block_tokens
    }

    /// Runs the block code paths even with one position per block (for tests that check they
    /// give the per-entry results). Call before the first entry is written.
    #[doc(hidden)]
    pub fn use_block_paths(&mut self) {
        self.block_paths = true;
    }

    /// Entries that exist at `layer`.
    pub fn present(&self, layer: usize) -> &TokenSet {
        &self.layers[layer].present
    }
    /// Entries with a copy on HBM at `layer`.
    pub fn hbm(&self, layer: usize) -> &TokenSet {
        &self.layers[layer].hbm
    }
    pub fn present_count(&self, layer: usize) -> u64 {
        self.layers[layer].present_count
    }
    /// `Some(m)` when the entries that exist at `layer` are exactly the positions `0..m` (as
    /// long as every step writes its entry, they are).
    pub fn present_prefix(&self, layer: usize) -> Option<usize> {
        self.layers[layer].present_prefix()
    }
    pub fn hbm_count(&self, layer: usize) -> u64 {
        self.layers[layer].hbm_count
    }
    /// Entries at `layer` with a move on the copy queue (always empty in sync mode).
    pub fn queued(&self, layer: usize) -> &TokenSet {
        &self.layers[layer].queued
    }
    pub fn queued_count(&self, layer: usize) -> u64 {
        self.layers[layer].queued_count
    }
    pub fn mode(&self) -> MigrationMode {
        self.mode
    }
    /// Bytes on the copy queue not yet copied (queued and unfinished).
    pub fn copy_queue_bytes(&self) -> u64 {
        self.copies.pending_bytes()
    }
    /// Entries held on EXT at `layer` (all present ones when inclusive).
    pub fn ext_set(&self, layer: usize) -> TokenSet {
        let r = &self.layers[layer];
        if self.hierarchy == Hierarchy::Exclusive {
            TokenSet::and_not(&r.present, &r.hbm)
        } else {
            r.present.clone()
        }
    }
    /// Tier a read of `(pos, layer)` is served from, `None` if the entry does not exist.
    pub fn tier_of(&self, layer: usize, pos: usize) -> Option<Tier> {
        let r = &self.layers[layer];
        if !r.present.contains(pos) {
            None
        } else if r.hbm.contains(pos) {
            Some(Tier::Hbm)
        } else {
            Some(Tier::Ext)
        }
    }

    fn note_peak(&mut self) {
        self.counters.peak_hbm_kv_bytes = self.counters.peak_hbm_kv_bytes.max(self.hbm_used_bytes);
    }

    /// Whether one more block (with `block_tokens = 1`, one more entry) fits in the budget.
    pub fn has_room(&self) -> bool {
        self.hbm_used_bytes + self.block_bytes <= self.budget_bytes
    }

    /// Writes the new entry `(pos, layer)`. The first entry of a block (every entry with
    /// `block_tokens = 1`) goes where `want` says: a request for HBM without room for a whole
    /// block goes to EXT and counts as a fallback. A later entry of a block follows the block
    /// and `want` is not used (the engine does not ask the placement; see
    /// [`Memory::block_started`]). Returns the tier used.
    pub fn write_new(&mut self, layer: usize, pos: usize, want: Tier, c: &mut Charges) -> Tier {
        let k = self.entry_bytes;
        if self.block_paths {
            if let Some(tier) = self.write_into_block(layer, pos, c) {
                return tier;
            }
        }
        let tier = if want == Tier::Hbm && !self.has_room() {
            self.counters.fallbacks += 1;
            Tier::Ext
        } else {
            want
        };
        let r = &mut self.layers[layer];
        r.insert_present(pos);
        new_entry_charges(c, self.hierarchy, k, tier);
        if tier == Tier::Hbm {
            r.hbm.insert(pos);
            r.hbm_count += 1;
            self.hbm_used_bytes += self.block_bytes;
            self.note_peak();
        }
        tier
    }

    /// Charges the KV reads of `layer` at step `n`: every present position `t < n` not in
    /// `skipped` (a set of capacity `n`), each from its tier. Returns the entries read, in all
    /// and from EXT.
    pub fn read_kv(
        &self,
        layer: usize,
        skipped: Option<(&TokenSet, u64)>,
        c: &mut Charges,
    ) -> (u64, u64) {
        let r = &self.layers[layer];
        let (total, on_hbm) = match skipped {
            None => (r.present_count, r.hbm_count),
            Some((skip, count)) => match self.present_prefix(layer) {
                // The entries are positions 0..m: see [`reads_of_prefix`].
                Some(m) => reads_of_prefix(m, r.hbm.words(), skip, count),
                // Before the new entry is written nothing at or past `n` (the skip set's
                // capacity) is present.
                None => reads_by_word(
                    r.present.words(),
                    r.hbm.words(),
                    skip.words(),
                    skip.capacity(),
                ),
            },
        };
        kv_read_charges(c, self.access, self.entry_bytes, total, on_hbm);
        (total, total - on_hbm)
    }

    /// Passive migration: installs the EXT entries just read at `layer` (present, `< n`, not
    /// skipped, not on HBM, no queued move) into HBM, newest first, while the budget has room. Charges an HBM
    /// write only: the bytes already crossed the link for the read.
    pub fn passive_install(
        &mut self,
        layer: usize,
        n: usize,
        skipped: Option<&TokenSet>,
        c: &mut Charges,
    ) {
        if self.block_paths {
            return self.passive_install_blocks(layer, n, skipped, c);
        }
        let room = self.hbm_free_bytes() / self.entry_bytes;
        if room == 0 {
            return;
        }
        let r = &mut self.layers[layer];
        let queued = pending(&r.queued, r.queued_count);
        let moved = take_newest(&r.present, &mut r.hbm, skipped, queued, n, room);
        let b = moved * self.entry_bytes;
        r.hbm_count += moved;
        self.hbm_used_bytes += b;
        self.counters.passive_bytes += b;
        c.write_hbm(b);
        c.to_hbm += b;
        self.note_peak();
    }

    /// Moves the entries of `set` to `to` at the layers of `layers`, in order, with one cap of
    /// `cap_bytes` for the whole call; promotions take the newest entries first, demotions
    /// `order`. With KV blocks the set is widened to whole blocks and the cap admits whole
    /// blocks (SPEC 14). Sync mode moves at once and charges `c`; async mode appends one copy
    /// job to the queue (nothing is charged until the copy engine works on it). Returns the
    /// bytes moved or queued.
    pub fn move_entries(
        &mut self,
        layers: Range<usize>,
        set: &TokenSet,
        cap_bytes: u64,
        to: Tier,
        order: Order,
        c: &mut Charges,
    ) -> u64 {
        let mut job = (self.mode == MigrationMode::Async).then(|| CopyJob::new(to));
        let k = self.entry_bytes;
        let mut cap = cap_bytes;
        let mut moved = 0;
        for l in layers {
            let m = match (to, self.block_paths) {
                (Tier::Hbm, false) => self.promote(l, set, cap / k, job.as_mut(), c) * k,
                (Tier::Ext, false) => self.demote(l, set, cap / k, order, job.as_mut(), c) * k,
                (Tier::Hbm, true) => self.promote_blocks(l, set, cap, job.as_mut(), c),
                (Tier::Ext, true) => self.demote_blocks(l, set, cap, order, job.as_mut(), c),
            };
            cap -= m;
            moved += m;
        }
        if let Some(job) = job {
            self.copies.push(job);
        }
        moved
    }

    /// Moves (or, with a `job`, queues) the entries of `set` at `layer` that are on EXT only and
    /// not queued to HBM, newest first, at most `cap_entries` of them, as far as the budget has
    /// room; the rest counts as refused. A queued promotion reserves its budget now.
    fn promote(
        &mut self,
        layer: usize,
        set: &TokenSet,
        cap_entries: u64,
        job: Option<&mut CopyJob>,
        c: &mut Charges,
    ) -> u64 {
        let k = self.entry_bytes;
        let r = &mut self.layers[layer];
        // The wanted entries: on EXT only (present, not on HBM) and not queued.
        let want = |r: &LayerResidency| {
            let mut want = TokenSet::and_minus(set, &r.present, Some(&r.hbm));
            if r.queued_count > 0 {
                want.subtract(&r.queued);
            }
            want
        };
        // While the present entries are the positions `0..e`, the passes of the unqueued case
        // need not read them.
        let prefix = r.present_prefix();
        let available = if r.queued_count > 0 {
            want(r).count()
        } else if let Some(e) = prefix {
            TokenSet::count_below_minus(set, e, Some(&r.hbm))
        } else {
            TokenSet::count_and_minus(set, &r.present, Some(&r.hbm))
        };
        let wanted = available.min(cap_entries);
        let room = (self.budget_bytes - self.hbm_used_bytes) / k;
        let moved = wanted.min(room);
        self.counters.refused_bytes += (wanted - moved) * k;
        if moved == 0 {
            return 0;
        }
        let b = moved * k;
        self.hbm_used_bytes += b;
        match job {
            None => {
                // Word-wise, not a bit at a time: the newest `moved` wanted entries, or all of
                // them (`hbm | (set & present)` is `hbm | want` when nothing is queued).
                if moved < available || r.queued_count > 0 {
                    let mut want = want(r);
                    want.keep_newest(moved);
                    r.hbm.union_with(&want);
                } else if let Some(e) = prefix {
                    r.hbm.union_below(set, e);
                } else {
                    r.hbm.union_and(set, &r.present);
                }
                r.hbm_count += moved;
                c.move_up(b);
                c.to_hbm += b;
            }
            Some(job) => {
                for p in want(r).iter_rev().take(moved as usize) {
                    r.queued.insert(p);
                    job.add(layer, p, 1);
                }
                r.queued_count += moved;
            }
        }
        self.note_peak();
        moved
    }

    /// Moves the entries of `set` at `layer` that are on HBM and not queued to EXT (in the
    /// inclusive hierarchy: drops their HBM copy, free of charge and never queued), in `order`,
    /// at most `cap_entries`. An exclusive demotion with a `job` is queued and keeps its budget
    /// until its copy completes.
    fn demote(
        &mut self,
        layer: usize,
        set: &TokenSet,
        cap_entries: u64,
        order: Order,
        job: Option<&mut CopyJob>,
        c: &mut Charges,
    ) -> u64 {
        let k = self.entry_bytes;
        let exclusive = self.hierarchy == Hierarchy::Exclusive;
        let r = &mut self.layers[layer];
        let queued = pending(&r.queued, r.queued_count);
        let count = TokenSet::count_and_minus(set, &r.hbm, queued);
        let moved = count.min(cap_entries);
        if moved == 0 {
            return 0;
        }
        // The entries that may go: on HBM and not queued.
        let take = |r: &LayerResidency| {
            TokenSet::and_minus(set, &r.hbm, pending(&r.queued, r.queued_count))
        };
        let victims = |take: &TokenSet| -> Vec<usize> {
            match order {
                Order::NewestFirst => take.iter_rev().take(moved as usize).collect(),
                Order::OldestFirst => take.iter().take(moved as usize).collect(),
            }
        };
        let b = moved * k;
        match job {
            Some(job) if exclusive => {
                for p in victims(&take(r)) {
                    r.queued.insert(p);
                    job.add(layer, p, 1);
                }
                r.queued_count += moved;
                return moved;
            }
            Some(_) => self.counters.async_dropped_bytes += b,
            None => {
                if exclusive {
                    c.move_down(b);
                }
                c.to_ext += b;
            }
        }
        // Word-wise, not a bit at a time: the `moved` victims in `order`, or all of them
        // (`hbm - (set - queued)` is `hbm - take`).
        if moved < count {
            let mut take = take(r);
            match order {
                Order::NewestFirst => take.keep_newest(moved),
                Order::OldestFirst => take.keep_oldest(moved),
            }
            r.hbm.subtract(&take);
        } else {
            let queued = pending(&r.queued, r.queued_count);
            r.hbm.subtract_minus(set, queued);
        }
        r.hbm_count -= moved;
        self.hbm_used_bytes -= b;
        moved
    }

    /// The copy engine working for `seconds` (SPEC 12): advances the queue, charging the bytes
    /// it copies to `c` (`c.copy` counts them). Completions wait for [`Memory::complete_copies`].
    pub fn run_copies(&mut self, seconds: f64, c: &mut Charges) {
        self.copies.work(seconds, c);
    }

    /// Applies the completions of the blocks (entries, with `block_tokens = 1`) whose copied
    /// bytes reached their last entry, in queue order, and counts their present entries in
    /// `c.to_hbm` / `c.to_ext`. Done jobs leave the queue.
    pub fn complete_copies(&mut self, c: &mut Charges) {
        let k = self.entry_bytes;
        while let Some(mut job) = self.copies.pop_front() {
            for (layer, block) in job.take_completed(k) {
                self.complete_block(layer, block, job.to, c);
            }
            if !job.is_done(k) {
                self.copies.push_front(job);
                break;
            }
        }
    }
}

/// The queued set when something is queued (so that a pass over it is skipped otherwise).
pub(super) fn pending(queued: &TokenSet, count: u64) -> Option<&TokenSet> {
    (count > 0).then_some(queued)
}

/// The positions below `step` present (`p`) and not skipped (`sk`), and how many of them are on
/// HBM (`h`), counted word by word.
pub(crate) fn reads_by_word(p: &[u64], h: &[u64], sk: &[u64], step: usize) -> (u64, u64) {
    crate::tokenset::wide(|| {
        // Whole words below the step first (a loop the compiler vectorises), then the partial one.
        let full = (step / 64).min(p.len()).min(sk.len());
        let (mut total, mut on_hbm) = (0u64, 0u64);
        for ((&pw, &hw), &sw) in p[..full].iter().zip(&h[..full]).zip(&sk[..full]) {
            let read = pw & !sw;
            total += read.count_ones() as u64;
            on_hbm += (read & hw).count_ones() as u64;
        }
        if !step.is_multiple_of(64) && full < p.len() {
            let skipped = sk.get(full).copied().unwrap_or(0);
            let read = p[full] & !skipped & crate::tokenset::mask_bits(0, step % 64);
            total += read.count_ones() as u64;
            on_hbm += (read & h[full]).count_ones() as u64;
        }
        (total, on_hbm)
    })
}

/// The entries a step reads and how many of them are on HBM, when the entries that exist are
/// the positions `0..m` (every step writes its entry, so they are): `m` less the skipped ones
/// among them (from `skipped`'s count, without a pass), and one popcount a word of the HBM
/// entries (all below `m`) not skipped. A word past `skipped`'s end skips nothing.
pub(crate) fn reads_of_prefix(
    m: usize,
    h: &[u64],
    skipped: &TokenSet,
    skipped_count: u64,
) -> (u64, u64) {
    debug_assert_eq!(skipped_count, skipped.count());
    let read = m as u64 - (skipped_count - skipped.count_in(m, usize::MAX));
    crate::tokenset::wide(|| {
        let sk = skipped.words();
        let n = h.len().min(sk.len());
        let both = h[..n].iter().zip(&sk[..n]);
        let on_hbm = both
            .map(|(h, s)| u64::from((h & !s).count_ones()))
            .sum::<u64>()
            + h[n..]
                .iter()
                .map(|w| u64::from(w.count_ones()))
                .sum::<u64>();
        (read, on_hbm)
    })
}

/// Sets on `hbm` up to `room` of the positions `< n` in `present & !skipped & !queued & !hbm`,
/// newest first. Returns how many were set.
fn take_newest(
    present: &TokenSet,
    hbm: &mut TokenSet,
    skipped: Option<&TokenSet>,
    queued: Option<&TokenSet>,
    n: usize,
    room: u64,
) -> u64 {
    let words = n.div_ceil(64);
    let (p, h) = (present.words(), hbm.words_mut());
    let mut left = room;
    for i in (0..words.min(p.len())).rev() {
        let mut cand = p[i] & !h[i];
        if let Some(s) = skipped {
            cand &= !s.words().get(i).copied().unwrap_or(0);
        }
        if let Some(q) = queued {
            cand &= !q.words()[i];
        }
        if i == words - 1 && !n.is_multiple_of(64) {
            cand &= crate::tokenset::mask_bits(0, n % 64);
        }
        while cand != 0 && left > 0 {
            let hi = 63 - cand.leading_zeros();
            cand &= !(1u64 << hi);
            h[i] |= 1u64 << hi;
            left -= 1;
        }
        if left == 0 {
            break;
        }
    }
    room - left
}
