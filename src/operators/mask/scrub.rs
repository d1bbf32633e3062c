//! The free-text scanner: finds card numbers, `tel:`/`sip:` URIs, emails
//! and phone numbers in a string and replaces them (cards removed, the
//! others by keyed tags), keeping UUIDs, dates, timestamps, IP addresses
//! and other numbers. The rules are in the [module docs](super).

use std::sync::LazyLock;

use regex::Regex;

use super::token::{normalize_email, normalize_phone, Tokenizer};

/// What a card number found in free text becomes.
pub const CARD_REMOVED: &str = "<card:removed>";

/// A span of the scanned text that a scrub pass decided on.
struct Found {
    start: usize,
    end: usize,
    /// `None`: keep verbatim and hide from later passes (UUIDs, dates…).
    replacement: Option<String>,
}

/// A piece of the scanned text during scrubbing.
enum Piece {
    /// Not yet claimed by a pass.
    Raw(usize, usize),
    /// Claimed and kept verbatim.
    Kept(usize, usize),
    /// Claimed and replaced.
    Replaced(String),
}

// Patterns are constants: compiling them cannot fail at run time (the
// `patterns_compile` test forces every one of them).
static URI_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)(?-u:\b)(?:tel|sips?):[^\s<>"'(){}\[\],]+"#).expect("static pattern")
});
static EMAIL_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"[\p{L}\p{N}!#$%\&*+=?\^_`\{\|\}\~.\-]+",
        r"@[\p{L}\p{N}](?:[\p{L}\p{N}\-]*[\p{L}\p{N}])?",
        r"(?:\.[\p{L}\p{N}](?:[\p{L}\p{N}\-]*[\p{L}\p{N}])?)+",
    ))
    .expect("static pattern")
});
static UUID_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
        .expect("static pattern")
});
/// ISO-8601 dates/timestamps, other common dates, IPv4 addresses.
static DATE_IP_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        // ISO-8601 date with optional time and offset.
        r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])",
        r"(?:[T ](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:[.,][0-9]{1,9})?)?",
        r"(?:Z|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)?)?",
        // y.m.d, y/m/d
        r"|(?:19|20)[0-9]{2}[./](?:0?[1-9]|1[0-2])[./](?:0?[1-9]|[12][0-9]|3[01])",
        // d.m.y, d-m-y, d/m/y
        r"|(?:0?[1-9]|[12][0-9]|3[01])[./\-](?:0?[1-9]|1[0-2])[./\-](?:19|20)[0-9]{2}",
        // m/d/y, m-d-y, m.d.y
        r"|(?:0?[1-9]|1[0-2])[./\-](?:0?[1-9]|[12][0-9]|3[01])[./\-](?:19|20)[0-9]{2}",
        // IPv4
        r"|(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])",
        r"(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}",
    ))
    .expect("static pattern")
});
/// A run of digit groups: optional `+`, groups of ASCII digits joined by 1–3
/// separators (spaces, dots, dashes) and parentheses.
static NUMBER_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"\+?(?:\([0-9]{1,5}\)|[0-9])",
        r"(?:[0-9]",
        r"|[ .\-\x{A0}\x{2009}\x{202F}\x{2010}-\x{2013}]{1,3}\(?[0-9]",
        r"|\)[ .\-\x{A0}\x{2009}\x{202F}\x{2010}-\x{2013}]{0,3}[0-9]",
        r"|\([0-9])*",
    ))
    .expect("static pattern")
});

/// Scrubs free text: card numbers → `<card:removed>`, emails →
/// `<email:TOKEN>`, phone numbers and `tel:`/`sip:` URIs →
/// `<phone:TOKEN>`. Returns `None` when nothing had to change.
pub(super) fn scrub_text(tokens: &Tokenizer, text: &str) -> Option<String> {
    if !text
        .bytes()
        .any(|b| b.is_ascii_digit() || b == b'@' || b == b':')
    {
        return None;
    }
    // A bare UUID (most ids): no `@` or `:` for the URI and email
    // passes, and the UUID pass keeps all of it, so nothing changes.
    if is_uuid(text) {
        return None;
    }
    let mut pieces = vec![Piece::Raw(0, text.len())];
    pieces = split_pass(pieces, text, |s, a, b, out| find_uris(tokens, s, a, b, out));
    pieces = split_pass(pieces, text, |s, a, b, out| {
        find_emails(tokens, s, a, b, out)
    });
    pieces = split_pass(pieces, text, find_protected);
    pieces = split_pass(pieces, text, |s, a, b, out| {
        find_numbers(tokens, s, a, b, out)
    });
    if !pieces.iter().any(|p| matches!(p, Piece::Replaced(_))) {
        return None;
    }
    let mut clean = String::with_capacity(text.len() + 64);
    for piece in &pieces {
        match piece {
            Piece::Raw(a, b) | Piece::Kept(a, b) => clean.push_str(&text[*a..*b]),
            Piece::Replaced(r) => clean.push_str(r),
        }
    }
    Some(clean)
}

