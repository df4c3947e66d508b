//! `iotdisco bench`: the performance tester's load test.
//!
//! Population: things `0..N` of `datagen::population(1, N)` (ten realistic tags
//! each), registered in chunks with `register_batch` and claimed (public) one by
//! one by their owners, as installations would; a progress bar shows it. On disk
//! (the default, `target/iotdisco-bench-N.db`, sled with group commit every
//! 10 ms) a database that already holds exactly that population (N things, all
//! public and claimed, first and last thing equal to datagen's) is reused: only
//! the indexes are rebuilt when it opens.
//!
//! Run: T reader threads loop over Q1-Q5 (`datagen::standard_queries`, pages of
//! 20, each thread starting at another query) and one writer thread loops over
//! register, claim and update (three numeric tags) of its own new things
//! `N, N+1, ...`, all for S seconds. Every operation's latency goes into a
//! per-thread HDR histogram (ns, 3 significant digits), merged at the end; the
//! table shows p50/p90/p99/max, operations per second and, for searches, the
//! things on the last page and whether more matched. The writer's things are
//! unregistered afterwards (untimed), so the database holds the population
//! again. `--baseline sqlite` runs the same for the SQLite EAV baseline
//! ([`sqlite`]) on the same data, after checking that every thing iotdisco
//! returns for Q1-Q5 matches in SQLite, that both agree on the page size and
//! `more`, and (when the registry was loaded in datagen order in this run) that
//! the pages are identical.
//!
//! `--hostile PERCENT` ([`hostile`]) runs iotdisco through its stanza entry
//! point instead ([`iotdisco::Engine::handle`]), twice for S seconds each: the
//! same mix with no hostile client, then with PERCENT% of the readers'
//! operations hostile (claim guessing, search floods, tag spam, malformed
//! stanzas, from a few JIDs), and reports the well-behaved search latency of
//! both, the hostile replies by outcome and the process's peak RSS.

pub mod hostile;
mod report;
pub mod sqlite;

use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use iotdisco::datagen::{self, GenThing};
use iotdisco::store::sled::Durability;
use iotdisco::{Claim, Config, Jid, Registry, Search, Tag, Update};

use crate::{Error, Result};

/// Which baseline to run beside iotdisco.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Baseline {
    /// SQLite EAV tables (tag(thing, name, s, n)) in a WAL file.
    Sqlite,
}

/// Load a deterministic population, run the query mix with T readers and one
/// writer, print latency percentiles (optionally against SQLite).
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  \
    iotdisco bench --things 1000000\n  \
    iotdisco bench --things 100000 --seconds 5 --baseline sqlite --svg latency.svg\n  \
    iotdisco bench --things 2000 --seconds 1 --memory --json\n  \
    iotdisco bench --things 1000000 --hostile 5\n\n\
    Columns: p50/p90/p99/max are latencies of one operation (a search returns its \
    owned page of up to 20 things); ops/s is completed operations per second of \
    that kind across all threads; hits is the number of things on the page (and + \
    when more matched). Q1: the spec's Listing 40; Q2: MAN = www.ktc.se; Q3: LAT in \
    [-10,10], LON in [0,90]; Q4: CLASS = PLC, V >= 2, COUNTRY <> SE; Q5: SN ~ *1234* \
    and MAN = www.ktc.se. With --hostile, iotdisco's rows are stanzas through \
    Engine::handle, first with 0% then with PERCENT% hostile operations, followed by \
    the well-behaved searches of both, the hostile operations by kind and reply \
    (resource-constraint, bad-request, item-not-found, other) and the peak RSS (VmHWM).")]
