//! Running a compiled hook: statements over variable slots, natives called directly, and
//! every case the translation does not handle itself handed to Rhai (see the module
//! documentation of [`super`]).

use std::mem;

use rhai::{
    Caches, Dynamic, Engine, EvalAltResult, GlobalRuntimeState, Position, Scope, FLOAT, INT,
};

use super::{Base, Bin, Block, Call, Ex, Fallback, FastFn, Link, Numeric, St, ViewOp};
use crate::policy::budget::Budget;
use crate::policy::ctx::{Ctx, RResult, ScriptSet};
use crate::policy::host::MAX_OPERATIONS_PER_CALL;
use crate::policy::sets;

/// What a compiled hook runs with: the engine and runtime state its fallbacks use (the same
/// state Rhai's own calls of the script use), a scope for their operands, and the budget.
pub struct Runtime<'a> {
    pub engine: &'a Engine,
    pub global: &'a mut GlobalRuntimeState,
    pub caches: &'a mut Caches,
    pub scope: &'a mut Scope<'static>,
    pub budget: &'a Budget,
    /// Variable slots, kept from call to call.
    pub slots: &'a mut Vec<Dynamic>,
    /// The values of the hook's constant `ctx.param(...)` calls so far in this run
    /// ([`FastFn::memos`]); one per run and hook.
    pub memo: &'a mut Vec<Option<Dynamic>>,
    /// Why evaluation is leaving its statements early, other than an error.
    pub flow: Flow,
}

/// A `break`, `continue` or `return` on its way to the loop or call it ends.
#[derive(Default)]
pub enum Flow {
    #[default]
    Normal,
    Break,
    Continue,
    Return(Dynamic),
}

/// How evaluation stops before its end: with an error, or (`None`) for the [`Flow`] the
/// runtime holds. One word, so that `R<Dynamic>`, which every node returns through memory, is
/// two words instead of three: the caller's copy of a result just written field by field is
/// a load the processor cannot forward from those stores, and it was the hottest instruction
/// of every node's function in the profile (smaller, it measured 5-8% less CPU time for a
/// hook-heavy pair; docs/performance.md).
struct Ctl(Option<Box<EvalAltResult>>);

impl From<Box<EvalAltResult>> for Ctl {
    fn from(e: Box<EvalAltResult>) -> Ctl {
        Ctl(Some(e))
    }
}

type R<T> = Result<T, Ctl>;

/// What [`Runtime::future_view`] did.
enum Fused {
    /// The view's value.
    Done(Dynamic),
    /// `x` and the view's arguments, evaluated.
    X(Dynamic, Vec<Dynamic>),
    /// Nothing yet.
    No,
}

const ARG_NAMES: [&str; 8] = [
    "kv_a0", "kv_a1", "kv_a2", "kv_a3", "kv_a4", "kv_a5", "kv_a6", "kv_a7",
];

impl FastFn {
    /// Calls the hook with the `ctx` that `ctx` holds as its parameter; its value, as Rhai's
    /// call would return it. The parameter's value is handed back in `ctx` when the hook left
    /// it a plain `ctx` (as it came: no tag, not read-only), so that the caller can pass the
    /// same value to the next call instead of boxing a new one (`()` is left otherwise).
    pub fn call(&self, rt: &mut Runtime, ctx: &mut Dynamic) -> RResult<Dynamic> {
        rt.slots.clear();
        // Constants, not `resize`'s clones (an out-of-line call each).
        rt.slots.extend((0..self.slots).map(|_| Dynamic::UNIT));
        if rt.memo.len() != self.memos {
            rt.memo.clear();
            rt.memo.resize(self.memos, None);
        }
        rt.slots[0] = mem::take(ctx);
        let r = rt.block(&self.body);
        let param = mem::take(&mut rt.slots[0]);
        if param.is::<Ctx>() && param.tag() == 0 && !param.is_read_only() {
            *ctx = param;
        } else {
            release(param);
        }
        rt.slots.drain(..).for_each(release);
        match (r, mem::take(&mut rt.flow)) {
            (Ok(v), _) | (Err(Ctl(None)), Flow::Return(v)) => Ok(v),
            (Err(Ctl(Some(e))), _) => Err(limit_unplaced(e)),
            // Rhai refuses break and continue outside a loop when it parses the script.
            (Err(Ctl(None)), _) => Ok(Dynamic::UNIT),
        }
    }
}

