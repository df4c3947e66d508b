//! Typed outcomes -> stanza bytes.
//!
//! Output is compact: single-quoted attributes, no white space or text between
//! elements (a widely used client's result parser fails on any text node inside
//! `<found/>`), self-closing elements when empty. Attribute values are escaped
//! (`& < > ' "` and the control characters XML keeps). The `<iq/>` carries no
//! `xmlns`: it inherits the stream's default namespace (`jabber:client`,
//! `jabber:component:accept`, ...). Every stanza error of the engine is built
//! here, from [`StanzaError`], so the mapping from failures to RFC 6120 errors
//! lives in one place ([`StanzaError::from_registry`]).

use crate::records::ValueRef;
use crate::registry::{PageView, RegistryError};
use crate::tag::Number;
use crate::thing::NodeAddress;
use crate::wire::dialect::{self, Dialect};

/// An RFC 6120 stanza error: its `type`, defined condition and optional text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StanzaError {
    /// `cancel`, `modify`, `wait`, `auth` or `continue`.
    pub kind: &'static str,
    /// The defined condition element, e.g. `item-not-found`.
    pub condition: &'static str,
    /// Human-readable explanation.
    pub text: Option<String>,
}

impl StanzaError {
    /// `bad-request` (modify) with an explanation.
    pub fn bad_request(text: impl Into<String>) -> Self {
        StanzaError {
            kind: "modify",
            condition: "bad-request",
            text: Some(text.into()),
        }
    }

    /// A condition without text.
    pub fn new(kind: &'static str, condition: &'static str) -> Self {
        StanzaError {
            kind,
            condition,
            text: None,
        }
    }

    /// The error a registry failure is reported with.
    pub fn from_registry(e: &RegistryError) -> Self {
        match e {
            RegistryError::BadRequest(m) => StanzaError::bad_request(m.clone()),
            RegistryError::ItemNotFound => StanzaError::new("cancel", "item-not-found"),
            RegistryError::NotAllowed => StanzaError::new("cancel", "not-allowed"),
            RegistryError::ResourceConstraint(m) => StanzaError {
                kind: "wait",
                condition: "resource-constraint",
                text: Some(m.clone()),
            },
            RegistryError::Storage(_) => StanzaError {
                kind: "wait",
                condition: "internal-server-error",
                text: Some("the registry could not store the change; nothing changed".into()),
            },
            RegistryError::Internal(_) => StanzaError {
                kind: "cancel",
                condition: "internal-server-error",
                text: None,
            },
        }
    }
}

/// Bytes [`escape`] rewrites.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'&' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'\'' as usize] = true;
    t[b'"' as usize] = true;
    t
};

/// Appends `s` escaped for a single- or double-quoted attribute value.
pub fn escape(buf: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    // Most values need no escaping: one table scan, one copy.
    let Some(first) = bytes.iter().position(|&b| SPECIAL[b as usize]) else {
        buf.extend_from_slice(bytes);
        return;
    };
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate().skip(first) {
        let rep: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'\'' => b"&apos;",
            b'"' => b"&quot;",
            b'\t' => b"&#9;",
            b'\n' => b"&#10;",
            b'\r' => b"&#13;",
            // Never emitted for validated input; XML cannot carry it even
            // escaped, so it becomes U+FFFD.
            0..=0x1f => "\u{FFFD}".as_bytes(),
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        buf.extend_from_slice(rep);
        start = i + 1;
    }
    buf.extend_from_slice(&bytes[start..]);
}

/// Appends ` name='value'`.
pub fn attr(buf: &mut Vec<u8>, name: &str, value: &str) {
    buf.push(b' ');
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"='");
    escape(buf, value);
    buf.push(b'\'');
}

/// Appends a number in the shortest form that reads back to the same `f64`
/// (`xs:double` lexical form: `1`, `1.2`, `-71.519722`, `1e20`).
pub fn number(buf: &mut Vec<u8>, v: Number) {
    let mut b = ryu::Buffer::new();
    // Numbers are finite by construction. Ryu writes `1.0` for integers: the
    // `.0` goes (XML Schema and the listings write `1`).
    let text = b.format_finite(v.get());
    buf.extend_from_slice(text.strip_suffix(".0").unwrap_or(text).as_bytes());
}

/// Appends `<iq type='..' from='..' to='..' id='..'` (the tag is left open).
pub fn iq_open(buf: &mut Vec<u8>, kind: &str, from: &str, to: &str, id: &str) {
    buf.extend_from_slice(b"<iq type='");
    buf.extend_from_slice(kind.as_bytes());
    buf.push(b'\'');
    attr(buf, "from", from);
    attr(buf, "to", to);
    attr(buf, "id", id);
}

/// Appends an empty `result`.
pub fn empty_result(buf: &mut Vec<u8>, from: &str, to: &str, id: &str) {
    iq_open(buf, "result", from, to, id);
    buf.extend_from_slice(b"/>");
}

