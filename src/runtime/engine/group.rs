//! The consumer group side: rebalance callbacks (assign, revoke and the
//! hand-over of revoked partitions) and the commit callback.

use super::*;

impl<S: Stage> ClientContext for GroupContext<S> {
    fn stats(&self, stats: Statistics) {
        for (topic, t) in &stats.topics {
            for (p, part) in &t.partitions {
                if *p >= 0 && part.consumer_lag >= 0 {
                    self.metrics
                        .consumer_lag
                        .with_label_values(&[topic, &p.to_string()])
                        .set(part.consumer_lag);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Reaching a partition's end is news, not an error (it drives idleness).
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF) {
            tracing::debug!(reason, "End of partition.");
            return;
        }
        tracing::warn!(%error, reason, "Consumer client error (librdkafka retries).");
    }
}

impl<S: Stage> ConsumerContext for GroupContext<S> {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let parts: Vec<i32> = tpl
                .elements()
                .iter()
                .filter(|e| e.topic() == &*self.topics.input)
                .map(|e| e.partition())
                .collect();
            let lost = consumer.assignment_lost();
            self.metrics
                .rebalances
                .with_label_values(&[if lost { "lost" } else { "revoke" }])
                .inc();
            self.metrics
                .partitions_moved
                .with_label_values(&[if lost { "lost" } else { "revoked" }])
                .inc_by(parts.len() as u64);
            self.revoke(consumer, &parts, lost);
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                self.metrics.rebalances.with_label_values(&["assign"]).inc();
                // Nothing is read from a new partition until its state is
                // restored (on another thread; the others keep running).
                let mut hold = TopicPartitionList::new();
                let mut parts = Vec::new();
                for e in tpl.elements() {
                    if e.topic() == &*self.topics.input {
                        let _ = hold.add_partition(&self.topics.input, e.partition());
                        parts.push(e.partition());
                    }
                }
                if hold.count() > 0 {
                    if let Err(e) = consumer.pause(&hold) {
                        tracing::warn!(error = %e, "Could not pause partitions for restore.");
                    }
                }
                let mut core = lock(&self.core);
                for p in &parts {
                    core.assign(*p);
                }
                self.metrics
                    .partitions_moved
                    .with_label_values(&["assigned"])
                    .inc_by(parts.len() as u64);
                tracing::info!(partitions = ?parts, "Partitions assigned; restoring their state.");
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => tracing::warn!(error = %e, "Rebalance error."),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        let failed: Vec<(String, i32, i64)> = offsets
            .elements()
            .iter()
            .filter(|e| result.is_err() || e.error().is_err())
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.topic().to_string(), e.partition(), o)),
                _ => None,
            })
            .collect();
        if failed.is_empty() {
            return;
        }
        self.metrics.commit_errors.inc();
        match result {
            Err(e) => tracing::warn!(error = %e, partitions = failed.len(), "Offset commit failed; it is sent again at the next interval."),
            Ok(()) => tracing::warn!(partitions = failed.len(), "Offset commit failed for some partitions; they are sent again at the next interval."),
        }
        lock(&self.failed_commits).extend(failed);
    }
}

impl<S: Stage> GroupContext<S> {
    /// Commit points whose commit failed are sent again at the next
    /// interval, moved or not.
    pub(super) fn resend_failed_commits(&self, core: &mut Core<S>) {
        let failed = std::mem::take(&mut *lock(&self.failed_commits));
        for (topic, p, o) in failed {
            let Some(role) = self.topics.role_of(&topic) else {
                continue;
            };
            core.trackers.commit_failed(role, p, o);
        }
    }

