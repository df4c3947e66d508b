//! The benchmark report: `cargo bench --bench report -- [N]` (default 1,000,000).
//!
//! Builds `datagen::population(1, N)`, loads it into iotdisco (register + claim,
//! register one by one, and `register_batch`), into SQLite (an in-memory EAV
//! table plus a `things` table, see `baseline/sqlite.rs`) and into the naive
//! `Vec`, checks that all three answer every standard query identically (first
//! page of 20 in thing order, each thing with its owner, JID, node address and
//! tags except `KEY` in registration order, + `more`), times each query per
//! engine (median; every engine builds that owned page inside the timing),
//! measures memory, and prints a markdown table with PASS/FAIL per floor. The
//! same data goes to `target/bench-report.json`. Q6 (`strRegEx`) runs on the
//! same data; Q7 (`nameWildcard` over 20 numeric tag names) on
//! `baseline::population_with_temps`, loaded into a second set of engines
//! after the first is dropped.

#[path = "baseline/mod.rs"]
mod baseline;

use baseline::measure::{Timing, command_output, cpu_model, fmt_dur, measure, median, verdict};

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use baseline::naive::{self, Naive};
use baseline::sqlite::{self, LoadTiming, Sqlite};
use baseline::{Answer, iotdisco_answer};
use iotdisco::datagen::{self, GenThing};
use iotdisco::query::{NameMask, Operator, Regex};
use iotdisco::tag::Number;
use iotdisco::{Config, NodeAddress, Register, RegisterOutcome, Registry, Search, TagName};

/// Query floors: iotdisco must be at least this many times faster than SQLite.
const QUERY_FLOORS: [(&str, f64); 7] = [
    ("Q1", 3000.0),
    ("Q2", 20.0),
    ("Q3", 1500.0),
    ("Q4", 3000.0),
    ("Q5", 100.0),
    ("Q6", 100.0),
    ("Q7", 100.0),
];
/// Registration must be at least this many times SQLite's bulk load rate.
const REGISTER_FLOOR: f64 = 3.0;
/// Bytes per thing at most.
const MEMORY_FLOOR: f64 = 400.0;

fn median_load(mut v: Vec<LoadTiming>) -> LoadTiming {
    v.sort_by_key(LoadTiming::total);
    v[v.len() / 2]
}

fn fmt_ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}x")
    } else {
        format!("{r:.1}x")
    }
}

fn fmt_count(n: f64) -> String {
    let s = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Resident set size in bytes (`/proc/self/statm`, 4 KiB pages).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn log(msg: &str) {
    eprintln!("[report] {msg}");
}

/// Registers every thing (no claim) into a fresh registry, timed.
fn register_only(pop: &[GenThing]) -> Duration {
    let reg = Registry::new(Config::default());
    let t = Instant::now();
    for g in pop {
        reg.register(
            &g.jid,
            Register {
                node: NodeAddress::default(),
                tags: g.tags.clone(),
                self_owned: false,
            },
        )
        .expect("register");
    }
    let d = t.elapsed();
    assert_eq!(reg.len(), pop.len());
    d
}

/// Registers every thing (no claim) into a fresh registry with one
/// `register_batch` call, timed; the requests are built before the timer.
fn register_batch_only(pop: &[GenThing]) -> Duration {
    let reg = Registry::new(Config::default());
    let requests = baseline::batch_requests(pop);
    let t = Instant::now();
    let outcomes = reg.register_batch(requests);
    let d = t.elapsed();
    assert_eq!(outcomes.len(), pop.len());
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Ok(RegisterOutcome::Registered))),
        "register_batch refused a thing"
    );
    assert_eq!(reg.len(), pop.len());
    d
}

struct QueryRow {
    name: &'static str,
    /// The search: page identified (thing handles + JIDs) plus `more`.
    iot: Timing,
    naive: Timing,
    sql: Timing,
    /// The search plus the page built as owned values.
    iot_page: Timing,
    naive_page: Timing,
    sql_page: Timing,
    hits: u64,
    floor: f64,
    agree: bool,
    answer: Answer,
}

