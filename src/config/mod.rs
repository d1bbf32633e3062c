//! Topology configuration: parsing a TOML file into a validated [`Plan`].
//!
//! [`topology`] holds the raw serde types; this module checks them (operator
//! order, durations, policies, topic names) and builds the runtime settings of
//! each operator. Every error names the key and the line.

pub mod topology;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use crate::operators::dedup::DedupSettings;
use crate::operators::mask::{MaskPolicies, Policy};
use crate::operators::plausibility::EventTimeBounds;
use crate::operators::progress::ProgressSettings;
use crate::operators::reorder::ReorderSettings;
use topology::{RawEntry, RawOperatorTable, RawTopology, RawValue};

/// Errors loading or validating a topology.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read topology {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Syntax errors, unknown keys and wrong types; toml's message names the
    /// key and shows the line.
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: line {line}: `{key}`: {message}")]
    Invalid {
        path: String,
        key: String,
        line: usize,
        message: String,
    },
}

/// A validated topology: what the runtime executes.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub input_topic: String,
    pub silver_topic: String,
    pub late_topic: String,
    pub dead_letter_topic: String,
    pub repartition_topic: String,
    pub changelog_topic: String,
    pub create_topics: bool,
    /// `None`: the input topic's partition count.
    pub partitions: Option<i32>,
    pub replication_factor: i32,
    pub commit_interval: Duration,
    pub max_in_flight: usize,
    pub delivery: Delivery,
    /// Transactional id prefix; `None`: the group id.
    pub transactional_id: Option<String>,
    /// librdkafka settings from the topology (`[kafka]`).
    pub kafka: BTreeMap<String, String>,
    /// Operators in chain order (names), for display.
    pub chain: Vec<&'static str>,
    /// `Some`: keep only these media types (upper-case).
    pub media_filter: Option<Vec<String>>,
    pub dedup: Option<DedupSettings>,
    pub reorder: Option<ReorderSettings>,
    pub mask: MaskPolicies,
    /// Plausible event times (decode operator settings).
    pub event_time_bounds: EventTimeBounds,
    /// Bytes of the rejected record a reference-form dead letter keeps.
    pub dead_letter_prefix: usize,
}

/// Default of `runtime.dead_letter_prefix`.
pub const DEFAULT_DEAD_LETTER_PREFIX: usize = 1024;

/// How results are made exactly-once across crashes (`runtime.delivery`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Broker-independent: an idempotent producer, state restored from the
    /// changelog and from the tail of the output topics, so records re-read
    /// after a crash are recognised as already emitted and dropped.
    Replay,
    /// Kafka transactions: outputs, changelog and consumed offsets commit
    /// atomically; internal topics are read `read_committed`.
    Transactions,
}

impl Delivery {
    pub fn name(self) -> &'static str {
        match self {
            Delivery::Replay => "replay",
            Delivery::Transactions => "transactions",
        }
    }
}

/// Which operator a table configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Decode,
    Filter,
    Dedup,
    Reorder,
    Mask,
    Lineage,
}

/// An operator type: its `type` name, whether the chain needs it, and the
/// keys its table takes besides `type`.
struct OperatorSpec {
    name: &'static str,
    kind: OpKind,
    required: bool,
    keys: &'static [&'static str],
}

/// The required position of each operator type; optional ones may be left out.
///
/// * `decode`: `max_future_skew` (reject events more than this far ahead of
///   their record's broker timestamp, default "1h", "off" disables it) and
///   `min_event_time` (reject events before this instant, default
///   "2000-01-01T00:00:00Z", "off" disables it);
/// * `filter`: `media_types` (required; events without a media type, e.g.
///   attribute updates, always pass);
/// * `dedup`: `ttl`, `max_keys`;
/// * `reorder`: `allowed_lateness`, `idle_timeout`, `max_buffered`,
///   `state_retention`, `watermark_quorum` (events that must agree before the
///   watermark jumps, default 3), `watermark_jump` (how far one event may
///   move it alone, default "1m");
/// * `mask`: `fields`, a table of field = "hash" (default) | "redact" | "keep";
/// * `lineage`: no keys.
const ORDER: [OperatorSpec; 6] = [
    OperatorSpec {
        name: "decode",
        kind: OpKind::Decode,
        required: true,
        keys: &["max_future_skew", "min_event_time"],
    },
    OperatorSpec {
        name: "filter",
        kind: OpKind::Filter,
        required: false,
        keys: &["media_types"],
    },
    OperatorSpec {
        name: "dedup",
        kind: OpKind::Dedup,
        required: false,
        keys: &["ttl", "max_keys"],
    },
    OperatorSpec {
        name: "reorder",
        kind: OpKind::Reorder,
        required: false,
        keys: &[
            "allowed_lateness",
            "idle_timeout",
            "max_buffered",
            "state_retention",
            "watermark_quorum",
            "watermark_jump",
        ],
    },
    OperatorSpec {
        name: "mask",
        kind: OpKind::Mask,
        required: true,
        keys: &["fields"],
    },
    OperatorSpec {
        name: "lineage",
        kind: OpKind::Lineage,
        required: true,
        keys: &[],
    },
];

