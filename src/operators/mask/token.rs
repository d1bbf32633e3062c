//! Keyed deterministic tokens, `lowercase_hex(HMAC-SHA256(key,
//! normalize(v)))`, and the normalization applied before hashing: the
//! stable contract in the [module docs](super).

use hmac::digest::{Key, KeyInit};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

pub(super) type HmacSha256 = Hmac<Sha256>;

/// The keyed HMAC state tokens are computed with: derived once from the
/// masking key, cloned per value.
#[derive(Clone)]
pub(super) struct Tokenizer {
    mac: HmacSha256,
}

impl Tokenizer {
    /// A tokenizer for `key` (any length; HMAC semantics).
    pub(super) fn new(key: &[u8]) -> Tokenizer {
        // HMAC-SHA256 as in RFC 2104: a key longer than the 64-byte block is
        // first hashed, then the key is zero-padded to the block size. Doing
        // this here keeps construction infallible.
        let mut block = Key::<HmacSha256>::default();
        if key.len() > block.len() {
            let digest = Sha256::digest(key);
            block[..digest.len()].copy_from_slice(&digest);
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        Tokenizer {
            mac: <HmacSha256 as KeyInit>::new(&block),
        }
    }

    /// Token = lowercase hex of HMAC-SHA256(key, normalized value), 64 chars.
    /// `normalized` must already be normalized (see the module docs).
    pub(super) fn token(&self, normalized: &str) -> String {
        self.token_hex(normalized).as_str().to_owned()
    }

    /// [`Self::token`] without allocating.
    pub(super) fn token_hex(&self, normalized: &str) -> TokenHex {
        let mut mac = self.mac.clone();
        mac.update(normalized.as_bytes());
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (pair, b) in out.chunks_exact_mut(2).zip(mac.finalize().into_bytes()) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 0x0f)];
        }
        TokenHex(out)
    }

    /// The token of the address `s` ([`normalize_address`], normalized in
    /// `buf`).
    pub(super) fn address_token(&self, s: &str, buf: &mut String) -> TokenHex {
        normalize_address_into(s, buf);
        self.token_hex(buf)
    }
}

/// A token's 64 lowercase hex digits.
pub(super) struct TokenHex([u8; 64]);

impl TokenHex {
    pub(super) fn as_str(&self) -> &str {
        // Only ASCII hex digits are written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Length of a leading URI scheme including its `:` (`tel:` → 4), if any.
fn scheme_len(s: &str) -> Option<usize> {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, c)) if c.is_ascii_alphabetic() => {}
        _ => return None,
    }
    for (i, c) in chars {
        if c == ':' {
            return Some(i + 1);
        }
        if !(c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-')) {
            return None;
        }
    }
    None
}

/// Normalizes a phone number or `tel:`/`sip:` URI: `+` followed by the
/// digits of the user part, or the lowercased user part if it has no digit.
/// See the module docs for the exact steps.
pub fn normalize_phone(s: &str) -> String {
    let mut out = String::new();
    normalize_phone_into(s, &mut out);
    out
}

/// Normalizes an email address: trimmed, then lowercased.
pub fn normalize_email(s: &str) -> String {
    let mut out = String::new();
    normalize_email_into(s, &mut out);
    out
}

/// Normalizes an address field (`ani`, `dnis`, `address_from`, `address_to`,
/// a `callback_numbers` element) by its shape: `mailto:` or an `@` without a
/// URI scheme → [`normalize_email`], anything else → [`normalize_phone`].
pub fn normalize_address(s: &str) -> String {
    let mut out = String::new();
    normalize_address_into(s, &mut out);
    out
}

/// [`normalize_phone`] into `out` (replacing what it held).
fn normalize_phone_into(s: &str, out: &mut String) {
    out.clear();
    let t = s.trim();
    let rest = scheme_len(t).map_or(t, |n| &t[n..]);
    let user = rest.split('@').next().unwrap_or(rest);
    let user = user.split([';', '?']).next().unwrap_or(user);
    if !user.bytes().any(|b| b.is_ascii_digit()) {
        push_lowercase(out, user.trim());
        return;
    }
    out.push('+');
    out.extend(user.chars().filter(char::is_ascii_digit));
}

