//! What a stage and the Kafka runtime exchange, without Kafka: the record a
//! stage is given ([`RecordIn`]), the output ports it declares ([`Port`]) and
//! what it asks the runtime to do ([`Output`]).
//!
//! The runtime routes an [`Emit`] by its [`PortId`] to that port's topic,
//! partitioned by the emit's key; it knows ports by index and name, not by
//! what they carry. Forwards (re-keying through the repartition topic),
//! dead letters and releases are the runtime's own, for every stage.
//!
//! A [`Stage`] holds what its partitions share (settings, keys, metrics) and
//! makes one [`StageTask`] per owned input partition; the runtime calls the
//! stage with the task of the record's partition. Nothing here knows Kafka:
//! a stage is unit-tested by feeding it [`RecordIn`]s.

use std::ops::Range;
use std::time::{Duration, Instant};

use prometheus::IntCounterVec;

use crate::model::{Fingerprint, Hop, SourceRef, Ticket};
use crate::state::tables::{Change, Tables};
use crate::state::Restored;

/// The ticket of an output made for no record in particular (a
/// checkpoint output): acknowledging it releases nothing.
pub const NO_TICKET: Ticket = Ticket::MAX;

/// Which topic a record was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The stage's first input topic (read through the consumer group).
    Input,
    /// The stage's input topic number `n + 1`, co-partitioned with the
    /// first: its partition `p` is read by the task of input partition `p`.
    CoInput(u8),
    /// The stage's internal repartition topic (events already counted at
    /// ingest).
    Repartition,
}

impl Role {
    /// One of the stage's input topics (not the repartition topic).
    pub fn is_input(self) -> bool {
        !matches!(self, Role::Repartition)
    }

    /// The role's number in state records and headers: 0 the input, 1 the
    /// repartition topic, `2 + n` co-input `n`.
    pub fn code(self) -> u8 {
        match self {
            Role::Input => 0,
            Role::Repartition => 1,
            Role::CoInput(n) => n.saturating_add(2),
        }
    }

    /// The inverse of [`Role::code`].
    pub fn from_code(code: u8) -> Role {
        match code {
            0 => Role::Input,
            1 => Role::Repartition,
            n => Role::CoInput(n - 2),
        }
    }
}

/// One Kafka record as a stage sees it.
#[derive(Debug)]
pub struct RecordIn<'a> {
    pub value: &'a [u8],
    pub source: SourceRef,
    pub role: Role,
    /// Header `cx.lineage.token`.
    pub header_token: Option<&'a str>,
    /// Header `cx.lineage.hops` (JSON array), set on repartitioned records.
    pub header_hops: Option<&'a [u8]>,
    pub record_timestamp_ms: Option<i64>,
    pub ticket: Ticket,
}

/// Index of an output port, in the order the stage lists its ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortId(pub u8);

/// One output port of a stage.
#[derive(Debug, Clone)]
pub struct Port {
    /// The `output` label of `cxstream_events_out_total` (and of produce
    /// errors) for records of this port.
    pub name: &'static str,
    pub topic: String,
    /// Counted per [`Emit::tag`] value when an emit that carries a tag is
    /// acknowledged (e.g. late events by reason).
    pub tag_counter: Option<IntCounterVec>,
}

/// A record for one of the stage's output ports.
#[derive(Debug)]
pub struct Emit {
    pub port: PortId,
    /// Kafka key; the record goes to the port partition this key hashes to.
    pub key: String,
    pub value: Vec<u8>,
    /// Header `cx.lineage.token`.
    pub lineage_token: String,
    /// One more header, `(name, value)` (e.g. the late reason).
    pub tag: Option<(&'static str, &'static str)>,
    pub ticket: Ticket,
    /// Byte offset of the event's unit in its source record (identifies a
    /// dead letter made of this output).
    pub unit: usize,
    /// Emitted-state stages ([`StateModel::Emitted`]): what the output adds
    /// to the task's state once acknowledged; it is also written in the
    /// record's `cx.state` header for restore. `None` for checkpointed
    /// stages, whose state is in their tables.
    pub state: Option<EmitState>,
}

