//! The Prosody module (`ffi/prosody/`) inside a real Prosody, driven by real
//! XMPP clients.
//!
//! The test compiles the Lua C module `iotdisco.so` from
//! `ffi/prosody/iotdisco_lua.c` against the static library this crate builds,
//! checks the binding alone (`test/binding.lua`, under valgrind when it is
//! installed), writes a Prosody configuration into a temporary directory
//! (127.0.0.1 only, c2s on a free port, no s2s, no TLS, `run_as_root`),
//! creates the accounts `thing`, `owner` and `searcher` with `prosodyctl`,
//! starts Prosody in the foreground with `Component "discovery.localhost"
//! "iotdisco"`, and runs `tests/xmpp/lifecycle.py --phase basic` (slixmpp; shared
//! with the component's test), which drives the whole
//! XEP-0347 life cycle over three client connections and checks every reply.
//! Prosody is always stopped: cleanly (SIGTERM, then the module must have
//! closed the registry) on success, and by a drop guard that kills it on any
//! failure.
//!
//! Without Prosody the test prints why it skipped and passes, unless
//! `IOTDISCO_REAL_SERVERS=1` (CI), which turns any missing piece (prosody,
//! prosodyctl, a C compiler, the Lua 5.4 headers, python3, slixmpp) into a
//! failure.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

#[path = "../../tests/xmpp/harness.rs"]
mod harness;
use harness::{
    ProsodyConfig, free_port, lua_str, missing_slixmpp, on_path, run_logged, run_script,
    skip_if_missing, tail,
};

const REGISTRY: &str = "discovery.localhost";
const IDENTITY: &str = "Prosody Thing Registry";
const PASSWORD: &str = "pw";

/// The compiler flags for the Lua 5.4 headers, if they are installed.
fn lua_cflags() -> Option<Vec<String>> {
    if let Ok(out) = Command::new("pkg-config")
        .args(["--cflags", "lua5.4"])
        .output()
    {
        if out.status.success() {
            let flags: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            let has_header = flags.iter().any(|f| {
                f.strip_prefix("-I")
                    .is_some_and(|dir| Path::new(dir).join("lua.h").is_file())
            });
            if has_header {
                return Some(flags);
            }
        }
    }
    let dir = Path::new("/usr/include/lua5.4");
    dir.join("lua.h")
        .is_file()
        .then(|| vec![format!("-I{}", dir.display())])
}

/// Runs `cmd` to completion within `limit` with its output in `log`; panics
/// (showing that output) if it fails or hangs.
fn run(what: &str, cmd: &mut Command, log: &Path, limit: Duration) {
    let (status, output) = run_logged(what, cmd, log, limit);
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!("{what} failed ({s}):\n{output}"),
        None => panic!("{what} did not finish within {limit:?}:\n{output}"),
    }
}

/// `libiotdisco_ffi.a` from the build that produced this test binary: cargo
/// compiles this crate's library once for all its crate types, so the static
/// library sits beside the rlib the test links (`target/<profile>/deps/`;
/// `target/<profile>/` after a `cargo build`). Failing that, a fresh
/// `cargo build -p iotdisco-ffi` into a directory of its own.
fn static_library(tmp: &Path) -> PathBuf {
    let exe = env::current_exe().unwrap();
    let deps_dir = exe.parent().unwrap();
    let profile_dir = deps_dir.parent().unwrap();
    for dir in [deps_dir, profile_dir] {
        let lib = dir.join("libiotdisco_ffi.a");
        if lib.is_file() {
            return lib;
        }
    }
    // Not there (an unusual layout): build it into a target directory of its
    // own, so the outer cargo's lock on ours is not in the way.
    let target = profile_dir.join("prosody-ffi");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(
        "cargo build -p iotdisco-ffi",
        Command::new(cargo)
            .args(["build", "-p", "iotdisco-ffi", "--target-dir"])
            .arg(&target)
            .current_dir(env!("CARGO_MANIFEST_DIR")),
        &tmp.join("cargo-build.log"),
        Duration::from_secs(900),
    );
    let lib = target.join("debug/libiotdisco_ffi.a");
    assert!(
        lib.is_file(),
        "cargo build did not produce {}",
        lib.display()
    );
    lib
}

