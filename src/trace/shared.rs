//! One trace, many readers. The pairs of a comparison run one scenario, hence one trace: a
//! [`SharedTrace`] produces it once, a chunk of steps at a time, and hands every reader the same
//! steps (shared, not copied). Readers go at their own pace within a window: a reader that would
//! go more than [`WINDOW_CHUNKS`] chunks past the slowest one waits for it, so memory is bounded
//! by the window, not by the run length. Whichever reader first needs a chunk produces it while
//! the others go on with the chunks they hold, so no core waits for a trace thread.
//!
//! Every reader must be driven by a thread of its own until it is dropped: a reader waiting for a
//! slower one that never runs would wait forever (so [`crate::compare`] runs one thread per
//! pair, not a fixed pool).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use anyhow::{bail, Result};

use super::{StepSkips, TraceDims, TraceSource};

/// Memory one chunk of steps may take (at least one step per chunk, at most 64).
const CHUNK_BYTES: usize = 2 << 20;
/// How many chunks past the slowest reader a reader may go.
pub const WINDOW_CHUNKS: usize = 4;

type Chunk = Arc<Vec<Arc<StepSkips>>>;

/// A trace produced once for a fixed number of readers.
pub struct SharedTrace {
    hub: Arc<Hub>,
    readers: usize,
}

struct Hub {
    dims: TraceDims,
    chunk_steps: usize,
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    /// The source; `None` while a reader produces a chunk from it.
    source: Option<Box<dyn TraceSource>>,
    /// Chunks `first..produced`.
    chunks: VecDeque<Chunk>,
    first: usize,
    produced: usize,
    /// The chunk each reader is on; `usize::MAX` once it is dropped.
    at: Vec<usize>,
    /// Buffers of dropped chunks, for the next ones.
    spare: Vec<StepSkips>,
    error: Option<String>,
}

impl State {
    fn slowest(&self) -> usize {
        self.at.iter().copied().min().unwrap_or(usize::MAX)
    }

    /// Drops the chunks every reader has left, keeping their buffers.
    fn trim(&mut self, chunk_steps: usize) {
        let slowest = self.slowest().min(self.produced);
        while self.first < slowest {
            let chunk = self.chunks.pop_front().expect("chunks first..produced");
            self.first += 1;
            if let Ok(steps) = Arc::try_unwrap(chunk) {
                for s in steps {
                    if self.spare.len() < 2 * chunk_steps {
                        self.spare.extend(Arc::try_unwrap(s).ok());
                    }
                }
            }
        }
    }
}

impl SharedTrace {
    /// A trace from `source` for `readers` readers (take each with [`SharedTrace::reader`]).
    pub fn new(source: Box<dyn TraceSource>, readers: usize, step_bytes: usize) -> SharedTrace {
        let dims = source.dims();
        let chunk_steps = (CHUNK_BYTES / step_bytes.max(1)).clamp(1, 64);
        SharedTrace {
            hub: Arc::new(Hub {
                dims,
                chunk_steps,
                state: Mutex::new(State {
                    source: Some(source),
                    chunks: VecDeque::new(),
                    first: 0,
                    produced: 0,
                    at: vec![0; readers],
                    spare: Vec::new(),
                    error: None,
                }),
                changed: Condvar::new(),
            }),
            readers,
        }
    }

    /// Reader `i` (`i < readers`; each taken once). A reader never taken holds the others
    /// back: drop the `SharedTrace` only after taking them all, or drop the unused ones.
    pub fn reader(&self, i: usize) -> SharedReader {
        assert!(i < self.readers, "reader {i} of {}", self.readers);
        SharedReader {
            hub: self.hub.clone(),
            id: i,
            chunk: None,
            next_chunk: 0,
            in_chunk: 0,
        }
    }
}

/// A trace source handed to a job.
pub type Source = Box<dyn TraceSource>;

/// How many runs share one trace at most (one thread each); more run in groups of this size.
pub const GROUP: usize = 64;