/// Drops `v`. A `Dynamic` holding a plain value (unit, a boolean, an integer, a float) has
/// nothing to free, and is forgotten here instead of passing through Rhai's drop, an
/// out-of-line call into a match over every type it holds, made for each of the hundred or so
/// values a hook call discards. (Rhai is built with `no_closure`: no value is shared, so one
/// that says it is an integer is one.)
#[inline(always)]
fn release(v: Dynamic) {
    if v.is_unit() || v.is_int() || v.is_float() || v.is_bool() {
        mem::forget(v);
    }
}

/// Drops every value of `vs` (as [`release`]).
#[inline(always)]
fn release_all(vs: Vec<Dynamic>) {
    vs.into_iter().for_each(release);
}

/// `a..=b` as its first and last values; `None` when empty.
fn inclusive_range(a: INT, b: INT) -> Option<(INT, INT)> {
    (a <= b).then_some((a, b))
}

/// `a..b` as its first and last values; `None` when empty.
fn exclusive_range(a: INT, b: INT) -> Option<(INT, INT)> {
    (a < b).then(|| (a, b - 1))
}

/// A limit error (operations, nesting, data size, a stop of the budget) reaches the host
/// alone and without a position, however deep in the script's own functions it was raised:
/// what Rhai's call of the hook gives too.
fn limit_unplaced(e: Box<EvalAltResult>) -> Box<EvalAltResult> {
    fn is_limit(e: &EvalAltResult) -> bool {
        match e {
            EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => is_limit(inner),
            EvalAltResult::ErrorTooManyOperations(..)
            | EvalAltResult::ErrorStackOverflow(..)
            | EvalAltResult::ErrorDataTooLarge(..)
            | EvalAltResult::ErrorTerminated(..) => true,
            _ => false,
        }
    }
    if !is_limit(&e) {
        return e;
    }
    let mut e = e;
    loop {
        e = match *e {
            EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => inner,
            other => {
                let mut e = Box::new(other);
                e.set_position(Position::NONE);
                return e;
            }
        }
    }
}

fn fill(mut e: Box<EvalAltResult>, pos: Position) -> Box<EvalAltResult> {
    if e.position().is_none() {
        e.set_position(pos);
    }
    e
}

fn mismatch(rt: &Runtime, expected: &str, got: &Dynamic, pos: Position) -> Ctl {
    Ctl(Some(Box::new(EvalAltResult::ErrorMismatchDataType(
        rt.engine.map_type_name(expected).to_string(),
        got.type_name().to_string(),
        pos,
    ))))
}

