//! The durable storage layer (`src/store`) through the `Registry` API.
//!
//! * `restart_matches_memory_registry`: one long deterministic random sequence of
//!   operations (register, self-owned and behind concentrators; claim public and
//!   private; updates by thing and owner, deleting tags with empty values;
//!   remove; unregister; disown acknowledged, refused, late and expired;
//!   presence) applied to a sled registry and to an in-memory one, every
//!   outcome compared. Every few hundred operations the sled registry is dropped
//!   and reopened from its directory (once in group-commit mode), and every
//!   record, searches over all 17 operators and the index consistency are
//!   compared. Pending disowns do not survive a restart; the generated `KEY` of
//!   a disowned thing differs between the two registries, so it is compared by
//!   shape (one `KEY`, of the configured length) rather than by value.
//! * `damaged_files_never_panic_nor_invent_records`: flipped bytes, truncated and
//!   deleted files in copies of a database: opening fails or yields only records
//!   that were once written, never a panic.
//! * `damaged_value_names_the_thing`, `wrong_format_marker_names_both_formats`,
//!   `missing_format_marker_is_refused`: damage planted with the `sled` crate.
//! * `second_open_is_refused_as_in_use`; `drop_then_reopen_never_fails_in_use`
//!   (every other test reopens through `reopen`, which waits out sled's
//!   asynchronous lock release).
//! * `export_import_round_trip` and `import_errors_change_nothing`.
//! * `failed_store_write_changes_nothing`: `MemoryStore::fail_writes`.
//! * `killed_process_keeps_acknowledged_writes` (and its group-commit twin): a
//!   child process (this test binary re-run, `crash_child`) writes and exits
//!   without closing the registry; the parent reopens the database.
//! * `*_survives_restart`: input the registry accepts (resources with `/`, JIDs
//!   and tag names whose normalised form differs in length or re-normalises
//!   differently) must come back unchanged from the store and from an export.
//! * `import_failing_*`: an import against a store whose put or flush fails
//!   leaves registry and store empty. `odd_paths_are_errors_not_panics`.
//!
//! The defects this suite first found (stored values re-checked with input
//! rules that normalisation changes, resources with '/', import leftovers after
//! a failed flush, sled's lock released late after a drop, a damaged database
//! reading as a new empty one) are fixed; their tests guard them.

use std::collections::BTreeSet;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use iotdisco::query::{Mask, NumRange, Operator, StrRange};
use iotdisco::store::Store;
use iotdisco::store::memory::MemoryStore;
use iotdisco::store::record::{self, FORMAT};
use iotdisco::store::sled::Durability;
use iotdisco::tag::{KEY, Number};
use iotdisco::{
    BareJid, Claim, Config, FoundThing, Jid, NodeAddress, PendingId, Register, RegisterOutcome,
    Registry, RegistryError, Search, Tag, TagName, TagValue, ThingKey, ThingRecord, Update,
    UpdateOutcome,
};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// SplitMix64: a tiny deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

fn jid(s: &str) -> Jid {
    Jid::parse(s).unwrap()
}

fn bare(s: &str) -> BareJid {
    BareJid::parse(s).unwrap()
}

fn s(name: &str, value: &str) -> Tag {
    Tag::str(name, value).unwrap()
}

fn n(name: &str, value: f64) -> Tag {
    Tag::num(name, value).unwrap()
}

fn name(x: &str) -> TagName {
    TagName::new(x).unwrap()
}

fn num(x: f64) -> Number {
    Number::new(x, "X").unwrap()
}

fn config() -> Config {
    Config {
        // Every search returns all its matches on one page: search order is
        // registry (id) order, which a restart changes, so pages are compared
        // as sets.
        max_search_results: 100_000,
        ..Config::default()
    }
}

const KEY_CHARS: usize = 43;

fn by_key(mut v: Vec<ThingRecord>) -> Vec<ThingRecord> {
    v.sort_by(|a, b| a.key.cmp(&b.key));
    v
}

