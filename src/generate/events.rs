//! The events of a conversation, one method per kind (`customer.start`,
//! `flow.*`, `attributes`, `contact`, `outbound`, `acd.*`, `user.*`, `acw`
//! and `wrapup`), each with the fields Genesys sends for it.

use rand::Rng;

use super::config::Media;
use super::conversation::{Disc, Ix, Part, Pre};
use super::pools::Flow;
use super::random::{lognorm, pick, uuid_str};
use super::records::{render_obj, Field, Val};
use crate::model::EventKind;

/// A queue leg opened by `acd.start`, for its `acd.end`.
pub(super) struct AcdLeg {
    part: Part,
    q: usize,
    priority: i64,
    skills: Vec<String>,
    routing: &'static str,
}

impl Ix<'_> {
    pub(super) fn customer_start(&mut self, t: i64) {
        let p = self.cust_part.clone();
        let mut f = self.head(&p, None);
        if let Some(o) = &self.ext_org {
            f.push(("externalOrganizationId", Val::S(o.clone())));
        }
        if let Some(c) = &self.ext_contact {
            f.push(("externalContactId", Val::S(c.clone())));
        }
        if matches!(self.media, Media::Chat | Media::Message) && self.p(0.5) {
            let j = render_obj(&[
                ("sessionId", Val::S(uuid_str(&mut self.rng))),
                ("sessionIdType", Val::S("web".into())),
                ("actionId", Val::S(uuid_str(&mut self.rng))),
                ("actionMapId", Val::S(uuid_str(&mut self.rng))),
            ]);
            f.push(("journeyContext", Val::R(j)));
        }
        self.emit(EventKind::CustomerStart, t, f);
    }

    pub(super) fn customer_end(&mut self, t: i64, disconnect: &'static str, interacting: i64) {
        let p = self.cust_part.clone();
        let mut f = self.head(&p, Some(disconnect));
        f.push(("interactingDurationMs", Val::I(interacting.max(0))));
        if let Some(o) = &self.ext_org {
            f.push(("externalOrganizationId", Val::S(o.clone())));
        }
        if let Some(c) = &self.ext_contact {
            f.push(("externalContactId", Val::S(c.clone())));
        }
        self.emit(EventKind::CustomerEnd, t, f);
    }

    /// `customer.end` after every other event of the conversation.
    pub(super) fn finish(&mut self, t0: i64, d: Disc) {
        let last = self.evs.iter().map(|e| e.time).max().unwrap_or(t0);
        let t = last + self.u(150, 2_500);
        self.customer_end(t, d.customer_disconnect, d.at - t0);
    }

    fn flow_fields(&self, f: &mut Vec<Field>, flow_type: &str, flow: &Flow) {
        f.push(("flowType", Val::S(flow_type.to_string())));
        f.push(("flowId", Val::S(flow.id.clone())));
        f.push(("flowVersion", Val::S(flow.version.clone())));
    }

    pub(super) fn flow_start(&mut self, t: i64, fp: &Part, flow_type: &str, flow: &Flow) {
        let mut f = self.head(fp, None);
        self.flow_fields(&mut f, flow_type, flow);
        self.emit(EventKind::FlowStart, t, f);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn flow_end(
        &mut self,
        t: i64,
        fp: &Part,
        flow_type: &str,
        flow: &Flow,
        disconnect: &'static str,
        connected: i64,
        exit: &'static str,
        transfer: Option<&'static str>,
    ) {
        let mut f = self.head(fp, Some(disconnect));
        self.flow_fields(&mut f, flow_type, flow);
        f.push(("connectedDurationMs", Val::I(connected)));
        f.push(("exitReason", Val::S(exit.into())));
        if let Some(tt) = transfer {
            f.push(("transferType", Val::S(tt.into())));
        }
        self.emit(EventKind::FlowEnd, t, f);
    }

    pub(super) fn flow_outcome(
        &mut self,
        t: i64,
        fp: &Part,
        flow_type: &str,
        flow: &Flow,
        started: i64,
    ) {
        let mut f = self.head(fp, None);
        self.flow_fields(&mut f, flow_type, flow);
        let outcome = pick(&mut self.rng, &self.g.outcomes).clone();
        f.push(("flowOutcomeId", Val::S(outcome)));
        f.push(("flowOutcomeStartTime", Val::I(started)));
        f.push(("flowOutcomeEndTime", Val::I(t)));
        let value = if self.p(0.75) { "SUCCESS" } else { "FAILURE" };
        f.push(("flowOutcomeValue", Val::S(value.into())));
        let n = self.rng.gen_range(1..=3);
        let mut ms = Vec::with_capacity(n);
        for i in 0..n {
            let m = pick(&mut self.rng, &self.g.milestones).clone();
            let at = started + (t - started) * (i as i64 + 1) / (n as i64 + 1);
            ms.push(render_obj(&[
                ("milestoneId", Val::S(m)),
                ("milestoneTime", Val::I(at)),
            ]));
        }
        f.push(("flowMilestones", Val::R(format!("[{}]", ms.join(",")))));
        self.emit(EventKind::FlowOutcome, t, f);
    }

    pub(super) fn attributes(&mut self, t: i64) {
        let mut m: Vec<(&'static str, String)> = Vec::new();
        if self.p(0.9) {
            m.push(("context.firstName", self.cust.first.to_string()));
        }
        if self.p(0.7) {
            m.push(("context.lastName", self.cust.last.to_string()));
        }
        if self.p(0.6) {
            m.push(("context.email", self.cust.email.clone()));
        }
        if self.p(0.6) {
            let ph = self.phone_written();
            m.push(("context.phoneNumber", ph));
        }
        if self.p(0.15) {
            m.push(("context.addressStreet", self.cust.street.clone()));
        }
        let lang = *pick(&mut self.rng, &["en-US", "es-US", "fr-CA", "en-GB"]);
        m.push(("ivr.language", lang.into()));
        let intent = *pick(
            &mut self.rng,
            &[
                "billing",
                "technical_support",
                "sales",
                "cancellation",
                "order_status",
            ],
        );
        m.push(("ivr.intent", intent.into()));
        let tier = *pick(&mut self.rng, &["gold", "silver", "bronze"]);
        m.push(("context.customerTier", tier.into()));
        let opt_in = if self.p(0.5) { "true" } else { "false" };
        m.push(("surveyOptIn", opt_in.into()));
        let comm = render_obj(&[
            ("id", Val::S(self.cust_part.sid.clone())),
            ("mediaType", Val::S(self.media_name.clone())),
        ]);
        let f = vec![
            ("conversationId", Val::S(self.cid.clone())),
            ("participantId", Val::S(self.cust_part.pid.clone())),
            ("attributes", Val::M(m)),
            ("communications", Val::R(format!("[{comm}]"))),
        ];
        self.emit(EventKind::Attributes, t, f);
    }

    pub(super) fn contact(&mut self, t: i64) {
        let p = self.cust_part.clone();
        let mut f = self.head(&p, None);
        if let Some(o) = self.cust.external_org_id.clone() {
            f.push(("externalOrganizationId", Val::S(o)));
        }
        f.push((
            "externalContactId",
            Val::S(self.cust.external_contact_id.clone()),
        ));
        self.emit(EventKind::Contact, t, f);
    }

    pub(super) fn outbound_init(&mut self, t: i64) {
        let p = self.cust_part.clone();
        let mut f = self.head(&p, None);
        let (camp, list) = pick(&mut self.rng, &self.g.campaigns).clone();
        f.push(("outboundCampaignId", Val::S(camp)));
        f.push(("outboundContactListId", Val::S(list)));
        f.push(("outboundContactId", Val::S(uuid_str(&mut self.rng))));
        self.emit(EventKind::Outbound, t, f);
    }

    pub(super) fn acd_start(&mut self, t: i64, q: usize, routing: Option<&'static str>) -> AcdLeg {
        let part = self.part();
        let priority = *pick(&mut self.rng, &[0, 0, 10, 40, 50, 100]);
        let skills = if self.p(0.5) {
            let n = self.rng.gen_range(1..=2);
            (0..n)
                .map(|_| pick(&mut self.rng, &self.g.skills).clone())
                .collect()
        } else {
            Vec::new()
        };
        let routing = routing.unwrap_or(if self.p(0.85) { "STANDARD" } else { "BULLSEYE" });
        let mut f = self.head(&part, None);
        f.push(("queueId", Val::S(self.g.queues[q].clone())));
        f.push(("routingPriority", Val::I(priority)));
        if !skills.is_empty() {
            f.push(("requestedRoutingSkillIds", Val::L(skills.clone())));
        }
        f.push(("skillExpressionApplied", Val::B(self.p(0.1))));
        self.emit(EventKind::AcdStart, t, f);
        AcdLeg {
            part,
            q,
            priority,
            skills,
            routing,
        }
    }

    pub(super) fn acd_end(
        &mut self,
        t: i64,
        leg: &AcdLeg,
        disconnect: &'static str,
        outcome: &'static str,
        answered: Option<usize>,
        connected: i64,
    ) {
        let mut f = self.head(&leg.part, Some(disconnect));
        f.push(("queueId", Val::S(self.g.queues[leg.q].clone())));
        f.push(("acdOutcome", Val::S(outcome.into())));
        if let Some(a) = answered {
            f.push(("answeredUserId", Val::S(self.g.agents[a].clone())));
        }
        f.push(("requestedRoutings", Val::L(vec![leg.routing.to_string()])));
        if answered.is_some() {
            f.push(("usedRouting", Val::S(leg.routing.into())));
        }
        f.push(("routingPriority", Val::I(leg.priority)));
        f.push(("connectedDurationMs", Val::I(connected)));
        if !leg.skills.is_empty() {
            f.push(("requestedRoutingSkillIds", Val::L(leg.skills.clone())));
        }
        if self.p(0.1) {
            let e = pick(&mut self.rng, &self.g.skill_expressions).clone();
            f.push(("requestedSkillExpressionIds", Val::L(vec![e])));
        }
        if self.p(0.2) {
            f.push((
                "requestedLanguageId",
                Val::S(pick(&mut self.rng, &self.g.languages).clone()),
            ));
        }
        if self.media == Media::Voice && self.p(0.5) {
            f.push(("flowType", Val::S("inqueuecall".into())));
        }
        self.emit(EventKind::AcdEnd, t, f);
    }

    pub(super) fn user_start(&mut self, t: i64, up: &Part, agent: usize, q: Option<usize>) {
        let mut f = self.head(up, None);
        f.push(("userId", Val::S(self.g.agents[agent].clone())));
        if let Some(q) = q {
            f.push(("queueId", Val::S(self.g.queues[q].clone())));
        }
        self.emit(EventKind::UserStart, t, f);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn user_end(
        &mut self,
        t: i64,
        up: &Part,
        agent: usize,
        q: Option<usize>,
        disconnect: &'static str,
        interacting: i64,
        held: i64,
        alerting: i64,
        pre: Pre,
    ) {
        let mut f = self.head(up, Some(disconnect));
        f.push(("userId", Val::S(self.g.agents[agent].clone())));
        if let Some(q) = q {
            f.push(("queueId", Val::S(self.g.queues[q].clone())));
        }
        f.push(("interactingDurationMs", Val::I(interacting)));
        f.push(("heldDurationMs", Val::I(held)));
        f.push(("alertingDurationMs", Val::I(alerting)));
        f.push(("contactingDurationMs", Val::I(pre.contacting)));
        f.push(("dialingDurationMs", Val::I(pre.dialing)));
        f.push(("callbackDurationMs", Val::I(pre.callback)));
        self.emit(EventKind::UserEnd, t, f);
    }

    /// `acw` then `wrapup` for one agent leg that ended at `end`; returns
    /// the `acw` event's index and the wrap-up duration.
    pub(super) fn after_call_work(
        &mut self,
        up: &Part,
        agent: usize,
        q: Option<usize>,
        end: i64,
    ) -> (usize, i64) {
        let dur = match self.media {
            Media::Email | Media::Message => self.u(10_000, 240_000),
            _ => lognorm(&mut self.rng, 30_000.0, 0.8, 3_000, 600_000),
        };
        let code = pick(&mut self.rng, &self.g.wrapup_codes).clone();
        let notes = self.notes();
        let t_acw = end + dur;
        for (kind, t) in [
            (EventKind::Acw, t_acw),
            (EventKind::Wrapup, t_acw + self.u(40, 1_500)),
        ] {
            let mut f = self.head(up, None);
            if kind == EventKind::Acw {
                f.push(("userId", Val::S(self.g.agents[agent].clone())));
            }
            if let Some(q) = q {
                f.push(("queueId", Val::S(self.g.queues[q].clone())));
            }
            f.push(("wrapupCode", Val::S(code.clone())));
            if let Some(n) = &notes {
                f.push(("wrapupNotes", Val::S(n.clone())));
            }
            f.push(("wrapupDurationMs", Val::I(dur)));
            self.emit(kind, t, f);
        }
        (self.evs.len() - 2, dur)
    }
}
