//! The SQLite baseline: an in-memory EAV table
//! `tag(thing INTEGER, name TEXT, s TEXT, n REAL)` indexed on `(name, s, thing)`
//! and `(name, n, thing)` for searching and on `(thing)` for fetching a found
//! thing's tags, one row per tag (`KEY` included, since the registry stores it
//! too), `thing` = datagen index = registry order, and a table
//! `things(thing INTEGER PRIMARY KEY, jid, owner, node_id, source_id,
//! cache_type)` with each thing's identity and owner. Both tables are filled in
//! the same transaction. Every thing is public and claimed, so no searchable
//! column is needed.
//!
//! A search is an `INTERSECT` of one `SELECT thing` per operator, `ORDER BY thing
//! LIMIT 21` for the page, plus a `SELECT COUNT(*)` over the same intersection
//! (what the issue specifies for `more`), plus one query joining `things` and
//! `tag` for the page's things (their tags except `KEY`, in `rowid` =
//! registration order), from which it builds owned rows: what the registry
//! returns. Statements are prepared once and cached; operands are bound per run,
//! except a `strMask`'s `LIKE` pattern, which is inlined as a literal so SQLite
//! can plan its literal prefix as an index range once (a bound `LIKE` pattern
//! makes SQLite re-prepare the statement on every execution). `PRAGMA
//! case_sensitive_like = ON` makes `LIKE` compare bytes, as `strMask` does.
//!
//! `strRegEx` is `s REGEXP ?` with a `regexp(pattern, value)` function
//! registered through rusqlite (the `regex` crate, the pattern compiled once
//! per statement as `^(?:pattern)$` and cached as the call's auxiliary data);
//! `nameWildcard` is `SELECT DISTINCT thing FROM tag WHERE name LIKE <mask>
//! AND name <> 'KEY' AND <the operator's condition>`, the mask's pieces
//! upper-cased as stored names are.

use std::time::{Duration, Instant};

use iotdisco::datagen::GenThing;
use iotdisco::query::Operator;
use iotdisco::{Tag, TagValue};
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, params, params_from_iter};

use super::eav_sql::{like_pattern, select_of, sql_literal};
use super::{Answer, PAGE, PageThing, PageVal};

/// The database.
pub struct Sqlite {
    /// The connection (in-memory database).
    pub conn: Connection,
}

/// How long loading took.
#[derive(Debug, Clone, Copy)]
pub struct LoadTiming {
    /// `tag` rows inserted (one per tag).
    pub rows: u64,
    /// Things inserted (one `things` row each).
    pub things: u64,
    /// The `INSERT`s and their commit.
    pub insert: Duration,
    /// `CREATE INDEX` after the inserts (zero when the indexes existed first).
    pub index: Duration,
}

impl LoadTiming {
    /// Insert plus index build.
    pub fn total(&self) -> Duration {
        self.insert + self.index
    }
}

/// A search as SQL: the page query, the count query and their operands.
#[derive(Debug, Clone)]
pub struct SqlQuery {
    /// `... INTERSECT ... ORDER BY 1 LIMIT 21`.
    pub page_sql: String,
    /// `SELECT COUNT(*) FROM (... INTERSECT ...)`.
    pub count_sql: String,
    /// Operands, in placeholder order (the same for both statements).
    pub params: Vec<Value>,
}

/// A tag value as SQLite returns it, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlVal {
    /// Column `s`.
    S(String),
    /// Column `n`.
    N(f64),
}

/// One found thing as SQLite returns it, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlThing {
    /// The `thing` column.
    pub thing: i64,
    /// Bare JID.
    pub jid: String,
    /// Owner's bare JID.
    pub owner: String,
    /// `nodeId`, `sourceId`, `cacheType`.
    pub node: [Option<String>; 3],
    /// Tags except `KEY`, in `rowid` order: (name, value).
    pub tags: Vec<(String, SqlVal)>,
}

/// A page as SQLite returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlPage {
    /// The page's things, in thing order.
    pub things: Vec<SqlThing>,
    /// Whether a 21st row came back.
    pub more: bool,
}

/// What SQLite answered: the page and the total count.
#[derive(Debug, Clone)]
pub struct SqlAnswer {
    /// The page (with `more` from the 21st row).
    pub page: SqlPage,
    /// The `thing` column of the page query's rows (up to [`PAGE`]).
    pub ids: Vec<i64>,
    /// `COUNT(*)` of all matches.
    pub count: u64,
}

