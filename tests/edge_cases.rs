//! Edge cases of the Thing Registry around the rules of XEP-0347 (3.6-3.17, 5.2,
//! 6.5, 6.6) and the documented design decisions of `iotdisco`.

use std::collections::{BTreeSet, HashSet};

use RegistryError::{ItemNotFound, NotAllowed};
use UpdateOutcome::{Disowned, Updated};
use iotdisco::query::{Mask, NumRange, Operator, StrRange};
use iotdisco::store::StoreError;
use iotdisco::store::memory::MemoryStore;
use iotdisco::tag::{Number, PREDEFINED, TagError, TagName};
use iotdisco::{
    BareJid, Claim, Claimed, Config, Jid, NodeAddress, NotificationKind, PendingId, Register,
    RegisterOutcome, Registry, RegistryError, Search, SearchResult, Tag, TagValue, ThingKey,
    ThingRecord, Update, UpdateOutcome,
};

const NOW: u64 = 5_000;

fn jid(s: &str) -> Jid {
    Jid::parse(s).unwrap()
}

fn bare(s: &str) -> BareJid {
    BareJid::parse(s).unwrap()
}

fn thing() -> Jid {
    jid("thing@example.org/imc")
}

fn owner() -> Jid {
    jid("owner@example.org/phone")
}

fn owner_bare() -> Option<BareJid> {
    Some(bare("owner@example.org"))
}

fn other() -> Jid {
    jid("other@example.org/phone")
}

fn thing_key() -> ThingKey {
    ThingKey::of(bare("thing@example.org"))
}

fn key_of(j: &Jid) -> ThingKey {
    ThingKey::of(j.bare().clone())
}

fn s(name: &str, value: &str) -> Tag {
    Tag::str(name, value).unwrap()
}

/// A numeric tag parsed from text, as the XML layer will do it.
fn n(name: &str, text: &str) -> Tag {
    Tag::num(name, Number::parse(text, name).unwrap().get()).unwrap()
}

fn num(x: f64) -> Number {
    Number::new(x, "X").unwrap()
}

fn name(s: &str) -> TagName {
    TagName::new(s).unwrap()
}

/// `tags` without `KEY`: what a thing keeps once claimed (the registry deletes
/// `KEY` at the claim, spec 6.5).
fn no_key(tags: Vec<Tag>) -> Vec<Tag> {
    tags.into_iter().filter(|t| !t.name.is_key()).collect()
}

fn tags_listing_10() -> Vec<Tag> {
    vec![
        s("SN", "394872348732948723"),
        s("MAN", "www.ktc.se"),
        s("MODEL", "IMC"),
        n("V", "1.2"),
        s("KEY", "4857402340298342"),
    ]
}

fn node(id: Option<&str>, source: Option<&str>, cache: Option<&str>) -> NodeAddress {
    NodeAddress::new(id, source, cache).unwrap()
}

fn req(node: NodeAddress, tags: Vec<Tag>, self_owned: bool) -> Register {
    Register {
        node,
        tags,
        self_owned,
    }
}

fn plain(tags: Vec<Tag>) -> Register {
    req(NodeAddress::default(), tags, false)
}

fn register_req(reg: &Registry, from: &Jid, r: Register) {
    assert_eq!(reg.register(from, r), Ok(RegisterOutcome::Registered));
}

fn register(reg: &Registry, from: &Jid, tags: Vec<Tag>) {
    register_req(reg, from, plain(tags));
}

fn claim(
    reg: &Registry,
    from: &Jid,
    tags: Vec<Tag>,
    public: bool,
) -> Result<Claimed, RegistryError> {
    reg.claim(from, Claim { tags, public })
}

fn upd(jid: Option<&str>, tags: Vec<Tag>) -> Update {
    let node = NodeAddress::default();
    let jid = jid.map(bare);
    Update { jid, node, tags }
}

fn tags_of(reg: &Registry, key: &ThingKey) -> Vec<Tag> {
    reg.get(key).unwrap().tags
}

fn owner_of(reg: &Registry, key: &ThingKey) -> Option<BareJid> {
    reg.get(key).unwrap().owner
}

/// A configuration changed by `f`.
fn cfg(f: impl FnOnce(&mut Config)) -> Config {
    let mut c = Config::default();
    f(&mut c);
    c
}

fn claim10(reg: &Registry, from: &Jid, public: bool) -> Result<Claimed, RegistryError> {
    claim(reg, from, tags_listing_10(), public)
}

/// The error of a failed call (panics on success).
fn err<T: std::fmt::Debug>(r: Result<T, RegistryError>) -> RegistryError {
    r.unwrap_err()
}

/// The text of a `BadRequest` (panics on anything else).
fn bad<T: std::fmt::Debug>(r: Result<T, RegistryError>) -> String {
    match r {
        Err(RegistryError::BadRequest(text)) => text,
        other => panic!("expected BadRequest, got {other:?}"),
    }
}

/// A registry where the thing of listing 10 is claimed (publicly) by the owner.
fn claimed_thing(config: Config) -> Registry {
    let reg = Registry::new(config);
    register(&reg, &thing(), tags_listing_10());
    claim(&reg, &owner(), tags_listing_10(), true).unwrap();
    reg
}

/// Registers `local@example.org/r` with `tags` plus a unique KEY and has the
/// owner claim it publicly.
fn add_claimed(reg: &Registry, local: &str, mut tags: Vec<Tag>) -> ThingKey {
    let from = jid(&format!("{local}@example.org/r"));
    tags.push(s("KEY", &format!("secret-{local}")));
    register(reg, &from, tags.clone());
    claim(reg, &owner(), tags, true).unwrap();
    key_of(&from)
}

fn search(reg: &Registry, ops: Vec<Operator>) -> SearchResult {
    reg.search(&Search::new(ops)).unwrap()
}

fn page(ops: Vec<Operator>, offset: u32, max_count: Option<u32>) -> Search {
    Search {
        operators: ops,
        offset,
        max_count,
    }
}

fn jids(r: &SearchResult) -> Vec<String> {
    r.things.iter().map(|t| t.key.jid.to_string()).collect()
}

/// The bare JIDs found by a conjunction.
fn found(reg: &Registry, ops: Vec<Operator>) -> Vec<String> {
    jids(&search(reg, ops))
}

/// The bare JIDs found by one operator.
fn hits(reg: &Registry, op: &Operator) -> Vec<String> {
    found(reg, vec![op.clone()])
}

fn eq(tag: &str, v: &str) -> Operator {
    Operator::StrEq(name(tag), v.into())
}

fn mask(m: &str, wildcard: Option<&str>) -> Mask {
    Mask::new(m, wildcard).unwrap()
}

/// `strMask` with wildcard `w`.
fn like(tag: &str, m: &str, w: &str) -> Operator {
    Operator::StrMask(name(tag), mask(m, Some(w)))
}

fn str_range(min: &str, min_inc: bool, max: &str, max_inc: bool) -> StrRange {
    let (min, max) = (min.into(), max.into());
    StrRange {
        min,
        min_included: min_inc,
        max,
        max_included: max_inc,
    }
}

fn num_range(min: f64, min_inc: bool, max: f64, max_inc: bool) -> NumRange {
    let (min, max) = (num(min), num(max));
    NumRange {
        min,
        min_included: min_inc,
        max,
        max_included: max_inc,
    }
}

