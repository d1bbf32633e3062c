//! Offset tracking: an input offset is committed only after every output
//! derived from it has been acknowledged.
//!
//! Each input record gets an entry holding a count: one guard while the
//! record is being processed, plus one per accounting unit (event) until that
//! unit reaches a terminal output (acknowledged produce, or drop). The commit
//! point of a partition is the offset of its oldest entry still held, so
//! events waiting in a reorder buffer hold the commit point back and are
//! re-read after a crash instead of being lost.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::Ticket;
use crate::stage::Role;

const OFFSET_BITS: u32 = 44;
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;

/// Packs a tracker slot and an offset into a [`Ticket`].
pub fn ticket(slot: u32, offset: i64) -> Ticket {
    (u64::from(slot) << OFFSET_BITS) | (offset as u64 & OFFSET_MASK)
}

fn unpack(t: Ticket) -> (u32, i64) {
    ((t >> OFFSET_BITS) as u32, (t & OFFSET_MASK) as i64)
}

#[derive(Debug)]
struct Entry {
    offset: i64,
    holds: u32,
    timestamp_ms: Option<i64>,
    /// When the record was read from the consumer, µs since
    /// [`Trackers::epoch`] (for the processing-latency metric).
    read_us: u64,
}

/// One partition of the input or repartition topic.
#[derive(Debug)]
pub struct Tracker {
    pub role: Role,
    pub topic: Arc<str>,
    pub partition: i32,
    entries: VecDeque<Entry>,
    /// The offset after the last fully acknowledged prefix.
    done_upto: Option<i64>,
    last_sent: Option<i64>,
}

impl Tracker {
    fn pop_done(&mut self) {
        while let Some(front) = self.entries.front() {
            if front.holds > 0 {
                break;
            }
            self.done_upto = Some(front.offset + 1);
            self.entries.pop_front();
        }
    }

    /// The first offset not yet fully acknowledged (what to commit).
    fn next_commit(&self) -> Option<i64> {
        self.entries.front().map(|e| e.offset).or(self.done_upto)
    }

    /// The offset after the last record read (where reading resumes).
    pub fn next_offset(&self) -> Option<i64> {
        self.entries.back().map(|e| e.offset + 1).or(self.done_upto)
    }

    /// Records read and not yet fully acknowledged.
    pub fn in_flight(&self) -> usize {
        self.entries.len()
    }

    /// Where the entry of `offset` is, if it is still tracked.
    fn index_of(&self, offset: i64) -> Option<usize> {
        self.entries
            .binary_search_by_key(&offset, |e| e.offset)
            .ok()
    }
}

/// All trackers of this instance, by slot.
#[derive(Debug)]
pub struct Trackers {
    slots: HashMap<u32, Tracker>,
    by_partition: HashMap<(Role, i32), u32>,
    next_slot: u32,
    in_flight: usize,
    epoch: Instant,
}

impl Default for Trackers {
    fn default() -> Self {
        Trackers {
            slots: HashMap::new(),
            by_partition: HashMap::new(),
            next_slot: 0,
            in_flight: 0,
            epoch: Instant::now(),
        }
    }
}

impl Trackers {
    /// Starts tracking a partition; returns its slot.
    pub fn open(&mut self, role: Role, topic: Arc<str>, partition: i32) -> u32 {
        if let Some(&slot) = self.by_partition.get(&(role, partition)) {
            return slot;
        }
        let slot = self.next_slot;
        self.next_slot = (self.next_slot + 1) % (1 << (64 - OFFSET_BITS));
        self.slots.insert(
            slot,
            Tracker {
                role,
                topic,
                partition,
                entries: VecDeque::new(),
                done_upto: None,
                last_sent: None,
            },
        );
        self.by_partition.insert((role, partition), slot);
        slot
    }

    /// Stops tracking a partition.
    pub fn close(&mut self, role: Role, partition: i32) -> Option<Tracker> {
        let slot = self.by_partition.remove(&(role, partition))?;
        let t = self.slots.remove(&slot)?;
        self.in_flight -= t.entries.len();
        Some(t)
    }

    pub fn slot(&self, role: Role, partition: i32) -> Option<u32> {
        self.by_partition.get(&(role, partition)).copied()
    }

