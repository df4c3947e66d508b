//! The SQLite EAV baseline of `bench --baseline sqlite`, ported from the
//! library's `benches/baseline/sqlite.rs`: a table `tag(thing, name, s, n)`
//! indexed on `(name, s, thing)`, `(name, n, thing)` and `(thing)`, one row per
//! tag (`KEY` included), and `things(thing PRIMARY KEY, jid, owner, node_id,
//! source_id, cache_type)`; `thing` is the datagen index. A search is an
//! `INTERSECT` of one `SELECT thing` per operator, `ORDER BY thing LIMIT 21`
//! (the page of 20 and `more`), then one join fetching the page's things with
//! their tags except `KEY`: what a registry must answer. (The library's report
//! also times a `COUNT(*)` over the intersection; this baseline uses the count
//! only to verify answers.)
//!
//! Unlike the benches' in-memory database, this one is a file in WAL mode with
//! one connection per thread, so readers run in parallel with the writer, as the
//! registry's do; `synchronous = NORMAL` (commits reach the OS, fsync at
//! checkpoints) matches the registry's group commit. Every thing counts as
//! public: the baseline has no searchable flag, so the writer's unclaimed
//! things are searchable in SQLite a moment earlier than in the registry.
//! `LIKE` compares bytes (`case_sensitive_like`), as `strMask` does. The file is
//! reused when its `meta` table names the same population.

use std::path::{Path, PathBuf};

use iotdisco::datagen::{self, GenThing};
use iotdisco::query::Operator;
use iotdisco::{Tag, TagValue};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use crate::Result;

// The SQL of each search operator, shared with the benches' SQLite baseline so
// both time the same queries.
#[path = "../../../benches/baseline/eav_sql.rs"]
mod eav_sql;
use eav_sql::select_of;

/// Things on a page (the standard queries' `maxCount`).
pub const PAGE: usize = 20;

const SCHEMA: &str = "CREATE TABLE tag(thing INTEGER, name TEXT, s TEXT, n REAL);
     CREATE TABLE things(thing INTEGER PRIMARY KEY, jid TEXT, owner TEXT,
                         node_id TEXT, source_id TEXT, cache_type TEXT);
     CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);";
const INDEXES: &str = "CREATE INDEX tag_s ON tag(name, s, thing);
     CREATE INDEX tag_n ON tag(name, n, thing);
     CREATE INDEX tag_thing ON tag(thing);";

fn sql_err(what: &str) -> impl Fn(rusqlite::Error) -> crate::Error + '_ {
    move |e| crate::Error::new(format!("SQLite baseline: {what}: {e}"))
}

/// The population marker stored in `meta`.
pub fn marker(things: u64) -> String {
    format!("iotdisco datagen population seed 1, things 0..{things}")
}

/// A connection with the run-time settings (WAL, one per thread).
pub fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(sql_err("open"))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA case_sensitive_like = ON;
         PRAGMA cache_size = -262144;
         PRAGMA mmap_size = 8589934592;
         PRAGMA temp_store = MEMORY;",
    )
    .map_err(sql_err("settings"))?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(sql_err("busy timeout"))?;
    Ok(conn)
}

/// Whether the file at `path` holds population `things` (and nothing else).
pub fn holds(path: &Path, things: u64) -> bool {
    if !path.is_file() {
        return false;
    }
    let Ok(conn) = Connection::open(path) else {
        return false;
    };
    let mark: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'population'", [], |r| {
            r.get(0)
        })
        .optional()
        .ok()
        .flatten();
    let count: Option<i64> = conn
        .query_row("SELECT COUNT(*) FROM things", [], |r| r.get(0))
        .ok();
    mark.as_deref() == Some(marker(things).as_str()) && count == Some(things as i64)
}