/// One of every string operator, each matching the string `v`.
fn str_ops(tag: &str, v: &str) -> Vec<Operator> {
    let t = || name(tag);
    let top = "\u{10FFFF}";
    vec![
        Operator::StrEq(t(), v.into()),
        Operator::StrNEq(t(), top.into()),
        Operator::StrGt(t(), "".into()),
        Operator::StrGtEq(t(), v.into()),
        Operator::StrLt(t(), top.into()),
        Operator::StrLtEq(t(), v.into()),
        Operator::StrRange(t(), str_range(v, true, v, true)),
        Operator::StrNRange(t(), str_range(top, true, top, true)),
        Operator::StrMask(t(), mask("*", Some("*"))),
    ]
}

/// One of every numeric operator, each matching the number `v`.
fn num_ops(tag: &str, v: f64) -> Vec<Operator> {
    let t = || name(tag);
    vec![
        Operator::NumEq(t(), num(v)),
        Operator::NumNEq(t(), num(v + 1.0)),
        Operator::NumGt(t(), num(v - 1.0)),
        Operator::NumGtEq(t(), num(v)),
        Operator::NumLt(t(), num(v + 1.0)),
        Operator::NumLtEq(t(), num(v)),
        Operator::NumRange(t(), num_range(v - 1.0, false, v + 1.0, false)),
        Operator::NumNRange(t(), num_range(v + 1.0, true, v + 2.0, true)),
    ]
}

fn consistent(reg: &Registry) {
    assert_eq!(reg.check_consistency(), Ok(()));
}

fn sorted(mut records: Vec<ThingRecord>) -> Vec<ThingRecord> {
    records.sort_by(|a, b| a.key.cmp(&b.key));
    records
}

#[test]
fn concentrator_triples_are_distinct_things() {
    let reg = Registry::new(Config::default());
    let rack = jid("rack@example.org/plcs");
    let nodes = [
        NodeAddress::default(),
        node(Some("imc1"), None, None),
        node(Some("imc1"), Some("MeteringTopology"), None),
        node(Some("imc1"), Some("MeteringTopology"), Some("Cache")),
        node(Some("imc1"), Some("Other"), None),
        node(Some("imc2"), Some("MeteringTopology"), None),
    ];
    let tags = |i: usize| vec![s("SN", &format!("sn-{i}")), s("KEY", &format!("k{i}"))];
    for (i, nd) in nodes.iter().enumerate() {
        register_req(&reg, &rack, req(nd.clone(), tags(i), false));
    }
    assert_eq!(reg.len(), nodes.len());
    // Each one is claimed on its own, and the reply names its triple.
    for (i, nd) in nodes.iter().enumerate() {
        let c = claim(&reg, &owner(), tags(i), true).unwrap();
        assert_eq!(c.thing.jid.as_str(), "rack@example.org");
        assert_eq!(&c.thing.node, nd);
        assert_eq!(&c.notification.node, nd);
        assert_eq!(c.notification.to, rack);
    }
    // Removing one leaves the others.
    let key = |i: usize| ThingKey {
        jid: bare("rack@example.org"),
        node: nodes[i].clone(),
    };
    reg.remove(&owner(), &key(3)).unwrap();
    assert_eq!(reg.len(), nodes.len() - 1);
    assert!(reg.get(&key(2)).is_some());
    assert!(reg.get(&key(3)).is_none());
    consistent(&reg);
}

#[test]
fn empty_node_attribute_equals_absent_one() {
    let imc1 = node(Some("imc1"), None, None);
    assert_eq!(node(Some("imc1"), Some(""), Some("")), imc1);
    assert_eq!(node(Some(""), Some(""), Some("")), NodeAddress::default());
    assert!(node(Some(""), None, None).is_empty());
    let reg = Registry::new(Config::default());
    let rack = jid("rack@example.org/plcs");
    let node_a = node(Some("imc1"), Some(""), None);
    let node_b = node(Some("imc1"), None, Some(""));
    register_req(&reg, &rack, req(node_a, vec![s("SN", "1")], false));
    register_req(&reg, &rack, req(node_b, vec![s("SN", "2")], false));
    assert_eq!(reg.len(), 1, "the same thing registered twice");
    let key = ThingKey {
        jid: bare("rack@example.org"),
        node: imc1,
    };
    assert_eq!(tags_of(&reg, &key), vec![s("SN", "2")]);
    let empty_attrs = node(Some("imc1"), Some(""), Some(""));
    assert_eq!(reg.unregister(&rack, empty_attrs), Ok(()));
    assert!(reg.is_empty());
    consistent(&reg);
}

#[test]
fn tag_names_are_case_insensitive() {
    let reg = Registry::new(Config::default());
    let lower = vec![s("sn", "123"), s("Key", "abc"), n("v", "2")];
    register(&reg, &thing(), lower);
    let upper = vec![s("SN", "123"), s("KEY", "abc"), n("V", "2")];
    let c = claim(&reg, &owner(), upper, true).unwrap();
    assert_eq!(c.thing, thing_key());
    assert_eq!(hits(&reg, &eq("sN", "123")), ["thing@example.org"]);
    let r = search(&reg, vec![Operator::NumEq(name("v"), num(2.0))]);
    let no_key = vec![s("SN", "123"), n("V", "2")];
    assert_eq!(r.things[0].tags, no_key, "KEY spelled Key is still KEY");
    let delete = upd(None, vec![s("Sn", "")]);
    assert_eq!(reg.update(&thing(), delete), Ok(Updated));
    let left = vec![n("V", "2")];
    assert_eq!(tags_of(&reg, &thing_key()), left);
    consistent(&reg);
}

#[test]
fn numeric_claim_values_compare_as_numbers() {
    let reg = Registry::new(Config::default());
    let rest = |sn| vec![n("LAT", "0"), n("LON", "1000"), s("SN", sn)];
    let tags = |v: Tag, alt: Tag, sn| [vec![v, alt], rest(sn)].concat();
    let lat_lon = [n("LAT", "-0"), n("LON", "1E3"), s("SN", "a")];
    let registered = [n("V", "1.20"), n("ALT", "1")];
    register(&reg, &thing(), [&registered[..], &lat_lon[..]].concat());
    for wrong in [
        tags(n("V", "1.21"), n("ALT", "1"), "a"),
        tags(s("V", "1.2"), n("ALT", "1"), "a"),
        tags(n("V", "1.2"), s("ALT", "1"), "a"),
        tags(n("V", "1.2"), n("ALT", "1"), "A"),
    ] {
        assert_eq!(err(claim(&reg, &owner(), wrong, true)), ItemNotFound);
    }
    // 1.2 = 1.20, 1 = 1.0, 0 = -0, 1E3 = 1000.000.
    let same = tags(n("V", "1.2"), n("ALT", "1.0"), "a");
    let c = claim(&reg, &owner(), same, true).unwrap();
    assert_eq!(c.thing, thing_key());
    consistent(&reg);
}

