//! Topology configuration: parsing a TOML file into a validated [`Topology`].
//!
//! [`topology`] holds the raw serde types. This module checks what every
//! stage shares (topics, runtime, client settings) and each stage's name,
//! kind, inputs, ports and internal topics; the module of each stage kind
//! ([`silver`]) checks the rest of its table and builds its plan. Every
//! error names the key and the line.
//!
//! Config types stay apart from runtime types: the runtime reads a
//! [`RuntimePlan`], a stage its own plan (e.g. [`SilverPlan`]).

pub mod audit;
pub mod gold;
mod op;
pub mod process;
pub mod silver;
pub mod topology;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

pub use audit::{AuditPlan, ChainPlan};
pub use gold::GoldPlan;
pub use process::ProcessPlan;
pub use silver::SilverPlan;
use topology::{RawStage, RawTopology};

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

/// A validated topology: its stages, in file order.
#[derive(Debug, Clone)]
pub struct Topology {
    pub name: String,
    pub stages: Vec<StagePlan>,
}

impl Topology {
    /// The stage named `name`.
    pub fn stage(&self, name: &str) -> Option<&StagePlan> {
        self.stages.iter().find(|s| s.name() == name)
    }

    /// The plan of its first silver stage, by value.
    pub fn into_silver(self) -> Option<SilverPlan> {
        self.stages.into_iter().find_map(|s| match s {
            StagePlan::Silver(p) => Some(p),
            _ => None,
        })
    }

    /// The names of its stages, in file order.
    pub fn stage_names(&self) -> Vec<&str> {
        self.stages.iter().map(StagePlan::name).collect()
    }

    /// The plan of its first silver stage (tests, the demo and the benchmark
    /// run it).
    pub fn silver(&self) -> Option<&SilverPlan> {
        self.stages.iter().find_map(|s| match s {
            StagePlan::Silver(p) => Some(p),
            _ => None,
        })
    }

    /// The plan of its first process-mining stage.
    pub fn process(&self) -> Option<&ProcessPlan> {
        self.stages.iter().find_map(|s| match s {
            StagePlan::Process(p) => Some(p),
            _ => None,
        })
    }

    /// The plan of its first audit stage.
    pub fn audit(&self) -> Option<&AuditPlan> {
        self.stages.iter().find_map(|s| match s {
            StagePlan::Audit(p) => Some(p),
            _ => None,
        })
    }

    /// The plan of its first gold stage.
    pub fn gold(&self) -> Option<&GoldPlan> {
        self.stages.iter().find_map(|s| match s {
            StagePlan::Gold(p) => Some(p),
            _ => None,
        })
    }
}

/// One validated stage, by kind. A new stage kind is a new variant (and
/// one arm in each `match` on it).
#[derive(Debug, Clone)]
pub enum StagePlan {
    Silver(SilverPlan),
    Gold(GoldPlan),
    Process(ProcessPlan),
    Audit(AuditPlan),
}

impl StagePlan {
    /// What the runtime needs to run the stage.
    pub fn runtime(&self) -> &RuntimePlan {
        match self {
            StagePlan::Silver(p) => &p.runtime,
            StagePlan::Gold(p) => &p.runtime,
            StagePlan::Process(p) => &p.runtime,
            StagePlan::Audit(p) => &p.runtime,
        }
    }

    pub fn name(&self) -> &str {
        &self.runtime().stage
    }

    /// Its `kind` in the topology file.
    pub fn kind(&self) -> &'static str {
        match self {
            StagePlan::Silver(_) => silver::KIND,
            StagePlan::Gold(_) => gold::KIND,
            StagePlan::Process(_) => process::KIND,
            StagePlan::Audit(_) => audit::KIND,
        }
    }
}

/// What the Kafka runtime needs of any stage: the topics besides its ports,
/// and how it runs. Nothing here is specific to a stage kind.
#[derive(Debug, Clone)]
pub struct RuntimePlan {
    /// The topology's name (lineage hops, default internal topic names).
    pub topology: String,
    /// The stage's name: its consumer group is `<group id>.<stage>`.
    pub stage: String,
    pub input_topic: String,
    /// The stage's input topics after the first, co-partitioned with it
    /// (same partition count, keyed alike).
    pub co_inputs: Vec<String>,
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
    /// Transactional id prefix (`<runtime.transactional_id>.<stage>`);
    /// `None`: the stage's group id.
    pub transactional_id: Option<String>,
    /// librdkafka settings from the topology (`[kafka]`).
    pub kafka: BTreeMap<String, String>,
    /// Bytes of the rejected record a reference-form dead letter keeps.
    pub dead_letter_prefix: usize,
}

