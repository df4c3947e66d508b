//! Differential tests: the registry against a naive model (`oracle/model.rs`).
//!
//! * `registry_matches_model`: random populations (0-300 things over a small key
//!   space and small tag alphabets, so keys, tag sets and values collide), random
//!   operation sequences (register / claim / update / remove / unregister / disown
//!   with its resolution / expire / presence), the outcome of every operation
//!   compared with the model, then random searches over all 17 operators compared
//!   page by page (things, order, tags without `KEY`, owner, `more`), and full
//!   page walks compared with the model's whole result.
//! * `notification_routes_match_model`: the same, also checking where every
//!   notification is sent (presence.rs `route`).
//! * `large_population_matches_naive_scan`: 30,000+ generated things (with churn:
//!   unregistered, private, disowned, re-used ids), the standard queries, 200
//!   random searches and targeted planner queries (ranges over far more than
//!   `RANGE_KEY_BUDGET` values, masks over more than `MASK_KEY_BUDGET` keys, exact
//!   sets above `SMALL_DRIVER`, unproductive walks that escalate, deep offsets)
//!   against a naive scan, with page walks.
//!
//! The proptest runs use a fixed seed and keep no regression files. Environment:
//! `ORACLE_CASES` (default 64 / 24), `ORACLE_SEED`, `ORACLE_SHRINK_MS` (shrinking
//! time limit, default 20 s) tune them; `ORACLE_LARGE_SEED` picks another large
//! population. A failure message lists every request of the (shrunk) case with the
//! registry's answer.

#[path = "oracle/model.rs"]
mod model;

use std::collections::BTreeSet;

use iotdisco::datagen;
use iotdisco::query::{Mask, NumRange, Operator, StrRange};
use iotdisco::tag::Number;
use iotdisco::{
    BareJid, Claim, Config, Jid, NodeAddress, NotificationKind, PendingId, Register,
    RegisterOutcome, Registry, RegistryError, Search, SearchResult, Tag, TagName, TagValue,
    ThingKey, ThingRecord, Update, UpdateOutcome,
};
use model::{EKind, Limits, MKey, MOp, MRegister, MThing, MUpdate, Model, Route, Val};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{RngSeed, TestCaseError};

// ---------------------------------------------------------------------------
// Alphabets
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Pref {
    Str,
    Num,
    Either,
}

/// (canonical name, spellings, preferred value type). The last one is never
/// registered (searches for an unknown tag).
const NAMES: [(&str, &[&str], Pref); 9] = [
    ("KEY", &["KEY", "key", "Key"], Pref::Str),
    ("SN", &["SN", "sn", "Sn"], Pref::Num),
    ("MAN", &["MAN", "man"], Pref::Str),
    ("MODEL", &["MODEL", "Model"], Pref::Str),
    ("V", &["V", "v"], Pref::Num),
    ("LAT", &["LAT", "lat"], Pref::Num),
    ("STRASSE", &["STRASSE", "straße", "Straße"], Pref::Str),
    ("ROOM", &["ROOM", "room"], Pref::Either),
    ("NOPE", &["NOPE", "nope"], Pref::Str),
];
const REGISTERED_NAMES: usize = 8;

const STR_POOL: &[&str] = &[
    "a",
    "b",
    "ab",
    "abc",
    "B",
    "aa",
    "ba",
    "zz",
    "1",
    "10",
    "9",
    "www.ktc.se",
    "IMC",
    "é",
    "ö",
    "ÿ",
    "日本",
    "a*b",
    "a.b",
    "(x)",
    "[",
    "\\",
    "%",
    "a b",
    "a\tb",
    "x\n",
    "$^",
    "a|b",
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

/// Extra search operands (prefixes, extremes).
const OPERANDS: &[&str] = &[
    "",
    "a",
    "b",
    "k",
    "k1",
    "k10",
    "w",
    "www",
    "z",
    "É",
    "\u{10FFFF}",
];

/// Mask fragments: regex metacharacters, prefixes, infixes.
const FRAGMENTS: &[&str] = &[
    "", "", "a", "b", "ab", "w", "www.", "ktc", ".se", "é", "ö", "(", "x)", "[", "\\", "*", "^",
    "$", "|", "+", "?", "{1}", "日", "1", "0", ".", "-", "~", "#", "&", " ", "k", "k1",
];

const WILDCARDS: &[Option<&str>] = &[
    None,
    Some(""),
    Some("*"),
    Some("*"),
    Some("*"),
    Some("*"),
    Some("%"),
    Some("??"),
    Some(".*"),
    Some("a"),
    Some("\\"),
    Some("é"),
    Some("$"),
];

const RESOURCES: &[&str] = &["imc", "IMC", "r2", "phone"];
const OWNERS: u8 = 6;
const JIDS: u16 = 120;
const NODE_VARIANTS: u16 = 6;
const KEY_SPACE: u16 = JIDS * NODE_VARIANTS;
const TIMEOUT_MS: u64 = 30_000;

// ---------------------------------------------------------------------------
// Generated inputs
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct TagSpec {
    name: usize,
    spell: usize,
    roll: u8,
    s: String,
    n: f64,
}

#[derive(Clone, Debug)]
struct TagList {
    tags: Vec<TagSpec>,
    /// Keep duplicate names (the request is then a bad request).
    dup: bool,
}

#[derive(Clone, Debug)]
enum ThingRef {
    /// The first thing the model holds at or after this key-space index
    /// (cyclically), so that shrinking other requests rarely changes the target.
    Live(u16),
    /// Any key of the key space (may not exist).
    Space(u16),
}

#[derive(Clone, Copy, Debug)]
enum Who {
    /// The thing's current owner (owner 0 if unclaimed).
    Owner,
    /// Owner `k` of the owner pool.
    Other(u8),
    /// The thing's own bare JID.
    Itself,
}

#[derive(Clone, Debug)]
enum Tweak {
    Exact,
    DropOne(Index),
    ChangeOne(Index, TagSpec),
    AddOne(TagSpec),
    AddEmpty(TagSpec),
    DupOne(Index),
    NegZero,
}

#[derive(Clone, Copy, Debug)]
enum UpdWho {
    Thing,
    ThingWithOwnJid,
    Owner,
    Other(u8),
}

#[derive(Clone, Copy, Debug)]
enum Then {
    Ack,
    Nack,
    AtDeadline,
    Late,
    Defer,
}

#[derive(Clone, Copy, Debug)]
enum When {
    Now,
    AtDeadline,
    Late,
}

#[derive(Clone, Debug)]
enum Op {
    Register {
        thing: ThingRef,
        spell: u8,
        res: Option<u8>,
        tags: TagList,
        self_owned: bool,
    },
    Claim {
        thing: ThingRef,
        who: Who,
        spell: u8,
        public: bool,
        tweak: Tweak,
        shuffle: u64,
        lower: bool,
        fallback: TagList,
    },
    Update {
        thing: ThingRef,
        who: UpdWho,
        spell: u8,
        res: Option<u8>,
        tags: Vec<(TagSpec, bool)>,
        dup: bool,
    },
    Remove {
        thing: ThingRef,
        who: Who,
        spell: u8,
    },
    Unregister {
        thing: ThingRef,
        res: Option<u8>,
    },
    Disown {
        thing: ThingRef,
        who: Who,
        then: Then,
    },
    Resolve {
        pick: Index,
        stale: bool,
        ack: bool,
        when: When,
    },
    Expire {
        advance: u64,
        /// Expire exactly at the earliest pending deadline instead.
        to_deadline: bool,
    },
    Presence {
        thing: ThingRef,
        res: Option<u8>,
        available: bool,
    },
    Tick(u64),
    /// A search in the middle of the sequence.
    Search(SearchSpec),
}

#[derive(Clone, Debug)]
struct Pop {
    key: u16,
    spell: u8,
    res: Option<u8>,
    tags: TagList,
    self_owned: bool,
    claim: Option<(u8, bool)>,
    shuffle: u64,
}

#[derive(Clone, Debug)]
struct OpSpec {
    kind: u8,
    name: usize,
    spell: usize,
    s1: String,
    s2: String,
    i1: bool,
    i2: bool,
    ordered: bool,
    n1: f64,
    n2: f64,
    pieces: Vec<String>,
    wildcard: Option<&'static str>,
    /// Derive name and operands from one tag of the search's anchor thing (a
    /// public claimed thing), so that searches find something.
    use_anchor: bool,
    anchored: Anchored,
}

#[derive(Clone, Debug)]
struct Anchored {
    /// Which of the anchor's tags.
    tag: Index,
    /// Keep `kind` even when it does not fit the tag's value type.
    keep_kind: bool,
    /// Ranges include the anchor's value (when it is one of their ends).
    inclusive: bool,
    /// Mask shape and cut points in the anchor's value.
    style: u8,
    cut1: Index,
    cut2: Index,
}

#[derive(Clone, Debug)]
struct SearchSpec {
    anchor: Index,
    /// Every operator anchored, non-strict and inclusive: the anchor matches
    /// (unless an operator looks at its `KEY`).
    coherent: bool,
    ops: Vec<OpSpec>,
    offset: u32,
    max_count: Option<u32>,
}

#[derive(Clone, Debug)]
struct Walk {
    anchor: Index,
    coherent: bool,
    ops: Vec<OpSpec>,
    k: u32,
}

#[derive(Clone, Debug)]
struct CfgSpec {
    max_results: u32,
    max_ops: usize,
    max_tags: usize,
    max_things: Option<u32>,
    max_pending: usize,
    key_chars: usize,
    delete_key: bool,
}

#[derive(Clone, Debug)]
struct Case {
    cfg: CfgSpec,
    population: Vec<Pop>,
    ops: Vec<Op>,
    searches: Vec<SearchSpec>,
    walks: Vec<Walk>,
}

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

fn str_value() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just(String::new()),
        10 => select(STR_POOL).prop_map(String::from),
        3 => (0..150u32).prop_map(|i| format!("k{i}")),
        1 => "\\PC{0,12}",
        1 => "[a-c]{1,4}",
        1 => Just("y".repeat(128)),
    ]
}

fn num_value() -> impl Strategy<Value = f64> {
    use proptest::num::f64 as pf;
    prop_oneof![
        8 => select(NUM_POOL),
        3 => (-400i32..400).prop_map(|i| f64::from(i) / 4.0),
        1 => pf::NORMAL | pf::SUBNORMAL | pf::ZERO | pf::POSITIVE | pf::NEGATIVE,
    ]
}

fn tag_spec(names: usize) -> impl Strategy<Value = TagSpec> {
    (0..names, 0..3usize, 0..100u8, str_value(), num_value()).prop_map(
        |(name, spell, roll, s, n)| TagSpec {
            name,
            spell,
            roll,
            s,
            n,
        },
    )
}

fn tag_list() -> impl Strategy<Value = TagList> {
    (
        prop::collection::vec(tag_spec(REGISTERED_NAMES), 0..6),
        prop::bool::weighted(0.08),
    )
        .prop_map(|(tags, dup)| TagList { tags, dup })
}

fn thing_ref(space_weight: u32) -> impl Strategy<Value = ThingRef> {
    prop_oneof![
        10 => (0..KEY_SPACE).prop_map(ThingRef::Live),
        space_weight => (0..KEY_SPACE).prop_map(ThingRef::Space),
    ]
}

fn who() -> impl Strategy<Value = Who> {
    prop_oneof![
        6 => Just(Who::Owner),
        3 => (0..OWNERS).prop_map(Who::Other),
        1 => Just(Who::Itself),
    ]
}

fn res() -> impl Strategy<Value = Option<u8>> {
    prop_oneof![1 => Just(None), 4 => (0..RESOURCES.len() as u8).prop_map(Some)]
}

