//! The decode this crate had until it parsed records into a [`Tape`]
//! (`serde_json::Value` trees, `Map` fields): kept, unchanged but for
//! names, only as the oracle of the equivalence tests in `decode.rs`.
//!
//! [`Tape`]: super::json::Tape

#![allow(dead_code)]

use std::ops::Range;

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use xxhash_rust::xxh3::Xxh3;

use crate::model::{DecodeNotes, EventKind, Fingerprint, Lineage, SourceRef, Ticket};

use super::decode::{
    generated_token, id_fingerprint, DecodeInput, RejectClass, Rejection, DETAIL_TOPIC_PREFIX,
};
use super::upcast::{
    fields_of, known_field, latest_known_version, version_number, EnumSpec, EventTimeError,
    FieldSpec, HEADER_FIELDS, MAX_EVENT_TIME_MS,
};

const ID_PLACEHOLDER: &str = "{id}";
const ENVELOPE_FIELDS: &[&str] = &[
    "account",
    "detail",
    "detail-type",
    "id",
    "region",
    "resources",
    "source",
    "time",
    "version",
];
const DETAIL_FIELDS: &[&str] = &["eventBody", "metadata", "timestamp", "topicName", "version"];

/// The old event: fields and extras as `Map`s.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyEvent {
    pub event_id: String,
    pub interaction_id: String,
    pub kind: EventKind,
    pub event_time_ms: i64,
    pub source_version: String,
    pub media_type: Option<String>,
    pub direction: Option<String>,
    pub participant_id: Option<String>,
    pub session_id: Option<String>,
    pub queue_id: Option<String>,
    pub user_id: Option<String>,
    pub fields: Map<String, Value>,
    pub extras: Map<String, Value>,
    pub content_fp: Fingerprint,
    pub id_fp: Option<Fingerprint>,
    pub lineage: Lineage,
    pub source: SourceRef,
    pub raw: std::ops::Range<usize>,
    pub record_timestamp_ms: Option<i64>,
    pub notes: DecodeNotes,
    pub ticket: Ticket,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LegacyDecoded {
    Event(Box<LegacyEvent>),
    Rejected(Rejection),
}

fn legacy_accepts(es: &EnumSpec, value: &Value, kind: EventKind) -> bool {
    let one = |v: &Value| v.as_str().is_some_and(|s| es.accepts_str(s, kind));
    match value {
        Value::Null => true,
        Value::Array(items) if es.list => items.iter().all(one),
        v if !es.list => one(v),
        _ => false,
    }
}

/// Decodes one record value; appends one [`Decoded`] per unit, in order.
///
/// Each unit carries the byte range of `input.value` it came from
/// (`Event::raw`, `Rejection::bytes`): the whole value when the record is a
/// single top-level object, else the unit's own bytes. Ranges are in order
/// and never overlap.
pub fn legacy_decode_record(input: &DecodeInput<'_>, out: &mut Vec<LegacyDecoded>) {
    let value = input.value;
    let first = out.len();
    let mut units = Units {
        input,
        out,
        count: 0,
        single_object: false,
    };
    let mut stream = serde_json::Deserializer::from_slice(value).into_iter::<Value>();
    loop {
        let start = skip_ws(value, stream.byte_offset());
        match stream.next() {
            None => break,
            Some(Ok(v)) => {
                let end = stream.byte_offset().clamp(start, value.len());
                units.single_object = units.count == 0 && !v.is_array();
                match v {
                    Value::Array(items) => units.array(items, start..end),
                    v => units.value(v, start..end, "top-level value"),
                }
            }
            Some(Err(e)) => {
                let what = if units.count == 0 {
                    "record"
                } else {
                    "rest of the record"
                };
                let msg = format!(
                    "{what} is not valid JSON ({} at line {} column {})",
                    error_category(&e),
                    e.line(),
                    e.column()
                );
                let start = if units.count == 0 {
                    0
                } else {
                    start.min(value.len())
                };
                units.reject(RejectClass::NotJson, msg, start..value.len());
                break;
            }
        }
    }
    if units.count == 0 {
        let msg = "record is empty or whitespace only".to_string();
        units.reject(RejectClass::NotJson, msg, 0..value.len());
    }
    // A record that is one object: its unit covers the whole value, so the
    // original bytes are forwarded or dead-lettered exactly as received.
    if units.count == 1 && units.single_object {
        match out.get_mut(first) {
            Some(LegacyDecoded::Event(ev)) => ev.raw = 0..value.len(),
            Some(LegacyDecoded::Rejected(r)) => r.bytes = 0..value.len(),
            None => {}
        }
    }
}

