//! The gold output record: one (queue, window) result as the JSON a sink
//! connector loads (`schemas/gold/cx.gold.queue_kpis.v1.json`), and its
//! Kafka key.
//!
//! A result is an upsert: its key names the queue and the window, and a
//! later revision of the same window replaces the earlier one with the
//! complete figures (never a delta). The record holds no wall-clock time, so
//! a result written again after a crash has the same bytes.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::kpi::{KpiRules, Kpis};
use super::windows::{WindowKey, WindowResult};
use crate::model::format_iso_ms;

/// `schema_version` of the records this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// What a record says about where it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance<'a> {
    pub topology: &'a str,
    pub stage: &'a str,
}

#[derive(Serialize)]
struct Record<'a> {
    schema_version: u32,
    queue_id: &'a str,
    window_start: String,
    window_end: String,
    /// ISO-8601 duration, e.g. `PT15M`.
    window_size: String,
    window_size_ms: i64,
    revision: u32,
    #[serde(flatten)]
    kpis: &'a Kpis,
    rules: Rules,
    lineage: Lineage<'a>,
}

#[derive(Serialize)]
struct Rules {
    service_level_target_ms: i64,
    short_abandon_threshold_ms: i64,
    exclude_short_abandons: bool,
    include_flow_outs: bool,
}

#[derive(Serialize)]
struct Lineage<'a> {
    version: u32,
    token: String,
    processor: &'static str,
    processor_version: &'static str,
    topology: &'a str,
    stage: &'a str,
    hops: [Hop<'a>; 1],
    /// Distinct silver events behind the figures.
    silver_events: u64,
}

/// Gold's hop: an aggregate of many silver events has no single source
/// position (each silver event carries its own hops), and no wall-clock
/// time, so a record written again is byte for byte the same.
#[derive(Serialize)]
struct Hop<'a> {
    processor: &'static str,
    version: &'static str,
    stage: &'a str,
    topology: &'a str,
    status: &'static str,
}

/// The lineage token of a window's results: the first 16 bytes (hex) of
/// SHA-256 over topology, stage and key. The same for every revision.
pub fn token(from: &Provenance<'_>, key: &str) -> String {
    let mut h = Sha256::new();
    for part in [from.topology, from.stage, key] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(&h.finalize()[..16])
}

/// What a restore needs back from a written record: its revision and
/// figures (with the lineage count).
#[derive(Deserialize)]
struct Written {
    schema_version: u32,
    queue_id: String,
    window_start: String,
    window_size_ms: i64,
    revision: u32,
    #[serde(flatten)]
    kpis: Kpis,
    lineage: WrittenLineage,
}

#[derive(Deserialize)]
struct WrittenLineage {
    silver_events: u64,
}

