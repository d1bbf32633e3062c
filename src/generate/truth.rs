//! The ground truth of a generated stream: every unique event, the planted
//! late ones, the PII values written, each malformed record's class.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::records::Planned;
use super::stream::Ev;
use crate::model::EventKind;

/// Identity of one unique event.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventKey {
    pub interaction_id: String,
    /// Topic suffix, e.g. `"acd.end"`.
    pub event_type: String,
    pub event_time_ms: i64,
    pub session_id: Option<String>,
}

/// One queue leg as generated: what gold's figures are recomputed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruthLeg {
    pub interaction_id: String,
    pub queue_id: String,
    /// The conversation's `mediaType`.
    pub media_type: String,
    /// `acd.start`.
    pub offered_ms: i64,
    pub end: Option<LegEnd>,
    /// The answering agent's talk and hold, and wrap-up (at the `acw`).
    pub handle: Option<LegHandle>,
    /// The answering agent's `user.end` when it transferred the customer
    /// to another queue.
    pub transfer_ms: Option<i64>,
}

/// What one unique event says, as delivered (after any rendering drift):
/// what a process-mining log's activities are derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFacts {
    pub key: EventKey,
    pub media_type: Option<String>,
    pub direction: Option<String>,
    pub acd_outcome: Option<String>,
    pub disconnect_type: Option<String>,
    pub interacting_duration_ms: Option<i64>,
    pub wrapup_duration_ms: Option<i64>,
}

/// How a leg left its queue (`acd.end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegEnd {
    pub at_ms: i64,
    /// `ANSWERED`, `ABANDON` or `FLOW_OUT`.
    pub outcome: &'static str,
    pub wait_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegHandle {
    /// The `acw` event.
    pub at_ms: i64,
    pub talk_ms: i64,
    pub held_ms: i64,
    pub acw_ms: i64,
}

/// Ground truth of what was emitted; complete once the iterator is done.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Truth {
    /// One per unique event (duplicates excluded); only with `collect_truth`.
    pub unique_events: Vec<EventKey>,
    /// Events delivered at least `late_delay_ms` late; only with
    /// `collect_truth`.
    pub planted_late: HashSet<EventKey>,
    pub malformed_records: u64,
    /// Extra deliveries of already-sent events.
    pub duplicate_deliveries: u64,
    pub records: u64,
    /// Every delivered event, duplicates included.
    pub events_sent: u64,
    /// Every raw PII string present in the emitted records; only with
    /// `collect_truth`.
    pub pii_values: BTreeSet<String>,
    /// Number of unique events (always kept).
    pub unique_event_count: u64,
    /// Number of planted late events (always kept).
    pub planted_late_count: u64,
    /// Conversations generated so far.
    pub interactions: u64,
    /// Records carrying several events.
    pub batch_records: u64,
    /// Single-event records with a missing or wrong key.
    pub bad_key_records: u64,
    /// The dead-letter class (`cx.error.class`) each malformed record must
    /// get, by its exact bytes; only with `collect_truth`.
    pub malformed_classes: HashMap<Vec<u8>, &'static str>,
    /// The `mediaType` of each unique event that carries one (attribute
    /// updates carry none); only with `collect_truth`.
    pub event_media: HashMap<EventKey, String>,
    /// Every queue leg; only with `collect_truth`.
    pub legs: Vec<TruthLeg>,
    /// What each unique event says, in generation order; only with
    /// `collect_truth`.
    pub facts: Vec<EventFacts>,
}

impl EventKey {
    pub(super) fn of(cid: &str, kind: EventKind, time: i64, session_id: Option<String>) -> Self {
        EventKey {
            interaction_id: cid.to_string(),
            event_type: kind.as_str().to_string(),
            event_time_ms: time,
            session_id,
        }
    }
}

impl Truth {
    /// Records the PII values among `candidates` that occur in `body` (with
    /// the value each implies: a card's digits-only form).
    pub(super) fn record_pii(&mut self, body: &str, candidates: &[(String, Option<String>)]) {
        for (c, implied) in candidates {
            if body.contains(c.as_str()) {
                for v in std::iter::once(c).chain(implied) {
                    if !self.pii_values.contains(v) {
                        self.pii_values.insert(v.clone());
                    }
                }
            }
        }
    }

