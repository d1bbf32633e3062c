//! The processing loop: one group consumer on the (first) input topic, one
//! assign-only consumer on the repartition partitions of the same numbers,
//! one more per co-partitioned input topic, one idempotent producer for
//! every output.
//!
//! All state lives in [`Core`] behind a mutex that the loop holds while it
//! processes and that the rebalance callbacks take while they flush (they run
//! inside `poll`, when the loop holds nothing). Delivery reports are queued by
//! the producer context and applied by whoever holds the core.
//!
//! | file | role |
//! |---|---|
//! | `mod.rs` | the shared types: settings, [`Core`], the contexts, acknowledgement metadata |
//! | `run.rs` | [`Engine`]: clients, the loop, backpressure, watermark alignment, the stop |
//! | `route.rs` | one consumed record through the pipeline, and each output to a produce |
//! | `send.rs` | the produce call, size limits, refused outputs sent as dead letters |
//! | `acks.rs` | delivery reports: queued by the producer context, applied to state and offsets |
//! | `commit.rs` | transaction commits, changelog records, the hand-over release |
//! | `checkpoint.rs` | checkpointed state: table changes, checkpoint records, the forward replay guard |
//! | `group.rs` | rebalance and commit callbacks, the hand-over of revoked partitions |
//! | `partitions.rs` | an owned partition's life: restore, install, unassign, resume |
//! | `tick.rs` | periodic work: watermark markers, idle flushes, gauges |

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
use super::restore_tables::TablesOutcome;
use super::rewind::{Rewind, Step, INITIAL_WINDOW, STALL_AFTER};
use super::tracker::Trackers;
use super::RuntimeError;
use crate::config::Delivery;
use crate::config::RuntimePlan;
use crate::headers;
use crate::http::Health;
use crate::metrics::{Metrics, OUT_DEAD_LETTER};
use crate::model::{format_iso_ms, now_ms, SourceRef, Ticket};
use crate::partition::partition_for;
use crate::stage::{
    Emit, EmitState, Output, Port, PortId, RecordIn, Role, Stage, StageTask, StateModel, Watermarks,
};
use crate::state::{owner_record, write_state_header, DeadLetterPos, Delta};

mod acks;
mod checkpoint;
mod commit;
mod group;
mod partitions;
mod route;
mod run;
mod send;
mod tick;

