//! Hostile clients and flaky things (spec 6, issue 8), through the stanza entry
//! point on the host's clock: claim-guess throttling per JID and per domain,
//! per-JID flood limits, the cap on distinct tag names, and `claimed` /
//! `removed` notifications kept (persisted) and delivered again when a thing
//! that missed them is next seen, a bounded number of times.
//!
//! Every limit is set small or left at its default and pushed past; each test
//! fails without the limit it names.

use iotdisco::store::memory::MemoryStore;
use iotdisco::throttle::Rate;
use iotdisco::{Config, Engine, EngineConfig, Handled, Outbox, Registry};

const REG: &str = "discovery.example.org";
const XEP: &str = "urn:xmpp:iot:discovery";
const SECRET: &str = "a1b2c3d4e5f6a7b8";

struct Host {
    engine: Engine,
    now: u64,
}

impl Host {
    fn new(config: Config, engine: EngineConfig) -> Host {
        Host::on(Registry::new(config), engine)
    }

    fn on(registry: Registry, engine: EngineConfig) -> Host {
        Host {
            engine: Engine::new(REG, registry, engine).unwrap(),
            now: 1_000,
        }
    }

    fn iq(&mut self, kind: &str, from: &str, id: &str, body: &str) -> Vec<String> {
        let stanza = format!("<iq type='{kind}' from='{from}' to='{REG}' id='{id}'>{body}</iq>");
        let mut out = Outbox::new();
        let h = self.engine.handle(stanza.as_bytes(), self.now, &mut out);
        assert!(
            matches!(h, Handled::Done | Handled::NotMine),
            "{h:?}: {stanza}"
        );
        out.to_strings()
    }

    fn set(&mut self, from: &str, body: &str) -> Vec<String> {
        self.iq("set", from, "q", body)
    }

    fn presence(&mut self, jid: &str, available: bool) -> Vec<String> {
        let mut out = Outbox::new();
        self.engine
            .presence(jid, available, self.now, &mut out)
            .unwrap();
        out.to_strings()
    }

    fn tick(&mut self) -> Vec<String> {
        let mut out = Outbox::new();
        self.engine.tick(self.now, &mut out);
        out.to_strings()
    }

    fn register(&mut self, thing: &str, sn: &str) -> Vec<String> {
        self.set(
            thing,
            &format!(
                "<register xmlns='{XEP}'><str name='SN' value='{sn}'/><str name='KEY' value='{SECRET}'/></register>"
            ),
        )
    }

    fn mine(&mut self, owner: &str, sn: &str, key: &str) -> Vec<String> {
        self.set(
            owner,
            &format!(
                "<mine xmlns='{XEP}'><str name='SN' value='{sn}'/><str name='KEY' value='{key}'/></mine>"
            ),
        )
    }

    /// A thing's answer to a notification `stanza` (ours), by id.
    fn answer(&mut self, notification: &str, error: Option<&str>) -> Handled {
        let id = attr(notification, "id");
        let to = attr(notification, "to");
        let stanza = match error {
            None => format!("<iq type='result' from='{to}' to='{REG}' id='{id}'/>"),
            Some(c) => format!(
                "<iq type='error' from='{to}' to='{REG}' id='{id}'><error type='cancel'><{c} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
            ),
        };
        let mut out = Outbox::new();
        let h = self.engine.handle(stanza.as_bytes(), self.now, &mut out);
        assert!(out.is_empty());
        h
    }
}

fn attr(stanza: &str, name: &str) -> String {
    let pat = format!(" {name}='");
    let start = stanza.find(&pat).unwrap() + pat.len();
    let end = start + stanza[start..].find('\'').unwrap();
    stanza[start..end].to_string()
}

fn is_claimed_reply(out: &[String]) -> bool {
    out.first()
        .is_some_and(|r| r.starts_with("<iq type='result'") && r.contains("<claimed "))
}

fn is_throttled(out: &[String]) -> bool {
    out.len() == 1 && out[0].contains("<resource-constraint ") && out[0].contains("type='wait'")
}

fn claimed_notifications(out: &[String]) -> Vec<&String> {
    out.iter()
        .filter(|s| s.starts_with("<iq type='set'") && s.contains("<claimed "))
        .collect()
}

// ---------------------------------------------------------------------------
// Claim guessing
// ---------------------------------------------------------------------------

