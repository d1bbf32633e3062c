//! The activity vocabulary and the mapping from silver events to it
//! (`../shared/reference/genesys-events.md` §4), without Kafka.
//!
//! | event | activity | resource |
//! |---|---|---|
//! | `customer.start` | `Call Started` (voice, callback: `Callback Requested`), `Conversation Started` (digital); nothing if `outbound` started the case | customer |
//! | `outbound` | `Call Started`; nothing if the case already started (its `outbound` arrived late) | system |
//! | `flow.start` / `flow.end` | `IVR Entered` / `IVR Exited` (exit reason, transfer type) | system (flow id) |
//! | `acd.start` | `Queued` | queue |
//! | `user.start` | `Alerting` | agent |
//! | `acd.end` | `Answered`, `Abandoned`, `Flow-out` by `acd_outcome` (the hand-off's `TRANSFER` is no transfer) | queue |
//! | `user.end` | `Not Answered` (no-answer or timeout, nothing interacted), `Transferred` (a transfer disconnect type), else `Agent Disconnected`; `held_duration_ms` when the agent held the customer | agent |
//! | `acw` | `Wrap-up` (start = end − wrap-up duration; wrap-up code) | agent |
//! | `voicemail.end` | `Voicemail` (start = its `voicemail.start`) | queue |
//! | `attributes` | `Attributes Updated` (no attribute value) | system |
//! | `customer.end` | `Call Ended` / `Conversation Ended` (disconnect type) | customer |
//! | `flow.outcome`, `wrapup`, `contact`, `voicemail.start` | no activity | |
//!
//! Any other kind, or an `acd.end` outcome this build does not know, maps
//! to no activity and is counted: an activity is never invented.

use std::collections::BTreeMap;

use super::event::ProcessEvent;

/// The activities, in their default names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Activity {
    CallStarted,
    ConversationStarted,
    CallbackRequested,
    IvrEntered,
    IvrExited,
    Queued,
    Alerting,
    NotAnswered,
    Answered,
    Abandoned,
    FlowOut,
    Transferred,
    AgentDisconnected,
    WrapUp,
    Voicemail,
    AttributesUpdated,
    CallEnded,
    ConversationEnded,
    CaseClosed,
}

impl Activity {
    pub const ALL: [Activity; 19] = [
        Activity::CallStarted,
        Activity::ConversationStarted,
        Activity::CallbackRequested,
        Activity::IvrEntered,
        Activity::IvrExited,
        Activity::Queued,
        Activity::Alerting,
        Activity::NotAnswered,
        Activity::Answered,
        Activity::Abandoned,
        Activity::FlowOut,
        Activity::Transferred,
        Activity::AgentDisconnected,
        Activity::WrapUp,
        Activity::Voicemail,
        Activity::AttributesUpdated,
        Activity::CallEnded,
        Activity::ConversationEnded,
        Activity::CaseClosed,
    ];

    /// The default, BPMN-friendly name.
    pub fn default_name(self) -> &'static str {
        match self {
            Activity::CallStarted => "Call Started",
            Activity::ConversationStarted => "Conversation Started",
            Activity::CallbackRequested => "Callback Requested",
            Activity::IvrEntered => "IVR Entered",
            Activity::IvrExited => "IVR Exited",
            Activity::Queued => "Queued",
            Activity::Alerting => "Alerting",
            Activity::NotAnswered => "Not Answered",
            Activity::Answered => "Answered",
            Activity::Abandoned => "Abandoned",
            Activity::FlowOut => "Flow-out",
            Activity::Transferred => "Transferred",
            Activity::AgentDisconnected => "Agent Disconnected",
            Activity::WrapUp => "Wrap-up",
            Activity::Voicemail => "Voicemail",
            Activity::AttributesUpdated => "Attributes Updated",
            Activity::CallEnded => "Call Ended",
            Activity::ConversationEnded => "Conversation Ended",
            Activity::CaseClosed => "Case Closed",
        }
    }

    /// The activity of a default name.
    pub fn by_default_name(name: &str) -> Option<Activity> {
        Activity::ALL.into_iter().find(|a| a.default_name() == name)
    }
}

/// What an activity's resource is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceType {
    Queue,
    Agent,
    System,
    Customer,
}

impl ResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Queue => "queue",
            ResourceType::Agent => "agent",
            ResourceType::System => "system",
            ResourceType::Customer => "customer",
        }
    }
}

