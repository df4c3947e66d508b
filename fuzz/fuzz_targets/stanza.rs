//! Fuzz target `stanza`: arbitrary bytes into `Engine::handle` of one engine
//! over a small pre-filled registry; every emitted stanza must be well-formed
//! XML and the registry's indexes must stay consistent. The body is
//! [`iotdisco_fuzz::fuzz_stanza`], a plain function that also runs on stable
//! (`cargo test --manifest-path fuzz/Cargo.toml` replays the seed corpus).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| iotdisco_fuzz::fuzz_stanza(data));
