//! The URL rules of Opencharge, written once: which URLs a peer or wallet may call
//! ([`check_outbound_url`]), which URLs a scanned QR payload may carry ([`check_payload_url`]),
//! and when a URL lies under a party's published endpoint ([`url_under_endpoint`],
//! [`same_endpoint`]).
//!
//! | rule | outbound | payload |
//! |---|---|---|
//! | `https` | yes | yes |
//! | `http` to a loopback host (`localhost`, `127.0.0.0/8`, `[::1]`) | only when allowed | yes |
//! | host present, no user info | yes | yes |
//! | ASCII only, no whitespace or control characters | (parser normalises) | yes |
//! | no query, no fragment | (allowed) | yes |
//!
//! Every check returns the URL parsed (normalised by the `url` crate: lowercase scheme and
//! host, default port dropped, dot segments resolved), or a typed [`UrlRejection`] that the
//! caller words into its own error.

use std::net::IpAddr;

use url::{Host, Url};

/// Why a URL breaks the rules. The `Display` text completes a sentence that starts with the
/// URL's name, e.g. "order URL must not have a query".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRejection {
    /// The text is empty.
    #[error("is empty")]
    Empty,
    /// The text has non-ASCII characters (payload URLs only).
    #[error("must be ASCII (use punycode and percent-encoding)")]
    NotAscii,
    /// The text has whitespace or control characters (payload URLs only).
    #[error("contains whitespace or control characters")]
    WhitespaceOrControl,
    /// The text does not parse as an absolute URL.
    #[error("is invalid: {0}")]
    Invalid(String),
    /// A scheme other than `https` and `http`.
    #[error("must use https, not {0:?}")]
    Scheme(String),
    /// Plain `http` to a host where it is not allowed.
    #[error("must use https (plain http is only allowed to loopback hosts in local development)")]
    PlainHttp,
    /// No host.
    #[error("has no host")]
    NoHost,
    /// User name or password in the URL.
    #[error("must not contain user info (credentials)")]
    UserInfo,
    /// A `?query` (payload URLs only).
    #[error("must not have a query")]
    Query,
    /// A `#fragment` (payload URLs only).
    #[error("must not have a fragment")]
    Fragment,
}

/// Parses `text` and checks that it may be called: `https`, or `http` to a loopback host when
/// `allow_loopback_http`; a host; no user info. Queries are allowed.
pub fn check_outbound_url(text: &str, allow_loopback_http: bool) -> Result<Url, UrlRejection> {
    if text.is_empty() {
        return Err(UrlRejection::Empty);
    }
    let url = Url::parse(text).map_err(|e| UrlRejection::Invalid(e.to_string()))?;
    check_scheme_host_user(&url, allow_loopback_http)?;
    Ok(url)
}

/// Parses and checks a URL carried in a QR payload (the stricter policy of the module table):
/// ASCII without whitespace or control characters, `https` (or `http` to a loopback host),
/// a host, no user info, no query, no fragment.
pub fn check_payload_url(text: &str) -> Result<Url, UrlRejection> {
    if text.is_empty() {
        return Err(UrlRejection::Empty);
    }
    if !text.is_ascii() {
        return Err(UrlRejection::NotAscii);
    }
    if text
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(UrlRejection::WhitespaceOrControl);
    }
    let url = Url::parse(text).map_err(|e| UrlRejection::Invalid(e.to_string()))?;
    check_scheme_host_user(&url, true)?;
    if url.query().is_some() {
        return Err(UrlRejection::Query);
    }
    if url.fragment().is_some() {
        return Err(UrlRejection::Fragment);
    }
    Ok(url)
}

fn check_scheme_host_user(url: &Url, allow_loopback_http: bool) -> Result<(), UrlRejection> {
    match url.scheme() {
        "https" => {}
        "http" if allow_loopback_http && is_loopback(url) => {}
        "http" => return Err(UrlRejection::PlainHttp),
        other => return Err(UrlRejection::Scheme(other.to_string())),
    }
    if url.host().is_none() {
        return Err(UrlRejection::NoHost);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRejection::UserInfo);
    }
    Ok(())
}

/// Whether the URL's host is a loopback host: `localhost` (any case), an address in
/// `127.0.0.0/8`, or `[::1]`. A name such as `localhost.example` is not.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Normalises a URL for comparison: its parsed form without a trailing `/`; `None` when it
/// does not parse or carries a query or fragment.
fn normalise(url: &str) -> Option<String> {
    let parsed = Url::parse(url).ok()?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return None;
    }
    Some(parsed.as_str().trim_end_matches('/').to_string())
}