fn tweak() -> impl Strategy<Value = Tweak> {
    prop_oneof![
        12 => Just(Tweak::Exact),
        1 => any::<Index>().prop_map(Tweak::DropOne),
        1 => (any::<Index>(), tag_spec(REGISTERED_NAMES)).prop_map(|(i, t)| Tweak::ChangeOne(i, t)),
        1 => tag_spec(REGISTERED_NAMES).prop_map(Tweak::AddOne),
        1 => tag_spec(REGISTERED_NAMES).prop_map(Tweak::AddEmpty),
        1 => any::<Index>().prop_map(Tweak::DupOne),
        1 => Just(Tweak::NegZero),
    ]
}

fn claim_who() -> impl Strategy<Value = Who> {
    prop_oneof![
        7 => (0..OWNERS).prop_map(Who::Other),
        2 => Just(Who::Owner),
        1 => Just(Who::Itself),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let register = (
        thing_ref(10),
        any::<u8>(),
        res(),
        tag_list(),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(thing, spell, res, tags, self_owned)| Op::Register {
            thing,
            spell,
            res,
            tags,
            self_owned,
        });
    let claim = (
        thing_ref(1),
        claim_who(),
        any::<u8>(),
        prop::bool::weighted(0.8),
        tweak(),
        any::<u64>(),
        any::<bool>(),
        tag_list(),
    )
        .prop_map(
            |(thing, who, spell, public, tweak, shuffle, lower, fallback)| Op::Claim {
                thing,
                who,
                spell,
                public,
                tweak,
                shuffle,
                lower,
                fallback,
            },
        );
    let upd_who = prop_oneof![
        4 => Just(UpdWho::Thing),
        1 => Just(UpdWho::ThingWithOwnJid),
        4 => Just(UpdWho::Owner),
        1 => (0..OWNERS).prop_map(UpdWho::Other),
    ];
    let update = (
        thing_ref(1),
        upd_who,
        any::<u8>(),
        res(),
        prop::collection::vec(
            (tag_spec(REGISTERED_NAMES), prop::bool::weighted(0.25)),
            0..4,
        ),
        prop::bool::weighted(0.05),
    )
        .prop_map(|(thing, who, spell, res, tags, dup)| Op::Update {
            thing,
            who,
            spell,
            res,
            tags,
            dup,
        });
    let remove = (thing_ref(1), who(), any::<u8>()).prop_map(|(thing, who, spell)| Op::Remove {
        thing,
        who,
        spell,
    });
    let unregister = (thing_ref(1), res()).prop_map(|(thing, res)| Op::Unregister { thing, res });
    let then = prop_oneof![
        4 => Just(Then::Ack),
        1 => Just(Then::Nack),
        1 => Just(Then::AtDeadline),
        1 => Just(Then::Late),
        3 => Just(Then::Defer),
    ];
    let disown =
        (thing_ref(1), who(), then).prop_map(|(thing, who, then)| Op::Disown { thing, who, then });
    let when = prop_oneof![
        3 => Just(When::Now),
        1 => Just(When::AtDeadline),
        1 => Just(When::Late),
    ];
    let resolve = (
        any::<Index>(),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.8),
        when,
    )
        .prop_map(|(pick, stale, ack, when)| Op::Resolve {
            pick,
            stale,
            ack,
            when,
        });
    let expire = (0..40_000u64, any::<bool>()).prop_map(|(advance, to_deadline)| Op::Expire {
        advance,
        to_deadline,
    });
    let presence =
        (thing_ref(1), res(), prop::bool::weighted(0.6)).prop_map(|(thing, res, available)| {
            Op::Presence {
                thing,
                res,
                available,
            }
        });
    let tick = (0..20_000u64).prop_map(Op::Tick);
    prop_oneof![
        20 => register,
        14 => claim,
        20 => update,
        5 => remove,
        5 => unregister,
        8 => disown,
        5 => resolve,
        2 => expire,
        5 => presence,
        3 => tick,
        4 => search_spec().prop_map(Op::Search),
    ]
}

fn pop() -> impl Strategy<Value = Pop> {
    (
        0..KEY_SPACE,
        any::<u8>(),
        res(),
        tag_list(),
        prop::bool::weighted(0.1),
        prop::option::weighted(0.7, (0..OWNERS, prop::bool::weighted(0.8))),
        any::<u64>(),
    )
        .prop_map(|(key, spell, res, tags, self_owned, claim, shuffle)| Pop {
            key,
            spell,
            res,
            tags,
            self_owned,
            claim,
            shuffle,
        })
}

fn operand() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => select(STR_POOL).prop_map(String::from),
        3 => select(OPERANDS).prop_map(String::from),
        2 => (0..150u32).prop_map(|i| format!("k{i}")),
        1 => "\\PC{0,6}",
    ]
}

fn op_spec() -> impl Strategy<Value = OpSpec> {
    let name = prop_oneof![
        12 => 0..REGISTERED_NAMES,
        1 => Just(REGISTERED_NAMES),
    ];
    (
        (0..17u8, name, 0..3usize),
        (operand(), operand(), any::<bool>(), any::<bool>()),
        (prop::bool::weighted(0.75), num_value(), num_value()),
        (
            prop::collection::vec(
                prop_oneof![
                    3 => select(FRAGMENTS).prop_map(String::from),
                    1 => select(STR_POOL).prop_map(String::from),
                ],
                1..4,
            ),
            select(WILDCARDS),
        ),
        prop::bool::weighted(0.85),
        (
            any::<Index>(),
            prop::bool::weighted(0.15),
            prop::bool::weighted(0.8),
            0..5u8,
            any::<Index>(),
            any::<Index>(),
        )
            .prop_map(|(tag, keep_kind, inclusive, style, cut1, cut2)| Anchored {
                tag,
                keep_kind,
                inclusive,
                style,
                cut1,
                cut2,
            }),
    )
        .prop_map(
            |(
                (kind, name, spell),
                (s1, s2, i1, i2),
                (ordered, n1, n2),
                (pieces, wildcard),
                use_anchor,
                anchored,
            )| {
                OpSpec {
                    use_anchor,
                    anchored,
                    kind,
                    name,
                    spell,
                    s1,
                    s2,
                    i1,
                    i2,
                    ordered,
                    n1,
                    n2,
                    pieces,
                    wildcard,
                }
            },
        )
}

fn search_spec() -> impl Strategy<Value = SearchSpec> {
    let n_ops = prop_oneof![
        1 => Just(0usize),
        16 => Just(1usize),
        12 => Just(2usize),
        8 => Just(3usize),
        4 => Just(4usize),
    ];
    let offset = prop_oneof![4 => Just(0u32), 3 => 0..20u32, 2 => 0..320u32];
    let max_count = prop_oneof![
        2 => Just(None),
        1 => Just(Some(0u32)),
        20 => (1..=120u32).prop_map(Some),
    ];
    (
        any::<Index>(),
        prop::bool::weighted(0.5),
        n_ops.prop_flat_map(|n| prop::collection::vec(op_spec(), n)),
        offset,
        max_count,
    )
        .prop_map(|(anchor, coherent, ops, offset, max_count)| SearchSpec {
            anchor,
            coherent,
            ops,
            offset,
            max_count,
        })
}

fn walk() -> impl Strategy<Value = Walk> {
    let k = prop_oneof![4 => 1..8u32, 1 => 8..=120u32];
    (
        any::<Index>(),
        prop::bool::weighted(0.5),
        prop::collection::vec(op_spec(), 1..3),
        k,
    )
        .prop_map(|(anchor, coherent, ops, k)| Walk {
            anchor,
            coherent,
            ops,
            k,
        })
}

fn cfg_spec() -> impl Strategy<Value = CfgSpec> {
    (
        select(&[5u32, 20, 100][..]),
        prop_oneof![1 => Just(3usize), 6 => Just(32usize)],
        prop_oneof![1 => Just(4usize), 3 => Just(64usize)],
        prop_oneof![1 => Just(Some(40u32)), 5 => Just(None)],
        prop_oneof![1 => Just(2usize), 4 => Just(100_000usize)],
        select(&[10usize, 43, 200][..]),
        prop_oneof![3 => Just(true), 1 => Just(false)],
    )
        .prop_map(
            |(max_results, max_ops, max_tags, max_things, max_pending, key_chars, delete_key)| {
                CfgSpec {
                    max_results,
                    max_ops,
                    max_tags,
                    max_things,
                    max_pending,
                    key_chars,
                    delete_key,
                }
            },
        )
}

fn case() -> impl Strategy<Value = Case> {
    (
        cfg_spec(),
        prop::collection::vec(pop(), 0..300),
        prop::collection::vec(op(), 0..400),
        prop::collection::vec(search_spec(), 0..60),
        prop::collection::vec(walk(), 0..10),
    )
        .prop_map(|(cfg, population, ops, searches, walks)| Case {
            cfg,
            population,
            ops,
            searches,
            walks,
        })
}

// ---------------------------------------------------------------------------
// Conversions
// ---------------------------------------------------------------------------

fn config_of(c: &CfgSpec) -> Config {
    let mut cfg = Config {
        max_search_results: c.max_results,
        max_search_operators: c.max_ops,
        max_tags_per_thing: c.max_tags,
        max_pending_disowns: c.max_pending,
        disown_timeout_ms: TIMEOUT_MS,
        disown_key_chars: c.key_chars,
        delete_key_on_claim: c.delete_key,
        ..Config::default()
    };
    if let Some(n) = c.max_things {
        cfg.max_things = n;
    }
    cfg
}

fn limits_of(cfg: &Config) -> Limits {
    Limits {
        max_results: cfg.max_search_results,
        max_ops: cfg.max_search_operators,
        max_tags: cfg.max_tags_per_thing,
        max_things: cfg.max_things as usize,
        max_pending: cfg.max_pending_disowns,
        timeout_ms: cfg.disown_timeout_ms,
        delete_key: cfg.delete_key_on_claim,
    }
}

fn thing_jid(i: u16) -> String {
    format!("t{i}@d{}.example", i % 4)
}

fn owner_jid(k: u8) -> String {
    format!("o{k}@own.example")
}

/// Another spelling of a canonical (lower-case) bare JID.
fn spell(canon: &str, s: u8) -> String {
    match s % 4 {
        0 => canon.to_string(),
        1 => canon.to_uppercase(),
        2 => {
            let mut c = canon.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect())
                .unwrap_or_default()
        }
        _ => format!("{canon}."),
    }
}

fn full_jid(canon: &str, s: u8, res: Option<&str>) -> Jid {
    let text = match res {
        Some(r) => format!("{}/{r}", spell(canon, s)),
        None => spell(canon, s),
    };
    Jid::parse(&text).expect("valid JID")
}

fn bare(canon: &str, s: u8) -> BareJid {
    BareJid::parse(&spell(canon, s)).expect("valid bare JID")
}

fn node_of(k: &MKey) -> NodeAddress {
    NodeAddress::new(
        k.node[0].as_deref(),
        k.node[1].as_deref(),
        k.node[2].as_deref(),
    )
    .expect("valid node")
}

fn thing_key(k: &MKey, s: u8) -> ThingKey {
    ThingKey {
        jid: bare(&k.jid, s),
        node: node_of(k),
    }
}

fn mkey_of(k: &ThingKey) -> MKey {
    MKey {
        jid: k.jid.as_str().to_string(),
        node: [
            k.node.node_id.as_deref().map(String::from),
            k.node.source_id.as_deref().map(String::from),
            k.node.cache_type.as_deref().map(String::from),
        ],
    }
}