fn phone_tag(tokens: &Tokenizer, raw: &str) -> String {
    format!("<phone:{}>", tokens.token(&normalize_phone(raw)))
}

fn find_uris(tokens: &Tokenizer, s: &str, a: usize, b: usize, out: &mut Vec<Found>) {
    for m in URI_RE.find_iter(&s[a..b]) {
        let uri = m.as_str().trim_end_matches(['.', ',', ';', ':', '!', '?']);
        // Something must follow the scheme.
        if uri.ends_with(':') || !uri.contains(':') {
            continue;
        }
        let start = a + m.start();
        out.push(Found {
            start,
            end: start + uri.len(),
            replacement: Some(phone_tag(tokens, uri)),
        });
    }
}

fn find_emails(tokens: &Tokenizer, s: &str, a: usize, b: usize, out: &mut Vec<Found>) {
    for m in EMAIL_RE.find_iter(&s[a..b]) {
        out.push(Found {
            start: a + m.start(),
            end: a + m.end(),
            replacement: Some(format!(
                "<email:{}>",
                tokens.token(&normalize_email(m.as_str()))
            )),
        });
    }
}

/// Cards and phone numbers among the digit runs of `s[a..b]`.
fn find_numbers(tokens: &Tokenizer, s: &str, a: usize, b: usize, out: &mut Vec<Found>) {
    for m in NUMBER_RE.find_iter(&s[a..b]) {
        number_run(tokens, s, a + m.start(), a + m.end(), out);
    }
}

fn number_run(tokens: &Tokenizer, s: &str, start: usize, end: usize, out: &mut Vec<Found>) {
    let bytes = s.as_bytes();
    // Digit groups (byte ranges) and all digits of the run.
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut digits: Vec<u8> = Vec::new();
    let mut i = start;
    while i < end {
        if bytes[i].is_ascii_digit() {
            let g = i;
            while i < end && bytes[i].is_ascii_digit() {
                digits.push(bytes[i] - b'0');
                i += 1;
            }
            groups.push((g, i));
        } else {
            i += 1;
        }
    }
    let n = groups.len();
    let Some(&(first_start, _)) = groups.first() else {
        return;
    };
    let has_prefix = first_start > start;
    // Digits inside a long hex word (ids, hashes) are not numbers. Only
    // the first and last group can touch a word; inner groups sit
    // between separators.
    let in_hex_id = |k: usize| (k == 0 || k + 1 == n) && in_hex_word(s, groups[k]);
    // 13-digit epoch milliseconds (2001–2286) are not card or phone
    // numbers (no E.164 number with country code 1 has 13 digits).
    let epoch_ms = |k: usize| {
        groups[k].1 - groups[k].0 == 13 && bytes[groups[k].0] == b'1' && !(k == 0 && has_prefix)
    };
    let eligible = |k: usize| !in_hex_id(k) && !epoch_ms(k);
    let gap = |k: usize| &s[groups[k].1..groups[k + 1].0];
    let glen = |k: usize| groups[k].1 - groups[k].0;
    let mut offsets = Vec::with_capacity(n);
    let mut total = 0;
    for k in 0..n {
        offsets.push(total);
        total += glen(k);
    }
    let window = |k: usize, e: usize| &digits[offsets[k]..offsets[e] + glen(e)];

    let mut found: Vec<Found> = Vec::new();
    let mut used = vec![false; n];

    // Cards: 13–19 digits over whole groups joined by spaces or a single
    // dash, Luhn-valid. Longest match first, left to right.
    let mut k = 0;
    while k < n {
        if !eligible(k) || (k == 0 && has_prefix) {
            k += 1;
            continue;
        }
        let mut last = k;
        let mut count = glen(k);
        while last + 1 < n && eligible(last + 1) && card_gap(gap(last)) {
            if count + glen(last + 1) > 19 {
                break;
            }
            last += 1;
            count += glen(last);
        }
        let hit = (k..=last)
            .rev()
            .find(|&e| (13..=19).contains(&window(k, e).len()) && luhn_valid(window(k, e)));
        match hit {
            Some(e) => {
                used[k..=e].iter_mut().for_each(|u| *u = true);
                found.push(Found {
                    start: groups[k].0,
                    end: groups[e].1,
                    replacement: Some(CARD_REMOVED.to_owned()),
                });
                k = e + 1;
            }
            None => k += 1,
        }
    }

    // A run of exactly dot-separated groups that reads as a decimal
    // (`48.8588443`) or a version (`120.0.6099.130`) is not a phone.
    let run_dotted = n >= 2 && !has_prefix && (0..n - 1).all(|g| gap(g) == ".");
    let skip_phones = run_dotted && (n == 2 || (1..n).any(|g| glen(g) == 1));

    // Phone numbers: 7–15 digits over consecutive groups not taken by a
    // card, as many groups as fit.
    let mut k = if skip_phones { n } else { 0 };
    while k < n {
        if used[k] || !eligible(k) {
            k += 1;
            continue;
        }
        let mut best = None;
        let mut count = 0;
        let mut e = k;
        while e < n && !used[e] && eligible(e) {
            count += glen(e);
            if count > 15 {
                break;
            }
            if count >= 7 {
                best = Some(e);
            }
            e += 1;
        }
        let Some(e) = best else {
            k += 1;
            continue;
        };
        // The span takes a leading `+`/`(` and a closing `)` along.
        let mut ps = if k == 0 { start } else { groups[k].0 };
        if ps > start && bytes[ps - 1] == b'(' {
            ps -= 1;
        }
        let mut pe = groups[e].1;
        let opens = s[ps..pe].matches('(').count();
        let closes = s[ps..pe].matches(')').count();
        if opens > closes && pe < end && bytes[pe] == b')' {
            pe += 1;
        }
        found.push(Found {
            start: ps,
            end: pe,
            replacement: Some(phone_tag(tokens, &s[ps..pe])),
        });
        k = e + 1;
    }
    found.sort_by_key(|f| f.start);
    out.extend(found);
}

