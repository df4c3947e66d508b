//! The component's main loop: connect, serve, reconnect, shut down.
//!
//! [`serve`] keeps one XEP-0114 connection up (reconnecting with exponential
//! backoff, [`Connect::backoff_min`] doubling up to [`Connect::backoff_max`],
//! reset by every accepted handshake) and routes each stanza:
//!
//! - IQs go to [`Engine::handle`] on tokio's blocking pool (a write returns
//!   only after the store flushed, so replies are never sent for changes that
//!   could be lost, and concurrent writers share one flush). One info line per
//!   request: sender, type, payload, id, outcome, time.
//! - Presence (and bounced messages) go through [`crate::presence::react`].
//! - A timer task calls [`Engine::tick`] at [`Engine::next_deadline`], woken
//!   early whenever a stanza was handled (it may have set a new deadline).
//!
//! Everything to send passes through one bounded queue that outlives
//! connections: what was produced while the connection was down is sent on
//! the next one (a stanza whose write failed is retried first). When the queue
//! is full (a long outage) new stanzas are dropped with a warning.
//!
//! Shutdown: stop reading, wait for the requests in flight, flush the
//! registry, send what is queued, then `</stream:stream>`, and close.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iotdisco::{Engine, Handled, Outbox};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::presence;
use crate::stanza::Head;
use crate::stream::{self, Connection, Frame};

/// How to reach the server, and how patiently.
#[derive(Clone)]
pub struct Connect {
    /// The server's component port, `host:port`.
    pub server: String,
    /// The component's domain.
    pub domain: String,
    /// The shared secret.
    pub secret: String,
    /// The first reconnection delay.
    pub backoff_min: Duration,
    /// The longest reconnection delay.
    pub backoff_max: Duration,
    /// How long one connection attempt (TCP, header, handshake) may take.
    pub connect_timeout: Duration,
}

impl Connect {
    /// The defaults: backoff 0.5 s doubling up to 30 s, 10 s per attempt.
    pub fn new(server: &str, domain: &str, secret: &str) -> Self {
        Connect {
            server: server.into(),
            domain: domain.into(),
            secret: secret.into(),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl std::fmt::Debug for Connect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connect")
            .field("server", &self.server)
            .field("domain", &self.domain)
            .field("secret", &"<hidden>")
            .finish_non_exhaustive()
    }
}

/// The most stanzas waiting to be sent.
const QUEUE: usize = 16 * 1024;
/// How long shutdown waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(10);

/// State shared by the connection loop, the handlers and the timer.
struct Shared {
    engine: Arc<Engine>,
    domain: String,
    out: mpsc::Sender<Vec<u8>>,
    clock: Instant,
    wake: Notify,
}

impl Shared {
    fn now_ms(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }

    fn send(&self, stanza: Vec<u8>) {
        if let Err(e) = self.out.try_send(stanza) {
            warn!("outgoing queue full or closed ({e}): a stanza was dropped");
        }
    }

