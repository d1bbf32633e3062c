//! [`Tape`]: a parsed JSON document as a flat list of [`Node`]s, strings
//! borrowed from the input when they had no escape sequence, built by
//! serde_json's own parser; and [`ValueRef`], one value wherever it lives
//! (a tape node or a `serde_json::Value`). See the [module docs](super).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Number, Value};

/// With serde_json's `raw_value` feature (enabled in this crate), a
/// `Value` treats an object whose *first* key is this string specially: the
/// object is replaced by the JSON document held in that key's string value.
/// [`Tape`] does the same, so no input decodes differently.
pub(super) const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// One JSON value of a [`Tape`].
#[derive(Debug, Clone, PartialEq)]
pub enum Node<'a> {
    Null,
    Bool(bool),
    /// A non-negative integer that fits `u64` (serde_json's `PosInt`).
    PosInt(u64),
    /// A negative integer that fits `i64`.
    NegInt(i64),
    /// Any other number (always finite).
    Float(f64),
    /// A string, unescaped. `Cow::Borrowed` means it had no escape sequence
    /// in the record, so it holds no `"`, `\` or control character (the
    /// parser rejects raw ones) and its JSON text needs no escaping.
    Str(Cow<'a, str>),
    /// An array; its `len` elements follow. `end` is the index just past
    /// its last descendant.
    Array {
        len: usize,
        end: usize,
    },
    /// An object; its `len` members follow, each a [`Node::Str`] key and
    /// then the value. Duplicate keys are kept, in input order.
    Object {
        len: usize,
        end: usize,
    },
}

/// A parsed JSON document: its values in document order (a parent before
/// its children). Index 0 is the root.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tape<'a> {
    pub(super) nodes: Vec<Node<'a>>,
}

static NULL: Node<'static> = Node::Null;

impl<'a> Tape<'a> {
    /// Parses one JSON document (trailing whitespace allowed), for tests and
    /// small values; decode reads records with serde_json's
    /// `StreamDeserializer` instead.
    pub fn parse(text: &'a [u8]) -> Result<Tape<'a>, serde_json::Error> {
        serde_json::from_slice(text)
    }

    /// The node at `i` (`Null` out of range, which valid indices never are).
    pub fn node(&self, i: usize) -> &Node<'a> {
        self.nodes.get(i).unwrap_or(&NULL)
    }

    /// Index of the value after the one at `i` and its descendants.
    pub fn skip(&self, i: usize) -> usize {
        match self.node(i) {
            Node::Array { end, .. } | Node::Object { end, .. } => *end,
            _ => i + 1,
        }
    }

    /// The string at `i`, if it is one.
    pub fn str(&self, i: usize) -> Option<&str> {
        match self.node(i) {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The elements of the array at `i` (none if it is not an array).
    pub fn items(&self, i: usize) -> Items<'_, 'a> {
        let len = match self.node(i) {
            Node::Array { len, .. } => *len,
            _ => 0,
        };
        Items {
            tape: self,
            next: i + 1,
            left: len,
        }
    }

    /// The members of the object at `i` as `(key, value index)`, in input
    /// order, duplicates included (none if it is not an object).
    pub fn members(&self, i: usize) -> Members<'_, 'a> {
        let len = match self.node(i) {
            Node::Object { len, .. } => *len,
            _ => 0,
        };
        Members {
            tape: self,
            next: i + 1,
            left: len,
        }
    }

    /// The value of `key` in the object at `obj`: the last one if the key is
    /// repeated, as in a `serde_json::Map`.
    pub fn get(&self, obj: usize, key: &str) -> Option<usize> {
        self.members(obj)
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v)
            .last()
    }

    /// `"a string"`, `"a number"`… for messages (types only, never values).
    pub fn type_name(&self, i: usize) -> &'static str {
        ValueRef::Node(self, i).type_name()
    }

    /// The `serde_json::Value` of the node at `i`.
    pub fn to_value(&self, i: usize) -> Value {
        match self.node(i) {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::PosInt(u) => Value::from(*u),
            Node::NegInt(n) => Value::from(*n),
            Node::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Node::Str(s) => Value::String(s.to_string()),
            Node::Array { .. } => Value::Array(self.items(i).map(|j| self.to_value(j)).collect()),
            Node::Object { .. } => {
                let mut map = Map::new();
                for (k, v) in self.members(i) {
                    map.insert(k.to_owned(), self.to_value(v));
                }
                Value::Object(map)
            }
        }
    }

