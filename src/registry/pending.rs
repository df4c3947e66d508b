//! Disowns waiting for the thing's acknowledgement (3.17), with deadlines on the
//! host's clock. No timer runs here: the host asks for [`Pending::next_deadline`]
//! and calls back with the time; expired entries are taken out by
//! [`Pending::expire`].

use std::collections::{BTreeMap, BTreeSet};

use crate::jid::BareJid;
use crate::registry::types::PendingId;
use crate::thing::ThingKey;

/// One waiting disown.
#[derive(Debug, Clone)]
pub struct PendingDisown {
    /// The thing.
    pub thing: ThingKey,
    /// The owner who asked.
    pub owner: BareJid,
    /// When it fails.
    pub deadline_ms: u64,
}

/// All waiting disowns.
#[derive(Debug, Default)]
pub struct Pending {
    by_id: BTreeMap<PendingId, PendingDisown>,
    by_deadline: BTreeSet<(u64, PendingId)>,
}

impl Pending {
    /// Adds one.
    pub fn insert(&mut self, id: PendingId, p: PendingDisown) {
        self.by_deadline.insert((p.deadline_ms, id));
        self.by_id.insert(id, p);
    }

    /// Takes one out.
    pub fn take(&mut self, id: PendingId) -> Option<PendingDisown> {
        let p = self.by_id.remove(&id)?;
        self.by_deadline.remove(&(p.deadline_ms, id));
        Some(p)
    }

    /// Takes out every entry whose deadline is at or before `now_ms`.
    pub fn expire(&mut self, now_ms: u64) -> Vec<(PendingId, PendingDisown)> {
        let mut out = Vec::new();
        while let Some(&(deadline, id)) = self.by_deadline.first() {
            if deadline > now_ms {
                break;
            }
            self.by_deadline.pop_first();
            if let Some(p) = self.by_id.remove(&id) {
                out.push((id, p));
            }
        }
        out
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        self.by_deadline.first().map(|(d, _)| *d)
    }

    /// How many are waiting.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}
