//! Embeds the reference strategies (`policies/**/*.rhai`) in the binary, so that bare names
//! (`--placement prefer_hbm`) resolve from any folder and after `cargo install`
//! (`src/policy/builtin.rs`). Writes `$OUT_DIR/builtin_policies.rs`: one entry per script.

use std::fmt::Write as _;
use std::path::Path;

/// The folders embedded, as (folder under the project, kind, is a baseline).
const FOLDERS: [(&str, &str, bool); 4] = [
    ("policies/placement", "Placement", false),
    ("policies/migration", "Migration", false),
    ("policies/baselines/placement", "Placement", true),
    ("policies/baselines/migration", "Migration", true),
];

fn main() {
    println!("cargo:rerun-if-changed=policies");
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let mut out = String::from("pub static BUILTIN: &[Builtin] = &[\n");
    for (folder, kind, baseline) in FOLDERS {
        let dir = Path::new(&root).join(folder);
        println!("cargo:rerun-if-changed={folder}");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".rhai"))
            .collect();
        names.sort();
        for n in names {
            let stem = n.trim_end_matches(".rhai");
            writeln!(
                out,
                "    Builtin {{ kind: Kind::{kind}, name: {stem:?}, path: \"{folder}/{n}\", baseline: {baseline}, source: include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/{folder}/{n}\")) }},"
            )
            .unwrap();
        }
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("builtin_policies.rs");
    std::fs::write(dest, out).expect("write builtin_policies.rs");
}
