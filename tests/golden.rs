//! Golden tests: every fixture in `tests/golden/input/` (one per event kind
//! and per drift or malformed case) runs through the shipped topology's
//! operator chain, and the silver, late and dead-letter outputs must equal
//! `tests/golden/expected/<fixture>.json`.
//!
//! `processed_at` (wall clock) is replaced by a placeholder before comparing.
//! Every record has the broker timestamp [`RECORD_MS`], so the topology's
//! event-time plausibility bounds apply. Dead letters are rendered as the
//! runtime produces them ([`dead_letter::build`] at the default 1,000,000-byte
//! limit: every header, whole or by reference) and their bytes compared
//! exactly through their SHA-256.
//! To regenerate after an intended change: `CXSTREAM_BLESS=1 cargo test --test golden`,
//! then review the diff.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use cxstream::config;
use cxstream::metrics::Metrics;
use cxstream::model::SourceRef;
use cxstream::pipeline::{Output, Pipeline, RecordIn, Role};
use cxstream::runtime::client::LIBRDKAFKA_MESSAGE_MAX_BYTES;
use cxstream::runtime::dead_letter;
use cxstream::secret::MaskingKey;
use sha2::{Digest, Sha256};

const KEY: &str = "golden-test-key";
/// 2026-12-01T00:00:00Z: the broker timestamp of every fixture's record.
const RECORD_MS: i64 = 1_796_083_200_000;

fn dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(sub)
}

fn scrub(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if k == "processed_at" {
                    *x = Value::from("<processed_at>");
                } else {
                    scrub(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(scrub),
        _ => {}
    }
}

fn run_fixture(pipeline: &Pipeline, name: &str, bytes: &[u8]) -> Value {
    let mut task = pipeline.new_task(0, 1);
    let mut out = Vec::new();
    let source = SourceRef {
        topic: Arc::from("genesys.bronze.events"),
        partition: 0,
        offset: 7,
    };
    let rec = RecordIn {
        value: bytes,
        source: source.clone(),
        role: Role::Input,
        header_token: None,
        header_hops: None,
        record_timestamp_ms: Some(RECORD_MS),
        ticket: 1,
    };
    let units = pipeline.ingest(&rec, &mut task, Instant::now(), &mut out);
    pipeline.flush(&mut task, &mut out);
    let (mut silver, mut late, mut dead) = (Vec::new(), Vec::new(), Vec::new());
    for o in out {
        match o {
            Output::Silver(e) => {
                silver.push(serde_json::from_slice::<Value>(&e.value).expect("JSON"))
            }
            Output::Late(e) => late.push(serde_json::from_slice::<Value>(&e.value).expect("JSON")),
            Output::DeadLetter(d) => {
                let spec = dead_letter::Spec {
                    class: d.class,
                    message: &d.message,
                    stage: d.stage,
                    source: &source,
                    unit: d.range.start,
                    failed_at: "<failed_at>",
                    lineage_token: d.lineage_token.as_deref(),
                    key: Some(b"record-key"),
                };
                let dl = dead_letter::build(
                    &spec,
                    dead_letter::Rejected::Bytes(&bytes[d.range.clone()]),
                    LIBRDKAFKA_MESSAGE_MAX_BYTES,
                    plan_prefix(pipeline),
                );
                let headers: serde_json::Map<String, Value> = dl
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), Value::from(v.as_str())))
                    .collect();
                dead.push(json!({
                    "reference": dl.reference,
                    "key": dl.key.as_deref().map(String::from_utf8_lossy),
                    "headers": headers,
                    "value_bytes": dl.value.len(),
                    "value_sha256": hex::encode(Sha256::digest(&dl.value)),
                    "value": (dl.value.len() <= 4096).then(|| String::from_utf8_lossy(&dl.value).into_owned()),
                }))
            }
            Output::Forward(_) => panic!("{name}: nothing is forwarded with one partition"),
            Output::Done { .. } => {}
        }
    }
    let mut v = json!({ "units": units, "silver": silver, "late": late, "dead_letters": dead });
    scrub(&mut v);
    v
}

fn plan_prefix(p: &Pipeline) -> usize {
    p.plan().runtime.dead_letter_prefix
}

#[test]
fn golden_fixtures() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/genesys-silver.toml"),
    )
    .expect("topology");
    let plan = Arc::new(
        config::parse(&text, "genesys-silver.toml")
            .expect("valid")
            .into_silver()
            .expect("a silver stage"),
    );
    let key = MaskingKey::from_bytes(KEY).expect("key");
    let bless = std::env::var_os("CXSTREAM_BLESS").is_some();
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(dir("input"))
        .expect("tests/golden/input")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    inputs.sort();
    assert!(
        inputs.len() >= 16 + 9,
        "one fixture per kind and per drift case"
    );
    let mut failures = Vec::new();
    for path in inputs {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("name")
            .to_string();
        let bytes = std::fs::read(&path).expect("fixture");
        let pipeline = Pipeline::new(plan.clone(), &key, Arc::new(Metrics::new()));
        let got = run_fixture(&pipeline, &name, &bytes);
        let expected_path = dir("expected").join(format!("{name}.json"));
        if bless {
            std::fs::create_dir_all(dir("expected")).expect("mkdir");
            let mut s = serde_json::to_string_pretty(&got).expect("json");
            s.push('\n');
            let before = std::fs::read_to_string(&expected_path).ok();
            if before.as_deref() != Some(s.as_str()) {
                eprintln!("CXSTREAM_BLESS: rewrote {}", expected_path.display());
                std::fs::write(&expected_path, s).expect("write");
            }
            continue;
        }
        let expected: Value = match std::fs::read(&expected_path) {
            Ok(b) => serde_json::from_slice(&b).expect("expected JSON"),
            Err(_) => {
                failures.push(format!("{name}: no {}", expected_path.display()));
                continue;
            }
        };
        if got != expected {
            failures.push(format!(
                "{name}: output differs from {}\n--- got:\n{}",
                expected_path.display(),
                serde_json::to_string_pretty(&got).unwrap_or_default()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
