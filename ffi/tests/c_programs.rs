//! The C test programs of `tests/c/`, compiled with the system C compiler (`cc`,
//! or `$CC`) against `include/iotdisco.h` and linked with the static library
//! cargo just built for this test (`libiotdisco_ffi.a`, found next to this test
//! executable in `target/<profile>/deps/`), then run:
//!
//! - `flows.c`: the XEP-0347 flows and the ABI's edges, every stanza checked;
//! - `threads.c`: four threads registering and searching on one registry;
//! - both again under valgrind (`--leak-check=full`, definite leaks and invalid
//!   accesses fail). Without valgrind that test is skipped with a message,
//!   unless `CI` or `IOTDISCO_REAL_SERVERS=1` is set: then it fails.
//!
//! The programs exit 0 when every check passed; their output is printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

/// `target/<profile>/`: where cargo put the static library for this build.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe.parent().expect("the test executable's directory");
    match deps.file_name() {
        Some(name) if name == "deps" => deps.parent().unwrap().to_path_buf(),
        _ => deps.to_path_buf(),
    }
}

fn static_library() -> PathBuf {
    let dir = profile_dir();
    // deps/ holds the library built for this very test build; the copy in
    // target/<profile>/ is only refreshed by builds that ask for the library
    // itself (`cargo build`), so it may be stale.
    for candidate in [
        dir.join("deps/libiotdisco_ffi.a"),
        dir.join("libiotdisco_ffi.a"),
    ] {
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "libiotdisco_ffi.a is not in {} (the ffi crate's lib target builds it: crate-type staticlib)",
        dir.display()
    );
}

/// Compiles `tests/c/<name>.c` once per test process; returns the executable.
fn program(name: &'static str) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<(&'static str, PathBuf)>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(Vec::new()));
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, exe)) = built.iter().find(|(n, _)| *n == name) {
        return exe.clone();
    }
    let ffi = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out_dir = profile_dir().join("iotdisco-ffi-c-tests");
    std::fs::create_dir_all(&out_dir).unwrap();
    let exe = out_dir.join(name);
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let mut cmd = Command::new(&cc);
    cmd.args([
        "-std=c11",
        "-D_POSIX_C_SOURCE=200809L",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-g",
        "-O1",
    ])
    .arg("-I")
    .arg(ffi.join("../include"))
    .arg("-I")
    .arg(ffi.join("tests/c"))
    .arg(ffi.join(format!("tests/c/{name}.c")))
    .arg(static_library())
    .args(["-lpthread", "-ldl", "-lm"])
    .arg("-o")
    .arg(&exe);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler '{cc}': {e}"));
    print_output(&format!("{cc} {name}.c"), &out);
    assert!(out.status.success(), "compiling {name}.c failed: {cmd:?}");
    built.push((name, exe.clone()));
    exe
}

fn print_output(what: &str, out: &Output) {
    println!("--- {what}: {}", out.status);
    print!("{}", String::from_utf8_lossy(&out.stdout));
    print!("{}", String::from_utf8_lossy(&out.stderr));
}

/// Runs a program (optionally under a wrapper) and asserts it exited 0.
fn run(wrapper: &[&str], name: &'static str, args: &[&str]) {
    let exe = program(name);
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    cmd.args(args);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    print_output(&format!("{cmd:?}"), &out);
    assert!(
        out.status.success(),
        "{name} failed ({}); its output is above",
        out.status
    );
}

fn flows(wrapper: &[&str]) {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch
        .path()
        .to_str()
        .expect("a UTF-8 temporary directory");
    run(wrapper, "flows", &[dir, env!("CARGO_PKG_VERSION")]);
}

#[test]
fn c_flows() {
    flows(&[]);
}

#[test]
fn c_threads() {
    run(&[], "threads", &[]);
}

fn set(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

#[test]
fn c_programs_under_valgrind() {
    const VALGRIND: &str = "valgrind";
    let present = Command::new(VALGRIND)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        assert!(
            !(set("CI") || set("IOTDISCO_REAL_SERVERS")),
            "valgrind is not installed (apt-get install valgrind); CI must run the C programs under it"
        );
        println!("SKIPPED: valgrind is not installed (apt-get install valgrind)");
        return;
    }
    // Rust's standard library keeps thread-local and thread bookkeeping
    // allocations until exit ("still reachable", sometimes "possibly lost"):
    // only definite leaks and invalid accesses fail.
    let valgrind = [
        VALGRIND,
        "--quiet",
        "--leak-check=full",
        "--show-leak-kinds=definite",
        "--errors-for-leak-kinds=definite",
        "--error-exitcode=1",
        "--fair-sched=yes",
    ];
    flows(&valgrind);
    run(&valgrind, "threads", &[]);
}
