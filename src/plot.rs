//! Charts of runs and comparisons, drawn with plotters as SVG (and PNG for quick viewing), each
//! with a CSV sidecar holding exactly the numbers plotted.
//!
//! The charts: alpha over decode steps (attention and MLP apart, one chart per placement with
//! one line per migration: the seed's figure), alpha as a layer x step heat map for one pair,
//! time per step, HBM KV occupancy against the budget, bytes moved per step, decode time per
//! pair as bars with the ideal bound marked, and a metric against a swept key
//! ([`sweep_chart`]).
//!
//! Text is measured and drawn with DejaVu Sans embedded in the binary (plotters' `ab_glyph`
//! font backend), so neither the build nor a run needs system font libraries. Long runs are
//! plotted as means over bins of consecutive steps (at most [`MAX_POINTS`] per line,
//! [`HEATMAP_MAX_COLUMNS`] heat map columns) so that a chart stays a few hundred KB at most;
//! the sidecar says which steps each plotted point covers.
//!
//! Not here: running anything ([`crate::compare`]), per-step aggregation ([`crate::series`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{anyhow, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

use crate::compare::{Comparison, Outcome, PairSeries};
use crate::series::{bins, StepSeries};

/// Most points per plotted line; longer runs are plotted as bin means.
pub const MAX_POINTS: usize = 256;
/// Most heat map columns; longer runs are plotted as bin means.
pub const HEATMAP_MAX_COLUMNS: usize = 128;

/// Canvas width in pixels. Text sizes are chosen so that the chart printed at a paper's column
/// width (about 3.3 in) gives 6.5-7.5 pt text (plotters writes SVG font sizes as these / 1.24).
const WIDTH: u32 = 560;
const TITLE_PX: u32 = 21;
const DESC_PX: u32 = 21;
const TICK_PX: u32 = 19;
const LEGEND_PX: u32 = 19;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static FONT_ONCE: Once = Once::new();

fn ensure_font() {
    FONT_ONCE.call_once(|| {
        // The font is built in; it parses, or every chart test fails loudly.
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the embedded DejaVu Sans font does not parse"));
    });
}

fn font(px: u32) -> TextStyle<'static> {
    ("sans-serif", px).into_font().color(&BLACK)
}

/// Okabe-Ito colours (distinguishable with colour-blindness), black and yellow last; lines
/// beyond the eighth repeat them dashed.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(170, 150, 0),
];
const REFERENCE: RGBColor = RGBColor(110, 110, 110);
const GRID: RGBColor = RGBColor(225, 225, 225);
const NO_DATA: RGBColor = RGBColor(215, 215, 215);

fn style_of(i: usize) -> (RGBColor, bool) {
    (PALETTE[i % PALETTE.len()], i >= PALETTE.len())
}

/// A chart ready to draw, with its data sidecar.
#[derive(Clone, Debug)]
pub struct Chart {
    /// File stem (`alpha-prefer_hbm`): the chart is written as `NAME.svg`, `NAME.png` and
    /// `NAME.csv`.
    pub name: String,
    /// One sentence saying what the chart shows (report captions, gallery).
    pub caption: String,
    /// The sidecar: CSV with exactly the numbers plotted.
    pub data_csv: String,
    spec: Spec,
}

#[derive(Clone, Debug)]
enum Spec {
    Lines(LineChart),
    Heat(HeatMap),
    Bars(Bars),
}

#[derive(Clone, Debug)]
struct Line {
    label: String,
    color: RGBColor,
    dashed: bool,
    /// `(x, y)`; a `None` breaks the line.
    points: Vec<(f64, Option<f64>)>,
}

#[derive(Clone, Debug)]
struct Panel {
    y_desc: String,
    /// Fixed y range (alpha: 0..1), else 0..max.
    y_range: Option<(f64, f64)>,
    lines: Vec<Line>,
}

#[derive(Clone, Debug)]
struct LineChart {
    title: String,
    x_desc: String,
    x_range: (f64, f64),
    /// Category names at x = 0, 1, ... (a swept key with text values).
    x_categories: Option<Vec<String>>,
    markers: bool,
    panels: Vec<Panel>,
}

