//! The decode loop of SPEC 6: for each step and layer, call the policy hooks, charge every read,
//! write and move to its resources, let the copy engine work in async mode (SPEC 12), and emit
//! one [`Record`] per sublayer and non-empty step phase, with its compute (SPEC 11) and its
//! bounds (SPEC 7, 13).
//!
//! Architecture Invariant: the engine never calls a policy inside a per-position loop; a policy
//! changes bytes or time only through the move verbs of [`Sim`], which go through
//! [`crate::memory::Memory`] and so cannot exceed the HBM budget.
//!
//! Not here: formatting of results ([`crate::results`]), scripts ([`crate::policy`]).

use std::sync::Arc;

use anyhow::{bail, Result};

use crate::bounds::Bounds;
use crate::memory::{Charges, Memory, Order, Tier, Timing};
use crate::scenario::{Access, MigrationMode, Scenario, Sizes};
use crate::tokenset::TokenSet;
use crate::trace::{self, TraceWindow};

/// What a sublayer record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sublayer {
    Attn,
    Mlp,
    /// A step phase (moves of `on_step`).
    Step,
}

impl Sublayer {
    pub fn name(self) -> &'static str {
        match self {
            Sublayer::Attn => "attn",
            Sublayer::Mlp => "mlp",
            Sublayer::Step => "step",
        }
    }
}

/// One row of the per-sublayer results.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Record {
    pub step: usize,
    /// `None` for a step phase.
    pub layer: Option<usize>,
    pub sublayer: Sublayer,
    pub charges: Charges,
    pub time_s: f64,
    /// Ideal-bound time of this sublayer's reads (SPEC 7, 11).
    pub bound_s: f64,
    /// Placement-bound time of this sublayer (SPEC 13): attention rows at their best split,
    /// MLP rows their own time without copies; 0 for step phases and move-only rows.
    pub placement_bound_s: f64,
    /// FLOPs charged to the GPU (SPEC 11); `None` when compute is not modelled.
    pub flops: Option<f64>,
    /// Whether compute set the row's time (`flops / gpu.flops` above its memory time).
    pub compute_bound: bool,
    /// HBM KV bytes in use once this sublayer or phase is done, reservations included (for
    /// occupancy plots; not a CSV column).
    pub hbm_kv_bytes: u64,
}

impl Record {
    /// A step phase or the move-only row of a skipped layer: moves only, timed as the max over
    /// resources (a step phase) or by the overlap mode (a move-only row), no compute, no
    /// overhead, no bound.
    fn moves_only(
        step: usize,
        layer: Option<usize>,
        charges: Charges,
        timing: &Timing,
        memory: &Memory,
    ) -> Record {
        let (sublayer, time_s) = match layer {
            None => (Sublayer::Step, charges.phase_time(timing)),
            Some(_) => (Sublayer::Attn, charges.memory_time(timing)),
        };
        Record {
            step,
            layer,
            sublayer,
            charges,
            time_s,
            bound_s: 0.0,
            placement_bound_s: 0.0,
            flops: timing.flops_per_s.map(|_| 0.0),
            compute_bound: false,
            hbm_kv_bytes: memory.hbm_used_bytes(),
        }
    }
}

/// What an attention or MLP row computes and its bounds, before the row is timed.
struct RowWork {
    flops: f64,
    bound_s: f64,
    /// `None`: the row's own time without copies (MLP rows).
    placement_bound_s: Option<f64>,
}

/// The error a run stops with when it was cancelled (by a newer change, in `watch`).
#[derive(Debug)]
pub struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("cancelled by a newer change")
    }
}

impl std::error::Error for Cancelled {}

/// Receives records as the run produces them.
pub trait RecordSink {
    fn record(&mut self, r: &Record) -> Result<()>;
}

impl RecordSink for Vec<Record> {
    fn record(&mut self, r: &Record) -> Result<()> {
        self.push(*r);
        Ok(())
    }
}

