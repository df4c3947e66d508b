//! Search execution: operators -> candidate bitmaps -> one ordered page.
//!
//! A search is the intersection of its operators with the `searchable` bitmap,
//! returned in thing-id order, `offset` things skipped, at most `limit` returned,
//! and `more` telling whether another match exists. Only `offset + limit + 1`
//! matches are ever needed, which the plan exploits:
//!
//! 1. **Resolve.** An operator on a tag no thing has (as that value type), or on
//!    `KEY`, makes the whole result empty at once.
//! 2. **Exact sets for free.** An equality (`strEq`, `numEq`, a mask without a
//!    wildcard) is one dictionary probe and yields its posting list as is.
//! 3. **Bounded materialisation.** If no free set is already tiny, each range or
//!    mask is walked over the sorted dictionary (a mask from its literal prefix) up
//!    to a budget of keys; if it finishes within budget its postings are unioned
//!    into a bitmap. A range over many distinct values (coordinates, serial numbers)
//!    exceeds the budget and is never turned into a union of thousands of postings:
//!    it becomes a per-candidate check instead.
//! 4. **Intersect** the exact sets smallest first. `searchable` is a bit test per
//!    candidate, unless it would reject most of the driver (then it is
//!    intersected too). With no exact set at all, the driver is `searchable` (or a
//!    much smaller presence bitmap of an operator's tag).
//! 5. **Verify lazily.** Walk the driver in id order and check the remaining
//!    operators per candidate, cheapest probe first: a dense numeric column (one
//!    array read), an `NEq` as two bit tests, else the candidate's record (touched
//!    32 at a time so cache misses overlap). Stop at `offset + limit + 1` hits. A
//!    wide range that matches 3% of things costs about `(offset + limit) / 0.03`
//!    checks, not a bitmap of 30,000 ids.
//! 6. **Escalate** a walk that stays unproductive (few hits after 1,024
//!    candidates, e.g. two wide ranges that rarely hold together): materialise the
//!    checked ranges and masks, narrowest estimate first, with a key budget no
//!    larger than the candidates the walk would still need, and continue from
//!    where it stopped over the narrowed driver.
//!
//! Negated operators (`NEq`, `NRange`) are never materialised: their sets are
//! nearly whole tags, useless for narrowing.
//!
//! `strRegEx` is planned like a mask: walked from the literal prefix read off
//! its DFA (a pattern matching one string is an equality). `nameWildcard`
//! ([`Operator::AnyName`]) resolves its mask against the name dictionary (never
//! the things): one matching tag is an ordinary operator; several are one
//! operator over all of them, materialised as the union of the per-tag sets (if
//! every one fits its budget) or checked per candidate as "any of the tags".

use std::borrow::Cow;
use std::ops::Bound;

use roaring::{MultiOps, RoaringBitmap};

use crate::index::names::NameId;
use crate::index::postings::{Postings, ValueMap};
use crate::index::{Index, TagIndex};
use crate::query::operator::{Interval, Operator, Selection, ValueKind};
use crate::query::pattern::{Mask, Regex};
use crate::records::{Records, ValueRef};
use crate::tag::Number;

/// Most dictionary keys a range may cover and still be unioned into a bitmap.
pub const RANGE_KEY_BUDGET: usize = 128;
/// Most dictionary keys a mask may visit (from its prefix) and still be unioned.
pub const MASK_KEY_BUDGET: usize = 2048;
/// Candidates whose records are touched together before being checked.
const BATCH: usize = 32;
/// Once the smallest exact set is this small, everything else is verified per
/// candidate instead of materialised.
pub const SMALL_DRIVER: u64 = 512;

/// The answer to a search: matching thing ids in order, and whether more exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Matching ids, ascending, after `offset`, at most `limit`.
    pub ids: Vec<u32>,
    /// Whether at least one more match follows the page.
    pub more: bool,
}

impl Page {
    fn empty() -> Self {
        Page {
            ids: Vec::new(),
            more: false,
        }
    }
}

/// An exact candidate set.
enum Exact<'a> {
    One(u32),
    Set(Cow<'a, RoaringBitmap>),
}

impl Exact<'_> {
    fn len(&self) -> u64 {
        match self {
            Exact::One(_) => 1,
            Exact::Set(b) => b.len(),
        }
    }
}

