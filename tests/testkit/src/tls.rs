//! HTTPS for the mocks: a test CA and leaf certificates made on the spot with rcgen, a rustls
//! server that offers `h2` and `http/1.1` (or `http/1.1` only), and a listener that accepts
//! TCP but never finishes a TLS handshake.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A certificate authority that exists only in this test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(Self { issuer })
    }

    /// Its certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// Writes its certificate (PEM) to `path`, for `--extra-ca`.
    pub fn write_pem(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.pem()).with_context(|| format!("write {}", path.display()))
    }

    /// A server certificate for `names` (DNS names or IP addresses) issued by this CA.
    pub fn leaf(&self, names: &[&str]) -> Result<Identity> {
        let key = KeyPair::generate()?;
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        let certificate = params.signed_by(&key, &self.issuer)?;
        Ok(Identity {
            chain: vec![certificate.der().clone(), self.issuer.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        })
    }
}

/// A server's certificate chain and key.
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// Which application protocols a TLS mock offers in ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// `h2` first, then `http/1.1` (a client offering h2 gets HTTP/2).
    H2AndHttp11,
    /// `http/1.1` only.
    Http11Only,
}

/// How a mock serves HTTPS.
#[derive(Clone)]
pub struct TlsServer {
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
}

impl TlsServer {
    /// Serves `identity`, offering `alpn`.
    pub fn new(identity: Identity, alpn: Alpn) -> Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(identity.chain, identity.key)?;
        config.alpn_protocols = match alpn {
            Alpn::H2AndHttp11 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            Alpn::Http11Only => vec![b"http/1.1".to_vec()],
        };
        Ok(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }
}

/// Accepts TCP connections, reads what the client sends (its TLS ClientHello) and never
/// answers: a TLS server whose handshake does not finish. Connections are held until drop.
pub struct StalledTls {
    addr: SocketAddr,
    hellos: Arc<AtomicUsize>,
    stop: watch::Sender<bool>,
}

impl StalledTls {
    /// Listens on a free loopback port.
    pub async fn start() -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let hellos = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = watch::channel(false);
        let counted = hellos.clone();
        tokio::spawn(async move {
            let mut stopped_accepting = stopped.clone();
            loop {
                let (mut stream, _) = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok(accepted) => accepted,
                        Err(_) => return,
                    },
                    _ = stopped_accepting.changed() => return,
                };
                let counted = counted.clone();
                let mut stopped = stopped.clone();
                tokio::spawn(async move {
                    let mut first = [0u8; 1];
                    // 0x16: a TLS handshake record, i.e. a ClientHello.
                    if let Ok(1) = stream.read(&mut first).await {
                        if first[0] == 0x16 {
                            counted.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    let mut sink = [0u8; 4096];
                    loop {
                        tokio::select! {
                            read = stream.read(&mut sink) => if matches!(read, Ok(0) | Err(_)) { return },
                            _ = stopped.changed() => return,
                        }
                    }
                });
            }
        });
        Ok(Self { addr, hellos, stop })
    }

    /// Its `https://` origin on 127.0.0.1.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// ClientHellos received so far.
    pub fn hellos(&self) -> usize {
        self.hellos.load(Ordering::SeqCst)
    }
}

impl Drop for StalledTls {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