// ---------------------------------------------------------------------------
// Splitting a record into units
// ---------------------------------------------------------------------------

struct Units<'i, 'o> {
    input: &'i DecodeInput<'i>,
    out: &'o mut Vec<LegacyDecoded>,
    /// Units appended so far (index of the next one in the record).
    count: usize,
    /// The first unit is a top-level value, not an array element.
    single_object: bool,
}

impl Units<'_, '_> {
    fn push(&mut self, d: LegacyDecoded) {
        self.out.push(d);
        self.count += 1;
    }

    fn reject(&mut self, class: RejectClass, message: String, bytes: Range<usize>) {
        let lineage_token = Some(lineage_token(self.input, None, self.count));
        self.push(LegacyDecoded::Rejected(Rejection {
            class,
            message,
            bytes,
            lineage_token,
        }));
    }

    fn object(&mut self, obj: Map<String, Value>, bytes: Range<usize>) {
        let d = match decode_object(obj, self.input, self.count, bytes.clone()) {
            Ok(ev) => LegacyDecoded::Event(ev),
            Err(mut r) => {
                r.bytes = bytes;
                LegacyDecoded::Rejected(r)
            }
        };
        self.push(d);
    }

    fn value(&mut self, v: Value, bytes: Range<usize>, what: &str) {
        match v {
            Value::Object(obj) => self.object(obj, bytes),
            other => {
                let msg = format!("{what} is {}, expected an object", json_type_name(&other));
                self.reject(RejectClass::NotAnObject, msg, bytes);
            }
        }
    }

    fn array(&mut self, items: Vec<Value>, bytes: Range<usize>) {
        if items.is_empty() {
            let msg = "top-level array is empty: no events".to_string();
            self.reject(RejectClass::NotAnObject, msg, bytes);
            return;
        }
        let ranges = element_ranges(self.input.value, &bytes, items.len());
        for (i, item) in items.into_iter().enumerate() {
            // Without element ranges (cannot happen for bytes serde_json just
            // parsed) the first element claims the array and the others
            // empty ranges, so spans still never overlap.
            let r = match ranges.as_ref().and_then(|rs| rs.get(i)) {
                Some(r) => r.clone(),
                None if i == 0 => bytes.clone(),
                None => bytes.end..bytes.end,
            };
            self.value(item, r, "array element");
        }
    }
}

fn error_category(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "I/O error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "data error",
        serde_json::error::Category::Eof => "unexpected end of input",
    }
}

fn skip_ws(value: &[u8], from: usize) -> usize {
    let rest = value.get(from..).unwrap_or_default();
    from + rest
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .count()
}

