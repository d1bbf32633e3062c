//! Versioned upcasting of Genesys `eventBody` objects to the canonical shape.
//!
//! Decode (see `decode.rs`) unwraps the record (EventBridge envelope → detail
//! object → `eventBody`), checks the required fields and then calls
//! [`upcast`], which runs [`CHAIN`]: a list of small, independent steps. Each
//! step takes the body in Genesys spelling (camelCase) and returns whether it
//! changed anything; changed steps are listed in `DecodeNotes::upcast_steps`.
//! After the chain, decode projects the body onto the canonical silver fields
//! with the tables in this module ([`HEADER_FIELDS`], [`KNOWN_FIELDS`]).
//!
//! # Versions
//!
//! `detail.version` is `"2"` for every detail event Genesys has published
//! (reference §1.4; all official and third-party samples). The canonical form
//! is the latest known version. A step carries `applies_below`: `Some(n)`
//! runs only for inputs older than version `n` (a migration), `None` runs
//! for every version (a representation fix). A missing or non-numeric
//! `detail.version` is treated as the latest known version.
//!
//! Adding Genesys detail version 3 is: add `"3"` to
//! `decode::KNOWN_DETAIL_VERSIONS`, update the field tables to the v3 names,
//! write `fn v2_to_v3_xxx(body, kind) -> bool` and add one line
//! `Step { name: "v2_to_v3_xxx", applies_below: Some(3), source: "…", run: v2_to_v3_xxx }`.
//! `schemas/README.md` describes the same chain.

use serde_json::{Map, Value};

use crate::model::{DecodeNotes, EventKind};

use super::decode::KNOWN_DETAIL_VERSIONS;

// ---------------------------------------------------------------------------
// Kind sets
// ---------------------------------------------------------------------------

/// A set of [`EventKind`]s as a bit mask (one bit per kind).
pub type KindSet = u16;

/// The bit of one kind in a [`KindSet`].
pub const fn kind_bit(kind: EventKind) -> KindSet {
    1 << match kind {
        EventKind::CustomerStart => 0,
        EventKind::CustomerEnd => 1,
        EventKind::AcdStart => 2,
        EventKind::AcdEnd => 3,
        EventKind::UserStart => 4,
        EventKind::UserEnd => 5,
        EventKind::Acw => 6,
        EventKind::Wrapup => 7,
        EventKind::Outbound => 8,
        EventKind::FlowStart => 9,
        EventKind::FlowEnd => 10,
        EventKind::FlowOutcome => 11,
        EventKind::Attributes => 12,
        EventKind::Contact => 13,
        EventKind::VoicemailStart => 14,
        EventKind::VoicemailEnd => 15,
    }
}

const CS: KindSet = kind_bit(EventKind::CustomerStart);
const CE: KindSet = kind_bit(EventKind::CustomerEnd);
const AS: KindSet = kind_bit(EventKind::AcdStart);
const AE: KindSet = kind_bit(EventKind::AcdEnd);
const US: KindSet = kind_bit(EventKind::UserStart);
const UE: KindSet = kind_bit(EventKind::UserEnd);
const ACW: KindSet = kind_bit(EventKind::Acw);
const WR: KindSet = kind_bit(EventKind::Wrapup);
const OB: KindSet = kind_bit(EventKind::Outbound);
const FS: KindSet = kind_bit(EventKind::FlowStart);
const FE: KindSet = kind_bit(EventKind::FlowEnd);
const FO: KindSet = kind_bit(EventKind::FlowOutcome);
const AT: KindSet = kind_bit(EventKind::Attributes);
const CO: KindSet = kind_bit(EventKind::Contact);
const VS: KindSet = kind_bit(EventKind::VoicemailStart);
const VE: KindSet = kind_bit(EventKind::VoicemailEnd);

const ALL: KindSet = KindSet::MAX;
/// Every kind but `attributes` (which has no session, media or address data).
const NOT_AT: KindSet = ALL & !AT;
/// Kinds with `addressTo/From`, `subject`, `messageType`.
const ADDR: KindSet = ALL & !(AT | VS | VE);
/// Kinds with the callback fields.
const CB: KindSet = AE | AS | ACW | CO | CE | CS | UE | US | WR;
/// Kinds with `divisionId`.
const DIV: KindSet = ALL & !(ACW | WR | AT);
/// Kinds with `queueId`.
const QUEUE: KindSet = AE | AS | ACW | UE | US | VE | VS | WR;
/// Kinds with `userId`.
const USER: KindSet = ACW | UE | US | VE | VS;
const FLOW: KindSet = FS | FE | FO;

// ---------------------------------------------------------------------------
// Enum value sets
// ---------------------------------------------------------------------------
// Wire values from the Java SDK docs 264.1.0 (`FlowEndDetailEventTopicFlowEndEvent.md`,
// `AcdEndDetailEventTopicAcdEndEvent.md`); the SDK-only `OutdatedSdkVersion`
// placeholder is not a wire value and is left out. Values outside these sets
// are kept as received and only noted (reference §0.3: enums grow).