impl SqlPage {
    /// The engine-neutral form.
    pub fn answer(&self) -> Answer {
        Answer {
            things: self
                .things
                .iter()
                .map(|t| PageThing {
                    jid: t.jid.clone(),
                    owner: t.owner.clone(),
                    node: t.node.clone(),
                    tags: t
                        .tags
                        .iter()
                        .map(|(n, v)| {
                            let v = match v {
                                SqlVal::S(s) => PageVal::S(s.clone()),
                                SqlVal::N(x) => PageVal::N(*x),
                            };
                            (n.clone(), v)
                        })
                        .collect(),
                })
                .collect(),
            more: self.more,
        }
    }
}

const SCHEMA: &str = "CREATE TABLE tag(thing INTEGER, name TEXT, s TEXT, n REAL);
     CREATE TABLE things(thing INTEGER PRIMARY KEY, jid TEXT, owner TEXT,
                         node_id TEXT, source_id TEXT, cache_type TEXT);";
const INDEXES: &str = "CREATE INDEX tag_s ON tag(name, s, thing);
     CREATE INDEX tag_n ON tag(name, n, thing);
     CREATE INDEX tag_thing ON tag(thing);";

/// The page's things with their tags; `?1`..`?20` are the page's `thing`s,
/// NULL-padded (`IN (NULL)` matches nothing).
fn fetch_sql() -> String {
    let slots: Vec<String> = (1..=PAGE).map(|i| format!("?{i}")).collect();
    format!(
        "SELECT h.thing, h.jid, h.owner, h.node_id, h.source_id, h.cache_type, t.name, t.s, t.n \
         FROM things h JOIN tag t ON t.thing = h.thing \
         WHERE h.thing IN ({}) AND t.name <> 'KEY' \
         ORDER BY h.thing, t.rowid",
        slots.join(", ")
    )
}

fn sql_value(t: &Tag) -> (Option<&str>, Option<f64>) {
    match &t.value {
        TagValue::Str(s) => (Some(s), None),
        TagValue::Num(n) => (None, Some(n.get())),
    }
}

fn text(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Text(b) => Some(String::from_utf8(b.to_vec()).expect("UTF-8 text")),
        _ => None,
    }
}

impl Sqlite {
    /// An empty in-memory database with the tables (and, if `indexes`, the
    /// indexes on `tag`).
    pub fn empty(indexes: bool) -> Self {
        let conn = Connection::open_in_memory().expect("open sqlite");
        conn.execute_batch(
            "PRAGMA journal_mode = OFF;
             PRAGMA synchronous = OFF;
             PRAGMA case_sensitive_like = ON;",
        )
        .expect("pragmas");
        register_regexp(&conn);
        conn.execute_batch(SCHEMA).expect("schema");
        if indexes {
            conn.execute_batch(INDEXES).expect("indexes");
        }
        Sqlite { conn }
    }

    /// Inserts things `first..` (a `things` row and their tags each) in one
    /// transaction with prepared statements. Returns the number of `tag` rows.
    pub fn insert(&mut self, first: u64, things: &[GenThing]) -> u64 {
        let tx = self.conn.transaction().expect("begin");
        let mut rows = 0;
        {
            let mut st = tx
                .prepare_cached("INSERT INTO tag(thing, name, s, n) VALUES (?1, ?2, ?3, ?4)")
                .expect("prepare insert");
            let mut th = tx
                .prepare_cached(
                    "INSERT INTO things(thing, jid, owner, node_id, source_id, cache_type) \
                     VALUES (?1, ?2, ?3, NULL, NULL, NULL)",
                )
                .expect("prepare insert");
            for (i, g) in things.iter().enumerate() {
                let thing = (first + i as u64) as i64;
                th.execute(params![thing, g.jid.bare().as_str(), g.owner.as_str()])
                    .expect("insert thing");
                for t in &g.tags {
                    let (s, n) = sql_value(t);
                    st.execute(params![thing, t.name.as_str(), s, n])
                        .expect("insert");
                    rows += 1;
                }
            }
        }
        tx.commit().expect("commit");
        rows
    }

    /// Bulk-loads a population, timed. `index_first`: create the indexes before
    /// inserting; otherwise insert into the bare tables and build them after.
    pub fn load(pop: &[GenThing], index_first: bool) -> (Self, LoadTiming) {
        let mut db = Sqlite::empty(index_first);
        let t0 = Instant::now();
        let rows = db.insert(0, pop);
        let insert = t0.elapsed();
        let mut index = Duration::ZERO;
        if !index_first {
            let t1 = Instant::now();
            db.conn.execute_batch(INDEXES).expect("indexes");
            index = t1.elapsed();
        }
        (
            db,
            LoadTiming {
                rows,
                things: pop.len() as u64,
                insert,
                index,
            },
        )
    }

    /// `page_count * page_size`.
    pub fn db_bytes(&self) -> u64 {
        let pages: i64 = self
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .expect("page_count");
        let size: i64 = self
            .conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .expect("page_size");
        (pages * size) as u64
    }

