//! `iotdisco search`: one search from the shell, written as an `iotdisco:` search
//! URI (the convention of the spec's IEEE successor; parsed by the library's
//! `uri::parse_search_uri`, whose operator table is this command's long help).
//!
//! The database is opened (indexes rebuilt), the search runs as a registry
//! search would (public claimed things only, `KEY` never shown), and the page
//! is printed as a table (JID, node, owner, tags) or as JSON with `more`.

use std::io::Write;
use std::path::PathBuf;

use iotdisco::{FoundThing, Search, TagValue};
use serde_json::json;

use crate::{Result, open_existing};

const EXAMPLE: &str =
    "Example:\n  iotdisco search --db registry.db 'iotdisco:MAN=www.ktc.se;SN~*39487*;#V>=1;#V<2'";

fn long_help() -> String {
    format!("{EXAMPLE}\n\n{}", iotdisco::uri::SEARCH_URI_HELP)
}

/// Search a database with an iotdisco: search URI (public claimed things).
#[derive(clap::Args)]
#[command(after_help = EXAMPLE, after_long_help = long_help())]
pub struct Args {
    /// The registry database (a sled directory).
    #[arg(long, value_name = "PATH")]
    pub db: PathBuf,
    /// The search, e.g. 'iotdisco:MAN=www.ktc.se;#V>=1' (see --help for every
    /// operator).
    #[arg(value_name = "URI")]
    pub uri: String,
    /// How many matches to skip.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub offset: u32,
    /// The most things to return (the registry caps it, 100 by default).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max: Option<u32>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// A tag as the URI writes it: `NAME=value` or `#NAME=number`.
fn tag_text(t: &iotdisco::Tag) -> String {
    match &t.value {
        TagValue::Str(s) => format!("{}={s}", t.name),
        TagValue::Num(n) => format!("#{}={n}", t.name),
    }
}

fn node_text(t: &FoundThing) -> String {
    let n = &t.key.node;
    [&n.node_id, &n.source_id, &n.cache_type]
        .iter()
        .map(|v| v.as_deref().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("/")
        .trim_end_matches('/')
        .to_string()
}

fn thing_json(t: &FoundThing) -> serde_json::Value {
    let n = &t.key.node;
    json!({
        "jid": t.key.jid.as_str(),
        "node": {
            "nodeId": n.node_id.as_deref(),
            "sourceId": n.source_id.as_deref(),
            "cacheType": n.cache_type.as_deref(),
        },
        "owner": t.owner.as_str(),
        "tags": t.tags.iter().map(|tag| match &tag.value {
            TagValue::Str(s) => json!({"name": tag.name.as_str(), "str": s.as_str()}),
            TagValue::Num(x) => json!({"name": tag.name.as_str(), "num": x.get()}),
        }).collect::<Vec<_>>(),
    })
}

/// Runs `iotdisco search`.
pub fn run(args: Args) -> Result<()> {
    let operators =
        iotdisco::uri::parse_search_uri(&args.uri).map_err(|e| format!("bad search URI: {e}"))?;
    let reg = open_existing(&args.db)?;
    let search = Search {
        operators,
        offset: args.offset,
        max_count: args.max,
    };
    let page = reg
        .search(&search)
        .map_err(|e| format!("search failed: {e}"))?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let v = json!({
            "things": page.things.iter().map(thing_json).collect::<Vec<_>>(),
            "more": page.more,
        });
        writeln!(out, "{v:#}")?;
        return Ok(());
    }
    if page.things.is_empty() {
        writeln!(out, "no public claimed thing matches")?;
        return Ok(());
    }
    let rows: Vec<[String; 4]> = page
        .things
        .iter()
        .map(|t| {
            [
                t.key.jid.to_string(),
                node_text(t),
                t.owner.to_string(),
                t.tags.iter().map(tag_text).collect::<Vec<_>>().join(";"),
            ]
        })
        .collect();
    let heads = ["JID", "NODE", "OWNER", "TAGS"];
    let mut width = heads.map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == 3 {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = width[i]));
            }
        }
        s
    };
    writeln!(out, "{}", line(heads))?;
    for r in &rows {
        writeln!(out, "{}", line([&r[0], &r[1], &r[2], &r[3]]))?;
    }
    let from = args.offset as usize + 1;
    let to = args.offset as usize + rows.len();
    if page.more {
        writeln!(
            out,
            "things {from}-{to}; more match (next page: --offset {to})"
        )?;
    } else {
        writeln!(out, "things {from}-{to}; no more match")?;
    }
    Ok(())
}
