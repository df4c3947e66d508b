//! A strict streaming reader for one stanza, on top of quick-xml.
//!
//! It yields elements one at a time with their namespace already classified, and
//! enforces the restricted XML of RFC 6120 11.1 on the way: no DTD, no entity
//! declarations or undefined entities, no processing instructions or comments,
//! no text where only elements belong (white space is fine), balanced tags,
//! declared prefixes, no duplicate attributes, no characters XML 1.0 forbids,
//! and a nesting depth limit. Nothing is collected into a tree: the request
//! parser pulls what it needs and skips the rest.
//!
//! Each element's attributes are read exactly once, when it opens: namespace
//! declarations go onto the reader's scope stack (so the element's own prefix
//! resolves against them) and the other unprefixed attributes are kept,
//! unescaped, borrowing the input unless they hold escapes. Elements inside a
//! skipped subtree are only tokenised, never decoded.
//!
//! Invariants: [`StanzaReader::depth`] is the number of elements opened and not
//! yet closed (an empty element `<x/>` never changes it); every namespace
//! binding on the scope stack belongs to an open element, and is popped when that
//! element closes.

use std::borrow::Cow;
use std::fmt;

use quick_xml::Reader;
use quick_xml::events::attributes::Attributes;
use quick_xml::events::{BytesStart, Event};
use smallvec::SmallVec;

use crate::wire::dialect::{self, Dialect};

/// Why the XML was refused: the text goes into the `bad-request` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError(pub String);

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for XmlError {}

fn err<T>(msg: impl Into<String>) -> Result<T, XmlError> {
    Err(XmlError(msg.into()))
}

/// The namespace of an element, as far as the engine cares.
#[derive(Debug, Clone, Copy, Eq)]
pub enum Ns {
    /// No namespace.
    None,
    /// `jabber:client`, `jabber:server` or `jabber:component:accept`.
    Stream,
    /// One of the discovery dialects.
    Discovery(&'static Dialect),
    /// `http://jabber.org/protocol/disco#info`.
    DiscoInfo,
    /// `http://jabber.org/protocol/disco#items`.
    DiscoItems,
    /// `urn:ietf:params:xml:ns:xmpp-stanzas`.
    Stanzas,
    /// Anything else.
    Other,
}

impl PartialEq for Ns {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            // Dialects are statics: the same dialect is the same address.
            (Ns::Discovery(a), Ns::Discovery(b)) => std::ptr::eq(*a, *b),
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

fn classify(ns: &str) -> Ns {
    if ns.is_empty() {
        Ns::None
    } else if let Some(d) = dialect::by_namespace(ns.as_bytes()) {
        Ns::Discovery(d)
    } else if ns == dialect::DISCO_INFO {
        Ns::DiscoInfo
    } else if ns == dialect::DISCO_ITEMS {
        Ns::DiscoItems
    } else if ns == dialect::STANZAS {
        Ns::Stanzas
    } else if dialect::STREAM_NAMESPACES.contains(&ns) {
        Ns::Stream
    } else {
        Ns::Other
    }
}

/// The unprefixed attributes of an element, unescaped: `(name, value)`.
pub type Attrs<'a> = [(&'a str, Cow<'a, str>)];

/// One opened element.
pub struct Element<'a> {
    /// Its namespace.
    pub ns: Ns,
    /// Whether it was written `<x/>` (no content, no closing tag follows).
    pub empty: bool,
    name: &'a str,
    /// Where its attributes are in the reader's buffer (valid until the next
    /// element is decoded).
    attrs: std::ops::Range<usize>,
}

impl<'a> Element<'a> {
    /// The local name (without prefix).
    pub fn name(&self) -> &[u8] {
        self.name.as_bytes()
    }

    /// The local name as text.
    pub fn name_text(&self) -> &'a str {
        self.name
    }
}

fn unescape<'t>(text: &'t str, key: &str) -> Result<Cow<'t, str>, XmlError> {
    let v = quick_xml::escape::unescape(text).map_err(|e| {
        XmlError(format!(
            "attribute '{key}': {e} (only the five XML entities and character references are allowed)"
        ))
    })?;
    check_chars(&v, key)?;
    Ok(v)
}

/// `part` (a slice of `whole`'s bytes) as a slice of `whole`: a boundary check
/// instead of a UTF-8 validation. `None` if it is not a slice of `whole` or does
/// not fall on character boundaries.
fn sub<'a>(whole: &'a str, part: &[u8]) -> Option<&'a str> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    whole.get(start..start.checked_add(part.len())?)
}

