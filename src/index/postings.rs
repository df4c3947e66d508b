//! A sorted value dictionary whose entries point at the things holding the value.
//!
//! [`ValueMap`] keeps values in a `BTreeMap` (so ranges and prefixes are walks over
//! sorted keys) and stores each value's posting list in 4 bytes: a value held by
//! one thing stores that thing's id directly (unique values such as serial numbers
//! or coordinates need no bitmap); a value held by several things stores the index
//! of a roaring bitmap in a slab. Thing ids are below 2^31, so the top bit tells the
//! two apart.
//!
//! Invariant: every key maps to a non-empty posting list; removing the last thing
//! removes the key.

use std::collections::BTreeMap;
use std::ops::Bound;

use roaring::RoaringBitmap;

const MANY: u32 = 1 << 31;
/// From this many keys on, inserts use the entry API (see `ValueMap::insert`).
const BIG_MAP: usize = 1 << 16;

/// The things holding one value.
#[derive(Debug, Clone, Copy)]
pub enum Postings<'a> {
    /// Exactly one thing.
    One(u32),
    /// Two or more things.
    Many(&'a RoaringBitmap),
}

impl Postings<'_> {
    /// How many things.
    pub fn len(&self) -> u64 {
        match self {
            Postings::One(_) => 1,
            Postings::Many(b) => b.len(),
        }
    }

    /// Never empty (kept for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Adds these things to a bitmap.
    pub fn add_to(&self, out: &mut RoaringBitmap) {
        match self {
            Postings::One(id) => {
                out.insert(*id);
            }
            Postings::Many(b) => *out |= *b,
        }
    }

    /// As an owned bitmap.
    pub fn to_bitmap(&self) -> RoaringBitmap {
        match self {
            Postings::One(id) => {
                let mut b = RoaringBitmap::new();
                b.insert(*id);
                b
            }
            Postings::Many(b) => (*b).clone(),
        }
    }
}

/// Sorted value -> posting list.
#[derive(Debug)]
pub struct ValueMap<K: Ord> {
    map: BTreeMap<K, u32>,
    slab: Vec<RoaringBitmap>,
    free: Vec<u32>,
}

