//! One gold task: the state of one input partition, without Kafka.
//!
//! The partition plays two parts. For the interactions silver put on it,
//! it keeps each interaction's leg events and the contributions it last
//! sent to each queue. For the queues whose home is this partition, it
//! keeps their windows ([`QueueWindows`]). Both are checkpointed tables:
//!
//! | table | key | value |
//! |---|---|---|
//! | `legs` | interaction id | its leg events (JSON) |
//! | `contrib` | `["<queue>","<interaction>"]` | that interaction's contributions to the queue |
//! | `window` | `["<queue>",<size ms>,<start ms>]` | revision and last written figures |
//! | `meta` | `watermark`, `progress` | the windows' watermark; the greatest event time read from this partition |
//!
//! What the interaction part sent to each queue is not stored: it is what
//! the restored events build, because a checkpoint waits until everything
//! sent is acknowledged.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::event::GoldEvent;
use super::kpi::Kpis;
use super::legs::{Contribution, InteractionLegs};
use super::progress::Progress;
use super::windows::{QueueWindows, WindowKey, WindowRules};
use crate::stage::StageTask;
use crate::state::tables::{Change, Tables};

pub const TABLE_LEGS: &str = "legs";
pub const TABLE_CONTRIB: &str = "contrib";
pub const TABLE_WINDOW: &str = "window";
pub const TABLE_META: &str = "meta";
const META_WATERMARK: &str = "watermark";
const META_PROGRESS: &str = "progress";

/// One interaction of this partition.
#[derive(Debug, Default)]
pub struct Interaction {
    pub legs: InteractionLegs,
    /// Queue id → the contributions last sent there.
    pub sent: BTreeMap<String, Vec<Contribution>>,
    /// Invalid legs among what was built last (counted as they appear).
    pub invalid: usize,
    /// Newest event time (the expiry index's key).
    pub last_ms: i64,
}

/// A window as the `window` table keeps it.
#[derive(Debug, Serialize, Deserialize)]
struct WindowWire {
    revision: u32,
    emitted: Option<Kpis>,
    /// `emitted.events` (not part of the figures' JSON).
    events: u64,
}

/// A gold task.
#[derive(Debug)]
pub struct GoldTask {
    pub partition: i32,
    pub partitions: i32,
    pub progress: Progress,
    pub interactions: HashMap<String, Interaction>,
    /// (newest event time, interaction) of every interaction.
    pub by_last: BTreeSet<(i64, String)>,
    pub windows: QueueWindows,
    pub changed_interactions: BTreeSet<String>,
    /// The watermark the last changes carried.
    pub watermark_written: i64,
    /// The own progress the last changes carried.
    pub progress_written: Option<i64>,
    /// Restore found records it could not read (skipped, counted).
    pub unreadable_state: u64,
}

impl GoldTask {
    pub fn new(
        partition: i32,
        partitions: i32,
        rules: WindowRules,
        silence_limit: Duration,
    ) -> Self {
        GoldTask {
            partition,
            partitions,
            progress: Progress::new(partition, partitions, silence_limit, Instant::now()),
            interactions: HashMap::new(),
            by_last: BTreeSet::new(),
            windows: QueueWindows::new(rules),
            changed_interactions: BTreeSet::new(),
            watermark_written: i64::MIN,
            progress_written: None,
            unreadable_state: 0,
        }
    }

    /// Adds an event to its interaction; `None` if it was there already,
    /// else the interaction (its events now include it).
    pub fn add_event(&mut self, e: GoldEvent) -> Option<&mut Interaction> {
        let id = e.interaction_id.clone();
        let t = e.event_time_ms;
        let st = self.interactions.entry(id.clone()).or_default();
        if !st.legs.add(e) {
            if st.legs.is_empty() {
                self.interactions.remove(&id);
            }
            return None;
        }
        let before = st.last_ms;
        let fresh = st.legs.len() == 1;
        st.last_ms = if fresh { t } else { before.max(t) };
        if !fresh {
            self.by_last.remove(&(before, id.clone()));
        }
        self.by_last.insert((st.last_ms, id.clone()));
        self.changed_interactions.insert(id.clone());
        self.interactions.get_mut(&id)
    }

    /// Forgets interactions whose newest event is so old that every window
    /// it could still change is past the correction horizon.
    pub fn expire_interactions(&mut self) {
        let wm = self.windows.watermark();
        let keep = self
            .windows
            .rules()
            .horizon_ms
            .saturating_add(self.windows.max_size_ms());
        while let Some((t, id)) = self.by_last.first().cloned() {
            if t.saturating_add(keep) > wm {
                break;
            }
            self.by_last.pop_first();
            self.interactions.remove(&id);
            self.changed_interactions.insert(id);
        }
    }

    /// Events kept, over every interaction (gauges).
    pub fn events_kept(&self) -> usize {
        self.interactions.values().map(|i| i.legs.len()).sum()
    }
}

fn json_key<T: Serialize>(k: &T) -> String {
    serde_json::to_string(k).unwrap_or_default()
}