/// Appends an `error` reply.
pub fn error(buf: &mut Vec<u8>, from: &str, to: &str, id: &str, e: &StanzaError) {
    iq_open(buf, "error", from, to, id);
    buf.extend_from_slice(b"><error type='");
    buf.extend_from_slice(e.kind.as_bytes());
    buf.extend_from_slice(b"'><");
    buf.extend_from_slice(e.condition.as_bytes());
    buf.extend_from_slice(b" xmlns='");
    buf.extend_from_slice(dialect::STANZAS.as_bytes());
    buf.extend_from_slice(b"'/>");
    if let Some(text) = &e.text {
        buf.extend_from_slice(b"<text xmlns='");
        buf.extend_from_slice(dialect::STANZAS.as_bytes());
        buf.extend_from_slice(b"'>");
        escape(buf, text);
        buf.extend_from_slice(b"</text>");
    }
    buf.extend_from_slice(b"</error></iq>");
}

/// Appends the node address attributes that are set, in the dialect's names.
pub fn node_attrs(buf: &mut Vec<u8>, d: &Dialect, node: [Option<&str>; 3]) {
    for (name, value) in d.node_attrs.iter().zip(node) {
        if let Some(v) = value {
            attr(buf, name, v);
        }
    }
}

/// The three node attributes of a [`NodeAddress`].
pub fn node_of(n: &NodeAddress) -> [Option<&str>; 3] {
    [
        n.node_id.as_deref(),
        n.source_id.as_deref(),
        n.cache_type.as_deref(),
    ]
}

/// Appends `<name xmlns='ns'` (the tag is left open).
pub fn payload_open(buf: &mut Vec<u8>, d: &Dialect, name: &str) {
    buf.push(b'<');
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b" xmlns='");
    buf.extend_from_slice(d.namespace.as_bytes());
    buf.push(b'\'');
}

/// Appends a `claimed` element: `public` as the dialect wants it (XEP-0347
/// writes it only when false).
pub fn claimed(
    buf: &mut Vec<u8>,
    d: &Dialect,
    jid: &str,
    public: Option<bool>,
    node: [Option<&str>; 3],
) {
    payload_open(buf, d, "claimed");
    attr(buf, "jid", jid);
    match public {
        Some(false) => attr(buf, "public", "false"),
        Some(true) if d.claimed_public_always => attr(buf, "public", "true"),
        _ => {}
    }
    node_attrs(buf, d, node);
    buf.extend_from_slice(b"/>");
}

/// Appends a payload element with only node attributes (`removed`,
/// `disowned`, `disown`).
pub fn bare_payload(buf: &mut Vec<u8>, d: &Dialect, name: &str, node: [Option<&str>; 3]) {
    payload_open(buf, d, name);
    node_attrs(buf, d, node);
    buf.extend_from_slice(b"/>");
}

/// Appends `<found more='..'>` with one `<thing/>` per result.
pub fn found(buf: &mut Vec<u8>, d: &Dialect, page: &PageView<'_>, owner: bool) {
    payload_open(buf, d, "found");
    buf.extend_from_slice(if page.more() {
        b" more='true'"
    } else {
        b" more='false'"
    });
    if page.is_empty() {
        buf.extend_from_slice(b"/>");
        return;
    }
    buf.push(b'>');
    for t in page.things() {
        buf.extend_from_slice(b"<thing");
        if owner {
            attr(buf, "owner", t.owner().as_str());
        }
        attr(buf, "jid", t.jid());
        node_attrs(buf, d, t.node());
        let mut any = false;
        for (name, value) in t.tags() {
            if !any {
                buf.push(b'>');
                any = true;
            }
            match value {
                ValueRef::Str(s) => {
                    buf.extend_from_slice(b"<str name='");
                    escape(buf, name.as_str());
                    buf.extend_from_slice(b"' value='");
                    escape(buf, s);
                }
                ValueRef::Num(n) => {
                    buf.extend_from_slice(b"<num name='");
                    escape(buf, name.as_str());
                    buf.extend_from_slice(b"' value='");
                    number(buf, n);
                }
            }
            buf.extend_from_slice(b"'/>");
        }
        buf.extend_from_slice(if any { b"</thing>" } else { b"/>" });
    }
    buf.extend_from_slice(b"</found>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(v: f64) -> String {
        let mut b = Vec::new();
        number(&mut b, Number::new(v, "X").unwrap());
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn numbers_are_short_and_exact() {
        assert_eq!(num(1.0), "1");
        assert_eq!(num(1.2), "1.2");
        assert_eq!(num(-71.519722), "-71.519722");
        assert_eq!(num(1e20), "1e20");
        assert_eq!(num(-0.0), "0");
        for v in [1e-7, 123456789.125, f64::MAX, f64::MIN_POSITIVE, 0.1 + 0.2] {
            assert_eq!(num(v).parse::<f64>().unwrap(), v);
        }
    }

    #[test]
    fn escaping() {
        let mut b = Vec::new();
        attr(&mut b, "v", "a&b<c>'d\"e\tf\ng");
        assert_eq!(
            String::from_utf8(b).unwrap(),
            " v='a&amp;b&lt;c&gt;&apos;d&quot;e&#9;f&#10;g'"
        );
    }

    #[test]
    fn errors_carry_type_condition_and_text() {
        let mut b = Vec::new();
        error(
            &mut b,
            "r",
            "c/x",
            "1",
            &StanzaError::bad_request("no <tags>"),
        );
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "<iq type='error' from='r' to='c/x' id='1'><error type='modify'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no &lt;tags&gt;</text></error></iq>"
        );
    }
}