    /// Hands revoked partitions over: what was sent is delivered, its state
    /// written to the changelog, offsets committed up to the oldest record
    /// still buffered, then the partitions' state is dropped.
    ///
    /// In `replay` mode what a task buffers is *not* flushed: the input
    /// records it holds are not committed, so the next owner reads them
    /// again and processes them with what follows (flushing would release
    /// them early, ahead of records the next owner reads). Transactions mode
    /// flushes: its next owner reads `read_committed` from the offsets this
    /// transaction commits. A stop ([`Engine::shutdown`]) always flushes.
    pub(super) fn revoke(&self, consumer: &BaseConsumer<Self>, parts: &[i32], lost: bool) {
        if parts.is_empty() {
            return;
        }
        let mut core = lock(&self.core);
        if !lost {
            let flush = self.transactional;
            if flush {
                for p in parts {
                    core.flush_partition(&self.producer, *p);
                }
            }
            // Wait until everything sent for these partitions is
            // acknowledged (records still buffered stay in flight).
            let deadline = Instant::now() + Duration::from_secs(60);
            while parts
                .iter()
                .any(|p| core.partition_unacknowledged(*p, flush))
                && Instant::now() < deadline
            {
                self.producer.poll(Duration::from_millis(20));
                core.apply_acks(&self.producer);
            }
            if self.transactional {
                // Outputs, changelog and offsets of every partition commit
                // together before the revoked ones move.
                if let Err(e) = core.commit_transaction(&self.producer, consumer, Some(parts)) {
                    core.fatal.get_or_insert(e);
                }
            } else {
                // Hand over: the next owner restores from the changelog.
                core.write_changelog(&self.producer, Some(parts));
            }
            let mut tpl = TopicPartitionList::new();
            for p in parts {
                for role in self.topics.roles() {
                    if let Some(o) = core.trackers.commit_point(role, *p) {
                        let topic = self.topics.of(role);
                        let _ = tpl.add_partition_offset(&topic, *p, Offset::Offset(o));
                    }
                }
            }
            if tpl.count() > 0 && !self.transactional {
                match consumer.commit(&tpl, CommitMode::Sync) {
                    Ok(()) => self.metrics.commits.inc(),
                    Err(e) => {
                        self.metrics.commit_errors.inc();
                        tracing::warn!(error = %e, "Commit on revoke failed; the next owner re-reads from the last commit.");
                    }
                }
            }
            if !self.transactional {
                core.release(&self.producer, parts);
            }
            // The next owner waits for the release (or for the lease to
            // lapse) before it reads the outputs' tail.
            if let Err(e) = self.producer.flush(Duration::from_secs(10)) {
                tracing::warn!(error = %e, "Could not deliver the hand-over records; the next owner waits for the lease to lapse.");
            }
        }
        if lost && self.transactional && core.fatal.is_none() {
            // The open transaction holds outputs of partitions this instance
            // no longer owns; their offsets can no longer be committed.
            core.fatal = Some(
                "partitions were lost (session timeout) in transactions mode; restart to restore state".into(),
            );
        }
        let left: usize = parts
            .iter()
            .filter_map(|p| core.tasks.get(p))
            .map(StageTask::buffered)
            .sum();
        self.metrics.handed_over.inc_by(left as u64);
        let side_roles = self.topics.side_roles();
        let mut side_tpls: Vec<TopicPartitionList> = side_roles
            .iter()
            .map(|_| TopicPartitionList::new())
            .collect();
        for p in parts {
            for (role, tpl) in side_roles.iter().zip(side_tpls.iter_mut()) {
                if core.trackers.slot(*role, *p).is_some() {
                    let _ = tpl.add_partition(&self.topics.of(*role), *p);
                }
            }
            core.unassign(*p);
        }
        for (role, tpl) in side_roles.iter().zip(&side_tpls) {
            if tpl.count() == 0 {
                continue;
            }
            if let Some(Err(e)) = self.side_of(*role).map(|c| c.incremental_unassign(tpl)) {
                tracing::warn!(error = %e, ?role, "Could not unassign side partitions.");
            }
        }
        self.metrics
            .assigned_partitions
            .set(core.tasks.len() as i64);
        tracing::info!(partitions = ?parts, lost, "Partitions revoked.");
    }
}
