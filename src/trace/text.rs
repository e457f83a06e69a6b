//! kvtrace v1 text format (SPEC 9): reader (streaming, strict, errors name file and line) and
//! writer.
//!
//! ```text
//! kvtrace 1 prefill=4 decode=3 layers=2
//! # comment
//! 4 1 mlp 0-2
//! 5 0 layer
//! 6 1 1-3 4-5
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use super::{StepSkips, TraceDims, TraceSource};

/// One parsed `(n, l)` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    step: usize,
    layer: usize,
    whole_layer: bool,
    mlp: bool,
    ranges: Vec<(usize, usize)>,
    line_no: usize,
}

/// Longest line the text reader accepts: 64 MiB (a step of a million positions with every
/// other one skipped is about 8 MB).
pub const MAX_LINE_BYTES: u64 = 64 << 20;

/// Most bytes of `#` comments kept as provenance (a little under the binary format's 1 MiB,
/// leaving room for the note of what was left out); later ones are counted, not kept.
pub const MAX_PROVENANCE_BYTES: usize = (1 << 20) - 4096;

/// Streams a kvtrace v1 text file step by step.
pub struct TextTraceReader {
    label: String,
    reader: Box<dyn BufRead + Send>,
    buf: Vec<u8>,
    line_no: usize,
    dims: TraceDims,
    next_step: usize,
    pending: Option<Line>,
    last_key: Option<(usize, usize)>,
    /// The `#` comment lines right after the header (what writers put there as provenance), at
    /// most [`MAX_PROVENANCE_BYTES`] of them.
    provenance: Vec<String>,
    provenance_bytes: usize,
    /// Bytes of provenance comments past the limit, left out.
    provenance_dropped: usize,
    seen_data: bool,
}

impl TextTraceReader {
    pub fn open(path: &Path) -> Result<TextTraceReader> {
        let f = crate::input::open_regular(path, "trace")?;
        TextTraceReader::new(
            path.display().to_string(),
            Box::new(BufReader::with_capacity(1 << 16, f)),
        )
    }

    /// Reads the header from `reader`; `label` names the source in errors.
    pub fn new(label: String, reader: Box<dyn BufRead + Send>) -> Result<TextTraceReader> {
        let mut r = TextTraceReader {
            label,
            reader,
            buf: Vec::new(),
            line_no: 0,
            dims: TraceDims {
                prefill: 0,
                decode: 0,
                layers: 0,
            },
            next_step: 0,
            pending: None,
            last_key: None,
            provenance: Vec::new(),
            provenance_bytes: 0,
            provenance_dropped: 0,
            seen_data: false,
        };
        let header = r
            .read_line()?
            .ok_or_else(|| anyhow!("{}: empty file, expected a `kvtrace 1 ...` header", r.label))?;
        r.dims = parse_header(&header).map_err(|e| anyhow!("{}:{}: {e}", r.label, r.line_no))?;
        r.next_step = r.dims.prefill;
        r.pending = r.next_line()?;
        Ok(r)
    }

