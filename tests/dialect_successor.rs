//! The successor dialect (IEEE / Neuro-Foundation "IoT Discovery", as
//! IoTGateway's `ThingRegistryClient` speaks it) through the wire engine, and its
//! coexistence with XEP-0347 on one registry.
//!
//! Requests are written exactly as that client builds them
//! (`../shared/interop/successor-dialect.md`): single-quoted attributes in its
//! order (`xmlns`, `id`, `src`, `pt`, `selfOwned`; `public` always on `mine`;
//! `offset`/`maxCount` always on `search`), no white space between elements,
//! numbers as .NET writes doubles (`1`, `-71.519722`, `1E+20`). `<found/>`
//! replies are compared byte for byte (that client casts every child node of
//! `found` to an element, so one text node breaks it); other replies and
//! notifications are compared as parsed XML (names, namespaces, attributes in any
//! order; `'*'` matches any value, for the ids the engine generates).
//!
//! One scenario per successor namespace (`nf`, `ieee`, `nfi`: the last is
//! notified in `nf`, which that client handles), cross-dialect scenarios
//! (register in one namespace, claim and search in another; notifications follow
//! the namespace the thing last registered or updated with), and malformed input
//! (unknown namespace, mixed namespaces, non-finite numbers, over-long names).

use std::collections::HashSet;

use iotdisco::{
    BareJid, Config, Engine, EngineConfig, Foreign, Handled, NodeAddress, Outbox, Registry,
    TagName, TagValue, ThingKey,
};

const REGISTRY: &str = "discovery.example.org";
const XEP: &str = "urn:xmpp:iot:discovery";
const NF: &str = "urn:nf:iot:disco:1.0";
const IEEE: &str = "urn:ieee:iot:disco:1.0";
const NFI: &str = "urn:nfi:iot:disco:1.0";
const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

const LAMP: &str = "lamp@example.org/l";
const RACK: &str = "rack@example.org/plc";
const GW: &str = "gw@example.org/g";
const OWNER: &str = "owner@example.org/app";

// ---------------------------------------------------------------------------
// Parsed comparison
// ---------------------------------------------------------------------------

#[path = "common/xml.rs"]
mod xml;
use xml::{El, matches, tree};

// ---------------------------------------------------------------------------
// The host
// ---------------------------------------------------------------------------

struct Host {
    engine: Engine,
    now: u64,
}

impl Host {
    fn new() -> Self {
        Host::with(Config::default(), EngineConfig::default())
    }

    fn with(config: Config, engine: EngineConfig) -> Self {
        Host {
            engine: Engine::new(REGISTRY, Registry::new(config), engine).unwrap(),
            now: 1_000,
        }
    }

    /// Feeds one stanza (it must be handled); returns what was emitted.
    fn send(&mut self, stanza: &str) -> Vec<String> {
        let mut out = Outbox::new();
        let h = self.engine.handle(stanza.as_bytes(), self.now, &mut out);
        assert_eq!(h, Handled::Done, "{stanza}");
        let got = out.to_strings();
        for g in &got {
            assert!(!g.contains("> <") && !g.contains(">\n"), "compact: {g}");
        }
        got
    }

    /// Feeds one stanza and compares what was emitted with `want`, parsed.
    /// Returns the emitted trees.
    fn expect(&mut self, stanza: &str, want: &[&str]) -> Vec<El> {
        let got = self.send(stanza);
        assert_eq!(got.len(), want.len(), "sent {stanza}\n got {got:#?}");
        want.iter()
            .zip(&got)
            .map(|(w, g)| {
                let gt = tree(g);
                assert!(matches(&tree(w), &gt), "sent {stanza}\nwant {w}\n got {g}");
                gt
            })
            .collect()
    }

    /// Feeds one stanza and expects exactly one stanza, byte for byte.
    fn exact(&mut self, stanza: &str, want: &str) {
        let got = self.send(stanza);
        assert_eq!(got, [want], "sent {stanza}");
    }

    /// The error condition and text of the single reply to `stanza`.
    fn error(&mut self, stanza: &str) -> (String, String) {
        let got = self.send(stanza);
        assert_eq!(got.len(), 1, "{got:?}");
        let t = tree(&got[0]);
        assert_eq!(t.attrs["type"], "error", "{}", got[0]);
        let e = &t.children[0];
        let cond = e.children.iter().find(|c| c.name != "text").unwrap();
        assert_eq!(cond.ns, STANZAS);
        let text = e
            .children
            .iter()
            .find(|c| c.name == "text")
            .map(|c| c.text.clone())
            .unwrap_or_default();
        (cond.name.clone(), text)
    }

    fn owner_of(&self, jid: &str, node: NodeAddress) -> Option<String> {
        let key = ThingKey {
            jid: BareJid::parse(jid).unwrap(),
            node,
        };
        self.engine
            .registry()
            .get(&key)
            .expect("registered")
            .owner
            .map(|o| o.as_str().to_string())
    }
}

