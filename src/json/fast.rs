//! The fast path: records made only of top-level objects with plain
//! strings and integer numbers (nearly every record) read straight into a
//! [`Tape`], without serde; anything else is left to serde_json.

use std::borrow::Cow;

use super::tape::{Node, Tape, RAW_VALUE_TOKEN};
use super::write::has_special;

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

#[cfg(test)]
mod tests {
    use super::super::testing::{arb_value, spell};
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

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
    }
}
