//! Duplicate suppression for re-delivered events.
//!
//! A Genesys Cloud CX event can reach bronze more than once:
//!
//! * the **same envelope** is re-delivered (EventBridge retries for up to
//!   24 h, Kafka producers retry, the connector replays): the envelope id
//!   repeats, so the event is a [`Verdict::DuplicateId`];
//! * the **same content** is re-published with a fresh envelope id: the id
//!   is new but the content fingerprint (topic + canonical `eventBody`, see
//!   [`crate::model::Event::content_fp`]) repeats, so the event is a
//!   [`Verdict::DuplicateContent`].
//!
//! [`Dedup`] keeps only 128-bit [`Fingerprint`]s — never payloads — in a
//! bounded TTL set: a hash map from fingerprint to insertion time plus a
//! queue of the same keys in insertion order.
//!
//! * **TTL** (default 24 h, the EventBridge retry horizon) counted from the
//!   moment a fingerprint was inserted. A duplicate does not refresh it. The
//!   TTL is measured on a monotonic clock ([`Instant`]); this is the only
//!   clock the operator reads, and it never drives a verdict other than
//!   "this fingerprint has expired". Expired keys are dropped from the front
//!   of the queue as operations go by.
//! * **Capacity** (`max_keys`, default 1 000 000 fingerprints): when a new
//!   key would exceed it, the *oldest-inserted* key is evicted (a brand-new
//!   fingerprint is always admitted: the most recent keys are the most likely
//!   to repeat). Every size-based eviction is counted ([`Dedup::evictions`]);
//!   TTL expiries are not. [`Dedup::entry_count`] never exceeds `max_keys`.
//! * **Memory**: about 24 bytes per key in the map and 24 in the queue, times
//!   the tables' growth slack (see `BENCHMARKS.md` for the measured RSS per
//!   key); no per-key allocation. This replaced a `moka` cache, which held
//!   the same keys at about 335 bytes of RSS each (its per-entry nodes,
//!   timer wheel and frequency sketch), over the 256-byte target of issue 4;
//!   this set needs neither admission policy nor per-entry expiry times.
//!
//! Envelope-id and content fingerprints share one key space. They hash
//! different inputs (the id string vs. topic + body), so a cross collision is
//! as unlikely as any other 128-bit collision.
//!
//! State is the set of live fingerprints and nothing else: a snapshot is
//! [`Dedup::iter_keys`], a restore is [`Dedup::insert_known`] for each key
//! (restored keys get a fresh TTL — erring on the side of remembering).
//!
//! Cost per [`Dedup::check`]: one uncontended lock, one or two hash-map
//! lookups and, for a new event, one or two inserts plus queue pushes
//! (amortised eviction and expiry included). No per-key allocation.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::model::Fingerprint;

/// Configuration values are clamped to this (effectively "forever").
const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Settings of the dedup operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupSettings {
    /// How long a fingerprint is remembered after it was first seen.
    pub ttl: Duration,
    /// Maximum number of fingerprints held (each event holds one or two).
    pub max_keys: u64,
}

impl Default for DedupSettings {
    fn default() -> Self {
        DedupSettings {
            ttl: Duration::from_secs(24 * 3600),
            max_keys: 1_000_000,
        }
    }
}

/// The outcome of [`Dedup::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Neither fingerprint was known: forward the event.
    New,
    /// The envelope id was already seen: a re-delivery of the same envelope.
    DuplicateId,
    /// The envelope id is new (or absent) but the content was already seen:
    /// a re-publish under a fresh id.
    DuplicateContent,
}

impl Verdict {
    /// True for both duplicate verdicts.
    pub fn is_duplicate(self) -> bool {
        !matches!(self, Verdict::New)
    }

    /// Stable lower-case label for metrics and logs.
    pub fn code(self) -> &'static str {
        match self {
            Verdict::New => "new",
            Verdict::DuplicateId => "duplicate_id",
            Verdict::DuplicateContent => "duplicate_content",
        }
    }
}

