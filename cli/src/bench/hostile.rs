//! `bench --hostile PERCENT`: well-behaved and hostile clients through the
//! stanza entry point, measured the same way.
//!
//! The registry is wrapped in an [`Engine`] (`discovery.example.org`,
//! [`EngineConfig::default`]) and every operation is a stanza handed to
//! [`Engine::handle`] with the bench's own clock (milliseconds since the engine
//! was made). The mix runs twice, S seconds each, with the same threads: first
//! with no hostile client, then with PERCENT% hostile operations.
//!
//! - Well-behaved readers: T threads loop over Q1-Q5 as the plain bench does,
//!   each search written as a stanza from the datagen query (checked to parse
//!   back to exactly that query) and sent from one of [`CLIENTS`] rotating
//!   client JIDs (`client{N}@example.org/app`), so no per-JID limit touches
//!   them. Only `handle` is timed (building the request and reading the reply
//!   are the client's side).
//! - Hostile operations: in the same reader streams, each operation is hostile
//!   with probability PERCENT/100 (deterministic: [`SEED`], per phase and
//!   thread). A hostile operation is one of four [`Kind`]s, equally likely,
//!   from few JIDs at `evil.example`: wrong `mine` claims (guessing), floods of
//!   expensive searches, `register`s of things with many random tag names (tag
//!   spam) and malformed stanzas. Their latency and the reply each got are
//!   counted by kind.
//! - The writer: the plain bench's register, claim and update of new things,
//!   as stanzas (register and update from the thing, `mine` from its owner; the
//!   thing acknowledges its `claimed` notification, inside the claim's time).
//!
//! Before the first phase each standard query runs 50 times, untimed (warm
//! caches). After each phase (untimed) the writer's things and the things the tag
//! spammers registered are unregistered, so the database holds the population
//! again. Peak RSS is the process's `VmHWM` (`/proc/self/status`); it is reset
//! at the start of each phase where the kernel allows (`/proc/self/clear_refs`),
//! so each phase also has its own peak.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hdrhistogram::Histogram;
use iotdisco::datagen::{self, GenThing, Rng};
use iotdisco::query::Operator;
use iotdisco::wire::request::{self, Body, Incoming, Limits, Request};
use iotdisco::wire::write;
use iotdisco::{Engine, EngineConfig, Handled, Jid, NodeAddress, Outbox, Registry, Search};

use super::{
    Args, CLAIM, EngineRun, OPS, REGISTER, Recorder, StepFn, UPDATE, WriteFn, elapsed_ns, log,
    run_mix, update_values, writer_thing,
};
use crate::{Error, Result};

/// The engine's address, the `to` of every stanza.
pub const REGISTRY_JID: &str = "discovery.example.org";
/// Seed of the hostile streams.
pub const SEED: u64 = 347;
/// How many distinct well-behaved client JIDs send the searches.
pub const CLIENTS: u64 = 10_000;
/// The XEP-0347 namespace every stanza speaks.
const NS: &str = "urn:xmpp:iot:discovery";
/// Tags of one tag-spam `register`.
const SPAM_TAGS: usize = 40;
/// Bytes of the oversized stanza.
const HUGE_BYTES: usize = 200 * 1024;

/// A kind of hostile operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `mine` with a real thing's serial number and a random `KEY`.
    Guess,
    /// Expensive searches: Q5, or an unanchored serial-number mask alone.
    Flood,
    /// `register` of a new thing (a node) with many random tag names.
    TagSpam,
    /// Truncated XML, DTDs, 200 KB stanzas, bad numbers, deep nesting.
    BadStanza,
}

impl Kind {
    /// Every kind, in table order.
    pub const ALL: [Kind; 4] = [Kind::Guess, Kind::Flood, Kind::TagSpam, Kind::BadStanza];

    /// Its name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Guess => "guess",
            Kind::Flood => "flood",
            Kind::TagSpam => "tag-spam",
            Kind::BadStanza => "bad-stanza",
        }
    }

    /// How many JIDs send it.
    pub fn jids(self) -> u64 {
        match self {
            Kind::BadStanza => 5,
            _ => 20,
        }
    }

    /// Its `i`-th sender.
    fn jid(self, i: u64) -> String {
        let p = match self {
            Kind::Guess => 'g',
            Kind::Flood => 'f',
            Kind::TagSpam => 's',
            Kind::BadStanza => 'b',
        };
        format!("{p}{i}@evil.example/bot")
    }
}

