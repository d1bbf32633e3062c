//! In-process operator benchmarks on generated Genesys events (~1 KB each).
//!
//! `cargo bench --bench operators` — each benchmark reports events/s on one core
//! (criterion's "thrpt" line, in elements = events per second).
//!
//! Groups:
//! * `operators`: decode+upcast, dedup, reorder, mask, lineage+encode, each
//!   on its own over the same generated events, then the whole chain through
//!   `Pipeline::ingest` on one `Task`.
//! * `dedup_keys`: the cost of one new event's dedup check (two lookups, two
//!   inserts, amortised evictions) when the cache already holds 10 thousand
//!   vs 10 million fingerprints.
//! * `per_call`: single calls on one value: decoding one `acd.end` record
//!   (the golden fixture), the masking token (with plain SHA-256 and a fresh
//!   HMAC per value as baselines), address normalization, `mask_event` on
//!   one decoded `acd.end` (with the clone it needs, and the clone alone) and
//!   `scrub_text` on a sentence without and with PII. These were `#[ignore]`d
//!   timing loops in the unit tests.
//!
//! Time is **CPU time of the benchmarking thread** (`/proc/thread-self/schedstat`,
//! nanoseconds), not wall time, so "events/s" is events per CPU-second of one
//! core and other load on the machine does not shrink it (it can still cost
//! cache). Set `CXSTREAM_BENCH_WALL=1` for criterion's wall clock instead.
//!
//! `cargo bench --bench operators -- --test` runs every benchmark once (CI
//! smoke); in that mode the large dedup cache holds 100 thousand keys instead
//! of 10 million so it finishes in seconds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BatchSize, Criterion, Throughput};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::hint::black_box;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use cxstream::config;
use cxstream::generate::{GenConfig, Generator};
use cxstream::metrics::Metrics;
use cxstream::model::SourceRef;
use cxstream::model::{now_ms, Event, Fingerprint};
use cxstream::operators::decode::{decode_record, DecodeInput, Decoded};
use cxstream::operators::dedup::{Dedup, DedupSettings};
use cxstream::operators::lineage::{self, Stamper};
use cxstream::operators::mask::{normalize_address, MaskPolicies, Masker};
use cxstream::operators::plausibility::EventTimeBounds;
use cxstream::operators::progress::{Progress, ProgressSettings};
use cxstream::operators::reorder::{Reorder, ReorderSettings};
use cxstream::pipeline::{Output, Pipeline, RecordIn, Role};
use cxstream::secret::MaskingKey;

/// CPU time of the calling thread, ns (first field of its `schedstat`).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Criterion measurement: CPU time of the benchmarking thread.
struct ThreadCpu;

impl Measurement for ThreadCpu {
    type Intermediate = u64;
    type Value = u64;
    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, i: u64) -> u64 {
        thread_cpu_ns().saturating_sub(i)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuFormatter
    }
}

/// Formats nanoseconds of CPU time (and elements per CPU-second).
struct CpuFormatter;

impl ValueFormatter for CpuFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (div, unit) = if typical < 1e3 {
            (1.0, "ns cpu")
        } else if typical < 1e6 {
            (1e3, "µs cpu")
        } else if typical < 1e9 {
            (1e6, "ms cpu")
        } else {
            (1e9, "s cpu")
        };
        for v in values {
            *v /= div;
        }
        unit
    }
    fn scale_throughputs(&self, typical: f64, t: &Throughput, values: &mut [f64]) -> &'static str {
        let n = match t {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => {
                *n as f64
            }
        };
        let per_s = n * 1e9 / typical;
        let (div, unit) = if per_s < 1e3 {
            (1.0, "elem/cpu-s")
        } else if per_s < 1e6 {
            (1e3, "Kelem/cpu-s")
        } else {
            (1e6, "Melem/cpu-s")
        };
        for v in values {
            *v = n * 1e9 / *v / div;
        }
        unit
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

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

