//! Compact in-memory records, one per [`ThingId`], and the two lookups the
//! protocol needs: by [`ThingKey`] (register, update, remove, ...) and by claim
//! fingerprint (mine).
//!
//! Each record is a single heap blob holding the JID, the last resource, the node
//! address and every tag (name id + value), so a thing costs one allocation plus a
//! 32-byte slot. Both lookups are `hashbrown::HashTable<u32>`s whose hashes are
//! computed from the records themselves: keys are never stored twice.
//!
//! The claim fingerprint is a keyed hash of the thing's tag set in canonical order
//! (sorted by name, numbers by value bits), so "exactly the same tags, order
//! ignored" is a hash probe plus an exact comparison of the few candidates; a claim
//! never scans all things. Hashes are foldhash with a random per-process seed
//! (hashbrown's default), so hostile things cannot aim for collisions; a
//! collision would only cost an extra exact comparison anyway.
//!
//! Blob layout (little-endian varints): `jid`, `resource` (len 0 = none),
//! `nodeId`/`sourceId`/`cacheType` (len+1, 0 = none), then tags as
//! `name_id, kind (0 str | 1 num), str: len bytes | num: 8-byte f64`. A claimed
//! thing whose `KEY` was deleted keeps its [`ClaimDigest`] as one more entry,
//! `0, kind 2, 24 bytes`, that is not a tag: [`RecordView::tags`], `get`,
//! `tag_count` and the claim fingerprint skip it; [`RecordView::claim_digest`]
//! reads it.

// foldhash (hashbrown's default) rather than SipHash: owner lookups run once per claim
// and once per record at start-up, where SipHash measured ~10% of a cold open.
use hashbrown::HashMap;
use std::hash::{BuildHasher, Hasher};

use hashbrown::DefaultHashBuilder as RandomState;

use hashbrown::HashTable;

use crate::digest::{ClaimDigest, DIGEST_BYTES};
use crate::index::names::{NameId, Names};
use crate::jid::BareJid;
use crate::tag::{Number, Tag, TagValue};
use crate::thing::{NodeAddress, ThingId, ThingKey, ThingRecord};

/// A borrowed tag value read from a record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// A string value (valid UTF-8).
    Str(&'a str),
    /// A numeric value.
    Num(Number),
}

/// One slot of the record table.
#[derive(Debug)]
struct Slot {
    blob: Box<[u8]>,
    /// Owner id + 1; 0 = unclaimed.
    owner: u32,
    public: bool,
    print: u64,
}

/// Interned owner JIDs (many things share an owner).
#[derive(Debug, Default)]
struct Owners {
    by_jid: HashMap<BareJid, u32>,
    jids: Vec<Option<(BareJid, u32)>>,
    free: Vec<u32>,
}

impl Owners {
    fn acquire(&mut self, jid: &BareJid) -> u32 {
        if let Some(&id) = self.by_jid.get(jid) {
            if let Some((_, n)) = &mut self.jids[id as usize] {
                *n += 1;
            }
            return id + 1;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.jids[id as usize] = Some((jid.clone(), 1));
                id
            }
            None => {
                self.jids.push(Some((jid.clone(), 1)));
                (self.jids.len() - 1) as u32
            }
        };
        self.by_jid.insert(jid.clone(), id);
        id + 1
    }

    fn release(&mut self, handle: u32) {
        if handle == 0 {
            return;
        }
        let id = handle - 1;
        let slot = &mut self.jids[id as usize];
        if let Some((jid, n)) = slot {
            *n -= 1;
            if *n == 0 {
                self.by_jid.remove(jid);
                *slot = None;
                self.free.push(id);
            }
        }
    }

    fn get(&self, handle: u32) -> Option<&BareJid> {
        if handle == 0 {
            return None;
        }
        self.jids[(handle - 1) as usize].as_ref().map(|(j, _)| j)
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    while let Some(&byte) = b.get(*pos) {
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            break;
        }
        shift += 7;
    }
    v
}

fn get_bytes<'a>(b: &'a [u8], pos: &mut usize, len: usize) -> &'a [u8] {
    let end = (*pos + len).min(b.len());
    let s = &b[*pos..end];
    *pos = end;
    s
}

