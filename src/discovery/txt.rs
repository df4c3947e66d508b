//! The TXT record of an XMPP server's `_xmpp-client._tcp` instance (spec
//! 3.3.2, Listings 7 and 9): `txtvers=1`, `ordom=` (the XMPP domain),
//! `regis=` and `provis=` (space-separated registry and provisioning server
//! names), encoded as DNS-SD requires (RFC 6763 6): one length-prefixed
//! string per `key=value`, and a lone zero byte when nothing is published.
//!
//! Parsing is strict, because a thing that follows a wrong record connects to
//! the wrong registry: a length past the end, an empty string among others,
//! a spec key without `=`, an empty key, a key twice (RFC 6763 would keep the
//! first; we refuse the ambiguity), a `txtvers` other than 1, values that are
//! not UTF-8 or entries with characters a JID cannot hold are all typed
//! errors ([`DiscoveryError`]). Keys are compared without case (RFC 6763 6.4).
//! Other keys are kept as they came (a key without `=` is a boolean
//! attribute, RFC 6763 6.4) and written back after the spec's keys.

use std::fmt;

use super::DiscoveryError;

/// The longest string of a TXT record (one length byte).
pub const MAX_STRING: usize = 255;

/// The spec's keys, in the order they are written.
pub const KEYS: [&str; 4] = ["txtvers", "ordom", "regis", "provis"];

/// The TXT data of an XMPP server's DNS-SD instance.
///
/// Invariants (checked by every constructor): `ordom` is a non-empty domain
/// without white space, `@` or `/`; each `regis`/`provis` entry is non-empty
/// and holds no white space; each encoded string fits 255 bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XmppTxt {
    /// `txtvers`: `Some(1)` whenever something is published; `None` for a
    /// record that publishes nothing (the lone zero byte).
    pub txtvers: Option<u8>,
    /// `ordom`: the XMPP domain ("origin domain") of the service.
    pub ordom: Option<String>,
    /// `regis`: Thing Registries, each a user name (resolved against
    /// `ordom`), a bare JID or a component address.
    pub regis: Vec<String>,
    /// `provis`: provisioning servers, in the same forms as `regis`.
    pub provis: Vec<String>,
    /// Other keys as received: key, and value (`None`: a boolean attribute
    /// without `=`).
    pub other: Vec<(String, Option<Vec<u8>>)>,
}

impl XmppTxt {
    /// A record publishing `txtvers=1` and the given parts (empty lists and
    /// `None` are left out). Checks every value and the 255-byte limit.
    pub fn new(
        ordom: Option<&str>,
        regis: &[&str],
        provis: &[&str],
    ) -> Result<XmppTxt, DiscoveryError> {
        let txt = XmppTxt {
            txtvers: Some(1),
            ordom: ordom.map(str::to_string),
            regis: regis.iter().map(|s| s.to_string()).collect(),
            provis: provis.iter().map(|s| s.to_string()).collect(),
            other: Vec::new(),
        };
        if let Some(ordom) = &txt.ordom {
            check_ordom(ordom)?;
        }
        for (key, list) in [("regis", &txt.regis), ("provis", &txt.provis)] {
            for entry in list {
                check_entry(key, entry)?;
            }
        }
        txt.strings()?;
        Ok(txt)
    }

    /// A record that publishes nothing: encoded as a lone zero byte.
    pub fn nothing() -> XmppTxt {
        XmppTxt::default()
    }

    /// Whether the record publishes nothing.
    pub fn is_nothing(&self) -> bool {
        self.txtvers.is_none()
            && self.ordom.is_none()
            && self.regis.is_empty()
            && self.provis.is_empty()
            && self.other.is_empty()
    }

    /// The strings of the record, without length bytes, in order: the spec's
    /// keys (those present), then the others. Empty when nothing is published.
    pub fn strings(&self) -> Result<Vec<Vec<u8>>, DiscoveryError> {
        let mut out = Vec::new();
        let mut push = |key: &str, value: Option<&[u8]>| {
            let mut s = key.as_bytes().to_vec();
            if let Some(v) = value {
                s.push(b'=');
                s.extend_from_slice(v);
            }
            if s.len() > MAX_STRING {
                return Err(DiscoveryError::TxtTooLong {
                    key: key.into(),
                    len: s.len(),
                });
            }
            out.push(s);
            Ok(())
        };
        if let Some(v) = self.txtvers {
            push("txtvers", Some(v.to_string().as_bytes()))?;
        }
        if let Some(ordom) = &self.ordom {
            push("ordom", Some(ordom.as_bytes()))?;
        }
        if !self.regis.is_empty() {
            push("regis", Some(self.regis.join(" ").as_bytes()))?;
        }
        if !self.provis.is_empty() {
            push("provis", Some(self.provis.join(" ").as_bytes()))?;
        }
        for (key, value) in &self.other {
            push(key, value.as_deref())?;
        }
        Ok(out)
    }

