//! The claim string of spec 3.9, the successor's `iotdisco:` claim and search
//! URIs (../shared/interop/successor-dialect.md, section 6) and the iotdisco
//! extension for explicit operators: exact listings, every error, every
//! operator, and round trips of arbitrary input.

use iotdisco::query::{Mask, NumRange, Operator, StrRange};
use iotdisco::tag::{Number, TagName};
use iotdisco::uri::{
    ClaimUri, SEARCH_URI_HELP, UriErrorKind, decode_any_claim, decode_claim, decode_claim_uri,
    encode_claim, encode_claim_uri, format_search_uri, parse_search_uri,
    parse_search_uri_with_registry,
};
use iotdisco::{Tag, TagValue};
use proptest::prelude::*;

/// Listing 14, as one string (the listing's line break is layout).
const LISTING_14: &str =
    "IoTDisco;SN:394872348732948723;MAN:www.ktc.se;MODEL:IMC;#V:1.2;KEY:4857402340298342";

fn s(name: &str, v: &str) -> Tag {
    Tag::str(name, v).unwrap()
}

fn n(name: &str, v: f64) -> Tag {
    Tag::num(name, v).unwrap()
}

fn name(x: &str) -> TagName {
    TagName::new(x).unwrap()
}

fn num(x: f64) -> Number {
    Number::new(x, "X").unwrap()
}

fn listing_14_tags() -> Vec<Tag> {
    vec![
        s("SN", "394872348732948723"),
        s("MAN", "www.ktc.se"),
        s("MODEL", "IMC"),
        n("V", 1.2),
        s("KEY", "4857402340298342"),
    ]
}

fn kind(r: Result<impl std::fmt::Debug, iotdisco::uri::UriError>) -> (usize, UriErrorKind) {
    let e = r.unwrap_err();
    // Every error reads as one line with its position.
    let text = e.to_string();
    assert!(text.starts_with("at character "), "{text}");
    assert!(!text.contains('\n'), "{text}");
    (e.position, e.kind)
}

// ---------------------------------------------------------------------------
// The spec's claim string

#[test]
fn listing_14_encodes_exactly() {
    assert_eq!(encode_claim(&listing_14_tags()), LISTING_14);
}

#[test]
fn listing_14_decodes() {
    assert_eq!(decode_claim(LISTING_14).unwrap(), listing_14_tags());
    // As printed in the spec, with the line break after `#V:1.2;`.
    let printed =
        "IoTDisco;SN:394872348732948723;MAN:www.ktc.se;MODEL:IMC;#V:1.2;\nKEY:4857402340298342";
    assert_eq!(decode_claim(printed).unwrap(), listing_14_tags());
    // With a trailing `;`.
    assert_eq!(
        decode_claim(&format!("{LISTING_14};")).unwrap(),
        listing_14_tags()
    );
    let any = decode_any_claim(LISTING_14).unwrap();
    assert_eq!(
        any,
        ClaimUri {
            tags: listing_14_tags(),
            registry: None
        }
    );
}

#[test]
fn claim_values_with_special_characters() {
    let tags = vec![
        s("A", "semi;colon"),
        s("B", "back\\slash"),
        s("C", "co:lon"),
        s("D", "ünïcödé ✓ 😀"),
        s("E", ";\\;\\\\"),
        s("F", ""),
        n("G", -71.519722),
        n("H", 1e20),
    ];
    let text = encode_claim(&tags);
    assert_eq!(
        text,
        "IoTDisco;A:semi\\;colon;B:back\\\\slash;C:co:lon;D:ünïcödé ✓ 😀;E:\\;\\\\\\;\\\\\\\\;F:;#G:-71.519722;#H:1e20"
    );
    assert_eq!(decode_claim(&text).unwrap(), tags);
    for uri in [
        encode_claim_uri(&tags, None),
        encode_claim_uri(&tags, Some("reg.example.org")),
    ] {
        assert!(uri.is_ascii(), "{uri}");
        let c = decode_claim_uri(&uri).unwrap();
        assert_eq!(c.tags, tags);
        assert_eq!(decode_any_claim(&uri).unwrap(), c);
    }
}

