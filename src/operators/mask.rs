//! PII masking: replaces personal data in an [`Event`] with keyed tokens
//! before anything leaves the processor.
//!
//! # Token formula (stable contract)
//!
//! Systems outside cxstream (e.g. a CRM) recompute tokens to join on them,
//! so the formula below is a public contract:
//!
//! ```text
//! token(v) = lowercase_hex( HMAC-SHA256(key = masking key bytes,
//!                                       message = UTF-8 bytes of normalize(v)) )
//! ```
//!
//! The token is always 64 lowercase hex characters (the full 32-byte MAC, not
//! truncated). The masking key is the raw bytes of `CXSTREAM_MASKING_KEY` or
//! of the `--masking-key-file`, with one trailing `\n` or `\r\n` removed
//! from either (see `secret.rs`). Example: with key `key`,
//! `token("The quick brown fox jumps over the lazy dog")` is
//! `f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8`.
//!
//! # Normalization (applied before hashing)
//!
//! "Trim" below means removing leading and trailing Unicode white space
//! (Rust `str::trim`); "lowercase" means Unicode default lowercasing (Rust
//! `str::to_lowercase`, i.e. plain `A-Z` → `a-z` for ASCII). Only ASCII digits
//! `0-9` count as digits.
//!
//! * **Phone numbers and `tel:`/`sip:` URIs** ([`normalize_phone`]):
//!   1. trim;
//!   2. drop a leading URI scheme (`[A-Za-z][A-Za-z0-9+.-]*:`, e.g. `tel:`,
//!      `sip:`, `sips:`);
//!   3. keep only the user part: cut at the first `@` (drops `@host` and any
//!      parameters after the host), then cut at the first `;` or `?` (drops
//!      `;params` and `?headers`);
//!   4. if the user part contains at least one digit, the result is `+`
//!      followed by its digits only, in order (every other character,
//!      including a `+` already present, is dropped);
//!   5. **otherwise** (a SIP user name such as `sip:ipadphone@172.18.182.10`)
//!      the result is the user part, trimmed and lowercased (`ipadphone`).
//!
//!   Examples: `tel:+1 (555) 555-0955` → `+15555550955`;
//!   `sip:+81399999998@172.18.182.10;user=phone` → `+81399999998`;
//!   `5555550955` → `+5555550955` (no country code is added or removed:
//!   national and international spellings of one number give different
//!   tokens).
//! * **Email addresses** ([`normalize_email`]): trim, then lowercase.
//! * **Address fields** `ani`, `dnis`, `address_from`, `address_to` and each
//!   element of `callback_numbers` ([`normalize_address`]), chosen by shape
//!   after trimming: a value starting with `mailto:` (any case) is an email
//!   (the `mailto:` is dropped); a value containing `@` and **no** URI scheme
//!   is an email; anything else (phone number, `tel:`/`sip:` URI) is a phone.
//! * **Text** (`callback_user_name`, `subject`, `wrapup_notes`, every
//!   `attributes` value): trim only.
//! * **Non-string values** in a masked field (a number, a bool, an object…)
//!   are not normalized: the message is their compact JSON text as written by
//!   `serde_json` (e.g. the number `15555550955` hashes the text
//!   `15555550955`; objects have their keys in sorted order).
//!
//! # Fields and policies
//!
//! The maskable fields are [`MaskPolicies::DEFAULT_FIELDS`]; each has a
//! [`Policy`] (default [`Policy::Hash`]):
//!
//! * `hash`: the value becomes its token. `callback_numbers` (an array) has
//!   each element tokenized; `attributes` (an object) has each value
//!   tokenized and its keys kept (a key holding PII is scrubbed, below).
//! * `redact`: the value (each element / each attribute value) becomes the
//!   string `"[REDACTED]"`.
//! * `keep`: the value is kept; the free-text fields `subject`,
//!   `wrapup_notes` and `attributes` values are still scrubbed (below).
//!
//! A missing or `null` field (or attribute value, or array element) is left
//! alone and not reported. Every other field in `Event::fields` (ids,
//! `external_contact_id`, `wrapup_code`, `disconnect_type`, …) and every header
//! field of [`Event`] is never touched.
//!
//! # Free-text scrubbing
//!
//! Free text (`subject`, `wrapup_notes` and `attributes` values under `keep`,
//! **every key of `attributes`, under any policy**, and **every string
//! anywhere in `Event::extras`, under any policy**, including object keys)
//! is scanned so that no email, phone number or card number survives. A key
//! is renamed to its scrubbed text (`jane@example.com` → `<email:TOKEN>`);
//! when that name is already taken, `#2`, `#3`… is appended:
//!
//! * payment card numbers → `<card:removed>` (never hashed): 13–19 digits,
//!   optionally split into groups by spaces or by single dashes, that pass
//!   the Luhn check. Cards are detected before phone numbers.
//! * `tel:`/`sip:`/`sips:` URIs (any case, up to the next white space, quote,
//!   bracket or comma, trailing `.,;:!?` excluded) → `<phone:TOKEN>`,
//!   `TOKEN` = token of [`normalize_phone`] of the whole URI (so they match
//!   the address fields).
//! * email addresses → `<email:TOKEN>`, `TOKEN` = token of [`normalize_email`].
//! * phone numbers → `<phone:TOKEN>`, `TOKEN` = token of [`normalize_phone`]
//!   of the number as written (`+` and the digits written, e.g.
//!   `(555) 555-0955` → `+5555550955`, `+44 20 7946 0958` → `+442079460958`).
//!   A phone number is 7 to 15 digits, optionally led by `+`, with groups
//!   separated by spaces, `-`, `.` or parentheses; a longer run of such
//!   groups is cut into several numbers (as many whole groups as fit).
//!
//! Kept untouched: UUIDs, ISO-8601 dates and timestamps, other common date
//! forms (`06.04.2022`, `04/06/2022`…), IPv4 addresses, decimal numbers
//! (`48.8588443`), dotted version numbers (`120.0.6099.130`), 13-digit epoch
//! milliseconds starting with `1`, and digits inside hex ids (a word of 16 or
//! more hex digits, optionally after `0x`, e.g. hashes). Numbers that are JSON
//! numbers (not strings) are not scanned.
//! Scrubbing over-masks on purpose when unsure (an order number of 7+ digits
//! becomes a phone token).
//!
//! # Lineage
//!
//! Every changed path is appended to `lineage.masked_fields`: the field name
//! (`ani`, `callback_numbers`, …), `attributes.<key>` for attribute values
//! and renamed attribute keys (`attributes` itself if it is not an object),
//! and `extras.<path>` for extras (`extras.a.b[2]`; a renamed key is listed
//! under its new, scrubbed name). Paths never contain PII.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use hmac::digest::{Key, KeyInit};
use hmac::{Hmac, Mac};
use regex::Regex;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::model::{write_value, Event, Payload};
use crate::json::{
    each_canonical_item, each_canonical_member, parse_canonical, str_content, write_json_str,
};

type HmacSha256 = Hmac<Sha256>;

/// What a redacted value becomes.
pub const REDACTED: &str = "[REDACTED]";
/// What a card number found in free text becomes.
pub const CARD_REMOVED: &str = "<card:removed>";

/// What the mask operator does with one maskable field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Replace the value with its token (see the module docs).
    Hash,
    /// Replace the value with `"[REDACTED]"`.
    Redact,
    /// Keep the value (free text is still scrubbed).
    Keep,
}

impl Policy {
    /// The configuration spelling: `"hash"`, `"redact"` or `"keep"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Hash => "hash",
            Policy::Redact => "redact",
            Policy::Keep => "keep",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Policy {
    type Err = MaskError;

    /// Parses `hash`, `redact` or `keep` (ASCII case-insensitive, trimmed).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        [Policy::Hash, Policy::Redact, Policy::Keep]
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(t))
            .ok_or_else(|| MaskError::UnknownPolicy {
                value: t.chars().take(32).collect(),
            })
    }
}

/// Configuration errors. Messages carry configuration words, never data.
#[derive(Debug, thiserror::Error)]
pub enum MaskError {
    #[error("unknown masking policy {value:?}: expected \"hash\", \"redact\" or \"keep\"")]
    UnknownPolicy { value: String },
    #[error(
        "field {field:?} cannot be masked: maskable fields are ani, dnis, address_from, \
         address_to, callback_numbers, callback_user_name, subject, wrapup_notes, attributes"
    )]
    NotMaskable { field: String },
}

/// How a maskable field is normalized and scrubbed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    /// Phone / URI / email, normalized by shape.
    Address,
    /// An array of addresses (`callback_numbers`).
    AddressList,
    /// A name: trimmed, not scrubbed under `keep`.
    Name,
    /// Free text: trimmed, scrubbed under `keep`.
    Text,
    /// A string→string map whose values are free text.
    Attributes,
}

/// Maskable fields in `Event::fields`, same order as `DEFAULT_FIELDS`.
const FIELDS: [(&str, FieldKind); 9] = [
    ("ani", FieldKind::Address),
    ("dnis", FieldKind::Address),
    ("address_from", FieldKind::Address),
    ("address_to", FieldKind::Address),
    ("callback_numbers", FieldKind::AddressList),
    ("callback_user_name", FieldKind::Name),
    ("subject", FieldKind::Text),
    ("wrapup_notes", FieldKind::Text),
    ("attributes", FieldKind::Attributes),
];

/// Position of `name` in [`FIELDS`].
fn maskable(name: &str) -> Option<usize> {
    Some(match name {
        "ani" => 0,
        "dnis" => 1,
        "address_from" => 2,
        "address_to" => 3,
        "callback_numbers" => 4,
        "callback_user_name" => 5,
        "subject" => 6,
        "wrapup_notes" => 7,
        "attributes" => 8,
        _ => return None,
    })
}

