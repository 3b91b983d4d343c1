//! Third-party settlement end to end (issue 19): our gateway A pays a merchant that is its own
//! Merchant Gateway G through the bank S, for wallets on the real core (the test kit's
//! `ThreeParty`): the happy path, G's refusals (a paid order at `/payment/create`, a provider
//! proof it cannot verify, `PAYMENT_EXPIRED` at `/payment/settle`), an expired pending payment,
//! a crash of A between `/transfer/create` and `/payment/settle`, `GET /verify/{txid}` at A, S
//! and G, and the settlement-path choice (direct, then partner reserve, then third party, else
//! none).

use std::time::Duration;

use opencharge_gateway::config::{DirectoryEntry, PartnerConfig};
use opencharge_gateway::settlement::{find_path_to, SettlementPath};
use opencharge_gateway::store::{JobState, SessionStatus, ThirdPartyJob};
use opencharge_gateway::third_party::HOLD_ACCOUNT;
use opencharge_gateway::{Gateway, RunningGateway};
use opencharge_protocol::keys::{PrivateKey, VerifyOptions};
use opencharge_protocol::signing::{sign_object, verify_proof};
use opencharge_testkit::three_party::{ThreeParty, ThreePartyOptions, BANK_OCID};
use opencharge_testkit::{signed_request, DropRule, GatewayHome, GATEWAY_OCID, MERCHANT_OCID};
use opencharge_wallet::{PaymentStatus, ScanResult, Wallet, WalletError};
use serde_json::{json, Value};

/// The coffee order's total in cents (the test kit's order: 8.25).
const ORDER_CENTS: i64 = 825;

/// Polls `check` every 50 ms for up to 20 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A's USD balance of `account` in cents.
async fn usd_at(gateway: &RunningGateway, account: &str) -> i64 {
    gateway
        .state
        .store
        .balances(account)
        .await
        .unwrap()
        .into_iter()
        .find(|b| b.currency == "USD")
        .map_or(0, |b| b.minor)
}

/// Cents of a decimal USD text.
fn cents(text: &str) -> i64 {
    let (units, fraction) = text.split_once('.').unwrap_or((text, "0"));
    units.parse::<i64>().unwrap() * 100 + format!("{fraction:0<2}")[..2].parse::<i64>().unwrap()
}

/// The prompt of a fresh coffee order scanned by `wallet`: (order id, prompt id, total).
async fn scan(parties: &ThreeParty, wallet: &Wallet) -> (String, String) {
    let (order, prompt) = parties.network.scan_order(wallet).await.unwrap();
    assert_eq!(prompt.merchant_ocid, MERCHANT_OCID as i64);
    (order.order.id, prompt.prompt_id)
}

/// The job of a session at A.
async fn job(parties: &ThreeParty, session: &str) -> ThirdPartyJob {
    parties
        .network
        .gateway()
        .unwrap()
        .state
        .store
        .third_party_job(session)
        .await
        .unwrap()
        .expect("no job")
}

