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
//! [`KNOWN_DETAIL_VERSIONS`], update the field tables to the v3 names,
//! write `fn v2_to_v3_xxx(body: &mut Body, kind) -> bool` (a [`Body`] reads,
//! sets and removes members by name, like a JSON map) and add one line
//! `Step { name: "v2_to_v3_xxx", applies_below: Some(3), source: "…", run: v2_to_v3_xxx }`.
//! `schemas/README.md` describes the same chain.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::json::{Canonical, Node, Num, Tape, ValueRef};
use crate::model::{DecodeNotes, EventKind, Span};

/// Known `detail.version` values.
pub const KNOWN_DETAIL_VERSIONS: &[&str] = &["2"];

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

/// The kind fields of one kind, in table order (Genesys names sorted).
pub fn fields_of(kind: EventKind) -> impl Iterator<Item = &'static FieldSpec> {
    kind_fields(kind).iter().map(|(_, spec)| *spec)
}

// ---------------------------------------------------------------------------
// Body member names
// ---------------------------------------------------------------------------

/// Every `eventBody` member name this build knows: `eventTime`,
/// `conversationId`, [`HEADER_FIELDS`] and [`KNOWN_FIELDS`].
pub const NAME_COUNT: usize = 2 + HEADER_FIELDS.len() + KNOWN_FIELDS.len();

/// A known member name: its position among all known names sorted
/// bytewise (so sorting members by id sorts them by name).
pub type FieldId = u8;

/// What a known member name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRole {
    EventTime,
    ConversationId,
    Header(&'static FieldSpec),
    Kind(&'static FieldSpec),
}

/// Known names and the per-kind field lists, computed once.
struct Names {
    /// Sorted by name; a name's index is its [`FieldId`].
    sorted: Vec<(&'static str, NameRole)>,
    ids: HashMap<&'static str, FieldId, BuildHasherDefault<NameHasher>>,
    /// The same ids in a table without collisions, when one was found.
    table: Option<NameTable>,
    event_time: FieldId,
    conversation_id: FieldId,
    /// Ids of [`HEADER_FIELDS`], in table order.
    header: Vec<(FieldId, &'static FieldSpec)>,
    /// Per kind (by bit): its fields in table order, and in canonical-name
    /// order.
    by_kind: Vec<(KindFields, KindFields)>,
}

type KindFields = Vec<(FieldId, &'static FieldSpec)>;

fn names() -> &'static Names {
    static NAMES: OnceLock<Names> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut sorted: Vec<(&'static str, NameRole)> = vec![
            ("eventTime", NameRole::EventTime),
            ("conversationId", NameRole::ConversationId),
        ];
        sorted.extend(HEADER_FIELDS.iter().map(|f| (f.name, NameRole::Header(f))));
        sorted.extend(KNOWN_FIELDS.iter().map(|f| (f.name, NameRole::Kind(f))));
        sorted.sort_unstable_by_key(|(name, _)| *name);
        let ids: HashMap<_, _, _> = sorted
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (*name, FieldId::try_from(i).unwrap_or(FieldId::MAX)))
            .collect();
        let id = |name: &str| ids.get(name).copied().unwrap_or(FieldId::MAX);
        let header = HEADER_FIELDS.iter().map(|f| (id(f.name), f)).collect();
        let by_kind = (0..KindSet::BITS)
            .map(|bit| {
                let table: KindFields = KNOWN_FIELDS
                    .iter()
                    .filter(|f| f.kinds & (1 << bit) != 0)
                    .map(|f| (id(f.name), f))
                    .collect();
                let mut canonical = table.clone();
                canonical.sort_by_key(|(_, f)| f.canonical);
                (table, canonical)
            })
            .collect();
        Names {
            event_time: id("eventTime"),
            conversation_id: id("conversationId"),
            header,
            by_kind,
            table: NameTable::build(&sorted),
            ids,
            sorted,
        }
    })
}

/// Slots of a [`NameTable`].
const NAME_SLOTS: usize = 512;