#[test]
fn claim_string_errors() {
    assert_eq!(
        kind(decode_claim("IoTDiso;SN:1")),
        (
            0,
            UriErrorKind::MissingPrefix("a claim string starts with 'IoTDisco;'")
        )
    );
    assert!(matches!(
        kind(decode_claim("IoTDiscoX;SN:1")),
        (8, UriErrorKind::MissingPrefix(_))
    ));
    assert_eq!(
        kind(decode_claim("IoTDisco;SN:1;MAN")),
        (14, UriErrorKind::MissingColon)
    );
    assert_eq!(
        kind(decode_claim("IoTDisco;SN;MAN:x")),
        (9, UriErrorKind::MissingColon)
    );
    assert!(matches!(
        kind(decode_claim("IoTDisco;#V:1.2.3")),
        (12, UriErrorKind::BadNumber(v)) if v == "1.2.3"
    ));
    assert!(matches!(
        kind(decode_claim("IoTDisco;#V:NaN")),
        (12, UriErrorKind::BadNumber(_))
    ));
    assert_eq!(
        kind(decode_claim("IoTDisco;SN:abc\\")),
        (15, UriErrorKind::DanglingBackslash)
    );
    assert!(matches!(
        kind(decode_claim("IoTDisco;S N:1")),
        (9, UriErrorKind::BadName(_))
    ));
    assert!(matches!(
        kind(decode_claim("IoTDisco;:1")),
        (9, UriErrorKind::BadName(_))
    ));
    assert!(matches!(
        kind(decode_claim(&format!("IoTDisco;{}:1", "X".repeat(65)))),
        (9, UriErrorKind::BadName(_))
    ));
    // Up to the successor dialect's 64 characters.
    let long = decode_claim(&format!("IoTDisco;{}:1", "X".repeat(64))).unwrap();
    assert_eq!(long[0].name.as_str().len(), 64);
    assert_eq!(
        kind(decode_claim("IoTDisco;SN:1;sn:2")),
        (14, UriErrorKind::DuplicateName("SN".into()))
    );
    assert_eq!(
        kind(decode_claim("IoTDisco;SN:1;;MAN:2")),
        (14, UriErrorKind::EmptyTag)
    );
    assert!(matches!(
        kind(decode_claim(&format!("IoTDisco;SN:{}", "x".repeat(129)))),
        (12, UriErrorKind::BadValue(_))
    ));
}

// ---------------------------------------------------------------------------
// The successor's claim URI

#[test]
fn successor_test_uri_decodes() {
    // IoTGateway's IoTDiscoTests URI.
    let uri = "iotdisco:SN=98734238472634;MAN=www.example.org;MODEL=Device;#V=1.0;KEY=3453485763440213840928;R=discovery.example.org";
    let c = decode_claim_uri(uri).unwrap();
    assert_eq!(
        c.tags,
        vec![
            s("SN", "98734238472634"),
            s("MAN", "www.example.org"),
            s("MODEL", "Device"),
            n("V", 1.0),
            s("KEY", "3453485763440213840928"),
        ]
    );
    assert_eq!(c.registry.as_deref(), Some("discovery.example.org"));
    assert_eq!(decode_any_claim(uri).unwrap(), c);
    // Encoded back the way EncodeAsIoTDiscoURI writes it (numbers as `1`).
    assert_eq!(
        encode_claim_uri(&c.tags, c.registry.as_deref()),
        "iotdisco:SN=98734238472634;MAN=www.example.org;MODEL=Device;#V=1;KEY=3453485763440213840928;R=discovery.example.org"
    );
}

#[test]
fn listing_14_as_claim_uri() {
    let uri = encode_claim_uri(&listing_14_tags(), Some("discovery.example.org"));
    assert_eq!(
        uri,
        "iotdisco:SN=394872348732948723;MAN=www.ktc.se;MODEL=IMC;#V=1.2;KEY=4857402340298342;R=discovery.example.org"
    );
    let c = decode_claim_uri(&uri).unwrap();
    assert_eq!(c.tags, listing_14_tags());
}

