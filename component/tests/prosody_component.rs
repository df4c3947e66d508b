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

use std::env;
use std::fs::{self, File};
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use iotdisco::{BareJid, Config, Registry, ThingKey};

/// Set to "1" to make missing real servers a failure instead of a skip.
#[path = "../../tests/xmpp/harness.rs"]
mod harness;
use harness::{Guard, REAL_SERVERS, free_port, lua_str, on_path, tail, wait_for};

const REGISTRY: &str = "discovery.localhost";
const IDENTITY: &str = "Component Thing Registry";
const PASSWORD: &str = "pw";
const SECRET: &str = "component-secret-for-the-test";
const THINGS: usize = 50;

/// Starts Prosody in the foreground and waits for its c2s port.
fn start_prosody(prosody: &Path, config: &Path, dir: &Path, c2s: u16, run: usize) -> Guard {
    let out = File::create(dir.join(format!("prosody-{run}.out"))).unwrap();
    let mut g = Guard {
        what: "prosody",
        child: Command::new(prosody)
            .arg("--config")
            .arg(config)
            .arg("-F")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start prosody"),
        log: dir.join("prosody.log"),
    };
    let up_by = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect((Ipv4Addr::LOCALHOST, c2s)).is_err() {
        if let Ok(Some(status)) = g.child.try_wait() {
            panic!(
                "prosody exited ({status}) before listening:\n{}\n{}",
                fs::read_to_string(dir.join(format!("prosody-{run}.out"))).unwrap_or_default(),
                tail(&g.log, 100)
            );
        }
        assert!(
            Instant::now() < up_by,
            "prosody is not listening on 127.0.0.1:{c2s} after 30s:\n{}",
            tail(&g.log, 100)
        );
        sleep(Duration::from_millis(100));
    }
    g
}

/// Starts the component binary, logging to `component-{run}.log`, and waits
/// for its first connection.
fn start_component(dir: &Path, component_port: u16, db: &Path, run: usize) -> Guard {
    let log = dir.join(format!("component-{run}.log"));
    let out = File::create(&log).unwrap();
    let mut g = Guard {
        what: "iotdisco-component",
        child: Command::new(env!("CARGO_BIN_EXE_iotdisco-component"))
            .args(["--server", &format!("127.0.0.1:{component_port}")])
            .args(["--domain", REGISTRY])
            .arg("--secret-file")
            .arg(dir.join("secret"))
            .arg("--db")
            .arg(db)
            .args(["--identity-name", IDENTITY, "--disown-timeout-ms", "10000"])
            .env("RUST_LOG", "info")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start iotdisco-component"),
        log,
    };
    g.wait_log("connected to", 1, Duration::from_secs(30));
    g
}

/// Runs one phase of `lifecycle.py`; panics with its output and the logs'
/// tails if it fails.
fn phase(name: &str, dir: &Path, c2s: u16, logs: &[&Guard]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/xmpp/lifecycle.py");
    let log = dir.join(format!("lifecycle-{name}.log"));
    let out = File::create(&log).unwrap();
    let mut child = Command::new("python3")
        .arg(&script)
        .args(["--phase", name, "--port", &c2s.to_string()])
        .args(["--registry", REGISTRY, "--password", PASSWORD])
        .args(["--identity-name", IDENTITY, "--things", &THINGS.to_string()])
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("start lifecycle.py");
    let status = wait_for(&mut child, Duration::from_secs(180));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let output = fs::read_to_string(&log).unwrap_or_default();
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

/// Writes an account in Prosody's `internal_plain` file store (what
/// `prosodyctl register` writes; one process start per account would take a
/// minute for 54 accounts).
fn account(data: &Path, user: &str) {
    let dir = data.join("localhost").join("accounts");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join(format!("{user}.dat")),
        format!(
            "return {{\n\t[\"password\"] = {};\n}};\n",
            lua_str(PASSWORD)
        ),
    )
    .unwrap();
}

#[test]
fn prosody_with_the_component_through_restarts() {
    let required = env::var(REAL_SERVERS).is_ok_and(|v| v == "1");
    let prosody = on_path("prosody");
    let python = on_path("python3");
    let slixmpp = python.is_some()
        && Command::new("python3")
            .args(["-c", "import slixmpp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    let mut missing = Vec::new();
    if prosody.is_none() {
        missing.push("prosody (apt-get install prosody)");
    }
    if python.is_none() {
        missing.push("python3");
    }
    if !slixmpp {
        missing.push("slixmpp (pip install slixmpp)");
    }
    if !missing.is_empty() {
        if required {
            panic!("{REAL_SERVERS}=1 but missing: {}", missing.join(", "));
        }
        println!(
            "skipped: the real-Prosody component test needs {} (set {REAL_SERVERS}=1 to make this a failure)",
            missing.join(", ")
        );
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
    let data = dir.join("data");
    fs::create_dir_all(&data).unwrap();
    fs::create_dir_all(dir.join("certs")).unwrap();
    fs::write(dir.join("secret"), format!("{SECRET}\n")).unwrap();
    let config = dir.join("prosody.cfg.lua");
    let q = |p: &Path| lua_str(&p.display().to_string());
    fs::write(
        &config,
        format!(
            r#"-- Written by component/tests/prosody_component.rs.
run_as_root = true
pidfile = {pidfile}
data_path = {data}
certificates = {certs}
interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {c2s} }}
c2s_interfaces = {{ "127.0.0.1" }}
component_ports = {{ {component_port} }}
component_interfaces = {{ "127.0.0.1" }}
modules_enabled = {{ "roster", "saslauth", "disco" }}
modules_disabled = {{ "s2s", "s2s_auth_certs", "offline" }}
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
log = {{ {{ levels = {{ min = "debug" }}, to = "file", filename = {log} }} }}

VirtualHost "localhost"

Component "{REGISTRY}"
    component_secret = "{SECRET}"
"#,
            pidfile = q(&dir.join("prosody.pid")),
            data = q(&data),
            certs = q(&dir.join("certs")),
            log = q(&dir.join("prosody.log")),
        ),
    )
    .unwrap();
    for user in ["thing", "owner", "searcher", "survivor"] {
        account(&data, user);
    }
    for n in 1..=THINGS {
        account(&data, &format!("t{n:02}"));
    }

    let mut server = start_prosody(&prosody, &config, dir, c2s, 1);
    let db = dir.join("registry.db");
    let mut component = start_component(dir, component_port, &db, 1);

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
    let mut component = start_component(dir, component_port, &db, 2);
    phase("survivor", dir, c2s, &[&component, &server]);

    // 3. Prosody restarts; the component reconnects by itself.
    let stopped = server.stop("-TERM");
    assert!(
        stopped.is_some_and(|s| s.success()),
        "prosody did not stop cleanly ({stopped:?}):\n{}",
        tail(&server.log, 40)
    );
    component.wait_log("lost", 1, Duration::from_secs(30));
    let mut server = start_prosody(&prosody, &config, dir, c2s, 2);
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