/// [`normalize_email`] into `out` (replacing what it held).
fn normalize_email_into(s: &str, out: &mut String) {
    out.clear();
    push_lowercase(out, s.trim());
}

/// [`normalize_address`] into `out` (replacing what it held).
pub(super) fn normalize_address_into(s: &str, out: &mut String) {
    let t = s.trim();
    if t.len() >= 7 && t.is_char_boundary(7) && t[..7].eq_ignore_ascii_case("mailto:") {
        return normalize_email_into(&t[7..], out);
    }
    if t.contains('@') && scheme_len(t).is_none() {
        normalize_email_into(t, out)
    } else {
        normalize_phone_into(t, out)
    }
}

/// Appends `s` lowercased (`str::to_lowercase`, which is plain `A-Z` →
/// `a-z` for ASCII text: no allocation then).
fn push_lowercase(out: &mut String, s: &str) {
    if s.is_ascii() {
        let start = out.len();
        out.push_str(s);
        if let Some(added) = out.get_mut(start..) {
            added.make_ascii_lowercase();
        }
    } else {
        out.push_str(&s.to_lowercase());
    }
}

/// Appends a token as a JSON string.
pub(super) fn push_token(out: &mut String, token: &TokenHex) {
    out.push('"');
    out.push_str(token.as_str());
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::super::tests::support::*;
    use super::super::{MaskPolicies, Masker, Policy};
    use super::*;
    use serde_json::json;

    #[test]
    fn token_matches_the_published_hmac_test_vector() {
        let m = Masker::new(b"key", MaskPolicies::default());
        assert_eq!(
            m.token("The quick brown fox jumps over the lazy dog"),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn token_matches_hmac_for_every_key_length() {
        for len in [0usize, 1, 16, 32, 63, 64, 65, 100, 200] {
            let key: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let m = Masker::new(&key, MaskPolicies::default());
            for msg in ["", "+15555550955", "jane@example.com", "é ü 日本"] {
                let t = m.token(msg);
                assert_eq!(t, reference_token(&key, msg), "key len {len}");
                assert_eq!(t.len(), 64);
                assert!(t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
            }
        }
    }

    #[test]
    fn same_value_same_token_across_events_and_instances_other_key_differs() {
        let a = masker(Policy::Hash);
        let b = masker(Policy::Hash);
        let c = Masker::new(b"another-key", MaskPolicies::default());
        let mut e1 = event(json!({"ani": "tel:+15555550955"}), json!({}));
        let mut e2 = event(json!({"ani": "tel:+1 (555) 555-0955"}), json!({}));
        let mut e3 = event(json!({"ani": "tel:+15555550955"}), json!({}));
        let mut e4 = event(json!({"ani": "tel:+15555550955"}), json!({}));
        a.mask_event(&mut e1);
        a.mask_event(&mut e2);
        b.mask_event(&mut e3);
        c.mask_event(&mut e4);
        assert_eq!(
            e1.payload.fields_map()["ani"],
            e2.payload.fields_map()["ani"]
        );
        assert_eq!(
            e1.payload.fields_map()["ani"],
            e3.payload.fields_map()["ani"]
        );
        assert_ne!(
            e1.payload.fields_map()["ani"],
            e4.payload.fields_map()["ani"]
        );
        assert_eq!(
            e1.payload.fields_map()["ani"],
            json!(reference_token(KEY, "+15555550955"))
        );
    }

    #[test]
    fn phone_normalization() {
        let cases = [
            ("tel:+1 (555) 555-0955", "+15555550955"),
            ("sip:+81399999998@172.18.182.10;user=phone", "+81399999998"),
            ("5555550955", "+5555550955"),
            ("sip:ipadphone@172.18.182.10", "ipadphone"),
            ("sip:IPadPhone@172.18.182.10;transport=tcp", "ipadphone"),
            ("  tel:+15555550955  ", "+15555550955"),
            ("TEL:+1-201-555-0123;ext=1234", "+12015550123"),
            ("sips:+4420794609@host?subject=x", "+4420794609"),
            ("+44 20 7946 0958", "+442079460958"),
            ("(555) 555-0955", "+5555550955"),
            ("", ""),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_phone(raw), want, "{raw}");
        }
    }

    #[test]
    fn email_normalization() {
        assert_eq!(
            normalize_email("  John.Doe@Example.COM \n"),
            "john.doe@example.com"
        );
        assert_eq!(normalize_email("a@b.io"), "a@b.io");
    }

    #[test]
    fn address_normalization_picks_by_shape() {
        let cases = [
            (" Jane.Roe@Example.com ", "jane.roe@example.com"),
            ("MAILTO:Jane@Example.com", "jane@example.com"),
            ("tel:+15555550955", "+15555550955"),
            ("+1 555 555 0955", "+15555550955"),
            ("sip:+81399999998@172.18.182.10;user=phone", "+81399999998"),
            ("sip:ipadphone@172.18.182.10", "ipadphone"),
            ("5555550955", "+5555550955"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_address(raw), want, "{raw}");
        }
    }

    /// Tokens depend on the key and the value only: separate `Masker`s
    /// (as in separate runs, restarts or instances) with the same key agree,
    /// whatever their policies; another key gives another token. The
    /// expected tokens were computed outside Rust (Python `hmac`).
    #[test]
    fn tokens_are_deterministic_per_key_and_differ_across_keys() {
        const SAME_KEY: &str = "c177b0c336b318b351a00aaf32ab191a883a7d93371051b209117d77752c800d";
        let a = Masker::new(KEY, MaskPolicies::default());
        let key_copy = KEY.to_vec();
        let b = Masker::new(&key_copy, MaskPolicies::all(Policy::Keep));
        assert_eq!(a.token("+15555550955"), SAME_KEY);
        assert_eq!(b.token("+15555550955"), SAME_KEY);
        let other = Masker::new(b"another-key", MaskPolicies::default());
        assert_eq!(
            other.token("+15555550955"),
            "7f240e9d8400535acea25a179c26f8973d9c0df014d24435c10901ae8b5cf4a4"
        );
        // A trailing newline left in the key would be another key (the
        // loader removes one from the file and the environment alike).
        assert_eq!(
            Masker::new(b"test-masking-key\n", MaskPolicies::default()).token("+15555550955"),
            "98ca8c40b2f0871abaab4ae995cc336b0acab32cb415fdbb2fc7e7b2733276c6"
        );
        // RFC 2104 keys: exactly one block, longer than a block (hashed
        // first), and empty (refused by `MaskingKey`, valid HMAC).
        for (key, want) in [
            (
                vec![b'k'; 64],
                "e1a00a8fb466758985172f973c05482d1e165cdd7ca7cb921a8c4a14c6116527",
            ),
            (
                vec![b'k'; 100],
                "0e954b87766b7831dd219d272f993aa7354643220dd3ad2cabbc10053efea100",
            ),
            (
                Vec::new(),
                "6e59400b571550a697ee47444dfa577a4cde040d6c5fca4de5e25f1ee48d4df8",
            ),
        ] {
            let m = Masker::new(&key, MaskPolicies::default());
            assert_eq!(m.token("+15555550955"), want, "key of {} bytes", key.len());
        }
        // Whole events: two maskers, one spelling each, one token.
        let mut x = event(json!({"ani": "tel:+1 (555) 555-0955"}), json!({}));
        let mut y = event(json!({"ani": "+1-555-555-0955"}), json!({}));
        a.mask_event(&mut x);
        Masker::new(&key_copy, MaskPolicies::default()).mask_event(&mut y);
        assert_eq!(x.payload.fields_map()["ani"], json!(SAME_KEY));
        assert_eq!(y.payload.fields_map()["ani"], json!(SAME_KEY));
    }
}
