//! The masking key: loaded once, never printed.

use std::fmt;
use std::path::{Path, PathBuf};

/// Environment variable holding the masking key (its UTF-8 bytes as given).
pub const MASKING_KEY_ENV: &str = "CXSTREAM_MASKING_KEY";

/// Errors loading the masking key. Messages name what to set, never the key.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "no masking key: set {MASKING_KEY_ENV} or pass --masking-key-file FILE \
         (the key that makes PII tokens; keep it secret and stable across runs)"
    )]
    Missing,
    #[error("the masking key is empty: set {MASKING_KEY_ENV} or --masking-key-file to a non-empty secret")]
    Empty,
    #[error("cannot read the masking key file {path}: {source}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// HMAC key bytes for PII tokens. `Debug` never shows the bytes.
#[derive(Clone)]
pub struct MaskingKey {
    bytes: Vec<u8>,
    ephemeral: bool,
}

impl fmt::Debug for MaskingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaskingKey")
            .field("len", &self.bytes.len())
            .field("ephemeral", &self.ephemeral)
            .finish()
    }
}

impl MaskingKey {
    /// A key from raw bytes (tests, or a key obtained elsewhere).
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Result<Self, SecretError> {
        let bytes = bytes.into();
        if bytes.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Self {
            bytes,
            ephemeral: false,
        })
    }

    /// A random 32-byte key for `demo`: tokens are not comparable across runs.
    pub fn ephemeral() -> Self {
        use rand::RngCore;
        let mut bytes = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self {
            bytes,
            ephemeral: true,
        }
    }

    /// Loads the key from `--masking-key-file` (the file's bytes, one trailing
    /// newline trimmed) if given, else from `CXSTREAM_MASKING_KEY`.
    pub fn load(file: Option<&Path>, env_value: Option<String>) -> Result<Self, SecretError> {
        if let Some(path) = file {
            let mut bytes = std::fs::read(path).map_err(|source| SecretError::Unreadable {
                path: path.to_path_buf(),
                source,
            })?;
            if bytes.last() == Some(&b'\n') {
                bytes.pop();
                if bytes.last() == Some(&b'\r') {
                    bytes.pop();
                }
            }
            return Self::from_bytes(bytes);
        }
        match env_value {
            Some(v) => Self::from_bytes(v.into_bytes()),
            None => Err(SecretError::Missing),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn is_ephemeral(&self) -> bool {
        self.ephemeral
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_key_trims_exactly_one_trailing_newline() {
        let dir = std::env::temp_dir().join(format!("cxkey-{}", std::process::id()));
        std::fs::write(&dir, b"s3cret\n\n").unwrap();
        let k = MaskingKey::load(Some(&dir), Some("ignored".into())).unwrap();
        assert_eq!(k.bytes(), b"s3cret\n");
        std::fs::remove_file(&dir).unwrap();
    }

    #[test]
    fn missing_key_names_what_to_set_and_debug_hides_the_key() {
        let err = MaskingKey::load(None, None).unwrap_err().to_string();
        assert!(err.contains(MASKING_KEY_ENV) && err.contains("--masking-key-file"));
        let k = MaskingKey::from_bytes("topsecretvalue").unwrap();
        assert!(!format!("{k:?}").contains("topsecret"));
    }

    /// A key file under the temp directory, unique per test.
    fn key_file(name: &str, bytes: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!("cxkey-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn empty_keys_are_refused_from_every_source() {
        assert!(matches!(
            MaskingKey::from_bytes(Vec::new()),
            Err(SecretError::Empty)
        ));
        assert!(matches!(
            MaskingKey::load(None, Some(String::new())),
            Err(SecretError::Empty)
        ));
        // An empty file, or one holding only the newline that is trimmed,
        // is an empty key (not a fallback to the environment).
        for (name, bytes) in [("empty", &b""[..]), ("lf", b"\n"), ("crlf", b"\r\n")] {
            let path = key_file(name, bytes);
            let r = MaskingKey::load(Some(&path), Some("env-key".into()));
            std::fs::remove_file(&path).unwrap();
            assert!(matches!(r, Err(SecretError::Empty)), "{name}: {r:?}");
        }
        let msg = SecretError::Empty.to_string();
        assert!(msg.contains(MASKING_KEY_ENV) && msg.contains("--masking-key-file"));
    }

    #[test]
    fn a_file_key_loses_one_trailing_newline_and_nothing_else() {
        for (name, bytes, want) in [
            ("plain", &b"s3cret"[..], &b"s3cret"[..]),
            ("lf", b"s3cret\n", b"s3cret"),
            ("crlf", b"s3cret\r\n", b"s3cret"),
            // Only a newline is trimmed: other white space is key material.
            ("space", b" s3cret \n", b" s3cret "),
            ("cr", b"s3cret\r", b"s3cret\r"),
            ("lflf", b"s3cret\n\n", b"s3cret\n"),
        ] {
            let path = key_file(&format!("trim-{name}"), bytes);
            let k = MaskingKey::load(Some(&path), None);
            std::fs::remove_file(&path).unwrap();
            assert_eq!(k.unwrap().bytes(), want, "{name}");
        }
        // The environment value is taken as given (no trimming).
        let k = MaskingKey::load(None, Some("s3cret\n".into())).unwrap();
        assert_eq!(k.bytes(), b"s3cret\n");
        assert!(!k.is_ephemeral());
    }

    #[test]
    fn an_unreadable_key_file_is_an_error_naming_the_file_not_a_fallback() {
        let missing = std::env::temp_dir().join(format!("cxkey-{}-absent", std::process::id()));
        let dir = std::env::temp_dir();
        for path in [missing.as_path(), dir.as_path()] {
            // The environment key is not used instead.
            let err = MaskingKey::load(Some(path), Some("env-key".into())).unwrap_err();
            match &err {
                SecretError::Unreadable { path: p, .. } => assert_eq!(p, path),
                other => panic!("{other:?}"),
            }
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!(
                    "cannot read the masking key file {}: ",
                    path.display()
                )),
                "{msg}"
            );
            assert!(!msg.contains("env-key"), "{msg}");
        }
    }
}
