//! Measuring and reporting helpers shared by the report-style benches
//! (`report.rs`, `storage.rs`): medians of repeated runs, duration and verdict
//! formatting, and the machine's description.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// Median of one engine's runs of one query.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// The median run.
    pub median: Duration,
    /// How many runs.
    pub runs: usize,
}

/// Runs `f` once to warm up, then until 50 runs and 1 s, or 2 s and 5 runs, or
/// 100,000 runs, whichever comes first; returns the median.
pub fn measure<R>(mut f: impl FnMut() -> R) -> Timing {
    black_box(f());
    let start = Instant::now();
    let mut samples = Vec::new();
    loop {
        let t = Instant::now();
        black_box(f());
        samples.push(t.elapsed());
        let el = start.elapsed();
        let k = samples.len();
        if (k >= 50 && el >= Duration::from_secs(1))
            || (k >= 5 && el >= Duration::from_secs(2))
            || k >= 100_000
        {
            break;
        }
    }
    samples.sort_unstable();
    let k = samples.len();
    let median = if k % 2 == 1 {
        samples[k / 2]
    } else {
        (samples[k / 2 - 1] + samples[k / 2]) / 2
    };
    Timing { median, runs: k }
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

pub fn fmt_dur(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    let (v, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {unit}")
}

pub fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

pub fn command_output(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