fn check_chars(v: &str, key: &str) -> Result<(), XmlError> {
    match forbidden_char(v) {
        Some(c) => err(format!(
            "attribute '{key}' holds the character U+{:04X}, which XML does not allow",
            c as u32
        )),
        None => Ok(()),
    }
}

/// What [`StanzaReader::next_item`] found.
pub enum Item<'a> {
    /// An element opened (or an empty element).
    Open(Element<'a>),
    /// The innermost open element closed.
    Close,
    /// The end of the input, with every element closed.
    Eof,
}

/// A namespace binding in scope: declared on the element at `depth`.
struct Binding<'a> {
    depth: usize,
    /// `""` for the default namespace.
    prefix: &'a str,
    ns: Ns,
}

/// Pulls the elements of one stanza out of its bytes.
pub struct StanzaReader<'a> {
    input: &'a [u8],
    r: Reader<&'a [u8]>,
    depth: usize,
    max_depth: usize,
    started: bool,
    scopes: SmallVec<[Binding<'a>; 4]>,
    /// The attributes of the element last decoded.
    attr_buf: Vec<(&'a str, Cow<'a, str>)>,
    clean: bool,
    /// The input as text, when it is UTF-8.
    text: Option<&'a str>,
    opening: &'a str,
}

impl<'a> StanzaReader<'a> {
    /// A reader over `bytes` that refuses nesting deeper than `max_depth`.
    pub fn new(bytes: &'a [u8], max_depth: usize) -> Self {
        let mut r = Reader::from_reader(bytes);
        let c = r.config_mut();
        c.check_end_names = true;
        c.check_comments = true;
        c.expand_empty_elements = false;
        c.allow_dangling_amp = false;
        c.allow_unmatched_ends = false;
        let text = std::str::from_utf8(bytes).ok();
        let clean = text.is_some_and(|t| forbidden_char(t).is_none());
        StanzaReader {
            input: bytes,
            r,
            depth: 0,
            max_depth,
            started: false,
            scopes: SmallVec::new(),
            attr_buf: Vec::new(),
            clean,
            text,
            opening: "",
        }
    }

    /// Whether the whole input is UTF-8 without characters XML forbids (then
    /// only escaped values need a second look).
    pub fn is_clean(&self) -> bool {
        self.clean
    }

    /// The unprefixed attributes of `e`, the element last returned by
    /// [`StanzaReader::next_item`] (namespace declarations and prefixed
    /// attributes such as `xml:lang` left out), unescaped. Meaningless for any
    /// other element.
    pub fn attrs(&self, e: &Element<'_>) -> &Attrs<'a> {
        self.attr_buf.get(e.attrs.clone()).unwrap_or(&[])
    }

    /// The qualified name of the element last decoded (also when decoding its
    /// attributes failed).
    pub fn last_name(&self) -> &'a str {
        self.opening
    }

