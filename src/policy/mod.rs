//! Policies as Rhai scripts (SPEC 8): the host that runs a placement script and a migration
//! script as one [`crate::engine::Policy`], the `ctx` API they see, and how a strategy named on
//! the command line or in a scenario is found (native name, file, or a script under
//! `policies/`).
//!
//! Architecture Invariant: scripts reach the run only through `ctx`; they read state through
//! [`query`] and [`crate::memory::Memory`] getters and change it only through the move verbs of
//! [`crate::engine::Sim`]. Nothing outside this module knows about Rhai.
//!
//! Not here: the decode loop ([`crate::engine`]), comparing many pairs ([`crate::compare`]).

pub mod api;
pub mod budget;
pub mod builtin;
pub mod ctx;
pub mod fast;
pub mod host;
pub mod query;
pub mod sets;
pub mod usage;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rhai::Dynamic;

pub use ctx::Params;
pub use host::{new_engine, Placement, Script, ScriptedPolicy};

use crate::engine::Policy;
use crate::memory::Tier;
use crate::scenario::Scenario;
use budget::Budget;

/// Which part of a strategy a name refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Placement,
    Migration,
}

impl Kind {
    /// The folder of this kind under `policies/`: `placement` or `migration`.
    pub fn dir(self) -> &'static str {
        match self {
            Kind::Placement => "placement",
            Kind::Migration => "migration",
        }
    }
}

/// A strategy as named by the user: built into the core, a script file, or a reference script
/// built into the binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyRef {
    /// `hbm` / `ext` (placement), `none` (migration).
    Native(String),
    Script(PathBuf),
    /// A script of `policies/` embedded at build time, used when no such file is on disk.
    Builtin(&'static builtin::Builtin),
    /// A script given as text (by a Python caller), under a name of the caller's choosing.
    Inline(Arc<InlineScript>),
}

/// A script given as text: its messages name it `<name>`.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InlineScript {
    pub name: String,
    pub source: String,
}

impl InlineScript {
    /// What its messages call it: `<name>`.
    pub fn shown(&self) -> String {
        format!("<{}>", self.name)
    }
}

impl PolicyRef {
    /// Name shown in tables: the native name or the file stem.
    pub fn label(&self) -> String {
        match self {
            PolicyRef::Native(n) => n.clone(),
            PolicyRef::Script(p) => p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| p.display().to_string()),
            PolicyRef::Builtin(b) => b.name.to_string(),
            PolicyRef::Inline(i) => i.name.clone(),
        }
    }

    /// The script's text, read now (a file) or embedded; `None` for a native strategy.
    pub fn source(&self) -> Result<Option<String>> {
        Ok(match self {
            PolicyRef::Native(_) => None,
            PolicyRef::Script(p) => Some(crate::input::read_text(p, "script")?),
            PolicyRef::Builtin(b) => Some(b.source.to_string()),
            PolicyRef::Inline(i) => Some(i.source.clone()),
        })
    }
}

/// The pair a run uses: `placement` and `migration` where given, else the scenario's own
/// (`policy.placement`, `policy.migration`, whose script paths are relative to the scenario's
/// folder).
pub fn scenario_pair(
    scenario: &Scenario,
    placement: Option<PolicyRef>,
    migration: Option<PolicyRef>,
) -> Result<(PolicyRef, PolicyRef)> {
    let dir = scenario.path.as_deref().and_then(Path::parent);
    let from_file = |kind: &str| format!("{}: policy.{kind}", scenario.name);
    let p = match placement {
        Some(p) => p,
        None => resolve(&scenario.file.policy.placement, Kind::Placement, dir)
            .with_context(|| from_file("placement"))?,
    };
    let m = match migration {
        Some(m) => m,
        None => resolve(&scenario.file.policy.migration, Kind::Migration, dir)
            .with_context(|| from_file("migration"))?,
    };
    Ok((p, m))
}

/// Resolves `spec`: a native name, a path (relative to `base`, else the working directory), a
/// bare name of a script under `./policies/<kind>/` or `./policies/baselines/<kind>/`, else the
/// reference script of that name built into the binary.
pub fn resolve(spec: &str, kind: Kind, base: Option<&Path>) -> Result<PolicyRef> {
    let native = match kind {
        Kind::Placement => ["hbm", "ext"].as_slice(),
        Kind::Migration => ["none"].as_slice(),
    };
    if native.contains(&spec) {
        return Ok(PolicyRef::Native(spec.to_string()));
    }
    let p = Path::new(spec);
    let mut tried = Vec::new();
    if let Some(b) = base.filter(|_| p.is_relative()) {
        let c = b.join(p);
        if c.is_file() {
            return Ok(PolicyRef::Script(c));
        }
        tried.push(c);
    }
    if p.is_file() {
        return Ok(PolicyRef::Script(p.to_path_buf()));
    }
    tried.push(p.to_path_buf());
    if !spec.contains('/') && !spec.ends_with(".rhai") {
        for dir in [Path::new("policies"), Path::new("policies/baselines")] {
            let c = dir.join(kind.dir()).join(format!("{spec}.rhai"));
            if c.is_file() {
                return Ok(PolicyRef::Script(c));
            }
            tried.push(c);
        }
        if let Some(b) = builtin::find(kind, spec) {
            return Ok(PolicyRef::Builtin(b));
        }
    }
    let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    bail!(
        "no {} strategy {spec:?}: not a native one ({}) and no such script (tried {})",
        kind.dir(),
        native.join(", "),
        tried.join(", ")
    )
}

