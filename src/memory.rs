//! Two-tier memory state: where each KV entry lives, the HBM KV byte counter, and the bytes every
//! read, write and move charges to the three bandwidth resources (SPEC 3 and 6).
//!
//! Residency is kept per layer as bitsets over positions: `present` (the entry exists: every
//! prefill position, and each decode position whose layer was not skipped) and `hbm` (the entry
//! has a copy on HBM). In the exclusive hierarchy an entry is on EXT exactly when it is present
//! and not on HBM; in the inclusive hierarchy every present entry is on EXT.
//!
//! Architecture Invariant: the HBM KV bytes never exceed the budget. Every operation that adds to
//! HBM checks the room first; nothing outside this module can set residency bits.
//!
//! Not here: time (see [`Charges::time`] callers in the engine), policies, the trace.

use crate::scenario::{initial_hbm_range, Access, Duplex, Hierarchy, Overlap, Scenario, Sizes};
use crate::tokenset::TokenSet;

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

/// Bytes one sublayer or step phase reads, charges to each resource, and moves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Charges {
    /// Bytes read from HBM (weights and KV).
    pub hbm_read: u64,
    /// Bytes read from EXT (weights and KV).
    pub ext_read: u64,
    /// Of the reads, KV bytes (both tiers); used by the ideal bound.
    pub kv_read: u64,
    /// HBM resource bytes (reads, writes, moves).
    pub hbm: u64,
    /// LINK bytes in the EXT -> GPU direction.
    pub link_read: u64,
    /// LINK bytes in the GPU -> EXT direction.
    pub link_write: u64,
    /// EXTI resource bytes.
    pub exti: u64,
    /// Bytes moved to HBM (policy promotions and passive installs).
    pub to_hbm: u64,
    /// Bytes moved to EXT (policy demotions).
    pub to_ext: u64,
}

/// Bandwidths and modes needed to turn charges into time.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub hbm_bw: f64,
    pub link_bw: f64,
    pub exti_bw: f64,
    pub duplex: Duplex,
    pub overlap: Overlap,
}

impl Timing {
    pub fn of(scenario: &Scenario) -> Timing {
        let s = &scenario.sizes;
        Timing {
            hbm_bw: s.hbm_bw,
            link_bw: s.link_bw,
            exti_bw: s.exti_bw,
            duplex: scenario.file.ext.link_duplex,
            overlap: scenario.file.memory.overlap,
        }
    }
}

impl Charges {
    pub fn is_empty(&self) -> bool {
        *self == Charges::default()
    }

    /// Total LINK bytes, both directions.
    pub fn link(&self) -> u64 {
        self.link_read + self.link_write
    }

    /// Bytes read (weights + KV, both tiers).
    pub fn read(&self) -> u64 {
        self.hbm_read + self.ext_read
    }

    /// `alpha`: HBM share of the bytes read, `None` when nothing was read.
    pub fn alpha(&self) -> Option<f64> {
        let r = self.read();
        (r > 0).then(|| self.hbm_read as f64 / r as f64)
    }

    fn link_time(&self, t: &Timing) -> f64 {
        match t.duplex {
            Duplex::Shared => self.link() as f64 / t.link_bw,
            Duplex::Full => self.link_read.max(self.link_write) as f64 / t.link_bw,
        }
    }

    /// Sublayer time under the scenario's overlap mode (SPEC 6).
    pub fn sublayer_time(&self, t: &Timing) -> f64 {
        let hbm = self.hbm as f64 / t.hbm_bw;
        let link = self.link_time(t);
        let exti = self.exti as f64 / t.exti_bw;
        match t.overlap {
            Overlap::Max => hbm.max(link).max(exti),
            Overlap::Serial => hbm + link.max(exti),
        }
    }

    /// Step-phase time: always the max over resources (SPEC 6.1).
    pub fn phase_time(&self, t: &Timing) -> f64 {
        let hbm = self.hbm as f64 / t.hbm_bw;
        hbm.max(self.link_time(t)).max(self.exti as f64 / t.exti_bw)
    }

    pub fn add(&mut self, o: &Charges) {
        self.hbm_read += o.hbm_read;
        self.ext_read += o.ext_read;
        self.kv_read += o.kv_read;
        self.hbm += o.hbm;
        self.link_read += o.link_read;
        self.link_write += o.link_write;
        self.exti += o.exti;
        self.to_hbm += o.to_hbm;
        self.to_ext += o.to_ext;
    }

