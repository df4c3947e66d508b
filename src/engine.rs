//! The sans-I/O engine: stanza bytes in, stanza bytes out.
//!
//! [`Engine`] wraps a [`Registry`] with the wire format. The host (an XMPP
//! server module, the XEP-0114 component, a test) owns the sockets and the clock
//! and drives it with three calls, each appending the stanzas to send to an
//! [`Outbox`]:
//!
//! - [`Engine::handle`]: one `<iq/>` as received, `from` stamped by the server.
//!   Requests get their reply (and notifications to things, `<iq type='set'/>`
//!   with ids the engine generates); a thing's `result`/`error` to one of those
//!   notifications is matched by id and sender. Anything else is
//!   [`Handled::NotMine`] and the host routes it elsewhere.
//! - [`Engine::presence`]: a full JID became available or unavailable.
//! - [`Engine::tick`]: the host's clock passed [`Engine::next_deadline`].
//!
//! A disown is the one request whose reply waits: the engine sends `disowned` to
//! the thing and answers the owner when the thing acknowledges (empty result),
//! refuses, goes offline or stays silent past the time-out (`not-allowed`).
//! Things built on Smack register a handler for an element named `disown`, not
//! `disowned`; with [`EngineConfig::disown_element_fallback`] on (the default),
//! a thing that answers `disowned` with `feature-not-implemented` or
//! `service-unavailable` gets the same notification once more as `disown`.
//! Apps built on IoTGateway send a new `register` (or `unregister`) before they
//! acknowledge `disowned`: such a request from the thing (same bare JID and node)
//! while its disown waits is taken as the acknowledgement: the disown completes
//! (the owner's reply goes out first), then the request is served against the
//! now unclaimed thing, and the thing's late answer is absorbed.
//!
//! Dialects ([`crate::wire::dialect`]): requests are answered in their own
//! namespace. Notifications to a thing are written in the dialect that thing
//! last registered or updated with, remembered per bare JID in memory only
//! (at most [`EngineConfig::max_remembered_dialects`], oldest forgotten first;
//! not persisted: after a restart, or once forgotten, a thing is notified in
//! XEP-0347 until its next `register` or `update`).
//!
//! ```
//! use iotdisco::{Config, Engine, EngineConfig, Handled, Outbox, Registry};
//!
//! let engine = Engine::new("discovery.example.org", Registry::new(Config::default()),
//!                          EngineConfig::default()).unwrap();
//! let mut out = Outbox::new();
//! let stanza = b"<iq type='set' from='thing@example.org/imc' to='discovery.example.org' id='1'>\
//!     <register xmlns='urn:xmpp:iot:discovery'><str name='SN' value='394872348732948723'/>\
//!     <str name='KEY' value='4857402340298342'/></register></iq>";
//! assert_eq!(engine.handle(stanza, 0, &mut out), Handled::Done);
//! assert_eq!(out.to_strings(), ["<iq type='result' from='discovery.example.org' \
//!     to='thing@example.org/imc' id='1'/>"]);
//! ```
//!
//! Invariants: every reply goes to the request's `from` with its `id`, from the
//! address the request was sent `to`; every notification waiting for an answer
//! is in the outstanding table under its id until answered, expired or evicted;
//! the table never holds more than [`EngineConfig::max_outstanding`] entries.
//! The engine is `Sync`: any number of threads may call it at once (searches
//! run in parallel; notification bookkeeping takes one short lock).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use crate::jid::{BareJid, Jid, JidError};
use crate::registry::{
    Notification, NotificationKind, PendingId, RegisterOutcome, Registry, RegistryError,
    UpdateOutcome,
};
use crate::store::UndeliveredKind;
use crate::sync::{AtomicU64, Mutex, Ordering};
use crate::thing::{NodeAddress, ThingKey};
use crate::throttle::{Buckets, Rate, Verdict};
use crate::wire::dialect::{self, Dialect, Family};
use crate::wire::request::{self, Body, Head, Incoming, Limits, Refusal, Request, TagNameLimits};
use crate::wire::write::{self, StanzaError};

/// What to do with a `get`/`set` whose payload is in a namespace the engine does
/// not serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Foreign {
    /// Return [`Handled::NotMine`]: the host routes it elsewhere (a server
    /// module).
    NotMine,
    /// Answer `service-unavailable` (a component that owns its address).
    ServiceUnavailable,
}

