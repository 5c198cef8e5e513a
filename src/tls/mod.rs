//! TLS on the API port, as Icinga does it: both protocols share one port,
//! the first bytes after the handshake choose between them, and a cluster
//! peer is who its certificate says, if the cluster's CA signed it.
//!
//! rustls does the protocol. Its randomness and its clock come from the
//! seam ([`crate::env::Env::crypto`], [`crate::env::Env::now`]), so the
//! simulation can make a handshake a function of its seed.

mod close;
mod verify;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

pub use close::TlsConn;

use crate::env::{Env, Point, Stream};

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM input held nothing usable.
    #[error("{what}: {why}")]
    Pem { what: &'static str, why: String },
    /// rustls refused the certificates or key.
    #[error("cannot use the certificate and key: {0}")]
    Config(#[from] rustls::Error),
    /// The CA certificates could not be used as trust anchors.
    #[error("cannot trust the CA certificate: {0}")]
    Roots(String),
}

/// This node's certificate material: what `serve` loads from the state
/// directory, or what the simulation makes.
#[derive(Clone)]
pub struct TlsMaterial {
    /// The CA certificates a peer's certificate must chain to.
    pub roots: Vec<CertificateDer<'static>>,
    /// This node's certificate first, then any intermediates.
    pub chain: Vec<CertificateDer<'static>>,
    /// This node's private key.
    pub key: Arc<PrivateKeyDer<'static>>,
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cn = self.chain.first().and_then(|c| common_name(c));
        f.debug_struct("TlsMaterial")
            .field("roots", &self.roots.len())
            .field("chain", &self.chain.len())
            .field("cn", &cn)
            .finish_non_exhaustive()
    }
}

impl TlsMaterial {
    /// Reads PEM text: the CA to trust, this node's certificate (chain) and
    /// its key (PKCS#8, PKCS#1 RSA or SEC1 EC, as `icinga2 pki` writes).
    pub fn from_pem(ca: &[u8], cert: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        let certs = |what, pem| -> Result<Vec<CertificateDer<'static>>, TlsError> {
            let found: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
            let found = found.map_err(|e| TlsError::Pem { what, why: e.to_string() })?;
            match found.is_empty() {
                true => Err(TlsError::Pem { what, why: "no certificate in it".into() }),
                false => Ok(found),
            }
        };
        let key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|e| TlsError::Pem { what: "private key", why: e.to_string() })?;
        Ok(TlsMaterial {
            roots: certs("CA certificate", ca)?,
            chain: certs("certificate", cert)?,
            key: Arc::new(key),
        })
    }

    /// The common name of this node's own certificate.
    pub fn common_name(&self) -> Option<String> {
        self.chain.first().and_then(|c| common_name(c))
    }
}

/// The common name (CN) of a certificate's subject, which Icinga takes as
/// the peer's identity; `None` if it has none or does not parse.
pub fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    crate::pki::common_name(cert.as_ref())
}

/// What a peer proved of itself in the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerCert {
    /// Plain TCP, for loopback and simulation: only the Hello's claim.
    Plain,
    /// TLS, but the peer sent no certificate.
    Absent,
    /// A certificate the cluster's CA did not sign (or not valid now).
    Unverified {
        /// Its common name, if it has one.
        cn: Option<String>,
        /// Why it failed.
        why: String,
    },
    /// A certificate the cluster's CA signed, valid now.
    Verified {
        /// Its common name: the peer's identity.
        cn: String,
    },
}

impl PeerCert {
    /// How Icinga's log line ends for this peer's certificate.
    pub fn describe(&self) -> String {
        match self {
            PeerCert::Plain => "plain TCP".into(),
            PeerCert::Absent => "no client certificate".into(),
            PeerCert::Unverified { cn, why } => {
                format!("certificate for '{}', validation failed: {why}", cn.as_deref().unwrap_or("?"))
            }
            PeerCert::Verified { cn } => format!("certificate for '{cn}'"),
        }
    }
}

