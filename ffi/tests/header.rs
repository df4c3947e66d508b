//! `include/iotdisco.h` is exactly what cbindgen generates from `ffi/src/lib.rs`
//! with `ffi/cbindgen.toml`, so the committed header and the library cannot
//! drift. `IOTDISCO_BLESS=1 cargo test -p iotdisco-ffi --test header` writes a
//! fresh header instead of comparing.

use std::path::Path;

fn generate() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("ffi/cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen generates the header");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("the header is UTF-8")
}

#[test]
fn the_committed_header_is_current() {
    let fresh = generate();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../include/iotdisco.h");
    if std::env::var_os("IOTDISCO_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &fresh).unwrap();
        println!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == fresh {
        return;
    }
    let first = committed
        .lines()
        .zip(fresh.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| committed.lines().count().min(fresh.lines().count()));
    panic!(
        "include/iotdisco.h differs from a fresh cbindgen generation (first difference at line {}):\n\
         committed: {:?}\n    fresh: {:?}\n\
         Regenerate it with: IOTDISCO_BLESS=1 cargo test -p iotdisco-ffi --test header",
        first + 1,
        committed.lines().nth(first).unwrap_or("<end of file>"),
        fresh.lines().nth(first).unwrap_or("<end of file>"),
    );
}

#[test]
fn the_header_declares_the_contract() {
    let h = generate();
    for decl in [
        "typedef struct iotdisco_registry iotdisco_registry;",
        "typedef void (*iotdisco_send_fn)(void *user, const char *stanza, size_t len);",
        "int iotdisco_open(const char *registry_jid,",
        "void iotdisco_close(iotdisco_registry *reg);",
        "int iotdisco_handle(iotdisco_registry *reg,",
        "int iotdisco_presence(iotdisco_registry *reg,",
        "int iotdisco_tick(iotdisco_registry *reg, uint64_t now_ms, iotdisco_send_fn send, void *user);",
        "int iotdisco_next_deadline(const iotdisco_registry *reg, uint64_t *out);",
        "const char *iotdisco_last_error(void);",
        "const char *iotdisco_version(void);",
        "IOTDISCO_OK = 0,",
        "IOTDISCO_NOT_MINE = 1,",
        "IOTDISCO_EINVAL = 2,",
        "IOTDISCO_ESTORAGE = 3,",
        "IOTDISCO_EPANIC = 4,",
        "IOTDISCO_DROPPED = 5,",
    ] {
        assert!(h.contains(decl), "the header lacks {decl:?}:\n{h}");
    }
}
