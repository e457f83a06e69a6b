//! kvtrace binary v1: exact round trips with text, and clear errors (never a panic) on truncated,
//! corrupted or foreign bytes.

mod common;

use assert_cmd::Command;
use common::*;
use kvtier::scenario::{LayerRates, Scenario, SkipSource};
use kvtier::trace::binary::{self, BinaryTraceReader};
use kvtier::trace::{self, text, StepSkips, TraceSource};
use proptest::prelude::*;

fn scenario(source: SkipSource, page: u64) -> Scenario {
    sized(source, page, 700, 40)
}

/// Small enough to re-read once per byte of the file.
fn small(source: SkipSource) -> Scenario {
    sized(source, 16, 200, 6)
}

fn sized(source: SkipSource, page: u64, prefill: u64, decode: u64) -> Scenario {
    let mut f = tiny_file();
    f.model.layers = 5;
    f.model.params = 1500.0;
    f.workload.prefill = prefill;
    f.workload.decode = decode;
    f.hbm.capacity = kvtier::scenario::ByteSize(10_000_000);
    f.skip.source = source;
    f.skip.rate = 0.4;
    f.skip.page = page;
    f.skip.dense_layers = 1;
    f.skip.layer_skip_rate = LayerRates::Mean(0.1);
    f.skip.mlp_skip_rate = LayerRates::Mean(0.1);
    build(f)
}

fn to_binary(sc: &Scenario) -> Vec<u8> {
    let mut out = Vec::new();
    binary::write_trace(&mut out, trace::open(sc).unwrap().as_mut(), "unit test").unwrap();
    out
}

fn read_binary(bytes: &[u8]) -> anyhow::Result<Vec<StepSkips>> {
    let mut r = BinaryTraceReader::new(
        "t.kvtb".into(),
        Box::new(std::io::Cursor::new(bytes.to_vec())),
    )?;
    let mut v = Vec::new();
    for _ in 0..r.dims().decode {
        let mut s = StepSkips::default();
        r.next_step(&mut s)?;
        v.push(s);
    }
    Ok(v)
}

#[test]
fn binary_round_trip_is_exact() {
    for (source, page) in [
        (SkipSource::HeavyHitter, 16),
        (SkipSource::HeavyHitter, 1),
        (SkipSource::Uniform, 16),
    ] {
        let sc = scenario(source, page);
        let generated = collect(trace::open(&sc).unwrap().as_mut());
        let bytes = to_binary(&sc);
        assert_eq!(
            read_binary(&bytes).unwrap(),
            generated,
            "{source:?} page {page}"
        );
        // Text -> binary -> text gives the same text, byte for byte.
        let mut t1 = Vec::new();
        text::write_trace(&mut t1, trace::open(&sc).unwrap().as_mut(), "p").unwrap();
        let mut b = Vec::new();
        binary::write_trace(
            &mut b,
            text_trace(std::str::from_utf8(&t1).unwrap()).as_mut(),
            "p",
        )
        .unwrap();
        let mut t2 = Vec::new();
        let mut r = BinaryTraceReader::new("b".into(), Box::new(std::io::Cursor::new(b))).unwrap();
        text::write_trace(&mut t2, &mut r, "p").unwrap();
        assert_eq!(t1, t2);
    }
}

#[test]
fn binary_is_smaller_than_text() {
    let sc = scenario(SkipSource::HeavyHitter, 16);
    let mut t = Vec::new();
    text::write_trace(&mut t, trace::open(&sc).unwrap().as_mut(), "").unwrap();
    let b = to_binary(&sc);
    assert!(
        b.len() * 2 < t.len(),
        "binary {} vs text {}",
        b.len(),
        t.len()
    );
}

#[test]
fn every_truncation_is_reported_with_a_byte_offset() {
    let bytes = to_binary(&small(SkipSource::HeavyHitter));
    for cut in 0..bytes.len() {
        let e = read_binary(&bytes[..cut])
            .expect_err("a truncated file must fail")
            .to_string();
        assert!(e.contains("t.kvtb: byte offset "), "cut {cut}: {e}");
    }
    assert!(read_binary(&bytes).is_ok());
}

#[test]
fn every_single_byte_corruption_is_detected() {
    let bytes = to_binary(&small(SkipSource::HeavyHitter));
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x20;
        let e = read_binary(&bad)
            .expect_err("a corrupted file must fail")
            .to_string();
        assert!(e.contains("byte offset "), "byte {i}: {e}");
    }
}

#[test]
fn wrong_version_and_foreign_files_are_named() {
    let mut bytes = to_binary(&scenario(SkipSource::Uniform, 16));
    bytes[8] = 2;
    let e = read_binary(&bytes).unwrap_err().to_string();
    assert!(
        e.contains("byte offset 8") && e.contains("version 2"),
        "{e}"
    );
    let e = read_binary(b"kvtrace 1 prefill=4 decode=3 layers=2\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("byte offset 0") && e.contains("not a kvtrace binary"),
        "{e}"
    );
    let mut extra = to_binary(&scenario(SkipSource::Uniform, 16));
    extra.push(0);
    let e = read_binary(&extra).unwrap_err().to_string();
    assert!(e.contains("after the end marker"), "{e}");
}