    /// The TXT RDATA: each string behind its length byte; a lone zero byte
    /// when nothing is published (RFC 6763 6.1).
    pub fn encode(&self) -> Result<Vec<u8>, DiscoveryError> {
        let strings = self.strings()?;
        if strings.is_empty() {
            return Ok(vec![0]);
        }
        let mut out = Vec::with_capacity(strings.iter().map(|s| s.len() + 1).sum());
        for s in strings {
            // At most 255: checked by `strings`.
            out.push(s.len() as u8);
            out.extend_from_slice(&s);
        }
        Ok(out)
    }

    /// Parses TXT RDATA (see the module documentation for what is refused).
    pub fn decode(rdata: &[u8]) -> Result<XmppTxt, DiscoveryError> {
        XmppTxt::from_strings(split_strings(rdata)?)
    }

    /// Parses the record's strings (without length bytes), as an mDNS
    /// library hands them over. No strings, or one empty string, is a record
    /// that publishes nothing.
    pub fn from_strings<I, S>(strings: I) -> Result<XmppTxt, DiscoveryError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        let strings: Vec<S> = strings.into_iter().collect();
        let mut txt = XmppTxt::default();
        if strings.len() == 1 && strings[0].as_ref().is_empty() {
            return Ok(txt);
        }
        let mut seen: Vec<String> = Vec::new();
        for (index, s) in strings.iter().enumerate() {
            let s = s.as_ref();
            if s.is_empty() {
                return Err(DiscoveryError::TxtEmptyString { index });
            }
            if s.len() > MAX_STRING {
                return Err(DiscoveryError::TxtTooLong {
                    key: key_text(s),
                    len: s.len(),
                });
            }
            let (key, value) = match s.iter().position(|&b| b == b'=') {
                Some(i) => (&s[..i], Some(&s[i + 1..])),
                None => (s, None),
            };
            if key.is_empty() {
                return Err(DiscoveryError::TxtEmptyKey { index });
            }
            if !key.iter().all(|b| (0x20..=0x7e).contains(b)) {
                return Err(DiscoveryError::TxtBadKey { key: key_text(key) });
            }
            // Printable ASCII: the conversion cannot fail.
            let key = String::from_utf8_lossy(key).into_owned();
            let lower = key.to_ascii_lowercase();
            if seen.contains(&lower) {
                return Err(DiscoveryError::TxtDuplicateKey { key });
            }
            seen.push(lower.clone());
            let Some(k) = KEYS.iter().find(|k| **k == lower) else {
                txt.other.push((key, value.map(<[u8]>::to_vec)));
                continue;
            };
            let Some(value) = value else {
                return Err(DiscoveryError::TxtMissingEquals { key });
            };
            let value = std::str::from_utf8(value)
                .map_err(|_| DiscoveryError::TxtNotUtf8 { key: key.clone() })?;
            match *k {
                "txtvers" => {
                    if value != "1" {
                        return Err(DiscoveryError::TxtUnsupportedVersion {
                            version: value.into(),
                        });
                    }
                    txt.txtvers = Some(1);
                }
                "ordom" => {
                    check_ordom(value)?;
                    txt.ordom = Some(value.into());
                }
                list_key => {
                    let entries = split_list(list_key, value)?;
                    if list_key == "regis" {
                        txt.regis = entries;
                    } else {
                        txt.provis = entries;
                    }
                }
            }
        }
        Ok(txt)
    }

    /// The registries as JIDs: a user name becomes `name@ordom` (left as it
    /// is when there is no `ordom`), a JID or component address stays.
    pub fn registry_jids(&self) -> Vec<String> {
        self.resolve(&self.regis)
    }

    /// The provisioning servers as JIDs, like [`XmppTxt::registry_jids`].
    pub fn provisioning_jids(&self) -> Vec<String> {
        self.resolve(&self.provis)
    }

    fn resolve(&self, list: &[String]) -> Vec<String> {
        list.iter()
            .map(|e| match &self.ordom {
                Some(ordom) if !e.contains('@') && !e.contains('.') => format!("{e}@{ordom}"),
                _ => e.clone(),
            })
            .collect()
    }
}

impl fmt::Display for XmppTxt {
    /// The strings in zone-file form: `"txtvers=1" "ordom=example.com" ...`
    /// (`""` when nothing is published).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let strings = self.strings().map_err(|_| fmt::Error)?;
        if strings.is_empty() {
            return f.write_str("\"\"");
        }
        let quoted: Vec<String> = strings.iter().map(|s| quote(s)).collect();
        f.write_str(&quoted.join(" "))
    }
}

