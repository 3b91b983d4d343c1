//! The wallet core over real TLS on loopback: the gateway behind a TLS front with a
//! certificate from a test CA (rcgen). A whole payment goes through it with the CA in
//! `trustedCertificates`; an untrusted CA, a certificate for another name, an expired
//! certificate and a wrong pin are each refused with `WalletError::Tls` naming the cause;
//! malformed certificates and pins are refused at `Wallet.open`.

use opencharge_testkit::{Network, Recorder, TestCa, TlsFront, GATEWAY_OCID, WAIT};
use opencharge_wallet::{PaymentStatus, TlsFailure, Wallet, WalletConfig, WalletError};

/// A TLS network: the gateway published at `https://localhost:<port>`, one merchant.
async fn network() -> Network {
    Network::builder().tls().start().await.unwrap()
}

/// Opens a wallet with `config` and tries to register it with a fresh enrollment code: the
/// first call that reaches the gateway.
async fn register(env: &Network, name: &str, config: WalletConfig) -> Result<(), WalletError> {
    let account = env.new_account(name).await.unwrap();
    let wallet = Wallet::open(config, None).await.unwrap();
    wallet
        .register_device(account.enrollment_code)
        .await
        .map(|_| ())
}

/// `env`'s wallet configuration for `name`, pointed at a front on `port` instead.
fn config_for_front(env: &Network, name: &str, front: &TlsFront) -> WalletConfig {
    let mut config = env.wallet_config(name);
    config.gateway_url = format!("{}/opencharge", front.base_url());
    config
}

fn assert_tls(result: Result<(), WalletError>, expected: TlsFailure) {
    match result {
        Err(WalletError::Tls {
            failure,
            host,
            reason,
        }) => {
            assert_eq!(failure, expected, "{reason}");
            assert_eq!(host, "localhost");
        }
        other => panic!("expected a TLS refusal {expected:?}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pays_a_merchant_order_through_the_tls_gateway() {
    let env = network().await;
    assert!(
        env.endpoint().starts_with("https://localhost:"),
        "{}",
        env.endpoint()
    );
    let (wallet, _) = env.wallet("alice", Some("20.00")).await.unwrap();
    let (listener, mut inbox) = Recorder::new();
    let stream = wallet.start_events(listener).unwrap();
    inbox.connected().await;

    let (order, prompt) = env.scan_order(&wallet).await.unwrap();
    let receipt = wallet.confirm(prompt.prompt_id.clone()).await.unwrap();
    assert_eq!(receipt.status, PaymentStatus::Paid);
    assert!(
        receipt.proof_verified,
        "the gateway's metadata came over TLS"
    );
    assert_eq!(receipt.proof_issuer, Some(GATEWAY_OCID as i64));
    let paid = env
        .merchant()
        .wait_paid(&order.order.id, WAIT)
        .await
        .unwrap();
    assert_eq!(paid.txid, receipt.txid);
    assert_eq!(env.usd(&wallet).await.unwrap(), "11.75");
    stream.stop();
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_an_untrusted_ca_is_refused() {
    let env = network().await;
    // Only the platform's roots.
    let mut config = env.wallet_config("bob");
    config.trusted_certificates.clear();
    assert_tls(
        register(&env, "bob", config).await,
        TlsFailure::UntrustedCertificate,
    );
    // Another private CA trusted instead of the gateway's.
    let mut config = env.wallet_config("carol");
    config.trusted_certificates = vec![TestCa::new("Another CA").unwrap().pem()];
    assert_tls(
        register(&env, "carol", config).await,
        TlsFailure::UntrustedCertificate,
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_is_refused() {
    let env = network().await;
    let ca = &env.tls().unwrap().ca;
    let front = TlsFront::start(&ca.issue(&["gateway.example"]).unwrap(), env.gateway_addr())
        .await
        .unwrap();
    let config = config_for_front(&env, "dave", &front);
    assert_tls(
        register(&env, "dave", config).await,
        TlsFailure::HostnameMismatch,
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_is_refused() {
    let env = network().await;
    let ca = &env.tls().unwrap().ca;
    let front = TlsFront::start(
        &ca.issue_expired(&["localhost"]).unwrap(),
        env.gateway_addr(),
    )
    .await
    .unwrap();
    let config = config_for_front(&env, "erin", &front);
    assert_tls(register(&env, "erin", config).await, TlsFailure::Expired);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_pins_accept_a_matching_key_and_refuse_others() {
    let env = network().await;
    let tls = env.tls().unwrap();
    // The leaf's key, then the CA's (sent in the chain), each with a backup pin that matches
    // nothing: one match is enough.
    let backup = TestCa::new("Backup").unwrap().pin();
    for (name, pin) in [("frank", tls.identity.pin()), ("grace", tls.ca.pin())] {
        let mut config = env.wallet_config(name);
        config.pinned_gateway_keys = vec![backup.clone(), pin];
        let account = env.new_account(name).await.unwrap();
        let wallet = Wallet::open(config, None).await.unwrap();
        wallet
            .register_device(account.enrollment_code)
            .await
            .unwrap();
        wallet.balance().await.unwrap();
    }
    let mut config = env.wallet_config("heidi");
    config.pinned_gateway_keys = vec![backup];
    assert_tls(
        register(&env, "heidi", config).await,
        TlsFailure::PinMismatch,
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_certificates_and_pins_are_refused_at_open() {
    let env = network().await;
    let good = env.tls().unwrap().ca.pem();
    let cases: [(Vec<String>, Vec<String>, &str); 3] = [
        (
            vec![good.clone(), "not a certificate".into()],
            vec![],
            "trusted_certificates[1]",
        ),
        (
            vec![good.replace("MII", "M!I")],
            vec![],
            "trusted_certificates[0]",
        ),
        (
            vec![good],
            vec!["sha1/AAAA".into()],
            "pinned_gateway_keys[0]",
        ),
    ];
    for (index, (certificates, pins, field)) in cases.into_iter().enumerate() {
        let mut config = env.wallet_config(&format!("ivan{index}"));
        config.trusted_certificates = certificates;
        config.pinned_gateway_keys = pins;
        let database = std::path::Path::new(&config.data_dir).join("wallet.sqlite3");
        match Wallet::open(config, None).await {
            Err(WalletError::InvalidInput { reason }) => {
                assert!(reason.contains(field), "{reason:?} does not name {field}")
            }
            Err(other) => panic!("expected InvalidInput naming {field}, got {other:?}"),
            Ok(_) => panic!("expected InvalidInput naming {field}, the wallet opened"),
        }
        assert!(
            !database.exists(),
            "a refused configuration created no database"
        );
    }
    env.stop().await;
}
