//! Small conversions shared by the app-API handlers, the Opencharge handlers and settlement
//! (kept here so none of them has to import another): a typed value as JSON text, and a
//! stored flow under its app-API name.

use opencharge_protocol::app;
use serde::Serialize;

use crate::error::{GatewayError, GatewayResult};
use crate::store::Flow;

/// A typed value as JSON text (what the store keeps for events).
pub(crate) fn to_json_text<T: Serialize>(value: &T) -> GatewayResult<String> {
    serde_json::to_string(value).map_err(GatewayError::internal)
}

/// The app-API name of a stored flow.
pub(crate) fn wire_flow(flow: Flow) -> app::Flow {
    match flow {
        Flow::WalletQr => app::Flow::WalletQr,
        Flow::MerchantQr => app::Flow::MerchantQr,
        Flow::Checkout => app::Flow::Checkout,
    }
}