/// Known names by a hash of their length and first, middle and last bytes
/// under a multiplier chosen when the table is built so that no two known
/// names share a slot: a look-up is one multiplication and one string
/// comparison. (Every name body members are checked against goes through
/// here, about 25 per event.)
struct NameTable {
    seed: u32,
    /// `FieldId + 1` per slot, 0 for none.
    slots: [u8; NAME_SLOTS],
}

impl NameTable {
    fn slot(seed: u32, name: &str) -> usize {
        let b = name.as_bytes();
        let (Some(first), Some(last)) = (b.first(), b.last()) else {
            return 0;
        };
        let mid = b.get(b.len() / 2).copied().unwrap_or(0);
        let x = (b.len() as u32 & 0xff)
            | u32::from(*first) << 8
            | u32::from(mid) << 16
            | u32::from(*last) << 24;
        (x.wrapping_mul(seed) >> 23) as usize % NAME_SLOTS
    }

    /// A table for `sorted` (index = id), or `None` if no multiplier among
    /// the ones tried separates every name (the hash map is used then).
    fn build(sorted: &[(&'static str, NameRole)]) -> Option<NameTable> {
        let mut seed: u32 = 0x9e37_79b9;
        for _ in 0..100_000 {
            seed = seed.wrapping_mul(0x0019_660d).wrapping_add(0x3c6e_f35f) | 1;
            let mut slots = [0u8; NAME_SLOTS];
            let separated = sorted.iter().enumerate().all(|(id, (name, _))| {
                let slot = &mut slots[Self::slot(seed, name)];
                let free = *slot == 0;
                *slot = u8::try_from(id + 1).unwrap_or(0);
                free && *slot != 0
            });
            if separated {
                return Some(NameTable { seed, slots });
            }
        }
        None
    }

    fn get(&self, sorted: &[(&'static str, NameRole)], name: &str) -> Option<FieldId> {
        let id = self.slots[Self::slot(self.seed, name)].checked_sub(1)?;
        (sorted.get(usize::from(id))?.0 == name).then_some(id)
    }
}

/// FxHash-style hasher for the known names (short ASCII strings, fixed
/// table: no need for SipHash's flood resistance).
#[derive(Default)]
struct NameHasher(u64);

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0xf135_7aea_2e62_a9c5;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0 ^ u64::from_le_bytes(w))
                .wrapping_mul(K)
                .rotate_left(26);
        }
        let mut w = [0u8; 8];
        let rest = chunks.remainder();
        w[..rest.len()].copy_from_slice(rest);
        self.0 = (self.0 ^ u64::from_le_bytes(w) ^ bytes.len() as u64)
            .wrapping_mul(K)
            .rotate_left(26);
    }

    fn write_u8(&mut self, i: u8) {
        self.0 = (self.0 ^ u64::from(i)).wrapping_mul(0xf135_7aea_2e62_a9c5);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The id of a known member name.
pub fn field_id(name: &str) -> Option<FieldId> {
    let n = names();
    match &n.table {
        Some(table) => table.get(&n.sorted, name),
        None => n.ids.get(name).copied(),
    }
}

/// The known name `id`.
pub fn name_of(id: FieldId) -> &'static str {
    names()
        .sorted
        .get(usize::from(id))
        .map_or("", |(name, _)| name)
}

/// What the known name `id` is.
pub fn name_role(id: FieldId) -> Option<NameRole> {
    names().sorted.get(usize::from(id)).map(|(_, role)| *role)
}

/// Id of `eventTime`.
pub fn event_time_id() -> FieldId {
    names().event_time
}

/// Id of `conversationId`.
pub fn conversation_id_id() -> FieldId {
    names().conversation_id
}

/// [`HEADER_FIELDS`] with their ids, in table order.
pub fn header_fields() -> &'static [(FieldId, &'static FieldSpec)] {
    &names().header
}