pub const DISCONNECT_TYPES: &[&str] = &[
    "UNKNOWN",
    "ENDPOINT",
    "CLIENT",
    "SYSTEM",
    "TRANSFER",
    "ERROR",
    "PEER",
    "OTHER",
    "SPAM",
    "TIMEOUT",
    "TRANSPORT_FAILURE",
    "CONFERENCE_TRANSFER",
    "CONSULT_TRANSFER",
    "FORWARD_TRANSFER",
    "NO_ANSWER_TRANSFER",
    "NOT_AVAILABLE_TRANSFER",
    "UNCALLABLE",
    "DND_ENDPOINT",
    "DND_TRANSFER",
    "INACTIVITY",
    "SESSION_EXPIRED",
    "TAKEOVER",
];
pub const MEDIA_TYPES: &[&str] = &[
    "UNKNOWN",
    "VOICE",
    "CHAT",
    "EMAIL",
    "CALLBACK",
    "COBROWSE",
    "VIDEO",
    "SCREENSHARE",
    "MESSAGE",
    "INTERNALMESSAGE",
    "SCREENMONITORING",
];
pub const DIRECTIONS: &[&str] = &["UNKNOWN", "INBOUND", "OUTBOUND"];
pub const MESSAGE_TYPES: &[&str] = &[
    "UNKNOWN",
    "SMS",
    "TWITTER",
    "FACEBOOK",
    "LINE",
    "WHATSAPP",
    "WEBMESSAGING",
    "OPEN",
    "INSTAGRAM",
    "APPLE",
    "LINKEDIN",
];
pub const ACD_OUTCOMES: &[&str] = &["UNKNOWN", "ABANDON", "ANSWERED", "FLOW_OUT"];
pub const ROUTINGS: &[&str] = &[
    "UNKNOWN",
    "MANUAL",
    "PREDICTIVE",
    "PREFERRED",
    "LAST",
    "BULLSEYE",
    "STANDARD",
    "OTHER",
    "CONDITIONAL",
    "VIP",
];
pub const FLOW_TYPES: &[&str] = &[
    "UNKNOWN",
    "INBOUNDCALL",
    "OUTBOUNDCALL",
    "INQUEUECALL",
    "SECURECALL",
    "INBOUNDEMAIL",
    "SURVEYINVITE",
    "INBOUNDSHORTMESSAGE",
    "INBOUNDCHAT",
    "WORKFLOW",
    "BOT",
    "DIGITALBOT",
    "COMMONMODULE",
    "INQUEUEEMAIL",
    "INQUEUESHORTMESSAGE",
    "VOICE",
    "VOICEMAIL",
    "WORKITEM",
    "VOICESURVEY",
];
pub const EXIT_REASONS: &[&str] = &[
    "UNKNOWN",
    "DISCONNECT",
    "FLOW_DISCONNECT",
    "FLOW_ERROR_DISCONNECT",
    "TRANSFER",
    "SESSION_EXPIRE_DISCONNECT",
    "RECOGNITION_FAILURE_DISCONNECT",
    "RECOGNITION_FAILURE_EXIT",
    "USER_EXIT",
    "FLOW_EXIT",
    "FLOW_ERROR_EXIT",
];
pub const TRANSFER_TYPES: &[&str] = &[
    "UNKNOWN",
    "ACD",
    "USER",
    "NUMBER",
    "ACD_VOICEMAIL",
    "USER_VOICEMAIL",
    "GROUP_VOICEMAIL",
    "GROUP",
    "FLOW",
    "SECURE_FLOW",
    "RETURN_TO_AGENT",
];

/// How a field's value is checked against an enum set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnumSpec {
    pub values: &'static [&'static str],
    /// The value is a list of enum values (`requestedRoutings`).
    pub list: bool,
    /// Kinds for which the comparison ignores ASCII case. `acd.end.flowType`
    /// is a plain string in the SDK and arrives lower-case in real data
    /// (reference §3.1, Example B `"inqueuecall"`); it is still not rewritten.
    pub case_insensitive_for: KindSet,
}

impl EnumSpec {
    const fn exact(values: &'static [&'static str]) -> Option<EnumSpec> {
        Some(EnumSpec {
            values,
            list: false,
            case_insensitive_for: 0,
        })
    }

    /// True when `s` is a known value.
    pub fn accepts_str(&self, s: &str, kind: EventKind) -> bool {
        if self.case_insensitive_for & kind_bit(kind) != 0 {
            self.values.iter().any(|k| k.eq_ignore_ascii_case(s))
        } else {
            self.values.contains(&s)
        }
    }

    /// True when `value` is null, a known value or (for list enums) a list
    /// of known values.
    pub fn accepts(&self, value: &Value, kind: EventKind) -> bool {
        let one = |v: &Value| v.as_str().is_some_and(|s| self.accepts_str(s, kind));
        match value {
            Value::Null => true,
            Value::Array(items) if self.list => items.iter().all(one),
            v if !self.list => one(v),
            _ => false,
        }
    }
}

// ---------------------------------------------------------------------------
// Field tables
// ---------------------------------------------------------------------------

/// The JSON type Genesys documents for a field (Go SDK 188.0.0 structs).
/// Used by the schemas and their consistency test; decode keeps values as
/// received and does not enforce these types on kind fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    String,
    Integer,
    Boolean,
    StringList,
    /// `attributes`: map of string to string.
    StringMap,
    Object,
    ObjectList,
}

/// A kind-specific eventBody field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    /// The Genesys name (camelCase).
    pub name: &'static str,
    /// The canonical silver name (snake_case).
    pub canonical: &'static str,
    /// The kinds that define it.
    pub kinds: KindSet,
    pub ty: FieldType,
    pub enum_spec: Option<EnumSpec>,
}

impl FieldSpec {
    pub fn known_for(&self, kind: EventKind) -> bool {
        self.kinds & kind_bit(kind) != 0
    }
}

const fn f(
    name: &'static str,
    canonical: &'static str,
    kinds: KindSet,
    ty: FieldType,
) -> FieldSpec {
    FieldSpec {
        name,
        canonical,
        kinds,
        ty,
        enum_spec: None,
    }
}

