//! The independent reference: the expected result of `mask_event`
//! written from the module docs, checked on hand-written, generated and
//! random events.

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::model::{Event, Payload, SourceRef};

use super::super::{MaskPolicies, Masker, Policy};
use super::support::*;

// ---- independent reference -------------------------------------------
//
// The expected result of `mask_event`, written from the module docs
// without calling the production masking: normalization, the field
// walk, policies, lineage paths and token formatting are re-implemented
// here, tokens are `reference_token` (plain `hmac`), and free text is
// scrubbed by an oracle (`Scrub`) the caller picks: in the property
// test, a table of sentences whose scrubbed form was written by hand.

/// Scrubbed form of one free-text string (`None`: unchanged).
type Scrub<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A leading URI scheme (`[A-Za-z][A-Za-z0-9+.-]*:`), dropped.
fn ref_strip_scheme(s: &str) -> Option<&str> {
    let mut chars = s.char_indices();
    if !chars.next().is_some_and(|(_, c)| c.is_ascii_alphabetic()) {
        return None;
    }
    for (i, c) in chars {
        if c == ':' {
            return Some(&s[i + 1..]);
        }
        if !(c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-')) {
            return None;
        }
    }
    None
}

fn ref_phone(s: &str) -> String {
    let t = s.trim();
    let t = ref_strip_scheme(t).unwrap_or(t);
    let user = t.split('@').next().unwrap_or("");
    let user = user.split([';', '?']).next().unwrap_or("");
    let digits: String = user.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        user.trim().to_lowercase()
    } else {
        format!("+{digits}")
    }
}

fn ref_email(s: &str) -> String {
    s.trim().to_lowercase()
}

fn ref_address(s: &str) -> String {
    let t = s.trim();
    if t.len() >= 7 && t.is_char_boundary(7) && t[..7].eq_ignore_ascii_case("mailto:") {
        ref_email(&t[7..])
    } else if t.contains('@') && ref_strip_scheme(t).is_none() {
        ref_email(t)
    } else {
        ref_phone(t)
    }
}

#[derive(Clone, Copy)]
enum RefKind {
    Address,
    List,
    Name,
    Text,
    Attributes,
}

const REF_FIELDS: [(&str, RefKind); 9] = [
    ("ani", RefKind::Address),
    ("dnis", RefKind::Address),
    ("address_from", RefKind::Address),
    ("address_to", RefKind::Address),
    ("callback_numbers", RefKind::List),
    ("callback_user_name", RefKind::Name),
    ("subject", RefKind::Text),
    ("wrapup_notes", RefKind::Text),
    ("attributes", RefKind::Attributes),
];

/// `hash`/`redact` of one non-null value; `address`: strings are
/// normalized as addresses, else trimmed. Non-strings hash their
/// compact JSON (serde_json's text, keys sorted).
fn ref_replace(key: &[u8], v: &Value, policy: Policy, address: bool) -> Value {
    match (policy, v) {
        (Policy::Redact, _) => json!("[REDACTED]"),
        (_, Value::String(s)) if address => json!(reference_token(key, &ref_address(s))),
        (_, Value::String(s)) => json!(reference_token(key, s.trim())),
        (_, other) => json!(reference_token(key, &serde_json::to_string(other).unwrap())),
    }
}

/// Scrubs every string and key inside `v`; pushes changed paths.
fn ref_scrub_value(v: &mut Value, path: &str, scrub: Scrub, out: &mut Vec<String>) -> bool {
    match v {
        Value::String(s) => match scrub(s) {
            Some(clean) => {
                *s = clean;
                out.push(path.to_owned());
                true
            }
            None => false,
        },
        Value::Array(items) => {
            let mut any = false;
            for (i, item) in items.iter_mut().enumerate() {
                any |= ref_scrub_value(item, &format!("{path}[{i}]"), scrub, out);
            }
            any
        }
        Value::Object(m) => ref_scrub_map(m, path, scrub, out),
        _ => false,
    }
}

fn ref_scrub_map(
    m: &mut Map<String, Value>,
    path: &str,
    scrub: Scrub,
    out: &mut Vec<String>,
) -> bool {
    let renamed = ref_rename_keys(m, scrub);
    let mut any = !renamed.is_empty();
    for (k, v) in m.iter_mut() {
        let p = format!("{path}.{k}");
        let changed = ref_scrub_value(v, &p, scrub, out);
        any |= changed;
        if renamed.contains(k) && !(changed && matches!(v, Value::String(_))) {
            out.push(p);
        }
    }
    any
}