pub struct Args {
    /// How many things the population has (underscores allowed: 1_000_000).
    #[arg(long, value_name = "N", default_value = "100000", value_parser = parse_count)]
    pub things: u64,
    /// The database directory [default: target/iotdisco-bench-N.db].
    #[arg(long, value_name = "PATH", conflicts_with = "memory")]
    pub db: Option<PathBuf>,
    /// Keep the registry in memory (nothing on disk; loaded every run).
    #[arg(long)]
    pub memory: bool,
    /// Reader threads running the query mix [default: cores - 1, at least 1,
    /// so that readers and the writer each have a core].
    #[arg(long, value_name = "T", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// How long each engine runs the mix.
    #[arg(long, value_name = "S", default_value = "5", value_parser = parse_seconds)]
    pub seconds: f64,
    /// Writer operations per second (register, claim and update each count
    /// one). The default is a steady background of writes, so the search
    /// latencies show searches, not lock waits; 0 runs the writer as fast as it
    /// can (a stress test: every search then queues behind writes).
    #[arg(long, value_name = "OPS", default_value_t = 1000)]
    pub write_rate: u32,
    /// Also run a baseline on the same data (its file: the database path plus
    /// `.sqlite`, or a temporary file with --memory).
    #[arg(long, value_enum, value_name = "ENGINE")]
    pub baseline: Option<Baseline>,
    /// Print the results as JSON (progress still goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Also write a latency plot (p50 and p99 per operation, log scale) as SVG.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Run iotdisco through its stanza entry point (Engine::handle), twice:
    /// with no hostile client, then with PERCENT% of the readers' operations
    /// hostile (wrong `mine` claims, floods of expensive searches, tag spam,
    /// malformed stanzas, from a few JIDs; deterministic seed). Reports
    /// well-behaved search latency in both runs, hostile replies by outcome
    /// and peak RSS.
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
    pub hostile: Option<f64>,
}

fn parse_count(s: &str) -> std::result::Result<u64, String> {
    let n: u64 = s
        .replace('_', "")
        .parse()
        .map_err(|_| format!("'{s}' is not a whole number"))?;
    if n == 0 || n > 100_000_000 {
        return Err("must be between 1 and 100,000,000".into());
    }
    Ok(n)
}

fn parse_seconds(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && x <= 86_400.0 => Ok(x),
        _ => Err(format!("'{s}' is not a number of seconds in (0, 86400]")),
    }
}

fn parse_percent(s: &str) -> std::result::Result<f64, String> {
    match s.trim_end_matches('%').parse::<f64>() {
        Ok(x) if (0.0..=100.0).contains(&x) => Ok(x),
        _ => Err(format!("'{s}' is not a percentage in [0, 100]")),
    }
}

/// The kinds of operation, in table order.
pub const OPS: [&str; 8] = ["Q1", "Q2", "Q3", "Q4", "Q5", "register", "claim", "update"];
const REGISTER: usize = 5;
const CLAIM: usize = 6;
const UPDATE: usize = 7;

/// The figures of one operation kind.
#[derive(Debug, Clone)]
pub struct OpStats {
    /// `Q1`..`Q5`, `register`, `claim`, `update`.
    pub name: &'static str,
    /// Operations completed.
    pub count: u64,
    /// `count` per second of the run.
    pub per_second: f64,
    /// Latency percentiles and maximum, nanoseconds.
    pub p50: u64,
    /// 90th percentile, ns.
    pub p90: u64,
    /// 99th percentile, ns.
    pub p99: u64,
    /// Maximum, ns.
    pub max: u64,
    /// Searches: things on the last page and whether more matched.
    pub hits: Option<(usize, bool)>,
}

/// One engine's run.
#[derive(Debug, Clone)]
pub struct EngineRun {
    /// `iotdisco` or `sqlite`.
    pub engine: &'static str,
    /// How the data is held, for the table's heading.
    pub storage: String,
    /// Seconds spent loading (0 when reused).
    pub load_seconds: f64,
    /// Whether an existing database was reused.
    pub reused: bool,
    /// Seconds the mix ran.
    pub seconds: f64,
    /// Per operation kind, in [`OPS`] order (kinds that never ran are left out).
    pub ops: Vec<OpStats>,
}

/// Everything `bench` measured.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Population size.
    pub things: u64,
    /// Reader threads.
    pub threads: u32,
    /// Requested seconds per engine.
    pub seconds: f64,
    /// Cores the OS reports.
    pub cores: usize,
    /// Writer operations per second asked for (0: unthrottled).
    pub write_rate: u32,
    /// iotdisco's run.
    pub iotdisco: EngineRun,
    /// The baseline's run.
    pub sqlite: Option<EngineRun>,
    /// The answer check against SQLite: what was compared (None without it).
    pub verified: Option<String>,
    /// With `--hostile`: both phases and what the hostile clients got (then
    /// `iotdisco` is the phase without hostile clients).
    pub hostile: Option<hostile::HostileReport>,
}

