//! The silver stage: the [`Pipeline`] (decode → filter → dedup → reorder →
//! mask → lineage → encode) as a [`Stage`] of the runtime. The chain keeps
//! its own typed outputs ([`pipeline::Output`]); this adapter turns them
//! into port emits and says what the runtime needs to know of silver's
//! watermarks and state.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::net::SocketAddr;

use crate::metrics::{Metrics, OUT_DEAD_LETTER, OUT_LATE, OUT_SILVER};
use crate::pipeline::{self, Pipeline, Task};
use crate::runtime::StopReason;
use crate::stage::{Output, Port, RecordIn, Stage, StageTask, Watermarks};
use crate::state::Restored;

/// The silver stage.
#[derive(Debug)]
pub struct Silver {
    pipeline: Pipeline,
    /// Dedup evictions counted so far (the counter moves by the difference).
    evictions_counted: AtomicU64,
}

impl Silver {
    pub fn new(pipeline: Pipeline) -> Self {
        Silver {
            pipeline,
            evictions_counted: AtomicU64::new(0),
        }
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }
}

/// Runs one chain call into the task's scratch buffer and moves its outputs
/// into `out` as port emits.
fn adapt<R>(
    task: &mut Task,
    out: &mut Vec<Output>,
    call: impl FnOnce(&mut Task, &mut Vec<pipeline::Output>) -> R,
) -> R {
    let mut scratch = std::mem::take(&mut task.scratch);
    let r = call(task, &mut scratch);
    out.extend(scratch.drain(..).map(Output::from));
    task.scratch = scratch;
    r
}

impl Stage for Silver {
    type Task = Task;

    fn ports(&self) -> Vec<Port> {
        self.pipeline.ports()
    }

    fn new_task(&self, partition: i32, partitions: i32) -> Task {
        self.pipeline.new_task(partition, partitions)
    }

    fn ingest(
        &self,
        task: &mut Task,
        rec: &RecordIn<'_>,
        now: Instant,
        out: &mut Vec<Output>,
    ) -> usize {
        adapt(task, out, |task, o| self.pipeline.ingest(rec, task, now, o))
    }

    fn on_marker(
        &self,
        task: &mut Task,
        from: i32,
        event_time_ms: i64,
        idle: bool,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        adapt(task, out, |task, o| {
            self.pipeline
                .on_marker(task, from, event_time_ms, idle, now, o)
        })
    }

    fn tick(&self, task: &mut Task, now: Instant, out: &mut Vec<Output>) {
        adapt(task, out, |task, o| self.pipeline.tick(task, now, o))
    }

    fn flush(&self, task: &mut Task, out: &mut Vec<Output>) {
        adapt(task, out, |task, o| self.pipeline.flush(task, o))
    }

    /// A marker round whenever a partition's event time moved by half the
    /// allowed lateness; idle after the reorder idle timeout; alignment at a
    /// quarter of the reorder buffer, at most 10,000 events unless that is
    /// below a quarter (not much lower: every pause drops what librdkafka had
    /// fetched, and a limit of 2,000 made a catch-up four times slower in
    /// the bench). Without a reorder buffer: no alignment.
    fn watermarks(&self) -> Watermarks {
        match &self.pipeline.plan().reorder {
            Some(r) => Watermarks {
                step_ms: i64::try_from(r.allowed_lateness.as_millis() / 2).unwrap_or(i64::MAX),
                idle: r.idle_timeout,
                hold_limit: (r.max_buffered / 4).max((r.max_buffered / 2).min(10_000)),
            },
            None => Watermarks {
                step_ms: 2_500,
                idle: Duration::from_secs(2),
                hold_limit: usize::MAX,
            },
        }
    }

    /// The dedup TTL (a day without dedup: the replay guard's horizon).
    fn state_ttl(&self) -> Duration {
        self.pipeline
            .plan()
            .dedup
            .as_ref()
            .map_or(Duration::from_secs(24 * 3600), |d| d.ttl)
    }

    fn update_gauges<'a>(&self, tasks: impl Iterator<Item = &'a Task>) {
        let m = self.pipeline.metrics();
        let (mut keys, mut evictions) = (0u64, 0u64);
        for t in tasks {
            keys += t.dedup_keys();
            evictions += t.dedup_evictions();
        }
        m.dedup_keys.set(keys as i64);
        let before = self.evictions_counted.swap(evictions, Ordering::Relaxed);
        if evictions > before {
            m.dedup_evictions.inc_by(evictions - before);
        }
    }
}

impl StageTask for Task {
    fn restore(&mut self, restored: &Restored) {
        Task::restore(self, restored);
    }

    fn progress(&self, now: Instant, idle: Duration) -> Option<(i64, bool)> {
        Task::progress(self, now, idle)
    }

    fn runs_ahead(&self, limit: usize) -> bool {
        Task::runs_ahead(self, limit)
    }

    fn held_back(&self) -> bool {
        self.held_back
    }

    fn set_held_back(&mut self, held: bool) {
        self.held_back = held;
    }

    fn mark_end_of_partition(&mut self) {
        Task::mark_end_of_partition(self);
    }

    fn buffered(&self) -> usize {
        Task::buffered(self)
    }
}

/// Totals of one run, read from the metrics.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub events_in: u64,
    pub silver: u64,
    pub late: u64,
    pub dead_letters: u64,
    pub duplicates: u64,
    pub filtered: u64,
    /// Events left buffered in partitions that moved away (see
    /// `cxstream_events_handed_over_total`).
    pub handed_over: u64,
    pub repartitioned: u64,
    /// Events read back from the repartition topic (processed here).
    pub repartitioned_in: u64,
    pub elapsed: Duration,
    pub stop: Option<StopReason>,
    pub metrics_addr: Option<SocketAddr>,
}

