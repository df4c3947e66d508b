//! Criterion benches of the whole wire path, stanza bytes in -> stanza bytes out
//! through [`Engine::handle`], at `IOTDISCO_BENCH_THINGS` things (default
//! 1,000,000; e.g. `IOTDISCO_BENCH_THINGS=100000` for a quick run).
//!
//! The population is `datagen` population 1, loaded with one `register_batch`
//! and claimed (public) thing by thing by its owner, as `datagen::install` does:
//! the same things, ids, owners and tags as the core benches (`search`,
//! `report`), whose answers are checked against the naive scan before anything
//! is timed.
//!
//! - `q1` .. `q5`: `core` is `Registry::search_with` reading each page thing's
//!   JID; `stanza` is the same search written as a stanza (the text parses to
//!   exactly `datagen::standard_queries()`, checked) through `Engine::handle`
//!   with one reused `Outbox`, cleared each iteration. Floor: stanza <= 2 x core
//!   + 5 µs.
//! - `register`: `register` stanzas of new things (fresh JIDs: datagen things
//!   `N..`, the registry grows while this runs), re-registrations of existing
//!   unclaimed things, and `update` stanzas sent by claimed things about
//!   themselves (3.13), one at a time on one thread; elements per second.
//!   Floor: >= 200,000 stanzas/s.
//!
//! Stanza bytes are built before each timed loop; only `handle` is timed.
//! Run: `cargo bench --bench stanza`.

#[path = "baseline/mod.rs"]
mod baseline;
#[path = "baseline/stanzas.rs"]
mod stanzas;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};

use baseline::naive::Naive;
use baseline::{Answer, iotdisco_answer};
use iotdisco::datagen::{self, GenThing};
use iotdisco::wire::request::{self, Body, Incoming, Limits, Request};
use iotdisco::{
    Claim, Config, Engine, EngineConfig, Handled, Jid, Outbox, RegisterOutcome, Registry,
};
use stanzas::{REGISTRY, register_stanza, update_stanza};

/// The host clock passed to `handle` (nothing here depends on it).
const NOW: u64 = 1_000_000;
/// Unclaimed things added (after the query benches) for the re-registration
/// bench; they cycle.
const UNCLAIMED: u64 = 100_000;

