//! Attacks and failures at the edges of the core: a tampered prompt, key-store callbacks that
//! fail or panic, unregistered or wiped wallets, bad enrollment codes, key rotation and the
//! log sink (which never sees secrets).

use std::sync::{Arc, Mutex};

use opencharge_testkit::{Heard, Network, Recorder};
use opencharge_wallet::{
    file_key_store, set_log_sink, DeviceKeyStore, GatewayErrorCode, LogLevel, LogSink, Wallet,
    WalletConfig, WalletError,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_tampered_at_the_gateway_is_rejected_by_the_core() {
    let env = Network::start().await.unwrap();
    let (wallet, _) = env.wallet("alice", Some("50.00")).await.unwrap();
    let session = wallet.create_payment_session().await.unwrap();
    let order = env.order().unwrap();
    env.merchant()
        .post_to_wallet_session(&session.qr_payload, &order.order.id)
        .await
        .unwrap();

    // Someone with access to the gateway's database lowers... no: raises the price.
    let db = rusqlite::Connection::open(env.gateway_db()).unwrap();
    let changed = db
        .execute(
            "UPDATE sessions SET order_json = replace(order_json, '\"price\":\"2.50\"', '\"price\":\"25.00\"') WHERE id = ?1",
            [&session.session_id],
        )
        .unwrap();
    assert_eq!(changed, 1);
    db.execute("UPDATE events SET payload_json = replace(payload_json, '\"price\":\"2.50\"', '\"price\":\"25.00\"')", [])
        .unwrap();

    assert!(wallet.fetch_prompts().await.unwrap().is_empty());
    assert!(wallet.pending_prompts().await.unwrap().is_empty());
    let (listener, mut inbox) = Recorder::new();
    let _stream = wallet.start_events(listener).unwrap();
    let (id, reason) = inbox
        .wait_for("rejection", |h| match h {
            Heard::Rejected(id, reason) => Some((id.clone(), reason.clone())),
            _ => None,
        })
        .await;
    assert_eq!(id, session.session_id);
    assert!(reason.contains("signature"), "{reason}");
    let err = wallet
        .confirm(session.session_id.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, WalletError::Crypto { .. }), "{err:?}");
    assert_eq!(env.usd(&wallet).await.unwrap(), "50.00");
    assert!(!inbox.drain().iter().any(|h| matches!(h, Heard::Prompt(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_impostor_merchant_key_is_rejected() {
    let env = Network::start().await.unwrap();
    // The wallet's directory maps the merchant's OCID to metadata signed by another key.
    let impostor_dir = env.data_dir().join("impostor");
    std::fs::create_dir_all(&impostor_dir).unwrap();
    let impostor =
        opencharge_merchant::Merchant::start(opencharge_merchant::MerchantConfig::for_tests(
            &impostor_dir,
            opencharge_testkit::MERCHANT_OCID,
            vec![opencharge_testkit::GATEWAY_OCID],
        ))
        .await
        .unwrap();
    let mut config = env.wallet_config("bob");
    config.directory[0].metadata_url = impostor.metadata_url();
    let wallet = Wallet::open(config, None).await.unwrap();
    let account = env.new_account("bob").await.unwrap();
    let code = account.enrollment_code;
    let account = account.account_id;
    wallet.register_device(code).await.unwrap();
    env.fund(&account, "20.00").await.unwrap();
    let order = env.order().unwrap();
    let err = wallet
        .scan(env.merchant().order_qr(&order.order.id).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, WalletError::Crypto { .. }), "{err:?}");
    assert!(wallet.pending_prompts().await.unwrap().is_empty());
}

/// A key store whose operations can be made to fail or panic.
struct FlakyStore {
    inner: Arc<dyn DeviceKeyStore>,
    fail_store: bool,
    panic_load: bool,
}

impl DeviceKeyStore for FlakyStore {
    fn load(&self, alias: String) -> Result<Option<Vec<u8>>, WalletError> {
        if self.panic_load {
            panic!("key store panics on purpose");
        }
        self.inner.load(alias)
    }

    fn store(&self, alias: String, secret: Vec<u8>) -> Result<(), WalletError> {
        if self.fail_store {
            return Err(WalletError::Internal {
                reason: "keychain unavailable".into(),
            });
        }
        self.inner.store(alias, secret)
    }

    fn delete(&self, alias: String) -> Result<(), WalletError> {
        self.inner.delete(alias)
    }
}

#[tokio::test]
async fn key_store_failures_are_typed_and_panics_never_escape() {
    let dir = tempfile::tempdir().unwrap();
    let config = WalletConfig::new(
        "https://api.wallet.example/opencharge",
        dir.path().display().to_string(),
    );
    let files = file_key_store(dir.path().join("keys").display().to_string()).unwrap();

    let failing = Arc::new(FlakyStore {
        inner: files.clone(),
        fail_store: true,
        panic_load: false,
    });
    match Wallet::open(config.clone(), Some(failing)).await {
        Err(WalletError::KeyStorage { reason: message }) => {
            assert!(message.contains("keychain unavailable"), "{message}")
        }
        Err(other) => panic!("expected a key store error, got {other:?}"),
        Ok(_) => panic!("expected a key store error"),
    }

    let panicking = Arc::new(FlakyStore {
        inner: files.clone(),
        fail_store: false,
        panic_load: true,
    });
    match Wallet::open(config.clone(), Some(panicking)).await {
        Err(WalletError::Internal { reason }) => assert!(reason.contains("panic"), "{reason}"),
        Err(other) => panic!("expected an internal error, got {other:?}"),
        Ok(_) => panic!("expected an internal error"),
    }

    // A store that hands back garbage is a key store error, and nothing is overwritten.
    files.store("device-key".into(), vec![0u8; 32]).unwrap();
    assert!(matches!(
        Wallet::open(config.clone(), Some(files.clone())).await,
        Err(WalletError::KeyStorage { .. })
    ));
    assert_eq!(
        files.load("device-key".into()).unwrap(),
        Some(vec![0u8; 32])
    );

    // A good store works, and the key survives reopening.
    files.delete("device-key".into()).unwrap();
    let wallet = Wallet::open(config.clone(), Some(files.clone()))
        .await
        .unwrap();
    let public_key = wallet.device_public_key().unwrap();
    assert_eq!(public_key.len(), 128);
    drop(wallet);
    assert_eq!(
        Wallet::open(config, Some(files))
            .await
            .unwrap()
            .device_public_key()
            .unwrap(),
        public_key
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregistered_and_badly_enrolled_wallets_get_typed_errors() {
    let env = Network::start().await.unwrap();
    let wallet = Wallet::open(env.wallet_config("new"), None).await.unwrap();
    assert_eq!(wallet.registration().await.unwrap(), None);
    assert!(matches!(
        wallet.balance().await,
        Err(WalletError::InvalidInput { .. })
    ));
    assert!(matches!(
        wallet.start_events(Recorder::new().0),
        Err(WalletError::InvalidInput { .. })
    ));
    let err = wallet
        .register_device("b9da7236551b2cd6391f2961d1017374".into())
        .await
        .unwrap_err();
    assert_eq!(
        err.gateway_code(),
        Some(GatewayErrorCode::Unknown),
        "{err:?}"
    );
    assert_eq!(
        err.gateway_raw_code(),
        Some("ENROLLMENT_INVALID"),
        "{err:?}"
    );
    assert!(matches!(
        wallet.register_device("bad code!".into()).await,
        Err(WalletError::InvalidInput { .. })
    ));
    let code = env.new_account("new").await.unwrap().enrollment_code;
    let registration = wallet.register_device(code.clone()).await.unwrap();
    assert_eq!(registration.device_id, wallet.device_id().unwrap());
    // Idempotent for the same code; a second device cannot reuse it.
    assert_eq!(
        wallet.register_device(code.clone()).await.unwrap(),
        registration
    );
    let other = Wallet::open(env.wallet_config("other"), None)
        .await
        .unwrap();
    assert_eq!(
        other
            .register_device(code)
            .await
            .unwrap_err()
            .gateway_raw_code()
            .map(str::to_string),
        Some("ENROLLMENT_INVALID".to_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_replaces_the_key_and_keeps_the_account() {
    let env = Network::start().await.unwrap();
    let (wallet, account) = env.wallet("rot", Some("10.00")).await.unwrap();
    let old_id = wallet.device_id().unwrap();
    let old_key = wallet.export_device_key().await.unwrap();
    let registration = wallet.rotate_device_key().await.unwrap();
    assert_ne!(registration.device_id, old_id);
    assert_eq!(registration.account_id, account);
    assert_eq!(wallet.device_id().unwrap(), registration.device_id);
    assert_ne!(wallet.export_device_key().await.unwrap(), old_key);
    assert_eq!(env.usd(&wallet).await.unwrap(), "10.00");
    // The new key is what a reopened wallet loads.
    drop(wallet);
    let reopened = Wallet::open(env.wallet_config("rot"), None).await.unwrap();
    assert_eq!(reopened.registration().await.unwrap(), Some(registration));
    let (_, prompt) = env.scan_order(&reopened).await.unwrap();
    reopened.confirm(prompt.prompt_id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wipe_deletes_keys_and_data() {
    let env = Network::start().await.unwrap();
    let (wallet, _) = env.wallet("wipe", Some("10.00")).await.unwrap();
    let old_id = wallet.device_id().unwrap();
    let data_dir = std::path::PathBuf::from(env.wallet_config("wipe").data_dir);
    assert!(data_dir.join("wallet.sqlite3").exists());
    assert!(data_dir.join("keys/device-key.key").exists());
    wallet.wipe().await.unwrap();
    assert!(!data_dir.join("wallet.sqlite3").exists());
    assert!(!data_dir.join("keys/device-key.key").exists());
    assert!(matches!(wallet.device_id(), Err(WalletError::Cancelled)));
    assert!(matches!(
        wallet.balance().await,
        Err(WalletError::Cancelled)
    ));
    let fresh = Wallet::open(env.wallet_config("wipe"), None).await.unwrap();
    assert_ne!(fresh.device_id().unwrap(), old_id);
    assert_eq!(fresh.registration().await.unwrap(), None);
}

/// A log sink that keeps every record.
struct Collect(Mutex<Vec<(LogLevel, String, String)>>);

impl LogSink for Collect {
    fn log(&self, level: LogLevel, target: String, message: String) -> Result<(), WalletError> {
        self.0.lock().unwrap().push((level, target, message));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_sink_gets_records_but_never_secrets() {
    let sink = Arc::new(Collect(Mutex::new(Vec::new())));
    set_log_sink(sink.clone(), LogLevel::Debug).unwrap();
    let env = Network::start().await.unwrap();
    let (wallet, _) = env.wallet("logs", Some("10.00")).await.unwrap();
    let secret = wallet.export_device_key().await.unwrap();
    wallet.rotate_device_key().await.unwrap();
    let new_secret = wallet.export_device_key().await.unwrap();
    let records = sink.0.lock().unwrap().clone();
    assert!(
        records
            .iter()
            .any(|(level, target, message)| *level == LogLevel::Info
                && target.starts_with("opencharge_wallet")
                && message.contains("device registered")),
        "{records:?}"
    );
    for (_, _, message) in &records {
        assert!(
            !message.contains(&secret) && !message.contains(&new_secret),
            "secret logged: {message}"
        );
    }
}
