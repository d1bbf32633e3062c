//! One consumed record through the stage, and each of its outputs to a produce.

use super::*;

impl<S: Stage> Core<S> {
    pub(super) fn handle(&mut self, producer: &Producer_, role: Role, msg: &BorrowedMessage<'_>) {
        let p = msg.partition();
        if role == Role::Input && self.restoring.contains_key(&p) {
            // Fetched before the pause took hold: read again after the
            // restore (which seeks to the committed offset).
            return;
        }
        let Some(slot) = self.trackers.slot(role, p) else {
            return; // not (or no longer) ours
        };
        if !self.tasks.contains_key(&p) {
            return;
        }
        if let Some(rw) = self.rewinds.get_mut(&(role, p)) {
            match rw.step(msg.offset()) {
                Step::Skip => {
                    return;
                }
                Step::Reseek(from) => {
                    tracing::debug!(partition = p, ?role, target = rw.target(), from, "Broker skipped records up to the resume offset; reading from further back.");
                    self.reseeks.push((role, p, from));
                    return;
                }
                Step::Process => {
                    self.rewinds.remove(&(role, p));
                }
            }
        }
        let ts = msg.timestamp().to_millis();
        let now = Instant::now();
        let Some(ticket) = self.trackers.begin(slot, msg.offset(), ts, now) else {
            return;
        };
        match role {
            Role::Input | Role::CoInput(_) => self.hot.read_input.inc(),
            Role::Repartition => self.hot.read_repartition.inc(),
        }
        let mut token = None;
        let mut hops = None;
        let mut marker = false;
        if let Some(hs) = msg.headers() {
            for h in hs.iter() {
                match h.key {
                    headers::LINEAGE_TOKEN => {
                        token = h.value.and_then(|v| std::str::from_utf8(v).ok())
                    }
                    headers::LINEAGE_HOPS => hops = h.value,
                    headers::MARKER => marker = true,
                    _ => {}
                }
            }
        }
        if !marker {
            self.last_record = Some(now);
        }
        if marker {
            if let (Role::Repartition, Some(m)) = (
                role,
                msg.payload()
                    .and_then(|v| serde_json::from_slice::<Marker>(v).ok()),
            ) {
                let mut out = std::mem::take(&mut self.out);
                if let Some(task) = self.tasks.get_mut(&p) {
                    self.stage
                        .on_marker(task, m.from, m.event_time_ms, m.idle, now, &mut out);
                }
                for o in out.drain(..) {
                    self.route(producer, p, o, None);
                }
                self.out = out;
            }
            self.trackers.release(ticket);
            return;
        }
        let source = SourceRef {
            topic: self.topics.of(role),
            partition: p,
            offset: msg.offset(),
        };
        let value = msg.payload().unwrap_or(&[]);
        let rec = RecordIn {
            value,
            source: source.clone(),
            role,
            header_token: token,
            header_hops: hops,
            record_timestamp_ms: ts,
            ticket,
        };
        let mut out = std::mem::take(&mut self.out);
        let units = match self.tasks.get_mut(&p) {
            Some(task) => self.stage.ingest(task, &rec, now, &mut out),
            None => 0,
        };
        self.trackers.hold(ticket, units);
        let ctx = RecordCtx {
            key: msg.key(),
            value,
            source: &source,
            timestamp_ms: ts,
        };
        for o in out.drain(..) {
            self.route(producer, p, o, Some(&ctx));
        }
        self.out = out;
        self.trackers.release(ticket);
    }

