//! Command implementations: load, call the library, print.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use comfy_table::{presets, Table};

use kvtier::compare::{Comparison, GroupBy, PairSeries};
use kvtier::engine::Policy;
use kvtier::policy::{self, Kind, PolicyRef};
use kvtier::results::{render, Format, Summary};
use kvtier::scenario::Scenario;
use kvtier::series::StepSeries;
use kvtier::trace::{self, stats, TraceFormat};
use kvtier::{simulate, simulate_into};

mod bench;
pub use bench::{bench, bench_ratios, reference_pairs};

/// The pair a command runs: the command line's choice, else the scenario's.
fn load_pair(
    scenario: &Scenario,
    placement: Option<&str>,
    migration: Option<&str>,
) -> Result<(PolicyRef, PolicyRef)> {
    let p = placement
        .map(|p| policy::resolve(p, Kind::Placement, None))
        .transpose()?;
    let m = migration
        .map(|m| policy::resolve(m, Kind::Migration, None))
        .transpose()?;
    policy::scenario_pair(scenario, p, m)
}

/// The policy a command runs (see [`load_pair`]).
fn load_policy(
    scenario: &Scenario,
    placement: Option<&str>,
    migration: Option<&str>,
    params: &[String],
) -> Result<Box<dyn Policy>> {
    let (p, m) = load_pair(scenario, placement, migration)?;
    policy::build_for(scenario, &p, &m, policy::params(scenario, params)?, None)
}

/// Draws and writes the charts, then says where and how long it took (on stderr, so that
/// `--format json` output stays clean).
fn write_plots(dir: &Path, c: &Comparison, pairs: &[PairSeries]) -> Result<()> {
    write_charts_timed(dir, &kvtier::plot::charts(c, pairs))
}

fn write_charts_timed(dir: &Path, charts: &[kvtier::plot::Chart]) -> Result<()> {
    let start = Instant::now();
    let written = kvtier::plot::write_charts(dir, charts)?;
    eprintln!(
        "plots: {} files in {} ({:.2} s)",
        written.len(),
        dir.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn run(
    path: &Path,
    placement: Option<&str>,
    migration: Option<&str>,
    params: &[String],
    csv: Option<&Path>,
    (format, out): (Format, Option<&Path>),
    plot: Option<&Path>,
) -> Result<()> {
    let scenario = Scenario::load(path)?;
    if let Some(dir) = plot {
        kvtier::plot::check_dir(dir)?;
    }
    let (p, m) = load_pair(&scenario, placement, migration)?;
    let mut policy =
        policy::build_for(&scenario, &p, &m, policy::params(&scenario, params)?, None)?;
    let show = |summary: &Summary| -> Result<()> {
        let record = kvtier::records::RunRecord {
            keys: Vec::new(),
            scenario: &scenario.name,
            placement: &p.label(),
            migration: &m.label(),
            outcome: Ok(summary),
            x_best_static: None,
        };
        let text = match kvtier::records::render(&[record], format) {
            Some(text) => text?,
            None => render(std::slice::from_ref(summary), format)?,
        };
        emit(&text, out)
    };
    let Some(dir) = plot else {
        let summary = simulate(&scenario, policy.as_mut(), csv)?;
        return show(&summary);
    };
    let mut series = StepSeries::new(&scenario);
    let summary = simulate_into(&scenario, policy.as_mut(), csv, &mut series)?;
    show(&summary)?;
    let c = Comparison::of_run(&scenario, p.label(), m.label(), summary);
    let pairs = [PairSeries {
        placement: p.label(),
        migration: m.label(),
        series,
    }];
    write_plots(dir, &c, &pairs)
}

/// The pairs of `compare` and `report`: each spec is a script, a folder of scripts or a native
/// name; none given means every script under `default`.
fn bail_on_failed_pairs(c: &Comparison) -> Result<()> {
    let failed = c
        .rows
        .iter()
        .filter(|r| matches!(r.outcome, kvtier::compare::Outcome::Error(_)))
        .count();
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} pairs failed (their errors are listed with the results)",
            c.rows.len()
        );
    }
    Ok(())
}

