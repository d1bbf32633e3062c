//! Runs the whole in-process chain over generated events in a loop, for a
//! profiler: `cargo build --release --example chain_profile` then
//! `perf record -g target/release/examples/chain_profile [seconds]`.
//! Prints events per CPU-second of this thread.
use std::sync::Arc;
use std::time::Instant;

use cxstream::config;
use cxstream::generate::{GenConfig, Generator};
use cxstream::metrics::Metrics;
use cxstream::model::SourceRef;
use cxstream::pipeline::{Output, Pipeline, RecordIn, Role};
use cxstream::secret::MaskingKey;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    let recs: Vec<Vec<u8>> = Generator::new(GenConfig {
        interactions: 2_000,
        seed: 3,
        duplicate_pct: 0.0,
        malformed_pct: 0.0,
        batch_pct: 0.0,
        collect_truth: false,
        ..GenConfig::default()
    })
    .map(|r| r.value)
    .collect();
    let bytes: usize = recs.iter().map(Vec::len).sum();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/topologies/genesys-silver.toml"
    ))
    .expect("shipped topology");
    let plan = Arc::new(config::parse(&text, "genesys-silver.toml").expect("valid topology"));
    let key = MaskingKey::from_bytes("bench-key").expect("key");
    let p = Pipeline::new(plan, &key, Arc::new(Metrics::new()));
    let started = Instant::now();
    let cpu0 = thread_cpu_ns();
    let mut n = 0u64;
    let mut out: Vec<Output> = Vec::with_capacity(64);
    let mut round = 0i64;
    while started.elapsed().as_secs_f64() < secs {
        let mut task = p.new_task(0, 1);
        let now = Instant::now();
        for (i, v) in recs.iter().enumerate() {
            let rec = RecordIn {
                value: v,
                source: SourceRef {
                    topic: Arc::from("bronze"),
                    partition: 0,
                    offset: round * 1_000_000 + i as i64,
                },
                role: Role::Input,
                header_token: None,
                header_hops: None,
                record_timestamp_ms: None,
                ticket: i as u64,
            };
            p.ingest(&rec, &mut task, now, &mut out);
            out.clear();
        }
        p.flush(&mut task, &mut out);
        out.clear();
        n += recs.len() as u64;
        round += 1;
    }
    let cpu = (thread_cpu_ns() - cpu0) as f64 / 1e9;
    println!(
        "{} records ({} B avg), {:.0} records per CPU-second",
        n,
        bytes / recs.len(),
        n as f64 / cpu
    );
}
