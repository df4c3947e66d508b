//! The SQLite baseline: an in-memory EAV table
//! `tag(thing INTEGER, name TEXT, s TEXT, n REAL)` indexed on `(name, s, thing)`
//! and `(name, n, thing)`, one row per tag (`KEY` included, since the registry
//! stores it too), `thing` = datagen index = registry order. Every thing is
//! public and claimed, so no searchable column is needed.
//!
//! A search is an `INTERSECT` of one `SELECT thing` per operator, `ORDER BY thing
//! LIMIT 21` for the page, plus a `SELECT COUNT(*)` over the same intersection
//! (what the issue specifies for `more`). Statements are prepared once and
//! cached; operands are bound per run, except a `strMask`'s `LIKE` pattern, which
//! is inlined as a literal so SQLite can plan its literal prefix as an index range
//! once (a bound `LIKE` pattern makes SQLite re-prepare the statement on every
//! execution). `PRAGMA case_sensitive_like = ON` makes `LIKE` compare bytes, as
//! `strMask` does.

use std::time::{Duration, Instant};

use iotdisco::datagen::GenThing;
use iotdisco::query::{NumRange, Operator, StrRange};
use iotdisco::{Tag, TagValue};
use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};

use super::{Answer, PAGE};

/// The database.
pub struct Sqlite {
    /// The connection (in-memory database).
    pub conn: Connection,
}

/// How long loading took.
#[derive(Debug, Clone, Copy)]
pub struct LoadTiming {
    /// Rows inserted (one per tag).
    pub rows: u64,
    /// Things inserted.
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

/// What SQLite answered: the page and the total count.
#[derive(Debug, Clone)]
pub struct SqlAnswer {
    /// The page (with `more` from the 21st row).
    pub page: Answer,
    /// `COUNT(*)` of all matches.
    pub count: u64,
}

const SCHEMA: &str = "CREATE TABLE tag(thing INTEGER, name TEXT, s TEXT, n REAL);";
const INDEXES: &str = "CREATE INDEX tag_s ON tag(name, s, thing);
     CREATE INDEX tag_n ON tag(name, n, thing);";

fn sql_value(t: &Tag) -> (Option<&str>, Option<f64>) {
    match &t.value {
        TagValue::Str(s) => (Some(s), None),
        TagValue::Num(n) => (None, Some(n.get())),
    }
}

impl Sqlite {
    /// An empty in-memory database with the table (and, if `indexes`, its indexes).
    pub fn empty(indexes: bool) -> Self {
        let conn = Connection::open_in_memory().expect("open sqlite");
        conn.execute_batch(
            "PRAGMA journal_mode = OFF;
             PRAGMA synchronous = OFF;
             PRAGMA case_sensitive_like = ON;",
        )
        .expect("pragmas");
        conn.execute_batch(SCHEMA).expect("schema");
        if indexes {
            conn.execute_batch(INDEXES).expect("indexes");
        }
        Sqlite { conn }
    }

