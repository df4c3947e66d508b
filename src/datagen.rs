//! Deterministic populations and the standard query mix, shared by benchmarks,
//! tests and (later) the load tool.
//!
//! Thing `i` of seed `s` is always the same: ten realistic tags (`SN` a unique
//! 18-digit serial, `MAN` one of 50 manufacturer domains, `MODEL` one of 8
//! models, `V` one of 6 versions, `CLASS` one of 10 classes, `COUNTRY` one of 30,
//! `CITY` one of 200, `LAT`/`LON` uniform with 6 decimals, and a 24-hex-digit
//! `KEY`), a JID, a resource and an owner (one of 10,000). No randomness comes from
//! outside: the numbers are SplitMix64 of `(seed, i)`.
//!
//! [`standard_queries`] are Q1-Q5 of the benchmarks, each a page of 20.

use crate::jid::{BareJid, Jid};
use crate::query::{NumRange, Operator, Search, StrRange, pattern::Mask};
use crate::registry::{Claim, Register, Registry, RegistryError};
use crate::tag::{Number, Tag, TagName};
use crate::thing::NodeAddress;

/// The 50 manufacturer domains; `www.ktc.se` (the spec's) is the first.
pub const MANUFACTURERS: [&str; 50] = [
    "www.ktc.se",
    "www.acme.com",
    "www.abb.com",
    "www.siemens.com",
    "www.bosch.de",
    "www.schneider.fr",
    "www.honeywell.com",
    "www.philips.nl",
    "www.ikea.se",
    "www.ericsson.se",
    "www.nokia.fi",
    "www.sony.jp",
    "www.panasonic.jp",
    "www.lg.kr",
    "www.samsung.kr",
    "www.xiaomi.cn",
    "www.huawei.cn",
    "www.tplink.cn",
    "www.netgear.com",
    "www.cisco.com",
    "www.juniper.net",
    "www.danfoss.dk",
    "www.grundfos.dk",
    "www.vaisala.fi",
    "www.axis.se",
    "www.husqvarna.se",
    "www.electrolux.se",
    "www.volvo.se",
    "www.scania.se",
    "www.sandvik.se",
    "www.atlascopco.se",
    "www.alfalaval.se",
    "www.assaabloy.se",
    "www.nibe.se",
    "www.ctc.se",
    "www.thermia.se",
    "www.eaton.com",
    "www.ge.com",
    "www.emerson.com",
    "www.rockwell.com",
    "www.omron.jp",
    "www.mitsubishi.jp",
    "www.yokogawa.jp",
    "www.endress.ch",
    "www.belimo.ch",
    "www.legrand.fr",
    "www.somfy.fr",
    "www.netatmo.fr",
    "www.nest.com",
    "www.ecobee.ca",
];

/// The 8 models every manufacturer makes; `IMC` (the spec's) is the first.
pub const MODELS: [&str; 8] = [
    "IMC", "PLC-100", "PLC-200", "SENS-T1", "SENS-H2", "METER-E", "METER-W", "GW-1",
];

/// The 6 versions.
pub const VERSIONS: [f64; 6] = [1.0, 1.1, 1.2, 2.0, 2.1, 3.0];

/// The 10 classes; `PLC` is the first.
pub const CLASSES: [&str; 10] = [
    "PLC",
    "Sensor",
    "Actuator",
    "Meter",
    "Gateway",
    "Camera",
    "Lamp",
    "Thermostat",
    "Lock",
    "Switch",
];

/// The 30 countries; `SE` is the first.
pub const COUNTRIES: [&str; 30] = [
    "SE", "NO", "DK", "FI", "DE", "FR", "GB", "NL", "BE", "ES", "IT", "PT", "PL", "CZ", "AT", "CH",
    "US", "CA", "MX", "BR", "AR", "CL", "JP", "KR", "CN", "IN", "AU", "NZ", "ZA", "EG",
];

/// How many distinct owners a population has.
pub const OWNERS: u64 = 10_000;

const SN_SPACE: u128 = 900_000_000_000_000_000;
const SN_MULT: u128 = 614_889_782_588_491_411; // odd, not a multiple of 3 or 5

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A deterministic stream of 64-bit numbers.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A stream for `(seed, i)`.
    pub fn new(seed: u64, i: u64) -> Self {
        Rng(splitmix(seed ^ splitmix(i)))
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        splitmix(self.0)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A float in `[lo, hi]` rounded to 6 decimals.
    pub fn coord(&mut self, lo: f64, hi: f64) -> f64 {
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((lo + u * (hi - lo)) * 1e6).round() / 1e6
    }
}

/// One generated thing.
#[derive(Debug, Clone)]
pub struct GenThing {
    /// Full JID the thing registers from.
    pub jid: Jid,
    /// Its owner.
    pub owner: BareJid,
    /// Its ten tags, `KEY` last.
    pub tags: Vec<Tag>,
}

fn jid(s: &str) -> BareJid {
    BareJid::parse(s).expect("generated JIDs are valid")
}

/// The serial number of thing `i` (unique for `i` below 9 * 10^17).
pub fn serial(seed: u64, i: u64) -> String {
    let offset = u128::from(splitmix(seed)) % SN_SPACE;
    let v = (u128::from(i) * SN_MULT + offset) % SN_SPACE + 100_000_000_000_000_000;
    v.to_string()
}

