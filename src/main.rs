//! The `kvtier` command line: parses arguments, calls the library, prints. Every error exits
//! with code 2 and a message naming the file, line or field.

use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

mod args;
mod cli;

use args::{Cli, Command, PoliciesCommand, PresetsCommand, ScenarioCommand, TraceCommand};

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
            output,
            plot,
        } => cli::run(
            &scenario,
            placement.as_deref(),
            migration.as_deref(),
            &params,
            csv.as_deref(),
            (format, output.as_deref()),
            plot.as_deref(),
        ),
        Command::Compare {
            scenario,
            pairs,
            baselines,
            best_static,
            format,
            output,
            by,
            csv_dir,
            plot,
        } => cli::compare(
            &scenario,
            (&pairs.placement, &pairs.migration, baselines),
            best_static,
            &pairs.params,
            (format, output.as_deref()),
            by,
            csv_dir.as_deref(),
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
            csv_dir,
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
            csv: csv_dir,
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
            output,
        } => cli::optimize(&scenario, &placement, &params, (format, output.as_deref())),
        Command::Study {
            file,
            format,
            csv_dir,
            shard,
            output,
            list,
            plot,
        } => cli::study(
            &file,
            format,
            csv_dir.as_deref(),
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
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "kvtier",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Man => {
            let page = clap_mangen::Man::new(<Cli as clap::CommandFactory>::command());
            let mut out = Vec::new();
            page.render(&mut out)?;
            // Each subcommand's own page after the main one, as `kvtier-run(1)` and so on.
            for sub in <Cli as clap::CommandFactory>::command().get_subcommands() {
                let name = format!("kvtier-{}", sub.get_name());
                clap_mangen::Man::new(sub.clone().name(name)).render(&mut out)?;
            }
            use std::io::Write;
            std::io::stdout().write_all(&out)?;
            Ok(())
        }
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
            floor,
            pairs,
            compare,
            long,
            v2,
            calibrated,
            all,
        } => {
            let ratios = floor || pairs || compare || long.is_some() || v2 || calibrated || all;
            if !ratios {
                return cli::bench(
                    &scenario,
                    repeat,
                    &prefill,
                    placement.as_deref(),
                    migration.as_deref(),
                    &params,
                    &modes,
                );
            }
            if placement.is_some()
                || migration.is_some()
                || !prefill.is_empty()
                || !modes.is_empty()
            {
                anyhow::bail!(
                    "--floor, --pairs, --compare, --long, --v2, --calibrated and --all measure \
                     fixed pairs and sizes: leave out --placement, --migration, --prefill and \
                     --modes"
                );
            }
            let reference = if pairs || compare || all {
                cli::reference_pairs()?
            } else {
                Vec::new()
            };
            let v2_pair = (v2 || all)
                .then(|| -> anyhow::Result<_> {
                    use kvtier::policy::{resolve, Kind};
                    Ok((
                        resolve("prefer_hbm", Kind::Placement, None)?,
                        resolve("alpha", Kind::Migration, None)?,
                    ))
                })
                .transpose()?;
            let opts = kvtier::bench::RatioOptions {
                repeat,
                floor: floor || all,
                pairs: reference,
                compare: compare || all,
                long: long.or(all.then_some(1_000_000)),
                v2: v2_pair,
                calibrated: calibrated || all,
            };
            cli::bench_ratios(&scenario, opts, &params)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every leaf subcommand's help ends with examples, every argument says what it is, and a
    /// flag means the same thing wherever it appears.
    #[test]
    fn help_teaches_and_flags_keep_one_meaning() {
        let root = Cli::command();
        root.clone().debug_assert();
        let mut leaves = Vec::new();
        let mut stack: Vec<(String, clap::Command)> = root
            .get_subcommands()
            .map(|c| (c.get_name().to_string(), c.clone()))
            .collect();
        while let Some((path, c)) = stack.pop() {
            if c.has_subcommands() {
                stack.extend(
                    c.get_subcommands()
                        .map(|s| (format!("{path} {}", s.get_name()), s.clone())),
                );
                assert!(c.get_after_help().is_some(), "{path}: no examples");
            } else {
                leaves.push((path, c));
            }
        }
        assert!(leaves.len() >= 19, "{}", leaves.len());
        for (path, c) in &leaves {
            let after = c
                .get_after_help()
                .map(|s| s.to_string())
                .unwrap_or_default();
            assert!(
                after.starts_with("Example") && after.contains("kvtier "),
                "kvtier {path} --help has no example"
            );
            for a in c.get_arguments() {
                let id = a.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                assert!(
                    a.get_help().is_some() || a.get_long_help().is_some(),
                    "kvtier {path}: argument {id} has no description"
                );
                let names: Vec<String> = a
                    .get_value_names()
                    .map(|v| v.iter().map(|s| s.to_string()).collect())
                    .unwrap_or_default();
                let want = match (a.get_long(), a.get_short()) {
                    (Some("csv"), _) | (_, Some('o')) => Some("FILE"),
                    (Some("csv-dir" | "plot" | "definitions"), _) => Some("DIR"),
                    _ => None,
                };
                if let Some(w) = want {
                    assert_eq!(
                        names,
                        [w],
                        "kvtier {path} --{}",
                        a.get_long().unwrap_or("?")
                    );
                }
            }
        }
    }
}