fn as_str(b: &[u8]) -> &str {
    // Blobs are only ever built from `&str`s by `encode`.
    std::str::from_utf8(b).unwrap_or_default()
}

/// A read-only view of one record blob.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    blob: &'a [u8],
    tags_at: usize,
}

impl<'a> RecordView<'a> {
    fn new(blob: &'a [u8]) -> Self {
        let mut pos = 0;
        let n = get_varint(blob, &mut pos) as usize;
        pos += n;
        let n = get_varint(blob, &mut pos) as usize;
        pos += n;
        for _ in 0..3 {
            let n = get_varint(blob, &mut pos) as usize;
            pos += n.saturating_sub(1);
        }
        RecordView { blob, tags_at: pos }
    }

    fn head(&self) -> (&'a str, Option<&'a str>, [Option<&'a str>; 3]) {
        let b = self.blob;
        let mut pos = 0;
        let n = get_varint(b, &mut pos) as usize;
        let jid = as_str(get_bytes(b, &mut pos, n));
        let n = get_varint(b, &mut pos) as usize;
        let res = (n > 0).then(|| as_str(get_bytes(b, &mut pos, n)));
        let mut node = [None; 3];
        for slot in &mut node {
            let n = get_varint(b, &mut pos) as usize;
            if n > 0 {
                *slot = Some(as_str(get_bytes(b, &mut pos, n - 1)));
            }
        }
        (jid, res, node)
    }

    /// The thing's bare JID, as text (reads only the first field).
    pub fn jid(&self) -> &'a str {
        let mut pos = 0;
        let n = get_varint(self.blob, &mut pos) as usize;
        as_str(get_bytes(self.blob, &mut pos, n))
    }

    /// The last resource the thing used.
    pub fn resource(&self) -> Option<&'a str> {
        self.head().1
    }

    /// The node address attributes (`nodeId`, `sourceId`, `cacheType`).
    pub fn node(&self) -> [Option<&'a str>; 3] {
        self.head().2
    }

    /// The thing's key (bare JID and node address), decoded in one pass.
    pub fn key(&self) -> ThingKey {
        let (jid, _, [node_id, source_id, cache_type]) = self.head();
        ThingKey {
            jid: BareJid::from_normalized(jid),
            node: NodeAddress {
                node_id: node_id.map(Into::into),
                source_id: source_id.map(Into::into),
                cache_type: cache_type.map(Into::into),
            },
        }
    }

    /// The tags, in record order.
    pub fn tags(&self) -> TagIter<'a> {
        TagIter {
            blob: self.blob,
            pos: self.tags_at,
        }
    }

    /// The value of one tag, if the thing has it. Skips the other tags without
    /// decoding their values.
    pub fn get(&self, name: NameId) -> Option<ValueRef<'a>> {
        let b = self.blob;
        let mut pos = self.tags_at;
        while pos < b.len() {
            let here = pos;
            let n = get_varint(b, &mut pos) as u32;
            let kind = *b.get(pos)?;
            pos += 1;
            if n == name.0 && kind != KIND_DIGEST {
                return (TagIter { blob: b, pos: here }).next().map(|(_, v)| v);
            }
            pos += match kind {
                0 => get_varint(b, &mut pos) as usize,
                KIND_DIGEST => DIGEST_BYTES,
                _ => 8,
            };
        }
        None
    }

    /// How many tags the thing has (walks the tags without decoding values).
    pub fn tag_count(&self) -> usize {
        let b = self.blob;
        let mut pos = self.tags_at;
        let mut n = 0;
        while pos < b.len() {
            get_varint(b, &mut pos);
            let Some(&kind) = b.get(pos) else { break };
            pos += 1;
            match kind {
                0 => {
                    let len = get_varint(b, &mut pos) as usize;
                    pos += len;
                }
                KIND_DIGEST => {
                    pos += DIGEST_BYTES;
                    continue;
                }
                _ => pos += 8,
            }
            n += 1;
        }
        n
    }

    /// The salted digest kept of the claimed tag set once `KEY` was deleted
    /// (see [`crate::digest`]).
    pub fn claim_digest(&self) -> Option<ClaimDigest> {
        let b = self.blob;
        let mut pos = self.tags_at;
        while pos < b.len() {
            get_varint(b, &mut pos);
            let kind = *b.get(pos)?;
            pos += 1;
            match kind {
                0 => pos += get_varint(b, &mut pos) as usize,
                KIND_DIGEST => return ClaimDigest::from_bytes(b.get(pos..pos + DIGEST_BYTES)?),
                _ => pos += 8,
            }
        }
        None
    }
}

