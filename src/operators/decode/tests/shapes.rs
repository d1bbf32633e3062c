//! Reject codes, every kind's fixture, schema drift, malformed records.

use super::*;

// ---------------------------------------------------------------- codes

#[test]
fn reject_codes_are_stable_snake_case() {
    let codes: Vec<_> = RejectClass::ALL.iter().map(|c| c.code()).collect();
    assert_eq!(
        codes,
        [
            "not_json",
            "not_an_object",
            "unknown_shape",
            "missing_conversation_id",
            "missing_event_kind",
            "unsupported_event_kind",
            "missing_event_time",
            "invalid_event_time",
            "wrong_type",
            "inconsistent_conversation_id",
        ]
    );
    assert_eq!(RejectClass::WrongType.to_string(), "wrong_type");
}

// ------------------------------------------------------- the 16 kinds

#[test]
fn every_kind_fixture_decodes() {
    let files: [(&[u8], EventKind, bool); 16] = [
        (
            fixture!("01-customer-start.json"),
            EventKind::CustomerStart,
            true,
        ),
        (fixture!("02-outbound.json"), EventKind::Outbound, true),
        (fixture!("03-flow-start.json"), EventKind::FlowStart, true),
        (
            fixture!("04-flow-outcome.json"),
            EventKind::FlowOutcome,
            false,
        ),
        (fixture!("05-flow-end.json"), EventKind::FlowEnd, true),
        (fixture!("06-acd-start.json"), EventKind::AcdStart, true),
        (fixture!("07-user-start.json"), EventKind::UserStart, true),
        (fixture!("08-acd-end.json"), EventKind::AcdEnd, true),
        (fixture!("09-attributes.json"), EventKind::Attributes, true),
        (fixture!("10-contact.json"), EventKind::Contact, false),
        (
            fixture!("11-voicemail-start.json"),
            EventKind::VoicemailStart,
            true,
        ),
        (
            fixture!("12-voicemail-end.json"),
            EventKind::VoicemailEnd,
            false,
        ),
        (fixture!("13-user-end.json"), EventKind::UserEnd, true),
        (fixture!("14-acw.json"), EventKind::Acw, true),
        (fixture!("15-wrapup.json"), EventKind::Wrapup, false),
        (
            fixture!("16-customer-end.json"),
            EventKind::CustomerEnd,
            true,
        ),
    ];
    let mut seen = Vec::new();
    for (bytes, kind, enveloped) in files {
        let ev = event(bytes);
        let raw: Value = serde_json::from_slice(bytes).unwrap_or_default();
        let detail = if enveloped { &raw["detail"] } else { &raw };
        let body = &detail["eventBody"];
        assert_eq!(ev.kind, kind);
        assert_eq!(ev.raw, 0..bytes.len());
        assert_eq!(
            Some(ev.interaction_id.as_str()),
            body["conversationId"].as_str()
        );
        assert_eq!(Some(ev.event_time_ms), body["eventTime"].as_i64());
        assert_eq!(ev.source_version, "2");
        assert_eq!(ev.participant_id.as_deref(), body["participantId"].as_str());
        assert_eq!(ev.session_id.as_deref(), body["sessionId"].as_str());
        assert_eq!(ev.media_type.as_deref(), body["mediaType"].as_str());
        assert_eq!(ev.queue_id.as_deref(), body["queueId"].as_str());
        assert_eq!(ev.user_id.as_deref(), body["userId"].as_str());
        if enveloped {
            assert_eq!(Some(ev.event_id.as_str()), raw["id"].as_str());
            assert!(ev.id_fp.is_some());
        } else {
            assert_eq!(ev.event_id, format!("fp-{:032x}", ev.content_fp));
            assert_eq!(ev.id_fp, None);
        }
        assert_eq!(
            Some(ev.lineage.token.as_str()),
            detail["metadata"]["CorrelationId"].as_str()
        );
        // Every known field of the kind, snake_case, values as received.
        let known: Vec<_> = upcast::fields_of(kind).collect();
        assert_eq!(ev.payload.fields_map().len(), known.len(), "{kind:?}");
        for spec in known {
            let want = body.get(spec.name).cloned().unwrap_or(Value::Null);
            assert_eq!(
                ev.payload.fields_map().get(spec.canonical),
                Some(&want),
                "{kind:?}.{}",
                spec.canonical
            );
        }
        for k in [
            "eventTime",
            "conversationId",
            "participantId",
            "sessionId",
            "queueId",
            "userId",
        ] {
            assert!(
                !ev.payload.fields_map().contains_key(k)
                    && !ev.payload.extras_map().contains_key(k)
            );
        }
        assert!(
            ev.notes.unknown_enum_values.is_empty(),
            "{kind:?} {:?}",
            ev.notes
        );
        assert!(!ev.notes.newer_version);
        let filled = upcast::fields_of(kind).any(|f| body.get(f.name).is_none());
        let steps: &[&str] = if filled {
            &["fill_absent_known_fields"]
        } else {
            &[]
        };
        assert_eq!(ev.notes.upcast_steps, steps, "{kind:?}");
        seen.push(kind);
    }
    seen.sort();
    let mut all = EventKind::ALL.to_vec();
    all.sort();
    assert_eq!(seen, all);
}