/// Byte ranges of the elements of the array at `bytes`. Arrays are rare
/// (batched connectors), so they are scanned a second time for raw slices.
fn element_ranges(value: &[u8], bytes: &Range<usize>, n: usize) -> Option<Vec<Range<usize>>> {
    let slice = value.get(bytes.clone())?;
    let raws: Vec<&RawValue> = serde_json::from_slice(slice).ok()?;
    if raws.len() != n {
        return None;
    }
    let base = value.as_ptr() as usize;
    raws.iter()
        .map(|r| {
            let s = r.get();
            let start = (s.as_ptr() as usize).checked_sub(base)?;
            let end = start.checked_add(s.len())?;
            (end <= value.len()).then_some(start..end)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// One event object
// ---------------------------------------------------------------------------

/// A rejection before its byte range is known.
struct Fail {
    class: RejectClass,
    message: String,
}

fn fail<T>(class: RejectClass, message: impl Into<String>) -> Result<T, Fail> {
    Err(Fail {
        class,
        message: message.into(),
    })
}

fn wrong_type<T>(path: &str, v: &Value, expected: &str) -> Result<T, Fail> {
    fail(
        RejectClass::WrongType,
        format!("{path} is {}, expected {expected}", json_type_name(v)),
    )
}

/// The parts of an event object after unwrapping its shape.
struct Parts {
    envelope_id: Option<String>,
    detail_type: Option<String>,
    topic: Option<String>,
    version: String,
    body: Map<String, Value>,
    /// Envelope/detail fields kept as extras (prefixed names).
    outer_extras: Map<String, Value>,
}

fn decode_object(
    obj: Map<String, Value>,
    input: &DecodeInput<'_>,
    index: usize,
    raw: Range<usize>,
) -> Result<Box<LegacyEvent>, Rejection> {
    let mut correlation_id = None;
    let parts = unwrap_shape(obj, &mut correlation_id);
    // Known before any check can fail, so rejections carry it too.
    let mut token = lineage_token(input, correlation_id, index);
    match parts.and_then(|p| build_event(p, input, raw, &mut token)) {
        Ok(ev) => Ok(ev),
        Err(f) => Err(Rejection {
            class: f.class,
            message: f.message,
            bytes: 0..0, // set by the caller
            lineage_token: Some(token),
        }),
    }
}

/// Validates, fingerprints, upcasts and projects one unwrapped object. On
/// success the lineage `token` is moved into the event.
fn build_event(
    parts: Parts,
    input: &DecodeInput<'_>,
    raw: Range<usize>,
    token: &mut String,
) -> Result<Box<LegacyEvent>, Fail> {
    let Parts {
        envelope_id,
        detail_type,
        topic,
        version,
        mut body,
        outer_extras,
    } = parts;

    // Event kind and the topic's conversation id.
    let (kind, topic_id) = match (&topic, &detail_type) {
        (Some(t), _) => parse_topic(t, "topicName")?,
        (None, Some(dt)) => parse_topic(dt, "detail-type")?,
        (None, None) => {
            return fail(
                RejectClass::MissingEventKind,
                "no event kind: detail.topicName and detail-type are both absent",
            )
        }
    };
    let topic_id = topic_id
        .filter(|id| *id != ID_PLACEHOLDER)
        .map(str::to_owned);

    // Conversation id.
    let body_id = match body.get("conversationId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(v) => return wrong_type("eventBody.conversationId", v, "a string"),
    };
    let interaction_id = match (body_id, topic_id) {
        (Some(b), Some(t)) if !b.eq_ignore_ascii_case(&t) => {
            return fail(
                RejectClass::InconsistentConversationId,
                "the conversation id in topicName differs from eventBody.conversationId",
            )
        }
        (Some(b), _) => b.to_owned(),
        (None, Some(t)) => t,
        (None, None) => {
            return fail(
                RejectClass::MissingConversationId,
                "no conversation id: eventBody.conversationId is absent and topicName has none",
            )
        }
    };

    // Fingerprint of the original content (before any upcast step).
    let content_fp = match &topic {
        Some(t) => content_fingerprint(t, &body),
        None => content_fingerprint(
            &format!("{DETAIL_TOPIC_PREFIX}{interaction_id}.{}", kind.as_str()),
            &body,
        ),
    };

    let mut notes = DecodeNotes::default();
    legacy_upcast(&mut body, &version, kind, &mut notes);

    let event_time_ms = match body.remove("eventTime") {
        None => return fail(RejectClass::MissingEventTime, "eventBody.eventTime is absent"),
        Some(v) => legacy_parse_event_time(&v).or_else(|e| match e {
            EventTimeError::Missing => fail(RejectClass::MissingEventTime, "eventBody.eventTime is null"),
            EventTimeError::WrongType(t) => fail(
                RejectClass::WrongType,
                format!("eventBody.eventTime is {t}, expected epoch ms or ISO-8601"),
            ),
            EventTimeError::Unparseable => fail(
                RejectClass::InvalidEventTime,
                "eventBody.eventTime is a string that is neither ISO-8601 with an offset nor epoch ms",
            ),
            EventTimeError::OutOfRange => fail(
                RejectClass::InvalidEventTime,
                "eventBody.eventTime is outside 1970-01-01..9999-12-31",
            ),
        })?,
    };
    body.remove("conversationId");

    // Header ids: Event slots, whatever the kind.
    let mut header: [Option<String>; 6] = Default::default();
    for (slot, spec) in header.iter_mut().zip(HEADER_FIELDS) {
        *slot = match body.remove(spec.name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(v) => return wrong_type(&format!("eventBody.{}", spec.name), &v, "a string"),
        };
        if let (Some(es), Some(s)) = (spec.enum_spec, slot.as_deref()) {
            if !es.accepts_str(s, kind) {
                notes.unknown_enum_values.push(spec.canonical);
            }
        }
        if slot.is_none() && spec.known_for(kind) {
            notes.missing_optional.push(spec.canonical);
        }
    }
    let [participant_id, session_id, media_type, direction, queue_id, user_id] = header;

    // Projection: known fields renamed, the rest kept as extras.
    let mut fields = Map::new();
    let mut extras = outer_extras;
    for (name, v) in body {
        match known_field(&name) {
            Some(spec) if spec.known_for(kind) => {
                legacy_note_enum(spec, &v, kind, &mut notes);
                fields.insert(spec.canonical.to_owned(), v);
            }
            _ => {
                extras.insert(name, v);
            }
        }
    }

    let id_fp = envelope_id.as_deref().map(id_fingerprint);
    let event_id = envelope_id.unwrap_or_else(|| format!("fp-{content_fp:032x}"));

    Ok(Box::new(LegacyEvent {
        event_id,
        interaction_id,
        kind,
        event_time_ms,
        source_version: version,
        media_type,
        direction,
        participant_id,
        session_id,
        queue_id,
        user_id,
        fields,
        extras,
        content_fp,
        id_fp,
        lineage: Lineage {
            token: std::mem::take(token),
            hops: Vec::new(),
            masked_fields: Vec::new(),
        },
        source: input.source.clone(),
        raw,
        record_timestamp_ms: input.record_timestamp_ms,
        notes,
        ticket: input.ticket,
    }))
}

/// Envelope → detail → eventBody. `correlation_id` is set as soon as the
/// detail object is found, before any later check can fail.
fn unwrap_shape(
    mut obj: Map<String, Value>,
    correlation_id: &mut Option<String>,
) -> Result<Parts, Fail> {
    let mut envelope_id = None;
    let mut detail_type = None;
    let mut outer_extras = Map::new();

    let mut detail = if let Some(d) = obj.remove("detail") {
        // EventBridge envelope.
        let Value::Object(d) = d else {
            return wrong_type("detail", &d, "an object");
        };
        envelope_id = match obj.remove("id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(s),
            Some(v) => return wrong_type("id", &v, "a string"),
        };
        detail_type = match obj.remove("detail-type") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(v) => return wrong_type("detail-type", &v, "a string"),
        };
        // `replay-name` (archive replays) and unknown envelope fields are kept.
        for (k, v) in obj {
            if !ENVELOPE_FIELDS.contains(&k.as_str()) {
                outer_extras.insert(format!("envelope.{k}"), v);
            }
        }
        d
    } else if obj.contains_key("eventBody") || obj.contains_key("topicName") {
        obj
    } else {
        return fail(
            RejectClass::UnknownShape,
            "object has no detail, eventBody or topicName: neither an EventBridge envelope nor a Genesys detail object",
        );
    };
    // Lineage only: a malformed metadata block is ignored, never fatal.
    if let Some(Value::Object(mut m)) = detail.remove("metadata") {
        if let Some(Value::String(c)) = m.remove("CorrelationId") {
            *correlation_id = Some(c).filter(|c| !c.is_empty());
        }
    }

    let body = match detail.remove("eventBody") {
        Some(Value::Object(b)) => b,
        None | Some(Value::Null) => {
            return fail(RejectClass::UnknownShape, "detail object has no eventBody");
        }
        Some(v) => return wrong_type("detail.eventBody", &v, "an object"),
    };
    let topic = match detail.remove("topicName") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(v) => return wrong_type("detail.topicName", &v, "a string"),
    };
    let version = match detail.remove("version") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s,
        Some(Value::Number(n)) => n.to_string(),
        Some(v) => return wrong_type("detail.version", &v, "a string or a number"),
    };
    for (k, v) in detail {
        if !DETAIL_FIELDS.contains(&k.as_str()) {
            outer_extras.insert(format!("detail.{k}"), v);
        }
    }
    Ok(Parts {
        envelope_id,
        detail_type,
        topic,
        version,
        body,
        outer_extras,
    })
}