#[derive(Clone, Debug)]
struct HeatMap {
    title: String,
    layers: usize,
    /// Steps each column covers, `first..=last`.
    columns: Vec<(usize, usize)>,
    /// `[layer * columns + column]`.
    values: Vec<Option<f64>>,
    alpha_target: f64,
    /// Bottom of the colour scale (its top is 1).
    lo: f64,
}

#[derive(Clone, Debug)]
struct Bars {
    title: String,
    labels: Vec<String>,
    values_s: Vec<f64>,
    ideal_s: Option<f64>,
}

impl Chart {
    fn size(&self) -> (u32, u32) {
        match &self.spec {
            Spec::Lines(c) => (WIDTH, 120 + 250 * c.panels.len() as u32 + legend_height(c)),
            Spec::Heat(_) => (WIDTH, 400),
            Spec::Bars(b) => (WIDTH + 160, 130 + 26 * b.labels.len().max(1) as u32),
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).map_err(de)?;
        match &self.spec {
            Spec::Lines(c) => draw_lines(root, c),
            Spec::Heat(h) => draw_heat(root, h),
            Spec::Bars(b) => draw_bars(root, b),
        }
    }

    /// The chart as an SVG document.
    pub fn svg(&self) -> Result<String> {
        ensure_font();
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, self.size()).into_drawing_area();
            self.draw(&root)?;
            root.present().map_err(de)?;
        }
        Ok(out)
    }

    /// The chart as a PNG image.
    pub fn png(&self) -> Result<Vec<u8>> {
        ensure_font();
        let (w, h) = self.size();
        let mut rgb = vec![0u8; (w * h * 3) as usize];
        {
            let root = Raster(BitMapBackend::with_buffer(&mut rgb, (w, h))).into_drawing_area();
            self.draw(&root)?;
            root.present().map_err(de)?;
        }
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Best);
        let mut writer = enc.write_header().context("cannot encode PNG")?;
        writer.write_image_data(&rgb).context("cannot encode PNG")?;
        writer.finish().context("cannot encode PNG")?;
        Ok(out)
    }
}

/// PNG drawing: plotters' bitmap backend, with text rasterised here by ab_glyph. (plotters'
/// own ab_glyph text drawing drops each glyph's side bearing and sizes text unlike its SVG
/// backend, so PNG labels came out unevenly spaced; this draws them at the SVG's em size.)
struct Raster<'a>(BitMapBackend<'a>);

type RasterError<'a> = DrawingErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>;

impl<'a> DrawingBackend for Raster<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<(), RasterError<'a>> {
        self.0.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), RasterError<'a>> {
        self.0.present()
    }
    fn draw_pixel(&mut self, p: BackendCoord, c: BackendColor) -> Result<(), RasterError<'a>> {
        self.0.draw_pixel(p, c)
    }
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), RasterError<'a>> {
        self.0.draw_line(from, to, style)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        a: BackendCoord,
        b: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), RasterError<'a>> {
        self.0.draw_rect(a, b, style, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), RasterError<'a>> {
        self.0.draw_path(path, style)
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), RasterError<'a>> {
        self.0.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), RasterError<'a>> {
        self.0.fill_polygon(vert, style)
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), RasterError<'a>> {
        self.0.blit_bitmap(pos, size, src)
    }

    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        pos: BackendCoord,
    ) -> Result<(), RasterError<'a>> {
        use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let font =
            FontRef::try_from_slice(FONT).map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
        // plotters' SVG backend writes font-size = size / 1.24 (the em); ab_glyph scales by the
        // ascent-to-descent height, which is larger than the em.
        let em = style.size() as f32 / 1.24;
        let units = font.units_per_em().unwrap_or(2048.0);
        let scale = PxScale::from(em * font.height_unscaled() / units);
        let sf = font.as_scaled(scale);
        let mut caret = 0.0f32;
        let mut prev = None;
        let mut placed = Vec::with_capacity(text.len());
        for c in text.chars() {
            let id = sf.glyph_id(c);
            if let Some(p) = prev {
                caret += sf.kern(p, id);
            }
            placed.push((id, caret));
            caret += sf.h_advance(id);
            prev = Some(id);
        }
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Center => -caret / 2.0,
            HPos::Right => -caret,
        };
        // Baseline below the anchor, in the text's own (unrotated) frame, y down.
        let (asc, desc) = (sf.ascent(), sf.descent());
        let baseline = match anchor.v_pos {
            VPos::Top => asc,
            VPos::Center => (asc + desc) / 2.0,
            VPos::Bottom => desc,
        };
        let trans = style.transform();
        let mut pixels = Vec::new();
        for (id, x) in placed {
            let glyph = id.with_scale_and_position(scale, point(x + dx, baseline));
            if let Some(outline) = font.outline_glyph(glyph) {
                let b = outline.px_bounds();
                outline.draw(|gx, gy, cov| {
                    let (x, y) = (b.min.x as i32 + gx as i32, b.min.y as i32 + gy as i32);
                    pixels.push((trans.transform(x, y), cov));
                });
            }
        }
        let (w, h) = self.get_size();
        for ((x, y), cov) in pixels {
            let (x, y) = (pos.0 + x, pos.1 + y);
            if cov > 0.0 && x >= 0 && y >= 0 && x < w as i32 && y < h as i32 {
                let c = BackendColor {
                    alpha: color.alpha * cov.min(1.0) as f64,
                    rgb: color.rgb,
                };
                self.0.draw_pixel((x, y), c)?;
            }
        }
        Ok(())
    }
}

