//! The processing loop: poll, handle, apply acknowledgements, commit, pause for
//! backpressure, align watermarks, and the orderly stop.

use super::acks::serve_deliveries;
use super::*;

impl<S: Stage> Engine<S> {
    pub fn new(
        settings: EngineSettings,
        stage: S,
        metrics: Arc<Metrics>,
    ) -> Result<Self, RuntimeError> {
        let plan = settings.plan.clone();
        let c = &settings.client;
        let transactional = plan.delivery == Delivery::Transactions;
        let txn_id = format!(
            "{}.{}",
            plan.transactional_id
                .as_deref()
                .unwrap_or(&settings.group_id),
            settings.instance_id
        );
        let mut producer_defaults = crate::runtime::client::PRODUCER_DEFAULTS.to_vec();
        if transactional {
            producer_defaults.push(("transactional.id", &txn_id));
            // Transactions bound delivery time; records never time out
            // before their transaction does.
            producer_defaults.push(("message.timeout.ms", "60000"));
            producer_defaults.push(("transaction.timeout.ms", "60000"));
        }
        let producer: Producer_ = c
            .with_defaults(&producer_defaults)
            .create_with_context(AckContext {
                acks: Mutex::default(),
                prefix_cap: settings.plan.dead_letter_prefix,
            })
            .map_err(RuntimeError::client("producer"))?;
        if transactional {
            producer
                .init_transactions(Duration::from_secs(60))
                .map_err(RuntimeError::broker("initialising transactions"))?;
            producer
                .begin_transaction()
                .map_err(RuntimeError::broker("opening a transaction"))?;
            tracing::info!(transactional_id = %txn_id, "Transactions mode: outputs, changelog and offsets commit atomically.");
        }
        // A group id gives the side consumers librdkafka's incremental
        // assignment API; they never subscribe, so they never join that
        // group, and they never commit (the group consumer commits their
        // offsets).
        let side_consumer = |what: &'static str, suffix: String| {
            let group = format!("{}.{suffix}", settings.group_id);
            c.with_defaults(
                &[
                    crate::runtime::client::SIDE_CONSUMER_DEFAULTS,
                    &[("group.id", &group)],
                ]
                .concat(),
            )
            .create_with_context(QuietContext { what })
        };
        let side: BaseConsumer<QuietContext> =
            side_consumer("repartition", "repartition-reader".into())
                .map_err(RuntimeError::client("repartition consumer"))?;
        let co = (0..plan.co_inputs.len())
            .map(|n| {
                side_consumer("co-input", format!("co-input-{n}-reader"))
                    .map_err(RuntimeError::client("co-input consumer"))
            })
            .collect::<Result<Vec<BaseConsumer<QuietContext>>, _>>()?;
        let topics = Topics {
            input: Arc::from(plan.input_topic.as_str()),
            co_inputs: plan
                .co_inputs
                .iter()
                .map(|t| Arc::from(t.as_str()))
                .collect(),
            repartition: Arc::from(plan.repartition_topic.as_str()),
            dead_letter: Arc::from(plan.dead_letter_topic.as_str()),
        };
        let checkpointed = stage.state_model() == StateModel::Checkpointed;
        let ctx = GroupContext {
            core: Mutex::new(Core {
                stage,
                settings: settings.clone(),
                metrics: metrics.clone(),
                tasks: HashMap::new(),
                trackers: Trackers::default(),
                topics: topics.clone(),
                ports: settings
                    .ports
                    .iter()
                    .map(|(port, n)| PortOut::new(port, *n, &metrics))
                    .collect(),
                pending_side: Vec::new(),
                unread: HashSet::new(),
                out: Vec::new(),
                fatal: None,
                last_record: None,
                markers_sent: HashMap::new(),
                restoring: HashMap::new(),
                deltas: HashMap::new(),
                dead_lettered: HashMap::new(),
                checkpointed,
                checkpoints: HashMap::new(),
                resume_at: HashMap::new(),
                paused: false,
                owner_id: uuid::Uuid::new_v4().to_string(),
                header_buf: String::with_capacity(90),
                rewinds: HashMap::new(),
                reseeks: Vec::new(),
                produced_unacked: HashMap::new(),
                hot: HotCounters::new(&metrics),
                rejects: Vec::new(),
                rejecting: false,
            }),
            producer,
            side,
            co,
            metrics,
            failed_commits: Mutex::new(Vec::new()),
            topics,
            transactional,
        };
        let consumer: BaseConsumer<GroupContext<S>> = c
            .with_defaults(
                &[
                    crate::runtime::client::GROUP_CONSUMER_DEFAULTS,
                    &[("group.id", &settings.group_id)],
                ]
                .concat(),
            )
            .create_with_context(ctx)
            .map_err(RuntimeError::client("consumer"))?;
        consumer
            .subscribe(&[&plan.input_topic])
            .map_err(RuntimeError::broker("subscribing to the input topic"))?;
        Ok(Self { consumer, settings })
    }

    fn ctx(&self) -> &GroupContext<S> {
        self.consumer.context()
    }

    /// Assigns pending partitions on the side consumers (repartition,
    /// co-inputs), from the group's committed offsets (or the checkpoint's).
    fn assign_side(&self) {
        let pending: Vec<i32> = std::mem::take(&mut lock(&self.ctx().core).pending_side);
        if pending.is_empty() {
            return;
        }
        let ctx = self.ctx();
        let mut tpl = TopicPartitionList::new();
        for role in ctx.topics.side_roles() {
            let topic = ctx.topics.of(role);
            for p in &pending {
                let _ = tpl.add_partition(&topic, *p);
            }
        }
        let committed = match self
            .consumer
            .committed_offsets(tpl, Duration::from_secs(10))
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "Could not read committed offsets of side partitions; retrying.");
                lock(&ctx.core).pending_side.extend(pending);
                return;
            }
        };
        let mut assign: HashMap<Role, TopicPartitionList> = HashMap::new();
        let mut core = lock(&ctx.core);
        for e in committed.elements() {
            let Some(role) = ctx.topics.role_of(e.topic()) else {
                continue;
            };
            let p = e.partition();
            if !core.tasks.contains_key(&p) {
                continue; // revoked meanwhile
            }
            // A checkpointed stage resumes where its checkpoint says.
            let at = core
                .resume_at
                .remove(&(role, p))
                .map_or(e.offset(), Offset::Offset);
            let offset = match at {
                Offset::Offset(o) if o > 0 => {
                    let rw = Rewind::new(o, INITIAL_WINDOW);
                    let start = rw.start();
                    core.rewinds.insert((role, p), rw);
                    Offset::Offset(start)
                }
                _ => Offset::Beginning,
            };
            let _ = assign
                .entry(role)
                .or_default()
                .add_partition_offset(e.topic(), p, offset);
            core.unread.insert((role, p));
            let t = ctx.topics.of(role);
            core.trackers.open(role, t, p);
        }
        drop(core);
        for (role, tpl) in assign {
            if let Some(Err(e)) = ctx.side_of(role).map(|c| c.incremental_assign(&tpl)) {
                tracing::warn!(error = %e, ?role, "Could not assign side partitions.");
            }
        }
    }

    /// Runs until `stop` is set, the idle condition holds, or a fatal error.
    pub fn run(&self, stop: &AtomicBool, health: &Health) -> Result<StopReason, RuntimeError> {
        let ctx = self.ctx();
        let started = Instant::now();
        let mut last_tick = Instant::now();
        let mut last_commit = Instant::now();
        let mut last_gauges = Instant::now();
        let max_in_flight = self.settings.plan.max_in_flight;
        // Watermark markers: a round (n-1 small records) whenever an input
        // partition's progress moved by the stage's step, at most every 5 ms
        // (more with many partitions); an input partition with nothing read
        // for the stage's idle time says it is idle. Alignment: a partition
        // that buffers the stage's hold limit because another is behind
        // stops reading until it has drained to half.
        let n = u32::try_from(self.settings.partitions.max(1)).unwrap_or(1);
        let marker_floor = Duration::from_millis(5) * (n / 8).max(1);
        let Watermarks {
            step_ms: marker_step_ms,
            idle: marker_idle,
            hold_limit,
        } = lock(&self.ctx().core).stage.watermarks();
        let reason = loop {
            if stop.load(Ordering::Relaxed) {
                break StopReason::Signal;
            }
            self.finish_restores();
            self.assign_side();
            let mut got = 0usize;
            while got < 2000 {
                match self.consumer.poll(Duration::ZERO) {
                    Some(Ok(msg)) => {
                        let p = msg.partition();
                        let mut core = lock(&ctx.core);
                        core.handle(&ctx.producer, Role::Input, &msg);
                        // A partition that just reached the alignment limit
                        // is paused before more of it is read.
                        let ahead = core
                            .tasks
                            .get(&p)
                            .is_some_and(|t| !t.held_back() && t.runs_ahead(hold_limit));
                        drop(core);
                        got += 1;
                        if ahead {
                            break;
                        }
                    }
                    Some(Err(KafkaError::PartitionEOF(p))) => {
                        lock(&ctx.core).end_of_partition(Role::Input, p);
                    }
                    Some(Err(e)) => {
                        log_poll_error("input", &e);
                        break;
                    }
                    None => break,
                }
            }
            let mut side_got = 0usize;
            for role in ctx.topics.side_roles() {
                let Some(side) = ctx.side_of(role) else {
                    continue;
                };
                let mut got_here = 0usize;
                while got_here < 2000 {
                    match side.poll(Duration::ZERO) {
                        Some(Ok(msg)) => {
                            lock(&ctx.core).handle(&ctx.producer, role, &msg);
                            got_here += 1;
                        }
                        Some(Err(KafkaError::PartitionEOF(p))) => {
                            lock(&ctx.core).end_of_partition(role, p);
                        }
                        Some(Err(e)) => {
                            log_poll_error(
                                if role == Role::Repartition {
                                    "repartition"
                                } else {
                                    "co-input"
                                },
                                &e,
                            );
                            break;
                        }
                        None => break,
                    }
                }
                side_got += got_here;
            }
            serve_deliveries(&ctx.producer);
            lock(&ctx.core).check_stalled_rewinds();
            self.do_reseeks();
            let mut core = lock(&ctx.core);
            core.apply_acks(&ctx.producer);
            if let Some(f) = core.fatal.take() {
                return Err(RuntimeError::Delivery(f));
            }
            if last_tick.elapsed() >= Duration::from_millis(10) {
                core.tick(&ctx.producer);
                last_tick = Instant::now();
            }
            core.send_markers(&ctx.producer, marker_idle, marker_step_ms, marker_floor);
            if !core.tasks.is_empty() {
                health.ready.store(true, Ordering::Relaxed);
            }
            if last_commit.elapsed() >= self.settings.plan.commit_interval && ctx.transactional {
                last_commit = Instant::now();
                core.commit_transaction(&ctx.producer, &self.consumer, None)
                    .map_err(RuntimeError::Transaction)?;
            }
            if last_commit.elapsed() >= self.settings.plan.commit_interval {
                last_commit = Instant::now();
                core.write_changelog(&ctx.producer, None);
                ctx.resend_failed_commits(&mut core);
                let points = core.trackers.take_commit_points();
                if !points.is_empty() {
                    let mut tpl = TopicPartitionList::new();
                    for (t, p, o) in &points {
                        let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
                    }
                    match self.consumer.commit(&tpl, CommitMode::Async) {
                        Ok(()) => ctx.metrics.commits.inc(),
                        Err(e) => {
                            ctx.metrics.commit_errors.inc();
                            tracing::warn!(error = %e, "Offset commit failed.");
                        }
                    }
                }
            }
            if last_gauges.elapsed() >= Duration::from_millis(500) {
                core.update_gauges();
                last_gauges = Instant::now();
            }
            // Backpressure counts what waits for the broker, not records
            // whose events wait in a reorder buffer (bounded by its own
            // `max_buffered`, and released only as more input is read).
            let in_flight = core.produced_unacked.values().sum::<usize>();
            let paused = core.paused;
            if !paused && in_flight >= max_in_flight {
                core.paused = true;
                drop(core);
                self.set_paused(true);
                core = lock(&ctx.core);
            } else if paused && in_flight < max_in_flight / 2 {
                core.paused = false;
                drop(core);
                self.set_paused(false);
                core = lock(&ctx.core);
            }
            if let Some(idle) = self.settings.exit_when_idle {
                let quiet = match core.last_record {
                    Some(t) => t.elapsed() >= idle,
                    None => started.elapsed() >= idle * 6,
                };
                if quiet
                    && !core.tasks.is_empty()
                    && core.buffered() == 0
                    && core.trackers.in_flight() == 0
                    && core.pending_side.is_empty()
                    && core.restoring.is_empty()
                    && core.unread.is_empty()
                {
                    break StopReason::Idle;
                }
            }
            drop(core);
            self.align(hold_limit);
            if got == 0 && side_got == 0 {
                // Nothing to read: block briefly on the group consumer (this
                // also serves rebalance and stats callbacks).
                if let Some(r) = self.consumer.poll(Duration::from_millis(2)) {
                    match r {
                        Ok(msg) => lock(&ctx.core).handle(&ctx.producer, Role::Input, &msg),
                        Err(KafkaError::PartitionEOF(p)) => {
                            lock(&ctx.core).end_of_partition(Role::Input, p)
                        }
                        Err(e) => log_poll_error("input", &e),
                    }
                }
            }
        };
        health.ready.store(false, Ordering::Relaxed);
        self.shutdown()?;
        Ok(reason)
    }

    /// Watermark alignment: pauses input partitions whose task runs ahead
    /// of another partition with `limit` events buffered, and resumes them
    /// once drained to half (or no longer ahead). A resumed partition is
    /// sought to where it stopped, through a [`Rewind`] (pausing drops what
    /// librdkafka had fetched, and some brokers skip the rest of a batch
    /// when a fetch starts inside it). Not while consumption is paused for
    /// backpressure: that resume leaves held partitions alone, and they are
    /// looked at again afterwards.
    fn align(&self, limit: usize) {
        let ctx = self.ctx();
        let mut core = lock(&ctx.core);
        if core.paused {
            return;
        }
        let mut pause = Vec::new();
        let mut resume = Vec::new();
        for (p, task) in &core.tasks {
            if core.restoring.contains_key(p) {
                continue;
            }
            if !task.held_back() && task.runs_ahead(limit) {
                pause.push(*p);
            } else if task.held_back() && !task.runs_ahead(limit / 2) {
                resume.push(*p);
            }
        }
        if pause.is_empty() && resume.is_empty() {
            return;
        }
        for p in &pause {
            if let Some(t) = core.tasks.get_mut(p) {
                t.set_held_back(true);
            }
        }
        for p in &resume {
            if let Some(t) = core.tasks.get_mut(p) {
                t.set_held_back(false);
            }
        }
        let held = core.tasks.values().filter(|t| t.held_back()).count();
        drop(core);
        ctx.metrics.partitions_held_back.set(held as i64);
        ctx.metrics.hold_backs.inc_by(pause.len() as u64);
        let topic = &self.settings.plan.input_topic;
        if !pause.is_empty() {
            let mut tpl = TopicPartitionList::new();
            for p in &pause {
                let _ = tpl.add_partition(topic, *p);
            }
            if let Err(e) = self.consumer.pause(&tpl) {
                tracing::warn!(error = %e, "Could not pause input partitions for watermark alignment.");
            }
            tracing::debug!(partitions = ?pause, "Input partitions ahead of another partition paused.");
        }
        if !resume.is_empty() {
            self.resume_where_stopped(&resume);
            tracing::debug!(partitions = ?resume, "Held-back input partitions resumed.");
        }
    }

    /// Resumes paused input partitions where this instance stopped reading
    /// them, through a [`Rewind`]: pausing drops what librdkafka had
    /// prefetched, and some brokers skip the rest of a batch when a fetch
    /// starts inside it. A partition nothing was read from resumes where the
    /// client stands.
    fn resume_where_stopped(&self, parts: &[i32]) {
        let topic = self.settings.plan.input_topic.clone();
        if let Err(e) = self.resume_role(&self.consumer, Role::Input, &topic, parts) {
            tracing::warn!(error = %e, "Could not resume input partitions.");
        }
    }

    /// The same for the partitions of the side consumers (repartition,
    /// co-inputs), after a backpressure pause. (Resuming them without a seek
    /// lost the rest of a batch on Tansu: events forwarded there were never
    /// processed.)
    fn resume_side(&self) {
        let ctx = self.ctx();
        for role in ctx.topics.side_roles() {
            let Some(side) = ctx.side_of(role) else {
                continue;
            };
            let Ok(assignment) = side.assignment() else {
                continue;
            };
            let parts: Vec<i32> = assignment
                .elements()
                .iter()
                .map(|e| e.partition())
                .collect();
            let topic = ctx.topics.of(role);
            if let Err(e) = self.resume_role(side, role, &topic, &parts) {
                tracing::warn!(error = %e, ?role, "Could not resume side partitions.");
            }
        }
    }

    /// Seeks each of `parts` of `topic` to the offset after the last record
    /// read from it (watching the resumption with a [`Rewind`]), then
    /// resumes them on `consumer`.
    fn resume_role<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        role: Role,
        topic: &str,
        parts: &[i32],
    ) -> KafkaResult<()> {
        let mut seeks = Vec::new();
        {
            let mut core = lock(&self.ctx().core);
            for p in parts {
                let from = core.trackers.get(role, *p).and_then(|t| t.next_offset());
                if let Some(o) = from {
                    let rw = Rewind::new(o, INITIAL_WINDOW);
                    seeks.push((*p, rw.start()));
                    core.rewinds.insert((role, *p), rw);
                }
            }
        }
        for (p, start) in seeks {
            if let Err(e) = consumer.seek(topic, p, Offset::Offset(start), Duration::from_secs(10))
            {
                tracing::warn!(partition = p, ?role, error = %e, "Could not seek a paused partition before resuming it.");
            }
        }
        let mut tpl = TopicPartitionList::new();
        for p in parts {
            let _ = tpl.add_partition(topic, *p);
        }
        consumer.resume(&tpl)
    }

    /// Installs finished restores: their partitions resume from the
    /// committed offset.
    fn finish_restores(&self) {
        let ctx = self.ctx();
        let mut core = lock(&ctx.core);
        if core.restoring.is_empty() {
            return;
        }
        let ready = core.finish_restores();
        let paused = core.paused;
        drop(core);
        let topic = &self.settings.plan.input_topic;
        for p in ready {
            // Resume from the committed offset, which nobody else moves
            // while we own p: records delivered meanwhile (fetched before the
            // pause took hold) are read again; the seek discards anything
            // fetched before it.
            let checkpointed_at = lock(&self.ctx().core)
                .resume_at
                .remove(&(Role::Input, p))
                .map(Offset::Offset);
            let from = match checkpointed_at.unwrap_or_else(|| self.committed_input_offset(p)) {
                Offset::Offset(o) if o > 0 => {
                    // Start a little earlier: some brokers skip the rest of
                    // a batch when a fetch starts inside it (see Rewind).
                    let rw = Rewind::new(o, INITIAL_WINDOW);
                    let start = rw.start();
                    lock(&self.ctx().core).rewinds.insert((Role::Input, p), rw);
                    Offset::Offset(start)
                }
                other => other,
            };
            if let Err(e) = self.consumer.seek(topic, p, from, Duration::from_secs(10)) {
                tracing::warn!(partition = p, error = %e, "Could not seek after restore.");
            }
            if !paused {
                let mut tpl = TopicPartitionList::new();
                let _ = tpl.add_partition(topic, p);
                if let Err(e) = self.consumer.resume(&tpl) {
                    tracing::warn!(partition = p, error = %e, "Could not resume a restored partition.");
                }
            }
        }
    }

    /// Seeks that resuming partitions asked for (see [`Rewind`]).
    fn do_reseeks(&self) {
        let ctx = self.ctx();
        let seeks = std::mem::take(&mut lock(&ctx.core).reseeks);
        for (role, p, from) in seeks {
            let topic = ctx.topics.of(role);
            let at = Offset::Offset(from);
            let r = match ctx.side_of(role) {
                None => self.consumer.seek(&topic, p, at, Duration::from_secs(10)),
                Some(side) => side.seek(&topic, p, at, Duration::from_secs(10)),
            };
            let mut core = lock(&ctx.core);
            match r {
                Ok(()) => {
                    if let Some(rw) = core.rewinds.get_mut(&(role, p)) {
                        rw.seeked();
                    }
                }
                Err(e) => {
                    tracing::warn!(partition = p, ?role, error = %e, "Could not seek; retrying.");
                    core.reseeks.push((role, p, from));
                }
            }
        }
    }

    /// The group's committed offset for input partition `p` (the beginning
    /// if none).
    fn committed_input_offset(&self, p: i32) -> Offset {
        let topic = &self.settings.plan.input_topic;
        let mut tpl = TopicPartitionList::new();
        let _ = tpl.add_partition(topic, p);
        match self
            .consumer
            .committed_offsets(tpl, Duration::from_secs(10))
        {
            Ok(c) => match c.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => Offset::Offset(o),
                _ => Offset::Beginning,
            },
            Err(e) => {
                tracing::warn!(partition = p, error = %e, "Could not read the committed offset; re-reading from the beginning.");
                Offset::Beginning
            }
        }
    }

    fn set_paused(&self, pause: bool) {
        let ctx = self.ctx();
        ctx.metrics.paused.set(i64::from(pause));
        if let Ok(assignment) = self.consumer.assignment() {
            if pause {
                if let Err(e) = self.consumer.pause(&assignment) {
                    tracing::warn!(error = %e, "Could not pause input partitions.");
                }
            } else {
                // Partitions still restoring, or held back for watermark
                // alignment, stay paused.
                let parts: Vec<i32> = {
                    let core = lock(&ctx.core);
                    assignment
                        .elements()
                        .iter()
                        .map(|e| e.partition())
                        .filter(|p| {
                            !core.restoring.contains_key(p)
                                && !core.tasks.get(p).is_some_and(|t| t.held_back())
                        })
                        .collect()
                };
                self.resume_where_stopped(&parts);
            }
        }
        if pause {
            for side in std::iter::once(&ctx.side).chain(&ctx.co) {
                if let Ok(assignment) = side.assignment() {
                    if let Err(e) = side.pause(&assignment) {
                        tracing::warn!(error = %e, "Could not pause side partitions.");
                    }
                }
            }
        } else {
            self.resume_side();
        }
        if pause {
            tracing::info!(
                unacknowledged = lock(&ctx.core).produced_unacked.values().sum::<usize>(),
                "Consumption paused: too many outputs wait for the broker's acknowledgement (outputs slow or unavailable)."
            );
        } else {
            tracing::info!("Consumption resumed.");
        }
    }

    /// Graceful stop: release every buffered event, wait for every delivery,
    /// commit, then leave the group.
    fn shutdown(&self) -> Result<(), RuntimeError> {
        let ctx = self.ctx();
        let mut core = lock(&ctx.core);
        let parts: Vec<i32> = core.tasks.keys().copied().collect();
        for p in &parts {
            core.flush_partition(&ctx.producer, *p);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while core.trackers.in_flight() > 0 && Instant::now() < deadline {
            ctx.producer.poll(Duration::from_millis(20));
            core.apply_acks(&ctx.producer);
        }
        if ctx.transactional {
            core.commit_transaction(&ctx.producer, &self.consumer, Some(&parts))
                .map_err(RuntimeError::Transaction)?;
        } else {
            core.write_changelog(&ctx.producer, None);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while ctx.producer.in_flight_count() > 0 && Instant::now() < deadline {
            ctx.producer.poll(Duration::from_millis(20));
        }
        core.apply_acks(&ctx.producer);
        let left = core.trackers.in_flight();
        if let Ok(pos) = self.consumer.position() {
            for e in pos.elements() {
                tracing::debug!(topic = e.topic(), partition = e.partition(), offset = ?e.offset(), "Position at stop.");
            }
        }
        ctx.resend_failed_commits(&mut core);
        let points = core.trackers.take_commit_points();
        core.update_gauges();
        drop(core);
        if !points.is_empty() && !ctx.transactional {
            let mut tpl = TopicPartitionList::new();
            for (t, p, o) in &points {
                let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
            }
            match self.consumer.commit(&tpl, CommitMode::Sync) {
                Ok(()) => ctx.metrics.commits.inc(),
                // A rebalance under way (another instance joining or
                // leaving) refuses commits; the final revoke below commits
                // again, and whatever stays uncommitted is re-read by the
                // next owner, which drops it as already emitted.
                Err(e) => {
                    ctx.metrics.commit_errors.inc();
                    tracing::warn!(error = %e, "Offset commit at stop failed; committing again as the partitions are handed over.");
                }
            }
        }
        if !ctx.transactional {
            lock(&ctx.core).release(&ctx.producer, &parts);
            ctx.producer
                .flush(Duration::from_secs(10))
                .map_err(RuntimeError::broker("delivering the hand-over records"))?;
        }
        tracing::info!(
            records_not_acknowledged = left,
            partitions = parts.len(),
            "Buffers flushed at stop."
        );
        if left > 0 {
            tracing::warn!(
                records = left,
                "Stopped with records not acknowledged; they will be re-read at the next start."
            );
        }
        self.consumer.unsubscribe();
        // Serve the final revoke callback (nothing left to flush).
        let _ = self.consumer.poll(Duration::from_millis(100));
        Ok(())
    }
}

/// A consumer poll error. Connection errors were already logged by the
/// client context when librdkafka reported them (and librdkafka retries),
/// so they are not logged twice.
pub(super) fn log_poll_error(consumer: &str, e: &KafkaError) {
    let reported = matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::OperationTimedOut
        )
    );
    if reported {
        tracing::debug!(error = %e, consumer, "Consumer error.");
    } else {
        tracing::warn!(error = %e, consumer, "Consumer error.");
    }
}
