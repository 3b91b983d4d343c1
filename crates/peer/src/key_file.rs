//! A peer's signing key in a file: read it, or create it once with a fresh key (mode 0600 on
//! Unix, never overwriting a file that appeared meanwhile). The gateway, the merchant command
//! and the test kit keep their keys this way.

use std::io::Write;
use std::path::{Path, PathBuf};

use opencharge_protocol::keys::PrivateKey;

/// Why a key file could not be used; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file exists but cannot be read.
    #[error("cannot read the key file {path}: {source}")]
    Read {
        /// The key file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// The file does not hold a 64-hex secp256k1 private key.
    #[error("{path} does not hold a valid key: {reason}")]
    Invalid {
        /// The key file.
        path: PathBuf,
        /// What is wrong with its contents.
        reason: String,
    },
    /// A new key could not be written (or its directory created).
    #[error("cannot write the key file {path}: {source}")]
    Write {
        /// The key file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
}

/// Reads the 64-hex key in `path` (surrounding whitespace ignored) or, when the file does not
/// exist, generates a key and writes it there, creating missing parent directories.
pub fn load_or_create_key(path: &Path) -> Result<PrivateKey, KeyFileError> {
    match std::fs::read_to_string(path) {
        Ok(text) => PrivateKey::from_hex(text.trim()).map_err(|e| KeyFileError::Invalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = PrivateKey::generate();
            let write_error = |source| KeyFileError::Write {
                path: path.to_path_buf(),
                source,
            };
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(write_error)?;
            }
            write_new_private_file(path, key.to_hex().as_bytes()).map_err(write_error)?;
            Ok(key)
        }
        Err(source) => Err(KeyFileError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Creates `path` (failing if it exists) readable by its owner only, and writes `bytes`.
fn write_new_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_once_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("k");
        let first = load_or_create_key(&path).unwrap();
        assert_eq!(
            *load_or_create_key(&path).unwrap().to_hex(),
            *first.to_hex()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_file_without_a_key_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "not hex").unwrap();
        let err = load_or_create_key(&path).unwrap_err();
        assert!(matches!(err, KeyFileError::Invalid { .. }), "{err:?}");
        assert!(
            err.to_string().contains("does not hold a valid key"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not hex");
    }

    #[test]
    fn an_unreadable_path_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: reading it fails with something other than
        // NotFound, so nothing is generated.
        let err = load_or_create_key(dir.path()).unwrap_err();
        assert!(matches!(err, KeyFileError::Read { .. }), "{err:?}");
        assert!(err.to_string().contains(&dir.path().display().to_string()));
    }
}
