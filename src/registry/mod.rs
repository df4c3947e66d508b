//! The Thing Registry: every operation of XEP-0347 on typed requests.
//!
//! [`Registry`] owns the records ([`crate::records`]), the indexes
//! ([`crate::index`]), what it knows of presence, the pending disowns and an
//! optional [`Store`]. Each method takes the sender's JID and a typed request and
//! returns a typed outcome (reply + notifications); it never sends anything, never
//! reads a clock (time is passed in as `now_ms`) and never starts a thread.
//!
//! Concurrency: one reader-writer lock. Searches share it; a write holds it for
//! the few microseconds of one record change (plus the store write). Every change
//! is written to the store first and applied in memory only if that succeeded,
//! so a failed store write changes nothing.
//!
//! Two unclaimed things with identical tags: a claim presenting those tags is
//! ambiguous, since the registry cannot tell which device the claimant holds, so
//! it fails with `item-not-found` like any other failed claim, and neither thing
//! is claimed. Things should carry a unique `KEY` (6.5); the spec's uniqueness of
//! claim data is the thing maker's promise, and refusing is the only answer that
//! never hands a device to the wrong owner.

pub mod pending;
pub mod presence;
pub mod types;
pub mod undelivered;

use std::collections::HashSet;
use std::sync::Arc;

use crate::config::Config;
use crate::digest::ClaimDigest;
use crate::index::Index;
use crate::index::names::NameId;
use crate::jid::{BareJid, Jid};
use crate::query::{Search, plan};
use crate::records::{IdTag, NewRecord, Records, ValueRef};
use crate::store::Store;
use crate::sync::{AtomicU64, Ordering, RwLock};
use crate::tag::{KEY, Tag, TagName, TagValue};
use crate::thing::{NodeAddress, ThingId, ThingKey, ThingRecord};
use pending::{Pending, PendingDisown};
use presence::{Presence, PresenceTable};
use smallvec::SmallVec;
pub use types::*;

/// Everything behind the lock.
struct State {
    records: Records,
    index: Index,
    /// False during a bulk load: records change, indexes are rebuilt at the end.
    indexing: bool,
    presence: PresenceTable,
    pending: Pending,
    undelivered: undelivered::UndeliveredTable,
    store: Option<Arc<dyn Store>>,
}

/// Counts and sizes, for operators and benchmarks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Things registered.
    pub things: usize,
    /// Things that are public and claimed (searchable).
    pub searchable: u64,
    /// Distinct tag names in use.
    pub tag_names: usize,
    /// Disowns waiting for an acknowledgement.
    pub pending_disowns: usize,
    /// Notifications kept for things that did not receive them.
    pub undelivered: usize,
    /// Approximate bytes held by the per-JID state: presence, pending disowns,
    /// undelivered notifications.
    pub state_bytes: usize,
    /// Approximate bytes held by records (slots, blobs, lookup tables).
    pub record_bytes: usize,
    /// Approximate bytes held by indexes (dictionaries, keys, bitmaps).
    pub index_bytes: usize,
}

/// One page of search results, borrowed from the registry (see
/// [`Registry::search_with`]).
pub struct PageView<'r> {
    records: &'r Records,
    index: &'r Index,
    page: plan::Page,
}

impl<'r> PageView<'r> {
    /// Whether more matches follow the page.
    pub fn more(&self) -> bool {
        self.page.more
    }

    /// How many things are on the page.
    pub fn len(&self) -> usize {
        self.page.ids.len()
    }

    /// Whether the page is empty.
    pub fn is_empty(&self) -> bool {
        self.page.ids.is_empty()
    }

    /// The things, in registry order.
    pub fn things(&self) -> impl Iterator<Item = FoundRef<'r>> + '_ {
        let (records, index) = (self.records, self.index);
        self.page.ids.iter().filter_map(move |&id| {
            let id = ThingId(id);
            Some(FoundRef {
                owner: records.owner(id)?,
                view: records.view(id)?,
                index,
            })
        })
    }
}

/// One thing of a [`PageView`]: borrowed owner, JID, node address and tags.
#[derive(Clone, Copy)]
pub struct FoundRef<'r> {
    owner: &'r BareJid,
    view: crate::records::RecordView<'r>,
    index: &'r Index,
}

impl<'r> FoundRef<'r> {
    /// The owner's bare JID.
    pub fn owner(&self) -> &'r BareJid {
        self.owner
    }

    /// The thing's bare JID.
    pub fn jid(&self) -> &'r str {
        self.view.jid()
    }

    /// `nodeId`, `sourceId`, `cacheType`, where set.
    pub fn node(&self) -> [Option<&'r str>; 3] {
        self.view.node()
    }

    /// The tags in record order, never `KEY`.
    pub fn tags(&self) -> impl Iterator<Item = (&'r TagName, ValueRef<'r>)> + 'r {
        let index = self.index;
        self.view
            .tags()
            .filter(move |(n, _)| !index.is_key(*n))
            .map(move |(n, v)| (index.names.name(n), v))
    }

    /// An owned copy.
    pub fn to_owned(&self) -> FoundThing {
        let mut tags = Vec::with_capacity(self.view.tag_count());
        tags.extend(self.tags().map(|(name, v)| Tag {
            name: name.clone(),
            value: owned(v),
        }));
        FoundThing {
            owner: self.owner.clone(),
            key: self.view.key(),
            tags,
        }
    }
}

