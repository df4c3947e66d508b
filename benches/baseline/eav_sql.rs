//! Search operators as SQL over the EAV baseline's `tag(thing, name, s, n)`
//! table: one `SELECT thing` per operator, intersected by the caller. Shared by
//! the benches' SQLite baseline (`baseline/sqlite.rs`) and the `iotdisco bench
//! --baseline sqlite` command (`cli/src/bench/sqlite.rs` includes this file
//! with `#[path]`), so both time exactly the same SQL. `strRegEx` becomes
//! `s REGEXP ?`: the connection must have a `regexp` function registered.

use iotdisco::query::{NumRange, Operator, StrRange};
use rusqlite::types::Value;

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

/// A string as an SQL literal.
pub fn sql_literal(s: &str) -> String {
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
    if let O::AnyName(mask, inner) = op {
        // One row per matching tag: DISTINCT keeps a thing once (COUNT(*)
        // counts things).
        let pieces: Vec<String> = mask
            .source()
            .split(mask.wildcard())
            .map(str::to_uppercase)
            .collect();
        let like: Vec<String> = pieces.iter().map(|p| like_pattern(p, None)).collect();
        return format!(
            "SELECT DISTINCT thing FROM tag WHERE name LIKE {} ESCAPE '\\' AND name <> 'KEY' AND {}",
            sql_literal(&like.join("%")),
            cond_of(inner, params)
        );
    }
    let name = op.name().as_str();
    if name == "KEY" {
        // KEY is never searchable.
        return "SELECT thing FROM tag WHERE 0".into();
    }
    params.push(Value::Text(name.into()));
    let cond = cond_of(op, params);
    format!("SELECT thing FROM tag WHERE name = ? AND {cond}")
}

/// The condition on a `tag` row's value, appending its operands to `params`.
fn cond_of(op: &Operator, params: &mut Vec<Value>) -> String {
    use Operator as O;
    let text = |c: &str| Value::Text(c.into());
    match op {
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
        O::StrRegEx(_, r) => {
            params.push(text(&format!("^(?:{})$", r.source())));
            "s REGEXP ?".to_string()
        }
        O::AnyName(_, inner) => cond_of(inner, params),
    }
}
