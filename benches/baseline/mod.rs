//! Baselines shared by the bench targets: the SQLite EAV table ([`sqlite`]) and
//! the naive full scan ([`naive`]), plus what all engines answer: the first page
//! of matches in thing order, each with its owner, JID, node address and tags
//! (never `KEY`, in registration order), and whether another match follows.
//!
//! Things are numbered by their datagen index `i`: it is the registry's insertion
//! order (the registry hands out dense ids in insertion order), the `thing`
//! column of SQLite and the position in the naive `Vec`.
//!
//! Each engine builds its page in its own owned types inside the timed region
//! (the registry and the naive scan a [`SearchResult`], SQLite its
//! [`sqlite::SqlPage`]); [`Answer`] is the engine-neutral form the report
//! compares, built outside any timing.

#![allow(dead_code)]

pub mod eav_sql;
pub mod measure;
pub mod naive;
pub mod sqlite;

use iotdisco::datagen::{self, GenThing};
use iotdisco::{FoundThing, Registry, Search, SearchResult, TagValue};

/// The size of the page every engine answers (the standard queries' `maxCount`).
pub const PAGE: usize = 20;

/// A tag value, engine-neutral.
#[derive(Debug, Clone, PartialEq)]
pub enum PageVal {
    /// A string.
    S(String),
    /// A number.
    N(f64),
}

/// One thing of a page, engine-neutral.
#[derive(Debug, Clone, PartialEq)]
pub struct PageThing {
    /// The thing's bare JID.
    pub jid: String,
    /// Its owner's bare JID.
    pub owner: String,
    /// `nodeId`, `sourceId`, `cacheType`.
    pub node: [Option<String>; 3],
    /// Its tags except `KEY`, in registration order.
    pub tags: Vec<(String, PageVal)>,
}

/// What every engine answers for a query: the first [`PAGE`] matches in thing
/// order, in full, and whether a further match exists.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The matches, in thing order.
    pub things: Vec<PageThing>,
    /// Whether a match follows the page.
    pub more: bool,
}

impl Answer {
    /// Datagen indexes of the page's things (from their JIDs).
    pub fn ids(&self) -> Vec<u32> {
        self.things
            .iter()
            .map(|t| jid_index(&t.jid).unwrap_or(u32::MAX))
            .collect()
    }

    /// The neutral form of a registry (or naive) result page.
    pub fn of_result(res: &SearchResult) -> Self {
        Answer {
            things: res.things.iter().map(page_thing).collect(),
            more: res.more,
        }
    }

    /// Where two answers first differ, for the report's mismatch message.
    pub fn first_difference(&self, other: &Answer) -> String {
        if self.more != other.more {
            return format!("more {} vs {}", self.more, other.more);
        }
        for (k, (a, b)) in self.things.iter().zip(&other.things).enumerate() {
            if a != b {
                return format!("thing #{k}: {a:?} vs {b:?}");
            }
        }
        format!(
            "{} things vs {} things",
            self.things.len(),
            other.things.len()
        )
    }
}

fn opt(s: &Option<Box<str>>) -> Option<String> {
    s.as_deref().map(str::to_owned)
}

fn page_thing(t: &FoundThing) -> PageThing {
    PageThing {
        jid: t.key.jid.as_str().to_owned(),
        owner: t.owner.as_str().to_owned(),
        node: [
            opt(&t.key.node.node_id),
            opt(&t.key.node.source_id),
            opt(&t.key.node.cache_type),
        ],
        tags: t
            .tags
            .iter()
            .map(|tag| {
                let v = match &tag.value {
                    TagValue::Str(s) => PageVal::S(s.to_string()),
                    TagValue::Num(n) => PageVal::N(n.get()),
                };
                (tag.name.as_str().to_owned(), v)
            })
            .collect(),
    }
}

/// The datagen index of a thing from its bare JID `thing{i}@d{i%64}.example.org`.
pub fn jid_index(jid: &str) -> Option<u32> {
    let local = jid.strip_prefix("thing")?.split('@').next()?;
    local.parse().ok()
}

/// Runs a search on the registry (the call the report times) and returns the
/// neutral form of its page.
pub fn iotdisco_answer(reg: &Registry, search: &Search) -> Answer {
    Answer::of_result(&reg.search(search).expect("search failed"))
}

/// The `register_batch` requests for a population, one per thing (built before
/// any timer starts).
pub fn batch_requests(pop: &[GenThing]) -> Vec<(iotdisco::Jid, iotdisco::Register)> {
    pop.iter().map(datagen::register_request).collect()
}

/// Registers and claims (public) every thing, in order.
pub fn install_all(reg: &Registry, pop: &[GenThing]) {
    for g in pop {
        datagen::install(reg, g).expect("install failed");
    }
}

/// Things `0..n` of seed 1.
pub fn population(n: u64) -> Vec<GenThing> {
    datagen::population(1, n).collect()
}

/// The names of [`population_with_temps`]' extra numeric tags.
pub const TEMP_NAMES: [&str; 20] = [
    "TEMP0", "TEMP1", "TEMP2", "TEMP3", "TEMP4", "TEMP5", "TEMP6", "TEMP7", "TEMP8", "TEMP9",
    "TEMP10", "TEMP11", "TEMP12", "TEMP13", "TEMP14", "TEMP15", "TEMP16", "TEMP17", "TEMP18",
    "TEMP19",
];

/// [`population`] plus, on every tenth thing, twenty numeric tags
/// `TEMP0`..`TEMP19` (values -20.0 to 39.9 in steps of 0.1, deterministic): the
/// population of the `nameWildcard` row only (bench-only; datagen's population,
/// which other benches and tests use, is unchanged).
pub fn population_with_temps(n: u64) -> Vec<GenThing> {
    datagen::population(1, n)
        .enumerate()
        .map(|(i, mut g)| {
            if i % 10 == 0 {
                let mut r = datagen::Rng::new(0x7e39, i as u64);
                let key = g.tags.pop().expect("KEY is last");
                for name in TEMP_NAMES {
                    let v = -20.0 + r.below(600) as f64 / 10.0;
                    g.tags.push(iotdisco::Tag::num(name, v).expect("valid tag"));
                }
                g.tags.push(key);
            }
            g
        })
        .collect()
}
