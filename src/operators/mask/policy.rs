//! Which fields are maskable and how ([`Policy`] per field in
//! [`MaskPolicies`]), and the configuration errors.

use std::fmt;
use std::str::FromStr;

/// What a redacted value becomes.
pub const REDACTED: &str = "[REDACTED]";

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
pub(super) enum FieldKind {
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
pub(super) const FIELDS: [(&str, FieldKind); 9] = [
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
pub(super) fn maskable(name: &str) -> Option<usize> {
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

    /// The policy of the `i`-th field of [`FIELDS`].
    pub(super) fn policy_at(&self, i: usize) -> Policy {
        self.policies[i]
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
