//! Helpers shared by the real-Prosody tests (`ffi/tests/prosody.rs` for the
//! Prosody module, `component/tests/prosody_component.rs` for the XEP-0114
//! component), included by each with `#[path]`: finding programs, waiting for
//! children with a time limit, killing them on drop, free loopback ports, and
//! the text helpers their failure messages and Prosody configs use.

#![allow(dead_code)] // each test uses its own subset

use std::env;
use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
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