/// Reads and validates a topology file.
pub fn load(path: &Path) -> Result<Plan, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses and validates topology text; `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<Plan, ConfigError> {
    let raw: RawTopology = toml::from_str(text).map_err(|e| parse_error(text, origin, &e))?;
    Validator { text, origin }.plan(raw)
}

/// An unknown key outside the operator tables (those are checked by the
/// validator): reported like a validator error, naming the key and its own
/// line.
fn parse_error(text: &str, origin: &str, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim_end().to_string();
    let unknown = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next());
    if let (Some(key), Some(span)) = (unknown, e.span()) {
        let start_line = text[..span.start.min(text.len())].matches('\n').count();
        let found = text.lines().enumerate().skip(start_line).find(|(_, l)| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|r| r.trim_start().starts_with('='))
        });
        if let Some((idx, _)) = found {
            return ConfigError::Invalid {
                path: origin.to_string(),
                key: key.to_string(),
                line: idx + 1,
                message,
            };
        }
    }
    ConfigError::Parse {
        path: origin.to_string(),
        message: e.to_string().trim_end().to_string(),
    }
}

struct Validator<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Validator<'_> {
    fn line(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn invalid(&self, key: &str, span: &Range<usize>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.origin.to_string(),
            key: key.to_string(),
            line: self.line(span),
            message: message.into(),
        }
    }

    fn topic(&self, key: &str, v: &Spanned<String>) -> Result<String, ConfigError> {
        let name = v.get_ref();
        let valid = !name.is_empty()
            && name.len() <= 249
            && name != "."
            && name != ".."
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if valid {
            Ok(name.clone())
        } else {
            Err(self.invalid(
                key,
                &v.span(),
                "not a valid Kafka topic name (1-249 of [a-zA-Z0-9._-])",
            ))
        }
    }

    fn duration_of(
        &self,
        key: &str,
        span: &Range<usize>,
        v: &str,
    ) -> Result<Duration, ConfigError> {
        humantime::parse_duration(v).map_err(|e| {
            self.invalid(
                key,
                span,
                format!("not a duration ({e}); use e.g. \"5s\", \"500ms\", \"24h\""),
            )
        })
    }

    fn instant(&self, key: &str, span: &Range<usize>, v: &str) -> Result<i64, ConfigError> {
        time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
            .map_err(|_| {
                self.invalid(
                    key,
                    span,
                    "not an RFC 3339 instant; use e.g. \"2000-01-01T00:00:00Z\", or \"off\"",
                )
            })
    }

    fn positive(&self, key: &str, span: &Range<usize>, v: i64) -> Result<u64, ConfigError> {
        u64::try_from(v)
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| self.invalid(key, span, "must be a positive integer"))
    }

    fn plan(&self, raw: RawTopology) -> Result<Plan, ConfigError> {
        let name = raw.name.get_ref().clone();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(self.invalid("name", &raw.name.span(), "use 1+ of [a-zA-Z0-9._-]"));
        }
        let input_topic = self.topic("input.topic", &raw.input.topic)?;
        let silver_topic = self.topic("output.silver", &raw.output.silver)?;
        let late_topic = self.topic("output.late", &raw.output.late)?;
        let dead_letter_topic = self.topic("output.dead_letter", &raw.output.dead_letter)?;
        let repartition_topic = match &raw.internal.repartition {
            Some(t) => self.topic("internal.repartition", t)?,
            None => format!("cx.internal.{name}.repartition"),
        };
        let changelog_topic = match &raw.internal.changelog {
            Some(t) => self.topic("internal.changelog", t)?,
            None => format!("cx.internal.{name}.changelog"),
        };
        let mut seen = BTreeMap::new();
        for (key, t) in [
            ("input.topic", &input_topic),
            ("output.silver", &silver_topic),
            ("output.late", &late_topic),
            ("output.dead_letter", &dead_letter_topic),
            ("internal.repartition", &repartition_topic),
            ("internal.changelog", &changelog_topic),
        ] {
            if let Some(other) = seen.insert(t.clone(), key) {
                return Err(self.invalid(
                    key,
                    &raw.output.silver.span(),
                    format!("uses the same topic as `{other}`; every topic must be distinct"),
                ));
            }
        }

        let partitions = match &raw.topics.partitions {
            None => None,
            Some(p) if *p.get_ref() == 0 => None,
            Some(p) => Some(
                i32::try_from(self.positive("topics.partitions", &p.span(), *p.get_ref())?)
                    .map_err(|_| self.invalid("topics.partitions", &p.span(), "too large"))?,
            ),
        };
        let replication_factor = match &raw.topics.replication_factor {
            None => -1,
            Some(r) => {
                let v = *r.get_ref();
                if v == -1 || (1..=32).contains(&v) {
                    v as i32
                } else {
                    return Err(self.invalid(
                        "topics.replication_factor",
                        &r.span(),
                        "must be -1 (broker default) or 1..32",
                    ));
                }
            }
        };
        let commit_interval = match &raw.runtime.commit_interval {
            None => Duration::from_secs(1),
            Some(s) => self.duration_of("runtime.commit_interval", &s.span(), s.get_ref())?,
        };
        let max_in_flight = match &raw.runtime.max_in_flight {
            None => 50_000,
            Some(v) => self.positive("runtime.max_in_flight", &v.span(), *v.get_ref())? as usize,
        };
        let delivery = match &raw.runtime.delivery {
            None => Delivery::Replay,
            Some(v) => match v.get_ref().as_str() {
                "replay" => Delivery::Replay,
                "transactions" => Delivery::Transactions,
                _ => {
                    return Err(self.invalid(
                        "runtime.delivery",
                        &v.span(),
                        "must be \"replay\" (any broker) or \"transactions\" (brokers with full transaction support)",
                    ))
                }
            },
        };
        let transactional_id = match &raw.runtime.transactional_id {
            None => None,
            Some(v) if v.get_ref().trim().is_empty() => {
                return Err(self.invalid(
                    "runtime.transactional_id",
                    &v.span(),
                    "must not be empty",
                ))
            }
            Some(v) => Some(v.get_ref().clone()),
        };

        let dead_letter_prefix = match &raw.runtime.dead_letter_prefix {
            None => DEFAULT_DEAD_LETTER_PREFIX,
            Some(v) => match usize::try_from(*v.get_ref()) {
                Ok(n) if n <= 65_536 => n,
                _ => {
                    return Err(self.invalid(
                        "runtime.dead_letter_prefix",
                        &v.span(),
                        "must be 0..65536 (bytes)",
                    ))
                }
            },
        };

        let mut kafka = BTreeMap::new();
        for (k, v) in &raw.kafka {
            let s = match v.get_ref() {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Float(f) => f.to_string(),
                _ => {
                    return Err(self.invalid(
                        &format!("kafka.{k}"),
                        &v.span(),
                        "client settings take a string, number or boolean",
                    ))
                }
            };
            if matches!(k.as_str(), "group.id" | "bootstrap.servers") {
                return Err(self.invalid(
                    &format!("kafka.{k}"),
                    &v.span(),
                    "set this with --brokers / --group-id instead",
                ));
            }
            kafka.insert(k.clone(), s);
        }

        let mut plan = Plan {
            name,
            input_topic,
            silver_topic,
            late_topic,
            dead_letter_topic,
            repartition_topic,
            changelog_topic,
            create_topics: raw.topics.create.unwrap_or(true),
            partitions,
            replication_factor,
            commit_interval,
            max_in_flight,
            delivery,
            transactional_id,
            kafka,
            chain: Vec::new(),
            media_filter: None,
            dedup: None,
            reorder: None,
            mask: MaskPolicies::default(),
            event_time_bounds: EventTimeBounds::default(),
            dead_letter_prefix,
        };
        self.operators(&raw.operators, &mut plan)?;
        Ok(plan)
    }

    fn operators(
        &self,
        ops: &[Spanned<RawOperatorTable>],
        plan: &mut Plan,
    ) -> Result<(), ConfigError> {
        let mut next = 0usize;
        for (index, table) in ops.iter().enumerate() {
            let header = table.span();
            let key = format!("operators[{index}]");
            let entries = &table.get_ref().entries;
            let pos = self.operator_type(&key, &header, entries)?;
            let spec = &ORDER[pos];
            let ty = spec.name;
            // Keys are checked before values: a typo is named as such, not
            // as a missing key.
            if let Some(e) = entries.iter().find(|e| {
                e.key.get_ref() != "type" && !spec.keys.contains(&e.key.get_ref().as_str())
            }) {
                return Err(self.invalid(
                    &format!("{key}.{}", e.key.get_ref()),
                    &e.key.span(),
                    format!(
                        "unknown key for a `{ty}` operator; expected {}",
                        expected_keys(spec)
                    ),
                ));
            }
            if pos < next {
                return Err(self.invalid(
                    &key,
                    &header,
                    format!(
                        "operator `{ty}` is out of order or repeated; the chain is {}",
                        chain_help()
                    ),
                ));
            }
            if let Some(missing) = ORDER[next..pos].iter().find(|s| s.required) {
                return Err(self.invalid(
                    &key,
                    &header,
                    format!(
                        "operator `{}` must come before `{ty}`; the chain is {}",
                        missing.name,
                        chain_help()
                    ),
                ));
            }
            next = pos + 1;
            plan.chain.push(ty);
            let op = Op {
                index,
                header,
                entries,
            };
            match spec.kind {
                OpKind::Lineage => {}
                OpKind::Decode => {
                    let d = EventTimeBounds::default();
                    let skew = self.op_str(&op, "max_future_skew", DURATION_OR_OFF)?;
                    let min = self.op_str(&op, "min_event_time", INSTANT_OR_OFF)?;
                    plan.event_time_bounds = EventTimeBounds {
                        max_future_skew: match skew {
                            None => d.max_future_skew,
                            Some(("off", _)) => None,
                            Some((v, span)) => {
                                Some(self.duration_of(&op.path("max_future_skew"), &span, v)?)
                            }
                        },
                        min_event_time_ms: match min {
                            None => d.min_event_time_ms,
                            Some(("off", _)) => None,
                            Some((v, span)) => {
                                Some(self.instant(&op.path("min_event_time"), &span, v)?)
                            }
                        },
                    };
                }
                OpKind::Filter => {
                    let Some((media_types, span)) = self.op_str_list(&op, "media_types")? else {
                        return Err(self.invalid(
                            &op.path("media_types"),
                            &op.header,
                            "missing key: list the media types to keep, e.g. [\"VOICE\", \"CHAT\"]",
                        ));
                    };
                    if media_types.is_empty() {
                        return Err(self.invalid(
                            &op.path("media_types"),
                            &span,
                            "list at least one media type, or remove the filter",
                        ));
                    }
                    plan.media_filter = Some(
                        media_types
                            .iter()
                            .map(|m| m.trim().to_ascii_uppercase())
                            .collect(),
                    );
                }
                OpKind::Dedup => {
                    let d = DedupSettings::default();
                    plan.dedup = Some(DedupSettings {
                        ttl: self.op_duration(&op, "ttl", d.ttl)?,
                        max_keys: self.op_positive(&op, "max_keys")?.unwrap_or(d.max_keys),
                    });
                }
                OpKind::Reorder => {
                    let d = ReorderSettings::default();
                    let quorum = match self.op_positive(&op, "watermark_quorum")? {
                        None => d.progress.quorum,
                        Some(q) if q > 100 => {
                            let span = op.key_span("watermark_quorum").unwrap_or(op.header.clone());
                            return Err(self.invalid(
                                &op.path("watermark_quorum"),
                                &span,
                                "must be 1..100",
                            ));
                        }
                        Some(q) => q as usize,
                    };
                    let progress = ProgressSettings {
                        quorum,
                        jump: self.op_duration(&op, "watermark_jump", d.progress.jump)?,
                    };
                    plan.reorder = Some(ReorderSettings {
                        allowed_lateness: self.op_duration(
                            &op,
                            "allowed_lateness",
                            d.allowed_lateness,
                        )?,
                        idle_timeout: self.op_duration(&op, "idle_timeout", d.idle_timeout)?,
                        max_buffered: self
                            .op_positive(&op, "max_buffered")?
                            .map_or(d.max_buffered, |n| n as usize),
                        state_retention: self.op_duration(
                            &op,
                            "state_retention",
                            d.state_retention,
                        )?,
                        progress,
                    });
                }
                OpKind::Mask => {
                    for (field, policy) in self.op_table(&op, "fields")? {
                        let fkey = op.path(&format!("fields.{}", field.get_ref()));
                        let span = field.span();
                        let toml::Value::String(policy) = policy else {
                            return Err(self.invalid(
                                &fkey,
                                &span,
                                format!(
                                    "policy must be \"hash\", \"redact\" or \"keep\", not {}",
                                    a_type(policy)
                                ),
                            ));
                        };
                        let p: Policy = policy.parse().map_err(|_| {
                            self.invalid(
                                &fkey,
                                &span,
                                "policy must be \"hash\", \"redact\" or \"keep\"",
                            )
                        })?;
                        plan.mask
                            .set(field.get_ref(), p)
                            .map_err(|e| self.invalid(&fkey, &span, e.to_string()))?;
                    }
                }
            }
        }
        if let Some(missing) = ORDER[next..].iter().find(|s| s.required) {
            return Err(ConfigError::Invalid {
                path: self.origin.to_string(),
                key: "operators".into(),
                line: self.line(&(self.text.len()..self.text.len())),
                message: format!(
                    "operator `{}` is required; the chain is {}",
                    missing.name,
                    chain_help()
                ),
            });
        }
        Ok(())
    }

    /// The position in [`ORDER`] of the operator's `type`.
    fn operator_type(
        &self,
        key: &str,
        header: &Range<usize>,
        entries: &[RawEntry],
    ) -> Result<usize, ConfigError> {
        let types = || {
            ORDER
                .iter()
                .map(|s| format!("\"{}\"", s.name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Some(e) = entries.iter().find(|e| e.key.get_ref() == "type") else {
            return Err(self.invalid(
                key,
                header,
                format!("missing key `type`: one of {}", types()),
            ));
        };
        let tkey = format!("{key}.type");
        match &e.value {
            RawValue::Value(toml::Value::String(ty)) => {
                ORDER.iter().position(|s| s.name == ty).ok_or_else(|| {
                    self.invalid(
                        &tkey,
                        &e.key.span(),
                        format!("unknown operator type; expected one of {}", types()),
                    )
                })
            }
            other => Err(self.invalid(
                &tkey,
                &e.key.span(),
                format!(
                    "must be a string, one of {}, not {}",
                    types(),
                    a_raw_type(other)
                ),
            )),
        }
    }

    /// The value of `key` in `op` with the span of its key, if present.
    fn op_value<'v>(&self, op: &Op<'v>, key: &str) -> Option<At<&'v RawValue>> {
        op.entry(key).map(|e| (&e.value, e.key.span()))
    }

    /// Refuses the value of `key` (of the wrong type), naming the key,
    /// its line and what it takes.
    fn op_wrong_type(
        &self,
        op: &Op<'_>,
        key: &str,
        span: &Range<usize>,
        v: &RawValue,
        expected: &str,
    ) -> ConfigError {
        self.invalid(
            &op.path(key),
            span,
            format!("must be {expected}, not {}", a_raw_type(v)),
        )
    }

    fn op_str<'v>(
        &self,
        op: &Op<'v>,
        key: &str,
        expected: &str,
    ) -> Result<Option<At<&'v str>>, ConfigError> {
        match self.op_value(op, key) {
            None => Ok(None),
            Some((RawValue::Value(toml::Value::String(s)), span)) => Ok(Some((s.as_str(), span))),
            Some((v, span)) => Err(self.op_wrong_type(op, key, &span, v, expected)),
        }
    }

    fn op_str_list<'v>(
        &self,
        op: &Op<'v>,
        key: &str,
    ) -> Result<Option<At<Vec<&'v str>>>, ConfigError> {
        const EXPECTED: &str = "a list of strings, e.g. [\"VOICE\", \"CHAT\"]";
        match self.op_value(op, key) {
            None => Ok(None),
            Some((v @ RawValue::Value(toml::Value::Array(items)), span)) => {
                let strs: Option<Vec<&str>> = items.iter().map(toml::Value::as_str).collect();
                match strs {
                    Some(strs) => Ok(Some((strs, span))),
                    None => Err(self.op_wrong_type(op, key, &span, v, EXPECTED)),
                }
            }
            Some((v, span)) => Err(self.op_wrong_type(op, key, &span, v, EXPECTED)),
        }
    }

    /// A positive integer under `key`.
    fn op_positive(&self, op: &Op<'_>, key: &str) -> Result<Option<u64>, ConfigError> {
        match self.op_value(op, key) {
            None => Ok(None),
            Some((RawValue::Value(toml::Value::Integer(n)), span)) => {
                self.positive(&op.path(key), &span, *n).map(Some)
            }
            Some((v, span)) => Err(self.op_wrong_type(op, key, &span, v, "a positive integer")),
        }
    }

    /// A duration under `key` (e.g. "5s"), else `default`.
    fn op_duration(
        &self,
        op: &Op<'_>,
        key: &str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match self.op_str(op, key, DURATION)? {
            None => Ok(default),
            Some((v, span)) => self.duration_of(&op.path(key), &span, v),
        }
    }

    /// The table under `key` (empty when absent), each key with its span.
    fn op_table<'v>(
        &self,
        op: &Op<'v>,
        key: &str,
    ) -> Result<&'v [(Spanned<String>, toml::Value)], ConfigError> {
        match self.op_value(op, key) {
            None => Ok(&[]),
            Some((RawValue::Table(entries), _)) => Ok(entries),
            Some((v, span)) => Err(self.op_wrong_type(
                op,
                key,
                &span,
                v,
                "a table of field = \"policy\" (e.g. `[operators.fields]` then `ani = \"hash\"`)",
            )),
        }
    }
}