/// `GET <endpoint>/verify/{txid}` signed by `ocid` with `key`: status and body.
async fn verify_at(endpoint: &str, txid: &str, key: &PrivateKey, ocid: u64) -> (u16, Value) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let response = signed_request(
        &reqwest::Client::new(),
        key,
        ocid,
        "GET",
        &format!("{}/verify/{txid}", endpoint.trim_end_matches('/')),
        None,
        now,
    )
    .await
    .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_wallet_pays_through_the_common_provider_once() {
    let parties = ThreeParty::start().await.unwrap();
    let a = parties.network.gateway().unwrap();
    let wallet = &parties.network.wallets[0].wallet;
    let before = cents(&parties.network.usd(wallet).await.unwrap());
    let reserve_before = parties.bank_usd(&parties.reserve_account()).await.unwrap();

    let (order_id, prompt_id) = scan(&parties, wallet).await;
    let receipt = wallet.confirm(prompt_id.clone()).await.unwrap();
    assert_eq!(receipt.status, PaymentStatus::Paid);
    let txid = receipt.txid.clone().unwrap();

    // The receipt proof is G's own, to the merchant, and verifies with G's key.
    assert_eq!(receipt.proof_issuer, Some(MERCHANT_OCID as i64));
    let signed: Value = serde_json::from_str(receipt.proof_json.as_deref().unwrap()).unwrap();
    let proof = &signed["proof"];
    assert_eq!(proof["txid"], txid);
    assert_eq!(proof["to"]["ocid"], MERCHANT_OCID);
    assert_eq!(proof["to"]["reference"], order_id);
    let merchant = parties.network.merchant();
    let g_key = opencharge_protocol::keys::PublicKey::from_hex(
        merchant.metadata()["config"]["publicKey"].as_str().unwrap(),
    )
    .unwrap();
    verify_proof(
        proof,
        signed["signature"].as_str().unwrap(),
        MERCHANT_OCID,
        &g_key,
        VerifyOptions::STRICT,
    )
    .unwrap();

    // A: the payer debited once, the hold empty again, S's clearing credited; no webhook of ours.
    assert_eq!(
        cents(&parties.network.usd(wallet).await.unwrap()),
        before - ORDER_CENTS
    );
    assert_eq!(usd_at(a, HOLD_ACCOUNT).await, 0);
    assert_eq!(
        usd_at(a, &format!("reserve-clearing:{BANK_OCID}")).await,
        ORDER_CENTS
    );
    assert_eq!(a.state.store.webhook_by_txid(&txid).await.unwrap(), None);
    let stored = job(&parties, &prompt_id).await;
    assert_eq!(stored.state, JobState::Paid);
    assert_eq!(stored.provider, Some(BANK_OCID));
    assert_eq!(stored.pending_txid.as_deref(), Some(txid.as_str()));
    assert_eq!(stored.attempts, 0);

    // S: A's reserve debited once, G credited once.
    assert_eq!(
        parties.bank_usd(&parties.reserve_account()).await.unwrap(),
        reserve_before - ORDER_CENTS
    );
    assert_eq!(
        parties
            .bank_usd(&format!("ocid:{MERCHANT_OCID}"))
            .await
            .unwrap(),
        ORDER_CENTS
    );

    // G: the order is paid with G's proof; the payment completed with S's proof.
    let record = merchant.order(&order_id).unwrap().unwrap();
    assert_eq!(record.txid.as_deref(), Some(txid.as_str()));
    assert_eq!(record.issuer, Some(MERCHANT_OCID));
    let payment = merchant.payment(&txid).unwrap().unwrap();
    let provider_proof = payment.provider_proof.unwrap();
    assert_eq!(provider_proof.proof.issuer, BANK_OCID);
    assert_eq!(
        provider_proof.proof.to.reference.as_deref(),
        Some(txid.as_str())
    );
    assert_eq!(provider_proof.proof.from.ocid, GATEWAY_OCID);

    // /verify: completed at G (for A, the payer) and at S (for A, whose reserve paid).
    let (status, body) = verify_at(merchant.endpoint(), &txid, &a.state.key, GATEWAY_OCID).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["proof"], *proof);
    let s_txid = provider_proof.proof.txid.clone();
    let bank = parties.bank();
    let (status, body) = verify_at(bank.endpoint(), &s_txid, &a.state.key, GATEWAY_OCID).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["proof"]["issuer"], BANK_OCID);
    assert_eq!(body["proof"]["to"]["ocid"], MERCHANT_OCID);
    verify_proof(
        &body["proof"],
        body["signature"].as_str().unwrap(),
        BANK_OCID,
        &bank.state.key.public_key(),
        VerifyOptions::STRICT,
    )
    .unwrap();
    // S does not vouch for G's proof, nor for unknown txids: the same 404.
    for unknown in [txid.as_str(), "tx_nope"] {
        let (status, body) = verify_at(bank.endpoint(), unknown, &a.state.key, GATEWAY_OCID).await;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["code"], "TXID_NOT_FOUND");
    }
    // A confirm retry answers the same payment and moves nothing.
    let again = wallet.payment(prompt_id.clone()).await.unwrap();
    assert_eq!(again.txid.as_deref(), Some(txid.as_str()));
    assert_eq!(
        cents(&parties.network.usd(wallet).await.unwrap()),
        before - ORDER_CENTS
    );
    parties.stop().await;
}

