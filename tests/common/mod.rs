//! Shared harness for the broker tests: produce generated traffic, run the
//! pipeline, read every output back and check it against the generator's
//! ground truth.
#![allow(dead_code)]

pub mod gold;
pub mod hostile;
pub mod process;
pub mod tansu;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use cxstream::config::{self, SilverPlan};
use cxstream::generate::{EventKey, GenConfig, Generator, Truth};
use cxstream::metrics::Metrics;
use cxstream::runtime::client::{producer_config, send_retrying, CountingContext};
use cxstream::runtime::{ClientSettings, RunOptions};
use cxstream::secret::MaskingKey;
use cxstream::silver::RunSummary;

/// A number unique within this test process (names, groups).
pub fn unique() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// One record read back from a topic.
#[derive(Debug, Clone)]
pub struct Rec {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: HashMap<String, Vec<u8>>,
    /// The record's timestamp (create or log-append time), in ms.
    pub timestamp_ms: Option<i64>,
}

pub fn shipped_plan() -> SilverPlan {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/topologies/genesys-silver.toml"
    ))
    .expect("shipped topology");
    config::parse(&text, "genesys-silver.toml")
        .expect("valid")
        .into_silver()
        .expect("a silver stage")
}

/// Client settings for tests (short session timeout: group joins wait about
/// half of it on Tansu).
pub fn settings(brokers: &str) -> ClientSettings {
    ClientSettings {
        brokers: brokers.to_string(),
        extra: test_overrides(),
    }
}

pub fn test_overrides() -> Vec<(String, String)> {
    vec![
        ("session.timeout.ms".into(), "6000".into()),
        ("heartbeat.interval.ms".into(), "1000".into()),
        // Tansu waits this long (the rebalance timeout) for members that
        // died without leaving before it completes a rebalance.
        ("max.poll.interval.ms".into(), "15000".into()),
    ]
}

/// Writes the generated stream to `topic` at up to `rate` records/s (0: as
/// fast as possible) from another thread, as connectors publish while the
/// processor runs; join the handle for the ground truth.
pub fn produce_paced(
    brokers: &str,
    topic: &str,
    cfg: GenConfig,
    rate: f64,
) -> std::thread::JoinHandle<Truth> {
    let (brokers, topic) = (brokers.to_string(), topic.to_string());
    std::thread::spawn(move || produce_at(&brokers, &topic, cfg, rate, &mut |_| None, &[]))
}

/// Writes the generated stream to `topic`; returns the ground truth.
pub fn produce(brokers: &str, topic: &str, cfg: GenConfig) -> Truth {
    produce_at(brokers, topic, cfg, 0.0, &mut |_| None, &[])
}

/// Like [`produce`], with extra producer settings (e.g. `batch.size`).
pub fn produce_with(
    brokers: &str,
    topic: &str,
    cfg: GenConfig,
    producer_settings: &[(&str, &str)],
) -> Truth {
    produce_at(brokers, topic, cfg, 0.0, &mut |_| None, producer_settings)
}

/// Like [`produce`], but record `i` goes to partition `partition(i)` (the
/// key's partition when `None`).
pub fn produce_partitioned(
    brokers: &str,
    topic: &str,
    cfg: GenConfig,
    partition: &mut dyn FnMut(usize) -> Option<i32>,
) -> Truth {
    produce_at(brokers, topic, cfg, 0.0, partition, &[])
}