/// Scripts named by `spec` for a comparison: a folder gives every `*.rhai` in it (sorted); a
/// `policies/<kind>` or `policies/baselines/<kind>` folder that is not on disk gives the built-in
/// scripts of that folder.
pub fn expand(spec: &str, kind: Kind) -> Result<Vec<PolicyRef>> {
    let p = Path::new(spec);
    if !p.exists() {
        if let Some(found) = builtin::folder(spec, kind) {
            return Ok(found.into_iter().map(PolicyRef::Builtin).collect());
        }
    }
    if p.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(p)
            .with_context(|| format!("cannot list {}", p.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "rhai") && p.is_file())
            .collect();
        files.sort();
        if files.is_empty() {
            bail!("{}: no .rhai scripts in this folder", p.display());
        }
        return Ok(files.into_iter().map(PolicyRef::Script).collect());
    }
    Ok(vec![resolve(spec, kind, None)?])
}

/// Where the baselines of deployed systems live: each placement baseline runs with migration
/// `none`, each migration baseline with placement `hbm` (prefer_hbm).
pub const BASELINES_DIR: &str = "policies/baselines";

/// The baseline pairs of the folder `dir` (its `placement/` and `migration/` scripts), placement
/// baselines first, each folder in name order.
pub fn baseline_pairs(dir: &Path) -> Result<Vec<(PolicyRef, PolicyRef)>> {
    let found = |kind: Kind| {
        expand(&dir.join(kind.dir()).display().to_string(), kind).with_context(|| {
            format!(
                "the baselines are the scripts under {}/{}",
                dir.display(),
                kind.dir()
            )
        })
    };
    let none = PolicyRef::Native("none".into());
    let hbm = PolicyRef::Native("hbm".into());
    Ok(found(Kind::Placement)?
        .into_iter()
        .map(|p| (p, none.clone()))
        .chain(
            found(Kind::Migration)?
                .into_iter()
                .map(|m| (hbm.clone(), m)),
        )
        .collect())
}

/// The specs a command was given (`--placement A B`), or `defaults` when none: each expanded
/// by [`expand`], in order. Errors name the flag, and say where defaults are looked up.
pub fn expand_all(given: &[String], defaults: &[&str], kind: Kind) -> Result<Vec<PolicyRef>> {
    let flag = format!("--{kind:?}").to_lowercase();
    let specs: Vec<String> = if given.is_empty() {
        defaults.iter().map(|s| s.to_string()).collect()
    } else {
        given.to_vec()
    };
    let mut out = Vec::new();
    for s in &specs {
        out.extend(expand(s, kind).with_context(|| {
            if given.is_empty() {
                format!("the default {flag} {s}")
            } else {
                format!("{flag} {s}")
            }
        })?);
    }
    Ok(out)
}

/// A scenario's `[policy.params]` with `key=value` overrides applied.
pub fn params(scenario: &Scenario, overrides: &[String]) -> Result<Params> {
    let mut out = Params::new();
    for (k, v) in &scenario.file.policy.params {
        let d = match v {
            toml::Value::Integer(i) => Dynamic::from_int(*i),
            toml::Value::Float(f) => Dynamic::from_float(*f),
            toml::Value::Boolean(b) => Dynamic::from_bool(*b),
            toml::Value::String(s) => Dynamic::from(s.clone()),
            other => bail!(
                "policy.params.{k} = {other}: a parameter must be a number, a boolean or a string"
            ),
        };
        out.insert(k.clone(), d);
    }
    for o in overrides {
        let (k, v) = parse_param(o)?;
        out.insert(k, v);
    }
    Ok(out)
}

/// `key=value` with the value read as int, float, bool, or else string.
pub fn parse_param(s: &str) -> Result<(String, Dynamic)> {
    let Some((k, v)) = s.split_once('=') else {
        bail!("--param {s:?}: expected key=value");
    };
    let (k, v) = (k.trim(), v.trim());
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        bail!("--param {s:?}: the key must be letters, digits and _");
    }
    let d = if let Ok(i) = v.parse::<i64>() {
        Dynamic::from_int(i)
    } else if let Ok(f) = v.parse::<f64>() {
        Dynamic::from_float(f)
    } else if let Ok(b) = v.parse::<bool>() {
        Dynamic::from_bool(b)
    } else {
        Dynamic::from(v.to_string())
    };
    Ok((k.to_string(), d))
}

/// Builds the policy for a (placement, migration) pair; scripts are compiled here, once. Their
/// work over the whole run is limited to [`budget::DEFAULT_MAX_RUN_OPERATIONS`] operations.
pub fn build(
    placement: &PolicyRef,
    migration: &PolicyRef,
    params: Params,
) -> Result<Box<dyn Policy>> {
    build_limited(
        placement,
        migration,
        params,
        budget::DEFAULT_MAX_RUN_OPERATIONS,
        None,
    )
}

