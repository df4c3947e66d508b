//! Every listing of XEP-0347 from 10 to 53, replayed through the typed API.
//!
//! Each test sets up the state the listing needs, performs the request of the
//! listing with its exact JIDs, node attributes and tags, and checks the typed
//! outcome the listing shows (reply, error, notification to the thing).
//! Listings that are pure notifications or acknowledgements are checked through
//! the notification carried by the outcome and through the disown flow.

use iotdisco::query::{Mask, NumRange, Operator};
use iotdisco::tag::{Number, TagName};
use iotdisco::{
    BareJid, Claim, Claimed, Config, DisownResolution, FoundThing, Jid, NodeAddress, Notification,
    NotificationKind, Register, RegisterOutcome, Registry, RegistryError, Removed, Search,
    SearchResult, Tag, TagValue, ThingKey, Update, UpdateOutcome,
};

use RegistryError::{ItemNotFound, NotAllowed};

const NOW: u64 = 1_000_000;

fn jid(s: &str) -> Jid {
    Jid::parse(s).unwrap()
}

fn bare(s: &str) -> BareJid {
    BareJid::parse(s).unwrap()
}

/// `thing@example.org/imc`, the thing of the listings.
fn thing() -> Jid {
    jid("thing@example.org/imc")
}

/// `owner@example.org/phone`, the owner of the listings.
fn owner() -> Jid {
    jid("owner@example.org/phone")
}

fn owner_bare() -> BareJid {
    bare("owner@example.org")
}

/// `rack@example.org/plcs`, the concentrator of the listings.
fn rack() -> Jid {
    jid("rack@example.org/plcs")
}

/// `nodeId='imc1' sourceId='MeteringTopology'`.
fn rack_node() -> NodeAddress {
    NodeAddress::new(Some("imc1"), Some("MeteringTopology"), None).unwrap()
}

fn thing_key() -> ThingKey {
    ThingKey::of(bare("thing@example.org"))
}

fn rack_key() -> ThingKey {
    ThingKey {
        jid: bare("rack@example.org"),
        node: rack_node(),
    }
}

fn s(name: &str, value: &str) -> Tag {
    Tag::str(name, value).unwrap()
}

/// A numeric tag from its text, as the XML layer will parse it.
fn n(name: &str, text: &str) -> Tag {
    Tag {
        name: TagName::new(name).unwrap(),
        value: TagValue::Num(Number::parse(text, name).unwrap()),
    }
}

fn num(x: f64) -> Number {
    Number::new(x, "X").unwrap()
}

fn name(s: &str) -> TagName {
    TagName::new(s).unwrap()
}