    /// Elements opened and not closed yet.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The next element event; text other than white space is an error.
    pub fn next_item(&mut self) -> Result<Item<'a>, XmlError> {
        self.step(true)
    }

    /// Consumes the content of an element just opened (not empty) up to and
    /// including its closing tag. Text inside is allowed; elements inside are
    /// checked for balance only.
    pub fn skip(&mut self) -> Result<(), XmlError> {
        let target = self.depth - 1;
        while self.depth > target {
            match self.step(false)? {
                Item::Eof => return err("truncated stanza"),
                Item::Open(_) | Item::Close => {}
            }
        }
        Ok(())
    }

    /// After the root element closed: only white space may follow.
    pub fn finish(&mut self) -> Result<(), XmlError> {
        match self.next_item()? {
            Item::Eof => Ok(()),
            _ => err("content after the end of the stanza"),
        }
    }

    fn refuse(&self, ev: &Event<'_>) -> Result<(), XmlError> {
        match ev {
            Event::DocType(_) => err("DTDs and entity declarations are not allowed"),
            Event::PI(_) => err("processing instructions are not allowed"),
            Event::Comment(_) => err("comments are not allowed"),
            Event::Decl(_) => err("an XML declaration is only allowed at the start"),
            _ => Ok(()),
        }
    }

    /// Decodes an element that opens at depth `depth` (1 = root): its
    /// attributes, its namespace declarations (pushed) and its namespace.
    fn open(
        &mut self,
        start: BytesStart<'a>,
        depth: usize,
        empty: bool,
    ) -> Result<Element<'a>, XmlError> {
        let qname_len = start.name().into_inner().len();
        // A slice reader lends its events from the input: find the tag's text
        // there, so the attributes can borrow the input itself (`'a`), not the
        // event.
        let content: &[u8] = &start;
        let offset = (content.as_ptr() as usize).wrapping_sub(self.input.as_ptr() as usize);
        let Some(raw) = self.input.get(offset..offset.saturating_add(content.len())) else {
            return err("internal: an event not borrowed from the input");
        };
        let qname_end = qname_len.min(raw.len());
        self.opening = match self.text {
            // A boundary check instead of a UTF-8 validation.
            Some(t) => t.get(offset..offset + qname_end),
            None => std::str::from_utf8(&raw[..qname_end]).ok(),
        }
        .unwrap_or("");
        // When the whole input is UTF-8 (the usual case), slicing its text is a
        // boundary check, not a second validation.
        let text = match self.text {
            Some(t) => t.get(offset..offset + raw.len()),
            None => std::str::from_utf8(raw).ok(),
        };
        let Some(raw) = text else {
            return err("an element is not UTF-8");
        };
        let qname = &raw[..qname_len];
        let mut keys: SmallVec<[&'a str; 8]> = SmallVec::new();
        self.attr_buf.clear();
        let mut iter = Attributes::new(raw, qname_len);
        iter.with_checks(false);
        for a in iter {
            let a = a.map_err(|e| XmlError(format!("bad attribute: {e}")))?;
            let Some(key) = sub(raw, a.key.into_inner()) else {
                return err("attribute name is not UTF-8");
            };
            let kb = key.as_bytes();
            if keys.iter().any(|k| {
                let b = k.as_bytes();
                b.len() == kb.len() && b.first() == kb.first() && b.last() == kb.last() && b == kb
            }) {
                return err(format!("duplicated attribute '{key}'"));
            }
            keys.push(key);
            let value: Cow<'a, str> = match a.value {
                Cow::Borrowed(v) => {
                    let Some(v) = sub(raw, v) else {
                        return err(format!("attribute '{key}' is not UTF-8"));
                    };
                    if v.contains('&') {
                        Cow::Owned(unescape(v, key)?.into_owned())
                    } else {
                        if !self.clean {
                            check_chars(v, key)?;
                        }
                        Cow::Borrowed(v)
                    }
                }
                Cow::Owned(_) => return err("internal: owned attribute from a slice"),
            };
            if key == "xmlns" {
                self.scopes.push(Binding {
                    depth,
                    prefix: "",
                    ns: classify(&value),
                });
            } else if let Some(prefix) = key.strip_prefix("xmlns:") {
                if value.is_empty() {
                    return err(format!("prefix '{prefix}' bound to no namespace"));
                }
                self.scopes.push(Binding {
                    depth,
                    prefix,
                    ns: classify(&value),
                });
            } else if !key.contains(':') {
                self.attr_buf.push((key, value));
            }
        }
        let (prefix, name) = qname.split_once(':').unwrap_or(("", qname));
        let ns =
            match self.scopes.iter().rev().find(|b| {
                b.prefix.len() == prefix.len() && (prefix.is_empty() || b.prefix == prefix)
            }) {
                Some(b) => b.ns,
                None if prefix.is_empty() => Ns::None,
                None => return err(format!("undeclared namespace prefix '{prefix}'")),
            };
        if empty {
            self.pop_scopes(depth);
        }
        Ok(Element {
            ns,
            empty,
            name,
            attrs: 0..self.attr_buf.len(),
        })
    }

    fn pop_scopes(&mut self, depth: usize) {
        while self.scopes.last().is_some_and(|b| b.depth >= depth) {
            self.scopes.pop();
        }
    }

    fn step(&mut self, strict: bool) -> Result<Item<'a>, XmlError> {
        loop {
            let first = !self.started;
            self.started = true;
            let ev = self
                .r
                .read_event()
                .map_err(|e| XmlError(format!("malformed XML: {e}")))?;
            match ev {
                Event::Start(_) | Event::Empty(_) if self.depth + 1 > self.max_depth => {
                    return err(format!("elements nested deeper than {}", self.max_depth));
                }
                Event::Start(start) => {
                    self.depth += 1;
                    if !strict {
                        return Ok(Item::Open(Element {
                            ns: Ns::Other,
                            empty: false,
                            name: "",
                            attrs: 0..0,
                        }));
                    }
                    return self.open(start, self.depth, false).map(Item::Open);
                }
                Event::Empty(start) => {
                    if !strict {
                        return Ok(Item::Open(Element {
                            ns: Ns::Other,
                            empty: true,
                            name: "",
                            attrs: 0..0,
                        }));
                    }
                    return self.open(start, self.depth + 1, true).map(Item::Open);
                }
                Event::End(_) => {
                    self.pop_scopes(self.depth);
                    self.depth -= 1;
                    return Ok(Item::Close);
                }
                Event::Eof => {
                    if self.depth > 0 {
                        return err("truncated stanza");
                    }
                    return Ok(Item::Eof);
                }
                Event::Text(t) => {
                    if strict && !t.iter().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
                        return err("text where only elements belong");
                    }
                }
                Event::CData(t) => {
                    if strict && !t.iter().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
                        return err("text where only elements belong");
                    }
                }
                Event::GeneralRef(r) => {
                    if strict {
                        return err("text where only elements belong");
                    }
                    let name = r
                        .decode()
                        .map_err(|_| XmlError("entity name is not UTF-8".into()))?;
                    if resolve_ref(&name).is_none() {
                        return err(format!("undefined entity '&{name};'"));
                    }
                }
                Event::Decl(_) if first => {}
                other => self.refuse(&other)?,
            }
        }
    }
}

