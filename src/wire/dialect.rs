//! The table of names that differ between dialects of the discovery protocol.
//!
//! XEP-0347 speaks `urn:xmpp:iot:discovery` with node attributes `nodeId`,
//! `sourceId`, `cacheType`. Its IEEE / Neuro-Foundation successor (what
//! IoTGateway's `ThingRegistryClient` speaks) renames the namespace
//! (`urn:nf:iot:disco:1.0`, `urn:ieee:iot:disco:1.0`, and `urn:nfi:iot:disco:1.0`
//! in the newest spec text) and the node attributes (`id`, `src`, `pt`), leaves
//! the owner out of search results, always writes `public` on `claimed`, and
//! allows tag names of 64 characters instead of 32.
//!
//! Everything the reader, the writer and the engine need to know about a dialect
//! is one [`Dialect`] value. **Adding a namespace is adding one row to
//! [`DIALECTS`]**: the reader classifies it, requests in it are parsed and
//! answered in it, disco#info advertises it, and nothing else changes.
//!
//! The namespace a reply is written in is always the request's. Notifications to
//! a thing (`claimed`, `removed`, `disowned`) are written in the dialect the
//! thing last registered or updated with, through [`Dialect::notify_in`] (the
//! engine remembers it per bare JID, in memory only).

/// Which spec a dialect belongs to: the limits and switches of
/// [`crate::EngineConfig`] that depend on the dialect are set per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// XEP-0347 as published.
    Xep0347,
    /// The IEEE / Neuro-Foundation successor spec.
    Successor,
}

/// One dialect: its namespace and the names it gives to things that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    /// The payload namespace.
    pub namespace: &'static str,
    /// The spec it belongs to.
    pub family: Family,
    /// Names of the node address attributes: node id, source id, cache type.
    pub node_attrs: [&'static str; 3],
    /// Whether `thing` elements of search results carry `owner`
    /// ([`crate::EngineConfig::hide_owner_in_xep_results`] can turn it off).
    pub owner_in_results: bool,
    /// Whether `claimed` always carries `public` (otherwise only `public='false'`).
    pub claimed_public_always: bool,
    /// The namespace notifications to a thing speaking this dialect are written
    /// in (a row of [`DIALECTS`]; itself unless clients of this namespace cannot
    /// take notifications in it).
    pub notify_in: &'static str,
}

impl Dialect {
    /// The dialect notifications to a thing speaking `self` are written in.
    pub fn notifications(&'static self) -> &'static Dialect {
        if self.notify_in == self.namespace {
            return self;
        }
        by_namespace(self.notify_in.as_bytes()).unwrap_or(self)
    }
}

/// XEP-0347 as published.
pub const XEP_0347: Dialect = Dialect {
    namespace: "urn:xmpp:iot:discovery",
    family: Family::Xep0347,
    node_attrs: ["nodeId", "sourceId", "cacheType"],
    owner_in_results: true,
    claimed_public_always: false,
    notify_in: "urn:xmpp:iot:discovery",
};

/// The Neuro-Foundation successor: what IoTGateway's client sends.
pub const NF: Dialect = Dialect {
    namespace: "urn:nf:iot:disco:1.0",
    family: Family::Successor,
    node_attrs: ["id", "src", "pt"],
    owner_in_results: false,
    claimed_public_always: true,
    notify_in: "urn:nf:iot:disco:1.0",
};

/// The IEEE successor namespace (same protocol as [`NF`]).
pub const IEEE: Dialect = Dialect {
    namespace: "urn:ieee:iot:disco:1.0",
    notify_in: "urn:ieee:iot:disco:1.0",
    ..NF
};

/// The namespace of the newest successor spec text. IoTGateway's client does not
/// handle notifications in it, so things speaking it are notified in [`NF`].
pub const NFI: Dialect = Dialect {
    namespace: "urn:nfi:iot:disco:1.0",
    ..NF
};

/// Every dialect the engine speaks, looked up by namespace. The first row is
/// the default: what a thing whose dialect is unknown is notified in. A
/// `static`, so a row has one address (the reader compares dialects by it).
pub static DIALECTS: &[Dialect] = &[XEP_0347, NF, IEEE, NFI];

/// The dialect whose namespace is `ns`, if any.
pub fn by_namespace(ns: &[u8]) -> Option<&'static Dialect> {
    DIALECTS.iter().find(|d| d.namespace.as_bytes() == ns)
}

/// The dialect of things whose dialect is unknown (XEP-0347).
pub fn default_dialect() -> &'static Dialect {
    &DIALECTS[0]
}

/// Service discovery namespaces (XEP-0030).
pub const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
/// Service discovery items namespace (XEP-0030).
pub const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
/// Stanza error conditions (RFC 6120 8.3).
pub const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
/// The stream namespaces an `<iq/>` may be qualified with (or none).
pub const STREAM_NAMESPACES: &[&str] =
    &["jabber:client", "jabber:server", "jabber:component:accept"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_found_and_notifies_in_a_row() {
        for d in DIALECTS {
            let found = by_namespace(d.namespace.as_bytes()).unwrap();
            assert_eq!(found, d);
            let n = found.notifications();
            assert!(DIALECTS.iter().any(|r| std::ptr::eq(r, n)));
            assert_eq!(n.family, d.family);
        }
        assert_eq!(
            by_namespace(b"urn:nfi:iot:disco:1.0")
                .unwrap()
                .notifications()
                .namespace,
            "urn:nf:iot:disco:1.0"
        );
        assert_eq!(default_dialect().namespace, "urn:xmpp:iot:discovery");
        assert!(by_namespace(b"urn:nf:iot:disco:2.0").is_none());
    }
}