impl RunSummary {
    pub fn from_metrics(m: &Metrics, elapsed: Duration) -> Self {
        Self {
            events_in: m.events_in.get(),
            silver: m.out(OUT_SILVER),
            late: m.out(OUT_LATE),
            dead_letters: m.out(OUT_DEAD_LETTER),
            duplicates: Metrics::sum(&m.duplicates),
            filtered: m.filtered.get(),
            handed_over: m.handed_over.get(),
            repartitioned: m.repartitioned.get(),
            repartitioned_in: m.repartitioned_in.get(),
            elapsed,
            stop: None,
            metrics_addr: None,
        }
    }

    /// True when every event that came in (from the input, or back from
    /// the repartition topic) ended in exactly one place: an output, a
    /// drop, the next owner of a partition that moved away, or the
    /// repartition topic (see [`crate::metrics`]).
    pub fn accounted(&self) -> bool {
        self.events_in + self.repartitioned_in
            == self.silver
                + self.late
                + self.dead_letters
                + self.duplicates
                + self.filtered
                + self.handed_over
                + self.repartitioned
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::Value;

    use super::*;
    use crate::headers;
    use crate::model::{SourceRef, Ticket};
    use crate::pipeline::tests::event;
    use crate::pipeline::{PORT_LATE, PORT_SILVER};
    use crate::stage::{Emit, Role};

    const T: i64 = 1_765_555_800_000;

    fn silver() -> Silver {
        Silver::new(crate::pipeline::tests::pipeline())
    }

    fn ingest(s: &Silver, task: &mut Task, value: &[u8], offset: i64) -> Vec<Output> {
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
            record_timestamp_ms: None,
            ticket: offset as Ticket,
        };
        let mut out = Vec::new();
        Stage::ingest(s, task, &rec, Instant::now(), &mut out);
        out
    }

    fn emits(out: Vec<Output>) -> Vec<Emit> {
        out.into_iter()
            .filter_map(|o| match o {
                Output::Emit(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn silver_declares_its_ports_in_port_id_order() {
        let s = silver();
        let names: Vec<&str> = s.ports().iter().map(|p| p.name).collect();
        assert_eq!(names, ["silver", "late"]);
        assert_eq!(s.ports()[usize::from(PORT_SILVER.0)].name, "silver");
        assert_eq!(s.ports()[usize::from(PORT_LATE.0)].name, "late");
        assert!(s.ports()[usize::from(PORT_LATE.0)].tag_counter.is_some());
    }

    /// In-order events go to the silver port with the state restore needs;
    /// one behind what was already emitted goes to the late port, tagged
    /// with its reason.
    #[test]
    fn events_become_emits_on_the_silver_port_and_late_ones_on_the_late_port() {
        let s = silver();
        let mut task = Stage::new_task(&s, 0, 1);
        let mut out = ingest(&s, &mut task, &event("conv-a", T), 1);
        out.extend(ingest(&s, &mut task, &event("conv-a", T + 60_000), 2));
        Stage::flush(&s, &mut task, &mut out);
        let first = emits(out);
        assert_eq!(first.len(), 2, "{first:?}");
        for (e, t) in first.iter().zip([T, T + 60_000]) {
            assert_eq!(e.port, PORT_SILVER);
            assert_eq!(e.key, "conv-a");
            assert_eq!(e.tag, None);
            assert_eq!(e.state.map(|s| s.event_time_ms), Some(t));
            let v: Value = serde_json::from_slice(&e.value).expect("silver JSON");
            assert_eq!(
                v["lineage"]["token"].as_str(),
                Some(e.lineage_token.as_str())
            );
        }
        let late = emits(ingest(&s, &mut task, &event("conv-a", T + 1_000), 3));
        assert_eq!(late.len(), 1, "{late:?}");
        assert_eq!(late[0].port, PORT_LATE);
        let (name, reason) = late[0].tag.expect("a late emit carries its reason");
        assert_eq!(name, headers::LATE_REASON);
        let v: Value = serde_json::from_slice(&late[0].value).expect("late JSON");
        assert_eq!(v["late"]["reason"].as_str(), Some(reason));
    }

    #[test]
    fn watermarks_follow_the_reorder_settings() {
        let s = silver();
        let r = s
            .pipeline()
            .plan()
            .reorder
            .clone()
            .expect("shipped topology reorders");
        let w = s.watermarks();
        assert_eq!(w.idle, r.idle_timeout);
        assert_eq!(
            w.step_ms,
            i64::try_from(r.allowed_lateness.as_millis() / 2).expect("fits")
        );
        assert!(w.hold_limit <= r.max_buffered);
    }

    /// An instance that read 10 events, forwarded 3 of them to other
    /// owners, got 2 back from the repartition topic, and dealt with the
    /// rest: its own counters add up without the other instances'.
    #[test]
    fn accounting_adds_up_per_instance_with_forwarded_events() {
        let s = RunSummary {
            events_in: 10,
            repartitioned: 3,
            repartitioned_in: 2,
            silver: 5,
            late: 1,
            dead_letters: 1,
            duplicates: 1,
            filtered: 0,
            handed_over: 1,
            ..RunSummary::default()
        };
        assert!(s.accounted());
        // One forwarded event not accounted for anywhere.
        assert!(!RunSummary {
            repartitioned: 2,
            ..s.clone()
        }
        .accounted());
        // An event read back but not counted as read back.
        assert!(!RunSummary {
            repartitioned_in: 3,
            ..s
        }
        .accounted());
    }
}
