//! Delivery reports: the producer context queues them, and [`Core::apply_acks`]
//! applies them (state deltas, offset releases, retries of refused records).

use super::*;

impl FailedRecord {
    pub(super) fn new<H: Headers>(
        class: &'static str,
        key: Option<&[u8]>,
        value: &[u8],
        headers: Option<&H>,
        prefix_cap: usize,
    ) -> Self {
        FailedRecord {
            class,
            digest: Digested::of(value, prefix_cap),
            key: key.map(<[u8]>::to_vec),
            headers: headers.map(header_pairs).unwrap_or_default(),
        }
    }
}

impl ClientContext for AckContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "Producer client error (librdkafka retries).");
    }
}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Box<AckMeta>;

    fn delivery(&self, result: &DeliveryResult<'_>, meta: Box<AckMeta>) {
        let (error, failed, position) = match result {
            Ok(m) => {
                let position = matches!(
                    meta.kind,
                    AckKind::Emit(..) | AckKind::DeadLetter(_) | AckKind::Forward
                )
                .then(|| (m.partition(), m.offset()));
                (None, None, position)
            }
            Err((e, m)) => {
                let failed = e
                    .rdkafka_error_code()
                    .and_then(dead_letter::record_level)
                    .map(|class| {
                        let value = m.payload().unwrap_or(&[]);
                        FailedRecord::new(class, m.key(), value, m.headers(), self.prefix_cap)
                    });
                (Some(e.to_string()), failed, None)
            }
        };
        lock(&self.acks).push(Ack {
            meta: *meta,
            error,
            failed,
            position,
        });
    }
}

/// Headers as text pairs (ours are all text).
pub(super) fn header_pairs<H: Headers>(hs: &H) -> Vec<(String, String)> {
    hs.iter()
        .map(|h| {
            (
                h.key.to_string(),
                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
            )
        })
        .collect()
}

/// Serves every delivery report librdkafka has queued. `poll(ZERO)` serves
/// one event (one batch of reports) per call; called once per loop round it
/// let acknowledgements pile up behind the input (the pipeline then paused
/// for backpressure with outputs long delivered: ~20k events/s on Tansu).
pub(super) fn serve_deliveries(producer: &Producer_) {
    for _ in 0..10_000 {
        let before = lock(&producer.context().acks).len();
        producer.poll(Duration::ZERO);
        if lock(&producer.context().acks).len() == before {
            return;
        }
    }
}

impl<S: Stage> Core<S> {
    /// Applies queued delivery reports: releases holds, counts outputs.
    pub(super) fn apply_acks(&mut self, producer: &Producer_) {
        let acks = std::mem::take(&mut *lock(&producer.context().acks));
        let now = now_ms();
        for ack in acks {
            if let Some(n) = self.produced_unacked.get_mut(&ack.meta.task) {
                *n = n.saturating_sub(1);
            }
            if let Some(err) = ack.error {
                if let Some(failed) = ack.failed {
                    let topic = match ack.meta.kind {
                        AckKind::Emit(port, _) => self.port_topic(port).to_string(),
                        AckKind::DeadLetter(_) => self.topics.dead_letter.to_string(),
                        AckKind::Forward | AckKind::Marker => self.topics.repartition.to_string(),
                        AckKind::Changelog => self.settings.plan.changelog_topic.clone(),
                    };
                    self.rejects.push(Reject {
                        topic,
                        meta: ack.meta,
                        error: err,
                        failed,
                    });
                    continue;
                }
                let label = match ack.meta.kind {
                    AckKind::Emit(port, _) => self.port_name(port),
                    AckKind::DeadLetter(_) => OUT_DEAD_LETTER,
                    AckKind::Forward | AckKind::Marker => "repartition",
                    AckKind::Changelog => "changelog",
                };
                self.metrics
                    .produce_errors
                    .with_label_values(&[label])
                    .inc();
                self.fatal
                    .get_or_insert_with(|| format!("delivery to {label} failed: {err}"));
                continue;
            }
            if matches!(ack.meta.kind, AckKind::Marker | AckKind::Changelog) {
                continue;
            }
            if let (Some((part, offset)), Some(ck)) =
                (ack.position, self.checkpoints.get_mut(&ack.meta.task))
            {
                let topic = match ack.meta.kind {
                    AckKind::Emit(port, _) => self
                        .ports
                        .get(usize::from(port.0))
                        .map_or(&self.topics.dead_letter, |p| &p.topic),
                    AckKind::Forward => &self.topics.repartition,
                    _ => &self.topics.dead_letter,
                };
                ck.cover(topic, part, offset);
            }
            if let (Some((part, offset)), Some(delta), false) = (
                ack.position,
                self.deltas.get_mut(&ack.meta.task),
                matches!(ack.meta.kind, AckKind::Forward),
            ) {
                let topic = match ack.meta.kind {
                    AckKind::Emit(port, _) => self
                        .ports
                        .get(usize::from(port.0))
                        .map_or(&self.topics.dead_letter, |p| &p.topic),
                    _ => &self.topics.dead_letter,
                };
                match &ack.meta.state {
                    AckState::Emitted { key, state } => delta.record_emitted(
                        key,
                        state.event_time_ms,
                        state.content_fp,
                        state.id_fp,
                    ),
                    AckState::DeadLetter(pos) => delta.record_dead_letter(*pos),
                    AckState::None => {}
                }
                delta.cover(topic, part, offset);
            }
            let ts = self.trackers.release(ack.meta.ticket).flatten();
            let m = &self.metrics;
            match ack.meta.kind {
                AckKind::Emit(port, tag) => {
                    if let Some(out) = self.ports.get(usize::from(port.0)) {
                        out.out.inc();
                        if let (Some(tag), Some(c)) = (tag, &out.tag_counter) {
                            c.with_label_values(&[tag]).inc();
                        }
                    }
                }
                AckKind::DeadLetter(class) => {
                    m.events_out.with_label_values(&[OUT_DEAD_LETTER]).inc();
                    m.dead_letters.with_label_values(&[class]).inc();
                }
                AckKind::Forward | AckKind::Marker | AckKind::Changelog => continue,
            }
            if let Some(ts) = ts {
                m.e2e_latency.observe(((now - ts).max(0) as f64) / 1000.0);
            }
        }
        self.drain_rejects(producer);
    }
}

impl<S: Stage> Core<S> {
    /// The topic of `port` (the dead-letter topic's if the stage never
    /// declared it, which [`Core::route`] refuses before any produce).
    pub(super) fn port_topic(&self, port: PortId) -> &Arc<str> {
        self.ports
            .get(usize::from(port.0))
            .map_or(&self.topics.dead_letter, |p| &p.topic)
    }

    /// The `output` label of `port`.
    pub(super) fn port_name(&self, port: PortId) -> &'static str {
        self.ports
            .get(usize::from(port.0))
            .map_or("undeclared", |p| p.name)
    }
}