/// Key `i` of the key space, and the node address a request carries for it
/// (variant 5 spells variant 1 with an empty `sourceId`).
fn space_key(i: u16) -> (MKey, NodeAddress) {
    let jid = thing_jid(i / NODE_VARIANTS);
    let s = |x: &str| Some(x.to_string());
    let node = match i % NODE_VARIANTS {
        0 => [None, None, None],
        1 | 5 => [s("n1"), None, None],
        2 => [s("n1"), s("S"), None],
        3 => [s("n2"), None, s("C")],
        _ => [s("N1"), None, None],
    };
    let key = MKey { jid, node };
    let addr = if i % NODE_VARIANTS == 5 {
        NodeAddress::new(Some("n1"), Some(""), None).expect("valid node")
    } else {
        node_of(&key)
    };
    (key, addr)
}

/// The key-space index of a key (variant 5 spells variant 1).
fn space_index(k: &MKey) -> u16 {
    let n: u16 = k.jid[1..k.jid.find('@').expect("thing JID")]
        .parse()
        .expect("thing JID");
    let variant = match &k.node {
        [None, None, None] => 0,
        [Some(a), None, None] if a == "n1" => 1,
        [Some(_), Some(_), None] => 2,
        [Some(_), None, Some(_)] => 3,
        _ => 4,
    };
    n * NODE_VARIANTS + variant
}

fn val_of(v: &TagValue) -> Val {
    match v {
        TagValue::Str(s) => Val::Str(s.to_string()),
        TagValue::Num(n) => Val::Num(n.get()),
    }
}

fn tag_value(v: &Val) -> TagValue {
    match v {
        Val::Str(s) => TagValue::string(s, "X").expect("valid string value"),
        Val::Num(n) => TagValue::number(*n, "X").expect("finite number"),
    }
}

fn make_tag(spelled: &str, v: &Val) -> Tag {
    Tag {
        name: TagName::new(spelled).expect("valid tag name"),
        value: tag_value(v),
    }
}

/// (spelled name, canonical name, value).
fn resolve_spec(t: &TagSpec) -> (String, String, Val) {
    let (canon, spellings, pref) = NAMES[t.name];
    let as_str = match pref {
        Pref::Str => t.roll < 85,
        Pref::Num => t.roll >= 85,
        Pref::Either => t.roll < 50,
    };
    let v = if as_str {
        Val::Str(t.s.clone())
    } else {
        Val::Num(t.n)
    };
    (
        spellings[t.spell % spellings.len()].to_string(),
        canon.to_string(),
        v,
    )
}

/// Request tags and the model's view of them.
fn resolve_list(l: &TagList) -> (Vec<Tag>, Vec<(String, Val)>) {
    let mut seen = BTreeSet::new();
    let mut tags = Vec::new();
    let mut mtags = Vec::new();
    for t in &l.tags {
        if !l.dup && !seen.insert(t.name) {
            continue;
        }
        let (spelled, canon, v) = resolve_spec(t);
        tags.push(make_tag(&spelled, &v));
        mtags.push((canon, v));
    }
    (tags, mtags)
}

fn shuffled<T>(mut v: Vec<T>, seed: u64) -> Vec<T> {
    let mut rng = datagen::Rng::new(seed, 0);
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
    v
}

fn ekind(e: &RegistryError) -> EKind {
    match e {
        RegistryError::BadRequest(_) => EKind::BadRequest,
        RegistryError::ItemNotFound => EKind::ItemNotFound,
        RegistryError::NotAllowed => EKind::NotAllowed,
        RegistryError::ResourceConstraint(_) => EKind::ResourceConstraint,
        RegistryError::Storage(_) => EKind::Storage,
        RegistryError::Internal(_) => EKind::Internal,
    }
}

fn vals_eq(a: &Val, b: &Val) -> bool {
    match (a, b) {
        (Val::Str(x), Val::Str(y)) => x == y,
        (Val::Num(x), Val::Num(y)) => x == y,
        _ => false,
    }
}

fn tags_eq(got: &[Tag], exp: &[(String, Val)]) -> bool {
    got.len() == exp.len()
        && got
            .iter()
            .zip(exp)
            .all(|(g, (n, v))| g.name.as_str() == n && vals_eq(&val_of(&g.value), v))
}

fn record_matches(r: &ThingRecord, t: &MThing) -> bool {
    mkey_of(&r.key) == t.key
        && r.last_resource.as_deref() == t.resource.as_deref()
        && r.owner.as_ref().map(BareJid::as_str) == t.owner.as_deref()
        && r.public == t.public
        && tags_eq(&r.tags, &t.tags)
        && r.claim_digest.is_some() == t.claimed_with.is_some()
}

/// The operator of a spec; anchored specs take their name and operands from one
/// tag of `anchor`; `coherent` makes every operator anchored, of the anchor
/// value's type, non-strict and inclusive.
fn operator_of(o: &OpSpec, anchor: Option<&MThing>, coherent: bool) -> Operator {
    let (_, spellings, _) = NAMES[o.name];
    let mut spelled = spellings[o.spell % spellings.len()].to_string();
    let mut kind = o.kind;
    let mut s1 = o.s1.clone();
    let mut n1 = o.n1;
    let mut mask: Option<(String, Option<&str>)> = None;
    let a = &o.anchored;
    let ordered = o.ordered || coherent;
    if let Some(t) = anchor.filter(|_| o.use_anchor || coherent) {
        if !t.tags.is_empty() {
            let (n, v) = &t.tags[a.tag.index(t.tags.len())];
            spelled = if o.spell % 2 == 1 {
                n.to_lowercase()
            } else {
                n.clone()
            };
            match v {
                Val::Str(v) => {
                    if (!a.keep_kind || coherent) && kind >= 9 {
                        kind = (kind - 9) % 9;
                    }
                    let cuts: Vec<usize> = v
                        .char_indices()
                        .map(|(i, _)| i)
                        .chain(std::iter::once(v.len()))
                        .collect();
                    let (c1, c2) = (
                        cuts[a.cut1.index(cuts.len())],
                        cuts[a.cut2.index(cuts.len())],
                    );
                    let (i, j) = (c1.min(c2), c1.max(c2));
                    let w = o.wildcard.filter(|w| !w.is_empty()).unwrap_or("*");
                    mask = Some(match a.style {
                        0 => (format!("{}{w}", &v[..i]), Some(w)),
                        1 => (format!("{w}{}{w}", &v[i..j]), Some(w)),
                        2 => (format!("{w}{}", &v[j..]), Some(w)),
                        3 => (format!("{}{w}{}", &v[..i], &v[j..]), Some(w)),
                        _ => (v.clone(), o.wildcard),
                    });
                    s1 = v.clone();
                }
                Val::Num(x) => {
                    if (!a.keep_kind || coherent) && kind < 9 {
                        kind = 9 + kind % 8;
                    }
                    n1 = *x;
                }
            }
        }
    }
    let name = TagName::new(&spelled).expect("valid name");
    let (mut i1, mut i2) = (o.i1, o.i2);
    if (o.use_anchor && a.inclusive || coherent) && anchor.is_some() {
        // Let the anchor match: strict comparisons become non-strict, and a
        // range has the anchor's value (`s1` / `n1`) at one end: included in a
        // range, excluded from an excluded range.
        kind = match kind {
            2 | 4 | 11 | 13 => kind + 1,
            1 | 10 if coherent => kind - 1,
            k => k,
        };
        let negated = kind == 7 || kind == 16;
        let low = if kind < 9 {
            !(ordered && s1 > o.s2)
        } else {
            !(ordered && n1 > o.n2)
        };
        if low {
            i1 = !negated;
        } else {
            i2 = !negated;
        }
    }
    let s = || s1.as_str().into();
    let n = || Number::new(n1, "X").expect("finite");
    let (lo_s, hi_s) = if ordered && s1 > o.s2 {
        (&o.s2, &s1)
    } else {
        (&s1, &o.s2)
    };
    let (lo_n, hi_n) = if ordered && n1 > o.n2 {
        (o.n2, n1)
    } else {
        (n1, o.n2)
    };
    let sr = || StrRange {
        min: lo_s.as_str().into(),
        min_included: i1,
        max: hi_s.as_str().into(),
        max_included: i2,
    };
    let nr = || NumRange {
        min: Number::new(lo_n, "X").expect("finite"),
        min_included: i1,
        max: Number::new(hi_n, "X").expect("finite"),
        max_included: i2,
    };
    match kind {
        0 => Operator::StrEq(name, s()),
        1 => Operator::StrNEq(name, s()),
        2 => Operator::StrGt(name, s()),
        3 => Operator::StrGtEq(name, s()),
        4 => Operator::StrLt(name, s()),
        5 => Operator::StrLtEq(name, s()),
        6 => Operator::StrRange(name, sr()),
        7 => Operator::StrNRange(name, sr()),
        8 => {
            let (text, wildcard) = mask.unwrap_or_else(|| {
                let joiner = o.wildcard.filter(|w| !w.is_empty()).unwrap_or("*");
                (o.pieces.join(joiner), o.wildcard)
            });
            Operator::StrMask(name, Mask::new(&text, wildcard).expect("mask compiles"))
        }
        9 => Operator::NumEq(name, n()),
        10 => Operator::NumNEq(name, n()),
        11 => Operator::NumGt(name, n()),
        12 => Operator::NumGtEq(name, n()),
        13 => Operator::NumLt(name, n()),
        14 => Operator::NumLtEq(name, n()),
        15 => Operator::NumRange(name, nr()),
        _ => Operator::NumNRange(name, nr()),
    }
}

/// The model's reading of an operator (the request's data: name, operands,
/// mask text and wildcard).
fn mop_of(op: &Operator) -> MOp {
    let sr = |n: &TagName, r: &StrRange, neg: bool| {
        let args = (
            n.as_str().to_string(),
            r.min.to_string(),
            r.min_included,
            r.max.to_string(),
            r.max_included,
        );
        if neg {
            MOp::StrNRange(args.0, args.1, args.2, args.3, args.4)
        } else {
            MOp::StrRange(args.0, args.1, args.2, args.3, args.4)
        }
    };
    let nr = |n: &TagName, r: &NumRange, neg: bool| {
        let args = (
            n.as_str().to_string(),
            r.min.get(),
            r.min_included,
            r.max.get(),
            r.max_included,
        );
        if neg {
            MOp::NumNRange(args.0, args.1, args.2, args.3, args.4)
        } else {
            MOp::NumRange(args.0, args.1, args.2, args.3, args.4)
        }
    };
    let s = |n: &TagName| n.as_str().to_string();
    match op {
        Operator::StrEq(n, c) => MOp::StrEq(s(n), c.to_string()),
        Operator::StrNEq(n, c) => MOp::StrNEq(s(n), c.to_string()),
        Operator::StrGt(n, c) => MOp::StrGt(s(n), c.to_string()),
        Operator::StrGtEq(n, c) => MOp::StrGtEq(s(n), c.to_string()),
        Operator::StrLt(n, c) => MOp::StrLt(s(n), c.to_string()),
        Operator::StrLtEq(n, c) => MOp::StrLtEq(s(n), c.to_string()),
        Operator::StrRange(n, r) => sr(n, r, false),
        Operator::StrNRange(n, r) => sr(n, r, true),
        Operator::StrMask(n, m) => {
            MOp::StrMask(s(n), m.source().to_string(), m.wildcard().map(String::from))
        }
        Operator::NumEq(n, c) => MOp::NumEq(s(n), c.get()),
        Operator::NumNEq(n, c) => MOp::NumNEq(s(n), c.get()),
        Operator::NumGt(n, c) => MOp::NumGt(s(n), c.get()),
        Operator::NumGtEq(n, c) => MOp::NumGtEq(s(n), c.get()),
        Operator::NumLt(n, c) => MOp::NumLt(s(n), c.get()),
        Operator::NumLtEq(n, c) => MOp::NumLtEq(s(n), c.get()),
        Operator::NumRange(n, r) => nr(n, r, false),
        Operator::NumNRange(n, r) => nr(n, r, true),
        Operator::StrRegEx(n, r) => MOp::StrRegEx(
            s(n),
            model::model_regex(r.source())
                .expect("the model reads every pattern the registry does"),
        ),
        Operator::AnyName(m, op) => MOp::AnyName(
            m.source().to_string(),
            m.wildcard().to_string(),
            Box::new(mop_of(op)),
        ),
    }
}

