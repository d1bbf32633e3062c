//! The faults planted in the stream: disorder and late events (arrival
//! times), duplicate deliveries (same bytes, or re-published with a new id),
//! and malformed records (never PII, never also a valid event) with the
//! dead-letter class each must get.

use std::fmt::Write as _;

use rand::rngs::SmallRng;
use rand::Rng;

use super::config::{GenConfig, Probs};
use super::pools::Pools;
use super::random::{chance, pick, uni, uuid_str};
use super::records::{iso_seconds, push_json_str, render_obj, Planned, Val, TOPIC_PREFIX};
use super::stream::Variant;
use crate::model::{format_iso_ms, EventKind};

/// Which of one conversation's events are planted late, and every event's
/// arrival (stream) time. Late flags first (never two in a row, so the next
/// event is on time, and only where the stream certainly goes on for
/// `late_delay_ms` after the event: up to `last_start`), then disorder (by
/// less than `disorder_max_ms`) for the others, then the late events'
/// arrivals, at least `late_delay_ms` after their event time and after the
/// next event's arrival.
pub(super) fn arrivals(
    evs: &[Planned],
    cfg: &GenConfig,
    p: &Probs,
    last_start: i64,
    prng: &mut SmallRng,
) -> (Vec<bool>, Vec<i64>) {
    let n = evs.len();
    let late_delay = cfg.late_delay_ms;
    let mut late = vec![false; n];
    let p_late = if n > 1 {
        (p.late * n as f64 / (n - 1) as f64).min(1.0)
    } else {
        0.0
    };
    for i in (0..n.saturating_sub(1)).rev() {
        late[i] = !late[i + 1]
            && evs[i].time.saturating_add(late_delay) <= last_start
            && chance(prng, p_late);
    }
    let mut arrival = vec![0i64; n];
    for i in 0..n {
        let d = if !late[i] && cfg.disorder_max_ms > 1 && chance(prng, p.disorder) {
            prng.gen_range(1..cfg.disorder_max_ms)
        } else {
            0
        };
        arrival[i] = evs[i].time.saturating_add(d);
    }
    for i in (0..n).rev() {
        if late[i] {
            let jitter = uni(prng, 0, late_delay / 2);
            arrival[i] = evs[i]
                .time
                .saturating_add(late_delay)
                .max(arrival[i + 1].saturating_add(1))
                .saturating_add(jitter);
        }
    }
    (late, arrival)
}

/// Whether a delivery is delivered again (with probability `p_dup`); if so,
/// after how many more deliveries (log-uniform in 3..400) and how: with the
/// same envelope id and bytes, or re-published with a new id.
pub(super) fn redelivery(r: &mut SmallRng, p_dup: f64) -> Option<(u64, Variant)> {
    if !chance(r, p_dup) {
        return None;
    }
    let lo = 3f64.ln();
    let hi = 400f64.ln();
    let gap = (lo + (hi - lo) * r.gen::<f64>()).exp() as u64;
    let variant = if r.gen::<bool>() {
        Variant::SameId
    } else {
        Variant::NewId
    };
    Some((gap, variant))
}

/// A re-publish of an event first published at `publish_ms`: a new envelope
/// id and a later `timestamp` (after the stream's time `stream_time`).
pub(super) fn republish(r: &mut SmallRng, publish_ms: i64, stream_time: i64) -> Variant {
    let id = uuid_str(r);
    let publish = publish_ms
        .max(stream_time)
        .saturating_add(uni(r, 100, 5_000));
    Variant::Republished {
        id,
        publish_ms: publish,
    }
}

