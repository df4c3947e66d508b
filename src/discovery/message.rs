//! DNS messages (RFC 1035 4), as much as a DNS-SD browser needs: a query
//! for one name and type, and a response read into [`Record`]s (answer,
//! authority and additional sections together), with name compression
//! followed safely (every pointer must go backwards, so no loop is
//! possible) and every length checked: malformed input is a
//! [`DiscoveryError::BadMessage`], never a panic.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::DiscoveryError;
use super::name::{MAX_NAME, Name};
use super::record::{CLASS_IN, RData, Record, TYPE_A, TYPE_AAAA, TYPE_PTR, TYPE_SRV, TYPE_TXT};

/// A query for `name`/`rtype`, class IN, recursion desired, with `id`.
pub fn query(id: u16, name: &Name, rtype: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + name.wire_len() + 4);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    out.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    out.extend_from_slice(&[0; 6]); // AN, NS, AR
    name.write_wire(&mut out);
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out
}

/// A response read from its wire form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The message id.
    pub id: u16,
    /// Whether the message is a response (QR bit).
    pub is_response: bool,
    /// Whether it was truncated (TC bit): ask again over TCP.
    pub truncated: bool,
    /// The response code (0: no error, 3: no such name).
    pub rcode: u8,
    /// The records of the answer, authority and additional sections, in
    /// order; records of classes other than IN are left out. The mDNS
    /// cache-flush bit of the class is ignored.
    pub records: Vec<Record>,
}

impl Response {
    /// Reads a message.
    pub fn parse(msg: &[u8]) -> Result<Response, DiscoveryError> {
        let mut r = Reader { msg, at: 0 };
        let id = r.u16()?;
        let flags = r.u16()?;
        let qd = r.u16()?;
        let counts = [r.u16()?, r.u16()?, r.u16()?];
        for _ in 0..qd {
            r.name()?;
            r.take(4)?;
        }
        let mut records = Vec::new();
        for _ in 0..counts.iter().map(|&c| usize::from(c)).sum::<usize>() {
            let name = r.name()?;
            let rtype = r.u16()?;
            let class = r.u16()? & 0x7fff;
            let ttl = r.u32()?;
            let len = usize::from(r.u16()?);
            let start = r.at;
            let end = start + len;
            if end > msg.len() {
                return Err(bad("RDATA runs past the end of the message"));
            }
            let data = match rtype {
                TYPE_PTR => RData::Ptr(r.name()?),
                TYPE_SRV => RData::Srv {
                    priority: r.u16()?,
                    weight: r.u16()?,
                    port: r.u16()?,
                    target: r.name()?,
                },
                TYPE_A => {
                    let b = r.take(4)?;
                    RData::A(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
                }
                TYPE_AAAA => {
                    let b: [u8; 16] = r.take(16)?.try_into().map_err(|_| bad("short AAAA"))?;
                    RData::Aaaa(Ipv6Addr::from(b))
                }
                TYPE_TXT => RData::Txt(r.take(len)?.to_vec()),
                rtype => RData::Other {
                    rtype,
                    data: r.take(len)?.to_vec(),
                },
            };
            if r.at != end {
                return Err(bad("RDATA length does not match its content"));
            }
            if class == CLASS_IN {
                records.push(Record { name, ttl, data });
            }
        }
        Ok(Response {
            id,
            is_response: flags & 0x8000 != 0,
            truncated: flags & 0x0200 != 0,
            rcode: (flags & 0x000f) as u8,
            records,
        })
    }
}

fn bad(what: &'static str) -> DiscoveryError {
    DiscoveryError::BadMessage(what)
}

struct Reader<'a> {
    msg: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DiscoveryError> {
        let s = self
            .msg
            .get(self.at..self.at + n)
            .ok_or_else(|| bad("message truncated"))?;
        self.at += n;
        Ok(s)
    }