/// Hasher for fingerprint keys. Fingerprints are already uniformly
/// distributed 128-bit hashes, so SipHash over them buys nothing; the two
/// halves are mixed with a per-instance random seed (so bucket placement
/// differs between processes) and a multiply–xorshift finaliser.
#[derive(Clone)]
struct FpHashBuilder {
    seed: u64,
}

impl FpHashBuilder {
    fn new() -> Self {
        FpHashBuilder {
            seed: rand::random::<u64>() | 1,
        }
    }
}

impl BuildHasher for FpHashBuilder {
    type Hasher = FpHasher;
    fn build_hasher(&self) -> FpHasher {
        FpHasher { state: self.seed }
    }
}

struct FpHasher {
    state: u64,
}

impl FpHasher {
    #[inline]
    fn mix(&mut self, v: u64) {
        let x = (self.state ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.state = x ^ (x >> 29);
    }
}

impl Hasher for FpHasher {
    #[inline]
    fn finish(&self) -> u64 {
        let x = self.state.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^ (x >> 32)
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // Only reached for non-u128 keys (never, here); still correct.
        for chunk in bytes.chunks(8) {
            let mut buf = [0u8; 8];
            buf[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(buf));
        }
    }

    #[inline]
    fn write_u128(&mut self, v: u128) {
        self.mix(v as u64);
        self.mix((v >> 64) as u64);
    }
}

/// A fingerprint as two words (8-byte alignment keeps map and queue
/// entries at 24 bytes; `u128` would pad them to 32).
type Key = [u64; 2];

fn key(fp: Fingerprint) -> Key {
    [fp as u64, (fp >> 64) as u64]
}

fn fingerprint(k: &Key) -> Fingerprint {
    u128::from(k[0]) | (u128::from(k[1]) << 64)
}

/// Stale queue entries tolerated beyond twice the live keys before the
/// queue is compacted (small under test so the compaction is exercised).
const COMPACT_SLACK: usize = if cfg!(test) { 4 } else { 1024 };

/// The set itself: key → sequence number of its current queue entry, and
/// the keys in insertion order with the time (ms since `Dedup::epoch`) they
/// were inserted. Queue entry `i` has sequence number `base + i`. A queue
/// entry whose sequence number differs from the map's is stale (its key was
/// re-inserted later, or is gone) and is skipped.
///
/// Times in the queue never decrease (`now` is read under the lock and
/// clamped to `last_now`), and expiry drops entries from the front while
/// they are expired, so after [`Inner::expire`] every key in the map is
/// live: its current entry is at or behind the first unexpired one. A
/// lookup is then a plain `contains_key`, and `expire` touches the map only
/// for entries that actually expire.
struct Inner {
    map: HashMap<Key, u64, FpHashBuilder>,
    order: VecDeque<(Key, u64)>,
    /// Sequence number of `order.front()`.
    base: u64,
    /// Latest time seen (keeps queue times monotonic).
    last_now: u64,
    evictions: u64,
}

/// Per-partition duplicate filter over envelope-id and content fingerprints.
pub struct Dedup {
    inner: Mutex<Inner>,
    epoch: Instant,
    ttl_ms: u64,
    max_keys: usize,
}

impl std::fmt::Debug for Dedup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dedup")
            .field("entries", &self.entry_count())
            .field("evictions", &self.evictions())
            .finish()
    }
}

impl Inner {
    fn new() -> Inner {
        Inner {
            map: HashMap::with_hasher(FpHashBuilder::new()),
            order: VecDeque::new(),
            base: 0,
            last_now: 0,
            evictions: 0,
        }
    }

    /// Pops the queue front and removes its key from the map if the entry
    /// is the key's current one; true if a key was removed. One probe in
    /// the common case (a re-inserted key's stale entry costs a second one
    /// to put the key back).
    fn pop_front(&mut self) -> Option<bool> {
        let (k, _) = self.order.pop_front()?;
        let seq = self.base;
        self.base += 1;
        match self.map.remove(&k) {
            Some(s) if s == seq => Some(true),
            Some(s) => {
                self.map.insert(k, s); // stale entry of a re-inserted key
                Some(false)
            }
            None => Some(false),
        }
    }

