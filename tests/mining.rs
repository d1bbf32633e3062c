//! `cxstream export` and `cxstream mine` on Tansu, against the reference
//! implementation: over an activity log written by the shipped topology
//! (generated traffic with disorder, duplicates and late events), plus one
//! foreign record on the topic,
//!
//! - `pm4py.read_xes` on the XES export finds the topic's cases and
//!   activities (a `start` event more for each activity with a start time),
//!   and `pm4py.discover_dfg` the same edges and counts as `mine dfg`;
//! - `pm4py.read_ocel2_json` loads the OCEL export with every event, object
//!   and relationship (pm4py silently drops events without relationships,
//!   so the counts are asserted), and the file validates against the OCEL
//!   2.0 JSON schema (`schemas/vendor/`);
//! - `--cases`, `--from`/`--to` take what they say; `mine variants` counts
//!   every case; the foreign record is skipped and counted.
//!
//! pm4py runs from the venv `scripts/pyenv.sh` builds (`CXSTREAM_PYTHON`,
//! set by `scripts/test.sh`).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::tansu::{serial, Processor, Tansu};
use cxstream::generate::GenConfig;
use cxstream::model::parse_iso_ms;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value;

fn cxstream(args: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cxstream"))
        .args(args)
        .output()
        .expect("cxstream runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "cxstream {args:?} failed: {stderr}");
    (stdout, stderr)
}

fn python() -> String {
    std::env::var("CXSTREAM_PYTHON").expect(
        "CXSTREAM_PYTHON is not set: run `bash scripts/test.sh` (it builds the venv with pm4py), \
         or set it to the python of `bash scripts/pyenv.sh install`",
    )
}

/// What the topic holds, read directly.
#[derive(Debug, Default)]
struct TopicFacts {
    cases: BTreeSet<String>,
    activities: u64,
    with_start: u64,
    /// Case → first activity time (its start, if earlier).
    first_ms: BTreeMap<String, i64>,
    objects: HashSet<String>,
    relations: u64,
}

fn topic_facts(records: &[common::Rec]) -> TopicFacts {
    let mut f = TopicFacts::default();
    for r in records {
        let Ok(v) = serde_json::from_slice::<Value>(&r.value) else {
            continue;
        };
        if v["attributes"].get("closed_by").is_some() {
            continue;
        }
        let case = v["case_id"].as_str().expect("case_id").to_string();
        let at = parse_iso_ms(v["timestamp"].as_str().expect("timestamp")).expect("iso");
        let start = v["start_timestamp"].as_str().and_then(parse_iso_ms);
        let first = start.unwrap_or(at).min(at);
        f.first_ms
            .entry(case.clone())
            .and_modify(|m| *m = (*m).min(first))
            .or_insert(first);
        f.activities += 1;
        f.with_start += u64::from(start.is_some());
        f.objects.insert(format!("conversation:{case}"));
        f.relations += 1;
        let rt = v["resource_type"].as_str().unwrap_or("");
        if let (Some(res), true) = (
            v["resource"].as_str(),
            matches!(rt, "queue" | "agent" | "customer"),
        ) {
            f.objects.insert(format!("{rt}:{res}"));
            f.relations += 1;
        }
        if let Some(a) = v["attributes"]["answered_user_id"].as_str() {
            f.objects.insert(format!("agent:{a}"));
            f.relations += 1;
        }
        f.cases.insert(case);
    }
    f
}

/// `mine dfg`'s table: (from, to) → count.
fn mine_edges(tsv: &str) -> Vec<(String, String, u64)> {
    let mut edges: Vec<(String, String, u64)> = tsv
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            (
                c[0].to_string(),
                c[1].to_string(),
                c[2].parse().expect("count"),
            )
        })
        .collect();
    edges.sort();
    edges
}

