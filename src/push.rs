//! Push wake-ups in the core (`Wallet.handlePush`): reads the wake-up from an FCM data map or
//! an APNs userInfo, fetches the one prompt or receipt it names over the device-signed API,
//! verifies and stores it like every other, and writes the notification's text. The payload
//! is never trusted: it only says which session to fetch.

use opencharge_protocol::app::{PushKind, PushWakeUp, PUSH_PAYLOAD_KEY};
use serde_json::Value;

use crate::engine::Engine;
use crate::error::{GatewayErrorCode, Result, WalletError};
use crate::model::{
    unix_from_time, Money, NotificationText, PaymentPrompt, PaymentStatus, PushEvent, Receipt,
};

/// Largest payload accepted, bytes (an APNs payload is at most 4 KB, FCM data likewise).
pub(crate) const MAX_PAYLOAD: usize = 4096;

/// Reads the wake-up from `payload`: either the FCM data map as a JSON object
/// (`{"type":…,"sessionId":…,"eventId":…}`) or the whole APNs userInfo (an object whose
/// `opencharge` key holds those fields). Anything else is `InvalidInput`.
pub(crate) fn parse_wake_up(payload: &str) -> Result<PushWakeUp> {
    if payload.len() > MAX_PAYLOAD {
        return Err(WalletError::invalid(format!(
            "push payload is {} bytes; at most {MAX_PAYLOAD} are accepted",
            payload.len()
        )));
    }
    let value: Value = serde_json::from_str(payload)
        .map_err(|e| WalletError::invalid(format!("push payload is not JSON: {e}")))?;
    let Value::Object(mut object) = value else {
        return Err(WalletError::invalid("push payload is not a JSON object"));
    };
    let wake = match object.remove(PUSH_PAYLOAD_KEY) {
        Some(inner @ Value::Object(_)) => inner,
        Some(_) => {
            return Err(WalletError::invalid(format!(
                "push payload: `{PUSH_PAYLOAD_KEY}` is not an object"
            )))
        }
        None => Value::Object(object),
    };
    let wake: PushWakeUp = serde_json::from_value(wake)
        .map_err(|e| WalletError::invalid(format!("push payload: {e}")))?;
    if !opencharge_protocol::auth::is_header_token(&wake.session_id, 128) {
        return Err(WalletError::invalid("push payload: malformed `sessionId`"));
    }
    if wake.event_id.is_empty()
        || wake.event_id.len() > 19
        || !wake.event_id.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(WalletError::invalid(
            "push payload: `eventId` is not a decimal event id",
        ));
    }
    Ok(wake)
}

/// The notification for a new prompt: the merchant's name and the amount.
pub(crate) fn prompt_text(prompt: &PaymentPrompt) -> NotificationText {
    NotificationText {
        title: merchant_title(prompt.merchant_name.as_deref(), Some(prompt.merchant_ocid)),
        body: amount_text(&prompt.total),
    }
}

/// The notification for a final status: the merchant's name, the status and the amount.
pub(crate) fn receipt_text(receipt: &Receipt) -> NotificationText {
    let status = match receipt.status {
        PaymentStatus::Paid => "Paid",
        PaymentStatus::Declined => "Declined",
        PaymentStatus::Expired => "Expired",
        PaymentStatus::Pending => "Pending",
    };
    NotificationText {
        title: merchant_title(receipt.merchant_name.as_deref(), receipt.merchant_ocid),
        body: match &receipt.amount {
            Some(amount) => format!("{status} {}", amount_text(amount)),
            None => status.to_string(),
        },
    }
}

/// `8.75 USD`: the exact signed decimal and the currency code (the app may format it for the
/// user's locale from the record's `Money`).
fn amount_text(money: &Money) -> String {
    format!("{} {}", money.amount, money.currency)
}

fn merchant_title(name: Option<&str>, ocid: Option<i64>) -> String {
    match (name.map(str::trim).filter(|n| !n.is_empty()), ocid) {
        (Some(name), _) => name.to_string(),
        (None, Some(ocid)) => format!("Merchant {ocid}"),
        (None, None) => "Payment".to_string(),
    }
}

/// Whether the gateway said the session is not there for this device (unknown, another
/// account's, or no longer pending): nothing to show, and nothing learnt about it.
fn is_not_yours(error: &WalletError) -> bool {
    matches!(
        error.gateway_code(),
        Some(GatewayErrorCode::SessionNotFound | GatewayErrorCode::Forbidden)
    )
}

/// The whole `handlePush` flow on `engine`: finishes a pending key rotation and sends unsent
/// decisions (failures only logged: the wake-up is still handled), then fetches what the
/// wake-up names. Runs on the caller's task only: nothing is left running when it returns.
pub(crate) async fn handle(engine: &Engine, wake: PushWakeUp) -> Result<PushEvent> {
    if let Err(e) = engine.finish_pending_rotation().await {
        tracing::warn!(error = %e, "pending key rotation not finished on push");
    }
    if let Err(e) = engine.drain_outbox().await {
        tracing::warn!(error = %e, "outbox drain on push failed");
    }
    let event = match wake.kind {
        PushKind::PaymentRequest => payment_request(engine, &wake.session_id).await,
        PushKind::PaymentStatus => payment_status(engine, &wake.session_id).await,
    };
    match &event {
        Ok(PushEvent::NothingNew) => {
            tracing::info!(session_id = %wake.session_id, event_id = %wake.event_id, kind = wake.kind.as_str(), "push: nothing new")
        }
        Ok(_) => {
            tracing::info!(session_id = %wake.session_id, event_id = %wake.event_id, kind = wake.kind.as_str(), "push handled")
        }
        Err(e) => {
            tracing::warn!(session_id = %wake.session_id, event_id = %wake.event_id, kind = wake.kind.as_str(), error = %e, "push failed")
        }
    }
    event
}