/// `v2.detail.events.conversation.{id}.{kind}` → kind and id (`field` names
/// the source for messages; the value itself is never quoted).
fn parse_topic<'t>(topic: &'t str, field: &str) -> Result<(EventKind, Option<&'t str>), Fail> {
    let Some(rest) = topic.strip_prefix(DETAIL_TOPIC_PREFIX) else {
        return fail(
            RejectClass::UnsupportedEventKind,
            format!("{field} is not a conversation detail-event topic"),
        );
    };
    let Some((id, suffix)) = rest.split_once('.') else {
        return fail(
            RejectClass::MissingEventKind,
            format!("{field} has no event-kind suffix after the conversation id"),
        );
    };
    if suffix.is_empty() {
        return fail(
            RejectClass::MissingEventKind,
            format!("{field} has an empty event-kind suffix"),
        );
    }
    match EventKind::from_suffix(suffix) {
        Some(kind) => Ok((kind, (!id.is_empty()).then_some(id))),
        None => fail(
            RejectClass::UnsupportedEventKind,
            format!("{field} has an event-kind suffix this build does not support"),
        ),
    }
}

// ---------------------------------------------------------------------------
// Fingerprints and lineage
// ---------------------------------------------------------------------------

/// Feeds serialized JSON straight into the hasher (no buffer).
struct HashWriter(Xxh3);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// xxh3-128 of `topic ‖ "\n" ‖ canonical JSON of body`. serde_json's `Map`
/// is a `BTreeMap` (no `preserve_order` feature), so serialization is
/// key-sorted at every level: the canonical form.
pub fn content_fingerprint(topic: &str, body: &Map<String, Value>) -> Fingerprint {
    let mut w = HashWriter(Xxh3::new());
    w.0.update(topic.as_bytes());
    w.0.update(b"\n");
    // Serializing a Map of Values into an infallible writer cannot fail.
    let _ = serde_json::to_writer(&mut w, body);
    w.0.digest128()
}

