//! DNS names as DNS-SD uses them: [`Name`] (a sequence of labels, any bytes,
//! compared case-insensitively as DNS does) and [`MachineName`] (the one label
//! a server announces itself under, a host name label per RFC 1035/1123, with
//! the spec's conflict renaming `pronto`, `pronto-1`, `pronto-2`, ...).
//!
//! Invariants: a [`Name`] has labels of 1-63 bytes and at most 255 bytes in
//! wire form; a [`MachineName`] is 1-63 ASCII letters, digits and hyphens,
//! neither starting nor ending with a hyphen.

use std::fmt;

use super::DiscoveryError;

/// The longest label (RFC 1035 2.3.4).
pub const MAX_LABEL: usize = 63;
/// The longest name in wire form, length bytes and root included (RFC 1035 2.3.4).
pub const MAX_NAME: usize = 255;

/// An absolute domain name: labels from the most specific to the top level,
/// without the root's empty label. Equality ignores ASCII case.
#[derive(Clone, Debug, Eq)]
pub struct Name {
    labels: Vec<Box<[u8]>>,
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.labels.len() == other.labels.len()
            && self
                .labels
                .iter()
                .zip(&other.labels)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }
}

impl Name {
    /// The root name (no labels).
    pub fn root() -> Name {
        Name { labels: Vec::new() }
    }

    /// A name from its labels (most specific first), each 1-63 bytes, the whole
    /// at most 255 bytes in wire form.
    pub fn from_labels<I, L>(labels: I) -> Result<Name, DiscoveryError>
    where
        I: IntoIterator<Item = L>,
        L: AsRef<[u8]>,
    {
        let mut name = Name::root();
        for label in labels {
            name = name.child_of_root_order(label.as_ref())?;
        }
        Ok(name)
    }

    fn child_of_root_order(mut self, label: &[u8]) -> Result<Name, DiscoveryError> {
        check_label(label)?;
        self.labels.push(label.into());
        if self.wire_len() > MAX_NAME {
            return Err(DiscoveryError::BadName {
                name: self.to_string(),
                reason: "longer than 255 bytes",
            });
        }
        Ok(self)
    }

    /// Parses a dotted name (`example.com`, `example.com.`, `local`). Labels
    /// are letters, digits, `-` and `_` (service labels); no escapes.
    pub fn parse(text: &str) -> Result<Name, DiscoveryError> {
        let trimmed = text.strip_suffix('.').unwrap_or(text);
        if trimmed.is_empty() {
            return Err(DiscoveryError::BadName {
                name: text.into(),
                reason: "empty",
            });
        }
        let mut name = Name::root();
        for label in trimmed.split('.') {
            if !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(DiscoveryError::BadName {
                    name: text.into(),
                    reason: "only letters, digits, '-' and '_' are allowed in a label",
                });
            }
            name = name
                .child_of_root_order(label.as_bytes())
                .map_err(|e| match e {
                    DiscoveryError::BadName { reason, .. } => DiscoveryError::BadName {
                        name: text.into(),
                        reason,
                    },
                    other => other,
                })?;
        }
        Ok(name)
    }

    /// `label.self`: this name with one more label in front.
    pub fn prepend(&self, label: &[u8]) -> Result<Name, DiscoveryError> {
        check_label(label)?;
        let mut labels = Vec::with_capacity(self.labels.len() + 1);
        labels.push(Box::from(label));
        labels.extend(self.labels.iter().cloned());
        let name = Name { labels };
        if name.wire_len() > MAX_NAME {
            return Err(DiscoveryError::BadName {
                name: name.to_string(),
                reason: "longer than 255 bytes",
            });
        }
        Ok(name)
    }

    /// The labels, most specific first.
    pub fn labels(&self) -> impl ExactSizeIterator<Item = &[u8]> {
        self.labels.iter().map(|l| &l[..])
    }

    /// The first (most specific) label, if any.
    pub fn first_label(&self) -> Option<&[u8]> {
        self.labels.first().map(|l| &l[..])
    }

    /// The name without its first label (the root stays the root).
    pub fn parent(&self) -> Name {
        Name {
            labels: self.labels.iter().skip(1).cloned().collect(),
        }
    }

    /// Length in wire form (length bytes and the root's zero byte included).
    pub fn wire_len(&self) -> usize {
        1 + self.labels.iter().map(|l| 1 + l.len()).sum::<usize>()
    }

    /// Appends the uncompressed wire form.
    pub fn write_wire(&self, out: &mut Vec<u8>) {
        for label in &self.labels {
            // Labels are checked to be at most 63 bytes.
            out.push(label.len() as u8);
            out.extend_from_slice(label);
        }
        out.push(0);
    }

    /// The first label as text (DNS presentation escapes for dots, backslashes
    /// and bytes outside printable ASCII), e.g. an instance name.
    pub fn first_label_text(&self) -> String {
        let mut s = String::new();
        if let Some(label) = self.labels.first() {
            escape_label(label, &mut s);
        }
        s
    }
}

impl fmt::Display for Name {
    /// Presentation form, absolute (trailing dot): `pronto.local.`; the root is `.`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.labels.is_empty() {
            return f.write_str(".");
        }
        let mut s = String::new();
        for label in &self.labels {
            escape_label(label, &mut s);
            s.push('.');
        }
        f.write_str(&s)
    }
}

/// RFC 1035 5.1 presentation of one label.
fn escape_label(label: &[u8], s: &mut String) {
    for &b in label {
        match b {
            b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                s.push('\\');
                s.push(b as char);
            }
            0x21..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\{b:03}")),
        }
    }
}