/// Settings of the wire layer (the registry's own are in [`crate::Config`]).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Largest stanza accepted, in bytes (larger ones get `bad-request`).
    pub max_stanza_bytes: usize,
    /// Deepest element nesting accepted (the `<iq/>` is depth 1).
    pub max_depth: usize,
    /// Policy for requests in other namespaces.
    pub foreign: Foreign,
    /// Retry a refused `disowned` notification once as `disown` (Smack things).
    pub disown_element_fallback: bool,
    /// How long a `claimed` or `removed` notification waits for its answer
    /// before it is forgotten, in milliseconds.
    pub notification_timeout_ms: u64,
    /// Most notifications waiting for an answer at once; past it the oldest
    /// `claimed`/`removed` entry is forgotten.
    pub max_outstanding: usize,
    /// The `name` of the disco#info identity.
    pub identity_name: String,
    /// Leave `owner` out of search results in the XEP-0347 namespace too (the
    /// successor namespaces never carry it, for privacy). Off by default: the
    /// XEP's listings show it.
    pub hide_owner_in_xep_results: bool,
    /// Longest tag name of a `register`, `mine` or `update` in the XEP-0347
    /// namespace, in characters (32, spec 5.2; at most 64).
    pub max_tag_name_chars_xep: usize,
    /// Longest tag name of a `register`, `mine` or `update` in the successor
    /// namespaces, in characters (64, the successor spec; at most 64).
    pub max_tag_name_chars_successor: usize,
    /// Most things whose dialect the engine remembers for notifications (past
    /// it the least recently registered or updated is forgotten and gets
    /// XEP-0347 notifications again). Things speaking XEP-0347 take no entry.
    /// Each entry costs about 100 bytes plus the JID.
    pub max_remembered_dialects: usize,
    /// Failed claims (`mine` answered `item-not-found`) allowed per claimant
    /// bare JID (spec 6.3, 6.5): a burst, then a rate per hour. Past it every
    /// `mine` from that JID is refused with `resource-constraint` (`wait`)
    /// before it is matched, right or wrong, until the budget refills on the
    /// host's clock. Default 20, then 100 per hour.
    pub claim_failures: Rate,
    /// The same budget per claimant domain. Default 200, then 1,000 per hour.
    pub claim_failures_per_domain: Rate,
    /// `register`, `update`, `unregister`, `remove` and `disown` requests per
    /// sender bare JID. Default a burst of 1,000, then 360,000 per hour (100/s).
    pub writes: Rate,
    /// `search` requests per sender bare JID. Default a burst of 1,000, then
    /// 360,000 per hour (100/s).
    pub searches: Rate,
    /// Most senders (bare JIDs, and domains for claims) each budget table
    /// tracks; past it, refilled entries and then the least recently seen are
    /// forgotten. Each entry costs about 25 bytes (a sender is kept as a
    /// seeded 64-bit hash, not a copy of its JID).
    pub max_rate_limited_senders: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_stanza_bytes: 128 * 1024,
            max_depth: 16,
            foreign: Foreign::NotMine,
            disown_element_fallback: true,
            notification_timeout_ms: 30_000,
            max_outstanding: 200_000,
            identity_name: "Thing Registry".into(),
            hide_owner_in_xep_results: false,
            max_tag_name_chars_xep: crate::tag::MAX_NAME_CHARS,
            max_tag_name_chars_successor: crate::tag::MAX_NAME_CHARS_ANY,
            max_remembered_dialects: 1_000_000,
            claim_failures: Rate::new(20, 100),
            claim_failures_per_domain: Rate::new(200, 1_000),
            writes: Rate::new(1_000, 360_000),
            searches: Rate::new(1_000, 360_000),
            max_rate_limited_senders: 100_000,
        }
    }
}

/// What [`Engine::handle`] did with a stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Processed; whatever must be sent was appended to the outbox (possibly
    /// nothing, e.g. for a thing's answer, or a disown still waiting).
    Done,
    /// Not a discovery or service discovery IQ, nor an answer to one of our
    /// notifications: route it elsewhere. Nothing was appended.
    NotMine,
    /// An `<iq/>` so broken no reply can be addressed (no `id`, no or bad
    /// `from`): dropped, with the reason. Nothing was appended.
    Dropped(String),
    /// Processed, but the store failed: the reply appended is an
    /// `internal-server-error` and the change was not made (or not made
    /// durable). Carries the store's message, for the host to log or alert on.
    StoreFailed(String),
}

/// Stanzas to send, in order, in one reusable buffer.
#[derive(Debug, Default, Clone)]
pub struct Outbox {
    buf: Vec<u8>,
    ends: Vec<usize>,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Outbox::default()
    }

    /// Forgets every stanza (keeps the memory).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    /// How many stanzas.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Stanza `i`.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.buf[start..end])
    }

    /// The stanzas in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.ends.len()).filter_map(|i| self.get(i))
    }

    /// The stanzas as strings (they are always UTF-8), for tests and logs.
    pub fn to_strings(&self) -> Vec<String> {
        self.iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    }

    /// Appends one stanza written by `f`.
    fn push(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        f(&mut self.buf);
        self.ends.push(self.buf.len());
    }
}

/// Where a reply goes: the request's addressing.
struct ReplyTo {
    from: String,
    to: String,
    id: String,
}

/// What a notification waiting for an answer was about.
#[derive(Debug)]
enum What {
    /// `claimed` or `removed`, after `attempts` sends (this one included).
    Told {
        kind: UndeliveredKind,
        node: NodeAddress,
        attempts: u8,
    },
    /// A `disowned` the thing acknowledged with a new `register`/`unregister`:
    /// its late answer only closes the exchange.
    Acknowledged,
    Disown {
        pending: PendingId,
        retried: bool,
        node: NodeAddress,
        dialect: &'static Dialect,
    },
}

#[derive(Debug)]
struct Sent {
    to: Jid,
    deadline: u64,
    what: What,
}

/// The owner waiting for the outcome of a disown.
struct OwnerReply {
    reply: ReplyTo,
    /// The id of the notification currently out for it.
    notification: Box<str>,
}

