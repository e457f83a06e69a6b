//! A process-wide request to stop every run in flight, for hosts that cannot end the process
//! on Ctrl-C (the Python package: SIGINT there raises `KeyboardInterrupt`, and the interpreter
//! must live on).
//!
//! The decode loop checks it once per step, the script host every 256 Rhai operations and the
//! best static schedule's search once per trace step, so a request lands within milliseconds
//! whatever the run is doing. The command line never sets
//! it: there Ctrl-C removes partial outputs and exits (see `main.rs`).

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Asks every run in flight to stop with [`Interrupted`].
pub fn request() {
    REQUESTED.store(true, Ordering::Relaxed);
}

/// Withdraws the request (once the interrupted runs have stopped).
pub fn clear() {
    REQUESTED.store(false, Ordering::Relaxed);
}

/// Whether a stop was requested.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// The error a run stops with when a stop was requested.
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// `Err(Interrupted)` once a stop was requested.
pub fn check() -> anyhow::Result<()> {
    if requested() {
        return Err(Interrupted.into());
    }
    Ok(())
}
