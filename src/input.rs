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
    use super::did_you_mean;

    #[test]
    fn a_typo_finds_its_word_and_nonsense_finds_nothing() {
        let words = ["layer", "layers", "step", "hbm_used"];
        assert_eq!(did_you_mean("layr", &words), Some("layer"));
        assert_eq!(did_you_mean("hbm_use", &words), Some("hbm_used"));
        assert_eq!(did_you_mean("zzzz", &words), None);
    }
}
