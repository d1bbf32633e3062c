//! The gold stage's own metrics, next to the runtime's in the stage's
//! registry (label `stage`). Labels are static reason names only.

use prometheus::{IntCounter, IntCounterVec, IntGauge};

use crate::metrics::{counter, counter_vec, gauge, Metrics};

#[derive(Debug, Clone)]
pub struct GoldMetrics {
    /// Legs left out of every figure, by reason (`acd_end_without_start`…).
    pub invalid_legs: IntCounterVec,
    /// Silver events older than every window still kept: written to the
    /// gold late port.
    pub beyond_horizon: IntCounter,
    /// Contributions that reached a window already past the correction
    /// horizon (left out of its figures; their events went to the late
    /// port where they were read).
    pub refused_contributions: IntCounter,
    /// Results written (first results and corrections).
    pub results: IntCounterVec,
    pub interactions: IntGauge,
    pub events_kept: IntGauge,
    pub windows: IntGauge,
    pub contribution_sets: IntGauge,
    /// Restored state records that could not be read (skipped).
    pub unreadable_state: IntCounter,
}

impl GoldMetrics {
    pub fn new(m: &Metrics) -> Self {
        let r = m.registry();
        GoldMetrics {
            invalid_legs: counter_vec(
                r,
                "cxstream_gold_invalid_legs_total",
                "Queue legs left out of every figure, by reason",
                &["reason"],
            ),
            beyond_horizon: counter(
                r,
                "cxstream_gold_beyond_horizon_total",
                "Silver events older than the correction horizon, written to the gold late topic",
            ),
            refused_contributions: counter(
                r,
                "cxstream_gold_refused_contributions_total",
                "Leg contributions to windows past the correction horizon",
            ),
            results: counter_vec(
                r,
                "cxstream_gold_results_total",
                "Window results written, by kind (first, correction)",
                &["kind"],
            ),
            interactions: gauge(
                r,
                "cxstream_gold_interactions",
                "Interactions whose leg events are kept",
            ),
            events_kept: gauge(
                r,
                "cxstream_gold_events_kept",
                "Leg events kept over every interaction",
            ),
            windows: gauge(
                r,
                "cxstream_gold_windows",
                "Queue windows kept (open, or closed within the correction horizon)",
            ),
            contribution_sets: gauge(
                r,
                "cxstream_gold_contribution_sets",
                "(queue, interaction) contribution sets kept",
            ),
            unreadable_state: counter(
                r,
                "cxstream_gold_unreadable_state_total",
                "Restored gold state records that could not be read",
            ),
        }
    }
}
