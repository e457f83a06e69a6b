//! Drawing charts with plotters: axes, ticks, lines, legends, heat maps and bars, the same
//! for SVG and PNG. Not here: what a chart plots ([`super::build`]).

use super::*;

/// A tick label with at most three significant digits and no trailing zeros.
pub(super) fn tick(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    let mag = v.abs().log10().floor() as i32;
    if mag >= 6 || mag <= -5 {
        return format!("{v:.1e}");
    }
    let decimals = (2 - mag).clamp(0, 6) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Legend layout: (entries per row, column width, rows).
pub(super) fn legend_layout(labels: &[String]) -> (usize, u32, usize) {
    // Rough width of a label without a drawing area: DejaVu Sans averages about 0.55 em.
    let widest = labels
        .iter()
        .map(|l| (l.chars().count() as f64 * LEGEND_PX as f64 * 0.58) as u32)
        .max()
        .unwrap_or(0);
    let col = widest + 44;
    let cols = ((WIDTH - 20) / col).max(1) as usize;
    let rows = labels.len().div_ceil(cols);
    (cols, col, rows)
}

pub(super) fn legend_entries(c: &LineChart) -> Vec<(String, RGBColor, bool)> {
    let mut out: Vec<(String, RGBColor, bool)> = Vec::new();
    for p in &c.panels {
        for l in &p.lines {
            if !out.iter().any(|e| e.0 == l.label) {
                out.push((l.label.clone(), l.color, l.dashed));
            }
        }
    }
    out
}

pub(super) fn legend_height(c: &LineChart) -> u32 {
    let labels: Vec<String> = legend_entries(c).into_iter().map(|e| e.0).collect();
    let (_, _, rows) = legend_layout(&labels);
    rows as u32 * (LEGEND_PX + 8) + 12
}

pub(super) fn draw_lines<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &LineChart,
) -> Result<()> {
    let (_, h) = root.dim_in_pixel();
    let legend_h = legend_height(c);
    let (top, legend) = root.split_vertically(h - legend_h);
    let top = titled(&top, &c.title)?;
    let n = c.panels.len();
    let areas = top.split_evenly((n, 1));
    let cats = c.x_categories.clone();
    let x_fmt = move |x: &f64| -> String {
        match &cats {
            Some(names) => {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
                    names[i as usize].clone()
                } else {
                    String::new()
                }
            }
            None => tick(*x),
        }
    };
    let x_labels = match &c.x_categories {
        Some(names) => names.len(),
        // A sweep over a numeric key: a tick per swept value (up to 8), not just the two ends.
        None if c.markers => {
            let mut xs: Vec<f64> = c
                .panels
                .iter()
                .flat_map(|p| p.lines.iter().flat_map(|l| l.points.iter().map(|q| q.0)))
                .collect();
            xs.sort_by(f64::total_cmp);
            xs.dedup();
            xs.len().clamp(2, 8)
        }
        None => {
            let span = (c.x_range.1 - c.x_range.0).round() as usize + 1;
            span.clamp(2, 6)
        }
    };
    let entries = legend_entries(c);
    for (k, (panel, area)) in c.panels.iter().zip(areas.iter()).enumerate() {
        let last = k + 1 == n;
        let builder = || {
            let mut b = ChartBuilder::on(area);
            b.margin_left(6)
                .margin_right(18)
                .margin_top(6)
                .x_label_area_size(if last { 56 } else { 30 })
                .y_label_area_size(78);
            b
        };
        let axes = Axes {
            x_desc: if last { c.x_desc.as_str() } else { "" },
            x_labels,
            x_fmt: &x_fmt,
        };
        if let Some((lo, hi)) = log_range(panel) {
            let chart = builder()
                .build_cartesian_2d(c.x_range.0..c.x_range.1, (lo..hi).log_scale())
                .map_err(de)?;
            draw_panel(chart, panel, c, &entries, &axes, Some(lo))?;
        } else {
            let (y0, y1) = panel.y_range.unwrap_or_else(|| {
                let m = max_y(&panel.lines);
                (0.0, if m > 0.0 { m * 1.08 } else { 1.0 })
            });
            let chart = builder()
                .build_cartesian_2d(c.x_range.0..c.x_range.1, y0..y1)
                .map_err(de)?;
            draw_panel(chart, panel, c, &entries, &axes, None)?;
        }
    }
    draw_legend(&legend, &legend_entries(c))
}

