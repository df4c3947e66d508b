//! The typed requests the registry takes and the outcomes it returns.
//!
//! Outcomes are data: the reply to the requester plus any notifications the host
//! must send to things. Nothing here is sent by the registry itself.

use std::fmt;

use crate::jid::{BareJid, Jid};
use crate::store::StoreError;
use crate::tag::Tag;
use crate::thing::{NodeAddress, ThingKey};

/// `register` (3.6, 3.7, 3.8), sent by a thing.
#[derive(Debug, Clone, PartialEq)]
pub struct Register {
    /// Node address when the thing sits behind a concentrator.
    pub node: NodeAddress,
    /// The thing's meta tags (replacing all earlier ones).
    pub tags: Vec<Tag>,
    /// `selfOwned='true'`: public and claimed (by itself) at once.
    pub self_owned: bool,
}

/// `mine` (3.9), sent by a would-be owner.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// Exactly the tags the thing registered (order ignored).
    pub tags: Vec<Tag>,
    /// Whether the claimed thing becomes public (default true).
    pub public: bool,
}

/// `update` (3.13 by the thing, 3.14 by the owner with `jid`).
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    /// The thing to update when sent by its owner; `None` (or the sender's own
    /// bare JID) means the sender updates itself.
    pub jid: Option<BareJid>,
    /// Node address.
    pub node: NodeAddress,
    /// Tags to overwrite; an empty string value deletes that tag.
    pub tags: Vec<Tag>,
}

/// Outcome of `register`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterOutcome {
    /// Stored; the reply is empty.
    Registered,
    /// The thing is already claimed: nothing changed; the reply is `claimed`.
    AlreadyClaimed {
        /// The owner's bare JID.
        owner: BareJid,
        /// Whether the thing is public.
        public: bool,
    },
}

/// Outcome of a successful `mine`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The thing now owned (bare JID + node address for the reply).
    pub thing: ThingKey,
    /// Whether it is public.
    pub public: bool,
    /// The `claimed` notification for the thing.
    pub notification: Notification,
}

/// Outcome of `update`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Tags changed; the reply is empty.
    Updated,
    /// The thing exists but is not claimed: nothing changed; the reply is
    /// `disowned` (3.13).
    Disowned,
}

/// Outcome of a successful `remove`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// The `removed` notification for the thing.
    pub notification: Notification,
}

/// Identifies a pending disown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PendingId(pub u64);

/// A disown that waits for the thing's acknowledgement (3.17).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisownStarted {
    /// Pass this back to [`crate::Registry::resolve_disown`].
    pub pending: PendingId,
    /// When it fails if not acknowledged (host clock, ms).
    pub deadline_ms: u64,
    /// The `disowned` notification for the thing.
    pub notification: Notification,
}

/// How a pending disown ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisownResolution {
    /// Which one.
    pub pending: PendingId,
    /// Who asked.
    pub owner: BareJid,
    /// `Ok` = the thing is unclaimed now (empty reply); otherwise the error reply:
    /// `NotAllowed` when the thing refused, was silent or changed hands, `Storage`
    /// when the store failed to record the disown.
    pub result: Result<(), RegistryError>,
}

/// A message the host must send to a thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The thing's last known full JID (bare if never known).
    pub to: Jid,
    /// The node address, for things behind concentrators.
    pub node: NodeAddress,
    /// What happened.
    pub kind: NotificationKind,
}

/// What a notification says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationKind {
    /// `claimed` (3.9): the owner, and whether the thing is public.
    Claimed {
        /// Owner's bare JID.
        owner: BareJid,
        /// Public or private.
        public: bool,
    },
    /// `removed` (3.10).
    Removed,
    /// `disowned` (3.17): acknowledge to complete the disown.
    Disowned,
}

/// One thing in a search result.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundThing {
    /// Owner's bare JID.
    pub owner: BareJid,
    /// The thing's bare JID and node address.
    pub key: ThingKey,
    /// Its tags in record order, never `KEY`.
    pub tags: Vec<Tag>,
}

/// A search result page.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResult {
    /// The things, in registry order.
    pub things: Vec<FoundThing>,
    /// Whether more matches follow (use a larger `offset`).
    pub more: bool,
}

/// Why an operation failed. Each kind maps to one stanza error on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryError {
    /// The request is malformed or breaks a tag rule (`bad-request`, modify); the
    /// text says what was wrong.
    BadRequest(String),
    /// No such thing, or not yours (`item-not-found`, cancel). Says nothing more,
    /// on purpose.
    ItemNotFound,
    /// Disown refused: thing offline, refused or silent (`not-allowed`, cancel).
    NotAllowed,
    /// A registry-wide cap was reached (`resource-constraint`, wait).
    ResourceConstraint(String),
    /// The store failed; nothing changed (`internal-server-error`, wait).
    Storage(StoreError),
    /// Something else went wrong inside the registry (`internal-server-error`).
    Internal(String),
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::BadRequest(m) => write!(f, "bad request: {m}"),
            RegistryError::ItemNotFound => write!(f, "item not found"),
            RegistryError::NotAllowed => write!(f, "not allowed"),
            RegistryError::ResourceConstraint(m) => write!(f, "resource constraint: {m}"),
            RegistryError::Storage(e) => write!(f, "{e}"),
            RegistryError::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for RegistryError {}

impl From<StoreError> for RegistryError {
    fn from(e: StoreError) -> Self {
        RegistryError::Storage(e)
    }
}

impl From<crate::tag::TagError> for RegistryError {
    fn from(e: crate::tag::TagError) -> Self {
        RegistryError::BadRequest(e.to_string())
    }
}
