//! Inverted indexes over the things' tags.
//!
//! For every tag name ([`names`]) there is a [`TagIndex`]: the string values in a
//! sorted dictionary and the numeric values in a sorted numeric dictionary, each
//! mapping a value to the things holding it ([`postings`]), plus one presence
//! bitmap per type (the things that have the tag as a string / as a number). A
//! tag's type is per thing: one thing may register `V` as a number and another as
//! a string; `strX` operators only see the first kind, `numX` the second.
//!
//! The `searchable` bitmap holds exactly the public claimed things (spec 3.15),
//! and only those things have postings: a thing that can never be found (unclaimed,
//! private) costs nothing in the dictionaries, so registering an unclaimed thing
//! (the common write) touches no index. Claims find their thing through the
//! records' fingerprint table, not here. `KEY` is never indexed: it can never be
//! searched (6.5), so indexing it would only cost memory. Tag name use counts
//! ([`names`]) cover every thing.
//!
//! Invariant: for every searchable thing `t` and every non-KEY tag `(n, v)` of
//! `t`, `t` is in the posting list of `v` in `n`'s dictionary of `v`'s type and in
//! that type's presence bitmap, and in nothing else; a thing that is not
//! searchable is in no posting list or presence bitmap. [`Index::check_against`]
//! verifies it.

pub mod names;
pub mod postings;

use roaring::RoaringBitmap;

use crate::records::ValueRef;
use crate::tag::Number;
use names::{NameId, Names};
use postings::ValueMap;

/// A numeric tag held by at least this many things, and by at least one in
/// [`COLUMN_DENSITY`] of all thing ids, also gets a column.
pub const COLUMN_MIN_THINGS: u64 = 1024;
/// See [`COLUMN_MIN_THINGS`].
pub const COLUMN_DENSITY: u64 = 16;

/// Most threads [`Index::bulk_build`] uses for the per-tag dictionaries.
const BUILD_THREADS: usize = 4;

/// The indexes of one tag name.
///
/// A numeric tag that most things carry (coordinates, versions) also has a dense
/// column: its value per thing id (`NaN` where the thing has no numeric value), so
/// the planner checks a candidate with one array read instead of decoding the
/// record. 8 bytes per thing id; only dense tags get one.
#[derive(Debug, Default)]
pub struct TagIndex {
    /// Dense numeric column, empty when the tag has none.
    pub num_column: Vec<f64>,
    /// String values.
    pub strs: ValueMap<Box<str>>,
    /// Things holding this tag as a string.
    pub str_present: RoaringBitmap,
    /// Numeric values.
    pub nums: ValueMap<Number>,
    /// Things holding this tag as a number.
    pub num_present: RoaringBitmap,
}

impl TagIndex {
    /// The value of thing `id` in the column, if the tag has a column. `None` means
    /// "no column"; `Some(None)` means "column, but no numeric value".
    pub fn column_value(&self, id: u32) -> Option<Option<Number>> {
        if self.num_column.is_empty() {
            return None;
        }
        Some(
            self.num_column
                .get(id as usize)
                .and_then(|&v| Number::new(v, "").ok()),
        )
    }

    fn set_column(&mut self, id: u32, v: f64) {
        if self.num_column.is_empty() {
            let n = self.num_present.len();
            let bound = self.num_present.max().map_or(0, |m| u64::from(m) + 1);
            if n < COLUMN_MIN_THINGS || n * COLUMN_DENSITY < bound {
                return;
            }
            self.build_column();
            return;
        }
        let i = id as usize;
        if self.num_column.len() <= i {
            self.num_column
                .resize((i + 1).next_power_of_two(), f64::NAN);
        }
        self.num_column[i] = v;
    }

    fn build_column(&mut self) {
        let bound = self.num_present.max().map_or(0, |m| m as usize + 1);
        let mut col = vec![f64::NAN; bound];
        for (k, p) in self
            .nums
            .range::<Number>(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded)
        {
            match p {
                postings::Postings::One(id) => col[id as usize] = k.get(),
                postings::Postings::Many(b) => {
                    for id in b {
                        col[id as usize] = k.get();
                    }
                }
            }
        }
        self.num_column = col;
    }

    fn maybe_build_column(&mut self) {
        let n = self.num_present.len();
        let bound = self.num_present.max().map_or(0, |m| u64::from(m) + 1);
        if n >= COLUMN_MIN_THINGS && n * COLUMN_DENSITY >= bound {
            self.build_column();
        }
    }
}

