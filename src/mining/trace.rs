//! Cases out of the activity log, one partition at a time, without Kafka.
//!
//! The activity topic is keyed by case, so a case's records are all in one
//! partition, in the order the process stage wrote them, mixed with other
//! cases' records. [`Assembler`] collects each case's records until its
//! `Case Closed` marker, then keeps the case a little longer (`linger`
//! records of the same partition) so that a late activity written just after
//! the marker still joins it, and hands the case out as a [`Trace`]:
//! activities in event-time order (timestamp, then sequence), the marker's
//! figures beside them.
//!
//! Memory is what the partition's open cases hold plus the lingering ones:
//! bounded by how many cases are in flight, not by the log's length. An
//! activity of a case already handed out (later than the linger) becomes a
//! trace of its own with the same case id, marked [`Trace::continuation`]
//! and counted, never dropped.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::model::parse_iso_ms;
use crate::process::record::ActivityRecord;

/// The attribute that marks a `Case Closed` record, whatever the topology
/// renamed it to.
pub const CLOSED_BY: &str = "closed_by";

/// One activity, with its times parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub record: ActivityRecord,
    pub at_ms: i64,
    pub start_ms: Option<i64>,
}

/// One case's activities, in event-time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub case_id: String,
    pub steps: Vec<Step>,
    /// The `Case Closed` marker, if the case closed.
    pub closed: Option<Step>,
    /// Activities of a case that was already handed out.
    pub continuation: bool,
}

impl Trace {
    /// Event time of the first activity (its start, if it has one).
    pub fn first_ms(&self) -> Option<i64> {
        self.steps
            .iter()
            .map(|s| s.start_ms.unwrap_or(s.at_ms).min(s.at_ms))
            .min()
    }

    /// From the first activity to the last (or to the close).
    pub fn duration_ms(&self) -> i64 {
        let last = self
            .steps
            .iter()
            .map(|s| s.at_ms)
            .chain(self.closed.iter().map(|c| c.at_ms))
            .max();
        match (self.first_ms(), last) {
            (Some(f), Some(l)) => (l - f).max(0),
            _ => 0,
        }
    }
}

/// Why a record on the topic was not read as an activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unreadable {
    /// Not an activity record of this build (foreign data, another
    /// schema version).
    NotActivity,
    /// An activity record whose time is not ISO-8601.
    BadTime,
    /// A record without a value (a tombstone).
    Empty,
}

/// Reads one record's value.
pub fn read_step(value: Option<&[u8]>) -> Result<Step, Unreadable> {
    let value = value.ok_or(Unreadable::Empty)?;
    let record = ActivityRecord::decode(value).ok_or(Unreadable::NotActivity)?;
    let at_ms = parse_iso_ms(&record.timestamp).ok_or(Unreadable::BadTime)?;
    let start_ms = match &record.start_timestamp {
        Some(s) => Some(parse_iso_ms(s).ok_or(Unreadable::BadTime)?),
        None => None,
    };
    Ok(Step {
        record,
        at_ms,
        start_ms,
    })
}

#[derive(Debug, Default)]
struct Open {
    steps: Vec<Step>,
    closed: Option<Step>,
    continuation: bool,
}

/// The cases of one partition, assembled into traces.
#[derive(Debug)]
pub struct Assembler {
    linger: u64,
    /// Records read so far.
    read: u64,
    open: HashMap<String, Open>,
    /// (release after this many records, case) of closed cases.
    lingering: VecDeque<(u64, String)>,
    /// Cases handed out (their activities after that are continuations).
    released: HashSet<String>,
    continuations: u64,
}

impl Assembler {
    /// `linger`: records of the partition a closed case waits for a late
    /// activity before it is handed out.
    pub fn new(linger: u64) -> Self {
        Assembler {
            linger,
            read: 0,
            open: HashMap::new(),
            lingering: VecDeque::new(),
            released: HashSet::new(),
            continuations: 0,
        }
    }

    /// Activities that arrived after their case was handed out.
    pub fn continuations(&self) -> u64 {
        self.continuations
    }

    /// Cases held (open or lingering).
    pub fn held(&self) -> usize {
        self.open.len()
    }

    /// One activity of the partition; traces now complete go to `out`.
    pub fn push(&mut self, step: Step, out: &mut Vec<Trace>) {
        self.read += 1;
        let id = step.record.case_id.clone();
        let is_marker = step.record.attributes.contains_key(CLOSED_BY);
        let known = self.open.contains_key(&id);
        let case = self.open.entry(id.clone()).or_default();
        if !known && self.released.contains(&id) {
            case.continuation = true;
        }
        if case.continuation && !is_marker {
            self.continuations += 1;
        }
        if is_marker {
            if case.closed.is_none() {
                self.lingering.push_back((self.read + self.linger, id));
            }
            case.closed = Some(step);
        } else {
            case.steps.push(step);
        }
        while self
            .lingering
            .front()
            .is_some_and(|(until, _)| *until <= self.read)
        {
            if let Some((_, id)) = self.lingering.pop_front() {
                self.release(&id, out);
            }
        }
    }