impl QueryRow {
    fn vs_naive(&self) -> f64 {
        self.naive.median.as_secs_f64() / self.iot.median.as_secs_f64()
    }
    fn vs_sql(&self) -> f64 {
        self.sql.median.as_secs_f64() / self.iot.median.as_secs_f64()
    }
    fn pass(&self) -> bool {
        self.agree && self.vs_sql() >= self.floor && self.vs_naive() > 1.0
    }
}

fn loud(msg: &str) {
    let bar = "!".repeat(78);
    eprintln!("\n{bar}\n!!! MISMATCH: {msg}\n{bar}\n");
}

/// Q6: `strRegEx` `SN` `^3948[0-9]*7$` AND `MAN = www.ktc.se` (issue 7).
fn q6() -> Search {
    let name = |n: &str| TagName::new(n).expect("valid name");
    Search {
        operators: vec![
            Operator::StrRegEx(name("SN"), Regex::new("^3948[0-9]*7$").expect("regex")),
            Operator::StrEq(name("MAN"), "www.ktc.se".into()),
        ],
        offset: 0,
        max_count: Some(baseline::PAGE as u32),
    }
}

/// Q7: `nameWildcard`: `numGt` 38 over the 20 tags `TEMP*` (issue 7).
fn q7() -> Search {
    Search {
        operators: vec![Operator::any_name(
            NameMask::new("TEMP*", "*").expect("name mask"),
            Operator::NumGt(
                TagName::new("TEMP").expect("valid name"),
                Number::new(38.0, "TEMP").expect("finite"),
            ),
        )],
        offset: 0,
        max_count: Some(baseline::PAGE as u32),
    }
}

