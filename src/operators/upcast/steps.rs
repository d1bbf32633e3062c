//! The upcast chain: [`Step`], [`CHAIN`] and the steps in it, and
//! [`upcast`], which runs the steps that apply to an input's version.

use serde_json::Value;

use crate::model::{DecodeNotes, EventKind};

use super::body::Body;
use super::event_time::{as_i64, parse_event_time};
use super::names::{event_time_id, kind_fields};
use super::tables::{latest_known_version, version_number};

/// One upcast step.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// Stable name, reported in `DecodeNotes::upcast_steps`.
    pub name: &'static str,
    /// `Some(n)`: runs only for inputs whose `detail.version` is below `n`.
    /// `None`: runs for every version.
    pub applies_below: Option<u32>,
    /// Where the drift this step handles was seen.
    pub source: &'static str,
    /// Applies the step; returns true when it changed the body.
    pub run: fn(&mut Body<'_>, EventKind) -> bool,
}

impl Step {
    /// Whether the step runs for an input of this version (`None`: unknown,
    /// treated as the latest known version).
    pub fn applies_to(&self, version: Option<f64>) -> bool {
        match self.applies_below {
            None => true,
            Some(n) => version.unwrap_or_else(latest_known_version) < f64::from(n),
        }
    }
}

/// The chain, in order. Input is any accepted eventBody; output is the
/// latest known version's shape with every known field of the kind present.
pub const CHAIN: &[Step] = &[
    Step {
        name: "event_time_to_epoch_ms",
        applies_below: None,
        source: "reference §1.4: the audit topic family sends eventTime as an ISO-8601 \
                 string (UserPresenceChange.json) while detail events send epoch ms; \
                 §3.1: SDKs typed it Integer (v212) then Long (v223). Numeric strings \
                 and float ms: defensive, part of the ingestion contract, not seen in \
                 Genesys data.",
        run: event_time_to_epoch_ms,
    },
    Step {
        name: "fill_absent_known_fields",
        applies_below: None,
        source: "reference §1.2 (every detail-event field is optional) and §3.1 (fields \
                 added over SDK releases: conversationExternal*Ids 100.0.0, utilizationLabel \
                 184.0.0, wrapupNotes 66.0.0, exitReason/transferType 113.0.0, …): events \
                 from older producers lack them. Filled with null so the canonical record \
                 always has every field of its kind.",
        run: fill_absent_known_fields,
    },
];

/// Brings `body` to the canonical shape: runs every applicable step of
/// [`CHAIN`] and records what happened in `notes`.
pub fn upcast(body: &mut Body<'_>, detail_version: &str, kind: EventKind, notes: &mut DecodeNotes) {
    let version = version_number(detail_version);
    if version.is_some_and(|v| v > latest_known_version()) {
        notes.newer_version = true;
    }
    for step in CHAIN {
        if step.applies_to(version) && (step.run)(body, kind) {
            notes.upcast_steps.push(step.name);
        }
    }
}

/// Step: `eventTime` as an ISO-8601 string, a decimal string or a float →
/// integer epoch ms. Values that cannot be parsed are left untouched (decode
/// rejects them with the right class).
pub fn event_time_to_epoch_ms(body: &mut Body<'_>, _kind: EventKind) -> bool {
    let Some(v) = body.get_id(event_time_id()) else {
        return false;
    };
    if v.as_number().and_then(as_i64).is_some() {
        return false;
    }
    match parse_event_time(v) {
        Ok(ms) => {
            body.set_id(event_time_id(), Value::from(ms));
            true
        }
        Err(_) => false,
    }
}

