//! Fixtures shared by the masking tests: the key, events, a masker per
//! policy, the reference HMAC, the silver record of a masked event.

use std::sync::Arc;

use hmac::Mac;
use serde_json::{Map, Value};

use crate::model::{DecodeNotes, Event, EventKind, Lineage, Payload, SourceRef};
use crate::operators::lineage::{self, Stamper, STAGE_SILVER, STATUS_OK};

use super::super::token::HmacSha256;
use super::super::{MaskPolicies, Masker, Policy};

pub const KEY: &[u8] = b"test-masking-key";
pub const IDS: [&str; 6] = [
    "adbcfa5b-0116-4baa-b66b-a3f5902e95bf",
    "2f7bf00a-0fc2-4d6a-9b56-92238191433e",
    "9fb2ca78-8389-4758-b76a-9b0300de1fce",
    "c03d300e-fa79-4353-9695-b97a71322785",
    "3b5c1d2e-0000-4a1b-8c9d-123456789012",
    "5d6e7f80-1111-4c2d-9e3f-210987654321",
];

pub fn map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

pub fn event(fields: Value, extras: Value) -> Event {
    Event {
        event_id: IDS[0].into(),
        interaction_id: IDS[1].into(),
        kind: EventKind::AcdEnd,
        event_time_ms: 1_649_237_444_949,
        source_version: "2".into(),
        media_type: Some("VOICE".into()),
        direction: Some("INBOUND".into()),
        participant_id: Some(IDS[2].into()),
        session_id: Some(IDS[3].into()),
        queue_id: Some(IDS[4].into()),
        user_id: Some(IDS[5].into()),
        payload: Payload::from_maps(&map(fields), &map(extras)),
        content_fp: 42,
        id_fp: Some(7),
        lineage: Lineage {
            token: "fe8a8579-b83f-4f07-b371-2b39398f91a8".into(),
            hops: Vec::new(),
            masked_fields: Vec::new(),
        },
        source: SourceRef {
            topic: Arc::from("genesys.bronze"),
            partition: 3,
            offset: 99,
        },
        raw: 0..0,
        record_timestamp_ms: Some(1_649_237_445_013),
        notes: DecodeNotes::default(),
        ticket: 11,
    }
}

pub fn one_field(name: &str, value: Value) -> Value {
    let mut m = Map::new();
    m.insert(name.to_owned(), value);
    Value::Object(m)
}

pub fn masker(policy: Policy) -> Masker {
    Masker::new(KEY, MaskPolicies::all(policy))
}

pub fn reference_token(key: &[u8], msg: &str) -> String {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap();
    mac.update(msg.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

pub fn scrub(text: &str) -> String {
    let m = masker(Policy::Keep);
    m.scrub_text(text).unwrap_or_else(|| text.to_owned())
}

pub fn phone_tag(m: &Masker, normalized: &str) -> String {
    format!("<phone:{}>", m.token(normalized))
}

/// Appends the Luhn check digit (test-side implementation).
pub fn with_check_digit(body: &str) -> String {
    let mut sum = 0u32;
    for (i, c) in body.chars().rev().enumerate() {
        let mut d = c.to_digit(10).unwrap();
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// The silver record of `ev` with its lineage hop stamped at a fixed time:
/// what leaves the processor after masking.
pub fn silver_bytes(ev: &Event) -> Vec<u8> {
    let stamper = Stamper::new("t");
    let hop = stamper.stamp(STAGE_SILVER, STATUS_OK, &ev.source, 1_649_237_446_000);
    lineage::encode(ev, &hop, None)
}