#[derive(Default)]
struct Outstanding {
    sent: HashMap<Box<str>, Sent>,
    by_deadline: BTreeSet<(u64, Box<str>)>,
    disowns: HashMap<PendingId, OwnerReply>,
}

impl Outstanding {
    fn insert(&mut self, id: Box<str>, s: Sent) {
        self.by_deadline.insert((s.deadline, id.clone()));
        self.sent.insert(id, s);
    }

    fn take(&mut self, id: &str) -> Option<Sent> {
        let s = self.sent.remove(id)?;
        self.by_deadline.remove(&(s.deadline, Box::from(id)));
        Some(s)
    }
}

/// The dialect each thing (bare JID) last registered or updated with, for its
/// notifications. Only dialects other than the default take an entry; bounded,
/// the least recently set entry goes first.
#[derive(Default)]
struct Dialects {
    by_jid: HashMap<BareJid, (u64, &'static Dialect)>,
    order: BTreeMap<u64, BareJid>,
    next: u64,
}

impl Dialects {
    fn set(&mut self, jid: &BareJid, d: &'static Dialect, cap: usize) {
        let default = std::ptr::eq(d, dialect::default_dialect());
        if default && self.by_jid.is_empty() {
            return;
        }
        let old = self.by_jid.remove(jid);
        let jid = match old {
            Some((seq, _)) => self.order.remove(&seq).unwrap_or_else(|| jid.clone()),
            None => jid.clone(),
        };
        if default || cap == 0 {
            return;
        }
        let seq = self.next;
        self.next += 1;
        self.by_jid.insert(jid.clone(), (seq, d));
        self.order.insert(seq, jid);
        while self.by_jid.len() > cap {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.by_jid.remove(&oldest);
        }
    }

    fn get(&self, jid: &BareJid) -> &'static Dialect {
        match self.by_jid.get(jid) {
            Some((_, d)) => d,
            None => dialect::default_dialect(),
        }
    }
}

/// The sans-I/O discovery engine. See the module documentation.
pub struct Engine {
    registry: Registry,
    jid: String,
    config: EngineConfig,
    limits: Limits,
    names: TagNameLimits,
    outstanding: Mutex<Outstanding>,
    /// Taken after `outstanding` when both are, never before.
    dialects: Mutex<Dialects>,
    id_prefix: String,
    next_id: AtomicU64,
    budgets: Budgets,
}

/// The per-sender budgets (see [`crate::throttle`]).
struct Budgets {
    claim_failures: Buckets,
    claim_failures_per_domain: Buckets,
    writes: Buckets,
    searches: Buckets,
}

impl Budgets {
    fn new(c: &EngineConfig) -> Budgets {
        let cap = c.max_rate_limited_senders;
        Budgets {
            claim_failures: Buckets::new(c.claim_failures, cap),
            claim_failures_per_domain: Buckets::new(c.claim_failures_per_domain, cap),
            writes: Buckets::new(c.writes, cap),
            searches: Buckets::new(c.searches, cap),
        }
    }

    /// Whether `req` from `from` is within its budget at `now_ms` (spending a
    /// write or search token; a claim only checks: failures spend).
    fn admit(&self, req: &Request, from: &Jid, now_ms: u64) -> Result<(), StanzaError> {
        let bare = from.bare();
        let refused = |retry_ms: u64, what: &str| {
            let secs = retry_ms.div_ceil(1000).max(1);
            Err(StanzaError {
                kind: "wait",
                condition: "resource-constraint",
                text: Some(format!("{what}; try again in {secs} s")),
            })
        };
        match req {
            Request::Claim(_) => {
                if let Verdict::Refused { retry_ms } =
                    self.claim_failures.check(bare.as_str(), now_ms)
                {
                    return refused(retry_ms, "too many failed claims from this address");
                }
                if let Verdict::Refused { retry_ms } =
                    self.claim_failures_per_domain.check(bare.domain(), now_ms)
                {
                    return refused(retry_ms, "too many failed claims from this domain");
                }
                Ok(())
            }
            Request::Search(_) => match self.searches.spend(bare.as_str(), now_ms) {
                Verdict::Refused { retry_ms } => refused(retry_ms, "too many searches"),
                Verdict::Allowed => Ok(()),
            },
            _ => match self.writes.spend(bare.as_str(), now_ms) {
                Verdict::Refused { retry_ms } => refused(retry_ms, "too many requests"),
                Verdict::Allowed => Ok(()),
            },
        }
    }

    /// Counts a failed claim against the claimant and its domain.
    fn claim_failed(&self, from: &Jid, now_ms: u64) {
        let bare = from.bare();
        self.claim_failures.spend(bare.as_str(), now_ms);
        self.claim_failures_per_domain.spend(bare.domain(), now_ms);
    }

    fn heap_bytes(&self) -> usize {
        self.claim_failures.heap_bytes()
            + self.claim_failures_per_domain.heap_bytes()
            + self.writes.heap_bytes()
            + self.searches.heap_bytes()
    }
}

