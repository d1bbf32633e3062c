//! Hostile bronze records for `tests/hostile_input.rs`: each is built here
//! with what it should become (dead-letter stage and class, number of
//! units). Decodable ones carry their own interaction ids (never the
//! generator's), so valid interactions are unaffected by them.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// 2000-01-01T00:00:00Z.
pub const Y2000_MS: i64 = 946_684_800_000;
/// One hour.
pub const HOUR_MS: i64 = 3_600_000;

/// PII planted in the decodable hostile events (never in the generator's
/// pool): none may appear in silver, late, or any header.
pub const HOSTILE_PII: &[&str] = &[
    "tel:+13175550199",
    "hostile.caller@example.org",
    "Mallory Hostile",
];

/// What a hostile record must become in the dead-letter topic.
#[derive(Debug, Clone)]
pub struct Expect {
    /// `cx.error.stage`.
    pub stage: &'static str,
    /// Acceptable `cx.error.class` values (one unless the kind is
    /// legitimately ambiguous), per unit.
    pub classes: Vec<&'static str>,
    /// Dead letters the record yields (one per unit).
    pub units: usize,
    /// The dead letter must be in reference form (too big to copy whole).
    pub reference: bool,
}

impl Expect {
    fn decode(class: &'static str) -> Expect {
        Expect {
            stage: "decode",
            classes: vec![class],
            units: 1,
            reference: false,
        }
    }
}

/// One hostile bronze record.
#[derive(Debug, Clone)]
pub struct Hostile {
    pub kind: &'static str,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    /// Record (create) timestamp, epoch ms.
    pub timestamp_ms: i64,
    pub expect: Expect,
}

/// Builds decodable hostile events with fresh interaction ids.
pub struct Builder {
    next_id: u64,
    rng: SmallRng,
}

