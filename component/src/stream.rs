//! The XEP-0114 connection: stream open, handshake, top-level stanzas as raw
//! bytes.
//!
//! [`connect`] opens a TCP connection to the server, sends the stream header
//! in `jabber:component:accept`, answers the server's header with
//! `<handshake>` = lower-case hex SHA-1 of the stream id followed by the
//! secret, and waits for the empty `<handshake/>` that accepts it. A
//! `<stream:error>` at that point is a [`ConnectError`]: fatal for
//! `not-authorized` (a wrong secret) and `host-unknown` (the server has no
//! such component), retryable for anything else (`conflict` while the server
//! still holds our previous connection, a refused or reset socket).
//!
//! After the handshake, [`Connection::read`] yields each top-level element of
//! the stream as the exact bytes the server sent ([`Splitter`] finds the
//! boundaries with a byte-level scan: tags, quoted attribute values, comments,
//! processing instructions and CDATA; no parse tree is built, the engine
//! parses each stanza once itself). Stanzas are capped at
//! [`MAX_STANZA_BYTES`]; a larger one ends the connection (the server relays
//! stanzas of its own size limit, far below it). Reading is cancel-safe: the
//! partial stanza stays in the splitter between calls.

use std::time::Duration;

use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// The largest top-level element accepted from the server, in bytes.
pub const MAX_STANZA_BYTES: usize = 1 << 20;

/// The stream namespace of XEP-0114.
const NS_COMPONENT: &str = "jabber:component:accept";

/// How a connection attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectError {
    /// Retrying cannot help (wrong secret, unknown component domain): the
    /// operator must change the configuration.
    pub fatal: bool,
    /// What happened, for a person.
    pub message: String,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn retry(message: String) -> ConnectError {
    ConnectError {
        fatal: false,
        message,
    }
}

/// One top-level item of the server's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The server's `<stream:stream ...>` start tag.
    Header(Vec<u8>),
    /// A complete top-level element (a stanza, `<handshake/>`,
    /// `<stream:error>`), byte for byte.
    Element(Vec<u8>),
    /// The server's `</stream:stream>`.
    End,
}

