//! Stanza bytes -> a typed [`Incoming`] stanza: the IQ header, then the typed
//! request of its payload (or the answer a thing gave to one of our
//! notifications). XML is parsed here, once, by pulling elements from
//! [`StanzaReader`]; the engine only ever sees typed values.
//!
//! Acceptance is liberal where real clients differ (attribute order, quotes,
//! namespace prefixes, white space, self-closing or not, tag names in any case,
//! unknown attributes and extension elements of other namespaces) and strict
//! about everything the spec defines: a missing or malformed attribute, an unknown
//! element in a discovery namespace, a value of the wrong type or a broken limit
//! is refused with the reason.

use smallvec::SmallVec;

use crate::jid::{BareJid, Jid};
use crate::query::Search;
use crate::registry::{Claim, Register, Update};
use crate::tag::{MAX_NAME_CHARS, MAX_NAME_CHARS_ANY, Number, Tag, TagName, TagValue};
use crate::thing::{NodeAddress, ThingKey};
use crate::wire::dialect::{Dialect, Family};
use crate::wire::reader::{Attrs, Element, Item, Ns, StanzaReader, XmlError, forbidden_char};

/// Limits the reader enforces before the registry sees anything.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest stanza, in bytes.
    pub max_stanza_bytes: usize,
    /// Deepest element nesting (the `<iq/>` is depth 1).
    pub max_depth: usize,
    /// Most tags in one `register`, `mine` or `update`.
    pub max_tags: usize,
    /// Most operators in one `search`.
    pub max_operators: usize,
}

/// The longest tag name a `register`, `mine` or `update` may carry, per dialect
/// family (characters; at most [`MAX_NAME_CHARS_ANY`]). Operator names are not
/// held to it (a search stores nothing): they may have up to
/// [`MAX_NAME_CHARS_ANY`] characters in every dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagNameLimits {
    /// XEP-0347 (`urn:xmpp:iot:discovery`): 32 by default (5.2).
    pub xep: usize,
    /// The successor namespaces: 64 by default.
    pub successor: usize,
}

impl Default for TagNameLimits {
    fn default() -> Self {
        TagNameLimits {
            xep: MAX_NAME_CHARS,
            successor: MAX_NAME_CHARS_ANY,
        }
    }
}

impl TagNameLimits {
    /// The limit for tags written in `d`.
    pub fn of(&self, d: &Dialect) -> usize {
        match d.family {
            Family::Xep0347 => self.xep,
            Family::Successor => self.successor,
        }
        .min(MAX_NAME_CHARS_ANY)
    }
}

/// The `type` of an IQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IqType {
    /// `get`.
    Get,
    /// `set`.
    Set,
    /// `result`.
    Result,
    /// `error`.
    Error,
}

impl IqType {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            IqType::Get => "get",
            IqType::Set => "set",
            IqType::Result => "result",
            IqType::Error => "error",
        }
    }
}

/// The addressing of an IQ: what a reply needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// `type`, when it was one of the four.
    pub kind: Option<IqType>,
    /// `id`.
    pub id: String,
    /// `from` as written (the reply goes there).
    pub from: String,
    /// `from`, parsed.
    pub sender: Jid,
    /// `to`, if present (the reply comes from there).
    pub to: Option<String>,
}

/// A discovery request, typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `register` (3.6-3.8).
    Register(Register),
    /// `mine` (3.9).
    Claim(Claim),
    /// `update` (3.13, 3.14).
    Update(Update),
    /// `remove` (3.10).
    Remove(ThingKey),
    /// `unregister` (3.16).
    Unregister(NodeAddress),
    /// `disown` (3.17).
    Disown(ThingKey),
    /// `search` (3.15).
    Search(Search),
}

impl Request {
    /// The IQ type the spec sends this request in.
    pub fn iq_type(&self) -> IqType {
        match self {
            Request::Search(_) => IqType::Get,
            _ => IqType::Set,
        }
    }
}

/// Why a request addressed to us cannot be served, before the registry sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Malformed: `bad-request` with this text.
    BadRequest(String),
    /// An element of a discovery namespace we do not know: `feature-not-implemented`.
    Unsupported(String),
}

