//! The naive baseline: a `Vec` of every thing with its owner, JID, node address
//! and tags, scanned in order.
//!
//! Its predicates are written here from the spec, independently of
//! `Operator::matches_*`: strings compare by their bytes, numbers as `f64`, an
//! operator only matches a thing that has its tag with a value of the operator's
//! type (so negated operators never match things lacking the tag), `KEY` is never
//! searchable, and `strMask` uses its own wildcard matcher. Every thing is public
//! and claimed, so there is no searchable filter.
//!
//! A search answers what the registry answers: a [`SearchResult`] whose
//! [`FoundThing`]s own their owner, JID, node address and tags (`KEY` left out,
//! registration order), cloned from the table. Tag names are interned to a
//! `u16` (the scan compares numbers, not strings) and kept once each as a
//! [`TagName`], which a found tag clones, as the registry's result does.

use std::collections::HashMap;

use iotdisco::datagen::GenThing;
use iotdisco::query::{NumRange, Operator, StrRange};
use iotdisco::{BareJid, FoundThing, SearchResult, Tag, TagName, TagValue, ThingKey};

use super::PAGE;

/// One thing: its identity, owner and tags as (name number, value), in
/// registration order (`KEY` included, as the registry stores it).
#[derive(Debug, Clone)]
pub struct NaiveThing {
    /// Bare JID and node address.
    pub key: ThingKey,
    /// The owner.
    pub owner: BareJid,
    /// The tags.
    pub tags: Box<[(u16, TagValue)]>,
}

/// All things, in thing order, and the tag names they use.
#[derive(Debug, Default)]
pub struct Naive {
    names: HashMap<String, u16>,
    /// Name of each name number.
    tag_names: Vec<TagName>,
    /// The number of `KEY`, once some thing has it.
    key_name: Option<u16>,
    /// The things, index = datagen index.
    pub things: Vec<NaiveThing>,
}

/// A string test.
#[derive(Debug)]
enum STest {
    Eq(Box<[u8]>),
    Ne(Box<[u8]>),
    Gt(Box<[u8]>),
    Ge(Box<[u8]>),
    Lt(Box<[u8]>),
    Le(Box<[u8]>),
    In(Box<[u8]>, bool, Box<[u8]>, bool),
    Out(Box<[u8]>, bool, Box<[u8]>, bool),
    Mask(Glob),
    /// `strRegEx`: the `regex` crate, compiled as `^(?:pattern)$`.
    Regex(regex::bytes::Regex),
}

/// A numeric test.
#[derive(Debug)]
enum NTest {
    Eq(f64),
    Ne(f64),
    Gt(f64),
    Ge(f64),
    Lt(f64),
    Le(f64),
    In(f64, bool, f64, bool),
    Out(f64, bool, f64, bool),
}

#[derive(Debug)]
enum Test {
    S(STest),
    N(NTest),
}

/// A compiled predicate: a tag number and a test on its value.
#[derive(Debug)]
pub struct Pred {
    name: u16,
    /// `nameWildcard`: every other tag number whose name matches the mask (the
    /// thing matches when any of `name` and these passes the test).
    alts: Vec<u16>,
    test: Test,
}