/// The fields of `kind` with their ids, in table order (Genesys names).
pub fn kind_fields(kind: EventKind) -> &'static [(FieldId, &'static FieldSpec)] {
    let bit = kind_bit(kind).trailing_zeros() as usize;
    names().by_kind.get(bit).map_or(&[], |(table, _)| table)
}

/// The fields of `kind` with their ids, in canonical-name order (the order
/// of a silver record).
pub fn kind_fields_by_canonical(kind: EventKind) -> &'static [(FieldId, &'static FieldSpec)] {
    let bit = kind_bit(kind).trailing_zeros() as usize;
    names()
        .by_kind
        .get(bit)
        .map_or(&[], |(_, canonical)| canonical)
}

/// Sort rank of a name this build does not know: the even rank just below
/// the first known name greater than it, where the known name with id `k`
/// has the odd rank `2k + 1`. Merging by rank, then by name among equal
/// even ranks, merges in name order.
fn unknown_rank(name: &str) -> u16 {
    let below = names().sorted.partition_point(|(n, _)| *n < name);
    2 * u16::try_from(below).unwrap_or(u16::MAX / 2)
}

// ---------------------------------------------------------------------------
// The body being upcast
// ---------------------------------------------------------------------------

/// The value of a [`Body`] member.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyValue {
    /// A value of the input: its tape node and canonical text.
    Input { node: usize, text: Span },
    /// A value an upcast step set.
    Set(Value),
}

impl BodyValue {
    /// A view of the value (`tape` is the body's input).
    pub fn view<'v>(&'v self, tape: &'v Tape<'v>) -> ValueRef<'v> {
        match self {
            BodyValue::Input { node, .. } => ValueRef::Node(tape, *node),
            BodyValue::Set(v) => ValueRef::Value(v),
        }
    }
}

/// A member of a [`Body`] (as [`Body::members`] and [`Body::drain`] give
/// them).
#[derive(Debug, Clone)]
pub struct Member<'t> {
    pub name: Cow<'t, str>,
    /// Set for a known name.
    pub id: Option<FieldId>,
    /// `None` once removed.
    pub value: Option<BodyValue>,
    /// Span of the name's JSON string literal in the canonical text (input
    /// members with a name this build does not know; a known name's
    /// literal is the name in quotes).
    pub key_text: Option<Span>,
}

/// Where the value of a known member is.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
enum Slot {
    #[default]
    Absent,
    /// A value of the input: its tape node and canonical text.
    Input { node: usize, text: Span },
    /// Null, set by a step (the common case: absent fields filled).
    Null,
    /// A value a step set: its index in `Body::set`.
    Set(usize),
}

/// An `eventBody` while it is fingerprinted, upcast and projected: its
/// members by name (each once, a later duplicate in the input winning, as
/// in a JSON map), values still in the input's [`Tape`] unless a step set
/// them.
///
/// Known names are held in an array by [`FieldId`] (found and set without
/// comparing strings, and in name order without sorting); the few other
/// names in a list.
#[derive(Debug)]
pub struct Body<'t> {
    tape: &'t Tape<'t>,
    /// Known members by id.
    known: [Slot; NAME_COUNT],
    /// Members with other names: the input's in name order, then those
    /// steps added.
    others: Vec<Member<'t>>,
    /// Values steps set on known members (see [`Slot::Set`]).
    set: Vec<Value>,
}

