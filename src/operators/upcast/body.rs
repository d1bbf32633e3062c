//! [`Body`]: an `eventBody` while it is fingerprinted, upcast and
//! projected, its members by name and values still in the input's tape.

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::json::{Canonical, Node, Tape, ValueRef};
use crate::model::Span;

use super::names::{field_id, name_of, unknown_rank, FieldId, NAME_COUNT};

/// The value of a [`Body`] member.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyValue {
    /// A value of the input: its tape node and canonical text.
    Input { node: usize, text: Span },
    /// A value an upcast step set.
    Set(Value),
}

impl BodyValue {
    /// A view of the value (`tape` is the body's input).
    pub fn view<'v>(&'v self, tape: &'v Tape<'v>) -> ValueRef<'v> {
        match self {
            BodyValue::Input { node, .. } => ValueRef::Node(tape, *node),
            BodyValue::Set(v) => ValueRef::Value(v),
        }
    }
}

/// A member of a [`Body`] (as [`Body::members`] and [`Body::drain`] give
/// them).
#[derive(Debug, Clone)]
pub struct Member<'t> {
    pub name: Cow<'t, str>,
    /// Set for a known name.
    pub id: Option<FieldId>,
    /// `None` once removed.
    pub value: Option<BodyValue>,
    /// Span of the name's JSON string literal in the canonical text (input
    /// members with a name this build does not know; a known name's
    /// literal is the name in quotes).
    pub key_text: Option<Span>,
}

/// Where the value of a known member is.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
enum Slot {
    #[default]
    Absent,
    /// A value of the input: its tape node and canonical text.
    Input { node: usize, text: Span },
    /// Null, set by a step (the common case: absent fields filled).
    Null,
    /// A value a step set: its index in `Body::set`.
    Set(usize),
}

/// An `eventBody` while it is fingerprinted, upcast and projected: its
/// members by name (each once, a later duplicate in the input winning, as
/// in a JSON map), values still in the input's [`Tape`] unless a step set
/// them.
///
/// Known names are held in an array by [`FieldId`] (found and set without
/// comparing strings, and in name order without sorting); the few other
/// names in a list.
#[derive(Debug)]
pub struct Body<'t> {
    tape: &'t Tape<'t>,
    /// Known members by id.
    known: [Slot; NAME_COUNT],
    /// Members with other names: the input's in name order, then those
    /// steps added.
    others: Vec<Member<'t>>,
    /// Values steps set on known members (see [`Slot::Set`]).
    set: Vec<Value>,
}

impl<'t> Body<'t> {
    /// Reads the object at `obj` and appends its canonical text to `out`
    /// (the content fingerprint's input); each input member keeps the span
    /// of its value in `out`.
    pub fn canonical(
        tape: &'t Tape<'t>,
        obj: usize,
        canon: &mut Canonical,
        out: &mut String,
    ) -> Body<'t> {
        let mut body = Body {
            tape,
            known: [Slot::Absent; NAME_COUNT],
            others: Vec::new(),
            set: Vec::new(),
        };
        // Known names into their slots (a later duplicate overwrites an
        // earlier one); other names listed with their sort rank.
        let mut others: Vec<(u16, &'t str, usize)> = Vec::new();
        for (k, v) in tape.members(obj) {
            match field_id(k).and_then(|id| body.known.get_mut(usize::from(id))) {
                Some(slot) => {
                    *slot = Slot::Input {
                        node: v,
                        text: Span::default(),
                    }
                }
                None => others.push((unknown_rank(k), k, v)),
            }
        }
        // Stable: repeated names keep input order, the last one wins below.
        others.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        body.others.reserve_exact(others.len());
        out.push('{');
        let mut first = true;
        let mut next = others.iter().enumerate().peekable();
        for id in 0..NAME_COUNT {
            let Some(&Slot::Input { node, .. }) = body.known.get(id) else {
                continue;
            };
            let rank = 2 * u16::try_from(id).unwrap_or(u16::MAX / 2) + 1;
            while let Some((i, &(_, name, node))) = next.next_if(|(_, o)| o.0 < rank) {
                if !superseded(&others, i) {
                    body.write_other(name, node, canon, &mut first, out);
                }
            }
            // A known name is plain ASCII: its literal is the name quoted.
            write_member(out, &mut first, |out| {
                out.push('"');
                out.push_str(name_of(id_of(id)));
                out.push('"');
            });
            out.push(':');
            let start = out.len();
            canon.write(tape, node, out);
            let text = Span {
                start,
                end: out.len(),
            };
            if let Some(slot) = body.known.get_mut(id) {
                *slot = Slot::Input { node, text };
            }
        }
        for (i, &(_, name, node)) in next {
            if !superseded(&others, i) {
                body.write_other(name, node, canon, &mut first, out);
            }
        }
        out.push('}');
        body
    }