/// A `strMask` matcher: the mask split at its wildcard.
#[derive(Debug)]
pub enum Glob {
    /// No wildcard: the whole value must equal this.
    Exact(Box<[u8]>),
    /// `first*middle[0]*...*last`.
    Pieces {
        /// Must start the value.
        first: Box<[u8]>,
        /// Must occur, in order, between `first` and `last`, not overlapping.
        middle: Vec<Box<[u8]>>,
        /// Must end the value.
        last: Box<[u8]>,
    },
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    if needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Glob {
    /// Splits `mask` at every occurrence of `wildcard` (none or empty: literal).
    pub fn new(mask: &str, wildcard: Option<&str>) -> Self {
        let b = |s: &str| -> Box<[u8]> { s.as_bytes().into() };
        match wildcard {
            Some(w) if !w.is_empty() && mask.contains(w) => {
                let mut parts: Vec<&str> = mask.split(w).collect();
                let last = parts.pop().expect("at least two parts");
                let first = parts.remove(0);
                Glob::Pieces {
                    first: b(first),
                    middle: parts.into_iter().filter(|p| !p.is_empty()).map(b).collect(),
                    last: b(last),
                }
            }
            _ => Glob::Exact(b(mask)),
        }
    }

    /// Whether the whole value matches. Leftmost matching of each middle piece is
    /// optimal: it leaves the most room for the pieces after it.
    pub fn matches(&self, v: &[u8]) -> bool {
        match self {
            Glob::Exact(e) => v == &**e,
            Glob::Pieces {
                first,
                middle,
                last,
            } => {
                if v.len() < first.len() + last.len() || !v.starts_with(first) || !v.ends_with(last)
                {
                    return false;
                }
                let mut rest = &v[first.len()..v.len() - last.len()];
                for m in middle {
                    match find(rest, m) {
                        Some(at) => rest = &rest[at + m.len()..],
                        None => return false,
                    }
                }
                true
            }
        }
    }
}

fn above(v: f64, lo: f64, inc: bool) -> bool {
    if inc { v >= lo } else { v > lo }
}

fn below(v: f64, hi: f64, inc: bool) -> bool {
    if inc { v <= hi } else { v < hi }
}

fn above_s(v: &[u8], lo: &[u8], inc: bool) -> bool {
    if inc { v >= lo } else { v > lo }
}

fn below_s(v: &[u8], hi: &[u8], inc: bool) -> bool {
    if inc { v <= hi } else { v < hi }
}

impl STest {
    fn check(&self, v: &[u8]) -> bool {
        match self {
            STest::Eq(c) => v == &**c,
            STest::Ne(c) => v != &**c,
            STest::Gt(c) => v > &**c,
            STest::Ge(c) => v >= &**c,
            STest::Lt(c) => v < &**c,
            STest::Le(c) => v <= &**c,
            STest::In(lo, li, hi, hi_inc) => above_s(v, lo, *li) && below_s(v, hi, *hi_inc),
            STest::Out(lo, li, hi, hi_inc) => !(above_s(v, lo, *li) && below_s(v, hi, *hi_inc)),
            STest::Mask(g) => g.matches(v),
            STest::Regex(r) => r.is_match(v),
        }
    }
}

impl NTest {
    fn check(&self, v: f64) -> bool {
        match *self {
            NTest::Eq(c) => v == c,
            NTest::Ne(c) => v != c,
            NTest::Gt(c) => v > c,
            NTest::Ge(c) => v >= c,
            NTest::Lt(c) => v < c,
            NTest::Le(c) => v <= c,
            NTest::In(lo, li, hi, hi_inc) => above(v, lo, li) && below(v, hi, hi_inc),
            NTest::Out(lo, li, hi, hi_inc) => !(above(v, lo, li) && below(v, hi, hi_inc)),
        }
    }
}

fn sb(s: &str) -> Box<[u8]> {
    s.as_bytes().into()
}

fn s_in(r: &StrRange) -> (Box<[u8]>, bool, Box<[u8]>, bool) {
    (sb(&r.min), r.min_included, sb(&r.max), r.max_included)
}

fn n_in(r: &NumRange) -> (f64, bool, f64, bool) {
    (r.min.get(), r.min_included, r.max.get(), r.max_included)
}

fn test_of(op: &Operator) -> Test {
    use Operator as O;
    match op {
        O::StrEq(_, c) => Test::S(STest::Eq(sb(c))),
        O::StrNEq(_, c) => Test::S(STest::Ne(sb(c))),
        O::StrGt(_, c) => Test::S(STest::Gt(sb(c))),
        O::StrGtEq(_, c) => Test::S(STest::Ge(sb(c))),
        O::StrLt(_, c) => Test::S(STest::Lt(sb(c))),
        O::StrLtEq(_, c) => Test::S(STest::Le(sb(c))),
        O::StrRange(_, r) => {
            let (a, ai, b, bi) = s_in(r);
            Test::S(STest::In(a, ai, b, bi))
        }
        O::StrNRange(_, r) => {
            let (a, ai, b, bi) = s_in(r);
            Test::S(STest::Out(a, ai, b, bi))
        }
        O::StrMask(_, m) => Test::S(STest::Mask(Glob::new(m.source(), m.wildcard()))),
        O::StrRegEx(_, r) => Test::S(STest::Regex(
            regex::bytes::Regex::new(&format!("^(?:{})$", r.source())).expect("regex"),
        )),
        O::AnyName(_, op) => test_of(op),
        O::NumEq(_, c) => Test::N(NTest::Eq(c.get())),
        O::NumNEq(_, c) => Test::N(NTest::Ne(c.get())),
        O::NumGt(_, c) => Test::N(NTest::Gt(c.get())),
        O::NumGtEq(_, c) => Test::N(NTest::Ge(c.get())),
        O::NumLt(_, c) => Test::N(NTest::Lt(c.get())),
        O::NumLtEq(_, c) => Test::N(NTest::Le(c.get())),
        O::NumRange(_, r) => {
            let (a, ai, b, bi) = n_in(r);
            Test::N(NTest::In(a, ai, b, bi))
        }
        O::NumNRange(_, r) => {
            let (a, ai, b, bi) = n_in(r);
            Test::N(NTest::Out(a, ai, b, bi))
        }
    }
}

impl Pred {
    fn test(&self, v: &TagValue) -> bool {
        match (&self.test, v) {
            (Test::S(s), TagValue::Str(v)) => s.check(v.as_bytes()),
            (Test::N(n), TagValue::Num(v)) => n.check(v.get()),
            _ => false,
        }
    }

