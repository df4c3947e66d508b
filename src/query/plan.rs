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
//! 4. **Intersect** the exact sets smallest first, with `searchable`. With no
//!    exact set at all, the driver is the smallest presence bitmap of the operators'
//!    tags.
//! 5. **Verify lazily.** Walk the driver in id order, check the remaining operators
//!    against each candidate's record, and stop at `offset + limit + 1` hits. A wide
//!    range that matches 3% of things costs about `(offset + limit) / 0.03` checks,
//!    not a bitmap of 30,000 ids.
//!
//! Negated operators (`NEq`, `NRange`) are always per-candidate checks: their sets
//! are nearly whole tags, useless for narrowing.

use std::borrow::Cow;
use std::ops::Bound;

use roaring::{MultiOps, RoaringBitmap};

use crate::index::names::NameId;
use crate::index::postings::{Postings, ValueMap};
use crate::index::{Index, TagIndex};
use crate::query::operator::{Interval, Operator, Selection, ValueKind};
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
}

impl Bound_<'_> {
    fn present(&self) -> &RoaringBitmap {
        match self.op.kind() {
            ValueKind::Str => &self.tag.str_present,
            ValueKind::Num => &self.tag.num_present,
        }
    }

    fn check(&self, value: Option<ValueRef<'_>>) -> bool {
        match value {
            Some(ValueRef::Str(s)) => self.op.matches_str(s),
            Some(ValueRef::Num(n)) => self.op.matches_num(n),
            None => false,
        }
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
            out.extend(singles);
            Mat::Exact(Exact::Set(Cow::Owned(out)))
        }
    }
}

fn interval_str<'a>(
    map: &'a ValueMap<Box<str>>,
    i: &Interval<'a, str>,
    budget: usize,
    max_ids: u64,
) -> Mat<'a> {
    if let (Bound::Included(a), Bound::Included(b)) = (i.lo, i.hi) {
        if a == b {
            return map.get(a).map_or(Mat::Nothing, |p| Mat::Exact(p.into()));
        }
    }
    union_keys(map.range(i.lo, i.hi), budget, max_ids, |_| true)
}

fn interval_num<'a>(
    map: &'a ValueMap<Number>,
    i: &Interval<'a, Number>,
    budget: usize,
    max_ids: u64,
) -> Mat<'a> {
    if let (Bound::Included(a), Bound::Included(b)) = (i.lo, i.hi) {
        if a == b {
            return map.get(a).map_or(Mat::Nothing, |p| Mat::Exact(p.into()));
        }
    }
    union_keys(map.range(i.lo, i.hi), budget, max_ids, |_| true)
}

fn is_closed<T: ?Sized>(i: &Interval<'_, T>) -> bool {
    !matches!(i.lo, Bound::Unbounded) && !matches!(i.hi, Bound::Unbounded)
}

/// Materialises one operator, `cheap_only` limiting it to single probes.
fn materialize<'a>(b: &Bound_<'a>, cheap_only: bool, max_ids: u64) -> Mat<'a> {
    let budget = |n: usize| if cheap_only { 0 } else { n };
    match b.op.selection() {
        Selection::StrIn(i) => {
            let point = matches!((i.lo, i.hi), (Bound::Included(a), Bound::Included(c)) if a == c);
            if cheap_only && !point {
                return Mat::Verify;
            }
            interval_str(&b.tag.strs, &i, budget(RANGE_KEY_BUDGET), max_ids)
        }
        Selection::NumIn(i) => {
            let point = matches!((i.lo, i.hi), (Bound::Included(a), Bound::Included(c)) if a == c);
            if cheap_only && !point {
                return Mat::Verify;
            }
            interval_num(&b.tag.nums, &i, budget(RANGE_KEY_BUDGET), max_ids)
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
            let prefix = m.prefix();
            let keys = b
                .tag
                .strs
                .range::<str>(Bound::Included(prefix), Bound::Unbounded)
                .take_while(|(k, _)| k.starts_with(prefix));
            union_keys(keys, MASK_KEY_BUDGET, max_ids, |k| m.is_match(k))
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
        let Some(name) = index.names.get(op.name().as_str()) else {
            return Page::empty();
        };
        if index.is_key(name) {
            return Page::empty();
        }
        let Some(tag) = index.tag(name) else {
            return Page::empty();
        };
        let b = Bound_ { op, name, tag };
        if b.present().is_empty() {
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
        Selection::StrIn(iv) if is_closed(&iv) => 1,
        Selection::NumIn(iv) if is_closed(&iv) => 1,
        _ => 2,
    });
    let mut smallest = exact.iter().map(Exact::len).min().unwrap_or(u64::MAX);
    for i in pending {
        if smallest <= SMALL_DRIVER {
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
            .map(|&i| bound[i].present())
            .min_by_key(|p| p.len())
            .expect("at least one operator");
        if best.len() < searchable.len() / 4 {
            Cow::Borrowed(best)
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
    let (driver, check_searchable) = if std::ptr::eq(driver.as_ref(), searchable) {
        (driver, false)
    } else if searchable.len() < driver.len() / 2 {
        (Cow::Owned(driver.as_ref() & searchable), false)
    } else {
        (driver, true)
    };

    // 5. Verify lazily, in id order.
    let checks: Vec<&Bound_<'_>> = verify.iter().map(|&i| &bound[i]).collect();
    let want = u64::from(offset) + u64::from(limit);
    let mut seen = 0u64;
    let mut page = Page::empty();
    let mut ids = driver.iter();
    let mut batch = Vec::with_capacity(BATCH);
    'scan: loop {
        batch.clear();
        batch.extend(ids.by_ref().take(if checks.is_empty() { 1 } else { BATCH }));
        if batch.is_empty() {
            break;
        }
        if !checks.is_empty() {
            // Touch every record of the batch first: the loads are independent, so
            // the CPU overlaps their cache misses instead of taking them one by one.
            std::hint::black_box(records.touch(&batch));
        }
        for &id in &batch {
            if check_searchable && !searchable.contains(id) {
                continue;
            }
            if !checks.is_empty() {
                let Some(view) = records.view(crate::thing::ThingId(id)) else {
                    continue;
                };
                if !checks.iter().all(|c| c.check(view.get(c.name))) {
                    continue;
                }
            }
            if seen >= want {
                page.more = true;
                break 'scan;
            }
            if seen >= u64::from(offset) {
                page.ids.push(id);
            }
            seen += 1;
        }
    }
    page
}
