//! Dead-letter records that always fit, and which produce failures belong
//! to one record.
//!
//! A dead letter normally carries the rejected bytes whole (the original key
//! and bytes of the bronze unit, or the output record that could not be
//! written) with `cx.error.*` and `cx.source.*` headers. When those bytes
//! plus headers would exceed the dead-letter topic's size limit, it carries
//! a **reference** instead: the `cx.source.*` coordinates (the bronze record
//! stays readable there), the original size, the SHA-256 of the original
//! bytes and their first bytes up to `runtime.dead_letter_prefix`, with
//! header `cx.dlq.truncated: true`. Pure functions: no Kafka I/O.

use std::borrow::Cow;

use rdkafka::types::RDKafkaErrorCode;
use sha2::{Digest, Sha256};

use crate::headers;
use crate::model::SourceRef;

/// Dead-letter class of an output record over its topic's size limit.
pub const TOO_LARGE: &str = "too_large";
/// Dead-letter class of an output record the broker refused as invalid.
pub const INVALID_RECORD: &str = "invalid_record";
/// Dead-letter class of an output record whose timestamp the broker refused.
pub const INVALID_TIMESTAMP: &str = "invalid_timestamp";

/// The dead-letter class of a produce error that belongs to one record (the
/// next record may well succeed), `None` for errors of the cluster or the
/// client (authorization, unknown topic, fencing, transport), which stop or
/// back off instead.
pub fn record_level(code: RDKafkaErrorCode) -> Option<&'static str> {
    match code {
        RDKafkaErrorCode::MessageSizeTooLarge
        | RDKafkaErrorCode::MessageBatchTooLarge
        | RDKafkaErrorCode::InvalidMessageSize => Some(TOO_LARGE),
        RDKafkaErrorCode::InvalidRecord | RDKafkaErrorCode::InvalidMessage => Some(INVALID_RECORD),
        RDKafkaErrorCode::InvalidTimestamp => Some(INVALID_TIMESTAMP),
        _ => None,
    }
}

/// Upper bound of the bytes one record takes in a produce request: a v2
/// record batch header (61), the record's own framing (at most 36: length,
/// attributes, timestamp and offset deltas, key and value lengths, header
/// count, as varints) and each header's key, value and two length varints.
/// Both librdkafka (`message.max.bytes`) and the broker
/// (`max.message.bytes`) compare about this against their limit.
pub fn record_size<'h>(
    key: usize,
    value: usize,
    headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
) -> usize {
    61 + 36
        + key
        + value
        + headers
            .into_iter()
            .map(|(k, v)| k.len() + v.len() + 10)
            .sum::<usize>()
}

/// The bytes being dead-lettered.
#[derive(Debug, Clone)]
pub enum Rejected<'a> {
    /// In hand: sent whole when they fit.
    Bytes(&'a [u8]),
    /// Only their digest (the producer already let go of them): always a
    /// reference.
    Digest(Digested),
}

/// Size, hash and first bytes of a record, kept when a delivery fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digested {
    pub size: usize,
    pub sha256: [u8; 32],
    pub prefix: Vec<u8>,
}

impl Digested {
    pub fn of(bytes: &[u8], prefix_cap: usize) -> Self {
        Digested {
            size: bytes.len(),
            sha256: Sha256::digest(bytes).into(),
            prefix: bytes[..bytes.len().min(prefix_cap)].to_vec(),
        }
    }
}

/// What a dead letter says about itself.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    pub class: &'a str,
    /// Never quotes field values.
    pub message: &'a str,
    pub stage: &'a str,
    pub source: &'a SourceRef,
    /// Byte offset of the rejected unit in the source record.
    pub unit: usize,
    pub failed_at: &'a str,
    pub lineage_token: Option<&'a str>,
    pub key: Option<&'a [u8]>,
}

/// A dead-letter record ready to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter<'a> {
    pub key: Option<Cow<'a, [u8]>>,
    pub value: Cow<'a, [u8]>,
    pub headers: Vec<(&'static str, String)>,
    /// Carries a reference instead of the whole bytes.
    pub reference: bool,
}

impl DeadLetter<'_> {
    /// Upper bound of its size in a produce request.
    pub fn size(&self) -> usize {
        record_size(
            self.key.as_ref().map_or(0, |k| k.len()),
            self.value.len(),
            self.headers.iter().map(|(k, v)| (*k, v.as_bytes())),
        )
    }
}

