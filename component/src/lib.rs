//! # iotdisco-component
//!
//! The iotdisco Thing Registry as a Jabber component (XEP-0114) of any XMPP
//! server: `iotdisco component --server 127.0.0.1:5347 --domain
//! discovery.example.org --secret-file FILE [--db PATH]`.
//!
//! [`run`] resolves the [`Args`] (flags over a TOML file, [`config`]), opens
//! the registry (a sled database flushed before every reply by default, or
//! group commit, or memory), starts a tokio runtime and [`serve`]s until
//! SIGINT or SIGTERM: the XEP-0114 stream and handshake ([`stream`],
//! written here: tokio-xmpp 6 ends its component stream on the first stanza
//! its typed parser refuses), reconnection with backoff, IQs through
//! [`iotdisco::Engine`], presence by the rules of [`presence`], disown
//! time-outs on a timer, one log line per request. On shutdown it stops
//! reading, waits for the requests in flight, flushes the registry, sends
//! `</stream:stream>` and closes.
//!
//! A wrong secret (`not-authorized`) or a domain the server does not know
//! (`host-unknown`) ends `run` with an error at once; everything else (the
//! server down, restarting, refusing connections) is retried, 0.5 s doubling
//! up to 30 s.

pub mod config;
pub mod presence;
mod service;
pub mod stanza;
pub mod stream;

use std::sync::Arc;

use iotdisco::store::sled::Durability;
use iotdisco::{Engine, Registry};

pub use config::{Args, Settings, Storage};
pub use service::{Connect, serve};

/// Sets up logging to standard error, filtered by `RUST_LOG` (default
/// `info`). Does nothing if the process already has a subscriber (the CLI may
/// set its own).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

/// Opens the registry the settings ask for.
pub fn open_registry(settings: &Settings) -> Result<Registry, String> {
    let config = settings.registry_config();
    match &settings.storage {
        Storage::Memory => Ok(Registry::new(config)),
        Storage::Db(path) => {
            let durability = match settings.group_commit_ms {
                None => Durability::Flush,
                Some(ms) => Durability::GroupCommit(ms),
            };
            Registry::open_with(path, config, durability)
                .map_err(|e| format!("cannot open the registry at {}: {e}", path.display()))
        }
    }
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term => tracing::info!("SIGTERM received"),
    }
}

/// Runs the component until SIGINT/SIGTERM (`Ok`) or a fatal error (`Err`,
/// one line: bad settings, a database that cannot be opened, a wrong secret).
/// Builds its own tokio runtime; blocks the calling thread.
pub fn run(args: Args) -> Result<(), String> {
    let settings = Settings::resolve(args)?;
    init_logging();
    let registry = open_registry(&settings)?;
    tracing::info!(
        "registry {} open with {} things ({})",
        settings.domain,
        registry.len(),
        match (&settings.storage, settings.group_commit_ms) {
            (Storage::Memory, _) => "in memory".to_string(),
            (Storage::Db(p), None) => format!("{}, flushed before every reply", p.display()),
            (Storage::Db(p), Some(ms)) => format!("{}, group commit every {ms} ms", p.display()),
        }
    );
    let engine = Engine::new(&settings.domain, registry, settings.engine_config())
        .map_err(|e| format!("--domain {}: {e}", settings.domain))?;
    let engine = Arc::new(engine);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("iotdisco-component")
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let connect = Connect::new(&settings.server, &settings.domain, &settings.secret);
    let result = runtime.block_on(serve(engine.clone(), connect, shutdown_signal()));
    drop(runtime);
    engine
        .registry()
        .flush()
        .map_err(|e| format!("flushing the registry failed: {e}"))?;
    result
}
