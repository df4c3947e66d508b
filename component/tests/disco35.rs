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

use std::fs;
use std::path::Path;
use std::time::Duration;

#[path = "../../tests/xmpp/harness.rs"]
mod harness;
use harness::{
    Guard, ProsodyConfig, component_command, free_port, missing_slixmpp, on_path, run_script,
    skip_if_missing, start_component, tail,
};

const SUBDOMAIN_REGISTRY: &str = "discovery.localhost";
const LISTED_REGISTRY: &str = "iot-registry.test";
const MUC: &str = "rooms.localhost";
const SECRET: &str = "component-secret-for-the-disco-test";

/// Starts a component for `domain`, its identity named `name`, logging to
/// `{domain}.log`, and waits for its first connection.
fn start_registry(dir: &Path, port: u16, domain: &str, name: &str) -> Guard {
    start_component(
        component_command(
            env!("CARGO_BIN_EXE_iotdisco-component"),
            port,
            domain,
            &dir.join("secret"),
            &dir.join(format!("{domain}.db")),
        )
        .args(["--identity-name", name]),
        dir.join(format!("{domain}.log")),
    )
}

#[test]
fn a_thing_finds_the_registries_through_disco_items_and_disco_info() {
    let mut missing = Vec::new();
    if on_path("prosody").is_none() {
        missing.push("prosody (apt-get install prosody)");
    }
    missing.extend(missing_slixmpp());
    if skip_if_missing("the spec 3.5 test", &missing) {
        return;
    }
    let tmp = tempfile::Builder::new()
        .prefix("iotdisco-disco35-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    let (c2s, component_port) = (free_port(), free_port());
    fs::write(dir.join("secret"), format!("{SECRET}\n")).unwrap();
    let config = ProsodyConfig {
        written_by: "component/tests/disco35.rs",
        c2s,
        component_port: Some(component_port),
        plugins: None,
        hosts: &format!(
            r#"VirtualHost "localhost"
    -- A registry outside this host's domain is listed by hand.
    disco_items = {{ {{ "{LISTED_REGISTRY}", "Thing Registry (disco_items)" }} }}

-- A subdomain component: listed in localhost's disco#items by Prosody itself.
Component "{SUBDOMAIN_REGISTRY}"
    component_secret = "{SECRET}"
    name = "Thing Registry"

Component "{LISTED_REGISTRY}"
    component_secret = "{SECRET}"

Component "{MUC}" "muc"
"#
        ),
    }
    .write(dir);
    config.account("localhost", "thing", "pw");

    let server = config.start(Path::new("prosody"), &dir.join("prosody.out"));
    let first = start_registry(dir, component_port, SUBDOMAIN_REGISTRY, "Thing Registry");
    let second = start_registry(dir, component_port, LISTED_REGISTRY, "Listed Registry");

    let (status, output) = run_script(
        "disco35.py",
        &[
            "--port",
            &c2s.to_string(),
            "--domain",
            "localhost",
            "--expect",
            SUBDOMAIN_REGISTRY,
            "--expect",
            LISTED_REGISTRY,
            "--not",
            MUC,
        ],
        &dir.join("disco35.log"),
        Duration::from_secs(90),
    );
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
