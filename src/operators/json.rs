//! A borrowed JSON tree for decode, and canonical JSON text.
//!
//! Decode used to parse every record into a `serde_json::Value`: a
//! `BTreeMap` insert with a freshly allocated `String` key per member and a
//! `String` per string value. [`Tape`] holds the same information flat: one
//! [`Node`] per JSON value in document order, strings borrowed from the
//! record whenever they had no escape sequence. It is built by serde_json's
//! own parser through exactly the visitor calls `Value` makes, so what is
//! accepted or rejected, and every parse error (category, line, column), is
//! unchanged; [`Tape::to_value`] gives back the `Value` the old code had (the
//! tests check both on generated and random inputs).
//!
//! **Canonical text** ([`Canonical`]) is what `serde_json::to_string` writes
//! for that `Value`: compact, object keys in byte order with a later
//! duplicate key winning (serde_json's `Map` is a `BTreeMap`), serde_json's
//! string escapes and number formats. Content fingerprints and silver
//! records are built from it, so both stay byte for byte what they were.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Number, Value};

/// With serde_json's `raw_value` feature (enabled in this crate), a
/// `Value` treats an object whose *first* key is this string specially: the
/// object is replaced by the JSON document held in that key's string value.
/// [`Tape`] does the same, so no input decodes differently.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

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
    nodes: Vec<Node<'a>>,
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

    fn open(&mut self, node: Node<'a>) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// Sets the length and end of the container opened at `at`.
    fn close(&mut self, at: usize, n: usize) {
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
// Fast path: the common records, without serde
// ---------------------------------------------------------------------------

/// Deeper than this, leave it to serde_json (which stops at 128).
const FAST_MAX_DEPTH: usize = 100;

/// Parses a record made only of top-level objects (one, or several back to
/// back / one per line) whose strings have no escape sequence and whose
/// numbers are integers: nearly every record. Gives the tape of each
/// object and its byte range, exactly as the serde_json path would
/// (`decode` checks this on every test input), or `None` for anything
/// else (escapes, floats, arrays or scalars at the top, any syntax
/// error…), which then goes through serde_json unchanged.
pub fn parse_objects_fast(text: &str) -> Option<FastUnits<'_>> {
    let mut p = Fast { text, pos: 0 };
    let mut first = None;
    let mut more = Vec::new();
    loop {
        p.skip_ws();
        if p.pos == text.len() {
            break;
        }
        if p.peek()? != b'{' {
            return None;
        }
        let start = p.pos;
        // About one node per six bytes of compact JSON: room enough that
        // the tape of a typical record never grows.
        let mut tape = Tape {
            nodes: Vec::with_capacity((text.len() - start) / 6 + 16),
        };
        p.object(&mut tape, 0)?;
        let unit = (tape, start..p.pos);
        match first {
            None => first = Some(unit),
            Some(_) => more.push(unit),
        }
    }
    Some(FastUnits {
        first: first?,
        more,
    })
}

/// The objects [`parse_objects_fast`] read: the first (usually the only
/// one), then any more, each with its byte range.
#[derive(Debug)]
pub struct FastUnits<'a> {
    first: (Tape<'a>, std::ops::Range<usize>),
    more: Vec<(Tape<'a>, std::ops::Range<usize>)>,
}

impl<'a> IntoIterator for FastUnits<'a> {
    type Item = (Tape<'a>, std::ops::Range<usize>);
    type IntoIter = std::iter::Chain<std::iter::Once<Self::Item>, std::vec::IntoIter<Self::Item>>;
    fn into_iter(self) -> Self::IntoIter {
        std::iter::once(self.first).chain(self.more)
    }
}

/// Cursor of [`parse_objects_fast`].
struct Fast<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Fast<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        self.skip_ws();
        (self.peek()? == b).then(|| self.pos += 1)
    }

    fn value(&mut self, tape: &mut Tape<'a>, depth: usize) -> Option<()> {
        self.skip_ws();
        match self.peek()? {
            b'{' => self.object(tape, depth),
            b'[' => self.array(tape, depth),
            b'"' => {
                let s = self.string()?;
                tape.nodes.push(Node::Str(Cow::Borrowed(s)));
                Some(())
            }
            b't' => self.literal("true", Node::Bool(true), tape),
            b'f' => self.literal("false", Node::Bool(false), tape),
            b'n' => self.literal("null", Node::Null, tape),
            _ => {
                let n = self.integer()?;
                tape.nodes.push(n);
                Some(())
            }
        }
    }

    fn literal(&mut self, word: &str, node: Node<'a>, tape: &mut Tape<'a>) -> Option<()> {
        self.text.get(self.pos..)?.starts_with(word).then(|| {
            self.pos += word.len();
            tape.nodes.push(node);
        })
    }

    fn object(&mut self, tape: &mut Tape<'a>, depth: usize) -> Option<()> {
        if depth >= FAST_MAX_DEPTH {
            return None;
        }
        self.eat(b'{')?;
        let at = tape.open(Node::Object { len: 0, end: 0 });
        let mut n = 0;
        self.skip_ws();
        if self.peek()? == b'}' {
            self.pos += 1;
        } else {
            loop {
                self.skip_ws();
                if self.peek()? != b'"' {
                    return None;
                }
                let key = self.string()?;
                if n == 0 && key == RAW_VALUE_TOKEN {
                    return None;
                }
                tape.nodes.push(Node::Str(Cow::Borrowed(key)));
                self.eat(b':')?;
                self.value(tape, depth + 1)?;
                n += 1;
                self.skip_ws();
                match self.peek()? {
                    b',' => self.pos += 1,
                    b'}' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        tape.close(at, n);
        Some(())
    }

    fn array(&mut self, tape: &mut Tape<'a>, depth: usize) -> Option<()> {
        if depth >= FAST_MAX_DEPTH {
            return None;
        }
        self.eat(b'[')?;
        let at = tape.open(Node::Array { len: 0, end: 0 });
        let mut n = 0;
        self.skip_ws();
        if self.peek()? == b']' {
            self.pos += 1;
        } else {
            loop {
                self.value(tape, depth + 1)?;
                n += 1;
                self.skip_ws();
                match self.peek()? {
                    b',' => self.pos += 1,
                    b']' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        tape.close(at, n);
        Some(())
    }

    /// A string without escapes or control characters (else `None`).
    fn string(&mut self) -> Option<&'a str> {
        let start = self.pos + 1;
        let bytes = self.text.as_bytes().get(start..)?;
        let len = first_special(bytes)?;
        if bytes.get(len) != Some(&b'"') {
            return None;
        }
        self.pos = start + len + 1;
        self.text.get(start..start + len)
    }

    /// An integer as serde_json reads it (`None` for `-0`, leading zeros,
    /// fractions, exponents and numbers out of range, which serde_json
    /// reads as floats or rejects).
    fn integer(&mut self) -> Option<Node<'a>> {
        let bytes = self.text.as_bytes();
        let negative = self.peek()? == b'-';
        let digits_at = self.pos + usize::from(negative);
        let digits = bytes
            .get(digits_at..)?
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let end = digits_at + digits;
        if digits == 0
            || (digits > 1 && bytes.get(digits_at) == Some(&b'0'))
            || matches!(bytes.get(end), Some(b'.' | b'e' | b'E'))
        {
            return None;
        }
        let text = self.text.get(digits_at..end)?;
        let magnitude: u64 = text.parse().ok()?;
        self.pos = end;
        if !negative {
            return Some(Node::PosInt(magnitude));
        }
        if magnitude == 0 {
            return None;
        }
        let n = 0i64.checked_sub_unsigned(magnitude)?;
        Some(Node::NegInt(n))
    }
}

/// Index of the first `"`, `\` or control character in `bytes`, eight
/// bytes at a time.
fn first_special(bytes: &[u8]) -> Option<usize> {
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        if has_special(u64::from_le_bytes(w)) {
            break;
        }
        at += 8;
    }
    bytes
        .get(at..)?
        .iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
        .map(|i| at + i)
}

/// True when the eight bytes of `w` hold a `"`, a `\` or a control
/// character (SWAR: exact for "is there any").
fn has_special(w: u64) -> bool {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    let ctrl = w.wrapping_sub(ONES * 0x20) & !w;
    let q = w ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let b = w ^ (ONES * u64::from(b'\\'));
    let backslash = b.wrapping_sub(ONES) & !b;
    (ctrl | quote | backslash) & HIGH != 0
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

// ---------------------------------------------------------------------------
// Canonical text
// ---------------------------------------------------------------------------

/// Writes canonical JSON text (see the module docs). Holds a scratch
/// buffer for sorting object members, so keep one per thread of work.
#[derive(Debug, Default)]
pub struct Canonical {
    /// `(key node, value node)` of the objects being written, innermost last.
    members: Vec<(usize, usize)>,
}

impl Canonical {
    /// Appends the canonical text of the node at `i` to `out`.
    pub fn write(&mut self, tape: &Tape<'_>, i: usize, out: &mut String) {
        match tape.node(i) {
            Node::Null => out.push_str("null"),
            Node::Bool(true) => out.push_str("true"),
            Node::Bool(false) => out.push_str("false"),
            Node::PosInt(u) => write_u64(out, *u),
            Node::NegInt(n) => {
                out.push('-');
                write_u64(out, n.unsigned_abs());
            }
            Node::Float(f) => write_f64(out, *f),
            Node::Str(s) => write_str_node(out, s),
            Node::Array { .. } => {
                out.push('[');
                for (n, j) in tape.items(i).enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    self.write(tape, j, out);
                }
                out.push(']');
            }
            Node::Object { .. } => {
                out.push('{');
                let (base, end) = self.sorted_members(tape, i);
                let mut first = true;
                for m in base..end {
                    let Some(&(key, value)) = self.members.get(m) else {
                        break;
                    };
                    if self.superseded(tape, m, end) {
                        continue;
                    }
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    if let Node::Str(k) = tape.node(key) {
                        write_str_node(out, k);
                    }
                    out.push(':');
                    self.write(tape, value, out);
                }
                self.members.truncate(base);
                out.push('}');
            }
        }
    }

    /// Pushes the members of the object at `obj` onto the scratch stack,
    /// sorted by key (stable: repeated keys stay in input order), and
    /// returns their range in it. The caller truncates it afterwards.
    pub fn sorted_members(&mut self, tape: &Tape<'_>, obj: usize) -> (usize, usize) {
        let base = self.members.len();
        self.members
            .extend(tape.members(obj).map(|(_, v)| (v - 1, v)));
        let key = |k: usize| tape.str(k).unwrap_or_default();
        if let Some(slice) = self.members.get_mut(base..) {
            slice.sort_by(|a, b| key(a.0).cmp(key(b.0)));
        }
        (base, self.members.len())
    }

    /// The sorted member at `m` of the range ending at `end`.
    pub fn member(&self, m: usize) -> Option<(usize, usize)> {
        self.members.get(m).copied()
    }

    /// True when the next member in the sorted range has the same key: the
    /// later duplicate wins, as in a `serde_json::Map`.
    pub fn superseded(&self, tape: &Tape<'_>, m: usize, end: usize) -> bool {
        match (self.members.get(m), self.members.get(m + 1)) {
            (Some(a), Some(b)) if m + 1 < end => tape.str(a.0) == tape.str(b.0),
            _ => false,
        }
    }

    /// Drops the scratch entries from `base` on (see [`Self::sorted_members`]).
    pub fn release(&mut self, base: usize) {
        self.members.truncate(base);
    }
}

/// A string node's JSON text: borrowed strings need no escaping (see
/// [`Node::Str`]).
// The `Cow` variant is the point (borrowed = nothing to escape), so a
// `&str` would not do.
#[allow(clippy::ptr_arg)]
pub fn write_str_node(out: &mut String, s: &Cow<'_, str>) {
    match s {
        Cow::Borrowed(s) => {
            out.push('"');
            out.push_str(s);
            out.push('"');
        }
        Cow::Owned(s) => write_json_str(out, s),
    }
}

/// Appends `s` as a JSON string literal, escaped as serde_json does
/// (`\"`, `\\`, `\b \t \n \f \r`, other control characters as `\u00xx`).
pub fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    if !needs_escape(s.as_bytes()) {
        out.push_str(s);
        out.push('"');
        return;
    }
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x09 => b't',
            0x0a => b'n',
            0x0c => b'f',
            0x0d => b'r',
            0x00..=0x1f => b'u',
            _ => continue,
        };
        // Escaped bytes are ASCII, so `run..i` is on char boundaries.
        out.push_str(s.get(run..i).unwrap_or_default());
        out.push('\\');
        out.push(char::from(short));
        if short == b'u' {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        run = i + 1;
    }
    out.push_str(s.get(run..).unwrap_or_default());
    out.push('"');
}

/// True when `bytes` hold a `"`, a `\\` or a control character: eight bytes
/// at a time (SWAR), since nearly every string written has none.
fn needs_escape(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(8);
    let mut found = false;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        found |= has_special(u64::from_le_bytes(w));
    }
    found
        || chunks
            .remainder()
            .iter()
            .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// Appends the decimal digits of `v`.
pub fn write_u64(out: &mut String, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or_default());
}

/// Appends a finite float as serde_json writes it (shortest round-trip
/// form, e.g. `1.0`, `1e20`, `-0.0`).
fn write_f64(out: &mut String, f: f64) {
    match Number::from_f64(f) {
        Some(n) => out.push_str(&n.to_string()),
        None => out.push_str("null"),
    }
}

/// The content of a canonical JSON string literal (`"…"`): borrowed when it
/// has no escape sequence. `None` if `json` is not a string literal.
pub fn str_content(json: &str) -> Option<Cow<'_, str>> {
    let inner = json.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(json).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// Calls `f` with the text of each element of the canonical JSON array
/// `text` (compact, as this crate writes it), in order. False when `text`
/// is not such an array (then `f` may have seen some elements).
pub fn each_canonical_item<'a>(text: &'a str, mut f: impl FnMut(&'a str)) -> bool {
    each_canonical(text, false, |_, v| f(v))
}

/// Calls `f` with the key (its JSON string literal) and value text of each
/// member of the canonical JSON object `text`, in order. False when `text`
/// is not such an object (then `f` may have seen some members).
pub fn each_canonical_member<'a>(text: &'a str, mut f: impl FnMut(&'a str, &'a str)) -> bool {
    each_canonical(text, true, |k, v| f(k.unwrap_or_default(), v))
}