impl<'a> From<Postings<'a>> for Exact<'a> {
    fn from(p: Postings<'a>) -> Self {
        match p {
            Postings::One(id) => Exact::One(id),
            Postings::Many(b) => Exact::Set(Cow::Borrowed(b)),
        }
    }
}

/// One operator bound to its tag index.
struct Bound_<'a> {
    op: &'a Operator,
    name: NameId,
    tag: &'a TagIndex,
    /// `nameWildcard` over several tags: the other matching tags (a thing
    /// matches when this tag or any of these satisfies `op`), none otherwise.
    alts: Vec<Bound_<'a>>,
}

impl<'a> Bound_<'a> {
    fn new(op: &'a Operator, name: NameId, tag: &'a TagIndex) -> Self {
        Bound_ {
            op,
            name,
            tag,
            alts: Vec::new(),
        }
    }

    /// The presence bitmap of this tag alone, for the operator's value type.
    fn own_present(&self) -> &RoaringBitmap {
        match self.op.kind() {
            ValueKind::Str => &self.tag.str_present,
            ValueKind::Num => &self.tag.num_present,
        }
    }

    /// How many things have (any of) the tag(s) with the operator's value
    /// type: exact for one tag, an upper bound (no union built) for several.
    fn present_len(&self) -> u64 {
        self.own_present().len() + self.alts.iter().map(|a| a.own_present().len()).sum::<u64>()
    }

    /// Things having (any of) the tag(s) with the operator's value type (for
    /// several tags, their union, built here).
    fn present(&self) -> Cow<'a, RoaringBitmap> {
        let own = match self.op.kind() {
            ValueKind::Str => &self.tag.str_present,
            ValueKind::Num => &self.tag.num_present,
        };
        if self.alts.is_empty() {
            return Cow::Borrowed(own);
        }
        let mut any = own.clone();
        for a in &self.alts {
            any |= a.own_present();
        }
        Cow::Owned(any)
    }

    /// This tag without its alternatives, then the alternatives.
    fn parts(&self) -> impl Iterator<Item = Bound_<'a>> + '_ {
        std::iter::once(Bound_::new(self.op, self.name, self.tag))
            .chain(self.alts.iter().map(|b| Bound_::new(b.op, b.name, b.tag)))
    }

    fn check(&self, value: Option<ValueRef<'_>>) -> bool {
        match value {
            Some(ValueRef::Str(s)) => self.op.matches_str(s),
            Some(ValueRef::Num(n)) => self.op.matches_num(n),
            None => false,
        }
    }
}

/// How one remaining operator is checked against a candidate, cheapest first.
enum Probe<'b, 'a> {
    /// One read of a dense numeric column, compared with precomputed bounds.
    Column(&'a [f64], NumTest),
    /// `NEq`: has the tag (unchecked when every live thing has it), and is not
    /// in the value's posting list: at most two bit tests.
    NotIn(Option<&'a RoaringBitmap>, Option<Postings<'a>>),
    /// Decode the candidate's record.
    Record(&'b Bound_<'a>),
    /// `nameWildcard` over several tags: any of these.
    Any(Vec<Probe<'b, 'a>>),
}

impl<'b, 'a> Probe<'b, 'a> {
    fn new(b: &'b Bound_<'a>, live: u64) -> Self {
        if b.alts.is_empty() {
            return Probe::single(b, live);
        }
        let mut any: Vec<Probe<'b, 'a>> = std::iter::once(Probe::single(b, live))
            .chain(b.alts.iter().map(|a| Probe::single(a, live)))
            .collect();
        any.sort_by_key(Probe::rank);
        Probe::Any(any)
    }

    /// The probe of one tag (ignoring `alts`).
    fn single(b: &'b Bound_<'a>, live: u64) -> Self {
        let present = |p: &'a RoaringBitmap| (p.len() != live).then_some(p);
        match b.op.selection() {
            Selection::NumIn(i) if !b.tag.num_column.is_empty() => {
                return Probe::Column(&b.tag.num_column, NumTest::new(&i, false));
            }
            Selection::NumOut(i) if !b.tag.num_column.is_empty() => {
                return Probe::Column(&b.tag.num_column, NumTest::new(&i, true));
            }
            _ => {}
        }
        match b.op.selection() {
            Selection::StrOut(Interval {
                lo: Bound::Included(x),
                hi: Bound::Included(y),
            }) if x == y => Probe::NotIn(present(&b.tag.str_present), b.tag.strs.get(x)),
            Selection::NumOut(Interval {
                lo: Bound::Included(x),
                hi: Bound::Included(y),
            }) if x == y => Probe::NotIn(present(&b.tag.num_present), b.tag.nums.get(x)),
            _ => Probe::Record(b),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Probe::Column(..) => 0,
            Probe::NotIn(..) => 1,
            Probe::Record(_) => 2,
            Probe::Any(any) => any.iter().map(Probe::rank).max().unwrap_or(0),
        }
    }