impl<'t> Body<'t> {
    /// Reads the object at `obj` and appends its canonical text to `out`
    /// (the content fingerprint's input); each input member keeps the span
    /// of its value in `out`.
    pub fn canonical(
        tape: &'t Tape<'t>,
        obj: usize,
        canon: &mut Canonical,
        out: &mut String,
    ) -> Body<'t> {
        let mut body = Body {
            tape,
            known: [Slot::Absent; NAME_COUNT],
            others: Vec::new(),
            set: Vec::new(),
        };
        // Known names into their slots (a later duplicate overwrites an
        // earlier one); other names listed with their sort rank.
        let mut others: Vec<(u16, &'t str, usize)> = Vec::new();
        for (k, v) in tape.members(obj) {
            match field_id(k).and_then(|id| body.known.get_mut(usize::from(id))) {
                Some(slot) => {
                    *slot = Slot::Input {
                        node: v,
                        text: Span::default(),
                    }
                }
                None => others.push((unknown_rank(k), k, v)),
            }
        }
        // Stable: repeated names keep input order, the last one wins below.
        others.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        body.others.reserve_exact(others.len());
        out.push('{');
        let mut first = true;
        let mut next = others.iter().enumerate().peekable();
        for id in 0..NAME_COUNT {
            let Some(&Slot::Input { node, .. }) = body.known.get(id) else {
                continue;
            };
            let rank = 2 * u16::try_from(id).unwrap_or(u16::MAX / 2) + 1;
            while let Some((i, &(_, name, node))) = next.next_if(|(_, o)| o.0 < rank) {
                if !superseded(&others, i) {
                    body.write_other(name, node, canon, &mut first, out);
                }
            }
            // A known name is plain ASCII: its literal is the name quoted.
            write_member(out, &mut first, |out| {
                out.push('"');
                out.push_str(name_of(id_of(id)));
                out.push('"');
            });
            out.push(':');
            let start = out.len();
            canon.write(tape, node, out);
            let text = Span {
                start,
                end: out.len(),
            };
            if let Some(slot) = body.known.get_mut(id) {
                *slot = Slot::Input { node, text };
            }
        }
        for (i, &(_, name, node)) in next {
            if !superseded(&others, i) {
                body.write_other(name, node, canon, &mut first, out);
            }
        }
        out.push('}');
        body
    }

    /// Writes the member with the unknown `name` and value `node`, and
    /// lists it.
    fn write_other(
        &mut self,
        name: &'t str,
        node: usize,
        canon: &mut Canonical,
        first: &mut bool,
        out: &mut String,
    ) {
        let tape = self.tape;
        let key_start = write_member(out, first, |out| match tape.node(node - 1) {
            Node::Str(k) => crate::json::write_str_node(out, k),
            _ => out.push_str("\"\""),
        });
        let key_text = Span {
            start: key_start,
            end: out.len(),
        };
        out.push(':');
        let start = out.len();
        canon.write(tape, node, out);
        self.others.push(Member {
            name: Cow::Borrowed(name),
            id: None,
            value: Some(BodyValue::Input {
                node,
                text: Span {
                    start,
                    end: out.len(),
                },
            }),
            key_text: Some(key_text),
        });
    }

    /// The input this body reads.
    pub fn tape(&self) -> &'t Tape<'t> {
        self.tape
    }

    fn slot(&self, id: FieldId) -> Slot {
        self.known.get(usize::from(id)).copied().unwrap_or_default()
    }

    /// Position of the member `name` (unknown to this build) in `others`.
    fn other(&self, name: &str) -> Option<usize> {
        self.others
            .iter()
            .position(|m| m.value.is_some() && m.name == name)
    }

