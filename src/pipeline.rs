//! The operator chain, without Kafka: decode → filter → dedup → reorder →
//! mask → lineage → encode.
//!
//! [`Pipeline`] holds what is shared by every partition (the plan, the masker,
//! metrics); a [`Task`] holds one partition's state (dedup fingerprints,
//! reorder buffer). The runtime feeds records in and turns each [`Output`]
//! into a produce (or, for [`Output::Done`], into an immediate release of the
//! input record's hold). The same code runs in `run`, `demo`, the tests and
//! the benchmarks.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use prometheus::IntCounter;

use crate::config::SilverPlan;
use crate::headers;
use crate::metrics::{Metrics, OUT_LATE, OUT_SILVER};
use crate::model::{format_iso_ms, now_ms, Event, Fingerprint, Hop, Ticket};
use crate::operators::decode::{decode_record, DecodeInput, Decoded};
use crate::operators::dedup::{Dedup, Verdict};
use crate::operators::lineage::{self, LateInfo, Stamper};
use crate::operators::mask::Masker;
use crate::operators::plausibility::IMPLAUSIBLE_EVENT_TIME;
use crate::operators::progress::{Progress, ProgressSettings};
use crate::operators::reorder::{Release, Reorder};
use crate::operators::upcast::{CHAIN, HEADER_FIELDS};
use crate::partition::partition_for;
use crate::secret::MaskingKey;
use crate::stage::{self, Emit, EmitState, Port, PortId};
pub use crate::stage::{DeadLetterOut, ForwardOut, RecordIn, Role};
use crate::state::Restored;

/// An encoded silver or late record.
#[derive(Debug)]
pub struct Encoded {
    /// Kafka key: the interaction id.
    pub key: String,
    pub value: Vec<u8>,
    pub lineage_token: String,
    /// Late reason code: `Some` exactly for late records.
    pub late_reason: Option<&'static str>,
    pub ticket: Ticket,
    /// What restoring state needs to know about this output (the
    /// `cx.state` header and the changelog).
    pub event_time_ms: i64,
    pub content_fp: Fingerprint,
    pub id_fp: Option<Fingerprint>,
    /// Byte offset of the event's unit in its source record (identifies a
    /// dead letter made of this output, see the runtime's `too_large`).
    pub unit: usize,
}

/// What the chain asks the runtime to do.
#[derive(Debug)]
pub enum Output {
    Silver(Encoded),
    Late(Encoded),
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
            Output::Silver(e) | Output::Late(e) => e.ticket,
            Output::DeadLetter(d) => d.ticket,
            Output::Forward(f) => f.ticket,
            Output::Done { ticket } => *ticket,
        }
    }
}

/// Silver's output ports, in [`Pipeline::ports`] order.
pub const PORT_SILVER: PortId = PortId(0);
pub const PORT_LATE: PortId = PortId(1);

impl Encoded {
    fn into_emit(self, port: PortId) -> Emit {
        Emit {
            port,
            key: self.key,
            value: self.value,
            lineage_token: self.lineage_token,
            tag: self.late_reason.map(|r| (headers::LATE_REASON, r)),
            ticket: self.ticket,
            unit: self.unit,
            state: Some(EmitState {
                event_time_ms: self.event_time_ms,
                content_fp: self.content_fp,
                id_fp: self.id_fp,
            }),
        }
    }
}

impl From<Output> for stage::Output {
    fn from(o: Output) -> Self {
        match o {
            Output::Silver(e) => stage::Output::Emit(e.into_emit(PORT_SILVER)),
            Output::Late(e) => stage::Output::Emit(e.into_emit(PORT_LATE)),
            Output::DeadLetter(d) => stage::Output::DeadLetter(d),
            Output::Forward(f) => stage::Output::Forward(f),
            Output::Done { ticket } => stage::Output::Done { ticket },
        }
    }
}

/// Progress of one upstream input partition, as its last watermark marker
/// on the repartition topic told it.
#[derive(Debug, Clone, Copy)]
struct Upstream {
    event_time_ms: i64,
    idle: bool,
    received: Instant,
}

