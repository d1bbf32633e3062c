//! Event-time reordering with a watermark.
//!
//! Silver must hold each interaction's events in non-decreasing event time,
//! but bronze delivers them in arrival order, which is not event order
//! (retries, several producers, the repartition hop). [`Reorder`] holds
//! events briefly and releases them sorted. One instance serves one input partition and is driven from a
//! single thread; it never reads the wall clock — processing time is the
//! `now` the caller passes in.
//!
//! # Semantics
//!
//! * **Watermark.** `W = max event time pushed − allowed_lateness`
//!   ([`Reorder::watermark_ms`]); it never goes back. The maximum is guarded
//!   ([`crate::operators::progress`]): an event more than a minute ahead
//!   moves it only once a quorum of such events agrees. Buffered events with
//!   `event_time ≤ W` are released as [`Release::InOrder`], sorted by
//!   `(event_time, rank, arrival order)` across all interactions (`rank` puts
//!   starts before updates before ends at equal times, see
//!   [`crate::model::EventKind::rank`]). Everything still buffered is
//!   therefore newer than `W`.
//! * **Last emitted.** Per interaction the operator remembers the greatest
//!   event time it has released (`last_emitted`). Every release path takes
//!   an interaction's buffered events smallest first, and nothing older than
//!   `last_emitted` is ever released in order, so the `InOrder` releases of
//!   each interaction are non-decreasing in event time.
//! * **Late events.** An arriving event older than its interaction's
//!   `last_emitted` (strictly; an equal time is fine) cannot be placed any
//!   more: it is returned at once as [`Release::Late`] with
//!   [`LateReason::OlderThanEmitted`], never buffered and never dropped. An
//!   event older than `W − state_retention` is late with
//!   [`LateReason::BeyondRetention`] (its interaction's state may already be
//!   forgotten, see below). Late events do not move the watermark.
//! * **Old but not late.** An event at or below `W` that is not older than
//!   its interaction's `last_emitted` (typically the first event of an
//!   interaction that arrives late) is released in order immediately: all
//!   buffered events are newer than `W`, so nothing it should follow is
//!   still waiting. (Across interactions it may then come after newer events
//!   of other interactions; silver ordering is per interaction.)
//! * **Ended interactions.** When an event that ends its interaction
//!   (`customer.end`) is buffered, a deadline of `allowed_lateness` of
//!   *processing* time from its arrival is set (the first pending one wins).
//!   At that deadline [`Reorder::tick`] releases all of that interaction's
//!   buffered events in order, without waiting for the watermark
//!   (`stats.ended_releases` counts the events released this way). If the
//!   interaction's buffer empties first, the deadline is dropped.
//! * **Idle partitions.** When no event has been pushed (late ones included)
//!   for `idle_timeout` of processing time, [`Reorder::tick`] releases
//!   everything buffered (`stats.idle_flushes` counts such flushes), so a
//!   quiet partition never stalls. The watermark itself does not move.
//!   With an upstream watermark set (see below), an idle partition instead
//!   moves its watermark to `upstream − allowed_lateness`.
//! * **Upstream watermark.** A partition also fed through a shuffle (the
//!   repartition topic) gets the lowest progress of the partitions feeding
//!   it ([`Reorder::set_upstream_watermark`]); its watermark is then
//!   `min(max event time pushed, upstream) − allowed_lateness`, and an ended
//!   interaction is released early only once `upstream` has reached its end
//!   event by the allowed lateness, so events still travelling from a
//!   slower partition, or out of order on a partition catching up after a
//!   backlog, are not declared late.
//! * **Bounded buffer.** At most `max_buffered` events are held; beyond that
//!   the oldest (in release order) are released early
//!   (`stats.forced_releases` counts the events).
//! * **Bounded state.** Per-interaction state with nothing buffered and
//!   `last_emitted < W − state_retention` is forgotten by an incremental
//!   sweep (a few slots per push and per tick, never a full scan). This is
//!   safe: an event that would need that forgotten state is older than
//!   `last_emitted < W − state_retention`, hence late by the retention rule
//!   anyway, so no interaction's silver order can break.
//! * **Conservation.** Every pushed item comes out exactly once, as
//!   `InOrder` or `Late`: `stats.released + stats.late` equals the number of
//!   pushes once [`Reorder::flush`] has run. `flush` (shutdown, partition
//!   revoke) releases everything buffered, in order.
//!
//! Early releases (ended, idle, forced, flush) raise `last_emitted` beyond
//! the watermark, so a straggler arriving afterwards can be late even though
//! it is within the allowed lateness; that is the price of not stalling.
//!
//! # State
//!
//! Plain data, for snapshots: the ordered buffer (a `BTreeMap` keyed by
//! `(event_time, rank, seq)` whose values are small slab indices), a slab
//! holding the buffered items themselves (so B-tree node shifts never move
//! large events), a slab of per-interaction states with interned ids
//! (`Arc<str>`, one allocation per interaction, not per event; slots are
//! reused), each with the keys of its buffered items (lazily pruned), a
//! min-heap of end deadlines and the watermark. Only the per-interaction
//! `last_emitted` values need to survive a restart — buffered items have not
//! been committed and will be read again — see [`Reorder::emitted_state`]
//! and [`Reorder::restore_emitted`].
//!
//! # Cost
//!
//! A push is one hash lookup of the interaction id plus one B-tree insert,
//! and one B-tree removal when the item is released: O(log n), n = buffered
//! items. An ended release sorts that interaction's keys (O(k log k)); a
//! per-interaction key list is compacted when more than half of it is stale
//! (amortised O(log n) per push). `tick` is O(1) when nothing is due. No
//! per-event heap allocation in steady state: slabs and key lists reuse
//! their capacity (B-tree nodes churn amortised, about one per node's worth
//! of items).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::Event;
use crate::operators::progress::{Progress, ProgressSettings};

/// What the reorder operator needs to know about an item.
pub trait Timed {
    /// Event time, epoch milliseconds.
    fn event_time_ms(&self) -> i64;
    /// The interaction (conversation) the item belongs to.
    fn interaction_id(&self) -> &str;
    /// Tie-break among equal event times (lower first).
    fn rank(&self) -> u8;
    /// True for the event that closes its interaction.
    fn ends_interaction(&self) -> bool;
}

impl Timed for Event {
    fn event_time_ms(&self) -> i64 {
        self.event_time_ms
    }
    fn interaction_id(&self) -> &str {
        &self.interaction_id
    }
    fn rank(&self) -> u8 {
        self.kind.rank()
    }
    fn ends_interaction(&self) -> bool {
        self.kind.ends_interaction()
    }
}

/// Lets the runtime buffer boxed events (`Reorder<Box<Event>>`), which
/// makes every move of a buffered item a pointer copy.
impl<T: Timed + ?Sized> Timed for Box<T> {
    fn event_time_ms(&self) -> i64 {
        (**self).event_time_ms()
    }
    fn interaction_id(&self) -> &str {
        (**self).interaction_id()
    }
    fn rank(&self) -> u8 {
        (**self).rank()
    }
    fn ends_interaction(&self) -> bool {
        (**self).ends_interaction()
    }
}

/// Settings of the reorder operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReorderSettings {
    /// How far behind the newest event time an event may arrive and still be
    /// put in order (event time); also the processing-time grace period
    /// after an interaction's ending event.
    pub allowed_lateness: Duration,
    /// Processing time without any push after which everything buffered is
    /// released.
    pub idle_timeout: Duration,
    /// Maximum events buffered per partition.
    pub max_buffered: usize,
    /// How long (event time, behind the watermark) per-interaction
    /// "last emitted" state is kept.
    pub state_retention: Duration,
    /// How the greatest event time resists a few records with a wrong clock
    /// (see [`crate::operators::progress`]).
    pub progress: ProgressSettings,
}

