//! A stop request (`kvtier::interrupt`, what the Python package sets on Ctrl-C) ends runs,
//! scripts and the best static search with `Interrupted`, and once withdrawn runs go on as
//! before. Its own test binary: the request is process-wide.

use kvtier::interrupt::{self, Interrupted};
use kvtier::policy::{self, Kind};
use kvtier::scenario::Scenario;

fn interrupted<T: std::fmt::Debug>(r: anyhow::Result<T>) -> bool {
    r.expect_err("a stop was requested")
        .chain()
        .any(|e| e.downcast_ref::<Interrupted>().is_some())
}

#[test]
fn a_stop_request_ends_every_kind_of_work_and_can_be_withdrawn() {
    let tiny = Scenario::load(std::path::Path::new("scenarios/tiny.toml")).unwrap();
    let seed = Scenario::load(std::path::Path::new("scenarios/seed-w100.toml")).unwrap();
    let before =
        kvtier::simulate(&tiny, kvtier::native_policy("hbm").unwrap().as_mut(), None).unwrap();

    interrupt::request();
    // The native decode loop.
    let mut native = kvtier::native_policy("hbm").unwrap();
    assert!(interrupted(kvtier::simulate(&tiny, native.as_mut(), None)));
    // A scripted pair.
    let p = policy::resolve("prefer_hbm", Kind::Placement, None).unwrap();
    let m = policy::resolve("alpha", Kind::Migration, None).unwrap();
    let mut scripted =
        policy::build_for(&tiny, &p, &m, policy::params(&tiny, &[]).unwrap(), None).unwrap();
    assert!(interrupted(kvtier::simulate(
        &tiny,
        scripted.as_mut(),
        None
    )));
    // The best static schedule's search (it walks the trace before any run).
    assert!(interrupted(kvtier::optimize::search(&seed)));
    interrupt::clear();

    let after =
        kvtier::simulate(&tiny, kvtier::native_policy("hbm").unwrap().as_mut(), None).unwrap();
    assert_eq!(before, after);
}
