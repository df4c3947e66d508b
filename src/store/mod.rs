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
//! Implementations: [`memory::MemoryStore`] (tests, ephemeral use, restart
//! simulation). The sled store of the next issue implements the same trait.

pub mod memory;

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

/// Where records persist.
pub trait Store: Send + Sync {
    /// Every stored record, in any order.
    fn load(&self) -> Result<Vec<ThingRecord>, StoreError>;
    /// Inserts or replaces the record of `record.key`; durable when it returns
    /// (as far as the implementation's durability mode promises).
    fn put(&mut self, record: &ThingRecord) -> Result<(), StoreError>;
    /// Deletes the record of `key` (no error if absent).
    fn delete(&mut self, key: &ThingKey) -> Result<(), StoreError>;
}
