//! The canonical event model shared by every operator.
//!
//! Nothing here knows about Kafka: a [`SourceRef`] is plain data (topic,
//! partition, offset) and a [`Ticket`] is an opaque number the runtime uses to
//! know when everything derived from an input record has been delivered.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::json::{parse_canonical, str_content, write_json_str};

/// The processor name written into every lineage hop.
pub const PROCESSOR: &str = "cxstream";
/// The processor version written into every lineage hop.
pub const PROCESSOR_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Version of the lineage block (`lineage.version`).
pub const LINEAGE_VERSION: u32 = 1;
/// Version of the canonical silver record (`schema_version`), see `schemas/silver/`.
pub const SILVER_SCHEMA_VERSION: u32 = 1;

/// A 128-bit fingerprint (dedup keys). Not a secret, not reversible to PII
/// in practice, but never written to outputs either.
pub type Fingerprint = u128;

/// Opaque handle the runtime attaches to every event so that it can tell when
/// all outputs derived from one input record were acknowledged. Operators
/// carry it along and never interpret it.
pub type Ticket = u64;

/// Conversation detail-event kinds: the topic suffix after
/// `v2.detail.events.conversation.{id}.`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    CustomerStart,
    CustomerEnd,
    AcdStart,
    AcdEnd,
    UserStart,
    UserEnd,
    Acw,
    Wrapup,
    Outbound,
    FlowStart,
    FlowEnd,
    FlowOutcome,
    Attributes,
    Contact,
    VoicemailStart,
    VoicemailEnd,
}

impl EventKind {
    /// Every kind, in lifecycle order.
    pub const ALL: [EventKind; 16] = [
        EventKind::CustomerStart,
        EventKind::Outbound,
        EventKind::FlowStart,
        EventKind::FlowOutcome,
        EventKind::FlowEnd,
        EventKind::AcdStart,
        EventKind::UserStart,
        EventKind::AcdEnd,
        EventKind::Attributes,
        EventKind::Contact,
        EventKind::VoicemailStart,
        EventKind::VoicemailEnd,
        EventKind::UserEnd,
        EventKind::Acw,
        EventKind::Wrapup,
        EventKind::CustomerEnd,
    ];

    /// The topic suffix, also the silver `event_type` (e.g. `"acd.end"`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::CustomerStart => "customer.start",
            EventKind::CustomerEnd => "customer.end",
            EventKind::AcdStart => "acd.start",
            EventKind::AcdEnd => "acd.end",
            EventKind::UserStart => "user.start",
            EventKind::UserEnd => "user.end",
            EventKind::Acw => "acw",
            EventKind::Wrapup => "wrapup",
            EventKind::Outbound => "outbound",
            EventKind::FlowStart => "flow.start",
            EventKind::FlowEnd => "flow.end",
            EventKind::FlowOutcome => "flow.outcome",
            EventKind::Attributes => "attributes",
            EventKind::Contact => "contact",
            EventKind::VoicemailStart => "voicemail.start",
            EventKind::VoicemailEnd => "voicemail.end",
        }
    }

    /// Parses a topic suffix such as `"acd.end"`.
    pub fn from_suffix(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Tie-break for events of one interaction with the same event time:
    /// starts sort before updates, updates before ends, and the customer end
    /// last of all.
    pub fn rank(self) -> u8 {
        match self {
            EventKind::CustomerStart | EventKind::Outbound => 0,
            EventKind::FlowStart
            | EventKind::AcdStart
            | EventKind::UserStart
            | EventKind::VoicemailStart => 1,
            EventKind::FlowOutcome | EventKind::Attributes | EventKind::Contact => 2,
            EventKind::FlowEnd
            | EventKind::AcdEnd
            | EventKind::UserEnd
            | EventKind::VoicemailEnd => 3,
            EventKind::Acw | EventKind::Wrapup => 4,
            EventKind::CustomerEnd => 5,
        }
    }

    /// True for the event that closes an interaction (`customer.end`).
    pub fn ends_interaction(self) -> bool {
        self == EventKind::CustomerEnd
    }
}

/// Where an input record was read: the coordinates written into lineage hops
/// and dead-letter headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceRef {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
}

/// One processing step in an event's lineage.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Hop {
    pub processor: String,
    pub version: String,
    pub stage: String,
    pub topology: String,
    /// UTC ISO-8601 with milliseconds.
    pub processed_at: String,
    pub status: String,
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
}

