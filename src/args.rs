//! The command line's arguments (clap): every subcommand, its flags and its help with examples.
//! `main.rs` dispatches them to `cli.rs`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use kvtier::compare::GroupBy;
use kvtier::results::Format;

#[derive(Parser)]
#[command(
    name = "kvtier",
    version,
    about = "Simulate KV-cache and weight placement across HBM and external memory during LLM decode",
    after_help = "Start here:\n  kvtier compare scenarios/seed-w100.toml        the seed's 5 x 7 strategies, ranked\n  kvtier policies                                the built-in strategies\n  kvtier run scenarios/tiny.toml --format json   one run, as a record\n\nEvery subcommand's --help ends with examples. Shell completions: `kvtier completions bash`;\nthe manual page: `kvtier man > kvtier.1`."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run one scenario and print its summary.
    #[command(
        after_help = "Examples:\n  kvtier run scenarios/seed-w100.toml --placement split_token --migration alpha\n  kvtier run scenarios/tiny.toml --csv tiny.csv --format json -o tiny.json\n  kvtier run scenarios/seed-w100.toml --migration alpha --param lookahead=4 --plot plots/"
    )]
    Run {
        /// Scenario file (TOML; every field in docs/scenario.md).
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
        /// Write the per-sublayer results (SPEC 9 CSV) to this file, and its metadata to
        /// FILE.meta.json.
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        /// Output format: a table, markdown, or a tidy record (CSV, JSON).
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Write the output to this file (atomically) instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Write charts (SVG, PNG and a CSV of the numbers plotted) into this folder.
        #[arg(long, value_name = "DIR")]
        plot: Option<PathBuf>,
    },
    /// Scenario files.
    #[command(after_help = "Example:\n  kvtier scenario show scenarios/seed-w100.toml")]
    Scenario {
        #[command(subcommand)]
        command: ScenarioCommand,
    },
    /// Hardware and model presets: list them with their key figures, or print one with its
    /// sources (`kvtier presets show gh200`).
    #[command(after_help = "Examples:\n  kvtier presets\n  kvtier presets show llama-3.1-70b")]
    Presets {
        #[command(subcommand)]
        command: Option<PresetsCommand>,
    },
    /// The reference strategies built into kvtier: list them with what each does, or print one
    /// to copy and edit (`kvtier policies show alpha > my_alpha.rhai`).
    #[command(after_help = "Examples:\n  kvtier policies\n  kvtier policies show lru")]
    Policies {
        #[command(subcommand)]
        command: Option<PoliciesCommand>,
    },
    /// Skip traces.
    #[command(
        after_help = "Examples:\n  kvtier trace gen scenarios/seed-w100.toml -o seed.kvtb\n  kvtier trace stats traces/essay-1k-mass90.kvtrace"
    )]
    Trace {
        #[command(subcommand)]
        command: TraceCommand,
    },
    /// Time runs of a scenario (release builds) and print medians.
    #[command(
        after_help = "Examples:\n  kvtier bench scenarios/seed-w100.toml --repeat 9\n  kvtier bench scenarios/seed-w100.toml --floor --repeat 7\n  kvtier bench scenarios/seed-w100.toml --all\n  kvtier bench scenarios/seed-w100.toml --placement prefer_hbm --migration alpha --modes sync,async"
    )]
    Bench {
        /// Scenario file (TOML; every field in docs/scenario.md).
        scenario: PathBuf,
        /// Runs per configuration.
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        /// Extra prefill lengths to run, to show how time grows with context.
        #[arg(long, value_delimiter = ',')]
        prefill: Vec<u64>,
        /// Placement, as for `run` (default: the native `hbm`).
        #[arg(long)]
        placement: Option<String>,
        /// Migration, as for `run` (default: `none`).
        #[arg(long)]
        migration: Option<String>,
        /// Script parameter (repeatable).
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Run each configuration in these migration modes (`sync`, `async`), interleaved run
        /// by run, and print each mode's median as a ratio to the first mode's.
        #[arg(long, value_delimiter = ',', value_name = "MODE,...")]
        modes: Vec<kvtier::scenario::MigrationMode>,
        /// Ratios: also time the floor (the bare accounting of the scenario, trace in memory),
        /// the trace generation alone and the engine's own CPU time, and print the native run
        /// against the floor and the generation against the engine.
        #[arg(long)]
        floor: bool,
        /// Ratios: also time every reference pair (policies/placement x policies/migration)
        /// against the native run.
        #[arg(long)]
        pairs: bool,
        /// Ratios: also run the reference pairs as one comparison, against the sum of their
        /// one-by-one times (implies --pairs).
        #[arg(long)]
        compare: bool,
        /// Ratios: also time the native run at this prefill, per 1K positions, against the
        /// scenario's own, with its peak RSS and its engine's CPU (with --floor, also the floor
        /// at this prefill), each per 1K positions against the scenario's own.
        #[arg(long, value_name = "PREFILL")]
        long: Option<u64>,
        /// Ratios: also time prefer_hbm + alpha with the v2 features on (async copies, KV blocks,
        /// compute) against the same pair without them.
        #[arg(long)]
        v2: bool,
        /// Ratios: also time the trace generation alone and the native run's engine with the
        /// calibrated heavy-hitter profile (its own defaults, on the scenario's model and
        /// sizes), and print the generation against that engine.
        #[arg(long)]
        calibrated: bool,
        /// Ratios: all of the above, with --long 1000000.
        #[arg(long)]
        all: bool,
    },
    /// Run every (placement, migration) pair of a scenario, in parallel, and rank them.
    #[command(
        after_help = "Examples:\n  kvtier compare scenarios/seed-w100.toml\n  kvtier compare scenarios/seed-w80.toml --by placement --format markdown\n  kvtier compare scenarios/seed-w100.toml --placement prefer_hbm --migration prior my/mine.rhai none\n  kvtier compare scenarios/seed-w100.toml --baselines --best-static --format csv -o seed.csv"
    )]
    Compare {
        /// Scenario file (TOML; every field in docs/scenario.md).
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
        /// Output format: a table, markdown, or tidy records (CSV, JSON: one per pair).
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Write the output to this file (atomically) instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Group rows: `placement` gives one block per placement, as the seed's plots.
        #[arg(long, value_enum, default_value = "none")]
        by: GroupBy,
        /// Write each pair's per-sublayer CSV (and its .meta.json) into this folder.
        #[arg(long, value_name = "DIR")]
        csv_dir: Option<PathBuf>,
        /// Write charts (SVG, PNG and a CSV of the numbers plotted) into this folder.
        #[arg(long, value_name = "DIR")]
        plot: Option<PathBuf>,
    },
    /// Run every pair of a scenario and write one self-contained HTML report: the scenario's
    /// derived sizes, the comparison table and the charts (inline SVG, nothing fetched).
    #[command(
        after_help = "Examples:\n  kvtier report scenarios/seed-w100.toml -o report.html\n  kvtier report scenarios/gh200-llama70b.toml --baselines --best-static -o gh200.html"
    )]
    Report {
        /// Scenario file (TOML; every field in docs/scenario.md).
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
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
    /// Run a comparison, then re-run the pairs each saved file affects and print the table again.
    #[command(
        after_help = "Examples:\n  kvtier watch scenarios/seed-w100.toml --placement my/place.rhai --migration alpha\n  kvtier watch scenarios/tiny.toml --json-lines"
    )]
    Watch {
        /// Scenario file (TOML; every field in docs/scenario.md).
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
    #[command(
        after_help = "Examples:\n  kvtier sweep scenarios/seed-w100.toml --vary initial.weights_on_hbm=0.5..1.0:0.1 --migration none alpha --plot plots/\n  kvtier sweep scenarios/seed-w100.toml --vary memory.migration=sync,async --vary scenario=seed-w100.toml,seed-w80.toml --format csv -o sweep.csv\n  kvtier sweep scenarios/seed-w100.toml --vary workload.batch=1,4,16 --shard 1/4 -o part1.json"
    )]
    Sweep {
        /// Scenario file (TOML; every field in docs/scenario.md).
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
        /// Script parameter for every run (repeatable).
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
        /// Output format: a table, markdown, or tidy records (CSV, JSON: one per run); with
        /// --shard: the JSON result file.
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Write each run's per-sublayer CSV (and its .meta.json) into this folder.
        #[arg(long, value_name = "DIR")]
        csv_dir: Option<PathBuf>,
        /// Run only slice I of N (1 <= I <= N) and write its result file for `kvtier merge`.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        /// Write the output to this file (atomically) instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        plot: SweepPlot,
    },
    /// Find the best static schedule of a scenario's trace: which KV entries of each layer stay
    /// on HBM for the whole run (no migration), beside every static placement run as it is.
    #[command(
        after_help = "Examples:\n  kvtier optimize scenarios/seed-w100.toml\n  kvtier optimize scenarios/gh200-llama70b.toml --format json -o best.json"
    )]
    Optimize {
        /// Scenario file (TOML; every field in docs/scenario.md).
        scenario: PathBuf,
        /// Static placements to run beside the search (default: policies/placement and
        /// policies/baselines/placement), each with migration `none`.
        #[arg(long, num_args = 1..)]
        placement: Vec<String>,
        /// Script parameter for the static placements (repeatable).
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// Output format: the per-layer schedule and the comparison as a table or markdown,
        /// records of the static runs (CSV), or everything (JSON).
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Write the output to this file (atomically) instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Run a study file (scenarios/studies/*.toml): a sweep written down.
    #[command(
        after_help = "Examples:\n  kvtier study scenarios/studies/seed-observations.toml\n  kvtier study scenarios/studies/baselines.toml --format markdown -o baselines.md\n  kvtier study scenarios/studies/prefill-kv.toml --shard 2/8 -o part2.json"
    )]
    Study {
        /// Study file (TOML; docs/studies.md).
        file: PathBuf,
        /// Output format: a table, markdown, or tidy records (CSV, JSON: one per run); with
        /// --shard: the JSON result file.
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Write each run's per-sublayer CSV (and its .meta.json) into this folder.
        #[arg(long, value_name = "DIR")]
        csv_dir: Option<PathBuf>,
        /// Run only slice I of N (1 <= I <= N) and write its result file for `kvtier merge`.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        /// Write the output to this file (atomically) instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Check the study and list its points without running anything.
        #[arg(long)]
        list: bool,
        #[command(flatten)]
        plot: SweepPlot,
    },
    /// Combine the result files of a sharded sweep or study and print the whole table.
    #[command(after_help = "Example:\n  kvtier merge results/part-*.json --format csv -o all.csv")]
    Merge {
        /// Result files written with --shard (all shards of one sweep or study).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output format: a table, markdown, or tidy records (CSV, JSON: one per run).
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Write the output to this file (atomically) instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        plot: SweepPlot,
    },
    /// Compile a strategy script and dry-run it on scenarios/tiny.toml.
    #[command(
        after_help = "Examples:\n  kvtier check my/prior_keep_sinks.rhai\n  kvtier check my/place.rhai --scenario scenarios/seed-w100.toml --param batch=8"
    )]
    Check {
        /// The script (.rhai): a placement if it defines `place`, else a migration.
        script: PathBuf,
        /// Scenario of the dry run (default: the built-in tiny scenario).
        #[arg(long, default_value = "scenarios/tiny.toml")]
        scenario: PathBuf,
        /// Script parameter (repeatable).
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
    },
    /// Print the script API (every ctx property and verb, with examples).
    #[command(
        after_help = "Examples:\n  kvtier api > policy-api.md\n  kvtier api --definitions .rhai-defs"
    )]
    Api {
        /// Write Rhai definition files for editors into this folder instead.
        #[arg(long, value_name = "DIR")]
        definitions: Option<PathBuf>,
    },
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  kvtier completions bash > ~/.local/share/bash-completion/completions/kvtier\n  kvtier completions zsh > ~/.zfunc/_kvtier\n  kvtier completions fish > ~/.config/fish/completions/kvtier.fish"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), generated from this help.
    #[command(after_help = "Example:\n  kvtier man > kvtier.1 && man ./kvtier.1")]
    Man,
}

/// The strategies a comparison runs: every placement with every migration.
#[derive(clap::Args, Clone, Debug)]
pub struct PairSpecs {
    /// Placement scripts, names or folders of scripts (default: policies/placement).
    #[arg(long, num_args = 1..)]
    pub placement: Vec<String>,
    /// Migration scripts, names or folders of scripts (default: policies/migration).
    #[arg(long, num_args = 1..)]
    pub migration: Vec<String>,
    /// Script parameter for every pair, overriding the scenario's [policy.params] (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
}

/// `--plot DIR` for sweeps: the chosen metric against each varied key, one line per pair.
#[derive(clap::Args, Clone, Debug)]
pub struct SweepPlot {
    /// Write charts (SVG, PNG and a CSV of the plotted numbers) into this folder.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
    /// What the charts plot: a summary field (decode_time_s, tokens_per_s, x_ideal,
    /// x_placement, placement_bound_s, compute_bound_rows, queued_at_end_bytes, alpha_attn,
    /// alpha_mlp, alpha_bytes, moved_to_hbm_bytes, moved_to_ext_bytes, peak_hbm_kv_bytes).
    #[arg(long, default_value = "decode_time_s")]
    pub metric: String,
}

#[derive(Subcommand)]
pub enum ScenarioCommand {
    /// Print the sizes derived from a scenario.
    #[command(after_help = "Example:\n  kvtier scenario show scenarios/gh200-llama70b.toml")]
    Show {
        /// Scenario file (TOML).
        file: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum PresetsCommand {
    /// Print a preset file: every figure with its source.
    #[command(after_help = "Example:\n  kvtier presets show gh200")]
    Show {
        /// A preset's name, as `kvtier presets` lists them.
        name: String,
    },
}

#[derive(Subcommand)]
pub enum PoliciesCommand {
    /// Print a built-in script.
    #[command(
        after_help = "Examples:\n  kvtier policies show alpha > my_alpha.rhai\n  kvtier policies show placement/lookahead_batch"
    )]
    Show {
        /// A bare name (`alpha`), or `placement/NAME` / `migration/NAME` where both kinds have
        /// one (`lookahead_batch`).
        name: String,
    },
}

#[derive(Subcommand)]
pub enum TraceCommand {
    /// Generate a scenario's synthetic trace (kvtrace v1 text, or binary).
    #[command(
        after_help = "Examples:\n  kvtier trace gen scenarios/seed-w100.toml -o seed.kvtb\n  kvtier trace gen scenarios/tiny.toml -o tiny.kvtrace"
    )]
    Gen {
        /// Scenario file (TOML) whose synthetic trace is generated.
        scenario: PathBuf,
        /// The trace file to write.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// Output format; default: binary when the output ends in `.kvtb`, else text.
        #[arg(long, value_enum)]
        to: Option<kvtier::trace::TraceFormat>,
    },
    /// Convert a trace between kvtrace text and binary (exact both ways).
    #[command(
        after_help = "Example:\n  kvtier trace convert traces/essay-1k-mass90.kvtrace -o essay.kvtb"
    )]
    Convert {
        /// The trace to read (text or binary).
        input: PathBuf,
        /// The trace file to write.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// Output format; default: binary when the output ends in `.kvtb`, else text.
        #[arg(long, value_enum)]
        to: Option<kvtier::trace::TraceFormat>,
        /// Provenance text stored in a binary file (default: where it was converted from).
        #[arg(long)]
        provenance: Option<String>,
    },
    /// Per-layer statistics of a trace file or of a scenario's trace.
    #[command(
        after_help = "Examples:\n  kvtier trace stats traces/essay-1k-mass90.kvtrace\n  kvtier trace stats scenarios/seed-w100.toml --format csv > seed-trace.csv"
    )]
    Stats {
        /// A kvtrace file, or a scenario (.toml) whose trace is used.
        input: PathBuf,
        /// Output format.
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