pub(super) fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, RGBColor, bool)],
) -> Result<()> {
    let labels: Vec<String> = entries.iter().map(|e| e.0.clone()).collect();
    let (cols, col_w, _) = legend_layout(&labels);
    let row_h = (LEGEND_PX + 8) as i32;
    for (i, (label, color, dashed)) in entries.iter().enumerate() {
        let x = 14 + (i % cols) as i32 * col_w as i32;
        let y = 4 + (i / cols) as i32 * row_h + row_h / 2;
        let style = ShapeStyle::from(color).stroke_width(2);
        if let Some(shape) = marker_shape(i, *color) {
            let at = (x + 15, y);
            let filled = ShapeStyle::from(color).filled();
            let thin = ShapeStyle::from(color).stroke_width(2);
            match shape {
                0 => area.draw(&(EmptyElement::at(at) + Circle::new((0, 0), MARKER_PX, filled))),
                1 => area.draw(
                    &(EmptyElement::at(at) + TriangleMarker::new((0, 0), MARKER_PX + 1, filled)),
                ),
                2 => area.draw(&(EmptyElement::at(at) + Cross::new((0, 0), MARKER_PX, thin))),
                _ => area.draw(&(EmptyElement::at(at) + Circle::new((0, 0), MARKER_PX, thin))),
            }
            .map_err(de)?;
        }
        if *dashed {
            for s in [0, 12, 24] {
                area.draw(&PathElement::new(vec![(x + s, y), (x + s + 7, y)], style))
                    .map_err(de)?;
            }
        } else {
            area.draw(&PathElement::new(vec![(x, y), (x + 30, y)], style))
                .map_err(de)?;
        }
        area.draw_text(
            label,
            &font(LEGEND_PX).pos(Pos::new(HPos::Left, VPos::Center)),
            (x + 38, y),
        )
        .map_err(de)?;
    }
    Ok(())
}

/// Viridis (matplotlib's perceptually uniform map) at nine stops, linearly interpolated.
pub(super) fn viridis(t: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 9] = [
        (68, 1, 84),
        (71, 44, 122),
        (59, 81, 139),
        (44, 113, 142),
        (33, 144, 141),
        (39, 173, 129),
        (92, 200, 99),
        (170, 220, 50),
        (253, 231, 37),
    ];
    let t = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let i = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Colour levels of the heat map: neighbouring cells of one level are drawn as one rectangle,
/// which keeps the SVG small.
pub(super) const HEAT_LEVELS: f64 = 64.0;

/// The colour level of `v` on a scale from `lo` to 1.
pub(super) fn heat_level(v: Option<f64>, lo: f64) -> Option<u32> {
    v.map(|v| (((v - lo) / (1.0 - lo)).clamp(0.0, 1.0) * (HEAT_LEVELS - 1.0)).round() as u32)
}

pub(super) fn level_color(q: Option<u32>) -> RGBColor {
    match q {
        Some(q) => viridis(q as f64 / (HEAT_LEVELS - 1.0)),
        None => NO_DATA,
    }
}

