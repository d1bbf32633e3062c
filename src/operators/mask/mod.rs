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
//!
//! # Files
//!
//! | file | what |
//! |---|---|
//! | `token.rs` | the token formula and the normalization before hashing |
//! | `policy.rs` | [`Policy`], [`MaskPolicies`]: the maskable fields and what is done with each |
//! | `scrub.rs` | the free-text scanner ([`Masker::scrub_text`]) |
//! | `structured.rs` | scrubbing inside JSON values (extras, structured attribute values) |
//! | `fields.rs` | masking each maskable field of the payload |

use std::fmt;

use crate::model::Event;

mod fields;
mod policy;
mod scrub;
mod structured;
#[cfg(test)]
mod tests;
mod token;

pub use policy::{MaskError, MaskPolicies, Policy, REDACTED};
pub use scrub::CARD_REMOVED;
pub use token::{normalize_address, normalize_email, normalize_phone};

use token::Tokenizer;

/// Masks events in place. Cheap to share (`Send + Sync`); the keyed HMAC
/// state is computed once and cloned per value.
#[derive(Clone)]
pub struct Masker {
    tokens: Tokenizer,
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

impl Masker {
    /// A masker for `key` (any length; HMAC semantics) and `policies`.
    pub fn new(key: &[u8], policies: MaskPolicies) -> Masker {
        Masker {
            tokens: Tokenizer::new(key),
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
        self.tokens.token(normalized)
    }

    /// Scrubs free text: card numbers → `<card:removed>`, emails →
    /// `<email:TOKEN>`, phone numbers and `tel:`/`sip:` URIs →
    /// `<phone:TOKEN>`. Returns `None` when nothing had to change.
    pub fn scrub_text(&self, text: &str) -> Option<String> {
        scrub::scrub_text(&self.tokens, text)
    }

    /// Masks the event's fields and extras in place and appends the paths
    /// it changed to `ev.lineage.masked_fields`.
    pub fn mask_event(&self, ev: &mut Event) {
        let out = &mut ev.lineage.masked_fields;
        let payload = &mut ev.payload;
        fields::mask_fields(&self.tokens, &self.policies, payload, out);
        if payload.has_extras() && !structured::extras_are_clean(&self.tokens, payload) {
            let mut extras = payload.extras_map();
            let mut path = String::from("extras");
            if structured::scrub_map(&self.tokens, &mut extras, &mut path, out) {
                payload.set_extras(&extras);
            }
        }
    }
}
