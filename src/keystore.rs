//! Device keys: the foreign `DeviceKeyStore` trait the platform implements (Android Keystore, iOS
//! Keychain), a file-backed store for desktop, CLI and tests, and the in-memory device key.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use opencharge_protocol::keys::{sha256_hex, PrivateKey};
use zeroize::Zeroizing;

use crate::error::{Result, WalletError};

/// Alias under which the current device key is stored.
pub(crate) const CURRENT_KEY: &str = "device-key";
/// Alias of a key being rotated in, kept until the gateway confirms the rotation.
pub(crate) const NEXT_KEY: &str = "device-key-next";

/// Where the device's secret key lives. The core hands over 32 opaque secret bytes; the platform
/// wraps them (e.g. AES-GCM under an Android Keystore key, or the iOS Keychain with
/// `kSecAttrAccessibleWhenUnlockedThisDeviceOnly`) and hands them back unchanged.
///
/// Implement it in Kotlin (`DeviceKeyStore`, e.g. the Android layer's
/// `AndroidKeystoreKeyStore`) or Swift (protocol `DeviceKeyStore`, e.g. `KeychainKeyStore`) and
/// pass it to `Wallet.open`; `fileKeyStore(dir)` returns one backed by files.
///
/// Aliases are short ASCII names (`device-key`, `device-key-next`). Every method may throw;
/// the core reports any failure as `WalletException.KeyStorage` (Swift
/// `WalletError.keyStorage`).
#[uniffi::export(with_foreign)]
pub trait DeviceKeyStore: Send + Sync {
    /// The secret stored under `alias`, or `null`/`nil` if there is none.
    fn load(&self, alias: String) -> Result<Option<Vec<u8>>>;
    /// Stores `secret` under `alias`, replacing any previous value. Must be durable on return.
    fn store(&self, alias: String, secret: Vec<u8>) -> Result<()>;
    /// Deletes `alias`; deleting a missing alias is not an error.
    fn delete(&self, alias: String) -> Result<()>;
}

/// A `DeviceKeyStore` that keeps each secret in a file `<dir>/<alias>.key` (owner-only
/// permissions on Unix, written atomically). For desktop, the CLI and tests: the file is only as safe as
/// the directory, so mobile apps should pass a platform store instead.
#[uniffi::export]
pub fn file_key_store(dir: String) -> Result<Arc<dyn DeviceKeyStore>> {
    Ok(Arc::new(FileKeyStore::new(PathBuf::from(dir))?))
}

/// The file-backed key store behind [`file_key_store`].
#[derive(Debug)]
pub struct FileKeyStore {
    dir: PathBuf,
}

impl FileKeyStore {
    /// A store in `dir`, created if missing; `dir` is made owner-only (0700 on Unix).
    pub fn new(dir: PathBuf) -> Result<FileKeyStore> {
        opencharge_sqlite::create_private_dir(&dir).map_err(|e| key_store_error(&dir, e))?;
        Ok(FileKeyStore { dir })
    }

    fn path(&self, alias: &str) -> Result<PathBuf> {
        let valid = !alias.is_empty()
            && alias.len() <= 64
            && alias
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(WalletError::KeyStorage {
                reason: format!("invalid key alias {alias:?}"),
            });
        }
        Ok(self.dir.join(format!("{alias}.key")))
    }
}

fn key_store_error(path: &Path, e: std::io::Error) -> WalletError {
    WalletError::KeyStorage {
        reason: format!("{}: {e}", path.display()),
    }
}

impl DeviceKeyStore for FileKeyStore {
    fn load(&self, alias: String) -> Result<Option<Vec<u8>>> {
        let path = self.path(&alias)?;
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(key_store_error(&path, e)),
        }
    }

    fn store(&self, alias: String, secret: Vec<u8>) -> Result<()> {
        let secret = Zeroizing::new(secret);
        let path = self.path(&alias)?;
        let tmp = path.with_extension("key.tmp");
        let write = || -> std::io::Result<()> {
            let mut options = fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&tmp)?;
            file.write_all(&secret)?;
            file.sync_all()?;
            fs::rename(&tmp, &path)?;
            if let Ok(dir) = fs::File::open(&self.dir) {
                let _ = dir.sync_all();
            }
            Ok(())
        };
        write().map_err(|e| key_store_error(&path, e))
    }

    fn delete(&self, alias: String) -> Result<()> {
        let path = self.path(&alias)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(key_store_error(&path, e)),
        }
    }
}

