//! The interaction state machine the audit trail records, without Kafka.
//!
//! ```text
//! none → created → ivr → queued → alerting → connected → transferred / wrap-up → disconnected → ended
//! ```
//!
//! | silver event | change | actor |
//! |---|---|---|
//! | `customer.start`, `outbound` | → `created` (first event of the interaction only) | customer / system |
//! | `flow.start` | → `ivr` | system |
//! | `acd.start` | → `queued` | queue |
//! | `user.start` | → `alerting` | agent |
//! | `acd.end` | `ANSWERED` → `connected` (agent: the answering user), `ABANDON` → `disconnected` (customer), `FLOW_OUT` → `ivr` (queue) | |
//! | `user.end` | not answered → `queued`; a transfer → `transferred`; else → `wrap-up` | agent |
//! | `acw` | → `disconnected` (the agent's wrap-up is over) | agent |
//! | `customer.end` | → `ended` (terminal) | customer |
//!
//! An event that leaves the state as it is makes no record, and nothing
//! follows `ended`: a late event of an ended interaction is counted, not
//! recorded. The Genesys detail stream has no hold events (only the
//! agent's total `heldDurationMs` on `user.end`), so `held` is never
//! entered from it.

use super::super::process::event::ProcessEvent;

/// An interaction's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    None,
    Created,
    Ivr,
    Queued,
    Alerting,
    Connected,
    Held,
    Transferred,
    WrapUp,
    Disconnected,
    Ended,
}

impl State {
    pub const ALL: [State; 11] = [
        State::None,
        State::Created,
        State::Ivr,
        State::Queued,
        State::Alerting,
        State::Connected,
        State::Held,
        State::Transferred,
        State::WrapUp,
        State::Disconnected,
        State::Ended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::None => "none",
            State::Created => "created",
            State::Ivr => "ivr",
            State::Queued => "queued",
            State::Alerting => "alerting",
            State::Connected => "connected",
            State::Held => "held",
            State::Transferred => "transferred",
            State::WrapUp => "wrap-up",
            State::Disconnected => "disconnected",
            State::Ended => "ended",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// A change an event makes: the new state and who made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub to: State,
    pub actor: String,
}

fn agent(id: &Option<String>) -> String {
    id.as_ref()
        .map_or_else(|| "agent".to_string(), |u| format!("agent:{u}"))
}

fn queue(id: &Option<String>) -> String {
    id.as_ref()
        .map_or_else(|| "queue".to_string(), |q| format!("queue:{q}"))
}

/// The change `e` makes to an interaction in state `from`, if any.
pub fn next(from: State, e: &ProcessEvent) -> Option<Change> {
    if from == State::Ended {
        return None;
    }
    let change = |to: State, actor: String| Some(Change { to, actor });
    let c = match e.event_type.as_str() {
        "customer.start" if from == State::None => change(State::Created, "customer".into()),
        "outbound" if from == State::None => change(State::Created, "system".into()),
        "flow.start" => change(State::Ivr, "system".into()),
        "acd.start" => change(State::Queued, queue(&e.queue_id)),
        "user.start" => change(State::Alerting, agent(&e.user_id)),
        "acd.end" => match e.acd_outcome.as_deref() {
            Some("ANSWERED") => {
                let who = if e.answered_user_id.is_some() {
                    &e.answered_user_id
                } else {
                    &e.user_id
                };
                change(State::Connected, agent(who))
            }
            Some("ABANDON") => change(State::Disconnected, "customer".into()),
            Some("FLOW_OUT") => change(State::Ivr, queue(&e.queue_id)),
            _ => None,
        },
        "user.end" => {
            let dt = e.disconnect_type.as_deref().unwrap_or("");
            let interacted = e.interacting_duration_ms.is_some_and(|d| d > 0);
            let no_answer = matches!(dt, "NO_ANSWER_TRANSFER" | "TIMEOUT" | "NOT_ANSWERED");
            if no_answer && !interacted {
                change(State::Queued, agent(&e.user_id))
            } else if dt.ends_with("TRANSFER") {
                change(State::Transferred, agent(&e.user_id))
            } else {
                change(State::WrapUp, agent(&e.user_id))
            }
        }
        "acw" => change(State::Disconnected, agent(&e.user_id)),
        "customer.end" => change(State::Ended, "customer".into()),
        _ => None,
    };
    c.filter(|c| c.to != from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str) -> ProcessEvent {
        ProcessEvent {
            event_id: "e".into(),
            interaction_id: "c1".into(),
            event_type: kind.into(),
            queue_id: Some("q1".into()),
            user_id: Some("u1".into()),
            ..ProcessEvent::default()
        }
    }

    fn to(from: State, e: &ProcessEvent) -> Option<State> {
        next(from, e).map(|c| c.to)
    }

    #[test]
    fn a_call_walks_the_states() {
        let answered = ProcessEvent {
            acd_outcome: Some("ANSWERED".into()),
            answered_user_id: Some("u7".into()),
            ..ev("acd.end")
        };
        let end = ProcessEvent {
            disconnect_type: Some("CLIENT".into()),
            interacting_duration_ms: Some(60_000),
            ..ev("user.end")
        };
        let mut s = State::None;
        let mut walked = vec![];
        for e in [
            ev("customer.start"),
            ev("flow.start"),
            ev("flow.end"),
            ev("acd.start"),
            ev("user.start"),
            answered.clone(),
            end,
            ev("acw"),
            ev("customer.end"),
        ] {
            if let Some(c) = next(s, &e) {
                s = c.to;
                walked.push(s.as_str());
            }
        }
        assert_eq!(
            walked,
            [
                "created",
                "ivr",
                "queued",
                "alerting",
                "connected",
                "wrap-up",
                "disconnected",
                "ended"
            ]
        );
        assert_eq!(
            next(State::Alerting, &answered).map(|c| c.actor),
            Some("agent:u7".into())
        );
        assert_eq!(
            next(State::Ivr, &ev("acd.start")).map(|c| c.actor),
            Some("queue:q1".into())
        );
    }

    #[test]
    fn outcomes_transfers_and_the_terminal_state() {
        let acd = |o: &str| ProcessEvent {
            acd_outcome: Some(o.into()),
            ..ev("acd.end")
        };
        assert_eq!(
            to(State::Queued, &acd("ABANDON")),
            Some(State::Disconnected)
        );
        assert_eq!(to(State::Queued, &acd("FLOW_OUT")), Some(State::Ivr));
        assert_eq!(to(State::Queued, &acd("SOMETHING_NEW")), None);
        let uend = |dt: &str, talk: i64| ProcessEvent {
            disconnect_type: Some(dt.into()),
            interacting_duration_ms: Some(talk),
            ..ev("user.end")
        };
        assert_eq!(
            to(State::Alerting, &uend("NO_ANSWER_TRANSFER", 0)),
            Some(State::Queued)
        );
        assert_eq!(
            to(State::Connected, &uend("TRANSFER", 9_000)),
            Some(State::Transferred)
        );
        // Only the first start creates; nothing follows `ended`.
        assert_eq!(to(State::Queued, &ev("customer.start")), None);
        assert_eq!(to(State::None, &ev("outbound")), Some(State::Created));
        assert_eq!(to(State::Ended, &ev("acd.start")), None);
        // No change, no record; unknown kinds make none.
        assert_eq!(to(State::Queued, &ev("acd.start")), None);
        assert_eq!(to(State::Queued, &ev("attributes")), None);
        for s in State::ALL {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
    }
}