impl From<XmlError> for Refusal {
    fn from(e: XmlError) -> Self {
        Refusal::BadRequest(e.0)
    }
}

/// What the payload of an IQ is.
#[derive(Debug)]
pub enum Body {
    /// A discovery request in `dialect`.
    Discovery(&'static Dialect, Request),
    /// disco#info (`node` if asked for one).
    DiscoInfo(Option<String>),
    /// disco#items.
    DiscoItems(Option<String>),
    /// A get/set that is ours but cannot be served (the dialect to answer in,
    /// when known).
    Refused(Option<&'static Dialect>, Refusal),
    /// A get/set whose payload is in no namespace we serve (or is missing).
    Foreign,
    /// A `result` (`None`) or `error` (`Some(condition)`) answer.
    Answer(Option<String>),
}

/// One parsed stanza.
#[derive(Debug)]
pub enum Incoming {
    /// Not an `<iq/>` at all (or no element to be found).
    NotIq,
    /// An IQ no reply can be addressed to (no `id`, no or bad `from`).
    Unaddressable(String),
    /// An IQ.
    Iq(Head, Body),
}

pub(super) fn attr<'x>(attrs: &'x Attrs<'_>, name: &str) -> Option<&'x str> {
    attrs.iter().find(|(k, _)| *k == name).map(|(_, v)| &**v)
}

pub(super) fn bad<T>(msg: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal::BadRequest(msg.into()))
}

/// Parses one stanza, with the default tag name limits ([`TagNameLimits`]).
pub fn parse(bytes: &[u8], limits: &Limits) -> Incoming {
    parse_with(bytes, limits, &TagNameLimits::default())
}

/// Parses one stanza, holding the tags of `register`, `mine` and `update` to
/// `names`.
pub fn parse_with(bytes: &[u8], limits: &Limits, names: &TagNameLimits) -> Incoming {
    let mut r = StanzaReader::new(bytes, limits.max_depth);
    let root = match r.next_item() {
        Ok(Item::Open(e)) => e,
        // The root's attributes are broken: an iq nobody can answer.
        Err(e) if r.depth() <= 1 && r.last_name() == "iq" => {
            return Incoming::Unaddressable(e.0);
        }
        _ => return Incoming::NotIq,
    };
    if root.name() != b"iq" || !matches!(root.ns, Ns::None | Ns::Stream) {
        return Incoming::NotIq;
    }
    let head = match head(r.attrs(&root)) {
        Ok(h) => h,
        Err(why) => return Incoming::Unaddressable(why),
    };
    let root_empty = root.empty;
    let body = match head.kind {
        Some(IqType::Result) => Body::Answer(None),
        Some(IqType::Error) => Body::Answer(Some(
            error_condition(&mut r, root_empty).unwrap_or_else(|| "undefined-condition".into()),
        )),
        _ => request(&mut r, bytes, root_empty, head.kind, limits, names),
    };
    Incoming::Iq(head, body)
}

fn head(attrs: &Attrs<'_>) -> Result<Head, String> {
    let id = attr(attrs, "id").ok_or("the iq has no id")?.to_string();
    let from = attr(attrs, "from").ok_or("the iq has no from")?.to_string();
    let sender = Jid::parse(&from).map_err(|e| format!("bad from: {e}"))?;
    let kind = match attr(attrs, "type") {
        Some("get") => Some(IqType::Get),
        Some("set") => Some(IqType::Set),
        Some("result") => Some(IqType::Result),
        Some("error") => Some(IqType::Error),
        _ => None,
    };
    let to = match attr(attrs, "to") {
        None => None,
        Some(t) => {
            Jid::parse(t).map_err(|e| format!("bad to: {e}"))?;
            Some(t.to_string())
        }
    };
    Ok(Head {
        kind,
        id,
        from,
        sender,
        to,
    })
}

/// The defined condition of an error answer, if it can be read.
fn error_condition(r: &mut StanzaReader<'_>, root_empty: bool) -> Option<String> {
    if root_empty {
        return None;
    }
    loop {
        match r.next_item().ok()? {
            Item::Open(e) if e.name() == b"error" && !e.empty => loop {
                match r.next_item().ok()? {
                    Item::Open(c) if c.ns == Ns::Stanzas && c.name() != b"text" => {
                        return Some(c.name_text().to_owned());
                    }
                    Item::Open(c) if !c.empty => r.skip().ok()?,
                    Item::Open(_) => {}
                    Item::Close | Item::Eof => return None,
                }
            },
            Item::Open(e) if !e.empty => r.skip().ok()?,
            Item::Open(_) => {}
            Item::Close | Item::Eof => return None,
        }
    }
}

fn request(
    r: &mut StanzaReader<'_>,
    bytes: &[u8],
    root_empty: bool,
    kind: Option<IqType>,
    limits: &Limits,
    names: &TagNameLimits,
) -> Body {
    if root_empty {
        return Body::Foreign;
    }
    let payload = match r.next_item() {
        Ok(Item::Open(e)) => e,
        Ok(_) => return Body::Foreign,
        Err(e) => return Body::Refused(None, e.into()),
    };
    let dialect = match payload.ns {
        Ns::Discovery(d) => Some(d),
        Ns::DiscoInfo | Ns::DiscoItems => None,
        _ => return Body::Foreign,
    };
    let refuse = |why: Refusal| Body::Refused(dialect, why);
    if bytes.len() > limits.max_stanza_bytes {
        return refuse(Refusal::BadRequest(format!(
            "the stanza is larger than {} bytes",
            limits.max_stanza_bytes
        )));
    }
    // The reader checked the whole input once already: a clean one is UTF-8
    // without characters XML forbids.
    if !r.is_clean() {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return refuse(Refusal::BadRequest("the stanza is not valid UTF-8".into()));
        };
        if let Some(c) = forbidden_char(text) {
            return refuse(Refusal::BadRequest(format!(
                "the stanza holds the character U+{:04X}, which XML does not allow",
                c as u32
            )));
        }
    }
    let Some(kind) = kind else {
        return refuse(Refusal::BadRequest(
            "the iq type must be get, set, result or error".into(),
        ));
    };
    let parsed = match payload.ns {
        Ns::Discovery(d) => discovery(r, &payload, d, limits, names.of(d)).map(|req| {
            let want = req.iq_type();
            (Body::Discovery(d, req), want)
        }),
        Ns::DiscoInfo => disco_node(r, &payload).map(|n| (Body::DiscoInfo(n), IqType::Get)),
        _ => disco_node(r, &payload).map(|n| (Body::DiscoItems(n), IqType::Get)),
    };
    let name = payload.name_text().to_owned();
    let (body, want) = match parsed {
        Ok(x) => x,
        Err(why) => return refuse(why),
    };
    if kind != want {
        return refuse(Refusal::BadRequest(format!(
            "{name} must be sent in an iq of type '{}'",
            want.as_str()
        )));
    }
    // Only white space may follow the payload, then the end of the iq.
    let rest = match r.next_item() {
        Ok(Item::Close) => r.finish(),
        Ok(Item::Open(_)) => Err(XmlError(
            "an iq get or set carries exactly one payload".into(),
        )),
        Ok(Item::Eof) => Err(XmlError("truncated stanza".into())),
        Err(e) => Err(e),
    };
    match rest {
        Ok(()) => body,
        Err(e) => refuse(e.into()),
    }
}

