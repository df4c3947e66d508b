//! Replays the seed corpus through the fuzz target's body on stable Rust:
//! `cargo test --manifest-path fuzz/Cargo.toml`.
//!
//! The seeds run in file order on one harness (they build on each other: 01
//! registers the thing 05 claims and 14 unregisters), and each must be served
//! without an error reply, except the two answers (17, 18), whose ids match no
//! notification and so are the host's to route.

use std::path::PathBuf;

use iotdisco::Handled;
use iotdisco_fuzz::{Harness, check_stanza, fuzz_stanza};

fn seeds() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/stanza");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read seed"))
        })
        .collect();
    out.sort();
    assert!(out.len() >= 15, "only {} seeds", out.len());
    out
}

#[test]
fn seeds_are_served() {
    let mut h = Harness::new();
    for (name, bytes) in seeds() {
        let handled = h.run(&bytes);
        let out = h.output().to_strings();
        if name.contains("answer") {
            assert_eq!(handled, Handled::NotMine, "{name}: {out:?}");
            continue;
        }
        assert_eq!(handled, Handled::Done, "{name}");
        assert!(!out.is_empty(), "{name}: nothing emitted");
        for s in &out {
            assert!(!s.contains("type='error'"), "{name}: {s}");
            check_stanza(s.as_bytes()).expect("well-formed");
        }
        eprintln!("{name}: {}", out.join(" | "));
    }
}

#[test]
fn seeds_through_the_target_body() {
    for _ in 0..3 {
        for (_, bytes) in seeds() {
            fuzz_stanza(&bytes);
        }
    }
}

#[test]
fn truncated_seeds_hold_the_invariants() {
    let mut h = Harness::new();
    for (_, bytes) in seeds() {
        for end in 0..bytes.len() {
            h.run(&bytes[..end]);
            if h.needs_reset() {
                h = Harness::new();
            }
        }
    }
}
