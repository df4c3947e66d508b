//! `strRegEx` and `nameWildcard` on the wire (issue 7), in every namespace:
//! searches through [`Engine::handle`] find what they should, and malformed
//! ones (a regular expression that does not compile, one over the length or
//! DFA limits, `nameWildcard` with an empty `name`) get `bad-request` with the
//! reason, changing nothing.

use iotdisco::datagen::{self, GenThing};
use iotdisco::{BareJid, Config, Engine, EngineConfig, Handled, Jid, Outbox, Registry, Tag};

const REGISTRY: &str = "discovery.example.org";
const NAMESPACES: [&str; 4] = [
    "urn:xmpp:iot:discovery",
    "urn:nf:iot:disco:1.0",
    "urn:ieee:iot:disco:1.0",
    "urn:nfi:iot:disco:1.0",
];

fn engine() -> Engine {
    let reg = Registry::new(Config::default());
    let things: [(&str, Vec<Tag>); 4] = [
        (
            "a",
            vec![
                Tag::str("SN", "394812347").unwrap(),
                Tag::str("MAN", "www.ktc.se").unwrap(),
                Tag::num("TEMP1", 25.0).unwrap(),
                Tag::num("TEMP2", 10.0).unwrap(),
            ],
        ),
        (
            "b",
            vec![
                Tag::str("SN", "39487").unwrap(),
                Tag::str("MAN", "example.org").unwrap(),
                Tag::num("TEMP2", 30.0).unwrap(),
            ],
        ),
        (
            "c",
            vec![
                Tag::str("SN", "394871").unwrap(),
                Tag::str("MAN", "www.ktc.se").unwrap(),
                Tag::num("HUM", 50.0).unwrap(),
            ],
        ),
        (
            "d",
            vec![
                Tag::str("SN", "x39487").unwrap(),
                Tag::str("TEMPX", "30").unwrap(),
                Tag::num("temp_outside", 21.0).unwrap(),
            ],
        ),
    ];
    for (i, (who, mut tags)) in things.into_iter().enumerate() {
        tags.push(Tag::str("KEY", &format!("key-{i}")).unwrap());
        let g = GenThing {
            jid: Jid::parse(&format!("{who}@example.org/t")).unwrap(),
            owner: BareJid::parse("owner@example.org").unwrap(),
            tags,
        };
        datagen::install(&reg, &g).unwrap();
    }
    Engine::new(REGISTRY, reg, EngineConfig::default()).unwrap()
}

fn search(e: &Engine, ns: &str, ops: &str) -> String {
    let stanza = format!(
        "<iq type='get' from='app@example.org/x' to='{REGISTRY}' id='s1'>\
         <search xmlns='{ns}' offset='0' maxCount='20'>{ops}</search></iq>"
    );
    let mut out = Outbox::new();
    assert_eq!(
        e.handle(stanza.as_bytes(), 1, &mut out),
        Handled::Done,
        "{stanza}"
    );
    let replies = out.to_strings();
    assert_eq!(replies.len(), 1, "{replies:?}");
    replies.into_iter().next().unwrap()
}

/// The bare JIDs of the things in a search result, in order.
fn found(reply: &str) -> Vec<String> {
    assert!(
        reply.contains("type='result'") || reply.contains("type=\"result\""),
        "{reply}"
    );
    reply
        .split("<thing ")
        .skip(1)
        .filter_map(|t| {
            let at = t.find("jid=")? + 5;
            let end = t[at..].find(['\'', '"'])?;
            Some(t[at..at + end].to_string())
        })
        .collect()
}

fn bad_request(reply: &str, reason: &str) {
    assert!(
        reply.contains("type='error'") || reply.contains("type=\"error\""),
        "{reply}"
    );
    assert!(reply.contains("<bad-request"), "{reply}");
    assert!(reply.contains(reason), "expected '{reason}' in {reply}");
}

