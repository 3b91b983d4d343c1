//! A peer's signing key in a file: read it, or create it once with a fresh key, atomically.
//! A new key is written to a temporary file (mode 0600) in the key's directory, fsynced,
//! renamed into place without overwriting (a key another process created meanwhile wins and
//! is used), and the directory is fsynced; a missing directory is created 0700. The gateway,
//! the merchant and the test kit keep their keys this way.

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
    #[error(
        "{path} does not hold a valid key: {reason} (it must hold 64 hex digits; restore the \
         right key file from your backup, never replace it with a new key unless you mean to \
         change this peer's identity)"
    )]
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
    /// The file to write already exists (a key is never overwritten).
    #[error("the key file {path} already exists; it is never overwritten")]
    Exists {
        /// The key file.
        path: PathBuf,
    },
}

/// Reads the 64-hex key in `path` (surrounding whitespace ignored).
pub fn load_key(path: &Path) -> Result<PrivateKey, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    PrivateKey::from_hex(text.trim()).map_err(|e| KeyFileError::Invalid {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Reads the key in `path` or, when the file does not exist, generates a key and writes it
/// there atomically ([`write_new_key`]). When another process creates the file meanwhile,
/// its key is read and returned: every caller ends up with the same key.
pub fn load_or_create_key(path: &Path) -> Result<PrivateKey, KeyFileError> {
    match load_key(path) {
        Err(KeyFileError::Read { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            let key = PrivateKey::generate();
            match write_new_key(path, &key) {
                Ok(()) => Ok(key),
                Err(KeyFileError::Exists { .. }) => load_key(path),
                Err(e) => Err(e),
            }
        }
        other => other,
    }
}

/// Writes `key` to `path`, which must not exist ([`KeyFileError::Exists`] otherwise):
/// temporary file (0600) in the same directory, fsync, rename without overwriting, fsync of
/// the directory. A missing directory is created 0700.
pub fn write_new_key(path: &Path, key: &PrivateKey) -> Result<(), KeyFileError> {
    let write_error = |source| KeyFileError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => parent.to_path_buf(),
        None => PathBuf::from("."),
    };
    opencharge_sqlite::create_private_dirs(&dir).map_err(write_error)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".key-")
        .tempfile_in(&dir)
        .map_err(write_error)?;
    set_private(temp.path(), 0o600).map_err(write_error)?;
    temp.write_all(key.to_hex().as_bytes())
        .map_err(write_error)?;
    temp.as_file().sync_all().map_err(write_error)?;
    match temp.persist_noclobber(path) {
        Ok(_) => {}
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(KeyFileError::Exists {
                path: path.to_path_buf(),
            })
        }
        Err(e) => return Err(write_error(e.error)),
    }
    sync_dir(&dir).map_err(write_error)
}

/// Rotation: replaces the key in `path` by `new_key`, keeping the old file as
/// `<path>.<now>.old` (0600, never overwriting one). The old key stays readable at every
/// moment: it is hard-linked to the `.old` name first, then the new key is written to a
/// temporary file, fsynced and renamed over `path`, and the directory fsynced. Returns the
/// `.old` path.
pub fn replace_key(path: &Path, new_key: &PrivateKey, now: i64) -> Result<PathBuf, KeyFileError> {
    let write_error = |source| KeyFileError::Write {
        path: path.to_path_buf(),
        source,
    };
    load_key(path)?;
    let mut old_name = path.as_os_str().to_owned();
    old_name.push(format!(".{now}.old"));
    let old = PathBuf::from(old_name);
    match std::fs::hard_link(path, &old) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(KeyFileError::Exists { path: old })
        }
        Err(e) => return Err(write_error(e)),
    }
    set_private(&old, 0o600).map_err(write_error)?;
    let dir = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => parent.to_path_buf(),
        None => PathBuf::from("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".key-")
        .tempfile_in(&dir)
        .map_err(write_error)?;
    set_private(temp.path(), 0o600).map_err(write_error)?;
    temp.write_all(new_key.to_hex().as_bytes())
        .map_err(write_error)?;
    temp.as_file().sync_all().map_err(write_error)?;
    temp.persist(path).map_err(|e| write_error(e.error))?;
    sync_dir(&dir).map_err(write_error)?;
    Ok(old)
}

/// Sets the Unix mode of `path` (nothing elsewhere).
fn set_private(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

/// Makes a rename in `dir` durable (Unix: fsync of the directory; elsewhere nothing).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn keys_are_created_once_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("k");
        let first = load_or_create_key(&path).unwrap();
        assert_eq!(
            *load_or_create_key(&path).unwrap().to_hex(),
            *first.to_hex()
        );
        // Only the key is left in the directory: no temporary file.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("keys"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("k")]);
        #[cfg(unix)]
        {
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(&dir.path().join("keys")), 0o700);
        }
    }

    /// The mode is 0600 (and a created directory 0700) even under a permissive umask.
    #[cfg(unix)]
    #[test]
    fn modes_do_not_depend_on_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("open").join("k");
        // SAFETY: umask only swaps the process's file mode mask; it cannot fail.
        let old = unsafe { libc::umask(0) };
        let result = load_or_create_key(&path);
        unsafe { libc::umask(old) };
        result.unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("open")), 0o700);
    }

    #[test]
    fn racing_callers_all_get_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("race").join("k");
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    load_or_create_key(&path).unwrap().to_hex().to_string()
                })
            })
            .collect();
        let keys: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let on_disk = load_key(&path).unwrap().to_hex().to_string();
        assert!(keys.iter().all(|k| *k == on_disk), "{keys:?} vs {on_disk}");
    }

    #[test]
    fn an_existing_key_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let first = load_or_create_key(&path).unwrap();
        let err = write_new_key(&path, &PrivateKey::generate()).unwrap_err();
        assert!(matches!(err, KeyFileError::Exists { .. }), "{err:?}");
        assert!(err.to_string().contains(&path.display().to_string()));
        assert_eq!(*load_key(&path).unwrap().to_hex(), *first.to_hex());
    }

    #[test]
    fn replacing_keeps_the_old_key_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let first = load_or_create_key(&path).unwrap();
        let second = PrivateKey::generate();
        let old = replace_key(&path, &second, 1_700_000_000).unwrap();
        assert_eq!(old, dir.path().join("k.1700000000.old"));
        assert_eq!(*load_key(&old).unwrap().to_hex(), *first.to_hex());
        assert_eq!(*load_key(&path).unwrap().to_hex(), *second.to_hex());
        #[cfg(unix)]
        {
            assert_eq!(mode(&old), 0o600);
            assert_eq!(mode(&path), 0o600);
        }
        // The same second again would overwrite that .old file: refused, nothing changed.
        let err = replace_key(&path, &PrivateKey::generate(), 1_700_000_000).unwrap_err();
        assert!(matches!(err, KeyFileError::Exists { .. }), "{err:?}");
        assert_eq!(*load_key(&path).unwrap().to_hex(), *second.to_hex());
        // A missing key file is not rotated.
        let err = replace_key(&dir.path().join("none"), &second, 1).unwrap_err();
        assert!(matches!(err, KeyFileError::Read { .. }), "{err:?}");
    }

    #[test]
    fn a_file_without_a_key_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "not hex").unwrap();
        let err = load_or_create_key(&path).unwrap_err();
        assert!(matches!(err, KeyFileError::Invalid { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("does not hold a valid key"), "{text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
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
