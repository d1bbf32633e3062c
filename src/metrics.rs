//! Prometheus metrics: one typed struct per stage, registered in its own
//! registry. A stage's registry adds the label `stage` to every metric
//! ([`Metrics::for_stage`]); [`render`] exposes the metrics of every stage
//! of a process as one text page.
//!
//! Naming follows Prometheus conventions (`cxstream_…_total` for counters,
//! units in names). Labels only ever carry static names (outputs, error
//! classes, field names, topics, partitions), never values from events.
//!
//! Accounting identity, checkable per instance at quiescence:
//! `events_in + repartitioned_in = silver + late + dead_letter + duplicates + filtered + handed_over + repartitioned`,
//! where the outputs count acknowledged deliveries. An event forwarded to
//! its partition's owner counts as `repartitioned` where it was read and as
//! `repartitioned_in` where it is processed, so each instance's counters
//! add up on their own, however partitions are spread.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Output names used as the `output` label.
pub const OUT_SILVER: &str = "silver";
pub const OUT_LATE: &str = "late";
pub const OUT_DEAD_LETTER: &str = "dead_letter";

#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Input records read, by role (`input` or `repartition`).
    pub records_read: IntCounterVec,
    /// Accounting units entering the pipeline: one per event in a record,
    /// one per unparseable record (or unparseable rest of a record).
    pub events_in: IntCounter,
    /// Events delivered (acknowledged by the broker), by output.
    pub events_out: IntCounterVec,
    /// Re-deliveries dropped, by what matched (`id` or `content`).
    pub duplicates: IntCounterVec,
    /// Events dropped by the media-type filter.
    pub filtered: IntCounter,
    /// Events left in a reorder buffer when their partition was revoked or
    /// lost: the next owner reads them again (not an output of this
    /// instance; keeps the per-instance accounting exact).
    pub handed_over: IntCounter,
    /// Dead letters delivered, by error class.
    pub dead_letters: IntCounterVec,
    /// Late events delivered to the late topic, by reason.
    pub late: IntCounterVec,
    /// Events forwarded through the repartition topic.
    pub repartitioned: IntCounter,
    pub repartitioned_in: IntCounter,
    /// Optional fields absent in input events, by field name.
    pub missing_optional: IntCounterVec,
    /// Events whose `detail.version` is newer than any known version.
    pub newer_version: IntCounter,
    /// Enum values outside the known set (kept as they are), by field.
    pub unknown_enum: IntCounterVec,
    /// Upcast steps that changed an event, by step.
    pub upcast_steps: IntCounterVec,
    pub dedup_keys: IntGauge,
    pub dedup_evictions: IntCounter,
    pub reorder_buffered: IntGauge,
    pub reorder_forced_releases: IntCounter,
    pub reorder_idle_flushes: IntCounter,
    /// Input event times too far ahead to move their partition's progress
    /// that no quorum of other events confirmed (a producer with a wrong
    /// clock; see `operators::progress`).
    pub watermark_outliers: IntCounter,
    /// Input partitions paused because they ran ahead of another partition
    /// (watermark alignment): currently, and times it happened.
    pub partitions_held_back: IntGauge,
    pub hold_backs: IntCounter,
    /// Input record timestamp to output acknowledged.
    pub e2e_latency: Histogram,
    /// Record read from the consumer to its event handed to the producer
    /// (silver and late outputs; includes the reorder hold).
    pub processing_latency: Histogram,
    pub consumer_lag: IntGaugeVec,
    pub produce_errors: IntCounterVec,
    pub commits: IntCounter,
    pub commit_errors: IntCounter,
    pub rebalances: IntCounterVec,
    /// Input partitions moved by rebalances: `assigned`, `revoked`, `lost`.
    pub partitions_moved: IntCounterVec,
    pub assigned_partitions: IntGauge,
    pub in_flight_records: IntGauge,
    /// Records produced and not yet acknowledged (what backpressure counts).
    pub produce_unacknowledged: IntGauge,
    pub paused: IntGauge,
    /// Seconds each partition's state restore took.
    pub restore_seconds: Histogram,
    pub restores: IntCounter,
    pub restore_failures: IntCounter,
    /// Records read while restoring, by source (`changelog`, `output`).
    pub restored_records: IntCounterVec,
    pub changelog_records: IntCounter,
    /// Checkpoints written by stages with checkpointed state.
    pub checkpoints: IntCounter,
    pub transactions: IntCounterVec,
}

pub(crate) fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("static metric definition");
    r.register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

pub(crate) fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("static metric definition");
    r.register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