fn set(from: &str, id: &str, payload: &str) -> String {
    format!("<iq type='set' from='{from}' to='{REGISTRY}' id='{id}'>{payload}</iq>")
}

fn get(from: &str, id: &str, payload: &str) -> String {
    format!("<iq type='get' from='{from}' to='{REGISTRY}' id='{id}'>{payload}</iq>")
}

fn result(to: &str, id: &str) -> String {
    format!("<iq type='result' from='{REGISTRY}' to='{to}' id='{id}'/>")
}

fn result_with(to: &str, id: &str, payload: &str) -> String {
    format!("<iq type='result' from='{REGISTRY}' to='{to}' id='{id}'>{payload}</iq>")
}

fn notification(to: &str, payload: &str) -> String {
    format!("<iq type='set' from='{REGISTRY}' to='{to}' id='*'>{payload}</iq>")
}

fn ack(from: &str, id: &str) -> String {
    format!("<iq type='result' from='{from}' to='{REGISTRY}' id='{id}'/>")
}

fn node(id: &str, src: &str, pt: &str) -> NodeAddress {
    NodeAddress::new(Some(id), Some(src), Some(pt)).unwrap()
}

/// The lamp's tags as the client writes them (Mock Lamp: KEY first).
const LAMP_TAGS: &str = "<str name='KEY' value='8B4C6E2F1A3D4B5C6D7E8F9012345678'/><str name='CLASS' value='Lamp'/><str name='MAN' value='waher.se'/><str name='MODEL' value='Mock Lamp'/><num name='V' value='1'/><num name='LAT' value='-71.519722'/><num name='BIG' value='1E+20'/>";
/// The same tags as a claim app sends them after decoding the claim URI
/// (`#V=1.0` re-formatted to `1`, another order).
const LAMP_CLAIM: &str = "<str name='MAN' value='waher.se'/><str name='MODEL' value='Mock Lamp'/><num name='V' value='1'/><str name='CLASS' value='Lamp'/><num name='LAT' value='-71.519722'/><num name='BIG' value='1E+20'/><str name='KEY' value='8B4C6E2F1A3D4B5C6D7E8F9012345678'/>";
/// A concentrator node's tags (Concentrator: 64 hex KEY, node meta data).
const RACK_TAGS: &str = "<str name='KEY' value='00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF'/><str name='CLASS' value='PLC'/><str name='MAN' value='waher.se'/><str name='SN' value='PLC-0001'/>";
const GW_TAGS: &str = "<str name='CLASS' value='Gateway'/><str name='MAN' value='waher.se'/><num name='V' value='3.5'/>";

