//! Persistence behind a small trait, so the index and the protocol never know
//! where records live.
//!
//! A [`Store`] holds one [`ThingRecord`] per [`ThingKey`]. The registry calls
//! [`Store::put`] / [`Store::delete`] with the new state of a thing BEFORE it
//! changes its in-memory records and indexes, and only acknowledges the operation
//! once the store returned `Ok`: a store error leaves memory unchanged and becomes
//! an error reply. On start the registry reads everything back with
//! [`Store::load`] and rebuilds its indexes from it; indexes are never persisted.
//!
//! Durability is split in two calls: [`Store::put`] / [`Store::delete`] run under
//! the registry's write lock (so the store sees changes in the order memory does)
//! and may leave the change in a buffer; [`Store::sync`] runs after the lock is
//! released and returns once the change is as durable as the store promises, and
//! only then is the operation acknowledged. Concurrent writers thus share one
//! disk flush, and searches never wait for the disk.
//!
//! Besides records, a store keeps the [`Undelivered`] notifications: a
//! `claimed` or `removed` a thing did not receive (offline, error, no answer),
//! delivered again when the thing is next seen, also after a restart.
//!
//! Implementations: [`memory::MemoryStore`] (tests, ephemeral use, restart
//! simulation) and [`sled::SledStore`] (the embedded default, on disk).
//! [`record`] is the on-disk format, [`export`] the JSON-lines form of a whole
//! registry.

pub mod export;
pub mod memory;
pub mod record;
pub mod sled;

use std::fmt;

use crate::thing::{ThingKey, ThingRecord};

/// A storage failure, with a message naming what failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storage error: {}", self.0)
    }
}

impl std::error::Error for StoreError {}

/// What an undelivered notification said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UndeliveredKind {
    /// `claimed` (3.9): re-sent with the thing's owner and public flag as they
    /// are when it is delivered.
    Claimed,
    /// `removed` (3.10): re-sent only if the thing is still absent then.
    Removed,
}

/// A notification a thing has not received yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undelivered {
    /// The thing (bare JID and node address).
    pub thing: ThingKey,
    /// What to tell it.
    pub kind: UndeliveredKind,
    /// How many times it was sent without an answer (0: never sent, the thing
    /// was offline).
    pub attempts: u8,
}

/// Where records persist. Implementations are shared between threads: every
/// method takes `&self`.
pub trait Store: Send + Sync {
    /// Every stored record, in any order; a damaged record is an error naming
    /// its key.
    fn load(&self) -> Result<Vec<ThingRecord>, StoreError>;
    /// Hands every stored record to `f`, in any order, without collecting them
    /// (start-up of large registries); stops at the first error.
    fn load_each(
        &self,
        f: &mut dyn FnMut(ThingRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.load()?.into_iter().try_for_each(f)
    }
    /// Inserts or replaces the record of `record.key` (durable after the next
    /// [`Store::sync`]).
    fn put(&self, record: &ThingRecord) -> Result<(), StoreError>;
    /// Deletes the record of `key` (no error if absent).
    fn delete(&self, key: &ThingKey) -> Result<(), StoreError>;
    /// Every stored undelivered notification (at most one per thing).
    fn load_undelivered(&self) -> Result<Vec<Undelivered>, StoreError>;
    /// Inserts or replaces the undelivered notification of `u.thing` (durable
    /// after the next [`Store::sync`]).
    fn put_undelivered(&self, u: &Undelivered) -> Result<(), StoreError>;
    /// Deletes the undelivered notification of `thing` (no error if absent).
    fn delete_undelivered(&self, thing: &ThingKey) -> Result<(), StoreError>;
    /// Makes every change so far as durable as the store's mode promises; the
    /// registry calls it before acknowledging a write.
    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Forces every change so far to disk whatever the mode (shutdown, after an
    /// import).
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
