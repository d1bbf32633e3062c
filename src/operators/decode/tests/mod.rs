//! Decode's unit tests: the fixtures and helpers here, the tests by theme
//! in `shapes.rs` (reject codes, every kind, drift, malformed records),
//! `rules.rs` (field rules, ids and fingerprints, projection, lineage,
//! splitting) and `readers.rs` (the fast scanner and serde_json agree;
//! property tests).

use super::*;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use xxhash_rust::xxh3::xxh3_128;

const CONV: &str = "35c68c76-8f94-4991-b4da-435166af98a0";

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/golden/input/",
            $name
        ))
        .as_slice()
    };
}

fn source() -> SourceRef {
    SourceRef {
        topic: Arc::from("genesys.bronze.events"),
        partition: 3,
        offset: 42,
    }
}

fn input(value: &[u8]) -> DecodeInput<'_> {
    DecodeInput {
        value,
        source: source(),
        header_lineage_token: None,
        record_timestamp_ms: Some(1_765_551_001_000),
        ticket: 7,
    }
}

fn decode(value: &[u8]) -> Vec<Decoded> {
    let mut out = Vec::new();
    decode_record(&input(value), &mut out);
    out
}

fn events(value: &[u8]) -> Vec<Event> {
    decode(value)
        .into_iter()
        .map(|d| match d {
            Decoded::Event(e) => *e,
            Decoded::Rejected(r) => panic!("rejected: {r}"),
        })
        .collect()
}

fn event(value: &[u8]) -> Event {
    let mut v = events(value);
    assert_eq!(v.len(), 1);
    v.remove(0)
}

fn rejection(value: &[u8]) -> Rejection {
    let out = decode(value);
    assert_eq!(out.len(), 1, "{out:?}");
    match out.into_iter().next() {
        Some(Decoded::Rejected(r)) => r,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn class_of(v: &Value) -> RejectClass {
    rejection(&serde_json::to_vec(v).unwrap_or_default()).class
}

fn ev_of(v: &Value) -> Event {
    event(&serde_json::to_vec(v).unwrap_or_default())
}

/// A minimal valid bare detail object.
fn bare(kind: &str, body: Value) -> Value {
    json!({
        "topicName": format!("{DETAIL_TOPIC_PREFIX}{CONV}.{kind}"),
        "version": "2",
        "eventBody": body,
        "metadata": {"CorrelationId": "corr-1"},
    })
}

fn body() -> Value {
    json!({"eventTime": 1_765_551_000_123_i64, "conversationId": CONV, "participantId": "p-1",
           "sessionId": "s-1", "mediaType": "VOICE", "direction": "INBOUND"})
}

fn envelope(kind: &str, body: Value) -> Value {
    json!({
        "version": "0", "id": "evb-id-1",
        "detail-type": format!("{DETAIL_TOPIC_PREFIX}{{id}}.{kind}"),
        "source": "aws.partner/genesys.com/cloud/x/y", "account": "123456789012",
        "time": "2025-12-12T14:50:00Z", "region": "eu-west-1", "resources": [],
        "detail": bare(kind, body),
    })
}

/// `v` with the value at `path` replaced (`Some`) or removed (`None`);
/// unchanged when the path does not lead to an object.
fn with(mut v: Value, path: &[&str], new: Option<Value>) -> Value {
    let Some((last, parents)) = path.split_last() else {
        return v;
    };
    let mut cur = Some(&mut v);
    for p in parents {
        cur = cur.and_then(|c| c.get_mut(*p));
    }
    if let Some(Value::Object(m)) = cur {
        match new {
            Some(n) => {
                m.insert((*last).to_string(), n);
            }
            None => {
                m.remove(*last);
            }
        }
    }
    v
}

fn ranges(out: &[Decoded]) -> Vec<Range<usize>> {
    out.iter()
        .map(|d| match d {
            Decoded::Event(e) => e.raw.clone(),
            Decoded::Rejected(r) => r.bytes.clone(),
        })
        .collect()
}

/// Ranges are in bounds, in order and disjoint (their union never
/// exceeds the input).
fn assert_ranges_ok(out: &[Decoded], len: usize) {
    let mut prev_end = 0;
    for r in ranges(out) {
        assert!(r.start <= r.end && r.end <= len, "{r:?} of {len}");
        assert!(r.start >= prev_end, "overlap at {r:?}");
        prev_end = r.end;
    }
}

fn string_leaves(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| string_leaves(x, out)),
        Value::Object(m) => m.values().for_each(|x| string_leaves(x, out)),
        _ => {}
    }
}

/// No rejection message quotes a string value of the input.
fn assert_no_values_in_messages(value: &[u8], out: &[Decoded]) {
    let mut leaves = Vec::new();
    let stream = serde_json::Deserializer::from_slice(value).into_iter::<Value>();
    for v in stream.map_while(Result::ok) {
        string_leaves(&v, &mut leaves);
    }
    for r in out.iter().filter_map(Decoded::as_rejection) {
        for leaf in leaves.iter().filter(|l| l.len() >= 6) {
            assert!(
                !r.message.contains(leaf.as_str()),
                "{} quotes a value",
                r.message
            );
        }
    }
}

mod readers;
mod rules;
mod shapes;
