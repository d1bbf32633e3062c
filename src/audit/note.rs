//! Signed checkpoints: the C2SP tlog-checkpoint body in a C2SP signed note
//! with an Ed25519 signature, without Kafka.
//!
//! ```text
//! <origin>\n<tree size>\n<base64 root>\n
//! \n
//! — <key name> <base64(key id ‖ signature)>\n
//! ```
//!
//! The signature is over the body (the text up to and including its last
//! newline); the key id is the first 4 bytes of
//! `SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)` (0x01: Ed25519).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::merkle::Hash;

/// The em dash that starts a signature line.
const DASH: &str = "\u{2014}";

/// A checkpoint: the tree of one audit partition at one size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Names the log: `<origin prefix>/<audit topic>/<partition>`.
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    fn parse_body(body: &str) -> Result<Checkpoint, NoteError> {
        let mut lines = body.lines();
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(NoteError::Body("fewer than three lines"));
        };
        let size = size
            .parse::<u64>()
            .map_err(|_| NoteError::Body("the tree size is not a decimal number"))?;
        let bytes = B64
            .decode(root)
            .map_err(|_| NoteError::Body("the root is not base64"))?;
        let root: Hash = bytes
            .try_into()
            .map_err(|_| NoteError::Body("the root is not 32 bytes"))?;
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
        })
    }
}

/// Why a note is not a valid checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("not a signed note: {0}")]
    Format(&'static str),
    #[error("checkpoint body: {0}")]
    Body(&'static str),
    #[error("no signature by the given key (signed as {0})")]
    UnknownKey(String),
    #[error("the signature of key `{0}` does not verify")]
    BadSignature(String),
}

/// Why a key cannot be used. Never carries key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0} is not an Ed25519 private key in PKCS#8 PEM")]
    Private(String),
    #[error("{0} is not an Ed25519 public key in PEM (SubjectPublicKeyInfo)")]
    Public(String),
    #[error("encoding the key: {0}")]
    Encode(String),
}

/// A named signing key.
pub struct NoteSigner {
    name: String,
    key: SigningKey,
}

/// A named public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key: VerifyingKey,
}

fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0A, 0x01]);
    h.update(key.as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// `pem`: a PKCS#8 private key; `source` names where it came from (for
    /// errors).
    pub fn from_pem(name: &str, pem: &str, source: &str) -> Result<Self, KeyError> {
        let key =
            SigningKey::from_pkcs8_pem(pem).map_err(|_| KeyError::Private(source.to_string()))?;
        Ok(NoteSigner {
            name: name.to_string(),
            key,
        })
    }

    /// A new random key.
    pub fn generate(name: &str) -> Self {
        NoteSigner {
            name: name.to_string(),
            key: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    /// (private PKCS#8 PEM, public SPKI PEM).
    pub fn to_pem(&self) -> Result<(String, String), KeyError> {
        let private = self
            .key
            .to_pkcs8_pem(Default::default())
            .map_err(|e| KeyError::Encode(e.to_string()))?;
        let public = self
            .key
            .verifying_key()
            .to_public_key_pem(Default::default())
            .map_err(|e| KeyError::Encode(e.to_string()))?;
        Ok((private.to_string(), public))
    }

    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// The signed note of `c`.
    pub fn sign(&self, c: &Checkpoint) -> String {
        let body = c.body();
        let sig: Signature = self.key.sign(body.as_bytes());
        let mut blob = Vec::with_capacity(68);
        blob.extend_from_slice(&key_id(&self.name, &self.key.verifying_key()));
        blob.extend_from_slice(&sig.to_bytes());
        format!("{body}\n{DASH} {} {}\n", self.name, B64.encode(blob))
    }
}

impl NoteVerifier {
    pub fn from_pem(name: &str, pem: &str, source: &str) -> Result<Self, KeyError> {
        let key = VerifyingKey::from_public_key_pem(pem)
            .map_err(|_| KeyError::Public(source.to_string()))?;
        Ok(NoteVerifier {
            name: name.to_string(),
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads `note` and checks its signature by this key.
    pub fn verify(&self, note: &str) -> Result<Checkpoint, NoteError> {
        let Some(split) = note.find("\n\n") else {
            return Err(NoteError::Format("no blank line before the signatures"));
        };
        let (body, sigs) = (&note[..=split], &note[split + 2..]);
        let id = key_id(&self.name, &self.key);
        let mut signers = Vec::new();
        for line in sigs.lines().filter(|l| !l.is_empty()) {
            let Some(rest) = line.strip_prefix(DASH).and_then(|r| r.strip_prefix(' ')) else {
                return Err(NoteError::Format(
                    "a signature line does not start with an em dash",
                ));
            };
            let Some((name, b64)) = rest.rsplit_once(' ') else {
                return Err(NoteError::Format("a signature line has no signature"));
            };
            let Ok(blob) = B64.decode(b64) else {
                return Err(NoteError::Format("a signature is not base64"));
            };
            signers.push(format!(
                "`{name}` with key id {}",
                hex::encode(blob.get(..4).unwrap_or_default())
            ));
            if name != self.name || blob.len() != 68 || blob[..4] != id {
                continue;
            }
            let sig = Signature::from_slice(&blob[4..])
                .map_err(|_| NoteError::Format("a signature is not 64 bytes"))?;
            self.key
                .verify_strict(body.as_bytes(), &sig)
                .map_err(|_| NoteError::BadSignature(self.name.clone()))?;
            return Checkpoint::parse_body(body);
        }
        Err(NoteError::UnknownKey(signers.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "cxstream.audit/cx.audit.events/3".into(),
            size: 1_234,
            root: [7; 32],
        }
    }

    #[test]
    fn a_signed_checkpoint_verifies_and_reads_back() {
        let s = NoteSigner::generate("cxstream-audit");
        let note = s.sign(&checkpoint());
        assert!(
            note.starts_with("cxstream.audit/cx.audit.events/3\n1234\n"),
            "{note}"
        );
        assert!(note.contains("\n\n\u{2014} cxstream-audit "), "{note}");
        assert_eq!(s.verifier().verify(&note), Ok(checkpoint()));
    }

    #[test]
    fn a_changed_body_another_key_or_a_forged_line_is_refused() {
        let s = NoteSigner::generate("cxstream-audit");
        let note = s.sign(&checkpoint());
        let v = s.verifier();
        let edited = note.replace("\n1234\n", "\n1233\n");
        assert_eq!(
            v.verify(&edited),
            Err(NoteError::BadSignature("cxstream-audit".into()))
        );
        let other = NoteSigner::generate("cxstream-audit").sign(&checkpoint());
        assert!(
            matches!(v.verify(&other), Err(NoteError::UnknownKey(s)) if s.starts_with("`cxstream-audit` with key id ")),
            "another key of the same name"
        );
        assert!(matches!(
            v.verify("no blank line"),
            Err(NoteError::Format(_))
        ));
    }

    #[test]
    fn keys_round_trip_through_pem_and_never_print() {
        let s = NoteSigner::generate("k");
        let (private, public) = s.to_pem().expect("pem");
        assert!(private.contains("BEGIN PRIVATE KEY"));
        let back = NoteSigner::from_pem("k", &private, "key.pem").expect("private");
        assert_eq!(back.verifier(), s.verifier());
        let v = NoteVerifier::from_pem("k", &public, "key.pub").expect("public");
        assert_eq!(v, s.verifier());
        assert!(!format!("{back:?}").contains(&private[30..60]));
        let err = NoteSigner::from_pem("k", "garbage", "/etc/key.pem").expect_err("bad");
        assert_eq!(
            err.to_string(),
            "/etc/key.pem is not an Ed25519 private key in PKCS#8 PEM"
        );
    }
}
