//! Per-sender budgets on the host's clock: token buckets keyed by bare JID or
//! domain, in tables with a hard size bound.
//!
//! A [`Rate`] is a burst plus a sustained rate per hour. Each key's bucket
//! starts full (`burst` tokens) and refills continuously at `per_hour` tokens per
//! hour of the host's clock, never above `burst`; an event spends one token and
//! is refused when none is left. A rate with a burst of 0 is unlimited.
//!
//! [`Buckets`] bounds memory: at most `cap` keys. When a new key arrives at the
//! cap, every bucket that is full again (it carries no information: a fresh
//! bucket would be identical) is dropped first; if that frees less than an
//! eighth of the table, the least recently touched eighth goes too. Keys are
//! kept as seeded 64-bit hashes, never as copies of the JIDs. Eviction is
//! thus amortised O(1) per insertion, and forgetting a key can only ever make
//! its owner's budget look fuller than it was, for keys idle longest. The
//! tables are sharded by key hash so that threads serving different senders
//! rarely wait for one another.
//!
//! Invariants: `0 <= level <= burst * SCALE` for every bucket (`SCALE` units
//! per token); a table never
//! holds more than its cap (rounded up to the shard count) keys.

use std::hash::BuildHasher;

use hashbrown::HashMap;

use crate::sync::Mutex;

/// Fixed-point scale of a bucket level: one token is `SCALE` units, so a rate of
/// `per_hour` tokens per hour refills exactly `per_hour` units per millisecond
/// (no rounding, whatever the steps of the host's clock).
const SCALE: u64 = 3_600_000;
/// Shards per table.
const SHARDS: usize = 16;

/// A budget: a burst, then a sustained rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Events allowed at once from a full bucket (0: unlimited).
    pub burst: u32,
    /// Events per hour the bucket refills by.
    pub per_hour: u32,
}

impl Rate {
    /// A rate of `burst` at once, then `per_hour`.
    pub const fn new(burst: u32, per_hour: u32) -> Rate {
        Rate { burst, per_hour }
    }

    /// No limit.
    pub const UNLIMITED: Rate = Rate::new(0, 0);

    /// Whether this rate limits anything.
    pub fn is_limited(&self) -> bool {
        self.burst > 0
    }

    fn full(&self) -> u64 {
        u64::from(self.burst) * SCALE
    }

    /// Units regained in `ms`.
    fn refill(&self, ms: u64) -> u64 {
        ms.saturating_mul(u64::from(self.per_hour))
    }

    /// Milliseconds until one token is back, from `level`.
    fn wait_ms(&self, level: u64) -> u64 {
        if level >= SCALE {
            return 0;
        }
        if self.per_hour == 0 {
            return u64::MAX;
        }
        (SCALE - level).div_ceil(u64::from(self.per_hour))
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: u64,
    last_ms: u64,
}

impl Bucket {
    /// Brings the level up to `now_ms` (a clock that went back adds nothing).
    fn refresh(&mut self, rate: &Rate, now_ms: u64) {
        if now_ms > self.last_ms {
            let gained = rate.refill(now_ms - self.last_ms);
            self.level = self.level.saturating_add(gained).min(rate.full());
            self.last_ms = now_ms;
        }
    }
}

/// Keys are stored as their 64-bit hash under the table's random seed (a
/// hashed key is already well mixed: the map hashes it no further). No string
/// is copied or compared, so a lookup is one probe; two keys sharing a hash
/// would share a budget, which at 64 bits and a seed nobody outside the
/// process knows is not something a sender can arrange.
type KeyMap = HashMap<u64, Bucket, std::hash::BuildHasherDefault<PassThrough>>;

/// A `Hasher` for keys that are hashes already.
#[derive(Default)]
struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else in anyway.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[derive(Debug, Default)]
struct Shard {
    map: KeyMap,
}

/// Token buckets by key, bounded (see the module documentation).
#[derive(Debug)]
pub struct Buckets {
    rate: Rate,
    shard_cap: usize,
    shards: Vec<Mutex<Shard>>,
    hasher: hashbrown::DefaultHashBuilder,
}

/// The answer to [`Buckets::check`] and [`Buckets::spend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within budget (for `spend`: one token was taken).
    Allowed,
    /// Over budget; a token is back in this many milliseconds.
    Refused {
        /// Milliseconds until the key has a token again.
        retry_ms: u64,
    },
}

impl Buckets {
    /// A table for `rate` holding at most about `cap` keys.
    pub fn new(rate: Rate, cap: usize) -> Buckets {
        Buckets {
            rate,
            shard_cap: cap.div_ceil(SHARDS).max(1),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: Default::default(),
        }
    }

    /// The rate of this table.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// The key's hash and its shard (chosen by the hash's top bits, which the
    /// map's own bucket choice does not use).
    fn shard(&self, key: &str) -> (u64, &Mutex<Shard>) {
        let h = self.hasher.hash_one(key);
        (h, &self.shards[(h >> 58) as usize % SHARDS])
    }

    /// Whether `key` has a token at `now_ms`, without spending it.
    pub fn check(&self, key: &str, now_ms: u64) -> Verdict {
        if !self.rate.is_limited() {
            return Verdict::Allowed;
        }
        let (h, shard) = self.shard(key);
        let mut s = shard.lock();
        match s.map.get_mut(&h) {
            None => Verdict::Allowed,
            Some(b) => {
                b.refresh(&self.rate, now_ms);
                if b.level >= SCALE {
                    Verdict::Allowed
                } else {
                    Verdict::Refused {
                        retry_ms: self.rate.wait_ms(b.level),
                    }
                }
            }
        }
    }