fn bar(len: u64, quiet: bool, what: &str) -> ProgressBar {
    let pb = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(len)
    };
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:40}] {pos}/{len} things, {per_sec}, eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// Registers and claims things `0..n` into `reg`, with a progress bar: the
/// registrations in chunks (`register_batch`), then every claim in one
/// `claim_batch` (claims generated as they are made; the indexes are rebuilt
/// once instead of moving each claimed thing's postings).
fn install(reg: &Registry, n: u64, quiet: bool) -> Result<()> {
    const CHUNK: u64 = 10_000;
    let pb = bar(n, quiet, "registering");
    let mut start = 0;
    while start < n {
        let end = (start + CHUNK).min(n);
        let things: Vec<GenThing> = (start..end).map(|i| datagen::thing(1, i)).collect();
        let requests = things.iter().map(datagen::register_request).collect();
        for (g, r) in things.iter().zip(reg.register_batch(requests)) {
            r.map_err(|e| format!("registering {}: {e}", g.jid))?;
        }
        pb.set_position(end);
        start = end;
    }
    pb.finish_and_clear();
    let pb = bar(n, quiet, "claiming");
    let claims = (0..n).map(|i| {
        let g = datagen::thing(1, i);
        if i % CHUNK == 0 {
            pb.set_position(i);
        }
        let claim = Claim {
            tags: g.tags,
            public: true,
        };
        (Jid::from(g.owner), claim)
    });
    let outcomes = reg.claim_batch(claims);
    pb.finish_and_clear();
    if let Some((i, Err(e))) = outcomes.iter().enumerate().find(|(_, o)| o.is_err()) {
        return Err(format!("claiming {}: {e}", datagen::thing(1, i as u64).jid).into());
    }
    Ok(())
}

/// Whether `reg` holds exactly population `n` of seed 1, all claimed and
/// public (checked on the counts and on the first and last thing).
fn holds_population(reg: &Registry, n: u64) -> bool {
    let s = reg.stats();
    if s.things as u64 != n || s.searchable != n {
        return false;
    }
    [0, n - 1].into_iter().all(|i| {
        let g = datagen::thing(1, i);
        reg.get(&iotdisco::ThingKey::of(g.jid.bare().clone()))
            .is_some_and(|r| {
                // Claimed with KEY deleted (the default) or kept.
                let without_key = g.tags.iter().filter(|t| !t.name.is_key());
                let same_tags =
                    r.tags == g.tags || (r.claim_digest.is_some() && r.tags.iter().eq(without_key));
                same_tags && r.owner.as_ref() == Some(&g.owner) && r.public
            })
    })
}

fn log(quiet: bool, msg: impl AsRef<str>) {
    if !quiet {
        eprintln!("{}", msg.as_ref());
    }
}

