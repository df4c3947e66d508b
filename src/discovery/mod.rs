//! Zero configuration (spec 3.3 and 3.5): how a thing out of its box finds
//! an XMPP server and its Thing Registry. Pure code, no I/O: the `iotdisco
//! announce` and `discover` commands do the sockets (mDNS, unicast DNS).
//!
//! - [`Announcement`]: the four kinds of DNS-SD records an XMPP server
//!   publishes for `_xmpp-client._tcp` (Listings 4-8: PTR, SRV, A/AAAA, TXT),
//!   as typed [`Record`]s, a zone-file fragment and the spec's own notation.
//! - [`XmppTxt`]: the TXT record (`txtvers`, `ordom`, `regis`, `provis`),
//!   encoded and strictly parsed as DNS-SD requires.
//! - [`MachineName`]: the announced name and the spec's conflict renaming
//!   (`pronto`, `pronto-1`, `pronto-2`, ...).
//! - [`Browse`]: a sans-I/O unicast DNS-SD browser: it says which queries to
//!   send, takes the records that came back ([`message`] reads responses)
//!   and assembles [`DiscoveredServer`]s.
//! - [`dhcp`]: option 224/84 (3.3.1) and its dnsmasq, ISC dhcpd and Kea lines.
//!
//! Costs: everything here is linear in the records handled; nothing
//! allocates more than the records it builds. Every malformed input (TXT
//! data, DNS messages, names) is a [`DiscoveryError`], never a panic.
//!
//! ```
//! use iotdisco::discovery::{Announcement, MachineName, XmppTxt};
//!
//! let txt = XmppTxt::new(Some("example.com"), &["registry"], &["provisioning"])?;
//! let a = Announcement::new(MachineName::new("pronto")?, "local", 5222, txt)?
//!     .with_addresses(["10.2.1.188".parse()?]);
//! assert_eq!(a.records()?.len(), 4);
//! assert_eq!(a.zone()?.lines().next(),
//!            Some("_xmpp-client._tcp.local. 120 IN PTR pronto._xmpp-client._tcp.local."));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod dhcp;
pub mod message;
mod name;
pub mod record;
mod txt;

use std::fmt;
use std::net::IpAddr;

pub use name::{MachineName, Name};
pub use record::{RData, Record};
pub use txt::{XmppTxt, split_strings};

use record::{TYPE_A, TYPE_AAAA, TYPE_PTR, TYPE_SRV, TYPE_TXT};

/// The DNS-SD service of XMPP client connections (RFC 6120, spec 3.3.2).
pub const SERVICE: &str = "_xmpp-client._tcp";

/// The service-discovery feature a Thing Registry advertises (spec 3.5).
pub const REGISTRY_FEATURE: &str = "urn:xmpp:iot:discovery";

/// The default TTL of the records, seconds (RFC 6762 10: 120 for records
/// tied to a host name).
pub const DEFAULT_TTL: u32 = 120;