    /// Turns one output into a produce, or releases its hold.
    pub(super) fn route(
        &mut self,
        producer: &Producer_,
        p: i32,
        o: Output,
        rec: Option<&RecordCtx<'_>>,
    ) {
        match o {
            Output::Done { ticket } => {
                self.trackers.release(ticket);
            }
            Output::Emit(e) => {
                let Some(port) = self.ports.get(usize::from(e.port.0)) else {
                    // A stage names only the ports it declared.
                    self.fatal
                        .get_or_insert_with(|| format!("output to undeclared port {}", e.port.0));
                    self.trackers.release(e.ticket);
                    return;
                };
                let (topic, partition) = (
                    port.topic.clone(),
                    partition_for(e.key.as_bytes(), port.partitions),
                );
                if let Some(st) = &e.state {
                    write_state_header(
                        &mut self.header_buf,
                        st.event_time_ms,
                        st.content_fp,
                        st.id_fp,
                    );
                }
                let hs = emit_headers(&e, e.state.is_some().then_some(self.header_buf.as_str()));
                if let Some(d) = self.trackers.since_read(e.ticket, Instant::now()) {
                    self.metrics.processing_latency.observe(d.as_secs_f64());
                }
                let kind = AckKind::Emit(e.port, e.tag.map(|(_, v)| v));
                let Emit {
                    key,
                    value,
                    ticket,
                    state,
                    unit,
                    ..
                } = e;
                self.send(
                    producer,
                    &topic,
                    partition,
                    Some(key.as_bytes()),
                    &value,
                    hs,
                    None,
                    AckMeta {
                        ticket,
                        kind,
                        task: p,
                        state: match state {
                            Some(state) => AckState::Emitted {
                                key: key.clone(),
                                state,
                            },
                            None => AckState::None,
                        },
                        unit: u32::try_from(unit).unwrap_or(u32::MAX),
                        reference: false,
                    },
                );
            }
            Output::Forward(f) => {
                let Some(rec) = rec else {
                    // Forwards are only made while their record is in hand.
                    self.trackers.release(f.ticket);
                    return;
                };
                let unit = u32::try_from(f.range.start).unwrap_or(u32::MAX);
                let offset = rec.source.offset;
                let from = self
                    .topics
                    .role_of(&rec.source.topic)
                    .unwrap_or(Role::Input);
                if self.checkpointed
                    && !f.replaces
                    && self
                        .checkpoints
                        .get(&p)
                        .is_some_and(|ck| ck.already_forwarded(f.home, from, offset, unit))
                {
                    // Forwarded before a restart: the home partition has it.
                    self.metrics
                        .duplicates
                        .with_label_values(&["forward_replay"])
                        .inc();
                    self.trackers.release(f.ticket);
                    return;
                }
                let hops = serde_json::to_vec(&f.hops).unwrap_or_default();
                let mut hs = OwnedHeaders::new_with_capacity(3)
                    .insert(Header {
                        key: headers::LINEAGE_TOKEN,
                        value: Some(f.lineage_token.as_bytes()),
                    })
                    .insert(Header {
                        key: headers::LINEAGE_HOPS,
                        value: Some(&hops),
                    });
                if self.checkpointed {
                    let src =
                        crate::runtime::restore_tables::source_position(p, from, offset, unit);
                    hs = hs.insert(Header {
                        key: headers::SOURCE_POSITION,
                        value: Some(src.as_bytes()),
                    });
                }
                let value = match &f.payload {
                    Some(v) => v.as_slice(),
                    None => rec.value.get(f.range.clone()).unwrap_or(rec.value),
                };
                let topic = self.topics.repartition.clone();
                self.send(
                    producer,
                    &topic,
                    f.home,
                    Some(f.key.as_bytes()),
                    value,
                    hs,
                    rec.timestamp_ms,
                    AckMeta {
                        ticket: f.ticket,
                        kind: AckKind::Forward,
                        task: p,
                        state: AckState::None,
                        unit,
                        reference: false,
                    },
                );
            }
            Output::DeadLetter(d) => {
                let pos = self
                    .trackers
                    .origin(d.ticket)
                    .map(|(t, offset)| DeadLetterPos {
                        source: t.role.code(),
                        offset,
                        unit: u32::try_from(d.range.start).unwrap_or(u32::MAX),
                    });
                if let (Some(pos), Some(seen)) = (pos, self.dead_lettered.get(&p)) {
                    if seen.contains(&pos) {
                        // Already dead-lettered before a restart.
                        self.metrics
                            .duplicates
                            .with_label_values(&["dead_letter_replay"])
                            .inc();
                        self.trackers.release(d.ticket);
                        return;
                    }
                }
                let (key, value, source) = match rec {
                    Some(r) => (
                        r.key,
                        r.value.get(d.range.clone()).unwrap_or(r.value),
                        r.source.clone(),
                    ),
                    None => (None, &[][..], self.origin_source(d.ticket)),
                };
                let failed_at = format_iso_ms(now_ms());
                let spec = dead_letter::Spec {
                    class: d.class,
                    message: &d.message,
                    stage: d.stage,
                    source: &source,
                    unit: d.range.start,
                    failed_at: &failed_at,
                    lineage_token: d.lineage_token.as_deref(),
                    key,
                };
                let dl = dead_letter::build(
                    &spec,
                    Rejected::Bytes(value),
                    self.settings.limits.get().dead_letter,
                    self.settings.plan.dead_letter_prefix,
                );
                let ts = rec.and_then(|r| r.timestamp_ms);
                self.send_dead_letter(
                    producer,
                    &source,
                    dl,
                    ts,
                    AckMeta {
                        ticket: d.ticket,
                        kind: AckKind::DeadLetter(d.class),
                        task: p,
                        state: pos.map_or(AckState::None, AckState::DeadLetter),
                        unit: u32::try_from(d.range.start).unwrap_or(u32::MAX),
                        reference: false,
                    },
                );
            }
        }
    }