impl Default for ReorderSettings {
    fn default() -> Self {
        ReorderSettings {
            allowed_lateness: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(2),
            max_buffered: 100_000,
            state_retention: Duration::from_secs(3600),
            progress: ProgressSettings::default(),
        }
    }
}

/// Why an item was released as [`Release::Late`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LateReason {
    /// Its interaction already released a strictly greater event time.
    OlderThanEmitted,
    /// Older than `watermark − state_retention`.
    BeyondRetention,
}

impl LateReason {
    /// Stable label for metrics, logs and dead-letter headers.
    pub fn code(self) -> &'static str {
        match self {
            LateReason::OlderThanEmitted => "older_than_emitted",
            LateReason::BeyondRetention => "beyond_retention",
        }
    }
}

/// An item leaving the operator.
#[derive(Debug, Clone, PartialEq)]
pub enum Release<T> {
    /// In order for its interaction.
    InOrder(T),
    /// Could not be put in order; returned at arrival.
    Late {
        item: T,
        reason: LateReason,
        /// The watermark when it arrived (`i64::MIN` if there was none yet).
        watermark_ms: i64,
        /// Its interaction's greatest released event time, if known.
        last_emitted_ms: Option<i64>,
    },
}

impl<T> Release<T> {
    /// The item, whatever the outcome.
    pub fn item(&self) -> &T {
        match self {
            Release::InOrder(item) | Release::Late { item, .. } => item,
        }
    }

    /// Takes the item out.
    pub fn into_item(self) -> T {
        match self {
            Release::InOrder(item) | Release::Late { item, .. } => item,
        }
    }

    /// True for [`Release::Late`].
    pub fn is_late(&self) -> bool {
        matches!(self, Release::Late { .. })
    }
}

/// Counters since creation.
#[derive(Default, Clone, Debug)]
pub struct ReorderStats {
    /// Events released early because the buffer was full.
    pub forced_releases: u64,
    /// Idle flushes performed (each releases everything buffered).
    pub idle_flushes: u64,
    /// Events released early because their interaction had ended.
    pub ended_releases: u64,
    /// Items returned as [`Release::Late`].
    pub late: u64,
    /// Items returned as [`Release::InOrder`] (all paths).
    pub released: u64,
}

/// Bits of [`Key::1`] holding the arrival sequence; the top 8 hold the rank.
const SEQ_BITS: u32 = 56;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;
/// Slab slots examined by the retention sweep per push / per tick.
const SWEEP_PER_PUSH: usize = 2;
const SWEEP_PER_TICK: usize = 64;
/// A per-interaction key list is compacted when it holds more than
/// `2 × buffered + KEYS_SLACK` keys.
const KEYS_SLACK: usize = 16;
/// Key-list capacity kept when an interaction's buffer empties.
const KEYS_KEEP: usize = 64;

/// Release order: event time, then `rank << 56 | arrival seq`. Unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key(i64, u64);

impl Key {
    fn time(self) -> i64 {
        self.0
    }
}

/// What the ordered buffer holds: where the item and its interaction live.
#[derive(Debug, Clone, Copy)]
struct Ref {
    item: usize,
    slot: usize,
}

/// Hasher for interaction ids (UUID strings): a keyed folded-multiply hash
/// (the construction of `foldhash`, hashbrown's default), several times
/// cheaper than SipHash on 36-byte strings. The keys are random per
/// instance, so colliding ids cannot be precomputed.
#[derive(Clone)]
struct IdHashBuilder {
    k0: u64,
    k1: u64,
}

impl std::fmt::Debug for IdHashBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdHashBuilder { .. }")
    }
}

impl IdHashBuilder {
    fn new() -> Self {
        IdHashBuilder {
            k0: rand::random::<u64>(),
            k1: rand::random::<u64>(),
        }
    }
}

impl BuildHasher for IdHashBuilder {
    type Hasher = IdHasher;
    fn build_hasher(&self) -> IdHasher {
        IdHasher {
            acc: self.k0,
            k0: self.k0,
            k1: self.k1,
        }
    }
}

struct IdHasher {
    acc: u64,
    k0: u64,
    k1: u64,
}

#[inline]
fn folded_multiply(x: u64, y: u64) -> u64 {
    let full = u128::from(x) * u128::from(y);
    (full as u64) ^ ((full >> 64) as u64)
}

/// Reads up to 8 bytes little-endian, zero-padded.
#[inline]
fn read_u64(bytes: &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let n = bytes.len().min(8);
    buf[..n].copy_from_slice(&bytes[..n]);
    u64::from_le_bytes(buf)
}

impl Hasher for IdHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        // The length goes in first, so zero padding cannot alias.
        let mut acc = folded_multiply(self.acc ^ bytes.len() as u64, self.k1 | 1);
        let mut chunks = bytes.chunks_exact(16);
        for c in &mut chunks {
            let (a, b) = c.split_at(8);
            acc = folded_multiply(read_u64(a) ^ self.k0 ^ acc, read_u64(b) ^ self.k1);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let (a, b) = rest.split_at(rest.len().min(8));
            acc = folded_multiply(read_u64(a) ^ self.k0 ^ acc, read_u64(b) ^ self.k1);
        }
        self.acc = acc;
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.acc = folded_multiply(self.acc ^ u64::from(i) ^ self.k1, self.k0 | 1);
    }

    #[inline]
    fn finish(&self) -> u64 {
        folded_multiply(self.acc, self.k0 ^ 0x9E37_79B9_7F4A_7C15)
    }
}

/// Per-interaction state, in a slab slot (reused after eviction).
#[derive(Debug, Default)]
struct Slot {
    /// Interned interaction id; `None` for a free slot.
    id: Option<Arc<str>>,
    last_emitted: Option<i64>,
    /// Number of this interaction's items in the buffer.
    buffered: usize,
    /// Pending ended-release deadline (processing time).
    end_deadline: Option<Instant>,
    /// Event time of the buffered ending event (for the upstream check).
    end_time: i64,
    /// Keys of this interaction's buffered items, plus (lazily deleted)
    /// keys already released: a superset, cleared when `buffered` drops to
    /// 0 and compacted when it grows past twice the live count.
    keys: Vec<Key>,
}

/// Per-partition event-time reorder buffer. See the module docs.
#[derive(Debug)]
pub struct Reorder<T: Timed> {
    lateness_ms: i64,
    retention_ms: i64,
    lateness: Duration,
    idle_timeout: Duration,
    max_buffered: usize,

    /// Buffered items in release order (small values: the items themselves
    /// sit in `items`, so B-tree node shifts never move large payloads).
    buffer: BTreeMap<Key, Ref>,
    /// Slab of buffered items; `None` entries are on `free_items`.
    items: Vec<Option<T>>,
    free_items: Vec<usize>,
    /// Interned interaction id → slab slot.
    index: HashMap<Arc<str>, usize, IdHashBuilder>,
    /// Slab of per-interaction state; free slots are on `free_slots`.
    slots: Vec<Slot>,
    free_slots: Vec<usize>,
    /// Ended-release deadlines: (deadline, slot). Stale entries (the slot's
    /// `end_deadline` differs) are skipped when popped.
    ends: BinaryHeap<Reverse<(Instant, usize)>>,