proptest! {
    #[test]
    fn random_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..400), keep in 0usize..200) {
        // A valid prefix followed by garbage exercises the block decoder, not just the magic check.
        static VALID: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let bytes = VALID.get_or_init(|| to_binary(&small(SkipSource::Uniform)));
        let mut data = bytes[..keep.min(bytes.len())].to_vec();
        data.extend_from_slice(&tail);
        let _ = read_binary(&data);
    }
}

#[test]
fn convert_through_the_binary_round_trips_and_the_engine_reads_both() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let text_scen = std::fs::read_to_string(repo().join("scenarios/tiny.toml"))
        .unwrap()
        .replace("prefill = 4", "prefill = 300")
        .replace("decode = 3", "decode = 20")
        .replace("capacity = \"2300 B\"", "capacity = \"1 MB\"")
        .replace(
            "source = \"none\"",
            "source = \"heavy_hitter\"\nrate = 0.5\ndense_layers = 0",
        );
    std::fs::write(p.join("s.toml"), text_scen).unwrap();
    let kv = || Command::cargo_bin("kvtier").unwrap();
    kv().current_dir(p)
        .args(["trace", "gen", "s.toml", "-o", "a.kvtrace"])
        .assert()
        .success();
    kv().current_dir(p)
        .args(["trace", "convert", "a.kvtrace", "-o", "b.kvtb"])
        .assert()
        .success();
    kv().current_dir(p)
        .args(["trace", "convert", "b.kvtb", "-o", "c.kvtrace"])
        .assert()
        .success();
    let (a, c) = (
        std::fs::read(p.join("a.kvtrace")).unwrap(),
        std::fs::read(p.join("c.kvtrace")).unwrap(),
    );
    assert_eq!(
        a, c,
        "text -> binary -> text is exact (provenance carried over)"
    );
    // The engine gives the same run from the text file, the binary file and the generator.
    let run = |file: Option<&str>| {
        let scen = match file {
            None => "s.toml".to_string(),
            Some(f) => {
                let t = std::fs::read_to_string(p.join("s.toml")).unwrap().replace(
                    "source = \"heavy_hitter\"\nrate = 0.5\ndense_layers = 0",
                    &format!("source = \"file\"\nfile = \"{f}\""),
                );
                std::fs::write(p.join(format!("{f}.toml")), t).unwrap();
                format!("{f}.toml")
            }
        };
        let out = kv()
            .current_dir(p)
            .args(["run", &scen, "--format", "csv"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
            .split_once(',')
            .unwrap()
            .1
            .to_string()
    };
    let g = run(None);
    assert_eq!(run(Some("a.kvtrace")), g);
    assert_eq!(run(Some("b.kvtb")), g);
    // A truncated binary file fails the run with exit 2 and the byte offset.
    let b = std::fs::read(p.join("b.kvtb")).unwrap();
    std::fs::write(p.join("t.kvtb"), &b[..b.len() / 2]).unwrap();
    let t = std::fs::read_to_string(p.join("s.toml")).unwrap().replace(
        "source = \"heavy_hitter\"\nrate = 0.5\ndense_layers = 0",
        "source = \"file\"\nfile = \"t.kvtb\"",
    );
    std::fs::write(p.join("t.toml"), t).unwrap();
    let out = kv()
        .current_dir(p)
        .args(["run", "t.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("t.kvtb: byte offset") && err.contains("truncated"),
        "{err}"
    );
}

#[test]
fn recorded_traces_round_trip_exactly() {
    for name in [
        "essay-1k-mass90",
        "declaration-1k-pages16",
        "lincoln-1k-share10",
        "chat-4k-pages32",
    ] {
        let path = repo().join(format!("traces/{name}.kvtrace"));
        let text = std::fs::read(&path).unwrap();
        let mut b = Vec::new();
        let mut src = trace::open_file(&path).unwrap();
        let prov = src.provenance().unwrap_or_default();
        binary::write_trace(&mut b, src.as_mut(), &prov).unwrap();
        let mut back = Vec::new();
        let mut r =
            BinaryTraceReader::new("b".into(), Box::new(std::io::Cursor::new(b.clone()))).unwrap();
        text::write_trace(&mut back, &mut r, &prov).unwrap();
        // Same sets step by step, and the same text when the original was written by a writer
        // that puts only the provenance comments before the first line.
        let orig = collect(trace::open_file(&path).unwrap().as_mut());
        let again = collect(text_trace(std::str::from_utf8(&back).unwrap()).as_mut());
        assert_eq!(orig, again, "{name}");
        assert!(
            b.len() < text.len(),
            "{name}: binary {} >= text {}",
            b.len(),
            text.len()
        );
    }
}