/// The registry. `Send + Sync`: share it between threads behind an `Arc`.
pub struct Registry {
    config: Config,
    state: RwLock<State>,
    /// The same store as `State::store`, for [`Store::sync`] outside the lock.
    store: Option<Arc<dyn Store>>,
    next_pending: AtomicU64,
    /// Entries of `State::undelivered` (read without the lock: the common case
    /// of nothing undelivered costs no lock).
    undelivered_len: AtomicU64,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Checks a request's tags: no name twice, at most the configured number, and
/// (when `allow_list` is set) only names the registry stores.
fn check_tags(config: &Config, tags: &[Tag], allow_list: bool) -> Result<(), RegistryError> {
    let twice =
        |name: &TagName| RegistryError::BadRequest(format!("tag '{name}' is given more than once"));
    if tags.len() <= 16 {
        for (i, t) in tags.iter().enumerate() {
            if tags[..i].iter().any(|u| u.name == t.name) {
                return Err(twice(&t.name));
            }
        }
    } else {
        let mut seen: HashSet<&TagName> = HashSet::with_capacity(tags.len());
        if let Some(t) = tags.iter().find(|t| !seen.insert(&t.name)) {
            return Err(twice(&t.name));
        }
    }
    if allow_list {
        if let Some(t) = tags
            .iter()
            .find(|t| !t.value.is_empty_str() && !config.tag_allowed(&t.name))
        {
            return Err(RegistryError::BadRequest(format!(
                "tag '{}' is not accepted by this registry",
                t.name
            )));
        }
    }
    Ok(())
}

fn check_count(config: &Config, n: usize) -> Result<(), RegistryError> {
    if n > config.max_tags_per_thing {
        return Err(RegistryError::BadRequest(format!(
            "a thing may have at most {} tags ({n} given)",
            config.max_tags_per_thing
        )));
    }
    Ok(())
}

fn owned(v: ValueRef<'_>) -> TagValue {
    match v {
        // Most values fit inline; `new_inline` skips `new`'s checks.
        ValueRef::Str(s) if s.len() <= 23 => TagValue::Str(smol_str::SmolStr::new_inline(s)),
        ValueRef::Str(s) => TagValue::Str(s.into()),
        ValueRef::Num(n) => TagValue::Num(n),
    }
}

/// The page of a search without operators: every public claimed thing, in id
/// order like every other search.
fn all_searchable(searchable: &roaring::RoaringBitmap, offset: u32, limit: u32) -> plan::Page {
    let mut ids = Vec::with_capacity(limit.min(128) as usize);
    let mut more = false;
    // `select` jumps to the offset-th id without walking the ones before it.
    if let Some(first) = searchable.select(offset) {
        for id in searchable.range(first..) {
            if ids.len() == limit as usize {
                more = true;
                break;
            }
            ids.push(id);
        }
    }
    plan::Page { ids, more }
}

/// A random `KEY` value of `chars` URL-safe base64 characters.
fn random_key(chars: usize) -> Result<smol_str::SmolStr, RegistryError> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let chars = chars.clamp(22, crate::tag::MAX_VALUE_CHARS);
    let mut bytes = vec![0u8; chars];
    getrandom::fill(&mut bytes)
        .map_err(|e| RegistryError::Internal(format!("no randomness for KEY: {e}")))?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[(b & 63) as usize] as char)
        .collect::<String>()
        .into())
}

impl State {
    fn key_of(&self, id: ThingId) -> Option<ThingKey> {
        Some(self.records.view(id)?.key())
    }

    /// The resource the thing last used (kept across rewrites by its owner).
    fn resource_of(&self, id: ThingId) -> Option<Box<str>> {
        self.records
            .view(id)
            .and_then(|v| v.resource())
            .map(Into::into)
    }

    fn tags_of(&self, id: ThingId) -> Vec<IdTag> {
        self.records
            .view(id)
            .map(|v| v.tags().map(|(n, v)| (n, owned(v))).collect())
            .unwrap_or_default()
    }

