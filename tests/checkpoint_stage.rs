//! A second stage kind, in the test suite only, to prove that the runtime is
//! generic over stages: a running count per key. Its state (the counts) is
//! not implied by its outputs, so it is checkpointed
//! ([`StateModel::Checkpointed`]): the runtime writes the table changes and
//! a checkpoint with the input offsets they correspond to, and commits
//! those offsets only after it.
//!
//! Input records are JSON `{"k": "<key>"}` (count one) or
//! `{"k": "<key>", "reset": true}` (forget the key: a tombstone in the
//! table). A record that arrives on another partition than its key's home
//! is re-keyed through the runtime's repartition topic. At each checkpoint
//! the stage writes the current count of every key that changed to its
//! `counts` port (an upsert: the latest value of a key wins). Anything else
//! is a dead letter.
//!
//! The test binary has no libtest harness (`harness = false`): the kill -9
//! test runs this same binary as a child process (`checkpoint_stage child
//! <brokers> <prefix> <group>`) and kills it.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use common::tansu::{tail, Processor, Tansu};
use cxstream::config::{Delivery, RuntimePlan};
use cxstream::metrics::Metrics;
use cxstream::partition::partition_for;
use cxstream::runtime::{RunOptions, StopReason};
use cxstream::stage::{
    DeadLetterOut, Emit, ForwardOut, Output, Port, PortId, RecordIn, Role, Stage, StageTask,
    StateModel, Watermarks, NO_TICKET,
};
use cxstream::state::tables::{Change, Tables};

const TABLE: &str = "counts";
const PARTITIONS: i32 = 4;

/// The count stage.
struct Count {
    output: String,
    /// Keys each restored task found in its table (what a restore loaded).
    restored: Arc<Mutex<BTreeSet<String>>>,
}

struct CountTask {
    partition: i32,
    partitions: i32,
    counts: HashMap<String, u64>,
    /// Keys changed since the last checkpoint.
    dirty: BTreeSet<String>,
    changes: Vec<Change>,
    restored: Arc<Mutex<BTreeSet<String>>>,
    held_back: bool,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CountIn {
    k: String,
    #[serde(default)]
    reset: bool,
}

impl Stage for Count {
    type Task = CountTask;

    fn state_model(&self) -> StateModel {
        StateModel::Checkpointed
    }

    fn checkpoint(&self, task: &mut CountTask, out: &mut Vec<Output>) {
        for k in std::mem::take(&mut task.dirty) {
            let count = task.counts.get(&k).copied().unwrap_or(0);
            let value = serde_json::json!({ "k": k, "count": count }).to_string();
            out.push(Output::Emit(Emit {
                port: PortId(0),
                key: k,
                value: value.into_bytes(),
                lineage_token: String::new(),
                tag: None,
                ticket: NO_TICKET,
                unit: 0,
                state: None,
            }));
        }
    }

    fn ports(&self) -> Vec<Port> {
        vec![Port {
            name: "counts",
            topic: self.output.clone(),
            tag_counter: None,
        }]
    }

    fn new_task(&self, partition: i32, partitions: i32) -> CountTask {
        CountTask {
            partition,
            partitions,
            counts: HashMap::new(),
            dirty: BTreeSet::new(),
            changes: Vec::new(),
            restored: self.restored.clone(),
            held_back: false,
        }
    }

    fn ingest(
        &self,
        task: &mut CountTask,
        rec: &RecordIn<'_>,
        _now: Instant,
        out: &mut Vec<Output>,
    ) -> usize {
        let Ok(m) = serde_json::from_slice::<CountIn>(rec.value) else {
            out.push(Output::DeadLetter(DeadLetterOut {
                class: "bad_count_record",
                message: "not a count record".into(),
                stage: "count",
                range: 0..rec.value.len(),
                lineage_token: None,
                ticket: rec.ticket,
            }));
            return 1;
        };
        let home = partition_for(m.k.as_bytes(), task.partitions);
        if home != task.partition && rec.role == Role::Input {
            out.push(Output::Forward(ForwardOut {
                home,
                key: m.k,
                range: 0..rec.value.len(),
                payload: None,
                replaces: false,
                lineage_token: String::new(),
                hops: Vec::new(),
                ticket: rec.ticket,
            }));
            return 1;
        }
        if m.reset {
            task.counts.remove(&m.k);
            task.changes.push(Change::delete(TABLE, &m.k));
        } else {
            let n = task.counts.entry(m.k.clone()).or_insert(0);
            *n += 1;
            task.changes
                .push(Change::put(TABLE, &m.k, n.to_string().into_bytes()));
        }
        task.dirty.insert(m.k);
        0
    }

