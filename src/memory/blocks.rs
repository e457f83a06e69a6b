//! KV blocks (SPEC 14): positions `[b * bt, (b + 1) * bt)` of a layer form block `b`, and all
//! present entries of a block are in one tier. A block on HBM takes `k * bt` of the budget from
//! its first entry on; moves and passive installs take whole blocks.
//!
//! These are the block versions of [`super::Memory`]'s operations, used when `block_tokens > 1`
//! (with one position per block the per-entry code in `mod.rs` is the same rule, faster). Each
//! works on the block's range of the per-entry bitsets: a block's entries are the present bits
//! in its range, its tier the HBM bit of any of them.

use super::copy::CopyJob;
use super::{Charges, Hierarchy, Memory, Order, Tier};
use crate::tokenset::TokenSet;

impl Memory {
    /// Positions of block `b`: `[b * bt, (b + 1) * bt)`.
    pub(super) fn block_range(&self, b: usize) -> (usize, usize) {
        let bt = self.block_tokens;
        (b * bt, (b + 1) * bt)
    }

    /// Whether the block holding `pos` already has an entry at `layer` (then a new entry at
    /// `pos` follows the block and the placement policy is not asked). Always false with one
    /// position per block.
    pub fn block_started(&self, layer: usize, pos: usize) -> bool {
        if self.block_tokens == 1 {
            return false;
        }
        let (a, _) = self.block_range(pos / self.block_tokens);
        self.layers[layer]
            .present
            .next_from(a)
            .is_some_and(|p| p < pos)
    }

    /// Writes entry `pos` into its block if the block already has entries: it goes to the
    /// block's tier (no budget: the block has it), and if the block has a queued copy it joins
    /// the end of that job. `None` when `pos` is the block's first entry.
    pub(super) fn write_into_block(
        &mut self,
        layer: usize,
        pos: usize,
        c: &mut Charges,
    ) -> Option<Tier> {
        if !self.block_started(layer, pos) {
            return None;
        }
        let k = self.entry_bytes;
        let block = pos / self.block_tokens;
        let (a, _) = self.block_range(block);
        let r = &mut self.layers[layer];
        let on_hbm = r.hbm.count_in(a, pos) > 0;
        let queued = r.queued_count > 0 && r.queued.count_in(a, pos) > 0;
        r.insert_present(pos);
        let tier = if on_hbm {
            r.hbm.insert(pos);
            r.hbm_count += 1;
            Tier::Hbm
        } else {
            Tier::Ext
        };
        super::new_entry_charges(c, self.hierarchy, k, tier);
        if queued {
            r.queued.insert(pos);
            r.queued_count += 1;
            self.copies.append_to_block(layer, block);
        }
        Some(tier)
    }

    /// The blocks touched by `cand` (a set of positions), in `order`.
    fn blocks_of(&self, cand: &TokenSet, order: Order) -> Vec<usize> {
        let bt = self.block_tokens;
        let mut out = Vec::new();
        match order {
            Order::NewestFirst => {
                let mut x = cand.capacity();
                while let Some(p) = cand.prev_below(x) {
                    let b = p / bt;
                    out.push(b);
                    x = b * bt;
                }
            }
            Order::OldestFirst => {
                let mut x = 0;
                while let Some(p) = cand.next_from(x) {
                    let b = p / bt;
                    out.push(b);
                    x = (b + 1) * bt;
                }
            }
        }
        out
    }

    /// Whole blocks of `set`'s EXT entries at `layer` to HBM, newest first: the cap admits whole
    /// blocks in that order (stopping at the first whose present entries do not fit it); of
    /// those, each block needing `k * bt` of room moves while there is room, the rest counts as
    /// refused. With a `job` the blocks are queued, their budget reserved now. Returns the bytes
    /// moved (or queued).
    pub(super) fn promote_blocks(
        &mut self,
        layer: usize,
        set: &TokenSet,
        cap_bytes: u64,
        mut job: Option<&mut CopyJob>,
        c: &mut Charges,
    ) -> u64 {
        let k = self.entry_bytes;
        let r = &self.layers[layer];
        let mut want = TokenSet::and_minus(set, &r.present, Some(&r.hbm));
        if r.queued_count > 0 {
            want.subtract(&r.queued);
        }
        let (mut cap, mut moved) = (cap_bytes, 0);
        for b in self.blocks_of(&want, Order::NewestFirst) {
            let (lo, hi) = self.block_range(b);
            let count = self.layers[layer].present.count_in(lo, hi);
            let bytes = count * k;
            if bytes > cap {
                break;
            }
            cap -= bytes;
            if !self.has_room() {
                self.counters.refused_bytes += bytes;
                continue;
            }
            self.hbm_used_bytes += self.block_bytes;
            let r = &mut self.layers[layer];
            match job.as_deref_mut() {
                None => {
                    r.hbm.union_range(&r.present, lo, hi);
                    r.hbm_count += count;
                    c.move_up(bytes);
                    c.to_hbm += bytes;
                }
                Some(job) => {
                    r.queued.union_range(&r.present, lo, hi);
                    r.queued_count += count;
                    job.add(layer, b, count);
                }
            }
            moved += bytes;
            self.note_peak();
        }
        moved
    }

