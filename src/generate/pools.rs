//! What conversations share, derived from the seed: the organisation's ids
//! (divisions, queues, agents, skills, flows, campaigns…) and a pool of
//! customers with their PII (repeat callers keep the PII set bounded).

use rand::rngs::SmallRng;
use rand::Rng;

use super::random::{chance, pick, rng_for, uuid_str, STREAM_CUSTOMER, STREAM_POOLS};

pub(super) struct Flow {
    pub(super) id: String,
    pub(super) version: String,
}

pub(super) struct Pools {
    pub(super) seed: u64,
    pub(super) customers: usize,
    pub(super) source: String,
    pub(super) account: String,
    pub(super) region: &'static str,
    pub(super) divisions: Vec<String>,
    pub(super) queues: Vec<String>,
    pub(super) agents: Vec<String>,
    pub(super) skills: Vec<String>,
    pub(super) skill_expressions: Vec<String>,
    pub(super) languages: Vec<String>,
    pub(super) wrapup_codes: Vec<String>,
    pub(super) ivr_flows: Vec<Flow>,
    pub(super) chat_flows: Vec<Flow>,
    pub(super) message_flows: Vec<Flow>,
    pub(super) email_flows: Vec<Flow>,
    pub(super) inqueue_flows: Vec<Flow>,
    pub(super) outcomes: Vec<String>,
    pub(super) milestones: Vec<String>,
    pub(super) campaigns: Vec<(String, String)>,
    pub(super) company_numbers: Vec<String>,
    pub(super) company_emails: Vec<String>,
    pub(super) edge_ips: Vec<String>,
    pub(super) utilization_labels: Vec<String>,
    pub(super) external_orgs: Vec<String>,
}

/// Queue index ranges per media (20 queues).
pub(super) const VOICE_QUEUES: (usize, usize) = (0, 10);
pub(super) const CHAT_QUEUES: (usize, usize) = (10, 13);
pub(super) const MESSAGE_QUEUES: (usize, usize) = (13, 15);
pub(super) const EMAIL_QUEUES: (usize, usize) = (15, 17);
pub(super) const CALLBACK_QUEUES: (usize, usize) = (17, 18);
pub(super) const CAMPAIGN_QUEUES: (usize, usize) = (18, 20);
pub(super) const AGENTS: usize = 200;

impl Pools {
    pub(super) fn new(seed: u64, interactions: usize) -> Self {
        let mut r = rng_for(seed, STREAM_POOLS, 0);
        let ids = |r: &mut SmallRng, n: usize| (0..n).map(|_| uuid_str(r)).collect::<Vec<_>>();
        let flows = |r: &mut SmallRng, n: usize| {
            (0..n)
                .map(|_| Flow {
                    id: uuid_str(r),
                    version: format!("{}.0", r.gen_range(1..40)),
                })
                .collect::<Vec<_>>()
        };
        let org = uuid_str(&mut r);
        let bus = *pick(&mut r, &["genesys-cx-prod", "cx-events", "genesys_acme"]);
        let account = format!("{:012}", r.gen_range(100_000_000_000u64..999_999_999_999));
        let divisions = ids(&mut r, 3);
        let queues = ids(&mut r, 20);
        let agents = ids(&mut r, AGENTS);
        let skills = ids(&mut r, 12);
        let skill_expressions = ids(&mut r, 4);
        let languages = ids(&mut r, 4);
        let wrapup_codes = ids(&mut r, 15);
        let ivr_flows = flows(&mut r, 4);
        let chat_flows = flows(&mut r, 2);
        let message_flows = flows(&mut r, 2);
        let email_flows = flows(&mut r, 1);
        let inqueue_flows = flows(&mut r, 2);
        let outcomes = ids(&mut r, 6);
        let milestones = ids(&mut r, 8);
        let campaigns = (0..3)
            .map(|_| (uuid_str(&mut r), uuid_str(&mut r)))
            .collect();
        let company_numbers = (0..4)
            .map(|i| {
                format!(
                    "+1{}{:07}",
                    ["800", "888", "877", "866"][i],
                    r.gen_range(2_000_000..9_999_999)
                )
            })
            .collect();
        let company_emails = ["support", "billing", "orders"]
            .iter()
            .map(|b| format!("{b}@acme-retail.example"))
            .collect();
        let edge_ips = (0..8)
            .map(|_| {
                format!(
                    "10.{}.{}.{}",
                    r.gen_range(1..255),
                    r.gen_range(0..255),
                    r.gen_range(2..250)
                )
            })
            .collect();
        let utilization_labels = ids(&mut r, 3);
        let external_orgs = ids(&mut r, 40);
        Pools {
            seed,
            customers: (interactions / 2).clamp(500, 50_000),
            source: format!("aws.partner/genesys.com/cloud/{org}/{bus}"),
            account,
            region: "us-east-1",
            divisions,
            queues,
            agents,
            skills,
            skill_expressions,
            languages,
            wrapup_codes,
            ivr_flows,
            chat_flows,
            message_flows,
            email_flows,
            inqueue_flows,
            outcomes,
            milestones,
            campaigns,
            company_numbers,
            company_emails,
            edge_ips,
            utilization_labels,
            external_orgs,
        }
    }
}

