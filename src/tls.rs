//! The rustls client configuration of the core: which certificate authorities are trusted (the
//! platform's verifier, or Mozilla's roots compiled in on Android, plus
//! `WalletConfig.trustedCertificates`), the optional public-key pins of the gateway host, and
//! the mapping of a refused certificate to `WalletError::Tls`. docs/adr/0007-tls-trust.md
//! says why trust is chosen this way. The trust anchors are loaded once per process.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::config::WalletConfig;
use crate::error::{Result, TlsFailure, WalletError};

/// The prefix of a pin in `WalletConfig.pinnedGatewayKeys` (OkHttp's `CertificatePinner` form).
const PIN_PREFIX: &str = "sha256/";

/// The TLS client configuration for a wallet whose gateway is `gateway_url` (validated): the
/// trust anchors, `config.trusted_certificates` and, when `config.pinned_gateway_keys` is not
/// empty, the pins of the gateway's host. Malformed certificates or pins are refused with
/// [`WalletError::InvalidInput`] naming the entry.
pub(crate) fn client_config(
    config: &WalletConfig,
    gateway_url: &url::Url,
) -> Result<rustls::ClientConfig> {
    let extra = trusted_certificates(&config.trusted_certificates)?;
    let pins = parse_pins(&config.pinned_gateway_keys)?;
    static SHARED: SharedVerifier = SharedVerifier::new();
    let (provider, mut verifier) = SHARED.get(extra, base_verifier)?;
    if !pins.is_empty() {
        verifier = Arc::new(PinnedVerifier {
            inner: verifier,
            host: server_name(gateway_url)?,
            pins,
        });
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| WalletError::internal(format!("cannot set up TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // What reqwest itself offers without its `http2` feature.
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

/// A verifier built by `base_verifier` from the trusted certificates `extra`.
type BuildVerifier =
    fn(Vec<CertificateDer<'static>>, Arc<CryptoProvider>) -> Result<Arc<dyn ServerCertVerifier>>;

/// The crypto provider and the verifier over the platform's trust anchors plus the extra
/// trusted certificates, built once per process and shared by every wallet opened with the
/// same certificates (and by both HTTP clients of each). Building it reads and parses the
/// system's CA store on Linux (most of a warm `Wallet.open`), the compiled-in roots on Android.
/// One entry is kept: a process opens its wallets with one configuration, and other
/// certificates replace it. The system's roots are read again when the process restarts.
struct SharedVerifier {
    entry: Mutex<Option<VerifierEntry>>,
}

/// The certificates a verifier was built with, its provider and the verifier.
type VerifierEntry = (
    Vec<CertificateDer<'static>>,
    Arc<CryptoProvider>,
    Arc<dyn ServerCertVerifier>,
);

impl SharedVerifier {
    const fn new() -> SharedVerifier {
        SharedVerifier {
            entry: Mutex::new(None),
        }
    }

    /// The provider and verifier for `extra`: the shared ones when they were built with the
    /// same certificates, otherwise new ones from `build`, which then become the shared ones.
    /// The lock is held while building, so wallets opened at once load the roots once.
    fn get(
        &self,
        extra: Vec<CertificateDer<'static>>,
        build: BuildVerifier,
    ) -> Result<(Arc<CryptoProvider>, Arc<dyn ServerCertVerifier>)> {
        let mut entry = self
            .entry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((built_with, provider, verifier)) = entry.as_ref() {
            if *built_with == extra {
                return Ok((provider.clone(), verifier.clone()));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = build(extra.clone(), provider.clone())?;
        *entry = Some((extra, provider.clone(), verifier.clone()));
        Ok((provider, verifier))
    }
}

/// The platform's verifier (Apple Security framework, Windows CryptoAPI, the system's CA
/// store on Linux) with `extra` trusted in addition.
#[cfg(not(target_os = "android"))]
fn base_verifier(
    extra: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>> {
    let verifier = if extra.is_empty() {
        rustls_platform_verifier::Verifier::new(provider)
    } else {
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider)
    }
    .map_err(|e| {
        WalletError::internal(format!(
            "cannot load the system's certificate authorities: {e}"
        ))
    })?;
    Ok(Arc::new(verifier))
}

/// On Android: Mozilla's root program compiled in (`webpki-roots`) plus `extra`, checked by
/// webpki. The platform verifier would need a JNI initialisation with an Android `Context`.
#[cfg(target_os = "android")]
fn base_verifier(
    extra: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>> {
    webpki_verifier(
        webpki_roots::TLS_SERVER_ROOTS.iter().cloned(),
        &extra,
        provider,
    )
}

/// A webpki verifier over `anchors` plus `extra` (Android's path; also unit-tested on every
/// host with test anchors only).
#[cfg(any(target_os = "android", test))]
fn webpki_verifier(
    anchors: impl IntoIterator<Item = rustls::pki_types::TrustAnchor<'static>>,
    extra: &[CertificateDer<'static>],
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>> {
    let mut roots = rustls::RootCertStore {
        roots: anchors.into_iter().collect(),
    };
    for cert in extra {
        roots
            .add(cert.clone())
            .map_err(|e| WalletError::invalid(format!("trusted_certificates: {e}")))?;
    }
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| WalletError::internal(format!("cannot set up TLS verification: {e}")))?;
    Ok(verifier)
}

/// Every certificate of every entry of `trusted_certificates` (PEM text, one or more
/// `BEGIN CERTIFICATE` blocks each), each checked to be usable as a trust anchor.
fn trusted_certificates(entries: &[String]) -> Result<Vec<CertificateDer<'static>>> {
    let mut all = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let name = format!("trusted_certificates[{index}]");
        let mut found = 0;
        for cert in CertificateDer::pem_slice_iter(entry.as_bytes()) {
            let cert = cert.map_err(|e| {
                WalletError::invalid(format!("{name} is not valid PEM certificate text: {e}"))
            })?;
            webpki::anchor_from_trusted_cert(&cert).map_err(|e| {
                WalletError::invalid(format!(
                    "{name}: certificate {} is not a usable X.509 CA certificate: {e}",
                    found + 1
                ))
            })?;
            found += 1;
            all.push(cert);
        }
        if found == 0 {
            return Err(WalletError::invalid(format!(
                "{name} has no certificate (expected PEM text with \
                 -----BEGIN CERTIFICATE----- blocks)"
            )));
        }
    }
    Ok(all)
}

/// The SHA-256 digests of `pins` (`sha256/` + base64 of 32 bytes each).
fn parse_pins(pins: &[String]) -> Result<Vec<[u8; 32]>> {
    pins.iter()
        .enumerate()
        .map(|(index, pin)| {
            let refuse = |why: &str| {
                WalletError::invalid(format!(
                    "pinned_gateway_keys[{index}] {why}: a pin is \"sha256/\" followed by the \
                     base64 SHA-256 of a certificate's SubjectPublicKeyInfo"
                ))
            };
            let encoded = pin
                .strip_prefix(PIN_PREFIX)
                .ok_or_else(|| refuse("does not start with \"sha256/\""))?;
            let digest = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| refuse("is not valid base64"))?;
            <[u8; 32]>::try_from(digest.as_slice())
                .map_err(|_| refuse(&format!("has {} bytes, not 32", digest.len())))
        })
        .collect()
}

/// The name TLS checks for the host of `url`.
fn server_name(url: &url::Url) -> Result<ServerName<'static>> {
    let name = match url.host() {
        Some(url::Host::Domain(domain)) => ServerName::try_from(domain.to_string()).ok(),
        Some(url::Host::Ipv4(ip)) => Some(ServerName::from(std::net::IpAddr::V4(ip))),
        Some(url::Host::Ipv6(ip)) => Some(ServerName::from(std::net::IpAddr::V6(ip))),
        None => None,
    };
    name.ok_or_else(|| WalletError::invalid(format!("gateway_url has no usable host: {url}")))
}

/// The pin text of a DER SubjectPublicKeyInfo.
fn pin_of(spki: &[u8]) -> String {
    format!(
        "{PIN_PREFIX}{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(spki))
    )
}

/// A verifier that first lets `inner` check the chain as it would without pins, then, for
/// the gateway's host only, requires one certificate the server sent (leaf or intermediate)
/// to have a pinned key. Never weaker than `inner` alone.
#[derive(Debug)]
struct PinnedVerifier {
    inner: Arc<dyn ServerCertVerifier>,
    host: ServerName<'static>,
    pins: Vec<[u8; 32]>,
}

/// The refusal of a chain whose keys match no pin; [`tls_error`] recognises it.
#[derive(Debug)]
struct PinMismatch {
    presented: Vec<String>,
}

impl std::fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no certificate key of the chain is in pinned_gateway_keys (the server presented {})",
            self.presented.join(", ")
        )
    }
}

impl std::error::Error for PinMismatch {}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        if *server_name != self.host {
            return Ok(verified);
        }
        let mut presented = Vec::new();
        for cert in std::iter::once(end_entity).chain(intermediates) {
            let Ok(parsed) = webpki::EndEntityCert::try_from(cert) else {
                continue;
            };
            let spki = parsed.subject_public_key_info();
            let digest: [u8; 32] = Sha256::digest(spki.as_ref()).into();
            if self.pins.contains(&digest) {
                return Ok(verified);
            }
            presented.push(pin_of(spki.as_ref()));
        }
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(
            OtherError(Arc::new(PinMismatch { presented })),
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }

    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

/// `error` and its causes, outermost first. An `io::Error` wrapping another error yields that
/// error next (its own `source()` would skip it: that is where rustls errors hide).
pub(crate) fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| match e.downcast_ref::<std::io::Error>() {
        Some(io) => io
            .get_ref()
            .map(|inner| inner as &(dyn std::error::Error + 'static)),
        None => e.source(),
    })
}

/// [`WalletError::Tls`] when a rustls error is among the causes of `error` (a refused
/// certificate or another TLS failure) on a connection to `host`; `None` otherwise.
pub(crate) fn tls_error(
    error: &(dyn std::error::Error + 'static),
    host: &str,
) -> Option<WalletError> {
    let tls = causes(error).find_map(|e| e.downcast_ref::<rustls::Error>())?;
    let (failure, reason) = match tls {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => (
            certificate_failure_of_other(inner.as_ref()),
            format!("invalid peer certificate: {inner}"),
        ),
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => (
            TlsFailure::UntrustedCertificate,
            format!(
                "{tls} (the issuer is neither a trusted root of this device nor in \
                 trusted_certificates)"
            ),
        ),
        rustls::Error::InvalidCertificate(cause) => (certificate_failure(cause), tls.to_string()),
        _ => (TlsFailure::Other, tls.to_string()),
    };
    Some(WalletError::Tls {
        failure,
        host: host.to_string(),
        reason,
    })
}

/// Which [`TlsFailure`] a refused certificate is.
fn certificate_failure(cause: &CertificateError) -> TlsFailure {
    match cause {
        CertificateError::UnknownIssuer | CertificateError::BadSignature => {
            TlsFailure::UntrustedCertificate
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            TlsFailure::HostnameMismatch
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => TlsFailure::Expired,
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            TlsFailure::NotYetValid
        }
        CertificateError::Revoked => TlsFailure::Revoked,
        CertificateError::Other(OtherError(other)) => certificate_failure_of_other(other.as_ref()),
        _ => TlsFailure::Other,
    }
}

/// Which [`TlsFailure`] a verifier's own refusal (`CertificateError::Other`) is.
fn certificate_failure_of_other(
    other: &(dyn std::error::Error + Send + Sync + 'static),
) -> TlsFailure {
    match other.is::<PinMismatch>() {
        true => TlsFailure::PinMismatch,
        false => TlsFailure::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(certs: Vec<String>, pins: Vec<String>) -> WalletConfig {
        let mut config = WalletConfig::new("https://localhost:8443/opencharge", "/data");
        config.trusted_certificates = certs;
        config.pinned_gateway_keys = pins;
        config
    }

    fn gateway() -> url::Url {
        url::Url::parse("https://localhost:8443/opencharge").unwrap()
    }

    /// A CA and a `localhost` certificate it issued, with the leaf's key.
    fn chain() -> (
        rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
        CertificateDer<'static>,
        rcgen::KeyPair,
    ) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
            .unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        (ca, leaf.der().clone(), key)
    }

    fn verify(
        verifier: &dyn ServerCertVerifier,
        leaf: &CertificateDer<'static>,
        host: &str,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        verifier.verify_server_cert(
            leaf,
            &[],
            &ServerName::try_from(host.to_string()).unwrap(),
            &[],
            UnixTime::now(),
        )
    }

    #[test]
    fn malformed_certificates_and_pins_are_refused_naming_the_entry() {
        let (ca, _, _) = chain();
        let cases = [
            (
                config(vec![ca.pem(), "hello".into()], vec![]),
                "trusted_certificates[1] has no certificate",
            ),
            (
                config(
                    vec!["-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n".into()],
                    vec![],
                ),
                "trusted_certificates[0] is not valid PEM",
            ),
            (
                config(
                    vec![
                        "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n".into(),
                    ],
                    vec![],
                ),
                "trusted_certificates[0]: certificate 1 is not a usable",
            ),
            (
                config(vec![], vec!["abc".into()]),
                "pinned_gateway_keys[0] does not start",
            ),
            (
                config(vec![], vec![pin_of(b"x"), "sha256/%%%".into()]),
                "pinned_gateway_keys[1] is not valid base64",
            ),
            (
                config(vec![], vec!["sha256/aGVsbG8=".into()]),
                "pinned_gateway_keys[0] has 5 bytes",
            ),
        ];
        for (config, expected) in cases {
            match client_config(&config, &gateway()) {
                Err(WalletError::InvalidInput { reason }) => {
                    assert!(reason.contains(expected), "{reason:?} lacks {expected:?}")
                }
                other => panic!(
                    "expected InvalidInput with {expected:?}, got {:?}",
                    other.err()
                ),
            }
        }
        assert!(client_config(&config(vec![ca.pem()], vec![pin_of(b"k")]), &gateway()).is_ok());
    }

    /// The Android path (webpki over compiled-in anchors plus the extra CAs), here with no
    /// compiled-in anchors: the extra CA is trusted, names and issuers are checked.
    #[test]
    fn webpki_verifier_trusts_the_extra_ca_only() {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (ca, leaf, _) = chain();
        let verifier = webpki_verifier([], &[ca.der().clone()], provider.clone()).unwrap();
        assert!(verify(verifier.as_ref(), &leaf, "localhost").is_ok());
        let wrong_name = verify(verifier.as_ref(), &leaf, "gateway.example").unwrap_err();
        assert_eq!(
            tls_error(&wrong_name, "gateway.example"),
            Some(WalletError::Tls {
                failure: TlsFailure::HostnameMismatch,
                host: "gateway.example".into(),
                reason: wrong_name.to_string(),
            })
        );
        let (other_ca, _, _) = chain();
        let stranger = webpki_verifier([], &[other_ca.der().clone()], provider).unwrap();
        let untrusted = verify(stranger.as_ref(), &leaf, "localhost").unwrap_err();
        assert!(matches!(
            tls_error(&untrusted, "localhost"),
            Some(WalletError::Tls {
                failure: TlsFailure::UntrustedCertificate,
                ..
            })
        ));
    }

    #[test]
    fn pins_apply_to_the_gateway_host_after_the_chain_checks() {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (ca, leaf, key) = chain();
        let inner = webpki_verifier([], &[ca.der().clone()], provider).unwrap();
        let pinned = |pins: Vec<[u8; 32]>, host: &str| PinnedVerifier {
            inner: inner.clone(),
            host: ServerName::try_from(host.to_string()).unwrap(),
            pins,
        };
        let leaf_pin =
            parse_pins(&[pin_of(&rcgen::PublicKeyData::subject_public_key_info(&key))]).unwrap();
        let other_pin = parse_pins(&[pin_of(b"another key")]).unwrap();
        assert!(verify(&pinned(leaf_pin.clone(), "localhost"), &leaf, "localhost").is_ok());
        let refused =
            verify(&pinned(other_pin.clone(), "localhost"), &leaf, "localhost").unwrap_err();
        match tls_error(&refused, "localhost") {
            Some(WalletError::Tls {
                failure: TlsFailure::PinMismatch,
                reason,
                ..
            }) => {
                assert!(
                    reason.contains(&pin_of(&rcgen::PublicKeyData::subject_public_key_info(
                        &key
                    ))),
                    "{reason}"
                )
            }
            other => panic!("expected PinMismatch, got {other:?}"),
        }
        // Another host is not pinned (metadata of other parties).
        assert!(verify(&pinned(other_pin, "gateway.example"), &leaf, "localhost").is_ok());
        // A pin never makes an untrusted chain acceptable.
        let (stranger_ca, _, _) = chain();
        let stranger = webpki_verifier(
            [],
            &[stranger_ca.der().clone()],
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .unwrap();
        let pinned_stranger = PinnedVerifier {
            inner: stranger,
            host: ServerName::try_from("localhost".to_string()).unwrap(),
            pins: leaf_pin,
        };
        let refused = verify(&pinned_stranger, &leaf, "localhost").unwrap_err();
        assert!(matches!(
            tls_error(&refused, "localhost"),
            Some(WalletError::Tls {
                failure: TlsFailure::UntrustedCertificate,
                ..
            })
        ));
    }

    /// Test anchors only: a webpki verifier over `extra`.
    fn test_verifier(
        extra: Vec<CertificateDer<'static>>,
        provider: Arc<CryptoProvider>,
    ) -> Result<Arc<dyn ServerCertVerifier>> {
        webpki_verifier([], &extra, provider)
    }

    /// The trust anchors are loaded once per process: wallets opened with the same trusted
    /// certificates share one verifier; other certificates get their own, which trusts them
    /// and not the first ones; a failed build keeps the shared one.
    #[test]
    fn the_verifier_is_built_once_per_trusted_certificates() {
        let shared = SharedVerifier::new();
        let (ca, leaf, _) = chain();
        let (_, first) = shared.get(vec![ca.der().clone()], test_verifier).unwrap();
        let (_, again) = shared.get(vec![ca.der().clone()], test_verifier).unwrap();
        assert!(
            Arc::ptr_eq(&first, &again),
            "the roots are not loaded twice"
        );
        assert!(verify(again.as_ref(), &leaf, "localhost").is_ok());
        let (other_ca, other_leaf, _) = chain();
        let (_, other) = shared
            .get(vec![other_ca.der().clone()], test_verifier)
            .unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
        assert!(verify(other.as_ref(), &other_leaf, "localhost").is_ok());
        assert!(
            verify(other.as_ref(), &leaf, "localhost").is_err(),
            "a verifier never trusts the certificates of another configuration"
        );
        let broken = CertificateDer::from(b"not a certificate".to_vec());
        assert!(shared.get(vec![broken], test_verifier).is_err());
        let (_, kept) = shared
            .get(vec![other_ca.der().clone()], test_verifier)
            .unwrap();
        assert!(Arc::ptr_eq(&other, &kept));
    }

    #[test]
    fn rustls_errors_are_found_inside_io_errors() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::Expired),
        );
        assert!(matches!(
            tls_error(&io, "h"),
            Some(WalletError::Tls {
                failure: TlsFailure::Expired,
                ..
            })
        ));
        let plain = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(tls_error(&plain, "h"), None);
    }
}
