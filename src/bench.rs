//! Speed as ratios (`kvtier bench`; docs/performance.md).
//!
//! Absolute times differ between machines, and between minutes on a shared one; ratios of runs
//! measured in one process, interleaved run by run, hold anywhere. So every figure here is
//! measured beside the one it is compared with:
//!
//! - the **floor**: the bare accounting of the scenario (each step and layer's KV read counted
//!   with the same popcounts over the same residency and skip bitsets, and the new entry
//!   written), with the trace already in memory, timed alone: the least any run of the scenario
//!   can cost;
//! - **generation**: the trace produced alone on one thread, and the **engine**: the CPU time of
//!   the run's own thread while its trace is produced on another;
//! - a **pair** against the native `hbm` + `none` run, the **comparison** against the sum of its
//!   pairs run one by one, a **long context** per 1K positions against the scenario's own
//!   (with its engine's CPU and, beside the floor, its floor, each per 1K positions against
//!   the scenario's own), and the **v2 features** against the same pair without them.

use std::time::Instant;

use anyhow::Result;

use crate::compare::Pair;
use crate::memory::{Charges, Memory, Tier};
use crate::policy::{self, Params, PolicyRef};
use crate::results::{median, Summary};
use crate::scenario::{ByteSize, Flops, MigrationMode, Scenario, ScenarioFile};
use crate::trace::{self, StepSkips};