impl Runtime<'_> {
    /// One operation: Rhai's per-call limit and the run's budget, as Rhai's progress callback
    /// checks them.
    fn tick(&mut self, pos: Position) -> R<()> {
        self.global.num_operations += 1;
        let n = self.global.num_operations;
        if n > MAX_OPERATIONS_PER_CALL {
            return Err(Box::new(EvalAltResult::ErrorTooManyOperations(pos)).into());
        }
        if let Some(token) = self.budget.progress(n) {
            return Err(Box::new(EvalAltResult::ErrorTerminated(token, pos)).into());
        }
        Ok(())
    }

    fn block(&mut self, b: &Block) -> R<Dynamic> {
        let mut value = Dynamic::UNIT;
        let mut end = Ok(());
        for s in &b.stmts {
            match self.stmt(s) {
                Ok(v) => release(mem::replace(&mut value, v)),
                Err(c) => {
                    end = Err(c);
                    break;
                }
            }
        }
        for s in b.slots.clone() {
            release(mem::take(&mut self.slots[s]));
        }
        end.map(|()| value)
    }

    fn condition(&mut self, e: &Ex, pos: Position) -> R<bool> {
        let v = match e {
            Ex::Op(op, xy, op_pos, fb) => match self.peek_op(*op, xy) {
                Some(Plain::Bool(b)) => return Ok(b),
                Some(v) => v.dynamic(),
                None => self.op_as_written(*op, xy, *op_pos, fb)?,
            },
            _ => self.expr(e)?,
        };
        match v.as_bool() {
            Ok(b) => {
                release(v);
                Ok(b)
            }
            Err(_) => Err(mismatch(self, "bool", &v, pos)),
        }
    }

    fn stmt(&mut self, s: &St) -> R<Dynamic> {
        self.tick(Position::NONE)?;
        match s {
            St::Let(slot, e) | St::Assign(slot, e) => {
                let v = self.expr(e)?;
                release(mem::replace(&mut self.slots[*slot], v));
                Ok(Dynamic::UNIT)
            }
            St::OpAssign(slot, op, e, pos, fb) => {
                let y = self.expr(e)?;
                let x = mem::take(&mut self.slots[*slot]);
                let v = match binary(*op, x, y) {
                    Ok(v) => v.map_err(|e| fill(e, *pos))?,
                    Err((x, y)) => {
                        let mut x = x;
                        let r = self.fallback(fb, Some(&mut x), vec![y], *pos);
                        self.slots[*slot] = x;
                        r.map(drop)?;
                        return Ok(Dynamic::UNIT);
                    }
                };
                self.slots[*slot] = v;
                Ok(Dynamic::UNIT)
            }
            St::If(c, pos, yes, no) => {
                if self.condition(c, *pos)? {
                    self.block(yes)
                } else {
                    self.block(no)
                }
            }
            St::For {
                slot,
                range,
                body,
                pos,
            } => {
                let mut end = Ok(Dynamic::UNIT);
                // From the first to the last position, both included (`INT::MAX` too).
                if let Some((first, last)) = self.range(range)? {
                    let mut i = first;
                    loop {
                        if let Err(c) = self.tick(*pos) {
                            end = Err(c);
                            break;
                        }
                        release(mem::replace(&mut self.slots[*slot], Dynamic::from_int(i)));
                        match self.block(body) {
                            Ok(_) => {}
                            Err(c) => match self.loop_flow(c) {
                                Ok(true) => {}
                                Ok(false) => break,
                                Err(c) => {
                                    end = Err(c);
                                    break;
                                }
                            },
                        }
                        if i == last {
                            break;
                        }
                        i += 1;
                    }
                }
                release(mem::take(&mut self.slots[*slot]));
                end
            }
            St::While(cond, body) => {
                loop {
                    self.tick(Position::NONE)?;
                    if let Some((c, pos)) = cond {
                        if !self.condition(c, *pos)? {
                            break;
                        }
                    }
                    if let Err(c) = self.block(body) {
                        if !self.loop_flow(c)? {
                            break;
                        }
                    }
                }
                Ok(Dynamic::UNIT)
            }
            St::Expr(e) => self.expr(e),
            St::Return(e) => {
                let v = match e {
                    Some(e) => self.expr(e)?,
                    None => Dynamic::UNIT,
                };
                self.flow = Flow::Return(v);
                Err(Ctl(None))
            }
            St::Break => {
                self.flow = Flow::Break;
                Err(Ctl(None))
            }
            St::Continue => {
                self.flow = Flow::Continue;
                Err(Ctl(None))
            }
        }
    }

    /// What a loop does with its body's early end `c`: go on (`true`: `continue`), stop
    /// (`false`: `break`), or pass it on (an error, a `return`).
    fn loop_flow(&mut self, c: Ctl) -> R<bool> {
        match (&c, &self.flow) {
            (Ctl(None), Flow::Continue) => {}
            (Ctl(None), Flow::Break) => {}
            _ => return Err(c),
        }
        Ok(matches!(mem::take(&mut self.flow), Flow::Continue))
    }

    /// A for loop's range as a half-open `from..to` of integers; a range of anything else is
    /// built by Rhai, and only an integer range is iterated.
    fn range(&mut self, e: &Ex) -> R<Option<(INT, INT)>> {
        let (v, pos) = match e {
            Ex::Range(ends, inclusive, pos, fb) => {
                let a = self.expr(&ends[0])?;
                let b = self.expr(&ends[1])?;
                if let (Ok(a), Ok(b)) = (a.as_int(), b.as_int()) {
                    return Ok(if *inclusive {
                        inclusive_range(a, b)
                    } else {
                        exclusive_range(a, b)
                    });
                }
                (self.fallback(fb, None, vec![a, b], *pos)?, pos)
            }
            // A constant range (checked when compiled).
            other => (self.expr(other)?, &Position::NONE),
        };
        if let Some(r) = v.read_lock::<std::ops::Range<INT>>() {
            return Ok(exclusive_range(r.start, r.end));
        }
        if let Some(r) = v.read_lock::<std::ops::RangeInclusive<INT>>() {
            return Ok(inclusive_range(*r.start(), *r.end()));
        }
        Err(Box::new(EvalAltResult::ErrorFor(*pos)).into())
    }

    /// An expression's value. Each kind of node has its own function, kept out of line, so
    /// that this dispatch (run for every node) has a small frame.
    fn expr(&mut self, e: &Ex) -> R<Dynamic> {
        match e {
            Ex::Const(v) => Ok(v.clone()),
            Ex::Var(slot) => Ok(self.slots[*slot].clone()),
            Ex::Take(slot) => Ok(mem::take(&mut self.slots[*slot])),
            Ex::Op(op, xy, pos, fb) => self.op(*op, xy, *pos, fb),
            Ex::Chain(base, links) => self.chain(base, links),
            Ex::Neg(x, pos, fb) => self.neg(x, *pos, fb),
            Ex::Not(x, pos, fb) => self.not(x, *pos, fb),
            Ex::And(xs) => self.logic(xs, false),
            Ex::Or(xs) => self.logic(xs, true),
            Ex::Range(ends, _, pos, fb) => self.range_value(ends, *pos, fb),
            Ex::Call(call) => self.call(call),
            Ex::Block(b) => self.block(b),
            Ex::View(v) => self.view(v),
        }
    }

    /// The plain value of an operand computed where its parts are: a variable or a constant
    /// holding one (no copy of its `Dynamic`), or, `depth` levels down, Rhai's built-in
    /// operator on two such ([`plain_binary`]). Reads only: `None` (nothing done) for any other
    /// operand, value or operator, an overflow included, which [`Runtime::expr`] then
    /// evaluates as written.
    #[inline(always)]
    fn peek(&self, e: &Ex, depth: u32) -> Option<Plain> {
        match e {
            Ex::Const(v) => Plain::of(v),
            Ex::Var(s) | Ex::Take(s) => Plain::of(&self.slots[*s]),
            Ex::Op(op, xy, ..) if depth > 0 => plain_binary(
                *op,
                self.peek(&xy[0], depth - 1)?,
                self.peek(&xy[1], depth - 1)?,
            ),
            _ => None,
        }
    }

    /// What evaluating an operand that [`Runtime::peek`] computed does besides: the slot of
    /// each last read is left empty.
    fn taken(&mut self, e: &Ex) {
        match e {
            Ex::Take(s) => release(mem::take(&mut self.slots[*s])),
            Ex::Op(_, xy, ..) => xy.iter().for_each(|x| self.taken(x)),
            _ => {}
        }
    }

    /// `x op y` computed by [`Runtime::peek`], each operand a variable, a constant or an
    /// operator on two such, with the slots left as evaluating it would leave them; `None`,
    /// nothing done, otherwise.
    #[inline(always)]
    fn peek_op(&mut self, op: Bin, xy: &[Ex; 2]) -> Option<Plain> {
        let v = plain_binary(op, self.peek(&xy[0], 1)?, self.peek(&xy[1], 1)?)?;
        xy.iter().for_each(|x| self.taken(x));
        Some(v)
    }

    #[inline(never)]
    fn op(&mut self, op: Bin, xy: &[Ex; 2], pos: Position, fb: &Fallback) -> R<Dynamic> {
        match self.peek_op(op, xy) {
            Some(v) => Ok(v.dynamic()),
            None => self.op_as_written(op, xy, pos, fb),
        }
    }

    /// `x op y` with both operands evaluated first: Rhai's built-in operators ([`binary`]), or
    /// Rhai.
    #[inline(never)]
    fn op_as_written(&mut self, op: Bin, xy: &[Ex; 2], pos: Position, fb: &Fallback) -> R<Dynamic> {
        let x = self.expr(&xy[0])?;
        let y = self.expr(&xy[1])?;
        match binary(op, x, y) {
            Ok(v) => Ok(v.map_err(|e| fill(e, pos))?),
            Err((x, y)) => self.fallback(fb, None, vec![x, y], pos),
        }
    }

    #[inline(never)]
    fn neg(&mut self, x: &Ex, pos: Position, fb: &Fallback) -> R<Dynamic> {
        let v = self.expr(x)?;
        if let Ok(i) = v.as_int() {
            if let Some(n) = i.checked_neg() {
                return Ok(Dynamic::from_int(n));
            }
        } else if let Ok(f) = v.as_float() {
            return Ok(Dynamic::from_float(-f));
        }
        self.fallback(fb, None, vec![v], pos)
    }

    #[inline(never)]
    fn not(&mut self, x: &Ex, pos: Position, fb: &Fallback) -> R<Dynamic> {
        let v = self.expr(x)?;
        match v.as_bool() {
            Ok(b) => Ok(Dynamic::from_bool(!b)),
            Err(_) => self.fallback(fb, None, vec![v], pos),
        }
    }

    /// `&&` (`stop` false: stops at the first false) or `||` (stops at the first true).
    #[inline(never)]
    fn logic(&mut self, xs: &[(Ex, Position)], stop: bool) -> R<Dynamic> {
        for (x, pos) in xs {
            if self.condition(x, *pos)? == stop {
                return Ok(Dynamic::from_bool(stop));
            }
        }
        Ok(Dynamic::from_bool(!stop))
    }

    /// A range as a value (not a for loop's): Rhai builds it.
    #[inline(never)]
    fn range_value(&mut self, ends: &[Ex; 2], pos: Position, fb: &Fallback) -> R<Dynamic> {
        let a = self.expr(&ends[0])?;
        let b = self.expr(&ends[1])?;
        self.fallback(fb, None, vec![a, b], pos)
    }

    #[inline(never)]
    fn call(&mut self, call: &Call) -> R<Dynamic> {
        let args = self.args(call)?;
        self.tick(call.pos)?;
        if let [a, b] = &args[..] {
            if let (Ok(a), Ok(b)) = (a.as_int(), b.as_int()) {
                // Rhai's min and max of two integers.
                match call.name.as_str() {
                    "min" => return Ok(Dynamic::from_int(a.min(b))),
                    "max" => return Ok(Dynamic::from_int(a.max(b))),
                    _ => {}
                }
            }
        }
        self.fallback(&call.fallback, None, args, call.pos)
    }

    /// As Rhai: every argument of the chain first, then the base, then the links.
    #[inline(never)]
    fn chain(&mut self, base: &Base, links: &[Link]) -> R<Dynamic> {
        // A chain has at least one link (see `Compiler::links`).
        let Some((first, rest)) = links.split_first() else {
            return Ok(Dynamic::UNIT);
        };
        if let (Some(i), Base::Var(slot), []) = (first.memo, base, rest) {
            if self.slots[*slot].is::<Ctx>() {
                return self.memo_param(first, *slot, i);
            }
        }
        let first_args = self.args(&first.call)?;
        let mut rest_args = Vec::with_capacity(rest.len());
        for l in rest {
            rest_args.push(self.args(&l.call)?);
        }
        let mut v = match base {
            Base::Var(slot) => {
                let mut recv = mem::take(&mut self.slots[*slot]);
                let r = self.link(first, &mut recv, first_args);
                release(mem::replace(&mut self.slots[*slot], recv));
                r?
            }
            Base::Value(x) => {
                let mut recv = self.expr(x)?;
                self.link(first, &mut recv, first_args)?
            }
        };
        for (l, a) in rest.iter().zip(rest_args) {
            let next = self.link(l, &mut v, a)?;
            release(mem::replace(&mut v, next));
        }
        Ok(v)
    }

    /// `ctx.param(...)` with constant arguments (no side effect to evaluate): the value this
    /// run gave before, or the call made and its value kept. The operation is counted either
    /// way.
    #[inline(never)]
    fn memo_param(&mut self, l: &Link, slot: usize, i: usize) -> R<Dynamic> {
        if let Some(v) = self.memo[i].clone() {
            self.tick(l.call.pos)?;
            return Ok(v);
        }
        let args = self.args(&l.call)?;
        let mut recv = mem::take(&mut self.slots[slot]);
        let r = self.link(l, &mut recv, args);
        release(mem::replace(&mut self.slots[slot], recv));
        let v = r?;
        self.memo[i] = Some(v.clone());
        Ok(v)
    }

    /// [`Ex::View`]: `x`, then the layer, then the operator, as the expression written.
    #[inline(never)]
    fn view(&mut self, v: &ViewOp) -> R<Dynamic> {
        let (x, mut args) = match self.future_view(v)? {
            Fused::Done(set) => return Ok(set),
            Fused::X(x, args) => (x, args),
            Fused::No => {
                let x = self.expr(&v.x)?;
                (x, self.args(&v.link.call)?)
            }
        };
        let ctx = self.slots[v.ctx].read_lock::<Ctx>().map(|c| c.clone());
        let layer = match &args[..] {
            [l] => l.as_int().ok(),
            _ => None,
        };
        if let (Some(c), Some(l), true) = (ctx, layer, x.is::<ScriptSet>()) {
            self.tick(v.link.call.pos)?;
            let mut x = x.cast::<ScriptSet>();
            c.combine_with_view(&mut x, l, v.view, v.op == Bin::Sub)
                .map_err(|e| fill(e, v.link.call.pos))?;
            return Ok(Dynamic::from(x));
        }
        let mut recv = mem::take(&mut self.slots[v.ctx]);
        let y = self.link(&v.link, &mut recv, mem::take(&mut args));
        release(mem::replace(&mut self.slots[v.ctx], recv));
        match binary(v.op, x, y?) {
            Ok(r) => Ok(r.map_err(|e| fill(e, v.pos))?),
            Err((x, y)) => self.fallback(&v.fallback, None, vec![x, y], v.pos),
        }
    }

    /// [`Ex::View`] whose `x` is `ctx.skipped_at(a, k)` / `ctx.read_at(a, k)` and whose layer
    /// is a variable or a constant: the set and the view in one pass ([`Ctx::finish_view`]),
    /// with the ticks, charges and errors of the two calls in their order (reading the layer
    /// early is not seen: no tick, no error, no other slot touched). Otherwise `x` and the
    /// view's arguments evaluated as written, or nothing done yet.
    fn future_view(&mut self, v: &ViewOp) -> R<Fused> {
        let (Some(which), Ex::Chain(base, links), [y]) = (v.future, &v.x, &v.link.call.args[..])
        else {
            return Ok(Fused::No);
        };
        let (Base::Var(slot), [link]) = (&**base, &links[..]) else {
            return Ok(Fused::No);
        };
        if !matches!(y, Ex::Var(_) | Ex::Take(_) | Ex::Const(_)) {
            return Ok(Fused::No);
        }
        let xargs = self.args(&link.call)?;
        let ctx = self.slots[*slot].read_lock::<Ctx>().map(|c| c.clone());
        let ints = match &xargs[..] {
            [a, k] => a.as_int().ok().zip(k.as_int().ok()),
            _ => None,
        };
        let y = self.expr(y)?;
        if let (Some(c), Some((a, k)), Ok(l)) = (ctx, ints, y.as_int()) {
            self.tick(link.call.pos)?;
            let x = c.future(which, a, k).map_err(|e| fill(e, link.call.pos))?;
            self.tick(v.link.call.pos)?;
            let set = c
                .finish_view(x, l, v.view, v.op == Bin::Sub)
                .map_err(|e| fill(e, v.link.call.pos))?;
            return Ok(Fused::Done(Dynamic::from(set)));
        }
        let mut recv = mem::take(&mut self.slots[*slot]);
        let x = self.link(link, &mut recv, xargs);
        release(mem::replace(&mut self.slots[*slot], recv));
        Ok(Fused::X(x?, vec![y]))
    }

    fn args(&mut self, call: &Call) -> R<Vec<Dynamic>> {
        let mut out = Vec::with_capacity(call.args.len());
        for a in &call.args {
            out.push(self.expr(a)?);
        }
        Ok(out)
    }

    /// One `.name` / `.name(args)` on `recv`: a native when the types fit, a map's field, or
    /// Rhai.
    fn link(&mut self, l: &Link, recv: &mut Dynamic, mut args: Vec<Dynamic>) -> R<Dynamic> {
        let call = &l.call;
        self.tick(call.pos)?;
        for native in call.natives {
            if let Some(r) = native(recv, &mut args) {
                release_all(args);
                return r.map_err(|e| fill(e, call.pos).into());
            }
        }
        if let Some(n) = l.numeric {
            if let Some(v) = numeric(n, recv) {
                return Ok(v);
            }
        }
        if l.property {
            if let Some(map) = recv.read_lock::<rhai::Map>() {
                return Ok(map.get(call.name.as_str()).cloned().unwrap_or_default());
            }
        }
        self.fallback(&call.fallback, Some(recv), args, call.pos)
    }

    /// Rhai evaluates `fb` with `recv` bound as `kv_r` (and written back: a method may change
    /// it) and `args` as `kv_a0`...; its error is placed at `pos`.
    fn fallback(
        &mut self,
        fb: &Fallback,
        recv: Option<&mut Dynamic>,
        args: Vec<Dynamic>,
        pos: Position,
    ) -> R<Dynamic> {
        self.scope.clear();
        let mut recv = recv;
        if let Some(r) = recv.as_deref_mut() {
            self.scope.push_dynamic("kv_r", mem::take(r));
        }
        for (i, a) in args.into_iter().enumerate() {
            match ARG_NAMES.get(i) {
                Some(&n) => self.scope.push_dynamic(n, a),
                None => self.scope.push_dynamic(format!("kv_a{i}"), a),
            };
        }
        #[allow(deprecated)] // the raw call that keeps the hook's caches (internals)
        let r = self.engine.eval_statements_raw(
            self.global,
            self.caches,
            self.scope,
            fb.0.statements(),
        );
        if let Some(r) = recv {
            *r = self
                .scope
                .get_mut("kv_r")
                .map(mem::take)
                .unwrap_or_default();
        }
        self.scope.clear();
        r.map_err(|mut e| {
            e.set_position(pos);
            Ctl(Some(e))
        })
    }
}