/// The placements and migrations given on the command line (or the seed's folders), and
/// whether to add the baseline pairs.
pub type PairArgs<'a> = (&'a [String], &'a [String], bool);

/// The pairs a comparison runs: every placement with every migration, then the baselines.
fn pairs_of((placements, migrations, baselines): PairArgs) -> Result<Vec<kvtier::compare::Pair>> {
    let p = policy::expand_all(placements, &["policies/placement"], Kind::Placement)?;
    let m = policy::expand_all(migrations, &["policies/migration"], Kind::Migration)?;
    let mut pairs = kvtier::compare::cross(&p, &m);
    if baselines {
        pairs.extend(policy::baseline_pairs(Path::new(policy::BASELINES_DIR))?);
    }
    Ok(pairs)
}

#[allow(clippy::too_many_arguments)]
pub fn compare(
    path: &Path,
    which: PairArgs,
    best_static: bool,
    params: &[String],
    (format, out): (Format, Option<&Path>),
    by: GroupBy,
    csv: Option<&Path>,
    plot: Option<&Path>,
) -> Result<()> {
    let scenario = Scenario::load(path)?;
    if let Some(dir) = plot {
        kvtier::plot::check_dir(dir)?;
    }
    let run = pairs_of(which)?;
    let bar = kvtier::output::Progress::new(run.len(), "pairs");
    let (mut c, pairs) =
        kvtier::compare::run_pairs(&scenario, &run, params, csv, plot.is_some(), &|| bar.tick())?;
    bar.finish();
    if best_static {
        kvtier::optimize::set_best_static(&scenario, &mut c)?;
    }
    emit(&kvtier::compare::render(&c, format, by)?, out)?;
    if let Some(dir) = plot {
        if !pairs.is_empty() {
            write_plots(dir, &c, &pairs)?;
        }
    }
    bail_on_failed_pairs(&c)
}

/// `kvtier report`: every pair run once, then one self-contained HTML file.
pub fn report(
    path: &Path,
    which: PairArgs,
    best_static: bool,
    params: &[String],
    out: &Path,
) -> Result<()> {
    let scenario = Scenario::load(path)?;
    let run = pairs_of(which)?;
    let bar = kvtier::output::Progress::new(run.len(), "pairs");
    let (mut c, pairs) =
        kvtier::compare::run_pairs(&scenario, &run, params, None, true, &|| bar.tick())?;
    bar.finish();
    if best_static {
        kvtier::optimize::set_best_static(&scenario, &mut c)?;
    }
    let html = kvtier::report::html(&scenario, &c, &pairs)?;
    kvtier::output::write_atomic(out, |w| {
        w.write_all(html.as_bytes())?;
        Ok(())
    })?;
    println!("wrote {} ({} pairs)", out.display(), c.rows.len());
    bail_on_failed_pairs(&c)
}

/// `kvtier optimize`: the best static schedule beside every static placement.
pub fn optimize(
    path: &Path,
    placements: &[String],
    params: &[String],
    (format, out): (Format, Option<&Path>),
) -> Result<()> {
    let scenario = Scenario::load(path)?;
    let statics = policy::expand_all(
        placements,
        &["policies/placement", "policies/baselines/placement"],
        Kind::Placement,
    )?;
    let r = kvtier::optimize::optimize(&scenario, &statics, params)?;
    let text = match format {
        Format::Json => kvtier::optimize::render_json(&r)?,
        Format::Csv => kvtier::compare::render(&r.comparison, format, GroupBy::None)?,
        Format::Table | Format::Markdown => format!(
            "best static schedule of {}\n{}\n{}\n{}",
            scenario.name,
            kvtier::optimize::describe(&r.optimum),
            kvtier::optimize::render_layers(&r.optimum, format),
            kvtier::compare::render(&r.comparison, format, GroupBy::None)?
        ),
    };
    emit(&text, out)?;
    bail_on_failed_pairs(&r.comparison)
}