    /// The columns of a probe that is only column reads: one for a column,
    /// several (any of which may pass) for `nameWildcard` over column tags.
    fn column_group(&self) -> Option<ColumnGroup<'a>> {
        match self {
            Probe::Column(c, t) => Some(vec![(*c, *t)]),
            Probe::Any(any) => {
                let mut out = Vec::new();
                for p in any {
                    out.extend(p.column_group()?);
                }
                Some(out)
            }
            Probe::NotIn(..) | Probe::Record(_) => None,
        }
    }

    /// Whether checking needs the candidate's record.
    fn needs_record(&self) -> bool {
        match self {
            Probe::Record(_) => true,
            Probe::Any(any) => any.iter().any(Probe::needs_record),
            Probe::Column(..) | Probe::NotIn(..) => false,
        }
    }

    fn check(
        &self,
        id: u32,
        view: &mut impl FnMut() -> Option<crate::records::RecordView<'a>>,
    ) -> bool {
        match self {
            Probe::Column(col, test) => col.get(id as usize).is_some_and(|&v| test.check(v)),
            Probe::NotIn(present, except) => {
                present.is_none_or(|p| p.contains(id))
                    && match except {
                        None => true,
                        Some(Postings::One(x)) => *x != id,
                        Some(Postings::Many(set)) => !set.contains(id),
                    }
            }
            Probe::Record(b) => view().is_some_and(|v| b.check(v.get(b.name))),
            Probe::Any(any) => any.iter().any(|p| p.check(id, view)),
        }
    }
}

/// Columns with their tests, any of which may pass (one for a plain column
/// check).
type ColumnGroup<'a> = Vec<(&'a [f64], NumTest)>;

/// A numeric interval test on raw column values (`NaN` = no value: never
/// matches, not even a negated test).
#[derive(Debug, Clone, Copy)]
struct NumTest {
    lo: f64,
    lo_inc: bool,
    hi: f64,
    hi_inc: bool,
    /// Match values outside the interval instead (`NEq`, `NRange`).
    out: bool,
}

impl NumTest {
    fn new(i: &Interval<'_, Number>, out: bool) -> Self {
        let (lo, lo_inc) = match i.lo {
            Bound::Included(v) => (v.get(), true),
            Bound::Excluded(v) => (v.get(), false),
            Bound::Unbounded => (f64::NEG_INFINITY, true),
        };
        let (hi, hi_inc) = match i.hi {
            Bound::Included(v) => (v.get(), true),
            Bound::Excluded(v) => (v.get(), false),
            Bound::Unbounded => (f64::INFINITY, true),
        };
        NumTest {
            lo,
            lo_inc,
            hi,
            hi_inc,
            out,
        }
    }

    #[inline]
    fn check(&self, v: f64) -> bool {
        if v.is_nan() {
            return false;
        }
        let above = if self.lo_inc {
            v >= self.lo
        } else {
            v > self.lo
        };
        let below = if self.hi_inc {
            v <= self.hi
        } else {
            v < self.hi
        };
        (above && below) != self.out
    }
}

/// What materialising an operator gave.
enum Mat<'a> {
    /// No thing matches: the search is empty.
    Nothing,
    /// Exactly these things match.
    Exact(Exact<'a>),
    /// Too wide to materialise: check per candidate.
    Verify,
}

/// Unions the postings of the accepted keys, giving up (`Verify`) after visiting
/// `budget` keys or once the union would exceed `max_ids` things: a set much
/// larger than the current driver narrows nothing and costs a big union.
fn union_keys<'a, K: Ord + 'a>(
    keys: impl Iterator<Item = (&'a K, Postings<'a>)>,
    budget: usize,
    max_ids: u64,
    mut accept: impl FnMut(&K) -> bool,
) -> Mat<'a> {
    let mut hits: Vec<Postings<'a>> = Vec::new();
    let mut total = 0u64;
    for (visited, (k, p)) in keys.enumerate() {
        if visited >= budget {
            return Mat::Verify;
        }
        if accept(k) {
            total += p.len();
            if total > max_ids {
                return Mat::Verify;
            }
            hits.push(p);
        }
    }
    union_postings(hits)
}

