//! Field rules (ids, kinds, types, eventTime), fingerprints, projection,
//! notes, lineage, and splitting records into units.

use super::*;

// -------------------------------------------------------------- rules

#[test]
fn conversation_id_sources() {
    // From the body.
    assert_eq!(ev_of(&bare("acw", body())).interaction_id, CONV);
    // From the topic when the body has none (absent, null or empty).
    for v in [None, Some(Value::Null), Some(json!(""))] {
        let b = with(body(), &["conversationId"], v);
        assert_eq!(ev_of(&bare("acw", b)).interaction_id, CONV);
    }
    // Case-only differences are not inconsistent; the body's spelling wins.
    let upper = CONV.to_uppercase();
    let b = with(body(), &["conversationId"], Some(json!(upper)));
    assert_eq!(ev_of(&bare("acw", b)).interaction_id, upper);
    // Disagreement.
    let b = with(
        body(),
        &["conversationId"],
        Some(json!("another-conversation")),
    );
    assert_eq!(
        class_of(&bare("acw", b)),
        RejectClass::InconsistentConversationId
    );
    // Neither: no topic (detail-type placeholder) and no body id.
    let e = with(envelope("acw", body()), &["detail", "topicName"], None);
    let e = with(e, &["detail", "eventBody", "conversationId"], None);
    assert_eq!(class_of(&e), RejectClass::MissingConversationId);
    // A literal "{id}" in topicName is a placeholder, not an id.
    let d = with(
        bare("acw", body()),
        &["topicName"],
        Some(json!("v2.detail.events.conversation.{id}.acw")),
    );
    assert_eq!(ev_of(&d).interaction_id, CONV);
    let d = with(d, &["eventBody", "conversationId"], None);
    assert_eq!(class_of(&d), RejectClass::MissingConversationId);
}

#[test]
fn event_kind_sources() {
    let e = with(envelope("user.end", body()), &["detail", "topicName"], None);
    assert_eq!(ev_of(&e).kind, EventKind::UserEnd);
    // topicName wins over detail-type.
    let e = with(
        envelope("user.end", body()),
        &["detail-type"],
        Some(json!("v2.detail.events.conversation.{id}.acw")),
    );
    assert_eq!(ev_of(&e).kind, EventKind::UserEnd);
    // Neither.
    let d = with(bare("acw", body()), &["topicName"], None);
    assert_eq!(class_of(&d), RejectClass::MissingEventKind);
    let d = with(
        bare("acw", body()),
        &["topicName"],
        Some(json!(format!("{DETAIL_TOPIC_PREFIX}{CONV}"))),
    );
    assert_eq!(class_of(&d), RejectClass::MissingEventKind);
    let d = with(
        bare("acw", body()),
        &["topicName"],
        Some(json!(format!("{DETAIL_TOPIC_PREFIX}{CONV}."))),
    );
    assert_eq!(class_of(&d), RejectClass::MissingEventKind);
    // Unsupported.
    for t in [
        format!("{DETAIL_TOPIC_PREFIX}{CONV}.foo.bar"),
        format!("{DETAIL_TOPIC_PREFIX}{CONV}.acd"),
        "v2.audits.entitytype.UserPresence.entityid.x".to_string(),
        "v2.routing.queues.q1.conversations".to_string(),
        "v2.users.u1.conversations".to_string(),
        String::new(),
    ] {
        let d = with(bare("acw", body()), &["topicName"], Some(json!(t)));
        assert_eq!(class_of(&d), RejectClass::UnsupportedEventKind, "{t}");
    }
    let e = with(envelope("acw", body()), &["detail", "topicName"], None);
    let e = with(
        e,
        &["detail-type"],
        Some(json!("v2.audits.entitytype.{id}.entityid.{id}")),
    );
    assert_eq!(class_of(&e), RejectClass::UnsupportedEventKind);
}

