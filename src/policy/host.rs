//! The Rhai host: a sandboxed engine, scripts compiled once per run, hooks called with the `ctx`
//! handle bound to the engine's [`Sim`], and every script error turned into
//! `file:line:col: message` plus the source line.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use rhai::{Dynamic, Engine, EvalAltResult, ParseError, Position, Scope, AST};

use super::budget::{self, Budget};
use super::ctx::{self, Ctx};
use super::fast::{self, FastFn};
use crate::engine::{Policy, Sim};
use crate::memory::Tier;
use crate::tokenset::TokenSet;

/// Operations one hook call may run. The reference scripts use a few hundred (a loop over the
/// layers); a runaway loop stops well under a second even in a debug build.
pub const MAX_OPERATIONS_PER_CALL: u64 = 1_000_000;
/// Nested function calls inside one hook call.
pub const MAX_CALL_LEVELS: usize = 32;
/// Largest string, array and map a script may build (big data stays on the Rust side).
pub const MAX_STRING_BYTES: usize = 64 * 1024;
pub const MAX_ARRAY_LEN: usize = 10_000;
pub const MAX_MAP_LEN: usize = 1_000;

/// Lines of `print` / `debug` output one run's scripts may write; the rest is counted and
/// dropped (a script printing in every hook call would otherwise flood the terminal).
pub const MAX_SCRIPT_OUTPUT_LINES: u64 = 1_000;

/// Counts a run's script output lines; says how many were dropped when the run ends.
#[derive(Clone, Default)]
pub struct ScriptOutput(Arc<AtomicU64>);

impl ScriptOutput {
    /// Whether one more line may be written; the first line over the limit says so.
    fn admit(&self) -> bool {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        if n == MAX_SCRIPT_OUTPUT_LINES + 1 {
            eprintln!(
                "[script] output limit of {MAX_SCRIPT_OUTPUT_LINES} lines per run reached: further print/debug output of this run is dropped"
            );
        }
        n <= MAX_SCRIPT_OUTPUT_LINES
    }

    /// Lines dropped so far.
    pub fn dropped(&self) -> u64 {
        self.0
            .load(Ordering::Relaxed)
            .saturating_sub(MAX_SCRIPT_OUTPUT_LINES)
    }
}

/// A sandboxed engine with the script API registered: no file, network or process access (Rhai
/// has none built in), `eval` disabled, `import` unable to load anything, no clock, limits set
/// explicitly (debug and release builds differ in their defaults), script output capped.
pub fn new_engine() -> Engine {
    new_engine_for(
        &ScriptOutput::default(),
        &Budget::new(budget::DEFAULT_MAX_RUN_OPERATIONS, None),
    )
}

/// [`new_engine`] for one run: its script output counted in `output`, its work in `budget`.
pub fn new_engine_for(output: &ScriptOutput, budget: &Arc<Budget>) -> Engine {
    let mut e = Engine::new();
    e.set_max_operations(MAX_OPERATIONS_PER_CALL);
    e.set_max_call_levels(MAX_CALL_LEVELS);
    e.set_max_expr_depths(64, 32);
    e.set_max_string_size(MAX_STRING_BYTES);
    e.set_max_array_size(MAX_ARRAY_LEN);
    e.set_max_map_size(MAX_MAP_LEN);
    e.set_max_variables(1_000);
    e.set_max_functions(1_000);
    e.set_max_modules(0);
    e.disable_symbol("eval");
    e.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    let b = budget.clone();
    e.on_progress(move |ops| b.progress(ops));
    let (o1, o2) = (output.clone(), output.clone());
    e.on_print(move |s| {
        if o1.admit() {
            eprintln!("[script] {}", crate::output::truncated(s, 1000));
        }
    });
    e.on_debug(move |s, src, pos| {
        if o2.admit() {
            let s = crate::output::truncated(s, 1000);
            eprintln!("[script {} {pos}] {s}", src.unwrap_or(""));
        }
    });
    ctx::register(&mut e);
    e
}