#[test]
fn claim_uri_escapes_as_the_successor() {
    // Both `%3B` and `\;` are a `;`; percent-decoding follows the split.
    let c =
        decode_claim_uri("IOTDISCO:A=x%3By;B=x\\;y;C=%C3%A9%20%E2%9C%93;D=a\\%3Bb;R=reg").unwrap();
    assert_eq!(
        c.tags,
        vec![s("A", "x;y"), s("B", "x;y"), s("C", "é ✓"), s("D", "a;b")]
    );
    // The encoder writes Uri.EscapeDataString: unreserved kept, the rest %XX.
    let uri = encode_claim_uri(
        &[s("A", "a;b\\c:d=e%f#g h~é"), n("V", 1.5)],
        Some("thing@reg.example.org"),
    );
    assert_eq!(
        uri,
        "iotdisco:A=a%3Bb%5Cc%3Ad%3De%25f%23g%20h~%C3%A9;#V=1.5;R=thing%40reg.example.org"
    );
    // Surrounding white space and one trailing `;` are ignored.
    let c = decode_claim_uri(" iotdisco:SN=1;R=reg;\n").unwrap();
    assert_eq!(c.tags, vec![s("SN", "1")]);
}

#[test]
fn claim_uri_errors() {
    assert!(matches!(
        kind(decode_claim_uri(LISTING_14)),
        (0, UriErrorKind::MissingPrefix(m)) if m.contains("IoTDisco;")
    ));
    assert!(matches!(
        kind(decode_claim_uri("http://x")),
        (0, UriErrorKind::MissingPrefix(_))
    ));
    assert_eq!(
        kind(decode_claim_uri("iotdisco:")),
        (9, UriErrorKind::NoTags)
    );
    assert_eq!(
        kind(decode_claim_uri("iotdisco:SN=1;;R=x")),
        (14, UriErrorKind::EmptyTag)
    );
    assert_eq!(
        kind(decode_claim_uri("iotdisco:SN=1;MAN")),
        (14, UriErrorKind::MissingOperator)
    );
    assert_eq!(
        kind(decode_claim_uri("iotdisco:SN=1;#V>=2")),
        (16, UriErrorKind::NotEquality(">=".into()))
    );
    assert_eq!(
        kind(decode_claim_uri("iotdisco:SN~*1")),
        (11, UriErrorKind::NotEquality("~*".into()))
    );
    assert!(matches!(
        kind(decode_claim_uri("iotdisco:#V=one")),
        (12, UriErrorKind::BadNumber(_))
    ));
    assert_eq!(
        kind(decode_claim_uri("iotdisco:SN=1\\")),
        (13, UriErrorKind::DanglingBackslash)
    );
    assert!(matches!(
        kind(decode_claim_uri("iotdisco:S%20N=1")),
        (9, UriErrorKind::BadName(_))
    ));
    assert_eq!(
        kind(decode_claim_uri("iotdisco:SN=1;#sn=2")),
        (15, UriErrorKind::DuplicateName("SN".into()))
    );
    assert_eq!(
        kind(decode_claim_uri("iotdisco:SN=1;R=")),
        (16, UriErrorKind::EmptyRegistry)
    );
    assert_eq!(
        kind(decode_claim_uri("iotdisco:SN~")),
        (11, UriErrorKind::MissingWildcard)
    );
}

// ---------------------------------------------------------------------------
// Search URIs

