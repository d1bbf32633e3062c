//! `cxstream export` and `cxstream mine`: the activity log read from Kafka
//! into files and pictures.
//!
//! The topic is read one partition at a time, from its beginning to its end
//! (where the consumer reports it): a case lives in one partition (the
//! topic is keyed by case), so a partition's cases are complete when its
//! end is reached, and memory holds one partition's cases in flight
//! ([`crate::mining::Assembler`]). Records that are not activity records
//! of this build are skipped and counted, never fatal.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::mining::dfg::Dfg;
use crate::mining::ocel::OcelWriter;
use crate::mining::trace::{read_step, CLOSED_BY};
use crate::mining::variants::Variants;
use crate::mining::xes::XesWriter;
use crate::mining::{Assembler, Selection, Trace, Unreadable};
use crate::topic_read::{Flow, ReadError, TopicReader};

/// What went wrong; messages name the topic, file or setting.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "Graphviz `dot` is needed to write {path} (install graphviz); the DOT text is in {dot}"
    )]
    NoGraphviz { path: PathBuf, dot: PathBuf },
    #[error("Graphviz `dot` failed for {path}: {detail}")]
    Graphviz { path: PathBuf, detail: String },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where the activity log is and which part of it to read.
#[derive(Debug, Clone)]
pub struct Source {
    pub brokers: String,
    pub topic: String,
    /// librdkafka settings (`-X`).
    pub client: Vec<(String, String)>,
    pub selection: Selection,
    /// Records of a partition a closed case waits for a late activity.
    pub linger: u64,
    /// No progress bar, no summary.
    pub quiet: bool,
    /// How long a partition may deliver nothing before its end.
    pub stall: Duration,
}

/// What a read found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadSummary {
    pub partitions: usize,
    pub records: u64,
    /// Activity records (markers not counted).
    pub activities: u64,
    pub markers: u64,
    /// Cases handed to the command.
    pub cases: u64,
    /// Cases outside `--from`/`--to`.
    pub out_of_range: u64,
    pub skipped: BTreeMap<&'static str, u64>,
    /// Activities that arrived after their case was written.
    pub continuations: u64,
}

impl ReadSummary {
    fn skip(&mut self, why: Unreadable) {
        let label = match why {
            Unreadable::NotActivity => "not an activity record",
            Unreadable::BadTime => "activity with an unreadable time",
            Unreadable::Empty => "record without a value",
        };
        *self.skipped.entry(label).or_default() += 1;
    }

    /// One line for the terminal.
    pub fn line(&self) -> String {
        let mut s = format!(
            "read {} records from {} partitions: {} activities, {} cases taken",
            self.records, self.partitions, self.activities, self.cases
        );
        if self.out_of_range > 0 {
            s += &format!(", {} cases outside --from/--to", self.out_of_range);
        }
        for (why, n) in &self.skipped {
            s += &format!("; skipped {n} ({why})");
        }
        if self.continuations > 0 {
            s += &format!(
                "; {} activities arrived after their case was written (written as continuation traces of the same case)",
                self.continuations
            );
        }
        s
    }
}

/// Reads the log and hands each selected case to `sink`, in partition
/// order, until the end or until `--cases` are taken.
pub fn read_cases(
    src: &Source,
    mut sink: impl FnMut(&Trace) -> io::Result<()>,
    sink_path: &Path,
) -> Result<ReadSummary, ExportError> {
    let reader = TopicReader::open(&src.brokers, &src.client, &src.topic, src.stall)?;
    let total = reader.total();
    let bar = if src.quiet {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} {bar:40} {pos}/{len} records ({per_sec}, {eta} left) {msg}",
        ) {
            b.set_style(style);
        }
        b
    };
    let mut summary = ReadSummary {
        partitions: reader.ranges().len(),
        ..ReadSummary::default()
    };
    let mut traces = Vec::new();
    for range in reader.ranges().to_vec() {
        let mut asm = Assembler::new(src.linger);
        let mut full = false;
        reader.read_partition(range, |_, value| -> Result<Flow, ExportError> {
            summary.records += 1;
            bar.inc(1);
            match read_step(value) {
                Ok(step) => {
                    if step.record.attributes.contains_key(CLOSED_BY) {
                        summary.markers += 1;
                    } else {
                        summary.activities += 1;
                    }
                    asm.push(step, &mut traces);
                }
                Err(why) => summary.skip(why),
            }
            full = hand_out(src, &mut traces, &mut summary, &mut sink, sink_path)?;
            Ok(if full { Flow::Stop } else { Flow::Continue })
        })?;
        if full {
            break;
        }
        asm.finish(&mut traces);
        summary.continuations += asm.continuations();
        if hand_out(src, &mut traces, &mut summary, &mut sink, sink_path)? {
            break;
        }
    }
    bar.finish_and_clear();
    Ok(summary)
}

