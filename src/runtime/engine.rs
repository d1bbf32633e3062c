//! The processing loop: one group consumer on the input topic, one
//! assign-only consumer on the repartition partitions of the same numbers, one
//! idempotent producer for every output.
//!
//! All state lives in [`Core`] behind a mutex that the loop holds while it
//! processes and that the rebalance callbacks take while they flush (they run
//! inside `poll`, when the loop holds nothing). Delivery reports are queued by
//! the producer context and applied by whoever holds the core.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::client::{ClientSettings, Limits};
use super::dead_letter::{self, Digested, Rejected};
use super::restore::{restore, QuietContext, RestoreOutcome, RestoreSpec};
use super::rewind::{Rewind, Step, INITIAL_WINDOW, STALL_AFTER};
use super::tracker::Trackers;
use super::RuntimeError;
use crate::config::Delivery;
use crate::config::Plan;
use crate::http::Health;
use crate::metrics::{Metrics, OUT_DEAD_LETTER, OUT_LATE, OUT_SILVER};
use crate::model::Fingerprint;
use crate::model::{format_iso_ms, now_ms, SourceRef, Ticket};
use crate::partition::partition_for;
use crate::pipeline::{Encoded, Output, Pipeline, RecordIn, Role, Task};
use crate::state::{owner_record, write_state_header, DeadLetterPos, Delta};

/// Header names of the dead-letter and lineage contract.
pub mod headers {
    pub const LINEAGE_TOKEN: &str = "cx.lineage.token";
    pub const LINEAGE_HOPS: &str = "cx.lineage.hops";
    pub const LATE_REASON: &str = "cx.late.reason";
    pub const ERROR_CLASS: &str = "cx.error.class";
    pub const ERROR_MESSAGE: &str = "cx.error.message";
    pub const ERROR_STAGE: &str = "cx.error.stage";
    pub const SOURCE_TOPIC: &str = "cx.source.topic";
    pub const SOURCE_PARTITION: &str = "cx.source.partition";
    pub const SOURCE_OFFSET: &str = "cx.source.offset";
    pub const FAILED_AT: &str = "cx.failed_at";
    /// Marks a watermark marker on the repartition topic (not an event).
    pub const MARKER: &str = "cx.marker";
    /// Silver and late records: `<event_time_ms>;<fingerprints>` for state
    /// restore (see [`crate::state::state_header`]).
    pub const STATE: &str = "cx.state";
    /// Dead letters: byte offset of the rejected unit in the source record.
    pub const SOURCE_UNIT: &str = "cx.source.unit";
    /// Reference-form dead letters: `true` (the value is only the first
    /// bytes of the rejected record).
    pub const TRUNCATED: &str = "cx.dlq.truncated";
    /// Reference-form dead letters: size of the rejected record in bytes.
    pub const ORIGINAL_SIZE: &str = "cx.original.size";
    /// Reference-form dead letters: SHA-256 (hex) of the rejected record.
    pub const ORIGINAL_SHA256: &str = "cx.original.sha256";
}

/// Everything the loop needs to know about topics and limits.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub plan: Arc<Plan>,
    pub client: ClientSettings,
    pub group_id: String,
    /// Input partition count (= repartition partition count).
    pub partitions: i32,
    pub silver_partitions: i32,
    pub late_partitions: i32,
    pub dead_letter_partitions: i32,
    /// The most bytes a record may take on each output.
    pub limits: Limits,
    /// Stop once no record has arrived for this long and nothing is
    /// buffered or in flight (demo, tests, batch use).
    pub exit_when_idle: Option<Duration>,
    /// Names this instance (transactional id suffix).
    pub instance_id: String,
}

#[derive(Debug, Clone, Copy)]
enum AckKind {
    Silver,
    Late(&'static str),
    DeadLetter(&'static str),
    Forward,
    Marker,
    Changelog,
}

/// What an acknowledged output adds to its task's changelog.
#[derive(Debug)]
enum AckState {
    None,
    Emitted {
        interaction: String,
        event_time_ms: i64,
        content_fp: Fingerprint,
        id_fp: Option<Fingerprint>,
    },
    DeadLetter(DeadLetterPos),
}

#[derive(Debug)]
struct AckMeta {
    ticket: Ticket,
    kind: AckKind,
    /// The task (input partition) that produced it.
    task: i32,
    state: AckState,
    /// Byte offset of the event's unit in its source record.
    unit: u32,
    /// A dead letter that already carries a reference (not the bytes).
    reference: bool,
}

/// What is kept of a record whose delivery failed with an error that
/// belongs to that record alone (see [`dead_letter::record_level`]).
#[derive(Debug)]
struct FailedRecord {
    class: &'static str,
    digest: Digested,
    key: Option<Vec<u8>>,
    headers: Vec<(String, String)>,
}

impl FailedRecord {
    fn new<H: Headers>(
        class: &'static str,
        key: Option<&[u8]>,
        value: &[u8],
        headers: Option<&H>,
        prefix_cap: usize,
    ) -> Self {
        FailedRecord {
            class,
            digest: Digested::of(value, prefix_cap),
            key: key.map(<[u8]>::to_vec),
            headers: headers.map(header_pairs).unwrap_or_default(),
        }
    }
}

/// An output to dead-letter instead of failing the run.
#[derive(Debug)]
struct Reject {
    meta: AckMeta,
    topic: String,
    error: String,
    failed: FailedRecord,
}

#[derive(Debug)]
struct Ack {
    meta: AckMeta,
    error: Option<String>,
    /// Set when `error` belongs to this record alone.
    failed: Option<FailedRecord>,
    /// Where it landed (partition, offset); the topic follows from the kind.
    position: Option<(i32, i64)>,
}

/// The headers a dead letter sent again by reference keeps.
const DEAD_LETTER_HEADERS: [&str; 9] = [
    headers::ERROR_CLASS,
    headers::ERROR_MESSAGE,
    headers::ERROR_STAGE,
    headers::SOURCE_TOPIC,
    headers::SOURCE_PARTITION,
    headers::SOURCE_OFFSET,
    headers::SOURCE_UNIT,
    headers::FAILED_AT,
    headers::LINEAGE_TOKEN,
];

/// Producer context: queues delivery reports for the loop.
#[derive(Debug, Default)]
struct AckContext {
    acks: Mutex<Vec<Ack>>,
    /// Bytes of a failed record kept for its reference-form dead letter.
    prefix_cap: usize,
}

impl ClientContext for AckContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "Producer client error (librdkafka retries).");
    }
}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Box<AckMeta>;

    fn delivery(&self, result: &DeliveryResult<'_>, meta: Box<AckMeta>) {
        let (error, failed, position) = match result {
            Ok(m) => {
                let position = matches!(
                    meta.kind,
                    AckKind::Silver | AckKind::Late(_) | AckKind::DeadLetter(_)
                )
                .then(|| (m.partition(), m.offset()));
                (None, None, position)
            }
            Err((e, m)) => {
                let failed = e
                    .rdkafka_error_code()
                    .and_then(dead_letter::record_level)
                    .map(|class| {
                        let value = m.payload().unwrap_or(&[]);
                        FailedRecord::new(class, m.key(), value, m.headers(), self.prefix_cap)
                    });
                (Some(e.to_string()), failed, None)
            }
        };
        lock(&self.acks).push(Ack {
            meta: *meta,
            error,
            failed,
            position,
        });
    }
}

/// Headers as text pairs (ours are all text).
fn header_pairs<H: Headers>(hs: &H) -> Vec<(String, String)> {
    hs.iter()
        .map(|h| {
            (
                h.key.to_string(),
                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
            )
        })
        .collect()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

type Producer_ = BaseProducer<AckContext>;

/// Consumer context: owns the state so rebalance callbacks can flush it.
struct GroupContext {
    core: Mutex<Core>,
    producer: Producer_,
    side: BaseConsumer<QuietContext>,
    metrics: Arc<Metrics>,
    /// Commits that failed (topic, partition, offset), reported by the
    /// commit callback and sent again by the loop. Not in [`Core`]: the
    /// callback can run inside a synchronous commit made with it locked.
    failed_commits: Mutex<Vec<(String, i32, i64)>>,
    input_topic: Arc<str>,
    repartition_topic: Arc<str>,
    /// `runtime.delivery = "transactions"`.
    transactional: bool,
}

impl ClientContext for GroupContext {
    fn stats(&self, stats: Statistics) {
        for (topic, t) in &stats.topics {
            for (p, part) in &t.partitions {
                if *p >= 0 && part.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .with_label_values(&[topic, &p.to_string()])
                        .set(part.consumer_lag);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Reaching a partition's end is news, not an error (it drives idleness).
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF) {
            tracing::debug!(reason, "End of partition.");
            return;
        }
        tracing::warn!(%error, reason, "Consumer client error (librdkafka retries).");
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let parts: Vec<i32> = tpl
                .elements()
                .iter()
                .filter(|e| e.topic() == &*self.input_topic)
                .map(|e| e.partition())
                .collect();
            let lost = consumer.assignment_lost();
            self.metrics
                .rebalances
                .with_label_values(&[if lost { "lost" } else { "revoke" }])
                .inc();
            self.metrics
                .partitions_moved
                .with_label_values(&[if lost { "lost" } else { "revoked" }])
                .inc_by(parts.len() as u64);
            self.revoke(consumer, &parts, lost);
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                self.metrics.rebalances.with_label_values(&["assign"]).inc();
                // Nothing is read from a new partition until its state is
                // restored (on another thread; the others keep running).
                let mut hold = TopicPartitionList::new();
                let mut parts = Vec::new();
                for e in tpl.elements() {
                    if e.topic() == &*self.input_topic {
                        let _ = hold.add_partition(&self.input_topic, e.partition());
                        parts.push(e.partition());
                    }
                }
                if hold.count() > 0 {
                    if let Err(e) = consumer.pause(&hold) {
                        tracing::warn!(error = %e, "Could not pause partitions for restore.");
                    }
                }
                let mut core = lock(&self.core);
                for p in &parts {
                    core.assign(*p);
                }
                self.metrics
                    .partitions_moved
                    .with_label_values(&["assigned"])
                    .inc_by(parts.len() as u64);
                tracing::info!(partitions = ?parts, "Partitions assigned; restoring their state.");
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => tracing::warn!(error = %e, "Rebalance error."),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        let failed: Vec<(String, i32, i64)> = offsets
            .elements()
            .iter()
            .filter(|e| result.is_err() || e.error().is_err())
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.topic().to_string(), e.partition(), o)),
                _ => None,
            })
            .collect();
        if failed.is_empty() {
            return;
        }
        self.metrics.commit_errors.inc();
        match result {
            Err(e) => tracing::warn!(error = %e, partitions = failed.len(), "Offset commit failed; it is sent again at the next interval."),
            Ok(()) => tracing::warn!(partitions = failed.len(), "Offset commit failed for some partitions; they are sent again at the next interval."),
        }
        lock(&self.failed_commits).extend(failed);
    }
}