fn is_generated_key(t: &Tag) -> bool {
    t.name.is_key()
        && matches!(&t.value, TagValue::Str(v) if v.chars().count() == KEY_CHARS
            && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
}

/// Records sorted by key, with generated `KEY` values and claim digests
/// (random, so different in the two registries) replaced by placeholders. The
/// generator's own `KEY` values are short, so they never look generated.
fn normalized(records: Vec<ThingRecord>) -> Vec<ThingRecord> {
    let placeholder = TagValue::string("<generated>", KEY).unwrap();
    let digest = iotdisco::ClaimDigest::from_bytes(&[0; iotdisco::digest::DIGEST_BYTES]);
    let mut v = by_key(records);
    for r in &mut v {
        if r.claim_digest.is_some() {
            r.claim_digest = digest;
        }
        assert!(
            r.tags.iter().filter(|t| t.name.is_key()).count() <= 1,
            "two KEY tags: {r:?}"
        );
        for t in &mut r.tags {
            if is_generated_key(t) {
                t.value = placeholder.clone();
            }
        }
    }
    v
}

fn found(reg: &Registry, search: &Search) -> Result<(Vec<FoundThing>, bool), RegistryError> {
    reg.search(search).map(|r| {
        let mut things = r.things;
        things.sort_by(|a, b| a.key.cmp(&b.key));
        (things, r.more)
    })
}

/// Searches using each of the 17 operators over several tag names (numeric,
/// string, mixed, unknown), plus a few conjunctions.
fn searches() -> Vec<Search> {
    let mut out = Vec::new();
    let sr = |a: &str, ai: bool, b: &str, bi: bool| StrRange {
        min: a.into(),
        min_included: ai,
        max: b.into(),
        max_included: bi,
    };
    let nr = |a: f64, ai: bool, b: f64, bi: bool| NumRange {
        min: num(a),
        min_included: ai,
        max: num(b),
        max_included: bi,
    };
    for t in ["SN", "MAN", "MODEL", "V", "ROOM", "LAT", "STRASSE", "NOPE"] {
        let t = name(t);
        let ops = vec![
            Operator::StrEq(t.clone(), "a".into()),
            Operator::StrEq(t.clone(), "www.ktc.se".into()),
            Operator::StrNEq(t.clone(), "ab".into()),
            Operator::StrGt(t.clone(), "ab".into()),
            Operator::StrGtEq(t.clone(), "ab".into()),
            Operator::StrLt(t.clone(), "b".into()),
            Operator::StrLtEq(t.clone(), "b".into()),
            Operator::StrRange(t.clone(), sr("1", true, "b", true)),
            Operator::StrRange(t.clone(), sr("a", false, "zz", false)),
            Operator::StrNRange(t.clone(), sr("a", true, "b", false)),
            Operator::StrMask(t.clone(), Mask::new("*b*", Some("*")).unwrap()),
            Operator::StrMask(t.clone(), Mask::new("www.*", Some("*")).unwrap()),
            Operator::StrMask(t.clone(), Mask::new("%", None).unwrap()),
            Operator::NumEq(t.clone(), num(1.2)),
            Operator::NumEq(t.clone(), num(-0.0)),
            Operator::NumNEq(t.clone(), num(1.0)),
            Operator::NumGt(t.clone(), num(1.0)),
            Operator::NumGtEq(t.clone(), num(1.0)),
            Operator::NumLt(t.clone(), num(10.0)),
            Operator::NumLtEq(t.clone(), num(10.0)),
            Operator::NumRange(t.clone(), nr(-1.5, true, 100.0, true)),
            Operator::NumRange(t.clone(), nr(0.0, false, f64::MAX, false)),
            Operator::NumNRange(t.clone(), nr(1.0, true, 3.5, false)),
        ];
        out.extend(ops.into_iter().map(|o| Search::new(vec![o])));
    }
    // Only equality on KEY: generated KEYs differ between the registries.
    out.push(Search::new(vec![Operator::StrEq(name("KEY"), "k3".into())]));
    out.push(Search::new(vec![
        Operator::NumGtEq(name("SN"), num(0.0)),
        Operator::StrNEq(name("MAN"), "a".into()),
    ]));
    out.push(Search::new(vec![
        Operator::StrMask(name("MODEL"), Mask::new("*", Some("*")).unwrap()),
        Operator::NumNRange(name("V"), nr(2.0, true, 9.0, true)),
    ]));
    out.push(Search::new(vec![
        Operator::StrLt(name("ROOM"), "zz".into()),
        Operator::NumLt(name("ROOM"), num(1e20)),
    ]));
    out
}

/// sled releases its file lock from a background thread a moment after the
/// last handle is dropped (spacejam/sled#1234), so opening a directory right
/// after closing it can fail as "in use". These helpers wait that out (a
/// bounded retry, no timing assertion); `drop_then_reopen_never_fails_in_use`
/// checks the registry itself.
fn retry_locked<T, E: std::fmt::Display>(mut open: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    for _ in 0..500 {
        match open() {
            Err(e) if e.to_string().contains("could not acquire lock") => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
    open()
}

fn reopen_with(
    path: impl AsRef<Path>,
    config: Config,
    durability: Durability,
) -> Result<Registry, RegistryError> {
    retry_locked(|| Registry::open_with(path.as_ref(), config.clone(), durability))
}

fn reopen(path: impl AsRef<Path>, config: Config) -> Result<Registry, RegistryError> {
    reopen_with(path, config, Durability::Flush)
}

fn sled_open(path: &Path) -> sled::Result<sled::Db> {
    retry_locked(|| sled::open(path))
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Every file under `dir`, relative to it, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(root, &e.path(), out);
            } else {
                out.push(e.path().strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic".into())
}

// ---------------------------------------------------------------------------
// 1. Restart
// ---------------------------------------------------------------------------

const JIDS: usize = 30;
/// Node address variants per JID: none, nodeId, nodeId+sourceId, the full
/// triple, a second nodeId.
const NODES: usize = 5;
const KEY_SPACE: usize = JIDS * NODES;
const OWNERS: usize = 5;
const RESOURCES: [Option<&str>; 3] = [None, Some("imc"), Some("r2")];

const STR_POOL: &[&str] = &[
    "a",
    "b",
    "ab",
    "abc",
    "B",
    "zz",
    "1",
    "10",
    "www.ktc.se",
    "IMC",
    "é",
    "日本",
    "a*b",
    "a b",
    "a\tb",
    "x\n",
    "\\",
    "%",
    "\u{10FFFF}",
];

const NUM_POOL: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    1.2,
    2.0,
    -1.5,
    3.5,
    9.0,
    10.0,
    100.0,
    1e20,
    -1e-300,
    5e-324,
    f64::MAX,
    f64::MIN,
];

/// (spelling, percent numeric).
const TAG_NAMES: &[(&str, u64)] = &[
    ("KEY", 0),
    ("SN", 80),
    ("sn", 80),
    ("MAN", 5),
    ("MODEL", 5),
    ("Model", 5),
    ("V", 90),
    ("ROOM", 50),
    ("LAT", 90),
    ("Straße", 10),
];

fn thing_key(k: usize) -> ThingKey {
    let j = k / NODES;
    let node = match k % NODES {
        0 => NodeAddress::default(),
        1 => NodeAddress::node("n1", None),
        2 => NodeAddress::node("n1", Some("src")),
        3 => NodeAddress::new(Some("n1"), Some("src"), Some("cache")).unwrap(),
        _ => NodeAddress::node("n2", None),
    };
    ThingKey {
        jid: bare(&format!("t{j}@things.example")),
        node,
    }
}

/// The thing's JID with a resource (some spellings upper-cased: JIDs are
/// normalised).
fn thing_from(rng: &mut Rng, key: &ThingKey) -> Jid {
    let mut text = key.jid.as_str().to_string();
    if rng.chance(10) {
        text = text.to_uppercase();
    }
    if let Some(r) = rng.pick(&RESOURCES) {
        text.push('/');
        text.push_str(r);
    }
    jid(&text)
}

fn owner_jid(k: usize) -> Jid {
    jid(&format!("o{k}@owners.example/phone"))
}

fn as_sender(b: &BareJid) -> Jid {
    Jid::new(b.clone(), Some("phone"))
}

fn gen_tag(rng: &mut Rng) -> Tag {
    let &(spelling, numeric) = rng.pick(TAG_NAMES);
    if spelling == "KEY" {
        return s(spelling, &format!("k{}", rng.below(12)));
    }
    if rng.chance(numeric) {
        if rng.chance(20) {
            n(spelling, (rng.below(40) as f64 - 20.0) / 4.0)
        } else {
            n(spelling, *rng.pick(NUM_POOL))
        }
    } else if rng.chance(5) {
        s(spelling, &"y".repeat(128))
    } else {
        let v: &&str = rng.pick(STR_POOL);
        s(spelling, v)
    }
}

/// 0..=max random tags; names distinct unless `dup` (then maybe a bad request).
fn gen_tags(rng: &mut Rng, max: usize) -> Vec<Tag> {
    let dup = rng.chance(4);
    let mut out: Vec<Tag> = Vec::new();
    for _ in 0..rng.below(max + 1) {
        let t = gen_tag(rng);
        if dup || !out.iter().any(|u| u.name == t.name) {
            out.push(t);
        }
    }
    out
}

fn empty_of(t: &Tag) -> Tag {
    Tag {
        name: t.name.clone(),
        value: TagValue::string("", t.name.as_str()).unwrap(),
    }
}

/// Sorted (name, value) pairs without empty values: how a claim matches tags.
fn tag_set(tags: &[Tag]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = tags
        .iter()
        .filter(|t| !t.value.is_empty_str())
        .map(|t| (t.name.as_str().to_string(), format!("{:?}", t.value)))
        .collect();
    v.sort();
    v
}

#[derive(Default, Debug)]
struct Coverage {
    register_ok: usize,
    register_self_owned: usize,
    register_node: usize,
    register_claimed: usize,
    claim_public: usize,
    claim_private: usize,
    claim_generated_key: usize,
    claim_failed: usize,
    claim_skipped_ambiguous_own: usize,
    update_thing: usize,
    update_owner: usize,
    update_deleting: usize,
    update_disowned: usize,
    remove_ok: usize,
    unregister_existing: usize,
    disown_started: usize,
    disown_acked: usize,
    disown_refused: usize,
    disown_late: usize,
    disown_expired: usize,
    disown_offline: usize,
    pending_at_close: usize,
    presence: usize,
    reopens: usize,
}

struct Pair {
    mem: PendingId,
    sled: PendingId,
    thing: ThingKey,
    owner: BareJid,
    deadline: u64,
}

struct Run {
    rng: Rng,
    mem: Registry,
    sled: Registry,
    dir: tempfile::TempDir,
    now: u64,
    pairs: Vec<Pair>,
    presence_log: Vec<(Jid, bool)>,
    cov: Coverage,
    step: usize,
    searches: Vec<Search>,
}

impl Run {
    /// A key: mostly one of the existing things, sometimes any key.
    fn pick_key(&mut self, existing_percent: u64) -> ThingKey {
        let keys: Vec<ThingKey> = by_key(self.mem.export())
            .into_iter()
            .map(|r| r.key)
            .collect();
        if !keys.is_empty() && self.rng.chance(existing_percent) {
            self.rng.pick(&keys).clone()
        } else {
            thing_key(self.rng.below(KEY_SPACE))
        }
    }

    fn owner_of(&self, key: &ThingKey) -> Option<BareJid> {
        let a = self.mem.get(key).and_then(|r| r.owner);
        let b = self.sled.get(key).and_then(|r| r.owner);
        assert_eq!(a, b, "step {}: owner of {key:?}", self.step);
        a
    }

    fn check_generated_key(&self, key: &ThingKey) {
        for (which, reg) in [("memory", &self.mem), ("sled", &self.sled)] {
            let r = reg.get(key).expect("disowned thing exists");
            assert!(
                r.owner.is_none() && !r.public,
                "step {}: {which}: disowned thing still owned: {r:?}",
                self.step
            );
            assert!(
                r.tags.len() == 1 && is_generated_key(&r.tags[0]),
                "step {}: {which}: a disowned thing has exactly one generated KEY: {r:?}",
                self.step
            );
        }
    }

    fn op_register(&mut self) {
        let key = self.pick_key(50);
        let from = thing_from(&mut self.rng, &key);
        let mut tags = gen_tags(&mut self.rng, 5);
        if self.rng.chance(10) {
            let t = gen_tag(&mut self.rng);
            tags.push(empty_of(&t));
        }
        let req = Register {
            node: key.node.clone(),
            tags,
            self_owned: self.rng.chance(8),
        };
        let a = self.mem.register(&from, req.clone());
        let b = self.sled.register(&from, req.clone());
        assert_eq!(a, b, "step {}: register {from} {req:?}", self.step);
        match a {
            Ok(RegisterOutcome::Registered) => {
                self.cov.register_ok += 1;
                self.cov.register_self_owned += req.self_owned as usize;
                self.cov.register_node += !key.node.is_empty() as usize;
            }
            Ok(RegisterOutcome::AlreadyClaimed { .. }) => self.cov.register_claimed += 1,
            Err(_) => {}
        }
    }

    fn op_claim(&mut self) {
        let key = self.pick_key(95);
        let claimant = match self.rng.below(10) {
            0 | 1 => self
                .owner_of(&key)
                .map(|o| as_sender(&o))
                .unwrap_or_else(|| owner_jid(0)),
            _ => owner_jid(self.rng.below(OWNERS)),
        };
        let public = self.rng.chance(75);
        let tweak = self.rng.below(12);
        let extra = gen_tag(&mut self.rng);
        let fallback = gen_tags(&mut self.rng, 3);
        // Each registry claims with its own record's tags (their generated
        // KEYs differ), changed the same way.
        let claim_tags = |reg: &Registry| -> Vec<Tag> {
            let mut tags = match reg.get(&key) {
                Some(r) => r.tags,
                None => fallback.clone(),
            };
            match tweak {
                0 => {
                    tags.pop();
                }
                1 => tags.push(extra.clone()),
                2 => tags.push(empty_of(&extra)),
                3 => tags.reverse(),
                _ => {}
            }
            tags
        };
        let (ta, tb) = (claim_tags(&self.mem), claim_tags(&self.sled));
        // A claimant owning two things with the same tags re-claims the first in
        // id order, and a restart changes id order: skip that case.
        let wanted = tag_set(&ta);
        let own_matches = self
            .mem
            .export()
            .iter()
            .filter(|r| r.owner.as_ref() == Some(claimant.bare()) && tag_set(&r.tags) == wanted)
            .count();
        if own_matches >= 2 {
            self.cov.claim_skipped_ambiguous_own += 1;
            return;
        }
        let generated = ta.iter().any(is_generated_key);
        let a = self.mem.claim(&claimant, Claim { tags: ta, public });
        let b = self.sled.claim(&claimant, Claim { tags: tb, public });
        assert_eq!(a, b, "step {}: claim {key:?} by {claimant}", self.step);
        match a {
            Ok(c) if c.public => self.cov.claim_public += 1,
            Ok(_) => self.cov.claim_private += 1,
            Err(_) => self.cov.claim_failed += 1,
        }
        if generated && b.is_ok() {
            self.cov.claim_generated_key += 1;
        }
    }

    fn op_update(&mut self) {
        let key = self.pick_key(90);
        let owner = self.owner_of(&key);
        let who = self.rng.below(10);
        let (from, jid) = match who {
            0..=3 => (thing_from(&mut self.rng, &key), None),
            4 => (thing_from(&mut self.rng, &key), Some(key.jid.clone())),
            5..=8 => (
                owner
                    .as_ref()
                    .map(as_sender)
                    .unwrap_or_else(|| owner_jid(0)),
                Some(key.jid.clone()),
            ),
            _ => (owner_jid(self.rng.below(OWNERS)), Some(key.jid.clone())),
        };
        let mut tags = gen_tags(&mut self.rng, 3);
        // Delete some existing tags with an empty value.
        let mut deleting = false;
        if let Some(r) = self.mem.get(&key) {
            for t in &r.tags {
                if self.rng.chance(25) && !tags.iter().any(|u| u.name == t.name) {
                    tags.push(empty_of(t));
                    deleting = true;
                }
            }
        }
        let req = Update {
            jid,
            node: key.node.clone(),
            tags,
        };
        let a = self.mem.update(&from, req.clone());
        let b = self.sled.update(&from, req.clone());
        assert_eq!(a, b, "step {}: update by {from}: {req:?}", self.step);
        match a {
            Ok(UpdateOutcome::Updated) => {
                if who <= 4 {
                    self.cov.update_thing += 1;
                } else {
                    self.cov.update_owner += 1;
                }
                self.cov.update_deleting += deleting as usize;
            }
            Ok(UpdateOutcome::Disowned) => self.cov.update_disowned += 1,
            Err(_) => {}
        }
    }

    fn op_remove(&mut self) {
        let key = self.pick_key(90);
        let from = match (self.owner_of(&key), self.rng.chance(80)) {
            (Some(o), true) => as_sender(&o),
            _ => owner_jid(self.rng.below(OWNERS)),
        };
        let a = self.mem.remove(&from, &key);
        let b = self.sled.remove(&from, &key);
        assert_eq!(a, b, "step {}: remove {key:?} by {from}", self.step);
        self.cov.remove_ok += a.is_ok() as usize;
    }

    fn op_unregister(&mut self) {
        let key = self.pick_key(60);
        let existed = self.mem.get(&key).is_some();
        let from = thing_from(&mut self.rng, &key);
        let a = self.mem.unregister(&from, key.node.clone());
        let b = self.sled.unregister(&from, key.node.clone());
        assert_eq!(a, b, "step {}: unregister {key:?}", self.step);
        self.cov.unregister_existing += existed as usize;
    }

    fn op_disown(&mut self) {
        // Prefer claimed things.
        let claimed: Vec<ThingKey> = by_key(self.mem.export())
            .into_iter()
            .filter(|r| r.owner.is_some())
            .map(|r| r.key)
            .collect();
        let key = if !claimed.is_empty() && self.rng.chance(90) {
            self.rng.pick(&claimed).clone()
        } else {
            self.pick_key(50)
        };
        let from = match (self.owner_of(&key), self.rng.chance(85)) {
            (Some(o), true) => as_sender(&o),
            _ => owner_jid(self.rng.below(OWNERS)),
        };
        self.disown(&key, &from);
    }

    fn disown(&mut self, key: &ThingKey, from: &Jid) {
        let a = self.mem.disown(from, key, self.now);
        let b = self.sled.disown(from, key, self.now);
        let strip = |r: &Result<iotdisco::DisownStarted, RegistryError>| {
            r.as_ref()
                .map(|d| (d.deadline_ms, d.notification.clone()))
                .map_err(Clone::clone)
        };
        assert_eq!(
            strip(&a),
            strip(&b),
            "step {}: disown {key:?} by {from}",
            self.step
        );
        match (a, b) {
            (Ok(a), Ok(b)) => {
                self.cov.disown_started += 1;
                self.pairs.push(Pair {
                    mem: a.pending,
                    sled: b.pending,
                    thing: key.clone(),
                    owner: from.bare().clone(),
                    deadline: a.deadline_ms,
                });
            }
            (Err(RegistryError::NotAllowed), _) => self.cov.disown_offline += 1,
            _ => {}
        }
    }

    fn op_resolve(&mut self) {
        if self.pairs.is_empty() {
            self.now += 100;
            return;
        }
        let i = self.rng.below(self.pairs.len());
        let p = self.pairs.remove(i);
        let ack = self.rng.chance(70);
        let late = self.rng.chance(15);
        let when = if late {
            p.deadline + self.rng.below(2) as u64
        } else {
            self.now
        };
        self.now = self.now.max(when);
        let a = self.mem.resolve_disown(p.mem, ack, when);
        let b = self.sled.resolve_disown(p.sled, ack, when);
        let strip = |r: Option<iotdisco::DisownResolution>| r.map(|r| (r.owner, r.result));
        let (a, b) = (strip(a), strip(b));
        assert_eq!(a, b, "step {}: resolve {:?} ack={ack}", self.step, p.thing);
        match a {
            Some((owner, Ok(()))) => {
                assert_eq!(owner, p.owner);
                self.cov.disown_acked += 1;
                self.check_generated_key(&p.thing);
            }
            Some((_, Err(_))) if late => self.cov.disown_late += 1,
            Some((_, Err(_))) => self.cov.disown_refused += 1,
            None => {}
        }
        // A second answer to the same disown is unknown.
        assert!(self.mem.resolve_disown(p.mem, true, when).is_none());
        assert!(self.sled.resolve_disown(p.sled, true, when).is_none());
    }

    fn op_expire(&mut self) {
        self.now += self.rng.below(40_000) as u64;
        let a = self.mem.expire(self.now);
        let b = self.sled.expire(self.now);
        let mut expected: Vec<(u64, BareJid)> = Vec::new();
        self.pairs.retain(|p| {
            if p.deadline <= self.now {
                expected.push((p.mem.0, p.owner.clone()));
                false
            } else {
                true
            }
        });
        let mut got_a: Vec<(u64, BareJid)> = a
            .into_iter()
            .map(|r| {
                assert_eq!(r.result, Err(RegistryError::NotAllowed));
                (r.pending.0, r.owner)
            })
            .collect();
        got_a.sort();
        expected.sort();
        assert_eq!(got_a, expected, "step {}: expire (memory)", self.step);
        assert_eq!(b.len(), expected.len(), "step {}: expire (sled)", self.step);
        for r in &b {
            assert_eq!(r.result, Err(RegistryError::NotAllowed));
        }
        self.cov.disown_expired += expected.len();
    }

    fn op_presence(&mut self) {
        let key = self.pick_key(90);
        let from = thing_from(&mut self.rng, &key);
        let available = self.rng.chance(60);
        self.mem.presence(&from, available);
        self.sled.presence(&from, available);
        self.presence_log.push((from, available));
        self.cov.presence += 1;
    }

    fn step_once(&mut self) {
        match self.rng.below(100) {
            0..=27 => self.op_register(),
            28..=45 => self.op_claim(),
            46..=61 => self.op_update(),
            62..=66 => self.op_remove(),
            67..=71 => self.op_unregister(),
            72..=79 => self.op_disown(),
            80..=87 => self.op_resolve(),
            88..=90 => self.op_expire(),
            91..=96 => self.op_presence(),
            _ => self.now += self.rng.below(5_000) as u64,
        }
        self.step += 1;
    }

    fn compare(&self, when: &str) {
        let a = normalized(self.mem.export());
        let b = normalized(self.sled.export());
        assert_eq!(a.len(), b.len(), "{when}: number of things");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y, "{when}: record");
        }
        self.mem
            .check_consistency()
            .unwrap_or_else(|e| panic!("{when}: memory registry inconsistent: {e}"));
        self.sled
            .check_consistency()
            .unwrap_or_else(|e| panic!("{when}: sled registry inconsistent: {e}"));
        for search in &self.searches {
            let x = found(&self.mem, search);
            let y = found(&self.sled, search);
            assert_eq!(x, y, "{when}: search {:?}", search.operators);
            if let Ok((_, more)) = x {
                assert!(!more, "{when}: one page holds every match");
            }
        }
    }

    fn reopen(&mut self, durability: Durability) {
        // Leave a disown pending at close (it must vanish, the thing stays
        // claimed).
        if let Some(r) = by_key(self.mem.export())
            .into_iter()
            .find(|r| r.owner.is_some())
        {
            let owner = r.owner.clone().unwrap();
            self.disown(&r.key, &as_sender(&owner));
        }
        let when = format!("step {} before reopen {}", self.step, self.cov.reopens);
        self.compare(&when);
        let pending: Vec<(PendingId, ThingKey, BareJid)> = self
            .pairs
            .drain(..)
            .map(|p| (p.sled, p.thing, p.owner))
            .collect();
        self.cov.pending_at_close += pending.len();
        // Claim digests survive byte for byte.
        let digests_before: Vec<_> = by_key(self.sled.export())
            .into_iter()
            .map(|r| r.claim_digest)
            .collect();
        // Drop the old registry (its sled db) before opening the directory again.
        let placeholder = Registry::new(config());
        drop(std::mem::replace(&mut self.sled, placeholder));
        self.sled = reopen_with(self.dir.path(), config(), durability)
            .unwrap_or_else(|e| panic!("{when}: reopen failed: {e}"));
        self.cov.reopens += 1;
        let digests_after: Vec<_> = by_key(self.sled.export())
            .into_iter()
            .map(|r| r.claim_digest)
            .collect();
        assert_eq!(digests_after, digests_before, "{when}: claim digests");
        // Presence is not persisted: tell the new registry what the host knows.
        for (j, available) in &self.presence_log {
            self.sled.presence(j, *available);
        }
        // Pending disowns are not persisted.
        assert_eq!(self.sled.stats().pending_disowns, 0);
        for (id, thing, owner) in &pending {
            assert!(
                self.sled.resolve_disown(*id, true, self.now).is_none(),
                "{when}: a pending disown survived the restart"
            );
            if let Some(r) = self.sled.get(thing) {
                assert_eq!(
                    r.owner.as_ref(),
                    Some(owner),
                    "{when}: a disown pending at close changed the owner"
                );
            }
        }
        // The memory registry forgets its pending disowns the same way.
        self.mem.expire(u64::MAX);
        self.compare(&format!(
            "step {} after reopen {}",
            self.step, self.cov.reopens
        ));
    }
}

#[test]
fn restart_matches_memory_registry() {
    const OPS: usize = 5_000;
    const REOPEN_EVERY: usize = 500;
    let dir = tempfile::tempdir().unwrap();
    let sled = reopen(dir.path(), config()).unwrap();
    assert!(sled.is_empty());
    let mut run = Run {
        rng: Rng(0x5EED_0347),
        mem: Registry::new(config()),
        sled,
        dir,
        now: 1_000,
        pairs: Vec::new(),
        presence_log: Vec::new(),
        cov: Coverage::default(),
        step: 0,
        searches: searches(),
    };
    while run.step < OPS {
        run.step_once();
        if run.step % REOPEN_EVERY == 0 {
            let durability = if run.step / REOPEN_EVERY == 3 {
                Durability::GroupCommit(5)
            } else {
                Durability::Flush
            };
            run.reopen(durability);
        }
    }
    run.reopen(Durability::Flush);
    let c = &run.cov;
    eprintln!("{c:#?}");
    for (what, count) in [
        ("register", c.register_ok),
        ("self-owned register", c.register_self_owned),
        ("register behind a concentrator", c.register_node),
        ("register of a claimed thing", c.register_claimed),
        ("public claim", c.claim_public),
        ("private claim", c.claim_private),
        (
            "claim of a disowned thing by its KEY",
            c.claim_generated_key,
        ),
        ("failed claim", c.claim_failed),
        ("update by the thing", c.update_thing),
        ("update by the owner", c.update_owner),
        ("update deleting tags", c.update_deleting),
        ("update of an unclaimed thing", c.update_disowned),
        ("remove", c.remove_ok),
        ("unregister", c.unregister_existing),
        ("disown started", c.disown_started),
        ("disown acknowledged", c.disown_acked),
        ("disown refused", c.disown_refused),
        ("disown answered late", c.disown_late),
        ("disown expired", c.disown_expired),
        ("disown of an offline thing", c.disown_offline),
        ("disown pending at close", c.pending_at_close),
    ] {
        assert!(count > 0, "the sequence never covered: {what}");
    }
    assert!(run.mem.len() > 20, "the registry stays populated");
}

// ---------------------------------------------------------------------------
// 2. Corruption
// ---------------------------------------------------------------------------

/// Fills a database in `dir` and returns every version of every record that was
/// ever written to it.
fn populate(dir: &Path) -> Vec<ThingRecord> {
    let reg = reopen(dir, config()).unwrap();
    let mut written = Vec::new();
    let mut note = |reg: &Registry, key: &ThingKey| {
        if let Some(r) = reg.get(key) {
            written.push(r);
        }
    };
    for i in 0..40 {
        let key = thing_key(i * 3);
        let from = Jid::new(key.jid.clone(), Some("imc"));
        let tags = vec![
            s("SN", &format!("sn{i}")),
            n("V", i as f64 / 3.0),
            s("MAN", "www.ktc.se"),
        ];
        reg.register(
            &from,
            Register {
                node: key.node.clone(),
                tags: tags.clone(),
                self_owned: i % 9 == 0,
            },
        )
        .unwrap();
        note(&reg, &key);
        if i % 3 == 1 {
            reg.claim(
                &owner_jid(i % OWNERS),
                Claim {
                    tags,
                    public: i % 2 == 0,
                },
            )
            .unwrap();
            note(&reg, &key);
        }
        if i % 5 == 4 {
            reg.update(
                &from,
                Update {
                    jid: None,
                    node: key.node.clone(),
                    tags: vec![n("V", -1.0), s("ROOM", "a b")],
                },
            )
            .unwrap();
            note(&reg, &key);
        }
    }
    for i in [7, 13] {
        let key = thing_key(i * 3);
        reg.remove(&owner_jid(i % OWNERS), &key).unwrap();
    }
    reg.check_consistency().unwrap();
    drop(reg);
    written
}

#[test]
fn damaged_files_never_panic_nor_invent_records() {
    let base = tempfile::tempdir().unwrap();
    let written = populate(base.path());
    let all = files(base.path());
    assert!(!all.is_empty());
    let largest = all
        .iter()
        .max_by_key(|p| fs::metadata(base.path().join(p)).unwrap().len())
        .unwrap()
        .clone();
    type Mutation = Box<dyn Fn(&Path)>;
    let mut variants: Vec<(String, Mutation)> = Vec::new();
    for f in &all {
        let len = fs::metadata(base.path().join(f)).unwrap().len();
        for (label, to) in [("to 0", 0), ("to half", len / 2)] {
            let f = f.clone();
            variants.push((
                format!("truncate {} {label}", f.display()),
                Box::new(move |root: &Path| {
                    let file = fs::OpenOptions::new()
                        .write(true)
                        .open(root.join(&f))
                        .unwrap();
                    file.set_len(to).unwrap();
                }),
            ));
        }
        let g = f.clone();
        variants.push((
            format!("delete {}", f.display()),
            Box::new(move |root: &Path| fs::remove_file(root.join(&g)).unwrap()),
        ));
        let mut offsets = vec![len / 2];
        if *f == largest {
            offsets = vec![
                0,
                1,
                4,
                8,
                13,
                32,
                100,
                len / 8,
                len / 4,
                len / 3,
                len / 2,
                2 * len / 3,
                3 * len / 4,
                len.saturating_sub(20),
                len.saturating_sub(1),
            ];
        }
        let offsets: BTreeSet<u64> = offsets.into_iter().filter(|&o| o < len).collect();
        for o in offsets {
            let f = f.clone();
            variants.push((
                format!("flip byte {o} of {}", f.display()),
                Box::new(move |root: &Path| {
                    let p = root.join(&f);
                    let mut bytes = fs::read(&p).unwrap();
                    bytes[o as usize] ^= 0xA5;
                    fs::write(&p, bytes).unwrap();
                }),
            ));
        }
    }
    let mut panics = Vec::new();
    let mut details = Vec::new();
    let mut opened = 0;
    let mut refused = 0;
    for (label, mutate) in &variants {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(base.path(), copy.path());
        mutate(copy.path());
        let path = copy.path().to_path_buf();
        let outcome = catch_unwind(AssertUnwindSafe(|| match reopen(&path, config()) {
            Ok(reg) => {
                for r in reg.export() {
                    assert!(
                        written.contains(&r),
                        "{label}: the damaged database invented a record: {r:?}"
                    );
                }
                reg.check_consistency()
                    .unwrap_or_else(|e| panic!("{label}: inconsistent indexes: {e}"));
                details.push(format!("{label}: opened, {} things", reg.len()));
                drop(reg);
                true
            }
            Err(e) => {
                assert!(
                    matches!(e, RegistryError::Storage(_)),
                    "{label}: unexpected error kind {e:?}"
                );
                details.push(format!("{label}: {e}"));
                false
            }
        }));
        match outcome {
            Ok(true) => opened += 1,
            Ok(false) => refused += 1,
            Err(p) => panics.push(format!("{label}: {}", panic_text(&*p))),
        }
    }
    eprintln!(
        "{} variants of {:?}: {opened} opened, {refused} refused, {} panicked",
        variants.len(),
        all,
        panics.len()
    );
    eprintln!("{}", details.join("\n"));
    assert!(panics.is_empty(), "panics:\n{}", panics.join("\n"));
}

/// One registered thing behind a concentrator, in a closed database.
fn one_thing(dir: &Path) -> (ThingKey, ThingRecord) {
    let key = ThingKey {
        jid: bare("rack@example.org"),
        node: NodeAddress::node("imc1", Some("MeteringTopology")),
    };
    let reg = reopen(dir, config()).unwrap();
    for (j, node) in [
        ("other@example.org/x", NodeAddress::default()),
        ("rack@example.org/plcs", key.node.clone()),
    ] {
        reg.register(
            &jid(j),
            Register {
                node,
                tags: vec![s("SN", "394872348732948723"), n("V", 1.2)],
                self_owned: false,
            },
        )
        .unwrap();
    }
    let rec = reg.get(&key).unwrap();
    (key, rec)
}

#[test]
fn damaged_value_names_the_thing() {
    let base = tempfile::tempdir().unwrap();
    let (key, rec) = one_thing(base.path());
    let good = record::encode(&rec).unwrap().to_vec();
    let other_key = record::key_bytes(&ThingKey::of(bare("other@example.org")));
    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"\x00\xffgarbage garbage garbage\x07".to_vec()),
        ("empty", Vec::new()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("one byte short", good[..good.len() - 1].to_vec()),
        ("all ones", vec![0xff; good.len()]),
    ];
    for (label, value) in variants {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(base.path(), copy.path());
        {
            let db = sled_open(copy.path()).unwrap();
            let things = db.open_tree("things").unwrap();
            let k = record::key_bytes(&key);
            assert!(things.get(&k).unwrap().is_some(), "the key layout is known");
            things.insert(k, value).unwrap();
            db.flush().unwrap();
        }
        let e = reopen(copy.path(), config())
            .err()
            .unwrap_or_else(|| panic!("{label}: a damaged record was accepted"));
        assert!(matches!(e, RegistryError::Storage(_)), "{label}: {e:?}");
        let text = e.to_string();
        assert!(text.contains("rack@example.org"), "{label}: {text}");
    }
    // A valid record under another thing's key.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(base.path(), copy.path());
    {
        let db = sled_open(copy.path()).unwrap();
        let things = db.open_tree("things").unwrap();
        things.insert(other_key, good.clone()).unwrap();
        db.flush().unwrap();
    }
    let e = reopen(copy.path(), config()).unwrap_err();
    assert!(e.to_string().contains("other@example.org"), "{e}");
    // A key that is no valid key encoding.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(base.path(), copy.path());
    {
        let db = sled_open(copy.path()).unwrap();
        db.open_tree("things")
            .unwrap()
            .insert(b"\xff\xff\xff", good.clone())
            .unwrap();
        db.flush().unwrap();
    }
    assert!(reopen(copy.path(), config()).is_err());
    // The undamaged original still opens.
    let reg = reopen(base.path(), config()).unwrap();
    assert_eq!(reg.get(&key), Some(rec));
}