fn check_label(label: &[u8]) -> Result<(), DiscoveryError> {
    if label.is_empty() || label.len() > MAX_LABEL {
        return Err(DiscoveryError::BadName {
            name: String::from_utf8_lossy(label).into_owned(),
            reason: "a label must be 1-63 bytes",
        });
    }
    Ok(())
}

/// The machine name a server announces (`pronto` in `pronto.local.` and
/// `pronto._xmpp-client._tcp.local.`): one host name label, letters, digits
/// and `-`, 1-63 characters, no leading or trailing `-`. Kept as given;
/// comparisons ([`MachineName::same_as`]) ignore case, as DNS does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineName(String);

impl MachineName {
    /// Checks a machine name.
    pub fn new(name: &str) -> Result<MachineName, DiscoveryError> {
        let bad = |reason| DiscoveryError::BadName {
            name: name.into(),
            reason,
        };
        if name.is_empty() || name.len() > MAX_LABEL {
            return Err(bad("a machine name must be 1-63 characters"));
        }
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(bad(
                "a machine name holds only letters, digits and '-' (RFC 1035)",
            ));
        }
        if name.starts_with('-') || name.ends_with('-') {
            return Err(bad("a machine name cannot start or end with '-'"));
        }
        Ok(MachineName(name.into()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `other` names the same machine (ASCII case ignored).
    pub fn same_as(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }

    /// The `n`th name the spec's conflict rule tries (3.3.2): `n = 0` is the
    /// name itself, then `name-1`, `name-2`, ... The base is shortened when
    /// the suffix would pass 63 characters (and any `-` that shortening leaves
    /// at its end is dropped), so every candidate is a valid machine name.
    pub fn renamed(&self, n: u32) -> MachineName {
        if n == 0 {
            return self.clone();
        }
        let suffix = format!("-{n}");
        let mut base = &self.0[..self.0.len().min(MAX_LABEL - suffix.len())];
        base = base.trim_end_matches('-');
        // The base keeps at least its first character, which is not '-'.
        MachineName(format!("{base}{suffix}"))
    }

    /// The first candidate of [`MachineName::renamed`] that `taken` says is
    /// free: the name itself if nobody holds it, else `name-1`, `name-2`, ...
    /// `None` only if all 2^32 candidates are taken.
    pub fn first_free(&self, mut taken: impl FnMut(&MachineName) -> bool) -> Option<MachineName> {
        (0..=u32::MAX)
            .map(|n| self.renamed(n))
            .find(|candidate| !taken(candidate))
    }
}

impl fmt::Display for MachineName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_print_and_compare_without_case() {
        let n = Name::parse("_xmpp-client._tcp.local.").unwrap();
        assert_eq!(n.to_string(), "_xmpp-client._tcp.local.");
        assert_eq!(n, Name::parse("_XMPP-Client._TCP.Local").unwrap());
        assert_eq!(n.labels().len(), 3);
        assert_eq!(n.parent().to_string(), "_tcp.local.");
        let mut wire = Vec::new();
        n.write_wire(&mut wire);
        assert_eq!(wire, b"\x0c_xmpp-client\x04_tcp\x05local\x00");
        assert_eq!(n.wire_len(), wire.len());
        assert_eq!(Name::root().to_string(), ".");
    }

    #[test]
    fn bad_names_are_errors() {
        for bad in ["", ".", "a..b", "a b.local", "ex@mple.com", &"x".repeat(64)] {
            assert!(
                matches!(Name::parse(bad), Err(DiscoveryError::BadName { .. })),
                "{bad:?}"
            );
        }
        let long = vec!["abcdefghij"; 30].join(".");
        assert!(Name::parse(&long).is_err(), "over 255 bytes");
    }

    #[test]
    fn labels_with_any_bytes_are_escaped_when_printed() {
        let n = Name::from_labels([&b"My Server.1"[..], b"local"]).unwrap();
        assert_eq!(n.to_string(), "My\\032Server\\.1.local.");
        assert_eq!(n.first_label_text(), "My\\032Server\\.1");
    }

    #[test]
    fn machine_names_follow_rfc_1035() {
        assert_eq!(MachineName::new("pronto").unwrap().as_str(), "pronto");
        for bad in [
            "",
            "-pronto",
            "pronto-",
            "pron to",
            "pronto.local",
            "prontö",
        ] {
            assert!(MachineName::new(bad).is_err(), "{bad:?}");
        }
        assert!(MachineName::new(&"p".repeat(64)).is_err());
    }

    #[test]
    fn renaming_follows_the_spec() {
        let m = MachineName::new("pronto").unwrap();
        let names: Vec<String> = (0..4).map(|n| m.renamed(n).to_string()).collect();
        assert_eq!(names, ["pronto", "pronto-1", "pronto-2", "pronto-3"]);
        assert_eq!(m.renamed(10).as_str(), "pronto-10");
        let taken = ["pronto", "PRONTO-1", "pronto-3"];
        let free = m
            .first_free(|c| taken.iter().any(|t| c.same_as(t)))
            .unwrap();
        assert_eq!(free.as_str(), "pronto-2");
        assert_eq!(m.first_free(|_| false).unwrap(), m);
    }

    #[test]
    fn renaming_keeps_long_names_valid() {
        let long = MachineName::new(&"a".repeat(63)).unwrap();
        let r = long.renamed(1);
        assert_eq!(r.as_str().len(), 63);
        assert!(r.as_str().ends_with("a-1"));
        let hyphen = MachineName::new(&format!("{}-b", "a".repeat(60))).unwrap();
        // Shortened to 61 characters it would end in '-': that '-' goes.
        let r = hyphen.renamed(1);
        assert_eq!(r.as_str(), format!("{}-1", "a".repeat(60)));
        assert!(MachineName::new(r.as_str()).is_ok());
        assert!(MachineName::new(long.renamed(u32::MAX).as_str()).is_ok());
    }
}
