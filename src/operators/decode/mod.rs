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
//! 7. upcast ([`super::upcast`]): a chain of small versioned steps on a [`Body`];
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
mod tests;