#[test]
fn wrong_format_marker_names_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let (key, rec) = one_thing(dir.path());
    {
        let db = sled_open(dir.path()).unwrap();
        let meta = db.open_tree("meta").unwrap();
        assert_eq!(
            meta.get("format").unwrap().as_deref(),
            Some(FORMAT.as_bytes())
        );
        meta.insert("format", "iotdisco-record-v0").unwrap();
        db.flush().unwrap();
    }
    let e = reopen(dir.path(), config()).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, RegistryError::Storage(_)), "{e:?}");
    assert!(
        text.contains("iotdisco-record-v0") && text.contains(FORMAT),
        "{text}"
    );
    // Refusing changed nothing: restoring the marker makes it readable again.
    {
        let db = sled_open(dir.path()).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("format", FORMAT)
            .unwrap();
        db.flush().unwrap();
    }
    let reg = reopen(dir.path(), config()).unwrap();
    assert_eq!(reg.get(&key), Some(rec));
}

#[test]
fn missing_format_marker_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    one_thing(dir.path());
    {
        let db = sled_open(dir.path()).unwrap();
        db.open_tree("meta").unwrap().remove("format").unwrap();
        db.flush().unwrap();
    }
    let e = reopen(dir.path(), config()).unwrap_err();
    assert!(e.to_string().contains("format"), "{e}");
    // An existing sled database without a marker is refused even when empty:
    // damage to sled's first bytes also reads as "empty", and must not
    // silently become a new database. A fresh directory is new.
    let empty = tempfile::tempdir().unwrap();
    sled_open(empty.path()).unwrap().flush().unwrap();
    let e = reopen(empty.path(), config()).unwrap_err();
    assert!(e.to_string().contains("format marker"), "{e}");
    let fresh = tempfile::tempdir().unwrap();
    let reg = reopen(fresh.path().join("new"), config()).unwrap();
    assert!(reg.is_empty());
}

