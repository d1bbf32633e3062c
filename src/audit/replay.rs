//! An interaction's state rebuilt from its audit chain, at any instant,
//! without Kafka (`cxstream audit state`): the chain is verified on the
//! way (hashes, seq, links), then folded up to `as_of`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::record::{AuditRecord, GENESIS};
use crate::model::parse_iso_ms;

/// The state of one interaction at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateAt {
    pub interaction_id: String,
    /// `none` before its first record.
    pub state: String,
    /// Records folded (those at or before the instant).
    pub records: u64,
    pub since: Option<String>,
    pub queue: Option<String>,
    pub agent: Option<String>,
    /// Milliseconds spent in each state up to the instant (or up to the
    /// last record, without one).
    pub durations_ms: BTreeMap<String, i64>,
    /// The chain's last seq and whether it reached `ended`.
    pub chain_length: u64,
    pub ended: bool,
}

/// Why a chain cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("interaction {0} has no audit record")]
    NoRecords(String),
    #[error("the chain of {id} is broken at seq {seq}: {why}")]
    Broken {
        id: String,
        seq: u64,
        why: &'static str,
    },
}

/// Folds `chain` (the interaction's records, in topic order) up to
/// `as_of_ms` (`None`: all of it).
pub fn state_at(
    id: &str,
    chain: &[AuditRecord],
    as_of_ms: Option<i64>,
) -> Result<StateAt, ReplayError> {
    if chain.is_empty() {
        return Err(ReplayError::NoRecords(id.to_string()));
    }
    let broken = |seq, why| ReplayError::Broken {
        id: id.to_string(),
        seq,
        why,
    };
    let mut prev = GENESIS.to_string();
    for (i, r) in chain.iter().enumerate() {
        if r.seq != i as u64 + 1 {
            return Err(broken(r.seq, "seq out of order"));
        }
        if !r.hash_ok() {
            return Err(broken(r.seq, "the record's hash does not match its fields"));
        }
        if r.prev_hash != prev {
            return Err(broken(r.seq, "prev_hash is not the previous record's hash"));
        }
        prev = r.hash.clone();
    }
    let mut out = StateAt {
        interaction_id: id.to_string(),
        state: "none".into(),
        records: 0,
        since: None,
        queue: None,
        agent: None,
        durations_ms: BTreeMap::new(),
        chain_length: chain.len() as u64,
        ended: chain.iter().any(|r| r.to_state == "ended"),
    };
    let mut since_ms: Option<i64> = None;
    for r in chain {
        let Some(t) = parse_iso_ms(&r.event_time) else {
            return Err(broken(r.seq, "event_time is not ISO-8601"));
        };
        if as_of_ms.is_some_and(|a| t > a) {
            break;
        }
        if let Some(s) = since_ms {
            *out.durations_ms.entry(out.state.clone()).or_default() += (t - s).max(0);
        }
        out.state = r.to_state.clone();
        out.since = Some(r.event_time.clone());
        since_ms = Some(t);
        out.records += 1;
        if let Some(q) = r.actor.strip_prefix("queue:") {
            out.queue = Some(q.to_string());
        }
        if let Some(a) = r.actor.strip_prefix("agent:") {
            out.agent = Some(a.to_string());
        }
    }
    if let (Some(a), Some(s)) = (as_of_ms, since_ms) {
        if out.state != "ended" {
            *out.durations_ms.entry(out.state.clone()).or_default() += (a - s).max(0);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::format_iso_ms;

    fn chain() -> Vec<AuditRecord> {
        let steps = [
            ("none", "created", "customer", 0),
            ("created", "queued", "queue:q1", 10_000),
            ("queued", "alerting", "agent:u1", 40_000),
            ("alerting", "connected", "agent:u1", 45_000),
            ("connected", "ended", "customer", 145_000),
        ];
        let mut out: Vec<AuditRecord> = Vec::new();
        for (i, (from, to, actor, t)) in steps.iter().enumerate() {
            let prev = out.last().map_or(GENESIS.to_string(), |r| r.hash.clone());
            let mut r = crate::audit::record::tests::record("c1", i as u64 + 1, &prev, i as u64);
            r.from_state = (*from).into();
            r.to_state = (*to).into();
            r.actor = (*actor).into();
            r.event_time = format_iso_ms(1_767_261_600_000 + t);
            out.push(r.seal());
        }
        out
    }

    #[test]
    fn the_state_at_an_instant_with_queue_agent_and_durations() {
        let c = chain();
        let t0 = 1_767_261_600_000;
        let at = state_at("c1", &c, Some(t0 + 42_000)).expect("replay");
        assert_eq!(at.state, "alerting");
        assert_eq!(at.queue.as_deref(), Some("q1"));
        assert_eq!(at.agent.as_deref(), Some("u1"));
        assert_eq!(at.records, 3);
        assert_eq!(at.durations_ms["created"], 10_000);
        assert_eq!(at.durations_ms["queued"], 30_000);
        assert_eq!(at.durations_ms["alerting"], 2_000);
        assert!(at.ended, "the chain reaches ended later");
        let before = state_at("c1", &c, Some(t0 - 1)).expect("replay");
        assert_eq!((before.state.as_str(), before.records), ("none", 0));
        let end = state_at("c1", &c, None).expect("replay");
        assert_eq!(end.state, "ended");
        assert_eq!(end.durations_ms["connected"], 100_000);
    }

    #[test]
    fn a_broken_chain_is_refused() {
        let mut c = chain();
        c[2].actor = "agent:someone".into();
        assert!(matches!(
            state_at("c1", &c, None),
            Err(ReplayError::Broken { seq: 3, .. })
        ));
        let mut c = chain();
        c.remove(1);
        assert!(matches!(
            state_at("c1", &c, None),
            Err(ReplayError::Broken { seq: 3, .. })
        ));
        assert_eq!(
            state_at("x", &[], None),
            Err(ReplayError::NoRecords("x".into()))
        );
    }
}
