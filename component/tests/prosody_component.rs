//! `iotdisco-component` attached to a real Prosody as an XEP-0114 component,
//! driven by real XMPP clients (slixmpp).
//!
//! The test writes a Prosody configuration into a temporary directory
//! (127.0.0.1 only, c2s and component ports free ports, no s2s, no TLS,
//! `run_as_root`) with `Component "discovery.localhost"` and a
//! `component_secret`, creates the accounts (`thing`, `owner`, `searcher`,
//! `survivor`, `t01`..`t50`), starts Prosody in the foreground and the
//! component binary of this crate with a sled database, then runs
//! `tests/xmpp/lifecycle.py` (shared with the Prosody module's test) in phases:
//!
//! 1. `lifecycle`: the whole XEP-0347 life cycle over three client
//!    connections, then the `survivor` thing registered and claimed.
//! 2. The component is killed (SIGKILL: no chance to flush) and started again
//!    on the same database; `survivor`: the acknowledged registration and
//!    claim are still there.
//! 3. Prosody is restarted; the component must reconnect by itself (its log
//!    shows a new connection). `concurrent`: the survivor is still found, and
//!    50 things register at the same time, each acknowledged.
//! 4. The component is stopped with SIGTERM (exit 0, stream closed), and the
//!    database, opened again, holds the survivor and the 50 things.
//!
//! Prosody and the component are always stopped: by drop guards that kill them
//! on any failure. Without Prosody the test prints why it skipped and passes,
//! unless `IOTDISCO_REAL_SERVERS=1` (CI), which turns any missing piece
//! (prosody, python3, slixmpp) into a failure.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use iotdisco::{BareJid, Config, Registry, ThingKey};

#[path = "../../tests/xmpp/harness.rs"]
mod harness;
use harness::{
    Guard, ProsodyConfig, component_command, free_port, missing_slixmpp, on_path, run_script,
    skip_if_missing, start_component, tail,
};

const REGISTRY: &str = "discovery.localhost";
const IDENTITY: &str = "Component Thing Registry";
const PASSWORD: &str = "pw";
const SECRET: &str = "component-secret-for-the-test";
const THINGS: usize = 50;

/// Starts the component binary, logging to `component-{run}.log`, and waits
/// for its first connection.
fn start_registry(dir: &Path, component_port: u16, db: &Path, run: usize) -> Guard {
    start_component(
        component_command(
            env!("CARGO_BIN_EXE_iotdisco-component"),
            component_port,
            REGISTRY,
            &dir.join("secret"),
            db,
        )
        .args(["--identity-name", IDENTITY, "--disown-timeout-ms", "10000"])
        .env_remove("NO_COLOR"),
        dir.join(format!("component-{run}.log")),
    )
}

/// Runs one phase of `lifecycle.py`; panics with its output and the logs'
/// tails if it fails.
fn phase(name: &str, dir: &Path, c2s: u16, logs: &[&Guard]) {
    let (status, output) = run_script(
        "lifecycle.py",
        &[
            "--phase",
            name,
            "--port",
            &c2s.to_string(),
            "--registry",
            REGISTRY,
            "--password",
            PASSWORD,
            "--identity-name",
            IDENTITY,
            "--things",
            &THINGS.to_string(),
        ],
        &dir.join(format!("lifecycle-{name}.log")),
        Duration::from_secs(180),
    );
    println!("lifecycle.py --phase {name}:\n{output}");
    if !status.is_some_and(|s| s.success()) {
        let tails: Vec<String> = logs
            .iter()
            .map(|g| format!("{} log (tail):\n{}", g.what, tail(&g.log, 80)))
            .collect();
        panic!(
            "lifecycle.py --phase {name} failed ({status:?}):\n{output}\n{}",
            tails.join("\n")
        );
    }
}