/// Runs one scrub pass over the raw pieces, splitting them around what the
/// pass found. `find` gets the whole text and the raw piece's byte range, and
/// must report sorted, non-overlapping spans inside that range.
fn split_pass<F>(pieces: Vec<Piece>, text: &str, mut find: F) -> Vec<Piece>
where
    F: FnMut(&str, usize, usize, &mut Vec<Found>),
{
    let mut out = Vec::with_capacity(pieces.len() + 2);
    let mut found = Vec::new();
    for piece in pieces {
        let Piece::Raw(a, b) = piece else {
            out.push(piece);
            continue;
        };
        found.clear();
        find(text, a, b, &mut found);
        let mut pos = a;
        for f in found.drain(..) {
            if f.start < pos || f.end > b || f.start >= f.end {
                continue; // defensive: never overlap or leave the piece
            }
            if f.start > pos {
                out.push(Piece::Raw(pos, f.start));
            }
            out.push(match f.replacement {
                Some(r) => Piece::Replaced(r),
                None => Piece::Kept(f.start, f.end),
            });
            pos = f.end;
        }
        if pos < b {
            out.push(Piece::Raw(pos, b));
        }
    }
    out
}

/// True if the digit group `g` (a byte range of ASCII digits) is part of a
/// word of ASCII letters and digits that reads as a hex id: at least 16 hex
/// digits, optionally after `0x`, with at least one letter next to the group.
/// `5555550955x12` or `tel5555550955` are not ids, `d41d8cd98f00b204e980…` is.
fn in_hex_word(s: &str, g: (usize, usize)) -> bool {
    let b = s.as_bytes();
    let mut ws = g.0;
    while ws > 0 && b[ws - 1].is_ascii_alphanumeric() {
        ws -= 1;
    }
    let mut we = g.1;
    while we < b.len() && b[we].is_ascii_alphanumeric() {
        we += 1;
    }
    if ws == g.0 && we == g.1 {
        return false;
    }
    let word = &b[ws..we];
    let word = match word {
        [b'0', b'x' | b'X', rest @ ..] => rest,
        _ => word,
    };
    word.len() >= 16 && word.iter().all(u8::is_ascii_hexdigit)
}

