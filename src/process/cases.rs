//! The cases of one partition: each interaction's activity numbering,
//! closing and late marking, without Kafka.
//!
//! - An event's activity gets the case's next `sequence`. It is `late`
//!   when it arrived through silver's late topic, when its event time is
//!   before an activity already written for the case, or when the case is
//!   closed (a late event never re-opens a case).
//! - A case closes at `customer.end` or once the partition's progress is
//!   `case_timeout` past its last event, with a `Case Closed` record
//!   (duration, activity count, what closed it).
//! - A closed case is kept for `closed_retention` of event time, so that a
//!   late event is still recognised as late, then forgotten.
//! - After a restart, the activities written after the last checkpoint are
//!   handed back ([`Cases::restore_written`]): when their events are read
//!   again they are not written twice, and numbering goes on after them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::event::ProcessEvent;
use super::record::{ActivityRecord, Lineage, SCHEMA_VERSION};
use super::vocabulary::{map, Activity, CaseContext, Mapped, Vocabulary};

/// The settings of the case logic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRules {
    pub case_timeout_ms: i64,
    pub closed_retention_ms: i64,
    pub vocabulary: Vocabulary,
}

impl Default for CaseRules {
    fn default() -> Self {
        CaseRules {
            case_timeout_ms: 4 * 3_600_000,
            closed_retention_ms: 48 * 3_600_000,
            vocabulary: Vocabulary::default(),
        }
    }
}

/// `lineage.event_id` of a case closed by time.
pub const TIMEOUT_EVENT: &str = "case_timeout";

/// One case, as the `case` table keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    /// The last sequence written.
    pub sequence: u64,
    pub first_ms: Option<i64>,
    /// The newest event time of an activity written.
    pub last_ms: i64,
    /// The newest event time of any event of the case.
    pub seen_ms: i64,
    pub started: bool,
    pub voicemail_started_ms: Option<i64>,
    pub media_type: Option<String>,
    pub direction: Option<String>,
    /// Event time it closed at.
    pub closed_ms: Option<i64>,
    /// Activities written (not counting `Case Closed`).
    pub activities: u64,
}

/// Why an event made no record (metric labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Skipped {
    /// A known kind without an activity.
    NoActivity,
    /// A kind or outcome this build does not know.
    Unknown(&'static str),
    /// The topology drops the activity.
    Dropped,
    /// Already written before a restart.
    Replayed,
    /// The event was seen before (a re-delivery).
    Duplicate,
}

/// The cases of one partition.
#[derive(Debug, Default)]
pub struct Cases {
    rules: CaseRules,
    cases: HashMap<String, Case>,
    /// (last event time, case) of open cases.
    open: BTreeSet<(i64, String)>,
    /// (closed at, case) of closed cases.
    closed: BTreeSet<(i64, String)>,
    /// (case, event id, activity) written after the last checkpoint.
    written: HashSet<(String, String, String)>,
    /// Event ids seen per case (re-deliveries make nothing).
    seen: HashMap<String, HashSet<String>>,
    changed: BTreeSet<String>,
}

/// What [`Cases::take_changes`] reports: each changed case's state
/// (`None`: forgotten).
pub type CaseChanges = Vec<(String, Option<Case>)>;

impl Cases {
    pub fn new(rules: CaseRules) -> Self {
        Cases {
            rules,
            ..Cases::default()
        }
    }

    pub fn rules(&self) -> &CaseRules {
        &self.rules
    }