fn produce_at(
    brokers: &str,
    topic: &str,
    cfg: GenConfig,
    rate: f64,
    partition: &mut dyn FnMut(usize) -> Option<i32>,
    producer_settings: &[(&str, &str)],
) -> Truth {
    let mut config = producer_config(&settings(brokers));
    for (k, v) in producer_settings {
        config.set(*k, *v);
    }
    let producer: BaseProducer<CountingContext> = config
        .create_with_context(CountingContext::default())
        .expect("producer");
    let mut gen = Generator::new(cfg);
    let started = Instant::now();
    for (i, rec) in gen.by_ref().enumerate() {
        let mut r: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(&rec.value);
        if let Some(k) = &rec.key {
            r = r.key(k);
        }
        if let Some(p) = partition(i) {
            r = r.partition(p);
        }
        send_retrying(&producer, r).expect("produce");
        if rate > 0.0 && i % 50 == 0 {
            let due = Duration::from_secs_f64(i as f64 / rate);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    // The ground truth counts every generated record as sent.
    assert_eq!(
        producer.context().failed(),
        0,
        "input records were not delivered"
    );
    gen.into_truth()
}

/// Runs the pipeline in-process until it has been idle for `idle`.
pub fn run_pipeline(
    brokers: &str,
    plan: SilverPlan,
    group: &str,
    idle: Duration,
) -> (RunSummary, Arc<Metrics>) {
    run_pipeline_with(brokers, plan, group, idle, &[])
}

/// As [`run_pipeline`], with extra client settings (`-X`).
pub fn run_pipeline_with(
    brokers: &str,
    plan: SilverPlan,
    group: &str,
    idle: Duration,
    extra: &[(&str, &str)],
) -> (RunSummary, Arc<Metrics>) {
    let mut overrides = test_overrides();
    overrides.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let metrics = Arc::new(Metrics::new());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let key = MaskingKey::from_bytes("test-masking-key").expect("key");
    let opts = RunOptions {
        brokers: brokers.to_string(),
        group_id: group.to_string(),
        overrides,
        metrics_addr: None,
        health: None,
        exit_when_idle: Some(idle),
        instance_id: None,
    };
    let summary = rt
        .block_on(cxstream::run::silver(
            Arc::new(plan),
            opts,
            &key,
            metrics.clone(),
            Arc::new(AtomicBool::new(false)),
            None,
        ))
        .expect("pipeline run");
    (summary, metrics)
}

/// Reads every record of `topic` (all partitions, beginning to end): each
/// partition is read until the broker reports its end (partition EOF, from
/// the fetch responses' high watermark). No quiet period: the tests read a
/// topic only once every writer has stopped.
pub fn read_all(brokers: &str, topic: &str) -> Vec<Rec> {
    let consumer: BaseConsumer = settings(brokers)
        .with_defaults(&[
            // librdkafka wants a group id even for assign(); never joined.
            ("group.id", "cxstream-test-reader"),
            ("enable.auto.commit", "false"),
            ("enable.partition.eof", "true"),
            ("fetch.wait.max.ms", "10"),
            // Whole partitions per fetch: Tansu's sqlite engine reads a
            // partition from the fetch offset to its end for every fetch.
            ("max.partition.fetch.bytes", "52428800"),
        ])
        .create()
        .expect("consumer");
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let parts = md.topics()[0].partitions().len();
    assert!(parts > 0, "{topic} has no partitions");
    let mut tpl = TopicPartitionList::new();
    for p in 0..parts as i32 {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut at_end = vec![false; parts];
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !at_end.iter().all(|e| *e) {
        assert!(
            Instant::now() < deadline,
            "timed out reading {topic}: partitions at their end {at_end:?}"
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let mut headers = HashMap::new();
                if let Some(hs) = m.headers() {
                    for h in hs.iter() {
                        headers.insert(h.key.to_string(), h.value.unwrap_or_default().to_vec());
                    }
                }
                at_end[m.partition() as usize] = false;
                out.push(Rec {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().unwrap_or_default().to_vec(),
                    headers,
                    timestamp_ms: m.timestamp().to_millis(),
                });
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(p))) => at_end[p as usize] = true,
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
    out
}

pub fn iso_to_ms(s: &str) -> i64 {
    let dt = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("bad event_time {s}: {e}"));
    (dt.unix_timestamp_nanos() / 1_000_000) as i64
}

pub fn key_of(v: &serde_json::Value) -> EventKey {
    EventKey {
        interaction_id: v["interaction_id"]
            .as_str()
            .expect("interaction_id")
            .to_string(),
        event_type: v["event_type"].as_str().expect("event_type").to_string(),
        event_time_ms: iso_to_ms(v["event_time"].as_str().expect("event_time")),
        session_id: v["session_id"].as_str().map(str::to_string),
    }
}

/// Everything the pipeline wrote, read back.
pub struct Outputs {
    pub silver: Vec<Rec>,
    pub late: Vec<Rec>,
    pub dead: Vec<Rec>,
}

pub fn read_outputs(brokers: &str, plan: &SilverPlan) -> Outputs {
    Outputs {
        silver: read_all(brokers, &plan.silver_topic),
        late: read_all(brokers, &plan.late_topic),
        dead: read_all(brokers, &plan.runtime.dead_letter_topic),
    }
}

/// Each unique event exactly once across silver and late; nothing else.
pub fn check_exactly_once(truth: &Truth, out: &Outputs) {
    let mut seen: BTreeMap<EventKey, u32> = BTreeMap::new();
    for r in out.silver.iter().chain(&out.late) {
        let v: serde_json::Value = serde_json::from_slice(&r.value).expect("silver JSON");
        *seen.entry(key_of(&v)).or_default() += 1;
    }
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(
        dups.is_empty(),
        "events emitted more than once, e.g. {dups:?}"
    );
    let expected: HashSet<&EventKey> = truth.unique_events.iter().collect();
    let missing: Vec<_> = expected
        .iter()
        .filter(|k| !seen.contains_key(**k))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "{} unique events missing, e.g. {missing:?}",
        expected.len() - seen.keys().filter(|k| expected.contains(k)).count()
    );
    let extra: Vec<_> = seen
        .keys()
        .filter(|k| !expected.contains(k))
        .take(5)
        .collect();
    assert!(extra.is_empty(), "events that were never sent: {extra:?}");
    assert_eq!(seen.len(), truth.unique_events.len());
}

/// Every interaction's silver events in non-decreasing event time, and each
/// interaction on one partition keyed by its id.
pub fn check_order(out: &Outputs) {
    let mut by_partition: BTreeMap<i32, Vec<&Rec>> = BTreeMap::new();
    for r in &out.silver {
        by_partition.entry(r.partition).or_default().push(r);
    }
    let mut last: HashMap<String, (i32, i64)> = HashMap::new();
    for (p, mut recs) in by_partition {
        recs.sort_by_key(|r| r.offset);
        for r in recs {
            let v: serde_json::Value = serde_json::from_slice(&r.value).expect("JSON");
            let id = v["interaction_id"].as_str().expect("id").to_string();
            assert_eq!(
                r.key.as_deref(),
                Some(id.as_bytes()),
                "silver key = interaction id"
            );
            let t = iso_to_ms(v["event_time"].as_str().expect("time"));
            if let Some((lp, lt)) = last.get(&id) {
                assert_eq!(*lp, p, "interaction {id} spread over partitions");
                assert!(
                    t >= *lt,
                    "interaction {id}: {t} after {lt} at offset {}",
                    r.offset
                );
            }
            last.insert(id, (p, t));
        }
    }
}

/// No planted PII value in any of `records` (value or key).
pub fn check_no_pii_in(truth: &Truth, records: &[Rec], what: &str) {
    let patterns: Vec<&String> = truth.pii_values.iter().filter(|s| s.len() >= 5).collect();
    assert!(!patterns.is_empty(), "the generator planted no PII");
    let ac = aho_corasick::AhoCorasick::new(&patterns).expect("patterns");
    for r in records {
        let hit = ac
            .find(&r.value)
            .or_else(|| r.key.as_ref().and_then(|k| ac.find(k)));
        if let Some(m) = hit {
            panic!(
                "planted PII value #{} found in a {what} record at partition {} offset {}",
                m.pattern().as_usize(),
                r.partition,
                r.offset
            );
        }
    }
}

/// The shipped topology on topics of its own (`<prefix>.*`), written to a
/// temporary file: (its path, the parsed topology).
pub fn isolated_topology(prefix: &str) -> (std::path::PathBuf, config::Topology) {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/topologies/genesys-silver.toml"
    ))
    .expect("shipped topology");
    let text = shipped
        .replace("genesys.bronze.events", &format!("{prefix}.bronze"))
        .replace("cx.silver.events", &format!("{prefix}.silver"))
        .replace("cx.silver.late", &format!("{prefix}.silver-late"))
        .replace("\"cx.dlq\"", &format!("\"{prefix}.dlq\""))
        .replace("cx.gold.queue_kpis", &format!("{prefix}.kpis"))
        .replace("cx.gold.late", &format!("{prefix}.gold-late"))
        .replace("cx.gold.process_events", &format!("{prefix}.activities"))
        .replace(
            "cx.internal.genesys-silver.",
            &format!("cx.internal.{prefix}."),
        );
    let path = std::env::temp_dir().join(format!("cxstream-{prefix}-{}.toml", std::process::id()));
    std::fs::write(&path, &text).expect("topology file");
    let t = config::parse(&text, "isolated.toml").expect("valid topology");
    (path, t)
}