/// The whole life cycle in namespace `ns`; notifications are expected in `nns`.
fn scenario(ns: &str, nns: &str) {
    let mut h = Host::new();

    // disco#info: all four dialects.
    let info = h.send(&get(
        OWNER,
        "i1",
        "<query xmlns='http://jabber.org/protocol/disco#info'/>",
    ));
    let t = tree(&info[0]);
    let features: HashSet<&str> = t.children[0]
        .children
        .iter()
        .filter(|c| c.name == "feature")
        .map(|c| c.attrs["var"].as_str())
        .collect();
    for f in [XEP, NF, IEEE, NFI] {
        assert!(features.contains(f), "{f} in {info:?}");
    }

    // register without node address.
    h.exact(
        &set(
            LAMP,
            "r1",
            &format!("<register xmlns='{ns}'>{LAMP_TAGS}</register>"),
        ),
        &result(LAMP, "r1"),
    );
    // register with node address (id, src, pt).
    h.exact(
        &set(
            RACK,
            "r2",
            &format!("<register xmlns='{ns}' id='n1' src='MeteringTopology' pt='Cache'>{RACK_TAGS}</register>"),
        ),
        &result(RACK, "r2"),
    );
    // self-owned register: public and claimed by itself at once.
    h.exact(
        &set(
            GW,
            "r3",
            &format!("<register xmlns='{ns}' selfOwned='true'>{GW_TAGS}</register>"),
        ),
        &result(GW, "r3"),
    );
    assert_eq!(
        h.owner_of("gw@example.org", NodeAddress::default())
            .as_deref(),
        Some("gw@example.org")
    );

    // claim, public: the reply names the thing; the notification carries public='true'.
    let out = h.expect(
        &set(
            OWNER,
            "c1",
            &format!("<mine xmlns='{ns}' public='true'>{LAMP_CLAIM}</mine>"),
        ),
        &[
            &result_with(
                OWNER,
                "c1",
                &format!("<claimed xmlns='{ns}' jid='lamp@example.org'/>"),
            ),
            &notification(
                LAMP,
                &format!("<claimed xmlns='{nns}' jid='owner@example.org' public='true'/>"),
            ),
        ],
    );
    let nid = out[1].attrs["id"].clone();
    assert!(h.send(&ack(LAMP, &nid)).is_empty());

    // claim, private, of a node: the reply carries the node address.
    let out = h.expect(
        &set(OWNER, "c2", &format!("<mine xmlns='{ns}' public='false'>{RACK_TAGS}</mine>")),
        &[
            &result_with(
                OWNER,
                "c2",
                &format!("<claimed xmlns='{ns}' jid='rack@example.org' id='n1' src='MeteringTopology' pt='Cache'/>"),
            ),
            &notification(
                RACK,
                &format!("<claimed xmlns='{nns}' jid='owner@example.org' public='false' id='n1' src='MeteringTopology' pt='Cache'/>"),
            ),
        ],
    );
    let nid = out[1].attrs["id"].clone();
    // The concentrator clears its KEY and at once sends an update without KEY
    // (before it acknowledges the notification).
    h.exact(
        &set(
            RACK,
            "u0",
            &format!("<update xmlns='{ns}' id='n1' src='MeteringTopology' pt='Cache'><str name='CLASS' value='PLC'/><str name='MAN' value='waher.se'/><str name='SN' value='PLC-0001'/><str name='ROOM' value='Basement'/></update>"),
        ),
        &result(RACK, "u0"),
    );
    assert!(h.send(&ack(RACK, &nid)).is_empty());
    let rack = h
        .engine
        .registry()
        .get(&ThingKey {
            jid: BareJid::parse("rack@example.org").unwrap(),
            node: node("n1", "MeteringTopology", "Cache"),
        })
        .unwrap();
    assert!(rack.tags.iter().any(|t| t.name.as_str() == "ROOM"));
    assert_eq!(rack.owner.unwrap().as_str(), "owner@example.org");

    // A claimed thing registering again learns its owner (public explicit).
    h.expect(
        &set(
            LAMP,
            "r4",
            &format!("<register xmlns='{ns}'>{LAMP_TAGS}</register>"),
        ),
        &[&result_with(
            LAMP,
            "r4",
            &format!("<claimed xmlns='{ns}' jid='owner@example.org' public='true'/>"),
        )],
    );

    // search with several operators: byte-exact found, no owner, numbers short.
    let lamp_found = "<thing jid='lamp@example.org'><str name='CLASS' value='Lamp'/><str name='MAN' value='waher.se'/><str name='MODEL' value='Mock Lamp'/><num name='V' value='1'/><num name='LAT' value='-71.519722'/><num name='BIG' value='1e20'/></thing>";
    let gw_found = "<thing jid='gw@example.org'><str name='CLASS' value='Gateway'/><str name='MAN' value='waher.se'/><num name='V' value='3.5'/></thing>";
    h.exact(
        &get(
            OWNER,
            "s1",
            &format!("<search xmlns='{ns}' offset='0' maxCount='100'><strEq name='MAN' value='waher.se'/><numRange name='V' min='0' minIncluded='true' max='2' maxIncluded='true'/><strMask name='MODEL' value='Mock*' wildcard='*'/><numGtEq name='LAT' value='-90'/><numLt name='BIG' value='1E+21'/></search>"),
        ),
        &result_with(OWNER, "s1", &format!("<found xmlns='{ns}' more='false'>{lamp_found}</found>")),
    );
    // No operators: every public claimed thing (not the private rack), paged.
    h.exact(
        &get(
            OWNER,
            "s2",
            &format!("<search xmlns='{ns}' offset='0' maxCount='100'></search>"),
        ),
        &result_with(
            OWNER,
            "s2",
            &format!("<found xmlns='{ns}' more='false'>{lamp_found}{gw_found}</found>"),
        ),
    );
    h.exact(
        &get(
            OWNER,
            "s3",
            &format!("<search xmlns='{ns}' offset='0' maxCount='1'></search>"),
        ),
        &result_with(
            OWNER,
            "s3",
            &format!("<found xmlns='{ns}' more='true'>{lamp_found}</found>"),
        ),
    );
    h.exact(
        &get(
            OWNER,
            "s4",
            &format!("<search xmlns='{ns}' offset='1' maxCount='1'></search>"),
        ),
        &result_with(
            OWNER,
            "s4",
            &format!("<found xmlns='{ns}' more='false'>{gw_found}</found>"),
        ),
    );
    // A search hits KEY never.
    h.exact(
        &get(
            OWNER,
            "s5",
            &format!("<search xmlns='{ns}' offset='0' maxCount='100'><strEq name='KEY' value='8B4C6E2F1A3D4B5C6D7E8F9012345678'/></search>"),
        ),
        &result_with(OWNER, "s5", &format!("<found xmlns='{ns}' more='false'/>")),
    );

    // update by the thing, then by its owner.
    h.exact(
        &set(
            LAMP,
            "u1",
            &format!("<update xmlns='{ns}'><num name='V' value='2'/></update>"),
        ),
        &result(LAMP, "u1"),
    );
    h.exact(
        &set(
            OWNER,
            "u2",
            &format!("<update xmlns='{ns}' jid='lamp@example.org'><str name='ROOM' value='Kitchen'/></update>"),
        ),
        &result(OWNER, "u2"),
    );
    h.exact(
        &get(
            OWNER,
            "s6",
            &format!("<search xmlns='{ns}' offset='0' maxCount='100'><strEq name='ROOM' value='Kitchen'/><numEq name='V' value='2'/></search>"),
        ),
        &result_with(
            OWNER,
            "s6",
            &format!("<found xmlns='{ns}' more='false'><thing jid='lamp@example.org'><str name='CLASS' value='Lamp'/><str name='MAN' value='waher.se'/><str name='MODEL' value='Mock Lamp'/><num name='V' value='2'/><num name='LAT' value='-71.519722'/><num name='BIG' value='1e20'/><str name='ROOM' value='Kitchen'/></thing></found>"),
        ),
    );

    // remove the node: empty reply, `removed` to the concentrator.
    let out = h.expect(
        &set(
            OWNER,
            "x1",
            &format!("<remove xmlns='{ns}' jid='rack@example.org' id='n1' src='MeteringTopology' pt='Cache'/>"),
        ),
        &[
            &result(OWNER, "x1"),
            &notification(
                RACK,
                &format!("<removed xmlns='{nns}' id='n1' src='MeteringTopology' pt='Cache'/>"),
            ),
        ],
    );
    assert!(h.send(&ack(RACK, &out[1].attrs["id"])).is_empty());

    // disown, and the app's race: it registers again (new KEY) before it
    // acknowledges `disowned`. The register completes the disown (the owner's
    // reply goes first) and is served against the now unclaimed lamp.
    let out = h.expect(
        &set(
            OWNER,
            "d1",
            &format!("<disown xmlns='{ns}' jid='lamp@example.org'/>"),
        ),
        &[&notification(LAMP, &format!("<disowned xmlns='{nns}'/>"))],
    );
    let nid = out[0].attrs["id"].clone();
    let new_tags = "<str name='KEY' value='FFEEDDCCBBAA99887766554433221100'/><str name='CLASS' value='Lamp'/><str name='MAN' value='waher.se'/><str name='MODEL' value='Mock Lamp'/><num name='V' value='2'/>";
    let got = h.send(&set(
        LAMP,
        "r5",
        &format!("<register xmlns='{ns}'>{new_tags}</register>"),
    ));
    assert_eq!(got, [result(OWNER, "d1"), result(LAMP, "r5")]);
    assert_eq!(h.owner_of("lamp@example.org", NodeAddress::default()), None);
    // The late acknowledgement is absorbed.
    assert!(h.send(&ack(LAMP, &nid)).is_empty());
    assert_eq!(h.engine.outstanding(), 0);
    // The lamp can be claimed again with its new tags.
    let claim = "<str name='CLASS' value='Lamp'/><str name='MAN' value='waher.se'/><str name='MODEL' value='Mock Lamp'/><num name='V' value='2'/><str name='KEY' value='FFEEDDCCBBAA99887766554433221100'/>";
    let out = h.send(&set(
        OWNER,
        "c3",
        &format!("<mine xmlns='{ns}' public='true'>{claim}</mine>"),
    ));
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(out[0].contains("<claimed"), "{out:?}");

    // unregister: the self-owned gateway leaves.
    h.exact(
        &set(GW, "g1", &format!("<unregister xmlns='{ns}'/>")),
        &result(GW, "g1"),
    );
    assert!(
        h.engine
            .registry()
            .get(&ThingKey {
                jid: BareJid::parse("gw@example.org").unwrap(),
                node: NodeAddress::default(),
            })
            .is_none()
    );
    h.engine.registry().check_consistency().unwrap();
}

