//! TLS of a secure node: gRPC between nodes (mutual TLS with the certificates of `meridian
//! cert`), and the HTTP endpoint.
//!
//! ```text
//!  caller (a node, or `meridian init` / `meridian node`)      node (server)
//!  NodeDialer: trusts ca.crt, presents node.crt        ──TLS──▶ presents node.crt, requires a
//!  (client.root.crt for the commands); the server's               client certificate signed by
//!  certificate must name the host part of the address             ca.crt (handshake); then
//!  it dials (an IP address or a DNS name)                         check_peer: its CN is `node`
//!                                                                 or `root`, or the call fails
//!  curl, Prometheus (trusting ca.crt)                  ──TLS──▶ HTTP: presents node.crt, asks
//!                                                                 for no client certificate
//! ```
//!
//! A node's certificate must therefore name every address other nodes and clients reach it by
//! (`meridian cert create-node HOST...`), as in CockroachDB. In insecure mode every gRPC and
//! HTTP connection stays plaintext.
//!
//! A node's configurations consult its [`NodeCerts`] at every handshake, so reloading them
//! (`Node::reload_certificates`, on SIGHUP) reaches every new connection, in and out. tonic
//! takes only PEM files for its own TLS and keeps them for good, so the node does the TLS
//! itself: [`TlsListener`] completes the handshakes and hands tonic (and axum) the streams, and
//! [`NodeDialer`]'s connector dials and completes the handshake for tonic's channels. The
//! commands' dialer reads its files once, as they run once.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use meridian_proto::v1::node_client::NodeClient;
use meridian_security::rustls::pki_types::ServerName;
use meridian_security::rustls::{ClientConfig, ServerConfig};
use meridian_security::{
    CertsDir, ClientAuth, ClientIdentity, NODE_COMMON_NAME, NodeCerts, certificate_common_name,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};
use tonic::codegen::Service;
use tonic::codegen::http::Uri;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

/// The certificate common names that may call a secure node's gRPC API: the other nodes, and
/// `root` (the operator's `meridian init` and `meridian node`). A SQL user's client
/// certificate is signed by the same CA but must not reach the raw key-value and Raft calls.
const GRPC_PRINCIPALS: [&str; 2] = [NODE_COMMON_NAME, "root"];

/// How long a node waits for a client's TLS handshake before dropping the connection.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed `accept` (e.g. out of file descriptors), so that a lasting failure
/// does not spin the accept loop.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// The ALPN protocol of gRPC.
const ALPN_H2: &[u8] = b"h2";

/// The ALPN protocol of the HTTP endpoint (axum serves HTTP/1.1 here).
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// How a gRPC client reaches nodes' listen addresses: in plaintext (insecure mode), or over
/// TLS, verifying the node against the cluster's CA and presenting a client certificate
/// (secure mode).
#[derive(Debug, Clone, Default)]
pub struct NodeDialer {
    tls: Option<Arc<ClientConfig>>,
}

impl NodeDialer {
    /// Plaintext connections, for nodes in insecure mode.
    pub fn plaintext() -> NodeDialer {
        NodeDialer::default()
    }

    /// TLS connections: the server must present a certificate signed by `ca.crt` of
    /// `certs_dir` that names the host dialled; the client presents `identity`'s certificate
    /// (`client.root.crt` for the operator's commands). The files are read once, now.
    pub fn tls(certs_dir: &Path, identity: &ClientIdentity) -> anyhow::Result<NodeDialer> {
        let dir = CertsDir::new(certs_dir);
        anyhow::ensure!(
            identity.files(&dir).is_some(),
            "a node's gRPC API takes only callers with a client certificate"
        );
        Ok(NodeDialer::with_config(meridian_security::client_config(
            &dir, identity,
        )?))
    }

    /// TLS connections of a node: it presents its current `node.crt` and trusts servers its
    /// current `ca.crt` signed, as [`NodeCerts::reload`] last read them.
    pub(crate) fn node(certs: &NodeCerts) -> anyhow::Result<NodeDialer> {
        Ok(NodeDialer::with_config(certs.client_config()?))
    }

    fn with_config(mut config: ClientConfig) -> NodeDialer {
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        NodeDialer {
            tls: Some(Arc::new(config)),
        }
    }

    /// Whether connections use TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// A lazily connected channel to a node's listen address; every call on it fails after
    /// `timeout`.
    pub(crate) fn channel(&self, listen_addr: &str, timeout: Duration) -> anyhow::Result<Channel> {
        // The connector below does the TLS, so tonic sees a plain `http` endpoint; the
        // requests still say `https`.
        let endpoint = Endpoint::from_shared(format!("http://{listen_addr}"))?
            .connect_timeout(Duration::from_secs(1))
            .timeout(timeout)
            .tcp_nodelay(true);
        Ok(match &self.tls {
            None => endpoint.connect_lazy(),
            Some(config) => endpoint
                .origin(format!("https://{listen_addr}").parse()?)
                .connect_with_connector_lazy(Dial {
                    tls: TlsConnector::from(config.clone()),
                }),
        })
    }

