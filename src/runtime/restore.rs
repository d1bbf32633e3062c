//! State restore for one assigned partition: read its changelog partition,
//! then the output topics' tail after the offsets the changelog covers
//! (see [`crate::state`]). Runs on its own thread with its own assign-only
//! consumer, so partitions that stay keep being processed meanwhile.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;

use super::client::ClientSettings;
use super::rewind::{Rewind, Step, INITIAL_WINDOW, STALL_AFTER};
use super::RuntimeError;
use crate::headers;
use crate::model::now_ms;
use crate::partition::partition_for;
use crate::stage::Role;
use crate::state::{DeadLetterPos, Restored};

/// Everything a restore needs to know; cheap to clone onto a thread.
#[derive(Debug, Clone)]
pub struct RestoreSpec {
    pub client: ClientSettings,
    pub group_id: String,
    /// The input partition whose state is restored.
    pub partition: i32,
    /// Input (= changelog) partition count.
    pub partitions: i32,
    pub input_topic: String,
    /// The stage's input topics after the first.
    pub co_inputs: Vec<String>,
    pub repartition_topic: String,
    pub changelog_topic: String,
    /// (topic, partition count) of each output port, whose records carry
    /// the `cx.state` header.
    pub outputs: Vec<(String, i32)>,
    /// Checkpointed stages: indexes into `outputs` of the ports whose
    /// records after the checkpoint are handed back to the task
    /// ([`crate::stage::Stage::tail_ports`]).
    pub tail_ports: Vec<usize>,
    pub dead_letter: (String, i32),
    /// State TTL: changelog keys older than this are not restored (the
    /// stage's [`crate::stage::Stage::state_ttl`]).
    pub ttl: Duration,
    /// Transactions mode: aborted records are not state.
    pub read_committed: bool,
    /// Give up (and let the caller retry) after this long.
    pub timeout: Duration,
    /// This instance's owner id (changelog owner marks).
    pub owner_id: String,
    /// A previous owner whose last changelog record is older than this is
    /// gone (owners renew once per commit interval).
    pub lease: Duration,
    /// Stop waiting for a previous owner that keeps renewing but never
    /// releases after this long (and say so).
    pub max_handover_wait: Duration,
    /// Set when the partition was revoked meanwhile: stop waiting.
    pub cancel: Arc<AtomicBool>,
    /// The stage's state is checkpointed: restore its tables instead
    /// (see [`super::restore_tables`]).
    pub checkpointed: bool,
}

/// Restored state and how long it took.
#[derive(Debug)]
pub struct RestoreOutcome {
    pub partition: i32,
    /// Emitted-state stages' state (empty for checkpointed ones).
    pub state: Restored,
    /// Checkpointed stages' state.
    pub tables: Option<super::restore_tables::TablesOutcome>,
    pub took: Duration,
    /// Time spent waiting for the previous owner to hand over.
    pub waited: Duration,
}

/// Which output partitions task `p` can have written to.
fn output_partitions(p: i32, partitions: i32, out: i32) -> Vec<i32> {
    if out == partitions {
        vec![p]
    } else {
        (0..out).collect()
    }
}

