//! The search operators of spec 3.15, as one typed enum, and what each one means.
//!
//! Every operator names one tag and matches a thing only when the thing HAS that
//! tag with a value of the operator's type (`str*` operators see string values,
//! `num*` operators numeric ones). In particular the negated operators (`strNEq`,
//! `strNRange`, `numNEq`, `numNRange`) match things that have the tag with another
//! value, never things that lack it.
//!
//! Strings compare by their UTF-8 bytes (code point order), numbers numerically.
//! For ranges, `min_included`/`max_included` say whether the endpoints belong to
//! the range; for `NRange` the range is excluded from the result, so an included
//! endpoint is NOT matched.
//!
//! Two operators of the successor spec (IEEE / Neuro-Foundation "IoT Discovery")
//! extend the set in every namespace: `strRegEx` ([`Operator::StrRegEx`], a
//! regular expression over the whole value) and `nameWildcard` on any operator
//! ([`Operator::AnyName`]: the name is a mask over tag names, and a thing matches
//! when any of its tags whose name matches satisfies the operator).

use std::ops::Bound;

use crate::query::pattern::{Mask, NameMask, Regex};
use crate::tag::{Number, TagName};

/// A string range `[min, max]` with endpoint inclusion.
#[derive(Debug, Clone, PartialEq)]
pub struct StrRange {
    /// Lower end.
    pub min: Box<str>,
    /// Whether `min` belongs to the range (default true).
    pub min_included: bool,
    /// Upper end.
    pub max: Box<str>,
    /// Whether `max` belongs to the range (default true).
    pub max_included: bool,
}

/// A numeric range `[min, max]` with endpoint inclusion.
#[derive(Debug, Clone, PartialEq)]
pub struct NumRange {
    /// Lower end.
    pub min: Number,
    /// Whether `min` belongs to the range (default true).
    pub min_included: bool,
    /// Upper end.
    pub max: Number,
    /// Whether `max` belongs to the range (default true).
    pub max_included: bool,
}

/// One comparison of a search.
#[derive(Debug, Clone, PartialEq)]
pub enum Operator {
    /// `strEq`: value = c.
    StrEq(TagName, Box<str>),
    /// `strNEq`: value <> c.
    StrNEq(TagName, Box<str>),
    /// `strGt`: value > c.
    StrGt(TagName, Box<str>),
    /// `strGtEq`: value >= c.
    StrGtEq(TagName, Box<str>),
    /// `strLt`: value < c.
    StrLt(TagName, Box<str>),
    /// `strLtEq`: value <= c.
    StrLtEq(TagName, Box<str>),
    /// `strRange`: value inside the range.
    StrRange(TagName, StrRange),
    /// `strNRange`: value outside the range.
    StrNRange(TagName, StrRange),
    /// `strMask`: value matches a mask whose wildcard matches any run of characters.
    StrMask(TagName, Mask),
    /// `numEq`: value = c.
    NumEq(TagName, Number),
    /// `numNEq`: value <> c.
    NumNEq(TagName, Number),
    /// `numGt`: value > c.
    NumGt(TagName, Number),
    /// `numGtEq`: value >= c.
    NumGtEq(TagName, Number),
    /// `numLt`: value < c.
    NumLt(TagName, Number),
    /// `numLtEq`: value <= c.
    NumLtEq(TagName, Number),
    /// `numRange`: value inside the range.
    NumRange(TagName, NumRange),
    /// `numNRange`: value outside the range.
    NumNRange(TagName, NumRange),
    /// `strRegEx` (successor spec): the whole value matches a regular
    /// expression (anchored at both ends whatever anchors it has).
    StrRegEx(TagName, Regex),
    /// `nameWildcard` on any operator (successor spec): the operator's `name`
    /// is a mask over tag names, and a thing matches when ANY of its tags whose
    /// name matches the mask satisfies the inner operator (`KEY` never does).
    /// The inner operator's own tag name is not used (by convention it is the
    /// mask's text when that is a valid tag name, else `*`); build with
    /// [`Operator::any_name`]. An inner `AnyName` narrows the names further
    /// (both masks must match).
    AnyName(NameMask, Box<Operator>),
}

/// Which type of value an operator looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// String values.
    Str,
    /// Numeric values.
    Num,
}

/// An interval over sorted keys (the set of values an operator selects, or, for a
/// negated operator, the set it rejects).
#[derive(Debug, Clone, Copy)]
pub struct Interval<'a, T: ?Sized> {
    /// Lower bound.
    pub lo: Bound<&'a T>,
    /// Upper bound.
    pub hi: Bound<&'a T>,
}

