//! Every `eventBody` member name this build knows ([`HEADER_FIELDS`],
//! [`KNOWN_FIELDS`], `eventTime`, `conversationId`) as a small [`FieldId`],
//! found by a collision-free hash table, and the per-kind field lists.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use crate::model::EventKind;

use super::tables::{kind_bit, FieldSpec, KindSet, HEADER_FIELDS, KNOWN_FIELDS};

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
pub(super) fn unknown_rank(name: &str) -> u16 {
    let below = names().sorted.partition_point(|(n, _)| *n < name);
    2 * u16::try_from(below).unwrap_or(u16::MAX / 2)
}

/// The kind fields of one kind, in table order (Genesys names sorted).
pub fn fields_of(kind: EventKind) -> impl Iterator<Item = &'static FieldSpec> {
    kind_fields(kind).iter().map(|(_, spec)| *spec)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn known_names_have_ids_in_name_order() {
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
}
