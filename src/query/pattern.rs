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

/// Invariant: `pieces.len() == 1` for a literal mask (then `pieces[0] == source`
/// for a mask built by [`Mask::new`]; a [`NameMask`]'s pieces are upper-cased),
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
        Mask::from_pieces(mask, wildcard, pieces)
    }

    /// A mask from its literal pieces (`mask` split at `wildcard`, possibly
    /// transformed piece by piece).
    fn from_pieces(
        mask: &str,
        wildcard: Option<&str>,
        pieces: Box<[Box<str>]>,
    ) -> Result<Self, PatternError> {
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

/// The longest `strRegEx` pattern, in bytes.
pub const MAX_REGEX_BYTES: usize = 1024;

/// The biggest DFA one `strRegEx` pattern may build, in bytes (the same bound
/// as a mask's, [`DFA_SIZE_LIMIT`]).
pub const REGEX_DFA_SIZE_LIMIT: usize = DFA_SIZE_LIMIT;

/// The deepest nesting of groups and repetitions a `strRegEx` pattern may use.
const REGEX_NEST_LIMIT: u32 = 64;

/// A compiled `strRegEx`: a regular expression (`regex` crate syntax, Unicode
/// aware) matched against the WHOLE value, whatever anchors the pattern has:
/// `^3948[0-9]*7$`, `3948[0-9]*7` and `^3948[0-9]*7` select the same values.
/// Cheap to clone: the compiled form is shared.
///
/// The pattern is parsed on its own first (so `a)|(b` is refused rather than
/// changing the meaning of the anchoring group) and compiled to an anchored
/// dense DFA for `(?:pattern)\z`, under [`MAX_REGEX_BYTES`] of pattern and
/// [`REGEX_DFA_SIZE_LIMIT`] of DFA. The literal text every match starts with
/// ([`Regex::prefix`]) is read off the DFA: the bytes forced from its start state
/// (one live transition and no match at the end); the index walks only the
/// values starting with it. A pattern that only matches one string is an
/// equality ([`Regex::literal`]).
#[derive(Clone)]
pub struct Regex(std::sync::Arc<CompiledRegex>);

struct CompiledRegex {
    source: Box<str>,
    dfa: dense::DFA<Vec<u32>>,
    start: StateID,
    prefix: Box<str>,
    literal: bool,
}

impl fmt::Debug for Regex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Regex").field(&self.0.source).finish()
    }
}

impl PartialEq for Regex {
    fn eq(&self, other: &Self) -> bool {
        self.0.source == other.0.source
    }
}

impl Regex {
    /// Compiles a pattern; fails with the reason when it is longer than
    /// [`MAX_REGEX_BYTES`], is not a valid regular expression, uses what a DFA
    /// cannot run (look-around other than `^`/`$`/`\A`/`\z`, Unicode word
    /// boundaries) or needs a DFA larger than [`REGEX_DFA_SIZE_LIMIT`].
    pub fn new(pattern: &str) -> Result<Self, PatternError> {
        let shown = || pattern.chars().take(64).collect::<String>();
        if pattern.len() > MAX_REGEX_BYTES {
            return Err(PatternError(format!(
                "regular expression '{}...' is longer than {MAX_REGEX_BYTES} bytes",
                shown()
            )));
        }
        let fail = |e: &dyn fmt::Display| {
            PatternError(format!(
                "regular expression '{}' cannot be compiled: {e}",
                shown()
            ))
        };
        let syntax = syntax::Config::new()
            .unicode(true)
            .utf8(true)
            .nest_limit(REGEX_NEST_LIMIT);
        // On its own first: the pattern must be one whole expression.
        syntax::parse_with(pattern, &syntax).map_err(|e| fail(&e))?;
        let dfa = dense::Builder::new()
            .configure(
                dense::Config::new()
                    .start_kind(StartKind::Anchored)
                    .match_kind(regex_automata::MatchKind::All)
                    .dfa_size_limit(Some(REGEX_DFA_SIZE_LIMIT))
                    .determinize_size_limit(Some(REGEX_DFA_SIZE_LIMIT)),
            )
            .syntax(syntax)
            .thompson(
                regex_automata::nfa::thompson::Config::new()
                    .nfa_size_limit(Some(REGEX_DFA_SIZE_LIMIT)),
            )
            .build(&format!("(?:{pattern})\\z"))
            .map_err(|e| fail(&e))?;
        let start = dfa
            .start_state(&start::Config::new().anchored(Anchored::Yes))
            .map_err(|e| fail(&e))?;
        let (prefix, literal) = forced_prefix(&dfa, start);
        Ok(Regex(std::sync::Arc::new(CompiledRegex {
            source: pattern.into(),
            dfa,
            start,
            prefix,
            literal,
        })))
    }

