//! The life of an owned partition: restore on assignment, install as a task,
//! unassign, end-of-partition and stalled-resume handling, in-flight counts.

use super::*;

impl<S: Stage> Core<S> {
    pub(super) fn restore_spec(&self, p: i32) -> RestoreSpec {
        let s = &self.settings;
        let plan = &s.plan;
        RestoreSpec {
            client: s.client.clone(),
            group_id: s.group_id.clone(),
            partition: p,
            partitions: s.partitions,
            input_topic: plan.input_topic.clone(),
            co_inputs: plan.co_inputs.clone(),
            repartition_topic: plan.repartition_topic.clone(),
            changelog_topic: plan.changelog_topic.clone(),
            outputs: self
                .ports
                .iter()
                .map(|o| (o.topic.to_string(), o.partitions))
                .collect(),
            dead_letter: (plan.dead_letter_topic.clone(), s.dead_letter_partitions),
            ttl: self.stage.state_ttl(),
            read_committed: plan.delivery == Delivery::Transactions,
            timeout: Duration::from_secs(300),
            owner_id: self.owner_id.clone(),
            lease: self.lease(),
            max_handover_wait: self.lease() * 10,
            tail_ports: self
                .stage
                .tail_ports()
                .into_iter()
                .map(|p| usize::from(p.0))
                .collect(),
            cancel: Arc::new(AtomicBool::new(false)),
            checkpointed: self.checkpointed,
        }
    }

    /// How long an owner's changelog lease lasts without renewal: the
    /// group's session timeout (the broker's own verdict on a silent
    /// member), at least three commit intervals.
    pub(super) fn lease(&self) -> Duration {
        let session = self
            .settings
            .client
            .extra
            .iter()
            .rev()
            .find(|(k, _)| k == "session.timeout.ms")
            .and_then(|(_, v)| v.parse::<u64>().ok())
            .map_or(Duration::from_secs(45), Duration::from_millis);
        session.max(self.settings.plan.commit_interval * 3)
    }

    /// Starts restoring partition `p`'s state on its own thread.
    pub(super) fn assign(&mut self, p: i32) {
        self.start_restore(p, 0);
    }

    pub(super) fn start_restore(&mut self, p: i32, attempt: u32) {
        let spec = self.restore_spec(p);
        let cancel = spec.cancel.clone();
        let delay = Duration::from_secs(u64::from(attempt.min(10)));
        let handle = std::thread::spawn(move || {
            std::thread::sleep(delay);
            restore(&spec)
        });
        self.restoring.insert(
            p,
            Restoring {
                handle,
                attempt,
                cancel,
            },
        );
    }

    /// Turns finished restores into tasks; returns the partitions now ready.
    pub(super) fn finish_restores(&mut self) -> Vec<i32> {
        let done: Vec<i32> = self
            .restoring
            .iter()
            .filter(|(_, r)| r.handle.is_finished())
            .map(|(p, _)| *p)
            .collect();
        let mut ready = Vec::new();
        for p in done {
            let Some(r) = self.restoring.remove(&p) else {
                continue;
            };
            let result = r
                .handle
                .join()
                .unwrap_or_else(|_| Err(RuntimeError::Join("restore thread panicked".into())));
            match result {
                Ok(outcome) => {
                    self.install(outcome);
                    ready.push(p);
                }
                Err(e) => {
                    self.metrics.restore_failures.inc();
                    tracing::warn!(partition = p, attempt = r.attempt + 1, error = %e, "State restore failed; retrying.");
                    self.start_restore(p, r.attempt + 1);
                }
            }
        }
        ready
    }

    /// A restored partition becomes a task.
    pub(super) fn install(&mut self, mut outcome: RestoreOutcome) {
        if let Some(tables) = outcome.tables.take() {
            self.install_tables(outcome, tables);
            return;
        }
        let p = outcome.partition;
        let mut st = outcome.state;
        let mut task = self.stage.new_task(p, self.settings.partitions);
        task.restore(&st);
        let m = &self.metrics;
        m.restore_seconds.observe(outcome.took.as_secs_f64());
        m.restores.inc();
        m.restored_records
            .with_label_values(&["changelog"])
            .inc_by(st.changelog_records);
        m.restored_records
            .with_label_values(&["output"])
            .inc_by(st.output_records);
        tracing::info!(
            partition = p,
            took_ms = outcome.took.as_millis() as u64,
            handover_wait_ms = outcome.waited.as_millis() as u64,
            changelog_records = st.changelog_records,
            output_records = st.output_records,
            state_keys = st.keys.len(),
            emitted_keys = st.emitted.len(),
            dead_letters = st.dead_letters.len(),
            "State restored."
        );
        self.tasks.insert(p, task);
        let input = self.topics.input.clone();
        self.trackers.open(Role::Input, input, p);
        self.unread.insert((Role::Input, p));
        self.pending_side.push(p);
        self.deltas.insert(p, st.into_delta());
        self.dead_lettered.insert(p, st.dead_letters);
        self.metrics
            .assigned_partitions
            .set(self.tasks.len() as i64);
    }

