//! The copy engine of async migration (SPEC 12, 14): one FIFO queue of copy jobs, each the
//! entries one move verb call asked for, in move order, grouped in units that complete
//! together (a KV block; with `block_tokens = 1`, an entry).
//!
//! The queue advances by byte counts only: a row's work moves the head job's `copied` counter,
//! and the units whose last entry that counter passed complete, in order. An entry written into
//! a block that is queued goes to the end of its job, and the block completes with it. Nothing
//! here scans positions; residency changes on completion are applied by [`super::Memory`].

use std::collections::VecDeque;

use super::{Charges, Tier};

/// A block (or entry) of a job: it completes when the job's copied entries reach `end`.
#[derive(Clone, Copy, Debug)]
struct Unit {
    layer: u32,
    block: u32,
    /// Entries of the job up to and including this unit's last one.
    end: u64,
    /// False when the unit got a later entry and moved to the end of the job.
    live: bool,
}

/// The entries of one move verb call, in the order the sync verb would move them.
#[derive(Clone, Debug)]
pub(super) struct CopyJob {
    pub to: Tier,
    /// Units in order of their `end` (a unit that gets an appended entry is re-added at the
    /// back and its old place marked dead).
    units: Vec<Unit>,
    /// Entries in the job.
    entries: u64,
    /// Bytes copied so far.
    copied: u64,
    /// Units up to here are completed or dead.
    next: usize,
}

impl CopyJob {
    pub fn new(to: Tier) -> CopyJob {
        CopyJob {
            to,
            units: Vec::new(),
            entries: 0,
            copied: 0,
            next: 0,
        }
    }

    /// Adds a block (or entry) of `count` entries at the end of the job.
    pub fn add(&mut self, layer: usize, block: usize, count: u64) {
        // Layers are <= 10,000 and positions < 2^26 (scenario limits).
        self.entries += count;
        self.units.push(Unit {
            layer: layer as u32,
            block: block as u32,
            end: self.entries,
            live: true,
        });
    }

    /// Whether the job holds block `block` of `layer`, not yet completed.
    fn holds(&self, layer: usize, block: usize) -> Option<usize> {
        let (l, b) = (layer as u32, block as u32);
        (self.next..self.units.len())
            .find(|&i| self.units[i].live && self.units[i].layer == l && self.units[i].block == b)
    }

    fn bytes(&self, entry_bytes: u64) -> u64 {
        self.entries * entry_bytes
    }

    pub fn is_done(&self, entry_bytes: u64) -> bool {
        self.copied == self.bytes(entry_bytes)
    }

    /// The units completed since the last call, as `(layer, block)`, in order.
    pub fn take_completed(&mut self, entry_bytes: u64) -> Vec<(usize, usize)> {
        let done = self.copied / entry_bytes;
        let mut out = Vec::new();
        while self.next < self.units.len() && self.units[self.next].end <= done {
            let u = self.units[self.next];
            if u.live {
                out.push((u.layer as usize, u.block as usize));
            }
            self.next += 1;
        }
        out
    }
}

/// The FIFO of copy jobs and the copy engine's rates.
#[derive(Clone, Debug)]
pub(super) struct CopyQueue {
    jobs: VecDeque<CopyJob>,
    /// Bytes of all jobs not yet copied.
    pending: u64,
    /// Promotions (EXT -> HBM), bytes/s.
    read_bw: f64,
    /// Demotions (HBM -> EXT), bytes/s.
    write_bw: f64,
    entry_bytes: u64,
}

impl CopyQueue {
    pub fn new(read_bw: f64, write_bw: f64, entry_bytes: u64) -> CopyQueue {
        CopyQueue {
            jobs: VecDeque::new(),
            pending: 0,
            read_bw,
            write_bw,
            entry_bytes,
        }
    }

    pub fn pending_bytes(&self) -> u64 {
        self.pending
    }

    /// Appends a job; a verb call that selected nothing adds none.
    pub fn push(&mut self, job: CopyJob) {
        if job.entries > 0 {
            self.pending += job.bytes(self.entry_bytes);
            self.jobs.push_back(job);
        }
    }

    /// Appends one new entry of `block` at `layer` to the end of the job that holds the block
    /// (SPEC 14: an entry written into a block with a queued copy); the block then completes
    /// with it.
    pub fn append_to_block(&mut self, layer: usize, block: usize) {
        for job in self.jobs.iter_mut() {
            if let Some(i) = job.holds(layer, block) {
                job.units[i].live = false;
                job.add(layer, block, 1);
                self.pending += self.entry_bytes;
                return;
            }
        }
        debug_assert!(false, "block {block} of layer {layer} is queued in no job");
    }

    pub fn pop_front(&mut self) -> Option<CopyJob> {
        self.jobs.pop_front()
    }

    pub fn push_front(&mut self, job: CopyJob) {
        self.jobs.push_front(job);
    }

    /// Works for `seconds`: in queue order the head job advances by
    /// `x = min(remaining, max(0, floor(tau * BW)))` bytes and `tau` drops by `x / BW`; the next
    /// job starts only when the head job is done. Each `x` is charged to `c` like a v1 move.
    pub fn work(&mut self, seconds: f64, c: &mut Charges) {
        let mut tau = seconds;
        for job in self.jobs.iter_mut() {
            let total = job.bytes(self.entry_bytes);
            let remaining = total - job.copied;
            if remaining == 0 {
                continue;
            }
            let bw = match job.to {
                Tier::Hbm => self.read_bw,
                Tier::Ext => self.write_bw,
            };
            // f64 product, then floor; `as` saturates an out-of-range value.
            let x = remaining.min((tau * bw).floor().max(0.0) as u64);
            if x == 0 {
                break;
            }
            job.copied += x;
            tau -= x as f64 / bw;
            self.pending -= x;
            c.copy += x;
            match job.to {
                Tier::Hbm => c.move_up(x),
                Tier::Ext => c.move_down(x),
            }
            if job.copied < total {
                break;
            }
        }
    }
}
