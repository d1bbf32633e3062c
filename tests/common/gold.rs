//! Gold's figures recomputed from the generator's ground truth of legs
//! (written apart from `src/gold`, from the KPI definitions of issue 15
//! and `genesys-events.md` §3–4), and the checks of a gold output topic.

use std::collections::{BTreeMap, HashMap};

use cxstream::generate::TruthLeg;
use serde_json::Value;

use super::Rec;

/// The figures of one (queue, window), as the record names them.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Figures {
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub short_abandoned: u64,
    pub flow_outs: u64,
    pub answered_within_target: u64,
    pub handled: u64,
    pub transfers: u64,
    pub talk_ms: i64,
    pub held_ms: i64,
    pub acw_ms: i64,
    pub max_wait_ms: Option<i64>,
    answered_wait: i64,
    all_wait: i64,
    waits: u64,
}

/// The rules of the shipped defaults.
pub struct Rules {
    pub short_abandon_ms: i64,
    pub target_ms: i64,
    pub exclude_short: bool,
    pub include_flow_outs: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            short_abandon_ms: 10_000,
            target_ms: 20_000,
            exclude_short: true,
            include_flow_outs: false,
        }
    }
}

fn ratio(num: f64, den: u64) -> Option<f64> {
    (den > 0).then(|| num / den as f64)
}

impl Figures {
    fn derived(&self, r: &Rules) -> BTreeMap<&'static str, Option<f64>> {
        let mut den = self.answered + self.abandoned;
        if r.exclude_short {
            den -= self.short_abandoned;
        }
        if r.include_flow_outs {
            den += self.flow_outs;
        }
        BTreeMap::from([
            ("asa_ms", ratio(self.answered_wait as f64, self.answered)),
            ("avg_wait_ms", ratio(self.all_wait as f64, self.waits)),
            (
                "aht_ms",
                ratio(
                    (self.talk_ms + self.held_ms + self.acw_ms) as f64,
                    self.handled,
                ),
            ),
            ("abandon_rate", ratio(self.abandoned as f64, self.offered)),
            (
                "service_level_pct",
                ratio(self.answered_within_target as f64 * 100.0, den),
            ),
        ])
    }
}

/// `<queue>|<size>|<start>` for a size in ms.
pub fn window_key(queue: &str, size_ms: i64, at_ms: i64) -> (String, i64) {
    let start = at_ms.div_euclid(size_ms) * size_ms;
    let size = match size_ms {
        900_000 => "PT15M".to_string(),
        3_600_000 => "PT1H".to_string(),
        other => format!("PT{}S", other / 1000),
    };
    (
        format!("{queue}|{size}|{}", cxstream::model::format_iso_ms(start)),
        start + size_ms,
    )
}

/// Every (queue, window) the legs make, by record key, with the window's
/// end.
pub fn recompute(
    legs: &[TruthLeg],
    media: &[String],
    sizes_ms: &[i64],
    r: &Rules,
) -> BTreeMap<String, (i64, Figures)> {
    let mut out: BTreeMap<String, (i64, Figures)> = BTreeMap::new();
    for leg in legs
        .iter()
        .filter(|l| media.iter().any(|m| m.eq_ignore_ascii_case(&l.media_type)))
    {
        for &size in sizes_ms {
            let mut at = |t: i64, f: &mut dyn FnMut(&mut Figures)| {
                let (k, end) = window_key(&leg.queue_id, size, t);
                f(&mut out.entry(k).or_insert_with(|| (end, Figures::default())).1);
            };
            at(leg.offered_ms, &mut |f| f.offered += 1);
            if let Some(e) = leg.end {
                at(e.at_ms, &mut |f| {
                    match e.outcome {
                        "ANSWERED" => {
                            f.answered += 1;
                            f.answered_wait += e.wait_ms;
                            if e.wait_ms <= r.target_ms {
                                f.answered_within_target += 1;
                            }
                        }
                        "ABANDON" => {
                            f.abandoned += 1;
                            if e.wait_ms <= r.short_abandon_ms {
                                f.short_abandoned += 1;
                            }
                        }
                        "FLOW_OUT" => f.flow_outs += 1,
                        other => panic!("outcome {other}"),
                    }
                    f.all_wait += e.wait_ms;
                    f.waits += 1;
                    f.max_wait_ms = Some(f.max_wait_ms.map_or(e.wait_ms, |m| m.max(e.wait_ms)));
                });
            }
            if let Some(h) = leg.handle {
                at(h.at_ms, &mut |f| {
                    f.handled += 1;
                    f.talk_ms += h.talk_ms;
                    f.held_ms += h.held_ms;
                    f.acw_ms += h.acw_ms;
                });
            }
            if let Some(t) = leg.transfer_ms {
                at(t, &mut |f| f.transfers += 1);
            }
        }
    }
    out
}