#[test]
fn wrong_types_on_required_and_id_fields() {
    let cases = [
        (vec!["detail", "eventBody", "conversationId"], json!(12)),
        (vec!["detail", "eventBody", "participantId"], json!(12)),
        (vec!["detail", "eventBody", "sessionId"], json!({"id": "s"})),
        (vec!["detail", "eventBody", "mediaType"], json!(["VOICE"])),
        (vec!["detail", "eventBody", "direction"], json!(true)),
        (vec!["detail", "eventBody", "queueId"], json!(1)),
        (vec!["detail", "eventBody", "userId"], json!(1)),
        (vec!["detail", "eventBody", "eventTime"], json!(false)),
        (vec!["detail", "eventBody", "eventTime"], json!([1])),
        (vec!["detail", "eventBody"], json!("body")),
        (vec!["detail", "topicName"], json!(5)),
        (vec!["detail", "version"], json!(true)),
        (vec!["detail"], json!([1])),
        (vec!["id"], json!(5)),
        (vec!["detail-type"], json!(5)),
    ];
    for (path, v) in cases {
        let e = with(envelope("user.end", body()), &path, Some(v));
        let r = rejection(&serde_json::to_vec(&e).unwrap_or_default());
        assert_eq!(r.class, RejectClass::WrongType, "{path:?}");
        let field = path.last().copied().unwrap_or_default();
        assert!(r.message.contains(field), "{} / {field}", r.message);
    }
    // Kind fields are not type-checked: kept as received.
    let b = with(body(), &["wrapupNotes"], Some(json!(42)));
    assert_eq!(
        ev_of(&bare("acw", b)).payload.field("wrapup_notes"),
        Some(json!(42))
    );
    // Null header ids are absent, not wrong.
    let b = with(body(), &["participantId"], Some(Value::Null));
    assert_eq!(ev_of(&bare("acw", b)).participant_id, None);
}

#[test]
fn event_time_rules() {
    let at = |v: Option<Value>| {
        let b = with(body(), &["eventTime"], v);
        let out = decode(&serde_json::to_vec(&bare("acw", b)).unwrap_or_default());
        match out.into_iter().next() {
            Some(Decoded::Event(e)) => Ok(e.event_time_ms),
            Some(Decoded::Rejected(r)) => Err(r.class),
            None => Err(RejectClass::NotJson),
        }
    };
    assert_eq!(
        at(Some(json!(1_649_237_444_949_i64))),
        Ok(1_649_237_444_949)
    );
    assert_eq!(
        at(Some(json!("2022-04-06T09:30:44.949Z"))),
        Ok(1_649_237_444_949)
    );
    assert_eq!(
        at(Some(json!("2022-04-06T09:30:44Z"))),
        Ok(1_649_237_444_000)
    );
    assert_eq!(
        at(Some(json!("2022-04-06T11:30:44.949+02:00"))),
        Ok(1_649_237_444_949)
    );
    assert_eq!(at(Some(json!("1649237444949"))), Ok(1_649_237_444_949));
    assert_eq!(at(Some(json!(1_649_237_444_949.99))), Ok(1_649_237_444_949));
    assert_eq!(at(None), Err(RejectClass::MissingEventTime));
    assert_eq!(at(Some(Value::Null)), Err(RejectClass::MissingEventTime));
    assert_eq!(
        at(Some(json!("2021-04-2T15:30:51.418Z"))),
        Err(RejectClass::InvalidEventTime)
    );
    assert_eq!(
        at(Some(json!("2022-04-06T09:30:44"))),
        Err(RejectClass::InvalidEventTime)
    );
    assert_eq!(at(Some(json!(-5))), Err(RejectClass::InvalidEventTime));
    assert_eq!(at(Some(json!(1e20))), Err(RejectClass::InvalidEventTime));
    assert_eq!(at(Some(json!(true))), Err(RejectClass::WrongType));
    assert_eq!(at(Some(json!({}))), Err(RejectClass::WrongType));
}

