//! `strMask` patterns, compiled once per search into a DFA.
//!
//! A mask is literal text in which the request's wildcard string stands for any
//! run of characters (including none); nothing else is special. It compiles to an
//! anchored regular expression (`literal.*literal...\z`) built by
//! `regex-automata` into a dense DFA under a size limit, and the index runs that
//! DFA over the tag's sorted values, starting at the mask's literal prefix (the
//! text before the first wildcard) so `39487*` only looks at values that start with
//! `39487`. Running a DFA is a table lookup per byte and stops at the first dead
//! state.

use std::fmt;

use regex_automata::dfa::{Automaton, StartKind, dense};
use regex_automata::util::primitives::StateID;
use regex_automata::util::start;
use regex_automata::{Anchored, util::syntax};

/// The biggest DFA one pattern may build, in bytes.
pub const DFA_SIZE_LIMIT: usize = 1 << 20;

/// Why a pattern was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PatternError {}

/// A compiled `strMask` (cheap to clone: the compiled form is shared).
#[derive(Clone)]
pub struct Mask(std::sync::Arc<Compiled>);

struct Compiled {
    source: Box<str>,
    wildcard: Option<Box<str>>,
    prefix: Box<str>,
    literal: bool,
    dfa: dense::DFA<Vec<u32>>,
    start: StateID,
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

fn escape_into(out: &mut String, lit: &str) {
    for c in lit.chars() {
        if is_meta(c) {
            out.push('\\');
        }
        out.push(c);
    }
}

impl Mask {
    /// Compiles a mask. `wildcard` is the request's `wildcard` attribute; `None` or
    /// an empty string means the whole mask is literal.
    pub fn new(mask: &str, wildcard: Option<&str>) -> Result<Self, PatternError> {
        let wildcard = wildcard.filter(|w| !w.is_empty());
        let pieces: Vec<&str> = match wildcard {
            Some(w) => mask.split(w).collect(),
            None => vec![mask],
        };
        let mut re = String::from("(?s)");
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 {
                re.push_str(".*");
            }
            escape_into(&mut re, piece);
        }
        re.push_str("\\z");
        let dfa = dense::Builder::new()
            .configure(
                dense::Config::new()
                    .start_kind(StartKind::Anchored)
                    .dfa_size_limit(Some(DFA_SIZE_LIMIT))
                    .determinize_size_limit(Some(DFA_SIZE_LIMIT)),
            )
            .syntax(syntax::Config::new().unicode(true).utf8(true))
            .build(&re)
            .map_err(|e| PatternError(format!("mask '{mask}' cannot be compiled: {e}")))?;
        let start = dfa
            .start_state(&start::Config::new().anchored(Anchored::Yes))
            .map_err(|e| PatternError(format!("mask '{mask}' cannot be compiled: {e}")))?;
        Ok(Mask(std::sync::Arc::new(Compiled {
            source: mask.into(),
            wildcard: wildcard.map(Into::into),
            prefix: pieces[0].into(),
            literal: pieces.len() == 1,
            dfa,
            start,
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
        &self.0.prefix
    }

    /// Whether the mask has no wildcard (then it is plain equality).
    pub fn is_literal(&self) -> bool {
        self.0.literal
    }

    /// Whether a whole value matches.
    pub fn is_match(&self, value: &str) -> bool {
        let c = &*self.0;
        if c.literal {
            return value == &*c.source;
        }
        let mut sid = c.start;
        for &b in value.as_bytes() {
            sid = c.dfa.next_state(sid, b);
            if c.dfa.is_dead_state(sid) {
                return false;
            }
        }
        c.dfa.is_match_state(c.dfa.next_eoi_state(sid))
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
                Err(e) => assert!(e.0.contains("cannot be compiled"), "{e}"),
            }
        }
    }
}
