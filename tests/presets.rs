//! Hardware and model presets: every file parses and cites a source for every figure, derived
//! figures match the published ones, and a scenario's own fields win.

mod common;

use assert_cmd::Command;
use common::repo;
use kvtier::scenario::preset::{self, HARDWARE, MODELS};
use kvtier::scenario::Scenario;

fn scenario(text: &str) -> anyhow::Result<Scenario> {
    Scenario::from_toml(text, None)
}

/// A scenario on `hardware` running `model`, the rest as small as can be.
fn on(hardware: &str, model: &str, extra: &str) -> String {
    format!(
        "hardware = \"{hardware}\"\n{extra}\n[model]\npreset = \"{model}\"\n[workload]\nprefill = 4\ndecode = 2\n[hbm]\nkv_budget = 1\n"
    )
}

#[test]
fn every_preset_file_is_shipped_parses_and_cites_its_sources() {
    for (dir, list) in [("hardware", HARDWARE), ("models", MODELS)] {
        let mut files: Vec<String> = std::fs::read_dir(repo().join("presets").join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let names: Vec<String> = list.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(files, names, "presets/{dir} and the embedded list differ");
    }
    for (name, _) in HARDWARE {
        let p = preset::hardware(name, None).unwrap();
        assert_eq!(&p.name, name);
        for f in &p.figure {
            assert!(f.source.len() > 10, "{name}: {} has no source", f.field);
            let n = [
                f.value.is_some(),
                f.datasheet.is_some() || f.measured.is_some(),
                f.by_dtype_bytes.is_some(),
            ]
            .iter()
            .filter(|x| **x)
            .count();
            assert_eq!(n, 1, "{name}: {} needs exactly one kind of value", f.field);
        }
        // A preset alone gives a valid hardware set-up for a model.
        scenario(&on(name, "llama-3.1-8b", "")).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    }
    for (name, _) in MODELS {
        // The loader refuses a config field without a source.
        let p = preset::model(name, None).unwrap();
        assert_eq!(&p.name, name);
        scenario(&on("h200", name, "")).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    }
}

#[test]
fn llama_3_1_70b_figures_match_the_published_ones() {
    let p = preset::model("llama-3.1-70b", None).unwrap();
    let c = &p.config;
    // Attention: Q and O 8192 x 8192 each, K and V 8192 x 1024 each = 150,994,944; MLP:
    // 3 x 8192 x 28672 = 704,643,072.
    assert_eq!(c.attn_params(), Some(150_994_944));
    assert_eq!(c.mlp_params(0), Some(704_643_072));
    let share = c.attn_share().unwrap();
    assert!(
        (share - 150_994_944.0 / 855_638_016.0).abs() < 1e-12,
        "{share}"
    );
    // 80 x 855,638,016 + 2 x 128,256 x 8,192 = 70,553,436,160: within 1% of the published
    // 70,553,706,496 (norms are left out).
    let derived = c.params_from_dims().unwrap() as f64;
    assert!((derived / c.params as f64 - 1.0).abs() < 0.01, "{derived}");
    // A scenario on it: 2 x 8 KV heads x 128 x 2 B = 4,096 B per position and layer; x 80
    // layers = 327,680 B per token.
    let sc = scenario(&on("gh200", "llama-3.1-70b", "")).unwrap();
    assert_eq!(sc.sizes.entry_bytes * sc.sizes.layers as u64, 327_680);
    assert_eq!(sc.sizes.compute.q_heads, Some(64));
    assert_eq!(sc.file.model.attn_weight_fraction, Some(share));
}

#[test]
fn every_dense_model_has_its_published_parameter_count_within_one_percent() {
    for (name, _) in MODELS {
        let p = preset::model(name, None).unwrap();
        let c = &p.config;
        let Some(derived) = c.params_from_dims() else {
            continue; // the seed's model gives no dimensions
        };
        let (ratio, tolerance) = match c.active_params {
            // MoE: the parameters read per token (the dense layers' MLPs, then the shared and
            // activated experts), against the published activated count.
            Some(active) => {
                let layers: u64 = (0..c.layers)
                    .map(|l| c.attn_params().unwrap() + c.mlp_params(l).unwrap())
                    .sum();
                let emb = 2 * c.vocab.unwrap() * c.hidden.unwrap();
                ((layers + emb) as f64 / active as f64, 0.02)
            }
            None => (derived as f64 / c.params as f64, 0.01),
        };
        assert!(
            (ratio - 1.0).abs() < tolerance,
            "{name}: derived / published = {ratio}"
        );
    }
}

#[test]
fn an_mla_entry_is_one_latent_from_the_config() {
    // DeepSeek-V3: kv_lora_rank 512 + qk_rope_head_dim 64 = 576 values x 2 B = 1,152 B per
    // position and layer (not 2 x heads x head size).
    let sc = scenario(&on("h200", "deepseek-v3", "")).unwrap();
    assert_eq!(sc.sizes.entry_bytes, 1152);
    assert_eq!(sc.sizes.layers, 61);
    // 4-bit KV halves it again... in bits: 576 x 4 / 8 = 288 B.
    let text = on("h200", "deepseek-v3", "").replace(
        "preset = \"deepseek-v3\"",
        "preset = \"deepseek-v3\"\nkv_dtype_bits = 4",
    );
    assert_eq!(scenario(&text).unwrap().sizes.entry_bytes, 288);
}

#[test]
fn the_scenarios_own_fields_win_and_the_sources_say_where_the_rest_came_from() {
    let text = on("gh200", "llama-3.1-70b", "")
        .replace(
            "preset = \"llama-3.1-70b\"",
            "preset = \"llama-3.1-70b\"\ndtype_bytes = 1\nkv_heads = 4",
        )
        .replace("kv_budget = 1", "kv_budget = 1\ncapacity = 200");
    let sc = scenario(&text).unwrap();
    // The file's 4 KV heads and 200 GB win; the rest comes from the presets.
    assert_eq!(sc.sizes.entry_bytes, 2 * 4 * 128 * 2);
    assert_eq!(sc.sizes.capacity_bytes, 200_000_000_000);
    let from = |f: &str| {
        sc.provenance
            .iter()
            .find(|p| p.field == f)
            .map(|p| p.origin.clone())
    };
    assert_eq!(from("model.kv_heads"), None);
    assert_eq!(from("hbm.capacity"), None);
    assert_eq!(from("model.layers").as_deref(), Some("model llama-3.1-70b"));
    assert_eq!(
        from("ext.link_write_bandwidth").as_deref(),
        Some("hardware gh200 (measured)")
    );
    // FP8 weights (dtype_bytes = 1) get the FP8 compute rate.
    assert_eq!(sc.sizes.compute.flops_per_s, Some(1979e12));
    // Measured link figures by default: 375 / 297 GB/s; datasheet on request: 450 / 450.
    assert_eq!(
        (sc.sizes.link_read_bw, sc.sizes.link_write_bw),
        (375e9, 297e9)
    );
    let ds = scenario(&on(
        "gh200",
        "llama-3.1-70b",
        "hardware_figures = \"datasheet\"",
    ))
    .unwrap();
    assert_eq!(
        (ds.sizes.link_read_bw, ds.sizes.link_write_bw),
        (450e9, 450e9)
    );
}

#[test]
fn an_explicit_kv_bytes_replaces_the_presets_heads() {
    // Documented rule: the file's kv_bytes wins; the preset's KV heads are not applied, its
    // head_dim and query heads still serve compute.
    let text = on("h200", "llama-3.1-8b", "").replace(
        "preset = \"llama-3.1-8b\"",
        "preset = \"llama-3.1-8b\"\nkv_bytes = \"1000 B\"",
    );
    let sc = scenario(&text).unwrap();
    assert_eq!(sc.sizes.entry_bytes, 1000);
    assert!(sc.file.model.kv_heads.is_none());
    assert_eq!(sc.sizes.compute.q_heads, Some(32));
}

#[test]
fn an_unknown_preset_is_refused_with_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("s.toml");
    std::fs::write(&s, on("h300", "llama-3.1-8b", "")).unwrap();
    let o = Command::cargo_bin("kvtier")
        .unwrap()
        .args(["run", s.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("field `hardware`") && err.contains("unknown hardware preset \"h300\""),
        "{err}"
    );
    assert!(err.contains("gh200") && err.contains("h100-sxm"), "{err}");
    std::fs::write(&s, on("h200", "llama-4", "")).unwrap();
    let o = Command::cargo_bin("kvtier")
        .unwrap()
        .args(["run", s.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("unknown model preset \"llama-4\"") && err.contains("llama-3.1-70b"),
        "{err}"
    );
}

#[test]
fn scenario_show_says_which_field_came_from_where() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("s.toml");
    std::fs::write(&s, on("gh200", "llama-3.1-70b", "")).unwrap();
    let o = Command::cargo_bin("kvtier")
        .unwrap()
        .args(["scenario", "show", s.to_str().unwrap()])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    assert!(out.contains("fields from presets"), "{out}");
    assert!(
        out.contains("ext.link_read_bandwidth") && out.contains("Schieffer et al."),
        "{out}"
    );
    assert!(out.contains("num_hidden_layers = 80"), "{out}");
}
