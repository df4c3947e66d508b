//! Registry configuration: the limits and policies a host can set.
//!
//! Every limit here protects the registry against hostile or buggy peers (spec 6.6)
//! or bounds the work one request can cause. Defaults are generous enough that a
//! well-behaved thing or client never meets them.

use std::collections::HashSet;

use crate::tag::TagName;

/// Registry configuration. Build with `Config::default()` and adjust fields.
#[derive(Debug, Clone)]
pub struct Config {
    /// The most things one search returns; a larger (or absent) `maxCount` is
    /// lowered to this (spec 3.15 lets the registry lower it).
    pub max_search_results: u32,
    /// The most operators one search may carry.
    pub max_search_operators: usize,
    /// The most tags one thing may hold (tag spam, spec 6.6).
    pub max_tags_per_thing: usize,
    /// When set, only these tag names (plus the predefined ones, always allowed)
    /// may be registered or updated.
    pub allowed_tags: Option<HashSet<TagName>>,
    /// How long a disown waits for the thing's acknowledgement, in milliseconds.
    pub disown_timeout_ms: u64,
    /// The most disowns waiting for an acknowledgement at once.
    pub max_pending_disowns: usize,
    /// The most things the registry holds (at most 2^31 - 1).
    pub max_things: u32,
    /// The most distinct tag names the registry knows at once (tag spam, spec
    /// 6.6). A `register` or `update` that brings a new name past it reuses the
    /// slot of a name no thing uses any more, or is refused with
    /// `resource-constraint`; nothing stored changes.
    pub max_tag_names: usize,
    /// The most JIDs whose presence the registry tracks at once.
    pub max_tracked_presences: usize,
    /// Length, in characters, of the random `KEY` given to a disowned thing.
    pub disown_key_chars: usize,
    /// Delete a thing's `KEY` tag when it is claimed (spec 6.5 asks the thing to
    /// empty it; the registry does it for the thing). A salted digest of the
    /// claimed tag set is kept instead ([`crate::digest`]), so the same owner's
    /// idempotent re-claim with the original tags still succeeds. On by default.
    pub delete_key_on_claim: bool,
    /// How many times a `claimed` or `removed` notification is sent to a thing
    /// that does not answer it (or answers with an error) before it is
    /// dropped; between sends it waits, persisted, until the thing is next seen.
    pub max_notification_attempts: u8,
    /// The most undelivered notifications kept at once (the oldest goes first).
    pub max_undelivered: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_search_results: 100,
            max_search_operators: 32,
            max_tags_per_thing: 64,
            allowed_tags: None,
            disown_timeout_ms: 30_000,
            max_pending_disowns: 100_000,
            max_things: crate::thing::ThingId::LIMIT - 1,
            max_tag_names: 65_536,
            max_tracked_presences: 10_000_000,
            disown_key_chars: 43,
            delete_key_on_claim: true,
            max_notification_attempts: 4,
            max_undelivered: 100_000,
        }
    }
}

impl Config {
    /// Whether a tag name may be stored under this configuration.
    pub fn tag_allowed(&self, name: &TagName) -> bool {
        match &self.allowed_tags {
            None => true,
            Some(allowed) => name.is_predefined() || allowed.contains(name),
        }
    }
}