fn bench<M: Measurement>(c: &mut Criterion<M>) {
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
    g.bench_function("dedup", |b| {
        b.iter_batched(
            || Dedup::new(&DedupSettings::default()),
            |dedup| {
                let mut new = 0usize;
                for e in &events {
                    new += usize::from(!dedup.check(e.content_fp, e.id_fp).is_duplicate());
                }
                (dedup, new)
            },
            BatchSize::PerIteration,
        )
    });

    // Boxed, as the pipeline buffers them.
    let boxed: Vec<Box<Event>> = events.iter().cloned().map(Box::new).collect();
    g.bench_function("reorder", |b| {
        b.iter_batched(
            || boxed.clone(),
            |evs| {
                let mut r: Reorder<Box<Event>> = Reorder::new(&ReorderSettings::default());
                let mut out = Vec::with_capacity(1024);
                let now = Instant::now();
                let mut released = 0usize;
                for e in evs {
                    r.push(e, now, &mut out);
                    released += out.len();
                    out.clear();
                }
                r.flush(&mut out);
                released + out.len()
            },
            BatchSize::LargeInput,
        )
    });

    // The same with the plain maximum (no watermark quorum): the rule's
    // cost is the difference.
    let plain = ReorderSettings {
        progress: ProgressSettings {
            quorum: 1,
            ..ProgressSettings::default()
        },
        ..ReorderSettings::default()
    };
    g.bench_function("reorder (watermark quorum off)", |b| {
        b.iter_batched(
            || boxed.clone(),
            |evs| {
                let mut r: Reorder<Box<Event>> = Reorder::new(&plain);
                let mut out = Vec::with_capacity(1024);
                let now = Instant::now();
                let mut released = 0usize;
                for e in evs {
                    r.push(e, now, &mut out);
                    released += out.len();
                    out.clear();
                }
                r.flush(&mut out);
                released + out.len()
            },
            BatchSize::LargeInput,
        )
    });
    // The guarded maximum alone, over the events' times.
    let times: Vec<i64> = events.iter().map(|e| e.event_time_ms).collect();
    g.bench_function("progress (watermark quorum)", |b| {
        b.iter(|| {
            let mut p = Progress::new(ProgressSettings::default());
            let mut last = None;
            for &t in &times {
                last = p.observe(t);
            }
            last
        })
    });
    let bounds = EventTimeBounds::default();
    g.bench_function("plausibility", |b| {
        b.iter(|| {
            times
                .iter()
                .filter(|&&t| bounds.check(t, Some(t + 1_000)).is_ok())
                .count()
        })
    });

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

    let mut masked = events.clone();
    for e in &mut masked {
        masker.mask_event(e);
    }
    let stamper = Stamper::new("genesys-silver");
    g.bench_function("lineage+encode", |b| {
        b.iter(|| {
            let now = now_ms();
            let mut bytes = 0usize;
            for e in &masked {
                let hop = stamper.stamp(lineage::STAGE_SILVER, lineage::STATUS_OK, &e.source, now);
                bytes += lineage::encode(e, &hop, None).len();
            }
            bytes
        })
    });

    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/topologies/genesys-silver.toml"
    ))
    .expect("shipped topology");
    let plan = Arc::new(
        config::parse(&text, "genesys-silver.toml")
            .expect("valid topology")
            .into_silver()
            .expect("a silver stage"),
    );
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
                    // Returned, so dropping the per-partition state (a
                    // 1M-capacity dedup cache) is not timed.
                    (p, task, out)
                },
                BatchSize::PerIteration,
            )
        },
    );
    g.finish();
}

/// A stream of distinct, uniformly spread 128-bit fingerprints (splitmix64
/// over a counter): what content and envelope-id hashes look like.
struct Fps(u64);