/// The default scenario of `kvtier check`.
pub const TINY: &str = "scenarios/tiny.toml";

pub fn check(script: &Path, scenario: &Path, params: &[String]) -> Result<()> {
    // Outside the project folder the default scenario is the copy built into the binary.
    let sc = if scenario == Path::new(TINY) && !scenario.exists() {
        Scenario::from_toml(include_str!("../../scenarios/tiny.toml"), Some(scenario))?
    } else {
        Scenario::load(scenario)?
    };
    println!("{}", policy::check(script, &sc, params)?);
    Ok(())
}

pub fn api(definitions: Option<&Path>) -> Result<()> {
    match definitions {
        None => print!("{}", policy::api::markdown()),
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let engine = policy::new_engine();
            engine
                .definitions()
                .with_headers(true)
                .include_standard_packages(false)
                .write_to_dir(dir)
                .with_context(|| format!("cannot write definitions into {}", dir.display()))?;
            println!("wrote Rhai definitions into {}", dir.display());
        }
    }
    Ok(())
}

pub fn scenario_show(path: &Path) -> Result<()> {
    let sc = Scenario::load(path)?;
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    t.set_header(vec!["quantity", "value"]);
    for (k, v) in kvtier::results::scenario_rows(&sc) {
        t.add_row(vec![k.to_string(), v]);
    }
    println!("scenario: {}", sc.name);
    println!("{t}");
    if !sc.provenance.is_empty() {
        let mut p = Table::new();
        p.load_preset(presets::UTF8_FULL_CONDENSED);
        p.set_header(vec!["field", "value", "from", "source"]);
        for f in &sc.provenance {
            p.add_row(vec![
                f.field.clone(),
                f.value.clone(),
                f.origin.clone(),
                f.source.clone(),
            ]);
        }
        println!("fields from presets (every other field is the scenario file's own):");
        println!("{p}");
    }
    Ok(())
}

/// `kvtier policies`: every built-in reference script, seed strategies first, with the first
/// sentence of its header.
pub fn policies() -> Result<()> {
    use kvtier::policy::builtin::BUILTIN;
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    t.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
    if t.width().is_none() {
        // Not a terminal: wrap the descriptions as a 120-column one would.
        t.set_width(120);
    }
    t.set_header(vec!["name", "kind", "from", "what it does"]);
    for b in BUILTIN {
        t.add_row(vec![
            b.name.to_string(),
            b.kind.dir().to_string(),
            if b.baseline { "baseline" } else { "seed" }.to_string(),
            b.summary(),
        ]);
    }
    println!("{t}");
    println!("Native strategies (no script): placement hbm, ext; migration none.");
    println!("A bare name resolves as a file, then ./policies/<kind>/NAME.rhai (and ./policies/baselines/<kind>/), then the built-in script. `kvtier policies show NAME` prints one to copy.");
    Ok(())
}

/// `kvtier policies show NAME`: one built-in script's text.
pub fn policy_show(name: &str) -> Result<()> {
    use kvtier::policy::builtin::BUILTIN;
    let (kind, bare) = match name.split_once('/') {
        Some((k, n)) if k == "placement" || k == "migration" => (Some(k), n),
        _ => (None, name),
    };
    let bare = bare.trim_end_matches(".rhai");
    let found: Vec<_> = BUILTIN
        .iter()
        .filter(|b| b.name == bare && kind.is_none_or(|k| b.kind.dir() == k))
        .collect();
    match found.as_slice() {
        [b] => {
            print!("{}", b.source);
            Ok(())
        }
        [] => {
            let names: Vec<&str> = BUILTIN.iter().map(|b| b.name).collect();
            let hint = kvtier::input::did_you_mean(bare, &names)
                .map(|n| format!(" (did you mean {n}?)"))
                .unwrap_or_default();
            anyhow::bail!("no built-in strategy {name:?}{hint}: `kvtier policies` lists them")
        }
        several => {
            let options: Vec<String> = several
                .iter()
                .map(|b| format!("{}/{}", b.kind.dir(), b.name))
                .collect();
            anyhow::bail!(
                "{name:?} is both a placement and a migration: say {}",
                options.join(" or ")
            )
        }
    }
}

