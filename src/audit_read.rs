//! `cxstream audit verify` over Kafka: the checkpoint topic read whole
//! (notes grouped by origin), then each audit partition streamed through
//! its [`PartitionVerifier`], one partition at a time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::audit::note::NoteVerifier;
use crate::audit::record::AuditRecord;
use crate::audit::verify::{Finding, Kind, PartitionReport, PartitionVerifier};
use crate::topic_read::{Flow, ReadError, TopicReader};

/// Where the audit trail is.
#[derive(Debug, Clone)]
pub struct VerifySource {
    pub brokers: String,
    pub client: Vec<(String, String)>,
    pub events_topic: String,
    pub checkpoints_topic: String,
    /// Checkpoint origins are `<origin>/<log name>/<partition>`.
    pub origin: String,
    /// The topic the stage wrote (the events topic, unless this is a copy).
    pub log_name: String,
    pub quiet: bool,
    pub stall: Duration,
    /// Findings kept per partition (all are counted).
    pub keep: usize,
}

/// What the verifier found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub events_topic: String,
    pub checkpoints_topic: String,
    pub key_name: String,
    pub partitions: BTreeMap<i32, PartitionReport>,
    pub counts: BTreeMap<Kind, u64>,
    pub findings: Vec<Finding>,
    /// Checkpoint records that are not notes of this log.
    pub foreign_checkpoints: u64,
}

impl VerifyReport {
    /// Whether any finding fails the verification.
    pub fn failed(&self) -> bool {
        self.counts.iter().any(|(k, n)| k.fails() && *n > 0) || self.foreign_checkpoints > 0
    }

    /// The summary a person reads.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "audit verify: {} ({} partitions) against {}, key `{}`",
            self.events_topic,
            self.partitions.len(),
            self.checkpoints_topic,
            self.key_name
        );
        for (p, r) in &self.partitions {
            let _ = writeln!(
                out,
                "  partition {p}: {} records (first leaf {}); checkpoints {} valid, {} invalid, {} unknown key; {} roots matched; unanchored tail {}; chains {} ended, {} open",
                r.records,
                r.first_leaf.map_or("-".to_string(), |l| l.to_string()),
                r.checkpoints_valid,
                r.checkpoints_invalid,
                r.checkpoints_unknown_key,
                r.roots_matched,
                r.unanchored_tail,
                r.ended_chains,
                r.open_chains
            );
        }
        if self.foreign_checkpoints > 0 {
            let _ = writeln!(
                out,
                "  {} checkpoint records name no partition of this log",
                self.foreign_checkpoints
            );
        }
        let failing: Vec<String> = self
            .counts
            .iter()
            .filter(|(k, n)| k.fails() && **n > 0)
            .map(|(k, n)| format!("{} {n}", kind_name(*k)))
            .collect();
        if let Some(d) = self.counts.get(&Kind::Duplicate) {
            let _ = writeln!(out, "  {d} benign duplicates (the same record twice)");
        }
        if failing.is_empty() && self.foreign_checkpoints == 0 {
            let _ = writeln!(
                out,
                "OK: every chain links, every leaf is in place, every checkpoint verifies."
            );
        } else {
            let _ = writeln!(out, "FAILED: {}", failing.join(", "));
            for f in self.findings.iter().take(20) {
                let _ = writeln!(
                    out,
                    "  {} partition {}{}{}: {}",
                    kind_name(f.kind),
                    f.partition,
                    f.leaf_index.map_or(String::new(), |l| format!(" leaf {l}")),
                    f.interaction_id
                        .as_ref()
                        .map_or(String::new(), |i| format!(" interaction {i}")),
                    f.detail
                );
            }
        }
        out
    }
}

fn kind_name(k: Kind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{k:?}"))
}

/// The origin line of a note.
fn origin_of(note: &str) -> Option<&str> {
    note.lines().next()
}

/// Reads and verifies the whole trail.
pub fn verify(src: &VerifySource, key: &NoteVerifier) -> Result<VerifyReport, ReadError> {
    let mut notes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let cps = TopicReader::open(&src.brokers, &src.client, &src.checkpoints_topic, src.stall)?;
    let mut foreign = 0u64;
    for range in cps.ranges().to_vec() {
        cps.read_partition(range, |_, value| -> Result<Flow, ReadError> {
            match value.and_then(|v| std::str::from_utf8(v).ok()) {
                Some(text) => match origin_of(text) {
                    Some(o) => notes
                        .entry(o.to_string())
                        .or_default()
                        .push(text.to_string()),
                    None => foreign += 1,
                },
                None => foreign += 1,
            }
            Ok(Flow::Continue)
        })?;
    }
    let events = TopicReader::open(&src.brokers, &src.client, &src.events_topic, src.stall)?;
    let bar = if src.quiet {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::with_draw_target(Some(events.total()), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} {bar:40} {pos}/{len} audit records ({per_sec}, {eta} left)",
        ) {
            b.set_style(style);
        }
        b
    };
    let mut report = VerifyReport {
        events_topic: src.events_topic.clone(),
        checkpoints_topic: src.checkpoints_topic.clone(),
        key_name: key.name().to_string(),
        ..VerifyReport::default()
    };
    for range in events.ranges().to_vec() {
        let p = range.0;
        let origin = format!("{}/{}/{}", src.origin, src.log_name, p);
        let mine = notes.remove(&origin).unwrap_or_default();
        let mut v = PartitionVerifier::new(p, &origin, &mine, key, src.keep);
        events.read_partition(range, |_, value| -> Result<Flow, ReadError> {
            bar.inc(1);
            match value.map(AuditRecord::decode) {
                Some(Ok(r)) => v.push(&r),
                Some(Err(e)) => v.unreadable(e.to_string()),
                None => v.unreadable("a record without a value".into()),
            }
            Ok(Flow::Continue)
        })?;
        let (r, findings, counts) = v.finish();
        report.partitions.insert(p, r);
        report.findings.extend(findings);
        for (k, n) in counts {
            *report.counts.entry(k).or_default() += n;
        }
    }
    bar.finish_and_clear();
    // Notes of partitions the topic does not have (or of another log).
    report.foreign_checkpoints = foreign + notes.values().map(|v| v.len() as u64).sum::<u64>();
    Ok(report)
}

/// The records of interaction `id`, in order, from its partition of
/// `events_topic` (the partition its id hashes to).
pub fn chain_of(
    brokers: &str,
    client: &[(String, String)],
    events_topic: &str,
    id: &str,
    stall: Duration,
) -> Result<Vec<AuditRecord>, ReadError> {
    let events = TopicReader::open(brokers, client, events_topic, stall)?;
    let n = i32::try_from(events.ranges().len()).unwrap_or(i32::MAX);
    let home = crate::partition::partition_for(id.as_bytes(), n);
    let mut out = Vec::new();
    if let Some(range) = events.ranges().iter().find(|r| r.0 == home).copied() {
        events.read_partition(range, |_, value| -> Result<Flow, ReadError> {
            if let Some(Ok(r)) = value.map(AuditRecord::decode) {
                if r.interaction_id == id {
                    out.push(r);
                }
            }
            Ok(Flow::Continue)
        })?;
    }
    Ok(out)
}
