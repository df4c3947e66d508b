//! Settings as text: `key=value` pairs separated by `;` (the `options` string of
//! the C ABI's `iotdisco_open`, the component's `--set`).
//!
//! Every key sets one field of [`crate::Config`], [`crate::EngineConfig`] or
//! the sled [`Durability`]; keys not given keep their defaults. A rate limit is
//! two keys, `<name>_burst` and `<name>_per_hour` (a burst of 0 disables it). White space
//! around keys and values is ignored and empty segments (`a=1;;b=2;`) are
//! allowed. An unknown or repeated key, a segment without `=` and a value that
//! does not parse are errors naming the key, so a typo in a host's
//! configuration is reported instead of silently ignored. Values cannot hold
//! `;` (no escaping): no setting needs it.

use std::collections::HashSet;
use std::fmt::Display;
use std::str::FromStr;

use crate::store::sled::Durability;
use crate::tag::TagName;
use crate::thing::ThingId;
use crate::{Config, EngineConfig, Foreign};

/// Every key, in the order the README lists them (used in error messages).
pub const KEYS: &[&str] = &[
    "max_search_results",
    "max_search_operators",
    "max_tags_per_thing",
    "allowed_tags",
    "disown_timeout_ms",
    "max_pending_disowns",
    "max_things",
    "max_tracked_presences",
    "disown_key_chars",
    "delete_key_on_claim",
    "max_stanza_bytes",
    "max_depth",
    "notification_timeout_ms",
    "max_outstanding",
    "disown_element_fallback",
    "foreign",
    "identity_name",
    "hide_owner_in_xep_results",
    "max_tag_name_chars_xep",
    "max_tag_name_chars_successor",
    "max_remembered_dialects",
    "max_tag_names",
    "max_notification_attempts",
    "max_undelivered",
    "claim_failures_burst",
    "claim_failures_per_hour",
    "claim_failures_domain_burst",
    "claim_failures_domain_per_hour",
    "writes_burst",
    "writes_per_hour",
    "searches_burst",
    "searches_per_hour",
    "max_rate_limited_senders",
    "durability",
];

/// The settings an options string describes.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The registry's settings.
    pub config: Config,
    /// The wire layer's settings.
    pub engine: EngineConfig,
    /// When writes reach the disk (ignored for an in-memory registry).
    pub durability: Durability,
}

fn number<T>(key: &str, value: &str) -> Result<T, String>
where
    T: FromStr,
    T::Err: Display,
{
    value
        .parse::<T>()
        .map_err(|e| format!("option '{key}': '{value}' is not a valid whole number ({e})"))
}

fn positive<T>(key: &str, value: &str) -> Result<T, String>
where
    T: FromStr + PartialEq + Default,
    T::Err: Display,
{
    let n = number::<T>(key, value)?;
    if n == T::default() {
        return Err(format!("option '{key}': must be at least 1"));
    }
    Ok(n)
}

/// A tag-name length limit: 1 to 64 characters (the most a stored name holds).
fn tag_name_chars(key: &str, value: &str) -> Result<usize, String> {
    let n: usize = positive(key, value)?;
    if n > 64 {
        return Err(format!("option '{key}': {n} is more than 64 characters"));
    }
    Ok(n)
}

fn boolean(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("option '{key}': '{value}' is not true or false")),
    }
}