    /// Next raw line without its line ending; `None` at end of file. A line longer than
    /// [`MAX_LINE_BYTES`] is an error (a file with no line ending is not read into memory).
    fn read_line(&mut self) -> Result<Option<String>> {
        self.buf.clear();
        let n = (&mut self.reader)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut self.buf)
            .with_context(|| format!("{}: read error after line {}", self.label, self.line_no))?;
        if n == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        if n as u64 > MAX_LINE_BYTES {
            bail!(
                "{}:{}: line longer than {} MiB: not kvtrace text (a trace this large belongs in the binary format)",
                self.label,
                self.line_no,
                MAX_LINE_BYTES >> 20
            );
        }
        if self.buf.last() != Some(&b'\n') {
            bail!(
                "{}:{}: last line has no line ending (truncated file?)",
                self.label,
                self.line_no
            );
        }
        self.buf.pop();
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        match std::str::from_utf8(&self.buf) {
            Ok(s) => Ok(Some(s.to_string())),
            Err(e) => bail!(
                "{}:{}: not kvtrace text (invalid byte 0x{:02x} at column {})",
                self.label,
                self.line_no,
                self.buf[e.valid_up_to()],
                e.valid_up_to() + 1
            ),
        }
    }

    /// Next `(n, l)` line, skipping blanks and comments, checked for order and bounds.
    fn next_line(&mut self) -> Result<Option<Line>> {
        loop {
            let Some(text) = self.read_line()? else {
                return Ok(None);
            };
            let t = text.trim();
            if let Some(c) = t.strip_prefix('#') {
                if !self.seen_data {
                    let c = c.strip_prefix(' ').unwrap_or(c);
                    if self.provenance_bytes + c.len() < MAX_PROVENANCE_BYTES {
                        self.provenance_bytes += c.len() + 1;
                        self.provenance.push(c.to_string());
                    } else {
                        self.provenance_dropped += c.len() + 1;
                    }
                }
                continue;
            }
            if t.is_empty() {
                continue;
            }
            self.seen_data = true;
            let line = parse_line(t, &self.dims, self.line_no)
                .map_err(|e| anyhow!("{}:{}: {e}", self.label, self.line_no))?;
            let key = (line.step, line.layer);
            if let Some(prev) = self.last_key {
                if key <= prev {
                    bail!(
                        "{}:{}: line for step {} layer {} comes after step {} layer {}: lines must be in step-major order, one per (step, layer)",
                        self.label, self.line_no, key.0, key.1, prev.0, prev.1
                    );
                }
            }
            self.last_key = Some(key);
            return Ok(Some(line));
        }
    }
}

