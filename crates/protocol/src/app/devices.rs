//! Device bodies: registration (`POST /app/devices`, doc §3.2) and key rotation
//! (`POST /app/devices/rotate`, §3.3).

use serde::{Deserialize, Serialize};

use super::KnownFields;

/// `POST /app/devices` body: binds a device key to the enrollment code's account. `signature`
/// is the new key's signature over the registration message (doc §2.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterDeviceRequest {
    /// The one-time enrollment code (1–128 characters of `[A-Za-z0-9_-]`).
    pub enrollment_code: String,
    /// The device public key: 128 lowercase hex (`X‖Y`, no `04` prefix).
    pub public_key: String,
    /// Unix seconds, within ±300 s of the gateway clock.
    pub timestamp: i64,
    /// 130-hex signature over the registration message.
    pub signature: String,
}

impl KnownFields for RegisterDeviceRequest {
    const FIELDS: &'static [&'static str] =
        &["enrollmentCode", "publicKey", "timestamp", "signature"];
}

/// `POST /app/devices/rotate` body: the new key and its signature over the rotation message
/// (doc §2.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RotateDeviceRequest {
    /// The new public key (128 lowercase hex).
    pub new_public_key: String,
    /// The NEW key's signature over `opencharge-device-rotation\n<oldDeviceId>\n<newPublicKey>`.
    pub new_key_signature: String,
}

impl KnownFields for RotateDeviceRequest {
    const FIELDS: &'static [&'static str] = &["newPublicKey", "newKeySignature"];
}

/// The 200 answer of registration and rotation: the (new) device id and its account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceResponse {
    /// `dev_` + 32 hex, derived from the public key.
    pub device_id: String,
    /// The account the device belongs to.
    pub account_id: String,
}
