//! Masking the maskable fields of an event's payload from their JSON
//! text: address, name and text fields, `callback_numbers`, `attributes`.

use std::borrow::Cow;

use serde_json::Value;

use crate::json::{
    each_canonical_item, each_canonical_member, parse_canonical, str_content, write_json_str,
};
use crate::model::{write_value, Payload};

use super::policy::{maskable, FieldKind, MaskPolicies, Policy, FIELDS, REDACTED};
use super::scrub::scrub_text;
use super::structured::{json_is_clean, scrub_keys, scrub_value, Paths};
use super::token::{normalize_address, push_token, Tokenizer};

/// Buffers one event's masking reuses.
#[derive(Default)]
struct Scratch {
    /// A normalized value about to be hashed.
    normalized: String,
    /// A field's new JSON text.
    text: String,
}

/// One maskable field of the event being masked.
#[derive(Debug, Clone, Copy)]
struct Field {
    /// Position in the payload's fields.
    index: usize,
    name: &'static str,
    kind: FieldKind,
    policy: Policy,
}

/// Masks the maskable fields of `payload` per `policies`, appending the
/// paths it changed to `out`.
pub(super) fn mask_fields(
    tokens: &Tokenizer,
    policies: &MaskPolicies,
    payload: &mut Payload,
    out: &mut Paths,
) {
    // Where each maskable field is, found in one pass over the fields.
    let mut at = [None; FIELDS.len()];
    for (index, (name, _)) in payload.fields().enumerate() {
        if let Some(slot) = maskable(name).and_then(|i| at.get_mut(i)) {
            *slot = Some(index);
        }
    }
    let mut scratch = Scratch::default();
    for (i, &(name, kind)) in FIELDS.iter().enumerate() {
        let policy = policies.policy_at(i);
        let Some(index) = at[i] else {
            continue;
        };
        let field = Field {
            index,
            name,
            kind,
            policy,
        };
        match kind {
            FieldKind::Address | FieldKind::Name | FieldKind::Text => {
                mask_scalar_field(tokens, payload, field, &mut scratch, out);
            }
            FieldKind::AddressList => {
                mask_address_list(tokens, payload, field, &mut scratch, out);
            }
            FieldKind::Attributes => mask_attributes(tokens, payload, field, &mut scratch, out),
        }
    }
}

/// An address, name or text field, from its JSON text: hashing and
/// redaction replace the whole value, so only `keep` on a non-string
/// needs the value itself.
fn mask_scalar_field(
    tokens: &Tokenizer,
    payload: &mut Payload,
    f: Field,
    scratch: &mut Scratch,
    out: &mut Paths,
) {
    let Some(json) = payload.field_json(f.index) else {
        return;
    };
    if json == "null" {
        return;
    }
    let text = str_content(json);
    match (f.policy, text) {
        (Policy::Hash, Some(s)) => {
            let token = match f.kind {
                FieldKind::Address | FieldKind::AddressList => {
                    tokens.address_token(&s, &mut scratch.normalized)
                }
                FieldKind::Name | FieldKind::Text | FieldKind::Attributes => {
                    tokens.token_hex(s.trim())
                }
            };
            payload.set_field_str(f.index, token.as_str());
        }
        // A non-string value hashes its compact JSON text, which is
        // exactly the canonical text the payload holds.
        (Policy::Hash, None) => {
            let token = tokens.token_hex(json);
            payload.set_field_str(f.index, token.as_str());
        }
        (Policy::Redact, _) => payload.set_field_str(f.index, REDACTED),
        (Policy::Keep, Some(s)) => match f.kind {
            FieldKind::Text => match scrub_text(tokens, &s) {
                Some(clean) => payload.set_field_str(f.index, &clean),
                None => return,
            },
            _ => return,
        },
        (Policy::Keep, None) => return mask_field_value(tokens, payload, f, out),
    }
    out.push(Cow::Borrowed(f.name));
}