/// Runs `run(job, source)` for every job, all on one trace of `scenario`: the jobs of a group of
/// up to [`GROUP`] run on a thread each, reading one [`SharedTrace`] (a job that does not read
/// its source must drop it at once). A lone job, or a trace that does not open, gets `None`:
/// the job then opens its own (and reports the trace's error). Results come in job order.
pub fn run_all<J: Sync, T: Send>(
    scenario: &crate::scenario::Scenario,
    jobs: &[J],
    run: &(dyn Fn(&J, Option<Source>) -> T + Sync),
) -> Vec<T> {
    let mut out = Vec::with_capacity(jobs.len());
    for group in jobs.chunks(GROUP) {
        match super::open_direct(scenario) {
            Ok(source) if group.len() > 1 => {
                let s = &scenario.sizes;
                let step_bytes = s.layers * s.positions().div_ceil(64) * 8;
                let shared = SharedTrace::new(source, group.len(), step_bytes);
                let readers: Vec<_> = (0..group.len()).map(|i| shared.reader(i)).collect();
                std::thread::scope(|sc| {
                    let threads: Vec<_> = group
                        .iter()
                        .zip(readers)
                        .map(|(job, r)| sc.spawn(move || run(job, Some(Box::new(r)))))
                        .collect();
                    for t in threads {
                        out.push(t.join().expect("a job catches its own panics"));
                    }
                });
            }
            _ => out.extend(group.iter().map(|job| run(job, None))),
        }
    }
    out
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held left the state whole (it only moves Arcs).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn chunks_in_all(&self) -> usize {
        self.dims.decode.div_ceil(self.chunk_steps)
    }
}

/// One reader of a [`SharedTrace`]: a [`TraceSource`] of the whole trace.
pub struct SharedReader {
    hub: Arc<Hub>,
    id: usize,
    chunk: Option<Chunk>,
    next_chunk: usize,
    in_chunk: usize,
}