/// No planted PII value anywhere in silver or late.
pub fn check_no_pii(truth: &Truth, out: &Outputs) {
    let patterns: Vec<&String> = truth.pii_values.iter().filter(|s| s.len() >= 5).collect();
    assert!(!patterns.is_empty(), "the generator planted no PII");
    let ac = aho_corasick::AhoCorasick::new(&patterns).expect("patterns");
    for r in out.silver.iter().chain(&out.late) {
        if let Some(m) = ac.find(&r.value) {
            panic!(
                "planted PII value #{} found in an output record at partition {} offset {}",
                m.pattern().as_usize(),
                r.partition,
                r.offset
            );
        }
    }
}

/// The late topic holds only events planted late (always), and close to all
/// of them (`recall`: when the processor keeps up with a continuously
/// produced stream; in a catch-up over a backlog the watermark waits for the
/// slowest partition, so delayed events can still be placed in order).
pub fn check_late(truth: &Truth, out: &Outputs, recall: bool) {
    for r in &out.late {
        let v: serde_json::Value = serde_json::from_slice(&r.value).expect("JSON");
        let k = key_of(&v);
        if !truth.planted_late.contains(&k) {
            let id = k.interaction_id.clone();
            let trail: Vec<String> = out
                .silver
                .iter()
                .chain(&out.late)
                .filter_map(|r| {
                    let x: serde_json::Value = serde_json::from_slice(&r.value).ok()?;
                    (x["interaction_id"] == id.as_str()).then(|| {
                        format!(
                            "{} {} hops={}",
                            x["event_type"], x["event_time"], x["lineage"]["hops"]
                        )
                    })
                })
                .collect();
            panic!(
                "an event that was not delayed went to the late topic: {k:?} ({})\ninteraction trail:\n{}",
                v["late"],
                trail.join("\n")
            );
        }
        assert!(v["late"]["reason"].is_string());
        assert!(r.headers.contains_key("cx.late.reason"));
    }
    let planted = truth.planted_late.len();
    assert!(planted > 0, "the stream planted no late events");
    eprintln!("late: {} of {planted} delayed events", out.late.len());
    if !recall {
        return;
    }
    // (Timing-dependent: only for runs whose watermark lag is known, e.g.
    // a backlog. The exact late set is checked in tests/late_oracle.rs.)
    // A delayed event is late only if a newer event of its interaction was
    // already released when it arrived, i.e. the interaction had another
    // event more than the allowed lateness (plus the partitions' progress
    // lag) before its arrival; delayed events whose next sibling is closer
    // are correctly placed in order. So "close to 1%" means 0.8–1% here.
    assert!(
        out.late.len() * 5 >= planted * 4,
        "only {} of {planted} delayed events were late",
        out.late.len()
    );
}

