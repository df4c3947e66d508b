//! Text codecs for things' meta data outside XMPP: the claim string of spec 3.9
//! (`IoTDisco;SN:...;#V:1.2;KEY:...`, printed as a QR code on a thing), the
//! successor's `iotdisco:` claim URI (`iotdisco:SN=...;#V=1.2;KEY=...;R=registry`)
//! and the successor's `iotdisco:` search URI (`iotdisco:MAN=www.ktc.se;#V>=1;#V<2`).
//!
//! This module owns the text only: it turns strings into checked [`Tag`]s and
//! [`Operator`]s and back. Decoders never panic, whatever the input; every error
//! is a [`UriError`] with the character position and a reason a person can read.
//! Encoders always produce text their decoder reads back to the same value
//! (`decode(encode(x)) == x`), which the tests check on arbitrary input.
//!
//! # The spec's claim string (XEP-0347 3.9, Listing 14)
//!
//! ```text
//! claim  = "IoTDisco" *( ";" tag ) [ ";" ]
//! tag    = [ "#" ] name ":" value        ; "#" marks a numeric tag
//! ```
//!
//! A `\` makes the next character literal, so `\;` is a `;` inside a value and
//! `\\` a backslash; the encoder escapes exactly `;` and `\` (in values as the spec
//! says, and in names too, which the spec's names never need). The name ends at
//! the first unescaped `:`, the value at the next unescaped `;`; a value may hold
//! `:` freely. [`encode_claim`] writes no trailing `;`, as Listing 14 does (its
//! printed form breaks the line after `#V:1.2;`: the string itself has no line
//! break). [`decode_claim`] is liberal where it is harmless: the prefix is matched
//! without regard to case, white space before the prefix and between a `;` and
//! the next tag name is skipped (a name never starts with white space, so the
//! listing copied with its line break still decodes), and one trailing `;` is
//! accepted. Numbers are read as by [`Number::parse`] (`1.2`, `1`, `1E+20`), and
//! must be finite. An empty claim (`IoTDisco`) decodes to no tags.
//!
//! # The successor's `iotdisco:` URIs (`successor-dialect.md`, section 6)
//!
//! ```text
//! uri    = "iotdisco:" item *( ";" item ) [ ";" ]     ; scheme in any case
//! item   = [ "#" ] name op value
//! op     = "=" / "<>" / "<" / "<=" / ">" / ">=" / "~" wildcard
//!        / ":" keyword "="                             ; iotdisco extension, below
//! ```
//!
//! Following the successor's clients (IoTGateway `TryDecodeIoTDiscoURI`): the
//! name ends at the first unescaped `=`, `<`, `>` or `~` (and, in this
//! implementation, `:`, which no tag name may contain); after `<` an `=` or `>`
//! belongs to the operator; after `~` the next character, whatever it is, is the
//! wildcard and the rest of the item is the mask (`SN~*39487*` is `strMask` with
//! wildcard `*` and mask `39487*`, i.e. "starts with 39487"; "contains" is
//! `SN~**39487*`). The value ends at the next unescaped `;`. A `\` makes the next
//! character literal, in names and values; after that split, names and values are
//! percent-decoded (`%3B` and `\;` both give `;`; a `%` not followed by two hex
//! digits stays as it is, and so do percent-encoded bytes that are not UTF-8).
//! Names are case-insensitive. Leading and trailing white space around the URI is
//! ignored; one trailing `;` is accepted (the successor refuses it); `;;` is an
//! error.
//!
//! The encoders write what the successor's `EncodeAsIoTDiscoURI` writes:
//! `Uri.EscapeDataString` of name and value (RFC 3986 unreserved `A-Za-z0-9-._~`
//! kept, everything else UTF-8 `%XX`), `#` before numeric names, numbers in their
//! shortest round-trip form (`1`, `1.2`, `1e20`), with one deliberate difference:
//! a `~` in a NAME is written `%7E`, since a raw one would read back as the mask
//! operator. Search URIs also keep `*@:/+!$` and a mask's wildcard readable.
//!
//! ## Claim URIs
//!
//! Only `=` items; the string tag `R` is the registry's address (the successor's
//! clients send the claim there and never send `R` itself), a numeric `#R` is an
//! ordinary tag. A name may occur once.
//!
//! ## Search URIs
//!
//! Every item is one operator, `#` selecting the `num*` operators; all are ANDed.
//! As in the successor, a tag may carry one operator, or one lower bound (`>`,
//! `>=`) and one upper bound (`<`, `<=`), which merge into one range operator:
//! when the upper bound is not below the lower one they mean "inside"
//! (`#V>=1;#V<2` is `numRange` min 1 included, max 2 excluded); when it is below,
//! "outside" (`#K>3;#K<2` is `numNRange` from 2 to 3, both ends included: K < 2
//! or K > 3). Strings compare by code point here (the successor compares them
//! with .NET's culture-aware `string.Compare`). A string `R=` item names the
//! registry ([`SearchUri::registry`]) rather than searching a tag.
//!
//! ## The iotdisco extension: explicit operators
//!
//! The successor's form has no way to write a degenerate range (`strRange` with
//! min above max, `strNRange` with min = max), a mask without a wildcard or with
//! a wildcard of several characters, or several operators on one tag. The
//! extension writes any operator explicitly as `[#]NAME:KEYWORD=VALUE`. A `:` can
//! never occur in a tag name (spec 5.2, and the successor's spec), so no valid
//! successor URI means anything else by it; explicit items are never merged.
//!
//! | keyword | operator (`#` before the name: the `num*` one) | value |
//! |---|---|---|
//! | `eq`, `neq`, `gt`, `gteq`, `lt`, `lteq` | `strEq` ... `strLtEq` | the operand |
//! | `range` | `strRange` / `numRange` | interval `[a,b]`, `[a,b)`, `(a,b]`, `(a,b)` |
//! | `nrange` | `strNRange` / `numNRange` | interval: the range that is excluded |
//! | `mask` | `strMask`, wildcard `*` | the mask |
//! | `mask(W)` | `strMask`, wildcard `W` (`mask()`: no wildcard) | the mask |
//! | `regex` | `strRegEx` | the regular expression (write `\\` or `%5C` for a `\`) |
//! | `names(W).K` | keyword `K` with `nameWildcard` `W`: the name is a mask over tag names | as for `K` |
//!
//! In an interval `[` and `]` include an endpoint, `(` and `)` exclude it, and
//! the endpoints are split at the one unescaped `,` (write `\,` or `%2C` for a
//! comma inside one). Keywords are case-insensitive. [`format_search_uri`] uses the
//! successor's form wherever it reads back exactly, and the explicit form for the
//! rest (for every operator on a tag that carries several). [`SEARCH_URI_HELP`]
//! lists how each of the 17 operators is written.

use std::collections::HashMap;
use std::fmt;

use crate::query::pattern::{Mask, NameMask, Regex};
use crate::query::{NumRange, Operator, StrRange};
use crate::tag::{self, Number, Tag, TagError, TagName, TagValue};

/// The prefix of the spec's claim string (3.9).
pub const CLAIM_PREFIX: &str = "IoTDisco";

/// The scheme of the successor's URIs, with its colon.
pub const URI_SCHEME: &str = "iotdisco:";

/// The tag that names the registry in the successor's URIs.
pub const REGISTRY_TAG: &str = "R";

