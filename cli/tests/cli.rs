//! The `iotdisco` binary end to end: every subcommand run as a process, as a
//! user would, on databases made with the library in temporary directories.

use std::path::Path;
use std::process::{Command, Output};

use iotdisco::store::sled::Durability;
use iotdisco::{Claim, Config, Jid, NodeAddress, Register, Registry, Tag, datagen};

fn iotdisco(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iotdisco"))
        .args(args)
        .output()
        .expect("run iotdisco")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("UTF-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("UTF-8 stderr")
}

/// A failure: non-zero status, exactly one line on stderr starting with
/// `error:`, no panic. Returns that line.
fn failed(o: &Output) -> String {
    let err = stderr(o);
    assert!(!o.status.success(), "should fail; stdout: {}", stdout(o));
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err:?}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "failed: {}\n{}", stderr(o), stdout(o));
    stdout(o)
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(o)).expect("JSON output")
}

/// A database with: datagen things 0..5 (public, claimed), thing 5 claimed
/// private, thing 6 unclaimed, and a KTC thing that Q1-style URIs find.
fn make_db(path: &Path) {
    let reg = Registry::open_with(path, Config::default(), Durability::Flush).unwrap();
    for i in 0..7 {
        let g = datagen::thing(1, i);
        let (from, req) = datagen::register_request(&g);
        reg.register(&from, req).unwrap();
        if i < 6 {
            let claim = Claim {
                tags: g.tags.clone(),
                public: i < 5,
            };
            reg.claim(&Jid::from(g.owner.clone()), claim).unwrap();
        }
    }
    let tags = vec![
        Tag::str("MAN", "www.ktc.se").unwrap(),
        Tag::str("SN", "394872348732948723").unwrap(),
        Tag::num("V", 1.2).unwrap(),
        Tag::str("KEY", "4857402340298342").unwrap(),
    ];
    let thing = Jid::parse("imc@example.org/plc").unwrap();
    reg.register(
        &thing,
        Register {
            node: NodeAddress::node("imc1", None),
            tags: tags.clone(),
            self_owned: false,
        },
    )
    .unwrap();
    reg.claim(
        &Jid::parse("owner@example.org").unwrap(),
        Claim { tags, public: true },
    )
    .unwrap();
    reg.flush().unwrap();
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    for cmd in [
        &["--help"][..],
        &["component", "--help"],
        &["bench", "--help"],
        &["search", "--help"],
        &["stats", "--help"],
        &["export", "--help"],
        &["import", "--help"],
        &["qr", "--help"],
        &["qr", "encode", "--help"],
        &["qr", "decode", "--help"],
    ] {
        let out = ok(&iotdisco(cmd));
        assert!(out.contains("Usage: iotdisco"), "{cmd:?}: {out}");
        assert!(out.contains("Example"), "{cmd:?} has no example: {out}");
    }
    // The search help spells out every operator.
    let help = ok(&iotdisco(&["search", "--help"]));
    for op in [
        "strEq",
        "strNEq",
        "strGt",
        "strGtEq",
        "strLt",
        "strLtEq",
        "strRange",
        "strNRange",
        "strMask",
        "numEq",
        "numNEq",
        "numGt",
        "numGtEq",
        "numLt",
        "numLtEq",
        "numRange",
        "numNRange",
    ] {
        assert!(help.contains(op), "{op} missing from search --help");
    }
}