/// Compares one search page with the model's.
fn check_page(
    got: &Result<SearchResult, RegistryError>,
    exp: &Result<(Vec<&MThing>, bool), EKind>,
    what: &str,
) -> Result<(), String> {
    match (got, exp) {
        (Err(e), Err(k)) if ekind(e) == *k => Ok(()),
        (Ok(r), Ok((things, more))) => {
            let gk: Vec<MKey> = r.things.iter().map(|f| mkey_of(&f.key)).collect();
            let ek: Vec<MKey> = things.iter().map(|t| t.key.clone()).collect();
            if gk != ek {
                return Err(format!(
                    "{what}: page differs\n registry: {gk:?}\n model:    {ek:?}"
                ));
            }
            if r.more != *more {
                return Err(format!(
                    "{what}: more = {} but model says {more} (page {} things)",
                    r.more,
                    gk.len()
                ));
            }
            for (f, t) in r.things.iter().zip(things) {
                let visible: Vec<(String, Val)> =
                    t.tags.iter().filter(|(n, _)| n != "KEY").cloned().collect();
                if Some(f.owner.as_str()) != t.owner.as_deref() || !tags_eq(&f.tags, &visible) {
                    return Err(format!(
                        "{what}: thing {:?} differs\n registry: owner {} tags {:?}\n model:    owner {:?} tags {:?}",
                        t.key, f.owner, f.tags, t.owner, visible
                    ));
                }
            }
            Ok(())
        }
        (g, e) => Err(format!(
            "{what}: registry {:?} vs model {:?}",
            g.as_ref().map(|r| r.things.len()),
            e.as_ref().map(|(p, m)| (p.len(), *m))
        )),
    }
}

// ---------------------------------------------------------------------------
// The harness: one registry, one model, the same requests.
// ---------------------------------------------------------------------------

struct Harness {
    reg: Registry,
    m: Model,
    now: u64,
    routes: bool,
    key_chars: usize,
    issued: Vec<u64>,
    /// The requests so far and the registry's answers, for failure reports.
    log: Vec<String>,
}

fn fail(msg: String) -> TestCaseError {
    TestCaseError::fail(msg)
}

impl Harness {
    fn new(cfg: Config, routes: bool) -> Self {
        let key_chars = cfg.disown_key_chars.clamp(22, 128);
        Harness {
            m: Model::new(limits_of(&cfg)),
            reg: Registry::new(cfg),
            now: 1_000,
            routes,
            key_chars,
            issued: Vec::new(),
            log: Vec::new(),
        }
    }

    fn resolve(&self, r: &ThingRef) -> (MKey, NodeAddress) {
        match r {
            ThingRef::Live(i) => {
                let distance = |t: &MThing| (space_index(&t.key) + KEY_SPACE - i) % KEY_SPACE;
                match self.m.live().min_by_key(|t| distance(t)) {
                    Some(t) => (t.key.clone(), node_of(&t.key)),
                    None => space_key(*i),
                }
            }
            ThingRef::Space(i) => space_key(*i),
        }
    }

    fn owner_for(&self, key: &MKey, who: Who) -> String {
        match who {
            Who::Owner => self
                .m
                .get(key)
                .and_then(|t| t.owner.clone())
                .unwrap_or_else(|| owner_jid(0)),
            Who::Other(k) => owner_jid(k),
            Who::Itself => key.jid.clone(),
        }
    }

    fn check_route(
        &self,
        to: &Jid,
        key: &MKey,
        route: &Route,
        what: &str,
    ) -> Result<(), TestCaseError> {
        if to.bare().as_str() != key.jid {
            return Err(fail(format!(
                "{what}: notification to {to}, thing is {}",
                key.jid
            )));
        }
        if self.routes && !route.iter().any(|r| r.as_deref() == to.resource()) {
            return Err(fail(format!(
                "{what}: notification to {to}, expected one of {route:?} (presence {:?})",
                self.m.presence.get(&key.jid)
            )));
        }
        Ok(())
    }

    /// The registry's record of `key` equals the model's.
    fn check_thing(&self, key: &MKey, what: &str) -> Result<(), TestCaseError> {
        let got = self.reg.get(&thing_key(key, 0));
        match (got, self.m.get(key)) {
            (None, None) => Ok(()),
            (Some(r), Some(t)) if record_matches(&r, t) => Ok(()),
            (g, e) => Err(fail(format!(
                "{what}: record of {key:?} differs\n registry: {g:?}\n model:    {e:?}"
            ))),
        }
    }

    fn check_global(&self, what: &str) -> Result<(), TestCaseError> {
        let st = self.reg.stats();
        prop_assert_eq!(self.reg.len(), self.m.len(), "{}: len", what);
        prop_assert_eq!(
            st.searchable,
            self.m.searchable() as u64,
            "{}: searchable",
            what
        );
        prop_assert_eq!(
            st.pending_disowns,
            self.m.pending.len(),
            "{}: pending",
            what
        );
        prop_assert_eq!(
            self.reg.next_deadline(),
            self.m.pending.iter().map(|p| p.deadline).min(),
            "{}: next deadline",
            what
        );
        Ok(())
    }

    fn register(
        &mut self,
        key: &MKey,
        node: NodeAddress,
        spell_: u8,
        res: Option<&str>,
        tags: &TagList,
        self_owned: bool,
    ) -> Result<(), TestCaseError> {
        let (rtags, mtags) = resolve_list(tags);
        let from = full_jid(&key.jid, spell_, res);
        let got = self.reg.register(
            &from,
            Register {
                node,
                tags: rtags,
                self_owned,
            },
        );
        let exp = self.m.register(key, res, &mtags, self_owned);
        let what = format!("register {key:?} res={res:?} {mtags:?} selfOwned={self_owned}");
        self.log.push(format!("{what} -> {got:?}"));
        match (&got, &exp) {
            (Ok(RegisterOutcome::Registered), Ok(MRegister::Registered)) => {}
            (
                Ok(RegisterOutcome::AlreadyClaimed { owner, public }),
                Ok(MRegister::AlreadyClaimed {
                    owner: o,
                    public: p,
                }),
            ) if owner.as_str() == o && public == p => {}
            (Err(e), Err(k)) if ekind(e) == *k => {}
            _ => {
                return Err(fail(format!("{what}: registry {got:?}, model {exp:?}")));
            }
        }
        self.check_thing(key, &what)
    }

    fn claim_tags(
        &self,
        key: &MKey,
        tweak: &Tweak,
        fallback: &TagList,
        lower: bool,
    ) -> Vec<(String, String, Val)> {
        let mut base: Vec<(String, String, Val)> = match self.m.get(key) {
            // Half the claims of a thing whose KEY a claim deleted use the tags it
            // was claimed with (the owner's retry), half its tags as they are.
            Some(t) => match (&t.claimed_with, lower) {
                (Some(c), false) => c,
                _ => &t.tags,
            }
            .iter()
            .map(|(n, v)| {
                let spelled = if lower { n.to_lowercase() } else { n.clone() };
                (spelled, n.clone(), v.clone())
            })
            .collect(),
            None => fallback
                .tags
                .iter()
                .map(resolve_spec)
                .fold(Vec::new(), |mut acc, t| {
                    if !acc.iter().any(|(_, c, _)| *c == t.1) {
                        acc.push(t);
                    }
                    acc
                }),
        };
        match tweak {
            Tweak::Exact => {}
            Tweak::DropOne(i) => {
                if !base.is_empty() {
                    base.remove(i.index(base.len()));
                }
            }
            Tweak::ChangeOne(i, t) => {
                if !base.is_empty() {
                    let p = i.index(base.len());
                    base[p].2 = resolve_spec(t).2;
                }
            }
            Tweak::AddOne(t) | Tweak::AddEmpty(t) => {
                let (s, c, mut v) = resolve_spec(t);
                if matches!(tweak, Tweak::AddEmpty(_)) {
                    v = Val::Str(String::new());
                }
                base.push((s, c, v));
            }
            Tweak::DupOne(i) => {
                if !base.is_empty() {
                    let t = base[i.index(base.len())].clone();
                    base.push(t);
                }
            }
            Tweak::NegZero => {
                for t in &mut base {
                    if let Val::Num(x) = &mut t.2 {
                        if *x == 0.0 {
                            *x = -*x;
                        }
                    }
                }
            }
        }
        base
    }

    fn claim(
        &mut self,
        key: &MKey,
        claimant: &str,
        spell_: u8,
        public: bool,
        tags: Vec<(String, String, Val)>,
        shuffle: u64,
    ) -> Result<(), TestCaseError> {
        let tags = shuffled(tags, shuffle);
        let rtags: Vec<Tag> = tags.iter().map(|(s, _, v)| make_tag(s, v)).collect();
        let mtags: Vec<(String, Val)> = tags.into_iter().map(|(_, c, v)| (c, v)).collect();
        let from = full_jid(claimant, spell_, Some("phone"));
        let got = self.reg.claim(
            &from,
            Claim {
                tags: rtags,
                public,
            },
        );
        let exp = self.m.claim(claimant, &mtags, public);
        let what = format!("claim by {claimant} of {mtags:?} public={public}");
        self.log
            .push(format!("{what} -> {:?}", got.as_ref().map(|c| &c.thing)));
        match (&got, &exp) {
            (Ok(c), Ok(mc)) => {
                let k = mkey_of(&c.thing);
                if k != mc.key || c.public != mc.public {
                    return Err(fail(format!("{what}: registry {c:?}, model {mc:?}")));
                }
                let n = &c.notification;
                let kind_ok = n.kind
                    == NotificationKind::Claimed {
                        owner: BareJid::parse(claimant).expect("valid"),
                        public,
                    };
                if !kind_ok || n.node != c.thing.node {
                    return Err(fail(format!("{what}: notification {n:?}")));
                }
                self.check_route(&n.to, &mc.key, &mc.route, &what)?;
                self.check_thing(&mc.key, &what)?;
            }
            (Err(e), Err(k)) if ekind(e) == *k => {}
            _ => {
                return Err(fail(format!("{what}: registry {got:?}, model {exp:?}")));
            }
        }
        self.check_thing(key, &what)
    }

