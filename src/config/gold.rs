//! The gold stage's settings: its inputs (silver's events and late
//! events), its ports and its two operators, `windows` and `kpis`, each
//! optional and at most once, validated with errors that name the key and
//! the line.

use std::time::Duration;

use toml::Spanned;

use super::op::{a_raw_type, Op};
use super::topology::{RawOperatorTable, RawStage, RawValue};
use super::{ConfigError, RuntimePlan, Validator};
use crate::gold::kpi::KpiRules;
use crate::gold::windows::WindowRules;

/// The stage kind's name in a topology (`kind = "gold"`).
pub const KIND: &str = "gold";

/// The ports a gold stage writes, in [`crate::gold::stage::Gold::ports`] order.
pub const PORTS: [&str; 2] = ["queue_kpis", "late"];

/// A validated gold stage.
#[derive(Debug, Clone)]
pub struct GoldPlan {
    pub runtime: RuntimePlan,
    /// Port `queue_kpis`: one upsert per (queue, window) and revision.
    pub kpis_topic: String,
    /// Port `late`: silver events too old for any window still kept.
    pub late_topic: String,
    pub windows: WindowRules,
    /// `windows.grace` was set; otherwise it follows the allowed lateness
    /// of the silver stage that writes this stage's first input.
    pub grace_set: bool,
}