#[test]
fn a_thousand_wrong_claims_then_the_right_one_is_refused_until_the_budget_refills() {
    let mut h = Host::new(Config::default(), EngineConfig::default());
    h.register("thing@example.org/imc", "1");
    let guesser = "guesser@evil.example/x";
    let mut not_found = 0;
    let mut throttled = 0;
    for i in 0..1_000 {
        let out = h.mine(guesser, "1", &format!("guess{i}"));
        if is_throttled(&out) {
            throttled += 1;
        } else {
            assert!(out[0].contains("<item-not-found "), "{out:?}");
            not_found += 1;
        }
    }
    assert_eq!(not_found, 20, "the burst of failed claims");
    assert_eq!(throttled, 980);
    // The right tags at the same instant: refused before matching.
    assert!(is_throttled(&h.mine(guesser, "1", SECRET)));
    // Another JID is unaffected.
    assert!(is_claimed_reply(&h.mine(
        "owner@evil.example/app",
        "1",
        SECRET
    )));
    // After one token's worth of the refill (100 per hour: 36 s), a claim is
    // matched again.
    h.register("thing2@example.org/imc", "2");
    h.now += 35_999;
    assert!(is_throttled(&h.mine(guesser, "2", SECRET)));
    h.now += 1;
    assert!(is_claimed_reply(&h.mine(guesser, "2", SECRET)));
}

#[test]
fn a_throttled_reply_says_nothing_about_the_thing() {
    let mut h = Host::new(Config::default(), EngineConfig::default());
    h.register("thing@example.org/imc", "1");
    for i in 0..20 {
        h.mine("g@evil.example/x", "1", &format!("guess{i}"));
    }
    let existing = h.mine("g@evil.example/x", "1", SECRET);
    let missing = h.mine("g@evil.example/x", "nope", "nope");
    assert!(is_throttled(&existing), "{existing:?}");
    assert_eq!(existing, missing);
    // Not claimed by the refused request.
    assert!(is_claimed_reply(&h.mine("o@example.org/a", "1", SECRET)));
}

#[test]
fn the_domain_budget_stops_guessing_from_many_jids() {
    let mut h = Host::new(Config::default(), EngineConfig::default());
    h.register("thing@example.org/imc", "1");
    // Ten JIDs of one domain spend 20 failures each: the domain's 200.
    for j in 0..10 {
        for i in 0..20 {
            let out = h.mine(&format!("g{j}@evil.example/x"), "1", &format!("w{i}"));
            assert!(out[0].contains("<item-not-found "), "{j} {i}: {out:?}");
        }
    }
    // A fresh JID of that domain is refused, even with the right tags.
    let fresh = h.mine("fresh@evil.example/x", "1", SECRET);
    assert!(is_throttled(&fresh), "{fresh:?}");
    assert!(fresh[0].contains("domain"));
    // Another domain is not.
    assert!(is_claimed_reply(&h.mine("o@good.example/a", "1", SECRET)));
}

#[test]
fn successful_claims_cost_no_budget() {
    let mut h = Host::new(Config::default(), EngineConfig::default());
    for i in 0..100 {
        h.register(&format!("t{i}@example.org/imc"), &format!("{i}"));
        assert!(is_claimed_reply(&h.mine(
            "installer@example.org/app",
            &format!("{i}"),
            SECRET
        )));
    }
}

// ---------------------------------------------------------------------------
// Floods
// ---------------------------------------------------------------------------

#[test]
fn searches_past_the_per_jid_rate_are_refused() {
    let engine = EngineConfig {
        searches: Rate::new(5, 3_600),
        ..EngineConfig::default()
    };
    let mut h = Host::new(Config::default(), engine);
    let search = format!("<search xmlns='{XEP}'><strEq name='SN' value='1'/></search>");
    for _ in 0..5 {
        let out = h.iq("get", "flood@evil.example/x", "s", &search);
        assert!(out[0].contains("<found "), "{out:?}");
    }
    let out = h.iq("get", "flood@evil.example/x", "s", &search);
    assert!(is_throttled(&out), "{out:?}");
    assert!(out[0].contains("too many searches"));
    // Another JID searches; one second later the flooder has one more.
    assert!(h.iq("get", "calm@example.org/x", "s", &search)[0].contains("<found "));
    h.now += 1_000;
    assert!(h.iq("get", "flood@evil.example/x", "s", &search)[0].contains("<found "));
    assert!(is_throttled(&h.iq(
        "get",
        "flood@evil.example/x",
        "s",
        &search
    )));
}

