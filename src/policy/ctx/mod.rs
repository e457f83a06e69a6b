//! The `ctx` object scripts receive and the `TokenSet` type they work with: every property and
//! verb registered with the Rhai engine, each a thin wrapper over [`super::query`], [`Memory`]
//! reads, or the move verbs of [`Sim`].
//!
//! Architecture Invariant: a script changes residency only through `Sim::move_to_hbm` /
//! `Sim::move_to_ext` (which the engine refuses outside `on_step`/`on_layer` and which cannot
//! exceed the budget); everything else here is read-only. Every native function returns a
//! `Result` and never panics on script input.
//!
//! [`Memory`]: crate::memory::Memory

use std::collections::BTreeMap;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Arc;

use rhai::{Dynamic, Engine, EvalAltResult, FuncRegistration, ImmutableString, Map, FLOAT, INT};

use super::api;
use super::budget::Budget;
use super::query;
use super::usage;
use crate::engine::{Layers, Sim};
use crate::tokenset::TokenSet;

mod view;
pub use view::{Future, Pending, View};

pub(super) type RResult<T> = Result<T, Box<EvalAltResult>>;

/// Script parameters: name -> value (int, float, bool or string).
pub type Params = BTreeMap<String, Dynamic>;

/// The handle scripts see as `ctx`. Cloning it is cheap (one `Arc`); it points at the engine's
/// [`Sim`] only while a hook runs (see [`Ctx::bind`]) and fails cleanly otherwise.
#[derive(Clone)]
pub struct Ctx(Arc<Shared>);

struct Shared {
    sim: AtomicPtr<Sim>,
    params: Params,
    budget: Arc<Budget>,
    /// Sliding use counts of the frequency verbs, kept between calls of the run.
    usage: std::sync::Mutex<usage::UsageCache>,
}

/// While alive, the context points at `sim`; dropping it (also on error) unbinds it.
pub struct Bound<'a> {
    ctx: &'a Ctx,
    _sim: std::marker::PhantomData<&'a mut Sim>,
}

impl Drop for Bound<'_> {
    fn drop(&mut self) {
        self.ctx.0.sim.store(ptr::null_mut(), Ordering::Release);
    }
}

impl Ctx {
    pub fn new(params: Params, budget: Arc<Budget>) -> Ctx {
        Ctx(Arc::new(Shared {
            sim: AtomicPtr::new(ptr::null_mut()),
            params,
            budget,
            usage: Default::default(),
        }))
    }

    /// A token set for scripts: its words are charged as work, its bytes against the run's
    /// set memory.
    fn wrap(&self, sim: &Sim, set: TokenSet) -> RResult<ScriptSet> {
        ScriptSet::new(set, sim.sizes.entry_bytes, &self.0.budget)
    }

    /// Charges native work of `words` 64-bit words to the current hook call.
    fn charge(&self, words: u64) {
        self.0.budget.charge(words);
    }

    /// Points the context at `sim` for the duration of one hook call. The exclusive borrow held
    /// by the returned guard is what makes the raw pointer sound: nothing else can touch `sim`
    /// until the guard is dropped, and the pointer is cleared then.
    pub fn bind<'a>(&'a self, sim: &'a mut Sim) -> Bound<'a> {
        self.0.sim.store(sim as *mut Sim, Ordering::Release);
        Bound {
            ctx: self,
            _sim: std::marker::PhantomData,
        }
    }

    fn sim(&self) -> RResult<&Sim> {
        let p = self.0.sim.load(Ordering::Acquire);
        if p.is_null() {
            return Err("ctx is only usable inside a hook call".into());
        }
        // SAFETY: non-null only while a `Bound` guard holds the exclusive borrow of the Sim
        // (see `bind`); hooks run on the thread that holds the guard.
        Ok(unsafe { &*p })
    }

    fn sim_mut(&mut self) -> RResult<&mut Sim> {
        let p = self.0.sim.load(Ordering::Acquire);
        if p.is_null() {
            return Err("ctx is only usable inside a hook call".into());
        }
        // SAFETY: as in `sim`; natives never call back into scripts, so no second borrow exists.
        Ok(unsafe { &mut *p })
    }

