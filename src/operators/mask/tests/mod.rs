//! Tests of the whole [`Masker`](super::Masker): the façade here, the
//! independent reference in `reference.rs`; the tests of each part sit
//! beside its code.

pub(super) mod support;

mod reference;

use super::{MaskPolicies, Masker, Policy};
use serde_json::json;
use support::*;

#[test]
fn masked_fields_are_appended_not_replaced() {
    let m = masker(Policy::Hash);
    let mut ev = event(json!({"ani": "tel:+1555", "dnis": "tel:+1666"}), json!({}));
    ev.lineage.masked_fields.push("earlier".into());
    m.mask_event(&mut ev);
    assert_eq!(ev.lineage.masked_fields, vec!["earlier", "ani", "dnis"]);
}

#[test]
fn debug_and_errors_do_not_leak_the_key() {
    let m = Masker::new(b"super-secret-key-material", MaskPolicies::default());
    let d = format!("{m:?}");
    assert!(!d.contains("super-secret"));
    assert!(!d.contains(&hex::encode(b"super-secret-key-material")));
    assert!(d.contains("redacted") && d.contains("ani"));
    let e = MaskPolicies::default()
        .set("queue_id", Policy::Hash)
        .unwrap_err();
    assert!(e.to_string().contains("queue_id"));
}

#[test]
fn masker_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Masker>();
    assert_send_sync::<MaskPolicies>();
}