impl RuntimePlan {
    /// The stage's consumer group, from the deployment's group id
    /// (`--group-id`): `<base>.<stage>`. Every stage of a topology has
    /// its own group, so each can be scaled on its own.
    pub fn group_id(&self, base: &str) -> String {
        format!("{base}.{}", self.stage)
    }
}

/// The stage kinds a topology can declare.
pub const STAGE_KINDS: [&str; 4] = [silver::KIND, gold::KIND, process::KIND, audit::KIND];

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

/// Reads and validates a topology file.
pub fn load(path: &Path) -> Result<Topology, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses and validates topology text; `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<Topology, ConfigError> {
    let raw: RawTopology = toml::from_str(text).map_err(|e| parse_error(text, origin, &e))?;
    Validator { text, origin }.topology(raw)
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

/// The settings before the first stage, validated: every stage's
/// [`RuntimePlan`] starts from them.
struct Shared {
    create_topics: bool,
    partitions: Option<i32>,
    replication_factor: i32,
    commit_interval: Duration,
    max_in_flight: usize,
    delivery: Delivery,
    transactional_id: Option<String>,
    kafka: BTreeMap<String, String>,
    dead_letter_prefix: usize,
}

/// Keys of the layout before stages, and where each moved.
const LEGACY_KEYS: [(&str, &str); 4] = [
    ("input", "`inputs = [...]` of a `[[stages]]` table"),
    (
        "output",
        "the `[stages.ports]` and `dead_letter` of a `[[stages]]` table",
    ),
    ("internal", "`[stages.internal]`"),
    ("operators", "`[[stages.operators]]`"),
];

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

    fn topology(&self, raw: RawTopology) -> Result<Topology, ConfigError> {
        for (key, value) in [
            ("input", &raw.input),
            ("output", &raw.output),
            ("internal", &raw.internal),
            ("operators", &raw.operators),
        ] {
            if let Some(v) = value {
                return Err(self.legacy(key, &v.span()));
            }
        }
        let name = raw.name.get_ref().clone();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(self.invalid("name", &raw.name.span(), "use 1+ of [a-zA-Z0-9._-]"));
        }
        let shared = self.shared(&raw)?;
        if raw.stages.is_empty() {
            return Err(self.invalid(
                "stages",
                &(self.text.len()..self.text.len()),
                format!(
                    "declare at least one `[[stages]]` table (name, kind, inputs, ports, dead_letter); kinds: {}",
                    quoted(&STAGE_KINDS)
                ),
            ));
        }
        let mut stages = Vec::with_capacity(raw.stages.len());
        let mut names = BTreeSet::new();
        // Internal topics belong to one stage each.
        let mut internal: BTreeMap<String, String> = BTreeMap::new();
        for (i, st) in raw.stages.iter().enumerate() {
            let prefix = format!("stages[{i}].");
            let stage = self.stage(&prefix, &name, &shared, st)?;
            let rt = stage.runtime();
            if !names.insert(rt.stage.clone()) {
                return Err(self.invalid(
                    &format!("{prefix}name"),
                    &st.get_ref().name.span(),
                    "another stage has this name; stage names must be distinct",
                ));
            }
            for (key, t) in [
                ("internal.repartition", &rt.repartition_topic),
                ("internal.changelog", &rt.changelog_topic),
            ] {
                let here = format!("{prefix}{key}");
                if let Some(other) = internal.insert(t.clone(), here.clone()) {
                    return Err(self.invalid(
                        &here,
                        &st.span(),
                        format!("uses the same topic as `{other}`; every internal topic belongs to one stage"),
                    ));
                }
            }
            stages.push(stage);
        }
        // A gold stage's grace defaults to the allowed lateness of the
        // silver stage that writes its first input.
        let lateness: BTreeMap<String, i64> = stages
            .iter()
            .filter_map(|s| match s {
                StagePlan::Silver(p) => p.reorder.as_ref().map(|r| {
                    (
                        p.silver_topic.clone(),
                        i64::try_from(r.allowed_lateness.as_millis()).unwrap_or(i64::MAX),
                    )
                }),
                _ => None,
            })
            .collect();
        for s in &mut stages {
            if let StagePlan::Gold(g) = s {
                if let (false, Some(l)) = (g.grace_set, lateness.get(&g.runtime.input_topic)) {
                    g.windows.grace_ms = *l;
                }
            }
        }
        Ok(Topology { name, stages })
    }

    /// A key of the layout before stages: says where it moved.
    fn legacy(&self, key: &str, span: &Range<usize>) -> ConfigError {
        let moved = LEGACY_KEYS
            .iter()
            .find(|(k, _)| *k == key)
            .map_or("a `[[stages]]` table", |(_, to)| to);
        // The line of `[key]`, `[[key]]` or `key =`, else the value's.
        let line = self
            .text
            .lines()
            .position(|l| {
                let l = l.trim_start();
                l.starts_with(&format!("[{key}]"))
                    || l.starts_with(&format!("[[{key}]]"))
                    || l.starts_with(&format!("[{key}."))
                    || l.strip_prefix(key)
                        .is_some_and(|r| r.trim_start().starts_with('='))
            })
            .map_or_else(|| self.line(span), |i| i + 1);
        ConfigError::Invalid {
            path: self.origin.to_string(),
            key: key.to_string(),
            line,
            message: format!(
                "topologies now declare stages: this moves into {moved} (see topologies/genesys-silver.toml)"
            ),
        }
    }

    /// One `[[stages]]` table: its name, kind and topics, then the rest by
    /// its kind.
    fn stage(
        &self,
        prefix: &str,
        topology: &str,
        shared: &Shared,
        raw: &Spanned<RawStage>,
    ) -> Result<StagePlan, ConfigError> {
        let st = raw.get_ref();
        let name = st.name.get_ref().clone();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        {
            return Err(self.invalid(
                &format!("{prefix}name"),
                &st.name.span(),
                "use 1+ of [a-zA-Z0-9_-] (it becomes part of group ids and topic names)",
            ));
        }
        let kind = st.kind.get_ref().as_str();
        let unknown_kind = || {
            self.invalid(
                &format!("{prefix}kind"),
                &st.kind.span(),
                format!(
                    "unknown stage kind; expected one of {}",
                    quoted(&STAGE_KINDS)
                ),
            )
        };
        if !STAGE_KINDS.contains(&kind) {
            return Err(unknown_kind());
        }
        let Some(first) = st.inputs.get_ref().first() else {
            return Err(self.invalid(
                &format!("{prefix}inputs"),
                &st.inputs.span(),
                "list the topic(s) the stage reads, e.g. [\"genesys.bronze.events\"]",
            ));
        };
        let input_topic = self.topic(&format!("{prefix}inputs"), first)?;
        let co_inputs = st.inputs.get_ref()[1..]
            .iter()
            .map(|t| self.topic(&format!("{prefix}inputs"), t))
            .collect::<Result<Vec<_>, _>>()?;
        let dead_letter_topic = self.topic(&format!("{prefix}dead_letter"), &st.dead_letter)?;
        let repartition_topic = match &st.internal.repartition {
            Some(t) => self.topic(&format!("{prefix}internal.repartition"), t)?,
            None => format!("cx.internal.{topology}.{name}.repartition"),
        };
        let changelog_topic = match &st.internal.changelog {
            Some(t) => self.topic(&format!("{prefix}internal.changelog"), t)?,
            None => format!("cx.internal.{topology}.{name}.changelog"),
        };
        let mut seen = BTreeMap::new();
        for (key, t) in std::iter::once(("inputs", &input_topic))
            .chain(co_inputs.iter().map(|t| ("inputs", t)))
            .chain([
                ("dead_letter", &dead_letter_topic),
                ("internal.repartition", &repartition_topic),
                ("internal.changelog", &changelog_topic),
            ])
        {
            if let Some(other) = seen.insert(t.clone(), key) {
                return Err(self.invalid(
                    &format!("{prefix}{key}"),
                    &raw.span(),
                    format!("uses the same topic as `{prefix}{other}`; every topic of a stage must be distinct"),
                ));
            }
        }
        let runtime = RuntimePlan {
            topology: topology.to_string(),
            stage: name.clone(),
            input_topic,
            co_inputs,
            dead_letter_topic,
            repartition_topic,
            changelog_topic,
            create_topics: shared.create_topics,
            partitions: shared.partitions,
            replication_factor: shared.replication_factor,
            commit_interval: shared.commit_interval,
            max_in_flight: shared.max_in_flight,
            delivery: shared.delivery,
            transactional_id: shared
                .transactional_id
                .as_ref()
                .map(|t| format!("{t}.{name}")),
            kafka: shared.kafka.clone(),
            dead_letter_prefix: shared.dead_letter_prefix,
        };
        let plan = match kind {
            silver::KIND => StagePlan::Silver(self.silver(prefix, raw, runtime)?),
            gold::KIND => StagePlan::Gold(self.gold(prefix, raw, runtime)?),
            process::KIND => StagePlan::Process(self.process(prefix, raw, runtime)?),
            audit::KIND => StagePlan::Audit(self.audit(prefix, raw, runtime)?),
            _ => return Err(unknown_kind()),
        };
        Ok(plan)
    }

    /// The stage's ports: exactly `expected` (in that order), each with a
    /// valid topic distinct from the stage's other topics, in JSON.
    fn ports(
        &self,
        prefix: &str,
        raw: &Spanned<RawStage>,
        kind: &str,
        expected: &[&str],
    ) -> Result<Vec<String>, ConfigError> {
        let st = raw.get_ref();
        if let Some((name, _)) = st
            .ports
            .iter()
            .find(|(n, _)| !expected.contains(&n.get_ref().as_str()))
        {
            return Err(self.invalid(
                &format!("{prefix}ports.{}", name.get_ref()),
                &name.span(),
                format!(
                    "unknown port for a `{kind}` stage; its ports are {}",
                    quoted(expected)
                ),
            ));
        }
        let mut own: BTreeMap<String, String> = BTreeMap::new();
        for t in st.inputs.get_ref() {
            own.insert(t.get_ref().clone(), format!("{prefix}inputs"));
        }
        own.insert(
            st.dead_letter.get_ref().clone(),
            format!("{prefix}dead_letter"),
        );
        let mut topics = Vec::with_capacity(expected.len());
        for want in expected {
            let Some((_, port)) = st.ports.iter().find(|(n, _)| n.get_ref() == want) else {
                return Err(self.invalid(
                    &format!("{prefix}ports.{want}"),
                    &raw.span(),
                    format!(
                        "missing port: a `{kind}` stage writes {}, e.g. `{want} = {{ topic = \"...\", format = \"json\" }}` under `[stages.ports]`",
                        quoted(expected)
                    ),
                ));
            };
            let p = port.get_ref();
            let key = format!("{prefix}ports.{want}");
            let topic = self.topic(&format!("{key}.topic"), &p.topic)?;
            if let Some(f) = &p.format {
                match f.get_ref().as_str() {
                    "json" => {}
                    "avro" => {
                        return Err(self.invalid(
                            &format!("{key}.format"),
                            &f.span(),
                            "Avro output is not available in this build yet; use \"json\"",
                        ))
                    }
                    _ => {
                        return Err(self.invalid(
                            &format!("{key}.format"),
                            &f.span(),
                            "must be \"json\"",
                        ))
                    }
                }
            }
            if let Some(other) = own.insert(topic.clone(), key.clone()) {
                return Err(self.invalid(
                    &format!("{key}.topic"),
                    &p.topic.span(),
                    format!(
                        "uses the same topic as `{other}`; every topic of a stage must be distinct"
                    ),
                ));
            }
            topics.push(topic);
        }
        Ok(topics)
    }

    /// The settings before the first stage.
    fn shared(&self, raw: &RawTopology) -> Result<Shared, ConfigError> {
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

        Ok(Shared {
            create_topics: raw.topics.create.unwrap_or(true),
            partitions,
            replication_factor,
            commit_interval,
            max_in_flight,
            delivery,
            transactional_id,
            kafka,
            dead_letter_prefix,
        })
    }
}

