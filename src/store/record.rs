//! The on-disk format of one thing: its key bytes and its rkyv record.
//!
//! **Key**: the thing's bare JID and its three node attributes, each written as a
//! LEB128 length followed by the UTF-8 bytes (an absent attribute is length 0,
//! the same as the empty string, which the node address treats as absent).
//! Length prefixes make the encoding unambiguous whatever the bytes contain.
//!
//! **Value**: a [`StoredRecord`] serialised with rkyv. Reading validates the
//! archive with bytecheck before touching it, then re-checks every field with
//! the same rules a request goes through (JIDs, tag names, string lengths,
//! finite numbers): a damaged or forged record is a [`StoreError`] naming its
//! key, never undefined behaviour, a panic, or a record the registry could not
//! have written. [`FORMAT`] is stored once per database; opening a database of
//! another format fails with a message naming both.

use rkyv::rancor;

use crate::digest::ClaimDigest;
use crate::jid::BareJid;
use crate::store::{StoreError, Undelivered, UndeliveredKind};
use crate::tag::{Tag, TagName, TagValue};
use crate::thing::{NodeAddress, ThingKey, ThingRecord};

/// The record format this build writes.
///
/// v2 added [`StoredValue::ClaimDigest`]. Its archived layout keeps every v1
/// record valid (the new variant is last and no larger than the others), so a
/// v1 database opens as is and is marked v2 on open: a v1 build then refuses it
/// clearly instead of meeting a value it cannot read.
pub const FORMAT: &str = "iotdisco-record-v2";

/// Earlier formats this build reads unchanged (and upgrades the mark of).
pub const READABLE_FORMATS: &[&str] = &["iotdisco-record-v1"];

/// One tag value as stored.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub enum StoredValue {
    /// A string value.
    Str(String),
    /// A numeric value (finite).
    Num(f64),
    /// Not a tag: the salted digest kept of the claimed tag set once `KEY` was
    /// deleted (stored under the name `KEY`, at most once, 24 bytes).
    ClaimDigest(Vec<u8>),
}

/// One thing as stored (the fields of [`ThingRecord`] in plain types).
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize, Debug, Clone, PartialEq)]
pub struct StoredRecord {
    /// Bare JID.
    pub jid: String,
    /// `nodeId`, `sourceId`, `cacheType` (empty = absent).
    pub node: [String; 3],
    /// Resource of the last full JID seen (empty = none).
    pub last_resource: String,
    /// Owner's bare JID (empty = unclaimed).
    pub owner: String,
    /// Public flag.
    pub public: bool,
    /// Tags in record order: (name, value).
    pub tags: Vec<(String, StoredValue)>,
}

fn put_part(out: &mut Vec<u8>, s: &str) {
    let mut n = s.len() as u64;
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
    out.extend_from_slice(s.as_bytes());
}

/// The key bytes of a thing.
pub fn key_bytes(key: &ThingKey) -> Vec<u8> {
    let n = &key.node;
    let mut out = Vec::with_capacity(key.jid.as_str().len() + 8);
    put_part(&mut out, key.jid.as_str());
    for part in [&n.node_id, &n.source_id, &n.cache_type] {
        put_part(&mut out, part.as_deref().unwrap_or(""));
    }
    out
}

/// Reads key bytes written by [`key_bytes`].
pub fn parse_key(bytes: &[u8]) -> Result<ThingKey, StoreError> {
    let bad = || StoreError(format!("damaged key '{}'", describe_key(bytes)));
    let mut pos = 0;
    let mut part = || -> Result<&str, StoreError> {
        let mut n: u64 = 0;
        let mut shift = 0;
        loop {
            let b = *bytes.get(pos).ok_or_else(bad)?;
            pos += 1;
            n |= u64::from(b & 0x7f).checked_shl(shift).ok_or_else(bad)?;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
            if shift > 63 {
                return Err(bad());
            }
        }
        let end = pos
            .checked_add(usize::try_from(n).map_err(|_| bad())?)
            .ok_or_else(bad)?;
        let s = std::str::from_utf8(bytes.get(pos..end).ok_or_else(bad)?).map_err(|_| bad())?;
        pos = end;
        Ok(s)
    };
    let jid = part()?;
    let (a, b, c) = (part()?, part()?, part()?);
    let jid = BareJid::parse(jid).map_err(|_| bad())?;
    let node = NodeAddress::new(Some(a), Some(b), Some(c)).map_err(|_| bad())?;
    let key = ThingKey { jid, node };
    if key_bytes(&key) != bytes {
        return Err(bad());
    }
    Ok(key)
}