/// Builds the dead letter for `rejected`: whole if it fits in `limit`
/// bytes, else a reference keeping at most `prefix_cap` first bytes (fewer
/// if the headers leave less room; the original key only if it is no longer
/// than `prefix_cap`).
pub fn build<'a>(
    spec: &Spec<'a>,
    rejected: Rejected<'a>,
    limit: usize,
    prefix_cap: usize,
) -> DeadLetter<'a> {
    let mut hs: Vec<(&'static str, String)> = vec![
        (headers::ERROR_CLASS, spec.class.to_string()),
        (headers::ERROR_MESSAGE, spec.message.to_string()),
        (headers::ERROR_STAGE, spec.stage.to_string()),
        (headers::SOURCE_TOPIC, spec.source.topic.to_string()),
        (headers::SOURCE_PARTITION, spec.source.partition.to_string()),
        (headers::SOURCE_OFFSET, spec.source.offset.to_string()),
        (headers::SOURCE_UNIT, spec.unit.to_string()),
        (headers::FAILED_AT, spec.failed_at.to_string()),
    ];
    if let Some(t) = spec.lineage_token {
        hs.push((headers::LINEAGE_TOKEN, t.to_string()));
    }
    let digest = match rejected {
        Rejected::Bytes(b) => {
            let whole = DeadLetter {
                key: spec.key.map(Cow::Borrowed),
                value: Cow::Borrowed(b),
                headers: hs,
                reference: false,
            };
            if whole.size() <= limit {
                return whole;
            }
            hs = whole.headers;
            Digested::of(b, prefix_cap)
        }
        Rejected::Digest(d) => d,
    };
    let key = spec
        .key
        .filter(|k| k.len() <= prefix_cap)
        .map(Cow::Borrowed);
    fit_reference(reference(key, hs, digest), limit, prefix_cap)
}

/// A reference-form dead letter: `headers` plus the three reference
/// headers, the digest's prefix as value (not yet fitted to a limit).
pub fn reference<'a>(
    key: Option<Cow<'a, [u8]>>,
    mut headers: Vec<(&'static str, String)>,
    digest: Digested,
) -> DeadLetter<'a> {
    headers.push((headers::TRUNCATED, "true".to_string()));
    headers.push((headers::ORIGINAL_SIZE, digest.size.to_string()));
    headers.push((headers::ORIGINAL_SHA256, hex::encode(digest.sha256)));
    DeadLetter {
        key,
        value: Cow::Owned(digest.prefix),
        headers,
        reference: true,
    }
}

