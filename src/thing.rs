//! What identifies a thing, and the typed view of one thing's record.
//!
//! A thing is identified by its [`ThingKey`]: the bare JID it registered from plus
//! its [`NodeAddress`] when it sits behind a concentrator (spec 3.8). Inside the
//! registry each thing also has a dense [`ThingId`], allocated and reused by the
//! registry, which is what the bitmap indexes hold; ids never leave the process.

use crate::jid::BareJid;
use crate::tag::Tag;

/// Dense internal thing id. Always below [`ThingId::LIMIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThingId(pub u32);

impl ThingId {
    /// Ids are below 2^31 (the index uses the top bit of a posting).
    pub const LIMIT: u32 = 1 << 31;
}

/// The node address of a thing behind a concentrator (spec 3.8): the triple
/// (`nodeId`, `sourceId`, `cacheType`). All `None` for a thing that is its own JID.
/// An empty attribute is the same as an absent one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeAddress {
    /// `nodeId`.
    pub node_id: Option<Box<str>>,
    /// `sourceId`.
    pub source_id: Option<Box<str>>,
    /// `cacheType`.
    pub cache_type: Option<Box<str>>,
}

/// The longest node attribute we accept, in characters.
pub const MAX_NODE_ATTR_CHARS: usize = 1024;

impl NodeAddress {
    /// A node address from optional attribute values; empty strings count as absent.
    /// Fails when an attribute is longer than [`MAX_NODE_ATTR_CHARS`] or holds a
    /// control character.
    pub fn new(
        node_id: Option<&str>,
        source_id: Option<&str>,
        cache_type: Option<&str>,
    ) -> Result<Self, String> {
        fn one(name: &str, v: Option<&str>) -> Result<Option<Box<str>>, String> {
            match v {
                None | Some("") => Ok(None),
                Some(v) => {
                    if v.chars().count() > MAX_NODE_ATTR_CHARS {
                        return Err(format!(
                            "{name} is longer than {MAX_NODE_ATTR_CHARS} characters"
                        ));
                    }
                    if v.chars()
                        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
                    {
                        return Err(format!("{name} contains a control character"));
                    }
                    Ok(Some(v.into()))
                }
            }
        }
        Ok(NodeAddress {
            node_id: one("nodeId", node_id)?,
            source_id: one("sourceId", source_id)?,
            cache_type: one("cacheType", cache_type)?,
        })
    }

    /// A node address with just a `nodeId` and `sourceId` (the common case).
    pub fn node(node_id: &str, source_id: Option<&str>) -> Self {
        NodeAddress::new(Some(node_id), source_id, None).unwrap_or_default()
    }

    /// Whether no attribute is set (the thing is its JID).
    pub fn is_empty(&self) -> bool {
        self.node_id.is_none() && self.source_id.is_none() && self.cache_type.is_none()
    }
}

/// What identifies a thing: bare JID plus node address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThingKey {
    /// The bare JID the thing (or its concentrator) registered from.
    pub jid: BareJid,
    /// The node address behind that JID, if any.
    pub node: NodeAddress,
}

impl ThingKey {
    /// A key for a thing that is its own JID.
    pub fn of(jid: BareJid) -> Self {
        ThingKey {
            jid,
            node: NodeAddress::default(),
        }
    }
}

/// A full copy of one thing's record, as the store persists it and as export and
/// inspection see it. `tags` holds every tag, `KEY` included, in registration order.
#[derive(Debug, Clone, PartialEq)]
pub struct ThingRecord {
    /// Identity.
    pub key: ThingKey,
    /// The resource of the last full JID the thing used (where notifications go).
    pub last_resource: Option<Box<str>>,
    /// The owner's bare JID once claimed; a self-owned thing is its own owner.
    pub owner: Option<BareJid>,
    /// Whether a claimed thing is public (searchable).
    pub public: bool,
    /// The tags, in the order they were registered (updates keep positions and
    /// append new names).
    pub tags: Vec<Tag>,
    /// What is left of `KEY` once the registry deleted it at the claim: a salted
    /// digest of the claimed tag set, for the owner's idempotent re-claim
    /// ([`crate::digest`]). `None` while `KEY` is kept.
    pub claim_digest: Option<crate::digest::ClaimDigest>,
}

impl ThingRecord {
    /// Whether the thing is claimed.
    pub fn is_claimed(&self) -> bool {
        self.owner.is_some()
    }
}
