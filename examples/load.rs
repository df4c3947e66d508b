//! Loads a deterministic population into a registry on disk (the embedded sled
//! default) or in memory, then runs the standard query mix and prints latency
//! percentiles.
//!
//! `cargo run --release --example load -- [THINGS] [ROUNDS] [--db PATH | --memory]`
//!
//! The database defaults to `target/iotdisco-load-THINGS.db`. A database that
//! already holds the population is reopened (timed: the cold open with indexes
//! rebuilt), otherwise it is created from scratch with group commit (10 ms) and
//! flushed at the end.

use std::path::PathBuf;
use std::time::Instant;

use iotdisco::store::sled::Durability;
use iotdisco::{Claim, Config, Jid, Registry, datagen};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    let mut positional = Vec::new();
    let mut db: Option<PathBuf> = None;
    let mut memory = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--memory" => memory = true,
            "--db" => db = args.next().map(PathBuf::from),
            _ => positional.push(a),
        }
    }
    let n: u64 = positional
        .first()
        .and_then(|a| a.replace('_', "").parse().ok())
        .unwrap_or(100_000);
    let rounds: usize = positional
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let reg = if memory {
        println!("registry in memory");
        Registry::new(Config::default())
    } else {
        let path = db.unwrap_or_else(|| PathBuf::from(format!("target/iotdisco-load-{n}.db")));
        let t = Instant::now();
        let reg = Registry::open_with(&path, Config::default(), Durability::GroupCommit(10))
            .unwrap_or_else(|e| {
                eprintln!("cannot open {}: {e}", path.display());
                std::process::exit(1)
            });
        if reg.len() as u64 == n {
            println!(
                "opened {} ({n} things, indexes rebuilt) in {:.2} s",
                path.display(),
                t.elapsed().as_secs_f64()
            );
            run_queries(&reg, n, rounds);
            return;
        }
        if !reg.is_empty() {
            drop(reg);
            println!("{} holds another population: recreating it", path.display());
            let _ = std::fs::remove_dir_all(&path);
            Registry::open_with(&path, Config::default(), Durability::GroupCommit(10))
                .unwrap_or_else(|e| {
                    eprintln!("cannot open {}: {e}", path.display());
                    std::process::exit(1)
                })
        } else {
            println!("loading into {}", path.display());
            reg
        }
    };
    let things: Vec<_> = datagen::population(1, n).collect();
    let requests: Vec<_> = things.iter().map(datagen::register_request).collect();
    let t = Instant::now();
    let failed = reg
        .register_batch(requests)
        .into_iter()
        .filter(Result::is_err)
        .count();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(failed, 0, "registrations failed");
    println!(
        "registered {n} things (register_batch) in {secs:.2} s: {:.0} things/s",
        n as f64 / secs
    );
    let t = Instant::now();
    for g in &things {
        let claim = Claim {
            tags: g.tags.clone(),
            public: true,
        };
        if let Err(e) = reg.claim(&Jid::from(g.owner.clone()), claim) {
            eprintln!("claim of {}: {e}", g.jid);
            std::process::exit(1);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "claimed {n} things (public) in {secs:.2} s: {:.0} claims/s",
        n as f64 / secs
    );
    let t = Instant::now();
    if let Err(e) = reg.flush() {
        eprintln!("flush: {e}");
        std::process::exit(1);
    }
    println!("flushed in {:.2} s", t.elapsed().as_secs_f64());
    run_queries(&reg, n, rounds);
}

fn run_queries(reg: &Registry, n: u64, rounds: usize) {
    let stats = reg.stats();
    println!(
        "memory: records {:.0} B/thing, indexes {:.0} B/thing, total {:.0} B/thing",
        stats.record_bytes as f64 / n as f64,
        stats.index_bytes as f64 / n as f64,
        (stats.record_bytes + stats.index_bytes) as f64 / n as f64
    );
    println!("| query | hits on page | more | p50 µs | p90 µs | p99 µs | max µs |");
    println!("|---|---|---|---|---|---|---|");
    let only = std::env::var("IOTDISCO_ONLY").ok();
    for (name, q) in datagen::standard_queries() {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let mut lat = Vec::with_capacity(rounds);
        let mut last = None;
        for _ in 0..rounds {
            let t = Instant::now();
            let r = reg.search(&q).expect("search");
            lat.push(t.elapsed().as_secs_f64() * 1e6);
            last = Some(r);
        }
        lat.sort_by(f64::total_cmp);
        let r = last.expect("at least one round");
        println!(
            "| {name} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            r.things.len(),
            r.more,
            percentile(&lat, 0.5),
            percentile(&lat, 0.9),
            percentile(&lat, 0.99),
            lat[lat.len() - 1]
        );
    }
}
