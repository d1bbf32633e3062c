//! The per-(queue, window) figures, computed from the contributions that
//! complete in the window (Genesys counts a metric in the interval in which
//! it completes; `../shared/reference/genesys-events.md` §3.2 and §4).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::legs::{Contribution, ContributionKind, Outcome};

/// The service-level and threshold settings of the figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KpiRules {
    /// An abandon with a wait at most this long is a short abandon.
    pub short_abandon_threshold_ms: i64,
    /// An answer with a wait at most this long is within the target.
    pub service_level_target_ms: i64,
    /// Service level leaves short abandons out of its denominator.
    pub exclude_short_abandons: bool,
    /// Service level counts flow-outs in its denominator.
    pub include_flow_outs: bool,
}

impl Default for KpiRules {
    fn default() -> Self {
        KpiRules {
            short_abandon_threshold_ms: 10_000,
            service_level_target_ms: 20_000,
            exclude_short_abandons: true,
            include_flow_outs: false,
        }
    }
}

/// The figures of one (queue, window). A ratio whose denominator is 0 is
/// `None` (JSON `null`), never 0 and never NaN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Kpis {
    pub offered: u64,
    pub answered: u64,
    pub abandoned: u64,
    pub short_abandoned: u64,
    pub flow_outs: u64,
    pub answered_within_target: u64,
    pub handled: u64,
    pub transfers: u64,
    pub asa_ms: Option<f64>,
    pub avg_wait_ms: Option<f64>,
    pub max_wait_ms: Option<i64>,
    pub talk_ms: i64,
    pub held_ms: i64,
    pub acw_ms: i64,
    pub aht_ms: Option<f64>,
    pub abandon_rate: Option<f64>,
    pub service_level_pct: Option<f64>,
    /// Distinct silver events behind these figures (lineage).
    #[serde(skip)]
    pub events: u64,
}

fn ratio(num: f64, den: u64) -> Option<f64> {
    (den > 0).then(|| num / den as f64)
}