/// The operator types of a gold stage and the keys each takes.
const OPERATORS: [(&str, &[&str]); 2] = [
    ("windows", &["sizes", "grace", "correction_horizon"]),
    (
        "kpis",
        &[
            "short_abandon_threshold",
            "service_level_target",
            "exclude_short_abandons",
            "include_flow_outs",
        ],
    ),
];

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Validator<'_> {
    /// A `kind = "gold"` stage: one or two inputs (silver's events, then
    /// its late events), the ports `queue_kpis` and `late`, and the
    /// `windows` and `kpis` settings.
    pub(super) fn gold(
        &self,
        prefix: &str,
        raw: &Spanned<RawStage>,
        runtime: RuntimePlan,
    ) -> Result<GoldPlan, ConfigError> {
        let stage = raw.get_ref();
        if stage.inputs.get_ref().len() > 2 {
            return Err(self.invalid(
                &format!("{prefix}inputs"),
                &stage.inputs.span(),
                "a gold stage reads silver's events and, optionally, its late events: [\"cx.silver.events\", \"cx.silver.late\"]",
            ));
        }
        let ports = self.ports(prefix, raw, KIND, &PORTS)?;
        let mut plan = GoldPlan {
            runtime,
            kpis_topic: ports[0].clone(),
            late_topic: ports[1].clone(),
            windows: WindowRules::default(),
            grace_set: false,
        };
        self.gold_operators(prefix, &stage.operators, &mut plan)?;
        Ok(plan)
    }

    fn gold_operators(
        &self,
        prefix: &str,
        ops: &[Spanned<RawOperatorTable>],
        plan: &mut GoldPlan,
    ) -> Result<(), ConfigError> {
        let mut seen: Vec<&str> = Vec::new();
        for (index, table) in ops.iter().enumerate() {
            let header = table.span();
            let key = format!("{prefix}operators[{index}]");
            let entries = &table.get_ref().entries;
            let types = || {
                OPERATORS
                    .iter()
                    .map(|(n, _)| format!("\"{n}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let Some(ty) = entries.iter().find(|e| e.key.get_ref() == "type") else {
                return Err(self.invalid(
                    &key,
                    &header,
                    format!("missing key `type`: one of {}", types()),
                ));
            };
            let (name, keys) = match &ty.value {
                RawValue::Value(toml::Value::String(t)) => OPERATORS
                    .iter()
                    .find(|(n, _)| n == t)
                    .copied()
                    .ok_or_else(|| {
                        self.invalid(
                            &format!("{key}.type"),
                            &ty.key.span(),
                            format!(
                                "unknown operator type for a gold stage; expected one of {}",
                                types()
                            ),
                        )
                    })?,
                other => {
                    return Err(self.invalid(
                        &format!("{key}.type"),
                        &ty.key.span(),
                        format!(
                            "must be a string, one of {}, not {}",
                            types(),
                            a_raw_type(other)
                        ),
                    ))
                }
            };
            if seen.contains(&name) {
                return Err(self.invalid(
                    &key,
                    &header,
                    format!("operator `{name}` is repeated; a gold stage takes each at most once"),
                ));
            }
            seen.push(name);
            if let Some(e) = entries
                .iter()
                .find(|e| e.key.get_ref() != "type" && !keys.contains(&e.key.get_ref().as_str()))
            {
                let expected: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
                return Err(self.invalid(
                    &format!("{key}.{}", e.key.get_ref()),
                    &e.key.span(),
                    format!(
                        "unknown key for a `{name}` operator; expected `type` or one of {}",
                        expected.join(", ")
                    ),
                ));
            }
            let op = Op {
                prefix,
                index,
                header,
                entries,
            };
            match name {
                "windows" => self.gold_windows(&op, &mut plan.windows, &mut plan.grace_set)?,
                _ => self.gold_kpis(&op, &mut plan.windows.kpi)?,
            }
        }
        Ok(())
    }

    fn gold_windows(
        &self,
        op: &Op<'_>,
        w: &mut WindowRules,
        grace_set: &mut bool,
    ) -> Result<(), ConfigError> {
        if let Some((sizes, span)) = self.op_str_list(op, "sizes")? {
            if sizes.is_empty() {
                return Err(self.invalid(
                    &op.path("sizes"),
                    &span,
                    "list at least one window size, e.g. [\"15m\", \"1h\"]",
                ));
            }
            let mut out = Vec::new();
            for s in sizes {
                let d = self.duration_of(&op.path("sizes"), &span, s)?;
                let size = ms(d);
                if size < 1_000 || 86_400_000 % size != 0 {
                    return Err(self.invalid(
                        &op.path("sizes"),
                        &span,
                        format!("window size {s:?} must divide a day into whole windows (e.g. \"15m\", \"30m\", \"1h\", \"1d\")"),
                    ));
                }
                if !out.contains(&size) {
                    out.push(size);
                }
            }
            w.sizes_ms = out;
        }
        if op.entry("grace").is_some() {
            w.grace_ms = ms(self.op_duration(op, "grace", Duration::ZERO)?);
            *grace_set = true;
        }
        let horizon = self.op_duration(
            op,
            "correction_horizon",
            Duration::from_millis(u64::try_from(w.horizon_ms).unwrap_or(0)),
        )?;
        w.horizon_ms = ms(horizon);
        if w.horizon_ms < w.grace_ms {
            let span = op
                .key_span("correction_horizon")
                .unwrap_or(op.header.clone());
            return Err(self.invalid(
                &op.path("correction_horizon"),
                &span,
                "must be at least `grace`: a window is kept for corrections after its first result",
            ));
        }
        Ok(())
    }

    fn gold_kpis(&self, op: &Op<'_>, k: &mut KpiRules) -> Result<(), ConfigError> {
        let d = KpiRules::default();
        let dur = |key: &str, default: i64| -> Result<i64, ConfigError> {
            Ok(ms(self.op_duration(
                op,
                key,
                Duration::from_millis(u64::try_from(default).unwrap_or(0)),
            )?))
        };
        *k = KpiRules {
            short_abandon_threshold_ms: dur(
                "short_abandon_threshold",
                d.short_abandon_threshold_ms,
            )?,
            service_level_target_ms: dur("service_level_target", d.service_level_target_ms)?,
            exclude_short_abandons: self.op_bool(
                op,
                "exclude_short_abandons",
                d.exclude_short_abandons,
            )?,
            include_flow_outs: self.op_bool(op, "include_flow_outs", d.include_flow_outs)?,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, ConfigError};

    const SILVER: &str = include_str!("../../topologies/genesys-silver.toml");

    fn gold_stage(operators: &str) -> String {
        format!(
            "\n[[stages]]\nname = \"g\"\nkind = \"gold\"\ninputs = [\"cx.silver.events\", \"cx.silver.late\"]\ndead_letter = \"cx.gold.dlq\"\n[stages.ports]\nqueue_kpis = {{ topic = \"cx.gold.queue_kpis\" }}\nlate = {{ topic = \"cx.gold.late\" }}\n{operators}"
        )
    }

    /// The shipped topology without any gold stage of its own, plus `g`.
    fn with_gold(operators: &str) -> String {
        let base = match SILVER.find("\n[[stages]]\nname = \"gold\"") {
            Some(i) => &SILVER[..i],
            None => SILVER,
        };
        format!("{base}{}", gold_stage(operators))
    }

    fn error(text: &str) -> (String, usize, String) {
        match parse(text, "t.toml") {
            Err(ConfigError::Invalid {
                key, line, message, ..
            }) => (key, line, message),
            other => panic!("expected an invalid topology, got {other:?}"),
        }
    }

    fn line_of(text: &str, needle: &str) -> usize {
        let at = text.rfind(needle).expect("needle");
        text[..at].matches('\n').count() + 1
    }

    #[test]
    fn defaults_follow_genesys_and_grace_follows_the_silver_lateness() {
        let t = parse(&with_gold(""), "t.toml").expect("valid");
        let g = t.gold().expect("gold");
        assert_eq!(g.runtime.input_topic, "cx.silver.events");
        assert_eq!(g.runtime.co_inputs, ["cx.silver.late"]);
        assert_eq!(g.windows.sizes_ms, [15 * 60_000, 3_600_000]);
        assert_eq!(g.windows.horizon_ms, 48 * 3_600_000);
        assert!(!g.grace_set);
        let lateness = t
            .silver()
            .and_then(|s| s.reorder.as_ref())
            .expect("reorder");
        assert_eq!(
            g.windows.grace_ms,
            i64::try_from(lateness.allowed_lateness.as_millis()).expect("ms")
        );
        assert_eq!(g.windows.kpi, KpiRules::default());
    }

    #[test]
    fn every_setting_can_be_set() {
        let t = parse(
            &with_gold("[[stages.operators]]\ntype = \"windows\"\nsizes = [\"30m\"]\ngrace = \"1m\"\ncorrection_horizon = \"24h\"\n[[stages.operators]]\ntype = \"kpis\"\nshort_abandon_threshold = \"5s\"\nservice_level_target = \"30s\"\nexclude_short_abandons = false\ninclude_flow_outs = true\n"),
            "t.toml",
        )
        .expect("valid");
        let g = t.gold().expect("gold");
        assert_eq!(g.windows.sizes_ms, [30 * 60_000]);
        assert_eq!((g.windows.grace_ms, g.grace_set), (60_000, true));
        assert_eq!(g.windows.horizon_ms, 24 * 3_600_000);
        assert_eq!(
            g.windows.kpi,
            KpiRules {
                short_abandon_threshold_ms: 5_000,
                service_level_target_ms: 30_000,
                exclude_short_abandons: false,
                include_flow_outs: true,
            }
        );
    }

    #[test]
    fn bad_settings_name_the_key_and_the_line() {
        for (ops, key, needle, says) in [
            (
                "[[stages.operators]]\ntype = \"windows\"\nsize = [\"15m\"]\n",
                "operators[0].size",
                "size =",
                "unknown key",
            ),
            (
                "[[stages.operators]]\ntype = \"windows\"\nsizes = [\"7m\"]\n",
                "operators[0].sizes",
                "sizes =",
                "divide a day",
            ),
            (
                "[[stages.operators]]\ntype = \"kpis\"\ninclude_flow_outs = \"yes\"\n",
                "operators[0].include_flow_outs",
                "include_flow_outs",
                "true or false",
            ),
            (
                "[[stages.operators]]\ntype = \"kpis\"\n[[stages.operators]]\ntype = \"kpis\"\n",
                "operators[1]",
                "[[stages.operators]]",
                "repeated",
            ),
            (
                "[[stages.operators]]\ntype = \"reorder\"\n",
                "operators[0].type",
                "type = \"reorder\"",
                "unknown operator type",
            ),
            (
                "[[stages.operators]]\ntype = \"windows\"\ngrace = \"2h\"\ncorrection_horizon = \"1h\"\n",
                "operators[0].correction_horizon",
                "correction_horizon",
                "at least `grace`",
            ),
        ] {
            let text = with_gold(ops);
            let (k, line, message) = error(&text);
            assert!(k.ends_with(key), "{k} for {ops}");
            assert!(k.starts_with("stages["), "{k}");
            assert_eq!(line, line_of(&text, needle), "{k}: {message}");
            assert!(message.contains(says), "{message}");
        }
        let three = with_gold("").replace(
            "inputs = [\"cx.silver.events\", \"cx.silver.late\"]",
            "inputs = [\"cx.silver.events\", \"cx.silver.late\", \"x\"]",
        );
        let (k, _, message) = error(&three);
        assert!(k.ends_with(".inputs"), "{k}");
        assert!(message.contains("late events"), "{message}");
    }
}
