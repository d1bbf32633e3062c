//! Variants of the activity log, without Kafka: each distinct sequence of
//! activities, how many cases follow it and their median duration, and the
//! families contact centers look for.
//!
//! - **abandoned after IVR**: the case left the IVR, then was abandoned in
//!   queue;
//! - **transferred more than once**: two or more `Transferred`;
//! - **long hold**: an agent held the customer for at least the threshold
//!   (`held_duration_ms` on the agent's end), in total over the case.
//!
//! Activities are matched by their default names: a topology that renames
//! them renames the families away (the report says which flags are
//! unavailable).

use std::collections::HashMap;
use std::fmt::Write as _;

use super::dfg::human_s;
use super::trace::Trace;

/// A variant family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flag {
    AbandonedAfterIvr,
    TransferredMoreThanOnce,
    LongHold,
}

impl Flag {
    pub const ALL: [Flag; 3] = [
        Flag::AbandonedAfterIvr,
        Flag::TransferredMoreThanOnce,
        Flag::LongHold,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Flag::AbandonedAfterIvr => "abandoned after IVR",
            Flag::TransferredMoreThanOnce => "transferred more than once",
            Flag::LongHold => "long hold",
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Stats {
    cases: u64,
    /// Case durations in whole seconds → count.
    seconds: HashMap<i64, u64>,
    /// Cases of this variant with a long hold (the flag is per case; the
    /// variant shows it when any of its cases has it).
    long_hold: u64,
}

/// The variants seen.
#[derive(Debug, Clone)]
pub struct Variants {
    long_hold_ms: i64,
    by_path: HashMap<Vec<String>, Stats>,
    cases: u64,
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub activities: Vec<String>,
    pub cases: u64,
    pub median_duration_s: i64,
    pub flags: Vec<Flag>,
    /// Cases of the variant with a long hold.
    pub long_hold_cases: u64,
}

impl Variants {
    pub fn new(long_hold_ms: i64) -> Self {
        Variants {
            long_hold_ms,
            by_path: HashMap::new(),
            cases: 0,
        }
    }

    pub fn add(&mut self, trace: &Trace) {
        if trace.steps.is_empty() {
            return;
        }
        self.cases += 1;
        let path: Vec<String> = trace
            .steps
            .iter()
            .map(|s| s.record.activity.clone())
            .collect();
        let held: i64 = trace
            .steps
            .iter()
            .filter_map(|s| s.record.attributes.get("held_duration_ms"))
            .filter_map(serde_json::Value::as_i64)
            .sum();
        let stats = self.by_path.entry(path).or_default();
        stats.cases += 1;
        *stats
            .seconds
            .entry(trace.duration_ms() / 1_000)
            .or_default() += 1;
        if held >= self.long_hold_ms {
            stats.long_hold += 1;
        }
    }

    pub fn cases(&self) -> u64 {
        self.cases
    }

    pub fn distinct(&self) -> usize {
        self.by_path.len()
    }

    /// The `n` most frequent variants (ties: the shorter, then by name).
    pub fn top(&self, n: usize) -> Vec<Variant> {
        let mut rows: Vec<Variant> = self
            .by_path
            .iter()
            .map(|(path, s)| Variant {
                flags: flags(path, s.long_hold > 0),
                activities: path.clone(),
                cases: s.cases,
                median_duration_s: median(&s.seconds, s.cases),
                long_hold_cases: s.long_hold,
            })
            .collect();
        rows.sort_by(|a, b| {
            b.cases
                .cmp(&a.cases)
                .then(a.activities.len().cmp(&b.activities.len()))
                .then_with(|| a.activities.cmp(&b.activities))
        });
        rows.truncate(n);
        rows
    }

    /// Cases per family, over every variant.
    pub fn family_cases(&self) -> Vec<(Flag, u64)> {
        Flag::ALL
            .iter()
            .map(|f| {
                let n = self
                    .by_path
                    .iter()
                    .map(|(path, s)| match f {
                        Flag::LongHold => s.long_hold,
                        _ if flags(path, false).contains(f) => s.cases,
                        _ => 0,
                    })
                    .sum();
                (*f, n)
            })
            .collect()
    }

    /// The printed report.
    pub fn report(&self, n: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} cases, {} variants; the top {}:",
            self.cases,
            self.distinct(),
            n.min(self.distinct())
        );
        for (i, v) in self.top(n).iter().enumerate() {
            let share = 100.0 * v.cases as f64 / self.cases.max(1) as f64;
            let flags: Vec<String> = v
                .flags
                .iter()
                .map(|f| match f {
                    Flag::LongHold => format!("long hold: {} of its cases", v.long_hold_cases),
                    other => other.label().to_string(),
                })
                .collect();
            let _ = writeln!(
                out,
                "\n#{:<3} {} cases ({share:.1} %), median duration {}{}",
                i + 1,
                v.cases,
                human_s(v.median_duration_s),
                if flags.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", flags.join(", "))
                }
            );
            let _ = writeln!(out, "     {}", v.activities.join(" → "));
        }
        let _ = writeln!(out, "\nfamilies (all variants):");
        for (f, cases) in self.family_cases() {
            let share = 100.0 * cases as f64 / self.cases.max(1) as f64;
            let _ = writeln!(out, "  {:<28} {cases} cases ({share:.1} %)", f.label());
        }
        out
    }
}

