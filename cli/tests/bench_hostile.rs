//! `iotdisco bench --hostile`: both phases run through the stanza entry point
//! and the JSON carries what they measured. No timing is asserted.

use std::process::Command;

fn bench(args: &[&str]) -> serde_json::Value {
    let o = Command::new(env!("CARGO_BIN_EXE_iotdisco"))
        .arg("bench")
        .args(args)
        .output()
        .expect("run iotdisco");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "failed: {err}");
    assert!(!err.contains("panicked"), "{err}");
    serde_json::from_slice(&o.stdout).expect("JSON output")
}

#[test]
fn hostile_json_has_both_phases_and_the_hostile_replies() {
    let v = bench(&[
        "--things",
        "2000",
        "--seconds",
        "1",
        "--memory",
        "--hostile",
        "5",
        "--json",
    ]);
    let h = &v["hostile"];
    assert_eq!(h["percent"], 5.0);
    assert!(h["well_behaved_jids"].as_u64().unwrap() >= 1000);
    let phases = h["phases"].as_array().expect("phases");
    assert_eq!(phases.len(), 2, "{h:#}");
    assert_eq!(phases[0]["hostile_percent"], 0.0);
    assert_eq!(phases[1]["hostile_percent"], 5.0);
    for p in phases {
        let s = &p["well_behaved_searches"];
        assert!(s["count"].as_u64().unwrap() > 0, "{p:#}");
        for key in ["per_second", "p50_us", "p90_us", "p99_us", "max_us"] {
            assert!(s[key].is_number(), "{key} in {s}");
        }
        assert!(s["p50_us"].as_f64().unwrap() <= s["max_us"].as_f64().unwrap());
        // Well-behaved clients are never refused.
        assert_eq!(s["not_result"], serde_json::json!({}), "{p:#}");
        let names: Vec<&str> = p["operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap())
            .collect();
        assert_eq!(&names[..5], ["Q1", "Q2", "Q3", "Q4", "Q5"]);
        // Q2 (MAN = www.ktc.se, 2% of 2,000 things) fills its page of 20,
        // read from the stanza reply.
        assert_eq!(p["operations"][1]["hits"], 20);
        assert_eq!(p["operations"][1]["more"], true);
        assert!(p["peak_rss_bytes"].as_u64().unwrap() > 0);
        assert!(p["engine_accounted_bytes"].as_u64().unwrap() > 0);
    }
    // No hostile operation at 0%, some at 5%, every one counted in a bucket
    // and in its kind.
    assert_eq!(phases[0]["hostile_operations"]["count"], 0);
    let ho = &phases[1]["hostile_operations"];
    let n = ho["count"].as_u64().unwrap();
    assert!(n > 0, "{ho:#}");
    let buckets: u64 = [
        "resource-constraint",
        "bad-request",
        "item-not-found",
        "other",
    ]
    .iter()
    .map(|b| ho["outcomes"][b].as_u64().unwrap())
    .sum();
    assert_eq!(buckets, n);
    assert_eq!(h["hostile_replies"], ho["outcomes"]);
    let kinds: Vec<&str> = ho["by_kind"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["guess", "flood", "tag-spam", "bad-stanza"]);
    let by_kind: u64 = ho["by_kind"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["count"].as_u64().unwrap())
        .sum();
    assert_eq!(by_kind, n);
    // Malformed stanzas are never answered with a result.
    let bad = &ho["by_kind"][3]["outcomes"];
    assert!(bad.get("result").is_none(), "{bad}");
    // Guesses never succeed.
    let guess = &ho["by_kind"][0]["outcomes"];
    assert!(guess.get("result").is_none(), "{guess}");
    assert!(h["p99_ratio"].as_f64().unwrap() > 0.0);
    assert!(h["peak_rss_bytes"].as_u64().unwrap() > 0);
    // The plain bench's keys stay: `iotdisco` is the 0% phase.
    assert_eq!(v["iotdisco"]["operations"], phases[0]["operations"]);
}

#[test]
fn without_hostile_there_is_no_hostile_key() {
    let v = bench(&["--things", "500", "--seconds", "0.2", "--memory", "--json"]);
    assert!(v.get("hostile").is_none(), "{v:#}");
    assert!(v["iotdisco"]["operations"].is_array());
}

#[test]
fn hostile_percent_is_checked() {
    for bad in ["-1", "101", "lots"] {
        let o = Command::new(env!("CARGO_BIN_EXE_iotdisco"))
            .args(["bench", "--memory", &format!("--hostile={bad}")])
            .output()
            .expect("run iotdisco");
        assert!(!o.status.success(), "--hostile {bad} accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("percentage"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