    pub fn get(&self, role: Role, partition: i32) -> Option<&Tracker> {
        self.slots.get(&self.slot(role, partition)?)
    }

    /// Where the ticket's record came from.
    pub fn origin(&self, t: Ticket) -> Option<(&Tracker, i64)> {
        let (slot, offset) = unpack(t);
        self.slots.get(&slot).map(|tr| (tr, offset))
    }

    /// Registers a record read at `now`, with one guard hold.
    pub fn begin(
        &mut self,
        slot: u32,
        offset: i64,
        timestamp_ms: Option<i64>,
        now: Instant,
    ) -> Option<Ticket> {
        let read_us = self.micros(now);
        let t = self.slots.get_mut(&slot)?;
        if t.next_offset().is_some_and(|next| offset < next) {
            // Read before (a seek back after an error, a resumption's
            // rewind, records the client had fetched before a seek): each
            // offset is processed once per assignment, also after it was
            // acknowledged and is no longer tracked.
            return None;
        }
        t.entries.push_back(Entry {
            offset,
            holds: 1,
            timestamp_ms,
            read_us,
        });
        self.in_flight += 1;
        Some(ticket(slot, offset))
    }

    fn micros(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX)
    }

    /// How long ago (at `now`) the ticket's record was read; `None` once the
    /// record is no longer tracked.
    pub fn since_read(&self, t: Ticket, now: Instant) -> Option<Duration> {
        let (slot, offset) = unpack(t);
        let tr = self.slots.get(&slot)?;
        let read = tr.entries.get(tr.index_of(offset)?)?.read_us;
        Some(Duration::from_micros(self.micros(now).saturating_sub(read)))
    }

    /// Adds `n` holds to a record.
    pub fn hold(&mut self, t: Ticket, n: usize) {
        if let Some(e) = self.entry(t) {
            e.holds += n as u32;
        }
    }

    /// Releases one hold; returns the record's timestamp when it was found.
    pub fn release(&mut self, t: Ticket) -> Option<Option<i64>> {
        let (slot, offset) = unpack(t);
        let tr = self.slots.get_mut(&slot)?;
        let idx = tr.index_of(offset)?;
        let e = &mut tr.entries[idx];
        e.holds = e.holds.saturating_sub(1);
        let ts = e.timestamp_ms;
        if idx == 0 && e.holds == 0 {
            let before = tr.entries.len();
            tr.pop_done();
            self.in_flight -= before - tr.entries.len();
        }
        Some(ts)
    }

    fn entry(&mut self, t: Ticket) -> Option<&mut Entry> {
        let (slot, offset) = unpack(t);
        let tr = self.slots.get_mut(&slot)?;
        let idx = tr.index_of(offset)?;
        tr.entries.get_mut(idx)
    }

    /// Commit points that moved since the last call: (topic, partition, offset).
    pub fn take_commit_points(&mut self) -> Vec<(Arc<str>, i32, i64)> {
        let mut v = Vec::new();
        for t in self.slots.values_mut() {
            if let Some(next) = t.next_commit() {
                if t.last_sent != Some(next) {
                    t.last_sent = Some(next);
                    v.push((t.topic.clone(), t.partition, next));
                }
            }
        }
        v
    }

    /// A commit of this partition's point failed: send it again at the next
    /// [`Trackers::take_commit_points`] even if it did not move (at the end
    /// of a stream it would otherwise never be committed).
    pub fn commit_failed(&mut self, role: Role, partition: i32, offset: i64) {
        let Some(slot) = self.slot(role, partition) else {
            return;
        };
        if let Some(t) = self.slots.get_mut(&slot) {
            if t.last_sent == Some(offset) {
                t.last_sent = None;
            }
        }
    }

    /// Commit point of one partition, if anything was processed.
    pub fn commit_point(&self, role: Role, partition: i32) -> Option<i64> {
        self.get(role, partition)?.next_commit()
    }

    /// Input records read and not yet fully acknowledged, all partitions.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Records in flight for one partition.
    pub fn in_flight_of(&self, role: Role, partition: i32) -> usize {
        self.get(role, partition).map_or(0, Tracker::in_flight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (Trackers, u32) {
        let mut t = Trackers::default();
        let s = t.open(Role::Input, Arc::from("in"), 0);
        (t, s)
    }

    #[test]
    fn commit_point_waits_for_the_oldest_held_record() {
        let (mut t, s) = setup();
        let a = t.begin(s, 10, None, Instant::now()).unwrap();
        let b = t.begin(s, 11, None, Instant::now()).unwrap();
        t.hold(a, 1); // one event of record 10 is buffered
        t.release(a); // guard
        t.release(b); // record 11 had no events
        assert_eq!(t.commit_point(Role::Input, 0), Some(10));
        assert_eq!(t.in_flight(), 2);
        t.release(a); // the buffered event was delivered
        assert_eq!(t.commit_point(Role::Input, 0), Some(12));
        assert_eq!(t.in_flight(), 0);
        assert_eq!(t.take_commit_points(), vec![(Arc::from("in"), 0, 12)]);
        assert!(
            t.take_commit_points().is_empty(),
            "unchanged points are not re-sent"
        );
    }

    #[test]
    fn a_failed_commit_is_sent_again_though_its_point_did_not_move() {
        let (mut t, s) = setup();
        let a = t.begin(s, 10, None, Instant::now()).unwrap();
        t.release(a);
        assert_eq!(t.take_commit_points(), vec![(Arc::from("in"), 0, 11)]);
        // A failure of an older point (already superseded) changes nothing.
        t.commit_failed(Role::Input, 0, 7);
        assert!(t.take_commit_points().is_empty());
        t.commit_failed(Role::Input, 0, 11);
        assert_eq!(t.take_commit_points(), vec![(Arc::from("in"), 0, 11)]);
        assert!(t.take_commit_points().is_empty());
        // Unknown partitions are ignored.
        t.commit_failed(Role::Repartition, 0, 11);
    }

    #[test]
    fn tickets_round_trip_and_stale_tickets_are_ignored() {
        let (mut t, s) = setup();
        let a = t.begin(s, 5, Some(77), Instant::now()).unwrap();
        assert_eq!(t.origin(a).map(|(tr, o)| (tr.partition, o)), Some((0, 5)));
        assert_eq!(t.release(a), Some(Some(77)));
        assert_eq!(t.release(a), None, "already completed");
        t.close(Role::Input, 0);
        assert_eq!(t.release(ticket(s, 6)), None);
        assert!(t.begin(s, 7, None, Instant::now()).is_none());
    }

    #[test]
    fn time_since_read_is_measured_from_the_read_until_the_record_is_done() {
        let (mut t, s) = setup();
        let read = Instant::now();
        let a = t.begin(s, 4, None, read).unwrap();
        t.hold(a, 1);
        t.release(a); // guard; the event still holds it
        let later = read + Duration::from_millis(250);
        let d = t.since_read(a, later).unwrap();
        assert!(
            d >= Duration::from_millis(249) && d <= Duration::from_millis(251),
            "{d:?}"
        );
        assert_eq!(t.since_read(a, read), Some(Duration::ZERO));
        t.release(a);
        assert_eq!(t.since_read(a, later), None, "done records are forgotten");
    }

    #[test]
    fn redelivered_offsets_are_tracked_once() {
        let (mut t, s) = setup();
        assert!(t.begin(s, 3, None, Instant::now()).is_some());
        assert!(t.begin(s, 3, None, Instant::now()).is_none());
        assert_eq!(t.in_flight(), 1);
    }

    #[test]
    fn an_offset_acknowledged_and_forgotten_is_not_processed_again() {
        // A record the client delivers again after the first delivery was
        // done with (a resumption's rewind, a seek back) is not tracked
        // again: processing it twice would count it twice in a stage whose
        // state is not a dedup set.
        let (mut t, s) = setup();
        let a = t.begin(s, 3, None, Instant::now()).expect("first delivery");
        t.release(a);
        assert_eq!(t.in_flight(), 0, "acknowledged and forgotten");
        assert!(t.begin(s, 3, None, Instant::now()).is_none());
        assert!(t.begin(s, 2, None, Instant::now()).is_none());
        assert!(t.begin(s, 4, None, Instant::now()).is_some());
    }
}
