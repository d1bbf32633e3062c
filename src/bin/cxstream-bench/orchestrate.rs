//! The parent side of a run: pre-load the input once, then run each
//! variant and phase in its own child process and collect the reports.

use std::time::{Duration, Instant};

use rdkafka::producer::{BaseRecord, Producer};

use cxstream::generate::Generator;
use cxstream::runtime::{client, ClientSettings};

use crate::report::Report;
use crate::spec::{
    create_topics, kafka, load_producer, throughput_gen, BenchError, BenchOptions, ChildSpec,
    Names, Phase, Variant, CHILD_COMMAND,
};

/// Writes the throughput input; returns (records, value bytes).
pub fn preload(
    settings: &ClientSettings,
    topic: &str,
    events: u64,
    seed: u64,
) -> Result<(u64, u64), BenchError> {
    let producer = load_producer(settings, "5")?;
    let (mut n, mut bytes) = (0u64, 0u64);
    for rec in Generator::new(throughput_gen(events, seed)) {
        let mut r: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(&rec.value);
        if let Some(k) = &rec.key {
            r = r.key(k);
        }
        client::send_retrying(&producer, r).map_err(kafka("pre-loading the input"))?;
        n += 1;
        bytes += rec.value.len() as u64;
    }
    producer
        .flush(Duration::from_secs(120))
        .map_err(kafka("flushing the pre-load"))?;
    Ok((n, bytes))
}

/// Runs every variant in its own child process (this executable's hidden
/// [`CHILD_COMMAND`]) and collects their reports; a failed child is a
/// report with `error` set, not an error of the whole run.
pub fn orchestrate(opts: &BenchOptions) -> Result<Vec<Report>, BenchError> {
    let run = format!("bench.{:08x}", rand::random::<u32>());
    let st = ClientSettings {
        brokers: opts.brokers.clone(),
        extra: opts.overrides.clone(),
    };
    let input = format!("{run}.bronze");
    create_topics(&opts.brokers, &opts.overrides, &[&input], opts.partitions)?;
    let t = Instant::now();
    let (records, bytes) = preload(&st, &input, opts.events, opts.seed)?;
    eprintln!(
        "bench: pre-loaded {records} records ({:.1} MB) into {input} ({} partitions) in {:.1?}",
        bytes as f64 / 1e6,
        opts.partitions,
        t.elapsed()
    );
    let mut reports = Vec::new();
    for v in &opts.variants {
        let names = Names {
            input: input.clone(),
            prefix: format!("{run}.{}", v.name()),
        };
        if *v == Variant::Passthrough {
            create_topics(
                &opts.brokers,
                &opts.overrides,
                &[&names.output()],
                opts.partitions,
            )?;
        }
        reports.push(child(
            opts,
            &ChildSpec {
                variant: *v,
                phase: Phase::Throughput,
                brokers: opts.brokers.clone(),
                overrides: opts.overrides.clone(),
                names,
                records,
                input_bytes: bytes,
                rate: opts.rate,
                seed: opts.seed,
            },
        ));
    }
    if opts.latency_events > 0 {
        for v in &opts.variants {
            let prefix = format!("{run}.{}.lat", v.name());
            let names = Names {
                input: format!("{prefix}.bronze"),
                prefix,
            };
            create_topics(
                &opts.brokers,
                &opts.overrides,
                &[&names.input, &names.output()],
                1,
            )?;
            reports.push(child(
                opts,
                &ChildSpec {
                    variant: *v,
                    phase: Phase::Latency,
                    brokers: opts.brokers.clone(),
                    overrides: opts.overrides.clone(),
                    names,
                    records: opts.latency_events,
                    input_bytes: 0,
                    rate: opts.rate,
                    seed: opts.seed,
                },
            ));
        }
    }
    Ok(reports)
}

/// The `bench-run` arguments for `spec`.
pub fn child_args(spec: &ChildSpec) -> Vec<String> {
    let mut a = vec![
        CHILD_COMMAND.to_string(),
        "--variant".into(),
        spec.variant.name().into(),
        "--phase".into(),
        match spec.phase {
            Phase::Throughput => "throughput".into(),
            Phase::Latency => "latency".into(),
        },
        "--brokers".into(),
        spec.brokers.clone(),
        "--input".into(),
        spec.names.input.clone(),
        "--prefix".into(),
        spec.names.prefix.clone(),
        "--records".into(),
        spec.records.to_string(),
        "--input-bytes".into(),
        spec.input_bytes.to_string(),
        "--rate".into(),
        spec.rate.to_string(),
        "--seed".into(),
        spec.seed.to_string(),
    ];
    for (k, v) in &spec.overrides {
        a.push("-X".into());
        a.push(format!("{k}={v}"));
    }
    a
}

fn child(_opts: &BenchOptions, spec: &ChildSpec) -> Report {
    let label = format!("{} {:?}", spec.variant.name(), spec.phase);
    eprintln!("bench: running {label}...");
    let failed = |e: String| Report {
        variant: spec.variant.name().into(),
        phase: format!("{:?}", spec.phase).to_lowercase(),
        error: Some(e),
        ..Report::default()
    };
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return failed(format!("cannot find this executable: {e}")),
    };
    // CXSTREAM_BENCH_CHILD_WRAPPER="heaptrack -o /tmp/replay" runs each
    // child under a profiler (words split on whitespace).
    let wrapper: Vec<String> = std::env::var("CXSTREAM_BENCH_CHILD_WRAPPER")
        .map(|w| w.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let mut cmd = match wrapper.split_first() {
        Some((prog, args)) => {
            let mut c = std::process::Command::new(prog);
            c.args(args).arg(&exe);
            c
        }
        None => std::process::Command::new(&exe),
    };
    cmd.args(child_args(spec))
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit());
    if std::env::var_os("CXSTREAM_LOG").is_none() {
        cmd.env("CXSTREAM_LOG", "warn,librdkafka=error,rdkafka=error");
    }
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => return failed(format!("cannot start the child: {e}")),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Report>(l).ok())
    {
        Some(r) => r,
        None => failed(format!(
            "the child exited with {} and no report",
            out.status
        )),
    }
}