/// UUIDs, dates, timestamps and IPv4 addresses: kept verbatim, hidden from
/// the card and phone detection.
fn find_protected(s: &str, a: usize, b: usize, out: &mut Vec<Found>) {
    let slice = &s[a..b];
    let mut spans: Vec<(usize, usize)> = UUID_RE
        .find_iter(slice)
        .map(|m| (a + m.start(), a + m.end()))
        .collect();
    let mut pos = 0;
    while let Some(m) = DATE_IP_RE.find_at(slice, pos) {
        let (ms, me) = (a + m.start(), a + m.end());
        if !digit_before(s, ms) && !digit_after(s, me) {
            spans.push((ms, me));
            pos = m.end();
        } else {
            // Retry one character further: part of a longer number.
            pos = m.start() + slice[m.start()..].chars().next().map_or(1, char::len_utf8);
        }
        if pos >= slice.len() {
            break;
        }
    }
    spans.sort_unstable();
    let mut last_end = a;
    for (st, en) in spans {
        if st >= last_end {
            out.push(Found {
                start: st,
                end: en,
                replacement: None,
            });
            last_end = en;
        }
    }
}

/// True when `s` is exactly one UUID (`8-4-4-4-12` hex digits), as
/// [`UUID_RE`] would match it whole.
fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// True if byte `i` of `s` follows a digit, directly or across one of `-./`.
fn digit_before(s: &str, i: usize) -> bool {
    let b = s.as_bytes();
    match i.checked_sub(1).and_then(|j| b.get(j)) {
        Some(c) if c.is_ascii_digit() => true,
        Some(b'-' | b'.' | b'/') => i
            .checked_sub(2)
            .and_then(|j| b.get(j))
            .is_some_and(u8::is_ascii_digit),
        _ => false,
    }
}

/// True if byte `i` of `s` starts a digit, directly or after one of `-./`.
fn digit_after(s: &str, i: usize) -> bool {
    let b = s.as_bytes();
    match b.get(i) {
        Some(c) if c.is_ascii_digit() => true,
        Some(b'-' | b'.' | b'/') => b.get(i + 1).is_some_and(u8::is_ascii_digit),
        _ => false,
    }
}

fn is_space_sep(c: char) -> bool {
    matches!(c, ' ' | '\u{A0}' | '\u{2009}' | '\u{202F}')
}

fn is_dash(c: char) -> bool {
    matches!(c, '-' | '\u{2010}'..='\u{2013}')
}

/// Card groups may be separated by spaces or by one dash.
fn card_gap(gap: &str) -> bool {
    let mut chars = gap.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if is_dash(c) => true,
        (Some(_), _) => gap.chars().all(is_space_sep),
        (None, _) => false,
    }
}

/// Luhn checksum over decimal digits (values 0–9).
fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    // (Not `is_multiple_of`: the crate's MSRV is 1.85.)
    let rem = sum % 10;
    rem == 0
}

#[cfg(test)]
mod tests {
    use super::super::tests::support::phone_tag;
    use super::super::tests::support::*;
    use super::super::Policy;
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn bare_uuids_are_recognised_like_the_uuid_pattern() {
        let m = masker(Policy::Keep);
        for s in [
            IDS[0],
            "ADBCFA5B-0116-4BAA-B66B-A3F5902E95BF",
            "adbcfa5b-0116-4baa-b66b-a3f5902e95b",
            "adbcfa5b-0116-4baa-b66b-a3f5902e95bfa",
            "adbcfa5b00116-4baa-b66b-a3f5902e95bf",
            "gdbcfa5b-0116-4baa-b66b-a3f5902e95bf",
            "12345678-1234-1234-1234-123456789012",
        ] {
            let whole = UUID_RE.find(s).is_some_and(|f| f.as_str() == s);
            assert_eq!(is_uuid(s), whole, "{s}");
            if whole {
                assert_eq!(m.scrub_text(s), None);
            }
        }
    }