/// The lineage carried by an event from ingestion to every output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lineage {
    /// Taken from the input (header `cx.lineage.token`, else
    /// `detail.metadata.CorrelationId`) or generated at ingestion.
    pub token: String,
    /// Hops of earlier stages (e.g. the ingest hop of a repartitioned event).
    pub hops: Vec<Hop>,
    /// Field paths the masking operator changed (`"ani"`, `"attributes.email"`…).
    pub masked_fields: Vec<Cow<'static, str>>,
}

/// What decode noticed about an event that is not an error: counted in
/// metrics, never attached to outputs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodeNotes {
    /// Common optional fields that were absent (static names, no values).
    pub missing_optional: Vec<&'static str>,
    /// `detail.version` was newer than any version this build knows.
    pub newer_version: bool,
    /// Enum fields whose value is not in the known set (kept as is).
    pub unknown_enum_values: Vec<&'static str>,
    /// Names of the upcast steps that changed something.
    pub upcast_steps: Vec<&'static str>,
}

/// A decoded, validated event in canonical form.
///
/// PII is still present until the mask operator has run on it; only the
/// runtime's in-memory buffers ever hold an unmasked `Event`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The EventBridge envelope `id` when there was one, else a deterministic
    /// id derived from the content fingerprint (`"fp-<32 hex>"`).
    pub event_id: String,
    /// The conversation id.
    pub interaction_id: String,
    pub kind: EventKind,
    /// Event time, epoch milliseconds UTC.
    pub event_time_ms: i64,
    /// `detail.version` as given (e.g. `"2"`; a known version is shared,
    /// not copied).
    pub source_version: Cow<'static, str>,
    /// Enum-valued: a known value is shared, not copied.
    pub media_type: Option<Cow<'static, str>>,
    /// Enum-valued: a known value is shared, not copied.
    pub direction: Option<Cow<'static, str>>,
    pub participant_id: Option<String>,
    pub session_id: Option<String>,
    pub queue_id: Option<String>,
    pub user_id: Option<String>,
    /// The kind's own known fields (snake_case names, values as received
    /// after upcasting; PII lives here until masked) and the extras (fields
    /// this build does not know, original names, never dropped), as
    /// canonical JSON text.
    pub payload: Payload,
    /// Content fingerprint: topic name plus canonical `eventBody`.
    pub content_fp: Fingerprint,
    /// Fingerprint of the envelope id, when there was one.
    pub id_fp: Option<Fingerprint>,
    pub lineage: Lineage,
    /// Where this event's record was read (the input or the repartition topic).
    pub source: SourceRef,
    /// Byte range of this event's own JSON object within the record value
    /// (`DecodeInput::value`): the whole value for a single-event record, one
    /// object's bytes for a multi-event record. The runtime forwards exactly
    /// these bytes when the event must be repartitioned.
    pub raw: std::ops::Range<usize>,
    /// Kafka timestamp of the input record (epoch ms), for latency metrics.
    pub record_timestamp_ms: Option<i64>,
    pub notes: DecodeNotes,
    /// Runtime handle; see [`Ticket`].
    pub ticket: Ticket,
}

/// A byte range of a [`Payload`]'s text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// One known field of a [`Payload`]: its canonical name and value.
#[derive(Debug, Clone)]
struct FieldSlot {
    name: Cow<'static, str>,
    /// `None` for null.
    value: Option<Span>,
}

/// One extra of a [`Payload`]: its key as a JSON string literal, its value.
#[derive(Debug, Clone)]
struct ExtraSlot {
    key: Span,
    value: Span,
}

/// An event's kind fields and extras, kept as the JSON text they are
/// written with: each value's canonical text (serde_json's compact form,
/// object keys sorted, the form `serde_json::to_string` gives) in one
/// buffer, so decode writes it once and encoding a silver record copies it.
///
/// Fields are held sorted by name and extras sorted by key, each name or
/// key once, like the `serde_json::Map`s they replace. A value is changed
/// by appending its new text (the buffer only grows, by a masked token or
/// so per field).
#[derive(Debug, Clone, Default)]
pub struct Payload {
    text: String,
    fields: Vec<FieldSlot>,
    extras: Vec<ExtraSlot>,
}

const NULL_TEXT: &str = "null";

