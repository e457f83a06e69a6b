//! Feeds arbitrary bytes to both trace readers: they must return errors, never panic or hang.
#![no_main]

use kvtier::trace::binary::BinaryTraceReader;
use kvtier::trace::text::TextTraceReader;
use kvtier::trace::{StepSkips, TraceSource};
use libfuzzer_sys::fuzz_target;

fn drain(mut r: impl TraceSource) {
    let mut s = StepSkips::default();
    // Bounded: a header may claim many steps; stop at the first error or after 64 steps.
    for _ in 0..r.dims().decode.min(64) {
        if r.next_step(&mut s).is_err() {
            return;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = BinaryTraceReader::new("fuzz".into(), Box::new(std::io::Cursor::new(data.to_vec()))) {
        drain(r);
    }
    if let Ok(r) = TextTraceReader::new("fuzz".into(), Box::new(std::io::Cursor::new(data.to_vec()))) {
        drain(r);
    }
});
