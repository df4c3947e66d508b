//! `strMask` patterns: literal text in which the request's wildcard string stands
//! for any run of characters (including none). Nothing else is special.
//!
//! A mask is split once at its wildcards into literal pieces `p0 * p1 * ... * pn`.
//! A value matches when it starts with `p0`, ends with `pn` (without the two
//! overlapping) and, when there are middle pieces, holds `p1 .. pn-1` in order in
//! between. Literal, prefix (`39487*`), suffix (`*.se`) and prefix-suffix masks are
//! answered by comparisons and cost one split to compile, which matters on the
//! stanza path where every search arrives as text. Masks with middle pieces
//! (`*1234*`) compile to an anchored dense DFA (`regex-automata`, under a size
//! limit) that checks a value in one pass of table lookups: such masks usually
//! test many values, where a DFA beats a substring search per value by 2-3x.
//!
//! The index walks a tag's sorted values starting at the mask's literal prefix
//! (`p0`), so `39487*` only looks at values that start with `39487`.

use std::fmt;

use regex_automata::dfa::{Automaton, StartKind, dense};
use regex_automata::util::primitives::StateID;
use regex_automata::util::start;
use regex_automata::{Anchored, util::syntax};

/// Why a pattern was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PatternError {}

/// The most wildcards one mask may hold.
pub const MAX_WILDCARDS: usize = 64;

/// A compiled `strMask` (cheap to clone: the compiled form is shared).
#[derive(Clone)]
pub struct Mask(std::sync::Arc<Compiled>);

/// Invariant: `pieces.len() == 1` for a literal mask (then `pieces[0] == source`),
/// otherwise `pieces.len() >= 2` with the first and last pieces possibly empty;
/// `dfa` is set exactly when there are middle pieces (`pieces.len() >= 3`).
struct Compiled {
    source: Box<str>,
    wildcard: Option<Box<str>>,
    pieces: Box<[Box<str>]>,
    dfa: Option<(dense::DFA<Vec<u32>>, StateID)>,
}

/// The biggest DFA one mask may build, in bytes.
pub const DFA_SIZE_LIMIT: usize = 1 << 20;

fn is_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.'
            | '+'
            | '*'
            | '?'
            | '('
            | ')'
            | '|'
            | '['
            | ']'
            | '{'
            | '}'
            | '^'
            | '$'
            | '#'
            | '&'
            | '-'
            | '~'
    )
}

/// An anchored DFA for `p0.*p1.*...pn\z` (pieces literal).
fn build_dfa(
    mask: &str,
    pieces: &[Box<str>],
) -> Result<(dense::DFA<Vec<u32>>, StateID), PatternError> {
    let mut re = String::from("(?s)");
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 {
            re.push_str(".*");
        }
        for c in piece.chars() {
            if is_meta(c) {
                re.push('\\');
            }
            re.push(c);
        }
    }
    re.push_str("\\z");
    let fail = |e: &dyn fmt::Display| {
        PatternError(format!(
            "mask '{}' cannot be compiled: {e}",
            mask.chars().take(64).collect::<String>()
        ))
    };
    let dfa = dense::Builder::new()
        .configure(
            dense::Config::new()
                .start_kind(StartKind::Anchored)
                .dfa_size_limit(Some(DFA_SIZE_LIMIT))
                .determinize_size_limit(Some(DFA_SIZE_LIMIT)),
        )
        .syntax(syntax::Config::new().unicode(true).utf8(true))
        .build(&re)
        .map_err(|e| fail(&e))?;
    let start = dfa
        .start_state(&start::Config::new().anchored(Anchored::Yes))
        .map_err(|e| fail(&e))?;
    Ok((dfa, start))
}

impl fmt::Debug for Mask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mask")
            .field("source", &self.0.source)
            .field("wildcard", &self.0.wildcard)
            .finish()
    }
}

impl PartialEq for Mask {
    fn eq(&self, other: &Self) -> bool {
        self.0.source == other.0.source && self.0.wildcard == other.0.wildcard
    }
}

impl Mask {
    /// Compiles a mask. `wildcard` is the request's `wildcard` attribute; `None` or
    /// an empty string means the whole mask is literal. Fails only when the mask
    /// holds more than [`MAX_WILDCARDS`] wildcards.
    pub fn new(mask: &str, wildcard: Option<&str>) -> Result<Self, PatternError> {
        let wildcard = wildcard.filter(|w| !w.is_empty());
        let pieces: Box<[Box<str>]> = match wildcard {
            Some(w) => mask.split(w).map(Into::into).collect(),
            None => Box::new([mask.into()]),
        };
        if pieces.len() > MAX_WILDCARDS + 1 {
            return Err(PatternError(format!(
                "mask '{}' holds more than {MAX_WILDCARDS} wildcards",
                mask.chars().take(64).collect::<String>()
            )));
        }
        // Prefix and suffix masks (`39487*`, `*.se`, `a*b`) need no automaton;
        // with middle pieces a DFA scans each value in one pass.
        let dfa = if pieces.len() >= 3 {
            Some(build_dfa(mask, &pieces)?)
        } else {
            None
        };
        Ok(Mask(std::sync::Arc::new(Compiled {
            source: mask.into(),
            wildcard: wildcard.map(Into::into),
            pieces,
            dfa,
        })))
    }

