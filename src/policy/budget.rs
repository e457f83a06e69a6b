//! What one run's scripts may spend: operations per hook call and per run (Rhai operations
//! plus the work of native verbs, one operation per 64 words of sets they touch), bytes of
//! token sets held at once, and whether the run was cancelled (watch).
//!
//! Rhai's own operation limit counts only Rhai operations; a loop of set verbs on millions of
//! positions would run for minutes under it. Here every native verb charges the words it
//! touches, and the engine's progress callback stops a call, or the run, that goes over.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use rhai::Dynamic;

use super::host::MAX_OPERATIONS_PER_CALL;

/// Bytes of token sets the scripts of one run may hold at once: 256 MiB.
pub const MAX_SET_BYTES: u64 = 256 << 20;

/// Default of `policy.max_script_operations`: operations all hook calls of a run may take
/// (minutes of script time; the seed's AlphaMigration run takes about 4e7).
pub const DEFAULT_MAX_RUN_OPERATIONS: u64 = 5_000_000_000;

/// Why the progress callback stopped a call.
pub const STOP_CALL: &str = "call work";
pub const STOP_RUN: &str = "run work";
pub const STOP_CANCELLED: &str = "cancelled";

/// One run's script budget, shared by its engine (progress callback), `ctx` and token sets.
///
/// **Invariant:** one thread at a time runs a run's hooks, and with them every update of its
/// budget (the engine's thread; a set dropped later is dropped by whoever holds it then, never
/// while the run goes on elsewhere). So the counters are updated by a load and a store, not a
/// read-modify-write: the same values, without the locked instruction each update would cost
/// (about twenty a hook call). They stay atomics so that the sets Rhai's `sync` build requires to
/// be `Send + Sync` can hold them.
#[derive(Debug)]
pub struct Budget {
    /// Bytes of token sets alive now.
    set_bytes: AtomicU64,
    /// Words native verbs touched in the current hook call.
    call_words: AtomicU64,
    /// Rhai operations of the current hook call, as last reported.
    call_ops: AtomicU64,
    /// Operations of the finished hook calls of this run.
    run_ops: AtomicU64,
    max_run_ops: u64,
    cancel: Option<Arc<AtomicBool>>,
}

impl Budget {
    pub fn new(max_run_ops: u64, cancel: Option<Arc<AtomicBool>>) -> Arc<Budget> {
        Arc::new(Budget {
            set_bytes: AtomicU64::new(0),
            call_words: AtomicU64::new(0),
            call_ops: AtomicU64::new(0),
            run_ops: AtomicU64::new(0),
            max_run_ops,
            cancel,
        })
    }

    pub fn max_run_ops(&self) -> u64 {
        self.max_run_ops
    }

    /// Operations of the current call: Rhai's count plus one per 64 words of native work.
    fn call_total(&self) -> u64 {
        self.call_ops.load(Ordering::Relaxed) + self.call_words.load(Ordering::Relaxed) / 64
    }

    /// Charges `words` of native work to the current call.
    pub fn charge(&self, words: u64) {
        add(&self.call_words, words);
    }

    /// Takes `bytes` of token set memory, or says why not.
    pub fn take_set_bytes(&self, bytes: u64) -> Result<(), String> {
        let now = self.set_bytes.load(Ordering::Relaxed) + bytes;
        if now > MAX_SET_BYTES {
            return Err(format!(
                "the scripts would hold {} MiB of token sets, more than the {} MiB a run may (each set of P positions takes P/8 bytes: keep fewer sets, e.g. not thousands in an array)",
                now >> 20,
                MAX_SET_BYTES >> 20
            ));
        }
        self.set_bytes.store(now, Ordering::Relaxed);
        Ok(())
    }

    /// Gives back `bytes` of token set memory (a set was dropped).
    pub fn give_set_bytes(&self, bytes: u64) {
        let now = self.set_bytes.load(Ordering::Relaxed);
        self.set_bytes
            .store(now.wrapping_sub(bytes), Ordering::Relaxed);
    }

    /// Takes `bytes` of set memory without a check (a clone, which cannot fail; the next set
    /// built is checked).
    pub fn force_set_bytes(&self, bytes: u64) {
        add(&self.set_bytes, bytes);
    }

    /// Whether the run was cancelled (by `watch`, or by a [`crate::interrupt`] request).
    pub fn cancelled(&self) -> bool {
        crate::interrupt::requested()
            || self
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Relaxed))
    }

    /// Before a hook call: whether the run's budget is already spent.
    pub fn start_call(&self) -> Option<&'static str> {
        self.call_ops.store(0, Ordering::Relaxed);
        self.call_words.store(0, Ordering::Relaxed);
        if self.cancelled() {
            Some(STOP_CANCELLED)
        } else if self.run_ops.load(Ordering::Relaxed) > self.max_run_ops {
            Some(STOP_RUN)
        } else {
            None
        }
    }

    /// After a hook call: adds its operations to the run's.
    pub fn end_call(&self) {
        add(&self.run_ops, self.call_total());
    }

    /// Rhai's progress callback: stops the call when it, or the run, is over budget or the run
    /// was cancelled. Checked every 256 operations (a native verb call is at most a few
    /// milliseconds, so a cancel lands well within 100 ms).
    pub fn progress(&self, ops: u64) -> Option<Dynamic> {
        if !ops.is_multiple_of(256) {
            return None;
        }
        self.call_ops.store(ops, Ordering::Relaxed);
        let call = self.call_total();
        let stop = if self.cancelled() {
            Some(STOP_CANCELLED)
        } else if call > MAX_OPERATIONS_PER_CALL {
            Some(STOP_CALL)
        } else if self.run_ops.load(Ordering::Relaxed) + call > self.max_run_ops {
            Some(STOP_RUN)
        } else {
            None
        };
        stop.map(Dynamic::from)
    }
}

/// `counter += v` by one thread at a time (see [`Budget`]).
#[inline]
fn add(counter: &AtomicU64, v: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(v),
        Ordering::Relaxed,
    );
}