fn bound<T: ?Sized>(v: &T, included: bool) -> Bound<&T> {
    if included {
        Bound::Included(v)
    } else {
        Bound::Excluded(v)
    }
}

fn iv<'a, T: ?Sized>(lo: Bound<&'a T>, hi: Bound<&'a T>) -> Interval<'a, T> {
    Interval { lo, hi }
}

fn in_interval<T: PartialOrd + ?Sized>(v: &T, i: &Interval<'_, T>) -> bool {
    let lo_ok = match i.lo {
        Bound::Included(a) => v >= a,
        Bound::Excluded(a) => v > a,
        Bound::Unbounded => true,
    };
    let hi_ok = match i.hi {
        Bound::Included(b) => v <= b,
        Bound::Excluded(b) => v < b,
        Bound::Unbounded => true,
    };
    lo_ok && hi_ok
}

/// How an operator selects values, in terms of sorted keys.
#[derive(Debug)]
pub enum Selection<'a> {
    /// Values inside a string interval (`Eq` is a one-point interval).
    StrIn(Interval<'a, str>),
    /// Values outside a string interval (`NEq`, `NRange`).
    StrOut(Interval<'a, str>),
    /// Values matching a mask.
    StrMask(&'a Mask),
    /// Values matching a regular expression.
    StrRegex(&'a Regex),
    /// Values inside a numeric interval.
    NumIn(Interval<'a, Number>),
    /// Values outside a numeric interval.
    NumOut(Interval<'a, Number>),
}

impl Operator {
    /// `op` applied to every tag whose name matches `mask` (`nameWildcard`).
    /// The inner operator's tag name is replaced by the conventional one (the
    /// mask's text if it is a valid tag name, else `*`).
    pub fn any_name(mask: NameMask, op: Operator) -> Operator {
        let name = TagName::new(mask.source())
            .or_else(|_| TagName::new("*"))
            .expect("'*' is a valid tag name");
        Operator::AnyName(mask, Box::new(op.renamed(name)))
    }

    /// The same comparison on another tag (for `AnyName`: of the inner operator).
    pub fn renamed(self, name: TagName) -> Operator {
        use Operator as O;
        match self {
            O::StrEq(_, c) => O::StrEq(name, c),
            O::StrNEq(_, c) => O::StrNEq(name, c),
            O::StrGt(_, c) => O::StrGt(name, c),
            O::StrGtEq(_, c) => O::StrGtEq(name, c),
            O::StrLt(_, c) => O::StrLt(name, c),
            O::StrLtEq(_, c) => O::StrLtEq(name, c),
            O::StrRange(_, r) => O::StrRange(name, r),
            O::StrNRange(_, r) => O::StrNRange(name, r),
            O::StrMask(_, m) => O::StrMask(name, m),
            O::StrRegEx(_, r) => O::StrRegEx(name, r),
            O::NumEq(_, c) => O::NumEq(name, c),
            O::NumNEq(_, c) => O::NumNEq(name, c),
            O::NumGt(_, c) => O::NumGt(name, c),
            O::NumGtEq(_, c) => O::NumGtEq(name, c),
            O::NumLt(_, c) => O::NumLt(name, c),
            O::NumLtEq(_, c) => O::NumLtEq(name, c),
            O::NumRange(_, r) => O::NumRange(name, r),
            O::NumNRange(_, r) => O::NumNRange(name, r),
            O::AnyName(m, op) => O::AnyName(m, Box::new(op.renamed(name))),
        }
    }

    /// For `AnyName`: the name masks (outermost first) and the innermost
    /// operator; for the others no mask and the operator itself.
    pub fn name_masks(&self) -> (Vec<&NameMask>, &Operator) {
        let mut masks = Vec::new();
        let mut op = self;
        while let Operator::AnyName(m, inner) = op {
            masks.push(m);
            op = inner;
        }
        (masks, op)
    }

    /// The tag this operator looks at (for `AnyName`, the inner operator's
    /// conventional name: see [`Operator::AnyName`]).
    pub fn name(&self) -> &TagName {
        match self {
            Operator::StrEq(n, _)
            | Operator::StrNEq(n, _)
            | Operator::StrGt(n, _)
            | Operator::StrGtEq(n, _)
            | Operator::StrLt(n, _)
            | Operator::StrLtEq(n, _)
            | Operator::StrRange(n, _)
            | Operator::StrNRange(n, _)
            | Operator::StrMask(n, _)
            | Operator::NumEq(n, _)
            | Operator::NumNEq(n, _)
            | Operator::NumGt(n, _)
            | Operator::NumGtEq(n, _)
            | Operator::NumLt(n, _)
            | Operator::NumLtEq(n, _)
            | Operator::NumRange(n, _)
            | Operator::NumNRange(n, _)
            | Operator::StrRegEx(n, _) => n,
            Operator::AnyName(_, op) => op.name(),
        }
    }

    /// The element name of this operator on the wire.
    pub fn element(&self) -> &'static str {
        match self {
            Operator::StrEq(..) => "strEq",
            Operator::StrNEq(..) => "strNEq",
            Operator::StrGt(..) => "strGt",
            Operator::StrGtEq(..) => "strGtEq",
            Operator::StrLt(..) => "strLt",
            Operator::StrLtEq(..) => "strLtEq",
            Operator::StrRange(..) => "strRange",
            Operator::StrNRange(..) => "strNRange",
            Operator::StrMask(..) => "strMask",
            Operator::NumEq(..) => "numEq",
            Operator::NumNEq(..) => "numNEq",
            Operator::NumGt(..) => "numGt",
            Operator::NumGtEq(..) => "numGtEq",
            Operator::NumLt(..) => "numLt",
            Operator::NumLtEq(..) => "numLtEq",
            Operator::NumRange(..) => "numRange",
            Operator::NumNRange(..) => "numNRange",
            Operator::StrRegEx(..) => "strRegEx",
            Operator::AnyName(_, op) => op.element(),
        }
    }

    /// Which value type this operator looks at.
    pub fn kind(&self) -> ValueKind {
        match self.selection() {
            Selection::StrIn(_)
            | Selection::StrOut(_)
            | Selection::StrMask(_)
            | Selection::StrRegex(_) => ValueKind::Str,
            Selection::NumIn(_) | Selection::NumOut(_) => ValueKind::Num,
        }
    }

    /// The operator as a selection over sorted keys (for `AnyName`: the inner
    /// operator's, per tag).
    pub fn selection(&self) -> Selection<'_> {
        use Bound::{Included, Unbounded};
        match self {
            Operator::StrEq(_, c) => Selection::StrIn(iv(Included(&**c), Included(&**c))),
            Operator::StrNEq(_, c) => Selection::StrOut(iv(Included(&**c), Included(&**c))),
            Operator::StrGt(_, c) => Selection::StrIn(iv(bound(&**c, false), Unbounded)),
            Operator::StrGtEq(_, c) => Selection::StrIn(iv(Included(&**c), Unbounded)),
            Operator::StrLt(_, c) => Selection::StrIn(iv(Unbounded, bound(&**c, false))),
            Operator::StrLtEq(_, c) => Selection::StrIn(iv(Unbounded, Included(&**c))),
            Operator::StrRange(_, r) => Selection::StrIn(iv(
                bound(&*r.min, r.min_included),
                bound(&*r.max, r.max_included),
            )),
            Operator::StrNRange(_, r) => Selection::StrOut(iv(
                bound(&*r.min, r.min_included),
                bound(&*r.max, r.max_included),
            )),
            Operator::StrMask(_, m) => Selection::StrMask(m),
            Operator::NumEq(_, c) => Selection::NumIn(iv(Included(c), Included(c))),
            Operator::NumNEq(_, c) => Selection::NumOut(iv(Included(c), Included(c))),
            Operator::NumGt(_, c) => Selection::NumIn(iv(bound(c, false), Unbounded)),
            Operator::NumGtEq(_, c) => Selection::NumIn(iv(Included(c), Unbounded)),
            Operator::NumLt(_, c) => Selection::NumIn(iv(Unbounded, bound(c, false))),
            Operator::NumLtEq(_, c) => Selection::NumIn(iv(Unbounded, Included(c))),
            Operator::NumRange(_, r) => Selection::NumIn(iv(
                bound(&r.min, r.min_included),
                bound(&r.max, r.max_included),
            )),
            Operator::NumNRange(_, r) => Selection::NumOut(iv(
                bound(&r.min, r.min_included),
                bound(&r.max, r.max_included),
            )),
            Operator::StrRegEx(_, r) => Selection::StrRegex(r),
            Operator::AnyName(_, op) => op.selection(),
        }
    }

    /// Whether a string value satisfies this operator (false for `num*`).
    pub fn matches_str(&self, v: &str) -> bool {
        match self.selection() {
            Selection::StrIn(i) => in_interval(v, &i),
            Selection::StrOut(i) => !in_interval(v, &i),
            Selection::StrMask(m) => m.is_match(v),
            Selection::StrRegex(r) => r.is_match(v),
            _ => false,
        }
    }

    /// Whether a numeric value satisfies this operator (false for `str*`).
    pub fn matches_num(&self, v: Number) -> bool {
        match self.selection() {
            Selection::NumIn(i) => in_interval(&v, &i),
            Selection::NumOut(i) => !in_interval(&v, &i),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(x: f64) -> Number {
        Number::new(x, "X").unwrap()
    }

    fn name() -> TagName {
        TagName::new("X").unwrap()
    }

    #[test]
    fn string_operators() {
        let c: Box<str> = "m".into();
        assert!(Operator::StrEq(name(), c.clone()).matches_str("m"));
        assert!(!Operator::StrNEq(name(), c.clone()).matches_str("m"));
        assert!(Operator::StrGt(name(), c.clone()).matches_str("n"));
        assert!(!Operator::StrGt(name(), c.clone()).matches_str("m"));
        assert!(Operator::StrGtEq(name(), c.clone()).matches_str("m"));
        assert!(Operator::StrLt(name(), c.clone()).matches_str("a"));
        assert!(Operator::StrLtEq(name(), c).matches_str("m"));
        let r = StrRange {
            min: "b".into(),
            min_included: true,
            max: "d".into(),
            max_included: false,
        };
        assert!(Operator::StrRange(name(), r.clone()).matches_str("b"));
        assert!(!Operator::StrRange(name(), r.clone()).matches_str("d"));
        assert!(!Operator::StrNRange(name(), r.clone()).matches_str("b"));
        assert!(Operator::StrNRange(name(), r).matches_str("d"));
    }

    #[test]
    fn regex_and_any_name() {
        use crate::query::pattern::{NameMask, Regex};
        let r = Operator::StrRegEx(name(), Regex::new("a[0-9]+").unwrap());
        assert_eq!(r.element(), "strRegEx");
        assert_eq!(r.kind(), ValueKind::Str);
        assert!(r.matches_str("a12"));
        assert!(!r.matches_str("a12b"));
        assert!(!r.matches_num(n(1.0)));
        let inner = Operator::NumGt(name(), n(20.0));
        let any = Operator::any_name(NameMask::new("temp*", "*").unwrap(), inner.clone());
        // The element and the comparison are the inner operator's; its name is
        // the conventional one.
        assert_eq!(any.element(), "numGt");
        assert_eq!(any.kind(), ValueKind::Num);
        assert_eq!(any.name().as_str(), "TEMP*");
        assert!(any.matches_num(n(21.0)));
        let (masks, op) = any.name_masks();
        assert_eq!(masks.len(), 1);
        assert_eq!(masks[0].source(), "temp*");
        assert_eq!(op, &inner.clone().renamed(TagName::new("TEMP*").unwrap()));
        let odd = Operator::any_name(NameMask::new("urn:x:*", "*").unwrap(), inner);
        assert_eq!(odd.name().as_str(), "*");
        let nested = Operator::any_name(NameMask::new("T*", "*").unwrap(), any.clone());
        assert_eq!(nested.name_masks().0.len(), 2);
        assert_eq!(r.name_masks().0.len(), 0);
    }

    #[test]
    fn numeric_operators() {
        let r = NumRange {
            min: n(1.0),
            min_included: true,
            max: n(2.0),
            max_included: false,
        };
        assert!(Operator::NumRange(name(), r.clone()).matches_num(n(1.0)));
        assert!(!Operator::NumRange(name(), r.clone()).matches_num(n(2.0)));
        assert!(Operator::NumNRange(name(), r.clone()).matches_num(n(2.0)));
        assert!(!Operator::NumNRange(name(), r).matches_num(n(1.5)));
        assert!(Operator::NumEq(name(), n(1.2)).matches_num(n(1.2)));
        assert!(Operator::NumNEq(name(), n(1.2)).matches_num(n(1.3)));
        assert!(Operator::NumGt(name(), n(1.0)).matches_num(n(1.5)));
        assert!(Operator::NumLtEq(name(), n(1.0)).matches_num(n(1.0)));
        assert!(!Operator::NumLt(name(), n(1.0)).matches_num(n(1.0)));
        assert!(Operator::NumGtEq(name(), n(1.0)).matches_num(n(1.0)));
        assert!(!Operator::StrEq(name(), "1".into()).matches_num(n(1.0)));
    }
}