/// Reads a record this build wrote: its window, revision and figures;
/// `None` for a record of another schema version or shape.
pub fn decode(value: &[u8]) -> Option<(WindowKey, u32, Kpis)> {
    let w: Written = serde_json::from_slice(value).ok()?;
    if w.schema_version != SCHEMA_VERSION {
        return None;
    }
    let start = time::OffsetDateTime::parse(
        &w.window_start,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()?;
    let start_ms = i64::try_from(start.unix_timestamp_nanos() / 1_000_000).ok()?;
    let mut kpis = w.kpis;
    kpis.events = w.lineage.silver_events;
    let key = WindowKey {
        queue: w.queue_id,
        size_ms: w.window_size_ms,
        start_ms,
    };
    Some((key, w.revision, kpis))
}

/// An ISO-8601 duration of whole seconds (`PT15M`, `PT1H`, `PT1H30M`,
/// `P1D`); milliseconds that are not whole seconds as `PT0.5S`.
pub fn iso_duration(ms: i64) -> String {
    if ms % 1000 != 0 {
        return format!("PT{}S", ms as f64 / 1000.0);
    }
    let mut s = ms / 1000;
    let days = s / 86_400;
    s %= 86_400;
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut out = String::from("P");
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if h > 0 || m > 0 || sec > 0 || days == 0 {
        out.push('T');
        if h > 0 {
            out.push_str(&format!("{h}H"));
        }
        if m > 0 {
            out.push_str(&format!("{m}M"));
        }
        if sec > 0 || (h == 0 && m == 0) {
            out.push_str(&format!("{sec}S"));
        }
    }
    out
}

/// The Kafka key of a window's results: `<queue>|<size>|<start>`, e.g.
/// `q-sales|PT15M|2026-03-02T09:15:00.000Z`. Every revision of one window
/// has the same key, so a compacted topic keeps the latest.
pub fn key(k: &WindowKey) -> String {
    format!(
        "{}|{}|{}",
        k.queue,
        iso_duration(k.size_ms),
        format_iso_ms(k.start_ms)
    )
}

/// The record's value.
pub fn encode(
    r: &WindowResult,
    rules: &KpiRules,
    from: &Provenance<'_>,
) -> Result<Vec<u8>, serde_json::Error> {
    let k = key(&r.key);
    serde_json::to_vec(&Record {
        schema_version: SCHEMA_VERSION,
        queue_id: &r.key.queue,
        window_start: format_iso_ms(r.key.start_ms),
        window_end: format_iso_ms(r.key.end_ms()),
        window_size: iso_duration(r.key.size_ms),
        window_size_ms: r.key.size_ms,
        revision: r.revision,
        kpis: &r.kpis,
        rules: Rules {
            service_level_target_ms: rules.service_level_target_ms,
            short_abandon_threshold_ms: rules.short_abandon_threshold_ms,
            exclude_short_abandons: rules.exclude_short_abandons,
            include_flow_outs: rules.include_flow_outs,
        },
        lineage: Lineage {
            version: 1,
            token: token(from, &k),
            processor: "cxstream",
            processor_version: env!("CARGO_PKG_VERSION"),
            topology: from.topology,
            stage: from.stage,
            hops: [Hop {
                processor: "cxstream",
                version: env!("CARGO_PKG_VERSION"),
                stage: from.stage,
                topology: from.topology,
                status: "aggregated",
            }],
            silver_events: r.kpis.events,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn result() -> WindowResult {
        WindowResult {
            key: WindowKey {
                queue: "q-sales".into(),
                size_ms: 15 * 60_000,
                start_ms: 1_772_442_900_000,
            },
            revision: 2,
            kpis: Kpis {
                offered: 3,
                answered: 2,
                abandoned: 1,
                answered_within_target: 1,
                asa_ms: Some(15_000.0),
                abandon_rate: Some(1.0 / 3.0),
                service_level_pct: None,
                events: 9,
                ..Kpis::default()
            },
        }
    }

    const FROM: Provenance<'static> = Provenance {
        topology: "genesys",
        stage: "gold",
    };

    #[test]
    fn durations_are_iso_8601() {
        assert_eq!(iso_duration(15 * 60_000), "PT15M");
        assert_eq!(iso_duration(3_600_000), "PT1H");
        assert_eq!(iso_duration(5_400_000), "PT1H30M");
        assert_eq!(iso_duration(86_400_000), "P1D");
        assert_eq!(iso_duration(90_061_000), "P1DT1H1M1S");
        assert_eq!(iso_duration(0), "PT0S");
        assert_eq!(iso_duration(500), "PT0.5S");
    }

    #[test]
    fn the_key_names_queue_size_and_start_and_every_revision_shares_it() {
        let r = result();
        assert_eq!(key(&r.key), "q-sales|PT15M|2026-03-02T09:15:00.000Z");
        let mut later = r.clone();
        later.revision = 3;
        assert_eq!(key(&later.key), key(&r.key));
    }

    #[test]
    fn a_record_holds_window_revision_figures_rules_and_lineage() {
        let r = result();
        let v: Value = serde_json::from_slice(&encode(&r, &KpiRules::default(), &FROM).unwrap())
            .expect("json");
        assert_eq!(v["schema_version"], 1);
        assert_eq!(v["queue_id"], "q-sales");
        assert_eq!(v["window_start"], "2026-03-02T09:15:00.000Z");
        assert_eq!(v["window_end"], "2026-03-02T09:30:00.000Z");
        assert_eq!(v["window_size"], "PT15M");
        assert_eq!(v["window_size_ms"], 900_000);
        assert_eq!(v["revision"], 2);
        assert_eq!(v["offered"], 3);
        assert_eq!(v["answered"], 2);
        assert_eq!(v["asa_ms"], 15_000.0);
        // A ratio without a denominator is null, never 0.
        assert!(v["service_level_pct"].is_null());
        assert!(v.get("events").is_none(), "lineage carries the count");
        assert_eq!(v["lineage"]["silver_events"], 9);
        assert_eq!(v["lineage"]["stage"], "gold");
        assert_eq!(v["rules"]["service_level_target_ms"], 20_000);
        assert_eq!(v["rules"]["exclude_short_abandons"], true);
    }

    #[test]
    fn the_same_result_encodes_to_the_same_bytes() {
        let r = result();
        let a = encode(&r, &KpiRules::default(), &FROM).unwrap();
        let b = encode(&r.clone(), &KpiRules::default(), &FROM).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn a_written_record_reads_back_as_its_revision_and_figures() {
        let r = result();
        let bytes = encode(&r, &KpiRules::default(), &FROM).unwrap();
        assert_eq!(
            decode(&bytes),
            Some((r.key.clone(), r.revision, r.kpis.clone()))
        );
        assert_eq!(decode(b"{}"), None);
        let v2 = String::from_utf8(bytes)
            .unwrap()
            .replace("\"schema_version\":1", "\"schema_version\":2");
        assert_eq!(decode(v2.as_bytes()), None);
    }

    #[test]
    fn the_token_names_the_window_not_the_revision() {
        let r = result();
        let v = |r: &WindowResult| -> Value {
            serde_json::from_slice(&encode(r, &KpiRules::default(), &FROM).unwrap()).unwrap()
        };
        let mut later = r.clone();
        later.revision = 7;
        let t = v(&r)["lineage"]["token"].as_str().unwrap().to_string();
        assert_eq!(t.len(), 32);
        assert_eq!(v(&later)["lineage"]["token"], t.as_str());
        let mut other = r.clone();
        other.key.queue = "q-billing".into();
        assert_ne!(v(&other)["lineage"]["token"], t.as_str());
        assert_eq!(v(&r)["lineage"]["hops"][0]["status"], "aggregated");
    }

    /// The shipped schema describes exactly the fields a record has, and
    /// requires each of them (a field added to one but not the other fails).
    #[test]
    fn the_shipped_schema_names_every_field_of_a_record() {
        let schema: Value = serde_json::from_str(include_str!(
            "../../schemas/gold/cx.gold.queue_kpis.v1.json"
        ))
        .expect("schema is JSON");
        let record: Value =
            serde_json::from_slice(&encode(&result(), &KpiRules::default(), &FROM).unwrap())
                .expect("json");
        fn check(schema: &Value, record: &Value, at: &str) {
            let mut want: Vec<&str> = schema["properties"]
                .as_object()
                .expect("properties")
                .keys()
                .map(String::as_str)
                .collect();
            let mut required: Vec<&str> = schema["required"]
                .as_array()
                .expect("required")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let mut got: Vec<&str> = record
                .as_object()
                .expect("object")
                .keys()
                .map(String::as_str)
                .collect();
            want.sort_unstable();
            required.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, want, "fields of {at}");
            assert_eq!(required, want, "required fields of {at}");
            assert_eq!(schema["additionalProperties"], false, "{at}");
        }
        check(&schema, &record, "the record");
        for nested in ["rules", "lineage"] {
            check(&schema["properties"][nested], &record[nested], nested);
        }
        check(
            &schema["properties"]["lineage"]["properties"]["hops"]["items"],
            &record["lineage"]["hops"][0],
            "a hop",
        );
        assert_eq!(
            schema["properties"]["schema_version"]["const"],
            SCHEMA_VERSION
        );
    }
}