/// What went wrong, with the details a person needs to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiscoveryError {
    /// A domain, host or machine name that DNS cannot carry.
    BadName {
        /// The name as given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// TXT RDATA with no strings at all (RFC 6763 6.1: at least a zero byte).
    TxtEmpty,
    /// A TXT length byte that runs past the end of the data.
    TxtBadLength {
        /// Where the length byte is.
        offset: usize,
        /// What it declares.
        declared: usize,
        /// How many bytes follow it.
        available: usize,
    },
    /// A zero-length string among other strings.
    TxtEmptyString {
        /// Its position among the strings (0-based).
        index: usize,
    },
    /// A string starting with `=`.
    TxtEmptyKey {
        /// Its position among the strings (0-based).
        index: usize,
    },
    /// A key with bytes outside printable ASCII.
    TxtBadKey {
        /// The key, lossily decoded.
        key: String,
    },
    /// The same key twice (case ignored).
    TxtDuplicateKey {
        /// The second occurrence.
        key: String,
    },
    /// One of the spec's keys without `=value`.
    TxtMissingEquals {
        /// The key.
        key: String,
    },
    /// A spec key's value that is not UTF-8.
    TxtNotUtf8 {
        /// The key.
        key: String,
    },
    /// A `txtvers` other than 1.
    TxtUnsupportedVersion {
        /// What it said.
        version: String,
    },
    /// A value the spec's key cannot hold.
    TxtBadValue {
        /// The key.
        key: String,
        /// Why.
        reason: &'static str,
    },
    /// A string longer than 255 bytes.
    TxtTooLong {
        /// Its key.
        key: String,
        /// Its length in bytes.
        len: usize,
    },
    /// A server instance without a TXT record (DNS-SD requires one).
    TxtMissing,
    /// A DNS message that cannot be read.
    BadMessage(&'static str),
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DiscoveryError::*;
        match self {
            BadName { name, reason } => write!(f, "bad name {name:?}: {reason}"),
            TxtEmpty => write!(
                f,
                "empty TXT data (a TXT record holds at least one string; a lone zero byte means nothing published)"
            ),
            TxtBadLength {
                offset,
                declared,
                available,
            } => write!(
                f,
                "TXT string at byte {offset} declares {declared} bytes but only {available} follow"
            ),
            TxtEmptyString { index } => write!(f, "TXT string {index} is empty"),
            TxtEmptyKey { index } => write!(f, "TXT string {index} has no key before '='"),
            TxtBadKey { key } => write!(f, "TXT key {key:?} is not printable ASCII"),
            TxtDuplicateKey { key } => write!(f, "TXT key {key:?} appears twice"),
            TxtMissingEquals { key } => write!(f, "TXT key {key:?} has no '=' and no value"),
            TxtNotUtf8 { key } => write!(f, "TXT value of {key:?} is not UTF-8"),
            TxtUnsupportedVersion { version } => {
                write!(f, "TXT txtvers={version:?} is not supported (only 1)")
            }
            TxtBadValue { key, reason } => write!(f, "TXT value of {key:?}: {reason}"),
            TxtTooLong { key, len } => write!(
                f,
                "TXT string of {key:?} is {len} bytes, more than the 255 a string can hold"
            ),
            TxtMissing => write!(f, "no TXT record (DNS-SD requires one)"),
            BadMessage(what) => write!(f, "malformed DNS message: {what}"),
        }
    }
}

impl std::error::Error for DiscoveryError {}

/// `_xmpp-client._tcp.<domain>`: the name browsed and pointed from.
pub fn service_name(domain: &Name) -> Result<Name, DiscoveryError> {
    domain.prepend(b"_tcp")?.prepend(b"_xmpp-client")
}

/// What an XMPP server announces (spec 3.3.2): its machine name, port,
/// addresses and TXT data, under a domain (`local` for mDNS, the site's
/// domain for unicast DNS-SD).
///
/// Invariant: the service, instance and host names all fit DNS (checked
/// by [`Announcement::new`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    machine: MachineName,
    domain: Name,
    service: Name,
    instance: Name,
    host: Name,
    port: u16,
    addresses: Vec<IpAddr>,
    txt: XmppTxt,
    ttl: u32,
}

impl Announcement {
    /// The announcement of `machine` serving XMPP clients on `port`, under
    /// `domain` (e.g. `local`), with no addresses yet and TTL 120.
    pub fn new(
        machine: MachineName,
        domain: &str,
        port: u16,
        txt: XmppTxt,
    ) -> Result<Announcement, DiscoveryError> {
        let domain = Name::parse(domain)?;
        let service = service_name(&domain)?;
        let instance = service.prepend(machine.as_str().as_bytes())?;
        let host = domain.prepend(machine.as_str().as_bytes())?;
        txt.encode()?;
        Ok(Announcement {
            machine,
            domain,
            service,
            instance,
            host,
            port,
            addresses: Vec::new(),
            txt,
            ttl: DEFAULT_TTL,
        })
    }

    /// With these addresses (A and AAAA records, in order).
    pub fn with_addresses(mut self, addresses: impl IntoIterator<Item = IpAddr>) -> Self {
        self.addresses = addresses.into_iter().collect();
        self
    }

    /// With this TTL for every record.
    pub fn with_ttl(mut self, ttl: u32) -> Self {
        self.ttl = ttl;
        self
    }