pub(super) fn draw_heat<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    h: &HeatMap,
) -> Result<()> {
    let root = titled(root, &h.title)?;
    let (w, _) = root.dim_in_pixel();
    let (main, bar) = root.split_horizontally(w - 104);
    let ncols = h.columns.len();
    // A column covering steps a..=b spans a - 0.5 .. b + 0.5, a layer l spans l - 0.5 .. l + 0.5:
    // integer ticks fall on cell centres.
    let x0 = h.columns.first().map_or(0, |c| c.0) as f64 - 0.5;
    let x1 = h.columns.last().map_or(0, |c| c.1) as f64 + 0.5;
    let mut chart = ChartBuilder::on(&main)
        .margin_left(6)
        .margin_right(8)
        .margin_top(6)
        .x_label_area_size(56)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, -0.5f64..h.layers as f64 - 0.5)
        .map_err(de)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(STEP_X)
        .y_desc("layer")
        .axis_desc_style(font(DESC_PX))
        .label_style(font(TICK_PX))
        .x_labels(((x1 - x0) as usize).clamp(2, 6))
        .y_labels(h.layers.clamp(1, 8))
        .x_label_formatter(&|x| {
            if (x - x.round()).abs() < 1e-6 {
                tick(*x)
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| {
            if (y - y.round()).abs() < 1e-6 {
                format!("{}", y.round() as i64)
            } else {
                String::new()
            }
        })
        .draw()
        .map_err(de)?;
    let mut rects = Vec::new();
    for l in 0..h.layers {
        let row = &h.values[l * ncols..(l + 1) * ncols];
        let mut a = 0;
        while a < ncols {
            let q = heat_level(row[a], h.lo);
            let mut b = a + 1;
            while b < ncols && heat_level(row[b], h.lo) == q {
                b += 1;
            }
            let (xa, xb) = (h.columns[a].0 as f64 - 0.5, h.columns[b - 1].1 as f64 + 0.5);
            let y = l as f64;
            rects.push(Rectangle::new(
                [(xa, y - 0.5), (xb, y + 0.5)],
                level_color(q).filled(),
            ));
            a = b;
        }
    }
    chart.draw_series(rects).map_err(de)?;

    // Colour bar, with the alpha target marked.
    let mut cb = ChartBuilder::on(&bar)
        .margin_top(6)
        .margin_left(4)
        .x_label_area_size(56)
        .right_y_label_area_size(74)
        .build_cartesian_2d(0f64..1.0, h.lo..1.0)
        .map_err(de)?;
    cb.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_desc("alpha")
        .axis_desc_style(font(DESC_PX))
        .label_style(font(TICK_PX))
        .y_labels(5)
        .y_label_formatter(&|y| tick(*y))
        .draw()
        .map_err(de)?;
    let n = HEAT_LEVELS as usize;
    let span = 1.0 - h.lo;
    cb.draw_series((0..n).map(|i| {
        let a = h.lo + span * i as f64 / n as f64;
        let b = h.lo + span * (i + 1) as f64 / n as f64;
        Rectangle::new([(0.0, a), (1.0, b)], level_color(Some(i as u32)).filled())
    }))
    .map_err(de)?;
    let t = h.alpha_target;
    cb.draw_series(std::iter::once(PathElement::new(
        vec![(0.0, t), (1.0, t)],
        ShapeStyle::from(&WHITE).stroke_width(2),
    )))
    .map_err(de)?;
    Ok(())
}

pub(super) fn draw_bars<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, b: &Bars) -> Result<()> {
    let root = titled(root, &b.title)?;
    let n = b.labels.len().max(1);
    let max = b
        .values_s
        .iter()
        .copied()
        .chain(b.ideal_s)
        .chain(b.placement_s)
        .fold(0.0, f64::max);
    let (d, unit) = time_unit(max);
    let xmax = if max > 0.0 { max / d * 1.18 } else { 1.0 };
    // Close values: the axis starts near them, so a 0.5% difference shows (and says so).
    let xmin = bars_axis_start(b) / d;
    let xmax = if xmin > 0.0 {
        max / d + (max / d - xmin) * 0.3
    } else {
        xmax
    };
    let label_w = b
        .labels
        .iter()
        .map(|l| root.estimate_text_size(l, &font(TICK_PX)).map(|s| s.0))
        .collect::<Result<Vec<u32>, _>>()
        .map_err(de)?
        .into_iter()
        .max()
        .unwrap_or(40);
    let labels = b.labels.clone();
    let mut chart = ChartBuilder::on(&root)
        .margin_left(6)
        .margin_right(18)
        .margin_top(TICK_PX + 6)
        .x_label_area_size(56)
        .y_label_area_size(label_w + 14)
        .build_cartesian_2d(xmin..xmax, (0..n).into_segmented())
        .map_err(de)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .x_desc(if xmin > 0.0 {
            format!(
                "decode time ({unit}); the axis starts at {}, not 0",
                tick(xmin)
            )
        } else {
            format!("decode time ({unit})")
        })
        .axis_desc_style(font(DESC_PX))
        .label_style(font(TICK_PX))
        .x_labels(6)
        .y_labels(n)
        .x_label_formatter(&|x| tick(*x))
        .y_label_formatter(&|v| match v {
            // Best first, from the top.
            SegmentValue::CenterOf(i) if *i < n => {
                labels.get(n - 1 - *i).cloned().unwrap_or_default()
            }
            _ => String::new(),
        })
        .draw()
        .map_err(de)?;
    let color = PALETTE[0];
    chart
        .draw_series(b.values_s.iter().enumerate().map(|(rank, &v)| {
            let i = n - 1 - rank;
            let mut r = Rectangle::new(
                [
                    (xmin, SegmentValue::Exact(i)),
                    (v / d, SegmentValue::Exact(i + 1)),
                ],
                color.mix(0.85).filled(),
            );
            r.set_margin(4, 4, 0, 0);
            r
        }))
        .map_err(de)?;
    // Bars are labelled with their multiple of the tighter bound there is.
    if let Some(bound) = b.placement_s.or(b.ideal_s) {
        chart
            .draw_series(b.values_s.iter().enumerate().map(|(rank, &v)| {
                let i = n - 1 - rank;
                Text::new(
                    format!(" {} {unit}, {:.4}×", tick(v / d), v / bound),
                    (v / d, SegmentValue::CenterOf(i)),
                    font(TICK_PX - 2).pos(Pos::new(HPos::Left, VPos::Center)),
                )
            }))
            .map_err(de)?;
    }
    // The ideal bound's label sits left of its line, the placement bound's (never smaller)
    // right of its own, so the two never overlap.
    for (bound, name, color, side) in [
        (b.ideal_s, "ideal bound", IDEAL, HPos::Right),
        (b.placement_s, "placement bound", PLACEMENT, HPos::Left),
    ] {
        let Some(bound) = bound else { continue };
        let x = bound / d;
        chart
            .draw_series(DashedLineSeries::new(
                [(x, SegmentValue::Exact(0)), (x, SegmentValue::Exact(n))],
                7,
                5,
                ShapeStyle::from(&color).stroke_width(2),
            ))
            .map_err(de)?;
        chart
            .draw_series(std::iter::once(Text::new(
                format!("{name} {}", tick(x)),
                (x, SegmentValue::Exact(n)),
                font(TICK_PX - 2)
                    .color(&color)
                    .pos(Pos::new(side, VPos::Bottom)),
            )))
            .map_err(de)?;
    }
    Ok(())
}