/// `callback_numbers` from its JSON text: each element of an array
/// masked as an address field (nulls left alone); anything but an
/// array as one address.
fn mask_address_list(
    tokens: &Tokenizer,
    payload: &mut Payload,
    f: Field,
    scratch: &mut Scratch,
    out: &mut Paths,
) {
    // Addresses are kept as they are under `keep`.
    let Some(json) = payload
        .field_json(f.index)
        .filter(|_| f.policy != Policy::Keep)
    else {
        return;
    };
    if !json.starts_with('[') {
        let one = Field {
            kind: FieldKind::Address,
            ..f
        };
        return mask_scalar_field(tokens, payload, one, scratch, out);
    }
    let Scratch { normalized, text } = scratch;
    text.clear();
    text.push('[');
    let mut changed = false;
    let well_formed = each_canonical_item(json, |item| {
        if text.len() > 1 {
            text.push(',');
        }
        if item == "null" {
            text.push_str(item);
            return;
        }
        changed = true;
        match (f.policy, str_content(item)) {
            (Policy::Hash, Some(s)) => push_token(text, &tokens.address_token(&s, normalized)),
            (Policy::Hash, None) => push_token(text, &tokens.token_hex(item)),
            (Policy::Redact | Policy::Keep, _) => write_json_str(text, REDACTED),
        }
    });
    text.push(']');
    if !well_formed {
        // Cannot happen (the payload holds JSON it wrote); fail closed.
        payload.set_field_str(f.index, REDACTED);
    } else if changed {
        payload.set_field_json(f.index, |o| o.push_str(text));
    } else {
        return;
    }
    out.push(Cow::Borrowed(f.name));
}

/// `attributes` from its JSON text: each non-null value of an object
/// masked as free text, keys kept; structured values under `keep`, and
/// anything but an object, through their `Value`.
fn mask_attributes(
    tokens: &Tokenizer,
    payload: &mut Payload,
    f: Field,
    scratch: &mut Scratch,
    out: &mut Paths,
) {
    let Some(json) = payload.field_json(f.index) else {
        return;
    };
    if !json.starts_with('{') {
        return mask_field_value(tokens, payload, f, out);
    }
    let text = &mut scratch.text;
    text.clear();
    text.push('{');
    let before = out.len();
    // A key holding PII is renamed, which can change the keys' order:
    // such a map goes through its `Value` instead.
    let mut keys_clean = true;
    let well_formed = each_canonical_member(json, |key, value| {
        keys_clean = keys_clean && json_is_clean(tokens, key);
        if !keys_clean {
            return;
        }
        if text.len() > 1 {
            text.push(',');
        }
        text.push_str(key);
        text.push(':');
        let masked = match (f.policy, str_content(value)) {
            _ if value == "null" => false,
            (Policy::Hash, Some(s)) => {
                push_token(text, &tokens.token_hex(s.trim()));
                true
            }
            (Policy::Hash, None) => {
                push_token(text, &tokens.token_hex(value));
                true
            }
            (Policy::Redact, _) => {
                write_json_str(text, REDACTED);
                true
            }
            (Policy::Keep, Some(s)) => match scrub_text(tokens, &s) {
                Some(clean) => {
                    write_json_str(text, &clean);
                    true
                }
                None => false,
            },
            (Policy::Keep, None) => scrub_structured(tokens, value, text),
        };
        if masked {
            let key = str_content(key).unwrap_or_default();
            out.push(Cow::Owned(format!("attributes.{key}")));
        } else {
            text.push_str(value);
        }
    });
    text.push('}');
    if well_formed && !keys_clean {
        out.truncate(before);
        mask_attributes_renaming_keys(tokens, payload, f, out);
    } else if !well_formed {
        // Cannot happen (the payload holds JSON it wrote); fail closed.
        out.truncate(before);
        payload.set_field_str(f.index, REDACTED);
        out.push(Cow::Borrowed(f.name));
    } else if out.len() > before {
        payload.set_field_json(f.index, |o| o.push_str(text));
    }
}

/// `attributes` (an object) some key of which holds PII: every key is
/// scrubbed as free text (as keys in the extras are, colliding names
/// get `#2`, `#3`…), each non-null value masked per the policy; the
/// path of a renamed key is listed under its new name even when its
/// value did not change.
fn mask_attributes_renaming_keys(
    tokens: &Tokenizer,
    payload: &mut Payload,
    f: Field,
    out: &mut Paths,
) {
    let Some(Value::Object(mut map)) = payload.field_value(f.index) else {
        // Cannot happen (the payload holds JSON it wrote); fail closed.
        payload.set_field_str(f.index, REDACTED);
        out.push(Cow::Borrowed(f.name));
        return;
    };
    let renamed = scrub_keys(tokens, &mut map);
    let mut changed = !renamed.is_empty();
    for (key, value) in map.iter_mut() {
        let masked = !value.is_null() && mask_value(tokens, value, f.kind, f.policy);
        changed |= masked;
        if masked || renamed.contains(key) {
            out.push(Cow::Owned(format!("attributes.{key}")));
        }
    }
    if changed {
        let map = Value::Object(map);
        payload.set_field_json(f.index, |o| write_value(o, &map));
    }
}