impl Payload {
    /// A payload whose buffer starts with `text`, with room for `fields`
    /// fields; spans pushed with [`Self::push_field`] and
    /// [`Self::push_extra`] point into it.
    pub fn with_text(text: String, fields: usize) -> Payload {
        Payload {
            text,
            fields: Vec::with_capacity(fields),
            extras: Vec::new(),
        }
    }

    /// The text of `span`.
    fn get(&self, span: Span) -> &str {
        self.text.get(span.start..span.end).unwrap_or(NULL_TEXT)
    }

    /// Appends text written by `write` and returns its span.
    pub fn append(&mut self, write: impl FnOnce(&mut String)) -> Span {
        let start = self.text.len();
        write(&mut self.text);
        Span {
            start,
            end: self.text.len(),
        }
    }

    /// Adds a field named by the field tables (`value` `None` for null):
    /// `name` must be plain (no character JSON escapes). Fields must be
    /// pushed in name order, each name once.
    pub fn push_field(&mut self, name: &'static str, value: Option<Span>) {
        self.fields.push(FieldSlot {
            name: Cow::Borrowed(name),
            value,
        });
    }

    /// Adds an extra: `key` spans a JSON string literal. Extras must be
    /// pushed in key order, each key once.
    pub fn push_extra(&mut self, key: Span, value: Span) {
        self.extras.push(ExtraSlot { key, value });
    }

    /// The fields as `(name, needs escaping, JSON text)`, in name order: a
    /// name from the field tables (`&'static`) is plain snake_case and is
    /// written as it is.
    pub fn fields_for_encoding(&self) -> impl Iterator<Item = (&str, bool, &str)> + '_ {
        self.fields.iter().map(|f| {
            let plain = matches!(f.name, Cow::Borrowed(_));
            (
                f.name.as_ref(),
                !plain,
                f.value.map_or(NULL_TEXT, |s| self.get(s)),
            )
        })
    }

    /// The fields as `(name, JSON text)`, in name order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.fields
            .iter()
            .map(|f| (f.name.as_ref(), f.value.map_or(NULL_TEXT, |s| self.get(s))))
    }

    /// Size of the text buffer (an upper bound of the JSON it holds).
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// Number of fields.
    pub fn field_count(&self) -> usize {
        self.fields.len()
    }

    /// Position of the field `name`.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields
            .binary_search_by(|f| f.name.as_ref().cmp(name))
            .ok()
    }

    /// JSON text of the field at `index` (`"null"` for null).
    pub fn field_json(&self, index: usize) -> Option<&str> {
        let f = self.fields.get(index)?;
        Some(f.value.map_or(NULL_TEXT, |s| self.get(s)))
    }

    /// Replaces the value of the field at `index` with the JSON text
    /// `write` appends.
    pub fn set_field_json(&mut self, index: usize, write: impl FnOnce(&mut String)) {
        let span = self.append(write);
        if let Some(f) = self.fields.get_mut(index) {
            f.value = Some(span);
        }
    }

    /// Replaces the value of the field at `index` with the string `s`.
    pub fn set_field_str(&mut self, index: usize, s: &str) {
        self.set_field_json(index, |out| write_json_str(out, s));
    }

    /// The value of the field at `index`, read back exactly (see
    /// [`parse_canonical`]).
    pub fn field_value(&self, index: usize) -> Option<Value> {
        parse_canonical(self.field_json(index)?)
    }

    /// The value of the field `name` (tests, rare paths).
    pub fn field(&self, name: &str) -> Option<Value> {
        self.field_value(self.field_index(name)?)
    }

    /// The fields as a map.
    pub fn fields_map(&self) -> Map<String, Value> {
        self.fields()
            .map(|(k, v)| (k.to_owned(), parse_canonical(v).unwrap_or_default()))
            .collect()
    }

    /// True when there are extras.
    pub fn has_extras(&self) -> bool {
        !self.extras.is_empty()
    }

    /// The extras as `(key as a JSON string literal, value JSON text)`, in
    /// key order.
    pub fn extras(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.extras
            .iter()
            .map(|e| (self.get(e.key), self.get(e.value)))
    }

    /// The extras as a map.
    pub fn extras_map(&self) -> Map<String, Value> {
        self.extras()
            .map(|(k, v)| {
                let key = str_content(k).map(Cow::into_owned).unwrap_or_default();
                (key, parse_canonical(v).unwrap_or_default())
            })
            .collect()
    }

    /// The value of the extra `key` (tests, rare paths).
    pub fn extra(&self, key: &str) -> Option<Value> {
        self.extras_map().remove(key)
    }

    /// Replaces every extra with the members of `map`.
    pub fn set_extras(&mut self, map: &Map<String, Value>) {
        self.extras.clear();
        for (k, v) in map {
            let key = self.append(|out| write_json_str(out, k));
            let value = self.append(|out| write_value(out, v));
            self.extras.push(ExtraSlot { key, value });
        }
    }

    /// A payload holding these fields and extras (tests, tools).
    pub fn from_maps(fields: &Map<String, Value>, extras: &Map<String, Value>) -> Payload {
        let mut p = Payload::default();
        for (name, v) in fields {
            let value = (!v.is_null()).then(|| p.append(|out| write_value(out, v)));
            p.fields.push(FieldSlot {
                name: Cow::Owned(name.clone()),
                value,
            });
        }
        p.set_extras(extras);
        p
    }
}

