//! The gateway's HTTP error: [`opencharge_peer::HttpError`] (an Opencharge `ApiError` that
//! renders as the signed `{"error": {...}}` envelope), under its gateway name, plus the
//! conversion of storage failures into it.

use crate::store::StoreError;

pub use opencharge_peer::error::{HttpError as GatewayError, HttpResult as GatewayResult};

impl From<StoreError> for GatewayError {
    /// Storage failures are 500 `INTERNAL_ERROR` (the detail goes to the log only).
    fn from(e: StoreError) -> Self {
        GatewayError::internal(e)
    }
}