    /// Appends the nodes of `value` (a `Value` made by serde_json itself).
    fn push_value(&mut self, value: &Value) {
        match value {
            Value::Null => self.nodes.push(Node::Null),
            Value::Bool(b) => self.nodes.push(Node::Bool(*b)),
            Value::Number(n) => self.nodes.push(match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => Node::PosInt(u),
                (None, Some(i), _) => Node::NegInt(i),
                (None, None, Some(f)) => Node::Float(f),
                (None, None, None) => Node::Null,
            }),
            Value::String(s) => self.nodes.push(Node::Str(Cow::Owned(s.clone()))),
            Value::Array(items) => {
                let at = self.open(Node::Array { len: 0, end: 0 });
                items.iter().for_each(|v| self.push_value(v));
                self.close(at, items.len());
            }
            Value::Object(map) => {
                let at = self.open(Node::Object { len: 0, end: 0 });
                for (k, v) in map {
                    self.nodes.push(Node::Str(Cow::Owned(k.clone())));
                    self.push_value(v);
                }
                self.close(at, map.len());
            }
        }
    }

    pub(super) fn open(&mut self, node: Node<'a>) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// Sets the length and end of the container opened at `at`.
    pub(super) fn close(&mut self, at: usize, n: usize) {
        let end = self.nodes.len();
        if let Some(Node::Array { len, end: e } | Node::Object { len, end: e }) =
            self.nodes.get_mut(at)
        {
            *len = n;
            *e = end;
        }
    }
}

/// Iterator over an array's element indices, see [`Tape::items`].
pub struct Items<'t, 'a> {
    tape: &'t Tape<'a>,
    next: usize,
    left: usize,
}

impl Iterator for Items<'_, '_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let i = self.next;
        self.next = self.tape.skip(i);
        Some(i)
    }
}

/// Iterator over an object's members, see [`Tape::members`].
pub struct Members<'t, 'a> {
    tape: &'t Tape<'a>,
    next: usize,
    left: usize,
}

impl<'t> Iterator for Members<'t, '_> {
    type Item = (&'t str, usize);
    fn next(&mut self) -> Option<(&'t str, usize)> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let key = self.next;
        let value = key + 1;
        self.next = self.tape.skip(value);
        Some((self.tape.str(key).unwrap_or_default(), value))
    }
}

// ---------------------------------------------------------------------------
// Building a tape with serde_json's parser
// ---------------------------------------------------------------------------

impl<'de> Deserialize<'de> for Tape<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut tape = Tape {
            nodes: Vec::with_capacity(96),
        };
        Build { tape: &mut tape }.deserialize(deserializer)?;
        Ok(tape)
    }
}

/// Appends one value's nodes to a tape; the visitor makes the same calls
/// on the parser as `serde_json::Value`'s.
struct Build<'t, 'de> {
    tape: &'t mut Tape<'de>,
}

