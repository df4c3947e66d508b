//! Soak (issue 8): a long deterministic stream of operations from 10,000 JIDs,
//! 5% of them hostile, through the stanza entry point on a simulated host clock
//! (1 ms per operation).
//!
//! Well-behaved JIDs: 7,000 things (register, re-register, update themselves,
//! go offline and come back, answer notifications when online), 1,500 owners
//! (claim with the right tags, update and remove their things), 1,000 searchers.
//! Hostile JIDs (500): claim guessers spread over two domains, search
//! flooders, tag spammers (new random tag names on every registration) and
//! senders of broken stanzas (truncated, DTD, oversized, deep, bad numbers,
//! unknown namespaces).
//!
//! After the run: every well-behaved request was answered with success; the
//! index equals a rebuild from the records and a registry rebuilt from the store
//! holds exactly the same records; every well-behaved thing's record equals a
//! model of what it and its owner did; no guesser owns anything; the engine's
//! own memory accounting ([`Engine::accounted_bytes`]) stays under
//! [`MEMORY_BOUND`], the bound the README states.
//!
//! CI runs 50,000 operations (debug build); the documented long run is
//! `IOTDISCO_SOAK_OPS=1000000 cargo test --release --test soak -- --nocapture`.

use std::collections::BTreeMap;

use iotdisco::store::memory::MemoryStore;
use iotdisco::{BareJid, Config, Engine, EngineConfig, Handled, Outbox, Registry, TagValue};
use iotdisco::{ThingKey, ThingRecord};

const REG: &str = "registry.example.org";
const XEP: &str = "urn:xmpp:iot:discovery";
const THINGS: u64 = 7_000;
const OWNERS: u64 = 1_500;
const SEARCHERS: u64 = 1_000;
const HOSTILE: u64 = 500;
/// The accounted memory the run must stay under (README "Security and limits").
const MEMORY_BOUND: usize = 64 << 20;

/// SplitMix64: a fixed stream for a fixed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Val {
    S(String),
    N(f64),
}

#[derive(Debug, Clone)]
struct Model {
    registered: bool,
    tags: BTreeMap<String, Val>,
    owner: Option<u64>,
    public: bool,
    online: bool,
}

fn thing_jid(i: u64) -> String {
    format!("t{i}@things{}.example", i % 16)
}

fn owner_jid(j: u64) -> String {
    format!("o{j}@owners.example")
}

fn tag_xml(tags: &BTreeMap<String, Val>) -> String {
    tags.iter()
        .map(|(n, v)| match v {
            Val::S(s) => format!("<str name='{n}' value='{s}'/>"),
            Val::N(x) => format!("<num name='{n}' value='{x}'/>"),
        })
        .collect()
}

fn initial_tags(i: u64, rng: &mut Rng) -> BTreeMap<String, Val> {
    let mut t = BTreeMap::new();
    t.insert("SN".to_string(), Val::S(format!("sn{i}")));
    t.insert("KEY".to_string(), Val::S(format!("k{:016x}", rng.next())));
    t.insert("MAN".to_string(), Val::S(format!("man{}", i % 20)));
    t.insert("V".to_string(), Val::N((i % 7) as f64 + 0.5));
    t
}

struct Soak {
    engine: Engine,
    now: u64,
    rng: Rng,
    model: Vec<Model>,
    out: Outbox,
    hostile_outcomes: BTreeMap<&'static str, u64>,
    well_behaved_ops: u64,
}

impl Soak {
    fn send(&mut self, stanza: &str) -> Vec<String> {
        self.out.clear();
        let h = self
            .engine
            .handle(stanza.as_bytes(), self.now, &mut self.out);
        assert!(
            matches!(h, Handled::Done | Handled::NotMine | Handled::Dropped(_)),
            "{h:?} for {stanza:.200}"
        );
        let got = self.out.to_strings();
        self.answer_notifications(&got);
        got
    }

    /// Online well-behaved things answer what the registry sends them.
    fn answer_notifications(&mut self, stanzas: &[String]) {
        for s in stanzas {
            if !s.starts_with("<iq type='set'") {
                continue;
            }
            let to = attr(s, "to");
            let Some(i) = to
                .strip_prefix('t')
                .and_then(|r| r.split('@').next())
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            if i < THINGS && self.model[i as usize].online {
                let id = attr(s, "id");
                let reply = format!("<iq type='result' from='{to}' to='{REG}' id='{id}'/>");
                let mut scratch = Outbox::new();
                self.engine.handle(reply.as_bytes(), self.now, &mut scratch);
            }
        }
    }

