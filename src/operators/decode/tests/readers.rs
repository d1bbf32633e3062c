//! The fast scanner and serde_json give the same units; property tests
//! over generated, damaged and random records.

use super::*;

// ------------------------------------------- the two readers agree

/// Decodes `value` with the fast scanner allowed and with serde_json
/// only, and requires the same units, and silver records equal to what
/// serde_json writes for their fields (see `lineage`'s reference).
fn assert_readers_agree(value: &[u8]) {
    let fast = decode(value);
    let mut slow = Vec::new();
    decode_units(&input(value), &mut slow, false);
    assert_eq!(fast, slow, "{}", String::from_utf8_lossy(value));
    for ev in fast.iter().filter_map(Decoded::as_event) {
        crate::operators::lineage::tests::assert_encodes_like_reference(ev, None);
    }
}

#[test]
fn fixtures_decode_alike_with_both_readers() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/input");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let bytes = std::fs::read(entry.path()).unwrap_or_default();
        assert_readers_agree(&bytes);
        n += 1;
    }
    assert!(n >= 42);
}

#[test]
fn generated_traffic_decodes_alike_with_both_readers() {
    use crate::generate::{GenConfig, Generator, VersionMix};
    for (seed, drift) in [(1, 10.0), (2, 40.0)] {
        let records = Generator::new(GenConfig {
            interactions: 300,
            seed,
            malformed_pct: 5.0,
            batch_pct: 10.0,
            version_mix: VersionMix {
                iso_time_pct: drift,
                numeric_string_time_pct: drift,
                old_sdk_pct: drift,
                future_pct: drift,
            },
            collect_truth: false,
            ..GenConfig::default()
        });
        let mut n = 0;
        for r in records {
            assert_readers_agree(&r.value);
            n += 1;
        }
        assert!(n > 1000, "{n}");
    }
}

/// Generated records with a few bytes replaced, dropped or inserted:
/// broken JSON, wrong types, odd escapes.
#[test]
fn damaged_records_decode_alike_with_both_readers() {
    use crate::generate::{GenConfig, Generator};
    let records: Vec<Vec<u8>> = Generator::new(GenConfig {
        interactions: 40,
        seed: 9,
        collect_truth: false,
        ..GenConfig::default()
    })
    .map(|r| r.value)
    .collect();
    let pieces: [&[u8]; 12] = [
        b"\"",
        b"{",
        b"}",
        b"[",
        b",",
        b":",
        b"\\u00e9",
        b"\\\"",
        b"null",
        b"1e400",
        b"\"k\":1,",
        b"-0",
    ];
    let mut seed: u64 = 0x5eed;
    let mut next = |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as usize) % n.max(1)
    };
    for r in &records {
        for _ in 0..6 {
            let mut v = r.clone();
            for _ in 0..1 + next(3) {
                let at = next(v.len());
                match next(3) {
                    0 => {
                        v.remove(at.min(v.len().saturating_sub(1)));
                    }
                    1 => {
                        let p = pieces[next(pieces.len())];
                        v.splice(at..at, p.iter().copied());
                    }
                    _ => {
                        let p = pieces[next(pieces.len())];
                        let end = (at + p.len()).min(v.len());
                        v.splice(at..end, p.iter().copied());
                    }
                }
            }
            assert_readers_agree(&v);
        }
    }
}

fn piece() -> impl Strategy<Value = String> {
    let ev = serde_json::to_string(&envelope("acd.end", body())).unwrap_or_default();
    let bare_ev = serde_json::to_string(&bare("wrapup", body())).unwrap_or_default();
    prop_oneof![
        Just(ev.clone()),
        Just(bare_ev.clone()),
        Just(format!("[{ev},{bare_ev}]")),
        Just("[]".to_string()),
        Just("17".to_string()),
        Just("{}".to_string()),
        Just(ev[..ev.len() / 2].to_string()),
        "[ -~]{0,12}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[ -~]{0,24}".prop_map(Value::from),
        Just(json!("2021-04-2T15:30:51.418Z")),
        Just(json!("2022-04-06T09:30:44.949+02:00")),
        Just(json!("1649237444949")),
        Just(json!(format!("{DETAIL_TOPIC_PREFIX}{CONV}.acd.end"))),
        Just(json!(CONV)),
        Just(json!([1, "x", null])),
        Just(json!({"k": "v"})),
    ]
}

proptest! {
    #[test]
    fn any_field_value_decodes_or_rejects(
        subs in proptest::collection::vec((0usize..14, leaf()), 0..6),
    ) {
        let paths: [&[&str]; 14] = [
            &["id"], &["detail-type"], &["detail"], &["replay-name"],
            &["detail", "topicName"], &["detail", "version"], &["detail", "eventBody"],
            &["detail", "metadata"], &["detail", "eventBody", "eventTime"],
            &["detail", "eventBody", "conversationId"], &["detail", "eventBody", "mediaType"],
            &["detail", "eventBody", "participantId"], &["detail", "eventBody", "disconnectType"],
            &["detail", "eventBody", "requestedRoutings"],
        ];
        let mut e = envelope("acd.end", body());
        for (i, v) in subs {
            e = with(e, paths[i], Some(v));
        }
        let bytes = serde_json::to_vec(&e).unwrap_or_default();
        assert_readers_agree(&bytes);
        let out = decode(&bytes);
        prop_assert_eq!(out.len(), 1);
        assert_ranges_ok(&out, bytes.len());
        assert_no_values_in_messages(&bytes, &out);
        if let Some(ev) = out[0].as_event() {
            prop_assert!((0..=upcast::MAX_EVENT_TIME_MS).contains(&ev.event_time_ms));
            prop_assert_eq!(ev.raw.clone(), 0..bytes.len());
        }
    }

    #[test]
    fn never_panics_and_ranges_stay_inside(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        assert_readers_agree(&bytes);
        let out = decode(&bytes);
        prop_assert!(!out.is_empty());
        assert_ranges_ok(&out, bytes.len());
    }

    #[test]
    fn mixed_records_account_for_every_unit(
        pieces in proptest::collection::vec(piece(), 1..6),
        seps in proptest::collection::vec(prop_oneof![Just(""), Just("\n"), Just(" \r\n\t")], 6),
    ) {
        let mut s = String::new();
        for (p, sep) in pieces.iter().zip(&seps) {
            s.push_str(p);
            s.push_str(sep);
        }
        assert_readers_agree(s.as_bytes());
        let out = decode(s.as_bytes());
        prop_assert!(!out.is_empty());
        assert_ranges_ok(&out, s.len());
        // Every event's bytes decode again to the same event.
        for ev in out.iter().filter_map(Decoded::as_event) {
            let again = decode(&s.as_bytes()[ev.raw.clone()]);
            let first = again.first().and_then(Decoded::as_event).map(|e| e.content_fp);
            prop_assert_eq!(first, Some(ev.content_fp));
        }
    }
}