/// Shortens a reference's prefix (to `prefix_cap` and to what `limit`
/// leaves) and, as a last resort, drops its lineage token header.
pub fn fit_reference(mut dl: DeadLetter<'_>, limit: usize, prefix_cap: usize) -> DeadLetter<'_> {
    let mut prefix = std::mem::take(&mut dl.value).into_owned();
    if dl.size() > limit {
        // Headers alone too large (only a hostile lineage token can be):
        // the token goes, the coordinates stay.
        dl.headers.retain(|(k, _)| *k != headers::LINEAGE_TOKEN);
    }
    let room = limit.saturating_sub(dl.size());
    prefix.truncate(prefix_cap.min(room));
    dl.value = Cow::Owned(prefix);
    dl
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn source() -> SourceRef {
        SourceRef {
            topic: Arc::from("genesys.bronze.events"),
            partition: 3,
            offset: 41,
        }
    }

    fn spec<'a>(src: &'a SourceRef, key: Option<&'a [u8]>) -> Spec<'a> {
        Spec {
            class: "not_json",
            message: "expected value at line 1 column 1",
            stage: "decode",
            source: src,
            unit: 7,
            failed_at: "2026-12-03T07:00:00.000Z",
            lineage_token: Some("lt-1"),
            key,
        }
    }

    fn header<'a>(dl: &'a DeadLetter<'_>, name: &str) -> Option<&'a str> {
        dl.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_record_that_fits_is_sent_whole_with_exact_headers() {
        let src = source();
        let bytes = b"{\"not\": json".as_slice();
        let dl = build(
            &spec(&src, Some(b"k1")),
            Rejected::Bytes(bytes),
            1_000_000,
            1024,
        );
        assert!(!dl.reference);
        assert_eq!(dl.value.as_ref(), bytes);
        assert_eq!(dl.key.as_deref(), Some(b"k1".as_slice()));
        let expected: Vec<(&str, &str)> = vec![
            ("cx.error.class", "not_json"),
            ("cx.error.message", "expected value at line 1 column 1"),
            ("cx.error.stage", "decode"),
            ("cx.source.topic", "genesys.bronze.events"),
            ("cx.source.partition", "3"),
            ("cx.source.offset", "41"),
            ("cx.source.unit", "7"),
            ("cx.failed_at", "2026-12-03T07:00:00.000Z"),
            ("cx.lineage.token", "lt-1"),
        ];
        let got: Vec<(&str, &str)> = dl.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn a_record_over_the_limit_becomes_a_reference_that_fits() {
        let src = source();
        let bytes: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
        let limit = 1_000_000;
        let dl = build(
            &spec(&src, Some(b"k1")),
            Rejected::Bytes(&bytes),
            limit,
            1024,
        );
        assert!(dl.reference);
        assert!(dl.size() <= limit);
        assert_eq!(dl.value.as_ref(), &bytes[..1024]);
        assert_eq!(header(&dl, "cx.dlq.truncated"), Some("true"));
        assert_eq!(header(&dl, "cx.original.size"), Some("2000000"));
        assert_eq!(
            header(&dl, "cx.original.sha256"),
            Some(hex::encode(Sha256::digest(&bytes)).as_str())
        );
        assert_eq!(header(&dl, "cx.source.offset"), Some("41"));
        assert_eq!(
            dl.key.as_deref(),
            Some(b"k1".as_slice()),
            "a short key stays"
        );
    }

    #[test]
    fn the_fit_check_counts_key_and_headers_not_only_the_value() {
        let src = source();
        let s = spec(&src, Some(b"key"));
        let whole = build(&s, Rejected::Bytes(&[b'x'; 1000]), usize::MAX, 1024);
        let exact = whole.size();
        assert!(exact > 1000 + 3, "headers and framing are counted");
        assert!(!build(&s, Rejected::Bytes(&[b'x'; 1000]), exact, 1024).reference);
        assert!(build(&s, Rejected::Bytes(&[b'x'; 1000]), exact - 1, 1024).reference);
    }

    #[test]
    fn a_tight_limit_shortens_the_prefix_and_drops_a_long_key() {
        let src = source();
        let key = vec![b'k'; 5000];
        let bytes = vec![b'v'; 100_000];
        let dl = build(&spec(&src, Some(&key)), Rejected::Bytes(&bytes), 900, 1024);
        assert!(dl.reference);
        assert!(
            dl.key.is_none(),
            "a key longer than the prefix cap is left out"
        );
        assert!(dl.size() <= 900, "{}", dl.size());
        assert!(dl.value.len() < 1024 && !dl.value.is_empty());
        assert!(bytes.starts_with(&dl.value));
    }

    #[test]
    fn a_digest_is_always_a_reference_and_a_zero_cap_keeps_no_bytes() {
        let src = source();
        let d = Digested::of(b"abcdef", 4);
        assert_eq!(d.prefix, b"abcd");
        let dl = build(&spec(&src, None), Rejected::Digest(d), 1_000_000, 1024);
        assert!(dl.reference);
        assert_eq!(dl.value.as_ref(), b"abcd");
        assert_eq!(header(&dl, "cx.original.size"), Some("6"));
        let none = build(&spec(&src, None), Rejected::Bytes(&[0u8; 10_000]), 2_000, 0);
        assert!(none.reference && none.value.is_empty());
    }

    #[test]
    fn a_huge_lineage_token_is_dropped_rather_than_the_dead_letter_not_fitting() {
        let src = source();
        let token = "t".repeat(5_000);
        let mut s = spec(&src, None);
        s.lineage_token = Some(&token);
        let dl = build(&s, Rejected::Bytes(&[b'v'; 10_000]), 4_000, 1024);
        assert!(dl.reference && dl.size() <= 4_000);
        assert_eq!(header(&dl, "cx.lineage.token"), None);
        assert_eq!(header(&dl, "cx.source.offset"), Some("41"));
    }

    /// The shipped header schema names exactly the classes and headers the
    /// code writes (the schema is the contract sinks read).
    #[test]
    fn the_header_schema_lists_every_class_and_header_the_code_writes() {
        use crate::operators::decode::RejectClass;
        let schema: serde_json::Value = serde_json::from_str(include_str!(
            "../../schemas/dead-letter/cx.dlq.headers.v1.json"
        ))
        .expect("schema JSON");
        let mut classes: Vec<&str> = RejectClass::ALL.iter().map(|c| c.code()).collect();
        classes.extend([
            crate::operators::plausibility::IMPLAUSIBLE_EVENT_TIME,
            TOO_LARGE,
            INVALID_RECORD,
            INVALID_TIMESTAMP,
        ]);
        let listed: Vec<&str> = schema["properties"]["cx.error.class"]["enum"]
            .as_array()
            .expect("class enum")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        assert_eq!(listed, classes);
        // Every header a whole or reference dead letter carries is described.
        let src = source();
        let mut s = spec(&src, None);
        s.lineage_token = Some("lt");
        let dl = build(&s, Rejected::Bytes(&[0u8; 5_000]), 2_000, 16);
        assert!(dl.reference);
        let props = schema["properties"].as_object().expect("properties");
        let mut names: Vec<&str> = dl.headers.iter().map(|(k, _)| *k).collect();
        names.sort_unstable();
        let mut described: Vec<&str> = props.keys().map(String::as_str).collect();
        described.sort_unstable();
        assert_eq!(names, described);
        for (k, v) in &dl.headers {
            if let Some(p) = props[*k]["pattern"].as_str() {
                let re = regex::Regex::new(p).expect("pattern");
                assert!(re.is_match(v), "{k}={v} against {p}");
            }
        }
    }

    #[test]
    fn record_level_errors_are_told_from_cluster_errors() {
        assert_eq!(
            record_level(RDKafkaErrorCode::MessageSizeTooLarge),
            Some(TOO_LARGE)
        );
        assert_eq!(
            record_level(RDKafkaErrorCode::InvalidRecord),
            Some(INVALID_RECORD)
        );
        assert_eq!(
            record_level(RDKafkaErrorCode::InvalidTimestamp),
            Some(INVALID_TIMESTAMP)
        );
        for cluster in [
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::UnknownTopicOrPartition,
            RDKafkaErrorCode::InvalidProducerEpoch,
            RDKafkaErrorCode::ClusterAuthorizationFailed,
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::BrokerTransportFailure,
        ] {
            assert_eq!(record_level(cluster), None, "{cluster:?}");
        }
    }
}