fn disco_node(r: &mut StanzaReader<'_>, e: &Element<'_>) -> Result<Option<String>, Refusal> {
    let node = attr(r.attrs(e), "node").map(str::to_string);
    if e.name() != b"query" {
        return Err(Refusal::Unsupported(format!(
            "'{}' is not a service discovery request",
            e.name_text()
        )));
    }
    if !e.empty {
        r.skip()?;
    }
    Ok(node)
}

fn discovery(
    r: &mut StanzaReader<'_>,
    e: &Element<'_>,
    d: &'static Dialect,
    limits: &Limits,
    max_name: usize,
) -> Result<Request, Refusal> {
    // Copied once: the reader reuses its attribute buffer for the children.
    let attrs: SmallVec<[(&str, std::borrow::Cow<'_, str>); 6]> =
        r.attrs(e).iter().cloned().collect();
    let node = || node_address(&attrs, d);
    let req = match e.name() {
        b"register" => Request::Register(Register {
            node: node()?,
            self_owned: boolean(&attrs, "selfOwned", false)?,
            tags: tags(r, e, limits, max_name)?,
        }),
        b"mine" => Request::Claim(Claim {
            public: boolean(&attrs, "public", true)?,
            tags: tags(r, e, limits, max_name)?,
        }),
        b"update" => Request::Update(Update {
            jid: match attr(&attrs, "jid") {
                None | Some("") => None,
                Some(j) => Some(bare(j)?),
            },
            node: node()?,
            tags: tags(r, e, limits, max_name)?,
        }),
        b"remove" | b"disown" => {
            let jid = match attr(&attrs, "jid") {
                Some(j) if !j.is_empty() => bare(j)?,
                _ => return bad(format!("{} needs a jid attribute", e.name_text())),
            };
            let key = ThingKey { jid, node: node()? };
            no_children(r, e)?;
            if e.name() == b"remove" {
                Request::Remove(key)
            } else {
                Request::Disown(key)
            }
        }
        b"unregister" => {
            let n = node()?;
            no_children(r, e)?;
            Request::Unregister(n)
        }
        b"search" => Request::Search(Search {
            offset: match attr(&attrs, "offset") {
                None => 0,
                Some(v) => count(v, "offset")?.min(u64::from(u32::MAX)) as u32,
            },
            max_count: match attr(&attrs, "maxCount") {
                None => None,
                Some(v) => Some(count(v, "maxCount")?.min(u64::from(u32::MAX)) as u32),
            },
            operators: super::operators::operators(r, e, limits)?,
        }),
        other => {
            return Err(Refusal::Unsupported(format!(
                "'{}' is not a request of {}",
                String::from_utf8_lossy(other),
                d.namespace
            )));
        }
    };
    Ok(req)
}

/// A JID attribute naming a thing: the resource, if any, is dropped (a thing is
/// known by its bare JID; listings 18, 25 and 47 show full JIDs).
fn bare(text: &str) -> Result<BareJid, Refusal> {
    Jid::parse(text.trim())
        .map(|j| j.bare().clone())
        .or_else(|e| bad(format!("bad jid: {e}")))
}

fn node_address(attrs: &Attrs<'_>, d: &Dialect) -> Result<NodeAddress, Refusal> {
    let [a, b, c] = d.node_attrs;
    NodeAddress::new(attr(attrs, a), attr(attrs, b), attr(attrs, c)).or_else(bad)
}

/// `xs:boolean`.
pub(super) fn boolean(attrs: &Attrs<'_>, name: &str, default: bool) -> Result<bool, Refusal> {
    match attr(attrs, name).map(str::trim) {
        None => Ok(default),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(v) => bad(format!(
            "{name} must be true or false, not '{}'",
            v.chars().take(20).collect::<String>()
        )),
    }
}

/// A non-negative integer (`xs:nonNegativeInteger`); values past `u64` saturate.
fn count(text: &str, name: &str) -> Result<u64, Refusal> {
    let t = text.trim();
    let digits = t.strip_prefix('+').unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return bad(format!(
            "{name} must be a non-negative integer, not '{}'",
            text.chars().take(20).collect::<String>()
        ));
    }
    Ok(digits.parse().unwrap_or(u64::MAX))
}

/// Children of an element that takes none (foreign extensions are skipped).
fn no_children(r: &mut StanzaReader<'_>, e: &Element<'_>) -> Result<(), Refusal> {
    if e.empty {
        return Ok(());
    }
    loop {
        match r.next_item()? {
            Item::Close => return Ok(()),
            Item::Eof => return bad("truncated stanza"),
            Item::Open(c) if matches!(c.ns, Ns::Discovery(_)) => {
                return bad(format!(
                    "{} takes no '{}' element",
                    e.name_text(),
                    c.name_text()
                ));
            }
            Item::Open(c) => {
                if !c.empty {
                    r.skip()?;
                }
            }
        }
    }
}

/// Visits the children of `e` in its own namespace; others are skipped, except
/// children in another discovery namespace: a request does not mix dialects.
pub(super) fn children(
    r: &mut StanzaReader<'_>,
    e: &Element<'_>,
    mut f: impl FnMut(&Element<'_>, &Attrs<'_>) -> Result<(), Refusal>,
) -> Result<(), Refusal> {
    if e.empty {
        return Ok(());
    }
    loop {
        match r.next_item()? {
            Item::Close => return Ok(()),
            Item::Eof => return bad("truncated stanza"),
            Item::Open(c) => {
                if c.ns == e.ns {
                    f(&c, r.attrs(&c))?;
                    if !c.empty {
                        // Tags and operators have no content (white space aside).
                        match r.next_item()? {
                            Item::Close => {}
                            Item::Open(_) => {
                                return bad(format!("{} takes no child elements", c.name_text()));
                            }
                            Item::Eof => return bad("truncated stanza"),
                        }
                    }
                } else if let (Ns::Discovery(theirs), Ns::Discovery(ours)) = (c.ns, e.ns) {
                    return bad(format!(
                        "'{}' of {} inside {} of {}: a request does not mix namespaces",
                        c.name_text(),
                        theirs.namespace,
                        e.name_text(),
                        ours.namespace
                    ));
                } else if !c.empty {
                    r.skip()?;
                }
            }
        }
    }
}

pub(super) fn required<'x>(
    attrs: &'x Attrs<'_>,
    el: &Element<'_>,
    name: &str,
) -> Result<&'x str, Refusal> {
    attr(attrs, name)
        .ok_or_else(|| Refusal::BadRequest(format!("{} needs a {name} attribute", el.name_text())))
}