const fn e(
    name: &'static str,
    canonical: &'static str,
    kinds: KindSet,
    ty: FieldType,
    enum_spec: Option<EnumSpec>,
) -> FieldSpec {
    FieldSpec {
        name,
        canonical,
        kinds,
        ty,
        enum_spec,
    }
}

/// The common header fields: they go to `Event`'s own slots (never to
/// `fields`) whatever the kind; `kinds` says which kinds define them, for
/// `DecodeNotes::missing_optional`. `conversationId` and `eventTime` are the
/// required fields and are handled by decode itself.
pub const HEADER_FIELDS: &[FieldSpec] = &[
    f("participantId", "participant_id", ALL, FieldType::String),
    f("sessionId", "session_id", NOT_AT, FieldType::String),
    e(
        "mediaType",
        "media_type",
        NOT_AT,
        FieldType::String,
        EnumSpec::exact(MEDIA_TYPES),
    ),
    e(
        "direction",
        "direction",
        NOT_AT,
        FieldType::String,
        EnumSpec::exact(DIRECTIONS),
    ),
    f("queueId", "queue_id", QUEUE, FieldType::String),
    f("userId", "user_id", USER, FieldType::String),
];

/// Kind fields, sorted by Genesys name (binary search). Source: the Go SDK
/// 188.0.0 `platformclientv2/*detaileventtopic*event.go` structs (reference
/// §1.2, §1.3). Every field is optional in the source.
pub const KNOWN_FIELDS: &[FieldSpec] = &[
    e(
        "acdOutcome",
        "acd_outcome",
        AE,
        FieldType::String,
        EnumSpec::exact(ACD_OUTCOMES),
    ),
    f("addressFrom", "address_from", ADDR, FieldType::String),
    f("addressTo", "address_to", ADDR, FieldType::String),
    f(
        "alertingDurationMs",
        "alerting_duration_ms",
        UE,
        FieldType::Integer,
    ),
    f("ani", "ani", NOT_AT, FieldType::String),
    f("answeredUserId", "answered_user_id", AE, FieldType::String),
    f("attributes", "attributes", AT, FieldType::StringMap),
    f(
        "callbackDurationMs",
        "callback_duration_ms",
        UE,
        FieldType::Integer,
    ),
    f(
        "callbackNumbers",
        "callback_numbers",
        CB,
        FieldType::StringList,
    ),
    f(
        "callbackScheduledTime",
        "callback_scheduled_time",
        CB,
        FieldType::Integer,
    ),
    f(
        "callbackUserName",
        "callback_user_name",
        CB,
        FieldType::String,
    ),
    f(
        "communications",
        "communications",
        AT,
        FieldType::ObjectList,
    ),
    f(
        "connectedDurationMs",
        "connected_duration_ms",
        AE | FE,
        FieldType::Integer,
    ),
    f(
        "contactingDurationMs",
        "contacting_duration_ms",
        UE,
        FieldType::Integer,
    ),
    f(
        "conversationExternalContactIds",
        "conversation_external_contact_ids",
        ALL,
        FieldType::StringList,
    ),
    f(
        "conversationExternalOrganizationIds",
        "conversation_external_organization_ids",
        ALL,
        FieldType::StringList,
    ),
    f(
        "dialingDurationMs",
        "dialing_duration_ms",
        UE,
        FieldType::Integer,
    ),
    e(
        "disconnectType",
        "disconnect_type",
        AE | CE | FE | UE | VE,
        FieldType::String,
        EnumSpec::exact(DISCONNECT_TYPES),
    ),
    f("divisionId", "division_id", DIV, FieldType::String),
    f("dnis", "dnis", NOT_AT, FieldType::String),
    e(
        "exitReason",
        "exit_reason",
        FE,
        FieldType::String,
        EnumSpec::exact(EXIT_REASONS),
    ),
    f(
        "externalContactId",
        "external_contact_id",
        CO | CE | CS,
        FieldType::String,
    ),
    f(
        "externalOrganizationId",
        "external_organization_id",
        CO | CE | CS,
        FieldType::String,
    ),
    f("flowId", "flow_id", FLOW, FieldType::String),
    f(
        "flowMilestones",
        "flow_milestones",
        FO,
        FieldType::ObjectList,
    ),
    f(
        "flowOutcomeEndTime",
        "flow_outcome_end_time",
        FO,
        FieldType::Integer,
    ),
    f("flowOutcomeId", "flow_outcome_id", FO, FieldType::String),
    f(
        "flowOutcomeStartTime",
        "flow_outcome_start_time",
        FO,
        FieldType::Integer,
    ),
    f(
        "flowOutcomeValue",
        "flow_outcome_value",
        FO,
        FieldType::String,
    ),
    e(
        "flowType",
        "flow_type",
        AE | FLOW,
        FieldType::String,
        Some(EnumSpec {
            values: FLOW_TYPES,
            list: false,
            case_insensitive_for: AE,
        }),
    ),
    f("flowVersion", "flow_version", FLOW, FieldType::String),
    f("heldDurationMs", "held_duration_ms", UE, FieldType::Integer),
    f(
        "interactingDurationMs",
        "interacting_duration_ms",
        CE | UE,
        FieldType::Integer,
    ),
    f("journeyContext", "journey_context", CS, FieldType::Object),
    e(
        "messageType",
        "message_type",
        ADDR,
        FieldType::String,
        EnumSpec::exact(MESSAGE_TYPES),
    ),
    f(
        "outboundCampaignId",
        "outbound_campaign_id",
        OB,
        FieldType::String,
    ),
    f(
        "outboundContactId",
        "outbound_contact_id",
        OB,
        FieldType::String,
    ),
    f(
        "outboundContactListId",
        "outbound_contact_list_id",
        OB,
        FieldType::String,
    ),
    f("provider", "provider", NOT_AT, FieldType::String),
    f(
        "requestedLanguageId",
        "requested_language_id",
        AE,
        FieldType::String,
    ),
    f(
        "requestedRoutingSkillIds",
        "requested_routing_skill_ids",
        AE | AS,
        FieldType::StringList,
    ),
    f(
        "requestedRoutingUserIds",
        "requested_routing_user_ids",
        AE,
        FieldType::StringList,
    ),
    e(
        "requestedRoutings",
        "requested_routings",
        AE,
        FieldType::StringList,
        Some(EnumSpec {
            values: ROUTINGS,
            list: true,
            case_insensitive_for: 0,
        }),
    ),
    f(
        "requestedSkillExpressionIds",
        "requested_skill_expression_ids",
        AE,
        FieldType::StringList,
    ),
    f(
        "routingPriority",
        "routing_priority",
        AE | AS,
        FieldType::Integer,
    ),
    f(
        "skillExpressionApplied",
        "skill_expression_applied",
        AS,
        FieldType::Boolean,
    ),
    f("subject", "subject", ADDR, FieldType::String),
    e(
        "transferType",
        "transfer_type",
        FE,
        FieldType::String,
        EnumSpec::exact(TRANSFER_TYPES),
    ),
    e(
        "usedRouting",
        "used_routing",
        AE,
        FieldType::String,
        EnumSpec::exact(ROUTINGS),
    ),
    f(
        "utilizationLabel",
        "utilization_label",
        NOT_AT,
        FieldType::String,
    ),
    f(
        "voicemailDurationMs",
        "voicemail_duration_ms",
        VE,
        FieldType::Integer,
    ),
    f("wrapupCode", "wrapup_code", ACW | WR, FieldType::String),
    f(
        "wrapupDurationMs",
        "wrapup_duration_ms",
        ACW | WR,
        FieldType::Integer,
    ),
    f("wrapupNotes", "wrapup_notes", ACW | WR, FieldType::String),
];