impl Engine {
    /// An engine serving `registry` at the address `jid` (the component's
    /// domain, or the registry's bare JID); `jid` is the `from` of
    /// notifications.
    pub fn new(jid: &str, registry: Registry, config: EngineConfig) -> Result<Self, JidError> {
        let jid = BareJid::parse(jid)?.as_str().to_string();
        let limits = Limits {
            max_stanza_bytes: config.max_stanza_bytes,
            max_depth: config.max_depth.max(3),
            max_tags: registry.config().max_tags_per_thing,
            max_operators: registry.config().max_search_operators,
        };
        let names = TagNameLimits {
            xep: config.max_tag_name_chars_xep,
            successor: config.max_tag_name_chars_successor,
        };
        let budgets = Budgets::new(&config);
        let mut seed = [0u8; 4];
        // Ids only need to differ between runs; a clock-free fallback is fine.
        let _ = getrandom::fill(&mut seed);
        Ok(Engine {
            registry,
            jid,
            config,
            limits,
            names,
            outstanding: Mutex::new(Outstanding::default()),
            dialects: Mutex::new(Dialects::default()),
            id_prefix: format!("d{:08x}", u32::from_le_bytes(seed)),
            next_id: AtomicU64::new(1),
            budgets,
        })
    }

    /// The registry behind the engine.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The engine's address.
    pub fn jid(&self) -> &str {
        &self.jid
    }

    /// Notifications waiting for an answer.
    pub fn outstanding(&self) -> usize {
        self.outstanding.lock().sent.len()
    }

    /// Handles one stanza received at `now_ms` (host clock), appending what to
    /// send to `out`.
    pub fn handle(&self, stanza: &[u8], now_ms: u64, out: &mut Outbox) -> Handled {
        let (head, body) = match request::parse_with(stanza, &self.limits, &self.names) {
            Incoming::NotIq => return Handled::NotMine,
            Incoming::Unaddressable(why) => return Handled::Dropped(why),
            Incoming::Iq(head, body) => (head, body),
        };
        let reply = ReplyTo {
            from: head.to.clone().unwrap_or_else(|| self.jid.clone()),
            to: head.from.clone(),
            id: head.id.clone(),
        };
        match body {
            Body::Discovery(d, req) => {
                let failed = self.serve(d, req, &head, reply, now_ms, out);
                // The thing is back: what it missed goes out after the reply.
                self.redeliver(&head.sender, now_ms, out);
                if let Some(why) = failed {
                    return Handled::StoreFailed(why);
                }
            }
            Body::DiscoInfo(node) => {
                out.push(|b| match node {
                    Some(_) => write::error(
                        b,
                        &reply.from,
                        &reply.to,
                        &reply.id,
                        &StanzaError::new("cancel", "item-not-found"),
                    ),
                    None => self.disco_info(b, &reply),
                });
            }
            Body::DiscoItems(node) => {
                out.push(|b| match node {
                    Some(_) => write::error(
                        b,
                        &reply.from,
                        &reply.to,
                        &reply.id,
                        &StanzaError::new("cancel", "item-not-found"),
                    ),
                    None => {
                        write::iq_open(b, "result", &reply.from, &reply.to, &reply.id);
                        b.extend_from_slice(b"><query xmlns='");
                        b.extend_from_slice(dialect::DISCO_ITEMS.as_bytes());
                        b.extend_from_slice(b"'/></iq>");
                    }
                });
            }
            Body::Refused(_, why) => {
                let e = match why {
                    Refusal::BadRequest(t) => StanzaError::bad_request(t),
                    Refusal::Unsupported(t) => StanzaError {
                        kind: "cancel",
                        condition: "feature-not-implemented",
                        text: Some(t),
                    },
                };
                out.push(|b| write::error(b, &reply.from, &reply.to, &reply.id, &e));
            }
            Body::Foreign => match self.config.foreign {
                Foreign::NotMine => return Handled::NotMine,
                Foreign::ServiceUnavailable => out.push(|b| {
                    write::error(
                        b,
                        &reply.from,
                        &reply.to,
                        &reply.id,
                        &StanzaError::new("cancel", "service-unavailable"),
                    )
                }),
            },
            Body::Answer(condition) => return self.answer(&head, condition, now_ms, out),
        }
        Handled::Done
    }

    /// The host no longer learns the presence of `jid`'s bare JID (it
    /// unsubscribed from the registry; a resource, if given, is ignored): its
    /// presence becomes unknown. Unlike `presence(jid, false)` this does not fail
    /// a disown waiting for it: the thing may well be online, and it still gets
    /// the chance to answer.
    pub fn forget_presence(&self, jid: &str) -> Result<(), JidError> {
        let jid = Jid::parse(jid)?;
        self.registry.forget_presence(jid.bare());
        Ok(())
    }

