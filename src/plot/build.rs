//! Building charts from runs: what each chart plots (its lines, bars or cells and the CSV
//! sidecar of exactly those numbers). Not here: drawing ([`super::draw`]).

use super::*;

/// A name safe in a file name: letters, digits, `_`, `-`, `.`; anything else becomes `_`.
pub(super) fn file_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A CSV field, quoted when it needs to be.
pub(super) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub(super) fn opt(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// Every chart of a comparison (or of one run, as a comparison of one row): per placement, the
/// alpha, time, occupancy and bytes-moved charts with one line per migration; the heat map of
/// the best pair; the decode-time bars. `pairs` are the series collected in the same runs.
pub fn charts(c: &Comparison, pairs: &[PairSeries]) -> Vec<Chart> {
    let sub = match &c.idealized {
        Some(mark) => format!("scenario {}, {mark}", c.scenario),
        None => format!("scenario {}", c.scenario),
    };
    let mut out = charts_of(c, pairs);
    for chart in &mut out {
        chart.set_subtitle(&sub);
    }
    out
}

fn charts_of(c: &Comparison, pairs: &[PairSeries]) -> Vec<Chart> {
    let mut placements: Vec<&str> = Vec::new();
    let mut migrations: Vec<&str> = Vec::new();
    for p in pairs {
        if !placements.contains(&p.placement.as_str()) {
            placements.push(&p.placement);
        }
        if !migrations.contains(&p.migration.as_str()) {
            migrations.push(&p.migration);
        }
    }
    let mut out = Vec::new();
    for pl in &placements {
        // One colour per migration, the same in every chart.
        let group: Vec<(usize, &PairSeries)> = pairs
            .iter()
            .filter(|p| p.placement == *pl)
            .map(|p| {
                // Every pair's migration is in the list it was collected from.
                let i = migrations
                    .iter()
                    .position(|m| *m == p.migration)
                    .unwrap_or(0);
                (i, p)
            })
            .collect();
        out.push(alpha_chart(&c.scenario, pl, &group));
        out.push(step_time_chart(&c.scenario, pl, &group));
        out.push(occupancy_chart(&c.scenario, pl, &group));
        out.push(moved_chart(&c.scenario, pl, &group));
    }
    // The heat map of the best pair that ran (rows are best first).
    let best = c.rows.iter().find_map(|r| match r.outcome {
        Outcome::Summary(_) => pairs
            .iter()
            .find(|p| p.placement == r.placement && p.migration == r.migration),
        Outcome::Error(_) => None,
    });
    if let Some(p) = best {
        out.push(heatmap_chart(&c.scenario, p));
    }
    out.push(decode_time_chart(c));
    out
}

/// Bins of a series' decode steps, with the plotted x (the bin's middle step).
pub(super) fn step_bins(s: &StepSeries, max: usize) -> Vec<(usize, usize, f64)> {
    bins(s.steps.len(), max)
        .into_iter()
        .map(|b| {
            let first = s.first_step + b.start;
            let last = s.first_step + b.end - 1;
            (b.start, b.end, (first + last) as f64 / 2.0)
        })
        .collect()
}

pub(super) fn x_range_of(s: &StepSeries) -> (f64, f64) {
    let a = s.first_step as f64;
    let b = (s.first_step + s.steps.len().max(1) - 1) as f64;
    if b > a {
        (a, b)
    } else {
        (a - 0.5, a + 0.5)
    }
}

pub(super) const STEP_X: &str = "decode step n (position generated)";

pub(super) fn binned_note(s: &StepSeries) -> String {
    let b = bins(s.steps.len(), MAX_POINTS);
    match b.first() {
        Some(r) if r.len() > 1 => format!(
            " Plotted as means over bins of {} steps ({} points per line).",
            r.len(),
            b.len()
        ),
        _ => String::new(),
    }
}

/// Alpha over decode steps, averaged over layers, attention and MLP apart: the seed's figure.
pub(super) fn alpha_chart(
    scenario: &str,
    placement: &str,
    group: &[(usize, &PairSeries)],
) -> Chart {
    let mut data = String::from("migration,step_first,step_last,alpha_attn,alpha_mlp\n");
    let mut attn = Vec::new();
    let mut mlp = Vec::new();
    for &(i, p) in group {
        let s = &p.series;
        let (color, dashed) = style_of(i);
        let (mut pa, mut pm) = (Vec::new(), Vec::new());
        for (a, b, x) in step_bins(s, MAX_POINTS) {
            let pts = &s.steps[a..b];
            let sum = |f: fn(&crate::series::StepPoint) -> (f64, u32)| {
                let (s, n) = pts
                    .iter()
                    .map(f)
                    .fold((0.0, 0), |x, y| (x.0 + y.0, x.1 + y.1));
                (n > 0).then(|| s / n as f64)
            };
            let va = sum(|p| (p.attn_alpha_sum, p.attn_rows));
            let vm = sum(|p| (p.mlp_alpha_sum, p.mlp_rows));
            let _ = writeln!(
                data,
                "{},{},{},{},{}",
                csv_field(&p.migration),
                pts[0].step,
                pts[pts.len() - 1].step,
                opt(va),
                opt(vm)
            );
            pa.push((x, va));
            pm.push((x, vm));
        }
        let line = |points| Line {
            label: p.migration.clone(),
            color,
            dashed,
            points,
        };
        attn.push(line(pa));
        mlp.push(line(pm));
    }
    let first = &group[0].1.series;
    let target = first.alpha_target;
    let xr = x_range_of(first);
    for lines in [&mut attn, &mut mlp] {
        lines.push(Line {
            label: format!("alpha target {target:.3}"),
            color: REFERENCE,
            dashed: true,
            points: vec![(xr.0, Some(target)), (xr.1, Some(target))],
        });
    }
    // From a round value below the lowest alpha (and the target) up to 1: at 0..1 the lines of
    // a run that stays near its target would be indistinguishable.
    let panel = |y_desc: &str, lines: Vec<Line>| Panel {
        y_desc: y_desc.into(),
        y_range: Some((alpha_floor(min_y(&lines)), 1.0 + 0.01)),
        lines,
    };
    Chart {
        name: format!("alpha-{}", file_part(placement)),
        caption: format!(
            "{scenario}: alpha (HBM bytes read / all bytes read) per decode step, averaged over layers, attention and MLP apart; placement {placement}, one line per migration.{}",
            binned_note(first)
        ),
        data_csv: data,
        spec: Spec::Lines(LineChart {
            title: format!("alpha, placement {placement}"),
            x_desc: STEP_X.into(),
            x_range: xr,
            x_categories: None,
            markers: false,
            panels: vec![panel("alpha, attention", attn), panel("alpha, MLP", mlp)],
        }),
    }
}

/// A unit for a quantity whose largest value is `max`: (divisor, name).
pub(super) fn byte_unit(max: f64) -> (f64, &'static str) {
    if max >= 1e9 {
        (1e9, "GB")
    } else if max >= 1e6 {
        (1e6, "MB")
    } else if max >= 1e3 {
        (1e3, "kB")
    } else {
        (1.0, "B")
    }
}

pub(super) fn time_unit(max: f64) -> (f64, &'static str) {
    if max >= 1.0 || max == 0.0 {
        (1.0, "s")
    } else if max >= 1e-3 {
        (1e-3, "ms")
    } else {
        (1e-6, "µs")
    }
}

/// Divides every y of the lines by `d`.
pub(super) fn scale_lines(lines: &mut [Line], d: f64) {
    for l in lines {
        for p in &mut l.points {
            p.1 = p.1.map(|y| y / d);
        }
    }
}

pub(super) fn min_y(lines: &[Line]) -> f64 {
    lines
        .iter()
        .flat_map(|l| l.points.iter().filter_map(|p| p.1))
        .fold(1.0, f64::min)
}

/// The lower end of an alpha axis or colour scale: a multiple of 0.05 at least 0.02 below `lo`.
pub(super) fn alpha_floor(lo: f64) -> f64 {
    (((lo - 0.02) * 20.0).floor() / 20.0).clamp(0.0, 0.95)
}

pub(super) fn max_y(lines: &[Line]) -> f64 {
    lines
        .iter()
        .flat_map(|l| l.points.iter().filter_map(|p| p.1))
        .fold(0.0, f64::max)
}

/// Time per decode step (sublayers and step phase), with the ideal bound per step.
pub(super) fn step_time_chart(
    scenario: &str,
    placement: &str,
    group: &[(usize, &PairSeries)],
) -> Chart {
    let mut data = String::from("series,step_first,step_last,time_per_step_s\n");
    let mut lines = Vec::new();
    let mut add =
        |label: &str, color, dashed, s: &StepSeries, f: fn(&crate::series::StepPoint) -> f64| {
            let mut pts = Vec::new();
            for (a, b, x) in step_bins(s, MAX_POINTS) {
                let sl = &s.steps[a..b];
                let v = sl.iter().map(f).sum::<f64>() / sl.len() as f64;
                let _ = writeln!(
                    data,
                    "{},{},{},{}",
                    csv_field(label),
                    sl[0].step,
                    sl[sl.len() - 1].step,
                    v
                );
                pts.push((x, Some(v)));
            }
            lines.push(Line {
                label: label.to_string(),
                color,
                dashed,
                points: pts,
            });
        };
    for &(i, p) in group {
        let (color, dashed) = style_of(i);
        add(&p.migration, color, dashed, &p.series, |p| p.time_s);
    }
    // The bound depends on the trace only: the same for every pair.
    let first = &group[0].1.series;
    add("ideal bound", REFERENCE, true, first, |p| p.bound_s);
    add("placement bound", PLACEMENT, true, first, |p| {
        p.placement_bound_s
    });
    let (d, unit) = time_unit(max_y(&lines));
    scale_lines(&mut lines, d);
    Chart {
        name: format!("step-time-{}", file_part(placement)),
        caption: format!(
            "{scenario}: time per decode step (all sublayers and the step phase) and the ideal and placement bounds per step; placement {placement}, one line per migration.{}",
            binned_note(first)
        ),
        data_csv: data,
        spec: Spec::Lines(LineChart {
            title: format!("time per step, placement {placement}"),
            x_desc: STEP_X.into(),
            x_range: x_range_of(first),
            x_categories: None,
            markers: false,
            panels: vec![Panel {
                y_desc: format!("time per step ({unit})"),
                y_range: None,
                lines,
            }],
        }),
    }
}

/// HBM KV bytes in use after each step (the most over a bin), against the KV budget.
pub(super) fn occupancy_chart(
    scenario: &str,
    placement: &str,
    group: &[(usize, &PairSeries)],
) -> Chart {
    let mut data = String::from("series,step_first,step_last,hbm_kv_bytes\n");
    let mut lines = Vec::new();
    for &(i, p) in group {
        let s = &p.series;
        let (color, dashed) = style_of(i);
        let occ = s.occupancy();
        let mut pts = Vec::new();
        for (a, b, x) in step_bins(s, MAX_POINTS) {
            let v = occ[a..b].iter().copied().max().unwrap_or(0);
            let _ = writeln!(
                data,
                "{},{},{},{}",
                csv_field(&p.migration),
                s.steps[a].step,
                s.steps[b - 1].step,
                v
            );
            pts.push((x, Some(v as f64)));
        }
        lines.push(Line {
            label: p.migration.clone(),
            color,
            dashed,
            points: pts,
        });
    }
    let first = &group[0].1.series;
    let xr = x_range_of(first);
    let budget = first.kv_budget_bytes;
    let _ = writeln!(
        data,
        "KV budget,{},{},{budget}",
        first.first_step,
        first.first_step + first.steps.len().max(1) - 1
    );
    lines.push(Line {
        label: "KV budget".into(),
        color: REFERENCE,
        dashed: true,
        points: vec![(xr.0, Some(budget as f64)), (xr.1, Some(budget as f64))],
    });
    let (d, unit) = byte_unit(max_y(&lines));
    scale_lines(&mut lines, d);
    Chart {
        name: format!("occupancy-{}", file_part(placement)),
        caption: format!(
            "{scenario}: HBM KV bytes in use after each decode step against the KV budget; placement {placement}, one line per migration.{}",
            binned_note(first).replace("means", "maxima")
        ),
        data_csv: data,
        spec: Spec::Lines(LineChart {
            title: format!("HBM KV occupancy, placement {placement}"),
            x_desc: STEP_X.into(),
            x_range: xr,
            x_categories: None,
            markers: false,
            panels: vec![Panel {
                y_desc: format!("HBM KV in use ({unit})"),
                y_range: None,
                lines,
            }],
        }),
    }
}

/// Bytes moved per step, to HBM (migrations and passive installs) and to EXT.
pub(super) fn moved_chart(
    scenario: &str,
    placement: &str,
    group: &[(usize, &PairSeries)],
) -> Chart {
    let mut data = String::from("migration,step_first,step_last,to_hbm_bytes,to_ext_bytes\n");
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for &(i, p) in group {
        let s = &p.series;
        let (color, dashed) = style_of(i);
        let (mut pu, mut pd) = (Vec::new(), Vec::new());
        for (a, b, x) in step_bins(s, MAX_POINTS) {
            let sl = &s.steps[a..b];
            let n = sl.len() as f64;
            let u = sl.iter().map(|p| p.to_hbm as f64).sum::<f64>() / n;
            let dn = sl.iter().map(|p| p.to_ext as f64).sum::<f64>() / n;
            let _ = writeln!(
                data,
                "{},{},{},{u},{dn}",
                csv_field(&p.migration),
                sl[0].step,
                sl[sl.len() - 1].step
            );
            pu.push((x, Some(u)));
            pd.push((x, Some(dn)));
        }
        let line = |points| Line {
            label: p.migration.clone(),
            color,
            dashed,
            points,
        };
        up.push(line(pu));
        down.push(line(pd));
    }
    let (d, unit) = byte_unit(max_y(&up).max(max_y(&down)));
    scale_lines(&mut up, d);
    scale_lines(&mut down, d);
    let first = &group[0].1.series;
    Chart {
        name: format!("moved-{}", file_part(placement)),
        caption: format!(
            "{scenario}: bytes moved per decode step, to HBM (migrations and passive installs) and to EXT; placement {placement}, one line per migration.{}",
            binned_note(first)
        ),
        data_csv: data,
        spec: Spec::Lines(LineChart {
            title: format!("bytes moved per step, placement {placement}"),
            x_desc: STEP_X.into(),
            x_range: x_range_of(first),
            x_categories: None,
            markers: false,
            panels: vec![
                Panel {
                    y_desc: format!("to HBM ({unit}/step)"),
                    y_range: None,
                    lines: up,
                },
                Panel {
                    y_desc: format!("to EXT ({unit}/step)"),
                    y_range: None,
                    lines: down,
                },
            ],
        }),
    }
}

/// Attention alpha per layer and step for one pair.
pub(super) fn heatmap_chart(scenario: &str, p: &PairSeries) -> Chart {
    let s = &p.series;
    let cols = bins(s.steps.len(), HEATMAP_MAX_COLUMNS);
    let mut values = Vec::with_capacity(cols.len() * s.layers);
    let mut data = String::from("layer,step_first,step_last,alpha_attn\n");
    for l in 0..s.layers {
        for b in &cols {
            let (sum, n) = b
                .clone()
                .filter_map(|i| s.attn_alpha_at(i, l))
                .fold((0.0, 0u32), |acc, a| (acc.0 + a, acc.1 + 1));
            let v = (n > 0).then(|| sum / n as f64);
            let _ = writeln!(
                data,
                "{l},{},{},{}",
                s.first_step + b.start,
                s.first_step + b.end - 1,
                opt(v)
            );
            values.push(v);
        }
    }
    let binned = match cols.first() {
        Some(b) if b.len() > 1 => format!(" Each column is the mean over {} steps.", b.len()),
        _ => String::new(),
    };
    let label = format!("{} + {}", p.placement, p.migration);
    Chart {
        name: format!(
            "heatmap-{}__{}",
            file_part(&p.placement),
            file_part(&p.migration)
        ),
        caption: format!(
            "{scenario}: attention alpha per layer and decode step for {label} (the best pair); gray where the layer read nothing (skipped); the white mark on the colour bar is the alpha target.{binned}"
        ),
        data_csv: data,
        spec: Spec::Heat(HeatMap {
            title: format!("attention alpha, {label}"),
            layers: s.layers,
            columns: cols
                .iter()
                .map(|b| (s.first_step + b.start, s.first_step + b.end - 1))
                .collect(),
            lo: alpha_floor(
                values
                    .iter()
                    .flatten()
                    .copied()
                    .fold(s.alpha_target, f64::min),
            ),
            values,
            alpha_target: s.alpha_target,
        }),
    }
}

/// Decode time per pair, best first, with the ideal and placement bounds marked.
pub(super) fn decode_time_chart(c: &Comparison) -> Chart {
    let mut data = String::from(
        "placement,migration,decode_time_s,ideal_bound_s,x_ideal,placement_bound_s,x_placement\n",
    );
    let mut labels = Vec::new();
    let mut values_s = Vec::new();
    for r in &c.rows {
        if let Outcome::Summary(s) = &r.outcome {
            let _ = writeln!(
                data,
                "{},{},{},{},{},{},{}",
                csv_field(&r.placement),
                csv_field(&r.migration),
                s.decode_time_s,
                s.ideal_bound_s,
                s.x_ideal,
                s.placement_bound_s,
                s.x_placement
            );
            labels.push(format!("{} + {}", r.placement, r.migration));
            values_s.push(s.decode_time_s);
        }
    }
    Chart {
        name: "decode-time".into(),
        caption: format!(
            "{}: decode time per pair, best first, each labelled with its multiple of the placement bound (blue dashed line, SPEC 13: KV split at its best per sublayer); the red dashed line is the ideal bound (every byte split freely).",
            c.scenario
        ),
        data_csv: data,
        spec: Spec::Bars(Bars {
            title: format!("decode time, {}", c.scenario),
            labels,
            values_s,
            ideal_s: c.ideal_bound_s,
            placement_s: c.placement_bound_s,
        }),
    }
}

/// One point of a sweep: one pair's metric at one value of the varied key.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepPoint {
    /// The key's value as the user typed it (`0.8`, `inclusive`).
    pub key_value: String,
    /// The pair's label (`prefer_hbm + alpha`); one line per distinct label.
    pub pair: String,
    /// The metric, `None` where the run failed (the line breaks there).
    pub value: Option<f64>,
}

