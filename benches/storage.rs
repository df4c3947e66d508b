//! The storage benchmark: `cargo bench --bench storage -- [N]` (or env
//! `IOTDISCO_BENCH_THINGS`; default 1,000,000).
//!
//! Everything happens in a temporary directory under `target/` (removed at the
//! end). The report is a markdown table on stdout with PASS/FAIL per floor:
//!
//! 1. **Cold open.** Builds a sled database of `datagen::population(1, N)`
//!    (register + claim public, `datagen::install`) with
//!    `Durability::GroupCommit(10)`, drops the registry (sled flushes on drop),
//!    then times `Registry::open` (records loaded, indexes rebuilt) three times,
//!    each in a fresh process of this binary (`--child open`); the median is
//!    judged against 3 s at 1M (scaled linearly for other N). The OS page cache
//!    is warm (no cache drop). Three more opens in the bench process, after every
//!    registry was dropped, are reported for information. Where the time goes is
//!    measured piece by piece on one thread in another fresh process
//!    (`--child parts`): sled's own open, the iteration over the `things` tree,
//!    the rkyv validation and decoding, the field checks of `record::decode`,
//!    and the rebuild of records and indexes (`Registry::with_store` on records
//!    already decoded). The process CPU time of each open and the load average
//!    are printed (the machine may be shared). Disk use:
//!    the sum of the directory's file sizes (apparent and allocated) and sled's
//!    `size_on_disk`, next to the SQLite EAV baseline of the same population
//!    (`baseline/sqlite.rs`: tables, indexes built after the insert) written to
//!    a file with `VACUUM INTO`.
//! 2. **Durable registrations.** Single `register` calls of new things (datagen
//!    things N, N+1, ...; requests built before the timer) on the reopened
//!    registry: `Durability::Flush` with 1, 2 and 8 threads (concurrent writers
//!    share sled's flushes), then `Durability::GroupCommit(10)` with 1 thread
//!    (the floor: at least 20,000 registrations/s) and 2 threads. The registry is
//!    then dropped and reopened, and every acknowledged registration must be
//!    there.
//! 3. **Search after reopening.** Q1-Q5 (`datagen::standard_queries`) timed
//!    with `Registry::search_with` as `report.rs` does (page identified, each JID
//!    read; median) on the reopened registry, on an in-memory registry installed
//!    in datagen order (what `report.rs` measures) and on an in-memory registry
//!    restored in the reopened registry's order. Answers: every match (paged
//!    through in full, owner, JID, node and tags) must be the same set on all
//!    three, and the first page must be identical between the reopened registry
//!    and the in-memory registry of the same order. Floor: the reopened
//!    registry's median at most 1.25x the in-memory one.

#[path = "baseline/mod.rs"]
mod baseline;

use baseline::measure::{Timing, command_output, cpu_model, fmt_dur, measure, median, verdict};

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use baseline::sqlite::Sqlite;
use baseline::{Answer, PageThing};
use iotdisco::datagen::{self, GenThing};
use iotdisco::store::record::{self, StoredRecord};
use iotdisco::store::sled::{Durability, SledStore};
use iotdisco::store::{Store, StoreError};
use iotdisco::{Config, Jid, Register, RegisterOutcome, Registry, Search, ThingKey, ThingRecord};

/// `Registry::open` median at 1M things must be under this (scaled with N).
const OPEN_FLOOR_S_AT_1M: f64 = 3.0;
/// Group-commit registrations per second at least (one thread).
const GROUP_FLOOR: f64 = 20_000.0;
/// The reopened registry's search median at most this times the in-memory one.
const SEARCH_TOLERANCE: f64 = 1.25;
/// The group-commit window.
const WINDOW_MS: u64 = 10;
/// Timed `Registry::open`s.
const OPENS: usize = 3;
/// Measurement rounds per query and registry (alternating).
const SEARCH_ROUNDS: usize = 4;

// --- Formatting (measuring is in baseline::measure). ------------------------

fn fmt_count(n: f64) -> String {
    let s = format!("{n:.0}");
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn fmt_mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// CPU time (user + system) of this process so far, in milliseconds
/// (`/proc/self/stat`, 100 ticks per second).
fn cpu_ms() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (tick(11) + tick(12)) * 10
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn log(msg: &str) {
    eprintln!("[storage] {msg}");
}

fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace(['_', ','], "").parse().ok())
        .unwrap_or(default)
}

// --- Disk use. --------------------------------------------------------------------