/// Sends every record to two sinks, in order.
pub struct Tee<'a>(pub &'a mut dyn RecordSink, pub &'a mut dyn RecordSink);

impl RecordSink for Tee<'_> {
    fn record(&mut self, r: &Record) -> Result<()> {
        self.0.record(r)?;
        self.1.record(r)
    }
}

/// A sink that drops every record.
pub struct Discard;

impl RecordSink for Discard {
    fn record(&mut self, _: &Record) -> Result<()> {
        Ok(())
    }
}

/// History of the trace as far as the run has gone.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Per layer: decode steps so far at which the whole layer was skipped.
    pub layer_skips: Vec<u64>,
    /// Per layer: decode steps so far at which its MLP was skipped.
    pub mlp_skips: Vec<u64>,
    /// Per layer: KV entries read by attention so far.
    pub kv_read_entries: Vec<u64>,
    /// Per layer: present KV entries attention skipped so far (token skipping; whole-layer skips
    /// are in `layer_skips`).
    pub kv_skipped_entries: Vec<u64>,
}

/// The state a policy sees and acts on: sizes, memory, the trace window, history, and the move
/// verbs. Moves are charged to the phase being run (step phase or attention sublayer).
pub struct Sim {
    pub sizes: Arc<Sizes>,
    pub memory: Memory,
    pub window: TraceWindow,
    pub history: History,
    /// Current decode step `n`.
    pub step: usize,
    /// Layer being run; `None` during the step phase.
    pub layer: Option<usize>,
    moves: Charges,
    moves_allowed: bool,
}

/// Which layers a move applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layers {
    One(usize),
    All,
}

impl Sim {
    fn check_layer(&self, layers: Layers) -> Result<std::ops::Range<usize>> {
        if !self.moves_allowed {
            bail!("moves are allowed only in on_step and on_layer, not in place");
        }
        match layers {
            Layers::All => Ok(0..self.sizes.layers),
            Layers::One(l) if l < self.sizes.layers => Ok(l..l + 1),
            Layers::One(l) => bail!(
                "layer {l} does not exist (the model has layers 0..{})",
                self.sizes.layers
            ),
        }
    }

    /// Moves the EXT-only entries of `set` to HBM at the given layers, newest first, at most
    /// `cap_bytes` in all; what finds no room counts as refused. Returns the bytes moved.
    pub fn move_to_hbm(
        &mut self,
        layers: Layers,
        set: &TokenSet,
        cap_bytes: Option<u64>,
    ) -> Result<u64> {
        self.move_entries(layers, set, cap_bytes, Tier::Hbm)
    }

    /// Moves the HBM entries of `set` to EXT at the given layers, oldest first, at most
    /// `cap_bytes` in all. Returns the bytes moved.
    pub fn move_to_ext(
        &mut self,
        layers: Layers,
        set: &TokenSet,
        cap_bytes: Option<u64>,
    ) -> Result<u64> {
        self.move_entries(layers, set, cap_bytes, Tier::Ext)
    }

    /// Layers are taken in order 0..L with one cap (in whole entries) for the whole call. In
    /// async mode the call queues one copy job and returns the bytes it queued.
    fn move_entries(
        &mut self,
        layers: Layers,
        set: &TokenSet,
        cap_bytes: Option<u64>,
        to: Tier,
    ) -> Result<u64> {
        let range = self.check_layer(layers)?;
        let cap = cap_bytes.unwrap_or(u64::MAX);
        Ok(self
            .memory
            .move_entries(range, set, cap, to, Order::OldestFirst, &mut self.moves))
    }

    /// Decode steps completed before the current one.
    pub fn steps_done(&self) -> u64 {
        (self.step - self.sizes.prefill) as u64
    }

    /// Charges of the moves made so far in the current phase.
    pub fn pending_moves(&self) -> &Charges {
        &self.moves
    }
}

