//! Meta tags (spec 5.2): checked names and values.
//!
//! A [`TagName`] is upper-cased (tag names are case-insensitive), 1 to 32 characters
//! long ([`TagName::new`], XEP-0347 5.2) or up to 64 ([`TagName::with_limit`], the
//! successor spec's limit, used by the wire layer for its namespaces) and free of
//! `:`, `#`, white space and control characters. A [`TagValue`] is
//! either a string of at most 128 characters (no control characters other than tab,
//! line feed and carriage return, so it can always be written back as XML) or a
//! finite number (`-0` is stored as `0`, so numeric equality is plain `==`).
//!
//! Values are compared the way searches compare them: strings by their UTF-8 bytes
//! (which is code point order), numbers numerically.

use std::cmp::Ordering;
use std::fmt;

/// The longest tag name, in characters, of XEP-0347 (5.2): the limit of
/// [`TagName::new`].
pub const MAX_NAME_CHARS: usize = 32;
/// The longest tag name any dialect allows (the IEEE / Neuro-Foundation
/// successor's 64 characters): the most [`TagName::with_limit`] accepts, so the
/// most the registry ever holds.
pub const MAX_NAME_CHARS_ANY: usize = 64;
/// The longest string value, in characters (spec 5.2).
pub const MAX_VALUE_CHARS: usize = 128;
/// The reserved tag shared only by a thing and its owner (spec 6.5): never
/// searchable, never returned.
pub const KEY: &str = "KEY";

/// The tag names the spec predefines (5.2). A registry must always accept them,
/// whatever its allow-list says.
pub const PREDEFINED: [&str; 22] = [
    "ALT", "APT", "AREA", "BLD", "CITY", "CLASS", "COUNTRY", "KEY", "LAT", "LON", "MAN", "MLOC",
    "MNR", "MODEL", "NAME", "PURL", "REGION", "ROOM", "SN", "STREET", "STREETNR", "V",
];

/// The tag names the successor spec (IEEE / Neuro-Foundation "IoT Discovery")
/// predefines: XEP-0347's plus `R` (the registry address of a claim URI).
/// Also always accepted, whatever the allow-list says.
pub const PREDEFINED_SUCCESSOR: [&str; 23] = [
    "ALT", "APT", "AREA", "BLD", "CITY", "CLASS", "COUNTRY", "KEY", "LAT", "LON", "MAN", "MLOC",
    "MNR", "MODEL", "NAME", "PURL", "R", "REGION", "ROOM", "SN", "STREET", "STREETNR", "V",
];

/// Why a tag name or value was rejected. The message says what was wrong and is
/// meant for the `<text/>` of a `bad-request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagError {
    /// The name is empty.
    EmptyName,
    /// The name is longer than [`MAX_NAME_CHARS`].
    NameTooLong(String),
    /// The name is longer than the limit given to [`TagName::with_limit`]
    /// (when that is not [`MAX_NAME_CHARS`]).
    NameLongerThan(String, usize),
    /// The name holds `:`, `#`, white space or a control character.
    BadNameChar(String, char),
    /// A string value is longer than [`MAX_VALUE_CHARS`].
    ValueTooLong(String),
    /// A string value holds a control character.
    BadValueChar(String),
    /// A numeric value is NaN or infinite.
    NotFinite(String),
    /// A numeric value is not a number at all.
    NotANumber(String, String),
}

impl fmt::Display for TagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TagError::EmptyName => write!(f, "tag name is empty"),
            TagError::NameTooLong(n) => {
                write!(
                    f,
                    "tag name '{n}' is longer than {MAX_NAME_CHARS} characters"
                )
            }
            TagError::NameLongerThan(n, max) => {
                write!(f, "tag name '{n}' is longer than {max} characters")
            }
            TagError::BadNameChar(n, c) => {
                write!(f, "tag name '{n}' contains the forbidden character {c:?}")
            }
            TagError::ValueTooLong(n) => write!(
                f,
                "value of tag '{n}' is longer than {MAX_VALUE_CHARS} characters"
            ),
            TagError::BadValueChar(n) => {
                write!(f, "value of tag '{n}' contains a control character")
            }
            TagError::NotFinite(n) => write!(f, "numeric value of tag '{n}' must be finite"),
            TagError::NotANumber(n, v) => {
                let v: String = v.chars().take(40).collect();
                write!(f, "value '{v}' of numeric tag '{n}' is not a number")
            }
        }
    }
}

impl std::error::Error for TagError {}

fn shorten(s: &str) -> String {
    s.chars().take(40).collect()
}

/// A checked, upper-cased tag name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TagName(smol_str::SmolStr);

impl TagName {
    /// Checks and upper-cases a tag name of at most [`MAX_NAME_CHARS`] (32)
    /// characters.
    pub fn new(name: &str) -> Result<Self, TagError> {
        TagName::with_limit(name, MAX_NAME_CHARS)
    }

