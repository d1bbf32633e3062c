//! OCEL 2.0 JSON out of traces, streamed, without Kafka.
//!
//! Objects: `conversation` (one per case: media type, direction, close),
//! `queue`, `agent` and `customer` (the customer participant's id, a
//! Genesys id, never PII). Every event relates to its conversation
//! (qualifier `case`) and, when its resource is a queue, agent or customer,
//! to that object (qualifier `queue`, `agent`, `customer`); the answering
//! agent of an `Answered` is related as `answered by`. A conversation
//! relates to its customer (`customer`).
//!
//! Events are written to the output as they come; objects go to a side
//! buffer (a temporary file in the command) and are copied in at the end,
//! so memory holds only the ids of objects already written (8 bytes each)
//! and the event types' attribute names. Attribute values are strings, as
//! the OCEL 2.0 JSON schema (`schemas/vendor/ocel20-schema-json.json`)
//! requires; their types are declared in `eventTypes` and `objectTypes`.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read, Seek, SeekFrom, Write};

use serde_json::{json, Value};
use xxhash_rust::xxh3::xxh3_64;

use super::trace::{Step, Trace};

/// Times of object attributes whose value holds from the start.
const INITIAL: &str = "1970-01-01T00:00:00Z";

const OBJECT_TYPES: [&str; 4] = ["conversation", "queue", "agent", "customer"];

/// Writes one OCEL log. `O` holds the objects until [`OcelWriter::finish`].
pub struct OcelWriter<W: Write, O: Write + Read + Seek> {
    out: W,
    objects: O,
    first_event: bool,
    first_object: bool,
    seen: HashSet<u64>,
    /// Event type → attribute name → OCEL type.
    event_types: BTreeMap<String, BTreeMap<String, &'static str>>,
    events: u64,
    objects_written: u64,
}

fn ocel_type(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "float",
        _ => "string",
    }
}

/// OCEL 2.0's schema types every attribute value as a string; the type is
/// declared in the event or object type.
fn text(v: &Value) -> Value {
    match v {
        Value::String(_) => v.clone(),
        other => Value::String(other.to_string()),
    }
}

fn object_id(kind: &str, id: &str) -> String {
    format!("{kind}:{id}")
}

impl<W: Write, O: Write + Read + Seek> OcelWriter<W, O> {
    pub fn new(mut out: W, objects: O) -> io::Result<Self> {
        out.write_all(b"{\"events\":[")?;
        Ok(OcelWriter {
            out,
            objects,
            first_event: true,
            first_object: true,
            seen: HashSet::new(),
            event_types: BTreeMap::new(),
            events: 0,
            objects_written: 0,
        })
    }

    pub fn events(&self) -> u64 {
        self.events
    }

    pub fn objects(&self) -> u64 {
        self.objects_written
    }

    /// Writes the object unless it was written already.
    fn object(
        &mut self,
        kind: &str,
        id: &str,
        attributes: Vec<(&str, Value)>,
        relationships: Vec<Value>,
    ) -> io::Result<String> {
        let oid = object_id(kind, id);
        if self.seen.insert(xxh3_64(oid.as_bytes())) {
            let obj = json!({
                "id": oid,
                "type": kind,
                "attributes": attributes
                    .into_iter()
                    .map(|(n, v)| json!({"name": n, "value": text(&v), "time": INITIAL}))
                    .collect::<Vec<_>>(),
                "relationships": relationships,
            });
            if !self.first_object {
                self.objects.write_all(b",\n")?;
            }
            self.first_object = false;
            serde_json::to_writer(&mut self.objects, &obj)?;
            self.objects_written += 1;
        }
        Ok(oid)
    }

    pub fn write(&mut self, trace: &Trace) -> io::Result<()> {
        if trace.steps.is_empty() {
            return Ok(());
        }
        let customer = trace
            .steps
            .iter()
            .find(|s| s.record.resource_type == "customer")
            .and_then(|s| s.record.resource.clone());
        let mut conv_rel = Vec::new();
        if let Some(c) = &customer {
            let cid = self.object("customer", c, vec![], vec![])?;
            conv_rel.push(json!({"objectId": cid, "qualifier": "customer"}));
        }
        let first = &trace.steps[0].record;
        let mut attrs: Vec<(&str, Value)> = Vec::new();
        if let Some(m) = &first.media_type {
            attrs.push(("media_type", m.as_str().into()));
        }
        if let Some(d) = &first.direction {
            attrs.push(("direction", d.as_str().into()));
        }
        if let Some(c) = &trace.closed {
            for key in ["closed_by", "duration_ms"] {
                if let Some(v) = c.record.attributes.get(key) {
                    attrs.push((key, v.clone()));
                }
            }
        }
        let conv = self.object("conversation", &trace.case_id, attrs, conv_rel)?;
        for s in &trace.steps {
            self.event(s, &conv)?;
        }
        Ok(())
    }

