//! Output files are written whole or not at all: into a temporary file in the target's folder,
//! renamed over the target only when everything was written.
//!
//! Temporary files are named `.kvtier-<pid>-<random>.tmp`. Those of this process are listed
//! while they exist, so that SIGINT and SIGTERM can remove them ([`remove_temp_files`]); those
//! of a process that died without cleaning up (kill -9) are removed by the next write into the
//! same folder.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};

/// Temporary files this process is writing.
static ACTIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes this process's temporary files (from a signal handler thread, before exiting).
pub fn remove_temp_files() {
    let files = match ACTIVE.lock() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    };
    for f in files {
        std::fs::remove_file(f).ok();
    }
}

/// Keeps a temporary file listed in [`ACTIVE`] while it exists.
struct Listed(PathBuf);

impl Listed {
    fn new(p: PathBuf) -> Listed {
        if let Ok(mut g) = ACTIVE.lock() {
            g.push(p.clone());
        }
        Listed(p)
    }
}

impl Drop for Listed {
    fn drop(&mut self) {
        if let Ok(mut g) = ACTIVE.lock() {
            g.retain(|p| p != &self.0);
        }
    }
}

/// Whether process `pid` is alive (unknown counts as alive, so nothing is removed wrongly).
fn alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        // SAFETY: kill with signal 0 only checks that the process exists.
        let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Removes the temporary files in `dir` left by kvtier processes that no longer run.
fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name
            .strip_prefix(".kvtier-")
            .filter(|_| name.ends_with(".tmp"))
        else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| p != std::process::id() && !alive(p)) {
            std::fs::remove_file(e.path()).ok();
        }
    }
}

/// Writes `path` atomically with `fill`; on error nothing is left behind.
pub fn write_atomic(path: &Path, fill: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    remove_stale(dir);
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".kvtier-{}-", std::process::id()))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    let _listed = Listed::new(tmp.path().to_path_buf());
    let mut w = BufWriter::new(tmp);
    fill(&mut w)?;
    let tmp = w
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("cannot write {}", path.display()))?;
    // Temporary files are created private (0600); a result file is an ordinary file, and one
    // that is replaced keeps its mode.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map(|m| m.permissions().mode())
            .unwrap_or(0o644);
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .ok();
    }
    tmp.as_file().sync_all().ok();
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// `text` cut to at most `max` characters, saying how many were left out (for messages that may
/// quote user input).
pub fn truncated(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_string();
    }
    let kept: String = text.chars().take(max).collect();
    format!("{kept}... ({} more characters)", n - max)
}

/// A progress bar on stderr for commands that run many pairs or runs (compare, report, watch's
/// first table, sweep, study): done, left, elapsed and to go. Drawn only when stderr is a
/// terminal, so pipes, files and tests see nothing.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    todo: usize,
    done: std::sync::atomic::AtomicUsize,
}

impl Progress {
    pub fn new(todo: usize, unit: &str) -> Progress {
        let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
            let b = indicatif::ProgressBar::new(todo as u64);
            b.set_style(
                indicatif::ProgressStyle::with_template(&format!(
                    "{{bar:30}} {{pos}}/{{len}} {unit} done, {{msg}} left, {{elapsed}} elapsed, ~{{eta}} to go"
                ))
                .expect("a valid template"),
            );
            b.set_message(todo.to_string());
            b
        });
        Progress {
            bar,
            todo,
            done: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// One more done (callable from worker threads).
    pub fn tick(&self) {
        let d = self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if let Some(b) = &self.bar {
            b.set_message(self.todo.saturating_sub(d).to_string());
            b.inc(1);
        }
    }

    pub fn finish(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}
