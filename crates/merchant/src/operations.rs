//! What a running merchant does, shared by [`RunningMerchant`](crate::RunningMerchant)'s
//! methods and the HTTP handlers (the `/dev` control API calls exactly these): read, cancel
//! and wait for orders ([`OrderRecord`]), present order QRs, post orders to wallet sessions,
//! poll a gateway's status URL and open hosted checkouts.

use std::time::Duration;

use opencharge_protocol::qr::{self, MerchantOrderQr, QrPayload};
use opencharge_protocol::types::{
    capability, CheckoutCreateResponse, Order, OrderSessionResponse, OrderStatus,
    OrderStatusResponse, SignedProof, StatusUrls,
};
use opencharge_protocol::ProtocolError;
use reqwest::Method;
use serde_json::{json, Value};

use crate::client::{same_endpoint, url_under_endpoint, PeerResponse};
use crate::error::MerchantError;
use crate::recheck::{outcome_unknown, session_status_url, Recheck};
use crate::resolver::{resolve_error, Party};
use crate::state::{public_status, Inner};
use crate::store::{CancelOutcome, StoredOrder};

/// Everything the merchant knows about one of its orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    /// The order id.
    pub order_id: String,
    /// `pending`, `paid`, `cancelled`, or `expired` (pending past `expiresAt`).
    pub status: OrderStatus,
    /// The signed order.
    pub order: Order,
    /// The merchant's signature over it.
    pub signature: String,
    /// The exact total as signed.
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Transaction id of the proof that paid it.
    pub txid: Option<String>,
    /// OCID that issued that proof.
    pub issuer: Option<u64>,
    /// When the transfer completed (the proof's timestamp).
    pub paid_at: Option<i64>,
    /// The proof that paid it, exactly as received.
    pub proof: Option<SignedProof>,
    /// The gateway the order was posted to or opened a checkout at.
    pub gateway_ocid: Option<u64>,
    /// The gateway's status URL (wallet session flow).
    pub status_url: Option<String>,
    /// The hosted checkout URL (checkout flow).
    pub checkout_url: Option<String>,
}

/// The operations behind [`RunningMerchant`]'s methods, shared with the HTTP handlers (the
/// `/dev` control API calls exactly these).
impl Inner {
    /// See [`RunningMerchant::cancel_order`].
    pub(crate) fn cancel_order(&self, order_id: &str) -> Result<OrderRecord, MerchantError> {
        match self.store.cancel(order_id)? {
            CancelOutcome::Cancelled => self.require(order_id),
            CancelOutcome::AlreadyPaid => Err(MerchantError::OrderNotPayable {
                id: order_id.to_string(),
                reason: "it is already paid and cannot be cancelled".into(),
            }),
            CancelOutcome::NotFound => Err(MerchantError::OrderNotFound(order_id.to_string())),
        }
    }

    /// See [`RunningMerchant::order`].
    pub(crate) fn order_record(
        &self,
        order_id: &str,
    ) -> Result<Option<OrderRecord>, MerchantError> {
        match self.store.order(order_id)? {
            Some(stored) => record_of(&stored, self.now()).map(Some),
            None => Ok(None),
        }
    }

    /// The order, or [`MerchantError::OrderNotFound`].
    pub(crate) fn require(&self, order_id: &str) -> Result<OrderRecord, MerchantError> {
        self.order_record(order_id)?
            .ok_or_else(|| MerchantError::OrderNotFound(order_id.to_string()))
    }

    /// A pending, unexpired order, or why it cannot be paid.
    fn payable(&self, order_id: &str) -> Result<StoredOrder, MerchantError> {
        let stored = self
            .store
            .order(order_id)?
            .ok_or_else(|| MerchantError::OrderNotFound(order_id.to_string()))?;
        match public_status(&stored, self.now()) {
            OrderStatus::Pending => Ok(stored),
            other => Err(MerchantError::OrderNotPayable {
                id: order_id.to_string(),
                reason: format!("its status is {}", other.as_str()),
            }),
        }
    }

