//! Lineage hops and the encoding of silver and late records.
//!
//! Every output record carries the lineage token it was given at ingestion
//! and the hops of each stage it went through (processor, version, stage,
//! topology, `processed_at`, status, source topic/partition/offset). The
//! lineage block has its own version ([`LINEAGE_VERSION`]).
//!
//! [`encode`] writes the record's JSON straight into one buffer: the
//! payload's fields and extras are already canonical JSON text (see
//! [`crate::model::Payload`]), so they are copied, not serialised. The bytes
//! are exactly what serde_json wrote for the former `SilverRecord` struct
//! (same member order, escapes and number formats; a test keeps that
//! struct as the reference).

use serde::Serialize;

use crate::json::{write_json_str, write_u64};
use crate::model::{
    format_iso_ms, write_iso_ms, Event, Hop, SourceRef, LINEAGE_VERSION, PROCESSOR,
    PROCESSOR_VERSION, SILVER_SCHEMA_VERSION,
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

/// A hop about to be written: what [`Stamper::hop`] makes, without owning
/// its strings (the silver hop of every record is written from this).
#[derive(Debug, Clone, Copy)]
pub struct HopStamp<'a> {
    pub stage: &'a str,
    pub status: &'a str,
    pub topology: &'a str,
    pub source: &'a SourceRef,
    /// `processed_at`, epoch ms.
    pub now_ms: i64,
}

impl Stamper {
    pub fn new(topology: &str) -> Self {
        Self {
            topology: topology.to_string(),
        }
    }

    /// The hop of `stage` for an event read at `source`, as a value (hops
    /// carried in a header, e.g. by repartitioned records).
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

    /// The same hop, borrowed, for [`encode`].
    pub fn stamp<'a>(
        &'a self,
        stage: &'a str,
        status: &'a str,
        source: &'a SourceRef,
        now_ms: i64,
    ) -> HopStamp<'a> {
        HopStamp {
            stage,
            status,
            topology: &self.topology,
            source,
            now_ms,
        }
    }
}

/// Encodes the silver (or, with `late`, the late) record of `ev` as JSON,
/// its lineage ending with the hop `hop`. The event must already be masked.
pub fn encode(ev: &Event, hop: &HopStamp<'_>, late: Option<&LateInfo>) -> Vec<u8> {
    let mut out = String::with_capacity(ev.payload.text_len() + 768);
    out.push_str("{\"event_id\":");
    write_json_str(&mut out, &ev.event_id);
    out.push_str(",\"interaction_id\":");
    write_json_str(&mut out, &ev.interaction_id);
    out.push_str(",\"event_type\":");
    write_json_str(&mut out, ev.kind.as_str());
    out.push_str(",\"event_time\":\"");
    write_iso_ms(&mut out, ev.event_time_ms);
    out.push_str("\",\"schema_version\":");
    write_u64(&mut out, u64::from(SILVER_SCHEMA_VERSION));
    out.push_str(",\"source_version\":");
    write_json_str(&mut out, &ev.source_version);
    for (name, value) in [
        ("media_type", ev.media_type.as_deref()),
        ("direction", ev.direction.as_deref()),
        ("participant_id", ev.participant_id.as_deref()),
        ("session_id", ev.session_id.as_deref()),
        ("queue_id", ev.queue_id.as_deref()),
        ("user_id", ev.user_id.as_deref()),
    ] {
        out.push_str(",\"");
        out.push_str(name);
        out.push_str("\":");
        write_opt_str(&mut out, value);
    }
    for (name, escape, json) in ev.payload.fields_for_encoding() {
        out.push(',');
        if escape {
            write_json_str(&mut out, name);
        } else {
            out.push('"');
            out.push_str(name);
            out.push('"');
        }
        out.push(':');
        out.push_str(json);
    }
    out.push_str(",\"extras\":{");
    for (i, (key, json)) in ev.payload.extras().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(key);
        out.push(':');
        out.push_str(json);
    }
    out.push_str("},\"lineage\":{\"token\":");
    write_json_str(&mut out, &ev.lineage.token);
    out.push_str(",\"version\":");
    write_u64(&mut out, u64::from(LINEAGE_VERSION));
    out.push_str(",\"hops\":[");
    for h in &ev.lineage.hops {
        write_hop(
            &mut out,
            &HopFields {
                processor: &h.processor,
                version: &h.version,
                stage: &h.stage,
                topology: &h.topology,
                processed_at: Timestamp::Text(&h.processed_at),
                status: &h.status,
                source_topic: &h.source_topic,
                source_partition: h.source_partition,
                source_offset: h.source_offset,
            },
        );
        out.push(',');
    }
    write_hop(
        &mut out,
        &HopFields {
            processor: PROCESSOR,
            version: PROCESSOR_VERSION,
            stage: hop.stage,
            topology: hop.topology,
            processed_at: Timestamp::Ms(hop.now_ms),
            status: hop.status,
            source_topic: &hop.source.topic,
            source_partition: hop.source.partition,
            source_offset: hop.source.offset,
        },
    );
    out.push_str("],\"masked_fields\":[");
    for (i, f) in ev.lineage.masked_fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_str(&mut out, f);
    }
    out.push_str("]}");
    if let Some(late) = late {
        out.push_str(",\"late\":{\"reason\":");
        write_json_str(&mut out, late.reason);
        out.push_str(",\"watermark\":");
        write_opt_str(&mut out, late.watermark.as_deref());
        out.push_str(",\"last_emitted_event_time\":");
        write_opt_str(&mut out, late.last_emitted_event_time.as_deref());
        out.push('}');
    }
    out.push('}');
    out.into_bytes()
}