// ---------------------------------------------------------------------------
// 3. Exclusive use
// ---------------------------------------------------------------------------

#[test]
fn drop_then_reopen_never_fails_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for i in 0..1_000 {
        match Registry::open(dir.path(), config()) {
            Ok(reg) => {
                reg.register(
                    &jid(&format!("t{i}@example.org/r")),
                    Register {
                        node: NodeAddress::default(),
                        tags: vec![n("SN", i as f64)],
                        self_owned: false,
                    },
                )
                .unwrap();
            }
            Err(e) => failures.push(format!("open {i}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 1000 opens failed, first: {}",
        failures.len(),
        failures[0]
    );
}

#[test]
fn second_open_is_refused_as_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let (key, rec) = one_thing(dir.path());
    let first = reopen(dir.path(), config()).unwrap();
    for durability in [Durability::Flush, Durability::GroupCommit(10)] {
        let e = Registry::open_with(dir.path(), config(), durability).unwrap_err();
        assert!(matches!(e, RegistryError::Storage(_)), "{e:?}");
        assert!(e.to_string().contains("in use"), "{e}");
    }
    // The first registry still works and the refused opens changed nothing.
    first
        .unregister(&jid("other@example.org/x"), NodeAddress::default())
        .unwrap();
    assert_eq!(first.get(&key), Some(rec.clone()));
    drop(first);
    let again = reopen(dir.path(), config()).unwrap();
    assert_eq!(again.export(), vec![rec]);
}

// ---------------------------------------------------------------------------
// 4. Export and import
// ---------------------------------------------------------------------------

/// A registry holding every kind of thing.
fn every_kind(reg: &Registry) {
    let reg_ok = |from: &str, node: NodeAddress, tags: Vec<Tag>, self_owned: bool| {
        assert_eq!(
            reg.register(
                &jid(from),
                Register {
                    node,
                    tags,
                    self_owned
                }
            ),
            Ok(RegisterOutcome::Registered)
        );
    };
    // Unclaimed, registered from a bare JID (no last resource).
    reg_ok(
        "plain@example.org",
        NodeAddress::default(),
        vec![s("SN", "1"), n("V", 1.2)],
        false,
    );
    // Behind a concentrator, every node attribute, claimed public.
    let full = NodeAddress::new(Some("imc1"), Some("Metering\"Topology"), Some("cache")).unwrap();
    let tags_b = vec![
        s("MAN", "www.ktc.se"),
        s("MODEL", "日本 \t x\n"),
        n("SN", 5e-324),
        n("LAT", -0.0),
    ];
    reg_ok("rack@example.org/plcs", full.clone(), tags_b.clone(), false);
    reg.claim(
        &jid("o1@example.org/phone"),
        Claim {
            tags: tags_b,
            public: true,
        },
    )
    .unwrap();
    // nodeId only, claimed private, then updated by its owner (tag deleted).
    let tags_c = vec![s("ROOM", "12"), n("V", f64::MAX), s("KEY", "secret;\\1")];
    reg_ok(
        "rack@example.org/plcs",
        NodeAddress::node("imc2", None),
        tags_c.clone(),
        false,
    );
    reg.claim(
        &jid("o2@example.org/phone"),
        Claim {
            tags: tags_c,
            public: false,
        },
    )
    .unwrap();
    reg.update(
        &jid("o2@example.org/phone"),
        Update {
            jid: Some(bare("rack@example.org")),
            node: NodeAddress::node("imc2", None),
            tags: vec![s("ROOM", ""), n("FLOOR", f64::MIN)],
        },
    )
    .unwrap();
    // Self-owned with a KEY.
    reg_ok(
        "self@example.org/r",
        NodeAddress::default(),
        vec![
            s("KEY", "k1"),
            s("Straße", "%"),
            s("LONG", &"y".repeat(128)),
        ],
        true,
    );
    // Disowned: a generated KEY only.
    let tags_e = vec![s("SN", "E")];
    reg_ok(
        "gone@example.org/imc",
        NodeAddress::default(),
        tags_e.clone(),
        false,
    );
    reg.claim(
        &jid("o1@example.org/phone"),
        Claim {
            tags: tags_e,
            public: true,
        },
    )
    .unwrap();
    let d = reg
        .disown(
            &jid("o1@example.org/phone"),
            &ThingKey::of(bare("gone@example.org")),
            1_000,
        )
        .unwrap();
    assert_eq!(
        reg.resolve_disown(d.pending, true, 1_001).unwrap().result,
        Ok(())
    );
    // No tags at all.
    reg_ok(
        "bare.example.org/x",
        NodeAddress::node("n", Some("s")),
        vec![],
        false,
    );
}

fn import_searches() -> Vec<Search> {
    searches()
        .into_iter()
        .chain([
            Search::new(vec![Operator::StrEq(name("MAN"), "www.ktc.se".into())]),
            Search::new(vec![Operator::NumLt(name("LAT"), num(1.0))]),
            Search::new(vec![Operator::StrEq(name("STRASSE"), "%".into())]),
        ])
        .collect()
}

fn same_searches(a: &Registry, b: &Registry) {
    for search in import_searches() {
        assert_eq!(
            found(a, &search),
            found(b, &search),
            "{:?}",
            search.operators
        );
    }
}

#[test]
fn export_import_round_trip() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let src = reopen(d1.path(), config()).unwrap();
    every_kind(&src);
    let original = src.export();
    assert_eq!(original.len(), 6);
    assert!(
        original
            .iter()
            .any(|r| r.tags.len() == 1 && is_generated_key(&r.tags[0]))
    );
    let mut jsonl = Vec::new();
    assert_eq!(src.export_jsonl(&mut jsonl).unwrap(), 6);

    let dst = reopen(d2.path(), config()).unwrap();
    assert_eq!(dst.import_jsonl(&jsonl[..]).unwrap(), 6);
    assert_eq!(dst.export(), original);
    dst.check_consistency().unwrap();
    same_searches(&src, &dst);
    let mut again = Vec::new();
    dst.export_jsonl(&mut again).unwrap();
    assert_eq!(
        String::from_utf8(again).unwrap(),
        String::from_utf8(jsonl.clone()).unwrap()
    );

    // Persisted: reopen the imported registry.
    drop(dst);
    let dst = reopen(d2.path(), config()).unwrap();
    assert_eq!(by_key(dst.export()), by_key(original.clone()));
    dst.check_consistency().unwrap();
    same_searches(&src, &dst);
    // The imported things behave: the disowned one can be claimed by its KEY.
    let gone = ThingKey::of(bare("gone@example.org"));
    let key_tags = dst.get(&gone).unwrap().tags;
    let c = dst
        .claim(
            &jid("o3@example.org/x"),
            Claim {
                tags: key_tags,
                public: true,
            },
        )
        .unwrap();
    assert_eq!(c.thing, gone);

    // An in-memory registry imports the same.
    let mem = Registry::new(config());
    assert_eq!(mem.import_jsonl(&jsonl[..]).unwrap(), 6);
    assert_eq!(mem.export(), original);
    mem.check_consistency().unwrap();
}