/// The hooks a script may define.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Place,
    OnStep,
    OnLayer,
    Initial,
}

/// Every hook, in the order of [`Hook`]'s values.
const HOOKS: [Hook; 4] = [Hook::Place, Hook::OnStep, Hook::OnLayer, Hook::Initial];

impl Hook {
    pub fn name(self) -> &'static str {
        match self {
            Hook::Place => "place",
            Hook::OnStep => "on_step",
            Hook::OnLayer => "on_layer",
            Hook::Initial => "initial",
        }
    }
}

/// A compiled script file.
pub struct Script {
    pub path: PathBuf,
    /// Short name for tables: the file stem.
    pub label: String,
    source: String,
    ast: AST,
    /// 1-based line and column of each hook's `fn`.
    hooks: [Option<(usize, usize)>; 4],
    /// Each hook compiled, where its body allows it ([`fast`]).
    fast: [Option<FastFn>; 4],
}

/// Most lines, and most characters on a line, in a script: Rhai keeps positions in 16 bits, so
/// past this an error could not say where it is.
pub const MAX_SCRIPT_LINES: usize = u16::MAX as usize;

impl Script {
    /// Reads and compiles `path`. Compile errors name `file:line:col`.
    pub fn load(engine: &Engine, path: &Path) -> Result<Script> {
        if path.extension().is_none_or(|e| e != "rhai") {
            bail!(
                "{}: not a strategy script (a Rhai script's name ends in .rhai)",
                path.display()
            );
        }
        let source = crate::input::read_text(path, "script")?;
        Script::compile(engine, path, source)
    }

    pub fn compile(engine: &Engine, path: &Path, source: String) -> Result<Script> {
        let lines = source.lines().count();
        if lines > MAX_SCRIPT_LINES {
            bail!(
                "{}: {lines} lines: a script may have at most {MAX_SCRIPT_LINES} lines, so that every error can say where it is (move data to parameters or split the script)",
                path.display()
            );
        }
        if let Some((i, l)) = source
            .lines()
            .enumerate()
            .find(|(_, l)| l.chars().count() > MAX_SCRIPT_LINES)
        {
            bail!(
                "{}:{}: {} characters on one line: a script line may have at most {MAX_SCRIPT_LINES}",
                path.display(),
                i + 1,
                l.chars().count()
            );
        }
        let mut ast = engine
            .compile(&source)
            .map_err(|e| parse_error(path, &source, &e))?;
        ast.set_source(path.display().to_string());
        let code = code_only(&source);
        let mut hooks = [None; 4];
        for (i, h) in HOOKS.iter().enumerate() {
            let found: Vec<usize> = ast
                .iter_functions()
                .filter(|f| f.name == h.name())
                .map(|f| f.params.len())
                .collect();
            if found.is_empty() {
                continue;
            }
            if !found.contains(&1) {
                bail!(
                    "{}:{}: fn {} must take one parameter (ctx), found {} parameter(s)",
                    path.display(),
                    fn_line(&code, h.name()).map_or(1, |p| p.0),
                    h.name(),
                    found[0]
                );
            }
            hooks[i] = Some(fn_line(&code, h.name()).unwrap_or((1, 1)));
        }
        let label = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let fast = HOOKS.map(|h| {
            let compiled = hooks[h as usize].is_some() && fast::enabled();
            compiled
                .then(|| FastFn::compile(engine, &ast, h.name()))
                .flatten()
        });
        Ok(Script {
            path: path.to_path_buf(),
            label,
            source,
            ast,
            hooks,
            fast,
        })
    }

    pub fn has(&self, h: Hook) -> bool {
        self.hooks[h as usize].is_some()
    }

    /// Whether hook `h` runs compiled rather than in Rhai's interpreter.
    pub fn compiled(&self, h: Hook) -> bool {
        self.fast[h as usize].is_some()
    }

