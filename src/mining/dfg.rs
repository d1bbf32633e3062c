//! The directly-follows graph of the activity log, without Kafka.
//!
//! Over each trace's activities in event-time order (what
//! `pm4py.discover_dfg` computes over an XES export's `complete` events):
//! how often each activity occurs, how often `b` directly follows `a` in a
//! case, and how long that takes (completion to completion: median and p90),
//! plus how many cases start and end with each activity. `Case Closed`
//! markers are no activity here: they are the trace's own figures.
//!
//! Transition times are kept as a histogram of whole seconds per edge
//! (bounded by the distinct values, not by the number of cases), so that a
//! graph over millions of activities stays small.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::trace::Trace;

/// Counts and transition times of one edge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edge {
    pub count: u64,
    /// Whole seconds → how many transitions took that long.
    seconds: BTreeMap<i64, u64>,
}

impl Edge {
    fn add(&mut self, ms: i64) {
        self.count += 1;
        *self.seconds.entry(ms.max(0) / 1_000).or_default() += 1;
    }

    /// The `q`-quantile (0..=1) of the transition time in seconds (nearest
    /// rank).
    pub fn quantile_s(&self, q: f64) -> i64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (s, n) in &self.seconds {
            seen += n;
            if seen >= rank {
                return *s;
            }
        }
        0
    }
}

/// The graph.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dfg {
    pub activities: BTreeMap<String, u64>,
    pub edges: BTreeMap<(String, String), Edge>,
    pub starts: BTreeMap<String, u64>,
    pub ends: BTreeMap<String, u64>,
    pub cases: u64,
}

impl Dfg {
    pub fn add(&mut self, trace: &Trace) {
        let steps = &trace.steps;
        if steps.is_empty() {
            return;
        }
        self.cases += 1;
        for s in steps {
            *self
                .activities
                .entry(s.record.activity.clone())
                .or_default() += 1;
        }
        for w in steps.windows(2) {
            let key = (w[0].record.activity.clone(), w[1].record.activity.clone());
            self.edges
                .entry(key)
                .or_default()
                .add(w[1].at_ms - w[0].at_ms);
        }
        if let (Some(first), Some(last)) = (steps.first(), steps.last()) {
            *self
                .starts
                .entry(first.record.activity.clone())
                .or_default() += 1;
            *self.ends.entry(last.record.activity.clone()).or_default() += 1;
        }
    }

