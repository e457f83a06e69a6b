//! Running a sweep: every (point, pair) run on the rayon pool, deterministic shards of the run
//! list, self-describing result files, merging them, and the sweep table.
//!
//! Runs are numbered `run = point * pairs + pair` (points in [`crate::sweep::expand`] order,
//! pairs placement-major). Shard `I/N` holds the runs with `run % N == I - 1`: a fixed
//! round-robin, so neighbouring points (often of similar cost) spread over the shards. Rows are
//! kept in run order whatever the thread count or the order runs finish in; a study may sort
//! them for display, with the run number breaking ties.
//!
//! A result file ([`SweepResult`], JSON) carries the sweep's definition, a digest of the base
//! scenario, the scripts and the definition, the number of runs and a digest of the run list,
//! the shard, and its rows. [`merge`] accepts files only when those agree and every run is
//! there exactly once; the merged result is the one the unsharded sweep gives, so both render
//! byte for byte alike.
//!
//! Not here: making points ([`crate::sweep`]), study files ([`crate::study`]), one run
//! ([`crate::simulate`]).

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::compare::Outcome;
use crate::policy::{self, PolicyRef};
use crate::results::Summary;
use crate::sweep::{value_text, Point, Vary};
pub use crate::sweep_view::{
    charts, check_columns, column_names, failures, render, result_file, DEFAULT_COLUMNS,
    PLOT_METRICS,
};
use crate::trace::TraceSource;

/// The format tag of result files.
pub const RESULT_FORMAT: &str = "kvtier-sweep 1";

/// What a sweep is: everything needed to label and render its rows, and to tell two sweeps
/// apart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepDef {
    /// A study's title; `None` for a command-line sweep.
    pub title: Option<String>,
    /// The base scenario as given.
    pub base: String,
    pub vary: Vec<Vary>,
    /// Placement labels, in order.
    pub placements: Vec<String>,
    /// Migration labels, in order.
    pub migrations: Vec<String>,
    /// Pairs run after the placements x migrations (the baselines), as labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_pairs: Vec<(String, String)>,
    /// `--param key=value` overrides, applied to every run.
    pub params: Vec<String>,
    /// Columns shown in tables and CSV (JSON has every field).
    pub columns: Vec<String>,
    /// Display order: a column, ascending (`-column`: descending); `None`: run order.
    pub sort: Option<String>,
    /// Tables and markdown show one table per point (headed by its values) instead of one table
    /// with the varied keys as leading columns; CSV and JSON stay one flat table.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub table_per_point: bool,
}

impl SweepDef {
    /// Checks what rendering and labelling rely on (a result file may have been edited).
    pub fn check(&self) -> Result<()> {
        check_columns(&self.columns, self.sort.as_deref())?;
        if self.columns.is_empty() {
            bail!("no columns");
        }
        if self.placements.is_empty() || self.migrations.is_empty() {
            bail!("a sweep needs at least one placement and one migration");
        }
        for v in &self.vary {
            if v.values.is_empty() {
                bail!("--vary {}: no values", v.key);
            }
            v.check()?;
        }
        Ok(())
    }

    pub fn pairs(&self) -> usize {
        self.placements.len() * self.migrations.len() + self.extra_pairs.len()
    }

    pub fn points(&self) -> usize {
        self.vary.iter().map(|v| v.values.len()).product()
    }

    pub fn runs(&self) -> usize {
        self.points() * self.pairs()
    }

    /// The varied keys, linked ones after their leader: the leading columns of every row.
    pub fn keys(&self) -> Vec<String> {
        self.vary
            .iter()
            .flat_map(|v| v.keys().map(str::to_string))
            .collect()
    }

    /// The values of point `i` (in [`Self::keys`] order), by the same mixed radix as
    /// [`crate::sweep::expand`].
    pub fn point_values(&self, i: usize) -> Vec<toml::Value> {
        let mut rest = i;
        let mut picks = vec![0; self.vary.len()];
        for (j, v) in self.vary.iter().enumerate().rev() {
            picks[j] = rest % v.values.len();
            rest /= v.values.len();
        }
        let mut out = Vec::new();
        for (v, &p) in self.vary.iter().zip(&picks) {
            out.push(v.values[p].clone());
            out.extend(v.with.iter().map(|w| w.values[p].clone()));
        }
        out
    }

    /// `(point, placement, migration)` of run `run`.
    pub fn run_parts(&self, run: usize) -> (usize, &str, &str) {
        let pairs = self.pairs();
        let pair = run % pairs;
        let m = self.migrations.len();
        let cross = self.placements.len() * m;
        if pair >= cross {
            let (p, mg) = &self.extra_pairs[pair - cross];
            return (run / pairs, p, mg);
        }
        (
            run / pairs,
            &self.placements[pair / m],
            &self.migrations[pair % m],
        )
    }