#[test]
fn pii_fields_are_kept_verbatim_until_masking() {
    let acw = event(fixture!("14-acw.json"));
    let fields = acw.payload.fields_map();
    let notes = fields["wrapup_notes"].as_str().unwrap_or_default();
    assert!(notes.contains("4111 1111 1111 1111") && notes.contains("jane.doe@example.com"));
    assert_eq!(acw.payload.fields_map()["ani"], json!("tel:+13175550148"));
    assert_eq!(
        acw.user_id.as_deref(),
        Some("cd9fdc70-ab38-460b-af12-20bc55148f79")
    );
    assert!(acw.payload.extras_map().is_empty());

    let attrs = event(fixture!("09-attributes.json"));
    assert_eq!(
        attrs.payload.fields_map()["attributes"]["context.email"],
        json!("jane.doe@example.com")
    );
    assert_eq!(
        attrs.payload.fields_map()["attributes"]["ivr.intent"],
        json!("billing")
    );
    assert_eq!(attrs.media_type, None);
    // attributes defines neither session nor media: not "missing".
    assert!(attrs.notes.missing_optional.is_empty(), "{:?}", attrs.notes);

    let cb = event(fixture!("06-acd-start.json"));
    assert_eq!(
        cb.payload.fields_map()["callback_numbers"],
        json!(["tel:+13175550148", "tel:+447700900123"])
    );
    assert_eq!(
        cb.payload.fields_map()["callback_user_name"],
        json!("Jane Doe")
    );

    let contact = event(fixture!("10-contact.json"));
    assert_eq!(
        contact.payload.fields_map()["address_from"],
        json!("jane.doe@example.com")
    );
    assert_eq!(contact.media_type.as_deref(), Some("EMAIL"));
}

#[test]
fn acd_end_fields_and_lowercase_flow_type() {
    let ev = event(fixture!("08-acd-end.json"));
    assert_eq!(ev.payload.fields_map()["acd_outcome"], json!("ANSWERED"));
    assert_eq!(
        ev.payload.fields_map()["answered_user_id"],
        json!("cd9fdc70-ab38-460b-af12-20bc55148f79")
    );
    assert_eq!(
        ev.payload.fields_map()["connected_duration_ms"],
        json!(11060)
    );
    assert_eq!(
        ev.payload.fields_map()["requested_routings"],
        json!(["STANDARD"])
    );
    assert_eq!(ev.payload.fields_map()["flow_type"], json!("inqueuecall")); // kept, and known
    assert_eq!(
        ev.payload.fields_map()["requested_skill_expression_ids"],
        Value::Null
    ); // filled
    assert!(ev.notes.unknown_enum_values.is_empty());
}

#[test]
fn replay_name_is_kept_as_an_envelope_extra() {
    let ev = event(fixture!("16-customer-end.json"));
    assert_eq!(ev.payload.extras_map().len(), 1);
    assert_eq!(
        ev.payload.extras_map()["envelope.replay-name"],
        json!("cx-archive-replay-20251213")
    );
}

// -------------------------------------------------------------- drift