    fn param(&self, name: &str, default: Option<Dynamic>) -> RResult<Dynamic> {
        match (self.0.params.get(name), default) {
            (Some(v), Some(d)) => Ok(coerce_like(v, &d)),
            (Some(v), None) => Ok(v.clone()),
            (None, Some(d)) => Ok(d),
            (None, None) => {
                let known: Vec<&str> = self.0.params.keys().map(String::as_str).collect();
                let hint = crate::input::did_you_mean(name, &known)
                    .map(|n| format!(" (did you mean {n:?}? it is given)"))
                    .unwrap_or_default();
                Err(format!(
                    "unknown param {name:?}{hint}: give it in the scenario's [policy.params], with --param {name}=VALUE, or as a default: ctx.param({name:?}, VALUE)"
                )
                .into())
            }
        }
    }
}

/// A given parameter converted to the type of the script's default where that is lossless
/// (`--param k=1` for a float default gives 1.0).
fn coerce_like(v: &Dynamic, default: &Dynamic) -> Dynamic {
    if default.is::<FLOAT>() {
        if let Ok(i) = v.as_int() {
            return Dynamic::from_float(i as FLOAT);
        }
    }
    if default.is::<INT>() {
        if let Ok(f) = v.as_float() {
            if f.fract() == 0.0 && f.abs() < 9e15 {
                return Dynamic::from_int(f as INT);
            }
        }
    }
    v.clone()
}

/// A set of token positions as scripts see it (Rhai type name `TokenSet`). Its memory counts
/// against the run's [`Budget`] while it lives (clones included).
pub struct ScriptSet {
    pub set: TokenSet,
    /// Bytes of one entry, for `bytes`.
    pub entry_bytes: u64,
    budget: Arc<Budget>,
}

/// Heap bytes of a set.
/// What building a set of `words` words costs a run: the words as work, their bytes against
/// the set memory.
fn reserve_set(budget: &Budget, words: usize) -> RResult<()> {
    budget.charge(words as u64);
    budget.take_set_bytes(words as u64 * 8)?;
    Ok(())
}

/// The checks and the charge of a future query's call `(layer, k)`: the run, the layer and `k`.
fn future_call(c: &Ctx, l: INT, k: INT) -> RResult<(&Sim, usize, usize)> {
    let s = c.sim()?;
    let l = layer_of(s, l)?;
    let k = index(k, "k")?;
    c.charge(k as u64 * s.sizes.positions().div_ceil(64) as u64);
    Ok((s, l, k))
}

fn heap_bytes(set: &TokenSet) -> u64 {
    set.words().len() as u64 * 8
}

impl ScriptSet {
    fn new(set: TokenSet, entry_bytes: u64, budget: &Arc<Budget>) -> RResult<ScriptSet> {
        reserve_set(budget, set.words().len())?;
        Ok(ScriptSet {
            set,
            entry_bytes,
            budget: budget.clone(),
        })
    }

    pub(super) fn with(&self, set: TokenSet) -> RResult<ScriptSet> {
        ScriptSet::new(set, self.entry_bytes, &self.budget)
    }

    /// Charges the operations of a word-wise pass over this set (what [`ScriptSet::with`]
    /// charges for a new set), for operators that reuse an operand's words instead.
    pub(super) fn charge_pass(&self) {
        self.budget.charge(self.set.words().len() as u64);
    }
}

impl Clone for ScriptSet {
    fn clone(&self) -> ScriptSet {
        self.budget.charge(self.set.words().len() as u64);
        self.budget.force_set_bytes(heap_bytes(&self.set));
        ScriptSet {
            set: self.set.clone(),
            entry_bytes: self.entry_bytes,
            budget: self.budget.clone(),
        }
    }
}

impl Drop for ScriptSet {
    fn drop(&mut self) {
        self.budget.give_set_bytes(heap_bytes(&self.set));
        self.set.recycle();
    }
}

fn rerr(e: anyhow::Error) -> Box<EvalAltResult> {
    format!("{e:#}").into()
}

pub(super) fn index(v: INT, what: &str) -> RResult<usize> {
    usize::try_from(v).map_err(|_| format!("{what} must be >= 0, got {v}").into())
}

