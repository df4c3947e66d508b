//! Baselines shared by the bench targets: the SQLite EAV table ([`sqlite`]) and
//! the naive full scan ([`naive`]), plus what all engines answer: the first page
//! of matches in thing order and whether another match follows.
//!
//! Things are numbered by their datagen index `i`: it is the registry's insertion
//! order (the registry hands out dense ids in insertion order), the `thing`
//! column of SQLite and the position in the naive `Vec`.

#![allow(dead_code)]

pub mod naive;
pub mod sqlite;

use iotdisco::datagen::{self, GenThing};
use iotdisco::{Registry, Search};

/// The size of the page every engine answers (the standard queries' `maxCount`).
pub const PAGE: usize = 20;

/// What every engine answers for a query: the first [`PAGE`] matches in thing
/// order and whether a further match exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Datagen indexes of the matches, ascending.
    pub ids: Vec<u32>,
    /// Whether a match follows the page.
    pub more: bool,
}

/// The datagen index of a thing from its bare JID `thing{i}@d{i%64}.example.org`.
pub fn jid_index(jid: &str) -> Option<u32> {
    let local = jid.strip_prefix("thing")?.split('@').next()?;
    local.parse().ok()
}

/// Runs a search on the registry and maps the found things back to datagen
/// indexes.
pub fn iotdisco_answer(reg: &Registry, search: &Search) -> Answer {
    let res = reg.search(search).expect("search failed");
    Answer {
        ids: res
            .things
            .iter()
            .map(|t| jid_index(t.key.jid.as_str()).expect("a datagen JID"))
            .collect(),
        more: res.more,
    }
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
