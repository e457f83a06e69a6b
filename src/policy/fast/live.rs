//! Last reads: a variable read for the last time (no read of it can follow before it is
//! assigned again) is moved out of its slot instead of copied. Rhai copies every variable it
//! passes to a function, so a hook that hands a set to a move verb copies the set first; a
//! compiled hook moves it when it is not read again. The result is the same value: only the
//! copy (and the words it would have charged to the budget) is saved.
//!
//! The analysis is the classic backward liveness over the statement tree, with a fixed point
//! around each loop (a variable read in a loop and declared outside it is live around the back
//! edge), `break` going to the loop's exit and `continue` to its head.

use super::{Base, Block, Ex, St};

/// Which slots may still be read.
#[derive(Clone, PartialEq, Eq)]
struct Live(Vec<bool>);

impl Live {
    fn read(&mut self, slot: usize) {
        self.0[slot] = true;
    }

    fn kill(&mut self, slot: usize) {
        self.0[slot] = false;
    }

    fn union(&mut self, other: &Live) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= *b;
        }
    }
}

/// Turns the last reads of `body` (a hook of `slots` variables) into moves.
pub(super) fn mark_last_reads(body: &mut Block, slots: usize) {
    let mut a = Analysis { loops: Vec::new() };
    let mut live = Live(vec![false; slots]);
    a.block(body, &mut live, true);
}

struct Analysis {
    /// For each enclosing loop: what is live at its exit and at its head.
    loops: Vec<(Live, Live)>,
}

impl Analysis {
    fn block(&mut self, b: &mut Block, live: &mut Live, mark: bool) {
        for s in b.stmts.iter_mut().rev() {
            self.stmt(s, live, mark);
        }
    }

    /// What is live at the head of a loop whose body is `body`: the least fixed point of
    /// `head = exit ∪ f(head)`, where `f` is the body (and the condition) run backwards.
    fn head(&mut self, exit: &Live, mut f: impl FnMut(&mut Self, &Live) -> Live) -> Live {
        let mut head = exit.clone();
        loop {
            let mut next = f(self, &head);
            next.union(exit);
            if next == head {
                return head;
            }
            head = next;
        }
    }

    fn stmt(&mut self, s: &mut St, live: &mut Live, mark: bool) {
        match s {
            St::Let(slot, e) | St::Assign(slot, e) => {
                live.kill(*slot);
                self.expr(e, live, mark);
            }
            St::OpAssign(slot, _, e, _, _) => {
                live.read(*slot);
                self.expr(e, live, mark);
            }
            St::If(c, _, yes, no) => {
                let mut other = live.clone();
                self.block(yes, live, mark);
                self.block(no, &mut other, mark);
                live.union(&other);
                self.expr(c, live, mark);
            }
            St::For {
                slot, range, body, ..
            } => {
                let exit = live.clone();
                let slot = *slot;
                let run = |a: &mut Self, head: &Live, body: &mut Block, mark: bool| {
                    a.loops.push((exit.clone(), head.clone()));
                    let mut l = head.clone();
                    a.block(body, &mut l, mark);
                    a.loops.pop();
                    l.kill(slot);
                    l
                };
                let head = self.head(&exit, |a, head| run(a, head, body, false));
                if mark {
                    run(self, &head, body, true);
                }
                *live = head;
                self.expr(range, live, mark);
            }
            St::While(cond, body) => {
                let exit = live.clone();
                // Backwards from the head: the condition, after it the body or the exit.
                let mut run = |a: &mut Self, head: &Live, body: &mut Block, mark: bool| {
                    a.loops.push((exit.clone(), head.clone()));
                    let mut l = head.clone();
                    a.block(body, &mut l, mark);
                    a.loops.pop();
                    if let Some((c, _)) = cond.as_mut() {
                        l.union(&exit);
                        a.expr(c, &mut l, mark);
                    }
                    l
                };
                let head = self.head(&exit, |a, head| run(a, head, body, false));
                if mark {
                    run(self, &head, body, true);
                }
                *live = head;
            }
            St::Expr(e) => self.expr(e, live, mark),
            St::Return(e) => {
                live.0.fill(false);
                if let Some(e) = e {
                    self.expr(e, live, mark);
                }
            }
            // Rhai refuses both outside a loop; were one there, everything stays live.
            St::Break | St::Continue => {
                let jump = self.loops.last().map(|(exit, head)| match s {
                    St::Break => exit.clone(),
                    _ => head.clone(),
                });
                *live = jump.unwrap_or_else(|| Live(vec![true; live.0.len()]));
            }
        }
    }

    /// Operands backwards, last evaluated first.
    fn expr(&mut self, e: &mut Ex, live: &mut Live, mark: bool) {
        match e {
            Ex::Const(_) => {}
            Ex::Var(slot) | Ex::Take(slot) => {
                let slot = *slot;
                if mark && !live.0[slot] {
                    *e = Ex::Take(slot);
                }
                live.read(slot);
            }
            Ex::Neg(x, ..) | Ex::Not(x, ..) => self.expr(x, live, mark),
            Ex::Op(_, xy, ..) | Ex::Range(xy, ..) => {
                let [x, y] = &mut **xy;
                self.expr(y, live, mark);
                self.expr(x, live, mark);
            }
            Ex::And(xs) | Ex::Or(xs) => {
                // An operand may be the last evaluated: each sees what follows the whole
                // expression as well as the operands after it.
                for (x, _) in xs.iter_mut().rev() {
                    let mut l = live.clone();
                    self.expr(x, &mut l, mark);
                    live.union(&l);
                }
            }
            Ex::Call(call) => {
                for a in call.args.iter_mut().rev() {
                    self.expr(a, live, mark);
                }
            }
            Ex::Chain(base, links) => {
                // Evaluated: every link's arguments, then the base, then the links.
                match &mut **base {
                    Base::Var(slot) => live.read(*slot),
                    Base::Value(x) => self.expr(x, live, mark),
                }
                for l in links.iter_mut().rev() {
                    for a in l.call.args.iter_mut().rev() {
                        self.expr(a, live, mark);
                    }
                }
            }
            Ex::Block(b) => self.block(b, live, mark),
            Ex::View(v) => {
                // Evaluated: `x`, the layer, then `ctx` read in place.
                live.read(v.ctx);
                for a in v.link.call.args.iter_mut().rev() {
                    self.expr(a, live, mark);
                }
                self.expr(&mut v.x, live, mark);
            }
        }
    }
}
