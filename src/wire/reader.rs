//! A strict streaming reader for one stanza, on top of quick-xml.
//!
//! It yields elements one at a time with their namespace already classified, and
//! enforces the restricted XML of RFC 6120 11.1 on the way: no DTD, no entity
//! declarations or undefined entities, no processing instructions or comments,
//! no text where only elements belong (white space is fine), balanced tags,
//! declared prefixes, no duplicate attributes, and a nesting depth limit. Nothing
//! is collected into a tree: the request parser pulls what it needs and skips the
//! rest. Attribute values are unescaped lazily and borrow the input when they
//! hold no escapes.
//!
//! Invariant: [`StanzaReader::depth`] is the number of elements opened and not
//! yet closed; an empty element (`<x/>`) never changes it.

use std::borrow::Cow;
use std::fmt;

use quick_xml::NsReader;
use quick_xml::encoding::Decoder;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

fn classify(r: ResolveResult<'_>) -> Result<Ns, XmlError> {
    Ok(match r {
        ResolveResult::Unbound => Ns::None,
        ResolveResult::Unknown(p) => {
            return err(format!(
                "undeclared namespace prefix '{}'",
                String::from_utf8_lossy(&p)
            ));
        }
        ResolveResult::Bound(ns) => {
            let ns = ns.into_inner();
            if ns.is_empty() {
                Ns::None
            } else if let Some(d) = dialect::by_namespace(ns) {
                Ns::Discovery(d)
            } else if ns == dialect::DISCO_INFO.as_bytes() {
                Ns::DiscoInfo
            } else if ns == dialect::DISCO_ITEMS.as_bytes() {
                Ns::DiscoItems
            } else if ns == dialect::STANZAS.as_bytes() {
                Ns::Stanzas
            } else if dialect::STREAM_NAMESPACES
                .iter()
                .any(|s| s.as_bytes() == ns)
            {
                Ns::Stream
            } else {
                Ns::Other
            }
        }
    })
}

/// One opened element.
pub struct Element<'a> {
    /// Its namespace.
    pub ns: Ns,
    /// Whether it was written `<x/>` (no content, no closing tag follows).
    pub empty: bool,
    start: BytesStart<'a>,
    decoder: Decoder,
}

/// The unprefixed attributes of an element, unescaped.
pub type Attrs<'x> = SmallVec<[(&'x str, Cow<'x, str>); 6]>;

impl Element<'_> {
    /// The local name (without prefix).
    pub fn name(&self) -> &[u8] {
        self.start.local_name().into_inner()
    }

    /// The local name as text, for error messages.
    pub fn name_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.name())
    }

    /// The unprefixed attributes (namespace declarations and prefixed
    /// attributes such as `xml:lang` left out). Fails on duplicates, bad
    /// escapes, undefined entities and invalid UTF-8.
    pub fn attrs(&self) -> Result<Attrs<'_>, XmlError> {
        let mut out = Attrs::new();
        for a in self.start.attributes() {
            let a = a.map_err(|e| XmlError(format!("bad attribute: {e}")))?;
            let key = a.key.into_inner();
            if key.contains(&b':') || key == b"xmlns" {
                continue;
            }
            let Ok(key) = std::str::from_utf8(key) else {
                return err("attribute name is not UTF-8");
            };
            let value = match a.value {
                Cow::Borrowed(raw) => {
                    let text = std::str::from_utf8(raw)
                        .map_err(|_| XmlError(format!("attribute '{key}' is not UTF-8")))?;
                    if raw.contains(&b'&') {
                        Cow::Owned(unescape(text, key)?.into_owned())
                    } else {
                        Cow::Borrowed(text)
                    }
                }
                Cow::Owned(raw) => {
                    let text = self
                        .decoder
                        .decode(&raw)
                        .map_err(|_| XmlError(format!("attribute '{key}' is not UTF-8")))?;
                    Cow::Owned(unescape(&text, key)?.into_owned())
                }
            };
            if let Some(c) = forbidden_char(&value) {
                return err(format!(
                    "attribute '{key}' holds the character U+{:04X}, which XML does not allow",
                    c as u32
                ));
            }
            out.push((key, value));
        }
        Ok(out)
    }
}