    /// The pattern as given.
    pub fn source(&self) -> &str {
        &self.0.source
    }

    /// Literal text every matching value starts with (often empty).
    pub fn prefix(&self) -> &str {
        &self.0.prefix
    }

    /// The one value this pattern matches, when it matches exactly one (then it
    /// is an equality with [`Regex::prefix`]).
    pub fn literal(&self) -> Option<&str> {
        self.0.literal.then_some(&*self.0.prefix)
    }

    /// Whether a whole value matches.
    pub fn is_match(&self, value: &str) -> bool {
        let c = &*self.0;
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

/// The bytes every match must start with, followed from `start` while exactly
/// one byte leads to a live state and the input may not end there; cut to whole
/// characters. Also whether the pattern matches that prefix and nothing else.
fn forced_prefix(dfa: &dense::DFA<Vec<u32>>, start: StateID) -> (Box<str>, bool) {
    let mut bytes = Vec::new();
    let mut sid = start;
    let literal = loop {
        let ends_here = dfa.is_match_state(dfa.next_eoi_state(sid));
        let mut live = (0..=255u8).filter(|&b| !dfa.is_dead_state(dfa.next_state(sid, b)));
        let (first, second) = (live.next(), live.next());
        match (first, second, ends_here) {
            (None, _, true) => break true,
            (Some(b), None, false) if bytes.len() < 4 * crate::tag::MAX_VALUE_CHARS => {
                bytes.push(b);
                sid = dfa.next_state(sid, b);
            }
            _ => break false,
        }
    };
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => t,
        // A partial character at the end: keep the whole ones (never the
        // case for a literal, which is a complete value).
        Err(e) => std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or(""),
    };
    let literal = literal && text.len() == bytes.len();
    (text.into(), literal)
}

/// A mask over tag NAMES (`nameWildcard`): like a [`Mask`], but case-insensitive
/// as names are (each literal piece is upper-cased as [`crate::tag::TagName`]
/// does, the wildcard is kept as given).
#[derive(Clone, PartialEq)]
pub struct NameMask {
    source: Box<str>,
    wildcard: Box<str>,
    upper: Mask,
}

impl fmt::Debug for NameMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NameMask")
            .field("source", &self.source)
            .field("wildcard", &self.wildcard)
            .finish()
    }
}

impl NameMask {
    /// Compiles a name mask: `mask` is the operator's `name`, `wildcard` its
    /// `nameWildcard` (both non-empty).
    pub fn new(mask: &str, wildcard: &str) -> Result<Self, PatternError> {
        if mask.is_empty() {
            return Err(PatternError(
                "a tag name mask (nameWildcard) needs a non-empty name".into(),
            ));
        }
        if wildcard.is_empty() {
            return Err(PatternError("nameWildcard must not be empty".into()));
        }
        let pieces: Box<[Box<str>]> = mask
            .split(wildcard)
            .map(|p| p.to_uppercase().into_boxed_str())
            .collect();
        let upper = Mask::from_pieces(mask, Some(wildcard), pieces)?;
        Ok(NameMask {
            source: mask.into(),
            wildcard: wildcard.into(),
            upper,
        })
    }

    /// The mask as given (the `name` attribute).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The wildcard (the `nameWildcard` attribute).
    pub fn wildcard(&self) -> &str {
        &self.wildcard
    }