    /// Spends one token of `key` at `now_ms` if it has one.
    pub fn spend(&self, key: &str, now_ms: u64) -> Verdict {
        if !self.rate.is_limited() {
            return Verdict::Allowed;
        }
        let rate = self.rate;
        let (h, shard) = self.shard(key);
        let mut s = shard.lock();
        if let Some(b) = s.map.get_mut(&h) {
            b.refresh(&rate, now_ms);
            if b.level < SCALE {
                return Verdict::Refused {
                    retry_ms: rate.wait_ms(b.level),
                };
            }
            b.level -= SCALE;
            return Verdict::Allowed;
        }
        if s.map.len() >= self.shard_cap {
            evict(&mut s.map, &rate, now_ms, self.shard_cap);
        }
        s.map.insert(
            h,
            Bucket {
                level: rate.full() - SCALE,
                last_ms: now_ms,
            },
        );
        Verdict::Allowed
    }

    /// Keys held (for accounting and tests).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map.len()).sum()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held, approximately (entries, keys, table slack).
    pub fn heap_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock();
                s.map.capacity() * (std::mem::size_of::<(u64, Bucket)>() + 1)
            })
            .sum()
    }
}

/// Makes room in a full shard: drops refilled buckets, then if needed the
/// least recently touched eighth.
fn evict(map: &mut KeyMap, rate: &Rate, now_ms: u64, cap: usize) {
    // Without refreshing: `last_ms` must keep saying when a key was last seen.
    map.retain(|_, b| {
        let gained = rate.refill(now_ms.saturating_sub(b.last_ms));
        b.level.saturating_add(gained) < rate.full()
    });
    let target = cap - cap.div_ceil(8);
    if map.len() > target {
        let mut ages: Vec<u64> = map.values().map(|b| b.last_ms).collect();
        let k = map.len() - target;
        let (_, cut, _) = ages.select_nth_unstable(k - 1);
        let cut = *cut;
        let mut dropped = 0;
        map.retain(|_, b| {
            if dropped < k && b.last_ms <= cut {
                dropped += 1;
                false
            } else {
                true
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill_on_the_host_clock() {
        let t = Buckets::new(Rate::new(3, 3600), 100);
        for _ in 0..3 {
            assert_eq!(t.spend("a@x", 0), Verdict::Allowed);
        }
        assert_eq!(t.spend("a@x", 0), Verdict::Refused { retry_ms: 1000 });
        assert_eq!(t.check("a@x", 999), Verdict::Refused { retry_ms: 1 });
        assert_eq!(t.check("a@x", 1000), Verdict::Allowed);
        assert_eq!(t.spend("a@x", 1000), Verdict::Allowed);
        assert!(matches!(t.spend("a@x", 1000), Verdict::Refused { .. }));
        // Other keys are untouched.
        assert_eq!(t.spend("b@x", 1000), Verdict::Allowed);
        // Refill stops at the burst.
        assert_eq!(t.check("a@x", u64::MAX / 2), Verdict::Allowed);
        for _ in 0..3 {
            assert_eq!(t.spend("a@x", u64::MAX / 2), Verdict::Allowed);
        }
        assert!(matches!(
            t.spend("a@x", u64::MAX / 2),
            Verdict::Refused { .. }
        ));
        // A clock that goes back adds nothing and breaks nothing.
        assert!(matches!(t.spend("a@x", 5), Verdict::Refused { .. }));
    }

    #[test]
    fn unlimited_and_no_refill() {
        let t = Buckets::new(Rate::UNLIMITED, 1);
        for _ in 0..1000 {
            assert_eq!(t.spend("a@x", 0), Verdict::Allowed);
        }
        assert!(t.is_empty());
        let t = Buckets::new(Rate::new(1, 0), 10);
        assert_eq!(t.spend("a@x", 0), Verdict::Allowed);
        assert_eq!(
            t.spend("a@x", u64::MAX),
            Verdict::Refused { retry_ms: u64::MAX }
        );
    }

    #[test]
    fn the_table_stays_bounded_and_keeps_the_busiest() {
        // Each table has its own hash seed: try many shard layouts (eviction
        // once refreshed every bucket's clock, so the busiest key could go).
        for _ in 0..60 {
            busiest_survives();
        }
    }

    fn busiest_survives() {
        let cap = 160;
        let t = Buckets::new(Rate::new(2, 1), cap);
        // One key is drained and stays drained.
        t.spend("hot@x", 0);
        t.spend("hot@x", 0);
        for i in 0..10_000u64 {
            t.spend(&format!("k{i}@x"), i);
            t.spend("hot@x", i);
            assert!(t.len() <= cap + SHARDS, "{}", t.len());
        }
        assert!(matches!(t.check("hot@x", 10_000), Verdict::Refused { .. }));
        assert!(t.heap_bytes() > 0);
    }

    #[test]
    fn refilled_buckets_go_first() {
        let t = Buckets::new(Rate::new(1, 3600), SHARDS);
        t.spend("a@x", 0);
        // One hour later every bucket is full again: all are dropped rather
        // than any busy one.
        for i in 0..100u64 {
            t.spend(&format!("k{i}@x"), 3_600_000 + i * 3_600_000);
        }
        assert!(t.len() <= 2 * SHARDS);
    }
}