/// One partition's state.
#[derive(Debug)]
pub struct Task {
    pub partition: i32,
    /// Partitions of the input (and repartition) topic.
    partitions: i32,
    dedup: Option<Dedup>,
    /// Boxed, so moving an event in and out of the buffer copies a pointer.
    reorder: Option<Reorder<Box<Event>>>,
    released: Vec<Release<Box<Event>>>,
    /// Reused per record, so decoding allocates no new vector each time.
    decoded: Vec<Decoded>,
    last_forced: u64,
    last_idle: u64,
    /// Greatest event time read from this partition of the input topic: the
    /// progress this partition announces to the others (markers). Guarded
    /// by the quorum rule of [`crate::operators::progress`].
    input_max: Option<i64>,
    input_progress: Progress,
    last_unconfirmed: u64,
    /// When the last input record of this partition was read.
    last_input: Option<Instant>,
    /// The consumer reached the end of the partition since that record.
    at_end: bool,
    /// Progress of the other input partitions, from their markers.
    upstream: HashMap<i32, Upstream>,
    /// The lowest progress of the other input partitions that still hold
    /// this task's watermark (`None`: none does), as of the last
    /// [`Pipeline::apply_upstream`]. Own progress is applied per record.
    others_cap: Option<i64>,
    /// Reading of this input partition is paused because it ran ahead of
    /// another partition (see [`Task::runs_ahead`]): not idle meanwhile.
    pub held_back: bool,
    /// Outputs of one call, before the silver stage turns them into port
    /// emits (kept to reuse its allocation).
    pub(crate) scratch: Vec<Output>,
    started: Instant,
    /// Without a dedup operator: fingerprints restored from what was already
    /// emitted, so records re-read after a crash are not emitted twice.
    replay_guard: Option<HashSet<Fingerprint>>,
}

impl Task {
    /// Greatest event time read from this input partition, and whether the
    /// partition has been quiet for `idle` (for the markers it sends).
    ///
    /// Idle means caught up: the consumer reached the end of the partition
    /// (`at_end`) and nothing arrived for `idle`; or, should the end never be
    /// signalled, nothing arrived for ten times `idle`. A partition that is
    /// merely slow to fetch is not idle. A partition from which nothing was
    /// read yet has no progress, except once its consumer reached the end:
    /// an empty partition is idle at once (`i64::MIN`), so that it does not
    /// hold the others until the upstream silence limit.
    pub fn progress(&self, now: Instant, idle: Duration) -> Option<(i64, bool)> {
        if self.input_max.is_none() {
            return (self.at_end && !self.held_back).then_some((i64::MIN, true));
        }
        let quiet_for = |d: Duration| {
            self.last_input
                .is_none_or(|t| now.saturating_duration_since(t) >= d)
        };
        let is_idle = !self.held_back && ((self.at_end && quiet_for(idle)) || quiet_for(idle * 10));
        self.input_max.map(|m| (m, is_idle))
    }

    /// True while this task buffers at least `limit` events *because* its
    /// own input is ahead of another input partition's announced progress
    /// (a catch-up where one partition started reading first, or an
    /// upstream without an owner): reading more of its input would only
    /// grow the buffer. The runtime pauses the partition until this turns
    /// false (watermark alignment). Never true for a single partition, and
    /// never for two tasks holding each other: the one behind is not ahead.
    pub fn runs_ahead(&self, limit: usize) -> bool {
        self.buffered() >= limit
            && matches!((self.others_cap, self.input_max), (Some(c), Some(m)) if c < m)
    }

    /// The consumer reached the end of this input partition.
    pub fn mark_end_of_partition(&mut self) {
        self.at_end = true;
    }

    /// Events held in the reorder buffer.
    pub fn buffered(&self) -> usize {
        self.reorder.as_ref().map_or(0, |r| r.buffered())
    }

    pub fn dedup_keys(&self) -> u64 {
        self.dedup.as_ref().map_or(0, |d| d.entry_count())
    }

    pub fn dedup_evictions(&self) -> u64 {
        self.dedup.as_ref().map_or(0, |d| d.evictions())
    }

    /// Loads restored state (before any record of this partition is
    /// processed): fingerprints into the dedup filter, last emitted event
    /// times into the reorder operator.
    pub fn restore(&mut self, restored: &Restored) {
        match &self.dedup {
            Some(d) => {
                for k in &restored.keys {
                    d.insert_known(*k);
                }
            }
            None => {
                self.replay_guard = Some(restored.keys.iter().copied().collect());
            }
        }
        if let Some(r) = self.reorder.as_mut() {
            for (id, t) in &restored.emitted {
                r.restore_emitted(id, *t);
            }
        }
    }
}

/// The shared part of the chain.
#[derive(Debug)]
pub struct Pipeline {
    plan: Arc<SilverPlan>,
    masker: Masker,
    stamper: Stamper,
    metrics: Arc<Metrics>,
    notes: NoteCounters,
}

/// The counters of the two decode notes nearly every event has, each
/// looked up in its metric family once (at its first count, so a series
/// still appears only once it counted something) instead of per event.
#[derive(Debug, Default)]
struct NoteCounters {
    /// `missing_optional`, by [`HEADER_FIELDS`] position.
    missing: [OnceLock<IntCounter>; HEADER_FIELDS.len()],
    /// `upcast_steps`, by [`CHAIN`] position.
    steps: [OnceLock<IntCounter>; CHAIN.len()],
}

