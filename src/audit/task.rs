//! One partition of the audit stage: its chains and tree, its progress, and
//! their checkpointed tables.
//!
//! | table | key | value |
//! |---|---|---|
//! | `head` | interaction id | the chain head (seq, state, hash, when it ended) |
//! | `tree` | `tree` | the partition's Merkle frontier and the size of its last signed checkpoint |
//! | `meta` | `progress` | the greatest event time read |

use std::time::{Duration, Instant};

use super::chain::{ChainRules, Chains, Head, Tree};
use super::record::AuditRecord;
use crate::stage::{PortId, StageTask};
use crate::state::tables::{Change, Tables};

pub const TABLE_HEAD: &str = "head";
pub const TABLE_TREE: &str = "tree";
pub const TABLE_META: &str = "meta";
const TREE_KEY: &str = "tree";
const META_PROGRESS: &str = "progress";

/// An audit task.
#[derive(Debug)]
pub struct AuditTask {
    pub partition: i32,
    pub chains: Chains,
    pub progress: Option<i64>,
    progress_written: Option<i64>,
    /// When the last signed checkpoint was written (processing time).
    pub last_signed: Instant,
    last_input: Option<Instant>,
    at_end: bool,
    held_back: bool,
    pub unreadable_state: u64,
}

impl AuditTask {
    pub fn new(partition: i32, rules: ChainRules) -> Self {
        AuditTask {
            partition,
            chains: Chains::new(rules, partition),
            progress: None,
            progress_written: None,
            last_signed: Instant::now(),
            last_input: None,
            at_end: false,
            held_back: false,
            unreadable_state: 0,
        }
    }

    pub fn note_input(&mut self, event_time_ms: Option<i64>, now: Instant) {
        if let Some(t) = event_time_ms {
            self.progress = Some(self.progress.map_or(t, |p| p.max(t)));
        }
        self.last_input = Some(now);
        self.at_end = false;
    }
}

impl StageTask for AuditTask {
    fn restore_tables(&mut self, tables: Tables) {
        for (id, v) in tables.table(TABLE_HEAD) {
            match serde_json::from_slice::<Head>(v) {
                Ok(h) => self.chains.restore_head(id.to_string(), h),
                Err(_) => self.unreadable_state += 1,
            }
        }
        if let Some(v) = tables.get(TABLE_TREE, TREE_KEY) {
            match serde_json::from_slice::<Tree>(v) {
                Ok(t) if t.frontier.check().is_ok() => self.chains.restore_tree(t),
                _ => self.unreadable_state += 1,
            }
        }
        if let Some(p) = tables
            .get(TABLE_META, META_PROGRESS)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|s| s.parse::<i64>().ok())
        {
            self.progress = Some(p);
            self.progress_written = Some(p);
        }
        let _ = self.chains.take_changes();
    }

    fn restore_output(&mut self, port: PortId, _key: &[u8], value: &[u8]) {
        if port != super::stage::PORT_EVENTS {
            return;
        }
        // The audit partition is the input partition: a record of another
        // partition is another task's.
        if let Ok(r) = AuditRecord::decode(value) {
            if r.partition == self.partition {
                self.chains.restore_written(&r);
            }
        }
    }

    fn take_changes(&mut self, out: &mut Vec<Change>) {
        let (heads, tree) = self.chains.take_changes();
        for (id, head) in heads {
            match head {
                Some(h) => out.push(Change::put(
                    TABLE_HEAD,
                    &id,
                    serde_json::to_vec(&h).unwrap_or_default(),
                )),
                None => out.push(Change::delete(TABLE_HEAD, &id)),
            }
        }
        if let Some(t) = tree {
            out.push(Change::put(
                TABLE_TREE,
                TREE_KEY,
                serde_json::to_vec(&t).unwrap_or_default(),
            ));
        }
        if self.progress != self.progress_written {
            self.progress_written = self.progress;
            if let Some(p) = self.progress {
                out.push(Change::put(
                    TABLE_META,
                    META_PROGRESS,
                    p.to_string().into_bytes(),
                ));
            }
        }
        // The tables now hold everything written so far.
        self.chains.checkpointed();
    }

    fn progress(&self, now: Instant, idle: Duration) -> Option<(i64, bool)> {
        let quiet = self
            .last_input
            .is_none_or(|t| now.saturating_duration_since(t) >= idle);
        self.progress.map(|p| (p, self.at_end && quiet))
    }

    fn runs_ahead(&self, _limit: usize) -> bool {
        false
    }

    fn held_back(&self) -> bool {
        self.held_back
    }

    fn set_held_back(&mut self, held: bool) {
        self.held_back = held;
    }

    fn mark_end_of_partition(&mut self) {
        self.at_end = true;
    }

    fn buffered(&self) -> usize {
        0
    }
}
