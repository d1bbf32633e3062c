//! Queue legs of one interaction, and the metric contributions they make.
//!
//! A leg runs from `acd.start` to `acd.end` in one queue, with its outcome
//! (`ANSWERED`, `ABANDON`, `FLOW_OUT`) and wait (`connectedDurationMs`).
//! An answered leg takes the agent's next `user.end` (interacting and held
//! durations, disconnect type) and the `acw` after it (wrap-up). A leg is
//! rebuilt from all of its interaction's events each time one arrives, in
//! event-time order, so an event that arrives late (after silver judged it
//! late, or after a crash) gives the same legs as one that arrived in order.
//!
//! Each leg contributes, at the time the metric completes (Genesys's rule):
//! `Offered` at `acd.start`; its outcome and wait at `acd.end`; `Handle`
//! (talk + held + wrap-up) at the end of wrap-up; `Transfer` at the agent's
//! `user.end`, when that has a transfer disconnect type and a new `acd.start`
//! follows in the interaction. The acd→agent hand-off (`acd.end` with
//! `disconnectType: TRANSFER` and outcome `ANSWERED`) is not a transfer.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::event::{GoldEvent, LegEventKind};

/// How a leg left its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Outcome {
    Answered,
    Abandoned,
    FlowOut,
}

impl Outcome {
    fn parse(s: &str) -> Option<Outcome> {
        match s {
            "ANSWERED" => Some(Outcome::Answered),
            "ABANDON" => Some(Outcome::Abandoned),
            "FLOW_OUT" => Some(Outcome::FlowOut),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ContributionKind {
    Offered,
    Outcome {
        outcome: Outcome,
        wait_ms: i64,
    },
    Handle {
        talk_ms: i64,
        held_ms: i64,
        acw_ms: i64,
    },
    Transfer,
}

/// One metric contribution of a leg to its queue, at the event time it
/// completes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Contribution {
    pub at_ms: i64,
    pub kind: ContributionKind,
    /// Fingerprints of the silver events behind it (lineage counts).
    pub events: Vec<u64>,
}

/// Why a leg was left out of every figure (counted, never guessed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InvalidLeg {
    /// An `acd.end` with no open `acd.start` of its queue before it.
    EndWithoutStart,
    /// A negative wait, talk, hold or wrap-up duration.
    NegativeDuration,
    /// An `acd.end` whose outcome needs a wait it does not carry.
    MissingWait,
    /// An `acd.start` or `acd.end` without a queue id.
    MissingQueue,
}

impl InvalidLeg {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            InvalidLeg::EndWithoutStart => "acd_end_without_start",
            InvalidLeg::NegativeDuration => "negative_duration",
            InvalidLeg::MissingWait => "missing_wait",
            InvalidLeg::MissingQueue => "missing_queue",
        }
    }
}

/// What one interaction's events make.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Built {
    /// Queue id → its contributions, sorted.
    pub by_queue: BTreeMap<String, Vec<Contribution>>,
    pub invalid: Vec<InvalidLeg>,
    /// Legs with an `acd.start` and no `acd.end` yet.
    pub open_legs: usize,
}

/// The transfer disconnect types of an agent's `user.end`.
pub fn is_transfer(disconnect_type: &str) -> bool {
    disconnect_type.ends_with("TRANSFER")
}

/// A fingerprint of an event id, for lineage counts.
pub fn event_fp(event_id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(event_id.as_bytes())
}

#[derive(Debug)]
struct Leg {
    queue: String,
    start_ms: i64,
    start_fp: u64,
    end: Option<(i64, Option<Outcome>, i64, u64)>,
    answered_user: Option<String>,
    user_end: Option<(i64, i64, i64, bool, u64)>,
    acw: Option<(i64, i64, u64)>,
    transferred: bool,
    invalid: Option<InvalidLeg>,
}

/// One interaction's leg events, in event-time order, each once.
#[derive(Debug, Default, Clone)]
pub struct InteractionLegs {
    events: BTreeMap<(i64, u8, String), GoldEvent>,
}