    fn plan_of(&self, sql: &str, params: &[Value]) -> Vec<String> {
        let mut st = self
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("explain");
        st.query_map(params_from_iter(params.iter()), |r| r.get::<_, String>(3))
            .expect("explain")
            .map(|r| r.expect("row"))
            .collect()
    }

    /// The plan SQLite picked for a query's page query (for the report's log).
    pub fn explain(&self, q: &SqlQuery) -> Vec<String> {
        self.plan_of(&q.page_sql, &q.params)
    }

    /// The plan SQLite picked for fetching a page's things.
    pub fn explain_fetch(&self) -> Vec<String> {
        let ids: Vec<Value> = (0..PAGE as i64).map(Value::Integer).collect();
        self.plan_of(&fetch_sql(), &ids)
    }

    /// Runs the page query and the count query only (the definition of
    /// the EAV baseline: an INTERSECT page plus a COUNT for `more`).
    pub fn run_ids(&self, q: &SqlQuery) -> (Vec<i64>, bool, u64) {
        let mut st = self.conn.prepare_cached(&q.page_sql).expect("prepare page");
        let mut ids: Vec<i64> = st
            .query_map(params_from_iter(q.params.iter()), |r| r.get::<_, i64>(0))
            .expect("page query")
            .map(|r| r.expect("row"))
            .collect();
        let more = ids.len() > PAGE;
        ids.truncate(PAGE);
        let mut st = self
            .conn
            .prepare_cached(&q.count_sql)
            .expect("prepare count");
        let count: i64 = st
            .query_row(params_from_iter(q.params.iter()), |r| r.get(0))
            .expect("count query");
        (ids, more, count as u64)
    }

    /// Runs the page query, the count query and the fetch of the page's things,
    /// and builds the owned page.
    pub fn run(&self, q: &SqlQuery) -> SqlAnswer {
        let (ids, more, count) = self.run_ids(q);
        let things = if ids.is_empty() {
            Vec::new()
        } else {
            self.fetch(&ids)
        };
        SqlAnswer {
            page: SqlPage { things, more },
            ids,
            count,
        }
    }

    /// The things `ids` (at most [`PAGE`]) with their tags except `KEY`, owned.
    fn fetch(&self, ids: &[i64]) -> Vec<SqlThing> {
        let mut st = self
            .conn
            .prepare_cached(&fetch_sql())
            .expect("prepare fetch");
        let slots = (0..PAGE).map(|k| ids.get(k).copied());
        let mut rows = st.query(params_from_iter(slots)).expect("fetch query");
        let mut things: Vec<SqlThing> = Vec::with_capacity(ids.len());
        while let Some(r) = rows.next().expect("fetch row") {
            let thing: i64 = r.get(0).expect("thing");
            if things.last().is_none_or(|t| t.thing != thing) {
                things.push(SqlThing {
                    thing,
                    jid: text(r.get_ref(1).expect("jid")).expect("a JID"),
                    owner: text(r.get_ref(2).expect("owner")).expect("an owner"),
                    node: [
                        text(r.get_ref(3).expect("node_id")),
                        text(r.get_ref(4).expect("source_id")),
                        text(r.get_ref(5).expect("cache_type")),
                    ],
                    tags: Vec::new(),
                });
            }
            let name = text(r.get_ref(6).expect("name")).expect("a name");
            let value = match text(r.get_ref(7).expect("s")) {
                Some(s) => SqlVal::S(s),
                None => SqlVal::N(r.get(8).expect("n")),
            };
            things.last_mut().expect("pushed").tags.push((name, value));
        }
        things
    }
}

/// Registers `regexp(pattern, value)`, which SQLite calls for `value REGEXP
/// pattern`: the compiled pattern is kept as auxiliary data, so a statement
/// compiles it once, not once per row.
fn register_regexp(conn: &Connection) {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "regexp",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let re = ctx.get_or_create_aux(0, |vr| -> Result<regex::Regex, BoxError> {
                Ok(regex::Regex::new(vr.as_str()?)?)
            })?;
            Ok(match ctx.get_raw(1) {
                ValueRef::Text(t) => re.is_match(std::str::from_utf8(t).unwrap_or("")),
                _ => false,
            })
        },
    )
    .expect("register regexp");
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A conjunction as SQL.
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

/// Sanity checks of the `LIKE` translation, run by the report.
pub fn self_check() {
    assert_eq!(like_pattern("39487*", Some("*")), "39487%");
    assert_eq!(like_pattern("*1234*", Some("*")), "%1234%");
    assert_eq!(like_pattern("a%b_c\\*", Some("*")), "a\\%b\\_c\\\\%");
    assert_eq!(like_pattern("a*b", None), "a*b");
    assert_eq!(sql_literal("it's"), "'it''s'");
}