/// CPU seconds of the calling thread so far.
pub fn thread_cpu_s() -> f64 {
    cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU seconds of the whole process so far (every thread).
pub fn process_cpu_s() -> f64 {
    cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn cpu_clock(clock: libc::clockid_t) -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Peak resident memory of this process, in MB (Linux `VmHWM`).
pub fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Resets the peak resident memory to the current one (Linux `clear_refs` 5), so that the next
/// [`peak_rss_mb`] is the peak of what runs in between. Returns whether the kernel allowed it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// What one run cost.
#[derive(Clone, Debug)]
pub struct RunCost {
    pub wall_s: f64,
    /// CPU time of the thread that ran the engine and the policy (script compilation included).
    pub engine_cpu_s: f64,
    /// CPU time of the run's trace thread.
    pub trace_cpu_s: f64,
    pub summary: Summary,
}

/// Runs `pair` on `scenario` (scripts compile inside the timed region: a user pays for it on
/// every run) and says what it cost.
pub fn time_run(scenario: &Scenario, pair: &Pair, params: &Params) -> Result<RunCost> {
    let trace0 = trace::worker_cpu_s();
    let (start, cpu0) = (Instant::now(), thread_cpu_s());
    let mut pol = policy::build_for(scenario, &pair.0, &pair.1, params.clone(), None)?;
    let summary = crate::simulate(scenario, pol.as_mut(), None)?;
    Ok(RunCost {
        wall_s: start.elapsed().as_secs_f64(),
        engine_cpu_s: thread_cpu_s() - cpu0,
        trace_cpu_s: trace::worker_cpu_s() - trace0,
        summary,
    })
}

/// Wall seconds to produce the scenario's whole trace as a run produces it (on the trace
/// threads of [`trace::open`]), consumed by nothing else, and the CPU seconds of those threads.
pub fn time_generation(scenario: &Scenario) -> Result<(f64, f64)> {
    let cpu0 = trace::worker_cpu_s();
    let start = Instant::now();
    let mut src = trace::open(scenario)?;
    let mut buf = StepSkips::default();
    for _ in 0..src.dims().decode {
        src.next_step(&mut buf)?;
    }
    drop(src);
    Ok((start.elapsed().as_secs_f64(), trace::worker_cpu_s() - cpu0))
}

/// The bare accounting of a scenario under the native `hbm` placement.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Floor {
    /// Time of the accounting alone (the trace is produced beforehand, untimed).
    pub seconds: f64,
    /// KV entries read, in all and from EXT.
    pub read_entries: u64,
    pub ext_entries: u64,
}

/// Memory the floor's trace chunk may take: steps are produced a chunk at a time, then
/// accounted, so that a long context does not hold its whole trace, and the chunk stays in the
/// cache as the engine's steps do (they arrive fresh from the trace thread).
const FLOOR_CHUNK_BYTES: usize = 4 << 20;

/// The floor of `scenario`: per step and layer not skipped, the KV read counted with the
/// engine's own popcounts over the residency and skip bitsets, and the new entry written where
/// the native `hbm` placement writes it.
pub fn floor(scenario: &Scenario) -> Result<Floor> {
    let mut src = trace::open_direct(scenario)?;
    let d = src.dims();
    let step_bytes = d.layers * scenario.sizes.positions().div_ceil(64) * 8;
    let per_chunk = (FLOOR_CHUNK_BYTES / step_bytes.max(1)).clamp(1, d.decode.max(1));
    let mut chunk = vec![StepSkips::default(); per_chunk];
    let mut mem = Memory::initial(scenario);
    let mut c = Charges::default();
    let mut out = Floor {
        seconds: 0.0,
        read_entries: 0,
        ext_entries: 0,
    };
    let mut done = 0;
    while done < d.decode {
        let k = per_chunk.min(d.decode - done);
        for buf in &mut chunk[..k] {
            src.next_step(buf)?;
        }
        let start = Instant::now();
        for step in &chunk[..k] {
            for (l, ls) in step.layers.iter().enumerate() {
                if ls.layer {
                    continue;
                }
                let skipped = (ls.token_count > 0).then_some((&ls.tokens, ls.token_count));
                let (read, ext) = mem.read_kv(l, skipped, &mut c);
                mem.write_new(l, step.step, Tier::Hbm, &mut c);
                out.read_entries += read;
                out.ext_entries += ext;
            }
        }
        out.seconds += start.elapsed().as_secs_f64();
        done += k;
    }
    Ok(out)
}

/// The scenario with a different prefill length. An explicit KV budget keeps its headroom over
/// the initial HBM KV, so the budget is reached at the same decode step as in the original.
pub fn with_prefill(base: &Scenario, prefill: u64) -> Result<Scenario> {
    let path = base.path.as_deref();
    let mut f: ScenarioFile = base.file.clone();
    f.workload.prefill = prefill;
    if let Some(budget) = base.file.hbm.kv_budget {
        let headroom = budget.0 - base.sizes.initial_hbm_kv_bytes;
        f.hbm.kv_budget = Some(ByteSize(u64::MAX / 4));
        let probe = Scenario::from_file(f.clone(), path)?;
        f.hbm.kv_budget = Some(ByteSize(probe.sizes.initial_hbm_kv_bytes + headroom));
    }
    Scenario::from_file(f, path)
}

/// The scenario's model and sizes with the calibrated heavy-hitter profile and nothing else of
/// its `[skip]` section (so the profile's own defaults: docs/scenario.md).
pub fn with_calibrated(base: &Scenario) -> Result<Scenario> {
    let mut f: ScenarioFile = base.file.clone();
    f.skip = toml::from_str("source = \"heavy_hitter\"\nprofile = \"calibrated\"")?;
    Scenario::from_file(f, base.path.as_deref())
}

/// The scenario with the v2 features on: async copies, KV blocks of 16 positions (vLLM's
/// default page) and compute at 1,979 TFLOP/s (the FP8 dense rate of the shipped H100/H200
/// presets), each unless the scenario already sets it.
pub fn with_v2(base: &Scenario) -> Result<Scenario> {
    let mut f = base.file.clone();
    f.memory.migration = MigrationMode::Async;
    if f.memory.block_tokens == 1 {
        f.memory.block_tokens = 16;
    }
    if f.gpu.flops.is_none() {
        f.gpu.flops = Some(Flops(1979e12));
    }
    Scenario::from_file(f, base.path.as_deref())
}

/// The native pair (`hbm` + `none`).
pub fn native_pair() -> Pair {
    (
        PolicyRef::Native("hbm".into()),
        PolicyRef::Native("none".into()),
    )
}

/// A bound a ratio should keep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    AtMost(f64),
    AtLeast(f64),
}

impl Target {
    pub fn holds(self, v: f64) -> bool {
        match self {
            Target::AtMost(t) => v <= t,
            Target::AtLeast(t) => v >= t,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::AtMost(t) => write!(f, "<= {t}"),
            Target::AtLeast(t) => write!(f, ">= {t}"),
        }
    }
}

/// One measured figure: its median over the repeats and, where it has one, its ratio to
/// another figure of the same call.
#[derive(Clone, Debug)]
pub struct Line {
    pub what: String,
    /// Seconds (or, for `unit` other than "s", that unit).
    pub median: f64,
    pub min: f64,
    pub unit: &'static str,
    pub runs: usize,
    pub ratio: Option<(f64, String)>,
    pub target: Option<Target>,
}

