//! `cxstream export` and `cxstream mine`: arguments and what they print.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::export::{self, Format, Source};
use crate::mining::Selection;
use crate::model::parse_iso_ms;
use crate::runtime::client::parse_kv;

use super::CliResult;

/// Where the activity log is, and which of its cases to read.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Bootstrap brokers, HOST:PORT[,HOST:PORT…].
    #[arg(long)]
    pub brokers: String,
    /// The activity topic (the process stage's `activities` port).
    #[arg(long, default_value = "cx.gold.process_events")]
    pub topic: String,
    /// Only cases whose first activity is at or after this event time (ISO-8601).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub from: Option<i64>,
    /// Only cases whose first activity is before this event time (ISO-8601).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub to: Option<i64>,
    /// At most this many cases.
    #[arg(long, value_name = "N")]
    pub cases: Option<u64>,
    /// Records of a partition a closed case waits for a late activity
    /// before it is written (more: fewer continuation traces, more memory).
    #[arg(long, default_value_t = 10_000, value_name = "RECORDS")]
    pub linger: u64,
    /// No progress bar and no summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// librdkafka client setting, as kcat's -X (repeatable).
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_kv)]
    pub client: Vec<(String, String)>,
}

fn parse_time(s: &str) -> Result<i64, String> {
    parse_iso_ms(s).ok_or_else(|| {
        format!("`{s}` is not an ISO-8601 time with a zone, e.g. 2026-03-02T09:00:00Z")
    })
}

impl LogArgs {
    fn source(&self) -> Source {
        Source {
            brokers: self.brokers.clone(),
            topic: self.topic.clone(),
            client: self.client.clone(),
            selection: Selection {
                from_ms: self.from,
                to_ms: self.to,
                cases: self.cases,
            },
            linger: self.linger,
            quiet: self.quiet,
            stall: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// xes (IEEE 1849) or ocel (OCEL 2.0 JSON).
    #[arg(value_enum)]
    pub format: Format,
    /// The file to write (written as FILE.part, renamed when complete).
    #[arg(long, short)]
    pub out: PathBuf,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Subcommand)]
pub enum MineCommand {
    /// The directly-follows graph: activities and edges with counts and
    /// median/p90 transition times, as DOT, SVG or PNG (by --out's extension;
    /// SVG and PNG need Graphviz's `dot`). Prints the edges as a table.
    Dfg {
        /// The picture to write: .dot, .svg or .png.
        #[arg(long, short)]
        out: PathBuf,
        /// Leave edges seen fewer times than this out of the picture (the
        /// printed table keeps every edge).
        #[arg(long, default_value_t = 0, value_name = "N")]
        min_count: u64,
        #[command(flatten)]
        log: LogArgs,
    },
    /// The most frequent variants with case counts and median case duration,
    /// flagged: abandoned after IVR, transferred more than once, long hold.
    Variants {
        /// How many variants to print.
        #[arg(long, default_value_t = 10)]
        top: usize,
        /// A case whose agents held the customer this long in all is a long hold.
        #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
        long_hold: Duration,
        #[command(flatten)]
        log: LogArgs,
    },
}

pub fn export(args: ExportArgs) -> CliResult {
    let src = args.log.source();
    let summary = export::export(&src, args.format, &args.out)?;
    export::report(&src, &summary);
    if !src.quiet {
        eprintln!("wrote {}", args.out.display());
    }
    Ok(())
}

pub fn mine(cmd: MineCommand) -> CliResult {
    match cmd {
        MineCommand::Dfg {
            out,
            min_count,
            log,
        } => {
            let src = log.source();
            let (g, summary) = export::dfg(&src)?;
            export::report(&src, &summary);
            export::write_graph(&g, &out, min_count)?;
            if !src.quiet {
                export::print(&g.to_tsv());
                eprintln!(
                    "wrote {} ({} activities, {} edges, {} cases)",
                    out.display(),
                    g.activities.len(),
                    g.edges.len(),
                    g.cases
                );
            }
        }
        MineCommand::Variants {
            top,
            long_hold,
            log,
        } => {
            let src = log.source();
            let (v, summary) = export::variants(&src, long_hold)?;
            export::report(&src, &summary);
            export::print(&v.report(top));
        }
    }
    Ok(())
}
