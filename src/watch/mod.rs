//! `kvtier watch`: run a comparison, then re-run the pairs a saved file affects, and print the
//! table again with each row's change against the previous good table.
//!
//! Files are watched through their folders (editors that save by renaming replace the inode),
//! with notify and its full debouncer; access events are ignored and every change is confirmed
//! by a content hash, so repeated or spurious events cause no refresh. A change to a placement
//! script re-runs its rows, a migration script its rows, the scenario or its trace every row. A
//! run still in flight when a newer change lands is cancelled (its sink stops the engine at the
//! next sublayer) and the union of the pending work starts again.
//!
//! Not here: the comparison's numbers (each pair is an ordinary run, [`crate::engine::run`]);
//! how a refresh is shown ([`view`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{new_debouncer, new_debouncer_opt, DebounceEventResult, NoCache};
use rayon::prelude::*;

use crate::engine::{self, Cancelled, Record, RecordSink};
use crate::policy::{self, Kind, PolicyRef};
use crate::results::Summary;
use crate::scenario::Scenario;

mod view;
use view::{emit, time_of_day};
pub use view::{render, Refresh, RowStatus, WatchRow};

/// What `kvtier watch` was asked to do.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    pub scenario: PathBuf,
    /// Placement specs: native names, scripts or folders of scripts.
    pub placements: Vec<String>,
    pub migrations: Vec<String>,
    /// `--param key=value` overrides.
    pub params: Vec<String>,
    /// Poll the files instead of using the OS's events (network and container mounts).
    pub poll: bool,
    /// One JSON object per refresh instead of a table.
    pub json_lines: bool,
    /// How long events are collected into one refresh.
    pub debounce: Duration,
}

/// Drops records, and stops the run as soon as `cancel` is set.
struct CancelSink<'a>(&'a AtomicBool);

impl RecordSink for CancelSink<'_> {
    fn record(&mut self, _: &Record) -> Result<()> {
        if self.0.load(Ordering::Relaxed) {
            return Err(Cancelled.into());
        }
        Ok(())
    }
}

