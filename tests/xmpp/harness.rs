//! Helpers shared by the real-server tests (`ffi/tests/prosody.rs` for the
//! Prosody module, `component/tests/prosody_component.rs` and
//! `component/tests/disco35.rs` for the XEP-0114 component, the `cli` discovery
//! tests), included by each with `#[path]` from a crate directory one level
//! below the workspace root: finding programs, skipping without them, waiting
//! for children with a time limit, killing them on drop, free loopback ports,
//! a Prosody on 127.0.0.1 (configuration, accounts, start), the `tests/xmpp`
//! client scripts, and the text helpers their failure messages use.

#![allow(dead_code)] // each test uses its own subset

use std::env;
use std::fs::{self, File};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The variable that turns a missing server or client library into a failure.
pub const REAL_SERVERS: &str = "IOTDISCO_REAL_SERVERS";

/// `name` as found on `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Whether a test that needs the things in `missing` must skip: `false` when
/// nothing is missing; otherwise it prints why `test` skips and returns
/// `true`, or panics when [`REAL_SERVERS`] is `1`.
pub fn skip_if_missing(test: &str, missing: &[&str]) -> bool {
    if missing.is_empty() {
        return false;
    }
    if env::var(REAL_SERVERS).is_ok_and(|v| v == "1") {
        panic!("{REAL_SERVERS}=1 but missing: {}", missing.join(", "));
    }
    println!(
        "skipped: {test} needs {} (set {REAL_SERVERS}=1 to make this a failure)",
        missing.join(", ")
    );
    true
}

/// What is missing to run the `tests/xmpp` client scripts: python3, or
/// slixmpp in it.
pub fn missing_slixmpp() -> Vec<&'static str> {
    if on_path("python3").is_none() {
        return vec!["python3"];
    }
    let slixmpp = Command::new("python3")
        .args(["-c", "import slixmpp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if slixmpp {
        Vec::new()
    } else {
        vec!["slixmpp (pip install slixmpp)"]
    }
}

/// Waits for `child` at most `limit`; `None` if it is still running.
pub fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < end => sleep(Duration::from_millis(50)),
            _ => return None,
        }
    }
}

/// A Lua string literal.
pub fn lua_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The last `n` lines of a file, for failure messages.
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs `cmd` with its output (stdout and stderr) in `log` until it exits or
/// `limit` passes, when it is killed: its exit status (`None` on time-out)
/// and its output. Panics if it cannot start.
pub fn run_logged(
    what: &str,
    cmd: &mut Command,
    log: &Path,
    limit: Duration,
) -> (Option<ExitStatus>, String) {
    let out = File::create(log).unwrap();
    let mut child = cmd
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let status = wait_for(&mut child, limit);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    (status, fs::read_to_string(log).unwrap_or_default())
}

