//! A gold task's watermark: the lowest event-time progress among the input
//! partitions that can still send it contributions.
//!
//! A task aggregates the queues whose home is its partition; their
//! contributions come from every input partition (each interaction's legs
//! are built where silver put the interaction, then re-keyed by queue). So
//! the watermark is the minimum of this partition's own progress (the
//! greatest event time read from its inputs) and every other partition's,
//! as their watermark markers announce it on the repartition topic, which
//! carries them after the contributions they cover.
//!
//! - A partition that is idle (caught up and quiet) does not hold it.
//! - A partition not heard from holds it until the silence limit, counted
//!   from the task's start (an upstream without an owner must not stop
//!   every window).
//! - When every partition is idle, the watermark is the greatest progress
//!   any of them announced: everything read is in, so windows before it
//!   can close.

use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
struct Upstream {
    event_time_ms: i64,
    idle: bool,
    received: Instant,
}

/// Progress of one task's input partition and of its upstreams.
#[derive(Debug)]
pub struct Progress {
    partition: i32,
    partitions: i32,
    silence_limit: Duration,
    started: Instant,
    own_max: Option<i64>,
    last_input: Option<Instant>,
    at_end: bool,
    held_back: bool,
    others: HashMap<i32, Upstream>,
}

impl Progress {
    pub fn new(partition: i32, partitions: i32, silence_limit: Duration, now: Instant) -> Self {
        Progress {
            partition,
            partitions,
            silence_limit,
            started: now,
            own_max: None,
            last_input: None,
            at_end: false,
            held_back: false,
            others: HashMap::new(),
        }
    }

    /// An event of this partition's inputs was read.
    pub fn note_input(&mut self, event_time_ms: i64, now: Instant) {
        self.own_max = Some(self.own_max.map_or(event_time_ms, |m| m.max(event_time_ms)));
        self.last_input = Some(now);
        self.at_end = false;
    }

    /// A record that holds no event time was read (it still means the
    /// partition is not quiet).
    pub fn note_record(&mut self, now: Instant) {
        self.last_input = Some(now);
        self.at_end = false;
    }

    /// The greatest event time read from this partition's inputs.
    pub fn own_max(&self) -> Option<i64> {
        self.own_max
    }

    /// The progress of a restored checkpoint: what was read before it is
    /// not read again, yet it is this partition's progress.
    pub fn restore_own(&mut self, event_time_ms: i64) {
        self.own_max = Some(self.own_max.map_or(event_time_ms, |m| m.max(event_time_ms)));
    }

    pub fn mark_end_of_partition(&mut self) {
        self.at_end = true;
    }

    pub fn set_held_back(&mut self, held: bool) {
        self.held_back = held;
    }

    pub fn held_back(&self) -> bool {
        self.held_back
    }

    /// A marker of upstream partition `from`.
    pub fn on_marker(&mut self, from: i32, event_time_ms: i64, idle: bool, now: Instant) {
        let u = self.others.entry(from).or_insert(Upstream {
            event_time_ms,
            idle,
            received: now,
        });
        u.event_time_ms = u.event_time_ms.max(event_time_ms);
        u.idle = idle;
        u.received = now;
    }

    /// This partition's progress for its markers: the greatest event time
    /// read, and whether it is idle (caught up and quiet for `idle`, or
    /// quiet for ten times that). An empty partition at its end is idle at
    /// once.
    pub fn progress(&self, now: Instant, idle: Duration) -> Option<(i64, bool)> {
        let quiet_for = |d: Duration| {
            self.last_input
                .is_none_or(|t| now.saturating_duration_since(t) >= d)
        };
        match self.own_max {
            None => (self.at_end && !self.held_back).then_some((i64::MIN, true)),
            Some(m) => {
                let is_idle =
                    !self.held_back && ((self.at_end && quiet_for(idle)) || quiet_for(idle * 10));
                Some((m, is_idle))
            }
        }
    }

    /// The watermark (`None`: nothing read anywhere yet).
    pub fn watermark(&self, now: Instant, idle: Duration) -> Option<i64> {
        let silent_since_start = now.saturating_duration_since(self.started) >= self.silence_limit;
        let mut bound: Option<i64> = None;
        let mut hold = |b: i64| bound = Some(bound.map_or(b, |c: i64| c.min(b)));
        match self.progress(now, idle) {
            Some((_, true)) => {}
            Some((m, false)) => hold(m),
            None if silent_since_start || self.at_end => {}
            None => hold(i64::MIN),
        }
        for q in (0..self.partitions).filter(|q| *q != self.partition) {
            match self.others.get(&q) {
                Some(u) if u.idle => {}
                Some(u) if now.saturating_duration_since(u.received) >= self.silence_limit => {}
                Some(u) => hold(u.event_time_ms),
                None if silent_since_start => {}
                None => hold(i64::MIN),
            }
        }
        match bound {
            Some(b) if b == i64::MIN => None,
            Some(b) => Some(b),
            // Every partition idle: all that was read is in.
            None => self
                .others
                .values()
                .map(|u| u.event_time_ms)
                .chain(self.own_max)
                .filter(|t| *t != i64::MIN)
                .max(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(2);
    const LIMIT: Duration = Duration::from_secs(30);

    #[test]
    fn a_single_partition_follows_its_own_input() {
        let t0 = Instant::now();
        let mut p = Progress::new(0, 1, LIMIT, t0);
        assert_eq!(p.watermark(t0, IDLE), None);
        p.note_input(1_000, t0);
        p.note_input(900, t0);
        assert_eq!(p.watermark(t0, IDLE), Some(1_000));
        assert_eq!(p.progress(t0, IDLE), Some((1_000, false)));
    }

    #[test]
    fn the_slowest_upstream_holds_and_an_unheard_one_holds_until_the_limit() {
        let t0 = Instant::now();
        let mut p = Progress::new(0, 3, LIMIT, t0);
        p.note_input(10_000, t0);
        p.on_marker(1, 4_000, false, t0);
        assert_eq!(p.watermark(t0, IDLE), None, "partition 2 not heard from");
        p.on_marker(2, 7_000, false, t0);
        assert_eq!(p.watermark(t0, IDLE), Some(4_000));
        p.on_marker(1, 3_000, false, t0);
        assert_eq!(p.watermark(t0, IDLE), Some(4_000), "never back");
        p.on_marker(1, 0, true, t0);
        assert_eq!(p.watermark(t0, IDLE), Some(7_000), "idle does not hold");
        let late = t0 + LIMIT + Duration::from_secs(1);
        p.note_input(10_000, late);
        assert_eq!(
            p.watermark(late, IDLE),
            Some(10_000),
            "silent upstreams stop holding"
        );
        let q = Progress::new(0, 2, LIMIT, t0);
        assert_eq!(q.watermark(t0 + LIMIT, IDLE), None);
    }

    #[test]
    fn when_every_partition_is_idle_the_greatest_progress_counts() {
        let t0 = Instant::now();
        let mut p = Progress::new(0, 2, LIMIT, t0);
        p.note_input(5_000, t0);
        p.mark_end_of_partition();
        p.on_marker(1, 8_000, true, t0);
        let later = t0 + IDLE;
        assert_eq!(p.progress(later, IDLE), Some((5_000, true)));
        assert_eq!(p.watermark(later, IDLE), Some(8_000));
        p.set_held_back(true);
        assert_eq!(
            p.progress(later, IDLE),
            Some((5_000, false)),
            "held back is not idle"
        );
    }
}