    #[test]
    fn cards_are_removed_when_luhn_valid() {
        let nineteen = with_check_digit("601100000000000000");
        assert_eq!(nineteen.len(), 19);
        assert!(luhn_valid(
            &nineteen.bytes().map(|b| b - b'0').collect::<Vec<_>>()
        ));
        let valid = [
            "4111111111111111".to_owned(),
            "4111 1111 1111 1111".to_owned(),
            "4111-1111-1111-1111".to_owned(),
            "5555 5555 5555 4444".to_owned(),
            "3782 822463 10005".to_owned(),
            "4222222222222".to_owned(),
            nineteen.clone(),
            format!(
                "{} {} {}",
                &nineteen[..4],
                &nineteen[4..12],
                &nineteen[12..]
            ),
        ];
        for card in &valid {
            assert_eq!(
                scrub(&format!("paid with {card}.")),
                "paid with <card:removed>."
            );
            assert_eq!(scrub(card), CARD_REMOVED);
        }
    }

    #[test]
    fn luhn_invalid_or_malformed_cards_are_not_cards() {
        // One digit off: not a card; too long for a phone: left alone.
        assert_eq!(scrub("ref 4111111111111112"), "ref 4111111111111112");
        // 12 and 20 digits are not card lengths (12 digits are a phone).
        assert_eq!(scrub("x 41111111111111111111"), "x 41111111111111111111");
        assert!(!scrub("411111111111").contains(CARD_REMOVED));
        assert!(!scrub("4111 1111 1111 1112").contains(CARD_REMOVED));
        // Double dashes are not a card separator (but the digits are masked).
        let s = scrub("4111--1111--1111--1111");
        assert!(!s.contains(CARD_REMOVED));
        assert!(!s.contains("4111--1111--1111--1111"));
    }

    #[test]
    fn cards_are_checked_before_phones() {
        let m = masker(Policy::Keep);
        let s = scrub("call 555-555-0955 card 4111 1111 1111 1111 thanks");
        assert_eq!(
            s,
            format!(
                "call {} card <card:removed> thanks",
                phone_tag(&m, "+5555550955")
            )
        );
        // Adjacent card and phone in one digit run.
        let s = scrub("5555550955 4111111111111111");
        assert_eq!(
            s,
            format!("{} <card:removed>", phone_tag(&m, "+5555550955"))
        );
        // A '+' number is never a card.
        let s = scrub("+86 138 0013 8000");
        assert_eq!(s, phone_tag(&m, "+8613800138000"));
    }

    #[test]
    fn phone_formats_in_text() {
        let m = masker(Policy::Keep);
        let cases = [
            ("+1 555 555 0955", "+15555550955"),
            ("(555) 555-0955", "+5555550955"),
            ("555-555-0955", "+5555550955"),
            ("555.555.0955", "+5555550955"),
            ("+44 20 7946 0958", "+442079460958"),
            ("+44 (0)20 7946 0958", "+4402079460958"),
            ("5555550955", "+5555550955"),
            ("555 0955 12", "+555095512"),
            ("1234567", "+1234567"),
            ("tel:+15555550955", "+15555550955"),
            ("sip:+15555550955@172.18.182.10;user=phone", "+15555550955"),
            ("SIP:ipadphone@172.18.182.10", "ipadphone"),
        ];
        for (raw, norm) in cases {
            let tag = phone_tag(&m, norm);
            assert_eq!(scrub(raw), tag, "{raw}");
            assert_eq!(
                scrub(&format!("Reach me on {raw}, thanks.")),
                format!("Reach me on {tag}, thanks."),
                "{raw}"
            );
        }
        // Separators and labels around numbers.
        assert_eq!(
            scrub("Tel: 555-555-0955; mobile:+1 555 555 0956"),
            format!(
                "Tel: {}; mobile:{}",
                phone_tag(&m, "+5555550955"),
                phone_tag(&m, "+15555550956")
            )
        );
        // Letters next to a number (not a hex id) do not hide it.
        assert_eq!(
            scrub("call 555-555-0955x123 or tel5555550956 or abc5555550957"),
            format!(
                "call {}x123 or tel{} or abc{}",
                phone_tag(&m, "+5555550955"),
                phone_tag(&m, "+5555550956"),
                phone_tag(&m, "+5555550957")
            )
        );
        // Short numbers are not phone numbers.
        for s in ["order 42", "ext 1234", "room 123456", "v1.2.3"] {
            assert_eq!(scrub(s), s);
        }
    }