/// Latency percentiles of a group of operations, ns.
#[derive(Debug, Clone, Default)]
pub struct Latency {
    /// Operations.
    pub count: u64,
    /// `count` per second of the phase.
    pub per_second: f64,
    /// Median, ns.
    pub p50: u64,
    /// 90th percentile, ns.
    pub p90: u64,
    /// 99th percentile, ns.
    pub p99: u64,
    /// Maximum, ns.
    pub max: u64,
}

impl Latency {
    fn of(h: &Histogram<u64>, seconds: f64) -> Self {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            count: h.len(),
            per_second: h.len() as f64 / seconds,
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
        }
    }
}

/// One hostile kind's figures in a phase.
#[derive(Debug, Clone)]
pub struct KindStats {
    /// The kind.
    pub kind: Kind,
    /// Its latency (of `handle`).
    pub latency: Latency,
    /// Replies by outcome: `result`, an error condition (`resource-constraint`,
    /// `bad-request`, ...), or `dropped` / `not-mine` / `no-reply` when the
    /// engine sent nothing.
    pub outcomes: BTreeMap<String, u64>,
}

/// One run of the mix.
#[derive(Debug, Clone)]
pub struct Phase {
    /// Hostile share of the reader operations, percent.
    pub percent: f64,
    /// Per operation kind (well-behaved searches Q1-Q5 and the writer).
    pub run: EngineRun,
    /// All well-behaved searches together.
    pub searches: Latency,
    /// Well-behaved searches not answered with a result, by outcome (empty
    /// when every one was answered).
    pub searches_refused: BTreeMap<String, u64>,
    /// Writer operations not answered as expected, by `operation outcome`.
    pub writes_refused: BTreeMap<String, u64>,
    /// Operations of the reader streams (well-behaved and hostile).
    pub reader_ops: u64,
    /// Per hostile kind (empty at 0%).
    pub hostile: Vec<KindStats>,
    /// `VmHWM` at the end of the phase, bytes (None without /proc).
    pub peak_rss_bytes: Option<u64>,
    /// Whether the peak was reset at the start of the phase (else it is the
    /// process's peak so far).
    pub peak_reset: bool,
    /// Notifications the engine still waited an answer for at the end.
    pub outstanding: usize,
    /// The engine's own accounting of its memory at the end, before the
    /// cleanup ([`Engine::accounted_bytes`]), bytes.
    pub accounted_bytes: usize,
}

impl Phase {
    /// Hostile operations of the phase.
    pub fn hostile_ops(&self) -> u64 {
        self.hostile.iter().map(|k| k.latency.count).sum()
    }

    /// Hostile replies in the four summary buckets ([`BUCKETS`]).
    pub fn buckets(&self) -> [u64; 4] {
        let mut b = [0; 4];
        for k in &self.hostile {
            for (o, n) in &k.outcomes {
                b[bucket(o)] += n;
            }
        }
        b
    }
}

/// The summary buckets of hostile replies.
pub const BUCKETS: [&str; 4] = [
    "resource-constraint",
    "bad-request",
    "item-not-found",
    "other",
];

/// The [`BUCKETS`] index of an outcome.
pub fn bucket(outcome: &str) -> usize {
    BUCKETS[..3].iter().position(|b| *b == outcome).unwrap_or(3)
}

/// What `--hostile` measured.
#[derive(Debug, Clone)]
pub struct HostileReport {
    /// The hostile percentage asked for.
    pub percent: f64,
    /// Seed of the hostile streams.
    pub seed: u64,
    /// Distinct well-behaved client JIDs.
    pub clients: u64,
    /// The phase without hostile clients, then the one with them.
    pub phases: Vec<Phase>,
    /// Peak RSS of the whole process (load included), bytes.
    pub peak_rss_bytes: Option<u64>,
}

impl HostileReport {
    /// p99 of the well-behaved searches with hostile clients over without.
    pub fn p99_ratio(&self) -> Option<f64> {
        let (a, b) = (self.phases.first()?, self.phases.last()?);
        (a.searches.p99 > 0 && b.searches.count > 0)
            .then(|| b.searches.p99 as f64 / a.searches.p99 as f64)
    }
}

/// A reader thread's replies, merged over threads.
#[derive(Clone)]
pub(super) struct Tally {
    /// Well-behaved searches not answered with a result, by outcome.
    searches_refused: BTreeMap<String, u64>,
    /// Per [`Kind::ALL`]: latency and outcomes.
    kinds: Vec<(Histogram<u64>, BTreeMap<String, u64>)>,
    /// Reader operations.
    ops: u64,
}