/// Blob entry kind of a claim digest (not a tag).
const KIND_DIGEST: u8 = 2;

/// Iterator over a record's tags.
#[derive(Debug, Clone)]
pub struct TagIter<'a> {
    blob: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for TagIter<'a> {
    type Item = (NameId, ValueRef<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.blob.len() {
            return None;
        }
        let b = self.blob;
        let name = NameId(get_varint(b, &mut self.pos) as u32);
        let kind = *b.get(self.pos)?;
        self.pos += 1;
        if kind == KIND_DIGEST {
            self.pos += DIGEST_BYTES;
            return self.next();
        }
        let value = if kind == 0 {
            let n = get_varint(b, &mut self.pos) as usize;
            ValueRef::Str(as_str(get_bytes(b, &mut self.pos, n)))
        } else {
            let raw = get_bytes(b, &mut self.pos, 8);
            let mut a = [0u8; 8];
            a[..raw.len()].copy_from_slice(raw);
            // Written from a checked Number, so always finite.
            ValueRef::Num(Number::new(f64::from_le_bytes(a), "").ok()?)
        };
        Some((name, value))
    }
}

/// A tag as the registry handles it internally: interned name, typed value.
pub type IdTag = (NameId, TagValue);

/// Bytes [`put_varint`] writes for `v`.
fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// The exact length of [`encode`]'s output: the blob is allocated once, at its
/// final size (a grown-then-shrunk `Vec` costs two reallocations per write).
fn encoded_len(
    key: &ThingKey,
    resource: Option<&str>,
    tags: &[IdTag],
    digest: Option<&ClaimDigest>,
) -> usize {
    let bytes = |n: usize| varint_len(n as u64) + n;
    let mut len = bytes(key.jid.as_str().len()) + bytes(resource.map_or(0, str::len));
    for part in [&key.node.node_id, &key.node.source_id, &key.node.cache_type] {
        len += part
            .as_ref()
            .map_or(1, |s| varint_len(s.len() as u64 + 1) + s.len());
    }
    for (name, value) in tags {
        len += varint_len(u64::from(name.0))
            + 1
            + match value {
                TagValue::Str(s) => bytes(s.len()),
                TagValue::Num(_) => 8,
            };
    }
    if digest.is_some() {
        len += 2 + DIGEST_BYTES;
    }
    len
}

fn encode(
    key: &ThingKey,
    resource: Option<&str>,
    tags: &[IdTag],
    digest: Option<&ClaimDigest>,
) -> Box<[u8]> {
    let len = encoded_len(key, resource, tags, digest);
    let mut out = Vec::with_capacity(len);
    let jid = key.jid.as_str();
    put_varint(&mut out, jid.len() as u64);
    out.extend_from_slice(jid.as_bytes());
    let res = resource.unwrap_or("");
    put_varint(&mut out, res.len() as u64);
    out.extend_from_slice(res.as_bytes());
    for part in [&key.node.node_id, &key.node.source_id, &key.node.cache_type] {
        match part {
            None => put_varint(&mut out, 0),
            Some(s) => {
                put_varint(&mut out, s.len() as u64 + 1);
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
    for (name, value) in tags {
        put_varint(&mut out, u64::from(name.0));
        match value {
            TagValue::Str(s) => {
                out.push(0);
                put_varint(&mut out, s.len() as u64);
                out.extend_from_slice(s.as_bytes());
            }
            TagValue::Num(n) => {
                out.push(1);
                out.extend_from_slice(&n.get().to_le_bytes());
            }
        }
    }
    if let Some(d) = digest {
        out.push(0);
        out.push(KIND_DIGEST);
        out.extend_from_slice(d.as_bytes());
    }
    debug_assert_eq!(out.len(), len, "encoded_len is exact");
    out.into_boxed_slice()
}

fn hash_key(state: &RandomState, jid: &str, node: [Option<&str>; 3]) -> u64 {
    let mut h = state.build_hasher();
    h.write(jid.as_bytes());
    for part in node {
        match part {
            None => h.write_u8(0),
            Some(s) => {
                h.write_u8(1);
                h.write_usize(s.len());
                h.write(s.as_bytes());
            }
        }
    }
    h.finish()
}

fn node_parts(node: &NodeAddress) -> [Option<&str>; 3] {
    [
        node.node_id.as_deref(),
        node.source_id.as_deref(),
        node.cache_type.as_deref(),
    ]
}

/// A canonical tag set: inline up to 16 tags (a thing's usual size), so
/// fingerprinting a record allocates nothing.
type Canonical<'a> = smallvec::SmallVec<[(NameId, ValueRef<'a>); 16]>;

/// Canonical form of a tag set for claim matching: sorted by name id.
fn canonical<'a>(tags: impl Iterator<Item = (NameId, ValueRef<'a>)>) -> Canonical<'a> {
    let mut v: Canonical<'a> = tags.collect();
    v.sort_by_key(|(n, _)| *n);
    v
}