    /// Records one unique event of conversation `cid`, planted `late` or not
    /// (the sets only when `collect`).
    pub(super) fn record_event(
        &mut self,
        collect: bool,
        cid: &str,
        p: &Planned,
        session_id: &Option<String>,
        late: bool,
    ) {
        if collect {
            let key = EventKey::of(cid, p.kind, p.time, session_id.clone());
            if late {
                self.planted_late.insert(key.clone());
            }
            if let Some(m) = p.str_field("mediaType") {
                self.event_media.insert(key.clone(), m.clone());
            }
            self.unique_events.push(key);
        }
        self.unique_event_count += 1;
        if late {
            self.planted_late_count += 1;
        }
    }

    /// Notes what unique event `key` says, from its delivered body (JSON).
    pub(super) fn record_facts(&mut self, key: EventKey, body: &str) {
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        let s = |f: &str| v.get(f).and_then(|x| x.as_str()).map(str::to_string);
        let i = |f: &str| v.get(f).and_then(|x| x.as_i64());
        self.facts.push(EventFacts {
            key,
            media_type: s("mediaType"),
            direction: s("direction"),
            acd_outcome: s("acdOutcome"),
            disconnect_type: s("disconnectType"),
            interacting_duration_ms: i("interactingDurationMs"),
            wrapup_duration_ms: i("wrapupDurationMs"),
        });
    }

    /// A planted late event that is delivered on time after all.
    pub(super) fn demote(&mut self, collect: bool, ev: &Ev) {
        self.planted_late_count = self.planted_late_count.saturating_sub(1);
        if collect {
            let key = EventKey::of(&ev.cid, ev.kind, ev.time, ev.session_id.clone());
            self.planted_late.remove(&key);
        }
    }

    /// Records one malformed record and (when `collect`) its class.
    pub(super) fn record_malformed(&mut self, collect: bool, value: &[u8], class: &'static str) {
        self.malformed_records += 1;
        self.records += 1;
        if collect {
            self.malformed_classes.insert(value.to_vec(), class);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::test_support::*;
    use crate::generate::GenConfig;
    use serde_json::Value;

    #[test]
    fn truth_matches_emitted_records() {
        let (recs, truth) = default_run();
        let out = check_consistency(recs, truth, true);
        assert_eq!(truth.interactions, 2_000);
        // Both duplicate flavours occur: same envelope id, and new id.
        let mut ids: HashMap<&EventKey, Vec<&str>> = HashMap::new();
        for (_, p) in &out {
            if let Some(id) = &p.envelope_id {
                ids.entry(&p.key).or_default().push(id);
            }
        }
        let dups: Vec<_> = ids.values().filter(|v| v.len() > 1).collect();
        assert!(dups.iter().any(|v| v[0] == v[1]));
        assert!(dups.iter().any(|v| v[0] != v[1]));
    }

    /// The truth's media type of each event is the one its body carries.
    #[test]
    fn event_media_is_the_bodys_media_type() {
        let (recs, t) = default_run();
        let out = check_consistency(recs, t, true);
        for (_, p) in &out {
            assert_eq!(
                t.event_media.get(&p.key).map(String::as_str),
                p.body.get("mediaType").and_then(Value::as_str),
                "{:?}",
                p.key
            );
        }
        assert!(!t.event_media.is_empty());
    }

    #[test]
    fn truth_collection_is_optional_and_changes_nothing_else() {
        let cfg = GenConfig {
            interactions: 400,
            ..GenConfig::default()
        };
        let (a, ta) = run(cfg.clone());
        let (b, tb) = run(GenConfig {
            collect_truth: false,
            ..cfg
        });
        assert_eq!(a, b);
        check_consistency(&b, &tb, false);
        assert_eq!(ta.unique_event_count, tb.unique_event_count);
        assert_eq!(ta.planted_late_count, tb.planted_late_count);
        assert_eq!(ta.events_sent, tb.events_sent);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]
        #[test]
        fn truth_is_exact_for_any_config(
            seed in 0u64..1_000_000,
            n in 1usize..80,
            dup in 0.0f64..40.0,
            dis in 0.0f64..60.0,
            late in 0.0f64..20.0,
            mal in 0.0f64..20.0,
            batch in 0.0f64..40.0,
            bad in 0.0f64..50.0,
            env in 0.0f64..100.0,
            spacing in 0i64..20_000,
        ) {
            let cfg = GenConfig {
                interactions: n, seed, duplicate_pct: dup, disorder_pct: dis, late_pct: late,
                malformed_pct: mal, batch_pct: batch, bad_key_pct: bad, envelope_pct: env,
                interaction_spacing_ms: spacing, ..GenConfig::default()
            };
            let (recs, t) = run(cfg);
            check_consistency(&recs, &t, true);
        }
    }
}
