//! A whole registry as JSON lines: one thing per line, for backups, inspection,
//! and moving registries between machines or backends.
//!
//! Each line is an object:
//! `{"jid":"rack@example.org","node":{"nodeId":"imc1","sourceId":"MeteringTopology"},`
//! `"resource":"plcs","owner":"owner@example.org","public":true,`
//! `"tags":[{"name":"SN","str":"394872348732948723"},{"name":"V","num":1.2}]}`.
//! `node` members, `resource` and `owner` are left out when absent; `KEY` is
//! included (this is the owner's backup, not a search result). A claimed thing
//! whose `KEY` the registry deleted has `"claim_digest":"<48 hex digits>"`
//! instead (see [`crate::digest`]; the salt is inside, so it moves with the
//! line to any registry). Reading checks
//! every field with the rules a request goes through and names the line of the
//! first bad one.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::digest::ClaimDigest;
use crate::jid::BareJid;
use crate::store::StoreError;
use crate::tag::{Tag, TagName, TagValue};
use crate::thing::{NodeAddress, ThingKey, ThingRecord};

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Node {
    #[serde(rename = "nodeId", skip_serializing_if = "Option::is_none", default)]
    node_id: Option<String>,
    #[serde(rename = "sourceId", skip_serializing_if = "Option::is_none", default)]
    source_id: Option<String>,
    #[serde(rename = "cacheType", skip_serializing_if = "Option::is_none", default)]
    cache_type: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonTag {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    str: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    num: Option<f64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    jid: String,
    #[serde(skip_serializing_if = "is_empty_node", default)]
    node: Node,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    resource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    owner: Option<String>,
    #[serde(default)]
    public: bool,
    tags: Vec<JsonTag>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    claim_digest: Option<String>,
}

fn is_empty_node(n: &Node) -> bool {
    n.node_id.is_none() && n.source_id.is_none() && n.cache_type.is_none()
}

/// Writes one line per record.
pub fn write_jsonl<'r>(
    records: impl IntoIterator<Item = &'r ThingRecord>,
    mut out: impl Write,
) -> Result<u64, StoreError> {
    let mut n = 0;
    for r in records {
        let k = &r.key.node;
        let line = Line {
            jid: r.key.jid.as_str().to_string(),
            node: Node {
                node_id: k.node_id.as_deref().map(str::to_string),
                source_id: k.source_id.as_deref().map(str::to_string),
                cache_type: k.cache_type.as_deref().map(str::to_string),
            },
            resource: r.last_resource.as_deref().map(str::to_string),
            owner: r.owner.as_ref().map(|o| o.as_str().to_string()),
            public: r.public,
            tags: r
                .tags
                .iter()
                .map(|t| match &t.value {
                    TagValue::Str(s) => JsonTag {
                        name: t.name.as_str().to_string(),
                        str: Some(s.to_string()),
                        num: None,
                    },
                    TagValue::Num(x) => JsonTag {
                        name: t.name.as_str().to_string(),
                        str: None,
                        num: Some(x.get()),
                    },
                })
                .collect(),
            claim_digest: r.claim_digest.map(|d| d.to_hex()),
        };
        serde_json::to_writer(&mut out, &line)
            .map_err(|e| StoreError(format!("cannot write the export: {e}")))?;
        out.write_all(b"\n")
            .map_err(|e| StoreError(format!("cannot write the export: {e}")))?;
        n += 1;
    }
    out.flush()
        .map_err(|e| StoreError(format!("cannot write the export: {e}")))?;
    Ok(n)
}

fn parse_line(text: &str) -> Result<ThingRecord, String> {
    let line: Line = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let jid = BareJid::parse(&line.jid).map_err(|e| e.to_string())?;
    let node = NodeAddress::new(
        line.node.node_id.as_deref(),
        line.node.source_id.as_deref(),
        line.node.cache_type.as_deref(),
    )?;
    let owner = line
        .owner
        .as_deref()
        .map(BareJid::parse)
        .transpose()
        .map_err(|e| e.to_string())?;
    if let Some(r) = &line.resource {
        if r.is_empty() || r.chars().any(char::is_control) {
            return Err(format!("bad resource '{r}'"));
        }
    }
    let mut tags = Vec::with_capacity(line.tags.len());
    for t in line.tags {
        let name = TagName::from_stored(&t.name).map_err(|e| e.to_string())?;
        let value = match (t.str, t.num) {
            (Some(s), None) => TagValue::string(&s, name.as_str()),
            (None, Some(x)) => TagValue::number(x, name.as_str()),
            _ => return Err(format!("tag {name} needs exactly one of str and num")),
        }
        .map_err(|e| e.to_string())?;
        tags.push(Tag { name, value });
    }
    let claim_digest = line
        .claim_digest
        .as_deref()
        .map(ClaimDigest::from_hex)
        .transpose()?;
    if claim_digest.is_some() && owner.is_none() {
        return Err("only a claimed thing has a claim_digest".into());
    }
    Ok(ThingRecord {
        key: ThingKey { jid, node },
        last_resource: line.resource.map(Into::into),
        owner,
        public: line.public,
        tags,
        claim_digest,
    })
}

/// Reads records, one per non-empty line.
pub fn read_jsonl(input: impl BufRead) -> Result<Vec<ThingRecord>, StoreError> {
    let mut out = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|e| StoreError(format!("cannot read line {}: {e}", i + 1)))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(parse_line(&line).map_err(|e| StoreError(format!("line {}: {e}", i + 1)))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let r = ThingRecord {
            key: ThingKey {
                jid: BareJid::parse("rack@example.org").unwrap(),
                node: NodeAddress::node("imc1", Some("Metering\"Topology")),
            },
            last_resource: Some("plcs".into()),
            owner: None,
            public: false,
            tags: vec![
                Tag::str("KEY", "k;\\1").unwrap(),
                Tag::num("V", -0.5).unwrap(),
            ],
            claim_digest: None,
        };
        let mut buf = Vec::new();
        assert_eq!(write_jsonl([&r], &mut buf).unwrap(), 1);
        let back = read_jsonl(&buf[..]).unwrap();
        assert_eq!(back, vec![r.clone()]);
        let mut claimed = r;
        claimed.tags.remove(0);
        claimed.owner = Some(BareJid::parse("owner@example.org").unwrap());
        claimed.claim_digest =
            Some(ClaimDigest::new_salted(&[Tag::str("KEY", "k").unwrap()]).unwrap());
        let mut buf = Vec::new();
        write_jsonl([&claimed], &mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf).contains("\"claim_digest\":\""));
        assert_eq!(read_jsonl(&buf[..]).unwrap(), vec![claimed]);
        for bad in [
            "{",
            r#"{"jid":"a@b","tags":[{"name":"V","num":1,"str":"x"}]}"#,
            r#"{"jid":"a@b","tags":[{"name":"A:B","str":"x"}]}"#,
            r#"{"jid":"a@b/r","tags":[]}"#,
            r#"{"jid":"a@b","tags":[],"extra":1}"#,
            r#"{"jid":"a@b","owner":"o@b","tags":[],"claim_digest":"00"}"#,
            r#"{"jid":"a@b","tags":[],"claim_digest":"000000000000000000000000000000000000000000000000"}"#,
        ] {
            let e = read_jsonl(format!("\n{bad}\n").as_bytes()).unwrap_err();
            assert!(e.0.starts_with("line 2"), "{e}");
        }
    }
}