/// A value with nothing to free, as the operators compute with it: held in registers, where
/// a `Dynamic` passed between functions goes through memory in pieces that the next read,
/// a whole-value copy, cannot take from the processor's store buffer (a stall on every move,
/// the hottest instructions of the evaluator in a profile of `alpha`; docs/performance.md).
#[derive(Clone, Copy)]
enum Plain {
    Int(INT),
    Float(FLOAT),
    Bool(bool),
}

impl Plain {
    #[inline(always)]
    fn of(d: &Dynamic) -> Option<Plain> {
        if let Ok(i) = d.as_int() {
            Some(Plain::Int(i))
        } else if let Ok(f) = d.as_float() {
            Some(Plain::Float(f))
        } else if let Ok(b) = d.as_bool() {
            Some(Plain::Bool(b))
        } else {
            None
        }
    }

    #[inline(always)]
    fn dynamic(self) -> Dynamic {
        match self {
            Plain::Int(i) => Dynamic::from_int(i),
            Plain::Float(f) => Dynamic::from_float(f),
            Plain::Bool(b) => Dynamic::from_bool(b),
        }
    }

    /// An integer, or an integer as a float (as Rhai's mixed arithmetic takes it).
    #[inline(always)]
    fn float(self) -> Option<FLOAT> {
        match self {
            Plain::Int(i) => Some(i as FLOAT),
            Plain::Float(f) => Some(f),
            Plain::Bool(_) => None,
        }
    }
}