/// (sum of file lengths, sum of allocated blocks in bytes, files) under `dir`.
fn dir_size(dir: &Path) -> (u64, u64, u64) {
    let mut total = (0, 0, 0);
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let meta = entry.metadata().expect("metadata");
        if meta.is_dir() {
            let (a, b, c) = dir_size(&entry.path());
            total = (total.0 + a, total.1 + b, total.2 + c);
        } else {
            total = (
                total.0 + meta.len(),
                total.1 + meta.blocks() * 512,
                total.2 + 1,
            );
        }
    }
    total
}

// --- Stores used to split the open into its parts. -------------------------------

/// Hands out records decoded beforehand, once, and ignores writes: with it
/// `Registry::with_store` times only the rebuild of records and indexes, and it
/// gives an in-memory registry in a chosen thing order.
struct Preloaded(Mutex<Vec<ThingRecord>>);

impl Store for Preloaded {
    fn load(&self) -> Result<Vec<ThingRecord>, StoreError> {
        Ok(std::mem::take(&mut *self.0.lock().expect("lock")))
    }
    fn put(&self, _: &ThingRecord) -> Result<(), StoreError> {
        Ok(())
    }
    fn delete(&self, _: &ThingKey) -> Result<(), StoreError> {
        Ok(())
    }
    fn load_undelivered(&self) -> Result<Vec<iotdisco::store::Undelivered>, StoreError> {
        Ok(Vec::new())
    }
    fn put_undelivered(&self, _: &iotdisco::store::Undelivered) -> Result<(), StoreError> {
        Ok(())
    }
    fn delete_undelivered(&self, _: &ThingKey) -> Result<(), StoreError> {
        Ok(())
    }
}

fn preloaded(records: Vec<ThingRecord>) -> Registry {
    Registry::with_store(Config::default(), Box::new(Preloaded(Mutex::new(records))))
        .expect("restore")
}

/// The parts of an open, measured one by one on the same database.
struct OpenParts {
    sled_open: Duration,
    iterate: Duration,
    rkyv: Duration,
    decode: Duration,
    restore: Duration,
    store_open: Duration,
    store_load: Duration,
    key_bytes: u64,
    value_bytes: u64,
}

impl OpenParts {
    /// `name nanoseconds-or-bytes` lines, for the parent process.
    fn to_lines(&self) -> String {
        let d = |d: Duration| d.as_nanos() as u64;
        [
            ("sled_open", d(self.sled_open)),
            ("iterate", d(self.iterate)),
            ("rkyv", d(self.rkyv)),
            ("decode", d(self.decode)),
            ("restore", d(self.restore)),
            ("store_open", d(self.store_open)),
            ("store_load", d(self.store_load)),
            ("key_bytes", self.key_bytes),
            ("value_bytes", self.value_bytes),
        ]
        .iter()
        .map(|(k, v)| format!("{k} {v}\n"))
        .collect()
    }

    fn from_map(m: &HashMap<String, u64>) -> Self {
        let v = |k: &str| {
            *m.get(k)
                .unwrap_or_else(|| panic!("child did not report {k}"))
        };
        let d = |k: &str| Duration::from_nanos(v(k));
        OpenParts {
            sled_open: d("sled_open"),
            iterate: d("iterate"),
            rkyv: d("rkyv"),
            decode: d("decode"),
            restore: d("restore"),
            store_open: d("store_open"),
            store_load: d("store_load"),
            key_bytes: v("key_bytes"),
            value_bytes: v("value_bytes"),
        }
    }
}

// --- Fresh processes. ----------------------------------------------------------------

/// Child mode: `storage --child open|parts DIR N` prints `name value` lines and
/// exits. The timed opens run in a fresh process each (nothing of the bench's
/// own heap around; the OS page cache stays warm).
fn child(args: &[String]) {
    let (what, dir, n) = match args {
        [w, d, n] => (w.as_str(), PathBuf::from(d), n.parse::<u64>().expect("N")),
        _ => panic!("usage: --child open|parts DIR N"),
    };
    match what {
        "open" => {
            let c = cpu_ms();
            let t = Instant::now();
            let reg = Registry::open(&dir, Config::default()).expect("Registry::open");
            let d = t.elapsed();
            let cpu = cpu_ms() - c;
            assert_eq!(reg.len() as u64, n);
            println!("open {}\ncpu_ms {cpu}\nthings {}", d.as_nanos(), reg.len());
        }
        "parts" => print!("{}", open_parts(&dir, n).to_lines()),
        other => panic!("unknown child mode {other}"),
    }
}