    /// Resolves a pending disown in both and, on success, reads the new KEY back.
    fn resolve_disown(&mut self, pid: u64, ack: bool, at: u64) -> Result<(), TestCaseError> {
        let got = self.reg.resolve_disown(PendingId(pid), ack, at);
        let exp = self.m.resolve(pid, ack, at);
        let what = format!("resolve disown {pid} ack={ack} at={at}");
        self.log
            .push(format!("{what} -> {:?}", got.as_ref().map(|r| &r.result)));
        match (&got, &exp) {
            (None, None) => Ok(()),
            (Some(r), Some((owner, res)))
                if r.pending == PendingId(pid) && r.owner.as_str() == owner =>
            {
                match (&r.result, res) {
                    (Ok(()), Ok(key)) => {
                        let rec = self.reg.get(&thing_key(key, 0));
                        let value = match rec.as_ref().map(|r| r.tags.as_slice()) {
                            Some([t]) if t.name.as_str() == "KEY" => match &t.value {
                                TagValue::Str(s) => s.to_string(),
                                TagValue::Num(_) => String::new(),
                            },
                            _ => String::new(),
                        };
                        let alphabet_ok = value
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                        if value.chars().count() != self.key_chars || !alphabet_ok {
                            return Err(fail(format!(
                                "{what}: disowned thing should hold one random KEY of {} URL-safe characters, has {rec:?}",
                                self.key_chars
                            )));
                        }
                        self.m.set_disowned_key(key, value);
                        self.check_thing(key, &what)
                    }
                    (Err(e), Err(k)) if ekind(e) == *k => Ok(()),
                    _ => Err(fail(format!("{what}: registry {got:?}, model {exp:?}"))),
                }
            }
            _ => Err(fail(format!("{what}: registry {got:?}, model {exp:?}"))),
        }
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Register {
                thing,
                spell,
                res,
                tags,
                self_owned,
            } => {
                let (key, node) = self.resolve(thing);
                let res = res.map(|r| RESOURCES[r as usize]);
                self.register(&key, node, *spell, res, tags, *self_owned)?;
            }
            Op::Claim {
                thing,
                who,
                spell,
                public,
                tweak,
                shuffle,
                lower,
                fallback,
            } => {
                let (key, _) = self.resolve(thing);
                let claimant = self.owner_for(&key, *who);
                let tags = self.claim_tags(&key, tweak, fallback, *lower);
                self.claim(&key, &claimant, *spell, *public, tags, *shuffle)?;
            }
            Op::Update {
                thing,
                who,
                spell,
                res,
                tags,
                dup,
            } => {
                let (key, node) = self.resolve(thing);
                let thing_res = res.map(|r| RESOURCES[r as usize]);
                let (from, resource, jid) = match who {
                    UpdWho::Thing => (key.jid.clone(), thing_res, None),
                    UpdWho::ThingWithOwnJid => (key.jid.clone(), thing_res, Some(key.jid.clone())),
                    UpdWho::Owner => (
                        self.owner_for(&key, Who::Owner),
                        Some("phone"),
                        Some(key.jid.clone()),
                    ),
                    UpdWho::Other(k) => (owner_jid(*k), Some("phone"), Some(key.jid.clone())),
                };
                let mut seen = BTreeSet::new();
                let mut rtags = Vec::new();
                let mut mtags = Vec::new();
                for (t, delete) in tags {
                    if !*dup && !seen.insert(t.name) {
                        continue;
                    }
                    let (s, c, mut v) = resolve_spec(t);
                    if *delete {
                        v = Val::Str(String::new());
                    }
                    rtags.push(make_tag(&s, &v));
                    mtags.push((c, v));
                }
                let got = self.reg.update(
                    &full_jid(&from, *spell, resource),
                    Update {
                        jid: jid.as_deref().map(|j| bare(j, spell.wrapping_add(1))),
                        node,
                        tags: rtags,
                    },
                );
                let exp = self
                    .m
                    .update(&from, resource, jid.as_deref(), &key.node, &mtags);
                let what = format!(
                    "update of {key:?} by {from}/{resource:?} (jid {jid:?}) with {mtags:?}"
                );
                self.log.push(format!("{what} -> {got:?}"));
                match (&got, &exp) {
                    (Ok(UpdateOutcome::Updated), Ok(MUpdate::Updated))
                    | (Ok(UpdateOutcome::Disowned), Ok(MUpdate::Disowned)) => {}
                    (Err(e), Err(k)) if ekind(e) == *k => {}
                    _ => {
                        return Err(fail(format!("{what}: registry {got:?}, model {exp:?}")));
                    }
                }
                self.check_thing(&key, &what)?;
            }
            Op::Remove { thing, who, spell } => {
                let (key, node) = self.resolve(thing);
                let from = self.owner_for(&key, *who);
                let tk = ThingKey {
                    jid: bare(&key.jid, *spell),
                    node,
                };
                let got = self
                    .reg
                    .remove(&full_jid(&from, *spell, Some("phone")), &tk);
                let exp = self.m.remove(&from, &key);
                let what = format!("remove {key:?} by {from}");
                self.log
                    .push(format!("{what} -> {:?}", got.as_ref().map(|_| ())));
                match (&got, &exp) {
                    (Ok(r), Ok(route)) => {
                        let n = &r.notification;
                        if n.kind != NotificationKind::Removed
                            || mkey_of(&ThingKey {
                                jid: n.to.bare().clone(),
                                node: n.node.clone(),
                            }) != key
                        {
                            return Err(fail(format!("{what}: notification {n:?}")));
                        }
                        self.check_route(&n.to, &key, route, &what)?;
                    }
                    (Err(e), Err(k)) if ekind(e) == *k => {}
                    _ => {
                        return Err(fail(format!("{what}: registry {got:?}, model {exp:?}")));
                    }
                }
                self.check_thing(&key, &what)?;
            }
            Op::Unregister { thing, res } => {
                let (key, node) = self.resolve(thing);
                let res = res.map(|r| RESOURCES[r as usize]);
                let got = self.reg.unregister(&full_jid(&key.jid, 3, res), node);
                self.log.push(format!("unregister {key:?} -> {got:?}"));
                prop_assert!(got.is_ok(), "unregister {:?}: {:?}", key, got);
                self.m.unregister(&key);
                self.check_thing(&key, "unregister")?;
            }
            Op::Disown { thing, who, then } => {
                let (key, _) = self.resolve(thing);
                let from = self.owner_for(&key, *who);
                let got = self.reg.disown(
                    &full_jid(&from, 0, Some("phone")),
                    &thing_key(&key, 2),
                    self.now,
                );
                let what = format!("disown {key:?} by {from} at {}", self.now);
                self.log.push(format!(
                    "{what} -> {:?}",
                    got.as_ref().map(|d| (d.pending, d.deadline_ms))
                ));
                let pid = match &got {
                    Ok(d) => d.pending.0,
                    Err(_) => 0,
                };
                if got.is_ok() {
                    prop_assert!(
                        !self.m.pending.iter().any(|p| p.id == pid),
                        "{}: pending id {} reused",
                        what,
                        pid
                    );
                }
                let exp = self.m.disown(&from, &key, self.now, pid);
                match (&got, &exp) {
                    (Ok(d), Ok((deadline, route))) => {
                        let n = &d.notification;
                        if d.deadline_ms != *deadline
                            || n.kind != NotificationKind::Disowned
                            || mkey_of(&ThingKey {
                                jid: n.to.bare().clone(),
                                node: n.node.clone(),
                            }) != key
                        {
                            return Err(fail(format!("{what}: registry {d:?}, model {exp:?}")));
                        }
                        self.check_route(&n.to, &key, route, &what)?;
                        self.issued.push(pid);
                        let deadline = *deadline;
                        match then {
                            Then::Ack => self.resolve_disown(pid, true, self.now)?,
                            Then::Nack => self.resolve_disown(pid, false, self.now)?,
                            Then::AtDeadline => self.resolve_disown(pid, true, deadline)?,
                            Then::Late => self.resolve_disown(pid, true, deadline + 1)?,
                            Then::Defer => {}
                        }
                    }
                    (Err(e), Err(k)) if ekind(e) == *k => {}
                    _ => {
                        return Err(fail(format!("{what}: registry {got:?}, model {exp:?}")));
                    }
                }
                self.check_thing(&key, &what)?;
            }
            Op::Resolve {
                pick,
                stale,
                ack,
                when,
            } => {
                let (pid, deadline) = if *stale && !self.issued.is_empty() {
                    (self.issued[pick.index(self.issued.len())], self.now)
                } else if self.m.pending.is_empty() {
                    (u64::MAX, self.now)
                } else {
                    let p = &self.m.pending[pick.index(self.m.pending.len())];
                    (p.id, p.deadline)
                };
                let at = match when {
                    When::Now => self.now,
                    When::AtDeadline => deadline,
                    When::Late => deadline + 1,
                };
                self.resolve_disown(pid, *ack, at)?;
            }
            Op::Expire {
                advance,
                to_deadline,
            } => {
                let earliest = self.m.pending.iter().map(|p| p.deadline).min();
                let at = match earliest {
                    Some(d) if *to_deadline => d,
                    _ => self.now + advance,
                };
                self.now = self.now.max(at);
                let mut got: Vec<(u64, String)> = Vec::new();
                for r in self.reg.expire(at) {
                    prop_assert_eq!(
                        r.result.as_ref().map_err(ekind),
                        Err(EKind::NotAllowed),
                        "expired disown must fail"
                    );
                    got.push((r.pending.0, r.owner.as_str().to_string()));
                }
                self.log.push(format!("expire at {at} -> {got:?}"));
                let mut exp = self.m.expire(at);
                got.sort();
                exp.sort();
                prop_assert_eq!(got, exp, "expire at {}", at);
            }
            Op::Presence {
                thing,
                res,
                available,
            } => {
                let (key, _) = self.resolve(thing);
                let resource = res.map(|r| RESOURCES[r as usize]);
                self.reg
                    .presence(&full_jid(&key.jid, 1, resource), *available);
                self.m.set_presence(&key.jid, resource, *available);
                self.log.push(format!(
                    "presence {}/{resource:?} available={available}",
                    key.jid
                ));
            }
            Op::Tick(ms) => self.now += ms,
            Op::Search(s) => self.search(s)?,
        }
        self.check_global(&format!("after {op:?}"))
    }

    fn populate(&mut self, p: &Pop) -> Result<(), TestCaseError> {
        let (key, node) = space_key(p.key);
        let res = p.res.map(|r| RESOURCES[r as usize]);
        self.register(&key, node, p.spell, res, &p.tags, p.self_owned)?;
        if let Some((owner, public)) = p.claim {
            let (_, mtags) = resolve_list(&p.tags);
            let tags = mtags
                .into_iter()
                .map(|(c, v)| (c.to_lowercase(), c, v))
                .collect();
            self.claim(&key, &owner_jid(owner), p.spell, public, tags, p.shuffle)?;
        }
        self.check_global("populate")
    }

    /// Every record, in id order, equals the model's; the indexes are consistent.
    fn check_all(&self) -> Result<(), TestCaseError> {
        let export = self.reg.export();
        let live: Vec<&MThing> = self.m.live().collect();
        prop_assert_eq!(export.len(), live.len(), "export length");
        for (r, t) in export.iter().zip(&live) {
            prop_assert!(
                record_matches(r, t),
                "export differs (id order):\n registry: {:?}\n model:    {:?}",
                r,
                t
            );
        }
        self.reg.check_consistency().map_err(fail)
    }

    /// A public claimed thing for anchored operators.
    fn anchor(&self, pick: &Index) -> Option<&MThing> {
        let searchable: Vec<&MThing> = self
            .m
            .live()
            .filter(|t| t.owner.is_some() && t.public)
            .collect();
        (!searchable.is_empty()).then(|| searchable[pick.index(searchable.len())])
    }

    fn search(&self, s: &SearchSpec) -> Result<(), TestCaseError> {
        let anchor = self.anchor(&s.anchor);
        let operators: Vec<Operator> = s
            .ops
            .iter()
            .map(|o| operator_of(o, anchor, s.coherent))
            .collect();
        let mops: Vec<MOp> = operators.iter().map(mop_of).collect();
        let req = Search {
            operators,
            offset: s.offset,
            max_count: s.max_count,
        };
        let got = self.reg.search(&req);
        let exp = self.m.search(&mops, s.offset, s.max_count);
        check_page(
            &got,
            &exp,
            &format!(
                "search {mops:?} offset {} maxCount {:?}",
                s.offset, s.max_count
            ),
        )
        .map_err(fail)
    }

    fn walk(&self, w: &Walk) -> Result<(), TestCaseError> {
        let anchor = self.anchor(&w.anchor);
        let operators: Vec<Operator> = w
            .ops
            .iter()
            .map(|o| operator_of(o, anchor, w.coherent))
            .collect();
        let mops: Vec<MOp> = operators.iter().map(mop_of).collect();
        let all: Vec<MKey> = self
            .m
            .search_all(&mops)
            .iter()
            .map(|t| t.key.clone())
            .collect();
        let mut seen: Vec<MKey> = Vec::new();
        let mut offset = 0u32;
        for _ in 0..=all.len() + 1 {
            let req = Search {
                operators: operators.clone(),
                offset,
                max_count: Some(w.k),
            };
            let got = self.reg.search(&req);
            let exp = self.m.search(&mops, offset, Some(w.k));
            let what = format!("walk {mops:?} k={} offset={offset}", w.k);
            check_page(&got, &exp, &what).map_err(fail)?;
            let Ok(page) = got else {
                return Ok(());
            };
            seen.extend(page.things.iter().map(|f| mkey_of(&f.key)));
            if !page.more {
                prop_assert_eq!(&seen, &all, "{}: pages concatenated", what);
                return Ok(());
            }
            prop_assert!(!page.things.is_empty(), "{}: empty page with more", what);
            offset += page.things.len() as u32;
        }
        Err(fail(format!("walk {mops:?} k={} never ended", w.k)))
    }
}

