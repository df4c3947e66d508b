//! Criterion benches: each standard query (Q1-Q5) on iotdisco, the naive scan and
//! SQLite, and registration, at `IOTDISCO_BENCH_THINGS` things (default 100,000).
//!
//! Every engine answers the same thing (first page of 20 in thing order, each
//! thing built as owned values: owner, JID, node address and tags except `KEY`,
//! plus `more`; SQLite also runs its `COUNT(*)` and the fetch of the page's
//! things); the answers are checked to agree in full before anything is timed. The full comparison table at 1,000,000 things is
//! `cargo bench --bench report`.

#[path = "baseline/mod.rs"]
mod baseline;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput};

use baseline::naive::Naive;
use baseline::sqlite::{self, Sqlite};
use baseline::{Answer, install_all, iotdisco_answer};
use iotdisco::datagen::{self, GenThing};
use iotdisco::{Config, NodeAddress, Register, Registry};

/// Things in the populations the query benches search.
fn things() -> u64 {
    std::env::var("IOTDISCO_BENCH_THINGS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(100_000)
}

fn queries(c: &mut Criterion) {
    let n = things();
    eprintln!("building {n} things in iotdisco, the naive Vec and SQLite");
    let pop: Vec<GenThing> = baseline::population(n);
    let reg = Registry::new(Config::default());
    install_all(&reg, &pop);
    let naive = Naive::build(&pop);
    let (db, _) = Sqlite::load(&pop, false);
    drop(pop);

    for (name, search) in datagen::standard_queries() {
        let sq = sqlite::query_of(&search.operators);
        let a = iotdisco_answer(&reg, &search);
        assert_eq!(
            a,
            Answer::of_result(&naive.first_page(&search.operators)),
            "{name}: iotdisco and naive disagree"
        );
        assert_eq!(
            a,
            db.run(&sq).page.answer(),
            "{name}: iotdisco and SQLite disagree"
        );

        let mut g = c.benchmark_group(name);
        g.sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        g.bench_function("iotdisco", |b| {
            b.iter(|| reg.search(black_box(&search)).expect("search"))
        });
        g.bench_function("naive", |b| {
            b.iter(|| naive.first_page(black_box(&search.operators)))
        });
        g.bench_function("sqlite", |b| b.iter(|| db.run(black_box(&sq))));
        g.finish();
    }
}

/// Things per registration batch (each batch goes into a fresh registry or
/// database).
const BATCH: u64 = 1_000;

fn register(c: &mut Criterion) {
    let pop: Vec<GenThing> = baseline::population(BATCH);
    let mut g = c.benchmark_group("register");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(BATCH));
    g.bench_function("iotdisco_register", |b| {
        b.iter_batched(
            || Registry::new(Config::default()),
            |reg| {
                for t in &pop {
                    reg.register(
                        &t.jid,
                        Register {
                            node: NodeAddress::default(),
                            tags: t.tags.clone(),
                            self_owned: false,
                        },
                    )
                    .expect("register");
                }
                reg
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("iotdisco_register_batch", |b| {
        b.iter_batched(
            || {
                (
                    Registry::new(Config::default()),
                    baseline::batch_requests(&pop),
                )
            },
            |(reg, requests)| {
                let outcomes = reg.register_batch(requests);
                (reg, outcomes)
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("iotdisco_register_claim", |b| {
        b.iter_batched(
            || Registry::new(Config::default()),
            |reg| {
                install_all(&reg, &pop);
                reg
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("sqlite_insert_indexed", |b| {
        b.iter_batched(
            || Sqlite::empty(true),
            |mut db| {
                db.insert(0, &pop);
                db
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    queries(&mut c);
    register(&mut c);
    c.final_summary();
}
