//! A conversion shared by the app-API handlers, the Opencharge handlers and settlement (kept
//! here so none of them has to import another): a typed value as JSON text.

use serde::Serialize;

use crate::error::{GatewayError, GatewayResult};

/// A typed value as JSON text (what the store keeps for events).
pub(crate) fn to_json_text<T: Serialize>(value: &T) -> GatewayResult<String> {
    serde_json::to_string(value).map_err(GatewayError::internal)
}