/// What a duration key takes.
const DURATION: &str = "a duration in quotes, e.g. \"5s\", \"500ms\", \"24h\"";
/// What `max_future_skew` takes.
const DURATION_OR_OFF: &str = "a duration in quotes (e.g. \"1h\") or \"off\"";
/// What `min_event_time` takes.
const INSTANT_OR_OFF: &str =
    "an RFC 3339 instant in quotes (e.g. \"2000-01-01T00:00:00Z\") or \"off\"";

/// An operator value with the span of its key.
type At<T> = (T, Range<usize>);

/// One operator table being validated.
struct Op<'v> {
    index: usize,
    /// The table's span (its `[[operators]]` header first).
    header: Range<usize>,
    entries: &'v [RawEntry],
}

impl<'v> Op<'v> {
    /// `operators[i].key`.
    fn path(&self, key: &str) -> String {
        format!("operators[{}].{key}", self.index)
    }

    fn entry(&self, key: &str) -> Option<&'v RawEntry> {
        self.entries.iter().find(|e| e.key.get_ref() == key)
    }

    fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.entry(key).map(|e| e.key.span())
    }
}

/// The TOML type of `v`, with its article, for error messages.
fn a_type(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date-time",
        toml::Value::Array(items) if items.iter().all(toml::Value::is_str) => "a list of strings",
        toml::Value::Array(_) => "a list holding other values than strings",
        toml::Value::Table(_) => "a table",
    }
}

