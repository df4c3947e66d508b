//! mDNS end to end, only between two network namespaces this test creates
//! (never on the machine's own interfaces): namespaces `A` and `B` joined by
//! a veth pair with documentation addresses (192.0.2.1/24, 192.0.2.2/24,
//! RFC 5737) and a multicast route each. Everything runs inside them with
//! `ip netns exec`, and the commands are restricted to the veth ends
//! (`--interface`).
//!
//! 1. `announce --mdns --server-name pronto` in A; `discover --mdns` in B
//!    finds pronto at 192.0.2.1 with its ordom, registry and provisioning
//!    server.
//! 2. A second `announce --mdns --server-name pronto` in B finds the name
//!    taken and publishes `pronto-1` (spec 3.3.2); `discover` in A finds it.
//! 3. SIGTERM ends both announcers cleanly (goodbyes sent, exit 0).
//! 4. A conflict found by the responder's probing instead (`--probe-seconds
//!    0` in B while A holds pronto): B withdraws and publishes `pronto-1`.
//!
//! The namespaces (and with them the veth pair) are deleted by a drop guard
//! whatever happens; the announcers are killed by theirs. It needs root and
//! `ip` (iproute2): without them it prints why it skipped and passes, unless
//! `IOTDISCO_REAL_SERVERS=1` (CI), which makes it a failure.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

#[path = "../../tests/xmpp/harness.rs"]
mod harness;
use harness::{Guard, REAL_SERVERS, tail};

const BIN: &str = env!("CARGO_BIN_EXE_iotdisco");

/// Two network namespaces joined by a veth pair; deleted on drop.
struct Netns {
    a: String,
    b: String,
    veth_a: String,
    veth_b: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    fn create() -> Result<Netns, String> {
        let id = std::process::id() % 100_000;
        let ns = Netns {
            a: format!("iotdisco-zc-{id}-a"),
            b: format!("iotdisco-zc-{id}-b"),
            // Interface names: at most 15 bytes.
            veth_a: format!("izc{id}a"),
            veth_b: format!("izc{id}b"),
        };
        // From here on, drop deletes whatever was made.
        ip(&["netns", "add", &ns.a])?;
        ip(&["netns", "add", &ns.b])?;
        ip(&[
            "link", "add", &ns.veth_a, "netns", &ns.a, "type", "veth", "peer", "name", &ns.veth_b,
            "netns", &ns.b,
        ])?;
        for (name, veth, addr) in [
            (&ns.a, &ns.veth_a, "192.0.2.1/24"),
            (&ns.b, &ns.veth_b, "192.0.2.2/24"),
        ] {
            ip(&["-n", name, "link", "set", "lo", "up"])?;
            ip(&["-n", name, "addr", "add", addr, "dev", veth])?;
            ip(&["-n", name, "link", "set", veth, "up"])?;
            ip(&["-n", name, "route", "add", "224.0.0.0/4", "dev", veth])?;
        }
        Ok(ns)
    }

    /// `iotdisco args...` inside namespace `ns`.
    fn command(ns: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, BIN]).args(args);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth pair, and so the
        // pair. Processes still inside were killed by their guards first.
        let _ = ip(&["netns", "delete", &self.a]);
        let _ = ip(&["netns", "delete", &self.b]);
    }
}

fn announce(ns: &str, veth: &str, port: &str, probe: &str, log: &Path) -> Guard {
    let out = File::create(log).unwrap();
    Guard {
        what: "iotdisco announce --mdns",
        child: Netns::command(
            ns,
            &[
                "announce",
                "--mdns",
                "--server-name",
                "pronto",
                "--port",
                port,
                "--ordom",
                "example.com",
                "--regis",
                "registry",
                "--provis",
                "provisioning",
                "--interface",
                veth,
                "--probe-seconds",
                probe,
            ],
        )
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("start announce"),
        log: log.to_path_buf(),
    }
}

fn discover(ns: &str, veth: &str) -> (Output, serde_json::Value) {
    let out = Netns::command(
        ns,
        &[
            "discover",
            "--mdns",
            "--interface",
            veth,
            "--timeout",
            "6",
            "--json",
        ],
    )
    .output()
    .expect("run discover");
    assert!(out.status.success(), "discover failed: {out:?}");
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    (out, v)
}

fn server<'a>(found: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    found.as_array()?.iter().find(|s| s["name"] == name)
}

/// Why the test cannot run here, if it cannot.
fn missing() -> Option<String> {
    if harness::on_path("ip").is_none() {
        return Some("ip (apt-get install iproute2)".into());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        return Some("root (to create network namespaces)".into());
    }
    None
}

