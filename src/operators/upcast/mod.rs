//! Versioned upcasting of Genesys `eventBody` objects to the canonical shape.
//!
//! Decode (see [`super::decode`]) unwraps the record (EventBridge envelope → detail
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
//!
//! # Files
//!
//! | file | what |
//! |---|---|
//! | `tables.rs` | known detail versions, kind sets, enum value sets, the field tables ([`HEADER_FIELDS`], [`KNOWN_FIELDS`]) |
//! | `names.rs` | every known member name as a [`FieldId`]: look-up, per-kind field lists |
//! | `body.rs` | [`Body`]: the `eventBody` being upcast, its members and canonical text |
//! | `event_time.rs` | [`parse_event_time`]: `eventTime` in any accepted form to epoch ms |
//! | `steps.rs` | [`Step`], [`CHAIN`] and [`upcast`], which runs it |

mod body;
mod event_time;
mod names;
mod steps;
mod tables;

pub use body::{Body, BodyValue, Member};
pub use event_time::{parse_event_time, EventTimeError, MAX_EVENT_TIME_MS};
pub use names::{
    conversation_id_id, event_time_id, field_id, fields_of, header_fields, kind_fields,
    kind_fields_by_canonical, name_of, name_role, FieldId, NameRole, NAME_COUNT,
};
pub use steps::{event_time_to_epoch_ms, fill_absent_known_fields, upcast, Step, CHAIN};
pub use tables::{
    kind_bit, known_field, latest_known_version, note_enum, version_number, EnumSpec, FieldSpec,
    FieldType, KindSet, ACD_OUTCOMES, DIRECTIONS, DISCONNECT_TYPES, EXIT_REASONS, FLOW_TYPES,
    HEADER_FIELDS, KNOWN_DETAIL_VERSIONS, KNOWN_FIELDS, MEDIA_TYPES, MESSAGE_TYPES, ROUTINGS,
    TRANSFER_TYPES,
};
