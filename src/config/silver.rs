//! The silver stage's settings: its ports and its operator chain (decode
//! → [filter] → [dedup] → [reorder] → mask → lineage), validated with errors
//! that name the key and the line.

use std::ops::Range;

use toml::Spanned;

use super::op::{a_raw_type, a_type, Op, DURATION_OR_OFF, INSTANT_OR_OFF};
use super::topology::{RawEntry, RawOperatorTable, RawStage, RawValue};
use super::{ConfigError, RuntimePlan, Validator};
use crate::operators::dedup::DedupSettings;
use crate::operators::mask::{MaskPolicies, Policy};
use crate::operators::plausibility::EventTimeBounds;
use crate::operators::progress::ProgressSettings;
use crate::operators::reorder::ReorderSettings;

/// The stage kind's name in a topology (`kind = "silver"`).
pub const KIND: &str = "silver";

/// The ports a silver stage writes, in [`crate::pipeline::Pipeline::ports`] order.
pub const PORTS: [&str; 2] = ["silver", "late"];

/// A validated silver stage: what [`crate::pipeline::Pipeline`] executes.
#[derive(Debug, Clone)]
pub struct SilverPlan {
    /// Topics and settings of the runtime that runs the stage.
    pub runtime: RuntimePlan,
    /// Port `silver`: events in per-interaction event-time order.
    pub silver_topic: String,
    /// Port `late`: events older than what was already emitted for their
    /// interaction.
    pub late_topic: String,
    /// Operators in chain order (names), for display.
    pub chain: Vec<&'static str>,
    /// `Some`: keep only these media types (upper-case).
    pub media_filter: Option<Vec<String>>,
    pub dedup: Option<DedupSettings>,
    pub reorder: Option<ReorderSettings>,
    pub mask: MaskPolicies,
    /// Plausible event times (decode operator settings).
    pub event_time_bounds: EventTimeBounds,
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

impl Validator<'_> {
    /// A `kind = "silver"` stage: one input, the ports `silver` and `late`
    /// (JSON), and the operator chain.
    pub(super) fn silver(
        &self,
        prefix: &str,
        raw: &Spanned<RawStage>,
        runtime: RuntimePlan,
    ) -> Result<SilverPlan, ConfigError> {
        let stage = raw.get_ref();
        if stage.inputs.get_ref().len() != 1 {
            return Err(self.invalid(
                &format!("{prefix}inputs"),
                &stage.inputs.span(),
                "a silver stage reads exactly one topic (the bronze events)",
            ));
        }
        let ports = self.ports(prefix, raw, KIND, &PORTS)?;
        let mut plan = SilverPlan {
            runtime,
            silver_topic: ports[0].clone(),
            late_topic: ports[1].clone(),
            chain: Vec::new(),
            media_filter: None,
            dedup: None,
            reorder: None,
            mask: MaskPolicies::default(),
            event_time_bounds: EventTimeBounds::default(),
        };
        self.operators(prefix, &stage.operators, &mut plan)?;
        Ok(plan)
    }

    /// Checks the operator chain of a silver stage (`prefix`:
    /// `stages[i].`) and sets each operator's settings in `plan`.
    fn operators(
        &self,
        prefix: &str,
        ops: &[Spanned<RawOperatorTable>],
        plan: &mut SilverPlan,
    ) -> Result<(), ConfigError> {
        let mut next = 0usize;
        for (index, table) in ops.iter().enumerate() {
            let header = table.span();
            let key = format!("{prefix}operators[{index}]");
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
                prefix,
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
                    for (field, policy) in self.op_table(
                        &op,
                        "fields",
                        "a table of field = \"policy\" (e.g. `[operators.fields]` then `ani = \"hash\"`)",
                    )? {
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
                key: format!("{prefix}operators"),
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