impl Tally {
    fn new() -> Result<Self> {
        let mut kinds = Vec::new();
        for _ in Kind::ALL {
            let h = Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
                .map_err(|e| format!("histogram: {e}"))?;
            kinds.push((h, BTreeMap::new()));
        }
        Ok(Tally {
            searches_refused: BTreeMap::new(),
            kinds,
            ops: 0,
        })
    }

    pub(super) fn merge(&mut self, other: &Tally) -> Result<()> {
        add_counts(&mut self.searches_refused, &other.searches_refused);
        for ((h, o), (h2, o2)) in self.kinds.iter_mut().zip(&other.kinds) {
            h.add(h2).map_err(|e| format!("histogram: {e}"))?;
            add_counts(o, o2);
        }
        self.ops += other.ops;
        Ok(())
    }
}

fn add_counts(a: &mut BTreeMap<String, u64>, b: &BTreeMap<String, u64>) {
    for (k, n) in b {
        *a.entry(k.clone()).or_default() += n;
    }
}

fn count(m: &mut BTreeMap<String, u64>, key: &str) {
    match m.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            m.insert(key.to_string(), 1);
        }
    }
}

/// The process's peak resident set (`VmHWM`), bytes.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Resets `VmHWM` to the current RSS; whether the kernel let us.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// What a request got, when it was not a `result`: the error condition of the
/// reply, or what the engine did instead.
fn refusal<'o>(h: &Handled, out: &'o Outbox) -> Option<&'o str> {
    match h {
        Handled::Done => {}
        Handled::NotMine => return Some("not-mine"),
        Handled::Dropped(_) => return Some("dropped"),
        Handled::StoreFailed(_) => return Some("store-failed"),
    }
    let Some(reply) = out.get(0) else {
        return Some("no-reply");
    };
    if reply.starts_with(b"<iq type='result'") {
        return None;
    }
    Some(error_condition(reply).unwrap_or("other"))
}

/// The defined condition of an error reply (`<error type='..'><COND ...`).
fn error_condition(reply: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(reply).ok()?;
    let rest = &s[s.find("<error")?..];
    let rest = &rest[rest.find("><")? + 2..];
    let end = rest.find([' ', '/', '>'])?;
    Some(&rest[..end])
}

/// Things on a `<found/>` page and its `more`.
fn hits(reply: &[u8]) -> (usize, bool) {
    const THING: &[u8] = b"<thing ";
    const MORE: &[u8] = b"more='true'";
    let n = reply.windows(THING.len()).filter(|w| *w == THING).count();
    let more = reply.windows(MORE.len()).any(|w| w == MORE);
    (n, more)
}

fn open_iq(b: &mut Vec<u8>, kind: &str, from: &str, id: &str) {
    b.extend_from_slice(b"<iq type='");
    b.extend_from_slice(kind.as_bytes());
    b.push(b'\'');
    write::attr(b, "from", from);
    write::attr(b, "to", REGISTRY_JID);
    write::attr(b, "id", id);
    b.push(b'>');
}

fn tag_element(b: &mut Vec<u8>, t: &iotdisco::Tag) {
    match &t.value {
        iotdisco::TagValue::Str(s) => {
            b.extend_from_slice(b"<str");
            write::attr(b, "name", t.name.as_str());
            write::attr(b, "value", s);
        }
        iotdisco::TagValue::Num(n) => {
            b.extend_from_slice(b"<num");
            write::attr(b, "name", t.name.as_str());
            b.extend_from_slice(b" value='");
            write::number(b, *n);
            b.push(b'\'');
        }
    }
    b.extend_from_slice(b"/>");
}

fn bool_attr(b: &mut Vec<u8>, name: &str, v: bool) {
    write::attr(b, name, if v { "true" } else { "false" });
}

fn num_attr(b: &mut Vec<u8>, name: &str, v: iotdisco::tag::Number) {
    b.push(b' ');
    b.extend_from_slice(name.as_bytes());
    b.extend_from_slice(b"='");
    write::number(b, v);
    b.push(b'\'');
}

