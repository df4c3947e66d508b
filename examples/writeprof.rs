//! Profiling aid (not a bench): the stanza bench's write loops, alone.
//! `cargo run --release --example writeprof -- [update|rereg|new] [things] [iters]`
use std::time::Instant;

use iotdisco::datagen::{self, GenThing};
use iotdisco::{Claim, Config, Engine, EngineConfig, Jid, Outbox, Registry};

#[path = "../benches/baseline/stanzas.rs"]
mod stanzas;
use stanzas::{REGISTRY, register_stanza, update_stanza};

/// User + system CPU seconds of this process (/proc/self/stat).
fn cpu_secs() -> f64 {
    let st = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = st.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("update", |s| s.as_str()).to_string();
    let n: u64 = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let iters: u64 = args
        .get(3)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    let pop: Vec<GenThing> = datagen::population(1, n).collect();
    // KEEP_KEY=1: claims keep KEY (Config::delete_key_on_claim off), to compare.
    let config = Config {
        delete_key_on_claim: std::env::var_os("KEEP_KEY").is_none(),
        ..Config::default()
    };
    let reg = Registry::new(config);
    reg.register_batch(pop.iter().map(datagen::register_request).collect());
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
    drop(pop);
    let unclaimed: Vec<GenThing> = datagen::population(1, n + 100_000)
        .skip(n as usize)
        .collect();
    reg.register_batch(unclaimed.iter().map(datagen::register_request).collect());
    // NO_BUDGETS=1: no per-JID write budget, to compare.
    let mut engine_config = EngineConfig::default();
    if std::env::var_os("NO_BUDGETS").is_some() {
        engine_config.writes = iotdisco::throttle::Rate::UNLIMITED;
    }
    let engine = Engine::new(REGISTRY, reg, engine_config).expect("engine");
    let mut out = Outbox::new();
    let mut k = 0u64;
    let mut next = n + 100_000;
    let stanzas: Vec<Vec<u8>> = (0..iters)
        .map(|_| {
            k += 1;
            match mode.as_str() {
                "update" => update_stanza(k.wrapping_mul(2_654_435_761) % n, k),
                "rereg" => register_stanza(&unclaimed[(k % 100_000) as usize], k),
                _ => {
                    next += 1;
                    register_stanza(&datagen::thing(1, next - 1), next)
                }
            }
        })
        .collect();
    let ctl = |cmd: &str| {
        if let Ok(path) = std::env::var("PERF_CTL") {
            let _ = std::fs::write(path, format!("{cmd}\n"));
        }
    };
    ctl("enable");
    let cpu0 = cpu_secs();
    let t = Instant::now();
    let mut slowest = (0f64, 0usize);
    for (i, s) in stanzas.iter().enumerate() {
        out.clear();
        let t1 = Instant::now();
        engine.handle(std::hint::black_box(s), 0, &mut out);
        let e = t1.elapsed().as_secs_f64();
        if e > slowest.0 {
            slowest = (e, i);
        }
    }
    let total = t.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    ctl("disable");
    println!("slowest stanza: {:.1} ms (#{})", slowest.0 * 1e3, slowest.1);
    let done = iters;
    println!(
        "{mode}: wall {:.0}/s, cpu {:.0}/s ({done} in {total:.2}s wall, {cpu:.2}s cpu)",
        done as f64 / total,
        done as f64 / cpu
    );
    println!("stats {:?}", engine.registry().stats());
    std::process::exit(0);
}