/// [`canonical`] of typed tags (the same form as of the record they encode
/// to, without decoding it).
fn canonical_of(tags: &[IdTag]) -> Canonical<'_> {
    canonical(tags.iter().map(|(n, v)| {
        (
            *n,
            match v {
                TagValue::Str(s) => ValueRef::Str(s),
                TagValue::Num(x) => ValueRef::Num(*x),
            },
        )
    }))
}

fn hash_print(state: &RandomState, canon: &[(NameId, ValueRef<'_>)]) -> u64 {
    let mut h = state.build_hasher();
    for (name, value) in canon {
        h.write_u32(name.0);
        match value {
            ValueRef::Str(s) => {
                h.write_u8(0);
                h.write_usize(s.len());
                h.write(s.as_bytes());
            }
            ValueRef::Num(n) => {
                h.write_u8(1);
                h.write_u64(n.get().to_bits());
            }
        }
    }
    h.finish()
}

/// The record table.
#[derive(Debug, Default)]
pub struct Records {
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    by_key: HashTable<u32>,
    by_print: HashTable<u32>,
    /// The largest capacity each table has shown (its size class, for
    /// [`Records::grow_tables`]).
    table_caps: [usize; 2],
    key_state: RandomState,
    print_state: RandomState,
    owners: Owners,
    len: usize,
}

/// What a record holds besides its identity, for [`Records::insert`].
#[derive(Debug)]
pub struct NewRecord<'a> {
    /// Identity.
    pub key: &'a ThingKey,
    /// Last resource used.
    pub resource: Option<&'a str>,
    /// Owner, if claimed.
    pub owner: Option<&'a BareJid>,
    /// Public flag.
    pub public: bool,
    /// Tags, in record order.
    pub tags: &'a [IdTag],
    /// The claim digest kept after `KEY` was deleted, if any.
    pub digest: Option<&'a ClaimDigest>,
}

impl Records {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// One past the highest id ever allocated.
    pub fn id_bound(&self) -> u32 {
        self.slots.len() as u32
    }

    /// The id of the thing with this key.
    pub fn find(&self, key: &ThingKey) -> Option<ThingId> {
        let parts = node_parts(&key.node);
        let h = hash_key(&self.key_state, key.jid.as_str(), parts);
        let slots = &self.slots;
        self.by_key
            .find(h, |&id| match &slots[id as usize] {
                Some(s) => {
                    let (jid, _, node) = RecordView::new(&s.blob).head();
                    jid == key.jid.as_str() && node == parts
                }
                None => false,
            })
            .map(|&id| ThingId(id))
    }

    /// The ids of every thing whose tag set is exactly `tags` (order ignored).
    pub fn find_by_tags(&self, tags: &[IdTag]) -> Vec<ThingId> {
        let wanted = canonical_of(tags);
        let h = hash_print(&self.print_state, &wanted);
        let mut out = Vec::new();
        for &id in self.by_print.iter_hash(h) {
            if let Some(slot) = &self.slots[id as usize] {
                if slot.print == h && canonical(RecordView::new(&slot.blob).tags()) == wanted {
                    out.push(ThingId(id));
                }
            }
        }
        out.sort();
        out
    }

    /// Reads a record.
    pub fn view(&self, id: ThingId) -> Option<RecordView<'_>> {
        self.slots
            .get(id.0 as usize)?
            .as_ref()
            .map(|s| RecordView::new(&s.blob))
    }

    /// Reads the first bytes of each listed record so that their cache misses
    /// overlap; returns a meaningless checksum (pass it to `black_box`).
    pub fn touch(&self, ids: &[u32]) -> u32 {
        let mut sum = 0u32;
        for &id in ids {
            if let Some(Some(s)) = self.slots.get(id as usize) {
                sum = sum.wrapping_add(u32::from(s.blob[0]));
                if let Some(b) = s.blob.get(60) {
                    sum = sum.wrapping_add(u32::from(*b));
                }
            }
        }
        sum
    }

    /// The owner of a thing, if claimed.
    pub fn owner(&self, id: ThingId) -> Option<&BareJid> {
        let s = self.slots.get(id.0 as usize)?.as_ref()?;
        self.owners.get(s.owner)
    }

    /// Whether a claimed thing is public.
    pub fn is_public(&self, id: ThingId) -> bool {
        self.slots
            .get(id.0 as usize)
            .and_then(Option::as_ref)
            .is_some_and(|s| s.public)
    }

    /// Makes room for `n` more records.
    pub fn reserve(&mut self, n: usize) {
        self.slots.reserve(n);
        let (slots, ks) = (&self.slots, &self.key_state);
        self.by_key.reserve(n, |&i| {
            let v = RecordView::new(&slots[i as usize].as_ref().expect("linked slot").blob);
            let (jid, _, node) = v.head();
            hash_key(ks, jid, node)
        });
        self.by_print.reserve(n, |&i| {
            slots[i as usize].as_ref().expect("linked slot").print
        });
    }

    /// The id the next insert will use.
    pub fn next_id(&self) -> u32 {
        self.free.last().copied().unwrap_or(self.slots.len() as u32)
    }

    /// Inserts a new record (its key must not exist yet) and returns its id.
    pub fn insert(&mut self, rec: NewRecord<'_>) -> ThingId {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        self.fill(id, rec);
        self.len += 1;
        ThingId(id)
    }

    /// Changes only the owner and public flag of a record (claim): no re-encoding,
    /// no index change.
    pub fn set_owner(&mut self, id: ThingId, owner: Option<&BareJid>, public: bool) {
        let handle = owner.map_or(0, |o| self.owners.acquire(o));
        if let Some(Some(slot)) = self.slots.get_mut(id.0 as usize) {
            let old = std::mem::replace(&mut slot.owner, handle);
            slot.public = public;
            self.owners.release(old);
        } else {
            self.owners.release(handle);
        }
    }

    /// Replaces the record of an existing id, keeping its identity.
    ///
    /// A rewrite under the same key (`update`, re-registration, a claim that
    /// deletes `KEY`, a disown) keeps the key-table entry, and touches the claim
    /// fingerprint table only when the tags changed.
    pub fn replace(&mut self, id: ThingId, rec: NewRecord<'_>) {
        let i = id.0 as usize;
        let Some(old) = self.slots.get(i).and_then(Option::as_ref) else {
            return self.fill(id.0, rec);
        };
        let (jid, _, node) = RecordView::new(&old.blob).head();
        let same_owner = match rec.owner {
            None => old.owner == 0,
            Some(o) => self.owners.get(old.owner) == Some(o),
        };
        if jid != rec.key.jid.as_str() || node != node_parts(&rec.key.node) {
            self.unlink(id.0);
            return self.fill(id.0, rec);
        }
        let (old_print, mut owner) = (old.print, old.owner);
        let blob = encode(rec.key, rec.resource, rec.tags, rec.digest);
        if same_owner && blob == old.blob {
            // A repeated registration: same bytes, same fingerprint.
            if let Some(Some(slot)) = self.slots.get_mut(i) {
                slot.public = rec.public;
            }
            return;
        }
        if !same_owner {
            // A claim that also rewrites the tags (KEY deleted) or a disown.
            let new = rec.owner.map_or(0, |o| self.owners.acquire(o));
            self.owners.release(std::mem::replace(&mut owner, new));
        }
        let print = hash_print(&self.print_state, &canonical_of(rec.tags));
        if print != old_print {
            if let Ok(e) = self.by_print.find_entry(old_print, |&x| x == id.0) {
                e.remove();
            }
        }
        self.slots[i] = Some(Slot {
            blob,
            owner,
            public: rec.public,
            print,
        });
        if print != old_print {
            let slots = &self.slots;
            self.by_print.insert_unique(print, id.0, |&x| {
                slots[x as usize].as_ref().expect("linked slot").print
            });
        }
    }

    /// Grows a lookup table when the next insert would fill it, with
    /// hashbrown's own policy: the same size (dropping deleted entries) while
    /// at most half full, else double. The table is rebuilt by walking the
    /// records in id order: blobs lie roughly in allocation order, so hashing
    /// them streams through memory, where hashbrown's resize rehashes in
    /// bucket order at a cache miss per record (at a million things, a pause
    /// of about a second for the two tables).
    fn grow_tables(&mut self) {
        let full = |t: &HashTable<u32>| t.len() >= t.capacity();
        if !full(&self.by_key) && !full(&self.by_print) {
            return;
        }
        // The capacity a table needs after this growth.
        let target = |t: &HashTable<u32>, seen: &mut usize| {
            *seen = (*seen).max(t.capacity());
            if t.len() < *seen / 2 {
                *seen
            } else {
                // One more than its size class holds: twice the buckets.
                *seen + 1
            }
        };
        let (slots, ks) = (&self.slots, &self.key_state);
        let key_of = |i: &u32| {
            let v = RecordView::new(&slots[*i as usize].as_ref().expect("linked slot").blob);
            let (jid, _, node) = v.head();
            hash_key(ks, jid, node)
        };
        let print_of = |i: &u32| slots[*i as usize].as_ref().expect("linked slot").print;
        let linked = || {
            slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.as_ref().map(|s| (i as u32, s)))
        };
        if full(&self.by_key) {
            let mut t = HashTable::with_capacity(target(&self.by_key, &mut self.table_caps[0]));
            for (i, s) in linked() {
                let (jid, _, node) = RecordView::new(&s.blob).head();
                t.insert_unique(hash_key(ks, jid, node), i, key_of);
            }
            self.table_caps[0] = t.capacity();
            self.by_key = t;
        }
        if full(&self.by_print) {
            let mut t = HashTable::with_capacity(target(&self.by_print, &mut self.table_caps[1]));
            for (i, s) in linked() {
                t.insert_unique(s.print, i, print_of);
            }
            self.table_caps[1] = t.capacity();
            self.by_print = t;
        }
    }

    fn fill(&mut self, id: u32, rec: NewRecord<'_>) {
        self.grow_tables();
        let blob = encode(rec.key, rec.resource, rec.tags, rec.digest);
        let print = hash_print(&self.print_state, &canonical_of(rec.tags));
        let key_hash = hash_key(
            &self.key_state,
            rec.key.jid.as_str(),
            node_parts(&rec.key.node),
        );
        let owner = rec.owner.map_or(0, |o| self.owners.acquire(o));
        self.slots[id as usize] = Some(Slot {
            blob,
            owner,
            public: rec.public,
            print,
        });
        let (slots, ks) = (&self.slots, &self.key_state);
        self.by_key.insert_unique(key_hash, id, |&i| {
            let v = RecordView::new(&slots[i as usize].as_ref().expect("linked slot").blob);
            let (jid, _, node) = v.head();
            hash_key(ks, jid, node)
        });
        self.by_print.insert_unique(print, id, |&i| {
            slots[i as usize].as_ref().expect("linked slot").print
        });
    }

    fn unlink(&mut self, id: u32) {
        let Some(slot) = self.slots[id as usize].as_ref() else {
            return;
        };
        let (jid, _, node) = RecordView::new(&slot.blob).head();
        let kh = hash_key(&self.key_state, jid, node);
        if let Ok(e) = self.by_key.find_entry(kh, |&i| i == id) {
            e.remove();
        }
        if let Ok(e) = self.by_print.find_entry(slot.print, |&i| i == id) {
            e.remove();
        }
        let owner = slot.owner;
        self.owners.release(owner);
        self.slots[id as usize] = None;
    }

    /// Removes a record; its id becomes free for reuse.
    pub fn remove(&mut self, id: ThingId) {
        if self.slots.get(id.0 as usize).is_some_and(Option::is_some) {
            self.unlink(id.0);
            self.free.push(id.0);
            self.len -= 1;
        }
    }

    /// Every live id, ascending.
    pub fn ids(&self) -> impl Iterator<Item = ThingId> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(i, _)| ThingId(i as u32))
    }

    /// A full typed copy of a record.
    pub fn to_record(&self, id: ThingId, names: &Names) -> Option<ThingRecord> {
        let slot = self.slots.get(id.0 as usize)?.as_ref()?;
        let view = RecordView::new(&slot.blob);
        let (jid, res, node) = view.head();
        let key = ThingKey {
            jid: BareJid::parse(jid).ok()?,
            node: NodeAddress::new(node[0], node[1], node[2]).ok()?,
        };
        let tags = view
            .tags()
            .map(|(n, v)| Tag {
                name: names.name(n).clone(),
                value: match v {
                    ValueRef::Str(s) => TagValue::Str(s.into()),
                    ValueRef::Num(x) => TagValue::Num(x),
                },
            })
            .collect();
        Some(ThingRecord {
            key,
            last_resource: res.map(Into::into),
            owner: self.owners.get(slot.owner).cloned(),
            public: slot.public,
            tags,
            claim_digest: view.claim_digest(),
        })
    }

    /// Heap and table bytes held, approximately (slots, blobs, hash tables, owners).
    pub fn heap_bytes(&self) -> usize {
        let blobs: usize = self
            .slots
            .iter()
            .flatten()
            .map(|s| malloc_size(s.blob.len()))
            .sum();
        self.slots.capacity() * std::mem::size_of::<Option<Slot>>()
            + blobs
            + self.free.capacity() * 4
            + (self.by_key.capacity() + self.by_print.capacity()) * 5
            + self.owners.jids.capacity() * 40
            + self.owners.by_jid.capacity() * 40
    }
}