/// `"a", "b"`.
fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::plausibility::EventTimeBounds;
    use crate::operators::progress::ProgressSettings;

    /// A silver stage without operators (9 lines); tests append
    /// `[[stages.operators]]` tables.
    const BASE: &str = "name = \"t\"\n[[stages]]\nname = \"s\"\nkind = \"silver\"\ninputs = [\"a\"]\ndead_letter = \"d\"\n[stages.ports]\nsilver = { topic = \"b\" }\nlate = { topic = \"c\" }\n";

    /// The silver stage of a topology that must be valid.
    fn silver(text: &str) -> SilverPlan {
        parse(text, "t.toml")
            .expect("valid topology")
            .into_silver()
            .expect("a silver stage")
    }

    const SHIPPED: &str = include_str!("../../topologies/genesys-silver.toml");

    #[test]
    fn shipped_topology_is_valid() {
        let plan = silver(SHIPPED);
        assert_eq!(plan.runtime.input_topic, "genesys.bronze.events");
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
        let plan = silver(SHIPPED);
        assert_eq!(plan.event_time_bounds, EventTimeBounds::default());
        assert_eq!(plan.runtime.dead_letter_prefix, DEFAULT_DEAD_LETTER_PREFIX);
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
        let plan = silver(&text);
        assert_eq!(plan.event_time_bounds.max_future_skew, None);
        assert_eq!(
            plan.event_time_bounds.min_event_time_ms,
            Some(1_420_070_400_000)
        );
        let r = plan.reorder.as_ref().unwrap();
        assert_eq!(r.progress.quorum, 5);
        assert_eq!(r.progress.jump, Duration::from_secs(600));
        assert_eq!(plan.runtime.dead_letter_prefix, 0);
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
        let plan = silver(&bare);
        assert_eq!(plan.event_time_bounds, EventTimeBounds::default());
        assert_eq!(plan.runtime.dead_letter_prefix, DEFAULT_DEAD_LETTER_PREFIX);
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
                "stages[0].operators[0].max_future_skew",
            ),
            (
                "min_event_time = \"2000-01-01T00:00:00Z\"",
                "min_event_time = \"yesterday\"",
                "stages[0].operators[0].min_event_time",
            ),
            (
                "watermark_quorum = 3",
                "watermark_quorum = 0",
                "stages[0].operators[3].watermark_quorum",
            ),
            (
                "watermark_jump = \"1m\"",
                "watermark_jump = \"far\"",
                "stages[0].operators[3].watermark_jump",
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
                assert_eq!(
                    (key.as_str(), l),
                    ("stages[0].operators[3].idle_timout", line)
                );
                assert_eq!(line, 77);
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
    /// at the first `[[stages.operators]]` header (line 58), without the operator
    /// or the key: now each names `stages[0].operators[i].key` and the key's line.
    #[test]
    fn wrong_type_inside_an_operator_names_its_key_path_and_line() {
        for (from, to, want_key, want_line, want_message) in [
            // The second operator.
            (
                "media_types = [\"VOICE\", \"CALLBACK\", \"CHAT\", \"EMAIL\", \"MESSAGE\"]",
                "media_types = \"VOICE\"",
                "stages[0].operators[1].media_types",
                67,
                "must be a list of strings, e.g. [\"VOICE\", \"CHAT\"], not a string",
            ),
            (
                "media_types = [\"VOICE\", \"CALLBACK\", \"CHAT\", \"EMAIL\", \"MESSAGE\"]",
                "media_types = [\"VOICE\", 2]",
                "stages[0].operators[1].media_types",
                67,
                "must be a list of strings, e.g. [\"VOICE\", \"CHAT\"], not a list holding other values than strings",
            ),
            (
                "type = \"filter\" ",
                "type = 2 ",
                "stages[0].operators[1].type",
                66,
                "must be a string, one of \"decode\", \"filter\", \"dedup\", \"reorder\", \"mask\", \"lineage\", not an integer",
            ),
            (
                "max_keys = 1000000",
                "max_keys = \"lots\"",
                "stages[0].operators[2].max_keys",
                72,
                "must be a positive integer, not a string",
            ),
            (
                "ttl = \"24h\"",
                "ttl = 24",
                "stages[0].operators[2].ttl",
                71,
                "must be a duration in quotes, e.g. \"5s\", \"500ms\", \"24h\", not an integer",
            ),
            // A TOML date-time where a quoted instant belongs.
            (
                "min_event_time = \"2000-01-01T00:00:00Z\"",
                "min_event_time = 2000-01-01T00:00:00Z",
                "stages[0].operators[0].min_event_time",
                63,
                "must be an RFC 3339 instant in quotes (e.g. \"2000-01-01T00:00:00Z\") or \"off\", not a date-time",
            ),
            (
                "watermark_quorum = 3",
                "watermark_quorum = 3.5",
                "stages[0].operators[3].watermark_quorum",
                80,
                "must be a positive integer, not a float",
            ),
            (
                "address_to = \"hash\"",
                "address_to = true",
                "stages[0].operators[4].fields.address_to",
                92,
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
            "t.toml: line 67: `stages[0].operators[1].media_types`: \
             must be a list of strings, e.g. [\"VOICE\", \"CHAT\"], not a string"
        );
    }

    /// Validator errors used to point at the operator's `[[stages.operators]]`
    /// line; now at the key's own line.
    #[test]
    fn validator_errors_name_the_key_path_and_its_line() {
        for (from, to, want_key, want_line) in [
            (
                "media_types = [\"VOICE\", \"CALLBACK\", \"CHAT\", \"EMAIL\", \"MESSAGE\"]",
                "media_types = []",
                "stages[0].operators[1].media_types",
                67,
            ),
            (
                "ttl = \"24h\"",
                "ttl = \"a day\"",
                "stages[0].operators[2].ttl",
                71,
            ),
            (
                "max_keys = 1000000",
                "max_keys = 0",
                "stages[0].operators[2].max_keys",
                72,
            ),
            (
                "idle_timeout = \"2s\"",
                "idle_timeout = \"2 fortnights\"",
                "stages[0].operators[3].idle_timeout",
                77,
            ),
            (
                "max_buffered = 100000",
                "max_buffered = -5",
                "stages[0].operators[3].max_buffered",
                78,
            ),
            (
                "state_retention = \"1h\"",
                "state_retention = \"\"",
                "stages[0].operators[3].state_retention",
                79,
            ),
            (
                "watermark_quorum = 3",
                "watermark_quorum = 101",
                "stages[0].operators[3].watermark_quorum",
                80,
            ),
            (
                "attributes = \"hash\"",
                "attributes = \"scramble\"",
                "stages[0].operators[4].fields.attributes",
                97,
            ),
            (
                "wrapup_notes = \"hash\"",
                "queue_id = \"hash\"",
                "stages[0].operators[4].fields.queue_id",
                96,
            ),
            // A key that belongs to another operator type.
            (
                "allowed_lateness = \"5s\"",
                "ttl = \"5s\"",
                "stages[0].operators[3].ttl",
                76,
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
            "t.toml: line 67: `stages[0].operators[1].media_types`: \
             list at least one media type, or remove the filter"
        );
    }

    /// Operators written as inline tables or with dotted keys are located
    /// just as well; a table without `type` is named by its header line.
    #[test]
    fn other_operator_spellings_and_missing_or_unknown_types_name_their_line() {
        let base = BASE;
        // An array of inline tables (top-level keys come before the tables).
        let text = "name = \"t\"\n[[stages]]\nname = \"s\"\nkind = \"silver\"\ninputs = [\"a\"]\ndead_letter = \"d\"\nports = { silver = { topic = \"b\" }, late = { topic = \"c\" } }\noperators = [\n  { type = \"decode\" },\n  { type = \"dedup\", ttl = \"soon\" },\n]\n";
        assert_eq!(
            (invalid(text).0.as_str(), invalid(text).1),
            ("stages[0].operators[1].ttl", 10)
        );
        // Line 8 onwards.
        let text = format!(
            "{base}[[stages.operators]]\ntype = \"decode\"\n[[stages.operators]]\ntype = \"mask\"\nfields.ani = \"hash\"\nfields.dnis = \"nope\"\n"
        );
        assert_eq!(
            (invalid(&text).0.as_str(), invalid(&text).1),
            ("stages[0].operators[1].fields.dnis", 15)
        );
        let text = format!("{base}[[stages.operators]]\ntype = \"decode\"\n[[stages.operators]]\ntype = \"mask\"\nfields = \"hash\"\n");
        let (key, line, message) = invalid(&text);
        assert_eq!((key.as_str(), line), ("stages[0].operators[1].fields", 14));
        assert!(message.ends_with(", not a string"), "{message}");
        let text = format!(
            "{base}[[stages.operators]]\ntype = \"decode\"\n[[stages.operators]]\nmax_keys = 3\n"
        );
        let (key, line, message) = invalid(&text);
        assert_eq!((key.as_str(), line), ("stages[0].operators[1]", 12));
        assert!(message.starts_with("missing key `type`"), "{message}");
        let text =
            format!("{base}[[stages.operators]]\ntype = \"decode\"\n[[stages.operators]]\n\ntype = \"sort\"\n");
        let (key, line, message) = invalid(&text);
        assert_eq!((key.as_str(), line), ("stages[0].operators[1].type", 14));
        assert!(message.starts_with("unknown operator type"), "{message}");
        let text =
            format!("{base}[[stages.operators]]\ntype = \"decode\"\n[[stages.operators]]\ntype = \"filter\"\n");
        let (key, line, message) = invalid(&text);
        assert_eq!(
            (key.as_str(), line),
            ("stages[0].operators[1].media_types", 12)
        );
        assert!(message.starts_with("missing key"), "{message}");
        let text = format!("{base}[[stages.operators]]\ntype = \"decode\"\n[[stages.operators]]\ntype = \"lineage\"\nfields = 1\n");
        let (key, line, message) = invalid(&text);
        assert_eq!((key.as_str(), line), ("stages[0].operators[1].fields", 14));
        assert!(
            message.ends_with("expected no key besides `type`"),
            "{message}"
        );
    }

    #[test]
    fn delivery_mode_defaults_to_replay_and_rejects_unknown_values() {
        let plan = silver(SHIPPED);
        assert_eq!(plan.runtime.delivery, Delivery::Replay);
        assert_eq!(
            plan.runtime.changelog_topic,
            "cx.internal.genesys-silver.changelog"
        );
        let text = SHIPPED.replacen("delivery = \"replay\"", "delivery = \"transactions\"", 1);
        assert_eq!(silver(&text).runtime.delivery, Delivery::Transactions);
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
        let text = SHIPPED.replacen(
            "[stages.internal]\n",
            "[stages.internal]\ntopicz = \"x\"\n",
            1,
        );
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
        assert_eq!(
            (key.as_str(), line),
            ("stages[0].operators[3].allowed_lateness", 76)
        );
        let text = SHIPPED.replacen("dnis = \"hash\"", "dnis = \"scramble\"", 1);
        let err = parse(&text, "t.toml").unwrap_err().to_string();
        assert_eq!(
            err,
            "t.toml: line 90: `stages[0].operators[4].fields.dnis`: \
             policy must be \"hash\", \"redact\" or \"keep\""
        );
    }

    #[test]
    fn chain_order_and_required_operators_are_enforced() {
        let base = BASE;
        let err = parse(
            &format!("{base}[[stages.operators]]\ntype = \"decode\"\n[[stages.operators]]\ntype = \"lineage\"\n"),
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`mask` must come before `lineage`"), "{err}");
        let err = parse(
            &format!("{base}[[stages.operators]]\ntype = \"decode\"\n[[stages.operators]]\ntype = \"mask\"\n[[stages.operators]]\ntype = \"dedup\"\n[[stages.operators]]\ntype = \"lineage\"\n"),
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("out of order"), "{err}");
        let ok = silver(&format!("{base}[[stages.operators]]\ntype = \"decode\"\n[[stages.operators]]\ntype = \"mask\"\n[[stages.operators]]\ntype = \"lineage\"\n"));
        assert!(ok.dedup.is_none() && ok.reorder.is_none());
        assert_eq!(ok.runtime.repartition_topic, "cx.internal.t.s.repartition");
        assert_eq!(ok.runtime.changelog_topic, "cx.internal.t.s.changelog");
    }

    #[test]
    fn client_settings_pass_through_but_not_brokers() {
        let text = SHIPPED.replacen(
            "[kafka]\n",
            "[kafka]\n\"security.protocol\" = \"SASL_SSL\"\n\"fetch.max.bytes\" = 1048576\n",
            1,
        );
        let plan = silver(&text);
        assert_eq!(plan.runtime.kafka["security.protocol"], "SASL_SSL");
        assert_eq!(plan.runtime.kafka["fetch.max.bytes"], "1048576");
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
        let (text, line) = edited("dead_letter = \"cx.dlq\"", "dead_letter = \"cx.dlq");
        assert_eq!(line, 40);
        let msg = parse_message(&text);
        assert!(
            msg.starts_with("TOML parse error at line 40, column "),
            "{msg}"
        );
        assert!(msg.contains("dead_letter = \"cx.dlq"), "{msg}");
    }

    #[test]
    fn wrong_type_names_the_key_and_its_line() {
        for (from, to, key, want_line) in [
            (
                "max_in_flight = 50000",
                "max_in_flight = \"lots\"",
                "max_in_flight",
                21,
            ),
            ("create = true", "create = \"yes\"", "create", 15),
            ("name = \"genesys-silver\"", "name = 7", "name", 12),
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
        let text = SHIPPED.replacen("inputs = [\"genesys.bronze.events\"]\n", "", 1);
        assert!(!text.contains("genesys.bronze.events"));
        let table = text.lines().position(|l| l == "[[stages]]").unwrap() + 1;
        let msg = parse_message(&text);
        assert!(msg.contains("missing field `inputs`"), "{msg}");
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

    #[test]
    fn a_topology_declares_stages_each_with_its_group_and_internal_topics() {
        let t = parse(SHIPPED, "t.toml").unwrap();
        assert_eq!(t.name, "genesys-silver");
        assert_eq!(t.stage_names(), ["silver", "gold", "process"]);
        let g = t.stage("gold").unwrap();
        assert_eq!(g.kind(), "gold");
        assert_eq!(g.runtime().group_id("cxstream-prod"), "cxstream-prod.gold");
        assert_eq!(g.runtime().input_topic, "cx.silver.events");
        assert_eq!(g.runtime().co_inputs, ["cx.silver.late"]);
        let s = t.stage("silver").unwrap();
        assert_eq!(s.kind(), "silver");
        assert_eq!(
            s.runtime().group_id("cxstream-prod"),
            "cxstream-prod.silver"
        );
        // Two stages: each its own group, internal topics and
        // transactional id prefix; they may share a dead-letter topic.
        let second = "[[stages]]\nname = \"eu\"\nkind = \"silver\"\ninputs = [\"x\"]\ndead_letter = \"d\"\n[stages.ports]\nsilver = { topic = \"y\" }\nlate = { topic = \"z\" }\n[[stages.operators]]\ntype = \"decode\"\n[[stages.operators]]\ntype = \"mask\"\n[[stages.operators]]\ntype = \"lineage\"\n";
        let ops = "[[stages.operators]]\ntype = \"decode\"\n[[stages.operators]]\ntype = \"mask\"\n[[stages.operators]]\ntype = \"lineage\"\n";
        let text = format!("[runtime]\ntransactional_id = \"tx\"\n{BASE}{ops}{second}").replacen(
            "[runtime]\ntransactional_id = \"tx\"\nname = \"t\"\n",
            "name = \"t\"\n[runtime]\ntransactional_id = \"tx\"\n",
            1,
        );
        let t = parse(&text, "t.toml").unwrap();
        assert_eq!(t.stage_names(), ["s", "eu"]);
        let eu = t.stage("eu").unwrap().runtime();
        assert_eq!(eu.group_id("g"), "g.eu");
        assert_eq!(eu.repartition_topic, "cx.internal.t.eu.repartition");
        assert_eq!(eu.changelog_topic, "cx.internal.t.eu.changelog");
        assert_eq!(eu.transactional_id.as_deref(), Some("tx.eu"));
        assert_eq!(
            t.stage("s").unwrap().runtime().transactional_id.as_deref(),
            Some("tx.s")
        );
        // The same name twice.
        let dup = text.replacen("name = \"eu\"", "name = \"s\"", 1);
        let (key, line, message) = invalid(&dup);
        assert_eq!((key.as_str(), line), ("stages[1].name", 19));
        assert!(message.contains("distinct"), "{message}");
        // One internal topic for two stages.
        let shared = text.replacen(
            "kind = \"silver\"\ninputs = [\"x\"]",
            "kind = \"silver\"\ninputs = [\"x\"]\ninternal.changelog = \"cx.internal.t.s.changelog\"",
            1,
        );
        let (key, _, message) = invalid(&shared);
        assert_eq!(key, "stages[1].internal.changelog");
        assert!(
            message.contains("stages[0].internal.changelog"),
            "{message}"
        );
    }

    #[test]
    fn stage_kind_inputs_and_ports_are_checked_with_key_and_line() {
        let ops = "[[stages.operators]]\ntype = \"decode\"\n[[stages.operators]]\ntype = \"mask\"\n[[stages.operators]]\ntype = \"lineage\"\n";
        let ok = format!("{BASE}{ops}");
        assert_eq!(silver(&ok).silver_topic, "b");
        for (from, to, want_key, want_line, want) in [
            (
                "kind = \"silver\"",
                "kind = \"platinum\"",
                "stages[0].kind",
                4,
                "unknown stage kind; expected one of \"silver\", \"gold\", \"process\"",
            ),
            (
                "inputs = [\"a\"]",
                "inputs = []",
                "stages[0].inputs",
                5,
                "list the topic(s)",
            ),
            (
                "inputs = [\"a\"]",
                "inputs = [\"a\", \"a2\"]",
                "stages[0].inputs",
                5,
                "exactly one topic",
            ),
            (
                "inputs = [\"a\"]",
                "inputs = [\"a b\"]",
                "stages[0].inputs",
                5,
                "not a valid Kafka topic name",
            ),
            (
                "name = \"s\"",
                "name = \"s.1\"",
                "stages[0].name",
                3,
                "use 1+ of [a-zA-Z0-9_-]",
            ),
            (
                "late = { topic = \"c\" }",
                "laet = { topic = \"c\" }",
                "stages[0].ports.laet",
                9,
                "unknown port for a `silver` stage; its ports are \"silver\", \"late\"",
            ),
            (
                "late = { topic = \"c\" }",
                "late = { topic = \"c\", format = \"avro\" }",
                "stages[0].ports.late.format",
                9,
                "Avro output is not available",
            ),
            (
                "late = { topic = \"c\" }",
                "late = { topic = \"c\", format = \"xml\" }",
                "stages[0].ports.late.format",
                9,
                "must be \"json\"",
            ),
            (
                "late = { topic = \"c\" }",
                "late = { topic = \"b\" }",
                "stages[0].ports.late.topic",
                9,
                "same topic as `stages[0].ports.silver`",
            ),
            (
                "late = { topic = \"c\" }",
                "late = { topic = \"d\" }",
                "stages[0].ports.late.topic",
                9,
                "same topic as `stages[0].dead_letter`",
            ),
        ] {
            assert!(ok.contains(from), "{from}");
            let text = ok.replacen(from, to, 1);
            let (key, line, message) = invalid(&text);
            assert_eq!(
                (key.as_str(), line),
                (want_key, want_line),
                "{to}: {message}"
            );
            assert!(message.contains(want), "{to}: {message}");
        }
        // A port left out is named, at its stage's table.
        let text = ok.replacen("late = { topic = \"c\" }\n", "", 1);
        let (key, line, message) = invalid(&text);
        assert_eq!((key.as_str(), line), ("stages[0].ports.late", 2));
        assert!(message.starts_with("missing port"), "{message}");
        // No stage at all.
        let (key, _, message) = invalid("name = \"t\"\n");
        assert_eq!(key, "stages");
        assert!(message.contains("at least one `[[stages]]`"), "{message}");
    }

    /// A file in the layout before stages says where each table moved.
    #[test]
    fn the_single_stage_layout_is_refused_with_where_its_keys_moved() {
        let old = "name = \"t\"\n\n[input]\ntopic = \"a\"\n\n[output]\nsilver = \"b\"\nlate = \"c\"\ndead_letter = \"d\"\n[[operators]]\ntype = \"decode\"\n";
        let (key, line, message) = invalid(old);
        assert_eq!((key.as_str(), line), ("input", 3));
        assert!(
            message.contains("`inputs = [...]` of a `[[stages]]` table"),
            "{message}"
        );
        let (key, line, message) = invalid(&old.replacen("[input]\ntopic = \"a\"\n", "", 1));
        assert_eq!((key.as_str(), line), ("output", 4));
        assert!(message.contains("[stages.ports]"), "{message}");
    }
}