#[test]
fn nf_scenario() {
    scenario(NF, NF);
}

#[test]
fn ieee_scenario() {
    scenario(IEEE, IEEE);
}

#[test]
fn nfi_scenario_is_notified_in_nf() {
    scenario(NFI, NF);
}

#[test]
fn an_unregister_before_the_ack_completes_the_disown_too() {
    let mut h = Host::new();
    h.exact(
        &set(
            RACK,
            "r1",
            &format!(
                "<register xmlns='{NF}' id='n1' src='MeteringTopology'>{RACK_TAGS}</register>"
            ),
        ),
        &result(RACK, "r1"),
    );
    let out = h.send(&set(
        OWNER,
        "c1",
        &format!("<mine xmlns='{NF}' public='true'>{RACK_TAGS}</mine>"),
    ));
    assert_eq!(out.len(), 2);
    assert!(h.send(&ack(RACK, &tree(&out[1]).attrs["id"])).is_empty());
    let out = h.expect(
        &set(
            OWNER,
            "d1",
            &format!(
                "<disown xmlns='{NF}' jid='rack@example.org' id='n1' src='MeteringTopology'/>"
            ),
        ),
        &[&notification(
            RACK,
            &format!("<disowned xmlns='{NF}' id='n1' src='MeteringTopology'/>"),
        )],
    );
    let nid = out[0].attrs["id"].clone();
    // Another node's unregister is no acknowledgement.
    h.exact(
        &set(
            RACK,
            "x0",
            &format!("<unregister xmlns='{NF}' id='n2' src='MeteringTopology'/>"),
        ),
        &result(RACK, "x0"),
    );
    assert_eq!(h.engine.registry().stats().pending_disowns, 1);
    let got = h.send(&set(
        RACK,
        "x1",
        &format!("<unregister xmlns='{NF}' id='n1' src='MeteringTopology'/>"),
    ));
    assert_eq!(got, [result(OWNER, "d1"), result(RACK, "x1")]);
    assert!(h.engine.registry().is_empty());
    assert!(h.send(&ack(RACK, &nid)).is_empty());
    assert_eq!(h.engine.outstanding(), 0);
    assert_eq!(h.engine.registry().stats().pending_disowns, 0);
}

