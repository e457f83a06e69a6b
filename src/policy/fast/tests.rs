//! A compiled hook computes what Rhai computes: every shipped hook is compiled, and for
//! random operands every operator, built-in function and statement form gives the same value,
//! or the same error, as Rhai's interpreter.

use proptest::prelude::*;
use rhai::{Dynamic, EvalAltResult, Scope, FLOAT, INT};

use super::*;
use crate::policy::budget::{self, Budget};
use crate::policy::builtin::BUILTIN;
use crate::policy::ctx::{Ctx, Params};
use crate::policy::host::{new_engine, Hook, Script};

/// Every hook of the shipped scripts runs compiled, but one called once per layer before the
/// run (FlexGen's `initial` prints an interpolated string, which is not translated).
#[test]
fn every_shipped_hook_is_compiled() -> anyhow::Result<()> {
    let engine = new_engine();
    let mut interpreted = Vec::new();
    for b in BUILTIN {
        let s = Script::compile(&engine, b.path.as_ref(), b.source.to_string())?;
        for h in [Hook::Place, Hook::OnStep, Hook::OnLayer, Hook::Initial] {
            if s.has(h) && !s.compiled(h) {
                interpreted.push(format!("{} {}", b.path, h.name()));
            }
        }
    }
    assert_eq!(
        interpreted,
        ["policies/baselines/placement/flexgen.rhai initial"]
    );
    Ok(())
}

#[test]
fn what_is_not_translated_is_left_to_rhai() -> anyhow::Result<()> {
    let engine = new_engine();
    for body in [
        "switch ctx.layer { 0 => 1, _ => 2 }",
        "let a = [1, 2]; a[0]",
        "let x = 1; `${x}`",
        "try { ctx.layer } catch { 2 }",
        "is_def_var(\"x\")",
        "let f = |x| x + 1; f.call(1)",
    ] {
        let ast = engine.compile(format!("fn f(ctx) {{ {body} }}"))?;
        assert!(FastFn::compile(&engine, &ast, "f").is_none(), "{body}");
    }
    let ast = engine.compile("fn f(ctx) { let a = 1; a + 1 }")?;
    assert!(FastFn::compile(&engine, &ast, "f").is_some());
    Ok(())
}

/// A value as the test compares it: its type and its exact rendering (floats' bits).
fn shown(v: &Dynamic) -> String {
    match v.as_float() {
        Ok(f) => format!("float {:#x}", f.to_bits()),
        Err(_) => format!("{} {v:?}", v.type_name()),
    }
}

/// An error without its position (the column may differ, see the module documentation).
fn message(e: &EvalAltResult) -> String {
    let e = match e {
        EvalAltResult::ErrorInFunctionCall(name, _, inner, _) if name == "f" => inner,
        e => e,
    };
    let mut m = e.to_string();
    if let Some(i) = m.find(" (line ") {
        m.truncate(i);
    }
    m
}

/// `fn f(ctx) { let a = <param a>; let b = <param b>; <body> }` run by Rhai and compiled.
fn both(body: &str, a: Dynamic, b: Dynamic) -> Result<(String, String), TestCaseError> {
    let engine = new_engine();
    let src = format!("fn f(ctx) {{ let a = ctx.param(\"a\"); let b = ctx.param(\"b\"); {body} }}");
    let ast = engine
        .compile(&src)
        .map_err(|e| TestCaseError::fail(format!("{body}: {e}")))?;
    let params: Params = [("a".to_string(), a), ("b".to_string(), b)].into();
    let budget = Budget::new(budget::DEFAULT_MAX_RUN_OPERATIONS, None);
    let ctx = Ctx::new(params, budget.clone());
    let show = |r: Result<Dynamic, Box<EvalAltResult>>| match r {
        Ok(v) => shown(&v),
        Err(e) => format!("error: {}", message(&e)),
    };
    let rhai = show(engine.call_fn::<Dynamic>(
        &mut Scope::new(),
        &ast,
        "f",
        (Dynamic::from(ctx.clone()),),
    ));
    let fast = FastFn::compile(&engine, &ast, "f")
        .ok_or_else(|| TestCaseError::fail(format!("not compiled: {body}")))?;
    let mut global = engine.new_global_runtime_state();
    global.lib.push(ast.shared_lib().clone());
    let mut caches = rhai::Caches::new();
    caches.push_fn_resolution_cache();
    let mut rt = Runtime {
        engine: &engine,
        global: &mut global,
        caches: &mut caches,
        scope: &mut Scope::new(),
        budget: &budget,
        slots: &mut Vec::new(),
        memo: &mut Vec::new(),
        flow: Default::default(),
    };
    Ok((rhai, show(fast.call(&mut rt, &mut Dynamic::from(ctx)))))
}