/// The policy of every maskable field.
#[derive(Clone, PartialEq, Eq)]
pub struct MaskPolicies {
    policies: [Policy; FIELDS.len()],
}

impl MaskPolicies {
    /// The maskable fields (snake_case names in `Event::fields`). All are
    /// hashed by default.
    pub const DEFAULT_FIELDS: &'static [&'static str] = &[
        "ani",
        "dnis",
        "address_from",
        "address_to",
        "callback_numbers",
        "callback_user_name",
        "subject",
        "wrapup_notes",
        "attributes",
    ];

    /// Every maskable field with the same policy.
    pub fn all(policy: Policy) -> Self {
        Self {
            policies: [policy; FIELDS.len()],
        }
    }

    fn index(field: &str) -> Option<usize> {
        FIELDS.iter().position(|(name, _)| *name == field)
    }

    /// Sets the policy of one field; fails if `field` is not one of
    /// [`Self::DEFAULT_FIELDS`] (ids, timestamps… are never maskable).
    pub fn set(&mut self, field: &str, policy: Policy) -> Result<(), MaskError> {
        let i = Self::index(field).ok_or_else(|| MaskError::NotMaskable {
            field: field.chars().take(64).collect(),
        })?;
        self.policies[i] = policy;
        Ok(())
    }

    /// The policy of `field`. Fields that are not maskable are passed through
    /// unchanged, which is reported as [`Policy::Keep`].
    pub fn get(&self, field: &str) -> Policy {
        Self::index(field).map_or(Policy::Keep, |i| self.policies[i])
    }

    /// Every maskable field with its policy, in `DEFAULT_FIELDS` order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, Policy)> + '_ {
        FIELDS
            .iter()
            .zip(self.policies.iter())
            .map(|((name, _), p)| (*name, *p))
    }
}

impl Default for MaskPolicies {
    fn default() -> Self {
        Self::all(Policy::Hash)
    }
}

impl fmt::Debug for MaskPolicies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(name, p)| (name, p.as_str())))
            .finish()
    }
}

/// Masks events in place. Cheap to share (`Send + Sync`); the keyed HMAC
/// state is computed once and cloned per value.
#[derive(Clone)]
pub struct Masker {
    mac: HmacSha256,
    policies: MaskPolicies,
}

impl fmt::Debug for Masker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Masker")
            .field("key", &"<redacted>")
            .field("policies", &self.policies)
            .finish()
    }
}

/// The paths an event's masking changed (`Event::lineage.masked_fields`):
/// field names are static, only attribute and extras paths are built.
type Paths = Vec<Cow<'static, str>>;

/// Buffers one event's masking reuses.
#[derive(Default)]
struct Scratch {
    /// A normalized value about to be hashed.
    normalized: String,
    /// A field's new JSON text.
    text: String,
}

/// One maskable field of the event being masked.
#[derive(Debug, Clone, Copy)]
struct Field {
    /// Position in the payload's fields.
    index: usize,
    name: &'static str,
    kind: FieldKind,
    policy: Policy,
}

/// A token's 64 lowercase hex digits.
struct TokenHex([u8; 64]);

