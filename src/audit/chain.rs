//! One audit partition's writer state, without Kafka: each interaction's
//! chain head, the partition's Merkle frontier and next leaf index, and
//! when the next checkpoint is due.
//!
//! - An event that changes its interaction's state ([`super::states`])
//!   becomes the interaction's next record: `seq` + 1, `prev_hash` = the
//!   head's hash, `leaf_index` = the partition's next leaf; the record's
//!   leaf goes into the frontier.
//! - A checkpoint is due every `every_records` leaves or `every_ms` of
//!   processing time with new leaves, whichever comes first.
//! - After a restart the records written after the last checkpoint are
//!   handed back ([`Chains::restore_written`]): heads, frontier and leaf
//!   index continue after them, and their events, read again, write
//!   nothing (no fork, no repeated seq, no gap).
//! - An ended interaction's head is kept `ended_retention_ms` of event time
//!   (a late event of it is then counted, not chained), then forgotten.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::merkle::Frontier;
use super::note::Checkpoint;
use super::record::{AuditRecord, GENESIS, SCHEMA_VERSION, STATE_CHANGED};
use super::states::{next, State};
use crate::model::format_iso_ms;
use crate::process::event::ProcessEvent;

/// An interaction's chain head (the `head` table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub state: String,
    pub hash: String,
    /// Event time it ended at.
    pub ended_ms: Option<i64>,
}

/// The partition's tree (the `tree` table, one row).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub frontier: Frontier,
    /// Size of the last checkpoint written.
    pub checkpointed: u64,
}

/// Settings of the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainRules {
    pub every_records: u64,
    pub every_ms: u64,
    pub ended_retention_ms: i64,
    /// `<origin prefix>/<audit topic>/<partition>` names the log.
    pub origin: String,
}

/// What an event made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Recorded,
    /// The event leaves the state as it is (or kind without a change).
    NoChange,
    /// The interaction already ended.
    AfterEnd,
    /// Written before a restart.
    Replayed,
}

/// The writer state of one audit partition.
#[derive(Debug)]
pub struct Chains {
    rules: ChainRules,
    partition: i32,
    heads: HashMap<String, Head>,
    ended: BTreeSet<(i64, String)>,
    tree: Tree,
    /// (interaction, source event) written after the last checkpoint.
    written: HashSet<(String, String)>,
    changed: BTreeSet<String>,
    tree_changed: bool,
}

impl Chains {
    pub fn new(rules: ChainRules, partition: i32) -> Self {
        Chains {
            rules,
            partition,
            heads: HashMap::new(),
            ended: BTreeSet::new(),
            tree: Tree::default(),
            written: HashSet::new(),
            changed: BTreeSet::new(),
            tree_changed: false,
        }
    }

    pub fn head(&self, id: &str) -> Option<&Head> {
        self.heads.get(id)
    }

    pub fn leaves(&self) -> u64 {
        self.tree.frontier.size()
    }

    pub fn interactions(&self) -> usize {
        self.heads.len()
    }

    /// Restores a head from the checkpointed table.
    pub fn restore_head(&mut self, id: String, head: Head) {
        if let Some(t) = head.ended_ms {
            self.ended.insert((t, id.clone()));
        }
        self.heads.insert(id, head);
    }

    /// Restores the tree from the checkpointed table.
    pub fn restore_tree(&mut self, tree: Tree) {
        self.tree = tree;
    }

    /// A record written after the last checkpoint, handed back in the
    /// order written: the chain and the tree continue after it.
    pub fn restore_written(&mut self, r: &AuditRecord) {
        if r.leaf_index != self.tree.frontier.size() {
            // Already in the checkpointed tree (or not this partition's
            // next leaf): nothing to redo.
            if r.leaf_index < self.tree.frontier.size() {
                self.written
                    .insert((r.interaction_id.clone(), r.source_event_id.clone()));
            }
            return;
        }
        if let Some(leaf) = r.leaf() {
            self.tree.frontier.push(leaf);
            self.tree_changed = true;
        }
        self.set_head(r);
        self.written
            .insert((r.interaction_id.clone(), r.source_event_id.clone()));
    }

