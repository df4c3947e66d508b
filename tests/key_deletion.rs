//! The registry deletes a thing's `KEY` when it is claimed (spec 6.5, issue 7),
//! keeping only a salted digest of the claimed tag set: the same owner's
//! idempotent re-claim with the original tags still succeeds, nobody else's
//! does, and the `KEY` is gone from memory, the store, exports and searches.
//! `Config::delete_key_on_claim = false` keeps the old behaviour.

use iotdisco::query::Operator;
use iotdisco::{
    Claim, Config, Engine, EngineConfig, Handled, Jid, NodeAddress, Outbox, Register, Registry,
    RegistryError, Search, Tag, TagName,
};

const SECRET: &str = "s3cr3t-Key-394872348732948723";

fn jid(s: &str) -> Jid {
    Jid::parse(s).unwrap()
}

fn tags() -> Vec<Tag> {
    vec![
        Tag::str("SN", "394872348732948723").unwrap(),
        Tag::str("MAN", "www.ktc.se").unwrap(),
        Tag::num("V", 1.0).unwrap(),
        Tag::str("KEY", SECRET).unwrap(),
    ]
}

fn register(reg: &Registry) {
    let req = Register {
        node: NodeAddress::default(),
        tags: tags(),
        self_owned: false,
    };
    reg.register(&jid("thing@example.org/imc"), req).unwrap();
}

fn claim(reg: &Registry, who: &str, tags: Vec<Tag>) -> Result<iotdisco::Claimed, RegistryError> {
    reg.claim(&jid(who), Claim { tags, public: true })
}

fn thing_key() -> iotdisco::ThingKey {
    iotdisco::ThingKey::of(iotdisco::BareJid::parse("thing@example.org").unwrap())
}