#[test]
fn drift_event_time_representations() {
    let iso = event(fixture!("17-event-time-iso-string.json"));
    let num = event(fixture!("18-event-time-numeric-string.json"));
    let float = event(fixture!("27-event-time-float.json"));
    let base = event(fixture!("07-user-start.json"));
    assert_eq!(iso.event_time_ms, 1_765_551_024_623);
    assert_eq!(num.event_time_ms, 1_765_551_024_623);
    assert_eq!(base.event_time_ms, 1_765_551_024_623);
    assert_eq!(float.event_time_ms, 1_765_551_000_433);
    for ev in [&iso, &num, &float] {
        assert_eq!(ev.notes.upcast_steps[0], "event_time_to_epoch_ms");
    }
    // The fingerprint covers the original body, so representations differ.
    assert_ne!(iso.content_fp, base.content_fp);
}

#[test]
fn drift_missing_optional_fields() {
    let ev = event(fixture!("19-missing-optional-fields.json"));
    assert_eq!(ev.kind, EventKind::CustomerEnd);
    assert_eq!(
        ev.notes.missing_optional,
        ["participant_id", "session_id", "media_type", "direction"]
    );
    assert_eq!(ev.participant_id, None);
    assert!(ev.payload.fields_map().values().all(Value::is_null));
    assert_eq!(
        ev.payload.fields_map().len(),
        upcast::fields_of(EventKind::CustomerEnd).count()
    );
}

#[test]
fn drift_unknown_future_fields_go_to_extras() {
    let ev = event(fixture!("20-unknown-future-fields.json"));
    assert_eq!(ev.payload.extras_map().len(), 3);
    assert_eq!(
        ev.payload.extras_map()["sentiment"],
        json!({"score": 0.42, "trend": "IMPROVING"})
    );
    assert_eq!(ev.payload.extras_map()["queueWaitBucket"], json!("10-30s"));
    assert!(ev.payload.extras_map().contains_key("agentAssistSessionId"));
    assert_eq!(ev.payload.fields_map()["acd_outcome"], json!("ANSWERED"));
}

#[test]
fn drift_enum_values() {
    let ev = event(fixture!("21-unknown-enum-value.json"));
    assert_eq!(ev.notes.unknown_enum_values, ["disconnect_type"]);
    assert_eq!(
        ev.payload.fields_map()["disconnect_type"],
        json!("WORMHOLE")
    );
    let ev = event(fixture!("26-known-later-enum-value.json"));
    assert_eq!(
        ev.payload.fields_map()["disconnect_type"],
        json!("TAKEOVER")
    );
    assert!(ev.notes.unknown_enum_values.is_empty());
}

#[test]
fn drift_newer_detail_version_is_processed_and_noted() {
    let ev = event(fixture!("22-newer-detail-version.json"));
    assert!(ev.notes.newer_version);
    assert_eq!(ev.source_version, "3");
    assert_eq!(ev.kind, EventKind::AcdStart);
    assert_eq!(ev.payload.extras_map()["routingMode"], json!("AGENTIC"));
}

#[test]
fn drift_detail_type_fallback_and_numeric_version() {
    let ev = event(fixture!("28-detail-type-fallback.json"));
    assert_eq!(ev.kind, EventKind::AcdStart);
    assert_eq!(ev.interaction_id, CONV);
    // The same body with a topicName (third line of the JSON Lines
    // fixture) has the same content fingerprint: the reconstructed topic
    // equals the real one.
    let jsonl = events(fixture!("23-jsonl-three-events.json"));
    assert_eq!(jsonl[2].content_fp, ev.content_fp);
    assert_ne!(jsonl[2].event_id, ev.event_id);

    let ev = event(fixture!("29-detail-version-number.json"));
    assert_eq!(ev.source_version, "2");
    assert!(!ev.notes.newer_version);
}

#[test]
fn multi_event_records() {
    for (bytes, kinds) in [
        (
            fixture!("23-jsonl-three-events.json"),
            [
                EventKind::FlowStart,
                EventKind::FlowEnd,
                EventKind::AcdStart,
            ],
        ),
        (
            fixture!("24-back-to-back-objects.json"),
            [
                EventKind::UserStart,
                EventKind::AcdEnd,
                EventKind::Attributes,
            ],
        ),
        (
            fixture!("25-top-level-array.json"),
            [EventKind::UserEnd, EventKind::Acw, EventKind::CustomerEnd],
        ),
    ] {
        let out = decode(bytes);
        assert_ranges_ok(&out, bytes.len());
        let evs = events(bytes);
        assert_eq!(evs.iter().map(|e| e.kind).collect::<Vec<_>>(), kinds);
        for ev in &evs {
            // Each range is exactly one object that decodes to the same event.
            let slice = &bytes[ev.raw.clone()];
            assert_eq!(slice.first(), Some(&b'{'));
            assert_eq!(slice.last(), Some(&b'}'));
            let again = event(slice);
            assert_eq!(again.content_fp, ev.content_fp);
            assert_eq!(again.event_id, ev.event_id);
        }
    }
}