#[test]
fn import_errors_change_nothing() {
    let d1 = tempfile::tempdir().unwrap();
    let src = reopen(d1.path(), config()).unwrap();
    every_kind(&src);
    let mut jsonl = Vec::new();
    src.export_jsonl(&mut jsonl).unwrap();
    let text = String::from_utf8(jsonl.clone()).unwrap();

    // Into a non-empty registry.
    let before = src.export();
    let e = src.import_jsonl(&jsonl[..]).unwrap_err();
    assert!(matches!(e, RegistryError::BadRequest(_)), "{e:?}");
    assert!(e.to_string().contains("empty"), "{e}");
    assert_eq!(src.export(), before);
    src.check_consistency().unwrap();
    drop(src);
    let src = reopen(d1.path(), config()).unwrap();
    assert_eq!(by_key(src.export()), by_key(before));

    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 3);
    let bad_lines = [
        "{",
        r#"{"jid":"a@b","tags":[{"name":"V","num":1,"str":"x"}]}"#,
        r#"{"jid":"a@b","tags":[{"name":"A:B","str":"x"}]}"#,
        r#"{"jid":"a@b/r","tags":[]}"#,
        r#"{"jid":"a@b","tags":[],"extra":1}"#,
        r#"{"jid":"a@b","owner":"x@y/z","tags":[]}"#,
        r#"{"jid":"a@b","tags":[{"name":"V","num":1e999}]}"#,
    ];
    for bad in bad_lines {
        // Two good lines, a blank one, then the bad one: line 4.
        let input = format!("{}\n{}\n\n{bad}\n{}\n", lines[0], lines[1], lines[2]);
        let dir = tempfile::tempdir().unwrap();
        let reg = reopen(dir.path(), config()).unwrap();
        let e = reg.import_jsonl(input.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("line 4"), "{bad}: {e}");
        assert!(reg.is_empty(), "{bad}: nothing imported");
        drop(reg);
        let reg = reopen(dir.path(), config()).unwrap();
        assert!(reg.is_empty(), "{bad}: nothing stored");
    }
    // The same thing twice.
    let input = format!("{}\n{}\n{}\n", lines[0], lines[1], lines[0]);
    let dir = tempfile::tempdir().unwrap();
    let reg = reopen(dir.path(), config()).unwrap();
    let e = reg.import_jsonl(input.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("plain@example.org"), "{e}");
    assert!(reg.is_empty());
    drop(reg);
    assert!(reopen(dir.path(), config()).unwrap().is_empty());
}