/// The tags of listings 10, 12, 13, 15 and 16, in order.
/// Listing 10's tags as a claimed thing keeps them: the registry deletes `KEY`
/// at the claim (spec 6.5; `Config::delete_key_on_claim`, on by default).
fn claimed_tags_listing_10() -> Vec<Tag> {
    tags_listing_10()
        .into_iter()
        .filter(|t| !t.name.is_key())
        .collect()
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

/// The tags of listings 31 and 32.
fn tags_listing_31() -> Vec<Tag> {
    vec![
        s("KEY", "{}"),
        s("CLASS", "PLC"),
        n("LON", "-71.519722"),
        n("LAT", "-33.008055"),
    ]
}

/// The tags of listings 36 and 37.
fn tags_listing_36() -> Vec<Tag> {
    [
        "ROOM", "APT", "BLD", "STREET", "STREETNR", "AREA", "CITY", "REGION", "COUNTRY",
    ]
    .iter()
    .map(|t| s(t, "..."))
    .collect()
}

/// The tags of listings 41 and 42, in order (no KEY).
fn tags_listing_41() -> Vec<Tag> {
    vec![
        s("SN", "394872348732948723"),
        s("MAN", "www.ktc.se"),
        s("MODEL", "IMC"),
        n("V", "1.2"),
        s("CLASS", "PLC"),
        n("LON", "-71.519722"),
        n("LAT", "-33.008055"),
    ]
}

/// The operators of listing 40.
fn ops_listing_40() -> Vec<Operator> {
    let range = |min: f64, max: f64, max_included: bool| NumRange {
        min: num(min),
        min_included: true,
        max: num(max),
        max_included,
    };
    vec![
        Operator::StrEq(name("MAN"), "www.ktc.se".into()),
        Operator::StrEq(name("MODEL"), "IMC".into()),
        Operator::StrMask(name("SN"), Mask::new("39487*", Some("*")).unwrap()),
        Operator::NumRange(name("V"), range(1.0, 2.0, false)),
        Operator::NumRange(name("LON"), range(-72.0, -70.0, true)),
        Operator::NumRange(name("LAT"), range(-34.0, -33.0, true)),
    ]
}

/// `offset='0' maxCount='20'` of listing 40.
fn search_listing_40() -> Search {
    Search {
        operators: ops_listing_40(),
        offset: 0,
        max_count: Some(20),
    }
}

fn register(reg: &Registry, from: &Jid, node: NodeAddress, tags: Vec<Tag>) {
    let req = Register {
        node,
        tags,
        self_owned: false,
    };
    assert_eq!(reg.register(from, req), Ok(RegisterOutcome::Registered));
}

fn claim(
    reg: &Registry,
    from: &Jid,
    tags: Vec<Tag>,
    public: bool,
) -> Result<Claimed, RegistryError> {
    reg.claim(from, Claim { tags, public })
}

/// The claim of listings 15 (`public`) and 16 (`!public`).
fn claim10(reg: &Registry, from: &Jid, public: bool) -> Result<Claimed, RegistryError> {
    claim(reg, from, tags_listing_10(), public)
}

/// `other@example.org/phone`, neither the thing nor its owner.
fn other() -> Jid {
    jid("other@example.org/phone")
}

/// The error of a failed call (panics on success).
fn err<T: std::fmt::Debug>(r: Result<T, RegistryError>) -> RegistryError {
    r.unwrap_err()
}

/// The `claimed` notification of listings 20, 21 and 22.
fn claimed_note(to: Jid, node: NodeAddress, public: bool) -> Notification {
    let owner = owner_bare();
    let kind = NotificationKind::Claimed { owner, public };
    Notification { to, node, kind }
}

/// The `removed` / `disowned` notifications of listings 28, 29, 50 and 51.
fn note(to: Jid, node: NodeAddress, kind: NotificationKind) -> Notification {
    Notification { to, node, kind }
}

/// The `claimed` reply of listing 11.
fn already(public: bool) -> Result<RegisterOutcome, RegistryError> {
    let owner = owner_bare();
    Ok(RegisterOutcome::AlreadyClaimed { owner, public })
}

/// A registry where `thing@example.org/imc` registered (listing 10) and
/// `owner@example.org/phone` claimed it (listing 15).
fn claimed_thing() -> Registry {
    let reg = Registry::new(Config::default());
    register(&reg, &thing(), NodeAddress::default(), tags_listing_10());
    claim10(&reg, &owner(), true).unwrap();
    reg
}

/// The same for the thing behind `rack@example.org/plcs` (listings 13, 15).
fn claimed_rack() -> Registry {
    let reg = Registry::new(Config::default());
    register(&reg, &rack(), rack_node(), tags_listing_10());
    claim10(&reg, &owner(), true).unwrap();
    reg
}

fn search_sn(reg: &Registry) -> SearchResult {
    let op = Operator::StrEq(name("SN"), "394872348732948723".into());
    reg.search(&Search::new(vec![op])).unwrap()
}

fn update(jid: Option<&str>, node: NodeAddress, tags: Vec<Tag>) -> Update {
    let jid = jid.map(bare);
    Update { jid, node, tags }
}

fn consistent(reg: &Registry) {
    assert_eq!(reg.check_consistency(), Ok(()));
}

/// Decodes the QR-code text of 3.9: `IoTDisco`, then `;NAME:value` per tag,
/// `;#NAME:value` for a numeric tag, `\` escaping `;` and `\` in values.
fn decode_qr(text: &str) -> Vec<Tag> {
    let body = text.strip_prefix("IoTDisco").expect("IoTDisco prefix");
    let mut fields = vec![String::new()];
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut().unwrap().push(chars.next().unwrap()),
            ';' => fields.push(String::new()),
            c => fields.last_mut().unwrap().push(c),
        }
    }
    fields
        .iter()
        .filter(|f| !f.is_empty())
        .map(|f| {
            let (name, value) = f.split_once(':').expect("name:value");
            match name.strip_prefix('#') {
                Some(name) => n(name, value),
                None => s(name, value),
            }
        })
        .collect()
}

