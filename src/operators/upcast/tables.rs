//! What this build knows of Genesys detail events: the detail versions,
//! the kinds as bit sets, the enum value sets and the field tables (Genesys
//! name, canonical name, kinds, type, enum set) that decode projects a body
//! with.

use crate::json::ValueRef;
use crate::model::{DecodeNotes, EventKind};

// ---------------------------------------------------------------------------
// Versions
// ---------------------------------------------------------------------------

/// Known `detail.version` values.
pub const KNOWN_DETAIL_VERSIONS: &[&str] = &["2"];

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
    pub fn accepts(&self, value: ValueRef<'_>, kind: EventKind) -> bool {
        if value.is_null() {
            true
        } else if self.list {
            value.all_items_are_str(|s| self.accepts_str(s, kind))
        } else {
            value.as_str().is_some_and(|s| self.accepts_str(s, kind))
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

/// Notes `spec` (canonical name) when `value` is outside its enum set.
/// Values are never changed.
pub fn note_enum(spec: &FieldSpec, value: ValueRef<'_>, kind: EventKind, notes: &mut DecodeNotes) {
    if let Some(es) = spec.enum_spec {
        if !es.accepts(value, kind) {
            notes.unknown_enum_values.push(spec.canonical);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::names::fields_of;
    use super::*;
    use serde_json::{json, Map, Value};

    fn map(v: Value) -> Map<String, Value> {
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
            // Written into silver records without escaping.
            assert!(spec
                .canonical
                .bytes()
                .all(|b| b == b'_' || b.is_ascii_lowercase()));
        }
    }

    /// What decode does: header fields first, then the kind's fields.
    fn check_enums(body: &Map<String, Value>, kind: EventKind, notes: &mut DecodeNotes) {
        for spec in HEADER_FIELDS.iter().chain(fields_of(kind)) {
            if let Some(v) = body.get(spec.name) {
                note_enum(spec, v.into(), kind, notes);
            }
        }
    }

    #[test]
    fn enum_checks() {
        let mut notes = DecodeNotes::default();
        let body = map(json!({
            "disconnectType": "TAKEOVER", "mediaType": "VOICE", "direction": "INBOUND",
            "acdOutcome": "ANSWERED", "usedRouting": "BULLSEYE",
            "requestedRoutings": ["STANDARD", "PREFERRED"], "flowType": "inqueuecall",
            "messageType": null
        }));
        check_enums(&body, EventKind::AcdEnd, &mut notes);
        assert!(notes.unknown_enum_values.is_empty(), "{notes:?}");

        let body = map(json!({
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