    fn send_outbox(&self, out: &Outbox) {
        for s in out.iter() {
            self.send(s.to_vec());
        }
    }
}

/// How a connection ended.
enum Ended {
    Shutdown,
    Lost(String),
}

/// Serves `engine` as component `connect.domain` until `shutdown` completes
/// (then returns `Ok` after a clean close), or until the server refuses the
/// component for good (wrong secret, unknown domain: `Err` with the reason).
/// The registry is flushed before either return.
pub async fn serve(
    engine: Arc<Engine>,
    connect: Connect,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let (out, mut queue) = mpsc::channel(QUEUE);
    let shared = Arc::new(Shared {
        engine,
        domain: connect.domain.clone(),
        out,
        clock: Instant::now(),
        wake: Notify::new(),
    });
    let timer = tokio::spawn(timer(shared.clone()));
    let mut tasks = JoinSet::new();
    let mut carry: Option<Vec<u8>> = None;
    let mut shutdown = std::pin::pin!(shutdown);
    let mut delay = connect.backoff_min;
    let result = loop {
        let attempt = tokio::select! {
            _ = &mut shutdown => break Ok(()),
            r = stream::connect(&connect.server, &connect.domain, &connect.secret,
                                connect.connect_timeout) => r,
        };
        match attempt {
            Ok(conn) => {
                delay = connect.backoff_min;
                info!(
                    "connected to {} as component {}",
                    connect.server, connect.domain
                );
                let ended = session(
                    conn,
                    &shared,
                    &mut queue,
                    &mut carry,
                    &mut tasks,
                    &mut shutdown,
                )
                .await;
                match ended {
                    Ended::Shutdown => break Ok(()),
                    Ended::Lost(why) => warn!(
                        "connection to {} lost: {why}; reconnecting in {:.1} s",
                        connect.server,
                        delay.as_secs_f64()
                    ),
                }
            }
            Err(e) if e.fatal => break Err(e.message),
            Err(e) => warn!("{e}; retrying in {:.1} s", delay.as_secs_f64()),
        }
        tokio::select! {
            _ = &mut shutdown => break Ok(()),
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(connect.backoff_max);
    };
    timer.abort();
    let _ = tokio::time::timeout(DRAIN, async { while tasks.join_next().await.is_some() {} }).await;
    flush(&shared).await;
    result
}

/// Flushes the registry to disk (a no-op in memory).
async fn flush(shared: &Arc<Shared>) {
    let s = shared.clone();
    match tokio::task::spawn_blocking(move || s.engine.registry().flush()).await {
        Ok(Ok(())) => info!(
            "registry flushed ({} things)",
            shared.engine.registry().len()
        ),
        Ok(Err(e)) => warn!("flushing the registry failed: {e}"),
        Err(e) => warn!("flushing the registry failed: {e}"),
    }
}

/// Serves one connection until it is lost or shutdown completes.
async fn session(
    mut conn: Connection,
    shared: &Arc<Shared>,
    queue: &mut mpsc::Receiver<Vec<u8>>,
    carry: &mut Option<Vec<u8>>,
    tasks: &mut JoinSet<()>,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Ended {
    if let Some(s) = carry.take() {
        if let Err(e) = conn.write(&s).await {
            *carry = Some(s);
            return Ended::Lost(e);
        }
    }
    loop {
        while tasks.try_join_next().is_some() {}
        tokio::select! {
            biased;
            _ = shutdown.as_mut() => {
                info!("shutting down: waiting for requests in flight");
                let _ = tokio::time::timeout(DRAIN, async {
                    while tasks.join_next().await.is_some() {}
                })
                .await;
                flush(shared).await;
                while let Ok(s) = queue.try_recv() {
                    if conn.write(&s).await.is_err() {
                        break;
                    }
                }
                conn.close(Duration::from_secs(2)).await;
                info!("stream closed");
                return Ended::Shutdown;
            }
            Some(s) = queue.recv() => {
                if let Err(e) = conn.write(&s).await {
                    *carry = Some(s);
                    return Ended::Lost(e);
                }
            }
            frame = conn.read() => match frame {
                Ok(Frame::Element(bytes)) => {
                    if let Some(why) = dispatch(shared, tasks, bytes) {
                        return Ended::Lost(why);
                    }
                }
                Ok(Frame::End) => return Ended::Lost("the server closed the stream".into()),
                Ok(Frame::Header(_)) => return Ended::Lost("a second stream header".into()),
                Err(e) => return Ended::Lost(e),
            },
        }
    }
}

/// Routes one top-level element; `Some(reason)` if it ends the connection.
fn dispatch(shared: &Arc<Shared>, tasks: &mut JoinSet<()>, bytes: Vec<u8>) -> Option<String> {
    let Some(head) = Head::peek(&bytes) else {
        warn!(
            "ignored a malformed stanza: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
        );
        return None;
    };
    if head.name.ends_with(":error") || head.name == "error" {
        return Some(format!(
            "stream error from the server ({})",
            head.child.as_deref().unwrap_or("no condition")
        ));
    }
    let s = shared.clone();
    match head.name.as_str() {
        "iq" => {
            tasks.spawn_blocking(move || handle_iq(&s, &head, &bytes));
        }
        "presence" | "message" => {
            let r = presence::react(&head, &shared.domain);
            if head.name == "presence" || !r.engine.is_empty() || !r.forget.is_empty() {
                info!(
                    "presence {} from {}{}",
                    head.kind.as_deref().unwrap_or("available"),
                    head.from.as_deref().unwrap_or("?"),
                    if head.name == "message" {
                        " (bounced message)"
                    } else {
                        ""
                    }
                );
            }
            for stanza in r.send {
                shared.send(stanza.into_bytes());
            }
            if !r.engine.is_empty() || !r.forget.is_empty() {
                tasks.spawn_blocking(move || {
                    let mut out = Outbox::new();
                    for (jid, available) in r.engine {
                        if let Err(e) = s.engine.presence(&jid, available, s.now_ms(), &mut out) {
                            debug!("presence of {jid} ignored: {e}");
                        }
                    }
                    for jid in r.forget {
                        if let Err(e) = s.engine.forget_presence(&jid) {
                            debug!("presence of {jid} not forgotten: {e}");
                        }
                    }
                    s.send_outbox(&out);
                    s.wake.notify_one();
                });
            }
        }
        other => debug!("ignored a <{other}/> from the server"),
    }
    None
}

/// Handles one IQ on the blocking pool and logs it.
fn handle_iq(s: &Shared, head: &Head, bytes: &[u8]) {
    let started = Instant::now();
    let mut out = Outbox::new();
    let handled = s.engine.handle(bytes, s.now_ms(), &mut out);
    let from = head.from.as_deref().unwrap_or("?");
    let id = head.id.as_deref().unwrap_or("");
    let what = head.child.as_deref().unwrap_or("-");
    let kind = head.kind.as_deref().unwrap_or("?");
    let ms = started.elapsed().as_secs_f64() * 1e3;
    match &handled {
        Handled::Done if head.is_request() => {
            let reply = out.get(0).and_then(Head::peek);
            let outcome = match reply.as_ref() {
                None => "waiting".to_string(),
                Some(r) if r.kind.as_deref() == Some("error") => {
                    format!("error {}", r.condition.as_deref().unwrap_or("?"))
                }
                Some(r) if r.id.as_deref() != Some(id) => "waiting".to_string(),
                Some(r) => r.kind.clone().unwrap_or_default(),
            };
            let extra = out.len().saturating_sub(1);
            info!(
                "{from} {kind} {what} id={id} -> {outcome}{} ({ms:.1} ms)",
                if extra > 0 {
                    format!(" +{extra} stanza(s)")
                } else {
                    String::new()
                }
            );
        }
        Handled::Done => debug!("{from} answered our {id}: {kind}"),
        Handled::NotMine => debug!("{from} {kind} id={id}: not ours, ignored"),
        Handled::Dropped(why) => warn!("dropped an IQ from {from}: {why}"),
        Handled::StoreFailed(why) => tracing::error!(
            "{from} {kind} {what} id={id} -> internal-server-error: the store failed: {why}"
        ),
    }
    // A full JID that bounces one of our notifications with a delivery
    // error is gone, unless the engine is still talking to it (the `disown`
    // retry of a Smack thing that refused `disowned`).
    if kind == "error"
        && matches!(
            head.condition.as_deref(),
            Some("service-unavailable" | "recipient-unavailable" | "item-not-found")
        )
        && from.contains('/')
        && !out
            .iter()
            .any(|st| Head::peek(st).and_then(|h| h.to).as_deref() == Some(from))
    {
        debug!("{from} bounced: dropped");
        let _ = s.engine.presence(from, false, s.now_ms(), &mut out);
    }
    s.send_outbox(&out);
    s.wake.notify_one();
}

/// Calls [`Engine::tick`] whenever the engine's next deadline passes.
async fn timer(s: Arc<Shared>) {
    loop {
        let sleep = match s.engine.next_deadline() {
            Some(ms) => {
                let now = s.now_ms();
                Duration::from_millis(ms.saturating_sub(now))
            }
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {
                let t = s.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    let mut out = Outbox::new();
                    t.engine.tick(t.now_ms(), &mut out);
                    if !out.is_empty() {
                        info!("time-outs: {} stanza(s)", out.len());
                    }
                    t.send_outbox(&out);
                })
                .await;
            }
            _ = s.wake.notified() => {}
        }
    }
}
