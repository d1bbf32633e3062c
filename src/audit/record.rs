//! The audit record (`schemas/audit/cx.audit.event.v1.json`) and its hash,
//! without Kafka.
//!
//! `hash` = SHA-256(`"cx-audit/v1\n"` ‖ JCS(record without `hash`)), JCS
//! being RFC 8785 canonical JSON (members sorted, ECMAScript number and
//! string forms). Every integer in a record stays below 2^53 and times and
//! hashes are strings, so the canonical form is exact. The Merkle leaf of a
//! record is the RFC 6962 leaf hash of its 32 hash bytes.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::merkle::{leaf_hash, Hash};

/// `schema_version` of the records this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// The `type` of a state change.
pub const STATE_CHANGED: &str = "interaction.state_changed";

/// The domain separator of a record's hash.
pub const DOMAIN: &[u8] = b"cx-audit/v1\n";

/// `prev_hash` of an interaction's first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One state change of one interaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub schema_version: u32,
    #[serde(rename = "type")]
    pub kind: String,
    pub interaction_id: String,
    /// 1, 2, … per interaction.
    pub seq: u64,
    pub from_state: String,
    pub to_state: String,
    /// The event time of the change, ISO-8601 UTC with ms.
    pub event_time: String,
    /// `agent:<user id>`, `queue:<queue id>`, `customer` or `system`
    /// (Genesys ids, never PII).
    pub actor: String,
    /// The silver event that made the change.
    pub source_event_id: String,
    pub lineage_token: Option<String>,
    /// The interaction's previous record's `hash`; [`GENESIS`] for seq 1.
    pub prev_hash: String,
    /// The audit partition (= the input partition).
    pub partition: i32,
    /// 0, 1, … per audit partition, gap-free: the Merkle leaf's index.
    pub leaf_index: u64,
    pub hash: String,
}

/// Why a record's bytes are not a record of this build.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("not an audit record: {0}")]
    NotRecord(String),
    #[error("audit record has schema_version {0}; this build reads version {SCHEMA_VERSION}")]
    SchemaVersion(u32),
}

impl AuditRecord {
    /// The hash of this record's fields (all but `hash`).
    pub fn compute_hash(&self) -> Hash {
        let mut v = match serde_json::to_value(self) {
            Ok(v) => v,
            Err(_) => return [0; 32],
        };
        if let Some(o) = v.as_object_mut() {
            o.remove("hash");
        }
        let canonical = serde_json_canonicalizer::to_vec(&v).unwrap_or_default();
        let mut h = Sha256::new();
        h.update(DOMAIN);
        h.update(&canonical);
        h.finalize().into()
    }

    /// Sets `hash` from the other fields.
    pub fn seal(mut self) -> Self {
        self.hash = hex::encode(self.compute_hash());
        self
    }

    /// Whether `hash` matches the other fields.
    pub fn hash_ok(&self) -> bool {
        hex::encode(self.compute_hash()) == self.hash
    }

    /// The record's Merkle leaf hash (over its stored `hash`).
    pub fn leaf(&self) -> Option<Hash> {
        let mut h = [0u8; 32];
        hex::decode_to_slice(&self.hash, &mut h).ok()?;
        Some(leaf_hash(&h))
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(value: &[u8]) -> Result<AuditRecord, RecordError> {
        #[derive(Deserialize)]
        struct Version {
            schema_version: u32,
        }
        let v: Version = serde_json::from_slice(value).map_err(|e| {
            RecordError::NotRecord(format!(
                "{:?} at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        if v.schema_version != SCHEMA_VERSION {
            return Err(RecordError::SchemaVersion(v.schema_version));
        }
        serde_json::from_slice(value).map_err(|e| {
            RecordError::NotRecord(format!(
                "{:?} at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ))
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn record(id: &str, seq: u64, prev: &str, leaf_index: u64) -> AuditRecord {
        AuditRecord {
            schema_version: SCHEMA_VERSION,
            kind: STATE_CHANGED.into(),
            interaction_id: id.into(),
            seq,
            from_state: "queued".into(),
            to_state: "alerting".into(),
            event_time: "2026-11-20T10:15:02.123Z".into(),
            actor: "agent:u1".into(),
            source_event_id: format!("e{seq}"),
            lineage_token: Some("tok".into()),
            prev_hash: prev.into(),
            partition: 3,
            leaf_index,
            hash: String::new(),
        }
        .seal()
    }

    #[test]
    fn the_hash_is_sha256_of_the_domain_and_the_canonical_form_without_hash() {
        let r = record("c1", 7, GENESIS, 41);
        // Canonical: members sorted by name, no white space.
        let canonical = concat!(
            r#"{"actor":"agent:u1","event_time":"2026-11-20T10:15:02.123Z","from_state":"queued","#,
            r#""interaction_id":"c1","leaf_index":41,"lineage_token":"tok","partition":3,"#,
            r#""prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","#,
            r#""schema_version":1,"seq":7,"source_event_id":"e7","to_state":"alerting","#,
            r#""type":"interaction.state_changed"}"#
        );
        let mut h = Sha256::new();
        h.update(b"cx-audit/v1\n");
        h.update(canonical.as_bytes());
        assert_eq!(r.hash, hex::encode(h.finalize()));
        assert!(r.hash_ok());
    }

    /// The shipped schema names exactly the fields of a record, all
    /// required.
    #[test]
    fn the_shipped_schema_names_every_field() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../schemas/audit/cx.audit.event.v1.json"))
                .expect("schema");
        let rec: serde_json::Value =
            serde_json::from_slice(&record("c1", 1, GENESIS, 0).encode()).expect("json");
        let mut want: Vec<&String> = schema["properties"]
            .as_object()
            .expect("props")
            .keys()
            .collect();
        let mut got: Vec<&String> = rec.as_object().expect("object").keys().collect();
        let mut required: Vec<&str> = schema["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(serde_json::Value::as_str)
            .collect();
        want.sort();
        got.sort();
        required.sort_unstable();
        assert_eq!(got, want);
        assert_eq!(
            required,
            want.iter().map(|s| s.as_str()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn any_field_change_breaks_the_hash_and_the_record_round_trips() {
        let r = record("c1", 2, GENESIS, 0);
        for tampered in [
            AuditRecord {
                seq: 3,
                ..r.clone()
            },
            AuditRecord {
                to_state: "connected".into(),
                ..r.clone()
            },
            AuditRecord {
                leaf_index: 1,
                ..r.clone()
            },
            AuditRecord {
                lineage_token: None,
                ..r.clone()
            },
        ] {
            assert!(!tampered.hash_ok(), "{tampered:?}");
        }
        let back = AuditRecord::decode(&r.encode()).expect("decode");
        assert_eq!(back, r);
        assert!(back.leaf().is_some());
        let v2 = String::from_utf8(r.encode())
            .unwrap()
            .replace("\"schema_version\":1", "\"schema_version\":2");
        assert_eq!(
            AuditRecord::decode(v2.as_bytes()),
            Err(RecordError::SchemaVersion(2))
        );
        assert!(matches!(
            AuditRecord::decode(b"nope"),
            Err(RecordError::NotRecord(_))
        ));
    }
}