/// The registry to measure: reused, or loaded now. Returns it, whether it is in
/// datagen order (loaded in this run), the load seconds and whether it was
/// reused.
fn prepare_registry(args: &Args, path: Option<&Path>) -> Result<(Registry, bool, f64, bool)> {
    let n = args.things;
    let quiet = args.json;
    let Some(path) = path else {
        let reg = Registry::new(Config::default());
        let t = Instant::now();
        install(&reg, n, quiet)?;
        let secs = t.elapsed().as_secs_f64();
        log(quiet, format!("loaded {n} things in memory in {secs:.2} s"));
        return Ok((reg, true, secs, false));
    };
    let open = || {
        Registry::open_with(path, Config::default(), Durability::GroupCommit(10))
            .map_err(|e| Error::new(format!("cannot open {}: {e}", path.display())))
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let existed = path.exists();
    let t = Instant::now();
    let mut reg = open()?;
    if existed && holds_population(&reg, n) {
        log(
            quiet,
            format!(
                "reusing {} ({n} things; opened with indexes rebuilt in {:.2} s)",
                path.display(),
                t.elapsed().as_secs_f64()
            ),
        );
        return Ok((reg, false, 0.0, true));
    }
    if !reg.is_empty() {
        if args.db.is_some() {
            return Err(Error::new(format!(
                "{} holds {} things that are not the bench population of {n}; \
                 remove it or choose another --db",
                path.display(),
                reg.len()
            )));
        }
        log(
            quiet,
            format!("{} holds another population: recreating it", path.display()),
        );
        drop(reg);
        std::fs::remove_dir_all(path)
            .map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
        reg = open()?;
    }
    log(quiet, format!("loading {n} things into {}", path.display()));
    let t = Instant::now();
    install(&reg, n, quiet)?;
    reg.flush()
        .map_err(|e| format!("cannot flush {}: {e}", path.display()))?;
    let secs = t.elapsed().as_secs_f64();
    log(quiet, format!("loaded and flushed in {secs:.2} s"));
    Ok((reg, true, secs, false))
}

/// Per-thread latency histograms, one per operation kind.
struct Recorder {
    hist: Vec<Histogram<u64>>,
    hits: Vec<Option<(usize, bool)>>,
    /// With `--hostile`: what the reader streams' replies were.
    tally: Option<Box<hostile::Tally>>,
}

impl Recorder {
    fn new() -> Result<Self> {
        let mut hist = Vec::new();
        for _ in OPS {
            hist.push(
                Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
                    .map_err(|e| format!("histogram: {e}"))?,
            );
        }
        Ok(Recorder {
            hist,
            hits: vec![None; OPS.len()],
            tally: None,
        })
    }

    fn record(&mut self, op: usize, t: Instant) {
        self.hist[op].saturating_record(elapsed_ns(t));
    }

    fn merge(&mut self, other: &Recorder) -> Result<()> {
        for (a, b) in self.hist.iter_mut().zip(&other.hist) {
            a.add(b).map_err(|e| format!("histogram: {e}"))?;
        }
        for (a, b) in self.hits.iter_mut().zip(&other.hits) {
            if b.is_some() {
                *a = *b;
            }
        }
        if let Some(b) = &other.tally {
            match &mut self.tally {
                Some(a) => a.merge(b)?,
                None => self.tally = Some(b.clone()),
            }
        }
        Ok(())
    }

    fn stats(&self, seconds: f64) -> Vec<OpStats> {
        OPS.iter()
            .enumerate()
            .filter(|(i, _)| !self.hist[*i].is_empty())
            .map(|(i, name)| {
                let h = &self.hist[i];
                OpStats {
                    name,
                    count: h.len(),
                    per_second: h.len() as f64 / seconds,
                    p50: h.value_at_quantile(0.5),
                    p90: h.value_at_quantile(0.9),
                    p99: h.value_at_quantile(0.99),
                    max: h.max(),
                    hits: self.hits[i],
                }
            })
            .collect()
    }
}

/// Nanoseconds since `t` (at least 1: histograms start at 1).
fn elapsed_ns(t: Instant) -> u64 {
    (t.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64).max(1)
}

/// What a reader does: runs query `q`, returns the page size and `more`.
type ReadFn<'a> = Box<dyn FnMut(usize) -> Result<(usize, bool)> + 'a>;
/// One operation of a reader thread, which times and records it itself.
type StepFn<'a> = Box<dyn FnMut(&mut Recorder) -> Result<()> + 'a>;
/// What the writer does: operation `op` ([`REGISTER`], [`CLAIM`], [`UPDATE`])
/// on its `k`-th thing.
type WriteFn<'a> = Box<dyn FnMut(usize, u64) -> Result<()> + 'a>;

/// Runs `threads` readers and one writer for `seconds`; returns the merged
/// recorder, the measured seconds and how many things the writer registered.
fn run_mix<'a>(
    threads: u32,
    seconds: f64,
    write_rate: u32,
    make_reader: &(dyn Fn(u32) -> Result<StepFn<'a>> + Sync),
    make_writer: &(dyn Fn() -> Result<WriteFn<'a>> + Sync),
) -> Result<(Recorder, f64, u64)> {
    let barrier = Barrier::new(threads as usize + 2);
    let duration = Duration::from_secs_f64(seconds);
    let started = std::sync::OnceLock::new();
    let (recorders, writes) = std::thread::scope(|s| {
        let readers: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, started) = (&barrier, &started);
                s.spawn(move || -> Result<Recorder> {
                    let mut rec = Recorder::new()?;
                    let reader = make_reader(t);
                    barrier.wait();
                    let mut step = reader?;
                    let deadline = *started.get_or_init(Instant::now) + duration;
                    while Instant::now() < deadline {
                        step(&mut rec)?;
                    }
                    Ok(rec)
                })
            })
            .collect();
        let writer = {
            let (barrier, started) = (&barrier, &started);
            s.spawn(move || -> Result<(Recorder, u64)> {
                let mut rec = Recorder::new()?;
                let writer = make_writer();
                barrier.wait();
                let mut write = writer?;
                let deadline = *started.get_or_init(Instant::now) + duration;
                let start = deadline - duration;
                let mut k = 0;
                let mut done = 0u64;
                while Instant::now() < deadline {
                    for op in [REGISTER, CLAIM, UPDATE] {
                        if write_rate > 0 {
                            let due = start
                                + Duration::from_secs_f64(done as f64 / f64::from(write_rate));
                            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                                std::thread::sleep(wait);
                            }
                        }
                        done += 1;
                        let t0 = Instant::now();
                        write(op, k)?;
                        rec.record(op, t0);
                    }
                    k += 1;
                }
                Ok((rec, k))
            })
        };
        started.get_or_init(|| {
            barrier.wait();
            Instant::now()
        });
        let readers: Vec<_> = readers.into_iter().map(|h| h.join()).collect();
        (readers, writer.join())
    });
    // Until the last operation ended (a slow one may run past the deadline).
    let elapsed = started.get().map_or(seconds, |t| t.elapsed().as_secs_f64());
    let mut total = Recorder::new()?;
    for r in recorders {
        let r = r.map_err(|_| Error::new("a reader thread panicked"))??;
        total.merge(&r)?;
    }
    let (w, k) = writes.map_err(|_| Error::new("the writer thread panicked"))??;
    total.merge(&w)?;
    Ok((total, elapsed, k))
}

