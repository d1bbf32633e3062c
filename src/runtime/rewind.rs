//! Resuming a partition at an offset without trusting the broker to start
//! a fetch in the middle of a record batch.
//!
//! Kafka answers a fetch at offset `o` with the batch that contains `o`, and
//! the client drops the records before `o`. Tansu 0.6.0 instead answers with
//! the first batch whose base offset is at or after `o`, so a consumer that
//! starts inside a batch silently skips the rest of it (a committed offset,
//! or an output offset a changelog covers, is usually inside a batch).
//!
//! [`Rewind`] makes resumption correct on both: the consumer starts a little
//! before the target, the records before the target are skipped, and if the
//! first record delivered already lies beyond the target (the broker skipped
//! part of a batch) it starts again from further back. Reading a few records
//! twice is harmless: they are not processed.
//!
//! When the start lies inside the partition's *last* batch, Tansu 0.6.0
//! answers every fetch with nothing and librdkafka reports no end of
//! partition either (its fetch position is below the high watermark): the
//! consumer waits until a new batch arrives, forever at the end of a stream.
//! So a resumption that has seen nothing for [`STALL_AFTER`] also starts
//! again from further back ([`Rewind::stalled`]).

/// How many records before the target a resumption starts at first.
pub const INITIAL_WINDOW: i64 = 512;

/// How long a resumption may see no record before it is taken for a fetch
/// the broker answers with nothing. Going back without need only re-reads
/// a few records.
pub const STALL_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// What to do with a record of a partition being resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// At or after the target: process it (the resumption is complete).
    Process,
    /// Before the target (already processed), or delivered while a new seek
    /// is pending: drop it.
    Skip,
    /// The broker skipped records up to the target: seek to this offset and
    /// call [`Rewind::seeked`].
    Reseek(i64),
}

/// Resumption of one partition at `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewind {
    target: i64,
    from: i64,
    /// A record at or before the target was delivered: nothing is skipped.
    confirmed: bool,
    /// A reseek was asked for and has not been done yet.
    pending: bool,
    /// When reading started (or restarted) from `from`.
    since: std::time::Instant,
}

impl Rewind {
    /// Resume at `target`, starting `window` records earlier.
    pub fn new(target: i64, window: i64) -> Self {
        Self {
            target,
            from: target.saturating_sub(window.max(1)).max(0),
            confirmed: false,
            pending: false,
            since: std::time::Instant::now(),
        }
    }

    /// Where to start (or restart) reading.
    pub fn start(&self) -> i64 {
        self.from
    }

    pub fn target(&self) -> i64 {
        self.target
    }

    /// The reseek asked for by [`Step::Reseek`] was done.
    pub fn seeked(&mut self) {
        self.pending = false;
        self.since = std::time::Instant::now();
    }

    /// Decides about the record at `offset`.
    pub fn step(&mut self, offset: i64) -> Step {
        if self.pending {
            return Step::Skip;
        }
        if !self.confirmed {
            if offset > self.target && self.from > 0 {
                // Records up to the target were skipped by the broker (or do
                // not exist: then going back to the beginning settles it).
                return self.further_back();
            }
            self.confirmed = true;
        }
        if offset < self.target {
            Step::Skip
        } else {
            Step::Process
        }
    }

    /// The consumer reached the end of the partition before any record was
    /// delivered: when the start was inside the last batch, the broker may
    /// have skipped all of it.
    pub fn end_of_partition(&mut self) -> Step {
        if self.pending || self.confirmed || self.from == 0 {
            return Step::Skip;
        }
        self.further_back()
    }

    /// Called while nothing arrives: no record since the start (or the
    /// last reseek) for `after` means the broker answers the fetch with
    /// nothing (a start inside the last batch), so start further back.
    pub fn stalled(&mut self, now: std::time::Instant, after: std::time::Duration) -> Step {
        if now.saturating_duration_since(self.since) < after {
            return Step::Skip;
        }
        self.end_of_partition()
    }

    fn further_back(&mut self) -> Step {
        let back = (self.target - self.from).max(1).saturating_mul(2);
        self.from = self.target.saturating_sub(back).max(0);
        self.pending = true;
        Step::Reseek(self.from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_what_precedes_the_target_then_processes() {
        let mut r = Rewind::new(1_000, 512);
        assert_eq!(r.start(), 488);
        assert_eq!(r.step(488), Step::Skip);
        assert_eq!(r.step(999), Step::Skip);
        assert_eq!(r.step(1_000), Step::Process);
        assert_eq!(r.step(1_001), Step::Process);
    }

    #[test]
    fn a_first_record_beyond_the_target_goes_further_back() {
        // Tansu 0.6.0: a fetch at 488 returned the batch starting at 1_003,
        // so 1_000..1_003 were skipped.
        let mut r = Rewind::new(1_000, 512);
        assert_eq!(r.step(1_003), Step::Reseek(0));
        // Records from the old fetch are dropped until the seek is done.
        assert_eq!(r.step(1_004), Step::Skip);
        r.seeked();
        assert_eq!(r.step(0), Step::Skip);
        assert_eq!(r.step(1_000), Step::Process);
    }

    #[test]
    fn window_doubles_until_the_beginning() {
        let mut r = Rewind::new(10_000, 100);
        assert_eq!(r.step(10_001), Step::Reseek(9_800));
        r.seeked();
        assert_eq!(r.step(10_001), Step::Reseek(9_600));
        r.seeked();
        assert_eq!(r.step(9_700), Step::Skip);
        assert_eq!(r.step(10_001), Step::Process);
    }

    #[test]
    fn end_of_partition_before_any_record_goes_further_back() {
        let mut r = Rewind::new(1_000, 512);
        assert_eq!(r.end_of_partition(), Step::Reseek(0));
        r.seeked();
        // From the beginning an empty read is the truth.
        assert_eq!(r.end_of_partition(), Step::Skip);
        assert_eq!(r.step(3), Step::Skip);
        assert_eq!(r.end_of_partition(), Step::Skip);
    }

    #[test]
    fn a_resumption_that_sees_nothing_goes_further_back() {
        use std::time::{Duration, Instant};
        let after = Duration::from_secs(2);
        let mut r = Rewind::new(1_000, 512);
        let t0 = Instant::now();
        assert_eq!(r.stalled(t0, after), Step::Skip);
        assert_eq!(r.stalled(t0 + after * 2, after), Step::Reseek(0));
        r.seeked();
        // From the beginning nothing is skipped: waiting is right.
        assert_eq!(r.stalled(Instant::now() + after * 2, after), Step::Skip);
        // Once a record confirmed the start, silence is just an idle input.
        let mut r = Rewind::new(10_000, 512);
        assert_eq!(r.step(9_600), Step::Skip);
        assert_eq!(r.stalled(Instant::now() + after * 2, after), Step::Skip);
    }

    #[test]
    fn from_the_beginning_a_gap_is_real() {
        // Nothing at or before the target exists (retention, compaction, a
        // transaction marker at the target): accept what comes.
        let mut r = Rewind::new(5, 512);
        assert_eq!(r.start(), 0);
        assert_eq!(r.step(7), Step::Process);
    }

    #[test]
    fn the_target_itself_is_processed() {
        let mut r = Rewind::new(0, 512);
        assert_eq!(r.start(), 0);
        assert_eq!(r.step(0), Step::Process);
    }
}