    /// See [`RunningMerchant::wait_paid`].
    pub(crate) async fn wait_paid(
        &self,
        order_id: &str,
        timeout: Duration,
    ) -> Result<OrderRecord, MerchantError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Register for the notification before reading, so a payment that lands between
            // the read and the wait is not missed.
            let notified = self.paid.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let record = self.require(order_id)?;
            if record.status == OrderStatus::Paid {
                return Ok(record);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(MerchantError::Timeout(format!(
                    "order {order_id} not paid within {timeout:?} (status {})",
                    record.status.as_str()
                )));
            }
        }
    }

    /// See [`RunningMerchant::order_qr`].
    pub(crate) fn order_qr(&self, order_id: &str) -> Result<String, MerchantError> {
        let stored = self.payable(order_id)?;
        let qr = MerchantOrderQr::new(
            self.config.ocid,
            &self.endpoint,
            order_id,
            Some(stored.expires_at),
        )?;
        Ok(qr.to_json_string())
    }

    /// Resolves a gateway through the directory and returns it with its endpoint.
    async fn gateway(&self, ocid: u64) -> Result<(Party, String), MerchantError> {
        let party = self
            .resolver
            .resolve(ocid)
            .await
            .map_err(|e| resolve_error(ocid, e))?;
        let endpoint = party
            .endpoint
            .clone()
            .ok_or_else(|| MerchantError::Resolve {
                ocid,
                reason: "its metadata publishes no endpoint".into(),
            })?;
        Ok((party, endpoint))
    }

    /// Sends a signed request to `party` and returns its 2xx body, after checking the
    /// response signature when present. A non-2xx answer is [`MerchantError::Peer`].
    pub(crate) async fn call(
        &self,
        party: &Party,
        method: Method,
        url: &str,
        body: &[u8],
    ) -> Result<PeerResponse, MerchantError> {
        let response = self.signer().send(method, url, body, self.now()).await?;
        if !response
            .verify_signature(party.ocid, &party.public_key, self.now())
            .inspect_err(
                |e| tracing::warn!(peer = party.ocid, error = %e, "bad response signature"),
            )?
        {
            tracing::debug!(peer = party.ocid, "response carries no signature");
        }
        if !response.is_success() {
            return Err(MerchantError::Peer(
                opencharge_protocol::error_code::ApiError::from_response(
                    response.status,
                    &response.body,
                ),
            ));
        }
        Ok(response)
    }

    /// See [`RunningMerchant::post_to_wallet_session`].
    pub(crate) async fn post_to_wallet_session(
        &self,
        qr_text: &str,
        order_id: &str,
    ) -> Result<OrderSessionResponse, MerchantError> {
        let payload = qr::parse_payload(qr_text, self.now()).map_err(|e| match e {
            ProtocolError::Expired(m) => MerchantError::Expired(m),
            other => MerchantError::InvalidQr(other.to_string()),
        })?;
        let QrPayload::WalletSession(session) = payload else {
            return Err(MerchantError::InvalidQr(
                "not a wallet session QR (expected {\"ocid\",\"order\":\"…/orders/create/<session>\",\"expiresAt\"})".into(),
            ));
        };
        let (party, endpoint) = self.gateway(session.ocid()).await?;
        if !same_endpoint(session.endpoint(), &endpoint) {
            return Err(MerchantError::UrlNotAllowed(format!(
                "the QR's order URL {} is not under gateway {}'s published endpoint {endpoint}",
                session.order_url(),
                party.ocid
            )));
        }
        let stored = self.payable(order_id)?;
        let envelope = self.signed_envelope(&stored)?;
        let body = serde_json::to_vec(&envelope)
            .map_err(|e| MerchantError::InvalidOrder(e.to_string()))?;
        let posted = match self
            .call(&party, Method::POST, session.order_url(), &body)
            .await
        {
            Ok(response) => session_answer(&response.body, &endpoint),
            Err(e) => Err(e),
        };
        let error = match posted {
            Ok(answer) => {
                self.store
                    .set_submission(order_id, party.ocid, &answer.urls.status)?;
                tracing::info!(order = %order_id, gateway = party.ocid, session = %session.session_id(), "order posted to wallet session");
                return Ok(answer);
            }
            Err(e) if outcome_unknown(&e) => e,
            Err(e) => return Err(e),
        };
        // The gateway may have accepted the order: ask before reporting anything.
        tracing::warn!(order = %order_id, gateway = party.ocid, error = %error, "outcome of the order post unknown; asking the gateway");
        let status_url = session_status_url(session.order_url());
        match self.recheck_order(&party, &status_url, order_id).await {
            Recheck::Accepted(status) => {
                self.store
                    .set_submission(order_id, party.ocid, &status_url)?;
                tracing::info!(order = %order_id, gateway = party.ocid, status = status.as_str(), "the gateway holds the order although its answer was lost");
                Ok(OrderSessionResponse {
                    urls: StatusUrls { status: status_url },
                })
            }
            Recheck::Refused(reason) => {
                tracing::info!(order = %order_id, %reason, "the order was not accepted");
                Err(error)
            }
            Recheck::Unknown(reason) => {
                self.store
                    .set_submission(order_id, party.ocid, &status_url)?;
                Err(MerchantError::OutcomeUnknown {
                    order_id: order_id.to_string(),
                    reason: format!("{error}; asking the order's status failed too: {reason}"),
                })
            }
        }
    }

    /// See [`RunningMerchant::gateway_status`].
    pub(crate) async fn gateway_status(
        &self,
        order_id: &str,
    ) -> Result<OrderStatusResponse, MerchantError> {
        let record = self.require(order_id)?;
        let (Some(gateway), Some(url)) = (record.gateway_ocid, record.status_url) else {
            return Err(MerchantError::OrderNotPayable {
                id: order_id.to_string(),
                reason: "it was not posted to a wallet session".into(),
            });
        };
        let (party, endpoint) = self.gateway(gateway).await?;
        if !url_under_endpoint(&url, &endpoint) {
            return Err(MerchantError::UrlNotAllowed(format!(
                "status URL {url} is not under {endpoint}"
            )));
        }
        let response = self.call(&party, Method::GET, &url, &[]).await?;
        serde_json::from_slice(&response.body)
            .map_err(|e| MerchantError::InvalidResponse(format!("status answer: {e}")))
    }

    /// See [`RunningMerchant::create_checkout`].
    pub(crate) async fn create_checkout(
        &self,
        payment_gateway_ocid: u64,
        order_id: &str,
        success_url: &str,
        cancel_url: &str,
    ) -> Result<CheckoutCreateResponse, MerchantError> {
        for url in [success_url, cancel_url] {
            url::Url::parse(url)
                .map_err(|e| MerchantError::UrlNotAllowed(format!("redirect URL {url:?}: {e}")))?;
        }
        let (party, endpoint) = self.gateway(payment_gateway_ocid).await?;
        if !party.has_capability(capability::CHECKOUT_CREATE) {
            return Err(MerchantError::Resolve {
                ocid: party.ocid,
                reason: "it does not advertise checkout.create".into(),
            });
        }
        let stored = self.payable(order_id)?;
        let order: Value = serde_json::from_str(&stored.order_json)
            .map_err(|e| MerchantError::Store(format!("stored order {order_id}: {e}")))?;
        let body = json!({
            "order": order,
            "signature": stored.signature,
            "merchantOcid": self.config.ocid,
            "urls": {"success": success_url, "cancel": cancel_url},
        });
        let bytes =
            serde_json::to_vec(&body).map_err(|e| MerchantError::InvalidOrder(e.to_string()))?;
        let url = format!("{endpoint}/checkout/create");
        let response = self.call(&party, Method::POST, &url, &bytes).await?;
        let answer: CheckoutCreateResponse = serde_json::from_slice(&response.body)
            .map_err(|e| MerchantError::InvalidResponse(format!("checkout answer: {e}")))?;
        if !url_under_endpoint(&answer.checkout_url, &endpoint) {
            return Err(MerchantError::InvalidResponse(format!(
                "checkout URL {} is not under the gateway's endpoint {endpoint}",
                answer.checkout_url
            )));
        }
        self.store
            .set_checkout(order_id, party.ocid, &answer.checkout_url)?;
        tracing::info!(order = %order_id, gateway = party.ocid, session = %answer.session_id, "checkout created");
        Ok(answer)
    }
}