fn layer_of(sim: &Sim, v: INT) -> RResult<usize> {
    let l = index(v, "layer")?;
    if l >= sim.sizes.layers {
        return Err(format!(
            "layer {l} does not exist (the model has layers 0..{})",
            sim.sizes.layers
        )
        .into());
    }
    Ok(l)
}

pub(super) fn int(v: u64) -> INT {
    INT::try_from(v).unwrap_or(INT::MAX)
}

/// The positions of `s` taken from the oldest (`newest = false`) or newest end, at most `k`.
pub fn take(s: &TokenSet, k: u64, newest: bool) -> TokenSet {
    let mut out = TokenSet::new(s.capacity());
    let mut left = k;
    let src = s.words();
    let dst = out.words_mut();
    let order: Box<dyn Iterator<Item = usize>> = if newest {
        Box::new((0..src.len()).rev())
    } else {
        Box::new(0..src.len())
    };
    for i in order {
        if left == 0 {
            break;
        }
        let w = src[i];
        let c = w.count_ones() as u64;
        if c <= left {
            dst[i] = w;
            left -= c;
        } else {
            let mut w = w;
            let mut keep = 0u64;
            while left > 0 {
                let bit = if newest {
                    1u64 << (63 - w.leading_zeros())
                } else {
                    w & w.wrapping_neg()
                };
                keep |= bit;
                w &= !bit;
                left -= 1;
            }
            dst[i] = keep;
        }
    }
    out
}

fn cap_of(cap: INT) -> RResult<Option<u64>> {
    if cap < 0 {
        return Err(format!("byte cap must be >= 0, got {cap}").into());
    }
    Ok(Some(cap as u64))
}

/// Registers a function with its doc comment from [`api::VERBS`] (for `kvtier api
/// --definitions`).
/// The same function is recorded in `natives`, for compiled hooks ([`super::fast`]).
macro_rules! reg {
    ($engine:expr, $natives:expr, $name:expr, [$($p:expr),*], $f:expr) => {{
        let f = $f;
        $natives.add($name, f);
        FuncRegistration::new($name)
            .with_params_info([$($p),*].into_iter().chain([api::returns($name)]))
            .with_comments(api::comments($name))
            .register_into_engine($engine, f)
    }};
}
pub(super) use reg;

