//! Push token registration: `setPushToken` hands the app's FCM or APNs token to the gateway
//! (`PUT /app/devices/push-token`, `docs/app-api.md` §3.14), `clearPushToken` removes it
//! (§3.15), and the core remembers what it registered (database setting
//! [`META_PUSH_TOKEN`]) so the token follows the device key: after `rotateDeviceKey` (or a
//! rotation finished on the next open) it is registered again for the new device id.

use opencharge_protocol::app;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::Retry;
use crate::db::META_PUSH_TOKEN;
use crate::engine::Engine;
use crate::error::{Result, WalletError};
use crate::model::{time_from_unix, PushEnvironment, PushProvider, PushRegistration};

/// The app-API path of the token routes.
const PATH: &str = "/app/devices/push-token";

/// What the core stored after the gateway took a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredPushToken {
    /// The device id the token was registered for.
    device_id: String,
    provider: app::PushProvider,
    token: String,
    environment: app::PushEnvironment,
    updated_at: i64,
}

impl StoredPushToken {
    fn registration(&self) -> PushRegistration {
        PushRegistration {
            provider: self.provider.into(),
            token: self.token.clone(),
            environment: self.environment.into(),
            updated_at: time_from_unix(self.updated_at),
        }
    }
}

impl Engine {
    /// Registers `token` for this device (checked first: an empty, oversized or malformed
    /// token is `InvalidInput` and nothing is sent).
    pub(crate) async fn set_push_token(
        &self,
        provider: PushProvider,
        token: String,
        environment: PushEnvironment,
    ) -> Result<PushRegistration> {
        let request = app::PushTokenRequest {
            provider: provider.into(),
            token,
            environment: environment.into(),
        };
        request.validate().map_err(WalletError::invalid)?;
        self.register_push_token(&request).await
    }

    /// Sends `request` (idempotent: a lost answer is retried), checks the gateway stored
    /// exactly it for this device, and remembers it.
    async fn register_push_token(
        &self,
        request: &app::PushTokenRequest,
    ) -> Result<PushRegistration> {
        let body = serde_json::to_vec(request)
            .map_err(|e| WalletError::internal(format!("cannot encode the push token: {e}")))?;
        let answer: app::PushTokenResponse = self
            .call(Method::PUT, PATH, Some(body), Retry::Idempotent)
            .await?;
        let device_id = self.registered_key()?.device_id.clone();
        if answer.device_id != device_id
            || answer.provider != request.provider
            || answer.token != request.token
            || answer.environment != request.environment
        {
            return Err(WalletError::network(format!(
                "the gateway's answer to PUT {PATH} is not the token this device sent"
            )));
        }
        let stored = StoredPushToken {
            device_id,
            provider: answer.provider,
            token: answer.token,
            environment: answer.environment,
            updated_at: answer.updated_at,
        };
        let json = serde_json::to_string(&stored)
            .map_err(|e| WalletError::internal(format!("cannot encode the push token: {e}")))?;
        self.db.set_meta(META_PUSH_TOKEN, &json)?;
        tracing::info!(
            provider = request.provider.as_str(),
            "push token registered"
        );
        Ok(stored.registration())
    }

    /// Removes this device's token at the gateway and forgets it; whether the gateway had one.
    pub(crate) async fn clear_push_token(&self) -> Result<bool> {
        let answer: app::PushTokenCleared = self
            .call(Method::DELETE, PATH, None, Retry::Idempotent)
            .await?;
        self.db.remove_meta(META_PUSH_TOKEN)?;
        tracing::info!(cleared = answer.cleared, "push token cleared");
        Ok(answer.cleared)
    }

    /// After a key rotation: registers the remembered token again when it was registered for
    /// another device id than the current one. `None` when there is nothing to do.
    pub(crate) async fn follow_push_token(&self) -> Result<Option<PushRegistration>> {
        let Some(stored) = self.stored_push_token()? else {
            return Ok(None);
        };
        if stored.device_id == self.registered_key()?.device_id {
            return Ok(None);
        }
        let request = app::PushTokenRequest {
            provider: stored.provider,
            token: stored.token,
            environment: stored.environment,
        };
        self.register_push_token(&request).await.map(Some)
    }

    /// The remembered registration; a setting that does not parse is a storage error.
    fn stored_push_token(&self) -> Result<Option<StoredPushToken>> {
        self.db
            .meta(META_PUSH_TOKEN)?
            .map(|json| {
                serde_json::from_str(&json).map_err(|e| WalletError::Storage {
                    reason: format!("the stored push token is unreadable: {e}"),
                })
            })
            .transpose()
    }
}