#[test]
fn listing_10_register_thing() {
    let reg = Registry::new(Config::default());
    register(&reg, &thing(), NodeAddress::default(), tags_listing_10());
    let rec = reg.get(&thing_key()).unwrap();
    assert_eq!(rec.tags, tags_listing_10());
    assert_eq!(rec.owner, None);
    assert!(!rec.public);
    assert_eq!(rec.last_resource.as_deref(), Some("imc"));
    // Not claimed: never in search results.
    assert!(search_sn(&reg).things.is_empty());
    // Registering again overrides everything, tags missing now included, and
    // there is one record per resource-less JID.
    let fewer = vec![s("SN", "394872348732948723"), s("KEY", "4857402340298342")];
    let other_resource = jid("thing@example.org/other");
    register(&reg, &other_resource, NodeAddress::default(), fewer.clone());
    assert_eq!(reg.len(), 1);
    let rec = reg.get(&thing_key()).unwrap();
    assert_eq!(rec.tags, fewer);
    assert_eq!(rec.last_resource.as_deref(), Some("other"));
    consistent(&reg);
}

#[test]
fn listing_11_register_when_already_claimed() {
    let reg = claimed_thing();
    let before = reg.export();
    let req = Register {
        node: NodeAddress::default(),
        tags: vec![s("SN", "1"), s("NAME", "changed")],
        self_owned: false,
    };
    assert_eq!(reg.register(&thing(), req.clone()), already(true));
    assert_eq!(reg.export(), before, "no meta data may change");
    // The same for a private claim.
    claim10(&reg, &owner(), false).unwrap();
    assert_eq!(reg.register(&thing(), req), already(false));
    assert_eq!(
        reg.get(&thing_key()).unwrap().tags,
        claimed_tags_listing_10()
    );
    consistent(&reg);
}

#[test]
fn listing_12_register_self_owned_thing() {
    let reg = Registry::new(Config::default());
    let req = Register {
        node: NodeAddress::default(),
        tags: tags_listing_10(),
        self_owned: true,
    };
    assert_eq!(reg.register(&thing(), req), Ok(RegisterOutcome::Registered));
    let rec = reg.get(&thing_key()).unwrap();
    assert_eq!(rec.owner, Some(bare("thing@example.org")));
    assert!(rec.public, "self-owned is PUBLIC CLAIMED");
    let found = search_sn(&reg);
    assert_eq!(
        found.things,
        vec![FoundThing {
            owner: bare("thing@example.org"),
            key: thing_key(),
            tags: tags_listing_10()[..4].to_vec(),
        }]
    );
    assert!(!found.more);
    consistent(&reg);
}

#[test]
fn listing_13_register_thing_behind_concentrator() {
    let reg = Registry::new(Config::default());
    register(&reg, &rack(), rack_node(), tags_listing_10());
    let rec = reg.get(&rack_key()).unwrap();
    assert_eq!(rec.key.node.node_id.as_deref(), Some("imc1"));
    assert_eq!(rec.key.node.source_id.as_deref(), Some("MeteringTopology"));
    assert_eq!(rec.key.node.cache_type, None);
    assert_eq!(rec.tags, tags_listing_10());
    assert_eq!(rec.last_resource.as_deref(), Some("plcs"));
    assert_eq!(reg.get(&ThingKey::of(bare("rack@example.org"))), None);
    // Self-owned behind a concentrator: add selfOwned='true'.
    let node2 = NodeAddress::new(Some("imc2"), Some("MeteringTopology"), None).unwrap();
    let req = Register {
        node: node2.clone(),
        tags: vec![s("SN", "2")],
        self_owned: true,
    };
    assert_eq!(reg.register(&rack(), req), Ok(RegisterOutcome::Registered));
    let key2 = ThingKey {
        jid: bare("rack@example.org"),
        node: node2,
    };
    let concentrator = Some(bare("rack@example.org"));
    assert_eq!(reg.get(&key2).unwrap().owner, concentrator);
    assert_eq!(reg.len(), 2);
    consistent(&reg);
}

#[test]
fn listing_14_15_17_claim_with_qr_code_data() {
    let qr = "IoTDisco;SN:394872348732948723;MAN:www.ktc.se;MODEL:IMC;#V:1.2;KEY:4857402340298342";
    let tags = decode_qr(qr);
    assert_eq!(tags, tags_listing_10(), "listing 14 = the registered tags");
    let reg = Registry::new(Config::default());
    register(&reg, &thing(), NodeAddress::default(), tags_listing_10());
    let claimed = claim(&reg, &owner(), tags, true).unwrap();
    assert_eq!(claimed.thing, thing_key());
    assert!(claimed.public);
    consistent(&reg);
}