#[test]
fn prosody_serves_the_registry_life_cycle() {
    let prosody = on_path("prosody");
    let prosodyctl = on_path("prosodyctl");
    let cc = env::var("CC")
        .ok()
        .or_else(|| on_path("gcc").map(|_| "gcc".to_owned()))
        .or_else(|| on_path("cc").map(|_| "cc".to_owned()));
    let cflags = lua_cflags();

    let mut missing = Vec::new();
    if prosody.is_none() {
        missing.push("prosody (apt-get install prosody)");
    }
    if prosodyctl.is_none() {
        missing.push("prosodyctl (apt-get install prosody)");
    }
    if cc.is_none() {
        missing.push("a C compiler (gcc)");
    }
    if cflags.is_none() {
        missing.push("the Lua 5.4 headers (apt-get install liblua5.4-dev)");
    }
    missing.extend(missing_slixmpp());
    if skip_if_missing("the real-Prosody test", &missing) {
        return;
    }
    let (cc, cflags) = (cc.unwrap(), cflags.unwrap());
    let started = Instant::now();

    let ffi_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let module_dir = ffi_dir.join("prosody");
    let include = ffi_dir.join("../include");
    let tmp = tempfile::Builder::new()
        .prefix("iotdisco-prosody-")
        .tempdir()
        .unwrap();
    let dir = tmp.path();

    // 1. The Lua C module, linked with the static library.
    let lib = static_library(dir);
    println!("linking {}", lib.display());
    let so = dir.join("iotdisco.so");
    run(
        "compiling iotdisco_lua.c",
        Command::new(&cc)
            .args(["-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror"])
            .args(&cflags)
            .arg(format!("-I{}", include.display()))
            .arg(module_dir.join("iotdisco_lua.c"))
            .arg(&lib)
            // Keep the Rust library's symbols private to the module.
            .arg("-Wl,--exclude-libs,ALL")
            // What `rustc --print native-static-libs` lists for the library.
            .args([
                "-lgcc_s",
                "-lutil",
                "-lrt",
                "-lpthread",
                "-lm",
                "-ldl",
                "-lc",
                "-o",
            ])
            .arg(&so),
        &dir.join("cc.log"),
        Duration::from_secs(120),
    );

    // 2. The binding alone, with the interpreter Prosody runs on.
    if let Some(lua) = on_path("lua5.4") {
        let mut cmd = if on_path("valgrind").is_some() {
            let mut c = Command::new("valgrind");
            c.args([
                "-q",
                "--leak-check=full",
                "--errors-for-leak-kinds=definite,indirect,possible",
                "--error-exitcode=9",
            ])
            .arg(lua);
            c
        } else {
            Command::new(lua)
        };
        run(
            "binding.lua",
            cmd.arg(module_dir.join("test/binding.lua")).arg(&so),
            &dir.join("binding.log"),
            Duration::from_secs(120),
        );
        println!("{}", fs::read_to_string(dir.join("binding.log")).unwrap());
    }

    // 3. Prosody's configuration: loopback only, a free port, no TLS, no s2s.
    let hosts = format!(
        r#"VirtualHost "localhost"

Component "{REGISTRY}" "iotdisco"
    iotdisco_lib_path = {so}
    iotdisco_options = {{ identity_name = "{IDENTITY}", disown_timeout_ms = 10000 }}
"#,
        so = lua_str(&so.display().to_string()),
    );
    let server = ProsodyConfig {
        written_by: "ffi/tests/prosody.rs",
        c2s: free_port(),
        component_port: None,
        plugins: Some(&module_dir),
        hosts: &hosts,
    }
    .write(dir);
    let (port, log) = (server.c2s, server.log.clone());

    // 4. Accounts.
    for user in ["thing", "owner", "searcher"] {
        run(
            &format!("prosodyctl register {user}"),
            Command::new(prosodyctl.as_ref().unwrap())
                .arg("--config")
                .arg(&server.config)
                .args(["register", user, "localhost", PASSWORD]),
            &dir.join("prosodyctl.log"),
            Duration::from_secs(60),
        );
    }

    // 5. Prosody in the foreground, until its c2s port accepts.
    let up_by = Instant::now() + Duration::from_secs(30);
    let mut server = server.start(prosody.as_ref().unwrap(), &dir.join("prosody.out"));
    // The component host is activated after the c2s port opens: wait for the
    // module's own word.
    let open_line = format!("Thing Registry {REGISTRY} open");
    while !fs::read_to_string(&log)
        .unwrap_or_default()
        .contains(&open_line)
    {
        let text = fs::read_to_string(&log).unwrap_or_default();
        let failed = text.contains("Error initializing module 'iotdisco'")
            || matches!(server.child.try_wait(), Ok(Some(_)));
        assert!(
            !failed && Instant::now() < up_by,
            "mod_iotdisco did not open the registry:\n{}",
            tail(&log, 100)
        );
        sleep(Duration::from_millis(100));
    }

    // 6. The life cycle, over three real client connections.
    let (status, output) = run_script(
        "lifecycle.py",
        &[
            "--phase",
            "basic",
            "--port",
            &port.to_string(),
            "--registry",
            REGISTRY,
            "--identity-name",
            IDENTITY,
            "--password",
            PASSWORD,
        ],
        &dir.join("lifecycle.log"),
        Duration::from_secs(180),
    );
    println!("lifecycle.py:\n{output}");
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!(
            "lifecycle.py failed ({s}):\n{output}\nprosody.log (tail):\n{}",
            tail(&log, 200)
        ),
        None => panic!(
            "lifecycle.py did not finish within 180s:\n{output}\nprosody.log (tail):\n{}",
            tail(&log, 200)
        ),
    }

    // 7. A clean stop closes the registry.
    let stopped = server.stop("-TERM");
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        stopped.is_some_and(|s| s.success()),
        "prosody did not stop cleanly on SIGTERM ({stopped:?}):\n{}",
        tail(&log, 50)
    );
    assert!(
        text.contains(&format!("Thing Registry {REGISTRY} closed")),
        "mod_iotdisco did not close the registry on shutdown:\n{}",
        tail(&log, 50)
    );
    for bad in ["\terror\t", "Traceback", "stack traceback"] {
        let hits: Vec<&str> = text.lines().filter(|l| l.contains(bad)).collect();
        assert!(
            hits.is_empty(),
            "prosody.log has {bad:?}:\n{}",
            hits.join("\n")
        );
    }
    println!(
        "real Prosody life cycle passed in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