/// Renames each key of `m` that `scrub` changes (unchanged keys keep
/// their names, a taken name gets `#2`…); returns the new names.
fn ref_rename_keys(m: &mut Map<String, Value>, scrub: Scrub) -> Vec<String> {
    let mut renamed = Vec::new();
    let old = std::mem::take(m);
    let mut later = Vec::new();
    for (k, v) in old {
        match scrub(&k) {
            Some(clean) => later.push((clean, v)),
            None => {
                m.insert(k, v);
            }
        }
    }
    for (clean, v) in later {
        let mut key = clean.clone();
        let mut n = 2;
        while m.contains_key(&key) {
            key = format!("{clean}#{n}");
            n += 1;
        }
        m.insert(key.clone(), v);
        renamed.push(key);
    }
    renamed
}

/// The documented masking of `fields` and `extras` (in place); returns
/// `lineage.masked_fields`.
fn ref_mask(
    key: &[u8],
    policies: &MaskPolicies,
    fields: &mut Map<String, Value>,
    extras: &mut Map<String, Value>,
    scrub: Scrub,
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, kind) in REF_FIELDS {
        let policy = policies.get(name);
        let Some(v) = fields.get_mut(name).filter(|v| !v.is_null()) else {
            continue;
        };
        let changed = match (kind, policy) {
            (RefKind::Address | RefKind::List | RefKind::Name, Policy::Keep) => false,
            (RefKind::List, _) if v.is_array() => {
                let mut any = false;
                for item in v.as_array_mut().unwrap() {
                    if !item.is_null() {
                        *item = ref_replace(key, item, policy, true);
                        any = true;
                    }
                }
                any
            }
            (RefKind::Attributes, _) if v.is_object() => {
                let m = v.as_object_mut().unwrap();
                let renamed = ref_rename_keys(m, scrub);
                for (k, item) in m {
                    let changed = match policy {
                        _ if item.is_null() => false,
                        Policy::Keep => ref_scrub_value(item, "", scrub, &mut Vec::new()),
                        _ => {
                            *item = ref_replace(key, item, policy, false);
                            true
                        }
                    };
                    if changed || renamed.contains(k) {
                        out.push(format!("attributes.{k}"));
                    }
                }
                false
            }
            (RefKind::Text | RefKind::Attributes, Policy::Keep) => {
                ref_scrub_value(v, "", scrub, &mut Vec::new())
            }
            (RefKind::Address | RefKind::List, _) => {
                *v = ref_replace(key, v, policy, true);
                true
            }
            (RefKind::Name | RefKind::Text | RefKind::Attributes, _) => {
                *v = ref_replace(key, v, policy, false);
                true
            }
        };
        if changed {
            out.push(name.to_owned());
        }
    }
    ref_scrub_map(extras, "extras", scrub, &mut out);
    out
}

/// `ev` was built from `fields` and `extras` (the reference starts from
/// them, not from the payload's JSON, so a number's text is serde_json's
/// as the docs say).
fn assert_masks_like_reference(
    m: &Masker,
    ev: &Event,
    fields: &Map<String, Value>,
    extras: &Map<String, Value>,
    scrub: Scrub,
) {
    let mut ours = ev.clone();
    m.mask_event(&mut ours);
    let (mut fields, mut extras) = (fields.clone(), extras.clone());
    let paths = ref_mask(KEY, m.policies(), &mut fields, &mut extras, scrub);
    assert_eq!(ours.payload, Payload::from_maps(&fields, &extras));
    let got: Vec<&str> = ours.lineage.masked_fields.iter().map(|p| &**p).collect();
    assert_eq!(got, paths);
}

/// Free text with its scrubbed form written by hand from the module
/// docs (`{p:X}` = `<phone:token(X)>`, `{e:X}` = `<email:token(X)>`,
/// `X` the normalized value; `None`: left unchanged).
const TEXTS: [(&str, Option<&str>); 14] = [
    (
        "call me at (555) 555-0955 or Jane.Roe@Example.com",
        Some("call me at {p:+5555550955} or {e:jane.roe@example.com}"),
    ),
    (
        "card 4111 1111 1111 1111 or +44 20 7946 0958",
        Some("card <card:removed> or {p:+442079460958}"),
    ),
    (
        "card 5500-0000-0000-0004 on file",
        Some("card <card:removed> on file"),
    ),
    ("card 4111111111111111.", Some("card <card:removed>.")),
    (
        "reach me via sip:+81399999998@172.18.182.10;user=phone, thanks",
        Some("reach me via {p:+81399999998}, thanks"),
    ),
    (
        "from SIP:Alice@Example.com today",
        Some("from {p:alice} today"),
    ),
    ("tel:+15555550955", Some("{p:+15555550955}")),
    (
        "write to Bob@Example.ORG.",
        Some("write to {e:bob@example.org}."),
    ),
    (
        "order 12345678 shipped",
        Some("order {p:+12345678} shipped"),
    ),
    ("  +1-555-555-0955  ", Some("  {p:+15555550955}  ")),
    ("jane@example.com", Some("{e:jane@example.com}")),
    (
        "ticket 2f7bf00a-0fc2-4d6a-9b56-92238191433e on 2022-04-06T09:30:44.949Z from 10.1.2.3",
        None,
    ),
    (
        "at 1649237444949, 48.8588443 and version 120.0.6099.130",
        None,
    ),
    (
        "hash 0x1a2b3c4d5e6f7a8b9c0d1e2f and 06.04.2022 or 04/06/2022",
        None,
    ),
];

