//! Word loops compiled twice: for the build's baseline (x86-64-v2 on x86) and for AVX2 with
//! BMI1, BMI2, LZCNT and POPCNT, chosen at run time by what the CPU has, so that one binary runs
//! on any x86-64 server and uses the wider vectors where they exist.
//!
//! The set kernels are loops over a few kilobytes of words that the compiler vectorizes: 16
//! bytes at a time on the baseline, 32 with AVX2 (popcounts by `vpshufb`). On the development
//! machine (Intel Xeon with AVX-512, 2 vCPUs) a whole build for x86-64-v3 ran the
//! `prefer_hbm + lookahead` seed pair in about a fifth less wall time than the x86-64-v2 build,
//! mostly in the move verbs' kernels; dispatching these loops gets nearly all of that
//! (docs/performance.md). `KVTIER_WIDE=0` in the environment keeps the baseline copies (to
//! compare, or on a machine whose CPU reports features it does not run well).

#[cfg(target_arch = "x86_64")]
use std::sync::atomic::{AtomicU8, Ordering};

/// Runs `f`, compiled for AVX2 (with BMI1, BMI2, LZCNT and POPCNT) when the CPU has them and
/// `KVTIER_WIDE` is not `0`. `f` should be a closure over word loops: it is inlined into the
/// AVX2 copy, where the loops are vectorized 32 bytes wide. The result is the same either way
/// (integer word operations); a unit test checks every kernel both ways.
///
/// Keep `f` small (the loops, not the allocations or other calls around them): a closure the
/// compiler finds too big is not inlined, and then its loops run in the baseline copy, called
/// from the AVX2 one. `nm -C target/release/kvtier | grep '{{closure}}'` shows such a closure
/// as its own symbol (none of `tokenset` or `memory` should be there).
#[inline(always)]
pub fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if avx2() {
            // SAFETY: the CPU has every feature `avx2_copy` is compiled for (`avx2` checked).
            return unsafe { avx2_copy(f) };
        }
    }
    f()
}

/// 0: not decided yet, 1: the baseline, 2: AVX2.
#[cfg(target_arch = "x86_64")]
static LEVEL: AtomicU8 = AtomicU8::new(0);

#[cfg(target_arch = "x86_64")]
#[inline]
fn avx2() -> bool {
    #[cfg(test)]
    if tests::BASELINE.with(|b| b.get()) {
        return false;
    }
    match LEVEL.load(Ordering::Relaxed) {
        0 => decide(),
        level => level == 2,
    }
}

#[cfg(target_arch = "x86_64")]
#[cold]
fn decide() -> bool {
    let wanted = std::env::var_os("KVTIER_WIDE").is_none_or(|v| v != "0");
    let has = std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("bmi1")
        && std::is_x86_feature_detected!("bmi2")
        && std::is_x86_feature_detected!("lzcnt")
        && std::is_x86_feature_detected!("popcnt");
    let on = wanted && has;
    LEVEL.store(if on { 2 } else { 1 }, Ordering::Relaxed);
    on
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,bmi1,bmi2,lzcnt,popcnt")]
fn avx2_copy<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Runs `f` with the baseline copies on this thread (tests compare the two).
#[cfg(test)]
pub fn baseline<R>(f: impl FnOnce() -> R) -> R {
    tests::BASELINE.with(|b| b.set(true));
    let r = f();
    tests::BASELINE.with(|b| b.set(false));
    r
}

#[cfg(test)]
pub(super) mod tests {
    use std::cell::Cell;

    thread_local! {
        pub static BASELINE: Cell<bool> = const { Cell::new(false) };
    }
}