/// Two payloads are equal when their fields and extras are, whatever the
/// buffers hold besides.
impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.fields().eq(other.fields()) && self.extras().eq(other.extras())
    }
}

/// Appends the canonical text of `v` (`serde_json::to_string`).
pub fn write_value(out: &mut String, v: &Value) {
    out.push_str(&v.to_string());
}

/// Formats epoch milliseconds as UTC ISO-8601 with milliseconds
/// (`2022-04-06T09:30:44.949Z`). Out-of-range values are clamped to the
/// representable range rather than panicking.
pub fn format_iso_ms(ms: i64) -> String {
    let mut out = String::with_capacity(24);
    write_iso_ms(&mut out, ms);
    out
}

/// Parses an ISO-8601 / RFC 3339 time to epoch milliseconds; `None` when
/// it is not one or is out of range.
pub fn parse_iso_ms(s: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    let t = time::OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

/// [`format_iso_ms`] appended to `out`, without the formatting machinery
/// (it runs for every silver record and every hop).
pub fn write_iso_ms(out: &mut String, ms: i64) {
    use time::OffsetDateTime;
    let nanos = i128::from(ms) * 1_000_000;
    let dt = OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(if ms < 0 {
        OffsetDateTime::UNIX_EPOCH
    } else {
        time::macros::datetime!(9999-12-31 23:59:59.999 UTC)
    });
    // Years before 0 (representable, never an event time) as the epoch.
    let dt = if dt.year() < 0 {
        OffsetDateTime::UNIX_EPOCH
    } else {
        dt
    };
    let year = u32::try_from(dt.year()).unwrap_or(0);
    let mut buf = [0u8; 24];
    let mut put = |at: usize, width: usize, mut v: u32| {
        for i in (at..at + width).rev() {
            if let Some(b) = buf.get_mut(i) {
                *b = b'0' + (v % 10) as u8;
            }
            v /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, u32::from(u8::from(dt.month())));
    put(8, 2, u32::from(dt.day()));
    put(11, 2, u32::from(dt.hour()));
    put(14, 2, u32::from(dt.minute()));
    put(17, 2, u32::from(dt.second()));
    put(20, 3, u32::from(dt.millisecond()));
    for (i, c) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (23, b'Z'),
    ] {
        buf[i] = c;
    }
    // Only ASCII digits and separators were written.
    out.push_str(std::str::from_utf8(&buf).unwrap_or_default());
}

/// Current wall-clock time as epoch milliseconds.
pub fn now_ms() -> i64 {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_suffix() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::from_suffix(k.as_str()), Some(k));
        }
        assert_eq!(EventKind::from_suffix("acd.middle"), None);
    }

    #[test]
    fn iso_formatting_has_millisecond_precision() {
        assert_eq!(format_iso_ms(1_649_237_444_949), "2022-04-06T09:30:44.949Z");
        assert_eq!(format_iso_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_iso_ms(-5), "1969-12-31T23:59:59.995Z");
        // Out of range: clamped, not a panic.
        assert_eq!(format_iso_ms(i64::MIN), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_iso_ms(i64::MAX), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn iso_formatting_matches_the_time_crate_over_a_range_of_instants() {
        let fmt = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        let mut ms: i64 = 1;
        while ms < 253_402_300_799_999 {
            let dt = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .expect("in range");
            assert_eq!(format_iso_ms(ms), dt.format(&fmt).expect("formats"), "{ms}");
            ms = ms * 3 + 7;
        }
    }
}
