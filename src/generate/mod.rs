//! Synthetic Genesys Cloud CX conversation detail-event traffic, with ground
//! truth.
//!
//! [`Generator`] is an [`Iterator`] of Kafka-ready [`GenRecord`]s that look
//! like what an EventBridge → Kafka pipeline delivers for
//! `v2.detail.events.conversation.{id}.*` (see
//! `shared/reference/genesys-events.md`). It is deterministic for a given
//! [`GenConfig`] (same seed → same bytes) and streaming: conversations are
//! generated one at a time, in order of their start time, and only the
//! events still waiting for their arrival time are held in memory (a few
//! thousand at the default rate), so 10 million events are fine.
//!
//! # What it generates
//!
//! Conversations start at exponentially distributed gaps
//! ([`GenConfig::interaction_spacing_ms`] on average) and overlap in time.
//! Each picks a media type from [`GenConfig::media_mix`], a customer from a
//! seeded pool (repeat callers are realistic and keep the PII set bounded), a
//! queue from 20 queues and agents from 200. Lifecycles follow §4 of the
//! reference:
//!
//! * **Inbound voice / chat / message**: `customer.start` → `flow.start`
//!   (IVR `INBOUNDCALL`, `INBOUNDCHAT` or `INBOUNDSHORTMESSAGE` bot) →
//!   `attributes` (PII in `context.*`) and `flow.outcome` sometimes →
//!   `flow.end` (`TRANSFER`/`ACD`; or a hang-up in the IVR) → `acd.start` →
//!   `user.start` (alerting) → sometimes RONA (`user.end`
//!   `NO_ANSWER_TRANSFER`, another `user.start`) → `acd.end` with
//!   `ANSWERED` (+`answeredUserId`, `connectedDurationMs` = wait), `ABANDON`
//!   (sometimes while an agent is alerting) or `FLOW_OUT` (to voicemail:
//!   `voicemail.start`/`voicemail.end`, or to an in-queue flow) → `contact`
//!   sometimes → `user.end` (interacting/held/alerting durations) → `acw`
//!   (`wrapupCode`, `wrapupNotes` with PII) → `wrapup` → `customer.end`.
//!   About 12% of answered voice/chat/message conversations are
//!   transferred: blind (`user.end` `TRANSFER` → second `acd.start`…) or,
//!   for voice, consult (`user.start` of the second agent while the first
//!   holds, then `user.end` `CONSULT_TRANSFER`).
//! * **Outbound voice**: campaign calls (`outbound` with campaign/contact
//!   list ids → `customer.start` → `acd.start` → `user.start` → `acd.end`
//!   `PREDICTIVE` → …, or unreached: `outbound` → `customer.end`
//!   `UNCALLABLE`/`ENDPOINT`) and agent-dialled calls (`customer.start`
//!   `OUTBOUND` → `user.start` → `user.end` with `dialingDurationMs` → …).
//! * **Callback**: `customer.start` with `callbackNumbers`,
//!   `callbackUserName`, sometimes `callbackScheduledTime` → queue → agent
//!   (`callbackDurationMs`) → wrap-up.
//! * **Email**: `customer.start` (`addressFrom`/`addressTo`, `subject` with
//!   PII) → `INBOUNDEMAIL` flow → long queue wait → agent, sometimes a second
//!   `user.start`/`user.end` pair (multiple actions) → wrap-up.
//!
//! Voice `ani`/`dnis` are `tel:+E164`, sometimes
//! `sip:+E164@10.x.x.x;user=phone`. Event times are strictly increasing
//! within a conversation, so an [`EventKey`] is unique; `customer.end` is
//! always the last event of a conversation.
//!
//! # Shapes and faults
//!
//! * EventBridge envelope (`version` "0", `id`, `detail-type` with the literal
//!   `{id}`, `source aws.partner/genesys.com/cloud/<org>/<bus>`, `account`,
//!   `time`, `region`, `resources`, `detail{topicName, version, eventBody,
//!   metadata{CorrelationId}, timestamp}`) for [`GenConfig::envelope_pct`] of
//!   events, the bare `detail` object otherwise. Average record ≈ 1 KB.
//! * Version mix ([`VersionMix`]): `eventTime` as ISO-8601 or numeric string
//!   instead of epoch ms; old-SDK bodies without later-added fields
//!   (`conversationExternalContactIds`, `utilizationLabel`, `divisionId` on
//!   `customer.*`, `journeyContext`, `routingPriority`…, `flowType` on
//!   `acd.end`, `callbackDurationMs`, `exitReason`/`transferType`,
//!   `communications`, `wrapupNotes`); future bodies with `detail.version`
//!   "3", unknown fields (never PII) and unknown enum values
//!   (`disconnectType` `TAKEOVER`, `INACTIVITY`, `SESSION_EXPIRED`; `messageType`
//!   `LINKEDIN`).
//! * Stream order: event time, perturbed through a priority queue keyed by
//!   arrival ("stream") time: disorder (arrival = event time + 1..
//!   `disorder_max_ms`, so never late for a watermark with that much allowed
//!   lateness), planted late events (arrival ≥ event time + `late_delay_ms`,
//!   after a later event of the same conversation, and only once an event of
//!   any conversation with event time ≥ event time + `late_delay_ms` has been
//!   emitted), duplicates (re-delivered 3 to 400 deliveries later, half with
//!   the same envelope id and bytes, half re-published with a new id and
//!   `timestamp` but byte-identical `eventBody`).
//! * Records: Kafka key = conversation id; [`GenConfig::bad_key_pct`] of the
//!   single-event records have no key or a wrong one (a participant id);
//!   [`GenConfig::batch_pct`] of the records carry 2–6 events (JSON Lines,
//!   back-to-back objects or a JSON array) and no key;
//!   [`GenConfig::malformed_pct`] of the records are extra malformed records
//!   (not JSON, truncated JSON, missing `conversationId`, missing
//!   `eventTime`, invalid date, wrong type, unsupported kind) that never also
//!   contain a valid event and never contain PII.
//!
//! # Ground truth
//!
//! [`Truth`] is complete once the iterator is exhausted. Counters are always
//! kept; [`Truth::unique_events`], [`Truth::planted_late`] and
//! [`Truth::pii_values`] only when [`GenConfig::collect_truth`] is set (about
//! 200 bytes per event; meant for runs up to ~1M events).
//! `pii_values` holds every PII string that occurs in an emitted record
//! (phones in every form written, `tel:`/`sip:` addresses, emails, names,
//! street addresses, card numbers as written and digits only); none is
//! shorter than 5 characters and none occurs in a non-PII field.
//!
//! # Layout
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | [`Generator`]: conversations in start order, the stream queue, records |
//! | `config.rs` | [`GenConfig`], [`VersionMix`], the media mix, clamped probabilities |
//! | `random.rs` | seeded random streams, distributions, ids |
//! | `pools.rs` | ids shared by conversations (queues, agents, flows…) and the customers (PII) |
//! | `conversation.rs`, `events.rs`, `lifecycle.rs` | one conversation: its participants and fields, each event kind, the lifecycles |
//! | `records.rs` | payload rendering: JSON, body per schema version, envelope or bare detail |
//! | `stream.rs` | stream queue entries: a rendered event and its deliveries |
//! | `faults.rs` | disorder, planted late events, duplicates, malformed records and their classes |
//! | `truth.rs` | [`Truth`], [`EventKey`] |
//! | `test_support.rs` | (tests) the stream decoded as a consumer would, the exact truth check |