/// Header token, else `CorrelationId`, else UUIDv5 of
/// `"{topic}/{partition}/{offset}/{index}"` (stable across replays).
fn lineage_token(input: &DecodeInput<'_>, correlation_id: Option<String>, index: usize) -> String {
    if let Some(t) = input.header_lineage_token.filter(|t| !t.is_empty()) {
        return t.to_owned();
    }
    correlation_id.unwrap_or_else(|| generated_token(&input.source, index))
}

fn legacy_parse_event_time(v: &Value) -> Result<i64, EventTimeError> {
    let ms = match v {
        Value::Null => return Err(EventTimeError::Missing),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i
            } else {
                float_ms(n.as_f64().ok_or(EventTimeError::OutOfRange)?)?
            }
        }
        Value::String(s) => parse_time_string(s)?,
        other => return Err(EventTimeError::WrongType(json_type_name(other))),
    };
    if (0..=MAX_EVENT_TIME_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(EventTimeError::OutOfRange)
    }
}

fn float_ms(f: f64) -> Result<i64, EventTimeError> {
    // The range check keeps the cast exact-or-truncating, never saturating.
    if f.is_finite() && (0.0..=MAX_EVENT_TIME_MS as f64).contains(&f) {
        Ok(f.trunc() as i64)
    } else {
        Err(EventTimeError::OutOfRange)
    }
}