/// Where the decode-time axis starts: 0, unless every bar and bound lies in the top part of the
/// range (the spread is under a third of the largest value), then a round number a little below
/// the smallest, so that differences of a fraction of a percent are visible.
pub(super) fn bars_axis_start(b: &Bars) -> f64 {
    let all: Vec<f64> = b
        .values_s
        .iter()
        .copied()
        .chain(b.ideal_s)
        .chain(b.placement_s)
        .filter(|v| v.is_finite())
        .collect();
    let (Some(lo), Some(hi)) = (
        all.iter().copied().reduce(f64::min),
        all.iter().copied().reduce(f64::max),
    ) else {
        return 0.0;
    };
    if lo <= 0.0 || hi - lo > hi / 3.0 {
        return 0.0;
    }
    let below = lo - (hi - lo).max(hi * 1e-3) * 0.15;
    // Round down to 1, 2 or 5 times a power of ten, at a tenth of the spread's scale.
    let step = 10f64.powf(((hi - below) / 4.0).log10().floor());
    let start = (below / step).floor() * step;
    start.max(0.0)
}

/// Extra height of a title with a second line.
pub(super) fn subtitle_height(title: &str) -> u32 {
    if title.contains('\n') {
        TICK_PX + 8
    } else {
        0
    }
}

