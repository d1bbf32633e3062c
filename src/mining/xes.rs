//! XES (IEEE 1849-2023) out of traces, streamed, without Kafka.
//!
//! One `<trace>` per case (`concept:name` = case id; `duration_ms`,
//! `closed_by` from its `Case Closed` marker; `continuation` when it holds
//! activities that arrived after the case was written). One `<event>` per
//! activity with `concept:name`, `time:timestamp`, `lifecycle:transition`
//! `complete` and `org:resource`; an activity with a start time
//! (wrap-up, voicemail) is a `start` event before its `complete`. The
//! record's other fields follow as plain attributes (`resource_type`,
//! `media_type`, `direction`, `sequence`, `late`, `event_id`, its
//! attributes).

use std::io::{self, Write};

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, Event};
use quick_xml::Writer;

use super::trace::{Step, Trace};

const EXTENSIONS: [(&str, &str, &str); 4] = [
    (
        "Concept",
        "concept",
        "http://www.xes-standard.org/concept.xesext",
    ),
    ("Time", "time", "http://www.xes-standard.org/time.xesext"),
    (
        "Lifecycle",
        "lifecycle",
        "http://www.xes-standard.org/lifecycle.xesext",
    ),
    (
        "Organizational",
        "org",
        "http://www.xes-standard.org/org.xesext",
    ),
];

/// Writes one log.
pub struct XesWriter<W: Write> {
    xml: Writer<W>,
    traces: u64,
    events: u64,
}

impl<W: Write> XesWriter<W> {
    /// Writes the log's head: extensions, globals, classifiers, its name.
    pub fn new(out: W, name: &str) -> io::Result<Self> {
        let mut xml = Writer::new_with_indent(out, b' ', 1);
        xml.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        let log = BytesStart::new("log").with_attributes([
            ("xes.version", "1.0"),
            ("xes.features", "nested-attributes"),
            ("xmlns", "http://www.xes-standard.org/"),
        ]);
        xml.write_event(Event::Start(log))?;
        for (name, prefix, uri) in EXTENSIONS {
            xml.create_element("extension")
                .with_attributes([("name", name), ("prefix", prefix), ("uri", uri)])
                .write_empty()?;
        }
        xml.create_element("global")
            .with_attribute(("scope", "trace"))
            .write_inner_content(|w| attr(w, "string", "concept:name", "UNKNOWN"))?;
        xml.create_element("global")
            .with_attribute(("scope", "event"))
            .write_inner_content(|w| {
                attr(w, "string", "concept:name", "UNKNOWN")?;
                attr(w, "date", "time:timestamp", "1970-01-01T00:00:00.000Z")?;
                attr(w, "string", "lifecycle:transition", "complete")
            })?;
        xml.create_element("classifier")
            .with_attributes([("name", "Activity"), ("keys", "concept:name")])
            .write_empty()?;
        xml.create_element("classifier")
            .with_attributes([
                ("name", "Activity and transition"),
                ("keys", "concept:name lifecycle:transition"),
            ])
            .write_empty()?;
        attr(&mut xml, "string", "concept:name", name)?;
        Ok(XesWriter {
            xml,
            traces: 0,
            events: 0,
        })
    }

    pub fn traces(&self) -> u64 {
        self.traces
    }

    /// Events written (a start and its complete count two).
    pub fn events(&self) -> u64 {
        self.events
    }

    pub fn write(&mut self, trace: &Trace) -> io::Result<()> {
        if trace.steps.is_empty() {
            return Ok(());
        }
        self.traces += 1;
        let mut events = 0;
        self.xml.create_element("trace").write_inner_content(|w| {
            attr(w, "string", "concept:name", &trace.case_id)?;
            if let Some(c) = &trace.closed {
                if let Some(d) = c.record.attributes.get("duration_ms") {
                    attr(w, "int", "duration_ms", &d.to_string())?;
                }
                if let Some(by) = c
                    .record
                    .attributes
                    .get("closed_by")
                    .and_then(|v| v.as_str())
                {
                    attr(w, "string", "closed_by", by)?;
                }
            }
            if trace.continuation {
                attr(w, "boolean", "continuation", "true")?;
            }
            for s in &trace.steps {
                if let Some(start) = &s.record.start_timestamp {
                    event(w, s, "start", start)?;
                    events += 1;
                }
                event(w, s, "complete", &s.record.timestamp)?;
                events += 1;
            }
            Ok(())
        })?;
        self.events += events;
        Ok(())
    }

