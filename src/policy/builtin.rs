//! The reference strategies built into the binary (`policies/` at build time, see `build.rs`):
//! what a bare name or a `policies/...` folder falls back to when no such file is on disk, so
//! that kvtier runs from any folder and after `cargo install`.

use super::Kind;

/// One embedded script.
#[derive(Debug, PartialEq, Eq)]
pub struct Builtin {
    pub kind: Kind,
    /// The file stem: the bare name it answers to.
    pub name: &'static str,
    /// Where it lives in the project (`policies/placement/prefer_hbm.rhai`).
    pub path: &'static str,
    /// Under `policies/baselines/`: a deployed system's strategy, not one of the seed's.
    pub baseline: bool,
    pub source: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/builtin_policies.rs"));

impl Builtin {
    /// How errors name it, a path no file has: `<built-in>/policies/placement/prefer_hbm.rhai`
    /// (its stem is still the bare name, the label of tables).
    pub fn shown(&self) -> String {
        format!("<built-in>/{}", self.path)
    }

    /// The header's first sentence: what the strategy does, in one line.
    pub fn summary(&self) -> String {
        let mut text = String::new();
        for line in self.source.lines() {
            let Some(c) = line.trim_start().strip_prefix("//") else {
                break;
            };
            let c = c.trim();
            if c.is_empty() {
                break;
            }
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(c);
        }
        match first_sentence_end(&text) {
            Some(i) => text[..=i].to_string(),
            None => text,
        }
    }
}

/// Index of the full stop that ends the first sentence: a `.` followed by a space or the end,
/// outside quotes and brackets (the seed's quoted definitions and "e.g." stay whole).
fn first_sentence_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0i32;
    let mut quoted = false;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'(' => depth += 1,
            b')' => depth -= 1,
            b'.' if !quoted && depth <= 0 => {
                let next = bytes.get(i + 1).copied();
                let prev2 = text.get(i.saturating_sub(3)..i).unwrap_or("");
                let abbreviation =
                    prev2.ends_with("e.g") || prev2.ends_with("i.e") || prev2.ends_with(" al");
                if !abbreviation && next.is_none_or(|c| c == b' ') {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The built-in script of `kind` named `name`.
pub fn find(kind: Kind, name: &str) -> Option<&'static Builtin> {
    BUILTIN.iter().find(|b| b.kind == kind && b.name == name)
}

/// The built-in scripts a folder spec stands for when the folder is not on disk: a path ending
/// in `policies/<kind>` (the seed's) or `policies/baselines/<kind>`, with `kind` the one asked
/// for. `None` for any other path.
pub fn folder(spec: &str, kind: Kind) -> Option<Vec<&'static Builtin>> {
    let parts: Vec<&str> = spec
        .split(['/', '\\'])
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    let (baseline, last) = match parts.as_slice() {
        [.., "policies", "baselines", k] => (true, *k),
        [.., "policies", k] => (false, *k),
        _ => return None,
    };
    if last != kind.dir() {
        return None;
    }
    Some(
        BUILTIN
            .iter()
            .filter(|b| b.kind == kind && b.baseline == baseline)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_under_policies_is_built_in_with_its_text() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut on_disk = 0;
        for dir in [
            "policies/placement",
            "policies/migration",
            "policies/baselines/placement",
            "policies/baselines/migration",
        ] {
            for e in std::fs::read_dir(root.join(dir)).unwrap() {
                let p = e.unwrap().path();
                if p.extension().is_some_and(|x| x == "rhai") {
                    on_disk += 1;
                    let rel = format!("{dir}/{}", p.file_name().unwrap().to_string_lossy());
                    let b = BUILTIN
                        .iter()
                        .find(|b| b.path == rel)
                        .unwrap_or_else(|| panic!("{rel} not built in"));
                    assert_eq!(b.source, std::fs::read_to_string(&p).unwrap(), "{rel}");
                }
            }
        }
        assert_eq!(BUILTIN.len(), on_disk);
    }

    #[test]
    fn folders_map_to_their_kind_and_family() {
        let names =
            |v: Option<Vec<&Builtin>>| v.unwrap().iter().map(|b| b.name).collect::<Vec<_>>();
        assert_eq!(
            names(folder(
                "../../policies/baselines/placement",
                Kind::Placement
            )),
            ["flexgen", "static_alpha"]
        );
        assert!(names(folder("policies/migration/", Kind::Migration)).contains(&"alpha"));
        assert!(folder("policies/migration", Kind::Placement).is_none());
        assert!(folder("my/strategies", Kind::Placement).is_none());
    }

    #[test]
    fn a_summary_is_the_headers_first_sentence() {
        let lru = find(Kind::Migration, "lru").unwrap();
        assert_eq!(
            lru.summary(),
            "LRU (baseline; the classic cache policy, libCacheSim's first baseline): when HBM is full, demote the least recently used entries."
        );
        assert_eq!(
            find(Kind::Migration, "none").unwrap().summary(),
            "No migration (seed): entries stay where placement put them."
        );
    }
}
