//! Paying a person through the exported `Wallet` API, wallet to wallet, against real gateways on
//! loopback: between two wallets on two gateways (the test kit's `PeerNetworks`, each gateway
//! holding a reserve at the other) and on one gateway, the recipient's receive QR scanned and
//! paid (exact debit and credit, the recipient's listener told, its history holding the
//! received receipt with the sender named), the `opencharge:` link that asks for an amount, and
//! the refusals: malformed person codes, bad amounts and memos (nothing sent), paying oneself,
//! an unknown person or gateway.

use opencharge_testkit::p2p::{PeerNetworks, GATEWAY_B_OCID};
use opencharge_testkit::{Heard, Inbox, Network, Recorder, GATEWAY_OCID};
use opencharge_wallet::{
    DirectoryEntry, GatewayErrorCode, HistoryQuery, Money, Payee, PaymentFlow, PaymentPrompt,
    PaymentStatus, Receipt, ScanResult, Wallet, WalletError,
};

/// Money for the tests.
fn usd(amount: &str) -> Money {
    Money::new(amount, "USD").unwrap()
}

/// The USD balance of `wallet` as the exact decimal text.
async fn balance(wallet: &Wallet) -> String {
    wallet
        .balance()
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.currency == "USD")
        .map_or_else(|| "none".to_string(), |m| m.amount)
}

/// The person a scan names.
async fn scan_person(wallet: &Wallet, text: &str) -> Payee {
    match wallet.scan(text.to_string()).await.unwrap() {
        ScanResult::Person { payee } => payee,
        other => panic!("{text}: expected a person, got {other:?}"),
    }
}

/// Asks for the transfer prompt and checks it names `payee`, the amount and the memo.
async fn transfer_prompt(
    wallet: &Wallet,
    payee: &Payee,
    amount: &Money,
    memo: Option<&str>,
) -> PaymentPrompt {
    let prompt = wallet
        .send_to_person(payee.clone(), amount.clone(), memo.map(str::to_string))
        .await
        .unwrap();
    assert_eq!(prompt.flow, PaymentFlow::Transfer);
    assert_eq!(prompt.merchant_ocid, payee.ocid);
    assert_eq!(&prompt.total, amount);
    assert_eq!(prompt.memo.as_deref(), memo);
    assert!(prompt.order_id.starts_with("p2p_"), "{}", prompt.order_id);
    assert!(prompt.items.is_empty());
    let recipient = prompt
        .recipient
        .clone()
        .expect("a transfer names its recipient");
    assert_eq!(recipient.ocid, payee.ocid);
    assert_eq!(recipient.gateway_ocid, payee.gateway_ocid);
    assert_eq!(recipient.amount.as_ref(), Some(amount));
    assert_eq!(recipient.memo.as_deref(), memo);
    assert_eq!(
        wallet.pending_prompts().await.unwrap(),
        vec![prompt.clone()],
        "stored like any prompt"
    );
    prompt
}

