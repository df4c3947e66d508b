//! The body of the `stanza` fuzz target, as plain functions that build and run
//! on stable Rust too.
//!
//! [`fuzz_stanza`] feeds one input to [`Engine::handle`] of a per-thread
//! [`Harness`]: one engine over a small registry pre-filled with registered,
//! claimed, self-owned and concentrator things (the JIDs of the XEP-0347
//! listings, so the seed corpus in `corpus/stanza/` reaches the success paths),
//! then checks that
//!
//! - every stanza the engine emitted (from `handle` and from the `tick` that
//!   follows it) is one well-formed XML element `<iq/>`: quick-xml parses it with
//!   end-name checks, every attribute and entity unescapes, every character is an
//!   XML 1.0 `Char` (quick-xml itself does not check that: the extra scan catches
//!   control characters copied from the input), and the root carries `type`,
//!   `from`, `to` and `id`;
//! - `NotMine` and `Dropped` appended nothing;
//! - [`iotdisco::Registry::check_consistency`] holds (indexes = rebuild from
//!   records), checked after every input the engine took (`Done`) and every
//!   tick that emitted something (nothing else can change the registry).
//!
//! The clock advances one second per input, so disowns and notifications time
//! out after ~30 inputs. The engine is built once per thread and kept across
//! inputs (state carries over, as in a real server); it is rebuilt when the
//! registry grows past [`RESET_AT`] things so the consistency check stays cheap.
//!
//! This file depends only on `iotdisco` and `quick-xml` (a normal dependency of
//! `iotdisco`), so a test of the main crate can include it with
//! `#[path = "../fuzz/src/lib.rs"] mod fuzz_body;` and replay the corpus on
//! stable.

use std::cell::RefCell;

use iotdisco::{
    Claim, Config, Engine, EngineConfig, Handled, Jid, NodeAddress, Outbox, Register, Registry,
    Tag, datagen,
};
use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

/// The address the engine serves (the `to` of the seed stanzas).
pub const REGISTRY_JID: &str = "discovery.example.org";

/// The harness rebuilds its engine when the registry holds more things than this.
pub const RESET_AT: usize = 256;

/// Milliseconds the clock advances per input.
pub const STEP_MS: u64 = 1_000;

fn jid(s: &str) -> Jid {
    Jid::parse(s).expect("valid JID")
}

fn s(name: &str, value: &str) -> Tag {
    Tag::str(name, value).expect("valid tag")
}

fn n(name: &str, value: f64) -> Tag {
    Tag::num(name, value).expect("valid tag")
}

/// The registry the engine starts with:
/// - `thing@example.org/imc`, registered with the tags of Listing 10, unclaimed;
/// - `thing2@example.org/imc`, registered and claimed (public) by
///   `owner@example.org`, and online;
/// - `rack@example.org/plcs` node `imc1`/`MeteringTopology`, claimed by
///   `owner@example.org`;
/// - `selfowned@example.org/imc`, registered self-owned;
/// - things 0..16 of `datagen` population 1, registered and claimed.
pub fn registry() -> Registry {
    let reg = Registry::new(Config::default());
    let listing10 = vec![
        s("SN", "394872348732948723"),
        s("MAN", "www.ktc.se"),
        s("MODEL", "IMC"),
        n("V", 1.2),
        s("KEY", "4857402340298342"),
    ];
    reg.register(
        &jid("thing@example.org/imc"),
        Register {
            node: NodeAddress::default(),
            tags: listing10,
            self_owned: false,
        },
    )
    .expect("register thing");

    let owner = jid("owner@example.org/phone");
    let thing2 = vec![
        s("SN", "394872348732948724"),
        s("MAN", "www.ktc.se"),
        s("MODEL", "IMC"),
        n("V", 1.1),
        n("LON", -71.5),
        n("LAT", -33.5),
        s("KEY", "9f1e2d3c4b5a69788796"),
    ];
    reg.register(
        &jid("thing2@example.org/imc"),
        Register {
            node: NodeAddress::default(),
            tags: thing2.clone(),
            self_owned: false,
        },
    )
    .expect("register thing2");
    reg.claim(
        &owner,
        Claim {
            tags: thing2,
            public: true,
        },
    )
    .expect("claim thing2");

    let rack = vec![
        s("CLASS", "PLC"),
        s("MAN", "www.ktc.se"),
        s("MODEL", "IMC"),
        s("KEY", "rack-imc1-key-0001"),
    ];
    reg.register(
        &jid("rack@example.org/plcs"),
        Register {
            node: NodeAddress::new(Some("imc1"), Some("MeteringTopology"), None).expect("node"),
            tags: rack.clone(),
            self_owned: false,
        },
    )
    .expect("register rack");
    reg.claim(
        &owner,
        Claim {
            tags: rack,
            public: true,
        },
    )
    .expect("claim rack");

    reg.register(
        &jid("selfowned@example.org/imc"),
        Register {
            node: NodeAddress::default(),
            tags: vec![s("SN", "100000000000000001"), s("CLASS", "Meter")],
            self_owned: true,
        },
    )
    .expect("register self-owned");

    for g in datagen::population(1, 16) {
        datagen::install(&reg, &g).expect("install");
    }
    reg
}

