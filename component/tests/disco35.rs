//! Spec 3.5 end to end: a thing that knows only its XMPP server finds the
//! Thing Registry through the server's disco#items and each item's
//! disco#info (feature `urn:xmpp:iot:discovery`), on a real Prosody with
//! iotdisco components, driven by a real slixmpp client
//! (`tests/xmpp/disco35.py`).
//!
//! Prosody 0.12 (`mod_disco`, `core/hostmanager.lua`) lists in a host's
//! disco#items every component whose domain is a direct subdomain of it
//! (unless the component sets `disco_hidden = true`), named by the
//! component's `name` option, plus the entries of the host's `disco_items`
//! option. The test covers both:
//!
//! - `discovery.localhost`: an iotdisco component, listed because it is a
//!   subdomain of `localhost`;
//! - `iot-registry.test`: a second iotdisco component outside the host's
//!   domain, listed only through `disco_items` in the `VirtualHost` section;
//! - `rooms.localhost`: Prosody's MUC, listed but not a registry: the
//!   client must tell them apart by disco#info.
//!
//! Prosody and the components are stopped by drop guards whatever happens.
//! Without Prosody, python3 or slixmpp the test prints why it skipped and
//! passes, unless `IOTDISCO_REAL_SERVERS=1` (CI), which makes it a failure.

use std::env;
use std::fs::{self, File};
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

#[path = "../../tests/xmpp/harness.rs"]
mod harness;
use harness::{Guard, REAL_SERVERS, free_port, lua_str, on_path, tail, wait_for};

const SUBDOMAIN_REGISTRY: &str = "discovery.localhost";
const LISTED_REGISTRY: &str = "iot-registry.test";
const MUC: &str = "rooms.localhost";
const SECRET: &str = "component-secret-for-the-disco-test";

/// What is missing to run the test, if anything.
fn missing() -> Vec<&'static str> {
    let mut missing = Vec::new();
    if on_path("prosody").is_none() {
        missing.push("prosody (apt-get install prosody)");
    }
    if on_path("python3").is_none() {
        missing.push("python3");
    } else if !Command::new("python3")
        .args(["-c", "import slixmpp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        missing.push("slixmpp (pip install slixmpp)");
    }
    missing
}

fn start_prosody(config: &Path, dir: &Path, c2s: u16) -> Guard {
    let out = File::create(dir.join("prosody.out")).unwrap();
    let mut g = Guard {
        what: "prosody",
        child: Command::new("prosody")
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
                fs::read_to_string(dir.join("prosody.out")).unwrap_or_default(),
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

fn start_component(dir: &Path, port: u16, domain: &str, name: &str) -> Guard {
    let log = dir.join(format!("{domain}.log"));
    let out = File::create(&log).unwrap();
    let mut g = Guard {
        what: "iotdisco-component",
        child: Command::new(env!("CARGO_BIN_EXE_iotdisco-component"))
            .args(["--server", &format!("127.0.0.1:{port}")])
            .args(["--domain", domain])
            .arg("--secret-file")
            .arg(dir.join("secret"))
            .arg("--db")
            .arg(dir.join(format!("{domain}.db")))
            .args(["--identity-name", name])
            .env("RUST_LOG", "info")
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

#[test]
fn a_thing_finds_the_registries_through_disco_items_and_disco_info() {
    let required = env::var(REAL_SERVERS).is_ok_and(|v| v == "1");
    let missing = missing();
    if !missing.is_empty() {
        if required {
            panic!("{REAL_SERVERS}=1 but missing: {}", missing.join(", "));
        }
        println!(
            "skipped: the spec 3.5 test needs {} (set {REAL_SERVERS}=1 to make this a failure)",
            missing.join(", ")
        );
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("iotdisco-disco35-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    let (c2s, component_port) = (free_port(), free_port());
    let data = dir.join("data");
    fs::create_dir_all(data.join("localhost").join("accounts")).unwrap();
    fs::create_dir_all(dir.join("certs")).unwrap();
    fs::write(dir.join("secret"), format!("{SECRET}\n")).unwrap();
    fs::write(
        data.join("localhost").join("accounts").join("thing.dat"),
        "return {\n\t[\"password\"] = \"pw\";\n};\n",
    )
    .unwrap();
    let q = |p: &Path| lua_str(&p.display().to_string());
    let config = dir.join("prosody.cfg.lua");
    fs::write(
        &config,
        format!(
            r#"-- Written by component/tests/disco35.rs.
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
    -- A registry outside this host's domain is listed by hand.
    disco_items = {{ {{ "{LISTED_REGISTRY}", "Thing Registry (disco_items)" }} }}

-- A subdomain component: listed in localhost's disco#items by Prosody itself.
Component "{SUBDOMAIN_REGISTRY}"
    component_secret = "{SECRET}"
    name = "Thing Registry"

Component "{LISTED_REGISTRY}"
    component_secret = "{SECRET}"

Component "{MUC}" "muc"
"#,
            pidfile = q(&dir.join("prosody.pid")),
            data = q(&data),
            certs = q(&dir.join("certs")),
            log = q(&dir.join("prosody.log")),
        ),
    )
    .unwrap();

    let server = start_prosody(&config, dir, c2s);
    let first = start_component(dir, component_port, SUBDOMAIN_REGISTRY, "Thing Registry");
    let second = start_component(dir, component_port, LISTED_REGISTRY, "Listed Registry");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/xmpp/disco35.py");
    let log = dir.join("disco35.log");
    let out = File::create(&log).unwrap();
    let mut child = Command::new("python3")
        .arg(&script)
        .args(["--port", &c2s.to_string(), "--domain", "localhost"])
        .args(["--expect", SUBDOMAIN_REGISTRY, "--expect", LISTED_REGISTRY])
        .args(["--not", MUC])
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("start disco35.py");
    let status = wait_for(&mut child, Duration::from_secs(90));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let output = fs::read_to_string(&log).unwrap_or_default();
    println!("disco35.py:\n{output}");
    assert!(
        status.is_some_and(|s| s.success()),
        "disco35.py failed ({status:?}):\n{output}\nprosody log (tail):\n{}\n{}",
        tail(&server.log, 60),
        tail(&first.log, 20)
    );
    assert!(
        output.contains(&format!(
            "registry: {SUBDOMAIN_REGISTRY} (identity component/generic \"Thing Registry\")"
        )),
        "{output}"
    );
    assert!(
        output.contains(&format!(
            "registry: {LISTED_REGISTRY} (identity component/generic \"Listed Registry\")"
        )),
        "{output}"
    );
    assert!(
        output.contains(&format!("not a registry: {MUC}")),
        "{output}"
    );
    drop((first, second, server));
}
