//! The gateway's identity on real files: the key lives beside the database when no key file
//! is configured, key and database files are private, a database created under another key
//! or OCID refuses to start, and `opencharge-gateway rotate-key` rotates on purpose (the next
//! start publishes the new key, the old key file is then refused).

use std::path::{Path, PathBuf};
use std::process::Command;

use opencharge_gateway::server::StartError;
use opencharge_gateway::{Gateway, GatewayConfig};
use opencharge_peer::key_file::load_key;
use serde_json::Value;

/// A loopback gateway configuration with its database in `dir/data` (not created yet) and no
/// key file configured.
fn config(dir: &Path) -> GatewayConfig {
    GatewayConfig {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        // A free port: parallel tests must not share the default metrics port 9700.
        metrics_listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
        database: dir.join("data").join("gw.sqlite3").into(),
        key_file: None,
        dev_mode: true,
        allow_loopback_http: true,
        ..GatewayConfig::default()
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The `publicKey` the gateway's metadata publishes.
async fn published_key(endpoint: &str) -> String {
    let metadata: Value = reqwest::get(format!("{endpoint}/metadata.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    metadata["config"]["publicKey"]
        .as_str()
        .unwrap()
        .to_string()
}

fn start_error(result: Result<opencharge_gateway::RunningGateway, StartError>) -> String {
    match result {
        Ok(_) => panic!("the gateway started"),
        Err(e @ StartError::Identity(_)) => e.to_string(),
        Err(other) => panic!("not an identity refusal: {other}"),
    }
}

#[tokio::test]
async fn the_key_lives_beside_the_database_and_every_file_is_private() {
    #[cfg(unix)]
    // SAFETY: umask only swaps the process's file mode mask; 022 is the common default.
    unsafe {
        libc::umask(0o022);
    }
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let key_path = dir.path().join("data").join("gw.key");
    assert_eq!(config.key_path(), key_path);

    let gateway = Gateway::start(config.clone()).await.unwrap();
    let key = load_key(&key_path).unwrap();
    assert_eq!(gateway.public_key_hex(), key.public_key().to_hex());
    assert_eq!(
        published_key(gateway.endpoint()).await,
        key.public_key().to_hex()
    );
    #[cfg(unix)]
    {
        assert_eq!(mode(&dir.path().join("data")), 0o700);
        assert_eq!(mode(&key_path), 0o600);
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", config.database));
            assert!(file.exists(), "{}", file.display());
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
    }
    gateway.stop().await;

    // A restart on the same database keeps the same identity.
    let again = Gateway::start(config).await.unwrap();
    assert_eq!(again.public_key_hex(), key.public_key().to_hex());
    again.stop().await;
}

#[tokio::test]
async fn a_database_created_under_another_key_or_ocid_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let first = Gateway::start(config.clone()).await.unwrap();
    let expected = first.public_key_hex().to_string();
    first.stop().await;

    // Another key file: refused, naming the database, the key it expects and the file loaded.
    let other_key = dir.path().join("other.key");
    let mut other = config.clone();
    other.key_file = Some(other_key.clone());
    let text = start_error(Gateway::start(other).await);
    let loaded = load_key(&other_key).unwrap().public_key().to_hex();
    for needle in [
        config.database.to_string(),
        expected[..16].to_string(),
        loaded[..16].to_string(),
        other_key.display().to_string(),
        "OCID 200".into(),
        "rotate-key".into(),
    ] {
        assert!(text.contains(&needle), "{needle}: {text}");
    }

    // Another OCID with the right key: refused too.
    let mut renamed = config.clone();
    renamed.ocid = 201;
    let text = start_error(Gateway::start(renamed).await);
    assert!(
        text.contains("OCID 200") && text.contains("OCID 201"),
        "{text}"
    );

    // A key file that holds no key: an error naming the file, and the file left alone.
    std::fs::write(&other_key, "garbage").unwrap();
    let mut garbage = config.clone();
    garbage.key_file = Some(other_key.clone());
    match Gateway::start(garbage).await {
        Err(StartError::Key(e)) => {
            assert!(e.to_string().contains(&other_key.display().to_string()))
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("started with a garbage key file"),
    }
    assert_eq!(std::fs::read_to_string(&other_key).unwrap(), "garbage");

    // The right key still starts.
    let back = Gateway::start(config).await.unwrap();
    assert_eq!(back.public_key_hex(), expected);
    back.stop().await;
}

/// Runs `opencharge-gateway rotate-key --database DB [--key-file K]`.
fn rotate(database: &Path, key_file: Option<&Path>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_opencharge-gateway"));
    command.arg("rotate-key").arg("--database").arg(database);
    if let Some(key) = key_file {
        command.arg("--key-file").arg(key);
    }
    command.output().unwrap()
}

#[tokio::test]
async fn rotate_key_changes_the_published_key_and_retires_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let key_path = config.key_path();
    let gateway = Gateway::start(config.clone()).await.unwrap();
    let old_public = gateway.public_key_hex().to_string();
    gateway.stop().await;

    // Rotating from a key that is not the database's is refused and changes nothing.
    let stranger = dir.path().join("stranger.key");
    opencharge_peer::key_file::load_or_create_key(&stranger).unwrap();
    let refused = rotate(config.database.sqlite_path().unwrap(), Some(&stranger));
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    assert!(stderr.contains(&old_public[..16]), "{stderr}");
    assert_eq!(
        load_key(&key_path).unwrap().public_key().to_hex(),
        old_public
    );

    let output = rotate(config.database.sqlite_path().unwrap(), None);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for needle in [
        "old public key",
        "new public key",
        "restart",
        "metadata",
        "Proofs",
    ] {
        assert!(stdout.contains(needle), "{needle}: {stdout}");
    }
    let new_public = load_key(&key_path).unwrap().public_key().to_hex();
    assert_ne!(new_public, old_public);
    // The old key is kept beside it, private.
    let old_files: Vec<PathBuf> = std::fs::read_dir(key_path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".old"))
        .collect();
    assert_eq!(old_files.len(), 1, "{old_files:?}");
    let old_file = &old_files[0];
    assert_eq!(
        load_key(old_file).unwrap().public_key().to_hex(),
        old_public
    );
    #[cfg(unix)]
    assert_eq!(mode(old_file), 0o600);

    // The next start publishes the new key.
    let rotated = Gateway::start(config.clone()).await.unwrap();
    assert_eq!(rotated.public_key_hex(), new_public);
    assert_eq!(published_key(rotated.endpoint()).await, new_public);
    rotated.stop().await;

    // The old key file is now refused.
    let mut with_old = config.clone();
    with_old.key_file = Some(old_file.clone());
    let text = start_error(Gateway::start(with_old).await);
    assert!(text.contains(&new_public[..16]), "{text}");
}
