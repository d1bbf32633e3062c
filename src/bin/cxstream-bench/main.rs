//! `cxstream-bench`: the end-to-end benchmark against a real broker (see
//! BENCHMARKS.md and `scripts/bench.sh`). Built only with the `bench`
//! feature, so it is not part of the `cxstream` binary.
//!
//! One run pre-loads a generated bronze topic once, then measures each
//! variant in its own child process (this executable's hidden
//! `bench-run` subcommand), so CPU
//! time and peak RSS are per variant:
//!
//! * `passthrough`: a minimal rdkafka consume → produce loop with exactly the
//!   runtime's client settings ([`GROUP_CONSUMER_DEFAULTS`], [`PRODUCER_DEFAULTS`],
//!   plus the same `-X` overrides), no processing;
//! * `replay`, `transactions`: the full silver pipeline ([`cxstream::run::silver`],
//!   the shipped topology with fresh topic names and group id) in each
//!   `runtime.delivery` mode.
//!
//! **Throughput phase**: every variant reads the same pre-loaded topic from
//! the beginning. Throughput is measured from the first record read to the
//! last input record taken in; the "tail" (until the last output is
//! delivered: the reorder buffer's last events, released by its idle
//! timeout, and their delivery) is printed apart, because it is a fixed cost
//! per end of stream, not a rate. CPU seconds are `utime + stime` of the
//! child from the first record read to the last output delivered (tail
//! included; from `/proc/self/stat`); peak RSS is `VmHWM` of the child at
//! exit.
//!
//! **Latency phase**: a fresh topic with one partition is fed at a fixed rate
//! (default 5,000 events/s) with an in-order stream (no duplicates, no
//! disorder, no late or malformed records) while the variant runs; the
//! pipeline's topology copy has `allowed_lateness = 0`, so the reorder hold
//! is zero by construction. A reader in the same process consumes the output
//! topic and the input topic, matches each output with its input record (by
//! offset for the pass-through, by the lineage hop's source offset for the
//! pipeline) and records `receive time − input CreateTime` (set when the
//! load generator called `produce`) for every input produced after a 2 s
//! warm-up. That is: load producer → broker → processor → broker → reader.
//! For the pipeline the latency is also split at the silver record's own
//! CreateTime (set when the processor called `produce`): input hop plus
//! processing, and output hop; and the processor's own share (record read →
//! handed to the producer) is read from its
//! `cxstream_processing_latency_seconds` histogram over the same window.
//!
//! [`GROUP_CONSUMER_DEFAULTS`]: cxstream::runtime::client::GROUP_CONSUMER_DEFAULTS
//! [`PRODUCER_DEFAULTS`]: cxstream::runtime::client::PRODUCER_DEFAULTS

mod child;
mod latency;
mod orchestrate;
mod report;
mod spec;

use std::process::ExitCode;

use clap::Parser;

use cxstream::runtime::client::parse_kv;

use report::{summary, Report};
use spec::{ChildSpec, Names, Phase, Variant, CHILD_COMMAND};

/// The allocator of the `cxstream` binary, so each variant runs as it
/// would in production (see `src/main.rs`).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// End-to-end benchmark on a broker: raw pass-through vs the full
/// pipeline per delivery mode (see BENCHMARKS.md).
#[derive(Debug, Parser)]
#[command(name = "cxstream-bench", version)]
pub struct BenchArgs {
    /// Bootstrap brokers, HOST:PORT.
    #[arg(long)]
    pub brokers: String,
    /// Input records to pre-load for the throughput phase.
    #[arg(long, default_value_t = 200_000)]
    pub events: u64,
    /// Partitions of the pre-loaded input topic.
    #[arg(long, default_value_t = 2)]
    pub partitions: i32,
    /// Variants to measure, in order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "passthrough,replay,transactions"
    )]
    pub variants: Vec<Variant>,
    /// Latency phase: load rate, events/s.
    #[arg(long, default_value_t = 5_000.0)]
    pub rate: f64,
    /// Latency phase: events measured after the warm-up (0 = skip the phase).
    #[arg(long, default_value_t = 50_000)]
    pub latency_events: u64,
    #[arg(long, default_value_t = 11)]
    pub seed: u64,
    /// Exit with an error when any variant failed (CI smoke).
    #[arg(long)]
    pub strict: bool,
    /// librdkafka setting for every client of every variant (repeatable).
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_kv)]
    pub client: Vec<(String, String)>,
}

