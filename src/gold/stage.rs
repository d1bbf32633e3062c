//! The gold stage on the runtime: silver events in, per-(queue, window)
//! results out.
//!
//! 1. An event of `cx.silver.events` or `cx.silver.late` joins its
//!    interaction's legs (on silver's partitioning). The legs are built
//!    again; each queue whose contributions changed gets the interaction's
//!    complete new set, keyed by queue id: applied here if the queue's
//!    home is this partition, else forwarded through the repartition topic.
//! 2. A contribution set replaces that interaction's earlier one in the
//!    queue's windows, so nothing is counted twice.
//! 3. At each checkpoint the windows advance to the watermark: first
//!    results of windows past end + grace, and new revisions of kept
//!    windows whose figures changed, are written before the checkpoint
//!    (upserts keyed by queue, size and start).
//!
//! An event older than every window it could still change is written to
//! the late port with its reason (and counted); its contributions are
//! refused by the windows (counted), never silently dropped.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::event::{GoldEvent, LegEventKind};
use super::legs::Contribution;
use super::metrics::GoldMetrics;
use super::record::{self, Provenance};
use super::task::GoldTask;
use super::windows::{window_start, TooLate, WindowResult};
use crate::config::GoldPlan;
use crate::headers;
use crate::metrics::Metrics;
use crate::partition::partition_for;
use crate::stage::{
    DeadLetterOut, Emit, ForwardOut, Output, Port, PortId, RecordIn, Role, Stage, StateModel,
    Watermarks, NO_TICKET,
};

/// Port of the window results.
pub const PORT_KPIS: PortId = PortId(0);
/// Port of events too late for every window still kept.
pub const PORT_LATE: PortId = PortId(1);

/// The late reason of [`PORT_LATE`].
pub const BEYOND_HORIZON: &str = "beyond_correction_horizon";

/// Dead-letter class of a record gold cannot read.
pub const UNREADABLE_SILVER: &str = "unreadable_silver_record";
/// Dead-letter class of a repartitioned contribution set gold cannot read
/// (written by another build).
pub const UNREADABLE_CONTRIBUTIONS: &str = "unreadable_contribution_set";

/// The value of a forwarded contribution set.
#[derive(Debug, Serialize, Deserialize)]
struct ContributionSet {
    queue: String,
    interaction: String,
    contributions: Vec<Contribution>,
}

/// How long an input partition not heard from holds the watermark.
const SILENCE_LIMIT: Duration = Duration::from_secs(30);
/// Quiet for this long (and caught up): a partition says it is idle.
const IDLE: Duration = Duration::from_secs(2);

/// The gold stage.
#[derive(Debug)]
pub struct Gold {
    plan: std::sync::Arc<GoldPlan>,
    metrics: GoldMetrics,
}

impl Gold {
    pub fn new(plan: std::sync::Arc<GoldPlan>, metrics: &Metrics) -> Self {
        Gold {
            plan,
            metrics: GoldMetrics::new(metrics),
        }
    }

    pub fn plan(&self) -> &GoldPlan {
        &self.plan
    }

