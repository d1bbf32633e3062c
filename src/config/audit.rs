//! The audit stage's settings: its one input (silver's events), its ports
//! `events` and `checkpoints`, and its one operator `chain` (checkpoint
//! cadence, the retention of ended chains, the log's origin and the signing
//! key's name), validated with errors that name the key and the line.

use std::time::Duration;

use toml::Spanned;

use super::op::{a_raw_type, Op};
use super::topology::{RawStage, RawValue};
use super::{ConfigError, RuntimePlan, Validator};

/// The stage kind's name in a topology (`kind = "audit"`).
pub const KIND: &str = "audit";

/// The ports an audit stage writes.
pub const PORTS: [&str; 2] = ["events", "checkpoints"];

const KEYS: [&str; 5] = [
    "checkpoint_every",
    "checkpoint_interval",
    "ended_retention",
    "origin",
    "key_name",
];

/// A validated audit stage.
#[derive(Debug, Clone)]
pub struct AuditPlan {
    pub runtime: RuntimePlan,
    /// Port `events`: one record per state change, keyed by interaction id.
    pub events_topic: String,
    /// Port `checkpoints`: signed notes, keyed by audit partition.
    pub checkpoints_topic: String,
    pub chain: ChainPlan,
}

/// The `chain` operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainPlan {
    /// A checkpoint after this many new records of a partition...
    pub checkpoint_every: u64,
    /// ...or after this long with new records.
    pub checkpoint_interval: Duration,
    /// Event time an ended interaction's head is kept.
    pub ended_retention: Duration,
    /// Checkpoint origins are `<origin>/<events topic>/<partition>`.
    pub origin: String,
    /// The signer's name in the notes.
    pub key_name: String,
}

impl Default for ChainPlan {
    fn default() -> Self {
        ChainPlan {
            checkpoint_every: 10_000,
            checkpoint_interval: Duration::from_secs(10),
            ended_retention: Duration::from_secs(48 * 3_600),
            origin: "cxstream.audit".into(),
            key_name: "cxstream-audit".into(),
        }
    }
}

impl Validator<'_> {
    /// A `kind = "audit"` stage.
    pub(super) fn audit(
        &self,
        prefix: &str,
        raw: &Spanned<RawStage>,
        runtime: RuntimePlan,
    ) -> Result<AuditPlan, ConfigError> {
        let stage = raw.get_ref();
        if stage.inputs.get_ref().len() != 1 {
            return Err(self.invalid(
                &format!("{prefix}inputs"),
                &stage.inputs.span(),
                "an audit stage reads one input, silver's events ([\"cx.silver.events\"]): a restart must read it again in the same order",
            ));
        }
        let ports = self.ports(prefix, raw, KIND, &PORTS)?;
        let mut plan = AuditPlan {
            runtime,
            events_topic: ports[0].clone(),
            checkpoints_topic: ports[1].clone(),
            chain: ChainPlan::default(),
        };
        for (index, table) in stage.operators.iter().enumerate() {
            let header = table.span();
            let key = format!("{prefix}operators[{index}]");
            let entries = &table.get_ref().entries;
            match entries.iter().find(|e| e.key.get_ref() == "type") {
                Some(e) if matches!(&e.value, RawValue::Value(toml::Value::String(t)) if t == "chain") =>
                    {}
                Some(e) => {
                    return Err(self.invalid(
                        &format!("{key}.type"),
                        &e.key.span(),
                        format!(
                            "an audit stage takes one operator, type \"chain\", not {}",
                            match &e.value {
                                RawValue::Value(toml::Value::String(t)) => format!("\"{t}\""),
                                other => a_raw_type(other).to_string(),
                            }
                        ),
                    ))
                }
                None => return Err(self.invalid(&key, &header, "missing key `type`: \"chain\"")),
            }
            if index > 0 {
                return Err(self.invalid(
                    &key,
                    &header,
                    "operator `chain` is repeated; an audit stage takes it at most once",
                ));
            }
            if let Some(e) = entries
                .iter()
                .find(|e| e.key.get_ref() != "type" && !KEYS.contains(&e.key.get_ref().as_str()))
            {
                return Err(self.invalid(
                    &format!("{key}.{}", e.key.get_ref()),
                    &e.key.span(),
                    "unknown key for a `chain` operator; expected `type`, `checkpoint_every`, `checkpoint_interval`, `ended_retention`, `origin` or `key_name`",
                ));
            }
            let op = Op {
                prefix,
                index,
                header,
                entries,
            };
            let c = &mut plan.chain;
            let d = ChainPlan::default();
            if let Some(n) = self.op_positive(&op, "checkpoint_every")? {
                c.checkpoint_every = n;
            }
            c.checkpoint_interval =
                self.op_duration(&op, "checkpoint_interval", d.checkpoint_interval)?;
            c.ended_retention = self.op_duration(&op, "ended_retention", d.ended_retention)?;
            for (name, slot) in [("origin", &mut c.origin), ("key_name", &mut c.key_name)] {
                if let Some((v, span)) = self.op_str(&op, name, "a string")? {
                    if v.trim().is_empty() || v.chars().any(|ch| ch.is_whitespace()) {
                        return Err(self.invalid(
                            &op.path(name),
                            &span,
                            "must be a non-empty name without white space",
                        ));
                    }
                    *slot = v.to_string();
                }
            }
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn topology(ops: &str) -> String {
        format!(
            "name = \"t\"\n[[stages]]\nname = \"a\"\nkind = \"audit\"\ninputs = [\"s\"]\ndead_letter = \"d\"\n[stages.ports]\nevents = {{ topic = \"ae\" }}\ncheckpoints = {{ topic = \"ac\" }}\n{ops}"
        )
    }

    #[test]
    fn defaults_then_the_chain_operator() {
        let t = parse(&topology(""), "t.toml").expect("valid");
        let p = t.audit().expect("an audit stage");
        assert_eq!(p.events_topic, "ae");
        assert_eq!(p.checkpoints_topic, "ac");
        assert_eq!(p.chain, ChainPlan::default());
        let t = parse(
            &topology("[[stages.operators]]\ntype = \"chain\"\ncheckpoint_every = 500\ncheckpoint_interval = \"2s\"\nended_retention = \"1h\"\norigin = \"acme.audit\"\n"),
            "t.toml",
        )
        .expect("valid");
        let c = &t.audit().expect("audit").chain;
        assert_eq!(c.checkpoint_every, 500);
        assert_eq!(c.checkpoint_interval, Duration::from_secs(2));
        assert_eq!(c.ended_retention, Duration::from_secs(3_600));
        assert_eq!(c.origin, "acme.audit");
    }

    #[test]
    fn bad_operators_name_the_key_and_the_line() {
        for (ops, key) in [
            (
                "[[stages.operators]]\ntype = \"windows\"\n",
                "stages[0].operators[0].type",
            ),
            (
                "[[stages.operators]]\ntype = \"chain\"\nevery = 3\n",
                "stages[0].operators[0].every",
            ),
            (
                "[[stages.operators]]\ntype = \"chain\"\ncheckpoint_every = 0\n",
                "stages[0].operators[0].checkpoint_every",
            ),
            (
                "[[stages.operators]]\ntype = \"chain\"\norigin = \"a b\"\n",
                "stages[0].operators[0].origin",
            ),
        ] {
            let err = parse(&topology(ops), "t.toml").expect_err(ops).to_string();
            assert!(err.contains(key), "{ops}: {err}");
            assert!(err.contains("line"), "{err}");
        }
    }
}