    fn on_marker(
        &self,
        _task: &mut CountTask,
        _from: i32,
        _event_time_ms: i64,
        _idle: bool,
        _now: Instant,
        _out: &mut Vec<Output>,
    ) {
    }

    fn tick(&self, _task: &mut CountTask, _now: Instant, _out: &mut Vec<Output>) {}

    fn flush(&self, _task: &mut CountTask, _out: &mut Vec<Output>) {}

    fn watermarks(&self) -> Watermarks {
        Watermarks {
            step_ms: i64::MAX,
            idle: Duration::from_secs(3600),
            hold_limit: usize::MAX,
        }
    }

    fn state_ttl(&self) -> Duration {
        Duration::from_secs(7 * 24 * 3600)
    }

    fn update_gauges<'a>(&self, _tasks: impl Iterator<Item = &'a CountTask>) {}
}

impl StageTask for CountTask {
    fn restore_tables(&mut self, tables: Tables) {
        let mut restored = self.restored.lock().unwrap_or_else(|e| e.into_inner());
        for (k, v) in tables.table(TABLE) {
            let n = std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("count of {k} is not a number"));
            self.counts.insert(k.to_string(), n);
            restored.insert(k.to_string());
        }
    }

    fn take_changes(&mut self, out: &mut Vec<Change>) {
        out.append(&mut self.changes);
    }

    fn progress(&self, _now: Instant, _idle: Duration) -> Option<(i64, bool)> {
        None
    }

    fn runs_ahead(&self, _limit: usize) -> bool {
        false
    }

    fn held_back(&self) -> bool {
        self.held_back
    }

    fn set_held_back(&mut self, held: bool) {
        self.held_back = held;
    }

    fn mark_end_of_partition(&mut self) {}

    fn buffered(&self) -> usize {
        0
    }
}

/// The topics of one count deployment, named after `prefix`.
struct Topics {
    input: String,
    output: String,
    dead_letter: String,
}

impl Topics {
    fn new(prefix: &str) -> Topics {
        Topics {
            input: format!("{prefix}.in"),
            output: format!("{prefix}.counts"),
            dead_letter: format!("{prefix}.dlq"),
        }
    }
}

fn plan(prefix: &str) -> RuntimePlan {
    let t = Topics::new(prefix);
    RuntimePlan {
        topology: "count-test".into(),
        stage: "count".into(),
        input_topic: t.input,
        co_inputs: Vec::new(),
        dead_letter_topic: t.dead_letter,
        repartition_topic: format!("{prefix}.repartition"),
        changelog_topic: format!("{prefix}.changelog"),
        create_topics: true,
        partitions: None,
        replication_factor: 1,
        commit_interval: Duration::from_millis(500),
        max_in_flight: 10_000,
        delivery: Delivery::Replay,
        transactional_id: None,
        kafka: BTreeMap::new(),
        dead_letter_prefix: 1024,
    }
}