    max_seen: Option<i64>,
    /// Guards `max_seen` against a few far-ahead event times.
    progress: Progress,
    /// Progress of the upstream sources feeding this partition (the lowest
    /// event time every upstream has reached), `None` when unconstrained.
    upstream: Option<i64>,
    /// The watermark; never goes back.
    wm: Option<i64>,
    seq: u64,
    last_push: Option<Instant>,
    sweep_cursor: usize,
    scratch: Vec<Key>,
    stats: ReorderStats,
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl<T: Timed> Reorder<T> {
    /// Creates an empty operator.
    pub fn new(settings: &ReorderSettings) -> Self {
        Reorder {
            lateness_ms: duration_ms(settings.allowed_lateness),
            retention_ms: duration_ms(settings.state_retention),
            lateness: settings.allowed_lateness,
            idle_timeout: settings.idle_timeout,
            max_buffered: settings.max_buffered,
            buffer: BTreeMap::new(),
            items: Vec::new(),
            free_items: Vec::new(),
            index: HashMap::with_hasher(IdHashBuilder::new()),
            slots: Vec::new(),
            free_slots: Vec::new(),
            ends: BinaryHeap::new(),
            max_seen: None,
            progress: Progress::new(settings.progress),
            upstream: None,
            wm: None,
            seq: 0,
            last_push: None,
            sweep_cursor: 0,
            scratch: Vec::new(),
            stats: ReorderStats::default(),
        }
    }

    /// Accepts one item at processing time `now`, appending whatever becomes
    /// releasable (possibly the item itself, possibly as `Late`) to `out`.
    pub fn push(&mut self, item: T, now: Instant, out: &mut Vec<Release<T>>) {
        self.last_push = Some(now);
        let t = item.event_time_ms();
        let wm = self.watermark_ms();
        let known = self.index.get(item.interaction_id()).copied();
        let last_emitted = known.and_then(|s| self.slots.get(s).and_then(|st| st.last_emitted));

        let late = if last_emitted.is_some_and(|l| t < l) {
            Some(LateReason::OlderThanEmitted)
        } else if wm.is_some_and(|w| t < w.saturating_sub(self.retention_ms)) {
            Some(LateReason::BeyondRetention)
        } else {
            None
        };
        if let Some(reason) = late {
            self.stats.late += 1;
            out.push(Release::Late {
                item,
                reason,
                watermark_ms: wm.unwrap_or(i64::MIN),
                last_emitted_ms: last_emitted,
            });
            self.sweep(SWEEP_PER_PUSH);
            return;
        }

        let slot = match known {
            Some(s) => s,
            None => self.intern(item.interaction_id()),
        };
        if wm.is_some_and(|w| t <= w) {
            // Everything buffered is newer than W ≥ t: release right away.
            self.emit(slot, t, item, out);
        } else {
            self.buffer_item(slot, t, item, now);
            self.max_seen = self.progress.observe(t);
            self.update_watermark();
            self.release_to_watermark(out);
            self.enforce_capacity(out);
        }
        self.sweep(SWEEP_PER_PUSH);
    }

    /// Processing-time housekeeping at `now`: ended-interaction releases,
    /// the idle flush and a step of the retention sweep. Cheap when nothing
    /// is due; meant to be called every few milliseconds.
    pub fn tick(&mut self, now: Instant, out: &mut Vec<Release<T>>) {
        while let Some(&Reverse((deadline, slot))) = self.ends.peek() {
            if deadline > now {
                break;
            }
            self.ends.pop();
            let upstream = self.upstream;
            let lateness = self.lateness_ms;
            let due = match self.slots.get_mut(slot) {
                Some(st) if st.id.is_some() && st.end_deadline == Some(deadline) => {
                    if upstream.is_some_and(|u| u.saturating_sub(lateness) < st.end_time) {
                        // A partition feeding this one (its own input
                        // included) has not passed this interaction's end
                        // by the allowed lateness: events of it may still be
                        // on their way (a partition catching up reads many
                        // seconds of event time in one second of processing
                        // time, with the usual disorder). Check again
                        // shortly.
                        let retry = now + Duration::from_millis(50);
                        st.end_deadline = Some(retry);
                        self.ends.push(Reverse((retry, slot)));
                        false
                    } else {
                        st.end_deadline = None;
                        true
                    }
                }
                _ => false,
            };
            if due {
                let n = self.release_interaction(slot, out);
                self.stats.ended_releases += n;
            }
        }

        if !self.buffer.is_empty()
            && self
                .last_push
                .is_some_and(|p| now.saturating_duration_since(p) >= self.idle_timeout)
        {
            match self.upstream {
                // Upstream partitions are still feeding this one: an idle
                // partition follows their progress instead of flushing
                // events they may still precede.
                Some(u) => {
                    let w = u.saturating_sub(self.lateness_ms);
                    if self.wm.is_none_or(|old| w > old) {
                        self.wm = Some(w);
                        let before = self.buffer.len();
                        self.release_to_watermark(out);
                        if self.buffer.len() < before {
                            self.stats.idle_flushes += 1;
                        }
                    }
                }
                None => {
                    self.release_all(out);
                    self.stats.idle_flushes += 1;
                }
            }
        }
        self.sweep(SWEEP_PER_TICK);
    }

    /// Releases everything buffered, in order (shutdown, partition revoke).
    pub fn flush(&mut self, out: &mut Vec<Release<T>>) {
        self.release_all(out);
    }

    /// Number of items currently buffered.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Current watermark (epoch ms), `None` before the first in-order push.
    pub fn watermark_ms(&self) -> Option<i64> {
        self.wm
    }

    /// Caps the watermark by upstream progress: `W = min(max event time
    /// pushed, upstream) − allowed_lateness`. A partition fed by a shuffle
    /// (the repartition topic) passes the lowest event time that every
    /// upstream partition has reached, so events still travelling from a
    /// slower upstream are not declared late because this partition's own
    /// input ran ahead (catch-up after a backlog). `None` removes the cap.
    /// The watermark still never goes back.
    pub fn set_upstream_watermark(&mut self, upstream: Option<i64>, out: &mut Vec<Release<T>>) {
        self.upstream = upstream;
        self.update_watermark();
        self.release_to_watermark(out);
    }

    /// The upstream cap last set by [`Self::set_upstream_watermark`].
    pub fn upstream_watermark(&self) -> Option<i64> {
        self.upstream
    }

    fn update_watermark(&mut self) {
        let Some(m) = self.max_seen else { return };
        let base = self.upstream.map_or(m, |u| m.min(u));
        let w = base.saturating_sub(self.lateness_ms);
        self.wm = Some(self.wm.map_or(w, |old| old.max(w)));
    }

    /// Counters since creation.
    pub fn stats(&self) -> &ReorderStats {
        &self.stats
    }

    /// Event times that were too far ahead to move the watermark and were
    /// never confirmed by a quorum (see [`crate::operators::progress`]).
    pub fn unconfirmed_progress(&self) -> u64 {
        self.progress.unconfirmed()
    }

    /// Interactions whose state is currently held.
    pub fn tracked_interactions(&self) -> usize {
        self.index.len()
    }

    /// State restore: `last_emitted_ms` was already emitted for
    /// `interaction_id` (keeps the greater of this and any known value).
    /// Meant to be called before any item of that interaction is pushed.
    pub fn restore_emitted(&mut self, interaction_id: &str, last_emitted_ms: i64) {
        let slot = match self.index.get(interaction_id) {
            Some(&s) => s,
            None => self.intern(interaction_id),
        };
        if let Some(st) = self.slots.get_mut(slot) {
            st.last_emitted = Some(
                st.last_emitted
                    .map_or(last_emitted_ms, |l| l.max(last_emitted_ms)),
            );
        }
    }

    /// Per-interaction last-emitted event times, in no particular order
    /// (changelog / checkpoint snapshots).
    pub fn emitted_state(&self) -> impl Iterator<Item = (&str, i64)> + '_ {
        self.slots
            .iter()
            .filter_map(|st| Some((st.id.as_deref()?, st.last_emitted?)))
    }