/// Step: every known field of the kind that is absent is inserted as null.
pub fn fill_absent_known_fields(body: &mut Body<'_>, kind: EventKind) -> bool {
    let mut changed = false;
    for &(id, _) in kind_fields(kind) {
        if !body.contains_id(id) {
            body.set_id(id, Value::Null);
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::super::names::fields_of;
    use super::*;
    use crate::json::{Canonical, Tape};
    use serde_json::{json, Map};

    /// Runs `f` on the body of `v` (an object) and returns what it
    /// returned and the body afterwards.
    fn on_body<R>(v: Value, f: impl FnOnce(&mut Body<'_>) -> R) -> (R, Map<String, Value>) {
        let text = v.to_string();
        let tape = Tape::parse(text.as_bytes()).unwrap_or_default();
        let mut out = String::new();
        let mut body = Body::canonical(&tape, 0, &mut Canonical::default(), &mut out);
        assert_eq!(out, text, "serde_json's text is canonical");
        let r = f(&mut body);
        (r, body.to_map())
    }

    #[test]
    fn version_numbers_and_newer_detection() {
        assert_eq!(version_number("2"), Some(2.0));
        assert_eq!(version_number(" 3 "), Some(3.0));
        assert_eq!(version_number("beta"), None);
        assert_eq!(version_number("NaN"), None);
        assert_eq!(latest_known_version(), 2.0);
        let mut notes = DecodeNotes::default();
        on_body(json!({}), |b| upcast(b, "3", EventKind::Acw, &mut notes));
        assert!(notes.newer_version);
        for v in ["2", "2.0", "1", "", "beta"] {
            let mut notes = DecodeNotes::default();
            on_body(json!({}), |b| upcast(b, v, EventKind::Acw, &mut notes));
            assert!(!notes.newer_version, "{v}");
        }
    }

    #[test]
    fn step_applicability_by_version() {
        fn noop(_: &mut Body<'_>, _: EventKind) -> bool {
            false
        }
        let migration = Step {
            name: "v2_to_v3_example",
            applies_below: Some(3),
            source: "test",
            run: noop,
        };
        assert!(migration.applies_to(Some(2.0)));
        assert!(migration.applies_to(None)); // unknown = latest known (2)
        assert!(!migration.applies_to(Some(3.0)));
        assert!(!migration.applies_to(Some(4.0)));
        let always = Step {
            applies_below: None,
            ..migration
        };
        assert!(always.applies_to(Some(99.0)) && always.applies_to(None));
    }

    #[test]
    fn step_event_time_to_epoch_ms() {
        let step = |b: &mut Body<'_>| {
            let first = event_time_to_epoch_ms(b, EventKind::Acw);
            // Already canonical after one run: unchanged.
            (first, event_time_to_epoch_ms(b, EventKind::Acw))
        };
        let (changed, body) = on_body(json!({"eventTime": "2021-06-25T15:11:52.000Z"}), step);
        assert_eq!(changed, (true, false));
        assert_eq!(body["eventTime"], json!(1_624_633_912_000_i64));
        let (changed, body) = on_body(json!({"eventTime": 1_624_633_912_000.75}), step);
        assert_eq!(changed, (true, false));
        assert_eq!(body["eventTime"], json!(1_624_633_912_000_i64));
        let (changed, body) = on_body(json!({"eventTime": "1624633912000"}), step);
        assert_eq!(changed, (true, false));
        assert_eq!(body["eventTime"], json!(1_624_633_912_000_i64));
        let (changed, _) = on_body(json!({"eventTime": 1_624_633_912_000_i64}), step);
        assert_eq!(changed, (false, false));
        // Unparseable or absent: left for decode to reject.
        let (changed, body) = on_body(json!({"eventTime": "2021-04-2T15:30:51.418Z"}), step);
        assert_eq!(changed, (false, false));
        assert_eq!(body["eventTime"], json!("2021-04-2T15:30:51.418Z"));
        assert_eq!(on_body(json!({}), step).0, (false, false));
    }

    #[test]
    fn step_fill_absent_known_fields() {
        let body = json!({"wrapupCode": "c", "wrapupNotes": null, "custom": 1});
        let (changed, body) = on_body(body, |b| {
            let first = fill_absent_known_fields(b, EventKind::Wrapup);
            // Second run: nothing left to fill.
            (first, fill_absent_known_fields(b, EventKind::Wrapup))
        });
        assert_eq!(changed, (true, false));
        assert_eq!(body["wrapupCode"], json!("c"));
        assert_eq!(body["wrapupNotes"], Value::Null);
        assert_eq!(body["wrapupDurationMs"], Value::Null);
        assert_eq!(body["custom"], json!(1));
        assert!(!body.contains_key("userId")); // header fields are not filled
        assert!(!body.contains_key("divisionId")); // not a wrapup field
        assert_eq!(body.len(), fields_of(EventKind::Wrapup).count() + 1);
    }

    #[test]
    fn chain_reports_changed_steps_only() {
        let mut body = Map::new();
        body.insert("eventTime".into(), json!(5));
        for spec in fields_of(EventKind::Attributes) {
            body.insert(spec.name.to_string(), Value::Null);
        }
        let mut notes = DecodeNotes::default();
        on_body(Value::Object(body), |b| {
            upcast(b, "2", EventKind::Attributes, &mut notes)
        });
        assert!(notes.upcast_steps.is_empty());
        on_body(json!({"eventTime": "5"}), |b| {
            upcast(b, "2", EventKind::Attributes, &mut notes)
        });
        assert_eq!(
            notes.upcast_steps,
            ["event_time_to_epoch_ms", "fill_absent_known_fields"]
        );
    }
}