mod config;
mod conversation;
mod events;
mod faults;
mod lifecycle;
mod pools;
mod random;
mod records;
mod stream;
#[cfg(test)]
mod test_support;
mod truth;

pub use config::{default_media_mix, GenConfig, VersionMix};
pub use truth::{EventFacts, EventKey, LegEnd, LegHandle, Truth, TruthLeg};

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::Rng;

use config::{media_table, pick_media, Media, Probs, DAY_MS, MAX_START_MS};
use conversation::Ix;
use pools::Pools;
use random::{
    chance, gap, rng_for, uni, uuid_str, STREAM_CONTENT, STREAM_FORMAT, STREAM_GAPS,
    STREAM_PERTURB, STREAM_RECORDS,
};
use records::{render_body, render_event, Shape};
use stream::{DupPending, Ev, Pending, Variant};

/// One Kafka record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenRecord {
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    /// Event-time position in the stream (non-decreasing); usable as the
    /// Kafka record timestamp.
    pub stream_time_ms: i64,
}

/// The streaming generator; see the module doc.
pub struct Generator {
    cfg: GenConfig,
    p: Probs,
    pools: Pools,
    media: Vec<(Media, String, f64)>,
    truth: Truth,
    next_index: usize,
    next_start: i64,
    last_start: i64,
    gap_rng: SmallRng,
    rec_rng: SmallRng,
    pq: BinaryHeap<Reverse<Pending>>,
    dupq: BinaryHeap<Reverse<DupPending>>,
    seq: u64,
    deliveries: u64,
    stream_time: i64,
    max_emitted_time: i64,
    max_generated_time: i64,
}