/// Draws a title (its second line, if any, smaller and grey: the scenario and its mark) and
/// returns the area below it.
pub(super) fn titled<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
) -> Result<DrawingArea<DB, Shift>> {
    let Some((first, second)) = title.split_once('\n') else {
        return root.titled(title, font(TITLE_PX)).map_err(de);
    };
    let area = root.titled(first, font(TITLE_PX)).map_err(de)?;
    let (w, _) = area.dim_in_pixel();
    area.draw_text(
        second,
        &font(TICK_PX - 2)
            .color(&RGBColor(90, 90, 90))
            .pos(Pos::new(HPos::Center, VPos::Top)),
        (w as i32 / 2, 0),
    )
    .map_err(de)?;
    let (_, below) = area.split_vertically(TICK_PX + 8);
    Ok(below)
}

/// Markers drawn along each line (and beside its legend entry).
const MARKERS_PER_LINE: usize = 8;
const MARKER_PX: u32 = 4;

/// The marker shape of legend entry `i` (filled circle, triangle, cross, open circle, in turn);
/// `None` for reference lines (bounds, the alpha target), which are told apart by colour and
/// dashes.
pub(super) fn marker_shape(i: usize, color: RGBColor) -> Option<usize> {
    let reference = [REFERENCE, PLACEMENT, IDEAL]
        .iter()
        .any(|r| (r.0, r.1, r.2) == (color.0, color.1, color.2));
    (!reference).then_some(i % 4)
}

/// A line's marker shape and its legend index.
fn marker_of(entries: &[(String, RGBColor, bool)], line: &Line) -> Option<(usize, usize)> {
    let i = entries.iter().position(|e| e.0 == line.label)?;
    marker_shape(i, line.color).map(|s| (s, i))
}

fn draw_markers<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    shape: usize,
    at: &[(f64, f64)],
    color: RGBColor,
) -> Result<()> {
    let filled = ShapeStyle::from(&color).filled();
    let thin = ShapeStyle::from(&color).stroke_width(2);
    let pts = at.iter().copied();
    match shape {
        0 => chart
            .draw_series(pts.map(|p| EmptyElement::at(p) + Circle::new((0, 0), MARKER_PX, filled))),
        1 => chart.draw_series(
            pts.map(|p| EmptyElement::at(p) + TriangleMarker::new((0, 0), MARKER_PX + 1, filled)),
        ),
        2 => chart
            .draw_series(pts.map(|p| EmptyElement::at(p) + Cross::new((0, 0), MARKER_PX, thin))),
        _ => chart
            .draw_series(pts.map(|p| EmptyElement::at(p) + Circle::new((0, 0), MARKER_PX, thin))),
    }
    .map(|_| ())
    .map_err(de)
}

/// The x axis of a line chart's panels.
struct Axes<'a> {
    x_desc: &'a str,
    x_labels: usize,
    x_fmt: &'a dyn Fn(&f64) -> String,
}

/// How many times the largest line's mean may exceed the next largest line's before a panel
/// switches to a log scale (one strategy moving GBs per step would flatten every other line).
const LOG_SCALE_RATIO: f64 = 30.0;