/// A device key in memory: the secp256k1 key (zeroized on drop by k256), its 128-hex public
/// key and the device id derived from it. Its `Debug` never shows the secret.
pub(crate) struct DeviceKey {
    pub(crate) key: PrivateKey,
    pub(crate) public_key: String,
    pub(crate) device_id: String,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKey")
            .field("device_id", &self.device_id)
            .finish_non_exhaustive()
    }
}

impl DeviceKey {
    /// Wraps a private key.
    pub(crate) fn new(key: PrivateKey) -> DeviceKey {
        let public_key = key.public_key().to_hex();
        let device_id = device_id_of(&public_key);
        DeviceKey {
            key,
            public_key,
            device_id,
        }
    }

    /// A fresh random key.
    pub(crate) fn generate() -> DeviceKey {
        DeviceKey::new(PrivateKey::generate())
    }

    /// The 32 secret bytes, zeroized when dropped.
    pub(crate) fn secret(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.key.to_bytes().to_vec())
    }

    /// Signs `message` (SHA-256, low-S) and returns the 130-hex signature.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<String> {
        Ok(self.key.sign_message(message)?.to_hex())
    }
}

/// The device id of a 128-hex public key: `dev_` + the first 32 hex of SHA-256 of its text.
pub fn device_id_of(public_key_hex: &str) -> String {
    let digest = sha256_hex(public_key_hex.as_bytes());
    format!("dev_{}", &digest[..32])
}

/// Calls the store, reporting any failure (including an unexpected foreign exception) as
/// [`WalletError::KeyStorage`].
fn store_call<T>(result: Result<T>) -> Result<T> {
    result.map_err(|e| match e {
        WalletError::KeyStorage { .. } => e,
        other => WalletError::KeyStorage {
            reason: other.to_string(),
        },
    })
}

/// Loads the key under `alias`, if any. The secret bytes are zeroized after parsing.
pub(crate) fn load_key(store: &dyn DeviceKeyStore, alias: &str) -> Result<Option<DeviceKey>> {
    let Some(bytes) = store_call(store.load(alias.to_string()))? else {
        return Ok(None);
    };
    let bytes = Zeroizing::new(bytes);
    let key = PrivateKey::from_bytes(&bytes).map_err(|e| WalletError::KeyStorage {
        reason: format!("the key store returned an unusable key for {alias:?}: {e}"),
    })?;
    Ok(Some(DeviceKey::new(key)))
}

/// Stores `key` under `alias`.
pub(crate) fn save_key(store: &dyn DeviceKeyStore, alias: &str, key: &DeviceKey) -> Result<()> {
    let secret = key.secret();
    store_call(store.store(alias.to_string(), secret.to_vec()))
}

/// Deletes `alias`.
pub(crate) fn delete_key(store: &dyn DeviceKeyStore, alias: &str) -> Result<()> {
    store_call(store.delete(alias.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_id_matches_the_app_api_vector() {
        let key = PrivateKey::from_hex(&"11".repeat(32)).unwrap();
        let device = DeviceKey::new(key);
        assert_eq!(device.device_id, "dev_762b3e7f5a4fb0169de41c7c9fddc314");
        assert!(!format!("{device:?}").contains(&"11".repeat(8)));
    }

    #[test]
    fn file_store_round_trips_and_rejects_bad_aliases() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileKeyStore::new(dir.path().join("keys")).unwrap();
        assert_eq!(store.load("device-key".into()).unwrap(), None);
        let device = DeviceKey::generate();
        save_key(&store, CURRENT_KEY, &device).unwrap();
        let loaded = load_key(&store, CURRENT_KEY).unwrap().unwrap();
        assert_eq!(loaded.public_key, device.public_key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join("keys/device-key.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "key file must be owner-only");
        }
        store.delete("device-key".into()).unwrap();
        store.delete("device-key".into()).unwrap();
        assert_eq!(store.load("device-key".into()).unwrap(), None);
        for alias in ["", "../x", "a/b", &"x".repeat(65)] {
            assert!(matches!(
                store.load(alias.to_string()),
                Err(WalletError::KeyStorage { .. })
            ));
        }
    }

    #[test]
    fn a_corrupt_stored_key_is_a_key_store_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileKeyStore::new(dir.path().to_path_buf()).unwrap();
        store.store(CURRENT_KEY.into(), vec![0u8; 32]).unwrap();
        assert!(matches!(
            load_key(&store, CURRENT_KEY),
            Err(WalletError::KeyStorage { .. })
        ));
        store.store(CURRENT_KEY.into(), vec![1u8; 5]).unwrap();
        assert!(matches!(
            load_key(&store, CURRENT_KEY),
            Err(WalletError::KeyStorage { .. })
        ));
    }
}