/// How each of the 17 search operators (and the successor's `strRegEx` and
/// `nameWildcard`) is written in a search URI, for `--help`.
pub const SEARCH_URI_HELP: &str = "\
Search URI: iotdisco:ITEM;ITEM;...  (all items must hold; quote it in the shell)
'#' before a tag name selects the numeric operators; names are case-insensitive.

  operator    written as              meaning
  strEq       SN=12345                SN is 12345
  strNEq      SN<>12345               SN is not 12345
  strGt       SN>m                    SN after m (code point order)
  strGtEq     SN>=m
  strLt       SN<m
  strLtEq     SN<=m
  strRange    SN>=a;SN<b              a <= SN < b (a lower and an upper bound,
                                      upper not below lower)
  strNRange   SN<a;SN>b               SN < a or SN > b (upper bound below lower)
  strMask     SN~*39487*              ~, the wildcard character, then the mask:
                                      values starting with 39487 (SN~**39487*:
                                      containing 39487)
  numEq       #V=1.2
  numNEq      #V<>1.2
  numGt       #V>1
  numGtEq     #V>=1
  numLt       #V<2
  numLtEq     #V<=2
  numRange    #V>=1;#V<2              1 <= V < 2
  numNRange   #V<1;#V>2               V < 1 or V > 2

A tag may carry one operator, or one lower and one upper bound, in that form.
Extension (iotdisco): any operator written explicitly, never merged:
  NAME:eq=V  NAME:neq=V  NAME:gt=V  NAME:gteq=V  NAME:lt=V  NAME:lteq=V
  NAME:range=[a,b)        inside; [ ] include an endpoint, ( ) exclude it
  NAME:nrange=[a,b]       outside the interval (strNRange / numNRange)
  NAME:mask=*39487*       mask with wildcard *; NAME:mask(W)=... wildcard W,
                          NAME:mask()=... no wildcard
  SN:regex=^3948[0-9]*7$  strRegEx: the whole value matches the regular
                          expression (write \\\\ or %5C for a \\)
  TEMP*:names(*).gt=20    nameWildcard: any tag whose name matches the mask
                          TEMP* (wildcard *) satisfies the keyword after it
  e.g. #V:range=[1,1]  #T:gt=5;#T:lt=9;#T:neq=7
Escapes: \\ makes the next character literal (\\; \\, \\\\); names and values are
then percent-decoded (%3B is ';', %25 is '%'). R=JID names the registry.
Example: iotdisco:MAN=www.ktc.se;SN~*39487*;#V>=1;#V<2";

/// Why a claim string or URI was rejected, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UriError {
    /// The 0-based index, in characters, of the input where the problem is.
    pub position: usize,
    /// What is wrong.
    pub kind: UriErrorKind,
}

/// What is wrong with a claim string or URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UriErrorKind {
    /// The input does not start with the expected prefix; the text says which,
    /// and names the other form when the input looks like it.
    MissingPrefix(&'static str),
    /// A tag of the spec's claim string has no `:` between name and value.
    MissingColon,
    /// An item of a URI has no operator after its name.
    MissingOperator,
    /// A value after `#` is not a finite number.
    BadNumber(String),
    /// A `\` ends the input, with nothing to escape.
    DanglingBackslash,
    /// A tag name is not valid (spec 5.2).
    BadName(TagError),
    /// A string value is not valid (too long, control characters).
    BadValue(TagError),
    /// A tag name occurs twice in a claim.
    DuplicateName(String),
    /// Two `;` with nothing between.
    EmptyTag,
    /// A claim URI with no tags.
    NoTags,
    /// A claim URI holds an operator other than `=`.
    NotEquality(String),
    /// `~` ends the input, with no wildcard after it.
    MissingWildcard,
    /// A mask on a numeric (`#`) tag; masks are for strings only.
    NumericMask,
    /// A tag carries a second operator that does not merge with its first
    /// (only one lower and one upper bound do); `first` is where the first is.
    Conflict {
        /// The tag name.
        name: String,
        /// The 0-based character position of the tag's first operator.
        first: usize,
    },
    /// An explicit `NAME:keyword=` item with an unknown keyword.
    UnknownOperator(String),
    /// An explicit range whose value is not an interval.
    BadInterval(&'static str),
    /// A mask that cannot be compiled.
    BadMask(String),
    /// A `regex` or `names(W).` item whose regular expression or name mask is
    /// refused.
    BadPattern(String),
    /// An empty `R=` (registry address).
    EmptyRegistry,
}

impl fmt::Display for UriErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UriErrorKind::MissingPrefix(m) => f.write_str(m),
            UriErrorKind::MissingColon => {
                f.write_str("tag has no ':' between its name and its value")
            }
            UriErrorKind::MissingOperator => f.write_str(
                "expected an operator (= <> < <= > >= ~ or :keyword=) after the tag name",
            ),
            UriErrorKind::BadNumber(v) => {
                let v: String = v.chars().take(40).collect();
                write!(f, "'{v}' is not a finite number (the tag is marked '#')")
            }
            UriErrorKind::DanglingBackslash => {
                f.write_str("'\\' at the end, with no character to escape")
            }
            UriErrorKind::BadName(e) => write!(f, "invalid tag name: {e}"),
            UriErrorKind::BadValue(e) => write!(f, "invalid value: {e}"),
            UriErrorKind::DuplicateName(n) => write!(f, "tag '{n}' occurs twice"),
            UriErrorKind::EmptyTag => f.write_str("empty tag between two ';'"),
            UriErrorKind::NoTags => f.write_str("the URI holds no tags"),
            UriErrorKind::NotEquality(op) => write!(
                f,
                "a claim holds only NAME=VALUE tags, found the operator '{op}'"
            ),
            UriErrorKind::MissingWildcard => {
                f.write_str("'~' must be followed by the wildcard character and the mask")
            }
            UriErrorKind::NumericMask => {
                f.write_str("masks apply to string tags only (remove the '#')")
            }
            UriErrorKind::Conflict { name, first } => write!(
                f,
                "tag '{name}' already has an operator at character {} that this one \
                 does not merge with (one operator per tag, or one lower and one upper \
                 bound; write NAME:keyword=VALUE to add more)",
                first + 1
            ),
            UriErrorKind::UnknownOperator(k) => {
                let k: String = k.chars().take(40).collect();
                write!(
                    f,
                    "unknown operator ':{k}=' (expected eq, neq, gt, gteq, lt, lteq, \
                     range, nrange, mask or mask(W))"
                )
            }
            UriErrorKind::BadInterval(why) => write!(f, "invalid interval: {why}"),
            UriErrorKind::BadMask(e) => write!(f, "invalid mask: {e}"),
            UriErrorKind::BadPattern(e) => write!(f, "{e}"),
            UriErrorKind::EmptyRegistry => f.write_str("the registry address (R=) is empty"),
        }
    }
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at character {}: {}", self.position + 1, self.kind)
    }
}

impl std::error::Error for UriError {}

fn err<T>(position: usize, kind: UriErrorKind) -> Result<T, UriError> {
    Err(UriError { position, kind })
}

/// A decoded claim: the tags to claim with and, from a URI's `R` tag, the
/// registry to send the claim to.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimUri {
    /// The tags, in the order given (without `R`).
    pub tags: Vec<Tag>,
    /// The registry's address, from the string tag `R`.
    pub registry: Option<String>,
}

/// A decoded search URI.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchUri {
    /// The operators, in the order of their (first) items.
    pub operators: Vec<Operator>,
    /// The registry's address, from a string `R=` item.
    pub registry: Option<String>,
}

// ---------------------------------------------------------------------------
// Shared scanning

/// One character of a scanned field and whether a `\` escaped it.
type Lexed = Vec<(char, bool)>;

fn plain(l: &[(char, bool)]) -> String {
    l.iter().map(|&(c, _)| c).collect()
}