#[test]
fn issue_example_parses() {
    let ops = parse_search_uri("iotdisco:MAN=www.ktc.se;SN~*39487*;#V>=1;#V<2").unwrap();
    assert_eq!(
        ops,
        vec![
            Operator::StrEq(name("MAN"), "www.ktc.se".into()),
            Operator::StrMask(name("SN"), Mask::new("39487*", Some("*")).unwrap()),
            Operator::NumRange(
                name("V"),
                NumRange {
                    min: num(1.0),
                    min_included: true,
                    max: num(2.0),
                    max_included: false
                }
            ),
        ]
    );
    assert_eq!(
        format_search_uri(&ops),
        "iotdisco:MAN=www.ktc.se;SN~*39487*;#V>=1;#V<2"
    );
}

#[test]
fn interop_examples() {
    // `#V>=1.0;#V<2` -> numRange min 1 incl, max 2 excl.
    assert_eq!(
        parse_search_uri("iotdisco:#V>=1.0;#V<2").unwrap(),
        vec![Operator::NumRange(
            name("V"),
            NumRange {
                min: num(1.0),
                min_included: true,
                max: num(2.0),
                max_included: false
            }
        )]
    );
    // `#K>3;#K<2` -> numNRange 2..3 incl.
    assert_eq!(
        parse_search_uri("iotdisco:#K>3;#K<2").unwrap(),
        vec![Operator::NumNRange(
            name("K"),
            NumRange {
                min: num(2.0),
                min_included: true,
                max: num(3.0),
                max_included: true
            }
        )]
    );
    // `SN~*9873*` -> strMask value `9873*` wildcard `*`.
    assert_eq!(
        parse_search_uri("iotdisco:SN~*9873*").unwrap(),
        vec![Operator::StrMask(
            name("SN"),
            Mask::new("9873*", Some("*")).unwrap()
        )]
    );
    // `%3B` and `\;` both yield `;`; the scheme is case-insensitive.
    assert_eq!(
        parse_search_uri("IoTDisco:A=x%3B;B=x\\;").unwrap(),
        vec![
            Operator::StrEq(name("A"), "x;".into()),
            Operator::StrEq(name("B"), "x;".into()),
        ]
    );
    // R names the registry.
    let su =
        parse_search_uri_with_registry("iotdisco:MAN=www.ktc.se;R=discovery.example.org").unwrap();
    assert_eq!(
        su.operators,
        vec![Operator::StrEq(name("MAN"), "www.ktc.se".into())]
    );
    assert_eq!(su.registry.as_deref(), Some("discovery.example.org"));
}

#[test]
fn range_pair_rule() {
    let range = |lo: &str, hi: &str| parse_search_uri(&format!("iotdisco:S{lo};S{hi}")).unwrap();
    let sr = |min: &str, mi, max: &str, ma| StrRange {
        min: min.into(),
        min_included: mi,
        max: max.into(),
        max_included: ma,
    };
    // Upper bound not below the lower: inside, in either order.
    assert_eq!(
        range(">a", "<=c"),
        vec![Operator::StrRange(name("S"), sr("a", false, "c", true))]
    );
    assert_eq!(
        range("<c", ">=a"),
        vec![Operator::StrRange(name("S"), sr("a", true, "c", false))]
    );
    assert_eq!(
        range(">=b", "<=b"),
        vec![Operator::StrRange(name("S"), sr("b", true, "b", true))]
    );
    // Upper bound below the lower: outside; an endpoint is in the excluded
    // range exactly when its bound did not admit it.
    assert_eq!(
        range("<a", ">c"),
        vec![Operator::StrNRange(name("S"), sr("a", true, "c", true))]
    );
    assert_eq!(
        range(">=c", "<=a"),
        vec![Operator::StrNRange(name("S"), sr("a", false, "c", false))]
    );
    // The merged operator has the semantics of its two bounds (inside: AND,
    // outside: OR).
    for (lo, hi) in [(">", "<"), (">=", "<"), (">", "<="), (">=", "<=")] {
        for (l, h) in [(1.0, 3.0), (3.0, 1.0), (2.0, 2.0)] {
            let text = format!("iotdisco:#X{lo}{l};#X{hi}{h}");
            let ops = parse_search_uri(&text).unwrap();
            assert_eq!(ops.len(), 1, "{text}");
            for v in [0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0] {
                let a = if lo == ">" { v > l } else { v >= l };
                let b = if hi == "<" { v < h } else { v <= h };
                let want = if h < l { a || b } else { a && b };
                assert_eq!(ops[0].matches_num(num(v)), want, "{text} at {v}");
            }
        }
    }
    // Numeric names merge by name without '#'; a string and a numeric bound conflict.
    assert!(matches!(
        kind(parse_search_uri("iotdisco:#V>1;V<2")),
        (14, UriErrorKind::Conflict { first: 9, .. })
    ));
    // Two lower bounds, a third bound, or a second `=` conflict, as in the successor.
    assert!(matches!(
        kind(parse_search_uri("iotdisco:#V>1;#V>2")),
        (14, UriErrorKind::Conflict { .. })
    ));
    assert!(matches!(
        kind(parse_search_uri("iotdisco:#V>1;#V<5;#V<>3")),
        (19, UriErrorKind::Conflict { .. })
    ));
    assert!(matches!(
        kind(parse_search_uri("iotdisco:SN=1;sn=2")),
        (14, UriErrorKind::Conflict { .. })
    ));
    // Explicit items never merge and never conflict.
    assert_eq!(
        parse_search_uri("iotdisco:#V>1;#V:lt=5;#V<3;#V:neq=2").unwrap(),
        vec![
            Operator::NumRange(
                name("V"),
                NumRange {
                    min: num(1.0),
                    min_included: false,
                    max: num(3.0),
                    max_included: false
                }
            ),
            Operator::NumLt(name("V"), num(5.0)),
            Operator::NumNEq(name("V"), num(2.0)),
        ]
    );
}

