//! The lifecycles of a conversation (§4 of the reference): inbound voice,
//! chat and message through an IVR or bot flow; callbacks; email; outbound
//! campaign and agent-dialled calls; and the queue leg they share (abandon,
//! flow-out to voicemail or an in-queue flow, RONA, answer, transfers,
//! wrap-up).

use rand::Rng;

use super::config::Media;
use super::conversation::{Disc, Ix, LegDraft, Part, Pre};
use super::pools::{CALLBACK_QUEUES, CAMPAIGN_QUEUES, EMAIL_QUEUES, VOICE_QUEUES};
use super::random::{lognorm, pick};
use super::records::{Planned, Val};
use crate::model::EventKind;

/// A built conversation: its events in time order, its PII candidates
/// (with the value each implies) and its queue legs.
pub(super) type Built = (
    Vec<Planned>,
    Vec<(String, Option<String>)>,
    Vec<super::truth::TruthLeg>,
);

/// How a queue leg goes: wait, abandon and flow-out odds, routing.
struct RouteOpts {
    wait_median: f64,
    p_abandon: f64,
    p_flow_out: f64,
    routing: Option<&'static str>,
    pre: Pre,
}

impl Ix<'_> {
    /// The conversation's events in time order, and the PII candidates
    /// (with a value implied by each: a card's digits-only form).
    pub(super) fn build(mut self, t0: i64) -> Built {
        match self.media {
            Media::Voice if self.direction == "OUTBOUND" => self.outbound_voice(t0),
            Media::Callback => self.callback(t0),
            Media::Email => self.email(t0),
            _ => self.inbound(t0),
        }
        // Strictly increasing event times in generation order (a stable
        // sort: `at[i]` is where event `i` went).
        let mut order: Vec<usize> = (0..self.evs.len()).collect();
        order.sort_by_key(|&i| self.evs[i].time);
        let mut at = vec![0usize; order.len()];
        for (pos, &i) in order.iter().enumerate() {
            at[i] = pos;
        }
        let mut evs: Vec<Option<Planned>> = std::mem::take(&mut self.evs)
            .into_iter()
            .map(Some)
            .collect();
        self.evs = order.iter().filter_map(|&i| evs[i].take()).collect();
        for i in 1..self.evs.len() {
            if self.evs[i].time <= self.evs[i - 1].time {
                self.evs[i].time = self.evs[i - 1].time + 1;
            }
        }
        let time = |i: usize| self.evs[at[i]].time;
        let legs = self
            .legs
            .iter()
            .map(|l| super::truth::TruthLeg {
                interaction_id: self.cid.clone(),
                queue_id: self.g.queues[l.queue].clone(),
                media_type: self.media_name.clone(),
                offered_ms: time(l.start),
                end: l.end.map(|(e, outcome, wait_ms)| super::truth::LegEnd {
                    at_ms: time(e),
                    outcome,
                    wait_ms,
                }),
                handle: match (l.user_end, l.acw) {
                    (Some((_, talk_ms, held_ms)), Some((a, acw_ms))) => {
                        Some(super::truth::LegHandle {
                            at_ms: time(a),
                            talk_ms,
                            held_ms,
                            acw_ms,
                        })
                    }
                    _ => None,
                },
                transfer_ms: l.user_end.filter(|_| l.transfer).map(|(u, _, _)| time(u)),
            })
            .collect();
        let card = (
            self.cust.card_written.clone(),
            self.cust.card_digits.clone(),
        );
        let pii = self
            .pii
            .into_iter()
            .map(|v| {
                let implied = (v == card.0).then(|| card.1.clone());
                (v, implied)
            })
            .collect();
        (self.evs, pii, legs)
    }

    // -- lifecycles -----------------------------------------------------

    fn inbound(&mut self, t0: i64) {
        let g = self.g;
        self.customer_start(t0);
        let mut t = t0 + self.u(40, 400);
        let (flow_type, flow) = match self.media {
            Media::Voice => ("INBOUNDCALL", pick(&mut self.rng, &g.ivr_flows)),
            Media::Chat => ("INBOUNDCHAT", pick(&mut self.rng, &g.chat_flows)),
            _ => ("INBOUNDSHORTMESSAGE", pick(&mut self.rng, &g.message_flows)),
        };
        let fp = self.part();
        self.flow_start(t, &fp, flow_type, flow);
        let flow_len = match self.media {
            Media::Voice => lognorm(&mut self.rng, 35_000.0, 0.6, 4_000, 400_000),
            _ => lognorm(&mut self.rng, 25_000.0, 0.7, 3_000, 300_000),
        };
        let p_attr = if self.media == Media::Voice {
            0.6
        } else {
            0.85
        };
        if self.p(p_attr) {
            let at = t + flow_len * self.u(20, 60) / 100;
            self.attributes(at);
        }
        if self.p(0.5) {
            let at = t + flow_len * self.u(65, 95) / 100;
            self.flow_outcome(at, &fp, flow_type, flow, t);
        }
        t += flow_len;
        if self.p(0.05) {
            // Hung up in the IVR / bot.
            self.flow_end(
                t,
                &fp,
                flow_type,
                flow,
                "PEER",
                flow_len,
                "DISCONNECT",
                None,
            );
            self.finish(
                t0,
                Disc {
                    at: t,
                    customer_disconnect: "ENDPOINT",
                },
            );
            return;
        }
        self.flow_end(
            t,
            &fp,
            flow_type,
            flow,
            "TRANSFER",
            flow_len,
            "TRANSFER",
            Some("ACD"),
        );
        let range = self.home_queues();
        let q = self.queue_in(range);
        let (wait_median, p_abandon, p_flow_out) = match self.media {
            Media::Voice => (25_000.0, 0.09, 0.04),
            Media::Message => (90_000.0, 0.05, 0.02),
            _ => (40_000.0, 0.07, 0.02),
        };
        let opts = RouteOpts {
            wait_median,
            p_abandon,
            p_flow_out,
            routing: None,
            pre: Pre::default(),
        };
        let t_q = t + self.u(20, 300);
        let d = self.routed(t_q, q, 0, &opts);
        self.finish(t0, d);
    }

    fn callback(&mut self, t0: i64) {
        if self.p(0.3) {
            self.callback_scheduled = Some(t0 + self.u(60_000, 3_600_000));
        }
        self.customer_start(t0);
        if self.p(0.4) {
            let at = t0 + self.u(50, 400);
            self.attributes(at);
        }
        let q = self.queue_in(CALLBACK_QUEUES);
        let pre = Pre {
            contacting: 0,
            dialing: self.u(3_000, 20_000),
            callback: self.u(5_000, 60_000),
        };
        let opts = RouteOpts {
            wait_median: 300_000.0,
            p_abandon: 0.02,
            p_flow_out: 0.0,
            routing: None,
            pre,
        };
        let t_q = t0 + self.u(500, 1_500);
        let d = self.routed(t_q, q, 0, &opts);
        self.finish(t0, d);
    }

    fn email(&mut self, t0: i64) {
        let g = self.g;
        self.customer_start(t0);
        let flow = pick(&mut self.rng, &g.email_flows);
        let fp = self.part();
        let t = t0 + self.u(100, 800);
        self.flow_start(t, &fp, "INBOUNDEMAIL", flow);
        let len = self.u(800, 5_000);
        self.flow_end(
            t + len,
            &fp,
            "INBOUNDEMAIL",
            flow,
            "TRANSFER",
            len,
            "TRANSFER",
            Some("ACD"),
        );
        let q = self.queue_in(EMAIL_QUEUES);
        let opts = RouteOpts {
            wait_median: 1_200_000.0,
            p_abandon: 0.0,
            p_flow_out: 0.02,
            routing: None,
            pre: Pre::default(),
        };
        let t_q = t + len + self.u(20, 300);
        let d = self.routed(t_q, q, 0, &opts);
        self.finish(t0, d);
    }

    fn outbound_voice(&mut self, t0: i64) {
        if self.p(0.6) {
            // Campaign call.
            self.outbound_init(t0);
            let ring = self.u(4_000, 25_000);
            if self.p(0.25) {
                let dt = *pick(
                    &mut self.rng,
                    &["UNCALLABLE", "ENDPOINT", "ENDPOINT", "SYSTEM"],
                );
                let end = t0 + ring + self.u(100, 2_000);
                self.customer_end(end, dt, 0);
                return;
            }
            let t = t0 + ring;
            self.customer_start(t);
            let q = self.queue_in(CAMPAIGN_QUEUES);
            let pre = Pre {
                contacting: self.u(500, 3_000),
                dialing: 0,
                callback: 0,
            };
            let opts = RouteOpts {
                wait_median: 900.0,
                p_abandon: 0.03,
                p_flow_out: 0.0,
                routing: Some("PREDICTIVE"),
                pre,
            };
            let t_q = t + self.u(20, 200);
            let d = self.routed(t_q, q, 1, &opts);
            self.finish(t0, d);
        } else {
            // Agent-dialled call.
            self.customer_start(t0);
            let q = if self.p(0.5) {
                Some(self.queue_in(VOICE_QUEUES))
            } else {
                None
            };
            let agent = self.agent_for(q.unwrap_or(0), None);
            let up = self.part();
            let t = t0 + self.u(10, 200);
            self.user_start(t, &up, agent, q);
            let dialing = self.u(3_000, 20_000);
            let pre = Pre {
                contacting: 0,
                dialing,
                callback: 0,
            };
            let d = self.agent_work(&up, agent, q, t, 0, 1, pre);
            self.finish(t0, d);
        }
    }

    /// One queue leg from `acd.start` at `t_q`; returns how the customer
    /// side ended.
    fn routed(&mut self, t_q: i64, q: usize, depth: u32, o: &RouteOpts) -> Disc {
        let leg = self.acd_start(t_q, q, o.routing);
        let li = self.legs.len();
        self.legs.push(LegDraft {
            queue: q,
            start: self.evs.len() - 1,
            ..LegDraft::default()
        });
        let (lo, hi) = match self.media {
            Media::Email => (10_000, 14_400_000),
            Media::Callback => (5_000, 3_600_000),
            _ => (300, 1_200_000),
        };
        let wait = lognorm(&mut self.rng, o.wait_median, 1.0, lo, hi);
        let r = self.rng.gen::<f64>();
        if r < o.p_abandon {
            let t_ab = t_q + wait;
            if wait > 3_000 && self.p(0.3) {
                // Abandoned while an agent was being alerted.
                let agent = self.agent_for(q, None);
                let up = self.part();
                let alert = self.u(1_000, (wait - 1_000).min(20_000));
                self.user_start(t_ab - alert, &up, agent, Some(q));
                let t_ue = t_ab + self.u(5, 80);
                self.user_end(
                    t_ue,
                    &up,
                    agent,
                    Some(q),
                    "PEER",
                    0,
                    0,
                    t_ue - (t_ab - alert),
                    Pre::default(),
                );
            }
            self.acd_end(t_ab, &leg, "PEER", "ABANDON", None, wait);
            self.legs[li].end = Some((self.evs.len() - 1, "ABANDON", wait));
            return Disc {
                at: t_ab,
                customer_disconnect: "ENDPOINT",
            };
        }
        if r < o.p_abandon + o.p_flow_out {
            let t_fo = t_q + wait;
            self.acd_end(t_fo, &leg, "TRANSFER", "FLOW_OUT", None, wait);
            self.legs[li].end = Some((self.evs.len() - 1, "FLOW_OUT", wait));
            if self.media == Media::Voice && self.p(0.6) {
                let vp = self.part();
                let vs = t_fo + self.u(300, 2_000);
                let mut f = self.head(&vp, None);
                f.push(("queueId", Val::S(self.g.queues[q].clone())));
                self.emit(EventKind::VoicemailStart, vs, f);
                let dur = self.u(8_000, 120_000);
                let mut f = self.head(&vp, Some("ENDPOINT"));
                f.push(("queueId", Val::S(self.g.queues[q].clone())));
                f.push(("voicemailDurationMs", Val::I(dur)));
                self.emit(EventKind::VoicemailEnd, vs + dur, f);
                return Disc {
                    at: vs + dur,
                    customer_disconnect: "ENDPOINT",
                };
            }
            let flow_type = match self.media {
                Media::Voice => "INQUEUECALL",
                Media::Email => "INQUEUEEMAIL",
                _ => "INQUEUESHORTMESSAGE",
            };
            let g = self.g;
            let flow = pick(&mut self.rng, &g.inqueue_flows);
            let fp = self.part();
            let fs = t_fo + self.u(100, 1_000);
            self.flow_start(fs, &fp, flow_type, flow);
            let len = self.u(5_000, 60_000);
            self.flow_end(
                fs + len,
                &fp,
                flow_type,
                flow,
                "CLIENT",
                len,
                "DISCONNECT",
                None,
            );
            return Disc {
                at: fs + len,
                customer_disconnect: "PEER",
            };
        }
        // Answered, maybe after one or two RONAs.
        let mut offer = t_q + wait;
        let mut last_agent = None;
        let mut ronas = 0;
        while ronas < 2 && self.p(0.07) {
            ronas += 1;
            let agent = self.agent_for(q, last_agent);
            let up = self.part();
            self.user_start(offer, &up, agent, Some(q));
            let alert = self.u(12_000, 30_000);
            let dt = if self.p(0.85) {
                "NO_ANSWER_TRANSFER"
            } else {
                "TIMEOUT"
            };
            self.user_end(
                offer + alert,
                &up,
                agent,
                Some(q),
                dt,
                0,
                0,
                alert,
                Pre::default(),
            );
            offer += alert + self.u(500, 8_000);
            last_agent = Some(agent);
        }
        let agent = self.agent_for(q, last_agent);
        let up = self.part();
        self.user_start(offer, &up, agent, Some(q));
        let alert = match self.media {
            Media::Voice => self.u(2_000, 12_000),
            Media::Email => self.u(500, 5_000),
            _ => self.u(1_000, 20_000),
        };
        let answer = offer + alert;
        self.acd_end(
            answer,
            &leg,
            "TRANSFER",
            "ANSWERED",
            Some(agent),
            answer - t_q,
        );
        self.legs[li].end = Some((self.evs.len() - 1, "ANSWERED", answer - t_q));
        self.answering = Some(li);
        self.agent_work(&up, agent, Some(q), answer, alert, depth, o.pre)
    }

    /// The answered agent leg from `answer`; handles transfers, the email
    /// second action and wrap-up.
    #[allow(clippy::too_many_arguments)]
    fn agent_work(
        &mut self,
        up: &Part,
        agent: usize,
        q: Option<usize>,
        answer: i64,
        alert: i64,
        depth: u32,
        pre: Pre,
    ) -> Disc {
        // The queue leg this agent answered, if it came from a queue.
        let li = self.answering.take();
        let talk = match self.media {
            Media::Voice => lognorm(&mut self.rng, 240_000.0, 0.7, 15_000, 3_600_000),
            Media::Chat | Media::Other => lognorm(&mut self.rng, 420_000.0, 0.6, 30_000, 3_600_000),
            Media::Message => lognorm(&mut self.rng, 900_000.0, 0.6, 60_000, 7_200_000),
            Media::Email => lognorm(&mut self.rng, 300_000.0, 0.6, 30_000, 3_600_000),
            Media::Callback => lognorm(&mut self.rng, 200_000.0, 0.7, 15_000, 3_600_000),
        };
        let hold = if matches!(self.media, Media::Voice | Media::Callback) && self.p(0.3) {
            self.u(8_000, 180_000)
        } else {
            0
        };
        let work_start = answer + pre.contacting + pre.dialing + pre.callback;
        if self.p(0.15) {
            let at = work_start + talk / 4;
            self.contact(at);
        }
        if self.p(0.1) {
            let at = work_start + talk / 3;
            self.attributes(at);
        }
        let transferable = matches!(self.media, Media::Voice | Media::Chat | Media::Message);
        if depth == 0 && transferable && self.p(0.12) {
            if self.media == Media::Voice && self.p(0.4) {
                // Consult transfer: the first agent holds the customer and
                // dials a colleague, then leaves.
                let q2 = q.unwrap_or(0);
                let a2 = self.agent_for(q2, Some(agent));
                let ub = self.part();
                let t1 = talk * 6 / 10;
                let c_start = work_start + t1 + hold + self.u(500, 3_000);
                self.user_start(c_start, &ub, a2, q);
                let alert2 = self.u(3_000, 10_000);
                let consult = self.u(15_000, 90_000);
                let a1_end = c_start + alert2 + consult;
                let held1 = hold + (a1_end - (work_start + t1 + hold));
                self.user_end(
                    a1_end,
                    up,
                    agent,
                    q,
                    "CONSULT_TRANSFER",
                    t1,
                    held1,
                    alert,
                    pre,
                );
                self.note_user_end(li, t1, held1, false);
                let acw = self.after_call_work(up, agent, q, a1_end);
                self.note_acw(li, acw);
                let talk2 = lognorm(&mut self.rng, 180_000.0, 0.7, 10_000, 3_600_000);
                let end2 = a1_end + talk2;
                let customer_left = self.p(0.55);
                let dt = if customer_left { "PEER" } else { "CLIENT" };
                self.user_end(
                    end2,
                    &ub,
                    a2,
                    q,
                    dt,
                    consult + talk2,
                    0,
                    alert2,
                    Pre::default(),
                );
                self.after_call_work(&ub, a2, q, end2);
                let cd = if customer_left { "ENDPOINT" } else { "PEER" };
                return Disc {
                    at: end2,
                    customer_disconnect: cd,
                };
            }
            // Blind transfer to another queue.
            let end = work_start + talk + hold;
            self.user_end(end, up, agent, q, "TRANSFER", talk, hold, alert, pre);
            self.note_user_end(li, talk, hold, true);
            let acw = self.after_call_work(up, agent, q, end);
            self.note_acw(li, acw);
            let range = self.home_queues();
            let mut q2 = self.queue_in(range);
            if Some(q2) == q {
                q2 = range.0 + (q2 + 1 - range.0) % (range.1 - range.0);
            }
            let opts = RouteOpts {
                wait_median: 20_000.0,
                p_abandon: 0.05,
                p_flow_out: 0.02,
                routing: None,
                pre: Pre::default(),
            };
            let t_q = end + self.u(100, 800);
            return self.routed(t_q, q2, depth + 1, &opts);
        }
        let end = work_start + talk + hold;
        let customer_left = self.p(0.55);
        let dt = if customer_left { "PEER" } else { "CLIENT" };
        self.user_end(end, up, agent, q, dt, talk, hold, alert, pre);
        self.note_user_end(li, talk, hold, false);
        let cd = if customer_left { "ENDPOINT" } else { "PEER" };
        if self.media == Media::Email && self.p(0.3) {
            // Multiple actions: the agent opens the email again later to
            // send a follow-up (a new session).
            let ub = self.part();
            let s2 = end + lognorm(&mut self.rng, 900_000.0, 0.8, 60_000, 7_200_000);
            self.user_start(s2, &ub, agent, q);
            let a2 = self.u(300, 3_000);
            let w2 = self.u(60_000, 480_000);
            self.user_end(
                s2 + a2 + w2,
                &ub,
                agent,
                q,
                "CLIENT",
                w2,
                0,
                a2,
                Pre::default(),
            );
            // The agent wraps up once, after the follow-up.
            let acw = self.after_call_work(&ub, agent, q, s2 + a2 + w2);
            self.note_acw(li, acw);
            return Disc {
                at: end,
                customer_disconnect: cd,
            };
        }
        let acw = self.after_call_work(up, agent, q, end);
        self.note_acw(li, acw);
        Disc {
            at: end,
            customer_disconnect: cd,
        }
    }

    /// The answering agent of leg `li` ended (the event just emitted).
    fn note_user_end(&mut self, li: Option<usize>, talk: i64, held: i64, transfer: bool) {
        let ev = self.evs.len() - 1;
        if let Some(l) = li.and_then(|i| self.legs.get_mut(i)) {
            l.user_end = Some((ev, talk, held));
            l.transfer = transfer;
        }
    }

    /// The answering agent of leg `li` wrapped up.
    fn note_acw(&mut self, li: Option<usize>, acw: (usize, i64)) {
        if let Some(l) = li.and_then(|i| self.legs.get_mut(i)) {
            l.acw = Some(acw);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::test_support::*;
    use crate::generate::{EventKey, GenRecord};
    use serde_json::Value;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn every_kind_and_lifecycle_feature_appears() {
        let (recs, t) = default_run();
        let out = check_consistency(recs, t, true);
        let kinds: HashSet<EventKind> = out.iter().map(|(_, p)| p.kind).collect();
        for k in EventKind::ALL {
            assert!(kinds.contains(&k), "missing {}", k.as_str());
        }
        let mut values: HashSet<(String, String)> = HashSet::new();
        for (_, p) in &out {
            for f in [
                "acdOutcome",
                "disconnectType",
                "flowType",
                "usedRouting",
                "messageType",
                "direction",
                "exitReason",
            ] {
                if let Some(v) = p.body.get(f).and_then(Value::as_str) {
                    values.insert((format!("{}.{f}", p.kind.as_str()), v.to_string()));
                }
            }
            if let Some(a) = p.body.get("ani").and_then(Value::as_str) {
                values.insert(("ani".into(), a[..4].to_string()));
            }
        }
        let has = |k: &str, v: &str| values.contains(&(k.to_string(), v.to_string()));
        for (k, v) in [
            ("acd.end.acdOutcome", "ANSWERED"),
            ("acd.end.acdOutcome", "ABANDON"),
            ("acd.end.acdOutcome", "FLOW_OUT"),
            ("user.end.disconnectType", "NO_ANSWER_TRANSFER"),
            ("user.end.disconnectType", "TRANSFER"),
            ("user.end.disconnectType", "CONSULT_TRANSFER"),
            ("user.end.disconnectType", "CLIENT"),
            ("user.end.disconnectType", "PEER"),
            ("acd.end.disconnectType", "TRANSFER"),
            ("customer.end.disconnectType", "ENDPOINT"),
            ("flow.start.flowType", "INBOUNDCALL"),
            ("flow.start.flowType", "INBOUNDEMAIL"),
            ("acd.end.usedRouting", "PREDICTIVE"),
            ("outbound.direction", "OUTBOUND"),
            ("flow.end.exitReason", "TRANSFER"),
            ("ani", "tel:"),
            ("ani", "sip:"),
        ] {
            assert!(has(k, v), "missing {k} = {v}");
        }
        assert!(["TAKEOVER", "INACTIVITY", "SESSION_EXPIRED"]
            .iter()
            .any(|v| values
                .iter()
                .any(|(k, x)| k.ends_with("disconnectType") && x == v)));
        // Batch styles: JSON Lines, back-to-back, array.
        let batches: Vec<&GenRecord> = recs
            .iter()
            .filter(|r| r.key.is_none() && parse_record(&r.value).is_ok_and(|e| e.len() > 1))
            .collect();
        assert!(batches.iter().any(|r| r.value.first() == Some(&b'[')));
        assert!(batches
            .iter()
            .any(|r| r.value.windows(2).any(|w| w == b"}\n")));
        assert!(batches
            .iter()
            .any(|r| r.value.windows(2).any(|w| w == b"}{")));
    }

    #[test]
    fn lifecycles_are_ordered_and_durations_consistent() {
        let (_, t) = default_run();
        let mut by_ix: HashMap<&str, Vec<&EventKey>> = HashMap::new();
        for k in &t.unique_events {
            by_ix.entry(k.interaction_id.as_str()).or_default().push(k);
        }
        assert_eq!(by_ix.len(), 2_000);
        for evs in by_ix.values() {
            // Generation order = event time order, strictly increasing.
            assert!(evs
                .windows(2)
                .all(|w| w[0].event_time_ms < w[1].event_time_ms));
            assert!(matches!(
                evs[0].event_type.as_str(),
                "customer.start" | "outbound"
            ));
            assert_eq!(
                evs.last().map(|k| k.event_type.as_str()),
                Some("customer.end")
            );
            assert_eq!(
                evs.iter()
                    .filter(|k| k.event_type == "customer.end")
                    .count(),
                1
            );
        }
        // Durations agree with event times (within the tie-break nudges).
        let (recs, _) = default_run();
        let mut start_of: HashMap<(String, String), i64> = HashMap::new();
        let mut checks = 0;
        let mut evs: Vec<Parsed> = recs
            .iter()
            .filter_map(|r| parse_record(&r.value).ok())
            .flatten()
            .collect();
        evs.sort_by(|a, b| a.key.cmp(&b.key));
        evs.sort_by_key(|p| p.key.event_time_ms);
        for p in &evs {
            let sid = p.key.session_id.clone().unwrap_or_default();
            let k = (p.key.interaction_id.clone(), sid);
            match p.kind {
                EventKind::AcdStart | EventKind::UserEnd => {
                    start_of.insert(k, p.key.event_time_ms);
                }
                EventKind::AcdEnd => {
                    let c = p.body["connectedDurationMs"].as_i64().unwrap_or(-1);
                    let s = start_of[&k];
                    assert!(
                        (p.key.event_time_ms - s - c).abs() < 50,
                        "acd wait {c} vs {}",
                        p.key.event_time_ms - s
                    );
                    checks += 1;
                }
                EventKind::Acw => {
                    let d = p.body["wrapupDurationMs"].as_i64().unwrap_or(-1);
                    let s = start_of[&k];
                    assert!(
                        (p.key.event_time_ms - s - d).abs() < 50,
                        "acw {d} vs {}",
                        p.key.event_time_ms - s
                    );
                    checks += 1;
                }
                _ => {}
            }
        }
        assert!(checks > 3_000);
    }
}
