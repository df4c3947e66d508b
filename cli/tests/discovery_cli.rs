//! `iotdisco announce --zone` / `--dhcp` and `discover` as a user meets them,
//! without a network: the printed records and configuration, and one clear
//! `error:` line (status 1, or 2 for bad arguments) for bad input.

use std::net::{Ipv4Addr, UdpSocket};
use std::process::{Command, Output};

fn iotdisco(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iotdisco"))
        .args(args)
        .output()
        .expect("run iotdisco")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn the_zone_holds_the_records_of_listing_8() {
    let o = iotdisco(&[
        "announce",
        "--zone",
        "--server-name",
        "pronto",
        "--ordom",
        "example.com",
        "--regis",
        "registry",
        "--provis",
        "provisioning",
        "--address",
        "10.2.1.188",
    ]);
    assert!(o.status.success(), "{o:?}");
    let records: Vec<String> = stdout(&o)
        .lines()
        .filter(|l| !l.starts_with(';'))
        .map(str::to_string)
        .collect();
    assert_eq!(
        records,
        [
            "_xmpp-client._tcp.local. 120 IN PTR pronto._xmpp-client._tcp.local.",
            "pronto._xmpp-client._tcp.local. 120 IN SRV 0 0 5222 pronto.local.",
            "pronto.local. 120 IN A 10.2.1.188",
            r#"pronto._xmpp-client._tcp.local. 120 IN TXT "txtvers=1" "ordom=example.com" "regis=registry" "provis=provisioning""#,
        ]
    );
}

#[test]
fn a_zone_without_txt_data_publishes_the_empty_string() {
    let o = iotdisco(&[
        "announce",
        "--zone",
        "--server-name",
        "pronto",
        "--domain",
        "example.org",
    ]);
    assert!(o.status.success(), "{o:?}");
    let out = stdout(&o);
    assert!(
        out.contains("pronto._xmpp-client._tcp.example.org. 120 IN TXT \"\"\n"),
        "{out}"
    );
    assert!(out.contains("No --address given"), "{out}");
}

#[test]
fn dhcp_configuration_for_both_codes() {
    let o = iotdisco(&["announce", "--dhcp", "--server-name", "pronto"]);
    assert!(o.status.success(), "{o:?}");
    let out = stdout(&o);
    for line in [
        "dhcp-option=224,\"pronto.local\"",
        "dhcp-option=84,\"pronto.local\"",
        "option xmpp-server-224 code 224 = text;",
        "option xmpp-server-84 \"pronto.local\";",
        "{ \"name\": \"xmpp-server-84\", \"code\": 84, \"space\": \"dhcp4\", \"data\": \"pronto.local\" }",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    let o = iotdisco(&[
        "announce",
        "--dhcp",
        "--server-name",
        "pronto",
        "--dhcp-code",
        "84",
    ]);
    assert!(o.status.success(), "{o:?}");
    assert!(!stdout(&o).contains("224"), "{}", stdout(&o));
}

#[test]
fn bad_input_is_one_error_line() {
    let cases: [(&[&str], i32, &str); 8] = [
        (
            &["announce", "--zone", "--server-name=-pronto"],
            1,
            "cannot start or end with '-'",
        ),
        (
            &[
                "announce",
                "--zone",
                "--server-name",
                "pronto",
                "--regis",
                "two words",
            ],
            1,
            "white space inside a name",
        ),
        (
            &[
                "announce",
                "--mdns",
                "--server-name",
                "pronto",
                "--domain",
                "example.com",
            ],
            1,
            "--mdns publishes under local. only",
        ),
        (&["announce", "--server-name", "pronto"], 2, "required"),
        (
            &["discover", "--timeout", "0"],
            1,
            "--timeout must be a positive",
        ),
        (&["discover", "--timeout", "1e30"], 1, "at most 3600"),
        (
            &[
                "announce",
                "--mdns",
                "--server-name",
                "p",
                "--probe-seconds",
                "NaN",
            ],
            1,
            "--probe-seconds must be between 0 and 3600",
        ),
        (
            &["discover", "--dns", "no-such-host.invalid:53"],
            1,
            "--dns no-such-host.invalid:53",
        ),
    ];
    for (args, code, needle) in cases {
        let o = iotdisco(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn a_dns_server_that_is_not_there_is_an_error_not_a_hang() {
    // A loopback port with nothing behind it: the kernel refuses at once.
    let port = {
        let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        s.local_addr().unwrap().port()
    };
    let o = iotdisco(&[
        "discover",
        "--dns",
        &format!("127.0.0.1:{port}"),
        "--timeout",
        "5",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("_xmpp-client._tcp.local. PTR from 127.0.0.1"),
        "{err}"
    );
}

#[test]
fn both_commands_have_help_with_examples() {
    for cmd in ["announce", "discover"] {
        let o = iotdisco(&[cmd, "--help"]);
        assert!(o.status.success(), "{o:?}");
        let out = stdout(&o);
        assert!(out.contains(&format!("Usage: iotdisco {cmd}")), "{out}");
        assert!(out.contains("Examples:"), "{out}");
    }
    let top = stdout(&iotdisco(&["--help"]));
    assert!(
        top.contains("announce") && top.contains("discover"),
        "{top}"
    );
}