/// `payment_request`: a prompt is returned once. One already stored and announced (by an
/// earlier push, the event stream or a fetch the app showed) is `NothingNew`; a decided or
/// rejected one too.
async fn payment_request(engine: &Engine, session_id: &str) -> Result<PushEvent> {
    if let Some((prompt, status)) = engine.db.prompt(session_id)? {
        return announce(engine, prompt, status);
    }
    if engine.db.rejection(session_id)?.is_some() {
        return Ok(PushEvent::NothingNew);
    }
    let prompt = match engine.fetch_prompt(session_id).await {
        Ok(prompt) => prompt,
        Err(e) if is_not_yours(&e) => return Ok(PushEvent::NothingNew),
        Err(e) => return Err(e),
    };
    // Stored and announced in one commit.
    let (prompt, announced) = engine.accept_and_announce(prompt).await?;
    if !announced {
        return Ok(PushEvent::NothingNew);
    }
    let notification = prompt_text(&prompt);
    Ok(PushEvent::PaymentRequest {
        prompt,
        notification,
    })
}

/// Marks a stored prompt announced; the event when this call was the first to do so (an
/// expired or decided prompt is nothing to show).
fn announce(engine: &Engine, prompt: PaymentPrompt, status: PaymentStatus) -> Result<PushEvent> {
    if status != PaymentStatus::Pending
        || unix_from_time(prompt.expires_at) <= engine.client.now()
        || !engine.db.mark_announced(&prompt.prompt_id)?
    {
        return Ok(PushEvent::NothingNew);
    }
    let notification = prompt_text(&prompt);
    Ok(PushEvent::PaymentRequest {
        prompt,
        notification,
    })
}

/// `payment_status`: the receipt, fetched, proof verified and stored; a still pending one
/// (the push raced a retry) is `NothingNew`.
async fn payment_status(engine: &Engine, session_id: &str) -> Result<PushEvent> {
    let receipt = match engine.payment(session_id.to_string()).await {
        Ok(receipt) => receipt,
        Err(e) if is_not_yours(&e) => return Ok(PushEvent::NothingNew),
        Err(e) => return Err(e),
    };
    if receipt.status == PaymentStatus::Pending {
        return Ok(PushEvent::NothingNew);
    }
    let notification = receipt_text(&receipt);
    Ok(PushEvent::PaymentStatus {
        receipt,
        notification,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fcm_data_and_apns_user_info_give_the_same_wake_up() {
        let fcm = parse_wake_up(
            r#"{"type":"payment_request","sessionId":"0123456789abcdef","eventId":"42"}"#,
        )
        .unwrap();
        let apns = parse_wake_up(
            r#"{"aps":{"alert":{"title":"Payment request","body":"Open to review this payment."},"mutable-content":1,"sound":"default"},"opencharge":{"type":"payment_request","sessionId":"0123456789abcdef","eventId":"42"}}"#,
        )
        .unwrap();
        assert_eq!(fcm, apns);
        assert_eq!(fcm.kind, PushKind::PaymentRequest);
        assert_eq!(fcm.session_id, "0123456789abcdef");
        assert_eq!(fcm.event_id, "42");
    }

    #[test]
    fn malformed_payloads_are_invalid_input() {
        let big = format!(
            r#"{{"type":"payment_request","sessionId":"abc","eventId":"1","pad":"{}"}}"#,
            "x".repeat(MAX_PAYLOAD)
        );
        for payload in [
            "not json",
            "[]",
            "{}",
            r#"{"sessionId":"abc","eventId":"1"}"#,
            r#"{"type":"refund","sessionId":"abc","eventId":"1"}"#,
            r#"{"type":"payment_request","eventId":"1"}"#,
            r#"{"type":"payment_request","sessionId":"a b","eventId":"1"}"#,
            r#"{"type":"payment_request","sessionId":"abc","eventId":"x1"}"#,
            r#"{"type":"payment_request","sessionId":"abc","eventId":1}"#,
            r#"{"aps":{},"opencharge":"payment_request"}"#,
            big.as_str(),
        ] {
            assert!(
                matches!(
                    parse_wake_up(payload),
                    Err(WalletError::InvalidInput { .. })
                ),
                "{payload:.80}"
            );
        }
    }

    #[test]
    fn notification_text_names_the_merchant_and_the_amount() {
        let money = Money::new("8.75", "USD").unwrap();
        assert_eq!(amount_text(&money), "8.75 USD");
        assert_eq!(
            merchant_title(Some("Test Coffee"), Some(500)),
            "Test Coffee"
        );
        assert_eq!(merchant_title(Some("  "), Some(500)), "Merchant 500");
        assert_eq!(merchant_title(None, None), "Payment");
    }
}