    /// Monotonic `now`, then drops expired keys from the front of the
    /// queue. A front that has not expired needs no map probe.
    fn advance(&mut self, now: u64, ttl: u64) -> u64 {
        let now = now.max(self.last_now);
        self.last_now = now;
        while let Some(&(_, t)) = self.order.front() {
            if now.saturating_sub(t) < ttl {
                break;
            }
            self.pop_front();
        }
        now
    }

    /// True if the key is held (valid after [`Inner::advance`]).
    fn live(&self, k: &Key) -> bool {
        self.map.contains_key(k)
    }

    /// Inserts a key the map does not hold, or re-inserts one (fresh TTL,
    /// newest in eviction order), then evicts the oldest keys over
    /// `max_keys`.
    fn insert(&mut self, k: Key, now: u64, max_keys: usize) {
        let seq = self.base + self.order.len() as u64;
        self.map.insert(k, seq);
        self.push(k, now, max_keys);
    }

    /// Queues the key just put in the map with the next sequence number,
    /// evicts over capacity and keeps stale entries bounded.
    fn push(&mut self, k: Key, now: u64, max_keys: usize) {
        self.order.push_back((k, now));
        while self.map.len() > max_keys {
            match self.pop_front() {
                Some(true) => self.evictions += 1,
                Some(false) => {}
                None => break,
            }
        }
        // Re-inserts leave stale queue entries behind; keep them bounded.
        if self.order.len() > 2 * self.map.len() + COMPACT_SLACK {
            self.compact();
        }
    }

    /// Drops stale queue entries and renumbers the rest (order kept).
    fn compact(&mut self) {
        let map = &mut self.map;
        let base = self.base;
        let mut seq = base;
        let mut kept = base;
        self.order.retain(|(k, _)| {
            let current = map.get_mut(k).filter(|s| **s == seq);
            seq += 1;
            match current {
                Some(s) => {
                    *s = kept;
                    kept += 1;
                    true
                }
                None => false,
            }
        });
    }

    fn check(
        &mut self,
        content_fp: Fingerprint,
        id_fp: Option<Fingerprint>,
        now: u64,
        ttl: u64,
        max_keys: usize,
    ) -> Verdict {
        let now = self.advance(now, ttl);
        if let Some(id) = id_fp {
            if self.live(&key(id)) {
                return Verdict::DuplicateId;
            }
        }
        let c = key(content_fp);
        let seq = self.base + self.order.len() as u64;
        match self.map.entry(c) {
            Entry::Occupied(_) => return Verdict::DuplicateContent,
            Entry::Vacant(v) => {
                v.insert(seq);
            }
        }
        self.push(c, now, max_keys);
        if let Some(id) = id_fp {
            if id != content_fp {
                self.insert(key(id), now, max_keys);
            }
        }
        Verdict::New
    }

    fn insert_known(&mut self, fp: Fingerprint, now: u64, ttl: u64, max_keys: usize) {
        let now = self.advance(now, ttl);
        self.insert(key(fp), now, max_keys);
    }

    fn entry_count(&mut self, now: u64, ttl: u64) -> u64 {
        self.advance(now, ttl);
        self.map.len() as u64
    }

    fn contains(&mut self, fp: Fingerprint, now: u64, ttl: u64) -> bool {
        self.advance(now, ttl);
        self.live(&key(fp))
    }

    fn keys(&mut self, now: u64, ttl: u64) -> Vec<Fingerprint> {
        self.advance(now, ttl);
        self.map.keys().map(fingerprint).collect()
    }
}