impl<'de> DeserializeSeed<'de> for Build<'_, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Build<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<(), E> {
        self.tape.nodes.push(Node::Bool(b));
        Ok(())
    }

    fn visit_i64<E>(self, n: i64) -> Result<(), E> {
        // Like `Value`: a non-negative i64 is a `PosInt`.
        self.tape.nodes.push(match u64::try_from(n) {
            Ok(u) => Node::PosInt(u),
            Err(_) => Node::NegInt(n),
        });
        Ok(())
    }

    fn visit_u64<E>(self, n: u64) -> Result<(), E> {
        self.tape.nodes.push(Node::PosInt(n));
        Ok(())
    }

    fn visit_f64<E>(self, f: f64) -> Result<(), E> {
        // `Value` turns a non-finite float into null (the parser never
        // produces one).
        self.tape.nodes.push(if f.is_finite() {
            Node::Float(f)
        } else {
            Node::Null
        });
        Ok(())
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<(), E> {
        self.tape.nodes.push(Node::Str(Cow::Borrowed(s)));
        Ok(())
    }

    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        self.tape.nodes.push(Node::Str(Cow::Owned(s.to_owned())));
        Ok(())
    }

    fn visit_string<E>(self, s: String) -> Result<(), E> {
        self.tape.nodes.push(Node::Str(Cow::Owned(s)));
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.tape.nodes.push(Node::Null);
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        self.tape.nodes.push(Node::Null);
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let at = self.tape.open(Node::Array { len: 0, end: 0 });
        let mut n = 0;
        while seq
            .next_element_seed(Build {
                tape: &mut *self.tape,
            })?
            .is_some()
        {
            n += 1;
        }
        self.tape.close(at, n);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let at = self.tape.open(Node::Object { len: 0, end: 0 });
        let mut n = 0;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            if n == 0 && key == RAW_VALUE_TOKEN {
                // What `Value` does with this key (see RAW_VALUE_TOKEN):
                // the rest of the object is not read.
                let text = map.next_value_seed(StringSeed)?;
                let value: Value = serde_json::from_str(&text).map_err(de::Error::custom)?;
                self.tape.nodes.truncate(at);
                self.tape.push_value(&value);
                return Ok(());
            }
            self.tape.nodes.push(Node::Str(key));
            map.next_value_seed(Build {
                tape: &mut *self.tape,
            })?;
            n += 1;
        }
        self.tape.close(at, n);
        Ok(())
    }
}

/// An object key, borrowed when it had no escape sequence.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s))
    }
}

/// A string value (the JSON text behind [`RAW_VALUE_TOKEN`]).
struct StringSeed;

impl<'de> DeserializeSeed<'de> for StringSeed {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for StringSeed {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("raw value")
    }
    fn visit_str<E>(self, s: &str) -> Result<String, E> {
        Ok(s.to_owned())
    }
}

// ---------------------------------------------------------------------------
// A view of one value: a tape node or a `serde_json::Value`
// ---------------------------------------------------------------------------

/// A JSON number as serde_json classifies it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    PosInt(u64),
    NegInt(i64),
    Float(f64),
}

/// One JSON value, wherever it lives: a node of a [`Tape`] (input values)
/// or a `serde_json::Value` (values an upcast step set, tests).
#[derive(Debug, Clone, Copy)]
pub enum ValueRef<'v> {
    Node(&'v Tape<'v>, usize),
    Value(&'v Value),
}

impl<'v> From<&'v Value> for ValueRef<'v> {
    fn from(v: &'v Value) -> Self {
        ValueRef::Value(v)
    }
}

impl<'v> ValueRef<'v> {
    pub fn is_null(self) -> bool {
        match self {
            ValueRef::Node(t, i) => matches!(t.node(i), Node::Null),
            ValueRef::Value(v) => v.is_null(),
        }
    }

