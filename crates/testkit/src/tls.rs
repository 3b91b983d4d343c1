//! Real TLS on loopback for tests: a test certificate authority made with rcgen, the server
//! certificates it issues (valid, expired, for another host name), public-key pins in the
//! wallet's `sha256/<base64>` form, and a TLS-terminating front on a loopback port that
//! forwards every connection to a plain-HTTP server (the embedded gateway).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PublicKeyData,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

/// A certificate authority for one test: trust it with [`TestCa::pem`] in
/// `WalletConfig.trusted_certificates`, and let it issue server certificates.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate (with its chain up to, and including, the CA) and its private key.
pub struct ServerIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivatePkcs8KeyDer<'static>,
    spki: Vec<u8>,
}

impl TestCa {
    /// A fresh CA named `name`, valid from 1975 to 4096 (rcgen's defaults).
    pub fn new(name: &str) -> anyhow::Result<TestCa> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(TestCa { issuer })
    }

    /// The CA certificate as PEM text.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// The pin (`sha256/` + base64) of the CA's public key.
    pub fn pin(&self) -> String {
        pin_of(&self.issuer.key().subject_public_key_info())
    }

    /// A certificate for `hosts` (DNS names or IP addresses), valid from 1975 to 4096.
    pub fn issue(&self, hosts: &[&str]) -> anyhow::Result<ServerIdentity> {
        let params =
            CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())?;
        self.sign(params)
    }

    /// A certificate for `hosts` that expired on 1 January 2020.
    pub fn issue_expired(&self, hosts: &[&str]) -> anyhow::Result<ServerIdentity> {
        let mut params =
            CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())?;
        params.not_before = rcgen::date_time_ymd(2019, 1, 1);
        params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> anyhow::Result<ServerIdentity> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(ServerIdentity {
            chain: vec![cert.der().clone(), self.issuer.der().clone()],
            spki: key.subject_public_key_info(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        })
    }
}

impl ServerIdentity {
    /// The pin (`sha256/` + base64) of this certificate's public key.
    pub fn pin(&self) -> String {
        pin_of(&self.spki)
    }

    /// A rustls server configuration (*ring*) serving this certificate.
    pub(crate) fn server_config(&self) -> anyhow::Result<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                self.chain.clone(),
                PrivateKeyDer::Pkcs8(self.key.clone_key()),
            )
            .context("the test certificate does not match its key")?;
        Ok(config)
    }
}

/// The `sha256/<base64>` pin of a DER SubjectPublicKeyInfo, as `WalletConfig.pinnedGatewayKeys`
/// takes it.
pub fn pin_of(spki_der: &[u8]) -> String {
    format!(
        "sha256/{}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(spki_der))
    )
}

/// A loopback port that accepts TLS with one certificate but does not forward yet
/// ([`BoundFront::forward_to`]): lets a gateway publish `https://localhost:<port>` before it
/// starts.
pub struct BoundFront {
    listener: TcpListener,
    acceptor: TlsAcceptor,
}

impl BoundFront {
    /// Binds `127.0.0.1:0` for `identity`.
    pub async fn bind(identity: &ServerIdentity) -> anyhow::Result<BoundFront> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("cannot bind the TLS front")?;
        let acceptor = TlsAcceptor::from(Arc::new(identity.server_config()?));
        Ok(BoundFront { listener, acceptor })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Starts serving: each connection's TLS is terminated here and its bytes are copied to
    /// and from a new plain connection to `backend`.
    pub fn forward_to(self, backend: SocketAddr) -> TlsFront {
        let port = self.port();
        let BoundFront { listener, acceptor } = self;
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    // Out of file descriptors or the like: wait instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                let acceptor = acceptor.clone();
                connections.spawn(async move {
                    // A refused handshake (the wallet rejecting the certificate) just ends here.
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    if let Ok(mut plain) = TcpStream::connect(backend).await {
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                    }
                });
                while connections.try_join_next().is_some() {}
            }
        });
        TlsFront { port, task }
    }
}

/// A running TLS front. Dropping it stops it and ends every forwarded connection.
pub struct TlsFront {
    port: u16,
    task: JoinHandle<()>,
}

impl TlsFront {
    /// A front for `identity` forwarding to `backend`, on a free loopback port.
    pub async fn start(identity: &ServerIdentity, backend: SocketAddr) -> anyhow::Result<TlsFront> {
        Ok(BoundFront::bind(identity).await?.forward_to(backend))
    }

    /// The loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `https://localhost:<port>`: the base URL wallets connect to.
    pub fn base_url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}