fn de<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> anyhow::Error {
    anyhow!("cannot draw the chart: {e}")
}

/// Fails when `dir` exists and is not a folder: checked before a run, so that a run whose plots
/// could not be written writes nothing.
pub fn check_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        anyhow::bail!(
            "--plot {}: exists and is not a folder (give a folder for the charts)",
            dir.display()
        );
    }
    Ok(())
}

/// Writes each chart as `NAME.svg`, `NAME.png` and `NAME.csv` into `dir` (created if needed).
/// Everything is drawn before the first file is written, and each file is written atomically.
/// Returns the paths written.
pub fn write_charts(dir: &Path, charts: &[Chart]) -> Result<Vec<PathBuf>> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for c in charts {
        files.push((dir.join(format!("{}.svg", c.name)), c.svg()?.into_bytes()));
        files.push((dir.join(format!("{}.png", c.name)), c.png()?));
        files.push((
            dir.join(format!("{}.csv", c.name)),
            c.data_csv.clone().into_bytes(),
        ));
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the plot folder {}", dir.display()))?;
    let mut written = Vec::new();
    for (path, bytes) in files {
        crate::output::write_atomic(&path, |w| {
            w.write_all(&bytes)?;
            Ok(())
        })?;
        written.push(path);
    }
    Ok(written)
}

// ---------------------------------------------------------------------------------------------
// Building charts from runs