/// rustls's configurations for both directions, built once at start.
#[derive(Clone, Debug)]
pub struct Tls {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    /// Judges a client certificate after the handshake, which itself
    /// admits any: an unsigned certificate makes a peer anonymous, not
    /// refused, as in Icinga.
    strict: Arc<dyn ClientCertVerifier>,
    time: Arc<dyn rustls::time_provider::TimeProvider>,
    /// How long a shutdown waits for the peer's close_notify (`None`: for
    /// ever, only as a planted bug).
    close_wait: Option<Duration>,
    pause: Pause,
}

/// The environment's chaos points, for TLS code that is not generic over
/// the environment: the simulation may delay a handshake or a goodbye.
#[derive(Clone)]
pub(crate) struct Pause(Arc<dyn Fn(Point) -> Paused + Send + Sync>);

/// A chaos point's wait, owning what it needs.
pub(crate) type Paused = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Pause {
    fn new<E: Env>(env: &E) -> Self {
        let env = env.clone();
        Pause(Arc::new(move |point| {
            let env = env.clone();
            Box::pin(async move { env.point(point).await })
        }))
    }

    /// The chaos point `point`, as a future that owns what it needs.
    pub(crate) fn at(&self, point: Point) -> Paused {
        (self.0)(point)
    }
}

impl fmt::Debug for Pause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pause")
    }
}

impl Tls {
    /// Builds the server and client sides from the node's material, with
    /// randomness and time from the environment. TLS 1.2 and 1.3 only.
    pub fn new<E: Env>(
        env: &E,
        material: &TlsMaterial,
        close_wait: Option<Duration>,
    ) -> Result<Self, TlsError> {
        let provider: Arc<CryptoProvider> = env.crypto();
        let time: Arc<dyn rustls::time_provider::TimeProvider> = Arc::new(EnvTime(env.clone()));
        let mut roots = RootCertStore::empty();
        for ca in &material.roots {
            roots.add(ca.clone()).map_err(|e| TlsError::Roots(e.to_string()))?;
        }
        let roots = Arc::new(roots);
        let strict =
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| TlsError::Roots(e.to_string()))?;
        let versions = &[&rustls::version::TLS13, &rustls::version::TLS12];
        let lenient = Arc::new(verify::AnyClientCert::new(strict.clone()));
        let server = ServerConfig::builder_with_details(provider.clone(), time.clone())
            .with_protocol_versions(versions)?
            .with_client_cert_verifier(lenient)
            .with_single_cert(material.chain.clone(), material.key.clone_key())?;
        let endpoint = Arc::new(verify::EndpointCert::new(roots, provider.clone()));
        let client = ClientConfig::builder_with_details(provider, time.clone())
            .with_protocol_versions(versions)?
            .dangerous()
            .with_custom_certificate_verifier(endpoint)
            .with_client_auth_cert(material.chain.clone(), material.key.clone_key())?;
        let pause = Pause::new(env);
        Ok(Tls { server: Arc::new(server), client: Arc::new(client), strict, time, close_wait, pause })
    }

    /// The server side of a handshake on an accepted connection, and what
    /// the peer's certificate proves.
    pub async fn accept<S: Stream>(&self, stream: S) -> std::io::Result<(TlsConn<S>, PeerCert)> {
        let acceptor = rustls::server::Acceptor::default();
        let hello = tokio_rustls::LazyConfigAcceptor::new(acceptor, stream).await?;
        self.pause.at(Point::TlsAfterClientHello).await;
        let tls = hello.into_stream(self.server.clone()).await?;
        let cert = self.judge(tls.get_ref().1.peer_certificates());
        Ok((self.conn(tls.into()), cert))
    }

    /// The client side of a handshake to the endpoint `name`, whose
    /// certificate must carry that name as its CN and chain to our CA.
    pub async fn connect<S: Stream>(&self, name: &str, stream: S) -> std::io::Result<TlsConn<S>> {
        let server_name = verify::server_name_for(name)?;
        let tls = tokio_rustls::TlsConnector::from(self.client.clone()).connect(server_name, stream).await?;
        Ok(self.conn(tls.into()))
    }

    fn conn<S>(&self, tls: tokio_rustls::TlsStream<S>) -> TlsConn<S> {
        TlsConn::new(tls, self.close_wait, self.pause.clone())
    }

    fn judge(&self, certs: Option<&[CertificateDer<'static>]>) -> PeerCert {
        let Some((end, intermediates)) = certs.and_then(|c| c.split_first()) else { return PeerCert::Absent };
        let cn = common_name(end);
        let now = self.time.current_time().unwrap_or(UnixTime::since_unix_epoch(Default::default()));
        match (self.strict.verify_client_cert(end, intermediates, now), cn) {
            (Ok(_), Some(cn)) => PeerCert::Verified { cn },
            (Ok(_), None) => {
                PeerCert::Unverified { cn: None, why: "the certificate has no common name".into() }
            }
            (Err(e), cn) => PeerCert::Unverified { cn, why: e.to_string() },
        }
    }
}