    /// Turns a runtime error of hook `h` into `file:line:col: in h: message` and the source line.
    fn runtime_error(&self, h: Hook, e: &EvalAltResult, max_run_ops: u64) -> anyhow::Error {
        let (pos, inner) = innermost(e);
        let limit = matches!(
            inner,
            EvalAltResult::ErrorTooManyOperations(..)
                | EvalAltResult::ErrorStackOverflow(..)
                | EvalAltResult::ErrorDataTooLarge(..)
        );
        let mut msg = inner.to_string();
        if let Some(i) = msg.find(" (line ") {
            msg.truncate(i);
        }
        msg += &api_hint(inner);
        if let EvalAltResult::ErrorTerminated(token, _) = inner {
            let why = token.clone().into_string().unwrap_or_default();
            if why == budget::STOP_CANCELLED {
                if crate::interrupt::requested() {
                    return crate::interrupt::Interrupted.into();
                }
                return crate::engine::Cancelled.into();
            }
            msg = if why == budget::STOP_RUN {
                format!(
                    "the run's scripts took more than {max_run_ops} operations in all (`policy.max_script_operations`; Rhai operations plus one per 64 words of sets that native verbs touch)"
                )
            } else {
                format!(
                    "more than {MAX_OPERATIONS_PER_CALL} operations in one call, counting one per 64 words of sets that native verbs touch (a loop over big sets?)"
                )
            };
        }
        let limit = limit || matches!(inner, EvalAltResult::ErrorTerminated(..));
        match inner {
            EvalAltResult::ErrorTooManyOperations(..) => {
                msg = format!(
                    "{msg}: more than {MAX_OPERATIONS_PER_CALL} operations in one call (an endless loop? loop over positions? use the set verbs)"
                )
            }
            EvalAltResult::ErrorStackOverflow(..) => {
                msg = format!("{msg}: calls nested deeper than {MAX_CALL_LEVELS} (endless recursion?)")
            }
            EvalAltResult::ErrorTooManyModules(..) => {
                msg = "import is not available: scripts are sandboxed and load no modules (put shared code in the script itself)".into()
            }
            _ => {}
        }
        let (pos, note) = match pos {
            Some(p) => (p, ""),
            None => (
                self.hooks[h as usize].unwrap_or((1, 1)),
                if limit {
                    " (limit errors carry no position: showing the hook)"
                } else {
                    ""
                },
            ),
        };
        located(
            &self.path,
            &self.source,
            pos,
            &format!("in {}: {msg}{note}", h.name()),
        )
    }

    /// Error for a hook that ran but returned something it may not.
    fn value_error(&self, h: Hook, msg: &str) -> anyhow::Error {
        let pos = self.hooks[h as usize].unwrap_or((1, 1));
        located(
            &self.path,
            &self.source,
            pos,
            &format!("in {}: {msg}", h.name()),
        )
    }
}