#[test]
fn listing_15_17_20_23_claim_public_thing() {
    let reg = Registry::new(Config::default());
    register(&reg, &thing(), NodeAddress::default(), tags_listing_10());
    // The order of the tags is not important.
    let mut tags = tags_listing_10();
    tags.reverse();
    let claimed = claim(&reg, &owner(), tags, true).unwrap();
    // Listing 17: <claimed jid='thing@example.org'/>, no node attributes.
    assert_eq!(claimed.thing.jid.as_str(), "thing@example.org");
    assert!(claimed.thing.node.is_empty());
    assert!(claimed.public);
    // Listing 20: <claimed jid='owner@example.org'/> to thing@example.org/imc.
    let expected = claimed_note(thing(), NodeAddress::default(), true);
    assert_eq!(claimed.notification, expected);
    assert_eq!(claimed.notification.to.to_string(), "thing@example.org/imc");
    // Listing 23 (the thing's empty ack) needs no call: the claim is complete.
    let rec = reg.get(&thing_key()).unwrap();
    assert_eq!(rec.owner, Some(owner_bare()));
    assert!(rec.public);
    let public = search_sn(&reg).things;
    assert_eq!(public.len(), 1, "public claimed: searchable");
    consistent(&reg);
}

#[test]
fn listing_16_17_21_claim_private_thing() {
    let reg = Registry::new(Config::default());
    register(&reg, &thing(), NodeAddress::default(), tags_listing_10());
    let claimed = claim10(&reg, &owner(), false).unwrap();
    assert_eq!(claimed.thing, thing_key());
    assert!(!claimed.public);
    // Listing 21: <claimed jid='owner@example.org' public='false'/>.
    let expected = claimed_note(thing(), NodeAddress::default(), false);
    assert_eq!(claimed.notification, expected);
    let rec = reg.get(&thing_key()).unwrap();
    assert_eq!(rec.owner, Some(owner_bare()));
    assert!(!rec.public);
    assert!(search_sn(&reg).things.is_empty(), "private: not searchable");
    consistent(&reg);
}

#[test]
fn listing_18_22_claim_thing_behind_concentrator() {
    let reg = Registry::new(Config::default());
    register(&reg, &rack(), rack_node(), tags_listing_10());
    let claimed = claim10(&reg, &owner(), true).unwrap();
    // Listing 18 prints jid='rack@example.org/plcs', but 3.9 says the reply
    // holds the resource-less JID of the thing, plus its node attributes.
    assert_eq!(claimed.thing.jid.as_str(), "rack@example.org");
    assert_eq!(claimed.thing.node.node_id.as_deref(), Some("imc1"));
    let source = claimed.thing.node.source_id.as_deref();
    assert_eq!(source, Some("MeteringTopology"));
    assert_eq!(claimed.thing.node.cache_type, None);
    // Listing 22: to rack@example.org/plcs with nodeId and sourceId.
    let expected = claimed_note(rack(), rack_node(), true);
    assert_eq!(claimed.notification, expected);
    consistent(&reg);
}

#[test]
fn listing_19_claim_failure() {
    let reg = Registry::new(Config::default());
    // No such thing at all.
    assert_eq!(err(claim10(&reg, &owner(), true)), ItemNotFound);
    register(&reg, &thing(), NodeAddress::default(), tags_listing_10());
    // Not exactly the same meta data: wrong KEY, a subset, a superset, V as a
    // string instead of a number, a value in another case.
    let mut wrong_key = tags_listing_10();
    wrong_key[4] = s("KEY", "4857402340298343");
    let subset = tags_listing_10()[..4].to_vec();
    let mut superset = tags_listing_10();
    superset.push(s("NAME", "x"));
    let mut v_as_str = tags_listing_10();
    v_as_str[3] = s("V", "1.2");
    let mut model_case = tags_listing_10();
    model_case[2] = s("MODEL", "imc");
    for tags in [wrong_key, subset, superset, v_as_str, model_case] {
        let r = claim(&reg, &owner(), tags.clone(), true);
        assert_eq!(err(r), ItemNotFound, "{tags:?}");
    }
    assert_eq!(reg.get(&thing_key()).unwrap().owner, None);
    // Already claimed by somebody else.
    claim10(&reg, &owner(), true).unwrap();
    assert_eq!(err(claim10(&reg, &other(), true)), ItemNotFound);
    let rec = reg.get(&thing_key()).unwrap();
    assert_eq!(rec.owner, Some(owner_bare()));
    assert!(rec.public);
    consistent(&reg);
}