    /// Graphviz DOT: activities as boxes with their counts, edges labelled
    /// with count, median and p90; a start and an end node. Edge width
    /// follows the count; edges (and start/end arcs) seen fewer than
    /// `min_count` times are left out, so that the main paths can be read.
    pub fn to_dot(&self, min_count: u64) -> String {
        let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, a) in self.activities.keys().enumerate() {
            ids.insert(a, i);
        }
        let max = self
            .edges
            .values()
            .map(|e| e.count)
            .max()
            .unwrap_or(1)
            .max(1);
        let mut out = String::new();
        out.push_str("digraph dfg {\n");
        out.push_str("  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", fillcolor=\"#e8f0fe\", fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n");
        out.push_str("  start [shape=circle, label=\"\", width=0.25, fillcolor=\"#34a853\"];\n");
        out.push_str("  end [shape=doublecircle, label=\"\", width=0.2, fillcolor=\"#ea4335\"];\n");
        for (a, n) in &self.activities {
            let _ = writeln!(
                out,
                "  a{} [label=\"{}\\n{}\"];",
                ids[a.as_str()],
                dot_escape(a),
                n
            );
        }
        let width = |n: u64| 1.0 + 4.0 * (n as f64 / max as f64);
        for (a, n) in self.starts.iter().filter(|(_, n)| **n >= min_count) {
            let _ = writeln!(
                out,
                "  start -> a{} [label=\"{}\", penwidth={:.2}];",
                ids[a.as_str()],
                n,
                width(*n)
            );
        }
        for ((a, b), e) in self.edges.iter().filter(|(_, e)| e.count >= min_count) {
            let _ = writeln!(
                out,
                "  a{} -> a{} [label=\"{} | med {} | p90 {}\", penwidth={:.2}];",
                ids[a.as_str()],
                ids[b.as_str()],
                e.count,
                human_s(e.quantile_s(0.5)),
                human_s(e.quantile_s(0.9)),
                width(e.count)
            );
        }
        for (a, n) in self.ends.iter().filter(|(_, n)| **n >= min_count) {
            let _ = writeln!(
                out,
                "  a{} -> end [label=\"{}\", penwidth={:.2}];",
                ids[a.as_str()],
                n,
                width(*n)
            );
        }
        out.push_str("}\n");
        out
    }

    /// Tab-separated edges (`from`, `to`, `count`, `median_s`, `p90_s`),
    /// for scripts.
    pub fn to_tsv(&self) -> String {
        let mut out = String::from("from\tto\tcount\tmedian_s\tp90_s\n");
        for ((a, b), e) in &self.edges {
            let _ = writeln!(
                out,
                "{a}\t{b}\t{}\t{}\t{}",
                e.count,
                e.quantile_s(0.5),
                e.quantile_s(0.9)
            );
        }
        out
    }
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `42s`, `3m05s`, `2h10m`.
pub fn human_s(s: i64) -> String {
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3_600 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{}h{:02}m", s / 3_600, (s % 3_600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mining::trace::tests::step;

    fn trace(id: &str, steps: &[(&str, i64)]) -> Trace {
        Trace {
            case_id: id.into(),
            steps: steps
                .iter()
                .enumerate()
                .map(|(i, (a, t))| step(id, a, *t, i as u64 + 1))
                .collect(),
            closed: None,
            continuation: false,
        }
    }

    #[test]
    fn counts_edges_and_transition_times() {
        let mut g = Dfg::default();
        g.add(&trace(
            "c1",
            &[
                ("Call Started", 0),
                ("Queued", 10_000),
                ("Answered", 40_000),
            ],
        ));
        g.add(&trace(
            "c2",
            &[
                ("Call Started", 0),
                ("Queued", 20_000),
                ("Abandoned", 30_000),
            ],
        ));
        g.add(&trace(
            "c3",
            &[
                ("Call Started", 0),
                ("Queued", 90_000),
                ("Answered", 100_000),
            ],
        ));
        g.add(&trace("empty", &[]));
        assert_eq!(g.cases, 3);
        assert_eq!(g.activities["Queued"], 3);
        let e = &g.edges[&("Call Started".to_string(), "Queued".to_string())];
        assert_eq!(e.count, 3);
        assert_eq!(e.quantile_s(0.5), 20);
        assert_eq!(e.quantile_s(0.9), 90);
        assert_eq!(
            g.edges[&("Queued".to_string(), "Answered".to_string())].count,
            2
        );
        assert_eq!(g.starts["Call Started"], 3);
        assert_eq!(g.ends["Answered"], 2);
        assert_eq!(g.ends["Abandoned"], 1);
        let dot = g.to_dot(0);
        assert!(dot.starts_with("digraph dfg {"));
        let main = g.to_dot(3);
        assert!(main.contains("label=\"3 | med 20s"), "{main}");
        assert!(
            !main.contains("label=\"2 |"),
            "edges seen twice are left out: {main}"
        );
        assert!(
            main.contains("[label=\"Abandoned\\n1\"]"),
            "activities stay: {main}"
        );
        assert!(dot.contains("label=\"3 | med 20s | p90 1m30s\""), "{dot}");
        assert!(dot.contains("[label=\"Queued\\n3\"]"), "{dot}");
        let tsv = g.to_tsv();
        assert!(tsv.contains("Call Started\tQueued\t3\t20\t90\n"), "{tsv}");
    }

    #[test]
    fn names_are_escaped_for_dot() {
        let mut g = Dfg::default();
        g.add(&trace("c1", &[("Say \"hi\"", 0)]));
        assert!(g.to_dot(0).contains("Say \\\"hi\\\""));
        assert_eq!(human_s(7_830), "2h10m");
        assert_eq!(human_s(185), "3m05s");
    }
}
