//! What a sublayer or step phase costs: the bytes it reads, charges to each resource and moves
//! ([`Charges`]), and the rules that turn them into time ([`Timing`]: SPEC 6, 10 and 11).
//!
//! Not here: who charges what (the engine and [`super::Memory`]), the bounds
//! ([`crate::bounds`], which use [`Timing::memory_time`] on real-valued byte counts).

use crate::scenario::{Duplex, Overlap, Scenario};

/// Bytes one sublayer or step phase reads, charges to each resource, and moves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Charges {
    /// Bytes read from HBM (weights and KV).
    pub hbm_read: u64,
    /// Bytes read from EXT (weights and KV).
    pub ext_read: u64,
    /// Of the reads, KV bytes (both tiers); used by the bounds.
    pub kv_read: u64,
    /// HBM resource bytes (reads, writes, moves, copies).
    pub hbm: u64,
    /// LINK bytes in the EXT -> GPU direction.
    pub link_read: u64,
    /// LINK bytes in the GPU -> EXT direction.
    pub link_write: u64,
    /// EXTI resource bytes.
    pub exti: u64,
    /// Bytes moved to HBM (promotions, passive installs; in async mode the entries whose copy
    /// completed in this row).
    pub to_hbm: u64,
    /// Bytes moved to EXT (demotions; in async mode those completed in this row).
    pub to_ext: u64,
    /// Bytes of background copies (SPEC 12) charged to this row's resources.
    pub copy: u64,
}

/// Bandwidths, modes and compute figures needed to turn charges into time.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub hbm_bw: f64,
    pub link_read_bw: f64,
    pub link_write_bw: f64,
    pub exti_bw: f64,
    pub duplex: Duplex,
    pub overlap: Overlap,
    /// `gpu.flops`; `None` when compute is not modelled.
    pub flops_per_s: Option<f64>,
    /// `gpu.sublayer_overhead`, seconds per attention or MLP row.
    pub overhead_s: f64,
}

impl Timing {
    pub fn of(scenario: &Scenario) -> Timing {
        let s = &scenario.sizes;
        Timing {
            hbm_bw: s.hbm_bw,
            link_read_bw: s.link_read_bw,
            link_write_bw: s.link_write_bw,
            exti_bw: s.exti_bw,
            duplex: scenario.file.ext.link_duplex,
            overlap: scenario.file.memory.overlap,
            flops_per_s: s.compute.flops_per_s,
            overhead_s: s.compute.overhead_s,
        }
    }

    /// LINK time of `read` and `write` bytes (SPEC 10). With equal bandwidths the shared time is
    /// `(read + write) / BW`, as in v1, so v1 figures are bit-identical.
    pub fn link_time(&self, read: f64, write: f64) -> f64 {
        match self.duplex {
            Duplex::Shared if self.link_read_bw == self.link_write_bw => {
                (read + write) / self.link_read_bw
            }
            Duplex::Shared => read / self.link_read_bw + write / self.link_write_bw,
            Duplex::Full => (read / self.link_read_bw).max(write / self.link_write_bw),
        }
    }

    /// Memory time of a sublayer under the overlap mode (SPEC 6, 10), from byte counts (real
    /// numbers so that the bounds can ask it about a fractional split).
    pub fn memory_time(&self, hbm: f64, link_read: f64, link_write: f64, exti: f64) -> f64 {
        let hbm = hbm / self.hbm_bw;
        let link = self.link_time(link_read, link_write);
        let exti = exti / self.exti_bw;
        match self.overlap {
            Overlap::Max => hbm.max(link).max(exti),
            Overlap::Serial => hbm + link.max(exti),
        }
    }

    /// Compute time of `flops`, 0 when compute is not modelled.
    pub fn compute_time(&self, flops: f64) -> f64 {
        self.flops_per_s.map_or(0.0, |f| flops / f)
    }

    /// A row's time from its memory time and FLOPs (SPEC 11): `max(memory, compute) + overhead`.
    pub fn row_time(&self, memory_s: f64, flops: f64) -> f64 {
        row_time(memory_s, flops, self.flops_per_s, self.overhead_s)
    }
}

/// SPEC 11: `max(memory, flops / flops_per_s) + overhead`; without a compute rate, memory time
/// plus overhead.
pub fn row_time(memory_s: f64, flops: f64, flops_per_s: Option<f64>, overhead_s: f64) -> f64 {
    let t = match flops_per_s {
        Some(f) => memory_s.max(flops / f),
        None => memory_s,
    };
    t + overhead_s
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

    /// Memory time of these charges under the scenario's overlap mode (SPEC 6, 10).
    pub fn memory_time(&self, t: &Timing) -> f64 {
        t.memory_time(
            self.hbm as f64,
            self.link_read as f64,
            self.link_write as f64,
            self.exti as f64,
        )
    }

    /// Time of an attention or MLP row computing `flops` (SPEC 11).
    pub fn sublayer_time(&self, t: &Timing, flops: f64) -> f64 {
        t.row_time(self.memory_time(t), flops)
    }

    /// Step-phase time: always the max over resources (SPEC 6.1), no compute, no overhead.
    pub fn phase_time(&self, t: &Timing) -> f64 {
        let hbm = self.hbm as f64 / t.hbm_bw;
        let link = t.link_time(self.link_read as f64, self.link_write as f64);
        hbm.max(link).max(self.exti as f64 / t.exti_bw)
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
        self.copy += o.copy;
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

    pub(super) fn write_hbm(&mut self, b: u64) {
        self.hbm += b;
    }

    pub(super) fn write_ext(&mut self, b: u64) {
        self.link_write += b;
        self.exti += b;
    }

    /// The resource charges of moving `b` bytes EXT -> HBM (a promotion or its copy).
    pub(super) fn move_up(&mut self, b: u64) {
        self.exti += b;
        self.link_read += b;
        self.hbm += b;
    }

    /// The resource charges of moving `b` bytes HBM -> EXT (an exclusive demotion or its copy).
    pub(super) fn move_down(&mut self, b: u64) {
        self.hbm += b;
        self.link_write += b;
        self.exti += b;
    }
}