// ---------------------------------------------------------------------------
// 5. A failed store write
// ---------------------------------------------------------------------------

#[derive(Debug, PartialEq)]
struct Snapshot {
    records: Vec<ThingRecord>,
    stored: Vec<ThingRecord>,
    found: Vec<Result<(Vec<FoundThing>, bool), RegistryError>>,
    things: usize,
    searchable: u64,
    tag_names: usize,
}

fn snapshot(reg: &Registry, store: &MemoryStore) -> Snapshot {
    let st = reg.stats();
    Snapshot {
        records: by_key(reg.export()),
        stored: by_key(store.load().unwrap()),
        found: import_searches().iter().map(|q| found(reg, q)).collect(),
        things: st.things,
        searchable: st.searchable,
        tag_names: st.tag_names,
    }
}

#[test]
fn failed_store_write_changes_nothing() {
    let store = MemoryStore::new();
    let reg = Registry::with_store(config(), Box::new(store.clone())).unwrap();
    let thing_a = jid("a@example.org/imc");
    let thing_b = jid("b@example.org/imc");
    let thing_c = jid("c@example.org/imc");
    let o1 = jid("o1@example.org/phone");
    let o2 = jid("o2@example.org/phone");
    let tags = |x: &str| vec![s("SN", x), n("V", 1.0)];
    let register = |from: &Jid, tags: Vec<Tag>, self_owned: bool| {
        reg.register(
            from,
            Register {
                node: NodeAddress::default(),
                tags,
                self_owned,
            },
        )
    };
    register(&thing_a, tags("a"), false).unwrap();
    register(&thing_b, tags("b"), false).unwrap();
    register(&thing_c, tags("c"), false).unwrap();
    reg.claim(
        &o1,
        Claim {
            tags: tags("b"),
            public: true,
        },
    )
    .unwrap();
    reg.claim(
        &o1,
        Claim {
            tags: tags("c"),
            public: false,
        },
    )
    .unwrap();
    reg.presence(&thing_c, true);
    let key_a = ThingKey::of(thing_a.bare().clone());
    let key_b = ThingKey::of(thing_b.bare().clone());
    let key_c = ThingKey::of(thing_c.bare().clone());
    let before = snapshot(&reg, &store);
    assert_eq!(before.records, before.stored);

    store.fail_writes(Some("disk on fire"));
    let storage = |what: &str, e: RegistryError| {
        assert!(
            matches!(&e, RegistryError::Storage(m) if m.0 == "disk on fire"),
            "{what}: {e:?}"
        );
    };
    let check = |what: &str| {
        assert_eq!(snapshot(&reg, &store), before, "{what} changed something");
        reg.check_consistency()
            .unwrap_or_else(|e| panic!("{what}: {e}"));
    };
    // A disown started before the failure (no store write yet).
    let pending = reg.disown(&o1, &key_c, 1_000).unwrap();

    let new_thing = jid("new@example.org/x");
    let e = register(&new_thing, vec![s("BRANDNEW", "x")], false).unwrap_err();
    storage("register new", e);
    check("register new");
    let e = register(&new_thing, vec![s("BRANDNEW2", "x")], true).unwrap_err();
    storage("register new self-owned", e);
    check("register new self-owned");
    let e = register(&thing_a, vec![s("OTHERNEW", "y"), n("V", 2.0)], false).unwrap_err();
    storage("re-register", e);
    check("re-register");
    let e = reg
        .claim(
            &o2,
            Claim {
                tags: tags("a"),
                public: true,
            },
        )
        .unwrap_err();
    storage("claim", e);
    check("claim");
    let e = reg
        .claim(
            &o1,
            Claim {
                tags: tags("b"),
                public: false,
            },
        )
        .unwrap_err();
    storage("re-claim private", e);
    check("re-claim private");
    let e = reg
        .update(
            &o1,
            Update {
                jid: Some(key_b.jid.clone()),
                node: NodeAddress::default(),
                tags: vec![s("SN", ""), s("UPDNEW", "z"), n("V", 7.0)],
            },
        )
        .unwrap_err();
    storage("update by owner", e);
    check("update by owner");
    let e = reg
        .update(
            &jid("b@example.org/other"),
            Update {
                jid: None,
                node: NodeAddress::default(),
                tags: vec![n("V", 8.0)],
            },
        )
        .unwrap_err();
    storage("update by thing", e);
    check("update by thing");
    let e = reg.remove(&o1, &key_b).unwrap_err();
    storage("remove", e);
    check("remove");
    let e = reg
        .unregister(&thing_a, NodeAddress::default())
        .unwrap_err();
    storage("unregister", e);
    check("unregister");
    let r = reg.resolve_disown(pending.pending, true, 1_001).unwrap();
    storage("disown acknowledged", r.result.unwrap_err());
    check("disown acknowledged");
    // A batch register fails the same way.
    let out = reg.register_batch(vec![(
        jid("batch@example.org/x"),
        Register {
            node: NodeAddress::default(),
            tags: vec![s("BATCHNEW", "1")],
            self_owned: false,
        },
    )]);
    assert_eq!(out.len(), 1);
    storage("register batch", out[0].clone().unwrap_err());
    check("register batch");
    // Operations that write nothing still work.
    assert_eq!(
        reg.update(
            &o2,
            Update {
                jid: Some(key_b.jid.clone()),
                node: NodeAddress::default(),
                tags: vec![],
            },
        ),
        Err(RegistryError::ItemNotFound)
    );
    assert_eq!(reg.get(&key_a).unwrap().owner, None);
    check("failed lookups");

    // Healed: the same operations succeed and the store follows memory.
    store.fail_writes(None);
    register(&new_thing, vec![s("BRANDNEW", "x")], false).unwrap();
    reg.claim(
        &o2,
        Claim {
            tags: tags("a"),
            public: true,
        },
    )
    .unwrap();
    reg.update(
        &o1,
        Update {
            jid: Some(key_b.jid.clone()),
            node: NodeAddress::default(),
            tags: vec![s("SN", ""), s("UPDNEW", "z")],
        },
    )
    .unwrap();
    let p = reg.disown(&o1, &key_c, 2_000).unwrap();
    assert_eq!(
        reg.resolve_disown(p.pending, true, 2_001).unwrap().result,
        Ok(())
    );
    reg.check_consistency().unwrap();
    let now = by_key(reg.export());
    assert_eq!(now, by_key(store.load().unwrap()));
    // A restart from the store sees the same.
    let restarted = Registry::with_store(config(), Box::new(store.clone())).unwrap();
    assert_eq!(by_key(restarted.export()), now);
    restarted.check_consistency().unwrap();
    same_searches(&reg, &restarted);
}