#[test]
fn str_regex_matches_whole_values_in_every_namespace() {
    let e = engine();
    for ns in NAMESPACES {
        let r = search(&e, ns, "<strRegEx name='SN' value='^3948[0-9]*7$'/>");
        assert_eq!(found(&r), ["a@example.org", "b@example.org"], "{ns}: {r}");
        // Anchored whatever the pattern says.
        let r = search(&e, ns, "<strRegEx name='SN' value='3948[0-9]*7'/>");
        assert_eq!(found(&r), ["a@example.org", "b@example.org"], "{ns}: {r}");
        let r = search(
            &e,
            ns,
            "<strRegEx name='SN' value='^3948[0-9]*7$'/><strEq name='MAN' value='www.ktc.se'/>",
        );
        assert_eq!(found(&r), ["a@example.org"], "{ns}: {r}");
        // Escapes of XML reach the pattern unchanged.
        let r = search(&e, ns, "<strRegEx name='SN' value='.*87&#x24;'/>");
        assert_eq!(found(&r), ["b@example.org", "d@example.org"], "{ns}: {r}");
        // Literal: an equality.
        let r = search(&e, ns, "<strRegEx name='sn' value='39487'/>");
        assert_eq!(found(&r), ["b@example.org"], "{ns}: {r}");
        let r = search(&e, ns, "<strRegEx name='KEY' value='.*'/>");
        assert_eq!(found(&r), Vec::<String>::new(), "{ns}: {r}");
    }
}

#[test]
fn name_wildcard_matches_any_tag_whose_name_matches() {
    let e = engine();
    for ns in NAMESPACES {
        let r = search(&e, ns, "<numGt name='TEMP*' nameWildcard='*' value='20'/>");
        // a: TEMP1 25; b: TEMP2 30; d: TEMP_OUTSIDE 21 (names are case-insensitive);
        // d's TEMPX is a string.
        assert_eq!(
            found(&r),
            ["a@example.org", "b@example.org", "d@example.org"],
            "{ns}: {r}"
        );
        // Any of the matching tags: a's TEMP2 is 10, its TEMP1 is not.
        let r = search(&e, ns, "<numLt name='temp?' nameWildcard='?' value='20'/>");
        assert_eq!(found(&r), ["a@example.org"], "{ns}: {r}");
        let r = search(&e, ns, "<strEq name='TEMP*' nameWildcard='*' value='30'/>");
        assert_eq!(found(&r), ["d@example.org"], "{ns}: {r}");
        let r = search(
            &e,
            ns,
            "<strRegEx name='*' nameWildcard='*' value='www\\..*'/><numGtEq name='*' nameWildcard='*' value='50'/>",
        );
        assert_eq!(found(&r), ["c@example.org"], "{ns}: {r}");
        // KEY never matches, not even through a wildcard.
        let r = search(
            &e,
            ns,
            "<strMask name='K*' nameWildcard='*' value='key*' wildcard='*'/>",
        );
        assert_eq!(found(&r), Vec::<String>::new(), "{ns}: {r}");
        // The spec's example: a mask no stored name can match is no error.
        let r = search(
            &e,
            ns,
            "<numGtEq name='urn:nfi:iot:hi:sensor:*' nameWildcard='*' value='1.0'/>",
        );
        assert_eq!(found(&r), Vec::<String>::new(), "{ns}: {r}");
        // An empty nameWildcard is no wildcard.
        let r = search(&e, ns, "<numGt name='TEMP1' nameWildcard='' value='20'/>");
        assert_eq!(found(&r), ["a@example.org"], "{ns}: {r}");
    }
}

#[test]
fn malformed_patterns_are_bad_requests() {
    let e = engine();
    let before = e.registry().export();
    for ns in NAMESPACES {
        bad_request(
            &search(&e, ns, "<strRegEx name='SN' value='3948[0-9'/>"),
            "cannot be compiled",
        );
        bad_request(
            &search(&e, ns, "<strRegEx name='SN' value='a)|(b'/>"),
            "cannot be compiled",
        );
        let long = "a".repeat(iotdisco::query::pattern::MAX_REGEX_BYTES + 1);
        bad_request(
            &search(&e, ns, &format!("<strRegEx name='SN' value='{long}'/>")),
            "longer than",
        );
        // Over the DFA size limit.
        bad_request(
            &search(&e, ns, "<strRegEx name='SN' value='[01]*1[01]{20}'/>"),
            "cannot be compiled",
        );
        bad_request(
            &search(&e, ns, "<strRegEx name='SN'/>"),
            "needs a value attribute",
        );
        bad_request(
            &search(&e, ns, "<numGt name='' nameWildcard='*' value='20'/>"),
            "non-empty name",
        );
        bad_request(
            &search(&e, ns, "<numGt nameWildcard='*' value='20'/>"),
            "needs a name attribute",
        );
        bad_request(
            &search(&e, ns, "<numGt name='T*' nameWildcard='*' value='x'/>"),
            "",
        );
    }
    assert_eq!(e.registry().export(), before);
}