/// A name safe in a file name: letters, digits, `_`, `-`, `.`; anything else becomes `_`.
fn file_part(s: &str) -> String {
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
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// Every chart of a comparison (or of one run, as a comparison of one row): per placement, the
/// alpha, time, occupancy and bytes-moved charts with one line per migration; the heat map of
/// the best pair; the decode-time bars. `pairs` are the series collected in the same runs.
pub fn charts(c: &Comparison, pairs: &[PairSeries]) -> Vec<Chart> {
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
fn step_bins(s: &StepSeries, max: usize) -> Vec<(usize, usize, f64)> {
    bins(s.steps.len(), max)
        .into_iter()
        .map(|b| {
            let first = s.first_step + b.start;
            let last = s.first_step + b.end - 1;
            (b.start, b.end, (first + last) as f64 / 2.0)
        })
        .collect()
}

fn x_range_of(s: &StepSeries) -> (f64, f64) {
    let a = s.first_step as f64;
    let b = (s.first_step + s.steps.len().max(1) - 1) as f64;
    if b > a {
        (a, b)
    } else {
        (a - 0.5, a + 0.5)
    }
}

const STEP_X: &str = "decode step n (position generated)";

fn binned_note(s: &StepSeries) -> String {
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
fn alpha_chart(scenario: &str, placement: &str, group: &[(usize, &PairSeries)]) -> Chart {
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
fn byte_unit(max: f64) -> (f64, &'static str) {
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

fn time_unit(max: f64) -> (f64, &'static str) {
    if max >= 1.0 || max == 0.0 {
        (1.0, "s")
    } else if max >= 1e-3 {
        (1e-3, "ms")
    } else {
        (1e-6, "µs")
    }
}

/// Divides every y of the lines by `d`.
fn scale_lines(lines: &mut [Line], d: f64) {
    for l in lines {
        for p in &mut l.points {
            p.1 = p.1.map(|y| y / d);
        }
    }
}

fn min_y(lines: &[Line]) -> f64 {
    lines
        .iter()
        .flat_map(|l| l.points.iter().filter_map(|p| p.1))
        .fold(1.0, f64::min)
}

/// The lower end of an alpha axis or colour scale: a multiple of 0.05 at least 0.02 below `lo`.
fn alpha_floor(lo: f64) -> f64 {
    (((lo - 0.02) * 20.0).floor() / 20.0).clamp(0.0, 0.95)
}

fn max_y(lines: &[Line]) -> f64 {
    lines
        .iter()
        .flat_map(|l| l.points.iter().filter_map(|p| p.1))
        .fold(0.0, f64::max)
}

/// Time per decode step (sublayers and step phase), with the ideal bound per step.
fn step_time_chart(scenario: &str, placement: &str, group: &[(usize, &PairSeries)]) -> Chart {
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
    let (d, unit) = time_unit(max_y(&lines));
    scale_lines(&mut lines, d);
    Chart {
        name: format!("step-time-{}", file_part(placement)),
        caption: format!(
            "{scenario}: time per decode step (all sublayers and the step phase) and the ideal bound per step; placement {placement}, one line per migration.{}",
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
fn occupancy_chart(scenario: &str, placement: &str, group: &[(usize, &PairSeries)]) -> Chart {
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
fn moved_chart(scenario: &str, placement: &str, group: &[(usize, &PairSeries)]) -> Chart {
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
fn heatmap_chart(scenario: &str, p: &PairSeries) -> Chart {
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

/// Decode time per pair, best first, with the ideal bound marked.
fn decode_time_chart(c: &Comparison) -> Chart {
    let mut data = String::from("placement,migration,decode_time_s,ideal_bound_s,x_ideal\n");
    let mut labels = Vec::new();
    let mut values_s = Vec::new();
    for r in &c.rows {
        if let Outcome::Summary(s) = &r.outcome {
            let _ = writeln!(
                data,
                "{},{},{},{},{}",
                csv_field(&r.placement),
                csv_field(&r.migration),
                s.decode_time_s,
                s.ideal_bound_s,
                s.x_ideal
            );
            labels.push(format!("{} + {}", r.placement, r.migration));
            values_s.push(s.decode_time_s);
        }
    }
    Chart {
        name: "decode-time".into(),
        caption: format!(
            "{}: decode time per pair, best first, each labelled with its multiple of the ideal bound (dashed line).",
            c.scenario
        ),
        data_csv: data,
        spec: Spec::Bars(Bars {
            title: format!("decode time, {}", c.scenario),
            labels,
            values_s,
            ideal_s: c.ideal_bound_s,
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
            title: format!("{metric} against {key}"),
            x_desc: key.to_string(),
            x_range,
            x_categories: numeric
                .is_none()
                .then(|| values.iter().map(|v| v.to_string()).collect()),
            markers: true,
            panels: vec![Panel {
                y_desc: metric.to_string(),
                y_range: None,
                lines,
            }],
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Drawing

/// A tick label with at most three significant digits and no trailing zeros.
fn tick(v: f64) -> String {
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
fn legend_layout(labels: &[String]) -> (usize, u32, usize) {
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

fn legend_entries(c: &LineChart) -> Vec<(String, RGBColor, bool)> {
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

fn legend_height(c: &LineChart) -> u32 {
    let labels: Vec<String> = legend_entries(c).into_iter().map(|e| e.0).collect();
    let (_, _, rows) = legend_layout(&labels);
    rows as u32 * (LEGEND_PX + 8) + 12
}

fn draw_lines<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, c: &LineChart) -> Result<()> {
    let (_, h) = root.dim_in_pixel();
    let legend_h = legend_height(c);
    let (top, legend) = root.split_vertically(h - legend_h);
    let top = top.titled(&c.title, font(TITLE_PX)).map_err(de)?;
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
        None => {
            let span = (c.x_range.1 - c.x_range.0).round() as usize + 1;
            span.clamp(2, 6)
        }
    };
    for (k, (panel, area)) in c.panels.iter().zip(areas.iter()).enumerate() {
        let last = k + 1 == n;
        let (y0, y1) = panel.y_range.unwrap_or_else(|| {
            let m = max_y(&panel.lines);
            (0.0, if m > 0.0 { m * 1.08 } else { 1.0 })
        });
        let mut chart = ChartBuilder::on(area)
            .margin_left(6)
            .margin_right(18)
            .margin_top(6)
            .x_label_area_size(if last { 56 } else { 30 })
            .y_label_area_size(78)
            .build_cartesian_2d(c.x_range.0..c.x_range.1, y0..y1)
            .map_err(de)?;
        chart
            .configure_mesh()
            .x_desc(if last { c.x_desc.as_str() } else { "" })
            .y_desc(panel.y_desc.as_str())
            .axis_desc_style(font(DESC_PX))
            .label_style(font(TICK_PX))
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .x_labels(x_labels)
            .y_labels(5)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&|y| tick(*y))
            .draw()
            .map_err(de)?;
        for line in &panel.lines {
            let style = ShapeStyle::from(&line.color).stroke_width(2);
            // A `None` breaks the line into runs.
            let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
            let mut run: Vec<(f64, f64)> = Vec::new();
            for &(x, y) in &line.points {
                match y {
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
    }
    draw_legend(&legend, &legend_entries(c))
}

fn draw_legend<DB: DrawingBackend>(
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
fn viridis(t: f64) -> RGBColor {
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
const HEAT_LEVELS: f64 = 64.0;

/// The colour level of `v` on a scale from `lo` to 1.
fn heat_level(v: Option<f64>, lo: f64) -> Option<u32> {
    v.map(|v| (((v - lo) / (1.0 - lo)).clamp(0.0, 1.0) * (HEAT_LEVELS - 1.0)).round() as u32)
}

fn level_color(q: Option<u32>) -> RGBColor {
    match q {
        Some(q) => viridis(q as f64 / (HEAT_LEVELS - 1.0)),
        None => NO_DATA,
    }
}

fn draw_heat<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, h: &HeatMap) -> Result<()> {
    let root = root.titled(&h.title, font(TITLE_PX)).map_err(de)?;
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

fn draw_bars<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, b: &Bars) -> Result<()> {
    let root = root.titled(&b.title, font(TITLE_PX)).map_err(de)?;
    let n = b.labels.len().max(1);
    let max = b
        .values_s
        .iter()
        .copied()
        .chain(b.ideal_s)
        .fold(0.0, f64::max);
    let (d, unit) = time_unit(max);
    let xmax = if max > 0.0 { max / d * 1.18 } else { 1.0 };
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
        .build_cartesian_2d(0f64..xmax, (0..n).into_segmented())
        .map_err(de)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .x_desc(format!("decode time ({unit})"))
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
                    (0.0, SegmentValue::Exact(i)),
                    (v / d, SegmentValue::Exact(i + 1)),
                ],
                color.mix(0.85).filled(),
            );
            r.set_margin(4, 4, 0, 0);
            r
        }))
        .map_err(de)?;
    if let Some(ideal) = b.ideal_s {
        chart
            .draw_series(b.values_s.iter().enumerate().map(|(rank, &v)| {
                let i = n - 1 - rank;
                Text::new(
                    format!("{:.2}×", v / ideal),
                    (v / d, SegmentValue::CenterOf(i)),
                    font(TICK_PX - 2).pos(Pos::new(HPos::Left, VPos::Center)),
                )
            }))
            .map_err(de)?;
        let x = ideal / d;
        chart
            .draw_series(DashedLineSeries::new(
                [(x, SegmentValue::Exact(0)), (x, SegmentValue::Exact(n))],
                7,
                5,
                ShapeStyle::from(&RGBColor(200, 30, 30)).stroke_width(2),
            ))
            .map_err(de)?;
        chart
            .draw_series(std::iter::once(Text::new(
                format!("ideal bound {}", tick(x)),
                (x, SegmentValue::Exact(n)),
                font(TICK_PX - 2)
                    .color(&RGBColor(200, 30, 30))
                    .pos(Pos::new(HPos::Center, VPos::Bottom)),
            )))
            .map_err(de)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_keep_three_significant_digits() {
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(1.0), "1");
        assert_eq!(tick(12.5), "12.5");
        assert_eq!(tick(4096.0), "4096");
        assert_eq!(tick(0.123456), "0.123");
    }

    #[test]
    fn file_parts_are_safe_names() {
        assert_eq!(file_part("prefer_hbm"), "prefer_hbm");
        assert_eq!(file_part("a b/c"), "a_b_c");
    }

    #[test]
    fn sweep_chart_orders_numeric_keys_and_keeps_every_point() {
        let pt = |k: &str, pair: &str, v: Option<f64>| SweepPoint {
            key_value: k.into(),
            pair: pair.into(),
            value: v,
        };
        let points = [
            pt("1.0", "hbm + none", Some(30.0)),
            pt("0.8", "hbm + none", Some(40.0)),
            pt("1.0", "ext + none", Some(50.0)),
            pt("0.8", "ext + none", None),
        ];
        let c = sweep_chart("decode_time_s", "initial.weights_on_hbm", &points);
        assert_eq!(c.name, "sweep-decode_time_s-initial.weights_on_hbm");
        assert_eq!(
            c.data_csv,
            "pair,key_value,decode_time_s\n\
             hbm + none,1.0,30\nhbm + none,0.8,40\next + none,1.0,50\next + none,0.8,\n"
        );
        let Spec::Lines(l) = &c.spec else {
            panic!("a sweep is a line chart")
        };
        assert!(l.x_categories.is_none());
        // Points sorted by the key's value; the failed run breaks the line.
        assert_eq!(
            l.panels[0].lines[0].points,
            vec![(0.8, Some(40.0)), (1.0, Some(30.0))]
        );
        assert_eq!(
            l.panels[0].lines[1].points,
            vec![(0.8, None), (1.0, Some(50.0))]
        );
        let svg = c.svg().unwrap();
        let doc = roxmltree::Document::parse(&svg).expect("the sweep chart is valid SVG");
        let labels: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .map(str::trim)
            .collect();
        for want in [
            "hbm + none",
            "ext + none",
            "initial.weights_on_hbm",
            "decode_time_s",
        ] {
            assert!(labels.contains(&want), "{want} missing from {labels:?}");
        }
        assert!(c.png().unwrap().starts_with(b"\x89PNG"));
    }

    #[test]
    fn sweep_chart_takes_text_keys_as_categories() {
        let points = [
            SweepPoint {
                key_value: "exclusive".into(),
                pair: "p".into(),
                value: Some(1.0),
            },
            SweepPoint {
                key_value: "inclusive".into(),
                pair: "p".into(),
                value: Some(2.0),
            },
        ];
        let c = sweep_chart("x_ideal", "memory.hierarchy", &points);
        let Spec::Lines(l) = &c.spec else {
            panic!("a sweep is a line chart")
        };
        assert_eq!(
            l.x_categories,
            Some(vec!["exclusive".to_string(), "inclusive".to_string()])
        );
        assert_eq!(
            l.panels[0].lines[0].points,
            vec![(0.0, Some(1.0)), (1.0, Some(2.0))]
        );
        let svg = c.svg().unwrap();
        assert!(svg.contains("exclusive") && svg.contains("inclusive"));
    }
}