#[test]
fn listing_24_26_28_30_remove_thing() {
    let reg = claimed_thing();
    let removed = reg.remove(&owner(), &thing_key()).unwrap();
    // Listing 28: <removed/> to thing@example.org/imc, no node attributes.
    let expected = note(thing(), NodeAddress::default(), NotificationKind::Removed);
    let expected = Removed {
        notification: expected,
    };
    assert_eq!(removed, expected);
    // Listing 26 (empty result) and 30 (the thing's ack, nothing to do).
    assert_eq!(reg.get(&thing_key()), None);
    assert!(reg.is_empty());
    assert!(search_sn(&reg).things.is_empty());
    assert_eq!(err(claim10(&reg, &owner(), true)), ItemNotFound);
    consistent(&reg);
}

#[test]
fn listing_25_26_29_remove_thing_behind_concentrator() {
    let reg = claimed_rack();
    let removed = reg.remove(&owner(), &rack_key()).unwrap();
    let expected = note(rack(), rack_node(), NotificationKind::Removed);
    assert_eq!(removed.notification, expected);
    assert_eq!(reg.get(&rack_key()), None);
    consistent(&reg);
}

#[test]
fn listing_27_removal_failure() {
    let reg = Registry::new(Config::default());
    // Not found.
    assert_eq!(err(reg.remove(&owner(), &thing_key())), ItemNotFound);
    // Found but not claimed.
    register(&reg, &thing(), NodeAddress::default(), tags_listing_10());
    assert_eq!(err(reg.remove(&owner(), &thing_key())), ItemNotFound);
    // Owned by another.
    claim10(&reg, &owner(), true).unwrap();
    assert_eq!(err(reg.remove(&other(), &thing_key())), ItemNotFound);
    // Wrong node address.
    let behind = ThingKey {
        jid: bare("thing@example.org"),
        node: rack_node(),
    };
    assert_eq!(err(reg.remove(&owner(), &behind)), ItemNotFound);
    assert_eq!(reg.get(&thing_key()).unwrap().owner, Some(owner_bare()));
    consistent(&reg);
}

#[test]
fn listing_31_33_update_by_thing() {
    let reg = claimed_thing();
    let req = update(None, NodeAddress::default(), tags_listing_31());
    assert_eq!(reg.update(&thing(), req), Ok(UpdateOutcome::Updated));
    // Only the given tags are overwritten; new names are appended.
    let mut expected = tags_listing_10();
    expected[4] = s("KEY", "{}");
    expected.extend(tags_listing_31().into_iter().skip(1));
    assert_eq!(reg.get(&thing_key()).unwrap().tags, expected);
    let op = Operator::StrEq(name("CLASS"), "PLC".into());
    assert_eq!(reg.search(&Search::new(vec![op])).unwrap().things.len(), 1);
    consistent(&reg);
}

#[test]
fn listing_32_33_update_thing_behind_concentrator() {
    let reg = claimed_rack();
    let req = update(None, rack_node(), tags_listing_31());
    assert_eq!(reg.update(&rack(), req), Ok(UpdateOutcome::Updated));
    let tags = reg.get(&rack_key()).unwrap().tags;
    assert!(tags.contains(&s("CLASS", "PLC")));
    assert!(tags.contains(&n("LAT", "-33.008055")));
    assert!(tags.contains(&s("KEY", "{}")));
    consistent(&reg);
}

#[test]
fn listing_34_update_failure_after_removal() {
    let reg = claimed_thing();
    reg.remove(&owner(), &thing_key()).unwrap();
    let req = update(None, NodeAddress::default(), tags_listing_31());
    assert_eq!(err(reg.update(&thing(), req.clone())), ItemNotFound);
    // Never registered at all.
    let fresh = Registry::new(Config::default());
    assert_eq!(err(fresh.update(&thing(), req)), ItemNotFound);
    assert!(reg.is_empty() && fresh.is_empty());
    consistent(&reg);
}

#[test]
fn listing_35_update_by_disowned_thing() {
    let reg = Registry::new(Config::default());
    register(&reg, &thing(), NodeAddress::default(), tags_listing_10());
    let req = update(None, NodeAddress::default(), tags_listing_31());
    assert_eq!(reg.update(&thing(), req), Ok(UpdateOutcome::Disowned));
    assert_eq!(reg.get(&thing_key()).unwrap().tags, tags_listing_10());
    consistent(&reg);
}