fn parse_header(h: &str) -> std::result::Result<TraceDims, String> {
    let mut it = h.split_whitespace();
    if it.next() != Some("kvtrace") {
        return Err(format!(
            "not a kvtrace file: header is {:?}, expected `kvtrace 1 prefill=P decode=D layers=L`",
            truncate(h)
        ));
    }
    match it.next() {
        Some("1") => {}
        Some(v) => {
            return Err(format!(
                "unsupported kvtrace version {v:?}: this build reads version 1"
            ))
        }
        None => {
            return Err(
                "header lacks the version: expected `kvtrace 1 prefill=P decode=D layers=L`".into(),
            )
        }
    }
    let mut vals = [None; 3];
    for tok in it {
        let (k, v) = tok
            .split_once('=')
            .ok_or_else(|| format!("header field {tok:?} is not key=value"))?;
        let i = match k {
            "prefill" => 0,
            "decode" => 1,
            "layers" => 2,
            _ => {
                return Err(format!(
                    "unknown header field {k:?}: expected prefill, decode, layers"
                ))
            }
        };
        let v: usize = v
            .parse()
            .map_err(|_| format!("header field {k}={v:?} is not a whole number"))?;
        if vals[i].replace(v).is_some() {
            return Err(format!("header field {k} given twice"));
        }
    }
    match vals {
        [Some(prefill), Some(decode), Some(layers)] => {
            crate::scenario::check_dims(prefill as u64, decode as u64, layers as u64)
                .map_err(|e| format!("header dimensions out of range: {e}"))?;
            Ok(TraceDims {
                prefill,
                decode,
                layers,
            })
        }
        _ => Err("header needs prefill=, decode= and layers=".into()),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

fn parse_line(t: &str, d: &TraceDims, line_no: usize) -> std::result::Result<Line, String> {
    let mut it = t.split_whitespace();
    let num = |tok: Option<&str>, what: &str| -> std::result::Result<usize, String> {
        let tok = tok.ok_or_else(|| format!("missing {what}"))?;
        tok.parse()
            .map_err(|_| format!("{what} {tok:?} is not a whole number"))
    };
    let step = num(it.next(), "step")?;
    let layer = num(it.next(), "layer")?;
    if step < d.prefill || step >= d.prefill + d.decode {
        return Err(format!(
            "step {step} is outside the decode steps {}..{}",
            d.prefill,
            d.prefill + d.decode
        ));
    }
    if layer >= d.layers {
        return Err(format!("layer {layer} is outside 0..{}", d.layers));
    }
    let mut line = Line {
        step,
        layer,
        whole_layer: false,
        mlp: false,
        ranges: Vec::new(),
        line_no,
    };
    let mut prev_end = 0usize;
    for (i, tok) in it.enumerate() {
        if tok == "layer" {
            if i != 0 || line.mlp {
                return Err("`layer` must stand alone after the step and layer".into());
            }
            line.whole_layer = true;
            continue;
        }
        if line.whole_layer {
            return Err(format!("nothing may follow `layer`, found {tok:?}"));
        }
        if tok == "mlp" {
            if i != 0 {
                return Err("`mlp` must come before the ranges".into());
            }
            line.mlp = true;
            continue;
        }
        let (a, b) = tok
            .split_once('-')
            .ok_or_else(|| format!("{tok:?} is not `layer`, `mlp` or a range a-b"))?;
        let a: usize = a
            .parse()
            .map_err(|_| format!("range {tok:?}: {a:?} is not a position"))?;
        let b: usize = b
            .parse()
            .map_err(|_| format!("range {tok:?}: {b:?} is not a position"))?;
        if a >= b {
            return Err(format!(
                "range {tok:?} is empty or reversed (a-b is half-open and needs a < b)"
            ));
        }
        if b > step {
            return Err(format!(
                "range {tok:?} reaches position {} but step {step} reads only positions < {step}",
                b - 1
            ));
        }
        if a < prev_end {
            return Err(format!("range {tok:?} overlaps or precedes the previous range (ranges must be sorted and disjoint)"));
        }
        prev_end = b;
        line.ranges.push((a, b));
    }
    Ok(line)
}

impl TraceSource for TextTraceReader {
    fn dims(&self) -> TraceDims {
        self.dims
    }

    fn provenance(&self) -> Option<String> {
        let mut lines = self.provenance.clone();
        if self.provenance_dropped > 0 {
            lines.push(format!(
                "[{} more bytes of comments from {} not kept]",
                self.provenance_dropped, self.label
            ));
        }
        (!lines.is_empty()).then(|| lines.join("\n"))
    }

    fn next_step(&mut self, out: &mut StepSkips) -> Result<()> {
        let n = self.next_step;
        out.reset(n, self.dims.layers);
        while let Some(line) = self.pending.take() {
            if line.step != n {
                self.pending = Some(line);
                break;
            }
            let ls = &mut out.layers[line.layer];
            ls.layer = line.whole_layer;
            ls.mlp = line.mlp;
            for &(a, b) in &line.ranges {
                ls.tokens.insert_range(a, b);
            }
            ls.token_count = ls.tokens.count();
            self.pending = self.next_line()?;
        }
        self.next_step += 1;
        Ok(())
    }
}

/// Writes the header of a kvtrace v1 text file.
pub fn write_header(w: &mut (impl Write + ?Sized), d: &TraceDims) -> std::io::Result<()> {
    writeln!(
        w,
        "kvtrace 1 prefill={} decode={} layers={}",
        d.prefill, d.decode, d.layers
    )
}

/// Writes the lines of one step (only `(n, l)` with something skipped).
pub fn write_step(w: &mut (impl Write + ?Sized), s: &StepSkips) -> std::io::Result<()> {
    for (l, ls) in s.layers.iter().enumerate() {
        if !ls.any() {
            continue;
        }
        write!(w, "{} {}", s.step, l)?;
        if ls.layer {
            writeln!(w, " layer")?;
            continue;
        }
        if ls.mlp {
            write!(w, " mlp")?;
        }
        for (a, b) in ls.tokens.ranges() {
            write!(w, " {a}-{b}")?;
        }
        writeln!(w)?;
    }
    Ok(())
}

/// Writes a whole trace from a source; `provenance` goes into `#` comment lines.
pub fn write_trace(
    w: &mut (impl Write + ?Sized),
    source: &mut dyn TraceSource,
    provenance: &str,
) -> Result<()> {
    let d = source.dims();
    write_header(w, &d)?;
    for line in provenance.lines() {
        writeln!(w, "# {line}")?;
    }
    let mut buf = StepSkips::default();
    for _ in 0..d.decode {
        source.next_step(&mut buf)?;
        write_step(w, &buf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(text: &str) -> Result<TextTraceReader> {
        TextTraceReader::new(
            "t.kvtrace".into(),
            Box::new(std::io::Cursor::new(text.as_bytes().to_vec())),
        )
    }

    fn read_all(text: &str) -> Result<Vec<StepSkips>> {
        let mut r = reader(text)?;
        let mut v = Vec::new();
        for _ in 0..r.dims().decode {
            let mut s = StepSkips::default();
            r.next_step(&mut s)?;
            v.push(s);
        }
        Ok(v)
    }

    #[test]
    fn reads_layer_mlp_and_ranges() {
        let steps = read_all(
            "kvtrace 1 prefill=4 decode=3 layers=2\n# c\n4 1 mlp 0-2\n5 0 layer\n6 1 1-3 4-5\n",
        )
        .unwrap();
        assert!(steps[0].layers[1].mlp && steps[0].layers[1].tokens.ranges() == vec![(0, 2)]);
        assert!(steps[1].layers[0].layer && !steps[1].layers[1].any());
        assert_eq!(steps[2].layers[1].tokens.ranges(), vec![(1, 3), (4, 5)]);
        assert_eq!(steps[2].layers[1].token_count, 3);
    }

    #[test]
    fn rejects_bad_lines_with_line_numbers() {
        let h = "kvtrace 1 prefill=4 decode=3 layers=2\n";
        let cases = [
            (format!("{h}4 0 0-5\n"), ":2:", "position 4"),
            (format!("{h}4 0 2-3 0-1\n"), ":2:", "overlaps"),
            (format!("{h}4 0 0-2 1-3\n"), ":2:", "overlaps"),
            (format!("{h}5 0 0-1\n4 0 0-1\n"), ":3:", "step-major"),
            (format!("{h}4 0 layer 0-1\n"), ":2:", "nothing may follow"),
            (format!("{h}4 0 0-1"), ":2:", "no line ending"),
            (format!("{h}9 0 0-1\n"), ":2:", "outside the decode steps"),
            (
                "kvtrace 2 prefill=4 decode=3 layers=2\n".to_string(),
                ":1:",
                "version",
            ),
            (
                "\u{1}\u{2}garbage\n".to_string(),
                ":1:",
                "not a kvtrace file",
            ),
            (
                "kvtrace 1 prefill=70 decode=6 layers=3333333333333\n".to_string(),
                ":1:",
                "out of range",
            ),
        ];
        for (text, at, what) in cases {
            let e = read_all(&text).unwrap_err().to_string();
            assert!(
                e.contains(&format!("t.kvtrace{at}")) && e.contains(what),
                "{text:?} -> {e}"
            );
        }
    }

    #[test]
    fn invalid_utf8_is_named() {
        let mut bytes = b"kvtrace 1 prefill=4 decode=3 layers=2\n4 0 ".to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe, b'\n']);
        let r = TextTraceReader::new("t.kvtrace".into(), Box::new(std::io::Cursor::new(bytes)));
        let e = r.err().expect("garbage must fail").to_string();
        assert!(e.contains("t.kvtrace:2:") && e.contains("0xff"), "{e}");
    }
}