pub(super) const FIRST_NAMES: [&str; 40] = [
    "Margaret",
    "Oluwaseun",
    "Priyanka",
    "Jonathan",
    "Gabriela",
    "Takeshi",
    "Svetlana",
    "Mohammed",
    "Francesca",
    "Benjamin",
    "Isabella",
    "Nikolai",
    "Beatriz",
    "Xiomara",
    "Leonardo",
    "Anastasia",
    "Kwame",
    "Rosalind",
    "Theodore",
    "Yolanda",
    "Giovanni",
    "Harriet",
    "Esperanza",
    "Dmitri",
    "Siobhan",
    "Rajesh",
    "Cordelia",
    "Mateus",
    "Ingrid",
    "Lorenzo",
    "Fatima",
    "Augustin",
    "Henrietta",
    "Valentina",
    "Bartholomew",
    "Winifred",
    "Ignatius",
    "Persephone",
    "Fernando",
    "Elizabeth",
];
pub(super) const LAST_NAMES: [&str; 30] = [
    "Gonzalez",
    "Okafor",
    "Nakamura",
    "Schneider",
    "Kowalski",
    "Lindqvist",
    "Haddad",
    "Fitzgerald",
    "Petrovic",
    "Abernathy",
    "Castellanos",
    "Oyelaran",
    "Vasquez",
    "Thornton",
    "Ramaswamy",
    "Delacroix",
    "Brennan",
    "Hoffmann",
    "Sorensen",
    "Albrecht",
    "Whitfield",
    "Okonkwo",
    "Yamamoto",
    "Kuznetsov",
    "Fairbanks",
    "Montenegro",
    "Lachance",
    "Villanueva",
    "Hargreaves",
    "Mbatha",
];
const STREETS: [&str; 8] = [
    "Maplewood Avenue",
    "Juniper Lane",
    "Harborview Drive",
    "Chestnut Street",
    "Willowbrook Road",
    "Kingsley Court",
    "Lakeshore Boulevard",
    "Orchard Terrace",
];
const US_AREAS: [&str; 16] = [
    "212", "312", "415", "617", "713", "305", "206", "404", "512", "303", "602", "702", "919",
    "615", "503", "612",
];

/// One customer of the pool, derived from the seed and its index.
pub(super) struct Customer {
    pub(super) first: &'static str,
    pub(super) last: &'static str,
    pub(super) full: String,
    pub(super) e164: String,
    /// Human-written forms of the phone number (always with separators).
    pub(super) phone_forms: Vec<String>,
    pub(super) email: String,
    pub(super) card_written: String,
    pub(super) card_digits: String,
    pub(super) street: String,
    pub(super) external_contact_id: String,
    pub(super) external_org_id: Option<String>,
}

/// The Luhn check digit completing `payload`.
pub(super) fn luhn_complete(payload: &[u8]) -> u8 {
    let mut sum = 0u32;
    for (i, d) in payload.iter().rev().enumerate() {
        let mut v = u32::from(*d);
        if i % 2 == 0 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    ((10 - sum % 10) % 10) as u8
}

impl Customer {
    pub(super) fn new(pools: &Pools, idx: usize) -> Self {
        let mut r = rng_for(pools.seed, STREAM_CUSTOMER, idx as u64);
        let first = *pick(&mut r, &FIRST_NAMES);
        let last = *pick(&mut r, &LAST_NAMES);
        let c = r.gen_range(0..100);
        let (e164, phone_forms) = if c < 86 {
            let a = *pick(&mut r, &US_AREAS);
            let e = r.gen_range(201..999);
            let l = r.gen_range(0..10_000);
            (
                format!("+1{a}{e}{l:04}"),
                vec![
                    format!("({a}) {e}-{l:04}"),
                    format!("{a}-{e}-{l:04}"),
                    format!("{a}.{e}.{l:04}"),
                    format!("+1 {a} {e} {l:04}"),
                    format!("+1-{a}-{e}-{l:04}"),
                ],
            )
        } else if c < 94 {
            let n1 = r.gen_range(7000..9000);
            let n2 = r.gen_range(0..10_000);
            (
                format!("+4420{n1}{n2:04}"),
                vec![
                    format!("+44 20 {n1} {n2:04}"),
                    format!("020 {n1} {n2:04}"),
                    format!("(020) {n1} {n2:04}"),
                ],
            )
        } else {
            let n = r.gen_range(2_000_000..9_999_999);
            (
                format!("+4930{n}"),
                vec![
                    format!("+49 30 {n}"),
                    format!("030 {n}"),
                    format!("+49 (0)30 {n}"),
                ],
            )
        };
        let lf = first.to_ascii_lowercase();
        let ll = last.to_ascii_lowercase();
        let domain = *pick(
            &mut r,
            &[
                "example.com",
                "example.org",
                "example.net",
                "mail.example.com",
                "inbox.example.org",
            ],
        );
        let email = match r.gen_range(0..3) {
            0 => format!("{lf}.{ll}@{domain}"),
            1 => format!("{}{ll}{}@{domain}", &lf[..1], r.gen_range(1..99)),
            _ => format!("{lf}_{ll}{}@{domain}", r.gen_range(1950..2005)),
        };
        let mut payload: Vec<u8> = Vec::with_capacity(16);
        if r.gen::<bool>() {
            payload.push(4);
        } else {
            payload.push(5);
            payload.push(r.gen_range(1..=5));
        }
        while payload.len() < 15 {
            payload.push(r.gen_range(0..10));
        }
        let check = luhn_complete(&payload);
        payload.push(check);
        let card_digits: String = payload.iter().map(|d| char::from(b'0' + d)).collect();
        let sep = if r.gen::<bool>() { " " } else { "-" };
        let card_written = card_digits
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(sep);
        let street = format!("{} {}", r.gen_range(100..9_999), pick(&mut r, &STREETS));
        let external_contact_id = uuid_str(&mut r);
        let external_org_id = if chance(&mut r, 0.3) {
            Some(pick(&mut r, &pools.external_orgs).clone())
        } else {
            None
        };
        Customer {
            first,
            last,
            full: format!("{first} {last}"),
            e164,
            phone_forms,
            email,
            card_written,
            card_digits,
            street,
            external_contact_id,
            external_org_id,
        }
    }
}
