//! A small per-queue table of gold results (the demo's last full hour),
//! from the records of the KPI topic.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde_json::Value;

/// The latest result per key (the highest revision) of `records` (key,
/// value), read in any order.
pub fn latest(records: &[(Vec<u8>, Vec<u8>)]) -> HashMap<Vec<u8>, Value> {
    let mut out: HashMap<Vec<u8>, Value> = HashMap::new();
    for (k, v) in records {
        let Ok(v) = serde_json::from_slice::<Value>(v) else {
            continue;
        };
        let rev = v["revision"].as_u64().unwrap_or(0);
        match out.get(k) {
            Some(prev) if prev["revision"].as_u64().unwrap_or(0) >= rev => {}
            _ => {
                out.insert(k.clone(), v);
            }
        }
    }
    out
}

fn opt(v: &Value, scale: f64, unit: &str) -> String {
    v.as_f64()
        .map_or_else(|| "-".to_string(), |x| format!("{:.1}{unit}", x / scale))
}

/// The per-queue figures of the latest one-hour window with results:
/// every hour window written is closed (its first result waits for the
/// watermark). `None` without any.
pub fn last_full_hour(records: &[(Vec<u8>, Vec<u8>)]) -> Option<String> {
    let latest = latest(records);
    let hours: Vec<&Value> = latest
        .values()
        .filter(|v| v["window_size"] == "PT1H")
        .collect();
    let start = hours
        .iter()
        .filter_map(|v| v["window_start"].as_str())
        .max()?;
    let rows: BTreeMap<&str, &Value> = hours
        .iter()
        .filter(|v| v["window_start"].as_str() == Some(start))
        .filter_map(|v| v["queue_id"].as_str().map(|q| (q, *v)))
        .collect();
    let end = rows.values().next()?["window_end"].as_str().unwrap_or("?");
    let mut t = String::new();
    let _ = writeln!(t, "Queue figures for the last full hour, {start} to {end}:");
    let _ = writeln!(
        t,
        "  {:<36} {:>7} {:>8} {:>9} {:>5} {:>8} {:>8} {:>6} {:>9} {:>4}",
        "queue", "offered", "answered", "abandoned", "flow", "ASA", "AHT", "SL", "transfers", "rev"
    );
    for (q, v) in rows {
        let _ = writeln!(
            t,
            "  {:<36} {:>7} {:>8} {:>5} ({:>2}) {:>5} {:>8} {:>8} {:>6} {:>9} {:>4}",
            q,
            v["offered"].to_string(),
            v["answered"].to_string(),
            v["abandoned"].to_string(),
            v["short_abandoned"].to_string(),
            v["flow_outs"].to_string(),
            opt(&v["asa_ms"], 1000.0, "s"),
            opt(&v["aht_ms"], 1000.0, "s"),
            opt(&v["service_level_pct"], 1.0, "%"),
            v["transfers"].to_string(),
            v["revision"].to_string(),
        );
    }
    let _ = write!(
        t,
        "  abandoned (short ones); ASA = mean wait of answered; AHT = (talk + hold + wrap-up) / handled; SL = answered within target / (answered + abandoned - short); rev = revision"
    );
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(q: &str, size: &str, start: &str, rev: u64, offered: u64) -> (Vec<u8>, Vec<u8>) {
        let v = json!({
            "queue_id": q, "window_size": size, "window_start": start,
            "window_end": "end", "revision": rev, "offered": offered,
            "answered": 1, "abandoned": 0, "short_abandoned": 0, "flow_outs": 0,
            "asa_ms": 12_000.0, "aht_ms": null, "service_level_pct": 100.0, "transfers": 0,
        });
        (
            format!("{q}|{size}|{start}").into_bytes(),
            serde_json::to_vec(&v).unwrap(),
        )
    }

    #[test]
    fn the_latest_hour_and_the_latest_revision_of_each_queue() {
        let records = vec![
            rec("q1", "PT1H", "10:00", 1, 5),
            rec("q1", "PT1H", "11:00", 2, 9),
            rec("q1", "PT1H", "11:00", 1, 7),
            rec("q2", "PT1H", "11:00", 1, 3),
            rec("q1", "PT15M", "12:00", 1, 1),
        ];
        let t = last_full_hour(&records).expect("a table");
        assert!(t.contains("11:00 to end"), "{t}");
        let q1 = t
            .lines()
            .find(|l| l.trim_start().starts_with("q1"))
            .unwrap();
        assert!(q1.contains(" 9 "), "revision 2's figures: {q1}");
        assert!(q1.contains("12.0s"), "{q1}");
        assert!(q1.contains(" - "), "a null ratio is '-': {q1}");
        assert!(t.lines().any(|l| l.trim_start().starts_with("q2")));
        assert!(last_full_hour(&records[4..]).is_none(), "no hour window");
    }
}