/// A metric against one varied key, one line per pair (the `--plot` chart of `sweep` and
/// `study`). Key values that all parse as numbers give a numeric axis (points sorted by
/// value); otherwise the values are categories in the order they first appear. With several
/// varied keys, call it once per key with the other keys' values folded into `pair`.
///
/// `metric` names the quantity with its unit (`decode_time_s`, `x_ideal`); the chart is named
/// `sweep-METRIC-KEY` and its sidecar has columns `pair,key_value,METRIC`.
/// A swept key's axis name: what the field is, with its unit, then the key itself (what the
/// reader would vary): `weights on HBM (share) · initial.weights_on_hbm`. Keys not in the table
/// (script parameters, rare fields) are shown as they are.
pub(super) fn key_axis_name(key: &str) -> String {
    const NAMES: [(&str, &str); 30] = [
        ("weights_on_hbm", "weights on HBM (share)"),
        ("prefill_kv_on_hbm", "prefill KV on HBM (share)"),
        ("batch", "batch (sequences)"),
        ("prefill", "prefill (positions)"),
        ("decode", "decode (steps)"),
        ("layers", "layers"),
        ("rate", "tokens skipped (share)"),
        ("layer_skip_rate", "layers skipped (share)"),
        ("mlp_skip_rate", "MLP sublayers skipped (share)"),
        ("young_skip", "new entries skipped early (share)"),
        ("bandwidth", "HBM bandwidth"),
        ("capacity", "HBM capacity"),
        ("kv_budget", "HBM KV budget"),
        ("link_bandwidth", "link bandwidth"),
        ("link_read_bandwidth", "link read bandwidth"),
        ("link_write_bandwidth", "link write bandwidth"),
        ("internal_bandwidth", "bandwidth inside EXT"),
        ("copy_read_bandwidth", "copy engine, promotions"),
        ("copy_write_bandwidth", "copy engine, demotions"),
        ("flops", "GPU compute"),
        ("sublayer_overhead", "fixed cost per sublayer"),
        ("block_tokens", "KV block (positions)"),
        ("lookahead", "look-ahead (steps)"),
        ("hierarchy", "memory hierarchy"),
        ("migration", "migration mode"),
        ("link_duplex", "link duplex"),
        ("access", "EXT access"),
        ("overlap", "overlap of the two memories"),
        ("prefill_kv_layout", "prefill KV layout"),
        ("weights_layout", "weights layout"),
    ];
    if key == crate::sweep::SCENARIO_KEY {
        return "scenario file".into();
    }
    let field = key.rsplit('.').next().unwrap_or(key);
    match NAMES.iter().find(|(f, _)| *f == field) {
        // policy.params.lookahead is a script parameter, not the scenario's look-ahead.
        Some((_, name)) if !key.starts_with("policy.params.") => format!("{name} · {key}"),
        _ => key.to_string(),
    }
}