#[test]
fn event_ids_and_fingerprints() {
    let e = envelope("acw", body());
    let ev = ev_of(&e);
    assert_eq!(ev.event_id, "evb-id-1");
    assert_eq!(ev.id_fp, Some(xxh3_128(b"id:evb-id-1")));
    // Without an envelope id (bare, empty or null id): fingerprint id.
    for e in [
        bare("acw", body()),
        with(e.clone(), &["id"], Some(json!(""))),
        with(e.clone(), &["id"], None),
    ] {
        let ev = ev_of(&e);
        assert_eq!(ev.event_id, format!("fp-{:032x}", ev.content_fp));
        assert_eq!(ev.event_id.len(), 35);
        assert_eq!(ev.id_fp, None);
    }
    // content_fp: topicName + canonical original body; key order and
    // whitespace do not matter, the envelope does not matter.
    let topic = format!("{DETAIL_TOPIC_PREFIX}{CONV}.acw");
    let body_map = match body() {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let canonical_body = serde_json::to_string(&body_map).unwrap_or_default();
    assert_eq!(ev.content_fp, content_fingerprint(&topic, &canonical_body));
    let reordered = format!(
        r#"{{ "eventBody" : {{"direction":"INBOUND","sessionId":"s-1","mediaType":"VOICE",
            "participantId":"p-1","conversationId":"{CONV}","eventTime":1765551000123}},
            "topicName":"{topic}", "version":"2"}}"#
    );
    assert_eq!(event(reordered.as_bytes()).content_fp, ev.content_fp);
    let mut canonical = topic.clone().into_bytes();
    canonical.push(b'\n');
    canonical.extend(serde_json::to_vec(&body_map).unwrap_or_default());
    assert_eq!(ev.content_fp, xxh3_128(&canonical));
    // A different body or topic changes it.
    let b = with(body(), &["sessionId"], Some(json!("s-2")));
    assert_ne!(ev_of(&bare("acw", b)).content_fp, ev.content_fp);
    assert_ne!(ev_of(&bare("wrapup", body())).content_fp, ev.content_fp);
}