fn a_raw_type(v: &RawValue) -> &'static str {
    match v {
        RawValue::Value(v) => a_type(v),
        RawValue::Table(_) => "a table",
    }
}

/// The keys an operator takes, for error messages.
fn expected_keys(spec: &OperatorSpec) -> String {
    if spec.keys.is_empty() {
        return "no key besides `type`".into();
    }
    let keys: Vec<String> = std::iter::once("type")
        .chain(spec.keys.iter().copied())
        .map(|k| format!("`{k}`"))
        .collect();
    format!("one of {}", keys.join(", "))
}

fn chain_help() -> String {
    ORDER
        .iter()
        .map(|s| {
            if s.required {
                s.name.to_string()
            } else {
                format!("[{}]", s.name)
            }
        })
        .collect::<Vec<_>>()
        .join(" → ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = include_str!("../../topologies/genesys-silver.toml");

    #[test]
    fn shipped_topology_is_valid() {
        let plan = parse(SHIPPED, "genesys-silver.toml").unwrap();
        assert_eq!(plan.input_topic, "genesys.bronze.events");
        assert_eq!(plan.silver_topic, "cx.silver.events");
        assert_eq!(
            plan.chain,
            ["decode", "filter", "dedup", "reorder", "mask", "lineage"]
        );
        assert_eq!(
            plan.reorder.as_ref().unwrap().allowed_lateness,
            Duration::from_secs(5)
        );
        assert_eq!(
            plan.dedup.as_ref().unwrap().ttl,
            Duration::from_secs(24 * 3600)
        );
    }

    #[test]
    fn event_time_bounds_and_watermark_quorum_default_and_can_be_set_or_turned_off() {
        let plan = parse(SHIPPED, "genesys-silver.toml").unwrap();
        assert_eq!(plan.event_time_bounds, EventTimeBounds::default());
        assert_eq!(plan.dead_letter_prefix, DEFAULT_DEAD_LETTER_PREFIX);
        let r = plan.reorder.as_ref().unwrap();
        assert_eq!(r.progress, ProgressSettings::default());

        // The shipped topology sets these keys: change them in place (a
        // second `key =` line is a TOML duplicate-key error).
        let text = SHIPPED
            .replacen("max_future_skew = \"1h\"", "max_future_skew = \"off\"", 1)
            .replacen(
                "min_event_time = \"2000-01-01T00:00:00Z\"",
                "min_event_time = \"2015-01-01T00:00:00Z\"",
                1,
            )
            .replacen("watermark_quorum = 3", "watermark_quorum = 5", 1)
            .replacen("watermark_jump = \"1m\"", "watermark_jump = \"10m\"", 1)
            .replacen("dead_letter_prefix = 1024", "dead_letter_prefix = 0", 1);
        let plan = parse(&text, "t.toml").unwrap();
        assert_eq!(plan.event_time_bounds.max_future_skew, None);
        assert_eq!(
            plan.event_time_bounds.min_event_time_ms,
            Some(1_420_070_400_000)
        );
        let r = plan.reorder.as_ref().unwrap();
        assert_eq!(r.progress.quorum, 5);
        assert_eq!(r.progress.jump, Duration::from_secs(600));
        assert_eq!(plan.dead_letter_prefix, 0);
        // Left out, each takes its default.
        let bare: String = SHIPPED
            .lines()
            .filter(|l| {
                ![
                    "max_future_skew",
                    "min_event_time",
                    "watermark_",
                    "dead_letter_prefix",
                ]
                .iter()
                .any(|k| l.starts_with(k))
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let plan = parse(&bare, "t.toml").unwrap();
        assert_eq!(plan.event_time_bounds, EventTimeBounds::default());
        assert_eq!(plan.dead_letter_prefix, DEFAULT_DEAD_LETTER_PREFIX);
        assert_eq!(
            plan.reorder.as_ref().unwrap().progress,
            ProgressSettings::default()
        );
    }

    #[test]
    fn bad_event_time_bounds_and_quorum_name_the_key_and_line() {
        for (from, to, want_key) in [
            (
                "max_future_skew = \"1h\"",
                "max_future_skew = \"soon\"",
                "operators[0].max_future_skew",
            ),
            (
                "min_event_time = \"2000-01-01T00:00:00Z\"",
                "min_event_time = \"yesterday\"",
                "operators[0].min_event_time",
            ),
            (
                "watermark_quorum = 3",
                "watermark_quorum = 0",
                "operators[3].watermark_quorum",
            ),
            (
                "watermark_jump = \"1m\"",
                "watermark_jump = \"far\"",
                "operators[3].watermark_jump",
            ),
        ] {
            let (text, want_line) = edited(from, to);
            let (key, line, _) = invalid(&text);
            assert_eq!((key.as_str(), line), (want_key, want_line), "{to}");
        }
        let text = SHIPPED.replacen("dead_letter_prefix = 1024", "dead_letter_prefix = -1", 1);
        let line = text
            .lines()
            .position(|l| l.starts_with("dead_letter_prefix"))
            .unwrap()
            + 1;
        match parse(&text, "t.toml").unwrap_err() {
            ConfigError::Invalid { key, line: l, .. } => {
                assert_eq!(key, "runtime.dead_letter_prefix");
                assert_eq!(l, line);
            }
            e => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn unknown_operator_key_points_at_its_own_line() {
        let text = SHIPPED.replacen("idle_timeout = \"2s\"", "idle_timout = \"2s\"", 1);
        let line = text
            .lines()
            .position(|l| l.starts_with("idle_timout"))
            .unwrap()
            + 1;
        match parse(&text, "t.toml").unwrap_err() {
            ConfigError::Invalid {
                key,
                line: l,
                message,
                ..
            } => {
                assert_eq!((key.as_str(), l), ("operators[3].idle_timout", line));
                assert_eq!(line, 67);
                assert!(
                    message.starts_with("unknown key for a `reorder` operator; expected one of `type`, `allowed_lateness`, `idle_timeout`,"),
                    "suggests the known keys: {message}"
                );
            }
            other => panic!("{other}"),
        }
    }

    /// The key path, line and message of an `Invalid` error.
    fn invalid(text: &str) -> (String, usize, String) {
        match parse(text, "t.toml").unwrap_err() {
            ConfigError::Invalid {
                path,
                key,
                line,
                message,
            } => {
                assert_eq!(path, "t.toml");
                (key, line, message)
            }
            other => panic!("expected an invalid key, got {other:?}"),
        }
    }

    /// A wrong type inside an operator table used to be reported by toml
    /// at the first `[[operators]]` header (line 48), without the operator
    /// or the key: now each names `operators[i].key` and the key's line.
    #[test]
    fn wrong_type_inside_an_operator_names_its_key_path_and_line() {
        for (from, to, want_key, want_line, want_message) in [
            // The second operator.
            (
                "media_types = [\"VOICE\", \"CALLBACK\", \"CHAT\", \"EMAIL\", \"MESSAGE\"]",
                "media_types = \"VOICE\"",
                "operators[1].media_types",
                57,
                "must be a list of strings, e.g. [\"VOICE\", \"CHAT\"], not a string",
            ),
            (
                "media_types = [\"VOICE\", \"CALLBACK\", \"CHAT\", \"EMAIL\", \"MESSAGE\"]",
                "media_types = [\"VOICE\", 2]",
                "operators[1].media_types",
                57,
                "must be a list of strings, e.g. [\"VOICE\", \"CHAT\"], not a list holding other values than strings",
            ),
            (
                "type = \"filter\" ",
                "type = 2 ",
                "operators[1].type",
                56,
                "must be a string, one of \"decode\", \"filter\", \"dedup\", \"reorder\", \"mask\", \"lineage\", not an integer",
            ),
            (
                "max_keys = 1000000",
                "max_keys = \"lots\"",
                "operators[2].max_keys",
                62,
                "must be a positive integer, not a string",
            ),
            (
                "ttl = \"24h\"",
                "ttl = 24",
                "operators[2].ttl",
                61,
                "must be a duration in quotes, e.g. \"5s\", \"500ms\", \"24h\", not an integer",
            ),
            // A TOML date-time where a quoted instant belongs.
            (
                "min_event_time = \"2000-01-01T00:00:00Z\"",
                "min_event_time = 2000-01-01T00:00:00Z",
                "operators[0].min_event_time",
                53,
                "must be an RFC 3339 instant in quotes (e.g. \"2000-01-01T00:00:00Z\") or \"off\", not a date-time",
            ),
            (
                "watermark_quorum = 3",
                "watermark_quorum = 3.5",
                "operators[3].watermark_quorum",
                70,
                "must be a positive integer, not a float",
            ),
            (
                "address_to = \"hash\"",
                "address_to = true",
                "operators[4].fields.address_to",
                82,
                "policy must be \"hash\", \"redact\" or \"keep\", not a boolean",
            ),
        ] {
            let (text, line) = edited(from, to);
            assert_eq!(line, want_line, "{to}");
            let (key, line, message) = invalid(&text);
            assert_eq!(
                (key.as_str(), line, message.as_str()),
                (want_key, want_line, want_message),
                "{to}"
            );
        }
        // The whole message, as `validate` prints it.
        let (text, _) = edited(
            "media_types = [\"VOICE\", \"CALLBACK\", \"CHAT\", \"EMAIL\", \"MESSAGE\"]",
            "media_types = \"VOICE\"",
        );
        assert_eq!(
            parse(&text, "t.toml").unwrap_err().to_string(),
            "t.toml: line 57: `operators[1].media_types`: \
             must be a list of strings, e.g. [\"VOICE\", \"CHAT\"], not a string"
        );
    }

    /// Validator errors used to point at the operator's `[[operators]]`
    /// line; now at the key's own line.
    #[test]
    fn validator_errors_name_the_key_path_and_its_line() {
        for (from, to, want_key, want_line) in [
            (
                "media_types = [\"VOICE\", \"CALLBACK\", \"CHAT\", \"EMAIL\", \"MESSAGE\"]",
                "media_types = []",
                "operators[1].media_types",
                57,
            ),
            ("ttl = \"24h\"", "ttl = \"a day\"", "operators[2].ttl", 61),
            (
                "max_keys = 1000000",
                "max_keys = 0",
                "operators[2].max_keys",
                62,
            ),
            (
                "idle_timeout = \"2s\"",
                "idle_timeout = \"2 fortnights\"",
                "operators[3].idle_timeout",
                67,
            ),
            (
                "max_buffered = 100000",
                "max_buffered = -5",
                "operators[3].max_buffered",
                68,
            ),
            (
                "state_retention = \"1h\"",
                "state_retention = \"\"",
                "operators[3].state_retention",
                69,
            ),
            (
                "watermark_quorum = 3",
                "watermark_quorum = 101",
                "operators[3].watermark_quorum",
                70,
            ),
            (
                "attributes = \"hash\"",
                "attributes = \"scramble\"",
                "operators[4].fields.attributes",
                87,
            ),
            (
                "wrapup_notes = \"hash\"",
                "queue_id = \"hash\"",
                "operators[4].fields.queue_id",
                86,
            ),
            // A key that belongs to another operator type.
            (
                "allowed_lateness = \"5s\"",
                "ttl = \"5s\"",
                "operators[3].ttl",
                66,
            ),
        ] {
            let (text, line) = edited(from, to);
            assert_eq!(line, want_line, "{to}");
            let (key, line, message) = invalid(&text);
            assert_eq!(
                (key.as_str(), line),
                (want_key, want_line),
                "{to}: {message}"
            );
        }
        let (text, _) = edited(
            "media_types = [\"VOICE\", \"CALLBACK\", \"CHAT\", \"EMAIL\", \"MESSAGE\"]",
            "media_types = []",
        );
        assert_eq!(
            parse(&text, "t.toml").unwrap_err().to_string(),
            "t.toml: line 57: `operators[1].media_types`: \
             list at least one media type, or remove the filter"
        );
    }

    /// Operators written as inline tables or with dotted keys are located
    /// just as well; a table without `type` is named by its header line.
    #[test]
    fn other_operator_spellings_and_missing_or_unknown_types_name_their_line() {
        let base = "name = \"t\"\n[input]\ntopic = \"a\"\n[output]\nsilver = \"b\"\nlate = \"c\"\ndead_letter = \"d\"\n";
        // An array of inline tables (top-level keys come before the tables).
        let text = format!(
            "operators = [\n  {{ type = \"decode\" }},\n  {{ type = \"dedup\", ttl = \"soon\" }},\n]\n{base}"
        );
        assert_eq!(
            (invalid(&text).0.as_str(), invalid(&text).1),
            ("operators[1].ttl", 3)
        );
        // Line 8 onwards.
        let text = format!(
            "{base}[[operators]]\ntype = \"decode\"\n[[operators]]\ntype = \"mask\"\nfields.ani = \"hash\"\nfields.dnis = \"nope\"\n"
        );
        assert_eq!(
            (invalid(&text).0.as_str(), invalid(&text).1),
            ("operators[1].fields.dnis", 13)
        );
        let text = format!("{base}[[operators]]\ntype = \"decode\"\n[[operators]]\ntype = \"mask\"\nfields = \"hash\"\n");
        let (key, line, message) = invalid(&text);
        assert_eq!((key.as_str(), line), ("operators[1].fields", 12));
        assert!(message.ends_with(", not a string"), "{message}");
        let text = format!("{base}[[operators]]\ntype = \"decode\"\n[[operators]]\nmax_keys = 3\n");
        let (key, line, message) = invalid(&text);
        assert_eq!((key.as_str(), line), ("operators[1]", 10));
        assert!(message.starts_with("missing key `type`"), "{message}");
        let text =
            format!("{base}[[operators]]\ntype = \"decode\"\n[[operators]]\n\ntype = \"sort\"\n");
        let (key, line, message) = invalid(&text);
        assert_eq!((key.as_str(), line), ("operators[1].type", 12));
        assert!(message.starts_with("unknown operator type"), "{message}");
        let text =
            format!("{base}[[operators]]\ntype = \"decode\"\n[[operators]]\ntype = \"filter\"\n");
        let (key, line, message) = invalid(&text);
        assert_eq!((key.as_str(), line), ("operators[1].media_types", 10));
        assert!(message.starts_with("missing key"), "{message}");
        let text = format!("{base}[[operators]]\ntype = \"decode\"\n[[operators]]\ntype = \"lineage\"\nfields = 1\n");
        let (key, line, message) = invalid(&text);
        assert_eq!((key.as_str(), line), ("operators[1].fields", 12));
        assert!(
            message.ends_with("expected no key besides `type`"),
            "{message}"
        );
    }

    #[test]
    fn delivery_mode_defaults_to_replay_and_rejects_unknown_values() {
        let plan = parse(SHIPPED, "t.toml").unwrap();
        assert_eq!(plan.delivery, Delivery::Replay);
        assert_eq!(plan.changelog_topic, "cx.internal.genesys-silver.changelog");
        let text = SHIPPED.replacen("delivery = \"replay\"", "delivery = \"transactions\"", 1);
        assert_eq!(
            parse(&text, "t.toml").unwrap().delivery,
            Delivery::Transactions
        );
        let text = SHIPPED.replacen("delivery = \"replay\"", "delivery = \"twice\"", 1);
        let line = text
            .lines()
            .position(|l| l.starts_with("delivery"))
            .unwrap()
            + 1;
        match parse(&text, "t.toml").unwrap_err() {
            ConfigError::Invalid { key, line: l, .. } => {
                assert_eq!((key.as_str(), l), ("runtime.delivery", line));
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let text = SHIPPED.replacen("[input]\n", "[input]\ntopicz = \"x\"\n", 1);
        let err = parse(&text, "t.toml").unwrap_err().to_string();
        let line = text.lines().position(|l| l.starts_with("topicz")).unwrap() + 1;
        assert!(err.contains("topicz"), "{err}");
        assert!(err.contains(&format!("line {line}")), "{err}");
    }

    #[test]
    fn bad_duration_and_policy_name_key_and_line() {
        let text = SHIPPED.replacen(
            "allowed_lateness = \"5s\"",
            "allowed_lateness = \"soon\"",
            1,
        );
        let (key, line, _) = invalid(&text);
        assert_eq!((key.as_str(), line), ("operators[3].allowed_lateness", 66));
        let text = SHIPPED.replacen("dnis = \"hash\"", "dnis = \"scramble\"", 1);
        let err = parse(&text, "t.toml").unwrap_err().to_string();
        assert_eq!(
            err,
            "t.toml: line 80: `operators[4].fields.dnis`: \
             policy must be \"hash\", \"redact\" or \"keep\""
        );
    }

    #[test]
    fn chain_order_and_required_operators_are_enforced() {
        let base = "name = \"t\"\n[input]\ntopic = \"a\"\n[output]\nsilver = \"b\"\nlate = \"c\"\ndead_letter = \"d\"\n";
        let err = parse(
            &format!("{base}[[operators]]\ntype = \"decode\"\n[[operators]]\ntype = \"lineage\"\n"),
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`mask` must come before `lineage`"), "{err}");
        let err = parse(
            &format!("{base}[[operators]]\ntype = \"decode\"\n[[operators]]\ntype = \"mask\"\n[[operators]]\ntype = \"dedup\"\n[[operators]]\ntype = \"lineage\"\n"),
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("out of order"), "{err}");
        let ok = parse(
            &format!("{base}[[operators]]\ntype = \"decode\"\n[[operators]]\ntype = \"mask\"\n[[operators]]\ntype = \"lineage\"\n"),
            "t",
        )
        .unwrap();
        assert!(ok.dedup.is_none() && ok.reorder.is_none());
        assert_eq!(ok.repartition_topic, "cx.internal.t.repartition");
    }

    #[test]
    fn client_settings_pass_through_but_not_brokers() {
        let text = SHIPPED.replacen(
            "[kafka]\n",
            "[kafka]\n\"security.protocol\" = \"SASL_SSL\"\n\"fetch.max.bytes\" = 1048576\n",
            1,
        );
        let plan = parse(&text, "t").unwrap();
        assert_eq!(plan.kafka["security.protocol"], "SASL_SSL");
        assert_eq!(plan.kafka["fetch.max.bytes"], "1048576");
        let text = SHIPPED.replacen("[kafka]\n", "[kafka]\n\"bootstrap.servers\" = \"x:1\"\n", 1);
        assert!(parse(&text, "t")
            .unwrap_err()
            .to_string()
            .contains("--brokers"));
    }

    /// `text` with `from` replaced once by `to`, and the 1-based line on
    /// which `to`'s first line now stands.
    fn edited(from: &str, to: &str) -> (String, usize) {
        assert!(SHIPPED.contains(from), "{from}");
        let text = SHIPPED.replacen(from, to, 1);
        let first = to.lines().next().unwrap();
        let line = text.lines().position(|l| l.starts_with(first)).unwrap() + 1;
        (text, line)
    }

    fn parse_message(text: &str) -> String {
        match parse(text, "t.toml").unwrap_err() {
            ConfigError::Parse { path, message } => {
                assert_eq!(path, "t.toml");
                message
            }
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn toml_syntax_error_names_the_line_and_shows_the_key() {
        let (text, line) = edited(
            "silver = \"cx.silver.events\"",
            "silver = \"cx.silver.events",
        );
        assert_eq!(line, 14);
        let msg = parse_message(&text);
        assert!(
            msg.starts_with("TOML parse error at line 14, column "),
            "{msg}"
        );
        assert!(msg.contains("silver = \"cx.silver.events"), "{msg}");
    }

    #[test]
    fn wrong_type_names_the_key_and_its_line() {
        for (from, to, key, want_line) in [
            (
                "max_in_flight = 50000",
                "max_in_flight = \"lots\"",
                "max_in_flight",
                33,
            ),
            ("create = true", "create = \"yes\"", "create", 27),
            ("name = \"genesys-silver\"", "name = 7", "name", 6),
        ] {
            let (text, line) = edited(from, to);
            assert_eq!(line, want_line, "{to}");
            let msg = parse_message(&text);
            assert!(
                msg.starts_with(&format!("TOML parse error at line {line}, column ")),
                "{to}: {msg}"
            );
            assert!(msg.contains(&format!("{line} | {key} = ")), "{to}: {msg}");
            assert!(msg.contains("invalid type"), "{to}: {msg}");
        }
    }

    #[test]
    fn missing_required_key_is_named_with_its_table_line() {
        let text = SHIPPED.replacen("topic = \"genesys.bronze.events\"\n", "", 1);
        assert!(!text.contains("genesys.bronze.events"));
        let table = text.lines().position(|l| l == "[input]").unwrap() + 1;
        let msg = parse_message(&text);
        assert!(msg.contains("missing field `topic`"), "{msg}");
        assert!(
            msg.starts_with(&format!("TOML parse error at line {table}, column ")),
            "{msg}"
        );
    }

    #[test]
    fn missing_file_names_the_path() {
        let path =
            std::env::temp_dir().join(format!("cxstream-absent-{}.toml", std::process::id()));
        let err = load(&path).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Io { path: p, source } if *p == path.display().to_string() && source.kind() == std::io::ErrorKind::NotFound),
            "{err:?}"
        );
        assert!(err
            .to_string()
            .starts_with(&format!("cannot read topology {}: ", path.display())));
    }
}