/// Things in the population.
fn things() -> u64 {
    std::env::var("IOTDISCO_BENCH_THINGS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000)
}

/// The standard queries as stanzas, operator for operator (checked against
/// `datagen::standard_queries()` by [`check_stanza_queries`]).
fn query_stanzas() -> [(&'static str, &'static str); 5] {
    [
        (
            "Q1",
            concat!(
                "<iq type='get' from='curious@example.org/client' to='discovery.example.org' id='q1'>",
                "<search xmlns='urn:xmpp:iot:discovery' offset='0' maxCount='20'>",
                "<strEq name='MAN' value='www.ktc.se'/>",
                "<strEq name='MODEL' value='IMC'/>",
                "<strMask name='SN' value='39487*' wildcard='*'/>",
                "<numRange name='V' min='1' minIncluded='true' max='2' maxIncluded='false'/>",
                "<numRange name='LON' min='-72' minIncluded='true' max='-70' maxIncluded='true'/>",
                "<numRange name='LAT' min='-34' minIncluded='true' max='-33' maxIncluded='true'/>",
                "</search></iq>"
            ),
        ),
        (
            "Q2",
            concat!(
                "<iq type='get' from='curious@example.org/client' to='discovery.example.org' id='q2'>",
                "<search xmlns='urn:xmpp:iot:discovery' offset='0' maxCount='20'>",
                "<strEq name='MAN' value='www.ktc.se'/>",
                "</search></iq>"
            ),
        ),
        (
            "Q3",
            concat!(
                "<iq type='get' from='curious@example.org/client' to='discovery.example.org' id='q3'>",
                "<search xmlns='urn:xmpp:iot:discovery' offset='0' maxCount='20'>",
                "<numRange name='LAT' min='-10' minIncluded='true' max='10' maxIncluded='true'/>",
                "<numRange name='LON' min='0' minIncluded='true' max='90' maxIncluded='true'/>",
                "</search></iq>"
            ),
        ),
        (
            "Q4",
            concat!(
                "<iq type='get' from='curious@example.org/client' to='discovery.example.org' id='q4'>",
                "<search xmlns='urn:xmpp:iot:discovery' offset='0' maxCount='20'>",
                "<strEq name='CLASS' value='PLC'/>",
                "<numGtEq name='V' value='2'/>",
                "<strNEq name='COUNTRY' value='SE'/>",
                "</search></iq>"
            ),
        ),
        (
            "Q5",
            concat!(
                "<iq type='get' from='curious@example.org/client' to='discovery.example.org' id='q5'>",
                "<search xmlns='urn:xmpp:iot:discovery' offset='0' maxCount='20'>",
                "<strMask name='SN' value='*1234*' wildcard='*'/>",
                "<strEq name='MAN' value='www.ktc.se'/>",
                "</search></iq>"
            ),
        ),
    ]
}

fn limits(engine: &Engine) -> Limits {
    let c = engine.registry().config();
    Limits {
        max_stanza_bytes: EngineConfig::default().max_stanza_bytes,
        max_depth: EngineConfig::default().max_depth,
        max_tags: c.max_tags_per_thing,
        max_operators: c.max_search_operators,
    }
}

/// `jid` attribute values of the `<thing/>` elements of a `<found/>` reply, and
/// its `more`.
fn found_jids(reply: &str) -> (Vec<String>, bool) {
    let more = reply.contains("more='true'");
    let jids = reply
        .split("<thing ")
        .skip(1)
        .map(|t| {
            let start = t.find(" jid='").expect("thing has a jid") + " jid='".len();
            let len = t[start..].find('\'').expect("quoted");
            t[start..start + len].to_string()
        })
        .collect();
    (jids, more)
}

fn is_empty_result(s: &[u8]) -> bool {
    s.starts_with(b"<iq type='result'") && s.ends_with(b"/>")
}

/// Builds the population, loads it (`register_batch` + claims), checks the
/// core answers against the naive scan and returns the engine over it.
fn build(n: u64) -> Engine {
    eprintln!("[stanza] building {n} things: register_batch + claim each");
    let t = Instant::now();
    let pop: Vec<GenThing> = baseline::population(n);
    let reg = Registry::new(Config::default());
    let outcomes = reg.register_batch(baseline::batch_requests(&pop));
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Ok(RegisterOutcome::Registered))),
        "register_batch refused a thing"
    );
    for g in &pop {
        reg.claim(
            &Jid::from(g.owner.clone()),
            Claim {
                tags: g.tags.clone(),
                public: true,
            },
        )
        .expect("claim");
    }
    eprintln!("[stanza] loaded in {:?}; checking answers", t.elapsed());
    let naive = Naive::build(&pop);
    drop(pop);
    for (name, q) in datagen::standard_queries() {
        assert_eq!(
            iotdisco_answer(&reg, &q),
            Answer::of_result(&naive.first_page(&q.operators)),
            "{name}: registry and naive scan disagree"
        );
    }
    drop(naive);
    // The per-JID budgets stay in the path (their bookkeeping is part of every
    // request's cost) but never refuse: the bench sends millions of stanzas
    // from a few JIDs at one instant of the host's clock.
    let never = iotdisco::throttle::Rate::new(u32::MAX, u32::MAX);
    let config = EngineConfig {
        writes: never,
        searches: never,
        ..EngineConfig::default()
    };
    Engine::new(REGISTRY, reg, config).expect("engine JID")
}

/// Checks that each query stanza parses to exactly the datagen query and that
/// the engine's reply lists the same things as the core page.
fn check_stanza_queries(engine: &Engine) {
    let lim = limits(engine);
    let standard = datagen::standard_queries();
    for ((name, text), (qname, q)) in query_stanzas().into_iter().zip(&standard) {
        assert_eq!(name, *qname);
        match request::parse(text.as_bytes(), &lim) {
            Incoming::Iq(_, Body::Discovery(_, Request::Search(s))) => {
                assert_eq!(&s, q, "{name}: the stanza is not datagen's query");
            }
            other => panic!("{name}: stanza parsed as {other:?}"),
        }
        let mut out = Outbox::new();
        assert_eq!(engine.handle(text.as_bytes(), NOW, &mut out), Handled::Done);
        assert_eq!(out.len(), 1, "{name}: {:?}", out.to_strings());
        let reply = String::from_utf8(out.get(0).expect("reply").to_vec()).expect("UTF-8");
        assert!(reply.starts_with("<iq type='result'"), "{name}: {reply}");
        let core = engine
            .registry()
            .search_with(q, |p| {
                let jids: Vec<String> = p.things().map(|t| t.jid().to_string()).collect();
                (jids, p.more())
            })
            .expect("search");
        assert_eq!(found_jids(&reply), core, "{name}: stanza and core differ");
        eprintln!(
            "[stanza] {name}: {} things, more={}, reply {} bytes",
            core.0.len(),
            core.1,
            reply.len()
        );
    }
}