#[test]
fn serde_json_maps_serialize_sorted() {
    // Guards the canonical form: fails if some dependency turns on
    // serde_json's `preserve_order` feature.
    let v: Value = serde_json::from_str(r#"{"b":1,"a":{"d":1,"c":2}}"#).unwrap_or_default();
    assert_eq!(
        serde_json::to_string(&v).unwrap_or_default(),
        r#"{"a":{"c":2,"d":1},"b":1}"#
    );
}

#[test]
fn source_version_is_a_string() {
    for (v, want) in [
        (json!("2"), "2"),
        (json!(2), "2"),
        (json!(2.5), "2.5"),
        (json!("3"), "3"),
    ] {
        let d = with(bare("acw", body()), &["version"], Some(v));
        assert_eq!(ev_of(&d).source_version, want);
    }
    let d = with(bare("acw", body()), &["version"], None);
    let ev = ev_of(&d);
    assert_eq!(ev.source_version, "");
    assert!(!ev.notes.newer_version);
    let d = with(bare("acw", body()), &["version"], Some(json!(4)));
    assert!(ev_of(&d).notes.newer_version);
}

#[test]
fn projection_fields_and_extras() {
    let b = with(body(), &["wrapupNotes"], Some(json!("call me")));
    let b = with(b, &["conversationExternalContactIds"], Some(json!(["x"])));
    let b = with(
        b,
        &["futureThing"],
        Some(json!({"nested": {"keep": [1, 2]}})),
    );
    let b = with(b, &["divisionId"], Some(json!("not-an-acw-field")));
    let d = with(bare("acw", b), &["futureDetailField"], Some(json!(1)));
    let ev = ev_of(&d);
    assert_eq!(ev.payload.fields_map()["wrapup_notes"], json!("call me"));
    assert_eq!(
        ev.payload.fields_map()["conversation_external_contact_ids"],
        json!(["x"])
    );
    assert_eq!(ev.payload.fields_map()["wrapup_code"], Value::Null);
    assert!(!ev.payload.fields_map().contains_key("wrapupNotes"));
    assert_eq!(
        ev.payload.extras_map()["futureThing"],
        json!({"nested": {"keep": [1, 2]}})
    );
    assert_eq!(
        ev.payload.extras_map()["divisionId"],
        json!("not-an-acw-field")
    ); // known, not for acw
    assert_eq!(
        ev.payload.extras_map()["detail.futureDetailField"],
        json!(1)
    );
    assert_eq!(ev.payload.extras_map().len(), 3);
    // Header ids go to their slots whatever the kind.
    let b = with(body(), &["userId"], Some(json!("u-1")));
    let ev = ev_of(&bare("acd.end", b));
    assert_eq!(ev.user_id.as_deref(), Some("u-1"));
    assert!(!ev.payload.extras_map().contains_key("userId"));
    // Envelope extras: replay-name and unknown envelope keys, prefixed.
    let e = with(envelope("acw", body()), &["replay-name"], Some(json!("r1")));
    let e = with(e, &["futureEnvelopeKey"], Some(json!(true)));
    let ev = ev_of(&e);
    assert_eq!(ev.payload.extras_map()["envelope.replay-name"], json!("r1"));
    assert_eq!(
        ev.payload.extras_map()["envelope.futureEnvelopeKey"],
        json!(true)
    );
    assert_eq!(ev.payload.extras_map().len(), 2);
}

#[test]
fn notes() {
    let b = json!({"eventTime": 1, "conversationId": CONV});
    let ev = ev_of(&bare("user.end", b.clone()));
    assert_eq!(
        ev.notes.missing_optional,
        [
            "participant_id",
            "session_id",
            "media_type",
            "direction",
            "queue_id",
            "user_id"
        ]
    );
    let ev = ev_of(&bare("attributes", b));
    assert_eq!(ev.notes.missing_optional, ["participant_id"]);
    let b = with(body(), &["mediaType"], Some(json!("HOLOGRAM")));
    let b = with(b, &["disconnectType"], Some(json!("WORMHOLE")));
    let ev = ev_of(&bare("customer.end", b));
    assert_eq!(
        ev.notes.unknown_enum_values,
        ["media_type", "disconnect_type"]
    );
    assert_eq!(ev.media_type.as_deref(), Some("HOLOGRAM"));
    assert_eq!(
        ev.payload.fields_map()["disconnect_type"],
        json!("WORMHOLE")
    );
}

#[test]
fn lineage_and_copied_fields() {
    let bytes = serde_json::to_vec(&envelope("acw", body())).unwrap_or_default();
    let mut inp = input(&bytes);
    let mut out = Vec::new();
    decode_record(&inp, &mut out);
    let ev = out[0]
        .as_event()
        .cloned()
        .unwrap_or_else(|| panic!("{out:?}"));
    assert_eq!(ev.lineage.token, "corr-1");
    assert!(ev.lineage.hops.is_empty() && ev.lineage.masked_fields.is_empty());
    assert_eq!(ev.source, source());
    assert_eq!(ev.record_timestamp_ms, Some(1_765_551_001_000));
    assert_eq!(ev.ticket, 7);
    // The header wins; an empty header does not count.
    inp.header_lineage_token = Some("hdr-token");
    out.clear();
    decode_record(&inp, &mut out);
    assert_eq!(
        out[0].as_event().map(|e| e.lineage.token.as_str()),
        Some("hdr-token")
    );
    inp.header_lineage_token = Some("");
    out.clear();
    decode_record(&inp, &mut out);
    assert_eq!(
        out[0].as_event().map(|e| e.lineage.token.as_str()),
        Some("corr-1")
    );
    // Nor does an absurdly long one (it would ride in every header).
    let huge = "t".repeat(MAX_LINEAGE_TOKEN_LEN + 1);
    inp.header_lineage_token = Some(&huge);
    out.clear();
    decode_record(&inp, &mut out);
    assert_eq!(
        out[0].as_event().map(|e| e.lineage.token.as_str()),
        Some("corr-1")
    );
    // Generated: UUIDv5 of topic/partition/offset/index, stable on replay.
    let e = with(envelope("acw", body()), &["detail", "metadata"], None);
    let line = serde_json::to_vec(&e).unwrap_or_default();
    let mut two = line.clone();
    two.push(b'\n');
    two.extend_from_slice(&line);
    let evs = events(&two);
    let want0 = uuid::Uuid::new_v5(&LINEAGE_NAMESPACE, b"genesys.bronze.events/3/42/0").to_string();
    assert_eq!(evs[0].lineage.token, want0);
    assert_eq!(evs[1].lineage.token, generated_token(&source(), 1));
    assert_ne!(evs[0].lineage.token, evs[1].lineage.token);
    assert_eq!(events(&two)[1].lineage.token, evs[1].lineage.token);
    assert_eq!(
        LINEAGE_NAMESPACE,
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, b"urn:cxstream:lineage-token")
    );
    // Rejections get the same treatment, CorrelationId included once the
    // detail object was found.
    assert_eq!(
        rejection(b"nope").lineage_token,
        Some(generated_token(&source(), 0))
    );
    let d = with(bare("acw", body()), &["eventBody"], None);
    let r = rejection(&serde_json::to_vec(&d).unwrap_or_default());
    assert_eq!(
        (r.class, r.lineage_token.as_deref()),
        (RejectClass::UnknownShape, Some("corr-1"))
    );
}

