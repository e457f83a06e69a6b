//! Quantities with units in scenario files: sizes, bandwidths, compute rates and durations.
//! A bare number has the default unit of its kind (GB, GB/s, FLOP/s, seconds); a string carries
//! its own unit.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::{round_half_up, GB};

/// A byte size in a scenario: a number means GB; a string carries its unit
/// (`"57344 B"`, `"1.5 KB"`, `"141 GB"`, `"2 GiB"`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ByteSize(pub u64);

/// A bandwidth in a scenario: a number means GB/s; a string carries its unit
/// (`"900 GB/s"`, `"100 B/s"`, `"1.2 TB/s"`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bandwidth(pub f64);

fn unit_factor(unit: &str) -> Option<f64> {
    Some(match unit {
        "B" => 1.0,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0f64.powi(4),
        _ => return None,
    })
}

/// Largest size a scenario may give: 1e18 bytes (1 EB). Beyond it sums of bytes over a run could
/// leave 64 bits.
pub const MAX_BYTES: f64 = 1e18;

/// Bytes of a size, or an error naming the value and the largest accepted.
fn size_bytes<E: de::Error>(bytes: f64, given: &dyn fmt::Display) -> Result<ByteSize, E> {
    if !(bytes.is_finite() && bytes >= 0.0) {
        return Err(E::custom(format!(
            "size {given} is not a finite number >= 0"
        )));
    }
    if bytes > MAX_BYTES {
        return Err(E::custom(format!(
            "size {given} is {bytes:e} bytes: at most 1e18 bytes (1 EB) is accepted"
        )));
    }
    Ok(ByteSize(round_half_up(bytes)))
}

struct ByteSizeVisitor;