#[test]
fn writes_past_the_per_jid_rate_are_refused_and_change_nothing() {
    let engine = EngineConfig {
        writes: Rate::new(3, 3_600),
        ..EngineConfig::default()
    };
    let mut h = Host::new(Config::default(), engine);
    for i in 0..3 {
        let out = h.register("spam@evil.example/x", &format!("{i}"));
        assert!(out[0].starts_with("<iq type='result'"), "{out:?}");
    }
    let before = h.engine.registry().export();
    let out = h.register("spam@evil.example/x", "new");
    assert!(is_throttled(&out), "{out:?}");
    let upd = h.set(
        "spam@evil.example/x",
        &format!("<update xmlns='{XEP}'><str name='SN' value='x'/></update>"),
    );
    assert!(is_throttled(&upd), "{upd:?}");
    assert_eq!(h.engine.registry().export(), before);
    // A well-behaved thing meets none of the defaults.
    let mut calm = Host::new(Config::default(), EngineConfig::default());
    for i in 0..500 {
        let out = calm.register("calm@example.org/x", &format!("{i}"));
        assert!(out[0].starts_with("<iq type='result'"), "{out:?}");
    }
}

#[test]
fn tag_spam_meets_the_cap_of_distinct_names() {
    let config = Config {
        max_tag_names: 12,
        ..Config::default()
    };
    let mut h = Host::new(config, EngineConfig::default());
    // SN and KEY take two; ten more fit.
    h.register("thing@example.org/imc", "1");
    let spam =
        |i: u32| format!("<register xmlns='{XEP}'><str name='SPAM{i}' value='x'/></register>");
    for i in 0..10 {
        let out = h.set(&format!("s{i}@evil.example/x"), &spam(i));
        assert!(out[0].starts_with("<iq type='result'"), "{i}: {out:?}");
    }
    let before = h.engine.registry().export();
    let out = h.set("s10@evil.example/x", &spam(10));
    assert!(out[0].contains("<resource-constraint "), "{out:?}");
    assert!(out[0].contains("distinct tag names"));
    let upd = h.set(
        "thing@example.org/imc",
        &format!("<update xmlns='{XEP}'><str name='NEWNAME' value='x'/></update>"),
    );
    assert!(upd[0].contains("<resource-constraint ") || upd[0].contains("<disowned"));
    assert_eq!(
        h.engine.registry().export(),
        before,
        "nothing stored changed"
    );
    // Known names stay usable, and a name no thing uses any more frees its slot.
    assert!(h.register("other@example.org/imc", "2")[0].starts_with("<iq type='result'"));
    h.set("s0@evil.example/x", &format!("<unregister xmlns='{XEP}'/>"));
    let out = h.set("s10@evil.example/x", &spam(10));
    assert!(out[0].starts_with("<iq type='result'"), "{out:?}");
    h.engine.registry().check_consistency().unwrap();
    assert_eq!(h.engine.registry().stats().tag_names, 12);
}

// ---------------------------------------------------------------------------
// Notifications that do not arrive
// ---------------------------------------------------------------------------

#[test]
fn a_thing_offline_at_claim_time_learns_its_owner_when_it_comes_back() {
    let mut h = Host::new(Config::default(), EngineConfig::default());
    h.register("thing@example.org/imc", "1");
    h.presence("thing@example.org/imc", false);
    let out = h.mine("owner@example.org/app", "1", SECRET);
    assert!(is_claimed_reply(&out));
    assert_eq!(out.len(), 1, "nothing sent to an offline thing: {out:?}");
    assert_eq!(h.engine.registry().stats().undelivered, 1);
    // It comes back (another resource): it gets `claimed` with its owner.
    let back = h.presence("thing@example.org/new", true);
    assert_eq!(back.len(), 1, "{back:?}");
    assert!(back[0].contains("to='thing@example.org/new'"));
    assert!(back[0].contains("jid='owner@example.org'"));
    assert_eq!(h.answer(&back[0], None), Handled::Done);
    assert_eq!(h.engine.registry().stats().undelivered, 0);
    assert!(h.presence("thing@example.org/new", true).is_empty());
}

#[test]
fn undelivered_notifications_survive_a_restart() {
    let store = MemoryStore::new();
    let open = |store: &MemoryStore| {
        Registry::with_store(Config::default(), Box::new(store.clone())).unwrap()
    };
    let mut h = Host::on(open(&store), EngineConfig::default());
    h.register("thing@example.org/imc", "1");
    h.presence("thing@example.org/imc", false);
    assert!(is_claimed_reply(&h.mine(
        "owner@example.org/app",
        "1",
        SECRET
    )));
    drop(h);
    // A new process: presence is unknown until the thing shows up.
    let mut h = Host::on(open(&store), EngineConfig::default());
    assert_eq!(h.engine.registry().stats().undelivered, 1);
    // Its next request brings it: reply first, then what it missed.
    let out = h.set(
        "thing@example.org/imc",
        &format!("<update xmlns='{XEP}'><str name='ROOM' value='1'/></update>"),
    );
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out[0].starts_with("<iq type='result'"));
    assert_eq!(claimed_notifications(&out).len(), 1);
    h.answer(&out[1], None);
    drop(h);
    let h = Host::on(open(&store), EngineConfig::default());
    assert_eq!(h.engine.registry().stats().undelivered, 0);
}

