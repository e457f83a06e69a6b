//! Study files (`scenarios/studies/*.toml`): a sweep written down, so that one command answers
//! one question. A study names its base scenario (relative to the study file), the keys to vary,
//! the (placement, migration) pairs, the columns to show and an optional sort.
//!
//! Not here: expanding points ([`crate::sweep`]), running them ([`crate::sweep_run`]).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

use crate::policy::{self, Kind, PolicyRef};
use crate::sweep::{self, value_text, Vary};
use crate::sweep_run::{Sweep, SweepDef};

/// A study file as written. Unknown fields are rejected with their name and line.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudyFile {
    /// Shown above the table.
    pub title: String,
    /// The question the study answers (documentation; not shown).
    #[serde(default)]
    pub question: Option<String>,
    /// The base scenario, relative to the study file.
    pub base: String,
    /// Placement strategies: names under policies/placement, script files or folders (relative
    /// to the study file first, then to the working directory).
    pub placements: Vec<String>,
    pub migrations: Vec<String>,
    /// A folder of baselines (`placement/`, `migration/`) run after the placements x migrations
    /// pairs: each placement baseline with `none`, each migration baseline with `hbm`.
    #[serde(default)]
    pub baselines: Option<String>,
    /// Also find the best static schedule at every point (`kvtier optimize`'s search): a
    /// "best static" row per point and the `x_best_static` column.
    #[serde(default)]
    pub best_static: bool,
    /// Markdown and tables: one table per point, headed by its values.
    #[serde(default)]
    pub table_per_point: bool,
    /// Script parameters applied to every run (as `--param`).
    #[serde(default)]
    pub params: toml::Table,
    /// The keys to vary (the first varies slowest).
    pub vary: Vec<VaryEntry>,
    /// Columns to show (default: the sweep's).
    #[serde(default)]
    pub columns: Vec<String>,
    /// A column to sort by, ascending; `-column` for descending. Default: run order.
    #[serde(default)]
    pub sort: Option<String>,
}

/// One `[[vary]]` table: `key` with `values = [...]` or `range = "a..b:step"`, and optional
/// linked keys `with = [{ key = ..., values = [...] }]` that change together with it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaryEntry {
    pub key: String,
    #[serde(default)]
    pub values: Option<Vec<toml::Value>>,
    #[serde(default)]
    pub range: Option<String>,
    #[serde(default)]
    pub with: Vec<VaryEntry>,
}

impl VaryEntry {
    fn to_vary(&self) -> Result<Vary> {
        let values = match (&self.values, &self.range) {
            (Some(v), None) => v.clone(),
            (None, Some(r)) => sweep::parse_vary(&format!("{}={r}", self.key))?.values,
            _ => bail!(
                "vary `{}`: give exactly one of `values = [...]` and `range = \"a..b:step\"`",
                self.key
            ),
        };
        if values.is_empty() {
            bail!("vary `{}`: no values", self.key);
        }
        let with = self
            .with
            .iter()
            .map(VaryEntry::to_vary)
            .collect::<Result<Vec<_>>>()?;
        let v = Vary {
            key: self.key.clone(),
            values,
            with,
        };
        v.check()?;
        Ok(v)
    }
}

fn kind_dir(kind: Kind) -> &'static str {
    match kind {
        Kind::Placement => "placement",
        Kind::Migration => "migration",
    }
}

/// Resolves a study's strategy: a folder (relative to the study), a script or name by the usual
/// rules with the study's folder as base, else a script of the project holding the study
/// (`<study>/../../policies/<kind>/<name>.rhai`), so studies run from any working directory.
fn strategies(spec: &str, kind: Kind, dir: &Path) -> Result<Vec<PolicyRef>> {
    let d = dir.join(spec);
    if d.is_dir() || !d.exists() && policy::builtin::folder(spec, kind).is_some() {
        return policy::expand(&d.to_string_lossy(), kind);
    }
    match policy::resolve(spec, kind, Some(dir)) {
        Ok(r) => Ok(vec![r]),
        Err(e) => {
            let alt = dir
                .join("../../policies")
                .join(kind_dir(kind))
                .join(format!("{spec}.rhai"));
            if !spec.contains('/') && alt.is_file() {
                Ok(vec![PolicyRef::Script(alt)])
            } else {
                Err(e)
            }
        }
    }
}

/// Reads, checks and expands a study file: every point is validated and every script found
/// before anything runs.
pub fn load(path: &Path) -> Result<Sweep> {
    let text = crate::input::read_text(path, "study")?;
    let label = path.display().to_string();
    let file: StudyFile =
        toml::from_str(&text).map_err(|e| crate::scenario::toml_error(&label, &text, &e))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let in_study = |e: anyhow::Error| anyhow!("{label}: {e:#}");
    if file.vary.is_empty() {
        bail!("{label}: a study needs at least one [[vary]]");
    }
    let vary = file
        .vary
        .iter()
        .map(VaryEntry::to_vary)
        .collect::<Result<Vec<_>>>()
        .map_err(in_study)?;
    let mut placements = Vec::new();
    for s in &file.placements {
        placements.extend(
            strategies(s, Kind::Placement, &dir)
                .with_context(|| format!("placements: {s}"))
                .map_err(in_study)?,
        );
    }
    let mut migrations = Vec::new();
    for s in &file.migrations {
        migrations.extend(
            strategies(s, Kind::Migration, &dir)
                .with_context(|| format!("migrations: {s}"))
                .map_err(in_study)?,
        );
    }
    let mut params = Vec::new();
    for (k, v) in &file.params {
        if !matches!(
            v,
            toml::Value::Integer(_)
                | toml::Value::Float(_)
                | toml::Value::Boolean(_)
                | toml::Value::String(_)
        ) {
            bail!("{label}: params.{k}: a parameter must be a number, a boolean or a string");
        }
        params.push(format!("{k}={}", value_text(v)));
    }
    let def = SweepDef {
        title: Some(file.title.clone()),
        base: file.base.clone(),
        vary,
        placements: placements.iter().map(PolicyRef::label).collect(),
        migrations: migrations.iter().map(PolicyRef::label).collect(),
        extra_pairs: Vec::new(),
        params,
        columns: file.columns.clone(),
        sort: file.sort.clone(),
        table_per_point: file.table_per_point,
    };
    let mut extra = match &file.baselines {
        Some(b) => crate::policy::baseline_pairs(&dir.join(b))
            .with_context(|| format!("baselines: {b}"))
            .map_err(in_study)?,
        None => Vec::new(),
    };
    if file.best_static {
        extra.push(crate::sweep_run::search_pair());
    }
    Sweep::new(def, &dir.join(&file.base), placements, migrations, extra).map_err(in_study)
}