#[test]
fn prosody_with_the_component_through_restarts() {
    let prosody = on_path("prosody");
    let mut missing = Vec::new();
    if prosody.is_none() {
        missing.push("prosody (apt-get install prosody)");
    }
    missing.extend(missing_slixmpp());
    if skip_if_missing("the real-Prosody component test", &missing) {
        return;
    }
    let prosody = prosody.unwrap();
    let started = Instant::now();
    let tmp = tempfile::Builder::new()
        .prefix("iotdisco-component-prosody-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();

    // Prosody: loopback only, free ports, no TLS, no s2s; the component.
    let (c2s, component_port) = (free_port(), free_port());
    fs::write(dir.join("secret"), format!("{SECRET}\n")).unwrap();
    let config = ProsodyConfig {
        written_by: "component/tests/prosody_component.rs",
        c2s,
        component_port: Some(component_port),
        plugins: None,
        hosts: &format!(
            r#"VirtualHost "localhost"

Component "{REGISTRY}"
    component_secret = "{SECRET}"
"#
        ),
    }
    .write(dir);
    for user in ["thing", "owner", "searcher", "survivor"] {
        config.account("localhost", user, PASSWORD);
    }
    for n in 1..=THINGS {
        config.account("localhost", &format!("t{n:02}"), PASSWORD);
    }

    let mut server = config.start(&prosody, &dir.join("prosody-1.out"));
    let db = dir.join("registry.db");
    let mut component = start_registry(dir, component_port, &db, 1);

    // 1. The life cycle, then the survivor registered and claimed.
    phase("lifecycle", dir, c2s, &[&component, &server]);
    let log1 = component.log();
    for line in [
        "register id=",
        "mine id=",
        "search id=",
        "presence subscribe from thing@localhost",
    ] {
        assert!(
            log1.contains(line),
            "the component did not log {line:?}:\n{log1}"
        );
    }

    // 2. The component dies without flushing; a new one serves the same
    //    database: nothing acknowledged is lost.
    component.stop("-KILL");
    let mut component = start_registry(dir, component_port, &db, 2);
    phase("survivor", dir, c2s, &[&component, &server]);

    // 3. Prosody restarts; the component reconnects by itself.
    let stopped = server.stop("-TERM");
    assert!(
        stopped.is_some_and(|s| s.success()),
        "prosody did not stop cleanly ({stopped:?}):\n{}",
        tail(&server.log, 40)
    );
    component.wait_log("lost", 1, Duration::from_secs(30));
    let mut server = config.start(&prosody, &dir.join("prosody-2.out"));
    component.wait_log("connected to", 2, Duration::from_secs(60));
    phase("concurrent", dir, c2s, &[&component, &server]);

    // 4. A clean stop: exit 0, the stream closed, the database complete.
    let stopped = component.stop("-TERM");
    let log2 = component.log();
    assert!(
        stopped.is_some_and(|s| s.success()),
        "the component did not exit cleanly on SIGTERM ({stopped:?}):\n{}",
        tail(&component.log, 40)
    );
    assert!(log2.contains("stream closed"), "no clean close:\n{log2}");
    for bad in ["ERROR", "panicked"] {
        assert!(!log2.contains(bad), "the component logged {bad}:\n{log2}");
    }
    let stopped = server.stop("-TERM");
    assert!(
        stopped.is_some_and(|s| s.success()),
        "prosody did not stop cleanly"
    );

    let registry = Registry::open(&db, Config::default()).expect("the database opens again");
    let key = |jid: &str| ThingKey::of(BareJid::parse(jid).unwrap());
    let survivor = registry
        .get(&key("survivor@localhost"))
        .expect("the survivor thing is in the database");
    assert_eq!(
        survivor.owner.as_ref().map(|o| o.as_str()),
        Some("owner@localhost")
    );
    for n in 1..=THINGS {
        let jid = format!("t{n:02}@localhost");
        assert!(
            registry.get(&key(&jid)).is_some(),
            "{jid} was acknowledged but is not in the database"
        );
    }
    println!(
        "real Prosody with the component passed in {:.1}s ({} things in the database)",
        started.elapsed().as_secs_f64(),
        registry.len()
    );
}
