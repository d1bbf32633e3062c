//! What to generate: [`GenConfig`] and [`VersionMix`] as given, and what
//! the generator derives from them (clamped probabilities, the media table).

use rand::rngs::SmallRng;
use rand::Rng;

/// Mix of body versions and `eventTime` representations (percentages of
/// events).
#[derive(Debug, Clone, PartialEq)]
pub struct VersionMix {
    /// `eventTime` as an ISO-8601 string (`"2026-01-01T10:00:00.123Z"`).
    pub iso_time_pct: f64,
    /// `eventTime` as a numeric string (`"1767261600123"`).
    pub numeric_string_time_pct: f64,
    /// Older bodies lacking later-added fields (see the module doc).
    pub old_sdk_pct: f64,
    /// `detail.version` "3" with unknown fields and unknown enum values.
    pub future_pct: f64,
}

impl Default for VersionMix {
    fn default() -> Self {
        VersionMix {
            iso_time_pct: 2.0,
            numeric_string_time_pct: 2.0,
            old_sdk_pct: 10.0,
            future_pct: 2.0,
        }
    }
}

/// Generator settings. Percentages are 0–100 (out-of-range or NaN values
/// are clamped; `malformed_pct` to at most 50). `start_ms` is clamped to
/// 1970–2100, spacing and delays to 0–1 day.
#[derive(Debug, Clone, PartialEq)]
pub struct GenConfig {
    /// Number of conversations.
    pub interactions: usize,
    pub seed: u64,
    /// Event time of the first conversation start (epoch ms).
    pub start_ms: i64,
    /// Mean gap between conversation starts (event time, exponential).
    pub interaction_spacing_ms: i64,
    /// % of events delivered twice (see the module doc).
    pub duplicate_pct: f64,
    /// % of events displaced by less than `disorder_max_ms` of stream time.
    pub disorder_pct: f64,
    /// Keep below the processor's allowed lateness (default 3000 ms).
    pub disorder_max_ms: i64,
    /// % of events delivered at least `late_delay_ms` after their event time.
    pub late_pct: f64,
    pub late_delay_ms: i64,
    /// % of records that are (extra) malformed records.
    pub malformed_pct: f64,
    /// % of valid records that carry several events (no key).
    pub batch_pct: f64,
    /// % of single-event records whose key is missing or wrong.
    pub bad_key_pct: f64,
    /// % of events in the EventBridge envelope shape (the rest: bare detail).
    pub envelope_pct: f64,
    pub version_mix: VersionMix,
    /// `(mediaType, weight)`; known: VOICE, CHAT, EMAIL, CALLBACK, MESSAGE.
    /// Any other name gets a chat-like lifecycle with that `mediaType`.
    pub media_mix: Vec<(String, f64)>,
    /// Collect [`Truth::unique_events`](super::Truth::unique_events), [`Truth::planted_late`](super::Truth::planted_late) and
    /// [`Truth::pii_values`](super::Truth::pii_values) (counters are always kept).
    pub collect_truth: bool,
}

/// The default media mix: VOICE 70, CHAT 10, MESSAGE 8, EMAIL 6, CALLBACK 6.
pub fn default_media_mix() -> Vec<(String, f64)> {
    [
        ("VOICE", 70.0),
        ("CHAT", 10.0),
        ("MESSAGE", 8.0),
        ("EMAIL", 6.0),
        ("CALLBACK", 6.0),
    ]
    .into_iter()
    .map(|(m, w)| (m.to_string(), w))
    .collect()
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            interactions: 1_000,
            seed: 42,
            // 2026-01-01T10:00:00Z
            start_ms: 1_767_261_600_000,
            interaction_spacing_ms: 2_000,
            duplicate_pct: 5.0,
            disorder_pct: 10.0,
            disorder_max_ms: 2_500,
            late_pct: 1.0,
            late_delay_ms: 30_000,
            malformed_pct: 0.5,
            batch_pct: 3.0,
            bad_key_pct: 5.0,
            envelope_pct: 70.0,
            version_mix: VersionMix::default(),
            media_mix: default_media_mix(),
            collect_truth: true,
        }
    }
}

/// 2100-01-01T00:00:00Z: latest accepted `start_ms`.
pub(super) const MAX_START_MS: i64 = 4_102_444_800_000;
pub(super) const DAY_MS: i64 = 86_400_000;

/// The configured percentages as probabilities, clamped (see [`GenConfig`]).
pub(super) struct Probs {
    pub(super) dup: f64,
    pub(super) disorder: f64,
    pub(super) late: f64,
    pub(super) malformed: f64,
    pub(super) batch: f64,
    pub(super) bad_key: f64,
    pub(super) envelope: f64,
    pub(super) iso: f64,
    pub(super) numstr: f64,
    pub(super) old: f64,
    pub(super) future: f64,
}