impl GroupContext {
    /// Commit points whose commit failed are sent again at the next
    /// interval, moved or not.
    fn resend_failed_commits(&self, core: &mut Core) {
        let failed = std::mem::take(&mut *lock(&self.failed_commits));
        for (topic, p, o) in failed {
            let role = if *topic == *self.input_topic {
                Role::Input
            } else if *topic == *self.repartition_topic {
                Role::Repartition
            } else {
                continue;
            };
            core.trackers.commit_failed(role, p, o);
        }
    }

    /// Hands revoked partitions over: what was sent is delivered, its state
    /// written to the changelog, offsets committed up to the oldest record
    /// still buffered, then the partitions' state is dropped.
    ///
    /// In `replay` mode the reorder buffers are *not* flushed: their events'
    /// input records are not committed, so the next owner reads them again
    /// and orders them with what follows (flushing would release them early
    /// and send their later siblings to the late topic). Transactions mode
    /// flushes: its next owner reads `read_committed` from the offsets this
    /// transaction commits. A stop ([`Engine::shutdown`]) always flushes.
    fn revoke(&self, consumer: &BaseConsumer<Self>, parts: &[i32], lost: bool) {
        if parts.is_empty() {
            return;
        }
        let mut core = lock(&self.core);
        if !lost {
            let flush = self.transactional;
            if flush {
                for p in parts {
                    core.flush_partition(&self.producer, *p);
                }
            }
            // Wait until everything sent for these partitions is
            // acknowledged (records still buffered stay in flight).
            let deadline = Instant::now() + Duration::from_secs(60);
            while parts
                .iter()
                .any(|p| core.partition_unacknowledged(*p, flush))
                && Instant::now() < deadline
            {
                self.producer.poll(Duration::from_millis(20));
                core.apply_acks(&self.producer);
            }
            if self.transactional {
                // Outputs, changelog and offsets of every partition commit
                // together before the revoked ones move.
                if let Err(e) = core.commit_transaction(&self.producer, consumer, Some(parts)) {
                    core.fatal.get_or_insert(e);
                }
            } else {
                // Hand over: the next owner restores from the changelog.
                core.write_changelog(&self.producer, Some(parts));
            }
            let mut tpl = TopicPartitionList::new();
            for p in parts {
                for (role, topic) in [
                    (Role::Input, &self.input_topic),
                    (Role::Repartition, &self.repartition_topic),
                ] {
                    if let Some(o) = core.trackers.commit_point(role, *p) {
                        let _ = tpl.add_partition_offset(topic, *p, Offset::Offset(o));
                    }
                }
            }
            if tpl.count() > 0 && !self.transactional {
                match consumer.commit(&tpl, CommitMode::Sync) {
                    Ok(()) => self.metrics.commits.inc(),
                    Err(e) => {
                        self.metrics.commit_errors.inc();
                        tracing::warn!(error = %e, "Commit on revoke failed; the next owner re-reads from the last commit.");
                    }
                }
            }
            if !self.transactional {
                core.release(&self.producer, parts);
            }
            // The next owner waits for the release (or for the lease to
            // lapse) before it reads the outputs' tail.
            if let Err(e) = self.producer.flush(Duration::from_secs(10)) {
                tracing::warn!(error = %e, "Could not deliver the hand-over records; the next owner waits for the lease to lapse.");
            }
        }
        if lost && self.transactional && core.fatal.is_none() {
            // The open transaction holds outputs of partitions this instance
            // no longer owns; their offsets can no longer be committed.
            core.fatal = Some(
                "partitions were lost (session timeout) in transactions mode; restart to restore state".into(),
            );
        }
        let left: usize = parts
            .iter()
            .filter_map(|p| core.tasks.get(p))
            .map(Task::buffered)
            .sum();
        self.metrics.handed_over.inc_by(left as u64);
        let mut side_tpl = TopicPartitionList::new();
        for p in parts {
            if core.trackers.slot(Role::Repartition, *p).is_some() {
                let _ = side_tpl.add_partition(&self.repartition_topic, *p);
            }
            core.unassign(*p);
        }
        if side_tpl.count() > 0 {
            if let Err(e) = self.side.incremental_unassign(&side_tpl) {
                tracing::warn!(error = %e, "Could not unassign repartition partitions.");
            }
        }
        self.metrics
            .assigned_partitions
            .set(core.tasks.len() as i64);
        tracing::info!(partitions = ?parts, lost, "Partitions revoked.");
    }
}

/// A watermark marker: input partition `from` has read events up to
/// `event_time_ms` (or has been idle). Sent to every other repartition
/// partition after the events it forwarded there, so a task knows how far
/// each upstream has progressed before it lets its watermark pass.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Marker {
    from: i32,
    event_time_ms: i64,
    idle: bool,
}

/// One record being handled, for dead-letter bytes and headers.
struct RecordCtx<'a> {
    key: Option<&'a [u8]>,
    value: &'a [u8],
    source: &'a SourceRef,
    timestamp_ms: Option<i64>,
}

/// A partition whose state is being restored.
struct Restoring {
    handle: std::thread::JoinHandle<Result<RestoreOutcome, RuntimeError>>,
    attempt: u32,
    /// Set when the partition is revoked before its restore finished.
    cancel: Arc<AtomicBool>,
}

/// The state of this instance.
struct Core {
    pipeline: Pipeline,
    settings: EngineSettings,
    metrics: Arc<Metrics>,
    tasks: HashMap<i32, Task>,
    trackers: Trackers,
    topics: Topics,
    /// Repartition partitions to assign on the side consumer.
    pending_side: Vec<i32>,
    out: Vec<Output>,
    fatal: Option<String>,
    last_record: Option<Instant>,
    last_evictions: u64,
    /// Last marker sent per owned input partition: ((progress, idle), when).
    markers_sent: HashMap<i32, ((i64, bool), Instant)>,
    /// Partitions assigned whose state is still being restored.
    restoring: HashMap<i32, Restoring>,
    /// Per task: what was acknowledged since its last changelog record.
    deltas: HashMap<i32, Delta>,
    /// Per task: positions already dead-lettered before a restart.
    dead_lettered: HashMap<i32, HashSet<DeadLetterPos>>,
    /// Consumption paused for backpressure.
    paused: bool,
    /// This process's owner id in changelog owner marks (fresh per start).
    owner_id: String,
    /// Reused for each record's `cx.state` header.
    header_buf: String,
    /// Partitions being resumed at an offset (see [`Rewind`]).
    rewinds: HashMap<(Role, i32), Rewind>,
    /// Seeks a rewind asked for, done by the run loop.
    reseeks: Vec<(Role, i32, i64)>,
    /// Per task: records produced and not yet acknowledged (every kind).
    produced_unacked: HashMap<i32, usize>,
    /// Counters bumped per record, resolved once (a labelled look-up per
    /// record hashes and locks).
    hot: HotCounters,
    /// Outputs refused for a reason of their own, to dead-letter.
    rejects: Vec<Reject>,
    /// `rejects` is being drained (delivery reports served meanwhile only
    /// queue more).
    rejecting: bool,
}

/// Per-record counters, resolved from their labelled families once.
struct HotCounters {
    read_input: prometheus::IntCounter,
    read_repartition: prometheus::IntCounter,
    out_silver: prometheus::IntCounter,
}

impl HotCounters {
    fn new(m: &Metrics) -> Self {
        Self {
            read_input: m.records_read.with_label_values(&["input"]),
            read_repartition: m.records_read.with_label_values(&["repartition"]),
            out_silver: m.events_out.with_label_values(&[OUT_SILVER]),
        }
    }
}

#[derive(Debug, Clone)]
struct Topics {
    input: Arc<str>,
    repartition: Arc<str>,
    silver: Arc<str>,
    late: Arc<str>,
    dead_letter: Arc<str>,
}

