//! The process-mining stage's settings: its inputs (silver's events and
//! late events), its port `activities`, and its one operator `activities`
//! (renames, drops, case timeout, closed-case retention), validated with
//! errors that name the key and the line.

use std::time::Duration;

use toml::Spanned;

use super::op::{a_raw_type, Op};
use super::topology::{RawStage, RawValue};
use super::{ConfigError, RuntimePlan, Validator};
use crate::process::cases::CaseRules;
use crate::process::vocabulary::Activity;

/// The stage kind's name in a topology (`kind = "process"`).
pub const KIND: &str = "process";

/// The ports a process stage writes.
pub const PORTS: [&str; 1] = ["activities"];

const KEYS: [&str; 4] = ["rename", "drop", "case_timeout", "closed_retention"];

/// A validated process-mining stage.
#[derive(Debug, Clone)]
pub struct ProcessPlan {
    pub runtime: RuntimePlan,
    /// Port `activities`: one record per activity, keyed by case.
    pub activities_topic: String,
    pub cases: CaseRules,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn activity_names() -> String {
    Activity::ALL
        .iter()
        .map(|a| format!("\"{}\"", a.default_name()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Validator<'_> {
    /// A `kind = "process"` stage: silver's events and, optionally, its
    /// late events; the port `activities`; at most one `activities`
    /// operator.
    pub(super) fn process(
        &self,
        prefix: &str,
        raw: &Spanned<RawStage>,
        runtime: RuntimePlan,
    ) -> Result<ProcessPlan, ConfigError> {
        let stage = raw.get_ref();
        if stage.inputs.get_ref().len() > 2 {
            return Err(self.invalid(
                &format!("{prefix}inputs"),
                &stage.inputs.span(),
                "a process stage reads silver's events and, optionally, its late events: [\"cx.silver.events\", \"cx.silver.late\"]",
            ));
        }
        let ports = self.ports(prefix, raw, KIND, &PORTS)?;
        let mut plan = ProcessPlan {
            runtime,
            activities_topic: ports[0].clone(),
            cases: CaseRules::default(),
        };
        for (index, table) in stage.operators.iter().enumerate() {
            let header = table.span();
            let key = format!("{prefix}operators[{index}]");
            let entries = &table.get_ref().entries;
            match entries.iter().find(|e| e.key.get_ref() == "type") {
                Some(e) if matches!(&e.value, RawValue::Value(toml::Value::String(t)) if t == "activities") =>
                    {}
                Some(e) => {
                    return Err(self.invalid(
                        &format!("{key}.type"),
                        &e.key.span(),
                        format!(
                            "a process stage takes one operator, type \"activities\", not {}",
                            match &e.value {
                                RawValue::Value(toml::Value::String(t)) => format!("\"{t}\""),
                                other => a_raw_type(other).to_string(),
                            }
                        ),
                    ))
                }
                None => {
                    return Err(self.invalid(&key, &header, "missing key `type`: \"activities\""))
                }
            }
            if index > 0 {
                return Err(self.invalid(
                    &key,
                    &header,
                    "operator `activities` is repeated; a process stage takes it at most once",
                ));
            }
            if let Some(e) = entries
                .iter()
                .find(|e| e.key.get_ref() != "type" && !KEYS.contains(&e.key.get_ref().as_str()))
            {
                return Err(self.invalid(
                    &format!("{key}.{}", e.key.get_ref()),
                    &e.key.span(),
                    "unknown key for an `activities` operator; expected `type`, `rename`, `drop`, `case_timeout` or `closed_retention`",
                ));
            }
            let op = Op {
                prefix,
                index,
                header,
                entries,
            };
            let c = &mut plan.cases;
            let d = CaseRules::default();
            c.case_timeout_ms = ms(self.op_duration(
                &op,
                "case_timeout",
                Duration::from_millis(u64::try_from(d.case_timeout_ms).unwrap_or(0)),
            )?);
            c.closed_retention_ms = ms(self.op_duration(
                &op,
                "closed_retention",
                Duration::from_millis(u64::try_from(d.closed_retention_ms).unwrap_or(0)),
            )?);
            for (from, to) in self.op_table(
                &op,
                "rename",
                "a table of \"Default Name\" = \"New Name\" (e.g. `[stages.operators.rename]` then `\"Queued\" = \"Waiting\"`)",
            )? {
                let path = op.path(&format!("rename.{}", from.get_ref()));
                let Some(a) = Activity::by_default_name(from.get_ref()) else {
                    return Err(self.invalid(
                        &path,
                        &from.span(),
                        format!("unknown activity; the activities are {}", activity_names()),
                    ));
                };
                let toml::Value::String(name) = to else {
                    return Err(self.invalid(&path, &from.span(), "the new name must be a string"));
                };
                if name.trim().is_empty() {
                    return Err(self.invalid(&path, &from.span(), "the new name is empty"));
                }
                c.vocabulary.rename(a, name.clone());
            }
            if let Some((names, span)) = self.op_str_list(&op, "drop")? {
                for n in names {
                    let Some(a) = Activity::by_default_name(n) else {
                        return Err(self.invalid(
                            &op.path("drop"),
                            &span,
                            format!(
                                "unknown activity {n:?}; the activities are {}",
                                activity_names()
                            ),
                        ));
                    };
                    c.vocabulary.drop_activity(a);
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
            "name = \"t\"\n[[stages]]\nname = \"p\"\nkind = \"process\"\ninputs = [\"s\", \"l\"]\ndead_letter = \"d\"\n[stages.ports]\nactivities = {{ topic = \"a\" }}\n{ops}"
        )
    }

    fn plan(ops: &str) -> ProcessPlan {
        parse(&topology(ops), "t.toml")
            .expect("valid")
            .process()
            .expect("a process stage")
            .clone()
    }

    #[test]
    fn defaults_then_renames_drops_and_times() {
        let p = plan("");
        assert_eq!(p.activities_topic, "a");
        assert_eq!(p.cases, CaseRules::default());
        let p = plan("[[stages.operators]]\ntype = \"activities\"\ndrop = [\"Attributes Updated\"]\ncase_timeout = \"2h\"\nclosed_retention = \"1d\"\n[stages.operators.rename]\n\"Queued\" = \"Waiting\"\n");
        assert_eq!(p.cases.case_timeout_ms, 2 * 3_600_000);
        assert_eq!(p.cases.closed_retention_ms, 24 * 3_600_000);
        assert_eq!(p.cases.vocabulary.name(Activity::Queued), Some("Waiting"));
        assert_eq!(p.cases.vocabulary.name(Activity::AttributesUpdated), None);
    }

    #[test]
    fn bad_settings_name_the_key_and_the_line() {
        for (ops, key, line, says) in [
            ("[[stages.operators]]\ntype = \"activities\"\ndrop = [\"Lunch\"]\n", "operators[0].drop", 11, "unknown activity \"Lunch\""),
            ("[[stages.operators]]\ntype = \"activities\"\n[stages.operators.rename]\n\"Lunch\" = \"x\"\n", "operators[0].rename.Lunch", 12, "unknown activity"),
            ("[[stages.operators]]\ntype = \"activities\"\ncase_timeot = \"1h\"\n", "operators[0].case_timeot", 11, "unknown key"),
            ("[[stages.operators]]\ntype = \"windows\"\n", "operators[0].type", 10, "one operator, type \"activities\""),
        ] {
            let text = topology(ops);
            match parse(&text, "t.toml") {
                Err(ConfigError::Invalid { key: k, line: l, message, .. }) => {
                    assert_eq!((k.as_str(), l), (format!("stages[0].{key}").as_str(), line), "{message}");
                    assert!(message.contains(says), "{message}");
                }
                other => panic!("{ops}: {other:?}"),
            }
        }
    }
}
