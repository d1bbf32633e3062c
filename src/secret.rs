//! The masking key: loaded once, never printed.

use std::fmt;
use std::path::{Path, PathBuf};

/// Environment variable holding the masking key (its UTF-8 bytes, one
/// trailing newline removed).
pub const MASKING_KEY_ENV: &str = "CXSTREAM_MASKING_KEY";

/// Where a masking key came from, as error messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// [`MaskingKey::from_bytes`]: a key obtained elsewhere.
    Bytes,
    /// The `CXSTREAM_MASKING_KEY` environment variable.
    Env,
    /// The `--masking-key-file` at this path.
    File(PathBuf),
}

impl fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyOrigin::Bytes => f.write_str("given"),
            KeyOrigin::Env => write!(f, "in {MASKING_KEY_ENV}"),
            KeyOrigin::File(path) => {
                write!(f, "in the --masking-key-file {}", path.display())
            }
        }
    }
}

/// Errors loading the masking key. Messages name what to set, never the key.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "no masking key: set {MASKING_KEY_ENV} or pass --masking-key-file FILE \
         (the key that makes PII tokens; keep it secret and stable across runs)"
    )]
    Missing,
    #[error(
        "the masking key {origin} is empty or only white space: set {MASKING_KEY_ENV} \
         or --masking-key-file FILE to a non-empty secret"
    )]
    Empty { origin: KeyOrigin },
    #[error("cannot read the masking key file {path} (--masking-key-file): {source}")]
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

/// Removes one trailing `\n` or `\r\n` (what `echo` and most editors add),
/// and nothing else: other white space, a second newline or a lone `\r` is
/// key material.
fn trim_one_newline(bytes: &mut Vec<u8>) {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
}

/// True for a key that is empty or holds only (Unicode) white space.
fn is_blank(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|s| s.trim().is_empty())
}

