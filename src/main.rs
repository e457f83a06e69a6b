//! The `kvtier` command line: parses arguments, calls the library, prints. Every error exits
//! with code 2 and a message naming the file, line or field.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

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
        /// Placement: a native name (`hbm`, `ext`); default: the scenario's `policy.placement`.
        #[arg(long)]
        placement: Option<String>,
        /// Write the per-sublayer results (SPEC 9 CSV) to this file.
        #[arg(long)]
        csv: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Scenario files.
    Scenario {
        #[command(subcommand)]
        command: ScenarioCommand,
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
    },
}

#[derive(Subcommand)]
enum ScenarioCommand {
    /// Print the sizes derived from a scenario.
    Show { file: PathBuf },
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
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
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
            csv,
            format,
        } => cli::run(&scenario, placement.as_deref(), csv.as_deref(), format),
        Command::Scenario {
            command: ScenarioCommand::Show { file },
        } => cli::scenario_show(&file),
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
            command: TraceCommand::Stats { input, format },
        } => cli::trace_stats(&input, format),
        Command::Bench {
            scenario,
            repeat,
            prefill,
            placement,
        } => cli::bench(&scenario, repeat, &prefill, placement.as_deref()),
    }
}
