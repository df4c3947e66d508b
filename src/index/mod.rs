//! Inverted indexes over the things' tags.
//!
//! For every tag name ([`names`]) there is a [`TagIndex`]: the string values in a
//! sorted dictionary and the numeric values in a sorted numeric dictionary, each
//! mapping a value to the things holding it ([`postings`]), plus one presence
//! bitmap per type (the things that have the tag as a string / as a number). A
//! tag's type is per thing: one thing may register `V` as a number and another as
//! a string; `strX` operators only see the first kind, `numX` the second.
//!
//! The `searchable` bitmap holds exactly the public claimed things (spec 3.15);
//! every search is intersected with it. `KEY` is never indexed: it can never be
//! searched (6.5), so indexing it would only cost memory.
//!
//! Invariant: for every live thing `t` and every non-KEY tag `(n, v)` of `t`,
//! `t` is in the posting list of `v` in `n`'s dictionary of `v`'s type and in that
//! type's presence bitmap, and in nothing else. [`Index::check_against`] verifies it.

pub mod names;
pub mod postings;

use roaring::RoaringBitmap;

use crate::records::ValueRef;
use crate::tag::Number;
use names::{NameId, Names};
use postings::ValueMap;

/// The indexes of one tag name.
#[derive(Debug, Default)]
pub struct TagIndex {
    /// String values.
    pub strs: ValueMap<Box<str>>,
    /// Things holding this tag as a string.
    pub str_present: RoaringBitmap,
    /// Numeric values.
    pub nums: ValueMap<Number>,
    /// Things holding this tag as a number.
    pub num_present: RoaringBitmap,
}

/// All indexes.
#[derive(Debug, Default)]
pub struct Index {
    /// Tag names.
    pub names: Names,
    tags: Vec<TagIndex>,
    /// Public claimed things.
    pub searchable: RoaringBitmap,
    key_name: Option<NameId>,
}

impl Index {
    /// The index of one tag name, if any thing has ever used it.
    pub fn tag(&self, name: NameId) -> Option<&TagIndex> {
        self.tags.get(name.0 as usize)
    }

    fn tag_mut(&mut self, name: NameId) -> &mut TagIndex {
        let i = name.0 as usize;
        if self.tags.len() <= i {
            self.tags.resize_with(i + 1, TagIndex::default);
        }
        &mut self.tags[i]
    }

    /// Interns a tag name.
    pub fn intern(&mut self, name: &crate::tag::TagName) -> NameId {
        let id = self.names.intern(name);
        if name.is_key() {
            self.key_name = Some(id);
        }
        id
    }

    /// Whether this id is the `KEY` tag.
    pub fn is_key(&self, name: NameId) -> bool {
        self.key_name == Some(name)
    }