/// Removes the database file and its WAL companions.
pub fn remove(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

fn sql_value(t: &Tag) -> (Option<&str>, Option<f64>) {
    match &t.value {
        TagValue::Str(s) => (Some(s), None),
        TagValue::Num(n) => (None, Some(n.get())),
    }
}

/// Loads population `things` into a fresh file: the bare tables in one
/// transaction (in chunks, `progress` called with the things done), then the
/// indexes (`indexing` called before), then the marker.
pub fn load(
    path: &Path,
    things: u64,
    mut progress: impl FnMut(u64),
    indexing: impl FnOnce(),
) -> Result<()> {
    remove(path);
    let mut conn = Connection::open(path).map_err(sql_err("create"))?;
    conn.execute_batch(
        "PRAGMA journal_mode = OFF;
         PRAGMA synchronous = OFF;
         PRAGMA cache_size = -262144;",
    )
    .map_err(sql_err("settings"))?;
    conn.execute_batch(SCHEMA).map_err(sql_err("schema"))?;
    let tx = conn.transaction().map_err(sql_err("begin"))?;
    {
        let mut tag = tx
            .prepare("INSERT INTO tag(thing, name, s, n) VALUES (?1, ?2, ?3, ?4)")
            .map_err(sql_err("prepare"))?;
        let mut th = tx
            .prepare("INSERT INTO things(thing, jid, owner) VALUES (?1, ?2, ?3)")
            .map_err(sql_err("prepare"))?;
        for i in 0..things {
            let g = datagen::thing(1, i);
            th.execute(params![i as i64, g.jid.bare().as_str(), g.owner.as_str()])
                .map_err(sql_err("insert"))?;
            for t in &g.tags {
                let (s, n) = sql_value(t);
                tag.execute(params![i as i64, t.name.as_str(), s, n])
                    .map_err(sql_err("insert"))?;
            }
            if (i + 1) % 10_000 == 0 || i + 1 == things {
                progress(i + 1);
            }
        }
    }
    tx.commit().map_err(sql_err("commit"))?;
    indexing();
    conn.execute_batch(INDEXES).map_err(sql_err("indexes"))?;
    conn.execute(
        "INSERT INTO meta(key, value) VALUES ('population', ?1)",
        [marker(things)],
    )
    .map_err(sql_err("marker"))?;
    conn.execute_batch("ANALYZE;").map_err(sql_err("analyze"))?;
    Ok(())
}

/// A conjunction as SQL: the page query, the count query and their operands.
#[derive(Debug, Clone)]
pub struct SqlQuery {
    /// `... INTERSECT ... ORDER BY 1 LIMIT 21`.
    pub page_sql: String,
    /// `SELECT COUNT(*) FROM (... INTERSECT ...)`.
    pub count_sql: String,
    /// Operands in placeholder order.
    pub params: Vec<Value>,
}

/// The SQL of a conjunction.
pub fn query_of(ops: &[Operator]) -> SqlQuery {
    let mut params = Vec::new();
    let selects: Vec<String> = ops.iter().map(|op| select_of(op, &mut params)).collect();
    let compound = selects.join(" INTERSECT ");
    SqlQuery {
        page_sql: format!("{compound} ORDER BY 1 LIMIT {}", PAGE + 1),
        count_sql: format!("SELECT COUNT(*) FROM ({compound})"),
        params,
    }
}

/// The page's things with their tags except `KEY`; `?1`..`?20` are the page's
/// `thing`s, NULL-padded.
fn fetch_sql() -> String {
    let slots: Vec<String> = (1..=PAGE).map(|i| format!("?{i}")).collect();
    format!(
        "SELECT h.thing, h.jid, h.owner, t.name, t.s, t.n \
         FROM things h JOIN tag t ON t.thing = h.thing \
         WHERE h.thing IN ({}) AND t.name <> 'KEY' \
         ORDER BY h.thing, t.rowid",
        slots.join(", ")
    )
}

/// One found thing: (thing, jid, owner, tags).
pub type SqlThing = (
    i64,
    String,
    Option<String>,
    Vec<(String, Option<String>, Option<f64>)>,
);

/// The page query then the fetch of the page's things, owned: the page's
/// things and whether more follow.
pub fn search(conn: &Connection, q: &SqlQuery) -> Result<(Vec<SqlThing>, bool)> {
    let mut st = conn
        .prepare_cached(&q.page_sql)
        .map_err(sql_err("prepare search"))?;
    let mut ids: Vec<i64> = st
        .query_map(params_from_iter(q.params.iter()), |r| r.get(0))
        .map_err(sql_err("search"))?
        .collect::<std::result::Result<_, _>>()
        .map_err(sql_err("search"))?;
    let more = ids.len() > PAGE;
    ids.truncate(PAGE);
    if ids.is_empty() {
        return Ok((Vec::new(), more));
    }
    let mut st = conn
        .prepare_cached(&fetch_sql())
        .map_err(sql_err("prepare fetch"))?;
    let slots = (0..PAGE).map(|k| ids.get(k).copied());
    let mut rows = st
        .query(params_from_iter(slots))
        .map_err(sql_err("fetch"))?;
    let mut things: Vec<SqlThing> = Vec::with_capacity(ids.len());
    while let Some(r) = rows.next().map_err(sql_err("fetch"))? {
        let thing: i64 = r.get(0).map_err(sql_err("fetch"))?;
        if things.last().is_none_or(|t| t.0 != thing) {
            things.push((
                thing,
                r.get(1).map_err(sql_err("fetch"))?,
                r.get(2).map_err(sql_err("fetch"))?,
                Vec::new(),
            ));
        }
        let tag = (
            r.get(3).map_err(sql_err("fetch"))?,
            r.get(4).map_err(sql_err("fetch"))?,
            r.get(5).map_err(sql_err("fetch"))?,
        );
        if let Some(t) = things.last_mut() {
            t.3.push(tag);
        }
    }
    Ok((things, more))
}

/// The `thing`s of the page query (up to 21) and the number of all matches.
pub fn ids_and_count(conn: &Connection, q: &SqlQuery) -> Result<(Vec<i64>, u64)> {
    let mut st = conn
        .prepare_cached(&q.page_sql)
        .map_err(sql_err("prepare search"))?;
    let ids: Vec<i64> = st
        .query_map(params_from_iter(q.params.iter()), |r| r.get(0))
        .map_err(sql_err("search"))?
        .collect::<std::result::Result<_, _>>()
        .map_err(sql_err("search"))?;
    let count: i64 = conn
        .query_row(&q.count_sql, params_from_iter(q.params.iter()), |r| {
            r.get(0)
        })
        .map_err(sql_err("count"))?;
    Ok((ids, count as u64))
}

/// Whether thing `thing` matches every operator (each `SELECT` narrowed to it).
pub fn matches(conn: &Connection, ops: &[Operator], thing: i64) -> Result<bool> {
    let mut params = Vec::new();
    let mut selects = Vec::new();
    for op in ops {
        let s = select_of(op, &mut params);
        params.push(Value::Integer(thing));
        selects.push(format!("{s} AND thing = ?"));
    }
    let sql = format!("SELECT COUNT(*) FROM ({})", selects.join(" INTERSECT "));
    let n: i64 = conn
        .query_row(&sql, params_from_iter(params.iter()), |r| r.get(0))
        .map_err(sql_err("check"))?;
    Ok(n == 1)
}

/// The writer's operations on its own things (`thing` >= the population).
pub struct Writer {
    conn: Connection,
}

impl Writer {
    /// A writer on its own connection.
    pub fn new(path: &Path) -> Result<Self> {
        Ok(Writer {
            conn: connect(path)?,
        })
    }

    /// Registers thing `i` (no owner): its `things` row and tag rows, one
    /// transaction.
    pub fn register(&mut self, i: u64, g: &GenThing) -> Result<()> {
        let tx = self.conn.transaction().map_err(sql_err("begin"))?;
        {
            let mut th = tx
                .prepare_cached("INSERT INTO things(thing, jid, owner) VALUES (?1, ?2, NULL)")
                .map_err(sql_err("prepare"))?;
            th.execute(params![i as i64, g.jid.bare().as_str()])
                .map_err(sql_err("register"))?;
            let mut tag = tx
                .prepare_cached("INSERT INTO tag(thing, name, s, n) VALUES (?1, ?2, ?3, ?4)")
                .map_err(sql_err("prepare"))?;
            for t in &g.tags {
                let (s, n) = sql_value(t);
                tag.execute(params![i as i64, t.name.as_str(), s, n])
                    .map_err(sql_err("register"))?;
            }
        }
        tx.commit().map_err(sql_err("commit"))
    }

    /// Claims the one unowned thing whose tags are exactly `g`'s: the
    /// intersection of an equality per tag, the tag count compared, the owner
    /// set; one transaction.
    pub fn claim(&mut self, g: &GenThing) -> Result<()> {
        let mut params: Vec<Value> = Vec::new();
        let selects: Vec<&str> = g
            .tags
            .iter()
            .map(|t| {
                params.push(Value::Text(t.name.as_str().into()));
                match &t.value {
                    TagValue::Str(s) => {
                        params.push(Value::Text(s.to_string()));
                        "SELECT thing FROM tag WHERE name = ? AND s = ?"
                    }
                    TagValue::Num(n) => {
                        params.push(Value::Real(n.get()));
                        "SELECT thing FROM tag WHERE name = ? AND n = ?"
                    }
                }
            })
            .collect();
        let find = format!(
            "SELECT h.thing FROM things h WHERE h.owner IS NULL AND h.thing IN ({}) \
             AND (SELECT COUNT(*) FROM tag t WHERE t.thing = h.thing) = {}",
            selects.join(" INTERSECT "),
            g.tags.len()
        );
        let tx = self.conn.transaction().map_err(sql_err("begin"))?;
        let found: Vec<i64> = {
            let mut st = tx.prepare_cached(&find).map_err(sql_err("prepare"))?;
            st.query_map(params_from_iter(params.iter()), |r| r.get(0))
                .map_err(sql_err("claim"))?
                .collect::<std::result::Result<_, _>>()
                .map_err(sql_err("claim"))?
        };
        let [thing] = found[..] else {
            return Err(crate::Error::new(format!(
                "SQLite baseline: claim found {} candidates for {}",
                found.len(),
                g.jid
            )));
        };
        tx.execute(
            "UPDATE things SET owner = ?1 WHERE thing = ?2",
            params![g.owner.as_str(), thing],
        )
        .map_err(sql_err("claim"))?;
        tx.commit().map_err(sql_err("commit"))
    }

    /// Sets three numeric tags of thing `i`, one transaction.
    pub fn update(&mut self, i: u64, values: &[(&str, f64)]) -> Result<()> {
        let tx = self.conn.transaction().map_err(sql_err("begin"))?;
        {
            let mut st = tx
                .prepare_cached("UPDATE tag SET n = ?1 WHERE thing = ?2 AND name = ?3")
                .map_err(sql_err("prepare"))?;
            for (name, v) in values {
                st.execute(params![v, i as i64, name])
                    .map_err(sql_err("update"))?;
            }
        }
        tx.commit().map_err(sql_err("commit"))
    }

    /// Deletes every thing at or above `first` (the writer's, after the run).
    pub fn cleanup(&mut self, first: u64) -> Result<()> {
        let tx = self.conn.transaction().map_err(sql_err("begin"))?;
        tx.execute("DELETE FROM tag WHERE thing >= ?1", [first as i64])
            .map_err(sql_err("cleanup"))?;
        tx.execute("DELETE FROM things WHERE thing >= ?1", [first as i64])
            .map_err(sql_err("cleanup"))?;
        tx.commit().map_err(sql_err("commit"))?;
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(sql_err("checkpoint"))
    }
}

#[cfg(test)]
mod tests {
    use super::eav_sql::{like_pattern, sql_literal};

    #[test]
    fn like_patterns_escape() {
        assert_eq!(like_pattern("39487*", Some("*")), "39487%");
        assert_eq!(like_pattern("*1234*", Some("*")), "%1234%");
        assert_eq!(like_pattern("a%b_c\\*", Some("*")), "a\\%b\\_c\\\\%");
        assert_eq!(like_pattern("a*b", None), "a*b");
        assert_eq!(sql_literal("it's"), "'it''s'");
    }
}
