//! Replays the `stanza` fuzz target's seed corpus (`fuzz/corpus/stanza/`) through
//! the target's own body on stable Rust, so CI runs what the fuzzer checks
//! without nightly or libFuzzer: every seed in order on one harness (they build
//! on each other), every seed through `fuzz_stanza`, and every truncation of
//! every seed. The checks are the target's: emitted stanzas are well-formed XML
//! with XML 1.0 characters only, `NotMine`/`Dropped` emit nothing, the indexes
//! stay consistent.

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod fuzz_body;

use fuzz_body::{Harness, check_stanza, fuzz_stanza};
use iotdisco::Handled;

fn seeds() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/stanza");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("the seed corpus")
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
fn seeds_are_served_without_errors() {
    let mut h = Harness::new();
    for (name, bytes) in seeds() {
        let handled = h.run(&bytes);
        let out = h.output().to_strings();
        if name.contains("answer") {
            // Answers to notifications nobody sent are the host's to route.
            assert_eq!(handled, Handled::NotMine, "{name}: {out:?}");
            continue;
        }
        assert_eq!(handled, Handled::Done, "{name}");
        assert!(!out.is_empty(), "{name}: nothing emitted");
        for s in &out {
            assert!(!s.contains("type='error'"), "{name}: {s}");
            check_stanza(s.as_bytes()).expect("well-formed");
        }
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
