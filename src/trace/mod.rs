//! Skip traces (SPEC 5): for each decode step and layer, whether the layer is skipped, whether its
//! MLP is skipped, and which past positions attention skips.
//!
//! A trace is a stream of [`StepSkips`], produced in step order by a [`TraceSource`] (a
//! synthetic generator in [`generate`] or a file reader in [`text`]). The engine pulls steps into
//! a [`TraceWindow`] that holds the current step and a bounded look-ahead, so memory stays
//! bounded by the window, not by the run length.
//!
//! Not here: residency, bytes, time. A trace knows positions only.

pub mod binary;
pub mod generate;
pub mod scale;
pub mod shared;
pub mod stats;
pub mod text;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;

use anyhow::{bail, Context, Result};

use crate::scenario::{Scenario, SkipSource};
use crate::tokenset::TokenSet;

/// The skips of one layer at one step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerSkip {
    /// The whole layer is skipped: no weights, no KV reads, no new entry.
    pub layer: bool,
    /// Only the MLP sublayer is skipped.
    pub mlp: bool,
    /// Past positions (`< step`) not read by attention; capacity is the step.
    pub tokens: TokenSet,
    /// `tokens.count()`, kept by the producer so the engine can take the no-skip fast path.
    pub token_count: u64,
}

impl LayerSkip {
    /// Whether anything at all is skipped.
    pub fn any(&self) -> bool {
        self.layer || self.mlp || self.token_count > 0
    }
}

/// The skips of every layer at one decode step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepSkips {
    pub step: usize,
    pub layers: Vec<LayerSkip>,
}

impl StepSkips {
    /// Clears this buffer for step `step` with `layers` layers, reusing allocations.
    pub fn reset(&mut self, step: usize, layers: usize) {
        self.step = step;
        self.layers.resize_with(layers, LayerSkip::default);
        for l in &mut self.layers {
            l.layer = false;
            l.mlp = false;
            l.tokens.reset(step);
            l.token_count = 0;
        }
    }
}

/// Dimensions a trace is made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceDims {
    pub prefill: usize,
    pub decode: usize,
    pub layers: usize,
}

impl TraceDims {
    pub fn of(scenario: &Scenario) -> TraceDims {
        let s = &scenario.sizes;
        TraceDims {
            prefill: s.prefill,
            decode: s.decode,
            layers: s.layers,
        }
    }
}

impl std::fmt::Display for TraceDims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "prefill={} decode={} layers={}",
            self.prefill, self.decode, self.layers
        )
    }
}

/// A stream of steps `P..P+D`, in order.
pub trait TraceSource: Send {
    fn dims(&self) -> TraceDims;
    /// Fills `out` with the next step, every field of it: `out` is a recycled buffer holding an
    /// older step (or a default one), so a source resets what it does not write. Called exactly
    /// `decode` times.
    fn next_step(&mut self, out: &mut StepSkips) -> Result<()>;
    /// Where the trace comes from, when the source knows.
    fn provenance(&self) -> Option<String> {
        None
    }
    /// The next step as a shared buffer (what [`TraceWindow`] holds): by default
    /// [`TraceSource::next_step`] into `spare`, a buffer the caller no longer needs; a source
    /// whose steps are already shared ([`shared::SharedTrace`]) hands out its own.
    fn next_shared(&mut self, spare: Option<StepSkips>) -> Result<Arc<StepSkips>> {
        let mut buf = spare.unwrap_or_default();
        self.next_step(&mut buf)?;
        Ok(Arc::new(buf))
    }
}

/// Opens the trace a scenario names, read ahead on its own thread (see [`Prefetch`]).
pub fn open(scenario: &Scenario) -> Result<Box<dyn TraceSource>> {
    Ok(Box::new(Prefetch::new(open_direct(scenario)?, 8)))
}