/// Each late record is explained by its own header values, whatever the
/// timing: an `older_than_emitted` one names in `late.last_emitted_event_time`
/// a later event of its interaction that is in silver; a `beyond_retention`
/// one is older than its `late.watermark`. Holds across restarts, moves and
/// graceful stops (whose early flushes make later siblings rightly late).
pub fn check_late_siblings(out: &Outputs) {
    let mut silver_times: HashMap<String, HashSet<i64>> = HashMap::new();
    for r in &out.silver {
        let v: serde_json::Value = serde_json::from_slice(&r.value).expect("silver JSON");
        let k = key_of(&v);
        silver_times
            .entry(k.interaction_id)
            .or_default()
            .insert(k.event_time_ms);
    }
    let mut bad = Vec::new();
    for r in &out.late {
        let v: serde_json::Value = serde_json::from_slice(&r.value).expect("late JSON");
        let k = key_of(&v);
        let late = &v["late"];
        let header_reason = r.headers.get("cx.late.reason").map(Vec::as_slice);
        let ok = header_reason == late["reason"].as_str().map(str::as_bytes)
            && match late["reason"].as_str() {
                Some("older_than_emitted") => late["last_emitted_event_time"]
                    .as_str()
                    .map(iso_to_ms)
                    .is_some_and(|l| {
                        l > k.event_time_ms
                            && silver_times
                                .get(&k.interaction_id)
                                .is_some_and(|ts| ts.contains(&l))
                    }),
                Some("beyond_retention") => late["watermark"]
                    .as_str()
                    .map(iso_to_ms)
                    .is_some_and(|w| w > k.event_time_ms),
                _ => false,
            };
        if !ok {
            bad.push(format!(
                "{} {} at {} ({late})",
                k.interaction_id, k.event_type, k.event_time_ms
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} late records are not explained by a later sibling in silver (or the retention), e.g. {:?}",
        bad.len(),
        &bad[..bad.len().min(3)]
    );
}

/// Every malformed record in the dead-letter topic once, each header at its
/// exact value: the class the generator planted, stage `decode`, the source
/// coordinates of the input record it came from, unit 0, the lineage token
/// (the record's `CorrelationId`, else the generated one), `failed_at`
/// between the input record's timestamp and now; and the original bytes,
/// exactly.
pub fn check_dead_letters(truth: &Truth, out: &Outputs, input: &[Rec], input_topic: &str) {
    assert_eq!(
        out.dead.len() as u64,
        truth.malformed_records,
        "dead letters"
    );
    let by_pos: HashMap<(i32, i64), &Rec> =
        input.iter().map(|r| ((r.partition, r.offset), r)).collect();
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000;
    let mut sources = HashSet::new();
    for d in &out.dead {
        let h = |name: &str| -> String {
            String::from_utf8_lossy(
                d.headers
                    .get(name)
                    .unwrap_or_else(|| panic!("dead letter without {name}: {:?}", d.headers)),
            )
            .into_owned()
        };
        assert_eq!(h("cx.source.topic"), input_topic);
        let p: i32 = h("cx.source.partition").parse().expect("partition");
        let o: i64 = h("cx.source.offset").parse().expect("offset");
        assert!(
            sources.insert((p, o)),
            "two dead letters for input p{p} o{o}"
        );
        let src = by_pos
            .get(&(p, o))
            .unwrap_or_else(|| panic!("dead letter points at no input record: p{p} o{o}"));
        if h("cx.error.stage") == "output" {
            // An output record the broker could not take: its bytes are the
            // (masked) output record's, not the input's (README, dead letters).
            assert_eq!(h("cx.error.class"), "too_large");
            continue;
        }
        assert_eq!(h("cx.error.stage"), "decode");
        assert!(!h("cx.error.message").is_empty());
        // The generator's malformed records are whole records: unit 0.
        assert_eq!(h("cx.source.unit"), "0");
        let failed_at = iso_to_ms(&h("cx.failed_at"));
        let produced = src.timestamp_ms.expect("input timestamp");
        assert!(
            (produced..=now_ms).contains(&failed_at),
            "failed_at {failed_at} outside [{produced}, {now_ms}]"
        );
        assert_eq!(
            h("cx.lineage.token"),
            correlation_id(&src.value).unwrap_or_else(|| generated_token(input_topic, p, o)),
            "lineage token of p{p} o{o}"
        );
        assert_eq!(d.key, src.key, "original key kept");
        if d.headers.contains_key("cx.dlq.truncated") {
            check_reference(d, src);
            continue;
        }
        assert_eq!(
            d.value, src.value,
            "dead letter bytes are the original bytes"
        );
        assert_eq!(
            Some(h("cx.error.class").as_str()),
            truth.malformed_classes.get(&d.value).copied(),
            "class of {}",
            String::from_utf8_lossy(&d.value)
        );
    }
}

/// `metadata.CorrelationId` (or `detail.metadata.CorrelationId`) of a
/// record that is JSON enough to have one, as the decoder reads it.
fn correlation_id(value: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(value).ok()?;
    let md = v
        .get("metadata")
        .or_else(|| v.get("detail")?.get("metadata"))?;
    let id = md.get("CorrelationId")?.as_str()?;
    (!id.is_empty() && id.len() <= 256).then(|| id.to_string())
}

/// The lineage token generated for unit 0 of an input record: UUIDv5 of
/// `topic/partition/offset/0` in cxstream's namespace (README, lineage).
fn generated_token(topic: &str, partition: i32, offset: i64) -> String {
    let ns = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, b"urn:cxstream:lineage-token");
    uuid::Uuid::new_v5(&ns, format!("{topic}/{partition}/{offset}/0").as_bytes()).to_string()
}

/// Silver and late headers agree with the values: `cx.lineage.token` is
/// `lineage.token`, and a late record's `cx.late.reason` is `late.reason`.
pub fn check_output_headers(out: &Outputs) {
    for (topic, recs, late) in [("silver", &out.silver, false), ("late", &out.late, true)] {
        for r in recs {
            let v: serde_json::Value = serde_json::from_slice(&r.value).expect("JSON");
            let header = |k: &str| {
                r.headers
                    .get(k)
                    .map(|b| String::from_utf8_lossy(b).into_owned())
            };
            assert_eq!(
                header("cx.lineage.token").as_deref(),
                v["lineage"]["token"].as_str(),
                "{topic} p{} o{}: cx.lineage.token",
                r.partition,
                r.offset
            );
            if late {
                assert!(
                    v["late"]["reason"].is_string(),
                    "late record without a reason"
                );
                assert_eq!(
                    header("cx.late.reason").as_deref(),
                    v["late"]["reason"].as_str(),
                    "late p{} o{}: cx.late.reason",
                    r.partition,
                    r.offset
                );
            } else {
                assert_eq!(header("cx.late.reason"), None, "silver with a late reason");
            }
        }
    }
}

/// Masking tokens are deterministic: each raw `ani`/`dnis` of the input
/// maps to one token wherever it appears in silver and late, whichever
/// instance (run, restart) wrote the record, and the field is listed in
/// `lineage.masked_fields`. Single-event input records are compared (their
/// event is the record); the check must see repeated values to count.
pub fn check_token_determinism(out: &Outputs, input: &[Rec], input_topic: &str) {
    let by_pos: HashMap<(i64, i64), &Rec> = input
        .iter()
        .map(|r| ((r.partition as i64, r.offset), r))
        .collect();
    let mut token_of: HashMap<String, String> = HashMap::new();
    let mut raw_of: HashMap<String, String> = HashMap::new();
    let mut repeats = 0usize;
    for r in out.silver.iter().chain(&out.late) {
        let v: serde_json::Value = serde_json::from_slice(&r.value).expect("JSON");
        let hop = &v["lineage"]["hops"][0];
        if hop["source_topic"].as_str() != Some(input_topic) {
            continue;
        }
        let (Some(p), Some(o)) = (
            hop["source_partition"].as_i64(),
            hop["source_offset"].as_i64(),
        ) else {
            panic!("record without a source hop: {hop}");
        };
        let src = by_pos
            .get(&(p, o))
            .unwrap_or_else(|| panic!("silver names no input record: p{p} o{o}"));
        let Ok(raw) = serde_json::from_slice::<serde_json::Value>(&src.value) else {
            continue;
        };
        let body = raw
            .get("eventBody")
            .or_else(|| raw.get("detail").and_then(|d| d.get("eventBody")));
        let Some(body) = body else { continue };
        if body.get("conversationId").and_then(|c| c.as_str()) != v["interaction_id"].as_str() {
            continue;
        }
        for field in ["ani", "dnis"] {
            let (Some(plain), Some(token)) = (body[field].as_str(), v[field].as_str()) else {
                continue;
            };
            if plain.is_empty() {
                continue;
            }
            assert_ne!(plain, token, "{field} not masked");
            let masked = v["lineage"]["masked_fields"]
                .as_array()
                .is_some_and(|m| m.iter().any(|f| f == field));
            assert!(
                masked,
                "{field} masked but not in masked_fields: {}",
                v["lineage"]
            );
            match token_of.get(plain) {
                Some(t) => {
                    assert_eq!(t, token, "one {field} value, two tokens");
                    repeats += 1;
                }
                None => {
                    token_of.insert(plain.to_string(), token.to_string());
                }
            }
            if let Some(other) = raw_of.insert(token.to_string(), plain.to_string()) {
                assert!(
                    normalized_eq(&other, plain),
                    "two different {field} values share a token: {other:?} {plain:?} (generated test data)"
                );
            }
        }
    }
    assert!(
        repeats > 10 && token_of.len() > 10,
        "token determinism needs repeated values: {} values, {repeats} repeats",
        token_of.len()
    );
}

/// Two spellings of one address: a phone number as `tel:`/`sip:` URI or
/// with punctuation and spaces (the digits before any `@` or `;`).
fn normalized_eq(a: &str, b: &str) -> bool {
    let digits = |s: &str| -> String {
        let s = s
            .trim_start_matches("tel:")
            .trim_start_matches("sip:")
            .trim_start_matches("sips:");
        let s = s.split(['@', ';']).next().unwrap_or(s);
        s.chars().filter(char::is_ascii_alphanumeric).collect()
    };
    digits(a).eq_ignore_ascii_case(&digits(b))
}

/// A reference-form dead letter of an input unit: its size and SHA-256 are
/// those of the unit it names, and its value is the unit's first bytes.
pub fn check_reference(d: &Rec, src: &Rec) {
    use sha2::{Digest, Sha256};
    assert_eq!(d.headers["cx.dlq.truncated"], b"true");
    let unit: usize = String::from_utf8_lossy(&d.headers["cx.source.unit"])
        .parse()
        .expect("unit");
    let size: usize = String::from_utf8_lossy(&d.headers["cx.original.size"])
        .parse()
        .expect("size");
    let bytes = src
        .value
        .get(unit..unit + size)
        .expect("unit within the record");
    assert_eq!(
        String::from_utf8_lossy(&d.headers["cx.original.sha256"]),
        hex::encode(Sha256::digest(bytes)),
        "reference hash is the unit's"
    );
    assert!(
        bytes.starts_with(&d.value),
        "reference value is the unit's first bytes"
    );
    assert!(d.value.len() <= cxstream::config::DEFAULT_DEAD_LETTER_PREFIX);
}

/// The metrics add up: every event in ends in exactly one place, and they
/// agree with the ground truth.
pub fn check_accounting(truth: &Truth, s: &RunSummary) {
    assert!(s.accounted(), "accounting: {s:?}");
    assert_eq!(
        s.events_in,
        truth.events_sent + truth.malformed_records,
        "events in: {s:?}"
    );
    assert_eq!(s.silver + s.late, truth.unique_events.len() as u64, "{s:?}");
    assert_eq!(s.duplicates, truth.duplicate_deliveries, "{s:?}");
    assert_eq!(s.dead_letters, truth.malformed_records, "{s:?}");
}

/// Reads every output and the input back and runs every check.
pub fn check_all(
    brokers: &str,
    plan: &SilverPlan,
    truth: &Truth,
    summary: &RunSummary,
    late_recall: bool,
) {
    check_accounting(truth, summary);
    check_outputs(brokers, plan, truth, Some(late_recall));
}

/// Every check that reads the outputs (not the metrics of one process):
/// exactly once, order, no PII, late events, dead letters.
/// Every late record must be explained by a later sibling in silver
/// ([`check_late_siblings`]). `late_recall`: `Some(recall)` also checks that
/// each late event was planted late (see [`check_late`]); `None` does not (a
/// graceful stop flushes reorder buffers early, so later siblings of flushed
/// events are rightly late without being delayed). Returns where each input
/// partition ends (for [`tansu::check_committed_to_end`], without reading
/// the input again).
pub fn check_outputs(
    brokers: &str,
    plan: &SilverPlan,
    truth: &Truth,
    late_recall: Option<bool>,
) -> Vec<i64> {
    let out = read_outputs(brokers, plan);
    let input = read_all(brokers, &plan.runtime.input_topic);
    eprintln!(
        "outputs: {} silver, {} late, {} dead letters",
        out.silver.len(),
        out.late.len(),
        out.dead.len()
    );
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_exactly_once(truth, &out)
    }))
    .is_err()
    {
        explain_missing(brokers, plan, truth, &out, &input);
        panic!("exactly-once check failed (details above)");
    }
    check_order(&out);
    check_no_pii(truth, &out);
    check_output_headers(&out);
    check_token_determinism(&out, &input, &plan.runtime.input_topic);
    check_late_siblings(&out);
    if let Some(recall) = late_recall {
        check_late(truth, &out, recall);
    }
    check_dead_letters(truth, &out, &input, &plan.runtime.input_topic);
    let partitions = input.iter().map(|r| r.partition + 1).max().unwrap_or(0);
    (0..partitions)
        .map(|p| {
            input
                .iter()
                .filter(|r| r.partition == p)
                .map(|r| r.offset + 1)
                .max()
                .unwrap_or(0)
        })
        .collect()
}

