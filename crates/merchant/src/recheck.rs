//! What the merchant does when it cannot know whether the gateway accepted its order: after
//! a `POST /orders/create/{sessionId}` that ended in a network error or timeout, a 5xx, or an
//! answer whose signature or body does not check, it asks the gateway for the order's status
//! at `GET /orders/create/{sessionId}/status` (signed, like every call) before it reports
//! anything. Pending or paid there: the order was accepted (never cancel it). Not found,
//! expired or cancelled: it failed. No trustworthy answer either: the outcome is unknown and
//! the order stays pending ([`MerchantError::OutcomeUnknown`]), never "cancelled".

use std::time::Duration;

use opencharge_protocol::error_code::ErrorCode;
use opencharge_protocol::types::{OrderStatus, OrderStatusResponse};
use reqwest::Method;

use crate::error::MerchantError;
use crate::resolver::Party;
use crate::state::Inner;

/// How many times the status is asked before the outcome is called unknown.
const ATTEMPTS: u32 = 3;

/// Pause between two status requests.
const PAUSE: Duration = Duration::from_millis(300);

/// What the gateway's status says about an order whose POST outcome was unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Recheck {
    /// The gateway holds the order, pending or paid: it was accepted.
    Accepted(OrderStatus),
    /// The gateway does not hold it (not found, or expired or cancelled): it failed.
    Refused(String),
    /// No trustworthy answer: the outcome stays unknown.
    Unknown(String),
}

/// True for failures after which the gateway may still have accepted the order: the request
/// may have arrived (network error, timeout, a 5xx) or an answer arrived that cannot be
/// trusted (bad signature, malformed body, a status URL outside the gateway's endpoint).
pub(crate) fn outcome_unknown(e: &MerchantError) -> bool {
    match e {
        MerchantError::Network(_)
        | MerchantError::Timeout(_)
        | MerchantError::InvalidResponse(_) => true,
        MerchantError::Peer(api) => api.status >= 500,
        _ => false,
    }
}

/// The status URL of the order posted to a wallet session: the session's order URL (from
/// the QR, checked under the gateway's endpoint) + `/status`.
pub(crate) fn session_status_url(order_url: &str) -> String {
    format!("{}/status", order_url.trim_end_matches('/'))
}

impl Inner {
    /// Asks `party` for the status of `order_id` at `status_url`, up to [`ATTEMPTS`] times
    /// while the answer is untrustworthy.
    pub(crate) async fn recheck_order(
        &self,
        party: &Party,
        status_url: &str,
        order_id: &str,
    ) -> Recheck {
        let mut last = Recheck::Unknown("the status was not asked".into());
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(PAUSE).await;
            }
            last = self.ask_status(party, status_url, order_id).await;
            if !matches!(last, Recheck::Unknown(_)) {
                break;
            }
        }
        tracing::warn!(order = %order_id, gateway = party.ocid, outcome = ?last, "order status asked after an unknown outcome");
        last
    }

    /// One signed status request, judged.
    async fn ask_status(&self, party: &Party, status_url: &str, order_id: &str) -> Recheck {
        let response = match self.call(party, Method::GET, status_url, &[]).await {
            Ok(response) => response,
            Err(MerchantError::Peer(api)) if api.code == ErrorCode::OrderNotFound => {
                return Recheck::Refused(format!(
                    "gateway {} has no record of order {order_id} at this session",
                    party.ocid
                ))
            }
            Err(e) => return Recheck::Unknown(e.to_string()),
        };
        let status: OrderStatusResponse = match serde_json::from_slice(&response.body) {
            Ok(status) => status,
            Err(e) => return Recheck::Unknown(format!("status answer: {e}")),
        };
        if status.order_id != order_id {
            return Recheck::Refused(format!(
                "the session holds another order ({}), not {order_id}",
                status.order_id
            ));
        }
        match status.status {
            OrderStatus::Pending | OrderStatus::Paid => Recheck::Accepted(status.status),
            other => Recheck::Refused(format!(
                "gateway {} reports order {order_id} {}",
                party.ocid,
                other.as_str()
            )),
        }
    }
}
