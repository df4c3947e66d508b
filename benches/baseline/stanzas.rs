//! The write stanzas of the stanza bench, shared with `examples/writeprof`
//! (included by both with `#[path]`): a datagen thing's `register`, a claimed
//! thing's `update`, written exactly as a client would.

use iotdisco::datagen::{self, GenThing};
use iotdisco::wire::write;
use iotdisco::{Tag, TagValue};

/// The registry's address the stanzas are sent to.
pub const REGISTRY: &str = "discovery.example.org";

/// Appends a `<str/>` or `<num/>` tag element.
pub fn tag_element(buf: &mut Vec<u8>, t: &Tag) {
    match &t.value {
        TagValue::Str(s) => {
            buf.extend_from_slice(b"<str");
            write::attr(buf, "name", t.name.as_str());
            write::attr(buf, "value", s);
        }
        TagValue::Num(n) => {
            buf.extend_from_slice(b"<num");
            write::attr(buf, "name", t.name.as_str());
            buf.extend_from_slice(b" value='");
            write::number(buf, *n);
            buf.push(b'\'');
        }
    }
    buf.extend_from_slice(b"/>");
}

/// The `register` stanza thing `g` sends (all ten tags, `KEY` included).
pub fn register_stanza(g: &GenThing, id: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(640);
    b.extend_from_slice(b"<iq type='set'");
    write::attr(&mut b, "from", &g.jid.to_string());
    write::attr(&mut b, "to", REGISTRY);
    b.extend_from_slice(format!(" id='r{id}'>").as_bytes());
    b.extend_from_slice(b"<register xmlns='urn:xmpp:iot:discovery'>");
    for t in &g.tags {
        tag_element(&mut b, t);
    }
    b.extend_from_slice(b"</register></iq>");
    b
}

/// The `update` stanza claimed thing `i` sends about itself (3.13): it moved
/// (new `LAT`/`LON`) and got new firmware (`V`), values drawn from `(7, k)`.
pub fn update_stanza(i: u64, k: u64) -> Vec<u8> {
    let mut r = datagen::Rng::new(7, k);
    let tags = [
        Tag::num("LAT", r.coord(-90.0, 90.0)).expect("num"),
        Tag::num("LON", r.coord(-180.0, 180.0)).expect("num"),
        Tag::num("V", datagen::VERSIONS[r.below(6) as usize]).expect("num"),
    ];
    let mut b = Vec::with_capacity(320);
    b.extend_from_slice(
        format!(
            "<iq type='set' from='thing{i}@d{}.example.org/imc' to='{REGISTRY}' id='u{k}'>",
            i % 64
        )
        .as_bytes(),
    );
    b.extend_from_slice(b"<update xmlns='urn:xmpp:iot:discovery'>");
    for t in &tags {
        tag_element(&mut b, t);
    }
    b.extend_from_slice(b"</update></iq>");
    b
}