/// Runs the count stage on `brokers` until it has been idle for `idle`;
/// returns the keys its restores loaded.
fn run_count(brokers: &str, prefix: &str, group: &str, idle: Duration) -> BTreeSet<String> {
    let restored = Arc::new(Mutex::new(BTreeSet::new()));
    let stage = Count {
        output: Topics::new(prefix).output,
        restored: restored.clone(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let opts = RunOptions {
        brokers: brokers.to_string(),
        group_id: group.to_string(),
        overrides: common::test_overrides(),
        metrics_addr: None,
        health: None,
        exit_when_idle: Some(idle),
        instance_id: None,
    };
    let outcome = rt
        .block_on(cxstream::runtime::run(
            Arc::new(plan(prefix)),
            opts,
            stage,
            Arc::new(Metrics::for_stage("count")),
            Arc::new(AtomicBool::new(false)),
            None,
        ))
        .expect("count run");
    assert!(
        matches!(outcome.stop, StopReason::Idle),
        "stopped by {:?}",
        outcome.stop
    );
    let keys = restored.lock().unwrap_or_else(|e| e.into_inner()).clone();
    keys
}

/// One input record: (partition, value).
type Input = (i32, Vec<u8>);

/// What an uninterrupted run ends with.
#[derive(Debug, Default)]
struct Truth {
    counts: BTreeMap<String, u64>,
    /// Malformed records.
    malformed: usize,
}

/// Where key `k` (the `i`th key) is written: its home partition for even
/// `i`, the next partition for odd `i` (re-keyed through the repartition
/// topic). All records of a key go to one partition, so their order, and
/// the effect of a reset, is fixed.
fn source_partition(k: &str, i: usize) -> i32 {
    (partition_for(k.as_bytes(), PARTITIONS) + (i % 2) as i32) % PARTITIONS
}

/// `n` records over `keys` keys: counts, a reset now and then, and a
/// malformed record now and then.
fn input(n: usize, keys: usize, seed: u64) -> (Vec<Input>, Truth) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut truth = Truth::default();
    let mut out = Vec::with_capacity(n);
    for j in 0..n {
        if rng.gen_ratio(1, 150) {
            let value = format!("{{\"k\": \"broken-{j}\"").into_bytes();
            out.push((rng.gen_range(0..PARTITIONS), value));
            truth.malformed += 1;
            continue;
        }
        let i = rng.gen_range(0..keys);
        let k = format!("key-{i}");
        let p = source_partition(&k, i);
        let reset = rng.gen_ratio(1, 40);
        let value = if reset {
            truth.counts.insert(k.clone(), 0);
            serde_json::json!({ "k": k, "reset": true })
        } else {
            *truth.counts.entry(k.clone()).or_insert(0) += 1;
            serde_json::json!({ "k": k })
        };
        out.push((p, value.to_string().into_bytes()));
    }
    (out, truth)
}

/// Writes `records` to `topic` in order, `rate` records/s (0: at once).
fn produce(brokers: &str, topic: &str, records: &[Input], rate: f64) {
    let producer: BaseProducer =
        cxstream::runtime::client::producer_config(&common::settings(brokers))
            .create()
            .expect("producer");
    let started = Instant::now();
    for (i, (p, v)) in records.iter().enumerate() {
        if rate > 0.0 {
            let due = started + Duration::from_secs_f64(i as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                producer.poll(Duration::ZERO);
                std::thread::sleep(wait);
            }
        }
        let mut r: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).partition(*p).payload(v);
        loop {
            match producer.send(r) {
                Ok(()) => break,
                Err((_, back)) => {
                    r = back;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60)).expect("flush");
}

/// The last count written per key.
fn final_counts(brokers: &str, topic: &str) -> BTreeMap<String, u64> {
    let mut recs = common::read_all(brokers, topic);
    recs.sort_by_key(|r| (r.partition, r.offset));
    let mut last = BTreeMap::new();
    for r in recs {
        let v: serde_json::Value = serde_json::from_slice(&r.value).expect("count JSON");
        let k = v["k"].as_str().expect("k").to_string();
        assert_eq!(r.key.as_deref(), Some(k.as_bytes()), "keyed by its key");
        last.insert(k, v["count"].as_u64().expect("count"));
    }
    last
}

/// Every malformed record is in the dead-letter topic once.
fn check_dead_letters(brokers: &str, t: &Topics, truth: &Truth) {
    let dls = common::read_all(brokers, &t.dead_letter);
    let mut positions = BTreeSet::new();
    for d in &dls {
        let h = |k: &str| String::from_utf8_lossy(&d.headers[k]).to_string();
        assert_eq!(h("cx.error.class"), "bad_count_record");
        assert!(
            positions.insert((h("cx.source.partition"), h("cx.source.offset"))),
            "dead-lettered twice: {}",
            String::from_utf8_lossy(&d.value)
        );
    }
    assert_eq!(
        dls.len(),
        truth.malformed,
        "one dead letter per malformed record"
    );
}

/// Every record forwarded through the repartition topic is there once
/// (identified by its `cx.src` header: input partition, offset, unit).
fn check_forwarded_once(brokers: &str, prefix: &str) {
    let recs = common::read_all(brokers, &format!("{prefix}.repartition"));
    let mut seen = BTreeMap::new();
    let mut twice = Vec::new();
    for r in &recs {
        let Some(src) = r.headers.get("cx.src") else {
            continue; // a watermark marker
        };
        let src = String::from_utf8_lossy(src).to_string();
        if let Some(first) = seen.insert(src.clone(), (r.partition, r.offset)) {
            twice.push(format!(
                "{src} at {first:?} and {:?}",
                (r.partition, r.offset)
            ));
        }
    }
    assert!(
        twice.is_empty(),
        "{} of {} forwards written twice, e.g. {:?}",
        twice.len(),
        seen.len(),
        &twice[..twice.len().min(5)]
    );
}

fn compare(got: &BTreeMap<String, u64>, truth: &Truth) {
    let wrong: Vec<_> = truth
        .counts
        .iter()
        .filter(|(k, n)| got.get(*k) != Some(n))
        .map(|(k, n)| format!("{k}: {:?} instead of {n}", got.get(k)))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} keys wrong, e.g. {:?}",
        wrong.len(),
        truth.counts.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert_eq!(got.len(), truth.counts.len(), "no key the input lacks");
}

/// On the mock cluster: two runs one after the other. The second restores
/// the first's checkpoint and goes on counting; a key reset in the first
/// run (a tombstone in its table) is gone from the restored table.
fn restart_restores_counts_and_a_tombstone_removes_its_key() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let brokers = cluster.bootstrap_servers();
    let prefix = "mock";
    let t = Topics::new(prefix);
    // The mock cluster does not create topics through the admin API.
    for topic in [
        &t.input,
        &t.output,
        &t.dead_letter,
        &format!("{prefix}.repartition"),
        &format!("{prefix}.changelog"),
    ] {
        cluster.create_topic(topic, PARTITIONS, 1).expect("topic");
    }
    let rec = |k: &str, reset: bool| -> Input {
        let i: usize = k.trim_start_matches("key-").parse().expect("key index");
        let v = if reset {
            serde_json::json!({ "k": k, "reset": true })
        } else {
            serde_json::json!({ "k": k })
        };
        (source_partition(k, i), v.to_string().into_bytes())
    };
    // key-1 is counted on another partition than its home (forwarded),
    // key-2 on its home.
    let mut first: Vec<Input> = Vec::new();
    for _ in 0..5 {
        first.push(rec("key-1", false));
        first.push(rec("key-2", false));
        first.push(rec("key-3", false));
    }
    first.push(rec("key-1", true));
    first.push((0, b"not json".to_vec()));
    produce(&brokers, &t.input, &first, 0.0);
    let idle = Duration::from_secs(2);
    let restored = run_count(&brokers, prefix, "mock", idle);
    assert!(restored.is_empty(), "nothing to restore: {restored:?}");
    let counts = final_counts(&brokers, &t.output);
    assert_eq!(counts.get("key-1"), Some(&0), "{counts:?}");
    assert_eq!(counts.get("key-2"), Some(&5), "{counts:?}");

    // The reset wrote a tombstone: a record without a value.
    let changelog = common::read_all(&brokers, &format!("{prefix}.changelog"));
    let last_of_key_1 = changelog
        .iter()
        .rfind(|r| r.key.as_deref() == Some(b"counts/key-1".as_slice()))
        .expect("key-1 in the changelog");
    assert!(last_of_key_1.value.is_empty(), "a tombstone");
    assert_eq!(
        last_of_key_1
            .headers
            .get("cx.state.format")
            .map(Vec::as_slice),
        Some(b"2".as_slice())
    );

    let second = vec![rec("key-1", false), rec("key-2", false)];
    produce(&brokers, &t.input, &second, 0.0);
    let restored = run_count(&brokers, prefix, "mock", idle);
    assert!(restored.contains("key-2"), "{restored:?}");
    assert!(restored.contains("key-3"), "{restored:?}");
    assert!(!restored.contains("key-1"), "the tombstone removed key-1");
    let counts = final_counts(&brokers, &t.output);
    assert_eq!(
        counts.get("key-1"),
        Some(&1),
        "counted afresh after its reset"
    );
    assert_eq!(
        counts.get("key-2"),
        Some(&6),
        "counting went on from the checkpoint"
    );
    assert_eq!(counts.get("key-3"), Some(&5));
    let dls = common::read_all(&brokers, &t.dead_letter);
    assert_eq!(dls.len(), 1, "the malformed record, once");
}

