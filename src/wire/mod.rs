//! The XMPP wire format of the discovery protocol: stanza bytes to typed
//! requests ([`request`]), typed outcomes to stanza bytes ([`write`]).
//!
//! [`reader`] is a strict streaming reader over quick-xml (restricted XML of
//! RFC 6120: no DTDs, entities, comments or processing instructions; a depth
//! limit); [`request`] pulls one `<iq/>` out of it into an
//! [`Incoming`](request::Incoming) without building a tree; [`write`] appends
//! compact stanzas to a byte buffer. [`dialect`] is the table of names that
//! differ between the XEP-0347 namespace and its successors
//! (`urn:nf:iot:disco:1.0`, `urn:ieee:iot:disco:1.0`, `urn:nfi:iot:disco:1.0`):
//! adding a namespace is one row of [`dialect::DIALECTS`], not a second parser.
//! Nothing here touches the registry: the [`crate::engine`] drives both sides.

pub mod dialect;
mod operators;
pub mod reader;
pub mod request;
pub mod write;

pub use dialect::{Dialect, Family};
pub use request::{Incoming, IqType, Limits, Refusal, Request, TagNameLimits};
pub use write::StanzaError;
