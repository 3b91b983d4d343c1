//! Push wake-ups: the token registration bodies (`PUT /app/devices/push-token` and
//! `DELETE /app/devices/push-token`, doc §3.14 and §3.15) and the wake-up the gateway sends through FCM
//! and APNs (doc §4.5). A wake-up names only the event kind, the session id and the event id:
//! push providers can read payloads, so amounts, merchant names and items never go in it; the
//! app fetches the prompt over the device-signed API and verifies it.

use serde::{Deserialize, Serialize};

use super::KnownFields;

/// Longest push token accepted, bytes.
pub const MAX_PUSH_TOKEN_LEN: usize = 4096;

/// Key under which an APNs payload carries the [`PushWakeUp`] (beside `aps`). FCM data
/// messages carry its fields at the top level of `data`.
pub const PUSH_PAYLOAD_KEY: &str = "opencharge";

/// The push service a token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushProvider {
    /// `fcm`: Firebase Cloud Messaging (Android).
    Fcm,
    /// `apns`: Apple Push Notification service (iOS).
    Apns,
}

impl PushProvider {
    /// The wire name (`fcm`, `apns`).
    pub fn as_str(self) -> &'static str {
        match self {
            PushProvider::Fcm => "fcm",
            PushProvider::Apns => "apns",
        }
    }

    /// Parses a wire name; `None` for anything else.
    pub fn parse(name: &str) -> Option<PushProvider> {
        match name {
            "fcm" => Some(PushProvider::Fcm),
            "apns" => Some(PushProvider::Apns),
            _ => None,
        }
    }
}

/// Which APNs host the token was issued for. FCM tokens are always `production`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushEnvironment {
    /// `production`: App Store and TestFlight builds (and every FCM token).
    #[default]
    Production,
    /// `sandbox`: development builds signed with a development provisioning profile.
    Sandbox,
}

impl PushEnvironment {
    /// The wire name (`production`, `sandbox`).
    pub fn as_str(self) -> &'static str {
        match self {
            PushEnvironment::Production => "production",
            PushEnvironment::Sandbox => "sandbox",
        }
    }

    /// Parses a wire name; `None` for anything else.
    pub fn parse(name: &str) -> Option<PushEnvironment> {
        match name {
            "production" => Some(PushEnvironment::Production),
            "sandbox" => Some(PushEnvironment::Sandbox),
            _ => None,
        }
    }
}

/// `PUT /app/devices/push-token` body: the signing device's push token (replaces any earlier
/// one of the device; a token registered by another device moves to this one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushTokenRequest {
    /// `fcm` or `apns`.
    pub provider: PushProvider,
    /// The token the provider gave the app (FCM registration token, APNs device token as hex).
    pub token: String,
    /// `production` (default) or `sandbox` (APNs development builds).
    #[serde(default)]
    pub environment: PushEnvironment,
}

impl KnownFields for PushTokenRequest {
    const FIELDS: &'static [&'static str] = &["provider", "token", "environment"];
}

impl PushTokenRequest {
    /// Checks the token: 1..=[`MAX_PUSH_TOKEN_LEN`] bytes of visible ASCII (no spaces); an
    /// APNs token is an even number (at least 16) of hex digits; an FCM token is always
    /// `production`. The error is a sentence for the `message` of a 400.
    pub fn validate(&self) -> Result<(), String> {
        let token = &self.token;
        if token.is_empty() {
            return Err("token must not be empty".into());
        }
        if token.len() > MAX_PUSH_TOKEN_LEN {
            return Err(format!(
                "token is {} bytes; at most {MAX_PUSH_TOKEN_LEN} are accepted",
                token.len()
            ));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("token must be visible ASCII without spaces".into());
        }
        match self.provider {
            PushProvider::Apns => {
                if token.len() < 16
                    || !token.len().is_multiple_of(2)
                    || !token.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    return Err("an APNs token is the device token as hex digits".into());
                }
            }
            PushProvider::Fcm => {
                if self.environment != PushEnvironment::Production {
                    return Err("FCM tokens have no sandbox; use environment \"production\"".into());
                }
            }
        }
        Ok(())
    }
}