    #[test]
    fn emails_in_text() {
        let m = masker(Policy::Keep);
        let t = m.token("jane.roe+cx@mail.example.co.uk");
        assert_eq!(
            scrub("from: Jane.Roe+CX@Mail.Example.co.uk."),
            format!("from: <email:{t}>.")
        );
        assert_eq!(
            scrub("<jane.roe+cx@mail.example.co.uk>"),
            format!("<<email:{t}>>")
        );
        assert_eq!(
            scrub("mailto:jane.roe+cx@mail.example.co.uk"),
            format!("mailto:<email:{t}>")
        );
        assert_eq!(scrub("meet @ noon"), "meet @ noon");
    }

    #[test]
    fn uuids_timestamps_and_other_numbers_survive() {
        let keep = [
            "2f7bf00a-0fc2-4d6a-9b56-92238191433e",
            "conversation 12345678-1234-1234-1234-123456789012 ended",
            "2022-04-06T09:30:44.949Z",
            "2022-04-06T09:30:45Z",
            "2022-04-06 09:30:44",
            "2022-04-06T09:30:44+02:00",
            "between 2022-04-06 and 2022-05-01",
            "06.04.2022 10:00",
            "04/06/2022",
            "15-12-2021",
            "from 172.18.182.10",
            "lat 48.8588443 lon -2.2943506",
            "Chrome/120.0.6099.130 Safari/537.36",
            "1649237444949",
            "from 1649237444949 to 1649237445013",
            "0xdeadbeef12345678",
            "sha 5555550955abcdef0123456789abcdef",
            "hash d41d8cd98f00b204e9800998ecf8427e",
            "b64 dGVzdDEyMzQ1Njc4OTA=",
            "at 09:30:44.949",
            "plain words only",
            "",
        ];
        for s in keep {
            assert_eq!(scrub(s), s);
        }
        // Protected spans next to PII.
        let m = masker(Policy::Keep);
        assert_eq!(
            scrub("2022-04-06T09:30:44.949Z 5555550955 2f7bf00a-0fc2-4d6a-9b56-92238191433e"),
            format!(
                "2022-04-06T09:30:44.949Z {} 2f7bf00a-0fc2-4d6a-9b56-92238191433e",
                phone_tag(&m, "+5555550955")
            )
        );
    }

    #[test]
    fn patterns_compile() {
        for re in [&URI_RE, &EMAIL_RE, &UUID_RE, &DATE_IP_RE, &NUMBER_RE] {
            assert!(!re.as_str().is_empty());
            let _ = re.is_match("");
        }
    }

    // ---- property tests ----------------------------------------------------

    #[derive(Debug, Clone)]
    enum Item {
        Word(String),
        Uuid(String),
        Iso(String),
        Email(String),
        Phone { raw: String, digits: Vec<String> },
        Card { raw: String, digits: String },
    }

    fn phone_item() -> impl Strategy<Value = Item> {
        (
            200u32..1000,
            200u32..1000,
            0u32..10_000,
            1000u32..10_000,
            0usize..10,
        )
            .prop_map(|(a, e, l, u, f)| {
                let nat = format!("{a}{e}{l:04}");
                let raw = match f {
                    0 => format!("+1 {a} {e} {l:04}"),
                    1 => format!("({a}) {e}-{l:04}"),
                    2 => format!("{a}-{e}-{l:04}"),
                    3 => format!("{a}.{e}.{l:04}"),
                    4 => format!("+1{nat}"),
                    5 => format!("tel:+1{nat}"),
                    6 => format!("sip:+1{nat}@172.18.182.10;user=phone"),
                    7 => format!("+44 20 {u} {l:04}"),
                    8 => format!("+1-{a}-{e}-{l:04}"),
                    _ => nat.clone(),
                };
                let all: String = raw.chars().filter(char::is_ascii_digit).collect();
                let all = if f == 6 { format!("1{nat}") } else { all };
                Item::Phone {
                    raw,
                    digits: vec![all, nat],
                }
            })
    }

    fn card_item() -> impl Strategy<Value = Item> {
        (
            prop::sample::select(vec!['3', '4', '5', '6']),
            13usize..=19,
            prop::collection::vec(0u8..10, 18),
            0usize..3,
        )
            .prop_map(|(first, len, body, style)| {
                let mut s = String::new();
                s.push(first);
                for d in &body[..len - 2] {
                    s.push(char::from(b'0' + d));
                }
                let digits = with_check_digit(&s);
                let sep = match style {
                    0 => None,
                    1 => Some(' '),
                    _ => Some('-'),
                };
                let raw = match sep {
                    None => digits.clone(),
                    Some(c) => digits
                        .as_bytes()
                        .chunks(4)
                        .map(|g| String::from_utf8_lossy(g).into_owned())
                        .collect::<Vec<_>>()
                        .join(&c.to_string()),
                };
                Item::Card { raw, digits }
            })
    }