    /// The things whose tag set is exactly `tags` (none when a name is unknown).
    fn find_by_tags<'t>(&self, tags: impl Iterator<Item = &'t Tag>) -> Vec<ThingId> {
        let mut id_tags = Vec::new();
        for t in tags {
            match self.index.names.get(t.name.as_str()) {
                Some(n) => id_tags.push((n, t.value.clone())),
                None => return Vec::new(),
            }
        }
        self.records.find_by_tags(&id_tags)
    }

    /// The claimant's own thing whose `KEY` was deleted at its claim and whose
    /// claimed tag set was exactly `tags` (`KEY` included): the idempotent
    /// re-claim of an app whose first reply was lost.
    fn find_reclaim(&self, claimant: &BareJid, tags: &[Tag]) -> Option<ThingId> {
        if !tags.iter().any(|t| t.name.is_key()) {
            return None;
        }
        let pairs = || tags.iter().map(|t| (t.name.as_str(), &t.value));
        self.find_by_tags(tags.iter().filter(|t| !t.name.is_key()))
            .into_iter()
            .find(|&id| {
                self.records.owner(id) == Some(claimant)
                    && self
                        .records
                        .view(id)
                        .and_then(|v| v.claim_digest())
                        .is_some_and(|d| d.matches(pairs()))
            })
    }

    fn intern(&mut self, tags: &[Tag]) -> Vec<IdTag> {
        tags.iter()
            .map(|t| (self.index.intern(&t.name), t.value.clone()))
            .collect()
    }

    /// Gives every name of `tags` an id, within the cap of distinct names
    /// (refused, with nothing stored changed, past it).
    fn intern_capped(&mut self, tags: &[Tag], cap: usize) -> Result<Vec<IdTag>, RegistryError> {
        let recycle = self.indexing;
        tags.iter()
            .map(|t| match self.index.intern_capped(&t.name, cap, recycle) {
                Some(n) => Ok((n, t.value.clone())),
                None => Err(RegistryError::ResourceConstraint(format!(
                    "the registry knows {cap} distinct tag names, its most; tag {} is new",
                    t.name
                ))),
            })
            .collect()
    }

    /// Writes a thing (new when `id` is `None`): store first, then records and
    /// indexes.
    fn write(&mut self, id: Option<ThingId>, rec: NewRecord<'_>) -> Result<ThingId, RegistryError> {
        let NewRecord {
            key,
            resource,
            owner,
            public,
            tags,
            digest,
        } = rec;
        if let Some(store) = self.store.as_ref() {
            let record = ThingRecord {
                key: key.clone(),
                last_resource: resource.map(Into::into),
                owner: owner.cloned(),
                public,
                tags: tags
                    .iter()
                    .map(|(n, v)| Tag {
                        name: self.index.names.name(*n).clone(),
                        value: v.clone(),
                    })
                    .collect(),
                claim_digest: digest.copied(),
            };
            store.put(&record)?;
        }
        let searchable = owner.is_some() && public;
        let id = match id {
            Some(id) => {
                self.reindex(
                    id,
                    tags,
                    searchable,
                    |records, rec| records.replace(id, rec),
                    rec,
                );
                id
            }
            None => {
                let id = self.records.insert(rec);
                if self.indexing {
                    if searchable {
                        if let Some(view) = self.records.view(id) {
                            self.index.add(id.0, view.tags(), true);
                        }
                    } else {
                        // No postings: only the name use counts, without
                        // decoding the record's values.
                        for (n, _) in tags {
                            self.index.names.add_use(*n);
                        }
                    }
                    self.index.set_searchable(id.0, searchable);
                }
                id
            }
        };
        Ok(id)
    }

    /// Replaces the record of `id` (through `replace`) and brings the index up
    /// to date. When the thing is searchable before and after, only the tags that
    /// changed touch the dictionaries (an `update` of two tags costs two removals
    /// and two insertions, not a re-index of the whole thing).
    fn reindex(
        &mut self,
        id: ThingId,
        new_tags: &[IdTag],
        searchable: bool,
        replace: impl FnOnce(&mut Records, NewRecord<'_>),
        rec: NewRecord<'_>,
    ) {
        if !self.indexing {
            replace(&mut self.records, rec);
            return;
        }
        let was = self.index.searchable.contains(id.0);
        if !was && !searchable {
            // In no posting before or after (unclaimed or private): with the
            // same tag names, not even a name use count changes.
            let same_names = self.records.view(id).is_some_and(|v| {
                v.tags()
                    .map(|(n, _)| n)
                    .eq(new_tags.iter().map(|(n, _)| *n))
            });
            if same_names {
                replace(&mut self.records, rec);
                return;
            }
        }
        // Which new tags the old record already had (then their postings stay).
        let mut kept: SmallVec<[bool; 16]> = SmallVec::from_elem(false, new_tags.len());
        if let Some(view) = self.records.view(id) {
            let same = |n: NameId, v: &ValueRef<'_>, t: &IdTag| {
                t.0 == n
                    && match (v, &t.1) {
                        (ValueRef::Str(a), TagValue::Str(b)) => *a == b.as_str(),
                        (ValueRef::Num(a), TagValue::Num(b)) => a == b,
                        _ => false,
                    }
            };
            let both = was && searchable;
            let gone =
                view.tags().filter(
                    |(n, v)| match new_tags.iter().position(|t| same(*n, v, t)) {
                        Some(i) if both && !kept[i] => {
                            kept[i] = true;
                            false
                        }
                        _ => true,
                    },
                );
            self.index.remove(id.0, gone, was);
        }
        replace(&mut self.records, rec);
        if let Some(view) = self.records.view(id) {
            let mut i = 0;
            let fresh = view.tags().filter(|_| {
                // The record keeps the request's tag order.
                let keep = !kept.get(i).copied().unwrap_or(false);
                i += 1;
                keep
            });
            self.index.add(id.0, fresh, searchable);
        }
        self.index.set_searchable(id.0, searchable);
    }

    /// Changes only owner and public flag (claim): store first, then the record
    /// and the searchable bitmap; tags and their indexes stay as they are.
    fn set_owner(
        &mut self,
        id: ThingId,
        owner: Option<&BareJid>,
        public: bool,
    ) -> Result<(), RegistryError> {
        if self.store.is_some() {
            let mut record = self
                .records
                .to_record(id, &self.index.names)
                .ok_or_else(|| RegistryError::Internal("record vanished".into()))?;
            record.owner = owner.cloned();
            record.public = public;
            if let Some(store) = self.store.as_ref() {
                store.put(&record)?;
            }
        }
        self.records.set_owner(id, owner, public);
        let searchable = owner.is_some() && public;
        if self.indexing && self.index.searchable.contains(id.0) != searchable {
            if let Some(view) = self.records.view(id) {
                // Postings only: the name uses do not change.
                let tags: SmallVec<[(NameId, ValueRef<'_>); 16]> = view.tags().collect();
                self.index.remove(id.0, tags.iter().copied(), !searchable);
                self.index.add(id.0, tags.into_iter(), searchable);
            }
            self.index.set_searchable(id.0, searchable);
        }
        Ok(())
    }

    fn delete(&mut self, id: ThingId, key: &ThingKey) -> Result<(), RegistryError> {
        if let Some(store) = self.store.as_ref() {
            store.delete(key)?;
        }
        if let Some(view) = self.records.view(id) {
            let was = self.index.searchable.contains(id.0);
            self.index.remove(id.0, view.tags(), was);
        }
        self.index.set_searchable(id.0, false);
        self.records.remove(id);
        Ok(())
    }

    /// Fills an empty registry with whole records and builds the indexes in
    /// one pass (import).
    fn restore(&mut self, loaded: &[ThingRecord]) -> Result<(), RegistryError> {
        self.records.reserve(loaded.len());
        for rec in loaded {
            self.insert_loaded(rec)?;
        }
        let State { records, index, .. } = self;
        index.bulk_build(records);
        Ok(())
    }

    /// Adds one whole record to the records, without indexing (start-up and
    /// import build the indexes once at the end).
    fn insert_loaded(&mut self, rec: &ThingRecord) -> Result<(), crate::store::StoreError> {
        if self.records.find(&rec.key).is_some() {
            return Err(crate::store::StoreError(format!(
                "two records for thing {}",
                rec.key.jid
            )));
        }
        let tags = self.intern(&rec.tags);
        self.records.insert(NewRecord {
            key: &rec.key,
            resource: rec.last_resource.as_deref(),
            owner: rec.owner.as_ref(),
            public: rec.public,
            tags: &tags,
            digest: rec.claim_digest.as_ref(),
        });
        Ok(())
    }

    fn route(&self, id: ThingId, key: &ThingKey) -> Jid {
        let res = self.records.view(id).and_then(|v| v.resource());
        self.presence.route(&key.jid, res)
    }
}

/// From this many claims on, [`Registry::claim_batch`] rebuilds the postings
/// once instead of moving them claim by claim.
pub const CLAIM_BATCH_REBUILD: usize = 4096;

impl Registry {
    /// An empty, ephemeral registry (nothing persists).
    pub fn new(config: Config) -> Self {
        Registry {
            config,
            state: RwLock::new(State {
                records: Records::default(),
                index: Index::default(),
                indexing: true,
                presence: PresenceTable::default(),
                pending: Pending::default(),
                undelivered: Default::default(),
                store: None,
            }),
            store: None,
            next_pending: AtomicU64::new(1),
            undelivered_len: AtomicU64::new(0),
        }
    }

    /// A registry in the sled database at `path` (created if missing), with
    /// every change flushed to disk before it is acknowledged. See
    /// [`Registry::open_with`] for the faster group-commit mode.
    pub fn open(path: impl AsRef<std::path::Path>, config: Config) -> Result<Self, RegistryError> {
        Registry::open_with(path, config, crate::store::sled::Durability::Flush)
    }

    /// [`Registry::open`] with a chosen durability mode.
    pub fn open_with(
        path: impl AsRef<std::path::Path>,
        config: Config,
        durability: crate::store::sled::Durability,
    ) -> Result<Self, RegistryError> {
        let store = crate::store::sled::SledStore::open(path, durability)?;
        Registry::with_store(config, Box::new(store))
    }

    /// Forces every change so far to disk, whatever the durability mode (before
    /// a planned shutdown in group-commit mode). A no-op without a store.
    pub fn flush(&self) -> Result<(), RegistryError> {
        match &self.store {
            Some(s) => Ok(s.flush()?),
            None => Ok(()),
        }
    }

    /// Writes every record (`KEY` included) as JSON lines; returns how many.
    pub fn export_jsonl(&self, out: impl std::io::Write) -> Result<u64, RegistryError> {
        let records = self.export();
        Ok(crate::store::export::write_jsonl(&records, out)?)
    }

    /// Loads a JSON-lines export into this registry, which must be empty: every
    /// record is written to the store, flushed, then indexed in one pass.
    /// Returns how many things were imported. Nothing changes on error.
    pub fn import_jsonl(&self, input: impl std::io::BufRead) -> Result<u64, RegistryError> {
        let records = crate::store::export::read_jsonl(input)?;
        let mut st = self.state.write();
        if !st.records.is_empty() {
            return Err(RegistryError::BadRequest(
                "import needs an empty registry".into(),
            ));
        }
        let mut seen = HashSet::new();
        for r in &records {
            check_tags(&self.config, &r.tags, false)?;
            if !seen.insert(&r.key) {
                return Err(RegistryError::BadRequest(format!(
                    "the import holds thing {} twice",
                    r.key.jid
                )));
            }
        }
        if let Some(store) = &self.store {
            for r in &records {
                if let Err(e) = store.put(r) {
                    for done in &records {
                        let _ = store.delete(&done.key);
                    }
                    return Err(e.into());
                }
            }
            if let Err(e) = store.flush() {
                for done in &records {
                    let _ = store.delete(&done.key);
                }
                let _ = store.flush();
                return Err(e.into());
            }
        }
        st.restore(&records)?;
        Ok(records.len() as u64)
    }

    /// A registry backed by `store`: loads every record from it, rebuilds the
    /// indexes in one pass, and writes every later change through it.
    pub fn with_store(config: Config, store: Box<dyn Store>) -> Result<Self, RegistryError> {
        let store: Arc<dyn Store> = Arc::from(store);
        let mut reg = Registry::new(config);
        reg.store = Some(store.clone());
        {
            let mut st = reg.state.write();
            store.load_each(&mut |rec| st.insert_loaded(&rec))?;
            let State { records, index, .. } = &mut *st;
            index.bulk_build(records);
            let cap = reg.config.max_undelivered;
            for u in store.load_undelivered()? {
                if let Some(gone) = st.undelivered.put(u, cap) {
                    store.delete_undelivered(&gone)?;
                }
            }
            reg.undelivered_len
                .store(st.undelivered.len() as u64, Ordering::Relaxed);
            st.store = Some(store);
        }
        Ok(reg)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// `register` (3.6-3.8) from `from`. Empty string values are dropped (a tag
    /// with an empty value is the same as no tag, as in `update`).
    pub fn register(&self, from: &Jid, req: Register) -> Result<RegisterOutcome, RegistryError> {
        let out = {
            let mut st = self.state.write();
            self.register_locked(&mut st, from, req)
        };
        self.synced(out)
    }

    /// [`Registry::synced`] for a batch: one store sync for all of its
    /// outcomes; if it fails, every success becomes that storage error.
    fn synced_batch<T>(&self, out: Vec<Result<T, RegistryError>>) -> Vec<Result<T, RegistryError>> {
        match self.store.as_ref().map(|s| s.sync()) {
            Some(Err(e)) => out
                .into_iter()
                .map(|o| o.and(Err(RegistryError::Storage(e.clone()))))
                .collect(),
            _ => out,
        }
    }

    /// After a write, outside the lock: makes it durable before it is
    /// acknowledged (see [`Store::sync`]). A failed sync turns the outcome into
    /// a storage error: the change is in memory and may or may not be on disk.
    fn synced<T>(&self, out: Result<T, RegistryError>) -> Result<T, RegistryError> {
        let v = out?;
        if let Some(store) = &self.store {
            store.sync()?;
        }
        Ok(v)
    }

    /// Many `register`s under one lock, each with exactly the outcome a separate
    /// call would have. When the registry is empty at the start (initial load,
    /// import) the indexes are built once at the end by sorting, which is several
    /// times faster than indexing thing by thing; searches wait for the batch.
    pub fn register_batch(
        &self,
        requests: Vec<(Jid, Register)>,
    ) -> Vec<Result<RegisterOutcome, RegistryError>> {
        let mut st = self.state.write();
        let bulk = st.records.is_empty() && st.index.searchable.is_empty();
        st.indexing = !bulk;
        st.records.reserve(requests.len());
        let out: Vec<Result<RegisterOutcome, RegistryError>> = requests
            .into_iter()
            .map(|(from, req)| self.register_locked(&mut st, &from, req))
            .collect();
        if bulk {
            let State { records, index, .. } = &mut *st;
            index.bulk_build(records);
            st.indexing = true;
        }
        drop(st);
        self.synced_batch(out)
    }

    fn register_locked(
        &self,
        st: &mut State,
        from: &Jid,
        req: Register,
    ) -> Result<RegisterOutcome, RegistryError> {
        check_tags(&self.config, &req.tags, true)?;
        let tags: Vec<Tag> = req
            .tags
            .into_iter()
            .filter(|t| !t.value.is_empty_str())
            .collect();
        check_count(&self.config, tags.len())?;
        let key = ThingKey {
            jid: from.bare().clone(),
            node: req.node,
        };
        let existing = st.records.find(&key);
        if let Some(id) = existing {
            if let Some(owner) = st.records.owner(id) {
                return Ok(RegisterOutcome::AlreadyClaimed {
                    owner: owner.clone(),
                    public: st.records.is_public(id),
                });
            }
        } else if st.records.len() >= self.config.max_things as usize
            || st.records.next_id() >= ThingId::LIMIT
        {
            return Err(RegistryError::ResourceConstraint(
                "the registry is full".into(),
            ));
        }
        let tags = st.intern_capped(&tags, self.config.max_tag_names)?;
        let owner = req.self_owned.then_some(&key.jid);
        st.write(
            existing,
            NewRecord {
                key: &key,
                resource: from.resource(),
                owner,
                public: req.self_owned,
                tags: &tags,
                digest: None,
            },
        )?;
        Ok(RegisterOutcome::Registered)
    }

    /// `mine` (3.9) from `from`: claims the one unclaimed thing whose tags are
    /// exactly `req.tags`, or re-claims the claimant's own thing with those tags.
    pub fn claim(&self, from: &Jid, req: Claim) -> Result<Claimed, RegistryError> {
        let out = {
            let mut st = self.state.write();
            self.claim_locked(&mut st, from, req)
        };
        self.synced(out)
    }

    /// Many `claim`s under one lock, each with exactly the outcome (and
    /// notification) a separate call would have had, in order. A batch of at
    /// least [`CLAIM_BATCH_REBUILD`] claims (bulk loads, migrations) moves no
    /// posting one by one: the postings are rebuilt once at the end, which at a
    /// million things is several times faster. One store sync for the batch.
    ///
    /// The requests may be generated lazily (a bulk load need not hold them all);
    /// the batch counts as big by the iterator's lower size bound.
    pub fn claim_batch(
        &self,
        requests: impl IntoIterator<Item = (Jid, Claim)>,
    ) -> Vec<Result<Claimed, RegistryError>> {
        let requests = requests.into_iter();
        let mut st = self.state.write();
        let bulk = requests.size_hint().0 >= CLAIM_BATCH_REBUILD && st.indexing;
        if bulk {
            st.indexing = false;
        }
        let out: Vec<Result<Claimed, RegistryError>> = requests
            .map(|(from, req)| self.claim_locked(&mut st, &from, req))
            .collect();
        if bulk {
            let State { records, index, .. } = &mut *st;
            index.rebuild_postings(records);
            st.indexing = true;
        }
        drop(st);
        self.synced_batch(out)
    }

    fn claim_locked(
        &self,
        st: &mut State,
        from: &Jid,
        req: Claim,
    ) -> Result<Claimed, RegistryError> {
        check_tags(&self.config, &req.tags, false)?;
        let tags: Vec<Tag> = req
            .tags
            .into_iter()
            .filter(|t| !t.value.is_empty_str())
            .collect();
        if tags.is_empty() {
            return Err(RegistryError::BadRequest(
                "a claim needs at least one tag".into(),
            ));
        }
        let claimant = from.bare();
        let candidates = st.find_by_tags(tags.iter());
        let mine = candidates
            .iter()
            .copied()
            .find(|&id| st.records.owner(id) == Some(claimant))
            .or_else(|| st.find_reclaim(claimant, &tags));
        let (id, fresh) = match mine {
            Some(id) => (id, false),
            None => {
                let mut free = candidates
                    .iter()
                    .copied()
                    .filter(|&id| st.records.owner(id).is_none());
                match (free.next(), free.next()) {
                    (Some(id), None) => (id, true),
                    _ => return Err(RegistryError::ItemNotFound),
                }
            }
        };
        let key = st.key_of(id).ok_or(RegistryError::ItemNotFound)?;
        let has_key = tags.iter().any(|t| t.name.is_key());
        if fresh && has_key && self.config.delete_key_on_claim {
            // Spec 6.5: the KEY goes; a salted digest of the claimed tags stays.
            let digest = ClaimDigest::new_salted(&tags).map_err(RegistryError::Internal)?;
            let kept: Vec<IdTag> = st
                .tags_of(id)
                .into_iter()
                .filter(|(n, _)| !st.index.is_key(*n))
                .collect();
            let resource = st.resource_of(id);
            st.write(
                Some(id),
                NewRecord {
                    key: &key,
                    resource: resource.as_deref(),
                    owner: Some(claimant),
                    public: req.public,
                    tags: &kept,
                    digest: Some(&digest),
                },
            )?;
        } else {
            st.set_owner(id, Some(claimant), req.public)?;
        }
        let notification = Notification {
            to: st.route(id, &key),
            node: key.node.clone(),
            kind: NotificationKind::Claimed {
                owner: claimant.clone(),
                public: req.public,
            },
        };
        Ok(Claimed {
            thing: key,
            public: req.public,
            notification,
        })
    }

    /// `remove` (3.10) from the owner: deletes the thing.
    pub fn remove(&self, from: &Jid, thing: &ThingKey) -> Result<Removed, RegistryError> {
        self.synced(self.remove_unsynced(from, thing))
    }

    fn remove_unsynced(&self, from: &Jid, thing: &ThingKey) -> Result<Removed, RegistryError> {
        let mut st = self.state.write();
        let id = st.records.find(thing).ok_or(RegistryError::ItemNotFound)?;
        if st.records.owner(id) != Some(from.bare()) {
            return Err(RegistryError::ItemNotFound);
        }
        let to = st.route(id, thing);
        st.delete(id, thing)?;
        Ok(Removed {
            notification: Notification {
                to,
                node: thing.node.clone(),
                kind: NotificationKind::Removed,
            },
        })
    }

    /// `update` by the thing itself (3.13) or by its owner (3.14, `jid` set).
    pub fn update(&self, from: &Jid, req: Update) -> Result<UpdateOutcome, RegistryError> {
        self.synced(self.update_unsynced(from, req))
    }

    fn update_unsynced(&self, from: &Jid, req: Update) -> Result<UpdateOutcome, RegistryError> {
        check_tags(&self.config, &req.tags, true)?;
        let by_owner = req.jid.as_ref().is_some_and(|j| j != from.bare());
        let key = ThingKey {
            jid: req.jid.unwrap_or_else(|| from.bare().clone()),
            node: req.node,
        };
        let mut st = self.state.write();
        let id = st.records.find(&key).ok_or(RegistryError::ItemNotFound)?;
        let owner = st.records.owner(id).cloned();
        match (&owner, by_owner) {
            (Some(o), true) if o == from.bare() => {}
            (_, true) => return Err(RegistryError::ItemNotFound),
            (None, false) => return Ok(UpdateOutcome::Disowned),
            (Some(_), false) => {}
        }
        let mut tags = st.tags_of(id);
        for t in &req.tags {
            let existing = st.index.names.get(t.name.as_str());
            let pos = existing.and_then(|n| tags.iter().position(|(m, _)| *m == n));
            match (pos, t.value.is_empty_str()) {
                (Some(p), true) => {
                    tags.remove(p);
                }
                (None, true) => {}
                (Some(p), false) => tags[p].1 = t.value.clone(),
                (None, false) => {
                    let n = st
                        .intern_capped(std::slice::from_ref(t), self.config.max_tag_names)?
                        .remove(0)
                        .0;
                    tags.push((n, t.value.clone()));
                }
            }
        }
        check_count(&self.config, tags.len())?;
        let resource: Option<Box<str>> = if by_owner {
            st.resource_of(id)
        } else {
            from.resource().map(Into::into)
        };
        let public = st.records.is_public(id);
        // Same owner: the claim digest stays.
        let digest = st.records.view(id).and_then(|v| v.claim_digest());
        st.write(
            Some(id),
            NewRecord {
                key: &key,
                resource: resource.as_deref(),
                owner: owner.as_ref(),
                public,
                tags: &tags,
                digest: digest.as_ref(),
            },
        )?;
        Ok(UpdateOutcome::Updated)
    }

    /// `unregister` (3.16) from the thing: forgets it if it is there. Always
    /// succeeds unless the store fails.
    pub fn unregister(&self, from: &Jid, node: NodeAddress) -> Result<(), RegistryError> {
        self.synced(self.unregister_unsynced(from, node))
    }

    fn unregister_unsynced(&self, from: &Jid, node: NodeAddress) -> Result<(), RegistryError> {
        let key = ThingKey {
            jid: from.bare().clone(),
            node,
        };
        let mut st = self.state.write();
        if let Some(id) = st.records.find(&key) {
            st.delete(id, &key)?;
        }
        Ok(())
    }

    /// `search` (3.15): public claimed things matching every operator (all of
    /// them when there is none).
    pub fn search(&self, req: &Search) -> Result<SearchResult, RegistryError> {
        self.search_with(req, |page| SearchResult {
            things: page.things().map(|t| t.to_owned()).collect(),
            more: page.more(),
        })
    }

    /// `search` without copying: `f` receives the page as borrowed views of the
    /// records (what a wire layer needs to write `<found/>` without allocating)
    /// and its result is returned. The registry's read lock is held while `f`
    /// runs: `f` must not call back into the registry.
    pub fn search_with<R>(
        &self,
        req: &Search,
        f: impl FnOnce(&PageView<'_>) -> R,
    ) -> Result<R, RegistryError> {
        if req.operators.len() > self.config.max_search_operators {
            return Err(RegistryError::BadRequest(format!(
                "a search may have at most {} operators",
                self.config.max_search_operators
            )));
        }
        let limit = match req.max_count {
            Some(0) => {
                return Err(RegistryError::BadRequest(
                    "maxCount must be positive".into(),
                ));
            }
            Some(n) => n.min(self.config.max_search_results),
            None => self.config.max_search_results,
        };
        let st = self.state.read();
        let page = if req.operators.is_empty() {
            all_searchable(&st.index.searchable, req.offset, limit)
        } else {
            plan::execute(&st.index, &st.records, &req.operators, req.offset, limit)
        };
        Ok(f(&PageView {
            records: &st.records,
            index: &st.index,
            page,
        }))
    }

    /// `disown` (3.17) from the owner. On success the disown is pending: send the
    /// notification, then call [`Registry::resolve_disown`] with the thing's answer
    /// or [`Registry::expire`] when the deadline passes.
    pub fn disown(
        &self,
        from: &Jid,
        thing: &ThingKey,
        now_ms: u64,
    ) -> Result<DisownStarted, RegistryError> {
        let mut st = self.state.write();
        let id = st.records.find(thing).ok_or(RegistryError::ItemNotFound)?;
        if st.records.owner(id) != Some(from.bare()) {
            return Err(RegistryError::ItemNotFound);
        }
        if st.presence.get(&thing.jid) == Presence::Offline {
            return Err(RegistryError::NotAllowed);
        }
        if st.pending.len() >= self.config.max_pending_disowns {
            return Err(RegistryError::ResourceConstraint(
                "too many disowns are waiting".into(),
            ));
        }
        let pending = PendingId(self.next_pending.fetch_add(1, Ordering::Relaxed));
        let deadline_ms = now_ms.saturating_add(self.config.disown_timeout_ms);
        st.pending.insert(
            pending,
            PendingDisown {
                thing: thing.clone(),
                owner: from.bare().clone(),
                deadline_ms,
            },
        );
        Ok(DisownStarted {
            pending,
            deadline_ms,
            notification: Notification {
                to: st.route(id, thing),
                node: thing.node.clone(),
                kind: NotificationKind::Disowned,
            },
        })
    }

    /// The thing answered a `disowned` notification: `acknowledged` is true for a
    /// `result`, false for an `error`. Returns `None` for an unknown (or already
    /// expired) pending id. On acknowledgement within the deadline, and if the
    /// owner still owns the thing, all its tags are replaced by a random `KEY` and
    /// it is unclaimed.
    pub fn resolve_disown(
        &self,
        pending: PendingId,
        acknowledged: bool,
        now_ms: u64,
    ) -> Option<DisownResolution> {
        let mut st = self.state.write();
        let p = st.pending.take(pending)?;
        let result = if !acknowledged || now_ms >= p.deadline_ms {
            Err(RegistryError::NotAllowed)
        } else {
            self.finish_disown(&mut st, &p)
        };
        drop(st);
        let result = self.synced(result);
        Some(DisownResolution {
            pending,
            owner: p.owner,
            result,
        })
    }

    fn finish_disown(&self, st: &mut State, p: &PendingDisown) -> Result<(), RegistryError> {
        let id = st.records.find(&p.thing).ok_or(RegistryError::NotAllowed)?;
        if st.records.owner(id) != Some(&p.owner) {
            return Err(RegistryError::NotAllowed);
        }
        let key_name = TagName::new(KEY).map_err(RegistryError::from)?;
        let n = st.index.intern(&key_name);
        let tags = vec![(n, TagValue::Str(random_key(self.config.disown_key_chars)?))];
        let resource = st.resource_of(id);
        st.write(
            Some(id),
            NewRecord {
                key: &p.thing,
                resource: resource.as_deref(),
                owner: None,
                public: false,
                tags: &tags,
                digest: None,
            },
        )?;
        Ok(())
    }

    /// The disowns waiting for `thing`'s acknowledgement, oldest first. A host
    /// that takes a new `register` or `unregister` from the thing as its
    /// acknowledgement (apps re-register before they answer `disowned`) resolves
    /// these first.
    pub fn pending_disowns_of(&self, thing: &ThingKey) -> SmallVec<[PendingId; 1]> {
        let st = self.state.read();
        if st.pending.is_empty() {
            return SmallVec::new();
        }
        st.pending.of(thing)
    }

    /// Fails every pending disown whose deadline is at or before `now_ms`.
    pub fn expire(&self, now_ms: u64) -> Vec<DisownResolution> {
        let mut st = self.state.write();
        st.pending
            .expire(now_ms)
            .into_iter()
            .map(|(pending, p)| DisownResolution {
                pending,
                owner: p.owner,
                result: Err(RegistryError::NotAllowed),
            })
            .collect()
    }

    /// The earliest pending deadline, for the host's timer.
    pub fn next_deadline(&self) -> Option<u64> {
        self.state.read().pending.next_deadline()
    }

    /// The host reports that `jid` became available or unavailable.
    pub fn presence(&self, jid: &Jid, available: bool) {
        self.state
            .write()
            .presence
            .set(jid, available, self.config.max_tracked_presences);
    }

    /// Whether the host said `jid` has no resource available (not merely
    /// unknown).
    pub fn is_offline(&self, jid: &BareJid) -> bool {
        self.state.read().presence.get(jid) == presence::Presence::Offline
    }

    /// Keeps a `claimed` or `removed` notification `thing` did not receive
    /// (it was offline, answered with an error, or not at all), after
    /// `attempts` sends, to deliver it again when the thing is next seen
    /// ([`Registry::take_undelivered`]); persisted with the registry. After
    /// [`Config::max_notification_attempts`] sends it is dropped instead.
    pub fn keep_undelivered(
        &self,
        thing: &ThingKey,
        kind: crate::store::UndeliveredKind,
        attempts: u8,
    ) -> Result<(), RegistryError> {
        let out = {
            let mut st = self.state.write();
            let give_up = attempts >= self.config.max_notification_attempts;
            let result = if give_up {
                st.undelivered.remove(thing);
                match st.store.as_ref() {
                    Some(store) => store.delete_undelivered(thing),
                    None => Ok(()),
                }
            } else {
                let u = crate::store::Undelivered {
                    thing: thing.clone(),
                    kind,
                    attempts,
                };
                let stored = match st.store.as_ref() {
                    Some(store) => store.put_undelivered(&u),
                    None => Ok(()),
                };
                stored.and_then(
                    |()| match st.undelivered.put(u, self.config.max_undelivered) {
                        Some(gone) => match st.store.as_ref() {
                            Some(store) => store.delete_undelivered(&gone),
                            None => Ok(()),
                        },
                        None => Ok(()),
                    },
                )
            };
            self.undelivered_len
                .store(st.undelivered.len() as u64, Ordering::Relaxed);
            result.map_err(RegistryError::from)
        };
        self.synced(out)
    }

    /// The notifications kept for the things of `seen`'s bare JID, as they
    /// should be delivered now to `seen` (a full JID the thing uses), with the
    /// sends so far; they are no longer kept. A `claimed` carries the thing's
    /// owner and public flag of now, and is dropped if the thing is no longer
    /// claimed; a `removed` is dropped if the thing is registered again.
    pub fn take_undelivered(&self, seen: &Jid) -> Vec<(Notification, u8)> {
        if self.undelivered_len.load(Ordering::Relaxed) == 0
            || !self.state.read().undelivered.has(seen.bare())
        {
            return Vec::new();
        }
        let (out, result) = {
            let mut st = self.state.write();
            let taken = st.undelivered.take(seen.bare());
            self.undelivered_len
                .store(st.undelivered.len() as u64, Ordering::Relaxed);
            let mut result = Ok(());
            let mut out = Vec::with_capacity(taken.len());
            for u in taken {
                if let Some(store) = st.store.as_ref() {
                    if let Err(e) = store.delete_undelivered(&u.thing) {
                        result = Err(RegistryError::from(e));
                    }
                }
                let id = st.records.find(&u.thing);
                let kind = match (u.kind, id) {
                    (crate::store::UndeliveredKind::Claimed, Some(id)) => {
                        match st.records.owner(id) {
                            Some(owner) => NotificationKind::Claimed {
                                owner: owner.clone(),
                                public: st.records.is_public(id),
                            },
                            None => continue,
                        }
                    }
                    (crate::store::UndeliveredKind::Removed, None) => NotificationKind::Removed,
                    _ => continue,
                };
                out.push((
                    Notification {
                        to: seen.clone(),
                        node: u.thing.node,
                        kind,
                    },
                    u.attempts,
                ));
            }
            (out, result)
        };
        // A failed delete only means the notification may come once more.
        let _ = self.synced(result);
        out
    }

    /// The host no longer learns `jid`'s presence (it unsubscribed from the
    /// registry): its presence becomes unknown, so notifications go to its last
    /// known full JID again instead of a disown failing at once as "offline".
    pub fn forget_presence(&self, jid: &BareJid) {
        self.state.write().presence.forget(jid);
    }

    /// A full copy of one thing's record (`KEY` included): for the owner's tools,
    /// export and tests, never for search results.
    pub fn get(&self, key: &ThingKey) -> Option<ThingRecord> {
        let st = self.state.read();
        let id = st.records.find(key)?;
        st.records.to_record(id, &st.index.names)
    }

    /// Every record, in id order.
    pub fn export(&self) -> Vec<ThingRecord> {
        let st = self.state.read();
        st.records
            .ids()
            .filter_map(|id| st.records.to_record(id, &st.index.names))
            .collect()
    }

    /// Number of things.
    pub fn len(&self) -> usize {
        self.state.read().records.len()
    }

    /// Whether the registry holds no thing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts and sizes.
    pub fn stats(&self) -> Stats {
        let st = self.state.read();
        Stats {
            things: st.records.len(),
            searchable: st.index.searchable.len(),
            tag_names: st.index.names.in_use(),
            pending_disowns: st.pending.len(),
            undelivered: st.undelivered.len(),
            state_bytes: st.presence.heap_bytes()
                + st.pending.heap_bytes()
                + st.undelivered.heap_bytes(),
            record_bytes: st.records.heap_bytes(),
            index_bytes: st.index.heap_bytes(),
        }
    }

    /// Verifies that the indexes equal a rebuild from the records.
    pub fn check_consistency(&self) -> Result<(), String> {
        let st = self.state.read();
        st.index.check_against(&st.records)
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Registry>();
}
