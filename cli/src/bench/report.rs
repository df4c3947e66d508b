//! How `bench` shows its results: a Markdown table per engine, the same as JSON,
//! and a hand-written SVG plot (p50 and p99 bars per operation and engine on a
//! logarithmic latency axis, one gridline per decade).

use std::fmt::Write as _;
use std::io::Write;

use serde_json::{Value, json};

use super::hostile::{self, HostileReport, Latency};
use super::{BenchReport, EngineRun, OPS, OpStats};

/// A duration in ns with three significant digits and a unit (`2.29 µs`).
pub fn fmt_ns(ns: u64) -> String {
    let (v, unit) = match ns {
        0..1_000 => return format!("{ns} ns"),
        1_000..1_000_000 => (ns as f64 / 1e3, "µs"),
        1_000_000..1_000_000_000 => (ns as f64 / 1e6, "ms"),
        _ => (ns as f64 / 1e9, "s"),
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

/// A power of ten of nanoseconds as an axis label (`10 µs`, `1 ms`).
fn decade(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{} µs", ns / 1_000),
        1_000_000..1_000_000_000 => format!("{} ms", ns / 1_000_000),
        _ => format!("{} s", ns / 1_000_000_000),
    }
}

fn fmt_rate(x: f64) -> String {
    if x >= 100.0 {
        let n = x.round() as u64;
        let s = n.to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else {
        format!("{x:.1}")
    }
}

fn engine_table(run: &EngineRun, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "{} ({})", run.engine, run.storage)?;
    writeln!(
        out,
        "| operation | count | ops/s | p50 | p90 | p99 | max | hits |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|")?;
    for op in &run.ops {
        let hits = match op.hits {
            Some((n, true)) => format!("{n}+"),
            Some((n, false)) => n.to_string(),
            None => "-".into(),
        };
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {hits} |",
            op.name,
            op.count,
            fmt_rate(op.per_second),
            fmt_ns(op.p50),
            fmt_ns(op.p90),
            fmt_ns(op.p99),
            fmt_ns(op.max)
        )?;
    }
    Ok(())
}

/// The human-readable report.
pub fn table(r: &BenchReport, out: &mut impl Write) -> std::io::Result<()> {
    let writer = match r.write_rate {
        0 => "unthrottled".to_string(),
        n => format!("at {n} ops/s"),
    };
    let per = if r.hostile.is_some() {
        "phase"
    } else {
        "engine"
    };
    writeln!(
        out,
        "iotdisco bench: {} things (datagen seed 1, all public and claimed), {} reader \
         thread(s) + 1 writer ({writer}), {} s per {per}, {} cores",
        r.things, r.threads, r.seconds, r.cores
    )?;
    let phases = r.hostile.iter().flat_map(|h| h.phases.iter().skip(1));
    for run in std::iter::once(&r.iotdisco)
        .chain(phases.map(|p| &p.run))
        .chain(r.sqlite.as_ref())
    {
        let load = if run.reused {
            "reused".to_string()
        } else {
            format!("loaded in {:.2} s", run.load_seconds)
        };
        writeln!(out)?;
        engine_table(run, out)?;
        writeln!(out, "data: {load}; mix ran {:.2} s", run.seconds)?;
    }
    if let Some(h) = &r.hostile {
        hostile_tables(h, out)?;
    }
    if let Some(v) = &r.verified {
        writeln!(out)?;
        writeln!(out, "verified: {v}")?;
    }
    Ok(())
}

fn fmt_bytes(b: u64) -> String {
    let mib = b as f64 / (1024.0 * 1024.0);
    if mib >= 1024.0 {
        format!("{:.2} GiB", mib / 1024.0)
    } else {
        format!("{mib:.1} MiB")
    }
}