/// Reader thread `t`'s loop over Q1-Q5 (starting at another query than its
/// neighbour), each search timed.
fn query_steps<'a>(t: u32, mut read: ReadFn<'a>) -> StepFn<'a> {
    let mut q = t as usize % 5;
    Box::new(move |rec: &mut Recorder| {
        let t0 = Instant::now();
        let hits = read(q)?;
        rec.record(q, t0);
        rec.hits[q] = Some(hits);
        q = (q + 1) % 5;
        Ok(())
    })
}

/// The writer's `k`-th thing and its new values for `update`.
fn writer_thing(n: u64, k: u64) -> GenThing {
    datagen::thing(1, n + k)
}

fn update_values(k: u64) -> [(&'static str, f64); 3] {
    let mut r = datagen::Rng::new(2, k);
    [
        ("V", datagen::VERSIONS[r.below(6) as usize]),
        ("LAT", r.coord(-90.0, 90.0)),
        ("LON", r.coord(-180.0, 180.0)),
    ]
}

fn bench_iotdisco(reg: &Registry, args: &Args, threads: u32) -> Result<(Vec<OpStats>, f64)> {
    let n = args.things;
    let queries: Vec<Search> = datagen::standard_queries()
        .into_iter()
        .map(|(_, q)| q)
        .collect();
    let queries = &queries;
    let make_reader = |t: u32| -> Result<StepFn<'_>> {
        Ok(query_steps(
            t,
            Box::new(move |q: usize| {
                let r = reg
                    .search(&queries[q])
                    .map_err(|e| format!("search {}: {e}", OPS[q]))?;
                Ok((r.things.len(), r.more))
            }),
        ))
    };
    let make_writer = || -> Result<WriteFn<'_>> {
        let mut current: Option<GenThing> = None;
        Ok(Box::new(move |op: usize, k: u64| {
            match op {
                REGISTER => {
                    let g = writer_thing(n, k);
                    let (from, req) = datagen::register_request(&g);
                    reg.register(&from, req)
                        .map_err(|e| format!("register {}: {e}", g.jid))?;
                    current = Some(g);
                }
                CLAIM => {
                    let g = current.as_ref().ok_or("claim before register")?;
                    let claim = Claim {
                        tags: g.tags.clone(),
                        public: true,
                    };
                    reg.claim(&Jid::from(g.owner.clone()), claim)
                        .map_err(|e| format!("claim {}: {e}", g.jid))?;
                }
                _ => {
                    let g = current.as_ref().ok_or("update before register")?;
                    let mut tags = Vec::with_capacity(3);
                    for (name, v) in update_values(k) {
                        tags.push(Tag::num(name, v).map_err(|e| e.to_string())?);
                    }
                    let req = Update {
                        jid: None,
                        node: Default::default(),
                        tags,
                    };
                    reg.update(&g.jid, req)
                        .map_err(|e| format!("update {}: {e}", g.jid))?;
                }
            }
            Ok(())
        }))
    };
    let (rec, secs, written) = run_mix(
        threads,
        args.seconds,
        args.write_rate,
        &make_reader,
        &make_writer,
    )?;
    for k in 0..written {
        let g = writer_thing(n, k);
        reg.unregister(&g.jid, Default::default())
            .map_err(|e| format!("cleaning up {}: {e}", g.jid))?;
    }
    reg.flush().map_err(|e| format!("flush: {e}"))?;
    Ok((rec.stats(secs), secs))
}