fn queries(c: &mut Criterion, engine: &Engine) {
    check_stanza_queries(engine);
    for ((name, text), (_, q)) in query_stanzas().into_iter().zip(datagen::standard_queries()) {
        let bytes = text.as_bytes();
        let mut g = c.benchmark_group(name.to_lowercase());
        g.sample_size(50)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
        g.bench_function("core", |b| {
            b.iter(|| {
                engine
                    .registry()
                    .search_with(black_box(&q), |p| {
                        let mut len = 0usize;
                        for t in p.things() {
                            len += black_box(t.jid()).len();
                        }
                        (len, p.more())
                    })
                    .expect("search")
            })
        });
        let mut out = Outbox::new();
        g.bench_function("stanza", |b| {
            b.iter(|| {
                out.clear();
                let h = engine.handle(black_box(bytes), NOW, &mut out);
                black_box(out.len());
                h
            })
        });
        g.finish();
    }
}

/// Times `handle` over `iters` stanzas made by `make` (built before the
/// timer); checks every reply is an empty result.
fn timed(
    engine: &Engine,
    iters: u64,
    make: &mut impl FnMut() -> Vec<u8>,
    out: &mut Outbox,
) -> Duration {
    let stanzas: Vec<Vec<u8>> = (0..iters).map(|_| make()).collect();
    let mut ok = true;
    let t = Instant::now();
    for s in &stanzas {
        out.clear();
        let h = engine.handle(black_box(s), NOW, out);
        ok &= h == Handled::Done && out.len() == 1;
    }
    let elapsed = t.elapsed();
    assert!(ok, "a stanza was not answered");
    assert!(
        out.get(0).is_some_and(is_empty_result),
        "{:?}",
        out.to_strings()
    );
    elapsed
}

fn register(c: &mut Criterion, engine: &Engine, n: u64) {
    let reg = engine.registry();
    // Unclaimed things to re-register, after the population's ids.
    let unclaimed: Vec<GenThing> = datagen::population(1, n + UNCLAIMED)
        .skip(n as usize)
        .collect();
    for o in reg.register_batch(baseline::batch_requests(&unclaimed)) {
        assert!(matches!(o, Ok(RegisterOutcome::Registered)));
    }
    let mut out = Outbox::new();
    let mut g = c.benchmark_group("register");
    g.sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));

    // Claimed things update themselves, spread over the whole population
    // (2654435761 is prime: k -> k * it mod n visits every thing).
    let mut k = 0u64;
    let mut make_update = || {
        k += 1;
        update_stanza(k.wrapping_mul(2_654_435_761) % n, k)
    };
    timed(engine, 16, &mut make_update, &mut out);
    g.bench_function("stanza_update", |b| {
        b.iter_custom(|iters| timed(engine, iters, &mut make_update, &mut out))
    });

    let mut k = 0u64;
    let mut make_reregister = || {
        k += 1;
        register_stanza(&unclaimed[(k % UNCLAIMED) as usize], k)
    };
    timed(engine, 16, &mut make_reregister, &mut out);
    g.bench_function("stanza_reregister_unclaimed", |b| {
        b.iter_custom(|iters| timed(engine, iters, &mut make_reregister, &mut out))
    });

    let before = reg.len();
    let mut next = n + UNCLAIMED;
    let mut make_new = || {
        next += 1;
        register_stanza(&datagen::thing(1, next - 1), next)
    };
    timed(engine, 16, &mut make_new, &mut out);
    g.bench_function("stanza_register_new", |b| {
        b.iter_custom(|iters| timed(engine, iters, &mut make_new, &mut out))
    });
    g.finish();
    let added = reg.len() - before;
    assert_eq!(
        added as u64,
        next - n - UNCLAIMED,
        "every new thing registered"
    );
    eprintln!(
        "[stanza] register_new added {added} things (registry now {})",
        reg.len()
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let n = things();
    let engine = build(n);
    queries(&mut c, &engine);
    register(&mut c, &engine, n);
    c.final_summary();
}