/// Scans from `i` to the first unescaped character in `stops` (or the end),
/// resolving `\` escapes. Returns the field and the index of the stop.
fn scan(cs: &[char], mut i: usize, stops: &[char]) -> Result<(Lexed, usize), UriError> {
    let mut out = Vec::new();
    while let Some(&c) = cs.get(i) {
        if c == '\\' {
            match cs.get(i + 1) {
                Some(&n) => out.push((n, true)),
                None => return err(i, UriErrorKind::DanglingBackslash),
            }
            i += 2;
        } else if stops.contains(&c) {
            break;
        } else {
            out.push((c, false));
            i += 1;
        }
    }
    Ok((out, i))
}

fn skip_ws(cs: &[char], mut i: usize) -> usize {
    while cs
        .get(i)
        .is_some_and(|c| c.is_whitespace() || *c == '\u{feff}')
    {
        i += 1;
    }
    i
}

fn starts_with_ci(cs: &[char], i: usize, prefix: &str) -> bool {
    let n = prefix.chars().count();
    cs.len() >= i + n
        && cs[i..i + n]
            .iter()
            .zip(prefix.chars())
            .all(|(a, b)| a.eq_ignore_ascii_case(&b))
}

/// The shortest text that parses back to the same number (`1`, `1.2`, `1e20`).
fn number_text(v: Number) -> String {
    let mut b = ryu::Buffer::new();
    let text = b.format_finite(v.get());
    text.strip_suffix(".0").unwrap_or(text).to_string()
}

fn value_text(v: &TagValue) -> String {
    match v {
        TagValue::Str(s) => s.to_string(),
        TagValue::Num(n) => number_text(*n),
    }
}

fn hex(d: u8) -> Option<u8> {
    match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        b'A'..=b'F' => Some(d - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes like .NET's `Uri.UnescapeDataString`: `%XX` sequences become
/// bytes, a `%` without two hex digits stays, and decoded bytes that are not
/// UTF-8 stay in their `%XX` form.
pub fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    // Bytes, each marked with whether it came from an escape.
    let b = s.as_bytes();
    let mut bytes: Vec<(u8, bool)> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let digits = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            );
            if let (Some(h), Some(l)) = digits {
                bytes.push((h * 16 + l, true));
                i += 3;
                continue;
            }
        }
        bytes.push((b[i], false));
        i += 1;
    }
    let raw: Vec<u8> = bytes.iter().map(|&(x, _)| x).collect();
    let mut out = String::with_capacity(raw.len());
    let mut rest = &raw[..];
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(t) => {
                out.push_str(t);
                break;
            }
            Err(e) => {
                let good = e.valid_up_to();
                out.push_str(std::str::from_utf8(&rest[..good]).unwrap_or_default());
                let bad = e.error_len().unwrap_or(rest.len() - good);
                // Only escaped bytes can be invalid: the input was a str.
                for &x in &rest[good..good + bad] {
                    out.push_str(&format!("%{x:02X}"));
                }
                rest = &rest[good + bad..];
            }
        }
    }
    out
}

/// RFC 3986 unreserved characters (what `Uri.EscapeDataString` keeps).
fn unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