#[test]
fn key_never_leaks() {
    let reg = claimed_thing(Config::default());
    add_claimed(&reg, "other", vec![s("SN", "n1"), n("KEY2", "42")]);
    let numeric = jid("numeric@example.org/r");
    register(&reg, &numeric, vec![s("SN", "n2"), n("KEY", "42")]);
    claim(&reg, &owner(), vec![s("SN", "n2"), n("key", "42")], true).unwrap();
    // The operators do match the thing on other tags...
    for op in str_ops("MODEL", "IMC") {
        assert_eq!(hits(&reg, &op), ["thing@example.org"], "{op:?}");
    }
    // ...and never on KEY, whatever the operator, alone or with others.
    let sn = eq("SN", "394872348732948723");
    let key_ops = [str_ops("KEY", "4857402340298342"), str_ops("key", "x")];
    for op in key_ops.concat() {
        assert!(hits(&reg, &op).is_empty(), "{op:?}");
        let with_sn = found(&reg, vec![sn.clone(), op.clone()]);
        assert!(with_sn.is_empty(), "{op:?}");
    }
    for op in num_ops("KEY", 42.0) {
        assert!(hits(&reg, &op).is_empty(), "{op:?}");
    }
    assert!(hits(&reg, &like("KEY", "%", "%")).is_empty());
    // Results never carry KEY, string or numeric.
    let r = search(&reg, vec![like("SN", "*", "*")]);
    assert_eq!(r.things.len(), 3);
    for t in &r.things {
        assert!(t.tags.iter().all(|t| !t.name.is_key()), "{t:?}");
        assert!(!t.tags.is_empty());
    }
    consistent(&reg);
}

#[test]
fn operators_on_unknown_names_or_the_other_type_find_nothing() {
    let reg = claimed_thing(Config::default());
    let sn = eq("SN", "394872348732948723");
    for op in [str_ops("NOPE", "x"), num_ops("NOPE", 1.0)].concat() {
        assert!(hits(&reg, &op).is_empty(), "{op:?}");
        let with_sn = found(&reg, vec![sn.clone(), op.clone()]);
        assert!(with_sn.is_empty(), "{op:?}");
    }
    // The operators match when the type is right...
    let sn = "394872348732948723";
    for op in [num_ops("V", 1.2), str_ops("SN", sn)].concat() {
        assert_eq!(hits(&reg, &op).len(), 1, "{op:?}");
    }
    // ...and never across types: V is numeric, SN is a (numeric-looking) string.
    let sn_num = 394872348732948723.0;
    for op in [str_ops("V", "1.2"), num_ops("SN", sn_num)].concat() {
        assert!(hits(&reg, &op).is_empty(), "{op:?}");
    }
    consistent(&reg);
}

#[test]
fn tag_name_and_value_length_limits() {
    let (n32, n33) = ("N".repeat(32), "N".repeat(33));
    assert!(TagName::new(&n32).is_ok());
    assert!(matches!(TagName::new(&n33), Err(TagError::NameTooLong(_))));
    assert!(Tag::str(&n33, "x").is_err());
    assert!(Tag::num(&n33, 1.0).is_err());
    assert!(Tag::str("NAME", &"v".repeat(128)).is_ok());
    let too_long = Tag::str("NAME", &"v".repeat(129));
    assert!(matches!(too_long, Err(TagError::ValueTooLong(_))));
    let chars = Tag::str("NAME", &"ö".repeat(128));
    assert!(chars.is_ok(), "characters, not bytes");
    assert!(Tag::str("NAME", &"ö".repeat(129)).is_err());
    assert!(TagName::new(&"Ä".repeat(32)).is_ok());
    assert!(TagName::new(&"Ä".repeat(33)).is_err());
    for bad in ["A:B", "A#B", "A B", "", "A\nB"] {
        assert!(TagName::new(bad).is_err(), "{bad:?}");
    }
    // The longest name and value work end to end.
    let reg = Registry::new(Config::default());
    let long = vec![s(&n32, &"v".repeat(128)), s("KEY", "k")];
    register(&reg, &thing(), long.clone());
    claim(&reg, &owner(), long, true).unwrap();
    let op = eq(&"n".repeat(32), &"v".repeat(128));
    assert_eq!(hits(&reg, &op), ["thing@example.org"]);
    consistent(&reg);
}

#[test]
fn tag_name_length_counts_the_characters_given() {
    // 5.2: at most 32 characters. These names have 32 and 11 characters; only
    // their upper-case forms are longer ("SS", "FFI"), and tag names are
    // case-insensitive, so folding must not turn a legal name into an illegal one.
    let eszett = "ß".repeat(32);
    assert_eq!(eszett.chars().count(), 32);
    assert!(TagName::new(&eszett).is_ok(), "{:?}", TagName::new(&eszett));
    let ligature = "ﬃ".repeat(11);
    assert!(
        TagName::new(&ligature).is_ok(),
        "{:?}",
        TagName::new(&ligature)
    );
}

#[test]
fn too_many_tags_per_thing() {
    let reg = Registry::new(cfg(|c| {
        c.max_tags_per_thing = 3;
        // KEY stays after the claim, so the thing is at the limit.
        c.delete_key_on_claim = false;
    }));
    let four = vec![s("A", "1"), s("B", "2"), s("C", "3"), s("D", "4")];
    bad(reg.register(&thing(), plain(four)));
    assert!(reg.is_empty());
    // Empty values are dropped before counting.
    let three = vec![s("A", "1"), s("B", "2"), s("KEY", "3"), s("D", "")];
    register(&reg, &thing(), three.clone());
    claim(&reg, &owner(), three, true).unwrap();
    let before = reg.export();
    bad(reg.update(&thing(), upd(None, vec![s("E", "5")])));
    assert_eq!(reg.export(), before);
    // Overwriting, or deleting one and adding one, stays within the limit.
    let overwrite = upd(None, vec![s("A", "x")]);
    assert_eq!(reg.update(&thing(), overwrite), Ok(Updated));
    let swap = upd(None, vec![s("B", ""), s("E", "5")]);
    assert_eq!(reg.update(&thing(), swap), Ok(Updated));
    let expected = vec![s("A", "x"), s("KEY", "3"), s("E", "5")];
    assert_eq!(tags_of(&reg, &thing_key()), expected);
    consistent(&reg);
}

#[test]
fn allow_list_keeps_predefined_tags() {
    let allowed = HashSet::from([name("floor")]);
    let reg = Registry::new(cfg(|c| c.allowed_tags = Some(allowed)));
    // Every predefined tag is always accepted (5.2, 6.6).
    let all = PREDEFINED.iter().map(|p| match *p {
        "ALT" | "LAT" | "LON" | "V" => n(p, "1"),
        _ => s(p, "x"),
    });
    register(&reg, &thing(), all.collect());
    let other = jid("other@example.org/r");
    let floor = vec![s("SN", "1"), s("FLOOR", "3")];
    register(&reg, &other, floor.clone());
    let colour = plain(vec![s("SN", "2"), s("Colour", "red")]);
    assert!(bad(reg.register(&other, colour)).contains("COLOUR"));
    assert_eq!(tags_of(&reg, &key_of(&other)), floor);
    claim(&reg, &owner(), floor, true).unwrap();
    let text = bad(reg.update(&other, upd(None, vec![s("COLOUR", "red")])));
    assert!(text.contains("COLOUR"), "{text}");
    let allowed = upd(None, vec![s("FLOOR", "4"), s("ROOM", "12")]);
    assert_eq!(reg.update(&other, allowed), Ok(Updated));
    consistent(&reg);
}

#[test]
fn duplicate_tag_names_are_bad_requests() {
    let reg = claimed_thing(Config::default());
    let before = reg.export();
    let dup = plain(vec![s("SN", "a"), s("sn", "b")]);
    assert!(bad(reg.register(&jid("new@example.org/r"), dup)).contains("SN"));
    let dup = vec![s("MODEL", "IMC"), n("model", "1")];
    assert!(bad(claim(&reg, &owner(), dup, true)).contains("MODEL"));
    let dup = upd(None, vec![s("ROOM", "a"), s("room", "")]);
    assert!(bad(reg.update(&thing(), dup)).contains("ROOM"));
    assert_eq!(reg.export(), before);
    consistent(&reg);
}

