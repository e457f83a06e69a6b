//! A cancelled run stops inside a script's hook call, not only between rows (watch cancels a
//! run overtaken by a newer save).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use kvtier::engine::{self, Cancelled};
use kvtier::policy::{self, PolicyRef};

#[test]
fn a_cancel_stops_a_hook_call_in_the_middle() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("spin.rhai");
    // Without the cancel this call ends at the operation limit (1,000,000 operations), an
    // error that is not a cancellation.
    std::fs::write(&script, "fn on_layer(ctx) {\n    loop { }\n}\n").unwrap();
    let sc = build(tiny_file());
    let cancel = Arc::new(AtomicBool::new(false));
    let mut pol = policy::build_for(
        &sc,
        &PolicyRef::Native("hbm".into()),
        &PolicyRef::Script(script),
        Default::default(),
        Some(cancel.clone()),
    )
    .unwrap();
    let c2 = cancel.clone();
    let setter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1));
        c2.store(true, Ordering::Relaxed);
    });
    let e = engine::run(&sc, pol.as_mut(), &mut engine::Discard).unwrap_err();
    setter.join().unwrap();
    assert!(e.downcast_ref::<Cancelled>().is_some(), "{e:#}");
    assert!(cancel.load(Ordering::Relaxed));
}

#[test]
fn without_a_cancel_the_same_call_ends_at_the_operation_limit() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("spin.rhai");
    std::fs::write(&script, "fn on_layer(ctx) {\n    loop { }\n}\n").unwrap();
    let sc = build(tiny_file());
    let mut pol = policy::build_for(
        &sc,
        &PolicyRef::Native("hbm".into()),
        &PolicyRef::Script(script),
        Default::default(),
        Some(Arc::new(AtomicBool::new(false))),
    )
    .unwrap();
    let e = engine::run(&sc, pol.as_mut(), &mut engine::Discard).unwrap_err();
    assert!(e.downcast_ref::<Cancelled>().is_none());
    assert!(format!("{e:#}").contains("operations"), "{e:#}");
}