impl TokenHex {
    fn as_str(&self) -> &str {
        // Only ASCII hex digits are written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

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

impl Masker {
    /// A masker for `key` (any length; HMAC semantics) and `policies`.
    pub fn new(key: &[u8], policies: MaskPolicies) -> Masker {
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
        Masker {
            mac: <HmacSha256 as KeyInit>::new(&block),
            policies,
        }
    }

    /// The policies this masker applies.
    pub fn policies(&self) -> &MaskPolicies {
        &self.policies
    }

    /// Token = lowercase hex of HMAC-SHA256(key, normalized value), 64 chars.
    /// `normalized` must already be normalized (see the module docs).
    pub fn token(&self, normalized: &str) -> String {
        self.token_hex(normalized).as_str().to_owned()
    }

    /// [`Self::token`] without allocating.
    fn token_hex(&self, normalized: &str) -> TokenHex {
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
    fn address_token(&self, s: &str, buf: &mut String) -> TokenHex {
        normalize_address_into(s, buf);
        self.token_hex(buf)
    }

    /// Masks the event's fields and extras in place and appends the paths
    /// it changed to `ev.lineage.masked_fields`.
    pub fn mask_event(&self, ev: &mut Event) {
        let out = &mut ev.lineage.masked_fields;
        let payload = &mut ev.payload;
        // Where each maskable field is, found in one pass over the fields.
        let mut at = [None; FIELDS.len()];
        for (index, (name, _)) in payload.fields().enumerate() {
            if let Some(slot) = maskable(name).and_then(|i| at.get_mut(i)) {
                *slot = Some(index);
            }
        }
        let mut scratch = Scratch::default();
        for (i, &(name, kind)) in FIELDS.iter().enumerate() {
            let policy = self.policies.policies[i];
            let Some(index) = at[i] else {
                continue;
            };
            let field = Field {
                index,
                name,
                kind,
                policy,
            };
            match kind {
                FieldKind::Address | FieldKind::Name | FieldKind::Text => {
                    self.mask_scalar_field(payload, field, &mut scratch, out);
                }
                FieldKind::AddressList => {
                    self.mask_address_list(payload, field, &mut scratch, out);
                }
                FieldKind::Attributes => self.mask_attributes(payload, field, &mut scratch, out),
            }
        }
        if payload.has_extras() && !self.extras_are_clean(payload) {
            let mut extras = payload.extras_map();
            let mut path = String::from("extras");
            if self.scrub_map(&mut extras, &mut path, out) {
                payload.set_extras(&extras);
            }
        }
    }

    /// True when scrubbing the extras would change nothing: no key and no
    /// string anywhere in them holds text the scrubber replaces (most
    /// extras are ids), checked on their JSON text.
    fn extras_are_clean(&self, payload: &Payload) -> bool {
        payload
            .extras()
            .all(|(key, value)| self.json_is_clean(key) && self.json_is_clean(value))
    }

    /// True when no string in the canonical JSON `json` (object keys
    /// included) would be changed by [`Self::scrub_text`]; numbers and
    /// literals are not scanned.
    fn json_is_clean(&self, json: &str) -> bool {
        let mut clean = true;
        match json.as_bytes().first() {
            Some(b'"') => str_content(json).is_some_and(|s| self.scrub_text(&s).is_none()),
            Some(b'[') => {
                each_canonical_item(json, |v| clean = clean && self.json_is_clean(v)) && clean
            }
            Some(b'{') => {
                each_canonical_member(json, |k, v| {
                    clean = clean && self.json_is_clean(k) && self.json_is_clean(v)
                }) && clean
            }
            _ => true,
        }
    }

    /// An address, name or text field, from its JSON text: hashing and
    /// redaction replace the whole value, so only `keep` on a non-string
    /// needs the value itself.
    fn mask_scalar_field(
        &self,
        payload: &mut Payload,
        f: Field,
        scratch: &mut Scratch,
        out: &mut Paths,
    ) {
        let Some(json) = payload.field_json(f.index) else {
            return;
        };
        if json == "null" {
            return;
        }
        let text = str_content(json);
        match (f.policy, text) {
            (Policy::Hash, Some(s)) => {
                let token = match f.kind {
                    FieldKind::Address | FieldKind::AddressList => {
                        self.address_token(&s, &mut scratch.normalized)
                    }
                    FieldKind::Name | FieldKind::Text | FieldKind::Attributes => {
                        self.token_hex(s.trim())
                    }
                };
                payload.set_field_str(f.index, token.as_str());
            }
            // A non-string value hashes its compact JSON text, which is
            // exactly the canonical text the payload holds.
            (Policy::Hash, None) => {
                let token = self.token_hex(json);
                payload.set_field_str(f.index, token.as_str());
            }
            (Policy::Redact, _) => payload.set_field_str(f.index, REDACTED),
            (Policy::Keep, Some(s)) => match f.kind {
                FieldKind::Text => match self.scrub_text(&s) {
                    Some(clean) => payload.set_field_str(f.index, &clean),
                    None => return,
                },
                _ => return,
            },
            (Policy::Keep, None) => return self.mask_field_value(payload, f, out),
        }
        out.push(Cow::Borrowed(f.name));
    }

    /// `callback_numbers` from its JSON text: each element of an array
    /// masked as an address field (nulls left alone); anything but an
    /// array as one address.
    fn mask_address_list(
        &self,
        payload: &mut Payload,
        f: Field,
        scratch: &mut Scratch,
        out: &mut Paths,
    ) {
        // Addresses are kept as they are under `keep`.
        let Some(json) = payload
            .field_json(f.index)
            .filter(|_| f.policy != Policy::Keep)
        else {
            return;
        };
        if !json.starts_with('[') {
            let one = Field {
                kind: FieldKind::Address,
                ..f
            };
            return self.mask_scalar_field(payload, one, scratch, out);
        }
        let Scratch { normalized, text } = scratch;
        text.clear();
        text.push('[');
        let mut changed = false;
        let well_formed = each_canonical_item(json, |item| {
            if text.len() > 1 {
                text.push(',');
            }
            if item == "null" {
                text.push_str(item);
                return;
            }
            changed = true;
            match (f.policy, str_content(item)) {
                (Policy::Hash, Some(s)) => push_token(text, &self.address_token(&s, normalized)),
                (Policy::Hash, None) => push_token(text, &self.token_hex(item)),
                (Policy::Redact | Policy::Keep, _) => write_json_str(text, REDACTED),
            }
        });
        text.push(']');
        if !well_formed {
            // Cannot happen (the payload holds JSON it wrote); fail closed.
            payload.set_field_str(f.index, REDACTED);
        } else if changed {
            payload.set_field_json(f.index, |o| o.push_str(text));
        } else {
            return;
        }
        out.push(Cow::Borrowed(f.name));
    }

    /// `attributes` from its JSON text: each non-null value of an object
    /// masked as free text, keys kept; structured values under `keep`, and
    /// anything but an object, through their `Value`.
    fn mask_attributes(
        &self,
        payload: &mut Payload,
        f: Field,
        scratch: &mut Scratch,
        out: &mut Paths,
    ) {
        let Some(json) = payload.field_json(f.index) else {
            return;
        };
        if !json.starts_with('{') {
            return self.mask_field_value(payload, f, out);
        }
        let text = &mut scratch.text;
        text.clear();
        text.push('{');
        let before = out.len();
        // A key holding PII is renamed, which can change the keys' order:
        // such a map goes through its `Value` instead.
        let mut keys_clean = true;
        let well_formed = each_canonical_member(json, |key, value| {
            keys_clean = keys_clean && self.json_is_clean(key);
            if !keys_clean {
                return;
            }
            if text.len() > 1 {
                text.push(',');
            }
            text.push_str(key);
            text.push(':');
            let masked = match (f.policy, str_content(value)) {
                _ if value == "null" => false,
                (Policy::Hash, Some(s)) => {
                    push_token(text, &self.token_hex(s.trim()));
                    true
                }
                (Policy::Hash, None) => {
                    push_token(text, &self.token_hex(value));
                    true
                }
                (Policy::Redact, _) => {
                    write_json_str(text, REDACTED);
                    true
                }
                (Policy::Keep, Some(s)) => match self.scrub_text(&s) {
                    Some(clean) => {
                        write_json_str(text, &clean);
                        true
                    }
                    None => false,
                },
                (Policy::Keep, None) => self.scrub_structured(value, text),
            };
            if masked {
                let key = str_content(key).unwrap_or_default();
                out.push(Cow::Owned(format!("attributes.{key}")));
            } else {
                text.push_str(value);
            }
        });
        text.push('}');
        if well_formed && !keys_clean {
            out.truncate(before);
            self.mask_attributes_renaming_keys(payload, f, out);
        } else if !well_formed {
            // Cannot happen (the payload holds JSON it wrote); fail closed.
            out.truncate(before);
            payload.set_field_str(f.index, REDACTED);
            out.push(Cow::Borrowed(f.name));
        } else if out.len() > before {
            payload.set_field_json(f.index, |o| o.push_str(text));
        }
    }

    /// `attributes` (an object) some key of which holds PII: every key is
    /// scrubbed as free text (as keys in the extras are, colliding names
    /// get `#2`, `#3`…), each non-null value masked per the policy; the
    /// path of a renamed key is listed under its new name even when its
    /// value did not change.
    fn mask_attributes_renaming_keys(&self, payload: &mut Payload, f: Field, out: &mut Paths) {
        let Some(Value::Object(mut map)) = payload.field_value(f.index) else {
            // Cannot happen (the payload holds JSON it wrote); fail closed.
            payload.set_field_str(f.index, REDACTED);
            out.push(Cow::Borrowed(f.name));
            return;
        };
        let renamed = self.scrub_keys(&mut map);
        let mut changed = !renamed.is_empty();
        for (key, value) in map.iter_mut() {
            let masked = !value.is_null() && self.mask_value(value, f.kind, f.policy);
            changed |= masked;
            if masked || renamed.contains(key) {
                out.push(Cow::Owned(format!("attributes.{key}")));
            }
        }
        if changed {
            let map = Value::Object(map);
            payload.set_field_json(f.index, |o| write_value(o, &map));
        }
    }

    /// `keep` on a structured attribute value (`json`): its strings
    /// scrubbed through its `Value`; the new text appended to `out` when
    /// something changed.
    fn scrub_structured(&self, json: &str, out: &mut String) -> bool {
        let Some(mut v) = parse_canonical(json) else {
            // Cannot happen (the payload holds JSON it wrote); fail closed.
            write_json_str(out, REDACTED);
            return true;
        };
        let changed = self.mask_value(&mut v, FieldKind::Attributes, Policy::Keep);
        if changed {
            write_value(out, &v);
        }
        changed
    }

    /// Any field as one value, through its `serde_json::Value` (`keep` on
    /// structured text, attributes that are not an object).
    fn mask_field_value(&self, payload: &mut Payload, f: Field, out: &mut Paths) {
        let Some(json) = payload.field_json(f.index) else {
            return;
        };
        if json == "null" {
            return;
        }
        let Some(mut value) = payload.field_value(f.index) else {
            // Cannot happen (the payload holds JSON it wrote); fail closed.
            payload.set_field_str(f.index, REDACTED);
            out.push(Cow::Borrowed(f.name));
            return;
        };
        if self.mask_value(&mut value, f.kind, f.policy) {
            payload.set_field_json(f.index, |o| write_value(o, &value));
            out.push(Cow::Borrowed(f.name));
        }
    }

    /// Applies `policy` to one non-null value; true if it changed.
    fn mask_value(&self, value: &mut Value, kind: FieldKind, policy: Policy) -> bool {
        match policy {
            Policy::Hash => {
                let token = match value {
                    Value::String(s) => match kind {
                        FieldKind::Address | FieldKind::AddressList => {
                            self.token(&normalize_address(s))
                        }
                        FieldKind::Name | FieldKind::Text | FieldKind::Attributes => {
                            self.token(s.trim())
                        }
                    },
                    Value::Null
                    | Value::Bool(_)
                    | Value::Number(_)
                    | Value::Array(_)
                    | Value::Object(_) => self.token(&value.to_string()),
                };
                *value = Value::String(token);
                true
            }
            Policy::Redact => {
                *value = Value::String(REDACTED.to_owned());
                true
            }
            Policy::Keep => match kind {
                FieldKind::Text | FieldKind::Attributes => {
                    let mut path = String::new();
                    let mut scratch = Vec::new();
                    self.scrub_value(value, &mut path, &mut scratch)
                }
                FieldKind::Address | FieldKind::AddressList | FieldKind::Name => false,
            },
        }
    }

    /// Scrubs every string (and object key) inside `value`, pushing the path
    /// of each changed string or renamed key; true if anything changed.
    fn scrub_value(&self, value: &mut Value, path: &mut String, out: &mut Paths) -> bool {
        match value {
            Value::String(s) => match self.scrub_text(s) {
                Some(clean) => {
                    *s = clean;
                    out.push(Cow::Owned(path.clone()));
                    true
                }
                None => false,
            },
            Value::Array(items) => {
                let mut any = false;
                for (i, item) in items.iter_mut().enumerate() {
                    let len = path.len();
                    path.push('[');
                    path.push_str(&i.to_string());
                    path.push(']');
                    any |= self.scrub_value(item, path, out);
                    path.truncate(len);
                }
                any
            }
            Value::Object(map) => self.scrub_map(map, path, out),
            Value::Null | Value::Bool(_) | Value::Number(_) => false,
        }
    }

    fn scrub_map(&self, map: &mut Map<String, Value>, path: &mut String, out: &mut Paths) -> bool {
        let renamed = self.scrub_keys(map);
        let mut any = !renamed.is_empty();
        for (key, v) in map.iter_mut() {
            let len = path.len();
            path.push('.');
            path.push_str(key);
            let before = out.len();
            any |= self.scrub_value(v, path, out);
            if renamed.contains(key) && !out[before..].iter().any(|p| p == path) {
                out.push(Cow::Owned(path.clone()));
            }
            path.truncate(len);
        }
        any
    }

    /// Replaces each key of `map` that holds PII by its scrubbed text (a
    /// name already taken gets `#2`, `#3`…); returns the new names.
    fn scrub_keys(&self, map: &mut Map<String, Value>) -> Vec<String> {
        let renames: Vec<(String, String)> = map
            .keys()
            .filter_map(|k| self.scrub_text(k).map(|clean| (k.clone(), clean)))
            .collect();
        let mut renamed = Vec::with_capacity(renames.len());
        for (old, clean) in renames {
            if let Some(v) = map.remove(&old) {
                let mut key = clean.clone();
                let mut n = 2;
                while map.contains_key(&key) {
                    key = format!("{clean}#{n}");
                    n += 1;
                }
                map.insert(key.clone(), v);
                renamed.push(key);
            }
        }
        renamed
    }

    /// Scrubs free text: card numbers → `<card:removed>`, emails →
    /// `<email:TOKEN>`, phone numbers and `tel:`/`sip:` URIs →
    /// `<phone:TOKEN>`. Returns `None` when nothing had to change.
    pub fn scrub_text(&self, text: &str) -> Option<String> {
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
        pieces = split_pass(pieces, text, |s, a, b, out| self.find_uris(s, a, b, out));
        pieces = split_pass(pieces, text, |s, a, b, out| self.find_emails(s, a, b, out));
        pieces = split_pass(pieces, text, find_protected);
        pieces = split_pass(pieces, text, |s, a, b, out| self.find_numbers(s, a, b, out));
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

    fn phone_tag(&self, raw: &str) -> String {
        format!("<phone:{}>", self.token(&normalize_phone(raw)))
    }

    fn find_uris(&self, s: &str, a: usize, b: usize, out: &mut Vec<Found>) {
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
                replacement: Some(self.phone_tag(uri)),
            });
        }
    }

    fn find_emails(&self, s: &str, a: usize, b: usize, out: &mut Vec<Found>) {
        for m in EMAIL_RE.find_iter(&s[a..b]) {
            out.push(Found {
                start: a + m.start(),
                end: a + m.end(),
                replacement: Some(format!(
                    "<email:{}>",
                    self.token(&normalize_email(m.as_str()))
                )),
            });
        }
    }

    /// Cards and phone numbers among the digit runs of `s[a..b]`.
    fn find_numbers(&self, s: &str, a: usize, b: usize, out: &mut Vec<Found>) {
        for m in NUMBER_RE.find_iter(&s[a..b]) {
            self.number_run(s, a + m.start(), a + m.end(), out);
        }
    }

    fn number_run(&self, s: &str, start: usize, end: usize, out: &mut Vec<Found>) {
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
                replacement: Some(self.phone_tag(&s[ps..pe])),
            });
            k = e + 1;
        }
        found.sort_by_key(|f| f.start);
        out.extend(found);
    }
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
fn normalize_address_into(s: &str, out: &mut String) {
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
fn push_token(out: &mut String, token: &TokenHex) {
    out.push('"');
    out.push_str(token.as_str());
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DecodeNotes, EventKind, Lineage, SourceRef};
    use proptest::prelude::*;
    use serde_json::json;
    use std::sync::Arc;

    const KEY: &[u8] = b"test-masking-key";
    const IDS: [&str; 6] = [
        "adbcfa5b-0116-4baa-b66b-a3f5902e95bf",
        "2f7bf00a-0fc2-4d6a-9b56-92238191433e",
        "9fb2ca78-8389-4758-b76a-9b0300de1fce",
        "c03d300e-fa79-4353-9695-b97a71322785",
        "3b5c1d2e-0000-4a1b-8c9d-123456789012",
        "5d6e7f80-1111-4c2d-9e3f-210987654321",
    ];

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn event(fields: Value, extras: Value) -> Event {
        Event {
            event_id: IDS[0].into(),
            interaction_id: IDS[1].into(),
            kind: EventKind::AcdEnd,
            event_time_ms: 1_649_237_444_949,
            source_version: "2".into(),
            media_type: Some("VOICE".into()),
            direction: Some("INBOUND".into()),
            participant_id: Some(IDS[2].into()),
            session_id: Some(IDS[3].into()),
            queue_id: Some(IDS[4].into()),
            user_id: Some(IDS[5].into()),
            payload: Payload::from_maps(&map(fields), &map(extras)),
            content_fp: 42,
            id_fp: Some(7),
            lineage: Lineage {
                token: "fe8a8579-b83f-4f07-b371-2b39398f91a8".into(),
                hops: Vec::new(),
                masked_fields: Vec::new(),
            },
            source: SourceRef {
                topic: Arc::from("genesys.bronze"),
                partition: 3,
                offset: 99,
            },
            raw: 0..0,
            record_timestamp_ms: Some(1_649_237_445_013),
            notes: DecodeNotes::default(),
            ticket: 11,
        }
    }

    fn one_field(name: &str, value: Value) -> Value {
        let mut m = Map::new();
        m.insert(name.to_owned(), value);
        Value::Object(m)
    }

    fn masker(policy: Policy) -> Masker {
        Masker::new(KEY, MaskPolicies::all(policy))
    }

    fn reference_token(key: &[u8], msg: &str) -> String {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap();
        mac.update(msg.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn scrub(text: &str) -> String {
        let m = masker(Policy::Keep);
        m.scrub_text(text).unwrap_or_else(|| text.to_owned())
    }

    fn phone_tag(m: &Masker, normalized: &str) -> String {
        format!("<phone:{}>", m.token(normalized))
    }

    /// Appends the Luhn check digit (test-side implementation).
    fn with_check_digit(body: &str) -> String {
        let mut sum = 0u32;
        for (i, c) in body.chars().rev().enumerate() {
            let mut d = c.to_digit(10).unwrap();
            if i % 2 == 0 {
                d *= 2;
                if d > 9 {
                    d -= 9;
                }
            }
            sum += d;
        }
        format!("{body}{}", (10 - sum % 10) % 10)
    }

    // ---- token -------------------------------------------------------------

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

    // ---- normalization -----------------------------------------------------

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

    // ---- policies ----------------------------------------------------------

    #[test]
    fn policy_parses_and_prints() {
        for p in [Policy::Hash, Policy::Redact, Policy::Keep] {
            assert_eq!(p.as_str().parse::<Policy>().unwrap(), p);
            assert_eq!(p.to_string(), p.as_str());
        }
        assert_eq!(" HASH ".parse::<Policy>().unwrap(), Policy::Hash);
        let err = "encrypt".parse::<Policy>().unwrap_err();
        assert!(err.to_string().contains("encrypt"));
    }

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
    fn maskable_names_are_the_field_table() {
        for (i, (name, _)) in FIELDS.iter().enumerate() {
            assert_eq!(maskable(name), Some(i));
        }
        assert_eq!(maskable("queue_id"), None);
    }

    #[test]
    fn default_policies_hash_every_default_field() {
        let p = MaskPolicies::default();
        assert_eq!(MaskPolicies::DEFAULT_FIELDS.len(), FIELDS.len());
        for (i, f) in MaskPolicies::DEFAULT_FIELDS.iter().enumerate() {
            assert_eq!(FIELDS[i].0, *f);
            assert_eq!(p.get(f), Policy::Hash);
        }
        assert_eq!(p.iter().count(), 9);
    }

    #[test]
    fn ids_and_other_fields_are_not_maskable() {
        let mut p = MaskPolicies::default();
        for f in [
            "conversation_id",
            "interaction_id",
            "queue_id",
            "user_id",
            "participant_id",
            "session_id",
            "event_time",
            "external_contact_id",
            "wrapup_code",
            "addressFrom",
            "",
        ] {
            let err = p.set(f, Policy::Redact).unwrap_err();
            assert!(matches!(err, MaskError::NotMaskable { .. }));
            assert_eq!(p.get(f), Policy::Keep);
        }
        assert_eq!(p, MaskPolicies::default());
        p.set("ani", Policy::Keep).unwrap();
        p.set("subject", Policy::Redact).unwrap();
        assert_eq!(p.get("ani"), Policy::Keep);
        assert_eq!(p.get("subject"), Policy::Redact);
        assert_eq!(p.get("dnis"), Policy::Hash);
    }

    #[test]
    fn each_policy_on_each_scalar_field() {
        let cases = [
            ("ani", "tel:+1 (555) 555-0955", "+15555550955"),
            (
                "dnis",
                "sip:+81399999998@172.18.182.10;user=phone",
                "+81399999998",
            ),
            (
                "address_from",
                " John.Doe@Example.com ",
                "john.doe@example.com",
            ),
            ("address_to", "+1 555 555 0000", "+15555550000"),
            ("callback_user_name", "  Jane Roe ", "Jane Roe"),
            ("subject", " Refund for my order ", "Refund for my order"),
            (
                "wrapup_notes",
                "Customer asked about fees.",
                "Customer asked about fees.",
            ),
        ];
        for (field, raw, normalized) in cases {
            for policy in [Policy::Hash, Policy::Redact, Policy::Keep] {
                let mut p = MaskPolicies::default();
                p.set(field, policy).unwrap();
                let m = Masker::new(KEY, p);
                let mut ev = event(one_field(field, json!(raw)), json!({}));
                m.mask_event(&mut ev);
                let got = &ev.payload.fields_map()[field];
                match policy {
                    Policy::Hash => {
                        assert_eq!(got, &json!(reference_token(KEY, normalized)), "{field}");
                        assert_eq!(ev.lineage.masked_fields, vec![field.to_owned()]);
                    }
                    Policy::Redact => {
                        assert_eq!(got, &json!(REDACTED), "{field}");
                        assert_eq!(ev.lineage.masked_fields, vec![field.to_owned()]);
                    }
                    Policy::Keep => {
                        assert_eq!(got, &json!(raw), "{field}");
                        assert!(ev.lineage.masked_fields.is_empty(), "{field}");
                    }
                }
            }
        }
    }

    #[test]
    fn keep_still_scrubs_free_text_fields_but_not_addresses() {
        let m = masker(Policy::Keep);
        let text = "Call 555-555-0955 or mail Jane.Roe@Example.com, card 4111 1111 1111 1111";
        let mut ev = event(
            json!({
                "ani": "tel:+15555550955",
                "callback_user_name": "Jane Roe",
                "subject": text,
                "wrapup_notes": text,
            }),
            json!({}),
        );
        m.mask_event(&mut ev);
        let want = format!(
            "Call {} or mail <email:{}>, card <card:removed>",
            phone_tag(&m, "+5555550955"),
            m.token("jane.roe@example.com")
        );
        assert_eq!(ev.payload.fields_map()["subject"], json!(want));
        assert_eq!(ev.payload.fields_map()["wrapup_notes"], json!(want));
        assert_eq!(ev.payload.fields_map()["ani"], json!("tel:+15555550955"));
        assert_eq!(
            ev.payload.fields_map()["callback_user_name"],
            json!("Jane Roe")
        );
        assert_eq!(ev.lineage.masked_fields, vec!["subject", "wrapup_notes"]);
    }

    #[test]
    fn null_and_missing_fields_are_not_masked_or_listed() {
        let m = masker(Policy::Hash);
        let mut ev = event(
            json!({"ani": null, "subject": null, "attributes": {"a": null}, "callback_numbers": [null]}),
            json!({}),
        );
        let before = ev.clone();
        m.mask_event(&mut ev);
        assert_eq!(ev, before);
        assert!(ev.lineage.masked_fields.is_empty());
    }

    #[test]
    fn non_string_values_are_masked_too() {
        let m = masker(Policy::Hash);
        let mut ev = event(
            json!({
                "ani": 15555550955u64,
                "subject": {"text": "hi"},
                "callback_user_name": true,
                "attributes": {"n": 12, "o": {"k": "v"}},
            }),
            json!({}),
        );
        m.mask_event(&mut ev);
        assert_eq!(
            ev.payload.fields_map()["ani"],
            json!(m.token("15555550955"))
        );
        assert_eq!(
            ev.payload.fields_map()["subject"],
            json!(m.token(r#"{"text":"hi"}"#))
        );
        assert_eq!(
            ev.payload.fields_map()["callback_user_name"],
            json!(m.token("true"))
        );
        assert_eq!(
            ev.payload.fields_map()["attributes"]["n"],
            json!(m.token("12"))
        );
        assert_eq!(
            ev.payload.fields_map()["attributes"]["o"],
            json!(m.token(r#"{"k":"v"}"#))
        );

        let r = masker(Policy::Redact);
        let mut ev = event(json!({"dnis": 42, "attributes": {"x": [1, 2]}}), json!({}));
        r.mask_event(&mut ev);
        assert_eq!(ev.payload.fields_map()["dnis"], json!(REDACTED));
        assert_eq!(ev.payload.fields_map()["attributes"]["x"], json!(REDACTED));

        // Keep scrubs strings nested in a non-string free-text value.
        let k = masker(Policy::Keep);
        let mut ev = event(json!({"wrapup_notes": {"note": "mail a@b.com"}}), json!({}));
        k.mask_event(&mut ev);
        let want = format!("mail <email:{}>", k.token("a@b.com"));
        assert_eq!(
            ev.payload.fields_map()["wrapup_notes"],
            json!({"note": want})
        );
        assert_eq!(ev.lineage.masked_fields, vec!["wrapup_notes"]);
    }

    #[test]
    fn attribute_maps() {
        let attrs = json!({
            "context.email": " Jane@Example.com ",
            "context.firstName": "Jane",
            "lang": "en",
            "empty": null,
        });
        let h = masker(Policy::Hash);
        let mut ev = event(json!({"attributes": attrs.clone()}), json!({}));
        h.mask_event(&mut ev);
        let got = &ev.payload.fields_map()["attributes"];
        assert_eq!(got["context.email"], json!(h.token("Jane@Example.com")));
        assert_eq!(got["context.firstName"], json!(h.token("Jane")));
        assert_eq!(got["lang"], json!(h.token("en")));
        assert_eq!(got["empty"], Value::Null);
        assert_eq!(
            ev.lineage.masked_fields,
            vec![
                "attributes.context.email",
                "attributes.context.firstName",
                "attributes.lang"
            ]
        );

        let r = masker(Policy::Redact);
        let mut ev = event(json!({"attributes": attrs.clone()}), json!({}));
        r.mask_event(&mut ev);
        assert_eq!(
            ev.payload.fields_map()["attributes"]["lang"],
            json!(REDACTED)
        );
        assert_eq!(ev.lineage.masked_fields.len(), 3);

        let k = masker(Policy::Keep);
        let mut ev = event(json!({"attributes": attrs}), json!({}));
        k.mask_event(&mut ev);
        let got = &ev.payload.fields_map()["attributes"];
        assert_eq!(
            got["context.email"],
            json!(format!(" <email:{}> ", k.token("jane@example.com")))
        );
        assert_eq!(got["context.firstName"], json!("Jane"));
        assert_eq!(ev.lineage.masked_fields, vec!["attributes.context.email"]);
    }

    /// A key holding PII (Genesys lets flows name attributes freely) is
    /// scrubbed like free text under every policy, in the map and in its
    /// lineage path; other keys stay as they are.
    #[test]
    fn attribute_keys_holding_pii_are_scrubbed_in_the_map_and_the_paths() {
        let attrs = json!({
            "jane.doe@example.com": "vip",
            "Jane.Doe@Example.com": "again",
            "+1 317 555 0148": null,
            "card 4111 1111 1111 1111": "seen",
            "lang": "en",
        });
        let t = |v: &str| reference_token(KEY, v);
        let email = format!("<email:{}>", t("jane.doe@example.com"));
        let phone = format!("<phone:{}>", t("+13175550148"));
        let card = "card <card:removed>".to_owned();
        // Keys are renamed in key order: `Jane.Doe@…` sorts first and takes
        // the plain name, the lowercase spelling gets `#2`.
        let email2 = format!("{email}#2");
        for policy in [Policy::Hash, Policy::Redact, Policy::Keep] {
            let m = masker(policy);
            let mut ev = event(json!({"attributes": attrs.clone()}), json!({}));
            m.mask_event(&mut ev);
            let value = |v: &str| match policy {
                Policy::Hash => json!(t(v)),
                Policy::Redact => json!(REDACTED),
                Policy::Keep => json!(v),
            };
            let mut want = Map::new();
            want.insert(email.clone(), value("again"));
            want.insert(email2.clone(), value("vip"));
            want.insert(phone.clone(), Value::Null);
            want.insert(card.clone(), value("seen"));
            want.insert("lang".into(), value("en"));
            let got = &ev.payload.fields_map()["attributes"];
            assert_eq!(got, &Value::Object(want), "{policy}");
            // Every renamed key is listed (even with a null value), under
            // its new name; `lang` only when its value changed.
            let mut paths: Vec<String> = [&email, &email2, &phone, &card]
                .iter()
                .map(|k| format!("attributes.{k}"))
                .collect();
            paths.sort();
            if policy != Policy::Keep {
                paths.push("attributes.lang".into());
            }
            let got: Vec<&str> = ev.lineage.masked_fields.iter().map(|p| &**p).collect();
            assert_eq!(got, paths, "{policy}");
            // Neither the silver record nor its lineage carries the keys.
            let stamper = crate::operators::lineage::Stamper::new("t");
            let hop = stamper.stamp(
                crate::operators::lineage::STAGE_SILVER,
                crate::operators::lineage::STATUS_OK,
                &ev.source,
                1_649_237_446_000,
            );
            let bytes = crate::operators::lineage::encode(&ev, &hop, None);
            let text = String::from_utf8(bytes).unwrap().to_lowercase();
            for pii in ["jane", "doe@", "555 0148", "5550148", "4111"] {
                assert!(!text.contains(pii), "{policy}: {pii} in {text}");
            }
        }
        // Plain keys next to a PII key keep their names and positions.
        let m = masker(Policy::Keep);
        let mut ev = event(
            json!({"attributes": {"a": "x", "ivr.intent": "billing", "jane@example.com": 1}}),
            json!({}),
        );
        m.mask_event(&mut ev);
        let got = &ev.payload.fields_map()["attributes"];
        let key = format!("<email:{}>", t("jane@example.com"));
        assert_eq!(
            got,
            &json!({"a": "x", "ivr.intent": "billing", key.clone(): 1})
        );
        assert_eq!(ev.lineage.masked_fields, vec![format!("attributes.{key}")]);
    }

    /// Attributes that are not a map, or whose keys are plain names, keep
    /// the fast path's output (nothing renamed, nothing listed for keys).
    #[test]
    fn plain_attribute_keys_are_never_renamed() {
        for policy in [Policy::Hash, Policy::Redact, Policy::Keep] {
            let m = masker(policy);
            let attrs = json!({"context.email": null, "ivr.step2": null, "x-y_z": null});
            let mut ev = event(json!({"attributes": attrs.clone()}), json!({}));
            m.mask_event(&mut ev);
            assert_eq!(ev.payload.fields_map()["attributes"], attrs, "{policy}");
            assert!(ev.lineage.masked_fields.is_empty(), "{policy}");
        }
    }

    #[test]
    fn callback_number_arrays() {
        let numbers = json!([
            "tel:+15555550955",
            "+1 (555) 555-0956",
            null,
            "Jane@Example.com"
        ]);
        let h = masker(Policy::Hash);
        let mut ev = event(json!({"callback_numbers": numbers.clone()}), json!({}));
        h.mask_event(&mut ev);
        assert_eq!(
            ev.payload.fields_map()["callback_numbers"],
            json!([
                h.token("+15555550955"),
                h.token("+15555550956"),
                null,
                h.token("jane@example.com")
            ])
        );
        assert_eq!(ev.lineage.masked_fields, vec!["callback_numbers"]);

        let r = masker(Policy::Redact);
        let mut ev = event(json!({"callback_numbers": numbers.clone()}), json!({}));
        r.mask_event(&mut ev);
        assert_eq!(
            ev.payload.fields_map()["callback_numbers"],
            json!([REDACTED, REDACTED, null, REDACTED])
        );

        let k = masker(Policy::Keep);
        let mut ev = event(json!({"callback_numbers": numbers.clone()}), json!({}));
        k.mask_event(&mut ev);
        assert_eq!(ev.payload.fields_map()["callback_numbers"], numbers);
        assert!(ev.lineage.masked_fields.is_empty());

        let mut ev = event(json!({"callback_numbers": []}), json!({}));
        h.mask_event(&mut ev);
        assert!(ev.lineage.masked_fields.is_empty());

        // A lone string is still masked.
        let mut ev = event(json!({"callback_numbers": "tel:+15555550955"}), json!({}));
        h.mask_event(&mut ev);
        assert_eq!(
            ev.payload.fields_map()["callback_numbers"],
            json!(h.token("+15555550955"))
        );
    }

    #[test]
    fn ids_and_unlisted_fields_are_never_touched() {
        let fields = json!({
            "ani": "tel:+15555550955",
            "conversation_id": IDS[1],
            "queue_id": IDS[4],
            "answered_user_id": IDS[5],
            "external_contact_id": "uwu",
            "external_organization_id": "America",
            "conversation_external_contact_ids": ["idk", "5555550955"],
            "wrapup_code": IDS[0],
            "disconnect_type": "TRANSFER",
            "acd_outcome": "ANSWERED",
            "routing_priority": 40,
            "connected_duration_ms": 39674,
            "outbound_contact_id": "12345678901",
            "division_id": "test-division-id",
        });
        for policy in [Policy::Hash, Policy::Redact, Policy::Keep] {
            let m = masker(policy);
            let mut ev = event(fields.clone(), json!({}));
            let before = ev.clone();
            m.mask_event(&mut ev);
            for (k, v) in &before.payload.fields_map() {
                if k != "ani" {
                    assert_eq!(&ev.payload.fields_map()[k], v, "{k}");
                }
            }
            assert_eq!(ev.event_id, before.event_id);
            assert_eq!(ev.interaction_id, before.interaction_id);
            assert_eq!(ev.participant_id, before.participant_id);
            assert_eq!(ev.session_id, before.session_id);
            assert_eq!(ev.queue_id, before.queue_id);
            assert_eq!(ev.user_id, before.user_id);
            assert_eq!(ev.event_time_ms, before.event_time_ms);
            assert_eq!(ev.lineage.token, before.lineage.token);
            assert_eq!(ev.source, before.source);
        }
    }

    // ---- free-text scrubbing -----------------------------------------------

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
    fn extras_are_scrubbed_recursively_under_every_policy() {
        for policy in [Policy::Hash, Policy::Redact, Policy::Keep] {
            let m = masker(policy);
            let extras = json!({
                "participantName": "Jane Roe",
                "remote": "tel:+15555550955",
                "nested": {
                    "list": ["ok", "mail jane@example.com", 5555550955u64, {"deep": "4111 1111 1111 1111"}],
                    "id": "2f7bf00a-0fc2-4d6a-9b56-92238191433e",
                },
                "jane@example.com": "value",
                "when": "2022-04-06T09:30:44.949Z",
            });
            let mut ev = event(json!({}), extras);
            m.mask_event(&mut ev);
            let ekey = format!("<email:{}>", m.token("jane@example.com"));
            let x = &ev.payload.extras_map();
            assert_eq!(x["participantName"], json!("Jane Roe"));
            assert_eq!(x["remote"], json!(phone_tag(&m, "+15555550955")));
            assert_eq!(x["nested"]["list"][0], json!("ok"));
            assert_eq!(x["nested"]["list"][1], json!(format!("mail {ekey}")));
            assert_eq!(x["nested"]["list"][2], json!(5555550955u64));
            assert_eq!(x["nested"]["list"][3]["deep"], json!(CARD_REMOVED));
            assert_eq!(
                x["nested"]["id"],
                json!("2f7bf00a-0fc2-4d6a-9b56-92238191433e")
            );
            assert_eq!(x[ekey.as_str()], json!("value"));
            assert!(!x.contains_key("jane@example.com"));
            assert_eq!(x["when"], json!("2022-04-06T09:30:44.949Z"));
            let mut paths = ev.lineage.masked_fields.clone();
            paths.sort();
            let mut want = vec![
                format!("extras.{ekey}"),
                "extras.nested.list[1]".to_owned(),
                "extras.nested.list[3].deep".to_owned(),
                "extras.remote".to_owned(),
            ];
            want.sort();
            assert_eq!(paths, want);
            assert!(paths.iter().all(|p| !p.contains("jane@")));
        }
    }

    #[test]
    fn colliding_scrubbed_keys_are_both_kept() {
        let m = masker(Policy::Keep);
        let mut ev = event(
            json!({}),
            json!({"A@B.com": {"x": 1}, "a@b.com": 2, "4111111111111111": 3}),
        );
        m.mask_event(&mut ev);
        let ekey = format!("<email:{}>", m.token("a@b.com"));
        assert_eq!(ev.payload.extras_map().len(), 3);
        assert!(ev.payload.extras_map().contains_key(&ekey));
        assert!(ev.payload.extras_map().contains_key(&format!("{ekey}#2")));
        assert_eq!(ev.payload.extras_map()[CARD_REMOVED], json!(3));
        assert_eq!(ev.lineage.masked_fields.len(), 3);
    }

    #[test]
    fn masked_fields_are_appended_not_replaced() {
        let m = masker(Policy::Hash);
        let mut ev = event(json!({"ani": "tel:+1555", "dnis": "tel:+1666"}), json!({}));
        ev.lineage.masked_fields.push("earlier".into());
        m.mask_event(&mut ev);
        assert_eq!(ev.lineage.masked_fields, vec!["earlier", "ani", "dnis"]);
    }

    #[test]
    fn debug_and_errors_do_not_leak_the_key() {
        let m = Masker::new(b"super-secret-key-material", MaskPolicies::default());
        let d = format!("{m:?}");
        assert!(!d.contains("super-secret"));
        assert!(!d.contains(&hex::encode(b"super-secret-key-material")));
        assert!(d.contains("redacted") && d.contains("ani"));
        let e = MaskPolicies::default()
            .set("queue_id", Policy::Hash)
            .unwrap_err();
        assert!(e.to_string().contains("queue_id"));
    }

    #[test]
    fn masker_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Masker>();
        assert_send_sync::<MaskPolicies>();
    }

    #[test]
    fn patterns_compile() {
        for re in [&URI_RE, &EMAIL_RE, &UUID_RE, &DATE_IP_RE, &NUMBER_RE] {
            assert!(!re.as_str().is_empty());
            let _ = re.is_match("");
        }
    }

    // ---- independent reference -------------------------------------------
    //
    // The expected result of `mask_event`, written from the module docs
    // without calling the production masking: normalization, the field
    // walk, policies, lineage paths and token formatting are re-implemented
    // here, tokens are `reference_token` (plain `hmac`), and free text is
    // scrubbed by an oracle (`Scrub`) the caller picks: in the property
    // test, a table of sentences whose scrubbed form was written by hand.

    /// Scrubbed form of one free-text string (`None`: unchanged).
    type Scrub<'a> = &'a dyn Fn(&str) -> Option<String>;

    /// A leading URI scheme (`[A-Za-z][A-Za-z0-9+.-]*:`), dropped.
    fn ref_strip_scheme(s: &str) -> Option<&str> {
        let mut chars = s.char_indices();
        if !chars.next().is_some_and(|(_, c)| c.is_ascii_alphabetic()) {
            return None;
        }
        for (i, c) in chars {
            if c == ':' {
                return Some(&s[i + 1..]);
            }
            if !(c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-')) {
                return None;
            }
        }
        None
    }

    fn ref_phone(s: &str) -> String {
        let t = s.trim();
        let t = ref_strip_scheme(t).unwrap_or(t);
        let user = t.split('@').next().unwrap_or("");
        let user = user.split([';', '?']).next().unwrap_or("");
        let digits: String = user.chars().filter(char::is_ascii_digit).collect();
        if digits.is_empty() {
            user.trim().to_lowercase()
        } else {
            format!("+{digits}")
        }
    }

    fn ref_email(s: &str) -> String {
        s.trim().to_lowercase()
    }

    fn ref_address(s: &str) -> String {
        let t = s.trim();
        if t.len() >= 7 && t.is_char_boundary(7) && t[..7].eq_ignore_ascii_case("mailto:") {
            ref_email(&t[7..])
        } else if t.contains('@') && ref_strip_scheme(t).is_none() {
            ref_email(t)
        } else {
            ref_phone(t)
        }
    }

    #[derive(Clone, Copy)]
    enum RefKind {
        Address,
        List,
        Name,
        Text,
        Attributes,
    }

    const REF_FIELDS: [(&str, RefKind); 9] = [
        ("ani", RefKind::Address),
        ("dnis", RefKind::Address),
        ("address_from", RefKind::Address),
        ("address_to", RefKind::Address),
        ("callback_numbers", RefKind::List),
        ("callback_user_name", RefKind::Name),
        ("subject", RefKind::Text),
        ("wrapup_notes", RefKind::Text),
        ("attributes", RefKind::Attributes),
    ];

    /// `hash`/`redact` of one non-null value; `address`: strings are
    /// normalized as addresses, else trimmed. Non-strings hash their
    /// compact JSON (serde_json's text, keys sorted).
    fn ref_replace(key: &[u8], v: &Value, policy: Policy, address: bool) -> Value {
        match (policy, v) {
            (Policy::Redact, _) => json!("[REDACTED]"),
            (_, Value::String(s)) if address => json!(reference_token(key, &ref_address(s))),
            (_, Value::String(s)) => json!(reference_token(key, s.trim())),
            (_, other) => json!(reference_token(key, &serde_json::to_string(other).unwrap())),
        }
    }

    /// Scrubs every string and key inside `v`; pushes changed paths.
    fn ref_scrub_value(v: &mut Value, path: &str, scrub: Scrub, out: &mut Vec<String>) -> bool {
        match v {
            Value::String(s) => match scrub(s) {
                Some(clean) => {
                    *s = clean;
                    out.push(path.to_owned());
                    true
                }
                None => false,
            },
            Value::Array(items) => {
                let mut any = false;
                for (i, item) in items.iter_mut().enumerate() {
                    any |= ref_scrub_value(item, &format!("{path}[{i}]"), scrub, out);
                }
                any
            }
            Value::Object(m) => ref_scrub_map(m, path, scrub, out),
            _ => false,
        }
    }

    fn ref_scrub_map(
        m: &mut Map<String, Value>,
        path: &str,
        scrub: Scrub,
        out: &mut Vec<String>,
    ) -> bool {
        let renamed = ref_rename_keys(m, scrub);
        let mut any = !renamed.is_empty();
        for (k, v) in m.iter_mut() {
            let p = format!("{path}.{k}");
            let changed = ref_scrub_value(v, &p, scrub, out);
            any |= changed;
            if renamed.contains(k) && !(changed && matches!(v, Value::String(_))) {
                out.push(p);
            }
        }
        any
    }

    /// Renames each key of `m` that `scrub` changes (unchanged keys keep
    /// their names, a taken name gets `#2`…); returns the new names.
    fn ref_rename_keys(m: &mut Map<String, Value>, scrub: Scrub) -> Vec<String> {
        let mut renamed = Vec::new();
        let old = std::mem::take(m);
        let mut later = Vec::new();
        for (k, v) in old {
            match scrub(&k) {
                Some(clean) => later.push((clean, v)),
                None => {
                    m.insert(k, v);
                }
            }
        }
        for (clean, v) in later {
            let mut key = clean.clone();
            let mut n = 2;
            while m.contains_key(&key) {
                key = format!("{clean}#{n}");
                n += 1;
            }
            m.insert(key.clone(), v);
            renamed.push(key);
        }
        renamed
    }

    /// The documented masking of `fields` and `extras` (in place); returns
    /// `lineage.masked_fields`.
    fn ref_mask(
        key: &[u8],
        policies: &MaskPolicies,
        fields: &mut Map<String, Value>,
        extras: &mut Map<String, Value>,
        scrub: Scrub,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for (name, kind) in REF_FIELDS {
            let policy = policies.get(name);
            let Some(v) = fields.get_mut(name).filter(|v| !v.is_null()) else {
                continue;
            };
            let changed = match (kind, policy) {
                (RefKind::Address | RefKind::List | RefKind::Name, Policy::Keep) => false,
                (RefKind::List, _) if v.is_array() => {
                    let mut any = false;
                    for item in v.as_array_mut().unwrap() {
                        if !item.is_null() {
                            *item = ref_replace(key, item, policy, true);
                            any = true;
                        }
                    }
                    any
                }
                (RefKind::Attributes, _) if v.is_object() => {
                    let m = v.as_object_mut().unwrap();
                    let renamed = ref_rename_keys(m, scrub);
                    for (k, item) in m {
                        let changed = match policy {
                            _ if item.is_null() => false,
                            Policy::Keep => ref_scrub_value(item, "", scrub, &mut Vec::new()),
                            _ => {
                                *item = ref_replace(key, item, policy, false);
                                true
                            }
                        };
                        if changed || renamed.contains(k) {
                            out.push(format!("attributes.{k}"));
                        }
                    }
                    false
                }
                (RefKind::Text | RefKind::Attributes, Policy::Keep) => {
                    ref_scrub_value(v, "", scrub, &mut Vec::new())
                }
                (RefKind::Address | RefKind::List, _) => {
                    *v = ref_replace(key, v, policy, true);
                    true
                }
                (RefKind::Name | RefKind::Text | RefKind::Attributes, _) => {
                    *v = ref_replace(key, v, policy, false);
                    true
                }
            };
            if changed {
                out.push(name.to_owned());
            }
        }
        ref_scrub_map(extras, "extras", scrub, &mut out);
        out
    }

    /// `ev` was built from `fields` and `extras` (the reference starts from
    /// them, not from the payload's JSON, so a number's text is serde_json's
    /// as the docs say).
    fn assert_masks_like_reference(
        m: &Masker,
        ev: &Event,
        fields: &Map<String, Value>,
        extras: &Map<String, Value>,
        scrub: Scrub,
    ) {
        let mut ours = ev.clone();
        m.mask_event(&mut ours);
        let (mut fields, mut extras) = (fields.clone(), extras.clone());
        let paths = ref_mask(KEY, m.policies(), &mut fields, &mut extras, scrub);
        assert_eq!(ours.payload, Payload::from_maps(&fields, &extras));
        let got: Vec<&str> = ours.lineage.masked_fields.iter().map(|p| &**p).collect();
        assert_eq!(got, paths);
    }

    /// Free text with its scrubbed form written by hand from the module
    /// docs (`{p:X}` = `<phone:token(X)>`, `{e:X}` = `<email:token(X)>`,
    /// `X` the normalized value; `None`: left unchanged).
    const TEXTS: [(&str, Option<&str>); 14] = [
        (
            "call me at (555) 555-0955 or Jane.Roe@Example.com",
            Some("call me at {p:+5555550955} or {e:jane.roe@example.com}"),
        ),
        (
            "card 4111 1111 1111 1111 or +44 20 7946 0958",
            Some("card <card:removed> or {p:+442079460958}"),
        ),
        (
            "card 5500-0000-0000-0004 on file",
            Some("card <card:removed> on file"),
        ),
        ("card 4111111111111111.", Some("card <card:removed>.")),
        (
            "reach me via sip:+81399999998@172.18.182.10;user=phone, thanks",
            Some("reach me via {p:+81399999998}, thanks"),
        ),
        (
            "from SIP:Alice@Example.com today",
            Some("from {p:alice} today"),
        ),
        ("tel:+15555550955", Some("{p:+15555550955}")),
        (
            "write to Bob@Example.ORG.",
            Some("write to {e:bob@example.org}."),
        ),
        (
            "order 12345678 shipped",
            Some("order {p:+12345678} shipped"),
        ),
        ("  +1-555-555-0955  ", Some("  {p:+15555550955}  ")),
        ("jane@example.com", Some("{e:jane@example.com}")),
        (
            "ticket 2f7bf00a-0fc2-4d6a-9b56-92238191433e on 2022-04-06T09:30:44.949Z from 10.1.2.3",
            None,
        ),
        (
            "at 1649237444949, 48.8588443 and version 120.0.6099.130",
            None,
        ),
        (
            "hash 0x1a2b3c4d5e6f7a8b9c0d1e2f and 06.04.2022 or 04/06/2022",
            None,
        ),
    ];

    /// Expands `{p:X}` / `{e:X}` in a hand-written expectation.
    fn expand(template: &str) -> String {
        let mut out = String::new();
        let mut rest = template;
        while let Some(at) = rest.find('{') {
            out.push_str(&rest[..at]);
            let end = rest[at..].find('}').unwrap() + at;
            let (tag, value) = rest[at + 1..end].split_once(':').unwrap();
            let tag = if tag == "p" { "phone" } else { "email" };
            out.push_str(&format!("<{tag}:{}>", reference_token(KEY, value)));
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// The oracle over `TEXTS`; text without a digit, `@` or `:` cannot hold
    /// anything the scrubber replaces. Anything else is a test bug.
    fn table_scrub(s: &str) -> Option<String> {
        if !s
            .bytes()
            .any(|b| b.is_ascii_digit() || b == b'@' || b == b':')
        {
            return None;
        }
        let (_, want) = TEXTS
            .iter()
            .find(|(raw, _)| *raw == s)
            .unwrap_or_else(|| panic!("no hand-written scrub for {s:?}"));
        want.map(expand)
    }

    #[test]
    fn scrub_text_gives_the_hand_written_outputs() {
        let m = masker(Policy::Keep);
        for (raw, want) in TEXTS {
            assert_eq!(m.scrub_text(raw), want.map(expand), "{raw:?}");
        }
    }

    /// One event with every maskable field, masked with default policies
    /// (hash): the exact output, tokens from `reference_token` over values
    /// normalized by hand.
    fn sample_event() -> Event {
        event(
            json!({
                "ani": "tel:+1 (555) 555-0955",
                "dnis": "sip:+81399999998@172.18.182.10;user=phone",
                "address_from": " Jane.Roe@Example.COM ",
                "address_to": "MAILTO:Support@Example.org",
                "callback_numbers": ["5555550955", null, 15555550955u64],
                "callback_user_name": "  Jane Roe ",
                "subject": " Refund ",
                "wrapup_notes": null,
                "attributes": {"email": "a@b.co", "none": null, "n": 7},
                "queue_id": IDS[4],
                "wrapup_code": "555-555-0955",
            }),
            json!({
                "browser": {"ua": "Mozilla/5.0", "contact": "Jane@Example.com"},
                "list": ["plain", "call 555-555-0955"],
                "jane@example.com": 1,
                "ip": "10.1.2.3",
            }),
        )
    }

    #[test]
    fn sample_event_masks_to_the_hand_computed_output() {
        let t = |v: &str| reference_token(KEY, v);
        let mut ev = sample_event();
        masker(Policy::Hash).mask_event(&mut ev);
        let want_fields = json!({
            "ani": t("+15555550955"),
            "dnis": t("+81399999998"),
            "address_from": t("jane.roe@example.com"),
            "address_to": t("support@example.org"),
            "callback_numbers": [t("+5555550955"), null, t("15555550955")],
            "callback_user_name": t("Jane Roe"),
            "subject": t("Refund"),
            "wrapup_notes": null,
            "attributes": {"email": t("a@b.co"), "none": null, "n": t("7")},
            "queue_id": IDS[4],
            "wrapup_code": "555-555-0955",
        });
        let email_key = format!("<email:{}>", t("jane@example.com"));
        let mut want_extras = json!({
            "browser": {"ua": "Mozilla/5.0", "contact": format!("<email:{}>", t("jane@example.com"))},
            "list": ["plain", format!("call <phone:{}>", t("+5555550955"))],
            "ip": "10.1.2.3",
        });
        want_extras[&email_key] = json!(1);
        assert_eq!(
            ev.payload,
            Payload::from_maps(&map(want_fields), &map(want_extras))
        );
        let paths: Vec<&str> = ev.lineage.masked_fields.iter().map(|p| &**p).collect();
        let email_path = format!("extras.{email_key}");
        assert_eq!(
            paths,
            [
                "ani",
                "dnis",
                "address_from",
                "address_to",
                "callback_numbers",
                "callback_user_name",
                "subject",
                "attributes.email",
                "attributes.n",
                // Renamed to `<email:…>`, which sorts before `browser`.
                email_path.as_str(),
                "extras.browser.contact",
                "extras.list[1]",
            ]
        );
        // The silver record carries exactly that list, and no planted value.
        let stamper = crate::operators::lineage::Stamper::new("t");
        let hop = stamper.stamp(
            crate::operators::lineage::STAGE_SILVER,
            crate::operators::lineage::STATUS_OK,
            &ev.source,
            1_649_237_446_000,
        );
        let bytes = crate::operators::lineage::encode(&ev, &hop, None);
        let silver: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(silver["lineage"]["masked_fields"], json!(paths));
        let text = String::from_utf8(bytes).unwrap().to_lowercase();
        for pii in [
            "5550955",
            "81399999998",
            "jane",
            "support@",
            "a@b.co",
            "refund",
        ] {
            assert!(!text.contains(pii), "{pii} in {text}");
        }
    }

    #[test]
    fn sample_event_under_keep_and_redact_lists_only_what_changed() {
        let mut policies = MaskPolicies::all(Policy::Keep);
        policies.set("dnis", Policy::Redact).unwrap();
        policies.set("callback_numbers", Policy::Redact).unwrap();
        let mut ev = sample_event();
        let before = ev.payload.fields_map();
        Masker::new(KEY, policies).mask_event(&mut ev);
        let fields = ev.payload.fields_map();
        assert_eq!(fields["dnis"], json!("[REDACTED]"));
        assert_eq!(
            fields["callback_numbers"],
            json!(["[REDACTED]", null, "[REDACTED]"])
        );
        // Kept: addresses and names as written, text without PII untouched.
        for f in [
            "ani",
            "address_from",
            "address_to",
            "callback_user_name",
            "subject",
        ] {
            assert_eq!(fields[f], before[f], "{f}");
        }
        assert_eq!(
            fields["attributes"],
            json!({"email": format!("<email:{}>", reference_token(KEY, "a@b.co")), "none": null, "n": 7})
        );
        let paths: Vec<&str> = ev.lineage.masked_fields.iter().map(|p| &**p).collect();
        let email_path = format!(
            "extras.<email:{}>",
            reference_token(KEY, "jane@example.com")
        );
        assert_eq!(
            paths,
            [
                "dnis",
                "callback_numbers",
                "attributes.email",
                email_path.as_str(),
                "extras.browser.contact",
                "extras.list[1]",
            ]
        );
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

    fn assert_event_masks_like_reference(m: &Masker, ev: &Event, scrub: Scrub) {
        let fields = ev.payload.fields_map();
        let extras = ev.payload.extras_map();
        assert_masks_like_reference(m, ev, &fields, &extras, scrub);
    }

    fn policies_to_try() -> Vec<Masker> {
        let mut mixed = MaskPolicies::default();
        for (f, p) in [
            ("ani", Policy::Keep),
            ("subject", Policy::Keep),
            ("wrapup_notes", Policy::Keep),
            ("attributes", Policy::Keep),
            ("callback_numbers", Policy::Redact),
            ("callback_user_name", Policy::Redact),
        ] {
            mixed.set(f, p).unwrap();
        }
        vec![
            masker(Policy::Hash),
            masker(Policy::Redact),
            masker(Policy::Keep),
            Masker::new(KEY, mixed),
        ]
    }

    /// Generated traffic (every event kind, old and future schema versions)
    /// against the reference. The generator's free text is not in `TEXTS`,
    /// so here the oracle for free text is the production scanner (checked
    /// against hand-written outputs above and in the property test); the
    /// field walk, policies, normalization, tokens and paths are the
    /// reference's own.
    #[test]
    fn generated_events_mask_like_the_reference() {
        use crate::generate::{GenConfig, Generator, VersionMix};
        use crate::operators::decode::{decode_record, DecodeInput, Decoded};
        let maskers = policies_to_try();
        let scanner = masker(Policy::Keep);
        let scrub = |s: &str| scanner.scrub_text(s);
        let records = Generator::new(GenConfig {
            interactions: 200,
            seed: 5,
            version_mix: VersionMix {
                future_pct: 30.0,
                old_sdk_pct: 30.0,
                ..VersionMix::default()
            },
            collect_truth: false,
            ..GenConfig::default()
        });
        let (mut n, mut masked) = (0, 0);
        for r in records {
            let mut out = Vec::new();
            decode_record(
                &DecodeInput {
                    value: &r.value,
                    source: SourceRef {
                        topic: Arc::from("t"),
                        partition: 0,
                        offset: 0,
                    },
                    header_lineage_token: None,
                    record_timestamp_ms: None,
                    ticket: 0,
                },
                &mut out,
            );
            for ev in out.iter().filter_map(Decoded::as_event) {
                for m in &maskers {
                    assert_event_masks_like_reference(m, ev, &scrub);
                }
                let mut e = ev.clone();
                maskers[0].mask_event(&mut e);
                masked += usize::from(!e.lineage.masked_fields.is_empty());
                n += 1;
            }
        }
        assert!(n > 1000, "{n}");
        assert!(masked > n / 2, "{masked} of {n} events had PII");
    }

    fn text_value() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(TEXTS.iter().map(|(raw, _)| *raw).collect::<Vec<_>>())
                .prop_map(str::to_owned),
            "[a-zA-Z ,.!]{0,20}",
        ]
    }

    fn address_value() -> impl Strategy<Value = String> {
        prop_oneof![
            (200u32..1000, 200u32..1000, 0u32..10_000, 0usize..8).prop_map(|(a, e, l, f)| {
                match f {
                    0 => format!(" +1 ({a}) {e}-{l:04} "),
                    1 => format!("tel:+1{a}{e}{l:04}"),
                    2 => format!("sip:+1{a}{e}{l:04}@10.0.0.1;user=phone"),
                    3 => format!("TEL:{a}.{e}.{l:04}"),
                    4 => format!("sip:Agent{a}@host"),
                    5 => format!("tel:+1-{a}-{e}-{l:04}?x=1"),
                    6 => format!("{a}{e}{l:04}"),
                    _ => "sip:IPadPhone@172.18.182.10".to_owned(),
                }
            }),
            ("[a-zA-Z][a-zA-Z0-9._]{0,8}", "[a-zA-Z]{2,8}", 0usize..3).prop_map(|(l, d, f)| {
                match f {
                    0 => format!(" {l}@{d}.COM "),
                    1 => format!("MailTo:{l}@{d}.org"),
                    _ => format!("{l}@{d}.io"),
                }
            }),
            " ?[a-zA-Z@.+0-9 :;\"\\\\-]{0,30} ?",
        ]
    }

    fn structured_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            (text_value(), any::<i64>())
                .prop_map(|(t, n)| json!([t.clone(), null, n, {"deep": t}])),
            (text_value(), text_value()).prop_map(|(k, t)| {
                let mut m = Map::new();
                m.insert(k, json!(t.clone()));
                m.insert("n".into(), json!(1.5));
                m.insert("none".into(), Value::Null);
                m.insert("deep".into(), json!({"x": t.clone(), "list": [t]}));
                Value::Object(m)
            }),
        ]
    }

    fn field_value(kind: RefKind) -> BoxedStrategy<Value> {
        let text = || text_value().prop_map(Value::from);
        let addr = || address_value().prop_map(Value::from);
        match kind {
            RefKind::Address => prop_oneof![3 => addr(), 1 => structured_value()].boxed(),
            RefKind::List => prop_oneof![
                3 => prop::collection::vec(prop_oneof![3 => addr(), 1 => Just(Value::Null), 1 => any::<i64>().prop_map(Value::from)], 0..4)
                    .prop_map(Value::Array),
                1 => addr(),
                1 => structured_value(),
            ]
            .boxed(),
            RefKind::Name | RefKind::Text => {
                prop_oneof![3 => text(), 1 => structured_value()].boxed()
            }
            RefKind::Attributes => prop_oneof![
                3 => prop::collection::vec((text_value(), prop_oneof![2 => text(), 1 => structured_value()]), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
                1 => text(),
                1 => structured_value(),
            ]
            .boxed(),
        }
    }

    fn all_fields() -> impl Strategy<Value = Map<String, Value>> {
        REF_FIELDS
            .iter()
            .map(|&(name, kind)| {
                (
                    Just(name),
                    proptest::option::weighted(0.9, field_value(kind)),
                )
            })
            .collect::<Vec<_>>()
            .prop_map(|fields| {
                let mut m = Map::new();
                for (name, v) in fields {
                    if let Some(v) = v {
                        m.insert(name.to_owned(), v);
                    }
                }
                // Not maskable: never touched, whatever it holds.
                m.insert("wrapup_code".into(), json!("555-555-0955"));
                m
            })
    }

    proptest! {
        /// Every field kind and policy, nested extras with PII in values
        /// and keys, against the independent reference with hand-written
        /// free-text outputs.
        #[test]
        fn any_values_mask_like_the_reference(
            fields in all_fields(),
            extras in proptest::collection::vec(
                (prop_oneof!["[a-z]{1,8}", text_value()],
                 prop_oneof![text_value().prop_map(Value::from), structured_value()]),
                0..4,
            ),
        ) {
            let extras: Map<String, Value> = extras.into_iter().collect();
            for m in &policies_to_try() {
                assert_masks_like_reference(m, &event(Value::Object(fields.clone()), Value::Object(extras.clone())), &fields, &extras, &table_scrub);
            }
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