#[test]
fn a_register_in_the_xep_namespace_also_acknowledges_a_disown() {
    let mut h = Host::new();
    let tags = "<str name='SN' value='1'/><str name='KEY' value='k'/>";
    h.send(&set(
        LAMP,
        "r1",
        &format!("<register xmlns='{XEP}'>{tags}</register>"),
    ));
    h.send(&set(
        OWNER,
        "c1",
        &format!("<mine xmlns='{XEP}'>{tags}</mine>"),
    ));
    let out = h.send(&set(
        OWNER,
        "d1",
        &format!("<disown xmlns='{XEP}' jid='lamp@example.org'/>"),
    ));
    assert_eq!(out.len(), 1);
    let got = h.send(&set(
        LAMP,
        "r2",
        &format!("<register xmlns='{XEP}'>{tags}</register>"),
    ));
    assert_eq!(got, [result(OWNER, "d1"), result(LAMP, "r2")]);
}

// ---------------------------------------------------------------------------
// Cross-dialect
// ---------------------------------------------------------------------------

#[test]
fn register_in_xep_claim_in_nf_search_in_ieee() {
    let mut h = Host::new();
    h.exact(
        &set(
            RACK,
            "r1",
            &format!("<register xmlns='{XEP}' nodeId='n1' sourceId='MeteringTopology'><str name='SN' value='X1'/><num name='V' value='1.0'/><str name='KEY' value='k1'/></register>"),
        ),
        &result(RACK, "r1"),
    );
    // The successor app claims it (numbers as .NET writes them); the thing is
    // notified in its own (XEP) namespace, `public` as the XEP listings show it.
    h.expect(
        &set(
            OWNER,
            "c1",
            &format!("<mine xmlns='{NF}' public='true'><str name='KEY' value='k1'/><num name='V' value='1'/><str name='SN' value='X1'/></mine>"),
        ),
        &[
            &result_with(
                OWNER,
                "c1",
                &format!("<claimed xmlns='{NF}' jid='rack@example.org' id='n1' src='MeteringTopology'/>"),
            ),
            &notification(
                RACK,
                &format!("<claimed xmlns='{XEP}' jid='owner@example.org' nodeId='n1' sourceId='MeteringTopology'/>"),
            ),
        ],
    );
    // Found in IEEE with successor node attribute names, no owner ...
    h.exact(
        &get(
            OWNER,
            "s1",
            &format!("<search xmlns='{IEEE}' offset='0' maxCount='100'><strEq name='SN' value='X1'/></search>"),
        ),
        &result_with(
            OWNER,
            "s1",
            &format!("<found xmlns='{IEEE}' more='false'><thing jid='rack@example.org' id='n1' src='MeteringTopology'><str name='SN' value='X1'/><num name='V' value='1'/></thing></found>"),
        ),
    );
    // ... and in XEP with XEP names and the owner.
    h.exact(
        &get(
            OWNER,
            "s2",
            &format!("<search xmlns='{XEP}'><strEq name='SN' value='X1'/></search>"),
        ),
        &result_with(
            OWNER,
            "s2",
            &format!("<found xmlns='{XEP}' more='false'><thing owner='owner@example.org' jid='rack@example.org' nodeId='n1' sourceId='MeteringTopology'><str name='SN' value='X1'/><num name='V' value='1'/></thing></found>"),
        ),
    );
    // The owner removes it in XEP: `removed` in XEP (the thing's namespace).
    h.expect(
        &set(
            OWNER,
            "x1",
            &format!("<remove xmlns='{XEP}' jid='rack@example.org' nodeId='n1' sourceId='MeteringTopology'/>"),
        ),
        &[
            &result(OWNER, "x1"),
            &notification(RACK, &format!("<removed xmlns='{XEP}' nodeId='n1' sourceId='MeteringTopology'/>")),
        ],
    );
}

