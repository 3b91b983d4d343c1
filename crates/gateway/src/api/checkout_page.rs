//! The hosted checkout page (seed 000, "your checkout page"): the HTML a shopper's browser gets
//! at the `checkout_url` of `POST /checkout/create`, its JSON status endpoint, and its two
//! static assets. Documented in `docs/checkout-page.md`.
//!
//! * `GET {endpoint}/checkout/{id}` with `Accept: text/html` (a browser) and no `X-OC-*`
//!   headers is answered here ([`wants_html`], [`page`]); every other client keeps the JSON
//!   view of `api/opencharge.rs`. Unknown sessions are a 404 page, expired ones a 410 page.
//! * `GET {endpoint}/checkout/{id}/status`: `{sessionId, status, expiresAt, now,
//!   redirectUrl?}`, polled by the page (public like the link itself; no cookies).
//! * `GET {endpoint}/checkout-assets/page.css` and `page.js`: the only stylesheet and script,
//!   so the Content-Security-Policy allows no inline code at all.
//!
//! Every merchant-supplied string (name, item names, reference, memo, URLs) goes through
//! [`escape_html`]; redirect targets are followed only when [`allowed_redirect`] accepts them.

use std::fmt::Write as _;

use axum::extract::{Path, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, VARY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use opencharge_peer::client::check_outbound_url;
use opencharge_protocol::error_code::ErrorCode;
use opencharge_protocol::money::{format_amount, items_total, Amount, Currency};
use opencharge_protocol::types::{CheckoutUrls, Order, OrderStatus};
use qrcode::{Color, EcLevel, QrCode};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use url::Url;

use crate::api::status::public_status;
use crate::error::{GatewayError, GatewayResult};
use crate::state::AppState;
use crate::store::{AttachedOrder, Flow, Session};

/// The page's stylesheet, served at `{endpoint}/checkout-assets/page.css`.
pub const PAGE_CSS: &str = include_str!("checkout_page/page.css");

/// The page's script, served at `{endpoint}/checkout-assets/page.js`.
pub const PAGE_JS: &str = include_str!("checkout_page/page.js");

/// The scheme and host of the "Open in wallet" deep link: `opencharge://checkout?url=<the
/// checkout URL, form-urlencoded>`.
pub const DEEP_LINK_PREFIX: &str = opencharge_protocol::qr::CHECKOUT_DEEP_LINK_PREFIX;

/// How often the page polls its status endpoint, milliseconds (also in `page.js`).
pub const POLL_INTERVAL_MS: u64 = 2000;

/// Modules of light border around the QR code (the standard quiet zone).
const QR_QUIET_ZONE: usize = 4;

/// The page routes (relative to the base path, merged by [`crate::api::build_router`]);
/// `GET /checkout/{id}` itself stays in `api/opencharge.rs`, which hands browsers to [`page`].
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/checkout/{id}/status", get(status))
        .route("/checkout-assets/page.css", get(css))
        .route("/checkout-assets/page.js", get(js))
}

// ---------------------------------------------------------------------------------------------
// Content negotiation
// ---------------------------------------------------------------------------------------------

/// Whether a `GET /checkout/{id}` should get the HTML page: the request carries no `X-OC-*`
/// header (peers and devices always get JSON) and its `Accept` header ranks `text/html` (or
/// `application/xhtml+xml`) above zero and at least as high as `application/json`. A missing
/// `Accept` or `*/*` alone means JSON, so API clients that send nothing keep the JSON view.
pub fn wants_html(headers: &HeaderMap) -> bool {
    if headers
        .keys()
        .any(|name| name.as_str().starts_with("x-oc-"))
    {
        return false;
    }
    let mut html_q: Option<f32> = None;
    let mut json_q: Option<f32> = None;
    for value in headers.get_all(axum::http::header::ACCEPT) {
        let Ok(text) = value.to_str() else { continue };
        for range in text.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .filter(|q| (0.0..=1.0).contains(q))
                .unwrap_or(1.0);
            let slot = match media.as_str() {
                "text/html" | "application/xhtml+xml" => &mut html_q,
                "application/json" => &mut json_q,
                _ => continue,
            };
            *slot = Some(slot.map_or(q, |old: f32| old.max(q)));
        }
    }
    match html_q {
        Some(h) if h > 0.0 => json_q.is_none_or(|j| h >= j),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Pure helpers (escaping, money, URLs, QR)
// ---------------------------------------------------------------------------------------------

/// Escapes text for HTML element content and double- or single-quoted attribute values:
/// `&`, `<`, `>`, `"` and `'` become character references; everything else is kept.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Formats an exact amount for display: the currency's minor digits (`format_amount`),
/// thousands separated by commas, a no-break space and the ISO code: `1,234.50 USD`,
/// `15,000 UGX`. Never uses floating point.
pub fn format_money(value: Decimal, currency: &Currency) -> String {
    let plain = format_amount(value, currency);
    let (sign, digits) = match plain.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", plain.as_str()),
    };
    let (int_part, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (digits, None),
    };
    let mut grouped = String::with_capacity(int_part.len() + int_part.len() / 3);
    for (i, c) in int_part.chars().enumerate() {
        if i > 0 && (int_part.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}\u{a0}{}", currency.code()),
        None => format!("{sign}{grouped}\u{a0}{}", currency.code()),
    }
}