    /// The same announcement under another machine name (after a conflict).
    pub fn renamed(&self, machine: MachineName) -> Result<Announcement, DiscoveryError> {
        let domain = self.domain.to_string();
        Ok(
            Announcement::new(machine, &domain, self.port, self.txt.clone())?
                .with_addresses(self.addresses.clone())
                .with_ttl(self.ttl),
        )
    }

    /// The machine name.
    pub fn machine(&self) -> &MachineName {
        &self.machine
    }

    /// `_xmpp-client._tcp.<domain>`.
    pub fn service(&self) -> &Name {
        &self.service
    }

    /// `<machine>._xmpp-client._tcp.<domain>` (owner of SRV and TXT).
    pub fn instance(&self) -> &Name {
        &self.instance
    }

    /// `<machine>.<domain>` (owner of A/AAAA, target of SRV).
    pub fn host(&self) -> &Name {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The addresses.
    pub fn addresses(&self) -> &[IpAddr] {
        &self.addresses
    }

    /// The TXT data.
    pub fn txt(&self) -> &XmppTxt {
        &self.txt
    }

    /// The records, in the order of Listing 8: PTR (Listing 4), SRV
    /// (Listing 6), one A or AAAA per address (Listing 5), TXT (Listing 7).
    pub fn records(&self) -> Result<Vec<Record>, DiscoveryError> {
        let mut out = vec![
            Record {
                name: self.service.clone(),
                ttl: self.ttl,
                data: RData::Ptr(self.instance.clone()),
            },
            Record {
                name: self.instance.clone(),
                ttl: self.ttl,
                data: RData::Srv {
                    priority: 0,
                    weight: 0,
                    port: self.port,
                    target: self.host.clone(),
                },
            },
        ];
        for ip in &self.addresses {
            out.push(Record {
                name: self.host.clone(),
                ttl: self.ttl,
                data: match ip {
                    IpAddr::V4(v4) => RData::A(*v4),
                    IpAddr::V6(v6) => RData::Aaaa(*v6),
                },
            });
        }
        out.push(Record {
            name: self.instance.clone(),
            ttl: self.ttl,
            data: RData::Txt(self.txt.encode()?),
        });
        Ok(out)
    }

    /// The records as zone-file lines (RFC 1035 master file format, absolute
    /// names, explicit TTL and class), one per line.
    pub fn zone(&self) -> Result<String, DiscoveryError> {
        let mut s = String::new();
        for r in self.records()? {
            s.push_str(&r.zone_line());
            s.push('\n');
        }
        Ok(s)
    }

    /// The records in the spec's own notation, exactly as Listing 8 writes
    /// them (SRV without priority and weight, TXT strings one per line). For
    /// documentation; [`Announcement::zone`] is what DNS servers load.
    pub fn listing(&self) -> Result<String, DiscoveryError> {
        let mut parts = vec![
            format!("{} PTR {}", self.service, self.instance),
            format!("{} SRV {} {}", self.instance, self.port, self.host),
        ];
        for ip in &self.addresses {
            let kind = if ip.is_ipv4() { "A" } else { "AAAA" };
            parts.push(format!("{} {kind} {ip}", self.host));
        }
        let mut txt = format!("{} IN TXT", self.instance);
        let strings = self.txt.strings()?;
        if strings.is_empty() {
            txt.push_str("\n\"\"");
        }
        for s in strings {
            txt.push('\n');
            txt.push_str(&txt::quote(&s));
        }
        parts.push(txt);
        Ok(parts.join("\n\n"))
    }
}

/// An XMPP server found by browsing `_xmpp-client._tcp`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveredServer {
    /// The instance name (`pronto._xmpp-client._tcp.local.`).
    pub instance: Name,
    /// The host to connect to (the SRV target).
    pub host: Name,
    /// The port to connect to.
    pub port: u16,
    /// The SRV priority (lower first).
    pub priority: u16,
    /// The host's addresses that were found.
    pub addresses: Vec<IpAddr>,
    /// The TXT data, or why it could not be used.
    pub txt: Result<XmppTxt, DiscoveryError>,
}

