//! A Tansu broker process (started through `scripts/tansu.sh`) and cxstream
//! processor processes, for tests that kill and restart them.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

/// A Tansu broker process, killed on drop.
pub struct Tansu {
    child: Option<Child>,
    pub brokers: String,
    port: u16,
    dir: PathBuf,
    storage: &'static str,
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The broker tests run one at a time: each starts a broker and a pipeline,
/// and two of them at once on a 2-core machine distort the timing they check.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Tansu {
    /// A broker keeping its data in memory.
    pub fn start() -> Tansu {
        Self::start_with("memory")
    }

    /// `storage`: `memory` or `sqlite` (survives a restart).
    pub fn start_with(storage: &'static str) -> Tansu {
        assert!(
            std::env::var_os("CXSTREAM_TANSU_BIN").is_some(),
            "Tansu is not installed for this run: use `bash scripts/test.sh`"
        );
        // Tansu binds its listener itself (it takes an address, not a
        // socket), so the port is picked free and handed over by number: if
        // something else took it meanwhile, Tansu exits at once and another
        // port is tried.
        for attempt in 1..=5 {
            let port = free_port();
            let dir =
                std::env::temp_dir().join(format!("cxstream-tansu-{}-{port}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let mut t = Tansu {
                child: None,
                brokers: format!("127.0.0.1:{port}"),
                port,
                dir,
                storage,
            };
            if t.spawn() {
                return t;
            }
            eprintln!("Tansu could not listen on {port} (attempt {attempt}); another port");
        }
        panic!("Tansu did not start on any of 5 ports: see tansu-<port>.log in the temp dir");
    }

    /// Starts the broker process; false if it exited before it listened
    /// (its port taken).
    fn spawn(&mut self) -> bool {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/tansu.sh");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(std::env::temp_dir().join(format!("tansu-{}.log", self.port)))
            .expect("log");
        let mut child = Command::new("bash")
            .arg(script)
            .arg("run")
            .arg(self.port.to_string())
            .arg(&self.dir)
            .arg(self.storage)
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start tansu");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if child.try_wait().ok().flatten().is_some() {
                return false;
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                // Still ours: not another process that answered on the port.
                std::thread::sleep(Duration::from_millis(100));
                if child.try_wait().ok().flatten().is_some() {
                    return false;
                }
                self.child = Some(child);
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "Tansu did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills the broker (SIGKILL: no clean shutdown).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the broker and starts it again on the same port and storage.
    pub fn restart(&mut self, down_for: Duration) {
        self.kill();
        std::thread::sleep(down_for);
        assert!(
            self.spawn(),
            "Tansu could not listen on {} again after its restart",
            self.port
        );
    }

    pub fn create_topic(&self, topic: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = super::settings(&self.brokers)
            .base()
            .create()
            .expect("admin");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        let res = rt
            .block_on(admin.create_topics(
                &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
            ))
            .expect("create topics");
        for r in res {
            r.expect("topic created");
        }
    }
}

/// A `cxstream run` process on the shipped topology.
pub struct Processor {
    child: Child,
    pub name: String,
    pub log: PathBuf,
}

impl Processor {
    /// Starts an instance of group `group`; it exits by itself once idle
    /// for `idle`.
    pub fn start(brokers: &str, group: &str, name: &str, idle: Duration) -> Processor {
        Self::start_with(brokers, group, name, idle, &[])
    }

    /// As [`Processor::start`], with extra `-X` client settings. Runs the
    /// shipped topology's silver stage only.
    pub fn start_with(
        brokers: &str,
        group: &str,
        name: &str,
        idle: Duration,
        extra: &[(&str, &str)],
    ) -> Processor {
        let shipped = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/topologies/genesys-silver.toml"
        );
        Self::start_topology(
            std::path::Path::new(shipped),
            Some("silver"),
            brokers,
            group,
            name,
            idle,
            extra,
        )
    }

    /// As [`Processor::start_with`], on the topology file `topology`: its
    /// stage `stage`, or every stage.
    #[allow(clippy::too_many_arguments)]
    pub fn start_topology(
        topology: &std::path::Path,
        stage: Option<&str>,
        brokers: &str,
        group: &str,
        name: &str,
        idle: Duration,
        extra: &[(&str, &str)],
    ) -> Processor {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cxstream"));
        cmd.arg("run")
            .arg("--topology")
            .arg(topology)
            .arg("--brokers")
            .arg(brokers)
            .arg("--group-id")
            .arg(group)
            .arg("--metrics-addr")
            .arg("127.0.0.1:0")
            .arg("--exit-when-idle")
            .arg(format!("{}ms", idle.as_millis()));
        if let Some(s) = stage {
            cmd.arg("--stage").arg(s);
        }
        for (k, v) in super::test_overrides() {
            cmd.arg("-X").arg(format!("{k}={v}"));
        }
        for (k, v) in extra {
            cmd.arg("-X").arg(format!("{k}={v}"));
        }
        cmd.env("CXSTREAM_MASKING_KEY", "test-masking-key");
        Self::spawn(cmd, name)
    }

    /// Starts `cmd` (any process that logs as cxstream does) as instance
    /// `name`, its stdout and stderr in a log file of its own.
    pub fn spawn(mut cmd: Command, name: &str) -> Processor {
        let log = std::env::temp_dir().join(format!(
            "cxstream-proc-{}-{name}-{}.log",
            std::process::id(),
            super::unique()
        ));
        let file = std::fs::File::create(&log).expect("log file");
        let child = cmd
            .env("CXSTREAM_LOG", "info")
            .stdout(Stdio::from(file.try_clone().expect("log")))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("start the processor");
        Processor {
            child,
            name: name.to_string(),
            log,
        }
    }

    /// Waits until the instance has logged `needle` `count` times.
    pub fn wait_for_log(&self, needle: &str, count: usize, limit: Duration) {
        self.poll_until(limit, || {
            (self.log_text().matches(needle).count() >= count)
                .then_some(())
                .ok_or_else(|| format!("did not log {needle:?}"))
        });
    }

    /// Polls `ready` every 100 ms until it returns `Ok`; fails after `limit`
    /// with its last complaint and the tail of the instance's log.
    fn poll_until(&self, limit: Duration, mut ready: impl FnMut() -> Result<(), String>) {
        let deadline = Instant::now() + limit;
        while let Err(why) = ready() {
            assert!(
                Instant::now() < deadline,
                "[{}] {why} within {limit:?}:\n{}",
                self.name,
                tail(&self.log_text(), 20)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// kill -9.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("[{}] killed (-9)", self.name);
    }

    /// SIGTERM, then waits (at most a minute) for the exit.
    pub fn terminate(self) -> (ExitStatus, String) {
        self.signal("TERM", Duration::from_secs(60))
    }

    /// Sends `signal` (`TERM`, `INT`), then waits at most `limit` for the
    /// exit (a hang fails the test instead of eating CI's time).
    pub fn signal(self, signal: &str, limit: Duration) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(&pid)
            .status();
        eprintln!("[{}] SIG{signal}", self.name);
        self.wait(limit)
    }

    /// The timestamp (as logged, RFC 3339 UTC) of the first log line with
    /// `needle`.
    pub fn first_log_time(&self, needle: &str) -> Option<String> {
        let log = self.log_text();
        let line = log.lines().find(|l| l.contains(needle))?;
        Some(line.split_whitespace().next()?.to_string())
    }

    /// How many times the instance has logged `needle` so far.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log_text().matches(needle).count()
    }

    /// The instance's live `/metrics`, once it serves them.
    pub fn scrape_metrics(&self) -> Option<String> {
        self.metrics_addr().and_then(|a| scrape(&a))
    }

    /// Waits (at most `limit`) for the instance to exit by itself.
    pub fn wait(mut self, limit: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return (status, self.log_text());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "[{}] did not finish within {limit:?}; log:\n{}",
                    self.name,
                    tail(&self.log_text(), 40)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The instance's `/metrics` address, once it has logged it.
    pub fn metrics_addr(&self) -> Option<String> {
        let log = self.log_text();
        let line = log.lines().find(|l| l.contains("Serving /metrics"))?;
        let at = line.find("addr=")? + "addr=".len();
        Some(line[at..].split_whitespace().next()?.to_string())
    }

    /// Waits until the instance's live `/metrics` shows `series` (a metric
    /// name with its labels, as exposed) at `min` or more.
    pub fn wait_for_metric(&self, series: &str, min: f64, limit: Duration) {
        self.poll_until(limit, || {
            let value = self
                .metrics_addr()
                .and_then(|a| scrape(&a))
                .and_then(|text| metric(&text, series));
            if value.is_some_and(|v| v >= min) {
                Ok(())
            } else {
                Err(format!("{series} did not reach {min} (last {value:?})"))
            }
        });
    }

    /// Waits until the instance has written its first silver record.
    pub fn wait_for_first_output(&self, limit: Duration) {
        self.wait_for_metric("cxstream_events_out_total{output=\"silver\"}", 1.0, limit);
    }
}

/// `GET /metrics` from `addr` (plain HTTP/1.0), the body.
pub fn scrape(addr: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let body = text.split_once("\r\n\r\n")?.1;
    Some(body.to_string())
}

/// The value of `series` (`name` or `name{label="value",…}`) in a
/// Prometheus text exposition: the sum over every exposed series of that
/// name whose labels include the asked ones, so that a series asked
/// without the `stage` label covers every stage. `None` if none matches.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    let (name, wanted) = split_series(series);
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((head, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (line_name, labels) = split_series(head);
        if line_name != name || !wanted.iter().all(|w| labels.contains(w)) {
            continue;
        }
        if let Ok(v) = value.trim().parse::<f64>() {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

/// `name{a="x",b="y"}` → (`name`, [`a="x"`, `b="y"`]).
fn split_series(series: &str) -> (&str, Vec<&str>) {
    match series.split_once('{') {
        None => (series, Vec::new()),
        Some((name, rest)) => {
            let inner = rest.strip_suffix('}').unwrap_or(rest);
            let labels = inner
                .split_inclusive("\",")
                .map(|l| l.strip_suffix(',').unwrap_or(l))
                .filter(|l| !l.is_empty())
                .collect();
            (name, labels)
        }
    }
}

/// A field of an instance's `Stopped.` summary line (`events_in`,
/// `silver`, …).
pub fn stopped_field(log: &str, field: &str) -> Option<String> {
    log_field(log, "Stopped.", field)
}

/// A field of the last log line with `message`.
pub fn log_field(log: &str, message: &str, field: &str) -> Option<String> {
    let line = log.lines().rev().find(|l| l.contains(message))?;
    let key = format!("{field}=");
    let at = line.find(&key)? + key.len();
    Some(line[at..].split_whitespace().next()?.to_string())
}

impl Drop for Processor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Now, in the processor logs' timestamp format (RFC 3339 UTC with
/// microseconds), so that it compares with their timestamps as text.
pub fn log_timestamp_now() -> String {
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(&f)
        .expect("timestamp")
}

/// The last `n` lines of a log.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Asserts the group committed every input partition up to its end
/// (`ends`, from [`super::check_outputs`]): all partitions were processed.
pub fn check_committed_to_end(brokers: &str, group: &str, topic: &str, ends: &[i64]) {
    let consumer: BaseConsumer = super::settings(brokers)
        .with_defaults(&[("group.id", group), ("enable.auto.commit", "false")])
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..ends.len() as i32 {
        tpl.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    for (p, end) in ends.iter().enumerate() {
        let c = committed
            .find_partition(topic, p as i32)
            .map(|e| e.offset())
            .unwrap_or(Offset::Invalid);
        let want = if *end == 0 {
            Offset::Invalid
        } else {
            Offset::Offset(*end)
        };
        assert!(
            c == want || c == Offset::Offset(*end),
            "input partition {p}: committed {c:?}, end {end}"
        );
    }
}

/// Waits (at most `limit`) until group `group` has committed every input
/// partition up to its end (the broker's high watermark), then every
/// partition of `internal` (the repartition topic) up to where it ended at
/// that moment (markers keep being appended to it afterwards), each for two
/// seconds. For tests whose instances run until told to stop: every
/// partition is then processed, whoever owns it. (Check exactly with
/// [`check_committed_to_end`] afterwards.)
pub fn wait_committed_to_end(
    brokers: &str,
    group: &str,
    input: &str,
    internal: &str,
    partitions: i32,
    limit: Duration,
) {
    let consumer: BaseConsumer = super::settings(brokers)
        .with_defaults(&[("group.id", group), ("enable.auto.commit", "false")])
        .create()
        .expect("consumer");
    let deadline = Instant::now() + limit;
    let mut input_ends = LogEnds::new(brokers, input, partitions);
    let mut internal_log = LogEnds::new(brokers, internal, partitions);
    let lagging = |topic: &str, ends: &[i64]| -> Vec<String> {
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(topic, p);
        }
        let committed = consumer.committed_offsets(tpl, Duration::from_secs(10));
        (0..partitions)
            .filter_map(|p| {
                let c = match committed
                    .as_ref()
                    .ok()
                    .and_then(|c| c.find_partition(topic, p))
                    .map(|e| e.offset())
                {
                    Some(Offset::Offset(o)) => o,
                    _ => 0,
                };
                let end = ends[p as usize];
                (c < end).then(|| format!("{topic}[{p}] {c}/{end}"))
            })
            .collect()
    };
    let mut settled_since: Option<Instant> = None;
    let mut internal_ends: Option<Vec<i64>> = None;
    loop {
        let behind = match &internal_ends {
            None => {
                let behind = lagging(input, &input_ends.refresh());
                if behind.is_empty() {
                    internal_ends = Some(internal_log.refresh());
                    continue;
                }
                behind
            }
            Some(e) => lagging(internal, e),
        };
        if behind.is_empty() {
            let since = *settled_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_secs(2) {
                return;
            }
        } else {
            settled_since = None;
        }
        assert!(
            Instant::now() < deadline,
            "group {group} did not commit to the end within {limit:?}: {}",
            behind.join(", ")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Follows every partition of a topic from its beginning and knows where
/// each one ends (the offset after the last record read). Tansu 0.6.0
/// answers ListOffsets, which `fetch_watermarks` uses, with the last
/// batch's base offset + 1: too low whenever that batch holds more than one
/// record, so the ends are read rather than asked for.
pub struct LogEnds {
    consumer: BaseConsumer,
    ends: Vec<i64>,
    /// The partition reported its end and nothing arrived since.
    at_end: Vec<bool>,
}

impl LogEnds {
    pub fn new(brokers: &str, topic: &str, partitions: i32) -> LogEnds {
        let consumer: BaseConsumer = super::settings(brokers)
            .with_defaults(&[
                ("group.id", "cxstream-test-ends"),
                ("enable.auto.commit", "false"),
                ("fetch.wait.max.ms", "10"),
                ("enable.partition.eof", "true"),
            ])
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .expect("tpl");
        }
        consumer.assign(&tpl).expect("assign");
        LogEnds {
            consumer,
            ends: vec![0; partitions as usize],
            at_end: vec![false; partitions as usize],
        }
    }

    /// Reads until every partition reported its end (again, if records
    /// arrived since) and returns each partition's end.
    pub fn refresh(&mut self) -> Vec<i64> {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !self.at_end.iter().all(|e| *e) {
            assert!(Instant::now() < deadline, "following a topic: no end");
            match self.consumer.poll(Duration::from_millis(50)) {
                Some(Ok(m)) => {
                    let p = m.partition() as usize;
                    self.ends[p] = self.ends[p].max(m.offset() + 1);
                    self.at_end[p] = false;
                }
                Some(Err(KafkaError::PartitionEOF(p))) => self.at_end[p as usize] = true,
                Some(Err(e)) => panic!("following a topic: {e}"),
                None => {}
            }
        }
        // Anything appended meanwhile: take it in without waiting.
        while let Some(r) = self.consumer.poll(Duration::ZERO) {
            match r {
                Ok(m) => {
                    let p = m.partition() as usize;
                    self.ends[p] = self.ends[p].max(m.offset() + 1);
                    self.at_end[p] = false;
                }
                Err(KafkaError::PartitionEOF(p)) => self.at_end[p as usize] = true,
                Err(e) => panic!("following a topic: {e}"),
            }
        }
        self.ends.clone()
    }
}