#[test]
fn a_claim_deletes_key_and_keeps_a_digest() {
    let reg = Registry::new(Config::default());
    register(&reg);
    claim(&reg, "owner@example.org/app", tags()).unwrap();
    let rec = reg.get(&thing_key()).unwrap();
    assert!(rec.tags.iter().all(|t| !t.name.is_key()), "{rec:?}");
    assert_eq!(rec.tags.len(), 3);
    let digest = rec.claim_digest.expect("a digest");
    assert!(!digest.to_hex().contains(&hex(SECRET)));
    assert!(!format!("{rec:?}").contains(SECRET));
    let mut export = Vec::new();
    reg.export_jsonl(&mut export).unwrap();
    assert!(!String::from_utf8_lossy(&export).contains(SECRET));
    // Searches never showed KEY; now it is not there to show either.
    let found = reg
        .search(&Search::new(vec![Operator::StrEq(
            TagName::new("MAN").unwrap(),
            "www.ktc.se".into(),
        )]))
        .unwrap();
    assert_eq!(found.things.len(), 1);
    reg.check_consistency().unwrap();
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_same_owner_reclaims_with_the_original_tags() {
    let reg = Registry::new(Config::default());
    register(&reg);
    let first = claim(&reg, "owner@example.org/app", tags()).unwrap();
    // The app's reply was lost: it retries, tags in another order, another
    // resource, the number spelled differently, and public flipped.
    let mut again = tags();
    again.reverse();
    again[1] = Tag::num("V", 1.0).unwrap();
    let second = reg
        .claim(
            &jid("owner@example.org/other"),
            Claim {
                tags: again,
                public: false,
            },
        )
        .unwrap();
    assert_eq!(second.thing, first.thing);
    assert!(!second.public);
    assert!(!reg.get(&thing_key()).unwrap().public);
    // Without KEY, the owner's own thing still matches its (now KEY-less) tags.
    let no_key: Vec<Tag> = tags().into_iter().filter(|t| !t.name.is_key()).collect();
    assert_eq!(
        claim(&reg, "owner@example.org/app", no_key.clone())
            .unwrap()
            .thing,
        first.thing
    );
    reg.check_consistency().unwrap();
}

#[test]
fn a_wrong_key_or_another_claimant_finds_nothing() {
    let reg = Registry::new(Config::default());
    register(&reg);
    claim(&reg, "owner@example.org/app", tags()).unwrap();
    let mut wrong = tags();
    wrong[3] = Tag::str("KEY", "guess").unwrap();
    assert_eq!(
        claim(&reg, "owner@example.org/app", wrong).unwrap_err(),
        RegistryError::ItemNotFound
    );
    for who in ["thief@example.org/x", "owner@example.com/app"] {
        assert_eq!(
            claim(&reg, who, tags()).unwrap_err(),
            RegistryError::ItemNotFound,
            "{who}"
        );
        let no_key: Vec<Tag> = tags().into_iter().filter(|t| !t.name.is_key()).collect();
        assert_eq!(
            claim(&reg, who, no_key).unwrap_err(),
            RegistryError::ItemNotFound
        );
    }
}

#[test]
fn a_disown_drops_the_digest_and_the_thing_is_claimable_again() {
    let reg = Registry::new(Config::default());
    register(&reg);
    claim(&reg, "owner@example.org/app", tags()).unwrap();
    let started = reg
        .disown(&jid("owner@example.org/app"), &thing_key(), 0)
        .unwrap();
    let done = reg.resolve_disown(started.pending, true, 1).unwrap();
    assert!(done.result.is_ok());
    let rec = reg.get(&thing_key()).unwrap();
    assert_eq!(rec.claim_digest, None);
    assert!(rec.owner.is_none());
    // The old tags (with the old KEY) claim nothing any more.
    assert!(claim(&reg, "owner@example.org/app", tags()).is_err());
    reg.check_consistency().unwrap();
}

#[test]
fn the_switch_keeps_key() {
    let reg = Registry::new(Config {
        delete_key_on_claim: false,
        ..Config::default()
    });
    register(&reg);
    claim(&reg, "owner@example.org/app", tags()).unwrap();
    let rec = reg.get(&thing_key()).unwrap();
    assert_eq!(rec.tags, tags());
    assert_eq!(rec.claim_digest, None);
    claim(&reg, "owner@example.org/app", tags()).unwrap();
}

#[test]
fn digests_survive_a_restart_and_an_export_import() {
    let dir = tempfile::tempdir().unwrap();
    let exported = {
        let reg = Registry::open(dir.path(), Config::default()).unwrap();
        register(&reg);
        claim(&reg, "owner@example.org/app", tags()).unwrap();
        let mut out = Vec::new();
        reg.export_jsonl(&mut out).unwrap();
        out
    };
    let reg = Registry::open(dir.path(), Config::default()).unwrap();
    let rec = reg.get(&thing_key()).unwrap();
    assert!(rec.claim_digest.is_some() && rec.tags.len() == 3);
    claim(&reg, "owner@example.org/app", tags()).unwrap();
    assert!(claim(&reg, "thief@example.org/x", tags()).is_err());
    // Into another registry (another process, other hash seeds): the salt
    // travels inside the digest.
    let moved = Registry::new(Config::default());
    moved.import_jsonl(&exported[..]).unwrap();
    assert_eq!(moved.get(&thing_key()), Some(rec));
    claim(&moved, "owner@example.org/app", tags()).unwrap();
    moved.check_consistency().unwrap();
}

#[test]
fn on_the_wire_a_reclaim_answers_claimed() {
    let engine = Engine::new(
        "discovery.example.org",
        Registry::new(Config::default()),
        EngineConfig::default(),
    )
    .unwrap();
    let send = |from: &str, body: &str| {
        let stanza =
            format!("<iq type='set' from='{from}' to='discovery.example.org' id='q'>{body}</iq>");
        let mut out = Outbox::new();
        assert_eq!(engine.handle(stanza.as_bytes(), 0, &mut out), Handled::Done);
        out.to_strings()
    };
    let tags = format!(
        "<str name='SN' value='394872348732948723'/><num name='V' value='1'/><str name='KEY' value='{SECRET}'/>"
    );
    send(
        "thing@example.org/imc",
        &format!("<register xmlns='urn:xmpp:iot:discovery'>{tags}</register>"),
    );
    let mine = format!("<mine xmlns='urn:xmpp:iot:discovery'>{tags}</mine>");
    let first = send("owner@example.org/app", &mine);
    assert!(
        first[0].contains("<claimed xmlns='urn:xmpp:iot:discovery' jid='thing@example.org'/>"),
        "{first:?}"
    );
    assert_eq!(first.len(), 2, "reply and the thing's notification");
    let again = send("owner@example.org/app", &mine);
    assert!(again[0].contains("<claimed "), "{again:?}");
    let thief = send("thief@example.org/x", &mine);
    assert!(thief[0].contains("item-not-found"), "{thief:?}");
}