    /// A read of `b` bytes from HBM.
    pub fn read_hbm(&mut self, b: u64) {
        self.hbm_read += b;
        self.hbm += b;
    }

    /// A fetch of `b` bytes from EXT over the link.
    pub fn fetch_ext(&mut self, b: u64) {
        self.ext_read += b;
        self.link_read += b;
        self.exti += b;
    }

    /// A read of `b` bytes of KV computed inside the EXT device (near_data).
    pub fn near_read_ext(&mut self, b: u64) {
        self.ext_read += b;
        self.exti += b;
    }

    fn write_hbm(&mut self, b: u64) {
        self.hbm += b;
    }

    fn write_ext(&mut self, b: u64) {
        self.link_write += b;
        self.exti += b;
    }
}

#[derive(Clone, Debug)]
struct LayerResidency {
    present: TokenSet,
    hbm: TokenSet,
    present_count: u64,
    hbm_count: u64,
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
}

/// KV residency of the whole model.
#[derive(Clone, Debug)]
pub struct Memory {
    layers: Vec<LayerResidency>,
    hierarchy: Hierarchy,
    access: Access,
    entry_bytes: u64,
    budget_bytes: u64,
    hbm_used_bytes: u64,
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
                let (a, b) = initial_hbm_range(&scenario.file.initial, s.layers, s.prefill, l);
                let hbm = TokenSet::range(positions, a, b);
                LayerResidency {
                    present,
                    hbm,
                    present_count: s.prefill as u64,
                    hbm_count: (b - a) as u64,
                }
            })
            .collect();
        let used = s.initial_hbm_kv_bytes;
        Memory {
            layers,
            hierarchy: scenario.file.memory.hierarchy,
            access: scenario.file.ext.access,
            entry_bytes: s.entry_bytes,
            budget_bytes: s.kv_budget_bytes,
            hbm_used_bytes: used,
            counters: MemoryCounters {
                peak_hbm_kv_bytes: used,
                ..Default::default()
            },
        }
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
    /// Entries that still fit in the HBM KV budget.
    pub fn hbm_free_entries(&self) -> u64 {
        self.hbm_free_bytes() / self.entry_bytes
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
    pub fn hbm_count(&self, layer: usize) -> u64 {
        self.layers[layer].hbm_count
    }
    /// Entries held on EXT at `layer` (all present ones when inclusive).
    pub fn ext_set(&self, layer: usize) -> TokenSet {
        let r = &self.layers[layer];
        let mut s = r.present.clone();
        if self.hierarchy == Hierarchy::Exclusive {
            s.subtract(&r.hbm);
        }
        s
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

    /// Whether one more entry fits in the HBM budget.
    pub fn has_room(&self) -> bool {
        self.hbm_used_bytes + self.entry_bytes <= self.budget_bytes
    }

    /// Writes the new entry `(pos, layer)`. A request for HBM without room goes to EXT and counts
    /// as a fallback. Returns the tier used.
    pub fn write_new(&mut self, layer: usize, pos: usize, want: Tier, c: &mut Charges) -> Tier {
        let k = self.entry_bytes;
        let tier = if want == Tier::Hbm && !self.has_room() {
            self.counters.fallbacks += 1;
            Tier::Ext
        } else {
            want
        };
        let r = &mut self.layers[layer];
        r.present.insert(pos);
        r.present_count += 1;
        if tier == Tier::Hbm {
            r.hbm.insert(pos);
            r.hbm_count += 1;
            self.hbm_used_bytes += k;
            c.write_hbm(k);
            if self.hierarchy == Hierarchy::Inclusive {
                c.write_ext(k);
            }
            self.note_peak();
        } else {
            c.write_ext(k);
        }
        tier
    }

    /// Charges the KV reads of `layer` at step `n`: every present position `t < n` not in
    /// `skipped` (a set of capacity `n`), each from its tier. Returns the entries read, in all
    /// and from EXT.
    pub fn read_kv(&self, layer: usize, skipped: Option<&TokenSet>, c: &mut Charges) -> (u64, u64) {
        let r = &self.layers[layer];
        let (total, on_hbm) = match skipped {
            None => (r.present_count, r.hbm_count),
            Some(skip) => {
                // Before the new entry is written nothing at or past `n` is present, so the
                // skip set's words cover every present entry.
                let (p, h, s) = (r.present.words(), r.hbm.words(), skip.words());
                debug_assert!(p[s.len()..].iter().all(|&w| w == 0));
                let mut total = 0u64;
                let mut on_hbm = 0u64;
                for ((&p, &h), &s) in p.iter().zip(h).zip(s) {
                    let read = p & !s;
                    total += read.count_ones() as u64;
                    on_hbm += (read & h).count_ones() as u64;
                }
                (total, on_hbm)
            }
        };
        let k = self.entry_bytes;
        let on_ext = total - on_hbm;
        c.read_hbm(on_hbm * k);
        c.kv_read += total * k;
        match self.access {
            Access::Fetch => c.fetch_ext(on_ext * k),
            Access::NearData => c.near_read_ext(on_ext * k),
        }
        (total, on_ext)
    }

    /// Passive migration: installs the EXT entries just read at `layer` (present, `< n`, not
    /// skipped, not on HBM) into HBM, newest first, while the budget has room. Charges an HBM
    /// write only: the bytes already crossed the link for the read.
    pub fn passive_install(
        &mut self,
        layer: usize,
        n: usize,
        skipped: Option<&TokenSet>,
        c: &mut Charges,
    ) {
        let room = self.hbm_free_entries();
        if room == 0 {
            return;
        }
        let r = &mut self.layers[layer];
        let moved = take_newest(&r.present, &mut r.hbm, skipped, n, room);
        let b = moved * self.entry_bytes;
        r.hbm_count += moved;
        self.hbm_used_bytes += b;
        self.counters.passive_bytes += b;
        c.write_hbm(b);
        c.to_hbm += b;
        self.note_peak();
    }

    /// Moves the entries of `set` at `layer` that are on EXT only to HBM, newest first, at most
    /// `cap_entries` of them, as far as the budget has room; the rest counts as refused. Returns
    /// the number of entries moved.
    pub fn promote(
        &mut self,
        layer: usize,
        set: &TokenSet,
        cap_entries: u64,
        c: &mut Charges,
    ) -> u64 {
        let k = self.entry_bytes;
        let r = &mut self.layers[layer];
        let mut want = set.clone();
        want.intersect_with(&r.present);
        want.subtract(&r.hbm);
        let wanted = want.count().min(cap_entries);
        let room = (self.budget_bytes - self.hbm_used_bytes) / k;
        let moved = wanted.min(room);
        self.counters.refused_bytes += (wanted - moved) * k;
        if moved == 0 {
            return 0;
        }
        let mut left = moved;
        for p in want.iter_rev() {
            if left == 0 {
                break;
            }
            r.hbm.insert(p);
            left -= 1;
        }
        r.hbm_count += moved;
        let b = moved * k;
        self.hbm_used_bytes += b;
        c.exti += b;
        c.link_read += b;
        c.hbm += b;
        c.to_hbm += b;
        self.note_peak();
        moved
    }

    /// Moves the entries of `set` at `layer` that are on HBM to EXT (in the inclusive hierarchy:
    /// drops their HBM copy, free of charge), in `order`, at most `cap_entries`. Returns the
    /// number of entries moved.
    pub fn demote(
        &mut self,
        layer: usize,
        set: &TokenSet,
        cap_entries: u64,
        order: Order,
        c: &mut Charges,
    ) -> u64 {
        let k = self.entry_bytes;
        let r = &mut self.layers[layer];
        let mut take = set.clone();
        take.intersect_with(&r.hbm);
        let count = take.count();
        let moved = count.min(cap_entries);
        if moved == 0 {
            return 0;
        }
        if moved == count {
            r.hbm.subtract(&take);
        } else {
            let victims: Vec<usize> = match order {
                Order::NewestFirst => take.iter_rev().take(moved as usize).collect(),
                Order::OldestFirst => take.iter().take(moved as usize).collect(),
            };
            for p in victims {
                r.hbm.remove(p);
            }
        }
        r.hbm_count -= moved;
        let b = moved * k;
        self.hbm_used_bytes -= b;
        if self.hierarchy == Hierarchy::Exclusive {
            c.hbm += b;
            c.link_write += b;
            c.exti += b;
        }
        c.to_ext += b;
        moved
    }
}

/// Sets on `hbm` up to `room` of the positions `< n` in `present & !skipped & !hbm`, newest
/// first. Returns how many were set.
fn take_newest(
    present: &TokenSet,
    hbm: &mut TokenSet,
    skipped: Option<&TokenSet>,
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