/// Rebuilds partition `spec.partition`'s state.
pub fn restore(spec: &RestoreSpec) -> Result<RestoreOutcome, RuntimeError> {
    if spec.checkpointed {
        return super::restore_tables::restore_tables(spec);
    }
    let started = Instant::now();
    let deadline = started + spec.timeout;
    let p = spec.partition;
    // One consumer per topic: the changelog first (it says where the output
    // scan starts), then the outputs and the dead letters in parallel.
    let changelog_consumer = &restore_consumer(spec)?;
    let output_consumers = spec
        .outputs
        .iter()
        .map(|_| restore_consumer(spec))
        .collect::<Result<Vec<_>, _>>()?;
    let dlq_consumer = &restore_consumer(spec)?;

    let mut state = Restored::default();
    let oldest_live_ms = now_ms() - i64::try_from(spec.ttl.as_millis()).unwrap_or(i64::MAX);

    // 1. The changelog, from its beginning (retention bounds it).
    let apply = |state: &mut Restored, m: &rdkafka::message::BorrowedMessage<'_>| {
        let at_ms = m.timestamp().to_millis().unwrap_or(0);
        let expired = at_ms != 0 && at_ms < oldest_live_ms;
        if let Some(v) = m.payload() {
            if let Err(e) = state.apply_changelog(v, expired, at_ms) {
                tracing::warn!(partition = p, offset = m.offset(), error = %e, "Skipping an unreadable changelog record.");
            }
        }
    };
    let reached = read_to_end(
        changelog_consumer,
        &spec.changelog_topic,
        &[(p, Offset::Beginning)],
        deadline,
        |m| apply(&mut state, m),
    )?;

    // 1b. Hand-over: while another instance still holds the partition (its
    // lease is live and it has not released it), it may still emit for it;
    // follow the changelog until it releases or its lease lapses.
    let mut end = reached.first().map_or(0, |(_, o)| *o);
    let wait_started = Instant::now();
    let mut announced = false;
    while let Some(owner) = state.owner.clone() {
        if owner.released || owner.id == spec.owner_id {
            if announced {
                tracing::info!(
                    partition = p,
                    released = owner.released,
                    "The previous owner handed the partition over."
                );
            }
            break;
        }
        let age = Duration::from_millis(u64::try_from(now_ms() - owner.at_ms).unwrap_or(0));
        if age >= spec.lease {
            if announced {
                tracing::info!(
                    partition = p,
                    "The previous owner's lease lapsed; taking the partition over."
                );
            }
            break;
        }
        if wait_started.elapsed() >= spec.max_handover_wait {
            tracing::warn!(
                partition = p,
                waited_s = wait_started.elapsed().as_secs(),
                "The previous owner still renews its lease but has not handed the partition over; taking it over anyway (records it emits from now on may be duplicated)."
            );
            break;
        }
        if spec.cancel.load(Ordering::Relaxed) {
            return Err(RuntimeError::Setup(
                "restore cancelled: the partition was revoked".into(),
            ));
        }
        if !announced {
            announced = true;
            tracing::info!(
                partition = p,
                "Waiting for the previous owner to hand the partition over."
            );
        }
        end = follow(
            changelog_consumer,
            &spec.changelog_topic,
            p,
            end,
            Duration::from_millis(250),
            |m| apply(&mut state, m),
        )?;
        if Instant::now() > deadline {
            return Err(RuntimeError::Setup(
                "restoring state: the previous owner did not hand the partition over in time"
                    .into(),
            ));
        }
    }
    let waited = if announced {
        wait_started.elapsed()
    } else {
        Duration::ZERO
    };

    // 2. The outputs after what the changelog covers.
    let start = |topic: &str, q: i32| match state.covers.get(&(topic.to_string(), q)) {
        Some(o) => Offset::Offset(*o),
        None => Offset::Beginning,
    };
    let emitted_parts = |topic: &str, n: i32| -> Vec<(i32, Offset)> {
        output_partitions(p, spec.partitions, n)
            .into_iter()
            .map(|q| (q, start(topic, q)))
            .collect()
    };
    let output_parts: Vec<Vec<(i32, Offset)>> = spec
        .outputs
        .iter()
        .map(|(topic, n)| emitted_parts(topic, *n))
        .collect();
    let dlq_q = p % spec.dead_letter.1.max(1);
    let dlq_parts = [(dlq_q, start(&spec.dead_letter.0, dlq_q))];
    let (outputs, dead) = std::thread::scope(|s| {
        let scans: Vec<_> = spec
            .outputs
            .iter()
            .zip(&output_consumers)
            .zip(&output_parts)
            .map(|(((topic, _), consumer), parts)| {
                s.spawn(move || scan_emitted(consumer, spec, topic, parts, deadline))
            })
            .collect();
        let dead = s.spawn(|| {
            let mut found = HashSet::new();
            let reached = read_to_end(
                dlq_consumer,
                &spec.dead_letter.0,
                &dlq_parts,
                deadline,
                |m| {
                    if let Some(pos) = dead_letter_pos(m, spec, p) {
                        found.insert(pos);
                    }
                },
            )?;
            Ok::<_, RuntimeError>((found, reached))
        });
        let panicked = || RuntimeError::Join("restore reader panicked".into());
        let outputs: Vec<_> = scans
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(panicked())))
            .collect();
        (outputs, dead.join().unwrap_or_else(|_| Err(panicked())))
    });
    let mut ends: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for ((topic, _), result) in spec.outputs.iter().zip(outputs) {
        let (found, reached) = result?;
        for (id, h) in found {
            if let Err(e) = state.apply_output(&id, &h) {
                tracing::warn!(partition = p, topic = %topic, error = %e, "Skipping an output record without readable state.");
            }
        }
        for (q, o) in reached {
            ends.insert((topic.clone(), q), o);
        }
    }
    let (found, reached) = dead?;
    for pos in found {
        state.apply_dead_letter(pos);
    }
    for (q, o) in reached {
        ends.insert((spec.dead_letter.0.clone(), q), o);
    }
    // The next changelog record covers everything read here.
    for (k, o) in ends {
        let e = state.covers.entry(k).or_insert(o);
        *e = (*e).max(o);
    }
    Ok(RestoreOutcome {
        partition: p,
        state,
        tables: None,
        took: started.elapsed(),
        waited,
    })
}