    fn matches(&self, t: &NaiveThing) -> bool {
        if !self.alts.is_empty() {
            return t
                .tags
                .iter()
                .any(|(n, v)| (*n == self.name || self.alts.contains(n)) && self.test(v));
        }
        // A thing has each tag name at most once.
        let Some((_, v)) = t.tags.iter().find(|(n, _)| *n == self.name) else {
            return false;
        };
        self.test(v)
    }
}

/// `nameWildcard`: whether a (stored, upper-case) tag name matches the mask,
/// its pieces upper-cased.
fn name_matches(mask: &str, wildcard: &str, name: &str) -> bool {
    let pieces: Vec<String> = mask.split(wildcard).map(str::to_uppercase).collect();
    let joined = pieces.join("\u{0}");
    Glob::new(&joined, Some("\u{0}")).matches(name.as_bytes())
}

impl Naive {
    /// Copies every thing's identity, owner and tags.
    pub fn build(pop: &[GenThing]) -> Self {
        let mut out = Naive {
            names: HashMap::new(),
            tag_names: Vec::new(),
            key_name: None,
            things: Vec::with_capacity(pop.len()),
        };
        for g in pop {
            let tags = g
                .tags
                .iter()
                .map(|t| (out.intern(&t.name), t.value.clone()))
                .collect();
            out.things.push(NaiveThing {
                key: ThingKey::of(g.jid.bare().clone()),
                owner: g.owner.clone(),
                tags,
            });
        }
        out
    }

    fn intern(&mut self, name: &TagName) -> u16 {
        if let Some(&n) = self.names.get(name.as_str()) {
            return n;
        }
        let n = u16::try_from(self.tag_names.len()).expect("fewer than 65536 tag names");
        self.names.insert(name.as_str().to_owned(), n);
        self.tag_names.push(name.clone());
        if name.is_key() {
            self.key_name = Some(n);
        }
        n
    }

    /// Thing `i` as a search result: owned copies of its owner, key and tags
    /// except `KEY`.
    fn found(&self, i: u32) -> FoundThing {
        let t = &self.things[i as usize];
        FoundThing {
            owner: t.owner.clone(),
            key: t.key.clone(),
            tags: t
                .tags
                .iter()
                .filter(|(n, _)| Some(*n) != self.key_name)
                .map(|(n, v)| Tag {
                    name: self.tag_names[*n as usize].clone(),
                    value: v.clone(),
                })
                .collect(),
        }
    }