    /// Where a ticket's record was read (`partition` -1 if unknown).
    pub(super) fn origin_source(&self, ticket: Ticket) -> SourceRef {
        match self.trackers.origin(ticket) {
            Some((t, offset)) => SourceRef {
                topic: t.topic.clone(),
                partition: t.partition,
                offset,
            },
            None => SourceRef {
                topic: self.topics.input.clone(),
                partition: -1,
                offset: -1,
            },
        }
    }
}

/// The headers of an emitted record: its lineage token, its state (the
/// `cx.state` text, see [`crate::state::state_header`]) and its tag, if any.
/// The values are copied: `state` is free again after.
fn emit_headers(e: &Emit, state: Option<&str>) -> OwnedHeaders {
    let mut hs = OwnedHeaders::new_with_capacity(3).insert(Header {
        key: headers::LINEAGE_TOKEN,
        value: Some(e.lineage_token.as_bytes()),
    });
    if let Some(state) = state {
        hs = hs.insert(Header {
            key: headers::STATE,
            value: Some(state.as_bytes()),
        });
    }
    match e.tag {
        Some((name, value)) => hs.insert(Header {
            key: name,
            value: Some(value.as_bytes()),
        }),
        None => hs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::{EmitState, PortId};

    fn emit(tag: Option<(&'static str, &'static str)>) -> Emit {
        Emit {
            port: PortId(1),
            key: "conv-1".into(),
            value: b"{}".to_vec(),
            lineage_token: "tok-1".into(),
            tag,
            ticket: crate::runtime::tracker::ticket(0, 7),
            unit: 0,
            state: Some(EmitState {
                event_time_ms: 1,
                content_fp: 2,
                id_fp: None,
            }),
        }
    }

    fn pairs(hs: &OwnedHeaders) -> Vec<(String, String)> {
        hs.iter()
            .map(|h| {
                (
                    h.key.to_string(),
                    String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn an_emit_carries_its_token_and_state_and_its_tag_only_when_it_has_one() {
        let plain = pairs(&emit_headers(&emit(None), Some("1;0002")));
        assert_eq!(
            plain,
            vec![
                ("cx.lineage.token".to_string(), "tok-1".to_string()),
                ("cx.state".to_string(), "1;0002".to_string()),
            ]
        );
        let tagged = pairs(&emit_headers(
            &emit(Some(("cx.test.reason", "some_reason"))),
            Some("1;0002"),
        ));
        assert_eq!(tagged.len(), 3);
        assert_eq!(
            tagged[2],
            ("cx.test.reason".to_string(), "some_reason".to_string())
        );
    }

    #[test]
    fn an_emit_without_emitted_state_has_no_state_header() {
        let hs = pairs(&emit_headers(&emit(None), None));
        assert_eq!(
            hs,
            vec![("cx.lineage.token".to_string(), "tok-1".to_string())]
        );
    }
}
