//! The head of a stanza, read without parsing its payload: enough to route it
//! (IQ to the engine, presence to the subscription rules) and to log it.
//!
//! [`Head::peek`] reads the top element's name and its `from`, `to`, `type`
//! and `id` attributes, the local name of its first child (the request's
//! payload, e.g. `register`), and for `type='error'` the condition inside
//! `<error/>`. It stops there: the engine parses IQs in full itself.

use quick_xml::events::{BytesStart, Event};

/// What a stanza is and who it is from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    /// The element name as written (`iq`, `presence`, `message`, ...).
    pub name: String,
    /// The `from` attribute.
    pub from: Option<String>,
    /// The `to` attribute.
    pub to: Option<String>,
    /// The `type` attribute.
    pub kind: Option<String>,
    /// The `id` attribute.
    pub id: Option<String>,
    /// The local name of the first child element (the payload of an IQ).
    pub child: Option<String>,
    /// For `type='error'`: the defined condition inside `<error/>`.
    pub condition: Option<String>,
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    let a = e.try_get_attribute(name).ok()??;
    a.unescape_value().ok().map(|v| v.into_owned())
}

fn local(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.local_name().as_ref()).into_owned()
}

impl Head {
    /// Reads the head of `stanza`; `None` if not even the top element's start
    /// tag is well-formed.
    pub fn peek(stanza: &[u8]) -> Option<Head> {
        let mut reader = quick_xml::Reader::from_reader(stanza);
        let mut head: Option<Head> = None;
        let mut depth = 0usize;
        let mut in_error = false;
        loop {
            let (e, empty) = match reader.read_event() {
                Ok(Event::Start(e)) => (e, false),
                Ok(Event::Empty(e)) => (e, true),
                Ok(Event::End(_)) => {
                    depth = depth.saturating_sub(1);
                    in_error &= depth >= 2;
                    if depth == 0 {
                        return head;
                    }
                    continue;
                }
                Ok(Event::Eof) | Err(_) => return head,
                Ok(_) => continue,
            };
            match head.as_mut() {
                None => {
                    head = Some(Head {
                        name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                        from: attr(&e, "from"),
                        to: attr(&e, "to"),
                        kind: attr(&e, "type"),
                        id: attr(&e, "id"),
                        child: None,
                        condition: None,
                    });
                    if empty {
                        return head;
                    }
                }
                Some(h) => {
                    let name = local(&e);
                    if depth == 1 {
                        if h.child.is_none() {
                            h.child = Some(name.clone());
                        }
                        in_error = name == "error" && !empty;
                    } else if depth == 2 && in_error && name != "text" && h.condition.is_none() {
                        h.condition = Some(name);
                    }
                    let error_wanted = h.kind.as_deref() == Some("error") && h.condition.is_none();
                    if h.child.is_some() && !error_wanted {
                        return head;
                    }
                    if empty {
                        continue;
                    }
                }
            }
            depth += 1;
        }
    }

    /// Whether this is an IQ request (`get` or `set`).
    pub fn is_request(&self) -> bool {
        self.name == "iq" && matches!(self.kind.as_deref(), Some("get" | "set"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_head_of_a_request() {
        let h = Head::peek(b"<iq type='set' from='t@x/r' to='d.x' id='1'><register xmlns='urn:xmpp:iot:discovery'><str name='SN' value='1'/></register></iq>").unwrap();
        assert_eq!(
            h,
            Head {
                name: "iq".into(),
                from: Some("t@x/r".into()),
                to: Some("d.x".into()),
                kind: Some("set".into()),
                id: Some("1".into()),
                child: Some("register".into()),
                condition: None,
            }
        );
        assert!(h.is_request());
    }

    #[test]
    fn reads_the_condition_of_an_error() {
        let h = Head::peek(b"<iq type='error' from='t@x/r' id='d-1'><disowned xmlns='urn:xmpp:iot:discovery'/><error type='cancel'><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>gone</text><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>").unwrap();
        assert_eq!(h.child.as_deref(), Some("disowned"));
        assert_eq!(h.condition.as_deref(), Some("service-unavailable"));
        assert!(!h.is_request());
        let h = Head::peek(b"<presence type='error' from='t@x/r'><error type='cancel'><recipient-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>").unwrap();
        assert_eq!(h.condition.as_deref(), Some("recipient-unavailable"));
    }

    #[test]
    fn reads_empty_and_broken_stanzas() {
        let h = Head::peek(b"<presence from='t@x/r' type='unavailable'/>").unwrap();
        assert_eq!(h.kind.as_deref(), Some("unavailable"));
        assert_eq!(h.child, None);
        assert_eq!(Head::peek(b"not xml"), None);
    }
}
