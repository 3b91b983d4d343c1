//! The merchant's identity on real files: without `key_hex` its key lives beside the database
//! (created 0600, the directory 0700, the database and its `-wal`/`-shm` 0600 under umask
//! 022), a restart keeps it, and a database created under another key or OCID refuses to
//! start with a message naming the database, both keys and the key's source.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use opencharge_merchant::{Merchant, MerchantConfig, MerchantError};
use opencharge_peer::key_file::load_key;
use opencharge_protocol::keys::PrivateKey;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn refusal(result: Result<opencharge_merchant::RunningMerchant, MerchantError>) -> String {
    match result {
        Ok(_) => panic!("the merchant started"),
        Err(e @ MerchantError::Identity(_)) => e.to_string(),
        Err(other) => panic!("not an identity refusal: {other}"),
    }
}

#[tokio::test]
async fn the_key_lives_beside_the_database_and_the_database_is_bound_to_it() {
    // SAFETY: umask only swaps the process's file mode mask; 022 is the common default.
    unsafe {
        libc::umask(0o022);
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = MerchantConfig::for_tests(&data, 500, vec![200]);
    let key_path = data.join("merchant-500.key");
    assert_eq!(config.key_path(), key_path);

    let merchant = Merchant::start(config.clone()).await.unwrap();
    let key = load_key(&key_path).unwrap();
    assert_eq!(merchant.public_key_hex(), key.public_key().to_hex());
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&key_path), 0o600);
    for suffix in ["", "-wal", "-shm"] {
        let file = data.join(format!("merchant-500.sqlite3{suffix}"));
        assert!(file.exists(), "{}", file.display());
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    merchant.stop().await;

    // A restart keeps the identity.
    let again = Merchant::start(config.clone()).await.unwrap();
    assert_eq!(again.public_key_hex(), key.public_key().to_hex());
    again.stop().await;

    // Another key: refused, naming the database, the expected and the loaded key.
    let other = PrivateKey::generate();
    let mut swapped = config.clone();
    swapped.key_hex = Some(other.to_hex().to_string());
    let text = refusal(Merchant::start(swapped).await);
    for needle in [
        config.database.display().to_string(),
        key.public_key().to_hex()[..16].to_string(),
        other.public_key().to_hex()[..16].to_string(),
        "key_hex in the configuration".into(),
    ] {
        assert!(text.contains(&needle), "{needle}: {text}");
    }
    // Another OCID on the same database: refused.
    let mut renamed = config.clone();
    renamed.ocid = 501;
    let text = refusal(Merchant::start(renamed).await);
    assert!(
        text.contains("OCID 500") && text.contains("OCID 501"),
        "{text}"
    );

    // A key file holding garbage is a configuration error naming the file, left alone.
    std::fs::write(&key_path, "garbage").unwrap();
    let err = Merchant::start(config).await.err().unwrap().to_string();
    assert!(err.contains(&key_path.display().to_string()), "{err}");
    assert_eq!(std::fs::read_to_string(&key_path).unwrap(), "garbage");
}