    /// Checks and upper-cases a tag name of at most `max` characters (`max` is
    /// capped at [`MAX_NAME_CHARS_ANY`]).
    pub fn with_limit(name: &str, max: usize) -> Result<Self, TagError> {
        let max = max.min(MAX_NAME_CHARS_ANY);
        let b = name.as_bytes();
        // The common case in one pass: printable ASCII, no ':' or '#' (the
        // checks below, byte for byte), within the limit.
        if !b.is_empty()
            && b.len() <= max
            && b.iter()
                .all(|&c| c > b' ' && c < 0x7f && c != b':' && c != b'#')
        {
            let mut buf = [0u8; MAX_NAME_CHARS_ANY];
            let up = &mut buf[..b.len()];
            up.copy_from_slice(b);
            up.make_ascii_uppercase();
            let up = std::str::from_utf8(up).map_err(|_| TagError::EmptyName)?;
            return Ok(TagName(smol_str::SmolStr::new(up)));
        }
        if name.is_empty() {
            return Err(TagError::EmptyName);
        }
        if let Some(c) = name
            .chars()
            .find(|&c| c == ':' || c == '#' || c.is_whitespace() || c.is_control())
        {
            return Err(TagError::BadNameChar(shorten(name), c));
        }
        if name.chars().count() > max {
            return Err(if max == MAX_NAME_CHARS {
                TagError::NameTooLong(shorten(name))
            } else {
                TagError::NameLongerThan(shorten(name), max)
            });
        }
        if name.is_ascii() && name.len() <= MAX_NAME_CHARS_ANY {
            // The common case, without an intermediate String.
            let mut buf = [0u8; MAX_NAME_CHARS_ANY];
            let up = &mut buf[..name.len()];
            up.copy_from_slice(name.as_bytes());
            up.make_ascii_uppercase();
            let up = std::str::from_utf8(up).map_err(|_| TagError::EmptyName)?;
            return Ok(TagName(smol_str::SmolStr::new(up)));
        }
        let upper: String = name.chars().flat_map(char::to_uppercase).collect();
        Ok(TagName(upper.into()))
    }

    /// Re-reads a name this type produced earlier (store, export): like
    /// [`TagName::with_limit`] at [`MAX_NAME_CHARS_ANY`], except that an
    /// upper-case name may be up to three times that long, since the limit
    /// counts the characters given and upper-casing lengthens some ('ß' -> "SS",
    /// 'ﬃ' -> "FFI").
    pub fn from_stored(name: &str) -> Result<Self, TagError> {
        match TagName::with_limit(name, MAX_NAME_CHARS_ANY) {
            Err(TagError::NameLongerThan(..)) if name.chars().count() <= 3 * MAX_NAME_CHARS_ANY => {
                // Only an upper-cased form may be longer than the limit.
                let upper: String = name.chars().flat_map(char::to_uppercase).collect();
                if upper != name {
                    return Err(TagError::NameLongerThan(shorten(name), MAX_NAME_CHARS_ANY));
                }
                Ok(TagName(upper.into()))
            }
            other => other,
        }
    }

    /// The upper-cased name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the reserved `KEY` tag.
    pub fn is_key(&self) -> bool {
        &*self.0 == KEY
    }

    /// Whether XEP-0347 (5.2) or its successor predefines this name
    /// ([`PREDEFINED`], [`PREDEFINED_SUCCESSOR`]).
    pub fn is_predefined(&self) -> bool {
        PREDEFINED_SUCCESSOR.contains(&&*self.0)
    }
}

impl std::borrow::Borrow<str> for TagName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TagName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A checked finite number: never NaN or infinite, and `-0.0` is stored as `0.0`.
/// Its order is the numeric order, so it can key sorted maps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Number(f64);

impl Number {
    /// Checks a number (the tag name is only used in the error).
    pub fn new(value: f64, tag: &str) -> Result<Self, TagError> {
        if !value.is_finite() {
            return Err(TagError::NotFinite(shorten(tag)));
        }
        Ok(Number(if value == 0.0 { 0.0 } else { value }))
    }

    /// Parses the text of a numeric value (XML Schema `xs:double` lexical space,
    /// finite values only).
    pub fn parse(text: &str, tag: &str) -> Result<Self, TagError> {
        // Rust's float syntax is xs:double's plus "inf"/"infinity"/"nan" in any
        // case; those parse to non-finite values, refused by `new`.
        let v: f64 = text
            .trim()
            .parse()
            .map_err(|_| TagError::NotANumber(shorten(tag), text.to_string()))?;
        Number::new(v, tag)
    }

    /// The value.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl Eq for Number {}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Self) -> Ordering {
        // Never NaN, and -0 was folded into 0, so total_cmp is numeric order.
        self.0.total_cmp(&other.0)
    }
}