fn unescape<'t>(text: &'t str, key: &str) -> Result<Cow<'t, str>, XmlError> {
    quick_xml::escape::unescape(text)
        .map_err(|e| XmlError(format!("attribute '{key}': {e} (only the five XML entities and character references are allowed)")))
}

/// What [`StanzaReader::next`] found.
pub enum Item<'a> {
    /// An element opened (or an empty element).
    Open(Element<'a>),
    /// The innermost open element closed.
    Close,
    /// The end of the input, with every element closed.
    Eof,
}

/// Pulls the elements of one stanza out of its bytes.
pub struct StanzaReader<'a> {
    r: NsReader<&'a [u8]>,
    depth: usize,
    max_depth: usize,
    started: bool,
}

impl<'a> StanzaReader<'a> {
    /// A reader over `bytes` that refuses nesting deeper than `max_depth`.
    pub fn new(bytes: &'a [u8], max_depth: usize) -> Self {
        let mut r = NsReader::from_reader(bytes);
        let c = r.config_mut();
        c.check_end_names = true;
        c.check_comments = true;
        c.expand_empty_elements = false;
        c.allow_dangling_amp = false;
        c.allow_unmatched_ends = false;
        StanzaReader {
            r,
            depth: 0,
            max_depth,
            started: false,
        }
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
    /// including its closing tag. Text inside is allowed.
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

    /// Reads the text content of an element just opened (not empty) up to its
    /// closing tag, refusing child elements.
    pub fn text(&mut self) -> Result<String, XmlError> {
        let mut out = String::new();
        loop {
            let ev = self.event()?;
            match ev {
                (_, Event::Text(t)) => out.push_str(
                    &t.decode()
                        .map_err(|_| XmlError("text is not UTF-8".into()))?,
                ),
                (_, Event::CData(t)) => out.push_str(
                    &t.decode()
                        .map_err(|_| XmlError("text is not UTF-8".into()))?,
                ),
                (_, Event::GeneralRef(r)) => {
                    let name = r
                        .decode()
                        .map_err(|_| XmlError("entity name is not UTF-8".into()))?;
                    match resolve_ref(&name) {
                        Some(c) => out.push(c),
                        None => return err(format!("undefined entity '&{name};'")),
                    }
                }
                (_, Event::End(_)) => {
                    self.depth -= 1;
                    return Ok(out);
                }
                (_, Event::Eof) => return err("truncated stanza"),
                (_, Event::Start(_) | Event::Empty(_)) => {
                    return err("an element where only text belongs");
                }
                (_, other) => self.refuse(&other)?,
            }
        }
    }

    /// After the root element closed: only white space may follow.
    pub fn finish(&mut self) -> Result<(), XmlError> {
        match self.next_item()? {
            Item::Eof => Ok(()),
            _ => err("content after the end of the stanza"),
        }
    }

    fn event(&mut self) -> Result<(ResolveResult<'_>, Event<'a>), XmlError> {
        self.r
            .read_resolved_event()
            .map_err(|e| XmlError(format!("malformed XML: {e}")))
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

    fn step(&mut self, strict: bool) -> Result<Item<'a>, XmlError> {
        loop {
            let first = !self.started;
            self.started = true;
            let max_depth = self.max_depth;
            let depth = self.depth;
            let (ns, ev) = self.event()?;
            match ev {
                Event::Start(start) | Event::Empty(start) if depth + 1 > max_depth => {
                    let _ = (ns, start);
                    return err(format!("elements nested deeper than {max_depth}"));
                }
                Event::Start(start) => {
                    let ns = classify(ns)?;
                    let decoder = self.r.decoder();
                    self.depth += 1;
                    return Ok(Item::Open(Element {
                        ns,
                        empty: false,
                        start,
                        decoder,
                    }));
                }
                Event::Empty(start) => {
                    let ns = classify(ns)?;
                    let decoder = self.r.decoder();
                    return Ok(Item::Open(Element {
                        ns,
                        empty: true,
                        start,
                        decoder,
                    }));
                }
                Event::End(_) => {
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
    let bytes = text.as_bytes();
    // Fast path: control bytes are rare and U+FFFE/U+FFFF start with 0xEF.
    if !bytes
        .iter()
        .any(|&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0xEF)
    {
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
                    let attrs = e.attrs()?;
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