/// A strategy: where new entries go, and optional hooks that move entries.
pub trait Policy {
    /// Label shown in tables.
    fn name(&self) -> String;
    /// Tier for the new entry `(sim.step, layer)`.
    fn place(&mut self, sim: &mut Sim, layer: usize) -> Result<Tier>;
    /// Whether [`Policy::initial`] may change the scenario's initial KV split.
    fn has_initial(&self) -> bool {
        false
    }
    /// The prefill positions of `layer` to hold on HBM before the first decode step, in place
    /// of the scenario's `[initial]` split; `None` keeps the scenario's. Called once per layer,
    /// at step `P`, before any other hook.
    fn initial(&mut self, _sim: &mut Sim, _layer: usize) -> Result<Option<TokenSet>> {
        Ok(None)
    }
    /// Whether [`Policy::on_step`] does anything (the engine skips the call otherwise).
    fn has_on_step(&self) -> bool {
        false
    }
    fn on_step(&mut self, _sim: &mut Sim) -> Result<()> {
        Ok(())
    }
    /// How many past steps of the trace the policy may look at (kept in the window); native
    /// policies look at none, so they keep no past steps in memory.
    fn past_steps(&self) -> usize {
        0
    }
    /// Whether [`Policy::on_layer`] does anything.
    fn has_on_layer(&self) -> bool {
        false
    }
    fn on_layer(&mut self, _sim: &mut Sim, _layer: usize) -> Result<()> {
        Ok(())
    }
}

/// The native placements of the core: everything to one tier.
pub struct FixedPlacement(pub Tier);

impl Policy for FixedPlacement {
    fn name(&self) -> String {
        self.0.name().to_string()
    }
    fn place(&mut self, _: &mut Sim, _: usize) -> Result<Tier> {
        Ok(self.0)
    }
}

/// Totals of a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunTotals {
    pub decode_time_s: f64,
    pub bound_s: f64,
    /// Sum of the rows' placement bounds (SPEC 13).
    pub placement_bound_s: f64,
    /// Rows whose time compute set (SPEC 11).
    pub compute_bound_rows: u64,
    /// Bytes still on the copy queue when the run ended (async; SPEC 12).
    pub queued_at_end_bytes: u64,
    pub charges: Charges,
    /// Sum of alpha over attention sublayers that read, and their count.
    pub attn_alpha_sum: f64,
    pub attn_rows: u64,
    pub mlp_alpha_sum: f64,
    pub mlp_rows: u64,
    pub counters: crate::memory::MemoryCounters,
    /// HBM KV bytes after the last step.
    pub end_hbm_kv_bytes: u64,
}

/// SPEC 7's ideal-bound memory time of one sublayer's reads (see [`crate::bounds`], which adds
/// compute and overhead).
pub fn ideal_bound(sizes: &Sizes, access: Access, weight_bytes: u64, kv_bytes: u64) -> f64 {
    crate::bounds::ideal_memory(sizes, access, weight_bytes, kv_bytes)
}

/// Ideal bound of a run where nothing is skipped: at step `n` every layer reads its weights and
/// the `n` entries before it.
pub fn no_skip_bound(sizes: &Sizes, access: Access) -> f64 {
    crate::bounds::no_skip_ideal(sizes, access)
}

/// Runs the decode loop of `scenario` with `policy`, sending every record to `sink`.
pub fn run(
    scenario: &Scenario,
    policy: &mut dyn Policy,
    sink: &mut dyn RecordSink,
) -> Result<RunTotals> {
    let source = trace::open(scenario)?;
    run_with_trace(scenario, source, policy, sink)
}

