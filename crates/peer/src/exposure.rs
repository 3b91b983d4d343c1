//! Refuses development settings on a reachable address: a peer (gateway or merchant) whose
//! `listen` is not a loopback address must not run with `dev_mode` (its `/dev` endpoints create
//! and fund accounts or drive orders for anyone who reaches them) or `allow_loopback_http`,
//! and must not publish a plain `http://` URL for a host other than loopback (signatures
//! protect bodies, not the transport: an `http://` endpoint leaks every order and proof and
//! lets a network attacker drop or delay them). One rule for both peers.

use std::net::SocketAddr;

/// What [`check`] looks at: the settings of one peer's configuration.
#[derive(Debug, Clone, Copy)]
pub struct Exposure<'a> {
    /// The listen address.
    pub listen: SocketAddr,
    /// The configured public URL (`None`: the peer publishes `http://<listen>`).
    pub public_url: Option<&'a str>,
    /// `dev_mode`.
    pub dev_mode: bool,
    /// `allow_loopback_http`.
    pub allow_loopback_http: bool,
}

/// `Ok` when the settings are safe for where the peer listens; otherwise a message that says
/// which setting is refused, why, and what to do instead.
pub fn check(settings: &Exposure<'_>) -> Result<(), String> {
    let listen = settings.listen;
    let reachable = !listen.ip().is_loopback();
    if reachable && settings.dev_mode {
        return Err(format!(
            "dev_mode = true is refused because listen = {listen} is not a loopback address: \
             the /dev endpoints would let anyone who reaches it create and fund accounts. \
             Listen on 127.0.0.1 (or ::1) for development, or set dev_mode = false"
        ));
    }
    if reachable && settings.allow_loopback_http {
        return Err(format!(
            "allow_loopback_http = true is refused because listen = {listen} is not a \
             loopback address: it is a setting for tests and demos on one machine. Listen on \
             127.0.0.1 (or ::1), or set allow_loopback_http = false"
        ));
    }
    match settings.public_url {
        Some(url) => check_public_url(url),
        None if reachable => Err(format!(
            "public_url is missing and listen = {listen} is not a loopback address, so the \
             published endpoint would be http://{listen}. Put a TLS-terminating reverse proxy \
             in front and set public_url to the https:// URL clients use (e.g. \
             public_url = \"https://pay.example.com\"), or listen on 127.0.0.1"
        )),
        None => Ok(()),
    }
}

/// A public URL must be `https://`, or `http://` on a loopback host.
fn check_public_url(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| {
        format!("public_url {raw:?} is not a URL ({e}); write it like \"https://pay.example.com\"")
    })?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(&url) => Ok(()),
        "http" => Err(format!(
            "public_url {raw:?} is plain http:// on a host that is not loopback: clients would \
             send orders and proofs unencrypted. Terminate TLS in a reverse proxy and set \
             public_url to its https:// URL"
        )),
        other => Err(format!(
            "public_url {raw:?} has scheme {other:?}; it must be https:// (or http:// on a \
             loopback host for development)"
        )),
    }
}

/// `true` for `localhost` and loopback IP literals.
fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(listen: &str, public_url: Option<&'static str>) -> Exposure<'static> {
        Exposure {
            listen: listen.parse().unwrap(),
            public_url,
            dev_mode: false,
            allow_loopback_http: false,
        }
    }

    #[test]
    fn loopback_development_settings_are_allowed() {
        for listen in ["127.0.0.1:8700", "[::1]:8700", "127.0.0.1:0"] {
            let dev = Exposure {
                dev_mode: true,
                allow_loopback_http: true,
                ..settings(listen, None)
            };
            assert_eq!(check(&dev), Ok(()), "{listen}");
        }
        let proxied = Exposure {
            dev_mode: true,
            ..settings("127.0.0.1:8700", Some("http://localhost:8700"))
        };
        assert_eq!(check(&proxied), Ok(()));
    }

    #[test]
    fn dev_settings_beyond_loopback_are_refused_with_the_reason() {
        let https = Some("https://pay.example.com");
        for listen in ["0.0.0.0:8700", "[::]:8700", "192.168.1.5:8700"] {
            let dev = Exposure {
                dev_mode: true,
                ..settings(listen, https)
            };
            let e = check(&dev).unwrap_err();
            assert!(
                e.contains("dev_mode") && e.contains("not a loopback"),
                "{e}"
            );
            let http = Exposure {
                allow_loopback_http: true,
                ..settings(listen, https)
            };
            let e = check(&http).unwrap_err();
            assert!(e.contains("allow_loopback_http"), "{e}");
            assert_eq!(check(&settings(listen, https)), Ok(()));
        }
    }

    #[test]
    fn a_plain_http_public_url_needs_a_loopback_host() {
        for bad in [
            "http://pay.example.com",
            "http://0.0.0.0:8700",
            "http://10.0.0.2",
            "ftp://pay.example.com",
            "not a url",
        ] {
            let e = check(&settings("127.0.0.1:8700", Some(bad))).unwrap_err();
            assert!(e.contains("public_url"), "{bad}: {e}");
        }
        let e = check(&settings("0.0.0.0:8700", None)).unwrap_err();
        assert!(
            e.contains("http://0.0.0.0:8700") && e.contains("https://"),
            "{e}"
        );
        for good in [
            "https://pay.example.com",
            "http://127.0.0.1:9",
            "http://[::1]:9",
        ] {
            assert_eq!(
                check(&settings("0.0.0.0:8700", Some(good))),
                Ok(()),
                "{good}"
            );
        }
    }
}
