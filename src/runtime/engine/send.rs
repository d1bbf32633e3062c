//! Producing: the size check, the produce call with its retry on a full queue,
//! and outputs the broker refuses for a reason of their own, sent as dead letters.

use super::*;

/// The headers a dead letter sent again by reference keeps.
const DEAD_LETTER_HEADERS: [&str; 9] = [
    headers::ERROR_CLASS,
    headers::ERROR_MESSAGE,
    headers::ERROR_STAGE,
    headers::SOURCE_TOPIC,
    headers::SOURCE_PARTITION,
    headers::SOURCE_OFFSET,
    headers::SOURCE_UNIT,
    headers::FAILED_AT,
    headers::LINEAGE_TOKEN,
];

impl<S: Stage> Core<S> {
    /// Produces a built dead letter on the source's dead-letter partition.
    pub(super) fn send_dead_letter(
        &mut self,
        producer: &Producer_,
        source: &SourceRef,
        dl: dead_letter::DeadLetter<'_>,
        timestamp_ms: Option<i64>,
        mut meta: AckMeta,
    ) {
        meta.reference = dl.reference;
        let mut hs = OwnedHeaders::new_with_capacity(dl.headers.len());
        for (k, v) in &dl.headers {
            hs = hs.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let partition = source.partition.max(0) % self.settings.dead_letter_partitions.max(1);
        let topic = self.topics.dead_letter.clone();
        self.send(
            producer,
            &topic,
            partition,
            dl.key.as_deref(),
            &dl.value,
            hs,
            timestamp_ms,
            meta,
        );
    }

    /// The most bytes a record of `kind` may take (`None`: not checked).
    pub(super) fn limit(&self, kind: AckKind) -> Option<usize> {
        let l = self.settings.limits.get();
        match kind {
            AckKind::Emit(port, _) => l.ports.get(usize::from(port.0)).copied(),
            AckKind::Forward => Some(l.repartition),
            AckKind::DeadLetter(_) | AckKind::Marker | AckKind::Changelog => None,
        }
    }

    /// An output refused for a reason of its own (too large, invalid) goes
    /// to the dead-letter topic instead, by reference when it does not fit
    /// there either, and the run goes on. Its ticket's hold passes to the
    /// dead letter, so the input offset is committed once that is
    /// acknowledged, and the dead-letter position joins the changelog, so a
    /// record read again after a restart is not dead-lettered twice.
    /// Changelog records, markers and dead letters already by reference
    /// cannot be replaced: those stop the run.
    pub(super) fn reject_output(&mut self, producer: &Producer_, r: Reject) {
        let Reject {
            mut meta,
            topic,
            error,
            failed,
        } = r;
        let stage = match meta.kind {
            AckKind::Emit(..) => "output",
            AckKind::Forward => "repartition",
            AckKind::DeadLetter(_) if !meta.reference => {
                // A dead letter refused whole: send it again by reference,
                // with its own headers.
                tracing::warn!(topic = %topic, size = failed.digest.size, error = %error, "Dead letter refused; sending it by reference.");
                let mut headers: Vec<(&'static str, String)> = Vec::new();
                for (k, v) in failed.headers {
                    if let Some(known) = DEAD_LETTER_HEADERS.iter().find(|h| **h == k) {
                        headers.push((known, v));
                    }
                }
                let source = self.origin_source(meta.ticket);
                let dl = dead_letter::fit_reference(
                    dead_letter::reference(None, headers, failed.digest),
                    self.settings.limits.get().dead_letter,
                    self.settings.plan.dead_letter_prefix,
                );
                self.send_dead_letter(producer, &source, dl, None, meta);
                return;
            }
            _ => {
                self.metrics
                    .produce_errors
                    .with_label_values(&[topic.as_str()])
                    .inc();
                if self.fatal.is_none() {
                    tracing::error!(topic = %topic, error = %error, "Produce failed and the record cannot be dead-lettered; stopping without committing past it.");
                    self.fatal = Some(format!("producing to {topic} failed: {error}"));
                }
                return;
            }
        };
        let pos = self
            .trackers
            .origin(meta.ticket)
            .map(|(t, offset)| DeadLetterPos {
                source: t.role.code(),
                offset,
                unit: meta.unit,
            });
        if let (Some(pos), Some(seen)) = (pos, self.dead_lettered.get(&meta.task)) {
            if seen.contains(&pos) {
                self.metrics
                    .duplicates
                    .with_label_values(&["dead_letter_replay"])
                    .inc();
                self.trackers.release(meta.ticket);
                return;
            }
        }
        let source = self.origin_source(meta.ticket);
        tracing::warn!(
            topic = %topic,
            class = failed.class,
            size = failed.digest.size,
            source_topic = %source.topic,
            source_partition = source.partition,
            source_offset = source.offset,
            "Output record refused; sent to the dead-letter topic instead."
        );
        let message = format!(
            "{stage} record of {} bytes for {topic} refused: {error}",
            failed.digest.size
        );
        let token = failed
            .headers
            .iter()
            .find(|(k, _)| k == headers::LINEAGE_TOKEN)
            .map(|(_, v)| v.as_str());
        let failed_at = format_iso_ms(now_ms());
        let spec = dead_letter::Spec {
            class: failed.class,
            message: &message,
            stage,
            source: &source,
            unit: meta.unit as usize,
            failed_at: &failed_at,
            lineage_token: token,
            key: failed.key.as_deref(),
        };
        let dl = dead_letter::build(
            &spec,
            Rejected::Digest(failed.digest.clone()),
            self.settings.limits.get().dead_letter,
            self.settings.plan.dead_letter_prefix,
        );
        meta.kind = AckKind::DeadLetter(failed.class);
        meta.state = pos.map_or(AckState::None, AckState::DeadLetter);
        self.send_dead_letter(producer, &source, dl, None, meta);
    }

    /// Dead-letters queued rejects (not re-entrant: a reject found while
    /// sending one is queued and taken by the same loop).
    pub(super) fn drain_rejects(&mut self, producer: &Producer_) {
        if self.rejecting {
            return;
        }
        self.rejecting = true;
        while let Some(r) = self.rejects.pop() {
            self.reject_output(producer, r);
        }
        self.rejecting = false;
    }

    /// Produces one record; waits (serving delivery reports) while the
    /// producer queue is full, so memory stays bounded.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn send(
        &mut self,
        producer: &Producer_,
        topic: &str,
        partition: i32,
        key: Option<&[u8]>,
        value: &[u8],
        headers: OwnedHeaders,
        timestamp_ms: Option<i64>,
        meta: AckMeta,
    ) {
        self.send_value(
            producer,
            topic,
            partition,
            key,
            Some(value),
            headers,
            timestamp_ms,
            meta,
        );
    }

    /// [`Core::send`] of a record that may have no value (a tombstone).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn send_value(
        &mut self,
        producer: &Producer_,
        topic: &str,
        partition: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: OwnedHeaders,
        timestamp_ms: Option<i64>,
        meta: AckMeta,
    ) {
        let mut record: BaseRecord<'_, [u8], [u8], Box<AckMeta>> =
            BaseRecord::with_opaque_to(topic, Box::new(meta))
                .partition(partition)
                .headers(headers);
        if let Some(v) = value {
            record = record.payload(v);
        }
        let value = value.unwrap_or_default();
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(ts) = timestamp_ms {
            record = record.timestamp(ts);
        }
        let task = record.delivery_opaque.task;
        // The headers this runtime puts on outputs and forwarded
        // records are small and bounded (a lineage token of at most 256
        // bytes, the state header, a reason, one hop): far from the limit,
        // key and value alone decide, without walking the headers.
        const HEADER_ALLOWANCE: usize = 4096;
        if let Some(limit) = self
            .limit(record.delivery_opaque.kind)
            .filter(|l| key.map_or(0, <[u8]>::len) + value.len() + HEADER_ALLOWANCE > *l)
        {
            let size = dead_letter::record_size(
                key.map_or(0, <[u8]>::len),
                value.len(),
                record
                    .headers
                    .iter()
                    .flat_map(|h| h.iter())
                    .map(|h| (h.key, h.value.unwrap_or_default())),
            );
            if size > limit {
                let error = format!("about {size} bytes exceed the {limit}-byte limit");
                let failed = self.failed_record(dead_letter::TOO_LARGE, key, value, &record);
                self.rejects.push(Reject {
                    meta: *record.delivery_opaque,
                    topic: topic.to_string(),
                    error,
                    failed,
                });
                self.drain_rejects(producer);
                return;
            }
        }
        loop {
            match producer.send(record) {
                Ok(()) => {
                    *self.produced_unacked.entry(task).or_default() += 1;
                    return;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(10));
                    self.apply_acks(producer);
                }
                Err((e, r)) => {
                    if let Some(class) = e.rdkafka_error_code().and_then(dead_letter::record_level)
                    {
                        let failed = self.failed_record(class, key, value, &r);
                        self.rejects.push(Reject {
                            meta: *r.delivery_opaque,
                            topic: topic.to_string(),
                            error: e.to_string(),
                            failed,
                        });
                        self.drain_rejects(producer);
                        return;
                    }
                    let meta = r.delivery_opaque;
                    self.metrics
                        .produce_errors
                        .with_label_values(&[topic])
                        .inc();
                    // The first failure is logged; the records that follow
                    // it until the run stops are only counted.
                    if self.fatal.is_none() {
                        tracing::error!(topic, error = %e, ticket = meta.ticket, "Produce failed; stopping without committing past this record.");
                        self.fatal = Some(format!("producing to {topic} failed: {e}"));
                    }
                    return;
                }
            }
        }
    }

    /// What a refused record's dead letter needs of it.
    pub(super) fn failed_record(
        &self,
        class: &'static str,
        key: Option<&[u8]>,
        value: &[u8],
        record: &BaseRecord<'_, [u8], [u8], Box<AckMeta>>,
    ) -> FailedRecord {
        FailedRecord::new(
            class,
            key,
            value,
            record.headers.as_ref(),
            self.settings.plan.dead_letter_prefix,
        )
    }
}