/// [`run`] with an explicit trace source (tests, replay).
pub fn run_with_trace(
    scenario: &Scenario,
    source: Box<dyn trace::TraceSource>,
    policy: &mut dyn Policy,
    sink: &mut dyn RecordSink,
) -> Result<RunTotals> {
    let s = &scenario.sizes;
    let timing = Timing::of(scenario);
    let access = scenario.file.ext.access;
    let bounds = Bounds::new(s, timing, access);
    let passive = scenario.file.memory.passive_migration && access == Access::Fetch;
    let background = scenario.file.memory.migration == MigrationMode::Async;
    let lookahead = scenario.file.policy.lookahead as usize;
    let mut sim = Sim {
        sizes: Arc::new(s.clone()),
        memory: Memory::initial(scenario),
        window: TraceWindow::with_past(source, lookahead, policy.past_steps()),
        history: History {
            layer_skips: vec![0; s.layers],
            mlp_skips: vec![0; s.layers],
            kv_read_entries: vec![0; s.layers],
            kv_skipped_entries: vec![0; s.layers],
        },
        step: s.prefill,
        layer: None,
        moves: Charges::default(),
        moves_allowed: false,
    };
    let (has_step, has_layer) = (policy.has_on_step(), policy.has_on_layer());
    let mut t = RunTotals::default();
    let ext_weight = |hbm_part: u64, all: u64| all - hbm_part;
    let clock = Clock { timing, background };

    if policy.has_initial() {
        sim.window.advance_to(s.prefill)?;
        let mut sets = Vec::with_capacity(s.layers);
        for l in 0..s.layers {
            sim.layer = Some(l);
            sets.push(policy.initial(&mut sim, l)?);
        }
        sim.layer = None;
        sim.memory.set_initial_hbm(sets)?;
    }
    for n in s.prefill..s.prefill + s.decode {
        crate::interrupt::check()?;
        sim.window.advance_to(n)?;
        sim.step = n;
        if has_step {
            sim.layer = None;
            sim.moves = Charges::default();
            sim.moves_allowed = true;
            policy.on_step(&mut sim)?;
            sim.moves_allowed = false;
            // In async mode moves only queue: there is no step phase.
            if !sim.moves.is_empty() {
                let rec = Record::moves_only(n, None, sim.moves, &timing, &sim.memory);
                emit(&mut t, sink, &rec)?;
            }
        }
        for l in 0..s.layers {
            sim.layer = Some(l);
            sim.moves = Charges::default();
            if has_layer {
                sim.moves_allowed = true;
                policy.on_layer(&mut sim, l)?;
                sim.moves_allowed = false;
            }
            let (layer_skipped, mlp_skipped) = {
                let ls = &sim.window.current().layers[l];
                (ls.layer, ls.mlp)
            };
            if layer_skipped {
                sim.history.layer_skips[l] += 1;
                if !sim.moves.is_empty() {
                    let rec = Record::moves_only(n, Some(l), sim.moves, &timing, &sim.memory);
                    emit(&mut t, sink, &rec)?;
                }
                continue;
            }
            // With KV blocks only a block's first entry asks the placement (SPEC 14); the
            // others follow their block (`want` is then not used).
            let want = if sim.memory.block_started(l, n) {
                Tier::Ext
            } else {
                policy.place(&mut sim, l)?
            };
            let mut c = sim.moves;
            // Attention weights.
            c.read_hbm(s.attn_weight_hbm[l]);
            c.fetch_ext(ext_weight(s.attn_weight_hbm[l], s.attn_weight_bytes));
            // KV reads, new entry, passive installs.
            let ls = &sim.window.current().layers[l];
            let skipped = (ls.token_count > 0).then_some((&ls.tokens, ls.token_count));
            let (read_entries, ext_entries) = sim.memory.read_kv(l, skipped, &mut c);
            sim.history.kv_read_entries[l] += read_entries;
            sim.history.kv_skipped_entries[l] += sim.memory.present_count(l) - read_entries;
            sim.memory.write_new(l, n, want, &mut c);
            if passive && ext_entries > 0 {
                sim.memory
                    .passive_install(l, n, skipped.map(|(s, _)| s), &mut c);
            }
            // The GPU computes the KV it reads; in near_data the device computes EXT entries.
            let gpu_entries = match access {
                Access::Fetch => read_entries,
                Access::NearData => read_entries - ext_entries,
            };
            let work = RowWork {
                flops: s.compute.attn_flops(gpu_entries),
                bound_s: bounds.ideal(
                    s.attn_weight_bytes,
                    c.kv_read,
                    bounds.attn_bound_flops(read_entries),
                ),
                placement_bound_s: Some(bounds.placement_attn(l, read_entries)),
            };
            clock.row(&mut sim, &mut t, sink, (n, l, Sublayer::Attn), c, work)?;
            if mlp_skipped {
                sim.history.mlp_skips[l] += 1;
                continue;
            }
            let mut m = Charges::default();
            m.read_hbm(s.mlp_weight_hbm[l]);
            m.fetch_ext(ext_weight(s.mlp_weight_hbm[l], s.mlp_weight_bytes));
            let work = RowWork {
                flops: s.compute.mlp_flops,
                bound_s: bounds.ideal(s.mlp_weight_bytes, 0, s.compute.mlp_flops),
                placement_bound_s: None,
            };
            clock.row(&mut sim, &mut t, sink, (n, l, Sublayer::Mlp), m, work)?;
        }
    }
    t.counters = sim.memory.counters;
    t.end_hbm_kv_bytes = sim.memory.hbm_used_bytes();
    t.queued_at_end_bytes = sim.memory.copy_queue_bytes();
    debug_assert!(sim.memory.hbm_used_bytes() <= sim.memory.budget_bytes());
    Ok(t)
}