/// A log y range for a panel whose largest line dwarfs the others (by mean, so that one spike
/// does not decide): from the decade below the smallest positive value to a little above the
/// largest. `None` for a linear panel (a fixed range, fewer than two lines with a positive
/// mean, or means within [`LOG_SCALE_RATIO`] of each other).
pub(super) fn log_range(panel: &Panel) -> Option<(f64, f64)> {
    if panel.y_range.is_some() {
        return None;
    }
    let mut means: Vec<f64> = panel
        .lines
        .iter()
        .map(|l| {
            let ys: Vec<f64> = l.points.iter().filter_map(|p| p.1).collect();
            ys.iter().sum::<f64>() / ys.len().max(1) as f64
        })
        .filter(|&m| m > 0.0)
        .collect();
    means.sort_by(|a, b| b.total_cmp(a));
    let (&top, &next) = (means.first()?, means.get(1)?);
    if top < next * LOG_SCALE_RATIO {
        return None;
    }
    let top = max_y(&panel.lines);
    let smallest = panel
        .lines
        .iter()
        .flat_map(|l| l.points.iter().filter_map(|p| p.1))
        .filter(|&y| y > 0.0)
        .fold(f64::INFINITY, f64::min);
    let lo = 10f64.powf(smallest.log10().floor());
    Some((lo, top * 1.5))
}

/// One panel's mesh, lines and markers, on a linear or (with `log_floor`) a log y axis; on a log
/// axis, values below the floor (zero: nothing moved) break the line.
fn draw_panel<DB: DrawingBackend, Y>(
    mut chart: ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    panel: &Panel,
    c: &LineChart,
    entries: &[(String, RGBColor, bool)],
    axes: &Axes,
    log_floor: Option<f64>,
) -> Result<()>
where
    Y: Ranged<ValueType = f64> + plotters::coord::ranged1d::ValueFormatter<f64>,
{
    let y_desc = match log_floor {
        Some(_) => format!("{} (log scale)", panel.y_desc),
        None => panel.y_desc.clone(),
    };
    chart
        .configure_mesh()
        .x_desc(axes.x_desc)
        .y_desc(y_desc)
        .axis_desc_style(font(DESC_PX))
        .label_style(font(TICK_PX))
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .x_labels(axes.x_labels)
        .y_labels(5)
        .x_label_formatter(axes.x_fmt)
        .y_label_formatter(&|y| tick(*y))
        .draw()
        .map_err(de)?;
    let shown = |y: f64| log_floor.is_none_or(|f| y >= f);
    for line in &panel.lines {
        let style = ShapeStyle::from(&line.color).stroke_width(2);
        // Each line's own marker shape, a few times along it and staggered from the other
        // lines' markers, so that lines lying on top of each other stay told apart.
        if let Some(shape) = marker_of(entries, line) {
            let pts: Vec<(f64, f64)> = line
                .points
                .iter()
                .filter_map(|&(x, y)| y.filter(|&y| shown(y)).map(|y| (x, y)))
                .collect();
            let (i, m) = (shape.1, entries.len().max(1));
            let every = (pts.len() / MARKERS_PER_LINE).max(1);
            let at: Vec<(f64, f64)> = (0..MARKERS_PER_LINE)
                .map(|j| j * every + (i * every) / m)
                .filter_map(|k| pts.get(k).copied())
                .collect();
            draw_markers(&mut chart, shape.0, &at, line.color)?;
        }
        // A `None` (or, on a log axis, a value below its floor) breaks the line into runs.
        let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
        let mut run: Vec<(f64, f64)> = Vec::new();
        for &(x, y) in &line.points {
            match y.filter(|&y| shown(y)) {
                Some(y) => run.push((x, y)),
                None => runs.push(std::mem::take(&mut run)),
            }
        }
        runs.push(run);
        for run in runs.into_iter().filter(|r| !r.is_empty()) {
            if c.markers {
                chart
                    .draw_series(run.iter().map(|&p| Circle::new(p, 3, style.filled())))
                    .map_err(de)?;
            }
            if line.dashed {
                chart
                    .draw_series(DashedLineSeries::new(run, 7, 5, style))
                    .map_err(de)?;
            } else if run.len() == 1 {
                chart
                    .draw_series(std::iter::once(Circle::new(run[0], 2, style.filled())))
                    .map_err(de)?;
            } else {
                chart.draw_series(LineSeries::new(run, style)).map_err(de)?;
            }
        }
    }
    Ok(())
}
