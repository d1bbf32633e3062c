//! The activity log derived from the generator's ground truth (each unique
//! event as delivered, `Truth::facts`), written apart from `src/process`
//! from the README's vocabulary table, and the checks of an activity topic.

use std::collections::{BTreeMap, HashMap, HashSet};

use cxstream::generate::{EventFacts, EventKey, Truth};
use serde_json::Value;

use super::Rec;

fn digital(media: Option<&str>) -> bool {
    !matches!(
        media.map(str::to_ascii_uppercase).as_deref(),
        None | Some("VOICE") | Some("CALLBACK")
    )
}

/// The activity of one event (`started`: the case already has its start).
fn activity(f: &EventFacts, started: bool) -> Option<&'static str> {
    let media = f.media_type.as_deref();
    let dt = f.disconnect_type.as_deref().unwrap_or("");
    Some(match f.key.event_type.as_str() {
        "customer.start" | "outbound" if started => return None,
        "customer.start" if media.is_some_and(|m| m.eq_ignore_ascii_case("CALLBACK")) => {
            "Callback Requested"
        }
        "customer.start" if digital(media) => "Conversation Started",
        "customer.start" | "outbound" => "Call Started",
        "flow.start" => "IVR Entered",
        "flow.end" => "IVR Exited",
        "acd.start" => "Queued",
        "acd.end" => match f.acd_outcome.as_deref() {
            Some("ANSWERED") => "Answered",
            Some("ABANDON") => "Abandoned",
            Some("FLOW_OUT") => "Flow-out",
            _ => return None,
        },
        "user.start" => "Alerting",
        "user.end"
            if matches!(dt, "NO_ANSWER_TRANSFER" | "TIMEOUT" | "NOT_ANSWERED")
                && f.interacting_duration_ms.unwrap_or(0) <= 0 =>
        {
            "Not Answered"
        }
        "user.end" if dt.ends_with("TRANSFER") => "Transferred",
        "user.end" => "Agent Disconnected",
        "acw" => "Wrap-up",
        "voicemail.end" => "Voicemail",
        "attributes" => "Attributes Updated",
        "customer.end" if digital(media) => "Conversation Ended",
        "customer.end" => "Call Ended",
        _ => return None,
    })
}

/// Each case's activities in event-time order, `(timestamp ms, name)`,
/// with `Case Closed` after `customer.end`; only events silver passes
/// (media in `media`, or without a media type). A case has one start: the
/// start event read first. That is the earliest, unless silver sent one of
/// them to its late topic (`silver_late`: interaction, event type, event
/// time): that topic is read apart from silver's events, so either may be
/// read first, and such a case has one alternative per start event.
pub fn expected(
    truth: &Truth,
    media: &[String],
    silver_late: &HashSet<(String, String, i64)>,
) -> HashMap<String, Vec<Vec<(i64, String)>>> {
    let mut by_case: BTreeMap<&str, Vec<&EventFacts>> = BTreeMap::new();
    for f in &truth.facts {
        let passes = f
            .media_type
            .as_deref()
            .is_none_or(|m| media.iter().any(|x| x.eq_ignore_ascii_case(m)));
        if passes {
            by_case.entry(&f.key.interaction_id).or_default().push(f);
        }
    }
    let starts =
        |f: &EventFacts| matches!(f.key.event_type.as_str(), "customer.start" | "outbound");
    let derive = |evs: &[&EventFacts], start: Option<&EventKey>| {
        let mut acts = Vec::new();
        for f in evs {
            let started = starts(f) && Some(&f.key) != start;
            if let Some(a) = activity(f, started) {
                acts.push((f.key.event_time_ms, a.to_string()));
            }
            if f.key.event_type == "customer.end" {
                acts.push((f.key.event_time_ms, "Case Closed".to_string()));
            }
        }
        acts
    };
    let mut out = HashMap::new();
    for (case, mut evs) in by_case {
        evs.sort_by_key(|f| f.key.event_time_ms);
        let candidates: Vec<&EventKey> = evs.iter().filter(|f| starts(f)).map(|f| &f.key).collect();
        // A start event that silver sent to its late topic may be read
        // before or after the others (that topic is read apart from its
        // events): then whichever start is read first is the case's start.
        let any_late = candidates.iter().any(|k| {
            silver_late.contains(&(
                k.interaction_id.clone(),
                k.event_type.clone(),
                k.event_time_ms,
            ))
        });
        let alts: Vec<Vec<(i64, String)>> = if any_late {
            candidates.iter().map(|k| derive(&evs, Some(k))).collect()
        } else {
            vec![derive(&evs, candidates.first().copied())]
        };
        out.insert(case.to_string(), alts);
    }
    out
}

/// What a check of an activity topic found.
#[derive(Debug, Default)]
pub struct Report {
    pub records: usize,
    pub cases: usize,
    pub late: usize,
    pub closed: usize,
    pub mismatches: Vec<String>,
}