impl std::hash::Hash for Number {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state)
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A checked tag value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TagValue {
    /// A string value (`<str/>`); short values are stored inline.
    Str(smol_str::SmolStr),
    /// A numeric value (`<num/>`).
    Num(Number),
}

impl TagValue {
    /// Checks a string value (the tag name is only used in errors).
    pub fn string(value: &str, tag: &str) -> Result<Self, TagError> {
        check_string(value, tag)?;
        Ok(TagValue::Str(value.into()))
    }

    /// Checks a numeric value.
    pub fn number(value: f64, tag: &str) -> Result<Self, TagError> {
        Ok(TagValue::Num(Number::new(value, tag)?))
    }

    /// Whether this is an empty string (which `update` reads as "delete the tag").
    pub fn is_empty_str(&self) -> bool {
        matches!(self, TagValue::Str(s) if s.is_empty())
    }
}

/// Checks a string used as a tag value or as a search operand.
pub fn check_string(value: &str, tag: &str) -> Result<(), TagError> {
    let b = value.as_bytes();
    // The common case in one pass: ASCII (one character per byte) without
    // control characters, within the limit.
    if b.len() <= MAX_VALUE_CHARS
        && b.iter()
            .all(|&c| (0x20..0x7f).contains(&c) || matches!(c, b'\t' | b'\n' | b'\r'))
    {
        return Ok(());
    }
    if value.chars().count() > MAX_VALUE_CHARS {
        return Err(TagError::ValueTooLong(shorten(tag)));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(TagError::BadValueChar(shorten(tag)));
    }
    Ok(())
}

/// One meta tag: a name and a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag {
    /// The upper-cased name.
    pub name: TagName,
    /// The value.
    pub value: TagValue,
}

impl Tag {
    /// A string tag, checked.
    pub fn str(name: &str, value: &str) -> Result<Self, TagError> {
        let name = TagName::new(name)?;
        let value = TagValue::string(value, name.as_str())?;
        Ok(Tag { name, value })
    }

    /// A numeric tag, checked.
    pub fn num(name: &str, value: f64) -> Result<Self, TagError> {
        let name = TagName::new(name)?;
        let value = TagValue::number(value, name.as_str())?;
        Ok(Tag { name, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_upper_cased_and_checked() {
        assert_eq!(TagName::new("man").unwrap().as_str(), "MAN");
        assert!(TagName::new("Key").unwrap().is_key());
        assert!(TagName::new("").is_err());
        assert!(TagName::new("A:B").is_err());
        assert!(TagName::new("A#B").is_err());
        assert!(TagName::new("A B").is_err());
        assert!(TagName::new("A\tB").is_err());
        assert!(TagName::new(&"X".repeat(32)).is_ok());
        assert!(matches!(
            TagName::new(&"X".repeat(33)),
            Err(TagError::NameTooLong(_))
        ));
        assert!(TagName::new("temp").unwrap().to_string() == "TEMP");
        assert!(TagName::with_limit(&"X".repeat(64), 64).is_ok());
        assert_eq!(
            TagName::with_limit(&"X".repeat(65), 64)
                .unwrap_err()
                .to_string(),
            format!("tag name '{}' is longer than 64 characters", "X".repeat(40))
        );
        assert!(
            TagName::with_limit(&"X".repeat(65), 1000).is_err(),
            "capped at 64"
        );
        assert!(TagName::from_stored(&"X".repeat(64)).is_ok());
        assert!(TagName::new("r").unwrap().is_predefined());
        assert!(PREDEFINED.iter().all(|p| PREDEFINED_SUCCESSOR.contains(p)));
    }

    #[test]
    fn values_are_checked() {
        assert!(TagValue::string(&"é".repeat(128), "X").is_ok());
        assert!(TagValue::string(&"é".repeat(129), "X").is_err());
        assert!(TagValue::string("a\u{0}b", "X").is_err());
        assert!(TagValue::number(f64::NAN, "X").is_err());
        assert!(TagValue::number(f64::INFINITY, "X").is_err());
        assert_eq!(
            TagValue::number(-0.0, "X").unwrap(),
            TagValue::number(0.0, "X").unwrap()
        );
        assert!(Number::parse("abc", "V").is_err());
        assert!(Number::parse("INF", "V").is_err());
        assert!(Number::parse("NaN", "V").is_err());
        assert_eq!(Number::parse(" 1.2 ", "V").unwrap().get(), 1.2);
        assert_eq!(Number::parse("1E+20", "V").unwrap().get(), 1e20);
    }

    #[test]
    fn number_order_is_numeric() {
        let a = Number::new(-1.5, "X").unwrap();
        let b = Number::new(2.0, "X").unwrap();
        assert!(a < b);
    }
}