/// Every one of the 17 operators, with the URI the formatter writes for it
/// alone on its tag, and its explicit form.
fn all_17() -> Vec<(Operator, &'static str, &'static str)> {
    let sr = |min: &str, mi, max: &str, ma| StrRange {
        min: min.into(),
        min_included: mi,
        max: max.into(),
        max_included: ma,
    };
    let nr = |min, mi, max, ma| NumRange {
        min: num(min),
        min_included: mi,
        max: num(max),
        max_included: ma,
    };
    vec![
        (
            Operator::StrEq(name("SN"), "a b".into()),
            "SN=a%20b",
            "SN:eq=a%20b",
        ),
        (
            Operator::StrNEq(name("SN"), "a".into()),
            "SN<>a",
            "SN:neq=a",
        ),
        (
            Operator::StrGt(name("SN"), "=a".into()),
            "SN>%3Da",
            "SN:gt=%3Da",
        ),
        (
            Operator::StrGtEq(name("SN"), "a".into()),
            "SN>=a",
            "SN:gteq=a",
        ),
        (
            Operator::StrLt(name("SN"), ">a".into()),
            "SN<%3Ea",
            "SN:lt=%3Ea",
        ),
        (
            Operator::StrLtEq(name("SN"), "a".into()),
            "SN<=a",
            "SN:lteq=a",
        ),
        (
            Operator::StrRange(name("SN"), sr("a", true, "b,", false)),
            "SN>=a;SN<b%2C",
            "SN:range=[a,b%2C)",
        ),
        (
            Operator::StrNRange(name("SN"), sr("a", false, "b", true)),
            "SN<=a;SN>b",
            "SN:nrange=(a,b]",
        ),
        (
            Operator::StrMask(name("SN"), Mask::new("*39487*", Some("*")).unwrap()),
            "SN~**39487*",
            "SN:mask=*39487*",
        ),
        (Operator::NumEq(name("V"), num(1.2)), "#V=1.2", "#V:eq=1.2"),
        (
            Operator::NumNEq(name("V"), num(-3.0)),
            "#V<>-3",
            "#V:neq=-3",
        ),
        (
            Operator::NumGt(name("V"), num(1e20)),
            "#V>1e20",
            "#V:gt=1e20",
        ),
        (
            Operator::NumGtEq(name("V"), num(0.5)),
            "#V>=0.5",
            "#V:gteq=0.5",
        ),
        (Operator::NumLt(name("V"), num(2.0)), "#V<2", "#V:lt=2"),
        (Operator::NumLtEq(name("V"), num(2.0)), "#V<=2", "#V:lteq=2"),
        (
            Operator::NumRange(name("V"), nr(1.0, true, 2.0, false)),
            "#V>=1;#V<2",
            "#V:range=[1,2)",
        ),
        (
            Operator::NumNRange(name("V"), nr(1.0, true, 2.0, true)),
            "#V<1;#V>2",
            "#V:nrange=[1,2]",
        ),
    ]
}