pub fn presets() -> Result<()> {
    let (hw, models) = kvtier::scenario::preset::listing()?;
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    t.set_header(vec![
        "hardware",
        "HBM",
        "HBM bandwidth",
        "link read",
        "link write",
        "EXT inside",
        "TFLOP/s BF16 / FP8",
    ]);
    for r in hw {
        t.add_row(r);
    }
    let mut m = Table::new();
    m.load_preset(presets::UTF8_FULL_CONDENSED);
    m.set_header(vec![
        "model",
        "layers",
        "parameters",
        "query / KV heads",
        "KV bytes per token (BF16)",
        "attention share",
    ]);
    for r in models {
        m.add_row(r);
    }
    println!("{t}\n{m}");
    println!("Use in a scenario: hardware = \"NAME\" and model = \"NAME\" (or [model] preset = \"NAME\"); `kvtier presets show NAME` prints every figure with its source.");
    Ok(())
}

pub fn preset_show(name: &str) -> Result<()> {
    match kvtier::scenario::preset::text_of(name) {
        Some(t) => {
            print!("{t}");
            Ok(())
        }
        None => anyhow::bail!("no preset {name:?}: `kvtier presets` lists them"),
    }
}

pub fn trace_gen(scenario: &Path, out: &Path, to: Option<TraceFormat>) -> Result<()> {
    let sc = Scenario::load(scenario)?;
    let mut source = trace::open(&sc)?;
    let provenance = format!(
        "kvtier {} trace gen {} (seed {})",
        env!("CARGO_PKG_VERSION"),
        sc.name,
        sc.file.seed
    );
    trace::write_file(out, to, source.as_mut(), &provenance)
}

pub fn trace_convert(
    input: &Path,
    out: &Path,
    to: Option<TraceFormat>,
    provenance: Option<String>,
) -> Result<()> {
    let mut source = trace::open_file(input)?;
    let provenance = provenance
        .or_else(|| source.provenance())
        .unwrap_or_else(|| {
            format!(
                "converted from {}",
                input
                    .file_name()
                    .map(|f| f.to_string_lossy())
                    .unwrap_or_default()
            )
        });
    trace::write_file(out, to, source.as_mut(), &provenance)
}

pub fn trace_stats(input: &Path, format: Format, sinks: usize, recent: usize) -> Result<()> {
    let is_scenario = input.extension().is_some_and(|e| e == "toml");
    let mut source = if is_scenario {
        trace::open(&Scenario::load(input)?)?
    } else {
        trace::open_file(input)?
    };
    let st = stats::compute(source.as_mut(), sinks, recent)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&st)?),
        _ => {
            let mut t = Table::new();
            t.load_preset(if format == Format::Markdown {
                presets::ASCII_MARKDOWN
            } else {
                presets::UTF8_FULL_CONDENSED
            });
            t.set_header(vec![
                "layer",
                "skipped share",
                "jaccard",
                "layer skip",
                "mlp skip",
                "sink share",
                "recent share",
                "young skip",
            ]);
            let row = |name: String, l: &stats::LayerStats| {
                vec![
                    name,
                    format!("{:.4}", l.skipped_share),
                    format!("{:.4}", l.jaccard),
                    format!("{:.4}", l.layer_skip_rate),
                    format!("{:.4}", l.mlp_skip_rate),
                    format!("{:.4}", l.sink_share),
                    format!("{:.4}", l.recent_share),
                    format!("{:.4}", l.young_skip_share),
                ]
            };
            if format == Format::Csv {
                println!("layer,skipped_share,jaccard,layer_skip_rate,mlp_skip_rate,sink_share,recent_share,young_skip_share");
                for (i, l) in st.layers.iter().enumerate() {
                    println!("{}", row(i.to_string(), l).join(","));
                }
                println!("{}", row("all".into(), &st.all).join(","));
                return Ok(());
            }
            for (i, l) in st.layers.iter().enumerate() {
                t.add_row(row(i.to_string(), l));
            }
            t.add_row(row("all".into(), &st.all));
            println!("{t}");
        }
    }
    Ok(())
}