impl SharedReader {
    /// Moves this reader to chunk `want`, producing it if it is the first to need it, waiting
    /// while it would be too far ahead of the slowest reader.
    fn fetch(&mut self, want: usize) -> Result<()> {
        let hub = self.hub.clone();
        let mut st = hub.lock();
        self.chunk = None;
        st.at[self.id] = want;
        st.trim(hub.chunk_steps);
        hub.changed.notify_all();
        loop {
            if let Some(e) = &st.error {
                bail!("{e}");
            }
            if want < st.produced {
                self.chunk = Some(st.chunks[want - st.first].clone());
                self.in_chunk = 0;
                return Ok(());
            }
            if st.source.is_some() && want < st.slowest().saturating_add(WINDOW_CHUNKS) {
                let mut source = st.source.take().expect("checked");
                let first_step = want * hub.chunk_steps;
                let n = hub.chunk_steps.min(hub.dims.decode - first_step);
                let mut bufs: Vec<StepSkips> =
                    (0..n).map(|_| st.spare.pop().unwrap_or_default()).collect();
                drop(st);
                // A panic in the source must not leave the others waiting for its chunk.
                let made = crate::no_panic(|| {
                    for b in &mut bufs {
                        source.next_step(b)?;
                    }
                    Ok(())
                });
                st = hub.lock();
                st.source = Some(source);
                match made {
                    Ok(()) => {
                        st.chunks
                            .push_back(Arc::new(bufs.into_iter().map(Arc::new).collect()));
                        st.produced += 1;
                    }
                    Err(e) => st.error = Some(format!("{e:#}")),
                }
                hub.changed.notify_all();
                continue;
            }
            st = hub.changed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl TraceSource for SharedReader {
    fn dims(&self) -> TraceDims {
        self.hub.dims
    }

    fn next_shared(&mut self, _spare: Option<StepSkips>) -> Result<Arc<StepSkips>> {
        let exhausted = self.chunk.as_ref().is_none_or(|c| self.in_chunk == c.len());
        if exhausted {
            if self.next_chunk >= self.hub.chunks_in_all() {
                bail!("trace read past its last step");
            }
            self.fetch(self.next_chunk)?;
            self.next_chunk += 1;
        }
        let chunk = self.chunk.as_ref().expect("fetched");
        let step = chunk[self.in_chunk].clone();
        self.in_chunk += 1;
        Ok(step)
    }

    fn next_step(&mut self, out: &mut StepSkips) -> Result<()> {
        let step = self.next_shared(None)?;
        out.clone_from(&step);
        Ok(())
    }
}

impl Drop for SharedReader {
    fn drop(&mut self) {
        self.chunk = None;
        let mut st = self.hub.lock();
        st.at[self.id] = usize::MAX;
        st.trim(self.hub.chunk_steps);
        self.hub.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    fn scenario() -> Scenario {
        Scenario::from_toml(
            "name = \"shared\"\nseed = 5\n\
             [model]\nlayers = 3\nparams = 1e6\ndtype_bytes = 2\nkv_bytes = \"1 KB\"\n\
             [workload]\nprefill = 500\ndecode = 300\n\
             [hbm]\ncapacity = 100\nbandwidth = 1000\n\
             [ext]\nlink_bandwidth = 100\ninternal_bandwidth = 200\n\
             [skip]\nsource = \"heavy_hitter\"\nrate = 0.4\nmlp_skip_rate = 0.2\n",
            None,
        )
        .unwrap()
    }

    fn direct(sc: &Scenario) -> Vec<StepSkips> {
        let mut src = super::super::open_direct(sc).unwrap();
        super::super::tests::steps(src.as_mut(), sc.sizes.decode)
    }

    #[test]
    fn every_reader_gets_the_whole_trace_at_its_own_pace() {
        // Small chunks (one step of 3 layers x 13 words is 312 bytes: pass 100 KB per step so
        // that a chunk holds 20 steps) and readers that stop at different points.
        let sc = scenario();
        let want = direct(&sc);
        let shared = SharedTrace::new(super::super::open_direct(&sc).unwrap(), 4, 100_000);
        assert_eq!(shared.hub.chunk_steps, 20);
        let got: Vec<Vec<StepSkips>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|i| {
                    let mut r = shared.reader(i);
                    s.spawn(move || {
                        // Reader 3 leaves after 50 steps (a pair that failed).
                        let n = if i == 3 { 50 } else { 300 };
                        (0..n)
                            .map(|k| {
                                if i == 1 && k % 7 == 0 {
                                    std::thread::yield_now();
                                }
                                let mut b = StepSkips::default();
                                r.next_step(&mut b).unwrap();
                                b
                            })
                            .collect()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (i, g) in got.iter().enumerate() {
            assert_eq!(g[..], want[..g.len()], "reader {i}");
        }
        let st = shared.hub.lock();
        assert_eq!(st.produced, 15, "300 steps in chunks of 20, produced once");
        assert!(
            st.chunks.is_empty(),
            "every chunk dropped once all readers left"
        );
    }

    /// A source that fails at one step.
    struct Failing(TraceDims, usize);
    impl TraceSource for Failing {
        fn dims(&self) -> TraceDims {
            self.0
        }
        fn next_step(&mut self, out: &mut StepSkips) -> Result<()> {
            if self.1 == 0 {
                bail!("bad bytes at step 7");
            }
            self.1 -= 1;
            out.reset(0, 1);
            Ok(())
        }
    }

    #[test]
    fn a_source_error_reaches_every_reader() {
        let dims = TraceDims {
            prefill: 0,
            decode: 100,
            layers: 1,
        };
        let shared = SharedTrace::new(Box::new(Failing(dims, 7)), 2, 1 << 20);
        let errs: Vec<String> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..2)
                .map(|i| {
                    let mut r = shared.reader(i);
                    s.spawn(move || loop {
                        if let Err(e) = r.next_shared(None) {
                            return e.to_string();
                        }
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(errs, vec!["bad bytes at step 7".to_string(); 2]);
    }
}
