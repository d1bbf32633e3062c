//! Payload rendering: JSON writing, the `eventBody` per schema version
//! (the `eventTime` representation, old-SDK bodies without later fields,
//! future bodies with unknown fields and values), and the record around it
//! (EventBridge envelope or bare `detail`).

use std::fmt::Write as _;

use rand::rngs::SmallRng;
use rand::Rng;

use super::config::Probs;
use super::pools::Pools;
use super::random::{chance, pick, uuid_str};
use super::stream::{Ev, Variant};
use crate::model::{format_iso_ms, EventKind};

pub(super) const TOPIC_PREFIX: &str = "v2.detail.events.conversation.";

pub(super) type Field = (&'static str, Val);

/// An event of a conversation before rendering.
pub(super) struct Planned {
    pub(super) kind: EventKind,
    pub(super) time: i64,
    pub(super) fields: Vec<Field>,
}

impl Planned {
    /// The value of string field `name`, if the event has one.
    pub(super) fn str_field(&self, name: &str) -> Option<&String> {
        self.fields.iter().find_map(|(k, v)| match v {
            Val::S(s) if *k == name => Some(s),
            _ => None,
        })
    }
}

pub(super) fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A field value of an event body.
#[derive(Clone, Debug)]
pub(super) enum Val {
    S(String),
    I(i64),
    B(bool),
    L(Vec<String>),
    M(Vec<(&'static str, String)>),
    /// Pre-rendered JSON.
    R(String),
}

fn render_val(out: &mut String, v: &Val) {
    match v {
        Val::S(s) => push_json_str(out, s),
        Val::I(i) => {
            let _ = write!(out, "{i}");
        }
        Val::B(b) => out.push_str(if *b { "true" } else { "false" }),
        Val::L(l) => {
            out.push('[');
            for (i, s) in l.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_str(out, s);
            }
            out.push(']');
        }
        Val::M(m) => {
            out.push('{');
            for (i, (k, s)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_str(out, k);
                out.push(':');
                push_json_str(out, s);
            }
            out.push('}');
        }
        Val::R(r) => out.push_str(r),
    }
}

/// Renders `(name, value)` pairs as a JSON object.
pub(super) fn render_obj(fields: &[(&str, Val)]) -> String {
    let mut o = String::with_capacity(128);
    o.push('{');
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        push_json_str(&mut o, k);
        o.push(':');
        render_val(&mut o, v);
    }
    o.push('}');
    o
}

/// ISO-8601 with second precision, as in the EventBridge `time` field.
pub(super) fn iso_seconds(ms: i64) -> String {
    let mut s = format_iso_ms(ms.div_euclid(1000) * 1000);
    if s.ends_with(".000Z") {
        s.truncate(s.len() - 5);
        s.push('Z');
    }
    s
}

/// How `eventTime` is written.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum TimeRepr {
    Ms,
    Iso,
    NumStr,
}

/// Fields an older SDK/producer did not have yet (§3.1).
fn old_sdk_lacks(kind: EventKind, field: &str) -> bool {
    use EventKind as K;
    match field {
        "conversationExternalContactIds"
        | "conversationExternalOrganizationIds"
        | "utilizationLabel" => true,
        "divisionId" | "journeyContext" => matches!(kind, K::CustomerStart | K::CustomerEnd),
        "routingPriority" | "requestedRoutingSkillIds" | "skillExpressionApplied" => {
            kind == K::AcdStart
        }
        "flowType" | "requestedSkillExpressionIds" => kind == K::AcdEnd,
        "callbackDurationMs" => kind == K::UserEnd,
        "exitReason" | "transferType" => kind == K::FlowEnd,
        "communications" => kind == K::Attributes,
        "wrapupNotes" => matches!(kind, K::Acw | K::Wrapup),
        _ => false,
    }
}

/// How one event is written: in the envelope or bare, its `eventTime`
/// representation, and an old-SDK or a future body (or neither).
#[derive(Clone, Copy, Debug)]
pub(super) struct Shape {
    pub(super) envelope: bool,
    pub(super) repr: TimeRepr,
    pub(super) old: bool,
    pub(super) future: bool,
}

impl Shape {
    /// Draws a shape from the configured version mix.
    pub(super) fn draw(r: &mut SmallRng, p: &Probs) -> Self {
        let envelope = chance(r, p.envelope);
        let x = r.gen::<f64>();
        let repr = if x < p.iso {
            TimeRepr::Iso
        } else if x < p.iso + p.numstr {
            TimeRepr::NumStr
        } else {
            TimeRepr::Ms
        };
        let x = r.gen::<f64>();
        let (old, future) = if x < p.old {
            (true, false)
        } else if x < p.old + p.future {
            (false, true)
        } else {
            (false, false)
        };
        Shape {
            envelope,
            repr,
            old,
            future,
        }
    }
}