    /// The host reports that `jid` became available or unavailable at `now_ms`.
    /// A thing that goes away while a disown waits for it fails that disown at
    /// once (the owner gets `not-allowed`).
    pub fn presence(
        &self,
        jid: &str,
        available: bool,
        now_ms: u64,
        out: &mut Outbox,
    ) -> Result<(), JidError> {
        let jid = Jid::parse(jid)?;
        let mut o = self.outstanding.lock();
        self.registry.presence(&jid, available);
        if available {
            drop(o);
            self.redeliver(&jid, now_ms, out);
            return Ok(());
        }
        let gone: Vec<(PendingId, Box<str>)> = o
            .disowns
            .iter()
            .filter(|(_, r)| {
                o.sent.get(&r.notification).is_some_and(|s| {
                    s.to.bare() == jid.bare()
                        && (jid.resource().is_none() || s.to.resource() == jid.resource())
                })
            })
            .map(|(p, r)| (*p, r.notification.clone()))
            .collect();
        for (pending, id) in gone {
            o.take(&id);
            if let Some(res) = self.registry.resolve_disown(pending, false, now_ms) {
                self.disown_done(&mut o, res.pending, res.result, out);
            }
        }
        Ok(())
    }

    /// Fails what timed out at `now_ms`: disowns (the owner gets `not-allowed`)
    /// and forgotten notifications.
    pub fn tick(&self, now_ms: u64, out: &mut Outbox) {
        let mut o = self.outstanding.lock();
        for res in self.registry.expire(now_ms) {
            self.disown_done(&mut o, res.pending, res.result, out);
        }
        let mut unanswered = Vec::new();
        while let Some((deadline, _)) = o.by_deadline.first() {
            if *deadline > now_ms {
                break;
            }
            if let Some((_, id)) = o.by_deadline.pop_first() {
                unanswered.extend(o.sent.remove(&id));
            }
        }
        // Not answered in time: kept for the thing's return (after the lock: a
        // keep writes to the store).
        drop(o);
        for sent in &unanswered {
            self.keep(sent);
        }
    }

    /// Keeps a `claimed`/`removed` the thing did not acknowledge, to deliver it
    /// again when the thing is next seen (a store failure loses only that).
    /// Called without the outstanding lock: it writes to the store.
    fn keep(&self, sent: &Sent) {
        if let What::Told {
            kind,
            node,
            attempts,
        } = &sent.what
        {
            let thing = ThingKey {
                jid: sent.to.bare().clone(),
                node: node.clone(),
            };
            let _ = self.registry.keep_undelivered(&thing, *kind, *attempts);
        }
    }

    /// Sends `seen` (a thing just seen: presence or a request) what it missed.
    fn redeliver(&self, seen: &Jid, now_ms: u64, out: &mut Outbox) {
        for (n, attempts) in self.registry.take_undelivered(seen) {
            self.notify_after(n, attempts, now_ms, out);
        }
    }

    /// Bytes the engine and its registry account for: records, indexes, the
    /// per-JID state of the registry (presence, pending disowns, undelivered
    /// notifications) and of the engine (notifications waiting for answers,
    /// remembered dialects, rate-limit tables). Every part but the records and
    /// indexes has a hard bound in the configuration.
    pub fn accounted_bytes(&self) -> usize {
        let s = self.registry.stats();
        let outstanding = {
            let o = self.outstanding.lock();
            let per = std::mem::size_of::<(Box<str>, Sent)>()
                + std::mem::size_of::<(u64, Box<str>)>()
                + 96;
            o.sent.len() * per + o.disowns.len() * (std::mem::size_of::<OwnerReply>() + 96)
        };
        let dialects = self.dialects.lock().by_jid.len() * 160;
        s.record_bytes
            + s.index_bytes
            + s.state_bytes
            + outstanding
            + dialects
            + self.budgets.heap_bytes()
    }

