//! `export` over hand-made activity records on librdkafka's in-process mock
//! cluster: a case's activities come out in event-time order with its
//! close, a late activity just after the close joins its case, an open case
//! is written at the partition's end, foreign records and tombstones are
//! skipped and counted, `--cases` stops early, and a missing topic is a
//! clear error.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use cxstream::export::{self, ExportError, Format, Source};
use cxstream::mining::Selection;
use cxstream::process::record::{ActivityRecord, Lineage, SCHEMA_VERSION};
use cxstream::topic_read::ReadError;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

fn record(case: &str, activity: &str, at_ms: i64, sequence: u64) -> ActivityRecord {
    let mut attributes = BTreeMap::new();
    if activity == "Case Closed" {
        attributes.insert("closed_by".into(), "customer.end".into());
        attributes.insert("duration_ms".into(), 90_000.into());
    }
    ActivityRecord {
        schema_version: SCHEMA_VERSION,
        case_id: case.into(),
        activity: activity.into(),
        timestamp: ActivityRecord::timestamp_ms(at_ms),
        start_timestamp: (activity == "Wrap-up")
            .then(|| ActivityRecord::timestamp_ms(at_ms - 20_000)),
        lifecycle: "complete".into(),
        resource: Some("q1".into()),
        resource_type: "queue".into(),
        media_type: Some("VOICE".into()),
        direction: Some("INBOUND".into()),
        attributes,
        sequence,
        late: false,
        lineage: Lineage {
            token: None,
            event_id: format!("{case}-e{sequence}"),
        },
    }
}

fn source(brokers: &str, topic: &str, cases: Option<u64>) -> Source {
    Source {
        brokers: brokers.into(),
        topic: topic.into(),
        client: Vec::new(),
        selection: Selection {
            cases,
            ..Selection::default()
        },
        linger: 100,
        quiet: true,
        stall: Duration::from_secs(20),
    }
}

fn out(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "cxstream-export-mock-{}-{name}",
        std::process::id()
    ))
}

#[test]
fn export_on_the_mock_cluster() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("acts", 2, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let producer: BaseProducer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("producer");
    let t = 1_767_261_600_000;
    // c1: written with its IVR after its Queued (late), closed, then one
    // more late activity just after the close.
    let c1 = [
        record("c1", "Call Started", t, 1),
        record("c1", "Queued", t + 30_000, 2),
        record("c1", "IVR Entered", t + 10_000, 3),
        record("c1", "Wrap-up", t + 80_000, 4),
        record("c1", "Call Ended", t + 90_000, 5),
        record("c1", "Case Closed", t + 90_000, 6),
        record("c1", "IVR Exited", t + 20_000, 7),
    ];
    // c2: never closed.
    let c2 = [
        record("c2", "Call Started", t + 5_000, 1),
        record("c2", "Queued", t + 6_000, 2),
    ];
    for r in c1.iter().chain(c2.iter()) {
        let bytes = r.encode();
        producer
            .send(
                BaseRecord::to("acts")
                    .key(r.case_id.as_str())
                    .payload(&bytes),
            )
            .expect("send");
    }
    producer
        .send(BaseRecord::to("acts").key("c1").payload("not an activity"))
        .expect("send");
    producer
        .send(BaseRecord::<str, [u8]>::to("acts").key("c2"))
        .expect("send tombstone");
    producer.flush(Duration::from_secs(10)).expect("flush");

    let xes = out("all.xes");
    let summary =
        export::export(&source(&brokers, "acts", None), Format::Xes, &xes).expect("export");
    assert_eq!(summary.cases, 2, "{summary:?}");
    assert_eq!(summary.activities, 8);
    assert_eq!(summary.markers, 1);
    assert_eq!(summary.skipped.get("not an activity record"), Some(&1));
    assert_eq!(summary.skipped.get("record without a value"), Some(&1));
    assert_eq!(summary.continuations, 0);
    let text = std::fs::read_to_string(&xes).expect("xes");
    let c1_at = text.find("value=\"c1\"").expect("c1 trace");
    let order: Vec<usize> = [
        "Call Started",
        "IVR Entered",
        "IVR Exited",
        "Queued",
        "Wrap-up",
        "Call Ended",
    ]
    .iter()
    .map(|a| text[c1_at..].find(&format!("value=\"{a}\"")).expect(a))
    .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "c1 in event-time order: {order:?}"
    );
    assert!(text.contains("<int key=\"duration_ms\" value=\"90000\"/>"));
    assert!(
        !text.contains("Case Closed"),
        "the close is the trace's figures, not an event"
    );
    assert_eq!(
        text.matches("value=\"start\"").count(),
        1,
        "one wrap-up start"
    );
    assert_eq!(text.matches("<trace>").count(), 2);

    let one = out("one.xes");
    let summary =
        export::export(&source(&brokers, "acts", Some(1)), Format::Xes, &one).expect("export one");
    assert_eq!(summary.cases, 1);
    let text = std::fs::read_to_string(&one).expect("xes");
    assert_eq!(text.matches("<trace>").count(), 1);

    let ocel = out("all.ocel.json");
    export::export(&source(&brokers, "acts", None), Format::Ocel, &ocel).expect("ocel");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&ocel).expect("ocel file")).expect("ocel JSON");
    assert_eq!(doc["events"].as_array().map(Vec::len), Some(8));
    assert!(!PathBuf::from(format!("{}.part.objects", ocel.display())).exists());

    let missing = out("missing.xes");
    let err = export::export(
        &source(&brokers, "no-such-topic", None),
        Format::Xes,
        &missing,
    )
    .expect_err("a missing topic");
    assert!(
        matches!(err, ExportError::Read(ReadError::NoTopic(_))),
        "{err}"
    );
    assert!(err.to_string().contains("no-such-topic"), "{err}");
    assert!(!missing.exists() && !PathBuf::from(format!("{}.part", missing.display())).exists());
    for f in [xes, one, ocel] {
        let _ = std::fs::remove_file(f);
    }
}