/// The `eventBody` JSON of `p` in `shape`.
pub(super) fn render_body(p: &Planned, shape: Shape, r: &mut SmallRng) -> String {
    let Shape {
        repr, old, future, ..
    } = shape;
    let mut o = String::with_capacity(900);
    o.push_str("{\"eventTime\":");
    match repr {
        TimeRepr::Ms => {
            let _ = write!(o, "{}", p.time);
        }
        TimeRepr::NumStr => {
            let _ = write!(o, "\"{}\"", p.time);
        }
        TimeRepr::Iso => {
            let _ = write!(o, "\"{}\"", format_iso_ms(p.time));
        }
    }
    let new_disconnect = if future && chance(r, 0.6) {
        Some(*pick(r, &["TAKEOVER", "INACTIVITY", "SESSION_EXPIRED"]))
    } else {
        None
    };
    for (k, v) in &p.fields {
        if old && old_sdk_lacks(p.kind, k) {
            continue;
        }
        o.push(',');
        push_json_str(&mut o, k);
        o.push(':');
        match (*k, new_disconnect) {
            // A newer SDK adds disconnect types; it does not rename a
            // transfer (gold counts transfers by it).
            ("disconnectType", Some(d)) if !matches!(v, Val::S(old) if old.ends_with("TRANSFER")) => {
                push_json_str(&mut o, d)
            }
            ("messageType", _) if future => push_json_str(&mut o, "LINKEDIN"),
            _ => render_val(&mut o, v),
        }
    }
    if future {
        if chance(r, 0.7) {
            let _ = write!(o, ",\"sentimentScore\":{:.2}", r.gen::<f64>() * 2.0 - 1.0);
        }
        if chance(r, 0.5) {
            let _ = write!(o, ",\"agentAssistSessionId\":\"{}\"", uuid_str(r));
        }
        if chance(r, 0.5) {
            let intent = *pick(
                r,
                &[
                    "billing",
                    "technical_support",
                    "cancellation",
                    "order_status",
                ],
            );
            let _ = write!(
                o,
                ",\"aiInsights\":{{\"intent\":\"{intent}\",\"confidence\":{:.2},\"modelVersion\":\"2026.{}\"}}",
                0.5 + r.gen::<f64>() / 2.0,
                r.gen_range(1..12)
            );
        }
        o.push_str(",\"interactionLabels\":[\"priority-routing\",\"gen3\"]");
    }
    o.push('}');
    o
}

/// Appends one delivery of `ev` to `out`: the `detail` object, inside the
/// EventBridge envelope when the event has one.
pub(super) fn render_event(pools: &Pools, ev: &Ev, variant: &Variant, out: &mut Vec<u8>) {
    let (id, publish) = match variant {
        Variant::Republished { id, publish_ms } => (id.as_str(), *publish_ms),
        _ => (ev.envelope_id.as_str(), ev.publish_ms),
    };
    let kind = ev.kind.as_str();
    let mut s = String::with_capacity(ev.body.len() + 640);
    if ev.envelope {
        let _ = write!(
            s,
            "{{\"version\":\"0\",\"id\":\"{id}\",\"detail-type\":\"{TOPIC_PREFIX}{{id}}.{kind}\",\"source\":\"{}\",\"account\":\"{}\",\"time\":\"{}\",\"region\":\"{}\",\"resources\":[],\"detail\":",
            pools.source,
            pools.account,
            iso_seconds(publish),
            pools.region
        );
    }
    let _ = write!(
        s,
        "{{\"topicName\":\"{TOPIC_PREFIX}{}.{kind}\",\"version\":\"{}\",\"eventBody\":{},\"metadata\":{{\"CorrelationId\":\"{}\"}},\"timestamp\":\"{}\"}}",
        ev.cid,
        ev.detail_version,
        ev.body,
        ev.correlation_id,
        format_iso_ms(publish)
    );
    if ev.envelope {
        s.push('}');
    }
    out.extend_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::test_support::*;

    #[test]
    fn json_strings_are_escaped() {
        let mut o = String::new();
        push_json_str(&mut o, "plain");
        push_json_str(&mut o, "a\"b\\c\nd\u{1}é");
        assert_eq!(o, r#""plain""a\"b\\c\nd\u0001é""#);
        let v: Vec<String> = serde_json::Deserializer::from_str(&o)
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        assert_eq!(v, ["plain", "a\"b\\c\nd\u{1}é"]);
    }

    #[test]
    fn average_record_size_is_about_1kb() {
        let (recs, _) = default_run();
        let avg = recs.iter().map(|r| r.value.len()).sum::<usize>() as f64 / recs.len() as f64;
        assert!((850.0..1_250.0).contains(&avg), "average record size {avg}");
    }
}