/// Runs one query on the three engines: checks their answers agree and times
/// the search and the owned page.
#[allow(clippy::too_many_arguments)]
fn query_row(
    name: &'static str,
    search: &Search,
    reg: &Registry,
    naive: &Naive,
    db: &Sqlite,
    mismatches: &mut Vec<String>,
    plans: &mut Vec<(String, Vec<String>)>,
) -> QueryRow {
    assert_eq!(search.offset, 0);
    assert_eq!(search.max_count, Some(baseline::PAGE as u32));
    let floor = QUERY_FLOORS
        .iter()
        .find(|(q, _)| *q == name)
        .map_or(0.0, |f| f.1);
    let sq = sqlite::query_of(&search.operators);
    let plan = db.explain(&sq);
    log(&format!("{name}: SQLite plan: {}", plan.join(" / ")));
    plans.push((name.to_string(), plan));

    let a_iot = iotdisco_answer(reg, search);
    let a_naive = Answer::of_result(&naive.first_page(&search.operators));
    let r_sql = db.run(&sq);
    let a_sql = r_sql.page.answer();
    let hits = naive.count(&search.operators);
    let naive_ids = a_naive.ids();
    let mut agree = true;
    let mut mismatch = |m: String| {
        agree = false;
        loud(&m);
        mismatches.push(m);
    };
    if a_iot != a_naive {
        mismatch(format!(
            "{name}: iotdisco page {:?} != naive page {naive_ids:?}: {}",
            a_iot.ids(),
            a_iot.first_difference(&a_naive)
        ));
    }
    if a_sql != a_naive {
        mismatch(format!(
            "{name}: SQLite page {:?} != naive page {naive_ids:?}: {}",
            a_sql.ids(),
            a_sql.first_difference(&a_naive)
        ));
    }
    let sql_ids: Vec<u32> = r_sql.ids.iter().map(|&i| i as u32).collect();
    if sql_ids != naive_ids || a_sql.ids() != sql_ids {
        mismatch(format!(
            "{name}: SQLite page query {sql_ids:?}, fetched {:?}, naive {naive_ids:?}",
            a_sql.ids()
        ));
    }
    if r_sql.count != hits || (r_sql.count > baseline::PAGE as u64) != r_sql.page.more {
        mismatch(format!(
            "{name}: SQLite COUNT(*) {} vs naive hits {hits} (more = {})",
            r_sql.count, r_sql.page.more
        ));
    }
    if (hits > baseline::PAGE as u64) != a_naive.more
        || naive_ids.len() as u64 != hits.min(baseline::PAGE as u64)
        || naive_ids.windows(2).any(|w| w[0] >= w[1])
        || a_naive
            .things
            .iter()
            .any(|t| t.tags.iter().any(|(n, _)| n == "KEY"))
    {
        mismatch(format!(
            "{name}: naive page {naive_ids:?} (more = {}) inconsistent with {hits} hits",
            a_naive.more
        ));
    }
    // The search itself: each engine identifies the page and `more` in its
    // native form (iotdisco: borrowed record views, JIDs read; naive: thing
    // numbers, JIDs read; SQLite: the INTERSECT page + COUNT of the issue).
    let iot_search = |reg: &Registry| {
        reg.search_with(search, |p| {
            let jids: Vec<&str> = p.things().map(|t| t.jid()).collect();
            (
                jids.iter().map(|j| j.len()).sum::<usize>(),
                jids.len(),
                p.more(),
            )
        })
        .expect("search")
    };
    let (_, iot_len, iot_more) = iot_search(reg);
    let (nv_ids, nv_more, _) = naive.first_page_ids(&search.operators);
    let (sql_ids, sql_more, _) = db.run_ids(&sq);
    if iot_len != nv_ids.len()
        || iot_more != nv_more
        || sql_more != nv_more
        || sql_ids.iter().map(|&i| i as u32).collect::<Vec<_>>() != nv_ids
    {
        mismatch(format!("{name}: search-level pages differ"));
    }
    log(&format!(
        "{name}: {hits} hits, page of {} (more = {}, {} tags), engines agree: {agree}",
        naive_ids.len(),
        a_naive.more,
        a_naive.things.iter().map(|t| t.tags.len()).sum::<usize>()
    ));

    let iot = measure(|| iot_search(reg));
    let nv = measure(|| naive.first_page_ids(&search.operators));
    let sql = measure(|| db.run_ids(&sq));
    log(&format!(
        "{name} (search): iotdisco {} ({} runs), naive {} ({} runs), SQLite {} ({} runs)",
        fmt_dur(iot.median),
        iot.runs,
        fmt_dur(nv.median),
        nv.runs,
        fmt_dur(sql.median),
        sql.runs
    ));
    let iot_page = measure(|| reg.search(search).expect("search"));
    let naive_page = measure(|| naive.first_page(&search.operators));
    let sql_page = measure(|| db.run(&sq));
    log(&format!(
        "{name} (owned page): iotdisco {} ({} runs), naive {} ({} runs), SQLite {} ({} runs)",
        fmt_dur(iot_page.median),
        iot_page.runs,
        fmt_dur(naive_page.median),
        naive_page.runs,
        fmt_dur(sql_page.median),
        sql_page.runs
    ));
    QueryRow {
        name,
        iot,
        naive: nv,
        sql,
        iot_page,
        naive_page,
        sql_page,
        hits,
        floor,
        agree,
        answer: a_naive,
    }
}