/// Reads partition `q` of `topic` from `from` (the offset after the last
/// record read, so the start of a batch) for `how_long`; returns where it
/// got to.
fn follow<F>(
    consumer: &BaseConsumer<QuietContext>,
    topic: &str,
    q: i32,
    from: i64,
    how_long: Duration,
    mut f: F,
) -> Result<i64, RuntimeError>
where
    F: FnMut(&rdkafka::message::BorrowedMessage<'_>),
{
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, q, Offset::Offset(from))
        .map_err(RuntimeError::broker("building a restore assignment"))?;
    consumer
        .assign(&tpl)
        .map_err(RuntimeError::broker("assigning a restore consumer"))?;
    let until = Instant::now() + how_long;
    let mut next = from;
    while Instant::now() < until {
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(m)) if m.offset() >= next => {
                next = m.offset() + 1;
                f(&m);
            }
            Some(Err(e)) if !matches!(e, KafkaError::PartitionEOF(_)) => {
                tracing::debug!(topic, error = %e, "Restore consumer error (retried).");
            }
            _ => {}
        }
    }
    let _ = consumer.unassign();
    Ok(next)
}

/// (record key, `cx.state` header) of every output record of
/// task `spec.partition` in `parts`, and where each partition was read to.
#[allow(clippy::type_complexity)]
fn scan_emitted(
    consumer: &BaseConsumer<QuietContext>,
    spec: &RestoreSpec,
    topic: &str,
    parts: &[(i32, Offset)],
    deadline: Instant,
) -> Result<(Vec<(String, String)>, Vec<(i32, i64)>), RuntimeError> {
    let mut found = Vec::new();
    let reached = read_to_end(consumer, topic, parts, deadline, |m| {
        let Some(key) = m.key() else { return };
        if partition_for(key, spec.partitions) != spec.partition {
            return; // another task's key
        }
        let header = m.headers().and_then(|hs| {
            hs.iter()
                .find(|h| h.key == headers::STATE)
                .and_then(|h| h.value)
                .and_then(|v| std::str::from_utf8(v).ok())
                .map(str::to_string)
        });
        if let (Ok(id), Some(h)) = (std::str::from_utf8(key), header) {
            found.push((id.to_string(), h));
        }
    })?;
    Ok((found, reached))
}

/// Client context of the assign-only consumers (restore readers, the
/// repartition reader): reaching a partition's end is how they know where
/// they are, not an error, so it is not logged; other client errors are
/// warnings naming the consumer.
pub struct QuietContext {
    /// Which consumer, for the log (`"restore"`, `"repartition"`).
    pub what: &'static str,
}

impl ClientContext for QuietContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF) {
            return;
        }
        tracing::warn!(%error, reason, consumer = self.what, "Consumer client error (librdkafka retries).");
    }
}

impl ConsumerContext for QuietContext {}

pub(super) fn restore_consumer(
    spec: &RestoreSpec,
) -> Result<BaseConsumer<QuietContext>, RuntimeError> {
    spec.client
        .with_defaults(&[
            ("group.id", &format!("{}.restore", spec.group_id)),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "true"),
            ("auto.offset.reset", "earliest"),
            (
                "isolation.level",
                if spec.read_committed {
                    "read_committed"
                } else {
                    "read_uncommitted"
                },
            ),
            ("fetch.wait.max.ms", "10"),
            ("queued.max.messages.kbytes", "65536"),
        ])
        .create_with_context(QuietContext { what: "restore" })
        .map_err(RuntimeError::client("restore consumer"))
}

/// The source position of a dead letter written by task `p`.
pub(super) fn dead_letter_pos<M: Message>(
    m: &M,
    spec: &RestoreSpec,
    p: i32,
) -> Option<DeadLetterPos> {
    let hs = m.headers()?;
    let get = |k: &str| {
        hs.iter()
            .find(|h| h.key == k)
            .and_then(|h| h.value)
            .and_then(|v| std::str::from_utf8(v).ok())
    };
    let topic = get(headers::SOURCE_TOPIC)?;
    let source = if topic == spec.repartition_topic {
        Role::Repartition
    } else if topic == spec.input_topic {
        Role::Input
    } else {
        let n = spec.co_inputs.iter().position(|t| t == topic)?;
        Role::CoInput(u8::try_from(n).ok()?)
    };
    let partition: i32 = get(headers::SOURCE_PARTITION)?.parse().ok()?;
    if partition != p {
        return None;
    }
    Some(DeadLetterPos {
        source: source.code(),
        offset: get(headers::SOURCE_OFFSET)?.parse().ok()?,
        unit: get(headers::SOURCE_UNIT)
            .and_then(|u| u.parse().ok())
            .unwrap_or(0),
    })
}