impl Fps {
    fn next(&mut self) -> Fingerprint {
        let mut half = || {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        (u128::from(half()) << 64) | u128::from(half())
    }
}

/// Per-event dedup cost against a cache that already holds `keys`
/// fingerprints (its capacity), so every new event also causes evictions:
/// the steady state of a long-running partition.
fn bench_dedup_keys<M: Measurement>(c: &mut Criterion<M>) {
    let smoke = std::env::args().any(|a| a == "--test");
    let large: u64 = if smoke { 100_000 } else { 10_000_000 };
    let mut g = c.benchmark_group("dedup_keys");
    g.sample_size(10);
    const BATCH: u64 = 100_000;
    g.throughput(Throughput::Elements(BATCH));
    for keys in [10_000u64, large] {
        let dedup = Dedup::new(&DedupSettings {
            ttl: Duration::from_secs(24 * 3600),
            max_keys: keys,
        });
        let mut fps = Fps(keys);
        for _ in 0..keys {
            dedup.insert_known(fps.next());
        }
        let _ = dedup.entry_count();
        g.bench_function(format!("new event @ {keys} keys"), |b| {
            b.iter(|| {
                let mut new = 0u64;
                for _ in 0..BATCH {
                    let content = fps.next();
                    let id = fps.next();
                    new += u64::from(!dedup.check(content, Some(id)).is_duplicate());
                }
                new
            })
        });
        g.bench_function(format!("duplicate id @ {keys} keys"), |b| {
            // Re-check the most recent ids (still held): the lookup-hit path.
            let mut recent = Vec::with_capacity(1024);
            for _ in 0..1024 {
                let id = fps.next();
                dedup.check(fps.next(), Some(id));
                recent.push(id);
            }
            b.iter(|| {
                let mut dup = 0u64;
                for i in 0..BATCH as usize {
                    let id = recent[i & 1023];
                    dup += u64::from(dedup.check(0, Some(id)).is_duplicate());
                }
                dup
            })
        });
    }
    g.finish();
}

/// Costs of single calls (one element per iteration).
fn bench_per_call<M: Measurement>(c: &mut Criterion<M>) {
    let mut g = c.benchmark_group("per_call");
    g.throughput(Throughput::Elements(1));

    let acd_end: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/input/08-acd-end.json"
    ));
    let input = DecodeInput {
        value: acd_end,
        source: source(),
        header_lineage_token: None,
        record_timestamp_ms: Some(1_765_551_001_000),
        ticket: 7,
    };
    let mut out = Vec::with_capacity(1);
    g.bench_function(
        format!("decode_record acd.end fixture ({} bytes)", acd_end.len()),
        |b| {
            b.iter(|| {
                out.clear();
                decode_record(black_box(&input), &mut out);
                out.len()
            })
        },
    );
    let event = out
        .iter()
        .find_map(Decoded::as_event)
        .expect("the acd.end fixture decodes to an event")
        .clone();

    let key: &[u8] = b"bench-key";
    let masker = Masker::new(key, MaskPolicies::default());
    let phone = "+15555550955";
    g.bench_function("baseline: sha256 of 12 bytes", |b| {
        b.iter(|| Sha256::digest(black_box(phone)))
    });
    g.bench_function("baseline: HMAC-SHA256 keyed per value", |b| {
        b.iter(|| {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
            mac.update(black_box(phone).as_bytes());
            mac.finalize().into_bytes()
        })
    });
    g.bench_function("Masker::token", |b| {
        b.iter(|| masker.token(black_box(phone)))
    });
    g.bench_function("normalize_address tel: URI", |b| {
        b.iter(|| normalize_address(black_box("tel:+15555550955")))
    });
    g.bench_function("clone acd.end event", |b| b.iter(|| event.clone()));
    g.bench_function("clone + mask_event acd.end", |b| {
        b.iter(|| {
            let mut e = event.clone();
            masker.mask_event(&mut e);
            e
        })
    });
    let plain = "Customer 2f7bf00a-0fc2-4d6a-9b56-92238191433e called on 2022-04-06 about a refund";
    g.bench_function("scrub_text, no PII", |b| {
        b.iter(|| masker.scrub_text(black_box(plain)))
    });
    let two = "call me at (555) 555-0955 or jane@example.com";
    g.bench_function("scrub_text, 2 hits", |b| {
        b.iter(|| masker.scrub_text(black_box(two)))
    });
    g.finish();
}

fn cpu_benches() {
    let mut c = Criterion::default()
        .with_measurement(ThreadCpu)
        .configure_from_args();
    bench(&mut c);
    bench_dedup_keys(&mut c);
    bench_per_call(&mut c);
}

fn wall_benches() {
    let mut c = Criterion::default()
        .with_measurement(WallTime)
        .configure_from_args();
    bench(&mut c);
    bench_dedup_keys(&mut c);
    bench_per_call(&mut c);
}

fn main() {
    if std::env::var_os("CXSTREAM_BENCH_WALL").is_some() {
        wall_benches();
    } else {
        cpu_benches();
    }
    Criterion::default().configure_from_args().final_summary();
}