/// Checks `records` against `expected`: per case, sequences 1..n once
/// each (nothing written twice, nothing lost), records not marked late in
/// event-time order, and the activities by event time equal to the truth.
pub fn check(records: &[Rec], expected: &HashMap<String, Vec<Vec<(i64, String)>>>) -> Report {
    let mut rep = Report {
        records: records.len(),
        ..Report::default()
    };
    let mut by_case: HashMap<String, Vec<Value>> = HashMap::new();
    for r in records {
        let v: Value = serde_json::from_slice(&r.value).expect("a JSON record");
        let key = String::from_utf8(r.key.clone().expect("a key")).expect("utf-8");
        assert_eq!(v["case_id"].as_str(), Some(key.as_str()), "key = case id");
        by_case.entry(key).or_default().push(v);
    }
    rep.cases = by_case.len();
    for (case, mut recs) in by_case {
        recs.sort_by_key(|v| v["sequence"].as_u64());
        let seqs: Vec<u64> = recs.iter().filter_map(|v| v["sequence"].as_u64()).collect();
        let want: Vec<u64> = (1..=recs.len() as u64).collect();
        if seqs != want {
            rep.mismatches.push(format!(
                "{case}: sequences {seqs:?}, expected 1..={}",
                recs.len()
            ));
            continue;
        }
        let ms = |v: &Value| super::iso_to_ms(v["timestamp"].as_str().expect("timestamp"));
        let mut last = i64::MIN;
        for v in &recs {
            if v["late"] == true {
                rep.late += 1;
            } else {
                if ms(v) < last {
                    rep.mismatches.push(format!(
                        "{case}: {} not late yet out of order",
                        v["activity"]
                    ));
                }
                last = last.max(ms(v));
            }
            if v["activity"] == "Case Closed" {
                rep.closed += 1;
            }
        }
        let mut got: Vec<(i64, String, u64)> = recs
            .iter()
            .map(|v| {
                (
                    ms(v),
                    v["activity"].as_str().unwrap_or("").to_string(),
                    v["sequence"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        // By event time, then as written (Case Closed after its Call Ended).
        got.sort_by_key(|(t, _, seq)| (*t, *seq));
        let got: Vec<(i64, String)> = got.into_iter().map(|(t, a, _)| (t, a)).collect();
        match expected.get(&case) {
            Some(alts) if alts.contains(&got) => {}
            Some(alts) => rep.mismatches.push(format!(
                "{case}: activities {got:?}, expected {:?}",
                alts[0]
            )),
            None => rep
                .mismatches
                .push(format!("{case}: not a case of the truth")),
        }
    }
    rep
}

/// Cases of the truth with activities but no record at all.
pub fn missing_cases(
    records: &[Rec],
    expected: &HashMap<String, Vec<Vec<(i64, String)>>>,
) -> Vec<String> {
    let seen: HashSet<Vec<u8>> = records.iter().filter_map(|r| r.key.clone()).collect();
    expected
        .iter()
        .filter(|(c, alts)| alts.iter().any(|a| !a.is_empty()) && !seen.contains(c.as_bytes()))
        .map(|(c, _)| c.clone())
        .collect()
}

/// (interaction, event type, event time) of every record of silver's late
/// topic.
pub fn silver_late(records: &[Rec]) -> HashSet<(String, String, i64)> {
    records
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(&r.value).ok())
        .filter_map(|v| {
            Some((
                v["interaction_id"].as_str()?.to_string(),
                v["event_type"].as_str()?.to_string(),
                super::iso_to_ms(v["event_time"].as_str()?),
            ))
        })
        .collect()
}

/// Reads topology `t`'s activity topic and silver's late topic from
/// `brokers` and checks the log against `truth`: no planted PII, every
/// case equal to the truth and numbered 1..n once each, none missing.
pub fn check_topic(
    brokers: &str,
    t: &cxstream::config::Topology,
    truth: &Truth,
    label: &str,
) -> Report {
    let silver = t.silver().expect("a silver stage");
    let process = t.process().expect("a process stage");
    let media = silver.media_filter.clone().unwrap_or_default();
    let late = silver_late(&super::read_all(brokers, &silver.late_topic));
    let expected = expected(truth, &media, &late);
    let records = super::read_all(brokers, &process.activities_topic);
    super::check_no_pii_in(truth, &records, "activity");
    let rep = check(&records, &expected);
    let missing = missing_cases(&records, &expected);
    eprintln!(
        "{label}: {} activity records over {} cases ({} closed), {} written late; {} cases in the truth, {} missing",
        rep.records,
        rep.cases,
        rep.closed,
        rep.late,
        expected.len(),
        missing.len()
    );
    let shown: Vec<&String> = rep.mismatches.iter().take(5).collect();
    assert!(
        rep.mismatches.is_empty(),
        "{} mismatches, e.g. {shown:#?}",
        rep.mismatches.len()
    );
    assert!(
        missing.is_empty(),
        "cases without records, e.g. {:?}",
        &missing[..missing.len().min(5)]
    );
    rep
}
