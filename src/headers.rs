//! Header names of the dead-letter, lineage and state contract (every record
//! cxstream writes carries some of them).

pub const LINEAGE_TOKEN: &str = "cx.lineage.token";
pub const LINEAGE_HOPS: &str = "cx.lineage.hops";
pub const LATE_REASON: &str = "cx.late.reason";
pub const ERROR_CLASS: &str = "cx.error.class";
pub const ERROR_MESSAGE: &str = "cx.error.message";
pub const ERROR_STAGE: &str = "cx.error.stage";
pub const SOURCE_TOPIC: &str = "cx.source.topic";
pub const SOURCE_PARTITION: &str = "cx.source.partition";
pub const SOURCE_OFFSET: &str = "cx.source.offset";
pub const FAILED_AT: &str = "cx.failed_at";
/// Marks a watermark marker on the repartition topic (not an event).
pub const MARKER: &str = "cx.marker";
/// Silver and late records: `<event_time_ms>;<fingerprints>` for state
/// restore (see [`crate::state::state_header`]).
pub const STATE: &str = "cx.state";
/// Dead letters: byte offset of the rejected unit in the source record.
pub const SOURCE_UNIT: &str = "cx.source.unit";
/// Reference-form dead letters: `true` (the value is only the first
/// bytes of the rejected record).
pub const TRUNCATED: &str = "cx.dlq.truncated";
/// Reference-form dead letters: size of the rejected record in bytes.
pub const ORIGINAL_SIZE: &str = "cx.original.size";
/// Reference-form dead letters: SHA-256 (hex) of the rejected record.
pub const ORIGINAL_SHA256: &str = "cx.original.sha256";
/// Records forwarded to the repartition topic by a checkpointed stage:
/// `<input partition>;<offset>;<unit>` of the input record (the replay
/// guard: a restarted task does not forward what is already there).
pub const SOURCE_POSITION: &str = "cx.src";
/// Changelog records of checkpointed state: their format version.
pub const STATE_FORMAT: &str = "cx.state.format";
/// Changelog state records of checkpointed state: the checkpoint epoch
/// that confirms them.
pub const STATE_EPOCH: &str = "cx.state.epoch";