    /// Closes the log and hands back the writer (flushed).
    pub fn finish(mut self) -> io::Result<W> {
        self.xml.write_event(Event::End(BytesEnd::new("log")))?;
        let mut out = self.xml.into_inner();
        out.write_all(b"\n")?;
        out.flush()?;
        Ok(out)
    }
}

fn attr<W: Write>(w: &mut Writer<W>, kind: &str, key: &str, value: &str) -> io::Result<()> {
    w.create_element(kind)
        .with_attributes([("key", key), ("value", value)])
        .write_empty()?;
    Ok(())
}

fn event<W: Write>(w: &mut Writer<W>, s: &Step, transition: &str, time: &str) -> io::Result<()> {
    let r = &s.record;
    w.create_element("event").write_inner_content(|w| {
        attr(w, "string", "concept:name", &r.activity)?;
        attr(w, "date", "time:timestamp", time)?;
        attr(w, "string", "lifecycle:transition", transition)?;
        if let Some(res) = &r.resource {
            attr(w, "string", "org:resource", res)?;
        }
        attr(w, "string", "resource_type", &r.resource_type)?;
        if let Some(m) = &r.media_type {
            attr(w, "string", "media_type", m)?;
        }
        if let Some(d) = &r.direction {
            attr(w, "string", "direction", d)?;
        }
        attr(w, "int", "sequence", &r.sequence.to_string())?;
        attr(w, "boolean", "late", if r.late { "true" } else { "false" })?;
        attr(w, "string", "event_id", &r.lineage.event_id)?;
        for (k, v) in &r.attributes {
            match v {
                serde_json::Value::String(s) => attr(w, "string", k, s.as_str())?,
                serde_json::Value::Number(n) if n.is_i64() => attr(w, "int", k, &n.to_string())?,
                other => attr(w, "string", k, &other.to_string())?,
            }
        }
        Ok(())
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mining::trace::tests::step;

    #[test]
    fn writes_a_log_with_start_complete_pairs_and_escaped_values() {
        let mut wrap = step("c<1>", "Wrap-up", 60_000, 2);
        wrap.record.start_timestamp = Some("1970-01-01T00:00:30.000Z".into());
        wrap.record.resource = Some("agent & co".into());
        wrap.record
            .attributes
            .insert("wrapup_code".into(), "code-1".into());
        let t = Trace {
            case_id: "c<1>".into(),
            steps: vec![step("c<1>", "Call Started", 0, 1), wrap],
            closed: Some(step("c<1>", "Case Closed", 60_000, 3)),
            continuation: false,
        };
        let mut x = XesWriter::new(Vec::new(), "test").unwrap();
        x.write(&t).unwrap();
        x.write(&Trace {
            steps: vec![],
            ..t.clone()
        })
        .unwrap();
        assert_eq!((x.traces(), x.events()), (1, 3));
        let text = String::from_utf8(x.finish().unwrap()).unwrap();
        assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
        assert!(
            text.contains("<string key=\"concept:name\" value=\"c&lt;1&gt;\"/>"),
            "{text}"
        );
        assert!(text.contains("<string key=\"org:resource\" value=\"agent &amp; co\"/>"));
        assert!(text.contains("<string key=\"closed_by\" value=\"customer.end\"/>"));
        let start = text.find("value=\"start\"").unwrap();
        let complete = text.rfind("value=\"complete\"").unwrap();
        assert!(start < complete);
        assert!(text.contains("<date key=\"time:timestamp\" value=\"1970-01-01T00:00:30.000Z\"/>"));
        assert!(text.contains("<string key=\"wrapup_code\" value=\"code-1\"/>"));
        assert!(text.trim_end().ends_with("</log>"));
        assert_eq!(text.matches("<trace>").count(), 1);
        assert_eq!(text.matches("<event>").count(), 3);
    }
}