    fn ok(&mut self, what: &str, stanza: String) -> Vec<String> {
        self.well_behaved_ops += 1;
        let got = self.send(&stanza);
        let reply = got.first().unwrap_or_else(|| panic!("{what}: no reply"));
        assert!(
            reply.starts_with("<iq type='result'"),
            "well-behaved {what} refused at {} ms: {reply}\n{stanza}",
            self.now
        );
        got
    }

    fn thing_op(&mut self, i: u64) {
        let from = format!("{}/dev", thing_jid(i));
        let m = self.model[i as usize].clone();
        if !m.online {
            // It comes back: presence, then what it missed arrives.
            let mut out = Outbox::new();
            self.engine
                .presence(&from, true, self.now, &mut out)
                .unwrap();
            self.model[i as usize].online = true;
            let got = out.to_strings();
            self.answer_notifications(&got);
            return;
        }
        if !m.registered {
            let tags = initial_tags(i, &mut self.rng);
            let x = tag_xml(&tags);
            self.ok("register", format!(
                "<iq type='set' from='{from}' to='{REG}' id='r'><register xmlns='{XEP}'>{x}</register></iq>"
            ));
            let t = &mut self.model[i as usize];
            t.registered = true;
            t.tags = tags;
            return;
        }
        match (m.owner, self.rng.below(10)) {
            (None, 0) => {
                self.ok("unregister", format!(
                    "<iq type='set' from='{from}' to='{REG}' id='u'><unregister xmlns='{XEP}'/></iq>"
                ));
                let t = &mut self.model[i as usize];
                t.registered = false;
                t.tags.clear();
            }
            (None, _) => {
                let x = tag_xml(&m.tags);
                self.ok("re-register", format!(
                    "<iq type='set' from='{from}' to='{REG}' id='r'><register xmlns='{XEP}'>{x}</register></iq>"
                ));
            }
            (Some(_), 0) => {
                let mut out = Outbox::new();
                self.engine
                    .presence(&from, false, self.now, &mut out)
                    .unwrap();
                self.model[i as usize].online = false;
            }
            (Some(_), _) => {
                let v = self.rng.below(1000) as f64 / 4.0;
                let room = format!("r{}", self.rng.below(50));
                self.ok("update", format!(
                    "<iq type='set' from='{from}' to='{REG}' id='p'><update xmlns='{XEP}'><num name='V' value='{v}'/><str name='ROOM' value='{room}'/></update></iq>"
                ));
                let t = &mut self.model[i as usize];
                t.tags.insert("V".into(), Val::N(v));
                t.tags.insert("ROOM".into(), Val::S(room));
            }
        }
    }

    fn owner_op(&mut self, i: u64) {
        let m = self.model[i as usize].clone();
        if !m.registered {
            return self.thing_op(i);
        }
        match m.owner {
            None => {
                let j = i % OWNERS;
                let public = self.rng.chance(80);
                let x = tag_xml(&m.tags);
                let got = self.ok("claim", format!(
                    "<iq type='set' from='{}/app' to='{REG}' id='m'><mine xmlns='{XEP}' public='{public}'>{x}</mine></iq>",
                    owner_jid(j)
                ));
                assert!(got[0].contains("<claimed "), "{got:?}");
                let t = &mut self.model[i as usize];
                t.owner = Some(j);
                t.public = public;
                t.tags.remove("KEY");
            }
            Some(j) if self.rng.chance(5) => {
                self.ok("remove", format!(
                    "<iq type='set' from='{}/app' to='{REG}' id='x'><remove xmlns='{XEP}' jid='{}'/></iq>",
                    owner_jid(j),
                    thing_jid(i)
                ));
                let t = &mut self.model[i as usize];
                *t = Model {
                    online: t.online,
                    ..empty_model()
                };
            }
            Some(j) => {
                let loc = format!("l{}", self.rng.below(100));
                self.ok("owner update", format!(
                    "<iq type='set' from='{}/app' to='{REG}' id='w'><update xmlns='{XEP}' jid='{}'><str name='LOC' value='{loc}'/></update></iq>",
                    owner_jid(j),
                    thing_jid(i)
                ));
                self.model[i as usize]
                    .tags
                    .insert("LOC".into(), Val::S(loc));
            }
        }
    }

