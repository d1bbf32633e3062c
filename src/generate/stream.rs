//! Entries of the generator's stream queues: each unique event rendered
//! once, queued by arrival time, and its scheduled re-deliveries.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::model::EventKind;

/// One unique event, rendered once (shared by its deliveries).
pub(super) struct Ev {
    pub(super) cid: Arc<str>,
    pub(super) participant_id: Option<String>,
    pub(super) session_id: Option<String>,
    pub(super) kind: EventKind,
    pub(super) time: i64,
    /// The `eventBody` JSON; identical in every delivery.
    pub(super) body: String,
    pub(super) envelope: bool,
    pub(super) detail_version: &'static str,
    pub(super) envelope_id: String,
    pub(super) correlation_id: String,
    pub(super) publish_ms: i64,
    pub(super) late: bool,
}

/// How an event is delivered.
pub(super) enum Variant {
    Original,
    /// Same envelope id, same bytes.
    SameId,
    /// Scheduled re-publish (new id chosen at delivery).
    NewId,
    Republished {
        id: String,
        publish_ms: i64,
    },
}

/// A first delivery, due at stream time `key` (`seq` breaks ties in
/// generation order).
pub(super) struct Pending {
    pub(super) key: i64,
    pub(super) seq: u64,
    pub(super) ev: Arc<Ev>,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.key, self.seq) == (o.key, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.key, self.seq).cmp(&(o.key, o.seq))
    }
}

/// A re-delivery, due after `due` deliveries in all.
pub(super) struct DupPending {
    pub(super) due: u64,
    pub(super) seq: u64,
    pub(super) ev: Arc<Ev>,
    pub(super) variant: Variant,
}

impl PartialEq for DupPending {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for DupPending {}
impl PartialOrd for DupPending {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for DupPending {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.due, self.seq).cmp(&(o.due, o.seq))
    }
}
