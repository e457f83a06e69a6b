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

fn split_number_unit(s: &str) -> Option<(f64, &str)> {
    let s = s.trim();
    let idx = s.find(|c: char| c.is_ascii_alphabetic())?;
    let num: f64 = s[..idx].trim().replace('_', "").parse().ok()?;
    Some((num, s[idx..].trim()))
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
        if !(v.is_finite() && v >= 0.0) {
            return Err(E::custom(format!(
                "size {v} GB is not a finite number >= 0"
            )));
        }
        Ok(ByteSize(round_half_up(v * GB)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<ByteSize, E> {
        let (num, unit) = split_number_unit(s).ok_or_else(|| {
            E::custom(format!(
                "cannot read size {s:?}: expected e.g. \"57344 B\" or \"141 GB\""
            ))
        })?;
        let factor = unit_factor(unit).ok_or_else(|| {
            E::custom(format!(
                "unknown size unit {unit:?} in {s:?}: use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
            ))
        })?;
        if !(num.is_finite() && num >= 0.0) {
            return Err(E::custom(format!("size {s:?} is not a finite number >= 0")));
        }
        Ok(ByteSize(round_half_up(num * factor)))
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
        let (num, unit) = split_number_unit(s).ok_or_else(bad)?;
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

