//! The audit stage on the runtime: silver events in, one hash-chained
//! record per interaction state change out (keyed by interaction id, so
//! the audit partition is the input partition), and signed checkpoints of
//! each partition's Merkle tree.
//!
//! Checkpoint notes are written at the stage's state checkpoints, when one
//! is due (`checkpoint_every` new records or `checkpoint_interval`): the
//! runtime acknowledges every record before the state checkpoint that
//! fixes them, so a note never covers a leaf that a restart could write
//! differently. The stage reads one input (silver's events, in offset
//! order): a restart re-reads it in the same order, so the records it
//! writes again are the same records.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::{IntCounter, IntCounterVec, IntGauge};

use super::chain::{ChainRules, Outcome};
use super::note::NoteSigner;
use super::record::AuditRecord;
use super::task::AuditTask;
use crate::config::AuditPlan;
use crate::metrics::{counter, counter_vec, gauge, Metrics};
use crate::process::event::ProcessEvent;
use crate::stage::{
    DeadLetterOut, Emit, Output, Port, PortId, RecordIn, Stage, StateModel, Watermarks, NO_TICKET,
};

/// Port of the audit records.
pub const PORT_EVENTS: PortId = PortId(0);
/// Port of the signed checkpoints.
pub const PORT_CHECKPOINTS: PortId = PortId(1);

/// Dead-letter class of a silver record the stage cannot read.
pub const UNREADABLE_SILVER: &str = "unreadable_silver_record";

#[derive(Debug, Clone)]
struct AuditMetrics {
    /// Silver events that made no record, by reason.
    unchained: IntCounterVec,
    signed: IntCounter,
    interactions: IntGauge,
}

impl AuditMetrics {
    fn new(m: &Metrics) -> Self {
        let r = m.registry();
        AuditMetrics {
            unchained: counter_vec(
                r,
                "cxstream_audit_events_without_record_total",
                "Silver events that made no audit record, by reason (no_change, after_end, replayed)",
                &["reason"],
            ),
            signed: counter(
                r,
                "cxstream_audit_checkpoints_signed_total",
                "Signed checkpoints written",
            ),
            interactions: gauge(
                r,
                "cxstream_audit_interactions",
                "Interaction chain heads kept (open, or ended within their retention)",
            ),
        }
    }
}

/// The audit stage.
pub struct Audit {
    plan: Arc<AuditPlan>,
    signer: Arc<NoteSigner>,
    metrics: AuditMetrics,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("stage", &self.plan.runtime.stage)
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

impl Audit {
    pub fn new(plan: Arc<AuditPlan>, signer: Arc<NoteSigner>, metrics: &Metrics) -> Self {
        Audit {
            plan,
            signer,
            metrics: AuditMetrics::new(metrics),
        }
    }

    /// `<origin>/<events topic>/<partition>`.
    pub fn origin(&self, partition: i32) -> String {
        format!(
            "{}/{}/{}",
            self.plan.chain.origin, self.plan.events_topic, partition
        )
    }

    fn emit(r: AuditRecord, ticket: u64, out: &mut Vec<Output>) {
        out.push(Output::Emit(Emit {
            port: PORT_EVENTS,
            key: r.interaction_id.clone(),
            lineage_token: r.lineage_token.clone().unwrap_or_default(),
            value: r.encode(),
            tag: None,
            ticket,
            unit: usize::try_from(r.seq).unwrap_or(usize::MAX),
            state: None,
        }));
    }
}

impl Stage for Audit {
    type Task = AuditTask;

    fn state_model(&self) -> StateModel {
        StateModel::Checkpointed
    }

    /// A signed checkpoint when one is due; ended chains past their
    /// retention are forgotten.
    fn checkpoint(&self, task: &mut AuditTask, out: &mut Vec<Output>) {
        if let Some(p) = task.progress {
            task.chains.expire(p);
        }
        let since = task.last_signed.elapsed();
        let since_ms = u64::try_from(since.as_millis()).unwrap_or(u64::MAX);
        if task.chains.checkpoint_due(since_ms) {
            let cp = task.chains.take_checkpoint();
            task.last_signed = Instant::now();
            self.metrics.signed.inc();
            out.push(Output::Emit(Emit {
                port: PORT_CHECKPOINTS,
                key: task.partition.to_string(),
                lineage_token: String::new(),
                value: self.signer.sign(&cp).into_bytes(),
                tag: None,
                ticket: NO_TICKET,
                unit: usize::try_from(cp.size).unwrap_or(usize::MAX),
                state: None,
            }));
        }
    }

    fn ports(&self) -> Vec<Port> {
        vec![
            Port {
                name: "events",
                topic: self.plan.events_topic.clone(),
                tag_counter: None,
            },
            Port {
                name: "checkpoints",
                topic: self.plan.checkpoints_topic.clone(),
                tag_counter: None,
            },
        ]
    }

    fn tail_ports(&self) -> Vec<PortId> {
        vec![PORT_EVENTS]
    }

    fn new_task(&self, partition: i32, _partitions: i32) -> AuditTask {
        let c = &self.plan.chain;
        AuditTask::new(
            partition,
            ChainRules {
                every_records: c.checkpoint_every,
                every_ms: u64::try_from(c.checkpoint_interval.as_millis()).unwrap_or(u64::MAX),
                ended_retention_ms: i64::try_from(c.ended_retention.as_millis())
                    .unwrap_or(i64::MAX),
                origin: self.origin(partition),
            },
        )
    }

    fn ingest(
        &self,
        task: &mut AuditTask,
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
                    stage: "audit",
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
        task.note_input(Some(e.event_time_ms), now);
        let mut recs = Vec::new();
        let reason = match task.chains.apply(&e, &mut recs) {
            Outcome::Recorded => None,
            Outcome::NoChange => Some("no_change"),
            Outcome::AfterEnd => Some("after_end"),
            Outcome::Replayed => Some("replayed"),
        };
        if let Some(r) = reason {
            self.metrics.unchained.with_label_values(&[r]).inc();
        }
        let n = recs.len();
        for r in recs {
            Self::emit(r, rec.ticket, out);
        }
        n
    }

    fn on_marker(
        &self,
        _task: &mut AuditTask,
        _from: i32,
        _event_time_ms: i64,
        _idle: bool,
        _now: Instant,
        _out: &mut Vec<Output>,
    ) {
    }

    fn tick(&self, _task: &mut AuditTask, _now: Instant, _out: &mut Vec<Output>) {}

    fn flush(&self, _task: &mut AuditTask, _out: &mut Vec<Output>) {}

    /// No markers (an interaction never leaves its partition).
    fn watermarks(&self) -> Watermarks {
        Watermarks {
            step_ms: i64::MAX,
            idle: Duration::from_secs(2),
            hold_limit: usize::MAX,
        }
    }

    fn state_ttl(&self) -> Duration {
        self.plan.chain.ended_retention
    }

    fn update_gauges<'a>(&self, tasks: impl Iterator<Item = &'a AuditTask>) {
        self.metrics
            .interactions
            .set(tasks.map(|t| t.chains.interactions() as i64).sum());
    }
}