#[test]
fn register_in_nf_claim_and_search_in_xep() {
    let mut h = Host::with(
        Config::default(),
        EngineConfig {
            hide_owner_in_xep_results: true,
            ..EngineConfig::default()
        },
    );
    h.send(&set(
        LAMP,
        "r1",
        &format!("<register xmlns='{NF}'>{LAMP_TAGS}</register>"),
    ));
    // Claimed in XEP (no `public`: true by default); the lamp hears it in nf,
    // with `public` explicit.
    h.expect(
        &set(
            OWNER,
            "c1",
            &format!("<mine xmlns='{XEP}'><str name='KEY' value='8B4C6E2F1A3D4B5C6D7E8F9012345678'/><str name='CLASS' value='Lamp'/><str name='MAN' value='waher.se'/><str name='MODEL' value='Mock Lamp'/><num name='V' value='1.0'/><num name='LAT' value='-71.519722'/><num name='BIG' value='1e20'/></mine>"),
        ),
        &[
            &result_with(OWNER, "c1", &format!("<claimed xmlns='{XEP}' jid='lamp@example.org'/>")),
            &notification(
                LAMP,
                &format!("<claimed xmlns='{NF}' jid='owner@example.org' public='true'/>"),
            ),
        ],
    );
    // The switch leaves the owner out of XEP results too.
    h.exact(
        &get(OWNER, "s1", &format!("<search xmlns='{XEP}'><strEq name='CLASS' value='Lamp'/></search>")),
        &result_with(
            OWNER,
            "s1",
            &format!("<found xmlns='{XEP}' more='false'><thing jid='lamp@example.org'><str name='CLASS' value='Lamp'/><str name='MAN' value='waher.se'/><str name='MODEL' value='Mock Lamp'/><num name='V' value='1'/><num name='LAT' value='-71.519722'/><num name='BIG' value='1e20'/></thing></found>"),
        ),
    );
}

/// The namespace of the payload of the single notification in `out`.
fn notified_ns(out: &[String]) -> String {
    let n = out
        .iter()
        .find(|s| s.starts_with("<iq type='set'"))
        .expect("a notification");
    tree(n).children[0].ns.clone()
}

#[test]
fn notifications_follow_the_things_last_namespace() {
    let mut h = Host::new();
    let tags = "<str name='SN' value='1'/><str name='KEY' value='k'/>";
    h.send(&set(
        LAMP,
        "r1",
        &format!("<register xmlns='{XEP}'>{tags}</register>"),
    ));
    // Updates of an unclaimed thing answer `disowned` but still show its dialect.
    let got = h.send(&set(
        LAMP,
        "u1",
        &format!("<update xmlns='{IEEE}'><num name='V' value='1'/></update>"),
    ));
    assert!(
        got[0].contains(&format!("<disowned xmlns='{IEEE}'/>")),
        "{got:?}"
    );
    let out = h.send(&set(
        OWNER,
        "c1",
        &format!("<mine xmlns='{XEP}'>{tags}</mine>"),
    ));
    assert_eq!(notified_ns(&out), IEEE);
    // An update by the OWNER in nf does not change what the thing speaks.
    h.send(&set(
        OWNER,
        "u2",
        &format!("<update xmlns='{NF}' jid='lamp@example.org'><num name='V' value='2'/></update>"),
    ));
    // The thing updates in nfi: notified in nf.
    h.send(&set(
        LAMP,
        "u3",
        &format!("<update xmlns='{NFI}'><num name='V' value='3'/></update>"),
    ));
    let out = h.send(&set(
        OWNER,
        "d1",
        &format!("<disown xmlns='{XEP}' jid='lamp@example.org'/>"),
    ));
    assert_eq!(notified_ns(&out), NF);
    assert!(
        out[0].contains(&format!("<disowned xmlns='{NF}'/>")),
        "{out:?}"
    );
    // Refused as an unknown element: the Smack fallback `disown` keeps the dialect.
    let nid = tree(&out[0]).attrs["id"].clone();
    let err = format!(
        "<iq type='error' from='{LAMP}' to='{REGISTRY}' id='{nid}'><error type='cancel'><feature-not-implemented xmlns='{STANZAS}'/></error></iq>"
    );
    let out = h.send(&err);
    assert!(
        out[0].contains(&format!("<disown xmlns='{NF}'/>")),
        "{out:?}"
    );
    // Back to XEP: notified in XEP again.
    let nid = tree(&out[0]).attrs["id"].clone();
    let got = h.send(&ack(LAMP, &nid));
    assert_eq!(got, [result(OWNER, "d1")]);
    let tags2 = "<str name='SN' value='2'/><str name='KEY' value='k2'/>";
    h.send(&set(
        LAMP,
        "r2",
        &format!("<register xmlns='{XEP}'>{tags2}</register>"),
    ));
    let out = h.send(&set(
        OWNER,
        "c2",
        &format!("<mine xmlns='{NF}' public='true'>{tags2}</mine>"),
    ));
    assert_eq!(notified_ns(&out), XEP);
}

