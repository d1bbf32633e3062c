//! Periodic work: watermark markers to the repartition partitions, idle flushes
//! and gauges.

use super::*;

impl<S: Stage> Core<S> {
    pub(super) fn tick(&mut self, producer: &Producer_) {
        let now = Instant::now();
        let mut out = std::mem::take(&mut self.out);
        let mut parts: Vec<i32> = self.tasks.keys().copied().collect();
        parts.sort_unstable();
        for p in parts {
            if let Some(task) = self.tasks.get_mut(&p) {
                self.stage.tick(task, now, &mut out);
            }
            for o in out.drain(..) {
                self.route(producer, p, o, None);
            }
        }
        self.out = out;
    }

    pub(super) fn flush_partition(&mut self, producer: &Producer_, p: i32) {
        let mut out = std::mem::take(&mut self.out);
        if let Some(task) = self.tasks.get_mut(&p) {
            self.stage.flush(task, &mut out);
        }
        for o in out.drain(..) {
            self.route(producer, p, o, None);
        }
        self.out = out;
    }

    pub(super) fn buffered(&self) -> usize {
        self.tasks.values().map(StageTask::buffered).sum()
    }

    /// Announces each owned input partition's progress to every other
    /// repartition partition: when it has moved by `step_ms` of event time
    /// (at most once per `floor`), when it turns idle or active, and once a
    /// second as a keep-alive.
    pub(super) fn send_markers(
        &mut self,
        producer: &Producer_,
        idle: Duration,
        step_ms: i64,
        floor: Duration,
    ) {
        let now = Instant::now();
        let n = self.settings.partitions;
        if n <= 1 {
            return;
        }
        let mut due = Vec::new();
        for (q, task) in &self.tasks {
            let Some(progress) = task.progress(now, idle) else {
                continue;
            };
            let send = match self.markers_sent.get(q) {
                None => true,
                Some(((w, was_idle), at)) => {
                    let since = now.saturating_duration_since(*at);
                    since >= Duration::from_secs(1)
                        || *was_idle != progress.1
                        || (since >= floor && progress.0.saturating_sub(*w) >= step_ms)
                }
            };
            if send {
                due.push((*q, progress));
            }
        }
        let topic = self.topics.repartition.clone();
        for (q, (event_time_ms, is_idle)) in due {
            self.markers_sent.insert(q, ((event_time_ms, is_idle), now));
            let value = serde_json::to_vec(&Marker {
                from: q,
                event_time_ms,
                idle: is_idle,
            })
            .unwrap_or_default();
            for p in (0..n).filter(|p| *p != q) {
                let hs = OwnedHeaders::new_with_capacity(1).insert(Header {
                    key: headers::MARKER,
                    value: Some(b"1"),
                });
                self.send(
                    producer,
                    &topic,
                    p,
                    None,
                    &value,
                    hs,
                    None,
                    AckMeta {
                        ticket: 0,
                        kind: AckKind::Marker,
                        task: q,
                        state: AckState::None,
                        unit: 0,
                        reference: false,
                    },
                );
            }
        }
    }

    pub(super) fn update_gauges(&mut self) {
        let m = &self.metrics;
        m.reorder_buffered.set(self.buffered() as i64);
        m.in_flight_records.set(self.trackers.in_flight() as i64);
        m.produce_unacknowledged
            .set(self.produced_unacked.values().sum::<usize>() as i64);
        self.stage.update_gauges(self.tasks.values());
    }
}
