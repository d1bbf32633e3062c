//! Checkpoints of stages with [`StateModel::Checkpointed`] state: the
//! changelog records of their tables, the checkpoint record, and the replay
//! guard of the records they forward (see [`crate::state::tables`]).

use std::collections::BTreeMap;

use super::*;
use crate::state::tables::{self, Change, Checkpoint};

/// A checkpointed task's bookkeeping.
#[derive(Debug, Default)]
pub(super) struct TaskCheckpoint {
    /// The epoch of the next checkpoint.
    pub epoch: u64,
    /// (topic, partition) → the offset after the last acknowledged output
    /// of this task there.
    pub covers: BTreeMap<(Arc<str>, i32), i64>,
    /// The input offsets of the last checkpoint (carried into the next one
    /// for an input nothing was read from since).
    pub offsets: BTreeMap<Arc<str>, i64>,
    /// Confirmed values to write again (see [`tables::RestoredTables::repair`]).
    pub repair: Vec<Change>,
    /// (Repartition partition, [`Role::code`] of the input) → the last
    /// (offset, unit) of that input of this task already forwarded there
    /// before a restart.
    pub forwarded: HashMap<(i32, u8), (i64, u32)>,
}

impl TaskCheckpoint {
    /// Notes an acknowledged output of the task at `offset`.
    pub fn cover(&mut self, topic: &Arc<str>, partition: i32, offset: i64) {
        let e = self
            .covers
            .entry((topic.clone(), partition))
            .or_insert(offset + 1);
        *e = (*e).max(offset + 1);
    }

    /// True if the forward of (`offset`, `unit`) of input `role` to
    /// repartition partition `home` was written before a restart.
    pub fn already_forwarded(&self, home: i32, role: Role, offset: i64, unit: u32) -> bool {
        self.forwarded
            .get(&(home, role.code()))
            .is_some_and(|last| (offset, unit) <= *last)
    }
}

impl<S: Stage> Core<S> {
    /// Takes a checkpoint of each task (`only`: just these): the stage's
    /// checkpoint outputs, then — once every output is acknowledged — its
    /// table changes and the checkpoint record, then waits until those are
    /// acknowledged. The caller commits the input offsets after it.
    pub(super) fn write_checkpoints(&mut self, producer: &Producer_, only: Option<&[i32]>) {
        let mut parts: Vec<i32> = self
            .checkpoints
            .keys()
            .copied()
            .filter(|p| only.is_none_or(|o| o.contains(p)))
            .collect();
        parts.sort_unstable();
        if parts.is_empty() {
            return;
        }
        let mut out = std::mem::take(&mut self.out);
        for p in &parts {
            if let Some(task) = self.tasks.get_mut(p) {
                self.stage.checkpoint(task, &mut out);
            }
            for o in out.drain(..) {
                self.route(producer, *p, o, None);
            }
        }
        self.out = out;
        if !self.wait_for_acks(producer) {
            return;
        }
        let mut changes = Vec::new();
        for p in parts {
            // The tables hold every record read: the stage holds none
            // beyond its outputs, which are all acknowledged now.
            let mut offsets = Vec::new();
            let before = self.checkpoints.get(&p).map(|ck| ck.offsets.clone());
            for role in self.topics.roles() {
                let topic = self.topics.of(role);
                let Some(t) = self.trackers.get(role, p) else {
                    continue;
                };
                let (next, commit) = (t.next_offset(), self.trackers.commit_point(role, p));
                if next != commit {
                    self.fatal.get_or_insert_with(|| {
                        format!("checkpointed stage still holds records of partition {p} at a checkpoint")
                    });
                    return;
                }
                if let (Some(o), Some(ck)) = (next, self.checkpoints.get_mut(&p)) {
                    ck.offsets.insert(topic, o);
                }
            }
            let Some(ck) = self.checkpoints.get_mut(&p) else {
                continue;
            };
            offsets.extend(ck.offsets.iter().map(|(t, o)| (t.to_string(), *o)));
            changes.append(&mut ck.repair);
            if let Some(task) = self.tasks.get_mut(&p) {
                task.take_changes(&mut changes);
            }
            if changes.is_empty() && before.as_ref() == Some(&ck.offsets) {
                // Nothing read and nothing changed since the last one.
                continue;
            }
            let epoch = ck.epoch;
            ck.epoch += 1;
            let record = Checkpoint {
                v: tables::FORMAT,
                epoch,
                offsets,
                covers: ck
                    .covers
                    .iter()
                    .map(|((t, q), o)| (t.to_string(), *q, *o))
                    .collect(),
            };
            let epoch_text = epoch.to_string();
            for c in changes.drain(..) {
                let key = c.record_key();
                self.send_state_record(
                    producer,
                    p,
                    key.as_bytes(),
                    c.value.as_deref(),
                    Some(&epoch_text),
                );
            }
            let value = record.encode();
            self.send_state_record(
                producer,
                p,
                tables::CHECKPOINT_KEY.as_bytes(),
                Some(&value),
                None,
            );
            self.metrics.checkpoints.inc();
        }
        self.wait_for_acks(producer);
    }

    /// Waits (at most a minute) until every record produced is
    /// acknowledged and applies the reports; false if that failed.
    fn wait_for_acks(&mut self, producer: &Producer_) -> bool {
        if let Err(e) = producer.flush(Duration::from_secs(60)) {
            self.fatal
                .get_or_insert_with(|| format!("waiting for outputs before a checkpoint: {e}"));
            return false;
        }
        self.apply_acks(producer);
        self.fatal.is_none()
    }

    /// One changelog record of checkpointed state (`value: None`: a
    /// tombstone).
    fn send_state_record(
        &mut self,
        producer: &Producer_,
        p: i32,
        key: &[u8],
        value: Option<&[u8]>,
        epoch: Option<&str>,
    ) {
        let format = tables::FORMAT.to_string();
        let mut hs = OwnedHeaders::new_with_capacity(2).insert(Header {
            key: headers::STATE_FORMAT,
            value: Some(format.as_bytes()),
        });
        if let Some(e) = epoch {
            hs = hs.insert(Header {
                key: headers::STATE_EPOCH,
                value: Some(e.as_bytes()),
            });
        }
        let topic = self.settings.plan.changelog_topic.clone();
        self.metrics.changelog_records.inc();
        self.send_value(
            producer,
            &topic,
            p,
            Some(key),
            value,
            hs,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_knows_what_was_forwarded_before_a_restart() {
        let mut ck = TaskCheckpoint::default();
        ck.forwarded.insert((2, 0), (10, 5));
        assert!(ck.already_forwarded(2, Role::Input, 9, 99));
        assert!(ck.already_forwarded(2, Role::Input, 10, 5));
        assert!(!ck.already_forwarded(2, Role::Input, 10, 6));
        assert!(!ck.already_forwarded(2, Role::Input, 11, 0));
        assert!(
            !ck.already_forwarded(1, Role::Input, 0, 0),
            "another partition"
        );
        assert!(
            !ck.already_forwarded(2, Role::CoInput(0), 9, 0),
            "another input's offsets are its own"
        );
    }

    #[test]
    fn covers_only_move_forward() {
        let mut ck = TaskCheckpoint::default();
        let t: Arc<str> = Arc::from("out");
        ck.cover(&t, 0, 9);
        ck.cover(&t, 0, 4);
        ck.cover(&t, 1, 0);
        assert_eq!(ck.covers.get(&(t.clone(), 0)), Some(&10));
        assert_eq!(ck.covers.get(&(t, 1)), Some(&1));
    }
}
