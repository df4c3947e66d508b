//! A deliberately naive model of the Thing Registry, written from the spec
//! (XEP-0347 3.6-3.17) and the documented rules of `iotdisco`, sharing no logic
//! with the crate: plain vectors and maps, linear scans, its own string/number
//! comparisons and its own `strMask` matcher.
//!
//! Ids mirror the registry's dense thing ids: a new thing takes the most recently
//! freed id (LIFO), else the next never-used one; replacing a thing keeps its id.
//! Search results are in id order.

use std::collections::BTreeMap;

/// A tag value.
#[derive(Clone, Debug)]
pub enum Val {
    /// `<str/>`.
    Str(String),
    /// `<num/>` (never NaN or infinite).
    Num(f64),
}

impl Val {
    pub fn is_empty_str(&self) -> bool {
        matches!(self, Val::Str(s) if s.is_empty())
    }

    /// Claim equality: strings exactly, numbers numerically, never across types.
    pub fn same(&self, other: &Val) -> bool {
        match (self, other) {
            (Val::Str(a), Val::Str(b)) => a == b,
            (Val::Num(a), Val::Num(b)) => a == b,
            _ => false,
        }
    }
}

/// Tags as (upper-case canonical name, value), in record order.
pub type MTags = Vec<(String, Val)>;

/// Identity: bare JID (canonical form) + node attributes (`None` = absent).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MKey {
    pub jid: String,
    pub node: [Option<String>; 3],
}

#[derive(Clone, Debug)]
pub struct MThing {
    pub key: MKey,
    pub resource: Option<String>,
    pub owner: Option<String>,
    pub public: bool,
    pub tags: MTags,
    /// The tag set (`KEY` included) the thing was claimed with when the claim
    /// deleted its `KEY` (the registry keeps a salted digest of it).
    pub claimed_with: Option<MTags>,
}

/// Error kinds, one per stanza error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EKind {
    BadRequest,
    ItemNotFound,
    NotAllowed,
    ResourceConstraint,
    Storage,
    Internal,
}