/// Opens the trace a scenario names on the calling thread: a generator, or a file checked
/// against the scenario.
pub fn open_direct(scenario: &Scenario) -> Result<Box<dyn TraceSource>> {
    match scenario.file.skip.source {
        SkipSource::File => {
            let path = scenario
                .trace_path()
                .expect("validated: file source has a path");
            let reader = open_file(&path).with_context(|| {
                format!(
                    "field `skip.file` of scenario {}",
                    scenario
                        .path
                        .as_deref()
                        .map_or("<scenario>".into(), |p| p.display().to_string())
                )
            })?;
            let (want, got) = (TraceDims::of(scenario), reader.dims());
            if scenario.file.skip.scale {
                return Ok(Box::new(scale::ScaledSource::new(reader, want)?));
            }
            if want != got {
                bail!(
                    "{}: trace is for {got} but scenario {} has {want} (set `skip.scale = true` to replay it scaled)",
                    path.display(),
                    scenario.name
                );
            }
            Ok(reader)
        }
        _ => Ok(Box::new(generate::Generator::new(scenario))),
    }
}

/// How many past steps the engine's window keeps, for policies that look at the recent past
/// (per-position skip history). Bounded so memory stays independent of the run length.
pub const PAST_STEPS: usize = crate::scenario::WINDOW_PAST_STEPS as usize;

/// On-disk trace formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TraceFormat {
    Text,
    Binary,
}

impl TraceFormat {
    /// Binary for a `.kvtb` file name, text otherwise.
    pub fn for_path(path: &std::path::Path) -> TraceFormat {
        if path.extension().is_some_and(|e| e == "kvtb") {
            TraceFormat::Binary
        } else {
            TraceFormat::Text
        }
    }
}

/// Writes a whole trace to `path` (atomically) in `format` (default: by file name).
pub fn write_file(
    path: &std::path::Path,
    format: Option<TraceFormat>,
    source: &mut dyn TraceSource,
    provenance: &str,
) -> Result<()> {
    let format = format.unwrap_or_else(|| TraceFormat::for_path(path));
    crate::output::write_atomic(path, |w| match format {
        TraceFormat::Text => text::write_trace(w, source, provenance),
        TraceFormat::Binary => binary::write_trace(w, source, provenance),
    })
    .with_context(|| format!("cannot write trace {}", path.display()))
}

/// Opens a trace file, text or binary (told apart by the first bytes).
pub fn open_file(path: &std::path::Path) -> Result<Box<dyn TraceSource>> {
    if binary::is_binary(path)? {
        Ok(Box::new(binary::BinaryTraceReader::open(path)?))
    } else {
        Ok(Box::new(text::TextTraceReader::open(path)?))
    }
}

/// The current step, up to `lookahead` future steps and up to `past` past steps of a trace.
pub struct TraceWindow {
    source: Box<dyn TraceSource>,
    steps: VecDeque<Arc<StepSkips>>,
    spare: Vec<StepSkips>,
    lookahead: usize,
    past: usize,
    current: usize,
    next_to_read: usize,
    end: usize,
}

impl TraceWindow {
    pub fn new(source: Box<dyn TraceSource>, lookahead: usize) -> TraceWindow {
        TraceWindow::with_past(source, lookahead, 0)
    }

    /// A window that also keeps the `past` steps before the current one.
    pub fn with_past(source: Box<dyn TraceSource>, lookahead: usize, past: usize) -> TraceWindow {
        let d = source.dims();
        TraceWindow {
            source,
            steps: VecDeque::with_capacity(lookahead + past + 1),
            spare: Vec::new(),
            lookahead,
            past,
            current: d.prefill,
            next_to_read: d.prefill,
            end: d.prefill + d.decode,
        }
    }