/// `processed_at`: already formatted, or epoch ms to format.
enum Timestamp<'a> {
    Text(&'a str),
    Ms(i64),
}

/// The members of one hop object, in their serialised order.
struct HopFields<'a> {
    processor: &'a str,
    version: &'a str,
    stage: &'a str,
    topology: &'a str,
    processed_at: Timestamp<'a>,
    status: &'a str,
    source_topic: &'a str,
    source_partition: i32,
    source_offset: i64,
}

fn write_hop(out: &mut String, h: &HopFields<'_>) {
    out.push_str("{\"processor\":");
    write_json_str(out, h.processor);
    out.push_str(",\"version\":");
    write_json_str(out, h.version);
    out.push_str(",\"stage\":");
    write_json_str(out, h.stage);
    out.push_str(",\"topology\":");
    write_json_str(out, h.topology);
    out.push_str(",\"processed_at\":");
    match h.processed_at {
        Timestamp::Text(t) => write_json_str(out, t),
        Timestamp::Ms(ms) => {
            out.push('"');
            write_iso_ms(out, ms);
            out.push('"');
        }
    }
    out.push_str(",\"status\":");
    write_json_str(out, h.status);
    out.push_str(",\"source_topic\":");
    write_json_str(out, h.source_topic);
    out.push_str(",\"source_partition\":");
    write_i64(out, i64::from(h.source_partition));
    out.push_str(",\"source_offset\":");
    write_i64(out, h.source_offset);
    out.push('}');
}

fn write_opt_str(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => write_json_str(out, s),
        None => out.push_str("null"),
    }
}