impl Kpis {
    /// The figures of the contributions `cs` (all of one queue and window).
    pub fn compute<'a>(rules: &KpiRules, cs: impl IntoIterator<Item = &'a Contribution>) -> Kpis {
        let mut k = Kpis::default();
        let (mut answered_wait, mut all_wait, mut waits) = (0i64, 0i64, 0u64);
        let mut events = BTreeSet::new();
        for c in cs {
            events.extend(c.events.iter().copied());
            match &c.kind {
                ContributionKind::Offered => k.offered += 1,
                ContributionKind::Outcome { outcome, wait_ms } => {
                    let w = *wait_ms;
                    match outcome {
                        Outcome::Answered => {
                            k.answered += 1;
                            answered_wait += w;
                            if w <= rules.service_level_target_ms {
                                k.answered_within_target += 1;
                            }
                        }
                        Outcome::Abandoned => {
                            k.abandoned += 1;
                            if w <= rules.short_abandon_threshold_ms {
                                k.short_abandoned += 1;
                            }
                        }
                        Outcome::FlowOut => k.flow_outs += 1,
                    }
                    all_wait += w;
                    waits += 1;
                    k.max_wait_ms = Some(k.max_wait_ms.map_or(w, |m| m.max(w)));
                }
                ContributionKind::Handle {
                    talk_ms,
                    held_ms,
                    acw_ms,
                } => {
                    k.handled += 1;
                    k.talk_ms += talk_ms;
                    k.held_ms += held_ms;
                    k.acw_ms += acw_ms;
                }
                ContributionKind::Transfer => k.transfers += 1,
            }
        }
        k.events = events.len() as u64;
        k.asa_ms = ratio(answered_wait as f64, k.answered);
        k.avg_wait_ms = ratio(all_wait as f64, waits);
        k.aht_ms = ratio((k.talk_ms + k.held_ms + k.acw_ms) as f64, k.handled);
        k.abandon_rate = ratio(k.abandoned as f64, k.offered);
        let mut den = k.answered + k.abandoned;
        if rules.exclude_short_abandons {
            den -= k.short_abandoned;
        }
        if rules.include_flow_outs {
            den += k.flow_outs;
        }
        k.service_level_pct = ratio(k.answered_within_target as f64 * 100.0, den);
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(kind: ContributionKind, ev: u64) -> Contribution {
        Contribution {
            at_ms: 0,
            kind,
            events: vec![ev],
        }
    }

    fn outcome(outcome: Outcome, wait_ms: i64, ev: u64) -> Contribution {
        c(ContributionKind::Outcome { outcome, wait_ms }, ev)
    }

    /// Four offered: answered after 5 s and 30 s, abandoned after 4 s
    /// (short) and 40 s, one flow-out after 60 s.
    fn sample() -> Vec<Contribution> {
        vec![
            c(ContributionKind::Offered, 1),
            c(ContributionKind::Offered, 2),
            c(ContributionKind::Offered, 3),
            c(ContributionKind::Offered, 4),
            outcome(Outcome::Answered, 5_000, 11),
            outcome(Outcome::Answered, 30_000, 12),
            outcome(Outcome::Abandoned, 4_000, 13),
            outcome(Outcome::Abandoned, 40_000, 14),
            outcome(Outcome::FlowOut, 60_000, 15),
            Contribution {
                at_ms: 0,
                kind: ContributionKind::Handle {
                    talk_ms: 100_000,
                    held_ms: 20_000,
                    acw_ms: 30_000,
                },
                events: vec![21, 22],
            },
            Contribution {
                at_ms: 0,
                kind: ContributionKind::Handle {
                    talk_ms: 50_000,
                    held_ms: 0,
                    acw_ms: 10_000,
                },
                events: vec![23, 24],
            },
            // The same user.end behind a handle and a transfer: one event.
            c(ContributionKind::Transfer, 23),
        ]
    }

    #[test]
    fn hand_computed_figures() {
        let k = Kpis::compute(&KpiRules::default(), &sample());
        assert_eq!(
            (
                k.offered,
                k.answered,
                k.abandoned,
                k.short_abandoned,
                k.flow_outs
            ),
            (4, 2, 2, 1, 1)
        );
        assert_eq!(
            (k.answered_within_target, k.handled, k.transfers),
            (1, 2, 1)
        );
        assert_eq!(k.asa_ms, Some(17_500.0)); // (5 + 30) / 2 s
        assert_eq!(k.avg_wait_ms, Some(27_800.0)); // (5 + 30 + 4 + 40 + 60) / 5 s
        assert_eq!(k.max_wait_ms, Some(60_000));
        assert_eq!((k.talk_ms, k.held_ms, k.acw_ms), (150_000, 20_000, 40_000));
        assert_eq!(k.aht_ms, Some(105_000.0)); // 210 s / 2
        assert_eq!(k.abandon_rate, Some(0.5));
        // 1 within target / (2 answered + 2 abandoned - 1 short) = 33.3 %
        assert_eq!(k.service_level_pct, Some(100.0 / 3.0));
        assert_eq!(k.events, 4 + 5 + 4);
    }

    #[test]
    fn every_service_level_setting() {
        let cs = sample();
        let sl = |exclude_short_abandons, include_flow_outs| {
            let rules = KpiRules {
                exclude_short_abandons,
                include_flow_outs,
                ..KpiRules::default()
            };
            Kpis::compute(&rules, &cs).service_level_pct
        };
        assert_eq!(sl(true, false), Some(100.0 / 3.0)); // 1 / (2 + 2 - 1)
        assert_eq!(sl(false, false), Some(25.0)); // 1 / (2 + 2)
        assert_eq!(sl(true, true), Some(25.0)); // 1 / (2 + 2 - 1 + 1)
        assert_eq!(sl(false, true), Some(20.0)); // 1 / (2 + 2 + 1)
    }

    #[test]
    fn thresholds_are_inclusive() {
        let rules = KpiRules::default();
        let cs = [
            outcome(Outcome::Answered, 20_000, 1),
            outcome(Outcome::Abandoned, 10_000, 2),
        ];
        let k = Kpis::compute(&rules, &cs);
        assert_eq!((k.answered_within_target, k.short_abandoned), (1, 1));
        let cs = [
            outcome(Outcome::Answered, 20_001, 1),
            outcome(Outcome::Abandoned, 10_001, 2),
        ];
        let k = Kpis::compute(&rules, &cs);
        assert_eq!((k.answered_within_target, k.short_abandoned), (0, 0));
    }

    #[test]
    fn empty_denominators_are_null_never_zero_or_nan() {
        let k = Kpis::compute(&KpiRules::default(), &[]);
        assert_eq!(
            (
                k.asa_ms,
                k.avg_wait_ms,
                k.max_wait_ms,
                k.aht_ms,
                k.abandon_rate,
                k.service_level_pct
            ),
            (None, None, None, None, None, None)
        );
        let v = serde_json::to_value(&k).unwrap();
        assert!(v["service_level_pct"].is_null() && v["abandon_rate"].is_null());
        assert_eq!(v["offered"], 0);
        // Only short abandons, excluded: the service level has nothing to
        // say; the abandon rate has no offered to divide by.
        let k = Kpis::compute(
            &KpiRules::default(),
            &[outcome(Outcome::Abandoned, 1_000, 1)],
        );
        assert_eq!(k.service_level_pct, None);
        assert_eq!(k.abandon_rate, None);
        assert_eq!(k.avg_wait_ms, Some(1_000.0));
    }
}