/// Times attention and MLP rows.
struct Clock {
    timing: Timing,
    /// Async migration: the copy engine works during each row.
    background: bool,
}

impl Clock {
    /// Times a row from its charges and work, lets the copy engine work for the row's own time
    /// in async mode (its bytes compete with the row's; completions take effect at the end of
    /// the row), and emits it.
    fn row(
        &self,
        sim: &mut Sim,
        t: &mut RunTotals,
        sink: &mut dyn RecordSink,
        (step, layer, sublayer): (usize, usize, Sublayer),
        mut c: Charges,
        work: RowWork,
    ) -> Result<()> {
        let timing = &self.timing;
        let own = c.sublayer_time(timing, work.flops);
        let mut time_s = own;
        if self.background {
            sim.memory.run_copies(own, &mut c);
            if c.copy > 0 {
                time_s = c.sublayer_time(timing, work.flops);
            }
            sim.memory.complete_copies(&mut c);
        }
        let compute_bound = timing.compute_time(work.flops) > c.memory_time(timing);
        let rec = Record {
            step,
            layer: Some(layer),
            sublayer,
            charges: c,
            time_s,
            bound_s: work.bound_s,
            placement_bound_s: work.placement_bound_s.unwrap_or(own),
            flops: timing.flops_per_s.map(|_| work.flops),
            compute_bound,
            hbm_kv_bytes: sim.memory.hbm_used_bytes(),
        };
        emit(t, sink, &rec)
    }
}

fn emit(t: &mut RunTotals, sink: &mut dyn RecordSink, r: &Record) -> Result<()> {
    t.decode_time_s += r.time_s;
    t.bound_s += r.bound_s;
    t.placement_bound_s += r.placement_bound_s;
    t.compute_bound_rows += u64::from(r.compute_bound);
    t.charges.add(&r.charges);
    if let Some(a) = r.charges.alpha() {
        match r.sublayer {
            Sublayer::Attn => {
                t.attn_alpha_sum += a;
                t.attn_rows += 1;
            }
            Sublayer::Mlp => {
                t.mlp_alpha_sum += a;
                t.mlp_rows += 1;
            }
            Sublayer::Step => {}
        }
    }
    sink.record(r)
}
