//! `iotdisco stats`: what a registry database holds and what it costs.
//!
//! Opens an existing database (indexes are rebuilt on open, as the registry
//! always does), then reports the number of things, how many are claimed,
//! public (claimed and searchable), private (claimed, not searchable) and
//! unclaimed, every tag name with the number of things carrying it, the memory
//! the records and indexes take (`Registry::stats`) and the bytes the database
//! directory occupies on disk. Counting owners and tags walks a copy of every
//! record (`Registry::export`), so at a million things it needs a few hundred
//! MB for a moment.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::{Result, open_existing};

/// Show counts, tags by name, index memory and size on disk of a database.
#[derive(clap::Args)]
#[command(after_help = "Example:\n  iotdisco stats --db registry.db --json")]
pub struct Args {
    /// The registry database (a sled directory).
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The figures `stats` prints.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Things registered.
    pub things: u64,
    /// Things with an owner.
    pub claimed: u64,
    /// Claimed and public (searchable).
    pub public: u64,
    /// Claimed and not public.
    pub private: u64,
    /// Without an owner.
    pub unclaimed: u64,
    /// Tag name -> things carrying it (`KEY` included).
    pub tags: BTreeMap<String, u64>,
    /// Bytes held by records.
    pub record_bytes: u64,
    /// Bytes held by indexes.
    pub index_bytes: u64,
    /// Bytes of the database directory on disk.
    pub disk_bytes: u64,
}

/// Sum of the sizes of the files under `dir`.
pub fn dir_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            total += dir_bytes(&entry.path())?;
        } else {
            total += meta.len();
        }
    }
    Ok(total)
}

/// Gathers the report for the database at `path`.
pub fn report(path: &Path) -> Result<Report> {
    let reg = open_existing(path)?;
    let s = reg.stats();
    let mut r = Report {
        things: s.things as u64,
        claimed: 0,
        public: 0,
        private: 0,
        unclaimed: 0,
        tags: BTreeMap::new(),
        record_bytes: s.record_bytes as u64,
        index_bytes: s.index_bytes as u64,
        disk_bytes: 0,
    };
    for rec in reg.export() {
        match (&rec.owner, rec.public) {
            (Some(_), true) => r.public += 1,
            (Some(_), false) => r.private += 1,
            (None, _) => r.unclaimed += 1,
        }
        for t in &rec.tags {
            *r.tags.entry(t.name.as_str().to_string()).or_default() += 1;
        }
    }
    r.claimed = r.public + r.private;
    drop(reg);
    r.disk_bytes =
        dir_bytes(path).map_err(|e| format!("cannot measure {}: {e}", path.display()))?;
    Ok(r)
}

fn per_thing(bytes: u64, things: u64) -> String {
    if things == 0 {
        "-".into()
    } else {
        format!("{:.0}", bytes as f64 / things as f64)
    }
}

/// Runs `iotdisco stats`.
pub fn run(args: Args) -> Result<()> {
    let r = report(&args.db)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let v = json!({
            "db": args.db.display().to_string(),
            "things": r.things,
            "claimed": r.claimed,
            "public": r.public,
            "private": r.private,
            "unclaimed": r.unclaimed,
            "tags": r.tags,
            "record_bytes": r.record_bytes,
            "index_bytes": r.index_bytes,
            "disk_bytes": r.disk_bytes,
        });
        writeln!(out, "{v:#}")?;
        return Ok(());
    }
    writeln!(out, "database   {}", args.db.display())?;
    writeln!(out, "things     {}", r.things)?;
    writeln!(out, "claimed    {}", r.claimed)?;
    writeln!(out, "  public   {} (searchable)", r.public)?;
    writeln!(out, "  private  {}", r.private)?;
    writeln!(out, "unclaimed  {}", r.unclaimed)?;
    writeln!(
        out,
        "memory     records {} B ({} B/thing), indexes {} B ({} B/thing)",
        r.record_bytes,
        per_thing(r.record_bytes, r.things),
        r.index_bytes,
        per_thing(r.index_bytes, r.things)
    )?;
    writeln!(
        out,
        "disk       {} B ({} B/thing)",
        r.disk_bytes,
        per_thing(r.disk_bytes, r.things)
    )?;
    writeln!(out, "tags       {} names", r.tags.len())?;
    let mut by_use: Vec<_> = r.tags.iter().collect();
    by_use.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (name, n) in by_use {
        writeln!(out, "  {name:<32} {n}")?;
    }
    Ok(())
}
