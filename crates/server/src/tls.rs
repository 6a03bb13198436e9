//! gRPC between nodes in secure mode: mutual TLS with the certificates of `meridian cert`.
//!
//! ```text
//!  caller (a node, or `meridian init` / `meridian node`)      node (server)
//!  NodeDialer: trusts ca.crt, presents node.crt        ──TLS──▶ presents node.crt, requires a
//!  (client.root.crt for the commands); the server's               client certificate signed by
//!  certificate must name the host part of the address             ca.crt (handshake); then
//!  it dials (an IP address or a DNS name)                         check_peer: its CN is `node`
//!                                                                 or `root`, or the call fails
//! ```
//!
//! A node's certificate must therefore name every address other nodes and clients reach it by
//! (`meridian cert create-node HOST...`), as in CockroachDB. In insecure mode every gRPC
//! connection stays plaintext. The certificates are read once, when a node or a command
//! starts; replacing them takes a restart.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use meridian_proto::v1::node_client::NodeClient;
use meridian_security::{CertsDir, ClientIdentity, NODE_COMMON_NAME, certificate_common_name};
use tonic::transport::{
    Certificate, Channel, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig,
};
use tonic::{Request, Status};

/// The certificate common names that may call a secure node's gRPC API: the other nodes, and
/// `root` (the operator's `meridian init` and `meridian node`). A SQL user's client
/// certificate is signed by the same CA but must not reach the raw key-value and Raft calls.
const GRPC_PRINCIPALS: [&str; 2] = [NODE_COMMON_NAME, "root"];

/// How long a node waits for a client's TLS handshake before dropping the connection.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a gRPC client reaches nodes' listen addresses: in plaintext (insecure mode), or over
/// TLS, verifying the node against the cluster's CA and presenting a client certificate
/// (secure mode).
#[derive(Debug, Clone, Default)]
pub struct NodeDialer {
    tls: Option<ClientTlsConfig>,
}

impl NodeDialer {
    /// Plaintext connections, for nodes in insecure mode.
    pub fn plaintext() -> NodeDialer {
        NodeDialer::default()
    }

    /// TLS connections: the server must present a certificate signed by `ca.crt` of
    /// `certs_dir` that names the host dialled; the client presents `identity`'s certificate
    /// (`node.crt` for a node, `client.root.crt` for the operator's commands).
    pub fn tls(certs_dir: &Path, identity: &ClientIdentity) -> anyhow::Result<NodeDialer> {
        let dir = CertsDir::new(certs_dir);
        let (cert, key) = identity
            .files(&dir)
            .context("a node's gRPC API takes only callers with a client certificate")?;
        // Building the rustls configuration checks every file now and names the one that is
        // missing or malformed; tonic's loader would only fail at the first call.
        meridian_security::client_config(&dir, identity)?;
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read(&dir.ca_cert())?))
            .identity(Identity::from_pem(read(&cert)?, read(&key)?));
        Ok(NodeDialer { tls: Some(tls) })
    }

    /// Whether connections use TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// A lazily connected channel to a node's listen address; every call on it fails after
    /// `timeout`.
    pub(crate) fn channel(&self, listen_addr: &str, timeout: Duration) -> anyhow::Result<Channel> {
        let scheme = if self.is_tls() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{listen_addr}"))?
            .connect_timeout(Duration::from_secs(1))
            .timeout(timeout)
            .tcp_nodelay(true);
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.clone())?;
        }
        Ok(endpoint.connect_lazy())
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

/// The TLS side of a secure node's gRPC server: it presents `node.crt` and completes a
/// handshake only with a client whose certificate `ca.crt` signed.
pub(crate) fn server_tls(certs_dir: &Path) -> anyhow::Result<ServerTlsConfig> {
    let dir = CertsDir::new(certs_dir);
    // As for clients: fail at start, naming the file, rather than at the first connection.
    meridian_security::mutual_server_config(&dir)?;
    Ok(ServerTlsConfig::new()
        .identity(Identity::from_pem(
            read(&dir.node_cert())?,
            read(&dir.node_key())?,
        ))
        .client_ca_root(Certificate::from_pem(read(&dir.ca_cert())?))
        .timeout(HANDSHAKE_TIMEOUT))
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

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}