impl Core {
    fn restore_spec(&self, p: i32) -> RestoreSpec {
        let s = &self.settings;
        let plan = &s.plan;
        RestoreSpec {
            client: s.client.clone(),
            group_id: s.group_id.clone(),
            partition: p,
            partitions: s.partitions,
            input_topic: plan.input_topic.clone(),
            repartition_topic: plan.repartition_topic.clone(),
            changelog_topic: plan.changelog_topic.clone(),
            silver: (plan.silver_topic.clone(), s.silver_partitions),
            late: (plan.late_topic.clone(), s.late_partitions),
            dead_letter: (plan.dead_letter_topic.clone(), s.dead_letter_partitions),
            ttl: plan
                .dedup
                .as_ref()
                .map_or(Duration::from_secs(24 * 3600), |d| d.ttl),
            read_committed: plan.delivery == Delivery::Transactions,
            timeout: Duration::from_secs(300),
            owner_id: self.owner_id.clone(),
            lease: self.lease(),
            max_handover_wait: self.lease() * 10,
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }

    /// How long an owner's changelog lease lasts without renewal: the
    /// group's session timeout (the broker's own verdict on a silent
    /// member), at least three commit intervals.
    fn lease(&self) -> Duration {
        let session = self
            .settings
            .client
            .extra
            .iter()
            .rev()
            .find(|(k, _)| k == "session.timeout.ms")
            .and_then(|(_, v)| v.parse::<u64>().ok())
            .map_or(Duration::from_secs(45), Duration::from_millis);
        session.max(self.settings.plan.commit_interval * 3)
    }

    /// Starts restoring partition `p`'s state on its own thread.
    fn assign(&mut self, p: i32) {
        self.start_restore(p, 0);
    }

    fn start_restore(&mut self, p: i32, attempt: u32) {
        let spec = self.restore_spec(p);
        let cancel = spec.cancel.clone();
        let delay = Duration::from_secs(u64::from(attempt.min(10)));
        let handle = std::thread::spawn(move || {
            std::thread::sleep(delay);
            restore(&spec)
        });
        self.restoring.insert(
            p,
            Restoring {
                handle,
                attempt,
                cancel,
            },
        );
    }

    /// Turns finished restores into tasks; returns the partitions now ready.
    fn finish_restores(&mut self) -> Vec<i32> {
        let done: Vec<i32> = self
            .restoring
            .iter()
            .filter(|(_, r)| r.handle.is_finished())
            .map(|(p, _)| *p)
            .collect();
        let mut ready = Vec::new();
        for p in done {
            let Some(r) = self.restoring.remove(&p) else {
                continue;
            };
            let result = r
                .handle
                .join()
                .unwrap_or_else(|_| Err(RuntimeError::Join("restore thread panicked".into())));
            match result {
                Ok(outcome) => {
                    self.install(outcome);
                    ready.push(p);
                }
                Err(e) => {
                    self.metrics.restore_failures.inc();
                    tracing::warn!(partition = p, attempt = r.attempt + 1, error = %e, "State restore failed; retrying.");
                    self.start_restore(p, r.attempt + 1);
                }
            }
        }
        ready
    }

    /// A restored partition becomes a task.
    fn install(&mut self, outcome: RestoreOutcome) {
        let p = outcome.partition;
        let mut st = outcome.state;
        let mut task = self.pipeline.new_task(p, self.settings.partitions);
        task.restore(&st);
        let m = &self.metrics;
        m.restore_seconds.observe(outcome.took.as_secs_f64());
        m.restores.inc();
        m.restored_records
            .with_label_values(&["changelog"])
            .inc_by(st.changelog_records);
        m.restored_records
            .with_label_values(&["output"])
            .inc_by(st.output_records);
        tracing::info!(
            partition = p,
            took_ms = outcome.took.as_millis() as u64,
            handover_wait_ms = outcome.waited.as_millis() as u64,
            changelog_records = st.changelog_records,
            output_records = st.output_records,
            dedup_keys = st.keys.len(),
            interactions = st.emitted.len(),
            dead_letters = st.dead_letters.len(),
            "State restored."
        );
        self.tasks.insert(p, task);
        let input = self.topics.input.clone();
        self.trackers.open(Role::Input, input, p);
        self.pending_side.push(p);
        self.deltas.insert(p, st.into_delta());
        self.dead_lettered.insert(p, st.dead_letters);
        self.metrics
            .assigned_partitions
            .set(self.tasks.len() as i64);
    }

    fn unassign(&mut self, p: i32) {
        if let Some(r) = self.restoring.remove(&p) {
            r.cancel.store(true, Ordering::Relaxed);
        }
        self.deltas.remove(&p);
        self.dead_lettered.remove(&p);
        self.tasks.remove(&p);
        self.markers_sent.remove(&p);
        self.rewinds.remove(&(Role::Input, p));
        self.rewinds.remove(&(Role::Repartition, p));
        self.reseeks.retain(|(_, q, _)| *q != p);
        self.trackers.close(Role::Input, p);
        self.trackers.close(Role::Repartition, p);
        self.pending_side.retain(|x| *x != p);
    }

    /// End of input partition `p`: the task is caught up (idle detection),
    /// and a resumption that has seen no record yet may need to start
    /// further back (see [`Rewind`]).
    fn end_of_input_partition(&mut self, p: i32) {
        if let Some(task) = self.tasks.get_mut(&p) {
            task.mark_end_of_partition();
        }
        if let Some(Step::Reseek(from)) = self
            .rewinds
            .get_mut(&(Role::Input, p))
            .map(Rewind::end_of_partition)
        {
            self.reseeks.push((Role::Input, p, from));
        }
    }

    /// Resumptions that have seen nothing for a while: the broker may be
    /// answering a fetch inside the last batch with nothing (see [`Rewind`]).
    /// Not while consumption is paused (nothing can arrive then).
    fn check_stalled_rewinds(&mut self) {
        if self.paused || self.rewinds.is_empty() {
            return;
        }
        let now = Instant::now();
        for ((role, p), rw) in self.rewinds.iter_mut() {
            if let Step::Reseek(from) = rw.stalled(now, STALL_AFTER) {
                tracing::debug!(
                    partition = p,
                    ?role,
                    target = rw.target(),
                    from,
                    "No record at the resume offset; reading from further back."
                );
                self.reseeks.push((*role, *p, from));
            }
        }
    }

    fn partition_in_flight(&self, p: i32) -> usize {
        self.trackers.in_flight_of(Role::Input, p)
            + self.trackers.in_flight_of(Role::Repartition, p)
    }

    /// Whether partition `p` still has outputs on their way to the broker.
    /// `flushed`: its buffers were flushed, so every record in flight is
    /// waiting for an acknowledgement; otherwise records whose events are
    /// buffered stay in flight, and only the produces are waited for.
    fn partition_unacknowledged(&self, p: i32, flushed: bool) -> bool {
        if flushed {
            self.partition_in_flight(p) > 0
        } else {
            self.produced_unacked.get(&p).is_some_and(|n| *n > 0)
        }
    }

    fn handle(&mut self, producer: &Producer_, role: Role, msg: &BorrowedMessage<'_>) {
        let p = msg.partition();
        if role == Role::Input && self.restoring.contains_key(&p) {
            // Fetched before the pause took hold: read again after the
            // restore (which seeks to the committed offset).
            return;
        }
        let Some(slot) = self.trackers.slot(role, p) else {
            return; // not (or no longer) ours
        };
        if !self.tasks.contains_key(&p) {
            return;
        }
        if let Some(rw) = self.rewinds.get_mut(&(role, p)) {
            match rw.step(msg.offset()) {
                Step::Skip => {
                    return;
                }
                Step::Reseek(from) => {
                    tracing::debug!(partition = p, ?role, target = rw.target(), from, "Broker skipped records up to the resume offset; reading from further back.");
                    self.reseeks.push((role, p, from));
                    return;
                }
                Step::Process => {
                    self.rewinds.remove(&(role, p));
                }
            }
        }
        let ts = msg.timestamp().to_millis();
        let now = Instant::now();
        let Some(ticket) = self.trackers.begin(slot, msg.offset(), ts, now) else {
            return;
        };
        match role {
            Role::Input => self.hot.read_input.inc(),
            Role::Repartition => self.hot.read_repartition.inc(),
        }
        let mut token = None;
        let mut hops = None;
        let mut marker = false;
        if let Some(hs) = msg.headers() {
            for h in hs.iter() {
                match h.key {
                    headers::LINEAGE_TOKEN => {
                        token = h.value.and_then(|v| std::str::from_utf8(v).ok())
                    }
                    headers::LINEAGE_HOPS => hops = h.value,
                    headers::MARKER => marker = true,
                    _ => {}
                }
            }
        }
        if !marker {
            self.last_record = Some(now);
        }
        if marker {
            if let (Role::Repartition, Some(m)) = (
                role,
                msg.payload()
                    .and_then(|v| serde_json::from_slice::<Marker>(v).ok()),
            ) {
                let mut out = std::mem::take(&mut self.out);
                if let Some(task) = self.tasks.get_mut(&p) {
                    self.pipeline
                        .on_marker(task, m.from, m.event_time_ms, m.idle, now, &mut out);
                }
                for o in out.drain(..) {
                    self.route(producer, p, o, None);
                }
                self.out = out;
            }
            self.trackers.release(ticket);
            return;
        }
        let source = SourceRef {
            topic: match role {
                Role::Input => self.topics.input.clone(),
                Role::Repartition => self.topics.repartition.clone(),
            },
            partition: p,
            offset: msg.offset(),
        };
        let value = msg.payload().unwrap_or(&[]);
        let rec = RecordIn {
            value,
            source: source.clone(),
            role,
            header_token: token,
            header_hops: hops,
            record_timestamp_ms: ts,
            ticket,
        };
        let mut out = std::mem::take(&mut self.out);
        let units = match self.tasks.get_mut(&p) {
            Some(task) => self.pipeline.ingest(&rec, task, now, &mut out),
            None => 0,
        };
        self.trackers.hold(ticket, units);
        let ctx = RecordCtx {
            key: msg.key(),
            value,
            source: &source,
            timestamp_ms: ts,
        };
        for o in out.drain(..) {
            self.route(producer, p, o, Some(&ctx));
        }
        self.out = out;
        self.trackers.release(ticket);
    }

    /// Turns one output into a produce, or releases its hold.
    fn route(&mut self, producer: &Producer_, p: i32, o: Output, rec: Option<&RecordCtx<'_>>) {
        match o {
            Output::Done { ticket } => {
                self.trackers.release(ticket);
            }
            Output::Silver(e) | Output::Late(e) => {
                // Late records carry their reason; silver records none.
                let (topic, partitions, kind) = match e.late_reason {
                    None => (
                        self.topics.silver.clone(),
                        self.settings.silver_partitions,
                        AckKind::Silver,
                    ),
                    Some(reason) => (
                        self.topics.late.clone(),
                        self.settings.late_partitions,
                        AckKind::Late(reason),
                    ),
                };
                write_state_header(&mut self.header_buf, e.event_time_ms, e.content_fp, e.id_fp);
                // Headers copy their values: the buffer is free again after.
                let mut hs = OwnedHeaders::new_with_capacity(3)
                    .insert(Header {
                        key: headers::LINEAGE_TOKEN,
                        value: Some(e.lineage_token.as_bytes()),
                    })
                    .insert(Header {
                        key: headers::STATE,
                        value: Some(self.header_buf.as_bytes()),
                    });
                if let Some(reason) = e.late_reason {
                    hs = hs.insert(Header {
                        key: headers::LATE_REASON,
                        value: Some(reason.as_bytes()),
                    });
                }
                let partition = partition_for(e.key.as_bytes(), partitions);
                if let Some(d) = self.trackers.since_read(e.ticket, Instant::now()) {
                    self.metrics.processing_latency.observe(d.as_secs_f64());
                }
                let Encoded {
                    key,
                    value,
                    ticket,
                    event_time_ms,
                    content_fp,
                    id_fp,
                    unit,
                    ..
                } = e;
                self.send(
                    producer,
                    &topic,
                    partition,
                    Some(key.as_bytes()),
                    &value,
                    hs,
                    None,
                    AckMeta {
                        ticket,
                        kind,
                        task: p,
                        state: AckState::Emitted {
                            interaction: key.clone(),
                            event_time_ms,
                            content_fp,
                            id_fp,
                        },
                        unit: u32::try_from(unit).unwrap_or(u32::MAX),
                        reference: false,
                    },
                );
            }
            Output::Forward(f) => {
                let Some(rec) = rec else {
                    // Forwards are only made while their record is in hand.
                    self.trackers.release(f.ticket);
                    return;
                };
                let hops = serde_json::to_vec(&f.hops).unwrap_or_default();
                let hs = OwnedHeaders::new_with_capacity(2)
                    .insert(Header {
                        key: headers::LINEAGE_TOKEN,
                        value: Some(f.lineage_token.as_bytes()),
                    })
                    .insert(Header {
                        key: headers::LINEAGE_HOPS,
                        value: Some(&hops),
                    });
                let value = rec.value.get(f.range.clone()).unwrap_or(rec.value);
                let topic = self.topics.repartition.clone();
                self.send(
                    producer,
                    &topic,
                    f.home,
                    Some(f.key.as_bytes()),
                    value,
                    hs,
                    rec.timestamp_ms,
                    AckMeta {
                        ticket: f.ticket,
                        kind: AckKind::Forward,
                        task: p,
                        state: AckState::None,
                        unit: u32::try_from(f.range.start).unwrap_or(u32::MAX),
                        reference: false,
                    },
                );
            }
            Output::DeadLetter(d) => {
                let pos = self
                    .trackers
                    .origin(d.ticket)
                    .map(|(t, offset)| DeadLetterPos {
                        repartition: t.role == Role::Repartition,
                        offset,
                        unit: u32::try_from(d.range.start).unwrap_or(u32::MAX),
                    });
                if let (Some(pos), Some(seen)) = (pos, self.dead_lettered.get(&p)) {
                    if seen.contains(&pos) {
                        // Already dead-lettered before a restart.
                        self.metrics
                            .duplicates
                            .with_label_values(&["dead_letter_replay"])
                            .inc();
                        self.trackers.release(d.ticket);
                        return;
                    }
                }
                let (key, value, source) = match rec {
                    Some(r) => (
                        r.key,
                        r.value.get(d.range.clone()).unwrap_or(r.value),
                        r.source.clone(),
                    ),
                    None => (None, &[][..], self.origin_source(d.ticket)),
                };
                let failed_at = format_iso_ms(now_ms());
                let spec = dead_letter::Spec {
                    class: d.class,
                    message: &d.message,
                    stage: d.stage,
                    source: &source,
                    unit: d.range.start,
                    failed_at: &failed_at,
                    lineage_token: d.lineage_token.as_deref(),
                    key,
                };
                let dl = dead_letter::build(
                    &spec,
                    Rejected::Bytes(value),
                    self.settings.limits.get().dead_letter,
                    self.settings.plan.dead_letter_prefix,
                );
                let ts = rec.and_then(|r| r.timestamp_ms);
                self.send_dead_letter(
                    producer,
                    &source,
                    dl,
                    ts,
                    AckMeta {
                        ticket: d.ticket,
                        kind: AckKind::DeadLetter(d.class),
                        task: p,
                        state: pos.map_or(AckState::None, AckState::DeadLetter),
                        unit: u32::try_from(d.range.start).unwrap_or(u32::MAX),
                        reference: false,
                    },
                );
            }
        }
    }

    /// Where a ticket's record was read (`partition` -1 if unknown).
    fn origin_source(&self, ticket: Ticket) -> SourceRef {
        match self.trackers.origin(ticket) {
            Some((t, offset)) => SourceRef {
                topic: t.topic.clone(),
                partition: t.partition,
                offset,
            },
            None => SourceRef {
                topic: self.topics.input.clone(),
                partition: -1,
                offset: -1,
            },
        }
    }

    /// Produces a built dead letter on the source's dead-letter partition.
    fn send_dead_letter(
        &mut self,
        producer: &Producer_,
        source: &SourceRef,
        dl: dead_letter::DeadLetter<'_>,
        timestamp_ms: Option<i64>,
        mut meta: AckMeta,
    ) {
        meta.reference = dl.reference;
        let mut hs = OwnedHeaders::new_with_capacity(dl.headers.len());
        for (k, v) in &dl.headers {
            hs = hs.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let partition = source.partition.max(0) % self.settings.dead_letter_partitions.max(1);
        let topic = self.topics.dead_letter.clone();
        self.send(
            producer,
            &topic,
            partition,
            dl.key.as_deref(),
            &dl.value,
            hs,
            timestamp_ms,
            meta,
        );
    }

    /// The most bytes a record of `kind` may take (`None`: not checked).
    fn limit(&self, kind: AckKind) -> Option<usize> {
        let l = self.settings.limits.get();
        match kind {
            AckKind::Silver => Some(l.silver),
            AckKind::Late(_) => Some(l.late),
            AckKind::Forward => Some(l.repartition),
            AckKind::DeadLetter(_) | AckKind::Marker | AckKind::Changelog => None,
        }
    }

    /// An output refused for a reason of its own (too large, invalid) goes
    /// to the dead-letter topic instead, by reference when it does not fit
    /// there either, and the run goes on. Its ticket's hold passes to the
    /// dead letter, so the input offset is committed once that is
    /// acknowledged, and the dead-letter position joins the changelog, so a
    /// record read again after a restart is not dead-lettered twice.
    /// Changelog records, markers and dead letters already by reference
    /// cannot be replaced: those stop the run.
    fn reject_output(&mut self, producer: &Producer_, r: Reject) {
        let Reject {
            mut meta,
            topic,
            error,
            failed,
        } = r;
        let stage = match meta.kind {
            AckKind::Silver | AckKind::Late(_) => "output",
            AckKind::Forward => "repartition",
            AckKind::DeadLetter(_) if !meta.reference => {
                // A dead letter refused whole: send it again by reference,
                // with its own headers.
                tracing::warn!(topic = %topic, size = failed.digest.size, error = %error, "Dead letter refused; sending it by reference.");
                let mut headers: Vec<(&'static str, String)> = Vec::new();
                for (k, v) in failed.headers {
                    if let Some(known) = DEAD_LETTER_HEADERS.iter().find(|h| **h == k) {
                        headers.push((known, v));
                    }
                }
                let source = self.origin_source(meta.ticket);
                let dl = dead_letter::fit_reference(
                    dead_letter::reference(None, headers, failed.digest),
                    self.settings.limits.get().dead_letter,
                    self.settings.plan.dead_letter_prefix,
                );
                self.send_dead_letter(producer, &source, dl, None, meta);
                return;
            }
            _ => {
                self.metrics
                    .produce_errors
                    .with_label_values(&[topic.as_str()])
                    .inc();
                if self.fatal.is_none() {
                    tracing::error!(topic = %topic, error = %error, "Produce failed and the record cannot be dead-lettered; stopping without committing past it.");
                    self.fatal = Some(format!("producing to {topic} failed: {error}"));
                }
                return;
            }
        };
        let pos = self
            .trackers
            .origin(meta.ticket)
            .map(|(t, offset)| DeadLetterPos {
                repartition: t.role == Role::Repartition,
                offset,
                unit: meta.unit,
            });
        if let (Some(pos), Some(seen)) = (pos, self.dead_lettered.get(&meta.task)) {
            if seen.contains(&pos) {
                self.metrics
                    .duplicates
                    .with_label_values(&["dead_letter_replay"])
                    .inc();
                self.trackers.release(meta.ticket);
                return;
            }
        }
        let source = self.origin_source(meta.ticket);
        tracing::warn!(
            topic = %topic,
            class = failed.class,
            size = failed.digest.size,
            source_topic = %source.topic,
            source_partition = source.partition,
            source_offset = source.offset,
            "Output record refused; sent to the dead-letter topic instead."
        );
        let message = format!(
            "{stage} record of {} bytes for {topic} refused: {error}",
            failed.digest.size
        );
        let token = failed
            .headers
            .iter()
            .find(|(k, _)| k == headers::LINEAGE_TOKEN)
            .map(|(_, v)| v.as_str());
        let failed_at = format_iso_ms(now_ms());
        let spec = dead_letter::Spec {
            class: failed.class,
            message: &message,
            stage,
            source: &source,
            unit: meta.unit as usize,
            failed_at: &failed_at,
            lineage_token: token,
            key: failed.key.as_deref(),
        };
        let dl = dead_letter::build(
            &spec,
            Rejected::Digest(failed.digest.clone()),
            self.settings.limits.get().dead_letter,
            self.settings.plan.dead_letter_prefix,
        );
        meta.kind = AckKind::DeadLetter(failed.class);
        meta.state = pos.map_or(AckState::None, AckState::DeadLetter);
        self.send_dead_letter(producer, &source, dl, None, meta);
    }

    /// Dead-letters queued rejects (not re-entrant: a reject found while
    /// sending one is queued and taken by the same loop).
    fn drain_rejects(&mut self, producer: &Producer_) {
        if self.rejecting {
            return;
        }
        self.rejecting = true;
        while let Some(r) = self.rejects.pop() {
            self.reject_output(producer, r);
        }
        self.rejecting = false;
    }

    /// Produces one record; waits (serving delivery reports) while the
    /// producer queue is full, so memory stays bounded.
    #[allow(clippy::too_many_arguments)]
    fn send(
        &mut self,
        producer: &Producer_,
        topic: &str,
        partition: i32,
        key: Option<&[u8]>,
        value: &[u8],
        headers: OwnedHeaders,
        timestamp_ms: Option<i64>,
        meta: AckMeta,
    ) {
        let mut record: BaseRecord<'_, [u8], [u8], Box<AckMeta>> =
            BaseRecord::with_opaque_to(topic, Box::new(meta))
                .partition(partition)
                .payload(value)
                .headers(headers);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(ts) = timestamp_ms {
            record = record.timestamp(ts);
        }
        let task = record.delivery_opaque.task;
        // The headers this runtime puts on silver, late and forwarded
        // records are small and bounded (a lineage token of at most 256
        // bytes, the state header, a reason, one hop): far from the limit,
        // key and value alone decide, without walking the headers.
        const HEADER_ALLOWANCE: usize = 4096;
        if let Some(limit) = self
            .limit(record.delivery_opaque.kind)
            .filter(|l| key.map_or(0, <[u8]>::len) + value.len() + HEADER_ALLOWANCE > *l)
        {
            let size = dead_letter::record_size(
                key.map_or(0, <[u8]>::len),
                value.len(),
                record
                    .headers
                    .iter()
                    .flat_map(|h| h.iter())
                    .map(|h| (h.key, h.value.unwrap_or_default())),
            );
            if size > limit {
                let error = format!("about {size} bytes exceed the {limit}-byte limit");
                let failed = self.failed_record(dead_letter::TOO_LARGE, key, value, &record);
                self.rejects.push(Reject {
                    meta: *record.delivery_opaque,
                    topic: topic.to_string(),
                    error,
                    failed,
                });
                self.drain_rejects(producer);
                return;
            }
        }
        loop {
            match producer.send(record) {
                Ok(()) => {
                    *self.produced_unacked.entry(task).or_default() += 1;
                    return;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(10));
                    self.apply_acks(producer);
                }
                Err((e, r)) => {
                    if let Some(class) = e.rdkafka_error_code().and_then(dead_letter::record_level)
                    {
                        let failed = self.failed_record(class, key, value, &r);
                        self.rejects.push(Reject {
                            meta: *r.delivery_opaque,
                            topic: topic.to_string(),
                            error: e.to_string(),
                            failed,
                        });
                        self.drain_rejects(producer);
                        return;
                    }
                    let meta = r.delivery_opaque;
                    self.metrics
                        .produce_errors
                        .with_label_values(&[topic])
                        .inc();
                    // The first failure is logged; the records that follow
                    // it until the run stops are only counted.
                    if self.fatal.is_none() {
                        tracing::error!(topic, error = %e, ticket = meta.ticket, "Produce failed; stopping without committing past this record.");
                        self.fatal = Some(format!("producing to {topic} failed: {e}"));
                    }
                    return;
                }
            }
        }
    }

    /// What a refused record's dead letter needs of it.
    fn failed_record(
        &self,
        class: &'static str,
        key: Option<&[u8]>,
        value: &[u8],
        record: &BaseRecord<'_, [u8], [u8], Box<AckMeta>>,
    ) -> FailedRecord {
        FailedRecord::new(
            class,
            key,
            value,
            record.headers.as_ref(),
            self.settings.plan.dead_letter_prefix,
        )
    }

    /// Applies queued delivery reports: releases holds, counts outputs.
    fn apply_acks(&mut self, producer: &Producer_) {
        let acks = std::mem::take(&mut *lock(&producer.context().acks));
        let now = now_ms();
        for ack in acks {
            if let Some(n) = self.produced_unacked.get_mut(&ack.meta.task) {
                *n = n.saturating_sub(1);
            }
            if let Some(err) = ack.error {
                if let Some(failed) = ack.failed {
                    let topic = match ack.meta.kind {
                        AckKind::Silver => self.topics.silver.to_string(),
                        AckKind::Late(_) => self.topics.late.to_string(),
                        AckKind::DeadLetter(_) => self.topics.dead_letter.to_string(),
                        AckKind::Forward | AckKind::Marker => self.topics.repartition.to_string(),
                        AckKind::Changelog => self.settings.plan.changelog_topic.clone(),
                    };
                    self.rejects.push(Reject {
                        topic,
                        meta: ack.meta,
                        error: err,
                        failed,
                    });
                    continue;
                }
                let label = match ack.meta.kind {
                    AckKind::Silver => OUT_SILVER,
                    AckKind::Late(_) => OUT_LATE,
                    AckKind::DeadLetter(_) => OUT_DEAD_LETTER,
                    AckKind::Forward | AckKind::Marker => "repartition",
                    AckKind::Changelog => "changelog",
                };
                self.metrics
                    .produce_errors
                    .with_label_values(&[label])
                    .inc();
                self.fatal
                    .get_or_insert_with(|| format!("delivery to {label} failed: {err}"));
                continue;
            }
            if matches!(ack.meta.kind, AckKind::Marker | AckKind::Changelog) {
                continue;
            }
            if let (Some((part, offset)), Some(delta)) =
                (ack.position, self.deltas.get_mut(&ack.meta.task))
            {
                let topic = match ack.meta.kind {
                    AckKind::Late(_) => &self.topics.late,
                    AckKind::DeadLetter(_) => &self.topics.dead_letter,
                    _ => &self.topics.silver,
                };
                match &ack.meta.state {
                    AckState::Emitted {
                        interaction,
                        event_time_ms,
                        content_fp,
                        id_fp,
                    } => delta.record_emitted(interaction, *event_time_ms, *content_fp, *id_fp),
                    AckState::DeadLetter(pos) => delta.record_dead_letter(*pos),
                    AckState::None => {}
                }
                delta.cover(topic, part, offset);
            }
            let ts = self.trackers.release(ack.meta.ticket).flatten();
            let m = &self.metrics;
            match ack.meta.kind {
                AckKind::Silver => self.hot.out_silver.inc(),
                AckKind::Late(reason) => {
                    m.events_out.with_label_values(&[OUT_LATE]).inc();
                    m.late.with_label_values(&[reason]).inc();
                }
                AckKind::DeadLetter(class) => {
                    m.events_out.with_label_values(&[OUT_DEAD_LETTER]).inc();
                    m.dead_letters.with_label_values(&[class]).inc();
                }
                AckKind::Forward | AckKind::Marker | AckKind::Changelog => continue,
            }
            if let Some(ts) = ts {
                m.e2e_latency.observe(((now - ts).max(0) as f64) / 1000.0);
            }
        }
        self.drain_rejects(producer);
    }

    /// Transactions mode: waits for every output, adds the changelog and the
    /// consumed offsets, commits the transaction and opens the next one.
    /// `release`: partitions handed over by this transaction.
    fn commit_transaction<C: ConsumerContext>(
        &mut self,
        producer: &Producer_,
        consumer: &BaseConsumer<C>,
        release: Option<&[i32]>,
    ) -> Result<(), String> {
        let timeout = Duration::from_secs(60);
        producer
            .flush(timeout)
            .map_err(|e| format!("waiting for the transaction's records: {e}"))?;
        self.apply_acks(producer);
        if let Some(f) = self.fatal.take() {
            return Err(f);
        }
        self.write_changelog(producer, None);
        if let Some(parts) = release {
            self.release(producer, parts);
        }
        let points = self.trackers.take_commit_points();
        if !points.is_empty() {
            let mut tpl = TopicPartitionList::new();
            for (t, p, o) in &points {
                let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
            }
            let meta = consumer
                .group_metadata()
                .ok_or_else(|| "no consumer group metadata for the transaction".to_string())?;
            producer
                .send_offsets_to_transaction(&tpl, &meta, timeout)
                .map_err(|e| format!("adding offsets to the transaction: {e}"))?;
        }
        if let Err(e) = producer.commit_transaction(timeout) {
            self.metrics
                .transactions
                .with_label_values(&["aborted"])
                .inc();
            let _ = producer.abort_transaction(timeout);
            return Err(format!("committing the transaction: {e}"));
        }
        self.metrics
            .transactions
            .with_label_values(&["committed"])
            .inc();
        if !points.is_empty() {
            self.metrics.commits.inc();
        }
        producer
            .begin_transaction()
            .map_err(|e| format!("opening a transaction: {e}"))
    }

    /// Writes each task's acknowledged outputs to its changelog partition
    /// (`only`: just these tasks). A task with nothing new writes an owner
    /// record instead: every call renews this instance's lease on the
    /// partitions it owns (see [`crate::state::OwnerMark`]).
    fn write_changelog(&mut self, producer: &Producer_, only: Option<&[i32]>) {
        let mut parts: Vec<i32> = self
            .deltas
            .keys()
            .copied()
            .filter(|p| only.is_none_or(|o| o.contains(p)))
            .collect();
        parts.sort_unstable();
        for p in parts {
            let mut wrote = false;
            while let Some(value) = self
                .deltas
                .get_mut(&p)
                .filter(|d| d.is_dirty())
                .map(|d| d.take_record(&self.owner_id))
            {
                self.send_changelog(producer, p, &value);
                wrote = true;
            }
            if !wrote {
                let value = owner_record(&self.owner_id, false);
                self.send_changelog(producer, p, &value);
            }
        }
    }

    /// Hands partitions over: their changelog says this instance released
    /// them. Call once their outputs are acknowledged, their changelog
    /// written and their offsets committed.
    fn release(&mut self, producer: &Producer_, parts: &[i32]) {
        let value = owner_record(&self.owner_id, true);
        for p in parts {
            if self.deltas.contains_key(p) {
                self.send_changelog(producer, *p, &value);
            }
        }
    }

    fn send_changelog(&mut self, producer: &Producer_, p: i32, value: &[u8]) {
        let topic = self.settings.plan.changelog_topic.clone();
        let key = p.to_string();
        self.metrics.changelog_records.inc();
        self.send(
            producer,
            &topic,
            p,
            Some(key.as_bytes()),
            value,
            OwnedHeaders::new(),
            None,
            AckMeta {
                ticket: 0,
                kind: AckKind::Changelog,
                task: p,
                state: AckState::None,
                unit: 0,
                reference: false,
            },
        );
    }

    fn tick(&mut self, producer: &Producer_) {
        let now = Instant::now();
        let mut out = std::mem::take(&mut self.out);
        let mut parts: Vec<i32> = self.tasks.keys().copied().collect();
        parts.sort_unstable();
        for p in parts {
            if let Some(task) = self.tasks.get_mut(&p) {
                self.pipeline.tick(task, now, &mut out);
            }
            for o in out.drain(..) {
                self.route(producer, p, o, None);
            }
        }
        self.out = out;
    }

    fn flush_partition(&mut self, producer: &Producer_, p: i32) {
        let mut out = std::mem::take(&mut self.out);
        if let Some(task) = self.tasks.get_mut(&p) {
            self.pipeline.flush(task, &mut out);
        }
        for o in out.drain(..) {
            self.route(producer, p, o, None);
        }
        self.out = out;
    }

    fn buffered(&self) -> usize {
        self.tasks.values().map(Task::buffered).sum()
    }

    /// Announces each owned input partition's progress to every other
    /// repartition partition: when it has moved by `step_ms` of event time
    /// (at most once per `floor`), when it turns idle or active, and once a
    /// second as a keep-alive.
    fn send_markers(
        &mut self,
        producer: &Producer_,
        idle: Duration,
        step_ms: i64,
        floor: Duration,
    ) {
        let now = Instant::now();
        let n = self.settings.partitions;
        if n <= 1 {
            return;
        }
        let mut due = Vec::new();
        for (q, task) in &self.tasks {
            let Some(progress) = task.progress(now, idle) else {
                continue;
            };
            let send = match self.markers_sent.get(q) {
                None => true,
                Some(((w, was_idle), at)) => {
                    let since = now.saturating_duration_since(*at);
                    since >= Duration::from_secs(1)
                        || *was_idle != progress.1
                        || (since >= floor && progress.0.saturating_sub(*w) >= step_ms)
                }
            };
            if send {
                due.push((*q, progress));
            }
        }
        let topic = self.topics.repartition.clone();
        for (q, (event_time_ms, is_idle)) in due {
            self.markers_sent.insert(q, ((event_time_ms, is_idle), now));
            let value = serde_json::to_vec(&Marker {
                from: q,
                event_time_ms,
                idle: is_idle,
            })
            .unwrap_or_default();
            for p in (0..n).filter(|p| *p != q) {
                let hs = OwnedHeaders::new_with_capacity(1).insert(Header {
                    key: headers::MARKER,
                    value: Some(b"1"),
                });
                self.send(
                    producer,
                    &topic,
                    p,
                    None,
                    &value,
                    hs,
                    None,
                    AckMeta {
                        ticket: 0,
                        kind: AckKind::Marker,
                        task: q,
                        state: AckState::None,
                        unit: 0,
                        reference: false,
                    },
                );
            }
        }
    }

    fn update_gauges(&mut self) {
        let m = &self.metrics;
        m.reorder_buffered.set(self.buffered() as i64);
        m.in_flight_records.set(self.trackers.in_flight() as i64);
        m.produce_unacknowledged
            .set(self.produced_unacked.values().sum::<usize>() as i64);
        m.dedup_keys
            .set(self.tasks.values().map(Task::dedup_keys).sum::<u64>() as i64);
        let ev: u64 = self.tasks.values().map(Task::dedup_evictions).sum();
        if ev > self.last_evictions {
            m.dedup_evictions.inc_by(ev - self.last_evictions);
        }
        self.last_evictions = ev;
    }
}

/// Serves every delivery report librdkafka has queued. `poll(ZERO)` serves
/// one event (one batch of reports) per call; called once per loop round it
/// let acknowledgements pile up behind the input (the pipeline then paused
/// for backpressure with outputs long delivered: ~20k events/s on Tansu).
fn serve_deliveries(producer: &Producer_) {
    for _ in 0..10_000 {
        let before = lock(&producer.context().acks).len();
        producer.poll(Duration::ZERO);
        if lock(&producer.context().acks).len() == before {
            return;
        }
    }
}

/// A consumer poll error. Connection errors were already logged by the
/// client context when librdkafka reported them (and librdkafka retries),
/// so they are not logged twice.
fn log_poll_error(consumer: &str, e: &KafkaError) {
    let reported = matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::OperationTimedOut
        )
    );
    if reported {
        tracing::debug!(error = %e, consumer, "Consumer error.");
    } else {
        tracing::warn!(error = %e, consumer, "Consumer error.");
    }
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Signal,
    Idle,
}

