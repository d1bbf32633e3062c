//! The process-mining stage on the runtime: silver events (and silver's
//! late events) in, one activity record per activity out, keyed by case.
//! A case never leaves its partition (silver keys by interaction), so
//! nothing is re-keyed; state is the cases, checkpointed; activities
//! written after the last checkpoint are read back at a restore so that
//! none is written twice.

use std::time::{Duration, Instant};

use prometheus::{IntCounter, IntCounterVec, IntGauge};

use super::cases::{CaseRules, Skipped};
use super::event::ProcessEvent;
use super::record::ActivityRecord;
use super::task::ProcessTask;
use crate::config::ProcessPlan;
use crate::metrics::{counter, counter_vec, gauge, Metrics};
use crate::stage::{
    DeadLetterOut, Emit, Output, Port, PortId, RecordIn, Role, Stage, StateModel, Watermarks,
    NO_TICKET,
};

/// Port of the activity records.
pub const PORT_ACTIVITIES: PortId = PortId(0);

/// Dead-letter class of a silver record the stage cannot read.
pub const UNREADABLE_SILVER: &str = "unreadable_silver_record";

#[derive(Debug, Clone)]
struct ProcessMetrics {
    /// Events that made no activity, by reason.
    skipped: IntCounterVec,
    late: IntCounter,
    closed: IntCounterVec,
    cases: IntGauge,
}

impl ProcessMetrics {
    fn new(m: &Metrics) -> Self {
        let r = m.registry();
        ProcessMetrics {
            skipped: counter_vec(
                r,
                "cxstream_process_events_without_activity_total",
                "Silver events that made no activity record, by reason (no_activity, unknown_event_type, unknown_acd_outcome, dropped, replayed, duplicate)",
                &["reason"],
            ),
            late: counter(
                r,
                "cxstream_process_late_activities_total",
                "Activity records written out of their case's event-time order (late: true)",
            ),
            closed: counter_vec(
                r,
                "cxstream_process_cases_closed_total",
                "Cases closed, by what closed them",
                &["by"],
            ),
            cases: gauge(
                r,
                "cxstream_process_cases",
                "Cases kept (open, or closed within their retention)",
            ),
        }
    }
}

/// The process-mining stage.
#[derive(Debug)]
pub struct Process {
    plan: std::sync::Arc<ProcessPlan>,
    metrics: ProcessMetrics,
}

impl Process {
    pub fn new(plan: std::sync::Arc<ProcessPlan>, metrics: &Metrics) -> Self {
        Process {
            plan,
            metrics: ProcessMetrics::new(metrics),
        }
    }

    fn emit(&self, r: ActivityRecord, ticket: u64, out: &mut Vec<Output>) {
        if r.late {
            self.metrics.late.inc();
        }
        if let Some(by) = r.attributes.get("closed_by").and_then(|v| v.as_str()) {
            self.metrics.closed.with_label_values(&[by]).inc();
        }
        out.push(Output::Emit(Emit {
            port: PORT_ACTIVITIES,
            key: r.case_id.clone(),
            lineage_token: r.lineage.token.clone().unwrap_or_default(),
            value: r.encode(),
            tag: None,
            ticket,
            unit: usize::try_from(r.sequence).unwrap_or(usize::MAX),
            state: None,
        }));
    }
}

fn reason(s: Skipped) -> &'static str {
    match s {
        Skipped::NoActivity => "no_activity",
        Skipped::Unknown("acd_outcome") => "unknown_acd_outcome",
        Skipped::Unknown(_) => "unknown_event_type",
        Skipped::Dropped => "dropped",
        Skipped::Replayed => "replayed",
        Skipped::Duplicate => "duplicate",
    }
}

impl Stage for Process {
    type Task = ProcessTask;

    fn state_model(&self) -> StateModel {
        StateModel::Checkpointed
    }

    /// Cases quiet for `case_timeout` close, closed ones past their
    /// retention are forgotten.
    fn checkpoint(&self, task: &mut ProcessTask, out: &mut Vec<Output>) {
        if let Some(p) = task.progress {
            let mut recs = Vec::new();
            task.cases.advance(p, &mut recs);
            for r in recs {
                self.emit(r, NO_TICKET, out);
            }
        }
    }

    fn ports(&self) -> Vec<Port> {
        vec![Port {
            name: "activities",
            topic: self.plan.activities_topic.clone(),
            tag_counter: None,
        }]
    }

    fn tail_ports(&self) -> Vec<PortId> {
        vec![PORT_ACTIVITIES]
    }

    fn new_task(&self, partition: i32, partitions: i32) -> ProcessTask {
        ProcessTask::new(partition, partitions, self.plan.cases.clone())
    }

    fn ingest(
        &self,
        task: &mut ProcessTask,
        rec: &RecordIn<'_>,
        now: Instant,
        out: &mut Vec<Output>,
    ) -> usize {
        let mut e = match ProcessEvent::from_silver(rec.value) {
            Ok(e) => e,
            Err(err) => {
                task.note_input(None, now);
                out.push(Output::DeadLetter(DeadLetterOut {
                    class: UNREADABLE_SILVER,
                    message: err.to_string(),
                    stage: "process",
                    range: 0..rec.value.len(),
                    lineage_token: rec.header_token.map(str::to_string),
                    ticket: rec.ticket,
                }));
                return 1;
            }
        };
        if e.lineage_token.is_none() {
            e.lineage_token = rec.header_token.map(str::to_string);
        }
        let from_late = rec.role != Role::Input;
        task.note_input((!from_late).then_some(e.event_time_ms), now);
        let mut recs = Vec::new();
        if let Some(s) = task.cases.ingest(&e, from_late, &mut recs) {
            self.metrics.skipped.with_label_values(&[reason(s)]).inc();
        }
        let n = recs.len();
        for r in recs {
            self.emit(r, rec.ticket, out);
        }
        n
    }

    fn on_marker(
        &self,
        _task: &mut ProcessTask,
        _from: i32,
        _event_time_ms: i64,
        _idle: bool,
        _now: Instant,
        _out: &mut Vec<Output>,
    ) {
    }

    fn tick(&self, _task: &mut ProcessTask, _now: Instant, _out: &mut Vec<Output>) {}

    fn flush(&self, _task: &mut ProcessTask, _out: &mut Vec<Output>) {}

    /// No markers (a case never leaves its partition), no alignment.
    fn watermarks(&self) -> Watermarks {
        Watermarks {
            step_ms: i64::MAX,
            idle: Duration::from_secs(2),
            hold_limit: usize::MAX,
        }
    }

    fn state_ttl(&self) -> Duration {
        let c: &CaseRules = &self.plan.cases;
        let ms = c.case_timeout_ms.saturating_add(c.closed_retention_ms);
        Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    fn update_gauges<'a>(&self, tasks: impl Iterator<Item = &'a ProcessTask>) {
        self.metrics
            .cases
            .set(tasks.map(|t| t.cases.len() as i64).sum());
    }
}
