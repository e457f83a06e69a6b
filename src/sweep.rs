//! Sweeps: scenario variants made by setting dotted keys (`memory.hierarchy`,
//! `initial.weights_on_hbm`, `policy.params.k`) to lists or ranges of values, and their
//! cartesian product.
//!
//! Every point is built and validated before anything runs, so an unknown key or a value of the
//! wrong type is reported at once, naming the `--vary` argument.
//!
//! Keys can also vary together (`--vary "workload.batch=1,4,16;hbm.kv_budget=58,232,928"`):
//! linked keys take their i-th values at the same point, so a study can hold a ratio fixed or
//! name levels that span two fields.
//!
//! Not here: running points, shards and printing them ([`crate::sweep_run`]); study files
//! ([`crate::study`]).

use std::fmt;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;

/// One `--vary KEY=V1,V2,...` argument.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Vary {
    pub key: String,
    pub values: Vec<toml::Value>,
    /// Keys that vary together with `key`: the same number of values, the i-th of each at the
    /// same point (`KEY=..;KEY2=..` on the command line).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub with: Vec<Vary>,
}

impl Vary {
    /// Every key this argument sets, `key` first.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.key.as_str()).chain(self.with.iter().map(|w| w.key.as_str()))
    }

    /// The `(key, value)` assignments of its `i`-th value.
    fn assign(&self, i: usize, out: &mut Vec<(String, toml::Value)>) {
        out.push((self.key.clone(), self.values[i].clone()));
        for w in &self.with {
            out.push((w.key.clone(), w.values[i].clone()));
        }
    }

    /// Checks that linked keys have as many values as `key`.
    pub fn check(&self) -> Result<()> {
        for w in &self.with {
            if !w.with.is_empty() {
                bail!("--vary {self}: a linked key cannot have linked keys of its own");
            }
            if w.values.len() != self.values.len() {
                bail!(
                    "--vary {self}: `{}` has {} values but `{}` has {}; keys that vary together need as many values each",
                    w.key,
                    w.values.len(),
                    self.key,
                    self.values.len()
                );
            }
        }
        Ok(())
    }
}

/// Formats a value as a user would type it (strings bare).
pub fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl fmt::Display for Vary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let vals: Vec<String> = self.values.iter().map(value_text).collect();
        write!(f, "{}={}", self.key, vals.join(","))?;
        for w in &self.with {
            write!(f, ";{w}")?;
        }
        Ok(())
    }
}