#[test]
fn the_same_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut h = Host::on(
            Registry::open(dir.path(), Config::default()).unwrap(),
            EngineConfig::default(),
        );
        h.register("thing@example.org/imc", "1");
        h.presence("thing@example.org/imc", false);
        assert!(is_claimed_reply(&h.mine(
            "owner@example.org/app",
            "1",
            SECRET
        )));
    }
    let mut h = Host::on(
        Registry::open(dir.path(), Config::default()).unwrap(),
        EngineConfig::default(),
    );
    let back = h.presence("thing@example.org/imc", true);
    assert_eq!(claimed_notifications(&back).len(), 1, "{back:?}");
}

#[test]
fn errors_and_silence_are_retried_a_bounded_number_of_times() {
    let mut h = Host::new(Config::default(), EngineConfig::default());
    h.register("thing@example.org/imc", "1");
    let out = h.mine("owner@example.org/app", "1", SECRET);
    let first = claimed_notifications(&out)[0].clone();
    // 1st send answered with an error.
    h.answer(&first, Some("recipient-unavailable"));
    // 2nd send (its next request), not answered in time.
    let out = h.set(
        "thing@example.org/imc",
        &format!("<unregister xmlns='{XEP}' nodeId='x'/>"),
    );
    let second = claimed_notifications(&out);
    assert_eq!(second.len(), 1, "{out:?}");
    h.now += 31_000;
    h.tick();
    // 3rd send on presence, error again.
    let third = h.presence("thing@example.org/imc", true);
    assert_eq!(claimed_notifications(&third).len(), 1);
    h.answer(&third[0], Some("service-unavailable"));
    // 4th and last send.
    let fourth = h.presence("thing@example.org/imc", true);
    assert_eq!(claimed_notifications(&fourth).len(), 1);
    h.answer(&fourth[0], Some("service-unavailable"));
    // Given up: nothing more, and nothing kept.
    assert!(h.presence("thing@example.org/imc", true).is_empty());
    assert_eq!(h.engine.registry().stats().undelivered, 0);
}

#[test]
fn a_removed_thing_that_was_offline_learns_it_unless_registered_again() {
    let mut h = Host::new(Config::default(), EngineConfig::default());
    for t in ["a", "b"] {
        h.register(&format!("{t}@example.org/imc"), t);
        assert!(is_claimed_reply(&h.mine(
            "owner@example.org/app",
            t,
            SECRET
        )));
        h.presence(&format!("{t}@example.org/imc"), false);
        let out = h.set(
            "owner@example.org/app",
            &format!("<remove xmlns='{XEP}' jid='{t}@example.org'/>"),
        );
        assert_eq!(out.len(), 1, "nothing sent while offline: {out:?}");
    }
    let back = h.presence("a@example.org/imc", true);
    assert_eq!(back.len(), 1);
    assert!(back[0].contains("<removed "), "{back:?}");
    // b registers again before it is seen: the stale `removed` is dropped.
    let out = h.register("b@example.org/imc", "b");
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(h.engine.registry().stats().undelivered, 0);
}

#[test]
fn the_undelivered_table_is_bounded() {
    let config = Config {
        max_undelivered: 2,
        ..Config::default()
    };
    let mut h = Host::new(config, EngineConfig::default());
    for i in 0..5 {
        let thing = format!("t{i}@example.org/imc");
        h.register(&thing, &format!("{i}"));
        h.presence(&thing, false);
        assert!(is_claimed_reply(&h.mine(
            "owner@example.org/app",
            &format!("{i}"),
            SECRET
        )));
    }
    assert_eq!(h.engine.registry().stats().undelivered, 2);
    // The newest two are kept.
    assert!(h.presence("t0@example.org/imc", true).is_empty());
    assert_eq!(h.presence("t4@example.org/imc", true).len(), 1);
}

#[test]
fn the_accounting_covers_the_per_jid_tables() {
    let mut h = Host::new(Config::default(), EngineConfig::default());
    let empty = h.engine.accounted_bytes();
    for i in 0..200 {
        h.iq(
            "get",
            &format!("c{i}@example.org/x"),
            "s",
            &format!("<search xmlns='{XEP}'><strEq name='SN' value='1'/></search>"),
        );
    }
    assert!(h.engine.accounted_bytes() > empty + 200 * 24);
}