impl MaskingKey {
    /// A key from raw bytes (tests, or a key obtained elsewhere), used as
    /// given. Refused when empty or only white space.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Result<Self, SecretError> {
        Self::checked(bytes.into(), KeyOrigin::Bytes)
    }

    fn checked(bytes: Vec<u8>, origin: KeyOrigin) -> Result<Self, SecretError> {
        if is_blank(&bytes) {
            return Err(SecretError::Empty { origin });
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

    /// Loads the key from `--masking-key-file` if given (an unreadable file
    /// is an error, not a fall-back to the environment), else from
    /// `CXSTREAM_MASKING_KEY` (`env_value`). Either way the key is the
    /// bytes with one trailing `\n` or `\r\n` removed, so the same secret
    /// written to a file by `echo` and exported in the variable gives the
    /// same tokens. A key that is then empty or only white space is refused.
    pub fn load(file: Option<&Path>, env_value: Option<String>) -> Result<Self, SecretError> {
        let (mut bytes, origin) = match (file, env_value) {
            (Some(path), _) => {
                let bytes = std::fs::read(path).map_err(|source| SecretError::Unreadable {
                    path: path.to_path_buf(),
                    source,
                })?;
                (bytes, KeyOrigin::File(path.to_path_buf()))
            }
            (None, Some(v)) => (v.into_bytes(), KeyOrigin::Env),
            (None, None) => return Err(SecretError::Missing),
        };
        trim_one_newline(&mut bytes);
        Self::checked(bytes, origin)
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

    /// A key file under the temp directory, unique per test.
    fn key_file(name: &str, bytes: &[u8]) -> PathBuf {
        let path = std::env::temp_dir().join(format!("cxkey-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Loads the key from a temporary file holding `bytes`.
    fn from_file(name: &str, bytes: &[u8], env: Option<&str>) -> Result<MaskingKey, SecretError> {
        let path = key_file(name, bytes);
        let k = MaskingKey::load(Some(&path), env.map(str::to_owned));
        std::fs::remove_file(&path).unwrap();
        k
    }

    #[test]
    fn missing_key_names_what_to_set_and_debug_hides_the_key() {
        let err = MaskingKey::load(None, None).unwrap_err().to_string();
        assert!(err.contains(MASKING_KEY_ENV) && err.contains("--masking-key-file"));
        let k = MaskingKey::from_bytes("topsecretvalue").unwrap();
        assert!(!format!("{k:?}").contains("topsecret"));
    }

    #[test]
    fn empty_keys_are_refused_from_every_source() {
        assert!(matches!(
            MaskingKey::from_bytes(Vec::new()),
            Err(SecretError::Empty {
                origin: KeyOrigin::Bytes
            })
        ));
        // Set but empty, or holding only the newline that is removed.
        for v in ["", "\n", "\r\n"] {
            let r = MaskingKey::load(None, Some(v.into()));
            assert!(
                matches!(
                    r,
                    Err(SecretError::Empty {
                        origin: KeyOrigin::Env
                    })
                ),
                "{v:?}: {r:?}"
            );
        }
        // An empty file is an empty key, not a fallback to the environment.
        for (name, bytes) in [("empty", &b""[..]), ("lf", b"\n"), ("crlf", b"\r\n")] {
            let r = from_file(name, bytes, Some("env-key"));
            assert!(
                matches!(
                    &r,
                    Err(SecretError::Empty {
                        origin: KeyOrigin::File(_)
                    })
                ),
                "{name}: {r:?}"
            );
        }
    }

    #[test]
    fn whitespace_only_keys_are_refused_from_every_source() {
        for blank in [
            " ",
            "   ",
            "\t",
            " \n",
            "\n\n",
            "\r",
            " \t\r\n",
            "\u{a0}\u{2003}",
        ] {
            assert!(
                matches!(
                    MaskingKey::from_bytes(blank),
                    Err(SecretError::Empty { .. })
                ),
                "bytes {blank:?}"
            );
            let r = MaskingKey::load(None, Some(blank.into()));
            assert!(
                matches!(
                    r,
                    Err(SecretError::Empty {
                        origin: KeyOrigin::Env
                    })
                ),
                "env {blank:?}: {r:?}"
            );
            let r = from_file("blank", blank.as_bytes(), Some("env-key"));
            assert!(
                matches!(
                    &r,
                    Err(SecretError::Empty {
                        origin: KeyOrigin::File(_)
                    })
                ),
                "file {blank:?}: {r:?}"
            );
        }
        // White space around a secret is key material, not a blank key.
        assert_eq!(MaskingKey::from_bytes(" k ").unwrap().bytes(), b" k ");
        // Bytes that are not UTF-8 are not white space.
        assert!(MaskingKey::from_bytes(vec![0xff, b' ']).is_ok());
    }

    #[test]
    fn empty_key_errors_name_the_source_and_what_to_set_not_the_key() {
        let env = MaskingKey::load(None, Some("  \t ".into())).unwrap_err();
        assert_eq!(
            env.to_string(),
            "the masking key in CXSTREAM_MASKING_KEY is empty or only white space: \
             set CXSTREAM_MASKING_KEY or --masking-key-file FILE to a non-empty secret"
        );
        let path = key_file("named", b"   \n");
        let file = MaskingKey::load(Some(&path), None).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            file.to_string(),
            format!(
                "the masking key in the --masking-key-file {} is empty or only white space: \
                 set CXSTREAM_MASKING_KEY or --masking-key-file FILE to a non-empty secret",
                path.display()
            )
        );
        let bytes = MaskingKey::from_bytes("").unwrap_err().to_string();
        assert!(
            bytes.starts_with("the masking key given is empty"),
            "{bytes}"
        );
    }

    #[test]
    fn a_trailing_newline_is_removed_alike_from_the_file_and_the_environment() {
        for (name, raw, want) in [
            ("plain", "s3cret", "s3cret"),
            ("lf", "s3cret\n", "s3cret"),
            ("crlf", "s3cret\r\n", "s3cret"),
            // Only one newline is removed: other white space is key material.
            ("space", " s3cret \n", " s3cret "),
            ("cr", "s3cret\r", "s3cret\r"),
            ("lflf", "s3cret\n\n", "s3cret\n"),
            ("crlfcrlf", "s3cret\r\n\r\n", "s3cret\r\n"),
            ("inner", "s3\ncret", "s3\ncret"),
        ] {
            let file = from_file(&format!("trim-{name}"), raw.as_bytes(), None).unwrap();
            let env = MaskingKey::load(None, Some(raw.into())).unwrap();
            assert_eq!(file.bytes(), want.as_bytes(), "file {name}");
            assert_eq!(env.bytes(), want.as_bytes(), "env {name}");
            assert!(!file.is_ephemeral() && !env.is_ephemeral());
        }
        // The same secret written by `echo` and exported as is: one key, so
        // one token.
        let file = from_file("echo", b"test-masking-key\n", None).unwrap();
        let env = MaskingKey::load(None, Some("test-masking-key".into())).unwrap();
        assert_eq!(file.bytes(), env.bytes());
        let token = |k: &MaskingKey| {
            crate::operators::mask::Masker::new(k.bytes(), Default::default()).token("+15555550955")
        };
        assert_eq!(token(&file), token(&env));
        // The key file wins over the environment.
        let k = from_file("wins", b"from-file\n", Some("from-env")).unwrap();
        assert_eq!(k.bytes(), b"from-file");
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
                    "cannot read the masking key file {} (--masking-key-file): ",
                    path.display()
                )),
                "{msg}"
            );
            assert!(!msg.contains("env-key"), "{msg}");
        }
    }
}