    fn provenance(&self) -> Provenance<'_> {
        Provenance {
            topology: &self.plan.runtime.topology,
            stage: &self.plan.runtime.stage,
        }
    }

    fn refused(&self, too_late: &[TooLate]) {
        self.metrics
            .refused_contributions
            .inc_by(too_late.len() as u64);
    }

    /// True if every window an event at `t` completes is past the
    /// correction horizon of `task`'s windows.
    fn beyond_horizon(&self, task: &GoldTask, t: i64) -> bool {
        let wm = task.windows.watermark();
        let rules = &self.plan.windows;
        wm != i64::MIN
            && rules
                .sizes_ms
                .iter()
                .all(|&size| (window_start(t, size) + size).saturating_add(rules.horizon_ms) <= wm)
    }

    fn ingest_event(
        &self,
        task: &mut GoldTask,
        rec: &RecordIn<'_>,
        now: Instant,
        out: &mut Vec<Output>,
    ) -> usize {
        let e = match GoldEvent::from_silver(rec.value) {
            Ok(e) => e,
            Err(err) => {
                task.progress.note_record(now);
                out.push(Output::DeadLetter(DeadLetterOut {
                    class: UNREADABLE_SILVER,
                    message: err.to_string(),
                    stage: "gold",
                    range: 0..rec.value.len(),
                    lineage_token: rec.header_token.map(str::to_string),
                    ticket: rec.ticket,
                }));
                return 1;
            }
        };
        task.progress.note_input(e.event_time_ms, now);
        if e.kind == LegEventKind::Other {
            return 0;
        }
        let mut held = 0;
        if self.beyond_horizon(task, e.event_time_ms) {
            self.metrics.beyond_horizon.inc();
            out.push(Output::Emit(Emit {
                port: PORT_LATE,
                key: e.interaction_id.clone(),
                value: rec.value.to_vec(),
                lineage_token: rec.header_token.unwrap_or_default().to_string(),
                tag: Some((headers::LATE_REASON, BEYOND_HORIZON)),
                ticket: rec.ticket,
                unit: 0,
                state: None,
            }));
            held += 1;
        }
        let interaction = e.interaction_id.clone();
        let (partition, partitions) = (task.partition, task.partitions);
        let Some(st) = task.add_event(e) else {
            return held; // read again (after a restore) or sent twice
        };
        let built = st.legs.build();
        if built.invalid.len() > st.invalid {
            for r in &built.invalid[st.invalid.min(built.invalid.len())..] {
                self.metrics
                    .invalid_legs
                    .with_label_values(&[r.as_str()])
                    .inc();
            }
        }
        st.invalid = built.invalid.len();
        let queues: Vec<String> = built
            .by_queue
            .keys()
            .chain(st.sent.keys())
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut local = Vec::new();
        let mut unit = 0usize;
        for q in queues {
            let new = built.by_queue.get(&q).cloned().unwrap_or_default();
            if st.sent.get(&q).map_or(new.is_empty(), |old| *old == new) {
                continue;
            }
            if new.is_empty() {
                st.sent.remove(&q);
            } else {
                st.sent.insert(q.clone(), new.clone());
            }
            let home = partition_for(q.as_bytes(), partitions);
            if home == partition {
                local.push((q, new));
                continue;
            }
            let set = ContributionSet {
                queue: q.clone(),
                interaction: interaction.clone(),
                contributions: new,
            };
            out.push(Output::Forward(ForwardOut {
                home,
                key: q,
                range: unit..unit,
                payload: Some(serde_json::to_vec(&set).unwrap_or_default()),
                // The interaction's complete set for the queue: sent again
                // after a restart (the home keeps the last one).
                replaces: true,
                lineage_token: rec.header_token.unwrap_or_default().to_string(),
                hops: Vec::new(),
                ticket: rec.ticket,
            }));
            unit += 1;
            held += 1;
        }
        for (q, cs) in local {
            let too_late = task.windows.replace(&q, &interaction, cs);
            self.refused(&too_late);
        }
        held
    }

    fn ingest_contributions(
        &self,
        task: &mut GoldTask,
        rec: &RecordIn<'_>,
        out: &mut Vec<Output>,
    ) -> usize {
        match serde_json::from_slice::<ContributionSet>(rec.value) {
            Ok(set) => {
                let too_late =
                    task.windows
                        .replace(&set.queue, &set.interaction, set.contributions);
                self.refused(&too_late);
                0
            }
            Err(_) => {
                out.push(Output::DeadLetter(DeadLetterOut {
                    class: UNREADABLE_CONTRIBUTIONS,
                    message: "repartitioned record is not a gold contribution set of this build"
                        .into(),
                    stage: "gold",
                    range: 0..rec.value.len(),
                    lineage_token: rec.header_token.map(str::to_string),
                    ticket: rec.ticket,
                }));
                1
            }
        }
    }

    fn emit_result(&self, r: &WindowResult, out: &mut Vec<Output>) {
        let from = self.provenance();
        let key = record::key(&r.key);
        let Ok(value) = record::encode(r, &self.plan.windows.kpi, &from) else {
            return;
        };
        self.metrics
            .results
            .with_label_values(&[if r.revision == 1 {
                "first"
            } else {
                "correction"
            }])
            .inc();
        out.push(Output::Emit(Emit {
            port: PORT_KPIS,
            lineage_token: record::token(&from, &key),
            key,
            value,
            tag: None,
            ticket: NO_TICKET,
            unit: 0,
            state: None,
        }));
    }
}

