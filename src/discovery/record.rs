//! DNS resource records of the kinds DNS-SD uses (PTR, SRV, A, AAAA, TXT):
//! typed data, their wire form (RFC 1035 3.3, RFC 2782, RFC 3596) and their
//! zone-file presentation (RFC 1035 5.1). Records of other types are kept as
//! opaque bytes ([`RData::Other`]) and printed in the RFC 3597 `\#` form.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::name::Name;
use super::txt::{quote, split_strings};

/// Type code of an A record.
pub const TYPE_A: u16 = 1;
/// Type code of a PTR record.
pub const TYPE_PTR: u16 = 12;
/// Type code of a TXT record.
pub const TYPE_TXT: u16 = 16;
/// Type code of an AAAA record.
pub const TYPE_AAAA: u16 = 28;
/// Type code of an SRV record.
pub const TYPE_SRV: u16 = 33;
/// Class IN.
pub const CLASS_IN: u16 = 1;

/// The data of one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RData {
    /// PTR: the name pointed to (DNS-SD: a service instance).
    Ptr(Name),
    /// SRV (RFC 2782).
    Srv {
        /// Lower is preferred.
        priority: u16,
        /// Share among equal priorities.
        weight: u16,
        /// The TCP port of the service.
        port: u16,
        /// The host that serves it.
        target: Name,
    },
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// TXT RDATA as on the wire (length-prefixed strings); see
    /// [`XmppTxt`](super::XmppTxt) for its meaning.
    Txt(Vec<u8>),
    /// Any other type, uninterpreted.
    Other {
        /// The type code.
        rtype: u16,
        /// The RDATA.
        data: Vec<u8>,
    },
}

impl RData {
    /// The type code.
    pub fn rtype(&self) -> u16 {
        match self {
            RData::Ptr(_) => TYPE_PTR,
            RData::Srv { .. } => TYPE_SRV,
            RData::A(_) => TYPE_A,
            RData::Aaaa(_) => TYPE_AAAA,
            RData::Txt(_) => TYPE_TXT,
            RData::Other { rtype, .. } => *rtype,
        }
    }

    /// The type's mnemonic (`TYPE123` for others, RFC 3597).
    pub fn type_name(&self) -> String {
        type_name(self.rtype())
    }

    /// Appends the RDATA in wire form, names uncompressed (RFC 3597 and
    /// RFC 6762 18.14 forbid compression inside SRV).
    pub fn write_wire(&self, out: &mut Vec<u8>) {
        match self {
            RData::Ptr(name) => name.write_wire(out),
            RData::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                out.extend_from_slice(&priority.to_be_bytes());
                out.extend_from_slice(&weight.to_be_bytes());
                out.extend_from_slice(&port.to_be_bytes());
                target.write_wire(out);
            }
            RData::A(ip) => out.extend_from_slice(&ip.octets()),
            RData::Aaaa(ip) => out.extend_from_slice(&ip.octets()),
            RData::Txt(data) | RData::Other { data, .. } => out.extend_from_slice(data),
        }
    }

    /// Zone-file presentation of the data.
    pub fn presentation(&self) -> String {
        match self {
            RData::Ptr(name) => name.to_string(),
            RData::Srv {
                priority,
                weight,
                port,
                target,
            } => format!("{priority} {weight} {port} {target}"),
            RData::A(ip) => ip.to_string(),
            RData::Aaaa(ip) => ip.to_string(),
            RData::Txt(data) => match split_strings(data) {
                Ok(strings) => strings
                    .iter()
                    .map(|s| quote(s))
                    .collect::<Vec<_>>()
                    .join(" "),
                Err(_) => generic(data),
            },
            RData::Other { data, .. } => generic(data),
        }
    }
}

/// RFC 3597 generic RDATA: `\# length hex`.
fn generic(data: &[u8]) -> String {
    let mut s = format!("\\# {}", data.len());
    if !data.is_empty() {
        s.push(' ');
        for b in data {
            let _ = write!(s, "{b:02x}");
        }
    }
    s
}

/// A type's mnemonic.
pub fn type_name(rtype: u16) -> String {
    match rtype {
        TYPE_A => "A".into(),
        TYPE_PTR => "PTR".into(),
        TYPE_TXT => "TXT".into(),
        TYPE_AAAA => "AAAA".into(),
        TYPE_SRV => "SRV".into(),
        other => format!("TYPE{other}"),
    }
}

/// One resource record of class IN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The owner name.
    pub name: Name,
    /// Time to live, seconds.
    pub ttl: u32,
    /// The data.
    pub data: RData,
}

impl Record {
    /// One zone-file line: `name ttl IN TYPE data`.
    pub fn zone_line(&self) -> String {
        format!(
            "{} {} IN {} {}",
            self.name,
            self.ttl,
            self.data.type_name(),
            self.data.presentation()
        )
    }

    /// Appends the record in wire form (class IN, names uncompressed).
    pub fn write_wire(&self, out: &mut Vec<u8>) {
        self.name.write_wire(out);
        out.extend_from_slice(&self.data.rtype().to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&self.ttl.to_be_bytes());
        let mut rdata = Vec::new();
        self.data.write_wire(&mut rdata);
        // RDATA of the types built here is far below 64 KiB.
        out.extend_from_slice(&(rdata.len().min(u16::MAX as usize) as u16).to_be_bytes());
        out.extend_from_slice(&rdata);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_lines_and_wire_forms() {
        let target = Name::parse("pronto.local").unwrap();
        let srv = Record {
            name: Name::parse("pronto._xmpp-client._tcp.local").unwrap(),
            ttl: 120,
            data: RData::Srv {
                priority: 0,
                weight: 0,
                port: 5222,
                target: target.clone(),
            },
        };
        assert_eq!(
            srv.zone_line(),
            "pronto._xmpp-client._tcp.local. 120 IN SRV 0 0 5222 pronto.local."
        );
        let mut rdata = Vec::new();
        srv.data.write_wire(&mut rdata);
        assert_eq!(rdata, b"\x00\x00\x00\x00\x14\x66\x06pronto\x05local\x00");
        let a = RData::A(Ipv4Addr::new(10, 2, 1, 188));
        assert_eq!(a.presentation(), "10.2.1.188");
        let mut w = Vec::new();
        a.write_wire(&mut w);
        assert_eq!(w, [10, 2, 1, 188]);
        assert_eq!(
            RData::Aaaa("fe80::1".parse().unwrap()).presentation(),
            "fe80::1"
        );
        assert_eq!(RData::Txt(vec![0]).presentation(), "\"\"");
        assert_eq!(RData::Txt(vec![5, b'a']).presentation(), "\\# 2 0561");
        assert_eq!(
            RData::Other {
                rtype: 99,
                data: vec![]
            }
            .type_name(),
            "TYPE99"
        );
    }

    #[test]
    fn a_whole_record_in_wire_form() {
        let ptr = Record {
            name: Name::parse("_xmpp-client._tcp.local").unwrap(),
            ttl: 4500,
            data: RData::Ptr(Name::parse("pronto._xmpp-client._tcp.local").unwrap()),
        };
        let mut w = Vec::new();
        ptr.write_wire(&mut w);
        let mut want =
            b"\x0c_xmpp-client\x04_tcp\x05local\x00\x00\x0c\x00\x01\x00\x00\x11\x94\x00\x20"
                .to_vec();
        want.extend_from_slice(b"\x06pronto\x0c_xmpp-client\x04_tcp\x05local\x00");
        assert_eq!(w, want);
    }
}
