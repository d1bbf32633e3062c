//! The activity record (`schemas/gold/cx.gold.process_event.v1.json`):
//! one activity of one case, as process-mining tools read it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::format_iso_ms;

/// `schema_version` of the records this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// One activity record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityRecord {
    pub schema_version: u32,
    pub case_id: String,
    pub activity: String,
    /// Completion time, ISO-8601 UTC with ms.
    pub timestamp: String,
    /// When the activity has a duration (wrap-up, voicemail).
    pub start_timestamp: Option<String>,
    /// `complete`; exports make `start`/`complete` pairs from
    /// `start_timestamp`.
    pub lifecycle: String,
    pub resource: Option<String>,
    pub resource_type: String,
    pub media_type: Option<String>,
    pub direction: Option<String>,
    /// Enum-like fields (codes, outcomes, types); for `Case Closed` the
    /// case's `duration_ms`, `activities` and `closed_by`.
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// 1, 2, … per case, in the order written.
    pub sequence: u64,
    /// Written after a later activity of its case, or after the case
    /// closed: not in event-time order.
    pub late: bool,
    pub lineage: Lineage,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    /// The silver event's lineage token.
    pub token: Option<String>,
    /// The silver event's id (`case_timeout` for a case closed by time).
    pub event_id: String,
}

impl ActivityRecord {
    pub fn timestamp_ms(ms: i64) -> String {
        format_iso_ms(ms)
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a record of this build; `None` for anything else.
    pub fn decode(value: &[u8]) -> Option<ActivityRecord> {
        let r: ActivityRecord = serde_json::from_slice(value).ok()?;
        (r.schema_version == SCHEMA_VERSION).then_some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn record() -> ActivityRecord {
        ActivityRecord {
            schema_version: SCHEMA_VERSION,
            case_id: "c1".into(),
            activity: "Wrap-up".into(),
            timestamp: ActivityRecord::timestamp_ms(1_767_261_660_134),
            start_timestamp: Some(ActivityRecord::timestamp_ms(1_767_261_630_134)),
            lifecycle: "complete".into(),
            resource: Some("agent-1".into()),
            resource_type: "agent".into(),
            media_type: Some("VOICE".into()),
            direction: Some("INBOUND".into()),
            attributes: BTreeMap::from([("wrapup_code".to_string(), Value::from("code-1"))]),
            sequence: 7,
            late: false,
            lineage: Lineage {
                token: Some("tok".into()),
                event_id: "e7".into(),
            },
        }
    }

    #[test]
    fn a_record_round_trips_and_another_version_is_refused() {
        let r = record();
        let bytes = r.encode();
        assert_eq!(ActivityRecord::decode(&bytes), Some(r));
        let v2 = String::from_utf8(bytes)
            .unwrap()
            .replace("\"schema_version\":1", "\"schema_version\":2");
        assert_eq!(ActivityRecord::decode(v2.as_bytes()), None);
        assert_eq!(ActivityRecord::decode(b"[]"), None);
    }

    /// The shipped schema names exactly the fields of a record.
    #[test]
    fn the_shipped_schema_names_every_field() {
        let schema: Value = serde_json::from_str(include_str!(
            "../../schemas/gold/cx.gold.process_event.v1.json"
        ))
        .expect("schema");
        let rec: Value = serde_json::from_slice(&record().encode()).expect("json");
        for (s, r, at) in [
            (&schema, &rec, "record"),
            (&schema["properties"]["lineage"], &rec["lineage"], "lineage"),
        ] {
            let mut want: Vec<&String> =
                s["properties"].as_object().expect("props").keys().collect();
            let mut got: Vec<&String> = r.as_object().expect("object").keys().collect();
            let mut required: Vec<&str> = s["required"]
                .as_array()
                .expect("required")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            want.sort();
            got.sort();
            required.sort_unstable();
            assert_eq!(got, want, "{at}");
            assert_eq!(
                required,
                want.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                "{at}"
            );
        }
    }
}
