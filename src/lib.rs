//! # iotdisco
//!
//! An embeddable Thing Registry for XEP-0347 *Internet of Things - Discovery*
//! (`urn:xmpp:iot:discovery`): things register their meta tags, owners claim
//! them, anyone searches the public claimed ones.
//!
//! The core is storage-agnostic and sans-I/O. [`Registry`] takes typed requests
//! (with the sender's JID and, where time matters, the host's clock) and returns
//! typed outcomes: the reply and the notifications the host must send. Tags are
//! indexed in roaring bitmaps per value, so every search operator is a bitmap or a
//! per-candidate check and a search is their intersection ([`query::plan`]).
//!
//! ```
//! use iotdisco::{Registry, Config, Jid, Tag, Register, Claim, Search};
//! use iotdisco::query::Operator;
//! use iotdisco::tag::TagName;
//!
//! let reg = Registry::new(Config::default());
//! let thing = Jid::parse("thing@example.org/imc").unwrap();
//! let owner = Jid::parse("owner@example.org/phone").unwrap();
//! let tags = vec![Tag::str("SN", "394872348732948723").unwrap(), Tag::num("V", 1.2).unwrap()];
//! reg.register(&thing, Register { node: Default::default(), tags: tags.clone(), self_owned: false }).unwrap();
//! let claimed = reg.claim(&owner, Claim { tags, public: true }).unwrap();
//! assert_eq!(claimed.thing.jid.as_str(), "thing@example.org");
//! let found = reg.search(&Search::new(vec![
//!     Operator::StrEq(TagName::new("SN").unwrap(), "394872348732948723".into()),
//! ])).unwrap();
//! assert_eq!(found.things.len(), 1);
//! ```

pub mod config;
pub mod datagen;
pub mod digest;
/// Zero configuration (spec 3.3, 3.5): DNS-SD records, TXT data, DHCP options.
pub mod discovery;
pub mod engine;
pub mod index;
pub mod jid;
pub mod options;
pub mod query;
pub mod records;
pub mod registry;
pub mod store;
mod sync;
pub mod tag;
pub mod thing;
pub mod throttle;
pub mod uri;
pub mod wire;

pub use config::Config;
pub use digest::ClaimDigest;
pub use engine::{Engine, EngineConfig, Foreign, Handled, Outbox};
pub use jid::{BareJid, Jid};
pub use query::Search;
pub use registry::{
    Claim, Claimed, DisownResolution, DisownStarted, FoundRef, FoundThing, Notification,
    NotificationKind, PageView, PendingId, Register, RegisterOutcome, Registry, RegistryError,
    Removed, SearchResult, Stats, Update, UpdateOutcome,
};
pub use tag::{Tag, TagName, TagValue};
pub use thing::{NodeAddress, ThingKey, ThingRecord};