    fn search_op(&mut self) {
        let c = self.rng.below(SEARCHERS);
        let q = match self.rng.below(3) {
            0 => format!("<strEq name='MAN' value='man{}'/>", self.rng.below(20)),
            1 => format!(
                "<numRange name='V' min='{}' max='{}'/>",
                self.rng.below(100),
                100 + self.rng.below(100)
            ),
            _ => format!(
                "<strMask name='SN' value='sn{}*' wildcard='*'/>",
                self.rng.below(100)
            ),
        };
        let got = self.ok("search", format!(
            "<iq type='get' from='c{c}@clients.example/s' to='{REG}' id='s'><search xmlns='{XEP}' maxCount='20'>{q}</search></iq>"
        ));
        assert!(got[0].contains("<found "), "{got:?}");
    }

    fn hostile_op(&mut self) {
        let h = self.rng.below(HOSTILE);
        let outcome = match h % 4 {
            0 => {
                // Guessing: a plausible SN, a made-up KEY.
                let from = format!("g{h}@guess{}.example/x", h % 2);
                let sn = self.rng.below(THINGS);
                let key = self.rng.next();
                let got = self.send(&format!(
                    "<iq type='set' from='{from}' to='{REG}' id='g'><mine xmlns='{XEP}'><str name='SN' value='sn{sn}'/><str name='KEY' value='k{key:016x}'/><str name='MAN' value='man{}'/><num name='V' value='{}.5'/></mine></iq>",
                    sn % 20,
                    sn % 7
                ));
                assert!(!got[0].contains("<claimed "), "a guess succeeded: {got:?}");
                classify(&got[0])
            }
            1 => {
                // Flooding: a burst of searches at one instant.
                let from = format!("f{h}@flood.example/x");
                let mut last = String::new();
                for _ in 0..10 {
                    let got = self.send(&format!(
                        "<iq type='get' from='{from}' to='{REG}' id='f'><search xmlns='{XEP}'><strMask name='SN' value='*1*' wildcard='*'/></search></iq>"
                    ));
                    last = got[0].clone();
                }
                classify(&last)
            }
            2 => {
                // Tag spam: new names on every registration.
                let from = format!("s{h}@spam.example/x");
                let x: String = (0..4)
                    .map(|_| format!("<str name='SPAM{:x}' value='x'/>", self.rng.next()))
                    .collect();
                let got = self.send(&format!(
                    "<iq type='set' from='{from}' to='{REG}' id='t'><register xmlns='{XEP}'>{x}</register></iq>"
                ));
                classify(&got[0])
            }
            _ => {
                let from = format!("b{h}@broken.example/x");
                let body = match self.rng.below(6) {
                    0 => format!("<register xmlns='{XEP}'><str name='SN' value='1'/>"),
                    1 => "<!DOCTYPE x [<!ENTITY a 'b'>]><register/>".to_string(),
                    2 => format!(
                        "<register xmlns='{XEP}'><str name='A' value='{}'/></register>",
                        "x".repeat(200_000)
                    ),
                    3 => format!(
                        "<search xmlns='{XEP}'>{}{}</search>",
                        "<a>".repeat(40),
                        "</a>".repeat(40)
                    ),
                    4 => format!("<register xmlns='{XEP}'><num name='V' value='NaN'/></register>"),
                    _ => "<query xmlns='urn:example:other'/>".to_string(),
                };
                let stanza = format!("<iq type='set' from='{from}' to='{REG}' id='b'>{body}</iq>");
                let got = self.send(&stanza);
                got.first().map_or("not-mine", |r| classify(r))
            }
        };
        *self.hostile_outcomes.entry(outcome).or_default() += 1;
    }
}

fn empty_model() -> Model {
    Model {
        registered: false,
        tags: BTreeMap::new(),
        owner: None,
        public: false,
        online: true,
    }
}

