//! What the process-mining log reads from a silver record
//! (`schemas/silver/cx.silver.event.v1.json`): the event's kind, time,
//! media and direction, the participant, queue and agent ids (Genesys ids,
//! not PII), and the kind fields the activities name. Free text and every
//! PII field are never read.

use crate::model::parse_iso_ms;
use serde::{Deserialize, Serialize};

/// Why a silver record cannot be read. Messages name the field, never its
/// value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProcessEventError {
    #[error("not a silver record: {0}")]
    NotSilver(String),
    #[error("silver record has schema_version {0}; the process log reads version 1")]
    SchemaVersion(u64),
    #[error("silver record field `event_time` is not an ISO-8601 UTC time")]
    EventTime,
}

/// One silver event, as the activity log needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProcessEvent {
    pub event_id: String,
    pub interaction_id: String,
    /// The detail-event kind (`acd.end`, …), as silver names it.
    pub event_type: String,
    pub event_time_ms: i64,
    pub media_type: Option<String>,
    pub direction: Option<String>,
    pub participant_id: Option<String>,
    pub queue_id: Option<String>,
    pub user_id: Option<String>,
    pub acd_outcome: Option<String>,
    pub answered_user_id: Option<String>,
    pub disconnect_type: Option<String>,
    pub interacting_duration_ms: Option<i64>,
    pub wrapup_duration_ms: Option<i64>,
    /// `user.end`: how long the agent held the customer.
    #[serde(default)]
    pub held_duration_ms: Option<i64>,
    pub wrapup_code: Option<String>,
    pub flow_type: Option<String>,
    pub flow_id: Option<String>,
    pub exit_reason: Option<String>,
    pub transfer_type: Option<String>,
    /// Header or record lineage token.
    pub lineage_token: Option<String>,
}

#[derive(Deserialize)]
struct Wire {
    event_id: String,
    interaction_id: String,
    event_type: String,
    event_time: String,
    schema_version: u64,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    direction: Option<String>,
    #[serde(default)]
    participant_id: Option<String>,
    #[serde(default)]
    queue_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_str")]
    acd_outcome: Option<String>,
    #[serde(default, deserialize_with = "lenient_str")]
    answered_user_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_str")]
    disconnect_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_ms")]
    interacting_duration_ms: Option<i64>,
    #[serde(default, deserialize_with = "lenient_ms")]
    wrapup_duration_ms: Option<i64>,
    #[serde(default, deserialize_with = "lenient_ms")]
    held_duration_ms: Option<i64>,
    #[serde(default, deserialize_with = "lenient_str")]
    wrapup_code: Option<String>,
    #[serde(default, deserialize_with = "lenient_str")]
    flow_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_str")]
    flow_id: Option<String>,
    #[serde(default, deserialize_with = "lenient_str")]
    exit_reason: Option<String>,
    #[serde(default, deserialize_with = "lenient_str")]
    transfer_type: Option<String>,
    #[serde(default)]
    lineage: Option<WireLineage>,
}

#[derive(Deserialize)]
struct WireLineage {
    #[serde(default)]
    token: Option<String>,
}

/// Silver keeps kind fields as received: a value of another type than the
/// field's is absent here, never coerced.
fn lenient_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(serde_json::Value::deserialize(d)?.as_i64())
}

fn lenient_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(serde_json::Value::deserialize(d)?
        .as_str()
        .map(str::to_string))
}

impl ProcessEvent {
    /// Reads one silver record (its JSON value).
    pub fn from_silver(value: &[u8]) -> Result<ProcessEvent, ProcessEventError> {
        let w: Wire = serde_json::from_slice(value).map_err(|e| {
            ProcessEventError::NotSilver(format!(
                "{:?} error at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        if w.schema_version != 1 {
            return Err(ProcessEventError::SchemaVersion(w.schema_version));
        }
        let event_time_ms = parse_iso_ms(&w.event_time).ok_or(ProcessEventError::EventTime)?;
        Ok(ProcessEvent {
            event_id: w.event_id,
            interaction_id: w.interaction_id,
            event_type: w.event_type,
            event_time_ms,
            media_type: w.media_type,
            direction: w.direction,
            participant_id: w.participant_id,
            queue_id: w.queue_id,
            user_id: w.user_id,
            acd_outcome: w.acd_outcome,
            answered_user_id: w.answered_user_id,
            disconnect_type: w.disconnect_type,
            interacting_duration_ms: w.interacting_duration_ms,
            wrapup_duration_ms: w.wrapup_duration_ms,
            held_duration_ms: w.held_duration_ms,
            wrapup_code: w.wrapup_code,
            flow_type: w.flow_type,
            flow_id: w.flow_id,
            exit_reason: w.exit_reason,
            transfer_type: w.transfer_type,
            lineage_token: w.lineage.and_then(|l| l.token),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn golden(file: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/golden/expected/{file}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("golden file"))
                .expect("json");
        serde_json::to_vec(&v["silver"][0]).expect("json")
    }

    #[test]
    fn reads_the_kind_fields_of_silver_golden_records() {
        let e = ProcessEvent::from_silver(&golden("08-acd-end")).expect("acd.end");
        assert_eq!(e.event_type, "acd.end");
        assert_eq!(e.acd_outcome.as_deref(), Some("ANSWERED"));
        assert!(e.queue_id.is_some() && e.answered_user_id.is_some());
        assert!(e.lineage_token.is_some());
        let e = ProcessEvent::from_silver(&golden("14-acw")).expect("acw");
        assert!(e.wrapup_duration_ms.is_some() && e.wrapup_code.is_some());
    }

    #[test]
    fn bad_records_are_errors_that_quote_nothing() {
        assert!(matches!(
            ProcessEvent::from_silver(b"{\"ani\":\"+4930123\""),
            Err(ProcessEventError::NotSilver(m)) if !m.contains("4930")
        ));
        let v2 = br#"{"event_id":"e","interaction_id":"i","event_type":"acw","event_time":"2026-01-01T00:00:00.000Z","schema_version":2}"#;
        assert_eq!(
            ProcessEvent::from_silver(v2),
            Err(ProcessEventError::SchemaVersion(2))
        );
    }
}