    /// Adds one thing's tags.
    pub fn add<'a>(&mut self, id: u32, tags: impl Iterator<Item = (NameId, ValueRef<'a>)>) {
        for (name, value) in tags {
            self.names.add_use(name);
            if self.is_key(name) {
                continue;
            }
            let t = self.tag_mut(name);
            match value {
                ValueRef::Str(s) => {
                    t.strs.insert(s, id);
                    t.str_present.insert(id);
                }
                ValueRef::Num(n) => {
                    t.nums.insert(&n, id);
                    t.num_present.insert(id);
                }
            }
        }
    }

    /// Removes one thing's tags (exactly those it was added with).
    pub fn remove<'a>(&mut self, id: u32, tags: impl Iterator<Item = (NameId, ValueRef<'a>)>) {
        for (name, value) in tags {
            self.names.drop_use(name);
            if self.is_key(name) {
                continue;
            }
            let t = self.tag_mut(name);
            match value {
                ValueRef::Str(s) => {
                    t.strs.remove(s, id);
                    t.str_present.remove(id);
                }
                ValueRef::Num(n) => {
                    t.nums.remove(&n, id);
                    t.num_present.remove(id);
                }
            }
        }
    }

    /// Sets whether a thing is searchable (public and claimed).
    pub fn set_searchable(&mut self, id: u32, searchable: bool) {
        if searchable {
            self.searchable.insert(id);
        } else {
            self.searchable.remove(id);
        }
    }

    /// Builds every index in one pass from all records (start-up, import): sorts
    /// `(value, id)` pairs per tag and bulk-loads the dictionaries, which is much
    /// faster than inserting things one by one.
    pub fn bulk_build<'a>(
        &mut self,
        things: impl Iterator<Item = (u32, bool, crate::records::RecordView<'a>)>,
    ) {
        let mut strs: Vec<Vec<(Box<str>, u32)>> = Vec::new();
        let mut nums: Vec<Vec<(Number, u32)>> = Vec::new();
        let mut searchable = Vec::new();
        for (id, is_searchable, view) in things {
            if is_searchable {
                searchable.push(id);
            }
            for (name, value) in view.tags() {
                self.names.add_use(name);
                if self.is_key(name) {
                    continue;
                }
                let i = name.0 as usize;
                if strs.len() <= i {
                    strs.resize_with(i + 1, Vec::new);
                    nums.resize_with(i + 1, Vec::new);
                }
                match value {
                    ValueRef::Str(s) => strs[i].push((s.into(), id)),
                    ValueRef::Num(n) => nums[i].push((n, id)),
                }
            }
        }
        searchable.sort_unstable();
        self.searchable = RoaringBitmap::from_sorted_iter(searchable).unwrap_or_default();
        for (i, (mut s, mut n)) in strs.into_iter().zip(nums).enumerate() {
            s.sort_unstable();
            n.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
            let mut sp: Vec<u32> = s.iter().map(|p| p.1).collect();
            let mut np: Vec<u32> = n.iter().map(|p| p.1).collect();
            sp.sort_unstable();
            np.sort_unstable();
            let t = self.tag_mut(NameId(i as u32));
            t.str_present = RoaringBitmap::from_sorted_iter(sp).unwrap_or_default();
            t.num_present = RoaringBitmap::from_sorted_iter(np).unwrap_or_default();
            t.strs = ValueMap::from_sorted(s);
            t.nums = ValueMap::from_sorted(n);
        }
    }

    /// Approximate heap bytes of all indexes, string keys included.
    pub fn heap_bytes(&self) -> usize {
        let mut total = self.names.heap_bytes() + self.searchable.serialized_size();
        for t in &self.tags {
            let key_heap: usize = t
                .strs
                .range::<str>(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
                .map(|(k, _)| crate::records::malloc_size(k.len()))
                .sum();
            total += t.strs.heap_bytes()
                + key_heap
                + t.nums.heap_bytes()
                + t.str_present.serialized_size()
                + t.num_present.serialized_size();
        }
        total
    }

    /// Checks the invariant against the records: rebuilds an index from them and
    /// compares every posting list. Returns a description of the first difference.
    pub fn check_against(&self, records: &crate::records::Records) -> Result<(), String> {
        let mut fresh = Index::default();
        for (id, n, _) in self.names.iter() {
            let got = fresh.intern(n);
            debug_assert_eq!(got, id);
        }
        fresh.bulk_build(records.ids().map(|id| {
            let searchable = records.owner(id).is_some() && records.is_public(id);
            (id.0, searchable, records.view(id).expect("live id"))
        }));
        if fresh.searchable != self.searchable {
            return Err("searchable bitmap differs from records".into());
        }
        for (i, f) in fresh.tags.iter().enumerate() {
            let name = self.names.name(NameId(i as u32));
            let empty = TagIndex::default();
            let mine = self.tags.get(i).unwrap_or(&empty);
            if f.str_present != mine.str_present || f.num_present != mine.num_present {
                return Err(format!("presence of tag {name} differs"));
            }
            let a: Vec<_> = f
                .strs
                .range::<str>(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
                .map(|(k, p)| (k.clone(), p.to_bitmap()))
                .collect();
            let b: Vec<_> = mine
                .strs
                .range::<str>(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
                .map(|(k, p)| (k.clone(), p.to_bitmap()))
                .collect();
            if a != b {
                return Err(format!("string postings of tag {name} differ"));
            }
            let a: Vec<_> = f
                .nums
                .range::<Number>(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
                .map(|(k, p)| (*k, p.to_bitmap()))
                .collect();
            let b: Vec<_> = mine
                .nums
                .range::<Number>(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
                .map(|(k, p)| (*k, p.to_bitmap()))
                .collect();
            if a != b {
                return Err(format!("numeric postings of tag {name} differ"));
            }
        }
        Ok(())
    }
}