/// Reads `parts` of `topic` from their start offsets to their current end
/// (the consumer's end-of-partition event), calling `f` for each record.
/// Returns the offset each partition was read up to.
pub(super) fn read_to_end<F>(
    consumer: &BaseConsumer<QuietContext>,
    topic: &str,
    parts: &[(i32, Offset)],
    deadline: Instant,
    mut f: F,
) -> Result<Vec<(i32, i64)>, RuntimeError>
where
    F: FnMut(&rdkafka::message::BorrowedMessage<'_>),
{
    // Offsets inside the log start a little earlier (see Rewind): some
    // brokers skip the rest of a batch when a fetch starts inside it.
    let mut rewinds: BTreeMap<i32, Rewind> = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for (q, o) in parts {
        let start = match o {
            Offset::Offset(o) if *o > 0 => {
                let rw = Rewind::new(*o, INITIAL_WINDOW);
                let start = Offset::Offset(rw.start());
                rewinds.insert(*q, rw);
                start
            }
            other => *other,
        };
        tpl.add_partition_offset(topic, *q, start)
            .map_err(RuntimeError::broker("building a restore assignment"))?;
    }
    consumer
        .assign(&tpl)
        .map_err(RuntimeError::broker("assigning a restore consumer"))?;
    let mut pos: BTreeMap<i32, i64> = parts
        .iter()
        .map(|(q, o)| (*q, if let Offset::Offset(o) = o { *o } else { 0 }))
        .collect();
    let mut done: HashSet<i32> = HashSet::new();
    while done.len() < parts.len() {
        if Instant::now() > deadline {
            let _ = consumer.unassign();
            return Err(RuntimeError::Setup(format!(
                "restoring state: reading `{topic}` did not reach its end in time"
            )));
        }
        // A start inside the last batch gets no record and no end event
        // from Tansu: go further back (see Rewind).
        let now = Instant::now();
        for (q, rw) in rewinds.iter_mut() {
            if done.contains(q) {
                continue;
            }
            if let Step::Reseek(from) = rw.stalled(now, STALL_AFTER) {
                tracing::debug!(
                    topic,
                    partition = q,
                    from,
                    "No record at the restore start; reading from further back."
                );
                consumer
                    .seek(topic, *q, Offset::Offset(from), Duration::from_secs(10))
                    .map_err(RuntimeError::broker("seeking a restore consumer"))?;
                rw.seeked();
            }
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let q = m.partition();
                if let Some(rw) = rewinds.get_mut(&q) {
                    match rw.step(m.offset()) {
                        Step::Skip => continue,
                        Step::Reseek(from) => {
                            consumer
                                .seek(topic, q, Offset::Offset(from), Duration::from_secs(10))
                                .map_err(RuntimeError::broker("seeking a restore consumer"))?;
                            rw.seeked();
                            continue;
                        }
                        Step::Process => {
                            rewinds.remove(&q);
                        }
                    }
                }
                pos.insert(q, m.offset() + 1);
                f(&m);
            }
            Some(Err(KafkaError::PartitionEOF(q))) => {
                if let Some(Step::Reseek(from)) = rewinds.get_mut(&q).map(Rewind::end_of_partition)
                {
                    consumer
                        .seek(topic, q, Offset::Offset(from), Duration::from_secs(10))
                        .map_err(RuntimeError::broker("seeking a restore consumer"))?;
                    if let Some(rw) = rewinds.get_mut(&q) {
                        rw.seeked();
                    }
                    continue;
                }
                done.insert(q);
            }
            Some(Err(e)) => {
                tracing::debug!(topic, error = %e, "Restore consumer error (retried).");
            }
            None => {}
        }
    }
    let _ = consumer.unassign();
    Ok(pos.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn co_partitioned_outputs_are_read_from_one_partition() {
        assert_eq!(output_partitions(3, 8, 8), vec![3]);
        assert_eq!(output_partitions(3, 8, 4), vec![0, 1, 2, 3]);
    }
}