impl DiscoveredServer {
    /// The machine name part of the instance (`pronto`), escaped for display.
    pub fn name(&self) -> String {
        self.instance.first_label_text()
    }
}

/// A sans-I/O unicast DNS-SD browse of `_xmpp-client._tcp.<domain>`
/// (RFC 6763 4-6): ask [`Browse::next_queries`] what to send, feed every
/// record received to [`Browse::add`], repeat until no query is left, then
/// read [`Browse::servers`]. Each (name, type) is asked at most once, so a
/// browse ends after at most 1 + 4 queries per instance found.
#[derive(Clone, Debug)]
pub struct Browse {
    service: Name,
    records: Vec<Record>,
    asked: Vec<(Name, u16)>,
}

impl Browse {
    /// A browse of `_xmpp-client._tcp.<domain>`.
    pub fn new(domain: &str) -> Result<Browse, DiscoveryError> {
        Ok(Browse {
            service: service_name(&Name::parse(domain)?)?,
            records: Vec::new(),
            asked: Vec::new(),
        })
    }

    /// The name browsed.
    pub fn service(&self) -> &Name {
        &self.service
    }

    /// Records received (any section of any response).
    pub fn add(&mut self, records: impl IntoIterator<Item = Record>) {
        for r in records {
            if !self.records.contains(&r) {
                self.records.push(r);
            }
        }
    }

    /// The queries still needed, as (name, type); each is returned once.
    pub fn next_queries(&mut self) -> Vec<(Name, u16)> {
        let mut want = vec![(self.service.clone(), TYPE_PTR)];
        for instance in self.instances() {
            if !self.has(&instance, TYPE_SRV) {
                want.push((instance.clone(), TYPE_SRV));
            }
            if !self.has(&instance, TYPE_TXT) {
                want.push((instance.clone(), TYPE_TXT));
            }
            for target in self.targets(&instance) {
                if !self.has(&target, TYPE_A) {
                    want.push((target.clone(), TYPE_A));
                }
                if !self.has(&target, TYPE_AAAA) {
                    want.push((target, TYPE_AAAA));
                }
            }
        }
        want.retain(|q| !self.asked.contains(q));
        let mut out = Vec::new();
        for q in want {
            if !out.contains(&q) {
                out.push(q);
            }
        }
        self.asked.extend(out.iter().cloned());
        out
    }

    fn has(&self, name: &Name, rtype: u16) -> bool {
        self.records
            .iter()
            .any(|r| r.name == *name && r.data.rtype() == rtype)
    }

    fn instances(&self) -> Vec<Name> {
        let mut out: Vec<Name> = Vec::new();
        for r in &self.records {
            if let (true, RData::Ptr(target)) = (r.name == self.service, &r.data) {
                if !out.contains(target) {
                    out.push(target.clone());
                }
            }
        }
        out
    }

    fn targets(&self, instance: &Name) -> Vec<Name> {
        self.records
            .iter()
            .filter(|r| r.name == *instance)
            .filter_map(|r| match &r.data {
                RData::Srv { target, .. } => Some(target.clone()),
                _ => None,
            })
            .collect()
    }