#[test]
fn every_operator_through_the_search_uri() {
    let all = all_17();
    let mut elements: Vec<&str> = all.iter().map(|(op, _, _)| op.element()).collect();
    elements.sort_unstable();
    elements.dedup();
    assert_eq!(elements.len(), 17);
    for (op, successor, explicit) in &all {
        let text = format_search_uri(std::slice::from_ref(op));
        assert_eq!(text, format!("iotdisco:{successor}"), "{}", op.element());
        assert_eq!(parse_search_uri(&text).unwrap(), vec![op.clone()], "{text}");
        assert_eq!(
            parse_search_uri(&format!("iotdisco:{explicit}")).unwrap(),
            vec![op.clone()],
            "{explicit}"
        );
        // The help names the operator.
        assert!(SEARCH_URI_HELP.contains(op.element()), "{}", op.element());
    }
    // All 17 in one URI: each tag then carries several, so all are explicit.
    let ops: Vec<Operator> = all.iter().map(|(op, _, _)| op.clone()).collect();
    let text = format_search_uri(&ops);
    let explicit: Vec<&str> = all.iter().map(|(_, _, e)| *e).collect();
    assert_eq!(text, format!("iotdisco:{}", explicit.join(";")));
    assert_eq!(parse_search_uri(&text).unwrap(), ops);
}

#[test]
fn forms_only_the_extension_can_write() {
    let cases = vec![
        (
            Operator::StrRange(
                name("S"),
                StrRange {
                    min: "b".into(),
                    min_included: true,
                    max: "a".into(),
                    max_included: true,
                },
            ),
            "iotdisco:S:range=[b,a]",
        ),
        (
            Operator::NumNRange(
                name("V"),
                NumRange {
                    min: num(2.0),
                    min_included: true,
                    max: num(2.0),
                    max_included: false,
                },
            ),
            "iotdisco:#V:nrange=[2,2)",
        ),
        (
            Operator::StrMask(name("S"), Mask::new("a?", None).unwrap()),
            "iotdisco:S:mask()=a%3F",
        ),
        (
            Operator::StrMask(name("S"), Mask::new("a%%b", Some("%%")).unwrap()),
            "iotdisco:S:mask(%25%25)=a%25%25b",
        ),
        (Operator::StrEq(name("R"), "x".into()), "iotdisco:R:eq=x"),
    ];
    for (op, text) in cases {
        assert_eq!(format_search_uri(std::slice::from_ref(&op)), text);
        assert_eq!(parse_search_uri(text).unwrap(), vec![op]);
    }
    // A single-character wildcard other than `*` keeps the successor's `~` form.
    let op = Operator::StrMask(name("S"), Mask::new("a?b;", Some("?")).unwrap());
    let text = format_search_uri(std::slice::from_ref(&op));
    assert_eq!(text, "iotdisco:S~?a?b%3B");
    assert_eq!(parse_search_uri(&text).unwrap(), vec![op]);
}