    /// Literal upper-case text before the first wildcard: every matching name
    /// starts with it.
    pub fn prefix(&self) -> &str {
        self.upper.prefix()
    }

    /// Whether a (stored, upper-case) tag name matches.
    pub fn is_match(&self, name: &str) -> bool {
        self.upper.is_match(name)
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
mod regex_tests {
    use super::*;

    #[test]
    fn whole_value_whatever_the_anchors() {
        for p in [
            "^3948[0-9]*7$",
            "3948[0-9]*7",
            "^3948[0-9]*7",
            "3948[0-9]*7$",
        ] {
            let r = Regex::new(p).unwrap();
            assert_eq!(r.prefix(), "3948", "{p}");
            assert_eq!(r.literal(), None);
            assert!(r.is_match("39487"), "{p}");
            assert!(r.is_match("3948123457"), "{p}");
            assert!(!r.is_match("x39487"), "{p}");
            assert!(!r.is_match("394871"), "{p}");
            assert!(!r.is_match("3948a7"), "{p}");
        }
    }

    #[test]
    fn prefix_and_literal() {
        assert_eq!(Regex::new("abc").unwrap().literal(), Some("abc"));
        assert_eq!(Regex::new("^a(b)c$").unwrap().literal(), Some("abc"));
        assert_eq!(Regex::new("abc|abd").unwrap().prefix(), "ab");
        assert_eq!(Regex::new("(?i)abc").unwrap().prefix(), "");
        assert_eq!(Regex::new("ab*").unwrap().prefix(), "a");
        assert_eq!(Regex::new("ab*").unwrap().literal(), None);
        assert_eq!(Regex::new("Malmö.*").unwrap().prefix(), "Malmö");
        // A shared first byte of two different characters is not a prefix.
        assert_eq!(Regex::new("[éè]x").unwrap().prefix(), "");
        assert_eq!(Regex::new("").unwrap().literal(), Some(""));
        let r = Regex::new(".*1234.*").unwrap();
        assert_eq!(r.prefix(), "");
        assert!(r.is_match("001234"));
        assert!(!r.is_match("123"));
    }

    #[test]
    fn the_pattern_must_be_whole() {
        // Would escape the anchoring group if it were pasted in.
        assert!(Regex::new("a)|(b").is_err());
        assert!(Regex::new("a\\").is_err());
        assert!(Regex::new("(").is_err());
        assert!(Regex::new("[z-a]").is_err());
    }

    #[test]
    fn limits() {
        let long = "a".repeat(MAX_REGEX_BYTES + 1);
        let e = Regex::new(&long).unwrap_err();
        assert!(e.0.contains("longer than"), "{e}");
        assert!(Regex::new(&"a".repeat(MAX_REGEX_BYTES)).is_ok());
        // Exponential blow-up of the DFA.
        let e = Regex::new("[01]*1[01]{20}").unwrap_err();
        assert!(e.0.contains("cannot be compiled"), "{e}");
        // Unicode word boundaries need a look-around a DFA cannot run.
        assert!(Regex::new(r"\bx\b").is_err());
        // Unicode classes fit.
        assert!(Regex::new(r"\w+-\d+").unwrap().is_match("Malmö-42"));
        let nested = format!("{}a{}", "(".repeat(100), ")".repeat(100));
        assert!(Regex::new(&nested).is_err());
    }

    #[test]
    fn name_masks_ignore_case() {
        let m = NameMask::new("temp*", "*").unwrap();
        assert_eq!(m.prefix(), "TEMP");
        assert!(m.is_match("TEMP"));
        assert!(m.is_match("TEMP_3"));
        assert!(!m.is_match("XTEMP"));
        // A letter as wildcard stays a wildcard after upper-casing.
        let m = NameMask::new("txp", "x").unwrap();
        assert!(m.is_match("TEMP"));
        assert!(!m.is_match("TEMPX"));
        assert!(NameMask::new("", "*").is_err());
        assert!(NameMask::new("a", "").is_err());
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