/// On Tansu: the count stage is killed -9 five times while records arrive;
/// each replacement restores the last checkpoint. Its final counts equal
/// an uninterrupted count of the input, and every malformed record is
/// dead-lettered once.
fn kill_9_five_times_and_the_counts_are_exact() {
    let _serial = common::tansu::serial();
    let tansu = Tansu::start();
    let prefix = "crash";
    let t = Topics::new(prefix);
    tansu.create_topic(&t.input, PARTITIONS);
    let (records, truth) = input(50_000, 2_000, 77);
    let brokers = tansu.brokers.clone();
    let input_topic = t.input.clone();
    let producer = std::thread::spawn(move || produce(&brokers, &input_topic, &records, 800.0));
    let group = "crash";
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let started = Instant::now();
    let spawn = |name: &str| {
        let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
        cmd.arg("child").arg(&tansu.brokers).arg(prefix).arg(group);
        Processor::spawn(cmd, name)
    };
    let mut proc = spawn("count-0");
    for i in 1..=5 {
        proc.wait_for_log(
            "State restored.",
            PARTITIONS as usize,
            Duration::from_secs(120),
        );
        std::thread::sleep(Duration::from_millis(rng.gen_range(1_000..5_000)));
        eprintln!("kill #{i} at {:.1?}", started.elapsed());
        proc.kill9();
        // As in the recovery tests: the dead member's session (6 s) and a
        // heartbeat pass before the replacement joins.
        std::thread::sleep(Duration::from_secs(8));
        proc = spawn(&format!("count-{i}"));
    }
    producer.join().expect("producer");
    eprintln!("producer done at {:.1?}", started.elapsed());
    let (status, log) = proc.wait(Duration::from_secs(300));
    assert!(
        status.success(),
        "last instance failed:\n{}",
        tail(&log, 30)
    );
    assert!(log.contains("State restored."), "{}", tail(&log, 30));
    eprintln!("done at {:.1?}", started.elapsed());
    check_forwarded_once(&tansu.brokers, prefix);
    compare(&final_counts(&tansu.brokers, &t.output), &truth);
    check_dead_letters(&tansu.brokers, &t, &truth);
}