/// The "Open in wallet" deep link for a checkout URL: `opencharge://checkout?url=` followed by
/// the URL form-urlencoded. The wallet app maps it to `Wallet::open_checkout(url)`.
pub fn deep_link(checkout_url: &str) -> String {
    opencharge_protocol::qr::checkout_deep_link(checkout_url)
}

/// A merchant-supplied redirect target the page may send the browser to: an absolute `https`
/// URL (or `http` to a loopback host when `allow_loopback_http`, the dev configuration),
/// without user info. Anything else (other schemes such as `javascript:`, plain http to a
/// public host, garbage) is `None`: the page then shows the outcome but never redirects.
pub fn allowed_redirect(url: &str, allow_loopback_http: bool) -> Option<Url> {
    check_outbound_url(url, allow_loopback_http).ok()
}

/// The host (and port, when the URL names one) to show the shopper for a redirect target,
/// e.g. `shop.example` or `127.0.0.1:8080`. Internationalised names stay in their ASCII
/// (punycode) form, so look-alike letters cannot pass for another shop.
pub fn display_host(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// Renders `text` as an inline SVG QR code (error correction M, 4-module quiet zone, black
/// on white, `viewBox` in modules so CSS sizes it): one `<path>` of dark runs, a `<title>`
/// for assistive technology, no script and no external reference. `None` when the text does
/// not fit in a QR code.
pub fn qr_svg(text: &str, title: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).ok()?;
    let size = code.width();
    let colors = code.to_colors();
    let full = size + 2 * QR_QUIET_ZONE;
    let dark = |x: usize, y: usize| -> bool {
        let (Some(cx), Some(cy)) = (x.checked_sub(QR_QUIET_ZONE), y.checked_sub(QR_QUIET_ZONE))
        else {
            return false;
        };
        cx < size && cy < size && colors.get(cy * size + cx) == Some(&Color::Dark)
    };
    let mut svg = String::with_capacity(400 + size * size * 2);
    let _ = write!(
        svg,
        concat!(
            r#"<svg class="qr-code" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {full} {full}" "#,
            r#"role="img" aria-labelledby="qr-title" shape-rendering="crispEdges">"#,
            r#"<title id="qr-title">{title}</title>"#,
            r##"<rect width="{full}" height="{full}" fill="#fff"/><path fill="#000" d=""##
        ),
        full = full,
        title = escape_html(title),
    );
    for y in 0..full {
        let mut x = 0;
        while x < full {
            if !dark(x, y) {
                x += 1;
                continue;
            }
            let start = x;
            while x < full && dark(x, y) {
                x += 1;
            }
            let _ = write!(svg, "M{start} {y}h{run}v1h-{run}z", run = x - start);
        }
    }
    svg.push_str(r#""/></svg>"#);
    Some(svg)
}

/// The Content-Security-Policy of the page: nothing by default; scripts, styles, fetches and
/// images only from the gateway itself (plus the merchant icon's origin, when shown); no
/// inline script or style, no plugins, no forms, no framing, no `<base>`.
pub fn content_security_policy(icon_origin: Option<&str>) -> String {
    let img = match icon_origin {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_string(),
    };
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src {img}; \
         connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

// ---------------------------------------------------------------------------------------------
// Loading a session
// ---------------------------------------------------------------------------------------------

/// What the page shows of one checkout session.
struct Checkout {
    session: Session,
    order: AttachedOrder,
    parsed: Order,
    urls: CheckoutUrls,
    status: OrderStatus,
    now: i64,
}

/// Why a checkout cannot be shown.
enum LoadError {
    /// No checkout session with that id (or one without an order).
    NotFound,
    /// The store or the stored data failed; the detail is logged, never shown.
    Internal(String),
}

async fn load(state: &AppState, id: &str) -> Result<Checkout, LoadError> {
    let session = match state.store.session(id).await {
        Ok(Some(s)) if s.flow == Flow::Checkout => s,
        Ok(_) => return Err(LoadError::NotFound),
        Err(e) => return Err(LoadError::Internal(e.to_string())),
    };
    let Some(order) = session.order.clone() else {
        return Err(LoadError::NotFound);
    };
    let parsed: Order = serde_json::from_str(&order.order_json)
        .map_err(|e| LoadError::Internal(format!("stored order of {id}: {e}")))?;
    let urls: CheckoutUrls = match order.urls_json.as_deref() {
        Some(text) => serde_json::from_str(text).unwrap_or_default(),
        None => CheckoutUrls::default(),
    };
    let now = state.now();
    let status = public_status(&session, now);
    Ok(Checkout {
        session,
        order,
        parsed,
        urls,
        status,
        now,
    })
}

impl Checkout {
    /// The merchant's display name from verified metadata, or `Merchant <ocid>`.
    fn merchant_name(&self) -> String {
        self.order
            .merchant_name
            .clone()
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| format!("Merchant {}", self.order.merchant_ocid))
    }

    /// The allowed redirect for a final status: success when paid, cancel when cancelled or
    /// expired; none while pending or when the merchant's URL is not allowed.
    fn redirect(&self, allow_loopback_http: bool) -> Option<Url> {
        let url = match self.status {
            OrderStatus::Paid => self.urls.success.as_deref(),
            OrderStatus::Cancelled | OrderStatus::Expired => self.urls.cancel.as_deref(),
            OrderStatus::Pending => None,
        }?;
        allowed_redirect(url, allow_loopback_http)
    }
}

/// The path part of the gateway's endpoint (`/opencharge`, or empty), so page links are
/// same-origin and path-absolute whatever host name the browser used.
fn base_path(state: &AppState) -> String {
    Url::parse(&state.endpoint)
        .map(|u| u.path().trim_end_matches('/').to_string())
        .unwrap_or_else(|_| state.config.base_path.clone())
}

// ---------------------------------------------------------------------------------------------
// GET /checkout/{id}/status
// ---------------------------------------------------------------------------------------------

/// `GET /checkout/{id}/status` (public, no cookies): `{sessionId, status, expiresAt, now,
/// redirectUrl?}` with `status` `pending`, `paid`, `cancelled` or `expired`; `redirectUrl` is
/// the merchant's success (paid) or cancel (cancelled, expired) URL, present only when the
/// page may follow it. Unknown sessions: 404 `SESSION_NOT_FOUND`.
async fn status(State(state): State<AppState>, Path(id): Path<String>) -> GatewayResult<Response> {
    let checkout = match load(&state, &id).await {
        Ok(c) => c,
        Err(LoadError::NotFound) => {
            return Err(GatewayError::new(
                ErrorCode::SessionNotFound,
                "checkout session not found",
            ))
        }
        Err(LoadError::Internal(detail)) => return Err(GatewayError::internal(detail)),
    };
    let mut body = json!({
        "sessionId": checkout.session.id,
        "status": checkout.status.as_str(),
        "expiresAt": checkout.session.expires_at,
        "now": checkout.now,
    });
    if let Some(url) = checkout.redirect(state.config.allow_loopback_http) {
        body["redirectUrl"] = Value::from(url.as_str());
    }
    Ok((
        [
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        Json(body),
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------------
// Assets
// ---------------------------------------------------------------------------------------------

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        body,
    )
        .into_response()
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", PAGE_CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", PAGE_JS)
}

// ---------------------------------------------------------------------------------------------
// The HTML page
// ---------------------------------------------------------------------------------------------

/// The HTML answer to a browser's `GET /checkout/{id}`: the checkout page (200, also for a
/// paid or declined session, whose script then sends the shopper on), a "not found" page
/// (404) for unknown ids, an "expired" page (410) for expired sessions, and a generic error
/// page (500, details only in the log) when storage fails.
pub async fn page(state: &AppState, id: &str) -> Response {
    let base = base_path(state);
    match load(state, id).await {
        Ok(checkout) if checkout.status == OrderStatus::Expired => {
            expired_page(state, &base, &checkout)
        }
        Ok(checkout) => checkout_page(state, &base, &checkout),
        Err(LoadError::NotFound) => message_page(
            StatusCode::NOT_FOUND,
            &base,
            "Checkout not found",
            "This checkout link does not exist. Check that it was copied completely, or go \
             back to the shop and start the payment again.",
        ),
        Err(LoadError::Internal(detail)) => {
            tracing::error!(session = %id, %detail, "checkout page could not be loaded");
            message_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                &base,
                "Something went wrong",
                "The checkout page cannot be shown right now. Please try again in a moment.",
            )
        }
    }
}

/// Wraps a page body in the document, with the security headers.
fn html_response(
    status: StatusCode,
    base: &str,
    title: &str,
    body: &str,
    icon_origin: Option<&str>,
) -> Response {
    let document = format!(
        concat!(
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
            "<meta name=\"referrer\" content=\"no-referrer\">\n",
            "<meta name=\"robots\" content=\"noindex, nofollow\">\n",
            "<title>{title}</title>\n",
            "<link rel=\"stylesheet\" href=\"{base}/checkout-assets/page.css\">\n",
            "<script src=\"{base}/checkout-assets/page.js\" defer></script>\n",
            "</head>\n<body>\n{body}</body>\n</html>\n"
        ),
        title = escape_html(title),
        base = escape_html(base),
        body = body,
    );
    let csp = HeaderValue::from_str(&content_security_policy(icon_origin)).unwrap_or_else(|_| {
        HeaderValue::from_static("default-src 'none'; style-src 'self'; script-src 'self'")
    });
    (
        status,
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (CONTENT_SECURITY_POLICY, csp),
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            (X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (VARY, HeaderValue::from_static("Accept")),
        ],
        document,
    )
        .into_response()
}

/// A short page with a heading and one paragraph (not found, errors).
fn message_page(status: StatusCode, base: &str, heading: &str, text: &str) -> Response {
    let body = format!(
        concat!(
            "<main class=\"checkout checkout-message\" id=\"message\">\n",
            "<h1 id=\"page-title\">{heading}</h1>\n<p>{text}</p>\n",
            "</main>\n"
        ),
        heading = escape_html(heading),
        text = escape_html(text),
    );
    html_response(status, base, heading, &body, None)
}

/// The 410 page of an expired session: what it was for, and a link back to the merchant
/// when its cancel URL is allowed.
fn expired_page(state: &AppState, base: &str, checkout: &Checkout) -> Response {
    let merchant = escape_html(&checkout.merchant_name());
    let total = total_text(checkout);
    let mut body = format!(
        concat!(
            "<main class=\"checkout checkout-message\" id=\"message\">\n",
            "<h1 id=\"page-title\">This checkout has expired</h1>\n",
            "<p>The payment of <strong>{total}</strong> to <strong><bdi id=\"merchant-name\">{merchant}</bdi></strong> ",
            "was not completed in time, and nothing was charged. Go back to the shop to start again.</p>\n"
        ),
        total = escape_html(&total),
        merchant = merchant,
    );
    if let Some(url) = checkout.redirect(state.config.allow_loopback_http) {
        let _ = write!(
            body,
            "<p><a class=\"button\" id=\"return-link\" href=\"{href}\">Return to <bdi>{merchant}</bdi></a></p>\n\
             <p class=\"fine\">This link goes to <span class=\"host\">{host}</span>.</p>\n",
            href = escape_html(url.as_str()),
            host = escape_html(&display_host(&url)),
        );
    }
    body.push_str("</main>\n");
    html_response(StatusCode::GONE, base, "Checkout expired", &body, None)
}

/// The order total as display text, e.g. `8.25 USD`; the stored amount string verbatim when
/// it cannot be parsed (it was checked at creation, so this does not happen).
fn total_text(checkout: &Checkout) -> String {
    match (
        Amount::parse(&checkout.order.amount),
        Currency::parse(&checkout.order.currency),
    ) {
        (Ok(amount), Ok(currency)) => format_money(amount.value(), &currency),
        _ => format!("{} {}", checkout.order.amount, checkout.order.currency),
    }
}

/// The merchant icon URL when it may be shown (same rule as redirects), with its origin for
/// the CSP.
fn icon_of(checkout: &Checkout, allow_loopback_http: bool) -> Option<(Url, String)> {
    let url = allowed_redirect(
        checkout.order.merchant_icon.as_deref()?,
        allow_loopback_http,
    )?;
    let origin = url.origin().ascii_serialization();
    (origin != "null").then_some((url, origin))
}

/// The live checkout page.
fn checkout_page(state: &AppState, base: &str, checkout: &Checkout) -> Response {
    let allow_loopback = state.config.allow_loopback_http;
    let name = checkout.merchant_name();
    let merchant = escape_html(&name);
    let currency = Currency::parse(&checkout.order.currency).ok();
    let total = total_text(checkout);
    let checkout_url = format!("{}/checkout/{}", state.endpoint, checkout.session.id);
    let icon = icon_of(checkout, allow_loopback);
    let success = checkout
        .urls
        .success
        .as_deref()
        .and_then(|u| allowed_redirect(u, allow_loopback));
    let cancel = checkout
        .urls
        .cancel
        .as_deref()
        .and_then(|u| allowed_redirect(u, allow_loopback));
    let status = checkout.status.as_str();
    let remaining = (checkout.session.expires_at - checkout.now).max(0);

    let mut body = String::with_capacity(16 * 1024);
    let _ = writeln!(
        body,
        "<main class=\"checkout\" id=\"checkout\" data-state=\"{status}\" \
         data-status-url=\"{base}/checkout/{id}/status\" data-expires-at=\"{expires}\" \
         data-now=\"{now}\" data-poll-ms=\"{poll}\">",
        base = escape_html(base),
        id = escape_html(&checkout.session.id),
        expires = checkout.session.expires_at,
        now = checkout.now,
        poll = POLL_INTERVAL_MS,
    );

    // Merchant and total.
    body.push_str("<header class=\"merchant\">\n");
    match &icon {
        Some((url, _)) => {
            let _ = writeln!(
                body,
                "<img class=\"merchant-icon\" src=\"{}\" alt=\"\" width=\"56\" height=\"56\">",
                escape_html(url.as_str())
            );
        }
        None => {
            let initial: String = name
                .chars()
                .find(|c| c.is_alphanumeric())
                .map(|c| c.to_uppercase().collect())
                .unwrap_or_else(|| "?".into());
            let _ = writeln!(
                body,
                "<span class=\"merchant-icon merchant-initial\" aria-hidden=\"true\">{}</span>",
                escape_html(&initial)
            );
        }
    }
    let _ = write!(
        body,
        "<div class=\"merchant-text\">\n<p class=\"eyebrow\">Pay</p>\n\
         <h1 id=\"page-title\"><bdi id=\"merchant-name\">{merchant}</bdi></h1>\n",
    );
    let (label, reference) = match checkout.parsed.reference.as_deref() {
        Some(r) if !r.is_empty() => ("Reference", r),
        _ => ("Order", checkout.parsed.id.as_str()),
    };
    let _ = writeln!(
        body,
        "<p class=\"reference\">{label} <bdi id=\"order-reference\">{}</bdi></p>\n</div>",
        escape_html(reference)
    );
    let _ = writeln!(
        body,
        "<p class=\"total\"><span class=\"total-label\">Total</span> \
         <span id=\"total\" class=\"total-amount\">{}</span></p>\n</header>",
        escape_html(&total)
    );

    // Status, wallet hand-off and QR code.
    let finished = |state: &str| -> String {
        match state {
            "paid" => format!("Payment received. Returning you to {name}…"),
            "cancelled" => format!("The payment was declined. Returning you to {name}…"),
            "expired" => format!("This checkout has expired. Returning you to {name}…"),
            _ => String::new(),
        }
    };
    let initial_message = match checkout.status {
        OrderStatus::Pending => {
            "Waiting for payment. Open your wallet app or scan the code.".to_string()
        }
        other => match checkout.redirect(allow_loopback) {
            Some(_) => finished(other.as_str()),
            None => stay_message(other).to_string(),
        },
    };
    let _ = write!(
        body,
        "<section class=\"pay\" aria-labelledby=\"pay-heading\">\n\
         <h2 id=\"pay-heading\">Pay with your Opencharge wallet</h2>\n\
         <p id=\"status\" class=\"status\" role=\"status\" aria-live=\"polite\" \
         data-msg-paid=\"{paid}\" data-msg-cancelled=\"{cancelled}\" data-msg-expired=\"{expired}\" \
         data-msg-paid-stay=\"{paid_stay}\" data-msg-cancelled-stay=\"{cancelled_stay}\" \
         data-msg-expired-stay=\"{expired_stay}\" \
         data-msg-error=\"Live status is unavailable. Reload this page to check the payment.\" \
         data-label-continue=\"Continue to {merchant}\">{initial}</p>\n",
        paid = escape_html(&finished("paid")),
        cancelled = escape_html(&finished("cancelled")),
        expired = escape_html(&finished("expired")),
        paid_stay = escape_html(stay_message(OrderStatus::Paid)),
        cancelled_stay = escape_html(stay_message(OrderStatus::Cancelled)),
        expired_stay = escape_html(stay_message(OrderStatus::Expired)),
        initial = escape_html(&initial_message),
    );
    let _ = writeln!(
        body,
        "<p class=\"countdown\">Time left to pay: <time id=\"countdown\" datetime=\"PT{remaining}S\">{}</time></p>",
        countdown_text(remaining)
    );
    let _ = writeln!(
        body,
        "<a class=\"button\" id=\"open-in-wallet\" href=\"{}\">Open in wallet</a>",
        escape_html(&deep_link(&checkout_url))
    );
    let qr = qr_svg(&checkout_url, "QR code of this checkout link").unwrap_or_default();
    let _ = write!(
        body,
        "<figure class=\"qr\" id=\"qr\">\n{qr}\n<figcaption>On a computer? Scan this code with \
         the wallet app on your phone.</figcaption>\n</figure>\n\
         <noscript><p class=\"fine\">Live updates need JavaScript. After paying in your wallet, \
         reload this page.</p></noscript>\n</section>\n"
    );

    // Items.
    body.push_str(
        "<section class=\"order\" aria-labelledby=\"order-heading\">\n\
         <h2 id=\"order-heading\">Order summary</h2>\n",
    );
    let items = checkout.parsed.items.as_deref().unwrap_or_default();
    if !items.is_empty() {
        body.push_str(
            "<table class=\"items\" id=\"items\">\n<caption class=\"visually-hidden\">Items in this order</caption>\n\
             <thead><tr><th scope=\"col\">Item</th><th scope=\"col\" class=\"num\">Qty</th>\
             <th scope=\"col\" class=\"num\">Amount</th></tr></thead>\n<tbody>\n",
        );
        for item in items {
            let (unit, line) = match (&currency, Amount::parse(&item.price)) {
                (Some(c), Ok(price)) => (
                    format_money(price.value(), c),
                    items_total([(item.price.as_str(), item.quantity)])
                        .map(|t| format_money(t, c))
                        .unwrap_or_else(|_| item.price.clone()),
                ),
                _ => (item.price.clone(), String::new()),
            };
            let _ = writeln!(
                body,
                "<tr><th scope=\"row\"><bdi class=\"item-name\">{name}</bdi>\
                 <span class=\"unit\">{unit} each</span></th>\
                 <td class=\"num\">{qty}</td><td class=\"num\">{line}</td></tr>",
                name = escape_html(&item.name),
                unit = escape_html(&unit),
                qty = item.quantity,
                line = escape_html(&line),
            );
        }
        let _ = write!(
            body,
            "</tbody>\n<tfoot><tr><th scope=\"row\" colspan=\"2\">Total</th>\
             <td class=\"num\" id=\"items-total\">{}</td></tr></tfoot>\n</table>\n",
            escape_html(&total)
        );
    } else {
        let _ = writeln!(
            body,
            "<p>One payment of <strong id=\"items-total\">{}</strong>.</p>",
            escape_html(&total)
        );
    }
    if let Some(memo) = checkout.parsed.memo.as_deref().filter(|m| !m.is_empty()) {
        let _ = writeln!(
            body,
            "<p class=\"memo\"><span class=\"visually-hidden\">Note from the merchant: </span><bdi>{}</bdi></p>",
            escape_html(memo)
        );
    }
    body.push_str("</section>\n");

    // Where the shopper goes back to.
    body.push_str("<footer class=\"return\">\n");
    match &success {
        Some(url) => {
            let _ = writeln!(
                body,
                "<p id=\"return-note\">After paying you return to <strong><bdi>{merchant}</bdi></strong> \
                 at <span class=\"host\">{}</span>.</p>",
                escape_html(&display_host(url))
            );
        }
        None => {
            let _ = writeln!(
                body,
                "<p id=\"return-note\">This page will not send you back to <strong><bdi>{merchant}</bdi></strong> \
                 automatically: the shop gave no secure (https) return address. Keep its tab open.</p>",
            );
        }
    }
    match &cancel {
        Some(url) => {
            // Name the cancel URL's host too when it is not the one stated above.
            let host = display_host(url);
            let note = match &success {
                Some(s) if display_host(s) == host => String::new(),
                _ => format!(
                    "<span class=\"host-note\"> (<span class=\"host\">{}</span>)</span>",
                    escape_html(&host)
                ),
            };
            let _ = writeln!(
                body,
                "<p><a class=\"link\" id=\"return-link\" href=\"{href}\">Cancel and return to <bdi>{merchant}</bdi></a>{note}</p>",
                href = escape_html(url.as_str()),
            );
        }
        None => body.push_str("<p><a class=\"link\" id=\"return-link\" hidden></a></p>\n"),
    }
    let _ = writeln!(
        body,
        "<p class=\"fine\">Payment page of {}. Never enter your wallet PIN on a web page.</p>\n</footer>",
        escape_html(&state.config.name)
    );
    body.push_str("</main>\n");

    let title = format!("Pay {name} · {total}");
    html_response(
        StatusCode::OK,
        base,
        &title,
        &body,
        icon.as_ref().map(|(_, origin)| origin.as_str()),
    )
}

/// What the page says for a final status it cannot redirect from.
fn stay_message(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Paid => "Payment received. You can close this page.",
        OrderStatus::Cancelled => "The payment was declined. Nothing was charged.",
        OrderStatus::Expired => "This checkout has expired. Nothing was charged.",
        OrderStatus::Pending => "Waiting for payment.",
    }
}

