//! The copy engine of async migration (SPEC 12): one FIFO queue of copy jobs, each the entries
//! one move verb call asked for, in move order.
//!
//! The queue advances by byte counts only: a row's work moves the head job's `copied` counter,
//! and the entries whose end that counter passed complete as a prefix of the job. Nothing here
//! scans positions; residency changes on completion are applied by [`super::Memory`].

use std::collections::VecDeque;

use super::{Charges, Tier};

/// The entries of one move verb call, in the order the sync verb would move them.
#[derive(Clone, Debug)]
pub(super) struct CopyJob {
    pub to: Tier,
    /// `(layer, position)` of each entry, in move order.
    entries: Vec<(u32, u32)>,
    /// Bytes copied so far.
    copied: u64,
    /// Entries whose completion has been applied.
    completed: usize,
}

impl CopyJob {
    pub fn new(to: Tier) -> CopyJob {
        CopyJob {
            to,
            entries: Vec::new(),
            copied: 0,
            completed: 0,
        }
    }

    pub fn add(&mut self, layer: usize, pos: usize) {
        // Layers are <= 10,000 and positions < 2^26 (scenario limits).
        self.entries.push((layer as u32, pos as u32));
    }

    pub fn entry(&self, i: usize) -> (usize, usize) {
        let (l, p) = self.entries[i];
        (l as usize, p as usize)
    }

    fn bytes(&self, entry_bytes: u64) -> u64 {
        self.entries.len() as u64 * entry_bytes
    }

    pub fn is_done(&self, entry_bytes: u64) -> bool {
        self.copied == self.bytes(entry_bytes)
    }

    /// The range of entries that completed since the last call (their copied bytes reached
    /// their end), marking them applied.
    pub fn take_completed(&mut self, entry_bytes: u64) -> (usize, usize) {
        let done = (self.copied / entry_bytes) as usize;
        let from = self.completed;
        self.completed = done;
        (from, done)
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
        if !job.entries.is_empty() {
            self.pending += job.bytes(self.entry_bytes);
            self.jobs.push_back(job);
        }
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