#[test]
fn the_dialect_memory_is_bounded() {
    let mut h = Host::with(
        Config::default(),
        EngineConfig {
            max_remembered_dialects: 1,
            ..EngineConfig::default()
        },
    );
    let tags = |i: u32| format!("<str name='SN' value='{i}'/><str name='KEY' value='k{i}'/>");
    h.send(&set(
        "a@example.org/x",
        "r1",
        &format!("<register xmlns='{NF}'>{}</register>", tags(1)),
    ));
    h.send(&set(
        "b@example.org/x",
        "r2",
        &format!("<register xmlns='{IEEE}'>{}</register>", tags(2)),
    ));
    // a was evicted (oldest): back to the XEP default; b is remembered.
    let out = h.send(&set(
        OWNER,
        "c1",
        &format!("<mine xmlns='{NF}' public='true'>{}</mine>", tags(1)),
    ));
    assert_eq!(notified_ns(&out), XEP);
    let out = h.send(&set(
        OWNER,
        "c2",
        &format!("<mine xmlns='{NF}' public='true'>{}</mine>", tags(2)),
    ));
    assert_eq!(notified_ns(&out), IEEE);
}

// ---------------------------------------------------------------------------
// Malformed
// ---------------------------------------------------------------------------

#[test]
fn an_unknown_namespace_is_not_ours() {
    let stanza = set(
        LAMP,
        "r1",
        "<register xmlns='urn:nf:iot:disco:2.0'><str name='SN' value='1'/></register>",
    );
    let h = Host::new();
    let mut out = Outbox::new();
    assert_eq!(
        h.engine.handle(stanza.as_bytes(), 0, &mut out),
        Handled::NotMine
    );
    assert!(out.is_empty());
    let mut c = Host::with(
        Config::default(),
        EngineConfig {
            foreign: Foreign::ServiceUnavailable,
            ..EngineConfig::default()
        },
    );
    assert_eq!(c.error(&stanza).0, "service-unavailable");
    assert!(c.engine.registry().is_empty() && h.engine.registry().is_empty());
}

#[test]
fn mixing_namespaces_in_one_request_is_a_bad_request() {
    let mut h = Host::new();
    for (from, payload) in [
        (
            LAMP,
            format!(
                "<register xmlns='{NF}'><str name='SN' value='1'/><str xmlns='{XEP}' name='MAN' value='m'/></register>"
            ),
        ),
        (
            LAMP,
            format!("<register xmlns='{XEP}'><num xmlns='{IEEE}' name='V' value='1'/></register>"),
        ),
        (
            LAMP,
            format!("<update xmlns='{NFI}'><str xmlns='{NF}' name='V' value='1'/></update>"),
        ),
        (
            OWNER,
            format!(
                "<mine xmlns='{NF}' public='true'><str xmlns='{IEEE}' name='SN' value='1'/></mine>"
            ),
        ),
        (
            OWNER,
            format!("<remove xmlns='{NF}' jid='lamp@example.org'><x xmlns='{XEP}'/></remove>"),
        ),
    ] {
        let (cond, text) = h.error(&set(from, "m1", &payload));
        assert_eq!(cond, "bad-request", "{payload}");
        assert!(!text.is_empty(), "{payload}");
    }
    let (cond, text) = h.error(&get(
        OWNER,
        "m2",
        &format!("<search xmlns='{NF}' offset='0' maxCount='10'><strEq name='SN' value='1'/><p:strEq xmlns:p='{XEP}' name='MAN' value='m'/></search>"),
    ));
    assert_eq!(cond, "bad-request");
    assert!(text.contains("does not mix namespaces"), "{text}");
    assert!(h.engine.registry().is_empty());
}