pub(crate) fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("static metric definition");
    r.register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Metrics without a `stage` label (tests, tools).
    pub fn new() -> Self {
        Self::with_registry(Registry::new())
    }

    /// The metrics of stage `stage`: every series carries `stage="<name>"`.
    pub fn for_stage(stage: &str) -> Self {
        let labels = std::collections::HashMap::from([("stage".to_string(), stage.to_string())]);
        // Fails only for an empty prefix, and none is given.
        let r = Registry::new_custom(None, Some(labels)).unwrap_or_default();
        Self::with_registry(r)
    }

    fn with_registry(r: Registry) -> Self {
        let e2e_latency = Histogram::with_opts(
            HistogramOpts::new(
                "cxstream_end_to_end_latency_seconds",
                "Input record timestamp to output acknowledged by the broker (includes the reorder hold).",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0,
                30.0, 60.0,
            ]),
        )
        .expect("static metric definition");
        r.register(Box::new(e2e_latency.clone()))
            .expect("metric registered once");
        let processing_latency = Histogram::with_opts(
            HistogramOpts::new(
                "cxstream_processing_latency_seconds",
                "Input record read by the processor to its event handed to the producer (silver and late; includes the reorder hold).",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
        )
        .expect("static metric definition");
        r.register(Box::new(processing_latency.clone()))
            .expect("metric registered once");
        let restore_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "cxstream_state_restore_seconds",
                "Time to restore one assigned partition's state (changelog + output tail).",
            )
            .buckets(vec![
                0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
            ]),
        )
        .expect("static metric definition");
        r.register(Box::new(restore_seconds.clone()))
            .expect("metric registered once");
        let consumer_lag = IntGaugeVec::new(
            Opts::new(
                "cxstream_consumer_lag_records",
                "Records between the committed/consumed position and the partition end.",
            ),
            &["topic", "partition"],
        )
        .expect("static metric definition");
        r.register(Box::new(consumer_lag.clone()))
            .expect("metric registered once");
        Self {
            restore_seconds,
            restores: counter(
                &r,
                "cxstream_state_restores_total",
                "Partition state restores completed.",
            ),
            restore_failures: counter(
                &r,
                "cxstream_state_restore_failures_total",
                "Partition state restores that failed and were retried.",
            ),
            restored_records: counter_vec(
                &r,
                "cxstream_state_restored_records_total",
                "Records read to restore state, by source (changelog, output).",
                &["source"],
            ),
            changelog_records: counter(
                &r,
                "cxstream_changelog_records_total",
                "State changelog records written.",
            ),
            checkpoints: counter(
                &r,
                "cxstream_checkpoints_total",
                "Checkpoints written (stages with checkpointed state), each after every output it covers was acknowledged.",
            ),
            transactions: counter_vec(
                &r,
                "cxstream_transactions_total",
                "Kafka transactions, by outcome (committed, aborted).",
                &["outcome"],
            ),
            records_read: counter_vec(
                &r,
                "cxstream_records_read_total",
                "Kafka records read, by topic role.",
                &["role"],
            ),
            events_in: counter(
                &r,
                "cxstream_events_in_total",
                "Accounting units entering the pipeline (events, or unparseable records).",
            ),
            events_out: counter_vec(
                &r,
                "cxstream_events_out_total",
                "Events delivered, by output.",
                &["output"],
            ),
            duplicates: counter_vec(
                &r,
                "cxstream_duplicates_dropped_total",
                "Re-deliveries dropped, by what matched.",
                &["match"],
            ),
            filtered: counter(
                &r,
                "cxstream_events_filtered_total",
                "Events dropped by the media-type filter.",
            ),
            watermark_outliers: counter(
                &r,
                "cxstream_watermark_outliers_total",
                "Input event times more than watermark_jump ahead of their partition's progress that no quorum confirmed: they did not move the watermark (a producer clock is wrong).",
            ),
            handed_over: counter(
                &r,
                "cxstream_events_handed_over_total",
                "Events still buffered when their partition was revoked or lost; the next owner reads them again.",
            ),
            dead_letters: counter_vec(
                &r,
                "cxstream_dead_letters_total",
                "Dead letters delivered, by error class.",
                &["class"],
            ),
            late: counter_vec(
                &r,
                "cxstream_late_events_total",
                "Late events delivered to the late topic, by reason.",
                &["reason"],
            ),
            repartitioned: counter(
                &r,
                "cxstream_events_repartitioned_total",
                "Events forwarded through the repartition topic.",
            ),
            repartitioned_in: counter(
                &r,
                "cxstream_events_repartitioned_in_total",
                "Events read back from the repartition topic by their partition's owner.",
            ),
            missing_optional: counter_vec(
                &r,
                "cxstream_missing_optional_fields_total",
                "Optional fields absent in input events.",
                &["field"],
            ),
            newer_version: counter(
                &r,
                "cxstream_newer_version_events_total",
                "Events with a detail.version newer than any known.",
            ),
            unknown_enum: counter_vec(
                &r,
                "cxstream_unknown_enum_values_total",
                "Enum values outside the known set, kept as they are.",
                &["field"],
            ),
            upcast_steps: counter_vec(
                &r,
                "cxstream_upcast_steps_total",
                "Upcast steps that changed an event.",
                &["step"],
            ),
            dedup_keys: gauge(
                &r,
                "cxstream_dedup_keys",
                "Fingerprints held by the dedup caches.",
            ),
            dedup_evictions: counter(
                &r,
                "cxstream_dedup_evictions_total",
                "Dedup fingerprints evicted because a cache was full.",
            ),
            reorder_buffered: gauge(
                &r,
                "cxstream_reorder_buffered_events",
                "Events held by the reorder buffers.",
            ),
            reorder_forced_releases: counter(
                &r,
                "cxstream_reorder_forced_releases_total",
                "Events released early because a reorder buffer was full.",
            ),
            reorder_idle_flushes: counter(
                &r,
                "cxstream_reorder_idle_flushes_total",
                "Reorder buffers flushed because their partition was idle.",
            ),
            partitions_held_back: gauge(
                &r,
                "cxstream_input_partitions_held_back",
                "Input partitions paused because their reorder buffer waits for another partition's progress (watermark alignment).",
            ),
            hold_backs: counter(
                &r,
                "cxstream_input_hold_backs_total",
                "Times an input partition was paused for watermark alignment.",
            ),
            e2e_latency,
            processing_latency,
            consumer_lag,
            produce_errors: counter_vec(
                &r,
                "cxstream_produce_errors_total",
                "Produce attempts that failed (retried until delivered).",
                &["output"],
            ),
            commits: counter(&r, "cxstream_offset_commits_total", "Offset commits sent."),
            commit_errors: counter(
                &r,
                "cxstream_offset_commit_errors_total",
                "Offset commits that failed.",
            ),
            rebalances: counter_vec(
                &r,
                "cxstream_rebalances_total",
                "Rebalance events, by kind.",
                &["kind"],
            ),
            partitions_moved: counter_vec(
                &r,
                "cxstream_rebalance_partitions_total",
                "Input partitions assigned to, revoked from or lost by this instance (with cooperative-sticky only the partitions that move are counted).",
                &["kind"],
            ),
            assigned_partitions: gauge(
                &r,
                "cxstream_assigned_partitions",
                "Input partitions owned by this instance.",
            ),
            produce_unacknowledged: gauge(
                &r,
                "cxstream_produce_unacknowledged_records",
                "Records produced (outputs, forwards, changelog, markers) and not yet acknowledged by the broker; consumption pauses at runtime.max_in_flight.",
            ),
            in_flight_records: gauge(
                &r,
                "cxstream_in_flight_records",
                "Input records read but not yet fully acknowledged.",
            ),
            paused: gauge(
                &r,
                "cxstream_consumption_paused",
                "1 while consumption is paused for backpressure.",
            ),
            registry: r,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        render(std::slice::from_ref(self))
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Current value of one labelled counter (0 if never touched).
    pub fn out(&self, output: &str) -> u64 {
        self.events_out.with_label_values(&[output]).get()
    }

    /// Sum of a counter vector over all its label values.
    pub fn sum(vec: &IntCounterVec) -> u64 {
        use prometheus::core::Collector;
        vec.collect()
            .iter()
            .flat_map(|mf| mf.get_metric())
            .map(|m| m.get_counter().get_value() as u64)
            .sum()
    }
}