/// The latest record per key of a gold output topic, after checking that
/// each key's revisions strictly increase in the order written (a key's
/// records are in one partition). Returns (key → latest value, records).
pub fn latest(records: &[Rec]) -> (HashMap<String, Value>, usize) {
    let mut by_key: HashMap<String, Value> = HashMap::new();
    let mut sorted: Vec<&Rec> = records.iter().collect();
    sorted.sort_by_key(|r| (r.partition, r.offset));
    for r in sorted {
        let key = String::from_utf8(r.key.clone().expect("a key")).expect("utf-8 key");
        let v: Value = serde_json::from_slice(&r.value).expect("a JSON record");
        let rev = v["revision"].as_u64().expect("revision");
        if let Some(prev) = by_key.get(&key) {
            let before = prev["revision"].as_u64().expect("revision");
            assert!(
                rev > before,
                "{key}: revision {rev} written after revision {before}"
            );
        } else {
            assert!(rev >= 1, "{key}: revision {rev}");
        }
        by_key.insert(key, v);
    }
    (by_key, records.len())
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
        _ => false,
    }
}

/// What a comparison found.
#[derive(Debug, Default)]
pub struct Report {
    pub windows_expected: usize,
    pub windows_written: usize,
    pub matched: usize,
    pub corrected: usize,
    pub mismatches: Vec<String>,
}

/// Compares the latest records with the recomputed figures: every record
/// must match its window's figures, and every window that ends (plus
/// `grace`) before `closed_by` must have a record.
pub fn compare(
    expected: &BTreeMap<String, (i64, Figures)>,
    got: &HashMap<String, Value>,
    r: &Rules,
    grace_ms: i64,
    closed_by: i64,
) -> Report {
    let mut rep = Report {
        windows_written: got.len(),
        ..Report::default()
    };
    for (key, v) in got {
        let Some((_, f)) = expected.get(key) else {
            rep.mismatches
                .push(format!("{key}: written, but no leg makes it: {v}"));
            continue;
        };
        let counts = [
            ("offered", f.offered as i64),
            ("answered", f.answered as i64),
            ("abandoned", f.abandoned as i64),
            ("short_abandoned", f.short_abandoned as i64),
            ("flow_outs", f.flow_outs as i64),
            ("answered_within_target", f.answered_within_target as i64),
            ("handled", f.handled as i64),
            ("transfers", f.transfers as i64),
            ("talk_ms", f.talk_ms),
            ("held_ms", f.held_ms),
            ("acw_ms", f.acw_ms),
        ];
        let mut bad = Vec::new();
        for (name, want) in counts {
            if v[name].as_i64() != Some(want) {
                bad.push(format!("{name} {} != {want}", v[name]));
            }
        }
        if v["max_wait_ms"].as_i64() != f.max_wait_ms {
            bad.push(format!(
                "max_wait_ms {} != {:?}",
                v["max_wait_ms"], f.max_wait_ms
            ));
        }
        for (name, want) in f.derived(r) {
            if !close(v[name].as_f64(), want) {
                bad.push(format!("{name} {} != {want:?}", v[name]));
            }
        }
        if bad.is_empty() {
            rep.matched += 1;
            if v["revision"].as_u64() > Some(1) {
                rep.corrected += 1;
            }
        } else {
            rep.mismatches.push(format!(
                "{key} (revision {}): {}",
                v["revision"],
                bad.join(", ")
            ));
        }
    }
    for (key, (end, _)) in expected {
        if end + grace_ms <= closed_by {
            rep.windows_expected += 1;
            if !got.contains_key(key) {
                rep.mismatches
                    .push(format!("{key}: closed, but never written"));
            }
        }
    }
    rep
}