/// The stored form of an undelivered notification's value: version 1, kind
/// (0 claimed, 1 removed), attempts.
pub fn encode_undelivered(u: &Undelivered) -> [u8; 3] {
    let kind = match u.kind {
        UndeliveredKind::Claimed => 0,
        UndeliveredKind::Removed => 1,
    };
    [1, kind, u.attempts]
}

/// Reads an undelivered notification stored under `key`.
pub fn decode_undelivered(key: &[u8], value: &[u8]) -> Result<Undelivered, StoreError> {
    let thing = parse_key(key)?;
    let kind = match value {
        [1, 0, _] => UndeliveredKind::Claimed,
        [1, 1, _] => UndeliveredKind::Removed,
        _ => {
            return Err(StoreError(format!(
                "damaged undelivered notification '{}'",
                describe_key(key)
            )));
        }
    };
    Ok(Undelivered {
        thing,
        kind,
        attempts: value[2],
    })
}

/// A short printable form of key bytes, for error messages.
pub fn describe_key(key: &[u8]) -> String {
    let text = String::from_utf8_lossy(key);
    let printable: String = text
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .take(120)
        .collect();
    printable
}

/// Serialises a record.
pub fn encode(record: &ThingRecord) -> Result<rkyv::util::AlignedVec, StoreError> {
    let n = &record.key.node;
    let stored = StoredRecord {
        jid: record.key.jid.as_str().to_string(),
        node: [
            n.node_id.as_deref().unwrap_or("").to_string(),
            n.source_id.as_deref().unwrap_or("").to_string(),
            n.cache_type.as_deref().unwrap_or("").to_string(),
        ],
        last_resource: record.last_resource.as_deref().unwrap_or("").to_string(),
        owner: record
            .owner
            .as_ref()
            .map_or(String::new(), |o| o.as_str().to_string()),
        public: record.public,
        tags: record
            .tags
            .iter()
            .map(|t| {
                let v = match &t.value {
                    TagValue::Str(s) => StoredValue::Str(s.to_string()),
                    TagValue::Num(x) => StoredValue::Num(x.get()),
                };
                (t.name.as_str().to_string(), v)
            })
            .chain(record.claim_digest.map(|d| {
                (
                    crate::tag::KEY.to_string(),
                    StoredValue::ClaimDigest(d.as_bytes().to_vec()),
                )
            }))
            .collect(),
    };
    rkyv::to_bytes::<rancor::Error>(&stored)
        .map_err(|e| StoreError(format!("cannot serialise {}: {e}", record.key.jid)))
}