    fn release(&mut self, id: &str, out: &mut Vec<Trace>) {
        let Some(mut case) = self.open.remove(id) else {
            return;
        };
        case.steps.sort_by_key(|s| (s.at_ms, s.record.sequence));
        self.released.insert(id.to_string());
        out.push(Trace {
            case_id: id.to_string(),
            steps: case.steps,
            closed: case.closed,
            continuation: case.continuation,
        });
    }

    /// The end of the partition: every case still held, oldest first.
    pub fn finish(&mut self, out: &mut Vec<Trace>) {
        let lingering: Vec<String> = self.lingering.drain(..).map(|(_, id)| id).collect();
        for id in lingering {
            self.release(&id, out);
        }
        let mut open: Vec<(i64, String)> = self
            .open
            .iter()
            .map(|(id, c)| {
                let first = c.steps.iter().map(|s| s.at_ms).min().unwrap_or(i64::MAX);
                (first, id.clone())
            })
            .collect();
        open.sort();
        for (_, id) in open {
            self.release(&id, out);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::process::record::{ActivityRecord, Lineage, SCHEMA_VERSION};
    use std::collections::BTreeMap;

    pub(crate) fn step(case: &str, activity: &str, at_ms: i64, sequence: u64) -> Step {
        let mut record = ActivityRecord {
            schema_version: SCHEMA_VERSION,
            case_id: case.into(),
            activity: activity.into(),
            timestamp: ActivityRecord::timestamp_ms(at_ms),
            start_timestamp: None,
            lifecycle: "complete".into(),
            resource: None,
            resource_type: "system".into(),
            media_type: None,
            direction: None,
            attributes: BTreeMap::new(),
            sequence,
            late: false,
            lineage: Lineage {
                token: None,
                event_id: format!("e{sequence}"),
            },
        };
        if activity == "Case Closed" {
            record
                .attributes
                .insert(CLOSED_BY.into(), "customer.end".into());
        }
        Step {
            record,
            at_ms,
            start_ms: None,
        }
    }

    fn names(t: &Trace) -> Vec<&str> {
        t.steps.iter().map(|s| s.record.activity.as_str()).collect()
    }

    #[test]
    fn a_case_is_handed_out_after_its_marker_and_the_linger_in_event_time_order() {
        let mut a = Assembler::new(2);
        let mut out = Vec::new();
        a.push(step("c1", "Call Started", 1_000, 1), &mut out);
        a.push(step("c2", "Call Started", 1_500, 1), &mut out);
        // written late: before the activity already written
        a.push(step("c1", "Queued", 3_000, 2), &mut out);
        a.push(step("c1", "IVR Entered", 2_000, 3), &mut out);
        a.push(step("c1", "Case Closed", 3_000, 4), &mut out);
        assert!(out.is_empty(), "lingers");
        // a late activity just after the marker still joins the case
        a.push(step("c1", "IVR Exited", 2_500, 5), &mut out);
        assert!(out.is_empty());
        a.push(step("c2", "Queued", 2_000, 2), &mut out);
        assert_eq!(out.len(), 1);
        let t = &out[0];
        assert_eq!(t.case_id, "c1");
        assert_eq!(
            names(t),
            ["Call Started", "IVR Entered", "IVR Exited", "Queued"]
        );
        assert_eq!(t.closed.as_ref().map(|c| c.at_ms), Some(3_000));
        assert!(!t.continuation);
        assert_eq!(t.duration_ms(), 2_000);
        assert_eq!(a.held(), 1);
        a.finish(&mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].case_id, "c2");
        assert!(out[1].closed.is_none());
        assert_eq!(a.continuations(), 0);
    }

    #[test]
    fn an_activity_after_its_case_was_handed_out_is_a_counted_continuation() {
        let mut a = Assembler::new(0);
        let mut out = Vec::new();
        a.push(step("c1", "Call Started", 1_000, 1), &mut out);
        a.push(step("c1", "Case Closed", 1_000, 2), &mut out);
        assert_eq!(out.len(), 1);
        a.push(step("c1", "Voicemail", 900, 3), &mut out);
        a.finish(&mut out);
        assert_eq!(out.len(), 2);
        assert!(out[1].continuation);
        assert_eq!(names(&out[1]), ["Voicemail"]);
        assert_eq!(a.continuations(), 1);
    }

    #[test]
    fn foreign_records_are_told_apart() {
        assert_eq!(read_step(None), Err(Unreadable::Empty));
        assert_eq!(read_step(Some(b"{\"a\":1}")), Err(Unreadable::NotActivity));
        let mut s = step("c1", "Queued", 1_000, 1);
        s.record.timestamp = "yesterday".into();
        assert_eq!(
            read_step(Some(&s.record.encode())),
            Err(Unreadable::BadTime)
        );
        let good = step("c1", "Queued", 1_000, 1);
        assert_eq!(read_step(Some(&good.record.encode())), Ok(good));
    }
}
