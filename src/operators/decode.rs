//! Decode: one Kafka record value → canonical [`Event`]s and [`Rejection`]s.
//!
//! A record holds one or more Genesys event objects, in any of the shapes
//! connectors produce (reference §1.4): the EventBridge envelope
//! `{version, id, detail-type, source, …, detail: {topicName, version,
//! eventBody, metadata, timestamp}}`, the bare `detail` object (also the
//! WebSocket notification shape), or several of these per record as JSON
//! Lines, back-to-back objects or a top-level array.
//!
//! [`decode_record`] appends exactly one [`Decoded`] per unit, in input
//! order: each top-level object (or array element) is a unit, and so is an
//! unparseable record or the unparseable rest of one. Each unit:
//!
//! 1. parse into a [`Tape`] (borrowed strings, no per-member allocation;
//!    serde_json's parser, so the same inputs are accepted and rejected);
//! 2. unwrap the shape (envelope → detail → eventBody);
//! 3. event kind from the `topicName` suffix, else from `detail-type`;
//! 4. the body's canonical text, written once: it is the content
//!    fingerprint's input and, later, the text of the silver fields;
//! 5. conversation id from `eventBody.conversationId`, else from
//!    `topicName`, and the two must agree;
//! 6. content fingerprint over the original body;
//! 7. upcast (`upcast.rs`): a chain of small versioned steps on a [`Body`];
//! 8. `eventTime` and the header ids;
//! 9. projection: the kind's known fields under snake_case names into the
//!    payload's fields (absent ones null), everything else into its extras.
//!
//! Rejection messages name fields and JSON types, never values (no PII).

use std::borrow::Cow;
use std::ops::Range;

use serde_json::value::RawValue;
use xxhash_rust::xxh3::Xxh3;

use crate::json::{self, write_json_str, Canonical, Node, Tape, ValueRef};
use crate::model::{
    write_value, DecodeNotes, Event, EventKind, Fingerprint, Lineage, Payload, SourceRef, Span,
    Ticket,
};

use super::upcast::{self, Body, BodyValue, EventTimeError, KNOWN_DETAIL_VERSIONS};

/// Concrete detail-event topics are `v2.detail.events.conversation.{id}.{kind}`.
pub const DETAIL_TOPIC_PREFIX: &str = "v2.detail.events.conversation.";

/// The placeholder EventBridge puts in `detail-type` instead of the id.
const ID_PLACEHOLDER: &str = "{id}";

/// Namespace of generated lineage tokens:
/// UUIDv5(URL namespace, `"urn:cxstream:lineage-token"`).
pub const LINEAGE_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0xe1e6ba06_fdbf_5458_848b_9f520d081de5);

/// EventBridge envelope fields that are transport, not event data.
fn is_envelope_field(name: &str) -> bool {
    matches!(
        name,
        "account"
            | "detail"
            | "detail-type"
            | "id"
            | "region"
            | "resources"
            | "source"
            | "time"
            | "version"
    )
}

/// Detail-object fields decode consumes.
fn is_detail_field(name: &str) -> bool {
    matches!(
        name,
        "eventBody" | "metadata" | "timestamp" | "topicName" | "version"
    )
}

/// Where the members decode reads are in an envelope or detail object.
#[derive(Debug, Default, Clone, Copy)]
struct Known {
    detail: Option<usize>,
    id: Option<usize>,
    detail_type: Option<usize>,
    event_body: Option<usize>,
    topic_name: Option<usize>,
    metadata: Option<usize>,
    version: Option<usize>,
}

/// One Kafka record to decode.
#[derive(Debug, Clone)]
pub struct DecodeInput<'a> {
    pub value: &'a [u8],
    pub source: SourceRef,
    /// Kafka header `cx.lineage.token`.
    pub header_lineage_token: Option<&'a str>,
    pub record_timestamp_ms: Option<i64>,
    pub ticket: Ticket,
}

/// One unit of a record.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Event(Box<Event>),
    Rejected(Rejection),
}

impl Decoded {
    pub fn as_event(&self) -> Option<&Event> {
        match self {
            Decoded::Event(e) => Some(e),
            Decoded::Rejected(_) => None,
        }
    }

    pub fn as_rejection(&self) -> Option<&Rejection> {
        match self {
            Decoded::Event(_) => None,
            Decoded::Rejected(r) => Some(r),
        }
    }
}

/// A unit that cannot become an event (dead-lettered by the runtime).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{class}: {message}")]
pub struct Rejection {
    pub class: RejectClass,
    /// Names fields and JSON types, never quotes values (no PII).
    pub message: String,
    /// The slice of the record value this rejection covers (the whole record
    /// if nothing could be parsed).
    pub bytes: Range<usize>,
    /// Header token, else `detail.metadata.CorrelationId`, else generated
    /// like an event's.
    pub lineage_token: Option<String>,
}

/// Why a unit was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectClass {
    NotJson,
    NotAnObject,
    UnknownShape,
    MissingConversationId,
    MissingEventKind,
    UnsupportedEventKind,
    MissingEventTime,
    InvalidEventTime,
    WrongType,
    InconsistentConversationId,
}

impl RejectClass {
    pub const ALL: [RejectClass; 10] = [
        RejectClass::NotJson,
        RejectClass::NotAnObject,
        RejectClass::UnknownShape,
        RejectClass::MissingConversationId,
        RejectClass::MissingEventKind,
        RejectClass::UnsupportedEventKind,
        RejectClass::MissingEventTime,
        RejectClass::InvalidEventTime,
        RejectClass::WrongType,
        RejectClass::InconsistentConversationId,
    ];

    /// Short stable code (dead-letter header, metric label).
    pub fn code(self) -> &'static str {
        match self {
            RejectClass::NotJson => "not_json",
            RejectClass::NotAnObject => "not_an_object",
            RejectClass::UnknownShape => "unknown_shape",
            RejectClass::MissingConversationId => "missing_conversation_id",
            RejectClass::MissingEventKind => "missing_event_kind",
            RejectClass::UnsupportedEventKind => "unsupported_event_kind",
            RejectClass::MissingEventTime => "missing_event_time",
            RejectClass::InvalidEventTime => "invalid_event_time",
            RejectClass::WrongType => "wrong_type",
            RejectClass::InconsistentConversationId => "inconsistent_conversation_id",
        }
    }
}

impl std::fmt::Display for RejectClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// Decodes one record value; appends one [`Decoded`] per unit, in order.
///
/// Each unit carries the byte range of `input.value` it came from
/// (`Event::raw`, `Rejection::bytes`): the whole value when the record is a
/// single top-level object, else the unit's own bytes. Ranges are in order
/// and never overlap.
pub fn decode_record(input: &DecodeInput<'_>, out: &mut Vec<Decoded>) {
    decode_units(input, out, true);
}

/// [`decode_record`]; `fast` allows [`json::parse_objects_fast`] (tests
/// compare both readers).
fn decode_units(input: &DecodeInput<'_>, out: &mut Vec<Decoded>, fast: bool) {
    let value = input.value;
    let first = out.len();
    let mut units = Units {
        input,
        out,
        count: 0,
        single_object: false,
        canon: Canonical::default(),
    };
    // A record that is valid UTF-8 (nearly all) is checked once, here, not
    // string by string by the parser; the parser's other checks and its
    // errors are the same for both readers.
    // Most records are objects the fast scanner reads whole; anything it
    // does not handle is read by serde_json, from the start.
    match std::str::from_utf8(value) {
        Ok(text) => match json::parse_objects_fast(text).filter(|_| fast) {
            Some(objects) => {
                for (tape, bytes) in objects {
                    units.single_object = units.count == 0;
                    units.value(&tape, 0, bytes, "top-level value");
                }
            }
            None => units.split(serde_json::Deserializer::from_str(text).into_iter()),
        },
        Err(_) => units.split(serde_json::Deserializer::from_slice(value).into_iter()),
    }
    if units.count == 0 {
        let msg = "record is empty or whitespace only".to_string();
        units.reject(RejectClass::NotJson, msg, 0..value.len());
    }
    // A record that is one object: its unit covers the whole value, so the
    // original bytes are forwarded or dead-lettered exactly as received.
    if units.count == 1 && units.single_object {
        match out.get_mut(first) {
            Some(Decoded::Event(ev)) => ev.raw = 0..value.len(),
            Some(Decoded::Rejected(r)) => r.bytes = 0..value.len(),
            None => {}
        }
    }
}

// ---------------------------------------------------------------------------
// Splitting a record into units
// ---------------------------------------------------------------------------

struct Units<'i, 'o> {
    input: &'o DecodeInput<'i>,
    out: &'o mut Vec<Decoded>,
    /// Units appended so far (index of the next one in the record).
    count: usize,
    /// The first unit is a top-level value, not an array element.
    single_object: bool,
    /// Scratch for writing canonical text, reused by every unit.
    canon: Canonical,
}

impl Units<'_, '_> {
    fn push(&mut self, d: Decoded) {
        self.out.push(d);
        self.count += 1;
    }