    fn event(&mut self, s: &Step, conv: &str) -> io::Result<()> {
        let r = &s.record;
        let mut rel = vec![json!({"objectId": conv, "qualifier": "case"})];
        if let Some(res) = &r.resource {
            if matches!(r.resource_type.as_str(), "queue" | "agent" | "customer") {
                let oid = self.object(&r.resource_type, res, vec![], vec![])?;
                rel.push(json!({"objectId": oid, "qualifier": r.resource_type}));
            }
        }
        if let Some(agent) = r.attributes.get("answered_user_id").and_then(Value::as_str) {
            let oid = self.object("agent", agent, vec![], vec![])?;
            rel.push(json!({"objectId": oid, "qualifier": "answered by"}));
        }
        let mut attrs: Vec<(String, Value)> = vec![
            ("resource_type".into(), r.resource_type.as_str().into()),
            ("sequence".into(), r.sequence.into()),
            ("late".into(), r.late.into()),
            ("event_id".into(), r.lineage.event_id.as_str().into()),
        ];
        if let Some(st) = &r.start_timestamp {
            attrs.push(("start_time".into(), st.as_str().into()));
        }
        for (k, v) in &r.attributes {
            if k != "answered_user_id" {
                attrs.push((k.clone(), v.clone()));
            }
        }
        let types = self.event_types.entry(r.activity.clone()).or_default();
        for (k, v) in &attrs {
            let t = if k == "start_time" {
                "time"
            } else {
                ocel_type(v)
            };
            types.entry(k.clone()).or_insert(t);
        }
        let ev = json!({
            "id": format!("{}:{}", r.case_id, r.sequence),
            "type": r.activity,
            "time": r.timestamp,
            "attributes": attrs
                .into_iter()
                .map(|(n, v)| json!({"name": n, "value": text(&v)}))
                .collect::<Vec<_>>(),
            "relationships": rel,
        });
        if !self.first_event {
            self.out.write_all(b",\n")?;
        }
        self.first_event = false;
        serde_json::to_writer(&mut self.out, &ev)?;
        self.events += 1;
        Ok(())
    }

    /// Copies the objects in, writes the types, and hands back the output
    /// (flushed).
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(b"],\n\"objects\":[")?;
        self.objects.flush()?;
        self.objects.seek(SeekFrom::Start(0))?;
        io::copy(&mut self.objects, &mut self.out)?;
        let event_types: Vec<Value> = self
            .event_types
            .iter()
            .map(|(name, attrs)| {
                json!({
                    "name": name,
                    "attributes": attrs
                        .iter()
                        .map(|(n, t)| json!({"name": n, "type": t}))
                        .collect::<Vec<_>>(),
                })
            })
            .collect();
        let object_types: Vec<Value> = OBJECT_TYPES
            .iter()
            .map(|t| {
                let attributes = if *t == "conversation" {
                    json!([
                        {"name": "media_type", "type": "string"},
                        {"name": "direction", "type": "string"},
                        {"name": "closed_by", "type": "string"},
                        {"name": "duration_ms", "type": "integer"}
                    ])
                } else {
                    json!([])
                };
                json!({"name": t, "attributes": attributes})
            })
            .collect();
        self.out.write_all(b"],\n\"eventTypes\":")?;
        serde_json::to_writer(&mut self.out, &event_types)?;
        self.out.write_all(b",\n\"objectTypes\":")?;
        serde_json::to_writer(&mut self.out, &object_types)?;
        self.out.write_all(b"}\n")?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mining::trace::tests::step;
    use std::io::Cursor;

    #[test]
    fn writes_events_objects_and_types_that_refer_to_each_other() {
        let mut start = step("c1", "Call Started", 0, 1);
        start.record.resource_type = "customer".into();
        start.record.resource = Some("p1".into());
        start.record.media_type = Some("VOICE".into());
        let mut queued = step("c1", "Queued", 1_000, 2);
        queued.record.resource_type = "queue".into();
        queued.record.resource = Some("q1".into());
        let mut answered = step("c1", "Answered", 2_000, 3);
        answered.record.resource_type = "queue".into();
        answered.record.resource = Some("q1".into());
        answered
            .record
            .attributes
            .insert("answered_user_id".into(), "u1".into());
        let t = Trace {
            case_id: "c1".into(),
            steps: vec![start, queued, answered],
            closed: Some(step("c1", "Case Closed", 2_000, 4)),
            continuation: false,
        };
        let mut w = OcelWriter::new(Vec::new(), Cursor::new(Vec::new())).unwrap();
        w.write(&t).unwrap();
        w.write(&Trace {
            continuation: true,
            ..t.clone()
        })
        .unwrap();
        assert_eq!((w.events(), w.objects()), (6, 4));
        let out = w.finish().unwrap();
        let doc: Value = serde_json::from_slice(&out).expect("valid JSON");
        let events = doc["events"].as_array().unwrap();
        let objects = doc["objects"].as_array().unwrap();
        assert_eq!(events.len(), 6);
        let ids: HashSet<&str> = objects.iter().filter_map(|o| o["id"].as_str()).collect();
        assert_eq!(
            ids,
            HashSet::from(["conversation:c1", "customer:p1", "queue:q1", "agent:u1"])
        );
        for e in events {
            for r in e["relationships"].as_array().unwrap() {
                assert!(ids.contains(r["objectId"].as_str().unwrap()), "{e}");
            }
        }
        assert_eq!(events[2]["relationships"][2]["qualifier"], "answered by");
        let conv = objects
            .iter()
            .find(|o| o["type"] == "conversation")
            .unwrap();
        assert_eq!(conv["relationships"][0]["objectId"], "customer:p1");
        assert_eq!(doc["eventTypes"].as_array().unwrap().len(), 3);
        // values are strings, their types declared
        let seq = events[0]["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "sequence")
            .unwrap();
        assert_eq!(seq["value"], "1");
        let started = doc["eventTypes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "Call Started")
            .unwrap();
        assert!(started["attributes"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "sequence", "type": "integer"})));
        assert_eq!(doc["objectTypes"].as_array().unwrap().len(), 4);
    }
}