#[test]
fn non_finite_numbers_are_refused_and_never_stored() {
    let mut h = Host::new();
    for ns in [NF, XEP] {
        for v in [
            "NaN",
            "Infinity",
            "-Infinity",
            "INF",
            "-INF",
            "inf",
            "nan",
            "1E+400",
        ] {
            let (cond, text) = h.error(&set(
                LAMP,
                "n1",
                &format!("<register xmlns='{ns}'><str name='SN' value='1'/><num name='V' value='{v}'/></register>"),
            ));
            assert_eq!(cond, "bad-request", "{v}");
            assert!(text.contains("finite"), "{v}: {text}");
            let (cond, _) = h.error(&get(
                OWNER,
                "n2",
                &format!("<search xmlns='{ns}' offset='0' maxCount='100'><numGt name='V' value='{v}'/></search>"),
            ));
            assert_eq!(cond, "bad-request", "{v}");
        }
    }
    assert!(h.engine.registry().is_empty());
    // What that client does write is read exactly.
    h.exact(
        &set(
            LAMP,
            "n3",
            &format!("<register xmlns='{NF}' selfOwned='true'><num name='A' value='1'/><num name='B' value='-71.519722'/><num name='C' value='1E+20'/><num name='D' value='1E-07'/></register>"),
        ),
        &result(LAMP, "n3"),
    );
    let rec = h
        .engine
        .registry()
        .get(&ThingKey {
            jid: BareJid::parse("lamp@example.org").unwrap(),
            node: NodeAddress::default(),
        })
        .unwrap();
    let nums: Vec<f64> = rec
        .tags
        .iter()
        .map(|t| match t.value {
            TagValue::Num(n) => n.get(),
            _ => panic!("{t:?}"),
        })
        .collect();
    assert_eq!(nums, [1.0, -71.519722, 1e20, 1e-7]);
}

#[test]
fn tag_name_limits_depend_on_the_namespace() {
    let mut h = Host::new();
    let reg = |ns: &str, name: &str| {
        set(
            LAMP,
            "t1",
            &format!("<register xmlns='{ns}'><str name='{name}' value='1'/></register>"),
        )
    };
    let (n32, n33, n64, n65) = (
        "N".repeat(32),
        "N".repeat(33),
        "N".repeat(64),
        "N".repeat(65),
    );
    for ns in [NF, IEEE, NFI] {
        let (cond, text) = h.error(&reg(ns, &n65));
        assert_eq!(cond, "bad-request");
        assert!(text.contains("longer than 64"), "{text}");
        h.exact(&reg(ns, &n64), &result(LAMP, "t1"));
    }
    let (cond, text) = h.error(&reg(XEP, &n33));
    assert_eq!(cond, "bad-request");
    assert!(text.contains("longer than 32"), "{text}");
    h.exact(&reg(XEP, &n32), &result(LAMP, "t1"));
    // The same limits apply to `mine` and `update`.
    let (cond, _) = h.error(&set(
        OWNER,
        "t2",
        &format!("<mine xmlns='{XEP}'><str name='{n33}' value='1'/></mine>"),
    ));
    assert_eq!(cond, "bad-request");
    let (cond, _) = h.error(&set(
        LAMP,
        "t3",
        &format!("<update xmlns='{NF}'><str name='{n65}' value='1'/></update>"),
    ));
    assert_eq!(cond, "bad-request");
    // A 64-character name registered in nf is found from either namespace.
    h.exact(
        &set(
            LAMP,
            "t4",
            &format!(
                "<register xmlns='{NF}' selfOwned='true'><str name='{n64}' value='v'/></register>"
            ),
        ),
        &result(LAMP, "t4"),
    );
    for ns in [NF, XEP] {
        let got = h.send(&get(
            OWNER,
            "t5",
            &format!("<search xmlns='{ns}' offset='0' maxCount='10'><strEq name='{n64}' value='v'/></search>"),
        ));
        assert!(got[0].contains("<thing"), "{got:?}");
    }
    // Both limits are configurable.
    let mut c = Host::with(
        Config::default(),
        EngineConfig {
            max_tag_name_chars_xep: 40,
            max_tag_name_chars_successor: 16,
            ..EngineConfig::default()
        },
    );
    c.exact(&reg(XEP, &n33), &result(LAMP, "t1"));
    let (cond, text) = c.error(&reg(NF, &"N".repeat(17)));
    assert_eq!(cond, "bad-request");
    assert!(text.contains("longer than 16"), "{text}");
}

#[test]
fn the_successor_predefined_names_pass_any_allow_list() {
    let allow: HashSet<TagName> = [TagName::new("FOO").unwrap()].into_iter().collect();
    let mut h = Host::with(
        Config {
            allowed_tags: Some(allow),
            ..Config::default()
        },
        EngineConfig::default(),
    );
    // A numeric `R` is serialized by that client; `PURL`, `FOO` are allowed too.
    h.exact(
        &set(
            LAMP,
            "p1",
            &format!("<register xmlns='{NF}'><num name='R' value='1'/><str name='PURL' value='http://x'/><str name='FOO' value='1'/></register>"),
        ),
        &result(LAMP, "p1"),
    );
    let (cond, _) = h.error(&set(
        LAMP,
        "p2",
        &format!("<register xmlns='{NF}'><str name='BAR' value='1'/></register>"),
    ));
    assert_eq!(cond, "bad-request");
}