/// Appends one search operator element.
fn write_operator(b: &mut Vec<u8>, op: &Operator) -> Result<()> {
    let (masks, inner) = op.name_masks();
    b.push(b'<');
    b.extend_from_slice(inner.element().as_bytes());
    match masks[..] {
        [] => write::attr(b, "name", inner.name().as_str()),
        [m] => {
            write::attr(b, "name", m.source());
            write::attr(b, "nameWildcard", m.wildcard());
        }
        _ => return Err("a nested nameWildcard operator has no stanza form".into()),
    }
    use Operator as O;
    match inner {
        O::StrEq(_, v)
        | O::StrNEq(_, v)
        | O::StrGt(_, v)
        | O::StrGtEq(_, v)
        | O::StrLt(_, v)
        | O::StrLtEq(_, v) => write::attr(b, "value", v),
        O::StrRange(_, r) | O::StrNRange(_, r) => {
            write::attr(b, "min", &r.min);
            bool_attr(b, "minIncluded", r.min_included);
            write::attr(b, "max", &r.max);
            bool_attr(b, "maxIncluded", r.max_included);
        }
        O::StrMask(_, m) => {
            write::attr(b, "value", m.source());
            if let Some(w) = m.wildcard() {
                write::attr(b, "wildcard", w);
            }
        }
        O::StrRegEx(_, r) => write::attr(b, "value", r.source()),
        O::NumEq(_, v)
        | O::NumNEq(_, v)
        | O::NumGt(_, v)
        | O::NumGtEq(_, v)
        | O::NumLt(_, v)
        | O::NumLtEq(_, v) => num_attr(b, "value", *v),
        O::NumRange(_, r) | O::NumNRange(_, r) => {
            num_attr(b, "min", r.min);
            bool_attr(b, "minIncluded", r.min_included);
            num_attr(b, "max", r.max);
            bool_attr(b, "maxIncluded", r.max_included);
        }
        O::AnyName(..) => return Err("a nested nameWildcard operator has no stanza form".into()),
    }
    b.extend_from_slice(b"/>");
    Ok(())
}

/// The `<search/>` element of `s` (XEP-0347 namespace).
pub fn search_payload(s: &Search) -> Result<Vec<u8>> {
    let mut b = Vec::with_capacity(512);
    b.extend_from_slice(b"<search");
    write::attr(&mut b, "xmlns", NS);
    write::attr(&mut b, "offset", &s.offset.to_string());
    if let Some(m) = s.max_count {
        write::attr(&mut b, "maxCount", &m.to_string());
    }
    b.push(b'>');
    for op in &s.operators {
        write_operator(&mut b, op)?;
    }
    b.extend_from_slice(b"</search>");
    Ok(b)
}

/// The standard queries as `<search/>` payloads, each checked to parse back
/// to exactly the datagen query.
fn standard_payloads(engine: &Engine) -> Result<Vec<Vec<u8>>> {
    let c = engine.registry().config();
    let limits = Limits {
        max_stanza_bytes: EngineConfig::default().max_stanza_bytes,
        max_depth: EngineConfig::default().max_depth,
        max_tags: c.max_tags_per_thing,
        max_operators: c.max_search_operators,
    };
    let mut out = Vec::new();
    for (name, q) in datagen::standard_queries() {
        let payload = search_payload(&q)?;
        let mut stanza = Vec::new();
        open_iq(&mut stanza, "get", "client0@example.org/app", "check");
        stanza.extend_from_slice(&payload);
        stanza.extend_from_slice(b"</iq>");
        match request::parse(&stanza, &limits) {
            Incoming::Iq(_, Body::Discovery(_, Request::Search(s))) if s == q => {}
            other => {
                return Err(Error::new(format!(
                    "{name} written as a stanza does not read back as the query: {other:?}"
                )));
            }
        }
        out.push(payload);
    }
    Ok(out)
}

/// What the threads of one phase share.
struct Shared<'e> {
    engine: &'e Engine,
    clock: Instant,
    /// Hostile probability, in millionths.
    ppm: u64,
    phase: u64,
    threads: u32,
    things: u64,
    payloads: &'e [Vec<u8>],
    /// Things the tag spammers registered (to remove after the phase).
    spam: Mutex<Vec<(Jid, NodeAddress)>>,
    /// Writer operations not answered as expected.
    writes_refused: Mutex<BTreeMap<String, u64>>,
    /// Writer things registered so far (to remove after the phase).
    written: AtomicU64,
}

impl Shared<'_> {
    fn now_ms(&self) -> u64 {
        self.clock.elapsed().as_millis().min(u128::from(u64::MAX)) as u64
    }

    fn write_refused(&self, op: usize, outcome: &str) {
        if let Ok(mut m) = self.writes_refused.lock() {
            count(&mut m, &format!("{} {outcome}", OPS[op]));
        }
    }
}

/// One reader thread.
struct Reader<'s, 'e> {
    s: &'s Shared<'e>,
    t: u32,
    rng: Rng,
    seq: u64,
    q: usize,
    buf: Vec<u8>,
    out: Outbox,
}

