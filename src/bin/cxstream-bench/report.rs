//! One child's [`Report`] and the summary table of a run; percentiles and
//! histogram windows.

use serde::{Deserialize, Serialize};

/// One child's result (one JSON line on its stdout).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub variant: String,
    pub phase: String,
    /// Input records read in the measured interval.
    pub records: u64,
    /// Input bytes (record values) read.
    pub bytes: u64,
    /// First record read → last output delivered.
    pub seconds: f64,
    /// First record read → last input record taken in (decoded and
    /// processed; for the pipeline, events still held by the reorder buffer
    /// come out in the tail after it). Throughput is measured on this.
    #[serde(default)]
    pub input_seconds: f64,
    /// Child CPU (user + system) over the same interval.
    pub cpu_seconds: f64,
    /// `VmHWM` at exit, KiB.
    pub peak_rss_kib: u64,
    /// Largest `VmRSS` sampled while records flowed, KiB.
    pub max_rss_kib: u64,
    /// Dedup fingerprints held at the end (pipeline only).
    pub dedup_keys: u64,
    pub latency_samples: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_max_ms: Option<f64>,
    /// Pipeline only, latency phase: input CreateTime → the silver record's
    /// CreateTime (set when the processor called `produce`), i.e. the input
    /// hop plus processing.
    #[serde(default)]
    pub to_produce_p50_ms: Option<f64>,
    #[serde(default)]
    pub to_produce_p99_ms: Option<f64>,
    /// Pipeline only: the silver record's CreateTime → read back by the
    /// reader (the output hop: producer batching, broker, reader fetch).
    #[serde(default)]
    pub from_produce_p50_ms: Option<f64>,
    #[serde(default)]
    pub from_produce_p99_ms: Option<f64>,
    /// Pipeline only: `cxstream_processing_latency_seconds` over the measured
    /// window (record read → output handed to the producer), as the upper
    /// bounds of the histogram buckets holding p50 and p99.
    #[serde(default)]
    pub processing_p50_le_ms: Option<f64>,
    #[serde(default)]
    pub processing_p99_le_ms: Option<f64>,
    /// Set when the variant failed; the other fields are then partial.
    pub error: Option<String>,
}

impl Report {
    /// The interval throughput is measured on: [`Self::input_seconds`]
    /// when known, else the whole run.
    fn rate_seconds(&self) -> f64 {
        if self.input_seconds > 0.0 {
            self.input_seconds
        } else {
            self.seconds
        }
        .max(1e-9)
    }
    pub fn events_per_s(&self) -> f64 {
        self.records as f64 / self.rate_seconds()
    }
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.rate_seconds()
    }
    pub fn cpu_s_per_million(&self) -> f64 {
        self.cpu_seconds / (self.records.max(1) as f64 / 1e6)
    }
}

/// Percentile (0..=100) of sorted values, nearest rank.
pub fn percentile(sorted: &[f64], pct: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// A histogram's cumulative bucket counts: (upper bound s, count ≤ bound).
pub(crate) type Buckets = Vec<(f64, u64)>;

pub(crate) fn buckets(h: &prometheus::Histogram) -> Buckets {
    use prometheus::core::Collector;
    h.collect()
        .iter()
        .flat_map(|mf| mf.get_metric().iter())
        .flat_map(|m| m.get_histogram().get_bucket().iter())
        .map(|b| (b.upper_bound(), b.cumulative_count()))
        .collect()
}

/// Cumulative counts of `end` minus those of `start` (same buckets).
pub(crate) fn bucket_delta(start: &[(f64, u64)], end: &[(f64, u64)]) -> Buckets {
    end.iter()
        .map(|&(le, n)| {
            let before = start.iter().find(|(l, _)| *l == le).map_or(0, |(_, c)| *c);
            (le, n.saturating_sub(before))
        })
        .collect()
}

/// The upper bound of the first bucket holding quantile `q` of the
/// observations (`None` without observations or beyond the last bucket).
pub(crate) fn bucket_quantile(cumulative: &[(f64, u64)], q: f64) -> Option<f64> {
    let total = cumulative.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).max(1);
    cumulative
        .iter()
        .find(|(_, n)| *n >= rank)
        .map(|(le, _)| *le)
}

