//! `setPushToken` and `clearPushToken` through the exported `Wallet` API against a real
//! gateway on loopback: the registration round trip, malformed tokens refused before anything
//! is sent, and the token following the device key through `rotateDeviceKey`.

use opencharge_gateway::store::{PushEnvironment as GwEnvironment, PushProvider as GwProvider};
use opencharge_testkit::Network;
use opencharge_wallet::{PushEnvironment, PushProvider, WalletError};
use std::time::{Duration, UNIX_EPOCH};

/// The gateway's stored token of `device_id`.
async fn at_gateway(net: &Network, device_id: &str) -> Option<(GwProvider, String, GwEnvironment)> {
    net.gateway()
        .unwrap()
        .state
        .store
        .push_token(device_id)
        .await
        .unwrap()
        .map(|t| (t.provider, t.token, t.environment))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_and_clear_round_trip() {
    let net = Network::start().await.unwrap();
    let (wallet, _) = net.wallet("ada", None).await.unwrap();
    let device_id = wallet.device_id().unwrap();

    let before = net.now();
    let registration = wallet
        .set_push_token(
            PushProvider::Fcm,
            "fcm:token-1".into(),
            PushEnvironment::Production,
        )
        .await
        .unwrap();
    let after = net.now();
    assert_eq!(registration.provider, PushProvider::Fcm);
    assert_eq!(registration.token, "fcm:token-1");
    assert_eq!(registration.environment, PushEnvironment::Production);
    let updated = registration.updated_at.duration_since(UNIX_EPOCH).unwrap();
    assert!(
        (Duration::from_secs(before as u64)..=Duration::from_secs(after as u64 + 1))
            .contains(&updated),
        "{registration:?}"
    );
    assert_eq!(
        at_gateway(&net, &device_id).await,
        Some((
            GwProvider::Fcm,
            "fcm:token-1".into(),
            GwEnvironment::Production
        ))
    );

    // A new token (an iOS development build) replaces it.
    let apns = "ab".repeat(32);
    let registration = wallet
        .set_push_token(PushProvider::Apns, apns.clone(), PushEnvironment::Sandbox)
        .await
        .unwrap();
    assert_eq!(
        (registration.provider, registration.environment),
        (PushProvider::Apns, PushEnvironment::Sandbox)
    );
    assert_eq!(
        at_gateway(&net, &device_id).await,
        Some((GwProvider::Apns, apns, GwEnvironment::Sandbox))
    );

    assert!(wallet.clear_push_token().await.unwrap());
    assert_eq!(at_gateway(&net, &device_id).await, None);
    assert!(
        !wallet.clear_push_token().await.unwrap(),
        "nothing left to clear"
    );
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_tokens_are_invalid_input_and_nothing_is_sent() {
    let net = Network::start().await.unwrap();
    let (wallet, _) = net.wallet("ada", None).await.unwrap();
    let device_id = wallet.device_id().unwrap();
    for (provider, token, environment) in [
        (
            PushProvider::Fcm,
            String::new(),
            PushEnvironment::Production,
        ),
        (
            PushProvider::Fcm,
            "a".repeat(4097),
            PushEnvironment::Production,
        ),
        (
            PushProvider::Fcm,
            "with space".into(),
            PushEnvironment::Production,
        ),
        (PushProvider::Fcm, "fcm".into(), PushEnvironment::Sandbox),
        (
            PushProvider::Apns,
            "not hex at all!!".into(),
            PushEnvironment::Production,
        ),
        (
            PushProvider::Apns,
            "abc".into(),
            PushEnvironment::Production,
        ),
    ] {
        let result = wallet
            .set_push_token(provider, token.clone(), environment)
            .await;
        assert!(
            matches!(result, Err(WalletError::InvalidInput { .. })),
            "{provider:?} {token:?}: {result:?}"
        );
    }
    assert_eq!(at_gateway(&net, &device_id).await, None);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_follows_the_device_key_through_a_rotation() {
    let net = Network::start().await.unwrap();
    let (wallet, _) = net.wallet("ada", None).await.unwrap();
    let apns = "0c".repeat(32);
    wallet
        .set_push_token(
            PushProvider::Apns,
            apns.clone(),
            PushEnvironment::Production,
        )
        .await
        .unwrap();
    let first = wallet.device_id().unwrap();

    // Rotation: the gateway carries the token over and the core registers it again.
    let rotated = wallet.rotate_device_key().await.unwrap();
    assert_ne!(rotated.device_id, first);
    assert_eq!(at_gateway(&net, &first).await, None);
    let expected = Some((GwProvider::Apns, apns.clone(), GwEnvironment::Production));
    assert_eq!(at_gateway(&net, &rotated.device_id).await, expected);

    // The gateway lost the token (an operator cleared it): the core's own registration after
    // the next rotation is what brings it back.
    net.gateway()
        .unwrap()
        .state
        .store
        .clear_push_token(&rotated.device_id)
        .await
        .unwrap();
    let again = wallet.rotate_device_key().await.unwrap();
    assert_eq!(at_gateway(&net, &again.device_id).await, expected);

    // After clearPushToken there is nothing to carry over.
    assert!(wallet.clear_push_token().await.unwrap());
    let last = wallet.rotate_device_key().await.unwrap();
    assert_eq!(at_gateway(&net, &last.device_id).await, None);
    net.stop().await;
}