/// Reads one value: a TOML literal (`0.5`, `true`, `"x"`, `[1, 2]`) or, failing that, a bare
/// string (`inclusive`).
fn parse_value(s: &str) -> toml::Value {
    let s = s.trim();
    toml::from_str::<toml::Table>(&format!("v = {s}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(s.to_string()))
}

/// Rounds away binary noise from range steps (0.1 + 0.2 -> 0.3) at 12 significant digits.
fn tidy(x: f64) -> f64 {
    if x == 0.0 {
        return 0.0;
    }
    let digits = 12 - x.abs().log10().ceil() as i32;
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// `a..b:step`, both ends included (within a millionth of a step).
fn parse_range(s: &str) -> Option<Result<Vec<toml::Value>>> {
    let (range, step) = s.split_once(':')?;
    let (a, b) = range.split_once("..")?;
    let ints = [a, b, step].iter().all(|x| x.trim().parse::<i64>().is_ok());
    let parse = |x: &str| {
        x.trim()
            .parse::<f64>()
            .map_err(|_| anyhow!("range {s:?}: {x:?} is not a number"))
    };
    Some((|| {
        let (a, b, step) = (parse(a)?, parse(b)?, parse(step)?);
        if step.is_nan() || step <= 0.0 || b < a {
            bail!("range {s:?} needs a <= b and a step > 0");
        }
        let n = ((b - a) / step + 1e-6).floor() as usize + 1;
        if n > 100_000 {
            bail!("range {s:?} has {n} values (at most 100000)");
        }
        Ok((0..n)
            .map(|i| {
                let x = a + i as f64 * step;
                if ints {
                    toml::Value::Integer(x.round() as i64)
                } else {
                    toml::Value::Float(tidy(x))
                }
            })
            .collect())
    })())
}

/// Parses `KEY=V1,V2,...` or `KEY=a..b:step`, or several of them joined by `;` (keys that vary
/// together).
pub fn parse_vary(spec: &str) -> Result<Vary> {
    let mut parts = spec.split(';').filter(|p| !p.trim().is_empty());
    let mut first = parse_one(parts.next().unwrap_or(spec))?;
    for p in parts {
        first.with.push(parse_one(p)?);
    }
    first.check()?;
    Ok(first)
}

fn parse_one(spec: &str) -> Result<Vary> {
    let (key, vals) = spec
        .split_once('=')
        .ok_or_else(|| anyhow!("--vary {spec:?}: expected KEY=V1,V2,... or KEY=a..b:step"))?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        bail!("--vary {spec:?}: {key:?} is not a dotted key such as `memory.hierarchy`");
    }
    let values = match parse_range(vals) {
        Some(r) => r.with_context(|| format!("--vary {spec:?}"))?,
        None => split_top_level(vals)
            .iter()
            .map(|v| parse_value(v))
            .collect(),
    };
    if values.is_empty() {
        bail!("--vary {spec:?}: no values");
    }
    Ok(Vary {
        key: key.to_string(),
        values,
        with: Vec::new(),
    })
}

/// Splits on commas outside brackets and quotes, so `[1,2],[3,4]` gives two values.
fn split_top_level(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth, mut quote) = (Vec::new(), String::new(), 0i32, None);
    for c in s.chars() {
        match (c, quote) {
            ('"' | '\'', None) => quote = Some(c),
            (q, Some(open)) if q == open => quote = None,
            ('[' | '{', None) => depth += 1,
            (']' | '}', None) => depth -= 1,
            (',', None) if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() || !out.is_empty() {
        out.push(cur);
    }
    out.into_iter().filter(|v| !v.trim().is_empty()).collect()
}

/// Sets `key` (dotted) in `table` to `value`, creating tables on the way.
pub fn set_path(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<()> {
    let mut parts = key.split('.').peekable();
    let mut t = table;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            t.insert(part.to_string(), value);
            return Ok(());
        }
        let entry = t
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = entry
            .as_table_mut()
            .ok_or_else(|| anyhow!("`{part}` in `{key}` is a value, not a section"))?;
    }
    Ok(())
}

/// One point of a sweep: the values it sets and the scenario they give.
#[derive(Clone, Debug)]
pub struct Point {
    pub assignments: Vec<(String, toml::Value)>,
    pub scenario: Scenario,
}

impl Point {
    /// `key=value` pairs, for labels and result files.
    pub fn label(&self) -> String {
        self.assignments
            .iter()
            .map(|(k, v)| format!("{k}={}", value_text(v)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Every combination of the varied values (the first `--vary` changes slowest), each validated.
pub fn expand(base: &Path, varies: &[Vary]) -> Result<Vec<Point>> {
    let text = crate::input::read_text(base, "scenario")?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| anyhow!("{}: {}", base.display(), e.message()))?;
    // The base itself must be valid, with its own line-numbered errors.
    Scenario::from_toml(&text, Some(base))?;
    expand_table(&table, Some(base), varies)
}

/// [`expand`] from a base scenario given as a table (a Python caller's, already checked);
/// `path` is where it came from (relative paths, `scenario=` files), `None` when built in code
/// (then relative to the working directory).
pub fn expand_table(
    table: &toml::Table,
    path: Option<&Path>,
    varies: &[Vary],
) -> Result<Vec<Point>> {
    let dir = path.and_then(Path::parent).unwrap_or(Path::new("."));
    let mut keys = std::collections::HashSet::new();
    for v in varies {
        v.check()?;
        for k in v.keys() {
            if !keys.insert(k) {
                bail!("--vary {k}: the key is varied twice");
            }
        }
    }
    let total: usize = varies.iter().map(|v| v.values.len()).product();
    if total > 1_000_000 {
        bail!("the sweep has {total} points (at most 1000000)");
    }
    // `scenario=FILE` points start from another scenario file instead of the base.
    let mut others: std::collections::HashMap<String, (std::path::PathBuf, toml::Table)> =
        Default::default();
    for f in scenario_values(varies)? {
        let path = dir.join(&f);
        let text = crate::input::read_text(&path, "scenario")
            .with_context(|| format!("--vary {SCENARIO_KEY}={f}"))?;
        Scenario::from_toml(&text, Some(&path))?;
        let t: toml::Table =
            toml::from_str(&text).map_err(|e| anyhow!("{}: {}", path.display(), e.message()))?;
        others.insert(f, (path, t));
    }
    let mut points = Vec::with_capacity(total);
    for i in 0..total {
        let mut rest = i;
        let mut assignments = Vec::with_capacity(varies.len());
        let mut picks = Vec::with_capacity(varies.len());
        for v in varies.iter().rev() {
            picks.push(rest % v.values.len());
            rest /= v.values.len();
        }
        picks.reverse();
        for (v, &i) in varies.iter().zip(&picks) {
            v.assign(i, &mut assignments);
        }
        let (mut t, from) = match assignments.iter().find(|(k, _)| k == SCENARIO_KEY) {
            Some((_, toml::Value::String(f))) => {
                let (p, t) = &others[f];
                (t.clone(), Some(p.as_path()))
            }
            _ => (table.clone(), path),
        };
        for (k, val) in assignments.iter().filter(|(k, _)| k != SCENARIO_KEY) {
            set_path(&mut t, k, val.clone())
                .with_context(|| format!("--vary {k}={}", value_text(val)))?;
        }
        let scenario = Scenario::from_table(t, from)
            .map_err(|e| anyhow!("{}: {e:#}", describe(&assignments)))?;
        points.push(Point {
            assignments,
            scenario,
        });
    }
    Ok(points)
}

/// The varied key that swaps the whole base scenario: `--vary scenario=a.toml,b.toml` (files
/// relative to the base's folder; other varied keys then apply to each).
pub const SCENARIO_KEY: &str = "scenario";

/// The files named by `scenario=...` values, in order, each once.
pub fn scenario_values(varies: &[Vary]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for v in varies {
        let mut pairs = Vec::new();
        for i in 0..v.values.len() {
            v.assign(i, &mut pairs);
        }
        for (k, val) in pairs.into_iter().filter(|(k, _)| k == SCENARIO_KEY) {
            match val {
                toml::Value::String(f) => {
                    if !out.contains(&f) {
                        out.push(f);
                    }
                }
                other => bail!(
                    "--vary {k}={}: a scenario is a file name (a string)",
                    value_text(&other)
                ),
            }
        }
    }
    Ok(out)
}

fn describe(a: &[(String, toml::Value)]) -> String {
    let parts: Vec<String> = a
        .iter()
        .map(|(k, v)| format!("{k}={}", value_text(v)))
        .collect();
    format!("--vary {}", parts.join(" --vary "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vary(spec: &str) -> Vary {
        parse_vary(spec).expect("a valid --vary in a test")
    }

    #[test]
    fn ranges_include_both_ends_without_float_noise() {
        let v = vary("initial.weights_on_hbm=0.5..1.0:0.1");
        let xs: Vec<f64> = v.values.iter().map(|x| x.as_float().unwrap()).collect();
        assert_eq!(xs, vec![0.5, 0.6, 0.7, 0.8, 0.9, 1.0]);
        let v = vary("workload.batch=1..16:5");
        assert_eq!(v.values, vec![1.into(), 6.into(), 11.into(), 16.into()]);
    }

    #[test]
    fn lists_take_toml_literals_and_bare_words() {
        let v = vary("memory.hierarchy=inclusive,exclusive");
        assert_eq!(
            v.values,
            vec![
                toml::Value::from("inclusive"),
                toml::Value::from("exclusive")
            ]
        );
        let v = vary("skip.layer_skip_rate=[0.1,0.2],0.3");
        assert_eq!(v.values.len(), 2);
        assert!(v.values[0].is_array());
        assert!(parse_vary("nokey").is_err());
        assert!(parse_vary("a..b=1").is_err());
    }

    fn tiny() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/tiny.toml")
    }

    #[test]
    fn expand_builds_the_cartesian_product_first_key_slowest() {
        let v = [
            vary("memory.hierarchy=inclusive,exclusive"),
            vary("initial.weights_on_hbm=0.5,1"),
        ];
        let pts = expand(&tiny(), &v).unwrap();
        let labels: Vec<String> = pts.iter().map(Point::label).collect();
        assert_eq!(
            labels,
            [
                "memory.hierarchy=inclusive initial.weights_on_hbm=0.5",
                "memory.hierarchy=inclusive initial.weights_on_hbm=1",
                "memory.hierarchy=exclusive initial.weights_on_hbm=0.5",
                "memory.hierarchy=exclusive initial.weights_on_hbm=1"
            ]
        );
        // weights_on_hbm = 0.5: floor(200 * 0.5) + floor(400 * 0.5) per layer, 2 layers.
        assert_eq!(pts[0].scenario.sizes.weights_on_hbm_bytes, 600);
        assert_eq!(
            pts[0].scenario.file.memory.hierarchy,
            crate::scenario::Hierarchy::Inclusive
        );
    }

    #[test]
    fn unknown_keys_and_wrong_types_fail_before_running() {
        let e = expand(&tiny(), &[vary("memory.hirarchy=inclusive")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--vary memory.hirarchy=inclusive")
                && e.contains("unknown field `hirarchy`"),
            "{e}"
        );
        let e = expand(&tiny(), &[vary("workload.batch=1,abc")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--vary workload.batch=abc") && e.contains("invalid type"),
            "{e}"
        );
        let e = expand(&tiny(), &[vary("initial.weights_on_hbm=1.5")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`initial.weights_on_hbm` = 1.5"), "{e}");
        // policy.params.* takes any name.
        assert!(expand(&tiny(), &[vary("policy.params.k=1,2")]).is_ok());
    }

    #[test]
    fn linked_keys_vary_together() {
        let v = parse_vary("workload.decode=2,3;name=\"a b\",c").unwrap();
        assert_eq!(v.to_string(), "workload.decode=2,3;name=a b,c");
        let pts = expand(&tiny(), &[v]).unwrap();
        let labels: Vec<String> = pts.iter().map(Point::label).collect();
        assert_eq!(
            labels,
            ["workload.decode=2 name=a b", "workload.decode=3 name=c"]
        );
        let e = parse_vary("workload.decode=1,2;seed=5").unwrap_err();
        assert!(e.to_string().contains("as many values"), "{e}");
        let e = expand(
            &tiny(),
            &[
                vary("workload.batch=1;workload.decode=2"),
                vary("workload.batch=3"),
            ],
        )
        .unwrap_err();
        assert!(e.to_string().contains("varied twice"), "{e}");
    }
}