#[test]
fn announce_in_one_namespace_discover_in_the_other() {
    let required = std::env::var(REAL_SERVERS).is_ok_and(|v| v == "1");
    if let Some(what) = missing() {
        if required {
            panic!("{REAL_SERVERS}=1 but the mDNS test cannot run: missing {what}");
        }
        println!(
            "skipped: the mDNS namespace test needs {what} (set {REAL_SERVERS}=1 to make this a failure)"
        );
        return;
    }
    let netns = match Netns::create() {
        Ok(n) => n,
        Err(e) if required => panic!("{REAL_SERVERS}=1 but network namespaces failed: {e}"),
        Err(e) => {
            println!("skipped: cannot create network namespaces here ({e})");
            return;
        }
    };
    let tmp = tempfile::Builder::new()
        .prefix("iotdisco-mdns-")
        .tempdir()
        .unwrap();

    // 1. pronto in A, found from B.
    let mut first = announce(
        &netns.a,
        &netns.veth_a,
        "5222",
        "1",
        &tmp.path().join("announce-a.log"),
    );
    first.wait_log(
        "published pronto._xmpp-client._tcp.local.",
        1,
        Duration::from_secs(30),
    );
    let (out, found) = discover(&netns.b, &netns.veth_b);
    let s = server(&found, "pronto").unwrap_or_else(|| {
        panic!(
            "B did not find pronto: {out:?}\nannouncer:\n{}",
            tail(&first.log, 20)
        )
    });
    assert_eq!(s["host"], "pronto.local.");
    assert_eq!(s["port"], 5222);
    assert!(
        s["addresses"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("192.0.2.1")),
        "{s}"
    );
    assert_eq!(s["ordom"], "example.com");
    assert_eq!(s["registries"], serde_json::json!(["registry@example.com"]));
    assert_eq!(
        s["provisioning"],
        serde_json::json!(["provisioning@example.com"])
    );
    assert_eq!(s["txt_error"], serde_json::Value::Null);

    // 2. The same name from B: taken, so pronto-1; found from A.
    let mut second = announce(
        &netns.b,
        &netns.veth_b,
        "5223",
        "3",
        &tmp.path().join("announce-b.log"),
    );
    second.wait_log(
        "published pronto-1._xmpp-client._tcp.local.",
        1,
        Duration::from_secs(30),
    );
    assert!(
        second
            .log()
            .contains("pronto is taken on the network: using pronto-1"),
        "{}",
        second.log()
    );
    let (out, found) = discover(&netns.a, &netns.veth_a);
    let s = server(&found, "pronto-1").unwrap_or_else(|| {
        panic!(
            "A did not find pronto-1: {out:?}\nannouncer:\n{}",
            tail(&second.log, 20)
        )
    });
    assert_eq!(s["host"], "pronto-1.local.");
    assert_eq!(s["port"], 5223);
    assert!(
        s["addresses"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("192.0.2.2")),
        "{s}"
    );

    // 3. Both stop cleanly on SIGTERM, after their goodbyes.
    for g in [&mut second, &mut first] {
        let status = g.stop("-TERM");
        assert!(
            status.is_some_and(|s| s.success()),
            "{} did not exit cleanly ({status:?}):\n{}",
            g.what,
            g.log()
        );
        assert!(g.log().contains("SIGTERM: withdrew"), "{}", g.log());
    }

    // 4. A conflict the first browse cannot see (--probe-seconds 0): the
    //    responder's own probing meets A defending pronto, and B withdraws
    //    and publishes under the spec's name pronto-1, not mdns-sd's
    //    "pronto (2)" / "pronto-2".
    let mut first = announce(
        &netns.a,
        &netns.veth_a,
        "5222",
        "0",
        &tmp.path().join("announce-a2.log"),
    );
    first.wait_log(
        "published pronto._xmpp-client._tcp.local.",
        1,
        Duration::from_secs(30),
    );
    // Let A's probing end and its records be announced before B probes.
    let (out, found) = discover(&netns.b, &netns.veth_b);
    assert!(server(&found, "pronto").is_some(), "{out:?}");
    let mut second = announce(
        &netns.b,
        &netns.veth_b,
        "5223",
        "0",
        &tmp.path().join("announce-b2.log"),
    );
    second.wait_log("renamed to pronto-1", 1, Duration::from_secs(30));
    second.wait_log(
        "published pronto-1._xmpp-client._tcp.local.",
        1,
        Duration::from_secs(30),
    );
    let (out, found) = discover(&netns.a, &netns.veth_a);
    let names: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(names.contains(&"pronto-1"), "{names:?} {out:?}");
    assert!(
        !names.iter().any(|n| n.contains('(') || *n == "pronto-2"),
        "the responder's own rename leaked: {names:?}"
    );
    for g in [&mut second, &mut first] {
        let status = g.stop("-TERM");
        assert!(status.is_some_and(|s| s.success()), "{}", g.log());
    }
}
