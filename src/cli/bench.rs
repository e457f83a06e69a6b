//! `kvtier bench`: timing figures of runs (the default) and the speed ratios of
//! `--floor/--pairs/--compare/--long/--v2/--calibrated/--all` (docs/performance.md).

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use comfy_table::{presets, Table};

use kvtier::results::median;
use kvtier::scenario::{MigrationMode, Scenario};
use kvtier::simulate;

use super::{load_policy, pairs_of};

pub fn bench(
    path: &Path,
    repeat: usize,
    prefills: &[u64],
    placement: Option<&str>,
    migration: Option<&str>,
    params: &[String],
    modes: &[MigrationMode],
) -> Result<()> {
    let base = Scenario::load(path)?;
    let mut sizes = vec![base.clone()];
    for &p in prefills {
        sizes.push(kvtier::bench::with_prefill(&base, p)?);
    }
    if cfg!(debug_assertions) {
        eprintln!("warning: debug build; figures are meaningless (use cargo run --release)");
    }
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    let mut header = vec![
        "prefill",
        "positions",
        "migration mode",
        "runs",
        "median s",
        "min s",
        "median s / 1k positions",
        "decode time (sim) s",
    ];
    if modes.len() > 1 {
        header.push("median / first mode");
    }
    t.set_header(header);
    let mut name = String::new();
    for sc in &sizes {
        // One scenario per mode; runs alternate between them so that a noisy machine slows
        // every mode alike.
        let configs: Vec<Scenario> = if modes.is_empty() {
            vec![sc.clone()]
        } else {
            modes
                .iter()
                .map(|&m| {
                    let mut f = sc.file.clone();
                    f.memory.migration = m;
                    Scenario::from_file(f, Some(path))
                })
                .collect::<Result<_>>()?
        };
        let mut times = vec![Vec::with_capacity(repeat); configs.len()];
        let mut sim_time = vec![0.0; configs.len()];
        for _ in 0..repeat.max(1) {
            for (i, c) in configs.iter().enumerate() {
                // Scripts compile inside the timed region: a user pays for it on every run.
                let start = Instant::now();
                let mut policy = load_policy(c, placement, migration, params)?;
                name = policy.name();
                let s = simulate(c, policy.as_mut(), None)?;
                times[i].push(start.elapsed().as_secs_f64());
                sim_time[i] = s.decode_time_s;
            }
        }
        let medians: Vec<f64> = times.iter_mut().map(|v| median(v)).collect();
        for (i, c) in configs.iter().enumerate() {
            let min = times[i].iter().copied().fold(f64::INFINITY, f64::min);
            let positions = c.sizes.positions();
            let mut row = vec![
                c.sizes.prefill.to_string(),
                positions.to_string(),
                c.file.memory.migration.name().to_string(),
                times[i].len().to_string(),
                format!("{:.4}", medians[i]),
                format!("{min:.4}"),
                format!("{:.6}", medians[i] / positions as f64 * 1000.0),
                format!("{:.6}", sim_time[i]),
            ];
            if modes.len() > 1 {
                row.push(format!("{:.3}", medians[i] / medians[0]));
            }
            t.add_row(row);
        }
    }
    println!(
        "bench: {} with placement {name}, skip source {:?}",
        base.name, base.file.skip.source
    );
    println!("{t}");
    if let Some(mb) = kvtier::bench::peak_rss_mb() {
        println!("peak RSS: {mb:.1} MB");
    }
    Ok(())
}

/// `kvtier bench --floor / --pairs / --compare / --long / --v2 / --calibrated`: the ratios of issue 16.
pub fn bench_ratios(
    path: &Path,
    opts: kvtier::bench::RatioOptions,
    params: &[String],
) -> Result<()> {
    let sc = Scenario::load(path)?;
    if cfg!(debug_assertions) {
        eprintln!("warning: debug build; figures are meaningless (use cargo run --release)");
    }
    let bar = kvtier::output::Progress::new(opts.repeat.max(1), "repeats");
    let lines = kvtier::bench::ratios(&sc, &opts, params, &|| bar.tick())?;
    bar.finish();
    println!(
        "bench: {} ({} positions, skip source {:?}), medians of {} interleaved repeats",
        sc.name,
        sc.sizes.positions(),
        sc.file.skip.source,
        opts.repeat.max(1)
    );
    println!("{}", kvtier::bench::render(&lines));
    if let Some(mb) = kvtier::bench::peak_rss_mb() {
        println!("peak RSS of this process: {mb:.1} MB");
    }
    Ok(())
}

/// The reference pairs (every script under policies/placement with every one under
/// policies/migration), as `kvtier compare` runs them by default.
pub fn reference_pairs() -> Result<Vec<kvtier::compare::Pair>> {
    pairs_of((&[], &[], false))
}
