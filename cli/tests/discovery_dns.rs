//! Unicast DNS-SD end to end (spec 3.3.2 over ordinary DNS, RFC 6763): a
//! real dnsmasq on 127.0.0.1 serves the records that `iotdisco announce
//! --zone` printed, and `iotdisco discover --dns` finds the server and its
//! registry and provisioning server through them.
//!
//! dnsmasq cannot load zone files, so the test reads the zone fragment line
//! by line and writes each record as the dnsmasq option that serves exactly
//! it (`ptr-record`, `srv-host`, `host-record`, `txt-record`): the records
//! come from the fragment, never from the test. dnsmasq runs in the
//! foreground on a free port with no upstream servers, no hosts file and no
//! DHCP, and is killed on drop.
//!
//! Without dnsmasq the test prints why it skipped and passes, unless
//! `IOTDISCO_REAL_SERVERS=1` (CI), which makes it a failure.

use std::fs::{self, File};
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use iotdisco::discovery::message::{Response, query};
use iotdisco::discovery::record::TYPE_PTR;
use iotdisco::discovery::{Name, split_strings};

#[path = "../../tests/xmpp/harness.rs"]
mod harness;
use harness::{Guard, REAL_SERVERS, tail};

fn iotdisco(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iotdisco"))
        .args(args)
        .output()
        .expect("run iotdisco")
}

/// `name` on PATH or in the sbin directories (dnsmasq lives in /usr/sbin).
fn find_program(name: &str) -> Option<PathBuf> {
    harness::on_path(name).or_else(|| {
        ["/usr/sbin", "/sbin", "/usr/local/sbin"]
            .iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file())
    })
}

/// A UDP and TCP port free on 127.0.0.1 right now.
fn free_dns_port() -> u16 {
    loop {
        let port = harness::free_port();
        if UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
}

/// Splits a zone line into fields: quoted strings (quotes kept, escapes
/// untouched) and bare words.
fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            let mut s = String::from('"');
            chars.next();
            while let Some(c) = chars.next() {
                s.push(c);
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        s.push(n);
                    }
                } else if c == '"' {
                    break;
                }
            }
            out.push(s);
        } else {
            let mut s = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                s.push(c);
                chars.next();
            }
            out.push(s);
        }
    }
    out
}

/// The dnsmasq options serving the records of a zone fragment (`name ttl IN
/// TYPE data` lines, `;` comments), and how many records there were.
fn dnsmasq_options(zone: &str) -> (Vec<String>, usize) {
    let mut options = Vec::new();
    let mut records = 0;
    for line in zone.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        let f = fields(line);
        assert!(f.len() >= 5, "not a `name ttl IN TYPE data` line: {line}");
        assert_eq!(f[2], "IN", "{line}");
        let name = f[0].trim_end_matches('.');
        let data = &f[4..];
        let option = match f[3].as_str() {
            "PTR" => format!("ptr-record={name},{}", data[0].trim_end_matches('.')),
            "SRV" => {
                let [prio, weight, port, target] = data else {
                    panic!("SRV needs 4 fields: {line}")
                };
                format!(
                    "srv-host={name},{},{port},{prio},{weight}",
                    target.trim_end_matches('.')
                )
            }
            "A" | "AAAA" => format!("host-record={name},{}", data[0]),
            "TXT" => format!("txt-record={name},{}", data.join(",")),
            other => panic!("unexpected record type {other} in the zone: {line}"),
        };
        options.push(option);
        records += 1;
    }
    (options, records)
}

#[test]
fn the_zone_fragment_converts_record_by_record() {
    let zone = "; comment\n\
        _xmpp-client._tcp.local. 120 IN PTR pronto._xmpp-client._tcp.local.\n\
        pronto._xmpp-client._tcp.local. 120 IN SRV 0 0 5222 pronto.local.\n\
        pronto.local. 120 IN A 127.0.0.1\n\
        pronto._xmpp-client._tcp.local. 120 IN TXT \"txtvers=1\" \"regis=a b\"\n";
    let (options, n) = dnsmasq_options(zone);
    assert_eq!(n, 4);
    assert_eq!(
        options,
        [
            "ptr-record=_xmpp-client._tcp.local,pronto._xmpp-client._tcp.local",
            "srv-host=pronto._xmpp-client._tcp.local,pronto.local,5222,0,0",
            "host-record=pronto.local,127.0.0.1",
            "txt-record=pronto._xmpp-client._tcp.local,\"txtvers=1\",\"regis=a b\"",
        ]
    );
}

/// Waits until dnsmasq answers the PTR question of the browse.
fn wait_until_answering(port: u16, dnsmasq: &mut Guard) {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let q = query(
        1,
        &Name::parse("_xmpp-client._tcp.local").unwrap(),
        TYPE_PTR,
    );
    let end = Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 4096];
    loop {
        if let Ok(Some(status)) = dnsmasq.child.try_wait() {
            panic!("dnsmasq exited ({status}):\n{}", tail(&dnsmasq.log, 40));
        }
        let _ = socket.send_to(&q, (Ipv4Addr::LOCALHOST, port));
        if let Ok(n) = socket.recv(&mut buf) {
            if Response::parse(&buf[..n]).is_ok_and(|r| !r.records.is_empty()) {
                return;
            }
        }
        assert!(
            Instant::now() < end,
            "dnsmasq does not answer on 127.0.0.1:{port}:\n{}",
            tail(&dnsmasq.log, 40)
        );
        sleep(Duration::from_millis(100));
    }
}