fn classify(reply: &str) -> &'static str {
    if reply.contains("<resource-constraint ") {
        "resource-constraint"
    } else if reply.contains("<bad-request ") {
        "bad-request"
    } else if reply.contains("<item-not-found ") {
        "item-not-found"
    } else if reply.starts_with("<iq type='result'") {
        "result"
    } else {
        "other"
    }
}

fn attr(stanza: &str, name: &str) -> String {
    let pat = format!(" {name}='");
    let start = stanza.find(&pat).map_or(0, |p| p + pat.len());
    let end = start + stanza[start..].find('\'').unwrap_or(0);
    stanza[start..end].to_string()
}

fn by_key(mut v: Vec<ThingRecord>) -> Vec<ThingRecord> {
    v.sort_by(|a, b| a.key.cmp(&b.key));
    v
}

#[test]
fn soak_hostile_mix() {
    let ops: u64 = std::env::var("IOTDISCO_SOAK_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let store = MemoryStore::new();
    let registry = Registry::with_store(Config::default(), Box::new(store.clone())).unwrap();
    let mut s = Soak {
        engine: Engine::new(REG, registry, EngineConfig::default()).unwrap(),
        now: 1_000,
        rng: Rng(0x50a4_0347),
        model: (0..THINGS).map(|_| empty_model()).collect(),
        out: Outbox::new(),
        hostile_outcomes: BTreeMap::new(),
        well_behaved_ops: 0,
    };
    let mut peak = 0;
    for k in 0..ops {
        s.now += 1;
        if s.rng.chance(5) {
            s.hostile_op();
        } else {
            match s.rng.below(100) {
                0..=44 => {
                    let i = s.rng.below(THINGS);
                    s.thing_op(i);
                }
                45..=69 => {
                    let i = s.rng.below(THINGS);
                    s.owner_op(i);
                }
                _ => s.search_op(),
            }
        }
        if k % 1_000 == 0 {
            let mut out = Outbox::new();
            s.engine.tick(s.now, &mut out);
            peak = peak.max(s.engine.accounted_bytes());
        }
    }
    peak = peak.max(s.engine.accounted_bytes());
    let reg = s.engine.registry();
    println!(
        "soak: {ops} ops ({} well-behaved), {} things, hostile outcomes {:?}, peak accounted {} bytes, stats {:?}",
        s.well_behaved_ops,
        reg.len(),
        s.hostile_outcomes,
        peak,
        reg.stats()
    );
    // The index equals a rebuild from the records; the store rebuilds the same.
    reg.check_consistency().unwrap();
    let rebuilt = Registry::with_store(Config::default(), Box::new(store.clone())).unwrap();
    rebuilt.check_consistency().unwrap();
    assert_eq!(by_key(rebuilt.export()), by_key(reg.export()));
    // Every well-behaved thing is as it and its owner left it.
    for (i, m) in s.model.iter().enumerate() {
        let key = ThingKey::of(BareJid::parse(&thing_jid(i as u64)).unwrap());
        let got = reg.get(&key);
        if !m.registered {
            assert!(got.is_none(), "thing {i}: {got:?}");
            continue;
        }
        let r = got.unwrap_or_else(|| panic!("thing {i} lost"));
        let tags: BTreeMap<String, Val> = r
            .tags
            .iter()
            .map(|t| {
                let v = match &t.value {
                    TagValue::Str(x) => Val::S(x.to_string()),
                    TagValue::Num(x) => Val::N(x.get()),
                };
                (t.name.as_str().to_string(), v)
            })
            .collect();
        assert_eq!(tags, m.tags, "thing {i}");
        assert_eq!(
            r.owner.as_ref().map(|o| o.as_str().to_string()),
            m.owner.map(owner_jid),
            "thing {i}"
        );
        if m.owner.is_some() {
            assert_eq!(r.public, m.public, "thing {i}");
        }
    }
    assert!(
        reg.export().iter().all(|r| r
            .owner
            .as_ref()
            .is_none_or(|o| !o.domain().starts_with("guess"))),
        "a guesser owns a thing"
    );
    assert!(
        s.hostile_outcomes
            .get("resource-constraint")
            .copied()
            .unwrap_or(0)
            > 0
    );
    assert!(
        peak < MEMORY_BOUND,
        "accounted memory {peak} bytes over the bound {MEMORY_BOUND}"
    );
}