#[test]
fn listing_36_38_owner_updates_thing() {
    let reg = claimed_thing();
    let req = update(
        Some("thing@example.org"),
        NodeAddress::default(),
        tags_listing_36(),
    );
    let owner_1234 = jid("owner@example.org/1234");
    assert_eq!(reg.update(&owner_1234, req), Ok(UpdateOutcome::Updated));
    let mut expected = claimed_tags_listing_10();
    expected.extend(tags_listing_36());
    let rec = reg.get(&thing_key()).unwrap();
    assert_eq!(rec.tags, expected);
    assert_eq!(rec.owner, Some(owner_bare()));
    let resource = rec.last_resource.as_deref();
    assert_eq!(resource, Some("imc"), "the owner is not the thing");
    let op = Operator::StrEq(name("CITY"), "...".into());
    assert_eq!(reg.search(&Search::new(vec![op])).unwrap().things.len(), 1);
    consistent(&reg);
}

#[test]
fn listing_37_38_owner_updates_thing_behind_concentrator() {
    let reg = claimed_rack();
    let req = update(Some("rack@example.org"), rack_node(), tags_listing_36());
    let owner_1234 = jid("owner@example.org/1234");
    assert_eq!(reg.update(&owner_1234, req), Ok(UpdateOutcome::Updated));
    let mut expected = claimed_tags_listing_10();
    expected.extend(tags_listing_36());
    assert_eq!(reg.get(&rack_key()).unwrap().tags, expected);
    consistent(&reg);
}

#[test]
fn listing_39_owner_update_failure() {
    let reg = claimed_thing();
    let other = jid("other@example.org/1234");
    // Owned by somebody else.
    let req = update(
        Some("thing@example.org"),
        NodeAddress::default(),
        tags_listing_36(),
    );
    assert_eq!(err(reg.update(&other, req.clone())), ItemNotFound);
    // Not found at all (unknown JID, or unknown node address).
    let unknown = update(
        Some("nothing@example.org"),
        NodeAddress::default(),
        tags_listing_36(),
    );
    let sender = jid("owner@example.org/1234");
    assert_eq!(err(reg.update(&sender, unknown)), ItemNotFound);
    let wrong_node = update(Some("thing@example.org"), rack_node(), tags_listing_36());
    assert_eq!(err(reg.update(&sender, wrong_node)), ItemNotFound);
    // Found but unclaimed: not among the sender's things either.
    register(&reg, &rack(), rack_node(), vec![s("SN", "1")]);
    let unclaimed = update(Some("rack@example.org"), rack_node(), tags_listing_36());
    assert_eq!(err(reg.update(&sender, unclaimed)), ItemNotFound);
    assert_eq!(
        reg.get(&thing_key()).unwrap().tags,
        claimed_tags_listing_10()
    );
    assert_eq!(reg.get(&rack_key()).unwrap().tags, vec![s("SN", "1")]);
    consistent(&reg);
}

/// Registers, claims and updates a PLC that does or does not match listing 40.
fn add_plc(reg: &Registry, local: &str, tags: Vec<Tag>, public: bool) {
    let from = jid(&format!("{local}@example.org/imc"));
    let mut tags = tags;
    tags.push(s("KEY", &format!("key-of-{local}")));
    register(reg, &from, NodeAddress::default(), tags.clone());
    claim(reg, &owner(), tags, public).unwrap();
}

fn plc(sn: &str, model: &str, v: &str, lon: &str, lat: &str) -> Vec<Tag> {
    vec![
        s("SN", sn),
        s("MAN", "www.ktc.se"),
        s("MODEL", model),
        n("V", v),
        s("CLASS", "PLC"),
        n("LON", lon),
        n("LAT", lat),
    ]
}

