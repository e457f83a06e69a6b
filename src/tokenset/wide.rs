//! Word loops compiled three times: for the build's baseline (x86-64-v2 on x86), for AVX2 with
//! BMI1, BMI2, LZCNT and POPCNT, and for AVX-512 with its per-lane popcount (`VPOPCNTDQ`),
//! chosen at run time by what the CPU has, so that one binary runs on any x86-64 server and
//! uses the wider vectors where they exist.
//!
//! The set kernels are loops over a few kilobytes of words that the compiler vectorizes: 16
//! bytes at a time on the baseline, 32 with AVX2 (popcounts by `vpshufb`), and with AVX-512 a
//! popcount instruction per vector. On the development machine (Intel Xeon with AVX-512, 2
//! vCPUs) a whole build for x86-64-v3 ran the `prefer_hbm + lookahead` seed pair in about a
//! fifth less wall time than the x86-64-v2 build, mostly in the move verbs' kernels;
//! dispatching these loops gets nearly all of that (docs/performance.md). `KVTIER_WIDE=0` in
//! the environment keeps the baseline copies and `KVTIER_WIDE=2` the AVX2 ones (to compare, or
//! on a machine whose CPU reports features it does not run well).

#[cfg(target_arch = "x86_64")]
use std::sync::atomic::{AtomicU8, Ordering};

/// Runs `f`, compiled for AVX-512 (with `VPOPCNTDQ`) or else for AVX2 (with BMI1, BMI2, LZCNT and
/// POPCNT) when the CPU has them and `KVTIER_WIDE` does not say otherwise. `f` should be a
/// closure over word loops: it is inlined into the wide copies, where the loops are vectorized.
/// The result is the same either way (integer word operations); a unit test checks every
/// kernel every way.
///
/// Keep `f` small (the loops, not the allocations or other calls around them): a closure the
/// compiler finds too big is not inlined, and then its loops run in the baseline copy, called
/// from the wide one. `nm -C target/release/kvtier | grep '{{closure}}'` shows such a closure
/// as its own symbol (none of `tokenset` or `memory` should be there).
#[inline(always)]
pub fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        match level() {
            // SAFETY: the CPU has every feature `avx512_copy` is compiled for (checked).
            AVX512 => return unsafe { avx512_copy(f) },
            // SAFETY: the CPU has every feature `avx2_copy` is compiled for (checked).
            AVX2 => return unsafe { avx2_copy(f) },
            _ => {}
        }
    }
    f()
}

/// The copies [`wide`] runs: not decided yet, the baseline, AVX2, AVX-512.
#[cfg(target_arch = "x86_64")]
const UNDECIDED: u8 = 0;
#[cfg(target_arch = "x86_64")]
const BASELINE: u8 = 1;
#[cfg(target_arch = "x86_64")]
const AVX2: u8 = 2;
#[cfg(target_arch = "x86_64")]
const AVX512: u8 = 3;

#[cfg(target_arch = "x86_64")]
static LEVEL: AtomicU8 = AtomicU8::new(UNDECIDED);

#[cfg(target_arch = "x86_64")]
#[inline]
fn level() -> u8 {
    #[cfg(test)]
    if let Some(l) = tests::LEVEL.with(|l| l.get()) {
        return l.min(decide());
    }
    match LEVEL.load(Ordering::Relaxed) {
        UNDECIDED => first_level(),
        l => l,
    }
}

/// The copies to run from now on: the widest the CPU runs, capped by `KVTIER_WIDE` (out of the
/// kernels' inlined code: it runs once).
#[cfg(target_arch = "x86_64")]
#[cold]
fn first_level() -> u8 {
    let wanted = match std::env::var("KVTIER_WIDE").as_deref() {
        Ok("0") => BASELINE,
        Ok("2") => AVX2,
        _ => AVX512,
    };
    let l = decide().min(wanted);
    LEVEL.store(l, Ordering::Relaxed);
    l
}

/// The widest copies the CPU runs.
#[cfg(target_arch = "x86_64")]
#[cold]
fn decide() -> u8 {
    let avx2 = std::is_x86_feature_detected!("avx2")
        && std::is_x86_feature_detected!("bmi1")
        && std::is_x86_feature_detected!("bmi2")
        && std::is_x86_feature_detected!("lzcnt")
        && std::is_x86_feature_detected!("popcnt");
    let avx512 = std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vl")
        && std::is_x86_feature_detected!("avx512vpopcntdq");
    match (avx2, avx512) {
        (true, true) => AVX512,
        (true, false) => AVX2,
        _ => BASELINE,
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,bmi1,bmi2,lzcnt,popcnt")]
fn avx2_copy<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vpopcntdq,avx2,bmi1,bmi2,lzcnt,popcnt")]
fn avx512_copy<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Runs `f` with the copies of `level` (at most what the CPU runs: 1 the baseline, 2 AVX2, 3
/// AVX-512) on this thread (tests compare them).
#[cfg(test)]
pub fn at_level<R>(level: u8, f: impl FnOnce() -> R) -> R {
    tests::LEVEL.with(|l| l.set(Some(level)));
    let r = f();
    tests::LEVEL.with(|l| l.set(None));
    r
}

#[cfg(test)]
pub(super) mod tests {
    use std::cell::Cell;

    thread_local! {
        pub static LEVEL: Cell<Option<u8>> = const { Cell::new(None) };
    }
}