    /// When [`Engine::tick`] should next be called, if anything waits.
    pub fn next_deadline(&self) -> Option<u64> {
        let o = self.outstanding.lock();
        let mine = o.by_deadline.first().map(|(d, _)| *d);
        match (mine, self.registry.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn serve(
        &self,
        d: &'static Dialect,
        req: Request,
        head: &Head,
        reply: ReplyTo,
        now_ms: u64,
        out: &mut Outbox,
    ) -> Option<String> {
        let from = &head.sender;
        let store_failure = std::cell::RefCell::new(None);
        let fail = |out: &mut Outbox, e: &RegistryError| {
            if let RegistryError::Storage(why) = e {
                *store_failure.borrow_mut() = Some(why.0.clone());
            }
            let e = StanzaError::from_registry(e);
            out.push(|b| write::error(b, &reply.from, &reply.to, &reply.id, &e));
        };
        let empty = |out: &mut Outbox| {
            out.push(|b| write::empty_result(b, &reply.from, &reply.to, &reply.id));
        };
        if let Err(e) = self.budgets.admit(&req, from, now_ms) {
            out.push(|b| write::error(b, &reply.from, &reply.to, &reply.id, &e));
            return None;
        }
        match req {
            Request::Register(r) => {
                let key = ThingKey {
                    jid: from.bare().clone(),
                    node: r.node.clone(),
                };
                if let Some(why) = self.acknowledge_disowns(&key, now_ms, out) {
                    *store_failure.borrow_mut() = Some(why);
                }
                let result = self.registry.register(from, r);
                if result.is_ok() {
                    self.remember(from.bare(), d);
                }
                match result {
                    Ok(RegisterOutcome::Registered) => empty(out),
                    Ok(RegisterOutcome::AlreadyClaimed { owner, public }) => out.push(|b| {
                        write::iq_open(b, "result", &reply.from, &reply.to, &reply.id);
                        b.push(b'>');
                        write::claimed(b, d, owner.as_str(), Some(public), [None; 3]);
                        b.extend_from_slice(b"</iq>");
                    }),
                    Err(e) => fail(out, &e),
                }
            }
            Request::Claim(c) => match self.registry.claim(from, c) {
                Ok(claimed) => {
                    out.push(|b| {
                        write::iq_open(b, "result", &reply.from, &reply.to, &reply.id);
                        b.push(b'>');
                        write::claimed(
                            b,
                            d,
                            claimed.thing.jid.as_str(),
                            None,
                            write::node_of(&claimed.thing.node),
                        );
                        b.extend_from_slice(b"</iq>");
                    });
                    self.notify(claimed.notification, now_ms, out);
                }
                Err(e) => {
                    if e == RegistryError::ItemNotFound {
                        self.budgets.claim_failed(from, now_ms);
                    }
                    fail(out, &e);
                }
            },
            Request::Update(u) => {
                let by_thing = u.jid.as_ref().is_none_or(|j| j == from.bare());
                let result = self.registry.update(from, u);
                if by_thing && result.is_ok() {
                    self.remember(from.bare(), d);
                }
                match result {
                    Ok(UpdateOutcome::Updated) => empty(out),
                    Ok(UpdateOutcome::Disowned) => out.push(|b| {
                        write::iq_open(b, "result", &reply.from, &reply.to, &reply.id);
                        b.push(b'>');
                        write::bare_payload(b, d, "disowned", [None; 3]);
                        b.extend_from_slice(b"</iq>");
                    }),
                    Err(e) => fail(out, &e),
                }
            }
            Request::Remove(key) => match self.registry.remove(from, &key) {
                Ok(removed) => {
                    empty(out);
                    self.notify(removed.notification, now_ms, out);
                }
                Err(e) => fail(out, &e),
            },
            Request::Unregister(node) => {
                let key = ThingKey {
                    jid: from.bare().clone(),
                    node,
                };
                if let Some(why) = self.acknowledge_disowns(&key, now_ms, out) {
                    *store_failure.borrow_mut() = Some(why);
                }
                match self.registry.unregister(from, key.node) {
                    Ok(()) => empty(out),
                    Err(e) => fail(out, &e),
                }
            }
            Request::Disown(key) => {
                let mut o = self.outstanding.lock();
                match self.registry.disown(from, &key, now_ms) {
                    Ok(started) => {
                        let id = self.new_id();
                        let n = started.notification;
                        let d = self.thing_dialect(n.to.bare());
                        out.push(|b| {
                            write::iq_open(b, "set", &self.jid, &n.to.to_string(), &id);
                            b.push(b'>');
                            write::bare_payload(b, d, "disowned", write::node_of(&n.node));
                            b.extend_from_slice(b"</iq>");
                        });
                        o.disowns.insert(
                            started.pending,
                            OwnerReply {
                                reply,
                                notification: id.clone(),
                            },
                        );
                        o.insert(
                            id,
                            Sent {
                                to: n.to,
                                deadline: started.deadline_ms,
                                what: What::Disown {
                                    pending: started.pending,
                                    retried: false,
                                    node: n.node,
                                    dialect: d,
                                },
                            },
                        );
                    }
                    Err(e) => fail(out, &e),
                }
            }
            Request::Search(s) => {
                // The page is written while the registry's read lock is held:
                // no copy of any record.
                let owner = d.owner_in_results
                    && !(d.family == Family::Xep0347 && self.config.hide_owner_in_xep_results);
                let mut written = false;
                let r = self.registry.search_with(&s, |page| {
                    out.push(|b| {
                        write::iq_open(b, "result", &reply.from, &reply.to, &reply.id);
                        b.push(b'>');
                        write::found(b, d, page, owner);
                        b.extend_from_slice(b"</iq>");
                    });
                    written = true;
                });
                if let Err(e) = r {
                    debug_assert!(!written);
                    fail(out, &e);
                }
            }
        }
        store_failure.into_inner()
    }

    fn disco_info(&self, b: &mut Vec<u8>, reply: &ReplyTo) {
        write::iq_open(b, "result", &reply.from, &reply.to, &reply.id);
        b.extend_from_slice(b"><query xmlns='");
        b.extend_from_slice(dialect::DISCO_INFO.as_bytes());
        b.extend_from_slice(b"'><identity category='component' type='generic'");
        write::attr(b, "name", &self.config.identity_name);
        b.extend_from_slice(b"/>");
        let mut features: Vec<&str> = vec![dialect::DISCO_INFO, dialect::DISCO_ITEMS];
        features.extend(dialect::DIALECTS.iter().map(|d| d.namespace));
        for f in features {
            b.extend_from_slice(b"<feature");
            write::attr(b, "var", f);
            b.extend_from_slice(b"/>");
        }
        b.extend_from_slice(b"</query></iq>");
    }

    fn new_id(&self) -> Box<str> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut s = String::with_capacity(self.id_prefix.len() + 8);
        s.push_str(&self.id_prefix);
        let _ = write!(s, "-{n}");
        s.into()
    }

    /// Remembers that the thing `jid` speaks `d` (it registered or updated in it).
    fn remember(&self, jid: &BareJid, d: &'static Dialect) {
        self.dialects
            .lock()
            .set(jid, d, self.config.max_remembered_dialects);
    }

    /// The dialect notifications to the thing `jid` are written in.
    fn thing_dialect(&self, jid: &BareJid) -> &'static Dialect {
        self.dialects.lock().get(jid).notifications()
    }