/// `source` with every comment and string literal blanked out (newlines kept), so that a
/// search for code finds only code at its own line and column.
fn code_only(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let chars: Vec<char> = source.chars().collect();
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let (c, next) = (chars[i], chars.get(i + 1).copied());
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            // Rhai block comments nest.
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == '"' || c == '`' || c == '\'' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && c != '`' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            if i < chars.len() {
                out.push(' ');
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// 1-based line and column (in characters) of `fn name(` in `code` (see [`code_only`]).
fn fn_line(code: &str, name: &str) -> Option<(usize, usize)> {
    let pat = format!("fn {name}");
    for (i, line) in code.lines().enumerate() {
        let mut from = 0;
        while let Some(c) = line[from..].find(&pat).map(|c| c + from) {
            let before_ok = line[..c]
                .chars()
                .next_back()
                .is_none_or(|b| !(b.is_alphanumeric() || b == '_'));
            let rest = line[c + pat.len()..].trim_start();
            if before_ok && rest.starts_with('(') {
                return Some((i + 1, line[..c].chars().count() + 1));
            }
            from = c + pat.len();
        }
    }
    None
}

/// The innermost error of a chain of function-call errors, with the deepest known position.
fn innermost(e: &EvalAltResult) -> (Option<(usize, usize)>, &EvalAltResult) {
    let mut best = line_col(e.position());
    let mut cur = e;
    while let EvalAltResult::ErrorInFunctionCall(_, _, inner, pos) = cur {
        best = line_col(*pos).or(best);
        cur = inner;
        best = line_col(cur.position()).or(best);
    }
    (best, cur)
}

/// "did you mean ...?" for an unknown `ctx` property or function, from the documented API.
fn api_hint(e: &EvalAltResult) -> String {
    let word = match e {
        EvalAltResult::ErrorDotExpr(m, _) | EvalAltResult::ErrorPropertyNotFound(m, _) => {
            m.split('\'').nth(1).map(str::to_string)
        }
        EvalAltResult::ErrorFunctionNotFound(sig, _) => sig
            .split('(')
            .next()
            .map(str::trim)
            .map(|f| f.rsplit(['.', ' ']).next().unwrap_or(f).to_string()),
        _ => None,
    };
    let Some(word) = word.filter(|w| !w.is_empty()) else {
        return String::new();
    };
    let mut names: Vec<&str> = super::api::VERBS.iter().map(|v| v.name).collect();
    names.extend(["present_count", "empty", "newest"]);
    match crate::input::did_you_mean(&word, &names) {
        Some(n) if n != word => format!(" (did you mean `{n}`?)"),
        _ => String::new(),
    }
}

/// A Rhai position as 1-based line and column; `None` when it has none.
fn line_col(pos: Position) -> Option<(usize, usize)> {
    Some((pos.line()?, pos.position().unwrap_or(1)))
}

fn located(path: &Path, source: &str, (line, col): (usize, usize), msg: &str) -> anyhow::Error {
    let line = line.max(1);
    let src = crate::input::pointed(line, source.lines().nth(line - 1).unwrap_or(""), col);
    let msg = crate::output::truncated(msg, 600);
    anyhow!("{}:{line}:{col}: {msg}\n{src}", path.display())
}

fn parse_error(path: &Path, source: &str, e: &ParseError) -> anyhow::Error {
    let mut msg = e.err_type().to_string();
    if let Some(i) = msg.find(" (line ") {
        msg.truncate(i);
    }
    let pos = line_col(e.position()).unwrap_or((1, 1));
    located(path, source, pos, &format!("syntax error: {msg}"))
}

/// Where new entries go: a native tier or a script's `place`.
pub enum Placement {
    Native(Tier),
    Script(Box<Script>),
}

/// Name of the scope variable that holds `ctx` for the hook calls.
const CTX_VAR: &str = "kvtier_ctx";

/// How the host calls one script's hooks: a compiled call expression per hook
/// (`on_layer(kvtier_ctx)`), evaluated with a runtime state and function-resolution caches kept
/// from call to call. `Engine::call_fn` would start both afresh on every call, resolving every
/// function the hook calls again, 131,072 times in a seed run.
struct HookCalls {
    global: rhai::GlobalRuntimeState,
    caches: rhai::Caches,
    calls: [AST; 4],
    /// A compiled hook's variables, and the scope its calls into Rhai bind their operands in.
    slots: Vec<Dynamic>,
    operands: Scope<'static>,
    /// Each hook's kept `ctx.param(...)` values ([`fast::Runtime::memo`]).
    memo: [Vec<Option<Dynamic>>; 4],
    /// The `ctx` value a compiled hook handed back, for the next call (`()` before the first
    /// call and after a hook that changed its parameter): boxing a fresh one for every call was
    /// two allocations and two atomic updates of its count.
    ctx: Dynamic,
}

impl HookCalls {
    fn new(engine: &Engine, script: &Script) -> HookCalls {
        let mut global = engine.new_global_runtime_state();
        global.lib.push(script.ast.shared_lib().clone());
        let mut caches = rhai::Caches::new();
        // A cache at the bottom of the stack outlives every call (blocks only pop their own).
        caches.push_fn_resolution_cache();
        let call = |h: Hook| {
            engine
                .compile(format!("{}({CTX_VAR})", h.name()))
                .expect("a call expression compiles")
        };
        HookCalls {
            global,
            caches,
            calls: HOOKS.map(call),
            slots: Vec::new(),
            memo: Default::default(),
            operands: Scope::new(),
            ctx: Dynamic::UNIT,
        }
    }
}

/// A (placement, migration) pair run through one engine and one `ctx`.
pub struct ScriptedPolicy {
    engine: Engine,
    ctx: Ctx,
    scope: Scope<'static>,
    /// Hook calls of the placement script and of the migration script.
    calls: [Option<HookCalls>; 2],
    placement: Placement,
    migration: Option<Script>,
    name: String,
    output: ScriptOutput,
    budget: Arc<Budget>,
}

impl Drop for ScriptedPolicy {
    fn drop(&mut self) {
        let n = self.output.dropped();
        if n > 0 {
            eprintln!(
                "[script] {}: {n} more lines of print/debug output were dropped",
                self.name
            );
        }
    }
}

impl ScriptedPolicy {
    pub fn new(
        engine: Engine,
        (output, budget): (ScriptOutput, Arc<Budget>),
        placement: Placement,
        migration: Option<Script>,
        params: ctx::Params,
        name: String,
    ) -> ScriptedPolicy {
        let ctx = Ctx::new(params, budget.clone());
        let mut scope = Scope::new();
        scope.push(CTX_VAR, ctx.clone());
        let calls = [
            match &placement {
                Placement::Script(s) => Some(HookCalls::new(&engine, s)),
                Placement::Native(_) => None,
            },
            migration.as_ref().map(|s| HookCalls::new(&engine, s)),
        ];
        ScriptedPolicy {
            engine,
            ctx,
            scope,
            calls,
            placement,
            migration,
            name,
            output,
            budget,
        }
    }

    fn call(&mut self, which: Which, h: Hook, sim: &mut Sim) -> Result<Dynamic> {
        let script = match which {
            Which::Placement => match &self.placement {
                Placement::Script(s) => s,
                Placement::Native(_) => unreachable!("native placement is not called"),
            },
            Which::Migration => self.migration.as_ref().expect("checked by has_*"),
        };
        let max_run_ops = self.budget.max_run_ops();
        if let Some(stop) = self.budget.start_call() {
            let e = EvalAltResult::ErrorTerminated(Dynamic::from(stop), Position::NONE);
            return Err(script.runtime_error(h, &e, max_run_ops));
        }
        let (step, layer) = (sim.step, sim.layer);
        let _bound = self.ctx.bind(sim);
        // Only the hooks run, never a script's top-level statements.
        let calls = self.calls[which as usize]
            .as_mut()
            .expect("a script has its hook calls");
        calls.global.num_operations = 0;
        let r = match &script.fast[h as usize] {
            Some(f) => {
                let mut rt = fast::Runtime {
                    engine: &self.engine,
                    global: &mut calls.global,
                    caches: &mut calls.caches,
                    scope: &mut calls.operands,
                    budget: &self.budget,
                    slots: &mut calls.slots,
                    memo: &mut calls.memo[h as usize],
                    flow: Default::default(),
                };
                if !calls.ctx.is::<Ctx>() {
                    calls.ctx = Dynamic::from(self.ctx.clone());
                }
                f.call(&mut rt, &mut calls.ctx)
            }
            None => {
                let call = &calls.calls[h as usize];
                #[allow(deprecated)] // the one raw call that keeps caches between calls (internals)
                self.engine
                    .eval_statements_raw(
                        &mut calls.global,
                        &mut calls.caches,
                        &mut self.scope,
                        call.statements(),
                    )
                    // As `call_fn` does: an error inside the hook is the hook's error. Any
                    // other error was raised at the call expression, whose position means
                    // nothing to the script's author: drop it, so the error points at the hook.
                    .map_err(|e| match *e {
                        EvalAltResult::ErrorInFunctionCall(name, _, inner, _)
                            if name == h.name() =>
                        {
                            inner
                        }
                        mut other => {
                            other.set_position(Position::NONE);
                            Box::new(other)
                        }
                    })
            }
        };
        let r = r
            .map_err(|e| script.runtime_error(h, &e, max_run_ops))
            .map_err(|e| {
                // Name where the run was: `file:line:col: in on_layer (step 4, layer 1): ...`.
                let text = format!("{e:#}");
                let hook = format!("in {}:", h.name());
                if e.downcast_ref::<crate::engine::Cancelled>().is_some() || !text.contains(&hook) {
                    e
                } else {
                    let at = match layer {
                        Some(l) => format!(" (step {step}, layer {l})"),
                        None => format!(" (step {step})"),
                    };
                    anyhow!(text.replacen(&hook, &format!("in {}{at}:", h.name()), 1))
                }
            });
        self.budget.end_call();
        r
    }
}

#[derive(Clone, Copy)]
enum Which {
    Placement,
    Migration,
}

impl Policy for ScriptedPolicy {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn past_steps(&self) -> usize {
        crate::trace::PAST_STEPS
    }

    fn place(&mut self, sim: &mut Sim, _layer: usize) -> Result<Tier> {
        if let Placement::Native(t) = self.placement {
            return Ok(t);
        }
        let v = self.call(Which::Placement, Hook::Place, sim)?;
        if let Some(s) = v.read_lock::<rhai::ImmutableString>() {
            match s.as_str() {
                "hbm" => return Ok(Tier::Hbm),
                "ext" => return Ok(Tier::Ext),
                _ => {}
            }
        }
        let Placement::Script(script) = &self.placement else {
            unreachable!()
        };
        let shown = if v.is_string() {
            format!("{:?}", v.to_string())
        } else {
            // Script-facing names (`Ctx`, `TokenSet`), not Rust paths.
            let name = self.engine.map_type_name(v.type_name());
            match v.type_name() {
                t if t.contains("::") => format!("a {name}"),
                _ => format!("{name} {v}"),
            }
        };
        Err(script.value_error(
            Hook::Place,
            &format!("place must return \"hbm\" or \"ext\", got {shown}"),
        ))
    }

    fn has_initial(&self) -> bool {
        matches!(&self.placement, Placement::Script(s) if s.has(Hook::Initial))
    }

    fn initial(&mut self, sim: &mut Sim, layer: usize) -> Result<Option<TokenSet>> {
        let v = self.call(Which::Placement, Hook::Initial, sim)?;
        if v.is_unit() {
            return Ok(None);
        }
        let Placement::Script(script) = &self.placement else {
            unreachable!("checked by has_initial")
        };
        let Some(set) = v.read_lock::<ctx::ScriptSet>() else {
            let name = self.engine.map_type_name(v.type_name());
            return Err(script.value_error(
                Hook::Initial,
                &format!("initial must return a TokenSet of prefill positions or (), got {name}"),
            ));
        };
        let p = sim.sizes.prefill;
        if let Some(last) = set.set.iter_rev().next().filter(|&x| x >= p) {
            return Err(script.value_error(
                Hook::Initial,
                &format!(
                    "initial returned position {last} at layer {layer}: only prefill positions 0..{p} exist before decode"
                ),
            ));
        }
        Ok(Some(set.set.clone()))
    }

    fn has_on_step(&self) -> bool {
        self.migration.as_ref().is_some_and(|m| m.has(Hook::OnStep))
    }

    fn on_step(&mut self, sim: &mut Sim) -> Result<()> {
        self.call(Which::Migration, Hook::OnStep, sim).map(drop)
    }

    fn has_on_layer(&self) -> bool {
        self.migration
            .as_ref()
            .is_some_and(|m| m.has(Hook::OnLayer))
    }

    fn on_layer(&mut self, sim: &mut Sim, _layer: usize) -> Result<()> {
        self.call(Which::Migration, Hook::OnLayer, sim).map(drop)
    }
}