impl Builder {
    pub fn new(seed: u64) -> Builder {
        Builder {
            next_id: 0,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// An interaction id the generator never uses.
    pub fn fresh_id(&mut self) -> String {
        self.next_id += 1;
        format!("badbad00-0000-4000-8000-{:012x}", self.next_id)
    }

    /// A valid-looking bare detail object (voice `customer.start`, with
    /// planted PII) of interaction `id` at `event_time` (any JSON value).
    pub fn event(&mut self, id: &str, event_time: Value) -> Value {
        let n = self.rng.gen::<u64>();
        json!({
            "topicName": format!("v2.detail.events.conversation.{id}.customer.start"),
            "version": "2",
            "eventBody": {
                "eventTime": event_time,
                "conversationId": id,
                "participantId": format!("0a0a0a0a-0000-4000-8000-{:012x}", n & 0xffff_ffff_ffff),
                "sessionId": format!("0b0b0b0b-0000-4000-8000-{:012x}", n >> 16),
                "mediaType": "VOICE",
                "provider": "Edge",
                "direction": "INBOUND",
                "ani": HOSTILE_PII[0],
                "dnis": "tel:+18005550100",
                "addressFrom": HOSTILE_PII[1],
                "callbackUserName": HOSTILE_PII[2],
                "divisionId": "5a892b17-43ee-41b5-8adb-701f8ce80425"
            },
            "metadata": {"CorrelationId": format!("0c0c0c0c-0000-4000-8000-{:012x}", n >> 20)},
            "timestamp": "2026-01-01T10:00:00.000Z"
        })
    }

    fn event_bytes(&mut self, event_time: Value) -> (Vec<u8>, Vec<u8>) {
        let id = self.fresh_id();
        let v = self.event(&id, event_time);
        (id.into_bytes(), serde_json::to_vec(&v).expect("json"))
    }

    /// A fresh interaction id whose records belong on `partition` (murmur2,
    /// as the processor and the producer partition).
    pub fn id_on(&mut self, partition: i32, partitions: i32) -> String {
        loop {
            let id = self.fresh_id();
            if cxstream::partition::partition_for(id.as_bytes(), partitions) == partition {
                return id;
            }
        }
    }

    /// Every hostile kind; `ts` is the record timestamp to use (the stream
    /// time where the records go), a plausible event time; `partitions`:
    /// the input topic's partition count.
    pub fn all(&mut self, ts: i64, partitions: i32) -> Vec<Hostile> {
        let mut out = Vec::new();
        let mut push = |kind, key, value, expect| {
            out.push(Hostile {
                kind,
                key,
                value,
                timestamp_ms: ts,
                expect,
            })
        };

        // Random bytes (0xFF first: never the start of JSON or UTF-8, so
        // the whole record is one unparseable unit).
        let mut junk = vec![0xFFu8];
        junk.extend((0..300).map(|_| self.rng.gen::<u8>()));
        push("random_bytes", None, junk, Expect::decode("not_json"));

        // A valid event, truncated in the middle.
        let (key, v) = self.event_bytes(json!(ts));
        let cut = v.len() / 2;
        push(
            "truncated",
            Some(key),
            v[..cut].to_vec(),
            Expect::decode("not_json"),
        );
        let (key, v) = self.event_bytes(json!(ts));
        push(
            "truncated_last_byte",
            Some(key),
            v[..v.len() - 1].to_vec(),
            Expect::decode("not_json"),
        );

        // Invalid UTF-8 inside a string of an otherwise valid event.
        let (key, v) = self.event_bytes(json!(ts));
        let text = String::from_utf8(v).expect("utf8");
        let mut bad = text.replacen("\"Edge\"", "\"Ed\u{1}\"", 1).into_bytes();
        let at = bad.iter().position(|b| *b == 1).expect("marker");
        bad.splice(at..at + 1, [0xC3, 0x28, 0xFE]);
        push("invalid_utf8", Some(key), bad, Expect::decode("not_json"));

        // JSON nested 100,000 deep: at the top, and inside an event body.
        let depth = 100_000;
        let mut nested = "[".repeat(depth);
        nested.push_str(&"]".repeat(depth));
        push(
            "nested_top",
            None,
            nested.into_bytes(),
            Expect::decode("not_json"),
        );
        let (key, v) = self.event_bytes(json!(ts));
        let text = String::from_utf8(v).expect("utf8");
        let deep = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        let deep = text.replacen("\"Edge\"", &deep, 1);
        push(
            "nested_body",
            Some(key),
            deep.into_bytes(),
            Expect::decode("not_json"),
        );

        // Duplicate keys: a valid conversationId, then one of a wrong type
        // (the last one counts, as in any JSON map).
        let (key, v) = self.event_bytes(json!(ts));
        let text = String::from_utf8(v).expect("utf8");
        let dup = text.replacen("\"mediaType\"", "\"conversationId\":42,\"mediaType\"", 1);
        push(
            "duplicate_keys",
            Some(key),
            dup.into_bytes(),
            Expect::decode("wrong_type"),
        );

        // Wrong types.
        let id = self.fresh_id();
        let mut v = self.event(&id, json!(ts));
        v["eventBody"] = json!("not an object");
        push(
            "wrong_type_body",
            Some(id.into_bytes()),
            serde_json::to_vec(&v).expect("json"),
            Expect::decode("wrong_type"),
        );
        let id = self.fresh_id();
        let mut v = self.event(&id, json!(ts));
        v["eventBody"]["eventTime"] = json!({"ms": ts});
        push(
            "wrong_type_time",
            Some(id.into_bytes()),
            serde_json::to_vec(&v).expect("json"),
            Expect::decode("wrong_type"),
        );

        // NUL bytes: raw in a string, and between tokens.
        let (key, v) = self.event_bytes(json!(ts));
        let text = String::from_utf8(v).expect("utf8");
        push(
            "nul_in_string",
            Some(key),
            text.replacen("\"Edge\"", "\"Ed\0ge\"", 1).into_bytes(),
            Expect::decode("not_json"),
        );
        let (key, v) = self.event_bytes(json!(ts));
        let text = String::from_utf8(v).expect("utf8");
        push(
            "nul_between_tokens",
            Some(key),
            text.replacen(",\"version\"", ",\0\0\"version\"", 1)
                .into_bytes(),
            Expect::decode("not_json"),
        );

        // Huge numbers: out of f64 range (not JSON serde accepts), and an
        // integer event time far beyond year 9999.
        let (key, v) = self.event_bytes(json!(ts));
        let text = String::from_utf8(v).expect("utf8");
        push(
            "huge_number",
            Some(key),
            text.replacen("\"version\":\"2\"", "\"version\":1e400", 1)
                .into_bytes(),
            Expect::decode("not_json"),
        );
        let (key, v) = self.event_bytes(json!(ts));
        let text = String::from_utf8(v).expect("utf8");
        let huge_time = text.replacen(
            &format!("\"eventTime\":{ts}"),
            "\"eventTime\":123456789012345678901234567890",
            1,
        );
        assert!(huge_time.contains("123456789012345678901234567890"));
        push(
            "huge_event_time",
            Some(key),
            huge_time.into_bytes(),
            Expect {
                classes: vec!["invalid_event_time", "implausible_event_time"],
                ..Expect::decode("invalid_event_time")
            },
        );

        // Arrays of junk: one unit per element.
        let junk = br#"[1,"two",null,true,[3,[4]],{"five":5}]"#.to_vec();
        push(
            "array_of_junk",
            None,
            junk,
            Expect {
                stage: "decode",
                classes: vec!["not_an_object", "unknown_shape"],
                units: 6,
                reference: false,
            },
        );
        push(
            "array_of_one_junk",
            None,
            br#"[[null,{"a":[]},-0.0,"\u0000"]]"#.to_vec(),
            Expect::decode("not_an_object"),
        );

        // Year 10000: outside the range the decoder parses today.
        let (key, v) = self.event_bytes(json!("10000-01-01T00:00:00.000Z"));
        push(
            "year_10000",
            Some(key),
            v,
            Expect {
                classes: vec!["invalid_event_time", "implausible_event_time"],
                ..Expect::decode("invalid_event_time")
            },
        );

        // Bit-flipped event times: more than 1 h after the record, and
        // before 2000. The future ones on every partition (one partition's
        // progress alone does not move the others' watermarks), so that
        // accepting them would skew every partition's watermark.
        for p in 0..partitions {
            let id = self.id_on(p, partitions);
            let v = self.event(&id, json!(flip_to_future(ts)));
            push(
                "bitflip_future",
                Some(id.into_bytes()),
                serde_json::to_vec(&v).expect("json"),
                Expect::decode("implausible_event_time"),
            );
            // The same flip in the ISO form.
            let id = self.id_on(p, partitions);
            let v = self.event(
                &id,
                json!(cxstream::model::format_iso_ms(flip_to_future(ts + 1))),
            );
            push(
                "bitflip_future_iso",
                Some(id.into_bytes()),
                serde_json::to_vec(&v).expect("json"),
                Expect::decode("implausible_event_time"),
            );
            // 100 years in the future.
            let id = self.id_on(p, partitions);
            let v = self.event(&id, json!(ts + 100 * 365 * 24 * HOUR_MS));
            push(
                "century_future",
                Some(id.into_bytes()),
                serde_json::to_vec(&v).expect("json"),
                Expect::decode("implausible_event_time"),
            );
        }
        let past = flip_before_2000(ts);
        let (key, v) = self.event_bytes(json!(past));
        push(
            "bitflip_before_2000",
            Some(key),
            v,
            Expect::decode("implausible_event_time"),
        );

        // 2 MB, valid-looking: decodes, but its silver record is too large.
        let id = self.fresh_id();
        let mut v = self.event(&id, json!(ts));
        let base = serde_json::to_vec(&v).expect("json").len();
        let filler: String = "lorem ipsum dolor sit amet "
            .chars()
            .cycle()
            .take(2 * 1024 * 1024 - base + "Edge".len())
            .collect();
        v["eventBody"]["provider"] = json!(filler);
        let big = serde_json::to_vec(&v).expect("json");
        assert!(big.len() >= 2 * 1024 * 1024, "{}", big.len());
        push(
            "big_valid_event",
            Some(id.into_bytes()),
            big,
            Expect {
                stage: "output",
                classes: vec!["too_large"],
                units: 1,
                reference: true,
            },
        );

        // 2 MB of garbage.
        let mut garbage = vec![0xFFu8];
        garbage.extend((1..2 * 1024 * 1024).map(|_| self.rng.gen::<u8>()));
        push(
            "big_garbage",
            None,
            garbage,
            Expect {
                reference: true,
                ..Expect::decode("not_json")
            },
        );
        out
    }
}

/// `t` with its lowest clear bit >= 23 set (2^23 ms ≈ 2.3 h): more than an
/// hour later.
pub fn flip_to_future(t: i64) -> i64 {
    let b = (23..62).find(|b| t & (1 << b) == 0).expect("a clear bit");
    let f = t | (1 << b);
    assert!(f > t + HOUR_MS);
    f
}

/// `t` with one set bit cleared so that it lands before 2000.
pub fn flip_before_2000(t: i64) -> i64 {
    let b = (0..62)
        .rev()
        .find(|b| t & (1 << b) != 0 && (t & !(1 << b)) < Y2000_MS)
        .expect("a bit that takes t before 2000");
    let f = t & !(1 << b);
    assert!((0..Y2000_MS).contains(&f), "{f}");
    f
}