/// One activity an event makes, before the case numbers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub activity: Activity,
    /// When the activity has a duration (wrap-up, voicemail).
    pub start_ms: Option<i64>,
    pub resource_type: ResourceType,
    /// A Genesys id (queue, user, flow, participant), never PII.
    pub resource: Option<String>,
    /// Enum-like fields only (codes, outcomes, types), never free text.
    pub attributes: BTreeMap<&'static str, serde_json::Value>,
}

/// What one event maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapped {
    Activity(Draft),
    /// A known kind that makes no activity (or none here, e.g. the
    /// `customer.start` of a case `outbound` started).
    Nothing,
    /// A kind or outcome this build does not know (the label of the count).
    Unknown(&'static str),
}

/// What the mapping needs to know of the event's case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaseContext {
    /// A start activity was already made (an `outbound` before the
    /// `customer.start`).
    pub started: bool,
    /// The case's open `voicemail.start`, if any.
    pub voicemail_started_ms: Option<i64>,
}

fn digital(media: Option<&str>) -> bool {
    !matches!(
        media.map(str::to_ascii_uppercase).as_deref(),
        None | Some("VOICE") | Some("CALLBACK")
    )
}

fn attrs<const N: usize>(
    pairs: [(&'static str, &Option<String>); N],
) -> BTreeMap<&'static str, serde_json::Value> {
    pairs
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v.as_str().into())))
        .collect()
}

/// The no-answer disconnect types of an agent's alert (RONA).
fn no_answer(dt: &str) -> bool {
    matches!(dt, "NO_ANSWER_TRANSFER" | "TIMEOUT" | "NOT_ANSWERED")
}

/// Maps one event of a case.
pub fn map(e: &ProcessEvent, case: CaseContext) -> Mapped {
    let draft = |activity, resource_type, resource: &Option<String>, attributes| {
        Mapped::Activity(Draft {
            activity,
            start_ms: None,
            resource_type,
            resource: resource.clone(),
            attributes,
        })
    };
    let media = e.media_type.as_deref();
    match e.event_type.as_str() {
        "customer.start" => {
            if case.started {
                return Mapped::Nothing;
            }
            let a = if media.is_some_and(|m| m.eq_ignore_ascii_case("CALLBACK")) {
                Activity::CallbackRequested
            } else if digital(media) {
                Activity::ConversationStarted
            } else {
                Activity::CallStarted
            };
            draft(
                a,
                ResourceType::Customer,
                &e.participant_id,
                BTreeMap::new(),
            )
        }
        "outbound" if case.started => Mapped::Nothing,
        "outbound" => draft(
            Activity::CallStarted,
            ResourceType::System,
            &None,
            BTreeMap::new(),
        ),
        "flow.start" => draft(
            Activity::IvrEntered,
            ResourceType::System,
            &e.flow_id,
            attrs([("flow_type", &e.flow_type)]),
        ),
        "flow.end" => draft(
            Activity::IvrExited,
            ResourceType::System,
            &e.flow_id,
            attrs([
                ("flow_type", &e.flow_type),
                ("exit_reason", &e.exit_reason),
                ("transfer_type", &e.transfer_type),
                ("disconnect_type", &e.disconnect_type),
            ]),
        ),
        "acd.start" => draft(
            Activity::Queued,
            ResourceType::Queue,
            &e.queue_id,
            BTreeMap::new(),
        ),
        "acd.end" => {
            let a = match e.acd_outcome.as_deref() {
                Some("ANSWERED") => Activity::Answered,
                Some("ABANDON") => Activity::Abandoned,
                Some("FLOW_OUT") => Activity::FlowOut,
                _ => return Mapped::Unknown("acd_outcome"),
            };
            draft(
                a,
                ResourceType::Queue,
                &e.queue_id,
                attrs([
                    ("acd_outcome", &e.acd_outcome),
                    ("answered_user_id", &e.answered_user_id),
                ]),
            )
        }
        "user.start" => draft(
            Activity::Alerting,
            ResourceType::Agent,
            &e.user_id,
            BTreeMap::new(),
        ),
        "user.end" => {
            let dt = e.disconnect_type.as_deref().unwrap_or("");
            let interacted = e.interacting_duration_ms.is_some_and(|d| d > 0);
            let a = if no_answer(dt) && !interacted {
                Activity::NotAnswered
            } else if dt.ends_with("TRANSFER") {
                Activity::Transferred
            } else {
                Activity::AgentDisconnected
            };
            let mut attributes = attrs([("disconnect_type", &e.disconnect_type)]);
            if let Some(held) = e.held_duration_ms.filter(|h| *h >= 0) {
                attributes.insert("held_duration_ms", held.into());
            }
            draft(a, ResourceType::Agent, &e.user_id, attributes)
        }
        "acw" => Mapped::Activity(Draft {
            activity: Activity::WrapUp,
            start_ms: e
                .wrapup_duration_ms
                .filter(|d| *d >= 0)
                .map(|d| e.event_time_ms - d),
            resource_type: ResourceType::Agent,
            resource: e.user_id.clone(),
            attributes: attrs([("wrapup_code", &e.wrapup_code)]),
        }),
        "voicemail.end" => Mapped::Activity(Draft {
            activity: Activity::Voicemail,
            start_ms: case.voicemail_started_ms,
            resource_type: ResourceType::Queue,
            resource: e.queue_id.clone(),
            attributes: BTreeMap::new(),
        }),
        "attributes" => draft(
            Activity::AttributesUpdated,
            ResourceType::System,
            &None,
            BTreeMap::new(),
        ),
        "customer.end" => draft(
            if digital(media) {
                Activity::ConversationEnded
            } else {
                Activity::CallEnded
            },
            ResourceType::Customer,
            &e.participant_id,
            attrs([("disconnect_type", &e.disconnect_type)]),
        ),
        "flow.outcome" | "wrapup" | "contact" | "voicemail.start" => Mapped::Nothing,
        _ => Mapped::Unknown("event_type"),
    }
}