impl Reader<'_, '_> {
    fn step(&mut self, rec: &mut Recorder) -> Result<()> {
        if rec.tally.is_none() {
            rec.tally = Some(Box::new(Tally::new()?));
        }
        self.seq += 1;
        if self.s.ppm > 0 && self.rng.below(1_000_000) < self.s.ppm {
            self.hostile(rec);
        } else {
            self.search(rec);
        }
        if let Some(t) = rec.tally.as_mut() {
            t.ops += 1;
        }
        Ok(())
    }

    fn id(&self, prefix: char) -> String {
        format!("{prefix}{}-{}-{}", self.s.phase, self.t, self.seq)
    }

    fn search(&mut self, rec: &mut Recorder) {
        let q = self.q;
        self.q = (q + 1) % 5;
        let client = (self.seq * u64::from(self.s.threads) + u64::from(self.t)) % CLIENTS;
        self.buf.clear();
        let id = self.id('w');
        open_iq(
            &mut self.buf,
            "get",
            &format!("client{client}@example.org/app"),
            &id,
        );
        self.buf.extend_from_slice(&self.s.payloads[q]);
        self.buf.extend_from_slice(b"</iq>");
        self.out.clear();
        let now = self.s.now_ms();
        let t0 = Instant::now();
        let h = self.s.engine.handle(&self.buf, now, &mut self.out);
        rec.record(q, t0);
        match refusal(&h, &self.out) {
            None => {
                if rec.hits[q].is_none() || self.seq % 256 < 5 {
                    rec.hits[q] = self.out.get(0).map(hits);
                }
            }
            Some(o) => {
                if let Some(t) = rec.tally.as_mut() {
                    count(&mut t.searches_refused, o);
                }
            }
        }
    }

    fn hostile(&mut self, rec: &mut Recorder) {
        let kind = Kind::ALL[self.rng.below(4) as usize];
        let i = self.rng.below(kind.jids());
        let from = kind.jid(i);
        let id = self.id('h');
        self.buf.clear();
        let node = self.build(kind, &from, &id);
        self.out.clear();
        let now = self.s.now_ms();
        let t0 = Instant::now();
        let h = self.s.engine.handle(&self.buf, now, &mut self.out);
        let ns = elapsed_ns(t0);
        let outcome = refusal(&h, &self.out).unwrap_or("result");
        if let Some((hist, outcomes)) = rec
            .tally
            .as_mut()
            .and_then(|t| t.kinds.get_mut(kind as usize))
        {
            hist.saturating_record(ns);
            count(outcomes, outcome);
        }
        if let (Some(node), "result") = (node, outcome) {
            if let (Ok(jid), Ok(mut spam)) = (Jid::parse(&from), self.s.spam.lock()) {
                spam.push((jid, node));
            }
        }
    }

    /// Writes the hostile stanza into `buf`; for tag spam, returns the node
    /// it registers.
    fn build(&mut self, kind: Kind, from: &str, id: &str) -> Option<NodeAddress> {
        let b = &mut self.buf;
        let r = &mut self.rng;
        match kind {
            Kind::Guess => {
                open_iq(b, "set", from, id);
                b.extend_from_slice(b"<mine xmlns='urn:xmpp:iot:discovery'>");
                let sn = datagen::serial(1, r.below(self.s.things));
                let key = format!("{:016x}{:08x}", r.next_u64(), r.next_u64() as u32);
                let man = datagen::MANUFACTURERS[r.below(50) as usize];
                for (name, value) in [("SN", sn.as_str()), ("MAN", man), ("KEY", &key)] {
                    b.extend_from_slice(b"<str");
                    write::attr(b, "name", name);
                    write::attr(b, "value", value);
                    b.extend_from_slice(b"/>");
                }
                b.extend_from_slice(b"</mine></iq>");
                None
            }
            Kind::Flood => {
                open_iq(b, "get", from, id);
                if r.below(2) == 0 {
                    // Q5, the most expensive query of the mix.
                    b.extend_from_slice(&self.s.payloads[4]);
                } else {
                    // A mask with inner wildcards only: every serial number is
                    // a candidate; a full page of 100 asked for.
                    let _ = write!(
                        Bytes(b),
                        "<search xmlns='{NS}' offset='0' maxCount='100'>\
                         <strMask name='SN' value='*{:04}*' wildcard='*'/></search>",
                        r.below(10_000)
                    );
                }
                b.extend_from_slice(b"</iq>");
                None
            }
            Kind::TagSpam => {
                let node = format!("spam{}-{}-{}", self.s.phase, self.t, self.seq);
                open_iq(b, "set", from, id);
                let _ = write!(Bytes(b), "<register xmlns='{NS}' nodeId='{node}'>");
                for _ in 0..SPAM_TAGS {
                    let _ = write!(
                        Bytes(b),
                        "<str name='Z{:012x}' value='{:08x}'/>",
                        r.next_u64() >> 16,
                        r.next_u64() as u32
                    );
                }
                b.extend_from_slice(b"</register></iq>");
                Some(NodeAddress::node(&node, None))
            }
            Kind::BadStanza => {
                self.bad_stanza(from, id);
                None
            }
        }
    }