impl InteractionLegs {
    /// Adds an event; false if it was already there (a re-delivery).
    pub fn add(&mut self, e: GoldEvent) -> bool {
        if e.kind == LegEventKind::Other {
            return false;
        }
        let k = (e.event_time_ms, e.kind.rank(), e.event_id.clone());
        if self.events.contains_key(&k) {
            return false;
        }
        self.events.insert(k, e);
        true
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The newest event time of the interaction.
    pub fn last_event_ms(&self) -> Option<i64> {
        self.events.keys().next_back().map(|k| k.0)
    }

    pub fn events(&self) -> impl Iterator<Item = &GoldEvent> {
        self.events.values()
    }

    /// Builds the legs from every event so far.
    pub fn build(&self) -> Built {
        let mut legs: Vec<Leg> = Vec::new();
        let mut invalid = Vec::new();
        let mut open: Option<usize> = None;
        let mut awaiting_agent: Option<usize> = None;
        // Answered legs whose agent ended and has not wrapped up yet (a
        // blind transfer's next leg may be answered and end first).
        let mut awaiting_acw: Vec<usize> = Vec::new();
        let mut awaiting_transfer: Option<usize> = None;
        for e in self.events.values() {
            match e.kind {
                LegEventKind::AcdStart => {
                    let Some(q) = &e.queue_id else {
                        invalid.push(InvalidLeg::MissingQueue);
                        continue;
                    };
                    if let Some(j) = awaiting_transfer.take() {
                        legs[j].transferred = true;
                    }
                    legs.push(Leg {
                        queue: q.clone(),
                        start_ms: e.event_time_ms,
                        start_fp: event_fp(&e.event_id),
                        end: None,
                        answered_user: None,
                        user_end: None,
                        acw: None,
                        transferred: false,
                        invalid: None,
                    });
                    open = Some(legs.len() - 1);
                }
                LegEventKind::AcdEnd => {
                    let Some(q) = &e.queue_id else {
                        invalid.push(InvalidLeg::MissingQueue);
                        continue;
                    };
                    let Some(i) = open.filter(|i| legs[*i].queue == *q) else {
                        invalid.push(InvalidLeg::EndWithoutStart);
                        continue;
                    };
                    open = None;
                    let outcome = e.acd_outcome.as_deref().and_then(Outcome::parse);
                    let leg = &mut legs[i];
                    let wait = match (outcome, e.connected_duration_ms) {
                        (_, Some(w)) if w < 0 => {
                            leg.invalid = Some(InvalidLeg::NegativeDuration);
                            continue;
                        }
                        (_, Some(w)) => w,
                        (None, None) => 0,
                        (Some(_), None) => {
                            leg.invalid = Some(InvalidLeg::MissingWait);
                            continue;
                        }
                    };
                    leg.end = Some((e.event_time_ms, outcome, wait, event_fp(&e.event_id)));
                    if outcome == Some(Outcome::Answered) {
                        leg.answered_user = e.answered_user_id.clone();
                        awaiting_agent = Some(i);
                    }
                }
                LegEventKind::UserEnd => {
                    let Some(i) = awaiting_agent else { continue };
                    let leg = &mut legs[i];
                    let same_queue = e.queue_id.as_ref().is_none_or(|q| *q == leg.queue);
                    let same_user = match (&e.user_id, &leg.answered_user) {
                        (Some(a), Some(b)) => a == b,
                        _ => true,
                    };
                    if !(same_queue && same_user) {
                        continue; // another agent session (a consult, an outbound leg)
                    }
                    awaiting_agent = None;
                    let talk = e.interacting_duration_ms.unwrap_or(0);
                    let held = e.held_duration_ms.unwrap_or(0);
                    if talk < 0 || held < 0 {
                        leg.invalid = Some(InvalidLeg::NegativeDuration);
                        continue;
                    }
                    let transfer = e.disconnect_type.as_deref().is_some_and(is_transfer);
                    leg.user_end =
                        Some((e.event_time_ms, talk, held, transfer, event_fp(&e.event_id)));
                    awaiting_acw.push(i);
                    awaiting_transfer = transfer.then_some(i);
                }
                LegEventKind::Acw => {
                    // The wrap-up of the earliest ended leg of its agent
                    // and queue.
                    let Some(pos) = awaiting_acw.iter().position(|&i| {
                        let leg = &legs[i];
                        e.queue_id.as_ref().is_none_or(|q| *q == leg.queue)
                            && match (&e.user_id, &leg.answered_user) {
                                (Some(a), Some(b)) => a == b,
                                _ => true,
                            }
                    }) else {
                        continue;
                    };
                    let i = awaiting_acw.remove(pos);
                    let leg = &mut legs[i];
                    match e.wrapup_duration_ms {
                        Some(w) if w < 0 => leg.invalid = Some(InvalidLeg::NegativeDuration),
                        w => {
                            leg.acw = Some((e.event_time_ms, w.unwrap_or(0), event_fp(&e.event_id)))
                        }
                    }
                }
                LegEventKind::Other => {}
            }
        }
        let mut built = Built {
            open_legs: legs
                .iter()
                .filter(|l| l.end.is_none() && l.invalid.is_none())
                .count(),
            ..Built::default()
        };
        for leg in legs {
            if let Some(why) = leg.invalid {
                invalid.push(why);
                continue;
            }
            let cs = built.by_queue.entry(leg.queue).or_default();
            cs.push(Contribution {
                at_ms: leg.start_ms,
                kind: ContributionKind::Offered,
                events: vec![leg.start_fp],
            });
            if let Some((at, Some(outcome), wait_ms, fp)) = leg.end {
                cs.push(Contribution {
                    at_ms: at,
                    kind: ContributionKind::Outcome { outcome, wait_ms },
                    events: vec![fp],
                });
            }
            if let (Some((_, talk, held, _, ufp)), Some((at, acw, afp))) = (leg.user_end, leg.acw) {
                cs.push(Contribution {
                    at_ms: at,
                    kind: ContributionKind::Handle {
                        talk_ms: talk,
                        held_ms: held,
                        acw_ms: acw,
                    },
                    events: vec![ufp, afp],
                });
            }
            if let (true, Some((at, _, _, _, ufp))) = (leg.transferred, leg.user_end) {
                cs.push(Contribution {
                    at_ms: at,
                    kind: ContributionKind::Transfer,
                    events: vec![ufp],
                });
            }
        }
        for cs in built.by_queue.values_mut() {
            cs.sort();
        }
        invalid.sort();
        built.invalid = invalid;
        built
    }

    /// Queue ids this interaction's contributions went to (for an update
    /// that removes every contribution of a queue).
    pub fn queues(built: &Built) -> BTreeSet<&str> {
        built.by_queue.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn ev(id: &str, kind: LegEventKind, t: i64, q: Option<&str>) -> GoldEvent {
        GoldEvent {
            event_id: id.into(),
            interaction_id: "conv-1".into(),
            kind,
            event_time_ms: t,
            queue_id: q.map(String::from),
            user_id: None,
            acd_outcome: None,
            connected_duration_ms: None,
            answered_user_id: None,
            disconnect_type: None,
            interacting_duration_ms: None,
            held_duration_ms: None,
            wrapup_duration_ms: None,
            wrapup_code: None,
        }
    }

    pub(crate) fn acd_end(id: &str, t: i64, q: &str, outcome: &str, wait: i64) -> GoldEvent {
        GoldEvent {
            acd_outcome: Some(outcome.into()),
            connected_duration_ms: Some(wait),
            // The hand-off: Genesys marks the acd segment ended by transfer.
            disconnect_type: Some("TRANSFER".into()),
            answered_user_id: Some("agent-1".into()),
            ..ev(id, LegEventKind::AcdEnd, t, Some(q))
        }
    }

    pub(crate) fn user_end(id: &str, t: i64, q: &str, talk: i64, held: i64, dt: &str) -> GoldEvent {
        GoldEvent {
            user_id: Some("agent-1".into()),
            interacting_duration_ms: Some(talk),
            held_duration_ms: Some(held),
            disconnect_type: Some(dt.into()),
            ..ev(id, LegEventKind::UserEnd, t, Some(q))
        }
    }

    pub(crate) fn acw(id: &str, t: i64, q: &str, wrap: i64) -> GoldEvent {
        GoldEvent {
            wrapup_duration_ms: Some(wrap),
            wrapup_code: Some("code-1".into()),
            ..ev(id, LegEventKind::Acw, t, Some(q))
        }
    }

    fn legs(events: Vec<GoldEvent>) -> Built {
        let mut l = InteractionLegs::default();
        for e in events {
            l.add(e);
        }
        l.build()
    }

    fn kinds(b: &Built, q: &str) -> Vec<(i64, ContributionKind)> {
        b.by_queue[q]
            .iter()
            .map(|c| (c.at_ms, c.kind.clone()))
            .collect()
    }

    #[test]
    fn an_answered_leg_with_agent_and_wrap_up() {
        let b = legs(vec![
            ev("s", LegEventKind::AcdStart, 1_000, Some("q1")),
            acd_end("e", 13_000, "q1", "ANSWERED", 12_000),
            user_end("u", 200_000, "q1", 180_000, 7_000, "PEER"),
            acw("w", 230_000, "q1", 30_000),
        ]);
        assert_eq!(
            kinds(&b, "q1"),
            vec![
                (1_000, ContributionKind::Offered),
                (
                    13_000,
                    ContributionKind::Outcome {
                        outcome: Outcome::Answered,
                        wait_ms: 12_000
                    }
                ),
                (
                    230_000,
                    ContributionKind::Handle {
                        talk_ms: 180_000,
                        held_ms: 7_000,
                        acw_ms: 30_000
                    }
                ),
            ]
        );
        assert!(b.invalid.is_empty());
        assert_eq!(b.open_legs, 0);
    }

    #[test]
    fn the_hand_off_is_not_a_transfer_but_a_blind_transfer_to_another_queue_is() {
        // acd.end says TRANSFER (the hand-off to the agent): no transfer.
        let b = legs(vec![
            ev("s", LegEventKind::AcdStart, 0, Some("q1")),
            acd_end("e", 5_000, "q1", "ANSWERED", 5_000),
            user_end("u", 60_000, "q1", 55_000, 0, "PEER"),
        ]);
        assert!(!kinds(&b, "q1").contains(&(60_000, ContributionKind::Transfer)));
        // The agent transfers, and the interaction queues again in q2.
        let b = legs(vec![
            ev("s", LegEventKind::AcdStart, 0, Some("q1")),
            acd_end("e", 5_000, "q1", "ANSWERED", 5_000),
            user_end("u", 60_000, "q1", 55_000, 0, "CONSULT_TRANSFER"),
            acw("w", 61_000, "q1", 1_000),
            ev("s2", LegEventKind::AcdStart, 60_500, Some("q2")),
        ]);
        assert!(kinds(&b, "q1").contains(&(60_000, ContributionKind::Transfer)));
        assert_eq!(kinds(&b, "q2"), vec![(60_500, ContributionKind::Offered)]);
        assert_eq!(b.open_legs, 1);
        // A transfer disconnect with no new queue after it (to a number
        // outside the contact center) is not a queue transfer.
        let b = legs(vec![
            ev("s", LegEventKind::AcdStart, 0, Some("q1")),
            acd_end("e", 5_000, "q1", "ANSWERED", 5_000),
            user_end("u", 60_000, "q1", 55_000, 0, "TRANSFER"),
        ]);
        assert!(!kinds(&b, "q1").contains(&(60_000, ContributionKind::Transfer)));
    }

    /// After a blind transfer, the next leg's agent can end before the
    /// first agent wraps up: each wrap-up goes to its own agent's leg.
    #[test]
    fn each_wrap_up_goes_to_the_leg_of_its_agent_and_queue() {
        let agent = |e: GoldEvent, who: &str| GoldEvent {
            user_id: Some(who.into()),
            ..e
        };
        let b = legs(vec![
            ev("s", LegEventKind::AcdStart, 0, Some("q1")),
            acd_end("e", 5_000, "q1", "ANSWERED", 5_000),
            user_end("u", 60_000, "q1", 55_000, 0, "TRANSFER"),
            ev("s2", LegEventKind::AcdStart, 60_500, Some("q2")),
            GoldEvent {
                answered_user_id: Some("agent-2".into()),
                ..acd_end("e2", 70_000, "q2", "ANSWERED", 9_500)
            },
            agent(user_end("u2", 100_000, "q2", 30_000, 0, "PEER"), "agent-2"),
            agent(acw("w2", 110_000, "q2", 10_000), "agent-2"),
            agent(acw("w", 400_000, "q1", 340_000), "agent-1"),
        ]);
        let handle = |q: &str| {
            kinds(&b, q)
                .into_iter()
                .find(|(_, k)| matches!(k, ContributionKind::Handle { .. }))
        };
        assert_eq!(
            handle("q1"),
            Some((
                400_000,
                ContributionKind::Handle {
                    talk_ms: 55_000,
                    held_ms: 0,
                    acw_ms: 340_000
                }
            ))
        );
        assert_eq!(
            handle("q2"),
            Some((
                110_000,
                ContributionKind::Handle {
                    talk_ms: 30_000,
                    held_ms: 0,
                    acw_ms: 10_000
                }
            ))
        );
        assert!(kinds(&b, "q1").contains(&(60_000, ContributionKind::Transfer)));
    }

    #[test]
    fn abandon_and_flow_out_legs_have_no_handle() {
        let b = legs(vec![
            ev("s", LegEventKind::AcdStart, 0, Some("q1")),
            acd_end("e", 4_000, "q1", "ABANDON", 4_000),
            ev("s2", LegEventKind::AcdStart, 10_000, Some("q1")),
            acd_end("e2", 70_000, "q1", "FLOW_OUT", 60_000),
        ]);
        assert_eq!(
            kinds(&b, "q1"),
            vec![
                (0, ContributionKind::Offered),
                (
                    4_000,
                    ContributionKind::Outcome {
                        outcome: Outcome::Abandoned,
                        wait_ms: 4_000
                    }
                ),
                (10_000, ContributionKind::Offered),
                (
                    70_000,
                    ContributionKind::Outcome {
                        outcome: Outcome::FlowOut,
                        wait_ms: 60_000
                    }
                ),
            ]
        );
    }

    #[test]
    fn impossible_legs_are_excluded_and_named() {
        let b = legs(vec![acd_end("e", 4_000, "q1", "ABANDON", 4_000)]);
        assert_eq!(b.invalid, vec![InvalidLeg::EndWithoutStart]);
        assert!(b.by_queue.is_empty());
        let b = legs(vec![
            ev("s", LegEventKind::AcdStart, 0, Some("q1")),
            acd_end("e", 4_000, "q1", "ANSWERED", -1),
        ]);
        assert_eq!(b.invalid, vec![InvalidLeg::NegativeDuration]);
        assert!(b.by_queue.is_empty(), "the whole leg is left out");
        let b = legs(vec![
            ev("s", LegEventKind::AcdStart, 0, Some("q1")),
            acd_end("e", 4_000, "q1", "ANSWERED", 4_000),
            user_end("u", 9_000, "q1", -5, 0, "PEER"),
        ]);
        assert_eq!(b.invalid, vec![InvalidLeg::NegativeDuration]);
        // An end in another queue than the open leg's.
        let b = legs(vec![
            ev("s", LegEventKind::AcdStart, 0, Some("q1")),
            acd_end("e", 4_000, "q2", "ANSWERED", 4_000),
        ]);
        assert_eq!(b.invalid, vec![InvalidLeg::EndWithoutStart]);
        assert_eq!(kinds(&b, "q1"), vec![(0, ContributionKind::Offered)]);
        assert_eq!(b.open_legs, 1);
    }

    #[test]
    fn arrival_order_and_re_deliveries_do_not_change_the_legs() {
        let events = vec![
            ev("s", LegEventKind::AcdStart, 1_000, Some("q1")),
            acd_end("e", 13_000, "q1", "ANSWERED", 12_000),
            user_end("u", 200_000, "q1", 180_000, 7_000, "TRANSFER"),
            acw("w", 230_000, "q1", 30_000),
            ev("s2", LegEventKind::AcdStart, 200_500, Some("q2")),
            acd_end("e2", 210_000, "q2", "ABANDON", 9_500),
        ];
        let want = legs(events.clone());
        let mut reversed = events.clone();
        reversed.reverse();
        reversed.push(events[2].clone());
        let mut l = InteractionLegs::default();
        let fresh: Vec<bool> = reversed.into_iter().map(|e| l.add(e)).collect();
        assert_eq!(fresh.iter().filter(|f| !**f).count(), 1, "the re-delivery");
        assert_eq!(l.build(), want);
    }
}