#[test]
fn empty_string_values() {
    let reg = Registry::new(Config::default());
    let kept = vec![s("SN", "1"), s("KEY", "k")];
    // register drops them.
    let with_empty = vec![s("SN", "1"), s("NAME", ""), s("KEY", "k")];
    register(&reg, &thing(), with_empty);
    assert_eq!(tags_of(&reg, &thing_key()), kept);
    // claim ignores them (with or without them it is the same meta data).
    let with_empty = vec![s("SN", "1"), s("KEY", "k"), s("ROOM", "")];
    claim(&reg, &owner(), with_empty, true).unwrap();
    bad(claim(&reg, &owner(), vec![s("SN", "")], true));
    // update deletes the tag (and deleting an absent tag is a no-op).
    let set = upd(None, vec![s("ROOM", "r1"), s("NAME", "")]);
    assert_eq!(reg.update(&thing(), set), Ok(Updated));
    assert_eq!(hits(&reg, &eq("ROOM", "r1")).len(), 1);
    let delete = upd(None, vec![s("ROOM", "")]);
    assert_eq!(reg.update(&thing(), delete), Ok(Updated));
    assert_eq!(tags_of(&reg, &thing_key()), no_key(kept));
    assert!(hits(&reg, &eq("ROOM", "r1")).is_empty());
    assert!(hits(&reg, &like("ROOM", "*", "*")).is_empty());
    assert!(hits(&reg, &eq("ROOM", "")).is_empty());
    consistent(&reg);
}

#[test]
fn nan_and_infinite_numbers_are_rejected() {
    for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert!(matches!(Tag::num("V", x), Err(TagError::NotFinite(_))));
        assert!(Number::new(x, "V").is_err());
        assert!(TagValue::number(x, "V").is_err());
    }
    let not_finite = ["NaN", "nan", "INF", "-INF", "inf", "Infinity"];
    for text in not_finite.into_iter().chain(["1e400", "-1e400"]) {
        assert!(Number::parse(text, "V").is_err(), "{text}");
    }
    for text in ["", "abc", "1.2.3", "1,2"] {
        let r = Number::parse(text, "V");
        assert!(matches!(r, Err(TagError::NotANumber(..))), "{text:?}");
    }
    let parse = |t: &str| Number::parse(t, "V").unwrap();
    assert_eq!(parse("1.20"), parse("1.2"));
    assert_eq!(parse("-0"), parse("0"));
}

#[test]
fn unicode_names_and_values() {
    let reg = Registry::new(Config::default());
    let (temp, place, key) = ("23 °C", "Malmö ☃ 東京", "ключ-🔑");
    let tags = vec![s("température", temp), s("NAME", place), s("KEY", key)];
    register(&reg, &thing(), tags);
    let upper = vec![s("TEMPÉRATURE", temp), s("NAME", place), s("KEY", key)];
    claim(&reg, &owner(), upper, true).unwrap();
    assert_eq!(hits(&reg, &eq("name", place)), ["thing@example.org"]);
    for (m, w) in [("*東*", "*"), ("Malm…☃…", "…"), ("Malm?", "?")] {
        assert_eq!(hits(&reg, &like("NAME", m, w)).len(), 1, "{m}");
    }
    let simplified = hits(&reg, &like("NAME", "东?", "?"));
    assert!(simplified.is_empty(), "東 is not 东");
    let r = search(&reg, vec![Operator::StrGt(name("TEMPÉRATURE"), "2".into())]);
    let no_key = vec![s("TEMPÉRATURE", temp), s("NAME", place)];
    assert_eq!(r.things[0].tags, no_key);
    consistent(&reg);
}

/// Disowns the thing (presence unknown: the disown is tried) and acknowledges.
fn disown_acked(reg: &Registry, key: &ThingKey) {
    let started = reg.disown(&owner(), key, NOW).unwrap();
    let done = reg.resolve_disown(started.pending, true, NOW + 1).unwrap();
    assert_eq!(done.result, Ok(()));
}

#[test]
fn re_register_after_disown() {
    // Even a registry configured for short keys hands out at least 22 characters.
    let reg = claimed_thing(cfg(|c| c.disown_key_chars = 5));
    disown_acked(&reg, &thing_key());
    let rec = reg.get(&thing_key()).unwrap();
    let state = (rec.owner.as_ref(), rec.public, rec.tags.len());
    assert_eq!(state, (None, false, 1));
    let TagValue::Str(key) = &rec.tags[0].value else {
        panic!("KEY is a string")
    };
    assert!(rec.tags[0].name.is_key(), "{rec:?}");
    assert!(key.chars().count() >= 22, "{key:?}");
    assert_eq!(err(claim10(&reg, &owner(), true)), ItemNotFound);
    // A second disown of another thing gets another KEY.
    let b = add_claimed(&reg, "b", vec![s("SN", "b")]);
    disown_acked(&reg, &b);
    assert_ne!(tags_of(&reg, &b), rec.tags);
    // The thing registers again: its new tags replace the random KEY.
    register(&reg, &thing(), tags_listing_10());
    assert_eq!(tags_of(&reg, &thing_key()), tags_listing_10());
    let c = claim10(&reg, &other(), false).unwrap();
    assert_eq!(c.thing, thing_key());
    let new_owner = Some(bare("other@example.org"));
    assert_eq!(owner_of(&reg, &thing_key()), new_owner);
    consistent(&reg);
}

#[test]
fn owner_reclaims_own_thing() {
    let reg = claimed_thing(Config::default());
    let sn = eq("SN", "394872348732948723");
    let tablet = jid("owner@example.org/tablet");
    let c = claim10(&reg, &tablet, false).unwrap();
    assert!(!c.public);
    let expected = NotificationKind::Claimed {
        owner: bare("owner@example.org"),
        public: false,
    };
    assert_eq!(c.notification.kind, expected);
    assert!(!reg.get(&thing_key()).unwrap().public);
    assert!(hits(&reg, &sn).is_empty());
    assert!(claim10(&reg, &owner(), true).unwrap().public);
    assert_eq!(hits(&reg, &sn), ["thing@example.org"]);
    consistent(&reg);
}

#[test]
fn second_claimant_fails() {
    let reg = claimed_thing(Config::default());
    for public in [true, false] {
        assert_eq!(err(claim10(&reg, &other(), public)), ItemNotFound);
    }
    let rec = reg.get(&thing_key()).unwrap();
    assert_eq!((rec.owner, rec.public), (owner_bare(), true));
    consistent(&reg);
}

#[test]
fn identical_unclaimed_things_are_ambiguous() {
    let reg = Registry::new(Config::default());
    let (a, b) = (jid("a@example.org/r"), jid("b@example.org/r"));
    register(&reg, &a, tags_listing_10());
    register(&reg, &b, tags_listing_10());
    assert_eq!(err(claim10(&reg, &owner(), true)), ItemNotFound);
    assert_eq!(owner_of(&reg, &key_of(&a)), None);
    assert_eq!(owner_of(&reg, &key_of(&b)), None);
    // Once only one is left, the claim is unambiguous.
    reg.unregister(&b, NodeAddress::default()).unwrap();
    let c = claim10(&reg, &owner(), true).unwrap();
    assert_eq!(c.thing, key_of(&a));
    consistent(&reg);
}

