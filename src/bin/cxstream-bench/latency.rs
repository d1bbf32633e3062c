//! The latency phase: a paced in-order load, the variant, and a reader on
//! its output, all in one child (see the crate doc for what is measured).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use cxstream::generate::Generator;
use cxstream::procfs::proc_status_kib;
use cxstream::runtime::client;

use crate::child::{delivery, passthrough, run_pipeline, settings, Clock};
use crate::report::{bucket_delta, bucket_quantile, buckets, percentile, Buckets, Report};
use crate::spec::{kafka, latency_gen, load_producer, BenchError, ChildSpec, Variant};

/// One latency sample of the latency phase, in ms.
struct Sample {
    /// Input CreateTime → read back from the output.
    total: f64,
    /// (input CreateTime → output CreateTime, output CreateTime → read
    /// back), when the output carries its own CreateTime (the pipeline).
    split: Option<(f64, f64)>,
}

/// The latency phase: a paced in-order load, the variant, and a reader on
/// its silver output, all in this process.
pub(crate) fn latency(spec: &ChildSpec, report: &mut Report) -> Result<(), BenchError> {
    let st = settings(spec);
    let input = spec.names.input.clone();
    let output = spec.names.output();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    // Records produced at or after this time (epoch ms) are measured.
    let measure_from = Arc::new(AtomicU64::new(u64::MAX));
    let lat_plan = match spec.variant {
        Variant::Passthrough => None,
        v => Some(spec.names.plan(delivery(v), true)?),
    };
    let (samples, result, processing) = std::thread::scope(|s| {
        // Reader: the output topic's only partition and the input's, from
        // the beginning. Each output is matched with the input record it came
        // from (the pass-through keeps offsets; the pipeline's silver record
        // names its source offset in its lineage hop) and its latency is the
        // reader's receive time minus that input record's CreateTime (the
        // moment the load generator called `produce`).
        let reader = s.spawn(|| -> Result<Vec<Sample>, BenchError> {
            let c: BaseConsumer = st
                .with_defaults(&[
                    ("group.id", &format!("{}.reader", spec.names.prefix)),
                    ("enable.auto.commit", "false"),
                    ("fetch.wait.max.ms", "5"),
                    ("fetch.error.backoff.ms", "5"),
                ])
                .create()
                .map_err(kafka("creating the reader"))?;
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&output, 0, Offset::Beginning)
                .map_err(kafka("assigning the reader"))?;
            tpl.add_partition_offset(&input, 0, Offset::Beginning)
                .map_err(kafka("assigning the reader"))?;
            c.assign(&tpl).map_err(kafka("assigning the reader"))?;
            let mut created: std::collections::HashMap<i64, i64> = Default::default();
            // (source offset, receive time, output CreateTime)
            let mut received: Vec<(i64, i64, Option<i64>)> = Vec::new();
            let mut idle_since: Option<Instant> = None;
            loop {
                match c.poll(Duration::from_millis(20)) {
                    Some(Ok(m)) => {
                        let now = cxstream::model::now_ms();
                        idle_since = None;
                        if m.topic() == input {
                            if let Some(ts) = m.timestamp().to_millis() {
                                created.insert(m.offset(), ts);
                            }
                            continue;
                        }
                        let source = if spec.variant == Variant::Passthrough {
                            Some(m.offset())
                        } else {
                            m.payload().and_then(source_offset)
                        };
                        if let Some(o) = source {
                            received.push((o, now, m.timestamp().to_millis()));
                        }
                        if measure_from.load(Ordering::Relaxed) == u64::MAX {
                            // First output seen: measure inputs from 2 s on.
                            measure_from.store(now as u64 + 2000, Ordering::Relaxed);
                        }
                    }
                    Some(Err(_)) | None => {
                        if stop.load(Ordering::Relaxed) {
                            let t = *idle_since.get_or_insert_with(Instant::now);
                            if t.elapsed() > Duration::from_secs(2) {
                                let from = measure_from.load(Ordering::Relaxed);
                                return Ok(received
                                    .iter()
                                    .filter_map(|(o, at, out_ts)| {
                                        let ts = *created.get(o)?;
                                        (ts as u64 >= from).then(|| Sample {
                                            total: (at - ts) as f64,
                                            split: out_ts
                                                .map(|p| ((p - ts) as f64, (at - p) as f64)),
                                        })
                                    })
                                    .collect());
                            }
                        }
                    }
                }
            }
        });
        // Load: paced in-order stream.
        let load = s.spawn(|| -> Result<(), BenchError> {
            let producer = load_producer(&st, "0")?;
            let started = Instant::now();
            let mut measuring_since: Option<Instant> = None;
            let window = Duration::from_secs_f64(spec.records as f64 / spec.rate);
            for rec in Generator::new(latency_gen(1_000_000, spec.seed)) {
                let n = sent.load(Ordering::Relaxed);
                let due = started + Duration::from_secs_f64(n as f64 / spec.rate);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                let mut r: BaseRecord<'_, [u8], [u8]> =
                    BaseRecord::to(&input).partition(0).payload(&rec.value);
                if let Some(k) = &rec.key {
                    r = r.key(k);
                }
                client::send_retrying(&producer, r).map_err(kafka("producing the load"))?;
                producer.poll(Duration::ZERO);
                sent.fetch_add(1, Ordering::Relaxed);
                let from = measure_from.load(Ordering::Relaxed);
                if from != u64::MAX && cxstream::model::now_ms() as u64 >= from {
                    let t = *measuring_since.get_or_insert_with(Instant::now);
                    if t.elapsed() >= window {
                        break;
                    }
                }
                if started.elapsed() > Duration::from_secs(120) || stop.load(Ordering::Relaxed) {
                    break;
                }
            }
            producer
                .flush(Duration::from_secs(30))
                .map_err(kafka("flushing the load"))?;
            Ok(())
        });
        // The variant itself, on this thread.
        let mut clock = Clock::default();
        // Processing-latency histogram at the start and end of the window.
        let mut processing: (Option<Buckets>, Buckets) = (None, Vec::new());
        let result = match lat_plan {
            None => {
                let stop_pt = AtomicBool::new(false);
                std::thread::scope(|s2| {
                    let h = s2.spawn(|| {
                        let mut r = Report::default();
                        passthrough(spec, Some(&stop_pt), &mut r).map(|_| r)
                    });
                    let _ = load.join();
                    std::thread::sleep(Duration::from_secs(2));
                    stop_pt.store(true, Ordering::Relaxed);
                    match h.join() {
                        Ok(Ok(r)) => {
                            report.peak_rss_kib = r.peak_rss_kib;
                            Ok(())
                        }
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err(BenchError::Failed("pass-through thread panicked".into())),
                    }
                })
            }
            Some(plan) => {
                let pstop = Arc::new(AtomicBool::new(false));
                let p2 = pstop.clone();
                std::thread::scope(|s2| {
                    s2.spawn(move || {
                        let _ = load.join();
                        std::thread::sleep(Duration::from_secs(2));
                        p2.store(true, Ordering::Relaxed);
                    });
                    let r = run_pipeline(spec, plan, None, pstop.clone(), |m| {
                        clock.sample_rss();
                        let from = measure_from.load(Ordering::Relaxed);
                        if from != u64::MAX && cxstream::model::now_ms() as u64 >= from {
                            let now = buckets(&m.processing_latency);
                            processing.0.get_or_insert_with(|| now.clone());
                            processing.1 = now;
                        }
                    });
                    // Ends the load at once if the pipeline failed early.
                    stop.store(true, Ordering::Relaxed);
                    r
                })
            }
        };
        stop.store(true, Ordering::Relaxed);
        let samples = match reader.join() {
            Ok(r) => r,
            Err(_) => Err(BenchError::Failed("reader thread panicked".into())),
        };
        clock.sample_rss();
        report.max_rss_kib = clock.max_rss;
        (samples, result, processing)
    });
    result?;
    let samples = samples?;
    let mut lat: Vec<f64> = samples.iter().map(|s| s.total).collect();
    lat.sort_by(f64::total_cmp);
    let (mut to, mut from): (Vec<f64>, Vec<f64>) = samples.iter().filter_map(|s| s.split).unzip();
    to.sort_by(f64::total_cmp);
    from.sort_by(f64::total_cmp);
    if spec.variant != Variant::Passthrough {
        report.to_produce_p50_ms = percentile(&to, 50.0);
        report.to_produce_p99_ms = percentile(&to, 99.0);
        report.from_produce_p50_ms = percentile(&from, 50.0);
        report.from_produce_p99_ms = percentile(&from, 99.0);
        if let Some(start) = &processing.0 {
            let window = bucket_delta(start, &processing.1);
            report.processing_p50_le_ms = bucket_quantile(&window, 0.50).map(|s| s * 1000.0);
            report.processing_p99_le_ms = bucket_quantile(&window, 0.99).map(|s| s * 1000.0);
        }
    }
    report.records = sent.load(Ordering::Relaxed);
    report.latency_samples = lat.len() as u64;
    report.latency_p50_ms = percentile(&lat, 50.0);
    report.latency_p99_ms = percentile(&lat, 99.0);
    report.latency_max_ms = lat.last().copied();
    report.peak_rss_kib = proc_status_kib("VmHWM").unwrap_or(0);
    if lat.is_empty() {
        return Err(BenchError::Failed(
            "no output record was read back in the measured window".into(),
        ));
    }
    Ok(())
}

/// The input offset a silver record came from: its first lineage hop's
/// `source_offset`.
fn source_offset(silver: &[u8]) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_slice(silver).ok()?;
    v.get("lineage")?
        .get("hops")?
        .get(0)?
        .get("source_offset")?
        .as_i64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_offset_is_read_from_the_first_lineage_hop() {
        let silver = br#"{"event_id":"e","lineage":{"token":"t","hops":[{"source_offset":41},{"source_offset":7}]}}"#;
        assert_eq!(source_offset(silver), Some(41));
        assert_eq!(source_offset(br#"{"lineage":{"hops":[]}}"#), None);
        assert_eq!(source_offset(b"not json"), None);
    }
}