/// The union of some posting lists (`Nothing` when there are none).
fn union_postings(hits: Vec<Postings<'_>>) -> Mat<'_> {
    match hits.len() {
        0 => Mat::Nothing,
        1 => Mat::Exact(hits[0].into()),
        _ => {
            let mut singles = Vec::new();
            let mut sets = Vec::new();
            for p in &hits {
                match p {
                    Postings::One(id) => singles.push(*id),
                    Postings::Many(b) => sets.push(*b),
                }
            }
            let mut out = sets.into_iter().union();
            singles.sort_unstable();
            match RoaringBitmap::from_sorted_iter(singles.iter().copied()) {
                Ok(b) => out |= b,
                Err(_) => out.extend(singles),
            }
            Mat::Exact(Exact::Set(Cow::Owned(out)))
        }
    }
}

/// Materialises the keys of `map` inside interval `i` (one probe for a point).
fn interval<'a, K, Q>(
    map: &'a ValueMap<K>,
    i: &Interval<'a, Q>,
    budget: usize,
    max_ids: u64,
) -> Mat<'a>
where
    K: Ord + std::borrow::Borrow<Q>,
    Q: Ord + ?Sized,
{
    if let (Bound::Included(a), Bound::Included(b)) = (i.lo, i.hi) {
        if a == b {
            return map.get(a).map_or(Mat::Nothing, |p| Mat::Exact(p.into()));
        }
    }
    union_keys(map.range(i.lo, i.hi), budget, max_ids, |_| true)
}

/// Materialises a mask or regular expression: walks the keys starting with its
/// literal prefix and unions those it accepts.
fn prefix_keys<'a>(
    tag: &'a TagIndex,
    prefix: &'a str,
    accept: impl Fn(&str) -> bool,
    budget: usize,
    max_ids: u64,
) -> Mat<'a> {
    let keys = tag
        .strs
        .range::<str>(Bound::Included(prefix), Bound::Unbounded)
        .take_while(|(k, _)| k.starts_with(prefix));
    union_keys(keys, budget, max_ids, |k| accept(k))
}

/// Materialises a mask.
fn mask_keys<'a>(tag: &'a TagIndex, m: &'a Mask, budget: usize, max_ids: u64) -> Mat<'a> {
    prefix_keys(tag, m.prefix(), |k| m.is_match(k), budget, max_ids)
}

/// Materialises a regular expression.
fn regex_keys<'a>(tag: &'a TagIndex, r: &'a Regex, budget: usize, max_ids: u64) -> Mat<'a> {
    prefix_keys(tag, r.prefix(), |k| r.is_match(k), budget, max_ids)
}

/// Materialises an operator over several tags (`nameWildcard`): the union of
/// each tag's set, `Verify` as soon as one tag's is.
fn union_parts<'a>(
    b: &Bound_<'a>,
    max_ids: u64,
    mut one: impl FnMut(&Bound_<'a>, u64) -> Mat<'a>,
) -> Mat<'a> {
    let mut sets: Vec<Exact<'a>> = Vec::new();
    let mut total = 0u64;
    for part in b.parts() {
        match one(&part, max_ids.saturating_sub(total)) {
            Mat::Nothing => {}
            Mat::Verify => return Mat::Verify,
            Mat::Exact(e) => {
                total += e.len();
                if total > max_ids {
                    return Mat::Verify;
                }
                sets.push(e);
            }
        }
    }
    if sets.len() <= 1 {
        return sets.pop().map_or(Mat::Nothing, Mat::Exact);
    }
    let mut out = RoaringBitmap::new();
    for e in sets {
        match e {
            Exact::One(id) => {
                out.insert(id);
            }
            Exact::Set(s) => out |= s.as_ref(),
        }
    }
    Mat::Exact(Exact::Set(Cow::Owned(out)))
}

fn is_closed<T: ?Sized>(i: &Interval<'_, T>) -> bool {
    !matches!(i.lo, Bound::Unbounded) && !matches!(i.hi, Bound::Unbounded)
}

