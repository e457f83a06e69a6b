//! Compiled hooks: a hook whose body uses only plain statements (`let`, assignment, `if`,
//! `for` over an integer range, `while`, `return`, `break`, `continue`) is translated once,
//! from the AST Rhai parsed, into a tree with its variables resolved to slots, and run by
//! [`eval`] instead of Rhai's interpreter. What makes Rhai slow for kvtier's hooks is not
//! the work but the dispatch: resolving every method call by name and argument types, and a
//! scope searched by name (about 200 ns a verb call).
//!
//! The contract is that a compiled hook computes exactly what Rhai computes:
//! - a verb or property of `ctx` or of a `TokenSet` calls the very closure registered with
//!   Rhai ([`natives`]), when the arguments have the types it takes;
//! - integer, float and boolean operators are Rhai's own built-in arithmetic (checked integer
//!   arithmetic, the epsilon-relative float comparisons), and the set operators the functions
//!   Rhai calls;
//! - anything else (another type, an overflow, a function of Rhai's library or of the script,
//!   a method on a string...) is handed to Rhai itself: a one-call script (`kv_r.f(kv_a0)`)
//!   compiled with the hook and evaluated with the operands bound as variables, so Rhai
//!   resolves it, runs it and raises its own error.
//!
//! A hook using anything else (closures, `switch`, `try`, indexing, `this`, modules, string
//! interpolation...) is not compiled and runs in Rhai as before. `KVTIER_INTERPRET=1` runs
//! every hook in Rhai (to check a result against the interpreter).
//!
//! What differs: the operation count that the limits (`MAX_OPERATIONS_PER_CALL`,
//! `policy.max_script_operations`) see is one per statement, loop iteration and call, which is
//! fewer than Rhai counts for the same code; an error's column may point at a different token
//! of the same expression.

mod eval;
mod live;
mod natives;

use std::collections::HashSet;

use rhai::{ASTFlags, ASTNode, Dynamic, Engine, Expr, FnCallExpr, Position, Stmt, StmtBlock, AST};

use crate::policy::ctx::{Future, View};
pub use eval::Runtime;
use natives::Adapter;
pub use natives::Natives;

/// The environment variable that turns compiled hooks off.
pub const INTERPRET_VAR: &str = "KVTIER_INTERPRET";

/// Whether hooks may be compiled (not turned off by [`INTERPRET_VAR`]).
pub fn enabled() -> bool {
    std::env::var_os(INTERPRET_VAR).is_none_or(|v| v.is_empty() || v == "0")
}

/// A hook translated for [`eval`].
pub struct FastFn {
    body: Block,
    /// Variable slots, the `ctx` parameter in slot 0.
    slots: usize,
    /// Calls `ctx.param(...)` with constant arguments. A run's parameters do not change, so
    /// the value such a call gave is kept (per run: [`Runtime::memo`]) and given again,
    /// without the lookup; a call that failed is not kept.
    memos: usize,
}

/// Statements with the slots their `let`s use (cleared when the block ends, as Rhai drops a
/// block's variables).
struct Block {
    stmts: Vec<St>,
    slots: std::ops::Range<usize>,
}