/// Runs `what` in a fresh process of this bench binary and returns its report.
fn run_child(what: &str, dir: &Path, n: u64) -> HashMap<String, u64> {
    let exe = std::env::current_exe().expect("current_exe");
    let out = std::process::Command::new(exe)
        .arg("--child")
        .arg(what)
        .arg(dir)
        .arg(n.to_string())
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("spawn child");
    assert!(out.status.success(), "child {what} failed: {}", out.status);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn open_parts(dir: &Path, n: u64) -> OpenParts {
    // sled alone: open (log recovery) and one pass over the tree.
    let t = Instant::now();
    let db = sled::Config::new()
        .path(dir)
        .flush_every_ms(None)
        .open()
        .expect("sled open");
    let things = db.open_tree("things").expect("tree");
    let sled_open = t.elapsed();
    let t = Instant::now();
    let pairs: Vec<(sled::IVec, sled::IVec)> = things
        .iter()
        .map(|kv| kv.expect("sled iteration"))
        .collect();
    let iterate = t.elapsed();
    assert_eq!(pairs.len() as u64, n);
    let key_bytes = pairs.iter().map(|(k, _)| k.len() as u64).sum();
    let value_bytes = pairs.iter().map(|(_, v)| v.len() as u64).sum();
    // rkyv alone: the aligned copy, bytecheck validation and deserialisation
    // into a `StoredRecord` (what `record::decode` starts with).
    let t = Instant::now();
    for (_, v) in &pairs {
        let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(v.len());
        aligned.extend_from_slice(v);
        let r = rkyv::from_bytes::<StoredRecord, rkyv::rancor::Error>(&aligned).expect("rkyv");
        black_box(r);
    }
    let rkyv = t.elapsed();
    // The whole of `record::decode`: rkyv plus every field re-checked and the
    // `ThingRecord` built.
    let t = Instant::now();
    let records: Vec<ThingRecord> = pairs
        .iter()
        .map(|(k, v)| record::decode(k, v).expect("decode"))
        .collect();
    let decode = t.elapsed();
    drop(pairs);
    drop(things);
    drop(db);
    // Records and indexes rebuilt from the decoded records (sled order).
    let t = Instant::now();
    let reg = preloaded(records);
    let restore = t.elapsed();
    assert_eq!(reg.len() as u64, n);
    drop(reg);
    // The store's own open and load, as `Registry::open` calls them.
    let t = Instant::now();
    let store = SledStore::open(dir, Durability::Flush).expect("store open");
    let store_open = t.elapsed();
    let t = Instant::now();
    let loaded = store.load().expect("load");
    let store_load = t.elapsed();
    assert_eq!(loaded.len() as u64, n);
    drop(loaded);
    drop(store);
    OpenParts {
        sled_open,
        iterate,
        rkyv,
        decode,
        restore,
        store_open,
        store_load,
        key_bytes,
        value_bytes,
    }
}

// --- Writes. ------------------------------------------------------------------------

/// `register` requests of datagen things `first..first + count` (new things).
fn new_requests(first: u64, count: u64) -> Vec<(Jid, Register)> {
    (first..first + count)
        .map(|i| datagen::register_request(&datagen::thing(1, i)))
        .collect()
}

/// One write run: `threads` threads each sending its share of `requests` as
/// single `register` calls; returns the wall time from the common start until
/// the last acknowledgement.
fn register_run(reg: &Registry, requests: Vec<(Jid, Register)>, threads: usize) -> Duration {
    let per = requests.len().div_ceil(threads);
    let mut chunks: Vec<Vec<(Jid, Register)>> = Vec::new();
    let mut rest = requests;
    while !rest.is_empty() {
        let tail = rest.split_off(per.min(rest.len()));
        chunks.push(rest);
        rest = tail;
    }
    let barrier = Barrier::new(chunks.len() + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    for (from, req) in chunk {
                        let out = reg.register(&from, req).expect("register");
                        assert!(matches!(out, RegisterOutcome::Registered));
                    }
                    Instant::now()
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let end = handles
            .into_iter()
            .map(|h| h.join().expect("writer thread"))
            .max()
            .expect("a thread");
        end - start
    })
}

struct WriteRow {
    label: String,
    ops: u64,
    time: Duration,
    floor: Option<f64>,
}

impl WriteRow {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.time.as_secs_f64()
    }
}

// --- Search. ------------------------------------------------------------------------

/// What `report.rs` times: the page identified, each JID read, plus `more`.
fn iot_search(reg: &Registry, search: &Search) -> (usize, usize, bool) {
    reg.search_with(search, |p| {
        let jids: Vec<&str> = p.things().map(|t| t.jid()).collect();
        (
            jids.iter().map(|j| j.len()).sum::<usize>(),
            jids.len(),
            p.more(),
        )
    })
    .expect("search")
}