    fn u16(&mut self) -> Result<u16, DiscoveryError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, DiscoveryError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A possibly compressed name; leaves `at` after its in-place part.
    fn name(&mut self) -> Result<Name, DiscoveryError> {
        let mut labels: Vec<&[u8]> = Vec::new();
        let mut pos = self.at;
        let mut resume = None;
        let mut wire_len = 1;
        loop {
            let len = *self.msg.get(pos).ok_or_else(|| bad("name truncated"))?;
            match len {
                0 => {
                    pos += 1;
                    break;
                }
                1..=63 => {
                    let label = self
                        .msg
                        .get(pos + 1..pos + 1 + usize::from(len))
                        .ok_or_else(|| bad("label truncated"))?;
                    wire_len += 1 + label.len();
                    if wire_len > MAX_NAME {
                        return Err(bad("name longer than 255 bytes"));
                    }
                    labels.push(label);
                    pos += 1 + usize::from(len);
                }
                0xc0..=0xff => {
                    let low = *self
                        .msg
                        .get(pos + 1)
                        .ok_or_else(|| bad("pointer truncated"))?;
                    let target = (usize::from(len & 0x3f) << 8) | usize::from(low);
                    // Strictly backwards: each jump lowers `pos`, so this ends.
                    if target >= pos {
                        return Err(bad("compression pointer does not point backwards"));
                    }
                    resume.get_or_insert(pos + 2);
                    pos = target;
                }
                _ => return Err(bad("unknown label type")),
            }
        }
        self.at = resume.unwrap_or(pos);
        Name::from_labels(labels).map_err(|_| bad("bad name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(id: u16, flags: u16, qd: u16, an: u16, ns: u16, ar: u16) -> Vec<u8> {
        [id, flags, qd, an, ns, ar]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect()
    }

    #[test]
    fn queries_are_rfc_1035_messages() {
        let q = query(
            0x1234,
            &Name::parse("_xmpp-client._tcp.local").unwrap(),
            TYPE_PTR,
        );
        let mut want = header(0x1234, 0x0100, 1, 0, 0, 0);
        want.extend_from_slice(b"\x0c_xmpp-client\x04_tcp\x05local\x00\x00\x0c\x00\x01");
        assert_eq!(q, want);
    }

    #[test]
    fn responses_with_compressed_names_are_read() {
        let service = Name::parse("_xmpp-client._tcp.local").unwrap();
        let mut msg = header(7, 0x8400, 1, 2, 0, 1);
        msg.extend_from_slice(&query(7, &service, TYPE_PTR)[12..]);
        // PTR: owner = pointer to the question name (offset 12),
        // target = "pronto" + pointer to 12.
        msg.extend_from_slice(&[0xc0, 12]);
        msg.extend_from_slice(&TYPE_PTR.to_be_bytes());
        msg.extend_from_slice(&[0x80, 0x01]); // IN with the mDNS cache-flush bit
        msg.extend_from_slice(&120u32.to_be_bytes());
        msg.extend_from_slice(&9u16.to_be_bytes());
        let instance_at = msg.len();
        msg.extend_from_slice(b"\x06pronto\xc0\x0c");
        // SRV owned by the instance (pointer), target pronto + "local" (pointer).
        let local_at = 12 + 1 + 12 + 1 + 4;
        msg.extend_from_slice(&[0xc0, instance_at as u8]);
        msg.extend_from_slice(&TYPE_SRV.to_be_bytes());
        msg.extend_from_slice(&1u16.to_be_bytes());
        msg.extend_from_slice(&120u32.to_be_bytes());
        msg.extend_from_slice(&15u16.to_be_bytes());
        msg.extend_from_slice(&[0, 1, 0, 2, 0x14, 0x66]);
        msg.extend_from_slice(b"\x06pronto\xc0");
        msg.push(local_at as u8);
        // Additional: A of pronto.local (uncompressed).
        msg.extend_from_slice(b"\x06pronto\x05local\x00");
        msg.extend_from_slice(&TYPE_A.to_be_bytes());
        msg.extend_from_slice(&1u16.to_be_bytes());
        msg.extend_from_slice(&120u32.to_be_bytes());
        msg.extend_from_slice(&4u16.to_be_bytes());
        msg.extend_from_slice(&[10, 2, 1, 188]);

        let r = Response::parse(&msg).unwrap();
        assert!(r.is_response && !r.truncated);
        assert_eq!((r.id, r.rcode), (7, 0));
        let lines: Vec<String> = r.records.iter().map(Record::zone_line).collect();
        assert_eq!(
            lines,
            [
                "_xmpp-client._tcp.local. 120 IN PTR pronto._xmpp-client._tcp.local.",
                "pronto._xmpp-client._tcp.local. 120 IN SRV 1 2 5222 pronto.local.",
                "pronto.local. 120 IN A 10.2.1.188",
            ]
        );
    }

    #[test]
    fn malformed_messages_are_errors_not_panics() {
        assert!(Response::parse(&[]).is_err());
        assert!(Response::parse(&[0; 11]).is_err());
        // One answer, name a pointer to itself.
        let mut msg = header(1, 0x8000, 0, 1, 0, 0);
        msg.extend_from_slice(&[0xc0, 12]);
        assert_eq!(
            Response::parse(&msg),
            Err(DiscoveryError::BadMessage(
                "compression pointer does not point backwards"
            ))
        );
        // RDATA longer than the message.
        let mut msg = header(1, 0x8000, 0, 1, 0, 0);
        msg.extend_from_slice(b"\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x09\x01\x02");
        assert!(Response::parse(&msg).is_err());
        // A record with a 3-byte RDATA.
        let mut msg = header(1, 0x8000, 0, 1, 0, 0);
        msg.extend_from_slice(b"\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x03\x01\x02\x03");
        assert!(Response::parse(&msg).is_err());
        // Every prefix of a good message fails cleanly.
        let good = query(1, &Name::parse("a.local").unwrap(), TYPE_A);
        for n in 0..good.len() {
            assert!(Response::parse(&good[..n]).is_err());
        }
        assert!(Response::parse(&good).is_ok());
    }
}