#[test]
fn bad_arguments_are_one_line() {
    for cmd in [
        &[][..],
        &["frobnicate"],
        &["component", "--bogus"],
        &["component", "--group-commit-ms", "soon"],
        &["bench", "--bogus"],
        &["bench", "--things", "many"],
        &["bench", "--things", "0"],
        &["bench", "--memory", "--db", "x"],
        &["bench", "--seconds", "-1"],
        &["bench", "--baseline", "postgres"],
        &["stats"],
        &["search", "--db", "x"],
        &["qr"],
        &["qr", "encode", "--tag", "NOEQUALS"],
        &["qr", "encode", "--num", "V=abc"],
        &["qr", "encode", "--tag", "BAD:NAME=1"],
        &[
            "qr",
            "encode",
            "--registry",
            "r.example.org",
            "--tag",
            "SN=1",
        ],
    ] {
        let o = iotdisco(cmd);
        failed(&o);
        assert_eq!(o.status.code(), Some(2), "{cmd:?}");
    }
    let e = failed(&iotdisco(&["bench", "--bogus"]));
    assert!(e.contains("--bogus"), "{e}");
    let e = failed(&iotdisco(&["qr", "encode"]));
    assert!(e.contains("at least one tag"), "{e}");
    let e = failed(&iotdisco(&["qr", "decode", "hello"]));
    assert!(e.contains("IoTDisco"), "{e}");
    // Flags that parse but cannot run: one line, status 1, nothing started.
    let o = iotdisco(&["component", "--memory"]);
    let e = failed(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("domain"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-secret");
    let o = iotdisco(&[
        "component",
        "--memory",
        "--domain",
        "discovery.example.org",
        "--secret-file",
        missing.to_str().unwrap(),
    ]);
    let e = failed(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("no-such-secret"), "{e}");
}

#[test]
fn read_only_commands_refuse_a_missing_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nothing.db");
    let db_s = db.to_str().unwrap();
    for cmd in [
        &["stats", "--db", db_s][..],
        &["export", "--db", db_s],
        &["search", "--db", db_s, "iotdisco:MAN=www.ktc.se"],
    ] {
        let e = failed(&iotdisco(cmd));
        assert!(e.contains("no database at"), "{e}");
        assert!(!db.exists(), "{cmd:?} created the database");
    }
}

#[test]
fn export_import_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    make_db(&db);
    let file = dir.path().join("a.jsonl");
    ok(&iotdisco(&[
        "export",
        "--db",
        db.to_str().unwrap(),
        file.to_str().unwrap(),
    ]));
    let exported = std::fs::read_to_string(&file).unwrap();
    assert_eq!(exported.lines().count(), 8);
    // Claimed things keep a digest instead of KEY (deleted at the claim);
    // the unclaimed one's KEY is exported.
    assert!(
        !exported.contains("4857402340298342"),
        "KEY deleted at the claim"
    );
    assert_eq!(exported.matches("\"claim_digest\":").count(), 7);
    assert_eq!(exported.matches("\"name\":\"KEY\"").count(), 1);
    // To stdout: the same lines.
    let to_stdout = ok(&iotdisco(&["export", "--db", db.to_str().unwrap()]));
    assert_eq!(to_stdout, exported);

    let db2 = dir.path().join("b.db");
    let out = ok(&iotdisco(&[
        "import",
        "--db",
        db2.to_str().unwrap(),
        file.to_str().unwrap(),
    ]));
    assert!(out.contains("imported 8 things"), "{out}");
    let again = ok(&iotdisco(&["export", "--db", db2.to_str().unwrap()]));
    let sorted = |s: &str| {
        let mut v: Vec<String> = s.lines().map(String::from).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&again), sorted(&exported));
    // A second import into the now full database is refused.
    let e = failed(&iotdisco(&[
        "import",
        "--db",
        db2.to_str().unwrap(),
        file.to_str().unwrap(),
    ]));
    assert!(e.contains("already holds 8 things"), "{e}");
}

