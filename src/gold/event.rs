//! What gold reads from a silver record (`schemas/silver/cx.silver.event.v1.json`):
//! the queue-relevant fields of the events that make queue legs. Every
//! other event kind is read only for its id and time (it contributes to no
//! figure).

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Why a silver record cannot be read. The messages name the field, never
/// its value (a record is masked, but gold does not rely on that).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GoldEventError {
    #[error("not a silver record: {0}")]
    NotSilver(String),
    #[error("silver record has schema_version {0}; gold reads version 1")]
    SchemaVersion(u64),
    #[error("silver record field `event_time` is not an ISO-8601 UTC time")]
    EventTime,
}

/// The event kinds that make queue legs; every other kind is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LegEventKind {
    AcdStart,
    AcdEnd,
    UserEnd,
    Acw,
    Other,
}

impl LegEventKind {
    fn of(event_type: &str) -> Self {
        match event_type {
            "acd.start" => LegEventKind::AcdStart,
            "acd.end" => LegEventKind::AcdEnd,
            "user.end" => LegEventKind::UserEnd,
            "acw" => LegEventKind::Acw,
            _ => LegEventKind::Other,
        }
    }

    /// Order of kinds at one event time: a leg starts before it ends, the
    /// agent ends before wrap-up.
    pub fn rank(self) -> u8 {
        match self {
            LegEventKind::AcdStart => 0,
            LegEventKind::AcdEnd => 1,
            LegEventKind::UserEnd => 2,
            LegEventKind::Acw => 3,
            LegEventKind::Other => 4,
        }
    }
}

/// One silver event, as gold needs it.
/// Serialized as it is for the stage's state (not an output).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoldEvent {
    pub event_id: String,
    pub interaction_id: String,
    pub kind: LegEventKind,
    pub event_time_ms: i64,
    pub queue_id: Option<String>,
    pub user_id: Option<String>,
    /// `acd.end`: `ANSWERED`, `ABANDON`, `FLOW_OUT`, … as received.
    pub acd_outcome: Option<String>,
    /// `acd.end`: the wait in queue.
    pub connected_duration_ms: Option<i64>,
    /// `acd.end`: who answered.
    pub answered_user_id: Option<String>,
    /// `user.end`.
    pub disconnect_type: Option<String>,
    pub interacting_duration_ms: Option<i64>,
    pub held_duration_ms: Option<i64>,
    /// `acw`.
    pub wrapup_duration_ms: Option<i64>,
    pub wrapup_code: Option<String>,
}

#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    event_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    interaction_id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    event_type: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    event_time: std::borrow::Cow<'a, str>,
    schema_version: u64,
    #[serde(default)]
    queue_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    acd_outcome: Option<String>,
    #[serde(default, deserialize_with = "lenient_ms")]
    connected_duration_ms: Option<i64>,
    #[serde(default)]
    answered_user_id: Option<String>,
    #[serde(default)]
    disconnect_type: Option<String>,
    #[serde(default, deserialize_with = "lenient_ms")]
    interacting_duration_ms: Option<i64>,
    #[serde(default, deserialize_with = "lenient_ms")]
    held_duration_ms: Option<i64>,
    #[serde(default, deserialize_with = "lenient_ms")]
    wrapup_duration_ms: Option<i64>,
    #[serde(default)]
    wrapup_code: Option<String>,
}

/// Silver keeps kind fields as received, so a duration can arrive with a
/// drifted type: an integer is a duration, anything else is absent (and the
/// leg that needs it is then incomplete, not guessed).
fn lenient_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(v.as_i64())
}

