//! Outbound HTTP signed as the merchant: every request carries `X-OC-*` headers over the exact
//! path, query and body bytes sent, goes only to allowed URLs (HTTPS, or plain HTTP to
//! loopback when configured), and reads a bounded body. The machinery is
//! [`opencharge_peer::client`] (re-exported here); this module maps its errors into
//! [`MerchantError`]. A peer's response signature can be checked with
//! [`PeerResponse::verify_signature`].

pub use opencharge_peer::client::{
    check_outbound_url, read_limited, request_target, same_endpoint, url_under_endpoint,
    ClientError, PeerResponse, ResponseSignatureError, Signer, MAX_RESPONSE_BYTES,
};

use crate::error::MerchantError;

impl From<ClientError> for MerchantError {
    /// A refused URL is [`MerchantError::UrlNotAllowed`]; network and size failures are
    /// [`MerchantError::Network`].
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::InvalidUrl(m) => MerchantError::UrlNotAllowed(m),
            ClientError::Network(m) => MerchantError::Network(m),
            too_large @ ClientError::TooLarge(_) => MerchantError::Network(too_large.to_string()),
        }
    }
}

impl From<ResponseSignatureError> for MerchantError {
    /// A bad response signature is [`MerchantError::InvalidResponse`].
    fn from(e: ResponseSignatureError) -> Self {
        MerchantError::InvalidResponse(e.to_string())
    }
}