    /// The mask as given.
    pub fn source(&self) -> &str {
        &self.0.source
    }

    /// The wildcard string, if any.
    pub fn wildcard(&self) -> Option<&str> {
        self.0.wildcard.as_deref()
    }

    /// The literal text before the first wildcard: every match starts with it.
    pub fn prefix(&self) -> &str {
        &self.0.pieces[0]
    }

    /// Whether the mask has no wildcard (then it is plain equality).
    pub fn is_literal(&self) -> bool {
        self.0.pieces.len() == 1
    }

    /// Whether a whole value matches.
    pub fn is_match(&self, value: &str) -> bool {
        let c = &*self.0;
        let Some((dfa, start)) = &c.dfa else {
            let (first, last) = (&*c.pieces[0], &*c.pieces[c.pieces.len() - 1]);
            if c.pieces.len() == 1 {
                return value == first;
            }
            return value.len() >= first.len() + last.len()
                && value.starts_with(first)
                && value.ends_with(last);
        };
        let mut sid = *start;
        for &b in value.as_bytes() {
            sid = dfa.next_state(sid, b);
            if dfa.is_dead_state(sid) {
                return false;
            }
        }
        dfa.is_match_state(dfa.next_eoi_state(sid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_infix_suffix() {
        let m = Mask::new("39487*", Some("*")).unwrap();
        assert_eq!(m.prefix(), "39487");
        assert!(m.is_match("394872348732948723"));
        assert!(m.is_match("39487"));
        assert!(!m.is_match("3948"));
        assert!(!m.is_match("x39487"));
        let m = Mask::new("*1234*", Some("*")).unwrap();
        assert_eq!(m.prefix(), "");
        assert!(m.is_match("001234"));
        assert!(m.is_match("1234"));
        assert!(!m.is_match("123"));
        let m = Mask::new("a*c", Some("*")).unwrap();
        assert!(m.is_match("ac"));
        assert!(m.is_match("abbbc"));
        assert!(!m.is_match("abcd"));
    }

    #[test]
    fn everything_but_the_wildcard_is_literal() {
        let m = Mask::new("a.b%(c)*", Some("%")).unwrap();
        assert!(m.is_match("a.bxyz(c)*"));
        assert!(!m.is_match("aXbxyz(c)*"));
        let m = Mask::new("a*b", None).unwrap();
        assert!(m.is_literal());
        assert!(m.is_match("a*b"));
        assert!(!m.is_match("axb"));
        let m = Mask::new("x??y", Some("??")).unwrap();
        assert!(m.is_match("xy"));
        assert!(m.is_match("x-anything-y"));
        let m = Mask::new("<é>*\\", Some("*")).unwrap();
        assert!(m.is_match("<é>zz\\"));
    }

    /// Backtracking glob match: obviously right, exponential, fine for short input.
    fn glob(p: &[&str], v: &str) -> bool {
        match p {
            [] => v.is_empty(),
            [only] => v == *only,
            [first, rest @ ..] => {
                let Some(tail) = v.strip_prefix(first) else {
                    return false;
                };
                // `*` then the rest: try every split point of the tail.
                tail.char_indices()
                    .map(|(i, _)| i)
                    .chain([tail.len()])
                    .any(|i| glob_star(rest, &tail[i..]))
            }
        }
    }

    fn glob_star(p: &[&str], v: &str) -> bool {
        glob(p, v)
    }

    #[test]
    fn leftmost_matching_agrees_with_backtracking() {
        let alphabet = ["a", "b", "ab", "ba", ""];
        let values = [
            "", "a", "b", "ab", "ba", "aab", "abab", "bab", "abba", "aaa", "babab",
        ];
        for x in alphabet {
            for y in alphabet {
                for z in alphabet {
                    for pattern in [
                        format!("{x}*{y}*{z}"),
                        format!("{x}*{y}"),
                        format!("{x}{y}*{z}"),
                    ] {
                        let m = Mask::new(&pattern, Some("*")).unwrap();
                        let pieces: Vec<&str> = pattern.split('*').collect();
                        for v in values {
                            assert_eq!(m.is_match(v), glob(&pieces, v), "{pattern} ~ {v}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn unicode_wildcard_runs() {
        let m = Mask::new("*ö*", Some("*")).unwrap();
        assert!(m.is_match("Malmö"));
        assert!(!m.is_match("Malmo"));
    }
}

#[cfg(test)]
mod hostile {
    use super::*;

    #[test]
    fn long_and_wildcard_heavy_masks_compile_or_fail_cleanly() {
        for mask in [
            "*".repeat(128),
            "a*".repeat(64),
            "é*".repeat(64),
            "*a*b*c*d*e*f*g*h*i*j*k*l*m*n*o*p*q*r*s*t*u*v*w*x*y*z*".repeat(2),
        ] {
            match Mask::new(&mask, Some("*")) {
                Ok(m) => {
                    let _ = m.is_match(&"a".repeat(128));
                }
                Err(e) => assert!(
                    e.0.contains("wildcards") || e.0.contains("cannot be compiled"),
                    "{e}"
                ),
            }
        }
    }
}