    fn intern(&mut self, id: &str) -> usize {
        let id: Arc<str> = Arc::from(id);
        let slot = match self.free_slots.pop() {
            Some(s) if s < self.slots.len() => s,
            _ => {
                self.slots.push(Slot::default());
                self.slots.len() - 1
            }
        };
        if let Some(st) = self.slots.get_mut(slot) {
            st.id = Some(Arc::clone(&id));
            st.last_emitted = None;
            st.buffered = 0;
            st.end_deadline = None;
            st.keys.clear();
        }
        self.index.insert(id, slot);
        slot
    }

    fn buffer_item(&mut self, slot: usize, t: i64, item: T, now: Instant) {
        let key = Key(
            t,
            (u64::from(item.rank()) << SEQ_BITS) | (self.seq & SEQ_MASK),
        );
        self.seq = self.seq.wrapping_add(1);
        let ends = item.ends_interaction();
        let idx = match self.free_items.pop() {
            Some(i) if i < self.items.len() => {
                self.items[i] = Some(item);
                i
            }
            _ => {
                self.items.push(Some(item));
                self.items.len() - 1
            }
        };
        self.buffer.insert(key, Ref { item: idx, slot });
        let Some(st) = self.slots.get_mut(slot) else {
            return;
        };
        st.buffered += 1;
        st.keys.push(key);
        if st.keys.len() > 2 * st.buffered + KEYS_SLACK {
            let buffer = &self.buffer;
            st.keys.retain(|k| buffer.contains_key(k));
        }
        if ends {
            st.end_time = t;
        }
        if ends && st.end_deadline.is_none() {
            // An unrepresentable deadline means "never": the watermark, idle
            // and flush paths still release the interaction.
            if let Some(d) = now.checked_add(self.lateness) {
                st.end_deadline = Some(d);
                self.ends.push(Reverse((d, slot)));
            }
        }
    }

    /// Emits an item in order and records its time for its interaction.
    fn emit(&mut self, slot: usize, t: i64, item: T, out: &mut Vec<Release<T>>) {
        if let Some(st) = self.slots.get_mut(slot) {
            st.last_emitted = Some(st.last_emitted.map_or(t, |l| l.max(t)));
        }
        self.stats.released += 1;
        out.push(Release::InOrder(item));
    }

    /// Emits an item whose entry was just removed from `buffer`.
    fn emit_buffered(&mut self, key: Key, r: Ref, out: &mut Vec<Release<T>>) {
        let item = self.items.get_mut(r.item).and_then(Option::take);
        self.free_items.push(r.item);
        if let Some(st) = self.slots.get_mut(r.slot) {
            st.buffered = st.buffered.saturating_sub(1);
            if st.buffered == 0 {
                st.end_deadline = None;
                st.keys.clear();
                st.keys.shrink_to(KEYS_KEEP);
            }
        }
        // `items` and `buffer` are kept in step, so the item is always there.
        if let Some(item) = item {
            self.emit(r.slot, key.time(), item, out);
        }
    }

    /// Removes and emits the smallest buffered item.
    fn pop_first(&mut self, out: &mut Vec<Release<T>>) -> bool {
        match self.buffer.pop_first() {
            Some((key, r)) => {
                self.emit_buffered(key, r, out);
                true
            }
            None => false,
        }
    }

    fn release_to_watermark(&mut self, out: &mut Vec<Release<T>>) {
        let Some(w) = self.watermark_ms() else { return };
        while self
            .buffer
            .first_key_value()
            .is_some_and(|(k, _)| k.time() <= w)
        {
            self.pop_first(out);
        }
    }

    fn enforce_capacity(&mut self, out: &mut Vec<Release<T>>) {
        while self.buffer.len() > self.max_buffered {
            if !self.pop_first(out) {
                break;
            }
            self.stats.forced_releases += 1;
        }
    }

    /// Releases all buffered items of one interaction, in order; returns how
    /// many.
    fn release_interaction(&mut self, slot: usize, out: &mut Vec<Release<T>>) -> u64 {
        let mut keys = std::mem::take(&mut self.scratch);
        keys.clear();
        if let Some(st) = self.slots.get(slot) {
            keys.extend_from_slice(&st.keys);
        }
        keys.sort_unstable();
        let mut n = 0;
        for &key in &keys {
            // Keys already released are no longer in the buffer.
            if let Some(r) = self.buffer.remove(&key) {
                self.emit_buffered(key, r, out);
                n += 1;
            }
        }
        keys.clear();
        self.scratch = keys;
        n
    }

    fn release_all(&mut self, out: &mut Vec<Release<T>>) {
        let buffer = std::mem::take(&mut self.buffer);
        out.reserve(buffer.len());
        for (key, r) in buffer {
            self.emit_buffered(key, r, out);
        }
        self.items.clear();
        self.free_items.clear();
    }

