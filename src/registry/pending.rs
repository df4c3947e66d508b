//! Disowns waiting for the thing's acknowledgement (3.17), with deadlines on the
//! host's clock. No timer runs here: the host asks for [`Pending::next_deadline`]
//! and calls back with the time; expired entries are taken out by
//! [`Pending::expire`]. [`Pending::of`] finds the disowns waiting for one
//! thing (a thing that registers again while its disown waits acknowledges it).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use smallvec::SmallVec;

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
    by_thing: HashMap<ThingKey, SmallVec<[PendingId; 1]>>,
}

impl Pending {
    /// Adds one.
    pub fn insert(&mut self, id: PendingId, p: PendingDisown) {
        self.by_deadline.insert((p.deadline_ms, id));
        self.by_thing.entry(p.thing.clone()).or_default().push(id);
        self.by_id.insert(id, p);
    }

    /// Takes one out.
    pub fn take(&mut self, id: PendingId) -> Option<PendingDisown> {
        let p = self.by_id.remove(&id)?;
        self.by_deadline.remove(&(p.deadline_ms, id));
        self.forget_thing(&p.thing, id);
        Some(p)
    }

    fn forget_thing(&mut self, thing: &ThingKey, id: PendingId) {
        if let Some(ids) = self.by_thing.get_mut(thing) {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                self.by_thing.remove(thing);
            }
        }
    }

    /// The disowns waiting for `thing`, oldest first.
    pub fn of(&self, thing: &ThingKey) -> SmallVec<[PendingId; 1]> {
        self.by_thing.get(thing).cloned().unwrap_or_default()
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
                self.forget_thing(&p.thing, id);
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

    /// Heap bytes held, approximately (three entries per disown plus the
    /// JIDs).
    pub fn heap_bytes(&self) -> usize {
        let per = std::mem::size_of::<(PendingId, PendingDisown)>()
            + std::mem::size_of::<(u64, PendingId)>()
            + std::mem::size_of::<(ThingKey, SmallVec<[PendingId; 1]>)>()
            + 64;
        self.by_id
            .values()
            .map(|p| per + 2 * p.thing.jid.as_str().len() + p.owner.as_str().len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::thing::NodeAddress;

    fn key(jid: &str) -> ThingKey {
        ThingKey {
            jid: BareJid::parse(jid).unwrap(),
            node: NodeAddress::default(),
        }
    }

    #[test]
    fn pending_disowns_are_found_by_thing_until_taken_or_expired() {
        let mut p = Pending::default();
        let owner = BareJid::parse("o@x").unwrap();
        for (i, (thing, deadline)) in [("t@x", 10), ("t@x", 20), ("u@x", 10)].iter().enumerate() {
            p.insert(
                PendingId(i as u64),
                PendingDisown {
                    thing: key(thing),
                    owner: owner.clone(),
                    deadline_ms: *deadline,
                },
            );
        }
        assert_eq!(p.of(&key("t@x")).as_slice(), [PendingId(0), PendingId(1)]);
        assert!(p.take(PendingId(1)).is_some());
        assert_eq!(p.of(&key("t@x")).as_slice(), [PendingId(0)]);
        let expired: Vec<PendingId> = p.expire(10).into_iter().map(|(id, _)| id).collect();
        assert_eq!(expired, [PendingId(0), PendingId(2)]);
        assert!(p.of(&key("t@x")).is_empty() && p.of(&key("u@x")).is_empty());
        assert!(p.is_empty() && p.by_thing.is_empty());
    }
}