#[test]
#[ignore = "needs Tansu and the test venv: run `bash scripts/test.sh`"]
fn exports_read_by_pm4py_equal_the_topic_and_mine_dfg() {
    let python = python();
    let _serial = serial();
    let tansu = Tansu::start();
    let (path, t) = common::isolated_topology("mine");
    let silver = t.silver().expect("silver");
    let activities = t.process().expect("process").activities_topic.clone();
    tansu.create_topic(&silver.runtime.input_topic, 4);
    let cfg = GenConfig {
        interactions: 2_500,
        seed: 2031,
        interaction_spacing_ms: 1_000,
        late_pct: 1.0,
        late_delay_ms: 600_000,
        collect_truth: true,
        ..GenConfig::default()
    };
    let truth = common::produce(&tansu.brokers, &silver.runtime.input_topic, cfg);
    let proc = Processor::start_topology(
        &path,
        None,
        &tansu.brokers,
        "mine",
        "all",
        Duration::from_secs(8),
        &[],
    );
    let (status, log) = proc.wait(Duration::from_secs(600));
    assert!(status.success(), "{log}");
    let records = common::read_all(&tansu.brokers, &activities);
    common::check_no_pii_in(&truth, &records, "activity");
    let facts = topic_facts(&records);
    assert!(facts.cases.len() > 2_000, "{} cases", facts.cases.len());
    assert!(facts.with_start > 0, "no activity with a start time");

    // A foreign record on the topic: skipped and counted, never fatal.
    let producer: BaseProducer = common::settings(&tansu.brokers)
        .base()
        .create()
        .expect("producer");
    producer
        .send(
            BaseRecord::to(&activities)
                .key("x")
                .payload("not an activity"),
        )
        .expect("send");
    producer.flush(Duration::from_secs(10)).expect("flush");

    let dir = std::env::temp_dir().join(format!("cxstream-mine-{}", common::unique()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
    eprintln!("files in {} (kept if the test fails)", dir.display());
    let dump: Vec<Value> = records
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(&r.value).ok())
        .collect();
    std::fs::write(file("topic.json"), serde_json::to_vec(&dump).expect("json")).expect("dump");
    let b = tansu.brokers.as_str();
    let base = ["--brokers", b, "--topic", activities.as_str()];
    let run = |extra: &[&str]| {
        let mut args: Vec<&str> = extra.to_vec();
        args.extend_from_slice(&base);
        cxstream(&args)
    };
    let (xes, ocel) = (file("log.xes"), file("log.ocel.json"));
    let (_, summary) = run(&["export", "xes", "--out", &xes]);
    eprintln!("export xes: {summary}");
    assert!(
        summary.contains("skipped 1 (not an activity record)"),
        "{summary}"
    );
    assert!(!Path::new(&format!("{xes}.part")).exists());
    run(&["export", "ocel", "--out", &ocel, "--quiet"]);
    let (tsv, _) = run(&["mine", "dfg", "--out", &file("dfg.dot")]);
    let dot = std::fs::read_to_string(file("dfg.dot")).expect("dot file");
    assert!(dot.starts_with("digraph dfg {"), "{dot}");

    // What pm4py and the OCEL schema see.
    let schema = format!(
        "{}/schemas/vendor/ocel20-schema-json.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let script = format!(
        "{}/tests/interop/process_mining.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = Command::new(&python)
        .args([&script, &xes, &ocel, &schema])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "pm4py check failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).expect("pm4py facts");
    eprintln!(
        "topic: {} cases, {} activities ({} with a start); pm4py: {}",
        facts.cases.len(),
        facts.activities,
        facts.with_start,
        seen["ocel"]
    );
    let x = &seen["xes"];
    assert_eq!(x["cases"], facts.cases.len() as u64, "XES cases");
    assert_eq!(
        x["events"]["complete"], facts.activities,
        "XES complete events"
    );
    assert_eq!(x["events"]["start"], facts.with_start, "XES start events");
    let pm4py_edges: Vec<(String, String, u64)> = x["dfg"]
        .as_array()
        .expect("dfg")
        .iter()
        .map(|e| {
            (
                e[0].as_str().expect("a").to_string(),
                e[1].as_str().expect("b").to_string(),
                e[2].as_u64().expect("n"),
            )
        })
        .collect();
    let mine = mine_edges(&tsv);
    assert!(mine.len() > 10, "{tsv}");
    assert_eq!(pm4py_edges, mine, "pm4py's DFG against `mine dfg`");
    let o = &seen["ocel"];
    assert_eq!(
        o["events"], facts.activities,
        "OCEL events after pm4py's load"
    );
    assert_eq!(o["objects"], facts.objects.len() as u64, "OCEL objects");
    assert_eq!(o["relations"], facts.relations, "OCEL relationships");
    assert_eq!(o["object_types"]["conversation"], facts.cases.len() as u64);
    for kind in ["queue", "agent", "customer"] {
        assert!(o["object_types"][kind].as_u64() > Some(0), "{kind}: {o}");
    }
    assert_eq!(
        seen["schema_errors"],
        Value::Array(vec![]),
        "the OCEL export against the OCEL 2.0 schema"
    );

    // --cases and --from/--to take what they say.
    let small = file("small.xes");
    run(&["export", "xes", "--out", &small, "--cases", "10", "--quiet"]);
    let text = std::fs::read_to_string(&small).expect("small");
    assert_eq!(text.matches("<trace>").count(), 10);
    let mut firsts: Vec<i64> = facts.first_ms.values().copied().collect();
    firsts.sort_unstable();
    let (from, to) = (firsts[firsts.len() / 4], firsts[firsts.len() / 2]);
    let want = firsts.iter().filter(|t| **t >= from && **t < to).count();
    let iso = cxstream::model::format_iso_ms;
    let ranged = file("range.xes");
    run(&[
        "export",
        "xes",
        "--out",
        &ranged,
        "--quiet",
        "--from",
        &iso(from),
        "--to",
        &iso(to),
    ]);
    let text = std::fs::read_to_string(&ranged).expect("range");
    assert_eq!(text.matches("<trace>").count(), want, "cases in [from, to)");

    // Variants count every case and name the families.
    let (report, _) = run(&["mine", "variants", "--top", "5", "--quiet"]);
    assert!(
        report.starts_with(&format!("{} cases,", facts.cases.len())),
        "{report}"
    );
    for family in [
        "abandoned after IVR",
        "transferred more than once",
        "long hold",
    ] {
        assert!(report.contains(family), "{report}");
    }

    // SVG through Graphviz (scripts/test.sh installs it).
    run(&["mine", "dfg", "--out", &file("dfg.svg"), "--quiet"]);
    let svg = std::fs::read_to_string(file("dfg.svg")).expect("svg");
    assert!(svg.contains("<svg"), "not an SVG");
    let _ = std::fs::remove_dir_all(&dir);
}
