//! The gateway's identity: where its key lives (the configured `key_file`, else
//! `<database without extension>.key` beside the database), the start-time check that the
//! database belongs to the loaded key and OCID, and the on-purpose key rotation behind
//! `opencharge gateway rotate-key`. The database records its identity through
//! [`Store::bind_identity`] and [`Store::rotate_identity`] (migration `0003_identity.sql`).

use std::path::PathBuf;

use opencharge_peer::identity::{key_file_beside, Identity, IdentityCheck, IdentityMismatch};
use opencharge_peer::key_file::{self, KeyFileError};
use opencharge_protocol::keys::PrivateKey;

use crate::config::GatewayConfig;
use crate::database::{open_store, Database};
use crate::store::{Store, StoreError};

impl GatewayConfig {
    /// The key file this configuration uses: `key_file`, or the SQLite database's own key
    /// `<database without extension>.key` beside it. A PostgreSQL database has no file to put
    /// the key beside, so [`GatewayConfig::validate`] requires `key_file` there; an unvalidated
    /// configuration without it gets `opencharge-gateway.key` in the working directory.
    pub fn key_path(&self) -> PathBuf {
        match (&self.key_file, self.database.sqlite_path()) {
            (Some(path), _) => path.clone(),
            (None, Some(database)) => key_file_beside(database),
            (None, None) => PathBuf::from("opencharge-gateway.key"),
        }
    }
}

/// The gateway's identity with this configuration and key.
pub fn identity_of(config: &GatewayConfig, key: &PrivateKey) -> Identity {
    Identity {
        ocid: config.ocid,
        public_key: key.public_key().to_hex(),
    }
}

/// Binds the database to the gateway's identity at start: recorded the first time, checked
/// every time after. A database created under another key or OCID is refused with
/// [`IdentityMismatch`] naming both keys, the files and what to do.
pub async fn bind_at_start(
    store: &dyn Store,
    config: &GatewayConfig,
    key: &PrivateKey,
    now: i64,
) -> Result<(), crate::server::StartError> {
    let loaded = identity_of(config, key);
    match store.bind_identity(&loaded, now).await? {
        IdentityCheck::Recorded => {
            tracing::info!(
                ocid = loaded.ocid,
                public_key = %loaded.key_prefix(),
                database = %config.database.redacted(),
                "database bound to this gateway's key"
            );
            Ok(())
        }
        IdentityCheck::Matches => Ok(()),
        IdentityCheck::Mismatch(expected) => Err(IdentityMismatch {
            role: "gateway",
            database: PathBuf::from(config.database.redacted()),
            expected,
            loaded,
            key_source: config.key_path().display().to_string(),
        }
        .into()),
    }
}

/// A finished rotation: what changed and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The gateway's OCID (unchanged).
    pub ocid: u64,
    /// The database that recorded the rotation.
    pub database: Database,
    /// The key file, now holding the new key.
    pub key_file: PathBuf,
    /// Where the old key is kept (`<key file>.<unix time>.old`, 0600).
    pub old_key_file: PathBuf,
    /// The old 128-hex public key.
    pub old_public_key: String,
    /// The new 128-hex public key.
    pub new_public_key: String,
}

/// Why a rotation did not happen (nothing was changed unless said otherwise).
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// There is no key to rotate yet.
    #[error(
        "there is no key file at {0}: nothing to rotate (the gateway's first start creates it; \
         if the key was lost, restore it from your backup)"
    )]
    NoKey(PathBuf),
    /// The key file cannot be read or written.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// The database cannot be opened or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key file is not the key the database belongs to: rotating from it would hide the
    /// mismatch.
    #[error("refusing to rotate: {0}")]
    Identity(Box<IdentityMismatch>),
}

impl From<IdentityMismatch> for RotateError {
    fn from(e: IdentityMismatch) -> Self {
        RotateError::Identity(Box::new(e))
    }
}

/// Rotates the gateway's key on purpose: checks that the key file holds the key the database
/// belongs to, writes a new key atomically (the old file kept as `<key>.<now>.old`, 0600) and
/// records the rotation in the database. The running gateway keeps its old key until it is
/// restarted; the next start publishes the new key in its metadata.
pub async fn rotate_key(config: &GatewayConfig, now: i64) -> Result<Rotation, RotateError> {
    let key_path = config.key_path();
    if !key_path.exists() {
        return Err(RotateError::NoKey(key_path));
    }
    let old_key = key_file::load_key(&key_path)?;
    let store = open_store(&config.database, 1).await?;
    let old = identity_of(config, &old_key);
    let mismatch = |expected| IdentityMismatch {
        role: "gateway",
        database: PathBuf::from(config.database.redacted()),
        expected,
        loaded: old.clone(),
        key_source: key_path.display().to_string(),
    };
    if let IdentityCheck::Mismatch(expected) = store.bind_identity(&old, now).await? {
        return Err(mismatch(expected).into());
    }
    let new_key = PrivateKey::generate();
    let new_public_key = new_key.public_key().to_hex();
    let old_key_file = key_file::replace_key(&key_path, &new_key, now)?;
    let failure: RotateError = match store.rotate_identity(&old, &new_public_key, now).await {
        Ok(IdentityCheck::Recorded | IdentityCheck::Matches) => {
            return Ok(Rotation {
                ocid: config.ocid,
                database: config.database.clone(),
                key_file: key_path,
                old_key_file,
                old_public_key: old.public_key.clone(),
                new_public_key,
            })
        }
        Ok(IdentityCheck::Mismatch(expected)) => mismatch(expected).into(),
        Err(e) => e.into(),
    };
    // Another rotation won meanwhile, or the write failed: put the old key back so the key
    // file and the database still agree.
    if let Err(e) = std::fs::rename(&old_key_file, &key_path) {
        tracing::error!(
            error = %e,
            "cannot put the old key back: copy {} to {} by hand",
            old_key_file.display(),
            key_path.display()
        );
    }
    Err(failure)
}