    fn reject(&mut self, class: RejectClass, message: String, bytes: Range<usize>) {
        let lineage_token = Some(lineage_token(self.input, None, self.count));
        self.push(Decoded::Rejected(Rejection {
            class,
            message,
            bytes,
            lineage_token,
        }));
    }

    fn object(&mut self, tape: &Tape<'_>, obj: usize, bytes: Range<usize>) {
        let unit = Unit {
            tape,
            input: self.input,
            index: self.count,
        };
        let d = match unit.decode(obj, bytes.clone(), &mut self.canon) {
            Ok(ev) => Decoded::Event(ev),
            Err(mut r) => {
                r.bytes = bytes;
                Decoded::Rejected(r)
            }
        };
        self.push(d);
    }

    fn value(&mut self, tape: &Tape<'_>, i: usize, bytes: Range<usize>, what: &str) {
        if matches!(tape.node(i), Node::Object { .. }) {
            self.object(tape, i, bytes);
        } else {
            let msg = format!("{what} is {}, expected an object", tape.type_name(i));
            self.reject(RejectClass::NotAnObject, msg, bytes);
        }
    }

    fn array(&mut self, tape: &Tape<'_>, bytes: Range<usize>) {
        let n = tape.items(0).count();
        if n == 0 {
            let msg = "top-level array is empty: no events".to_string();
            self.reject(RejectClass::NotAnObject, msg, bytes);
            return;
        }
        let ranges = element_ranges(self.input.value, &bytes, n);
        for (i, item) in tape.items(0).enumerate() {
            // Without element ranges (cannot happen for bytes serde_json just
            // parsed) the first element claims the array and the others
            // empty ranges, so spans still never overlap.
            let r = match ranges.as_ref().and_then(|rs| rs.get(i)) {
                Some(r) => r.clone(),
                None if i == 0 => bytes.clone(),
                None => bytes.end..bytes.end,
            };
            self.value(tape, item, r, "array element");
        }
    }
}