impl Options {
    /// Parses an options string (`None`: every default).
    pub fn parse(s: Option<&str>) -> Result<Options, String> {
        let mut o = Options::default();
        let mut seen: HashSet<&str> = HashSet::new();
        for segment in s.unwrap_or("").split(';') {
            if segment.trim().is_empty() {
                continue;
            }
            let Some((key, value)) = segment.split_once('=') else {
                return Err(format!(
                    "option '{}' has no '=' (the form is key=value;key=value)",
                    segment.trim()
                ));
            };
            let (key, value) = (key.trim(), value.trim());
            if !seen.insert(key) && KEYS.contains(&key) {
                return Err(format!("option '{key}' is given twice"));
            }
            o.set(key, value)?;
        }
        Ok(o)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let c = &mut self.config;
        let e = &mut self.engine;
        match key {
            "max_search_results" => c.max_search_results = positive(key, value)?,
            "max_search_operators" => c.max_search_operators = positive(key, value)?,
            "max_tags_per_thing" => c.max_tags_per_thing = positive(key, value)?,
            "allowed_tags" => {
                let mut names = HashSet::new();
                for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    let tag = TagName::new(name)
                        .map_err(|err| format!("option '{key}': '{name}': {err}"))?;
                    names.insert(tag);
                }
                c.allowed_tags = Some(names);
            }
            "disown_timeout_ms" => c.disown_timeout_ms = number(key, value)?,
            "max_pending_disowns" => c.max_pending_disowns = number(key, value)?,
            "max_things" => {
                let n: u32 = positive(key, value)?;
                if n >= ThingId::LIMIT {
                    return Err(format!(
                        "option '{key}': {n} is more than the most a registry holds ({})",
                        ThingId::LIMIT - 1
                    ));
                }
                c.max_things = n;
            }
            "max_tracked_presences" => c.max_tracked_presences = number(key, value)?,
            "disown_key_chars" => c.disown_key_chars = positive(key, value)?,
            "delete_key_on_claim" => c.delete_key_on_claim = boolean(key, value)?,
            "max_stanza_bytes" => e.max_stanza_bytes = positive(key, value)?,
            "max_depth" => e.max_depth = positive(key, value)?,
            "notification_timeout_ms" => e.notification_timeout_ms = number(key, value)?,
            "max_outstanding" => e.max_outstanding = number(key, value)?,
            "disown_element_fallback" => e.disown_element_fallback = boolean(key, value)?,
            "foreign" => {
                e.foreign = match value {
                    "not_mine" => Foreign::NotMine,
                    "service_unavailable" => Foreign::ServiceUnavailable,
                    _ => {
                        return Err(format!(
                            "option '{key}': '{value}' is not not_mine or service_unavailable"
                        ));
                    }
                }
            }
            "identity_name" => e.identity_name = value.to_string(),
            "hide_owner_in_xep_results" => e.hide_owner_in_xep_results = boolean(key, value)?,
            "max_tag_name_chars_xep" => e.max_tag_name_chars_xep = tag_name_chars(key, value)?,
            "max_tag_name_chars_successor" => {
                e.max_tag_name_chars_successor = tag_name_chars(key, value)?;
            }
            "max_remembered_dialects" => e.max_remembered_dialects = number(key, value)?,
            "max_tag_names" => c.max_tag_names = positive(key, value)?,
            "max_notification_attempts" => c.max_notification_attempts = positive(key, value)?,
            "max_undelivered" => c.max_undelivered = number(key, value)?,
            "claim_failures_burst" => e.claim_failures.burst = number(key, value)?,
            "claim_failures_per_hour" => e.claim_failures.per_hour = number(key, value)?,
            "claim_failures_domain_burst" => {
                e.claim_failures_per_domain.burst = number(key, value)?;
            }
            "claim_failures_domain_per_hour" => {
                e.claim_failures_per_domain.per_hour = number(key, value)?;
            }
            "writes_burst" => e.writes.burst = number(key, value)?,
            "writes_per_hour" => e.writes.per_hour = number(key, value)?,
            "searches_burst" => e.searches.burst = number(key, value)?,
            "searches_per_hour" => e.searches.per_hour = number(key, value)?,
            "max_rate_limited_senders" => e.max_rate_limited_senders = positive(key, value)?,
            "durability" => {
                self.durability = match value.split_once(':') {
                    None if value == "flush" => Durability::Flush,
                    Some(("group_commit", ms)) => {
                        Durability::GroupCommit(positive(key, ms.trim())?)
                    }
                    _ => {
                        return Err(format!(
                            "option '{key}': '{value}' is not flush or group_commit:<ms>"
                        ));
                    }
                }
            }
            "" => return Err("an option has an empty key".into()),
            _ => {
                return Err(format!(
                    "unknown option '{key}' (known: {})",
                    KEYS.join(", ")
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        Options::parse(Some(s)).unwrap_err()
    }

    #[test]
    fn none_and_empty_are_the_defaults() {
        for s in [None, Some(""), Some(" ; ;")] {
            let o = Options::parse(s).unwrap();
            assert_eq!(o.config.max_search_results, 100);
            assert_eq!(o.engine.max_stanza_bytes, 128 * 1024);
            assert_eq!(o.durability, Durability::Flush);
            assert!(o.config.allowed_tags.is_none());
        }
    }

    #[test]
    fn every_key_is_parsed() {
        let o = Options::parse(Some(
            " max_search_results = 7 ;max_search_operators=3;max_tags_per_thing=9;\
             allowed_tags= room , apt,;disown_timeout_ms=1500;max_pending_disowns=2;\
             max_things=1000;max_tracked_presences=50;disown_key_chars=12;\
             max_stanza_bytes=4096;max_depth=8;notification_timeout_ms=0;max_outstanding=5;\
             disown_element_fallback=false;foreign=service_unavailable;\
             identity_name=Home registry;durability=group_commit: 10;\
             hide_owner_in_xep_results=true;max_tag_name_chars_xep=40;\
             max_tag_name_chars_successor=50;max_remembered_dialects=9;\
             delete_key_on_claim=false;max_tag_names=99;max_notification_attempts=2;\
             max_undelivered=7;claim_failures_burst=3;claim_failures_per_hour=4;\
             claim_failures_domain_burst=5;claim_failures_domain_per_hour=6;\
             writes_burst=0;writes_per_hour=8;searches_burst=9;searches_per_hour=10;\
             max_rate_limited_senders=11",
        ))
        .unwrap();
        let c = &o.config;
        assert_eq!(c.max_search_results, 7);
        assert_eq!(c.max_search_operators, 3);
        assert_eq!(c.max_tags_per_thing, 9);
        let allowed = c.allowed_tags.as_ref().unwrap();
        assert_eq!(allowed.len(), 2);
        assert!(allowed.contains(&TagName::new("ROOM").unwrap()));
        assert!(allowed.contains(&TagName::new("APT").unwrap()));
        assert_eq!(c.disown_timeout_ms, 1500);
        assert_eq!(c.max_pending_disowns, 2);
        assert_eq!(c.max_things, 1000);
        assert_eq!(c.max_tracked_presences, 50);
        assert_eq!(c.disown_key_chars, 12);
        assert!(!c.delete_key_on_claim);
        assert_eq!(c.max_tag_names, 99);
        assert_eq!(c.max_notification_attempts, 2);
        assert_eq!(c.max_undelivered, 7);
        assert_eq!(o.engine.claim_failures, crate::throttle::Rate::new(3, 4));
        assert_eq!(
            o.engine.claim_failures_per_domain,
            crate::throttle::Rate::new(5, 6)
        );
        assert_eq!(o.engine.writes, crate::throttle::Rate::new(0, 8));
        assert_eq!(o.engine.searches, crate::throttle::Rate::new(9, 10));
        assert_eq!(o.engine.max_rate_limited_senders, 11);
        let e = &o.engine;
        assert_eq!(e.max_stanza_bytes, 4096);
        assert_eq!(e.max_depth, 8);
        assert_eq!(e.notification_timeout_ms, 0);
        assert_eq!(e.max_outstanding, 5);
        assert!(!e.disown_element_fallback);
        assert_eq!(e.foreign, Foreign::ServiceUnavailable);
        assert_eq!(e.identity_name, "Home registry");
        assert!(e.hide_owner_in_xep_results);
        assert_eq!(e.max_tag_name_chars_xep, 40);
        assert_eq!(e.max_tag_name_chars_successor, 50);
        assert_eq!(e.max_remembered_dialects, 9);
        assert_eq!(o.durability, Durability::GroupCommit(10));
        let o = Options::parse(Some("durability=flush;allowed_tags=")).unwrap();
        assert_eq!(o.durability, Durability::Flush);
        assert!(o.config.allowed_tags.unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_key() {
        assert!(err("max_result=5").contains("unknown option 'max_result'"));
        assert!(err("max_tag_name_chars_xep=65").contains("more than 64"));
        assert!(err("max_tag_name_chars_successor=0").contains("at least 1"));
        assert!(err("hide_owner_in_xep_results=yes").contains("not true or false"));
        assert!(err("max_things").contains("'max_things' has no '='"));
        assert!(err("max_things=12x").contains("'max_things': '12x'"));
        assert!(err("max_things=-1").contains("'max_things'"));
        assert!(err("max_things=0").contains("'max_things': must be at least 1"));
        assert!(err("max_things=2147483648").contains("'max_things': 2147483648 is more"));
        assert!(err("max_search_results=4294967296").contains("'max_search_results'"));
        assert!(err("disown_element_fallback=yes").contains("'disown_element_fallback'"));
        assert!(err("foreign=drop").contains("'foreign'"));
        assert!(err("durability=group_commit:0").contains("'durability'"));
        assert!(err("durability=fsync").contains("'durability'"));
        assert!(err("allowed_tags=ok,bad:name").contains("'allowed_tags': 'bad:name'"));
        assert!(err("max_depth=3;max_depth=4").contains("'max_depth' is given twice"));
        assert!(err("=5").contains("empty key"));
    }
}