/// The gateway's answer to an order post, checked: `{urls: {status}}` with the status URL
/// under the gateway's endpoint.
fn session_answer(body: &[u8], endpoint: &str) -> Result<OrderSessionResponse, MerchantError> {
    let answer: OrderSessionResponse = serde_json::from_slice(body)
        .map_err(|e| MerchantError::InvalidResponse(format!("session answer: {e}")))?;
    if !url_under_endpoint(&answer.urls.status, endpoint) {
        return Err(MerchantError::InvalidResponse(format!(
            "status URL {} is not under the gateway's endpoint {endpoint}",
            answer.urls.status
        )));
    }
    Ok(answer)
}

fn record_of(stored: &StoredOrder, now: i64) -> Result<OrderRecord, MerchantError> {
    let order: Order = serde_json::from_str(&stored.order_json)
        .map_err(|e| MerchantError::Store(format!("stored order {}: {e}", stored.id)))?;
    let proof = match &stored.proof_json {
        Some(text) => Some(
            serde_json::from_str::<SignedProof>(text)
                .map_err(|e| MerchantError::Store(format!("stored proof of {}: {e}", stored.id)))?,
        ),
        None => None,
    };
    Ok(OrderRecord {
        order_id: stored.id.clone(),
        status: public_status(stored, now),
        order,
        signature: stored.signature.clone(),
        amount: stored.amount.clone(),
        currency: stored.currency.clone(),
        created_at: stored.created_at,
        expires_at: stored.expires_at,
        txid: stored.txid.clone(),
        issuer: stored.issuer,
        paid_at: stored.paid_at,
        proof,
        gateway_ocid: stored.gateway_ocid,
        status_url: stored.status_url.clone(),
        checkout_url: stored.checkout_url.clone(),
    })
}
