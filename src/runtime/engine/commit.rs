//! Commits: the transaction commit, changelog records and the hand-over release.

use super::*;

impl<S: Stage> Core<S> {
    /// Transactions mode: waits for every output, adds the changelog and the
    /// consumed offsets, commits the transaction and opens the next one.
    /// `release`: partitions handed over by this transaction.
    pub(super) fn commit_transaction<C: ConsumerContext>(
        &mut self,
        producer: &Producer_,
        consumer: &BaseConsumer<C>,
        release: Option<&[i32]>,
    ) -> Result<(), String> {
        let timeout = Duration::from_secs(60);
        producer
            .flush(timeout)
            .map_err(|e| format!("waiting for the transaction's records: {e}"))?;
        self.apply_acks(producer);
        if let Some(f) = self.fatal.take() {
            return Err(f);
        }
        self.write_changelog(producer, None);
        if let Some(parts) = release {
            self.release(producer, parts);
        }
        let points = self.trackers.take_commit_points();
        if !points.is_empty() {
            let mut tpl = TopicPartitionList::new();
            for (t, p, o) in &points {
                let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
            }
            let meta = consumer
                .group_metadata()
                .ok_or_else(|| "no consumer group metadata for the transaction".to_string())?;
            producer
                .send_offsets_to_transaction(&tpl, &meta, timeout)
                .map_err(|e| format!("adding offsets to the transaction: {e}"))?;
        }
        if let Err(e) = producer.commit_transaction(timeout) {
            self.metrics
                .transactions
                .with_label_values(&["aborted"])
                .inc();
            let _ = producer.abort_transaction(timeout);
            return Err(format!("committing the transaction: {e}"));
        }
        self.metrics
            .transactions
            .with_label_values(&["committed"])
            .inc();
        if !points.is_empty() {
            self.metrics.commits.inc();
        }
        producer
            .begin_transaction()
            .map_err(|e| format!("opening a transaction: {e}"))
    }

    /// Writes each task's acknowledged outputs to its changelog partition
    /// (`only`: just these tasks). A task with nothing new writes an owner
    /// record instead: every call renews this instance's lease on the
    /// partitions it owns (see [`crate::state::OwnerMark`]).
    /// A checkpointed stage takes a checkpoint instead
    /// ([`Core::write_checkpoints`]).
    pub(super) fn write_changelog(&mut self, producer: &Producer_, only: Option<&[i32]>) {
        if self.checkpointed {
            self.write_checkpoints(producer, only);
            return;
        }
        let mut parts: Vec<i32> = self
            .deltas
            .keys()
            .copied()
            .filter(|p| only.is_none_or(|o| o.contains(p)))
            .collect();
        parts.sort_unstable();
        for p in parts {
            let mut wrote = false;
            while let Some(value) = self
                .deltas
                .get_mut(&p)
                .filter(|d| d.is_dirty())
                .map(|d| d.take_record(&self.owner_id))
            {
                self.send_changelog(producer, p, &value);
                wrote = true;
            }
            if !wrote {
                let value = owner_record(&self.owner_id, false);
                self.send_changelog(producer, p, &value);
            }
        }
    }

    /// Hands partitions over: their changelog says this instance released
    /// them. Call once their outputs are acknowledged, their changelog
    /// written and their offsets committed.
    pub(super) fn release(&mut self, producer: &Producer_, parts: &[i32]) {
        let value = owner_record(&self.owner_id, true);
        for p in parts {
            if self.deltas.contains_key(p) {
                self.send_changelog(producer, *p, &value);
            }
        }
    }

    pub(super) fn send_changelog(&mut self, producer: &Producer_, p: i32, value: &[u8]) {
        let topic = self.settings.plan.changelog_topic.clone();
        let key = p.to_string();
        self.metrics.changelog_records.inc();
        self.send(
            producer,
            &topic,
            p,
            Some(key.as_bytes()),
            value,
            OwnedHeaders::new(),
            None,
            AckMeta {
                ticket: 0,
                kind: AckKind::Changelog,
                task: p,
                state: AckState::None,
                unit: 0,
                reference: false,
            },
        );
    }
}