#[test]
fn claims_by_others_do_not_make_a_claim_ambiguous() {
    let reg = claimed_thing(Config::default());
    let twin = jid("twin@example.org/imc");
    register(&reg, &twin, tags_listing_10());
    // The thing is the owner's: re-claiming it wins over the unclaimed twin.
    assert_eq!(claim10(&reg, &owner(), true).unwrap().thing, thing_key());
    assert_eq!(owner_of(&reg, &key_of(&twin)), None);
    // For anybody else, the twin is the only unclaimed match.
    assert_eq!(claim10(&reg, &other(), true).unwrap().thing, key_of(&twin));
    assert_eq!(owner_of(&reg, &thing_key()), owner_bare());
    consistent(&reg);
}

#[test]
fn claim_data_follows_updates() {
    let reg = claimed_thing(Config::default());
    // 6.5: the thing empties its KEY after the claim and adds a tag.
    let r = upd(None, vec![s("KEY", ""), s("CLASS", "PLC")]);
    assert_eq!(reg.update(&thing(), r), Ok(Updated));
    let mut now = tags_listing_10();
    now.pop();
    now.push(s("CLASS", "PLC"));
    assert_eq!(tags_of(&reg, &thing_key()), now);
    assert_eq!(err(claim10(&reg, &owner(), true)), ItemNotFound);
    assert_eq!(err(claim(&reg, &other(), now.clone(), true)), ItemNotFound);
    let c = claim(&reg, &owner(), now, false).unwrap();
    assert_eq!(c.thing, thing_key());
    consistent(&reg);
}

#[test]
fn jids_are_normalised_and_resources_kept() {
    let reg = Registry::new(Config::default());
    register(&reg, &jid("Thing@Example.ORG/IMC"), tags_listing_10());
    let c = claim10(&reg, &jid("OWNER@example.org/Phone"), true).unwrap();
    assert_eq!(c.thing, thing_key());
    assert_eq!(c.notification.to.to_string(), "thing@example.org/IMC");
    assert_eq!(owner_of(&reg, &thing_key()), owner_bare());
    // A thing that never used a resource is notified at its bare JID.
    let bare_thing = jid("bare@example.org");
    register(&reg, &bare_thing, vec![s("SN", "bare")]);
    let c = claim(&reg, &owner(), vec![s("SN", "bare")], true).unwrap();
    assert_eq!(c.notification.to, bare_thing);
    // An update from a new resource moves later notifications there.
    let moved = jid("bare@example.org/new");
    assert_eq!(reg.update(&moved, upd(None, vec![])), Ok(Updated));
    let gone = reg.remove(&jid("owner@EXAMPLE.org/x"), &key_of(&moved));
    assert_eq!(gone.unwrap().notification.to, moved);
    consistent(&reg);
}

#[test]
fn registry_wide_caps() {
    let reg = Registry::new(cfg(|c| {
        c.max_things = 2;
        c.max_pending_disowns = 1;
    }));
    let (a, b) = (jid("a@example.org/r"), jid("b@example.org/r"));
    register(&reg, &a, vec![s("SN", "a")]);
    register(&reg, &b, vec![s("SN", "b")]);
    let full = reg.register(&thing(), plain(tags_listing_10()));
    assert!(matches!(full, Err(RegistryError::ResourceConstraint(_))));
    register(&reg, &a, vec![s("SN", "a2")]);
    claim(&reg, &owner(), vec![s("SN", "a2")], true).unwrap();
    claim(&reg, &owner(), vec![s("SN", "b")], true).unwrap();
    reg.disown(&owner(), &key_of(&a), NOW).unwrap();
    let second = reg.disown(&owner(), &key_of(&b), NOW);
    assert!(matches!(second, Err(RegistryError::ResourceConstraint(_))));
    assert_eq!(reg.len(), 2);
    consistent(&reg);
}

#[test]
fn update_after_remove_by_unclaimed_thing_and_by_non_owner() {
    let reg = claimed_thing(Config::default());
    reg.remove(&owner(), &thing_key()).unwrap();
    let by_thing = upd(None, vec![s("ROOM", "1")]);
    assert_eq!(err(reg.update(&thing(), by_thing)), ItemNotFound);
    let by_owner = upd(Some("thing@example.org"), vec![s("ROOM", "1")]);
    assert_eq!(err(reg.update(&owner(), by_owner)), ItemNotFound);
    assert!(reg.is_empty());
    // Registered again, unclaimed: the thing learns it is disowned (3.13).
    register(&reg, &thing(), tags_listing_10());
    let r = upd(None, vec![s("ROOM", "1"), s("SN", "")]);
    assert_eq!(reg.update(&thing(), r.clone()), Ok(Disowned));
    // Naming itself in `jid` is the same as no `jid`.
    let r = upd(Some("thing@example.org"), r.tags);
    assert_eq!(reg.update(&thing(), r), Ok(Disowned));
    assert_eq!(tags_of(&reg, &thing_key()), tags_listing_10());
    // Claimed: somebody else naming it in `jid` does not find it (3.14).
    claim10(&reg, &owner(), true).unwrap();
    let r = upd(Some("thing@example.org"), vec![s("ROOM", "1")]);
    assert_eq!(err(reg.update(&other(), r.clone())), ItemNotFound);
    assert_eq!(tags_of(&reg, &thing_key()), no_key(tags_listing_10()));
    // The thing itself naming its own JID updates itself.
    assert_eq!(reg.update(&thing(), r), Ok(Updated));
    assert_eq!(
        tags_of(&reg, &thing_key()).len(),
        5,
        "four of Listing 10 + ROOM"
    );
    consistent(&reg);
}

#[test]
fn register_of_claimed_thing_changes_nothing() {
    let reg = claimed_thing(Config::default());
    let before = reg.export();
    let already = RegisterOutcome::AlreadyClaimed {
        owner: bare("owner@example.org"),
        public: true,
    };
    for self_owned in [false, true] {
        let r = req(NodeAddress::default(), vec![s("SN", "new")], self_owned);
        let from = jid("thing@example.org/reset");
        assert_eq!(reg.register(&from, r), Ok(already.clone()));
    }
    assert_eq!(reg.export(), before);
    consistent(&reg);
}

#[test]
fn self_owned_register_is_searchable_at_once() {
    let reg = Registry::new(Config::default());
    let self_owned = || req(NodeAddress::default(), tags_listing_10(), true);
    register_req(&reg, &thing(), self_owned());
    let r = search(&reg, vec![eq("MODEL", "IMC")]);
    assert_eq!(r.things.len(), 1);
    assert_eq!(r.things[0].owner, bare("thing@example.org"));
    assert_eq!(err(claim10(&reg, &owner(), true)), ItemNotFound);
    let already = RegisterOutcome::AlreadyClaimed {
        owner: bare("thing@example.org"),
        public: true,
    };
    assert_eq!(reg.register(&thing(), self_owned()), Ok(already));
    // Its owner (itself) may remove it.
    reg.remove(&thing(), &thing_key()).unwrap();
    assert!(reg.is_empty());
    consistent(&reg);
}

#[test]
fn unregister_always_succeeds() {
    let reg = Registry::new(Config::default());
    assert_eq!(reg.unregister(&thing(), NodeAddress::default()), Ok(()));
    register(&reg, &thing(), tags_listing_10());
    let x = node(Some("x"), None, None);
    assert_eq!(reg.unregister(&thing(), x), Ok(()));
    assert_eq!(reg.len(), 1, "another node address is another thing");
    let other_resource = jid("thing@example.org/other");
    let r = reg.unregister(&other_resource, NodeAddress::default());
    assert_eq!(r, Ok(()));
    assert!(reg.is_empty());
    assert_eq!(reg.unregister(&thing(), NodeAddress::default()), Ok(()));
    consistent(&reg);
}