    fn item() -> impl Strategy<Value = Item> {
        prop_oneof![
            3 => "[a-zA-Z]{1,10}".prop_map(Item::Word),
            1 => "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}".prop_map(Item::Uuid),
            1 => (2000u32..2031, 1u32..13, 1u32..29, 0u32..24, 0u32..60, 0u32..1000).prop_map(
                |(y, mo, d, h, mi, ms)| Item::Iso(format!("{y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{:02}.{ms:03}Z", (mi * 7) % 60))
            ),
            2 => ("[a-zA-Z][a-zA-Z0-9._+]{0,10}[a-zA-Z0-9]", "[a-z]{2,10}", prop::sample::select(vec!["com", "org", "co.uk", "io"]))
                .prop_map(|(l, d, t)| Item::Email(format!("{l}@{d}.{t}"))),
            2 => phone_item(),
            2 => card_item(),
        ]
    }

    fn planted_text() -> impl Strategy<Value = (String, Vec<Item>)> {
        prop::collection::vec(
            (
                item(),
                prop::sample::select(vec![" ", ", ", "; ", "\n", " / ", " - ", ": "]),
            ),
            1..12,
        )
        .prop_map(|parts| {
            let mut s = String::new();
            let mut items = Vec::new();
            for (it, sep) in parts {
                let raw = match &it {
                    Item::Word(w) | Item::Uuid(w) | Item::Iso(w) | Item::Email(w) => w.clone(),
                    Item::Phone { raw, .. } | Item::Card { raw, .. } => raw.clone(),
                };
                s.push_str(&raw);
                s.push_str(sep);
                items.push(it);
            }
            (s, items)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn scrub_never_panics_and_keeps_plain_text(
            s in "[0-9 ()+.\\-@:;/a-fxA-Zé\u{a0}\u{2013}日]{0,80}",
            any in "\\PC{0,40}",
        ) {
            let m = masker(Policy::Keep);
            for t in [&s, &any] {
                let out = m.scrub_text(t);
                if let Some(o) = &out {
                    prop_assert_ne!(o, t);
                }
                if !t.bytes().any(|b| b.is_ascii_digit() || b == b'@' || b == b':') {
                    prop_assert!(out.is_none());
                }
            }
        }

        #[test]
        fn planted_pii_never_survives((text, items) in planted_text(), policy in prop::sample::select(vec![Policy::Hash, Policy::Redact, Policy::Keep])) {
            let m = masker(policy);
            let mut ev = event(
                json!({
                    "subject": text,
                    "wrapup_notes": text,
                    "attributes": {"note": text},
                    "queue_id": IDS[4],
                }),
                json!({
                    "freeText": text,
                    "nested": {"list": [text, {"deep": text}]},
                    text.clone(): "key holds the text",
                }),
            );
            m.mask_event(&mut ev);
            let out = serde_json::to_string(&(&ev.payload.fields_map(), &ev.payload.extras_map())).unwrap();
            let lower = out.to_lowercase();
            for it in &items {
                match it {
                    Item::Email(e) => prop_assert!(!lower.contains(&e.to_lowercase()), "email {e} in {out}"),
                    Item::Phone { raw, digits } => {
                        prop_assert!(!out.contains(raw.as_str()), "phone {raw} in {out}");
                        for d in digits {
                            prop_assert!(!out.contains(d.as_str()), "phone digits {d} in {out}");
                        }
                    }
                    Item::Card { raw, digits } => {
                        prop_assert!(!out.contains(raw.as_str()), "card {raw} in {out}");
                        prop_assert!(!out.contains(digits.as_str()), "card digits {digits} in {out}");
                    }
                    // Ids and timestamps in extras are never mangled.
                    Item::Uuid(u) | Item::Iso(u) => {
                        let extras = serde_json::to_string(&ev.payload.extras_map()).unwrap();
                        prop_assert!(extras.contains(u.as_str()), "{u} lost from {extras}");
                    }
                    Item::Word(_) => {}
                }
            }
            let fields = ev.payload.fields_map();
            prop_assert_eq!(fields["queue_id"].as_str(), Some(IDS[4]));
            prop_assert_eq!(&ev.interaction_id, IDS[1]);
        }
    }
}