impl Line {
    fn of(what: impl Into<String>, s: &Samples) -> Line {
        Line {
            what: what.into(),
            median: s.median(),
            min: s.min(),
            unit: "s",
            runs: s.0.len(),
            ratio: None,
            target: None,
        }
    }

    fn against(mut self, value: f64, of: impl Into<String>, target: Option<Target>) -> Line {
        self.ratio = Some((self.median / value, of.into()));
        self.target = target;
        self
    }

    /// Whether the ratio keeps its target (None when there is no target).
    pub fn holds(&self) -> Option<bool> {
        Some(self.target?.holds(self.ratio.as_ref()?.0))
    }
}

/// What `kvtier bench` measures besides the native run.
#[derive(Clone, Debug, Default)]
pub struct RatioOptions {
    pub repeat: usize,
    /// The floor, the generation alone and the engine's own CPU time.
    pub floor: bool,
    /// Pairs to time against the native run.
    pub pairs: Vec<Pair>,
    /// Also run `pairs` as one comparison, against the sum of their one-by-one times.
    pub compare: bool,
    /// A prefill length to time per 1K positions against the scenario's own.
    pub long: Option<u64>,
    /// A pair to time with the v2 features on against the same pair without them.
    pub v2: Option<Pair>,
    /// The generation and the engine with the calibrated heavy-hitter profile.
    pub calibrated: bool,
}