    /// Examines up to `steps` slab slots, forgetting interactions with
    /// nothing buffered whose last emitted time is beyond retention.
    fn sweep(&mut self, steps: usize) {
        let Some(w) = self.watermark_ms() else { return };
        let cutoff = w.saturating_sub(self.retention_ms);
        let len = self.slots.len();
        for _ in 0..steps.min(len) {
            if self.sweep_cursor >= len {
                self.sweep_cursor = 0;
            }
            let slot = self.sweep_cursor;
            self.sweep_cursor += 1;
            let Some(st) = self.slots.get_mut(slot) else {
                continue;
            };
            if st.id.is_some() && st.buffered == 0 && st.last_emitted.is_none_or(|l| l < cutoff) {
                if let Some(id) = st.id.take() {
                    self.index.remove(&id);
                    self.free_slots.push(slot);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DecodeNotes, EventKind, Lineage, SourceRef};
    use proptest::prelude::*;
    use std::collections::HashMap as Map;

    #[derive(Debug, Clone, PartialEq)]
    struct Ev {
        /// Unique per pushed item.
        n: u64,
        ix: String,
        t: i64,
        rank: u8,
        end: bool,
    }

    impl Timed for Ev {
        fn event_time_ms(&self) -> i64 {
            self.t
        }
        fn interaction_id(&self) -> &str {
            &self.ix
        }
        fn rank(&self) -> u8 {
            self.rank
        }
        fn ends_interaction(&self) -> bool {
            self.end
        }
    }

    fn ev(n: u64, ix: &str, t: i64) -> Ev {
        Ev {
            n,
            ix: ix.to_string(),
            t,
            rank: 2,
            end: false,
        }
    }

    fn end(n: u64, ix: &str, t: i64) -> Ev {
        Ev {
            n,
            ix: ix.to_string(),
            t,
            rank: 5,
            end: true,
        }
    }

    fn settings(lateness_ms: u64) -> ReorderSettings {
        ReorderSettings {
            allowed_lateness: Duration::from_millis(lateness_ms),
            ..ReorderSettings::default()
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn upstream_watermark_holds_release_until_the_slow_upstream_catches_up() {
        let mut r = Reorder::new(&settings(1_000));
        let now = Instant::now();
        let mut out = Vec::new();
        // The slow upstream has only reached t=1_000.
        r.set_upstream_watermark(Some(1_000), &mut out);
        r.push(ev(1, "a", 2_000), now, &mut out);
        r.push(ev(2, "a", 50_000), now, &mut out);
        assert!(out.is_empty(), "capped at 1_000 - 1_000: nothing released");
        assert_eq!(r.watermark_ms(), Some(0));
        // An event of "a" forwarded by the slow upstream is not late.
        r.push(ev(3, "a", 1_500), now, &mut out);
        assert!(out.is_empty());
        // The upstream catches up: release in event-time order up to
        // min(50_000, 60_000) - 1_000.
        r.set_upstream_watermark(Some(60_000), &mut out);
        assert_eq!(in_order(&out), vec![3, 1]);
        // Lowering the cap never moves the watermark back.
        out.clear();
        r.set_upstream_watermark(Some(10), &mut out);
        assert_eq!(r.watermark_ms(), Some(49_000));
    }

    fn in_order(out: &[Release<Ev>]) -> Vec<u64> {
        out.iter()
            .map(|r| match r {
                Release::InOrder(e) => e.n,
                Release::Late { .. } => panic!("unexpected late release {r:?}"),
            })
            .collect()
    }

    /// The issue-13 symptom: one record 40 minutes ahead made every later
    /// out-of-order event of its partition late. With the quorum rule the
    /// watermark ignores it; the outlier itself waits in the buffer until
    /// the stream gets there (or a flush), and nothing is late.
    #[test]
    fn one_far_ahead_event_does_not_move_the_watermark_or_make_others_late() {
        let now = Instant::now();
        let s = settings(5_000);
        let mut r = Reorder::new(&s);
        let mut out = Vec::new();
        r.push(ev(1, "a", 100_000), now, &mut out);
        r.push(ev(2, "x", 100_000 + 40 * 60_000), now, &mut out);
        assert_eq!(r.watermark_ms(), Some(95_000), "not moved by the outlier");
        // Disorder within the allowed lateness is still put in order.
        r.push(ev(3, "a", 104_000), now, &mut out);
        r.push(ev(4, "a", 102_000), now, &mut out);
        r.push(ev(5, "a", 112_000), now, &mut out);
        assert_eq!(in_order(&out), vec![1, 4, 3]);
        assert_eq!(r.buffered(), 2, "112_000 and the outlier wait");
        out.clear();
        r.flush(&mut out);
        assert_eq!(in_order(&out), vec![5, 2]);
        assert_eq!(r.stats().late, 0);
        // Without the rule (quorum 1) the same input goes late.
        let plain = ReorderSettings {
            progress: ProgressSettings {
                quorum: 1,
                ..ProgressSettings::default()
            },
            ..s
        };
        let mut r = Reorder::new(&plain);
        let mut out = Vec::new();
        for e in [
            ev(1, "a", 100_000),
            ev(2, "x", 100_000 + 40 * 60_000),
            ev(3, "a", 104_000),
            ev(4, "a", 102_000),
        ] {
            r.push(e, now, &mut out);
        }
        assert_eq!(r.stats().late, 1, "102_000 came after 104_000 was released");
    }

    #[test]
    fn defaults() {
        let s = ReorderSettings::default();
        assert_eq!(s.allowed_lateness, Duration::from_secs(5));
        assert_eq!(s.idle_timeout, Duration::from_secs(2));
        assert_eq!(s.max_buffered, 100_000);
        assert_eq!(s.state_retention, Duration::from_secs(3600));
        assert_eq!(LateReason::OlderThanEmitted.code(), "older_than_emitted");
        assert_eq!(LateReason::BeyondRetention.code(), "beyond_retention");
    }

    #[test]
    fn watermark_releases_in_event_time_order() {
        let now = Instant::now();
        let mut r = Reorder::new(&settings(100));
        let mut out = Vec::new();
        assert_eq!(r.watermark_ms(), None);
        r.push(ev(1, "a", 1_000), now, &mut out);
        r.push(ev(2, "b", 950), now, &mut out);
        r.push(ev(3, "a", 980), now, &mut out);
        assert!(out.is_empty());
        assert_eq!(r.watermark_ms(), Some(900));
        assert_eq!(r.buffered(), 3);
        r.push(ev(4, "b", 1_080), now, &mut out); // W = 980
        assert_eq!(in_order(&out), vec![2, 3]);
        out.clear();
        r.push(ev(5, "a", 1_200), now, &mut out); // W = 1100
        assert_eq!(in_order(&out), vec![1, 4]);
        assert_eq!(r.buffered(), 1);
        out.clear();
        r.flush(&mut out);
        assert_eq!(in_order(&out), vec![5]);
        assert_eq!(r.stats().released, 5);
        assert_eq!(r.stats().late, 0);
    }

    #[test]
    fn equal_times_break_ties_by_rank_then_arrival() {
        let now = Instant::now();
        let mut r = Reorder::new(&settings(10));
        let mut out = Vec::new();
        let e = |n, rank| Ev {
            n,
            ix: "a".into(),
            t: 500,
            rank,
            end: false,
        };
        r.push(e(1, 3), now, &mut out);
        r.push(e(2, 0), now, &mut out);
        r.push(e(3, 3), now, &mut out);
        r.push(e(4, 1), now, &mut out);
        r.push(ev(5, "b", 600), now, &mut out);
        assert_eq!(in_order(&out), vec![2, 4, 1, 3]);
    }

    #[test]
    fn zero_lateness_releases_immediately() {
        let now = Instant::now();
        let mut r = Reorder::new(&settings(0));
        let mut out = Vec::new();
        r.push(ev(1, "a", 10), now, &mut out);
        r.push(ev(2, "a", 20), now, &mut out);
        r.push(ev(3, "a", 20), now, &mut out);
        assert_eq!(in_order(&out), vec![1, 2, 3]);
        assert_eq!(r.buffered(), 0);
    }

    #[test]
    fn older_than_emitted_is_late_at_once_and_equal_time_is_not() {
        let now = Instant::now();
        let mut r = Reorder::new(&settings(100));
        let mut out = Vec::new();
        r.push(ev(1, "a", 1_000), now, &mut out);
        r.push(ev(2, "a", 1_200), now, &mut out); // W = 1100: releases 1
        assert_eq!(in_order(&out), vec![1]);
        out.clear();
        r.push(ev(3, "a", 1_000), now, &mut out); // equal: in order, at once
        assert_eq!(in_order(&out), vec![3]);
        out.clear();
        r.push(ev(4, "a", 999), now, &mut out);
        assert_eq!(
            out,
            vec![Release::Late {
                item: ev(4, "a", 999),
                reason: LateReason::OlderThanEmitted,
                watermark_ms: 1_100,
                last_emitted_ms: Some(1_000),
            }]
        );
        assert_eq!(r.buffered(), 1, "late items are never buffered");
        assert_eq!(r.stats().late, 1);
        assert_eq!(r.watermark_ms(), Some(1_100));
    }

    #[test]
    fn first_event_of_a_late_interaction_is_released_in_order_right_away() {
        let now = Instant::now();
        let mut r = Reorder::new(&settings(100));
        let mut out = Vec::new();
        r.push(ev(1, "a", 5_000), now, &mut out); // W = 4900
        r.push(ev(2, "b", 3_000), now, &mut out); // older than W, new interaction
        assert_eq!(in_order(&out), vec![2]);
        out.clear();
        // b's later events are still ordered against its emitted time.
        r.push(ev(3, "b", 2_999), now, &mut out);
        assert!(matches!(
            out[0],
            Release::Late {
                reason: LateReason::OlderThanEmitted,
                last_emitted_ms: Some(3_000),
                ..
            }
        ));
        out.clear();
        r.push(ev(4, "b", 3_500), now, &mut out);
        assert_eq!(in_order(&out), vec![4]);
    }

    #[test]
    fn beyond_retention_is_late() {
        let now = Instant::now();
        let s = ReorderSettings {
            allowed_lateness: ms(100),
            state_retention: ms(1_000),
            ..ReorderSettings::default()
        };
        let mut r = Reorder::new(&s);
        let mut out = Vec::new();
        r.push(ev(1, "a", 10_100), now, &mut out); // W = 10_000, cutoff 9_000
        r.push(ev(2, "b", 9_000), now, &mut out); // at the cutoff: fine
        assert_eq!(in_order(&out), vec![2]);
        out.clear();
        r.push(ev(3, "c", 8_999), now, &mut out);
        assert_eq!(
            out,
            vec![Release::Late {
                item: ev(3, "c", 8_999),
                reason: LateReason::BeyondRetention,
                watermark_ms: 10_000,
                last_emitted_ms: None,
            }]
        );
        assert_eq!(r.tracked_interactions(), 2, "no state for a late event");
    }

    #[test]
    fn ended_interaction_is_released_after_lateness_of_processing_time() {
        let t0 = Instant::now();
        let s = ReorderSettings {
            idle_timeout: Duration::from_secs(60),
            ..settings(5_000)
        };
        let mut r = Reorder::new(&s);
        let mut out = Vec::new();
        r.push(ev(1, "a", 1_000), t0, &mut out);
        r.push(ev(2, "b", 1_500), t0, &mut out);
        r.push(end(3, "a", 2_000), t0 + ms(100), &mut out);
        r.push(ev(4, "a", 1_800), t0 + ms(200), &mut out);
        r.tick(t0 + ms(1_000), &mut out);
        r.tick(t0 + ms(5_099), &mut out);
        assert!(out.is_empty());
        r.push(ev(5, "b", 1_600), t0 + ms(5_000), &mut out);
        r.tick(t0 + ms(5_100), &mut out);
        assert_eq!(in_order(&out), vec![1, 4, 3]);
        assert_eq!(r.stats().ended_releases, 3);
        assert_eq!(r.buffered(), 2);
        out.clear();
        // Later stragglers of "a" are late; nothing else was touched.
        r.push(ev(6, "a", 1_900), t0 + ms(5_200), &mut out);
        assert!(out[0].is_late());
        out.clear();
        r.flush(&mut out);
        assert_eq!(in_order(&out), vec![2, 5]);
    }

    /// With partitions feeding this one, an ended interaction is released
    /// early only once every feeder is past its end by the allowed
    /// lateness: a partition catching up still reads its stragglers.
    #[test]
    fn ended_release_waits_until_the_feeders_passed_the_end_by_the_lateness() {
        let t0 = Instant::now();
        let s = ReorderSettings {
            idle_timeout: Duration::from_secs(60),
            ..settings(5_000)
        };
        let mut r = Reorder::new(&s);
        let mut out = Vec::new();
        r.set_upstream_watermark(Some(0), &mut out);
        r.push(ev(1, "a", 10_000), t0, &mut out);
        r.push(end(2, "a", 20_000), t0, &mut out);
        // The feeders (own input included) have read up to the end event,
        // five seconds of processing time later: not yet.
        r.set_upstream_watermark(Some(20_500), &mut out);
        assert_eq!(in_order(&out), vec![1], "the watermark (15_000) passed 1");
        out.clear();
        r.tick(t0 + ms(5_100), &mut out);
        assert!(out.is_empty());
        // A straggler of "a" read after its end event is still in order.
        r.push(ev(3, "a", 19_000), t0 + ms(5_150), &mut out);
        assert!(out.is_empty());
        r.set_upstream_watermark(Some(25_000), &mut out);
        r.tick(t0 + ms(5_300), &mut out);
        assert_eq!(in_order(&out), vec![3, 2]);
        assert_eq!(r.stats().ended_releases, 2);
    }

    #[test]
    fn ended_deadline_is_dropped_when_the_watermark_got_there_first() {
        let t0 = Instant::now();
        let mut r = Reorder::new(&settings(100));
        let mut out = Vec::new();
        r.push(end(1, "a", 1_000), t0, &mut out);
        r.push(ev(2, "b", 1_200), t0, &mut out); // W = 1100 releases "a"
        assert_eq!(in_order(&out), vec![1]);
        out.clear();
        r.push(ev(3, "a", 1_300), t0 + ms(50), &mut out); // W = 1200
        assert_eq!(in_order(&out), vec![2]);
        out.clear();
        r.tick(t0 + ms(150), &mut out);
        assert!(out.is_empty(), "no pending end for \"a\" any more");
        assert_eq!(r.stats().ended_releases, 0);
    }

    #[test]
    fn idle_partition_is_flushed() {
        let t0 = Instant::now();
        let s = ReorderSettings {
            allowed_lateness: ms(5_000),
            idle_timeout: ms(2_000),
            ..ReorderSettings::default()
        };
        let mut r = Reorder::new(&s);
        let mut out = Vec::new();
        r.tick(t0, &mut out); // nothing pushed yet: nothing to do
        r.push(ev(1, "a", 3_000), t0, &mut out);
        r.push(ev(2, "b", 1_000), t0 + ms(500), &mut out);
        r.tick(t0 + ms(2_499), &mut out);
        assert!(out.is_empty());
        r.tick(t0 + ms(2_500), &mut out);
        assert_eq!(in_order(&out), vec![2, 1]);
        assert_eq!(r.stats().idle_flushes, 1);
        assert_eq!(r.buffered(), 0);
        r.tick(t0 + ms(9_000), &mut out);
        assert_eq!(r.stats().idle_flushes, 1, "nothing to flush, not counted");
        // The watermark did not move; "a" has emitted 3000 now.
        assert_eq!(r.watermark_ms(), Some(-2_000));
        out.clear();
        r.push(ev(3, "a", 2_000), t0 + ms(9_000), &mut out);
        assert!(out[0].is_late());
    }

    #[test]
    fn full_buffer_forces_the_oldest_out() {
        let now = Instant::now();
        let s = ReorderSettings {
            max_buffered: 3,
            ..settings(10_000)
        };
        let mut r = Reorder::new(&s);
        let mut out = Vec::new();
        r.push(ev(1, "a", 400), now, &mut out);
        r.push(ev(2, "b", 100), now, &mut out);
        r.push(ev(3, "a", 300), now, &mut out);
        assert!(out.is_empty());
        r.push(ev(4, "b", 200), now, &mut out);
        assert_eq!(in_order(&out), vec![2]);
        r.push(ev(5, "c", 50), now, &mut out);
        assert_eq!(in_order(&out), vec![2, 5]);
        assert_eq!(r.buffered(), 3);
        assert_eq!(r.stats().forced_releases, 2);
        out.clear();
        r.push(ev(6, "b", 150), now, &mut out); // b emitted 100: fine, forced out
        assert_eq!(in_order(&out), vec![6]);
        out.clear();
        r.push(ev(7, "b", 120), now, &mut out);
        assert!(out[0].is_late());
        out.clear();
        r.flush(&mut out);
        assert_eq!(in_order(&out), vec![4, 3, 1]);
        let st = r.stats();
        assert_eq!(st.released + st.late, 7);
    }

    #[test]
    fn flush_releases_everything_in_order() {
        let now = Instant::now();
        let mut r = Reorder::new(&settings(60_000));
        let mut out = Vec::new();
        for (n, t) in [(1, 50), (2, 10), (3, 40), (4, 20), (5, 30)] {
            r.push(ev(n, if n % 2 == 0 { "a" } else { "b" }, t), now, &mut out);
        }
        r.push(end(6, "a", 45), now, &mut out);
        r.flush(&mut out);
        assert_eq!(in_order(&out), vec![2, 4, 5, 3, 6, 1]);
        assert_eq!(r.buffered(), 0);
        out.clear();
        // The pending end deadline was dropped with the flush.
        r.tick(now + ms(120_000), &mut out);
        assert!(out.is_empty());
        assert_eq!(r.stats().ended_releases, 0);
    }

    #[test]
    fn interaction_state_is_forgotten_beyond_retention() {
        let now = Instant::now();
        let s = ReorderSettings {
            allowed_lateness: ms(0),
            state_retention: ms(1_000),
            ..ReorderSettings::default()
        };
        let mut r = Reorder::new(&s);
        let mut out = Vec::new();
        for i in 0..100u64 {
            r.push(ev(i, &format!("old-{i}"), 1_000), now, &mut out);
        }
        assert_eq!(r.tracked_interactions(), 100);
        // Advance the watermark far past retention; the sweep is incremental.
        for i in 0..200u64 {
            r.push(ev(1_000 + i, "live", 10_000 + i as i64), now, &mut out);
        }
        r.tick(now, &mut out);
        assert_eq!(r.tracked_interactions(), 1);
        assert_eq!(
            r.emitted_state().collect::<Vec<_>>(),
            vec![("live", 10_199)]
        );
        // An event of a forgotten interaction cannot be placed: beyond retention.
        out.clear();
        r.push(ev(9_999, "old-7", 1_000), now, &mut out);
        assert!(matches!(
            out[0],
            Release::Late {
                reason: LateReason::BeyondRetention,
                last_emitted_ms: None,
                ..
            }
        ));
        // Slots are reused.
        r.push(ev(10_000, "new", 10_199), now, &mut out);
        assert_eq!(r.tracked_interactions(), 2);
        assert!(r.slots.len() <= 101);
        assert_eq!(r.free_slots.len(), r.slots.len() - 2);
    }

    #[test]
    fn buffered_interactions_are_never_forgotten() {
        let now = Instant::now();
        let s = ReorderSettings {
            allowed_lateness: ms(0),
            state_retention: ms(0),
            max_buffered: 10,
            ..ReorderSettings::default()
        };
        let mut r = Reorder::new(&s);
        let mut out = Vec::new();
        r.restore_emitted("x", 5);
        r.push(ev(1, "a", 100), now, &mut out);
        for _ in 0..10 {
            r.tick(now, &mut out);
        }
        assert_eq!(r.tracked_interactions(), 1, "\"x\" (5 < 100) is forgotten");
        assert_eq!(in_order(&out), vec![1]);
    }

    #[test]
    fn long_lived_interaction_key_list_stays_compact() {
        let t0 = Instant::now();
        let s = ReorderSettings {
            idle_timeout: Duration::from_secs(3_600),
            ..settings(1_000)
        };
        let mut r = Reorder::new(&s);
        let mut out = Vec::new();
        // "a" always has ~100 events buffered while the watermark releases
        // the oldest ones: its key list must not grow without bound.
        for i in 0..10_000u64 {
            r.push(ev(i, "a", i as i64 * 10), t0, &mut out);
            let a = &r.slots[r.index["a"]];
            // Compaction runs before the watermark releases one more.
            assert!(a.keys.len() <= 2 * (a.buffered + 1) + KEYS_SLACK);
        }
        assert_eq!(r.buffered(), 100);
        // An end event now releases exactly the buffered ones, in order.
        r.push(end(10_000, "a", 99_995), t0, &mut out);
        let released_before = out.len();
        r.tick(t0 + ms(1_000), &mut out);
        assert_eq!(r.stats().ended_releases, 101);
        assert_eq!(r.buffered(), 0);
        let ns = in_order(&out[released_before..]);
        let mut expect: Vec<u64> = (9_900..10_000).collect();
        expect.push(10_000); // t = 99_995, after 99_990 (event 9_999)
        assert_eq!(ns, expect);
        assert_eq!(in_order(&out).len(), 10_001);
    }

    #[test]
    fn restore_and_snapshot_emitted_state() {
        let now = Instant::now();
        let mut r = Reorder::new(&settings(100));
        r.restore_emitted("a", 1_000);
        r.restore_emitted("b", 2_000);
        r.restore_emitted("a", 900); // keeps the greater
        let mut snap: Vec<(String, i64)> =
            r.emitted_state().map(|(k, v)| (k.to_string(), v)).collect();
        snap.sort();
        assert_eq!(snap, vec![("a".into(), 1_000), ("b".into(), 2_000)]);
        let mut out = Vec::new();
        r.push(ev(1, "a", 999), now, &mut out);
        assert_eq!(
            out,
            vec![Release::Late {
                item: ev(1, "a", 999),
                reason: LateReason::OlderThanEmitted,
                watermark_ms: i64::MIN,
                last_emitted_ms: Some(1_000),
            }]
        );
        out.clear();
        r.push(ev(2, "a", 1_000), now, &mut out);
        r.flush(&mut out);
        assert_eq!(in_order(&out), vec![2]);

        let mut copy: Reorder<Ev> = Reorder::new(&settings(100));
        for (k, v) in r.emitted_state() {
            copy.restore_emitted(k, v);
        }
        let mut a: Vec<_> = r.emitted_state().collect();
        let mut b: Vec<_> = copy.emitted_state().collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }

    #[test]
    fn extreme_times_and_settings_do_not_panic() {
        let now = Instant::now();
        let s = ReorderSettings {
            allowed_lateness: Duration::MAX,
            idle_timeout: Duration::MAX,
            max_buffered: 0,
            state_retention: Duration::MAX,
            progress: ProgressSettings {
                quorum: 3,
                jump: Duration::MAX,
            },
        };
        let mut r = Reorder::new(&s);
        let mut out = Vec::new();
        r.push(end(1, "a", i64::MAX), now, &mut out);
        r.push(ev(2, "a", i64::MIN), now, &mut out);
        r.push(ev(3, "b", i64::MIN), now, &mut out);
        r.tick(now + Duration::from_secs(3600), &mut out);
        r.flush(&mut out);
        assert_eq!(out.len(), 3);

        // The plain maximum (quorum 1) takes the watermark to the end of
        // time; the guarded one does not move for one such event.
        for (quorum, late) in [(1, true), (3, false)] {
            let s = ReorderSettings {
                progress: ProgressSettings {
                    quorum,
                    ..ProgressSettings::default()
                },
                ..settings(0)
            };
            let mut r = Reorder::new(&s);
            let mut out = Vec::new();
            r.push(ev(1, "a", i64::MIN), now, &mut out);
            r.push(ev(2, "a", i64::MAX), now, &mut out);
            r.push(ev(3, "b", i64::MIN), now, &mut out);
            r.tick(now, &mut out);
            r.flush(&mut out);
            assert_eq!(out.len(), 3);
            assert_eq!(out.iter().any(|o| o.is_late()), late, "quorum {quorum}");
        }
    }

    #[test]
    fn event_implements_timed() {
        let e = Event {
            event_id: "id".into(),
            interaction_id: "conv-1".into(),
            kind: EventKind::CustomerEnd,
            event_time_ms: 1_649_237_444_949,
            source_version: "2".into(),
            media_type: None,
            direction: None,
            participant_id: None,
            session_id: None,
            queue_id: None,
            user_id: None,
            payload: Default::default(),
            content_fp: 1,
            id_fp: None,
            lineage: Lineage::default(),
            source: SourceRef {
                topic: Arc::from("bronze"),
                partition: 0,
                offset: 0,
            },
            raw: 0..0,
            record_timestamp_ms: None,
            notes: DecodeNotes::default(),
            ticket: 0,
        };
        assert_eq!(e.event_time_ms(), 1_649_237_444_949);
        assert_eq!(Timed::interaction_id(&e), "conv-1");
        assert_eq!(Timed::rank(&e), 5);
        assert!(Timed::ends_interaction(&e));
        let mut r = Reorder::new(&ReorderSettings::default());
        let mut out = Vec::new();
        r.push(e.clone(), Instant::now(), &mut out);
        r.flush(&mut out);
        assert_eq!(out, vec![Release::InOrder(e.clone())]);

        let boxed = Box::new(e);
        assert_eq!(boxed.event_time_ms(), 1_649_237_444_949);
        assert_eq!(Timed::interaction_id(&boxed), "conv-1");
        let mut r: Reorder<Box<Event>> = Reorder::new(&ReorderSettings::default());
        let mut out = Vec::new();
        r.push(boxed.clone(), Instant::now(), &mut out);
        r.flush(&mut out);
        assert_eq!(out, vec![Release::InOrder(boxed)]);
    }

    // ---- property tests ----------------------------------------------------

    #[derive(Debug, Clone)]
    enum Op {
        /// Interaction, event-time step of the stream "clock", disorder
        /// below it, rank, ends, processing-time advance (ms).
        Push {
            ix: u8,
            step: i64,
            back: i64,
            rank: u8,
            end: bool,
            dt: u64,
        },
        Tick {
            dt: u64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u8..6, 0i64..300, 0i64..3_000, 0u8..6, proptest::bool::weighted(0.1), 0u64..200)
                .prop_map(|(ix, step, back, rank, end, dt)| Op::Push { ix, step, back, rank, end, dt }),
            1 => (0u64..3_000).prop_map(|dt| Op::Tick { dt }),
        ]
    }

    fn reorder_settings() -> impl Strategy<Value = ReorderSettings> {
        (0u64..2_000, 1u64..3_000, 0usize..40, 0u64..4_000).prop_map(|(l, i, m, r)| {
            ReorderSettings {
                allowed_lateness: ms(l),
                idle_timeout: ms(i),
                max_buffered: m,
                state_retention: ms(r),
                // The model below is the plain maximum; the quorum rule has
                // its own tests (progress.rs) and one here.
                progress: ProgressSettings {
                    quorum: 1,
                    ..ProgressSettings::default()
                },
            }
        })
    }

    /// Checks properties (1)–(3) over a random run; returns the releases.
    fn run_and_check(s: &ReorderSettings, ops: &[Op]) -> Result<Vec<Release<Ev>>, TestCaseError> {
        let lateness = duration_ms(s.allowed_lateness);
        let retention = duration_ms(s.state_retention);
        let mut r = Reorder::new(s);
        let mut now = Instant::now();
        let mut clock = 100_000i64;
        let mut pushed = 0u64;
        let mut all = Vec::new();
        let mut out = Vec::new();
        // Model: greatest InOrder time released per interaction, max pushed
        // (non-late) event time.
        let mut released_max: Map<String, i64> = Map::new();
        let mut max_seen: Option<i64> = None;

        let absorb = |out: &mut Vec<Release<Ev>>,
                      all: &mut Vec<Release<Ev>>,
                      released_max: &mut Map<String, i64>|
         -> Result<(), TestCaseError> {
            for rel in out.drain(..) {
                if let Release::InOrder(e) = &rel {
                    let m = released_max.entry(e.ix.clone()).or_insert(i64::MIN);
                    // (2) per-interaction non-decreasing InOrder times.
                    prop_assert!(e.t >= *m, "{e:?} after {m}");
                    *m = e.t;
                }
                all.push(rel);
            }
            Ok(())
        };

        for op in ops {
            match *op {
                Op::Push {
                    ix,
                    step,
                    back,
                    rank,
                    end,
                    dt,
                } => {
                    now += ms(dt);
                    clock += step;
                    let e = Ev {
                        n: pushed,
                        ix: format!("ix-{ix}"),
                        t: clock - back,
                        rank,
                        end,
                    };
                    pushed += 1;
                    let before = released_max.get(&e.ix).copied();
                    let wm = max_seen.map(|m: i64| m - lateness);
                    r.push(e.clone(), now, &mut out);
                    // (3) late only for a reason that holds at arrival; the
                    // item itself comes out at once if it is late.
                    let late_here = out.iter().find(|x| x.item().n == e.n && x.is_late());
                    match late_here {
                        Some(Release::Late {
                            reason,
                            watermark_ms,
                            last_emitted_ms,
                            ..
                        }) => {
                            prop_assert_eq!(*watermark_ms, wm.unwrap_or(i64::MIN));
                            match reason {
                                LateReason::OlderThanEmitted => {
                                    prop_assert!(before.is_some_and(|b| b > e.t));
                                    prop_assert_eq!(*last_emitted_ms, before);
                                }
                                LateReason::BeyondRetention => {
                                    prop_assert!(wm.is_some_and(|w| e.t < w - retention));
                                }
                            }
                        }
                        _ => {
                            prop_assert!(before.is_none_or(|b| e.t >= b));
                            max_seen = Some(max_seen.map_or(e.t, |m| m.max(e.t)));
                        }
                    }
                    prop_assert_eq!(r.watermark_ms(), max_seen.map(|m| m - lateness));
                    absorb(&mut out, &mut all, &mut released_max)?;
                }
                Op::Tick { dt } => {
                    now += ms(dt);
                    r.tick(now, &mut out);
                    absorb(&mut out, &mut all, &mut released_max)?;
                }
            }
            prop_assert!(r.buffered() <= s.max_buffered);
            // Everything buffered is newer than the watermark.
            prop_assert_eq!(
                r.buffered() as u64,
                pushed - all.len() as u64,
                "buffered count matches the model"
            );
        }
        r.flush(&mut out);
        absorb(&mut out, &mut all, &mut released_max)?;
        prop_assert_eq!(r.buffered(), 0);

        // (1) every item exactly once.
        let mut seen: Vec<u64> = all.iter().map(|x| x.item().n).collect();
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..pushed).collect::<Vec<_>>());
        let st = r.stats();
        prop_assert_eq!(st.released + st.late, pushed);
        prop_assert_eq!(st.late, all.iter().filter(|x| x.is_late()).count() as u64);
        Ok(all)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn prop_exactly_once_ordered_and_late_only_with_reason(
            s in reorder_settings(),
            interactions in 1u8..7,
            ops in proptest::collection::vec(op(), 0..300),
        ) {
            let ops: Vec<Op> = ops
                .into_iter()
                .map(|o| match o {
                    Op::Push { ix, step, back, rank, end, dt } => {
                        Op::Push { ix: ix % interactions, step, back, rank, end, dt }
                    }
                    tick => tick,
                })
                .collect();
            run_and_check(&s, &ops)?;
        }

        #[test]
        fn prop_bounded_disorder_is_never_late(
            lateness in 0i64..3_000,
            retention in 0u64..2_000,
            events in proptest::collection::vec((0u8..8, 0i64..500, 0.0f64..=1.0, 0u8..6, proptest::bool::weighted(0.1)), 0..300),
        ) {
            // No ticks (so no idle or ended releases) and a buffer that never
            // fills: only the watermark releases before the final flush.
            let s = ReorderSettings {
                allowed_lateness: ms(lateness as u64),
                idle_timeout: Duration::from_secs(1),
                max_buffered: 1_000,
                state_retention: ms(retention),
                progress: ProgressSettings { quorum: 1, ..ProgressSettings::default() },
            };
            let mut clock = 0i64;
            let mut max_seen: Option<i64> = None;
            let ops: Vec<Op> = events
                .into_iter()
                .map(|(ix, step, frac, rank, end)| {
                    clock += step;
                    // Disorder bounded by the lateness behind the newest time.
                    let floor = max_seen.map_or(clock, |m| m - lateness);
                    let t = (floor + ((clock - floor) as f64 * frac) as i64).min(clock);
                    max_seen = Some(max_seen.map_or(t, |m| m.max(t)));
                    Op::Push { ix, step, back: clock - t, rank, end, dt: 0 }
                })
                .collect();
            let all = run_and_check(&s, &ops)?;
            prop_assert!(all.iter().all(|x| !x.is_late()), "{all:?}");
            // Only the watermark released: the global order follows event time.
            let times: Vec<i64> = all.iter().map(|x| x.item().t).collect();
            prop_assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
        }
    }
}
