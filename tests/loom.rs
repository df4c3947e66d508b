//! Model-checks the registry's locking with loom: every interleaving of the
//! listed threads is explored. Run with
//! `RUSTFLAGS="--cfg loom" cargo test --release --test loom`.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;

use iotdisco::query::Operator;
use iotdisco::{Claim, Config, Jid, Register, Registry, RegistryError, Search, Tag, TagName};

fn tags() -> Vec<Tag> {
    vec![
        Tag::str("SN", "1").unwrap(),
        Tag::str("MAN", "m").unwrap(),
        Tag::str("KEY", "k").unwrap(),
    ]
}

fn register(reg: &Registry) {
    reg.register(
        &Jid::parse("thing@x/r").unwrap(),
        Register {
            node: Default::default(),
            tags: tags(),
            self_owned: false,
        },
    )
    .unwrap();
}

fn claim(reg: &Registry, who: &str) -> Result<(), RegistryError> {
    reg.claim(
        &Jid::parse(who).unwrap(),
        Claim {
            tags: tags(),
            public: true,
        },
    )
    .map(|_| ())
}

/// A search running beside a claim sees the thing completely or not at all.
#[test]
fn search_sees_whole_claims() {
    loom::model(|| {
        let reg = Arc::new(Registry::new(Config::default()));
        register(&reg);
        let r2 = reg.clone();
        let t = thread::spawn(move || claim(&r2, "owner@x/p").unwrap());
        let q = Search::new(vec![Operator::StrEq(
            TagName::new("MAN").unwrap(),
            "m".into(),
        )]);
        let found = reg.search(&q).unwrap();
        assert!(found.things.len() <= 1);
        if let Some(t) = found.things.first() {
            assert_eq!(t.owner.as_str(), "owner@x");
            assert_eq!(t.tags.len(), 2, "all tags but KEY");
        }
        t.join().unwrap();
        assert_eq!(reg.search(&q).unwrap().things.len(), 1);
    });
}

/// Two owners racing for one thing: exactly one wins, no lost update.
#[test]
fn racing_claims_have_one_winner() {
    loom::model(|| {
        let reg = Arc::new(Registry::new(Config::default()));
        register(&reg);
        let r2 = reg.clone();
        let t = thread::spawn(move || claim(&r2, "a@x/p").is_ok());
        let b = claim(&reg, "b@x/p").is_ok();
        let a = t.join().unwrap();
        assert!(a ^ b, "exactly one claim succeeds (a={a}, b={b})");
        let owner = reg.export()[0].owner.clone().unwrap();
        assert_eq!(owner.as_str(), if a { "a@x" } else { "b@x" });
        reg.check_consistency().unwrap();
    });
}

/// Concurrent disowns get distinct pending ids.
#[test]
fn pending_ids_are_unique() {
    loom::model(|| {
        let reg = Arc::new(Registry::new(Config::default()));
        register(&reg);
        claim(&reg, "o@x/p").unwrap();
        let key = reg.export()[0].key.clone();
        let r2 = reg.clone();
        let k2 = key.clone();
        let t = thread::spawn(move || {
            r2.disown(&Jid::parse("o@x/p").unwrap(), &k2, 0)
                .unwrap()
                .pending
        });
        let a = reg
            .disown(&Jid::parse("o@x/p").unwrap(), &key, 0)
            .unwrap()
            .pending;
        let b = t.join().unwrap();
        assert_ne!(a, b);
    });
}

/// A thing's acknowledgement racing the disown's time-out: the owner gets exactly
/// one reply, and the registry's state agrees with it.
#[test]
fn disown_answer_and_timeout_reply_once() {
    use iotdisco::{Engine, EngineConfig, Handled, Outbox};
    loom::model(|| {
        let reg = Registry::new(Config::default());
        register(&reg);
        claim(&reg, "owner@x/p").unwrap();
        let engine = Arc::new(Engine::new("registry.x", reg, EngineConfig::default()).unwrap());
        let mut out = Outbox::new();
        let disown = "<iq type='set' from='owner@x/p' to='registry.x' id='d'>\
            <disown xmlns='urn:xmpp:iot:discovery' jid='thing@x'/></iq>";
        assert_eq!(engine.handle(disown.as_bytes(), 0, &mut out), Handled::Done);
        let s = out.to_strings();
        let id = s[0]
            .split("id='")
            .nth(1)
            .unwrap()
            .split('\'')
            .next()
            .unwrap()
            .to_string();
        let e2 = engine.clone();
        let t = thread::spawn(move || {
            let mut out = Outbox::new();
            let ack = format!("<iq type='result' from='thing@x/r' to='registry.x' id='{id}'/>");
            e2.handle(ack.as_bytes(), 10, &mut out);
            out.to_strings()
        });
        let mut ticked = Outbox::new();
        engine.tick(u64::MAX, &mut ticked);
        let acked = t.join().unwrap();
        let replies: Vec<String> = acked.into_iter().chain(ticked.to_strings()).collect();
        assert_eq!(replies.len(), 1, "{replies:?}");
        let unclaimed = engine.registry().export()[0].owner.is_none();
        assert_eq!(
            replies[0].contains("type='result'"),
            unclaimed,
            "{replies:?}"
        );
    });
}