/// Runs the client script `tests/xmpp/{script}` with `python3` and `args`
/// (stdin closed), as [`run_logged`] does.
pub fn run_script(
    script: &str,
    args: &[&str],
    log: &Path,
    limit: Duration,
) -> (Option<ExitStatus>, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/xmpp")
        .join(script);
    run_logged(
        script,
        Command::new("python3")
            .arg(path)
            .args(args)
            .stdin(Stdio::null()),
        log,
        limit,
    )
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed on drop if it still runs, so a failing assertion
/// never leaves Prosody or the component behind.
pub struct Guard {
    /// What it is, for messages.
    pub what: &'static str,
    /// The process.
    pub child: Child,
    /// Where its output goes.
    pub log: PathBuf,
}

impl Guard {
    /// Starts `cmd` (stdin closed, stdout and stderr to the file `out`) as
    /// `what`, whose log is `log` (`out` itself, or a file it writes).
    pub fn spawn(what: &'static str, cmd: &mut Command, out: &Path, log: PathBuf) -> Guard {
        let out = File::create(out).unwrap();
        Guard {
            what,
            child: cmd
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap_or_else(|e| panic!("start {what}: {e}")),
            log,
        }
    }

    /// Sends `signal` (e.g. `-TERM`), waits up to ten seconds, kills it if
    /// still running.
    pub fn stop(&mut self, signal: &str) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let _ = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status();
        let status = wait_for(&mut self.child, Duration::from_secs(10));
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        status
    }

    /// Its output so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log holds `n` lines containing `needle`.
    pub fn wait_log(&mut self, needle: &str, n: usize, limit: Duration) {
        let end = Instant::now() + limit;
        loop {
            let count = self.log().matches(needle).count();
            if count >= n {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before logging {needle:?}:\n{}",
                    self.what,
                    tail(&self.log, 60)
                );
            }
            assert!(
                Instant::now() < end,
                "{} did not log {needle:?} {n} time(s) within {limit:?}:\n{}",
                self.what,
                tail(&self.log, 60)
            );
            sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What differs between the tests' Prosody configurations; everything else
/// is the same for all: `run_as_root`, 127.0.0.1 only, no s2s, no TLS, plain
/// authentication against `internal_plain` accounts, debug log to a file.
pub struct ProsodyConfig<'a> {
    /// The test writing it, for the first line.
    pub written_by: &'a str,
    /// The c2s port.
    pub c2s: u16,
    /// The XEP-0114 component port, if any.
    pub component_port: Option<u16>,
    /// A directory of plugins (`plugin_paths`), if any.
    pub plugins: Option<&'a Path>,
    /// What follows the global section: the `VirtualHost` and `Component`
    /// sections, as Lua text.
    pub hosts: &'a str,
}

/// A Prosody configuration written into a directory, with its layout.
pub struct Prosody {
    /// `prosody.cfg.lua`.
    pub config: PathBuf,
    /// `data/`: the `data_path`, where accounts are.
    pub data: PathBuf,
    /// `prosody.log`: its log, level debug.
    pub log: PathBuf,
    /// The c2s port, on 127.0.0.1.
    pub c2s: u16,
}

impl ProsodyConfig<'_> {
    /// Writes `prosody.cfg.lua` into `dir` and creates `data/` and `certs/`
    /// beside it (the pid file and `prosody.log` are there too).
    pub fn write(&self, dir: &Path) -> Prosody {
        let data = dir.join("data");
        let certs = dir.join("certs");
        let log = dir.join("prosody.log");
        let config = dir.join("prosody.cfg.lua");
        fs::create_dir_all(&data).unwrap();
        fs::create_dir_all(&certs).unwrap();
        let q = |p: &Path| lua_str(&p.display().to_string());
        let plugins = self
            .plugins
            .map(|p| format!("plugin_paths = {{ {} }}\n", q(p)))
            .unwrap_or_default();
        let component = self
            .component_port
            .map(|port| {
                format!(
                    "component_ports = {{ {port} }}\ncomponent_interfaces = {{ \"127.0.0.1\" }}\n"
                )
            })
            .unwrap_or_default();
        fs::write(
            &config,
            format!(
                r#"-- Written by {written_by}.
run_as_root = true
pidfile = {pidfile}
data_path = {data}
certificates = {certs}
{plugins}interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {c2s} }}
c2s_interfaces = {{ "127.0.0.1" }}
{component}modules_enabled = {{ "roster", "saslauth", "disco" }}
modules_disabled = {{ "s2s", "s2s_auth_certs", "offline" }}
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
log = {{ {{ levels = {{ min = "debug" }}, to = "file", filename = {log} }} }}

{hosts}"#,
                written_by = self.written_by,
                pidfile = q(&dir.join("prosody.pid")),
                data = q(&data),
                certs = q(&certs),
                log = q(&log),
                c2s = self.c2s,
                hosts = self.hosts,
            ),
        )
        .unwrap();
        Prosody {
            config,
            data,
            log,
            c2s: self.c2s,
        }
    }
}

impl Prosody {
    /// Writes the account `user@host` with `password` into the
    /// `internal_plain` file store, as `prosodyctl register` does (without a
    /// process start per account).
    pub fn account(&self, host: &str, user: &str, password: &str) {
        // Prosody's datamanager escapes every non-alphanumeric byte as %xx.
        let encode = |s: &str| -> String {
            s.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02x}")
                    }
                })
                .collect()
        };
        let dir = self.data.join(encode(host)).join("accounts");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join(format!("{}.dat", encode(user))),
            format!(
                "return {{\n\t[\"password\"] = {};\n}};\n",
                lua_str(password)
            ),
        )
        .unwrap();
    }

    /// Starts `prosody` (the program) in the foreground on this
    /// configuration, its stdout and stderr in `out`, and waits up to 30s
    /// for its c2s port.
    pub fn start(&self, prosody: &Path, out: &Path) -> Guard {
        let mut g = Guard::spawn(
            "prosody",
            Command::new(prosody)
                .arg("--config")
                .arg(&self.config)
                .arg("-F"),
            out,
            self.log.clone(),
        );
        let up_by = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, self.c2s)).is_err() {
            if let Ok(Some(status)) = g.child.try_wait() {
                panic!(
                    "prosody exited ({status}) before listening:\n{}\n{}",
                    fs::read_to_string(out).unwrap_or_default(),
                    tail(&g.log, 100)
                );
            }
            assert!(
                Instant::now() < up_by,
                "prosody is not listening on 127.0.0.1:{} after 30s:\n{}",
                self.c2s,
                tail(&g.log, 100)
            );
            sleep(Duration::from_millis(100));
        }
        g
    }
}

/// The XEP-0114 component program `bin` (`iotdisco-component`) serving
/// `domain`: it connects to Prosody's component port `port` on 127.0.0.1
/// with the secret in `secret_file`, keeps its registry in `db` and logs at
/// level info. Callers add their own options.
pub fn component_command(
    bin: &str,
    port: u16,
    domain: &str,
    secret_file: &Path,
    db: &Path,
) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(["--server", &format!("127.0.0.1:{port}")])
        .args(["--domain", domain])
        .arg("--secret-file")
        .arg(secret_file)
        .arg("--db")
        .arg(db)
        .env("RUST_LOG", "info");
    cmd
}

/// Starts a [`component_command`], its output in `log`, and waits up to 30s
/// for its first connection to Prosody.
pub fn start_component(cmd: &mut Command, log: PathBuf) -> Guard {
    let mut g = Guard::spawn("iotdisco-component", cmd, &log, log.clone());
    g.wait_log("connected to", 1, Duration::from_secs(30));
    g
}
