//! The audit signing key's files: where they come from, and `cxstream
//! audit keygen`. Errors name the file or the variable, never key bytes.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::note::{KeyError, NoteSigner, NoteVerifier};

/// The variable naming the private key's file.
pub const AUDIT_KEY_FILE_ENV: &str = "CXSTREAM_AUDIT_KEY_FILE";

/// What a start-up without a key asks for.
pub const WHAT_TO_SET: &str = "--audit-key-file PATH or CXSTREAM_AUDIT_KEY_FILE=PATH (an Ed25519 private key in PKCS#8 PEM; `cxstream audit keygen --out DIR` writes one)";

/// The files `keygen` writes.
pub const PRIVATE_FILE: &str = "audit-signing-key.pem";
pub const PUBLIC_FILE: &str = "audit-signing-key.pub.pem";

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read the audit key file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("{0} exists; keygen does not overwrite a key")]
    Exists(PathBuf),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn read(path: &Path) -> Result<String, KeyFileError> {
    fs::read_to_string(path).map_err(|source| KeyFileError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The signing key from `--audit-key-file` or else the variable's file;
/// `None` when neither names one.
pub fn load_signer(
    flag: Option<&Path>,
    env_value: Option<String>,
    name: &str,
) -> Result<Option<NoteSigner>, KeyFileError> {
    let path = match (flag, env_value.filter(|v| !v.trim().is_empty())) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(v)) => PathBuf::from(v.trim()),
        (None, None) => return Ok(None),
    };
    let pem = read(&path)?;
    Ok(Some(NoteSigner::from_pem(
        name,
        &pem,
        &path.display().to_string(),
    )?))
}

/// The public key of `path`.
pub fn load_verifier(path: &Path, name: &str) -> Result<NoteVerifier, KeyFileError> {
    let pem = read(path)?;
    Ok(NoteVerifier::from_pem(
        name,
        &pem,
        &path.display().to_string(),
    )?)
}

/// Writes a new key pair into `dir` (the private file readable by its
/// owner only); returns the two paths.
pub fn keygen(dir: &Path, name: &str) -> Result<(PathBuf, PathBuf), KeyFileError> {
    let private = dir.join(PRIVATE_FILE);
    let public = dir.join(PUBLIC_FILE);
    for p in [&private, &public] {
        if p.exists() {
            return Err(KeyFileError::Exists(p.clone()));
        }
    }
    fs::create_dir_all(dir).map_err(|source| KeyFileError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let signer = NoteSigner::generate(name);
    let (private_pem, public_pem) = signer.to_pem()?;
    let write = |path: &Path, text: &str, private: bool| -> Result<(), KeyFileError> {
        let err = |source| KeyFileError::Write {
            path: path.to_path_buf(),
            source,
        };
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = private;
        let mut f = opts.open(path).map_err(err)?;
        f.write_all(text.as_bytes()).map_err(err)
    };
    write(&private, &private_pem, true)?;
    write(&public, &public_pem, false)?;
    Ok((private, public))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::note::Checkpoint;

    #[test]
    fn keygen_writes_a_pair_that_signs_and_verifies_and_never_overwrites() {
        let dir = std::env::temp_dir().join(format!("cxstream-keygen-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let (private, public) = keygen(&dir, "k").expect("keygen");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&private).expect("meta").permissions().mode();
            assert_eq!(mode & 0o077, 0, "the private key is the owner's only");
        }
        let signer = load_signer(Some(&private), None, "k")
            .expect("load")
            .expect("some");
        let from_env = load_signer(None, Some(private.display().to_string()), "k")
            .expect("load")
            .expect("some");
        assert_eq!(signer.verifier(), from_env.verifier());
        let verifier = load_verifier(&public, "k").expect("public");
        let cp = Checkpoint {
            origin: "o".into(),
            size: 1,
            root: [1; 32],
        };
        assert_eq!(verifier.verify(&signer.sign(&cp)), Ok(cp));
        assert!(matches!(keygen(&dir, "k"), Err(KeyFileError::Exists(_))));
        assert!(load_signer(None, None, "k").expect("none").is_none());
        assert!(load_signer(None, Some("  ".into()), "k")
            .expect("none")
            .is_none());
        let missing =
            load_signer(Some(Path::new("/no/such/key.pem")), None, "k").expect_err("missing");
        assert!(
            missing.to_string().contains("/no/such/key.pem"),
            "{missing}"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