pub fn watch(opts: kvtier::watch::WatchOptions) -> Result<()> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    // SIGINT and SIGTERM end the watch cleanly (exit 0).
    ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::Relaxed))
        .map_err(|e| anyhow::anyhow!("cannot install the signal handler: {e}"))?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    kvtier::watch::watch(opts, &mut out, stop)
}

/// Where a sweep's output goes: `-o FILE` (written atomically) or stdout.
fn emit(text: &str, out: Option<&Path>) -> Result<()> {
    match out {
        Some(p) => kvtier::output::write_atomic(p, |w| {
            w.write_all(text.as_bytes())?;
            Ok(())
        }),
        None => {
            use std::io::Write;
            // A closed pipe (`| head`) is not an error of the sweep.
            match std::io::stdout().lock().write_all(text.as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(anyhow::Error::new(e).context("cannot write to stdout"))
                }
                _ => Ok(()),
            }
        }
    }
}

/// Runs a sweep with a progress bar on stderr when it is a terminal, then prints or writes the
/// rows (a shard: its result file, JSON).
/// `--plot DIR` and `--metric` of a sweep, study or merge.
type SweepPlot<'a> = (Option<&'a Path>, &'a str);

/// Checks the plot options before anything runs.
fn check_sweep_plot((dir, metric): SweepPlot) -> Result<()> {
    if let Some(d) = dir {
        kvtier::plot::check_dir(d)?;
        if !kvtier::sweep_run::PLOT_METRICS.contains(&metric) {
            anyhow::bail!(
                "--metric {metric:?}: choose one of {}",
                kvtier::sweep_run::PLOT_METRICS.join(", ")
            );
        }
    }
    Ok(())
}

fn write_sweep_plots(r: &kvtier::sweep_run::SweepResult, (dir, metric): SweepPlot) -> Result<()> {
    let Some(dir) = dir else { return Ok(()) };
    write_charts_timed(dir, &kvtier::sweep_run::charts(r, metric)?)
}

fn run_sweep(
    sweep: &kvtier::sweep_run::Sweep,
    shard: Option<&str>,
    format: Option<Format>,
    csv: Option<&Path>,
    out: Option<&Path>,
    plot: SweepPlot,
) -> Result<()> {
    check_sweep_plot(plot)?;
    let shard = shard.map(kvtier::sweep_run::Shard::parse).transpose()?;
    if shard.is_some() && format.is_some_and(|f| f != Format::Json) {
        anyhow::bail!("--shard writes the JSON result file for `kvtier merge`; leave out --format");
    }
    let format = if shard.is_some() {
        Format::Json
    } else {
        format.unwrap_or(Format::Table)
    };
    let bar = kvtier::output::Progress::new(sweep.run_list(shard).len(), "runs");
    let result = sweep.run(shard, csv, &|| bar.tick())?;
    bar.finish();
    let text = if shard.is_some() {
        kvtier::sweep_run::result_file(&result)?
    } else {
        kvtier::sweep_run::render(&result, format)?
    };
    emit(&text, out)?;
    write_sweep_plots(&result, plot)?;
    let failed = kvtier::sweep_run::failures(&result);
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} runs failed (their errors are listed with the results)",
            result.rows.len()
        );
    }
    Ok(())
}

