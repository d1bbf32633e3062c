//! The serde mirror of a topology file (`topologies/*.toml`).
//!
//! These types stay as close to the file as possible; [`super::Plan`] is
//! built from them only after parsing has completely finished. Every struct
//! denies unknown keys so that a typo is an error naming the key and line.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// A whole topology file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTopology {
    /// Topology name: written into lineage hops and internal topic names.
    pub name: Spanned<String>,
    pub input: RawInput,
    pub output: RawOutput,
    #[serde(default)]
    pub internal: RawInternal,
    #[serde(default)]
    pub topics: RawTopics,
    #[serde(default)]
    pub runtime: RawRuntime,
    /// librdkafka client settings passed through as they are
    /// (`security.protocol`, `sasl.*`, `ssl.*`, …).
    #[serde(default)]
    pub kafka: BTreeMap<String, Spanned<toml::Value>>,
    /// The operator chain, in order.
    pub operators: Vec<Spanned<RawOperator>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInput {
    /// The bronze topic (Genesys events as the connectors publish them).
    pub topic: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    pub silver: Spanned<String>,
    pub late: Spanned<String>,
    pub dead_letter: Spanned<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInternal {
    /// Repartition topic for events whose record is not on their
    /// interaction's partition. Default: `cx.internal.<name>.repartition`.
    pub repartition: Option<Spanned<String>>,
    /// State changelog (dedup fingerprints, emitted event times, dead-letter
    /// positions), co-partitioned with the input. Default:
    /// `cx.internal.<name>.changelog`.
    pub changelog: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTopics {
    /// Create missing output and internal topics at start-up (default true).
    pub create: Option<bool>,
    /// Partitions for created topics; default: the input's partition count.
    pub partitions: Option<Spanned<i64>>,
    /// Replication factor for created topics; default -1 (broker default).
    pub replication_factor: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRuntime {
    /// How often acknowledged input offsets are committed (default "1s").
    pub commit_interval: Option<Spanned<String>>,
    /// Input records in flight (read but not fully acknowledged) before
    /// consumption pauses (default 200000).
    pub max_in_flight: Option<Spanned<i64>>,
    /// Exactly-once mechanism: "replay" (default, any broker) or
    /// "transactions" (brokers with full transaction support).
    pub delivery: Option<Spanned<String>>,
    /// Transactional id prefix (transactions mode); default: the group id.
    pub transactional_id: Option<Spanned<String>>,
    /// Bytes of the rejected record kept in a dead letter that carries a
    /// reference instead of the whole record (default 1024).
    pub dead_letter_prefix: Option<Spanned<i64>>,
}

/// One operator of the chain, tagged by `type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawOperator {
    Decode {
        /// Reject events more than this far ahead of their record's broker
        /// timestamp (default "1h"; "off" disables the check).
        max_future_skew: Option<String>,
        /// Reject events before this instant (default
        /// "2000-01-01T00:00:00Z"; "off" disables the check).
        min_event_time: Option<String>,
    },
    Filter {
        /// Media types to keep (e.g. VOICE, CHAT, EMAIL). Events that carry no
        /// media type (attribute updates) always pass.
        media_types: Vec<String>,
    },
    Dedup {
        ttl: Option<String>,
        max_keys: Option<i64>,
    },
    Reorder {
        allowed_lateness: Option<String>,
        idle_timeout: Option<String>,
        max_buffered: Option<i64>,
        state_retention: Option<String>,
        /// Events that must agree before the watermark jumps (default 3;
        /// 1 trusts every event).
        watermark_quorum: Option<i64>,
        /// How far ahead one event may move the watermark alone (default "1m").
        watermark_jump: Option<String>,
    },
    Mask {
        /// Per-field policy: "hash" (default), "redact" or "keep".
        #[serde(default)]
        fields: BTreeMap<String, String>,
    },
    Lineage {},
}

impl RawOperator {
    pub fn type_name(&self) -> &'static str {
        match self {
            RawOperator::Decode { .. } => "decode",
            RawOperator::Filter { .. } => "filter",
            RawOperator::Dedup { .. } => "dedup",
            RawOperator::Reorder { .. } => "reorder",
            RawOperator::Mask { .. } => "mask",
            RawOperator::Lineage {} => "lineage",
        }
    }
}