/// A policy source: one file (or native name) that rows depend on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Source {
    kind: KindKey,
    policy: PolicyKey,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum KindKey {
    Placement,
    Migration,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum PolicyKey {
    Native(String),
    Script(PathBuf),
    /// A built-in reference script, by its project path: never changes, never watched.
    Builtin(&'static str),
    /// A script given as text: never changes, never watched.
    Inline(Arc<policy::InlineScript>),
}

impl PolicyKey {
    fn of(r: &PolicyRef) -> PolicyKey {
        match r {
            PolicyRef::Native(n) => PolicyKey::Native(n.clone()),
            PolicyRef::Script(p) => PolicyKey::Script(absolute(p)),
            PolicyRef::Builtin(b) => PolicyKey::Builtin(b.path),
            PolicyRef::Inline(i) => PolicyKey::Inline(i.clone()),
        }
    }
    fn to_ref(&self) -> PolicyRef {
        match self {
            PolicyKey::Native(n) => PolicyRef::Native(n.clone()),
            PolicyKey::Script(p) => PolicyRef::Script(p.clone()),
            PolicyKey::Builtin(path) => PolicyRef::Builtin(
                policy::builtin::BUILTIN
                    .iter()
                    .find(|b| b.path == *path)
                    .expect("a key is made from a built-in script"),
            ),
            PolicyKey::Inline(i) => PolicyRef::Inline(i.clone()),
        }
    }
    fn label(&self) -> String {
        self.to_ref().label()
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// A pair of the table: placement and migration.
type PairKey = (PolicyKey, PolicyKey);
/// Outcomes of a set of runs, one per pair.
type Outcomes = Vec<(PairKey, Result<Summary, String>)>;

#[derive(Clone, Debug, Default)]
struct RowState {
    /// Last good summary, and the one before it (for the change column).
    good: Option<Summary>,
    before: Option<Summary>,
    error: Option<String>,
    gone: bool,
}

/// A content hash per path (`None` when the file is missing).
fn hash_file(p: &Path) -> Option<u64> {
    use std::io::Read;
    let mut f = crate::input::open_regular(p, "file").ok()?;
    let mut h = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut len = 0u64;
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                h.update(&buf[..n]);
                len += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(h.finalize() as u64 | (len << 32))
}

/// Names editors write beside the real file: swap files, backups, vim's write test, locks.
fn is_editor_noise(p: &Path) -> bool {
    let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
        return true;
    };
    name.starts_with('.')
        || name.starts_with('#')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".tmp")
        || name == "4913"
}

/// Work the runner has been asked to do.
#[derive(Default, Clone, Debug)]
struct Work {
    all: bool,
    sources: BTreeSet<Source>,
    changed: BTreeSet<PathBuf>,
}

impl Work {
    fn is_empty(&self) -> bool {
        !self.all && self.sources.is_empty()
    }
    fn merge(&mut self, o: Work) {
        self.all |= o.all;
        self.sources.extend(o.sources);
        self.changed.extend(o.changed);
    }
}

/// The live comparison.
struct State {
    opts: WatchOptions,
    scenario_path: PathBuf,
    scenario: Arc<Scenario>,
    scenario_error: Option<String>,
    trace_path: Option<PathBuf>,
    /// Folders named as specs: new scripts there add rows.
    dirs: Vec<(KindKey, PathBuf)>,
    placements: Vec<PolicyKey>,
    migrations: Vec<PolicyKey>,
    rows: BTreeMap<(PolicyKey, PolicyKey), RowState>,
    hashes: HashMap<PathBuf, Option<u64>>,
    refresh: u64,
    /// The run's ideal and placement bounds (the same for every pair).
    bounds: Option<(f64, f64)>,
    /// Rows run for the refresh being built: only they can show a change.
    touched: BTreeSet<(PolicyKey, PolicyKey)>,
}

fn expand_specs(
    specs: &[String],
    kind: Kind,
    default: &str,
) -> Result<(Vec<PolicyKey>, Vec<PathBuf>)> {
    let mut keys = Vec::new();
    for r in policy::expand_all(specs, &[default], kind)? {
        let k = PolicyKey::of(&r);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    // Folders named as specs: scripts created there later add rows.
    let default = [default.to_string()];
    let dirs = if specs.is_empty() {
        &default[..]
    } else {
        specs
    }
    .iter()
    .map(Path::new)
    .filter(|p| p.is_dir())
    .map(absolute)
    .collect();
    Ok((keys, dirs))
}

impl State {
    fn new(opts: WatchOptions) -> Result<State> {
        let scenario_path = absolute(&opts.scenario);
        let scenario = Scenario::load(&scenario_path)?;
        let (placements, pdirs) =
            expand_specs(&opts.placements, Kind::Placement, "policies/placement")?;
        let (migrations, mdirs) =
            expand_specs(&opts.migrations, Kind::Migration, "policies/migration")?;
        policy::params(&scenario, &opts.params)?;
        let dirs = pdirs
            .into_iter()
            .map(|d| (KindKey::Placement, d))
            .chain(mdirs.into_iter().map(|d| (KindKey::Migration, d)))
            .collect();
        let mut s = State {
            trace_path: scenario.trace_path().map(|p| absolute(&p)),
            scenario: Arc::new(scenario),
            scenario_error: None,
            scenario_path,
            opts,
            dirs,
            placements,
            migrations,
            rows: BTreeMap::new(),
            hashes: HashMap::new(),
            refresh: 0,
            bounds: None,
            touched: BTreeSet::new(),
        };
        for p in s.tracked_files() {
            let h = hash_file(&p);
            s.hashes.insert(p, h);
        }
        Ok(s)
    }

    fn tracked_files(&self) -> Vec<PathBuf> {
        let mut v = vec![self.scenario_path.clone()];
        v.extend(self.trace_path.clone());
        for k in self.placements.iter().chain(&self.migrations) {
            if let PolicyKey::Script(p) = k {
                v.push(p.clone());
            }
        }
        v
    }

    /// Folders to watch: those of every tracked file and every folder spec.
    fn folders(&self) -> BTreeSet<PathBuf> {
        let mut f: BTreeSet<PathBuf> = self
            .tracked_files()
            .iter()
            .filter_map(|p| p.parent().map(Path::to_path_buf))
            .collect();
        f.extend(self.dirs.iter().map(|(_, d)| d.clone()));
        f
    }

    fn pairs(&self, w: &Work) -> Vec<(PolicyKey, PolicyKey)> {
        let mut out = Vec::new();
        for p in &self.placements {
            for m in &self.migrations {
                let hit = w.all
                    || w.sources.contains(&Source {
                        kind: KindKey::Placement,
                        policy: p.clone(),
                    })
                    || w.sources.contains(&Source {
                        kind: KindKey::Migration,
                        policy: m.clone(),
                    });
                if hit {
                    out.push((p.clone(), m.clone()));
                }
            }
        }
        out
    }

    fn is_gone(&self, k: &PolicyKey) -> bool {
        matches!(k, PolicyKey::Script(p) if self.hashes.get(p).is_some_and(Option::is_none))
    }

    /// Turns changed paths into work; updates hashes, the scenario, and the script lists.
    ///
    /// Event kinds are not trusted (a save by rename followed by a delete within the debounce
    /// window can arrive as events that say nothing of the delete): after every batch, every
    /// watched file's existence and content digest is checked again, beside the paths named.
    fn absorb(&mut self, mut paths: BTreeSet<PathBuf>) -> Work {
        paths.extend(self.hashes.keys().cloned());
        let mut w = Work::default();
        for p in paths {
            if is_editor_noise(&p) {
                continue;
            }
            let in_dir = self
                .dirs
                .iter()
                .find(|(_, d)| p.parent() == Some(d.as_path()))
                .map(|(k, _)| *k);
            let known = self.hashes.contains_key(&p);
            let new_script = in_dir.is_some() && p.extension().is_some_and(|e| e == "rhai");
            if !known && !new_script {
                continue;
            }
            let h = hash_file(&p);
            if known && self.hashes.get(&p) == Some(&h) {
                continue; // repeated event, same content
            }
            if !known && h.is_none() {
                continue;
            }
            self.hashes.insert(p.clone(), h);
            w.changed.insert(p.clone());
            if p == self.scenario_path || Some(&p) == self.trace_path.as_ref() {
                w.all = true;
                continue;
            }
            let key = PolicyKey::Script(p.clone());
            let kind = if self.placements.contains(&key) {
                KindKey::Placement
            } else if self.migrations.contains(&key) {
                KindKey::Migration
            } else {
                let k = in_dir.expect("unknown paths are skipped above");
                match k {
                    KindKey::Placement => self.placements.push(key.clone()),
                    KindKey::Migration => self.migrations.push(key.clone()),
                }
                k
            };
            w.sources.insert(Source { kind, policy: key });
        }
        if w.all {
            self.reload_scenario();
            // A scenario that fails to load changes nothing: the refresh only shows why.
            w.all = self.scenario_error.is_none();
        }
        w
    }

    fn reload_scenario(&mut self) {
        match Scenario::load(&self.scenario_path)
            .and_then(|s| policy::params(&s, &self.opts.params).map(|_| s))
        {
            Ok(s) => {
                let trace = s.trace_path().map(|p| absolute(&p));
                if trace != self.trace_path {
                    if let Some(t) = &trace {
                        let h = hash_file(t);
                        self.hashes.insert(t.clone(), h);
                    }
                    self.trace_path = trace;
                }
                self.scenario = Arc::new(s);
                self.scenario_error = None;
            }
            Err(e) => {
                self.scenario_error = Some(format!("{e:#} (still running the previous scenario)"))
            }
        }
    }

    /// Records the outcome of runs.
    fn apply(&mut self, results: Outcomes) {
        self.touched = results.iter().map(|(k, _)| k.clone()).collect();
        for (key, r) in results {
            let gone = self.is_gone(&key.0) || self.is_gone(&key.1);
            let row = self.rows.entry(key).or_default();
            row.gone = gone;
            match r {
                Ok(s) => {
                    if let Some(g) = row.good.take() {
                        row.before = Some(g);
                    }
                    row.good = Some(s);
                    row.error = None;
                }
                Err(e) => row.error = (!gone).then_some(e),
            }
        }
        if let Some(b) = self.rows.values().find_map(|r| {
            r.good
                .as_ref()
                .map(|s| (s.ideal_bound_s, s.placement_bound_s))
        }) {
            self.bounds = Some(b);
        }
    }

    fn snapshot(&mut self, w: &Work, rerun: usize, run_s: f64) -> Refresh {
        self.refresh += 1;
        let pct = |new: Option<f64>, old: Option<f64>| match (new, old) {
            (Some(n), Some(o)) if o != 0.0 => Some((n - o) / o * 100.0),
            _ => None,
        };
        let mut rows: Vec<WatchRow> = Vec::new();
        for p in &self.placements {
            for m in &self.migrations {
                let Some(r) = self.rows.get(&(p.clone(), m.clone())) else {
                    continue;
                };
                let status = if r.gone {
                    RowStatus::Gone
                } else if r.error.is_some() {
                    if r.good.is_some() {
                        RowStatus::Stale
                    } else {
                        RowStatus::Error
                    }
                } else {
                    RowStatus::Ok
                };
                let g = r.good.as_ref();
                // Rows not run for this refresh are as in the previous table: no change to show.
                let fresh =
                    self.touched.contains(&(p.clone(), m.clone())) && status == RowStatus::Ok;
                let b = if fresh { r.before.as_ref() } else { None };
                rows.push(WatchRow {
                    placement: p.label(),
                    migration: m.label(),
                    status,
                    decode_time_s: g.map(|s| s.decode_time_s),
                    alpha_attn: g.and_then(|s| s.alpha_attn),
                    alpha_mlp: g.and_then(|s| s.alpha_mlp),
                    x_ideal: g.map(|s| s.x_ideal),
                    x_placement: g.map(|s| s.x_placement),
                    moved_to_hbm_bytes: g.map(|s| s.moved_to_hbm_bytes),
                    moved_to_ext_bytes: g.map(|s| s.moved_to_ext_bytes),
                    decode_time_change_pct: pct(
                        g.map(|s| s.decode_time_s),
                        b.map(|s| s.decode_time_s),
                    ),
                    alpha_attn_change_pct: pct(
                        g.and_then(|s| s.alpha_attn),
                        b.and_then(|s| s.alpha_attn),
                    ),
                    error: r.error.clone(),
                });
            }
        }
        rows.sort_by(|a, b| {
            let t = |r: &WatchRow| {
                if r.status == RowStatus::Gone {
                    f64::INFINITY
                } else {
                    r.decode_time_s.unwrap_or(f64::INFINITY)
                }
            };
            t(a).total_cmp(&t(b))
                .then_with(|| (&a.placement, &a.migration).cmp(&(&b.placement, &b.migration)))
        });
        Refresh {
            refresh: self.refresh,
            time: time_of_day(),
            changed: w.changed.iter().map(|p| display_path(p)).collect(),
            rerun,
            run_s,
            scenario: self.scenario.name.clone(),
            scenario_error: self.scenario_error.clone(),
            ideal_bound_s: self.bounds.map(|b| b.0),
            placement_bound_s: self.bounds.map(|b| b.1),
            rows,
        }
    }
}

fn display_path(p: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|d| p.strip_prefix(d).ok().map(|r| r.display().to_string()))
        .unwrap_or_else(|| p.display().to_string())
}

/// Runs `pairs` on the rayon pool; a set `cancel` stops them.
fn run_pairs(
    scenario: &Scenario,
    pairs: &[(PolicyKey, PolicyKey)],
    params: &[String],
    cancel: &Arc<AtomicBool>,
    done: &(dyn Fn() + Sync),
) -> Option<Outcomes> {
    let params = match policy::params(scenario, params) {
        Ok(p) => p,
        Err(e) => {
            return Some(
                pairs
                    .iter()
                    .map(|k| (k.clone(), Err(format!("{e:#}"))))
                    .collect(),
            )
        }
    };
    let out: Vec<_> = pairs
        .par_iter()
        .map(|(p, m)| {
            let run = || -> Result<Summary> {
                if cancel.load(Ordering::Relaxed) {
                    return Err(Cancelled.into());
                }
                // Scripts see `cancel` too: a superseded run stops inside a hook call.
                let mut pol = policy::build_for(
                    scenario,
                    &p.to_ref(),
                    &m.to_ref(),
                    params.clone(),
                    Some(cancel.clone()),
                )?;
                let totals = engine::run(scenario, pol.as_mut(), &mut CancelSink(cancel))?;
                Ok(Summary::new(scenario, pol.name(), &totals))
            };
            let r = crate::no_panic(run);
            done();
            let cancelled = r
                .as_ref()
                .err()
                .is_some_and(|e| e.downcast_ref::<Cancelled>().is_some());
            (
                (p.clone(), m.clone()),
                r.map_err(|e| format!("{e:#}")),
                cancelled,
            )
        })
        .collect();
    if out.iter().any(|(_, _, c)| *c) {
        return None;
    }
    Some(out.into_iter().map(|(k, r, _)| (k, r)).collect())
}

enum Msg {
    Events(BTreeSet<PathBuf>),
    WatchError(String),
    Done(u64, Option<Outcomes>, f64),
}

/// Runs the watch loop until `stop` is set; writes refreshes to `out`.
pub fn watch(opts: WatchOptions, out: &mut dyn Write, stop: Arc<AtomicBool>) -> Result<()> {
    let json = opts.json_lines;
    let tty = !json && std::io::stdout().is_terminal();
    let mut state = State::new(opts.clone())?;
    let (tx, rx) = mpsc::channel::<Msg>();

    // File events, debounced, forwarded as sets of paths (access events dropped).
    let etx = tx.clone();
    let handler = move |res: DebounceEventResult| {
        let msg = match res {
            Ok(events) => {
                let paths: BTreeSet<PathBuf> = events
                    .into_iter()
                    .filter(|e| !matches!(e.event.kind, EventKind::Access(_)))
                    .flat_map(|e| e.event.paths)
                    .collect();
                if paths.is_empty() {
                    return;
                }
                Msg::Events(paths)
            }
            Err(errs) => Msg::WatchError(
                errs.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        };
        let _ = etx.send(msg);
    };
    enum AnyDebouncer {
        Native(
            notify_debouncer_full::Debouncer<
                notify::RecommendedWatcher,
                notify_debouncer_full::RecommendedCache,
            >,
        ),
        Poll(notify_debouncer_full::Debouncer<notify::PollWatcher, NoCache>),
    }
    let mut debouncer = if opts.poll {
        let cfg = notify::Config::default()
            .with_poll_interval(Duration::from_millis(200))
            .with_compare_contents(true);
        AnyDebouncer::Poll(
            new_debouncer_opt(opts.debounce, None, handler, NoCache, cfg)
                .map_err(|e| anyhow!("cannot poll files: {e}"))?,
        )
    } else {
        AnyDebouncer::Native(
            new_debouncer(opts.debounce, None, handler)
                .map_err(|e| anyhow!("cannot watch files: {e}"))?,
        )
    };
    let mut watched: BTreeSet<PathBuf> = BTreeSet::new();
    let mut watch_new = |state: &State, d: &mut AnyDebouncer| -> Result<()> {
        for f in state.folders() {
            if watched.insert(f.clone()) {
                let r = match d {
                    AnyDebouncer::Native(x) => x.watch(&f, RecursiveMode::NonRecursive),
                    AnyDebouncer::Poll(x) => x.watch(&f, RecursiveMode::NonRecursive),
                };
                r.map_err(|e| anyhow!("cannot watch {}: {e}", f.display()))?;
            }
        }
        Ok(())
    };
    watch_new(&state, &mut debouncer)?;

    // The runner: one job at a time on its own thread; `cancel` stops the job in flight.
    let mut job: Option<(u64, Arc<AtomicBool>, thread::JoinHandle<()>)> = None;
    let mut job_id = 0u64;
    let mut pending = Work {
        all: true,
        ..Work::default()
    };
    let mut in_flight = Work::default();
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if job.is_none() && !pending.is_empty() {
            in_flight = std::mem::take(&mut pending);
            let pairs = state.pairs(&in_flight);
            let scenario = state.scenario.clone();
            let params = state.opts.params.clone();
            let cancel = Arc::new(AtomicBool::new(false));
            let (c2, tx2) = (cancel.clone(), tx.clone());
            job_id += 1;
            let id = job_id;
            // The first table runs every pair: a progress bar on stderr meanwhile (terminals
            // only, never with --json-lines).
            let bar =
                (id == 1 && !json).then(|| crate::output::Progress::new(pairs.len(), "pairs"));
            let handle = thread::spawn(move || {
                let start = Instant::now();
                let tick = || {
                    if let Some(b) = &bar {
                        b.tick();
                    }
                };
                let r = run_pairs(&scenario, &pairs, &params, &c2, &tick);
                if let Some(b) = bar {
                    b.finish();
                }
                let _ = tx2.send(Msg::Done(id, r, start.elapsed().as_secs_f64()));
            });
            job = Some((id, cancel, handle));
        }
        let msg = match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(m) => m,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        match msg {
            Msg::Events(paths) => {
                let w = state.absorb(paths);
                if w.changed.is_empty() {
                    continue;
                }
                if w.is_empty() {
                    // A file changed but no pair depends on it (e.g. scenario failed to load).
                    state.touched.clear();
                    let r = state.snapshot(&w, 0, 0.0);
                    emit(out, &r, json, tty)?;
                    continue;
                }
                watch_new(&state, &mut debouncer)?;
                pending.merge(w);
                if let Some((_, cancel, _)) = &job {
                    cancel.store(true, Ordering::Relaxed);
                }
            }
            Msg::WatchError(e) => {
                if json {
                    writeln!(out, "{}", serde_json::json!({ "watch_error": e }))?;
                } else {
                    writeln!(out, "watch error: {e}")?;
                }
                out.flush()?;
            }
            Msg::Done(id, results, run_s) => {
                let Some((jid, _, handle)) = job.take() else {
                    continue;
                };
                let _ = handle.join();
                debug_assert_eq!(id, jid);
                match results {
                    None => {
                        // Cancelled: redo its work with whatever came since.
                        let redo = std::mem::take(&mut in_flight);
                        pending.merge(redo);
                    }
                    Some(results) => {
                        let n = results.len();
                        state.apply(results);
                        let w = std::mem::take(&mut in_flight);
                        let r = state.snapshot(&w, n, run_s);
                        emit(out, &r, json, tty)?;
                    }
                }
            }
        }
    }
    if let Some((_, cancel, handle)) = job.take() {
        cancel.store(true, Ordering::Relaxed);
        let _ = handle.join();
    }
    match debouncer {
        AnyDebouncer::Native(d) => d.stop(),
        AnyDebouncer::Poll(d) => d.stop(),
    }
    Ok(())
}
