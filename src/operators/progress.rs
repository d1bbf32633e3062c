//! Event-time progress that a handful of records cannot drag ahead.
//!
//! A partition's watermark follows the greatest event time it has read. One
//! record with a wrong clock (still within the plausibility bounds, see
//! [`super::plausibility`]) would move it far into the future, and every
//! later event of the partition would be released unordered or go late.
//! [`Progress`] is that greatest event time with a quorum rule:
//!
//! * an event at most `jump` ahead of the current level moves the level at
//!   once (the steady state: no added latency, one comparison);
//! * an event more than `jump` ahead is held as a candidate. The level moves
//!   there only when `quorum` candidates within the last [`WINDOW`] events
//!   agree, and then to the lowest of them (the time `quorum` events have
//!   all reached). A real gap in traffic costs `quorum − 1` events of delay;
//!   fewer than `quorum` outliers never move the level by more than `jump`.
//! * the first event sets the level (there is nothing to compare it with).
//!
//! Candidates that expire (or are displaced by greater ones) without being
//! confirmed are counted in [`Progress::unconfirmed`]: the
//! `cxstream_watermark_outliers_total` metric. `quorum = 1` is the plain
//! maximum.

use std::time::Duration;

/// Events after which an unconfirmed candidate expires.
pub const WINDOW: u64 = 1_000;

/// The quorum rule's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressSettings {
    /// Candidates that must agree before the level jumps (1: no rule).
    pub quorum: usize,
    /// How far ahead of the level an event may be and still move it alone.
    pub jump: Duration,
}

impl Default for ProgressSettings {
    fn default() -> Self {
        ProgressSettings {
            quorum: 3,
            jump: Duration::from_secs(60),
        }
    }
}

/// The guarded greatest event time. See the module docs.
#[derive(Debug, Clone)]
pub struct Progress {
    quorum: usize,
    jump_ms: i64,
    level: Option<i64>,
    /// Fewer than `quorum` candidates (time, sequence number).
    candidates: Vec<(i64, u64)>,
    seq: u64,
    unconfirmed: u64,
}

impl Progress {
    pub fn new(settings: ProgressSettings) -> Self {
        Progress {
            quorum: settings.quorum.max(1),
            jump_ms: i64::try_from(settings.jump.as_millis()).unwrap_or(i64::MAX),
            level: None,
            candidates: Vec::new(),
            seq: 0,
            unconfirmed: 0,
        }
    }

    /// The level: the greatest event time trusted so far.
    pub fn level(&self) -> Option<i64> {
        self.level
    }

    /// Candidates dropped without ever moving the level.
    pub fn unconfirmed(&self) -> u64 {
        self.unconfirmed
    }

    /// Takes one event time; returns the level after it.
    #[inline]
    pub fn observe(&mut self, t: i64) -> Option<i64> {
        self.seq += 1;
        let level = match self.level {
            None => {
                self.level = Some(t);
                return self.level;
            }
            Some(l) => l,
        };
        if !self.candidates.is_empty() {
            self.expire(level);
        }
        if t <= level.saturating_add(self.jump_ms) || self.quorum == 1 {
            if t > level {
                self.level = Some(t);
            }
            return self.level;
        }
        self.candidate(t);
        self.level
    }

    /// Drops candidates the level has reached (real progress got there:
    /// not outliers) and those older than [`WINDOW`] events while still
    /// ahead (outliers: counted).
    fn expire(&mut self, level: i64) {
        let seq = self.seq;
        let mut expired = 0;
        self.candidates.retain(|&(t, s)| {
            if t <= level {
                false
            } else if s + WINDOW <= seq {
                expired += 1;
                false
            } else {
                true
            }
        });
        self.unconfirmed += expired;
    }