/// A `ctx.param` call with constant arguments gives its value again from the run's memo;
/// one that fails is not kept, and fails again.
#[test]
fn a_constant_param_call_is_kept_for_the_run() -> anyhow::Result<()> {
    let engine = new_engine();
    let src = r#"fn f(ctx) { ctx.param("a", 0) * 10 + ctx.param("c", 1) }
                 fn g(ctx) { let n = ctx.param("a", 0); ctx.param("missing") }"#;
    let ast = engine.compile(src)?;
    let compiled = |name| {
        FastFn::compile(&engine, &ast, name).ok_or_else(|| anyhow::anyhow!("{name} not compiled"))
    };
    let (f, g) = (compiled("f")?, compiled("g")?);
    let params: Params = [("a".to_string(), Dynamic::from_int(3))].into();
    let budget = Budget::new(budget::DEFAULT_MAX_RUN_OPERATIONS, None);
    let ctx = Ctx::new(params, budget.clone());
    let mut global = engine.new_global_runtime_state();
    global.lib.push(ast.shared_lib().clone());
    let mut caches = rhai::Caches::new();
    caches.push_fn_resolution_cache();
    let (mut scope, mut slots) = (Scope::new(), Vec::new());
    let (mut memo_f, mut memo_g) = (Vec::new(), Vec::new());
    for turn in 0..2 {
        let mut rt = Runtime {
            engine: &engine,
            global: &mut global,
            caches: &mut caches,
            scope: &mut scope,
            budget: &budget,
            slots: &mut slots,
            memo: &mut memo_f,
            flow: Default::default(),
        };
        // 3 * 10 + 1 (the default of the absent "c").
        let v = f.call(&mut rt, &mut Dynamic::from(ctx.clone()))?;
        assert_eq!(v.as_int().ok(), Some(31), "turn {turn}");
        rt.memo = &mut memo_g;
        let e = g
            .call(&mut rt, &mut Dynamic::from(ctx.clone()))
            .map(|v| v.to_string());
        let e = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("unknown param \"missing\""), "{e}");
    }
    let ints = |m: &[Option<Dynamic>]| -> Vec<Option<INT>> {
        m.iter()
            .map(|v| v.as_ref().and_then(|v| v.as_int().ok()))
            .collect()
    };
    assert_eq!(ints(&memo_f), [Some(3), Some(1)]);
    assert_eq!(ints(&memo_g), [Some(3), None]);
    Ok(())
}

fn value() -> impl Strategy<Value = Dynamic> {
    prop_oneof![
        prop::sample::select(vec![
            0,
            1,
            -1,
            2,
            7,
            -7,
            64,
            INT::MAX,
            INT::MIN,
            INT::MAX - 1
        ])
        .prop_map(Dynamic::from_int),
        any::<INT>().prop_map(Dynamic::from_int),
        (-100i64..100).prop_map(Dynamic::from_int),
        prop::sample::select(vec![
            0.0,
            -0.0,
            1.0,
            0.5,
            -2.5,
            1e-300,
            FLOAT::MAX,
            FLOAT::NAN,
            FLOAT::INFINITY,
            FLOAT::NEG_INFINITY,
            3.0 + FLOAT::EPSILON,
            9.3e18,
        ])
        .prop_map(Dynamic::from_float),
        (-100.0f64..100.0).prop_map(Dynamic::from_float),
        any::<bool>().prop_map(Dynamic::from_bool),
        Just(Dynamic::from("ab")),
        Just(Dynamic::UNIT),
    ]
}