/// One engine, its clock and its outboxes.
pub struct Harness {
    engine: Engine,
    now_ms: u64,
    out: Outbox,
    ticked: Outbox,
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}

impl Harness {
    /// A fresh engine over [`registry`], with `thing2` online.
    pub fn new() -> Self {
        let engine =
            Engine::new(REGISTRY_JID, registry(), EngineConfig::default()).expect("registry JID");
        let mut out = Outbox::new();
        engine
            .presence("thing2@example.org/imc", true, 0, &mut out)
            .expect("presence");
        assert!(out.is_empty());
        Harness {
            engine,
            now_ms: 1_000_000,
            out,
            ticked: Outbox::new(),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// What the last [`Harness::run`] emitted from `handle` (not from `tick`).
    pub fn output(&self) -> &Outbox {
        &self.out
    }

    /// Feeds `data` to `handle`, then ticks the clock, and checks every
    /// invariant; panics with the offending stanza on a violation.
    pub fn run(&mut self, data: &[u8]) -> Handled {
        self.now_ms += STEP_MS;
        self.out.clear();
        let handled = self.engine.handle(data, self.now_ms, &mut self.out);
        if !matches!(handled, Handled::Done) {
            assert!(
                self.out.is_empty(),
                "{handled:?} but {} stanza(s) appended: {:?}",
                self.out.len(),
                self.out.to_strings()
            );
        }
        self.ticked.clear();
        self.engine.tick(self.now_ms, &mut self.ticked);
        for stanza in self.out.iter().chain(self.ticked.iter()) {
            if let Err(why) = check_stanza(stanza) {
                panic!(
                    "ill-formed stanza emitted ({why}):\n  input:  {:?}\n  output: {:?}",
                    String::from_utf8_lossy(data),
                    String::from_utf8_lossy(stanza)
                );
            }
        }
        // Only a stanza the engine took (`Done`) or a tick that did something
        // can change the registry; skipping the rest keeps the target fast.
        let touched = handled == Handled::Done || !self.ticked.is_empty();
        if touched && let Err(why) = self.engine.registry().check_consistency() {
            panic!(
                "registry inconsistent after {:?}: {why}",
                String::from_utf8_lossy(data)
            );
        }
        handled
    }

    /// Whether the state has grown enough that a fresh engine is due.
    pub fn needs_reset(&self) -> bool {
        self.engine.registry().len() > RESET_AT || self.engine.outstanding() > RESET_AT
    }
}

thread_local! {
    static HARNESS: RefCell<Option<Harness>> = const { RefCell::new(None) };
}

/// The fuzz target's body: one input through this thread's [`Harness`].
pub fn fuzz_stanza(data: &[u8]) {
    HARNESS.with(|h| {
        let mut h = h.borrow_mut();
        if h.as_ref().is_none_or(Harness::needs_reset) {
            *h = Some(Harness::new());
        }
        if let Some(h) = h.as_mut() {
            h.run(data);
        }
    });
}

/// XML 1.0 `Char` (production 2).
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

fn check_chars(what: &str, text: &str) -> Result<(), String> {
    match text.chars().find(|&c| !is_xml_char(c)) {
        Some(c) => Err(format!(
            "{what} holds U+{:04X}, not an XML character",
            c as u32
        )),
        None => Ok(()),
    }
}

/// Checks that `stanza` is one well-formed XML element `<iq/>` with `type`,
/// `from`, `to` and `id`, namespaces resolved, attributes and entities
/// unescaping to XML characters, and nothing but that element.
pub fn check_stanza(stanza: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(stanza).map_err(|e| format!("not UTF-8: {e}"))?;
    check_chars("the stanza", text)?;
    let mut r = NsReader::from_str(text);
    {
        let c = r.config_mut();
        c.check_end_names = true;
        c.check_comments = true;
        c.allow_unmatched_ends = false;
        c.expand_empty_elements = false;
    }
    let mut depth = 0usize;
    let mut roots = 0usize;
    loop {
        let (ns, ev) = r
            .read_resolved_event()
            .map_err(|e| format!("quick-xml: {e}"))?;
        if let ResolveResult::Unknown(p) = ns {
            return Err(format!(
                "undeclared prefix '{}'",
                String::from_utf8_lossy(&p)
            ));
        }
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let root = depth == 0;
                if root {
                    roots += 1;
                    if roots > 1 {
                        return Err("more than one root element".into());
                    }
                    if e.local_name().as_ref() != b"iq" {
                        return Err("the root element is not iq".into());
                    }
                }
                let mut seen = [false; 4];
                for a in e.attributes() {
                    let a = a.map_err(|e| format!("attribute: {e}"))?;
                    let (ans, _) = r.resolve_attribute(a.key);
                    if let ResolveResult::Unknown(p) = ans {
                        return Err(format!(
                            "undeclared attribute prefix '{}'",
                            String::from_utf8_lossy(&p)
                        ));
                    }
                    let v = a
                        .unescape_value()
                        .map_err(|e| format!("attribute value: {e}"))?;
                    check_chars("an attribute value", &v)?;
                    if root {
                        let k = a.key.as_ref();
                        for (i, name) in [&b"type"[..], b"from", b"to", b"id"].iter().enumerate() {
                            if k == *name {
                                seen[i] = true;
                            }
                        }
                        if k == b"type" && !matches!(&*v, "result" | "error" | "set" | "get") {
                            return Err(format!("iq type '{v}'"));
                        }
                    }
                }
                if root && seen != [true; 4] {
                    return Err("the iq lacks one of type, from, to, id".into());
                }
                if matches!(ev, Event::Start(_)) {
                    depth += 1;
                }
            }
            Event::End(_) => depth -= 1,
            Event::Text(t) => {
                if depth == 0 && !t.iter().all(u8::is_ascii_whitespace) {
                    return Err("text outside the root element".into());
                }
                let t = t.decode().map_err(|e| format!("text: {e}"))?;
                check_chars("text", &t)?;
            }
            Event::GeneralRef(g) => {
                if depth == 0 {
                    return Err("entity outside the root element".into());
                }
                if g.is_char_ref() {
                    match g.resolve_char_ref() {
                        Ok(Some(c)) if is_xml_char(c) => {}
                        other => return Err(format!("bad character reference: {other:?}")),
                    }
                } else {
                    let name = g.decode().map_err(|e| format!("entity: {e}"))?;
                    if !matches!(&*name, "lt" | "gt" | "amp" | "apos" | "quot") {
                        return Err(format!("undefined entity '&{name};'"));
                    }
                }
            }
            Event::CData(c) => {
                if depth == 0 {
                    return Err("CDATA outside the root element".into());
                }
                let c = c.decode().map_err(|e| format!("CDATA: {e}"))?;
                check_chars("CDATA", &c)?;
            }
            Event::Eof => break,
            Event::Decl(_) => return Err("XML declaration in a stanza".into()),
            Event::PI(_) => return Err("processing instruction".into()),
            Event::Comment(_) => return Err("comment".into()),
            Event::DocType(_) => return Err("DTD".into()),
        }
    }
    if depth != 0 {
        return Err("unclosed element".into());
    }
    if roots != 1 {
        return Err("no root element".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checker_accepts_and_refuses() {
        assert!(check_stanza(b"<iq type='result' from='a' to='b' id='1'/>").is_ok());
        assert!(
            check_stanza(
                b"<iq type='error' from='a' to='b' id='1'><error type='modify'><text xmlns='x'>a &lt; b &#65;</text></error></iq>"
            )
            .is_ok()
        );
        for bad in [
            &b"<iq type='result' from='a' to='b' id='\x01'/>"[..],
            b"<iq type='result' from='a' to='b' id='&#1;'/>",
            b"<iq type='result' from='a' to='b'/>",
            b"<iq type='result' from='a' to='b' id='1'><x></y></iq>",
            b"<iq type='result' from='a' to='b' id='1'/><iq type='result' from='a' to='b' id='1'/>",
            b"<iq type='result' from='a' to='b' id='1'><p:x/></iq>",
            b"<iq type='result' from='a' to='b' id='1'>&foo;</iq>",
            b"<iq type='result' from='a' to='b' id='1'",
            b"<message/>",
        ] {
            assert!(
                check_stanza(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