fn run(case: &Case, routes: bool) -> Result<(), TestCaseError> {
    let mut h = Harness::new(config_of(&case.cfg), routes);
    let with_log = |h: &Harness, e: TestCaseError| match e {
        TestCaseError::Fail(r) => fail(format!(
            "{}\n{:?}\nrequests (registry's answers):\n  {}",
            r.message(),
            case.cfg,
            h.log.join("\n  ")
        )),
        other => other,
    };
    for p in &case.population {
        h.populate(p).map_err(|e| with_log(&h, e))?;
    }
    for op in &case.ops {
        h.step(op).map_err(|e| with_log(&h, e))?;
    }
    h.check_all().map_err(|e| with_log(&h, e))?;
    for s in &case.searches {
        h.search(s).map_err(|e| with_log(&h, e))?;
    }
    for w in &case.walks {
        h.walk(w).map_err(|e| with_log(&h, e))?;
    }
    h.check_all().map_err(|e| with_log(&h, e))
}

fn proptest_config(default_cases: u32) -> ProptestConfig {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    ProptestConfig {
        cases: env("ORACLE_CASES").map_or(default_cases, |c| c as u32),
        rng_seed: RngSeed::Fixed(env("ORACLE_SEED").unwrap_or(0x1071_d15c)),
        failure_persistence: None,
        // Shrink hard but within the time budget of the suite.
        max_shrink_iters: 100_000,
        max_shrink_time: env("ORACLE_SHRINK_MS").map_or(20_000, |t| t as u32),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(proptest_config(64))]

    #[test]
    fn registry_matches_model(case in case()) {
        run(&case, false)?;
    }
}

proptest! {
    #![proptest_config(proptest_config(24))]

    #[test]
    fn notification_routes_match_model(case in case()) {
        run(&case, true)?;
    }
}

// ---------------------------------------------------------------------------
// The large deterministic case
// ---------------------------------------------------------------------------

fn mtags_of(tags: &[Tag]) -> Vec<(String, Val)> {
    tags.iter()
        .map(|t| (t.name.as_str().to_string(), val_of(&t.value)))
        .collect()
}

fn gkey(g: &datagen::GenThing) -> MKey {
    MKey {
        jid: g.jid.bare().as_str().to_string(),
        node: [None, None, None],
    }
}