    /// One of six malformed stanzas.
    fn bad_stanza(&mut self, from: &str, id: &str) {
        let b = &mut self.buf;
        let r = &mut self.rng;
        match r.below(6) {
            0 => {
                // Truncated: a Q1 search cut somewhere in its second half.
                open_iq(b, "get", from, id);
                b.extend_from_slice(&self.s.payloads[0]);
                b.extend_from_slice(b"</iq>");
                let half = b.len() / 2;
                b.truncate(half + r.below(half as u64) as usize);
            }
            1 => {
                // A DTD with nested entities before the root (billion laughs).
                b.extend_from_slice(
                    b"<!DOCTYPE iq [<!ENTITY a 'aaaaaaaaaa'>\
                      <!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'>\
                      <!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;'>\
                      <!ENTITY d '&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;'>]>",
                );
                open_iq(b, "get", from, id);
                b.extend_from_slice(
                    b"<search xmlns='urn:xmpp:iot:discovery'>\
                      <strEq name='MAN' value='&d;'/></search></iq>",
                );
            }
            2 => {
                // A DTD inside the stanza.
                open_iq(b, "set", from, id);
                b.extend_from_slice(
                    b"<!DOCTYPE register [<!ENTITY x SYSTEM 'file:///etc/passwd'>]>\
                      <register xmlns='urn:xmpp:iot:discovery'>\
                      <str name='SN' value='&x;'/></register></iq>",
                );
            }
            3 => {
                // 200 KB: one enormous value.
                open_iq(b, "set", from, id);
                b.extend_from_slice(
                    b"<register xmlns='urn:xmpp:iot:discovery'><str name='SN' value='",
                );
                b.resize(b.len() + HUGE_BYTES, b'7');
                b.extend_from_slice(b"'/></register></iq>");
            }
            4 => {
                // A number that is not one.
                const BAD: [&str; 6] = ["NaN", "INF", "1e999", "0x1F", "1,5", "--1"];
                let v = BAD[r.below(BAD.len() as u64) as usize];
                if r.below(2) == 0 {
                    open_iq(b, "set", from, id);
                    let _ = write!(
                        Bytes(b),
                        "<register xmlns='{NS}'><str name='SN' value='1'/>\
                         <num name='V' value='{v}'/></register></iq>"
                    );
                } else {
                    open_iq(b, "get", from, id);
                    let _ = write!(
                        Bytes(b),
                        "<search xmlns='{NS}'><numGtEq name='V' value='{v}'/></search></iq>"
                    );
                }
            }
            _ => {
                // Elements nested far deeper than any request.
                open_iq(b, "get", from, id);
                let _ = write!(Bytes(b), "<search xmlns='{NS}'>");
                for _ in 0..200 {
                    b.extend_from_slice(b"<strEq name='MAN' value='x'>");
                }
                for _ in 0..200 {
                    b.extend_from_slice(b"</strEq>");
                }
                b.extend_from_slice(b"</search></iq>");
            }
        }
    }
}

