//! JIDs, parsed once at the edge.
//!
//! [`BareJid`] is `localpart@domain` (or just `domain`), normalised so that two
//! spellings of the same address compare equal: the localpart and the domain are
//! lower-cased (RFC 7622 treats both case-insensitively) and a trailing dot on the
//! domain is dropped. [`Jid`] adds an optional resource, which is kept exactly as
//! given (resources are case-sensitive).
//!
//! Invariants: a `BareJid` is never empty, its domain is non-empty, neither part is
//! longer than 1023 bytes, and the localpart holds none of the characters RFC 7622
//! forbids there (`"&'/:<>@` and white space). Control characters are rejected
//! everywhere, since they cannot be written back in XML.

use std::fmt;

/// The longest localpart, domain or resource RFC 7622 allows, in bytes.
pub const MAX_PART_BYTES: usize = 1023;

/// Why a JID was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JidError {
    /// The offending input, shortened for display.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for JidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid JID '{}': {}", self.input, self.reason)
    }
}

impl std::error::Error for JidError {}

fn err(input: &str, reason: &'static str) -> JidError {
    let input: String = input.chars().take(80).collect();
    JidError { input, reason }
}

/// A bare JID (`local@domain` or `domain`), normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BareJid(std::sync::Arc<str>);

impl BareJid {
    /// Parses a bare JID; a resource, if present, is an error.
    pub fn parse(s: &str) -> Result<Self, JidError> {
        let jid = Jid::parse(s)?;
        if jid.resource.is_some() {
            return Err(err(s, "a bare JID cannot carry a resource"));
        }
        Ok(jid.bare)
    }

    /// Wraps text this module normalised earlier (read back from our own
    /// records), skipping the checks.
    pub(crate) fn from_normalized(s: &str) -> Self {
        BareJid(s.into())
    }

    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The localpart, if any.
    pub fn local(&self) -> Option<&str> {
        self.0.split_once('@').map(|(l, _)| l)
    }

    /// The domain part.
    pub fn domain(&self) -> &str {
        self.0.split_once('@').map_or(&self.0, |(_, d)| d)
    }
}

/// Whether `s` holds a character for which `ascii` (on its byte, when `s` is
/// ASCII) or `other` (on each character) holds: a byte loop for the usual
/// ASCII addresses.
fn any_char(s: &str, ascii: impl Fn(u8) -> bool, other: impl Fn(char) -> bool) -> bool {
    if s.is_ascii() {
        s.bytes().any(ascii)
    } else {
        s.chars().any(other)
    }
}

/// `char::is_whitespace` for an ASCII byte.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t'..=b'\r')
}

/// Appends `part` lower-cased (ASCII without a per-character walk).
fn push_lower(text: &mut String, part: &str) {
    if part.is_ascii() {
        let start = text.len();
        text.push_str(part);
        text[start..].make_ascii_lowercase();
    } else {
        text.extend(part.chars().flat_map(char::to_lowercase));
    }
}

impl fmt::Display for BareJid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A JID with an optional resource: the sender of a stanza, or a thing's last known
/// full address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Jid {
    bare: BareJid,
    resource: Option<Box<str>>,
}