#[test]
fn disown_of_known_offline_thing_is_not_allowed_at_once() {
    let reg = claimed_thing(Config::default());
    reg.presence(&jid("thing@example.org"), false);
    assert_eq!(err(reg.disown(&owner(), &thing_key(), NOW)), NotAllowed);
    assert_eq!(reg.next_deadline(), None);
    // Back online under another resource: tried, and sent there.
    let imc2 = jid("thing@example.org/imc2");
    reg.presence(&imc2, true);
    let started = reg.disown(&owner(), &thing_key(), NOW).unwrap();
    assert_eq!(started.notification.to, imc2);
    reg.presence(&imc2, false);
    assert_eq!(err(reg.disown(&owner(), &thing_key(), NOW)), NotAllowed);
    assert_eq!(owner_of(&reg, &thing_key()), owner_bare());
    consistent(&reg);
}

#[test]
fn available_presence_of_a_bare_jid_is_not_offline() {
    // The host reports `thing@example.org` (no resource) available: the thing
    // is reachable, so a disown must be tried, not refused as offline (3.17).
    let reg = claimed_thing(Config::default());
    reg.presence(&jid("thing@example.org"), true);
    let started = reg.disown(&owner(), &thing_key(), NOW);
    assert!(started.is_ok(), "{started:?}");
    consistent(&reg);
}

#[test]
fn disown_refused_by_thing_is_not_allowed() {
    let reg = claimed_thing(Config::default());
    let started = reg.disown(&owner(), &thing_key(), NOW).unwrap();
    let r = reg.resolve_disown(started.pending, false, NOW + 1).unwrap();
    assert_eq!(
        (r.owner, r.result),
        (bare("owner@example.org"), Err(NotAllowed))
    );
    assert_eq!(tags_of(&reg, &thing_key()), no_key(tags_listing_10()));
    let again = reg.resolve_disown(started.pending, true, NOW + 2);
    assert_eq!(again, None, "resolved once");
    consistent(&reg);
}

#[test]
fn disown_times_out() {
    let reg = claimed_thing(Config::default());
    let b = add_claimed(&reg, "b", vec![s("SN", "b")]);
    let first = reg.disown(&owner(), &thing_key(), NOW).unwrap();
    let second = reg.disown(&owner(), &b, NOW + 5).unwrap();
    let timeout = Config::default().disown_timeout_ms;
    assert_eq!(first.deadline_ms, NOW + timeout);
    assert_eq!(reg.next_deadline(), Some(NOW + timeout));
    assert!(reg.expire(NOW + timeout - 1).is_empty());
    let expired = reg.expire(NOW + timeout);
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].pending, first.pending);
    assert_eq!(expired[0].result, Err(NotAllowed));
    assert_eq!(reg.next_deadline(), Some(second.deadline_ms));
    assert_eq!(reg.resolve_disown(first.pending, true, NOW + timeout), None);
    assert_eq!(reg.expire(u64::MAX).len(), 1);
    assert_eq!(reg.next_deadline(), None);
    assert_eq!(reg.stats().pending_disowns, 0);
    assert_eq!(owner_of(&reg, &thing_key()), owner_bare());
    assert_eq!(owner_of(&reg, &b), owner_bare());
    consistent(&reg);
}

#[test]
fn disown_acknowledged_too_late_or_after_removal() {
    let reg = claimed_thing(Config::default());
    let started = reg.disown(&owner(), &thing_key(), NOW).unwrap();
    let late = started.deadline_ms + 1;
    let r = reg.resolve_disown(started.pending, true, late).unwrap();
    assert_eq!(r.result, Err(NotAllowed));
    assert_eq!(tags_of(&reg, &thing_key()), no_key(tags_listing_10()));
    // The owner removes the thing while the disown waits.
    let started = reg.disown(&owner(), &thing_key(), NOW).unwrap();
    reg.remove(&owner(), &thing_key()).unwrap();
    let r = reg.resolve_disown(started.pending, true, NOW + 1).unwrap();
    assert_eq!(r.result, Err(NotAllowed));
    assert!(reg.is_empty());
    assert_eq!(reg.resolve_disown(PendingId(987_654), true, NOW), None);
    consistent(&reg);
}

#[test]
fn search_paging_has_no_skip_or_repeat() {
    let reg = Registry::new(Config::default());
    for i in 0..50 {
        let tags = vec![s("CLASS", "PAGE"), n("N", &i.to_string())];
        add_claimed(&reg, &format!("t{i:02}"), tags);
    }
    let queries = [
        eq("CLASS", "PAGE"),
        Operator::NumGtEq(name("N"), num(0.0)),
        Operator::NumNEq(name("N"), num(-1.0)),
        like("CLASS", "P*", "*"),
    ];
    for op in queries {
        let all = search(&reg, vec![op.clone()]);
        assert_eq!((all.things.len(), all.more), (50, false), "{op:?}");
        let mut paged = Vec::new();
        let mut offset = 0;
        loop {
            let req = page(vec![op.clone()], offset, Some(7));
            let p = reg.search(&req).unwrap();
            assert_eq!(p.more, offset + 7 < 50, "{op:?} at {offset}");
            assert!(p.things.len() == 7 || !p.more);
            paged.extend(jids(&p));
            if !p.more {
                break;
            }
            offset += 7;
        }
        assert_eq!(paged, jids(&all), "{op:?}");
        assert_eq!(paged.iter().collect::<BTreeSet<_>>().len(), 50);
        let past = reg.search(&page(vec![op], 50, Some(7))).unwrap();
        assert!(past.things.is_empty() && !past.more);
    }
    let huge = page(vec![eq("CLASS", "PAGE")], u32::MAX, Some(u32::MAX));
    let r = reg.search(&huge).unwrap();
    assert!(r.things.is_empty() && !r.more);
    let below_25 = vec![Operator::NumLt(name("N"), num(25.0))];
    let r = reg.search(&page(below_25, 20, Some(5))).unwrap();
    assert_eq!((r.things.len(), r.more), (5, false));
    consistent(&reg);
}

#[test]
fn max_count_is_capped_and_malformed_searches_rejected() {
    let reg = Registry::new(cfg(|c| c.max_search_results = 10));
    for i in 0..15 {
        add_claimed(&reg, &format!("t{i:02}"), vec![s("CLASS", "CAP")]);
    }
    let cases = [(0, Some(1000), 10, true), (0, None, 10, true)];
    let more_cases = [(0, Some(5), 5, true), (10, Some(1000), 5, false)];
    for (offset, max_count, len, more) in cases.into_iter().chain(more_cases) {
        let req = page(vec![eq("CLASS", "CAP")], offset, max_count);
        let r = reg.search(&req).unwrap();
        assert_eq!((r.things.len(), r.more), (len, more), "{max_count:?}");
    }
    // maxCount 0 or too many operators. No operator at all lists every
    // public claimed thing, paged like any search (issue 7).
    bad(reg.search(&page(vec![eq("SN", "1")], 0, Some(0))));
    let all = reg.search(&page(vec![], 5, Some(1000))).unwrap();
    assert_eq!((all.things.len(), all.more), (10, false));
    bad(reg.search(&Search::new(vec![eq("SN", "1"); 33])));
    consistent(&reg);
}