impl GoldEvent {
    /// Reads one silver record (its JSON value).
    pub fn from_silver(value: &[u8]) -> Result<GoldEvent, GoldEventError> {
        let w: Wire<'_> = serde_json::from_slice(value).map_err(|e| {
            // serde's message can quote a value; keep only its category
            // and position.
            GoldEventError::NotSilver(format!(
                "{:?} error at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        if w.schema_version != 1 {
            return Err(GoldEventError::SchemaVersion(w.schema_version));
        }
        let event_time_ms = OffsetDateTime::parse(&w.event_time, &Rfc3339)
            .map_err(|_| GoldEventError::EventTime)?
            .unix_timestamp_nanos()
            / 1_000_000;
        let event_time_ms = i64::try_from(event_time_ms).map_err(|_| GoldEventError::EventTime)?;
        Ok(GoldEvent {
            event_id: w.event_id.into_owned(),
            interaction_id: w.interaction_id.into_owned(),
            kind: LegEventKind::of(&w.event_type),
            event_time_ms,
            queue_id: w.queue_id,
            user_id: w.user_id,
            acd_outcome: w.acd_outcome,
            connected_duration_ms: w.connected_duration_ms,
            answered_user_id: w.answered_user_id,
            disconnect_type: w.disconnect_type,
            interacting_duration_ms: w.interacting_duration_ms,
            held_duration_ms: w.held_duration_ms,
            wrapup_duration_ms: w.wrapup_duration_ms,
            wrapup_code: w.wrapup_code,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_acd_end_of_the_silver_golden_file() {
        let golden = include_str!("../../tests/golden/expected/08-acd-end.json");
        let v: serde_json::Value = serde_json::from_str(golden).unwrap();
        let rec = serde_json::to_vec(&v["silver"][0]).unwrap();
        let e = GoldEvent::from_silver(&rec).unwrap();
        assert_eq!(e.kind, LegEventKind::AcdEnd);
        assert_eq!(e.acd_outcome.as_deref(), Some("ANSWERED"));
        assert_eq!(e.connected_duration_ms, Some(11060));
        assert_eq!(
            e.queue_id.as_deref(),
            Some("9d3dfd8a-77ad-48cb-821f-442fb0054852")
        );
        assert_eq!(e.event_time_ms, 1_765_551_027_233);
        assert_eq!(e.interaction_id, "35c68c76-8f94-4991-b4da-435166af98a0");
    }

    #[test]
    fn user_end_and_acw_fields_are_read() {
        for (file, kind) in [
            ("13-user-end", LegEventKind::UserEnd),
            ("14-acw", LegEventKind::Acw),
            ("01-customer-start", LegEventKind::Other),
        ] {
            let path = format!(
                "{}/tests/golden/expected/{file}.json",
                env!("CARGO_MANIFEST_DIR")
            );
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            let rec = serde_json::to_vec(&v["silver"][0]).unwrap();
            let e = GoldEvent::from_silver(&rec).unwrap();
            assert_eq!(e.kind, kind, "{file}");
            match kind {
                LegEventKind::UserEnd => {
                    assert!(e.interacting_duration_ms.is_some());
                    assert!(e.disconnect_type.is_some());
                }
                LegEventKind::Acw => assert!(e.wrapup_duration_ms.is_some()),
                _ => {}
            }
        }
    }

    #[test]
    fn bad_records_are_errors_that_quote_nothing() {
        assert!(matches!(
            GoldEvent::from_silver(b"{\"secret-value\""),
            Err(GoldEventError::NotSilver(m)) if !m.contains("secret")
        ));
        let rec = br#"{"event_id":"e","interaction_id":"i","event_type":"acd.start","event_time":"yesterday","schema_version":1}"#;
        assert_eq!(GoldEvent::from_silver(rec), Err(GoldEventError::EventTime));
        let rec = br#"{"event_id":"e","interaction_id":"i","event_type":"acd.start","event_time":"2025-01-01T00:00:00.000Z","schema_version":2}"#;
        assert_eq!(
            GoldEvent::from_silver(rec),
            Err(GoldEventError::SchemaVersion(2))
        );
        // A drifted duration type is absent, not an error.
        let rec = br#"{"event_id":"e","interaction_id":"i","event_type":"acd.end","event_time":"2025-01-01T00:00:00.000Z","schema_version":1,"connected_duration_ms":"12"}"#;
        assert_eq!(
            GoldEvent::from_silver(rec).unwrap().connected_duration_ms,
            None
        );
    }
}