/// The 200 answer of `PUT /app/devices/push-token`: what is stored now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushTokenResponse {
    /// The device the token belongs to.
    pub device_id: String,
    /// `fcm` or `apns`.
    pub provider: PushProvider,
    /// The stored token.
    pub token: String,
    /// `production` or `sandbox`.
    pub environment: PushEnvironment,
    /// Unix seconds of the registration.
    pub updated_at: i64,
}

/// The 200 answer of `DELETE /app/devices/push-token`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushTokenCleared {
    /// `true` when a token was removed, `false` when the device had none.
    pub cleared: bool,
}

/// What a wake-up is about (`type` of [`PushWakeUp`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushKind {
    /// `payment_request`: a prompt waits for the user's decision.
    PaymentRequest,
    /// `payment_status`: a session reached its final status (paid or declined).
    PaymentStatus,
}

impl PushKind {
    /// The wire name (`payment_request`, `payment_status`), equal to the event kind.
    pub fn as_str(self) -> &'static str {
        match self {
            PushKind::PaymentRequest => "payment_request",
            PushKind::PaymentStatus => "payment_status",
        }
    }

    /// Parses a wire name; `None` for anything else.
    pub fn parse(name: &str) -> Option<PushKind> {
        match name {
            "payment_request" => Some(PushKind::PaymentRequest),
            "payment_status" => Some(PushKind::PaymentStatus),
            _ => None,
        }
    }
}

/// The wake-up: FCM `data` (all values strings, as FCM requires) and the APNs payload's
/// `opencharge` object carry exactly these three fields, e.g.
/// `{"type":"payment_request","sessionId":"ses_…","eventId":"42"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushWakeUp {
    /// `payment_request` or `payment_status`.
    #[serde(rename = "type")]
    pub kind: PushKind,
    /// The session (prompt) the event is about.
    pub session_id: String,
    /// The id of the event in `GET /app/events` (decimal, as a string).
    pub event_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(
        provider: PushProvider,
        token: &str,
        environment: PushEnvironment,
    ) -> PushTokenRequest {
        PushTokenRequest {
            provider,
            token: token.into(),
            environment,
        }
    }

    #[test]
    fn tokens_are_checked_per_provider() {
        let apns = "a1".repeat(32);
        assert!(request(PushProvider::Apns, &apns, PushEnvironment::Sandbox)
            .validate()
            .is_ok());
        assert!(request(
            PushProvider::Fcm,
            "fcm:APA91b-x_y",
            PushEnvironment::Production
        )
        .validate()
        .is_ok());
        for (provider, token, env) in [
            (PushProvider::Fcm, "", PushEnvironment::Production),
            (PushProvider::Fcm, "has space", PushEnvironment::Production),
            (PushProvider::Fcm, "ok", PushEnvironment::Sandbox),
            (
                PushProvider::Apns,
                "not-hex-not-hex-not-hex",
                PushEnvironment::Production,
            ),
            (PushProvider::Apns, "abc", PushEnvironment::Production),
        ] {
            assert!(
                request(provider, token, env).validate().is_err(),
                "{token:?}"
            );
        }
        let long = "a".repeat(MAX_PUSH_TOKEN_LEN + 1);
        assert!(
            request(PushProvider::Fcm, &long, PushEnvironment::Production)
                .validate()
                .is_err()
        );
    }

    #[test]
    fn wire_shapes() {
        let body: PushTokenRequest =
            serde_json::from_str(r#"{"provider":"apns","token":"00ff00ff00ff00ff"}"#).unwrap();
        assert_eq!(body.environment, PushEnvironment::Production);
        assert!(
            serde_json::from_str::<PushTokenRequest>(r#"{"provider":"gcm","token":"x"}"#).is_err()
        );
        let wake = PushWakeUp {
            kind: PushKind::PaymentRequest,
            session_id: "ses_1".into(),
            event_id: "42".into(),
        };
        assert_eq!(
            serde_json::to_string(&wake).unwrap(),
            r#"{"type":"payment_request","sessionId":"ses_1","eventId":"42"}"#
        );
    }
}