/// [`build`] for runs of `scenario`: its scripts limited by `policy.max_script_operations`,
/// stopped as soon as `cancel` is set.
pub fn build_for(
    scenario: &Scenario,
    placement: &PolicyRef,
    migration: &PolicyRef,
    params: Params,
    cancel: Option<Arc<AtomicBool>>,
) -> Result<Box<dyn Policy>> {
    let max = scenario.file.policy.max_script_operations;
    build_limited(placement, migration, params, max, cancel)
}

/// [`build`] with the scripts' work over the run limited to `max_run_ops` operations
/// (`policy.max_script_operations`) and stopped as soon as `cancel` is set (watch).
pub fn build_limited(
    placement: &PolicyRef,
    migration: &PolicyRef,
    params: Params,
    max_run_ops: u64,
    cancel: Option<Arc<AtomicBool>>,
) -> Result<Box<dyn Policy>> {
    let name = format!("{} + {}", placement.label(), migration.label());
    if let (PolicyRef::Native(p), PolicyRef::Native(_)) = (placement, migration) {
        // The core's native policy, under its own name (`hbm`), as before scripts existed.
        return crate::native_policy(p);
    }
    let output = host::ScriptOutput::default();
    let budget = Budget::new(max_run_ops, cancel);
    let engine = host::new_engine_for(&output, &budget);
    let placement = match placement {
        PolicyRef::Native(n) if n == "hbm" => Placement::Native(Tier::Hbm),
        PolicyRef::Native(_) => Placement::Native(Tier::Ext),
        script => {
            let s = load_script(&engine, script)?;
            if !s.has(host::Hook::Place) {
                bail!(
                    "{}: a placement script must define fn place(ctx)",
                    s.path.display()
                );
            }
            Placement::Script(Box::new(s))
        }
    };
    let migration = match migration {
        PolicyRef::Native(_) => None,
        script => {
            let s = load_script(&engine, script)?;
            if s.has(host::Hook::Initial) {
                bail!(
                    "{}: fn initial(ctx) is a placement hook (the initial split belongs to the placement): move it to the placement script",
                    s.path.display()
                );
            }
            Some(s)
        }
    };
    Ok(Box::new(ScriptedPolicy::new(
        engine,
        (output, budget),
        placement,
        migration,
        params,
        name,
    )))
}

/// Compiles a script strategy (a file, or a built-in script under its `<built-in>/...` name).
fn load_script(engine: &rhai::Engine, r: &PolicyRef) -> Result<Script> {
    match r {
        PolicyRef::Script(p) => Script::load(engine, p),
        PolicyRef::Builtin(b) => Script::compile(engine, Path::new(&b.shown()), b.source.into()),
        PolicyRef::Inline(i) => Script::compile(engine, Path::new(&i.shown()), i.source.clone()),
        PolicyRef::Native(n) => bail!("{n} is a native strategy, not a script"),
    }
}

/// Compiles `path` and runs it on `scenario` (normally scenarios/tiny.toml) as a placement
/// script if it defines `place`, else as a migration script with native `hbm` placement.
/// Returns a one-line report.
pub fn check(path: &Path, scenario: &Scenario, overrides: &[String]) -> Result<String> {
    let engine = new_engine();
    let script = Script::load(&engine, path)?;
    let hooks: Vec<&str> = [
        host::Hook::Place,
        host::Hook::Initial,
        host::Hook::OnStep,
        host::Hook::OnLayer,
    ]
    .into_iter()
    .filter(|h| script.has(*h))
    .map(|h| h.name())
    .collect();
    let me = PolicyRef::Script(path.to_path_buf());
    let (p, m) = if script.has(host::Hook::Place) {
        (me, PolicyRef::Native("none".into()))
    } else {
        (PolicyRef::Native("hbm".into()), me)
    };
    let mut policy = build(&p, &m, params(scenario, overrides)?)?;
    let s = crate::simulate(scenario, policy.as_mut(), None)?;
    let defines = if hooks.is_empty() {
        "no hook: a migration that never moves".to_string()
    } else {
        format!("defines {}", hooks.join(", "))
    };
    let mut report = format!(
        "{}: ok ({defines}); dry run on {} as `{}`: decode time {:.6} s, x ideal {:.4}",
        path.display(),
        scenario.name,
        s.policy,
        s.decode_time_s,
        s.x_ideal
    );
    // A migration whose hooks never moved anything was not exercised by the dry run.
    let migration_hooks = script.has(host::Hook::OnStep) || script.has(host::Hook::OnLayer);
    if migration_hooks && s.moved_to_hbm_bytes == 0 && s.moved_to_ext_bytes == 0 {
        report += &format!(
            "\nnote: its hooks ran but never moved anything on {} ({} decode steps): the dry run did not reach the case the script handles; try it where HBM fills up, e.g. --scenario scenarios/seed-w100.toml",
            scenario.name, scenario.sizes.decode
        );
    }
    Ok(report)
}
