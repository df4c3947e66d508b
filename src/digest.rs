//! Salted digests of claimed tag sets: what the registry keeps of a thing's
//! `KEY` once the thing is claimed.
//!
//! Spec 6.5 asks a claimed thing to empty its `KEY` so the secret cannot be
//! guessed or leaked later. The registry does it for the thing (when
//! [`Config::delete_key_on_claim`](crate::Config::delete_key_on_claim) is on):
//! at the claim, the `KEY` tag is removed from the record and replaced by a
//! [`ClaimDigest`], a SHA-256 of a random per-thing salt and the whole claimed
//! tag set (`KEY` included) in canonical order. The spec's idempotent re-claim
//! keeps working: the same owner retrying the claim with the original tags (an
//! app whose first reply was lost) is recognised by recomputing the digest with
//! the stored salt. The `KEY` itself is never stored again, in memory or on disk.
//!
//! Canonical order: tags sorted by (upper-case) name; string values by their
//! bytes, numbers by the bits of the `f64` (`-0` written as `0`), so `#V=1.0` in a
//! claim URI and `value='1'` on the wire give the same digest.

use sha2::{Digest, Sha256};

use crate::tag::{Tag, TagValue};

/// Bytes of salt per digest.
pub const SALT_BYTES: usize = 8;
/// Bytes of the (truncated) SHA-256 kept per digest.
pub const HASH_BYTES: usize = 16;
/// Bytes of a serialised [`ClaimDigest`].
pub const DIGEST_BYTES: usize = SALT_BYTES + HASH_BYTES;

/// Domain separation for the hash input (a new scheme gets a new prefix).
const DOMAIN: &[u8] = b"iotdisco-claim-digest-v1\0";

/// A salted digest of a claimed tag set (see the module documentation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ClaimDigest([u8; DIGEST_BYTES]);

impl std::fmt::Debug for ClaimDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClaimDigest({})", self.to_hex())
    }
}

impl ClaimDigest {
    /// The digest of `tags` (any order) under `salt`.
    pub fn compute<'a>(
        salt: [u8; SALT_BYTES],
        tags: impl IntoIterator<Item = (&'a str, &'a TagValue)>,
    ) -> ClaimDigest {
        let mut canon: Vec<(&str, &TagValue)> = tags.into_iter().collect();
        canon.sort_by(|a, b| a.0.cmp(b.0));
        let mut h = Sha256::new();
        h.update(DOMAIN);
        h.update(salt);
        for (name, value) in canon {
            h.update((name.len() as u32).to_le_bytes());
            h.update(name.as_bytes());
            match value {
                TagValue::Str(s) => {
                    h.update([0u8]);
                    h.update((s.len() as u32).to_le_bytes());
                    h.update(s.as_bytes());
                }
                TagValue::Num(x) => {
                    let v = x.get();
                    let v = if v == 0.0 { 0.0f64 } else { v };
                    h.update([1u8]);
                    h.update(v.to_bits().to_le_bytes());
                }
            }
        }
        let full = h.finalize();
        let mut out = [0u8; DIGEST_BYTES];
        out[..SALT_BYTES].copy_from_slice(&salt);
        out[SALT_BYTES..].copy_from_slice(&full[..HASH_BYTES]);
        ClaimDigest(out)
    }

    /// The digest of a tag list under a fresh random salt.
    pub fn new_salted(tags: &[Tag]) -> Result<ClaimDigest, String> {
        let mut salt = [0u8; SALT_BYTES];
        getrandom::fill(&mut salt).map_err(|e| format!("no randomness for a claim salt: {e}"))?;
        Ok(Self::compute(
            salt,
            tags.iter().map(|t| (t.name.as_str(), &t.value)),
        ))
    }

    /// Whether `tags` (any order) is the tag set this digest was made of.
    pub fn matches<'a>(&self, tags: impl IntoIterator<Item = (&'a str, &'a TagValue)>) -> bool {
        let mut salt = [0u8; SALT_BYTES];
        salt.copy_from_slice(&self.0[..SALT_BYTES]);
        let other = Self::compute(salt, tags);
        // Constant-time comparison: timing says nothing about how close a guess was.
        other
            .0
            .iter()
            .zip(self.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }

    /// The serialised bytes (salt, then hash).
    pub fn as_bytes(&self) -> &[u8; DIGEST_BYTES] {
        &self.0
    }

    /// Reads serialised bytes; `None` unless exactly [`DIGEST_BYTES`] long.
    pub fn from_bytes(bytes: &[u8]) -> Option<ClaimDigest> {
        Some(ClaimDigest(bytes.try_into().ok()?))
    }

    /// Lower-case hex of the serialised bytes (exports).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses [`to_hex`](Self::to_hex) output.
    pub fn from_hex(text: &str) -> Result<ClaimDigest, String> {
        let bad = || format!("claim digest '{text}' is not {DIGEST_BYTES} bytes of hex");
        if text.len() != DIGEST_BYTES * 2 || !text.is_ascii() {
            return Err(bad());
        }
        let mut out = [0u8; DIGEST_BYTES];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(ClaimDigest(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[(&str, &str)]) -> Vec<Tag> {
        list.iter()
            .map(|(n, v)| match v.strip_prefix('#') {
                Some(x) => Tag::num(n, x.parse().unwrap()).unwrap(),
                None => Tag::str(n, v).unwrap(),
            })
            .collect()
    }

    fn pairs(t: &[Tag]) -> impl Iterator<Item = (&str, &TagValue)> {
        t.iter().map(|t| (t.name.as_str(), &t.value))
    }

    #[test]
    fn order_and_number_spelling_do_not_matter() {
        let a = tags(&[("SN", "1"), ("KEY", "secret"), ("V", "#1.0")]);
        let b = tags(&[("V", "#1"), ("key", "secret"), ("SN", "1")]);
        let d = ClaimDigest::new_salted(&a).unwrap();
        assert!(d.matches(pairs(&b)));
    }

    #[test]
    fn any_difference_fails() {
        let a = tags(&[("SN", "1"), ("KEY", "secret")]);
        let d = ClaimDigest::new_salted(&a).unwrap();
        for other in [
            tags(&[("SN", "1"), ("KEY", "secreT")]),
            tags(&[("SN", "1")]),
            tags(&[("SN", "1"), ("KEY", "secret"), ("V", "#1")]),
            tags(&[("SN", "#1"), ("KEY", "secret")]),
        ] {
            assert!(!d.matches(pairs(&other)), "{other:?}");
        }
    }

    #[test]
    fn salts_differ_and_hex_round_trips() {
        let a = tags(&[("KEY", "secret")]);
        let d1 = ClaimDigest::new_salted(&a).unwrap();
        let d2 = ClaimDigest::new_salted(&a).unwrap();
        assert_ne!(d1, d2, "two claims of the same tags get different salts");
        assert_eq!(ClaimDigest::from_hex(&d1.to_hex()).unwrap(), d1);
        assert_eq!(ClaimDigest::from_bytes(d1.as_bytes()), Some(d1));
        assert!(ClaimDigest::from_hex("abc").is_err());
        assert!(ClaimDigest::from_hex(&"zz".repeat(DIGEST_BYTES)).is_err());
        assert!(ClaimDigest::from_bytes(&[0; 3]).is_none());
        assert!(!d1.to_hex().contains("secret"));
    }
}