impl<K: Ord> Default for ValueMap<K> {
    fn default() -> Self {
        ValueMap {
            map: BTreeMap::new(),
            slab: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<K: Ord> ValueMap<K> {
    fn view(&self, p: u32) -> Postings<'_> {
        if p & MANY == 0 {
            Postings::One(p)
        } else {
            Postings::Many(&self.slab[(p & !MANY) as usize])
        }
    }

    fn alloc(&mut self, b: RoaringBitmap) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.slab[i as usize] = b;
                i | MANY
            }
            None => {
                self.slab.push(b);
                (self.slab.len() as u32 - 1) | MANY
            }
        }
    }

    /// Records that thing `id` holds `key`. The key is only cloned when new.
    pub fn insert<Q>(&mut self, key: &Q, id: u32)
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized + ToOwnedKey<K>,
    {
        debug_assert!(id < MANY);
        // Big dictionaries (serial numbers, coordinates) mostly get new keys: one
        // B-tree descent with an owned key beats probing first and inserting after.
        if self.map.len() >= BIG_MAP {
            let slot = match self.map.entry(key.to_owned_key()) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(id);
                    return;
                }
                std::collections::btree_map::Entry::Occupied(o) => *o.get(),
            };
            self.add_to_existing(key, slot, id);
            return;
        }
        match self.map.get(key) {
            None => {
                self.map.insert(key.to_owned_key(), id);
            }
            Some(&p0) => self.add_to_existing(key, p0, id),
        }
    }

    fn add_to_existing<Q>(&mut self, key: &Q, p0: u32, id: u32)
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        if p0 & MANY != 0 {
            self.slab[(p0 & !MANY) as usize].insert(id);
        } else if p0 != id {
            let mut b = RoaringBitmap::new();
            b.insert(p0);
            b.insert(id);
            let slot = self.alloc(b);
            if let Some(p) = self.map.get_mut(key) {
                *p = slot;
            }
        }
    }

    /// Records that thing `id` no longer holds `key`.
    pub fn remove<Q>(&mut self, key: &Q, id: u32)
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let Some(p) = self.map.get_mut(key) else {
            return;
        };
        let p0 = *p;
        if p0 & MANY == 0 {
            if p0 == id {
                self.map.remove(key);
            }
            return;
        }
        let i = (p0 & !MANY) as usize;
        let b = &mut self.slab[i];
        b.remove(id);
        if b.len() == 1 {
            let last = b.min().unwrap_or(0);
            *p = last;
            self.slab[i] = RoaringBitmap::new();
            self.free.push(i as u32);
        }
    }

    /// The things holding exactly `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<Postings<'_>>
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.map.get(key).map(|&p| self.view(p))
    }

    /// Keys in a range, ascending, with their postings. Bounds that describe an
    /// empty range (start after end) yield nothing instead of panicking.
    pub fn range<'a, Q>(
        &'a self,
        lo: Bound<&'a Q>,
        hi: Bound<&'a Q>,
    ) -> impl Iterator<Item = (&'a K, Postings<'a>)> + 'a
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let empty = match (lo, hi) {
            (Bound::Included(a), Bound::Included(b)) => a > b,
            (Bound::Included(a), Bound::Excluded(b))
            | (Bound::Excluded(a), Bound::Included(b))
            | (Bound::Excluded(a), Bound::Excluded(b)) => a >= b,
            _ => false,
        };
        let iter = (!empty).then(|| self.map.range::<Q, _>((lo, hi)));
        iter.into_iter()
            .flatten()
            .map(move |(k, &p)| (k, self.view(p)))
    }

    /// The smallest and largest value.
    pub fn bounds(&self) -> Option<(&K, &K)> {
        Some((self.map.first_key_value()?.0, self.map.last_key_value()?.0))
    }

    /// Number of distinct values.
    pub fn distinct(&self) -> usize {
        self.map.len()
    }

    /// Approximate heap bytes (B-tree nodes at ~2/3 fill, slab bitmaps; not the
    /// keys' own heap data).
    pub fn heap_bytes(&self) -> usize {
        let entry = std::mem::size_of::<K>() + 4;
        self.map.len() * entry * 3 / 2
            + self.slab.capacity() * std::mem::size_of::<RoaringBitmap>()
            + self
                .slab
                .iter()
                .map(RoaringBitmap::serialized_size)
                .sum::<usize>()
    }

    /// Builds a map in one pass from `(key, id)` pairs sorted by key then id;
    /// `own` turns a borrowed key into a stored one, once per distinct key.
    pub fn from_sorted<Q: PartialEq>(
        pairs: impl IntoIterator<Item = (Q, u32)>,
        own: impl Fn(&Q) -> K,
    ) -> Self {
        let mut out = ValueMap::default();
        let mut entries: Vec<(K, u32)> = Vec::new();
        let mut run: Vec<u32> = Vec::new();
        let mut cur: Option<Q> = None;
        let mut pairs = pairs.into_iter().peekable();
        while let Some((q, id)) = pairs.next() {
            if cur.as_ref() != Some(&q) {
                cur = Some(q);
                run.clear();
            }
            run.push(id);
            let ends = pairs
                .peek()
                .is_none_or(|(next, _)| Some(next) != cur.as_ref());
            if ends {
                let Some(key) = cur.as_ref() else { continue };
                let posting = if run.len() == 1 {
                    run[0]
                } else {
                    let b = RoaringBitmap::from_sorted_iter(run.iter().copied())
                        .unwrap_or_else(|_| run.iter().copied().collect());
                    out.alloc(b)
                };
                entries.push((own(key), posting));
            }
        }
        // Sorted and distinct: the B-tree is built bottom-up without comparisons.
        out.map = entries.into_iter().collect();
        out
    }
}

/// How a borrowed key becomes an owned one (`&str` -> `Box<str>`, `Number` -> itself).
pub trait ToOwnedKey<K> {
    /// The owned key.
    fn to_owned_key(&self) -> K;
}

impl ToOwnedKey<Box<str>> for str {
    fn to_owned_key(&self) -> Box<str> {
        self.into()
    }
}

impl ToOwnedKey<crate::tag::Number> for crate::tag::Number {
    fn to_owned_key(&self) -> crate::tag::Number {
        *self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_then_many_then_one() {
        let mut m: ValueMap<Box<str>> = ValueMap::default();
        m.insert("a", 1);
        assert!(matches!(m.get("a"), Some(Postings::One(1))));
        m.insert("a", 2);
        m.insert("a", 2);
        assert_eq!(m.get("a").unwrap().len(), 2);
        m.remove("a", 1);
        assert!(matches!(m.get("a"), Some(Postings::One(2))));
        m.remove("a", 2);
        assert!(m.get("a").is_none());
        assert_eq!(m.distinct(), 0);
    }

    #[test]
    fn empty_ranges_do_not_panic() {
        let mut m: ValueMap<Box<str>> = ValueMap::default();
        m.insert("b", 1);
        assert_eq!(
            m.range(Bound::Included("c"), Bound::Included("a")).count(),
            0
        );
        assert_eq!(
            m.range(Bound::Excluded("b"), Bound::Excluded("b")).count(),
            0
        );
        assert_eq!(
            m.range(Bound::Included("b"), Bound::Included("b")).count(),
            1
        );
    }

    #[test]
    fn from_sorted_matches_inserts() {
        let pairs = vec![("a", 1), ("a", 5), ("b", 2)];
        let m: ValueMap<Box<str>> = ValueMap::from_sorted(pairs, |s| Box::from(*s));
        assert_eq!(m.get("a").unwrap().len(), 2);
        assert!(matches!(m.get("b"), Some(Postings::One(2))));
    }
}