fn flags(path: &[String], long_hold: bool) -> Vec<Flag> {
    let mut out = Vec::new();
    let ivr_exit = path.iter().position(|a| a == "IVR Exited");
    if ivr_exit.is_some_and(|i| path[i..].iter().any(|a| a == "Abandoned")) {
        out.push(Flag::AbandonedAfterIvr);
    }
    if path.iter().filter(|a| *a == "Transferred").count() > 1 {
        out.push(Flag::TransferredMoreThanOnce);
    }
    if long_hold {
        out.push(Flag::LongHold);
    }
    out
}

fn median(seconds: &HashMap<i64, u64>, n: u64) -> i64 {
    let mut v: Vec<(&i64, &u64)> = seconds.iter().collect();
    v.sort();
    let rank = n.div_ceil(2).max(1);
    let mut seen = 0;
    for (s, c) in v {
        seen += c;
        if seen >= rank {
            return *s;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mining::trace::tests::step;

    fn trace(id: &str, steps: &[(&str, i64)], held_ms: Option<i64>) -> Trace {
        let mut steps: Vec<_> = steps
            .iter()
            .enumerate()
            .map(|(i, (a, t))| step(id, a, *t, i as u64 + 1))
            .collect();
        if let (Some(h), Some(s)) = (
            held_ms,
            steps
                .iter_mut()
                .find(|s| s.record.activity == "Agent Disconnected"),
        ) {
            s.record
                .attributes
                .insert("held_duration_ms".into(), h.into());
        }
        Trace {
            case_id: id.into(),
            steps,
            closed: None,
            continuation: false,
        }
    }

    #[test]
    fn ranks_variants_with_median_durations_and_families() {
        let mut v = Variants::new(120_000);
        let answered = [
            ("Call Started", 0),
            ("Queued", 10_000),
            ("Answered", 20_000),
            ("Agent Disconnected", 200_000),
        ];
        v.add(&trace("c1", &answered, None));
        v.add(&trace("c2", &answered, Some(300_000)));
        v.add(&trace(
            "c3",
            &[
                ("Call Started", 0),
                ("Queued", 10_000),
                ("Answered", 20_000),
                ("Agent Disconnected", 400_000),
            ],
            Some(1_000),
        ));
        let abandoned = [
            ("Call Started", 0),
            ("IVR Entered", 1_000),
            ("IVR Exited", 5_000),
            ("Queued", 6_000),
            ("Abandoned", 66_000),
        ];
        v.add(&trace("c4", &abandoned, None));
        let transfers = [
            ("Call Started", 0),
            ("Transferred", 1_000),
            ("Transferred", 2_000),
        ];
        v.add(&trace("c5", &transfers, None));
        assert_eq!(v.cases(), 5);
        assert_eq!(v.distinct(), 3);
        let top = v.top(2);
        assert_eq!(top.len(), 2);
        assert_eq!(top[0].cases, 3);
        assert_eq!(top[0].median_duration_s, 200);
        assert_eq!(top[0].flags, vec![Flag::LongHold]);
        assert_eq!(top[0].long_hold_cases, 1);
        // ties by length: the three-step transfer variant before the abandon
        assert_eq!(top[1].flags, vec![Flag::TransferredMoreThanOnce]);
        let families = v.family_cases();
        assert_eq!(
            families,
            vec![
                (Flag::AbandonedAfterIvr, 1),
                (Flag::TransferredMoreThanOnce, 1),
                (Flag::LongHold, 1)
            ]
        );
        let report = v.report(3);
        assert!(
            report.starts_with("5 cases, 3 variants; the top 3:"),
            "{report}"
        );
        assert!(report.contains("[abandoned after IVR]"), "{report}");
        assert!(report.contains("[long hold: 1 of its cases]"), "{report}");
        assert!(report.contains("Call Started → IVR Entered → IVR Exited → Queued → Abandoned"));
    }

    #[test]
    fn an_abandon_before_the_ivr_is_not_after_it() {
        let path: Vec<String> = ["Queued", "Abandoned", "IVR Exited"]
            .map(String::from)
            .to_vec();
        assert!(flags(&path, false).is_empty());
    }
}
