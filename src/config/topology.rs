//! The serde mirror of a topology file (`topologies/*.toml`).
//!
//! These types stay as close to the file as possible; [`super::Plan`] is
//! built from them only after parsing has completely finished. Every struct
//! denies unknown keys so that a typo is an error naming the key and line;
//! operator tables keep each key's span and are checked by the validator.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

/// A whole topology file: settings shared by its stages, then the stages.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTopology {
    /// Topology name: written into lineage hops and internal topic names.
    pub name: Spanned<String>,
    #[serde(default)]
    pub topics: RawTopics,
    #[serde(default)]
    pub runtime: RawRuntime,
    /// librdkafka client settings passed through as they are
    /// (`security.protocol`, `sasl.*`, `ssl.*`, …).
    #[serde(default)]
    pub kafka: BTreeMap<String, Spanned<toml::Value>>,
    /// The stages (`[[stages]]`), each run by its own consumer group.
    #[serde(default)]
    pub stages: Vec<Spanned<RawStage>>,
    /// Keys of the single-stage layout before `[[stages]]`: kept only to
    /// say where they moved.
    #[serde(default)]
    pub input: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub output: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub internal: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub operators: Option<Spanned<toml::Value>>,
}

/// One `[[stages]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    /// Names the stage: its consumer group is `<group id>.<name>`.
    pub name: Spanned<String>,
    /// What the stage does (`"silver"`).
    pub kind: Spanned<String>,
    /// The topics it reads (co-partitioned).
    pub inputs: Spanned<Vec<Spanned<String>>>,
    /// Named output ports: `name = { topic = "...", format = "json" }`.
    #[serde(default)]
    pub ports: BTreeMap<Spanned<String>, Spanned<RawPort>>,
    /// Where records it cannot process go, with the reason.
    pub dead_letter: Spanned<String>,
    #[serde(default)]
    pub internal: RawInternal,
    /// The stage's operator chain, in order (`[[stages.operators]]`).
    #[serde(default)]
    pub operators: Vec<Spanned<RawOperatorTable>>,
}

/// One output port.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPort {
    pub topic: Spanned<String>,
    /// `"json"` (default).
    pub format: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInternal {
    /// Repartition topic for events whose record is not on their
    /// interaction's partition. Default:
    /// `cx.internal.<topology>.<stage>.repartition`.
    pub repartition: Option<Spanned<String>>,
    /// State changelog (dedup fingerprints, emitted event times, dead-letter
    /// positions), co-partitioned with the input. Default:
    /// `cx.internal.<topology>.<stage>.changelog`.
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
    /// Records produced (outputs, forwards, changelog) and not yet
    /// acknowledged by the broker before consumption pauses; it resumes
    /// below half (default 50000).
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

/// One `[[stages.operators]]` table as written: its keys in document order, each
/// with its span, so that every error about an operator names the key's own
/// line. The operator's type and its keys are checked by the validator
/// (`ORDER` in the parent module), not by serde: serde's internally tagged enums
/// buffer the table and lose every span inside it.
#[derive(Debug, Default)]
pub struct RawOperatorTable {
    pub entries: Vec<RawEntry>,
}

/// One key of an operator table.
#[derive(Debug)]
pub struct RawEntry {
    pub key: Spanned<String>,
    pub value: RawValue,
}

/// The value of an operator key.
#[derive(Debug)]
pub enum RawValue {
    /// Any TOML value (types are checked by the validator).
    Value(toml::Value),
    /// The table under `fields` (the mask operator's policies) or `rename`
    /// (the activity log's names), its keys with their spans.
    Table(Vec<(Spanned<String>, toml::Value)>),
}

/// The operator keys whose value is a table of its own.
const TABLE_KEYS: [&str; 2] = ["fields", "rename"];

impl<'de> Deserialize<'de> for RawOperatorTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TableVisitor;
        impl<'de> Visitor<'de> for TableVisitor {
            type Value = RawOperatorTable;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an operator table (`[[stages.operators]]` with a `type` key)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    let value = if TABLE_KEYS.contains(&key.get_ref().as_str()) {
                        map.next_value::<SpannedTable>()?.0
                    } else {
                        RawValue::Value(map.next_value()?)
                    };
                    entries.push(RawEntry { key, value });
                }
                Ok(RawOperatorTable { entries })
            }
        }
        d.deserialize_map(TableVisitor)
    }
}

/// A table whose keys keep their spans; any other value as it is (the
/// validator then reports that it is not a table).
struct SpannedTable(RawValue);

impl<'de> Deserialize<'de> for SpannedTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = SpannedTable;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(SpannedTable(RawValue::Value(v.into())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(SpannedTable(RawValue::Value(v.into())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(SpannedTable(RawValue::Value(v.into())))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(SpannedTable(RawValue::Value(v.into())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(v) = seq.next_element::<toml::Value>()? {
                    items.push(v);
                }
                Ok(SpannedTable(RawValue::Value(toml::Value::Array(items))))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(SpannedTable(RawValue::Table(entries)))
            }
        }
        d.deserialize_any(ValueVisitor)
    }
}
