//! Lineage hops and the encoding of silver and late records.
//!
//! Every output record carries the lineage token it was given at ingestion
//! and the hops of each stage it went through (processor, version, stage,
//! topology, `processed_at`, status, source topic/partition/offset). The
//! lineage block has its own version ([`LINEAGE_VERSION`]).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::{
    format_iso_ms, Event, Hop, SourceRef, LINEAGE_VERSION, PROCESSOR, PROCESSOR_VERSION,
    SILVER_SCHEMA_VERSION,
};

/// Hop statuses.
pub const STATUS_OK: &str = "ok";
pub const STATUS_LATE: &str = "late";
pub const STATUS_REPARTITIONED: &str = "repartitioned";
pub const STATUS_DEAD_LETTER: &str = "dead_letter";

/// Stages.
pub const STAGE_INGEST: &str = "ingest";
pub const STAGE_SILVER: &str = "silver";

/// Why an event went to the late topic, written in the late record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LateInfo {
    pub reason: &'static str,
    /// The partition watermark when the event arrived (ISO-8601 ms).
    pub watermark: Option<String>,
    /// The greatest event time already emitted for the interaction.
    pub last_emitted_event_time: Option<String>,
}

/// Makes hops for one topology.
#[derive(Debug, Clone)]
pub struct Stamper {
    topology: String,
}

impl Stamper {
    pub fn new(topology: &str) -> Self {
        Self {
            topology: topology.to_string(),
        }
    }

    pub fn hop(&self, stage: &str, status: &str, source: &SourceRef, now_ms: i64) -> Hop {
        Hop {
            processor: PROCESSOR.to_string(),
            version: PROCESSOR_VERSION.to_string(),
            stage: stage.to_string(),
            topology: self.topology.clone(),
            processed_at: format_iso_ms(now_ms),
            status: status.to_string(),
            source_topic: source.topic.to_string(),
            source_partition: source.partition,
            source_offset: source.offset,
        }
    }
}

#[derive(Serialize)]
struct LineageOut<'a> {
    token: &'a str,
    version: u32,
    hops: &'a [Hop],
    masked_fields: &'a [String],
}

#[derive(Serialize)]
struct SilverRecord<'a> {
    event_id: &'a str,
    interaction_id: &'a str,
    event_type: &'static str,
    event_time: String,
    schema_version: u32,
    source_version: &'a str,
    media_type: Option<&'a str>,
    direction: Option<&'a str>,
    participant_id: Option<&'a str>,
    session_id: Option<&'a str>,
    queue_id: Option<&'a str>,
    user_id: Option<&'a str>,
    #[serde(flatten)]
    fields: &'a Map<String, Value>,
    extras: &'a Map<String, Value>,
    lineage: LineageOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    late: Option<&'a LateInfo>,
}

/// Appends `hop` to the event's lineage and encodes the silver (or, with
/// `late`, the late) record as JSON. The event must already be masked.
pub fn encode(
    ev: &mut Event,
    hop: Hop,
    late: Option<&LateInfo>,
) -> Result<Vec<u8>, serde_json::Error> {
    ev.lineage.hops.push(hop);
    let rec = SilverRecord {
        event_id: &ev.event_id,
        interaction_id: &ev.interaction_id,
        event_type: ev.kind.as_str(),
        event_time: format_iso_ms(ev.event_time_ms),
        schema_version: SILVER_SCHEMA_VERSION,
        source_version: &ev.source_version,
        media_type: ev.media_type.as_deref(),
        direction: ev.direction.as_deref(),
        participant_id: ev.participant_id.as_deref(),
        session_id: ev.session_id.as_deref(),
        queue_id: ev.queue_id.as_deref(),
        user_id: ev.user_id.as_deref(),
        fields: &ev.fields,
        extras: &ev.extras,
        lineage: LineageOut {
            token: &ev.lineage.token,
            version: LINEAGE_VERSION,
            hops: &ev.lineage.hops,
            masked_fields: &ev.lineage.masked_fields,
        },
        late,
    };
    let mut buf = Vec::with_capacity(1024);
    serde_json::to_writer(&mut buf, &rec)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DecodeNotes, EventKind, Lineage};
    use std::sync::Arc;

    pub(crate) fn sample() -> Event {
        let mut fields = Map::new();
        fields.insert("acd_outcome".into(), Value::from("ANSWERED"));
        Event {
            event_id: "e-1".into(),
            interaction_id: "conv-1".into(),
            kind: EventKind::AcdEnd,
            event_time_ms: 1_765_551_865_126,
            source_version: "2".into(),
            media_type: Some("VOICE".into()),
            direction: Some("INBOUND".into()),
            participant_id: Some("p-1".into()),
            session_id: None,
            queue_id: Some("q-1".into()),
            user_id: None,
            fields,
            extras: Map::new(),
            content_fp: 1,
            id_fp: None,
            lineage: Lineage {
                token: "tok-1".into(),
                hops: Vec::new(),
                masked_fields: vec!["ani".into()],
            },
            source: SourceRef {
                topic: Arc::from("bronze"),
                partition: 3,
                offset: 42,
            },
            raw: 0..0,
            record_timestamp_ms: None,
            notes: DecodeNotes::default(),
            ticket: 0,
        }
    }

    #[test]
    fn silver_record_has_the_contract_fields() {
        let mut ev = sample();
        let hop = Stamper::new("topo").hop(STAGE_SILVER, STATUS_OK, &ev.source.clone(), 0);
        let bytes = encode(&mut ev, hop, None).unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["event_type"], "acd.end");
        assert_eq!(v["event_time"], "2025-12-12T15:04:25.126Z");
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["acd_outcome"], "ANSWERED");
        assert_eq!(v["session_id"], Value::Null);
        assert_eq!(v["lineage"]["token"], "tok-1");
        assert_eq!(v["lineage"]["version"], 1);
        assert_eq!(v["lineage"]["masked_fields"][0], "ani");
        let hop = &v["lineage"]["hops"][0];
        assert_eq!(hop["processor"], "cxstream");
        assert_eq!(hop["stage"], "silver");
        assert_eq!(hop["topology"], "topo");
        assert_eq!(hop["source_partition"], 3);
        assert_eq!(hop["source_offset"], 42);
        assert_eq!(hop["processed_at"], "1970-01-01T00:00:00.000Z");
        assert!(v.get("late").is_none());
    }

    #[test]
    fn late_record_carries_its_reason() {
        let mut ev = sample();
        let hop = Stamper::new("t").hop(STAGE_SILVER, STATUS_LATE, &ev.source.clone(), 0);
        let late = LateInfo {
            reason: "older_than_emitted",
            watermark: Some(format_iso_ms(10)),
            last_emitted_event_time: None,
        };
        let v: Value = serde_json::from_slice(&encode(&mut ev, hop, Some(&late)).unwrap()).unwrap();
        assert_eq!(v["late"]["reason"], "older_than_emitted");
        assert_eq!(v["lineage"]["hops"][0]["status"], "late");
    }
}
