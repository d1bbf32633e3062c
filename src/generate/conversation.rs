//! One conversation being generated ([`Ix`]): its participants, addresses
//! and customer, the fields every event of it carries, and the PII it may
//! write. The events themselves are in `events.rs`, the lifecycles that
//! order them in `lifecycle.rs`.

use rand::rngs::SmallRng;
use rand::Rng;

use super::config::Media;
use super::pools::{
    Customer, Pools, AGENTS, CALLBACK_QUEUES, CHAT_QUEUES, EMAIL_QUEUES, MESSAGE_QUEUES,
    VOICE_QUEUES,
};
use super::random::{chance, permute48, pick, splitmix, uni, uuid_str};
use super::records::{Field, Planned, Val};
use crate::model::EventKind;

/// A participant: its id and session id.
#[derive(Clone)]
pub(super) struct Part {
    pub(super) pid: String,
    pub(super) sid: String,
}

/// How the customer side of a conversation ended.
pub(super) struct Disc {
    pub(super) at: i64,
    pub(super) customer_disconnect: &'static str,
}

/// Extra agent-leg durations for outbound and callbacks.
#[derive(Clone, Copy, Default)]
pub(super) struct Pre {
    pub(super) contacting: i64,
    pub(super) dialing: i64,
    pub(super) callback: i64,
}

/// A queue leg as planned, by the indexes of its events in `Ix::evs`
/// (their times are final only once the events are sorted).
#[derive(Debug, Clone, Default)]
pub(super) struct LegDraft {
    pub(super) queue: usize,
    pub(super) start: usize,
    /// `acd.end`: (event, outcome, wait).
    pub(super) end: Option<(usize, &'static str, i64)>,
    /// The answering agent's `user.end`: (event, interacting, held).
    pub(super) user_end: Option<(usize, i64, i64)>,
    /// The agent transferred the customer to another queue (blind).
    pub(super) transfer: bool,
    /// The answering agent's wrap-up: (event, duration).
    pub(super) acw: Option<(usize, i64)>,
}

/// One conversation: the state its events are built from.
pub(super) struct Ix<'a> {
    pub(super) g: &'a Pools,
    pub(super) rng: SmallRng,
    pub(super) cid: String,
    pub(super) media: Media,
    pub(super) media_name: String,
    pub(super) direction: &'static str,
    pub(super) provider: &'static str,
    pub(super) ani: Option<String>,
    pub(super) dnis: Option<String>,
    pub(super) address_from: Option<String>,
    pub(super) address_to: Option<String>,
    pub(super) subject: Option<String>,
    pub(super) message_type: Option<&'static str>,
    pub(super) callback_numbers: Option<Vec<String>>,
    pub(super) callback_name: Option<String>,
    pub(super) callback_scheduled: Option<i64>,
    pub(super) division: String,
    pub(super) ext_contact: Option<String>,
    pub(super) ext_org: Option<String>,
    pub(super) util_label: Option<String>,
    pub(super) cust: Customer,
    pub(super) cust_part: Part,
    pub(super) pii: Vec<String>,
    pub(super) evs: Vec<Planned>,
    /// Its queue legs (the generator's ground truth of gold's figures).
    pub(super) legs: Vec<LegDraft>,
    /// The leg being answered, for the agent work that follows.
    pub(super) answering: Option<usize>,
}