    /// The servers found so far: every instance the service points to that
    /// has an SRV record (the lowest priority one), with its target's
    /// addresses and its TXT data (or the error that made it unusable).
    pub fn servers(&self) -> Vec<DiscoveredServer> {
        let mut out = Vec::new();
        for instance in self.instances() {
            let srv = self
                .records
                .iter()
                .filter(|r| r.name == instance)
                .filter_map(|r| match &r.data {
                    RData::Srv {
                        priority,
                        port,
                        target,
                        ..
                    } => Some((*priority, *port, target.clone())),
                    _ => None,
                })
                .min_by_key(|s| s.0);
            let Some((priority, port, host)) = srv else {
                continue;
            };
            let mut addresses = Vec::new();
            for r in self.records.iter().filter(|r| r.name == host) {
                let ip = match r.data {
                    RData::A(ip) => IpAddr::V4(ip),
                    RData::Aaaa(ip) => IpAddr::V6(ip),
                    _ => continue,
                };
                if !addresses.contains(&ip) {
                    addresses.push(ip);
                }
            }
            let txt = self
                .records
                .iter()
                .find_map(|r| match &r.data {
                    RData::Txt(data) if r.name == instance => Some(XmppTxt::decode(data)),
                    _ => None,
                })
                .unwrap_or(Err(DiscoveryError::TxtMissing));
            out.push(DiscoveredServer {
                instance,
                host,
                port,
                priority,
                addresses,
                txt,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Listing 8 of the spec, verbatim.
    const LISTING_8: &str = r#"_xmpp-client._tcp.local. PTR pronto._xmpp-client._tcp.local.

pronto._xmpp-client._tcp.local. SRV 5222 pronto.local.

pronto.local. A 10.2.1.188

pronto._xmpp-client._tcp.local. IN TXT
"txtvers=1"
"ordom=example.com"
"regis=registry"
"provis=provisioning""#;

    fn pronto() -> Announcement {
        let txt = XmppTxt::new(Some("example.com"), &["registry"], &["provisioning"]).unwrap();
        Announcement::new(MachineName::new("pronto").unwrap(), "local", 5222, txt)
            .unwrap()
            .with_addresses(["10.2.1.188".parse().unwrap()])
    }

    #[test]
    fn listing_8_byte_for_byte() {
        assert_eq!(pronto().listing().unwrap(), LISTING_8);
    }

    #[test]
    fn listings_4_to_7_as_records() {
        let records = pronto().records().unwrap();
        let lines: Vec<String> = records.iter().map(Record::zone_line).collect();
        assert_eq!(
            lines,
            [
                "_xmpp-client._tcp.local. 120 IN PTR pronto._xmpp-client._tcp.local.",
                "pronto._xmpp-client._tcp.local. 120 IN SRV 0 0 5222 pronto.local.",
                "pronto.local. 120 IN A 10.2.1.188",
                r#"pronto._xmpp-client._tcp.local. 120 IN TXT "txtvers=1" "ordom=example.com" "regis=registry" "provis=provisioning""#,
            ]
        );
        assert_eq!(
            records[3].data,
            RData::Txt(
                b"\x09txtvers=1\x11ordom=example.com\x0eregis=registry\x13provis=provisioning"
                    .to_vec()
            )
        );
    }

    #[test]
    fn ipv6_nothing_published_and_other_domains() {
        let a = Announcement::new(
            MachineName::new("pronto").unwrap(),
            "example.org.",
            5223,
            XmppTxt::nothing(),
        )
        .unwrap()
        .with_addresses(["fe80::1".parse().unwrap(), "10.0.0.1".parse().unwrap()])
        .with_ttl(60);
        assert_eq!(
            a.zone().unwrap(),
            "_xmpp-client._tcp.example.org. 60 IN PTR pronto._xmpp-client._tcp.example.org.\n\
             pronto._xmpp-client._tcp.example.org. 60 IN SRV 0 0 5223 pronto.example.org.\n\
             pronto.example.org. 60 IN AAAA fe80::1\n\
             pronto.example.org. 60 IN A 10.0.0.1\n\
             pronto._xmpp-client._tcp.example.org. 60 IN TXT \"\"\n"
        );
        assert!(a.listing().unwrap().ends_with("IN TXT\n\"\""));
        let r = a.renamed(a.machine().renamed(1)).unwrap();
        assert_eq!(
            r.instance().to_string(),
            "pronto-1._xmpp-client._tcp.example.org."
        );
        assert_eq!(r.host().to_string(), "pronto-1.example.org.");
        assert_eq!(r.addresses(), a.addresses());
        assert!(
            Announcement::new(
                MachineName::new("p").unwrap(),
                "bad domain",
                1,
                XmppTxt::nothing()
            )
            .is_err()
        );
    }

    proptest::proptest! {
        /// Arbitrary bytes never panic the readers: they parse or fail typed.
        #[test]
        fn readers_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = message::Response::parse(&bytes);
            let _ = XmppTxt::decode(&bytes);
        }

        /// Whatever can be built encodes and decodes back to itself.
        #[test]
        fn txt_round_trips(
            ordom in proptest::option::of("[a-z0-9-]{1,20}(\\.[a-z]{2,5})?"),
            regis in proptest::collection::vec("[a-z0-9.@_-]{1,20}", 0..4),
            provis in proptest::collection::vec("[a-z0-9.@_-]{1,20}", 0..4),
        ) {
            let r: Vec<&str> = regis.iter().map(String::as_str).collect();
            let p: Vec<&str> = provis.iter().map(String::as_str).collect();
            let txt = XmppTxt::new(ordom.as_deref(), &r, &p).unwrap();
            let rdata = txt.encode().unwrap();
            proptest::prop_assert_eq!(XmppTxt::decode(&rdata).unwrap(), txt);
        }
    }

    #[test]
    fn every_record_survives_the_wire_both_ways() {
        let a = pronto().with_addresses([
            "10.2.1.188".parse().unwrap(),
            "2001:db8::1".parse().unwrap(),
        ]);
        let records = a.records().unwrap();
        assert_eq!(
            records.iter().map(|r| r.data.rtype()).collect::<Vec<_>>(),
            [TYPE_PTR, TYPE_SRV, TYPE_A, TYPE_AAAA, TYPE_TXT]
        );
        // A response carrying them all as answers, names uncompressed.
        let mut msg = vec![0, 7, 0x84, 0, 0, 0, 0, records.len() as u8, 0, 0, 0, 0];
        for r in &records {
            r.write_wire(&mut msg);
        }
        let back = message::Response::parse(&msg).unwrap();
        assert_eq!(back.records, records);
        let mut aaaa = Vec::new();
        records[3].data.write_wire(&mut aaaa);
        assert_eq!(
            aaaa,
            [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        );
    }

    #[test]
    fn a_browse_asks_each_question_once_and_assembles_servers() {
        let mut b = Browse::new("local").unwrap();
        let q = b.next_queries();
        assert_eq!(
            q,
            [(Name::parse("_xmpp-client._tcp.local").unwrap(), TYPE_PTR)]
        );
        assert!(b.next_queries().is_empty(), "nothing new to ask");
        let records = pronto().records().unwrap();
        b.add(records[..1].iter().cloned()); // the PTR only
        let q: Vec<(String, u16)> = b
            .next_queries()
            .into_iter()
            .map(|(n, t)| (n.to_string(), t))
            .collect();
        assert_eq!(
            q,
            [
                ("pronto._xmpp-client._tcp.local.".to_string(), TYPE_SRV),
                ("pronto._xmpp-client._tcp.local.".to_string(), TYPE_TXT)
            ]
        );
        assert!(b.servers().is_empty(), "no SRV yet");
        b.add(records[1..2].iter().cloned()); // SRV
        let q = b.next_queries();
        assert_eq!(q.len(), 2, "A and AAAA of the target: {q:?}");
        b.add(records.iter().cloned());
        assert!(b.next_queries().is_empty());
        let servers = b.servers();
        assert_eq!(servers.len(), 1);
        let s = &servers[0];
        assert_eq!(s.name(), "pronto");
        assert_eq!(s.host.to_string(), "pronto.local.");
        assert_eq!(s.port, 5222);
        assert_eq!(s.addresses, ["10.2.1.188".parse::<IpAddr>().unwrap()]);
        let txt = s.txt.as_ref().unwrap();
        assert_eq!(txt.registry_jids(), ["registry@example.com"]);
        assert_eq!(txt.provisioning_jids(), ["provisioning@example.com"]);
    }

    #[test]
    fn a_server_with_a_broken_or_missing_txt_is_reported_with_the_error() {
        let mut b = Browse::new("local").unwrap();
        let mut records = pronto().records().unwrap();
        records.pop();
        b.add(records.clone());
        assert_eq!(b.servers()[0].txt, Err(DiscoveryError::TxtMissing));
        b.add([Record {
            name: pronto().instance().clone(),
            ttl: 1,
            data: RData::Txt(b"\x05regis".to_vec()),
        }]);
        assert_eq!(
            b.servers()[0].txt,
            Err(DiscoveryError::TxtMissingEquals {
                key: "regis".into()
            })
        );
    }
}