impl Visitor<'_> for ByteSizeVisitor {
    type Value = ByteSize;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(
            "a size: a number of GB, or a string such as \"57344 B\", \"1.5 MB\", \"141 GB\"",
        )
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
        self.visit_f64(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
        self.visit_f64(v as f64)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ByteSize, E> {
        size_bytes(v * GB, &format_args!("{v} GB"))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<ByteSize, E> {
        let (num, unit) = split_number_exp(s).ok_or_else(|| {
            E::custom(format!(
                "cannot read size {s:?}: expected e.g. \"57344 B\", \"1e15 B\" or \"141 GB\""
            ))
        })?;
        let factor = unit_factor(unit).ok_or_else(|| {
            E::custom(format!(
                "unknown size unit {unit:?} in {s:?}: use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
            ))
        })?;
        size_bytes(num * factor, &format_args!("{s:?}"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ByteSizeVisitor)
    }
}

struct BandwidthVisitor;

impl Visitor<'_> for BandwidthVisitor {
    type Value = Bandwidth;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(
            "a bandwidth: a number of GB/s, or a string such as \"900 GB/s\" or \"100 B/s\"",
        )
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Bandwidth, E> {
        self.visit_f64(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Bandwidth, E> {
        self.visit_f64(v as f64)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Bandwidth, E> {
        // Range checks (> 0) happen in validation, where the field name is known.
        Ok(Bandwidth(v * GB))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Bandwidth, E> {
        let bad = || {
            E::custom(format!(
                "cannot read bandwidth {s:?}: expected e.g. \"900 GB/s\" or \"100 B/s\""
            ))
        };
        let (num, unit) = split_number_exp(s).ok_or_else(bad)?;
        let unit = unit.strip_suffix("/s").ok_or_else(bad)?;
        let factor = unit_factor(unit).ok_or_else(|| {
            E::custom(format!(
                "unknown bandwidth unit {unit:?}/s in {s:?}: use B/s, KB/s, MB/s, GB/s or TB/s"
            ))
        })?;
        Ok(Bandwidth(num * factor))
    }
}

impl<'de> Deserialize<'de> for Bandwidth {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BandwidthVisitor)
    }
}

/// A compute rate in a scenario (`[gpu] flops`): a number means FLOP/s; a string carries its unit
/// (`"989 TFLOP/s"`, `"1.979 PFLOP/s"`, `"5e14 FLOP/s"`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Flops(pub f64);

/// A duration in a scenario (`[gpu] sublayer_overhead`): a number means seconds; a string carries
/// its unit (`"5 us"`, `"0.004 ms"`, `"4000 ns"`, `"4e-6 s"`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Seconds(pub f64);

/// Splits `"1.5e3 TFLOP/s"` into its number and unit; the number may use an exponent.
fn split_number_exp(s: &str) -> Option<(f64, &str)> {
    let s = s.trim();
    let b = s.as_bytes();
    let mut end = 0;
    while end < b.len() {
        let c = b[end];
        let exponent = (c == b'e' || c == b'E')
            && b.get(end + 1)
                .is_some_and(|n| n.is_ascii_digit() || *n == b'-' || *n == b'+');
        if c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'+' | b'-') || exponent {
            end += 1 + usize::from(exponent);
        } else {
            break;
        }
    }
    let num: f64 = s[..end].trim().replace('_', "").parse().ok()?;
    let unit = s[end..].trim();
    (!unit.is_empty()).then_some((num, unit))
}

/// A deserializer for a quantity that is a number in its default unit or a string with a unit
/// from `units` (name, factor to the default unit).
macro_rules! quantity {
    ($ty:ident, $visitor:ident, $what:expr, $example:expr, $units:expr) => {
        struct $visitor;

        impl Visitor<'_> for $visitor {
            type Value = $ty;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "{}: a number, or a string such as {}", $what, $example)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<$ty, E> {
                Ok($ty(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<$ty, E> {
                Ok($ty(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<$ty, E> {
                // Range checks happen in validation, where the field name is known.
                Ok($ty(v))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<$ty, E> {
                let units: &[(&str, f64)] = $units;
                let names: Vec<&str> = units.iter().map(|u| u.0).collect();
                let (num, unit) = split_number_exp(s).ok_or_else(|| {
                    E::custom(format!(
                        "cannot read {} {s:?}: expected e.g. {}",
                        $what, $example
                    ))
                })?;
                let factor = units
                    .iter()
                    .find(|u| u.0 == unit)
                    .map(|u| u.1)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "unknown unit {unit:?} in {s:?}: use one of {}",
                            names.join(", ")
                        ))
                    })?;
                Ok($ty(num * factor))
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any($visitor)
            }
        }
    };
}

quantity!(
    Flops,
    FlopsVisitor,
    "a compute rate in FLOP/s",
    "\"989 TFLOP/s\"",
    &[
        ("FLOP/s", 1.0),
        ("GFLOP/s", 1e9),
        ("TFLOP/s", 1e12),
        ("PFLOP/s", 1e15),
    ]
);

quantity!(
    Seconds,
    SecondsVisitor,
    "a duration in seconds",
    "\"5 us\"",
    &[
        ("s", 1.0),
        ("ms", 1e-3),
        ("us", 1e-6),
        ("µs", 1e-6),
        ("ns", 1e-9),
    ]
);

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Q {
        f: Flops,
        t: Seconds,
    }

    fn q(text: &str) -> Result<Q, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn flops_and_seconds_read_numbers_and_units() {
        let v = q("f = \"989 TFLOP/s\"\nt = \"5 us\"").unwrap();
        assert_eq!((v.f.0, v.t.0), (989e12, 5.0 * 1e-6));
        let v = q("f = 5e14\nt = 0.25").unwrap();
        assert_eq!((v.f.0, v.t.0), (5e14, 0.25));
        let v = q("f = \"1.5e3 GFLOP/s\"\nt = \"4e-6 s\"").unwrap();
        assert_eq!((v.f.0, v.t.0), (1.5e3 * 1e9, 4e-6));
        let e = q("f = \"3 TFLOPS\"\nt = 1").err().unwrap().to_string();
        assert!(e.contains("TFLOP/s") && e.contains("TFLOPS"), "{e}");
    }
}