/// Expands `{p:X}` / `{e:X}` in a hand-written expectation.
fn expand(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        let end = rest[at..].find('}').unwrap() + at;
        let (tag, value) = rest[at + 1..end].split_once(':').unwrap();
        let tag = if tag == "p" { "phone" } else { "email" };
        out.push_str(&format!("<{tag}:{}>", reference_token(KEY, value)));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The oracle over `TEXTS`; text without a digit, `@` or `:` cannot hold
/// anything the scrubber replaces. Anything else is a test bug.
fn table_scrub(s: &str) -> Option<String> {
    if !s
        .bytes()
        .any(|b| b.is_ascii_digit() || b == b'@' || b == b':')
    {
        return None;
    }
    let (_, want) = TEXTS
        .iter()
        .find(|(raw, _)| *raw == s)
        .unwrap_or_else(|| panic!("no hand-written scrub for {s:?}"));
    want.map(expand)
}

#[test]
fn scrub_text_gives_the_hand_written_outputs() {
    let m = masker(Policy::Keep);
    for (raw, want) in TEXTS {
        assert_eq!(m.scrub_text(raw), want.map(expand), "{raw:?}");
    }
}

/// One event with every maskable field, masked with default policies
/// (hash): the exact output, tokens from `reference_token` over values
/// normalized by hand.
fn sample_event() -> Event {
    event(
        json!({
            "ani": "tel:+1 (555) 555-0955",
            "dnis": "sip:+81399999998@172.18.182.10;user=phone",
            "address_from": " Jane.Roe@Example.COM ",
            "address_to": "MAILTO:Support@Example.org",
            "callback_numbers": ["5555550955", null, 15555550955u64],
            "callback_user_name": "  Jane Roe ",
            "subject": " Refund ",
            "wrapup_notes": null,
            "attributes": {"email": "a@b.co", "none": null, "n": 7},
            "queue_id": IDS[4],
            "wrapup_code": "555-555-0955",
        }),
        json!({
            "browser": {"ua": "Mozilla/5.0", "contact": "Jane@Example.com"},
            "list": ["plain", "call 555-555-0955"],
            "jane@example.com": 1,
            "ip": "10.1.2.3",
        }),
    )
}

#[test]
fn sample_event_masks_to_the_hand_computed_output() {
    let t = |v: &str| reference_token(KEY, v);
    let mut ev = sample_event();
    masker(Policy::Hash).mask_event(&mut ev);
    let want_fields = json!({
        "ani": t("+15555550955"),
        "dnis": t("+81399999998"),
        "address_from": t("jane.roe@example.com"),
        "address_to": t("support@example.org"),
        "callback_numbers": [t("+5555550955"), null, t("15555550955")],
        "callback_user_name": t("Jane Roe"),
        "subject": t("Refund"),
        "wrapup_notes": null,
        "attributes": {"email": t("a@b.co"), "none": null, "n": t("7")},
        "queue_id": IDS[4],
        "wrapup_code": "555-555-0955",
    });
    let email_key = format!("<email:{}>", t("jane@example.com"));
    let mut want_extras = json!({
        "browser": {"ua": "Mozilla/5.0", "contact": format!("<email:{}>", t("jane@example.com"))},
        "list": ["plain", format!("call <phone:{}>", t("+5555550955"))],
        "ip": "10.1.2.3",
    });
    want_extras[&email_key] = json!(1);
    assert_eq!(
        ev.payload,
        Payload::from_maps(&map(want_fields), &map(want_extras))
    );
    let paths: Vec<&str> = ev.lineage.masked_fields.iter().map(|p| &**p).collect();
    let email_path = format!("extras.{email_key}");
    assert_eq!(
        paths,
        [
            "ani",
            "dnis",
            "address_from",
            "address_to",
            "callback_numbers",
            "callback_user_name",
            "subject",
            "attributes.email",
            "attributes.n",
            // Renamed to `<email:…>`, which sorts before `browser`.
            email_path.as_str(),
            "extras.browser.contact",
            "extras.list[1]",
        ]
    );
    // The silver record carries exactly that list, and no planted value.
    let bytes = silver_bytes(&ev);
    let silver: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(silver["lineage"]["masked_fields"], json!(paths));
    let text = String::from_utf8(bytes).unwrap().to_lowercase();
    for pii in [
        "5550955",
        "81399999998",
        "jane",
        "support@",
        "a@b.co",
        "refund",
    ] {
        assert!(!text.contains(pii), "{pii} in {text}");
    }
}

#[test]
fn sample_event_under_keep_and_redact_lists_only_what_changed() {
    let mut policies = MaskPolicies::all(Policy::Keep);
    policies.set("dnis", Policy::Redact).unwrap();
    policies.set("callback_numbers", Policy::Redact).unwrap();
    let mut ev = sample_event();
    let before = ev.payload.fields_map();
    Masker::new(KEY, policies).mask_event(&mut ev);
    let fields = ev.payload.fields_map();
    assert_eq!(fields["dnis"], json!("[REDACTED]"));
    assert_eq!(
        fields["callback_numbers"],
        json!(["[REDACTED]", null, "[REDACTED]"])
    );
    // Kept: addresses and names as written, text without PII untouched.
    for f in [
        "ani",
        "address_from",
        "address_to",
        "callback_user_name",
        "subject",
    ] {
        assert_eq!(fields[f], before[f], "{f}");
    }
    assert_eq!(
        fields["attributes"],
        json!({"email": format!("<email:{}>", reference_token(KEY, "a@b.co")), "none": null, "n": 7})
    );
    let paths: Vec<&str> = ev.lineage.masked_fields.iter().map(|p| &**p).collect();
    let email_path = format!(
        "extras.<email:{}>",
        reference_token(KEY, "jane@example.com")
    );
    assert_eq!(
        paths,
        [
            "dnis",
            "callback_numbers",
            "attributes.email",
            email_path.as_str(),
            "extras.browser.contact",
            "extras.list[1]",
        ]
    );
}

fn assert_event_masks_like_reference(m: &Masker, ev: &Event, scrub: Scrub) {
    let fields = ev.payload.fields_map();
    let extras = ev.payload.extras_map();
    assert_masks_like_reference(m, ev, &fields, &extras, scrub);
}

fn policies_to_try() -> Vec<Masker> {
    let mut mixed = MaskPolicies::default();
    for (f, p) in [
        ("ani", Policy::Keep),
        ("subject", Policy::Keep),
        ("wrapup_notes", Policy::Keep),
        ("attributes", Policy::Keep),
        ("callback_numbers", Policy::Redact),
        ("callback_user_name", Policy::Redact),
    ] {
        mixed.set(f, p).unwrap();
    }
    vec![
        masker(Policy::Hash),
        masker(Policy::Redact),
        masker(Policy::Keep),
        Masker::new(KEY, mixed),
    ]
}

/// Generated traffic (every event kind, old and future schema versions)
/// against the reference. The generator's free text is not in `TEXTS`,
/// so here the oracle for free text is the production scanner (checked
/// against hand-written outputs above and in the property test); the
/// field walk, policies, normalization, tokens and paths are the
/// reference's own.
#[test]
fn generated_events_mask_like_the_reference() {
    use crate::generate::{GenConfig, Generator, VersionMix};
    use crate::operators::decode::{decode_record, DecodeInput, Decoded};
    let maskers = policies_to_try();
    let scanner = masker(Policy::Keep);
    let scrub = |s: &str| scanner.scrub_text(s);
    let records = Generator::new(GenConfig {
        interactions: 200,
        seed: 5,
        version_mix: VersionMix {
            future_pct: 30.0,
            old_sdk_pct: 30.0,
            ..VersionMix::default()
        },
        collect_truth: false,
        ..GenConfig::default()
    });
    let (mut n, mut masked) = (0, 0);
    for r in records {
        let mut out = Vec::new();
        decode_record(
            &DecodeInput {
                value: &r.value,
                source: SourceRef {
                    topic: Arc::from("t"),
                    partition: 0,
                    offset: 0,
                },
                header_lineage_token: None,
                record_timestamp_ms: None,
                ticket: 0,
            },
            &mut out,
        );
        for ev in out.iter().filter_map(Decoded::as_event) {
            for m in &maskers {
                assert_event_masks_like_reference(m, ev, &scrub);
            }
            let mut e = ev.clone();
            maskers[0].mask_event(&mut e);
            masked += usize::from(!e.lineage.masked_fields.is_empty());
            n += 1;
        }
    }
    assert!(n > 1000, "{n}");
    assert!(masked > n / 2, "{masked} of {n} events had PII");
}

fn text_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(TEXTS.iter().map(|(raw, _)| *raw).collect::<Vec<_>>())
            .prop_map(str::to_owned),
        "[a-zA-Z ,.!]{0,20}",
    ]
}