fn bench_sqlite(path: &Path, args: &Args, threads: u32) -> Result<(Vec<OpStats>, f64)> {
    let n = args.things;
    let queries: Vec<sqlite::SqlQuery> = datagen::standard_queries()
        .iter()
        .map(|(_, q)| sqlite::query_of(&q.operators))
        .collect();
    let queries = &queries;
    let make_reader = |t: u32| -> Result<StepFn<'_>> {
        let conn = sqlite::connect(path)?;
        Ok(query_steps(
            t,
            Box::new(move |q: usize| {
                let (things, more) = sqlite::search(&conn, &queries[q])?;
                Ok((things.len(), more))
            }),
        ))
    };
    let make_writer = || -> Result<WriteFn<'_>> {
        let mut w = sqlite::Writer::new(path)?;
        let mut current: Option<GenThing> = None;
        Ok(Box::new(move |op: usize, k: u64| {
            match op {
                REGISTER => {
                    let g = writer_thing(n, k);
                    w.register(n + k, &g)?;
                    current = Some(g);
                }
                CLAIM => w.claim(current.as_ref().ok_or("claim before register")?)?,
                _ => w.update(n + k, &update_values(k))?,
            }
            Ok(())
        }))
    };
    let (rec, secs, _) = run_mix(
        threads,
        args.seconds,
        args.write_rate,
        &make_reader,
        &make_writer,
    )?;
    sqlite::Writer::new(path)?.cleanup(n)?;
    Ok((rec.stats(secs), secs))
}

/// The datagen index of a generated thing's JID (`thing{i}@...`).
fn datagen_index(jid: &str) -> Option<i64> {
    jid.strip_prefix("thing")?.split('@').next()?.parse().ok()
}

/// Checks iotdisco's Q1-Q5 answers against SQLite (see the module doc).
fn verify(reg: &Registry, path: &Path, datagen_order: bool) -> Result<String> {
    let conn = sqlite::connect(path)?;
    let mut checked = 0;
    for (name, q) in datagen::standard_queries() {
        let page = reg.search(&q).map_err(|e| format!("search {name}: {e}"))?;
        let sql = sqlite::query_of(&q.operators);
        let (ids, count) = sqlite::ids_and_count(&conn, &sql)?;
        let differ = |what: String| Error::new(format!("answers differ for {name}: {what}"));
        let expect_len = (count as usize).min(sqlite::PAGE);
        if page.things.len() != expect_len || page.more != (count as usize > page.things.len()) {
            return Err(differ(format!(
                "iotdisco returned {} things (more: {}), SQLite counts {count} matches",
                page.things.len(),
                page.more
            )));
        }
        let mut got = Vec::new();
        for t in &page.things {
            let jid = t.key.jid.as_str();
            let i = datagen_index(jid).ok_or_else(|| differ(format!("unknown thing {jid}")))?;
            let g = datagen::thing(1, i as u64);
            let expected: Vec<&Tag> = g.tags.iter().filter(|t| !t.name.is_key()).collect();
            if t.tags.iter().collect::<Vec<_>>() != expected || t.owner != g.owner {
                return Err(differ(format!(
                    "{jid} has other tags or owner than generated"
                )));
            }
            if !sqlite::matches(&conn, &q.operators, i)? {
                return Err(differ(format!("SQLite says {jid} does not match")));
            }
            got.push(i);
            checked += 1;
        }
        if datagen_order && got[..] != ids[..got.len().min(ids.len())] {
            return Err(differ(format!(
                "iotdisco's page {got:?}, SQLite's {:?}",
                &ids[..ids.len().min(sqlite::PAGE)]
            )));
        }
    }
    Ok(format!(
        "Q1-Q5: page sizes and `more` agree with SQLite's counts; all {checked} things returned \
         match in SQLite and carry their generated tags{}",
        if datagen_order {
            "; pages identical to SQLite's (thing order)"
        } else {
            " (reopened database: its page order is the store's, not compared)"
        }
    ))
}