/// `keep` on a structured attribute value (`json`): its strings
/// scrubbed through its `Value`; the new text appended to `out` when
/// something changed.
fn scrub_structured(tokens: &Tokenizer, json: &str, out: &mut String) -> bool {
    let Some(mut v) = parse_canonical(json) else {
        // Cannot happen (the payload holds JSON it wrote); fail closed.
        write_json_str(out, REDACTED);
        return true;
    };
    let changed = mask_value(tokens, &mut v, FieldKind::Attributes, Policy::Keep);
    if changed {
        write_value(out, &v);
    }
    changed
}

/// Any field as one value, through its `serde_json::Value` (`keep` on
/// structured text, attributes that are not an object).
fn mask_field_value(tokens: &Tokenizer, payload: &mut Payload, f: Field, out: &mut Paths) {
    let Some(json) = payload.field_json(f.index) else {
        return;
    };
    if json == "null" {
        return;
    }
    let Some(mut value) = payload.field_value(f.index) else {
        // Cannot happen (the payload holds JSON it wrote); fail closed.
        payload.set_field_str(f.index, REDACTED);
        out.push(Cow::Borrowed(f.name));
        return;
    };
    if mask_value(tokens, &mut value, f.kind, f.policy) {
        payload.set_field_json(f.index, |o| write_value(o, &value));
        out.push(Cow::Borrowed(f.name));
    }
}