/// `write!` into a byte buffer.
struct Bytes<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// The writer: the plain bench's register, claim and update, as stanzas.
fn writer<'s>(s: &'s Shared<'_>) -> WriteFn<'s> {
    let n = s.things;
    let mut current: Option<GenThing> = None;
    let mut buf = Vec::with_capacity(1024);
    let mut out = Outbox::new();
    let mut answer = Vec::with_capacity(256);
    let mut ack = Outbox::new();
    Box::new(move |op: usize, k: u64| {
        buf.clear();
        out.clear();
        match op {
            REGISTER => {
                let g = writer_thing(n, k);
                s.written.fetch_max(k + 1, Ordering::Relaxed);
                open_iq(&mut buf, "set", &g.jid.to_string(), &format!("r{k}"));
                buf.extend_from_slice(b"<register xmlns='urn:xmpp:iot:discovery'>");
                for t in &g.tags {
                    tag_element(&mut buf, t);
                }
                buf.extend_from_slice(b"</register></iq>");
                current = Some(g);
            }
            CLAIM => {
                let g = current.as_ref().ok_or("claim before register")?;
                let owner = format!("{}/app", g.owner);
                open_iq(&mut buf, "set", &owner, &format!("c{k}"));
                buf.extend_from_slice(b"<mine xmlns='urn:xmpp:iot:discovery' public='true'>");
                for t in &g.tags {
                    tag_element(&mut buf, t);
                }
                buf.extend_from_slice(b"</mine></iq>");
            }
            _ => {
                let g = current.as_ref().ok_or("update before register")?;
                open_iq(&mut buf, "set", &g.jid.to_string(), &format!("u{k}"));
                buf.extend_from_slice(b"<update xmlns='urn:xmpp:iot:discovery'>");
                for (name, v) in update_values(k) {
                    let _ = write!(Bytes(&mut buf), "<num name='{name}' value='");
                    let v = iotdisco::tag::Number::new(v, name).map_err(|e| e.to_string())?;
                    write::number(&mut buf, v);
                    buf.extend_from_slice(b"'/>");
                }
                buf.extend_from_slice(b"</update></iq>");
            }
        }
        let now = s.now_ms();
        let h = s.engine.handle(&buf, now, &mut out);
        if let Some(o) = refusal(&h, &out) {
            s.write_refused(op, o);
        }
        // The thing acknowledges the notifications it got (`claimed`).
        for stanza in out.iter().skip(1) {
            let Some((to, id)) = notification_address(stanza) else {
                continue;
            };
            answer.clear();
            answer.extend_from_slice(b"<iq type='result'");
            write::attr(&mut answer, "from", to);
            write::attr(&mut answer, "to", REGISTRY_JID);
            write::attr(&mut answer, "id", id);
            answer.extend_from_slice(b"/>");
            ack.clear();
            s.engine.handle(&answer, now, &mut ack);
        }
        if op == UPDATE && k % 16 == 0 && s.engine.next_deadline().is_some_and(|d| d <= now) {
            ack.clear();
            s.engine.tick(now, &mut ack);
        }
        Ok(())
    })
}

/// The `to` and `id` of a notification the engine sent (`<iq type='set'`).
fn notification_address(stanza: &[u8]) -> Option<(&str, &str)> {
    let s = std::str::from_utf8(stanza).ok()?;
    if !s.starts_with("<iq type='set'") {
        return None;
    }
    let attr = |name: &str| -> Option<&str> {
        let key = format!(" {name}='");
        let start = s.find(&key)? + key.len();
        let len = s[start..].find('\'')?;
        Some(&s[start..start + len])
    };
    Some((attr("to")?, attr("id")?))
}

/// Runs one phase; removes what it added, also when it fails.
#[allow(clippy::too_many_arguments)]
fn phase(
    engine: &Engine,
    payloads: &[Vec<u8>],
    clock: Instant,
    index: u64,
    percent: f64,
    args: &Args,
    threads: u32,
    template: &EngineRun,
) -> Result<Phase> {
    let shared = Shared {
        engine,
        clock,
        ppm: (percent * 10_000.0).round() as u64,
        phase: index,
        threads,
        things: args.things,
        payloads,
        spam: Mutex::new(Vec::new()),
        writes_refused: Mutex::new(BTreeMap::new()),
        written: AtomicU64::new(0),
    };
    let s = &shared;
    let make_reader = |t: u32| -> Result<StepFn<'_>> {
        let mut r = Reader {
            s,
            t,
            rng: Rng::new(SEED, index * 1_000_000 + u64::from(t)),
            seq: 0,
            q: t as usize % 5,
            buf: Vec::with_capacity(4096),
            out: Outbox::new(),
        };
        Ok(Box::new(move |rec: &mut Recorder| r.step(rec)))
    };
    let make_writer = || -> Result<WriteFn<'_>> { Ok(writer(s)) };
    let peak_reset = reset_peak_rss();
    let result = run_mix(
        threads,
        args.seconds,
        args.write_rate,
        &make_reader,
        &make_writer,
    );
    let peak_rss_bytes = peak_rss();
    let outstanding = engine.outstanding();
    let accounted_bytes = engine.accounted_bytes();
    // Untimed cleanup: the writer's things and the tag spammers'.
    let reg = engine.registry();
    for k in 0..shared.written.load(Ordering::Relaxed) {
        let g = writer_thing(args.things, k);
        let _ = reg.unregister(&g.jid, NodeAddress::default());
    }
    let spam = shared.spam.into_inner().unwrap_or_default();
    for (jid, node) in spam {
        let _ = reg.unregister(&jid, node);
    }
    reg.flush().map_err(|e| format!("flush: {e}"))?;
    let (rec, secs, _) = result?;
    let mut searches =
        Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).map_err(|e| e.to_string())?;
    for h in &rec.hist[..5] {
        searches.add(h).map_err(|e| format!("histogram: {e}"))?;
    }
    let tally = match rec.tally.as_deref() {
        Some(t) => t.clone(),
        None => Tally::new()?,
    };
    let hostile = Kind::ALL
        .iter()
        .zip(&tally.kinds)
        .filter(|_| percent > 0.0)
        .map(|(kind, (h, outcomes))| KindStats {
            kind: *kind,
            latency: Latency::of(h, secs),
            outcomes: outcomes.clone(),
        })
        .collect();
    let mut run = template.clone();
    run.storage = format!("{}, {percent}% hostile", template.storage);
    run.seconds = secs;
    run.ops = rec.stats(secs);
    Ok(Phase {
        percent,
        run,
        searches: Latency::of(&searches, secs),
        searches_refused: tally.searches_refused,
        writes_refused: shared.writes_refused.into_inner().unwrap_or_default(),
        reader_ops: tally.ops,
        hostile,
        peak_rss_bytes,
        peak_reset,
        outstanding,
        accounted_bytes,
    })
}

