//! `iotdisco`: the command-line tool of the iotdisco Thing Registry.
//!
//! One subcommand per module: `component` (the XEP-0114 component, from the
//! `iotdisco-component` crate), `bench` (load test with an optional SQLite
//! baseline), `search` (an `iotdisco:` search URI against a database), `stats`,
//! `export` / `import` (JSON lines, in `transfer`), `qr` (claim strings and
//! their QR codes), `announce` and `discover` (zero configuration: mDNS,
//! DNS-SD zones, DHCP options). Every command returns `Result<(), Error>`; `main` prints an
//! error as one `error: ...` line on stderr and exits with status 1 (2 for bad
//! arguments). A panic hook turns an unexpected panic into one line as well, so a
//! user never sees a backtrace.

mod announce;
mod bench;
mod discover;
mod qr;
mod search;
mod stats;
mod transfer;

use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use iotdisco::store::sled::Durability;
use iotdisco::{Config, Registry};

/// Run, load-test and administer XEP-0347 Thing Registries.
#[derive(Parser)]
#[command(name = "iotdisco", version)]
#[command(after_help = "Example:\n  iotdisco bench --things 100000 --seconds 5 --baseline sqlite")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry as an XEP-0114 component of an XMPP server (Prosody,
    /// ejabberd, ...), until SIGINT/SIGTERM.
    Component(iotdisco_component::Args),
    Bench(bench::Args),
    Search(search::Args),
    Stats(stats::Args),
    Export(transfer::ExportArgs),
    Import(transfer::ImportArgs),
    Qr(qr::Args),
    Announce(announce::Args),
    Discover(discover::Args),
}

/// A failure of a command: one line for the user. `quiet` failures (stdout
/// closed under us, e.g. `iotdisco export | head`) end the program silently.
#[derive(Debug)]
pub struct Error {
    message: String,
    quiet: bool,
}

impl Error {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            quiet: false,
        }
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error::new(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error::new(message)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error {
            quiet: e.kind() == std::io::ErrorKind::BrokenPipe,
            message: format!("cannot write the output: {e}"),
        }
    }
}

/// What commands return.
pub type Result<T> = std::result::Result<T, Error>;

/// Opens an existing database for a command that only reads it: a missing path
/// is an error instead of a new empty database.
pub fn open_existing(path: &Path) -> Result<Registry> {
    if !path.is_dir() {
        return Err(Error::new(format!(
            "no database at {} (create one with `iotdisco import` or `iotdisco bench --db`)",
            path.display()
        )));
    }
    Registry::open_with(path, Config::default(), Durability::GroupCommit(10))
        .map_err(|e| Error::new(format!("cannot open {}: {e}", path.display())))
}

/// A clap error as one line: its message lines before the usage, joined.
fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut parts = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if !line.is_empty() {
            parts.push(line);
        }
    }
    let mut msg = parts.join(" ");
    if !msg.starts_with("error:") {
        msg = format!("error: {msg}");
    }
    format!("{msg} (see --help)")
}

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: internal error: {}{at}", what.replace('\n', " "));
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    let _ = e.print();
                    return ExitCode::SUCCESS;
                }
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                | ErrorKind::MissingSubcommand => {
                    eprintln!("error: a subcommand is missing (see --help)");
                    return ExitCode::from(2);
                }
                _ => {}
            }
            eprintln!("{}", one_line(&e));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Component(a) => iotdisco_component::run(a).map_err(Error::new),
        Command::Bench(a) => bench::run(a),
        Command::Search(a) => search::run(a),
        Command::Stats(a) => stats::run(a),
        Command::Export(a) => transfer::export(a),
        Command::Import(a) => transfer::import(a),
        Command::Qr(a) => qr::run(a),
        Command::Announce(a) => announce::run(a),
        Command::Discover(a) => discover::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.quiet => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.message.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