#[test]
fn dnsmasq_serves_the_zone_and_discover_finds_the_registry() {
    let required = std::env::var(REAL_SERVERS).is_ok_and(|v| v == "1");
    let Some(dnsmasq) = find_program("dnsmasq") else {
        if required {
            panic!("{REAL_SERVERS}=1 but dnsmasq is missing (apt-get install dnsmasq)");
        }
        println!(
            "skipped: the unicast DNS-SD test needs dnsmasq (apt-get install dnsmasq; set {REAL_SERVERS}=1 to make this a failure)"
        );
        return;
    };
    let tmp = tempfile::Builder::new()
        .prefix("iotdisco-dnssd-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();

    // 1. The zone fragment, as an operator would print it.
    let out = iotdisco(&[
        "announce",
        "--zone",
        "--server-name",
        "pronto",
        "--port",
        "5222",
        "--ordom",
        "example.com",
        "--regis",
        "registry",
        "--provis",
        "provisioning",
        "--address",
        "127.0.0.1",
    ]);
    assert!(out.status.success(), "{out:?}");
    let zone = String::from_utf8(out.stdout).unwrap();
    fs::write(dir.join("zone.txt"), &zone).unwrap();
    let (records, count) = dnsmasq_options(&zone);
    assert_eq!(count, 4, "PTR, SRV, A and TXT:\n{zone}");
    let txt_line = zone.lines().find(|l| l.contains(" TXT ")).unwrap();
    assert!(
        txt_line
            .ends_with(r#""txtvers=1" "ordom=example.com" "regis=registry" "provis=provisioning""#),
        "{txt_line}"
    );

    // 2. dnsmasq serving exactly those records.
    let port = free_dns_port();
    let log = dir.join("dnsmasq.log");
    let mut conf = format!(
        "# Written by cli/tests/discovery_dns.rs from zone.txt\n\
         port={port}\nlisten-address=127.0.0.1\nbind-interfaces\nno-resolv\nno-hosts\n\
         no-poll\npid-file=\nuser=root\nlog-queries\nlocal-ttl=120\n"
    );
    for r in &records {
        conf.push_str(r);
        conf.push('\n');
    }
    fs::write(dir.join("dnsmasq.conf"), &conf).unwrap();
    let out = File::create(&log).unwrap();
    let mut server = Guard {
        what: "dnsmasq",
        child: Command::new(&dnsmasq)
            .arg("--keep-in-foreground")
            .arg("--log-facility=-")
            .arg(format!(
                "--conf-file={}",
                dir.join("dnsmasq.conf").display()
            ))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start dnsmasq"),
        log: log.clone(),
    };
    wait_until_answering(port, &mut server);

    // 3. A thing's browse: PTR, then SRV and TXT, then A/AAAA.
    let dns = format!("127.0.0.1:{port}");
    let out = iotdisco(&["discover", "--dns", &dns, "--timeout", "10", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "discover failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        tail(&log, 40)
    );
    let found: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let servers = found.as_array().unwrap();
    assert_eq!(servers.len(), 1, "{stdout}\n{}", tail(&log, 40));
    let s = &servers[0];
    assert_eq!(s["instance"], "pronto._xmpp-client._tcp.local.");
    assert_eq!(s["host"], "pronto.local.");
    assert_eq!(s["port"], 5222);
    assert_eq!(s["addresses"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(s["ordom"], "example.com");
    assert_eq!(s["registries"], serde_json::json!(["registry@example.com"]));
    assert_eq!(
        s["provisioning"],
        serde_json::json!(["provisioning@example.com"])
    );
    assert_eq!(s["txt_error"], serde_json::Value::Null);

    // The TXT data dnsmasq serves is the fragment's, byte for byte.
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let q = query(
        9,
        &Name::parse("pronto._xmpp-client._tcp.local").unwrap(),
        iotdisco::discovery::record::TYPE_TXT,
    );
    socket.send_to(&q, (Ipv4Addr::LOCALHOST, port)).unwrap();
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).unwrap();
    let r = Response::parse(&buf[..n]).unwrap();
    let txt = r
        .records
        .iter()
        .find_map(|r| match &r.data {
            iotdisco::discovery::RData::Txt(d) => Some(d.clone()),
            _ => None,
        })
        .expect("a TXT answer");
    assert_eq!(
        split_strings(&txt).unwrap(),
        [
            &b"txtvers=1"[..],
            b"ordom=example.com",
            b"regis=registry",
            b"provis=provisioning"
        ]
    );

    // The text form names the registry too.
    let out = iotdisco(&["discover", "--dns", &dns, "--timeout", "10"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("registries: registry@example.com"), "{text}");
    assert!(text.contains("host: pronto.local. port 5222"), "{text}");

    // dnsmasq saw the browse's questions (the A record may come as additional
    // data of the SRV answer, so it need not be asked).
    server.stop("-TERM");
    let log_text = fs::read_to_string(&log).unwrap_or_default();
    for q in [
        "query[PTR] _xmpp-client._tcp.local",
        "query[SRV] pronto._xmpp-client._tcp.local",
        "query[TXT] pronto._xmpp-client._tcp.local",
    ] {
        assert!(
            log_text.contains(q),
            "dnsmasq did not log {q:?}:\n{log_text}"
        );
    }
}