fn address_value() -> impl Strategy<Value = String> {
    prop_oneof![
        (200u32..1000, 200u32..1000, 0u32..10_000, 0usize..8).prop_map(|(a, e, l, f)| {
            match f {
                0 => format!(" +1 ({a}) {e}-{l:04} "),
                1 => format!("tel:+1{a}{e}{l:04}"),
                2 => format!("sip:+1{a}{e}{l:04}@10.0.0.1;user=phone"),
                3 => format!("TEL:{a}.{e}.{l:04}"),
                4 => format!("sip:Agent{a}@host"),
                5 => format!("tel:+1-{a}-{e}-{l:04}?x=1"),
                6 => format!("{a}{e}{l:04}"),
                _ => "sip:IPadPhone@172.18.182.10".to_owned(),
            }
        }),
        ("[a-zA-Z][a-zA-Z0-9._]{0,8}", "[a-zA-Z]{2,8}", 0usize..3).prop_map(|(l, d, f)| {
            match f {
                0 => format!(" {l}@{d}.COM "),
                1 => format!("MailTo:{l}@{d}.org"),
                _ => format!("{l}@{d}.io"),
            }
        }),
        " ?[a-zA-Z@.+0-9 :;\"\\\\-]{0,30} ?",
    ]
}

fn structured_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        (text_value(), any::<i64>()).prop_map(|(t, n)| json!([t.clone(), null, n, {"deep": t}])),
        (text_value(), text_value()).prop_map(|(k, t)| {
            let mut m = Map::new();
            m.insert(k, json!(t.clone()));
            m.insert("n".into(), json!(1.5));
            m.insert("none".into(), Value::Null);
            m.insert("deep".into(), json!({"x": t.clone(), "list": [t]}));
            Value::Object(m)
        }),
    ]
}