    /// A `register` or `unregister` from the thing `key` while disowns wait for
    /// it acknowledges them: each completes (the owner's reply is appended) and
    /// its `disowned` notification's late answer will be absorbed. Returns a
    /// store failure, if any.
    fn acknowledge_disowns(&self, key: &ThingKey, now_ms: u64, out: &mut Outbox) -> Option<String> {
        if self.registry.pending_disowns_of(key).is_empty() {
            return None;
        }
        let mut failure = None;
        let mut o = self.outstanding.lock();
        for pending in self.registry.pending_disowns_of(key) {
            let notification = o.disowns.get(&pending).and_then(|r| {
                Some((
                    r.notification.clone(),
                    o.sent.get(&r.notification)?.to.clone(),
                ))
            });
            let Some(res) = self.registry.resolve_disown(pending, true, now_ms) else {
                continue;
            };
            if let Err(RegistryError::Storage(why)) = &res.result {
                failure = Some(why.0.clone());
            }
            self.disown_done(&mut o, res.pending, res.result, out);
            if let Some((id, to)) = notification {
                o.insert(
                    id,
                    Sent {
                        to,
                        deadline: now_ms.saturating_add(self.config.notification_timeout_ms),
                        what: What::Acknowledged,
                    },
                );
            }
        }
        failure
    }

    /// Sends a `claimed` or `removed` notification, in the dialect the thing
    /// speaks, and remembers it.
    fn notify(&self, n: Notification, now_ms: u64, out: &mut Outbox) {
        self.notify_after(n, 0, now_ms, out);
    }

    /// [`Engine::notify`] of a notification already sent `attempts` times. A
    /// thing the host reported offline is not sent anything: the notification
    /// is kept for its return.
    fn notify_after(&self, n: Notification, attempts: u8, now_ms: u64, out: &mut Outbox) {
        let kind = match &n.kind {
            NotificationKind::Claimed { .. } => UndeliveredKind::Claimed,
            NotificationKind::Removed => UndeliveredKind::Removed,
            NotificationKind::Disowned => return,
        };
        if self.registry.is_offline(n.to.bare()) {
            let thing = ThingKey {
                jid: n.to.bare().clone(),
                node: n.node.clone(),
            };
            let _ = self.registry.keep_undelivered(&thing, kind, attempts);
            return;
        }
        let d = self.thing_dialect(n.to.bare());
        let id = self.new_id();
        let what = What::Told {
            kind,
            node: n.node.clone(),
            attempts: attempts.saturating_add(1),
        };
        out.push(|b| {
            write::iq_open(b, "set", &self.jid, &n.to.to_string(), &id);
            b.push(b'>');
            match &n.kind {
                NotificationKind::Claimed { owner, public } => {
                    write::claimed(b, d, owner.as_str(), Some(*public), write::node_of(&n.node))
                }
                _ => write::bare_payload(b, d, "removed", write::node_of(&n.node)),
            }
            b.extend_from_slice(b"</iq>");
        });
        let mut o = self.outstanding.lock();
        let mut evicted = None;
        if o.sent.len() >= self.config.max_outstanding {
            // Forget the oldest notification that no owner waits for.
            let victim = o
                .by_deadline
                .iter()
                .find(|(_, id)| {
                    o.sent
                        .get(id)
                        .is_some_and(|s| !matches!(s.what, What::Disown { .. }))
                })
                .map(|(_, id)| id.clone());
            match victim {
                Some(v) => evicted = o.take(&v),
                None => return,
            }
        }
        o.insert(
            id,
            Sent {
                to: n.to,
                deadline: now_ms.saturating_add(self.config.notification_timeout_ms),
                what,
            },
        );
        drop(o);
        if let Some(sent) = evicted {
            self.keep(&sent);
        }
    }