/// Splits a byte stream into [`Frame`]s without building a tree.
///
/// Invariants: `buf[..start]` is consumed; `pos` is the start of the first
/// token not yet scanned (`start <= pos`); `depth` is the element depth at
/// `pos` inside the current top-level element (0 between elements).
#[derive(Debug, Default)]
pub struct Splitter {
    buf: Vec<u8>,
    start: usize,
    pos: usize,
    depth: usize,
    header_seen: bool,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Splitter {
    /// An empty splitter, expecting the stream header first.
    pub fn new() -> Self {
        Splitter::default()
    }

    /// Appends bytes read from the socket.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.pos -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed, or an
    /// error naming what is wrong with the stream.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, String> {
        loop {
            if self.depth > 0 && self.buf.len() - self.start > MAX_STANZA_BYTES {
                return Err(format!(
                    "a stanza larger than {MAX_STANZA_BYTES} bytes arrived"
                ));
            }
            let rest = &self.buf[self.pos..];
            let Some(&b) = rest.first() else {
                return Ok(None);
            };
            if b != b'<' {
                if self.depth == 0 {
                    if b.is_ascii_whitespace() {
                        self.pos += 1;
                        self.start = self.pos;
                        continue;
                    }
                    return Err(format!(
                        "text outside any stanza (byte {:?})",
                        char::from(b)
                    ));
                }
                match rest.iter().position(|&c| c == b'<') {
                    Some(i) => self.pos += i,
                    None => {
                        self.pos = self.buf.len();
                        return Ok(None);
                    }
                }
                continue;
            }
            // A markup token starting at `pos`.
            let skip_to = |prefix: &[u8], end: &[u8]| -> Option<Option<usize>> {
                if rest.len() < prefix.len() {
                    return if prefix.starts_with(rest) {
                        Some(None)
                    } else {
                        None
                    };
                }
                if !rest.starts_with(prefix) {
                    return None;
                }
                Some(find(&rest[prefix.len()..], end).map(|i| prefix.len() + i + end.len()))
            };
            let special: [(&[u8], &[u8]); 3] =
                [(b"<?", b"?>"), (b"<!--", b"-->"), (b"<![CDATA[", b"]]>")];
            let mut skipped = None;
            for (prefix, end) in special {
                if let Some(r) = skip_to(prefix, end) {
                    skipped = Some(r);
                    break;
                }
            }
            if let Some(r) = skipped {
                match r {
                    None => return Ok(None),
                    Some(len) => {
                        self.pos += len;
                        if self.depth == 0 {
                            self.start = self.pos;
                        }
                        continue;
                    }
                }
            }
            if rest.len() < 2 {
                return Ok(None);
            }
            if rest[1] == b'!' {
                if rest.len() < 9 {
                    return Ok(None);
                }
                return Err("a DTD or other <! declaration in the stream".into());
            }
            // A start or end tag: find its '>' outside quoted values.
            let mut quote = None;
            let mut end = None;
            for (i, &c) in rest.iter().enumerate().skip(1) {
                match (quote, c) {
                    (None, b'"' | b'\'') => quote = Some(c),
                    (Some(q), c) if c == q => quote = None,
                    (None, b'>') => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let Some(end) = end else {
                if rest.len() > MAX_STANZA_BYTES {
                    return Err(format!("a tag longer than {MAX_STANZA_BYTES} bytes"));
                }
                return Ok(None);
            };
            let tag_start = self.pos;
            self.pos += end + 1;
            if rest[1] == b'/' {
                if self.depth == 0 {
                    self.start = self.pos;
                    return Ok(Some(Frame::End));
                }
                self.depth -= 1;
            } else if !self.header_seen {
                self.header_seen = true;
                let header = self.buf[tag_start..self.pos].to_vec();
                self.start = self.pos;
                return Ok(Some(Frame::Header(header)));
            } else {
                if self.depth == 0 {
                    self.start = tag_start;
                }
                if rest[end - 1] != b'/' {
                    self.depth += 1;
                }
            }
            if self.depth == 0 {
                let element = self.buf[self.start..self.pos].to_vec();
                self.start = self.pos;
                return Ok(Some(Frame::Element(element)));
            }
        }
    }
}

/// The value of attribute `name` of the first start tag in `bytes`.
pub(crate) fn attribute(bytes: &[u8], name: &str) -> Option<String> {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)) => {
                let a = e.try_get_attribute(name).ok()??;
                return a.unescape_value().ok().map(|v| v.into_owned());
            }
            Ok(quick_xml::events::Event::Eof) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// The local name of the first element in `bytes` and of its first child.
pub(crate) fn names(bytes: &[u8]) -> (String, Option<String>) {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut top = None;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(e)) | Ok(quick_xml::events::Event::Empty(e)) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                match top {
                    None => top = Some(name),
                    Some(t) => {
                        let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                        return (t, Some(local));
                    }
                }
            }
            Ok(quick_xml::events::Event::Eof) | Err(_) => return (top.unwrap_or_default(), None),
            Ok(_) => {}
        }
    }
}

