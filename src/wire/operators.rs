//! Search operators: the children of a `search` element, parsed into typed
//! [`Operator`]s. Split from [`super::request`] so the operator vocabulary can
//! grow without touching the request parser.
//!
//! Every namespace accepts the same operators: XEP-0347's 17 plus the
//! successor's `strRegEx` (a regular expression over the whole value) and the
//! `nameWildcard` attribute on any of them (`name` is then a mask over tag
//! names). A regular expression that does not compile or exceeds the limits
//! ([`crate::query::pattern::MAX_REGEX_BYTES`],
//! [`crate::query::pattern::REGEX_DFA_SIZE_LIMIT`]), and a `nameWildcard` with
//! an empty `name`, are refused with the reason (`bad-request`).

use crate::query::pattern::{Mask, NameMask, Regex};
use crate::query::{NumRange, Operator, StrRange};
use crate::tag::{TagName, check_string};
use crate::wire::reader::{Attrs, Element, StanzaReader};
use crate::wire::request::{
    Limits, Refusal, attr, bad, boolean, children, number, required, tag_name,
};

fn str_value<'x>(
    attrs: &'x Attrs<'_>,
    el: &Element<'_>,
    name: &str,
    tag: &TagName,
) -> Result<&'x str, Refusal> {
    let v = required(attrs, el, name)?;
    check_string(v, tag.as_str()).map_err(|e| Refusal::BadRequest(e.to_string()))?;
    Ok(v)
}

/// The longest `name` a `nameWildcard` operator may carry, in characters (four
/// times the longest tag name of any dialect).
const MAX_NAME_MASK_CHARS: usize = 256;

pub(super) fn operators(
    r: &mut StanzaReader<'_>,
    e: &Element<'_>,
    limits: &Limits,
) -> Result<Vec<Operator>, Refusal> {
    let mut out = Vec::new();
    children(r, e, |c, attrs| {
        if out.len() >= limits.max_operators {
            return bad(format!(
                "a search may have at most {} operators",
                limits.max_operators
            ));
        }
        out.push(operator(c, attrs)?);
        Ok(())
    })?;
    Ok(out)
}

pub(super) fn operator(c: &Element<'_>, attrs: &Attrs<'_>) -> Result<Operator, Refusal> {
    let el = c.name();
    let known = matches!(
        el,
        b"strEq"
            | b"strNEq"
            | b"strGt"
            | b"strGtEq"
            | b"strLt"
            | b"strLtEq"
            | b"strRange"
            | b"strNRange"
            | b"strMask"
            | b"strRegEx"
            | b"numEq"
            | b"numNEq"
            | b"numGt"
            | b"numGtEq"
            | b"numLt"
            | b"numLtEq"
            | b"numRange"
            | b"numNRange"
    );
    if !known {
        return bad(format!("unknown search operator '{}'", c.name_text()));
    }
    // `nameWildcard` (successor spec): `name` is a mask over tag names. An
    // empty `nameWildcard` is the same as none (the successor writes the
    // attribute only when it is not empty).
    let name_mask = match attr(attrs, "nameWildcard").filter(|w| !w.is_empty()) {
        None => None,
        Some(w) => {
            let mask = required(attrs, c, "name")?;
            if mask.chars().count() > MAX_NAME_MASK_CHARS {
                return bad(format!(
                    "tag name mask '{}...' is too long",
                    mask.chars().take(32).collect::<String>()
                ));
            }
            Some(NameMask::new(mask, w).map_err(|e| Refusal::BadRequest(e.to_string()))?)
        }
    };
    let name = match &name_mask {
        // The inner operator's name is a placeholder (see `Operator::any_name`).
        Some(_) => TagName::new("*").map_err(|e| Refusal::BadRequest(e.to_string()))?,
        None => tag_name(attrs, c)?,
    };
    let s = |a: &str| -> Result<Box<str>, Refusal> { Ok(str_value(attrs, c, a, &name)?.into()) };
    let n = |a: &str| number(required(attrs, c, a)?, &name);
    let incl = |a: &str| boolean(attrs, a, true);
    let str_range = || -> Result<StrRange, Refusal> {
        Ok(StrRange {
            min: s("min")?,
            min_included: incl("minIncluded")?,
            max: s("max")?,
            max_included: incl("maxIncluded")?,
        })
    };
    let num_range = || -> Result<NumRange, Refusal> {
        Ok(NumRange {
            min: n("min")?,
            min_included: incl("minIncluded")?,
            max: n("max")?,
            max_included: incl("maxIncluded")?,
        })
    };
    let op = match el {
        b"strEq" => Operator::StrEq(name.clone(), s("value")?),
        b"strNEq" => Operator::StrNEq(name.clone(), s("value")?),
        b"strGt" => Operator::StrGt(name.clone(), s("value")?),
        b"strGtEq" => Operator::StrGtEq(name.clone(), s("value")?),
        b"strLt" => Operator::StrLt(name.clone(), s("value")?),
        b"strLtEq" => Operator::StrLtEq(name.clone(), s("value")?),
        b"strRange" => Operator::StrRange(name.clone(), str_range()?),
        b"strNRange" => Operator::StrNRange(name.clone(), str_range()?),
        b"strMask" => {
            let v = required(attrs, c, "value")?;
            if v.chars().count() > 4 * crate::tag::MAX_VALUE_CHARS {
                return bad(format!("mask for tag '{}' is too long", name.as_str()));
            }
            let mask = Mask::new(v, attr(attrs, "wildcard"))
                .map_err(|e| Refusal::BadRequest(e.to_string()))?;
            Operator::StrMask(name.clone(), mask)
        }
        b"strRegEx" => {
            let v = required(attrs, c, "value")?;
            let regex = Regex::new(v).map_err(|e| Refusal::BadRequest(e.to_string()))?;
            Operator::StrRegEx(name.clone(), regex)
        }
        b"numEq" => Operator::NumEq(name.clone(), n("value")?),
        b"numNEq" => Operator::NumNEq(name.clone(), n("value")?),
        b"numGt" => Operator::NumGt(name.clone(), n("value")?),
        b"numGtEq" => Operator::NumGtEq(name.clone(), n("value")?),
        b"numLt" => Operator::NumLt(name.clone(), n("value")?),
        b"numLtEq" => Operator::NumLtEq(name.clone(), n("value")?),
        b"numRange" => Operator::NumRange(name.clone(), num_range()?),
        _ => Operator::NumNRange(name.clone(), num_range()?),
    };
    Ok(match name_mask {
        Some(mask) => Operator::any_name(mask, op),
        None => op,
    })
}