/// Runs everything `o` asks for, `o.repeat` times, interleaved (each repeat runs every
/// configuration once, so a noisy machine slows all alike), and returns the lines in order.
/// `tick` is called after each repeat.
pub fn ratios(
    sc: &Scenario,
    o: &RatioOptions,
    overrides: &[String],
    tick: &dyn Fn(),
) -> Result<Vec<Line>> {
    let params = policy::params(sc, overrides)?;
    let native = native_pair();
    let long_sc = o.long.map(|p| with_prefill(sc, p)).transpose()?;
    let v2_sc = o.v2.as_ref().map(|_| with_v2(sc)).transpose()?;
    let cal_sc = o.calibrated.then(|| with_calibrated(sc)).transpose()?;
    let (mut cal_engine, mut cal_gen, mut cal_gen_cpu) =
        (Samples::default(), Samples::default(), Samples::default());
    let (mut wall, mut engine, mut trace_cpu) =
        (Samples::default(), Samples::default(), Samples::default());
    let (mut fl, mut gen, mut gen_cpu) =
        (Samples::default(), Samples::default(), Samples::default());
    let mut pairs = vec![Samples::default(); o.pairs.len()];
    let mut pairs_cpu = vec![Samples::default(); o.pairs.len()];
    let (mut cmp, mut cmp_cpu) = (Samples::default(), Samples::default());
    let (mut long, mut long_rss) = (Samples::default(), Samples::default());
    let (mut long_engine, mut long_floor) = (Samples::default(), Samples::default());
    let (mut v2_off, mut v2_on) = (Samples::default(), Samples::default());
    for _ in 0..o.repeat.max(1) {
        let r = time_run(sc, &native, &params)?;
        wall.0.push(r.wall_s);
        engine.0.push(r.engine_cpu_s);
        trace_cpu.0.push(r.trace_cpu_s);
        if o.floor {
            fl.0.push(floor(sc)?.seconds);
            let (wall, cpu) = time_generation(sc)?;
            gen.0.push(wall);
            gen_cpu.0.push(cpu);
        }
        for ((p, s), c) in o.pairs.iter().zip(&mut pairs).zip(&mut pairs_cpu) {
            let r = time_run(sc, p, &params)?;
            s.0.push(r.wall_s);
            c.0.push(r.engine_cpu_s);
        }
        if o.compare && !o.pairs.is_empty() {
            let (start, cpu0) = (Instant::now(), process_cpu_s());
            let (c, _) = crate::compare::run_pairs(sc, &o.pairs, overrides, None, false, &|| {})?;
            let w = start.elapsed().as_secs_f64();
            if let Some(e) = c.rows.iter().find_map(|r| match &r.outcome {
                crate::compare::Outcome::Error(e) => Some(e),
                _ => None,
            }) {
                anyhow::bail!("a pair of the comparison failed: {e}");
            }
            cmp.0.push(w);
            cmp_cpu.0.push((process_cpu_s() - cpu0) / w);
        }
        if let Some(l) = &long_sc {
            let reset = reset_peak_rss();
            let r = time_run(l, &native, &params)?;
            long.0.push(r.wall_s);
            long_engine.0.push(r.engine_cpu_s);
            if reset {
                long_rss.0.extend(peak_rss_mb());
            }
            if o.floor {
                long_floor.0.push(floor(l)?.seconds);
            }
        }
        if let (Some(p), Some(v)) = (&o.v2, &v2_sc) {
            v2_off.0.push(time_run(sc, p, &params)?.wall_s);
            v2_on.0.push(time_run(v, p, &params)?.wall_s);
        }
        if let Some(c) = &cal_sc {
            cal_engine
                .0
                .push(time_run(c, &native, &params)?.engine_cpu_s);
            let (wall, cpu) = time_generation(c)?;
            cal_gen.0.push(wall);
            cal_gen_cpu.0.push(cpu);
        }
        tick();
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut lines = Vec::new();
    let native_m = wall.median();
    let mut native_line = Line::of("native run (hbm + none), wall", &wall);
    if o.floor {
        native_line = native_line.against(fl.median(), "floor", Some(Target::AtMost(3.0)));
    }
    lines.push(native_line);
    if o.floor {
        lines.push(Line::of("floor: bare accounting, trace in memory", &fl));
        lines.push(
            Line::of("engine: the run's own thread, CPU", &engine).against(
                fl.median(),
                "floor",
                None,
            ),
        );
        lines.push(Line::of("trace threads of the run, CPU", &trace_cpu));
        lines.push(Line::of("trace generation alone, wall", &gen).against(
            engine.median(),
            "engine",
            Some(Target::AtMost(1.0)),
        ));
        lines.push(Line::of("trace generation alone, CPU", &gen_cpu).against(
            engine.median(),
            "engine",
            None,
        ));
        let what = format!("least native run: (engine + trace CPU) / {cores} cores");
        lines.push(
            Line::of(what, &shared_out(&[&engine, &trace_cpu], cores)).against(
                fl.median(),
                "floor",
                None,
            ),
        );
    }
    for ((p, m), s) in o.pairs.iter().zip(&pairs) {
        let what = format!("pair {} + {}", p.label(), m.label());
        lines.push(Line::of(what, s).against(native_m, "native run", Some(Target::AtMost(3.0))));
    }
    if o.compare && !o.pairs.is_empty() {
        let sum: f64 = pairs.iter().map(Samples::median).sum();
        let what = format!("comparison of the {} pairs", o.pairs.len());
        lines.push(Line::of(what, &cmp).against(
            sum,
            "sum of the pairs",
            Some(Target::AtMost(0.4)),
        ));
        let what = format!("least comparison: the pairs' engine CPU / {cores} cores");
        let cpu: Vec<&Samples> = pairs_cpu.iter().collect();
        lines.push(Line::of(what, &shared_out(&cpu, cores)).against(sum, "sum of the pairs", None));
        let mut busy = Line::of("comparison: CPU time / wall time", &cmp_cpu);
        busy.unit = "cores";
        busy.target = Some(Target::AtLeast(1.8));
        busy.ratio = Some((busy.median, "(cores busy)".into()));
        lines.push(busy);
    }
    if let Some(l) = &long_sc {
        let per_k = |s: &Samples, sc: &Scenario| {
            Samples(
                s.0.iter()
                    .map(|t| t / sc.sizes.positions() as f64 * 1000.0)
                    .collect(),
            )
        };
        // A long-context line: its samples per 1K positions against the scenario's own.
        let against_own = |what: &str, long: &Samples, own: &Samples, of: &str, target| {
            let what = what.replace("{}", &l.sizes.prefill.to_string());
            Line::of(what, &per_k(long, l)).against(
                per_k(own, sc).median(),
                format!("{of} {}", sc.sizes.prefill),
                target,
            )
        };
        lines.push(against_own(
            "native run at prefill {}, per 1K positions",
            &long,
            &wall,
            "per 1K at prefill",
            Some(Target::AtMost(1.3)),
        ));
        // What the same growth costs the engine's own work and the bare accounting: the sets
        // of a million positions are 32 times those of 30,000 and leave the faster caches, so
        // even the floor's popcounts cost more per position (no target: they bound the one
        // above).
        lines.push(against_own(
            "engine at prefill {}, per 1K positions, CPU",
            &long_engine,
            &engine,
            "engine per 1K at",
            None,
        ));
        if o.floor {
            lines.push(against_own(
                "floor at prefill {}, per 1K positions",
                &long_floor,
                &fl,
                "floor per 1K at",
                None,
            ));
        }
        if !long_rss.0.is_empty() {
            let mut rss = Line::of("peak RSS of that run", &long_rss);
            rss.unit = "MB";
            rss.ratio = Some((rss.median / 1024.0, "1 GB".into()));
            rss.target = Some(Target::AtMost(1.0));
            lines.push(rss);
        }
    }
    if let Some((p, m)) = &o.v2 {
        let what = format!(
            "{} + {} with async copies, 16-position blocks, compute",
            p.label(),
            m.label()
        );
        lines.push(Line::of(what, &v2_on).against(
            v2_off.median(),
            "the same pair without",
            Some(Target::AtMost(1.5)),
        ));
    }
    if o.calibrated {
        let engine = cal_engine.median();
        lines.push(Line::of(
            "calibrated profile: engine, the run's own thread, CPU",
            &cal_engine,
        ));
        lines.push(
            Line::of("calibrated profile: trace generation alone, wall", &cal_gen).against(
                engine,
                "engine",
                Some(Target::AtMost(1.0)),
            ),
        );
        lines.push(
            Line::of(
                "calibrated profile: trace generation alone, CPU",
                &cal_gen_cpu,
            )
            .against(engine, "engine", None),
        );
    }
    Ok(lines)
}

/// The lines as a table.
pub fn render(lines: &[Line]) -> String {
    use comfy_table::{presets, Table};
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    t.set_header([
        "what", "runs", "median", "min", "ratio", "of", "target", "holds",
    ]);
    for l in lines {
        let (ratio, of) = match &l.ratio {
            Some((r, of)) => (format!("{r:.3}"), of.clone()),
            None => (String::new(), String::new()),
        };
        let fmt = |v: f64| match l.unit {
            "s" => format!("{v:.4} s"),
            u => format!("{v:.1} {u}"),
        };
        t.add_row([
            l.what.clone(),
            l.runs.to_string(),
            fmt(l.median),
            fmt(l.min),
            ratio,
            of,
            l.target.map(|t| t.to_string()).unwrap_or_default(),
            match l.holds() {
                Some(true) => "yes".into(),
                Some(false) => "NO".into(),
                None => String::new(),
            },
        ]);
    }
    t.to_string()
}

/// Per repeat, the CPU seconds of `parts` together, shared out over `cores`: the least wall time
/// that much work can take on this machine (spread perfectly, nothing saved). For the native
/// run, its engine and trace CPU; for the comparison, the pairs' engine CPU, since sharing the
/// trace saves each pair's trace threads and nothing else (docs/performance.md).
fn shared_out(parts: &[&Samples], cores: usize) -> Samples {
    let repeats = parts.iter().map(|p| p.0.len()).min().unwrap_or(0);
    Samples(
        (0..repeats)
            .map(|k| parts.iter().map(|p| p.0[k]).sum::<f64>() / cores.max(1) as f64)
            .collect(),
    )
}

/// Times of one configuration over the interleaved repeats.
#[derive(Clone, Debug, Default)]
pub struct Samples(pub Vec<f64>);

impl Samples {
    pub fn median(&self) -> f64 {
        median(&mut self.0.clone())
    }
    pub fn min(&self) -> f64 {
        self.0.iter().copied().fold(f64::INFINITY, f64::min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Scenario {
        Scenario::from_toml(
            "name = \"floor\"\nseed = 3\n\
             [model]\nlayers = 4\nparams = 1e6\ndtype_bytes = 2\nkv_bytes = \"1 KB\"\n\
             [workload]\nprefill = 300\ndecode = 40\n\
             [hbm]\ncapacity = \"3.5 MB\"\nbandwidth = 1000\nkv_budget = \"1.3 MB\"\n\
             [ext]\nlink_bandwidth = 100\ninternal_bandwidth = 200\n\
             [skip]\nsource = \"heavy_hitter\"\nrate = 0.4\nlayer_skip_rate = 0.1\n",
            None,
        )
        .unwrap()
    }

    #[test]
    fn floor_counts_what_the_native_run_reads() {
        // The floor's accounting is the native run's: with every weight on HBM, the EXT bytes
        // the run reads are the EXT entries the floor counts times k (1 KB), and the KV bytes
        // it reads from HBM are the floor's other entries times k.
        let sc = small();
        let f = floor(&sc).unwrap();
        let run = time_run(&sc, &native_pair(), &Params::new()).unwrap();
        let k = sc.sizes.entry_bytes;
        assert!(f.ext_entries > 0 && f.read_entries > f.ext_entries, "{f:?}");
        assert_eq!(run.summary.ext_read_bytes, f.ext_entries * k);
        assert!(run.summary.hbm_read_bytes > (f.read_entries - f.ext_entries) * k);
    }

    #[test]
    fn cpu_shared_out_over_the_cores_repeat_by_repeat() {
        // Repeat 1: (0.3 + 0.1) / 2 = 0.2; repeat 2: (0.5 + 0.3) / 2 = 0.4; a third sample of
        // one part alone has no partner and is left out.
        let (a, b) = (Samples(vec![0.3, 0.5, 9.0]), Samples(vec![0.1, 0.3]));
        let s = shared_out(&[&a, &b], 2);
        assert_eq!(s.0.len(), 2);
        assert!(
            (s.0[0] - 0.2).abs() < 1e-12 && (s.0[1] - 0.4).abs() < 1e-12,
            "{:?}",
            s.0
        );
        assert!(shared_out(&[], 2).0.is_empty());
    }

    #[test]
    fn the_calibrated_variant_takes_the_profiles_own_defaults() -> Result<()> {
        // `small()` sets a rate of its own; the variant drops it for the profile's 0.65, and
        // takes per-position pages, keep 0.3 and one sink (docs/scenario.md).
        let sc = small();
        let c = with_calibrated(&sc)?;
        let k = &c.file.skip;
        assert_eq!(k.profile, crate::scenario::SkipProfile::Calibrated);
        assert_eq!((k.rate, k.page, k.keep, k.sinks), (0.65, 1, 0.3, 1));
        assert_eq!(c.sizes, sc.sizes);
        Ok(())
    }

    #[test]
    fn a_long_context_is_set_against_the_scenarios_own_per_1k() -> Result<()> {
        // `small()` has 340 positions, the long one 3,000 + 40 = 3,040: each long line is its
        // time per 1K positions (t / 3,040 * 1,000) over the same figure of the scenario's own
        // line (t / 340 * 1,000).
        let sc = small();
        let o = RatioOptions {
            repeat: 1,
            floor: true,
            long: Some(3000),
            ..RatioOptions::default()
        };
        let lines = ratios(&sc, &o, &[], &|| {})?;
        let find = |prefix: &str| {
            lines
                .iter()
                .find(|l| l.what.starts_with(prefix))
                .ok_or_else(|| anyhow::anyhow!("no line {prefix:?}"))
        };
        for (long, own) in [
            ("native run at prefill 3000", "native run (hbm + none)"),
            ("engine at prefill 3000", "engine: the run's own thread"),
            ("floor at prefill 3000", "floor: bare accounting"),
        ] {
            let (l, o) = (find(long)?, find(own)?);
            let Some((ratio, of)) = l.ratio.clone() else {
                anyhow::bail!("{long}: no ratio");
            };
            assert!(
                of.contains("per 1K at") && of.ends_with(" 300"),
                "{long}: {of}"
            );
            // The long line's median is already per 1K positions; the scenario's is a time.
            let want = l.median / (o.median / 340.0 * 1000.0);
            assert!(l.median > 0.0 && o.median > 0.0, "{long}");
            assert!(
                (ratio - want).abs() <= 1e-9 * want,
                "{long}: {ratio} against {want}"
            );
        }
        Ok(())
    }

    #[test]
    fn with_prefill_keeps_the_budget_headroom() {
        let sc = small();
        let long = with_prefill(&sc, 3000).unwrap();
        let headroom =
            |s: &Scenario| s.file.hbm.kv_budget.unwrap().0 - s.sizes.initial_hbm_kv_bytes;
        assert_eq!(long.sizes.prefill, 3000);
        assert_eq!(headroom(&long), headroom(&sc));
    }

    #[test]
    fn cpu_clocks_advance() {
        let (t, p) = (thread_cpu_s(), process_cpu_s());
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(thread_cpu_s() > t && process_cpu_s() > p);
    }
}