    /// A node client on a lazily connected channel to `listen_addr` (see [`Self::channel`]).
    pub(crate) fn client(
        &self,
        listen_addr: &str,
        timeout: Duration,
    ) -> anyhow::Result<NodeClient<Channel>> {
        Ok(crate::remote::node_client(
            self.channel(listen_addr, timeout)?,
        ))
    }
}

/// tonic's connector for a TLS channel: dials the endpoint's address and completes the
/// handshake, checking that the server's certificate names the host of the address.
#[derive(Clone)]
struct Dial {
    tls: TlsConnector,
}

impl Service<Uri> for Dial {
    type Response = TokioIo<client::TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let tls = self.tls.clone();
        Box::pin(async move {
            let invalid = |what: &str| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what} in {uri}"))
            };
            // An IPv6 address is bracketed in a URI, and not in a certificate.
            let host = uri.host().ok_or_else(|| invalid("no host"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let port = uri.port_u16().ok_or_else(|| invalid("no port"))?;
            let name =
                ServerName::try_from(host.to_owned()).map_err(|_| invalid("a bad host name"))?;
            let tcp = TcpStream::connect((host, port)).await?;
            tcp.set_nodelay(true)?;
            Ok(TokioIo::new(tls.connect(name, tcp).await?))
        })
    }
}

/// The TLS of a secure node's gRPC listener: it presents `node.crt` and completes a handshake
/// only with a client whose certificate `ca.crt` signed.
pub(crate) fn grpc_server_config(certs: &NodeCerts) -> anyhow::Result<Arc<ServerConfig>> {
    let mut config = certs.server_config(ClientAuth::Required)?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// The TLS of a secure node's HTTP endpoint: it presents `node.crt` and asks for no client
/// certificate (probes and Prometheus only need to trust `ca.crt`), as CockroachDB's does.
pub(crate) fn http_server_config(certs: &NodeCerts) -> anyhow::Result<Arc<ServerConfig>> {
    let mut config = certs.server_config(ClientAuth::Off)?;
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(Arc::new(config))
}

/// Accepts TCP connections and completes their TLS handshakes, several at once, handing out
/// only the connections whose handshake succeeded within [`HANDSHAKE_TIMEOUT`]; the others
/// are dropped (and logged at debug level), so a slow or broken client delays no one.
pub(crate) struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshakes: JoinSet<Option<(server::TlsStream<TcpStream>, SocketAddr)>>,
}

impl TlsListener {
    pub(crate) fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> TlsListener {
        TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(config),
            handshakes: JoinSet::new(),
        }
    }

    /// The next connection whose handshake completed. Cancel-safe: a handshake under way
    /// stays in the listener.
    pub(crate) async fn next(&mut self) -> (server::TlsStream<TcpStream>, SocketAddr) {
        loop {
            tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        let acceptor = self.acceptor.clone();
                        self.handshakes.spawn(handshake(acceptor, tcp, peer));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a TLS connection failed");
                        tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    }
                },
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    if let Ok(Some(connection)) = done {
                        return connection;
                    }
                }
            }
        }
    }

    /// The connections as the stream tonic serves.
    pub(crate) fn into_stream(
        self,
    ) -> impl futures::Stream<Item = std::io::Result<server::TlsStream<TcpStream>>> {
        futures::stream::unfold(self, |mut listener| async move {
            let (tls, _) = listener.next().await;
            Some((Ok(tls), listener))
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    fn accept(&mut self) -> impl Future<Output = (Self::Io, Self::Addr)> + Send {
        self.next()
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

async fn handshake(
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Option<(server::TlsStream<TcpStream>, SocketAddr)> {
    // Raft messages and forwarded requests are small and latency-bound: without TCP_NODELAY,
    // Nagle's algorithm and delayed ACKs add ~40 ms to each answer.
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => Some((tls, peer)),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// Admits a call to a secure node only from a peer whose certificate (which the handshake
/// already checked against `ca.crt`) names a node or `root`.
pub(crate) fn check_peer(req: Request<()>) -> Result<Request<()>, Status> {
    let certs = req
        .peer_certs()
        .ok_or_else(|| Status::unauthenticated("a client certificate is required"))?;
    match certs.first().and_then(|c| certificate_common_name(c)) {
        Some(name) if GRPC_PRINCIPALS.contains(&name.as_str()) => Ok(req),
        Some(name) => Err(Status::permission_denied(format!(
            "the certificate of {name:?} may not call the node API (only nodes and root may)"
        ))),
        None => Err(Status::unauthenticated(
            "the client certificate has no common name",
        )),
    }
}