/// `m:ss` (or `h:mm:ss` from one hour) for the server-rendered countdown.
fn countdown_text(seconds: i64) -> String {
    let s = seconds.max(0);
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_markup_character() {
        assert_eq!(
            escape_html(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(escape_html("Café – 5 € ✓"), "Café – 5 € ✓");
        assert_eq!(escape_html(""), "");
        // Already-escaped text is escaped again, never passed through.
        assert_eq!(escape_html("&lt;"), "&amp;lt;");
    }

    #[test]
    fn money_is_exact_grouped_and_padded() {
        let usd = Currency::parse("USD").unwrap();
        let ugx = Currency::parse("UGX").unwrap();
        let bhd = Currency::parse("BHD").unwrap();
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(format_money(d("8.25"), &usd), "8.25\u{a0}USD");
        assert_eq!(format_money(d("5"), &usd), "5.00\u{a0}USD");
        assert_eq!(format_money(d("1234567.5"), &usd), "1,234,567.50\u{a0}USD");
        assert_eq!(format_money(d("100"), &usd), "100.00\u{a0}USD");
        assert_eq!(format_money(d("15000"), &ugx), "15,000\u{a0}UGX");
        assert_eq!(format_money(d("0.125"), &bhd), "0.125\u{a0}BHD");
        assert_eq!(format_money(d("-1000"), &usd), "-1,000.00\u{a0}USD");
        // Values far beyond f64's exact range stay exact.
        assert_eq!(
            format_money(d("90071992547409931.01"), &usd),
            "90,071,992,547,409,931.01\u{a0}USD"
        );
    }

    #[test]
    fn deep_link_carries_the_url_form_encoded() {
        let link = deep_link("https://api.wallet.example/opencharge/checkout/cs_0a?x=1&y=2");
        assert_eq!(
            link,
            "opencharge://checkout?url=https%3A%2F%2Fapi.wallet.example%2Fopencharge%2Fcheckout%2Fcs_0a%3Fx%3D1%26y%3D2"
        );
        let parsed = Url::parse(&link).unwrap();
        assert_eq!(parsed.scheme(), "opencharge");
        let (key, value) = parsed.query_pairs().next().unwrap();
        assert_eq!(key, "url");
        assert_eq!(
            value,
            "https://api.wallet.example/opencharge/checkout/cs_0a?x=1&y=2"
        );
    }

    #[test]
    fn redirects_only_to_https_or_dev_loopback() {
        assert!(allowed_redirect("https://shop.example/ok", false).is_some());
        assert!(allowed_redirect("http://shop.example/ok", false).is_none());
        assert!(allowed_redirect("http://shop.example/ok", true).is_none());
        assert!(allowed_redirect("http://127.0.0.1:9/ok", false).is_none());
        assert!(allowed_redirect("http://127.0.0.1:9/ok", true).is_some());
        assert!(allowed_redirect("http://localhost/ok", true).is_some());
        for bad in [
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "//shop.example/ok",
            "/relative",
            "https://user:pw@shop.example/",
            "",
        ] {
            assert!(allowed_redirect(bad, true).is_none(), "{bad}");
        }
        let url = allowed_redirect("https://xn--caf-dma.example:8443/ok", false).unwrap();
        assert_eq!(display_host(&url), "xn--caf-dma.example:8443");
        // Host names must be ASCII (the workspace builds `url` without Unicode IDNA: the
        // `idna_adapter` 1.0 pin in the root Cargo.toml): an internationalised name is given
        // in its punycode form, so no look-alike Unicode host reaches the page.
        assert!(allowed_redirect("https://café.example/ok", false).is_none());
    }

    #[test]
    fn html_is_negotiated_for_browsers_only() {
        let headers = |pairs: &[(&str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.append(
                    axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            h
        };
        let browser =
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";
        assert!(wants_html(&headers(&[("accept", browser)])));
        assert!(wants_html(&headers(&[("accept", "text/html")])));
        assert!(wants_html(&headers(&[(
            "accept",
            "application/json;q=0.5, text/html"
        )])));
        assert!(!wants_html(&headers(&[])));
        assert!(!wants_html(&headers(&[("accept", "*/*")])));
        assert!(!wants_html(&headers(&[("accept", "application/json")])));
        assert!(!wants_html(&headers(&[(
            "accept",
            "text/html;q=0.5, application/json"
        )])));
        assert!(!wants_html(&headers(&[("accept", "text/html;q=0")])));
        assert!(!wants_html(&headers(&[
            ("accept", browser),
            ("x-oc-id", "500")
        ])));
        assert!(!wants_html(&headers(&[
            ("accept", browser),
            ("x-oc-device", "dev_1")
        ])));
    }

    #[test]
    fn qr_svg_is_a_self_contained_square() {
        let svg = qr_svg(
            "https://api.wallet.example/opencharge/checkout/cs_4eaba1ee9d51f4ab044e3c93386ceb68",
            "QR <code>",
        )
        .unwrap();
        assert!(svg.starts_with("<svg class=\"qr-code\""));
        assert!(svg.ends_with("</svg>"));
        assert!(svg.contains("<title id=\"qr-title\">QR &lt;code&gt;</title>"));
        assert!(!svg.contains("<script") && !svg.contains("href") && !svg.contains("style"));
        // A QR symbol is 21 + 4k modules wide; the view box adds 2 × 4 modules of quiet zone.
        let view = svg.split("viewBox=\"0 0 ").nth(1).unwrap();
        let (w, rest) = view.split_once(' ').unwrap();
        let h = rest.split('"').next().unwrap();
        assert_eq!(w, h);
        let modules: usize = w.parse::<usize>().unwrap() - 8;
        assert!(
            modules >= 21 && (modules - 21).is_multiple_of(4),
            "{modules}"
        );
        // The quiet zone stays light: no run starts in the first four columns or rows.
        assert!(!svg.contains("M0 ") && !svg.contains(" 0h"));
        assert!(qr_svg(&"x".repeat(5000), "t").is_none());
    }

    #[test]
    fn csp_allows_no_inline_code() {
        let csp = content_security_policy(None);
        assert!(csp.starts_with("default-src 'none';"));
        assert!(csp.contains("script-src 'self';"));
        assert!(csp.contains("style-src 'self';"));
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert!(csp.contains("frame-ancestors 'none'"));
        let with_icon = content_security_policy(Some("https://cdn.shop.example"));
        assert!(with_icon.contains("img-src 'self' https://cdn.shop.example;"));
    }

    #[test]
    fn countdown_formats() {
        assert_eq!(countdown_text(0), "0:00");
        assert_eq!(countdown_text(-5), "0:00");
        assert_eq!(countdown_text(61), "1:01");
        assert_eq!(countdown_text(1800), "30:00");
        assert_eq!(countdown_text(3723), "1:02:03");
    }
}