// ---------------------------------------------------------- malformed

#[test]
fn malformed_fixtures_are_rejected_with_the_right_class() {
    let cases: [(&[u8], RejectClass); 12] = [
        (fixture!("40-not-json.txt"), RejectClass::NotJson),
        (
            fixture!("41-missing-conversation-id.json"),
            RejectClass::MissingConversationId,
        ),
        (
            fixture!("42-missing-event-time.json"),
            RejectClass::MissingEventTime,
        ),
        (
            fixture!("43-invalid-event-time.json"),
            RejectClass::InvalidEventTime,
        ),
        (fixture!("44-wrong-type.json"), RejectClass::WrongType),
        (
            fixture!("45-unsupported-kind-audit.json"),
            RejectClass::UnsupportedEventKind,
        ),
        (
            fixture!("46-unsupported-kind-suffix.json"),
            RejectClass::UnsupportedEventKind,
        ),
        (
            fixture!("47-inconsistent-conversation-id.json"),
            RejectClass::InconsistentConversationId,
        ),
        (fixture!("48-unknown-shape.json"), RejectClass::UnknownShape),
        (fixture!("49-not-an-object.json"), RejectClass::NotAnObject),
        (
            fixture!("51-wrong-type-event-time.json"),
            RejectClass::WrongType,
        ),
        (
            fixture!("52-missing-event-kind.json"),
            RejectClass::MissingEventKind,
        ),
    ];
    for (bytes, class) in cases {
        let out = decode(bytes);
        let r = rejection(bytes);
        assert_eq!(r.class, class, "{}", r.message);
        assert_eq!(r.bytes, 0..bytes.len());
        assert!(r.lineage_token.is_some());
        assert_no_values_in_messages(bytes, &out);
    }
    let r = rejection(fixture!("44-wrong-type.json"));
    assert_eq!(
        r.message,
        "eventBody.conversationId is a number, expected a string"
    );
    let r = rejection(fixture!("51-wrong-type-event-time.json"));
    assert_eq!(
        r.message,
        "eventBody.eventTime is a boolean, expected epoch ms or ISO-8601"
    );
    // The CorrelationId survives into a rejection's lineage token.
    let r = rejection(fixture!("42-missing-event-time.json"));
    let raw: Value =
        serde_json::from_slice(fixture!("42-missing-event-time.json")).unwrap_or_default();
    assert_eq!(
        r.lineage_token.as_deref(),
        raw["detail"]["metadata"]["CorrelationId"].as_str()
    );
}

#[test]
fn garbage_after_valid_objects_is_one_rejection() {
    let bytes = fixture!("50-trailing-garbage.json");
    let out = decode(bytes);
    assert_eq!(out.len(), 3);
    assert_ranges_ok(&out, bytes.len());
    assert!(out[0].as_event().is_some() && out[1].as_event().is_some());
    let r = out[2]
        .as_rejection()
        .cloned()
        .unwrap_or_else(|| panic!("{out:?}"));
    assert_eq!(r.class, RejectClass::NotJson);
    assert_eq!(r.bytes.end, bytes.len());
    assert_eq!(bytes[r.bytes.start], b'{');
    assert!(r
        .message
        .starts_with("rest of the record is not valid JSON"));
    assert_no_values_in_messages(bytes, &out);
}

#[test]
fn fixture_files_cover_the_brief() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/input");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    assert!(names.len() >= 42, "{names:?}");
    for n in &names {
        let (nn, rest) = n.split_once('-').unwrap_or_default();
        assert!(
            nn.len() == 2 && nn.bytes().all(|b| b.is_ascii_digit()),
            "{n}"
        );
        assert!(rest.ends_with(".json") || rest.ends_with(".txt"), "{n}");
        let bytes = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/golden/input")
                .join(n),
        )
        .unwrap_or_default();
        let out = decode(&bytes);
        assert!(!out.is_empty());
        assert_ranges_ok(&out, bytes.len());
        assert_no_values_in_messages(&bytes, &out);
    }
}