impl<'a> Ix<'a> {
    pub(super) fn new(
        g: &'a Pools,
        mut rng: SmallRng,
        idx: usize,
        media: Media,
        media_name: String,
    ) -> Self {
        // Unique conversation id: 80 random bits + the index (masked) in the
        // last 48 bits.
        let mut b: [u8; 16] = rng.gen();
        let tag = permute48(idx as u64 ^ splitmix(g.seed));
        b[10..16].copy_from_slice(&tag.to_be_bytes()[2..8]);
        let cid = uuid::Builder::from_random_bytes(b)
            .into_uuid()
            .hyphenated()
            .to_string();
        let cust = Customer::new(g, rng.gen_range(0..g.customers));
        let cust_part = Part {
            pid: uuid_str(&mut rng),
            sid: uuid_str(&mut rng),
        };
        let direction = if media == Media::Voice && chance(&mut rng, 0.15) {
            "OUTBOUND"
        } else {
            "INBOUND"
        };
        let provider = match media {
            Media::Voice | Media::Callback => "Edge",
            Media::Chat => "PureCloud Webchat v2",
            Media::Email => "PureCloud Email",
            Media::Message | Media::Other => "PureCloud Messaging",
        };
        let mut pii = vec![
            cust.first.to_string(),
            cust.last.to_string(),
            cust.full.clone(),
            cust.e164.clone(),
            format!("tel:{}", cust.e164),
            cust.email.clone(),
            cust.card_written.clone(),
            cust.card_digits.clone(),
            cust.street.clone(),
        ];
        pii.extend(cust.phone_forms.iter().cloned());
        let company = pick(&mut rng, &g.company_numbers).clone();
        let (mut ani, mut dnis, mut address_from, mut address_to) = (None, None, None, None);
        let (mut message_type, mut callback_numbers, mut callback_name) = (None, None, None);
        match media {
            Media::Voice | Media::Callback => {
                let cust_addr = if chance(&mut rng, 0.3) {
                    let ip = pick(&mut rng, &g.edge_ips);
                    let s = format!("sip:{}@{ip};user=phone", cust.e164);
                    pii.push(s.clone());
                    s
                } else {
                    format!("tel:{}", cust.e164)
                };
                let company_addr = format!("tel:{company}");
                pii.push(company.clone());
                pii.push(company_addr.clone());
                if direction == "OUTBOUND" {
                    ani = Some(company_addr);
                    dnis = Some(cust_addr);
                } else {
                    ani = Some(cust_addr);
                    dnis = Some(company_addr);
                }
                if media == Media::Callback {
                    callback_numbers = Some(vec![cust.e164.clone()]);
                    callback_name = Some(cust.full.clone());
                }
            }
            Media::Email => {
                let to = pick(&mut rng, &g.company_emails).clone();
                pii.push(to.clone());
                address_from = Some(cust.email.clone());
                address_to = Some(to);
            }
            Media::Message => {
                let mt = *pick(
                    &mut rng,
                    &[
                        "SMS",
                        "WHATSAPP",
                        "WEBMESSAGING",
                        "WEBMESSAGING",
                        "FACEBOOK",
                    ],
                );
                if matches!(mt, "SMS" | "WHATSAPP") {
                    pii.push(company.clone());
                    address_from = Some(cust.e164.clone());
                    address_to = Some(company.clone());
                }
                message_type = Some(mt);
            }
            Media::Chat | Media::Other => {}
        }
        let mut ix = Ix {
            g,
            cid,
            media,
            media_name,
            direction,
            provider,
            ani,
            dnis,
            address_from,
            address_to,
            subject: None,
            message_type,
            callback_numbers,
            callback_name,
            callback_scheduled: None,
            division: String::new(),
            ext_contact: None,
            ext_org: None,
            util_label: None,
            cust,
            cust_part,
            pii,
            evs: Vec::with_capacity(16),
            legs: Vec::new(),
            answering: None,
            rng,
        };
        if media == Media::Email {
            ix.subject = Some(ix.subject_line());
        }
        ix.division = g.divisions[ix.rng.gen_range(0..g.divisions.len())].clone();
        if chance(&mut ix.rng, 0.6) {
            ix.ext_contact = Some(ix.cust.external_contact_id.clone());
            ix.ext_org = ix.cust.external_org_id.clone();
        }
        if chance(&mut ix.rng, 0.4) {
            ix.util_label = Some(pick(&mut ix.rng, &g.utilization_labels).clone());
        }
        ix
    }

    // -- small helpers --------------------------------------------------

    pub(super) fn u(&mut self, lo: i64, hi: i64) -> i64 {
        uni(&mut self.rng, lo, hi)
    }

    pub(super) fn p(&mut self, p: f64) -> bool {
        chance(&mut self.rng, p)
    }

    pub(super) fn part(&mut self) -> Part {
        Part {
            pid: uuid_str(&mut self.rng),
            sid: uuid_str(&mut self.rng),
        }
    }

    pub(super) fn queue_in(&mut self, range: (usize, usize)) -> usize {
        self.rng.gen_range(range.0..range.1)
    }

    pub(super) fn home_queues(&self) -> (usize, usize) {
        match self.media {
            Media::Voice => VOICE_QUEUES,
            Media::Chat | Media::Other => CHAT_QUEUES,
            Media::Message => MESSAGE_QUEUES,
            Media::Email => EMAIL_QUEUES,
            Media::Callback => CALLBACK_QUEUES,
        }
    }