/// The character an entity reference stands for: the five predefined entities
/// and character references; `None` for anything else.
fn resolve_ref(name: &str) -> Option<char> {
    Some(match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "apos" => '\'',
        "quot" => '"',
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code).filter(|c| is_xml_char(*c))?
        }
    })
}

/// Whether XML 1.0 allows this character at all (the `Char` production): no
/// control characters but tab, line feed and carriage return, no U+FFFE/U+FFFF.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// The first byte sequence XML 1.0 does not allow in UTF-8 text (a control
/// byte, or U+FFFE/U+FFFF), if any. The input must be valid UTF-8.
pub fn forbidden_char(text: &str) -> Option<char> {
    // Fast path, branch-free per byte so it vectorises: control bytes other
    // than tab, LF and CR are rare, and U+FFFE/U+FFFF start with 0xEF.
    let suspect = |chunk: &[u8]| {
        chunk.iter().fold(false, |acc, &b| {
            acc | ((b < 0x20) & (b != b'\t') & (b != b'\n') & (b != b'\r')) | (b == 0xEF)
        })
    };
    if !text.as_bytes().chunks(64).any(suspect) {
        return None;
    }
    text.chars().find(|c| !is_xml_char(*c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(xml: &str) -> Result<Vec<String>, XmlError> {
        let mut r = StanzaReader::new(xml.as_bytes(), 8);
        let mut out = Vec::new();
        loop {
            match r.next_item()? {
                Item::Open(e) => {
                    let attrs = r.attrs(&e).to_vec();
                    let mut s = format!("{:?}:{}", e.ns, e.name_text());
                    for (k, v) in attrs {
                        s.push_str(&format!(" {k}={v}"));
                    }
                    out.push(s);
                }
                Item::Close => out.push("/".into()),
                Item::Eof => return Ok(out),
            }
        }
    }

    #[test]
    fn prefixes_quotes_and_escapes() {
        let out = walk(
            "<iq xmlns='jabber:client' id=\"a&amp;b\"><d:x xmlns:d='urn:xmpp:iot:discovery' v='&#x41;&lt;'/></iq>",
        )
        .unwrap();
        assert_eq!(out[0], "Stream:iq id=a&b");
        assert!(out[1].ends_with(":x v=A<"), "{}", out[1]);
        assert!(out[1].starts_with("Discovery("));
    }

    #[test]
    fn restricted_xml_is_refused() {
        for bad in [
            "<!DOCTYPE x [<!ENTITY a 'b'>]><iq/>",
            "<iq><?pi x?></iq>",
            "<iq><!-- c --></iq>",
            "<iq v='&foo;'/>",
            "<iq>text</iq>",
            "<iq a='1' a='2'/>",
            "<iq><p:x/></iq>",
            "<iq><a><b></a></b></iq>",
            "<iq><a>",
            "<a><b><c><d><e><f><g><h><i/></h></g></f></e></d></c></b></a>",
        ] {
            assert!(walk(bad).is_err(), "{bad}");
        }
        assert!(walk("<?xml version='1.0'?><iq/>").is_ok());
    }
}
