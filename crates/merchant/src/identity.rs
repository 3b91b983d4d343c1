//! The merchant's identity: its key (`key_hex` in the configuration, else the key file
//! `<database without extension>.key` beside the database, created atomically 0600 on first
//! start) and the start-time check that the database belongs to that key and OCID (table
//! `identity_keys`, migration `0002_identity.sql`). A database created under another key or
//! OCID refuses to start, as the gateway's does.

use std::path::PathBuf;

use opencharge_peer::identity::{key_file_beside, Identity, IdentityCheck, IdentityMismatch};
use opencharge_protocol::keys::PrivateKey;

use crate::config::MerchantConfig;
use crate::error::MerchantError;
use crate::store::Store;

impl MerchantConfig {
    /// The key file used when `key_hex` is not set: `<database without extension>.key` beside
    /// the database (`merchant.sqlite3` -> `merchant.key`).
    pub fn key_path(&self) -> PathBuf {
        key_file_beside(&self.database)
    }
}

/// The merchant's key and where it came from (for messages): `key_hex`, or the key file
/// beside the database, created with a fresh key if missing.
pub(crate) fn load_key(config: &MerchantConfig) -> Result<(PrivateKey, String), MerchantError> {
    match &config.key_hex {
        Some(hex) => Ok((
            PrivateKey::from_hex(hex)
                .map_err(|e| MerchantError::Config(format!("key_hex: {e}")))?,
            "key_hex in the configuration".to_string(),
        )),
        None => {
            let path = config.key_path();
            let key = opencharge_peer::key_file::load_or_create_key(&path)
                .map_err(|e| MerchantError::Config(e.to_string()))?;
            Ok((key, path.display().to_string()))
        }
    }
}

/// Records the merchant's identity in a new database, or checks it against the recorded one.
pub(crate) fn bind_at_start(
    store: &Store,
    config: &MerchantConfig,
    key: &PrivateKey,
    key_source: String,
    now: i64,
) -> Result<(), MerchantError> {
    let loaded = Identity {
        ocid: config.ocid,
        public_key: key.public_key().to_hex(),
    };
    match bind(store, &loaded, now)? {
        IdentityCheck::Recorded | IdentityCheck::Matches => Ok(()),
        IdentityCheck::Mismatch(expected) => Err(IdentityMismatch {
            role: "merchant",
            database: config.database.clone(),
            expected,
            loaded,
            key_source,
        }
        .into()),
    }
}

/// One transaction: records `identity` if the database has none, else compares it with the
/// newest recorded one.
fn bind(store: &Store, identity: &Identity, now: i64) -> Result<IdentityCheck, MerchantError> {
    store.with(|conn| {
        Ok(opencharge_peer::identity::bind_identity(
            conn, identity, now,
        )?)
    })
}
