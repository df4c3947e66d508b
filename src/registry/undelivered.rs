//! Notifications things have not received yet, by bare JID, bounded.
//!
//! At most one entry per thing (bare JID + node address): a newer notification
//! replaces an older one (the thing needs to learn the latest state, which is
//! re-read from the records when it is delivered). The table holds at most
//! `cap` entries; at the cap the oldest entry is forgotten (and the caller
//! deletes it from the store). Invariant: `by_jid` and `order` hold the same
//! entries.

use std::collections::{BTreeMap, HashMap};

use smallvec::SmallVec;

use crate::jid::BareJid;
use crate::store::{Undelivered, UndeliveredKind};
use crate::thing::{NodeAddress, ThingKey};

#[derive(Debug, Clone)]
struct Entry {
    node: NodeAddress,
    kind: UndeliveredKind,
    attempts: u8,
    seq: u64,
}

/// The table (see the module documentation).
#[derive(Debug, Default)]
pub struct UndeliveredTable {
    by_jid: HashMap<BareJid, SmallVec<[Entry; 1]>>,
    order: BTreeMap<u64, ThingKey>,
    next: u64,
}

impl UndeliveredTable {
    /// Keeps `u`, replacing the thing's previous entry. Returns the thing whose
    /// entry was forgotten to stay within `cap`, if any.
    pub fn put(&mut self, u: Undelivered, cap: usize) -> Option<ThingKey> {
        self.remove(&u.thing);
        if cap == 0 {
            return Some(u.thing);
        }
        let mut evicted = None;
        if self.order.len() >= cap {
            if let Some((_, oldest)) = self.order.first_key_value() {
                let oldest = oldest.clone();
                self.remove(&oldest);
                evicted = Some(oldest);
            }
        }
        let seq = self.next;
        self.next += 1;
        self.order.insert(seq, u.thing.clone());
        self.by_jid.entry(u.thing.jid).or_default().push(Entry {
            node: u.thing.node,
            kind: u.kind,
            attempts: u.attempts,
            seq,
        });
        evicted
    }

    /// Forgets the entry of `thing`, if any.
    pub fn remove(&mut self, thing: &ThingKey) {
        let Some(list) = self.by_jid.get_mut(&thing.jid) else {
            return;
        };
        if let Some(i) = list.iter().position(|e| e.node == thing.node) {
            let e = list.remove(i);
            self.order.remove(&e.seq);
        }
        if list.is_empty() {
            self.by_jid.remove(&thing.jid);
        }
    }

    /// Whether anything waits for `jid`.
    pub fn has(&self, jid: &BareJid) -> bool {
        self.by_jid.contains_key(jid)
    }

    /// Takes every entry of `jid`, oldest first.
    pub fn take(&mut self, jid: &BareJid) -> Vec<Undelivered> {
        let Some(mut list) = self.by_jid.remove(jid) else {
            return Vec::new();
        };
        list.sort_by_key(|e| e.seq);
        list.into_iter()
            .map(|e| {
                self.order.remove(&e.seq);
                Undelivered {
                    thing: ThingKey {
                        jid: jid.clone(),
                        node: e.node,
                    },
                    kind: e.kind,
                    attempts: e.attempts,
                }
            })
            .collect()
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Heap bytes held, approximately.
    pub fn heap_bytes(&self) -> usize {
        let per_entry = std::mem::size_of::<Entry>()
            + std::mem::size_of::<(u64, ThingKey)>()
            + 3 * std::mem::size_of::<usize>();
        let keys: usize = self
            .by_jid
            .keys()
            .map(|j| 2 * j.as_str().len() + 2 * std::mem::size_of::<BareJid>())
            .sum();
        self.order.len() * per_entry + keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(jid: &str, node: Option<&str>, kind: UndeliveredKind) -> Undelivered {
        Undelivered {
            thing: ThingKey {
                jid: BareJid::parse(jid).unwrap(),
                node: match node {
                    Some(n) => NodeAddress::node(n, None),
                    None => NodeAddress::default(),
                },
            },
            kind,
            attempts: 1,
        }
    }

    #[test]
    fn one_entry_per_thing_bounded_oldest_out() {
        let mut t = UndeliveredTable::default();
        assert_eq!(t.put(u("a@x", None, UndeliveredKind::Claimed), 2), None);
        assert_eq!(t.put(u("a@x", None, UndeliveredKind::Removed), 2), None);
        assert_eq!(t.len(), 1, "a newer notification replaces the older");
        assert_eq!(
            t.put(u("a@x", Some("n1"), UndeliveredKind::Claimed), 2),
            None
        );
        let out = t.put(u("b@x", None, UndeliveredKind::Claimed), 2);
        assert_eq!(out, Some(u("a@x", None, UndeliveredKind::Claimed).thing));
        assert_eq!(t.len(), 2);
        let a = t.take(&BareJid::parse("a@x").unwrap());
        assert_eq!(a, vec![u("a@x", Some("n1"), UndeliveredKind::Claimed)]);
        assert!(!t.has(&BareJid::parse("a@x").unwrap()));
        assert!(t.has(&BareJid::parse("b@x").unwrap()));
        assert!(t.heap_bytes() > 0);
        t.remove(&u("b@x", None, UndeliveredKind::Claimed).thing);
        assert!(t.is_empty());
        assert!(t.put(u("c@x", None, UndeliveredKind::Claimed), 0).is_some());
        assert!(t.is_empty());
    }
}
