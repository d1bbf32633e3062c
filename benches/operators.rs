//! In-process operator benchmarks on generated Genesys events (~1 KB each).
//!
//! `cargo bench --bench operators` — each benchmark reports events/s on one core.

use std::sync::Arc;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use cxstream::config;
use cxstream::generate::{GenConfig, Generator};
use cxstream::metrics::Metrics;
use cxstream::model::SourceRef;
use cxstream::operators::decode::{decode_record, DecodeInput, Decoded};
use cxstream::operators::mask::{MaskPolicies, Masker};
use cxstream::pipeline::{Output, Pipeline, RecordIn, Role};
use cxstream::secret::MaskingKey;

fn records(n: usize) -> Vec<Vec<u8>> {
    Generator::new(GenConfig {
        interactions: n / 10,
        seed: 3,
        duplicate_pct: 0.0,
        malformed_pct: 0.0,
        batch_pct: 0.0,
        collect_truth: false,
        ..GenConfig::default()
    })
    .map(|r| r.value)
    .collect()
}

fn source() -> SourceRef {
    SourceRef {
        topic: Arc::from("bronze"),
        partition: 0,
        offset: 0,
    }
}

fn bench(c: &mut Criterion) {
    let recs = records(20_000);
    let n = recs.len() as u64;
    let mut g = c.benchmark_group("operators");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n));

    g.bench_function("decode+upcast", |b| {
        let mut out = Vec::with_capacity(4);
        b.iter(|| {
            for (i, v) in recs.iter().enumerate() {
                out.clear();
                decode_record(
                    &DecodeInput {
                        value: v,
                        source: source(),
                        header_lineage_token: None,
                        record_timestamp_ms: None,
                        ticket: i as u64,
                    },
                    &mut out,
                );
            }
        })
    });

    let mut events = Vec::new();
    for v in &recs {
        let mut out = Vec::new();
        decode_record(
            &DecodeInput {
                value: v,
                source: source(),
                header_lineage_token: None,
                record_timestamp_ms: None,
                ticket: 0,
            },
            &mut out,
        );
        for d in out {
            if let Decoded::Event(e) = d {
                events.push(*e);
            }
        }
    }
    let masker = Masker::new(b"bench-key", MaskPolicies::default());
    g.bench_function("mask", |b| {
        b.iter_batched(
            || events.clone(),
            |mut evs| {
                for e in &mut evs {
                    masker.mask_event(e);
                }
                evs
            },
            BatchSize::LargeInput,
        )
    });

    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/topologies/genesys-silver.toml"
    ))
    .expect("shipped topology");
    let plan = Arc::new(config::parse(&text, "genesys-silver.toml").expect("valid topology"));
    let key = MaskingKey::from_bytes("bench-key").expect("key");
    g.bench_function(
        "whole chain (decode → upcast → dedup → reorder → mask → lineage → encode)",
        |b| {
            b.iter_batched(
                || {
                    let p = Pipeline::new(plan.clone(), &key, Arc::new(Metrics::new()));
                    let t = p.new_task(0, 1);
                    (p, t)
                },
                |(p, mut task)| {
                    let mut out: Vec<Output> = Vec::with_capacity(64);
                    let now = Instant::now();
                    for (i, v) in recs.iter().enumerate() {
                        let rec = RecordIn {
                            value: v,
                            source: SourceRef {
                                offset: i as i64,
                                ..source()
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
                    out.len()
                },
                BatchSize::PerIteration,
            )
        },
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