/// The names a topology gives the activities (a rename, or `None`: the
/// activity is dropped from the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocabulary {
    names: BTreeMap<Activity, Option<String>>,
}

impl Default for Vocabulary {
    fn default() -> Self {
        Vocabulary {
            names: Activity::ALL
                .into_iter()
                .map(|a| (a, Some(a.default_name().to_string())))
                .collect(),
        }
    }
}

impl Vocabulary {
    /// The activity's name in the log; `None` when dropped.
    pub fn name(&self, a: Activity) -> Option<&str> {
        self.names.get(&a).and_then(|n| n.as_deref())
    }

    pub fn rename(&mut self, a: Activity, name: String) {
        self.names.insert(a, Some(name));
    }

    pub fn drop_activity(&mut self, a: Activity) {
        self.names.insert(a, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(ty: &str) -> ProcessEvent {
        ProcessEvent {
            event_id: "e".into(),
            interaction_id: "c".into(),
            event_type: ty.into(),
            event_time_ms: 100_000,
            media_type: Some("VOICE".into()),
            queue_id: Some("q1".into()),
            user_id: Some("agent-1".into()),
            participant_id: Some("p1".into()),
            ..ProcessEvent::default()
        }
    }

    fn activity(e: &ProcessEvent) -> Option<Activity> {
        match map(e, CaseContext::default()) {
            Mapped::Activity(d) => Some(d.activity),
            _ => None,
        }
    }

    #[test]
    fn starts_by_media_and_the_outbound_start() {
        assert_eq!(activity(&ev("customer.start")), Some(Activity::CallStarted));
        let chat = ProcessEvent {
            media_type: Some("CHAT".into()),
            ..ev("customer.start")
        };
        assert_eq!(activity(&chat), Some(Activity::ConversationStarted));
        let cb = ProcessEvent {
            media_type: Some("CALLBACK".into()),
            ..ev("customer.start")
        };
        assert_eq!(activity(&cb), Some(Activity::CallbackRequested));
        assert_eq!(activity(&ev("outbound")), Some(Activity::CallStarted));
        let after_outbound = CaseContext {
            started: true,
            ..CaseContext::default()
        };
        assert_eq!(map(&ev("customer.start"), after_outbound), Mapped::Nothing);
        // One start per case: an `outbound` that arrives after the
        // `customer.start` (late) makes none.
        assert_eq!(map(&ev("outbound"), after_outbound), Mapped::Nothing);
        let end = ProcessEvent {
            media_type: Some("EMAIL".into()),
            ..ev("customer.end")
        };
        assert_eq!(activity(&end), Some(Activity::ConversationEnded));
        assert_eq!(activity(&ev("customer.end")), Some(Activity::CallEnded));
    }

    #[test]
    fn acd_outcomes_and_the_hand_off_is_answered_not_transferred() {
        let end = |outcome: &str| ProcessEvent {
            acd_outcome: Some(outcome.into()),
            disconnect_type: Some("TRANSFER".into()),
            ..ev("acd.end")
        };
        assert_eq!(activity(&end("ANSWERED")), Some(Activity::Answered));
        assert_eq!(activity(&end("ABANDON")), Some(Activity::Abandoned));
        assert_eq!(activity(&end("FLOW_OUT")), Some(Activity::FlowOut));
        assert_eq!(
            map(&end("OutdatedSdkVersion"), CaseContext::default()),
            Mapped::Unknown("acd_outcome")
        );
        let Mapped::Activity(d) = map(&end("ANSWERED"), CaseContext::default()) else {
            panic!("an activity")
        };
        assert_eq!(d.resource_type, ResourceType::Queue);
        assert_eq!(d.resource.as_deref(), Some("q1"));
        assert_eq!(
            d.attributes.get("acd_outcome").and_then(|v| v.as_str()),
            Some("ANSWERED")
        );
    }

    #[test]
    fn agent_ends_rona_transfer_and_disconnect() {
        let end = |dt: &str, talk: i64| ProcessEvent {
            disconnect_type: Some(dt.into()),
            interacting_duration_ms: Some(talk),
            ..ev("user.end")
        };
        assert_eq!(
            activity(&end("NO_ANSWER_TRANSFER", 0)),
            Some(Activity::NotAnswered)
        );
        assert_eq!(activity(&end("TIMEOUT", 0)), Some(Activity::NotAnswered));
        assert_eq!(
            activity(&end("TRANSFER", 60_000)),
            Some(Activity::Transferred)
        );
        assert_eq!(
            activity(&end("CONSULT_TRANSFER", 60_000)),
            Some(Activity::Transferred)
        );
        assert_eq!(
            activity(&end("PEER", 60_000)),
            Some(Activity::AgentDisconnected)
        );
        assert_eq!(
            activity(&end("CLIENT", 60_000)),
            Some(Activity::AgentDisconnected)
        );
        assert_eq!(activity(&ev("user.start")), Some(Activity::Alerting));
    }

    #[test]
    fn an_agent_end_carries_the_hold_time_when_there_was_one() {
        let end = |held: Option<i64>| ProcessEvent {
            disconnect_type: Some("CLIENT".into()),
            interacting_duration_ms: Some(60_000),
            held_duration_ms: held,
            ..ev("user.end")
        };
        let held = |e: &ProcessEvent| match map(e, CaseContext::default()) {
            Mapped::Activity(d) => d.attributes.get("held_duration_ms").cloned(),
            other => panic!("{other:?}"),
        };
        assert_eq!(held(&end(Some(45_000))), Some(45_000.into()));
        assert_eq!(held(&end(None)), None);
        assert_eq!(held(&end(Some(-1))), None, "a negative hold is no hold");
    }

    #[test]
    fn wrap_up_and_voicemail_carry_their_start() {
        let acw = ProcessEvent {
            wrapup_duration_ms: Some(30_000),
            wrapup_code: Some("code-1".into()),
            ..ev("acw")
        };
        let Mapped::Activity(d) = map(&acw, CaseContext::default()) else {
            panic!("an activity")
        };
        assert_eq!((d.activity, d.start_ms), (Activity::WrapUp, Some(70_000)));
        assert_eq!(
            d.attributes.get("wrapup_code").and_then(|v| v.as_str()),
            Some("code-1")
        );
        let vm = CaseContext {
            voicemail_started_ms: Some(90_000),
            ..CaseContext::default()
        };
        let Mapped::Activity(d) = map(&ev("voicemail.end"), vm) else {
            panic!("an activity")
        };
        assert_eq!(
            (d.activity, d.start_ms),
            (Activity::Voicemail, Some(90_000))
        );
    }

    #[test]
    fn kinds_without_activity_and_unknown_kinds() {
        for k in ["flow.outcome", "wrapup", "contact", "voicemail.start"] {
            assert_eq!(map(&ev(k), CaseContext::default()), Mapped::Nothing, "{k}");
        }
        assert_eq!(
            map(&ev("screen.share"), CaseContext::default()),
            Mapped::Unknown("event_type")
        );
        assert_eq!(
            activity(&ev("attributes")),
            Some(Activity::AttributesUpdated)
        );
        assert_eq!(activity(&ev("flow.start")), Some(Activity::IvrEntered));
        assert_eq!(activity(&ev("flow.end")), Some(Activity::IvrExited));
        assert_eq!(activity(&ev("acd.start")), Some(Activity::Queued));
    }

    #[test]
    fn a_vocabulary_renames_and_drops() {
        let mut v = Vocabulary::default();
        assert_eq!(v.name(Activity::FlowOut), Some("Flow-out"));
        v.rename(Activity::Queued, "Waiting".into());
        v.drop_activity(Activity::AttributesUpdated);
        assert_eq!(v.name(Activity::Queued), Some("Waiting"));
        assert_eq!(v.name(Activity::AttributesUpdated), None);
        assert_eq!(Activity::by_default_name("Wrap-up"), Some(Activity::WrapUp));
        assert_eq!(Activity::by_default_name("Lunch"), None);
    }
}