    pub fn as_str(self) -> Option<&'v str> {
        match self {
            ValueRef::Node(t, i) => t.str(i),
            ValueRef::Value(v) => v.as_str(),
        }
    }

    pub fn as_number(self) -> Option<Num> {
        match self {
            ValueRef::Node(t, i) => match t.node(i) {
                Node::PosInt(u) => Some(Num::PosInt(*u)),
                Node::NegInt(n) => Some(Num::NegInt(*n)),
                Node::Float(f) => Some(Num::Float(*f)),
                _ => None,
            },
            ValueRef::Value(Value::Number(n)) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => Some(Num::PosInt(u)),
                (None, Some(i), _) => Some(Num::NegInt(i)),
                (None, None, f) => f.map(Num::Float),
            },
            ValueRef::Value(_) => None,
        }
    }

    /// The elements, if this is an array.
    pub fn items(self) -> Option<Vec<ValueRef<'v>>> {
        match self {
            ValueRef::Node(t, i) => match t.node(i) {
                Node::Array { .. } => Some(t.items(i).map(|j| ValueRef::Node(t, j)).collect()),
                _ => None,
            },
            ValueRef::Value(Value::Array(a)) => Some(a.iter().map(ValueRef::Value).collect()),
            ValueRef::Value(_) => None,
        }
    }

    /// True when every element is a string satisfying `f` (false if this
    /// is not an array). No allocation, unlike [`Self::items`].
    pub fn all_items_are_str(self, f: impl Fn(&str) -> bool) -> bool {
        match self {
            ValueRef::Node(t, i) => {
                matches!(t.node(i), Node::Array { .. })
                    && t.items(i).all(|j| t.str(j).is_some_and(&f))
            }
            ValueRef::Value(Value::Array(a)) => a.iter().all(|v| v.as_str().is_some_and(&f)),
            ValueRef::Value(_) => false,
        }
    }

    /// `"a string"`, `"a number"`… for messages (types only, never values).
    pub fn type_name(self) -> &'static str {
        let kind = match self {
            ValueRef::Node(t, i) => match t.node(i) {
                Node::Null => 0,
                Node::Bool(_) => 1,
                Node::PosInt(_) | Node::NegInt(_) | Node::Float(_) => 2,
                Node::Str(_) => 3,
                Node::Array { .. } => 4,
                Node::Object { .. } => 5,
            },
            ValueRef::Value(v) => match v {
                Value::Null => 0,
                Value::Bool(_) => 1,
                Value::Number(_) => 2,
                Value::String(_) => 3,
                Value::Array(_) => 4,
                Value::Object(_) => 5,
            },
        };
        [
            "null",
            "a boolean",
            "a number",
            "a string",
            "an array",
            "an object",
        ][kind]
    }

    /// The value as a `serde_json::Value`.
    pub fn to_value(self) -> Value {
        match self {
            ValueRef::Node(t, i) => t.to_value(i),
            ValueRef::Value(v) => v.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn parse_errors_are_serde_json_errors() {
        for text in [
            "",
            "{",
            r#"{"a":1,}"#,
            "[1,]",
            "1e400",
            "-1e400",
            r#""\ud800""#,
            "\"\u{1}\"",
            r#"{"a" 1}"#,
            "01",
            "nul",
            r#"{"$serde_json::private::RawValue":5}"#,
            r#"{"$serde_json::private::RawValue":"{"}"#,
            r#"{"$serde_json::private::RawValue":"[1]","k":2}"#,
            "[1] x",
        ] {
            let ours = Tape::parse(text.as_bytes())
                .map(|_| ())
                .map_err(|e| e.to_string());
            let theirs = serde_json::from_str::<Value>(text)
                .map(|_| ())
                .map_err(|e| e.to_string());
            assert_eq!(ours, theirs, "{text:?}");
        }
        let deep = "[".repeat(1000);
        assert!(Tape::parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn lookups() {
        let tape =
            Tape::parse(br#"{"a":[1,[2,3],{"x":4}],"b":"s","a":{"c":null}}"#).unwrap_or_default();
        let a = tape.get(0, "a").unwrap_or(0);
        assert_eq!(tape.to_value(a), json!({"c": null}));
        assert_eq!(tape.get(0, "zz"), None);
        let first = tape.members(0).next().map(|(_, v)| v).unwrap_or(0);
        let items: Vec<Value> = tape.items(first).map(|i| tape.to_value(i)).collect();
        assert_eq!(items, vec![json!(1), json!([2, 3]), json!({"x": 4})]);
        assert_eq!(tape.members(0).count(), 3);
        assert_eq!(tape.type_name(a), "an object");
        assert_eq!(tape.str(tape.get(0, "b").unwrap_or(0)), Some("s"));
    }

    proptest! {
        #[test]
        fn any_bytes_parse_like_value(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let ours = Tape::parse(&bytes).map(|t| t.to_value(0)).map_err(|e| e.to_string());
            let theirs = serde_json::from_slice::<Value>(&bytes).map_err(|e| e.to_string());
            prop_assert_eq!(ours, theirs);
        }

        #[test]
        fn json_like_text_parses_like_value(text in "[\\[\\]{}\",:0-9a-e.\\-+ \\\\u]{0,40}") {
            let ours = Tape::parse(text.as_bytes()).map(|t| t.to_value(0)).map_err(|e| e.to_string());
            let theirs = serde_json::from_str::<Value>(&text).map_err(|e| e.to_string());
            prop_assert_eq!(ours, theirs);
        }
    }
}
