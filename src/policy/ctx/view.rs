//! The sets a compiled hook combines without building them: `x & ctx.hbm_set(l)`,
//! `x & ctx.ext_set(l)` and `x - ctx.hbm_set(l)` in place on `x`, and `ctx.skipped_at(l, k)` /
//! `ctx.read_at(l, k)` combined so in the same pass that builds them. Each gives the positions,
//! the errors and the budget charges of the calls and the operator written out (the natives
//! `skipped_at` and `read_at` go through [`Ctx::future`] too).

use std::sync::Arc;

use rhai::INT;

use super::{future_call, heap_bytes, layer_of, rerr, reserve_set, Ctx, RResult, ScriptSet};
use crate::engine::Sim;
use crate::policy::budget::Budget;
use crate::policy::query;
use crate::scenario::Hierarchy;
use crate::tokenset::TokenSet;

/// A residency set a compiled hook combines with another set without building it
/// ([`Ctx::combine_with_view`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// `ctx.hbm_set(l)`.
    Hbm,
    /// `ctx.ext_set(l)`.
    Ext,
}

/// `ctx.skipped_at(l, k)` or `ctx.read_at(l, k)`, the future sets a view is often combined
/// with ([`Ctx::future`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Future {
    SkippedAt,
    ReadAt,
}

impl Future {
    pub fn of(name: &str) -> Option<Future> {
        match name {
            "skipped_at" => Some(Future::SkippedAt),
            "read_at" => Some(Future::ReadAt),
            _ => None,
        }
    }
}

/// A future set checked and charged as its call is (work, and its bytes taken from the run's
/// set memory), not built yet: [`Pending::build`] builds it, [`Ctx::finish_view`] combines it
/// with a view in the same pass. Dropped unbuilt, it gives its bytes back.
pub struct Pending<'a> {
    set: query::Lazy<'a>,
    /// The bytes taken for the set.
    bytes: u64,
    entry_bytes: u64,
    budget: &'a Arc<Budget>,
}

impl<'a> Pending<'a> {
    fn take(&mut self) -> query::Lazy<'a> {
        std::mem::replace(&mut self.set, query::Lazy::Built(TokenSet::new(0)))
    }

    /// The set the call returns.
    pub fn build(mut self) -> ScriptSet {
        let set = self.take().build();
        self.adopt(set)
    }

    /// `set` (the one described, built or combined: as many words) as a script's set, with
    /// the bytes taken for it.
    fn adopt(mut self, set: TokenSet) -> ScriptSet {
        debug_assert_eq!(heap_bytes(&set), self.bytes);
        self.bytes = 0;
        ScriptSet {
            set,
            entry_bytes: self.entry_bytes,
            budget: self.budget.clone(),
        }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.budget.give_set_bytes(self.bytes);
    }
}

impl Ctx {
    /// `ctx.skipped_at(l, k)` / `ctx.read_at(l, k)` up to building the set: every check, error
    /// and charge of the call, in its order.
    pub fn future(&self, which: Future, l: INT, k: INT) -> RResult<Pending<'_>> {
        let (s, l, k) = future_call(self, l, k)?;
        let set = match which {
            Future::SkippedAt => query::skipped_at(s, l, s.step + k),
            Future::ReadAt => query::read_at(s, l, s.step + k),
        }
        .map_err(rerr)?;
        let words = set.words();
        reserve_set(&self.0.budget, words)?;
        Ok(Pending {
            set,
            bytes: words as u64 * 8,
            entry_bytes: s.sizes.entry_bytes,
            budget: &self.0.budget,
        })
    }

    /// `x & ctx.hbm_set(l)`, `x & ctx.ext_set(l)` or (`subtract`) `x - ctx.hbm_set(l)`, in
    /// place on `x`: the positions, the errors and the budget charges of building the view set
    /// (its words as work, its bytes taken and given back) and of the operator, without a copy
    /// of the view. `x - ctx.ext_set(l)` is not offered.
    pub fn combine_with_view(
        &self,
        x: &mut ScriptSet,
        l: INT,
        view: View,
        subtract: bool,
    ) -> RResult<()> {
        let s = self.sim()?;
        let l = self.charge_view(s, l, view)?;
        x.charge_pass();
        apply_view(s, &mut x.set, l, view, subtract)
    }

    /// [`Ctx::combine_with_view`] on a future set not built yet, in one pass where the set is
    /// a prefix of the trace's (`skipped_at`) or its complement (`read_at` while the present
    /// entries are `0..m`) and the view a residency set or a cut: the same positions, errors
    /// and charges as the call and the operator written out.
    pub fn finish_view(
        &self,
        mut x: Pending<'_>,
        l: INT,
        view: View,
        subtract: bool,
    ) -> RResult<ScriptSet> {
        let s = self.sim()?;
        let l = self.charge_view(s, l, view)?;
        self.charge(x.bytes / 8); // the operator's pass, as `ScriptSet::charge_pass`
        let m = &s.memory;
        let fused = match (view, subtract, m.hierarchy(), m.present_prefix(l)) {
            (View::Hbm, _, _, _) => Some((Some((m.hbm(l), subtract)), usize::MAX)),
            (View::Ext, false, Hierarchy::Exclusive, Some(e)) => Some((Some((m.hbm(l), true)), e)),
            (View::Ext, false, Hierarchy::Inclusive, Some(e)) => Some((None, e)),
            _ => None,
        };
        let lazy = x.take();
        let set = match fused {
            Some((other, cut)) => lazy.combine(other, cut),
            None => Err(lazy),
        };
        let set = match set {
            Ok(set) => set,
            Err(lazy) => {
                let mut set = lazy.build();
                apply_view(s, &mut set, l, view, subtract)?;
                set
            }
        };
        Ok(x.adopt(set))
    }

    /// The checks and charges of building the view set `ctx.hbm_set(l)` / `ctx.ext_set(l)`
    /// (its words as work, its bytes taken and given back); the layer.
    fn charge_view(&self, s: &Sim, l: INT, view: View) -> RResult<usize> {
        let l = layer_of(s, l)?;
        let m = &s.memory;
        let words = match view {
            View::Hbm => m.hbm(l).words().len(),
            View::Ext => m.present(l).words().len(),
        };
        let bytes = words as u64 * 8;
        self.charge(words as u64);
        self.0.budget.take_set_bytes(bytes)?;
        self.0.budget.give_set_bytes(bytes);
        Ok(l)
    }
}

/// `x &= hbm`, `x -= hbm` or `x &= ext` at layer `l`, without building the view set.
fn apply_view(s: &Sim, x: &mut TokenSet, l: usize, view: View, subtract: bool) -> RResult<()> {
    let m = &s.memory;
    match (view, subtract) {
        (View::Hbm, false) => x.intersect_with(m.hbm(l)),
        (View::Hbm, true) => x.subtract(m.hbm(l)),
        (View::Ext, false) => match (m.hierarchy(), m.present_prefix(l)) {
            // The present entries are the positions `0..e`: not read, only cut at `e`.
            (Hierarchy::Exclusive, Some(e)) => x.keep_below_minus(e, Some(m.hbm(l))),
            (Hierarchy::Exclusive, None) => x.keep_minus(m.present(l), Some(m.hbm(l))),
            (Hierarchy::Inclusive, Some(e)) => x.keep_below_minus(e, None),
            (Hierarchy::Inclusive, None) => x.intersect_with(m.present(l)),
        },
        (View::Ext, true) => return Err("x - ctx.ext_set(l) is not combined in place".into()),
    }
    Ok(())
}
