//! Feeds arbitrary text to the scenario parser: it must return Ok or an error, never panic, hang
//! or allocate what the input does not ask for. A scenario that parses also gets its derived
//! figures (`kvtier scenario show`) computed, when that is cheap.
#![no_main]

use kvtier::scenario::Scenario;
use libfuzzer_sys::fuzz_target;

/// `scenario_rows` walks decode steps x layers: skip scenarios bigger than this.
const MAX_ROWS_WORK: usize = 1_000_000;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(scenario) = Scenario::from_toml(&text, None) {
        let s = &scenario.sizes;
        let work = s.layers.saturating_mul(s.prefill.saturating_add(s.decode));
        if work <= MAX_ROWS_WORK {
            let rows = kvtier::results::scenario_rows(&scenario);
            assert!(!rows.is_empty());
        }
    }
});