// ---------------------------------------------------------------------------
// 6. A killed process
// ---------------------------------------------------------------------------

const CHILD_DIR: &str = "IOTDISCO_STORAGE_CHILD_DIR";
const CHILD_MODE: &str = "IOTDISCO_STORAGE_CHILD_MODE";
const CHILD_THINGS: usize = 20;
const CHILD_EXIT: i32 = 77;

/// The child half of `killed_process_keeps_acknowledged_writes`: does nothing
/// unless started by it.
#[test]
fn crash_child() {
    let (Ok(dir), Ok(mode)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_MODE)) else {
        return;
    };
    let durability = match mode.as_str() {
        "flush" => Durability::Flush,
        // A one-second window: the child writes and dies well inside it.
        _ => Durability::GroupCommit(1_000),
    };
    let reg = reopen_with(&dir, config(), durability).unwrap();
    for i in 0..CHILD_THINGS {
        reg.register(
            &jid(&format!("t{i}@crash.example/imc")),
            Register {
                node: NodeAddress::default(),
                tags: vec![n("SN", i as f64)],
                self_owned: false,
            },
        )
        .unwrap();
    }
    // Every register was acknowledged; the process ends without closing the
    // registry (no destructor runs, as in a crash).
    std::process::exit(CHILD_EXIT);
}

fn run_child(mode: &str) -> (tempfile::TempDir, usize) {
    let dir = tempfile::tempdir().unwrap();
    // Created (and the format marker flushed) before the child runs.
    drop(reopen(dir.path(), config()).unwrap());
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--test-threads=1", "--nocapture"])
        .env(CHILD_DIR, dir.path())
        .env(CHILD_MODE, mode)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(
        status.code(),
        Some(CHILD_EXIT),
        "the child wrote everything, then exited without closing"
    );
    let reg = reopen(dir.path(), config()).unwrap();
    reg.check_consistency().unwrap();
    let n = reg.len();
    (dir, n)
}

#[test]
fn killed_process_keeps_acknowledged_writes() {
    let (_dir, kept) = run_child("flush");
    assert_eq!(
        kept, CHILD_THINGS,
        "Durability::Flush lost acknowledged writes"
    );
}

/// `Durability::GroupCommit` documents that a process crash can lose the last
/// window (sled buffers its log in process memory until the periodic flush):
/// the child dies inside its 1 s window, so the reopened database holds a
/// prefix of its writes (here: none of them), and opens cleanly.
#[test]
fn killed_process_loses_at_most_the_group_commit_window() {
    let (_dir, kept) = run_child("group");
    assert!(
        kept <= CHILD_THINGS,
        "Durability::GroupCommit reopened with invented things"
    );
}

// ---------------------------------------------------------------------------
// 7. Accepted input survives a restart
// ---------------------------------------------------------------------------

/// Registers one thing (and claims it when `owner` is given) in a sled registry.
/// The registry may refuse the input as a bad request; if it accepts it, the
/// thing must be listed, survive a restart unchanged, and survive export/import.
fn accepted_input_survives(
    label: &str,
    from: &str,
    node: NodeAddress,
    tags: Vec<Tag>,
    owner: Option<&str>,
) {
    // Input refused at the edge (JID rules) never reaches the registry.
    let Ok(from) = Jid::parse(from) else {
        return;
    };
    let key = ThingKey {
        jid: from.bare().clone(),
        node: node.clone(),
    };
    let dir = tempfile::tempdir().unwrap();
    let reg = reopen(dir.path(), config()).unwrap();
    let req = Register {
        node,
        tags: tags.clone(),
        self_owned: false,
    };
    match reg.register(&from, req) {
        Err(RegistryError::BadRequest(_)) => return,
        other => assert_eq!(other, Ok(RegisterOutcome::Registered), "{label}: register"),
    }
    if let Some(owner) = owner {
        let Ok(owner) = Jid::parse(owner) else {
            return;
        };
        match reg.claim(&owner, Claim { tags, public: true }) {
            Err(RegistryError::BadRequest(_)) => return,
            other => assert!(other.is_ok(), "{label}: claim: {other:?}"),
        }
    }
    let before = reg.export();
    assert_eq!(
        before.len(),
        1,
        "{label}: export lists the registered thing"
    );
    assert_eq!(before[0].key, key, "{label}: export keeps the thing's key");
    assert_eq!(
        reg.get(&key).as_ref(),
        Some(&before[0]),
        "{label}: get finds the thing"
    );
    let mut jsonl = Vec::new();
    reg.export_jsonl(&mut jsonl).unwrap();
    drop(reg);
    let reg = reopen(dir.path(), config())
        .unwrap_or_else(|e| panic!("{label}: the database no longer opens: {e}"));
    assert_eq!(reg.export(), before, "{label}: restart changed the record");
    reg.check_consistency().unwrap();
    let imported = Registry::new(config());
    assert_eq!(
        imported.import_jsonl(&jsonl[..]).map_err(|e| e.to_string()),
        Ok(1),
        "{label}: import of the export"
    );
    assert_eq!(
        imported.export(),
        before,
        "{label}: import changed the record"
    );
}