/// The child process of the kill test: one count instance, until idle.
fn child(args: &[String]) {
    cxstream::logging::init_tracing();
    let [brokers, prefix, group] = args else {
        panic!("child <brokers> <prefix> <group>");
    };
    run_count(brokers, prefix, group, Duration::from_secs(10));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        child(&args[2..]);
        return;
    }
    // As libtest: a name filter, and the broker test only with
    // `--ignored` or `--include-ignored` (scripts/test.sh passes it).
    let filter = args.iter().skip(1).find(|a| !a.starts_with('-'));
    let with_broker = args
        .iter()
        .any(|a| a == "--ignored" || a == "--include-ignored");
    let tests: [(&str, fn(), bool); 2] = [
        (
            "restart_restores_counts_and_a_tombstone_removes_its_key",
            restart_restores_counts_and_a_tombstone_removes_its_key,
            false,
        ),
        (
            "kill_9_five_times_and_the_counts_are_exact",
            kill_9_five_times_and_the_counts_are_exact,
            true,
        ),
    ];
    let mut failed = 0;
    for (name, test, needs_tansu) in tests {
        if filter.is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        if needs_tansu && !with_broker {
            eprintln!("test {name} ... ignored (needs Tansu: run `bash scripts/test.sh`)");
            continue;
        }
        eprintln!("test {name} ...");
        let started = Instant::now();
        match std::panic::catch_unwind(test) {
            Ok(()) => eprintln!("test {name} ... ok ({:.1?})", started.elapsed()),
            Err(_) => {
                eprintln!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        std::process::exit(1);
    }
}