    /// A run named for error messages: `run 5 (memory.hierarchy=inclusive, prefer_hbm + alpha)`.
    pub fn describe_run(&self, run: usize) -> String {
        let (point, p, m) = self.run_parts(run);
        let vals: Vec<String> = self
            .keys()
            .iter()
            .zip(self.point_values(point))
            .map(|(k, v)| format!("{k}={}", value_text(&v)))
            .collect();
        format!("run {run} ({}, {p} + {m})", vals.join(" "))
    }

    /// Digest of the run list: every run's point values and pair, in order.
    pub fn run_list_digest(&self) -> String {
        let mut h = crate::digest::Fnv::new();
        for run in 0..self.runs() {
            h.add(self.describe_run(run).as_bytes());
            h.add(b"\n");
        }
        h.hex()
    }
}

/// One slice of a sweep: `index` in `1..=count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Parses `I/N` with `1 <= I <= N`.
    pub fn parse(s: &str) -> Result<Shard> {
        let bad = || {
            anyhow!("--shard {s:?}: expected I/N with 1 <= I <= N (for example 3/8; with Slurm: $SLURM_ARRAY_TASK_ID/N and --array=1-N)")
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || count == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    pub fn holds(&self, run: usize) -> bool {
        run % self.count == self.index - 1
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// One run's outcome with its place in the sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepRow {
    pub run: usize,
    pub point: usize,
    /// The point's values, in [`SweepDef::keys`] order.
    pub values: Vec<toml::Value>,
    pub placement: String,
    pub migration: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// A sweep's rows, whole or one shard: the result file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepResult {
    pub format: String,
    pub kvtier: String,
    pub definition: SweepDef,
    /// Digest of the base scenario, the scripts and the definition.
    pub digest: String,
    /// Runs in the whole sweep.
    pub runs: usize,
    pub run_list_digest: String,
    /// `None`: every run.
    pub shard: Option<Shard>,
    /// In run order.
    pub rows: Vec<SweepRow>,
}

/// The pseudo-pair that runs `kvtier optimize`'s search at each point (a study's
/// `best_static = true`, `sweep --best-static`): its row is the best static schedule.
pub fn search_pair() -> crate::compare::Pair {
    (
        PolicyRef::Native(crate::optimize::SEARCH_LABEL.into()),
        PolicyRef::Native("(search)".into()),
    )
}

fn is_search(p: &PolicyRef) -> bool {
    matches!(p, PolicyRef::Native(n) if n == crate::optimize::SEARCH_LABEL)
}

/// A sweep ready to run: its definition, its validated points and its pairs.
pub struct Sweep {
    pub def: SweepDef,
    pub points: Vec<Point>,
    pub placements: Vec<PolicyRef>,
    pub migrations: Vec<PolicyRef>,
    /// Every pair run at each point: placements x migrations, then the extra pairs.
    pub pairs: Vec<crate::compare::Pair>,
    pub digest: String,
}

impl Sweep {
    /// Expands and checks everything a run needs before any run starts: points, parameters,
    /// scripts (read for the digest), columns.
    pub fn new(
        def: SweepDef,
        base: &Path,
        placements: Vec<PolicyRef>,
        migrations: Vec<PolicyRef>,
        extra: Vec<crate::compare::Pair>,
    ) -> Result<Sweep> {
        let def = Sweep::checked(def, (&placements, &migrations), &extra)?;
        let points = crate::sweep::expand(base, &def.vary)?;
        let text = crate::input::read_limited(base, "scenario")?;
        Sweep::of_points(
            def,
            points,
            (&text, base.parent()),
            placements,
            migrations,
            extra,
        )
    }

    /// [`Sweep::new`] from a base scenario given as a table (a Python caller's), `path` where
    /// it came from if anywhere.
    pub fn of_table(
        def: SweepDef,
        (table, path): (&toml::Table, Option<&Path>),
        placements: Vec<PolicyRef>,
        migrations: Vec<PolicyRef>,
        extra: Vec<crate::compare::Pair>,
    ) -> Result<Sweep> {
        let def = Sweep::checked(def, (&placements, &migrations), &extra)?;
        let points = crate::sweep::expand_table(table, path, &def.vary)?;
        let text = toml::to_string(table)?;
        let dir = path.and_then(Path::parent);
        Sweep::of_points(
            def,
            points,
            (text.as_bytes(), dir),
            placements,
            migrations,
            extra,
        )
    }

    /// The definition completed (extra pairs, default columns) and checked before any point
    /// is made.
    fn checked(
        mut def: SweepDef,
        (placements, migrations): (&[PolicyRef], &[PolicyRef]),
        extra: &[crate::compare::Pair],
    ) -> Result<SweepDef> {
        def.extra_pairs = extra.iter().map(|(p, m)| (p.label(), m.label())).collect();
        if def.columns.is_empty() {
            def.columns = DEFAULT_COLUMNS.iter().map(|c| c.to_string()).collect();
        }
        if placements.is_empty() || migrations.is_empty() {
            bail!("a sweep needs at least one placement and one migration");
        }
        check_columns(&def.columns, def.sort.as_deref())?;
        let varied: Vec<String> = def.keys();
        for p in &def.params {
            let (k, _) = policy::parse_param(p)?;
            if varied.contains(&format!("policy.params.{k}")) {
                bail!("--param {p}: `policy.params.{k}` is varied; a --param would override every point's value");
            }
        }
        Ok(def)
    }

    /// The common end of [`Sweep::new`] and [`Sweep::of_table`]: checks every point's
    /// parameters and digests the base (its text and folder), the scripts and the definition.
    fn of_points(
        def: SweepDef,
        points: Vec<crate::sweep::Point>,
        (base, dir): (&[u8], Option<&Path>),
        placements: Vec<PolicyRef>,
        migrations: Vec<PolicyRef>,
        extra: Vec<crate::compare::Pair>,
    ) -> Result<Sweep> {
        for pt in &points {
            policy::params(&pt.scenario, &def.params)
                .with_context(|| format!("point {}", pt.label()))?;
        }
        let mut h = crate::digest::Fnv::new();
        h.add(RESULT_FORMAT.as_bytes());
        h.add(base);
        for f in crate::sweep::scenario_values(&def.vary)? {
            let p = dir.unwrap_or(Path::new(".")).join(&f);
            h.add(f.as_bytes());
            h.add(&crate::input::read_limited(&p, "scenario")?);
        }
        let extra_refs = extra.iter().flat_map(|(p, m)| [p, m]);
        for r in placements.iter().chain(&migrations).chain(extra_refs) {
            h.add(r.label().as_bytes());
            if let Some(s) = r.source()? {
                h.add(s.as_bytes());
            }
        }
        h.add(serde_json::to_string(&def)?.as_bytes());
        let mut pairs = crate::compare::cross(&placements, &migrations);
        pairs.extend(extra);
        Ok(Sweep {
            def,
            points,
            placements,
            migrations,
            pairs,
            digest: h.hex(),
        })
    }

    pub fn runs(&self) -> usize {
        self.points.len() * self.pairs.len()
    }

    /// The run numbers `shard` holds (all with `None`).
    pub fn run_list(&self, shard: Option<Shard>) -> Vec<usize> {
        (0..self.runs())
            .filter(|&r| shard.is_none_or(|s| s.holds(r)))
            .collect()
    }

    /// Runs the runs of `shard` (every run with `None`) on the rayon pool; `progress` is called
    /// after each run. Writes each run's per-sublayer CSV into `csv_dir` as
    /// `p{point}__{placement}__{migration}.csv`. A failing run becomes an error row.
    pub fn run(
        &self,
        shard: Option<Shard>,
        csv_dir: Option<&Path>,
        progress: &(dyn Fn() + Sync),
    ) -> Result<SweepResult> {
        if let Some(d) = csv_dir {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        let pairs = self.pairs.len();
        let one = |&run: &usize, source: Option<Box<dyn TraceSource>>| {
            let point = &self.points[run / pairs];
            let pair = run % pairs;
            let (p, mg) = &self.pairs[pair];
            let go = || -> Result<Summary> {
                if is_search(p) {
                    drop(source);
                    return Ok(crate::optimize::search(&point.scenario)?.1);
                }
                let params = policy::params(&point.scenario, &self.def.params)?;
                let mut pol = policy::build_for(&point.scenario, p, mg, params, None)?;
                let csv: Option<PathBuf> = csv_dir.map(|d| {
                    d.join(format!(
                        "p{:03}__{}__{}.csv",
                        run / pairs,
                        p.label(),
                        mg.label()
                    ))
                });
                let source = match source {
                    Some(s) => s,
                    None => crate::trace::open(&point.scenario)?,
                };
                let sink = &mut crate::engine::Discard;
                crate::simulate_traced(&point.scenario, source, pol.as_mut(), csv.as_deref(), sink)
            };
            let outcome = match crate::no_panic(go) {
                Ok(s) => Outcome::Summary(Box::new(s)),
                Err(e) => Outcome::Error(format!("{e:#}")),
            };
            progress();
            SweepRow {
                run,
                point: run / pairs,
                values: point.assignments.iter().map(|(_, v)| v.clone()).collect(),
                placement: p.label(),
                migration: mg.label(),
                outcome,
            }
        };
        // The runs of one point share its trace (see `trace::shared`); points run in parallel.
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for run in self.run_list(shard) {
            match groups.last_mut() {
                Some(g) if g[0] / pairs == run / pairs => g.push(run),
                _ => groups.push(vec![run]),
            }
        }
        let rows: Vec<SweepRow> = groups
            .into_par_iter()
            .flat_map_iter(|g| {
                crate::trace::shared::run_all(&self.points[g[0] / pairs].scenario, &g, &one)
            })
            .collect();
        Ok(SweepResult {
            format: RESULT_FORMAT.into(),
            kvtier: env!("CARGO_PKG_VERSION").into(),
            definition: self.def.clone(),
            digest: self.digest.clone(),
            runs: self.runs(),
            run_list_digest: self.def.run_list_digest(),
            shard,
            rows,
        })
    }
}

/// Reads a result file.
pub fn read_result(path: &Path) -> Result<SweepResult> {
    let text = crate::input::read_text(path, "result file")?;
    let r: SweepResult = serde_json::from_str(&text).map_err(|e| {
        anyhow!(
            "{}:{}:{}: not a kvtier sweep result file: {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    if r.format != RESULT_FORMAT {
        bail!(
            "{}: format {:?}, this kvtier reads {RESULT_FORMAT:?}",
            path.display(),
            r.format
        );
    }
    r.definition
        .check()
        .with_context(|| format!("{}: definition", path.display()))?;
    let keys = r.definition.keys().len();
    if let Some(row) = r.rows.iter().find(|x| x.values.len() != keys) {
        bail!(
            "{}: run {} has {} values, the definition varies {keys} keys",
            path.display(),
            row.run,
            row.values.len()
        );
    }
    Ok(r)
}

/// Combines result files of one sweep: they must share the definition, digests and run count,
/// and hold every run exactly once. `names` label the files in errors.
pub fn merge(parts: &[(String, SweepResult)]) -> Result<SweepResult> {
    let Some((first_name, first)) = parts.first() else {
        bail!("merge needs at least one result file");
    };
    let def = &first.definition;
    if first.runs != def.runs() || first.run_list_digest != def.run_list_digest() {
        bail!("{first_name}: its run count or run list does not match its own definition");
    }
    for (name, r) in &parts[1..] {
        let same = r.digest == first.digest
            && r.definition == first.definition
            && r.runs == first.runs
            && r.run_list_digest == first.run_list_digest;
        if !same {
            bail!(
                "{name} and {first_name} are shards of different sweeps (digest {} vs {}{}): merge only the files of one sweep",
                r.digest,
                first.digest,
                if r.digest == first.digest {
                    ", definitions differ"
                } else {
                    ""
                }
            );
        }
    }
    let mut owner: Vec<Option<usize>> = vec![None; first.runs];
    let mut rows = Vec::with_capacity(first.runs);
    for (i, (name, r)) in parts.iter().enumerate() {
        for row in &r.rows {
            let slot = owner.get_mut(row.run).ok_or_else(|| {
                anyhow!(
                    "{name}: run {} is outside the sweep's {} runs",
                    row.run,
                    first.runs
                )
            })?;
            let (point, p, m) = def.run_parts(row.run);
            if row.point != point || row.placement != p || row.migration != m {
                bail!(
                    "{name}: run {} is labelled point {} {} + {}, the definition says point {point} {p} + {m}",
                    row.run,
                    row.point,
                    row.placement,
                    row.migration
                );
            }
            if let Some(j) = *slot {
                let other = &parts[j].0;
                let where_ = if j == i {
                    format!("twice in {name}")
                } else {
                    format!("in both {other} and {name}")
                };
                bail!(
                    "{} is {where_}: each run must be merged exactly once",
                    def.describe_run(row.run)
                );
            }
            *slot = Some(i);
            rows.push(row.clone());
        }
    }
    let missing: Vec<usize> = (0..first.runs).filter(|&r| owner[r].is_none()).collect();
    if !missing.is_empty() {
        let shards: Vec<String> = parts
            .iter()
            .map(|(n, r)| match r.shard {
                Some(s) => format!("{n} (shard {s})"),
                None => format!("{n} (whole)"),
            })
            .collect();
        let shown: Vec<String> = missing
            .iter()
            .take(5)
            .map(|&r| def.describe_run(r))
            .collect();
        bail!(
            "{} of {} runs are missing, first {}; files given: {}",
            missing.len(),
            first.runs,
            shown.join("; "),
            shards.join(", ")
        );
    }
    rows.sort_by_key(|r| r.run);
    Ok(SweepResult {
        shard: None,
        rows,
        ..first.clone()
    })
}