/// Everything the loop needs to know about topics and limits.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub plan: Arc<RuntimePlan>,
    pub client: ClientSettings,
    pub group_id: String,
    /// Input partition count (= repartition partition count).
    pub partitions: i32,
    /// The stage's output ports with their topics' partition counts, in
    /// [`PortId`] order.
    pub ports: Vec<(Port, i32)>,
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
    /// An emit to a port, with its tag's value if it has one.
    Emit(PortId, Option<&'static str>),
    DeadLetter(&'static str),
    Forward,
    Marker,
    Changelog,
}

/// What an acknowledged output adds to its task's changelog.
#[derive(Debug)]
enum AckState {
    None,
    Emitted { key: String, state: EmitState },
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

/// Producer context: queues delivery reports for the loop.
#[derive(Debug, Default)]
struct AckContext {
    acks: Mutex<Vec<Ack>>,
    /// Bytes of a failed record kept for its reference-form dead letter.
    prefix_cap: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

type Producer_ = BaseProducer<AckContext>;

/// Consumer context: owns the state so rebalance callbacks can flush it.
struct GroupContext<S: Stage> {
    core: Mutex<Core<S>>,
    producer: Producer_,
    side: BaseConsumer<QuietContext>,
    /// One assign-only consumer per co-input ([`Role::CoInput`]), reading
    /// the partitions of the same numbers as the group assigns (one per
    /// topic: librdkafka reports a partition's end without its topic).
    co: Vec<BaseConsumer<QuietContext>>,
    metrics: Arc<Metrics>,
    /// Commits that failed (topic, partition, offset), reported by the
    /// commit callback and sent again by the loop. Not in [`Core`]: the
    /// callback can run inside a synchronous commit made with it locked.
    failed_commits: Mutex<Vec<(String, i32, i64)>>,
    topics: Topics,
    /// `runtime.delivery = "transactions"`.
    transactional: bool,
}

impl<S: Stage> GroupContext<S> {
    /// The assign-only consumer that reads `role` (`None` for the input,
    /// which the group consumer reads).
    fn side_of(&self, role: Role) -> Option<&BaseConsumer<QuietContext>> {
        match role {
            Role::Input => None,
            Role::Repartition => Some(&self.side),
            Role::CoInput(n) => self.co.get(usize::from(n)),
        }
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
struct Core<S: Stage> {
    stage: S,
    settings: EngineSettings,
    metrics: Arc<Metrics>,
    tasks: HashMap<i32, S::Task>,
    trackers: Trackers,
    topics: Topics,
    /// The output ports, indexed by [`PortId`].
    ports: Vec<PortOut>,
    /// Partitions whose repartition (and co-input) partitions are still to
    /// assign on the side consumers.
    pending_side: Vec<i32>,
    /// Partitions (input, repartition) assigned here that this instance has
    /// not yet read to their end: the idle exit waits for them, so a run
    /// does not end "idle" before a partition restored last was read.
    unread: HashSet<(Role, i32)>,
    out: Vec<Output>,
    fatal: Option<String>,
    last_record: Option<Instant>,
    /// Last marker sent per owned input partition: ((progress, idle), when).
    markers_sent: HashMap<i32, ((i64, bool), Instant)>,
    /// Partitions assigned whose state is still being restored.
    restoring: HashMap<i32, Restoring>,
    /// Per task: what was acknowledged since its last changelog record.
    deltas: HashMap<i32, Delta>,
    /// Per task: positions already dead-lettered before a restart.
    dead_lettered: HashMap<i32, HashSet<DeadLetterPos>>,
    /// The stage's state is checkpointed ([`StateModel::Checkpointed`]).
    checkpointed: bool,
    /// Per task of a checkpointed stage: its checkpoint bookkeeping.
    checkpoints: HashMap<i32, checkpoint::TaskCheckpoint>,
    /// Where a restored partition resumes when its checkpoint says so
    /// (ahead of the committed offset after a crash between the two).
    resume_at: HashMap<(Role, i32), i64>,
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
}

impl HotCounters {
    fn new(m: &Metrics) -> Self {
        Self {
            read_input: m.records_read.with_label_values(&["input"]),
            read_repartition: m.records_read.with_label_values(&["repartition"]),
        }
    }
}

#[derive(Debug, Clone)]
struct Topics {
    input: Arc<str>,
    /// Input topics after the first, co-partitioned with it.
    co_inputs: Vec<Arc<str>>,
    repartition: Arc<str>,
    dead_letter: Arc<str>,
}

impl Topics {
    /// The topic a role reads.
    fn of(&self, role: Role) -> Arc<str> {
        match role {
            Role::Input => self.input.clone(),
            Role::Repartition => self.repartition.clone(),
            Role::CoInput(n) => self
                .co_inputs
                .get(usize::from(n))
                .cloned()
                .unwrap_or_else(|| self.input.clone()),
        }
    }

    /// The role of a topic this stage reads.
    fn role_of(&self, topic: &str) -> Option<Role> {
        if topic == &*self.input {
            return Some(Role::Input);
        }
        if topic == &*self.repartition {
            return Some(Role::Repartition);
        }
        self.co_inputs
            .iter()
            .position(|t| &**t == topic)
            .and_then(|n| u8::try_from(n).ok())
            .map(Role::CoInput)
    }

    /// Every role this stage reads: the input, the co-inputs, the
    /// repartition topic.
    fn roles(&self) -> Vec<Role> {
        let mut r = vec![Role::Input];
        r.extend(self.side_roles());
        r
    }

    /// The roles read by assign-only consumers: the co-inputs, then the
    /// repartition topic.
    fn side_roles(&self) -> Vec<Role> {
        (0..self.co_inputs.len())
            .filter_map(|n| u8::try_from(n).ok())
            .map(Role::CoInput)
            .chain([Role::Repartition])
            .collect()
    }
}

/// One output port as the loop uses it.
#[derive(Debug)]
struct PortOut {
    name: &'static str,
    topic: Arc<str>,
    partitions: i32,
    /// `cxstream_events_out_total{output=<name>}`, resolved once.
    out: prometheus::IntCounter,
    tag_counter: Option<prometheus::IntCounterVec>,
}

impl PortOut {
    fn new(port: &Port, partitions: i32, m: &Metrics) -> Self {
        PortOut {
            name: port.name,
            topic: Arc::from(port.topic.as_str()),
            partitions,
            out: m.events_out.with_label_values(&[port.name]),
            tag_counter: port.tag_counter.clone(),
        }
    }
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Signal,
    Idle,
}

/// The running engine.
pub struct Engine<S: Stage> {
    consumer: BaseConsumer<GroupContext<S>>,
    settings: EngineSettings,
}