#[test]
fn negated_operators_skip_things_lacking_the_tag() {
    let reg = Registry::new(Config::default());
    let class = || s("CLASS", "NEG");
    add_claimed(&reg, "a", vec![class(), s("ROOM", "a"), n("ALT", "5")]);
    add_claimed(&reg, "b", vec![class()]);
    add_claimed(&reg, "c", vec![class(), n("ROOM", "7"), s("ALT", "x")]);
    let class = eq("CLASS", "NEG");
    for op in [
        Operator::StrNEq(name("ROOM"), "zzz".into()),
        Operator::StrNRange(name("ROOM"), str_range("m", true, "n", true)),
        Operator::NumNEq(name("ALT"), num(1.0)),
        Operator::NumNRange(name("ALT"), num_range(100.0, true, 200.0, true)),
    ] {
        assert_eq!(hits(&reg, &op), ["a@example.org"], "{op:?}");
        let both = found(&reg, vec![class.clone(), op.clone()]);
        assert_eq!(both, ["a@example.org"], "{op:?}");
    }
    // Excluded endpoints of an NRange are matched, included ones are not.
    let nr = |inc| Operator::NumNRange(name("ALT"), num_range(5.0, inc, 9.0, true));
    assert_eq!(hits(&reg, &nr(false)), ["a@example.org"]);
    assert!(hits(&reg, &nr(true)).is_empty());
    consistent(&reg);
}

#[test]
fn ranges_with_min_above_max() {
    let reg = Registry::new(Config::default());
    for (i, v) in ["a", "b", "c"].iter().enumerate() {
        let tags = vec![s("CLASS", "R"), n("V", &(i + 1).to_string()), s("NAME", v)];
        add_claimed(&reg, &format!("t{i}"), tags);
    }
    let class = eq("CLASS", "R");
    let (v, nm) = (|| name("V"), || name("NAME"));
    let empty = [
        Operator::NumRange(v(), num_range(3.0, true, 1.0, true)),
        Operator::NumRange(v(), num_range(2.0, false, 2.0, false)),
        Operator::NumRange(v(), num_range(2.0, true, 2.0, false)),
        Operator::StrRange(nm(), str_range("c", true, "a", true)),
        Operator::StrRange(nm(), str_range("b", false, "b", false)),
        Operator::StrRange(nm(), str_range("b", false, "b", true)),
    ];
    for op in empty {
        assert!(hits(&reg, &op).is_empty(), "{op:?}");
        let with_class = found(&reg, vec![class.clone(), op.clone()]);
        assert!(with_class.is_empty(), "{op:?}");
    }
    // NRange is `tag < min OR tag > max`: with min > max every value is outside.
    let all = [
        Operator::NumNRange(v(), num_range(3.0, true, 1.0, true)),
        Operator::StrNRange(nm(), str_range("c", true, "a", true)),
    ];
    for op in all {
        assert_eq!(hits(&reg, &op).len(), 3, "{op:?}");
        let with_class = found(&reg, vec![class.clone(), op.clone()]);
        assert_eq!(with_class.len(), 3, "{op:?}");
    }
    consistent(&reg);
}

#[test]
fn str_mask_custom_wildcards_and_literal_metacharacters() {
    let reg = Registry::new(Config::default());
    let values = ["a.b(c)[d]", "axb(c)[d]", "a.b(c)[d]-tail", "x*y", "xzy"];
    let values = [&values[..], &["100% sure", "$^+?{1}|\\", "two\nlines"]].concat();
    for (i, v) in values.iter().enumerate() {
        add_claimed(&reg, &format!("m{i}"), vec![s("NAME", v)]);
    }
    let masked = |m: &str, w: Option<&str>| -> Vec<String> {
        let op = Operator::StrMask(name("NAME"), mask(m, w));
        let strip = |j: &String| j.trim_end_matches("@example.org").to_string();
        hits(&reg, &op).iter().map(strip).collect()
    };
    assert_eq!(masked("a.b(%)[d]", Some("%")), ["m0"]);
    assert_eq!(masked("a.b(c)[d]%%", Some("%%")), ["m0", "m2"]);
    assert_eq!(masked("a%(c)[d]", Some("%")), ["m0", "m1"]);
    let star = masked("x*y", Some("%"));
    assert_eq!(star, ["m3"], "* is literal with another wildcard");
    assert_eq!(masked("x*y", None), ["m3"], "no wildcard: literal");
    assert_eq!(masked("x*y", Some("*")), ["m3", "m4"]);
    assert_eq!(masked("100% §", Some("§")), ["m5"]);
    assert_eq!(masked("$^+?{1}|\\", Some("%")), ["m6"]);
    assert_eq!(masked("$^+%|\\", Some("%")), ["m6"]);
    assert_eq!(
        masked("two%", Some("%")),
        ["m7"],
        "a run may hold a line feed"
    );
    let whole = masked("a.b", Some("%"));
    assert!(whole.is_empty(), "a mask matches whole values");
    assert_eq!(masked("WILD", Some("WILD")).len(), values.len());
    consistent(&reg);
}

#[test]
fn wide_ranges_and_masks_agree_with_a_plain_filter() {
    // Enough distinct values that ranges and masks exceed the planner's key
    // budgets and fall back to per-thing checks; every tenth thing is private.
    let reg = Registry::new(cfg(|c| c.max_search_results = 5000));
    for i in 0..2100u32 {
        let tags = vec![
            s("CLASS", "BIG"),
            n("N", &i.to_string()),
            s("SN", &format!("{i:04}")),
        ];
        register(&reg, &jid(&format!("t{i}@example.org/r")), tags.clone());
        claim(&reg, &owner(), tags, i % 10 != 0).unwrap();
    }
    let check = |ops: Vec<Operator>, keep: &dyn Fn(u32) -> bool| {
        let expected: Vec<String> = (0..2100u32)
            .filter(|&i| i % 10 != 0 && keep(i))
            .map(|i| format!("t{i}@example.org"))
            .collect();
        let mut got = found(&reg, ops.clone());
        got.sort_by_key(|j| j[1..j.find('@').unwrap()].parse::<u32>().unwrap());
        assert_eq!(got, expected, "{ops:?}");
        let first = reg.search(&page(ops.clone(), 0, Some(100))).unwrap();
        assert_eq!(first.more, expected.len() > 100, "{ops:?}");
    };
    let (nn, sn) = (|| name("N"), || name("SN"));
    let op = Operator::NumRange(nn(), num_range(100.0, true, 1999.0, false));
    check(vec![op], &|i| (100..1999).contains(&i));
    let op = Operator::NumNRange(nn(), num_range(100.0, false, 1999.0, true));
    check(vec![op], &|i| i <= 100 || i > 1999);
    check(vec![like("SN", "*7", "*")], &|i| i % 10 == 7);
    check(vec![like("SN", "1*", "*")], &|i| (1000..2000).contains(&i));
    let op = Operator::StrRange(sn(), str_range("0500", true, "1500", false));
    check(vec![op], &|i| (500..1500).contains(&i));
    check(vec![Operator::StrGt(sn(), "2000".into())], &|i| i > 2000);
    let op = Operator::NumLt(nn(), num(3.0));
    check(vec![op, like("SN", "*2", "*")], &|i| i == 2);
    let op = Operator::NumGtEq(nn(), num(2090.0));
    check(vec![eq("CLASS", "BIG"), op], &|i| i >= 2090);
    let op = Operator::StrNEq(sn(), "0001".into());
    check(vec![eq("CLASS", "BIG"), op], &|i| i != 1);
    consistent(&reg);
}