/// The running engine.
pub struct Engine {
    consumer: BaseConsumer<GroupContext>,
    settings: EngineSettings,
}

impl Engine {
    pub fn new(
        settings: EngineSettings,
        pipeline: Pipeline,
        metrics: Arc<Metrics>,
    ) -> Result<Self, RuntimeError> {
        let plan = settings.plan.clone();
        let c = &settings.client;
        let transactional = plan.delivery == Delivery::Transactions;
        let txn_id = format!(
            "{}.{}",
            plan.transactional_id
                .as_deref()
                .unwrap_or(&settings.group_id),
            settings.instance_id
        );
        let mut producer_defaults = super::client::PRODUCER_DEFAULTS.to_vec();
        if transactional {
            producer_defaults.push(("transactional.id", &txn_id));
            // Transactions bound delivery time; records never time out
            // before their transaction does.
            producer_defaults.push(("message.timeout.ms", "60000"));
            producer_defaults.push(("transaction.timeout.ms", "60000"));
        }
        let producer: Producer_ = c
            .with_defaults(&producer_defaults)
            .create_with_context(AckContext {
                acks: Mutex::default(),
                prefix_cap: settings.plan.dead_letter_prefix,
            })
            .map_err(RuntimeError::client("producer"))?;
        if transactional {
            producer
                .init_transactions(Duration::from_secs(60))
                .map_err(RuntimeError::broker("initialising transactions"))?;
            producer
                .begin_transaction()
                .map_err(RuntimeError::broker("opening a transaction"))?;
            tracing::info!(transactional_id = %txn_id, "Transactions mode: outputs, changelog and offsets commit atomically.");
        }
        // A group id gives the side consumer librdkafka's incremental
        // assignment API; it never subscribes, so it never joins that group,
        // and it never commits (the group consumer commits its offsets).
        let side_group = format!("{}.repartition-reader", settings.group_id);
        let side: BaseConsumer<QuietContext> = c
            .with_defaults(
                &[
                    super::client::SIDE_CONSUMER_DEFAULTS,
                    &[("group.id", &side_group)],
                ]
                .concat(),
            )
            .create_with_context(QuietContext {
                what: "repartition",
            })
            .map_err(RuntimeError::client("repartition consumer"))?;
        let topics = Topics {
            input: Arc::from(plan.input_topic.as_str()),
            repartition: Arc::from(plan.repartition_topic.as_str()),
            silver: Arc::from(plan.silver_topic.as_str()),
            late: Arc::from(plan.late_topic.as_str()),
            dead_letter: Arc::from(plan.dead_letter_topic.as_str()),
        };
        let ctx = GroupContext {
            core: Mutex::new(Core {
                pipeline,
                settings: settings.clone(),
                metrics: metrics.clone(),
                tasks: HashMap::new(),
                trackers: Trackers::default(),
                topics: topics.clone(),
                pending_side: Vec::new(),
                out: Vec::new(),
                fatal: None,
                last_record: None,
                last_evictions: 0,
                markers_sent: HashMap::new(),
                restoring: HashMap::new(),
                deltas: HashMap::new(),
                dead_lettered: HashMap::new(),
                paused: false,
                owner_id: uuid::Uuid::new_v4().to_string(),
                header_buf: String::with_capacity(90),
                rewinds: HashMap::new(),
                reseeks: Vec::new(),
                produced_unacked: HashMap::new(),
                hot: HotCounters::new(&metrics),
                rejects: Vec::new(),
                rejecting: false,
            }),
            producer,
            side,
            metrics,
            failed_commits: Mutex::new(Vec::new()),
            input_topic: topics.input.clone(),
            repartition_topic: topics.repartition.clone(),
            transactional,
        };
        let consumer: BaseConsumer<GroupContext> = c
            .with_defaults(
                &[
                    super::client::GROUP_CONSUMER_DEFAULTS,
                    &[("group.id", &settings.group_id)],
                ]
                .concat(),
            )
            .create_with_context(ctx)
            .map_err(RuntimeError::client("consumer"))?;
        consumer
            .subscribe(&[&plan.input_topic])
            .map_err(RuntimeError::broker("subscribing to the input topic"))?;
        Ok(Self { consumer, settings })
    }

