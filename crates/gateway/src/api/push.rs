//! The push-token routes of the wallet app API (`docs/app-api.md` §3.14 and §3.15):
//! `PUT /app/devices/push-token` registers the signing device's FCM or APNs token (a token
//! another device registered earlier moves to this one) and `DELETE /app/devices/push-token`
//! removes it. The wake-ups themselves are queued by the store and sent by
//! [`crate::push::worker`].

use axum::extract::State;
use axum::routing::put;
use axum::{Json, Router};
use opencharge_protocol::app::{PushTokenCleared, PushTokenRequest, PushTokenResponse};
use serde_json::Value;

use crate::api::app::{parse_json_body, parse_request};
use crate::auth::DeviceRequest;
use crate::error::{GatewayError, GatewayResult};
use crate::state::AppState;

/// The push-token routes (relative to the base path).
pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/app/devices/push-token",
        put(set_push_token).delete(clear_push_token),
    )
}

/// `PUT /app/devices/push-token`: stores the device's token; 200 echoes what is stored.
async fn set_push_token(
    State(state): State<AppState>,
    req: DeviceRequest,
) -> GatewayResult<Json<PushTokenResponse>> {
    let (_, body): (_, PushTokenRequest) = parse_request(&req.body)?;
    body.validate().map_err(GatewayError::invalid)?;
    let stored = state
        .store
        .set_push_token(
            &req.device.device_id,
            body.provider,
            &body.token,
            body.environment,
            state.now(),
        )
        .await?;
    tracing::info!(
        device_id = %stored.device_id,
        provider = stored.provider.as_str(),
        environment = stored.environment.as_str(),
        "push token registered"
    );
    Ok(Json(PushTokenResponse {
        device_id: stored.device_id,
        provider: stored.provider,
        token: stored.token,
        environment: stored.environment,
        updated_at: stored.updated_at,
    }))
}

/// `DELETE /app/devices/push-token` (no body, or `{}`): removes the device's token.
async fn clear_push_token(
    State(state): State<AppState>,
    req: DeviceRequest,
) -> GatewayResult<Json<PushTokenCleared>> {
    let body: Value = parse_json_body(&req.body)?;
    if body.as_object().is_none_or(|o| !o.is_empty()) {
        return Err(GatewayError::invalid(
            "DELETE /app/devices/push-token takes no body",
        ));
    }
    let cleared = state.store.clear_push_token(&req.device.device_id).await?;
    tracing::info!(device_id = %req.device.device_id, cleared, "push token cleared");
    Ok(Json(PushTokenCleared { cleared }))
}