    fn set_head(&mut self, r: &AuditRecord) {
        let ended = (r.to_state == State::Ended.as_str())
            .then(|| crate::model::parse_iso_ms(&r.event_time))
            .flatten();
        if let Some(t) = ended {
            self.ended.insert((t, r.interaction_id.clone()));
        }
        self.heads.insert(
            r.interaction_id.clone(),
            Head {
                seq: r.seq,
                state: r.to_state.clone(),
                hash: r.hash.clone(),
                ended_ms: ended,
            },
        );
        self.changed.insert(r.interaction_id.clone());
    }

    /// One event of the partition, in its interaction's event-time order.
    pub fn apply(&mut self, e: &ProcessEvent, out: &mut Vec<AuditRecord>) -> Outcome {
        let key = (e.interaction_id.clone(), e.event_id.clone());
        if self.written.contains(&key) {
            return Outcome::Replayed;
        }
        let head = self.heads.get(&e.interaction_id);
        let from = head
            .and_then(|h| State::parse(&h.state))
            .unwrap_or(State::None);
        if from == State::Ended {
            return Outcome::AfterEnd;
        }
        let Some(change) = next(from, e) else {
            return Outcome::NoChange;
        };
        let (seq, prev) = head.map_or((1, GENESIS.to_string()), |h| (h.seq + 1, h.hash.clone()));
        let r = AuditRecord {
            schema_version: SCHEMA_VERSION,
            kind: STATE_CHANGED.into(),
            interaction_id: e.interaction_id.clone(),
            seq,
            from_state: from.as_str().into(),
            to_state: change.to.as_str().into(),
            event_time: format_iso_ms(e.event_time_ms),
            actor: change.actor,
            source_event_id: e.event_id.clone(),
            lineage_token: e.lineage_token.clone(),
            prev_hash: prev,
            partition: self.partition,
            leaf_index: self.tree.frontier.size(),
            hash: String::new(),
        }
        .seal();
        if let Some(leaf) = r.leaf() {
            self.tree.frontier.push(leaf);
            self.tree_changed = true;
        }
        self.set_head(&r);
        out.push(r);
        Outcome::Recorded
    }

    /// Whether a checkpoint is due: `every_records` new leaves, or new
    /// leaves and `since_ms` of processing time since the last one.
    pub fn checkpoint_due(&self, since_ms: u64) -> bool {
        let new = self.leaves() - self.tree.checkpointed;
        new >= self.rules.every_records || (new > 0 && since_ms >= self.rules.every_ms)
    }

    /// The checkpoint of the tree as it is; marks it written.
    pub fn take_checkpoint(&mut self) -> Checkpoint {
        self.tree.checkpointed = self.leaves();
        self.tree_changed = true;
        Checkpoint {
            origin: self.rules.origin.clone(),
            size: self.leaves(),
            root: self.tree.frontier.root(),
        }
    }

    /// Forgets ended interactions older than the retention at `watermark_ms`.
    pub fn expire(&mut self, watermark_ms: i64) {
        let horizon = watermark_ms.saturating_sub(self.rules.ended_retention_ms);
        while let Some((t, id)) = self.ended.first().cloned() {
            if t >= horizon {
                break;
            }
            self.ended.pop_first();
            self.heads.remove(&id);
            self.changed.insert(id);
        }
    }

    /// Heads changed since the last call (`None`: forgotten), and the tree
    /// if it changed.
    pub fn take_changes(&mut self) -> (Vec<(String, Option<Head>)>, Option<Tree>) {
        let heads = std::mem::take(&mut self.changed)
            .into_iter()
            .map(|id| {
                let h = self.heads.get(&id).cloned();
                (id, h)
            })
            .collect();
        let tree = std::mem::take(&mut self.tree_changed).then(|| self.tree.clone());
        (heads, tree)
    }

