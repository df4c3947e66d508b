//! An in-memory [`Store`]: a sorted map of records. Clones share the same map, so
//! a test can hand one clone to a registry, drop the registry, and build a second
//! registry from another clone to simulate a restart. Writes can be made to fail
//! on demand to test that a failed write changes nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Store, StoreError, Undelivered};
use crate::thing::{ThingKey, ThingRecord};

#[derive(Debug, Default)]
struct Inner {
    records: BTreeMap<ThingKey, ThingRecord>,
    undelivered: BTreeMap<ThingKey, Undelivered>,
    fail_writes: Option<String>,
}

/// Records in a shared `BTreeMap`.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many records are stored.
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// Whether no record is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of one stored record.
    pub fn get(&self, key: &ThingKey) -> Option<ThingRecord> {
        self.lock().records.get(key).cloned()
    }

    /// From now on every write fails with `message` (`None` heals the store).
    pub fn fail_writes(&self, message: Option<&str>) {
        self.lock().fail_writes = message.map(str::to_string);
    }
}

impl Store for MemoryStore {
    fn load(&self) -> Result<Vec<ThingRecord>, StoreError> {
        Ok(self.lock().records.values().cloned().collect())
    }

    fn put(&self, record: &ThingRecord) -> Result<(), StoreError> {
        let mut g = self.lock();
        if let Some(msg) = &g.fail_writes {
            return Err(StoreError(msg.clone()));
        }
        g.records.insert(record.key.clone(), record.clone());
        Ok(())
    }

    fn delete(&self, key: &ThingKey) -> Result<(), StoreError> {
        let mut g = self.lock();
        if let Some(msg) = &g.fail_writes {
            return Err(StoreError(msg.clone()));
        }
        g.records.remove(key);
        Ok(())
    }

    fn load_undelivered(&self) -> Result<Vec<Undelivered>, StoreError> {
        Ok(self.lock().undelivered.values().cloned().collect())
    }

    fn put_undelivered(&self, u: &Undelivered) -> Result<(), StoreError> {
        let mut g = self.lock();
        if let Some(msg) = &g.fail_writes {
            return Err(StoreError(msg.clone()));
        }
        g.undelivered.insert(u.thing.clone(), u.clone());
        Ok(())
    }

    fn delete_undelivered(&self, thing: &ThingKey) -> Result<(), StoreError> {
        let mut g = self.lock();
        if let Some(msg) = &g.fail_writes {
            return Err(StoreError(msg.clone()));
        }
        g.undelivered.remove(thing);
        Ok(())
    }
}