/// Materialises one operator, `cheap_only` limiting it to single probes.
fn materialize<'a>(b: &Bound_<'a>, cheap_only: bool, max_ids: u64) -> Mat<'a> {
    if !b.alts.is_empty() {
        return union_parts(b, max_ids, |p, max| materialize(p, cheap_only, max));
    }
    let budget = |n: usize| if cheap_only { 0 } else { n };
    match b.op.selection() {
        Selection::StrIn(i) => {
            let point = matches!((i.lo, i.hi), (Bound::Included(a), Bound::Included(c)) if a == c);
            if cheap_only && !point {
                return Mat::Verify;
            }
            interval(&b.tag.strs, &i, budget(RANGE_KEY_BUDGET), max_ids)
        }
        Selection::NumIn(i) => {
            let point = matches!((i.lo, i.hi), (Bound::Included(a), Bound::Included(c)) if a == c);
            if cheap_only && !point {
                return Mat::Verify;
            }
            interval(&b.tag.nums, &i, budget(RANGE_KEY_BUDGET), max_ids)
        }
        Selection::StrMask(m) => {
            if m.is_literal() {
                return b
                    .tag
                    .strs
                    .get(m.source())
                    .map_or(Mat::Nothing, |p| Mat::Exact(p.into()));
            }
            if cheap_only || m.prefix().is_empty() && b.tag.strs.distinct() > MASK_KEY_BUDGET {
                return Mat::Verify;
            }
            mask_keys(b.tag, m, MASK_KEY_BUDGET, max_ids)
        }
        Selection::StrRegex(r) => {
            if let Some(value) = r.literal() {
                return b
                    .tag
                    .strs
                    .get(value)
                    .map_or(Mat::Nothing, |p| Mat::Exact(p.into()));
            }
            if cheap_only || r.prefix().is_empty() && b.tag.strs.distinct() > MASK_KEY_BUDGET {
                return Mat::Verify;
            }
            regex_keys(b.tag, r, MASK_KEY_BUDGET, max_ids)
        }
        Selection::StrOut(_) | Selection::NumOut(_) => Mat::Verify,
    }
}

