//! The `TokenSet` verbs scripts use: set algebra, counts, and picking positions by age.
//!
//! Not here: the `ctx` verbs that produce sets ([`super::ctx`]).

use rhai::{Array, Dynamic, Engine, FuncRegistration, INT};

use super::api;
use super::ctx::{index, int, reg, take, Ctx, RResult, ScriptSet};

pub fn register(engine: &mut Engine, natives: &mut super::fast::Natives) {
    fn and(a: &mut ScriptSet, b: ScriptSet) -> RResult<ScriptSet> {
        let mut s = a.set.clone();
        s.intersect_with(&b.set);
        a.with(s)
    }
    fn or(a: &mut ScriptSet, b: ScriptSet) -> RResult<ScriptSet> {
        // Keep the larger capacity so no position is lost.
        let (big, small) = if a.set.capacity() >= b.set.capacity() {
            (&a.set, &b.set)
        } else {
            (&b.set, &a.set)
        };
        let mut s = big.clone();
        s.union_with(small);
        a.with(s)
    }
    fn minus(a: &mut ScriptSet, b: ScriptSet) -> RResult<ScriptSet> {
        let mut s = a.set.clone();
        s.subtract(&b.set);
        a.with(s)
    }
    reg!(engine, natives, "and", ["a: TokenSet", "b: TokenSet"], and);
    reg!(engine, natives, "or", ["a: TokenSet", "b: TokenSet"], or);
    reg!(
        engine,
        natives,
        "minus",
        ["a: TokenSet", "b: TokenSet"],
        minus
    );
    engine.register_fn("&", op_and);
    engine.register_fn("|", op_or);
    engine.register_fn("-", op_minus);
    // print(set) and `${set}`: the set's runs, `{0..4, 6}` (half-open, single positions alone).
    engine.register_fn("to_string", |a: &mut ScriptSet| shown(a));
    engine.register_fn("to_debug", |a: &mut ScriptSet| shown(a));
    reg!(engine, natives, "count", ["set: TokenSet"], count);
    reg!(engine, natives, "bytes", ["set: TokenSet"], bytes);
    // Both also as properties (`set.count`, `set.bytes`).
    natives.add("get$count", count);
    engine.register_get("count", count);
    natives.add("get$bytes", bytes);
    engine.register_get("bytes", bytes);
    reg!(
        engine,
        natives,
        "is_empty",
        ["set: TokenSet"],
        |a: &mut ScriptSet| a.set.is_empty()
    );
    reg!(
        engine,
        natives,
        "contains",
        ["set: TokenSet", "pos: int"],
        |a: &mut ScriptSet, p: INT| p >= 0 && a.set.contains(p as usize)
    );
    reg!(
        engine,
        natives,
        "first",
        ["set: TokenSet", "k: int"],
        |a: &mut ScriptSet, k: INT| -> RResult<ScriptSet> {
            a.with(take(&a.set, index(k, "k")? as u64, false))
        }
    );
    reg!(
        engine,
        natives,
        "last",
        ["set: TokenSet", "k: int"],
        |a: &mut ScriptSet, k: INT| -> RResult<ScriptSet> {
            a.with(take(&a.set, index(k, "k")? as u64, true))
        }
    );
    reg!(
        engine,
        natives,
        "between",
        ["set: TokenSet", "start: int", "end: int"],
        |a: &mut ScriptSet, s: INT, e: INT| -> RResult<ScriptSet> {
            let (s, e) = (index(s, "start")?, index(e, "end")?);
            let mut out = a.set.clone();
            out.truncate(e);
            out.remove_range(0, s);
            a.with(out)
        }
    );
    reg!(
        engine,
        natives,
        "oldest",
        ["set: TokenSet"],
        |a: &mut ScriptSet| a.set.iter().next().map_or(-1, |p| p as INT)
    );
    reg!(
        engine,
        natives,
        "newest",
        ["set: TokenSet"],
        |a: &mut ScriptSet| a.set.iter_rev().next().map_or(-1, |p| p as INT)
    );
    reg!(
        engine,
        natives,
        "ranges",
        ["set: TokenSet"],
        |a: &mut ScriptSet| -> RResult<Array> {
            let r = a.set.ranges();
            if r.len() > 10_000 {
                return Err(format!(
                    "set has {} ranges: too many for a script array (use the set verbs)",
                    r.len()
                )
                .into());
            }
            Ok(r.into_iter()
                .map(|(s, e)| {
                    let pair: Array =
                        vec![Dynamic::from_int(s as INT), Dynamic::from_int(e as INT)];
                    Dynamic::from_array(pair)
                })
                .collect())
        }
    );
    engine.register_fn("to_string", |_: &mut Ctx| "ctx".to_string());
}

/// How `print` shows a set: `{0..4, 6}`, its first 20 runs and how many more.
fn shown(a: &ScriptSet) -> String {
    const MAX_RUNS: usize = 20;
    let r = a.set.ranges();
    let mut parts: Vec<String> = r
        .iter()
        .take(MAX_RUNS)
        .map(|&(s, e)| {
            if e == s + 1 {
                s.to_string()
            } else {
                format!("{s}..{e}")
            }
        })
        .collect();
    if r.len() > MAX_RUNS {
        parts.push(format!("... {} more runs", r.len() - MAX_RUNS));
    }
    format!("{{{}}}", parts.join(", "))
}

// The set operators own their operands (temporaries, or copies Rhai made of variables), so the
// result reuses an operand's words instead of a copy of them. Compiled hooks call them too.

/// `a & b`.
pub fn op_and(mut a: ScriptSet, b: ScriptSet) -> ScriptSet {
    a.charge_pass();
    a.set.intersect_with(&b.set);
    a
}

/// `a | b`.
pub fn op_or(a: ScriptSet, b: ScriptSet) -> ScriptSet {
    // Keep the larger capacity so no position is lost.
    let (mut big, small) = if a.set.capacity() >= b.set.capacity() {
        (a, b)
    } else {
        (b, a)
    };
    big.charge_pass();
    big.set.union_with(&small.set);
    big
}

/// `a - b`.
pub fn op_minus(mut a: ScriptSet, b: ScriptSet) -> ScriptSet {
    a.charge_pass();
    a.set.subtract(&b.set);
    a
}

/// `set.count`: how many positions.
fn count(a: &mut ScriptSet) -> INT {
    int(a.set.count())
}

/// `set.bytes`: the bytes of those entries.
fn bytes(a: &mut ScriptSet) -> INT {
    int(a.set.count().saturating_mul(a.entry_bytes))
}