impl Generator {
    pub fn new(mut cfg: GenConfig) -> Self {
        // Keep all time arithmetic far from overflow and ISO-representable.
        cfg.start_ms = cfg.start_ms.clamp(0, MAX_START_MS);
        cfg.interaction_spacing_ms = cfg.interaction_spacing_ms.clamp(0, DAY_MS);
        cfg.disorder_max_ms = cfg.disorder_max_ms.clamp(0, DAY_MS);
        cfg.late_delay_ms = cfg.late_delay_ms.clamp(0, DAY_MS);
        let p = Probs::new(&cfg);
        let pools = Pools::new(cfg.seed, cfg.interactions);
        let media = media_table(&cfg.media_mix);
        let gap_rng = rng_for(cfg.seed, STREAM_GAPS, 0);
        // Pre-pass over the gaps (no allocation) to learn when the last
        // conversation starts: late events are only planted where the stream
        // is certain to go on for `late_delay_ms` more.
        let mut r = gap_rng.clone();
        let mut last_start = cfg.start_ms;
        for _ in 1..cfg.interactions {
            last_start = last_start.saturating_add(gap(&mut r, cfg.interaction_spacing_ms));
        }
        let rec_rng = rng_for(cfg.seed, STREAM_RECORDS, 0);
        Generator {
            next_start: cfg.start_ms,
            stream_time: cfg.start_ms,
            max_emitted_time: i64::MIN,
            max_generated_time: i64::MIN,
            cfg,
            p,
            pools,
            media,
            truth: Truth::default(),
            next_index: 0,
            last_start,
            gap_rng,
            rec_rng,
            pq: BinaryHeap::new(),
            dupq: BinaryHeap::new(),
            seq: 0,
            deliveries: 0,
        }
    }

    /// The ground truth so far (complete once the iterator returned `None`).
    pub fn truth(&self) -> &Truth {
        &self.truth
    }

    pub fn into_truth(self) -> Truth {
        self.truth
    }

    /// Events generated but not yet delivered (memory bound check).
    pub fn pending(&self) -> usize {
        self.pq.len() + self.dupq.len()
    }