    /// Makes `step` the current step: drops steps older than `past` before it and reads ahead
    /// as far as the look-ahead.
    pub fn advance_to(&mut self, step: usize) -> Result<()> {
        self.current = step;
        while self
            .steps
            .front()
            .is_some_and(|s| s.step + self.past < step)
        {
            let old = self.steps.pop_front().expect("front exists");
            // A step shared with other readers stays theirs; an own one is reused.
            if let Ok(own) = Arc::try_unwrap(old) {
                self.spare.push(own);
            }
        }
        let want_end = (step + self.lookahead + 1).min(self.end);
        while self.next_to_read < want_end {
            // Sources fill every field of the buffer (see `TraceSource::next_step`).
            let buf = self.source.next_shared(self.spare.pop())?;
            debug_assert_eq!(buf.step, self.next_to_read);
            self.steps.push_back(buf);
            self.next_to_read += 1;
        }
        Ok(())
    }

    /// The current step.
    pub fn current(&self) -> &StepSkips {
        self.get(self.current).expect("window advanced before use")
    }

    pub fn lookahead(&self) -> usize {
        self.lookahead
    }

    /// How many past steps the window keeps.
    pub fn past(&self) -> usize {
        self.past
    }

    /// First step after the run (`P + D`).
    pub fn end(&self) -> usize {
        self.end
    }

    /// Step `step` if the window holds it (from current - past up to current + lookahead).
    pub fn get(&self, step: usize) -> Option<&StepSkips> {
        let first = self.steps.front()?.step;
        step.checked_sub(first)
            .and_then(|i| self.steps.get(i))
            .map(|s| &**s)
    }
}

/// CPU time of every finished [`Prefetch`] worker of this process, in nanoseconds.
static WORKER_CPU_NS: AtomicU64 = AtomicU64::new(0);

/// CPU seconds spent so far by the trace threads of this process that have finished (a run's
/// threads finish before the run returns): `kvtier bench` tells generation from engine work
/// with it.
pub fn worker_cpu_s() -> f64 {
    WORKER_CPU_NS.load(Ordering::Relaxed) as f64 / 1e9
}

/// Runs a source on its own thread, `depth` steps ahead of the consumer, so that generating or
/// parsing a trace overlaps with the decode loop. The steps and their order are the source's own:
/// only the thread changes. Dropping it stops and joins the thread.
pub struct Prefetch {
    dims: TraceDims,
    filled: Option<mpsc::Receiver<Result<StepSkips>>>,
    recycle: mpsc::Sender<StepSkips>,
    worker: Option<thread::JoinHandle<()>>,
}

impl Prefetch {
    pub fn new(mut source: Box<dyn TraceSource>, depth: usize) -> Prefetch {
        let dims = source.dims();
        let (tx, filled) = mpsc::sync_channel::<Result<StepSkips>>(depth.max(1));
        let (recycle, spare) = mpsc::channel::<StepSkips>();
        let worker = thread::spawn(move || {
            for _ in 0..dims.decode {
                let mut buf = spare.try_recv().unwrap_or_default();
                let r = source.next_step(&mut buf).map(|()| buf);
                let failed = r.is_err();
                if tx.send(r).is_err() || failed {
                    break;
                }
            }
            let ns = (crate::bench::thread_cpu_s() * 1e9) as u64;
            WORKER_CPU_NS.fetch_add(ns, Ordering::Relaxed);
        });
        Prefetch {
            dims,
            filled: Some(filled),
            recycle,
            worker: Some(worker),
        }
    }
}

impl TraceSource for Prefetch {
    fn dims(&self) -> TraceDims {
        self.dims
    }

    fn next_step(&mut self, out: &mut StepSkips) -> Result<()> {
        let rx = self.filled.as_ref().expect("receiver lives until drop");
        let step = match rx.recv() {
            Ok(r) => r?,
            Err(_) => bail!("trace reader stopped before the last step"),
        };
        let old = std::mem::replace(out, step);
        let _ = self.recycle.send(old);
        Ok(())
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        // Closing the receiver makes the worker's next send fail, so it returns.
        self.filled.take();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}