/// State an acknowledged emit implies: the key's latest event time and the
/// fingerprints it has seen (the replay guard and dedup of a restore).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmitState {
    pub event_time_ms: i64,
    pub content_fp: Fingerprint,
    pub id_fp: Option<Fingerprint>,
}

/// A rejected unit: the runtime sends the original bytes to the dead-letter
/// topic with `cx.error.*` and `cx.source.*` headers.
#[derive(Debug)]
pub struct DeadLetterOut {
    pub class: &'static str,
    /// Never quotes field values.
    pub message: String,
    pub stage: &'static str,
    /// The rejected bytes within the record value.
    pub range: Range<usize>,
    pub lineage_token: Option<String>,
    pub ticket: Ticket,
}

/// An event whose record is not on its key's partition: the runtime
/// produces its raw bytes (or a value the stage made of them) to the
/// repartition topic, partition `home`.
#[derive(Debug)]
pub struct ForwardOut {
    pub home: i32,
    pub key: String,
    /// The unit's bytes within the record value; its start names the unit
    /// (the replay guard after a restart).
    pub range: Range<usize>,
    /// What to forward instead of those bytes (a stage that re-keys what
    /// it made of a record, not the record itself).
    pub payload: Option<Vec<u8>>,
    /// The forward carries the complete current value of its key, which
    /// replaces every earlier one at the home (a stage-made `payload` that
    /// depends on the task's state, not only on the record). After a
    /// restart the runtime sends it again rather than skip it as already
    /// forwarded: records of two inputs can be read again in another
    /// order, and only the last value sent is complete.
    pub replaces: bool,
    pub lineage_token: String,
    pub hops: Vec<Hop>,
    pub ticket: Ticket,
}

/// What a stage asks the runtime to do.
#[derive(Debug)]
pub enum Output {
    Emit(Emit),
    DeadLetter(DeadLetterOut),
    Forward(ForwardOut),
    /// Dropped (duplicate or filtered): nothing to produce, release the hold.
    Done {
        ticket: Ticket,
    },
}

impl Output {
    pub fn ticket(&self) -> Ticket {
        match self {
            Output::Emit(e) => e.ticket,
            Output::DeadLetter(d) => d.ticket,
            Output::Forward(f) => f.ticket,
            Output::Done { ticket } => *ticket,
        }
    }
}

/// How the runtime spreads a stage's progress between its partitions
/// (watermark markers on the repartition topic) and holds back a partition
/// that runs ahead of the others (alignment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    /// A marker round whenever a partition's progress moved this far.
    pub step_ms: i64,
    /// A partition with nothing read for this long says it is idle.
    pub idle: Duration,
    /// A task that buffers this many events because it runs ahead is
    /// paused until it has drained to half ([`StageTask::runs_ahead`]).
    pub hold_limit: usize,
}

/// How a stage's state survives a crash (see [`crate::state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateModel {
    /// The state is what the task emitted: rebuilt from the changelog's
    /// deltas and the outputs' tail; an input offset is committed once
    /// the outputs of its record are acknowledged (silver).
    Emitted,
    /// The state is the task's tables, which outputs do not imply (counts,
    /// open windows, chain heads). At each commit the runtime asks the task
    /// for its checkpoint outputs ([`Stage::checkpoint`]) and its table
    /// changes ([`StageTask::take_changes`]), waits until every output is
    /// acknowledged, writes the changes and a checkpoint record with the
    /// input offsets the tables correspond to, and commits those offsets
    /// once the checkpoint is acknowledged. A restore loads the tables and
    /// resumes at the checkpoint's offsets. Records forwarded through the
    /// repartition topic and dead letters are not written twice after a
    /// restart (the runtime's replay guard); outputs a task emits from
    /// [`Stage::checkpoint`] may be written again with the same content
    /// after a crash, so they should be upserts (the latest value of a key).
    Checkpointed,
}