/// The handshake digest of XEP-0114: hex SHA-1 of stream id + secret.
pub fn handshake_digest(stream_id: &str, secret: &str) -> String {
    let mut h = Sha1::new();
    h.update(stream_id.as_bytes());
    h.update(secret.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The XML-escaped form of `s` for an attribute value or text.
pub(crate) fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// An authenticated component stream.
pub struct Connection {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    splitter: Splitter,
    buf: Box<[u8]>,
}

/// Connects to `server` (`host:port`) as component `domain` with `secret`,
/// giving up after `timeout`.
pub async fn connect(
    server: &str,
    domain: &str,
    secret: &str,
    timeout: Duration,
) -> Result<Connection, ConnectError> {
    match tokio::time::timeout(timeout, connect_inner(server, domain, secret)).await {
        Ok(r) => r,
        Err(_) => Err(retry(format!(
            "no handshake with {server} within {} s",
            timeout.as_secs()
        ))),
    }
}

async fn connect_inner(
    server: &str,
    domain: &str,
    secret: &str,
) -> Result<Connection, ConnectError> {
    let tcp = TcpStream::connect(server)
        .await
        .map_err(|e| retry(format!("cannot connect to {server}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let (reader, writer) = tcp.into_split();
    let mut c = Connection {
        reader,
        writer,
        splitter: Splitter::new(),
        buf: vec![0u8; 16 * 1024].into_boxed_slice(),
    };
    let lost = |e: String| retry(format!("{server}: {e}"));
    c.write(
        format!(
            "<?xml version='1.0'?><stream:stream xmlns='{NS_COMPONENT}' \
             xmlns:stream='http://etherx.jabber.org/streams' to='{}'>",
            escape(domain)
        )
        .as_bytes(),
    )
    .await
    .map_err(lost)?;
    let header = match c.read().await.map_err(lost)? {
        Frame::Header(h) => h,
        Frame::Element(e) => return Err(refused(server, domain, &e)),
        Frame::End => return Err(retry(format!("{server} closed the stream at once"))),
    };
    let Some(id) = attribute(&header, "id") else {
        return Err(retry(format!(
            "{server} sent a stream header without an id: {}",
            String::from_utf8_lossy(&header)
        )));
    };
    c.write(format!("<handshake>{}</handshake>", handshake_digest(&id, secret)).as_bytes())
        .await
        .map_err(lost)?;
    match c.read().await.map_err(lost)? {
        Frame::Element(e) if names(&e).0 == "handshake" => Ok(c),
        Frame::Element(e) => Err(refused(server, domain, &e)),
        Frame::Header(_) | Frame::End => Err(retry(format!(
            "{server} closed the stream instead of answering the handshake"
        ))),
    }
}

/// The error for a `<stream:error>` (or anything else) received instead of a
/// header or a handshake answer.
fn refused(server: &str, domain: &str, element: &[u8]) -> ConnectError {
    let (name, condition) = names(element);
    let condition = condition.unwrap_or_default();
    if !name.ends_with("error") {
        return retry(format!(
            "{server} answered the handshake with {}",
            String::from_utf8_lossy(element)
        ));
    }
    match condition.as_str() {
        "not-authorized" => ConnectError {
            fatal: true,
            message: format!(
                "{server} refused the handshake for {domain} (not-authorized): the secret is wrong"
            ),
        },
        "host-unknown" => ConnectError {
            fatal: true,
            message: format!(
                "{server} has no component {domain} (host-unknown): add it to the server's configuration"
            ),
        },
        other => retry(format!("{server} refused the stream ({other})")),
    }
}

impl Connection {
    /// The next frame from the server (cancel-safe).
    pub async fn read(&mut self) -> Result<Frame, String> {
        loop {
            if let Some(f) = self.splitter.next_frame()? {
                return Ok(f);
            }
            let n = self
                .reader
                .read(&mut self.buf)
                .await
                .map_err(|e| format!("read failed: {e}"))?;
            if n == 0 {
                return Err("the server closed the connection".into());
            }
            self.splitter.push(&self.buf[..n]);
        }
    }

    /// Writes bytes (one or more stanzas) to the server.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.writer
            .write_all(bytes)
            .await
            .map_err(|e| format!("write failed: {e}"))
    }

    /// Closes the stream: sends `</stream:stream>`, waits up to `linger` for
    /// the server's own, then shuts the socket down.
    pub async fn close(mut self, linger: Duration) {
        if self.write(b"</stream:stream>").await.is_ok() {
            let _ = tokio::time::timeout(linger, async {
                while let Ok(f) = self.read().await {
                    if f == Frame::End {
                        break;
                    }
                }
            })
            .await;
        }
        let _ = self.writer.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(chunks: &[&[u8]]) -> Result<Vec<Frame>, String> {
        let mut s = Splitter::new();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c);
            while let Some(f) = s.next_frame()? {
                out.push(f);
            }
        }
        Ok(out)
    }

    const STREAM: &[u8] = b"<?xml version='1.0'?>\n<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' from='c.x' id='a>b'>\
        <handshake/> \n<iq type='get' id='1' from='a@x/r'><query xmlns='q' a='>&apos;'><!-- c<> --><x><![CDATA[<not/></a>]]></x>text</query></iq>\
        <presence from='a@x/r'/></stream:stream>";

    fn expected() -> Vec<Frame> {
        vec![
            Frame::Header(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' from='c.x' id='a>b'>".to_vec()),
            Frame::Element(b"<handshake/>".to_vec()),
            Frame::Element(b"<iq type='get' id='1' from='a@x/r'><query xmlns='q' a='>&apos;'><!-- c<> --><x><![CDATA[<not/></a>]]></x>text</query></iq>".to_vec()),
            Frame::Element(b"<presence from='a@x/r'/>".to_vec()),
            Frame::End,
        ]
    }

    #[test]
    fn splits_a_stream_in_one_piece() {
        assert_eq!(frames(&[STREAM]).unwrap(), expected());
    }

    #[test]
    fn splits_a_stream_arriving_byte_by_byte() {
        let chunks: Vec<&[u8]> = STREAM.chunks(1).collect();
        assert_eq!(frames(&chunks).unwrap(), expected());
        let chunks: Vec<&[u8]> = STREAM.chunks(7).collect();
        assert_eq!(frames(&chunks).unwrap(), expected());
    }

    #[test]
    fn refuses_dtds_and_stray_text() {
        let e = frames(&[b"<stream:stream id='1'><!DOCTYPE x []><iq/>"]).unwrap_err();
        assert!(e.contains("DTD"), "{e}");
        let e = frames(&[b"<stream:stream id='1'>hello"]).unwrap_err();
        assert!(e.contains("text outside"), "{e}");
    }

    #[test]
    fn refuses_oversized_stanzas() {
        let mut s = Splitter::new();
        s.push(b"<stream:stream id='1'><iq>");
        assert!(matches!(s.next_frame(), Ok(Some(Frame::Header(_)))));
        let chunk = vec![b'a'; 64 * 1024];
        let mut failed = None;
        for _ in 0..(MAX_STANZA_BYTES / chunk.len() + 2) {
            s.push(&chunk);
            if let Err(e) = s.next_frame() {
                failed = Some(e);
                break;
            }
        }
        assert!(failed.expect("an error").contains("larger than"));
    }

    #[test]
    fn handshake_digest_is_hex_sha1_of_id_and_secret() {
        // `printf abcsecret | sha1sum`; tokio-xmpp 6 sends the same.
        assert_eq!(
            handshake_digest("abc", "secret"),
            "de0a408ef519cd62e7379039634152874895c50c"
        );
    }

    #[test]
    fn attributes_and_names() {
        let iq = b"<iq type='error' from='a&amp;b@x/r' id='7'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>";
        assert_eq!(attribute(iq, "from").as_deref(), Some("a&b@x/r"));
        assert_eq!(attribute(iq, "to"), None);
        assert_eq!(names(iq), ("iq".into(), Some("error".into())));
        let e = b"<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>";
        assert_eq!(
            refused("s:1", "c.x", e),
            ConnectError {
                fatal: true,
                message: "s:1 refused the handshake for c.x (not-authorized): the secret is wrong"
                    .into()
            }
        );
        assert!(!refused("s:1", "c.x", b"<stream:error><conflict/></stream:error>").fatal);
    }
}