/// Rhai's built-in operators on integers, floats and booleans; `None` for any other operator
/// on them or an integer overflow, for Rhai to handle.
#[inline(always)]
fn plain_binary(op: Bin, x: Plain, y: Plain) -> Option<Plain> {
    if let (Plain::Int(a), Plain::Int(b)) = (x, y) {
        return match op {
            Bin::Add => a.checked_add(b).map(Plain::Int),
            Bin::Sub => a.checked_sub(b).map(Plain::Int),
            Bin::Mul => a.checked_mul(b).map(Plain::Int),
            Bin::Div if b != 0 => a.checked_div(b).map(Plain::Int),
            Bin::Rem => a.checked_rem(b).map(Plain::Int),
            Bin::Eq => Some(Plain::Bool(a == b)),
            Bin::Ne => Some(Plain::Bool(a != b)),
            Bin::Gt => Some(Plain::Bool(a > b)),
            Bin::Ge => Some(Plain::Bool(a >= b)),
            Bin::Lt => Some(Plain::Bool(a < b)),
            Bin::Le => Some(Plain::Bool(a <= b)),
            Bin::And => Some(Plain::Int(a & b)),
            Bin::Or => Some(Plain::Int(a | b)),
            Bin::Xor => Some(Plain::Int(a ^ b)),
            _ => None,
        };
    }
    if let (Some(a), Some(b)) = (x.float(), y.float()) {
        return float_op(op, a, b);
    }
    if let (Plain::Bool(a), Plain::Bool(b)) = (x, y) {
        return match op {
            Bin::Eq => Some(Plain::Bool(a == b)),
            Bin::Ne => Some(Plain::Bool(a != b)),
            _ => None,
        };
    }
    None
}