/// A keyed stage: what every partition shares.
pub trait Stage: Send + Sync + 'static {
    type Task: StageTask;

    /// How the stage's state survives a crash.
    fn state_model(&self) -> StateModel {
        StateModel::Emitted
    }

    /// Checkpointed stages: outputs to write before the checkpoint that the
    /// runtime is about to take (for example the current value of every
    /// key that changed since the last one). Called at every commit.
    fn checkpoint(&self, _task: &mut Self::Task, _out: &mut Vec<Output>) {}

    /// The output ports, in [`PortId`] order.
    fn ports(&self) -> Vec<Port>;

    /// Checkpointed stages: the ports whose records written after the last
    /// checkpoint a restore hands back to the task, one by one
    /// ([`StageTask::restore_output`]), so that a result the task makes
    /// again continues from what was written (revisions that only go up).
    fn tail_ports(&self) -> Vec<PortId> {
        Vec::new()
    }

    /// A fresh task for input partition `partition` of `partitions`.
    fn new_task(&self, partition: i32, partitions: i32) -> Self::Task;

    /// One record in; returns how many units (events) of it stay held by
    /// outputs not yet pushed (the runtime releases the record's offset
    /// once all are acknowledged).
    fn ingest(
        &self,
        task: &mut Self::Task,
        rec: &RecordIn<'_>,
        now: Instant,
        out: &mut Vec<Output>,
    ) -> usize;

    /// A watermark marker from upstream partition `from`.
    fn on_marker(
        &self,
        task: &mut Self::Task,
        from: i32,
        event_time_ms: i64,
        idle: bool,
        now: Instant,
        out: &mut Vec<Output>,
    );

    /// Processing-time housekeeping (idle partitions, timeouts).
    fn tick(&self, task: &mut Self::Task, now: Instant, out: &mut Vec<Output>);

    /// Releases everything the task buffers (hand-over, stop).
    fn flush(&self, task: &mut Self::Task, out: &mut Vec<Output>);

    /// Marker and alignment settings.
    fn watermarks(&self) -> Watermarks;

    /// Changelog entries older than this are not restored.
    fn state_ttl(&self) -> Duration;

    /// Sets the stage's own gauges from its tasks (called twice a second).
    fn update_gauges<'a>(&self, tasks: impl Iterator<Item = &'a Self::Task>)
    where
        Self::Task: 'a;
}

/// One input partition's state in a [`Stage`].
pub trait StageTask: Send {
    /// Emitted-state stages: loads restored state, before any record of the
    /// partition.
    fn restore(&mut self, _restored: &Restored) {}

    /// Checkpointed stages: loads the tables of the last checkpoint, before
    /// any record of the partition.
    fn restore_tables(&mut self, _tables: Tables) {}

    /// Checkpointed stages: each record of a tail port
    /// ([`Stage::tail_ports`]) written after the checkpoint, by this task or
    /// another (the task keeps what is its own), in the order written per
    /// partition. After [`StageTask::restore_tables`].
    fn restore_output(&mut self, _port: PortId, _key: &[u8], _value: &[u8]) {}

    /// Checkpointed stages: moves the table changes made since the last
    /// call into `out` (in the order made; a later change of a key wins).
    fn take_changes(&mut self, _out: &mut Vec<Change>) {}

    /// This partition's progress (event time, idle), once it has one.
    fn progress(&self, now: Instant, idle: Duration) -> Option<(i64, bool)>;

    /// True while the task buffers `limit` events or more because its input
    /// runs ahead of another partition's: the runtime pauses the partition.
    fn runs_ahead(&self, limit: usize) -> bool;

    /// Whether the runtime paused this partition for alignment (a held-back
    /// partition is not idle, whatever its input says).
    fn held_back(&self) -> bool;
    fn set_held_back(&mut self, held: bool);

    /// The consumer reached the end of this input partition.
    fn mark_end_of_partition(&mut self);

    /// Events the task buffers.
    fn buffered(&self) -> usize;
}