fn fmt_counts(m: &std::collections::BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `--hostile` summary: well-behaved searches per phase, hostile
/// operations by kind and outcome, peak RSS.
fn hostile_tables(h: &HostileReport, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out)?;
    writeln!(
        out,
        "well-behaved searches (Q1-Q5 as stanzas from {} client JIDs; Engine::handle timed)",
        h.clients
    )?;
    writeln!(
        out,
        "| hostile | searches | ops/s | p50 | p90 | p99 | max | not answered with a result |"
    )?;
    writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---|")?;
    for p in &h.phases {
        let l = &p.searches;
        writeln!(
            out,
            "| {}% | {} | {} | {} | {} | {} | {} | {} |",
            p.percent,
            l.count,
            fmt_rate(l.per_second),
            fmt_ns(l.p50),
            fmt_ns(l.p90),
            fmt_ns(l.p99),
            fmt_ns(l.max),
            fmt_counts(&p.searches_refused)
        )?;
    }
    match h.p99_ratio() {
        Some(x) => writeln!(out, "p99 at {}% / p99 at 0%: {x:.2}", h.percent)?,
        None => writeln!(out, "p99 at {}% / p99 at 0%: n/a", h.percent)?,
    }
    for p in &h.phases {
        if !p.writes_refused.is_empty() {
            writeln!(
                out,
                "writer replies other than expected at {}%: {}",
                p.percent,
                fmt_counts(&p.writes_refused)
            )?;
        }
    }
    if let Some(p) = h.phases.last().filter(|p| p.percent > 0.0) {
        writeln!(out)?;
        writeln!(
            out,
            "hostile operations at {}% ({} of {} reader operations; seed {}; JIDs at evil.example)",
            p.percent,
            p.hostile_ops(),
            p.reader_ops,
            h.seed
        )?;
        writeln!(
            out,
            "| kind | JIDs | count | p50 | p99 | max | {} | {} | {} | {} |",
            hostile::BUCKETS[0],
            hostile::BUCKETS[1],
            hostile::BUCKETS[2],
            hostile::BUCKETS[3]
        )?;
        writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")?;
        for k in &p.hostile {
            let mut b = [0u64; 4];
            let mut other = std::collections::BTreeMap::new();
            for (o, n) in &k.outcomes {
                let i = hostile::bucket(o);
                b[i] += n;
                if i == 3 {
                    other.insert(o.clone(), *n);
                }
            }
            let other = if other.is_empty() {
                "0".to_string()
            } else {
                format!("{} ({})", b[3], fmt_counts(&other))
            };
            let l = &k.latency;
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {other} |",
                k.kind.name(),
                k.kind.jids(),
                l.count,
                fmt_ns(l.p50),
                fmt_ns(l.p99),
                fmt_ns(l.max),
                b[0],
                b[1],
                b[2]
            )?;
        }
        let b = p.buckets();
        writeln!(
            out,
            "| all | {} | {} | | | | {} | {} | {} | {} |",
            hostile::Kind::ALL.iter().map(|k| k.jids()).sum::<u64>(),
            p.hostile_ops(),
            b[0],
            b[1],
            b[2],
            b[3]
        )?;
    }
    writeln!(out)?;
    let rss = |x: Option<u64>| x.map_or("unknown".to_string(), fmt_bytes);
    let phases: Vec<String> = h
        .phases
        .iter()
        .map(|p| {
            format!(
                "{}% phase {}{}",
                p.percent,
                rss(p.peak_rss_bytes),
                if p.peak_reset { "" } else { " (not reset)" }
            )
        })
        .collect();
    writeln!(
        out,
        "peak RSS (VmHWM): {} for the process, load included; per phase (reset at its start): {}",
        rss(h.peak_rss_bytes),
        phases.join(", ")
    )?;
    let accounted: Vec<String> = h
        .phases
        .iter()
        .map(|p| {
            format!(
                "{}% phase {}",
                p.percent,
                fmt_bytes(p.accounted_bytes as u64)
            )
        })
        .collect();
    writeln!(
        out,
        "engine's own accounting (Engine::accounted_bytes) at the end of each phase: {}",
        accounted.join(", ")
    )?;
    Ok(())
}

fn latency_json(l: &Latency) -> Value {
    let us = |ns: u64| ns as f64 / 1e3;
    json!({
        "count": l.count,
        "per_second": l.per_second,
        "p50_us": us(l.p50),
        "p90_us": us(l.p90),
        "p99_us": us(l.p99),
        "max_us": us(l.max),
    })
}

fn buckets_json(b: [u64; 4]) -> Value {
    let mut m = serde_json::Map::new();
    for (name, n) in hostile::BUCKETS.iter().zip(b) {
        m.insert((*name).to_string(), json!(n));
    }
    Value::Object(m)
}

