//! The audit stage on Tansu, behind silver, killed (-9) five times during
//! a stream of about 100,000 events: `cxstream audit verify` passes (every
//! record's hash, every chain's links, every partition's leaves gap-free
//! and equal to its signed checkpoints), every interaction whose
//! `customer.end` reached silver has a chain ending at `ended`, and no
//! state change is written twice. Then copies of the verified trail, each
//! with one kind of tampering, and each is named and fails verification.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::tansu::{serial, Processor, Tansu};
use cxstream::audit::merkle::Frontier;
use cxstream::audit::note::{Checkpoint, NoteSigner};
use cxstream::audit::record::{AuditRecord, GENESIS};
use cxstream::generate::GenConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value;

const ORIGIN: &str = "cxstream.audit";

/// (name, partition 0's records, its checkpoint notes, the finding expected).
type Tampered = (&'static str, Vec<Vec<u8>>, Vec<String>, &'static str);

fn audit_stage(prefix: &str) -> String {
    format!(
        r#"
[[stages]]
name = "audit"
kind = "audit"
inputs = ["{prefix}.silver"]
dead_letter = "{prefix}.dlq"

[stages.ports]
events = {{ topic = "{prefix}.audit", format = "json" }}
checkpoints = {{ topic = "{prefix}.audit-checkpoints", format = "json" }}

[stages.internal]
repartition = "cx.internal.{prefix}.audit.repartition"
changelog = "cx.internal.{prefix}.audit.changelog"

[[stages.operators]]
type = "chain"
checkpoint_every = 2000
checkpoint_interval = "1s"
"#
    )
}