/// rustls's clock, read from the seam: validity is checked against the
/// simulated time in a simulation.
struct EnvTime<E>(E);

impl<E> fmt::Debug for EnvTime<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnvTime")
    }
}

impl<E: Env> rustls::time_provider::TimeProvider for EnvTime<E> {
    fn current_time(&self) -> Option<UnixTime> {
        self.0.now().duration_since(UNIX_EPOCH).ok().map(UnixTime::since_unix_epoch)
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use tokio::io::{AsyncWriteExt, DuplexStream};

    use super::*;
    use crate::env::tokio::TokioEnv;
    use crate::pki::{Ca, KeyPair, Serial};

    /// A node's TLS for `cn` and a client configuration trusting its CA.
    #[expect(clippy::disallowed_methods, reason = "test certificates are valid from the real now")]
    fn node_and_client(cn: &str, close_wait: Option<Duration>) -> (Tls, Arc<ClientConfig>) {
        let now = SystemTime::now(); // seam-ok: a test's certificates, valid from the real now
        let ca = Ca::create(KeyPair::generate().unwrap(), now, &Serial::random().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = ca.issue(&key, cn, now, &Serial::random().unwrap()).unwrap();
        let material =
            TlsMaterial::from_pem(ca.cert_pem().as_bytes(), cert.as_bytes(), key.to_pem().as_bytes())
                .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(ca.cert_der().clone()).unwrap();
        let client = ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        (Tls::new(&TokioEnv::new(), &material, close_wait).unwrap(), Arc::new(client))
    }

    /// The node's side of a finished handshake, and the client's.
    async fn pair(close_wait: Option<Duration>) -> (TlsConn<DuplexStream>, impl Sized) {
        let (tls, client) = node_and_client("a", close_wait);
        let (near, far) = tokio::io::duplex(64 * 1024);
        let name = verify::server_name_for("a").unwrap();
        let connect = tokio_rustls::TlsConnector::from(client).connect(name, far);
        let (accepted, connected) = tokio::join!(tls.accept(near), connect);
        (accepted.unwrap().0, connected.unwrap())
    }

    #[tokio::test(start_paused = true)]
    #[expect(clippy::disallowed_methods, reason = "tokio's paused clock, not the wall's")]
    async fn a_goodbye_the_peer_never_answers_ends_at_the_close_wait() {
        let (mut node, _peer_that_never_reads) = pair(Some(Duration::from_secs(10))).await;
        let began = tokio::time::Instant::now(); // seam-ok: tokio's paused clock in a unit test
        let goodbye = tokio::time::timeout(Duration::from_secs(60), node.shutdown()).await;
        assert!(goodbye.is_ok(), "a goodbye ends by itself, without a caller's cap");
        assert_eq!(
            began.elapsed(),
            Duration::from_secs(10),
            "it waits the close wait for close_notify, no longer"
        );
    }
}