/// The kind field with this Genesys name, whatever the kind.
pub fn known_field(name: &str) -> Option<&'static FieldSpec> {
    KNOWN_FIELDS
        .binary_search_by(|f| f.name.cmp(name))
        .ok()
        .and_then(|i| KNOWN_FIELDS.get(i))
}

/// The kind fields of one kind, in table order.
pub fn fields_of(kind: EventKind) -> impl Iterator<Item = &'static FieldSpec> {
    // Computed once per kind: this runs for every event.
    static BY_KIND: std::sync::OnceLock<Vec<Vec<&'static FieldSpec>>> = std::sync::OnceLock::new();
    let by_kind = BY_KIND.get_or_init(|| {
        (0..KindSet::BITS)
            .map(|bit| {
                KNOWN_FIELDS
                    .iter()
                    .filter(|f| f.kinds & (1 << bit) != 0)
                    .collect()
            })
            .collect()
    });
    let bit = kind_bit(kind).trailing_zeros() as usize;
    by_kind.get(bit).into_iter().flatten().copied()
}

// ---------------------------------------------------------------------------
// eventTime
// ---------------------------------------------------------------------------

/// The latest representable event time: 9999-12-31T23:59:59.999Z.
pub const MAX_EVENT_TIME_MS: i64 = 253_402_300_799_999;

/// Why an `eventTime` value cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventTimeError {
    /// Absent or null.
    Missing,
    /// Not a number or a string; carries the JSON type name.
    WrongType(&'static str),
    /// A string that is neither ISO-8601 with an offset nor a decimal number.
    Unparseable,
    /// Before 1970 or after 9999.
    OutOfRange,
}

/// Parses an `eventTime` value to epoch milliseconds: an integer (ms), a
/// float (ms, truncated), a decimal string (ms, truncated) or an ISO-8601 /
/// RFC 3339 string with `Z` or an offset, with or without a fraction. A
/// date-time without an offset is rejected (its zone is unknown), and so is a
/// malformed one such as `2021-04-2T15:30:51.418Z`: never guessed.
pub fn parse_event_time(v: &Value) -> Result<i64, EventTimeError> {
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

// ---------------------------------------------------------------------------
// The chain
// ---------------------------------------------------------------------------

/// One upcast step.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// Stable name, reported in `DecodeNotes::upcast_steps`.
    pub name: &'static str,
    /// `Some(n)`: runs only for inputs whose `detail.version` is below `n`.
    /// `None`: runs for every version.
    pub applies_below: Option<u32>,
    /// Where the drift this step handles was seen.
    pub source: &'static str,
    /// Applies the step; returns true when it changed the body.
    pub run: fn(&mut Map<String, Value>, EventKind) -> bool,
}

impl Step {
    /// Whether the step runs for an input of this version (`None`: unknown,
    /// treated as the latest known version).
    pub fn applies_to(&self, version: Option<f64>) -> bool {
        match self.applies_below {
            None => true,
            Some(n) => version.unwrap_or_else(latest_known_version) < f64::from(n),
        }
    }
}