/// One malformed record at stream time `stream_time`: its key, its bytes and
/// the dead-letter class (`cx.error.class`) the decoder must give it.
pub(super) fn malformed_record(
    r: &mut SmallRng,
    pools: &Pools,
    stream_time: i64,
) -> (Option<Vec<u8>>, Vec<u8>, &'static str) {
    let cid = uuid_str(r);
    let t = stream_time.saturating_sub(uni(r, 0, 2_000));
    let kind = *pick(
        r,
        &[
            EventKind::AcdStart,
            EventKind::FlowStart,
            EventKind::UserStart,
            EventKind::AcdEnd,
        ],
    );
    let mut key = if chance(r, 0.5) {
        Some(cid.clone().into_bytes())
    } else {
        None
    };
    let env = chance(r, 0.5);
    let (value, class): (Vec<u8>, &'static str) = match r.gen_range(0..7u8) {
        0 => {
            key = None;
            let v = match r.gen_range(0..4u8) {
                0 => b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>".to_vec(),
                1 => format!("eventTime={t}&conversationId={cid}&topic=acd.start").into_bytes(),
                2 => {
                    let mut b: Vec<u8> = (0..96).map(|_| r.gen::<u8>()).collect();
                    b[0] = 0xFF;
                    b
                }
                _ => b"Internal error: connector task failed, see logs".to_vec(),
            };
            (v, "not_json")
        }
        1 => {
            let full = fake_record(
                r,
                pools,
                kind.as_str(),
                Some(&cid),
                FakeTime::Json(t.to_string()),
                true,
                None,
            );
            let cut = (full.len() as f64 * (0.15 + 0.75 * r.gen::<f64>())) as usize;
            (
                full.as_bytes()[..cut.clamp(1, full.len() - 1)].to_vec(),
                "not_json",
            )
        }
        2 => (
            fake_record(
                r,
                pools,
                kind.as_str(),
                None,
                FakeTime::Json(t.to_string()),
                env,
                None,
            )
            .into_bytes(),
            "missing_conversation_id",
        ),
        3 => (
            fake_record(
                r,
                pools,
                kind.as_str(),
                Some(&cid),
                FakeTime::Missing,
                false,
                None,
            )
            .into_bytes(),
            "missing_event_time",
        ),
        4 => {
            let bad = *pick(
                r,
                &[
                    "2021-04-2T15:30:51.418Z",
                    "2026-13-45T25:61:00Z",
                    "yesterday",
                    "",
                    "16/04/2026 10:00",
                ],
            );
            let mut j = String::new();
            push_json_str(&mut j, bad);
            let v = fake_record(
                r,
                pools,
                kind.as_str(),
                Some(&cid),
                FakeTime::Json(j),
                env,
                None,
            )
            .into_bytes();
            (v, "invalid_event_time")
        }
        5 => {
            let (time, env, wrong, class) = match r.gen_range(0..4u8) {
                0 => ("true".to_string(), true, None, "wrong_type"),
                1 => (format!("{{\"epochMs\":{t}}}"), false, None, "wrong_type"),
                2 => (
                    t.to_string(),
                    true,
                    Some(WrongType::BodyArray),
                    "wrong_type",
                ),
                _ => (
                    t.to_string(),
                    false,
                    Some(WrongType::IdObject),
                    "wrong_type",
                ),
            };
            let v = fake_record(
                r,
                pools,
                kind.as_str(),
                Some(&cid),
                FakeTime::Json(time),
                env,
                wrong,
            )
            .into_bytes();
            (v, class)
        }
        _ => {
            let suffix = *pick(
                r,
                &[
                    "acd.middle",
                    "screenshare.start",
                    "cobrowse.end",
                    "segment.update",
                    "transcript",
                ],
            );
            let v = fake_record(
                r,
                pools,
                suffix,
                Some(&cid),
                FakeTime::Json(t.to_string()),
                env,
                None,
            )
            .into_bytes();
            (v, "unsupported_event_kind")
        }
    };
    (key, value, class)
}

enum FakeTime {
    Missing,
    /// Raw JSON for the `eventTime` value.
    Json(String),
}

enum WrongType {
    BodyArray,
    IdObject,
}