#[test]
fn a_corrupt_line_imports_nothing_unless_continue() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    make_db(&db);
    let good = ok(&iotdisco(&["export", "--db", db.to_str().unwrap()]));
    let mut lines: Vec<&str> = good.lines().collect();
    lines[2] = r#"{"jid":"broken@example.org","tags":[{"name":"V","num":"1.2"}]}"#;
    lines.insert(5, "{not json");
    let bad_file = dir.path().join("bad.jsonl");
    std::fs::write(&bad_file, lines.join("\n") + "\n").unwrap();

    let db2 = dir.path().join("b.db");
    let e = failed(&iotdisco(&[
        "import",
        "--db",
        db2.to_str().unwrap(),
        bad_file.to_str().unwrap(),
    ]));
    assert!(e.contains("line 3:"), "{e}");
    assert!(e.contains("1 more bad lines"), "{e}");
    assert!(e.contains("nothing imported"), "{e}");
    assert!(!db2.exists(), "a failed import created the database");

    let o = iotdisco(&[
        "import",
        "--db",
        db2.to_str().unwrap(),
        "--continue",
        bad_file.to_str().unwrap(),
    ]);
    let out = ok(&o);
    assert!(out.contains("imported 7 things"), "{out}");
    let err = stderr(&o);
    assert!(err.contains("line 3:"), "{err}");
    assert!(err.contains("line 6:"), "{err}");
    let stats = json(&iotdisco(&[
        "stats",
        "--db",
        db2.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(stats["things"], 7);

    // From stdin, the same rules.
    let db3 = dir.path().join("c.db");
    let o = Command::new(env!("CARGO_BIN_EXE_iotdisco"))
        .args(["import", "--db", db3.to_str().unwrap()])
        .stdin(std::fs::File::open(&bad_file).unwrap())
        .output()
        .unwrap();
    let e = failed(&o);
    assert!(e.contains("stdin line 3:"), "{e}");
}

#[test]
fn search_finds_public_claimed_things_by_uri() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    make_db(&db);
    let db_s = db.to_str().unwrap();
    let out = ok(&iotdisco(&[
        "search",
        "--db",
        db_s,
        "iotdisco:MAN=www.ktc.se;SN~*39487*;#V>=1;#V<2",
    ]));
    assert!(out.contains("imc@example.org"), "{out}");
    assert!(out.contains("owner@example.org"), "{out}");
    assert!(out.contains("imc1"), "{out}");
    assert!(out.contains("#V=1.2"), "{out}");
    assert!(!out.contains("4857402340298342"), "KEY shown: {out}");

    let v = json(&iotdisco(&[
        "search",
        "--db",
        db_s,
        "--json",
        "iotdisco:#V<>3;SN~**39487*",
    ]));
    let things = v["things"].as_array().unwrap();
    assert_eq!(things.len(), 1);
    assert_eq!(things[0]["jid"], "imc@example.org");
    assert_eq!(things[0]["node"]["nodeId"], "imc1");
    assert_eq!(v["more"], false);

    // The private thing (5) and the unclaimed one (6) are never found; the five
    // public datagen things are, and pages work.
    let sn = |i| datagen::serial(1, i);
    for (i, found) in [(4, 1), (5, 0), (6, 0)] {
        let v = json(&iotdisco(&[
            "search",
            "--db",
            db_s,
            "--json",
            &format!("iotdisco:SN={}", sn(i)),
        ]));
        assert_eq!(v["things"].as_array().unwrap().len(), found, "thing {i}");
    }
    let v = json(&iotdisco(&[
        "search",
        "--db",
        db_s,
        "--json",
        "--max",
        "2",
        "--offset",
        "1",
        "iotdisco:#LAT>=-90",
    ]));
    assert_eq!(v["things"].as_array().unwrap().len(), 2);
    assert_eq!(v["more"], true);

    let e = failed(&iotdisco(&["search", "--db", db_s, "iotdisco:SN"]));
    assert!(e.contains("bad search URI"), "{e}");
}

#[test]
fn stats_counts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    make_db(&db);
    let v = json(&iotdisco(&[
        "stats",
        "--db",
        db.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(v["things"], 8);
    assert_eq!(v["claimed"], 7);
    assert_eq!(v["public"], 6);
    assert_eq!(v["private"], 1);
    assert_eq!(v["unclaimed"], 1);
    assert_eq!(v["tags"]["SN"], 8);
    assert_eq!(v["tags"]["KEY"], 1, "KEY is deleted at the claim");
    assert_eq!(v["tags"]["CITY"], 7);
    assert!(v["index_bytes"].as_u64().unwrap() > 0);
    assert!(v["disk_bytes"].as_u64().unwrap() > 0);
    let table = ok(&iotdisco(&["stats", "--db", db.to_str().unwrap()]));
    assert!(table.contains("things     8"), "{table}");
}

#[test]
fn qr_round_trips() {
    // The spec's Listing 14, exactly, from tags in command-line order.
    let listing =
        "IoTDisco;MAN:www.ktc.se;MODEL:IMC;SN:394872348732948723;#V:1.2;KEY:4857402340298342";
    let out = ok(&iotdisco(&[
        "qr",
        "encode",
        "--tag",
        "MAN=www.ktc.se",
        "--tag",
        "MODEL=IMC",
        "--tag",
        "SN=394872348732948723",
        "--num",
        "V=1.2",
        "--tag",
        "KEY=4857402340298342",
    ]));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(listing));
    assert!(lines.count() > 10, "a QR code follows: {out}");

    let tricky = "a;b\\c:d ünï€";
    for uri in [false, true] {
        let mut args = vec!["qr", "encode"];
        if uri {
            args.extend(["--uri", "--registry", "discovery.example.org"]);
        }
        let tag = format!("SN={tricky}");
        args.extend(["--tag", &tag, "--num", "V=-2.5"]);
        let svg = tempfile::NamedTempFile::new().unwrap();
        args.extend(["--svg", svg.path().to_str().unwrap()]);
        let text = ok(&iotdisco(&args));
        let text = text.lines().next().unwrap();
        assert!(text.starts_with(if uri { "iotdisco:" } else { "IoTDisco;" }));
        assert!(
            std::fs::read_to_string(svg.path())
                .unwrap()
                .contains("<svg")
        );
        let v = json(&iotdisco(&["qr", "decode", "--json", text]));
        assert_eq!(v["tags"][0]["name"], "SN");
        assert_eq!(v["tags"][0]["str"], tricky);
        assert_eq!(v["tags"][1]["name"], "V");
        assert_eq!(v["tags"][1]["num"], -2.5);
        let registry = if uri {
            serde_json::json!("discovery.example.org")
        } else {
            serde_json::Value::Null
        };
        assert_eq!(v["registry"], registry);
    }
    let plain = ok(&iotdisco(&["qr", "decode", listing]));
    assert!(plain.contains("#V\t1.2"), "{plain}");
    assert!(plain.contains("KEY\t4857402340298342"), "{plain}");
}

#[test]
fn bench_json_has_the_expected_keys() {
    let v = json(&iotdisco(&[
        "bench",
        "--things",
        "2000",
        "--seconds",
        "1",
        "--memory",
        "--json",
    ]));
    assert_eq!(v["things"], 2000);
    assert!(v["threads"].as_u64().unwrap() >= 1);
    assert!(v["sqlite"].is_null());
    assert!(v["verified"].is_null());
    let ops = v["iotdisco"]["operations"].as_array().unwrap();
    let names: Vec<&str> = ops.iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["Q1", "Q2", "Q3", "Q4", "Q5", "register", "claim", "update"]
    );
    for o in ops {
        for key in [
            "count",
            "per_second",
            "p50_us",
            "p90_us",
            "p99_us",
            "max_us",
        ] {
            assert!(o[key].is_number(), "{key} in {o}");
        }
        assert!(o["count"].as_u64().unwrap() >= 1);
        assert!(o["p50_us"].as_f64().unwrap() <= o["max_us"].as_f64().unwrap());
    }
    // Q2 (MAN = www.ktc.se, 2% of 2,000 things) fills its page of 20.
    assert_eq!(ops[1]["hits"], 20);
    assert_eq!(ops[1]["more"], true);
}

#[test]
fn bench_on_disk_with_sqlite_reuses_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");
    let svg = dir.path().join("plot.svg");
    let args = [
        "bench",
        "--things",
        "3000",
        "--seconds",
        "0.3",
        "--threads",
        "1",
        "--db",
        db.to_str().unwrap(),
        "--baseline",
        "sqlite",
        "--json",
        "--svg",
        svg.to_str().unwrap(),
    ];
    let first = json(&iotdisco(&args));
    assert_eq!(first["iotdisco"]["reused"], false);
    assert!(
        first["verified"]
            .as_str()
            .unwrap()
            .contains("pages identical")
    );
    assert_eq!(first["sqlite"]["operations"].as_array().unwrap().len(), 8);
    assert!(
        std::fs::read_to_string(&svg)
            .unwrap()
            .contains("sqlite p99")
    );
    // The writer's things were removed: the second run reuses both databases,
    // and the reopened registry still agrees with SQLite.
    let second = json(&iotdisco(&args));
    assert_eq!(second["iotdisco"]["reused"], true);
    assert_eq!(second["sqlite"]["reused"], true);
    assert!(second["verified"].as_str().unwrap().contains("agree"));
    // The human table.
    let table = ok(&iotdisco(&[
        "bench",
        "--things",
        "3000",
        "--seconds",
        "0.2",
        "--db",
        db.to_str().unwrap(),
    ]));
    assert!(table.contains("| operation | count | ops/s | p50 | p90 | p99 | max | hits |"));
    assert!(table.contains("| Q5 |"), "{table}");
    // Another population in an explicitly named database is not overwritten.
    let e = failed(&iotdisco(&[
        "bench",
        "--things",
        "2000",
        "--seconds",
        "0.2",
        "--db",
        db.to_str().unwrap(),
    ]));
    assert!(e.contains("not the bench population"), "{e}");
}