#[test]
fn search_uri_errors() {
    assert!(matches!(
        kind(parse_search_uri("iotdisc:SN=1")),
        (0, UriErrorKind::MissingPrefix(_))
    ));
    assert_eq!(parse_search_uri("iotdisco:").unwrap(), vec![]);
    assert_eq!(
        kind(parse_search_uri("iotdisco:;SN=1")),
        (9, UriErrorKind::EmptyTag)
    );
    assert_eq!(
        kind(parse_search_uri("iotdisco:SN")),
        (9, UriErrorKind::MissingOperator)
    );
    assert_eq!(
        kind(parse_search_uri("iotdisco:SN:eq")),
        (11, UriErrorKind::MissingOperator)
    );
    assert!(matches!(
        kind(parse_search_uri("iotdisco:#V>x")),
        (12, UriErrorKind::BadNumber(_))
    ));
    assert_eq!(
        kind(parse_search_uri("iotdisco:SN=\\")),
        (12, UriErrorKind::DanglingBackslash)
    );
    assert!(matches!(
        kind(parse_search_uri("iotdisco:=1")),
        (9, UriErrorKind::BadName(_))
    ));
    assert_eq!(
        kind(parse_search_uri("iotdisco:#SN~*1")),
        (12, UriErrorKind::NumericMask)
    );
    assert_eq!(
        kind(parse_search_uri("iotdisco:#SN:mask=1")),
        (12, UriErrorKind::NumericMask)
    );
    assert_eq!(
        kind(parse_search_uri("iotdisco:SN~")),
        (11, UriErrorKind::MissingWildcard)
    );
    assert_eq!(
        kind(parse_search_uri("iotdisco:SN:like=1")),
        (11, UriErrorKind::UnknownOperator("like".into()))
    );
    assert!(matches!(
        kind(parse_search_uri("iotdisco:SN:range=a,b")),
        (18, UriErrorKind::BadInterval(_))
    ));
    assert!(matches!(
        kind(parse_search_uri(&format!(
            "iotdisco:SN~*{}",
            "*".repeat(65)
        ))),
        (13, UriErrorKind::BadMask(_))
    ));
    assert!(matches!(
        kind(parse_search_uri(&format!(
            "iotdisco:SN={}",
            "x".repeat(129)
        ))),
        (12, UriErrorKind::BadValue(_))
    ));
    assert_eq!(
        kind(parse_search_uri("iotdisco:R=")),
        (11, UriErrorKind::EmptyRegistry)
    );
}

// ---------------------------------------------------------------------------
// Properties

/// Characters that stress every escape rule.
const TRICKY: &str = "[a-zA-Z0-9;\\\\:=%#<>~,()\\[\\]* é€😀]";

fn tag_name() -> impl Strategy<Value = String> {
    // Valid names (no ':', '#', white space), with characters that need escaping.
    "[A-Za-zé][A-Za-z0-9_;\\\\=%~<>.,()*-]{0,10}"
        .prop_filter("R names the registry", |n| !n.eq_ignore_ascii_case("R"))
}

fn value() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::string::string_regex(TRICKY).unwrap(), 0..12)
        .prop_map(|v| v.concat())
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_filter("finite", |x| x.is_finite()),
        (-1000i32..1000).prop_map(f64::from),
        Just(1.2),
    ]
}

fn tags() -> impl Strategy<Value = Vec<Tag>> {
    proptest::collection::vec(
        (
            tag_name(),
            prop_oneof![value().prop_map(Ok), number().prop_map(Err)],
        ),
        0..8,
    )
    .prop_map(|v| {
        let mut seen = std::collections::HashSet::new();
        v.into_iter()
            .filter_map(|(name, val)| {
                let tag = match val {
                    Ok(s) => Tag::str(&name, &s).ok()?,
                    Err(x) => Tag::num(&name, x).ok()?,
                };
                seen.insert(tag.name.clone()).then_some(tag)
            })
            .collect()
    })
}