impl Stage for Gold {
    type Task = GoldTask;

    fn state_model(&self) -> StateModel {
        StateModel::Checkpointed
    }

    /// Results due at the watermark, then interactions past the horizon
    /// are forgotten.
    fn checkpoint(&self, task: &mut GoldTask, out: &mut Vec<Output>) {
        if let Some(wm) = task.progress.watermark(Instant::now(), IDLE) {
            for r in task.windows.advance(wm) {
                self.emit_result(&r, out);
            }
        }
        task.expire_interactions();
    }

    fn ports(&self) -> Vec<Port> {
        vec![
            Port {
                name: "queue_kpis",
                topic: self.plan.kpis_topic.clone(),
                tag_counter: None,
            },
            Port {
                name: "late",
                topic: self.plan.late_topic.clone(),
                tag_counter: None,
            },
        ]
    }

    fn tail_ports(&self) -> Vec<PortId> {
        vec![PORT_KPIS]
    }

    fn new_task(&self, partition: i32, partitions: i32) -> GoldTask {
        GoldTask::new(
            partition,
            partitions,
            self.plan.windows.clone(),
            SILENCE_LIMIT,
        )
    }

    fn ingest(
        &self,
        task: &mut GoldTask,
        rec: &RecordIn<'_>,
        now: Instant,
        out: &mut Vec<Output>,
    ) -> usize {
        match rec.role {
            Role::Repartition => self.ingest_contributions(task, rec, out),
            Role::Input | Role::CoInput(_) => self.ingest_event(task, rec, now, out),
        }
    }

    fn on_marker(
        &self,
        task: &mut GoldTask,
        from: i32,
        event_time_ms: i64,
        idle: bool,
        now: Instant,
        _out: &mut Vec<Output>,
    ) {
        task.progress.on_marker(from, event_time_ms, idle, now);
    }

    fn tick(&self, _task: &mut GoldTask, _now: Instant, _out: &mut Vec<Output>) {}

    fn flush(&self, _task: &mut GoldTask, _out: &mut Vec<Output>) {}

    /// A marker round whenever a partition's progress moved a second;
    /// idle after 2 s; no alignment (nothing is buffered).
    fn watermarks(&self) -> Watermarks {
        Watermarks {
            step_ms: 1_000,
            idle: IDLE,
            hold_limit: usize::MAX,
        }
    }