/// Runs a search over the indexes and records.
pub fn execute(
    index: &Index,
    records: &Records,
    ops: &[Operator],
    offset: u32,
    limit: u32,
) -> Page {
    // 1. Resolve.
    let mut bound = Vec::with_capacity(ops.len());
    for op in ops {
        let (masks, inner) = op.name_masks();
        if !masks.is_empty() {
            // `nameWildcard`: every tag whose name matches, from the name
            // dictionary; `KEY` never matches.
            let mut parts: Vec<Bound_<'_>> = index
                .names
                .matching(|n| masks.iter().all(|m| m.is_match(n)))
                .filter(|&name| !index.is_key(name))
                .filter_map(|name| Some(Bound_::new(inner, name, index.tag(name)?)))
                .filter(|b| !b.own_present().is_empty())
                .collect();
            if parts.is_empty() {
                return Page::empty();
            }
            let mut first = parts.remove(0);
            first.alts = parts;
            bound.push(first);
            continue;
        }
        let Some(name) = index.names.get(op.name().as_str()) else {
            return Page::empty();
        };
        if index.is_key(name) {
            return Page::empty();
        }
        let Some(tag) = index.tag(name) else {
            return Page::empty();
        };
        let b = Bound_::new(op, name, tag);
        if b.own_present().is_empty() {
            return Page::empty();
        }
        bound.push(b);
    }
    if bound.is_empty() {
        return Page::empty();
    }

    // 2. Free exact sets, then 3. bounded materialisation unless already small.
    let mut exact: Vec<Exact<'_>> = Vec::new();
    let mut verify: Vec<usize> = Vec::new();
    let mut pending: Vec<usize> = Vec::new();
    for (i, b) in bound.iter().enumerate() {
        match materialize(b, true, u64::MAX) {
            Mat::Nothing => return Page::empty(),
            Mat::Exact(e) => exact.push(e),
            Mat::Verify => pending.push(i),
        }
    }
    // Likely-narrow operators first: masks with a literal prefix, then bounded
    // ranges, then half-open ranges.
    pending.sort_by_key(|&i| match bound[i].op.selection() {
        Selection::StrMask(m) if !m.prefix().is_empty() => 0,
        Selection::StrRegex(r) if !r.prefix().is_empty() => 0,
        Selection::StrIn(iv) if is_closed(&iv) => 1,
        Selection::NumIn(iv) if is_closed(&iv) => 1,
        _ => 2,
    });
    let mut smallest = exact.iter().map(Exact::len).min().unwrap_or(u64::MAX);
    for i in pending {
        // Already tiny, or a numeric range that surely covers more keys than the
        // budget (no point walking it): check per candidate. An operator over
        // several tags (`nameWildcard`) is checked per candidate first too: a
        // range lookup and a union per tag cost more than a short walk, and an
        // unproductive walk escalates to exactly that union.
        if smallest <= SMALL_DRIVER
            || !bound[i].alts.is_empty()
            || estimated_keys(&bound[i]).is_some_and(|k| k > 2 * RANGE_KEY_BUDGET as u64)
        {
            verify.push(i);
            continue;
        }
        match materialize(&bound[i], false, smallest.saturating_mul(4)) {
            Mat::Nothing => return Page::empty(),
            Mat::Exact(e) => {
                smallest = smallest.min(e.len());
                exact.push(e);
            }
            Mat::Verify => verify.push(i),
        }
    }

    // 4. Intersect the exact sets, smallest first. `searchable` usually holds
    // most things, so it is checked per candidate (a bit test) unless it would
    // reject most of the driver.
    exact.sort_by_key(Exact::len);
    let searchable = &index.searchable;
    let driver: Cow<'_, RoaringBitmap> = if exact.is_empty() {
        // Every check rejects things lacking its tag, so presence only narrows;
        // use it only when it is much smaller than `searchable`.
        let best = verify
            .iter()
            .map(|&i| &bound[i])
            .min_by_key(|b| b.present_len())
            .expect("at least one operator");
        if best.present_len() < searchable.len() / 4 {
            best.present()
        } else {
            Cow::Borrowed(searchable)
        }
    } else {
        let mut it = exact.into_iter();
        match it.next().expect("non-empty") {
            Exact::One(id) => {
                let hit = it.all(|e| match e {
                    Exact::One(x) => x == id,
                    Exact::Set(s) => s.contains(id),
                });
                let mut b = RoaringBitmap::new();
                if hit {
                    b.insert(id);
                }
                Cow::Owned(b)
            }
            Exact::Set(first) => {
                let rest: Vec<Exact<'_>> = it.collect();
                if rest.is_empty() {
                    first
                } else {
                    let mut acc = first.into_owned();
                    for e in rest {
                        match e {
                            Exact::One(id) => {
                                let keep = acc.contains(id);
                                acc.clear();
                                if keep {
                                    acc.insert(id);
                                }
                            }
                            Exact::Set(s) => acc &= s.as_ref(),
                        }
                        if acc.is_empty() {
                            break;
                        }
                    }
                    Cow::Owned(acc)
                }
            }
        }
    };
    // Every posting list holds live things only, so when every live thing is
    // searchable there is nothing to check.
    let all_searchable = searchable.len() == records.len() as u64;
    let (driver, check_searchable) = if all_searchable || std::ptr::eq(driver.as_ref(), searchable)
    {
        (driver, false)
    } else if searchable.len() < driver.len() / 2 {
        (Cow::Owned(driver.as_ref() & searchable), false)
    } else {
        (driver, true)
    };

    // 5. Verify lazily, in id order. If the walk turns out unproductive (few hits
    // after many candidates: several wide operators that rarely hold together),
    // materialise the verified ranges and masks with a much larger budget and go
    // on from where the walk stopped, over the narrowed driver.
    let mut checks: Vec<&Bound_<'_>> = verify.iter().map(|&i| &bound[i]).collect();
    let mut scan = Scan {
        records,
        searchable,
        check_searchable,
        want: u64::from(offset) + u64::from(limit),
        offset: u64::from(offset),
        seen: 0,
        page: Page::empty(),
    };
    match scan.run(&driver, 0, &checks, Some(ESCALATE_AFTER)) {
        Walk::Done => return scan.page,
        // Productive enough (deep offsets): just go on.
        Walk::Paused(next) if scan.seen * 64 >= ESCALATE_AFTER as u64 => {
            scan.run(&driver, next, &checks, None);
        }
        Walk::Paused(next) => {
            // Walking more keys than candidates remain would cost more than
            // checking them.
            // Nor more than the walk probably still needs, judging by its hit rate
            // so far.
            let remaining = driver.len().saturating_sub(driver.rank(next));
            // (No hit at all says nothing: the rest of the driver may be needed.)
            let needed = match scan.seen {
                0 => remaining,
                seen => (scan.want + 1).saturating_sub(seen) * ESCALATE_AFTER as u64 / seen,
            };
            let budget = ESCALATED_KEY_BUDGET.min(remaining.min(needed) as usize);
            let mut narrowed: Option<RoaringBitmap> = None;
            // Narrowest-looking first; numeric ranges estimated far over budget
            // are not walked at all.
            checks.sort_by_key(|c| estimated_keys(c).unwrap_or(u64::MAX - 1));
            checks.retain(|c| {
                if narrowed.as_ref().is_some_and(|n| n.len() <= SMALL_DRIVER) {
                    return true;
                }
                // Once narrowed, walking more keys than candidates is not worth it.
                let budget = narrowed
                    .as_ref()
                    .map_or(budget, |n| budget.min(n.len() as usize));
                if estimated_keys(c).is_some_and(|k| k > 2 * budget as u64) {
                    return true;
                }
                match escalate(c, budget) {
                    Mat::Nothing => {
                        narrowed = Some(RoaringBitmap::new());
                        false
                    }
                    Mat::Exact(e) => {
                        let set = match e {
                            Exact::One(id) => std::iter::once(id).collect(),
                            Exact::Set(s) => s.into_owned(),
                        };
                        narrowed = Some(match narrowed.take() {
                            None => set & driver.as_ref(),
                            Some(n) => n & set,
                        });
                        false
                    }
                    Mat::Verify => true,
                }
            });
            match narrowed {
                Some(n) => scan.run(&n, next, &checks, None),
                None => scan.run(&driver, next, &checks, None),
            };
        }
    }
    scan.page
}