/// Every match of `search`, paged through in full, sorted by JID.
fn all_matches(reg: &Registry, search: &Search) -> Vec<PageThing> {
    let page = reg.config().max_search_results;
    let mut out = Vec::new();
    let mut req = search.clone();
    req.max_count = Some(page);
    req.offset = 0;
    loop {
        let res = reg.search(&req).expect("search");
        let got = res.things.len() as u32;
        out.extend(Answer::of_result(&res).things);
        if !res.more || got == 0 {
            break;
        }
        req.offset += got;
    }
    out.sort_by(|a, b| a.jid.cmp(&b.jid));
    out
}

struct SearchRow {
    name: &'static str,
    hits: usize,
    mem: Timing,
    same: Timing,
    disk: Timing,
    sets_equal: bool,
    page_equal_same_order: bool,
    page_equal_datagen_order: bool,
}

impl SearchRow {
    fn ratio(&self) -> f64 {
        self.disk.median.as_secs_f64() / self.mem.median.as_secs_f64()
    }
    fn ratio_same(&self) -> f64 {
        self.disk.median.as_secs_f64() / self.same.median.as_secs_f64()
    }
    fn pass(&self) -> bool {
        self.sets_equal && self.page_equal_same_order && self.ratio() <= SEARCH_TOLERANCE
    }
}

/// The smallest of the rounds' medians (rounds alternate between registries,
/// so a noisy moment on the shared machine hits one round, not the comparison).
fn best(rounds: &[Timing]) -> Timing {
    *rounds
        .iter()
        .min_by_key(|t| t.median)
        .expect("at least one round")
}