/// The command-line sweep's options.
pub struct SweepArgs {
    pub scenario: std::path::PathBuf,
    pub vary: Vec<String>,
    pub placements: Vec<String>,
    pub migrations: Vec<String>,
    pub params: Vec<String>,
    pub columns: Vec<String>,
    pub sort: Option<String>,
    pub format: Option<Format>,
    pub csv: Option<std::path::PathBuf>,
    pub shard: Option<String>,
    pub output: Option<std::path::PathBuf>,
    pub plot: Option<std::path::PathBuf>,
    pub metric: String,
    pub baselines: bool,
    pub best_static: bool,
}

/// Default pairs of a sweep: the scripted PreferHBM with no migration and with AlphaMigration
/// (a full matrix per point is the job of `compare`).
pub const SWEEP_PLACEMENTS: &[&str] = &["prefer_hbm"];
pub const SWEEP_MIGRATIONS: &[&str] = &["none", "alpha"];

pub fn sweep(a: SweepArgs) -> Result<()> {
    if a.vary.is_empty() {
        anyhow::bail!("a sweep needs at least one --vary KEY=V1,V2,... (or KEY=a..b:step)");
    }
    let vary = a
        .vary
        .iter()
        .map(|v| kvtier::sweep::parse_vary(v))
        .collect::<Result<Vec<_>>>()?;
    let placements = policy::expand_all(&a.placements, SWEEP_PLACEMENTS, Kind::Placement)?;
    let migrations = policy::expand_all(&a.migrations, SWEEP_MIGRATIONS, Kind::Migration)?;
    let def = kvtier::sweep_run::SweepDef {
        title: None,
        base: a.scenario.display().to_string(),
        vary,
        placements: placements.iter().map(PolicyRef::label).collect(),
        migrations: migrations.iter().map(PolicyRef::label).collect(),
        extra_pairs: Vec::new(),
        params: a.params,
        columns: a.columns,
        sort: a.sort,
        table_per_point: false,
    };
    let mut extra = if a.baselines {
        policy::baseline_pairs(Path::new(policy::BASELINES_DIR))?
    } else {
        Vec::new()
    };
    if a.best_static {
        extra.push(kvtier::sweep_run::search_pair());
    }
    let sweep = kvtier::sweep_run::Sweep::new(def, &a.scenario, placements, migrations, extra)?;
    run_sweep(
        &sweep,
        a.shard.as_deref(),
        a.format,
        a.csv.as_deref(),
        a.output.as_deref(),
        (a.plot.as_deref(), &a.metric),
    )
}

pub fn study(
    file: &Path,
    format: Option<Format>,
    csv: Option<&Path>,
    shard: Option<&str>,
    output: Option<&Path>,
    list: bool,
    plot: SweepPlot,
) -> Result<()> {
    let sweep = kvtier::study::load(file)?;
    if list {
        let mut text = format!(
            "{}: {} points x {} pairs = {} runs\n",
            file.display(),
            sweep.points.len(),
            sweep.placements.len() * sweep.migrations.len(),
            sweep.runs()
        );
        for p in &sweep.points {
            text += &format!("  {}\n", p.label());
        }
        return emit(&text, output);
    }
    run_sweep(&sweep, shard, format, csv, output, plot)
}

pub fn merge(
    files: &[std::path::PathBuf],
    format: Format,
    output: Option<&Path>,
    plot: SweepPlot,
) -> Result<()> {
    check_sweep_plot(plot)?;
    let mut parts = Vec::with_capacity(files.len());
    for f in files {
        parts.push((f.display().to_string(), kvtier::sweep_run::read_result(f)?));
    }
    let merged = kvtier::sweep_run::merge(&parts)?;
    emit(&kvtier::sweep_run::render(&merged, format)?, output)?;
    write_sweep_plots(&merged, plot)
}
