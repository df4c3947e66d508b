//! Stanzas as XML trees for the wire tests (`wire_listings.rs`,
//! `dialect_successor.rs`, included with `#[path]`): element names and
//! namespaces, attributes in any order, white space between elements ignored,
//! and `'*'` in an expected attribute matching any value.

#![allow(dead_code)] // each test uses its own subset

use std::collections::BTreeMap;

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

/// An XML element as compared by these tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct El {
    /// Namespace (`jabber:client` counts as none).
    pub ns: String,
    /// Local name.
    pub name: String,
    /// Attributes other than namespace declarations.
    pub attrs: BTreeMap<String, String>,
    /// Child elements, in order.
    pub children: Vec<El>,
    /// Text, white space between elements dropped.
    pub text: String,
}

/// Parses one stanza into a tree. `<iq/>` in `jabber:client` counts as no
/// namespace (the listings leave it to the stream).
pub fn tree(xml: &str) -> El {
    let mut r = NsReader::from_str(xml);
    let mut stack: Vec<El> = Vec::new();
    loop {
        let (ns, ev) = r
            .read_resolved_event()
            .unwrap_or_else(|e| panic!("{e}: {xml}"));
        let ns = match ns {
            ResolveResult::Bound(n) => {
                let n = String::from_utf8(n.into_inner().to_vec()).unwrap();
                if n == "jabber:client" {
                    String::new()
                } else {
                    n
                }
            }
            _ => String::new(),
        };
        let empty = matches!(ev, Event::Empty(_));
        match ev {
            Event::Start(s) | Event::Empty(s) => {
                let mut el = El {
                    ns,
                    name: String::from_utf8(s.local_name().into_inner().to_vec()).unwrap(),
                    attrs: BTreeMap::new(),
                    children: vec![],
                    text: String::new(),
                };
                for a in s.attributes() {
                    let a = a.unwrap();
                    let k = String::from_utf8(a.key.into_inner().to_vec()).unwrap();
                    if k == "xmlns" || k.starts_with("xmlns:") {
                        continue;
                    }
                    el.attrs.insert(k, a.unescape_value().unwrap().into_owned());
                }
                if empty {
                    match stack.last_mut() {
                        Some(p) => p.children.push(el),
                        None => return el,
                    }
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let el = stack.pop().unwrap();
                match stack.last_mut() {
                    Some(p) => p.children.push(el),
                    None => return el,
                }
            }
            Event::Text(t) => {
                let t = t.decode().unwrap();
                if !t.trim().is_empty() {
                    stack.last_mut().unwrap().text.push_str(&t);
                }
            }
            Event::GeneralRef(g) => {
                let name = g.decode().unwrap().into_owned();
                let c = match name.as_str() {
                    "lt" => "<",
                    "gt" => ">",
                    "amp" => "&",
                    "apos" => "'",
                    "quot" => "\"",
                    other => panic!("entity {other}"),
                };
                stack.last_mut().unwrap().text.push_str(c);
            }
            Event::Eof => panic!("truncated: {xml}"),
            _ => {}
        }
    }
}

/// Asserts `got` matches `want`; an attribute `'*'` in `want` matches any value.
pub fn matches(want: &El, got: &El) -> bool {
    want.ns == got.ns
        && want.name == got.name
        && want.text == got.text
        && want.attrs.len() == got.attrs.len()
        && want
            .attrs
            .iter()
            .all(|(k, v)| got.attrs.get(k).is_some_and(|g| v == "*" || g == v))
        && want.children.len() == got.children.len()
        && want
            .children
            .iter()
            .zip(&got.children)
            .all(|(w, g)| matches(w, g))
}
