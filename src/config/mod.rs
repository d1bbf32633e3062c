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
use topology::{RawOperator, RawTopology};

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

/// The required position of each operator type; optional ones may be left out.
const ORDER: [(&str, bool); 6] = [
    ("decode", true),
    ("filter", false),
    ("dedup", false),
    ("reorder", false),
    ("mask", true),
    ("lineage", true),
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

/// toml reports an unknown key inside an operator table at the table's
/// header (tagged enums lose inner spans); point at the key's own line.
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

    fn duration(
        &self,
        key: &str,
        span: &Range<usize>,
        v: Option<&String>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match v {
            None => Ok(default),
            Some(s) => humantime::parse_duration(s).map_err(|e| {
                self.invalid(
                    key,
                    span,
                    format!("not a duration ({e}); use e.g. \"5s\", \"500ms\", \"24h\""),
                )
            }),
        }
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
            Some(s) => self.duration(
                "runtime.commit_interval",
                &s.span(),
                Some(s.get_ref()),
                Duration::from_secs(1),
            )?,
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

    fn operators(&self, ops: &[Spanned<RawOperator>], plan: &mut Plan) -> Result<(), ConfigError> {
        let mut next = 0usize;
        for (i, op) in ops.iter().enumerate() {
            let span = op.span();
            let key = format!("operators[{i}]");
            let ty = op.get_ref().type_name();
            let pos = ORDER
                .iter()
                .position(|(n, _)| *n == ty)
                .unwrap_or(ORDER.len());
            if pos < next {
                return Err(self.invalid(
                    &key,
                    &span,
                    format!(
                        "operator `{ty}` is out of order or repeated; the chain is {}",
                        chain_help()
                    ),
                ));
            }
            if let Some((missing, _)) = ORDER[next..pos].iter().find(|(_, required)| *required) {
                return Err(self.invalid(
                    &key,
                    &span,
                    format!(
                        "operator `{missing}` must come before `{ty}`; the chain is {}",
                        chain_help()
                    ),
                ));
            }
            next = pos + 1;
            plan.chain.push(ty);
            match op.get_ref() {
                RawOperator::Lineage {} => {}
                RawOperator::Decode {
                    max_future_skew,
                    min_event_time,
                } => {
                    let d = EventTimeBounds::default();
                    plan.event_time_bounds = EventTimeBounds {
                        max_future_skew: match max_future_skew.as_deref() {
                            Some("off") => None,
                            v => Some(self.duration(
                                &format!("{key}.max_future_skew"),
                                &span,
                                v.map(str::to_string).as_ref(),
                                d.max_future_skew.unwrap_or_default(),
                            )?),
                        },
                        min_event_time_ms: match min_event_time.as_deref() {
                            None => d.min_event_time_ms,
                            Some("off") => None,
                            Some(v) => {
                                Some(self.instant(&format!("{key}.min_event_time"), &span, v)?)
                            }
                        },
                    };
                }
                RawOperator::Filter { media_types } => {
                    if media_types.is_empty() {
                        return Err(self.invalid(
                            &format!("{key}.media_types"),
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
                RawOperator::Dedup { ttl, max_keys } => {
                    let d = DedupSettings::default();
                    plan.dedup = Some(DedupSettings {
                        ttl: self.duration(&format!("{key}.ttl"), &span, ttl.as_ref(), d.ttl)?,
                        max_keys: match max_keys {
                            None => d.max_keys,
                            Some(n) => self.positive(&format!("{key}.max_keys"), &span, *n)?,
                        },
                    });
                }
                RawOperator::Reorder {
                    allowed_lateness,
                    idle_timeout,
                    max_buffered,
                    state_retention,
                    watermark_quorum,
                    watermark_jump,
                } => {
                    let d = ReorderSettings::default();
                    let progress = ProgressSettings {
                        quorum: match watermark_quorum {
                            None => d.progress.quorum,
                            Some(n) => {
                                let q =
                                    self.positive(&format!("{key}.watermark_quorum"), &span, *n)?;
                                if q > 100 {
                                    return Err(self.invalid(
                                        &format!("{key}.watermark_quorum"),
                                        &span,
                                        "must be 1..100",
                                    ));
                                }
                                q as usize
                            }
                        },
                        jump: self.duration(
                            &format!("{key}.watermark_jump"),
                            &span,
                            watermark_jump.as_ref(),
                            d.progress.jump,
                        )?,
                    };
                    plan.reorder = Some(ReorderSettings {
                        allowed_lateness: self.duration(
                            &format!("{key}.allowed_lateness"),
                            &span,
                            allowed_lateness.as_ref(),
                            d.allowed_lateness,
                        )?,
                        idle_timeout: self.duration(
                            &format!("{key}.idle_timeout"),
                            &span,
                            idle_timeout.as_ref(),
                            d.idle_timeout,
                        )?,
                        max_buffered: match max_buffered {
                            None => d.max_buffered,
                            Some(n) => {
                                self.positive(&format!("{key}.max_buffered"), &span, *n)? as usize
                            }
                        },
                        state_retention: self.duration(
                            &format!("{key}.state_retention"),
                            &span,
                            state_retention.as_ref(),
                            d.state_retention,
                        )?,
                        progress,
                    });
                }
                RawOperator::Mask { fields } => {
                    for (field, policy) in fields {
                        let fkey = format!("{key}.fields.{field}");
                        let p: Policy = policy.parse().map_err(|_| {
                            self.invalid(
                                &fkey,
                                &span,
                                "policy must be \"hash\", \"redact\" or \"keep\"",
                            )
                        })?;
                        plan.mask
                            .set(field, p)
                            .map_err(|e| self.invalid(&fkey, &span, e.to_string()))?;
                    }
                }
            }
        }
        if let Some((missing, _)) = ORDER[next..].iter().find(|(_, required)| *required) {
            return Err(ConfigError::Invalid {
                path: self.origin.to_string(),
                key: "operators".into(),
                line: self.line(&(self.text.len()..self.text.len())),
                message: format!(
                    "operator `{missing}` is required; the chain is {}",
                    chain_help()
                ),
            });
        }
        Ok(())
    }
}

fn chain_help() -> String {
    ORDER
        .iter()
        .map(|(n, req)| {
            if *req {
                n.to_string()
            } else {
                format!("[{n}]")
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

    /// `SHIPPED` with line `from` replaced by `to`, and the 1-based line
    /// of the `[[operators]]` header above it.
    fn with_line(from: &str, to: &str) -> (String, usize) {
        let text = SHIPPED.replacen(from, to, 1);
        assert_ne!(text, SHIPPED, "{from} is in the shipped topology");
        let at = text.lines().position(|l| l.starts_with(to)).unwrap();
        let header = text
            .lines()
            .take(at)
            .enumerate()
            .filter(|(_, l)| l.starts_with("[[operators]]"))
            .last()
            .map_or(0, |(i, _)| i + 1);
        (text, header)
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
            let (text, header) = with_line(from, to);
            match parse(&text, "t.toml").unwrap_err() {
                ConfigError::Invalid { key, line, .. } => {
                    assert_eq!(key, want_key);
                    assert_eq!(line, header, "{key}: the operator's [[operators]] line");
                }
                e => panic!("unexpected {e}"),
            }
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
                assert_eq!((key.as_str(), l), ("idle_timout", line));
                assert!(
                    message.contains("idle_timeout"),
                    "suggests the known keys: {message}"
                );
            }
            other => panic!("{other}"),
        }
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
        let err = parse(&text, "t.toml").unwrap_err();
        match err {
            ConfigError::Invalid { key, line, .. } => {
                assert_eq!(key, "operators[3].allowed_lateness");
                assert!(text
                    .lines()
                    .nth(line - 1)
                    .unwrap()
                    .contains("[[operators]]"));
            }
            other => panic!("{other}"),
        }
        let text = SHIPPED.replacen("ani = \"hash\"", "ani = \"scramble\"", 1);
        let err = parse(&text, "t.toml").unwrap_err().to_string();
        assert!(err.contains("fields.ani") && err.contains("hash"), "{err}");
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
