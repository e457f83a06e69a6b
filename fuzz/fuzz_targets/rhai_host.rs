//! Runs arbitrary bytes as a Rhai strategy script: as a placement script (migration `none`) when
//! the source contains `fn place`, else as a migration script (placement `hbm`), the way
//! `kvtier check` does, on scenarios/tiny.toml. Building and running may fail with an error;
//! they must never panic or hang.
#![no_main]

use std::sync::OnceLock;

use kvtier::policy::PolicyRef;
use kvtier::scenario::Scenario;
use libfuzzer_sys::fuzz_target;

fn tiny() -> &'static Scenario {
    static TINY: OnceLock<Scenario> = OnceLock::new();
    TINY.get_or_init(|| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/tiny.toml");
        Scenario::load(&path).expect("scenarios/tiny.toml loads")
    })
}

fuzz_target!(|data: &[u8]| {
    let scenario = tiny();
    // A fresh folder per input (removed when `dir` drops): the script is read from x.rhai.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("x.rhai");
    std::fs::write(&path, data).expect("write x.rhai");
    let me = PolicyRef::Script(path);
    let is_placement = data.windows(8).any(|w| w == b"fn place");
    let (placement, migration) = if is_placement {
        (me, PolicyRef::Native("none".into()))
    } else {
        (PolicyRef::Native("hbm".into()), me)
    };
    if let Ok(mut pol) = kvtier::policy::build(&placement, &migration, Default::default()) {
        let _ = kvtier::simulate(scenario, pol.as_mut(), None);
    }
});