    /// Writes the member with the unknown `name` and value `node`, and
    /// lists it.
    fn write_other(
        &mut self,
        name: &'t str,
        node: usize,
        canon: &mut Canonical,
        first: &mut bool,
        out: &mut String,
    ) {
        let tape = self.tape;
        let key_start = write_member(out, first, |out| match tape.node(node - 1) {
            Node::Str(k) => crate::json::write_str_node(out, k),
            _ => out.push_str("\"\""),
        });
        let key_text = Span {
            start: key_start,
            end: out.len(),
        };
        out.push(':');
        let start = out.len();
        canon.write(tape, node, out);
        self.others.push(Member {
            name: Cow::Borrowed(name),
            id: None,
            value: Some(BodyValue::Input {
                node,
                text: Span {
                    start,
                    end: out.len(),
                },
            }),
            key_text: Some(key_text),
        });
    }

    /// The input this body reads.
    pub fn tape(&self) -> &'t Tape<'t> {
        self.tape
    }

    fn slot(&self, id: FieldId) -> Slot {
        self.known.get(usize::from(id)).copied().unwrap_or_default()
    }

    /// Position of the member `name` (unknown to this build) in `others`.
    fn other(&self, name: &str) -> Option<usize> {
        self.others
            .iter()
            .position(|m| m.value.is_some() && m.name == name)
    }

    /// A view of the value in `slot`.
    fn view(&self, slot: Slot) -> Option<ValueRef<'_>> {
        match slot {
            Slot::Absent => None,
            Slot::Input { node, .. } => Some(ValueRef::Node(self.tape, node)),
            Slot::Null => Some(ValueRef::Value(&Value::Null)),
            Slot::Set(i) => self.set.get(i).map(ValueRef::Value),
        }
    }

    /// The value of member `name`.
    pub fn get(&self, name: &str) -> Option<ValueRef<'_>> {
        match field_id(name) {
            Some(id) => self.get_id(id),
            None => {
                let m = self.others.get(self.other(name)?)?;
                Some(m.value.as_ref()?.view(self.tape))
            }
        }
    }

    /// The value of the known member `id`.
    pub fn get_id(&self, id: FieldId) -> Option<ValueRef<'_>> {
        self.view(self.slot(id))
    }

    /// True when member `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// True when the known member `id` is present.
    pub fn contains_id(&self, id: FieldId) -> bool {
        self.slot(id) != Slot::Absent
    }

    /// Sets member `name` (added if absent).
    pub fn set(&mut self, name: &'t str, value: Value) {
        match field_id(name) {
            Some(id) => self.set_id(id, value),
            None => match self.other(name).and_then(|at| self.others.get_mut(at)) {
                Some(m) => m.value = Some(BodyValue::Set(value)),
                None => self.others.push(Member {
                    name: Cow::Borrowed(name),
                    id: None,
                    value: Some(BodyValue::Set(value)),
                    key_text: None,
                }),
            },
        }
    }

    /// Sets the known member `id` (added if absent).
    pub fn set_id(&mut self, id: FieldId, value: Value) {
        let slot = if value.is_null() {
            Slot::Null
        } else {
            self.set.push(value);
            Slot::Set(self.set.len() - 1)
        };
        if let Some(s) = self.known.get_mut(usize::from(id)) {
            *s = slot;
        }
    }

    /// Removes member `name`, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<BodyValue> {
        match field_id(name) {
            Some(id) => self.remove_id(id),
            None => {
                let at = self.other(name)?;
                self.others.get_mut(at)?.value.take()
            }
        }
    }

    /// Removes the known member `id`, returning its value.
    pub fn remove_id(&mut self, id: FieldId) -> Option<BodyValue> {
        let slot = std::mem::take(self.known.get_mut(usize::from(id))?);
        take_value(slot, &mut self.set)
    }

    /// The members still present, in order: known names by name, then the
    /// others (the input's by name, then those steps added).
    pub fn members(&self) -> impl Iterator<Item = Member<'t>> + '_ {
        let known = (0..NAME_COUNT).filter_map(|i| {
            let id = id_of(i);
            let value = match self.slot(id) {
                Slot::Absent => return None,
                Slot::Input { node, text } => BodyValue::Input { node, text },
                Slot::Null => BodyValue::Set(Value::Null),
                Slot::Set(s) => BodyValue::Set(self.set.get(s).cloned().unwrap_or_default()),
            };
            Some(known_member(id, value))
        });
        known.chain(self.others.iter().filter(|m| m.value.is_some()).cloned())
    }

    /// Removes and returns every member still present, in the order of
    /// [`Self::members`].
    pub fn drain(&mut self) -> impl Iterator<Item = Member<'t>> + '_ {
        let Body {
            known, others, set, ..
        } = self;
        let known = known.iter_mut().enumerate().filter_map(|(i, slot)| {
            let value = take_value(std::mem::take(slot), set)?;
            Some(known_member(id_of(i), value))
        });
        known.chain(others.drain(..).filter(|m| m.value.is_some()))
    }

    /// The members as a JSON map (tests, debugging).
    pub fn to_map(&self) -> Map<String, Value> {
        self.members()
            .filter_map(|m| Some((m.name.to_string(), m.value?.view(self.tape).to_value())))
            .collect()
    }
}