    /// State older than the correction horizon (plus the largest window)
    /// is of no use.
    fn state_ttl(&self) -> Duration {
        let w = &self.plan.windows;
        let ms = w
            .horizon_ms
            .saturating_add(w.sizes_ms.iter().copied().max().unwrap_or(0))
            .saturating_add(w.grace_ms);
        Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    fn update_gauges<'a>(&self, tasks: impl Iterator<Item = &'a GoldTask>) {
        let (mut interactions, mut events, mut windows, mut sets, mut unreadable) =
            (0usize, 0usize, 0usize, 0usize, 0u64);
        for t in tasks {
            interactions += t.interactions.len();
            events += t.events_kept();
            let (w, s) = t.windows.sizes();
            windows += w;
            sets += s;
            unreadable += t.unreadable_state;
        }
        let m = &self.metrics;
        m.interactions.set(interactions as i64);
        m.events_kept.set(events as i64);
        m.windows.set(windows as i64);
        m.contribution_sets.set(sets as i64);
        let before = m.unreadable_state.get();
        if unreadable > before {
            m.unreadable_state.inc_by(unreadable - before);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{format_iso_ms, SourceRef};
    use crate::stage::StageTask;
    use crate::state::tables::Tables;
    use serde_json::{json, Value};
    use std::sync::Arc;

    const T0: i64 = 1_772_442_000_000; // 2026-03-02T09:00:00Z
    const MIN: i64 = 60_000;

    pub(crate) fn plan() -> GoldPlan {
        let text = "name = \"t\"\n[[stages]]\nname = \"gold\"\nkind = \"gold\"\ninputs = [\"s\", \"l\"]\ndead_letter = \"d\"\n[stages.ports]\nqueue_kpis = { topic = \"k\" }\nlate = { topic = \"gl\" }\n[[stages.operators]]\ntype = \"windows\"\ngrace = \"5s\"\ncorrection_horizon = \"2h\"\n";
        let t = crate::config::parse(text, "gold.toml").expect("topology");
        t.gold().expect("a gold stage").clone()
    }

    fn gold() -> Gold {
        Gold::new(Arc::new(plan()), &Metrics::new())
    }

    fn silver(id: &str, conv: &str, ty: &str, t: i64, extra: Value) -> Vec<u8> {
        let mut v = json!({
            "schema_version": 1,
            "event_id": id,
            "interaction_id": conv,
            "event_type": ty,
            "event_time": format_iso_ms(t),
        });
        if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
            o.extend(e);
        }
        serde_json::to_vec(&v).expect("json")
    }

    fn feed(g: &Gold, task: &mut GoldTask, role: Role, value: &[u8]) -> Vec<Output> {
        let rec = RecordIn {
            value,
            source: SourceRef {
                topic: Arc::from("s"),
                partition: task.partition,
                offset: 0,
            },
            role,
            header_token: Some("tok"),
            header_hops: None,
            record_timestamp_ms: None,
            ticket: 7,
        };
        let mut out = Vec::new();
        let held = g.ingest(task, &rec, Instant::now(), &mut out);
        let with_ticket = out.iter().filter(|o| o.ticket() == 7).count();
        assert_eq!(
            held, with_ticket,
            "the hold counts the outputs of the record"
        );
        out
    }

    /// An answered call on `q`: waits 12 s, talks 100 s, holds 10 s,
    /// wraps up 30 s.
    fn answered_call(conv: &str, q: &str, t: i64) -> Vec<Vec<u8>> {
        vec![
            silver(
                &format!("{conv}-1"),
                conv,
                "acd.start",
                t,
                json!({"queue_id": q}),
            ),
            silver(
                &format!("{conv}-2"),
                conv,
                "acd.end",
                t + 12_000,
                json!({"queue_id": q, "acd_outcome": "ANSWERED", "connected_duration_ms": 12_000, "answered_user_id": "agent-1", "disconnect_type": "TRANSFER"}),
            ),
            silver(
                &format!("{conv}-3"),
                conv,
                "user.end",
                t + 122_000,
                json!({"user_id": "agent-1", "queue_id": q, "disconnect_type": "CLIENT", "interacting_duration_ms": 100_000, "held_duration_ms": 10_000}),
            ),
            silver(
                &format!("{conv}-4"),
                conv,
                "acw",
                t + 152_000,
                json!({"user_id": "agent-1", "queue_id": q, "wrapup_duration_ms": 30_000, "wrapup_code": "sale"}),
            ),
        ]
    }

    fn results(out: &[Output]) -> Vec<Value> {
        out.iter()
            .filter_map(|o| match o {
                Output::Emit(e) if e.port == PORT_KPIS => {
                    assert_eq!(e.ticket, NO_TICKET);
                    let mut v: Value = serde_json::from_slice(&e.value).expect("json");
                    v["_key"] = Value::String(e.key.clone());
                    Some(v)
                }
                _ => None,
            })
            .collect()
    }

    fn checkpoint(g: &Gold, task: &mut GoldTask) -> Vec<Value> {
        let mut out = Vec::new();
        g.checkpoint(task, &mut out);
        results(&out)
    }

    fn quarter(rs: &[Value], start: i64) -> Option<&Value> {
        rs.iter().find(|r| {
            r["window_size_ms"] == 15 * MIN && r["window_start"] == format_iso_ms(start).as_str()
        })
    }

    #[test]
    fn a_window_is_written_once_the_watermark_passes_its_end_and_grace() {
        let g = gold();
        let mut task = g.new_task(0, 1);
        for r in answered_call("c1", "q1", T0 + MIN) {
            assert!(feed(&g, &mut task, Role::Input, &r).is_empty());
        }
        // Watermark at 09:02:32: nothing has closed.
        assert!(checkpoint(&g, &mut task).is_empty());
        // An event of another interaction at 09:15:05 moves it past the
        // 09:00 quarter's end + grace.
        feed(
            &g,
            &mut task,
            Role::Input,
            &silver(
                "x",
                "c2",
                "acd.start",
                T0 + 15 * MIN + 5_000,
                json!({"queue_id": "q2"}),
            ),
        );
        let rs = checkpoint(&g, &mut task);
        let q = quarter(&rs, T0).expect("the 09:00 quarter of q1");
        assert_eq!(q["queue_id"], "q1");
        assert_eq!(q["revision"], 1);
        assert_eq!(q["_key"], "q1|PT15M|2026-03-02T09:00:00.000Z");
        assert_eq!(q["offered"], 1);
        assert_eq!(q["answered"], 1);
        assert_eq!(q["answered_within_target"], 1);
        assert_eq!(q["handled"], 1);
        assert_eq!(q["talk_ms"], 100_000);
        assert_eq!(q["held_ms"], 10_000);
        assert_eq!(q["acw_ms"], 30_000);
        assert_eq!(q["aht_ms"], 140_000.0);
        assert_eq!(q["asa_ms"], 12_000.0);
        assert_eq!(q["transfers"], 0, "the acd→agent hand-off is no transfer");
        assert_eq!(q["lineage"]["silver_events"], 4);
        assert!(checkpoint(&g, &mut task).is_empty(), "nothing changed");
    }

    #[test]
    fn a_late_event_writes_a_new_revision_with_the_complete_figures() {
        let g = gold();
        let mut task = g.new_task(0, 1);
        let call = answered_call("c1", "q1", T0 + MIN);
        for r in &call[..3] {
            feed(&g, &mut task, Role::Input, r);
        }
        feed(
            &g,
            &mut task,
            Role::Input,
            &silver(
                "x",
                "c2",
                "acd.start",
                T0 + 16 * MIN,
                json!({"queue_id": "q2"}),
            ),
        );
        let first = checkpoint(&g, &mut task);
        let q = quarter(&first, T0).expect("first result");
        assert_eq!(
            (q["revision"].clone(), q["handled"].clone()),
            (json!(1), json!(0))
        );
        // The wrap-up arrives late, through silver's late topic.
        assert!(feed(&g, &mut task, Role::CoInput(0), &call[3]).is_empty());
        let again = checkpoint(&g, &mut task);
        let q = quarter(&again, T0).expect("a correction");
        assert_eq!(q["revision"], 2);
        assert_eq!(q["handled"], 1);
        assert_eq!(q["acw_ms"], 30_000);
        assert_eq!(q["offered"], 1, "complete figures, not a delta");
        // The same event again changes nothing.
        feed(&g, &mut task, Role::CoInput(0), &call[3]);
        assert!(checkpoint(&g, &mut task).is_empty());
    }

    #[test]
    fn contributions_of_a_queue_homed_elsewhere_are_forwarded_and_applied_there() {
        let g = gold();
        let partitions = 4;
        let q = (0..100)
            .map(|i| format!("queue-{i}"))
            .find(|q| partition_for(q.as_bytes(), partitions) == 3)
            .expect("a queue homed on 3");
        let mut here = g.new_task(1, partitions);
        let mut home = g.new_task(3, partitions);
        let out = feed(
            &g,
            &mut here,
            Role::Input,
            &silver("e1", "c1", "acd.start", T0, json!({"queue_id": q})),
        );
        let [Output::Forward(f)] = &out[..] else {
            panic!("one forward: {out:?}");
        };
        assert_eq!((f.home, f.key.as_str()), (3, q.as_str()));
        let payload = f.payload.clone().expect("a contribution set");
        assert!(feed(&g, &mut home, Role::Repartition, &payload).is_empty());
        assert_eq!(
            home.windows.sizes().1,
            1,
            "the set is in the home's windows"
        );
        assert_eq!(here.windows.sizes().1, 0);
        let bad = feed(&g, &mut home, Role::Repartition, b"{\"not\":1}");
        assert!(matches!(&bad[..], [Output::DeadLetter(d)] if d.class == UNREADABLE_CONTRIBUTIONS));
    }

    #[test]
    fn an_unreadable_record_is_a_dead_letter_and_a_repeat_is_nothing() {
        let g = gold();
        let mut task = g.new_task(0, 1);
        let out = feed(&g, &mut task, Role::Input, b"{\"customer\":\"secret\"");
        let [Output::DeadLetter(d)] = &out[..] else {
            panic!("{out:?}");
        };
        assert_eq!(d.class, UNREADABLE_SILVER);
        assert!(!d.message.contains("secret"));
        let r = silver("e1", "c1", "acd.start", T0, json!({"queue_id": "q1"}));
        feed(&g, &mut task, Role::Input, &r);
        feed(&g, &mut task, Role::CoInput(0), &r);
        assert_eq!(task.events_kept(), 1);
    }

    #[test]
    fn an_event_older_than_the_correction_horizon_goes_to_the_late_port() {
        let g = gold();
        let mut task = g.new_task(0, 1);
        feed(
            &g,
            &mut task,
            Role::Input,
            &silver(
                "now",
                "c9",
                "acd.start",
                T0 + 5 * 60 * MIN,
                json!({"queue_id": "q1"}),
            ),
        );
        checkpoint(&g, &mut task);
        // 09:01 is past every window's end + 2 h horizon at 14:00.
        let old = answered_call("c1", "q1", T0 + MIN);
        let out = feed(&g, &mut task, Role::CoInput(0), &old[0]);
        let late: Vec<&Emit> = out
            .iter()
            .filter_map(|o| match o {
                Output::Emit(e) if e.port == PORT_LATE => Some(e),
                _ => None,
            })
            .collect();
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].tag, Some((headers::LATE_REASON, BEYOND_HORIZON)));
        assert_eq!(late[0].value, old[0]);
        assert_eq!(g.metrics.beyond_horizon.get(), 1);
        assert_eq!(
            g.metrics.refused_contributions.get(),
            2,
            "both window sizes refuse it"
        );
        assert!(checkpoint(&g, &mut task).is_empty(), "no window reopens");
    }

    #[test]
    fn restored_tables_and_written_results_continue_where_the_task_was() {
        let g = gold();
        let mut task = g.new_task(0, 1);
        let call = answered_call("c1", "q1", T0 + MIN);
        for r in &call[..3] {
            feed(&g, &mut task, Role::Input, r);
        }
        feed(
            &g,
            &mut task,
            Role::Input,
            &silver(
                "x",
                "c2",
                "acd.start",
                T0 + 16 * MIN,
                json!({"queue_id": "q2"}),
            ),
        );
        assert!(quarter(&checkpoint(&g, &mut task), T0).is_some());
        let mut changes = Vec::new();
        task.take_changes(&mut changes);
        let mut tables = Tables::default();
        for c in changes {
            tables.apply(c);
        }
        // After the checkpoint, the wrap-up came and revision 2 was
        // written; then a crash.
        feed(&g, &mut task, Role::CoInput(0), &call[3]);
        let mut out = Vec::new();
        g.checkpoint(&mut task, &mut out);
        let written: Vec<&Emit> = out
            .iter()
            .filter_map(|o| match o {
                Output::Emit(e) => Some(e),
                _ => None,
            })
            .collect();
        assert!(!written.is_empty());

        let mut restored = g.new_task(0, 1);
        restored.restore_tables(tables);
        assert_eq!(
            restored.progress.own_max(),
            Some(T0 + 16 * MIN),
            "the partition's progress survives: records before the checkpoint are not read again"
        );
        assert_eq!(restored.events_kept(), task.events_kept() - 1);
        for e in &written {
            restored.restore_output(PORT_KPIS, e.key.as_bytes(), &e.value);
        }
        // The records after the checkpoint are read again.
        feed(
            &g,
            &mut restored,
            Role::Input,
            &silver(
                "x",
                "c2",
                "acd.start",
                T0 + 16 * MIN,
                json!({"queue_id": "q2"}),
            ),
        );
        feed(&g, &mut restored, Role::CoInput(0), &call[3]);
        assert!(
            checkpoint(&g, &mut restored).is_empty(),
            "what was written after the checkpoint is not written again"
        );
        // A later correction continues at revision 3.
        feed(
            &g,
            &mut restored,
            Role::CoInput(0),
            &silver(
                "c3-1",
                "c3",
                "acd.start",
                T0 + 2 * MIN,
                json!({"queue_id": "q1"}),
            ),
        );
        let next = checkpoint(&g, &mut restored);
        let q = quarter(&next, T0).expect("a correction");
        assert_eq!(q["revision"], 3);
        assert_eq!(q["offered"], 2);
    }
}
