//! JSON without the rest of the crate: a borrowed tree for decode, and
//! canonical JSON text, the stored format.
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
//!
//! Canonical text is a stored format: what silver records hold (see
//! [`crate::model`]) and what content fingerprints are computed over
//! (`operators::decode`). It lives here, apart from the operators, so that
//! `model` and the operators both build on it and neither depends on the
//! other for it.
//!
//! | file | what |
//! |---|---|
//! | `tape.rs` | [`Tape`], [`Node`] (built by serde_json's parser) and [`ValueRef`], a view of a tape node or a `Value` |
//! | `fast.rs` | [`parse_objects_fast`]: the common records, without serde |
//! | `canonical.rs` | the canonical text: [`Canonical`] writes it; [`parse_canonical`], [`str_content`], [`each_canonical_item`] and [`each_canonical_member`] read it |
//! | `write.rs` | string and number writers in serde_json's spelling |

mod canonical;
mod fast;
mod tape;
#[cfg(test)]
mod testing;
mod write;

pub use canonical::{
    each_canonical_item, each_canonical_member, parse_canonical, str_content, Canonical,
};
pub use fast::{parse_objects_fast, FastUnits};
pub use tape::{Items, Members, Node, Num, Tape, ValueRef};
pub use write::{write_json_str, write_str_node, write_u64};