/// Rhai's built-in operators on integers, floats and booleans ([`plain_binary`]), and the set
/// operators; the operands back (`Err`) for any other types or an integer overflow, for Rhai
/// to handle.
#[allow(clippy::type_complexity)]
fn binary(op: Bin, x: Dynamic, y: Dynamic) -> Result<RResult<Dynamic>, (Dynamic, Dynamic)> {
    if let (Some(a), Some(b)) = (Plain::of(&x), Plain::of(&y)) {
        return match plain_binary(op, a, b) {
            Some(v) => {
                release(x);
                release(y);
                Ok(Ok(v.dynamic()))
            }
            None => Err((x, y)),
        };
    }
    if x.is::<ScriptSet>() && y.is::<ScriptSet>() && matches!(op, Bin::And | Bin::Or | Bin::Sub) {
        let (a, b) = (x.cast::<ScriptSet>(), y.cast::<ScriptSet>());
        let v = match op {
            Bin::And => sets::op_and(a, b),
            Bin::Or => sets::op_or(a, b),
            _ => sets::op_minus(a, b),
        };
        return Ok(Ok(Dynamic::from(v)));
    }
    Err((x, y))
}

/// Rhai's `to_float`, `to_int` and `floor` where their result is plain (an integer, or a
/// float well inside the integer range); `None` leaves the call to Rhai.
fn numeric(n: Numeric, x: &Dynamic) -> Option<Dynamic> {
    if let Ok(i) = x.as_int() {
        return match n {
            Numeric::ToFloat => Some(Dynamic::from_float(i as FLOAT)),
            Numeric::ToInt => Some(Dynamic::from_int(i)),
            Numeric::Floor => None,
        };
    }
    let f = x.as_float().ok()?;
    match n {
        Numeric::ToFloat => Some(Dynamic::from_float(f)),
        // Rhai refuses a float outside the integer range; inside it, it truncates.
        Numeric::ToInt if f.abs() < 9.0e18 => Some(Dynamic::from_int(f.trunc() as INT)),
        Numeric::ToInt => None,
        Numeric::Floor => Some(Dynamic::from_float(f.floor())),
    }
}

