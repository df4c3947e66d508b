//! Searches (spec 3.15): the typed request, the operators, mask patterns and the
//! plan that turns them into one ordered page of thing ids.
//!
//! Parsing, planning and executing are separate: [`operator`] says what each
//! operator means, [`pattern`] compiles masks, `strRegEx` regular expressions and
//! `nameWildcard` name masks, [`plan`] decides how to evaluate a conjunction
//! against the indexes.

pub mod operator;
pub mod pattern;
pub mod plan;

pub use operator::{NumRange, Operator, StrRange};
pub use pattern::{Mask, NameMask, Regex};

/// A search request: the conjunction of `operators`, skipping `offset` matches and
/// returning at most `max_count` (lowered to the registry's cap; `None` = the cap).
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// The operators, all of which must match.
    pub operators: Vec<Operator>,
    /// How many matches to skip.
    pub offset: u32,
    /// The most matches to return.
    pub max_count: Option<u32>,
}

impl Search {
    /// A search for the first page with the registry's default size.
    pub fn new(operators: Vec<Operator>) -> Self {
        Search {
            operators,
            offset: 0,
            max_count: None,
        }
    }
}