/// Untimed: each standard query a few times through the engine, so that the
/// first phase does not pay for cold caches alone.
fn warm_up(engine: &Engine, payloads: &[Vec<u8>]) {
    let mut buf = Vec::new();
    let mut out = Outbox::new();
    for round in 0..50 {
        for p in payloads {
            buf.clear();
            open_iq(
                &mut buf,
                "get",
                &format!("warm{round}@example.org/app"),
                "warm",
            );
            buf.extend_from_slice(p);
            buf.extend_from_slice(b"</iq>");
            out.clear();
            engine.handle(&buf, 0, &mut out);
        }
    }
}

/// Runs the two phases (0%, then `percent`) on `reg` behind an engine.
/// `template` carries the storage description and load figures of the run.
pub(super) fn bench(
    reg: Registry,
    args: &Args,
    threads: u32,
    percent: f64,
    template: &EngineRun,
) -> Result<HostileReport> {
    let quiet = args.json;
    let engine = Engine::new(REGISTRY_JID, reg, EngineConfig::default())
        .map_err(|e| format!("engine address: {e}"))?;
    let payloads = standard_payloads(&engine)?;
    let clock = Instant::now();
    warm_up(&engine, &payloads);
    let mut peak = peak_rss();
    let mut phases = Vec::new();
    for (index, p) in [0.0, percent].into_iter().enumerate() {
        log(
            quiet,
            format!(
                "running iotdisco through Engine::handle for {} s with {p}% hostile \
                 operations ({threads} readers + 1 writer)",
                args.seconds
            ),
        );
        let ph = phase(
            &engine,
            &payloads,
            clock,
            index as u64,
            p,
            args,
            threads,
            template,
        )?;
        peak = peak.max(ph.peak_rss_bytes);
        phases.push(ph);
    }
    Ok(HostileReport {
        percent,
        seed: SEED,
        clients: CLIENTS,
        phases,
        peak_rss_bytes: peak.max(peak_rss()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_read_from_replies() {
        let err = b"<iq type='error' from='r' to='c@x/y' id='1'><error type='wait'>\
            <resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>";
        assert_eq!(error_condition(err), Some("resource-constraint"));
        assert_eq!(bucket("resource-constraint"), 0);
        assert_eq!(bucket("bad-request"), 1);
        assert_eq!(bucket("item-not-found"), 2);
        assert_eq!(bucket("dropped"), 3);
        let found = b"<iq type='result'><found xmlns='x' more='true'><thing jid='a'/>\
            <thing jid='b'/></found></iq>";
        assert_eq!(hits(found), (2, true));
        let n = b"<iq type='set' from='r' to='thing1@d1.example.org/imc' id='d-1'><claimed/></iq>";
        assert_eq!(
            notification_address(n),
            Some(("thing1@d1.example.org/imc", "d-1"))
        );
    }

    #[test]
    fn every_standard_query_has_a_stanza_form() {
        let engine = Engine::new(
            REGISTRY_JID,
            Registry::new(iotdisco::Config::default()),
            EngineConfig::default(),
        )
        .unwrap();
        assert_eq!(standard_payloads(&engine).unwrap().len(), 5);
    }
}