fn operator() -> impl Strategy<Value = Operator> {
    let names = prop_oneof![Just("A"), Just("b"), Just("C;D"), Just("E~F"), Just("R")];
    (
        names,
        0usize..17,
        value(),
        value(),
        number(),
        number(),
        any::<(bool, bool)>(),
        prop_oneof![
            Just(None),
            Just(Some("*")),
            Just(Some("?")),
            Just(Some("%")),
            Just(Some(";")),
            Just(Some("\\")),
            Just(Some("%%")),
            Just(Some("é"))
        ],
    )
        .prop_map(|(nm, k, a, b, x, y, (mi, ma), w)| {
            let nm = name(nm);
            let (a, b): (Box<str>, Box<str>) = (a.into(), b.into());
            let (x, y) = (num(x), num(y));
            let sr = StrRange {
                min: a.clone(),
                min_included: mi,
                max: b.clone(),
                max_included: ma,
            };
            let nr = NumRange {
                min: x,
                min_included: mi,
                max: y,
                max_included: ma,
            };
            match k {
                0 => Operator::StrEq(nm, a),
                1 => Operator::StrNEq(nm, a),
                2 => Operator::StrGt(nm, a),
                3 => Operator::StrGtEq(nm, a),
                4 => Operator::StrLt(nm, a),
                5 => Operator::StrLtEq(nm, a),
                6 => Operator::StrRange(nm, sr),
                7 => Operator::StrNRange(nm, sr),
                8 => {
                    let mask = match w {
                        Some(w) => format!("{w}{a}{w}"),
                        None => a.to_string(),
                    };
                    Operator::StrMask(nm, Mask::new(&mask, w).unwrap())
                }
                9 => Operator::NumEq(nm, x),
                10 => Operator::NumNEq(nm, x),
                11 => Operator::NumGt(nm, x),
                12 => Operator::NumGtEq(nm, x),
                13 => Operator::NumLt(nm, x),
                14 => Operator::NumLtEq(nm, x),
                15 => Operator::NumRange(nm, nr),
                _ => Operator::NumNRange(nm, nr),
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoders_never_panic(text in any::<String>()) {
        let _ = decode_claim(&text);
        let _ = decode_claim_uri(&text);
        let _ = decode_any_claim(&text);
        let _ = parse_search_uri(&text);
    }

    #[test]
    fn decoders_never_panic_on_near_misses(
        body in "[a-zA-Z#:;=<>~\\\\%0-9A-F,()\\[\\]* é]{0,40}",
        head in prop_oneof![Just("IoTDisco;"), Just("iotdisco:"), Just("IoTDisco"), Just("")],
    ) {
        let text = format!("{head}{body}");
        for r in [decode_claim(&text).err(), decode_claim_uri(&text).err(),
                  decode_any_claim(&text).err(), parse_search_uri(&text).err()]
            .into_iter()
            .flatten()
        {
            // Positions point into the input.
            prop_assert!(r.position <= text.chars().count(), "{r} in {text:?}");
        }
    }

    #[test]
    fn claim_string_round_trips(tags in tags()) {
        let text = encode_claim(&tags);
        prop_assert_eq!(decode_claim(&text).unwrap(), tags.clone());
        prop_assert_eq!(decode_any_claim(&text).unwrap().tags, tags);
    }

    #[test]
    fn claim_uri_round_trips(tags in tags(), registry in proptest::option::of(value().prop_filter("non-empty", |r| !r.is_empty()))) {
        prop_assume!(!tags.is_empty() || registry.is_some());
        let text = encode_claim_uri(&tags, registry.as_deref());
        prop_assert!(text.is_ascii());
        let c = decode_claim_uri(&text).unwrap();
        prop_assert_eq!(&c.tags, &tags);
        prop_assert_eq!(&c.registry, &registry);
        prop_assert_eq!(decode_any_claim(&text).unwrap(), c);
    }

    #[test]
    fn search_uri_round_trips(ops in proptest::collection::vec(operator(), 0..6)) {
        let text = format_search_uri(&ops);
        prop_assert_eq!(parse_search_uri(&text).unwrap(), ops);
    }

    #[test]
    fn numeric_values_survive(x in number()) {
        let tags = vec![Tag::num("V", x).unwrap()];
        let back = decode_claim(&encode_claim(&tags)).unwrap();
        prop_assert_eq!(&back[0].value, &TagValue::Num(num(x)));
    }
}
