//! The one-file HTML report of `kvtier report`: the scenario's derived sizes, the comparison
//! table and the charts, as inline SVG with inline CSS. The file references nothing outside
//! itself (no scripts, style sheets, fonts or images to fetch), so it opens offline and can be
//! mailed or archived as it is. No timestamp: the same inputs give the same file.
//!
//! Not here: running pairs ([`crate::compare`]) or drawing ([`crate::plot`]).

use std::fmt::Write as _;

use anyhow::Result;

use crate::compare::{self, Comparison, Outcome, PairSeries};
use crate::plot;
use crate::results::scenario_rows;
use crate::scenario::Scenario;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body { font-family: 'DejaVu Sans', Verdana, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; }
th { background: #f0f0f0; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.ideal td { font-style: italic; background: #fafafa; }
.note { background: #fff4d6; border: 1px solid #e0c060; padding: 0.4em 0.8em; }
.errors { color: #a00; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5em; }
figure { margin: 0; max-width: 100%; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 0.85em; max-width: 560px; color: #444; }
";

/// An SVG document from [`plot::Chart::svg`] made fit to sit inside HTML: in HTML an `<svg>`
/// element is in the SVG namespace already, so the namespace attribute (a URI that looks like a
/// link) is dropped.
fn inline_svg(svg: &str) -> String {
    let svg = svg.replace(" xmlns=\"http://www.w3.org/2000/svg\"", "");
    match svg.find("<svg") {
        Some(i) => svg[i..].to_string(),
        None => svg,
    }
}

/// The report for a comparison and the series its pairs produced.
pub fn html(scenario: &Scenario, c: &Comparison, pairs: &[PairSeries]) -> Result<String> {
    let mut h = String::new();
    let name = escape(&c.scenario);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>kvtier report: {name}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>kvtier report: {name}</h1>\n\
         <p>kvtier {}: {} pair(s) of placement and migration run on scenario <b>{name}</b>.</p>\n",
        env!("CARGO_PKG_VERSION"),
        c.rows.len()
    );
    if let Some(n) = &c.idealized {
        let _ = writeln!(h, "<p class=\"note\">{}</p>", escape(n));
    }
    let charts = if pairs.is_empty() {
        Vec::new()
    } else {
        plot::charts(c, pairs)
    };
    // Charts grouped by what they plot (across placements), in this order; the decode-time
    // bars lead the summary instead.
    const GROUPS: [(&str, &str); 5] = [
        ("alpha-", "Alpha per decode step"),
        ("step-time-", "Time per decode step"),
        ("occupancy-", "HBM KV occupancy"),
        ("moved-", "Bytes moved per step"),
        ("heatmap-", "Attention alpha, layer by step"),
    ];
    let present: Vec<(&str, &str)> = GROUPS
        .iter()
        .copied()
        .filter(|(prefix, _)| charts.iter().any(|ch| ch.name.starts_with(prefix)))
        .collect();

    h.push_str("<nav id=\"contents\">\n<h2>Contents</h2>\n<ol>\n");
    h.push_str("<li><a href=\"#summary\">Summary</a></li>\n<li><a href=\"#comparison\">Comparison</a></li>\n");
    if !present.is_empty() {
        h.push_str("<li><a href=\"#charts\">Charts</a><ol>\n");
        for (prefix, title) in &present {
            let _ = writeln!(
                h,
                "<li><a href=\"#group-{}\">{}</a></li>",
                prefix.trim_end_matches('-'),
                escape(title)
            );
        }
        h.push_str("</ol></li>\n");
    }
    h.push_str("<li><a href=\"#scenario\">Scenario</a></li>\n</ol>\n</nav>\n");

    // Summary: the best pairs, the two bounds in words, the decode-time chart.
    h.push_str("<h2 id=\"summary\">Summary</h2>\n");
    let best: Vec<(&str, &str, f64)> = c
        .rows
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Summary(s) => {
                Some((r.placement.as_str(), r.migration.as_str(), s.decode_time_s))
            }
            Outcome::Error(_) => None,
        })
        .take(3)
        .collect();
    if !best.is_empty() {
        h.push_str("<p>Best pairs:</p>\n<ol class=\"best\">\n");
        for (p, m, t) in &best {
            let vs = c
                .placement_bound_s
                .map(|b| format!(", {:.4}x the placement bound", t / b))
                .unwrap_or_default();
            let _ = writeln!(
                h,
                "<li><b>{} + {}</b>: {t:.6} s{vs}</li>",
                escape(p),
                escape(m)
            );
        }
        h.push_str("</ol>\n");
    }
    if let (Some(b), Some(p)) = (c.ideal_bound_s, c.placement_bound_s) {
        let _ = writeln!(
            h,
            "<p>Two lower bounds frame every time. The <b>ideal bound</b>, {b:.6} s, lets every byte, weights included, be split freely between HBM and the external memory: no schedule reaches it while the weights stay where the scenario puts them. The <b>placement bound</b>, {p:.6} s, keeps the weights where they are and gives each attention sublayer the best split of its own KV within the budget (SPEC 13): no KV placement or migration can beat it. A pair's <i>x placement</i> says how far it is from the best any KV strategy could do here.</p>"
        );
    }
    if let Some(ch) = charts.iter().find(|ch| ch.name == "decode-time") {
        let _ = writeln!(
            h,
            "<figure id=\"{}\">\n{}\n<figcaption>{}</figcaption>\n</figure>",
            escape(&ch.name),
            inline_svg(&ch.svg()?),
            escape(&ch.caption)
        );
    }

    h.push_str("<h2 id=\"comparison\">Comparison</h2>\n");
    if let (Some(b), Some(p)) = (c.ideal_bound_s, c.placement_bound_s) {
        let _ = writeln!(
            h,
            "<p>Ideal bound (every byte split freely between the tiers): {b:.6} s. Placement bound (weights where the scenario puts them, each attention sublayer's KV at its best split): {p:.6} s. Rows best first.</p>"
        );
    }
    h.push_str("<table id=\"comparison-table\">\n<tr>");
    let extra = c.best_static_s.map(|_| "x best static");
    for col in compare::HEADER.iter().copied().chain(extra) {
        let _ = write!(h, "<th>{}</th>", escape(col));
    }
    h.push_str("</tr>\n");
    let row = |h: &mut String, class: &str, cells: Vec<String>| {
        let _ = write!(h, "<tr{class}>");
        for (i, v) in cells.iter().enumerate() {
            let td = if i < 2 { "<td>" } else { "<td class=\"num\">" };
            let _ = write!(h, "{td}{}</td>", escape(v));
        }
        h.push_str("</tr>\n");
    };
    for cells in compare::bound_cells(c) {
        row(&mut h, " class=\"ideal\"", cells);
    }
    for r in &c.rows {
        row(&mut h, "", compare::cells_of(c, r));
    }
    h.push_str("</table>\n");
    let errors: Vec<String> = c
        .rows
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Error(e) => Some(format!("{} + {}: {e}", r.placement, r.migration)),
            Outcome::Summary(_) => None,
        })
        .collect();
    if !errors.is_empty() {
        h.push_str("<p>Failed pairs:</p>\n<ul class=\"errors\">\n");
        for e in &errors {
            let _ = writeln!(h, "<li><pre>{}</pre></li>", escape(e));
        }
        h.push_str("</ul>\n");
    }

    h.push_str("<h2 id=\"charts\">Charts</h2>\n");
    if charts.is_empty() {
        h.push_str("<p>No pair ran, so there is nothing to plot.</p>\n");
    }
    for (prefix, title) in &present {
        let _ = writeln!(
            h,
            "<h3 id=\"group-{}\">{}</h3>\n<div class=\"charts\">",
            prefix.trim_end_matches('-'),
            escape(title)
        );
        for chart in charts.iter().filter(|ch| ch.name.starts_with(prefix)) {
            let _ = writeln!(
                h,
                "<figure id=\"{}\">\n{}\n<figcaption>{}</figcaption>\n</figure>",
                escape(&chart.name),
                inline_svg(&chart.svg()?),
                escape(&chart.caption)
            );
        }
        h.push_str("</div>\n");
    }

    h.push_str(
        "<h2 id=\"scenario\">Scenario</h2>\n<table id=\"scenario-table\">\n<tr><th>quantity</th><th>value</th></tr>\n",
    );
    for (k, v) in scenario_rows(scenario) {
        let _ = writeln!(h, "<tr><td>{}</td><td>{}</td></tr>", escape(k), escape(&v));
    }
    h.push_str("</table>\n");
    h.push_str("</body>\n</html>\n");
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_characters() {
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }

    #[test]
    fn inline_svg_drops_the_namespace_uri() {
        let s = "<svg width=\"1\" height=\"1\" viewBox=\"0 0 1 1\" xmlns=\"http://www.w3.org/2000/svg\">\n</svg>";
        assert_eq!(
            inline_svg(s),
            "<svg width=\"1\" height=\"1\" viewBox=\"0 0 1 1\">\n</svg>"
        );
    }
}