fn hostile_json(h: &HostileReport) -> Value {
    let phases: Vec<Value> = h
        .phases
        .iter()
        .map(|p| {
            let mut searches = latency_json(&p.searches);
            searches["not_result"] = json!(p.searches_refused);
            let kinds: Vec<Value> = p
                .hostile
                .iter()
                .map(|k| {
                    let mut v = latency_json(&k.latency);
                    v["kind"] = json!(k.kind.name());
                    v["jids"] = json!(k.kind.jids());
                    v["outcomes"] = json!(k.outcomes);
                    v
                })
                .collect();
            json!({
                "hostile_percent": p.percent,
                "seconds": p.run.seconds,
                "reader_operations": p.reader_ops,
                "well_behaved_searches": searches,
                "operations": p.run.ops.iter().map(op_json).collect::<Vec<_>>(),
                "writes_not_ok": p.writes_refused,
                "hostile_operations": {
                    "count": p.hostile_ops(),
                    "outcomes": buckets_json(p.buckets()),
                    "by_kind": kinds,
                },
                "outstanding_notifications": p.outstanding,
                "engine_accounted_bytes": p.accounted_bytes,
                "peak_rss_bytes": p.peak_rss_bytes,
                "peak_rss_reset": p.peak_reset,
            })
        })
        .collect();
    let last = h.phases.last().filter(|p| p.percent > 0.0);
    json!({
        "percent": h.percent,
        "seed": h.seed,
        "well_behaved_jids": h.clients,
        "phases": phases,
        "p99_ratio": h.p99_ratio(),
        "hostile_replies": buckets_json(last.map_or([0; 4], |p| p.buckets())),
        "peak_rss_bytes": h.peak_rss_bytes,
    })
}

fn op_json(op: &OpStats) -> Value {
    let us = |ns: u64| ns as f64 / 1e3;
    json!({
        "name": op.name,
        "count": op.count,
        "per_second": op.per_second,
        "p50_us": us(op.p50),
        "p90_us": us(op.p90),
        "p99_us": us(op.p99),
        "max_us": us(op.max),
        "hits": op.hits.map(|h| h.0),
        "more": op.hits.map(|h| h.1),
    })
}

fn run_json(run: &EngineRun) -> Value {
    json!({
        "storage": run.storage,
        "reused": run.reused,
        "load_seconds": run.load_seconds,
        "seconds": run.seconds,
        "operations": run.ops.iter().map(op_json).collect::<Vec<_>>(),
    })
}

