//! The registry's presence rules, as a pure function of one stanza.
//!
//! A component learns only presence addressed to it, so the rules follow what
//! Prosody does around a registry component (`shared/interop/
//! prosody-0.12-presence.md`) and what things of the one existing open-source
//! registry (ekster) expect:
//!
//! - `subscribe` is answered with `subscribed` and a `subscribe` of our own
//!   (to the bare JID); `subscribed` needs no answer.
//! - `unsubscribe` is answered with `unsubscribed` and `unsubscribe`, and the
//!   bare JID's presence is forgotten (`Engine::forget_presence`: unknown, not
//!   offline): after an unsubscription the server sends no more presence, so
//!   whatever we knew would go stale, yet the thing may well be online.
//!   `unsubscribed` forgets it too, for the same reason, and so does a
//!   bare-JID `unavailable` (Prosody 0.12 sends one to acknowledge an
//!   unsubscription; it does not mean the thing went offline).
//! - Available and unavailable presence of a full JID is reported to the
//!   engine.
//! - A full JID that bounces a stanza (`type='error'`) is dropped: the server
//!   says that session is gone.
//! - `probe` is never answered, and nothing else is ever sent: the registry
//!   sends no unsolicited presence. Presence from our own domain (Prosody
//!   reflects a component's own `unavailable`) is ignored.
//!
//! [`react`] turns one presence (or bounced message) into [`Reaction`]: engine
//! calls and stanzas to send. It holds no state; unit tests run it without
//! sockets.

use iotdisco::Jid;

use crate::stanza::Head;
use crate::stream::escape;

/// What one presence stanza asks of the component.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reaction {
    /// `Engine::presence(jid, available)` calls, in order.
    pub engine: Vec<(String, bool)>,
    /// Bare JIDs whose presence the engine should forget
    /// (`Engine::forget_presence`), after the `engine` calls.
    pub forget: Vec<String>,
    /// Stanzas to send, in order.
    pub send: Vec<String>,
}

fn presence(from: &str, to: &str, kind: &str) -> String {
    format!(
        "<presence from='{}' to='{}' type='{kind}'/>",
        escape(from),
        escape(to)
    )
}

/// The reaction of the component serving `domain` to `head`, the head of a
/// `<presence/>` or `<message/>` stanza.
pub fn react(head: &Head, domain: &str) -> Reaction {
    let mut r = Reaction::default();
    let Some(from) = head.from.as_deref().and_then(|f| Jid::parse(f).ok()) else {
        return r;
    };
    let bare = from.bare().as_str();
    if bare == domain || from.bare().domain() == domain {
        return r;
    }
    let kind = head.kind.as_deref();
    if kind == Some("error") {
        if from.resource().is_some() {
            r.engine.push((from.to_string(), false));
        }
        return r;
    }
    if head.name != "presence" {
        return r;
    }
    // Answers come from the address the presence was sent to.
    let me = head
        .to
        .as_deref()
        .and_then(|t| Jid::parse(t).ok())
        .map(|t| t.bare().as_str().to_owned())
        .unwrap_or_else(|| domain.to_owned());
    match kind {
        None => r.engine.push((from.to_string(), true)),
        Some("unavailable") if from.resource().is_some() => {
            r.engine.push((from.to_string(), false));
        }
        Some("unavailable") => r.forget.push(bare.to_owned()),
        Some("subscribe") => {
            r.send.push(presence(&me, bare, "subscribed"));
            r.send.push(presence(&me, bare, "subscribe"));
        }
        Some("unsubscribe") => {
            r.send.push(presence(&me, bare, "unsubscribed"));
            r.send.push(presence(&me, bare, "unsubscribe"));
            r.forget.push(bare.to_owned());
        }
        Some("unsubscribed") => r.forget.push(bare.to_owned()),
        // `subscribed`, `probe` and unknown types: nothing.
        _ => {}
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "discovery.localhost";

    fn head(from: &str, kind: Option<&str>) -> Head {
        Head {
            name: "presence".into(),
            from: Some(from.into()),
            to: Some(D.into()),
            kind: kind.map(Into::into),
            ..Head::default()
        }
    }

    fn engine(calls: &[(&str, bool)]) -> Vec<(String, bool)> {
        calls.iter().map(|(j, a)| (j.to_string(), *a)).collect()
    }

    #[test]
    fn subscribe_is_answered_with_subscribed_and_our_subscribe() {
        let r = react(&head("thing@localhost/imc", Some("subscribe")), D);
        assert_eq!(
            r.send,
            [
                "<presence from='discovery.localhost' to='thing@localhost' type='subscribed'/>",
                "<presence from='discovery.localhost' to='thing@localhost' type='subscribe'/>",
            ]
        );
        assert!(r.engine.is_empty());
        assert_eq!(
            react(&head("thing@localhost", Some("subscribed")), D),
            Reaction::default()
        );
    }

    #[test]
    fn unsubscribe_is_answered_and_forgets_the_resources() {
        let r = react(&head("thing@localhost/imc", Some("unsubscribe")), D);
        assert_eq!(
            r.send,
            [
                "<presence from='discovery.localhost' to='thing@localhost' type='unsubscribed'/>",
                "<presence from='discovery.localhost' to='thing@localhost' type='unsubscribe'/>",
            ]
        );
        assert!(r.engine.is_empty());
        assert_eq!(r.forget, ["thing@localhost"]);
        let r = react(&head("thing@localhost", Some("unsubscribed")), D);
        assert!(r.send.is_empty() && r.engine.is_empty());
        assert_eq!(r.forget, ["thing@localhost"]);
    }

    #[test]
    fn availability_goes_to_the_engine_and_is_never_answered() {
        let r = react(&head("thing@localhost/imc", None), D);
        assert_eq!(r.engine, engine(&[("thing@localhost/imc", true)]));
        assert!(r.send.is_empty());
        let r = react(&head("thing@localhost/imc", Some("unavailable")), D);
        assert_eq!(r.engine, engine(&[("thing@localhost/imc", false)]));
        assert!(r.send.is_empty());
        // The bare-JID unavailable Prosody sends after an unsubscription:
        // presence unknown, not offline.
        let r = react(&head("thing@localhost", Some("unavailable")), D);
        assert!(r.engine.is_empty() && r.send.is_empty());
        assert_eq!(r.forget, ["thing@localhost"]);
        assert_eq!(
            react(&head("thing@localhost/imc", Some("probe")), D),
            Reaction::default()
        );
    }

    #[test]
    fn bounces_drop_full_jids_only() {
        let r = react(&head("thing@localhost/gone", Some("error")), D);
        assert_eq!(r.engine, engine(&[("thing@localhost/gone", false)]));
        assert!(r.send.is_empty());
        assert_eq!(
            react(&head("nobody@localhost", Some("error")), D),
            Reaction::default()
        );
        let mut message = head("thing@localhost/gone", Some("error"));
        message.name = "message".into();
        assert_eq!(
            react(&message, D).engine,
            engine(&[("thing@localhost/gone", false)])
        );
        message.kind = Some("chat".into());
        assert_eq!(react(&message, D), Reaction::default());
    }

    #[test]
    fn our_own_reflected_presence_and_junk_are_ignored() {
        assert_eq!(react(&head(D, Some("unavailable")), D), Reaction::default());
        assert_eq!(
            react(&head("discovery.localhost/x", None), D),
            Reaction::default()
        );
        let mut no_from = head("x@y", None);
        no_from.from = None;
        assert_eq!(react(&no_from, D), Reaction::default());
        assert_eq!(
            react(&head("a@@b/", Some("subscribe")), D),
            Reaction::default()
        );
    }
}