/// The walk behind [`each_canonical_item`] and [`each_canonical_member`].
fn each_canonical<'a>(
    text: &'a str,
    object: bool,
    mut f: impl FnMut(Option<&'a str>, &'a str),
) -> bool {
    let b = text.as_bytes();
    let (open, close) = if object { (b'{', b'}') } else { (b'[', b']') };
    if b.len() < 2 || b.first() != Some(&open) || b.last() != Some(&close) {
        return false;
    }
    let last = b.len() - 1;
    let mut at = 1;
    if at == last {
        return true;
    }
    loop {
        let key = if object {
            let Some(end) = canonical_string_end(b, at).filter(|&e| b.get(e) == Some(&b':')) else {
                return false;
            };
            let key = text.get(at..end);
            at = end + 1;
            key
        } else {
            None
        };
        let Some((end, value)) =
            canonical_value_end(b, at).and_then(|end| Some((end, text.get(at..end)?)))
        else {
            return false;
        };
        f(key, value);
        match b.get(end) {
            Some(b',') if end < last => at = end + 1,
            Some(_) if end == last => return true,
            _ => return false,
        }
    }
}

/// End of the canonical JSON string literal starting at `at` in `b`.
fn canonical_string_end(b: &[u8], at: usize) -> Option<usize> {
    if b.get(at) != Some(&b'"') {
        return None;
    }
    let mut i = at + 1;
    loop {
        match b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// End of the canonical JSON value starting at `at` in `b`.
fn canonical_value_end(b: &[u8], at: usize) -> Option<usize> {
    match b.get(at)? {
        b'"' => canonical_string_end(b, at),
        b'[' | b'{' => {
            let mut depth = 0usize;
            let mut i = at;
            loop {
                match b.get(i)? {
                    b'"' => {
                        i = canonical_string_end(b, i)?;
                        continue;
                    }
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        // A number or a literal.
        _ => {
            let len = b
                .get(at..)?
                .iter()
                .take_while(|c| matches!(c, b'0'..=b'9' | b'a'..=b'z' | b'E' | b'.' | b'+' | b'-'))
                .count();
            (len > 0).then_some(at + len)
        }
    }
}

/// Reads canonical text back into a `serde_json::Value` exactly.
///
/// serde_json does not parse floats exactly (it would need its
/// `float_roundtrip` feature, which would also change how input is read),
/// so its reading of `1.2345678901234567e89` may come back one unit in the
/// last place off, and writing that differs from the text. This reader
/// takes floats with the standard library's correctly rounded parser, so
/// `parse_canonical(t)` written again is `t`. It is meant for text the
/// crate wrote (compact, no whitespace); anything else may be refused
/// (`None`).
pub fn parse_canonical(text: &str) -> Option<Value> {
    let mut r = Reader { s: text, pos: 0 };
    let v = r.value(0)?;
    (r.pos == text.len()).then_some(v)
}

/// Cursor of [`parse_canonical`].
struct Reader<'a> {
    s: &'a str,
    pos: usize,
}

/// Deeper than serde_json ever writes (its parser stops at 128).
const MAX_DEPTH: usize = 256;

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.pos += 1)
    }

    fn literal(&mut self, word: &str, v: Value) -> Option<Value> {
        self.s.get(self.pos..)?.starts_with(word).then(|| {
            self.pos += word.len();
            v
        })
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'n' => self.literal("null", Value::Null),
            b't' => self.literal("true", Value::Bool(true)),
            b'f' => self.literal("false", Value::Bool(false)),
            b'"' => self.string().map(Value::String),
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                if self.eat(b']').is_none() {
                    loop {
                        items.push(self.value(depth + 1)?);
                        if self.eat(b',').is_none() {
                            self.eat(b']')?;
                            break;
                        }
                    }
                }
                Some(Value::Array(items))
            }
            b'{' => {
                self.pos += 1;
                let mut map = Map::new();
                if self.eat(b'}').is_none() {
                    loop {
                        let key = self.string()?;
                        self.eat(b':')?;
                        map.insert(key, self.value(depth + 1)?);
                        if self.eat(b',').is_none() {
                            self.eat(b'}')?;
                            break;
                        }
                    }
                }
                Some(Value::Object(map))
            }
            _ => self.number(),
        }
    }

    fn number(&mut self) -> Option<Value> {
        let rest = self.s.get(self.pos..)?;
        let len = rest
            .bytes()
            .take_while(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            .count();
        let text = rest.get(..len)?;
        self.pos += len;
        if text.contains(['.', 'e', 'E']) {
            Number::from_f64(text.parse().ok()?).map(Value::Number)
        } else if text.starts_with('-') {
            text.parse::<i64>().ok().map(Value::from)
        } else {
            text.parse::<u64>().ok().map(Value::from)
        }
    }

    fn string(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let mut out = String::new();
        loop {
            let rest = self.s.get(self.pos..)?;
            let run = rest.find(['"', '\\'])?;
            out.push_str(rest.get(..run)?);
            self.pos += run;
            if self.eat(b'"').is_some() {
                return Some(out);
            }
            self.pos += 1; // the backslash
            let c = match self.peek()? {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    self.pos += 1;
                    let unit = self.hex4()?;
                    let c = if (0xd800..0xdc00).contains(&unit) {
                        self.eat(b'\\')?;
                        self.eat(b'u')?;
                        let low = self.hex4()?;
                        char::decode_utf16([unit, low]).next()?.ok()?
                    } else {
                        char::from_u32(u32::from(unit))?
                    };
                    out.push(c);
                    continue;
                }
                _ => return None,
            };
            self.pos += 1;
            out.push(c);
        }
    }

    fn hex4(&mut self) -> Option<u16> {
        let digits = self.s.get(self.pos..self.pos + 4)?;
        self.pos += 4;
        u16::from_str_radix(digits, 16).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn canonical(text: &str) -> Result<String, String> {
        let tape = Tape::parse(text.as_bytes()).map_err(|e| e.to_string())?;
        let mut out = String::new();
        Canonical::default().write(&tape, 0, &mut out);
        Ok(out)
    }

    /// What the old decode saw: serde_json's `Value` and its text.
    fn reference(text: &str) -> Result<String, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        Ok(serde_json::to_string(&v).unwrap_or_default())
    }

    fn same_as_value(text: &str) {
        assert_eq!(canonical(text), reference(text), "{text:?}");
        if let (Ok(tape), Ok(v)) = (
            Tape::parse(text.as_bytes()),
            serde_json::from_str::<Value>(text),
        ) {
            assert_eq!(tape.to_value(0), v, "{text:?}");
        }
    }

    #[test]
    fn canonical_text_is_serde_json_text() {
        for text in [
            r#"{"b":1,"a":{"d":[1,2,{"z":null,"y":true}],"c":"x"}}"#,
            r#"{"a":1,"a":2,"b":{"k":1,"k":{"n":3}}}"#,
            r#" [ 1 , -2 , 3.5 , -0 , 1e2 , 1E-7 , 18446744073709551615 , 18446744073709551616 , -9223372036854775808 , -9223372036854775809 ] "#,
            r#""esc \" \\ \/ \b \f \n \r \t \u0001 \u001f \u007f \u00e9 \ud83d\ude00""#,
            r#"{"\u0061":1,"a":2,"é":3,"e":4,"":5}"#,
            "\"raw é ☃ 😀\"",
            r#"{"$serde_json::private::RawValue":"[1,{\"b\":2,\"a\":1}]"}"#,
            r#"[{"$serde_json::private::RawValue":"\"s\""}]"#,
            r#"{"x":{"$serde_json::private::RawValue":"{}"}}"#,
            r#"{"k":1,"$serde_json::private::RawValue":"[1]"}"#,
            "1.7976931348623157e308",
            "5e-324",
            "0.1",
            "123456789.123456789",
            "null",
            "true",
            "{}",
            "[]",
        ] {
            same_as_value(text);
        }
    }

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

    #[test]
    fn string_contents() {
        assert_eq!(str_content(r#""abc""#).as_deref(), Some("abc"));
        assert_eq!(str_content(r#""a\"b\u00e9""#).as_deref(), Some("a\"bé"));
        assert_eq!(str_content("12"), None);
        for text in [
            "",
            "plain",
            "0123456789abcdef-é☃",
            "a\"",
            "\\",
            "x\u{1f}y",
            "12345678\n",
        ] {
            let mut ours = String::new();
            write_json_str(&mut ours, text);
            assert_eq!(ours, serde_json::to_string(text).unwrap_or_default());
            let needs = text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
            assert_eq!(needs_escape(text.as_bytes()), needs, "{text:?}");
        }
        for b in 0..=255u8 {
            for at in 0..16 {
                let mut bytes = vec![b'a'; 16];
                bytes[at] = b;
                let want = b < 0x20 || b == b'"' || b == b'\\';
                assert_eq!(needs_escape(&bytes), want, "{b} at {at}");
            }
        }
        let mut s = String::new();
        write_json_str(&mut s, "a\"b\\c\n\u{1}\u{7f}é");
        assert_eq!(
            s,
            serde_json::to_string("a\"b\\c\n\u{1}\u{7f}é").unwrap_or_default()
        );
        let mut n = String::new();
        for v in [0, 7, 10, 99, 1_765_551_000_123, u64::MAX] {
            n.clear();
            write_u64(&mut n, v);
            assert_eq!(n, v.to_string());
        }
    }

    /// JSON text for `v` with random spacing, member order, duplicates and
    /// escapes: many spellings of one value.
    fn rnd(seed: &mut u64) -> usize {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 33) as usize
    }

    fn spell(v: &Value, seed: &mut u64, out: &mut String) {
        let ws = [" ", "", "\n", "\t", "\r\n "][rnd(seed) % 5];
        match v {
            Value::String(s) => {
                if rnd(seed) % 3 == 0 && s.chars().all(|c| (c as u32) < 0xd800) {
                    out.push('"');
                    for c in s.chars() {
                        out.push_str(&format!("\\u{:04x}", c as u32));
                    }
                    out.push('"');
                } else {
                    out.push_str(&serde_json::to_string(s).unwrap_or_default());
                }
            }
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(ws);
                    spell(x, seed, out);
                }
                out.push(']');
            }
            Value::Object(m) => {
                out.push('{');
                let mut entries: Vec<(&String, &Value)> = m.iter().collect();
                entries.reverse();
                let mut first = true;
                for (k, x) in entries {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    if rnd(seed) % 4 == 0 {
                        // A duplicate that the later member overrides.
                        out.push_str(&serde_json::to_string(k).unwrap_or_default());
                        out.push_str(":0,");
                    }
                    out.push_str(ws);
                    out.push_str(&serde_json::to_string(k).unwrap_or_default());
                    out.push_str(ws);
                    out.push(':');
                    spell(x, seed, out);
                }
                out.push('}');
            }
            other => out.push_str(&other.to_string()),
        }
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
            ".{0,12}".prop_map(Value::from),
            "[a-c\"\\\\\u{1}é]{0,4}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec(("[a-cé_\"]{0,3}", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn canonical_text_reads_back_exactly() {
        let floats: [f64; 6] = [
            -6.231775414905229e96,
            4.1732555479989915e-200,
            -0.0,
            1e-7,
            5e-324,
            0.42,
        ];
        for f in floats {
            let text = serde_json::to_string(&Value::from(f)).unwrap_or_default();
            let back = parse_canonical(&text);
            assert_eq!(
                back.as_ref().and_then(Value::as_f64).map(f64::to_bits),
                Some(f.to_bits())
            );
            assert_eq!(back.map(|v| v.to_string()), Some(text));
        }
        let text = r#"{"a":"\"\\\b\f\n\r\t\u0001é😀","b":[true,false,null,{}],"c":-9223372036854775808,"d":18446744073709551615}"#;
        let v: Value = serde_json::from_str(text).unwrap_or_default();
        assert_eq!(parse_canonical(text), Some(v));
        for bad in ["", "[", r#"{"a"}"#, "nul", r#""\q""#, "1 ", "[1,]"] {
            assert_eq!(parse_canonical(bad), None, "{bad}");
        }
    }

    #[test]
    fn canonical_walkers_refuse_what_is_not_canonical() {
        for bad in [
            "", "[", "]", "[1,]", "[,1]", "[1 ,2]", "[\"a]", "[1]x", "{}x", "1", r#""s""#,
        ] {
            assert!(!each_canonical_item(bad, |_| {}), "{bad}");
        }
        for bad in [
            "",
            "{",
            r#"{"a"}"#,
            r#"{"a":}"#,
            r#"{"a":1,}"#,
            "{1:2}",
            r#"{"a":[1}"#,
            "[]",
        ] {
            assert!(!each_canonical_member(bad, |_, _| {}), "{bad}");
        }
        let mut seen = Vec::new();
        assert!(each_canonical_member(
            r#"{"a\"b":"x,]}","c":[{"d":"]"}],"e":null}"#,
            |k, v| { seen.push(format!("{k}={v}")) }
        ));
        assert_eq!(
            seen,
            [r#""a\"b"="x,]}""#, r#""c"=[{"d":"]"}]"#, r#""e"=null"#]
        );
    }

    /// The fast scanner gives what serde_json's stream gives, or nothing.
    fn assert_fast_like_serde(text: &str) {
        let Some(fast) = parse_objects_fast(text) else {
            return;
        };
        let fast: Vec<_> = fast.into_iter().collect();
        let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Tape<'_>>();
        let mut slow = Vec::new();
        loop {
            let rest = text.get(stream.byte_offset()..).unwrap_or_default();
            let start = stream.byte_offset()
                + (rest.len() - rest.trim_start_matches([' ', '\t', '\n', '\r']).len());
            match stream.next() {
                None => break,
                Some(Ok(t)) => slow.push((t, start..stream.byte_offset())),
                Some(Err(e)) => panic!("fast path accepted {text:?}, serde_json: {e}"),
            }
        }
        assert_eq!(fast, slow, "{text:?}");
    }

    #[test]
    fn fast_scanner_reads_like_serde_json() {
        for text in [
            r#"{"a":1,"b":[true,false,null,{"c":"d"}],"e":-5,"f":"é☃"}"#,
            " \n{\"a\":{}}\r\n{\"b\":[]}\t",
            r#"{"a":1}{"a":2}"#,
            r#"{"a":18446744073709551615,"b":-9223372036854775808,"c":0}"#,
            r#"{"a":1,"a":2}"#,
        ] {
            assert!(parse_objects_fast(text).is_some(), "{text}");
            assert_fast_like_serde(text);
        }
        for text in [
            "",
            " ",
            "[]",
            "1",
            r#""s""#,
            r#"{"a":"\n"}"#,
            r#"{"a":1.5}"#,
            r#"{"a":1e2}"#,
            r#"{"a":-0}"#,
            r#"{"a":01}"#,
            r#"{"a":18446744073709551616}"#,
            r#"{"a":-9223372036854775809}"#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{"a":1} x"#,
            r#"{"a":tru}"#,
            r#"{"a":truex}"#,
            "{\"a\":\"\u{1}\"}",
            r#"{"$serde_json::private::RawValue":"1"}"#,
        ] {
            assert!(parse_objects_fast(text).is_none(), "{text}");
        }
        let deep = format!("{}{}", "{\"a\":".repeat(150), "1");
        assert!(parse_objects_fast(&deep).is_none());
    }

    proptest! {
        #[test]
        fn fast_scanner_agrees_with_serde_json(v in arb_value(), seed in any::<u64>(), cut in any::<usize>()) {
            let mut text = String::new();
            let mut s = seed;
            spell(&json!({"k": v, "z": 1}), &mut s, &mut text);
            assert_fast_like_serde(&text);
            let doubled = format!("{text}\n{text}");
            assert_fast_like_serde(&doubled);
            let cut = cut % (text.len() + 1);
            if let Some(prefix) = text.get(..cut) {
                assert_fast_like_serde(prefix);
            }
        }

        #[test]
        fn fast_scanner_on_json_like_text(text in "[\\[\\]{}\",:0-9a-e.\\-+ \\\\nrtu]{0,40}") {
            assert_fast_like_serde(&text);
        }

        /// The canonical walkers give each element's and member's own
        /// canonical text.
        #[test]
        fn canonical_walkers_split_like_serde_json(v in arb_value()) {
            let text = serde_json::to_string(&v).unwrap_or_default();
            let mut items = Vec::new();
            let is_array = each_canonical_item(&text, |t| items.push(t.to_owned()));
            prop_assert_eq!(is_array, v.is_array());
            if let Value::Array(a) = &v {
                let want: Vec<String> = a.iter().map(Value::to_string).collect();
                prop_assert_eq!(items, want);
            }
            let mut members = Vec::new();
            let is_object = each_canonical_member(&text, |k, t| members.push((k.to_owned(), t.to_owned())));
            prop_assert_eq!(is_object, v.is_object());
            if let Value::Object(m) = &v {
                let want: Vec<(String, String)> = m
                    .iter()
                    .map(|(k, x)| (serde_json::to_string(k).unwrap_or_default(), x.to_string()))
                    .collect();
                prop_assert_eq!(members, want);
            }
        }

        /// Canonical text read back and written again is the same text
        /// (floats included, which serde_json's own reading does not
        /// guarantee).
        #[test]
        fn canonical_text_round_trips(v in arb_value()) {
            let text = serde_json::to_string(&v).unwrap_or_default();
            let back = parse_canonical(&text);
            prop_assert_eq!(back.map(|b| b.to_string()), Some(text));
        }

        #[test]
        fn any_spelling_gives_serde_json_canonical_text(v in arb_value(), seed in any::<u64>()) {
            let mut text = String::new();
            let mut s = seed;
            spell(&v, &mut s, &mut text);
            same_as_value(&text);
            // Equal to `v`'s own text up to float parsing, which serde_json
            // does not round-trip exactly without its `float_roundtrip`
            // feature (the tape reads floats with the same parser).
            if !text.contains(['.', 'e', 'E']) {
                prop_assert_eq!(canonical(&text), Ok(serde_json::to_string(&v).unwrap_or_default()));
            }
        }

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