enum St {
    Let(usize, Ex),
    Assign(usize, Ex),
    /// `x op= e`: the operator, the syntax Rhai is handed (`kv_r += kv_a0`).
    OpAssign(usize, Bin, Ex, Position, Fallback),
    /// The condition with its position (for a type error).
    If(Ex, Position, Block, Block),
    For {
        slot: usize,
        range: Ex,
        body: Block,
        pos: Position,
    },
    /// `None`: `loop`.
    While(Option<(Ex, Position)>, Block),
    Expr(Ex),
    Return(Option<Ex>),
    Break,
    Continue,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Bin {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    And,
    Or,
    Xor,
    /// Only for what Rhai does (`**`, shifts, `in`...): always the fallback.
    Other,
}

enum Ex {
    Const(Dynamic),
    Var(usize),
    /// The last read of a variable: its value is moved out ([`live`]).
    Take(usize),
    Neg(Box<Ex>, Position, Fallback),
    Not(Box<Ex>, Position, Fallback),
    Op(Bin, Box<[Ex; 2]>, Position, Fallback),
    /// `a && b && ...` / `a || b || ...`: each operand with its position.
    And(Vec<(Ex, Position)>),
    Or(Vec<(Ex, Position)>),
    /// `a..b` (false) or `a..=b` (true), as a for loop's range.
    Range(Box<[Ex; 2]>, bool, Position, Fallback),
    /// A call `f(args)`: `min`/`max` of two integers natively, anything else by Rhai.
    Call(Call),
    /// `base.link.link...`.
    Chain(Box<Base>, Vec<Link>),
    /// `x & ctx.hbm_set(l)`, `x & ctx.ext_set(l)`, `x - ctx.hbm_set(l)`: the set `x` combined
    /// with the residency set in place ([`Ctx::combine_with_view`]) when `x` is a set and
    /// `ctx` the context; otherwise evaluated as written (`link` on the `ctx` slot, then
    /// the operator).
    View(Box<ViewOp>),
    Block(Block),
}

struct ViewOp {
    op: Bin,
    x: Ex,
    ctx: usize,
    view: View,
    /// `.hbm_set(l)` / `.ext_set(l)` as written.
    link: Link,
    /// `x` is `ctx.skipped_at(a, k)` or `ctx.read_at(a, k)` on the same `ctx`: the two may be
    /// one pass ([`Ctx::finish_view`](crate::policy::ctx::Ctx::finish_view)).
    future: Option<Future>,
    pos: Position,
    fallback: Fallback,
}

enum Base {
    /// A variable: the first link gets it by reference, as in Rhai.
    Var(usize),
    Value(Ex),
}

/// One `.name` or `.name(args)` of a chain.
struct Link {
    call: Call,
    /// A property (`get$name`), not a method.
    property: bool,
    /// `x.to_float()`, `x.to_int()`, `x.floor()` of Rhai's library, unless the script defines
    /// a function of the name.
    numeric: Option<Numeric>,
    /// `ctx.param(name)` / `ctx.param(name, default)` with constant arguments: its slot in the
    /// run's memo (see [`FastFn::memos`]).
    memo: Option<usize>,
}

/// The numeric methods of Rhai's library that hooks call on every step.
#[derive(Clone, Copy)]
enum Numeric {
    ToFloat,
    ToInt,
    Floor,
}

struct Call {
    /// Empty for a function the script defines (only Rhai calls it).
    name: String,
    args: Vec<Ex>,
    pos: Position,
    /// The natives of that name and arity (receiver included), unless the script defines a
    /// function of the name.
    natives: &'static [Adapter],
    fallback: Fallback,
}

/// A one-call script Rhai evaluates with the operands bound as `kv_r` (receiver) and `kv_a0`,
/// `kv_a1`, ...
struct Fallback(AST);

impl FastFn {
    /// Translates the hook `name` (one parameter) of `ast`, or `None` when it uses anything
    /// not translated (it then runs in Rhai).
    pub fn compile(engine: &Engine, ast: &AST, name: &str) -> Option<FastFn> {
        let f = ast
            .iter_fn_def()
            .find(|f| f.name == name && f.params.len() == 1)?;
        let param = f.params[0].to_string();
        let at = |p: Position| Some((p.line()?, p.position().unwrap_or(0)));
        let body = at(f.body.start_position())?..=at(f.body.end_position())?;
        let hook = ast.clone_functions_only();
        let mut c = Compiler {
            engine,
            script_fns: ast.iter_fn_def().map(|f| f.name.to_string()).collect(),
            names: vec![(param, 0)],
            next: 1,
            max: 1,
            memos: 0,
        };
        // The body's statements are the nodes of depth one of a walk over the functions that
        // lie within the body (Rhai's functions do not nest).
        let mut stmts = Some(Vec::new());
        hook.walk(&mut |path: &[ASTNode]| {
            if let [ASTNode::Stmt(s)] = path {
                match at(s.position()) {
                    Some(p) if !body.contains(&p) => return true,
                    Some(_) => {}
                    // A statement without a position cannot be placed: not compiled.
                    None => {
                        stmts = None;
                        return false;
                    }
                }
                match (c.stmt(s), stmts.as_mut()) {
                    (Some(st), Some(out)) => out.push(st),
                    _ => {
                        stmts = None;
                        return false;
                    }
                }
            }
            true
        });
        let mut body = Block {
            stmts: stmts?,
            slots: 1..c.max,
        };
        live::mark_last_reads(&mut body, c.max);
        Some(FastFn {
            body,
            slots: c.max,
            memos: c.memos,
        })
    }
}

struct Compiler<'a> {
    engine: &'a Engine,
    /// Names of the script's own functions: no native stands in for them.
    script_fns: HashSet<String>,
    /// Variables in scope, innermost last: name and slot.
    names: Vec<(String, usize)>,
    next: usize,
    max: usize,
    /// Memo slots given out ([`Link::memo`]).
    memos: usize,
}