impl<'a> Units<'a, '_> {
    /// Decodes the record's top-level values one by one; an unparseable
    /// rest is one rejection.
    fn split<R: serde_json::de::Read<'a>>(
        &mut self,
        mut stream: serde_json::StreamDeserializer<'a, R, Tape<'a>>,
    ) {
        let value = self.input.value;
        loop {
            let start = skip_ws(value, stream.byte_offset());
            match stream.next() {
                None => break,
                Some(Ok(tape)) => {
                    let end = stream.byte_offset().clamp(start, value.len());
                    let is_array = matches!(tape.node(0), Node::Array { .. });
                    self.single_object = self.count == 0 && !is_array;
                    if is_array {
                        self.array(&tape, start..end);
                    } else {
                        self.value(&tape, 0, start..end, "top-level value");
                    }
                }
                Some(Err(e)) => {
                    let what = if self.count == 0 {
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
                    let start = if self.count == 0 {
                        0
                    } else {
                        start.min(value.len())
                    };
                    self.reject(RejectClass::NotJson, msg, start..value.len());
                    break;
                }
            }
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

fn wrong_type<T>(path: &str, v: ValueRef<'_>, expected: &str) -> Result<T, Fail> {
    fail(
        RejectClass::WrongType,
        format!("{path} is {}, expected {expected}", v.type_name()),
    )
}

/// The parts of an event object after unwrapping its shape; strings and
/// node indices of the unit's tape.
struct Parts<'t> {
    envelope_id: Option<&'t str>,
    detail_type: Option<&'t str>,
    topic: Option<&'t str>,
    version: Cow<'t, str>,
    /// The `eventBody` object.
    body: usize,
    /// Envelope/detail fields kept as extras: prefixed name, value node.
    outer_extras: Vec<(String, usize)>,
}

/// One unit (an event object) of a record being decoded.
struct Unit<'t, 'i> {
    tape: &'t Tape<'t>,
    input: &'i DecodeInput<'i>,
    /// Index of the unit in its record.
    index: usize,
}

impl<'t> Unit<'t, '_> {
    fn view(&self, i: usize) -> ValueRef<'t> {
        ValueRef::Node(self.tape, i)
    }

    fn decode(
        &self,
        obj: usize,
        raw: Range<usize>,
        canon: &mut Canonical,
    ) -> Result<Box<Event>, Rejection> {
        let mut correlation_id = None;
        let parts = self.unwrap_shape(obj, &mut correlation_id);
        // Known before any check can fail, so rejections carry it too.
        let mut token = lineage_token(self.input, correlation_id, self.index);
        match parts.and_then(|p| self.build_event(p, raw, canon, &mut token)) {
            Ok(ev) => Ok(ev),
            Err(f) => Err(Rejection {
                class: f.class,
                message: f.message,
                bytes: 0..0, // set by the caller
                lineage_token: Some(token),
            }),
        }
    }

    /// The members of `obj` decode reads (the last of each name, as in a
    /// JSON map), in one pass.
    fn scan(&self, obj: usize) -> Known {
        let mut k = Known::default();
        for (name, v) in self.tape.members(obj) {
            let slot = match name {
                "detail" => &mut k.detail,
                "id" => &mut k.id,
                "detail-type" => &mut k.detail_type,
                "eventBody" => &mut k.event_body,
                "topicName" => &mut k.topic_name,
                "metadata" => &mut k.metadata,
                "version" => &mut k.version,
                _ => continue,
            };
            *slot = Some(v);
        }
        k
    }

    /// The string at node `i` (if any): `None` when null, a wrong type when
    /// it is not a string.
    fn opt_str(&self, i: Option<usize>, path: &str) -> Result<Option<&'t str>, Fail> {
        match i.map(|i| (i, self.tape.node(i))) {
            None | Some((_, Node::Null)) => Ok(None),
            Some((i, Node::Str(_))) => Ok(self.tape.str(i)),
            Some((i, _)) => wrong_type(path, self.view(i), "a string"),
        }
    }

    /// Envelope → detail → eventBody. `correlation_id` is set as soon as the
    /// detail object is found, before any later check can fail.
    fn unwrap_shape(
        &self,
        obj: usize,
        correlation_id: &mut Option<&'t str>,
    ) -> Result<Parts<'t>, Fail> {
        let tape = self.tape;
        let top = self.scan(obj);
        let mut envelope_id = None;
        let mut detail_type = None;
        let mut outer_extras = Vec::new();

        let (detail, members) = if let Some(d) = top.detail {
            // EventBridge envelope.
            if !matches!(tape.node(d), Node::Object { .. }) {
                return wrong_type("detail", self.view(d), "an object");
            }
            envelope_id = self.opt_str(top.id, "id")?.filter(|s| !s.is_empty());
            detail_type = self.opt_str(top.detail_type, "detail-type")?;
            // `replay-name` (archive replays) and unknown envelope fields are kept.
            for (k, v) in tape.members(obj) {
                if !is_envelope_field(k) {
                    outer_extras.push((format!("envelope.{k}"), v));
                }
            }
            (d, self.scan(d))
        } else if top.event_body.is_some() || top.topic_name.is_some() {
            (obj, top)
        } else {
            return fail(
                RejectClass::UnknownShape,
                "object has no detail, eventBody or topicName: neither an EventBridge envelope nor a Genesys detail object",
            );
        };
        // Lineage only: a malformed metadata block is ignored, never fatal.
        if let Some(m) = members.metadata {
            if let Some(c) = tape.get(m, "CorrelationId").and_then(|c| tape.str(c)) {
                *correlation_id = Some(c).filter(|c| !c.is_empty());
            }
        }

        let body = match members.event_body.map(|b| (b, tape.node(b))) {
            Some((b, Node::Object { .. })) => b,
            None | Some((_, Node::Null)) => {
                return fail(RejectClass::UnknownShape, "detail object has no eventBody")
            }
            Some((b, _)) => return wrong_type("detail.eventBody", self.view(b), "an object"),
        };
        let topic = self.opt_str(members.topic_name, "detail.topicName")?;
        let version = match members.version.map(|v| (v, tape.node(v))) {
            None | Some((_, Node::Null)) => Cow::Borrowed(""),
            Some((v, Node::Str(_))) => Cow::Borrowed(tape.str(v).unwrap_or_default()),
            Some((v, Node::PosInt(_) | Node::NegInt(_) | Node::Float(_))) => {
                Cow::Owned(tape.to_value(v).to_string())
            }
            Some((v, _)) => {
                return wrong_type("detail.version", self.view(v), "a string or a number")
            }
        };
        for (k, v) in tape.members(detail) {
            if !is_detail_field(k) {
                outer_extras.push((format!("detail.{k}"), v));
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

    /// Validates, fingerprints, upcasts and projects one unwrapped object.
    /// On success the lineage `token` is moved into the event.
    fn build_event(
        &self,
        parts: Parts<'t>,
        raw: Range<usize>,
        canon: &mut Canonical,
        token: &mut String,
    ) -> Result<Box<Event>, Fail> {
        let tape = self.tape;
        let Parts {
            envelope_id,
            detail_type,
            topic,
            version,
            body: body_node,
            outer_extras,
        } = parts;

        // Event kind and the topic's conversation id.
        let (kind, topic_id) = match (topic, detail_type) {
            (Some(t), _) => parse_topic(t, "topicName")?,
            (None, Some(dt)) => parse_topic(dt, "detail-type")?,
            (None, None) => {
                return fail(
                    RejectClass::MissingEventKind,
                    "no event kind: detail.topicName and detail-type are both absent",
                )
            }
        };
        let topic_id = topic_id.filter(|id| *id != ID_PLACEHOLDER);

        // The original body in canonical form: fingerprinted below, then
        // the text the silver record's fields are copied from.
        let mut text = String::with_capacity(raw.len() + 256);
        let mut body = Body::canonical(tape, body_node, canon, &mut text);

        // Conversation id.
        let body_id = match body.get_id(upcast::conversation_id_id()) {
            None => None,
            Some(v) if v.is_null() => None,
            Some(v) => match v.as_str() {
                Some("") => None,
                Some(s) => Some(s),
                None => return wrong_type("eventBody.conversationId", v, "a string"),
            },
        };
        let interaction_id =
            match (body_id, topic_id) {
                (Some(b), Some(t)) if !b.eq_ignore_ascii_case(t) => {
                    return fail(
                        RejectClass::InconsistentConversationId,
                        "the conversation id in topicName differs from eventBody.conversationId",
                    )
                }
                (Some(b), _) => b.to_owned(),
                (None, Some(t)) => t.to_owned(),
                (None, None) => return fail(
                    RejectClass::MissingConversationId,
                    "no conversation id: eventBody.conversationId is absent and topicName has none",
                ),
            };

        // Fingerprint of the original content (before any upcast step).
        let content_fp = match topic {
            Some(t) => content_fingerprint(t, &text),
            None => content_fingerprint(
                &format!("{DETAIL_TOPIC_PREFIX}{interaction_id}.{}", kind.as_str()),
                &text,
            ),
        };

        let mut notes = DecodeNotes::default();
        upcast::upcast(&mut body, &version, kind, &mut notes);

        let event_time_ms = match body.get_id(upcast::event_time_id()) {
            None => return fail(RejectClass::MissingEventTime, "eventBody.eventTime is absent"),
            Some(v) => upcast::parse_event_time(v).or_else(|e| match e {
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
        for id in [upcast::event_time_id(), upcast::conversation_id_id()] {
            body.remove_id(id);
        }

        // Header ids: Event slots, whatever the kind.
        let mut header: [Option<Cow<'static, str>>; 6] = Default::default();
        for (slot, &(id, spec)) in header.iter_mut().zip(upcast::header_fields()) {
            *slot = match body.get_id(id) {
                None => None,
                Some(v) => {
                    let s = match v.as_str() {
                        Some(s) => Some(shared(spec.enum_spec.map(|e| e.values), s)),
                        None if v.is_null() => None,
                        None => {
                            return wrong_type(&format!("eventBody.{}", spec.name), v, "a string")
                        }
                    };
                    body.remove_id(id);
                    s
                }
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
        let [participant_id, session_id, queue_id, user_id] =
            [participant_id, session_id, queue_id, user_id].map(|id| id.map(Cow::into_owned));

        // Projection: known fields renamed, the rest kept as extras.
        for &(id, spec) in upcast::kind_fields(kind) {
            if let Some(v) = body.get_id(id) {
                upcast::note_enum(spec, v, kind, &mut notes);
            }
        }
        let kind_fields = upcast::kind_fields_by_canonical(kind);
        let mut payload = Payload::with_text(text, kind_fields.len());
        for &(id, spec) in kind_fields {
            if let Some(v) = body.remove_id(id) {
                let span = value_span(&mut payload, tape, &v);
                payload.push_field(spec.canonical, span);
            }
        }
        push_extras(&mut payload, tape, canon, outer_extras, &mut body);

        let id_fp = envelope_id.map(id_fingerprint);
        let event_id = match envelope_id {
            Some(id) => id.to_owned(),
            None => format!("fp-{content_fp:032x}"),
        };

        Ok(Box::new(Event {
            event_id,
            interaction_id,
            kind,
            event_time_ms,
            source_version: shared(Some(KNOWN_DETAIL_VERSIONS), &version),
            media_type,
            direction,
            participant_id,
            session_id,
            queue_id,
            user_id,
            payload,
            content_fp,
            id_fp,
            lineage: Lineage {
                token: std::mem::take(token),
                hops: Vec::new(),
                masked_fields: Vec::new(),
            },
            source: self.input.source.clone(),
            raw,
            record_timestamp_ms: self.input.record_timestamp_ms,
            notes,
            ticket: self.input.ticket,
        }))
    }
}

/// `s`, shared with the equal entry of `values` when there is one (known
/// versions and enum values: no copy per event), else copied.
fn shared(values: Option<&'static [&'static str]>, s: &str) -> Cow<'static, str> {
    match values.and_then(|vs| vs.iter().find(|v| **v == s)) {
        Some(v) => Cow::Borrowed(v),
        None => Cow::Owned(s.to_owned()),
    }
}

/// Where the canonical text of a body value is in `payload` (`None` for
/// null): input values are already there; values a step set are appended.
fn value_span(payload: &mut Payload, tape: &Tape<'_>, v: &BodyValue) -> Option<Span> {
    match v {
        BodyValue::Input { node, text } => {
            (!matches!(tape.node(*node), Node::Null)).then_some(*text)
        }
        BodyValue::Set(v) if v.is_null() => None,
        BodyValue::Set(v) => Some(payload.append(|out| write_value(out, v))),
    }
}

/// Where an extra's value comes from.
enum ExtraValue {
    /// A member of the body.
    Body {
        key_text: Option<Span>,
        value: BodyValue,
    },
    /// A node of the envelope or detail object.
    Outer(usize),
}

/// Adds the extras: the envelope/detail fields decode keeps, then the body
/// members nobody consumed, sorted by key, a later one winning over an
/// earlier one with the same key (as inserting them into one map did).
fn push_extras<'t>(
    payload: &mut Payload,
    tape: &'t Tape<'t>,
    canon: &mut Canonical,
    outer: Vec<(String, usize)>,
    body: &mut Body<'t>,
) {
    let mut extras: Vec<(Cow<'t, str>, ExtraValue)> = outer
        .into_iter()
        .map(|(k, v)| (Cow::Owned(k), ExtraValue::Outer(v)))
        .collect();
    extras.extend(body.drain().filter_map(|m| {
        let value = m.value?;
        Some((
            m.name,
            ExtraValue::Body {
                key_text: m.key_text,
                value,
            },
        ))
    }));
    if extras.is_empty() {
        return;
    }
    // Stable: members with one key keep their order; the last one wins.
    extras.sort_by(|a, b| a.0.cmp(&b.0));
    let mut extras = extras.into_iter().peekable();
    while let Some((key, value)) = extras.next() {
        if extras.peek().is_some_and(|(next, _)| *next == key) {
            continue;
        }
        let key_span = match &value {
            ExtraValue::Body {
                key_text: Some(span),
                ..
            } => *span,
            _ => payload.append(|out| write_json_str(out, &key)),
        };
        let value_span = match value {
            ExtraValue::Outer(node) => payload.append(|out| canon.write(tape, node, out)),
            ExtraValue::Body {
                value: BodyValue::Input { text, .. },
                ..
            } => text,
            ExtraValue::Body {
                value: BodyValue::Set(v),
                ..
            } => payload.append(|out| write_value(out, &v)),
        };
        payload.push_extra(key_span, value_span);
    }
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

/// xxh3-128 of `topic ‖ "\n" ‖ canonical JSON of the body`: the body as
/// serde_json writes a `Value` of it (keys sorted at every level, see
/// [`Canonical`]), so two spellings of one body (key order, spacing,
/// escapes) and different envelopes give one fingerprint.
pub fn content_fingerprint(topic: &str, canonical_body: &str) -> Fingerprint {
    let mut h = Xxh3::new();
    h.update(topic.as_bytes());
    h.update(b"\n");
    h.update(canonical_body.as_bytes());
    h.digest128()
}

/// xxh3-128 of `"id:" ‖ envelope id`.
pub fn id_fingerprint(id: &str) -> Fingerprint {
    let mut h = Xxh3::new();
    h.update(b"id:");
    h.update(id.as_bytes());
    h.digest128()
}

/// Longest lineage token taken from a header or `CorrelationId` (a UUID
/// has 36 characters); a longer one is ignored, since the token travels in
/// every output's headers and must never make a record too large.
pub const MAX_LINEAGE_TOKEN_LEN: usize = 256;

/// Header token, else `CorrelationId`, else UUIDv5 of
/// `"{topic}/{partition}/{offset}/{index}"` (stable across replays).
fn lineage_token(input: &DecodeInput<'_>, correlation_id: Option<&str>, index: usize) -> String {
    let usable = |t: &&str| !t.is_empty() && t.len() <= MAX_LINEAGE_TOKEN_LEN;
    if let Some(t) = input.header_lineage_token.filter(usable) {
        return t.to_owned();
    }
    match correlation_id.filter(usable) {
        Some(c) => c.to_owned(),
        None => generated_token(&input.source, index),
    }
}

/// The token generated for unit `index` of the record at `source`.
pub fn generated_token(source: &SourceRef, index: usize) -> String {
    let name = format!(
        "{}/{}/{}/{}",
        source.topic, source.partition, source.offset, index
    );
    uuid::Uuid::new_v5(&LINEAGE_NAMESPACE, name.as_bytes()).to_string()
}

#[cfg(test)]
mod tests {
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

    // ---------------------------------------------------------------- codes

    #[test]
    fn reject_codes_are_stable_snake_case() {
        let codes: Vec<_> = RejectClass::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(
            codes,
            [
                "not_json",
                "not_an_object",
                "unknown_shape",
                "missing_conversation_id",
                "missing_event_kind",
                "unsupported_event_kind",
                "missing_event_time",
                "invalid_event_time",
                "wrong_type",
                "inconsistent_conversation_id",
            ]
        );
        assert_eq!(RejectClass::WrongType.to_string(), "wrong_type");
    }

    // ------------------------------------------------------- the 16 kinds

    #[test]
    fn every_kind_fixture_decodes() {
        let files: [(&[u8], EventKind, bool); 16] = [
            (
                fixture!("01-customer-start.json"),
                EventKind::CustomerStart,
                true,
            ),
            (fixture!("02-outbound.json"), EventKind::Outbound, true),
            (fixture!("03-flow-start.json"), EventKind::FlowStart, true),
            (
                fixture!("04-flow-outcome.json"),
                EventKind::FlowOutcome,
                false,
            ),
            (fixture!("05-flow-end.json"), EventKind::FlowEnd, true),
            (fixture!("06-acd-start.json"), EventKind::AcdStart, true),
            (fixture!("07-user-start.json"), EventKind::UserStart, true),
            (fixture!("08-acd-end.json"), EventKind::AcdEnd, true),
            (fixture!("09-attributes.json"), EventKind::Attributes, true),
            (fixture!("10-contact.json"), EventKind::Contact, false),
            (
                fixture!("11-voicemail-start.json"),
                EventKind::VoicemailStart,
                true,
            ),
            (
                fixture!("12-voicemail-end.json"),
                EventKind::VoicemailEnd,
                false,
            ),
            (fixture!("13-user-end.json"), EventKind::UserEnd, true),
            (fixture!("14-acw.json"), EventKind::Acw, true),
            (fixture!("15-wrapup.json"), EventKind::Wrapup, false),
            (
                fixture!("16-customer-end.json"),
                EventKind::CustomerEnd,
                true,
            ),
        ];
        let mut seen = Vec::new();
        for (bytes, kind, enveloped) in files {
            let ev = event(bytes);
            let raw: Value = serde_json::from_slice(bytes).unwrap_or_default();
            let detail = if enveloped { &raw["detail"] } else { &raw };
            let body = &detail["eventBody"];
            assert_eq!(ev.kind, kind);
            assert_eq!(ev.raw, 0..bytes.len());
            assert_eq!(
                Some(ev.interaction_id.as_str()),
                body["conversationId"].as_str()
            );
            assert_eq!(Some(ev.event_time_ms), body["eventTime"].as_i64());
            assert_eq!(ev.source_version, "2");
            assert_eq!(ev.participant_id.as_deref(), body["participantId"].as_str());
            assert_eq!(ev.session_id.as_deref(), body["sessionId"].as_str());
            assert_eq!(ev.media_type.as_deref(), body["mediaType"].as_str());
            assert_eq!(ev.queue_id.as_deref(), body["queueId"].as_str());
            assert_eq!(ev.user_id.as_deref(), body["userId"].as_str());
            if enveloped {
                assert_eq!(Some(ev.event_id.as_str()), raw["id"].as_str());
                assert!(ev.id_fp.is_some());
            } else {
                assert_eq!(ev.event_id, format!("fp-{:032x}", ev.content_fp));
                assert_eq!(ev.id_fp, None);
            }
            assert_eq!(
                Some(ev.lineage.token.as_str()),
                detail["metadata"]["CorrelationId"].as_str()
            );
            // Every known field of the kind, snake_case, values as received.
            let known: Vec<_> = upcast::fields_of(kind).collect();
            assert_eq!(ev.payload.fields_map().len(), known.len(), "{kind:?}");
            for spec in known {
                let want = body.get(spec.name).cloned().unwrap_or(Value::Null);
                assert_eq!(
                    ev.payload.fields_map().get(spec.canonical),
                    Some(&want),
                    "{kind:?}.{}",
                    spec.canonical
                );
            }
            for k in [
                "eventTime",
                "conversationId",
                "participantId",
                "sessionId",
                "queueId",
                "userId",
            ] {
                assert!(
                    !ev.payload.fields_map().contains_key(k)
                        && !ev.payload.extras_map().contains_key(k)
                );
            }
            assert!(
                ev.notes.unknown_enum_values.is_empty(),
                "{kind:?} {:?}",
                ev.notes
            );
            assert!(!ev.notes.newer_version);
            let filled = upcast::fields_of(kind).any(|f| body.get(f.name).is_none());
            let steps: &[&str] = if filled {
                &["fill_absent_known_fields"]
            } else {
                &[]
            };
            assert_eq!(ev.notes.upcast_steps, steps, "{kind:?}");
            seen.push(kind);
        }
        seen.sort();
        let mut all = EventKind::ALL.to_vec();
        all.sort();
        assert_eq!(seen, all);
    }

    #[test]
    fn pii_fields_are_kept_verbatim_until_masking() {
        let acw = event(fixture!("14-acw.json"));
        let fields = acw.payload.fields_map();
        let notes = fields["wrapup_notes"].as_str().unwrap_or_default();
        assert!(notes.contains("4111 1111 1111 1111") && notes.contains("jane.doe@example.com"));
        assert_eq!(acw.payload.fields_map()["ani"], json!("tel:+13175550148"));
        assert_eq!(
            acw.user_id.as_deref(),
            Some("cd9fdc70-ab38-460b-af12-20bc55148f79")
        );
        assert!(acw.payload.extras_map().is_empty());

        let attrs = event(fixture!("09-attributes.json"));
        assert_eq!(
            attrs.payload.fields_map()["attributes"]["context.email"],
            json!("jane.doe@example.com")
        );
        assert_eq!(
            attrs.payload.fields_map()["attributes"]["ivr.intent"],
            json!("billing")
        );
        assert_eq!(attrs.media_type, None);
        // attributes defines neither session nor media: not "missing".
        assert!(attrs.notes.missing_optional.is_empty(), "{:?}", attrs.notes);

        let cb = event(fixture!("06-acd-start.json"));
        assert_eq!(
            cb.payload.fields_map()["callback_numbers"],
            json!(["tel:+13175550148", "tel:+447700900123"])
        );
        assert_eq!(
            cb.payload.fields_map()["callback_user_name"],
            json!("Jane Doe")
        );

        let contact = event(fixture!("10-contact.json"));
        assert_eq!(
            contact.payload.fields_map()["address_from"],
            json!("jane.doe@example.com")
        );
        assert_eq!(contact.media_type.as_deref(), Some("EMAIL"));
    }

    #[test]
    fn acd_end_fields_and_lowercase_flow_type() {
        let ev = event(fixture!("08-acd-end.json"));
        assert_eq!(ev.payload.fields_map()["acd_outcome"], json!("ANSWERED"));
        assert_eq!(
            ev.payload.fields_map()["answered_user_id"],
            json!("cd9fdc70-ab38-460b-af12-20bc55148f79")
        );
        assert_eq!(
            ev.payload.fields_map()["connected_duration_ms"],
            json!(11060)
        );
        assert_eq!(
            ev.payload.fields_map()["requested_routings"],
            json!(["STANDARD"])
        );
        assert_eq!(ev.payload.fields_map()["flow_type"], json!("inqueuecall")); // kept, and known
        assert_eq!(
            ev.payload.fields_map()["requested_skill_expression_ids"],
            Value::Null
        ); // filled
        assert!(ev.notes.unknown_enum_values.is_empty());
    }

    #[test]
    fn replay_name_is_kept_as_an_envelope_extra() {
        let ev = event(fixture!("16-customer-end.json"));
        assert_eq!(ev.payload.extras_map().len(), 1);
        assert_eq!(
            ev.payload.extras_map()["envelope.replay-name"],
            json!("cx-archive-replay-20251213")
        );
    }

    // -------------------------------------------------------------- drift

    #[test]
    fn drift_event_time_representations() {
        let iso = event(fixture!("17-event-time-iso-string.json"));
        let num = event(fixture!("18-event-time-numeric-string.json"));
        let float = event(fixture!("27-event-time-float.json"));
        let base = event(fixture!("07-user-start.json"));
        assert_eq!(iso.event_time_ms, 1_765_551_024_623);
        assert_eq!(num.event_time_ms, 1_765_551_024_623);
        assert_eq!(base.event_time_ms, 1_765_551_024_623);
        assert_eq!(float.event_time_ms, 1_765_551_000_433);
        for ev in [&iso, &num, &float] {
            assert_eq!(ev.notes.upcast_steps[0], "event_time_to_epoch_ms");
        }
        // The fingerprint covers the original body, so representations differ.
        assert_ne!(iso.content_fp, base.content_fp);
    }

    #[test]
    fn drift_missing_optional_fields() {
        let ev = event(fixture!("19-missing-optional-fields.json"));
        assert_eq!(ev.kind, EventKind::CustomerEnd);
        assert_eq!(
            ev.notes.missing_optional,
            ["participant_id", "session_id", "media_type", "direction"]
        );
        assert_eq!(ev.participant_id, None);
        assert!(ev.payload.fields_map().values().all(Value::is_null));
        assert_eq!(
            ev.payload.fields_map().len(),
            upcast::fields_of(EventKind::CustomerEnd).count()
        );
    }

    #[test]
    fn drift_unknown_future_fields_go_to_extras() {
        let ev = event(fixture!("20-unknown-future-fields.json"));
        assert_eq!(ev.payload.extras_map().len(), 3);
        assert_eq!(
            ev.payload.extras_map()["sentiment"],
            json!({"score": 0.42, "trend": "IMPROVING"})
        );
        assert_eq!(ev.payload.extras_map()["queueWaitBucket"], json!("10-30s"));
        assert!(ev.payload.extras_map().contains_key("agentAssistSessionId"));
        assert_eq!(ev.payload.fields_map()["acd_outcome"], json!("ANSWERED"));
    }

    #[test]
    fn drift_enum_values() {
        let ev = event(fixture!("21-unknown-enum-value.json"));
        assert_eq!(ev.notes.unknown_enum_values, ["disconnect_type"]);
        assert_eq!(
            ev.payload.fields_map()["disconnect_type"],
            json!("WORMHOLE")
        );
        let ev = event(fixture!("26-known-later-enum-value.json"));
        assert_eq!(
            ev.payload.fields_map()["disconnect_type"],
            json!("TAKEOVER")
        );
        assert!(ev.notes.unknown_enum_values.is_empty());
    }

    #[test]
    fn drift_newer_detail_version_is_processed_and_noted() {
        let ev = event(fixture!("22-newer-detail-version.json"));
        assert!(ev.notes.newer_version);
        assert_eq!(ev.source_version, "3");
        assert_eq!(ev.kind, EventKind::AcdStart);
        assert_eq!(ev.payload.extras_map()["routingMode"], json!("AGENTIC"));
    }

    #[test]
    fn drift_detail_type_fallback_and_numeric_version() {
        let ev = event(fixture!("28-detail-type-fallback.json"));
        assert_eq!(ev.kind, EventKind::AcdStart);
        assert_eq!(ev.interaction_id, CONV);
        // The same body with a topicName (third line of the JSON Lines
        // fixture) has the same content fingerprint: the reconstructed topic
        // equals the real one.
        let jsonl = events(fixture!("23-jsonl-three-events.json"));
        assert_eq!(jsonl[2].content_fp, ev.content_fp);
        assert_ne!(jsonl[2].event_id, ev.event_id);

        let ev = event(fixture!("29-detail-version-number.json"));
        assert_eq!(ev.source_version, "2");
        assert!(!ev.notes.newer_version);
    }

    #[test]
    fn multi_event_records() {
        for (bytes, kinds) in [
            (
                fixture!("23-jsonl-three-events.json"),
                [
                    EventKind::FlowStart,
                    EventKind::FlowEnd,
                    EventKind::AcdStart,
                ],
            ),
            (
                fixture!("24-back-to-back-objects.json"),
                [
                    EventKind::UserStart,
                    EventKind::AcdEnd,
                    EventKind::Attributes,
                ],
            ),
            (
                fixture!("25-top-level-array.json"),
                [EventKind::UserEnd, EventKind::Acw, EventKind::CustomerEnd],
            ),
        ] {
            let out = decode(bytes);
            assert_ranges_ok(&out, bytes.len());
            let evs = events(bytes);
            assert_eq!(evs.iter().map(|e| e.kind).collect::<Vec<_>>(), kinds);
            for ev in &evs {
                // Each range is exactly one object that decodes to the same event.
                let slice = &bytes[ev.raw.clone()];
                assert_eq!(slice.first(), Some(&b'{'));
                assert_eq!(slice.last(), Some(&b'}'));
                let again = event(slice);
                assert_eq!(again.content_fp, ev.content_fp);
                assert_eq!(again.event_id, ev.event_id);
            }
        }
    }

    // ---------------------------------------------------------- malformed

    #[test]
    fn malformed_fixtures_are_rejected_with_the_right_class() {
        let cases: [(&[u8], RejectClass); 12] = [
            (fixture!("40-not-json.txt"), RejectClass::NotJson),
            (
                fixture!("41-missing-conversation-id.json"),
                RejectClass::MissingConversationId,
            ),
            (
                fixture!("42-missing-event-time.json"),
                RejectClass::MissingEventTime,
            ),
            (
                fixture!("43-invalid-event-time.json"),
                RejectClass::InvalidEventTime,
            ),
            (fixture!("44-wrong-type.json"), RejectClass::WrongType),
            (
                fixture!("45-unsupported-kind-audit.json"),
                RejectClass::UnsupportedEventKind,
            ),
            (
                fixture!("46-unsupported-kind-suffix.json"),
                RejectClass::UnsupportedEventKind,
            ),
            (
                fixture!("47-inconsistent-conversation-id.json"),
                RejectClass::InconsistentConversationId,
            ),
            (fixture!("48-unknown-shape.json"), RejectClass::UnknownShape),
            (fixture!("49-not-an-object.json"), RejectClass::NotAnObject),
            (
                fixture!("51-wrong-type-event-time.json"),
                RejectClass::WrongType,
            ),
            (
                fixture!("52-missing-event-kind.json"),
                RejectClass::MissingEventKind,
            ),
        ];
        for (bytes, class) in cases {
            let out = decode(bytes);
            let r = rejection(bytes);
            assert_eq!(r.class, class, "{}", r.message);
            assert_eq!(r.bytes, 0..bytes.len());
            assert!(r.lineage_token.is_some());
            assert_no_values_in_messages(bytes, &out);
        }
        let r = rejection(fixture!("44-wrong-type.json"));
        assert_eq!(
            r.message,
            "eventBody.conversationId is a number, expected a string"
        );
        let r = rejection(fixture!("51-wrong-type-event-time.json"));
        assert_eq!(
            r.message,
            "eventBody.eventTime is a boolean, expected epoch ms or ISO-8601"
        );
        // The CorrelationId survives into a rejection's lineage token.
        let r = rejection(fixture!("42-missing-event-time.json"));
        let raw: Value =
            serde_json::from_slice(fixture!("42-missing-event-time.json")).unwrap_or_default();
        assert_eq!(
            r.lineage_token.as_deref(),
            raw["detail"]["metadata"]["CorrelationId"].as_str()
        );
    }

    #[test]
    fn garbage_after_valid_objects_is_one_rejection() {
        let bytes = fixture!("50-trailing-garbage.json");
        let out = decode(bytes);
        assert_eq!(out.len(), 3);
        assert_ranges_ok(&out, bytes.len());
        assert!(out[0].as_event().is_some() && out[1].as_event().is_some());
        let r = out[2]
            .as_rejection()
            .cloned()
            .unwrap_or_else(|| panic!("{out:?}"));
        assert_eq!(r.class, RejectClass::NotJson);
        assert_eq!(r.bytes.end, bytes.len());
        assert_eq!(bytes[r.bytes.start], b'{');
        assert!(r
            .message
            .starts_with("rest of the record is not valid JSON"));
        assert_no_values_in_messages(bytes, &out);
    }

    #[test]
    fn fixture_files_cover_the_brief() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/input");
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        assert!(names.len() >= 42, "{names:?}");
        for n in &names {
            let (nn, rest) = n.split_once('-').unwrap_or_default();
            assert!(
                nn.len() == 2 && nn.bytes().all(|b| b.is_ascii_digit()),
                "{n}"
            );
            assert!(rest.ends_with(".json") || rest.ends_with(".txt"), "{n}");
            let bytes = std::fs::read(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/golden/input")
                    .join(n),
            )
            .unwrap_or_default();
            let out = decode(&bytes);
            assert!(!out.is_empty());
            assert_ranges_ok(&out, bytes.len());
            assert_no_values_in_messages(&bytes, &out);
        }
    }

    // -------------------------------------------------------------- rules

    #[test]
    fn conversation_id_sources() {
        // From the body.
        assert_eq!(ev_of(&bare("acw", body())).interaction_id, CONV);
        // From the topic when the body has none (absent, null or empty).
        for v in [None, Some(Value::Null), Some(json!(""))] {
            let b = with(body(), &["conversationId"], v);
            assert_eq!(ev_of(&bare("acw", b)).interaction_id, CONV);
        }
        // Case-only differences are not inconsistent; the body's spelling wins.
        let upper = CONV.to_uppercase();
        let b = with(body(), &["conversationId"], Some(json!(upper)));
        assert_eq!(ev_of(&bare("acw", b)).interaction_id, upper);
        // Disagreement.
        let b = with(
            body(),
            &["conversationId"],
            Some(json!("another-conversation")),
        );
        assert_eq!(
            class_of(&bare("acw", b)),
            RejectClass::InconsistentConversationId
        );
        // Neither: no topic (detail-type placeholder) and no body id.
        let e = with(envelope("acw", body()), &["detail", "topicName"], None);
        let e = with(e, &["detail", "eventBody", "conversationId"], None);
        assert_eq!(class_of(&e), RejectClass::MissingConversationId);
        // A literal "{id}" in topicName is a placeholder, not an id.
        let d = with(
            bare("acw", body()),
            &["topicName"],
            Some(json!("v2.detail.events.conversation.{id}.acw")),
        );
        assert_eq!(ev_of(&d).interaction_id, CONV);
        let d = with(d, &["eventBody", "conversationId"], None);
        assert_eq!(class_of(&d), RejectClass::MissingConversationId);
    }

    #[test]
    fn event_kind_sources() {
        let e = with(envelope("user.end", body()), &["detail", "topicName"], None);
        assert_eq!(ev_of(&e).kind, EventKind::UserEnd);
        // topicName wins over detail-type.
        let e = with(
            envelope("user.end", body()),
            &["detail-type"],
            Some(json!("v2.detail.events.conversation.{id}.acw")),
        );
        assert_eq!(ev_of(&e).kind, EventKind::UserEnd);
        // Neither.
        let d = with(bare("acw", body()), &["topicName"], None);
        assert_eq!(class_of(&d), RejectClass::MissingEventKind);
        let d = with(
            bare("acw", body()),
            &["topicName"],
            Some(json!(format!("{DETAIL_TOPIC_PREFIX}{CONV}"))),
        );
        assert_eq!(class_of(&d), RejectClass::MissingEventKind);
        let d = with(
            bare("acw", body()),
            &["topicName"],
            Some(json!(format!("{DETAIL_TOPIC_PREFIX}{CONV}."))),
        );
        assert_eq!(class_of(&d), RejectClass::MissingEventKind);
        // Unsupported.
        for t in [
            format!("{DETAIL_TOPIC_PREFIX}{CONV}.foo.bar"),
            format!("{DETAIL_TOPIC_PREFIX}{CONV}.acd"),
            "v2.audits.entitytype.UserPresence.entityid.x".to_string(),
            "v2.routing.queues.q1.conversations".to_string(),
            "v2.users.u1.conversations".to_string(),
            String::new(),
        ] {
            let d = with(bare("acw", body()), &["topicName"], Some(json!(t)));
            assert_eq!(class_of(&d), RejectClass::UnsupportedEventKind, "{t}");
        }
        let e = with(envelope("acw", body()), &["detail", "topicName"], None);
        let e = with(
            e,
            &["detail-type"],
            Some(json!("v2.audits.entitytype.{id}.entityid.{id}")),
        );
        assert_eq!(class_of(&e), RejectClass::UnsupportedEventKind);
    }

    #[test]
    fn wrong_types_on_required_and_id_fields() {
        let cases = [
            (vec!["detail", "eventBody", "conversationId"], json!(12)),
            (vec!["detail", "eventBody", "participantId"], json!(12)),
            (vec!["detail", "eventBody", "sessionId"], json!({"id": "s"})),
            (vec!["detail", "eventBody", "mediaType"], json!(["VOICE"])),
            (vec!["detail", "eventBody", "direction"], json!(true)),
            (vec!["detail", "eventBody", "queueId"], json!(1)),
            (vec!["detail", "eventBody", "userId"], json!(1)),
            (vec!["detail", "eventBody", "eventTime"], json!(false)),
            (vec!["detail", "eventBody", "eventTime"], json!([1])),
            (vec!["detail", "eventBody"], json!("body")),
            (vec!["detail", "topicName"], json!(5)),
            (vec!["detail", "version"], json!(true)),
            (vec!["detail"], json!([1])),
            (vec!["id"], json!(5)),
            (vec!["detail-type"], json!(5)),
        ];
        for (path, v) in cases {
            let e = with(envelope("user.end", body()), &path, Some(v));
            let r = rejection(&serde_json::to_vec(&e).unwrap_or_default());
            assert_eq!(r.class, RejectClass::WrongType, "{path:?}");
            let field = path.last().copied().unwrap_or_default();
            assert!(r.message.contains(field), "{} / {field}", r.message);
        }
        // Kind fields are not type-checked: kept as received.
        let b = with(body(), &["wrapupNotes"], Some(json!(42)));
        assert_eq!(
            ev_of(&bare("acw", b)).payload.field("wrapup_notes"),
            Some(json!(42))
        );
        // Null header ids are absent, not wrong.
        let b = with(body(), &["participantId"], Some(Value::Null));
        assert_eq!(ev_of(&bare("acw", b)).participant_id, None);
    }

    #[test]
    fn event_time_rules() {
        let at = |v: Option<Value>| {
            let b = with(body(), &["eventTime"], v);
            let out = decode(&serde_json::to_vec(&bare("acw", b)).unwrap_or_default());
            match out.into_iter().next() {
                Some(Decoded::Event(e)) => Ok(e.event_time_ms),
                Some(Decoded::Rejected(r)) => Err(r.class),
                None => Err(RejectClass::NotJson),
            }
        };
        assert_eq!(
            at(Some(json!(1_649_237_444_949_i64))),
            Ok(1_649_237_444_949)
        );
        assert_eq!(
            at(Some(json!("2022-04-06T09:30:44.949Z"))),
            Ok(1_649_237_444_949)
        );
        assert_eq!(
            at(Some(json!("2022-04-06T09:30:44Z"))),
            Ok(1_649_237_444_000)
        );
        assert_eq!(
            at(Some(json!("2022-04-06T11:30:44.949+02:00"))),
            Ok(1_649_237_444_949)
        );
        assert_eq!(at(Some(json!("1649237444949"))), Ok(1_649_237_444_949));
        assert_eq!(at(Some(json!(1_649_237_444_949.99))), Ok(1_649_237_444_949));
        assert_eq!(at(None), Err(RejectClass::MissingEventTime));
        assert_eq!(at(Some(Value::Null)), Err(RejectClass::MissingEventTime));
        assert_eq!(
            at(Some(json!("2021-04-2T15:30:51.418Z"))),
            Err(RejectClass::InvalidEventTime)
        );
        assert_eq!(
            at(Some(json!("2022-04-06T09:30:44"))),
            Err(RejectClass::InvalidEventTime)
        );
        assert_eq!(at(Some(json!(-5))), Err(RejectClass::InvalidEventTime));
        assert_eq!(at(Some(json!(1e20))), Err(RejectClass::InvalidEventTime));
        assert_eq!(at(Some(json!(true))), Err(RejectClass::WrongType));
        assert_eq!(at(Some(json!({}))), Err(RejectClass::WrongType));
    }

    #[test]
    fn event_ids_and_fingerprints() {
        let e = envelope("acw", body());
        let ev = ev_of(&e);
        assert_eq!(ev.event_id, "evb-id-1");
        assert_eq!(ev.id_fp, Some(xxh3_128(b"id:evb-id-1")));
        // Without an envelope id (bare, empty or null id): fingerprint id.
        for e in [
            bare("acw", body()),
            with(e.clone(), &["id"], Some(json!(""))),
            with(e.clone(), &["id"], None),
        ] {
            let ev = ev_of(&e);
            assert_eq!(ev.event_id, format!("fp-{:032x}", ev.content_fp));
            assert_eq!(ev.event_id.len(), 35);
            assert_eq!(ev.id_fp, None);
        }
        // content_fp: topicName + canonical original body; key order and
        // whitespace do not matter, the envelope does not matter.
        let topic = format!("{DETAIL_TOPIC_PREFIX}{CONV}.acw");
        let body_map = match body() {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let canonical_body = serde_json::to_string(&body_map).unwrap_or_default();
        assert_eq!(ev.content_fp, content_fingerprint(&topic, &canonical_body));
        let reordered = format!(
            r#"{{ "eventBody" : {{"direction":"INBOUND","sessionId":"s-1","mediaType":"VOICE",
                "participantId":"p-1","conversationId":"{CONV}","eventTime":1765551000123}},
                "topicName":"{topic}", "version":"2"}}"#
        );
        assert_eq!(event(reordered.as_bytes()).content_fp, ev.content_fp);
        let mut canonical = topic.clone().into_bytes();
        canonical.push(b'\n');
        canonical.extend(serde_json::to_vec(&body_map).unwrap_or_default());
        assert_eq!(ev.content_fp, xxh3_128(&canonical));
        // A different body or topic changes it.
        let b = with(body(), &["sessionId"], Some(json!("s-2")));
        assert_ne!(ev_of(&bare("acw", b)).content_fp, ev.content_fp);
        assert_ne!(ev_of(&bare("wrapup", body())).content_fp, ev.content_fp);
    }

    #[test]
    fn serde_json_maps_serialize_sorted() {
        // Guards the canonical form: fails if some dependency turns on
        // serde_json's `preserve_order` feature.
        let v: Value = serde_json::from_str(r#"{"b":1,"a":{"d":1,"c":2}}"#).unwrap_or_default();
        assert_eq!(
            serde_json::to_string(&v).unwrap_or_default(),
            r#"{"a":{"c":2,"d":1},"b":1}"#
        );
    }

    #[test]
    fn source_version_is_a_string() {
        for (v, want) in [
            (json!("2"), "2"),
            (json!(2), "2"),
            (json!(2.5), "2.5"),
            (json!("3"), "3"),
        ] {
            let d = with(bare("acw", body()), &["version"], Some(v));
            assert_eq!(ev_of(&d).source_version, want);
        }
        let d = with(bare("acw", body()), &["version"], None);
        let ev = ev_of(&d);
        assert_eq!(ev.source_version, "");
        assert!(!ev.notes.newer_version);
        let d = with(bare("acw", body()), &["version"], Some(json!(4)));
        assert!(ev_of(&d).notes.newer_version);
    }

    #[test]
    fn projection_fields_and_extras() {
        let b = with(body(), &["wrapupNotes"], Some(json!("call me")));
        let b = with(b, &["conversationExternalContactIds"], Some(json!(["x"])));
        let b = with(
            b,
            &["futureThing"],
            Some(json!({"nested": {"keep": [1, 2]}})),
        );
        let b = with(b, &["divisionId"], Some(json!("not-an-acw-field")));
        let d = with(bare("acw", b), &["futureDetailField"], Some(json!(1)));
        let ev = ev_of(&d);
        assert_eq!(ev.payload.fields_map()["wrapup_notes"], json!("call me"));
        assert_eq!(
            ev.payload.fields_map()["conversation_external_contact_ids"],
            json!(["x"])
        );
        assert_eq!(ev.payload.fields_map()["wrapup_code"], Value::Null);
        assert!(!ev.payload.fields_map().contains_key("wrapupNotes"));
        assert_eq!(
            ev.payload.extras_map()["futureThing"],
            json!({"nested": {"keep": [1, 2]}})
        );
        assert_eq!(
            ev.payload.extras_map()["divisionId"],
            json!("not-an-acw-field")
        ); // known, not for acw
        assert_eq!(
            ev.payload.extras_map()["detail.futureDetailField"],
            json!(1)
        );
        assert_eq!(ev.payload.extras_map().len(), 3);
        // Header ids go to their slots whatever the kind.
        let b = with(body(), &["userId"], Some(json!("u-1")));
        let ev = ev_of(&bare("acd.end", b));
        assert_eq!(ev.user_id.as_deref(), Some("u-1"));
        assert!(!ev.payload.extras_map().contains_key("userId"));
        // Envelope extras: replay-name and unknown envelope keys, prefixed.
        let e = with(envelope("acw", body()), &["replay-name"], Some(json!("r1")));
        let e = with(e, &["futureEnvelopeKey"], Some(json!(true)));
        let ev = ev_of(&e);
        assert_eq!(ev.payload.extras_map()["envelope.replay-name"], json!("r1"));
        assert_eq!(
            ev.payload.extras_map()["envelope.futureEnvelopeKey"],
            json!(true)
        );
        assert_eq!(ev.payload.extras_map().len(), 2);
    }

    #[test]
    fn notes() {
        let b = json!({"eventTime": 1, "conversationId": CONV});
        let ev = ev_of(&bare("user.end", b.clone()));
        assert_eq!(
            ev.notes.missing_optional,
            [
                "participant_id",
                "session_id",
                "media_type",
                "direction",
                "queue_id",
                "user_id"
            ]
        );
        let ev = ev_of(&bare("attributes", b));
        assert_eq!(ev.notes.missing_optional, ["participant_id"]);
        let b = with(body(), &["mediaType"], Some(json!("HOLOGRAM")));
        let b = with(b, &["disconnectType"], Some(json!("WORMHOLE")));
        let ev = ev_of(&bare("customer.end", b));
        assert_eq!(
            ev.notes.unknown_enum_values,
            ["media_type", "disconnect_type"]
        );
        assert_eq!(ev.media_type.as_deref(), Some("HOLOGRAM"));
        assert_eq!(
            ev.payload.fields_map()["disconnect_type"],
            json!("WORMHOLE")
        );
    }

    #[test]
    fn lineage_and_copied_fields() {
        let bytes = serde_json::to_vec(&envelope("acw", body())).unwrap_or_default();
        let mut inp = input(&bytes);
        let mut out = Vec::new();
        decode_record(&inp, &mut out);
        let ev = out[0]
            .as_event()
            .cloned()
            .unwrap_or_else(|| panic!("{out:?}"));
        assert_eq!(ev.lineage.token, "corr-1");
        assert!(ev.lineage.hops.is_empty() && ev.lineage.masked_fields.is_empty());
        assert_eq!(ev.source, source());
        assert_eq!(ev.record_timestamp_ms, Some(1_765_551_001_000));
        assert_eq!(ev.ticket, 7);
        // The header wins; an empty header does not count.
        inp.header_lineage_token = Some("hdr-token");
        out.clear();
        decode_record(&inp, &mut out);
        assert_eq!(
            out[0].as_event().map(|e| e.lineage.token.as_str()),
            Some("hdr-token")
        );
        inp.header_lineage_token = Some("");
        out.clear();
        decode_record(&inp, &mut out);
        assert_eq!(
            out[0].as_event().map(|e| e.lineage.token.as_str()),
            Some("corr-1")
        );
        // Nor does an absurdly long one (it would ride in every header).
        let huge = "t".repeat(MAX_LINEAGE_TOKEN_LEN + 1);
        inp.header_lineage_token = Some(&huge);
        out.clear();
        decode_record(&inp, &mut out);
        assert_eq!(
            out[0].as_event().map(|e| e.lineage.token.as_str()),
            Some("corr-1")
        );
        // Generated: UUIDv5 of topic/partition/offset/index, stable on replay.
        let e = with(envelope("acw", body()), &["detail", "metadata"], None);
        let line = serde_json::to_vec(&e).unwrap_or_default();
        let mut two = line.clone();
        two.push(b'\n');
        two.extend_from_slice(&line);
        let evs = events(&two);
        let want0 =
            uuid::Uuid::new_v5(&LINEAGE_NAMESPACE, b"genesys.bronze.events/3/42/0").to_string();
        assert_eq!(evs[0].lineage.token, want0);
        assert_eq!(evs[1].lineage.token, generated_token(&source(), 1));
        assert_ne!(evs[0].lineage.token, evs[1].lineage.token);
        assert_eq!(events(&two)[1].lineage.token, evs[1].lineage.token);
        assert_eq!(
            LINEAGE_NAMESPACE,
            uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, b"urn:cxstream:lineage-token")
        );
        // Rejections get the same treatment, CorrelationId included once the
        // detail object was found.
        assert_eq!(
            rejection(b"nope").lineage_token,
            Some(generated_token(&source(), 0))
        );
        let d = with(bare("acw", body()), &["eventBody"], None);
        let r = rejection(&serde_json::to_vec(&d).unwrap_or_default());
        assert_eq!(
            (r.class, r.lineage_token.as_deref()),
            (RejectClass::UnknownShape, Some("corr-1"))
        );
    }

    // ---------------------------------------------------------- splitting

    #[test]
    fn splitting_edge_cases() {
        let one = serde_json::to_string(&bare("acw", body())).unwrap_or_default();
        // Whitespace around a single object: the event covers the whole value.
        let padded = format!("\n  {one}  \n");
        assert_eq!(event(padded.as_bytes()).raw, 0..padded.len());
        // Empty and whitespace-only records: one rejection.
        for v in ["", "   \n"] {
            let r = rejection(v.as_bytes());
            assert_eq!((r.class, r.bytes), (RejectClass::NotJson, 0..v.len()));
        }
        // Empty array, scalars, nested arrays.
        assert_eq!(rejection(b"[]").class, RejectClass::NotAnObject);
        assert_eq!(rejection(b"42").class, RejectClass::NotAnObject);
        assert_eq!(rejection(b"null").class, RejectClass::NotAnObject);
        let mixed = format!("[{one}, 7, [\"x\"], {one}]");
        let out = decode(mixed.as_bytes());
        assert_eq!(out.len(), 4);
        assert_ranges_ok(&out, mixed.len());
        assert!(out[0].as_event().is_some() && out[3].as_event().is_some());
        assert_eq!(
            out[1]
                .as_rejection()
                .map(|r| (r.class, &mixed[r.bytes.clone()])),
            Some((RejectClass::NotAnObject, "7"))
        );
        assert_eq!(
            out[2].as_rejection().map(|r| &mixed[r.bytes.clone()]),
            Some("[\"x\"]")
        );
        // A single-element array: the element's own bytes.
        let arr = format!("[{one}]");
        assert_eq!(event(arr.as_bytes()).raw, 1..arr.len() - 1);
        // Objects then garbage: garbage is one rejection covering the rest.
        let g = format!("{one}{one} }} trailing {{");
        let out = decode(g.as_bytes());
        assert_eq!(out.len(), 3);
        assert_eq!(
            out[2].as_rejection().map(|r| r.bytes.clone()),
            Some(2 * one.len() + 1..g.len())
        );
        // Garbage first: the whole record.
        let r = rejection(format!("x{one}").as_bytes());
        assert_eq!((r.class, r.bytes.start), (RejectClass::NotJson, 0));
        // Invalid UTF-8 inside a string.
        let bad = b"{\"topicName\": \"\xff\xfe\"}";
        assert_eq!(rejection(bad).class, RejectClass::NotJson);
        // Deep nesting hits serde_json's recursion limit, not the stack.
        let deep = "[".repeat(100_000);
        assert_eq!(rejection(deep.as_bytes()).class, RejectClass::NotJson);
        // Objects that are not events.
        assert_eq!(rejection(b"{}").class, RejectClass::UnknownShape);
        assert_eq!(
            rejection(br#"{"detail": {}}"#).class,
            RejectClass::UnknownShape
        );
        assert_eq!(
            rejection(br#"{"topicName": "x"}"#).class,
            RejectClass::UnknownShape
        );
    }

    #[test]
    fn appends_after_existing_outputs() {
        let bytes = serde_json::to_vec(&bare("acw", body())).unwrap_or_default();
        let mut out = vec![Decoded::Rejected(Rejection {
            class: RejectClass::NotJson,
            message: String::new(),
            bytes: 0..0,
            lineage_token: None,
        })];
        decode_record(&input(&bytes), &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[1].as_event().map(|e| e.raw.clone()),
            Some(0..bytes.len())
        );
    }

    // ------------------------------------------- the two readers agree

    /// Decodes `value` with the fast scanner allowed and with serde_json
    /// only, and requires the same units, and silver records equal to what
    /// serde_json writes for their fields (see `lineage`'s reference).
    fn assert_readers_agree(value: &[u8]) {
        let fast = decode(value);
        let mut slow = Vec::new();
        decode_units(&input(value), &mut slow, false);
        assert_eq!(fast, slow, "{}", String::from_utf8_lossy(value));
        for ev in fast.iter().filter_map(Decoded::as_event) {
            crate::operators::lineage::tests::assert_encodes_like_reference(ev, None);
        }
    }

    #[test]
    fn fixtures_decode_alike_with_both_readers() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/input");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let bytes = std::fs::read(entry.path()).unwrap_or_default();
            assert_readers_agree(&bytes);
            n += 1;
        }
        assert!(n >= 42);
    }

    #[test]
    fn generated_traffic_decodes_alike_with_both_readers() {
        use crate::generate::{GenConfig, Generator, VersionMix};
        for (seed, drift) in [(1, 10.0), (2, 40.0)] {
            let records = Generator::new(GenConfig {
                interactions: 300,
                seed,
                malformed_pct: 5.0,
                batch_pct: 10.0,
                version_mix: VersionMix {
                    iso_time_pct: drift,
                    numeric_string_time_pct: drift,
                    old_sdk_pct: drift,
                    future_pct: drift,
                },
                collect_truth: false,
                ..GenConfig::default()
            });
            let mut n = 0;
            for r in records {
                assert_readers_agree(&r.value);
                n += 1;
            }
            assert!(n > 1000, "{n}");
        }
    }

    /// Generated records with a few bytes replaced, dropped or inserted:
    /// broken JSON, wrong types, odd escapes.
    #[test]
    fn damaged_records_decode_alike_with_both_readers() {
        use crate::generate::{GenConfig, Generator};
        let records: Vec<Vec<u8>> = Generator::new(GenConfig {
            interactions: 40,
            seed: 9,
            collect_truth: false,
            ..GenConfig::default()
        })
        .map(|r| r.value)
        .collect();
        let pieces: [&[u8]; 12] = [
            b"\"",
            b"{",
            b"}",
            b"[",
            b",",
            b":",
            b"\\u00e9",
            b"\\\"",
            b"null",
            b"1e400",
            b"\"k\":1,",
            b"-0",
        ];
        let mut seed: u64 = 0x5eed;
        let mut next = |n: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as usize) % n.max(1)
        };
        for r in &records {
            for _ in 0..6 {
                let mut v = r.clone();
                for _ in 0..1 + next(3) {
                    let at = next(v.len());
                    match next(3) {
                        0 => {
                            v.remove(at.min(v.len().saturating_sub(1)));
                        }
                        1 => {
                            let p = pieces[next(pieces.len())];
                            v.splice(at..at, p.iter().copied());
                        }
                        _ => {
                            let p = pieces[next(pieces.len())];
                            let end = (at + p.len()).min(v.len());
                            v.splice(at..end, p.iter().copied());
                        }
                    }
                }
                assert_readers_agree(&v);
            }
        }
    }

    fn piece() -> impl Strategy<Value = String> {
        let ev = serde_json::to_string(&envelope("acd.end", body())).unwrap_or_default();
        let bare_ev = serde_json::to_string(&bare("wrapup", body())).unwrap_or_default();
        prop_oneof![
            Just(ev.clone()),
            Just(bare_ev.clone()),
            Just(format!("[{ev},{bare_ev}]")),
            Just("[]".to_string()),
            Just("17".to_string()),
            Just("{}".to_string()),
            Just(ev[..ev.len() / 2].to_string()),
            "[ -~]{0,12}",
        ]
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            "[ -~]{0,24}".prop_map(Value::from),
            Just(json!("2021-04-2T15:30:51.418Z")),
            Just(json!("2022-04-06T09:30:44.949+02:00")),
            Just(json!("1649237444949")),
            Just(json!(format!("{DETAIL_TOPIC_PREFIX}{CONV}.acd.end"))),
            Just(json!(CONV)),
            Just(json!([1, "x", null])),
            Just(json!({"k": "v"})),
        ]
    }

    proptest! {
        #[test]
        fn any_field_value_decodes_or_rejects(
            subs in proptest::collection::vec((0usize..14, leaf()), 0..6),
        ) {
            let paths: [&[&str]; 14] = [
                &["id"], &["detail-type"], &["detail"], &["replay-name"],
                &["detail", "topicName"], &["detail", "version"], &["detail", "eventBody"],
                &["detail", "metadata"], &["detail", "eventBody", "eventTime"],
                &["detail", "eventBody", "conversationId"], &["detail", "eventBody", "mediaType"],
                &["detail", "eventBody", "participantId"], &["detail", "eventBody", "disconnectType"],
                &["detail", "eventBody", "requestedRoutings"],
            ];
            let mut e = envelope("acd.end", body());
            for (i, v) in subs {
                e = with(e, paths[i], Some(v));
            }
            let bytes = serde_json::to_vec(&e).unwrap_or_default();
            assert_readers_agree(&bytes);
            let out = decode(&bytes);
            prop_assert_eq!(out.len(), 1);
            assert_ranges_ok(&out, bytes.len());
            assert_no_values_in_messages(&bytes, &out);
            if let Some(ev) = out[0].as_event() {
                prop_assert!((0..=upcast::MAX_EVENT_TIME_MS).contains(&ev.event_time_ms));
                prop_assert_eq!(ev.raw.clone(), 0..bytes.len());
            }
        }

        #[test]
        fn never_panics_and_ranges_stay_inside(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            assert_readers_agree(&bytes);
            let out = decode(&bytes);
            prop_assert!(!out.is_empty());
            assert_ranges_ok(&out, bytes.len());
        }

        #[test]
        fn mixed_records_account_for_every_unit(
            pieces in proptest::collection::vec(piece(), 1..6),
            seps in proptest::collection::vec(prop_oneof![Just(""), Just("\n"), Just(" \r\n\t")], 6),
        ) {
            let mut s = String::new();
            for (p, sep) in pieces.iter().zip(&seps) {
                s.push_str(p);
                s.push_str(sep);
            }
            assert_readers_agree(s.as_bytes());
            let out = decode(s.as_bytes());
            prop_assert!(!out.is_empty());
            assert_ranges_ok(&out, s.len());
            // Every event's bytes decode again to the same event.
            for ev in out.iter().filter_map(Decoded::as_event) {
                let again = decode(&s.as_bytes()[ev.raw.clone()]);
                let first = again.first().and_then(Decoded::as_event).map(|e| e.content_fp);
                prop_assert_eq!(first, Some(ev.content_fp));
            }
        }
    }
}