/// The report as JSON: `things`, `threads`, `seconds`, `cores`, `iotdisco` and
/// `sqlite` (null without a baseline; each with `operations`: `name`, `count`,
/// `per_second`, `p50_us`, `p90_us`, `p99_us`, `max_us`, `hits`, `more`) and
/// `verified` (null without a baseline). With `--hostile` also `hostile`:
/// `percent`, `seed`, `well_behaved_jids`, `phases` (0%, then PERCENT%: each
/// `hostile_percent`, `seconds`, `reader_operations`, `well_behaved_searches`
/// (latency, `not_result` by outcome), `operations`, `writes_not_ok`,
/// `hostile_operations` (`count`, `outcomes` in the four buckets, `by_kind`),
/// `outstanding_notifications`, `peak_rss_bytes`, `peak_rss_reset`),
/// `p99_ratio`, `hostile_replies` (the PERCENT% phase's buckets) and
/// `peak_rss_bytes` (the whole process); `iotdisco` is then the 0% phase.
pub fn json(r: &BenchReport) -> Value {
    let mut v = json!({
        "things": r.things,
        "threads": r.threads,
        "seconds": r.seconds,
        "cores": r.cores,
        "write_rate": r.write_rate,
        "iotdisco": run_json(&r.iotdisco),
        "sqlite": r.sqlite.as_ref().map(run_json),
        "verified": r.verified,
    });
    if let Some(h) = &r.hostile {
        v["hostile"] = hostile_json(h);
    }
    v
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The latency plot: per operation, p50 (dark) and p99 (light) bars for each
/// engine, heights on a log10 scale of nanoseconds.
pub fn svg(r: &BenchReport) -> String {
    let runs: Vec<&EngineRun> = std::iter::once(&r.iotdisco)
        .chain(r.sqlite.as_ref())
        .collect();
    let colors = [("#1f5fa8", "#9cc3ec"), ("#b3261e", "#f2a29c")];
    let all: Vec<u64> = runs
        .iter()
        .flat_map(|run| run.ops.iter().flat_map(|o| [o.p50, o.p99]))
        .collect();
    let lo = all.iter().copied().min().unwrap_or(1).max(1);
    let hi = all.iter().copied().max().unwrap_or(1_000).max(lo * 10);
    let dec_lo = (lo as f64).log10().floor() as i32;
    let dec_hi = (hi as f64).log10().ceil() as i32;
    let (left, top, width, height) = (80.0, 50.0, 840.0, 300.0);
    let y = |ns: u64| {
        let v = (ns.max(1) as f64).log10();
        top + height - (v - f64::from(dec_lo)) / f64::from(dec_hi - dec_lo) * height
    };
    let group = width / OPS.len() as f64;
    let bar = group * 0.8 / (2 * runs.len()) as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns='http://www.w3.org/2000/svg' width='{}' height='{}' font-family='sans-serif' font-size='12'>",
        left + width + 20.0,
        top + height + 70.0
    );
    let _ = writeln!(
        s,
        "<rect width='100%' height='100%' fill='white'/>\n<text x='{left}' y='22' font-size='15'>{}</text>",
        esc(&format!(
            "iotdisco bench: {} things, {} readers + 1 writer, {} s: p50 and p99 latency (log scale)",
            r.things, r.threads, r.seconds
        ))
    );
    for d in dec_lo..=dec_hi {
        let ns = 10u64.pow(d as u32);
        let yy = y(ns);
        let _ = writeln!(
            s,
            "<line x1='{left}' x2='{}' y1='{yy:.1}' y2='{yy:.1}' stroke='#ddd'/>\
             <text x='{}' y='{:.1}' text-anchor='end'>{}</text>",
            left + width,
            left - 6.0,
            yy + 4.0,
            esc(&decade(ns))
        );
    }
    for (g, name) in OPS.iter().enumerate() {
        let x0 = left + g as f64 * group + group * 0.1;
        for (e, run) in runs.iter().enumerate() {
            let Some(op) = run.ops.iter().find(|o| o.name == *name) else {
                continue;
            };
            for (k, (ns, color)) in [(op.p50, colors[e].0), (op.p99, colors[e].1)]
                .into_iter()
                .enumerate()
            {
                let x = x0 + (2 * e + k) as f64 * bar;
                let yy = y(ns);
                let _ = writeln!(
                    s,
                    "<rect x='{x:.1}' y='{yy:.1}' width='{:.1}' height='{:.1}' fill='{color}'>\
                     <title>{} {} {}: {}</title></rect>",
                    bar - 1.0,
                    top + height - yy,
                    run.engine,
                    name,
                    if k == 0 { "p50" } else { "p99" },
                    esc(&fmt_ns(ns))
                );
            }
        }
        let _ = writeln!(
            s,
            "<text x='{:.1}' y='{}' text-anchor='middle'>{name}</text>",
            left + (g as f64 + 0.5) * group,
            top + height + 18.0
        );
    }
    let mut lx = left;
    for (e, run) in runs.iter().enumerate() {
        for (k, label) in ["p50", "p99"].iter().enumerate() {
            let color = if k == 0 { colors[e].0 } else { colors[e].1 };
            let _ = writeln!(
                s,
                "<rect x='{lx}' y='{}' width='12' height='12' fill='{color}'/>\
                 <text x='{}' y='{}'>{} {label}</text>",
                top + height + 40.0,
                lx + 16.0,
                top + height + 50.0,
                run.engine
            );
            lx += 130.0;
        }
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_have_three_digits() {
        assert_eq!(fmt_ns(950), "950 ns");
        assert_eq!(fmt_ns(2_290), "2.29 µs");
        assert_eq!(fmt_ns(12_700), "12.7 µs");
        assert_eq!(fmt_ns(166_000_000), "166 ms");
        assert_eq!(fmt_ns(1_500_000_000), "1.50 s");
        assert_eq!(fmt_rate(241_858.4), "241,858");
        assert_eq!(fmt_rate(12.34), "12.3");
        assert_eq!(decade(10_000), "10 µs");
        assert_eq!(decade(1_000_000_000), "1 s");
    }
}