#[tokio::test]
async fn g_refusing_the_payment_refunds_the_hold_and_says_why() {
    let options = ThreePartyOptions {
        wallets: 2,
        ..Default::default()
    };
    let parties = ThreeParty::start_with(options).await.unwrap();
    let a = parties.network.gateway().unwrap();
    let (first, second) = (
        &parties.network.wallets[0].wallet,
        &parties.network.wallets[1].wallet,
    );
    // Both wallets scan the same order; the first pays it.
    let order = parties.network.order().unwrap();
    let qr = parties
        .network
        .merchant()
        .order_qr(&order.order.id)
        .unwrap();
    let prompt = |scanned: ScanResult| match scanned {
        ScanResult::Prompt { prompt } => prompt.prompt_id,
        other => panic!("{other:?}"),
    };
    let p1 = prompt(first.scan(qr.clone()).await.unwrap());
    let p2 = prompt(second.scan(qr).await.unwrap());
    assert_eq!(first.confirm(p1).await.unwrap().status, PaymentStatus::Paid);
    let before = cents(&parties.network.usd(second).await.unwrap());
    let reserve = parties.bank_usd(&parties.reserve_account()).await.unwrap();

    // G refuses the second payment of a paid order at /payment/create: a clear, final error.
    let err = second.confirm(p2.clone()).await.unwrap_err();
    let WalletError::Gateway {
        http_status,
        reason: message,
        raw_code,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(raw_code, "INVALID_STATE", "{message}");
    assert_eq!(*http_status, 409, "{message}");
    assert!(message.contains("cannot be paid"), "{message}");
    assert!(message.contains("nothing was debited"), "{message}");
    // The hold is back, nothing moved at S, the session is declined, the record kept.
    assert_eq!(cents(&parties.network.usd(second).await.unwrap()), before);
    assert_eq!(usd_at(a, HOLD_ACCOUNT).await, 0);
    assert_eq!(
        parties.bank_usd(&parties.reserve_account()).await.unwrap(),
        reserve
    );
    let stored = job(&parties, &p2).await;
    assert_eq!(stored.state, JobState::Failed);
    assert!(
        stored
            .last_error
            .as_deref()
            .unwrap()
            .contains("INVALID_STATE"),
        "{:?}",
        stored.last_error
    );
    let session = a.state.store.session(&p2).await.unwrap().unwrap();
    assert_eq!(session.status, SessionStatus::Declined);
    // A retry says the session can no longer be paid, and still moves nothing.
    let (status, _) = {
        let receipt = second.payment(p2.clone()).await.unwrap();
        (receipt.status, ())
    };
    assert_eq!(status, PaymentStatus::Declined);
    assert_eq!(cents(&parties.network.usd(second).await.unwrap()), before);
    parties.stop().await;
}

#[tokio::test]
async fn a_provider_g_cannot_verify_ends_refunded_for_reconciliation() {
    // A misconfigured Merchant Gateway: it lists the bank as its provider but cannot check
    // the bank's signatures (the bank is missing from its directory).
    let options = ThreePartyOptions {
        merchant_tweak: Some(Box::new(|config| {
            config.directory.retain(|e| e.ocid != BANK_OCID);
        })),
        ..Default::default()
    };
    let parties = ThreeParty::start_with(options).await.unwrap();
    let a = parties.network.gateway().unwrap();
    let wallet = &parties.network.wallets[0].wallet;
    let before = cents(&parties.network.usd(wallet).await.unwrap());
    let reserve = parties.bank_usd(&parties.reserve_account()).await.unwrap();
    let (order_id, prompt_id) = scan(&parties, wallet).await;

    let err = wallet.confirm(prompt_id.clone()).await.unwrap_err();
    let WalletError::Gateway {
        http_status,
        raw_code,
        reason,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*http_status, 409, "{reason}");
    assert_eq!(raw_code, "PROOF_SIGNATURE_INVALID", "{reason}");
    assert!(reason.contains("nothing was debited"), "{reason}");
    // The payer has the money back; the bank did pay G, so the record says reconcile.
    assert_eq!(cents(&parties.network.usd(wallet).await.unwrap()), before);
    assert_eq!(usd_at(a, HOLD_ACCOUNT).await, 0);
    assert_eq!(usd_at(a, &format!("reserve-clearing:{BANK_OCID}")).await, 0);
    assert_eq!(
        parties.bank_usd(&parties.reserve_account()).await.unwrap(),
        reserve - ORDER_CENTS
    );
    let stored = job(&parties, &prompt_id).await;
    assert_eq!(stored.state, JobState::FailedReconcile);
    assert!(stored.provider_proof.is_some());
    let session = a.state.store.session(&prompt_id).await.unwrap().unwrap();
    assert_eq!(session.status, SessionStatus::Declined);
    assert_eq!(session.txid, None);
    // Nothing was paid at G either.
    let record = parties
        .network
        .merchant()
        .order(&order_id)
        .unwrap()
        .unwrap();
    assert_eq!(record.txid, None);
    parties.stop().await;
}

#[tokio::test]
async fn a_crash_between_transfer_and_settle_resumes_and_pays_once() {
    // Leases short enough for a test.
    let options = ThreePartyOptions {
        gateway_tweak: Some(Box::new(|config| config.queue_lease_seconds = 1)),
        ..Default::default()
    };
    let mut parties = ThreeParty::start_with(options).await.unwrap();
    let wallet = parties.network.wallets[0].wallet.clone();
    let before = cents(&parties.network.usd(&wallet).await.unwrap());
    let reserve = parties.bank_usd(&parties.reserve_account()).await.unwrap();
    let (order_id, prompt_id) = scan(&parties, &wallet).await;

    // G acts on /payment/settle but its answers are lost: A cannot know the outcome.
    parties
        .merchant_proxy()
        .drop_answers(DropRule::new("POST", "/opencharge/payment/settle"));
    // The core shows it as pending (a 5xx code it does not know), never as failed.
    let err = wallet.confirm(prompt_id.clone()).await.unwrap_err();
    assert!(matches!(err, WalletError::OutcomePending { .. }), "{err:?}");
    let stored = job(&parties, &prompt_id).await;
    assert_eq!(stored.state, JobState::Transferred);
    assert!(stored.attempts >= 1);
    let pending_txid = stored.pending_txid.clone().unwrap();

    // A goes down while the job waits; G answers again; A comes back and resumes.
    parties.network.stop_gateway().await;
    parties.merchant_proxy().pass_all();
    parties.network.restart_gateway().await.unwrap();
    let a = parties.network.gateway().unwrap().state.clone();
    eventually("the resumed job to pay the session", || {
        let a = a.clone();
        let id = prompt_id.clone();
        async move {
            a.store
                .session(&id)
                .await
                .unwrap()
                .is_some_and(|s| s.status == SessionStatus::Paid)
        }
    })
    .await;
    let session = a.store.session(&prompt_id).await.unwrap().unwrap();
    assert_eq!(session.txid.as_deref(), Some(pending_txid.as_str()));
    let stored = job(&parties, &prompt_id).await;
    assert_eq!(stored.state, JobState::Paid);

    // Exactly one debit, one transfer at S, one MG proof, the order paid with it.
    assert_eq!(
        cents(&parties.network.usd(&wallet).await.unwrap()),
        before - ORDER_CENTS
    );
    assert_eq!(
        parties.bank_usd(&parties.reserve_account()).await.unwrap(),
        reserve - ORDER_CENTS
    );
    let gateway = parties.network.gateway().unwrap();
    assert_eq!(usd_at(gateway, HOLD_ACCOUNT).await, 0);
    assert_eq!(
        usd_at(gateway, &format!("reserve-clearing:{BANK_OCID}")).await,
        ORDER_CENTS
    );
    let record = parties
        .network
        .merchant()
        .order(&order_id)
        .unwrap()
        .unwrap();
    assert_eq!(record.txid.as_deref(), Some(pending_txid.as_str()));
    let stored_proof: Value = serde_json::from_str(session.proof_json.as_deref().unwrap()).unwrap();
    assert_eq!(
        serde_json::to_value(record.proof.unwrap()).unwrap(),
        stored_proof
    );
    // The wallet's saved decision now gets the payment: the same receipt.
    wallet.sync_outbox().await.unwrap();
    let receipt = wallet.payment(prompt_id.clone()).await.unwrap();
    assert_eq!(receipt.status, PaymentStatus::Paid);
    assert_eq!(receipt.txid.as_deref(), Some(pending_txid.as_str()));
    assert_eq!(
        cents(&parties.network.usd(&wallet).await.unwrap()),
        before - ORDER_CENTS
    );
    parties.stop().await;
}

#[tokio::test]
async fn an_expired_pending_payment_ends_refunded_for_reconciliation() {
    let options = ThreePartyOptions {
        merchant_tweak: Some(Box::new(|config| config.payment_ttl_secs = 2)),
        gateway_tweak: Some(Box::new(|config| config.queue_lease_seconds = 1)),
        ..Default::default()
    };
    let mut parties = ThreeParty::start_with(options).await.unwrap();
    let wallet = parties.network.wallets[0].wallet.clone();
    let before = cents(&parties.network.usd(&wallet).await.unwrap());
    let (_, prompt_id) = scan(&parties, &wallet).await;

    // The bank is down: the payment is created at G, the transfer cannot be made.
    parties.stop_bank().await;
    // The core shows it as pending (a 5xx code it does not know), never as failed.
    let err = wallet.confirm(prompt_id.clone()).await.unwrap_err();
    assert!(matches!(err, WalletError::OutcomePending { .. }), "{err:?}");
    let a = parties.network.gateway().unwrap().state.clone();
    let stored = a.store.third_party_job(&prompt_id).await.unwrap().unwrap();
    assert_eq!(stored.state, JobState::Created);
    let expires = stored.pending_expires_at.unwrap();
    // G reports the payment pending to its creator, A.
    let pending_txid = stored.pending_txid.clone().unwrap();
    let merchant = parties.network.merchants()[0].clone();
    let a_key = parties.network.gateway().unwrap().state.key.clone();
    let (status, body) = verify_at(merchant.endpoint(), &pending_txid, &a_key, GATEWAY_OCID).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "pending");
    assert_eq!(body["amount"], "8.25");

    // Past the pending payment's expiry the worker gives up: refunded, session expired, the
    // job kept for reconciliation (an attempt at the bank may have gone through unseen).
    parties.network.clock.advance(expires - a.now() + 1);
    parties.restart_bank().await.unwrap();
    eventually("the expired job to end", || {
        let a = a.clone();
        let id = prompt_id.clone();
        async move {
            a.store
                .third_party_job(&id)
                .await
                .unwrap()
                .is_some_and(|j| !j.state.is_active())
        }
    })
    .await;
    let stored = a.store.third_party_job(&prompt_id).await.unwrap().unwrap();
    assert_eq!(stored.state, JobState::FailedReconcile);
    assert!(stored.last_error.unwrap().contains("PAYMENT_EXPIRED"));
    let session = a.store.session(&prompt_id).await.unwrap().unwrap();
    assert_eq!(session.status, SessionStatus::Expired);
    assert_eq!(cents(&parties.network.usd(&wallet).await.unwrap()), before);
    assert_eq!(
        usd_at(parties.network.gateway().unwrap(), HOLD_ACCOUNT).await,
        0
    );
    // At G the payment has expired too (its own clock): /verify says so.
    eventually("G to report the payment expired", || {
        let (merchant, key, txid) = (merchant.clone(), a_key.clone(), pending_txid.clone());
        async move {
            let (status, body) = verify_at(merchant.endpoint(), &txid, &key, GATEWAY_OCID).await;
            status == 200 && body["status"] == "expired"
        }
    })
    .await;
    assert_eq!(
        a.store
            .third_party_jobs(Some(JobState::FailedReconcile), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    parties.stop().await;
}

#[tokio::test]
async fn g_answering_payment_expired_at_settle_ends_refunded_for_reconciliation() {
    // A's clock runs behind G's: A still transfers, and G refuses the settle as expired.
    let options = ThreePartyOptions {
        merchant_tweak: Some(Box::new(|config| config.payment_ttl_secs = 2)),
        gateway_tweak: Some(Box::new(|config| config.queue_lease_seconds = 1)),
        ..Default::default()
    };
    let mut parties = ThreeParty::start_with(options).await.unwrap();
    parties.network.clock.advance(-30);
    let wallet = parties.network.wallets[0].wallet.clone();
    let before = cents(&parties.network.usd(&wallet).await.unwrap());
    let reserve = parties.bank_usd(&parties.reserve_account()).await.unwrap();
    let (_, prompt_id) = scan(&parties, &wallet).await;
    parties.stop_bank().await;
    let err = wallet.confirm(prompt_id.clone()).await.unwrap_err();
    assert!(matches!(err, WalletError::OutcomePending { .. }), "{err:?}");
    let a = parties.network.gateway().unwrap().state.clone();
    let txid = a
        .store
        .third_party_job(&prompt_id)
        .await
        .unwrap()
        .unwrap()
        .pending_txid
        .unwrap();
    // Past the payment's expiry at G (its own clock), the bank is back.
    let merchant = parties.network.merchants()[0].clone();
    let a_key = a.key.clone();
    eventually("G to report the payment expired", || {
        let (merchant, key, txid) = (merchant.clone(), a_key.clone(), txid.clone());
        async move {
            let (status, body) = verify_at(merchant.endpoint(), &txid, &key, GATEWAY_OCID).await;
            status == 200 && body["status"] == "expired"
        }
    })
    .await;
    parties.restart_bank().await.unwrap();
    eventually("the job to end", || {
        let a = a.clone();
        let id = prompt_id.clone();
        async move {
            a.store
                .third_party_job(&id)
                .await
                .unwrap()
                .is_some_and(|j| !j.state.is_active())
        }
    })
    .await;
    let stored = a.store.third_party_job(&prompt_id).await.unwrap().unwrap();
    assert_eq!(stored.state, JobState::FailedReconcile, "{stored:?}");
    let last_error = stored.last_error.unwrap();
    assert!(last_error.starts_with("PAYMENT_EXPIRED"), "{last_error}");
    assert!(stored.provider_proof.is_some());
    let session = a.store.session(&prompt_id).await.unwrap().unwrap();
    assert_eq!(session.status, SessionStatus::Expired);
    // The payer is whole; the bank paid G, which operators now reconcile.
    assert_eq!(cents(&parties.network.usd(&wallet).await.unwrap()), before);
    assert_eq!(
        parties.bank_usd(&parties.reserve_account()).await.unwrap(),
        reserve - ORDER_CENTS
    );
    parties.stop().await;
}

#[tokio::test]
async fn verify_answers_our_direct_proofs_to_their_parties_only() {
    let network = opencharge_testkit::Network::builder()
        .wallets(1)
        .fund("20.00 USD")
        .persistent_keys()
        .start()
        .await
        .unwrap();
    let wallet = &network.wallets[0].wallet;
    let (_, prompt) = network.scan_order(wallet).await.unwrap();
    let receipt = wallet.confirm(prompt.prompt_id).await.unwrap();
    let txid = receipt.txid.unwrap();
    let gateway = network.gateway().unwrap();
    // The merchant (the proof's `to`) gets it; so does the gateway itself (its `from`).
    let merchant_key = opencharge_peer::key_file::load_or_create_key(
        &network.data_dir().join("merchant").join("merchant.key"),
    )
    .unwrap();
    assert_eq!(
        merchant_key.public_key().to_hex().to_string(),
        network.merchant().public_key_hex()
    );
    let (status, body) = verify_at(network.endpoint(), &txid, &merchant_key, MERCHANT_OCID).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["txid"], txid);
    assert_eq!(body["proof"]["issuer"], GATEWAY_OCID);
    verify_proof(
        &body["proof"],
        body["signature"].as_str().unwrap(),
        GATEWAY_OCID,
        &gateway.state.key.public_key(),
        VerifyOptions::STRICT,
    )
    .unwrap();
    // Unknown txids: 404 TXID_NOT_FOUND.
    let (status, body) = verify_at(
        network.endpoint(),
        "tx_unknown",
        &merchant_key,
        MERCHANT_OCID,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "TXID_NOT_FOUND");
    // Unsigned: refused by request authentication.
    let unsigned = reqwest::get(format!("{}/verify/{txid}", network.endpoint()))
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    network.stop().await;
}

/// Signed metadata of a party offering `capabilities` and accepting `accepts`.
fn metadata(ocid: u64, key: &PrivateKey, capabilities: &[&str], accepts: &[u64]) -> DirectoryEntry {
    let config = json!({
        "publicKey": key.public_key().to_hex(),
        "endpoint": format!("https://party{ocid}.example/opencharge"),
        "capabilities": capabilities,
        "settlement": {"currencies": ["USD"], "accepts": accepts},
    });
    let signature = sign_object(key, &config).unwrap();
    DirectoryEntry {
        ocid,
        metadata_url: None,
        metadata: Some(json!({
            "opencharge": "0.1", "ocid": ocid, "name": format!("Party {ocid}"),
            "config": config, "signature": signature,
        })),
    }
}

#[tokio::test]
async fn the_path_is_direct_then_partner_reserve_then_third_party_else_none() {
    const PARTNER: u64 = 600;
    const MG: u64 = 300;
    const MERCHANT: u64 = 500;
    const BARE_MERCHANT: u64 = 501;
    const STRANGER: u64 = 777;
    let key = PrivateKey::generate();
    let home = GatewayHome::create().await.unwrap();
    let mut config = home.config();
    config.partners = vec![PartnerConfig { ocid: PARTNER }];
    let gateway_caps = ["transfer.create", "transfer.webhook"];
    let mg_caps = ["payment.create", "payment.settle", "transfer.webhook"];
    config.directory = vec![
        metadata(PARTNER, &key, &gateway_caps, &[PARTNER]),
        metadata(MG, &key, &mg_caps, &[PARTNER]),
        // The merchant as its own Merchant Gateway, accepting the partner for payments.
        metadata(MERCHANT, &key, &mg_caps, &[STRANGER, PARTNER]),
        // A merchant that offers no payment API.
        metadata(BARE_MERCHANT, &key, &["transfer.webhook"], &[STRANGER]),
        metadata(STRANGER, &key, &gateway_caps, &[STRANGER]),
    ];
    let gateway = Gateway::start(config).await.unwrap();
    let state = &gateway.state;
    let path = |merchant, accepts: Vec<u64>| {
        let state = state.clone();
        async move { find_path_to(&state, Some(merchant), &accepts, "USD").await }
    };
    // Our OCID accepted (or no restriction): direct, even if a partner is accepted too.
    assert!(matches!(
        path(MERCHANT, vec![PARTNER, GATEWAY_OCID]).await,
        Some(SettlementPath::Direct)
    ));
    assert!(matches!(
        path(MERCHANT, vec![]).await,
        Some(SettlementPath::Direct)
    ));
    // A partner accepted: partner reserve, before any Merchant Gateway.
    assert!(matches!(
        path(MERCHANT, vec![MG, PARTNER]).await,
        Some(SettlementPath::PartnerReserve { partner }) if partner.ocid == PARTNER
    ));
    // An accepted Merchant Gateway whose payment terms name our partner: third party.
    match path(BARE_MERCHANT, vec![STRANGER, MG]).await {
        Some(SettlementPath::ThirdParty {
            merchant_gateway,
            provider,
        }) => {
            assert_eq!(merchant_gateway.ocid, MG);
            assert_eq!(provider.ocid, PARTNER);
        }
        other => panic!("{other:?}"),
    }
    // The merchant itself as its Merchant Gateway.
    match path(MERCHANT, vec![STRANGER]).await {
        Some(SettlementPath::ThirdParty {
            merchant_gateway, ..
        }) => assert_eq!(merchant_gateway.ocid, MERCHANT),
        other => panic!("{other:?}"),
    }
    // Nobody offers a way: none (SETTLEMENT_NOT_SUPPORTED); nor in a currency the partner
    // does not settle.
    assert!(path(BARE_MERCHANT, vec![STRANGER]).await.is_none());
    assert!(find_path_to(state, Some(MERCHANT), &[STRANGER], "EUR")
        .await
        .is_none());
    gateway.stop().await;
}
