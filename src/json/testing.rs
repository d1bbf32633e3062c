//! Test helpers shared by the JSON tests: random values and random
//! spellings of them.

use proptest::prelude::*;
use serde_json::{Number, Value};

/// JSON text for `v` with random spacing, member order, duplicates and
/// escapes: many spellings of one value.
fn rnd(seed: &mut u64) -> usize {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*seed >> 33) as usize
}

pub(super) fn spell(v: &Value, seed: &mut u64, out: &mut String) {
    let ws = [" ", "", "\n", "\t", "\r\n "][rnd(seed) % 5];
    match v {
        Value::String(s) => {
            if rnd(seed) % 3 == 0 && s.chars().all(|c| (c as u32) < 0xd800) {
                out.push('"');
                for c in s.chars() {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                }
                out.push('"');
            } else {
                out.push_str(&serde_json::to_string(s).unwrap_or_default());
            }
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(ws);
                spell(x, seed, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.reverse();
            let mut first = true;
            for (k, x) in entries {
                if !first {
                    out.push(',');
                }
                first = false;
                if rnd(seed) % 4 == 0 {
                    // A duplicate that the later member overrides.
                    out.push_str(&serde_json::to_string(k).unwrap_or_default());
                    out.push_str(":0,");
                }
                out.push_str(ws);
                out.push_str(&serde_json::to_string(k).unwrap_or_default());
                out.push_str(ws);
                out.push(':');
                spell(x, seed, out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

pub(super) fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::from),
        "[a-c\"\\\\\u{1}é]{0,4}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec(("[a-cé_\"]{0,3}", inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}
