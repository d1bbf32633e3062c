//! Event-time plausibility: events whose time cannot be true are rejected
//! before they reach the watermark.
//!
//! An event cannot have been published before it happened, so an event time
//! far ahead of its record's broker timestamp is a unit bug (microseconds
//! written as milliseconds), a device with a wrong clock or a corrupted
//! retry. Trusting it would move the partition's watermark into the future
//! and make every later event on the partition late. Two bounds, both
//! topology settings of the `decode` operator:
//!
//! * `max_future_skew` (default 1 h, `"off"` disables it): an event more than
//!   this far ahead of its record's timestamp is rejected. A record without a
//!   timestamp is not checked against this bound.
//! * `min_event_time` (default `2000-01-01T00:00:00Z`, `"off"` disables it):
//!   an event before this instant is rejected (Genesys Cloud has no such
//!   events; a time near the epoch is a seconds/milliseconds mix-up).
//!
//! Rejected events go to the dead-letter topic with class
//! [`IMPLAUSIBLE_EVENT_TIME`]; the message names the skew, never the value's
//! context. The check is two comparisons per event.

use std::time::Duration;

use crate::model::format_iso_ms;

/// Dead-letter class (and `cxstream_dead_letters_total` label) of an event
/// rejected here.
pub const IMPLAUSIBLE_EVENT_TIME: &str = "implausible_event_time";

/// 2000-01-01T00:00:00Z in epoch milliseconds.
pub const DEFAULT_MIN_EVENT_TIME_MS: i64 = 946_684_800_000;

/// The bounds; `None` disables a bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTimeBounds {
    pub max_future_skew: Option<Duration>,
    pub min_event_time_ms: Option<i64>,
}

impl Default for EventTimeBounds {
    fn default() -> Self {
        EventTimeBounds {
            max_future_skew: Some(Duration::from_secs(3600)),
            min_event_time_ms: Some(DEFAULT_MIN_EVENT_TIME_MS),
        }
    }
}

impl EventTimeBounds {
    /// No bound at all (what decoding alone accepts).
    pub const OFF: EventTimeBounds = EventTimeBounds {
        max_future_skew: None,
        min_event_time_ms: None,
    };

    /// `Err(message)` when `event_time_ms` is implausible for a record with
    /// broker timestamp `record_ms`.
    pub fn check(&self, event_time_ms: i64, record_ms: Option<i64>) -> Result<(), String> {
        if let (Some(skew), Some(rec)) = (self.max_future_skew, record_ms) {
            let limit = i64::try_from(skew.as_millis()).unwrap_or(i64::MAX);
            let ahead = event_time_ms.saturating_sub(rec);
            if ahead > limit {
                return Err(format!(
                    "event time is {} ahead of the record's broker timestamp (max_future_skew {})",
                    human_ms(ahead),
                    humantime::format_duration(skew)
                ));
            }
        }
        if let Some(min) = self.min_event_time_ms {
            if event_time_ms < min {
                return Err(format!(
                    "event time is {} before min_event_time {}",
                    human_ms(min.saturating_sub(event_time_ms)),
                    format_iso_ms(min)
                ));
            }
        }
        Ok(())
    }
}

/// A skew for people: whole seconds (or milliseconds below one second),
/// e.g. "3h 12m 5s".
fn human_ms(ms: i64) -> String {
    let ms = u64::try_from(ms).unwrap_or(0);
    let d = if ms >= 1000 {
        Duration::from_secs(ms / 1000)
    } else {
        Duration::from_millis(ms)
    };
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REC: i64 = 1_767_261_600_000; // 2026-01-01T10:00:00Z

    #[test]
    fn an_event_within_the_skew_passes_and_one_beyond_is_named_by_its_skew() {
        let b = EventTimeBounds::default();
        assert_eq!(b.check(REC - 5_000, Some(REC)), Ok(()));
        assert_eq!(b.check(REC + 3_600_000, Some(REC)), Ok(()), "exactly 1 h");
        let e = b.check(REC + 3_600_001 + 7_200_000, Some(REC)).unwrap_err();
        assert_eq!(
            e,
            "event time is 3h ahead of the record's broker timestamp (max_future_skew 1h)"
        );
        // 100 years ahead, and the year 10000 (as far as i64 goes).
        assert!(b.check(REC + 100 * 365 * 86_400_000, Some(REC)).is_err());
        assert!(b.check(i64::MAX, Some(REC)).is_err());
    }

    #[test]
    fn the_message_never_quotes_the_event_time_itself() {
        let b = EventTimeBounds::default();
        let t = REC + 86_400_000;
        let e = b.check(t, Some(REC)).unwrap_err();
        assert!(!e.contains(&format_iso_ms(t)), "{e}");
        assert!(!e.contains(&t.to_string()), "{e}");
    }

    #[test]
    fn an_event_before_the_lower_bound_is_rejected() {
        let b = EventTimeBounds::default();
        assert_eq!(b.check(DEFAULT_MIN_EVENT_TIME_MS, Some(REC)), Ok(()));
        let e = b.check(1_767_261_600, Some(REC)).unwrap_err(); // seconds as ms
        assert!(
            e.ends_with("before min_event_time 2000-01-01T00:00:00.000Z"),
            "{e}"
        );
        assert!(b.check(i64::MIN, None).is_err());
    }

    #[test]
    fn a_record_without_timestamp_is_checked_against_the_lower_bound_only() {
        let b = EventTimeBounds::default();
        assert_eq!(b.check(i64::MAX, None), Ok(()));
    }

    #[test]
    fn off_accepts_everything() {
        for t in [i64::MIN, 0, REC, i64::MAX] {
            assert_eq!(EventTimeBounds::OFF.check(t, Some(REC)), Ok(()));
        }
        let only_skew = EventTimeBounds {
            min_event_time_ms: None,
            ..EventTimeBounds::default()
        };
        assert_eq!(only_skew.check(0, Some(REC)), Ok(()));
    }

    #[test]
    fn skews_are_formatted_for_people() {
        assert_eq!(human_ms(250), "250ms");
        assert_eq!(human_ms(3_725_400), "1h 2m 5s");
        assert_eq!(human_ms(-5), "0s");
    }
}
