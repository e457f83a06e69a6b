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

mod build;
mod draw;
mod raster;

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

use build::*;
pub use build::{charts, sweep_chart, SweepPoint};
use draw::*;
use raster::*;

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

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
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
/// The placement bound's lines (SPEC 13).
const PLACEMENT: RGBColor = RGBColor(30, 80, 200);
/// The ideal bound's line on the decode-time bars.
const IDEAL: RGBColor = RGBColor(200, 30, 30);
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
    placement_s: Option<f64>,
}

impl Chart {
    fn size(&self) -> (u32, u32) {
        match &self.spec {
            Spec::Lines(c) => (
                WIDTH,
                120 + 250 * c.panels.len() as u32 + legend_height(c) + subtitle_height(&c.title),
            ),
            Spec::Heat(h) => (WIDTH, 400 + subtitle_height(&h.title)),
            Spec::Bars(b) => (
                WIDTH + 160,
                130 + 26 * b.labels.len().max(1) as u32 + subtitle_height(&b.title),
            ),
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

    /// Adds a second title line (the scenario and its idealized mark), drawn smaller.
    pub fn set_subtitle(&mut self, sub: &str) {
        let title = match &mut self.spec {
            Spec::Lines(c) => &mut c.title,
            Spec::Heat(h) => &mut h.title,
            Spec::Bars(b) => &mut b.title,
        };
        if let Some(i) = title.find('\n') {
            title.truncate(i);
        }
        title.push('\n');
        title.push_str(sub);
    }

    /// Where the x axis of a decode-time bar chart starts (0 unless the bars are close: see
    /// [`draw::bars_axis_start`]); `None` for other charts.
    pub fn bars_axis_start(&self) -> Option<f64> {
        match &self.spec {
            Spec::Bars(b) => Some(bars_axis_start(b)),
            _ => None,
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

    /// The chart as a PNG image, [`PNG_SCALE`] times the SVG's size each way (print resolution).
    pub fn png(&self) -> Result<Vec<u8>> {
        ensure_font();
        let (w, h) = self.size();
        let (w, h) = (w * PNG_SCALE, h * PNG_SCALE);
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
        enc.set_compression(png::Compression::Default);
        let mut writer = enc.write_header().context("cannot encode PNG")?;
        writer.write_image_data(&rgb).context("cannot encode PNG")?;
        writer.finish().context("cannot encode PNG")?;
        Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn bars(values_s: Vec<f64>, ideal: f64, placement: f64) -> Bars {
        Bars {
            title: "t".into(),
            labels: values_s.iter().map(|v| v.to_string()).collect(),
            values_s,
            ideal_s: Some(ideal),
            placement_s: Some(placement),
        }
    }

    #[test]
    fn the_decode_time_axis_starts_near_close_values_and_at_zero_for_spread_ones() {
        // The seed's: 134.66 (ideal) .. 182.70 s. Spread 48 < 182.70 / 3: zoomed. Below the
        // smallest by 15% of the spread (7.2 s) is 127.5; the step is 10^floor(log10(55 / 4)) =
        // 10, so the axis starts at 120.
        let b = bars(vec![149.25, 158.49, 182.70], 134.66, 147.55);
        assert_eq!(bars_axis_start(&b), 120.0);
        // Half a percent apart: the start sits just below them, so the difference shows.
        let b = bars(vec![100.0, 100.5], 99.8, 99.9);
        let start = bars_axis_start(&b);
        assert!(start > 99.0 && start < 99.8, "{start}");
        // From 10 to 100 s: a third of the range or more, so from 0.
        let b = bars(vec![10.0, 100.0], 9.0, 9.5);
        assert_eq!(bars_axis_start(&b), 0.0);
    }

    #[test]
    fn lines_are_told_apart_by_colour_and_marker_and_references_have_none() {
        // The first 12 lines (colours repeat dashed after 8) get 12 different (colour, marker,
        // dash) styles; bounds and the alpha target are drawn without markers.
        let mut seen = Vec::new();
        for i in 0..12 {
            let (color, dashed) = style_of(i);
            let shape = marker_shape(i, color).unwrap();
            let key = ((color.0, color.1, color.2), shape, dashed);
            assert!(!seen.contains(&key), "line {i} looks like an earlier one");
            seen.push(key);
        }
        for r in [REFERENCE, PLACEMENT, IDEAL] {
            assert_eq!(marker_shape(0, r), None);
        }
    }

    fn line(ys: &[f64]) -> Line {
        Line {
            label: format!("{ys:?}"),
            color: PALETTE[0],
            dashed: false,
            points: ys
                .iter()
                .enumerate()
                .map(|(i, &y)| (i as f64, Some(y)))
                .collect(),
        }
    }

    #[test]
    fn a_line_that_dwarfs_the_others_puts_its_panel_on_a_log_scale() {
        let panel = |lines: Vec<Line>| Panel {
            y_desc: "GB".into(),
            y_range: None,
            lines,
        };
        // Means 6.5 and 0.005: 1300x apart. From the decade below 0.004 (0.001) to 1.5 x 7.
        let p = panel(vec![
            line(&[6.0, 7.0]),
            line(&[0.004, 0.006]),
            line(&[0.0, 0.0]),
        ]);
        let (lo, hi) = log_range(&p).unwrap();
        assert_eq!(lo, 0.001);
        assert!((hi - 10.5).abs() < 1e-12, "{hi}");
        // A spike does not decide: means 3.5 and 2.0 (the spike's 40 is one point of 20).
        let mut spiky = vec![0.0; 19];
        spiky.push(40.0);
        assert_eq!(
            log_range(&panel(vec![line(&[3.0, 4.0]), line(&spiky)])),
            None
        );
        // One line with anything in it, or a fixed range (alpha), stays linear.
        assert_eq!(log_range(&panel(vec![line(&[6.0]), line(&[0.0])])), None);
        let mut fixed = panel(vec![line(&[6.0]), line(&[0.001])]);
        fixed.y_range = Some((0.0, 1.0));
        assert_eq!(log_range(&fixed), None);
    }

    #[test]
    fn swept_keys_get_a_human_name_and_keep_the_key() {
        assert_eq!(
            key_axis_name("workload.batch"),
            "batch (sequences) · workload.batch"
        );
        assert_eq!(
            key_axis_name("ext.link_bandwidth"),
            "link bandwidth · ext.link_bandwidth"
        );
        // A script parameter is shown as it is, even when a scenario field has its name.
        assert_eq!(
            key_axis_name("policy.params.lookahead"),
            "policy.params.lookahead"
        );
        assert_eq!(key_axis_name("scenario"), "scenario file");
    }

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
            // The key by its human name and unit, then as written; the metric likewise.
            "weights on HBM (share) · initial.weights_on_hbm",
            "decode time (s)",
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