/// The Prometheus text exposition of the metrics of several stages: one
/// family per metric name, holding the series of every stage (a name may
/// appear only once on a page).
pub fn render<M: std::borrow::Borrow<Metrics>>(all: &[M]) -> String {
    let mut families: Vec<prometheus::proto::MetricFamily> = Vec::new();
    for m in all {
        for mut f in m.borrow().registry.gather() {
            match families.iter_mut().find(|e| e.name() == f.name()) {
                Some(e) => e.mut_metric().extend(f.take_metric()),
                None => families.push(f),
            }
        }
    }
    let mut buf = Vec::new();
    if TextEncoder::new().encode(&families, &mut buf).is_err() {
        return String::new();
    }
    String::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_follows_naming_conventions() {
        let m = Metrics::new();
        m.events_in.inc();
        m.events_out.with_label_values(&[OUT_SILVER]).inc();
        m.duplicates.with_label_values(&["id"]).inc_by(2);
        m.duplicates.with_label_values(&["content"]).inc();
        let text = m.render();
        assert!(text.contains("cxstream_events_in_total 1"));
        assert!(text.contains("cxstream_events_out_total{output=\"silver\"} 1"));
        assert_eq!(Metrics::sum(&m.duplicates), 3);
        for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
            let mut parts = line.split_whitespace().skip(2);
            let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
            assert!(name.starts_with("cxstream_"), "{name}");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "{name}");
            }
        }
    }

    #[test]
    fn stages_share_one_page_each_series_labelled_by_its_stage() {
        let silver = Metrics::for_stage("silver");
        let gold = Metrics::for_stage("gold");
        silver.events_in.inc_by(3);
        gold.events_in.inc_by(5);
        let page = render(&[&silver, &gold]);
        assert!(
            page.contains("cxstream_events_in_total{stage=\"silver\"} 3"),
            "{page}"
        );
        assert!(
            page.contains("cxstream_events_in_total{stage=\"gold\"} 5"),
            "{page}"
        );
        assert_eq!(
            page.matches("# TYPE cxstream_events_in_total counter")
                .count(),
            1,
            "one family per name: {page}"
        );
        assert!(Metrics::new()
            .render()
            .contains("cxstream_events_in_total 0"));
    }
}