/// Functions whose meaning depends on the caller's scope or call site: never compiled.
const SCOPE_FUNCTIONS: &[&str] = &[
    "is_def_var",
    "is_def_fn",
    "eval",
    "Fn",
    "call",
    "curry",
    "debug",
    "is_shared",
    "this",
];

impl Compiler<'_> {
    fn block(&mut self, b: &StmtBlock) -> Option<Block> {
        self.scoped(|c| b.statements().iter().map(|s| c.stmt(s)).collect())
    }

    /// Runs `f` in a new scope: its variables get fresh slots, freed after.
    fn scoped(&mut self, f: impl FnOnce(&mut Self) -> Option<Vec<St>>) -> Option<Block> {
        let (names, first) = (self.names.len(), self.next);
        let stmts = f(self);
        let end = self.max.max(first);
        self.names.truncate(names);
        self.next = first;
        Some(Block {
            stmts: stmts?,
            slots: first..end,
        })
    }

    fn declare(&mut self, name: &str) -> usize {
        let slot = self.next;
        self.next += 1;
        self.max = self.max.max(self.next);
        self.names.push((name.to_string(), slot));
        slot
    }

    fn lookup(&self, name: &str) -> Option<usize> {
        self.names
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|&(_, s)| s)
    }

    fn stmt(&mut self, s: &Stmt) -> Option<St> {
        Some(match s {
            Stmt::Noop(..) => St::Expr(Ex::Const(Dynamic::UNIT)),
            Stmt::Var(x, flags, _) => {
                if flags.contains(ASTFlags::EXPORTED) {
                    return None;
                }
                let (ident, value, _) = &**x;
                let value = self.expr(value)?;
                St::Let(self.declare(&ident.name), value)
            }
            Stmt::Assignment(x) => {
                let (op, target) = &**x;
                let Expr::Variable(v, _, _) = &target.lhs else {
                    return None;
                };
                if !v.2.is_empty() {
                    return None;
                }
                let slot = self.lookup(&v.1)?;
                let value = self.expr(&target.rhs)?;
                match op.get_op_assignment_info() {
                    None => St::Assign(slot, value),
                    Some((_, _, _, op_assign, _, op_syntax)) => St::OpAssign(
                        slot,
                        bin_of(op_syntax),
                        value,
                        op.position(),
                        self.fallback(&format!("kv_r {op_assign} kv_a0"))?,
                    ),
                }
            }
            Stmt::If(x, _) => St::If(
                self.expr(&x.expr)?,
                x.expr.position(),
                self.block(&x.body)?,
                self.block(&x.branch)?,
            ),
            Stmt::While(x, _) => {
                let cond = match &x.expr {
                    Expr::Unit(..) | Expr::BoolConstant(true, _) => None,
                    e => Some((self.expr(e)?, e.position())),
                };
                St::While(cond, self.block(&x.body)?)
            }
            Stmt::For(x, pos) => {
                let (var, counter, flow) = &**x;
                if counter.is_some() {
                    return None;
                }
                // `a..b`, or a constant range Rhai's optimizer folded.
                let range = self.expr(&flow.expr)?;
                let int_range = |v: &Dynamic| {
                    v.is::<std::ops::Range<rhai::INT>>()
                        || v.is::<std::ops::RangeInclusive<rhai::INT>>()
                };
                if !matches!(&range, Ex::Range(..))
                    && !matches!(&range, Ex::Const(v) if int_range(v))
                {
                    return None;
                }
                // The loop variable lives around the body's scope, and goes with the loop.
                let (names, first) = (self.names.len(), self.next);
                let slot = self.declare(&var.name);
                let body = self.block(&flow.body);
                self.names.truncate(names);
                self.next = first;
                St::For {
                    slot,
                    range,
                    body: body?,
                    pos: *pos,
                }
            }
            Stmt::Expr(e) => St::Expr(self.expr(e)?),
            Stmt::FnCall(call, pos) => St::Expr(self.call(call, *pos)?),
            Stmt::Block(b) => St::Expr(Ex::Block(self.block(b)?)),
            Stmt::BreakLoop(None, flags, _) => {
                if flags.contains(ASTFlags::BREAK) {
                    St::Break
                } else {
                    St::Continue
                }
            }
            // `throw` is a return with the BREAK flag.
            Stmt::Return(value, flags, _) if !flags.contains(ASTFlags::BREAK) => {
                St::Return(match value {
                    Some(e) => Some(self.expr(e)?),
                    None => None,
                })
            }
            _ => return None,
        })
    }

    fn expr(&mut self, e: &Expr) -> Option<Ex> {
        Some(match e {
            Expr::DynamicConstant(v, _) => Ex::Const((**v).clone()),
            Expr::BoolConstant(b, _) => Ex::Const(Dynamic::from_bool(*b)),
            Expr::IntegerConstant(i, _) => Ex::Const(Dynamic::from_int(*i)),
            Expr::FloatConstant(f, _) => Ex::Const(Dynamic::from_float(**f)),
            Expr::CharConstant(c, _) => Ex::Const(Dynamic::from(*c)),
            Expr::StringConstant(s, _) => Ex::Const(Dynamic::from(s.clone())),
            Expr::Unit(_) => Ex::Const(Dynamic::UNIT),
            Expr::Variable(v, _, _) => {
                if !v.2.is_empty() {
                    return None;
                }
                Ex::Var(self.lookup(&v.1)?)
            }
            Expr::Stmt(b) => Ex::Block(self.block(b)?),
            Expr::FnCall(call, pos) => self.call(call, *pos)?,
            Expr::And(xs, _) | Expr::Or(xs, _) => {
                let ops = xs
                    .iter()
                    .map(|x| Some((self.expr(x)?, x.position())))
                    .collect::<Option<Vec<_>>>()?;
                if matches!(e, Expr::And(..)) {
                    Ex::And(ops)
                } else {
                    Ex::Or(ops)
                }
            }
            Expr::Dot(x, _, _) => {
                let base = match &x.lhs {
                    Expr::Variable(v, _, _) if v.2.is_empty() => Base::Var(self.lookup(&v.1)?),
                    other => Base::Value(self.expr(other)?),
                };
                let mut links = Vec::new();
                self.links(&x.rhs, &mut links)?;
                Ex::Chain(Box::new(base), links)
            }
            _ => return None,
        })
    }

    /// The links of the right side of a dot chain, in order.
    fn links(&mut self, e: &Expr, out: &mut Vec<Link>) -> Option<()> {
        match e {
            Expr::Property(p, pos) => {
                let ((getter, _), _, name) = &**p;
                out.push(Link {
                    call: Call {
                        name: name.to_string(),
                        args: Vec::new(),
                        pos: *pos,
                        natives: Natives::find(getter, 1).unwrap_or(&[]),
                        fallback: self.fallback(&format!("kv_r.{name}"))?,
                    },
                    property: true,
                    numeric: None,
                    memo: None,
                });
            }
            Expr::MethodCall(call, pos) => {
                if !call.namespace.is_empty()
                    || call.capture_parent_scope
                    || SCOPE_FUNCTIONS.contains(&call.name.as_str())
                {
                    return None;
                }
                let args = self.args(call)?;
                let params: Vec<String> = (0..args.len()).map(|i| format!("kv_a{i}")).collect();
                let natives = self.natives(&call.name, args.len() + 1);
                let memo = (call.name == "param"
                    && !natives.is_empty()
                    && args.iter().all(|a| matches!(a, Ex::Const(_))))
                .then(|| {
                    self.memos += 1;
                    self.memos - 1
                });
                out.push(Link {
                    memo,
                    call: Call {
                        name: call.name.to_string(),
                        pos: *pos,
                        natives,
                        fallback: self.fallback(&format!(
                            "kv_r.{}({})",
                            call.name,
                            params.join(", ")
                        ))?,
                        args,
                    },
                    property: false,
                    numeric: match call.name.as_str() {
                        _ if !call.args.is_empty()
                            || self.script_fns.contains(call.name.as_str()) =>
                        {
                            None
                        }
                        "to_float" => Some(Numeric::ToFloat),
                        "to_int" => Some(Numeric::ToInt),
                        "floor" => Some(Numeric::Floor),
                        _ => None,
                    },
                });
            }
            Expr::Dot(x, _, _) => {
                self.links(&x.lhs, out)?;
                self.links(&x.rhs, out)?;
            }
            _ => return None,
        }
        Some(())
    }

    fn args(&mut self, call: &FnCallExpr) -> Option<Vec<Ex>> {
        call.args.iter().map(|a| self.expr(a)).collect()
    }

    fn natives(&self, name: &str, arity: usize) -> &'static [Adapter] {
        if self.script_fns.contains(name) {
            return &[];
        }
        Natives::find(name, arity).unwrap_or(&[])
    }

    fn call(&mut self, call: &FnCallExpr, pos: Position) -> Option<Ex> {
        if !call.namespace.is_empty()
            || call.capture_parent_scope
            || SCOPE_FUNCTIONS.contains(&call.name.as_str())
        {
            return None;
        }
        let name = call.name.as_str();
        let mut args = self.args(call)?;
        if call.is_operator_call() {
            let pair = |args: Vec<Ex>| -> Option<Box<[Ex; 2]>> {
                Some(Box::new(<[Ex; 2]>::try_from(args).ok()?))
            };
            return Some(match (name, args.len()) {
                ("-", 1) => Ex::Neg(
                    Box::new(args.pop()?),
                    pos,
                    self.fallback(&format!("{name}kv_a0"))?,
                ),
                ("!", 1) => Ex::Not(
                    Box::new(args.pop()?),
                    pos,
                    self.fallback(&format!("{name}kv_a0"))?,
                ),
                (".." | "..=", 2) => Ex::Range(
                    pair(args)?,
                    name == "..=",
                    pos,
                    self.fallback(&format!("kv_a0 {name} kv_a1"))?,
                ),
                (_, 2) => view_op(Ex::Op(
                    bin_of(name),
                    pair(args)?,
                    pos,
                    self.fallback(&format!("kv_a0 {name} kv_a1"))?,
                )),
                _ => return None,
            });
        }
        let params: Vec<String> = (0..args.len()).map(|i| format!("kv_a{i}")).collect();
        Some(Ex::Call(Call {
            name: if self.script_fns.contains(name) {
                String::new()
            } else {
                name.to_string()
            },
            pos,
            natives: &[],
            fallback: self.fallback(&format!("{name}({})", params.join(", ")))?,
            args,
        }))
    }

    fn fallback(&self, source: &str) -> Option<Fallback> {
        self.engine.compile(source).ok().map(Fallback)
    }
}