/// One random operator over the generated population's vocabulary.
fn random_operator(r: &mut datagen::Rng, sample: &[datagen::GenThing]) -> Operator {
    let name = |n: &str| TagName::new(n).expect("valid name");
    let num = |x: f64| Number::new(x, "X").expect("finite");
    let pick = |r: &mut datagen::Rng, xs: &[&'static str]| xs[r.below(xs.len() as u64) as usize];
    let some = |r: &mut datagen::Rng| &sample[r.below(sample.len() as u64) as usize];
    let value_of = |g: &datagen::GenThing, n: &str| -> TagValue {
        g.tags
            .iter()
            .find(|t| t.name.as_str() == n)
            .map(|t| t.value.clone())
            .expect("generated tag")
    };
    let nrange = |r: &mut datagen::Rng, lo: f64, hi: f64| {
        let (a, b) = (r.coord(lo, hi), r.coord(lo, hi));
        NumRange {
            min: num(a.min(b)),
            min_included: r.below(4) != 0,
            max: num(a.max(b)),
            max_included: r.below(4) != 0,
        }
    };
    let narrow = |r: &mut datagen::Rng, lo: f64, hi: f64| {
        let c = r.coord(lo, hi);
        let w = [0.001, 0.05, 1.0, 10.0, 60.0][r.below(5) as usize];
        NumRange {
            min: num(c - w),
            min_included: r.below(2) == 0,
            max: num(c + w),
            max_included: r.below(2) == 0,
        }
    };
    let digits = |r: &mut datagen::Rng, n: u64| -> String {
        (0..n)
            .map(|_| char::from(b'0' + r.below(10) as u8))
            .collect()
    };
    match r.below(19) {
        0 => Operator::StrEq(name("MAN"), pick(r, &datagen::MANUFACTURERS).into()),
        1 => Operator::StrNEq(name("COUNTRY"), pick(r, &datagen::COUNTRIES).into()),
        2 => {
            let m = pick(r, &datagen::MODELS);
            if r.below(2) == 0 {
                Operator::StrEq(name("MODEL"), m.into())
            } else {
                Operator::StrNEq(name("MODEL"), m.into())
            }
        }
        3 => Operator::NumRange(name("V"), nrange(r, 0.5, 3.5)),
        4 => {
            let v = num(datagen::VERSIONS[r.below(6) as usize]);
            match r.below(4) {
                0 => Operator::NumGt(name("V"), v),
                1 => Operator::NumGtEq(name("V"), v),
                2 => Operator::NumLt(name("V"), v),
                _ => Operator::NumLtEq(name("V"), v),
            }
        }
        5 => Operator::StrEq(name("CLASS"), pick(r, &datagen::CLASSES).into()),
        6 => {
            let a = r.below(200);
            let b = a + r.below(200 - a);
            let range = datagen::str_range(
                &format!("City{a:03}"),
                r.below(2) == 0,
                &format!("City{b:03}"),
                r.below(2) == 0,
            );
            if r.below(4) == 0 {
                Operator::StrNRange(name("CITY"), range)
            } else {
                Operator::StrRange(name("CITY"), range)
            }
        }
        7 => {
            let (m, w) = match r.below(4) {
                0 => (format!("City{}*", r.below(2)), "*"),
                1 => (format!("*{}", r.below(10)), "*"),
                2 => (format!("City%{}", r.below(10)), "%"),
                _ => (format!("Ci*ty*{}*", r.below(10)), "*"),
            };
            Operator::StrMask(name("CITY"), Mask::new(&m, Some(w)).expect("mask"))
        }
        8 => {
            let len = r.below(5);
            let m = match r.below(3) {
                0 => format!("{}*", digits(r, len)),
                1 => format!("*{}*", digits(r, len)),
                _ => format!("{}*{}", digits(r, len), digits(r, 1)),
            };
            Operator::StrMask(name("SN"), Mask::new(&m, Some("*")).expect("mask"))
        }
        9 => {
            let (la, lb) = (1 + r.below(18), 1 + r.below(18));
            let a = digits(r, la);
            let b = digits(r, lb);
            match r.below(3) {
                0 => Operator::StrGt(name("SN"), a.into()),
                1 => Operator::StrLtEq(name("SN"), a.into()),
                _ => Operator::StrRange(
                    name("SN"),
                    datagen::str_range(
                        a.clone().min(b.clone()).as_str(),
                        true,
                        a.max(b).as_str(),
                        false,
                    ),
                ),
            }
        }
        10 => {
            if r.below(4) == 0 {
                Operator::NumNRange(name("LAT"), narrow(r, -90.0, 90.0))
            } else {
                Operator::NumRange(name("LAT"), narrow(r, -90.0, 90.0))
            }
        }
        11 => match r.below(3) {
            0 => Operator::NumGt(name("LON"), num(r.coord(-180.0, 180.0))),
            1 => Operator::NumLt(name("LON"), num(r.coord(-180.0, 180.0))),
            _ => Operator::NumRange(name("LON"), nrange(r, -180.0, 180.0)),
        },
        12 => {
            let g = some(r);
            match value_of(g, "SN") {
                TagValue::Str(s) => Operator::StrEq(name("SN"), s.as_str().into()),
                TagValue::Num(_) => unreachable!("SN is a string"),
            }
        }
        13 => {
            let g = some(r);
            match value_of(g, "KEY") {
                TagValue::Str(s) => Operator::StrEq(name("KEY"), s.as_str().into()),
                TagValue::Num(_) => unreachable!("KEY is a string"),
            }
        }
        14 => {
            let c = pick(r, &datagen::COUNTRIES);
            if r.below(2) == 0 {
                Operator::StrLt(name("COUNTRY"), c.into())
            } else {
                Operator::StrGtEq(name("COUNTRY"), c.into())
            }
        }
        15 => Operator::NumNEq(name("V"), num(datagen::VERSIONS[r.below(6) as usize])),
        16 => {
            let g = some(r);
            match value_of(g, "LAT") {
                TagValue::Num(x) => Operator::NumEq(name("LAT"), x),
                TagValue::Str(_) => unreachable!("LAT is a number"),
            }
        }
        17 => match r.below(3) {
            // LON is a string for the things whose owner changed it.
            0 => Operator::StrEq(name("LON"), "east".into()),
            1 => Operator::StrGtEq(name("LON"), "a".into()),
            _ => Operator::NumNEq(name("LON"), num(0.0)),
        },
        _ => {
            let m = format!("www.{}*", pick(r, &["a", "s", "n", "e", "k"]));
            Operator::StrMask(name("MAN"), Mask::new(&m, Some("*")).expect("mask"))
        }
    }
}

#[test]
fn large_population_matches_naive_scan() {
    let seed_env = std::env::var("ORACLE_LARGE_SEED").ok();
    let seed: u64 = seed_env.and_then(|v| v.parse().ok()).unwrap_or(0x5eed_0347);
    const N: u64 = 30_000;
    let cfg = Config::default();
    let reg = Registry::new(cfg.clone());
    let mut m = Model::new(limits_of(&cfg));
    let install = |reg: &Registry, m: &mut Model, g: &datagen::GenThing| {
        datagen::install(reg, g).expect("install");
        let key = gkey(g);
        let got = m.register(&key, g.jid.resource(), &mtags_of(&g.tags), false);
        assert_eq!(got, Ok(MRegister::Registered));
        // The claim presents the thing's unique tag set (SN and KEY are unique):
        // the model scans all things for it, which is quadratic, so the result
        // is checked against the export below instead.
        m.assign_owner(&key, g.owner.as_str(), true);
    };
    let things: Vec<datagen::GenThing> = datagen::population(seed, N).collect();
    for g in &things {
        install(&reg, &mut m, g);
    }

    // Churn: unregister some (freeing ids), make some private, disown some,
    // then add new things (re-using the freed ids, last freed first) and a few
    // self-owned ones.
    for g in things.iter().step_by(37) {
        reg.unregister(&g.jid, NodeAddress::default())
            .expect("unregister");
        m.unregister(&gkey(g));
    }
    let mut now = 10_000;
    for (i, g) in things.iter().enumerate().skip(5).step_by(53) {
        if i % 37 == 0 {
            continue;
        }
        let owner = Jid::from(g.owner.clone());
        let c = reg
            .claim(
                &owner,
                Claim {
                    tags: g.tags.clone(),
                    public: false,
                },
            )
            .expect("re-claim as private");
        assert_eq!(mkey_of(&c.thing), gkey(g));
        m.assign_owner(&gkey(g), g.owner.as_str(), false);
    }
    for (i, g) in things.iter().enumerate().skip(11).step_by(701) {
        if i % 37 == 0 {
            continue;
        }
        let owner = Jid::from(g.owner.clone());
        let d = reg
            .disown(&owner, &ThingKey::of(g.jid.bare().clone()), now)
            .expect("disown");
        let exp = m.disown(g.owner.as_str(), &gkey(g), now, d.pending.0);
        assert_eq!(exp.map(|e| e.0), Ok(d.deadline_ms));
        let r = reg
            .resolve_disown(d.pending, true, now + 1)
            .expect("pending");
        assert_eq!(r.result, Ok(()));
        let (_, res) = m.resolve(d.pending.0, true, now + 1).expect("pending");
        let key = res.expect("disowned");
        let rec = reg.get(&ThingKey::of(g.jid.bare().clone())).expect("kept");
        assert_eq!(rec.tags.len(), 1);
        assert_eq!(rec.tags[0].name.as_str(), "KEY");
        let TagValue::Str(v) = &rec.tags[0].value else {
            panic!("KEY is a string")
        };
        m.set_disowned_key(&key, v.to_string());
        now += 5;
    }
    // Owners update some things: LAT deleted, LON turned into a string, V
    // changed (stale numeric columns or postings would show in searches).
    let owner_update = |reg: &Registry, m: &mut Model, g: &datagen::GenThing, tags: Vec<Tag>| {
        let owner = Jid::parse(&format!("{}/tool", g.owner)).expect("jid");
        let got = reg.update(
            &owner,
            Update {
                jid: Some(g.jid.bare().clone()),
                node: NodeAddress::default(),
                tags: tags.clone(),
            },
        );
        let exp = m.update(
            g.owner.as_str(),
            Some("tool"),
            Some(g.jid.bare().as_str()),
            &[None, None, None],
            &mtags_of(&tags),
        );
        match (&got, &exp) {
            (Ok(UpdateOutcome::Updated), Ok(MUpdate::Updated))
            | (Ok(UpdateOutcome::Disowned), Ok(MUpdate::Disowned)) => {}
            (Err(e), Err(k)) if ekind(e) == *k => {}
            _ => panic!("owner update of {}: registry {got:?}, model {exp:?}", g.jid),
        }
    };
    for g in things.iter().skip(3).step_by(97) {
        owner_update(&reg, &mut m, g, vec![Tag::str("LAT", "").expect("tag")]);
    }
    for (i, g) in things.iter().enumerate().skip(4).step_by(101) {
        let v = datagen::VERSIONS[i % 6] + 0.5;
        let tags = vec![
            Tag::str("LON", "east").expect("tag"),
            Tag::num("V", v).expect("tag"),
        ];
        owner_update(&reg, &mut m, g, tags);
    }
    for i in N..N + 500 {
        install(&reg, &mut m, &datagen::thing(seed, i));
    }
    for i in 0..50u64 {
        let g = datagen::thing(seed, N + 1_000 + i);
        let jid = Jid::parse(&format!("self{i}@selfowned.example/x")).expect("jid");
        let key = MKey {
            jid: jid.bare().as_str().to_string(),
            node: [None, None, None],
        };
        let got = reg
            .register(
                &jid,
                Register {
                    node: NodeAddress::default(),
                    tags: g.tags.clone(),
                    self_owned: true,
                },
            )
            .expect("register");
        assert_eq!(got, RegisterOutcome::Registered);
        m.register(&key, Some("x"), &mtags_of(&g.tags), true)
            .expect("model register");
    }
    let export = reg.export();
    let live: Vec<&MThing> = m.live().collect();
    assert_eq!(export.len(), live.len());
    for (r, t) in export.iter().zip(&live) {
        assert!(
            record_matches(r, t),
            "export differs:\n registry: {r:?}\n model:    {t:?}"
        );
    }
    reg.check_consistency().expect("consistent indexes");
    assert_eq!(reg.stats().searchable, m.searchable() as u64);

    // One scan of the model per search; returns the size of the whole result.
    let check = |req: &Search, what: &str| -> usize {
        let mops: Vec<MOp> = req.operators.iter().map(mop_of).collect();
        let all = m.search_all(&mops);
        let exp = m.page(mops.len(), &all, req.offset, req.max_count);
        if let Err(e) = check_page(&reg.search(req), &exp, &format!("{what}: {mops:?}")) {
            panic!("{e}");
        }
        all.len()
    };

    for (name, q) in datagen::standard_queries() {
        check(&q, name);
        for offset in [1, 7, 20, 300] {
            check(
                &Search {
                    offset,
                    ..q.clone()
                },
                name,
            );
        }
    }

    // Every page of a search, `k` at a time (at most ~30 pages): no match
    // skipped, none repeated, each page equal to the model's.
    let cap = cfg.max_search_results;
    let walk = |operators: &[Operator], k: u32, what: &str| {
        let mops: Vec<MOp> = operators.iter().map(mop_of).collect();
        let all = m.search_all(&mops);
        let k = k.max((all.len() / 30) as u32).clamp(1, cap);
        let mut seen = Vec::new();
        let mut offset = 0;
        loop {
            let req = Search {
                operators: operators.to_vec(),
                offset,
                max_count: Some(k),
            };
            let page = reg.search(&req);
            let exp = m.page(mops.len(), &all, offset, Some(k));
            if let Err(e) = check_page(&page, &exp, &format!("{what} k={k} offset={offset}")) {
                panic!("{e}");
            }
            let page = page.expect("search");
            seen.extend(page.things.iter().map(|f| mkey_of(&f.key)));
            if !page.more {
                break;
            }
            assert!(!page.things.is_empty(), "{what}: empty page with more");
            offset += page.things.len() as u32;
        }
        let all: Vec<MKey> = all.iter().map(|t| t.key.clone()).collect();
        assert!(
            seen == all,
            "{what}: walk (k={k}) differs from the whole result"
        );
    };

    let mut non_empty = 0;
    let mut walked = 0;
    for q in 0..200u64 {
        let mut r = datagen::Rng::new(seed, 1_000_000 + q);
        let n_ops = 1 + r.below(4) as usize;
        let operators: Vec<Operator> = (0..n_ops)
            .map(|_| random_operator(&mut r, &things))
            .collect();
        let offset = match r.below(10) {
            0..=6 => 0,
            7 | 8 => r.below(100) as u32,
            _ => r.below(3_000) as u32,
        };
        let max_count = match r.below(5) {
            0 => None,
            _ => Some(1 + r.below(100) as u32),
        };
        let req = Search {
            operators,
            offset,
            max_count,
        };
        let total = check(&req, &format!("random query {q}"));
        if total > 0 {
            non_empty += 1;
        }
        if q % 10 == 0 && total <= 4_000 {
            walked += 1;
            walk(
                &req.operators,
                1 + r.below(100) as u32,
                &format!("random query {q}"),
            );
        }
    }
    assert!(
        non_empty >= 60,
        "only {non_empty} random queries matched anything"
    );
    assert!(walked >= 10, "only {walked} walks");

    // Targeted planner paths: conjunctions of wide ranges that rarely hold
    // together (an unproductive walk that escalates to materialising them),
    // masks over more than MASK_KEY_BUDGET keys, exact sets around
    // SMALL_DRIVER, deep offsets into broad results.
    let name = |n: &str| TagName::new(n).expect("valid name");
    let num = |x: f64| Number::new(x, "X").expect("finite");
    let around = |c: f64, w: f64| NumRange {
        min: num(c - w),
        min_included: true,
        max: num(c + w),
        max_included: false,
    };
    let tag = |g: &datagen::GenThing, n: &str| -> TagValue {
        g.tags
            .iter()
            .find(|t| t.name.as_str() == n)
            .map(|t| t.value.clone())
            .expect("generated tag")
    };
    let mut stress: Vec<Vec<Operator>> = Vec::new();
    for g in things.iter().skip(1).step_by(4_001) {
        let (TagValue::Num(lat), TagValue::Num(lon)) = (tag(g, "LAT"), tag(g, "LON")) else {
            panic!("coordinates are numbers")
        };
        let (lat, lon) = (lat.get(), lon.get());
        let (TagValue::Str(sn), TagValue::Str(man), TagValue::Str(city)) =
            (tag(g, "SN"), tag(g, "MAN"), tag(g, "CITY"))
        else {
            panic!("strings")
        };
        for w in [0.01, 0.5, 3.0, 20.0] {
            stress.push(vec![
                Operator::NumRange(name("LAT"), around(lat, w)),
                Operator::NumRange(name("LON"), around(lon, 2.0 * w)),
            ]);
        }
        stress.push(vec![
            Operator::StrMask(
                name("SN"),
                Mask::new(&format!("{}*", &sn[..1]), Some("*")).expect("mask"),
            ),
            Operator::NumRange(name("LAT"), around(lat, 1.0)),
        ]);
        stress.push(vec![
            Operator::StrMask(
                name("SN"),
                Mask::new(&format!("*{}*", &sn[5..8]), Some("*")).expect("mask"),
            ),
            Operator::NumRange(name("LON"), around(lon, 30.0)),
        ]);
        stress.push(vec![
            Operator::StrEq(name("MAN"), man.as_str().into()),
            Operator::NumRange(name("LAT"), around(lat, 10.0)),
            Operator::NumGt(name("LON"), num(lon - 100.0)),
        ]);
        stress.push(vec![
            Operator::StrEq(name("CITY"), city.as_str().into()),
            Operator::StrMask(
                name("SN"),
                Mask::new(&format!("{}*", &sn[..2]), Some("*")).expect("mask"),
            ),
        ]);
        stress.push(vec![
            Operator::StrRange(
                name("SN"),
                datagen::str_range(&sn[..3], true, &sn[..4], true),
            ),
            Operator::StrNEq(name("MAN"), man.as_str().into()),
            Operator::NumNRange(name("LAT"), around(lat, 45.0)),
        ]);
        stress.push(vec![
            Operator::StrRange(
                name("CITY"),
                datagen::str_range("City000", true, &city, true),
            ),
            Operator::NumLtEq(name("LAT"), num(lat)),
            Operator::NumGtEq(name("LON"), num(lon)),
        ]);
    }
    stress.push(vec![
        Operator::NumGt(name("LON"), num(179.5)),
        Operator::NumLt(name("LAT"), num(-80.0)),
    ]);
    stress.push(vec![
        Operator::NumGtEq(name("V"), num(1.0)),
        Operator::NumGt(name("LAT"), num(-90.0)),
    ]);
    for (j, ops) in stress.iter().enumerate() {
        let what = format!("planner query {j}");
        let mops: Vec<MOp> = ops.iter().map(mop_of).collect();
        let all = m.search_all(&mops);
        for (offset, max_count) in [(0, Some(20)), (3, Some(7)), (40, None), (5_000, Some(100))] {
            let req = Search {
                operators: ops.clone(),
                offset,
                max_count,
            };
            let exp = m.page(mops.len(), &all, offset, max_count);
            if let Err(e) = check_page(&reg.search(&req), &exp, &format!("{what}: {mops:?}")) {
                panic!("{e}");
            }
        }
        if j % 2 == 0 && all.len() <= 4_000 {
            walk(ops, [1, 13, 100][j % 3], &what);
        }
    }
}

// ---------------------------------------------------------------------------
// `strRegEx` and `nameWildcard` against a naive scan (issue 7)

/// A random regular expression over the values `rx_value` draws.
fn rx_pattern() -> impl Strategy<Value = String> {
    let atom = select(vec![
        "a", "b", "1", "7", "[0-9]", "[ab]", ".", "\\d", "(a|b1)", "[^a]", "é", "x?",
    ]);
    let rep = select(vec!["", "", "*", "+", "?", "{1,2}"]);
    (
        any::<bool>(),
        prop::collection::vec((atom, rep), 0..5),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(start, parts, end, alt)| {
            let mut p = String::new();
            if start {
                p.push('^');
            }
            for (a, r) in &parts {
                p.push_str(a);
                p.push_str(r);
            }
            if alt {
                p.push_str("|ab");
            }
            if end {
                p.push('$');
            }
            p
        })
}

fn rx_value() -> impl Strategy<Value = String> {
    prop::collection::vec(select(vec!['a', 'b', '1', '7', '3', 'é', 'x']), 0..6)
        .prop_map(|cs| cs.into_iter().collect())
}

/// Names drawn from a small pool so masks find several of them.
fn rx_name() -> impl Strategy<Value = &'static str> {
    select(vec![
        "T1", "T2", "T12", "TEMP", "TX", "AT", "SN", "KEY", "Té",
    ])
}