    /// Whole blocks of `set`'s HBM entries at `layer` to EXT (inclusive: their HBM copies
    /// dropped, free and never queued), in `order`, the cap admitting whole blocks. An exclusive
    /// demotion with a `job` is queued and keeps its budget until the block's copy completes.
    /// Returns the bytes moved (or queued).
    pub(super) fn demote_blocks(
        &mut self,
        layer: usize,
        set: &TokenSet,
        cap_bytes: u64,
        order: Order,
        mut job: Option<&mut CopyJob>,
        c: &mut Charges,
    ) -> u64 {
        let k = self.entry_bytes;
        let exclusive = self.hierarchy == Hierarchy::Exclusive;
        let r = &self.layers[layer];
        let take = TokenSet::and_minus(set, &r.hbm, super::pending(&r.queued, r.queued_count));
        let (mut cap, mut moved) = (cap_bytes, 0);
        for b in self.blocks_of(&take, order) {
            let (lo, hi) = self.block_range(b);
            let r = &mut self.layers[layer];
            let count = r.present.count_in(lo, hi);
            let bytes = count * k;
            if bytes > cap {
                break;
            }
            cap -= bytes;
            moved += bytes;
            match job.as_deref_mut() {
                Some(job) if exclusive => {
                    r.queued.union_range(&r.present, lo, hi);
                    r.queued_count += count;
                    job.add(layer, b, count);
                    continue;
                }
                Some(_) => self.counters.async_dropped_bytes += bytes,
                None => {
                    if exclusive {
                        c.move_down(bytes);
                    }
                    c.to_ext += bytes;
                }
            }
            let r = &mut self.layers[layer];
            r.hbm.remove_range(lo, hi);
            r.hbm_count -= count;
            self.hbm_used_bytes -= self.block_bytes;
        }
        moved
    }

    /// Passive migration with blocks: the blocks holding EXT entries just read at `layer`
    /// (present, `< n`, not skipped, not queued), newest first, never the block of the new
    /// entry `n`, while a whole block has room. The entries just read cost an HBM write (their
    /// bytes crossed the link for the read); the block's other present entries are promoted.
    pub(super) fn passive_install_blocks(
        &mut self,
        layer: usize,
        n: usize,
        skipped: Option<&TokenSet>,
        c: &mut Charges,
    ) {
        let k = self.entry_bytes;
        let own = self.block_range(n / self.block_tokens).0;
        let r = &self.layers[layer];
        let mut read = r.present.clone();
        read.truncate(own);
        read.subtract(&r.hbm);
        if let Some(s) = skipped {
            read.subtract(s);
        }
        if r.queued_count > 0 {
            read.subtract(&r.queued);
        }
        for b in self.blocks_of(&read, Order::NewestFirst) {
            if !self.has_room() {
                break;
            }
            let (lo, hi) = self.block_range(b);
            let r = &mut self.layers[layer];
            let just_read = read.count_in(lo, hi);
            let count = r.present.count_in(lo, hi);
            let others = count - just_read;
            r.hbm.union_range(&r.present, lo, hi);
            r.hbm_count += count;
            self.hbm_used_bytes += self.block_bytes;
            c.write_hbm(just_read * k);
            c.move_up(others * k);
            c.to_hbm += count * k;
            self.counters.passive_bytes += count * k;
            self.note_peak();
        }
    }

    /// Applies the completed copy of block `block` (with one position per block, an entry) at
    /// `layer` towards `to`: every present entry of the block changes tier, the queue marks go,
    /// a demotion frees the block's budget, and the entries count in `to_hbm` / `to_ext`.
    pub(super) fn complete_block(&mut self, layer: usize, block: usize, to: Tier, c: &mut Charges) {
        let k = self.entry_bytes;
        let (lo, hi) = self.block_range(block);
        let r = &mut self.layers[layer];
        let count = r.present.count_in(lo, hi);
        r.queued.remove_range(lo, hi);
        r.queued_count -= count;
        match to {
            Tier::Hbm => {
                r.hbm.union_range(&r.present, lo, hi);
                r.hbm_count += count;
                c.to_hbm += count * k;
            }
            Tier::Ext => {
                r.hbm.remove_range(lo, hi);
                r.hbm_count -= count;
                self.hbm_used_bytes -= self.block_bytes;
                c.to_ext += count * k;
            }
        }
    }
}