impl StageTask for GoldTask {
    fn restore_tables(&mut self, tables: Tables) {
        for (id, v) in tables.table(TABLE_LEGS) {
            let Ok(events) = serde_json::from_slice::<Vec<GoldEvent>>(v) else {
                self.unreadable_state += 1;
                continue;
            };
            let mut st = Interaction {
                last_ms: i64::MIN,
                ..Interaction::default()
            };
            for e in events {
                st.last_ms = st.last_ms.max(e.event_time_ms);
                st.legs.add(e);
            }
            if st.legs.is_empty() {
                continue;
            }
            let built = st.legs.build();
            st.invalid = built.invalid.len();
            st.sent = built.by_queue;
            self.by_last.insert((st.last_ms, id.to_string()));
            self.interactions.insert(id.to_string(), st);
        }
        for (k, v) in tables.table(TABLE_CONTRIB) {
            match (
                serde_json::from_str::<(String, String)>(k),
                serde_json::from_slice::<Vec<Contribution>>(v),
            ) {
                (Ok((queue, interaction)), Ok(cs)) => {
                    self.windows.restore_contributions(&queue, &interaction, cs)
                }
                _ => self.unreadable_state += 1,
            }
        }
        for (k, v) in tables.table(TABLE_WINDOW) {
            match (
                serde_json::from_str::<(String, i64, i64)>(k),
                serde_json::from_slice::<WindowWire>(v),
            ) {
                (Ok((queue, size_ms, start_ms)), Ok(w)) => {
                    let emitted = w.emitted.map(|mut k| {
                        k.events = w.events;
                        k
                    });
                    let key = WindowKey {
                        queue,
                        size_ms,
                        start_ms,
                    };
                    self.windows.restore_window(key, w.revision, emitted);
                }
                _ => self.unreadable_state += 1,
            }
        }
        if let Some(wm) = tables
            .get(TABLE_META, META_WATERMARK)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|s| s.parse::<i64>().ok())
        {
            self.windows.restore_watermark(wm);
            self.watermark_written = wm;
        }
        if let Some(p) = tables
            .get(TABLE_META, META_PROGRESS)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|s| s.parse::<i64>().ok())
        {
            self.progress.restore_own(p);
            self.progress_written = Some(p);
        }
        self.windows.clear_changes();
    }

    fn restore_output(&mut self, port: crate::stage::PortId, _key: &[u8], value: &[u8]) {
        if port != super::stage::PORT_KPIS {
            return;
        }
        let Some((key, revision, kpis)) = super::record::decode(value) else {
            return;
        };
        if crate::partition::partition_for(key.queue.as_bytes(), self.partitions) == self.partition
        {
            self.windows.restore_written(key, revision, kpis);
        }
    }

    fn take_changes(&mut self, out: &mut Vec<Change>) {
        for id in std::mem::take(&mut self.changed_interactions) {
            match self.interactions.get(&id) {
                Some(st) => {
                    let events: Vec<&GoldEvent> = st.legs.events().collect();
                    let v = serde_json::to_vec(&events).unwrap_or_default();
                    out.push(Change::put(TABLE_LEGS, &id, v));
                }
                None => out.push(Change::delete(TABLE_LEGS, &id)),
            }
        }
        let (contribs, windows) = self.windows.take_changes();
        for (id, cs) in contribs {
            let k = json_key(&id);
            match cs {
                Some(cs) => out.push(Change::put(
                    TABLE_CONTRIB,
                    &k,
                    serde_json::to_vec(&cs).unwrap_or_default(),
                )),
                None => out.push(Change::delete(TABLE_CONTRIB, &k)),
            }
        }
        for (key, w) in windows {
            let k = json_key(&(&key.queue, key.size_ms, key.start_ms));
            match w {
                Some((revision, emitted)) => {
                    let wire = WindowWire {
                        revision,
                        events: emitted.as_ref().map_or(0, |k| k.events),
                        emitted,
                    };
                    out.push(Change::put(
                        TABLE_WINDOW,
                        &k,
                        serde_json::to_vec(&wire).unwrap_or_default(),
                    ));
                }
                None => out.push(Change::delete(TABLE_WINDOW, &k)),
            }
        }
        let own = self.progress.own_max();
        if own != self.progress_written {
            self.progress_written = own;
            if let Some(p) = own {
                out.push(Change::put(
                    TABLE_META,
                    META_PROGRESS,
                    p.to_string().into_bytes(),
                ));
            }
        }
        let wm = self.windows.watermark();
        if wm != self.watermark_written {
            self.watermark_written = wm;
            out.push(Change::put(
                TABLE_META,
                META_WATERMARK,
                wm.to_string().into_bytes(),
            ));
        }
    }

    fn progress(&self, now: Instant, idle: Duration) -> Option<(i64, bool)> {
        self.progress.progress(now, idle)
    }

    fn runs_ahead(&self, _limit: usize) -> bool {
        // Nothing waits in a buffer: a partition ahead of the others only
        // makes later results, never more memory.
        false
    }

    fn held_back(&self) -> bool {
        self.progress.held_back()
    }

    fn set_held_back(&mut self, held: bool) {
        self.progress.set_held_back(held);
    }

    fn mark_end_of_partition(&mut self) {
        self.progress.mark_end_of_partition();
    }

    fn buffered(&self) -> usize {
        0
    }
}