    pub(super) fn agent_for(&mut self, q: usize, not: Option<usize>) -> usize {
        loop {
            let a = (q * 10 + self.rng.gen_range(0..24)) % AGENTS;
            if Some(a) != not {
                return a;
            }
        }
    }

    pub(super) fn phone_written(&mut self) -> String {
        let forms = &self.cust.phone_forms;
        let s = forms[self.rng.gen_range(0..forms.len())].clone();
        if self.p(0.15) {
            self.cust.e164.clone()
        } else {
            s
        }
    }

    fn card_written(&mut self) -> String {
        if self.p(0.85) {
            self.cust.card_written.clone()
        } else {
            self.cust.card_digits.clone()
        }
    }

    fn subject_line(&mut self) -> String {
        let order = self.u(10_000, 99_999);
        match self.rng.gen_range(0..5) {
            0 => format!("Refund request for order {order} - {}", self.cust.full),
            1 => format!("Please call me back at {}", self.phone_written()),
            2 => format!(
                "Re: Account update for {} ({})",
                self.cust.full, self.cust.email
            ),
            3 => format!(
                "Charge on card ending {} I don't recognise",
                &self.cust.card_digits[12..]
            ),
            _ => format!("Order {order} never arrived"),
        }
    }

    pub(super) fn notes(&mut self) -> Option<String> {
        if self.p(0.15) {
            return None;
        }
        let topic = *pick(
            &mut self.rng,
            &[
                "billing dispute",
                "password reset",
                "late delivery",
                "plan upgrade",
                "cancellation",
                "address change",
            ],
        );
        let c = &self.cust;
        let (full, first, email) = (c.full.clone(), c.first, c.email.clone());
        let text = match self.rng.gen_range(0..7) {
            0 => format!(
                "Customer {full} called about {topic}. Verified identity, callback number {}. Sent confirmation to {email}.",
                self.phone_written()
            ),
            1 => format!(
                "Caller {full} disputed a charge on card {}. Advised 5-7 business days. Follow up at {}.",
                self.card_written(),
                self.phone_written()
            ),
            2 => format!(
                "{first} wants the email changed to {email}; best number {} after 5pm.",
                self.phone_written()
            ),
            3 => format!("Resolved {topic}. Customer confirmed address {}.", self.cust.street),
            4 => format!("Took payment with card {} for {full}, receipt to {email}", self.card_written()),
            5 => format!("{topic}: escalated to tier 2, cust {full} prefers SMS to {}", self.phone_written()),
            _ => format!("Resolved {topic}, no follow-up needed."),
        };
        Some(text)
    }

    pub(super) fn head(&self, p: &Part, disconnect: Option<&'static str>) -> Vec<Field> {
        let mut f: Vec<Field> = Vec::with_capacity(28);
        f.push(("conversationId", Val::S(self.cid.clone())));
        f.push(("participantId", Val::S(p.pid.clone())));
        f.push(("sessionId", Val::S(p.sid.clone())));
        if let Some(d) = disconnect {
            f.push(("disconnectType", Val::S(d.to_string())));
        }
        f.push(("mediaType", Val::S(self.media_name.clone())));
        f.push(("provider", Val::S(self.provider.to_string())));
        f.push(("direction", Val::S(self.direction.to_string())));
        let opt = |f: &mut Vec<Field>, k: &'static str, v: &Option<String>| {
            if let Some(v) = v {
                f.push((k, Val::S(v.clone())));
            }
        };
        opt(&mut f, "ani", &self.ani);
        opt(&mut f, "dnis", &self.dnis);
        opt(&mut f, "addressFrom", &self.address_from);
        opt(&mut f, "addressTo", &self.address_to);
        opt(&mut f, "callbackUserName", &self.callback_name);
        if let Some(n) = &self.callback_numbers {
            f.push(("callbackNumbers", Val::L(n.clone())));
        }
        if let Some(t) = self.callback_scheduled {
            f.push(("callbackScheduledTime", Val::I(t)));
        }
        opt(&mut f, "subject", &self.subject);
        if let Some(m) = self.message_type {
            f.push(("messageType", Val::S(m.to_string())));
        }
        f
    }

    fn tail(&self, f: &mut Vec<Field>) {
        f.push(("divisionId", Val::S(self.division.clone())));
        if let Some(c) = &self.ext_contact {
            f.push(("conversationExternalContactIds", Val::L(vec![c.clone()])));
        }
        if let Some(o) = &self.ext_org {
            f.push((
                "conversationExternalOrganizationIds",
                Val::L(vec![o.clone()]),
            ));
        }
        if let Some(u) = &self.util_label {
            f.push(("utilizationLabel", Val::S(u.clone())));
        }
    }

    pub(super) fn emit(&mut self, kind: EventKind, time: i64, mut fields: Vec<Field>) {
        self.tail(&mut fields);
        self.evs.push(Planned { kind, time, fields });
    }
}