/// True if `url` equals `endpoint` or lies below it (`endpoint/...`), after normalisation.
pub fn url_under_endpoint(url: &str, endpoint: &str) -> bool {
    match (normalise(url), normalise(endpoint)) {
        (Some(u), Some(e)) => u == e || u.starts_with(&format!("{e}/")),
        _ => false,
    }
}

/// True if two endpoints are the same after normalisation.
pub fn same_endpoint(a: &str, b: &str) -> bool {
    matches!((normalise(a), normalise(b)), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbound_rules() {
        assert!(check_outbound_url("https://a.example/x", false).is_ok());
        assert!(check_outbound_url("https://a.example/x?y=1", false).is_ok());
        assert!(check_outbound_url("http://127.0.0.1:9/x", true).is_ok());
        assert!(check_outbound_url("http://127.9.8.7:9/x", true).is_ok());
        assert!(check_outbound_url("http://localhost:9/x", true).is_ok());
        assert!(check_outbound_url("http://LocalHost:9/x", true).is_ok());
        assert!(check_outbound_url("http://[::1]:9/x", true).is_ok());
        let cases = [
            ("http://127.0.0.1:9/x", false, UrlRejection::PlainHttp),
            ("http://a.example/x", true, UrlRejection::PlainHttp),
            (
                "http://localhost.evil.example/x",
                true,
                UrlRejection::PlainHttp,
            ),
            ("http://10.0.0.1/x", true, UrlRejection::PlainHttp),
            (
                "ftp://a.example/x",
                true,
                UrlRejection::Scheme("ftp".into()),
            ),
            (
                "javascript:alert(1)",
                true,
                UrlRejection::Scheme("javascript".into()),
            ),
            ("https://u:p@a.example/x", true, UrlRejection::UserInfo),
            ("https://u@a.example/x", true, UrlRejection::UserInfo),
            ("", true, UrlRejection::Empty),
        ];
        for (url, loopback, expected) in cases {
            assert_eq!(check_outbound_url(url, loopback), Err(expected), "{url}");
        }
        assert!(matches!(
            check_outbound_url("not a url", true),
            Err(UrlRejection::Invalid(_))
        ));
        assert!(matches!(
            check_outbound_url("https://", true),
            Err(UrlRejection::Invalid(_))
        ));
    }

    #[test]
    fn payload_rules() {
        let ok = check_payload_url("HTTPS://Pay.Example:443/a/../b").unwrap();
        assert_eq!(ok.as_str(), "https://pay.example/b");
        assert!(check_payload_url("http://localhost:8080/x").is_ok());
        assert!(check_payload_url("http://127.0.0.1/x").is_ok());
        assert!(check_payload_url("http://[::1]/x").is_ok());
        let cases = [
            ("", UrlRejection::Empty),
            ("https://pay.exаmple/x", UrlRejection::NotAscii),
            ("https://pay.example/x ", UrlRejection::WhitespaceOrControl),
            (
                "https://pay.example/\u{0}",
                UrlRejection::WhitespaceOrControl,
            ),
            ("http://pay.example/x", UrlRejection::PlainHttp),
            ("file:///etc/x", UrlRejection::Scheme("file".into())),
            ("https://u:p@pay.example/x", UrlRejection::UserInfo),
            ("https://pay.example/x?a=1", UrlRejection::Query),
            ("https://pay.example/x#top", UrlRejection::Fragment),
        ];
        for (url, expected) in cases {
            assert_eq!(check_payload_url(url), Err(expected), "{url}");
        }
        assert!(matches!(
            check_payload_url("/orders/o1"),
            Err(UrlRejection::Invalid(_))
        ));
    }

    #[test]
    fn messages_complete_a_sentence() {
        assert_eq!(
            format!("order URL {}", UrlRejection::Query),
            "order URL must not have a query"
        );
        assert!(UrlRejection::PlainHttp.to_string().contains("https"));
        assert!(UrlRejection::Scheme("ftp".into())
            .to_string()
            .contains("https"));
    }

    #[test]
    fn endpoint_containment() {
        let e = "https://pg.example/opencharge";
        assert!(url_under_endpoint(
            "https://pg.example/opencharge/orders/create/abc",
            e
        ));
        assert!(url_under_endpoint("https://PG.example/opencharge/", e));
        assert!(!url_under_endpoint(
            "https://pg.example/opencharge-evil/orders/create/abc",
            e
        ));
        assert!(!url_under_endpoint(
            "https://evil.example/opencharge/orders/create/abc",
            e
        ));
        assert!(!url_under_endpoint(
            "https://pg.example/opencharge/x?y=1",
            e
        ));
        assert!(!url_under_endpoint("garbage", e));
        assert!(same_endpoint(e, "https://pg.example:443/opencharge/"));
        assert!(!same_endpoint(e, "http://pg.example/opencharge"));
        assert!(!same_endpoint(e, "not a url"));
    }
}
