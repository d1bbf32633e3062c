//! JSON string and number text as serde_json writes it: escapes (found
//! eight bytes at a time), integers, floats.

use std::borrow::Cow;

use serde_json::Number;

/// A string node's JSON text: borrowed strings need no escaping (see
/// [`Node::Str`](super::Node::Str)).
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

/// True when the eight bytes of `w` hold a `"`, a `\` or a control
/// character (SWAR: exact for "is there any").
pub(super) fn has_special(w: u64) -> bool {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    let ctrl = w.wrapping_sub(ONES * 0x20) & !w;
    let q = w ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let b = w ^ (ONES * u64::from(b'\\'));
    let backslash = b.wrapping_sub(ONES) & !b;
    (ctrl | quote | backslash) & HIGH != 0
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
pub(super) fn write_f64(out: &mut String, f: f64) {
    match Number::from_f64(f) {
        Some(n) => out.push_str(&n.to_string()),
        None => out.push_str("null"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::str_content;
    use super::*;

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
}