    fn has_more(&self) -> bool {
        self.next_index < self.cfg.interactions || !self.pq.is_empty() || !self.dupq.is_empty()
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Generates conversations until none could deliver before the queue head.
    fn refill(&mut self) {
        while self.next_index < self.cfg.interactions {
            let head = self.pq.peek().map(|Reverse(p)| p.key);
            if matches!(head, Some(k) if self.next_start > k) {
                break;
            }
            let idx = self.next_index;
            let start = self.next_start;
            self.generate_interaction(idx, start);
            self.next_index += 1;
            self.next_start =
                start.saturating_add(gap(&mut self.gap_rng, self.cfg.interaction_spacing_ms));
        }
    }

    fn generate_interaction(&mut self, idx: usize, t0: i64) {
        let seed = self.cfg.seed;
        let mut crng = rng_for(seed, STREAM_CONTENT, idx as u64);
        let (media, media_name) = pick_media(&self.media, &mut crng);
        let (evs, pii_candidates, cid) = {
            let ix = Ix::new(&self.pools, crng, idx, media, media_name);
            let cid = ix.cid.clone();
            let (evs, pii, legs) = ix.build(t0);
            if self.cfg.collect_truth {
                self.truth.legs.extend(legs);
            }
            (evs, pii, cid)
        };
        self.truth.interactions += 1;
        let cid: Arc<str> = Arc::from(cid);
        let mut prng = rng_for(seed, STREAM_PERTURB, idx as u64);
        let (late, arrival) =
            faults::arrivals(&evs, &self.cfg, &self.p, self.last_start, &mut prng);

        let mut frng = rng_for(seed, STREAM_FORMAT, idx as u64);
        for (i, p) in evs.into_iter().enumerate() {
            let shape = Shape::draw(&mut frng, &self.p);
            let body = render_body(&p, shape, &mut frng);
            let envelope_id = if shape.envelope {
                uuid_str(&mut frng)
            } else {
                String::new()
            };
            let correlation_id = uuid_str(&mut frng);
            let publish_ms = p.time.saturating_add(uni(&mut frng, 20, 1_500));
            let session_id = p.str_field("sessionId").cloned();
            let participant_id = p.str_field("participantId").cloned();
            if self.cfg.collect_truth {
                self.truth.record_pii(&body, &pii_candidates);
            }
            self.truth
                .record_event(self.cfg.collect_truth, &cid, &p, &session_id, late[i]);
            if self.cfg.collect_truth {
                let key = EventKey::of(&cid, p.kind, p.time, session_id.clone());
                self.truth.record_facts(key, &body);
            }
            self.max_generated_time = self.max_generated_time.max(p.time);
            let ev = Arc::new(Ev {
                cid: cid.clone(),
                participant_id,
                session_id,
                kind: p.kind,
                time: p.time,
                body,
                envelope: shape.envelope,
                detail_version: if shape.future { "3" } else { "2" },
                envelope_id,
                correlation_id,
                publish_ms,
                late: late[i],
            });
            let seq = self.next_seq();
            self.pq.push(Reverse(Pending {
                key: arrival[i],
                seq,
                ev,
            }));
        }
    }

    /// The next event delivery in stream order.
    fn take_next(&mut self) -> Option<(Arc<Ev>, Variant)> {
        loop {
            if matches!(self.dupq.peek(), Some(Reverse(d)) if d.due <= self.deliveries) {
                return self.pop_dup();
            }
            self.refill();
            let Some(Reverse(mut p)) = self.pq.pop() else {
                return self.pop_dup();
            };
            if p.ev.late {
                let needed = p.ev.time.saturating_add(self.cfg.late_delay_ms);
                if self.max_emitted_time < needed {
                    if self.max_emitted_time < self.max_generated_time
                        || self.next_index < self.cfg.interactions
                    {
                        // Wait for the stream to move far enough on.
                        p.key = p
                            .key
                            .saturating_add((needed - self.max_emitted_time).clamp(1, 60_000));
                        self.pq.push(Reverse(p));
                        continue;
                    }
                    // Cannot happen with the planting rule; keep the truth
                    // honest anyway.
                    self.truth.demote(self.cfg.collect_truth, &p.ev);
                }
            }
            self.stream_time = self.stream_time.max(p.key);
            self.max_emitted_time = self.max_emitted_time.max(p.ev.time);
            self.deliveries += 1;
            self.truth.events_sent += 1;
            if let Some((gap, variant)) = faults::redelivery(&mut self.rec_rng, self.p.dup) {
                let seq = self.next_seq();
                self.dupq.push(Reverse(DupPending {
                    due: self.deliveries + gap.max(1),
                    seq,
                    ev: p.ev.clone(),
                    variant,
                }));
            }
            return Some((p.ev, Variant::Original));
        }
    }

    fn pop_dup(&mut self) -> Option<(Arc<Ev>, Variant)> {
        let Reverse(d) = self.dupq.pop()?;
        self.deliveries += 1;
        self.truth.events_sent += 1;
        self.truth.duplicate_deliveries += 1;
        let variant = match d.variant {
            Variant::NewId => {
                faults::republish(&mut self.rec_rng, d.ev.publish_ms, self.stream_time)
            }
            v => v,
        };
        Some((d.ev, variant))
    }

    fn malformed_record(&mut self) -> GenRecord {
        let (key, value, class) =
            faults::malformed_record(&mut self.rec_rng, &self.pools, self.stream_time);
        self.truth
            .record_malformed(self.cfg.collect_truth, &value, class);
        GenRecord {
            key,
            value,
            stream_time_ms: self.stream_time,
        }
    }
}

impl Iterator for Generator {
    type Item = GenRecord;