#[test]
fn listing_40_41_search_for_things() {
    let reg = claimed_thing();
    let req = update(None, NodeAddress::default(), tags_listing_31());
    assert_eq!(reg.update(&thing(), req), Ok(UpdateOutcome::Updated));
    // Things that miss one condition each.
    let ok = ("39487000", "IMC", "1.5", "-71", "-33.5");
    add_plc(&reg, "v2", plc(ok.0, ok.1, "2", ok.3, ok.4), true);
    add_plc(&reg, "sn", plc("39488000", ok.1, ok.2, ok.3, ok.4), true);
    add_plc(&reg, "model", plc(ok.0, "IMC2", ok.2, ok.3, ok.4), true);
    add_plc(&reg, "lon", plc(ok.0, ok.1, ok.2, "-69.9", ok.4), true);
    add_plc(&reg, "lat", plc(ok.0, ok.1, ok.2, ok.3, "-34.01"), true);
    add_plc(&reg, "private", plc(ok.0, ok.1, ok.2, ok.3, ok.4), false);
    let mut no_lat = plc(ok.0, ok.1, ok.2, ok.3, ok.4);
    no_lat.pop();
    add_plc(&reg, "nolat", no_lat, true);
    let unclaimed = jid("unclaimed@example.org/imc");
    register(
        &reg,
        &unclaimed,
        NodeAddress::default(),
        plc(ok.0, ok.1, ok.2, ok.3, ok.4),
    );
    // One more match, on every included endpoint.
    add_plc(&reg, "edge", plc("39487", "IMC", "1", "-72", "-33"), true);

    let found = reg.search(&search_listing_40()).unwrap();
    assert!(!found.more);
    assert_eq!(found.things.len(), 2, "{:?}", found.things);
    // Listing 41: owner, jid, the tags in record order, never KEY.
    assert_eq!(
        found.things[0],
        FoundThing {
            owner: owner_bare(),
            key: thing_key(),
            tags: tags_listing_41(),
        }
    );
    assert_eq!(found.things[1].key, ThingKey::of(bare("edge@example.org")));
    assert!(found.things[1].tags.iter().all(|t| !t.name.is_key()));
    consistent(&reg);
}

#[test]
fn listing_40_42_search_finds_thing_behind_concentrator() {
    let reg = claimed_rack();
    let req = update(None, rack_node(), tags_listing_31());
    assert_eq!(reg.update(&rack(), req), Ok(UpdateOutcome::Updated));
    let found = reg.search(&search_listing_40()).unwrap();
    assert!(!found.more);
    assert_eq!(
        found.things,
        vec![FoundThing {
            owner: owner_bare(),
            key: rack_key(),
            tags: tags_listing_41(),
        }]
    );
    assert_eq!(found.things[0].key.jid.as_str(), "rack@example.org");
    consistent(&reg);
}

#[test]
fn listing_43_45_unregister_thing() {
    let reg = claimed_thing();
    assert_eq!(reg.unregister(&thing(), NodeAddress::default()), Ok(()));
    assert!(reg.is_empty());
    assert!(search_sn(&reg).things.is_empty());
    // Always an empty result, even when there is nothing to unregister.
    assert_eq!(reg.unregister(&thing(), NodeAddress::default()), Ok(()));
    consistent(&reg);
}

#[test]
fn listing_44_45_unregister_thing_behind_concentrator() {
    let reg = Registry::new(Config::default());
    register(&reg, &rack(), rack_node(), tags_listing_10());
    let node2 = NodeAddress::new(Some("imc2"), Some("MeteringTopology"), None).unwrap();
    register(&reg, &rack(), node2.clone(), vec![s("SN", "2")]);
    register(&reg, &rack(), NodeAddress::default(), vec![s("SN", "3")]);
    assert_eq!(reg.unregister(&rack(), rack_node()), Ok(()));
    assert_eq!(reg.get(&rack_key()), None);
    assert_eq!(reg.len(), 2, "other nodes and the concentrator itself stay");
    let key2 = ThingKey {
        jid: bare("rack@example.org"),
        node: node2,
    };
    assert!(reg.get(&key2).is_some());
    consistent(&reg);
}