impl Pipeline {
    pub fn new(plan: Arc<SilverPlan>, key: &MaskingKey, metrics: Arc<Metrics>) -> Self {
        Self {
            masker: Masker::new(key.bytes(), plan.mask.clone()),
            stamper: Stamper::new(&plan.runtime.topology),
            plan,
            metrics,
            notes: NoteCounters::default(),
        }
    }

    pub fn plan(&self) -> &SilverPlan {
        &self.plan
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The output ports, indexed by [`PORT_SILVER`] and [`PORT_LATE`].
    pub fn ports(&self) -> Vec<Port> {
        vec![
            Port {
                name: OUT_SILVER,
                topic: self.plan.silver_topic.clone(),
                tag_counter: None,
            },
            Port {
                name: OUT_LATE,
                topic: self.plan.late_topic.clone(),
                tag_counter: Some(self.metrics.late.clone()),
            },
        ]
    }

    /// A fresh task for `partition` of an input with `partitions` partitions.
    ///
    /// With other input partitions feeding this one (through the repartition
    /// topic), the task starts with its watermark held until every upstream
    /// has announced its progress: events forwarded by an upstream that
    /// started earlier may be read before any marker or tick, and must not
    /// move the watermark past siblings still on their way.
    pub fn new_task(&self, partition: i32, partitions: i32) -> Task {
        let mut task = Task {
            partition,
            partitions,
            dedup: self.plan.dedup.as_ref().map(Dedup::new),
            reorder: self.plan.reorder.as_ref().map(Reorder::new),
            released: Vec::new(),
            decoded: Vec::new(),
            last_forced: 0,
            last_idle: 0,
            input_max: None,
            input_progress: Progress::new(
                self.plan
                    .reorder
                    .as_ref()
                    .map_or_else(ProgressSettings::default, |r| r.progress),
            ),
            last_unconfirmed: 0,
            last_input: None,
            at_end: false,
            upstream: HashMap::new(),
            others_cap: None,
            held_back: false,
            scratch: Vec::new(),
            started: Instant::now(),
            replay_guard: None,
        };
        if partitions > 1 {
            let mut out = Vec::new();
            let started = task.started;
            self.apply_upstream(&mut task, started, &mut out);
            debug_assert!(out.is_empty(), "a fresh task has nothing to release");
        }
        task
    }

    /// How long an upstream input partition may stay silent (no marker)
    /// before it stops holding this partition's watermark: a safety valve
    /// for an upstream without an owner, not part of normal operation
    /// (owners send a marker at least every second, and an explicit idle
    /// marker when their partition is quiet).
    pub fn upstream_silence_limit(&self) -> Duration {
        self.plan
            .reorder
            .as_ref()
            .map_or(Duration::from_secs(30), |r| {
                (r.idle_timeout * 15).max(Duration::from_secs(10))
            })
    }

    /// A watermark marker read from the repartition topic: input partition
    /// `from` has read events up to `event_time_ms` (or is idle).
    pub fn on_marker(
        &self,
        task: &mut Task,
        from: i32,
        event_time_ms: i64,
        idle: bool,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let u = task.upstream.entry(from).or_insert(Upstream {
            event_time_ms,
            idle,
            received: now,
        });
        u.event_time_ms = u.event_time_ms.max(event_time_ms);
        u.idle = idle;
        u.received = now;
        self.apply_upstream(task, now, out);
    }

    /// The lowest progress among the input partitions that may still send
    /// events here: this task's own input partition and every other one
    /// (through the repartition topic). An upstream not heard from yet holds
    /// the watermark; one that is idle does not; one silent for longer than
    /// [`Self::upstream_silence_limit`] no longer does.
    /// Returns (own input's bound, the other partitions' bound); `None`
    /// where nothing holds.
    fn upstream_cap(
        &self,
        task: &Task,
        partitions: i32,
        now: Instant,
    ) -> (Option<i64>, Option<i64>) {
        let limit = self.upstream_silence_limit();
        let idle = self
            .plan
            .reorder
            .as_ref()
            .map_or(Duration::from_secs(2), |r| r.idle_timeout);
        let silent_since_start = now.saturating_duration_since(task.started) >= limit;
        // Own input: read directly.
        let own = match task.progress(now, idle) {
            Some((_, true)) => None,
            Some((m, false)) => Some(m),
            None if silent_since_start || task.at_end => None,
            None => Some(i64::MIN),
        };
        let mut cap = None;
        for q in (0..partitions).filter(|q| *q != task.partition) {
            let bound = match task.upstream.get(&q) {
                Some(u) if u.idle => continue,
                Some(u) if now.saturating_duration_since(u.received) >= limit => continue,
                Some(u) => u.event_time_ms,
                None if silent_since_start => continue,
                None => i64::MIN,
            };
            cap = Some(cap.map_or(bound, |c: i64| c.min(bound)));
        }
        (own, cap)
    }

    fn apply_upstream(&self, task: &mut Task, now: Instant, out: &mut Vec<Output>) {
        let (own, others) = self.upstream_cap(task, task.partitions, now);
        task.others_cap = others;
        let cap = min_bound(own, others);
        if let Some(r) = task.reorder.as_mut() {
            r.set_upstream_watermark(cap, &mut task.released);
            self.drain(task, out);
        }
    }

    /// A record of this task's own input was just read, so its own
    /// progress is `input_max` now: the watermark follows at once instead
    /// of at the next tick (with a single input partition, or the others
    /// idle, an in-order event is then released as it is read).
    fn apply_own_progress(&self, task: &mut Task, out: &mut Vec<Output>) {
        let cap = min_bound(task.input_max, task.others_cap);
        if let Some(r) = task.reorder.as_mut() {
            if r.upstream_watermark() != cap {
                r.set_upstream_watermark(cap, &mut task.released);
                self.drain(task, out);
            }
        }
    }

    /// Decodes one record and routes each of its events: to `task` (the
    /// record's own partition) when that is the interaction's partition,
    /// else to the repartition topic. Returns the number of
    /// accounting units the record held; each ends in exactly one output.
    pub fn ingest(
        &self,
        rec: &RecordIn<'_>,
        task: &mut Task,
        now: Instant,
        out: &mut Vec<Output>,
    ) -> usize {
        let mut decoded = std::mem::take(&mut task.decoded);
        decode_record(
            &DecodeInput {
                value: rec.value,
                source: rec.source.clone(),
                header_lineage_token: rec.header_token,
                record_timestamp_ms: rec.record_timestamp_ms,
                ticket: rec.ticket,
            },
            &mut decoded,
        );
        let units = decoded.len();
        let counted = rec.role == Role::Input;
        if counted {
            self.metrics.events_in.inc_by(units as u64);
            task.last_input = Some(now);
            task.at_end = false;
        } else {
            self.metrics.repartitioned_in.inc_by(units as u64);
        }
        let partitions = task.partitions;
        let earlier_hops: Vec<Hop> = match rec.header_hops {
            Some(h) => serde_json::from_slice(h).unwrap_or_default(),
            None => Vec::new(),
        };
        for d in decoded.drain(..) {
            match d {
                Decoded::Rejected(r) => out.push(Output::DeadLetter(DeadLetterOut {
                    class: r.class.code(),
                    message: r.message,
                    stage: "decode",
                    range: r.bytes,
                    lineage_token: r.lineage_token,
                    ticket: rec.ticket,
                })),
                Decoded::Event(mut ev) => {
                    // An implausible time never reaches a watermark.
                    if let Err(message) = self
                        .plan
                        .event_time_bounds
                        .check(ev.event_time_ms, rec.record_timestamp_ms)
                    {
                        out.push(Output::DeadLetter(DeadLetterOut {
                            class: IMPLAUSIBLE_EVENT_TIME,
                            message,
                            stage: "decode",
                            range: ev.raw.clone(),
                            lineage_token: Some(std::mem::take(&mut ev.lineage.token)),
                            ticket: rec.ticket,
                        }));
                        continue;
                    }
                    if counted {
                        task.input_max = task.input_progress.observe(ev.event_time_ms);
                        let unconfirmed = task.input_progress.unconfirmed();
                        if unconfirmed != task.last_unconfirmed {
                            self.metrics
                                .watermark_outliers
                                .inc_by(unconfirmed - task.last_unconfirmed);
                            task.last_unconfirmed = unconfirmed;
                        }
                        self.apply_own_progress(task, out);
                        self.count_notes(&ev);
                        if !self.passes_filter(&ev) {
                            self.metrics.filtered.inc();
                            out.push(Output::Done { ticket: rec.ticket });
                            continue;
                        }
                    }
                    let home = partition_for(ev.interaction_id.as_bytes(), partitions);
                    if rec.role == Role::Input && home != rec.source.partition {
                        self.metrics.repartitioned.inc();
                        let hop = self.stamper.hop(
                            lineage::STAGE_INGEST,
                            lineage::STATUS_REPARTITIONED,
                            &rec.source,
                            now_ms(),
                        );
                        out.push(Output::Forward(ForwardOut {
                            home,
                            key: std::mem::take(&mut ev.interaction_id),
                            range: ev.raw.clone(),
                            payload: None,
                            replaces: false,
                            lineage_token: std::mem::take(&mut ev.lineage.token),
                            hops: vec![hop],
                            ticket: rec.ticket,
                        }));
                        continue;
                    }
                    if !earlier_hops.is_empty() {
                        ev.lineage.hops = earlier_hops.clone();
                    }
                    self.process(task, ev, now, out);
                }
            }
        }
        task.decoded = decoded;
        units
    }

    fn passes_filter(&self, ev: &Event) -> bool {
        match (&self.plan.media_filter, &ev.media_type) {
            (Some(keep), Some(m)) => keep.iter().any(|k| k.eq_ignore_ascii_case(m)),
            _ => true,
        }
    }

    fn count_notes(&self, ev: &Event) {
        let m = &self.metrics;
        for f in &ev.notes.missing_optional {
            match HEADER_FIELDS.iter().position(|h| h.canonical == *f) {
                Some(i) => self.notes.missing[i]
                    .get_or_init(|| m.missing_optional.with_label_values(&[f]))
                    .inc(),
                None => m.missing_optional.with_label_values(&[f]).inc(),
            }
        }
        for f in &ev.notes.unknown_enum_values {
            m.unknown_enum.with_label_values(&[f]).inc();
        }
        for s in &ev.notes.upcast_steps {
            match CHAIN.iter().position(|step| step.name == *s) {
                Some(i) => self.notes.steps[i]
                    .get_or_init(|| m.upcast_steps.with_label_values(&[s]))
                    .inc(),
                None => m.upcast_steps.with_label_values(&[s]).inc(),
            }
        }
        if ev.notes.newer_version {
            m.newer_version.inc();
        }
    }

    /// Dedup, then reorder; released events are masked and encoded.
    fn process(&self, task: &mut Task, ev: Box<Event>, now: Instant, out: &mut Vec<Output>) {
        if let Some(guard) = &task.replay_guard {
            if guard.contains(&ev.content_fp) || ev.id_fp.is_some_and(|id| guard.contains(&id)) {
                self.metrics.duplicates.with_label_values(&["replay"]).inc();
                out.push(Output::Done { ticket: ev.ticket });
                return;
            }
        }
        if let Some(dedup) = &task.dedup {
            let label = match dedup.check(ev.content_fp, ev.id_fp) {
                Verdict::New => None,
                Verdict::DuplicateId => Some("id"),
                Verdict::DuplicateContent => Some("content"),
            };
            if let Some(label) = label {
                self.metrics.duplicates.with_label_values(&[label]).inc();
                out.push(Output::Done { ticket: ev.ticket });
                return;
            }
        }
        match task.reorder.as_mut() {
            Some(r) => {
                r.push(ev, now, &mut task.released);
                self.drain(task, out);
            }
            None => out.push(self.emit(Release::InOrder(ev))),
        }
    }

    /// Processing-time housekeeping: idle partitions and ended interactions.
    pub fn tick(&self, task: &mut Task, now: Instant, out: &mut Vec<Output>) {
        self.apply_upstream(task, now, out);
        if let Some(r) = task.reorder.as_mut() {
            r.tick(now, &mut task.released);
            self.drain(task, out);
        }
    }

    /// Releases everything a task buffers (revoke, shutdown).
    pub fn flush(&self, task: &mut Task, out: &mut Vec<Output>) {
        if let Some(r) = task.reorder.as_mut() {
            r.flush(&mut task.released);
            self.drain(task, out);
        }
    }

    fn drain(&self, task: &mut Task, out: &mut Vec<Output>) {
        let mut released = std::mem::take(&mut task.released);
        for rel in released.drain(..) {
            out.push(self.emit(rel));
        }
        task.released = released;
        if let Some(r) = &task.reorder {
            let s = r.stats();
            self.metrics
                .reorder_forced_releases
                .inc_by(s.forced_releases.saturating_sub(task.last_forced));
            self.metrics
                .reorder_idle_flushes
                .inc_by(s.idle_flushes.saturating_sub(task.last_idle));
            task.last_forced = s.forced_releases;
            task.last_idle = s.idle_flushes;
        }
    }

    /// Mask, stamp and encode one released event.
    fn emit(&self, rel: Release<Box<Event>>) -> Output {
        let (mut ev, late) = match rel {
            Release::InOrder(ev) => (ev, None),
            Release::Late {
                item,
                reason,
                watermark_ms,
                last_emitted_ms,
            } => (
                item,
                Some(LateInfo {
                    reason: reason.code(),
                    watermark: Some(format_iso_ms(watermark_ms)),
                    last_emitted_event_time: last_emitted_ms.map(format_iso_ms),
                }),
            ),
        };
        self.masker.mask_event(&mut ev);
        let status = if late.is_some() {
            lineage::STATUS_LATE
        } else {
            lineage::STATUS_OK
        };
        let hop = self
            .stamper
            .stamp(lineage::STAGE_SILVER, status, &ev.source, now_ms());
        let value = lineage::encode(&ev, &hop, late.as_ref());
        let enc = Encoded {
            key: std::mem::take(&mut ev.interaction_id),
            value,
            lineage_token: std::mem::take(&mut ev.lineage.token),
            late_reason: late.as_ref().map(|l| l.reason),
            ticket: ev.ticket,
            event_time_ms: ev.event_time_ms,
            content_fp: ev.content_fp,
            id_fp: ev.id_fp,
            unit: ev.raw.start,
        };
        if late.is_some() {
            Output::Late(enc)
        } else {
            Output::Silver(enc)
        }
    }
}

/// The lower of two watermark bounds, `None` meaning "no bound".
fn min_bound(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::SourceRef;
    use serde_json::Value;

    const T: i64 = 1_765_555_800_000;

    /// The shipped topology's pipeline with a test key.
    pub(crate) fn pipeline() -> Pipeline {
        let plan = crate::config::parse(
            include_str!("../topologies/genesys-silver.toml"),
            "genesys-silver.toml",
        )
        .expect("shipped topology parses")
        .into_silver()
        .expect("a silver stage");
        let key = MaskingKey::from_bytes("unit-test-masking-key").expect("key");
        Pipeline::new(Arc::new(plan), &key, Arc::new(Metrics::new()))
    }

    /// A bare Genesys detail object (acd.start, voice) for `id` at `t`.
    pub(crate) fn event(id: &str, t: i64) -> Vec<u8> {
        let mut v: Value =
            serde_json::from_str(include_str!("../tests/golden/input/06-acd-start.json"))
                .expect("fixture");
        let detail = &mut v["detail"];
        detail["topicName"] = format!("v2.detail.events.conversation.{id}.acd.start").into();
        detail["eventBody"]["conversationId"] = id.into();
        detail["eventBody"]["eventTime"] = t.into();
        detail["eventBody"]["mediaType"] = "VOICE".into();
        serde_json::to_vec(&v["detail"]).expect("json")
    }

    /// Ingests `value` as record `offset` of the task's partition of the
    /// input (`Role::Input`) or repartition topic.
    fn ingest_as(
        role: Role,
        p: &Pipeline,
        task: &mut Task,
        value: &[u8],
        offset: i64,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        let rec = RecordIn {
            value,
            source: SourceRef {
                topic: Arc::from(match role {
                    Role::Input | Role::CoInput(_) => "bronze",
                    Role::Repartition => "repartition",
                }),
                partition: task.partition,
                offset,
            },
            role,
            header_token: None,
            header_hops: None,
            record_timestamp_ms: None,
            ticket: offset as Ticket,
        };
        p.ingest(&rec, task, Instant::now(), &mut out);
        out
    }

    /// An event far ahead of its record's broker timestamp is dead-lettered
    /// and moves neither the partition's progress nor its watermark: the
    /// events after it are still put in order, none goes late.
    #[test]
    fn an_implausible_event_time_is_dead_lettered_and_moves_no_watermark() {
        let p = pipeline();
        let mut task = p.new_task(0, 1);
        let ingest_at = |task: &mut Task, value: &[u8], offset: i64, record_ms: i64| {
            let mut out = Vec::new();
            let rec = RecordIn {
                value,
                source: SourceRef {
                    topic: Arc::from("bronze"),
                    partition: 0,
                    offset,
                },
                role: Role::Input,
                header_token: None,
                header_hops: None,
                record_timestamp_ms: Some(record_ms),
                ticket: offset as Ticket,
            };
            p.ingest(&rec, task, Instant::now(), &mut out);
            out
        };
        let rec_ms = T + 10_000;
        let out = ingest_at(&mut task, &event("x-1", T), 0, rec_ms);
        assert!(out.is_empty(), "buffered: {out:?}");
        let century = T + 100 * 365 * 86_400_000;
        let out = ingest_at(&mut task, &event("x-2", century), 1, rec_ms);
        match out.as_slice() {
            [Output::DeadLetter(d)] => {
                assert_eq!(d.class, "implausible_event_time");
                assert_eq!(d.stage, "decode");
                assert!(
                    d.message.contains("ahead of the record's broker timestamp"),
                    "{}",
                    d.message
                );
                assert!(d.lineage_token.is_some());
            }
            other => panic!("expected one dead letter, got {other:?}"),
        }
        assert_eq!(
            task.progress(Instant::now(), Duration::from_secs(2))
                .map(|p| p.0),
            Some(T)
        );
        let out = ingest_at(&mut task, &event("x-3", 0), 2, rec_ms);
        assert!(
            matches!(out.as_slice(), [Output::DeadLetter(d)] if d.message.contains("before min_event_time"))
        );
        // The stream goes on in order: nothing late.
        let mut out = ingest_at(&mut task, &event("x-1", T + 20_000), 3, rec_ms);
        p.flush(&mut task, &mut out);
        assert_eq!(times(&out), vec![(false, T), (false, T + 20_000)]);
    }

    fn forwarded(p: &Pipeline, task: &mut Task, value: &[u8], offset: i64) -> Vec<Output> {
        ingest_as(Role::Repartition, p, task, value, offset)
    }

    fn times(out: &[Output]) -> Vec<(bool, i64)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Silver(e) => Some((false, e.event_time_ms)),
                Output::Late(e) => Some((true, e.event_time_ms)),
                _ => None,
            })
            .collect()
    }

    /// A partition that starts after its upstreams reads their forwarded
    /// events before any marker: they must not move its watermark past
    /// siblings that are still travelling (nothing late, order kept).
    #[test]
    fn fresh_task_holds_its_watermark_until_every_upstream_reported() {
        let p = pipeline();
        let a = "1c35e811-976d-4eb6-b8d6-cbbe15cebaf3";
        let b = "2d46f922-a87e-4fc7-c9e7-dccf26dfcbf4";
        let mut task = p.new_task(1, 4);
        let mut out = forwarded(&p, &mut task, &event(a, T + 30_000), 0);
        out.extend(forwarded(&p, &mut task, &event(b, T + 50_000), 1));
        out.extend(forwarded(&p, &mut task, &event(a, T), 2));
        assert_eq!(times(&out), vec![], "nothing released before markers");

        // Own input empty, every upstream past all three: released in
        // event-time order up to the watermark (max seen − lateness).
        task.mark_end_of_partition();
        let mut out = Vec::new();
        for q in [0, 2, 3] {
            p.on_marker(&mut task, q, T + 2_000_000, false, Instant::now(), &mut out);
        }
        assert_eq!(times(&out), vec![(false, T), (false, T + 30_000)]);
        assert_eq!(task.buffered(), 1);
    }

    /// A single-partition input has no upstream to wait for.
    #[test]
    fn single_partition_task_is_not_held() {
        let p = pipeline();
        let mut task = p.new_task(0, 1);
        let mut out = forwarded(&p, &mut task, &event("x-1", T), 0);
        out.extend(forwarded(&p, &mut task, &event("x-2", T + 30_000), 1));
        assert_eq!(times(&out), vec![(false, T)]);
    }

    fn read(p: &Pipeline, task: &mut Task, value: &[u8], offset: i64) -> Vec<Output> {
        ingest_as(Role::Input, p, task, value, offset)
    }

    fn zero_lateness_pipeline() -> Pipeline {
        let mut plan = crate::config::parse(
            include_str!("../topologies/genesys-silver.toml"),
            "genesys-silver.toml",
        )
        .expect("shipped topology parses")
        .into_silver()
        .expect("a silver stage");
        if let Some(r) = plan.reorder.as_mut() {
            r.allowed_lateness = Duration::ZERO;
        }
        let key = MaskingKey::from_bytes("unit-test-masking-key").expect("key");
        Pipeline::new(Arc::new(plan), &key, Arc::new(Metrics::new()))
    }

    /// Own input progress moves the watermark as each record is read, not
    /// at the next tick: with zero allowed lateness an in-order event of a
    /// single-partition input leaves as it is read; with a second partition
    /// it waits for that partition's marker, and leaves once the marker
    /// passed it (or the partition turned idle).
    #[test]
    fn own_progress_releases_in_order_events_as_they_are_read() {
        let p = zero_lateness_pipeline();
        let mut task = p.new_task(0, 1);
        for (i, t) in [T, T + 1_000, T + 1_000, T + 5_000].into_iter().enumerate() {
            let out = read(&p, &mut task, &event(&format!("solo-{i}"), t), i as i64);
            assert_eq!(times(&out), vec![(false, t)], "event {i} released at once");
            // A tick in between (as the runtime's loop does) must not leave
            // a stale own progress behind for the next event.
            let mut ticked = Vec::new();
            p.tick(&mut task, Instant::now(), &mut ticked);
            assert_eq!(times(&ticked), vec![]);
        }
        assert_eq!(task.buffered(), 0);

        let mut task = p.new_task(0, 2);
        let home0: Vec<String> = (0..)
            .map(|i| format!("pair-{i}"))
            .filter(|id| partition_for(id.as_bytes(), 2) == 0)
            .take(3)
            .collect();
        let mut out = Vec::new();
        p.on_marker(&mut task, 1, T + 500, false, Instant::now(), &mut out);
        let out = read(&p, &mut task, &event(&home0[0], T), 0);
        assert_eq!(times(&out), vec![(false, T)], "below the other's progress");
        let out = read(&p, &mut task, &event(&home0[1], T + 1_000), 1);
        assert_eq!(times(&out), vec![], "beyond the other partition's progress");
        let mut out = Vec::new();
        p.on_marker(&mut task, 1, T + 2_000, false, Instant::now(), &mut out);
        assert_eq!(times(&out), vec![(false, T + 1_000)]);
        let mut out = Vec::new();
        p.on_marker(&mut task, 1, T + 2_000, true, Instant::now(), &mut out);
        let out = read(&p, &mut task, &event(&home0[2], T + 9_000), 2);
        assert_eq!(times(&out), vec![(false, T + 9_000)], "the other is idle");
    }

    /// A task ahead of another partition with enough buffered runs ahead
    /// (the runtime pauses it); the other's progress or a drained buffer
    /// ends it; a held-back task never announces itself idle; a single
    /// partition never runs ahead.
    #[test]
    fn a_task_ahead_of_another_partition_runs_ahead_until_it_catches_up() {
        let p = zero_lateness_pipeline();
        let mut task = p.new_task(0, 2);
        let home0: Vec<String> = (0..)
            .map(|i| format!("ahead-{i}"))
            .filter(|id| partition_for(id.as_bytes(), 2) == 0)
            .take(4)
            .collect();
        let mut out = Vec::new();
        p.on_marker(&mut task, 1, T, false, Instant::now(), &mut out);
        for (i, id) in home0.iter().enumerate() {
            let t = T + 1_000 * (i as i64 + 1);
            assert_eq!(times(&read(&p, &mut task, &event(id, t), i as i64)), vec![]);
        }
        assert_eq!(task.buffered(), 4);
        assert!(task.runs_ahead(4));
        assert!(!task.runs_ahead(5), "below the limit");

        task.held_back = true;
        let long_ago = Instant::now() + Duration::from_secs(3600);
        assert_eq!(
            task.progress(long_ago, Duration::from_secs(1)).map(|p| p.1),
            Some(false)
        );
        task.held_back = false;
        assert_eq!(
            task.progress(long_ago, Duration::from_secs(1)).map(|p| p.1),
            Some(true)
        );

        // The other partition passes the first two: still ahead of it, but
        // only two buffered.
        let mut out = Vec::new();
        p.on_marker(&mut task, 1, T + 2_000, false, Instant::now(), &mut out);
        assert_eq!(times(&out).len(), 2);
        assert!(!task.runs_ahead(4) && task.runs_ahead(2));
        // Past everything read: not ahead at all.
        let mut out = Vec::new();
        p.on_marker(&mut task, 1, T + 10_000, false, Instant::now(), &mut out);
        assert_eq!(task.buffered(), 0);
        assert!(!task.runs_ahead(0));

        let mut solo = p.new_task(0, 1);
        let mut out = Vec::new();
        p.tick(&mut solo, Instant::now(), &mut out);
        assert!(!solo.runs_ahead(0));
    }

    /// An input partition with nothing in it announces itself idle once its
    /// consumer reached the end (not before: a backlog may still come), and
    /// a partition that has read something reports its progress.
    #[test]
    fn an_empty_partition_is_idle_once_its_end_is_reached() {
        let p = zero_lateness_pipeline();
        let idle = Duration::from_secs(2);
        let mut task = p.new_task(1, 2);
        let now = Instant::now();
        assert_eq!(
            task.progress(now, idle),
            None,
            "nothing read, end not reached"
        );
        let later = now + Duration::from_secs(3600);
        assert_eq!(
            task.progress(later, idle),
            None,
            "time alone proves nothing"
        );
        task.mark_end_of_partition();
        assert_eq!(task.progress(now, idle), Some((i64::MIN, true)));
        task.held_back = true;
        assert_eq!(task.progress(now, idle), None);
        task.held_back = false;

        // What its marker does to a partition it feeds: releases it.
        let mut other = p.new_task(0, 2);
        let id = (0..)
            .map(|i| format!("empty-{i}"))
            .find(|id| partition_for(id.as_bytes(), 2) == 0)
            .expect("an id");
        assert_eq!(times(&read(&p, &mut other, &event(&id, T), 0)), vec![]);
        let mut out = Vec::new();
        p.on_marker(&mut other, 1, i64::MIN, true, Instant::now(), &mut out);
        assert_eq!(times(&out), vec![(false, T)]);

        // Once it reads a record it reports that record's time, not idle.
        let home1 = (0..)
            .map(|i| format!("empty-{i}"))
            .find(|id| partition_for(id.as_bytes(), 2) == 1)
            .expect("an id");
        let _ = read(&p, &mut task, &event(&home1, T + 5), 0);
        assert_eq!(task.progress(Instant::now(), idle), Some((T + 5, false)));
    }
}
