//! `Registry::claim_batch` against the same claims made one by one: same
//! outcomes in order, same records, same searches, consistent indexes, both
//! below and above the size from which the batch rebuilds the postings once.

use iotdisco::datagen::{self, GenThing};
use iotdisco::registry::CLAIM_BATCH_REBUILD;
use iotdisco::{Claim, Config, Jid, Registry, Tag};

/// A population registered (not claimed), and claim requests for it: most
/// things claimed by their owner (every 7th private), plus claims that fail in
/// every way a claim can (unknown tags, a thing claimed twice by two owners,
/// two things with the same tags).
fn scenario(n: u64) -> (Vec<GenThing>, Vec<(Jid, Claim)>) {
    let pop: Vec<GenThing> = datagen::population(3, n).collect();
    let mut claims = Vec::new();
    for (i, g) in pop.iter().enumerate() {
        claims.push((
            Jid::from(g.owner.clone()),
            Claim {
                tags: g.tags.clone(),
                public: i % 7 != 0,
            },
        ));
        if i % 101 == 0 {
            // Another owner tries the same thing: item-not-found.
            claims.push((
                Jid::parse("intruder@example.org/x").unwrap(),
                Claim {
                    tags: g.tags.clone(),
                    public: true,
                },
            ));
        }
        if i % 97 == 0 {
            // The same owner again: idempotent success.
            claims.push((
                Jid::from(g.owner.clone()),
                Claim {
                    tags: g.tags.clone(),
                    public: i % 7 != 0,
                },
            ));
        }
    }
    claims.push((
        Jid::parse("o@example.org/x").unwrap(),
        Claim {
            tags: vec![Tag::str("NOSUCHTAG", "1").unwrap()],
            public: true,
        },
    ));
    (pop, claims)
}

fn registered(pop: &[GenThing]) -> Registry {
    let reg = Registry::new(Config::default());
    for o in reg.register_batch(pop.iter().map(datagen::register_request).collect()) {
        o.unwrap();
    }
    // Two more things sharing one tag set: any claim of it is ambiguous.
    for j in ["twin1@example.org/a", "twin2@example.org/a"] {
        reg.register(
            &Jid::parse(j).unwrap(),
            iotdisco::Register {
                node: Default::default(),
                tags: vec![Tag::str("SN", "twin").unwrap()],
                self_owned: false,
            },
        )
        .unwrap();
    }
    reg
}

fn same_as_one_by_one(n: u64) {
    let (pop, mut claims) = scenario(n);
    claims.push((
        Jid::parse("o@example.org/x").unwrap(),
        Claim {
            tags: vec![Tag::str("SN", "twin").unwrap()],
            public: true,
        },
    ));
    let single = registered(&pop);
    let batch = registered(&pop);
    let one_by_one: Vec<_> = claims
        .iter()
        .map(|(from, c)| single.claim(from, c.clone()))
        .collect();
    let batched = batch.claim_batch(claims.clone());
    assert_eq!(batched, one_by_one, "outcomes differ");
    assert!(batched.iter().any(|o| o.is_err()) && batched.iter().any(|o| o.is_ok()));
    batch.check_consistency().unwrap();
    single.check_consistency().unwrap();
    // Claim digests are salted at random: compare whether each thing has one.
    let strip = |r: &Registry| -> Vec<_> {
        r.export()
            .into_iter()
            .map(|mut t| (t.claim_digest.take().is_some(), t))
            .collect()
    };
    assert_eq!(strip(&batch), strip(&single), "records differ");
    for (name, q) in datagen::standard_queries() {
        assert_eq!(
            batch.search(&q).unwrap(),
            single.search(&q).unwrap(),
            "{name}"
        );
    }
    // Everything but the index's heap estimate (a bulk-built B-tree is fuller).
    let (b, s) = (batch.stats(), single.stats());
    assert_eq!(
        (b.things, b.searchable, b.tag_names, b.pending_disowns,),
        (s.things, s.searchable, s.tag_names, s.pending_disowns,)
    );
    // Record bytes include hash-table capacities, which depend on the per-process
    // random hash seeds once claims rewrite fingerprints (KEY deleted): equal
    // within the tables' share.
    let (rb, rs) = (b.record_bytes as f64, s.record_bytes as f64);
    assert!((rb - rs).abs() <= 0.05 * rs, "record bytes {rb} vs {rs}");
    // Later single operations see a normal registry.
    let g = &pop[1];
    let ops = |reg: &Registry| {
        reg.remove(
            &Jid::from(g.owner.clone()),
            &iotdisco::ThingKey::of(g.jid.bare().clone()),
        )
        .map(|_| ())
    };
    assert_eq!(ops(&batch), ops(&single));
    batch.check_consistency().unwrap();
}

#[test]
fn a_small_batch_equals_claims_one_by_one() {
    same_as_one_by_one(300);
}

#[test]
fn a_batch_that_rebuilds_the_postings_equals_claims_one_by_one() {
    same_as_one_by_one(CLAIM_BATCH_REBUILD as u64 + 500);
}