/// The `name` of a tag or operator, of at most [`MAX_NAME_CHARS_ANY`]
/// characters.
pub(super) fn tag_name(attrs: &Attrs<'_>, el: &Element<'_>) -> Result<TagName, Refusal> {
    tag_name_max(attrs, el, MAX_NAME_CHARS_ANY)
}

/// The `name` of a tag, of at most `max` characters.
fn tag_name_max(attrs: &Attrs<'_>, el: &Element<'_>, max: usize) -> Result<TagName, Refusal> {
    TagName::with_limit(required(attrs, el, "name")?, max)
        .map_err(|e| Refusal::BadRequest(e.to_string()))
}

pub(super) fn number(text: &str, tag: &TagName) -> Result<Number, Refusal> {
    Number::parse(text, tag.as_str()).map_err(|e| Refusal::BadRequest(e.to_string()))
}

/// The `str`/`num` children of `register`, `mine` or `update`, with names of at
/// most `max_name` characters.
fn tags(
    r: &mut StanzaReader<'_>,
    e: &Element<'_>,
    limits: &Limits,
    max_name: usize,
) -> Result<Vec<Tag>, Refusal> {
    // Things send about ten tags: one allocation, no regrowth.
    let mut out = Vec::with_capacity(limits.max_tags.min(16));
    children(r, e, |c, attrs| {
        let value = match c.name() {
            b"str" => {
                let name = tag_name_max(attrs, c, max_name)?;
                let v = required(attrs, c, "value")?;
                let v = TagValue::string(v, name.as_str())
                    .map_err(|e| Refusal::BadRequest(e.to_string()))?;
                (name, v)
            }
            b"num" => {
                let name = tag_name_max(attrs, c, max_name)?;
                let v = number(required(attrs, c, "value")?, &name)?;
                (name, TagValue::Num(v))
            }
            _ => {
                return bad(format!(
                    "'{}' is not a tag (str or num) in {}",
                    c.name_text(),
                    e.name_text()
                ));
            }
        };
        if out.len() >= limits.max_tags {
            return bad(format!("more than {} tags", limits.max_tags));
        }
        out.push(Tag {
            name: value.0,
            value: value.1,
        });
        Ok(())
    })?;
    Ok(out)
}