/// A range ending at the largest integer runs its last turn (a half-open end would overflow).
#[test]
fn an_inclusive_range_to_the_largest_integer_runs_its_last_turn() -> Result<(), TestCaseError> {
    let body = "let s = 0; for i in (a - 2)..=a { s += 1; } s";
    let (rhai, fast) = both(body, Dynamic::from_int(INT::MAX), Dynamic::UNIT)?;
    assert_eq!((rhai.as_str(), fast.as_str()), ("i64 3", "i64 3"));
    Ok(())
}

const BODIES: &[&str] = &[
    "a + b",
    "a - b",
    "a * b",
    "a / b",
    "a % b",
    "a ** b",
    "a << b",
    "a == b",
    "a != b",
    "a > b",
    "a >= b",
    "a < b",
    "a <= b",
    "a & b",
    "a | b",
    "a ^ b",
    "a && b",
    "a || b",
    "-a",
    "!a",
    "min(a, b)",
    "max(a, b)",
    "a.to_float()",
    "a.to_int()",
    "a.floor()",
    "b.to_float() / a",
    "(a * b).to_int()",
    "let c = a; c += b; c",
    "let c = a; c -= b; c",
    "let c = a; c *= b; c",
    "let c = a; c /= b; c",
    "let c = a; c %= b; c",
    "if a { 1 } else { 2 }",
    "if a > b { return a; } b",
    "let s = 0; for i in a..b { s += 1; if s > 20 { break; } } s",
    "let s = 0; for i in a..=b { if i % 2 == 0 { continue; } s += 1; if s > 20 { break; } } s",
    "let s = 0; for i in a..=a { s += 1; } s",
    "let n = 0; while n < a { n += 1; if n > 20 { break; } } n",
    // A return from inside loops, and a break or continue of an inner loop only.
    "for i in 0..5 { let n = 0; while true { n += 1; if n > 2 { return a; } } } b",
    "let s = 0; for i in 0..3 { for j in 0..3 { if j == 1 { break; } s += 1; } s += 10; } s",
    "let s = 0; for i in 0..3 { let n = 0; loop { n += 1; if n < 3 { continue; } break; } s += n; } s",
    "let x = if a == b { a } else { b }; x",
    // Last reads are moves (live.rs): a variable read again after, in a loop or a branch,
    // must still hold its value.
    "let c = a; let d = c; c == d",
    "let x = a; for i in 0..3 { let t = x; } x",
    "let x = a; let y = 0; for i in 0..3 { y = x; } y",
    "let x = a; let y = 0; let n = 0; while n < 3 { y = x; n += 1; } y",
    "let x = a; let n = 0; while n < 3 { let t = x; n += 1; } x",
    "let x = a; let y = x; x = b; if y == a { x } else { y }",
    "let x = a; for i in 0..3 { let y = x; x = i; } x",
    "let x = a; if b == a { let y = x; } else { let z = b; } x",
    "let x = a; let y = 0; loop { y = x; break; } if y == x { x } else { y }",
    "let x = a; for i in 0..2 { if i == 0 { continue; } x = b; } x",
    "let x = b; (x == a) || (x == b)",
    // Operators on operators, computed in place when every operand is plain (eval.rs `peek`),
    // with last reads among the operands, overflows and non-boolean conditions.
    "(a + b) * (a - b)",
    "a < b - a",
    "a * 2 >= b + 1.5",
    "if a - b > a { 1 } else { 2 }",
    "if a + b { 1 } else { 2 }",
    "let c = a; let d = b; (c + d) - c",
    "let c = a; let d = b; c * 2 + d",
    "let c = a; (c + 1) == (c - 1)",
    "let c = a; let d = b; let s = 0; for i in 0..2 { s += (c - i) * d; } s",
    "let c = a; let d = b; while (c + 1) < d - 1 { c += 1; if c > 20 { break; } } c",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn compiled_hooks_agree_with_rhai(a in value(), b in value()) {
        for body in BODIES {
            let (rhai, fast) = both(body, a.clone(), b.clone())?;
            prop_assert_eq!(&rhai, &fast, "{} with a = {:?}, b = {:?}", body, a, b);
        }
    }
}
