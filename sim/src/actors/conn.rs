//! How actors reach a node: plain TCP, or TLS in a world that speaks it,
//! verifying the node's certificate against the run's CA. A cluster peer
//! shows a certificate for its identity; HTTP clients and anonymous peers
//! show none.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::client::TlsStream;
use tokio_util::either::Either;
use turmoil::net::TcpStream;

use super::http::PORT;

/// An actor's connection to a node.
pub type Conn = Either<TcpStream, Box<TlsStream<TcpStream>>>;

/// What actors of a TLS world connect with.
#[derive(Clone, Debug)]
pub struct ActorTls {
    /// Without a client certificate.
    anonymous: Arc<rustls::ClientConfig>,
    /// With a certificate for each cluster peer's identity.
    peers: BTreeMap<String, Arc<rustls::ClientConfig>>,
}

impl ActorTls {
    /// Client configurations for the run of `seed`: its CA trusted, and a
    /// certificate for each of `peers`.
    pub fn new(seed: u64, peers: &[&str]) -> Self {
        let ca = crate::pki::ca_pem(seed);
        let anonymous = config(&ca, None);
        let peers =
            peers.iter().map(|p| (p.to_string(), config(&ca, Some(crate::pki::material(seed, p))))).collect();
        ActorTls { anonymous, peers }
    }
}

fn config(ca_pem: &str, client: Option<quiesce::tls::TlsMaterial>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()).flatten() {
        let _ = roots.add(ca);
    }
    let builder =
        rustls::ClientConfig::builder_with_details(crate::env::sim_crypto(), Arc::new(crate::env::SimTime))
            .with_safe_default_protocol_versions()
            .expect("ring offers TLS 1.2 and 1.3")
            .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some(m) => {
            let key = PrivateKeyDer::clone_key(&m.key);
            builder.with_client_auth_cert(m.chain.clone(), key).expect("a certificate the run made")
        }
    };
    Arc::new(config)
}

/// Connects to `node`: over TLS if `tls` is given, with the certificate of
/// `identity` if it is a peer's.
pub async fn dial(node: &str, tls: Option<&ActorTls>, identity: Option<&str>) -> io::Result<Conn> {
    let tcp = TcpStream::connect((node, PORT)).await?;
    let Some(tls) = tls else { return Ok(Either::Left(tcp)) };
    let config = identity.and_then(|id| tls.peers.get(id)).unwrap_or(&tls.anonymous).clone();
    let name =
        ServerName::try_from(node.to_string()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let stream = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await?;
    Ok(Either::Right(Box::new(stream)))
}

/// The connection's local address, which the node's probes name as the peer.
pub fn local_addr(conn: &Conn) -> Option<String> {
    let tcp = match conn {
        Either::Left(tcp) => tcp,
        Either::Right(tls) => tls.get_ref().0,
    };
    tcp.local_addr().ok().map(|a| a.to_string())
}
