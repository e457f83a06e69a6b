//! Opening the files users name (scenarios, scripts, traces, studies, result files): regular
//! files only, and read within a size limit, so that no path makes kvtier block or read forever.
//!
//! A directory, a FIFO or a device is refused from its metadata, before it is opened (opening a
//! FIFO for reading blocks until a writer comes); every error names the file and what it is.
//!
//! Not here: writing ([`crate::output`]).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Largest scenario, script, study or result file read whole: 64 MiB.
pub const MAX_TEXT_BYTES: u64 = 64 << 20;

/// Opens `path` for reading if it is a regular file (following symbolic links). `what` names
/// the kind of file in errors (`"trace"`, `"script"`).
pub fn open_regular(path: &Path, what: &str) -> Result<File> {
    if path.as_os_str().is_empty() {
        bail!("{what} path is empty: give a file");
    }
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    if !meta.is_file() {
        let kind = if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file (a FIFO, socket or device?)"
        };
        bail!("{what} {} is {kind}: give a file", path.display());
    }
    File::open(path).with_context(|| format!("cannot open {what} {}", path.display()))
}

/// Reads a whole regular file of at most [`MAX_TEXT_BYTES`].
pub fn read_limited(path: &Path, what: &str) -> Result<Vec<u8>> {
    let f = open_regular(path, what)?;
    let mut bytes = Vec::new();
    f.take(MAX_TEXT_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    if bytes.len() as u64 > MAX_TEXT_BYTES {
        bail!(
            "{what} {} is larger than {} MiB: not a {what} kvtier reads whole",
            path.display(),
            MAX_TEXT_BYTES >> 20
        );
    }
    Ok(bytes)
}

/// [`read_limited`] as UTF-8 text, naming the first invalid byte.
pub fn read_text(path: &Path, what: &str) -> Result<String> {
    String::from_utf8(read_limited(path, what)?).map_err(|e| {
        anyhow::anyhow!(
            "{}: not UTF-8 text (invalid byte at offset {}): not a {what}",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// A source line under an error message, with a caret under column `col` (1-based, in
/// characters): `  12 | let x = ctx.layr;` then `     |             ^`. A line longer than 120
/// characters is cut around the column, marked with `...`; tabs before the column are kept in
/// the caret line so the caret lines up however a terminal shows them.
pub fn pointed(line: usize, text: &str, col: usize) -> String {
    const WIDTH: usize = 120;
    let chars: Vec<char> = text.chars().collect();
    let col = col.max(1).min(chars.len() + 1);
    let (shown, caret_at): (Vec<char>, usize) = if chars.len() <= WIDTH {
        (chars.clone(), col - 1)
    } else {
        let start = col.saturating_sub(1 + WIDTH / 2).min(chars.len() - WIDTH);
        let mut out: Vec<char> = Vec::new();
        let lead = if start > 0 { 3 } else { 0 };
        if start > 0 {
            out.extend("...".chars());
        }
        out.extend(&chars[start..start + WIDTH]);
        if start + WIDTH < chars.len() {
            out.extend("...".chars());
        }
        (out, lead + col - 1 - start)
    };
    let caret: String = shown
        .iter()
        .take(caret_at)
        .map(|&c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let gutter = line.to_string();
    let src: String = shown.into_iter().collect();
    format!(
        "  {gutter} | {src}\n  {} | {caret}^",
        " ".repeat(gutter.len())
    )
}

/// The candidate closest to `word` when it is close enough to be a typo (Jaro-Winkler
/// similarity of at least 0.8, as clap suggests subcommands): for "did you mean ...?" hints.
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(s, _)| *s >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod did_you_mean_tests {
    use super::{did_you_mean, pointed};

    #[test]
    fn the_caret_stands_under_the_column() {
        assert_eq!(
            pointed(7, "let x = ctx.layr;", 13),
            "  7 | let x = ctx.layr;\n    |             ^"
        );
        // A tab before the column is kept, so the caret lines up.
        assert_eq!(pointed(2, "\tx = 1", 2), "  2 | \tx = 1\n    | \t^");
        // A long line is cut around the column; the caret follows the cut.
        let long = format!("{}X{}", "a".repeat(200), "b".repeat(200));
        let p = pointed(1, &long, 201);
        let (src, caret) = p.split_once('\n').unwrap();
        let at = caret.find('^').unwrap();
        assert_eq!(src.chars().nth(at), Some('X'), "{p}");
    }

    #[test]
    fn a_typo_finds_its_word_and_nonsense_finds_nothing() {
        let words = ["layer", "layers", "step", "hbm_used"];
        assert_eq!(did_you_mean("layr", &words), Some("layer"));
        assert_eq!(did_you_mean("hbm_use", &words), Some("hbm_used"));
        assert_eq!(did_you_mean("zzzz", &words), None);
    }
}