/// Registers `ctx`, `TokenSet` and every verb on `engine`.
pub fn register(engine: &mut Engine) {
    let natives = &mut super::fast::Natives::default();
    engine.register_type_with_name::<Ctx>("Ctx");
    engine.register_type_with_name::<ScriptSet>("TokenSet");

    // --- read-only state (properties: cheaper than methods)
    macro_rules! get {
        ($name:expr, $ty:expr, |$s:ident| $body:expr) => {
            let f = |c: &mut Ctx| -> RResult<_> {
                let $s = c.sim()?;
                Ok($body)
            };
            natives.add(concat!("get$", $name), f);
            FuncRegistration::new(concat!("get$", $name))
                .with_params_info(["ctx: Ctx", $ty])
                .with_comments(api::comments($name))
                .register_into_engine(engine, f);
        };
    }
    get!("step", "int", |s| s.step as INT);
    get!("decode_index", "int", |s| (s.step - s.sizes.prefill) as INT);
    get!("layer", "int", |s| s.layer.map_or(-1, |l| l as INT));
    get!("layers", "int", |s| s.sizes.layers as INT);
    get!("prefill", "int", |s| s.sizes.prefill as INT);
    get!("decode", "int", |s| s.sizes.decode as INT);
    get!("entry_bytes", "int", |s| int(s.sizes.entry_bytes));
    get!("block_tokens", "int", |s| s.sizes.block_tokens as INT);
    get!("hbm_used", "int", |s| int(s.memory.hbm_used_bytes()));
    get!("hbm_budget", "int", |s| int(s.memory.budget_bytes()));
    get!("hbm_free", "int", |s| int(s.memory.hbm_free_bytes()));
    get!("hbm_share", "float", |s| {
        let budget = s.memory.budget_bytes();
        if budget == 0 {
            0.0
        } else {
            s.memory.hbm_used_bytes() as FLOAT / budget as FLOAT
        }
    });
    get!("hbm_bw", "float", |s| s.sizes.hbm_bw as FLOAT);
    get!("link_bw", "float", |s| s.sizes.link_read_bw as FLOAT);
    get!("link_read_bandwidth", "float", |s| s.sizes.link_read_bw
        as FLOAT);
    get!("link_write_bandwidth", "float", |s| s.sizes.link_write_bw
        as FLOAT);
    get!(
        "gpu_flops",
        "float",
        |s| s.sizes.compute.flops_per_s.unwrap_or(0.0) as FLOAT
    );
    get!("migration", "String", |s| s
        .memory
        .mode()
        .name()
        .to_string());
    get!("copy_queue_bytes", "int", |s| int(s
        .memory
        .copy_queue_bytes()));
    get!("exti_bw", "float", |s| s.sizes.exti_bw as FLOAT);
    get!("ext_bw", "float", |s| s.sizes.ext_effective_bw as FLOAT);
    get!("alpha_target", "float", |s| s.sizes.alpha_target as FLOAT);
    get!("lookahead", "int", |s| s.window.lookahead() as INT);
    get!("history_steps", "int", |s| s.window.past() as INT);
    get!("steps_done", "int", |s| int(s.steps_done()));
    get!("attn_weight_bytes", "int", |s| int(s
        .sizes
        .attn_weight_bytes));

    // --- parameters
    reg!(
        engine,
        natives,
        "param",
        ["ctx: Ctx", "name: &str"],
        |c: &mut Ctx, name: ImmutableString| -> RResult<Dynamic> { c.param(&name, None) }
    );
    reg!(
        engine,
        natives,
        "param",
        ["ctx: Ctx", "name: &str", "default: ?"],
        |c: &mut Ctx, name: ImmutableString, d: Dynamic| -> RResult<Dynamic> {
            c.param(&name, Some(d))
        }
    );

    // --- residency
    reg!(
        engine,
        natives,
        "hbm_set",
        ["ctx: Ctx", "layer: int"],
        |c: &mut Ctx, l: INT| -> RResult<ScriptSet> {
            let s = c.sim()?;
            let l = layer_of(s, l)?;
            c.wrap(s, s.memory.hbm(l).clone())
        }
    );
    reg!(
        engine,
        natives,
        "ext_set",
        ["ctx: Ctx", "layer: int"],
        |c: &mut Ctx, l: INT| -> RResult<ScriptSet> {
            let s = c.sim()?;
            let l = layer_of(s, l)?;
            c.wrap(s, s.memory.ext_set(l))
        }
    );
    reg!(
        engine,
        natives,
        "present",
        ["ctx: Ctx", "layer: int"],
        |c: &mut Ctx, l: INT| -> RResult<ScriptSet> {
            let s = c.sim()?;
            let l = layer_of(s, l)?;
            c.wrap(s, s.memory.present(l).clone())
        }
    );
    reg!(
        engine,
        natives,
        "block_cover",
        ["ctx: Ctx", "set: TokenSet"],
        |c: &mut Ctx, set: ScriptSet| -> RResult<ScriptSet> {
            let s = c.sim()?;
            let bt = s.sizes.block_tokens;
            let mut out = TokenSet::new(s.sizes.positions());
            let mut x = 0;
            while let Some(p) = set.set.next_from(x) {
                let b = p / bt;
                out.insert_range(b * bt, (b + 1) * bt);
                x = (b + 1) * bt;
            }
            c.charge(set.set.words().len() as u64);
            c.wrap(s, out)
        }
    );
    reg!(
        engine,
        natives,
        "queued",
        ["ctx: Ctx", "layer: int"],
        |c: &mut Ctx, l: INT| -> RResult<ScriptSet> {
            let s = c.sim()?;
            let l = layer_of(s, l)?;
            c.wrap(s, s.memory.queued(l).clone())
        }
    );
    reg!(
        engine,
        natives,
        "hbm_count",
        ["ctx: Ctx", "layer: int"],
        |c: &mut Ctx, l: INT| -> RResult<INT> {
            let s = c.sim()?;
            Ok(int(s.memory.hbm_count(layer_of(s, l)?)))
        }
    );
    reg!(
        engine,
        natives,
        "present_count",
        ["ctx: Ctx", "layer: int"],
        |c: &mut Ctx, l: INT| -> RResult<INT> {
            let s = c.sim()?;
            Ok(int(s.memory.present_count(layer_of(s, l)?)))
        }
    );
    reg!(
        engine,
        natives,
        "hbm_any_layer",
        ["ctx: Ctx"],
        |c: &mut Ctx| -> RResult<ScriptSet> {
            let s = c.sim()?;
            c.charge(s.sizes.layers as u64 * s.sizes.positions().div_ceil(64) as u64);
            c.wrap(s, query::hbm_any_layer(s))
        }
    );
    reg!(
        engine,
        natives,
        "empty",
        ["ctx: Ctx"],
        |c: &mut Ctx| -> RResult<ScriptSet> {
            let s = c.sim()?;
            c.wrap(s, query::empty(s))
        }
    );
    reg!(
        engine,
        natives,
        "tokens",
        ["ctx: Ctx", "start: int", "end: int"],
        |c: &mut Ctx, a: INT, b: INT| -> RResult<ScriptSet> {
            let s = c.sim()?;
            let (a, b) = (index(a, "start")?, index(b, "end")?);
            c.wrap(s, TokenSet::range(s.sizes.positions(), a, b))
        }
    );

    // --- the future (oracle inside policy.lookahead)
    macro_rules! future_set {
        ($name:expr, |$s:ident, $l:ident, $k:ident| $body:expr) => {
            reg!(
                engine,
                natives,
                $name,
                ["ctx: Ctx", "layer: int", "k: int"],
                |c: &mut Ctx, l: INT, k: INT| -> RResult<ScriptSet> {
                    let ($s, $l, $k) = future_call(c, l, k)?;
                    c.wrap($s, $body.map_err(rerr)?)
                }
            );
        };
    }
    // The two a view is often combined with, through the path that combination takes too.
    for (name, which) in [
        ("skipped_at", Future::SkippedAt),
        ("read_at", Future::ReadAt),
    ] {
        reg!(
            engine,
            natives,
            name,
            ["ctx: Ctx", "layer: int", "k: int"],
            move |c: &mut Ctx, l: INT, k: INT| -> RResult<ScriptSet> {
                c.future(which, l, k).map(Pending::build)
            }
        );
    }
    future_set!("skipped_any", |s, l, k| query::skipped_over(
        s, l, 1, k, false
    ));
    future_set!("skipped_all", |s, l, k| query::skipped_over(
        s, l, 1, k, true
    ));
    future_set!("read_any", |s, l, k| query::read_over(s, l, 1, k, false));
    future_set!("read_all", |s, l, k| query::read_over(s, l, 1, k, true));
    reg!(
        engine,
        natives,
        "will_skip",
        ["ctx: Ctx", "layer: int", "pos: int", "k: int"],
        |c: &mut Ctx, l: INT, p: INT, k: INT| -> RResult<bool> {
            let s = c.sim()?;
            let l = layer_of(s, l)?;
            query::will_skip(s, l, index(p, "pos")?, index(k, "k")?).map_err(rerr)
        }
    );
    reg!(
        engine,
        natives,
        "layer_skips_ahead",
        ["ctx: Ctx", "layer: int", "k: int"],
        |c: &mut Ctx, l: INT, k: INT| -> RResult<INT> {
            let s = c.sim()?;
            let l = layer_of(s, l)?;
            Ok(int(
                query::layer_skips_ahead(s, l, index(k, "k")?).map_err(rerr)?
            ))
        }
    );

    // --- the past
    reg!(
        engine,
        natives,
        "past_skipped",
        ["ctx: Ctx", "layer: int", "w: int", "min: int"],
        |c: &mut Ctx, l: INT, w: INT, m: INT| -> RResult<ScriptSet> {
            let s = c.sim()?;
            let l = layer_of(s, l)?;
            let w = index(w, "w")?;
            c.charge(w as u64 * s.sizes.positions().div_ceil(64) as u64);
            let set = query::past_skipped(s, l, w, index(m, "min")?).map_err(rerr)?;
            c.wrap(s, set)
        }
    );
    reg!(
        engine,
        natives,
        "past_skipped_any",
        ["ctx: Ctx", "layer: int", "w: int"],
        |c: &mut Ctx, l: INT, w: INT| -> RResult<ScriptSet> {
            let s = c.sim()?;
            let l = layer_of(s, l)?;
            let set = query::past_skipped(s, l, index(w, "w")?, 1).map_err(rerr)?;
            c.wrap(s, set)
        }
    );
    reg!(
        engine,
        natives,
        "past_skipped_all",
        ["ctx: Ctx", "layer: int", "w: int"],
        |c: &mut Ctx, l: INT, w: INT| -> RResult<ScriptSet> {
            let s = c.sim()?;
            let l = layer_of(s, l)?;
            let w = index(w, "w")?;
            let set = query::past_skipped(s, l, w, w.max(1)).map_err(rerr)?;
            c.wrap(s, set)
        }
    );
    reg!(
        engine,
        natives,
        "layer_skips",
        ["ctx: Ctx", "layer: int"],
        |c: &mut Ctx, l: INT| -> RResult<INT> {
            let s = c.sim()?;
            Ok(int(s.history.layer_skips[layer_of(s, l)?]))
        }
    );
    reg!(
        engine,
        natives,
        "skip_share",
        ["ctx: Ctx", "layer: int"],
        |c: &mut Ctx, l: INT| -> RResult<FLOAT> {
            let s = c.sim()?;
            query::skip_share(s, layer_of(s, l)?).map_err(rerr)
        }
    );
    reg!(
        engine,
        natives,
        "mean_skip_share",
        ["ctx: Ctx"],
        |c: &mut Ctx| -> RResult<FLOAT> { Ok(query::mean_skip_share(c.sim()?)) }
    );

    // --- usage: frequency, recency, next read (the cache baselines)
    macro_rules! ranking {
        ($name:expr, $window:expr, |$s:ident, $c:ident, $set:ident, $l:ident, $w:ident, $k:ident| $body:expr) => {
            reg!(
                engine,
                natives,
                $name,
                [
                    "ctx: Ctx",
                    "set: TokenSet",
                    "layer: int",
                    $window,
                    "count: int"
                ],
                |$c: &mut Ctx, set: ScriptSet, l: INT, w: INT, k: INT| -> RResult<ScriptSet> {
                    let $s = $c.sim()?;
                    let $l = layer_of($s, l)?;
                    let $w = index(w, "window")?;
                    let $k = index(k, "count")? as u64;
                    $c.charge(16 * set.set.words().len() as u64);
                    let $set = &set.set;
                    let out = $body.map_err(rerr)?;
                    $c.wrap($s, out)
                }
            );
        };
    }
    ranking!("least_frequent", "w: int", |s, c, set, l, w, k| {
        let mut cache = c.0.usage.lock().unwrap_or_else(|e| e.into_inner());
        usage::least_frequent(s, &mut cache, set, l, w, k)
    });
    ranking!("most_frequent", "w: int", |s, c, set, l, w, k| {
        let mut cache = c.0.usage.lock().unwrap_or_else(|e| e.into_inner());
        usage::most_frequent(s, &mut cache, set, l, w, k)
    });
    ranking!("least_recent", "w: int", |s, c, set, l, w, k| {
        c.charge(w as u64 * set.words().len() as u64);
        usage::least_recent(s, set, l, w, k)
    });
    ranking!("farthest_next_read", "k: int", |s, c, set, l, w, k| {
        c.charge(w as u64 * set.words().len() as u64);
        usage::farthest_next_read(s, set, l, w, k)
    });
    reg!(
        engine,
        natives,
        "attn_weight_hbm",
        ["ctx: Ctx", "layer: int"],
        |c: &mut Ctx, l: INT| -> RResult<INT> {
            let s = c.sim()?;
            Ok(int(s.sizes.attn_weight_hbm[layer_of(s, l)?]))
        }
    );

    reg!(
        engine,
        natives,
        "flexgen_kv_share",
        ["ctx: Ctx"],
        |c: &mut Ctx| -> RResult<FLOAT> {
            let s = c.sim()?;
            Ok(crate::optimize::flexgen::solve(&s.sizes).kv_share as FLOAT)
        }
    );

    // --- alpha
    reg!(
        engine,
        natives,
        "predicted_alpha",
        ["ctx: Ctx", "step: int", "layer: int"],
        |c: &mut Ctx, n: INT, l: INT| -> RResult<Dynamic> {
            let s = c.sim()?;
            let l = layer_of(s, l)?;
            c.charge(2 * s.sizes.positions().div_ceil(64) as u64);
            let a = query::predicted_alpha(s, l, index(n, "step")?).map_err(rerr)?;
            Ok(a.map_or(Dynamic::UNIT, Dynamic::from_float))
        }
    );
    reg!(
        engine,
        natives,
        "predicted_reads",
        ["ctx: Ctx", "step: int", "layer: int"],
        |c: &mut Ctx, n: INT, l: INT| -> RResult<Map> {
            let s = c.sim()?;
            let l = layer_of(s, l)?;
            c.charge(2 * s.sizes.positions().div_ceil(64) as u64);
            let (h, e) = query::predicted_reads(s, l, index(n, "step")?)
                .map_err(rerr)?
                .unwrap_or((0, 0));
            let mut m = Map::new();
            m.insert("hbm".into(), Dynamic::from_int(int(h)));
            m.insert("ext".into(), Dynamic::from_int(int(e)));
            Ok(m)
        }
    );

    // --- moves
    fn mv(
        c: &mut Ctx,
        set: &ScriptSet,
        l: Option<INT>,
        cap: Option<u64>,
        hbm: bool,
    ) -> RResult<INT> {
        let s = c.sim_mut()?;
        let layers = match l {
            Some(l) => Layers::One(layer_of(s, l)?),
            None => Layers::All,
        };
        let n = if l.is_some() {
            1
        } else {
            s.sizes.layers as u64
        };
        let words = n * 3 * set.set.words().len() as u64;
        set.budget.charge(words);
        let r = if hbm {
            s.move_to_hbm(layers, &set.set, cap)
        } else {
            s.move_to_ext(layers, &set.set, cap)
        };
        r.map(int).map_err(rerr)
    }
    reg!(
        engine,
        natives,
        "to_hbm",
        ["ctx: Ctx", "set: TokenSet", "layer: int"],
        |c: &mut Ctx, set: ScriptSet, l: INT| mv(c, &set, Some(l), None, true)
    );
    reg!(
        engine,
        natives,
        "to_hbm",
        ["ctx: Ctx", "set: TokenSet", "layer: int", "cap_bytes: int"],
        |c: &mut Ctx, set: ScriptSet, l: INT, cap: INT| mv(c, &set, Some(l), cap_of(cap)?, true)
    );
    reg!(
        engine,
        natives,
        "to_ext",
        ["ctx: Ctx", "set: TokenSet", "layer: int"],
        |c: &mut Ctx, set: ScriptSet, l: INT| mv(c, &set, Some(l), None, false)
    );
    reg!(
        engine,
        natives,
        "to_ext",
        ["ctx: Ctx", "set: TokenSet", "layer: int", "cap_bytes: int"],
        |c: &mut Ctx, set: ScriptSet, l: INT, cap: INT| mv(c, &set, Some(l), cap_of(cap)?, false)
    );
    reg!(
        engine,
        natives,
        "to_hbm_all",
        ["ctx: Ctx", "set: TokenSet"],
        |c: &mut Ctx, set: ScriptSet| mv(c, &set, None, None, true)
    );
    reg!(
        engine,
        natives,
        "to_hbm_all",
        ["ctx: Ctx", "set: TokenSet", "cap_bytes: int"],
        |c: &mut Ctx, set: ScriptSet, cap: INT| mv(c, &set, None, cap_of(cap)?, true)
    );
    reg!(
        engine,
        natives,
        "to_ext_all",
        ["ctx: Ctx", "set: TokenSet"],
        |c: &mut Ctx, set: ScriptSet| mv(c, &set, None, None, false)
    );
    reg!(
        engine,
        natives,
        "to_ext_all",
        ["ctx: Ctx", "set: TokenSet", "cap_bytes: int"],
        |c: &mut Ctx, set: ScriptSet, cap: INT| mv(c, &set, None, cap_of(cap)?, false)
    );

    super::sets::register(engine, natives);
    std::mem::take(natives).publish();
}