    /// A restored partition of a checkpointed stage becomes a task, to
    /// resume at its checkpoint's offsets.
    fn install_tables(&mut self, outcome: RestoreOutcome, t: TablesOutcome) {
        let p = outcome.partition;
        let TablesOutcome {
            restored,
            forwarded,
            dead_letters,
            covers,
            tails,
        } = t;
        let mut task = self.stage.new_task(p, self.settings.partitions);
        let keys = restored.tables.len();
        task.restore_tables(restored.tables);
        let tail_records = tails.len();
        for (port, key, value) in &tails {
            let port = PortId(u8::try_from(*port).unwrap_or(u8::MAX));
            task.restore_output(port, key, value);
        }
        let mut ck = checkpoint::TaskCheckpoint {
            epoch: restored.next_epoch,
            covers: covers
                .into_iter()
                .map(|((topic, q), o)| ((Arc::from(topic.as_str()), q), o))
                .collect(),
            offsets: Default::default(),
            repair: restored.repair,
            forwarded,
        };
        if let Some(c) = &restored.checkpoint {
            for (topic, o) in &c.offsets {
                let Some(role) = self.topics.role_of(topic) else {
                    continue;
                };
                self.resume_at.insert((role, p), *o);
                ck.offsets.insert(Arc::from(topic.as_str()), *o);
            }
        }
        let m = &self.metrics;
        m.restore_seconds.observe(outcome.took.as_secs_f64());
        m.restores.inc();
        m.restored_records
            .with_label_values(&["changelog"])
            .inc_by(restored.records);
        tracing::info!(
            partition = p,
            took_ms = outcome.took.as_millis() as u64,
            changelog_records = restored.records,
            keys,
            unconfirmed = restored.unconfirmed,
            tail_records,
            checkpoint = restored.checkpoint.as_ref().map(|c| c.epoch),
            dead_letters = dead_letters.len(),
            "State restored."
        );
        self.tasks.insert(p, task);
        let input = self.topics.input.clone();
        self.trackers.open(Role::Input, input, p);
        self.unread.insert((Role::Input, p));
        self.pending_side.push(p);
        self.checkpoints.insert(p, ck);
        self.dead_lettered.insert(p, dead_letters);
        self.metrics
            .assigned_partitions
            .set(self.tasks.len() as i64);
    }

    pub(super) fn unassign(&mut self, p: i32) {
        if let Some(r) = self.restoring.remove(&p) {
            r.cancel.store(true, Ordering::Relaxed);
        }
        self.deltas.remove(&p);
        self.dead_lettered.remove(&p);
        self.checkpoints.remove(&p);
        self.tasks.remove(&p);
        self.markers_sent.remove(&p);
        for role in self.topics.roles() {
            self.resume_at.remove(&(role, p));
            self.rewinds.remove(&(role, p));
            self.trackers.close(role, p);
            self.unread.remove(&(role, p));
        }
        self.reseeks.retain(|(_, q, _)| *q != p);
        self.pending_side.retain(|x| *x != p);
    }

    /// End of partition `p` of an input or the repartition topic. The
    /// first input: the task is caught up (idle detection). Either: a resumption that has
    /// seen no record yet may need to start further back (see [`Rewind`]);
    /// otherwise this instance has now read the partition to its end once
    /// (which the idle exit waits for).
    pub(super) fn end_of_partition(&mut self, role: Role, p: i32) {
        if role == Role::Input {
            if let Some(task) = self.tasks.get_mut(&p) {
                task.mark_end_of_partition();
            }
        }
        match self
            .rewinds
            .get_mut(&(role, p))
            .map(Rewind::end_of_partition)
        {
            Some(Step::Reseek(from)) => self.reseeks.push((role, p, from)),
            _ => {
                self.unread.remove(&(role, p));
            }
        }
    }

    /// Resumptions that have seen nothing for a while: the broker may be
    /// answering a fetch inside the last batch with nothing (see [`Rewind`]).
    /// Not while consumption is paused (nothing can arrive then).
    pub(super) fn check_stalled_rewinds(&mut self) {
        if self.paused || self.rewinds.is_empty() {
            return;
        }
        let now = Instant::now();
        for ((role, p), rw) in self.rewinds.iter_mut() {
            if let Step::Reseek(from) = rw.stalled(now, STALL_AFTER) {
                tracing::debug!(
                    partition = p,
                    ?role,
                    target = rw.target(),
                    from,
                    "No record at the resume offset; reading from further back."
                );
                self.reseeks.push((*role, *p, from));
            }
        }
    }

    pub(super) fn partition_in_flight(&self, p: i32) -> usize {
        self.topics
            .roles()
            .into_iter()
            .map(|role| self.trackers.in_flight_of(role, p))
            .sum()
    }

    /// Whether partition `p` still has outputs on their way to the broker.
    /// `flushed`: its buffers were flushed, so every record in flight is
    /// waiting for an acknowledgement; otherwise records whose events are
    /// buffered stay in flight, and only the produces are waited for.
    pub(super) fn partition_unacknowledged(&self, p: i32, flushed: bool) -> bool {
        if flushed {
            self.partition_in_flight(p) > 0
        } else {
            self.produced_unacked.get(&p).is_some_and(|n| *n > 0)
        }
    }
}