/// Sorts `(value, id)` pairs (given in id order) by value then id, comparing
/// each distinct string only once: values are numbered through a hash map, the
/// distinct values sorted, and the pairs placed by a counting sort on the ranks,
/// which keeps ids ascending within a value. Tags with few distinct values
/// (manufacturer, country) then cost no string comparison per thing at all.
fn group_sorted<'a>(pairs: &[(&'a str, u32)]) -> Vec<(&'a str, u32)> {
    let mut codes: hashbrown::HashMap<&str, u32> =
        hashbrown::HashMap::with_capacity(pairs.len().min(1 << 20));
    let mut distinct: Vec<&str> = Vec::new();
    let coded: Vec<u32> = pairs
        .iter()
        .map(|(s, _)| {
            *codes.entry(s).or_insert_with(|| {
                distinct.push(s);
                (distinct.len() - 1) as u32
            })
        })
        .collect();
    // Sort by the first 8 bytes (big-endian, zero-padded: same order as the
    // bytes) and compare whole strings only on ties: most comparisons then touch
    // no string at all.
    let prefix = |s: &str| {
        let mut b = [0u8; 8];
        let n = s.len().min(8);
        b[..n].copy_from_slice(&s.as_bytes()[..n]);
        u64::from_be_bytes(b)
    };
    let mut order: Vec<(u64, u32)> = distinct
        .iter()
        .enumerate()
        .map(|(code, s)| (prefix(s), code as u32))
        .collect();
    order.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| distinct[a.1 as usize].cmp(distinct[b.1 as usize]))
    });
    let mut rank = vec![0u32; distinct.len()];
    for (r, &(_, code)) in order.iter().enumerate() {
        rank[code as usize] = r as u32;
    }
    let mut start = vec![0usize; distinct.len() + 1];
    for &c in &coded {
        start[rank[c as usize] as usize + 1] += 1;
    }
    for i in 1..start.len() {
        start[i] += start[i - 1];
    }
    let mut out = vec![("", 0u32); pairs.len()];
    for (&(_, id), &c) in pairs.iter().zip(&coded) {
        let slot = &mut start[rank[c as usize] as usize];
        // The shared copy of the value: equal neighbours then point at the
        // same bytes, which later comparisons find in cache.
        out[*slot] = (distinct[c as usize], id);
        *slot += 1;
    }
    out
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

    /// Interns a tag name unless that would give more than `cap` names an id:
    /// then the id of a name no thing uses any more is recycled when `recycle`
    /// (use counts are exact), else `None`.
    pub fn intern_capped(
        &mut self,
        name: &crate::tag::TagName,
        cap: usize,
        recycle: bool,
    ) -> Option<NameId> {
        if let Some(id) = self.names.get(name.as_str()) {
            return Some(id);
        }
        if self.names.len() < cap {
            return Some(self.intern(name));
        }
        if !recycle {
            return None;
        }
        let id = self.names.recycle(name, self.key_name)?;
        if let Some(t) = self.tags.get_mut(id.0 as usize) {
            // No thing uses the old name: its dictionaries are empty anyway.
            *t = TagIndex::default();
        }
        if name.is_key() {
            self.key_name = Some(id);
        }
        Some(id)
    }

    /// Whether this id is the `KEY` tag.
    pub fn is_key(&self, name: NameId) -> bool {
        self.key_name == Some(name)
    }

    /// Adds one thing's tags: name uses always, postings when `postings`
    /// (the thing is searchable).
    pub fn add<'a>(
        &mut self,
        id: u32,
        tags: impl Iterator<Item = (NameId, ValueRef<'a>)>,
        postings: bool,
    ) {
        for (name, value) in tags {
            self.names.add_use(name);
            if !postings || self.is_key(name) {
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
                    t.set_column(id, n.get());
                }
            }
        }
    }

    /// Removes one thing's tags (exactly those it was added with, with the same
    /// `postings`).
    pub fn remove<'a>(
        &mut self,
        id: u32,
        tags: impl Iterator<Item = (NameId, ValueRef<'a>)>,
        postings: bool,
    ) {
        for (name, value) in tags {
            self.names.drop_use(name);
            if !postings || self.is_key(name) {
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
                    t.set_column(id, f64::NAN);
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
    ///
    /// Only for an index that holds no thing yet (start-up, first bulk load).
    pub fn bulk_build(&mut self, records: &crate::records::Records) {
        self.build(records, true);
    }

    /// Rebuilds every posting list, the `searchable` bitmap and the name use
    /// counts from the records in one pass, keeping the names' ids: after many
    /// claims at once (which change owners and, when `KEY` is deleted at the
    /// claim, tags), this is much faster than moving each claimed thing's
    /// postings one by one.
    pub fn rebuild_postings(&mut self, records: &crate::records::Records) {
        self.tags.clear();
        self.searchable = RoaringBitmap::new();
        self.names.clear_uses();
        self.build(records, true);
    }

    fn build(&mut self, records: &crate::records::Records, count_uses: bool) {
        let expected = records.len();
        let things = records.ids().filter_map(|id| {
            let searchable = records.owner(id).is_some() && records.is_public(id);
            Some((id.0, searchable, records.view(id)?))
        });
        // Values are borrowed from the records; a key is copied once per distinct
        // value, when the dictionary is built.
        #[derive(Default)]
        struct Pairs<'a> {
            strs: Vec<(&'a str, u32)>,
            nums: Vec<(Number, u32)>,
            str_ids: Vec<u32>,
            num_ids: Vec<u32>,
        }
        let mut per_tag: Vec<Pairs<'_>> = Vec::new();
        let mut searchable = Vec::new();
        for (id, is_searchable, view) in things {
            if is_searchable {
                searchable.push(id);
            }
            for (name, value) in view.tags() {
                if count_uses {
                    self.names.add_use(name);
                }
                if !is_searchable || self.is_key(name) {
                    continue;
                }
                let i = name.0 as usize;
                if per_tag.len() <= i {
                    per_tag.resize_with(i + 1, Pairs::default);
                }
                let p = &mut per_tag[i];
                if p.str_ids.capacity() == 0 && p.num_ids.capacity() == 0 {
                    // First value of this tag: most tags are on most things.
                    p.strs.reserve(expected);
                    p.nums.reserve(expected);
                    p.str_ids.reserve(expected);
                    p.num_ids.reserve(expected);
                }
                match value {
                    ValueRef::Str(s) => {
                        p.strs.push((s, id));
                        p.str_ids.push(id);
                    }
                    ValueRef::Num(n) => {
                        p.nums.push((n, id));
                        p.num_ids.push(id);
                    }
                }
            }
        }
        // Records come in id order, so the id lists are already sorted.
        searchable.sort_unstable();
        self.searchable = RoaringBitmap::from_sorted_iter(searchable).unwrap_or_default();
        // Each tag's dictionaries are built independently (sorts dominate), so
        // the tags are shared out over a few scoped threads, biggest first.
        let mut work: Vec<(usize, Pairs<'_>)> = per_tag.into_iter().enumerate().collect();
        work.sort_by_key(|(_, p)| std::cmp::Reverse(p.strs.len() + p.nums.len()));
        let workers = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, BUILD_THREADS)
            .min(work.len().max(1));
        let mut shares: Vec<Vec<(usize, Pairs<'_>)>> = (0..workers).map(|_| Vec::new()).collect();
        let mut load = vec![0usize; workers];
        for item in work {
            let w = (0..workers).min_by_key(|&w| load[w]).unwrap_or(0);
            load[w] += item.1.strs.len() + item.1.nums.len() + 1;
            shares[w].push(item);
        }
        let build = |share: Vec<(usize, Pairs<'_>)>| -> Vec<(usize, TagIndex)> {
            share
                .into_iter()
                .map(|(i, mut p)| {
                    p.str_ids.sort_unstable();
                    p.num_ids.sort_unstable();
                    let strs = group_sorted(&p.strs);
                    p.nums
                        .sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
                    let mut t = TagIndex {
                        num_column: Vec::new(),
                        str_present: RoaringBitmap::from_sorted_iter(p.str_ids).unwrap_or_default(),
                        num_present: RoaringBitmap::from_sorted_iter(p.num_ids).unwrap_or_default(),
                        strs: ValueMap::from_sorted(strs, |s| Box::from(*s)),
                        nums: ValueMap::from_sorted(p.nums, |n| *n),
                    };
                    t.maybe_build_column();
                    (i, t)
                })
                .collect()
        };
        let built: Vec<(usize, TagIndex)> = if workers <= 1 {
            shares.into_iter().flat_map(build).collect()
        } else {
            std::thread::scope(|scope| {
                let mut shares = shares.into_iter();
                let mine = shares.next().unwrap_or_default();
                let handles: Vec<_> = shares.map(|sh| scope.spawn(move || build(sh))).collect();
                let mut all = build(mine);
                for h in handles {
                    // A panic in a worker is a bug in this function: re-raise it.
                    all.extend(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
                }
                all
            })
        };
        for (i, t) in built {
            *self.tag_mut(NameId(i as u32)) = t;
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
            total += t.num_column.capacity() * 8
                + t.strs.heap_bytes()
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
        fresh.bulk_build(records);
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
            if !mine.num_column.is_empty() {
                let set = mine.num_column.iter().filter(|v| !v.is_nan()).count() as u64;
                if set != mine.num_present.len() {
                    return Err(format!("column of tag {name} holds {set} values"));
                }
                for (k, p) in &a {
                    if p.iter().any(|id| mine.column_value(id) != Some(Some(*k))) {
                        return Err(format!("column of tag {name} differs at value {k}"));
                    }
                }
            }
        }
        Ok(())
    }
}