#[derive(Clone, Debug)]
pub struct Limits {
    pub max_results: u32,
    pub max_ops: usize,
    pub max_tags: usize,
    pub max_things: usize,
    pub max_pending: usize,
    pub timeout_ms: u64,
    pub delete_key: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MRegister {
    Registered,
    AlreadyClaimed { owner: String, public: bool },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MUpdate {
    Updated,
    Disowned,
}

/// Where a notification may go: any of these resources of the thing's bare JID
/// (`None` = the bare JID itself).
pub type Route = Vec<Option<String>>;

#[derive(Clone, Debug)]
pub struct MClaimed {
    pub key: MKey,
    pub public: bool,
    pub route: Route,
}

#[derive(Clone, Debug)]
pub struct MPending {
    pub id: u64,
    pub key: MKey,
    pub owner: String,
    pub deadline: u64,
}

/// A search operator, as the model evaluates it.
#[derive(Clone, Debug)]
pub enum MOp {
    StrEq(String, String),
    StrNEq(String, String),
    StrGt(String, String),
    StrGtEq(String, String),
    StrLt(String, String),
    StrLtEq(String, String),
    StrRange(String, String, bool, String, bool),
    StrNRange(String, String, bool, String, bool),
    StrMask(String, String, Option<String>),
    NumEq(String, f64),
    NumNEq(String, f64),
    NumGt(String, f64),
    NumGtEq(String, f64),
    NumLt(String, f64),
    NumLtEq(String, f64),
    NumRange(String, f64, bool, f64, bool),
    NumNRange(String, f64, bool, f64, bool),
    /// `strRegEx`: the `regex` crate (another engine than the registry's DFA),
    /// compiled as `^(?:pattern)$`.
    StrRegEx(String, regex::Regex),
    /// `nameWildcard`: (name mask, wildcard, the operator on each matching tag).
    AnyName(String, String, Box<MOp>),
}

/// A whole-value regular expression, as the model reads `strRegEx`.
pub fn model_regex(pattern: &str) -> Option<regex::Regex> {
    regex::Regex::new(&format!("^(?:{pattern})$")).ok()
}

/// `nameWildcard`: the mask's literal pieces compare with names upper-cased
/// (tag names are case-insensitive and stored upper-case).
pub fn name_mask_matches(mask: &str, wildcard: &str, name: &str) -> bool {
    let pieces: Vec<String> = mask.split(wildcard).map(str::to_uppercase).collect();
    pieces_match(&pieces, name)
}

fn pieces_match(pieces: &[String], v: &str) -> bool {
    if pieces.len() == 1 {
        return v == pieces[0];
    }
    let first = &pieces[0];
    let last = &pieces[pieces.len() - 1];
    if v.len() < first.len() + last.len()
        || !v.starts_with(first.as_str())
        || !v.ends_with(last.as_str())
    {
        return false;
    }
    let mut rest = &v[first.len()..v.len() - last.len()];
    for p in &pieces[1..pieces.len() - 1] {
        match rest.find(p.as_str()) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

fn scmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.as_bytes().cmp(b.as_bytes())
}

fn in_str_range(v: &str, min: &str, min_inc: bool, max: &str, max_inc: bool) -> bool {
    use std::cmp::Ordering::*;
    let lo = match scmp(v, min) {
        Greater => true,
        Equal => min_inc,
        Less => false,
    };
    let hi = match scmp(v, max) {
        Less => true,
        Equal => max_inc,
        Greater => false,
    };
    lo && hi
}

fn in_num_range(v: f64, min: f64, min_inc: bool, max: f64, max_inc: bool) -> bool {
    let lo = if min_inc { v >= min } else { v > min };
    let hi = if max_inc { v <= max } else { v < max };
    lo && hi
}

/// `strMask`: the wildcard string stands for any run of characters (including
/// none); everything else is literal; no (or an empty) wildcard means equality.
pub fn mask_matches(mask: &str, wildcard: Option<&str>, v: &str) -> bool {
    let Some(w) = wildcard.filter(|w| !w.is_empty()) else {
        return v == mask;
    };
    let pieces: Vec<&str> = mask.split(w).collect();
    if pieces.len() == 1 {
        return v == mask;
    }
    let first = pieces[0];
    let last = pieces[pieces.len() - 1];
    if v.len() < first.len() + last.len() || !v.starts_with(first) || !v.ends_with(last) {
        return false;
    }
    let mut rest = &v[first.len()..v.len() - last.len()];
    for p in &pieces[1..pieces.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

impl MOp {
    pub fn name(&self) -> &str {
        match self {
            MOp::StrEq(n, _)
            | MOp::StrNEq(n, _)
            | MOp::StrGt(n, _)
            | MOp::StrGtEq(n, _)
            | MOp::StrLt(n, _)
            | MOp::StrLtEq(n, _)
            | MOp::StrRange(n, ..)
            | MOp::StrNRange(n, ..)
            | MOp::StrMask(n, ..)
            | MOp::NumEq(n, _)
            | MOp::NumNEq(n, _)
            | MOp::NumGt(n, _)
            | MOp::NumGtEq(n, _)
            | MOp::NumLt(n, _)
            | MOp::NumLtEq(n, _)
            | MOp::NumRange(n, ..)
            | MOp::NumNRange(n, ..)
            | MOp::StrRegEx(n, _) => n,
            MOp::AnyName(_, _, op) => op.name(),
        }
    }

    /// Whether a thing with these tags matches (`KEY` never does).
    pub fn matches_tags(&self, tags: &[(String, Val)]) -> bool {
        match self {
            MOp::AnyName(mask, w, op) => tags
                .iter()
                .any(|(n, v)| n != "KEY" && name_mask_matches(mask, w, n) && op.matches(v)),
            _ => {
                self.name() != "KEY"
                    && tags
                        .iter()
                        .find(|(n, _)| n == self.name())
                        .is_some_and(|(_, v)| self.matches(v))
            }
        }
    }

    /// Whether a thing holding this operator's tag with value `v` matches.
    pub fn matches(&self, v: &Val) -> bool {
        use std::cmp::Ordering::*;
        match (self, v) {
            (MOp::StrEq(_, c), Val::Str(s)) => scmp(s, c) == Equal,
            (MOp::StrNEq(_, c), Val::Str(s)) => scmp(s, c) != Equal,
            (MOp::StrGt(_, c), Val::Str(s)) => scmp(s, c) == Greater,
            (MOp::StrGtEq(_, c), Val::Str(s)) => scmp(s, c) != Less,
            (MOp::StrLt(_, c), Val::Str(s)) => scmp(s, c) == Less,
            (MOp::StrLtEq(_, c), Val::Str(s)) => scmp(s, c) != Greater,
            (MOp::StrRange(_, a, ai, b, bi), Val::Str(s)) => in_str_range(s, a, *ai, b, *bi),
            (MOp::StrNRange(_, a, ai, b, bi), Val::Str(s)) => !in_str_range(s, a, *ai, b, *bi),
            (MOp::StrMask(_, m, w), Val::Str(s)) => mask_matches(m, w.as_deref(), s),
            (MOp::StrRegEx(_, r), Val::Str(s)) => r.is_match(s),
            (MOp::AnyName(_, _, op), v) => op.matches(v),
            (MOp::NumEq(_, c), Val::Num(x)) => x == c,
            (MOp::NumNEq(_, c), Val::Num(x)) => x != c,
            (MOp::NumGt(_, c), Val::Num(x)) => x > c,
            (MOp::NumGtEq(_, c), Val::Num(x)) => x >= c,
            (MOp::NumLt(_, c), Val::Num(x)) => x < c,
            (MOp::NumLtEq(_, c), Val::Num(x)) => x <= c,
            (MOp::NumRange(_, a, ai, b, bi), Val::Num(x)) => in_num_range(*x, *a, *ai, *b, *bi),
            (MOp::NumNRange(_, a, ai, b, bi), Val::Num(x)) => !in_num_range(*x, *a, *ai, *b, *bi),
            _ => false,
        }
    }
}

fn has_duplicate_names(tags: &[(String, Val)]) -> bool {
    tags.iter()
        .enumerate()
        .any(|(i, (n, _))| tags[..i].iter().any(|(m, _)| m == n))
}

fn same_tag_set(a: &[(String, Val)], b: &[(String, Val)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(n, v)| b.iter().any(|(m, w)| m == n && v.same(w)))
        && b.iter()
            .all(|(n, v)| a.iter().any(|(m, w)| m == n && v.same(w)))
}

pub struct Model {
    pub limits: Limits,
    pub slots: Vec<Option<MThing>>,
    free: Vec<usize>,
    by_key: BTreeMap<MKey, usize>,
    /// Bare JID -> available resources, in the order they became available (""
    /// stands for the bare JID itself being available). An entry with none is an
    /// offline JID; no entry is an unknown one.
    pub presence: BTreeMap<String, Vec<String>>,
    pub pending: Vec<MPending>,
}

impl Model {
    pub fn new(limits: Limits) -> Self {
        Model {
            limits,
            slots: Vec::new(),
            free: Vec::new(),
            by_key: BTreeMap::new(),
            presence: BTreeMap::new(),
            pending: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn get(&self, key: &MKey) -> Option<&MThing> {
        self.by_key.get(key).and_then(|&i| self.slots[i].as_ref())
    }

    fn get_mut(&mut self, key: &MKey) -> Option<&mut MThing> {
        let i = *self.by_key.get(key)?;
        self.slots[i].as_mut()
    }

    /// Live things in id order.
    pub fn live(&self) -> impl Iterator<Item = &MThing> {
        self.slots.iter().flatten()
    }

    pub fn searchable(&self) -> usize {
        self.live()
            .filter(|t| t.owner.is_some() && t.public)
            .count()
    }

    fn insert(&mut self, t: MThing) {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        self.by_key.insert(t.key.clone(), id);
        self.slots[id] = Some(t);
    }

    fn delete(&mut self, key: &MKey) {
        if let Some(id) = self.by_key.remove(key) {
            self.slots[id] = None;
            self.free.push(id);
        }
    }

    /// Where a notification for `key` goes (presence.rs: the preferred resource
    /// when it is online or presence is unknown, else any available resource,
    /// else, offline, still the last known full JID).
    pub fn route(&self, key: &MKey) -> Route {
        let preferred = self.get(key).and_then(|t| t.resource.clone());
        match self.presence.get(&key.jid) {
            None => vec![preferred],
            Some(online) => {
                if let Some(p) = &preferred {
                    if online.contains(p) {
                        return vec![preferred];
                    }
                }
                if online.is_empty() {
                    vec![preferred]
                } else {
                    online
                        .iter()
                        .map(|r| (!r.is_empty()).then(|| r.clone()))
                        .collect()
                }
            }
        }
    }

    /// `register` (3.6-3.8) from `key.jid` with `resource`.
    pub fn register(
        &mut self,
        key: &MKey,
        resource: Option<&str>,
        tags: &[(String, Val)],
        self_owned: bool,
    ) -> Result<MRegister, EKind> {
        if has_duplicate_names(tags) {
            return Err(EKind::BadRequest);
        }
        let tags: MTags = tags
            .iter()
            .filter(|(_, v)| !v.is_empty_str())
            .cloned()
            .collect();
        if tags.len() > self.limits.max_tags {
            return Err(EKind::BadRequest);
        }
        match self.get_mut(key) {
            Some(t) => {
                if let Some(owner) = &t.owner {
                    return Ok(MRegister::AlreadyClaimed {
                        owner: owner.clone(),
                        public: t.public,
                    });
                }
                t.tags = tags;
                t.claimed_with = None;
                t.resource = resource.map(Into::into);
                t.owner = self_owned.then(|| key.jid.clone());
                t.public = self_owned;
            }
            None => {
                if self.len() >= self.limits.max_things {
                    return Err(EKind::ResourceConstraint);
                }
                self.insert(MThing {
                    key: key.clone(),
                    resource: resource.map(Into::into),
                    owner: self_owned.then(|| key.jid.clone()),
                    public: self_owned,
                    tags,
                    claimed_with: None,
                });
            }
        }
        Ok(MRegister::Registered)
    }

    /// `mine` (3.9) from `claimant` (bare JID).
    pub fn claim(
        &mut self,
        claimant: &str,
        tags: &[(String, Val)],
        public: bool,
    ) -> Result<MClaimed, EKind> {
        if has_duplicate_names(tags) {
            return Err(EKind::BadRequest);
        }
        let tags: MTags = tags
            .iter()
            .filter(|(_, v)| !v.is_empty_str())
            .cloned()
            .collect();
        if tags.is_empty() {
            return Err(EKind::BadRequest);
        }
        let candidates: Vec<usize> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|t| (i, t)))
            .filter(|(_, t)| same_tag_set(&t.tags, &tags))
            .map(|(i, _)| i)
            .collect();
        let owner_of = |i: usize| self.slots[i].as_ref().and_then(|t| t.owner.clone());
        let has_key = tags.iter().any(|(n, _)| n == "KEY");
        let without_key: MTags = tags.iter().filter(|(n, _)| n != "KEY").cloned().collect();
        // The owner's re-claim of a thing whose KEY the claim deleted.
        let reclaim = || {
            self.slots.iter().position(|s| {
                s.as_ref().is_some_and(|t| {
                    has_key
                        && t.owner.as_deref() == Some(claimant)
                        && same_tag_set(&t.tags, &without_key)
                        && t.claimed_with
                            .as_ref()
                            .is_some_and(|c| same_tag_set(c, &tags))
                })
            })
        };
        let mut fresh = false;
        let id = match candidates
            .iter()
            .copied()
            .find(|&i| owner_of(i).as_deref() == Some(claimant))
            .or_else(reclaim)
        {
            Some(i) => i,
            None => {
                fresh = true;
                let free: Vec<usize> = candidates
                    .iter()
                    .copied()
                    .filter(|&i| owner_of(i).is_none())
                    .collect();
                if free.len() != 1 {
                    return Err(EKind::ItemNotFound);
                }
                free[0]
            }
        };
        let delete_key = self.limits.delete_key;
        let t = self.slots[id].as_mut().expect("candidate is live");
        t.owner = Some(claimant.to_string());
        t.public = public;
        if fresh && has_key && delete_key {
            t.tags.retain(|(n, _)| n != "KEY");
            t.claimed_with = Some(tags.clone());
        }
        let key = t.key.clone();
        Ok(MClaimed {
            route: self.route(&key),
            key,
            public,
        })
    }

    /// The effect of a successful claim of `key` whose tag set the caller knows
    /// to be unique (for populations too big for [`Model::claim`]'s scan).
    pub fn assign_owner(&mut self, key: &MKey, owner: &str, public: bool) {
        let delete_key = self.limits.delete_key;
        let t = self.get_mut(key).expect("assigned thing exists");
        t.owner = Some(owner.to_string());
        t.public = public;
        if delete_key && t.tags.iter().any(|(n, _)| n == "KEY") {
            t.claimed_with = Some(t.tags.clone());
            t.tags.retain(|(n, _)| n != "KEY");
        }
    }

    /// `remove` (3.10) from `from` (bare JID). Returns the notification route.
    pub fn remove(&mut self, from: &str, key: &MKey) -> Result<Route, EKind> {
        let t = self.get(key).ok_or(EKind::ItemNotFound)?;
        if t.owner.as_deref() != Some(from) {
            return Err(EKind::ItemNotFound);
        }
        let route = self.route(key);
        self.delete(key);
        Ok(route)
    }

    /// `update` (3.13 / 3.14) from `from` (bare JID) with `resource`; `jid` is the
    /// request's `jid` attribute.
    pub fn update(
        &mut self,
        from: &str,
        resource: Option<&str>,
        jid: Option<&str>,
        node: &[Option<String>; 3],
        tags: &[(String, Val)],
    ) -> Result<MUpdate, EKind> {
        if has_duplicate_names(tags) {
            return Err(EKind::BadRequest);
        }
        let by_owner = jid.is_some_and(|j| j != from);
        let key = MKey {
            jid: jid.unwrap_or(from).to_string(),
            node: node.clone(),
        };
        let max_tags = self.limits.max_tags;
        let t = self.get_mut(&key).ok_or(EKind::ItemNotFound)?;
        if by_owner {
            if t.owner.as_deref() != Some(from) {
                return Err(EKind::ItemNotFound);
            }
        } else if t.owner.is_none() {
            return Ok(MUpdate::Disowned);
        }
        let mut new = t.tags.clone();
        for (n, v) in tags {
            let pos = new.iter().position(|(m, _)| m == n);
            match (pos, v.is_empty_str()) {
                (Some(p), true) => {
                    new.remove(p);
                }
                (None, true) => {}
                (Some(p), false) => new[p].1 = v.clone(),
                (None, false) => new.push((n.clone(), v.clone())),
            }
        }
        if new.len() > max_tags {
            return Err(EKind::BadRequest);
        }
        t.tags = new;
        if !by_owner {
            t.resource = resource.map(Into::into);
        }
        Ok(MUpdate::Updated)
    }

    /// `unregister` (3.16) from the thing.
    pub fn unregister(&mut self, key: &MKey) {
        self.delete(key);
    }

    pub fn is_offline(&self, jid: &str) -> bool {
        self.presence.get(jid).is_some_and(|r| r.is_empty())
    }

    /// `disown` (3.17) from `from` (bare JID); `pid` is the handle the registry
    /// returned (used only when this succeeds). Returns (deadline, route).
    pub fn disown(
        &mut self,
        from: &str,
        key: &MKey,
        now: u64,
        pid: u64,
    ) -> Result<(u64, Route), EKind> {
        let t = self.get(key).ok_or(EKind::ItemNotFound)?;
        if t.owner.as_deref() != Some(from) {
            return Err(EKind::ItemNotFound);
        }
        if self.is_offline(&key.jid) {
            return Err(EKind::NotAllowed);
        }
        if self.pending.len() >= self.limits.max_pending {
            return Err(EKind::ResourceConstraint);
        }
        let deadline = now + self.limits.timeout_ms;
        self.pending.push(MPending {
            id: pid,
            key: key.clone(),
            owner: from.to_string(),
            deadline,
        });
        Ok((deadline, self.route(key)))
    }

    /// The thing answered a pending disown. `None` for an unknown id; else the
    /// owner who asked and the result. On success the thing is unclaimed and
    /// private and holds exactly one tag, `KEY`, whose random value the caller
    /// sets with [`Model::set_disowned_key`].
    pub fn resolve(
        &mut self,
        pid: u64,
        ack: bool,
        now: u64,
    ) -> Option<(String, Result<MKey, EKind>)> {
        let pos = self.pending.iter().position(|p| p.id == pid)?;
        let p = self.pending.remove(pos);
        // The deadline is the instant the disown fails (`expire` fails every
        // disown whose deadline is at or before now).
        if !ack || now >= p.deadline {
            return Some((p.owner, Err(EKind::NotAllowed)));
        }
        let Some(t) = self.get_mut(&p.key) else {
            return Some((p.owner, Err(EKind::NotAllowed)));
        };
        if t.owner.as_deref() != Some(p.owner.as_str()) {
            return Some((p.owner, Err(EKind::NotAllowed)));
        }
        t.owner = None;
        t.public = false;
        t.tags = Vec::new();
        t.claimed_with = None;
        Some((p.owner, Ok(p.key)))
    }

    pub fn set_disowned_key(&mut self, key: &MKey, value: String) {
        if let Some(t) = self.get_mut(key) {
            t.tags = vec![("KEY".to_string(), Val::Str(value))];
        }
    }

    /// Fails every pending disown whose deadline is at or before `now`.
    pub fn expire(&mut self, now: u64) -> Vec<(u64, String)> {
        let (gone, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.deadline <= now);
        self.pending = keep;
        gone.into_iter().map(|p| (p.id, p.owner)).collect()
    }

    /// The host reports presence of `jid` (bare) with `resource`.
    pub fn set_presence(&mut self, jid: &str, resource: Option<&str>, available: bool) {
        let online = self.presence.entry(jid.to_string()).or_default();
        match (resource, available) {
            (Some(r), true) => {
                if !online.iter().any(|x| x == r) {
                    online.push(r.to_string());
                }
            }
            (Some(r), false) => online.retain(|x| x != r),
            (None, false) => online.clear(),
            (None, true) => {
                if !online.iter().any(|x| x.is_empty()) {
                    online.push(String::new());
                }
            }
        }
    }

    /// Every public claimed thing matching all operators, in id order.
    pub fn search_all(&self, ops: &[MOp]) -> Vec<&MThing> {
        self.live()
            .filter(|t| t.owner.is_some() && t.public)
            .filter(|t| ops.iter().all(|op| op.matches_tags(&t.tags)))
            .collect()
    }

    /// `search` (3.15): one page and whether more follow.
    pub fn search(
        &self,
        ops: &[MOp],
        offset: u32,
        max_count: Option<u32>,
    ) -> Result<(Vec<&MThing>, bool), EKind> {
        self.page(ops.len(), &self.search_all(ops), offset, max_count)
    }

    /// The page of a search with `n_ops` operators whose whole result is `all`.
    pub fn page<'a>(
        &self,
        n_ops: usize,
        all: &[&'a MThing],
        offset: u32,
        max_count: Option<u32>,
    ) -> Result<(Vec<&'a MThing>, bool), EKind> {
        // No operator: every public claimed thing (issue 7).
        if n_ops > self.limits.max_ops {
            return Err(EKind::BadRequest);
        }
        let limit = match max_count {
            Some(0) => return Err(EKind::BadRequest),
            Some(n) => n.min(self.limits.max_results),
            None => self.limits.max_results,
        } as usize;
        let offset = offset as usize;
        let page: Vec<&MThing> = all.iter().skip(offset).take(limit).copied().collect();
        let more = all.len() > offset + limit;
        Ok((page, more))
    }
}

#[cfg(test)]
mod tests {
    use super::mask_matches;

    #[test]
    fn model_masks() {
        assert!(mask_matches("39487*", Some("*"), "39487"));
        assert!(mask_matches("39487*", Some("*"), "394872"));
        assert!(!mask_matches("39487*", Some("*"), "x39487"));
        assert!(mask_matches("*1234*", Some("*"), "1234"));
        assert!(!mask_matches("a*a", Some("*"), "a"));
        assert!(mask_matches("a*a", Some("*"), "aa"));
        assert!(mask_matches("a*b*c", Some("*"), "abc"));
        assert!(!mask_matches("a*b*c", Some("*"), "acb"));
        assert!(mask_matches("a*b", None, "a*b"));
        assert!(!mask_matches("a*b", Some(""), "axb"));
        assert!(mask_matches("x??y", Some("??"), "xy"));
        assert!(mask_matches("*ö*", Some("*"), "Malmö"));
    }
}