/// Diagnostics for a failed exactly-once check: where the missing events'
/// interactions appear in the input, repartition and outputs.
fn explain_missing(brokers: &str, plan: &SilverPlan, truth: &Truth, out: &Outputs, input: &[Rec]) {
    let seen: HashSet<EventKey> = out
        .silver
        .iter()
        .chain(&out.late)
        .filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.value).ok())
        .map(|v| key_of(&v))
        .collect();
    let mut copies: HashMap<EventKey, Vec<&Rec>> = HashMap::new();
    for r in out.silver.iter().chain(&out.late) {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&r.value) {
            copies.entry(key_of(&v)).or_default().push(r);
        }
    }
    for (k, recs) in copies.iter().filter(|(_, r)| r.len() > 1).take(3) {
        eprintln!("twice {k:?}");
        for r in recs {
            let v: serde_json::Value = serde_json::from_slice(&r.value).unwrap_or_default();
            eprintln!(
                "  out p{} o{} hops={}",
                r.partition, r.offset, v["lineage"]["hops"]
            );
        }
    }
    let repartition = read_all(brokers, &plan.runtime.repartition_topic);
    let missing: Vec<&EventKey> = truth
        .unique_events
        .iter()
        .filter(|k| !seen.contains(*k))
        .take(5)
        .collect();
    for k in missing {
        eprintln!("missing {k:?}");
        let needle = k.interaction_id.as_bytes();
        for (name, recs) in [("input", input), ("repartition", &repartition[..])] {
            for r in recs
                .iter()
                .filter(|r| r.value.windows(needle.len()).any(|w| w == needle))
            {
                let v = String::from_utf8_lossy(&r.value);
                let has_time = v.contains(&k.event_time_ms.to_string());
                eprintln!(
                    "  {name} p{} o{} key={:?} has_time={has_time} kind={}",
                    r.partition,
                    r.offset,
                    r.key
                        .as_ref()
                        .map(|k| String::from_utf8_lossy(k).to_string()),
                    if v.contains(&k.event_type) {
                        &k.event_type
                    } else {
                        "-"
                    }
                );
            }
        }
        for r in out.silver.iter().chain(&out.late) {
            if r.key.as_deref() == Some(needle) {
                let v: serde_json::Value = serde_json::from_slice(&r.value).unwrap_or_default();
                eprintln!(
                    "  out p{} o{} {} {} src={}",
                    r.partition, r.offset, v["event_type"], v["event_time"], v["lineage"]["hops"]
                );
            }
        }
    }
}

