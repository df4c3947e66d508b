//! `iotdisco export` and `iotdisco import`: whole registries as JSON lines.
//!
//! Export writes `Registry::export_jsonl` (one thing per line, `KEY` included)
//! to a file or stdout. Import reads every line first and checks each one on its
//! own with the library's reader (`store::export::read_jsonl`, the rules a
//! request goes through), plus what the library checks across the whole file
//! (no tag name twice in a thing, no thing twice). Only then is the database
//! touched: without `--continue` the first bad line is reported with its line
//! number and nothing is imported (a database that did not exist is not
//! created); with `--continue` every bad line is reported on stderr and the good
//! ones are handed to `Registry::import_jsonl`, which needs an empty registry
//! and writes all of them or none.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use iotdisco::store::export::{read_jsonl, write_jsonl};
use iotdisco::store::sled::Durability;
use iotdisco::{Config, Registry, ThingRecord};

use crate::{Error, Result, open_existing};

/// Write every thing of a database as JSON lines (KEY included: keep it safe).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  iotdisco export --db registry.db backup.jsonl\n  \
                        iotdisco export --db registry.db | grep www.ktc.se"
)]
pub struct ExportArgs {
    /// The registry database (a sled directory).
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,
    /// Where to write; stdout when left out.
    pub file: Option<PathBuf>,
}

/// Load a JSON-lines export into an empty (or new) database.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  iotdisco import --db restored.db backup.jsonl\n  \
                        iotdisco import --db restored.db --continue < damaged.jsonl"
)]
pub struct ImportArgs {
    /// The registry database (a sled directory; created when missing, must be
    /// empty otherwise).
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,
    /// What to read; stdin when left out.
    pub file: Option<PathBuf>,
    /// Skip bad lines (each reported on stderr) and import the rest; without
    /// it, one bad line means nothing is imported.
    #[arg(long = "continue")]
    pub keep_going: bool,
}

/// Runs `iotdisco export`.
pub fn export(args: ExportArgs) -> Result<()> {
    let reg = open_existing(&args.db)?;
    match &args.file {
        Some(path) => {
            let f = std::fs::File::create(path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            let n = reg
                .export_jsonl(BufWriter::new(f))
                .map_err(|e| format!("cannot export to {}: {e}", path.display()))?;
            eprintln!("exported {n} things to {}", path.display());
        }
        None => {
            let out = BufWriter::new(std::io::stdout().lock());
            match reg.export_jsonl(out) {
                Ok(_) => {}
                // The library turns I/O errors into text: a closed pipe (`| head`)
                // is not worth an error line.
                Err(e) if e.to_string().contains("Broken pipe") => {
                    return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe).into());
                }
                Err(e) => return Err(format!("cannot export: {e}").into()),
            }
        }
    }
    Ok(())
}

/// One line that cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number in the input.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// Checks every line of `input` on its own: the good records in input order and
/// the bad lines. Empty lines are skipped, as the library does.
pub fn validate(input: impl BufRead) -> Result<(Vec<ThingRecord>, Vec<BadLine>)> {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    let mut seen = HashSet::new();
    for (i, line) in input.lines().enumerate() {
        let number = i + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                bad.push(BadLine {
                    line: number,
                    reason: "not UTF-8".into(),
                });
                continue;
            }
            Err(e) => return Err(format!("cannot read line {number}: {e}").into()),
        };
        if line.trim().is_empty() {
            continue;
        }
        let rec = match read_jsonl(line.as_bytes()) {
            // One non-empty line is one record.
            Ok(v) => match v.into_iter().next() {
                Some(rec) => rec,
                None => continue,
            },
            Err(e) => {
                // The reader numbers lines itself; this input had only one.
                let reason = e.0.strip_prefix("line 1: ").unwrap_or(&e.0).to_string();
                bad.push(BadLine {
                    line: number,
                    reason,
                });
                continue;
            }
        };
        if let Some(t) = rec
            .tags
            .iter()
            .enumerate()
            .find(|(k, t)| rec.tags[..*k].iter().any(|u| u.name == t.name))
            .map(|(_, t)| t)
        {
            bad.push(BadLine {
                line: number,
                reason: format!("tag '{}' is given more than once", t.name),
            });
            continue;
        }
        if !seen.insert(rec.key.clone()) {
            bad.push(BadLine {
                line: number,
                reason: format!("thing {} was already given on an earlier line", rec.key.jid),
            });
            continue;
        }
        good.push(rec);
    }
    Ok((good, bad))
}

/// Runs `iotdisco import`.
pub fn import(args: ImportArgs) -> Result<()> {
    let source = args
        .file
        .as_ref()
        .map_or_else(|| "stdin".to_string(), |p| p.display().to_string());
    let input: Box<dyn Read> = match &args.file {
        Some(p) => Box::new(
            std::fs::File::open(p).map_err(|e| format!("cannot open {}: {e}", p.display()))?,
        ),
        None => Box::new(std::io::stdin().lock()),
    };
    let (good, bad) = validate(BufReader::new(input))?;
    if !args.keep_going {
        if let Some(first) = bad.first() {
            let more = match bad.len() {
                1 => String::new(),
                n => format!(" ({} more bad lines)", n - 1),
            };
            return Err(Error::new(format!(
                "{source} line {}: {}{more}; nothing imported (--continue skips bad lines)",
                first.line, first.reason
            )));
        }
    }
    for b in &bad {
        eprintln!("skipped {source} line {}: {}", b.line, b.reason);
    }
    let reg = Registry::open_with(&args.db, Config::default(), Durability::GroupCommit(10))
        .map_err(|e| format!("cannot open {}: {e}", args.db.display()))?;
    if !reg.is_empty() {
        return Err(Error::new(format!(
            "{} already holds {} things; import needs an empty database",
            args.db.display(),
            reg.len()
        )));
    }
    let mut buf = Vec::new();
    write_jsonl(&good, &mut buf).map_err(|e| e.to_string())?;
    let n = reg
        .import_jsonl(&buf[..])
        .map_err(|e| format!("nothing imported into {}: {e}", args.db.display()))?;
    reg.flush()
        .map_err(|e| format!("cannot flush {}: {e}", args.db.display()))?;
    let mut out = std::io::stdout().lock();
    if bad.is_empty() {
        writeln!(out, "imported {n} things into {}", args.db.display())?;
    } else {
        writeln!(
            out,
            "imported {n} things into {} ({} bad lines skipped)",
            args.db.display(),
            bad.len()
        )?;
    }
    Ok(())
}