#[test]
fn removed_things_leave_nothing_behind_in_the_indexes() {
    let reg = Registry::new(Config::default());
    let a = add_claimed(&reg, "a", vec![s("CLASS", "OLD"), n("N", "1")]);
    add_claimed(&reg, "b", vec![s("CLASS", "KEPT")]);
    reg.remove(&owner(), &a).unwrap();
    // A new thing may reuse the removed one's slot.
    add_claimed(&reg, "c", vec![s("CLASS", "NEW"), s("N", "1")]);
    assert!(hits(&reg, &eq("CLASS", "OLD")).is_empty());
    assert!(hits(&reg, &Operator::NumEq(name("N"), num(1.0))).is_empty());
    assert_eq!(hits(&reg, &eq("N", "1")), ["c@example.org"]);
    assert_eq!(hits(&reg, &eq("CLASS", "NEW")), ["c@example.org"]);
    assert_eq!(hits(&reg, &like("CLASS", "*", "*")).len(), 2);
    // An update can change a tag's type.
    let c = jid("c@example.org/r");
    assert_eq!(reg.update(&c, upd(None, vec![n("N", "2")])), Ok(Updated));
    assert!(hits(&reg, &eq("N", "1")).is_empty());
    let two = Operator::NumEq(name("N"), num(2.0));
    assert_eq!(hits(&reg, &two), ["c@example.org"]);
    consistent(&reg);
}

/// A registry in every state: public (updated), private behind a concentrator,
/// unclaimed, self-owned, disowned (random KEY).
fn populate(reg: &Registry) {
    register(reg, &thing(), tags_listing_10());
    claim(reg, &owner(), tags_listing_10(), true).unwrap();
    let more = vec![s("KEY", "{}"), s("CLASS", "PLC"), n("LAT", "-33")];
    let more = upd(None, more);
    reg.update(&thing(), more).unwrap();
    let rack = jid("rack@example.org/plcs");
    let nd = node(Some("imc1"), Some("MeteringTopology"), None);
    let rack_tags = vec![s("SN", "r1"), s("KEY", "rk")];
    register_req(reg, &rack, req(nd, rack_tags.clone(), false));
    claim(reg, &owner(), rack_tags, false).unwrap();
    register(reg, &jid("free@example.org/x"), free_tags());
    let self_owned = req(NodeAddress::default(), vec![s("SN", "self")], true);
    register_req(reg, &jid("self@example.org/x"), self_owned);
    let gone = add_claimed(reg, "gone", vec![s("SN", "gone")]);
    disown_acked(reg, &gone);
}

fn free_tags() -> Vec<Tag> {
    vec![s("SN", "free"), s("KEY", "fk")]
}

fn store_records(store: &MemoryStore) -> Vec<ThingRecord> {
    let reg = Registry::with_store(Config::default(), Box::new(store.clone())).unwrap();
    sorted(reg.export())
}

#[test]
fn store_failure_changes_nothing() {
    let store = MemoryStore::new();
    let reg = Registry::with_store(Config::default(), Box::new(store.clone())).unwrap();
    populate(&reg);
    let before = reg.export();
    let stored = store_records(&store);
    let all_sn = || vec![like("SN", "*", "*")];
    let searched = search(&reg, all_sn());
    store.fail_writes(Some("disk full"));
    let failed = || RegistryError::Storage(StoreError("disk full".into()));
    let (new, free) = (jid("new@example.org/x"), jid("free@example.org/x"));
    let new_tags = || vec![s("SN", "new")];
    assert_eq!(err(reg.register(&new, plain(new_tags()))), failed());
    let self_owned = req(NodeAddress::default(), new_tags(), true);
    assert_eq!(err(reg.register(&new, self_owned)), failed());
    assert_eq!(err(reg.register(&free, plain(new_tags()))), failed());
    assert_eq!(err(claim(&reg, &other(), free_tags(), true)), failed());
    let current = tags_of(&reg, &thing_key());
    assert_eq!(err(claim(&reg, &owner(), current, false)), failed());
    let by_thing = upd(None, vec![s("ROOM", "1")]);
    assert_eq!(err(reg.update(&thing(), by_thing)), failed());
    let by_owner = upd(Some("thing@example.org"), vec![s("CLASS", "")]);
    assert_eq!(err(reg.update(&owner(), by_owner)), failed());
    assert_eq!(err(reg.remove(&owner(), &thing_key())), failed());
    assert_eq!(err(reg.unregister(&free, NodeAddress::default())), failed());
    let started = reg.disown(&owner(), &thing_key(), NOW).unwrap();
    let r = reg.resolve_disown(started.pending, true, NOW + 1).unwrap();
    assert_eq!(r.result, Err(failed()));
    assert_eq!(reg.export(), before);
    assert_eq!(search(&reg, all_sn()), searched);
    consistent(&reg);
    // Healed: nothing was written, and the same requests go through.
    store.fail_writes(None);
    assert_eq!(store_records(&store), stored);
    claim(&reg, &other(), free_tags(), true).unwrap();
    assert_eq!(store_records(&store), sorted(reg.export()));
    consistent(&reg);
}

#[test]
fn restart_from_store_restores_everything() {
    let store = MemoryStore::new();
    let config = Config::default;
    let reg = Registry::with_store(config(), Box::new(store.clone())).unwrap();
    populate(&reg);
    let nobody = jid("nobody@example.org/x");
    reg.unregister(&nobody, NodeAddress::default()).unwrap();
    let before = sorted(reg.export());
    let stats = reg.stats();
    let pending = reg.disown(&owner(), &thing_key(), NOW).unwrap().pending;
    let all_sn = || vec![like("SN", "*", "*")];
    let mut searched = search(&reg, all_sn()).things;
    drop(reg);

    let reg = Registry::with_store(config(), Box::new(store.clone())).unwrap();
    consistent(&reg);
    // Pending disowns live in memory only.
    assert_eq!(reg.stats().pending_disowns, 0);
    assert_eq!(reg.resolve_disown(pending, true, NOW + 1), None);
    assert_eq!(sorted(reg.export()), before);
    assert_eq!(reg.len(), store.len());
    assert_eq!(reg.stats().things, stats.things);
    assert_eq!(reg.stats().searchable, stats.searchable);
    let mut again = search(&reg, all_sn()).things;
    searched.sort_by(|a, b| a.key.cmp(&b.key));
    again.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(again, searched);
    // Only the thing and self; private, free and disowned ones are hidden.
    assert_eq!(again.len(), 2);
    // KEY stays secret, claims and notifications work as before.
    assert!(hits(&reg, &eq("KEY", "{}")).is_empty());
    let tags = again.iter().flat_map(|t| &t.tags);
    assert!(tags.clone().all(|t| !t.name.is_key()));
    claim(&reg, &other(), free_tags(), true).unwrap();
    let removed = reg.remove(&owner(), &thing_key()).unwrap();
    assert_eq!(removed.notification.to, thing());
    consistent(&reg);
    drop(reg);
    let reg = Registry::with_store(config(), Box::new(store)).unwrap();
    assert_eq!(reg.len(), before.len() - 1);
    let free = ThingKey::of(bare("free@example.org"));
    assert_eq!(owner_of(&reg, &free), Some(bare("other@example.org")));
    consistent(&reg);
}