    /// Inserts things `first..` (their tags) in one transaction with a prepared
    /// statement. Returns the number of rows.
    pub fn insert(&mut self, first: u64, things: &[GenThing]) -> u64 {
        let tx = self.conn.transaction().expect("begin");
        let mut rows = 0;
        {
            let mut st = tx
                .prepare_cached("INSERT INTO tag(thing, name, s, n) VALUES (?1, ?2, ?3, ?4)")
                .expect("prepare insert");
            for (i, g) in things.iter().enumerate() {
                let thing = (first + i as u64) as i64;
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
    /// inserting; otherwise insert into the bare table and build them after.
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

    /// The plan SQLite picked for a query (for the report's log).
    pub fn explain(&self, q: &SqlQuery) -> Vec<String> {
        let mut st = self
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", q.page_sql))
            .expect("explain");
        st.query_map(params_from_iter(q.params.iter()), |r| r.get::<_, String>(3))
            .expect("explain")
            .map(|r| r.expect("row"))
            .collect()
    }

    /// Runs the page query and the count query.
    pub fn run(&self, q: &SqlQuery) -> SqlAnswer {
        let mut st = self.conn.prepare_cached(&q.page_sql).expect("prepare page");
        let mut ids: Vec<u32> = st
            .query_map(params_from_iter(q.params.iter()), |r| r.get::<_, i64>(0))
            .expect("page query")
            .map(|r| r.expect("row") as u32)
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
        SqlAnswer {
            page: Answer { ids, more },
            count: count as u64,
        }
    }
}

/// `LIKE` pattern of a mask: pieces joined with `%`, `%`, `_` and `\` escaped
/// with `\` (used with `ESCAPE '\'`).
pub fn like_pattern(mask: &str, wildcard: Option<&str>) -> String {
    let pieces: Vec<&str> = match wildcard {
        Some(w) if !w.is_empty() => mask.split(w).collect(),
        _ => vec![mask],
    };
    let mut out = String::new();
    for (i, p) in pieces.iter().enumerate() {
        if i > 0 {
            out.push('%');
        }
        for c in p.chars() {
            if matches!(c, '%' | '_' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

fn sql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `lo < col < hi` with inclusion flags, as SQL on `col`.
fn inside(col: &str, min_inc: bool, max_inc: bool) -> String {
    let lo = if min_inc { ">=" } else { ">" };
    let hi = if max_inc { "<=" } else { "<" };
    format!("{col} {lo} ? AND {col} {hi} ?")
}

/// The complement within the tag: below the range or above it.
fn outside(col: &str, min_inc: bool, max_inc: bool) -> String {
    let lo = if min_inc { "<" } else { "<=" };
    let hi = if max_inc { ">" } else { ">=" };
    format!("({col} {lo} ? OR {col} {hi} ?)")
}

fn str_range(r: &StrRange) -> [Value; 2] {
    [
        Value::Text(r.min.to_string()),
        Value::Text(r.max.to_string()),
    ]
}

fn num_range(r: &NumRange) -> [Value; 2] {
    [Value::Real(r.min.get()), Value::Real(r.max.get())]
}

/// One operator as `SELECT thing FROM tag WHERE name = ? AND ...`, appending
/// its operands to `params`.
pub fn select_of(op: &Operator, params: &mut Vec<Value>) -> String {
    use Operator as O;
    let name = op.name().as_str();
    if name == "KEY" {
        // KEY is never searchable.
        return "SELECT thing FROM tag WHERE 0".into();
    }
    params.push(Value::Text(name.into()));
    let text = |c: &str| Value::Text(c.into());
    let cond = match op {
        O::StrEq(_, c) => {
            params.push(text(c));
            "s = ?".to_string()
        }
        O::StrNEq(_, c) => {
            params.push(text(c));
            "s <> ?".to_string()
        }
        O::StrGt(_, c) => {
            params.push(text(c));
            "s > ?".to_string()
        }
        O::StrGtEq(_, c) => {
            params.push(text(c));
            "s >= ?".to_string()
        }
        O::StrLt(_, c) => {
            params.push(text(c));
            "s < ?".to_string()
        }
        O::StrLtEq(_, c) => {
            params.push(text(c));
            "s <= ?".to_string()
        }
        O::StrRange(_, r) => {
            params.extend(str_range(r));
            inside("s", r.min_included, r.max_included)
        }
        O::StrNRange(_, r) => {
            params.extend(str_range(r));
            outside("s", r.min_included, r.max_included)
        }
        O::StrMask(_, m) => format!(
            "s LIKE {} ESCAPE '\\'",
            sql_literal(&like_pattern(m.source(), m.wildcard()))
        ),
        O::NumEq(_, c) => {
            params.push(Value::Real(c.get()));
            "n = ?".to_string()
        }
        O::NumNEq(_, c) => {
            params.push(Value::Real(c.get()));
            "n <> ?".to_string()
        }
        O::NumGt(_, c) => {
            params.push(Value::Real(c.get()));
            "n > ?".to_string()
        }
        O::NumGtEq(_, c) => {
            params.push(Value::Real(c.get()));
            "n >= ?".to_string()
        }
        O::NumLt(_, c) => {
            params.push(Value::Real(c.get()));
            "n < ?".to_string()
        }
        O::NumLtEq(_, c) => {
            params.push(Value::Real(c.get()));
            "n <= ?".to_string()
        }
        O::NumRange(_, r) => {
            params.extend(num_range(r));
            inside("n", r.min_included, r.max_included)
        }
        O::NumNRange(_, r) => {
            params.extend(num_range(r));
            outside("n", r.min_included, r.max_included)
        }
    };
    format!("SELECT thing FROM tag WHERE name = ? AND {cond}")
}

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