/// Percent-encodes (UTF-8) every character for which `keep` is false.
fn percent_encode(s: &str, keep: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if keep(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// Names: unreserved except `~` (the mask operator).
fn encode_name(name: &str) -> String {
    percent_encode(name, |c| unreserved(c) && c != '~')
}

// ---------------------------------------------------------------------------
// The spec's claim string

fn escape_claim(out: &mut String, s: &str) {
    for c in s.chars() {
        if c == ';' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Encodes tags as the claim string of spec 3.9 (Listing 14):
/// `IoTDisco;SN:394872348732948723;...;#V:1.2;KEY:4857402340298342`, tags in the
/// order given, `#` before numeric tags, `;` and `\` escaped with `\`.
pub fn encode_claim(tags: &[Tag]) -> String {
    let mut out = String::from(CLAIM_PREFIX);
    for t in tags {
        out.push(';');
        if matches!(t.value, TagValue::Num(_)) {
            out.push('#');
        }
        escape_claim(&mut out, t.name.as_str());
        out.push(':');
        escape_claim(&mut out, &value_text(&t.value));
    }
    out
}

/// Decodes the claim string of spec 3.9 into checked tags, in the order given.
/// See the module documentation for what is accepted.
pub fn decode_claim(input: &str) -> Result<Vec<Tag>, UriError> {
    let cs: Vec<char> = input.chars().collect();
    let mut i = skip_ws(&cs, 0);
    if !starts_with_ci(&cs, i, CLAIM_PREFIX) {
        return err(
            i,
            UriErrorKind::MissingPrefix("a claim string starts with 'IoTDisco;'"),
        );
    }
    i += CLAIM_PREFIX.len();
    match cs.get(i) {
        None => return Ok(Vec::new()),
        Some(';') => {}
        Some(':') => {
            return err(
                i,
                UriErrorKind::MissingPrefix(
                    "expected ';' after 'IoTDisco' (this is an 'iotdisco:' URI: decode it \
                     as one)",
                ),
            );
        }
        Some(_) => {
            return err(
                i,
                UriErrorKind::MissingPrefix("expected ';' after 'IoTDisco'"),
            );
        }
    }
    let mut tags = Vec::new();
    let mut seen: HashMap<TagName, usize> = HashMap::new();
    // Invariant: cs[i] == ';' at the top of the loop.
    while i < cs.len() {
        i = skip_ws(&cs, i + 1);
        let Some(&first) = cs.get(i) else { break };
        let tag_pos = i;
        if first == ';' {
            return err(i, UriErrorKind::EmptyTag);
        }
        let numeric = first == '#';
        if numeric {
            i += 1;
        }
        let name_pos = i;
        let (name, stop) = scan(&cs, i, &[':', ';'])?;
        if cs.get(stop) != Some(&':') {
            return err(tag_pos, UriErrorKind::MissingColon);
        }
        let value_pos = stop + 1;
        let (value, end) = scan(&cs, value_pos, &[';'])?;
        i = end;
        let tag = make_tag(&plain(&name), name_pos, &plain(&value), value_pos, numeric)?;
        if seen.insert(tag.name.clone(), name_pos).is_some() {
            return err(name_pos, UriErrorKind::DuplicateName(tag.name.to_string()));
        }
        tags.push(tag);
    }
    Ok(tags)
}

/// A tag name of a claim or search URI: up to the successor dialect's 64
/// characters (a URI is only an encoding; the registry applies the limit of the
/// namespace the request arrives in).
fn make_name(name: &str, pos: usize) -> Result<TagName, UriError> {
    TagName::with_limit(name, tag::MAX_NAME_CHARS_ANY).map_err(|e| UriError {
        position: pos,
        kind: UriErrorKind::BadName(e),
    })
}

fn make_number(value: &str, pos: usize, name: &str) -> Result<Number, UriError> {
    Number::parse(value, name).map_err(|_| UriError {
        position: pos,
        kind: UriErrorKind::BadNumber(value.to_string()),
    })
}

fn check_str(value: &str, pos: usize, name: &str) -> Result<(), UriError> {
    tag::check_string(value, name).map_err(|e| UriError {
        position: pos,
        kind: UriErrorKind::BadValue(e),
    })
}

fn make_tag(
    name: &str,
    name_pos: usize,
    value: &str,
    value_pos: usize,
    numeric: bool,
) -> Result<Tag, UriError> {
    let name = make_name(name, name_pos)?;
    let value = if numeric {
        TagValue::Num(make_number(value, value_pos, name.as_str())?)
    } else {
        check_str(value, value_pos, name.as_str())?;
        TagValue::Str(value.into())
    };
    Ok(Tag { name, value })
}

// ---------------------------------------------------------------------------
// The successor's URIs: lexing

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    NEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

impl Cmp {
    fn text(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::NEq => "<>",
            Cmp::Lt => "<",
            Cmp::LtEq => "<=",
            Cmp::Gt => ">",
            Cmp::GtEq => ">=",
        }
    }
}

#[derive(Debug)]
enum RawOp {
    /// The successor's comparison operators.
    Cmp(Cmp),
    /// `~` and its wildcard character.
    Mask(char),
    /// The extension `:keyword=`.
    Explicit(Lexed),
}

/// One `;`-separated item of a URI, escapes resolved, not yet percent-decoded.
#[derive(Debug)]
struct RawItem {
    pos: usize,
    numeric: bool,
    name: String,
    name_pos: usize,
    op: RawOp,
    op_pos: usize,
    value: Lexed,
    value_pos: usize,
}

impl RawItem {
    fn name(&self) -> Result<TagName, UriError> {
        make_name(&percent_decode(&self.name), self.name_pos)
    }

    fn value(&self) -> String {
        percent_decode(&plain(&self.value))
    }
}

/// Splits a URI into items. `Ok(None)` for an empty body.
fn lex_uri(input: &str) -> Result<Option<Vec<RawItem>>, UriError> {
    let all: Vec<char> = input.chars().collect();
    let mut end = all.len();
    while end > 0 && all[end - 1].is_whitespace() {
        end -= 1;
    }
    let cs = &all[..end];
    let start = skip_ws(cs, 0);
    if !starts_with_ci(cs, start, URI_SCHEME) {
        let hint = if starts_with_ci(cs, start, CLAIM_PREFIX)
            && matches!(cs.get(start + CLAIM_PREFIX.len()), None | Some(';'))
        {
            "expected 'iotdisco:' (this is the spec's 'IoTDisco;' claim string: decode \
             it as one)"
        } else {
            "expected the scheme 'iotdisco:'"
        };
        return err(start, UriErrorKind::MissingPrefix(hint));
    }
    let mut i = start + URI_SCHEME.len();
    if i == cs.len() {
        return Ok(None);
    }
    let mut items = Vec::new();
    loop {
        let pos = i;
        let Some(&first) = cs.get(i) else { break };
        if first == ';' {
            return err(i, UriErrorKind::EmptyTag);
        }
        let numeric = first == '#';
        if numeric {
            i += 1;
        }
        let name_pos = i;
        let (name, j) = scan(cs, i, &['=', '<', '>', '~', ':', ';'])?;
        let (op, k) = match cs.get(j) {
            Some('=') => (RawOp::Cmp(Cmp::Eq), j + 1),
            Some('<') => match cs.get(j + 1) {
                Some('=') => (RawOp::Cmp(Cmp::LtEq), j + 2),
                Some('>') => (RawOp::Cmp(Cmp::NEq), j + 2),
                _ => (RawOp::Cmp(Cmp::Lt), j + 1),
            },
            Some('>') => match cs.get(j + 1) {
                Some('=') => (RawOp::Cmp(Cmp::GtEq), j + 2),
                _ => (RawOp::Cmp(Cmp::Gt), j + 1),
            },
            Some('~') => match cs.get(j + 1) {
                Some(&w) => (RawOp::Mask(w), j + 2),
                None => return err(j, UriErrorKind::MissingWildcard),
            },
            Some(':') => {
                let (kw, e) = scan(cs, j + 1, &['=', ';'])?;
                if cs.get(e) != Some(&'=') {
                    return err(j, UriErrorKind::MissingOperator);
                }
                (RawOp::Explicit(kw), e + 1)
            }
            _ => return err(pos, UriErrorKind::MissingOperator),
        };
        let (value, e) = scan(cs, k, &[';'])?;
        items.push(RawItem {
            pos,
            numeric,
            name: plain(&name),
            name_pos,
            op,
            op_pos: j,
            value,
            value_pos: k,
        });
        if e >= cs.len() {
            break;
        }
        // cs[e] == ';'; one trailing ';' is accepted.
        i = e + 1;
    }
    Ok(Some(items))
}

// ---------------------------------------------------------------------------
// Claim URIs

/// Encodes tags as the successor's claim URI,
/// `iotdisco:SN=...;MAN=...;#V=1.2;KEY=...;R=registry`, the way its clients do
/// (see the module documentation). With `registry`, `;R=<registry>` ends the URI
/// and a string tag `R` among `tags` is left out (the registry takes its place);
/// without, a string tag `R` is written like any tag and so names the registry.
/// `encode_claim_uri(&[], None)` is `iotdisco:`, which no decoder accepts.
pub fn encode_claim_uri(tags: &[Tag], registry: Option<&str>) -> String {
    let mut parts: Vec<String> = Vec::with_capacity(tags.len() + 1);
    for t in tags {
        let is_num = matches!(t.value, TagValue::Num(_));
        if registry.is_some() && !is_num && t.name.as_str() == REGISTRY_TAG {
            continue;
        }
        parts.push(format!(
            "{}{}={}",
            if is_num { "#" } else { "" },
            encode_name(t.name.as_str()),
            percent_encode(&value_text(&t.value), unreserved)
        ));
    }
    if let Some(r) = registry {
        parts.push(format!("{REGISTRY_TAG}={}", percent_encode(r, unreserved)));
    }
    format!("{URI_SCHEME}{}", parts.join(";"))
}

/// Decodes the successor's claim URI: `NAME=VALUE` items only, the string `R`
/// giving [`ClaimUri::registry`]. Names may not repeat.
pub fn decode_claim_uri(input: &str) -> Result<ClaimUri, UriError> {
    let Some(items) = lex_uri(input)? else {
        return err(input.chars().count(), UriErrorKind::NoTags);
    };
    let mut tags = Vec::new();
    let mut registry = None;
    let mut seen: HashMap<TagName, usize> = HashMap::new();
    for item in &items {
        match &item.op {
            RawOp::Cmp(Cmp::Eq) => {}
            RawOp::Cmp(c) => {
                return err(item.op_pos, UriErrorKind::NotEquality(c.text().into()));
            }
            RawOp::Mask(w) => {
                return err(item.op_pos, UriErrorKind::NotEquality(format!("~{w}")));
            }
            RawOp::Explicit(k) => {
                return err(
                    item.op_pos,
                    UriErrorKind::NotEquality(format!(":{}=", plain(k))),
                );
            }
        }
        let tag = make_tag(
            &percent_decode(&item.name),
            item.name_pos,
            &item.value(),
            item.value_pos,
            item.numeric,
        )?;
        if seen.insert(tag.name.clone(), item.name_pos).is_some() {
            return err(
                item.name_pos,
                UriErrorKind::DuplicateName(tag.name.to_string()),
            );
        }
        match tag.value {
            TagValue::Str(r) if tag.name.as_str() == REGISTRY_TAG => {
                if r.is_empty() {
                    return err(item.value_pos, UriErrorKind::EmptyRegistry);
                }
                registry = Some(r.to_string());
            }
            _ => tags.push(tag),
        }
    }
    if tags.is_empty() && registry.is_none() {
        return err(0, UriErrorKind::NoTags);
    }
    Ok(ClaimUri { tags, registry })
}

/// Decodes either claim form: an `iotdisco:` URI ([`decode_claim_uri`]) or the
/// spec's `IoTDisco;` string ([`decode_claim`], which names no registry).
pub fn decode_any_claim(input: &str) -> Result<ClaimUri, UriError> {
    let cs: Vec<char> = input.chars().collect();
    if starts_with_ci(&cs, skip_ws(&cs, 0), URI_SCHEME) {
        decode_claim_uri(input)
    } else {
        Ok(ClaimUri {
            tags: decode_claim(input)?,
            registry: None,
        })
    }
}

// ---------------------------------------------------------------------------
// Search URIs

/// A successor-form operator still waiting for a possible second bound.
#[derive(Clone, Copy)]
struct Slot {
    /// Index into the output.
    index: usize,
    /// Position of the item, for errors.
    pos: usize,
    /// The single bound, when the tag has exactly one operator and it is `<`,
    /// `<=`, `>` or `>=`.
    bound: Option<Cmp>,
    numeric: bool,
}

/// Parses a search URI into operators (see the module documentation and
/// [`SEARCH_URI_HELP`]). A string `R=` item is the registry's address and is
/// not returned as an operator; use [`parse_search_uri_with_registry`] to get it.
/// `iotdisco:` alone is a search without operators.
pub fn parse_search_uri(input: &str) -> Result<Vec<Operator>, UriError> {
    Ok(parse_search_uri_with_registry(input)?.operators)
}

/// Parses a search URI, keeping the registry named by a string `R=` item.
pub fn parse_search_uri_with_registry(input: &str) -> Result<SearchUri, UriError> {
    let Some(items) = lex_uri(input)? else {
        return Ok(SearchUri {
            operators: Vec::new(),
            registry: None,
        });
    };
    let mut ops: Vec<Operator> = Vec::with_capacity(items.len());
    let mut slots: HashMap<TagName, Slot> = HashMap::new();
    let mut registry = None;
    for item in &items {
        let name = item.name()?;
        match &item.op {
            RawOp::Explicit(kw) => ops.push(explicit(item, name, kw)?),
            RawOp::Mask(w) => {
                if item.numeric {
                    return err(item.op_pos, UriErrorKind::NumericMask);
                }
                check_slot(&slots, &name, item)?;
                let value = item.value();
                check_str(&value, item.value_pos, name.as_str())?;
                let mask = make_mask(&value, Some(&w.to_string()), item.value_pos)?;
                slots.insert(
                    name.clone(),
                    Slot {
                        index: ops.len(),
                        pos: item.pos,
                        bound: None,
                        numeric: false,
                    },
                );
                ops.push(Operator::StrMask(name, mask));
            }
            RawOp::Cmp(cmp) => {
                let cmp = *cmp;
                let value = item.value();
                let operand = if item.numeric {
                    Operand::Num(make_number(&value, item.value_pos, name.as_str())?)
                } else {
                    check_str(&value, item.value_pos, name.as_str())?;
                    Operand::Str(value.into())
                };
                let is_bound = !matches!(cmp, Cmp::Eq | Cmp::NEq);
                if let Some(slot) = slots.get(&name).copied() {
                    let merged = match slot.bound {
                        Some(first) if is_bound && slot.numeric == item.numeric => {
                            merge(&ops[slot.index], first, &operand, cmp)
                        }
                        _ => None,
                    };
                    let Some(op) = merged else {
                        return err(
                            item.pos,
                            UriErrorKind::Conflict {
                                name: name.to_string(),
                                first: slot.pos,
                            },
                        );
                    };
                    ops[slot.index] = op;
                    slots.insert(
                        name,
                        Slot {
                            bound: None,
                            ..slot
                        },
                    );
                    continue;
                }
                if cmp == Cmp::Eq && name.as_str() == REGISTRY_TAG {
                    if let Operand::Str(r) = &operand {
                        if r.is_empty() {
                            return err(item.value_pos, UriErrorKind::EmptyRegistry);
                        }
                        registry = Some(r.to_string());
                        slots.insert(
                            name,
                            Slot {
                                index: usize::MAX,
                                pos: item.pos,
                                bound: None,
                                numeric: false,
                            },
                        );
                        continue;
                    }
                }
                slots.insert(
                    name.clone(),
                    Slot {
                        index: ops.len(),
                        pos: item.pos,
                        bound: is_bound.then_some(cmp),
                        numeric: item.numeric,
                    },
                );
                ops.push(single(cmp, name, operand));
            }
        }
    }
    Ok(SearchUri {
        operators: ops,
        registry,
    })
}

fn check_slot(
    slots: &HashMap<TagName, Slot>,
    name: &TagName,
    item: &RawItem,
) -> Result<(), UriError> {
    match slots.get(name) {
        Some(slot) => err(
            item.pos,
            UriErrorKind::Conflict {
                name: name.to_string(),
                first: slot.pos,
            },
        ),
        None => Ok(()),
    }
}

enum Operand {
    Str(Box<str>),
    Num(Number),
}

fn single(cmp: Cmp, name: TagName, v: Operand) -> Operator {
    match (cmp, v) {
        (Cmp::Eq, Operand::Str(s)) => Operator::StrEq(name, s),
        (Cmp::NEq, Operand::Str(s)) => Operator::StrNEq(name, s),
        (Cmp::Lt, Operand::Str(s)) => Operator::StrLt(name, s),
        (Cmp::LtEq, Operand::Str(s)) => Operator::StrLtEq(name, s),
        (Cmp::Gt, Operand::Str(s)) => Operator::StrGt(name, s),
        (Cmp::GtEq, Operand::Str(s)) => Operator::StrGtEq(name, s),
        (Cmp::Eq, Operand::Num(n)) => Operator::NumEq(name, n),
        (Cmp::NEq, Operand::Num(n)) => Operator::NumNEq(name, n),
        (Cmp::Lt, Operand::Num(n)) => Operator::NumLt(name, n),
        (Cmp::LtEq, Operand::Num(n)) => Operator::NumLtEq(name, n),
        (Cmp::Gt, Operand::Num(n)) => Operator::NumGt(name, n),
        (Cmp::GtEq, Operand::Num(n)) => Operator::NumGtEq(name, n),
    }
}

fn is_lower(c: Cmp) -> bool {
    matches!(c, Cmp::Gt | Cmp::GtEq)
}

/// The successor's rule for a lower bound `L` and an upper bound `U` on one tag:
/// `U < L` means outside (`NRange` from `U` to `L`, an endpoint in the excluded
/// range exactly when its bound did not admit it), otherwise inside (`Range`
/// from `L` to `U`). `None` when both bounds point the same way.
fn merge(first_op: &Operator, first: Cmp, second: &Operand, cmp: Cmp) -> Option<Operator> {
    if is_lower(first) == is_lower(cmp) {
        return None;
    }
    let name = first_op.name().clone();
    let first_val = match first_op {
        Operator::StrLt(_, s)
        | Operator::StrLtEq(_, s)
        | Operator::StrGt(_, s)
        | Operator::StrGtEq(_, s) => Operand::Str(s.clone()),
        Operator::NumLt(_, n)
        | Operator::NumLtEq(_, n)
        | Operator::NumGt(_, n)
        | Operator::NumGtEq(_, n) => Operand::Num(*n),
        _ => return None,
    };
    let second_val = match second {
        Operand::Str(s) => Operand::Str(s.clone()),
        Operand::Num(n) => Operand::Num(*n),
    };
    let ((lo, lo_cmp), (hi, hi_cmp)) = if is_lower(first) {
        ((first_val, first), (second_val, cmp))
    } else {
        ((second_val, cmp), (first_val, first))
    };
    let lo_incl = lo_cmp == Cmp::GtEq;
    let hi_incl = hi_cmp == Cmp::LtEq;
    Some(match (lo, hi) {
        (Operand::Str(l), Operand::Str(h)) => {
            if h < l {
                Operator::StrNRange(
                    name,
                    StrRange {
                        min: h,
                        min_included: !hi_incl,
                        max: l,
                        max_included: !lo_incl,
                    },
                )
            } else {
                Operator::StrRange(
                    name,
                    StrRange {
                        min: l,
                        min_included: lo_incl,
                        max: h,
                        max_included: hi_incl,
                    },
                )
            }
        }
        (Operand::Num(l), Operand::Num(h)) => {
            if h < l {
                Operator::NumNRange(
                    name,
                    NumRange {
                        min: h,
                        min_included: !hi_incl,
                        max: l,
                        max_included: !lo_incl,
                    },
                )
            } else {
                Operator::NumRange(
                    name,
                    NumRange {
                        min: l,
                        min_included: lo_incl,
                        max: h,
                        max_included: hi_incl,
                    },
                )
            }
        }
        _ => return None,
    })
}

fn make_mask(value: &str, wildcard: Option<&str>, pos: usize) -> Result<Mask, UriError> {
    Mask::new(value, wildcard).map_err(|e| UriError {
        position: pos,
        kind: UriErrorKind::BadMask(e.to_string()),
    })
}

/// An explicit `NAME:keyword=VALUE` item.
fn explicit(item: &RawItem, name: TagName, kw: &[(char, bool)]) -> Result<Operator, UriError> {
    let word = plain(kw);
    let lower = word.to_ascii_lowercase();
    if lower.starts_with("names(") {
        // `names(W).K`: the name is a mask over tag names, wildcard `W`.
        let close =
            (6..kw.len()).find(|&i| kw[i] == (')', false) && kw.get(i + 1) == Some(&('.', false)));
        let Some(close) = close else {
            return err(item.op_pos, UriErrorKind::UnknownOperator(word));
        };
        let wildcard = percent_decode(&plain(&kw[6..close]));
        let mask = NameMask::new(&percent_decode(&item.name), &wildcard).map_err(|e| UriError {
            position: item.name_pos,
            kind: UriErrorKind::BadPattern(e.to_string()),
        })?;
        let inner = explicit(item, name, &kw[close + 2..])?;
        if matches!(inner, Operator::AnyName(..)) {
            return err(item.op_pos, UriErrorKind::UnknownOperator(word));
        }
        return Ok(Operator::any_name(mask, inner));
    }
    if lower == "regex" {
        if item.numeric {
            return err(item.op_pos, UriErrorKind::NumericMask);
        }
        let value = item.value();
        let regex = Regex::new(&value).map_err(|e| UriError {
            position: item.value_pos,
            kind: UriErrorKind::BadPattern(e.to_string()),
        })?;
        return Ok(Operator::StrRegEx(name, regex));
    }
    let cmp = match lower.as_str() {
        "eq" => Some(Cmp::Eq),
        "neq" => Some(Cmp::NEq),
        "gt" => Some(Cmp::Gt),
        "gteq" => Some(Cmp::GtEq),
        "lt" => Some(Cmp::Lt),
        "lteq" => Some(Cmp::LtEq),
        _ => None,
    };
    if let Some(cmp) = cmp {
        let value = item.value();
        let operand = if item.numeric {
            Operand::Num(make_number(&value, item.value_pos, name.as_str())?)
        } else {
            check_str(&value, item.value_pos, name.as_str())?;
            Operand::Str(value.into())
        };
        return Ok(single(cmp, name, operand));
    }
    if lower == "range" || lower == "nrange" {
        let outside = lower == "nrange";
        let (min, min_included, max, max_included) = interval(item)?;
        if item.numeric {
            let min = make_number(&min, item.value_pos, name.as_str())?;
            let max = make_number(&max, item.value_pos, name.as_str())?;
            let r = NumRange {
                min,
                min_included,
                max,
                max_included,
            };
            return Ok(if outside {
                Operator::NumNRange(name, r)
            } else {
                Operator::NumRange(name, r)
            });
        }
        check_str(&min, item.value_pos, name.as_str())?;
        check_str(&max, item.value_pos, name.as_str())?;
        let r = StrRange {
            min: min.into(),
            min_included,
            max: max.into(),
            max_included,
        };
        return Ok(if outside {
            Operator::StrNRange(name, r)
        } else {
            Operator::StrRange(name, r)
        });
    }
    if lower.starts_with("mask") {
        if item.numeric {
            return err(item.op_pos, UriErrorKind::NumericMask);
        }
        let rest = &kw[4..];
        let wildcard = match rest {
            [] => Some("*".to_string()),
            [('(', false), inner @ .., (')', false)] => Some(percent_decode(&plain(inner))),
            _ => return err(item.op_pos, UriErrorKind::UnknownOperator(word)),
        };
        let value = item.value();
        check_str(&value, item.value_pos, name.as_str())?;
        let mask = make_mask(&value, wildcard.as_deref(), item.value_pos)?;
        return Ok(Operator::StrMask(name, mask));
    }
    err(item.op_pos, UriErrorKind::UnknownOperator(word))
}

/// Reads `[a,b)` and friends: (min, min included, max, max included), endpoints
/// percent-decoded.
fn interval(item: &RawItem) -> Result<(String, bool, String, bool), UriError> {
    let v = &item.value;
    let bad = |why| err(item.value_pos, UriErrorKind::BadInterval(why));
    let (open, inner, close) = match v.as_slice() {
        [(o, false), inner @ .., (c, false)] => (*o, inner, *c),
        _ => return bad("expected [min,max], with [ or ( and ] or )"),
    };
    let min_included = match open {
        '[' => true,
        '(' => false,
        _ => return bad("an interval starts with '[' or '('"),
    };
    let max_included = match close {
        ']' => true,
        ')' => false,
        _ => return bad("an interval ends with ']' or ')'"),
    };
    let commas: Vec<usize> = inner
        .iter()
        .enumerate()
        .filter(|(_, x)| **x == (',', false))
        .map(|(i, _)| i)
        .collect();
    let &[comma] = commas.as_slice() else {
        return bad("expected exactly one ',' between min and max (escape others as \\, or %2C)");
    };
    let min = percent_decode(&plain(&inner[..comma]));
    let max = percent_decode(&plain(&inner[comma + 1..]));
    Ok((min, min_included, max, max_included))
}

// ---------------------------------------------------------------------------
// Formatting search URIs

/// Characters left readable in search values besides the unreserved ones.
fn search_keep(c: char) -> bool {
    unreserved(c) || matches!(c, '*' | '@' | ':' | '/' | '+' | '!' | '$')
}

fn enc_value(s: &str) -> String {
    percent_encode(s, search_keep)
}

fn prefix(numeric: bool, name: &TagName) -> String {
    format!(
        "{}{}",
        if numeric { "#" } else { "" },
        encode_name(name.as_str())
    )
}

/// The successor's form of an operator, when it reads back as exactly this
/// operator on a tag that carries no other.
fn successor_form(op: &Operator) -> Option<String> {
    let n = |numeric| prefix(numeric, op.name());
    let num = number_text;
    Some(match op {
        Operator::StrEq(name, _) if name.as_str() == REGISTRY_TAG => return None,
        Operator::StrEq(_, v) => format!("{}={}", n(false), enc_value(v)),
        Operator::StrNEq(_, v) => format!("{}<>{}", n(false), enc_value(v)),
        Operator::StrGt(_, v) => format!("{}>{}", n(false), enc_value(v)),
        Operator::StrGtEq(_, v) => format!("{}>={}", n(false), enc_value(v)),
        Operator::StrLt(_, v) => format!("{}<{}", n(false), enc_value(v)),
        Operator::StrLtEq(_, v) => format!("{}<={}", n(false), enc_value(v)),
        Operator::NumEq(_, v) => format!("{}={}", n(true), num(*v)),
        Operator::NumNEq(_, v) => format!("{}<>{}", n(true), num(*v)),
        Operator::NumGt(_, v) => format!("{}>{}", n(true), num(*v)),
        Operator::NumGtEq(_, v) => format!("{}>={}", n(true), num(*v)),
        Operator::NumLt(_, v) => format!("{}<{}", n(true), num(*v)),
        Operator::NumLtEq(_, v) => format!("{}<={}", n(true), num(*v)),
        Operator::StrRange(_, r) if r.min <= r.max => format!(
            "{p}{}{};{p}{}{}",
            if r.min_included { ">=" } else { ">" },
            enc_value(&r.min),
            if r.max_included { "<=" } else { "<" },
            enc_value(&r.max),
            p = n(false)
        ),
        Operator::StrNRange(_, r) if r.min < r.max => format!(
            "{p}{}{};{p}{}{}",
            if r.min_included { "<" } else { "<=" },
            enc_value(&r.min),
            if r.max_included { ">" } else { ">=" },
            enc_value(&r.max),
            p = n(false)
        ),
        Operator::NumRange(_, r) if r.min <= r.max => format!(
            "{p}{}{};{p}{}{}",
            if r.min_included { ">=" } else { ">" },
            num(r.min),
            if r.max_included { "<=" } else { "<" },
            num(r.max),
            p = n(true)
        ),
        Operator::NumNRange(_, r) if r.min < r.max => format!(
            "{p}{}{};{p}{}{}",
            if r.min_included { "<" } else { "<=" },
            num(r.min),
            if r.max_included { ">" } else { ">=" },
            num(r.max),
            p = n(true)
        ),
        Operator::StrMask(_, m) => {
            let w = m.wildcard()?;
            let mut chars = w.chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                return None;
            };
            if c.is_control() {
                return None;
            }
            let keep_w = c != '%' && c != '\\' && c != ';';
            let value = percent_encode(m.source(), |x| search_keep(x) || (keep_w && x == c));
            format!("{}~{c}{value}", n(false))
        }
        _ => return None,
    })
}

fn interval_text(min: &str, min_incl: bool, max: &str, max_incl: bool) -> String {
    format!(
        "{}{},{}{}",
        if min_incl { '[' } else { '(' },
        min,
        max,
        if max_incl { ']' } else { ')' }
    )
}

/// `MASK:names(W).KEYWORD=VALUE`: the inner operator's explicit form with the
/// name mask in place of its name.
fn any_name_form(mask: &NameMask, inner: &Operator) -> String {
    let body = explicit_form(inner);
    // The inner form starts with `[#]NAME:`; put the mask and the prefix in
    // its place.
    let numeric = body.starts_with('#');
    let after = body.find(':').map_or("", |i| &body[i + 1..]);
    format!(
        "{}{}:names({}).{after}",
        if numeric { "#" } else { "" },
        percent_encode(mask.source(), |c| {
            (unreserved(c) && c != '~') || matches!(c, '*' | '@' | '/' | '+' | '!' | '$')
        }),
        percent_encode(mask.wildcard(), |c| {
            (unreserved(c) && c != '~' && c != '.')
                || matches!(c, '*' | '@' | '/' | '+' | '!' | '$')
        })
    )
}

/// The extension's explicit form of any operator. `nameWildcard` is written as
/// the keyword prefix `names(W).` after the name mask (percent-encoded as a
/// name is); a name mask that cannot be read back as a name (one holding `:`
/// or `#`, which no stored tag name holds) is written all the same, as text the
/// parser refuses rather than reads as something else.
fn explicit_form(op: &Operator) -> String {
    let name = op.name();
    let s = |kw: &str, v: &str| format!("{}:{kw}={}", prefix(false, name), enc_value(v));
    let f = |kw: &str, v: Number| format!("{}:{kw}={}", prefix(true, name), number_text(v));
    match op {
        Operator::StrEq(_, v) => s("eq", v),
        Operator::StrNEq(_, v) => s("neq", v),
        Operator::StrGt(_, v) => s("gt", v),
        Operator::StrGtEq(_, v) => s("gteq", v),
        Operator::StrLt(_, v) => s("lt", v),
        Operator::StrLtEq(_, v) => s("lteq", v),
        Operator::NumEq(_, v) => f("eq", *v),
        Operator::NumNEq(_, v) => f("neq", *v),
        Operator::NumGt(_, v) => f("gt", *v),
        Operator::NumGtEq(_, v) => f("gteq", *v),
        Operator::NumLt(_, v) => f("lt", *v),
        Operator::NumLtEq(_, v) => f("lteq", *v),
        Operator::StrRange(_, r) | Operator::StrNRange(_, r) => format!(
            "{}:{}={}",
            prefix(false, name),
            if matches!(op, Operator::StrRange(..)) {
                "range"
            } else {
                "nrange"
            },
            interval_text(
                &enc_value(&r.min),
                r.min_included,
                &enc_value(&r.max),
                r.max_included
            )
        ),
        Operator::NumRange(_, r) | Operator::NumNRange(_, r) => format!(
            "{}:{}={}",
            prefix(true, name),
            if matches!(op, Operator::NumRange(..)) {
                "range"
            } else {
                "nrange"
            },
            interval_text(
                &number_text(r.min),
                r.min_included,
                &number_text(r.max),
                r.max_included
            )
        ),
        Operator::StrMask(_, m) => {
            let kw = match m.wildcard() {
                Some("*") => "mask".to_string(),
                Some(w) => format!("mask({})", percent_encode(w, |c| unreserved(c) && c != '~')),
                None => "mask()".to_string(),
            };
            format!("{}:{kw}={}", prefix(false, name), enc_value(m.source()))
        }
        Operator::StrRegEx(_, r) => s("regex", r.source()),
        Operator::AnyName(mask, inner) => any_name_form(mask, inner),
    }
}

/// Formats operators as a search URI that [`parse_search_uri`] reads back to the
/// same list: the successor's form for an operator alone on its tag where that
/// form is exact, the extension's explicit form otherwise (always for
/// `strRegEx`, `NAME:regex=...`, and `nameWildcard`, `MASK:names(W).KEYWORD=...`).
pub fn format_search_uri(operators: &[Operator]) -> String {
    let mut count: HashMap<&TagName, usize> = HashMap::new();
    for op in operators {
        *count.entry(op.name()).or_default() += 1;
    }
    let parts: Vec<String> = operators
        .iter()
        .map(|op| {
            let alone = count.get(op.name()) == Some(&1);
            alone
                .then(|| successor_form(op))
                .flatten()
                .unwrap_or_else(|| explicit_form(op))
        })
        .collect();
    format!("{URI_SCHEME}{}", parts.join(";"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(name: &str, v: &str) -> Tag {
        Tag::str(name, v).unwrap()
    }

    fn n(name: &str, v: f64) -> Tag {
        Tag::num(name, v).unwrap()
    }

    fn name(x: &str) -> TagName {
        TagName::new(x).unwrap()
    }

    fn num(x: f64) -> Number {
        Number::new(x, "X").unwrap()
    }

    #[test]
    fn claim_escapes_semicolon_and_backslash() {
        let tags = vec![s("A", "x;y\\z:w"), n("B", 1.0)];
        let text = encode_claim(&tags);
        assert_eq!(text, "IoTDisco;A:x\\;y\\\\z:w;#B:1");
        assert_eq!(decode_claim(&text).unwrap(), tags);
    }

    #[test]
    fn claim_liberal_input() {
        let want = vec![s("SN", "1"), n("V", 1.2)];
        assert_eq!(decode_claim("iotdisco;sn:1;#v:1.2;").unwrap(), want);
        assert_eq!(decode_claim("  IoTDisco;SN:1;\r\n#V:1.2").unwrap(), want);
        assert_eq!(decode_claim("IoTDisco").unwrap(), vec![]);
    }

    #[test]
    fn claim_errors_have_positions() {
        let e = decode_claim("IoTDisco;SN:1;#V:x").unwrap_err();
        assert_eq!(e.position, 17);
        assert!(matches!(e.kind, UriErrorKind::BadNumber(_)));
        let e = decode_claim("IoTDisco;SN:1;V").unwrap_err();
        assert_eq!((e.position, e.kind), (14, UriErrorKind::MissingColon));
        let e = decode_claim("IoTDisco;SN:1\\").unwrap_err();
        assert_eq!((e.position, e.kind), (13, UriErrorKind::DanglingBackslash));
        assert!(
            decode_claim("iotdisco:SN=1")
                .unwrap_err()
                .to_string()
                .contains("iotdisco:")
        );
    }

    #[test]
    fn percent_decoding_is_lenient() {
        assert_eq!(percent_decode("a%3Bb"), "a;b");
        assert_eq!(percent_decode("%C3%A9"), "é");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3x"), "%C3x");
        assert_eq!(percent_decode("%FF%C3%A9"), "%FFé");
    }

    #[test]
    fn percent_encoding_keeps_unreserved_only() {
        assert_eq!(percent_encode("a b;é~", unreserved), "a%20b%3B%C3%A9~");
        assert_eq!(encode_name("A~B"), "A%7EB");
    }

    #[test]
    fn claim_uri_registry_handling() {
        let tags = vec![s("SN", "1"), s("R", "other.example")];
        assert_eq!(
            encode_claim_uri(&tags, Some("reg.example")),
            "iotdisco:SN=1;R=reg.example"
        );
        let c = decode_claim_uri(&encode_claim_uri(&tags, None)).unwrap();
        assert_eq!(c.tags, vec![s("SN", "1")]);
        assert_eq!(c.registry.as_deref(), Some("other.example"));
        let c = decode_claim_uri("iotdisco:#R=2").unwrap();
        assert_eq!(c.tags, vec![n("R", 2.0)]);
        assert_eq!(c.registry, None);
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(number_text(num(1.0)), "1");
        assert_eq!(number_text(num(1.2)), "1.2");
        assert_eq!(number_text(num(-0.0)), "0");
        assert_eq!(number_text(num(1e20)), "1e20");
    }

    #[test]
    fn mask_takes_next_char_as_wildcard() {
        let ops = parse_search_uri("iotdisco:SN~*9873*").unwrap();
        assert_eq!(
            ops,
            vec![Operator::StrMask(
                name("SN"),
                Mask::new("9873*", Some("*")).unwrap()
            )]
        );
    }

    #[test]
    fn merge_equal_bounds_is_inside() {
        // As the successor: not below means inside, so >=2;<=2 is [2,2].
        let ops = parse_search_uri("iotdisco:#V>=2;#V<=2").unwrap();
        assert_eq!(
            ops,
            vec![Operator::NumRange(
                name("V"),
                NumRange {
                    min: num(2.0),
                    min_included: true,
                    max: num(2.0),
                    max_included: true
                }
            )]
        );
    }

    #[test]
    fn explicit_interval_parsing() {
        let ops = parse_search_uri("iotdisco:SN:nrange=(a\\,b,c%2C]").unwrap();
        assert_eq!(
            ops,
            vec![Operator::StrNRange(
                name("SN"),
                StrRange {
                    min: "a,b".into(),
                    min_included: false,
                    max: "c,".into(),
                    max_included: true
                }
            )]
        );
        for bad in ["[a,b", "a,b]", "[a]", "[a,b,c]", "{a,b]", "[a,b}"] {
            let e = parse_search_uri(&format!("iotdisco:SN:range={bad}")).unwrap_err();
            assert!(matches!(e.kind, UriErrorKind::BadInterval(_)), "{bad}");
            assert_eq!(e.position, 18);
        }
    }

    #[test]
    fn explicit_mask_wildcards() {
        let ops =
            parse_search_uri("iotdisco:A:mask=a*;B:mask()=a*;C:MASK(%25%25)=a%25%25").unwrap();
        assert_eq!(
            ops,
            vec![
                Operator::StrMask(name("A"), Mask::new("a*", Some("*")).unwrap()),
                Operator::StrMask(name("B"), Mask::new("a*", None).unwrap()),
                Operator::StrMask(name("C"), Mask::new("a%%", Some("%%")).unwrap()),
            ]
        );
        let e = parse_search_uri("iotdisco:A:maskx=a").unwrap_err();
        assert!(matches!(e.kind, UriErrorKind::UnknownOperator(_)));
    }

    #[test]
    fn formatter_uses_explicit_form_for_shared_tags() {
        let ops = vec![
            Operator::NumGt(name("T"), num(5.0)),
            Operator::NumLt(name("T"), num(9.0)),
        ];
        let text = format_search_uri(&ops);
        assert_eq!(text, "iotdisco:#T:gt=5;#T:lt=9");
        assert_eq!(parse_search_uri(&text).unwrap(), ops);
    }

    #[test]
    fn regex_and_name_wildcard_items() {
        let ops = parse_search_uri(
            "iotdisco:SN:regex=^3948[0-9]*7$;#temp*:names(*).gt=20;M?:names(%3F).regex=a\\\\d",
        )
        .unwrap();
        let any = |m: &str, w: &str, op| Operator::any_name(NameMask::new(m, w).unwrap(), op);
        assert_eq!(
            ops,
            vec![
                Operator::StrRegEx(name("SN"), Regex::new("^3948[0-9]*7$").unwrap()),
                any("temp*", "*", Operator::NumGt(name("X"), num(20.0))),
                any(
                    "M?",
                    "?",
                    Operator::StrRegEx(name("X"), Regex::new("a\\d").unwrap())
                ),
            ]
        );
        let text = format_search_uri(&ops);
        assert_eq!(
            text,
            "iotdisco:SN:regex=%5E3948%5B0-9%5D*7$;#temp*:names(*).gt=20;M%3F:names(%3F).regex=a%5Cd"
        );
        assert_eq!(parse_search_uri(&text).unwrap(), ops);
        let e = parse_search_uri("iotdisco:SN:regex=a)").unwrap_err();
        assert!(matches!(e.kind, UriErrorKind::BadPattern(_)), "{e}");
        let e = parse_search_uri("iotdisco:#SN:regex=a").unwrap_err();
        assert!(matches!(e.kind, UriErrorKind::NumericMask), "{e}");
        let e = parse_search_uri("iotdisco:T*:names(*)gt=1").unwrap_err();
        assert!(matches!(e.kind, UriErrorKind::UnknownOperator(_)), "{e}");
        let e = parse_search_uri("iotdisco:T*:names().gt=1").unwrap_err();
        assert!(matches!(e.kind, UriErrorKind::BadPattern(_)), "{e}");
    }

    #[test]
    fn formatting_name_masks_no_name_can_hold_does_not_panic() {
        let op = Operator::any_name(
            NameMask::new("urn:x:*", "*").unwrap(),
            Operator::NumGt(name("X"), num(1.0)),
        );
        let text = format_search_uri(std::slice::from_ref(&op));
        assert_eq!(text, "iotdisco:#urn%3Ax%3A*:names(*).gt=1");
        // It reads back as an error (a name never holds ':'), not as something else.
        assert!(parse_search_uri(&text).is_err());
    }
}