/// Rhai's float arithmetic, and its comparisons within a relative epsilon.
#[inline(always)]
fn float_op(op: Bin, x: FLOAT, y: FLOAT) -> Option<Plain> {
    let scale = || {
        if x * y == 0.0 {
            1.0
        } else {
            x.abs().max(y.abs())
        }
    };
    let cmp = |when_zero: bool, f: fn(FLOAT, FLOAT, FLOAT) -> bool| {
        let max = scale();
        Plain::Bool(if max == 0.0 { when_zero } else { f(x, y, max) })
    };
    Some(match op {
        Bin::Add => Plain::Float(x + y),
        Bin::Sub => Plain::Float(x - y),
        Bin::Mul => Plain::Float(x * y),
        Bin::Div => Plain::Float(x / y),
        Bin::Rem => Plain::Float(x % y),
        Bin::Eq => cmp(true, |x, y, m| (x - y).abs() / m <= FLOAT::EPSILON),
        Bin::Ne => cmp(false, |x, y, m| (x - y).abs() / m > FLOAT::EPSILON),
        Bin::Gt => cmp(false, |x, y, m| (x - y) / m > FLOAT::EPSILON),
        Bin::Ge => cmp(true, |x, y, m| (x - y) / m > -FLOAT::EPSILON),
        Bin::Lt => cmp(false, |x, y, m| (y - x) / m > FLOAT::EPSILON),
        Bin::Le => cmp(true, |x, y, m| (y - x) / m > -FLOAT::EPSILON),
        _ => return None,
    })
}
