//! `GET /verify/{txid}` (protocol notes §4.2): a signed request asking about a proof this
//! gateway issued, as a payer's gateway (direct payments) or as a settlement provider (its
//! `/transfer/create` results). Answers `{status: "completed", txid, proof, signature}` to the
//! proof's `from.ocid` and `to.ocid` and to the party its proof webhook went to (the Merchant
//! Gateway of a checkout); everyone else, proofs another gateway issued (a partner's, a
//! Merchant Gateway's receipt we only keep) and unknown txids get 404 `TXID_NOT_FOUND`, the
//! same answer, so nobody learns which txids exist.

use axum::extract::{Path, State};
use axum::Json;
use opencharge_protocol::error_code::ErrorCode;
use opencharge_protocol::types::{VerifyResponse, VerifyStatus};
use serde_json::Value;

use crate::auth::OcRequest;
use crate::error::{GatewayError, GatewayResult};
use crate::state::AppState;

/// `GET /verify/{txid}` (authenticated): see the module comment.
pub async fn verify(
    State(state): State<AppState>,
    Path(txid): Path<String>,
    req: OcRequest,
) -> GatewayResult<Json<VerifyResponse>> {
    let caller = req.caller.ocid;
    let not_found = || {
        GatewayError::new(
            ErrorCode::TxidNotFound,
            format!("no proof {txid:?} issued by this gateway is visible to OCID {caller}"),
        )
    };
    let Some(stored) = state.store.stored_proof(&txid).await? else {
        return Err(not_found());
    };
    let signed: Value = serde_json::from_str(&stored)
        .map_err(|e| GatewayError::internal(format!("stored proof {txid} unreadable: {e}")))?;
    let (Some(proof), Some(signature)) = (
        signed.get("proof"),
        signed.get("signature").and_then(Value::as_str),
    ) else {
        return Err(GatewayError::internal(format!(
            "stored proof {txid} lacks its proof or signature"
        )));
    };
    let ours = proof.get("issuer").and_then(Value::as_u64) == Some(state.config.ocid)
        && proof.get("txid").and_then(Value::as_str) == Some(txid.as_str());
    if !ours {
        return Err(not_found());
    }
    let party = |pointer: &str| proof.pointer(pointer).and_then(Value::as_u64);
    let mut allowed = party("/from/ocid") == Some(caller) || party("/to/ocid") == Some(caller);
    if !allowed {
        allowed = state
            .store
            .webhook_by_txid(&txid)
            .await?
            .is_some_and(|w| w.target_ocid == caller);
    }
    if !allowed {
        tracing::debug!(caller, %txid, "verify refused: the caller is no party to the proof");
        return Err(not_found());
    }
    Ok(Json(VerifyResponse {
        status: VerifyStatus::Completed,
        txid: Some(txid),
        proof: Some(proof.clone()),
        signature: Some(signature.to_owned()),
        amount: None,
        currency: None,
        created_at: None,
        expires_at: None,
    }))
}