/// Long soaks (`CXSTREAM_SOAK=1`, set by `scripts/bench.sh --soak`): the
/// crash and restore tests at their soak sizes instead of the sizes that
/// prove their property in CI.
pub fn soak() -> bool {
    std::env::var_os("CXSTREAM_SOAK").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Takes out of `truth` the events the plan's media filter drops (a media
/// type it does not keep; events without a media type pass): they must
/// appear nowhere. Returns how many unique events that is.
pub fn drop_filtered(truth: &mut Truth, plan: &SilverPlan) -> usize {
    let Some(keep) = &plan.media_filter else {
        return 0;
    };
    let dropped = |k: &EventKey| {
        truth
            .event_media
            .get(k)
            .is_some_and(|m| !keep.iter().any(|x| x.eq_ignore_ascii_case(m)))
    };
    let before = truth.unique_events.len();
    let kept: Vec<EventKey> = truth
        .unique_events
        .iter()
        .filter(|k| !dropped(k))
        .cloned()
        .collect();
    let late: HashSet<EventKey> = truth
        .planted_late
        .iter()
        .filter(|k| !dropped(k))
        .cloned()
        .collect();
    truth.unique_events = kept;
    truth.planted_late = late;
    before - truth.unique_events.len()
}

/// The accounting identity on a live `/metrics` scrape of a quiescent
/// instance (its reorder buffers empty): every event read, from the input
/// or back from the repartition topic, ended in exactly one place:
/// `events_in + repartitioned_in = out (silver + late + dead_letter) +
/// duplicates + filtered + handed_over + repartitioned` (see
/// `cxstream::metrics`). Returns `(filtered, handed_over)`.
pub fn check_live_accounting(name: &str, text: &str) -> (u64, u64) {
    let get = |m: &str| tansu::metric(text, m).unwrap_or_else(|| panic!("[{name}] no {m}")) as u64;
    let events_in = get("cxstream_events_in_total");
    let back_in = get("cxstream_events_repartitioned_in_total");
    // Outputs only: what goes to the repartition topic is `repartitioned`.
    let out = ["silver", "late", "dead_letter"]
        .iter()
        .map(|o| {
            tansu::metric(
                text,
                &format!("cxstream_events_out_total{{output=\"{o}\"}}"),
            )
            .unwrap_or(0.0) as u64
        })
        .sum::<u64>();
    let duplicates = get("cxstream_duplicates_dropped_total");
    let filtered = get("cxstream_events_filtered_total");
    let handed_over = get("cxstream_events_handed_over_total");
    let forwarded = get("cxstream_events_repartitioned_total");
    let buffered = get("cxstream_reorder_buffered_events");
    assert_eq!(
        buffered, 0,
        "[{name}] not quiescent: {buffered} events buffered"
    );
    assert_eq!(
        events_in + back_in,
        out + duplicates + filtered + handed_over + forwarded,
        "[{name}] accounting: in {events_in} + back from repartition {back_in}; out {out}, \
         duplicates {duplicates}, filtered {filtered}, handed over {handed_over}, forwarded {forwarded}"
    );
    eprintln!(
        "[{name}] live accounting: in {events_in} + back {back_in} = out {out} + duplicates \
         {duplicates} + filtered {filtered} + handed over {handed_over} + forwarded {forwarded}"
    );
    (filtered, handed_over)
}

/// The counts of the stream the generator makes for `cfg` (events sent,
/// unique events, …; no per-event truth): a dry run, no I/O, for checking a
/// test's size preconditions before its slow part.
pub fn stream_counts(cfg: &GenConfig) -> Truth {
    let mut gen = Generator::new(GenConfig {
        collect_truth: false,
        ..cfg.clone()
    });
    gen.by_ref().for_each(drop);
    gen.into_truth()
}

/// How many events (duplicates included) the generator sends for `cfg`.
pub fn events_in_stream(cfg: &GenConfig) -> u64 {
    stream_counts(cfg).events_sent
}