/// Validates and decodes the record stored under `key`.
pub fn decode(key: &[u8], bytes: &[u8]) -> Result<ThingRecord, StoreError> {
    let bad = |why: String| StoreError(format!("damaged record '{}': {why}", describe_key(key)));
    // sled hands out bytes without alignment guarantees; rkyv wants them aligned.
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
    aligned.extend_from_slice(bytes);
    // Validated in place (bytecheck), read without copying into owned fields.
    let stored = rkyv::access::<ArchivedStoredRecord, rancor::Error>(&aligned)
        .map_err(|e| bad(format!("not a valid {FORMAT} record ({e})")))?;
    let jid = BareJid::parse(stored.jid.as_str()).map_err(|e| bad(e.to_string()))?;
    let [a, b, c] = &stored.node;
    let node =
        NodeAddress::new(Some(a.as_str()), Some(b.as_str()), Some(c.as_str())).map_err(bad)?;
    let record_key = ThingKey { jid, node };
    if key_bytes(&record_key) != key {
        return Err(bad("the record belongs to another key".into()));
    }
    let owner = match stored.owner.as_str() {
        "" => None,
        o => Some(BareJid::parse(o).map_err(|e| bad(e.to_string()))?),
    };
    let resource = stored.last_resource.as_str();
    if resource.chars().any(char::is_control) {
        return Err(bad("bad resource".into()));
    }
    let mut tags = Vec::with_capacity(stored.tags.len());
    let mut claim_digest = None;
    for t in stored.tags.iter() {
        let name = TagName::from_stored(t.0.as_str()).map_err(|e| bad(e.to_string()))?;
        let value = match &t.1 {
            ArchivedStoredValue::Str(s) => TagValue::string(s.as_str(), name.as_str()),
            ArchivedStoredValue::Num(x) => TagValue::number(x.to_native(), name.as_str()),
            ArchivedStoredValue::ClaimDigest(d) => {
                let d = ClaimDigest::from_bytes(d.as_slice())
                    .filter(|_| name.is_key() && claim_digest.is_none() && owner.is_some())
                    .ok_or_else(|| bad("bad claim digest".into()))?;
                claim_digest = Some(d);
                continue;
            }
        }
        .map_err(|e| bad(e.to_string()))?;
        tags.push(Tag { name, value });
    }
    Ok(ThingRecord {
        key: record_key,
        last_resource: (!resource.is_empty()).then(|| resource.into()),
        owner,
        public: stored.public,
        tags,
        claim_digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jid::BareJid;

    fn record() -> ThingRecord {
        ThingRecord {
            key: ThingKey {
                jid: BareJid::parse("rack@example.org").unwrap(),
                node: NodeAddress::node("imc1", Some("MeteringTopology")),
            },
            last_resource: Some("plcs".into()),
            owner: Some(BareJid::parse("owner@example.org").unwrap()),
            public: false,
            tags: vec![Tag::str("SN", "1").unwrap(), Tag::num("V", 1.2).unwrap()],
            claim_digest: None,
        }
    }

    #[test]
    fn round_trip() {
        let r = record();
        let key = key_bytes(&r.key);
        let bytes = encode(&r).unwrap();
        assert_eq!(decode(&key, &bytes).unwrap(), r);
    }

    /// The v1 types, as the previous build archived them.
    mod v1 {
        #[derive(rkyv::Archive, rkyv::Serialize)]
        pub enum StoredValue {
            Str(String),
            Num(f64),
        }
        #[derive(rkyv::Archive, rkyv::Serialize)]
        pub struct StoredRecord {
            pub jid: String,
            pub node: [String; 3],
            pub last_resource: String,
            pub owner: String,
            pub public: bool,
            pub tags: Vec<(String, StoredValue)>,
        }
    }

    #[test]
    fn v1_records_read_unchanged() {
        let r = record();
        let old = v1::StoredRecord {
            jid: "rack@example.org".into(),
            node: ["imc1".into(), "MeteringTopology".into(), String::new()],
            last_resource: "plcs".into(),
            owner: "owner@example.org".into(),
            public: false,
            tags: vec![
                ("SN".into(), v1::StoredValue::Str("1".into())),
                ("V".into(), v1::StoredValue::Num(1.2)),
            ],
        };
        let bytes = rkyv::to_bytes::<rancor::Error>(&old).unwrap();
        assert_eq!(decode(&key_bytes(&r.key), &bytes).unwrap(), r);
        assert_eq!(&bytes[..], &encode(&r).unwrap()[..], "same bytes as v2");
    }

    #[test]
    fn claim_digests_round_trip_and_are_checked() {
        let mut r = record();
        r.claim_digest = Some(ClaimDigest::new_salted(&r.tags).unwrap());
        let key = key_bytes(&r.key);
        let bytes = encode(&r).unwrap();
        assert_eq!(decode(&key, &bytes).unwrap(), r);
        // A digest on an unclaimed record is damage.
        let mut unclaimed = r.clone();
        unclaimed.owner = None;
        let bytes = encode(&unclaimed).unwrap();
        assert!(decode(&key, &bytes).unwrap_err().0.contains("claim digest"));
    }

    #[test]
    fn damage_is_an_error_naming_the_key() {
        let r = record();
        let key = key_bytes(&r.key);
        let bytes = encode(&r).unwrap().to_vec();
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= flip;
                if let Err(e) = decode(&key, &b) {
                    assert!(e.0.contains("rack@example.org"), "{e}");
                }
            }
        }
        for len in 0..bytes.len() {
            let e = decode(&key, &bytes[..len]).unwrap_err();
            assert!(e.0.contains("damaged record"), "{e}");
        }
        assert!(decode(b"other", &bytes).is_err());
    }

    #[test]
    fn keys_and_undelivered_round_trip() {
        let r = record();
        let k = key_bytes(&r.key);
        assert_eq!(parse_key(&k).unwrap(), r.key);
        for len in 0..k.len() {
            assert!(parse_key(&k[..len]).is_err());
        }
        assert!(parse_key(&[0xff; 12]).is_err());
        let u = Undelivered {
            thing: r.key.clone(),
            kind: UndeliveredKind::Removed,
            attempts: 2,
        };
        assert_eq!(decode_undelivered(&k, &encode_undelivered(&u)).unwrap(), u);
        assert!(decode_undelivered(&k, &[1, 7, 0]).is_err());
        assert!(decode_undelivered(&k, &[2, 0, 0]).is_err());
        assert!(decode_undelivered(b"x", &[1, 0, 0]).is_err());
    }

    #[test]
    fn keys_are_unambiguous() {
        let k = |j: &str, n: &str, s: Option<&str>| ThingKey {
            jid: BareJid::parse(j).unwrap(),
            node: if n.is_empty() {
                NodeAddress::default()
            } else {
                NodeAddress::node(n, s)
            },
        };
        assert_ne!(
            key_bytes(&k("a@b", "c", None)),
            key_bytes(&k("a@b", "", None))
        );
        assert_ne!(
            key_bytes(&k("a@b", "c", Some("d"))),
            key_bytes(&k("a@b", "cd", None))
        );
    }
}