#[derive(Debug, Clone)]
enum RxVal {
    Str(String),
    Num(i8),
}

fn rx_thing() -> impl Strategy<Value = Vec<(&'static str, RxVal)>> {
    prop::collection::vec(
        (
            rx_name(),
            prop_oneof![
                rx_value().prop_map(RxVal::Str),
                (-3i8..4).prop_map(RxVal::Num)
            ],
        ),
        1..6,
    )
}

#[derive(Debug, Clone)]
enum RxOp {
    Regex(&'static str, String),
    Any(&'static str, &'static str, Box<RxOp>),
    NumGt(&'static str, i8),
    NumEq(&'static str, i8),
    NumNEq(&'static str, i8),
    StrEq(&'static str, String),
    StrMask(&'static str, String),
}

fn rx_op() -> impl Strategy<Value = RxOp> {
    let leaf = prop_oneof![
        (rx_name(), rx_pattern()).prop_map(|(n, p)| RxOp::Regex(n, p)),
        (rx_name(), -3i8..4).prop_map(|(n, v)| RxOp::NumGt(n, v)),
        (rx_name(), -3i8..4).prop_map(|(n, v)| RxOp::NumEq(n, v)),
        (rx_name(), -3i8..4).prop_map(|(n, v)| RxOp::NumNEq(n, v)),
        (rx_name(), rx_value()).prop_map(|(n, v)| RxOp::StrEq(n, v)),
        (rx_name(), rx_value()).prop_map(|(n, v)| RxOp::StrMask(n, format!("{v}*"))),
    ];
    let masks = select(vec![
        ("T*", "*"),
        ("t*", "*"),
        ("*1*", "*"),
        ("T?", "?"),
        ("*", "*"),
        ("K*", "*"),
        ("tx", "*"),
        ("TzMP", "z"),
        ("*é", "*"),
        ("NONE*", "*"),
    ]);
    prop_oneof![
        2 => leaf.clone(),
        3 => (masks, leaf).prop_map(|((m, w), op)| RxOp::Any(m, w, Box::new(op))),
    ]
}

fn rx_operator(op: &RxOp) -> Option<Operator> {
    use iotdisco::query::{NameMask, Regex};
    let name = |n: &str| TagName::new(n).expect("valid name");
    let num = |x: i8| Number::new(f64::from(x), "X").expect("finite");
    Some(match op {
        RxOp::Regex(n, p) => Operator::StrRegEx(name(n), Regex::new(p).ok()?),
        RxOp::NumGt(n, v) => Operator::NumGt(name(n), num(*v)),
        RxOp::NumEq(n, v) => Operator::NumEq(name(n), num(*v)),
        RxOp::NumNEq(n, v) => Operator::NumNEq(name(n), num(*v)),
        RxOp::StrEq(n, v) => Operator::StrEq(name(n), v.as_str().into()),
        RxOp::StrMask(n, m) => Operator::StrMask(name(n), Mask::new(m, Some("*")).expect("mask")),
        RxOp::Any(m, w, inner) => {
            Operator::any_name(NameMask::new(m, w).expect("name mask"), rx_operator(inner)?)
        }
    })
}

/// Each installed thing's bare JID and the tags the registry kept.
type RxNaive = Vec<(String, Vec<(String, Val)>)>;

/// Installs `things` (public, claimed) into a fresh registry.
fn rx_registry(things: &[Vec<(&'static str, RxVal)>]) -> (Registry, RxNaive) {
    let reg = Registry::new(Config::default());
    let mut naive = Vec::new();
    for (i, t) in things.iter().enumerate() {
        let mut tags: Vec<Tag> = Vec::new();
        for (n, v) in t {
            if tags.iter().any(|x| x.name.as_str() == *n) {
                continue;
            }
            tags.push(match v {
                RxVal::Str(s) => Tag::str(n, s).expect("tag"),
                RxVal::Num(x) => Tag::num(n, f64::from(*x)).expect("tag"),
            });
        }
        // A unique KEY keeps every claim unambiguous (unless the thing has its own).
        if !tags.iter().any(|x| x.name.is_key()) {
            tags.push(Tag::str("KEY", &format!("k{i}")).expect("tag"));
        }
        let g = datagen::GenThing {
            jid: Jid::parse(&format!("t{i}@example.org/r")).expect("jid"),
            owner: BareJid::parse(&format!("o{}@example.org", i % 3)).expect("jid"),
            tags: tags.clone(),
        };
        if datagen::install(&reg, &g).is_err() {
            continue;
        }
        // What the registry keeps (an empty string value is no tag at all).
        let rec = reg
            .get(&ThingKey::of(g.jid.bare().clone()))
            .expect("installed");
        naive.push((format!("t{i}@example.org"), mtags_of(&rec.tags)));
    }
    (reg, naive)
}

fn rx_check(
    reg: &Registry,
    naive: &[(String, Vec<(String, Val)>)],
    ops: Vec<Operator>,
) -> Result<(), TestCaseError> {
    let mops: Vec<MOp> = ops.iter().map(mop_of).collect();
    let want: BTreeSet<&str> = naive
        .iter()
        .filter(|(_, tags)| mops.iter().all(|m| m.matches_tags(tags)))
        .map(|(j, _)| j.as_str())
        .collect();
    let got = reg
        .search(&Search {
            operators: ops.clone(),
            offset: 0,
            max_count: Some(100),
        })
        .map_err(|e| fail(format!("search {ops:?}: {e}")))?;
    let got_set: BTreeSet<String> = got.things.iter().map(|t| t.key.jid.to_string()).collect();
    let got_ref: BTreeSet<&str> = got_set.iter().map(String::as_str).collect();
    prop_assert_eq!(&got_ref, &want, "operators {:?}", ops);
    prop_assert!(!got.more || want.len() > 100);
    Ok(())
}

proptest! {
    #![proptest_config(proptest_config(128))]

    #[test]
    fn regex_and_name_wildcard_match_naive_scan(
        things in prop::collection::vec(rx_thing(), 0..40),
        searches in prop::collection::vec(prop::collection::vec(rx_op(), 1..3), 1..6),
    ) {
        let (reg, naive) = rx_registry(&things);
        for s in &searches {
            let Some(ops) = s.iter().map(rx_operator).collect::<Option<Vec<_>>>() else {
                continue;
            };
            rx_check(&reg, &naive, ops)?;
        }
    }
}

/// Larger populations, so the planner's unions, budgets and per-candidate
/// checks over several names all run: 20 numeric `TEMPn` tags on some things,
/// serial-number-like strings, against the naive scan.
#[test]
fn regex_and_name_wildcard_large_population() {
    use iotdisco::query::{NameMask, Regex};
    let mut r = datagen::Rng::new(0x7e6e_0347, 0);
    let mut things: Vec<Vec<(&'static str, RxVal)>> = Vec::new();
    const TEMPS: [&str; 20] = [
        "TEMP0", "TEMP1", "TEMP2", "TEMP3", "TEMP4", "TEMP5", "TEMP6", "TEMP7", "TEMP8", "TEMP9",
        "TEMP10", "TEMP11", "TEMP12", "TEMP13", "TEMP14", "TEMP15", "TEMP16", "TEMP17", "TEMP18",
        "TEMP19",
    ];
    for i in 0..6000u64 {
        let mut t = vec![("SN", RxVal::Str(format!("{:06}", r.below(1_000_000))))];
        if i % 3 == 0 {
            for name in TEMPS.iter().take(1 + r.below(20) as usize) {
                t.push((name, RxVal::Num(r.below(7) as i8 - 3)));
            }
        }
        if i % 5 == 0 {
            t.push((
                "MAN",
                RxVal::Str(["a", "b", "c"][r.below(3) as usize].into()),
            ));
        }
        things.push(t);
    }
    let (reg, naive) = rx_registry(&things);
    let name = |n: &str| TagName::new(n).expect("valid name");
    let num = |x: f64| Number::new(x, "X").expect("finite");
    let any = |m: &str, op: Operator| Operator::any_name(NameMask::new(m, "*").expect("mask"), op);
    let cases: Vec<Vec<Operator>> = vec![
        vec![Operator::StrRegEx(
            name("SN"),
            Regex::new("^12[0-9]*7$").expect("re"),
        )],
        vec![Operator::StrRegEx(
            name("SN"),
            Regex::new("1.*").expect("re"),
        )],
        vec![Operator::StrRegEx(
            name("SN"),
            Regex::new(".*99.*").expect("re"),
        )],
        vec![Operator::StrRegEx(
            name("SN"),
            Regex::new("123456").expect("re"),
        )],
        vec![
            Operator::StrRegEx(name("SN"), Regex::new("^3[0-9]*7$").expect("re")),
            Operator::StrEq(name("MAN"), "a".into()),
        ],
        vec![any("TEMP*", Operator::NumGt(name("X"), num(2.0)))],
        vec![any("temp1*", Operator::NumEq(name("X"), num(-3.0)))],
        vec![any("TEMP*", Operator::NumNEq(name("X"), num(0.0)))],
        vec![
            any("TEMP*", Operator::NumGtEq(name("X"), num(3.0))),
            Operator::StrEq(name("MAN"), "b".into()),
        ],
        vec![any(
            "*",
            Operator::StrRegEx(name("X"), Regex::new("[abc]").expect("re")),
        )],
        vec![
            any("TEMP1*", Operator::NumLt(name("X"), num(-2.0))),
            any("TEMP2*", Operator::NumGt(name("X"), num(2.0))),
            Operator::StrRegEx(name("SN"), Regex::new("[0-4].*").expect("re")),
        ],
        // Rare combinations: the walk stays unproductive and escalates the
        // operators over several tags to unions.
        vec![
            any("TEMP1*", Operator::NumGtEq(name("X"), num(3.0))),
            Operator::StrRegEx(name("SN"), Regex::new(".*99.*").expect("re")),
        ],
        vec![
            any("TEMP*", Operator::NumLt(name("X"), num(-2.0))),
            any("TEMP1*", Operator::NumGt(name("X"), num(2.0))),
            Operator::StrRegEx(name("SN"), Regex::new(".*00.*").expect("re")),
        ],
        vec![any(
            "KEY",
            Operator::StrRegEx(name("X"), Regex::new(".*").expect("re")),
        )],
    ];
    for ops in cases {
        // Every page of the answer, in order, against the naive scan.
        let mops: Vec<MOp> = ops.iter().map(mop_of).collect();
        let want: Vec<&str> = naive
            .iter()
            .filter(|(_, tags)| mops.iter().all(|m| m.matches_tags(tags)))
            .map(|(j, _)| j.as_str())
            .collect();
        let mut got: Vec<String> = Vec::new();
        let mut offset = 0;
        loop {
            let page = reg
                .search(&Search {
                    operators: ops.clone(),
                    offset,
                    max_count: Some(100),
                })
                .expect("search");
            got.extend(page.things.iter().map(|t| t.key.jid.to_string()));
            if !page.more {
                break;
            }
            offset += 100;
        }
        let mut want_sorted: Vec<&str> = want.clone();
        want_sorted.sort_unstable();
        let mut got_sorted: Vec<&str> = got.iter().map(String::as_str).collect();
        got_sorted.sort_unstable();
        assert_eq!(got_sorted, want_sorted, "{ops:?}");
    }
}