/// One benchmark variant (run by the benchmark as a child process).
#[derive(Debug, Parser)]
#[command(
    name = "cxstream-bench bench-run",
    bin_name = "cxstream-bench bench-run"
)]
pub struct BenchRunArgs {
    #[arg(long)]
    pub variant: Variant,
    #[arg(long)]
    pub phase: Phase,
    #[arg(long)]
    pub brokers: String,
    #[arg(long)]
    pub input: String,
    #[arg(long)]
    pub prefix: String,
    #[arg(long)]
    pub records: u64,
    #[arg(long, default_value_t = 0)]
    pub input_bytes: u64,
    #[arg(long, default_value_t = 5_000.0)]
    pub rate: f64,
    #[arg(long, default_value_t = 11)]
    pub seed: u64,
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_kv)]
    pub client: Vec<(String, String)>,
}

type BenchResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// `cxstream-bench [OPTIONS]` runs the benchmark; `cxstream-bench
/// bench-run [OPTIONS]` (hidden) one variant, as a child process of it.
fn main() -> ExitCode {
    let mut argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let result = if argv.get(1).is_some_and(|a| a == CHILD_COMMAND) {
        argv.remove(1);
        let args = BenchRunArgs::parse_from(argv);
        cxstream::logging::init_tracing();
        bench_run(args)
    } else {
        let args = BenchArgs::parse_from(argv);
        cxstream::logging::init_tracing();
        bench(args)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench(args: BenchArgs) -> BenchResult {
    let opts = spec::BenchOptions {
        brokers: args.brokers,
        overrides: args.client,
        events: args.events,
        partitions: args.partitions,
        variants: args.variants,
        rate: args.rate,
        latency_events: args.latency_events,
        seed: args.seed,
    };
    let reports = orchestrate::orchestrate(&opts)?;
    for r in &reports {
        println!("{}", serde_json::to_string(r)?);
    }
    print!("{}", summary(&reports));
    if args.strict {
        if let Some(e) = reports.iter().find_map(|r| r.error.as_ref()) {
            return Err(format!("a benchmark variant failed: {e}").into());
        }
    }
    Ok(())
}

fn bench_run(args: BenchRunArgs) -> BenchResult {
    let spec = ChildSpec {
        variant: args.variant,
        phase: args.phase,
        brokers: args.brokers,
        overrides: args.client,
        names: Names {
            input: args.input,
            prefix: args.prefix,
        },
        records: args.records,
        input_bytes: args.input_bytes,
        rate: args.rate,
        seed: args.seed,
    };
    let report = run_child(&spec);
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Runs one child's measurement in this process.
fn run_child(spec: &ChildSpec) -> Report {
    let mut report = Report {
        variant: spec.variant.name().into(),
        phase: match spec.phase {
            Phase::Throughput => "throughput".into(),
            Phase::Latency => "latency".into(),
        },
        ..Report::default()
    };
    let result = match (spec.variant, spec.phase) {
        (Variant::Passthrough, Phase::Throughput) => child::passthrough(spec, None, &mut report),
        (Variant::Passthrough, Phase::Latency) => latency::latency(spec, &mut report),
        (_, Phase::Throughput) => child::pipeline(spec, &mut report),
        (_, Phase::Latency) => latency::latency(spec, &mut report),
    };
    if let Err(e) = result {
        report.error = Some(e.to_string());
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the parent passes a child is what the child parses.
    #[test]
    fn child_arguments_parse_back_into_the_same_spec() {
        let spec = ChildSpec {
            variant: Variant::Transactions,
            phase: Phase::Latency,
            brokers: "127.0.0.1:9092".into(),
            overrides: vec![("session.timeout.ms".into(), "6000".into())],
            names: Names {
                input: "bench.1.bronze".into(),
                prefix: "bench.1.transactions.lat".into(),
            },
            records: 500,
            input_bytes: 123,
            rate: 2_500.5,
            seed: 3,
        };
        let argv = orchestrate::child_args(&spec);
        assert_eq!(argv[0], CHILD_COMMAND);
        let a = BenchRunArgs::try_parse_from(
            std::iter::once("cxstream-bench".to_string()).chain(argv[1..].iter().cloned()),
        )
        .expect("child arguments parse");
        assert_eq!((a.variant, a.phase), (spec.variant, spec.phase));
        assert_eq!(a.brokers, spec.brokers);
        assert_eq!((a.input, a.prefix), (spec.names.input, spec.names.prefix));
        assert_eq!((a.records, a.input_bytes), (spec.records, spec.input_bytes));
        assert_eq!((a.rate, a.seed), (spec.rate, spec.seed));
        assert_eq!(a.client, spec.overrides);
    }
}