    /// A thing answered one of our notifications.
    fn answer(
        &self,
        head: &Head,
        condition: Option<String>,
        now_ms: u64,
        out: &mut Outbox,
    ) -> Handled {
        let mut o = self.outstanding.lock();
        match o.sent.get(head.id.as_str()) {
            Some(s) if s.to.bare() == head.sender.bare() => {}
            _ => return Handled::NotMine,
        }
        let Some(sent) = o.take(&head.id) else {
            return Handled::NotMine;
        };
        if let What::Told { .. } = sent.what {
            drop(o);
            if condition.is_some() {
                // An error (recipient-unavailable, service-unavailable, ...):
                // kept for the thing's return.
                self.keep(&sent);
            }
            return Handled::Done;
        }
        let What::Disown {
            pending,
            retried,
            node,
            dialect: d,
        } = sent.what
        else {
            // acknowledged: the answer only closes the exchange.
            return Handled::Done;
        };
        let refused_element = matches!(
            condition.as_deref(),
            Some("feature-not-implemented" | "service-unavailable")
        );
        if refused_element && !retried && self.config.disown_element_fallback {
            let id = self.new_id();
            out.push(|b| {
                write::iq_open(b, "set", &self.jid, &sent.to.to_string(), &id);
                b.push(b'>');
                write::bare_payload(b, d, "disown", write::node_of(&node));
                b.extend_from_slice(b"</iq>");
            });
            if let Some(r) = o.disowns.get_mut(&pending) {
                r.notification = id.clone();
            }
            o.insert(
                id,
                Sent {
                    to: sent.to,
                    deadline: sent.deadline,
                    what: What::Disown {
                        pending,
                        retried: true,
                        node,
                        dialect: d,
                    },
                },
            );
            return Handled::Done;
        }
        if let Some(res) = self
            .registry
            .resolve_disown(pending, condition.is_none(), now_ms)
        {
            if let Err(RegistryError::Storage(why)) = &res.result {
                let why = why.0.clone();
                self.disown_done(&mut o, res.pending, res.result, out);
                return Handled::StoreFailed(why);
            }
            self.disown_done(&mut o, res.pending, res.result, out);
        }
        Handled::Done
    }

    /// Answers the owner of a finished disown.
    fn disown_done(
        &self,
        o: &mut Outstanding,
        pending: PendingId,
        result: Result<(), RegistryError>,
        out: &mut Outbox,
    ) {
        let Some(owner) = o.disowns.remove(&pending) else {
            return;
        };
        o.take(&owner.notification);
        let r = &owner.reply;
        match result {
            Ok(()) => out.push(|b| write::empty_result(b, &r.from, &r.to, &r.id)),
            Err(e) => {
                let e = StanzaError::from_registry(&e);
                out.push(|b| write::error(b, &r.from, &r.to, &r.id, &e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    #[test]
    fn the_engine_is_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Engine>();
        let engine = Engine::new(
            "r.x",
            Registry::new(Config::default()),
            EngineConfig::default(),
        )
        .unwrap();
        std::thread::scope(|s| {
            for t in 0..2 {
                let engine = &engine;
                s.spawn(move || {
                    let mut out = Outbox::new();
                    for i in 0..200 {
                        out.clear();
                        let reg = format!(
                            "<iq type='set' from='t{t}-{i}@x/r' to='r.x' id='{i}'><register xmlns='urn:xmpp:iot:discovery' selfOwned='true'><num name='N' value='{i}'/></register></iq>"
                        );
                        assert_eq!(engine.handle(reg.as_bytes(), 0, &mut out), Handled::Done);
                        let search = "<iq type='get' from='c@x/r' to='r.x' id='s'><search xmlns='urn:xmpp:iot:discovery'><numGtEq name='N' value='0'/></search></iq>";
                        assert_eq!(engine.handle(search.as_bytes(), 0, &mut out), Handled::Done);
                        assert_eq!(out.len(), 2);
                    }
                });
            }
        });
        assert_eq!(engine.registry().len(), 400);
        engine.registry().check_consistency().unwrap();
    }

    #[test]
    fn outbox_keeps_stanza_boundaries() {
        let mut o = Outbox::new();
        o.push(|b| b.extend_from_slice(b"<a/>"));
        o.push(|b| b.extend_from_slice(b"<b/>"));
        assert_eq!(o.get(0), Some(&b"<a/>"[..]));
        assert_eq!(o.get(1), Some(&b"<b/>"[..]));
        assert_eq!(o.get(2), None);
        o.clear();
        assert!(o.is_empty());
    }

    #[test]
    fn a_forgotten_presence_is_unknown_not_offline() {
        let engine = Engine::new(
            "r.x",
            Registry::new(Config::default()),
            EngineConfig::default(),
        )
        .unwrap();
        let mut out = Outbox::new();
        let mut send = |s: &str| {
            out.clear();
            engine.handle(s.as_bytes(), 0, &mut out);
            out.to_strings()
        };
        send(
            "<iq type='set' from='t@x/imc' to='r.x' id='1'><register xmlns='urn:xmpp:iot:discovery'><str name='SN' value='1'/></register></iq>",
        );
        let disown = "<iq type='set' from='o@x/p' to='r.x' id='2'><disown xmlns='urn:xmpp:iot:discovery' jid='t@x'/></iq>";
        let claimed = send(
            "<iq type='set' from='o@x/p' to='r.x' id='c'><mine xmlns='urn:xmpp:iot:discovery'><str name='SN' value='1'/></mine></iq>",
        );
        assert!(claimed[0].contains("<claimed"), "{claimed:?}");
        let mut scratch = Outbox::new();
        engine.presence("t@x/imc", false, 0, &mut scratch).unwrap();
        let offline = send(disown);
        assert!(offline[0].contains("<not-allowed"), "offline: {offline:?}");
        engine.forget_presence("t@x/whatever").unwrap();
        let unknown = send(disown);
        assert_eq!(unknown.len(), 1, "{unknown:?}");
        assert!(
            unknown[0].starts_with("<iq type='set'") && unknown[0].contains("to='t@x/imc'"),
            "the disowned notification goes to the last known full JID: {unknown:?}"
        );
        assert!(engine.forget_presence("not a jid@").is_err());
    }
}