/// The chain, in order. Input is any accepted eventBody; output is the
/// latest known version's shape with every known field of the kind present.
pub const CHAIN: &[Step] = &[
    Step {
        name: "event_time_to_epoch_ms",
        applies_below: None,
        source: "reference §1.4: the audit topic family sends eventTime as an ISO-8601 \
                 string (UserPresenceChange.json) while detail events send epoch ms; \
                 §3.1: SDKs typed it Integer (v212) then Long (v223). Numeric strings \
                 and float ms: defensive, part of the ingestion contract, not seen in \
                 Genesys data.",
        run: event_time_to_epoch_ms,
    },
    Step {
        name: "fill_absent_known_fields",
        applies_below: None,
        source: "reference §1.2 (every detail-event field is optional) and §3.1 (fields \
                 added over SDK releases: conversationExternal*Ids 100.0.0, utilizationLabel \
                 184.0.0, wrapupNotes 66.0.0, exitReason/transferType 113.0.0, …): events \
                 from older producers lack them. Filled with null so the canonical record \
                 always has every field of its kind.",
        run: fill_absent_known_fields,
    },
];

/// Brings `body` to the canonical shape: runs every applicable step of
/// [`CHAIN`] and records what happened in `notes`.
pub fn upcast(
    body: &mut Map<String, Value>,
    detail_version: &str,
    kind: EventKind,
    notes: &mut DecodeNotes,
) {
    let version = version_number(detail_version);
    if version.is_some_and(|v| v > latest_known_version()) {
        notes.newer_version = true;
    }
    for step in CHAIN {
        if step.applies_to(version) && (step.run)(body, kind) {
            notes.upcast_steps.push(step.name);
        }
    }
}

/// `detail.version` as a number, when it is one.
pub fn version_number(v: &str) -> Option<f64> {
    v.trim().parse::<f64>().ok().filter(|f| f.is_finite())
}

/// The greatest of [`KNOWN_DETAIL_VERSIONS`].
pub fn latest_known_version() -> f64 {
    KNOWN_DETAIL_VERSIONS
        .iter()
        .filter_map(|v| version_number(v))
        .fold(f64::MIN, f64::max)
}

/// Step: `eventTime` as an ISO-8601 string, a decimal string or a float →
/// integer epoch ms. Values that cannot be parsed are left untouched (decode
/// rejects them with the right class).
pub fn event_time_to_epoch_ms(body: &mut Map<String, Value>, _kind: EventKind) -> bool {
    let Some(v) = body.get_mut("eventTime") else {
        return false;
    };
    if v.is_i64() {
        return false;
    }
    match parse_event_time(v) {
        Ok(ms) => {
            *v = Value::from(ms);
            true
        }
        Err(_) => false,
    }
}