fn parse_time_string(s: &str) -> Result<i64, EventTimeError> {
    let b = s.as_bytes();
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits > 0 && digits == b.len() {
        // All digits: epoch ms. More than 18 digits cannot be in range.
        return s.parse::<i64>().map_err(|_| EventTimeError::OutOfRange);
    }
    if digits > 0
        && b.get(digits) == Some(&b'.')
        && b.len() > digits + 1
        && b[digits + 1..].iter().all(u8::is_ascii_digit)
    {
        return float_ms(s.parse::<f64>().map_err(|_| EventTimeError::Unparseable)?);
    }
    use time::format_description::well_known::{Iso8601, Rfc3339};
    let dt = time::OffsetDateTime::parse(s, &Rfc3339)
        .or_else(|_| time::OffsetDateTime::parse(s, &Iso8601::DEFAULT))
        .map_err(|_| EventTimeError::Unparseable)?;
    i64::try_from(dt.unix_timestamp_nanos().div_euclid(1_000_000))
        .map_err(|_| EventTimeError::OutOfRange)
}

/// `"a string"`, `"a number"`… for messages (types only, never values).
pub fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Brings `body` to the canonical shape: runs every applicable step of
/// [`CHAIN`] and records what happened in `notes`.
fn legacy_upcast(
    body: &mut Map<String, Value>,
    detail_version: &str,
    kind: EventKind,
    notes: &mut DecodeNotes,
) {
    let version = version_number(detail_version);
    if version.is_some_and(|v| v > latest_known_version()) {
        notes.newer_version = true;
    }
    if event_time_to_epoch_ms(body, kind) {
        notes.upcast_steps.push("event_time_to_epoch_ms");
    }
    if fill_absent_known_fields(body, kind) {
        notes.upcast_steps.push("fill_absent_known_fields");
    }
}

/// Step: `eventTime` as an ISO-8601 string, a decimal string or a float →
/// integer epoch ms. Values that cannot be parsed are left untouched (decode
/// rejects them with the right class).
fn event_time_to_epoch_ms(body: &mut Map<String, Value>, _kind: EventKind) -> bool {
    let Some(v) = body.get_mut("eventTime") else {
        return false;
    };
    if v.is_i64() {
        return false;
    }
    match legacy_parse_event_time(v) {
        Ok(ms) => {
            *v = Value::from(ms);
            true
        }
        Err(_) => false,
    }
}

/// Step: every known field of the kind that is absent is inserted as null.
fn fill_absent_known_fields(body: &mut Map<String, Value>, kind: EventKind) -> bool {
    let mut changed = false;
    for spec in fields_of(kind) {
        if !body.contains_key(spec.name) {
            body.insert(spec.name.to_string(), Value::Null);
            changed = true;
        }
    }
    changed
}

/// Notes `spec` (canonical name) when `value` is outside its enum set.
/// Decode calls it while projecting each field, so the body is not searched
/// twice. Values are never changed.
fn legacy_note_enum(spec: &FieldSpec, value: &Value, kind: EventKind, notes: &mut DecodeNotes) {
    if let Some(es) = spec.enum_spec {
        if !legacy_accepts(&es, value, kind) {
            notes.unknown_enum_values.push(spec.canonical);
        }
    }
}
