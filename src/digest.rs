//! FNV-1a, 64 bits: digests that tell inputs apart (sweeps, scenarios), not cryptographic ones.

/// A running FNV-1a digest.
pub struct Fnv(u64);

impl Fnv {
    pub fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub fn add(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// `fnv1a64:` and 16 hex digits.
    pub fn hex(&self) -> String {
        format!("fnv1a64:{:016x}", self.0)
    }
}

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv::new()
    }
}

/// The digest of `bytes`.
pub fn of(bytes: &[u8]) -> String {
    let mut h = Fnv::new();
    h.add(bytes);
    h.hex()
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_values() {
        // FNV-1a 64 of "" is the offset basis; of "a" the published test vector.
        assert_eq!(super::of(b""), "fnv1a64:cbf29ce484222325");
        assert_eq!(super::of(b"a"), "fnv1a64:af63dc4c8601ec8c");
    }
}