/// Step: every known field of the kind that is absent is inserted as null.
pub fn fill_absent_known_fields(body: &mut Map<String, Value>, kind: EventKind) -> bool {
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
pub fn note_enum(spec: &FieldSpec, value: &Value, kind: EventKind, notes: &mut DecodeNotes) {
    if let Some(es) = spec.enum_spec {
        if !es.accepts(value, kind) {
            notes.unknown_enum_values.push(spec.canonical);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn camel_to_snake(s: &str) -> String {
        let mut out = String::new();
        for c in s.chars() {
            if c.is_ascii_uppercase() {
                out.push('_');
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn field_table_is_sorted_unique_and_snake_cased() {
        for w in KNOWN_FIELDS.windows(2) {
            assert!(w[0].name < w[1].name, "{} !< {}", w[0].name, w[1].name);
        }
        for spec in KNOWN_FIELDS.iter().chain(HEADER_FIELDS) {
            assert_eq!(camel_to_snake(spec.name), spec.canonical);
            assert_eq!(
                known_field(spec.name).is_some(),
                KNOWN_FIELDS.contains(spec)
            );
        }
        // Header and kind fields never overlap, and no canonical name can
        // collide with a top-level silver field.
        let top = [
            "event_id",
            "interaction_id",
            "event_type",
            "event_time",
            "schema_version",
            "source_version",
            "extras",
            "lineage",
            "late",
        ];
        for spec in KNOWN_FIELDS {
            assert!(HEADER_FIELDS.iter().all(|h| h.canonical != spec.canonical));
            assert!(!top.contains(&spec.canonical));
        }
    }

    /// The eventBody fields of each Go SDK 188.0.0 struct
    /// (`platformclientv2/*detaileventtopic*event.go`), in struct order.
    const SDK_STRUCTS: &[(EventKind, &str)] = &[
        (EventKind::AcdEnd, "eventTime conversationId participantId sessionId disconnectType mediaType provider direction ani dnis addressTo addressFrom callbackUserName callbackNumbers callbackScheduledTime subject messageType queueId divisionId acdOutcome answeredUserId requestedRoutings usedRouting requestedRoutingSkillIds requestedSkillExpressionIds requestedLanguageId requestedRoutingUserIds routingPriority connectedDurationMs conversationExternalContactIds conversationExternalOrganizationIds utilizationLabel flowType"),
        (EventKind::AcdStart, "eventTime conversationId participantId sessionId mediaType provider direction ani dnis addressTo addressFrom callbackUserName callbackNumbers callbackScheduledTime subject messageType queueId divisionId conversationExternalContactIds conversationExternalOrganizationIds utilizationLabel routingPriority requestedRoutingSkillIds skillExpressionApplied"),
        (EventKind::Acw, "eventTime conversationId participantId sessionId mediaType provider direction ani dnis addressTo addressFrom callbackUserName callbackNumbers callbackScheduledTime subject messageType userId queueId wrapupCode wrapupNotes wrapupDurationMs conversationExternalContactIds conversationExternalOrganizationIds utilizationLabel"),
        (EventKind::Attributes, "eventTime conversationId participantId attributes conversationExternalContactIds conversationExternalOrganizationIds communications"),
        (EventKind::Contact, "eventTime conversationId participantId sessionId mediaType externalOrganizationId externalContactId provider direction ani dnis addressTo addressFrom callbackUserName callbackNumbers callbackScheduledTime subject messageType conversationExternalContactIds conversationExternalOrganizationIds divisionId utilizationLabel"),
        (EventKind::CustomerEnd, "eventTime conversationId participantId sessionId disconnectType mediaType externalOrganizationId externalContactId provider direction ani dnis addressTo addressFrom callbackUserName callbackNumbers callbackScheduledTime subject messageType interactingDurationMs conversationExternalContactIds conversationExternalOrganizationIds divisionId utilizationLabel"),
        (EventKind::CustomerStart, "eventTime conversationId participantId sessionId mediaType externalOrganizationId externalContactId provider direction ani dnis addressTo addressFrom callbackUserName callbackNumbers callbackScheduledTime subject messageType conversationExternalContactIds conversationExternalOrganizationIds journeyContext divisionId utilizationLabel"),
        (EventKind::FlowEnd, "eventTime conversationId participantId sessionId disconnectType mediaType provider direction ani dnis addressTo addressFrom subject messageType flowType flowId divisionId flowVersion connectedDurationMs conversationExternalContactIds conversationExternalOrganizationIds exitReason transferType utilizationLabel"),
        (EventKind::FlowOutcome, "eventTime conversationId participantId sessionId mediaType provider direction ani dnis addressTo addressFrom subject messageType flowType flowId divisionId flowVersion flowOutcomeId flowOutcomeStartTime flowOutcomeEndTime flowOutcomeValue flowMilestones conversationExternalContactIds conversationExternalOrganizationIds utilizationLabel"),
        (EventKind::FlowStart, "eventTime conversationId participantId sessionId mediaType provider direction ani dnis addressTo addressFrom subject messageType flowType flowId divisionId flowVersion conversationExternalContactIds conversationExternalOrganizationIds utilizationLabel"),
        (EventKind::Outbound, "eventTime conversationId participantId sessionId mediaType provider direction ani dnis addressTo addressFrom subject messageType outboundCampaignId divisionId outboundContactListId outboundContactId conversationExternalContactIds conversationExternalOrganizationIds utilizationLabel"),
        (EventKind::UserEnd, "eventTime conversationId participantId sessionId disconnectType mediaType provider direction ani dnis addressTo addressFrom callbackUserName callbackNumbers callbackScheduledTime subject messageType userId divisionId queueId interactingDurationMs heldDurationMs alertingDurationMs contactingDurationMs dialingDurationMs callbackDurationMs conversationExternalContactIds conversationExternalOrganizationIds utilizationLabel"),
        (EventKind::UserStart, "eventTime conversationId participantId sessionId mediaType provider direction ani dnis addressTo addressFrom callbackUserName callbackNumbers callbackScheduledTime subject messageType userId divisionId queueId conversationExternalContactIds conversationExternalOrganizationIds utilizationLabel"),
        (EventKind::VoicemailEnd, "eventTime conversationId participantId sessionId disconnectType mediaType provider direction ani dnis userId queueId divisionId voicemailDurationMs conversationExternalContactIds conversationExternalOrganizationIds utilizationLabel"),
        (EventKind::VoicemailStart, "eventTime conversationId participantId sessionId mediaType provider direction ani dnis userId queueId divisionId conversationExternalContactIds conversationExternalOrganizationIds utilizationLabel"),
        (EventKind::Wrapup, "eventTime conversationId participantId sessionId mediaType provider direction ani dnis addressTo addressFrom callbackUserName callbackNumbers callbackScheduledTime subject messageType queueId wrapupCode wrapupNotes wrapupDurationMs conversationExternalContactIds conversationExternalOrganizationIds utilizationLabel"),
    ];

    #[test]
    fn kind_fields_match_the_sdk_structs() {
        assert_eq!(SDK_STRUCTS.len(), EventKind::ALL.len());
        for (kind, sdk) in SDK_STRUCTS {
            let mut want: Vec<&str> = sdk.split(' ').collect();
            want.sort_unstable();
            let mut have: Vec<&str> = ["eventTime", "conversationId"]
                .into_iter()
                .chain(
                    HEADER_FIELDS
                        .iter()
                        .filter(|h| h.known_for(*kind))
                        .map(|h| h.name),
                )
                .chain(fields_of(*kind).map(|f| f.name))
                .collect();
            have.sort_unstable();
            assert_eq!(have, want, "{kind:?}");
        }
    }

    #[test]
    fn version_numbers_and_newer_detection() {
        assert_eq!(version_number("2"), Some(2.0));
        assert_eq!(version_number(" 3 "), Some(3.0));
        assert_eq!(version_number("beta"), None);
        assert_eq!(version_number("NaN"), None);
        assert_eq!(latest_known_version(), 2.0);
        let mut notes = DecodeNotes::default();
        upcast(&mut Map::new(), "3", EventKind::Acw, &mut notes);
        assert!(notes.newer_version);
        for v in ["2", "2.0", "1", "", "beta"] {
            let mut notes = DecodeNotes::default();
            upcast(&mut Map::new(), v, EventKind::Acw, &mut notes);
            assert!(!notes.newer_version, "{v}");
        }
    }

    #[test]
    fn step_applicability_by_version() {
        fn noop(_: &mut Map<String, Value>, _: EventKind) -> bool {
            false
        }
        let migration = Step {
            name: "v2_to_v3_example",
            applies_below: Some(3),
            source: "test",
            run: noop,
        };
        assert!(migration.applies_to(Some(2.0)));
        assert!(migration.applies_to(None)); // unknown = latest known (2)
        assert!(!migration.applies_to(Some(3.0)));
        assert!(!migration.applies_to(Some(4.0)));
        let always = Step {
            applies_below: None,
            ..migration
        };
        assert!(always.applies_to(Some(99.0)) && always.applies_to(None));
    }

    #[test]
    fn event_time_parsing() {
        let ok = |v: Value| parse_event_time(&v);
        assert_eq!(ok(json!(1_649_237_444_949_i64)), Ok(1_649_237_444_949));
        assert_eq!(ok(json!(1_649_237_444_949.9)), Ok(1_649_237_444_949));
        assert_eq!(ok(json!("1649237444949")), Ok(1_649_237_444_949));
        assert_eq!(ok(json!("1649237444949.5")), Ok(1_649_237_444_949));
        assert_eq!(ok(json!("2021-06-25T15:11:52.000Z")), Ok(1_624_633_912_000));
        assert_eq!(ok(json!("2021-06-25T15:11:52Z")), Ok(1_624_633_912_000));
        assert_eq!(
            ok(json!("2021-06-25T17:11:52.123+02:00")),
            Ok(1_624_633_912_123)
        );
        assert_eq!(
            ok(json!("2021-06-25T15:11:52.123456789Z")),
            Ok(1_624_633_912_123)
        );
        assert_eq!(ok(json!(0)), Ok(0));
        let err = |v: Value| parse_event_time(&v).unwrap_err();
        assert_eq!(
            err(json!("2021-04-2T15:30:51.418Z")),
            EventTimeError::Unparseable
        );
        assert_eq!(
            err(json!("2021-06-25T15:11:52.000")),
            EventTimeError::Unparseable
        );
        assert_eq!(err(json!("yesterday")), EventTimeError::Unparseable);
        assert_eq!(err(json!("")), EventTimeError::Unparseable);
        assert_eq!(err(json!("1e12")), EventTimeError::Unparseable);
        assert_eq!(err(json!("-5")), EventTimeError::Unparseable);
        assert_eq!(err(json!(-1)), EventTimeError::OutOfRange);
        assert_eq!(err(json!(u64::MAX)), EventTimeError::OutOfRange);
        assert_eq!(err(json!(1e300)), EventTimeError::OutOfRange);
        assert_eq!(
            err(json!("99999999999999999999999")),
            EventTimeError::OutOfRange
        );
        assert_eq!(
            err(json!(MAX_EVENT_TIME_MS + 1)),
            EventTimeError::OutOfRange
        );
        assert_eq!(
            err(json!("1969-12-31T23:59:59Z")),
            EventTimeError::OutOfRange
        );
        assert_eq!(err(json!(true)), EventTimeError::WrongType("a boolean"));
        assert_eq!(
            err(json!({"ms": 1})),
            EventTimeError::WrongType("an object")
        );
        assert_eq!(err(json!([1])), EventTimeError::WrongType("an array"));
        assert_eq!(err(Value::Null), EventTimeError::Missing);
    }

    #[test]
    fn step_event_time_to_epoch_ms() {
        let mut body = obj(json!({"eventTime": "2021-06-25T15:11:52.000Z"}));
        assert!(event_time_to_epoch_ms(&mut body, EventKind::Acw));
        assert_eq!(body["eventTime"], json!(1_624_633_912_000_i64));
        // Already canonical: unchanged.
        assert!(!event_time_to_epoch_ms(&mut body, EventKind::Acw));
        let mut body = obj(json!({"eventTime": 1_624_633_912_000.75}));
        assert!(event_time_to_epoch_ms(&mut body, EventKind::Acw));
        assert_eq!(body["eventTime"], json!(1_624_633_912_000_i64));
        let mut body = obj(json!({"eventTime": "1624633912000"}));
        assert!(event_time_to_epoch_ms(&mut body, EventKind::Acw));
        assert_eq!(body["eventTime"], json!(1_624_633_912_000_i64));
        // Unparseable or absent: left for decode to reject.
        let mut body = obj(json!({"eventTime": "2021-04-2T15:30:51.418Z"}));
        assert!(!event_time_to_epoch_ms(&mut body, EventKind::Acw));
        assert_eq!(body["eventTime"], json!("2021-04-2T15:30:51.418Z"));
        assert!(!event_time_to_epoch_ms(&mut Map::new(), EventKind::Acw));
    }

    #[test]
    fn step_fill_absent_known_fields() {
        let mut body = obj(json!({"wrapupCode": "c", "wrapupNotes": null, "custom": 1}));
        assert!(fill_absent_known_fields(&mut body, EventKind::Wrapup));
        assert_eq!(body["wrapupCode"], json!("c"));
        assert_eq!(body["wrapupNotes"], Value::Null);
        assert_eq!(body["wrapupDurationMs"], Value::Null);
        assert_eq!(body["custom"], json!(1));
        assert!(!body.contains_key("userId")); // header fields are not filled
        assert!(!body.contains_key("divisionId")); // not a wrapup field
        assert_eq!(body.len(), fields_of(EventKind::Wrapup).count() + 1);
        // Second run: nothing left to fill.
        assert!(!fill_absent_known_fields(&mut body, EventKind::Wrapup));
    }

    #[test]
    fn chain_reports_changed_steps_only() {
        let mut body = obj(json!({"eventTime": 5}));
        for spec in fields_of(EventKind::Attributes) {
            body.insert(spec.name.to_string(), Value::Null);
        }
        let mut notes = DecodeNotes::default();
        upcast(&mut body, "2", EventKind::Attributes, &mut notes);
        assert!(notes.upcast_steps.is_empty());
        let mut body = obj(json!({"eventTime": "5"}));
        upcast(&mut body, "2", EventKind::Attributes, &mut notes);
        assert_eq!(
            notes.upcast_steps,
            ["event_time_to_epoch_ms", "fill_absent_known_fields"]
        );
    }

    /// What decode does: header fields first, then the kind's fields.
    fn check_enums(body: &Map<String, Value>, kind: EventKind, notes: &mut DecodeNotes) {
        for spec in HEADER_FIELDS.iter().chain(fields_of(kind)) {
            if let Some(v) = body.get(spec.name) {
                note_enum(spec, v, kind, notes);
            }
        }
    }

    #[test]
    fn enum_checks() {
        let mut notes = DecodeNotes::default();
        let body = obj(json!({
            "disconnectType": "TAKEOVER", "mediaType": "VOICE", "direction": "INBOUND",
            "acdOutcome": "ANSWERED", "usedRouting": "BULLSEYE",
            "requestedRoutings": ["STANDARD", "PREFERRED"], "flowType": "inqueuecall",
            "messageType": null
        }));
        check_enums(&body, EventKind::AcdEnd, &mut notes);
        assert!(notes.unknown_enum_values.is_empty(), "{notes:?}");

        let body = obj(json!({
            "disconnectType": "WORMHOLE", "mediaType": "HOLOGRAM", "direction": 3,
            "acdOutcome": "answered", "requestedRoutings": ["STANDARD", "TELEPATHY"],
            "flowType": "inqueuecall", "exitReason": "WHATEVER"
        }));
        let mut notes = DecodeNotes::default();
        check_enums(&body, EventKind::AcdEnd, &mut notes);
        assert_eq!(
            notes.unknown_enum_values,
            [
                "media_type",
                "direction",
                "acd_outcome",
                "disconnect_type",
                "requested_routings"
            ]
        );
        // flowType is case-sensitive on flow events; exitReason is a flow.end field.
        let mut notes = DecodeNotes::default();
        check_enums(&body, EventKind::FlowEnd, &mut notes);
        assert_eq!(
            notes.unknown_enum_values,
            [
                "media_type",
                "direction",
                "disconnect_type",
                "exit_reason",
                "flow_type"
            ]
        );
        assert_eq!(body["disconnectType"], json!("WORMHOLE")); // never rewritten
    }

    fn schema(rel: &str) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("schemas")
            .join(rel);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(
            v["$schema"],
            json!("https://json-schema.org/draft/2020-12/schema"),
            "{rel}"
        );
        let id = v["$id"].as_str().unwrap_or_default();
        assert!(id.ends_with(&format!("/schemas/{rel}")), "{rel}: $id {id}");
        v
    }

    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        k.sort();
        k
    }

    /// The schema files agree with the tables above (edit both together).
    #[test]
    fn schemas_match_the_field_tables() {
        for kind in EventKind::ALL {
            let s = schema(&format!("input/event-body/{}.v2.json", kind.as_str()));
            let mut want: Vec<String> = ["eventTime", "conversationId"]
                .into_iter()
                .chain(
                    HEADER_FIELDS
                        .iter()
                        .filter(|h| h.known_for(kind))
                        .map(|h| h.name),
                )
                .chain(fields_of(kind).map(|f| f.name))
                .map(str::to_owned)
                .collect();
            want.sort();
            assert_eq!(keys(&s["properties"]), want, "{kind:?}");
        }
        let common = schema("input/event-body/common.v2.json");
        for (name, values) in [
            ("disconnect_types", DISCONNECT_TYPES),
            ("media_types", MEDIA_TYPES),
            ("directions", DIRECTIONS),
            ("message_types", MESSAGE_TYPES),
            ("acd_outcomes", ACD_OUTCOMES),
            ("routings", ROUTINGS),
            ("flow_types", FLOW_TYPES),
            ("exit_reasons", EXIT_REASONS),
            ("transfer_types", TRANSFER_TYPES),
        ] {
            assert_eq!(common["$defs"][name]["enum"], json!(values), "{name}");
        }
        schema("input/genesys-detail.v2.json");
        schema("input/eventbridge-envelope.v0.json");
        schema("silver/cx.silver.late.v1.json");

        let silver = schema("silver/cx.silver.event.v1.json");
        let record = &silver["$defs"]["record"];
        for spec in HEADER_FIELDS.iter().chain(KNOWN_FIELDS) {
            assert!(
                record["properties"].get(spec.canonical).is_some(),
                "{}",
                spec.canonical
            );
        }
        let mut kinds: Vec<&str> = record["properties"]["event_type"]["enum"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        kinds.sort_unstable();
        let mut all = EventKind::ALL.map(EventKind::as_str);
        all.sort_unstable();
        assert_eq!(kinds, all);
        let rules = record["allOf"].as_array().cloned().unwrap_or_default();
        assert_eq!(rules.len(), EventKind::ALL.len());
        for rule in rules {
            let kind = rule["if"]["properties"]["event_type"]["const"]
                .as_str()
                .and_then(EventKind::from_suffix);
            let kind = kind.unwrap_or_else(|| panic!("bad rule {rule}"));
            let mut want: Vec<&str> = fields_of(kind).map(|f| f.canonical).collect();
            want.sort_unstable();
            let mut have: Vec<&str> = rule["then"]["required"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            have.sort_unstable();
            assert_eq!(have, want, "{kind:?}");
        }
    }
}
