//! Free-text scrubbing inside JSON values: every string and object key at
//! any depth (the extras, structured attribute values), with the lineage
//! path of each change; and the check, on canonical text, that nothing
//! would change.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::json::{each_canonical_item, each_canonical_member, str_content};
use crate::model::Payload;

use super::scrub::scrub_text;
use super::token::Tokenizer;

/// The paths an event's masking changed (`Event::lineage.masked_fields`):
/// field names are static, only attribute and extras paths are built.
pub(super) type Paths = Vec<Cow<'static, str>>;

/// True when scrubbing the extras would change nothing: no key and no
/// string anywhere in them holds text the scrubber replaces (most
/// extras are ids), checked on their JSON text.
pub(super) fn extras_are_clean(tokens: &Tokenizer, payload: &Payload) -> bool {
    payload
        .extras()
        .all(|(key, value)| json_is_clean(tokens, key) && json_is_clean(tokens, value))
}

/// True when no string in the canonical JSON `json` (object keys
/// included) would be changed by [`scrub_text`]; numbers and
/// literals are not scanned.
pub(super) fn json_is_clean(tokens: &Tokenizer, json: &str) -> bool {
    let mut clean = true;
    match json.as_bytes().first() {
        Some(b'"') => str_content(json).is_some_and(|s| scrub_text(tokens, &s).is_none()),
        Some(b'[') => {
            each_canonical_item(json, |v| clean = clean && json_is_clean(tokens, v)) && clean
        }
        Some(b'{') => {
            each_canonical_member(json, |k, v| {
                clean = clean && json_is_clean(tokens, k) && json_is_clean(tokens, v)
            }) && clean
        }
        _ => true,
    }
}

/// Scrubs every string (and object key) inside `value`, pushing the path
/// of each changed string or renamed key; true if anything changed.
pub(super) fn scrub_value(
    tokens: &Tokenizer,
    value: &mut Value,
    path: &mut String,
    out: &mut Paths,
) -> bool {
    match value {
        Value::String(s) => match scrub_text(tokens, s) {
            Some(clean) => {
                *s = clean;
                out.push(Cow::Owned(path.clone()));
                true
            }
            None => false,
        },
        Value::Array(items) => {
            let mut any = false;
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push('[');
                path.push_str(&i.to_string());
                path.push(']');
                any |= scrub_value(tokens, item, path, out);
                path.truncate(len);
            }
            any
        }
        Value::Object(map) => scrub_map(tokens, map, path, out),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

pub(super) fn scrub_map(
    tokens: &Tokenizer,
    map: &mut Map<String, Value>,
    path: &mut String,
    out: &mut Paths,
) -> bool {
    let renamed = scrub_keys(tokens, map);
    let mut any = !renamed.is_empty();
    for (key, v) in map.iter_mut() {
        let len = path.len();
        path.push('.');
        path.push_str(key);
        let before = out.len();
        any |= scrub_value(tokens, v, path, out);
        if renamed.contains(key) && !out[before..].iter().any(|p| p == path) {
            out.push(Cow::Owned(path.clone()));
        }
        path.truncate(len);
    }
    any
}

/// Replaces each key of `map` that holds PII by its scrubbed text (a
/// name already taken gets `#2`, `#3`…); returns the new names.
pub(super) fn scrub_keys(tokens: &Tokenizer, map: &mut Map<String, Value>) -> Vec<String> {
    let renames: Vec<(String, String)> = map
        .keys()
        .filter_map(|k| scrub_text(tokens, k).map(|clean| (k.clone(), clean)))
        .collect();
    let mut renamed = Vec::with_capacity(renames.len());
    for (old, clean) in renames {
        if let Some(v) = map.remove(&old) {
            let mut key = clean.clone();
            let mut n = 2;
            while map.contains_key(&key) {
                key = format!("{clean}#{n}");
                n += 1;
            }
            map.insert(key.clone(), v);
            renamed.push(key);
        }
    }
    renamed
}

#[cfg(test)]
mod tests {
    use super::super::tests::support::*;
    use super::super::{Policy, CARD_REMOVED};
    use serde_json::json;

    #[test]
    fn extras_are_scrubbed_recursively_under_every_policy() {
        for policy in [Policy::Hash, Policy::Redact, Policy::Keep] {
            let m = masker(policy);
            let extras = json!({
                "participantName": "Jane Roe",
                "remote": "tel:+15555550955",
                "nested": {
                    "list": ["ok", "mail jane@example.com", 5555550955u64, {"deep": "4111 1111 1111 1111"}],
                    "id": "2f7bf00a-0fc2-4d6a-9b56-92238191433e",
                },
                "jane@example.com": "value",
                "when": "2022-04-06T09:30:44.949Z",
            });
            let mut ev = event(json!({}), extras);
            m.mask_event(&mut ev);
            let ekey = format!("<email:{}>", m.token("jane@example.com"));
            let x = &ev.payload.extras_map();
            assert_eq!(x["participantName"], json!("Jane Roe"));
            assert_eq!(x["remote"], json!(phone_tag(&m, "+15555550955")));
            assert_eq!(x["nested"]["list"][0], json!("ok"));
            assert_eq!(x["nested"]["list"][1], json!(format!("mail {ekey}")));
            assert_eq!(x["nested"]["list"][2], json!(5555550955u64));
            assert_eq!(x["nested"]["list"][3]["deep"], json!(CARD_REMOVED));
            assert_eq!(
                x["nested"]["id"],
                json!("2f7bf00a-0fc2-4d6a-9b56-92238191433e")
            );
            assert_eq!(x[ekey.as_str()], json!("value"));
            assert!(!x.contains_key("jane@example.com"));
            assert_eq!(x["when"], json!("2022-04-06T09:30:44.949Z"));
            let mut paths = ev.lineage.masked_fields.clone();
            paths.sort();
            let mut want = vec![
                format!("extras.{ekey}"),
                "extras.nested.list[1]".to_owned(),
                "extras.nested.list[3].deep".to_owned(),
                "extras.remote".to_owned(),
            ];
            want.sort();
            assert_eq!(paths, want);
            assert!(paths.iter().all(|p| !p.contains("jane@")));
        }
    }

    #[test]
    fn colliding_scrubbed_keys_are_both_kept() {
        let m = masker(Policy::Keep);
        let mut ev = event(
            json!({}),
            json!({"A@B.com": {"x": 1}, "a@b.com": 2, "4111111111111111": 3}),
        );
        m.mask_event(&mut ev);
        let ekey = format!("<email:{}>", m.token("a@b.com"));
        assert_eq!(ev.payload.extras_map().len(), 3);
        assert!(ev.payload.extras_map().contains_key(&ekey));
        assert!(ev.payload.extras_map().contains_key(&format!("{ekey}#2")));
        assert_eq!(ev.payload.extras_map()[CARD_REMOVED], json!(3));
        assert_eq!(ev.lineage.masked_fields.len(), 3);
    }
}