/// Waits for the recipient's paid status of `txid`, then finds the receipt in its history.
async fn received(wallet: &Wallet, inbox: &mut Inbox, txid: &str) -> Receipt {
    let update = inbox
        .wait_for("the recipient's paid status", |h| match h {
            Heard::Status(u) if u.status == PaymentStatus::Paid => Some(u.clone()),
            _ => None,
        })
        .await;
    assert_eq!(update.txid.as_deref(), Some(txid));
    assert!(update.paid_at.is_some());
    // Stored before the listener was told: the local history has it, without a refresh.
    let history = wallet
        .history(HistoryQuery {
            limit: 20,
            before: None,
        })
        .await
        .unwrap();
    let receipt = history
        .receipts
        .into_iter()
        .find(|r| r.session_id == update.session_id)
        .expect("the received payment is in the local history");
    assert_eq!(receipt.flow, PaymentFlow::Received);
    assert_eq!(receipt.status, PaymentStatus::Paid);
    assert_eq!(receipt.txid.as_deref(), Some(txid));
    assert_eq!(
        wallet.payment(receipt.session_id.clone()).await.unwrap(),
        receipt,
        "the gateway's receipt is the one stored"
    );
    // Told once.
    let told = inbox
        .drain()
        .iter()
        .filter(|h| matches!(h, Heard::Status(u) if u.session_id == update.session_id))
        .count();
    assert_eq!(told, 1);
    receipt
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_on_another_gateway_is_paid_through_both_gateways() {
    let peers = PeerNetworks::builder().start().await.unwrap();
    // Alice's wallet (gateway A) knows gateway B's metadata, to verify the proof B issues.
    let mut config = peers.a.wallet_config("alice");
    config.directory.push(DirectoryEntry {
        ocid: GATEWAY_B_OCID as i64,
        metadata_url: format!("{}/metadata.json", peers.b.endpoint()),
    });
    let alice = peers
        .a
        .dev()
        .open_wallet(config, "alice", Some("20.00"))
        .await
        .unwrap()
        .wallet;
    let (bob, _) = peers.b.wallet("bob", None).await.unwrap();
    let (listener, mut inbox) = Recorder::new();
    let stream = bob.start_events(listener).unwrap();
    inbox.connected().await;

    // Bob's receive QR names his OCID at gateway B.
    let address = bob.receive_address().await.unwrap();
    assert_eq!(address.gateway_ocid, GATEWAY_B_OCID as i64);
    assert!((201_001..=201_999).contains(&address.ocid), "{address:?}");
    let payee = scan_person(&alice, &address.qr_payload).await;
    assert_eq!(
        (payee.ocid, payee.gateway_ocid),
        (address.ocid, address.gateway_ocid)
    );
    assert_eq!(payee.name, None, "gateway A does not know B's users");
    assert_eq!(payee.gateway_name.as_deref(), Some("Gateway 201"));

    let amount = usd("6.00");
    let prompt = transfer_prompt(&alice, &payee, &amount, Some("rent")).await;
    assert_eq!(prompt.merchant_name, None);
    assert_eq!(
        prompt.recipient.as_ref().unwrap().gateway_name.as_deref(),
        Some("Gateway 201")
    );
    let receipt = alice.confirm(prompt.prompt_id.clone()).await.unwrap();
    assert_eq!(receipt.status, PaymentStatus::Paid);
    assert_eq!(
        receipt.proof_issuer,
        Some(GATEWAY_B_OCID as i64),
        "B's proof of the transfer to Bob"
    );
    assert!(receipt.proof_verified, "verified with B's metadata key");
    let txid = receipt.txid.clone().unwrap();
    assert_eq!(balance(&alice).await, "14.00");

    let got = received(&bob, &mut inbox, &txid).await;
    assert_eq!(got.amount, Some(amount));
    assert_eq!(
        got.merchant_ocid,
        Some(GATEWAY_OCID as i64),
        "from gateway A"
    );
    assert_eq!(got.proof_issuer, Some(GATEWAY_B_OCID as i64));
    assert!(got.proof_verified, "Bob's own gateway issued the proof");
    assert_eq!(balance(&bob).await, "6.00");
    stream.stop_and_wait().await;
    drop((alice, bob));
    peers.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receive_qr_on_the_same_gateway_is_paid_exactly_once() {
    let env = Network::start().await.unwrap();
    let (alice, _) = env.wallet("alice", Some("20.00")).await.unwrap();
    let (bob, _) = env.wallet("bob", None).await.unwrap();
    let (listener, mut inbox) = Recorder::new();
    let stream = bob.start_events(listener).unwrap();
    inbox.connected().await;

    let address = bob.receive_address().await.unwrap();
    assert_eq!(address.gateway_ocid, GATEWAY_OCID as i64);
    assert_eq!(address.name.as_deref(), Some("bob"));
    assert_eq!(
        address.qr_payload,
        format!(
            r#"{{"type":"ocid_transfer","ocid":{},"gateway":{}}}"#,
            address.ocid, address.gateway_ocid
        )
    );
    assert_eq!(bob.receive_address().await.unwrap(), address, "stable");

    let payee = scan_person(&alice, &address.qr_payload).await;
    assert_eq!(
        (payee.ocid, payee.gateway_ocid, payee.name.as_deref()),
        (address.ocid, address.gateway_ocid, Some("bob"))
    );
    assert!(payee.gateway_name.is_some(), "from the gateway's metadata");
    assert_eq!((payee.amount.clone(), payee.memo.clone()), (None, None));

    let amount = usd("5.25");
    let prompt = transfer_prompt(&alice, &payee, &amount, Some("lunch")).await;
    assert_eq!(prompt.merchant_name.as_deref(), Some("bob"));
    let receipt = alice.confirm(prompt.prompt_id.clone()).await.unwrap();
    assert_eq!(receipt.status, PaymentStatus::Paid);
    assert_eq!(receipt.flow, PaymentFlow::Transfer);
    assert!(
        receipt.proof_verified,
        "our gateway's proof pays Bob's OCID"
    );
    assert_eq!(receipt.proof_issuer, Some(GATEWAY_OCID as i64));
    let txid = receipt.txid.clone().unwrap();
    // Confirming again is the same receipt, never a second payment.
    assert_eq!(
        alice.confirm(prompt.prompt_id.clone()).await.unwrap().txid,
        Some(txid.clone())
    );
    assert_eq!(balance(&alice).await, "14.75");

    let got = received(&bob, &mut inbox, &txid).await;
    assert_eq!(got.amount, Some(amount));
    assert_eq!(got.merchant_name.as_deref(), Some("alice"));
    assert!(got.proof_verified, "our gateway issued the proof");
    assert_eq!(balance(&bob).await, "5.25");
    // The sender's own history has the transfer, not a received payment.
    let sent = alice.payment(prompt.prompt_id.clone()).await.unwrap();
    assert_eq!(sent.flow, PaymentFlow::Transfer);
    assert_eq!(sent.merchant_ocid, Some(address.ocid));
    stream.stop_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_with_an_amount_pays_exactly_that_amount_and_memo() {
    let env = Network::start().await.unwrap();
    let (carol, _) = env.wallet("carol", Some("10.00")).await.unwrap();
    let (dave, _) = env.wallet("dave", None).await.unwrap();
    let (listener, mut inbox) = Recorder::new();
    let stream = dave.start_events(listener).unwrap();
    inbox.connected().await;
    let address = dave.receive_address().await.unwrap();

    let link = format!(
        "opencharge:{}?gateway={}&amount=2.50&currency=USD&memo=coffee%20%E2%98%95",
        address.ocid, address.gateway_ocid
    );
    let payee = scan_person(&carol, &link).await;
    assert_eq!(payee.amount, Some(usd("2.50")));
    assert_eq!(payee.amount.as_ref().map(|m| m.minor_units), Some(250));
    assert_eq!(payee.memo.as_deref(), Some("coffee ☕"));
    let amount = payee.amount.clone().unwrap();
    let prompt = transfer_prompt(&carol, &payee, &amount, payee.memo.as_deref()).await;
    let receipt = carol.confirm(prompt.prompt_id).await.unwrap();
    assert_eq!(balance(&carol).await, "7.50");
    let got = received(&dave, &mut inbox, receipt.txid.as_deref().unwrap()).await;
    assert_eq!(got.amount, Some(usd("2.50")));
    assert_eq!(balance(&dave).await, "2.50");

    // A link with only a currency leaves the amount to the payer; a bare merchant URI (no
    // gateway=) is still not a person.
    let open = format!(
        "opencharge:{}?gateway={}&currency=USD",
        address.ocid, address.gateway_ocid
    );
    assert_eq!(scan_person(&carol, &open).await.amount, None);
    match carol
        .scan(format!(
            "opencharge:{}?amount=1.00&currency=USD",
            address.ocid
        ))
        .await
        .unwrap()
    {
        ScanResult::Unsupported { kind, .. } => assert_eq!(kind, "ocid_uri"),
        other => panic!("a merchant URI: {other:?}"),
    }
    stream.stop_and_wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_person_codes_amounts_and_recipients_are_refused_and_change_nothing() {
    let env = Network::start().await.unwrap();
    let (erin, _) = env.wallet("erin", Some("10.00")).await.unwrap();
    let (frank, _) = env.wallet("frank", None).await.unwrap();
    let address = frank.receive_address().await.unwrap();
    let own = erin.receive_address().await.unwrap();

    // Malformed person codes: typed InvalidInput, nothing asked of the gateway.
    for text in [
        r#"{"type":"ocid_transfer","ocid":"200001","gateway":200}"#.to_string(),
        r#"{"type":"ocid_transfer","ocid":200001}"#.to_string(),
        r#"{"type":"ocid_transfer","ocid":-1,"gateway":200}"#.to_string(),
        format!("opencharge:{}?gateway=two", address.ocid),
        format!(
            "opencharge:{}?gateway=200&amount=1.001&currency=USD",
            address.ocid
        ),
        format!("opencharge:{}?gateway=200&amount=1.00", address.ocid),
        format!("opencharge:{}?gateway=200&memo=%0Aline", address.ocid),
    ] {
        let err = erin.scan(text.clone()).await.unwrap_err();
        assert!(
            matches!(err, WalletError::InvalidInput { .. }),
            "{text}: {err:?}"
        );
    }

    // Bad amounts and memos: InvalidInput before anything is sent.
    let payee = scan_person(&erin, &address.qr_payload).await;
    let forged = Money {
        minor_units: 1,
        ..usd("5.00")
    };
    for (amount, memo) in [
        (usd("0.00"), None),
        (usd("-1.00"), None),
        (forged, None),
        (usd("1.00"), Some(String::new())),
        (usd("1.00"), Some("a\u{202e}b".to_string())),
        (usd("1.00"), Some("x".repeat(257))),
    ] {
        let err = erin
            .send_to_person(payee.clone(), amount.clone(), memo.clone())
            .await
            .unwrap_err();
        assert!(
            matches!(err, WalletError::InvalidInput { .. }),
            "{amount:?} {memo:?}: {err:?}"
        );
    }
    assert!(erin.pending_prompts().await.unwrap().is_empty());

    // The gateway's refusals, typed.
    let code = |e: WalletError| e.gateway_code();
    let myself = scan_person(&erin, &own.qr_payload).await;
    assert_eq!(
        code(
            erin.send_to_person(myself, usd("1.00"), None)
                .await
                .unwrap_err()
        ),
        Some(GatewayErrorCode::InvalidRequest),
        "paying oneself"
    );
    let nobody = Payee {
        ocid: address.ocid + 1000,
        ..payee.clone()
    };
    assert_eq!(
        code(
            erin.send_to_person(nobody, usd("1.00"), None)
                .await
                .unwrap_err()
        ),
        Some(GatewayErrorCode::AccountNotFound)
    );
    let elsewhere = Payee {
        gateway_ocid: 777,
        ..payee.clone()
    };
    assert_eq!(
        code(
            erin.send_to_person(elsewhere, usd("1.00"), None)
                .await
                .unwrap_err()
        ),
        Some(GatewayErrorCode::UnknownOcid)
    );
    assert!(erin.pending_prompts().await.unwrap().is_empty());
    assert_eq!(balance(&erin).await, "10.00");
}