    fn ctx(&self) -> &GroupContext {
        self.consumer.context()
    }

    /// Assigns pending repartition partitions on the side consumer, from the
    /// group's committed offsets.
    fn assign_side(&self) {
        let pending: Vec<i32> = std::mem::take(&mut lock(&self.ctx().core).pending_side);
        if pending.is_empty() {
            return;
        }
        let topic = &self.settings.plan.repartition_topic;
        let mut tpl = TopicPartitionList::new();
        for p in &pending {
            let _ = tpl.add_partition(topic, *p);
        }
        let committed = match self
            .consumer
            .committed_offsets(tpl, Duration::from_secs(10))
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "Could not read committed repartition offsets; retrying.");
                lock(&self.ctx().core).pending_side.extend(pending);
                return;
            }
        };
        let mut assign = TopicPartitionList::new();
        let mut core = lock(&self.ctx().core);
        for e in committed.elements() {
            if !core.tasks.contains_key(&e.partition()) {
                continue; // revoked meanwhile
            }
            let offset = match e.offset() {
                Offset::Offset(o) if o > 0 => {
                    let rw = Rewind::new(o, INITIAL_WINDOW);
                    let start = rw.start();
                    core.rewinds.insert((Role::Repartition, e.partition()), rw);
                    Offset::Offset(start)
                }
                _ => Offset::Beginning,
            };
            let _ = assign.add_partition_offset(topic, e.partition(), offset);
            let t = core.topics.repartition.clone();
            core.trackers.open(Role::Repartition, t, e.partition());
        }
        drop(core);
        if assign.count() > 0 {
            if let Err(e) = self.ctx().side.incremental_assign(&assign) {
                tracing::warn!(error = %e, "Could not assign repartition partitions.");
            }
        }
    }

    /// Runs until `stop` is set, the idle condition holds, or a fatal error.
    pub fn run(&self, stop: &AtomicBool, health: &Health) -> Result<StopReason, RuntimeError> {
        let ctx = self.ctx();
        let started = Instant::now();
        let mut last_tick = Instant::now();
        let mut last_commit = Instant::now();
        let mut last_gauges = Instant::now();
        let max_in_flight = self.settings.plan.max_in_flight;
        // Watermark markers: a round (n-1 small records) whenever an input
        // partition's event time moved by half the allowed lateness, at most
        // every 5 ms (more with many partitions).
        let n = u32::try_from(self.settings.partitions.max(1)).unwrap_or(1);
        let marker_floor = Duration::from_millis(5) * (n / 8).max(1);
        let marker_step_ms = self.settings.plan.reorder.as_ref().map_or(2_500, |r| {
            i64::try_from(r.allowed_lateness.as_millis() / 2).unwrap_or(i64::MAX)
        });
        // An input partition with nothing read for the reorder idle timeout
        // says it is idle: it no longer holds the others' watermarks.
        let marker_idle = self
            .settings
            .plan
            .reorder
            .as_ref()
            .map_or(Duration::from_secs(2), |r| r.idle_timeout);
        // Watermark alignment: a partition whose reorder buffer holds this
        // many events because another partition is behind stops reading
        // until it has drained to half (see `Task::runs_ahead`). Not much
        // lower: every pause drops what librdkafka had fetched, and a
        // limit of 2,000 made a catch-up four times slower in the bench.
        let hold_limit = self.settings.plan.reorder.as_ref().map_or(usize::MAX, |r| {
            (r.max_buffered / 4).max((r.max_buffered / 2).min(10_000))
        });
        let reason = loop {
            if stop.load(Ordering::Relaxed) {
                break StopReason::Signal;
            }
            self.finish_restores();
            self.assign_side();
            let mut got = 0usize;
            while got < 2000 {
                match self.consumer.poll(Duration::ZERO) {
                    Some(Ok(msg)) => {
                        let p = msg.partition();
                        let mut core = lock(&ctx.core);
                        core.handle(&ctx.producer, Role::Input, &msg);
                        // A partition that just reached the alignment limit
                        // is paused before more of it is read.
                        let ahead = core
                            .tasks
                            .get(&p)
                            .is_some_and(|t| !t.held_back && t.runs_ahead(hold_limit));
                        drop(core);
                        got += 1;
                        if ahead {
                            break;
                        }
                    }
                    Some(Err(KafkaError::PartitionEOF(p))) => {
                        lock(&ctx.core).end_of_input_partition(p);
                    }
                    Some(Err(e)) => {
                        log_poll_error("input", &e);
                        break;
                    }
                    None => break,
                }
            }
            let mut side_got = 0usize;
            while side_got < 2000 {
                match ctx.side.poll(Duration::ZERO) {
                    Some(Ok(msg)) => {
                        lock(&ctx.core).handle(&ctx.producer, Role::Repartition, &msg);
                        side_got += 1;
                    }
                    Some(Err(e)) => {
                        log_poll_error("repartition", &e);
                        break;
                    }
                    None => break,
                }
            }
            serve_deliveries(&ctx.producer);
            lock(&ctx.core).check_stalled_rewinds();
            self.do_reseeks();
            let mut core = lock(&ctx.core);
            core.apply_acks(&ctx.producer);
            if let Some(f) = core.fatal.take() {
                return Err(RuntimeError::Delivery(f));
            }
            if last_tick.elapsed() >= Duration::from_millis(10) {
                core.tick(&ctx.producer);
                last_tick = Instant::now();
            }
            core.send_markers(&ctx.producer, marker_idle, marker_step_ms, marker_floor);
            if !core.tasks.is_empty() {
                health.ready.store(true, Ordering::Relaxed);
            }
            if last_commit.elapsed() >= self.settings.plan.commit_interval && ctx.transactional {
                last_commit = Instant::now();
                core.commit_transaction(&ctx.producer, &self.consumer, None)
                    .map_err(RuntimeError::Transaction)?;
            }
            if last_commit.elapsed() >= self.settings.plan.commit_interval {
                last_commit = Instant::now();
                core.write_changelog(&ctx.producer, None);
                ctx.resend_failed_commits(&mut core);
                let points = core.trackers.take_commit_points();
                if !points.is_empty() {
                    let mut tpl = TopicPartitionList::new();
                    for (t, p, o) in &points {
                        let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
                    }
                    match self.consumer.commit(&tpl, CommitMode::Async) {
                        Ok(()) => ctx.metrics.commits.inc(),
                        Err(e) => {
                            ctx.metrics.commit_errors.inc();
                            tracing::warn!(error = %e, "Offset commit failed.");
                        }
                    }
                }
            }
            if last_gauges.elapsed() >= Duration::from_millis(500) {
                core.update_gauges();
                last_gauges = Instant::now();
            }
            // Backpressure counts what waits for the broker, not records
            // whose events wait in a reorder buffer (bounded by its own
            // `max_buffered`, and released only as more input is read).
            let in_flight = core.produced_unacked.values().sum::<usize>();
            let paused = core.paused;
            if !paused && in_flight >= max_in_flight {
                core.paused = true;
                drop(core);
                self.set_paused(true);
                core = lock(&ctx.core);
            } else if paused && in_flight < max_in_flight / 2 {
                core.paused = false;
                drop(core);
                self.set_paused(false);
                core = lock(&ctx.core);
            }
            if let Some(idle) = self.settings.exit_when_idle {
                let quiet = match core.last_record {
                    Some(t) => t.elapsed() >= idle,
                    None => started.elapsed() >= idle * 6,
                };
                if quiet
                    && !core.tasks.is_empty()
                    && core.buffered() == 0
                    && core.trackers.in_flight() == 0
                    && core.pending_side.is_empty()
                    && core.restoring.is_empty()
                {
                    break StopReason::Idle;
                }
            }
            drop(core);
            self.align(hold_limit);
            if got == 0 && side_got == 0 {
                // Nothing to read: block briefly on the group consumer (this
                // also serves rebalance and stats callbacks).
                if let Some(r) = self.consumer.poll(Duration::from_millis(2)) {
                    match r {
                        Ok(msg) => lock(&ctx.core).handle(&ctx.producer, Role::Input, &msg),
                        Err(KafkaError::PartitionEOF(p)) => {
                            lock(&ctx.core).end_of_input_partition(p)
                        }
                        Err(e) => log_poll_error("input", &e),
                    }
                }
            }
        };
        health.ready.store(false, Ordering::Relaxed);
        self.shutdown()?;
        Ok(reason)
    }

    /// Watermark alignment: pauses input partitions whose task runs ahead
    /// of another partition with `limit` events buffered, and resumes them
    /// once drained to half (or no longer ahead). A resumed partition is
    /// sought to where it stopped, through a [`Rewind`] (pausing drops what
    /// librdkafka had fetched, and some brokers skip the rest of a batch
    /// when a fetch starts inside it). Not while consumption is paused for
    /// backpressure: that resume leaves held partitions alone, and they are
    /// looked at again afterwards.
    fn align(&self, limit: usize) {
        let ctx = self.ctx();
        let mut core = lock(&ctx.core);
        if core.paused {
            return;
        }
        let mut pause = Vec::new();
        let mut resume = Vec::new();
        for (p, task) in &core.tasks {
            if core.restoring.contains_key(p) {
                continue;
            }
            if !task.held_back && task.runs_ahead(limit) {
                pause.push(*p);
            } else if task.held_back && !task.runs_ahead(limit / 2) {
                resume.push(*p);
            }
        }
        if pause.is_empty() && resume.is_empty() {
            return;
        }
        for p in &pause {
            if let Some(t) = core.tasks.get_mut(p) {
                t.held_back = true;
            }
        }
        for p in &resume {
            if let Some(t) = core.tasks.get_mut(p) {
                t.held_back = false;
            }
        }
        let held = core.tasks.values().filter(|t| t.held_back).count();
        drop(core);
        ctx.metrics.partitions_held_back.set(held as i64);
        ctx.metrics.hold_backs.inc_by(pause.len() as u64);
        let topic = &self.settings.plan.input_topic;
        if !pause.is_empty() {
            let mut tpl = TopicPartitionList::new();
            for p in &pause {
                let _ = tpl.add_partition(topic, *p);
            }
            if let Err(e) = self.consumer.pause(&tpl) {
                tracing::warn!(error = %e, "Could not pause input partitions for watermark alignment.");
            }
            tracing::debug!(partitions = ?pause, "Input partitions ahead of another partition paused.");
        }
        if !resume.is_empty() {
            self.resume_where_stopped(&resume);
            tracing::debug!(partitions = ?resume, "Held-back input partitions resumed.");
        }
    }

    /// Resumes paused input partitions where this instance stopped reading
    /// them, through a [`Rewind`]: pausing drops what librdkafka had
    /// prefetched, and some brokers skip the rest of a batch when a fetch
    /// starts inside it. A partition nothing was read from resumes where the
    /// client stands.
    fn resume_where_stopped(&self, parts: &[i32]) {
        let topic = &self.settings.plan.input_topic;
        let mut seeks = Vec::new();
        {
            let mut core = lock(&self.ctx().core);
            for p in parts {
                let from = core
                    .trackers
                    .get(Role::Input, *p)
                    .and_then(|t| t.next_offset());
                if let Some(o) = from {
                    let rw = Rewind::new(o, INITIAL_WINDOW);
                    seeks.push((*p, rw.start()));
                    core.rewinds.insert((Role::Input, *p), rw);
                }
            }
        }
        for (p, start) in seeks {
            if let Err(e) =
                self.consumer
                    .seek(topic, p, Offset::Offset(start), Duration::from_secs(10))
            {
                tracing::warn!(partition = p, error = %e, "Could not seek a paused partition before resuming it.");
            }
        }
        let mut tpl = TopicPartitionList::new();
        for p in parts {
            let _ = tpl.add_partition(topic, *p);
        }
        if let Err(e) = self.consumer.resume(&tpl) {
            tracing::warn!(error = %e, "Could not resume input partitions.");
        }
    }

    /// Installs finished restores: their partitions resume from the
    /// committed offset.
    fn finish_restores(&self) {
        let ctx = self.ctx();
        let mut core = lock(&ctx.core);
        if core.restoring.is_empty() {
            return;
        }
        let ready = core.finish_restores();
        let paused = core.paused;
        drop(core);
        let topic = &self.settings.plan.input_topic;
        for p in ready {
            // Resume from the committed offset, which nobody else moves
            // while we own p: records delivered meanwhile (fetched before the
            // pause took hold) are read again; the seek discards anything
            // fetched before it.
            let from = match self.committed_input_offset(p) {
                Offset::Offset(o) if o > 0 => {
                    // Start a little earlier: some brokers skip the rest of
                    // a batch when a fetch starts inside it (see Rewind).
                    let rw = Rewind::new(o, INITIAL_WINDOW);
                    let start = rw.start();
                    lock(&self.ctx().core).rewinds.insert((Role::Input, p), rw);
                    Offset::Offset(start)
                }
                other => other,
            };
            if let Err(e) = self.consumer.seek(topic, p, from, Duration::from_secs(10)) {
                tracing::warn!(partition = p, error = %e, "Could not seek after restore.");
            }
            if !paused {
                let mut tpl = TopicPartitionList::new();
                let _ = tpl.add_partition(topic, p);
                if let Err(e) = self.consumer.resume(&tpl) {
                    tracing::warn!(partition = p, error = %e, "Could not resume a restored partition.");
                }
            }
        }
    }

    /// Seeks that resuming partitions asked for (see [`Rewind`]).
    fn do_reseeks(&self) {
        let ctx = self.ctx();
        let seeks = std::mem::take(&mut lock(&ctx.core).reseeks);
        for (role, p, from) in seeks {
            let r = match role {
                Role::Input => self.consumer.seek(
                    &self.settings.plan.input_topic,
                    p,
                    Offset::Offset(from),
                    Duration::from_secs(10),
                ),
                Role::Repartition => ctx.side.seek(
                    &self.settings.plan.repartition_topic,
                    p,
                    Offset::Offset(from),
                    Duration::from_secs(10),
                ),
            };
            let mut core = lock(&ctx.core);
            match r {
                Ok(()) => {
                    if let Some(rw) = core.rewinds.get_mut(&(role, p)) {
                        rw.seeked();
                    }
                }
                Err(e) => {
                    tracing::warn!(partition = p, ?role, error = %e, "Could not seek; retrying.");
                    core.reseeks.push((role, p, from));
                }
            }
        }
    }

    /// The group's committed offset for input partition `p` (the beginning
    /// if none).
    fn committed_input_offset(&self, p: i32) -> Offset {
        let topic = &self.settings.plan.input_topic;
        let mut tpl = TopicPartitionList::new();
        let _ = tpl.add_partition(topic, p);
        match self
            .consumer
            .committed_offsets(tpl, Duration::from_secs(10))
        {
            Ok(c) => match c.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => Offset::Offset(o),
                _ => Offset::Beginning,
            },
            Err(e) => {
                tracing::warn!(partition = p, error = %e, "Could not read the committed offset; re-reading from the beginning.");
                Offset::Beginning
            }
        }
    }

    fn set_paused(&self, pause: bool) {
        let ctx = self.ctx();
        ctx.metrics.paused.set(i64::from(pause));
        if let Ok(assignment) = self.consumer.assignment() {
            if pause {
                if let Err(e) = self.consumer.pause(&assignment) {
                    tracing::warn!(error = %e, "Could not pause input partitions.");
                }
            } else {
                // Partitions still restoring, or held back for watermark
                // alignment, stay paused.
                let parts: Vec<i32> = {
                    let core = lock(&ctx.core);
                    assignment
                        .elements()
                        .iter()
                        .map(|e| e.partition())
                        .filter(|p| {
                            !core.restoring.contains_key(p)
                                && !core.tasks.get(p).is_some_and(|t| t.held_back)
                        })
                        .collect()
                };
                self.resume_where_stopped(&parts);
            }
        }
        if let Ok(assignment) = ctx.side.assignment() {
            let _ = if pause {
                ctx.side.pause(&assignment)
            } else {
                ctx.side.resume(&assignment)
            };
        }
        if pause {
            tracing::info!(
                unacknowledged = lock(&ctx.core).produced_unacked.values().sum::<usize>(),
                "Consumption paused: too many outputs wait for the broker's acknowledgement (outputs slow or unavailable)."
            );
        } else {
            tracing::info!("Consumption resumed.");
        }
    }

    /// Graceful stop: release every buffered event, wait for every delivery,
    /// commit, then leave the group.
    fn shutdown(&self) -> Result<(), RuntimeError> {
        let ctx = self.ctx();
        let mut core = lock(&ctx.core);
        let parts: Vec<i32> = core.tasks.keys().copied().collect();
        for p in &parts {
            core.flush_partition(&ctx.producer, *p);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while core.trackers.in_flight() > 0 && Instant::now() < deadline {
            ctx.producer.poll(Duration::from_millis(20));
            core.apply_acks(&ctx.producer);
        }
        if ctx.transactional {
            core.commit_transaction(&ctx.producer, &self.consumer, Some(&parts))
                .map_err(RuntimeError::Transaction)?;
        } else {
            core.write_changelog(&ctx.producer, None);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while ctx.producer.in_flight_count() > 0 && Instant::now() < deadline {
            ctx.producer.poll(Duration::from_millis(20));
        }
        core.apply_acks(&ctx.producer);
        let left = core.trackers.in_flight();
        if let Ok(pos) = self.consumer.position() {
            for e in pos.elements() {
                tracing::debug!(topic = e.topic(), partition = e.partition(), offset = ?e.offset(), "Position at stop.");
            }
        }
        ctx.resend_failed_commits(&mut core);
        let points = core.trackers.take_commit_points();
        core.update_gauges();
        drop(core);
        if !points.is_empty() && !ctx.transactional {
            let mut tpl = TopicPartitionList::new();
            for (t, p, o) in &points {
                let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
            }
            match self.consumer.commit(&tpl, CommitMode::Sync) {
                Ok(()) => ctx.metrics.commits.inc(),
                // A rebalance under way (another instance joining or
                // leaving) refuses commits; the final revoke below commits
                // again, and whatever stays uncommitted is re-read by the
                // next owner, which drops it as already emitted.
                Err(e) => {
                    ctx.metrics.commit_errors.inc();
                    tracing::warn!(error = %e, "Offset commit at stop failed; committing again as the partitions are handed over.");
                }
            }
        }
        if !ctx.transactional {
            lock(&ctx.core).release(&ctx.producer, &parts);
            ctx.producer
                .flush(Duration::from_secs(10))
                .map_err(RuntimeError::broker("delivering the hand-over records"))?;
        }
        tracing::info!(
            records_not_acknowledged = left,
            partitions = parts.len(),
            "Buffers flushed at stop."
        );
        if left > 0 {
            tracing::warn!(
                records = left,
                "Stopped with records not acknowledged; they will be re-read at the next start."
            );
        }
        self.consumer.unsubscribe();
        // Serve the final revoke callback (nothing left to flush).
        let _ = self.consumer.poll(Duration::from_millis(100));
        Ok(())
    }
}