fn main() {
    let user_args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if user_args.first().is_some_and(|a| a == "--child") {
        child(&user_args[1..]);
        return;
    }
    let n: u64 = user_args
        .iter()
        .find(|a| !a.starts_with('-'))
        .map(|a| a.replace(['_', ','], ""))
        .or_else(|| std::env::var("IOTDISCO_BENCH_THINGS").ok())
        .map(|a| {
            a.replace(['_', ','], "")
                .parse()
                .expect("N must be a number")
        })
        .unwrap_or(1_000_000);
    let flush_ops = env_count("IOTDISCO_BENCH_FLUSH_OPS", 2_000).max(2);
    let group_ops = env_count("IOTDISCO_BENCH_GROUP_OPS", 200_000).max(2);
    let command = if user_args.is_empty() {
        "cargo bench --bench storage".to_string()
    } else {
        format!("cargo bench --bench storage -- {}", user_args.join(" "))
    };
    let nproc = std::thread::available_parallelism().map_or(0, |p| p.get());
    let cpu = cpu_model();
    let date = command_output("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"]);
    let kernel = command_output("uname", &["-r"]);
    let load_start = loadavg();
    let nf = n as f64;
    let open_floor = Duration::from_secs_f64(OPEN_FLOOR_S_AT_1M * nf / 1e6);

    let target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&target).expect("target dir");
    let tmp = tempfile::Builder::new()
        .prefix("bench-storage-")
        .tempdir_in(&target)
        .expect("tempdir");
    let db_dir = tmp.path().join("registry.sled");
    let sqlite_path = tmp.path().join("baseline.sqlite");
    let fs_type = command_output(
        "findmnt",
        &[
            "-n",
            "-o",
            "FSTYPE,SOURCE",
            "-T",
            &tmp.path().to_string_lossy(),
        ],
    );
    log(&format!("working in {} ({fs_type})", tmp.path().display()));

    log(&format!("generating {n} things"));
    let pop: Vec<GenThing> = baseline::population(n);

    // --- 1. Build the database. ----------------------------------------------------
    log(&format!(
        "building the sled database: datagen::install, GroupCommit({WINDOW_MS})"
    ));
    let t = Instant::now();
    let reg = Registry::open_with(
        &db_dir,
        Config::default(),
        Durability::GroupCommit(WINDOW_MS),
    )
    .expect("open for the build");
    baseline::install_all(&reg, &pop);
    let build_install = t.elapsed();
    assert_eq!(reg.len() as u64, n);
    let t = Instant::now();
    drop(reg);
    let build_drop = t.elapsed();
    log(&format!(
        "built in {} + {} to drop (sled flushes on drop)",
        fmt_dur(build_install),
        fmt_dur(build_drop)
    ));
    let store = SledStore::open(&db_dir, Durability::Flush).expect("store");
    store.flush().expect("flush");
    let sled_size = store.size_on_disk().expect("size_on_disk");
    drop(store);
    let (apparent, allocated, files) = dir_size(&db_dir);
    log(&format!(
        "on disk: {} apparent, {} allocated, {files} files; sled size_on_disk {}",
        fmt_mb(apparent),
        fmt_mb(allocated),
        fmt_mb(sled_size)
    ));

    // --- 1. SQLite EAV baseline in a file. ------------------------------------------
    log("SQLite: baseline load (bare tables, then CREATE INDEX), VACUUM INTO a file");
    let (db, load) = Sqlite::load(&pop, false);
    let sqlite_mem_bytes = db.db_bytes();
    let t = Instant::now();
    let path_literal = sqlite_path.to_string_lossy().replace('\'', "''");
    db.conn
        .execute_batch(&format!("VACUUM INTO '{path_literal}'"))
        .expect("VACUUM INTO");
    let vacuum = t.elapsed();
    drop(db);
    let sqlite_file_bytes = std::fs::metadata(&sqlite_path).expect("sqlite file").len();
    let sqlite_file_alloc = std::fs::metadata(&sqlite_path)
        .expect("sqlite file")
        .blocks()
        * 512;
    let check = rusqlite::Connection::open(&sqlite_path).expect("open sqlite file");
    let tag_rows: i64 = check
        .query_row("SELECT COUNT(*) FROM tag", [], |r| r.get(0))
        .expect("count");
    let thing_rows: i64 = check
        .query_row("SELECT COUNT(*) FROM things", [], |r| r.get(0))
        .expect("count");
    let sqlite_indexes: i64 = check
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    drop(check);
    assert_eq!(thing_rows as u64, n);
    log(&format!(
        "SQLite: loaded in {}, file {} ({tag_rows} tag rows, {thing_rows} things rows, {sqlite_indexes} indexes), VACUUM INTO took {}",
        fmt_dur(load.total()),
        fmt_mb(sqlite_file_bytes),
        fmt_dur(vacuum)
    ));

    // --- 1. Where an open's time goes. ------------------------------------------------
    log("open, piece by piece (fresh process)");
    let parts = OpenParts::from_map(&run_child("parts", &db_dir, n));
    log(&format!(
        "sled open {}, iterate {}, rkyv {}, decode {}, restore {}; SledStore::open {}, load {}",
        fmt_dur(parts.sled_open),
        fmt_dur(parts.iterate),
        fmt_dur(parts.rkyv),
        fmt_dur(parts.decode),
        fmt_dur(parts.restore),
        fmt_dur(parts.store_open),
        fmt_dur(parts.store_load)
    ));

    // --- 1. Timed opens: each in a fresh process (judged), then in this one. ---------
    let mut opens = Vec::new();
    let mut open_cpu = Vec::new();
    for k in 0..OPENS {
        let m = run_child("open", &db_dir, n);
        let d = Duration::from_nanos(m["open"]);
        log(&format!(
            "Registry::open in a fresh process #{}: {} (process CPU {} ms; load average {})",
            k + 1,
            fmt_dur(d),
            m["cpu_ms"],
            loadavg()
        ));
        opens.push(d);
        open_cpu.push(m["cpu_ms"]);
    }
    let mut here = Vec::new();
    let mut here_cpu = Vec::new();
    let mut reopened: Option<Registry> = None;
    for k in 0..OPENS {
        drop(reopened.take());
        let c = cpu_ms();
        let t = Instant::now();
        let reg = Registry::open(&db_dir, Config::default()).expect("Registry::open");
        let d = t.elapsed();
        let cpu = cpu_ms() - c;
        log(&format!(
            "Registry::open in this process #{}: {} (process CPU {cpu} ms; load average {})",
            k + 1,
            fmt_dur(d),
            loadavg()
        ));
        here.push(d);
        here_cpu.push(cpu);
        reopened = Some(reg);
    }
    let disk = reopened.expect("an open");
    let open_median = median(opens.clone());
    let st = disk.stats();
    assert_eq!(st.things as u64, n);
    assert_eq!(st.searchable, n);
    disk.check_consistency().expect("indexes after reopen");

    // --- 3. Search after reopening. -----------------------------------------------------
    log("in-memory registry in datagen order (datagen::install)");
    let mem = Registry::new(Config::default());
    baseline::install_all(&mem, &pop);
    drop(pop);
    log("in-memory registry in the reopened registry's order");
    let same = preloaded(disk.export());
    assert_eq!(same.len() as u64, n);
    let mut rows: Vec<SearchRow> = Vec::new();
    let mut mismatches: Vec<String> = Vec::new();
    for (name, search) in datagen::standard_queries() {
        let m_all = all_matches(&mem, &search);
        let s_all = all_matches(&same, &search);
        let d_all = all_matches(&disk, &search);
        let sets_equal = d_all == m_all && d_all == s_all;
        if !sets_equal {
            let m = format!(
                "{name}: match sets differ: reopened {} things, in-memory {}, same order {}",
                d_all.len(),
                m_all.len(),
                s_all.len()
            );
            log(&m);
            mismatches.push(m);
        }
        let d_page = baseline::iotdisco_answer(&disk, &search);
        let s_page = baseline::iotdisco_answer(&same, &search);
        let m_page = baseline::iotdisco_answer(&mem, &search);
        let page_equal_same_order = d_page == s_page;
        if !page_equal_same_order {
            let m = format!(
                "{name}: first page differs from the same-order in-memory registry: {}",
                d_page.first_difference(&s_page)
            );
            log(&m);
            mismatches.push(m);
        }
        let page_equal_datagen_order = d_page == m_page;
        log(&format!(
            "{name}: {} matches; sets equal {sets_equal}; first page equal to same order {page_equal_same_order}, to datagen order {page_equal_datagen_order} (reopened page {:?}, datagen-order page {:?})",
            d_all.len(),
            d_page.ids(),
            m_page.ids()
        ));
        let (mut m, mut d, mut s) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..SEARCH_ROUNDS {
            m.push(measure(|| iot_search(&mem, &search)));
            d.push(measure(|| iot_search(&disk, &search)));
            s.push(measure(|| iot_search(&same, &search)));
        }
        let row = SearchRow {
            name,
            hits: d_all.len(),
            mem: best(&m),
            same: best(&s),
            disk: best(&d),
            sets_equal,
            page_equal_same_order,
            page_equal_datagen_order,
        };
        let rounds = |v: &[Timing]| {
            v.iter()
                .map(|t| format!("{} ({} runs)", fmt_dur(t.median), t.runs))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        log(&format!(
            "{name}: in-memory {}; same order {}; reopened {}",
            rounds(&m),
            rounds(&s),
            rounds(&d)
        ));
        rows.push(row);
    }
    drop(mem);
    drop(same);

    // --- 2. Durable registrations. -------------------------------------------------------
    let mut next = n;
    let mut take = |count: u64| {
        let r = new_requests(next, count);
        next += count;
        r
    };
    let mut writes: Vec<WriteRow> = Vec::new();
    for threads in [1usize, 2, 8] {
        let ops = flush_ops * threads as u64 / threads.min(2) as u64;
        let requests = take(ops);
        log(&format!("Flush: {ops} registers from {threads} thread(s)"));
        let time = register_run(&disk, requests, threads);
        let row = WriteRow {
            label: format!("`Durability::Flush` (default), {threads} thread(s)"),
            ops,
            time,
            floor: None,
        };
        log(&format!(
            "  {} in {} = {}/s",
            ops,
            fmt_dur(time),
            fmt_count(row.rate())
        ));
        writes.push(row);
    }
    drop(disk);
    let t = Instant::now();
    let group = Registry::open_with(
        &db_dir,
        Config::default(),
        Durability::GroupCommit(WINDOW_MS),
    )
    .expect("open GroupCommit");
    let open_group = t.elapsed();
    log(&format!(
        "Registry::open_with GroupCommit({WINDOW_MS}) of {} things: {}",
        group.len(),
        fmt_dur(open_group)
    ));
    for threads in [1usize, 2] {
        let requests = take(group_ops);
        log(&format!(
            "GroupCommit({WINDOW_MS}): {group_ops} registers from {threads} thread(s)"
        ));
        let time = register_run(&group, requests, threads);
        let row = WriteRow {
            label: format!("`Durability::GroupCommit({WINDOW_MS})`, {threads} thread(s)"),
            ops: group_ops,
            time,
            floor: (threads == 1).then_some(GROUP_FLOOR),
        };
        log(&format!(
            "  {} in {} = {}/s",
            group_ops,
            fmt_dur(time),
            fmt_count(row.rate())
        ));
        writes.push(row);
    }
    let expected = next;
    assert_eq!(group.len() as u64, expected);
    let t = Instant::now();
    drop(group);
    let group_drop = t.elapsed();
    let t = Instant::now();
    let again = Registry::open(&db_dir, Config::default()).expect("final reopen");
    let final_open = t.elapsed();
    let all_there = again.len() as u64 == expected
        && [n, n + flush_ops, expected - 1].iter().all(|&i| {
            let g = datagen::thing(1, i);
            again
                .get(&ThingKey {
                    jid: g.jid.bare().clone(),
                    node: Default::default(),
                })
                .is_some_and(|r| r.tags == g.tags && r.owner.is_none())
        });
    log(&format!(
        "dropped in {} (final flush); reopened {} things of {expected} in {}",
        fmt_dur(group_drop),
        again.len(),
        fmt_dur(final_open)
    ));
    drop(again);
    let (apparent_after, _, _) = dir_size(&db_dir);

    // --- Markdown. ------------------------------------------------------------------------
    let load_end = loadavg();
    let open_pass = open_median < open_floor;
    let writes_pass = writes.iter().all(|w| w.floor.is_none_or(|f| w.rate() >= f)) && all_there;
    let search_pass = rows.iter().all(SearchRow::pass);
    let mut md = String::new();
    let _ = writeln!(md, "## iotdisco storage benchmark (sled)");
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "Machine: {nproc} cores (nproc), {cpu}, kernel {kernel}; database in {} ({fs_type}); date: {date}; N = {}; sled 0.34, rkyv 0.8, SQLite {}; load average (1, 5, 15 min) {load_start} at the start, {load_end} at the end; command: `{command}`",
        tmp.path().display(),
        fmt_count(nf),
        rusqlite::version()
    );
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "Database built with `datagen::install` (register + claim public, {} things) under `GroupCommit({WINDOW_MS})` in {} plus {} for the drop (sled's final flush). The judged opens each run in a fresh process of this binary (`--child open`), one after the other; the OS page cache is warm (no cache drop). The (info) parts rows time the pieces of an open one by one on one thread, on the same database, in one more fresh process (`--child parts`).",
        fmt_count(nf),
        fmt_dur(build_install),
        fmt_dur(build_drop)
    );
    let _ = writeln!(md);
    let _ = writeln!(md, "| cold open | time | floor | verdict |");
    let _ = writeln!(md, "|---|---:|---|---|");
    let _ = writeln!(
        md,
        "| `Registry::open` of {} things (records + indexes rebuilt) in a fresh process, median of {OPENS} ({}; process CPU time {} ms) | {} | < {} (3 s at 1M, scaled) | {} |",
        fmt_count(nf),
        opens
            .iter()
            .map(|d| fmt_dur(*d))
            .collect::<Vec<_>>()
            .join(", "),
        open_cpu
            .iter()
            .map(|c| fmt_count(*c as f64))
            .collect::<Vec<_>>()
            .join(" / "),
        fmt_dur(open_median),
        fmt_dur(open_floor),
        verdict(open_pass)
    );
    let info = |md: &mut String, label: &str, d: Duration| {
        let _ = writeln!(md, "| (info) {label} | {} | - | - |", fmt_dur(d));
    };
    info(
        &mut md,
        &format!(
            "`Registry::open` in the bench process after every registry was dropped, median of {OPENS} ({}; process CPU time {} ms)",
            here.iter()
                .map(|d| fmt_dur(*d))
                .collect::<Vec<_>>()
                .join(", "),
            here_cpu
                .iter()
                .map(|c| fmt_count(*c as f64))
                .collect::<Vec<_>>()
                .join(" / ")
        ),
        median(here.clone()),
    );
    info(
        &mut md,
        "sled alone: `sled::Config::open` + `open_tree` (log recovery)",
        parts.sled_open,
    );
    info(
        &mut md,
        &format!(
            "sled alone: iterate `things`, {} pairs collected ({:.0} B key + {:.0} B value per thing)",
            fmt_count(nf),
            parts.key_bytes as f64 / nf,
            parts.value_bytes as f64 / nf
        ),
        parts.iterate,
    );
    info(
        &mut md,
        "rkyv alone: aligned copy + bytecheck + deserialise to `StoredRecord`",
        parts.rkyv,
    );
    info(
        &mut md,
        "`record::decode` whole (rkyv + field checks + `ThingRecord` built)",
        parts.decode,
    );
    info(
        &mut md,
        "rebuild of records + indexes from decoded records (`Registry::with_store`, sled order)",
        parts.restore,
    );
    info(
        &mut md,
        "`SledStore::open` (sled open + format check)",
        parts.store_open,
    );
    info(
        &mut md,
        "`SledStore::load` (iterate + decode into a Vec)",
        parts.store_load,
    );
    info(
        &mut md,
        "sum of the three rows above: what `Registry::open` does, one after the other on one thread",
        parts.store_open + parts.store_load + parts.restore,
    );
    info(
        &mut md,
        &format!("`Registry::open_with(GroupCommit({WINDOW_MS}))` before the group-commit writes"),
        open_group,
    );
    info(
        &mut md,
        &format!(
            "`Registry::open` at the end ({} things)",
            fmt_count(expected as f64)
        ),
        final_open,
    );
    let _ = writeln!(md);
    let _ = writeln!(md, "| disk use | bytes | bytes/thing |");
    let _ = writeln!(md, "|---|---:|---:|");
    let per = |b: u64| format!("{:.0}", b as f64 / nf);
    let _ = writeln!(
        md,
        "| sled directory, sum of file sizes ({files} files) | {} | {} |",
        fmt_mb(apparent),
        per(apparent)
    );
    let _ = writeln!(
        md,
        "| sled directory, allocated blocks (`du`) | {} | {} |",
        fmt_mb(allocated),
        per(allocated)
    );
    let _ = writeln!(
        md,
        "| sled `Db::size_on_disk` (`SledStore::size_on_disk`) | {} | {} |",
        fmt_mb(sled_size),
        per(sled_size)
    );
    let _ = writeln!(
        md,
        "| sled payload: key + rkyv value bytes | {} | {} |",
        fmt_mb(parts.key_bytes + parts.value_bytes),
        per(parts.key_bytes + parts.value_bytes)
    );
    let _ = writeln!(
        md,
        "| SQLite EAV file (`baseline/sqlite.rs` schema: {tag_rows} tag rows, {thing_rows} things rows, {sqlite_indexes} indexes; `VACUUM INTO`) | {} | {} |",
        fmt_mb(sqlite_file_bytes),
        per(sqlite_file_bytes)
    );
    let _ = writeln!(
        md,
        "| SQLite EAV file, allocated blocks | {} | {} |",
        fmt_mb(sqlite_file_alloc),
        per(sqlite_file_alloc)
    );
    let _ = writeln!(
        md,
        "| SQLite in-memory database before the copy (page_count * page_size) | {} | {} |",
        fmt_mb(sqlite_mem_bytes),
        per(sqlite_mem_bytes)
    );
    let _ = writeln!(
        md,
        "| (info) sled directory at the end ({} things) | {} | {:.0} |",
        fmt_count(expected as f64),
        fmt_mb(apparent_after),
        apparent_after as f64 / expected as f64
    );
    let _ = writeln!(
        md,
        "| ratio sled files / SQLite file | {:.2}x | |",
        apparent as f64 / sqlite_file_bytes as f64
    );
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "| durable `register` of new things (single calls, requests built before the timer) | registrations | time | registrations/s | floor | verdict |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---|---|");
    for w in &writes {
        let (floor, v) = match w.floor {
            Some(f) => (
                format!(">= {}/s", fmt_count(f)),
                verdict(w.rate() >= f).to_string(),
            ),
            None => ("(info)".to_string(), "-".to_string()),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {floor} | {v} |",
            w.label,
            fmt_count(w.ops as f64),
            fmt_dur(w.time),
            fmt_count(w.rate())
        );
    }
    let _ = writeln!(
        md,
        "| every acknowledged registration present after drop + `Registry::open` ({} things expected) | | | | all there | {} |",
        fmt_count(expected as f64),
        verdict(all_there)
    );
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "Search after reopening: `Registry::search_with` (page of 20 identified, each JID read, `more`) as in `report.rs`; each median is the lowest of {SEARCH_ROUNDS} rounds' medians (a round: >= 50 runs and 1 s, or 100,000 runs), rounds alternating between the registries. \"In-memory\" = `Registry::new` + `datagen::install` in datagen order (what `report.rs` measures); \"same order\" = an in-memory registry restored from the reopened registry's export (its thing order). The reopened registry numbers things in sled key order, not registration order, so its first page holds other things than the datagen-order registry's; every match (paged through in full with owner, JID, node and tags) is compared as a set, and the first page against the same-order registry."
    );
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "| query | matches | in-memory median | reopened median | reopened / in-memory | same-order median | reopened / same order | match sets equal | page = same order | page = datagen order | floor | verdict |"
    );
    let _ = writeln!(
        md,
        "|---|---:|---:|---:|---:|---:|---:|---|---|---|---|---|"
    );
    for r in &rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.2}x | {} | {:.2}x | {} | {} | {} | <= {SEARCH_TOLERANCE}x, answers equal | {} |",
            r.name,
            fmt_count(r.hits as f64),
            fmt_dur(r.mem.median),
            fmt_dur(r.disk.median),
            r.ratio(),
            fmt_dur(r.same.median),
            r.ratio_same(),
            r.sets_equal,
            r.page_equal_same_order,
            r.page_equal_datagen_order,
            verdict(r.pass())
        );
    }
    let _ = writeln!(md);
    let all = open_pass && writes_pass && search_pass && mismatches.is_empty();
    let _ = writeln!(
        md,
        "Overall: {} (cold open {}, group-commit writes {}, search after reopening {})",
        verdict(all),
        verdict(open_pass),
        verdict(writes_pass),
        verdict(search_pass)
    );
    println!("{md}");
    let out = target.join("bench-storage.md");
    match std::fs::write(&out, &md) {
        Ok(()) => log(&format!("wrote {}", out.display())),
        Err(e) => log(&format!("could not write {}: {e}", out.display())),
    }
    drop(tmp);
    if !mismatches.is_empty() {
        std::process::exit(2);
    }
}