    /// Compiles a conjunction; `None` when it can match nothing (an unknown tag
    /// name, or `KEY`, which is never searchable).
    pub fn compile(&self, ops: &[Operator]) -> Option<Vec<Pred>> {
        ops.iter()
            .map(|op| {
                if let Operator::AnyName(mask, _) = op {
                    let mut ids = self.tag_names.iter().enumerate().filter_map(|(i, n)| {
                        (!n.is_key() && name_matches(mask.source(), mask.wildcard(), n.as_str()))
                            .then_some(i as u16)
                    });
                    return Some(Pred {
                        name: ids.next()?,
                        alts: ids.collect(),
                        test: test_of(op),
                    });
                }
                let name = op.name().as_str();
                if name == "KEY" {
                    return None;
                }
                Some(Pred {
                    name: *self.names.get(name)?,
                    alts: Vec::new(),
                    test: test_of(op),
                })
            })
            .collect()
    }

    fn matching<'a>(&'a self, preds: &'a [Pred]) -> impl Iterator<Item = u32> + 'a {
        self.things
            .iter()
            .enumerate()
            .filter(move |(_, t)| preds.iter().all(|p| p.matches(t)))
            .map(|(i, _)| i as u32)
    }

    /// The first page, in full, and whether a further match exists: scans in
    /// thing order, stops at match `PAGE + 1`, then builds the page's
    /// [`FoundThing`]s.
    pub fn first_page(&self, ops: &[Operator]) -> SearchResult {
        let Some(preds) = self.compile(ops) else {
            return SearchResult {
                things: Vec::new(),
                more: false,
            };
        };
        let mut ids: Vec<u32> = self.matching(&preds).take(PAGE + 1).collect();
        let more = ids.len() > PAGE;
        ids.truncate(PAGE);
        SearchResult {
            things: ids.into_iter().map(|i| self.found(i)).collect(),
            more,
        }
    }

    /// The first page as thing numbers plus `more`, each thing's JID read (as a
    /// caller identifying the page would): the scan without building the page.
    pub fn first_page_ids(&self, ops: &[Operator]) -> (Vec<u32>, bool, usize) {
        let Some(preds) = self.compile(ops) else {
            return (Vec::new(), false, 0);
        };
        let mut ids: Vec<u32> = self.matching(&preds).take(PAGE + 1).collect();
        let more = ids.len() > PAGE;
        ids.truncate(PAGE);
        let jid_bytes = ids
            .iter()
            .map(|&i| self.things[i as usize].key.jid.as_str().len())
            .sum();
        (ids, more, jid_bytes)
    }

    /// How many things match in total (a full scan).
    pub fn count(&self, ops: &[Operator]) -> u64 {
        match self.compile(ops) {
            Some(preds) => self.matching(&preds).count() as u64,
            None => 0,
        }
    }
}

/// Sanity checks of the wildcard matcher, run by the report before it trusts it.
pub fn self_check() {
    let cases: [(&str, Option<&str>, &str, bool); 12] = [
        ("39487*", Some("*"), "394872", true),
        ("39487*", Some("*"), "39487", true),
        ("39487*", Some("*"), "3948", false),
        ("39487*", Some("*"), "x39487", false),
        ("*1234*", Some("*"), "1234", true),
        ("*1234*", Some("*"), "x1234y", true),
        ("*1234*", Some("*"), "123", false),
        ("a*b*a", Some("*"), "aba", true),
        ("a*b*a", Some("*"), "aa", false),
        ("a*b", None, "a*b", true),
        ("a*b", None, "axb", false),
        ("x??y", Some("??"), "x-y", true),
    ];
    for (mask, w, v, want) in cases {
        assert_eq!(
            Glob::new(mask, w).matches(v.as_bytes()),
            want,
            "naive glob {mask:?} on {v:?}"
        );
    }
}