/// A human-readable summary of `reports`, with the pipeline / pass-through
/// throughput ratios.
pub fn summary(reports: &[Report]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<13} {:<10} {:>9} {:>9} {:>6} {:>7} {:>8} {:>9} {:>9} {:>8} {:>8} {:>8}",
        "variant",
        "phase",
        "records",
        "events/s",
        "tail s",
        "MB/s",
        "cpu s/M",
        "peak RSS",
        "max RSS",
        "p50 ms",
        "p99 ms",
        "max ms"
    );
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.1}"));
    for r in reports {
        if let Some(e) = &r.error {
            let _ = writeln!(s, "{:<13} {:<10} FAILED: {e}", r.variant, r.phase);
            continue;
        }
        let thr = r.phase == "throughput";
        let _ = writeln!(
            s,
            "{:<13} {:<10} {:>9} {:>9} {:>6} {:>7} {:>8} {:>6} MB {:>6} MB {:>8} {:>8} {:>8}",
            r.variant,
            r.phase,
            r.records,
            if thr {
                format!("{:.0}", r.events_per_s())
            } else {
                "-".into()
            },
            if thr {
                format!("{:.1}", (r.seconds - r.input_seconds).max(0.0))
            } else {
                "-".into()
            },
            if thr {
                format!("{:.1}", r.mb_per_s())
            } else {
                "-".into()
            },
            if thr {
                format!("{:.2}", r.cpu_s_per_million())
            } else {
                "-".into()
            },
            r.peak_rss_kib / 1024,
            r.max_rss_kib / 1024,
            ms(r.latency_p50_ms),
            ms(r.latency_p99_ms),
            ms(r.latency_max_ms),
        );
    }
    let thr = |v: &str| {
        reports
            .iter()
            .find(|r| r.variant == v && r.phase == "throughput" && r.error.is_none())
            .map(Report::events_per_s)
    };
    for r in reports
        .iter()
        .filter(|r| r.phase == "latency" && r.error.is_none())
    {
        if r.to_produce_p50_ms.is_none() {
            continue;
        }
        let le = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("<= {x}"));
        let _ = writeln!(
            s,
            "{} latency split (p50 / p99 ms): input -> processor's produce call {} / {}; produce call -> reader {} / {}; inside the processor (read -> produce, histogram bucket) {} / {}",
            r.variant,
            ms(r.to_produce_p50_ms),
            ms(r.to_produce_p99_ms),
            ms(r.from_produce_p50_ms),
            ms(r.from_produce_p99_ms),
            le(r.processing_p50_le_ms),
            le(r.processing_p99_le_ms),
        );
    }
    if let Some(base) = thr("passthrough") {
        for v in ["replay", "transactions"] {
            if let Some(p) = thr(v) {
                let _ = writeln!(s, "ratio {v} / passthrough throughput: {:.2}", p / base);
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processing_quantiles_come_from_the_window_of_the_histogram() {
        let h = prometheus::Histogram::with_opts(
            prometheus::HistogramOpts::new("t", "t").buckets(vec![0.001, 0.01, 0.1]),
        )
        .expect("histogram");
        // Before the window: slow observations that must not count.
        for _ in 0..50 {
            h.observe(0.05);
        }
        let start = buckets(&h);
        for _ in 0..98 {
            h.observe(0.0005);
        }
        h.observe(0.005);
        h.observe(0.005);
        let window = bucket_delta(&start, &buckets(&h));
        assert_eq!(window, vec![(0.001, 98), (0.01, 100), (0.1, 100)]);
        assert_eq!(bucket_quantile(&window, 0.5), Some(0.001));
        assert_eq!(bucket_quantile(&window, 0.99), Some(0.01));
        assert_eq!(bucket_quantile(&bucket_delta(&start, &start), 0.5), None);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