/// Candidates walked before an unproductive walk escalates.
const ESCALATE_AFTER: usize = 1024;
/// Key budget for escalated ranges and masks.
const ESCALATED_KEY_BUDGET: usize = 1 << 16;

/// For a numeric range, the number of distinct values it probably covers,
/// assuming values spread evenly between the tag's smallest and largest value.
fn estimated_keys(b: &Bound_<'_>) -> Option<u64> {
    if !b.alts.is_empty() {
        return b
            .parts()
            .map(|p| estimated_keys(&p))
            .try_fold(0u64, |acc, k| Some(acc.saturating_add(k?)));
    }
    let Selection::NumIn(i) = b.op.selection() else {
        return None;
    };
    let (min, max) = b.tag.nums.bounds()?;
    let (min, max) = (min.get(), max.get());
    let lo = match i.lo {
        Bound::Included(v) | Bound::Excluded(v) => v.get().max(min),
        Bound::Unbounded => min,
    };
    let hi = match i.hi {
        Bound::Included(v) | Bound::Excluded(v) => v.get().min(max),
        Bound::Unbounded => max,
    };
    if max <= min {
        return Some(1);
    }
    let share = ((hi - lo) / (max - min)).clamp(0.0, 1.0);
    Some((share * b.tag.nums.distinct() as f64).ceil() as u64)
}

/// Materialises a verified operator with a larger key budget.
fn escalate<'a>(b: &Bound_<'a>, budget: usize) -> Mat<'a> {
    if !b.alts.is_empty() {
        return union_parts(b, u64::MAX, |p, _| escalate(p, budget));
    }
    match b.op.selection() {
        Selection::StrIn(i) => interval(&b.tag.strs, &i, budget, u64::MAX),
        Selection::NumIn(i) => interval(&b.tag.nums, &i, budget, u64::MAX),
        Selection::StrMask(m) if m.prefix().is_empty() && b.tag.strs.distinct() > budget => {
            Mat::Verify
        }
        Selection::StrMask(m) => mask_keys(b.tag, m, budget, u64::MAX),
        Selection::StrRegex(r) if r.prefix().is_empty() && b.tag.strs.distinct() > budget => {
            Mat::Verify
        }
        Selection::StrRegex(r) => regex_keys(b.tag, r, budget, u64::MAX),
        Selection::StrOut(_) | Selection::NumOut(_) => Mat::Verify,
    }
}

/// How a walk ended.
enum Walk {
    /// The page and `more` are known, or the driver is exhausted.
    Done,
    /// Stopped after the examination limit; resume at this id.
    Paused(u32),
}

/// The lazy walk over a driver, collecting the page.
struct Scan<'r> {
    records: &'r Records,
    searchable: &'r RoaringBitmap,
    check_searchable: bool,
    want: u64,
    offset: u64,
    seen: u64,
    page: Page,
}