// ---------------------------------------------------------- splitting

#[test]
fn splitting_edge_cases() {
    let one = serde_json::to_string(&bare("acw", body())).unwrap_or_default();
    // Whitespace around a single object: the event covers the whole value.
    let padded = format!("\n  {one}  \n");
    assert_eq!(event(padded.as_bytes()).raw, 0..padded.len());
    // Empty and whitespace-only records: one rejection.
    for v in ["", "   \n"] {
        let r = rejection(v.as_bytes());
        assert_eq!((r.class, r.bytes), (RejectClass::NotJson, 0..v.len()));
    }
    // Empty array, scalars, nested arrays.
    assert_eq!(rejection(b"[]").class, RejectClass::NotAnObject);
    assert_eq!(rejection(b"42").class, RejectClass::NotAnObject);
    assert_eq!(rejection(b"null").class, RejectClass::NotAnObject);
    let mixed = format!("[{one}, 7, [\"x\"], {one}]");
    let out = decode(mixed.as_bytes());
    assert_eq!(out.len(), 4);
    assert_ranges_ok(&out, mixed.len());
    assert!(out[0].as_event().is_some() && out[3].as_event().is_some());
    assert_eq!(
        out[1]
            .as_rejection()
            .map(|r| (r.class, &mixed[r.bytes.clone()])),
        Some((RejectClass::NotAnObject, "7"))
    );
    assert_eq!(
        out[2].as_rejection().map(|r| &mixed[r.bytes.clone()]),
        Some("[\"x\"]")
    );
    // A single-element array: the element's own bytes.
    let arr = format!("[{one}]");
    assert_eq!(event(arr.as_bytes()).raw, 1..arr.len() - 1);
    // Objects then garbage: garbage is one rejection covering the rest.
    let g = format!("{one}{one} }} trailing {{");
    let out = decode(g.as_bytes());
    assert_eq!(out.len(), 3);
    assert_eq!(
        out[2].as_rejection().map(|r| r.bytes.clone()),
        Some(2 * one.len() + 1..g.len())
    );
    // Garbage first: the whole record.
    let r = rejection(format!("x{one}").as_bytes());
    assert_eq!((r.class, r.bytes.start), (RejectClass::NotJson, 0));
    // Invalid UTF-8 inside a string.
    let bad = b"{\"topicName\": \"\xff\xfe\"}";
    assert_eq!(rejection(bad).class, RejectClass::NotJson);
    // Deep nesting hits serde_json's recursion limit, not the stack.
    let deep = "[".repeat(100_000);
    assert_eq!(rejection(deep.as_bytes()).class, RejectClass::NotJson);
    // Objects that are not events.
    assert_eq!(rejection(b"{}").class, RejectClass::UnknownShape);
    assert_eq!(
        rejection(br#"{"detail": {}}"#).class,
        RejectClass::UnknownShape
    );
    assert_eq!(
        rejection(br#"{"topicName": "x"}"#).class,
        RejectClass::UnknownShape
    );
}

#[test]
fn appends_after_existing_outputs() {
    let bytes = serde_json::to_vec(&bare("acw", body())).unwrap_or_default();
    let mut out = vec![Decoded::Rejected(Rejection {
        class: RejectClass::NotJson,
        message: String::new(),
        bytes: 0..0,
        lineage_token: None,
    })];
    decode_record(&input(&bytes), &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[1].as_event().map(|e| e.raw.clone()),
        Some(0..bytes.len())
    );
}