fn prob(pct: f64, max: f64) -> f64 {
    if pct.is_finite() {
        (pct / 100.0).clamp(0.0, max)
    } else {
        0.0
    }
}

impl Probs {
    pub(super) fn new(c: &GenConfig) -> Self {
        let v = &c.version_mix;
        let iso = prob(v.iso_time_pct, 1.0);
        let old = prob(v.old_sdk_pct, 1.0);
        Probs {
            dup: prob(c.duplicate_pct, 1.0),
            disorder: prob(c.disorder_pct, 1.0),
            late: prob(c.late_pct, 1.0),
            malformed: prob(c.malformed_pct, 0.5),
            batch: prob(c.batch_pct, 1.0),
            bad_key: prob(c.bad_key_pct, 1.0),
            envelope: prob(c.envelope_pct, 1.0),
            iso,
            numstr: prob(v.numeric_string_time_pct, 1.0 - iso),
            old,
            future: prob(v.future_pct, 1.0 - old),
        }
    }
}

/// The lifecycle a conversation follows, by its `mediaType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Media {
    Voice,
    Chat,
    Email,
    Callback,
    Message,
    Other,
}

/// Cumulative weights of the media mix (unknown names get [`Media::Other`]).
pub(super) fn media_table(mix: &[(String, f64)]) -> Vec<(Media, String, f64)> {
    let mut out = Vec::new();
    let mut acc = 0.0;
    for (name, w) in mix {
        if !(w.is_finite() && *w > 0.0) {
            continue;
        }
        let name = name.trim().to_ascii_uppercase();
        if name.is_empty() {
            continue;
        }
        let m = match name.as_str() {
            "VOICE" => Media::Voice,
            "CHAT" => Media::Chat,
            "EMAIL" => Media::Email,
            "CALLBACK" => Media::Callback,
            "MESSAGE" => Media::Message,
            _ => Media::Other,
        };
        acc += w;
        out.push((m, name, acc));
    }
    if out.is_empty() {
        out.push((Media::Voice, "VOICE".to_string(), 1.0));
    }
    out
}

pub(super) fn pick_media(t: &[(Media, String, f64)], r: &mut SmallRng) -> (Media, String) {
    let total = t.last().map_or(1.0, |e| e.2);
    let x = r.gen::<f64>() * total;
    let e = t.iter().find(|e| x < e.2).or(t.last());
    e.map_or((Media::Voice, "VOICE".to_string()), |e| (e.0, e.1.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::test_support::*;

    #[test]
    fn odd_configs_terminate_and_stay_consistent() {
        let base = GenConfig {
            interactions: 60,
            ..GenConfig::default()
        };
        let cases = vec![
            GenConfig {
                interactions: 0,
                ..base.clone()
            },
            GenConfig {
                interactions: 1,
                ..base.clone()
            },
            GenConfig {
                duplicate_pct: 100.0,
                disorder_pct: 100.0,
                late_pct: 100.0,
                malformed_pct: 100.0,
                batch_pct: 100.0,
                bad_key_pct: 100.0,
                envelope_pct: 100.0,
                version_mix: VersionMix {
                    iso_time_pct: 60.0,
                    numeric_string_time_pct: 60.0,
                    old_sdk_pct: 70.0,
                    future_pct: 70.0,
                },
                ..base.clone()
            },
            GenConfig {
                duplicate_pct: f64::NAN,
                disorder_pct: -5.0,
                late_pct: f64::INFINITY,
                disorder_max_ms: 0,
                late_delay_ms: 0,
                interaction_spacing_ms: 0,
                envelope_pct: 0.0,
                media_mix: vec![],
                ..base.clone()
            },
            GenConfig {
                interaction_spacing_ms: -100,
                media_mix: vec![("video".into(), 1.0), ("EMAIL".into(), f64::NAN)],
                ..base.clone()
            },
            GenConfig {
                start_ms: i64::MAX - 10_000,
                ..base.clone()
            },
        ];
        for cfg in cases {
            let (recs, t) = run(cfg.clone());
            check_consistency(&recs, &t, true);
            if cfg.interactions == 0 {
                assert!(recs.is_empty());
            }
        }
        let (recs, _) = run(GenConfig {
            media_mix: vec![("video".into(), 1.0)],
            ..base
        });
        let out = parse_record(&recs[0].value).unwrap_or_default();
        assert!(out
            .iter()
            .all(|p| p.body.get("mediaType").is_none_or(|m| m == "VIDEO")));
    }
}