impl Scan<'_> {
    fn run(
        &mut self,
        driver: &RoaringBitmap,
        from: u32,
        checks: &[&Bound_<'_>],
        max_examined: Option<usize>,
    ) -> Walk {
        let live = self.records.len() as u64;
        let mut probes: Vec<Probe<'_, '_>> = checks.iter().map(|c| Probe::new(c, live)).collect();
        probes.sort_by_key(Probe::rank);
        let needs_records = probes.iter().any(Probe::needs_record);
        let records = self.records;
        let mut ids = driver.iter();
        ids.advance_to(from);
        if !needs_records {
            // Every check a column, or "any of" columns (`nameWildcard`).
            let groups: Option<Vec<ColumnGroup<'_>>> =
                probes.iter().map(Probe::column_group).collect();
            let bound = self.records.id_bound();
            if let Some(groups) = groups
                && driver.len() * 2 >= u64::from(bound)
            {
                return self.block_scan(driver, from, &groups, bound, max_examined);
            }
            // Only columns and bit tests: a plain loop, no batching.
            let limit = max_examined.unwrap_or(usize::MAX);
            for (examined, id) in ids.by_ref().enumerate() {
                if examined >= limit {
                    return Walk::Paused(id);
                }
                if self.check_searchable && !self.searchable.contains(id) {
                    continue;
                }
                if !probes.iter().all(|p| p.check(id, &mut || None)) {
                    continue;
                }
                if self.take(id) {
                    return Walk::Done;
                }
            }
            return Walk::Done;
        }
        let mut batch = Vec::with_capacity(BATCH);
        let mut examined = 0usize;
        loop {
            if max_examined.is_some_and(|m| examined >= m) {
                return match ids.next() {
                    Some(id) => Walk::Paused(id),
                    None => Walk::Done,
                };
            }
            batch.clear();
            batch.extend(ids.by_ref().take(if checks.is_empty() { 1 } else { BATCH }));
            if batch.is_empty() {
                return Walk::Done;
            }
            examined += batch.len();
            if needs_records {
                // Touch every record of the batch first: the loads are independent,
                // so the CPU overlaps their cache misses instead of taking them one
                // by one.
                std::hint::black_box(records.touch(&batch));
            }
            for &id in &batch {
                if self.check_searchable && !self.searchable.contains(id) {
                    continue;
                }
                let mut view = || records.view(crate::thing::ThingId(id));
                if !probes.iter().all(|p| p.check(id, &mut view)) {
                    continue;
                }
                if self.take(id) {
                    return Walk::Done;
                }
            }
        }
    }

    /// Counts one match; true once the page and `more` are known.
    #[inline]
    fn take(&mut self, id: u32) -> bool {
        if self.seen >= self.want {
            self.page.more = true;
            return true;
        }
        if self.seen >= self.offset {
            self.page.ids.push(id);
        }
        self.seen += 1;
        false
    }

    /// The walk when every check is a dense numeric column (or "any of" several
    /// columns, for `nameWildcard`) and the driver holds most ids: test 64
    /// consecutive ids per step against each column into a bit mask (a tight
    /// loop the compiler vectorises; the columns of one group ORed), then look at
    /// the driver only for the ids that passed.
    fn block_scan(
        &mut self,
        driver: &RoaringBitmap,
        from: u32,
        groups: &[ColumnGroup<'_>],
        bound: u32,
        max_examined: Option<usize>,
    ) -> Walk {
        let limit = max_examined.map_or(u64::MAX, |m| m as u64);
        let mut base = from;
        while base < bound {
            if u64::from(base - from) >= limit {
                return Walk::Paused(base);
            }
            let end = bound.min(base.saturating_add(64));
            let width = (end - base) as usize;
            let mut mask = if width == 64 {
                !0u64
            } else {
                (1u64 << width) - 1
            };
            for group in groups {
                // A group passes where any of its columns does.
                let mut m = 0u64;
                for (col, test) in group {
                    let lo = (base as usize).min(col.len());
                    let hi = (end as usize).min(col.len());
                    for (k, &v) in col[lo..hi].iter().enumerate() {
                        m |= u64::from(test.check(v)) << k;
                    }
                }
                mask &= m;
                if mask == 0 {
                    break;
                }
            }
            while mask != 0 {
                let id = base + mask.trailing_zeros();
                mask &= mask - 1;
                if !driver.contains(id) || self.check_searchable && !self.searchable.contains(id) {
                    continue;
                }
                if self.take(id) {
                    return Walk::Done;
                }
            }
            base = end;
        }
        Walk::Done
    }
}