/// Runs `iotdisco bench`.
pub fn run(args: Args) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = args
        .threads
        .unwrap_or_else(|| (cores as u32).saturating_sub(1).max(1));
    let quiet = args.json;
    let path = (!args.memory).then(|| {
        args.db
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("target/iotdisco-bench-{}.db", args.things)))
    });
    let (reg, datagen_order, load_seconds, reused) = prepare_registry(&args, path.as_deref())?;
    let storage = match &path {
        Some(p) => format!("sled at {}, group commit 10 ms", p.display()),
        None => "in memory".to_string(),
    };
    let sqlite_path = args.baseline.map(|_| match &path {
        Some(p) => {
            let mut s = p.as_os_str().to_owned();
            s.push(".sqlite");
            PathBuf::from(s)
        }
        None => std::env::temp_dir().join(format!(
            "iotdisco-bench-{}-{}.sqlite",
            args.things,
            std::process::id()
        )),
    });
    let mut sqlite_load = None;
    if let Some(sp) = &sqlite_path {
        if path.is_some() && sqlite::holds(sp, args.things) {
            log(quiet, format!("reusing SQLite baseline {}", sp.display()));
            sqlite_load = Some((0.0, true));
        } else {
            log(
                quiet,
                format!("loading the SQLite baseline into {}", sp.display()),
            );
            let t = Instant::now();
            let pb = bar(args.things, quiet, "SQLite");
            sqlite::load(
                sp,
                args.things,
                |done| pb.set_position(done),
                || pb.set_message("indexing"),
            )?;
            pb.finish_and_clear();
            let secs = t.elapsed().as_secs_f64();
            log(quiet, format!("SQLite baseline loaded in {secs:.2} s"));
            sqlite_load = Some((secs, false));
        }
    }
    let mut registry = Some(reg);
    let result = (|| -> Result<BenchReport> {
        let verified = match (&sqlite_path, &registry) {
            (Some(sp), Some(reg)) => {
                let v = verify(reg, sp, datagen_order)?;
                log(quiet, format!("verified: {v}"));
                Some(v)
            }
            _ => None,
        };
        let (iotdisco, hostile) = match (args.hostile, registry.take()) {
            (Some(percent), Some(reg)) => {
                let template = EngineRun {
                    engine: "iotdisco",
                    storage: format!("{storage}; stanzas through Engine::handle"),
                    load_seconds,
                    reused,
                    seconds: 0.0,
                    ops: Vec::new(),
                };
                let h = hostile::bench(reg, &args, threads, percent, &template)?;
                let first = h.phases.first().map(|p| p.run.clone()).unwrap_or(template);
                (first, Some(h))
            }
            (_, reg) => {
                log(
                    quiet,
                    format!(
                        "running iotdisco for {} s ({threads} readers + 1 writer)",
                        args.seconds
                    ),
                );
                let reg = reg.ok_or("the registry is gone")?;
                let (ops, secs) = bench_iotdisco(&reg, &args, threads)?;
                registry = Some(reg);
                let run = EngineRun {
                    engine: "iotdisco",
                    storage,
                    load_seconds,
                    reused,
                    seconds: secs,
                    ops,
                };
                (run, None)
            }
        };
        let sqlite = match (&sqlite_path, sqlite_load) {
            (Some(sp), Some((load_seconds, reused))) => {
                log(
                    quiet,
                    format!(
                        "running SQLite for {} s ({threads} readers + 1 writer)",
                        args.seconds
                    ),
                );
                let (ops, secs) = bench_sqlite(sp, &args, threads)?;
                Some(EngineRun {
                    engine: "sqlite",
                    storage: format!(
                        "SQLite {} EAV file {} (WAL, synchronous NORMAL, one connection per thread)",
                        rusqlite::version(),
                        sp.display()
                    ),
                    load_seconds,
                    reused,
                    seconds: secs,
                    ops,
                })
            }
            _ => None,
        };
        Ok(BenchReport {
            things: args.things,
            threads,
            seconds: args.seconds,
            cores,
            write_rate: args.write_rate,
            iotdisco,
            sqlite,
            verified,
            hostile,
        })
    })();
    if args.memory {
        if let Some(sp) = &sqlite_path {
            sqlite::remove(sp);
        }
    }
    let report = result?;
    if let Some(svg) = &args.svg {
        std::fs::write(svg, report::svg(&report))
            .map_err(|e| format!("cannot write {}: {e}", svg.display()))?;
        log(quiet, format!("wrote {}", svg.display()));
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        use std::io::Write;
        writeln!(out, "{:#}", report::json(&report))?;
    } else {
        report::table(&report, &mut out)?;
    }
    Ok(())
}