/// Thing `i` of population `seed`.
pub fn thing(seed: u64, i: u64) -> GenThing {
    let mut r = Rng::new(seed, i);
    let t = |n: &str, v: &str| Tag::str(n, v).expect("generated tags are valid");
    let n = |name: &str, v: f64| Tag::num(name, v).expect("generated tags are valid");
    let tags = vec![
        t("SN", &serial(seed, i)),
        t("MAN", MANUFACTURERS[r.below(50) as usize]),
        t("MODEL", MODELS[r.below(8) as usize]),
        n("V", VERSIONS[r.below(6) as usize]),
        t("CLASS", CLASSES[r.below(10) as usize]),
        t("COUNTRY", COUNTRIES[r.below(30) as usize]),
        t("CITY", &format!("City{:03}", r.below(200))),
        n("LAT", r.coord(-90.0, 90.0)),
        n("LON", r.coord(-180.0, 180.0)),
        t(
            "KEY",
            &format!("{:016x}{:08x}", r.next_u64(), r.next_u64() as u32),
        ),
    ];
    GenThing {
        jid: Jid::new(
            jid(&format!("thing{i}@d{}.example.org", i % 64)),
            Some("imc"),
        ),
        owner: jid(&format!("owner{}@example.org", r.below(OWNERS))),
        tags,
    }
}

/// Things `0..n` of population `seed`.
pub fn population(seed: u64, n: u64) -> impl Iterator<Item = GenThing> {
    (0..n).map(move |i| thing(seed, i))
}

/// The `register` request thing `g` sends, with its sender.
pub fn register_request(g: &GenThing) -> (Jid, Register) {
    let req = Register {
        node: NodeAddress::default(),
        tags: g.tags.clone(),
        self_owned: false,
    };
    (g.jid.clone(), req)
}

/// Registers thing `g` and has its owner claim it (public), as a real
/// installation would.
pub fn install(reg: &Registry, g: &GenThing) -> Result<(), RegistryError> {
    let (from, req) = register_request(g);
    reg.register(&from, req)?;
    reg.claim(
        &Jid::from(g.owner.clone()),
        Claim {
            tags: g.tags.clone(),
            public: true,
        },
    )?;
    Ok(())
}

fn name(n: &str) -> TagName {
    TagName::new(n).expect("valid name")
}

fn num(v: f64) -> Number {
    Number::new(v, "").expect("finite")
}

fn range(min: f64, min_included: bool, max: f64, max_included: bool) -> NumRange {
    NumRange {
        min: num(min),
        min_included,
        max: num(max),
        max_included,
    }
}

/// The standard query mix, each a page of 20 from offset 0:
/// - Q1: the spec's Listing 40 (MAN, MODEL, SN mask `39487*`, V in [1,2), LON in
///   [-72,-70], LAT in [-34,-33]);
/// - Q2: `MAN = www.ktc.se` (2% of things);
/// - Q3: LAT in [-10,10] and LON in [0,90] (about 3%);
/// - Q4: `CLASS = PLC`, `V >= 2`, `COUNTRY <> SE`;
/// - Q5: SN mask `*1234*` and `MAN = www.ktc.se`.
pub fn standard_queries() -> Vec<(&'static str, Search)> {
    let page = |ops| Search {
        operators: ops,
        offset: 0,
        max_count: Some(20),
    };
    let ktc = || Operator::StrEq(name("MAN"), "www.ktc.se".into());
    vec![
        (
            "Q1",
            page(vec![
                ktc(),
                Operator::StrEq(name("MODEL"), "IMC".into()),
                Operator::StrMask(name("SN"), Mask::new("39487*", Some("*")).expect("mask")),
                Operator::NumRange(name("V"), range(1.0, true, 2.0, false)),
                Operator::NumRange(name("LON"), range(-72.0, true, -70.0, true)),
                Operator::NumRange(name("LAT"), range(-34.0, true, -33.0, true)),
            ]),
        ),
        ("Q2", page(vec![ktc()])),
        (
            "Q3",
            page(vec![
                Operator::NumRange(name("LAT"), range(-10.0, true, 10.0, true)),
                Operator::NumRange(name("LON"), range(0.0, true, 90.0, true)),
            ]),
        ),
        (
            "Q4",
            page(vec![
                Operator::StrEq(name("CLASS"), "PLC".into()),
                Operator::NumGtEq(name("V"), num(2.0)),
                Operator::StrNEq(name("COUNTRY"), "SE".into()),
            ]),
        ),
        (
            "Q5",
            page(vec![
                Operator::StrMask(name("SN"), Mask::new("*1234*", Some("*")).expect("mask")),
                ktc(),
            ]),
        ),
    ]
}

/// A string range helper for tests and tools.
pub fn str_range(min: &str, min_included: bool, max: &str, max_included: bool) -> StrRange {
    StrRange {
        min: min.into(),
        min_included,
        max: max.into(),
        max_included,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn deterministic_and_unique_serials() {
        assert_eq!(thing(7, 42).tags, thing(7, 42).tags);
        let sns: HashSet<String> = (0..20_000).map(|i| serial(1, i)).collect();
        assert_eq!(sns.len(), 20_000);
        assert!(sns.iter().all(|s| s.len() == 18));
        assert_eq!(SN_MULT % 2, 1);
        assert_ne!(SN_MULT % 3, 0);
        assert_ne!(SN_MULT % 5, 0);
    }
}