impl Dedup {
    /// Creates an empty filter.
    pub fn new(settings: &DedupSettings) -> Dedup {
        let ttl = settings.ttl.min(MAX_TTL);
        Dedup {
            inner: Mutex::new(Inner::new()),
            epoch: Instant::now(),
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1),
            max_keys: usize::try_from(settings.max_keys).unwrap_or(usize::MAX),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state stays consistent at every step, so a panic elsewhere
        // while holding the lock leaves nothing half-done.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Read under the lock, so successive operations see a non-decreasing
    /// time.
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Classifies an event by its content fingerprint and (when the envelope
    /// had one) its envelope-id fingerprint. The id is checked first. On
    /// [`Verdict::New`] both fingerprints are inserted, so the next delivery
    /// of either is a duplicate; duplicates insert nothing and do not extend
    /// the TTL of what they matched.
    pub fn check(&self, content_fp: Fingerprint, id_fp: Option<Fingerprint>) -> Verdict {
        let mut g = self.lock();
        let now = self.now();
        g.check(content_fp, id_fp, now, self.ttl_ms, self.max_keys)
    }

    /// True if the fingerprint is known and not expired.
    pub fn contains(&self, fp: Fingerprint) -> bool {
        let mut g = self.lock();
        let now = self.now();
        g.contains(fp, now, self.ttl_ms)
    }

    /// Marks a fingerprint as seen without classifying anything (state
    /// restore). The fingerprint gets a full TTL from now.
    pub fn insert_known(&self, fp: Fingerprint) {
        let mut g = self.lock();
        let now = self.now();
        g.insert_known(fp, now, self.ttl_ms, self.max_keys);
    }

    /// Number of live fingerprints held (expired ones are dropped first).
    pub fn entry_count(&self) -> u64 {
        let mut g = self.lock();
        let now = self.now();
        g.entry_count(now, self.ttl_ms)
    }

    /// Fingerprints evicted because of the capacity bound (not TTL expiry)
    /// since this instance was created.
    pub fn evictions(&self) -> u64 {
        self.lock().evictions
    }

    /// The live fingerprints (a snapshot, in no particular order).
    pub fn iter_keys(&self) -> impl Iterator<Item = Fingerprint> + '_ {
        let mut g = self.lock();
        let now = self.now();
        g.keys(now, self.ttl_ms).into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn dedup(ttl: Duration, max_keys: u64) -> Dedup {
        Dedup::new(&DedupSettings { ttl, max_keys })
    }

    #[test]
    fn default_settings() {
        let s = DedupSettings::default();
        assert_eq!(s.ttl, Duration::from_secs(86_400));
        assert_eq!(s.max_keys, 1_000_000);
    }

    #[test]
    fn new_then_duplicate_by_id() {
        let d = Dedup::new(&DedupSettings::default());
        assert_eq!(d.check(1, Some(100)), Verdict::New);
        assert!(d.contains(1));
        assert!(d.contains(100));
        assert_eq!(d.check(1, Some(100)), Verdict::DuplicateId);
        // Same envelope id, different content (should not happen, but the id
        // wins): still a duplicate by id.
        assert_eq!(d.check(2, Some(100)), Verdict::DuplicateId);
        assert!(!d.contains(2), "duplicates insert nothing");
        assert_eq!(d.entry_count(), 2);
    }

    #[test]
    fn duplicate_by_content_under_a_new_id() {
        let d = Dedup::new(&DedupSettings::default());
        assert_eq!(d.check(7, Some(700)), Verdict::New);
        assert_eq!(d.check(7, Some(701)), Verdict::DuplicateContent);
        assert_eq!(d.check(7, None), Verdict::DuplicateContent);
        assert!(!d.contains(701));
        assert_eq!(d.check(8, None), Verdict::New);
        assert_eq!(d.check(8, None), Verdict::DuplicateContent);
        assert_eq!(d.check(9, Some(701)), Verdict::New);
        assert!(Verdict::DuplicateContent.is_duplicate());
        assert!(!Verdict::New.is_duplicate());
        assert_eq!(Verdict::DuplicateId.code(), "duplicate_id");
    }

    #[test]
    fn id_equal_to_content_fp_is_stored_once() {
        let d = Dedup::new(&DedupSettings::default());
        assert_eq!(d.check(5, Some(5)), Verdict::New);
        assert_eq!(d.entry_count(), 1);
        assert_eq!(d.check(5, Some(5)), Verdict::DuplicateId);
    }

    // The TTL tests drive `Inner` with explicit millisecond times (what
    // `Dedup` passes from its monotonic clock), so they cannot race a wall
    // clock on a loaded CI machine.

    #[test]
    fn fingerprints_expire_after_the_ttl() {
        let (ttl, max) = (100, 1_000);
        let mut d = Inner::new();
        assert_eq!(d.check(1, Some(2), 0, ttl, max), Verdict::New);
        assert_eq!(d.check(1, Some(2), 0, ttl, max), Verdict::DuplicateId);
        // Still live one millisecond before the TTL...
        assert!(d.contains(1, 99, ttl));
        assert!(d.contains(2, 99, ttl));
        assert_eq!(d.entry_count(99, ttl), 2);
        // ...expired exactly at it (age >= TTL).
        assert!(!d.contains(1, 100, ttl));
        assert!(!d.contains(2, 100, ttl));
        assert_eq!(d.entry_count(100, ttl), 0);
        assert_eq!(d.check(1, Some(2), 100, ttl, max), Verdict::New);
        assert_eq!(d.entry_count(100, ttl), 2);
        // Expiry is not a size eviction.
        assert_eq!(d.evictions, 0);
    }

    #[test]
    fn duplicates_do_not_refresh_the_ttl() {
        let (ttl, max) = (200, 1_000);
        let mut d = Inner::new();
        assert_eq!(d.check(1, None, 0, ttl, max), Verdict::New);
        assert_eq!(d.check(1, None, 120, ttl, max), Verdict::DuplicateContent);
        assert_eq!(d.check(1, None, 199, ttl, max), Verdict::DuplicateContent);
        // Had the duplicate at 120 refreshed it, 1 would live until 320.
        assert!(!d.contains(1, 200, ttl), "TTL counts from the first insert");
        assert_eq!(d.check(1, None, 240, ttl, max), Verdict::New);
    }

    #[test]
    fn time_never_runs_backwards() {
        // A `now` older than one already seen counts as the latest one, so
        // expiry cannot be undone.
        let (ttl, max) = (100, 1_000);
        let mut d = Inner::new();
        assert_eq!(d.check(1, None, 0, ttl, max), Verdict::New);
        assert!(!d.contains(1, 150, ttl));
        assert!(!d.contains(1, 50, ttl));
        assert_eq!(d.check(2, None, 50, ttl, max), Verdict::New);
        // 2 was inserted at 150 (the latest time), so it lives until 250.
        assert!(d.contains(2, 249, ttl));
        assert!(!d.contains(2, 250, ttl));
    }

    #[test]
    fn capacity_evictions_are_counted_oldest_first() {
        let d = dedup(Duration::from_secs(3600), 100);
        for fp in 0..300u128 {
            assert_eq!(d.check(fp, None), Verdict::New);
        }
        assert_eq!(d.entry_count(), 100);
        assert_eq!(d.evictions(), 200);
        // LRU by insertion: the newest keys survive, and every new key was
        // admitted.
        assert!(d.contains(299));
        assert!(d.contains(200));
        assert!(!d.contains(0));
        assert!(!d.contains(199));
    }

    #[test]
    fn insert_known_restores_state() {
        let d = Dedup::new(&DedupSettings::default());
        d.insert_known(42);
        d.insert_known(43);
        assert!(d.contains(42));
        assert_eq!(d.check(42, Some(1)), Verdict::DuplicateContent);
        assert_eq!(d.check(0, Some(43)), Verdict::DuplicateId);
        assert_eq!(d.entry_count(), 2);
    }

    #[test]
    fn snapshot_round_trip_through_iter_keys() {
        let a = Dedup::new(&DedupSettings::default());
        for i in 0..50u128 {
            a.check(i, Some(i + 1_000));
        }
        a.run_pending();
        let keys: HashSet<Fingerprint> = a.iter_keys().collect();
        assert_eq!(keys.len(), 100);
        let b = Dedup::new(&DedupSettings::default());
        for k in &keys {
            b.insert_known(*k);
        }
        assert_eq!(b.entry_count(), 100);
        for i in 0..50u128 {
            assert_eq!(b.check(i, Some(i + 1_000)), Verdict::DuplicateId);
            assert_eq!(b.check(i, Some(i + 5_000)), Verdict::DuplicateContent);
        }
    }

    #[test]
    fn huge_ttl_is_clamped_not_a_panic() {
        let d = dedup(Duration::MAX, 10);
        assert_eq!(d.check(1, None), Verdict::New);
        assert_eq!(d.check(1, None), Verdict::DuplicateContent);
    }

    impl Dedup {
        /// No deferred work in this implementation (kept for the tests'
        /// shape).
        fn run_pending(&self) {}
    }

    #[test]
    fn reinserted_expired_key_is_not_evicted_by_its_stale_entry() {
        let (ttl, max) = (50, 2);
        let mut d = Inner::new();
        d.insert_known(1, 0, ttl, max);
        d.insert_known(1, 80, ttl, max); // expired, re-inserted: fresh TTL
        d.insert_known(2, 80, ttl, max);
        assert!(d.contains(1, 80, ttl));
        assert!(d.contains(2, 80, ttl));
        assert_eq!(d.entry_count(80, ttl), 2);
        d.insert_known(3, 80, ttl, max); // evicts the oldest live key (1)
        assert!(!d.contains(1, 80, ttl));
        assert!(d.contains(2, 80, ttl));
        assert!(d.contains(3, 80, ttl));
        assert_eq!(d.evictions, 1);
    }

    #[test]
    fn reinserted_live_key_is_not_evicted_by_its_stale_entry() {
        // 1 is re-inserted while live (a restore over existing state): its
        // first queue entry is stale and must neither evict it nor count.
        let (ttl, max) = (1_000, 2);
        let mut d = Inner::new();
        d.insert_known(1, 0, ttl, max);
        d.insert_known(2, 1, ttl, max);
        d.insert_known(1, 2, ttl, max); // 1 is now the newest
        d.insert_known(3, 3, ttl, max); // evicts 2, the oldest live key
        assert!(d.contains(1, 3, ttl));
        assert!(!d.contains(2, 3, ttl));
        assert!(d.contains(3, 3, ttl));
        assert_eq!(d.evictions, 1);
        // 1's TTL counts from its re-insert at 2.
        assert!(d.contains(1, 1_001, ttl));
        assert!(!d.contains(1, 1_002, ttl));
    }

    /// The documented semantics, written plainly: the live keys in
    /// insertion order with their insertion times.
    struct Model {
        keys: VecDeque<(Fingerprint, u64)>,
        evictions: u64,
        ttl: u64,
        max: usize,
    }

    impl Model {
        fn prune(&mut self, now: u64) {
            let ttl = self.ttl;
            self.keys.retain(|&(_, t)| now.saturating_sub(t) < ttl);
        }
        fn live(&self, fp: Fingerprint) -> bool {
            self.keys.iter().any(|&(k, _)| k == fp)
        }
        fn insert(&mut self, fp: Fingerprint, now: u64) {
            self.keys.retain(|&(k, _)| k != fp);
            self.keys.push_back((fp, now));
            while self.keys.len() > self.max {
                self.keys.pop_front();
                self.evictions += 1;
            }
        }
        fn check(&mut self, c: Fingerprint, id: Option<Fingerprint>, now: u64) -> Verdict {
            self.prune(now);
            if id.is_some_and(|id| self.live(id)) {
                return Verdict::DuplicateId;
            }
            if self.live(c) {
                return Verdict::DuplicateContent;
            }
            self.insert(c, now);
            if let Some(id) = id.filter(|&id| id != c) {
                self.insert(id, now);
            }
            Verdict::New
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Advance(u64),
        Check(u8, Option<u8>),
        InsertKnown(u8),
        Contains(u8),
        EntryCount,
        Keys,
        Evictions,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            2 => (0u64..4).prop_map(Op::Advance),
            6 => (0u8..12, proptest::option::of(0u8..12)).prop_map(|(c, i)| Op::Check(c, i)),
            3 => (0u8..12).prop_map(Op::InsertKnown),
            2 => (0u8..12).prop_map(Op::Contains),
            1 => Just(Op::EntryCount),
            1 => Just(Op::Keys),
            1 => Just(Op::Evictions),
        ]
    }

    /// Runs `ops` on the implementation and the model; the clock only moves
    /// on `Advance`, so many operations share a millisecond.
    fn run_new(ttl: u64, max: usize, ops: &[Op]) -> Result<(), String> {
        let mut imp = Inner::new();
        let mut m = Model {
            keys: VecDeque::new(),
            evictions: 0,
            ttl,
            max,
        };
        let mut now = 0u64;
        for (i, op) in ops.iter().enumerate() {
            let fp = |x: u8| u128::from(x) * 0x1_0000_0000_0000_0001;
            let ok = match *op {
                Op::Advance(d) => {
                    now += d;
                    true
                }
                Op::Check(c, id) => {
                    imp.check(fp(c), id.map(fp), now, ttl, max) == m.check(fp(c), id.map(fp), now)
                }
                Op::InsertKnown(k) => {
                    imp.insert_known(fp(k), now, ttl, max);
                    m.prune(now);
                    m.insert(fp(k), now);
                    true
                }
                Op::Contains(k) => {
                    m.prune(now);
                    imp.contains(fp(k), now, ttl) == m.live(fp(k))
                }
                Op::EntryCount => {
                    m.prune(now);
                    imp.entry_count(now, ttl) == m.keys.len() as u64
                }
                Op::Keys => {
                    m.prune(now);
                    let a: HashSet<Fingerprint> = imp.keys(now, ttl).into_iter().collect();
                    let b: HashSet<Fingerprint> = m.keys.iter().map(|&(k, _)| k).collect();
                    a == b
                }
                Op::Evictions => imp.evictions == m.evictions,
            };
            if !ok {
                return Err(format!("diverged at op {i} ({op:?}), now {now}"));
            }
            if imp.map.len() > max || imp.evictions != m.evictions {
                return Err(format!("invariant broken after op {i} ({op:?})"));
            }
            if imp.order.len() > 2 * imp.map.len() + COMPACT_SLACK {
                return Err(format!("stale entries unbounded after op {i}"));
            }
        }
        Ok(())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// The implementation against the model, with a clock that often
        /// stands still (same-millisecond re-inserts) and small capacities
        /// (evictions, stale entries, compaction).
        #[test]
        fn matches_the_model(
            ttl in 1u64..8,
            max in 0usize..6,
            ops in proptest::collection::vec(op(), 0..200),
        ) {
            if let Err(e) = run_new(ttl, max, &ops) {
                proptest::prop_assert!(false, "{}", e);
            }
        }
    }

    /// Re-inserting a live key within the same millisecond makes it the
    /// newest key (the previous implementation, which tagged queue entries
    /// with the millisecond, kept its older position in that case).
    #[test]
    fn same_millisecond_reinsert_moves_the_key_to_the_back() {
        let mut d = Inner::new();
        d.insert_known(1, 0, 100, 2);
        d.insert_known(2, 0, 100, 2);
        d.insert_known(1, 0, 100, 2);
        d.insert_known(3, 0, 100, 2); // evicts 2, the oldest insert
        assert!(d.contains(1, 0, 100));
        assert!(!d.contains(2, 0, 100));
        assert!(d.contains(3, 0, 100));
        assert_eq!(d.evictions, 1);
    }
}