/// `x & ctx.hbm_set(l)`, `x & ctx.ext_set(l)` and `x - ctx.hbm_set(l)` as [`Ex::View`]; any
/// other expression as it is.
fn view_op(e: Ex) -> Ex {
    let Ex::Op(op @ (Bin::And | Bin::Sub), xy, pos, fallback) = e else {
        return e;
    };
    let [x, y] = *xy;
    let Ex::Chain(base, mut links) = y else {
        return Ex::Op(op, Box::new([x, y]), pos, fallback);
    };
    let view = match (&*base, &links[..]) {
        (Base::Var(_), [l])
            if !l.property && l.call.args.len() == 1 && !l.call.natives.is_empty() =>
        {
            match (l.call.name.as_str(), op) {
                ("hbm_set", _) => Some(View::Hbm),
                ("ext_set", Bin::And) => Some(View::Ext),
                _ => None,
            }
        }
        _ => None,
    };
    match (view, *base, links.pop()) {
        (Some(view), Base::Var(ctx), Some(link)) => Ex::View(Box::new(ViewOp {
            future: future_of(&x, ctx),
            op,
            x,
            ctx,
            view,
            link,
            pos,
            fallback,
        })),
        (_, base, link) => {
            links.extend(link);
            let y = Ex::Chain(Box::new(base), links);
            Ex::Op(op, Box::new([x, y]), pos, fallback)
        }
    }
}

/// `ctx.skipped_at(a, k)` / `ctx.read_at(a, k)` with `ctx` in slot `ctx`, calling the native.
fn future_of(x: &Ex, ctx: usize) -> Option<Future> {
    let Ex::Chain(base, links) = x else {
        return None;
    };
    match (&**base, &links[..]) {
        (Base::Var(slot), [l])
            if *slot == ctx
                && !l.property
                && l.call.args.len() == 2
                && !l.call.natives.is_empty() =>
        {
            Future::of(&l.call.name)
        }
        _ => None,
    }
}

fn bin_of(op: &str) -> Bin {
    match op {
        "+" => Bin::Add,
        "-" => Bin::Sub,
        "*" => Bin::Mul,
        "/" => Bin::Div,
        "%" => Bin::Rem,
        "==" => Bin::Eq,
        "!=" => Bin::Ne,
        ">" => Bin::Gt,
        ">=" => Bin::Ge,
        "<" => Bin::Lt,
        "<=" => Bin::Le,
        "&" => Bin::And,
        "|" => Bin::Or,
        "^" => Bin::Xor,
        _ => Bin::Other,
    }
}

#[cfg(test)]
mod tests;