/// True when the next of the sorted `others` has the same name as the one
/// at `i`: the later duplicate wins, as in a JSON map.
fn superseded(others: &[(u16, &str, usize)], i: usize) -> bool {
    match (others.get(i), others.get(i + 1)) {
        (Some(a), Some(b)) => a.1 == b.1,
        _ => false,
    }
}

/// The value held in `slot`, taking a step's value out of `set`.
fn take_value(slot: Slot, set: &mut [Value]) -> Option<BodyValue> {
    match slot {
        Slot::Absent => None,
        Slot::Input { node, text } => Some(BodyValue::Input { node, text }),
        Slot::Null => Some(BodyValue::Set(Value::Null)),
        Slot::Set(i) => Some(BodyValue::Set(std::mem::take(set.get_mut(i)?))),
    }
}

/// The id at position `i` of the known names (`i < NAME_COUNT`).
fn id_of(i: usize) -> FieldId {
    FieldId::try_from(i).unwrap_or(FieldId::MAX)
}

/// A known member as a [`Member`].
fn known_member<'t>(id: FieldId, value: BodyValue) -> Member<'t> {
    Member {
        name: Cow::Borrowed(name_of(id)),
        id: Some(id),
        value: Some(value),
        key_text: None,
    }
}

/// Starts a member of the object being written to `out` (a comma unless it
/// is the first) and writes its key with `key`; returns where the key
/// starts.
fn write_member(out: &mut String, first: &mut bool, key: impl FnOnce(&mut String)) -> usize {
    if !std::mem::take(first) {
        out.push(',');
    }
    let start = out.len();
    key(out);
    start
}

#[cfg(test)]
mod tests {
    use super::super::names::event_time_id;
    use super::super::tables::{HEADER_FIELDS, KNOWN_FIELDS};
    use super::*;
    use serde_json::json;

    #[test]
    fn body_members_are_a_map() {
        let text = r#"{"b":1,"zz":2,"b":3,"eventTime":4,"a":{"y":1,"x":2},"queueId":null}"#;
        let tape = Tape::parse(text.as_bytes()).unwrap_or_default();
        let mut out = String::new();
        let mut body = Body::canonical(&tape, 0, &mut Canonical::default(), &mut out);
        assert_eq!(
            out,
            r#"{"a":{"x":2,"y":1},"b":3,"eventTime":4,"queueId":null,"zz":2}"#
        );
        let names: Vec<String> = body.members().map(|m| m.name.to_string()).collect();
        // Known names first, then the others, each group by name.
        assert_eq!(names, ["eventTime", "queueId", "a", "b", "zz"]);
        assert_eq!(body.get("b").map(|v| v.to_value()), Some(json!(3)));
        assert!(body.get("queueId").is_some_and(|v| v.is_null()));
        assert!(body.contains_id(event_time_id()) && !body.contains("c"));
        body.set("zz", json!("new"));
        body.set("c", json!([1]));
        assert_eq!(
            body.remove("b"),
            Some(BodyValue::Input {
                node: 6,
                text: Span { start: 23, end: 24 }
            })
        );
        assert!(body.remove("b").is_none() && body.remove_id(event_time_id()).is_some());
        assert_eq!(
            Value::Object(body.to_map()),
            json!({"a": {"x": 2, "y": 1}, "queueId": null, "zz": "new", "c": [1]})
        );
    }

    fn member_name() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let known: Vec<String> = ["eventTime", "conversationId"]
            .into_iter()
            .chain(HEADER_FIELDS.iter().chain(KNOWN_FIELDS).map(|f| f.name))
            .map(str::to_owned)
            .collect();
        prop_oneof![
            proptest::sample::select(known.clone()),
            // Near a known name: before, after, a prefix, an extension.
            (proptest::sample::select(known), 0usize..4, "[A-Za-z_]{0,2}").prop_map(
                |(k, how, x)| {
                    match how {
                        0 => format!("{k}{x}"),
                        1 => k[..k.len() / 2].to_string(),
                        2 => format!("{x}{k}"),
                        _ => k.to_uppercase(),
                    }
                }
            ),
            "[a-zA-Z]{0,6}",
            Just(String::new()),
        ]
    }

    proptest::proptest! {
        /// The body's canonical text is serde_json's, whatever mix of
        /// known, unknown and repeated names it has.
        #[test]
        fn body_text_is_serde_json_text(
            members in proptest::collection::vec((member_name(), 0i64..3), 0..40),
        ) {
            let mut text = String::from("{");
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(&serde_json::to_string(k).unwrap_or_default());
                text.push(':');
                text.push_str(&v.to_string());
            }
            text.push('}');
            let tape = Tape::parse(text.as_bytes()).unwrap_or_default();
            let mut out = String::new();
            let body = Body::canonical(&tape, 0, &mut Canonical::default(), &mut out);
            let v: Value = serde_json::from_str(&text).unwrap_or_default();
            proptest::prop_assert_eq!(&out, &serde_json::to_string(&v).unwrap_or_default());
            proptest::prop_assert_eq!(Value::Object(body.to_map()), v);
        }
    }
}