    fn next(&mut self) -> Option<GenRecord> {
        if self.has_more() && chance(&mut self.rec_rng, self.p.malformed) {
            return Some(self.malformed_record());
        }
        let first = self.take_next()?;
        let mut items = vec![first];
        if chance(&mut self.rec_rng, self.p.batch) {
            let k = self.rec_rng.gen_range(2..=6usize);
            while items.len() < k {
                match self.take_next() {
                    Some(d) => items.push(d),
                    None => break,
                }
            }
        }
        let mut value = Vec::with_capacity(1_200 * items.len());
        let key = if items.len() == 1 {
            let (ev, variant) = &items[0];
            render_event(&self.pools, ev, variant, &mut value);
            if chance(&mut self.rec_rng, self.p.bad_key) {
                self.truth.bad_key_records += 1;
                match (self.rec_rng.gen::<bool>(), &ev.participant_id) {
                    (true, Some(pid)) => Some(pid.clone().into_bytes()),
                    _ => None,
                }
            } else {
                Some(ev.cid.as_bytes().to_vec())
            }
        } else {
            self.truth.batch_records += 1;
            let style = self.rec_rng.gen_range(0..3u8);
            if style == 2 {
                value.push(b'[');
            }
            for (i, (ev, variant)) in items.iter().enumerate() {
                if i > 0 && style == 2 {
                    value.push(b',');
                }
                render_event(&self.pools, ev, variant, &mut value);
                if style == 0 {
                    value.push(b'\n');
                }
            }
            if style == 2 {
                value.push(b']');
            }
            None
        };
        self.truth.records += 1;
        Some(GenRecord {
            key,
            value,
            stream_time_ms: self.stream_time,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::test_support::*;

    /// SHA-256 of every record (key, value, stream time) and of the ground
    /// truth (sorted where it is a set or map) of one run.
    fn run_digest(cfg: GenConfig) -> String {
        use sha2::{Digest, Sha256};
        let (recs, t) = run(cfg);
        let mut h = Sha256::new();
        for r in &recs {
            match &r.key {
                Some(k) => {
                    h.update((k.len() as u64).to_le_bytes());
                    h.update(k);
                }
                None => h.update(u64::MAX.to_le_bytes()),
            }
            h.update((r.value.len() as u64).to_le_bytes());
            h.update(&r.value);
            h.update(r.stream_time_ms.to_le_bytes());
        }
        let mut late: Vec<&EventKey> = t.planted_late.iter().collect();
        late.sort();
        let mut classes: Vec<_> = t.malformed_classes.iter().collect();
        classes.sort();
        let mut media: Vec<_> = t.event_media.iter().collect();
        media.sort();
        let truth = format!(
            "{:?}|{late:?}|{}|{}|{}|{}|{:?}|{}|{}|{}|{}|{}|{classes:?}|{media:?}",
            t.unique_events,
            t.malformed_records,
            t.duplicate_deliveries,
            t.records,
            t.events_sent,
            t.pii_values,
            t.unique_event_count,
            t.planted_late_count,
            t.interactions,
            t.batch_records,
            t.bad_key_records,
        );
        h.update(truth.as_bytes());
        hex::encode(h.finalize())
    }

    /// The exact output for fixed seeds is pinned: a change to what is
    /// generated, or to the order in which random numbers are drawn, shows
    /// here (tests and golden files depend on the bytes).
    #[test]
    fn output_for_fixed_seeds_is_pinned() {
        let default = run_digest(GenConfig {
            interactions: 400,
            ..GenConfig::default()
        });
        let every_fault = run_digest(GenConfig {
            interactions: 60,
            seed: 9,
            duplicate_pct: 30.0,
            disorder_pct: 50.0,
            late_pct: 20.0,
            malformed_pct: 20.0,
            batch_pct: 30.0,
            bad_key_pct: 40.0,
            envelope_pct: 50.0,
            version_mix: VersionMix {
                iso_time_pct: 20.0,
                numeric_string_time_pct: 20.0,
                old_sdk_pct: 30.0,
                future_pct: 30.0,
            },
            media_mix: vec![
                ("VOICE".into(), 3.0),
                ("CHAT".into(), 1.0),
                ("EMAIL".into(), 1.0),
                ("CALLBACK".into(), 1.0),
                ("MESSAGE".into(), 1.0),
                ("video".into(), 1.0),
            ],
            ..GenConfig::default()
        });
        assert_eq!(
            [default.as_str(), every_fault.as_str()],
            [
                "74ffadc325cbfc67c5e8a2a8d6d04a85bcdbd679eaa0e134c7f57ebd7c2ab121",
                "9c76caec60e13469097aaafc07df1900d36c7ab42e3a9fe0be87ede08eaac7fc"
            ]
        );
    }

    #[test]
    fn same_seed_same_bytes() {
        let cfg = GenConfig {
            interactions: 300,
            ..GenConfig::default()
        };
        let (a, ta) = run(cfg.clone());
        let (b, tb) = run(cfg.clone());
        assert!(!a.is_empty());
        assert_eq!(a, b);
        assert_eq!(ta, tb);
        let (c, _) = run(GenConfig { seed: 7, ..cfg });
        assert_ne!(a, c);
    }

    #[test]
    fn streams_with_bounded_memory() {
        let mut g = Generator::new(GenConfig {
            interactions: 5_000,
            collect_truth: false,
            ..GenConfig::default()
        });
        let mut max_pending = 0;
        let mut n = 0u64;
        while g.next().is_some() {
            n += 1;
            max_pending = max_pending.max(g.pending());
        }
        let t = g.into_truth();
        assert!(t.events_sent > 50_000 && n == t.records);
        assert!(max_pending < 15_000, "pending {max_pending}");
    }
}