/// Hands out the traces ready; `true` once `--cases` are taken.
fn hand_out(
    src: &Source,
    traces: &mut Vec<Trace>,
    summary: &mut ReadSummary,
    sink: &mut impl FnMut(&Trace) -> io::Result<()>,
    sink_path: &Path,
) -> Result<bool, ExportError> {
    for t in traces.drain(..) {
        if src.selection.full(summary.cases) {
            return Ok(true);
        }
        if !src.selection.in_range(&t) {
            summary.out_of_range += 1;
            continue;
        }
        sink(&t).map_err(io_at(sink_path))?;
        summary.cases += 1;
    }
    Ok(src.selection.full(summary.cases))
}

/// The file formats of `export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// IEEE 1849 XES: traces = cases.
    Xes,
    /// OCEL 2.0 JSON: conversations, queues, agents, customers.
    Ocel,
}

/// `<out>.part`, renamed to `out` when complete.
fn part_path(out: &Path) -> PathBuf {
    let mut p = out.as_os_str().to_owned();
    p.push(".part");
    PathBuf::from(p)
}

/// Writes the log (or its selected part) to `out`.
pub fn export(src: &Source, format: Format, out: &Path) -> Result<ReadSummary, ExportError> {
    let part = part_path(out);
    let file = File::create(&part).map_err(io_at(&part))?;
    let w = BufWriter::with_capacity(1 << 20, file);
    let result = match format {
        Format::Xes => export_xes(src, w, &part),
        Format::Ocel => export_ocel(src, w, &part),
    };
    match result {
        Ok(summary) => {
            fs::rename(&part, out).map_err(io_at(out))?;
            Ok(summary)
        }
        Err(e) => {
            let _ = fs::remove_file(&part);
            Err(e)
        }
    }
}

fn export_xes(src: &Source, w: BufWriter<File>, part: &Path) -> Result<ReadSummary, ExportError> {
    let mut xes = XesWriter::new(w, &format!("cxstream {}", src.topic)).map_err(io_at(part))?;
    let summary = read_cases(src, |t| xes.write(t), part)?;
    xes.finish().map_err(io_at(part))?;
    Ok(summary)
}

fn export_ocel(src: &Source, w: BufWriter<File>, part: &Path) -> Result<ReadSummary, ExportError> {
    let mut objects_path = part.as_os_str().to_owned();
    objects_path.push(".objects");
    let objects_path = PathBuf::from(objects_path);
    let objects = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&objects_path)
        .map_err(io_at(&objects_path))?;
    let result = (|| {
        let mut ocel = OcelWriter::new(w, objects).map_err(io_at(part))?;
        let summary = read_cases(src, |t| ocel.write(t), part)?;
        ocel.finish().map_err(io_at(part))?;
        Ok(summary)
    })();
    let _ = fs::remove_file(&objects_path);
    result
}

/// Reads the log into a directly-follows graph.
pub fn dfg(src: &Source) -> Result<(Dfg, ReadSummary), ExportError> {
    let mut g = Dfg::default();
    let summary = read_cases(
        src,
        |t| {
            g.add(t);
            Ok(())
        },
        Path::new("(graph)"),
    )?;
    Ok((g, summary))
}

/// Writes `g` to `out`: DOT text, or SVG/PNG (by the extension) through
/// Graphviz's `dot`; edges seen fewer than `min_count` times left out.
pub fn write_graph(g: &Dfg, out: &Path, min_count: u64) -> Result<(), ExportError> {
    let dot = g.to_dot(min_count);
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let format = match ext.as_deref() {
        Some("svg") => "svg",
        Some("png") => "png",
        _ => {
            return fs::write(out, dot).map_err(io_at(out));
        }
    };
    let dot_path = out.with_extension("dot");
    fs::write(&dot_path, &dot).map_err(io_at(&dot_path))?;
    let status = Command::new("dot")
        .arg(format!("-T{format}"))
        .arg("-o")
        .arg(out)
        .arg(&dot_path)
        .output();
    match status {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ExportError::NoGraphviz {
            path: out.to_path_buf(),
            dot: dot_path,
        }),
        Err(e) => Err(ExportError::Graphviz {
            path: out.to_path_buf(),
            detail: e.to_string(),
        }),
        Ok(o) if !o.status.success() => Err(ExportError::Graphviz {
            path: out.to_path_buf(),
            detail: String::from_utf8_lossy(&o.stderr).trim().to_string(),
        }),
        Ok(_) => Ok(()),
    }
}

/// Reads the log into its variants.
pub fn variants(src: &Source, long_hold: Duration) -> Result<(Variants, ReadSummary), ExportError> {
    let mut v = Variants::new(i64::try_from(long_hold.as_millis()).unwrap_or(i64::MAX));
    let summary = read_cases(
        src,
        |t| {
            v.add(t);
            Ok(())
        },
        Path::new("(variants)"),
    )?;
    Ok((v, summary))
}

/// Prints `summary` to stderr unless quiet.
pub fn report(src: &Source, summary: &ReadSummary) {
    if !src.quiet {
        eprintln!("{}", summary.line());
    }
}

/// Writes to stdout, ignoring a closed pipe (`| head`).
pub fn print(text: &str) {
    let _ = io::stdout().lock().write_all(text.as_bytes());
}