/// Applies `policy` to one non-null value; true if it changed.
fn mask_value(tokens: &Tokenizer, value: &mut Value, kind: FieldKind, policy: Policy) -> bool {
    match policy {
        Policy::Hash => {
            let token = match value {
                Value::String(s) => match kind {
                    FieldKind::Address | FieldKind::AddressList => {
                        tokens.token(&normalize_address(s))
                    }
                    FieldKind::Name | FieldKind::Text | FieldKind::Attributes => {
                        tokens.token(s.trim())
                    }
                },
                Value::Null
                | Value::Bool(_)
                | Value::Number(_)
                | Value::Array(_)
                | Value::Object(_) => tokens.token(&value.to_string()),
            };
            *value = Value::String(token);
            true
        }
        Policy::Redact => {
            *value = Value::String(REDACTED.to_owned());
            true
        }
        Policy::Keep => match kind {
            FieldKind::Text | FieldKind::Attributes => {
                let mut path = String::new();
                let mut scratch = Vec::new();
                scrub_value(tokens, value, &mut path, &mut scratch)
            }
            FieldKind::Address | FieldKind::AddressList | FieldKind::Name => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::support::*;
    use super::super::{MaskPolicies, Masker, Policy, REDACTED};
    use serde_json::{json, Map, Value};

    #[test]
    fn each_policy_on_each_scalar_field() {
        let cases = [
            ("ani", "tel:+1 (555) 555-0955", "+15555550955"),
            (
                "dnis",
                "sip:+81399999998@172.18.182.10;user=phone",
                "+81399999998",
            ),
            (
                "address_from",
                " John.Doe@Example.com ",
                "john.doe@example.com",
            ),
            ("address_to", "+1 555 555 0000", "+15555550000"),
            ("callback_user_name", "  Jane Roe ", "Jane Roe"),
            ("subject", " Refund for my order ", "Refund for my order"),
            (
                "wrapup_notes",
                "Customer asked about fees.",
                "Customer asked about fees.",
            ),
        ];
        for (field, raw, normalized) in cases {
            for policy in [Policy::Hash, Policy::Redact, Policy::Keep] {
                let mut p = MaskPolicies::default();
                p.set(field, policy).unwrap();
                let m = Masker::new(KEY, p);
                let mut ev = event(one_field(field, json!(raw)), json!({}));
                m.mask_event(&mut ev);
                let got = &ev.payload.fields_map()[field];
                match policy {
                    Policy::Hash => {
                        assert_eq!(got, &json!(reference_token(KEY, normalized)), "{field}");
                        assert_eq!(ev.lineage.masked_fields, vec![field.to_owned()]);
                    }
                    Policy::Redact => {
                        assert_eq!(got, &json!(REDACTED), "{field}");
                        assert_eq!(ev.lineage.masked_fields, vec![field.to_owned()]);
                    }
                    Policy::Keep => {
                        assert_eq!(got, &json!(raw), "{field}");
                        assert!(ev.lineage.masked_fields.is_empty(), "{field}");
                    }
                }
            }
        }
    }

    #[test]
    fn keep_still_scrubs_free_text_fields_but_not_addresses() {
        let m = masker(Policy::Keep);
        let text = "Call 555-555-0955 or mail Jane.Roe@Example.com, card 4111 1111 1111 1111";
        let mut ev = event(
            json!({
                "ani": "tel:+15555550955",
                "callback_user_name": "Jane Roe",
                "subject": text,
                "wrapup_notes": text,
            }),
            json!({}),
        );
        m.mask_event(&mut ev);
        let want = format!(
            "Call {} or mail <email:{}>, card <card:removed>",
            phone_tag(&m, "+5555550955"),
            m.token("jane.roe@example.com")
        );
        assert_eq!(ev.payload.fields_map()["subject"], json!(want));
        assert_eq!(ev.payload.fields_map()["wrapup_notes"], json!(want));
        assert_eq!(ev.payload.fields_map()["ani"], json!("tel:+15555550955"));
        assert_eq!(
            ev.payload.fields_map()["callback_user_name"],
            json!("Jane Roe")
        );
        assert_eq!(ev.lineage.masked_fields, vec!["subject", "wrapup_notes"]);
    }

    #[test]
    fn null_and_missing_fields_are_not_masked_or_listed() {
        let m = masker(Policy::Hash);
        let mut ev = event(
            json!({"ani": null, "subject": null, "attributes": {"a": null}, "callback_numbers": [null]}),
            json!({}),
        );
        let before = ev.clone();
        m.mask_event(&mut ev);
        assert_eq!(ev, before);
        assert!(ev.lineage.masked_fields.is_empty());
    }

    #[test]
    fn non_string_values_are_masked_too() {
        let m = masker(Policy::Hash);
        let mut ev = event(
            json!({
                "ani": 15555550955u64,
                "subject": {"text": "hi"},
                "callback_user_name": true,
                "attributes": {"n": 12, "o": {"k": "v"}},
            }),
            json!({}),
        );
        m.mask_event(&mut ev);
        assert_eq!(
            ev.payload.fields_map()["ani"],
            json!(m.token("15555550955"))
        );
        assert_eq!(
            ev.payload.fields_map()["subject"],
            json!(m.token(r#"{"text":"hi"}"#))
        );
        assert_eq!(
            ev.payload.fields_map()["callback_user_name"],
            json!(m.token("true"))
        );
        assert_eq!(
            ev.payload.fields_map()["attributes"]["n"],
            json!(m.token("12"))
        );
        assert_eq!(
            ev.payload.fields_map()["attributes"]["o"],
            json!(m.token(r#"{"k":"v"}"#))
        );

        let r = masker(Policy::Redact);
        let mut ev = event(json!({"dnis": 42, "attributes": {"x": [1, 2]}}), json!({}));
        r.mask_event(&mut ev);
        assert_eq!(ev.payload.fields_map()["dnis"], json!(REDACTED));
        assert_eq!(ev.payload.fields_map()["attributes"]["x"], json!(REDACTED));

        // Keep scrubs strings nested in a non-string free-text value.
        let k = masker(Policy::Keep);
        let mut ev = event(json!({"wrapup_notes": {"note": "mail a@b.com"}}), json!({}));
        k.mask_event(&mut ev);
        let want = format!("mail <email:{}>", k.token("a@b.com"));
        assert_eq!(
            ev.payload.fields_map()["wrapup_notes"],
            json!({"note": want})
        );
        assert_eq!(ev.lineage.masked_fields, vec!["wrapup_notes"]);
    }

    #[test]
    fn attribute_maps() {
        let attrs = json!({
            "context.email": " Jane@Example.com ",
            "context.firstName": "Jane",
            "lang": "en",
            "empty": null,
        });
        let h = masker(Policy::Hash);
        let mut ev = event(json!({"attributes": attrs.clone()}), json!({}));
        h.mask_event(&mut ev);
        let got = &ev.payload.fields_map()["attributes"];
        assert_eq!(got["context.email"], json!(h.token("Jane@Example.com")));
        assert_eq!(got["context.firstName"], json!(h.token("Jane")));
        assert_eq!(got["lang"], json!(h.token("en")));
        assert_eq!(got["empty"], Value::Null);
        assert_eq!(
            ev.lineage.masked_fields,
            vec![
                "attributes.context.email",
                "attributes.context.firstName",
                "attributes.lang"
            ]
        );

        let r = masker(Policy::Redact);
        let mut ev = event(json!({"attributes": attrs.clone()}), json!({}));
        r.mask_event(&mut ev);
        assert_eq!(
            ev.payload.fields_map()["attributes"]["lang"],
            json!(REDACTED)
        );
        assert_eq!(ev.lineage.masked_fields.len(), 3);

        let k = masker(Policy::Keep);
        let mut ev = event(json!({"attributes": attrs}), json!({}));
        k.mask_event(&mut ev);
        let got = &ev.payload.fields_map()["attributes"];
        assert_eq!(
            got["context.email"],
            json!(format!(" <email:{}> ", k.token("jane@example.com")))
        );
        assert_eq!(got["context.firstName"], json!("Jane"));
        assert_eq!(ev.lineage.masked_fields, vec!["attributes.context.email"]);
    }

    /// A key holding PII (Genesys lets flows name attributes freely) is
    /// scrubbed like free text under every policy, in the map and in its
    /// lineage path; other keys stay as they are.
    #[test]
    fn attribute_keys_holding_pii_are_scrubbed_in_the_map_and_the_paths() {
        let attrs = json!({
            "jane.doe@example.com": "vip",
            "Jane.Doe@Example.com": "again",
            "+1 317 555 0148": null,
            "card 4111 1111 1111 1111": "seen",
            "lang": "en",
        });
        let t = |v: &str| reference_token(KEY, v);
        let email = format!("<email:{}>", t("jane.doe@example.com"));
        let phone = format!("<phone:{}>", t("+13175550148"));
        let card = "card <card:removed>".to_owned();
        // Keys are renamed in key order: `Jane.Doe@…` sorts first and takes
        // the plain name, the lowercase spelling gets `#2`.
        let email2 = format!("{email}#2");
        for policy in [Policy::Hash, Policy::Redact, Policy::Keep] {
            let m = masker(policy);
            let mut ev = event(json!({"attributes": attrs.clone()}), json!({}));
            m.mask_event(&mut ev);
            let value = |v: &str| match policy {
                Policy::Hash => json!(t(v)),
                Policy::Redact => json!(REDACTED),
                Policy::Keep => json!(v),
            };
            let mut want = Map::new();
            want.insert(email.clone(), value("again"));
            want.insert(email2.clone(), value("vip"));
            want.insert(phone.clone(), Value::Null);
            want.insert(card.clone(), value("seen"));
            want.insert("lang".into(), value("en"));
            let got = &ev.payload.fields_map()["attributes"];
            assert_eq!(got, &Value::Object(want), "{policy}");
            // Every renamed key is listed (even with a null value), under
            // its new name; `lang` only when its value changed.
            let mut paths: Vec<String> = [&email, &email2, &phone, &card]
                .iter()
                .map(|k| format!("attributes.{k}"))
                .collect();
            paths.sort();
            if policy != Policy::Keep {
                paths.push("attributes.lang".into());
            }
            let got: Vec<&str> = ev.lineage.masked_fields.iter().map(|p| &**p).collect();
            assert_eq!(got, paths, "{policy}");
            // Neither the silver record nor its lineage carries the keys.
            let bytes = silver_bytes(&ev);
            let text = String::from_utf8(bytes).unwrap().to_lowercase();
            for pii in ["jane", "doe@", "555 0148", "5550148", "4111"] {
                assert!(!text.contains(pii), "{policy}: {pii} in {text}");
            }
        }
        // Plain keys next to a PII key keep their names and positions.
        let m = masker(Policy::Keep);
        let mut ev = event(
            json!({"attributes": {"a": "x", "ivr.intent": "billing", "jane@example.com": 1}}),
            json!({}),
        );
        m.mask_event(&mut ev);
        let got = &ev.payload.fields_map()["attributes"];
        let key = format!("<email:{}>", t("jane@example.com"));
        assert_eq!(
            got,
            &json!({"a": "x", "ivr.intent": "billing", key.clone(): 1})
        );
        assert_eq!(ev.lineage.masked_fields, vec![format!("attributes.{key}")]);
    }

    /// Attributes that are not a map, or whose keys are plain names, keep
    /// the fast path's output (nothing renamed, nothing listed for keys).
    #[test]
    fn plain_attribute_keys_are_never_renamed() {
        for policy in [Policy::Hash, Policy::Redact, Policy::Keep] {
            let m = masker(policy);
            let attrs = json!({"context.email": null, "ivr.step2": null, "x-y_z": null});
            let mut ev = event(json!({"attributes": attrs.clone()}), json!({}));
            m.mask_event(&mut ev);
            assert_eq!(ev.payload.fields_map()["attributes"], attrs, "{policy}");
            assert!(ev.lineage.masked_fields.is_empty(), "{policy}");
        }
    }

    #[test]
    fn callback_number_arrays() {
        let numbers = json!([
            "tel:+15555550955",
            "+1 (555) 555-0956",
            null,
            "Jane@Example.com"
        ]);
        let h = masker(Policy::Hash);
        let mut ev = event(json!({"callback_numbers": numbers.clone()}), json!({}));
        h.mask_event(&mut ev);
        assert_eq!(
            ev.payload.fields_map()["callback_numbers"],
            json!([
                h.token("+15555550955"),
                h.token("+15555550956"),
                null,
                h.token("jane@example.com")
            ])
        );
        assert_eq!(ev.lineage.masked_fields, vec!["callback_numbers"]);

        let r = masker(Policy::Redact);
        let mut ev = event(json!({"callback_numbers": numbers.clone()}), json!({}));
        r.mask_event(&mut ev);
        assert_eq!(
            ev.payload.fields_map()["callback_numbers"],
            json!([REDACTED, REDACTED, null, REDACTED])
        );

        let k = masker(Policy::Keep);
        let mut ev = event(json!({"callback_numbers": numbers.clone()}), json!({}));
        k.mask_event(&mut ev);
        assert_eq!(ev.payload.fields_map()["callback_numbers"], numbers);
        assert!(ev.lineage.masked_fields.is_empty());

        let mut ev = event(json!({"callback_numbers": []}), json!({}));
        h.mask_event(&mut ev);
        assert!(ev.lineage.masked_fields.is_empty());

        // A lone string is still masked.
        let mut ev = event(json!({"callback_numbers": "tel:+15555550955"}), json!({}));
        h.mask_event(&mut ev);
        assert_eq!(
            ev.payload.fields_map()["callback_numbers"],
            json!(h.token("+15555550955"))
        );
    }

    #[test]
    fn ids_and_unlisted_fields_are_never_touched() {
        let fields = json!({
            "ani": "tel:+15555550955",
            "conversation_id": IDS[1],
            "queue_id": IDS[4],
            "answered_user_id": IDS[5],
            "external_contact_id": "uwu",
            "external_organization_id": "America",
            "conversation_external_contact_ids": ["idk", "5555550955"],
            "wrapup_code": IDS[0],
            "disconnect_type": "TRANSFER",
            "acd_outcome": "ANSWERED",
            "routing_priority": 40,
            "connected_duration_ms": 39674,
            "outbound_contact_id": "12345678901",
            "division_id": "test-division-id",
        });
        for policy in [Policy::Hash, Policy::Redact, Policy::Keep] {
            let m = masker(policy);
            let mut ev = event(fields.clone(), json!({}));
            let before = ev.clone();
            m.mask_event(&mut ev);
            for (k, v) in &before.payload.fields_map() {
                if k != "ani" {
                    assert_eq!(&ev.payload.fields_map()[k], v, "{k}");
                }
            }
            assert_eq!(ev.event_id, before.event_id);
            assert_eq!(ev.interaction_id, before.interaction_id);
            assert_eq!(ev.participant_id, before.participant_id);
            assert_eq!(ev.session_id, before.session_id);
            assert_eq!(ev.queue_id, before.queue_id);
            assert_eq!(ev.user_id, before.user_id);
            assert_eq!(ev.event_time_ms, before.event_time_ms);
            assert_eq!(ev.lineage.token, before.lineage.token);
            assert_eq!(ev.source, before.source);
        }
    }
}