#[test]
fn ordinary_input_survives_restart() {
    let long_node = "é".repeat(1024);
    /// (label, sender, node address, tags, claiming owner).
    type Case<'a> = (&'a str, &'a str, NodeAddress, Vec<Tag>, Option<&'a str>);
    let cases: Vec<Case<'_>> = vec![
        (
            "plain",
            "t@example.org/imc",
            NodeAddress::default(),
            vec![s("SN", "1")],
            Some("o@example.org/p"),
        ),
        (
            "upper-case JIDs",
            "Ä@Example.ORG/R",
            NodeAddress::default(),
            vec![n("V", -0.0)],
            Some("Ö@Owner.Example/P"),
        ),
        (
            "one trailing dot",
            "t@example.org./r",
            NodeAddress::default(),
            vec![s("SN", "2")],
            Some("o@owner.example./p"),
        ),
        (
            "domain only",
            "example.net/x",
            NodeAddress::node("a\tb", Some("c\nd")),
            vec![s("MAN", "x")],
            None,
        ),
        (
            "1024-character node attributes",
            "t@example.org/r",
            NodeAddress::new(Some(&long_node), Some(&long_node), Some(&long_node)).unwrap(),
            vec![s("SN", "3")],
            Some("o@example.org/p"),
        ),
        (
            "32-character ASCII name",
            "t@example.org/r",
            NodeAddress::default(),
            vec![s(&"n".repeat(32), "1")],
            None,
        ),
        (
            "non-ASCII name",
            "t@example.org/r",
            NodeAddress::default(),
            vec![s("straße", "1"), s("日本", "2")],
            None,
        ),
    ];
    for (label, from, node, tags, owner) in cases {
        accepted_input_survives(label, from, node, tags, owner);
    }
}

#[test]
fn resource_with_slash_survives_restart() {
    accepted_input_survives(
        "resource a/b",
        "t@example.org/a/b",
        NodeAddress::default(),
        vec![s("SN", "1")],
        None,
    );
}

#[test]
fn thing_jid_with_two_trailing_dots_survives_restart() {
    accepted_input_survives(
        "thing t@example.org..",
        "t@example.org../r",
        NodeAddress::default(),
        vec![s("SN", "1")],
        None,
    );
}

#[test]
fn owner_jid_with_two_trailing_dots_survives_restart() {
    accepted_input_survives(
        "owner o@owners.example..",
        "t@example.org/r",
        NodeAddress::default(),
        vec![s("SN", "1")],
        Some("o@owners.example../p"),
    );
}

#[test]
fn tag_name_growing_when_upper_cased_survives_restart() {
    for name in ["ß".repeat(32), "ﬃ".repeat(11), "ß".repeat(16)] {
        // Refused when the stored (upper-cased) name is too long.
        let Ok(tag) = Tag::str(&name, "1") else {
            continue;
        };
        accepted_input_survives(
            &format!("tag name {name}"),
            "t@example.org/r",
            NodeAddress::default(),
            vec![tag],
            None,
        );
    }
}

#[test]
fn localpart_growing_when_lower_cased_survives_restart() {
    accepted_input_survives(
        "localpart of 511 'Ⱥ'",
        &format!("{}@example.org/r", "Ⱥ".repeat(511)),
        NodeAddress::default(),
        vec![s("SN", "1")],
        None,
    );
}

// ---------------------------------------------------------------------------
// 8. Import against a failing store
// ---------------------------------------------------------------------------

#[derive(Default)]
struct FlakyInner {
    records: MemoryStore,
    /// Puts that still succeed (`None` = all).
    puts_left: std::sync::Mutex<Option<usize>>,
    fail_flush: std::sync::atomic::AtomicBool,
}

/// A store whose puts fail after a number of them, or whose flush fails.
#[derive(Clone, Default)]
struct Flaky(std::sync::Arc<FlakyInner>);

impl Store for Flaky {
    fn load(&self) -> Result<Vec<ThingRecord>, iotdisco::store::StoreError> {
        self.0.records.load()
    }

    fn put(&self, record: &ThingRecord) -> Result<(), iotdisco::store::StoreError> {
        let mut left = self.0.puts_left.lock().unwrap();
        match left.as_mut() {
            Some(0) => return Err(iotdisco::store::StoreError("put failed".into())),
            Some(k) => *k -= 1,
            None => {}
        }
        self.0.records.put(record)
    }

    fn delete(&self, key: &ThingKey) -> Result<(), iotdisco::store::StoreError> {
        self.0.records.delete(key)
    }

    fn load_undelivered(
        &self,
    ) -> Result<Vec<iotdisco::store::Undelivered>, iotdisco::store::StoreError> {
        self.0.records.load_undelivered()
    }

    fn put_undelivered(
        &self,
        u: &iotdisco::store::Undelivered,
    ) -> Result<(), iotdisco::store::StoreError> {
        self.0.records.put_undelivered(u)
    }

    fn delete_undelivered(&self, thing: &ThingKey) -> Result<(), iotdisco::store::StoreError> {
        self.0.records.delete_undelivered(thing)
    }

    fn flush(&self) -> Result<(), iotdisco::store::StoreError> {
        if self.0.fail_flush.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(iotdisco::store::StoreError("flush failed".into()));
        }
        Ok(())
    }
}

fn every_kind_jsonl() -> Vec<u8> {
    let reg = Registry::new(config());
    every_kind(&reg);
    let mut out = Vec::new();
    reg.export_jsonl(&mut out).unwrap();
    out
}

#[test]
fn import_failing_put_imports_nothing() {
    let jsonl = every_kind_jsonl();
    let store = Flaky::default();
    *store.0.puts_left.lock().unwrap() = Some(3);
    let reg = Registry::with_store(config(), Box::new(store.clone())).unwrap();
    let e = reg.import_jsonl(&jsonl[..]).unwrap_err();
    assert!(matches!(e, RegistryError::Storage(_)), "{e:?}");
    assert!(reg.is_empty());
    assert!(
        store.0.records.is_empty(),
        "the partial import was rolled back"
    );
    // Healed, the same import succeeds.
    *store.0.puts_left.lock().unwrap() = None;
    assert_eq!(reg.import_jsonl(&jsonl[..]).unwrap(), 6);
    assert_eq!(by_key(reg.export()), by_key(store.load().unwrap()));
}

#[test]
fn import_failing_flush_imports_nothing() {
    let jsonl = every_kind_jsonl();
    let store = Flaky::default();
    store
        .0
        .fail_flush
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let reg = Registry::with_store(config(), Box::new(store.clone())).unwrap();
    let e = reg.import_jsonl(&jsonl[..]).unwrap_err();
    assert!(matches!(e, RegistryError::Storage(_)), "{e:?}");
    assert!(reg.is_empty());
    let restarted = Registry::with_store(config(), Box::new(store.clone())).unwrap();
    assert!(
        restarted.is_empty(),
        "a failed import must not appear after a restart ({} things did)",
        restarted.len()
    );
}

#[test]
fn odd_paths_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    fs::write(&file, b"not a database").unwrap();
    let out = catch_unwind(|| reopen(&file, config()).map(|_| ()));
    let out = out.expect("no panic");
    assert!(out.is_err(), "a regular file is not a database directory");
    // A missing nested directory is created.
    let nested = dir.path().join("x/y/z");
    let reg = reopen(&nested, config()).unwrap();
    assert!(reg.is_empty());
}

/// Through the stanza engine, a failed store write is an `internal-server-error`
/// reply AND a [`Handled::StoreFailed`] outcome the host can log (the C ABI's
/// `IOTDISCO_ESTORAGE`); once the store works again, so does the engine.
#[test]
fn the_engine_reports_a_failed_store_write() {
    use iotdisco::{Engine, EngineConfig, Handled, Outbox};
    let store = MemoryStore::new();
    let reg = Registry::with_store(config(), Box::new(store.clone())).unwrap();
    let engine = Engine::new("discovery.example.org", reg, EngineConfig::default()).unwrap();
    let register = b"<iq type='set' from='t@example.org/imc' to='discovery.example.org' id='r1'>\
        <register xmlns='urn:xmpp:iot:discovery'><str name='SN' value='1'/></register></iq>";
    let mut out = Outbox::new();
    store.fail_writes(Some("disk on fire"));
    let h = engine.handle(register, 0, &mut out);
    assert_eq!(h, Handled::StoreFailed("disk on fire".into()));
    let replies = out.to_strings();
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(
        replies[0].contains("type='error'")
            && replies[0].contains("id='r1'")
            && replies[0].contains("<internal-server-error"),
        "{replies:?}"
    );
    assert!(engine.registry().is_empty(), "nothing registered");

    store.fail_writes(None);
    out.clear();
    assert_eq!(engine.handle(register, 0, &mut out), Handled::Done);
    assert_eq!(
        out.to_strings(),
        ["<iq type='result' from='discovery.example.org' to='t@example.org/imc' id='r1'/>"]
    );
    assert_eq!(engine.registry().len(), 1);
}