/// What glibc's malloc really takes for an allocation of `n` bytes (16-byte
/// granularity, 8 bytes of header, 32 bytes at least).
pub fn malloc_size(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n + 8).div_ceil(16).max(2) * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tag::TagName;

    fn key(j: &str, node: Option<&str>) -> ThingKey {
        ThingKey {
            jid: BareJid::parse(j).unwrap(),
            node: NodeAddress::new(node, None, None).unwrap(),
        }
    }

    #[test]
    fn insert_find_replace_remove() {
        let mut names = Names::default();
        let sn = names.intern(&TagName::new("SN").unwrap());
        let v = names.intern(&TagName::new("V").unwrap());
        let tags = vec![
            (sn, TagValue::Str("123".into())),
            (v, TagValue::Num(Number::new(1.5, "V").unwrap())),
        ];
        let mut r = Records::default();
        let k1 = key("a@b", None);
        let k2 = key("a@b", Some("n1"));
        let id1 = r.insert(NewRecord {
            key: &k1,
            resource: Some("res"),
            owner: None,
            public: false,
            tags: &tags,
            digest: None,
        });
        let id2 = r.insert(NewRecord {
            key: &k2,
            resource: None,
            owner: Some(&BareJid::parse("o@b").unwrap()),
            public: true,
            tags: &tags[..1],
            digest: None,
        });
        assert_eq!(r.find(&k1), Some(id1));
        assert_eq!(r.find(&k2), Some(id2));
        assert_eq!(r.find(&key("a@b", Some("n2"))), None);
        let mut reversed = tags.clone();
        reversed.reverse();
        assert_eq!(r.find_by_tags(&reversed), vec![id1]);
        assert_eq!(r.view(id1).unwrap().resource(), Some("res"));
        assert_eq!(r.owner(id2).unwrap().as_str(), "o@b");
        let rec = r.to_record(id1, &names).unwrap();
        assert_eq!(rec.tags.len(), 2);
        r.replace(
            id1,
            NewRecord {
                key: &k1,
                resource: Some("r2"),
                owner: None,
                public: false,
                tags: &tags[1..],
                digest: None,
            },
        );
        assert_eq!(r.find_by_tags(&tags), vec![]);
        assert_eq!(r.find_by_tags(&tags[1..]), vec![id1]);
        r.remove(id2);
        assert_eq!(r.find(&k2), None);
        assert_eq!(r.len(), 1);
        assert_eq!(r.next_id(), id2.0);
    }
}
