//! The table of names that differ between dialects of the discovery protocol.
//!
//! XEP-0347 speaks `urn:xmpp:iot:discovery` with node attributes `nodeId`,
//! `sourceId`, `cacheType`. Its IEEE / Neuro-Foundation successor renames the
//! namespace and the node attributes (`id`, `src`, `pt`) and leaves the owner out
//! of search results. Everything the reader and writer need to know about a
//! dialect is one [`Dialect`] value; adding a dialect is adding a row to
//! [`DIALECTS`], not copying the parser.

/// One dialect: its namespace and the names it gives to things that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    /// The payload namespace.
    pub namespace: &'static str,
    /// Names of the node address attributes: node id, source id, cache type.
    pub node_attrs: [&'static str; 3],
    /// Whether `thing` elements of search results carry `owner`.
    pub owner_in_results: bool,
    /// Whether `claimed` always carries `public` (otherwise only `public='false'`).
    pub claimed_public_always: bool,
}

/// XEP-0347 as published.
pub const XEP_0347: Dialect = Dialect {
    namespace: "urn:xmpp:iot:discovery",
    node_attrs: ["nodeId", "sourceId", "cacheType"],
    owner_in_results: true,
    claimed_public_always: false,
};

/// Every dialect the engine speaks, looked up by namespace.
pub const DIALECTS: &[Dialect] = &[XEP_0347];

/// The dialect whose namespace is `ns`, if any.
pub fn by_namespace(ns: &[u8]) -> Option<&'static Dialect> {
    DIALECTS.iter().find(|d| d.namespace.as_bytes() == ns)
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