    /// A view of the value in `slot`.
    fn view(&self, slot: Slot) -> Option<ValueRef<'_>> {
        match slot {
            Slot::Absent => None,
            Slot::Input { node, .. } => Some(ValueRef::Node(self.tape, node)),
            Slot::Null => Some(ValueRef::Value(&Value::Null)),
            Slot::Set(i) => self.set.get(i).map(ValueRef::Value),
        }
    }

    /// The value of member `name`.
    pub fn get(&self, name: &str) -> Option<ValueRef<'_>> {
        match field_id(name) {
            Some(id) => self.get_id(id),
            None => {
                let m = self.others.get(self.other(name)?)?;
                Some(m.value.as_ref()?.view(self.tape))
            }
        }
    }

    /// The value of the known member `id`.
    pub fn get_id(&self, id: FieldId) -> Option<ValueRef<'_>> {
        self.view(self.slot(id))
    }

    /// True when member `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// True when the known member `id` is present.
    pub fn contains_id(&self, id: FieldId) -> bool {
        self.slot(id) != Slot::Absent
    }

    /// Sets member `name` (added if absent).
    pub fn set(&mut self, name: &'t str, value: Value) {
        match field_id(name) {
            Some(id) => self.set_id(id, value),
            None => match self.other(name).and_then(|at| self.others.get_mut(at)) {
                Some(m) => m.value = Some(BodyValue::Set(value)),
                None => self.others.push(Member {
                    name: Cow::Borrowed(name),
                    id: None,
                    value: Some(BodyValue::Set(value)),
                    key_text: None,
                }),
            },
        }
    }

    /// Sets the known member `id` (added if absent).
    pub fn set_id(&mut self, id: FieldId, value: Value) {
        let slot = if value.is_null() {
            Slot::Null
        } else {
            self.set.push(value);
            Slot::Set(self.set.len() - 1)
        };
        if let Some(s) = self.known.get_mut(usize::from(id)) {
            *s = slot;
        }
    }

    /// Removes member `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<BodyValue> {
        match field_id(name) {
            Some(id) => self.remove_id(id),
            None => {
                let at = self.other(name)?;
                self.others.get_mut(at)?.value.take()
            }
        }
    }

    /// Removes the known member `id`, returning its value.
    pub fn remove_id(&mut self, id: FieldId) -> Option<BodyValue> {
        let slot = std::mem::take(self.known.get_mut(usize::from(id))?);
        take_value(slot, &mut self.set)
    }

    /// The members still present, in order: known names by name, then the
    /// others (the input's by name, then those steps added).
    pub fn members(&self) -> impl Iterator<Item = Member<'t>> + '_ {
        let known = (0..NAME_COUNT).filter_map(|i| {
            let id = id_of(i);
            let value = match self.slot(id) {
                Slot::Absent => return None,
                Slot::Input { node, text } => BodyValue::Input { node, text },
                Slot::Null => BodyValue::Set(Value::Null),
                Slot::Set(s) => BodyValue::Set(self.set.get(s).cloned().unwrap_or_default()),
            };
            Some(known_member(id, value))
        });
        known.chain(self.others.iter().filter(|m| m.value.is_some()).cloned())
    }

    /// Removes and returns every member still present, in the order of
    /// [`Self::members`].
    pub fn drain(&mut self) -> impl Iterator<Item = Member<'t>> + '_ {
        let Body {
            known, others, set, ..
        } = self;
        let known = known.iter_mut().enumerate().filter_map(|(i, slot)| {
            let value = take_value(std::mem::take(slot), set)?;
            Some(known_member(id_of(i), value))
        });
        known.chain(others.drain(..).filter(|m| m.value.is_some()))
    }

    /// The members as a JSON map (tests, debugging).
    pub fn to_map(&self) -> Map<String, Value> {
        self.members()
            .filter_map(|m| Some((m.name.to_string(), m.value?.view(self.tape).to_value())))
            .collect()
    }
}

/// True when the next of the sorted `others` has the same name as the one
/// at `i`: the later duplicate wins, as in a JSON map.
fn superseded(others: &[(u16, &str, usize)], i: usize) -> bool {
    match (others.get(i), others.get(i + 1)) {
        (Some(a), Some(b)) => a.1 == b.1,
        _ => false,
    }
}

/// The value held in `slot`, taking a step's value out of `set`.
fn take_value(slot: Slot, set: &mut [Value]) -> Option<BodyValue> {
    match slot {
        Slot::Absent => None,
        Slot::Input { node, text } => Some(BodyValue::Input { node, text }),
        Slot::Null => Some(BodyValue::Set(Value::Null)),
        Slot::Set(i) => Some(BodyValue::Set(std::mem::take(set.get_mut(i)?))),
    }
}

/// The id at position `i` of the known names (`i < NAME_COUNT`).
fn id_of(i: usize) -> FieldId {
    FieldId::try_from(i).unwrap_or(FieldId::MAX)
}