#[cfg(test)]
mod tests {
    use crate::generate::pools::luhn_complete;
    use crate::generate::test_support::*;
    use serde_json::Value;

    #[test]
    fn pii_lives_only_in_pii_fields_and_truth_lists_it() {
        let (recs, t) = default_run();
        let out = check_consistency(recs, t, true);
        let pii = &t.pii_values;
        assert!(pii.len() > 1_000);
        assert!(pii.iter().all(|v| v.len() >= 5), "short PII value");
        let attr_pii = [
            "context.firstName",
            "context.lastName",
            "context.email",
            "context.phoneNumber",
            "context.addressStreet",
        ];
        for (_, p) in &out {
            let mut body = p.body.clone();
            let Some(obj) = body.as_object_mut() else {
                panic!("body")
            };
            // Whole-valued PII fields are listed verbatim.
            for f in [
                "ani",
                "dnis",
                "addressFrom",
                "addressTo",
                "callbackUserName",
            ] {
                if let Some(v) = obj.get(f).and_then(Value::as_str) {
                    assert!(pii.contains(v), "{f} {v} not in truth");
                }
            }
            if let Some(Value::Object(a)) = obj.get("attributes") {
                for (k, v) in a {
                    let v = v.as_str().unwrap_or_default();
                    assert_eq!(
                        attr_pii.contains(&k.as_str()),
                        pii.contains(v),
                        "attribute {k}"
                    );
                }
            }
            // Free text: emails and card numbers inside are listed.
            for f in ["wrapupNotes", "subject"] {
                if let Some(text) = obj.get(f).and_then(Value::as_str) {
                    for w in text.split(|c: char| {
                        c.is_whitespace() || c == ';' || c == ',' || c == '(' || c == ')'
                    }) {
                        let w = w.trim_end_matches('.');
                        if w.contains('@') {
                            assert!(pii.contains(w), "email {w} in {f}");
                        }
                    }
                    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
                    if text.contains("card") && digits.len() >= 16 && !text.contains("ending") {
                        assert!(
                            pii.iter()
                                .any(|v| v.len() == 16 && digits.contains(v.as_str())),
                            "card in {text}"
                        );
                    }
                }
            }
            for f in pii_fields() {
                obj.remove(f);
            }
            let mut leaves = Vec::new();
            string_leaves(&body, &mut leaves);
            for s in leaves {
                assert!(
                    !pii.contains(s) && !looks_like_pii(s),
                    "PII-looking value {s} outside PII fields"
                );
            }
        }
        // Card numbers: as written (spaces or dashes) and digits only, Luhn-valid.
        let cards: Vec<&String> = pii
            .iter()
            .filter(|v| v.len() == 16 && v.bytes().all(|b| b.is_ascii_digit()))
            .collect();
        assert!(cards.len() > 50);
        for c in &cards {
            let d: Vec<u8> = c.bytes().map(|b| b - b'0').collect();
            assert_eq!(luhn_complete(&d[..15]), d[15], "Luhn {c}");
        }
        assert!(pii.iter().any(|v| v.len() == 19
            && v.matches(' ').count() == 3
            && v.bytes().next().is_some_and(|b| b.is_ascii_digit())));
        assert!(pii.iter().any(|v| v.len() == 19
            && v.matches('-').count() == 3
            && v.bytes().next().is_some_and(|b| b.is_ascii_digit())));
        for prefix in ["tel:+", "sip:+", "+1", "("] {
            assert!(
                pii.iter().any(|v| v.starts_with(prefix)),
                "no PII starting {prefix}"
            );
        }
        // A sample of the PII values really occurs in the records.
        let all: String = recs
            .iter()
            .map(|r| String::from_utf8_lossy(&r.value))
            .collect::<Vec<_>>()
            .join("\n");
        for v in pii.iter().step_by(pii.len() / 60 + 1) {
            // Digits-only card numbers are listed with the written form.
            let implied = v.len() == 16 && cards.contains(&v);
            assert!(
                implied || all.contains(v.as_str()),
                "{v} listed but not emitted"
            );
        }
    }
}