    /// Open and closed cases kept.
    pub fn len(&self) -> usize {
        self.cases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cases.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&Case> {
        self.cases.get(id)
    }

    fn record(
        &self,
        id: &str,
        case: &Case,
        name: &str,
        timestamp_ms: i64,
        late: bool,
        lineage: Lineage,
    ) -> ActivityRecord {
        ActivityRecord {
            schema_version: SCHEMA_VERSION,
            case_id: id.to_string(),
            activity: name.to_string(),
            timestamp: ActivityRecord::timestamp_ms(timestamp_ms),
            start_timestamp: None,
            lifecycle: "complete".into(),
            resource: None,
            resource_type: "system".into(),
            media_type: case.media_type.clone(),
            direction: case.direction.clone(),
            attributes: BTreeMap::new(),
            sequence: case.sequence,
            late,
            lineage,
        }
    }

    /// Closes `id` at `at_ms` with a `Case Closed` record (unless dropped
    /// or already written).
    fn close(
        &mut self,
        id: &str,
        at_ms: i64,
        by: &str,
        event_id: &str,
        token: Option<String>,
        out: &mut Vec<ActivityRecord>,
    ) {
        let Some(mut case) = self.cases.remove(id) else {
            return;
        };
        self.open.remove(&(case.seen_ms, id.to_string()));
        case.closed_ms = Some(at_ms);
        self.closed.insert((at_ms, id.to_string()));
        if let Some(name) = self.rules.vocabulary.name(Activity::CaseClosed) {
            let key = (id.to_string(), event_id.to_string(), name.to_string());
            if !self.written.contains(&key) {
                case.sequence += 1;
                let mut r = self.record(
                    id,
                    &case,
                    name,
                    at_ms,
                    false,
                    Lineage {
                        token,
                        event_id: event_id.to_string(),
                    },
                );
                let duration = case.first_ms.map_or(0, |f| at_ms - f);
                r.attributes.insert("duration_ms".into(), duration.into());
                r.attributes
                    .insert("activities".into(), case.activities.into());
                r.attributes.insert("closed_by".into(), by.into());
                out.push(r);
            }
        }
        self.changed.insert(id.to_string());
        self.cases.insert(id.to_string(), case);
    }

    /// One event of the partition; `from_late`: it came through silver's
    /// late topic. Returns why nothing was written, if nothing was.
    pub fn ingest(
        &mut self,
        e: &ProcessEvent,
        from_late: bool,
        out: &mut Vec<ActivityRecord>,
    ) -> Option<Skipped> {
        let id = e.interaction_id.clone();
        if !self
            .seen
            .entry(id.clone())
            .or_default()
            .insert(e.event_id.clone())
        {
            return Some(Skipped::Duplicate);
        }
        let fresh = !self.cases.contains_key(&id);
        let case = self.cases.entry(id.clone()).or_default();
        if fresh {
            case.last_ms = i64::MIN;
            case.seen_ms = i64::MIN;
        }
        if case.closed_ms.is_none() {
            self.open.remove(&(case.seen_ms, id.clone()));
        }
        case.seen_ms = case.seen_ms.max(e.event_time_ms);
        if case.media_type.is_none() {
            case.media_type = e.media_type.clone();
        }
        if case.direction.is_none() {
            case.direction = e.direction.clone();
        }
        let ctx = CaseContext {
            started: case.started,
            voicemail_started_ms: case.voicemail_started_ms,
        };
        if e.event_type == "voicemail.start" {
            case.voicemail_started_ms = Some(e.event_time_ms);
        }
        let closed = case.closed_ms.is_some();
        if !closed {
            self.open.insert((case.seen_ms, id.clone()));
        }
        self.changed.insert(id.clone());
        let skipped = match map(e, ctx) {
            Mapped::Nothing => Some(Skipped::NoActivity),
            Mapped::Unknown(why) => Some(Skipped::Unknown(why)),
            Mapped::Activity(d) => match self.rules.vocabulary.name(d.activity) {
                None => Some(Skipped::Dropped),
                Some(name) => 'activity: {
                    let name = name.to_string();
                    let Some(case) = self.cases.get_mut(&id) else {
                        break 'activity Some(Skipped::NoActivity);
                    };
                    if matches!(
                        d.activity,
                        Activity::CallStarted
                            | Activity::ConversationStarted
                            | Activity::CallbackRequested
                    ) {
                        case.started = true;
                    }
                    if d.activity == Activity::Voicemail {
                        case.voicemail_started_ms = None;
                    }
                    let late = from_late || closed || e.event_time_ms < case.last_ms;
                    case.first_ms = Some(case.first_ms.map_or(e.event_time_ms, |f| {
                        f.min(d.start_ms.unwrap_or(e.event_time_ms))
                    }));
                    case.last_ms = case.last_ms.max(e.event_time_ms);
                    let key = (id.clone(), e.event_id.clone(), name.clone());
                    case.activities += 1;
                    if self.written.contains(&key) {
                        Some(Skipped::Replayed)
                    } else {
                        case.sequence += 1;
                        let case = case.clone();
                        let mut r = self.record(
                            &id,
                            &case,
                            &name,
                            e.event_time_ms,
                            late,
                            Lineage {
                                token: e.lineage_token.clone(),
                                event_id: e.event_id.clone(),
                            },
                        );
                        r.start_timestamp = d.start_ms.map(ActivityRecord::timestamp_ms);
                        r.resource = d.resource;
                        r.resource_type = d.resource_type.as_str().into();
                        r.attributes = d
                            .attributes
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), v))
                            .collect();
                        out.push(r);
                        None
                    }
                }
            },
        };
        if e.event_type == "customer.end" && !closed {
            self.close(
                &id,
                e.event_time_ms,
                "customer.end",
                &e.event_id,
                e.lineage_token.clone(),
                out,
            );
        }
        skipped
    }

    /// Closes the open cases whose last event is `case_timeout` before
    /// `progress`, and forgets closed cases past their retention.
    pub fn advance(&mut self, progress: i64, out: &mut Vec<ActivityRecord>) {
        while let Some((last, id)) = self.open.first().cloned() {
            if last.saturating_add(self.rules.case_timeout_ms) > progress {
                break;
            }
            self.open.pop_first();
            self.close(&id, last, "case_timeout", TIMEOUT_EVENT, None, out);
        }
        while let Some((at, id)) = self.closed.first().cloned() {
            if at.saturating_add(self.rules.closed_retention_ms) > progress {
                break;
            }
            self.closed.pop_first();
            self.cases.remove(&id);
            self.seen.remove(&id);
            self.changed.insert(id);
        }
    }

    /// An activity record written after the last checkpoint (a restore).
    pub fn restore_written(&mut self, r: &ActivityRecord) {
        self.written.insert((
            r.case_id.clone(),
            r.lineage.event_id.clone(),
            r.activity.clone(),
        ));
        if let Some(case) = self.cases.get_mut(&r.case_id) {
            case.sequence = case.sequence.max(r.sequence);
        } else {
            let case = Case {
                sequence: r.sequence,
                last_ms: i64::MIN,
                seen_ms: i64::MIN,
                ..Case::default()
            };
            self.cases.insert(r.case_id.clone(), case);
        }
    }

    /// A case of a restored checkpoint, with the event ids it had seen.
    pub fn restore_case(&mut self, id: &str, case: Case, seen: HashSet<String>) {
        match case.closed_ms {
            Some(at) => {
                self.closed.insert((at, id.to_string()));
            }
            None => {
                self.open.insert((case.seen_ms, id.to_string()));
            }
        }
        self.seen.insert(id.to_string(), seen);
        self.cases.insert(id.to_string(), case);
    }

    /// The event ids seen of a case (checkpointed with it).
    pub fn seen_of(&self, id: &str) -> Option<&HashSet<String>> {
        self.seen.get(id)
    }

    /// The cases changed since the last call, and their state now.
    pub fn take_changes(&mut self) -> CaseChanges {
        std::mem::take(&mut self.changed)
            .into_iter()
            .map(|id| {
                let c = self.cases.get(&id).cloned();
                (id, c)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_767_261_600_000;

    fn ev(id: &str, ty: &str, t: i64) -> ProcessEvent {
        ProcessEvent {
            event_id: id.into(),
            interaction_id: "c1".into(),
            event_type: ty.into(),
            event_time_ms: t,
            media_type: Some("VOICE".into()),
            direction: Some("INBOUND".into()),
            queue_id: Some("q1".into()),
            user_id: Some("agent-1".into()),
            ..ProcessEvent::default()
        }
    }

    fn answered(id: &str, t: i64) -> ProcessEvent {
        ProcessEvent {
            acd_outcome: Some("ANSWERED".into()),
            disconnect_type: Some("TRANSFER".into()),
            ..ev(id, "acd.end", t)
        }
    }

    fn names(out: &[ActivityRecord]) -> Vec<(u64, &str, bool)> {
        out.iter()
            .map(|r| (r.sequence, r.activity.as_str(), r.late))
            .collect()
    }

    #[test]
    fn a_case_is_numbered_in_order_and_closed_at_customer_end() {
        let mut c = Cases::new(CaseRules::default());
        let mut out = Vec::new();
        c.ingest(&ev("e1", "customer.start", T), false, &mut out);
        c.ingest(&ev("e2", "acd.start", T + 1_000), false, &mut out);
        c.ingest(&answered("e3", T + 9_000), false, &mut out);
        let acw = ProcessEvent {
            wrapup_duration_ms: Some(20_000),
            ..ev("e4", "acw", T + 100_000)
        };
        c.ingest(&acw, false, &mut out);
        c.ingest(&ev("e5", "customer.end", T + 101_000), false, &mut out);
        assert_eq!(
            names(&out),
            [
                (1, "Call Started", false),
                (2, "Queued", false),
                (3, "Answered", false),
                (4, "Wrap-up", false),
                (5, "Call Ended", false),
                (6, "Case Closed", false)
            ]
        );
        let closed = &out[5];
        assert_eq!(closed.attributes["duration_ms"], 101_000);
        assert_eq!(closed.attributes["activities"], 5);
        assert_eq!(closed.attributes["closed_by"], "customer.end");
        assert_eq!(
            out[3].start_timestamp.as_deref(),
            Some("2026-01-01T10:01:20.000Z")
        );
        assert_eq!(out[2].resource.as_deref(), Some("q1"));
        assert_eq!(out[2].resource_type, "queue");
    }

    /// Wrap-up arrives before the answer (beyond silver's lateness): the
    /// wrap-up is written first, in arrival order, and the answer that
    /// belongs before it is marked late.
    #[test]
    fn an_activity_written_after_a_later_one_is_late_and_a_closed_case_stays_closed() {
        let mut c = Cases::new(CaseRules::default());
        let mut out = Vec::new();
        c.ingest(&ev("e1", "customer.start", T), false, &mut out);
        c.ingest(&ev("e4", "acw", T + 100_000), false, &mut out);
        c.ingest(&answered("e3", T + 9_000), true, &mut out);
        c.ingest(&ev("e5", "customer.end", T + 101_000), false, &mut out);
        c.ingest(&ev("e6", "attributes", T + 50_000), true, &mut out);
        assert_eq!(
            names(&out),
            [
                (1, "Call Started", false),
                (2, "Wrap-up", false),
                (3, "Answered", true),
                (4, "Call Ended", false),
                (5, "Case Closed", false),
                (6, "Attributes Updated", true)
            ]
        );
        assert!(
            c.get("c1").and_then(|k| k.closed_ms).is_some(),
            "not re-opened"
        );
        // A re-delivery makes nothing.
        assert_eq!(
            c.ingest(&ev("e6", "attributes", T + 50_000), false, &mut out),
            Some(Skipped::Duplicate)
        );
    }

    #[test]
    fn a_quiet_case_closes_by_time_and_is_forgotten_after_its_retention() {
        let mut c = Cases::new(CaseRules {
            case_timeout_ms: 60_000,
            closed_retention_ms: 120_000,
            ..CaseRules::default()
        });
        let mut out = Vec::new();
        c.ingest(&ev("e1", "customer.start", T), false, &mut out);
        c.ingest(&ev("e2", "acd.start", T + 1_000), false, &mut out);
        out.clear();
        c.advance(T + 60_999, &mut out);
        assert!(out.is_empty());
        c.advance(T + 61_000, &mut out);
        assert_eq!(names(&out), [(3, "Case Closed", false)]);
        assert_eq!(out[0].attributes["closed_by"], "case_timeout");
        assert_eq!(out[0].lineage.event_id, TIMEOUT_EVENT);
        c.advance(T + 181_000, &mut out);
        assert!(c.is_empty(), "forgotten after the retention");
    }

    #[test]
    fn unknown_and_dropped_activities_are_named_never_invented() {
        let mut rules = CaseRules::default();
        rules.vocabulary.drop_activity(Activity::AttributesUpdated);
        rules.vocabulary.rename(Activity::Queued, "Waiting".into());
        let mut c = Cases::new(rules);
        let mut out = Vec::new();
        assert_eq!(
            c.ingest(&ev("e1", "attributes", T), false, &mut out),
            Some(Skipped::Dropped)
        );
        assert_eq!(
            c.ingest(&ev("e2", "cobrowse.start", T), false, &mut out),
            Some(Skipped::Unknown("event_type"))
        );
        assert_eq!(
            c.ingest(&ev("e3", "contact", T), false, &mut out),
            Some(Skipped::NoActivity)
        );
        c.ingest(&ev("e4", "acd.start", T), false, &mut out);
        assert_eq!(names(&out), [(1, "Waiting", false)]);
    }

    /// After a crash: the checkpoint had two activities; three more were
    /// written after it. Read again, in another order, nothing is written
    /// twice and the next activity is number 6.
    #[test]
    fn activities_written_after_the_checkpoint_are_not_written_again() {
        let mut c = Cases::new(CaseRules::default());
        let mut out = Vec::new();
        c.ingest(&ev("e1", "customer.start", T), false, &mut out);
        c.ingest(&ev("e2", "acd.start", T + 1_000), false, &mut out);
        let checkpoint = c.take_changes();
        let seen: HashSet<String> = c.seen_of("c1").cloned().unwrap_or_default();
        out.clear();
        c.ingest(&answered("e3", T + 9_000), false, &mut out);
        c.ingest(&ev("e4", "user.start", T + 5_000), true, &mut out);
        c.ingest(&ev("e5", "attributes", T + 20_000), false, &mut out);
        let written = out.clone();

        let mut r = Cases::new(CaseRules::default());
        for (id, case) in checkpoint {
            r.restore_case(&id, case.expect("kept"), seen.clone());
        }
        for w in &written {
            r.restore_written(w);
        }
        let mut again = Vec::new();
        r.ingest(&ev("e4", "user.start", T + 5_000), true, &mut again);
        r.ingest(&answered("e3", T + 9_000), false, &mut again);
        r.ingest(&ev("e5", "attributes", T + 20_000), false, &mut again);
        assert!(again.is_empty(), "{again:?}");
        r.ingest(&ev("e6", "customer.end", T + 30_000), false, &mut again);
        assert_eq!(
            names(&again),
            [(6, "Call Ended", false), (7, "Case Closed", false)]
        );
    }
}