#[test]
fn listing_46_50_52_53_disown_thing() {
    let reg = claimed_thing();
    let started = reg.disown(&owner(), &thing_key(), NOW).unwrap();
    // Listing 50: <disowned/> to thing@example.org/imc.
    let expected = note(thing(), NodeAddress::default(), NotificationKind::Disowned);
    assert_eq!(started.notification, expected);
    let timeout = Config::default().disown_timeout_ms;
    assert_eq!(started.deadline_ms, NOW + timeout);
    assert_eq!(reg.next_deadline(), Some(started.deadline_ms));
    // Until the thing acknowledges, it stays claimed.
    assert_eq!(reg.get(&thing_key()).unwrap().owner, Some(owner_bare()));
    assert_eq!(search_sn(&reg).things.len(), 1);
    // Listing 52 (the thing's ack) -> listing 53 (empty result to the owner).
    assert_eq!(
        reg.resolve_disown(started.pending, true, NOW + 10),
        Some(DisownResolution {
            pending: started.pending,
            owner: owner_bare(),
            result: Ok(()),
        })
    );
    let rec = reg.get(&thing_key()).unwrap();
    assert_eq!(rec.owner, None);
    assert!(!rec.public);
    // All tags removed, a random KEY added.
    assert_eq!(rec.tags.len(), 1);
    assert!(rec.tags[0].name.is_key());
    let TagValue::Str(key) = &rec.tags[0].value else {
        panic!("KEY must be a string");
    };
    assert!(
        key.chars().count() >= 22,
        "KEY {key:?} too short to resist guessing"
    );
    assert_ne!(&**key, "4857402340298342");
    assert!(search_sn(&reg).things.is_empty());
    assert_eq!(reg.next_deadline(), None);
    assert_eq!(reg.stats().pending_disowns, 0);
    // The old claim data no longer claims it, and the thing learns (3.13) that
    // it has been disowned.
    assert_eq!(err(claim10(&reg, &owner(), true)), ItemNotFound);
    let req = update(None, NodeAddress::default(), tags_listing_31());
    assert_eq!(reg.update(&thing(), req), Ok(UpdateOutcome::Disowned));
    consistent(&reg);
}

#[test]
fn listing_47_51_52_53_disown_thing_behind_concentrator() {
    let reg = claimed_rack();
    reg.presence(&rack(), true);
    let started = reg.disown(&owner(), &rack_key(), NOW).unwrap();
    // Listing 51: to rack@example.org/plcs with nodeId and sourceId.
    let expected = note(rack(), rack_node(), NotificationKind::Disowned);
    assert_eq!(started.notification, expected);
    let done = reg.resolve_disown(started.pending, true, NOW + 1).unwrap();
    assert_eq!(done.result, Ok(()));
    assert_eq!(done.owner, owner_bare());
    let rec = reg.get(&rack_key()).unwrap();
    assert_eq!(rec.owner, None);
    assert_eq!(rec.tags.len(), 1);
    assert!(rec.tags[0].name.is_key());
    consistent(&reg);
}

#[test]
fn listing_48_disown_failure_not_found() {
    let reg = Registry::new(Config::default());
    assert_eq!(err(reg.disown(&owner(), &thing_key(), NOW)), ItemNotFound);
    // Registered but not claimed.
    register(&reg, &thing(), NodeAddress::default(), tags_listing_10());
    assert_eq!(err(reg.disown(&owner(), &thing_key(), NOW)), ItemNotFound);
    // Claimed by another; not-found wins over offline.
    claim10(&reg, &owner(), true).unwrap();
    reg.presence(&thing(), false);
    assert_eq!(err(reg.disown(&other(), &thing_key(), NOW)), ItemNotFound);
    assert_eq!(reg.stats().pending_disowns, 0);
    assert_eq!(reg.get(&thing_key()).unwrap().owner, Some(owner_bare()));
    consistent(&reg);
}

#[test]
fn listing_49_disown_failure_offline() {
    let reg = claimed_thing();
    reg.presence(&thing(), true);
    reg.presence(&thing(), false);
    assert_eq!(err(reg.disown(&owner(), &thing_key(), NOW)), NotAllowed);
    assert_eq!(reg.stats().pending_disowns, 0);
    assert_eq!(reg.next_deadline(), None);
    let rec = reg.get(&thing_key()).unwrap();
    assert_eq!(rec.owner, Some(owner_bare()));
    assert_eq!(rec.tags, claimed_tags_listing_10());
    consistent(&reg);
}

#[test]
fn listing_53_no_acknowledgement_is_the_offline_error() {
    // "If the Thing does not acknowledge, or an error occurs, the Registry
    // returns the same error as if the Thing would have been offline."
    let reg = claimed_thing();
    let refused = reg.disown(&owner(), &thing_key(), NOW).unwrap();
    let r = reg.resolve_disown(refused.pending, false, NOW + 1).unwrap();
    assert_eq!(r.result, Err(NotAllowed));
    let silent = reg.disown(&owner(), &thing_key(), NOW).unwrap();
    let expired = reg.expire(silent.deadline_ms);
    assert_eq!(
        expired,
        vec![DisownResolution {
            pending: silent.pending,
            owner: owner_bare(),
            result: Err(NotAllowed),
        }]
    );
    let rec = reg.get(&thing_key()).unwrap();
    assert_eq!(rec.owner, Some(owner_bare()));
    assert_eq!(rec.tags, claimed_tags_listing_10());
    consistent(&reg);
}