    /// Holds `t` as a candidate; `quorum` of them move the level to the
    /// lowest (the list never stays full: reaching the quorum empties it of
    /// everything up to the new level).
    #[cold]
    fn candidate(&mut self, t: i64) {
        self.candidates.push((t, self.seq));
        if self.candidates.len() >= self.quorum {
            if let Some(new) = self.candidates.iter().map(|c| c.0).min() {
                self.level = Some(new);
                self.candidates.retain(|&(c, _)| c > new);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIN: i64 = 60_000;

    fn p(quorum: usize) -> Progress {
        Progress::new(ProgressSettings {
            quorum,
            jump: Duration::from_secs(60),
        })
    }

    #[test]
    fn in_order_and_small_steps_move_the_level_at_once() {
        let mut g = p(3);
        assert_eq!(g.observe(1_000), Some(1_000), "the first event sets it");
        assert_eq!(g.observe(900), Some(1_000), "never goes back");
        assert_eq!(
            g.observe(1_000 + MIN),
            Some(1_000 + MIN),
            "exactly one jump"
        );
        assert_eq!(g.unconfirmed(), 0);
    }

    #[test]
    fn a_few_outliers_never_move_the_level_and_expire_as_unconfirmed() {
        let mut g = p(3);
        g.observe(0);
        let far = 40 * MIN;
        assert_eq!(g.observe(far), Some(0));
        assert_eq!(g.observe(far + 1), Some(0), "two outliers are not a quorum");
        for t in 1..=(WINDOW as i64) {
            assert!(
                g.observe(t).is_some_and(|l| l <= t),
                "level follows the real events"
            );
        }
        assert_eq!(g.level(), Some(WINDOW as i64));
        assert_eq!(g.unconfirmed(), 2, "both expired without moving it");
        // Once expired they no longer count towards a quorum.
        assert_eq!(g.observe(far + 2), Some(WINDOW as i64));
    }

    #[test]
    fn a_real_gap_is_confirmed_by_the_quorum_and_lands_on_the_lowest_agreeing_time() {
        let mut g = p(3);
        g.observe(0);
        let gap = 10 * MIN;
        assert_eq!(g.observe(gap + 30), Some(0));
        assert_eq!(g.observe(gap + 10), Some(0));
        assert_eq!(
            g.observe(gap + 20),
            Some(gap + 10),
            "three agree: lowest of them"
        );
        assert_eq!(g.observe(gap + 25), Some(gap + 25), "steady again");
        assert_eq!(g.unconfirmed(), 0);
    }

    #[test]
    fn the_level_lands_on_the_lowest_of_the_agreeing_candidates() {
        let mut g = p(2);
        g.observe(0);
        g.observe(5 * MIN);
        g.observe(100 * MIN);
        assert_eq!(g.level(), Some(5 * MIN), "2 of 2 agree on 5 min");
        g.observe(6 * MIN);
        assert_eq!(g.level(), Some(6 * MIN), "within one jump: at once");
        let mut g = p(3);
        g.observe(0);
        g.observe(5 * MIN);
        g.observe(6 * MIN);
        g.observe(7 * MIN);
        assert_eq!(g.level(), Some(5 * MIN));
    }

    #[test]
    fn a_candidate_the_real_events_catch_up_with_is_no_outlier() {
        let mut g = p(3);
        g.observe(0);
        assert_eq!(g.observe(MIN + 10), Some(0), "a jump: held");
        // Real progress in small steps passes it.
        for t in (1_000..=MIN + 20).step_by(1_000) {
            g.observe(t);
        }
        g.observe(MIN + 20);
        assert_eq!(g.level(), Some(MIN + 20));
        assert_eq!(g.unconfirmed(), 0, "caught up with, not an outlier");
    }

    #[test]
    fn quorum_one_is_the_plain_maximum() {
        let mut g = p(1);
        for t in [5, 3, 1_000 * MIN, 7] {
            g.observe(t);
        }
        assert_eq!(g.level(), Some(1_000 * MIN));
    }

    proptest! {
        /// Against the rule's specification: the level never exceeds what
        /// `quorum` events within the window, or one event within `jump` of
        /// the previous level, vouch for; and it is never below the plain
        /// maximum of the events that were each within `jump` of the level
        /// before them.
        #[test]
        fn fewer_than_a_quorum_of_outliers_cannot_push_it_beyond_the_real_events(
            real in proptest::collection::vec(0i64..10_000_000, 1..300),
            outliers in proptest::collection::vec((0usize..300, 1i64..1_000_000_000), 0..2),
        ) {
            // Real events move forward in steps below one minute.
            let mut times: Vec<i64> = Vec::new();
            let mut t = 0i64;
            for step in &real {
                t += step % MIN;
                times.push(t);
            }
            let true_max = *times.iter().max().unwrap_or(&0);
            for (at, ahead) in &outliers {
                let at = (*at).clamp(1, times.len());
                times.insert(at, true_max + MIN + ahead);
            }
            let mut g = p(3);
            // (Never first: the first event sets the level.)
            for &t in &times {
                g.observe(t);
            }
            let level = g.level().unwrap_or(i64::MIN);
            // Two outliers (of two different times or not) are not a quorum.
            prop_assert!(level <= true_max + MIN, "level {level} vs real max {true_max}");
            prop_assert!(level >= true_max, "level {level} below the real max {true_max}");
        }
    }
}