fn write_i64(out: &mut String, v: i64) {
    if v < 0 {
        out.push('-');
    }
    write_u64(out, v.unsigned_abs());
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{DecodeNotes, EventKind, Lineage, Payload};
    use serde_json::{Map, Value};
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
            payload: Payload::from_maps(&fields, &Map::new()),
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

    /// The silver record as serde_json wrote it before `encode` wrote JSON
    /// itself: the reference for the bytes.
    #[derive(Serialize)]
    struct LineageOut<'a> {
        token: &'a str,
        version: u32,
        hops: &'a [Hop],
        masked_fields: &'a [std::borrow::Cow<'static, str>],
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

    /// What the old `encode` wrote for `ev` with `hop` appended.
    pub(crate) fn reference_encode(ev: &Event, hop: Hop, late: Option<&LateInfo>) -> Vec<u8> {
        let mut hops = ev.lineage.hops.clone();
        hops.push(hop);
        let fields = ev.payload.fields_map();
        let extras = ev.payload.extras_map();
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
            fields: &fields,
            extras: &extras,
            lineage: LineageOut {
                token: &ev.lineage.token,
                version: LINEAGE_VERSION,
                hops: &hops,
                masked_fields: &ev.lineage.masked_fields,
            },
            late,
        };
        serde_json::to_vec(&rec).unwrap_or_default()
    }

    /// `encode` and the reference agree byte for byte.
    pub(crate) fn assert_encodes_like_reference(ev: &Event, late: Option<&LateInfo>) {
        let stamper = Stamper::new("genesys-silver");
        let status = if late.is_some() {
            STATUS_LATE
        } else {
            STATUS_OK
        };
        let now = 1_765_551_865_999;
        let ours = encode(
            ev,
            &stamper.stamp(STAGE_SILVER, status, &ev.source, now),
            late,
        );
        let hop = stamper.hop(STAGE_SILVER, status, &ev.source, now);
        let theirs = reference_encode(ev, hop, late);
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs)
        );
    }

    #[test]
    fn silver_record_has_the_contract_fields() {
        let ev = sample();
        let stamper = Stamper::new("topo");
        let bytes = encode(
            &ev,
            &stamper.stamp(STAGE_SILVER, STATUS_OK, &ev.source, 0),
            None,
        );
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
        assert_encodes_like_reference(&ev, None);
    }

    #[test]
    fn late_record_carries_its_reason() {
        let ev = sample();
        let stamper = Stamper::new("t");
        let late = LateInfo {
            reason: "older_than_emitted",
            watermark: Some(format_iso_ms(10)),
            last_emitted_event_time: None,
        };
        let hop = stamper.stamp(STAGE_SILVER, STATUS_LATE, &ev.source, 0);
        let v: Value = serde_json::from_slice(&encode(&ev, &hop, Some(&late))).unwrap();
        assert_eq!(v["late"]["reason"], "older_than_emitted");
        assert_eq!(v["lineage"]["hops"][0]["status"], "late");
        assert_encodes_like_reference(&ev, Some(&late));
    }

    #[test]
    fn encoding_matches_the_serde_reference_on_awkward_values() {
        let mut ev = sample();
        let fields: Map<String, Value> = serde_json::from_str(
            r#"{"a_list":[1,-2,3.5,"x\"y",null,{"z":1,"b":[true]}],"ctl":"\u0001\n\t\\","empty":{},"n":null,"uni":"é☃😀"}"#,
        )
        .unwrap_or_default();
        let extras: Map<String, Value> =
            serde_json::from_str(r#"{"envelope.replay-name":"r","q\"k":{"y":2,"x":[]},"z":-0.0}"#)
                .unwrap_or_default();
        ev.payload = Payload::from_maps(&fields, &extras);
        ev.event_id = "id \"quoted\" \u{2028}".into();
        ev.source_version = "".into();
        ev.user_id = Some("u\\1".into());
        ev.lineage.masked_fields = vec!["attributes.a\"b".into(), "ani".into()];
        ev.lineage.hops =
            vec![Stamper::new("other").hop(STAGE_INGEST, STATUS_REPARTITIONED, &ev.source, 5)];
        ev.source.partition = -1;
        ev.source.offset = -1001;
        assert_encodes_like_reference(&ev, None);
        let late = LateInfo {
            reason: "beyond_retention",
            watermark: None,
            last_emitted_event_time: Some(format_iso_ms(1)),
        };
        assert_encodes_like_reference(&ev, Some(&late));
        ev.event_time_ms = i64::MAX;
        assert_encodes_like_reference(&ev, None);
    }
}
