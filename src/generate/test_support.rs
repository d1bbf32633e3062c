//! Test support: the stream as a reasonable consumer decodes it, and the
//! exact check of the ground truth against the records, shared by the
//! generator's tests.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use serde_json::Value;

use super::pools::{FIRST_NAMES, LAST_NAMES};
use super::records::TOPIC_PREFIX;
use super::{EventKey, GenConfig, GenRecord, Generator, Truth};
use crate::model::EventKind;

pub(super) const ALLOWED_LATENESS_MS: i64 = 3_000;

/// One event as a reasonable consumer would decode it.
pub(super) struct Parsed {
    pub(super) key: EventKey,
    pub(super) kind: EventKind,
    pub(super) body: Value,
    pub(super) topic: String,
    pub(super) envelope_id: Option<String>,
    pub(super) detail_version: String,
}

fn parse_time(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        Value::String(s) => {
            let dt = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .ok()?;
            i64::try_from(dt.unix_timestamp_nanos() / 1_000_000).ok()
        }
        _ => None,
    }
}

fn parse_event(v: &Value) -> Option<Parsed> {
    let (detail, envelope_id) = match v.get("detail") {
        Some(d) => {
            if v.get("version")?.as_str()? != "0" {
                return None;
            }
            let dt = v.get("detail-type")?.as_str()?;
            if !dt.starts_with("v2.detail.events.conversation.{id}.") {
                return None;
            }
            (d, Some(v.get("id")?.as_str()?.to_string()))
        }
        None => (v, None),
    };
    let topic = detail.get("topicName")?.as_str()?;
    let (cid, suffix) = topic.strip_prefix(TOPIC_PREFIX)?.split_once('.')?;
    let kind = EventKind::from_suffix(suffix)?;
    let body = detail.get("eventBody")?;
    let b = body.as_object()?;
    if b.get("conversationId")?.as_str()? != cid {
        return None;
    }
    let t = parse_time(b.get("eventTime")?)?;
    Some(Parsed {
        key: EventKey {
            interaction_id: cid.to_string(),
            event_type: suffix.to_string(),
            event_time_ms: t,
            session_id: b
                .get("sessionId")
                .and_then(Value::as_str)
                .map(str::to_string),
        },
        kind,
        body: body.clone(),
        topic: topic.to_string(),
        envelope_id,
        detail_version: detail.get("version")?.as_str()?.to_string(),
    })
}

/// `Err` = malformed record.
pub(super) fn parse_record(value: &[u8]) -> Result<Vec<Parsed>, ()> {
    let vals: Vec<Value> = if value.first() == Some(&b'[') {
        serde_json::from_slice(value).map_err(|_| ())?
    } else {
        serde_json::Deserializer::from_slice(value)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .map_err(|_| ())?
    };
    if vals.is_empty() {
        return Err(());
    }
    vals.iter().map(|v| parse_event(v).ok_or(())).collect()
}

pub(super) fn run(cfg: GenConfig) -> (Vec<GenRecord>, Truth) {
    let mut g = Generator::new(cfg);
    let recs: Vec<GenRecord> = g.by_ref().collect();
    (recs, g.into_truth())
}

pub(super) fn default_run() -> &'static (Vec<GenRecord>, Truth) {
    static RUN: OnceLock<(Vec<GenRecord>, Truth)> = OnceLock::new();
    RUN.get_or_init(|| {
        run(GenConfig {
            interactions: 2_000,
            ..GenConfig::default()
        })
    })
}

/// Checks the truth against the records exactly; returns the decoded
/// deliveries in stream order (record stream time, event).
pub(super) fn check_consistency(
    recs: &[GenRecord],
    truth: &Truth,
    collected: bool,
) -> Vec<(i64, Parsed)> {
    check_consistency_batched(recs, truth, collected)
        .into_iter()
        .map(|(st, p, _)| (st, p))
        .collect()
}

/// As [`check_consistency`], with whether each delivery came in a batch.
pub(super) fn check_consistency_batched(
    recs: &[GenRecord],
    truth: &Truth,
    collected: bool,
) -> Vec<(i64, Parsed, bool)> {
    let mut malformed = 0u64;
    let mut bad_keys = 0u64;
    let mut batches = 0u64;
    let mut out = Vec::new();
    let mut last_stream = i64::MIN;
    for r in recs {
        assert!(r.stream_time_ms >= last_stream, "stream time goes back");
        last_stream = r.stream_time_ms;
        match parse_record(&r.value) {
            Err(()) => malformed += 1,
            Ok(evs) => {
                if evs.len() > 1 {
                    batches += 1;
                    assert!(r.key.is_none(), "batch records have no key");
                } else if r.key.as_deref() != Some(evs[0].key.interaction_id.as_bytes()) {
                    bad_keys += 1;
                }
                let batched = evs.len() > 1;
                out.extend(evs.into_iter().map(|e| (r.stream_time_ms, e, batched)));
            }
        }
    }
    assert_eq!(malformed, truth.malformed_records);
    assert_eq!(bad_keys, truth.bad_key_records);
    assert_eq!(batches, truth.batch_records);
    assert_eq!(recs.len() as u64, truth.records);
    assert_eq!(out.len() as u64, truth.events_sent);
    let mut first: HashMap<&EventKey, &Parsed> = HashMap::new();
    for (_, p, _) in &out {
        match first.get(&p.key) {
            None => {
                first.insert(&p.key, p);
            }
            Some(f) => {
                // A duplicate: same content.
                assert_eq!(f.body, p.body, "duplicate with different eventBody");
                assert_eq!(f.topic, p.topic);
                assert_eq!(f.detail_version, p.detail_version);
                assert_eq!(f.envelope_id.is_some(), p.envelope_id.is_some());
            }
        }
    }
    assert_eq!(first.len() as u64, truth.unique_event_count);
    assert_eq!(
        truth.events_sent - truth.unique_event_count,
        truth.duplicate_deliveries
    );
    if collected {
        let truth_set: HashSet<&EventKey> = truth.unique_events.iter().collect();
        assert_eq!(
            truth_set.len(),
            truth.unique_events.len(),
            "EventKeys not unique"
        );
        let seen: HashSet<&EventKey> = first.keys().copied().collect();
        assert!(seen == truth_set, "emitted keys differ from the truth");
        assert_eq!(truth.planted_late.len() as u64, truth.planted_late_count);
        assert!(truth.planted_late.iter().all(|k| truth_set.contains(k)));
    } else {
        assert!(
            truth.unique_events.is_empty()
                && truth.planted_late.is_empty()
                && truth.pii_values.is_empty()
        );
    }
    out
}

pub(super) fn pii_fields() -> [&'static str; 9] {
    [
        "ani",
        "dnis",
        "addressFrom",
        "addressTo",
        "callbackNumbers",
        "callbackUserName",
        "subject",
        "wrapupNotes",
        "attributes",
    ]
}

pub(super) fn string_leaves<'v>(v: &'v Value, out: &mut Vec<&'v str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| string_leaves(x, out)),
        Value::Object(o) => o.values().for_each(|x| string_leaves(x, out)),
        _ => {}
    }
}

pub(super) fn looks_like_pii(s: &str) -> bool {
    s.contains('@')
        || s.contains('+')
        || FIRST_NAMES
            .iter()
            .chain(LAST_NAMES.iter())
            .any(|n| s.contains(n))
        || s.as_bytes()
            .split(|b| !b.is_ascii_digit())
            .any(|run| run.len() >= 14)
}