/// A known member as a [`Member`].
fn known_member<'t>(id: FieldId, value: BodyValue) -> Member<'t> {
    Member {
        name: Cow::Borrowed(name_of(id)),
        id: Some(id),
        value: Some(value),
        key_text: None,
    }
}

/// Starts a member of the object being written to `out` (a comma unless it
/// is the first) and writes its key with `key`; returns where the key
/// starts.
fn write_member(out: &mut String, first: &mut bool, key: impl FnOnce(&mut String)) -> usize {
    if !std::mem::take(first) {
        out.push(',');
    }
    let start = out.len();
    key(out);
    start
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
pub fn parse_event_time(v: ValueRef<'_>) -> Result<i64, EventTimeError> {
    if v.is_null() {
        return Err(EventTimeError::Missing);
    }
    let ms = match (v.as_number(), v.as_str()) {
        (Some(n), _) => match as_i64(n) {
            Some(i) => i,
            None => float_ms(match n {
                Num::PosInt(u) => u as f64,
                Num::NegInt(i) => i as f64,
                Num::Float(f) => f,
            })?,
        },
        (None, Some(s)) => parse_time_string(s)?,
        (None, None) => return Err(EventTimeError::WrongType(v.type_name())),
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

/// The number as an `i64`, when it is an integer in range (what
/// `serde_json::Number::as_i64` gives).
fn as_i64(n: Num) -> Option<i64> {
    match n {
        Num::PosInt(u) => i64::try_from(u).ok(),
        Num::NegInt(i) => Some(i),
        Num::Float(_) => None,
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
    pub run: fn(&mut Body<'_>, EventKind) -> bool,
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
pub fn upcast(body: &mut Body<'_>, detail_version: &str, kind: EventKind, notes: &mut DecodeNotes) {
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
pub fn event_time_to_epoch_ms(body: &mut Body<'_>, _kind: EventKind) -> bool {
    let Some(v) = body.get_id(event_time_id()) else {
        return false;
    };
    if v.as_number().and_then(as_i64).is_some() {
        return false;
    }
    match parse_event_time(v) {
        Ok(ms) => {
            body.set_id(event_time_id(), Value::from(ms));
            true
        }
        Err(_) => false,
    }
}

/// Step: every known field of the kind that is absent is inserted as null.
pub fn fill_absent_known_fields(body: &mut Body<'_>, kind: EventKind) -> bool {
    let mut changed = false;
    for &(id, _) in kind_fields(kind) {
        if !body.contains_id(id) {
            body.set_id(id, Value::Null);
            changed = true;
        }
    }
    changed
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
    use super::*;
    use serde_json::json;

    /// Runs `f` on the body of `v` (an object) and returns what it
    /// returned and the body afterwards.
    fn on_body<R>(v: Value, f: impl FnOnce(&mut Body<'_>) -> R) -> (R, Map<String, Value>) {
        let text = v.to_string();
        let tape = Tape::parse(text.as_bytes()).unwrap_or_default();
        let mut out = String::new();
        let mut body = Body::canonical(&tape, 0, &mut Canonical::default(), &mut out);
        assert_eq!(out, text, "serde_json's text is canonical");
        let r = f(&mut body);
        (r, body.to_map())
    }

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
        on_body(json!({}), |b| upcast(b, "3", EventKind::Acw, &mut notes));
        assert!(notes.newer_version);
        for v in ["2", "2.0", "1", "", "beta"] {
            let mut notes = DecodeNotes::default();
            on_body(json!({}), |b| upcast(b, v, EventKind::Acw, &mut notes));
            assert!(!notes.newer_version, "{v}");
        }
    }

    #[test]
    fn step_applicability_by_version() {
        fn noop(_: &mut Body<'_>, _: EventKind) -> bool {
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
        let ok = |v: Value| parse_event_time((&v).into());
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
        let err = |v: Value| parse_event_time((&v).into()).unwrap_err();
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
        // The same from a tape.
        for text in [
            "1649237444949",
            "1649237444949.9",
            "\"2021-06-25T15:11:52Z\"",
            "-1",
            "true",
            "null",
        ] {
            let tape = Tape::parse(text.as_bytes()).unwrap_or_default();
            let v: Value = serde_json::from_str(text).unwrap_or_default();
            assert_eq!(
                parse_event_time(ValueRef::Node(&tape, 0)),
                parse_event_time((&v).into()),
                "{text}"
            );
        }
    }

    #[test]
    fn step_event_time_to_epoch_ms() {
        let step = |b: &mut Body<'_>| {
            let first = event_time_to_epoch_ms(b, EventKind::Acw);
            // Already canonical after one run: unchanged.
            (first, event_time_to_epoch_ms(b, EventKind::Acw))
        };
        let (changed, body) = on_body(json!({"eventTime": "2021-06-25T15:11:52.000Z"}), step);
        assert_eq!(changed, (true, false));
        assert_eq!(body["eventTime"], json!(1_624_633_912_000_i64));
        let (changed, body) = on_body(json!({"eventTime": 1_624_633_912_000.75}), step);
        assert_eq!(changed, (true, false));
        assert_eq!(body["eventTime"], json!(1_624_633_912_000_i64));
        let (changed, body) = on_body(json!({"eventTime": "1624633912000"}), step);
        assert_eq!(changed, (true, false));
        assert_eq!(body["eventTime"], json!(1_624_633_912_000_i64));
        let (changed, _) = on_body(json!({"eventTime": 1_624_633_912_000_i64}), step);
        assert_eq!(changed, (false, false));
        // Unparseable or absent: left for decode to reject.
        let (changed, body) = on_body(json!({"eventTime": "2021-04-2T15:30:51.418Z"}), step);
        assert_eq!(changed, (false, false));
        assert_eq!(body["eventTime"], json!("2021-04-2T15:30:51.418Z"));
        assert_eq!(on_body(json!({}), step).0, (false, false));
    }

    #[test]
    fn step_fill_absent_known_fields() {
        let body = json!({"wrapupCode": "c", "wrapupNotes": null, "custom": 1});
        let (changed, body) = on_body(body, |b| {
            let first = fill_absent_known_fields(b, EventKind::Wrapup);
            // Second run: nothing left to fill.
            (first, fill_absent_known_fields(b, EventKind::Wrapup))
        });
        assert_eq!(changed, (true, false));
        assert_eq!(body["wrapupCode"], json!("c"));
        assert_eq!(body["wrapupNotes"], Value::Null);
        assert_eq!(body["wrapupDurationMs"], Value::Null);
        assert_eq!(body["custom"], json!(1));
        assert!(!body.contains_key("userId")); // header fields are not filled
        assert!(!body.contains_key("divisionId")); // not a wrapup field
        assert_eq!(body.len(), fields_of(EventKind::Wrapup).count() + 1);
    }

    #[test]
    fn chain_reports_changed_steps_only() {
        let mut body = Map::new();
        body.insert("eventTime".into(), json!(5));
        for spec in fields_of(EventKind::Attributes) {
            body.insert(spec.name.to_string(), Value::Null);
        }
        let mut notes = DecodeNotes::default();
        on_body(Value::Object(body), |b| {
            upcast(b, "2", EventKind::Attributes, &mut notes)
        });
        assert!(notes.upcast_steps.is_empty());
        on_body(json!({"eventTime": "5"}), |b| {
            upcast(b, "2", EventKind::Attributes, &mut notes)
        });
        assert_eq!(
            notes.upcast_steps,
            ["event_time_to_epoch_ms", "fill_absent_known_fields"]
        );
    }

    #[test]
    fn body_members_are_a_map() {
        let text = r#"{"b":1,"zz":2,"b":3,"eventTime":4,"a":{"y":1,"x":2},"queueId":null}"#;
        let tape = Tape::parse(text.as_bytes()).unwrap_or_default();
        let mut out = String::new();
        let mut body = Body::canonical(&tape, 0, &mut Canonical::default(), &mut out);
        assert_eq!(
            out,
            r#"{"a":{"x":2,"y":1},"b":3,"eventTime":4,"queueId":null,"zz":2}"#
        );
        let names: Vec<String> = body.members().map(|m| m.name.to_string()).collect();
        // Known names first, then the others, each group by name.
        assert_eq!(names, ["eventTime", "queueId", "a", "b", "zz"]);
        assert_eq!(body.get("b").map(|v| v.to_value()), Some(json!(3)));
        assert!(body.get("queueId").is_some_and(|v| v.is_null()));
        assert!(body.contains_id(event_time_id()) && !body.contains("c"));
        body.set("zz", json!("new"));
        body.set("c", json!([1]));
        assert_eq!(
            body.remove("b"),
            Some(BodyValue::Input {
                node: 6,
                text: Span { start: 23, end: 24 }
            })
        );
        assert!(body.remove("b").is_none() && body.remove_id(event_time_id()).is_some());
        assert_eq!(
            Value::Object(body.to_map()),
            json!({"a": {"x": 2, "y": 1}, "queueId": null, "zz": "new", "c": [1]})
        );
        // Every known name has an id, in name order.
        let mut all: Vec<&str> = ["eventTime", "conversationId"]
            .into_iter()
            .chain(HEADER_FIELDS.iter().chain(KNOWN_FIELDS).map(|f| f.name))
            .collect();
        all.sort_unstable();
        for (i, name) in all.iter().enumerate() {
            assert_eq!(field_id(name), Some(i as FieldId), "{name}");
        }
        assert_eq!(all.len(), NAME_COUNT);
        assert_eq!(field_id("eventtime"), None);
        // The collision-free table exists and agrees with the map.
        let n = super::names();
        assert!(n.table.is_some());
        for name in all
            .iter()
            .map(|s| s.to_string())
            .chain(["", "x", "eventTimf", "anj"].map(String::from))
        {
            assert_eq!(field_id(&name), n.ids.get(name.as_str()).copied(), "{name}");
        }
    }

    fn member_name() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let known: Vec<String> = ["eventTime", "conversationId"]
            .into_iter()
            .chain(HEADER_FIELDS.iter().chain(KNOWN_FIELDS).map(|f| f.name))
            .map(str::to_owned)
            .collect();
        prop_oneof![
            proptest::sample::select(known.clone()),
            // Near a known name: before, after, a prefix, an extension.
            (proptest::sample::select(known), 0usize..4, "[A-Za-z_]{0,2}").prop_map(
                |(k, how, x)| {
                    match how {
                        0 => format!("{k}{x}"),
                        1 => k[..k.len() / 2].to_string(),
                        2 => format!("{x}{k}"),
                        _ => k.to_uppercase(),
                    }
                }
            ),
            "[a-zA-Z]{0,6}",
            Just(String::new()),
        ]
    }

    proptest::proptest! {
        /// The body's canonical text is serde_json's, whatever mix of
        /// known, unknown and repeated names it has.
        #[test]
        fn body_text_is_serde_json_text(
            members in proptest::collection::vec((member_name(), 0i64..3), 0..40),
        ) {
            let mut text = String::from("{");
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(&serde_json::to_string(k).unwrap_or_default());
                text.push(':');
                text.push_str(&v.to_string());
            }
            text.push('}');
            let tape = Tape::parse(text.as_bytes()).unwrap_or_default();
            let mut out = String::new();
            let body = Body::canonical(&tape, 0, &mut Canonical::default(), &mut out);
            let v: Value = serde_json::from_str(&text).unwrap_or_default();
            proptest::prop_assert_eq!(&out, &serde_json::to_string(&v).unwrap_or_default());
            proptest::prop_assert_eq!(Value::Object(body.to_map()), v);
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