fn field_value(kind: RefKind) -> BoxedStrategy<Value> {
    let text = || text_value().prop_map(Value::from);
    let addr = || address_value().prop_map(Value::from);
    match kind {
        RefKind::Address => prop_oneof![3 => addr(), 1 => structured_value()].boxed(),
        RefKind::List => prop_oneof![
            3 => prop::collection::vec(prop_oneof![3 => addr(), 1 => Just(Value::Null), 1 => any::<i64>().prop_map(Value::from)], 0..4)
                .prop_map(Value::Array),
            1 => addr(),
            1 => structured_value(),
        ]
        .boxed(),
        RefKind::Name | RefKind::Text => {
            prop_oneof![3 => text(), 1 => structured_value()].boxed()
        }
        RefKind::Attributes => prop_oneof![
            3 => prop::collection::vec((text_value(), prop_oneof![2 => text(), 1 => structured_value()]), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            1 => text(),
            1 => structured_value(),
        ]
        .boxed(),
    }
}

fn all_fields() -> impl Strategy<Value = Map<String, Value>> {
    REF_FIELDS
        .iter()
        .map(|&(name, kind)| {
            (
                Just(name),
                proptest::option::weighted(0.9, field_value(kind)),
            )
        })
        .collect::<Vec<_>>()
        .prop_map(|fields| {
            let mut m = Map::new();
            for (name, v) in fields {
                if let Some(v) = v {
                    m.insert(name.to_owned(), v);
                }
            }
            // Not maskable: never touched, whatever it holds.
            m.insert("wrapup_code".into(), json!("555-555-0955"));
            m
        })
}

proptest! {
    /// Every field kind and policy, nested extras with PII in values
    /// and keys, against the independent reference with hand-written
    /// free-text outputs.
    #[test]
    fn any_values_mask_like_the_reference(
        fields in all_fields(),
        extras in proptest::collection::vec(
            (prop_oneof!["[a-z]{1,8}", text_value()],
             prop_oneof![text_value().prop_map(Value::from), structured_value()]),
            0..4,
        ),
    ) {
        let extras: Map<String, Value> = extras.into_iter().collect();
        for m in &policies_to_try() {
            assert_masks_like_reference(m, &event(Value::Object(fields.clone()), Value::Object(extras.clone())), &fields, &extras, &table_scrub);
        }
    }
}
