//! What the registry knows of things' presence, as told by the host.
//!
//! For each bare JID the set of resources currently available. A JID the host
//! never mentioned is *unknown*, not offline: a disown toward it is still tried
//! (and fails on time-out if nobody answers). A JID whose last resource went
//! unavailable is *offline*, and a disown toward it fails at once (3.17). The
//! table holds at most `cap` JIDs; at the cap, offline entries are dropped first,
//! and a new JID is not tracked when only online entries remain.

use std::collections::HashMap;

use smallvec::SmallVec;

use crate::jid::{BareJid, Jid};

/// Presence of one bare JID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// At least one resource is available.
    Online,
    /// Seen, and no resource is available now.
    Offline,
    /// Never reported.
    Unknown,
}

/// Bare JID -> available resources (empty = offline).
#[derive(Debug, Default)]
pub struct PresenceTable {
    online: HashMap<BareJid, SmallVec<[Box<str>; 1]>>,
}

impl PresenceTable {
    /// Records that `jid` became available or unavailable. A bare JID (no
    /// resource) going unavailable takes all its resources with it.
    pub fn set(&mut self, jid: &Jid, available: bool, cap: usize) {
        if !self.online.contains_key(jid.bare()) && self.online.len() >= cap {
            self.online.retain(|_, r| !r.is_empty());
            if self.online.len() >= cap {
                return;
            }
        }
        let entry = self.online.entry(jid.bare().clone()).or_default();
        match (jid.resource(), available) {
            (Some(r), true) => {
                if !entry.iter().any(|x| &**x == r) {
                    entry.push(r.into());
                }
            }
            (Some(r), false) => entry.retain(|x| &**x != r),
            // A bare JID is available: an empty resource stands for it.
            (None, true) => {
                if !entry.iter().any(|x| x.is_empty()) {
                    entry.push("".into());
                }
            }
            (None, false) => entry.clear(),
        }
    }

    /// Forgets everything known about a bare JID's presence: it is unknown
    /// again (an unsubscribed thing stops telling us, so what we knew goes stale).
    pub fn forget(&mut self, jid: &BareJid) {
        self.online.remove(jid);
    }

    /// Presence of a bare JID.
    pub fn get(&self, jid: &BareJid) -> Presence {
        match self.online.get(jid) {
            None => Presence::Unknown,
            Some(r) if r.is_empty() => Presence::Offline,
            Some(_) => Presence::Online,
        }
    }

    /// Where to reach `jid`: `preferred` (the last resource the thing used) when
    /// it is online or presence is unknown, else any available resource; when the
    /// JID is offline, still `preferred`, the last known full JID (issue 3: the
    /// host decides what to do with a stanza to an offline thing), or the bare
    /// JID if no resource was ever known.
    pub fn route(&self, jid: &BareJid, preferred: Option<&str>) -> Jid {
        match self.online.get(jid) {
            None => Jid::new(jid.clone(), preferred),
            Some(r) => {
                if let Some(p) = preferred {
                    if r.iter().any(|x| &**x == p) {
                        return Jid::new(jid.clone(), Some(p));
                    }
                }
                Jid::new(jid.clone(), r.first().map(|x| &**x).or(preferred))
            }
        }
    }

    /// How many JIDs are tracked.
    pub fn len(&self) -> usize {
        self.online.len()
    }

    /// Whether none is tracked.
    pub fn is_empty(&self) -> bool {
        self.online.is_empty()
    }

    /// Heap bytes held, approximately (entries, JIDs, resources).
    pub fn heap_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(BareJid, SmallVec<[Box<str>; 1]>)>() + 8;
        self.online.capacity() * entry
            + self
                .online
                .iter()
                .map(|(j, r)| j.as_str().len() + r.iter().map(|x| x.len() + 16).sum::<usize>())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_offline_unknown() {
        let mut t = PresenceTable::default();
        let a = Jid::parse("a@x/r1").unwrap();
        assert_eq!(t.get(a.bare()), Presence::Unknown);
        t.set(&a, true, 10);
        assert_eq!(t.get(a.bare()), Presence::Online);
        assert_eq!(t.route(a.bare(), Some("zz")).to_string(), "a@x/r1");
        t.set(&a, false, 10);
        assert_eq!(t.get(a.bare()), Presence::Offline);
        t.set(&Jid::parse("b@x/r").unwrap(), false, 1);
        assert_eq!(t.len(), 1, "offline entry evicted at the cap");
    }
}
