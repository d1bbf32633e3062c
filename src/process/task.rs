//! One partition of the process-mining stage: its cases, its progress, and
//! their checkpointed tables.
//!
//! | table | key | value |
//! |---|---|---|
//! | `case` | interaction id | the case (numbering, times, open or closed) and the event ids it has seen |
//! | `meta` | `progress` | the greatest event time read from this partition's first input |

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::cases::{Case, CaseRules, Cases};
use super::record::ActivityRecord;
use crate::stage::{PortId, StageTask};
use crate::state::tables::{Change, Tables};

pub const TABLE_CASE: &str = "case";
pub const TABLE_META: &str = "meta";
const META_PROGRESS: &str = "progress";

#[derive(Serialize, Deserialize)]
struct CaseWire {
    case: Case,
    seen: Vec<String>,
}

/// A process-mining task.
#[derive(Debug)]
pub struct ProcessTask {
    pub partition: i32,
    pub partitions: i32,
    pub cases: Cases,
    /// Greatest event time read from silver's events (not its late topic).
    pub progress: Option<i64>,
    progress_written: Option<i64>,
    last_input: Option<Instant>,
    at_end: bool,
    held_back: bool,
    pub unreadable_state: u64,
}

impl ProcessTask {
    pub fn new(partition: i32, partitions: i32, rules: CaseRules) -> Self {
        ProcessTask {
            partition,
            partitions,
            cases: Cases::new(rules),
            progress: None,
            progress_written: None,
            last_input: None,
            at_end: false,
            held_back: false,
            unreadable_state: 0,
        }
    }

    pub fn note_input(&mut self, event_time_ms: Option<i64>, now: Instant) {
        if let Some(t) = event_time_ms {
            self.progress = Some(self.progress.map_or(t, |p| p.max(t)));
        }
        self.last_input = Some(now);
        self.at_end = false;
    }
}

impl StageTask for ProcessTask {
    fn restore_tables(&mut self, tables: Tables) {
        for (id, v) in tables.table(TABLE_CASE) {
            match serde_json::from_slice::<CaseWire>(v) {
                Ok(w) => {
                    let seen: HashSet<String> = w.seen.into_iter().collect();
                    self.cases.restore_case(id, w.case, seen);
                }
                Err(_) => self.unreadable_state += 1,
            }
        }
        if let Some(p) = tables
            .get(TABLE_META, META_PROGRESS)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|s| s.parse::<i64>().ok())
        {
            self.progress = Some(p);
            self.progress_written = Some(p);
        }
        // What a restore set up is the checkpoint's, not a change.
        let _ = self.cases.take_changes();
    }

    fn restore_output(&mut self, port: PortId, _key: &[u8], value: &[u8]) {
        if port != super::stage::PORT_ACTIVITIES {
            return;
        }
        // Records of other partitions' cases are theirs.
        if let Some(r) = ActivityRecord::decode(value) {
            let home = crate::partition::partition_for(r.case_id.as_bytes(), self.partitions);
            if home == self.partition {
                self.cases.restore_written(&r);
            }
        }
    }

    fn take_changes(&mut self, out: &mut Vec<Change>) {
        for (id, case) in self.cases.take_changes() {
            match case {
                Some(case) => {
                    let mut seen: Vec<String> = self
                        .cases
                        .seen_of(&id)
                        .map(|s| s.iter().cloned().collect())
                        .unwrap_or_default();
                    seen.sort_unstable();
                    let v = serde_json::to_vec(&CaseWire { case, seen }).unwrap_or_default();
                    out.push(Change::put(TABLE_CASE, &id, v));
                }
                None => out.push(Change::delete(TABLE_CASE, &id)),
            }
        }
        if self.progress != self.progress_written {
            self.progress_written = self.progress;
            if let Some(p) = self.progress {
                out.push(Change::put(
                    TABLE_META,
                    META_PROGRESS,
                    p.to_string().into_bytes(),
                ));
            }
        }
    }

    /// Markers are not used: cases never leave their partition.
    fn progress(&self, now: Instant, idle: Duration) -> Option<(i64, bool)> {
        let quiet = self
            .last_input
            .is_none_or(|t| now.saturating_duration_since(t) >= idle);
        self.progress.map(|p| (p, self.at_end && quiet))
    }

    fn runs_ahead(&self, _limit: usize) -> bool {
        false
    }

    fn held_back(&self) -> bool {
        self.held_back
    }

    fn set_held_back(&mut self, held: bool) {
        self.held_back = held;
    }

    fn mark_end_of_partition(&mut self) {
        self.at_end = true;
    }

    fn buffered(&self) -> usize {
        0
    }
}