impl Jid {
    /// Parses `local@domain/resource`, `domain/resource`, or a bare JID.
    pub fn parse(s: &str) -> Result<Self, JidError> {
        if s.is_empty() {
            return Err(err(s, "empty"));
        }
        if any_char(s, |b| b < 0x20 || b == 0x7f, char::is_control) {
            return Err(err(s, "control characters are not allowed"));
        }
        let (bare_text, resource) = match s.split_once('/') {
            Some((b, r)) => {
                if r.is_empty() {
                    return Err(err(s, "empty resource"));
                }
                if r.len() > MAX_PART_BYTES {
                    return Err(err(s, "resource longer than 1023 bytes"));
                }
                (b, Some(r))
            }
            None => (s, None),
        };
        let (local, domain) = match bare_text.split_once('@') {
            Some((l, d)) => (Some(l), d),
            None => (None, bare_text),
        };
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        if domain.is_empty() {
            return Err(err(s, "empty domain"));
        }
        if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
            return Err(err(s, "empty label in domain"));
        }
        if domain.len() > MAX_PART_BYTES {
            return Err(err(s, "domain longer than 1023 bytes"));
        }
        if any_char(
            domain,
            |b| is_space(b) || matches!(b, b'@' | b'/' | b'"' | b'\'' | b'<' | b'>' | b'&'),
            |c| c.is_whitespace() || matches!(c, '@' | '/' | '"' | '\'' | '<' | '>' | '&'),
        ) {
            return Err(err(s, "invalid character in domain"));
        }
        if let Some(local) = local {
            if local.is_empty() {
                return Err(err(s, "empty localpart"));
            }
            if local.len() > MAX_PART_BYTES {
                return Err(err(s, "localpart longer than 1023 bytes"));
            }
            if any_char(
                local,
                |b| {
                    is_space(b)
                        || matches!(b, b'"' | b'&' | b'\'' | b'/' | b':' | b'<' | b'>' | b'@')
                },
                |c| {
                    c.is_whitespace() || matches!(c, '"' | '&' | '\'' | '/' | ':' | '<' | '>' | '@')
                },
            ) {
                return Err(err(s, "invalid character in localpart"));
            }
        }
        if bare_text.is_ascii() && !bare_text.bytes().any(|b| b.is_ascii_uppercase()) {
            // Already normalised (the usual case): stored as given, without
            // the trailing dot of the domain, if any.
            let n = local.map_or(0, |l| l.len() + 1) + domain.len();
            return Ok(Jid {
                bare: BareJid(bare_text[..n].into()),
                resource: resource.map(Into::into),
            });
        }
        let mut text = String::with_capacity(bare_text.len());
        if let Some(local) = local {
            push_lower(&mut text, local);
            text.push('@');
        }
        push_lower(&mut text, domain);
        // Lower-casing can lengthen text (U+023A is 2 bytes, its lower case 3):
        // the limits hold for the normalised form that is stored.
        let (l, d) = text
            .split_once('@')
            .map_or(("", text.as_str()), |(l, d)| (l, d));
        if l.len() > MAX_PART_BYTES {
            return Err(err(s, "localpart longer than 1023 bytes"));
        }
        if d.len() > MAX_PART_BYTES {
            return Err(err(s, "domain longer than 1023 bytes"));
        }
        Ok(Jid {
            bare: BareJid(text.into()),
            resource: resource.map(Into::into),
        })
    }

    /// A JID from a bare JID and an optional resource (not re-validated: the
    /// resource must come from a parsed JID).
    pub fn new(bare: BareJid, resource: Option<&str>) -> Self {
        Jid {
            bare,
            resource: resource.filter(|r| !r.is_empty()).map(Into::into),
        }
    }

    /// The bare part.
    pub fn bare(&self) -> &BareJid {
        &self.bare
    }

    /// The resource, if any.
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }
}

impl From<BareJid> for Jid {
    fn from(bare: BareJid) -> Self {
        Jid {
            bare,
            resource: None,
        }
    }
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.resource {
            Some(r) => write!(f, "{}/{}", self.bare, r),
            None => write!(f, "{}", self.bare),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_but_keeps_resource() {
        let j = Jid::parse("Thing@Example.ORG/IMC").unwrap();
        assert_eq!(j.bare().as_str(), "thing@example.org");
        assert_eq!(j.resource(), Some("IMC"));
        assert_eq!(j.to_string(), "thing@example.org/IMC");
    }

    #[test]
    fn domain_only_and_trailing_dot() {
        let j = Jid::parse("discovery.example.org.").unwrap();
        assert_eq!(j.bare().as_str(), "discovery.example.org");
        assert_eq!(j.bare().local(), None);
        assert_eq!(j.bare().domain(), "discovery.example.org");
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "",
            "@example.org",
            "a@",
            "a@b/",
            "a b@c",
            "a@b c",
            "a\u{1}@b",
            "a:b@c",
        ] {
            assert!(Jid::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(BareJid::parse("a@b/c").is_err());
        let long = format!("{}@x", "a".repeat(1024));
        assert!(Jid::parse(&long).is_err());
    }
}