/// `cxstream audit verify` of `events`/`checkpoints` as the log `log`:
/// (exit status, the JSON report).
fn verify(
    brokers: &str,
    public: &Path,
    events: &str,
    checkpoints: &str,
    log: &str,
    dir: &Path,
) -> (bool, Value) {
    let json = dir.join(format!("{events}.report.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_cxstream"))
        .args(["audit", "verify", "--brokers", brokers, "--quiet"])
        .arg("--public-key")
        .arg(public)
        .args([
            "--events-topic",
            events,
            "--checkpoints-topic",
            checkpoints,
            "--log-name",
            log,
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("cxstream audit verify");
    let report: Value =
        serde_json::from_slice(&std::fs::read(&json).expect("report")).expect("JSON");
    eprintln!(
        "verify {events}: {}",
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("")
    );
    (out.status.success(), report)
}

/// Writes `parts` (partition → values, in order) to a new topic `topic`.
fn copy_to(tansu: &Tansu, topic: &str, parts: &BTreeMap<i32, Vec<Vec<u8>>>, partitions: i32) {
    tansu.create_topic(topic, partitions);
    let producer: BaseProducer = common::settings(&tansu.brokers)
        .with_defaults(&[("enable.idempotence", "true"), ("linger.ms", "5")])
        .create()
        .expect("producer");
    for (p, values) in parts {
        for v in values {
            loop {
                match producer.send(BaseRecord::<(), [u8]>::to(topic).partition(*p).payload(v)) {
                    Ok(()) => break,
                    Err((_, _)) => {
                        producer.poll(Duration::from_millis(50));
                    }
                }
            }
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

fn by_partition(records: &[common::Rec]) -> BTreeMap<i32, Vec<Vec<u8>>> {
    let mut out: BTreeMap<i32, Vec<(i64, Vec<u8>)>> = BTreeMap::new();
    for r in records {
        out.entry(r.partition)
            .or_default()
            .push((r.offset, r.value.clone()));
    }
    out.into_iter()
        .map(|(p, mut v)| {
            v.sort_by_key(|(o, _)| *o);
            (p, v.into_iter().map(|(_, v)| v).collect())
        })
        .collect()
}

/// Re-indexes and re-chains `records` (one partition) as a forger would.
fn rechain(records: &mut [AuditRecord]) {
    let mut last: HashMap<String, String> = HashMap::new();
    for (i, r) in records.iter_mut().enumerate() {
        r.leaf_index = i as u64;
        r.prev_hash = last
            .get(&r.interaction_id)
            .cloned()
            .unwrap_or_else(|| GENESIS.to_string());
        *r = r.clone().seal();
        last.insert(r.interaction_id.clone(), r.hash.clone());
    }
}

fn root_of(records: &[AuditRecord]) -> [u8; 32] {
    let mut f = Frontier::default();
    for r in records {
        f.push(r.leaf().expect("leaf"));
    }
    f.root()
}

#[test]
#[ignore = "needs Tansu: run `bash scripts/test.sh`"]
fn the_audit_trail_survives_five_kill_9_verifies_and_names_every_tampering() {
    let _serial = serial();
    let tansu = Tansu::start();
    let prefix = "audit";
    let (path, t) = common::isolated_topology(prefix);
    let text = std::fs::read_to_string(&path).expect("topology") + &audit_stage(prefix);
    std::fs::write(&path, &text).expect("topology");
    let t2 = cxstream::config::parse(&text, "audit.toml").expect("valid topology");
    let audit = t2.audit().expect("an audit stage").clone();
    let silver = t.silver().expect("silver").clone();
    let dir = std::env::temp_dir().join(format!("cxstream-audit-{}", common::unique()));
    let (private, public) = cxstream::audit::keys::keygen(&dir, "cxstream-audit").expect("keygen");
    // The processes this test starts inherit it.
    std::env::set_var(cxstream::audit::keys::AUDIT_KEY_FILE_ENV, &private);

    let partitions = 4;
    tansu.create_topic(&silver.runtime.input_topic, partitions);
    let cfg = GenConfig {
        interactions: 9_000,
        seed: 2041,
        interaction_spacing_ms: 300,
        collect_truth: true,
        ..GenConfig::default()
    };
    let producer = common::produce_paced(&tansu.brokers, &silver.runtime.input_topic, cfg, 6_000.0);
    let idle = Duration::from_secs(8);
    let start = |stage: &str, name: &str| {
        Processor::start_topology(&path, Some(stage), &tansu.brokers, prefix, name, idle, &[])
    };
    let silver_proc = start("silver", "silver");
    let mut a = start("audit", "audit-0");
    for i in 1..=5 {
        a.wait_for_metric("cxstream_checkpoints_total", 2.0, Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(1_500 + 700 * i));
        eprintln!("kill #{i}");
        a.kill9();
        a = start("audit", &format!("audit-{i}"));
    }
    let truth = producer.join().expect("producer");
    let (status, log) = silver_proc.wait(Duration::from_secs(600));
    assert!(status.success(), "silver: {log}");
    let (status, log) = a.wait(Duration::from_secs(600));
    assert!(status.success(), "audit: {log}");

    // The trail verifies.
    let (ok, report) = verify(
        &tansu.brokers,
        &public,
        &audit.events_topic,
        &audit.checkpoints_topic,
        &audit.events_topic,
        &dir,
    );
    assert!(ok, "the trail does not verify: {report}");
    for (p, r) in report["partitions"].as_object().expect("partitions") {
        assert!(r["roots_matched"].as_u64() > Some(0), "partition {p}: {r}");
        assert_eq!(r["first_leaf"], 0, "partition {p}");
    }

    // Every chain complete, no state change twice, nothing of PII.
    let records = common::read_all(&tansu.brokers, &audit.events_topic);
    common::check_no_pii_in(&truth, &records, "audit");
    let decoded: Vec<AuditRecord> = records
        .iter()
        .map(|r| AuditRecord::decode(&r.value).expect("an audit record"))
        .collect();
    let mut seen = HashSet::new();
    let mut last: HashMap<&str, &str> = HashMap::new();
    for r in &decoded {
        assert!(
            seen.insert((r.interaction_id.clone(), r.seq)),
            "seq {} of {} twice",
            r.seq,
            r.interaction_id
        );
        assert!(
            !r.source_event_id.is_empty(),
            "a record without its source event"
        );
        last.insert(&r.interaction_id, &r.to_state);
    }
    let late: HashSet<(String, String, i64)> =
        common::process::silver_late(&common::read_all(&tansu.brokers, &silver.late_topic));
    let media = silver.media_filter.clone().unwrap_or_default();
    let ended: HashSet<&str> = truth
        .facts
        .iter()
        .filter(|f| f.key.event_type == "customer.end")
        .filter(|f| {
            f.media_type
                .as_deref()
                .is_none_or(|m| media.iter().any(|x| x.eq_ignore_ascii_case(m)))
        })
        .filter(|f| {
            !late.contains(&(
                f.key.interaction_id.clone(),
                f.key.event_type.clone(),
                f.key.event_time_ms,
            ))
        })
        .map(|f| f.key.interaction_id.as_str())
        .collect();
    assert!(ended.len() > 5_000, "{} ended interactions", ended.len());
    let unfinished: Vec<&&str> = ended
        .iter()
        .filter(|id| last.get(**id) != Some(&"ended"))
        .take(5)
        .collect();
    assert!(
        unfinished.is_empty(),
        "chains that do not end at `ended`: {unfinished:?}"
    );
    eprintln!(
        "{} audit records, {} interactions, {} ended",
        decoded.len(),
        last.len(),
        ended.len()
    );
    // `audit state` replays a chain to an instant: the state the chain's
    // records say, for a few interactions at their second record and at
    // the end.
    let mut chains: BTreeMap<&str, Vec<&AuditRecord>> = BTreeMap::new();
    for r in &decoded {
        chains.entry(&r.interaction_id).or_default().push(r);
    }
    for (id, chain) in chains.iter().filter(|(_, c)| c.len() >= 4).take(5) {
        let state = |as_of: Option<&str>| -> Value {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_cxstream"));
            cmd.args([
                "audit",
                "state",
                "--brokers",
                &tansu.brokers,
                "--json",
                "--interaction",
                id,
            ])
            .args(["--events-topic", &audit.events_topic]);
            if let Some(t) = as_of {
                cmd.args(["--as-of", t]);
            }
            let out = cmd.output().expect("audit state");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice(&out.stdout).expect("state JSON")
        };
        let at = state(Some(&chain[1].event_time));
        let want = chain
            .iter()
            .rev()
            .find(|r| r.event_time <= chain[1].event_time)
            .expect("record");
        assert_eq!(
            at["state"],
            want.to_state.as_str(),
            "{id} at {}",
            chain[1].event_time
        );
        let end = state(None);
        assert_eq!(
            end["state"],
            chain.last().expect("last").to_state.as_str(),
            "{id}"
        );
        assert_eq!(end["chain_length"], chain.len() as u64);
    }
    // Every record validates against the shipped schema (jsonschema, from
    // the test venv).
    let jsonl = dir.join("audit.jsonl");
    let lines: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8_lossy(&r.value).into_owned())
        .collect();
    std::fs::write(&jsonl, lines.join("\n")).expect("jsonl");
    let python = std::env::var("CXSTREAM_PYTHON")
        .expect("CXSTREAM_PYTHON is not set: run `bash scripts/test.sh`");
    let check = Command::new(python)
        .arg("-c")
        .arg("import json,sys,jsonschema; v=jsonschema.Draft202012Validator(json.load(open(sys.argv[1]))); bad=[e.message for l in open(sys.argv[2]) for e in v.iter_errors(json.loads(l))]; print(len(bad), bad[:3]); sys.exit(1 if bad else 0)")
        .arg(format!("{}/schemas/audit/cx.audit.event.v1.json", env!("CARGO_MANIFEST_DIR")))
        .arg(&jsonl)
        .output()
        .expect("python");
    assert!(
        check.status.success(),
        "audit records against their schema: {}",
        String::from_utf8_lossy(&check.stdout)
    );

    // Copies, each with one kind of tampering in partition 0.
    let events = by_partition(&records);
    let notes = by_partition(&common::read_all(&tansu.brokers, &audit.checkpoints_topic));
    let p0: Vec<AuditRecord> = events[&0]
        .iter()
        .map(|v| AuditRecord::decode(v).expect("record"))
        .collect();
    let tail = report["partitions"]["0"]["unanchored_tail"]
        .as_u64()
        .expect("tail") as usize;
    let mid = p0.len() / 2;
    let other = NoteSigner::generate("cxstream-audit");
    let encode = |rs: &[AuditRecord]| rs.iter().map(AuditRecord::encode).collect::<Vec<_>>();
    let p0_notes: Vec<String> = notes
        .values()
        .flatten()
        .filter_map(|v| String::from_utf8(v.clone()).ok())
        .filter(|n| n.starts_with(&format!("{ORIGIN}/{}/0\n", audit.events_topic)))
        .collect();
    assert!(!p0_notes.is_empty());
    let resign = |n: &str| {
        let mut lines = n.lines();
        let origin = lines.next().expect("origin").to_string();
        let size = lines.next().expect("size").parse().expect("size");
        let root = base64_root(lines.next().expect("root"));
        other.sign(&Checkpoint { origin, size, root })
    };
    let mut forged = p0.clone();
    let victim = forged[mid].clone();
    forged.insert(
        mid + 1,
        AuditRecord {
            seq: victim.seq + 1,
            to_state: "transferred".into(),
            ..victim.clone()
        },
    );
    // Later records of the victim move up one seq.
    for r in forged.iter_mut().skip(mid + 2) {
        if r.interaction_id == victim.interaction_id {
            r.seq += 1;
        }
    }
    rechain(&mut forged);
    let forged_note = other.sign(&Checkpoint {
        origin: format!("{ORIGIN}/{}/0", audit.events_topic),
        size: forged.len() as u64,
        root: root_of(&forged),
    });
    let cases: Vec<Tampered> = vec![
        ("clean", events[&0].clone(), p0_notes.clone(), ""),
        (
            "edited",
            {
                let mut v = p0.clone();
                v[mid].actor = "agent:someone-else".into();
                encode(&v)
            },
            p0_notes.clone(),
            "hash_mismatch",
        ),
        (
            "deleted",
            {
                let mut v = p0.clone();
                v.remove(mid);
                encode(&v)
            },
            p0_notes.clone(),
            "leaf_gap",
        ),
        (
            "swapped",
            {
                let mut v = p0.clone();
                v.swap(mid, mid + 1);
                encode(&v)
            },
            p0_notes.clone(),
            "leaf_reorder",
        ),
        (
            "inserted",
            encode(&forged),
            p0_notes.clone(),
            "root_mismatch",
        ),
        (
            "truncated",
            encode(&p0[..p0.len() - tail - 3]),
            p0_notes.clone(),
            "truncated",
        ),
        (
            "other-key",
            events[&0].clone(),
            p0_notes.iter().map(|n| resign(n)).collect(),
            "unknown_key",
        ),
        (
            "forged-checkpoint",
            encode(&forged),
            vec![forged_note],
            "unknown_key",
        ),
    ];
    for (name, values, cps, kind) in cases {
        let ev_topic = format!("{prefix}.copy-{name}");
        let cp_topic = format!("{prefix}.copy-{name}-checkpoints");
        copy_to(&tansu, &ev_topic, &BTreeMap::from([(0, values)]), 1);
        copy_to(
            &tansu,
            &cp_topic,
            &BTreeMap::from([(0, cps.into_iter().map(String::into_bytes).collect())]),
            1,
        );
        let (ok, report) = verify(
            &tansu.brokers,
            &public,
            &ev_topic,
            &cp_topic,
            &audit.events_topic,
            &dir,
        );
        if kind.is_empty() {
            assert!(ok, "{name}: a clean copy must verify: {report}");
        } else {
            assert!(!ok, "{name}: verify passed a tampered trail");
            assert!(
                report["counts"][kind].as_u64() > Some(0),
                "{name}: not named {kind}: {}",
                report["counts"]
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn base64_root(s: &str) -> [u8; 32] {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
        .try_into()
        .expect("32 bytes")
}