    /// A checkpoint of the stage's state was written: what was replayed
    /// before it cannot come again.
    pub fn checkpointed(&mut self) {
        self.written.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(every: u64) -> ChainRules {
        ChainRules {
            every_records: every,
            every_ms: 10_000,
            ended_retention_ms: 3_600_000,
            origin: "cxstream.audit/cx.audit.events/0".into(),
        }
    }

    fn ev(id: &str, n: u32, kind: &str, t: i64) -> ProcessEvent {
        ProcessEvent {
            event_id: format!("{id}-{n}"),
            interaction_id: id.into(),
            event_type: kind.into(),
            event_time_ms: t,
            queue_id: Some("q1".into()),
            user_id: Some("u1".into()),
            ..ProcessEvent::default()
        }
    }

    fn call(id: &str, t: i64) -> Vec<ProcessEvent> {
        vec![
            ev(id, 1, "customer.start", t),
            ev(id, 2, "acd.start", t + 1_000),
            ev(id, 3, "user.start", t + 2_000),
            ev(id, 4, "customer.end", t + 3_000),
        ]
    }

    #[test]
    fn chains_link_and_leaves_are_gap_free_across_interactions() {
        let mut c = Chains::new(rules(100), 0);
        let mut out = Vec::new();
        for (a, b) in call("a", 0).into_iter().zip(call("b", 500)) {
            c.apply(&a, &mut out);
            c.apply(&b, &mut out);
        }
        assert_eq!(out.len(), 8);
        assert_eq!(
            out.iter().map(|r| r.leaf_index).collect::<Vec<_>>(),
            (0..8).collect::<Vec<_>>()
        );
        let a: Vec<&AuditRecord> = out.iter().filter(|r| r.interaction_id == "a").collect();
        assert_eq!(a[0].prev_hash, GENESIS);
        for w in a.windows(2) {
            assert_eq!(w[1].prev_hash, w[0].hash);
            assert_eq!(w[1].seq, w[0].seq + 1);
        }
        assert!(out.iter().all(AuditRecord::hash_ok));
        assert_eq!(a.last().map(|r| r.to_state.as_str()), Some("ended"));
        // after the end: counted, not chained
        assert_eq!(
            c.apply(&ev("a", 9, "acw", 9_000), &mut out),
            Outcome::AfterEnd
        );
        assert_eq!(
            c.apply(&ev("b", 9, "attributes", 9_000), &mut out),
            Outcome::AfterEnd
        );
        assert_eq!(out.len(), 8);
    }

    #[test]
    fn a_restart_continues_after_the_written_records_without_a_fork() {
        let events = call("a", 0);
        // Uninterrupted.
        let mut whole = Chains::new(rules(100), 0);
        let mut want = Vec::new();
        for e in &events {
            whole.apply(e, &mut want);
        }
        // Checkpointed after two events, crashed after three.
        let mut first = Chains::new(rules(100), 0);
        let mut out = Vec::new();
        first.apply(&events[0], &mut out);
        first.apply(&events[1], &mut out);
        let (heads, tree) = first.take_changes();
        first.checkpointed();
        first.apply(&events[2], &mut out);
        let mut again = Chains::new(rules(100), 0);
        for (id, h) in heads {
            again.restore_head(id, h.expect("head"));
        }
        again.restore_tree(tree.expect("tree"));
        again.restore_written(&out[2]);
        // Every event read again (from the last checkpoint's offsets).
        let mut more = Vec::new();
        for e in &events[2..] {
            again.apply(e, &mut more);
        }
        let mut got = out.clone();
        got.extend(more);
        assert_eq!(got, want, "the same records, once each");
        assert_eq!(again.leaves(), whole.leaves());
    }

    #[test]
    fn checkpoints_are_due_by_count_or_time_and_cover_the_tree() {
        let mut c = Chains::new(rules(3), 0);
        let mut out = Vec::new();
        assert!(!c.checkpoint_due(60_000), "nothing new, nothing due");
        c.apply(&ev("a", 1, "customer.start", 0), &mut out);
        assert!(!c.checkpoint_due(0));
        assert!(c.checkpoint_due(10_000), "by time");
        c.apply(&ev("a", 2, "acd.start", 1), &mut out);
        c.apply(&ev("a", 3, "user.start", 2), &mut out);
        assert!(c.checkpoint_due(0), "by count");
        let cp = c.take_checkpoint();
        assert_eq!(cp.size, 3);
        let mut f = Frontier::default();
        for r in &out {
            f.push(r.leaf().expect("leaf"));
        }
        assert_eq!(cp.root, f.root());
        assert!(!c.checkpoint_due(0));
    }

    #[test]
    fn ended_heads_are_forgotten_after_the_retention() {
        let mut c = Chains::new(rules(100), 0);
        let mut out = Vec::new();
        for e in call("a", 0) {
            c.apply(&e, &mut out);
        }
        c.take_changes();
        c.expire(3_000 + 3_600_000 - 1);
        assert!(c.head("a").is_some());
        c.expire(3_000 + 3_600_001);
        assert!(c.head("a").is_none());
        let (heads, _) = c.take_changes();
        assert_eq!(heads, vec![("a".to_string(), None)]);
    }
}
