//! `GET /healthz` and `GET /readyz`: the probes of a load balancer, an orchestrator or a
//! monitoring check. `/healthz` says the process serves HTTP (200 `{"status":"ok"}`);
//! `/readyz` says it can take payments now: the database takes a real write (an IMMEDIATE
//! transaction with a probe row, rolled back) and the gateway's key signs a probe that its
//! published public key verifies. When a check fails it answers 503 `NOT_READY` in the error
//! envelope, naming each failed check under `details`. Both are mounted at the root of the
//! main listener (outside the base path) and on the metrics listener, and signed like every
//! answer.

use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use opencharge_protocol::error_code::ErrorCode;
use opencharge_protocol::keys::{PublicKey, VerifyOptions};
use serde_json::{json, Map, Value};

use crate::error::{GatewayError, GatewayResult};
use crate::state::AppState;

/// Path of the liveness probe.
pub const HEALTHZ: &str = "/healthz";
/// Path of the readiness probe.
pub const READYZ: &str = "/readyz";
/// Error code of a 503 from `/readyz`.
pub const NOT_READY: &str = "NOT_READY";
/// Longest `/readyz` waits for another writer's lock before it reports the database busy.
pub const WRITE_PROBE_WAIT: Duration = Duration::from_secs(1);

/// The two probe routes (mounted without the base path).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(HEALTHZ, get(healthz))
        .route(READYZ, get(readyz))
}

/// `GET /healthz`: 200 `{"status":"ok"}` while the process serves requests.
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 `{"status":"ready","checks":{"database":"ok","key":"ok"}}`, or 503
/// `NOT_READY` with each failed check's reason under `details`.
async fn readyz(State(state): State<AppState>) -> GatewayResult<Json<Value>> {
    let mut failed = Map::new();
    if let Err(e) = state.store.check_writable(WRITE_PROBE_WAIT).await {
        failed.insert("database".into(), Value::String(e.0));
    }
    if let Err(reason) = key_probe(&state) {
        failed.insert("key".into(), Value::String(reason));
    }
    if failed.is_empty() {
        return Ok(Json(
            json!({"status": "ready", "checks": {"database": "ok", "key": "ok"}}),
        ));
    }
    let names: Vec<&str> = failed.keys().map(String::as_str).collect();
    let message = format!(
        "not ready: {} check failed ({}); see details, and the gateway's log",
        names.join(" and "),
        failed
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("; ")
    );
    tracing::warn!(%message, "readiness check failed");
    Err(
        GatewayError::new(ErrorCode::Other(NOT_READY.into()), message)
            .with_status(503)
            .with_details(Value::Object(failed)),
    )
}

/// Signs a probe with the gateway's key and verifies it with the published public key.
fn key_probe(state: &AppState) -> Result<(), String> {
    let probe = format!("opencharge readiness probe {}", state.now());
    let signature = state
        .key
        .sign_message(probe.as_bytes())
        .map_err(|e| format!("the gateway key cannot sign: {e}"))?;
    let public = PublicKey::from_hex(&state.public_key_hex)
        .map_err(|e| format!("the published public key is invalid: {e}"))?;
    public
        .verify_message(probe.as_bytes(), &signature.to_hex(), VerifyOptions::STRICT)
        .map_err(|e| {
            format!("a probe signed with the gateway key does not verify with its public key: {e}")
        })
}