pub fn sweep_chart(metric: &str, key: &str, points: &[SweepPoint]) -> Chart {
    let mut values: Vec<&str> = Vec::new();
    let mut pairs: Vec<&str> = Vec::new();
    for p in points {
        if !values.contains(&p.key_value.as_str()) {
            values.push(&p.key_value);
        }
        if !pairs.contains(&p.pair.as_str()) {
            pairs.push(&p.pair);
        }
    }
    let numeric: Option<Vec<f64>> = values.iter().map(|v| v.trim().parse().ok()).collect();
    let x_of = |v: &str| -> f64 {
        // `values` was collected from these very points.
        let i = values.iter().position(|x| *x == v).unwrap_or(0);
        match &numeric {
            Some(n) => n[i],
            None => i as f64,
        }
    };
    let mut data = format!("pair,key_value,{}\n", csv_field(metric));
    let mut lines = Vec::new();
    for (i, pair) in pairs.iter().enumerate() {
        let (color, dashed) = style_of(i);
        let mut pts: Vec<(f64, Option<f64>)> = Vec::new();
        for p in points.iter().filter(|p| p.pair == *pair) {
            let _ = writeln!(
                data,
                "{},{},{}",
                csv_field(pair),
                csv_field(&p.key_value),
                opt(p.value)
            );
            pts.push((x_of(&p.key_value), p.value));
        }
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        lines.push(Line {
            label: pair.to_string(),
            color,
            dashed,
            points: pts,
        });
    }
    let x_range = match &numeric {
        Some(n) if !n.is_empty() => {
            let lo = n.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = n.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let pad = if hi > lo { (hi - lo) * 0.04 } else { 0.5 };
            (lo - pad, hi + pad)
        }
        _ => (-0.5, values.len().max(1) as f64 - 0.5),
    };
    Chart {
        name: format!("sweep-{}-{}", file_part(metric), file_part(key)),
        caption: format!("{metric} against {key}, one line per pair."),
        data_csv: data,
        spec: Spec::Lines(LineChart {
            title: format!("{} against {key}", crate::sweep_view::column_header(metric)),
            x_desc: key_axis_name(key),
            x_range,
            x_categories: numeric
                .is_none()
                .then(|| values.iter().map(|v| v.to_string()).collect()),
            markers: true,
            panels: vec![Panel {
                y_desc: crate::sweep_view::column_header(metric).to_string(),
                y_range: None,
                lines,
            }],
        }),
    }
}
