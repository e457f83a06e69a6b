//! The `kvtier` command line: parses arguments, calls the library, prints. Every error exits
//! with code 2 and a message naming the file, line or field.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use kvtier::compare::GroupBy;
use kvtier::results::Format;

mod cli;

#[derive(Parser)]
#[command(
    name = "kvtier",
    version,
    about = "Simulate KV-cache and weight placement across HBM and external memory during LLM decode"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one scenario and print its summary.
    Run {
        scenario: PathBuf,
        /// Placement: a native name (`hbm`, `ext`), a script file, or a script's name (looked up
        /// in ./policies/placement/, then among the built-in ones: `kvtier policies`); default:
        /// the scenario's `policy.placement`.
        #[arg(long)]
        placement: Option<String>,
        /// Migration: `none`, a script file, or a script's name (looked up in
        /// ./policies/migration/, then among the built-in ones: `kvtier policies`); default: the
        /// scenario's `policy.migration`.
        #[arg(long)]
        migration: Option<String>,
        /// Script parameter, overriding the scenario's [policy.params] (repeatable).
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Write the per-sublayer results (SPEC 9 CSV) to this file.
        #[arg(long)]
        csv: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Write charts (SVG, PNG and a CSV of the numbers plotted) into this folder.
        #[arg(long, value_name = "DIR")]
        plot: Option<PathBuf>,
    },
    /// Scenario files.
    Scenario {
        #[command(subcommand)]
        command: ScenarioCommand,
    },
    /// Hardware and model presets: list them with their key figures, or print one with its
    /// sources (`kvtier presets show gh200`).
    Presets {
        #[command(subcommand)]
        command: Option<PresetsCommand>,
    },
    /// The reference strategies built into kvtier: list them with what each does, or print one
    /// to copy and edit (`kvtier policies show alpha > my_alpha.rhai`).
    Policies {
        #[command(subcommand)]
        command: Option<PoliciesCommand>,
    },
    /// Skip traces.
    Trace {
        #[command(subcommand)]
        command: TraceCommand,
    },
    /// Time runs of a scenario (release builds) and print medians.
    Bench {
        scenario: PathBuf,
        /// Runs per configuration.
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        /// Extra prefill lengths to run, to show how time grows with context.
        #[arg(long, value_delimiter = ',')]
        prefill: Vec<u64>,
        #[arg(long)]
        placement: Option<String>,
        #[arg(long)]
        migration: Option<String>,
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Run each configuration in these migration modes (`sync`, `async`), interleaved run
        /// by run, and print each mode's median as a ratio to the first mode's.
        #[arg(long, value_delimiter = ',', value_name = "MODE,...")]
        modes: Vec<kvtier::scenario::MigrationMode>,
    },
    /// Run every (placement, migration) pair of a scenario, in parallel, and rank them.
    Compare {
        scenario: PathBuf,
        #[command(flatten)]
        pairs: PairSpecs,
        /// Also run the baselines of deployed systems (policies/baselines: each placement
        /// baseline with migration `none`, each migration baseline with placement `hbm`).
        #[arg(long)]
        baselines: bool,
        /// Also find the best static schedule (as `kvtier optimize`) and show every pair's time
        /// against it ("x best static").
        #[arg(long)]
        best_static: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Group rows: `placement` gives one block per placement, as the seed's plots.
        #[arg(long, value_enum, default_value = "none")]
        by: GroupBy,
        /// Write each pair's per-sublayer CSV into this folder.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Write charts (SVG, PNG and a CSV of the numbers plotted) into this folder.
        #[arg(long, value_name = "DIR")]
        plot: Option<PathBuf>,
    },
    /// Run every pair of a scenario and write one self-contained HTML report: the scenario's
    /// derived sizes, the comparison table and the charts (inline SVG, nothing fetched).
    Report {
        scenario: PathBuf,
        #[command(flatten)]
        pairs: PairSpecs,
        /// Also run the baselines of deployed systems (as `compare --baselines`).
        #[arg(long)]
        baselines: bool,
        /// Also find the best static schedule (as `compare --best-static`).
        #[arg(long)]
        best_static: bool,
        /// The HTML file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Run a comparison, then re-run the pairs each saved file affects and print the table again.
    Watch {
        scenario: PathBuf,
        #[command(flatten)]
        pairs: PairSpecs,
        /// Poll files instead of waiting for the OS's events (network and container mounts).
        #[arg(long)]
        poll: bool,
        /// Print one JSON object per refresh (for editor integrations and tests).
        #[arg(long)]
        json_lines: bool,
        /// Events closer than this are one save.
        #[arg(long, default_value_t = 150, value_parser = clap::value_parser!(u64).range(10..=10_000))]
        debounce_ms: u64,
    },
    /// Run a scenario at every combination of varied fields, for each (placement, migration)
    /// pair, in parallel; one row per run, the varied values first (docs/studies.md).
    Sweep {
        scenario: PathBuf,
        /// KEY=V1,V2,... or KEY=a..b:step (both ends included); KEY is a dotted scenario field
        /// (`memory.hierarchy`, `policy.params.lookahead`). `K1=..;K2=..` varies keys together.
        /// Repeatable: the cartesian product, first --vary slowest.
        #[arg(long, value_name = "KEY=VALUES", required = true)]
        vary: Vec<String>,
        /// Placement scripts, names or folders (default: prefer_hbm).
        #[arg(long, num_args = 1..)]
        placement: Vec<String>,
        /// Migration scripts, names or folders (default: none and alpha).
        #[arg(long, num_args = 1..)]
        migration: Vec<String>,
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Also run the baselines of deployed systems at every point (policies/baselines).
        #[arg(long)]
        baselines: bool,
        /// Also find the best static schedule at every point (a "best static" row and the
        /// x_best_static column).
        #[arg(long)]
        best_static: bool,
        /// Columns to show (Summary fields; default: decode_time_s, tokens_per_s, x_ideal,
        /// alpha_attn, alpha_mlp, moved_to_hbm_bytes, moved_to_ext_bytes).
        #[arg(long, value_delimiter = ',')]
        columns: Vec<String>,
        /// Sort rows by a column (`-column`: descending); default: run order.
        #[arg(long)]
        sort: Option<String>,
        /// Output format (default: table; with --shard: the JSON result file).
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Write each run's per-sublayer CSV into this folder.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Run only slice I of N (1 <= I <= N) and write its result file for `kvtier merge`.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        /// Write the output to this file (atomically) instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        plot: SweepPlot,
    },
    /// Find the best static schedule of a scenario's trace: which KV entries of each layer stay
    /// on HBM for the whole run (no migration), beside every static placement run as it is.
    Optimize {
        scenario: PathBuf,
        /// Static placements to run beside the search (default: policies/placement and
        /// policies/baselines/placement), each with migration `none`.
        #[arg(long, num_args = 1..)]
        placement: Vec<String>,
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Run a study file (scenarios/studies/*.toml): a sweep written down.
    Study {
        file: PathBuf,
        /// Output format (default: table; with --shard: the JSON result file).
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Write each run's per-sublayer CSV into this folder.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Run only slice I of N (1 <= I <= N) and write its result file for `kvtier merge`.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Check the study and list its points without running anything.
        #[arg(long)]
        list: bool,
        #[command(flatten)]
        plot: SweepPlot,
    },
    /// Combine the result files of a sharded sweep or study and print the whole table.
    Merge {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        plot: SweepPlot,
    },
    /// Compile a strategy script and dry-run it on scenarios/tiny.toml.
    Check {
        script: PathBuf,
        /// Scenario of the dry run.
        #[arg(long, default_value = "scenarios/tiny.toml")]
        scenario: PathBuf,
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
    },
    /// Print the script API (every ctx property and verb, with examples).
    Api {
        /// Write Rhai definition files for editors into this folder instead.
        #[arg(long)]
        definitions: Option<PathBuf>,
    },
}

/// The strategies a comparison runs: every placement with every migration.
#[derive(clap::Args, Clone, Debug)]
pub struct PairSpecs {
    /// Placement scripts, names or folders of scripts (default: policies/placement).
    #[arg(long, num_args = 1..)]
    placement: Vec<String>,
    /// Migration scripts, names or folders of scripts (default: policies/migration).
    #[arg(long, num_args = 1..)]
    migration: Vec<String>,
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
}

/// `--plot DIR` for sweeps: the chosen metric against each varied key, one line per pair.
#[derive(clap::Args, Clone, Debug)]
pub struct SweepPlot {
    /// Write charts (SVG, PNG and a CSV of the plotted numbers) into this folder.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// What the charts plot: a summary field (decode_time_s, tokens_per_s, x_ideal,
    /// x_placement, placement_bound_s, compute_bound_rows, queued_at_end_bytes, alpha_attn,
    /// alpha_mlp, alpha_bytes, moved_to_hbm_bytes, moved_to_ext_bytes, peak_hbm_kv_bytes).
    #[arg(long, default_value = "decode_time_s")]
    metric: String,
}

#[derive(Subcommand)]
enum ScenarioCommand {
    /// Print the sizes derived from a scenario.
    Show { file: PathBuf },
}

#[derive(Subcommand)]
enum PresetsCommand {
    /// Print a preset file: every figure with its source.
    Show { name: String },
}

#[derive(Subcommand)]
enum PoliciesCommand {
    /// Print a built-in script. NAME is a bare name (`alpha`), or `placement/NAME` /
    /// `migration/NAME` where both kinds have one (`lookahead_batch`).
    Show { name: String },
}

#[derive(Subcommand)]
enum TraceCommand {
    /// Generate a scenario's synthetic trace as kvtrace v1 text.
    Gen {
        scenario: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
        /// Output format; default: binary when the output ends in `.kvtb`, else text.
        #[arg(long, value_enum)]
        to: Option<kvtier::trace::TraceFormat>,
    },
    /// Convert a trace between kvtrace text and binary (exact both ways).
    Convert {
        input: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
        /// Output format; default: binary when the output ends in `.kvtb`, else text.
        #[arg(long, value_enum)]
        to: Option<kvtier::trace::TraceFormat>,
        /// Provenance text stored in a binary file (default: where it was converted from).
        #[arg(long)]
        provenance: Option<String>,
    },
    /// Per-layer statistics of a trace file or of a scenario's trace.
    Stats {
        /// A kvtrace file, or a scenario (.toml) whose trace is used.
        input: PathBuf,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// The sink share counts reads of positions below this (the same for every trace, so
        /// figures compare).
        #[arg(long, default_value_t = 4)]
        sinks: usize,
        /// The recent share counts reads of the last this many positions.
        #[arg(long, default_value_t = 64)]
        recent: usize,
    },
}

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of our output goes away
    // (`kvtier compare ... | head`) instead of panicking on the failed write.
    #[cfg(unix)]
    // SAFETY: restores the default disposition of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    // SIGINT / SIGTERM: remove the temporary files of outputs being written, then exit as
    // interrupted. (`watch` installs its own handler: it stops cleanly instead.)
    if !matches!(cli.command, Command::Watch { .. }) {
        ctrlc::set_handler(|| {
            kvtier::output::remove_temp_files();
            std::process::exit(130);
        })
        .ok();
    }
    match kvtier::no_panic(|| dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(c: Command) -> Result<()> {
    match c {
        Command::Run {
            scenario,
            placement,
            migration,
            params,
            csv,
            format,
            plot,
        } => cli::run(
            &scenario,
            placement.as_deref(),
            migration.as_deref(),
            &params,
            csv.as_deref(),
            format,
            plot.as_deref(),
        ),
        Command::Compare {
            scenario,
            pairs,
            baselines,
            best_static,
            format,
            by,
            csv,
            plot,
        } => cli::compare(
            &scenario,
            (&pairs.placement, &pairs.migration, baselines),
            best_static,
            &pairs.params,
            format,
            by,
            csv.as_deref(),
            plot.as_deref(),
        ),
        Command::Report {
            scenario,
            pairs,
            baselines,
            best_static,
            output,
        } => cli::report(
            &scenario,
            (&pairs.placement, &pairs.migration, baselines),
            best_static,
            &pairs.params,
            &output,
        ),
        Command::Watch {
            scenario,
            pairs,
            poll,
            json_lines,
            debounce_ms,
        } => cli::watch(kvtier::watch::WatchOptions {
            scenario,
            placements: pairs.placement,
            migrations: pairs.migration,
            params: pairs.params,
            poll,
            json_lines,
            debounce: std::time::Duration::from_millis(debounce_ms),
        }),
        Command::Sweep {
            scenario,
            vary,
            placement,
            migration,
            params,
            baselines,
            best_static,
            columns,
            sort,
            format,
            csv,
            shard,
            output,
            plot,
        } => cli::sweep(cli::SweepArgs {
            scenario,
            vary,
            placements: placement,
            migrations: migration,
            params,
            columns,
            sort,
            format,
            csv,
            shard,
            output,
            plot: plot.plot,
            metric: plot.metric,
            baselines,
            best_static,
        }),
        Command::Optimize {
            scenario,
            placement,
            params,
            format,
        } => cli::optimize(&scenario, &placement, &params, format),
        Command::Study {
            file,
            format,
            csv,
            shard,
            output,
            list,
            plot,
        } => cli::study(
            &file,
            format,
            csv.as_deref(),
            shard.as_deref(),
            output.as_deref(),
            list,
            (plot.plot.as_deref(), &plot.metric),
        ),
        Command::Merge {
            files,
            format,
            output,
            plot,
        } => cli::merge(
            &files,
            format,
            output.as_deref(),
            (plot.plot.as_deref(), &plot.metric),
        ),
        Command::Check {
            script,
            scenario,
            params,
        } => cli::check(&script, &scenario, &params),
        Command::Api { definitions } => cli::api(definitions.as_deref()),
        Command::Scenario {
            command: ScenarioCommand::Show { file },
        } => cli::scenario_show(&file),
        Command::Policies { command: None } => cli::policies(),
        Command::Policies {
            command: Some(PoliciesCommand::Show { name }),
        } => cli::policy_show(&name),
        Command::Presets { command: None } => cli::presets(),
        Command::Presets {
            command: Some(PresetsCommand::Show { name }),
        } => cli::preset_show(&name),
        Command::Trace {
            command:
                TraceCommand::Gen {
                    scenario,
                    output,
                    to,
                },
        } => cli::trace_gen(&scenario, &output, to),
        Command::Trace {
            command:
                TraceCommand::Convert {
                    input,
                    output,
                    to,
                    provenance,
                },
        } => cli::trace_convert(&input, &output, to, provenance),
        Command::Trace {
            command:
                TraceCommand::Stats {
                    input,
                    format,
                    sinks,
                    recent,
                },
        } => cli::trace_stats(&input, format, sinks, recent),
        Command::Bench {
            scenario,
            repeat,
            prefill,
            placement,
            migration,
            params,
            modes,
        } => cli::bench(
            &scenario,
            repeat,
            &prefill,
            placement.as_deref(),
            migration.as_deref(),
            &params,
            &modes,
        ),
    }
}