fn fake_record(
    r: &mut SmallRng,
    pools: &Pools,
    suffix: &str,
    cid: Option<&str>,
    time: FakeTime,
    envelope: bool,
    wrong: Option<WrongType>,
) -> String {
    let mut f: Vec<(&str, Val)> = Vec::new();
    if let FakeTime::Json(j) = &time {
        f.push(("eventTime", Val::R(j.clone())));
    }
    match (cid, &wrong) {
        (Some(c), Some(WrongType::IdObject)) => {
            f.push(("conversationId", Val::R(format!("{{\"id\":\"{c}\"}}"))))
        }
        (Some(c), _) => f.push(("conversationId", Val::S(c.to_string()))),
        (None, _) => {}
    }
    f.push(("participantId", Val::S(uuid_str(r))));
    f.push(("sessionId", Val::S(uuid_str(r))));
    f.push(("mediaType", Val::S("VOICE".into())));
    f.push(("provider", Val::S("Edge".into())));
    f.push(("direction", Val::S("INBOUND".into())));
    f.push(("queueId", Val::S(pick(r, &pools.queues).clone())));
    f.push(("divisionId", Val::S(pick(r, &pools.divisions).clone())));
    let mut body = render_obj(&f);
    if matches!(wrong, Some(WrongType::BodyArray)) {
        body = format!("[{body}]");
    }
    let topic_id = cid.unwrap_or("{id}");
    let publish = match &time {
        FakeTime::Json(j) => j.parse::<i64>().ok(),
        FakeTime::Missing => None,
    };
    let mut detail = format!(
        "{{\"topicName\":\"{TOPIC_PREFIX}{topic_id}.{suffix}\",\"version\":\"2\",\"eventBody\":{body},\"metadata\":{{\"CorrelationId\":\"{}\"}}",
        uuid_str(r)
    );
    // No `timestamp` when eventTime is absent: nothing to fall back on.
    if let Some(p) = publish {
        let _ = write!(detail, ",\"timestamp\":\"{}\"", format_iso_ms(p + 250));
    }
    detail.push('}');
    if envelope && publish.is_some() {
        format!(
            "{{\"version\":\"0\",\"id\":\"{}\",\"detail-type\":\"{TOPIC_PREFIX}{{id}}.{suffix}\",\"source\":\"{}\",\"account\":\"{}\",\"time\":\"{}\",\"region\":\"{}\",\"resources\":[],\"detail\":{detail}}}",
            uuid_str(r),
            pools.source,
            pools.account,
            iso_seconds(publish.unwrap_or_default()),
            pools.region
        )
    } else {
        detail
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::test_support::*;
    use crate::generate::GenRecord;
    use serde_json::Value;
    use std::collections::{BTreeMap, HashMap, HashSet};

    #[test]
    fn rates_are_roughly_as_configured() {
        let (recs, t) = default_run();
        let out = check_consistency(recs, t, true);
        let pct = |a: u64, b: u64| 100.0 * a as f64 / b as f64;
        let dup = pct(t.duplicate_deliveries, t.unique_event_count);
        assert!((4.0..6.0).contains(&dup), "duplicates {dup}");
        let late = pct(t.planted_late_count, t.unique_event_count);
        assert!((0.6..1.4).contains(&late), "late {late}");
        let mal = pct(t.malformed_records, t.records);
        assert!((0.25..0.8).contains(&mal), "malformed {mal}");
        let batch = pct(t.batch_records, t.records);
        assert!((2.2..3.8).contains(&batch), "batch {batch}");
        let singles = t.records - t.batch_records - t.malformed_records;
        let bad = pct(t.bad_key_records, singles);
        assert!((4.0..6.0).contains(&bad), "bad keys {bad}");
        let env = pct(
            out.iter().filter(|(_, p)| p.envelope_id.is_some()).count() as u64,
            out.len() as u64,
        );
        assert!((67.0..73.0).contains(&env), "envelope {env}");
        // Disorder: first deliveries that arrive after their event time but
        // within `disorder_max_ms`.
        let mut seen = HashSet::new();
        let (mut displaced, mut firsts) = (0u64, 0u64);
        for (st, p, batched) in &check_consistency_batched(recs, t, true) {
            if seen.insert(&p.key) && !t.planted_late.contains(&p.key) && !batched {
                firsts += 1;
                let d = st - p.key.event_time_ms;
                assert!(d < 2_500, "disorder beyond disorder_max_ms");
                if d > 0 {
                    displaced += 1;
                }
            }
        }
        let dis = pct(displaced, firsts);
        assert!((8.5..11.5).contains(&dis), "disorder {dis}");
        let mut time_kinds = [0u64; 3];
        let mut v3 = 0;
        for (_, p) in &out {
            match p.body.get("eventTime") {
                Some(Value::Number(_)) => time_kinds[0] += 1,
                Some(Value::String(s)) if s.contains('T') => time_kinds[1] += 1,
                _ => time_kinds[2] += 1,
            }
            if p.detail_version == "3" {
                v3 += 1;
            }
        }
        let n = out.len() as u64;
        assert!(
            (1.4..2.6).contains(&pct(time_kinds[1], n)),
            "iso {time_kinds:?}"
        );
        assert!(
            (1.4..2.6).contains(&pct(time_kinds[2], n)),
            "numeric string {time_kinds:?}"
        );
        assert!((1.4..2.6).contains(&pct(v3, n)), "future {v3}");
        // Media mix, counted on conversation starts.
        let mut media: BTreeMap<String, u64> = BTreeMap::new();
        for (_, p) in &out {
            if p.kind == EventKind::CustomerStart || p.kind == EventKind::Outbound {
                let m = p
                    .body
                    .get("mediaType")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                *media.entry(m.to_string()).or_default() += 1;
            }
        }
        let total: u64 = media.values().sum();
        let voice = pct(media.get("VOICE").copied().unwrap_or(0), total);
        assert!((64.0..76.0).contains(&voice), "voice {voice} {media:?}");
        for m in ["CHAT", "EMAIL", "CALLBACK", "MESSAGE"] {
            assert!(media.get(m).copied().unwrap_or(0) > 40, "{m}: {media:?}");
        }
    }

    #[test]
    fn late_events_are_really_late_and_others_are_not() {
        let (recs, t) = default_run();
        let out = check_consistency(recs, t, true);
        let cfg = GenConfig::default();
        let mut seen = HashSet::new();
        let mut max_by_ix: HashMap<&str, i64> = HashMap::new();
        let mut global = i64::MIN;
        let mut late_seen = 0;
        for (st, p) in &out {
            let et = p.key.event_time_ms;
            let first = seen.insert(&p.key);
            if first && t.planted_late.contains(&p.key) {
                late_seen += 1;
                assert!(
                    *st >= et + cfg.late_delay_ms,
                    "planted late event not delayed enough"
                );
                let ix_max = max_by_ix
                    .get(p.key.interaction_id.as_str())
                    .copied()
                    .unwrap_or(i64::MIN);
                assert!(
                    ix_max > et,
                    "no later event of the same interaction emitted before"
                );
                assert!(global >= et + cfg.late_delay_ms, "stream had not moved on");
            } else if first {
                // Would not be late for a watermark with the allowed lateness.
                assert!(
                    global.max(et) - et < ALLOWED_LATENESS_MS,
                    "unplanted late event {:?}",
                    p.key
                );
            }
            global = global.max(et);
            let e = max_by_ix
                .entry(p.key.interaction_id.as_str())
                .or_insert(i64::MIN);
            *e = (*e).max(et);
        }
        assert_eq!(late_seen, t.planted_late.len());
        assert!(late_seen > 100);
    }

    /// The truth names the class the real decoder gives each malformed
    /// record (the end-to-end tests check each dead letter's class by it).
    #[test]
    fn malformed_records_get_the_class_the_truth_names() {
        use crate::operators::decode::{decode_record, DecodeInput, Decoded};
        let (recs, t) = default_run();
        let mut seen: BTreeMap<&str, u64> = BTreeMap::new();
        for r in recs.iter().filter(|r| parse_record(&r.value).is_err()) {
            let want = t
                .malformed_classes
                .get(&r.value)
                .copied()
                .expect("every malformed record has a class in the truth");
            let mut out = Vec::new();
            decode_record(
                &DecodeInput {
                    value: &r.value,
                    source: crate::model::SourceRef {
                        topic: "t".into(),
                        partition: 0,
                        offset: 0,
                    },
                    header_lineage_token: None,
                    record_timestamp_ms: Some(r.stream_time_ms),
                    ticket: 0,
                },
                &mut out,
            );
            let classes: Vec<&str> = out
                .iter()
                .map(|d| match d {
                    Decoded::Rejected(rej) => rej.class.code(),
                    Decoded::Event(_) => "event",
                })
                .collect();
            assert_eq!(classes, [want], "{}", String::from_utf8_lossy(&r.value));
            *seen.entry(want).or_default() += 1;
        }
        // (Some malformed records repeat, e.g. a proxy's error page.)
        assert_eq!(seen.values().sum::<u64>(), t.malformed_records);
        assert!(seen.len() >= 6, "{seen:?}");
    }

    #[test]
    fn malformed_records_are_pure() {
        let (recs, t) = default_run();
        let bad: Vec<&GenRecord> = recs
            .iter()
            .filter(|r| parse_record(&r.value).is_err())
            .collect();
        assert_eq!(bad.len() as u64, t.malformed_records);
        let mut json = 0;
        for r in &bad {
            let text = String::from_utf8_lossy(&r.value);
            assert!(!looks_like_pii(&text), "PII in malformed record {text}");
            assert!(!t
                .pii_values
                .iter()
                .take(500)
                .any(|v| text.contains(v.as_str())));
            if serde_json::from_slice::<Value>(&r.value).is_ok() {
                json += 1;
            }
        }
        assert!(
            json > 0 && json < bad.len(),
            "both non-JSON and invalid JSON events"
        );
    }

    #[test]
    fn zero_perturbation_gives_a_clean_stream() {
        let cfg = GenConfig {
            interactions: 200,
            duplicate_pct: 0.0,
            disorder_pct: 0.0,
            late_pct: 0.0,
            malformed_pct: 0.0,
            batch_pct: 0.0,
            bad_key_pct: 0.0,
            ..GenConfig::default()
        };
        let (recs, t) = run(cfg);
        let out = check_consistency(&recs, &t, true);
        assert_eq!(recs.len() as u64, t.unique_event_count);
        assert_eq!(t.events_sent, t.unique_event_count);
        let mut last = i64::MIN;
        for (st, p) in &out {
            assert_eq!(*st, p.key.event_time_ms);
            assert!(p.key.event_time_ms >= last);
            last = p.key.event_time_ms;
        }
    }
}