fn main() {
    let user_args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let n: u64 = user_args
        .iter()
        .find(|a| !a.starts_with('-'))
        .map(|a| {
            a.replace(['_', ','], "")
                .parse()
                .expect("N must be a number")
        })
        .unwrap_or(1_000_000);
    let reps: usize = std::env::var("IOTDISCO_REPORT_LOAD_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let command = if user_args.is_empty() {
        "cargo bench --bench report".to_string()
    } else {
        format!("cargo bench --bench report -- {}", user_args.join(" "))
    };
    naive::self_check();
    sqlite::self_check();
    let nproc = std::thread::available_parallelism().map_or(0, |p| p.get());
    let cpu = cpu_model();
    let date = command_output("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"]);
    let sqlite_version = rusqlite::version();
    let mut mismatches: Vec<String> = Vec::new();

    // --- Population (not timed as part of any engine). -----------------------
    log(&format!("generating {n} things"));
    let t = Instant::now();
    let pop: Vec<GenThing> = baseline::population(n);
    log(&format!("generated in {}", fmt_dur(t.elapsed())));
    let rows_per_thing = pop.iter().map(|g| g.tags.len()).sum::<usize>() as f64 / n as f64;

    // --- iotdisco: register + claim, with RSS before and after. --------------
    // Every load is repeated `reps` times into a fresh registry / database and
    // the median is reported (the machine is shared); the first registry and the
    // last SQLite database are kept for the queries.
    log(&format!(
        "iotdisco: register + claim every thing (datagen::install), {reps} times"
    ));
    let rss0 = rss_bytes();
    let reg = Registry::new(Config::default());
    let t = Instant::now();
    baseline::install_all(&reg, &pop);
    let mut installs = vec![t.elapsed()];
    let rss1 = rss_bytes();
    let stats = reg.stats();
    assert_eq!(stats.things as u64, n);
    assert_eq!(stats.searchable, n);
    log(&format!("installed in {}", fmt_dur(installs[0])));
    for _ in 1..reps {
        let again = Registry::new(Config::default());
        let t = Instant::now();
        baseline::install_all(&again, &pop);
        installs.push(t.elapsed());
        log(&format!("installed in {}", fmt_dur(t.elapsed())));
    }
    let install = median(installs);

    log(&format!(
        "iotdisco: register only, into a fresh registry, {reps} times"
    ));
    let register = median(
        (0..reps)
            .map(|_| {
                let d = register_only(&pop);
                log(&format!("registered in {}", fmt_dur(d)));
                d
            })
            .collect(),
    );

    log(&format!(
        "iotdisco: register_batch (one call), into a fresh registry, {reps} times"
    ));
    let batch = median(
        (0..reps)
            .map(|_| {
                let d = register_batch_only(&pop);
                log(&format!("batch-registered in {}", fmt_dur(d)));
                d
            })
            .collect(),
    );

    // --- SQLite: both ways of bulk loading; keep the last. -------------------
    log(&format!(
        "SQLite: indexes first, then one-transaction insert, {reps} times"
    ));
    let mut db_bytes_indexed = 0;
    let mut loads = Vec::new();
    for _ in 0..reps {
        let (db, t) = Sqlite::load(&pop, true);
        db_bytes_indexed = db.db_bytes();
        log(&format!("loaded in {}", fmt_dur(t.total())));
        loads.push(t);
    }
    let sql_indexed = median_load(loads);
    log(&format!(
        "SQLite: one-transaction insert into the bare table, then CREATE INDEX, {reps} times"
    ));
    let mut kept = None;
    let mut loads = Vec::new();
    for _ in 0..reps {
        drop(kept.take());
        let (db, t) = Sqlite::load(&pop, false);
        log(&format!(
            "loaded in {} (insert {} + index {})",
            fmt_dur(t.total()),
            fmt_dur(t.insert),
            fmt_dur(t.index)
        ));
        kept = Some(db);
        loads.push(t);
    }
    let db = kept.expect("at least one load");
    let db_bytes = db.db_bytes();
    let sql_bulk = median_load(loads);
    let best_sql: LoadTiming = if sql_bulk.total() <= sql_indexed.total() {
        sql_bulk
    } else {
        sql_indexed
    };

    // --- Naive. ---------------------------------------------------------------
    log("naive: copying every thing's JID, owner and tags");
    let naive = Naive::build(&pop);
    drop(pop);

    // --- Queries. ---------------------------------------------------------------
    let mut rows: Vec<QueryRow> = Vec::new();
    let mut plans: Vec<(String, Vec<String>)> = Vec::new();
    let fetch_plan = db.explain_fetch();
    log(&format!(
        "SQLite plan for fetching a page's things: {}",
        fetch_plan.join(" / ")
    ));
    let mut queries: Vec<(&'static str, Search)> = datagen::standard_queries();
    queries.push(("Q6", q6()));
    for (name, search) in queries {
        let row = query_row(
            name,
            &search,
            &reg,
            &naive,
            &db,
            &mut mismatches,
            &mut plans,
        );
        rows.push(row);
    }
    // Q7 needs tags the standard population does not have: its own population
    // (the same things, twenty numeric TEMPn tags on every tenth), loaded into
    // a second registry, SQLite database and naive table.
    drop((reg, naive, db));
    log("Q7: loading the population with TEMP0..TEMP19 into all three engines");
    let pop7 = baseline::population_with_temps(n);
    let reg7 = Registry::new(Config::default());
    baseline::install_all(&reg7, &pop7);
    let (db7, _) = Sqlite::load(&pop7, false);
    let naive7 = Naive::build(&pop7);
    drop(pop7);
    let row = query_row(
        "Q7",
        &q7(),
        &reg7,
        &naive7,
        &db7,
        &mut mismatches,
        &mut plans,
    );
    rows.push(row);

    // --- Derived numbers. -----------------------------------------------------------
    let nf = n as f64;
    let per_s = |count: f64, d: Duration| count / d.as_secs_f64();
    let install_tps = per_s(nf, install);
    let register_tps = per_s(nf, register);
    let sql_best_tps = per_s(nf, best_sql.total());
    let register_ratio = register_tps / sql_best_tps;
    let batch_tps = per_s(nf, batch);
    let batch_ratio = batch_tps / sql_best_tps;
    let install_ratio = install_tps / sql_best_tps;
    let stats_bpt = (stats.record_bytes + stats.index_bytes) as f64 / nf;
    let rss_bpt = rss1.saturating_sub(rss0) as f64 / nf;
    let sql_bpt = db_bytes as f64 / nf;
    let sql_indexed_bpt = db_bytes_indexed as f64 / nf;

    // --- Markdown. --------------------------------------------------------------
    let mut md = String::new();
    let _ = writeln!(md, "## iotdisco benchmark report");
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "Machine: {nproc} cores (nproc), {cpu}; date: {date}; N = {}; SQLite {sqlite_version} (in-memory database); command: `{command}`",
        fmt_count(nf)
    );
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "**Search** (the floors): every engine answers the first page of 20 matches in thing order plus `more`, in its native form: iotdisco `Registry::search_with` (borrowed record views, each JID read), the naive scan thing numbers (each JID read), SQLite the `INTERSECT ... ORDER BY thing LIMIT 21` page query AND the `COUNT(*)` over the same intersection (the issue's definition). **Owned page** (second table): the same plus the page built as owned values inside the timing: per thing its owner, JID, node address and every tag except KEY (name and value, registration order); iotdisco `Registry::search`, naive clones from its structs, SQLite a third `things JOIN tag ... WHERE thing IN (page)` fetch; the three pages are checked equal in full. Query times: medians over >= 50 runs (>= 5 when a run takes more than 40 ms). Load times: median of {reps} loads into a fresh registry / database."
    );
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "Q1-Q5: `datagen::standard_queries`. Q6 (issue 7): `strRegEx` `SN` `^3948[0-9]*7$` AND `MAN = www.ktc.se` (SQLite: `s REGEXP ?`, a `regexp` function over the `regex` crate). Q7 (issue 7): `numGt 38` with `nameWildcard` over `TEMP*` (20 tag names), on its own population: the same things with twenty numeric tags `TEMP0`..`TEMP19` on every tenth, loaded into a second registry, database and naive table (SQLite: `SELECT DISTINCT thing FROM tag WHERE name LIKE 'TEMP%' AND name <> 'KEY' AND n > ?`)."
    );
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "| search | iotdisco median | naive median | SQLite median | ratio vs naive | ratio vs SQLite | hits | floor | verdict |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---|---|");
    for r in &rows {
        let mut why = Vec::new();
        if !r.agree {
            why.push("engines disagree".to_string());
        }
        if r.vs_sql() < r.floor {
            why.push(format!(
                "{} < {}",
                fmt_ratio(r.vs_sql()),
                fmt_ratio(r.floor)
            ));
        }
        if r.vs_naive() <= 1.0 {
            why.push("not faster than naive".to_string());
        }
        let v = if why.is_empty() {
            "PASS".to_string()
        } else {
            format!("FAIL ({})", why.join("; "))
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | >= {} SQLite, > 1x naive | {} |",
            r.name,
            fmt_dur(r.iot.median),
            fmt_dur(r.naive.median),
            fmt_dur(r.sql.median),
            fmt_ratio(r.vs_naive()),
            fmt_ratio(r.vs_sql()),
            fmt_count(r.hits as f64),
            fmt_ratio(r.floor),
            v
        );
    }
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "| owned page (info) | iotdisco median | naive median | SQLite median | ratio vs naive | ratio vs SQLite |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|");
    for r in &rows {
        let ratio = |a: &Timing, b: &Timing| b.median.as_secs_f64() / a.median.as_secs_f64();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            r.name,
            fmt_dur(r.iot_page.median),
            fmt_dur(r.naive_page.median),
            fmt_dur(r.sql_page.median),
            fmt_ratio(ratio(&r.iot_page, &r.naive_page)),
            fmt_ratio(ratio(&r.iot_page, &r.sql_page)),
        );
    }
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "| registration | time | things/s | rows/s | vs best SQLite load | floor | verdict |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---|---|");
    let _ = writeln!(
        md,
        "| iotdisco `register_batch`, one call for all {} things (requests built before the timer) | {} | {} | - | {} | >= {} (the registration floor is judged on this row) | {} |",
        fmt_count(nf),
        fmt_dur(batch),
        fmt_count(batch_tps),
        fmt_ratio(batch_ratio),
        fmt_ratio(REGISTER_FLOOR),
        verdict(batch_ratio >= REGISTER_FLOOR)
    );
    let would = |r: f64| {
        if r >= REGISTER_FLOOR {
            "would pass"
        } else {
            "would fail"
        }
    };
    let _ = writeln!(
        md,
        "| iotdisco `register` one by one (tags cloned inside the timer) | {} | {} | - | {} | (info) | {} |",
        fmt_dur(register),
        fmt_count(register_tps),
        fmt_ratio(register_ratio),
        would(register_ratio)
    );
    let _ = writeln!(
        md,
        "| iotdisco `register` + `claim` one by one (datagen::install) | {} | {} | - | {} | (info) | {} |",
        fmt_dur(install),
        fmt_count(install_tps),
        fmt_ratio(install_ratio),
        would(install_ratio)
    );
    let sql_row = |md: &mut String, label: &str, d: Duration, best: bool| {
        let _ = writeln!(
            md,
            "| {label}{} | {} | {} | {} | - | - | - |",
            if best { " **(best)**" } else { "" },
            fmt_dur(d),
            fmt_count(per_s(nf, d)),
            fmt_count(per_s(sql_bulk.rows as f64, d)),
        );
    };
    let bulk_best = sql_bulk.total() <= sql_indexed.total();
    sql_row(
        &mut md,
        &format!(
            "SQLite insert {} tag rows + {} things rows into the bare tables + CREATE INDEX (3) after, one txn",
            fmt_count(sql_bulk.rows as f64),
            fmt_count(sql_bulk.things as f64)
        ),
        sql_bulk.total(),
        bulk_best,
    );
    sql_row(
        &mut md,
        "SQLite insert into the indexed tables, one txn",
        sql_indexed.total(),
        !bulk_best,
    );
    sql_row(
        &mut md,
        "(info) SQLite insert into the bare tables alone, no indexes",
        sql_bulk.insert,
        false,
    );
    let _ = writeln!(md);
    let _ = writeln!(md, "| memory | bytes/thing | floor | verdict |");
    let _ = writeln!(md, "|---|---:|---|---|");
    let _ = writeln!(
        md,
        "| iotdisco `stats()` record_bytes + index_bytes ({:.0} + {:.0}) | {:.0} | <= {MEMORY_FLOOR:.0} | {} |",
        stats.record_bytes as f64 / nf,
        stats.index_bytes as f64 / nf,
        stats_bpt,
        verdict(stats_bpt <= MEMORY_FLOOR)
    );
    let _ = writeln!(
        md,
        "| iotdisco process RSS growth while loading (/proc/self/statm) | {:.0} | <= {MEMORY_FLOOR:.0} | {} |",
        rss_bpt,
        verdict(rss_bpt <= MEMORY_FLOOR)
    );
    let _ = writeln!(
        md,
        "| SQLite page_count * page_size, indexes built after insert ({rows_per_thing:.0} rows/thing) | {sql_bpt:.0} | (info) | - |"
    );
    let _ = writeln!(
        md,
        "| SQLite page_count * page_size, indexes before insert | {sql_indexed_bpt:.0} | (info) | - |"
    );
    let all_pass = rows.iter().all(QueryRow::pass)
        && batch_ratio >= REGISTER_FLOOR
        && stats_bpt <= MEMORY_FLOOR
        && rss_bpt <= MEMORY_FLOOR
        && mismatches.is_empty();
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "Overall: {}{}",
        verdict(all_pass),
        if mismatches.is_empty() {
            String::new()
        } else {
            format!(" — {} ENGINE MISMATCH(ES)", mismatches.len())
        }
    );
    println!("{md}");

    // --- JSON. --------------------------------------------------------------------
    let mut js = String::from("{\n");
    let _ = writeln!(js, "  \"command\": {},", json_str(&command));
    let _ = writeln!(js, "  \"date\": {},", json_str(&date));
    let _ = writeln!(js, "  \"nproc\": {nproc},");
    let _ = writeln!(js, "  \"cpu\": {},", json_str(&cpu));
    let _ = writeln!(js, "  \"things\": {n},");
    let _ = writeln!(js, "  \"load_repetitions\": {reps},");
    let _ = writeln!(js, "  \"sqlite_version\": {},", json_str(sqlite_version));
    let _ = writeln!(js, "  \"sqlite_database\": \"in-memory\",");
    let _ = writeln!(
        js,
        "  \"sqlite_fetch_plan\": [{}],",
        fetch_plan
            .iter()
            .map(|p| json_str(p))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(js, "  \"queries\": [");
    for (i, r) in rows.iter().enumerate() {
        let plan = plans
            .iter()
            .find(|(q, _)| q == r.name)
            .map(|(_, p)| p.iter().map(|s| json_str(s)).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        let _ = writeln!(
            js,
            "    {{\"query\": {}, \"iotdisco_median_ns\": {}, \"naive_median_ns\": {}, \"sqlite_median_ns\": {}, \"iotdisco_runs\": {}, \"naive_runs\": {}, \"sqlite_runs\": {}, \"ratio_vs_naive\": {:.3}, \"ratio_vs_sqlite\": {:.3}, \"hits\": {}, \"page\": {:?}, \"more\": {}, \"engines_agree\": {}, \"floor_vs_sqlite\": {}, \"pass\": {}, \"sqlite_plan\": [{}]}}{}",
            json_str(r.name),
            r.iot.median.as_nanos(),
            r.naive.median.as_nanos(),
            r.sql.median.as_nanos(),
            r.iot.runs,
            r.naive.runs,
            r.sql.runs,
            r.vs_naive(),
            r.vs_sql(),
            r.hits,
            r.answer.ids(),
            r.answer.more,
            r.agree,
            r.floor,
            r.pass(),
            plan,
            if i + 1 < rows.len() { "," } else { "" }
        );
    }
    let _ = writeln!(js, "  ],");
    let _ = writeln!(js, "  \"registration\": {{");
    let _ = writeln!(
        js,
        "    \"iotdisco_register_only_s\": {:.6},",
        register.as_secs_f64()
    );
    let _ = writeln!(
        js,
        "    \"iotdisco_register_only_things_per_s\": {register_tps:.1},"
    );
    let _ = writeln!(
        js,
        "    \"iotdisco_register_batch_s\": {:.6},",
        batch.as_secs_f64()
    );
    let _ = writeln!(
        js,
        "    \"iotdisco_register_batch_things_per_s\": {batch_tps:.1},"
    );
    let _ = writeln!(
        js,
        "    \"iotdisco_install_s\": {:.6},",
        install.as_secs_f64()
    );
    let _ = writeln!(
        js,
        "    \"iotdisco_install_things_per_s\": {install_tps:.1},"
    );
    let _ = writeln!(js, "    \"sqlite_rows\": {},", sql_bulk.rows);
    let _ = writeln!(
        js,
        "    \"sqlite_bare_insert_s\": {:.6},",
        sql_bulk.insert.as_secs_f64()
    );
    let _ = writeln!(
        js,
        "    \"sqlite_create_index_s\": {:.6},",
        sql_bulk.index.as_secs_f64()
    );
    let _ = writeln!(
        js,
        "    \"sqlite_indexed_insert_s\": {:.6},",
        sql_indexed.insert.as_secs_f64()
    );
    let _ = writeln!(
        js,
        "    \"sqlite_best_load_things_per_s\": {sql_best_tps:.1},"
    );
    let _ = writeln!(
        js,
        "    \"sqlite_best_load_rows_per_s\": {:.1},",
        per_s(sql_bulk.rows as f64, best_sql.total())
    );
    let _ = writeln!(js, "    \"sqlite_things_rows\": {},", sql_bulk.things);
    let _ = writeln!(js, "    \"register_ratio_vs_sqlite\": {register_ratio:.3},");
    let _ = writeln!(
        js,
        "    \"register_batch_ratio_vs_sqlite\": {batch_ratio:.3},"
    );
    let _ = writeln!(js, "    \"install_ratio_vs_sqlite\": {install_ratio:.3},");
    let _ = writeln!(js, "    \"floor\": {REGISTER_FLOOR},");
    let _ = writeln!(js, "    \"floor_judged_on\": \"register_batch\",");
    let _ = writeln!(js, "    \"pass\": {}", batch_ratio >= REGISTER_FLOOR);
    let _ = writeln!(js, "  }},");
    let _ = writeln!(js, "  \"memory\": {{");
    let _ = writeln!(js, "    \"record_bytes\": {},", stats.record_bytes);
    let _ = writeln!(js, "    \"index_bytes\": {},", stats.index_bytes);
    let _ = writeln!(js, "    \"stats_bytes_per_thing\": {stats_bpt:.1},");
    let _ = writeln!(
        js,
        "    \"rss_growth_bytes\": {},",
        rss1.saturating_sub(rss0)
    );
    let _ = writeln!(js, "    \"rss_bytes_per_thing\": {rss_bpt:.1},");
    let _ = writeln!(js, "    \"sqlite_db_bytes\": {db_bytes},");
    let _ = writeln!(js, "    \"sqlite_bytes_per_thing\": {sql_bpt:.1},");
    let _ = writeln!(
        js,
        "    \"sqlite_indexed_first_db_bytes\": {db_bytes_indexed},"
    );
    let _ = writeln!(js, "    \"floor\": {MEMORY_FLOOR},");
    let _ = writeln!(js, "    \"stats_pass\": {},", stats_bpt <= MEMORY_FLOOR);
    let _ = writeln!(js, "    \"rss_pass\": {}", rss_bpt <= MEMORY_FLOOR);
    let _ = writeln!(js, "  }},");
    let _ = writeln!(
        js,
        "  \"mismatches\": [{}],",
        mismatches
            .iter()
            .map(|m| json_str(m))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(js, "  \"markdown\": {},", json_str(&md));
    let _ = writeln!(js, "  \"pass\": {all_pass}");
    js.push_str("}\n");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/target/bench-report.json");
    match std::fs::write(path, js) {
        Ok(()) => log(&format!("wrote {path}")),
        Err(e) => log(&format!("could not write {path}: {e}")),
    }

    if !mismatches.is_empty() {
        loud(&format!(
            "{} engine mismatch(es); the timings above compare different answers",
            mismatches.len()
        ));
        std::process::exit(2);
    }
}