/// A character-string in RFC 1035 presentation form: in double quotes, `"`
/// and `\` escaped, bytes outside printable ASCII as `\DDD`.
pub fn quote(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for &b in s {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

/// Splits TXT RDATA into its strings. Empty RDATA is refused (RFC 6763 6.1:
/// a TXT record always has at least one string); a length byte running past
/// the end is refused with where it was.
pub fn split_strings(rdata: &[u8]) -> Result<Vec<&[u8]>, DiscoveryError> {
    if rdata.is_empty() {
        return Err(DiscoveryError::TxtEmpty);
    }
    let mut out = Vec::new();
    let mut at = 0;
    while at < rdata.len() {
        let len = rdata[at] as usize;
        let start = at + 1;
        let Some(s) = rdata.get(start..start + len) else {
            return Err(DiscoveryError::TxtBadLength {
                offset: at,
                declared: len,
                available: rdata.len() - start,
            });
        };
        out.push(s);
        at = start + len;
    }
    Ok(out)
}

fn key_text(key: &[u8]) -> String {
    let end = key.iter().position(|&b| b == b'=').unwrap_or(key.len());
    String::from_utf8_lossy(&key[..end.min(32)]).into_owned()
}

fn split_list(key: &str, value: &str) -> Result<Vec<String>, DiscoveryError> {
    let entries: Vec<String> = value
        .split(' ')
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect();
    if entries.is_empty() {
        return Err(DiscoveryError::TxtBadValue {
            key: key.into(),
            reason: "an empty list",
        });
    }
    for e in &entries {
        check_entry(key, e)?;
    }
    Ok(entries)
}

fn check_entry(key: &str, entry: &str) -> Result<(), DiscoveryError> {
    let bad = |reason| {
        Err(DiscoveryError::TxtBadValue {
            key: key.into(),
            reason,
        })
    };
    if entry.is_empty() {
        return bad("an empty name");
    }
    if entry.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("white space inside a name (entries are separated by single spaces)");
    }
    if entry.contains(['"', '&', '\'', '<', '>']) {
        return bad("a character a JID cannot hold");
    }
    Ok(())
}

fn check_ordom(ordom: &str) -> Result<(), DiscoveryError> {
    let bad = |reason| {
        Err(DiscoveryError::TxtBadValue {
            key: "ordom".into(),
            reason,
        })
    };
    if ordom.is_empty() {
        return bad("an empty domain");
    }
    if ordom.chars().any(|c| {
        c.is_whitespace() || c.is_control() || matches!(c, '@' | '/' | '"' | '\'' | '<' | '>' | '&')
    }) {
        return bad("not a domain (white space, '@' or '/')");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The TXT data of the spec's Listing 8, byte for byte.
    const LISTING_8_TXT: &[u8] =
        b"\x09txtvers=1\x11ordom=example.com\x0eregis=registry\x13provis=provisioning";

    fn listing_8() -> XmppTxt {
        XmppTxt::new(Some("example.com"), &["registry"], &["provisioning"]).unwrap()
    }

    #[test]
    fn listing_8_encodes_byte_for_byte() {
        assert_eq!(listing_8().encode().unwrap(), LISTING_8_TXT);
        assert_eq!(
            listing_8().to_string(),
            r#""txtvers=1" "ordom=example.com" "regis=registry" "provis=provisioning""#
        );
    }

    #[test]
    fn listing_8_decodes() {
        let txt = XmppTxt::decode(LISTING_8_TXT).unwrap();
        assert_eq!(txt, listing_8());
        assert_eq!(txt.registry_jids(), ["registry@example.com"]);
        assert_eq!(txt.provisioning_jids(), ["provisioning@example.com"]);
    }

    #[test]
    fn nothing_published_is_a_lone_zero_byte() {
        assert_eq!(XmppTxt::nothing().encode().unwrap(), [0]);
        assert_eq!(XmppTxt::nothing().to_string(), "\"\"");
        let txt = XmppTxt::decode(&[0]).unwrap();
        assert!(txt.is_nothing());
        assert_eq!(txt, XmppTxt::nothing());
        assert!(
            XmppTxt::from_strings(Vec::<&[u8]>::new())
                .unwrap()
                .is_nothing()
        );
    }

    #[test]
    fn lists_are_space_separated_and_resolved_against_ordom() {
        let txt = XmppTxt::new(
            Some("example.com"),
            &["registry", "backup@other.org", "discovery.example.com"],
            &[],
        )
        .unwrap();
        let rdata = txt.encode().unwrap();
        assert_eq!(
            split_strings(&rdata).unwrap(),
            [
                &b"txtvers=1"[..],
                b"ordom=example.com",
                b"regis=registry backup@other.org discovery.example.com"
            ]
        );
        let back = XmppTxt::decode(&rdata).unwrap();
        assert_eq!(back, txt);
        assert_eq!(
            back.registry_jids(),
            [
                "registry@example.com",
                "backup@other.org",
                "discovery.example.com"
            ]
        );
        assert!(back.provisioning_jids().is_empty());
        // Without ordom a user name cannot be completed.
        let bare = XmppTxt::new(None, &["registry"], &[]).unwrap();
        assert_eq!(bare.registry_jids(), ["registry"]);
    }

    #[test]
    fn keys_ignore_case_and_other_keys_are_kept() {
        let txt = XmppTxt::from_strings([&b"TXTVERS=1"[..], b"Regis=r1  r2", b"flag", b"x=\xff"])
            .unwrap();
        assert_eq!(txt.regis, ["r1", "r2"]);
        assert_eq!(
            txt.other,
            [
                ("flag".to_string(), None),
                ("x".to_string(), Some(vec![0xff]))
            ]
        );
        assert_eq!(
            split_strings(&txt.encode().unwrap()).unwrap(),
            [&b"txtvers=1"[..], b"regis=r1 r2", b"flag", b"x=\xff"]
        );
    }

    #[test]
    fn bad_lengths_are_errors() {
        assert_eq!(XmppTxt::decode(b""), Err(DiscoveryError::TxtEmpty));
        assert_eq!(
            XmppTxt::decode(b"\x09txtvers=1\x11ordom=example"),
            Err(DiscoveryError::TxtBadLength {
                offset: 10,
                declared: 17,
                available: 13
            })
        );
        assert_eq!(
            XmppTxt::decode(b"\x0atxtvers=1"),
            Err(DiscoveryError::TxtBadLength {
                offset: 0,
                declared: 10,
                available: 9
            })
        );
        assert_eq!(
            XmppTxt::decode(b"\x09txtvers=1\x00"),
            Err(DiscoveryError::TxtEmptyString { index: 1 })
        );
    }

    #[test]
    fn malformed_strings_are_errors() {
        let cases: [(&[u8], DiscoveryError); 8] = [
            (
                b"\x09txtvers=1\x05regis",
                DiscoveryError::TxtMissingEquals {
                    key: "regis".into(),
                },
            ),
            (
                b"\x07txtvers",
                DiscoveryError::TxtMissingEquals {
                    key: "txtvers".into(),
                },
            ),
            (
                b"\x09txtvers=1\x07=orphan",
                DiscoveryError::TxtEmptyKey { index: 1 },
            ),
            (
                b"\x09txtvers=1\x07regis=a\x07REGIS=b",
                DiscoveryError::TxtDuplicateKey {
                    key: "REGIS".into(),
                },
            ),
            (
                b"\x09txtvers=2",
                DiscoveryError::TxtUnsupportedVersion {
                    version: "2".into(),
                },
            ),
            (
                b"\x08ordom=\xff\xfe",
                DiscoveryError::TxtNotUtf8 {
                    key: "ordom".into(),
                },
            ),
            (
                b"\x06regis=",
                DiscoveryError::TxtBadValue {
                    key: "regis".into(),
                    reason: "an empty list",
                },
            ),
            (
                b"\x06ordom=",
                DiscoveryError::TxtBadValue {
                    key: "ordom".into(),
                    reason: "an empty domain",
                },
            ),
        ];
        for (rdata, want) in cases {
            assert_eq!(XmppTxt::decode(rdata), Err(want.clone()), "{rdata:?}");
            // Every error reads as a sentence naming the problem.
            assert!(!want.to_string().is_empty());
        }
        assert!(matches!(
            XmppTxt::decode(b"\x09regis=a\tb"),
            Err(DiscoveryError::TxtBadValue { .. })
        ));
        assert!(matches!(
            XmppTxt::decode(b"\x04k\x01=v"),
            Err(DiscoveryError::TxtBadKey { .. })
        ));
    }

    #[test]
    fn building_checks_values_and_the_255_byte_limit() {
        assert!(XmppTxt::new(Some("exa mple.com"), &[], &[]).is_err());
        assert!(XmppTxt::new(Some("example.com"), &["two words"], &[]).is_err());
        assert!(XmppTxt::new(Some("example.com"), &[""], &[]).is_err());
        let long = "r".repeat(250);
        assert_eq!(
            XmppTxt::new(None, &[&long], &[]),
            Err(DiscoveryError::TxtTooLong {
                key: "regis".into(),
                len: 256
            })
        );
        let fits = "r".repeat(249);
        let txt = XmppTxt::new(None, &[&fits], &[]).unwrap();
        assert_eq!(txt.encode().unwrap()[10], 255);
        assert_eq!(XmppTxt::decode(&txt.encode().unwrap()).unwrap(), txt);
    }

    #[test]
    fn quoting_escapes_quotes_backslashes_and_bytes() {
        assert_eq!(quote(b"a\"b\\c\x01"), r#""a\"b\\c\001""#);
    }
}
