//! rustls configurations built from a certificates directory, on the `ring` crypto provider.
//!
//! - [`server_config`]: a server presenting its `node.crt`, asking for no client certificate.
//! - [`sql_server_config`]: a node serving SQL clients in secure mode (its `node.crt`; a client
//!   may present a certificate signed by `ca.crt` instead of a password).
//! - [`mutual_server_config`]: a node serving other nodes (its `node.crt`, and the peer must
//!   present a certificate signed by `ca.crt`).
//! - [`client_config`]: a client that trusts `ca.crt`, optionally presenting a certificate
//!   (`client.<user>.crt`, or `node.crt` when a node connects to another node).
//!
//! The server configurations are those of a [`NodeCerts`] read once (see `node_certs.rs`): a
//! running node keeps its `NodeCerts` to reload them. The configurations leave ALPN empty;
//! callers set the protocol they speak (`postgresql`, `h2`, `http/1.1`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::certs::CertsDir;
use crate::error::{Error, Result};
use crate::node_certs::{ClientAuth, NodeCerts};

/// The certificate a client presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientIdentity {
    /// None: the server authenticates the client some other way (a password).
    Anonymous,
    /// `client.<user>.crt` and its key.
    User(String),
    /// `node.crt` and its key, for node-to-node connections.
    Node,
}

impl ClientIdentity {
    /// The certificate and key files of this identity in `dir` (none when anonymous).
    pub fn files(&self, dir: &CertsDir) -> Option<(PathBuf, PathBuf)> {
        match self {
            ClientIdentity::Anonymous => None,
            ClientIdentity::User(user) => Some((dir.client_cert(user), dir.client_key(user))),
            ClientIdentity::Node => Some((dir.node_cert(), dir.node_key())),
        }
    }
}

/// The crypto provider every configuration of this crate uses (`ring`).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate in a PEM file, in order (a certificate, then its chain).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let invalid = |reason: String| Error::InvalidFile {
        path: path.to_owned(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(Error::io(path))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("not a PEM certificate file: {}", pem_error(e))))?;
    if certs.is_empty() {
        return Err(invalid("holds no PEM certificate".to_owned()));
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, SEC1 or PKCS#1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let bytes = std::fs::read(path).map_err(Error::io(path))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| Error::InvalidFile {
        path: path.to_owned(),
        reason: format!("not a PEM private key: {}", pem_error(e)),
    })
}

/// A PEM parsing error as a person reads it (the parser's own message shows the lines it
/// quotes as byte arrays).
fn pem_error(e: pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { end_marker } => {
            let label = String::from_utf8_lossy(&end_marker);
            format!("no \"-----END {}-----\" line", label.trim())
        }
        pem::Error::IllegalSectionStart { line } => {
            format!("malformed line {:?}", String::from_utf8_lossy(&line).trim())
        }
        pem::Error::NoItemsFound => "no section of that kind".to_owned(),
        other => other.to_string(),
    }
}

/// The trust store holding the certificates of `ca.crt`.
pub fn load_roots(path: &Path) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| Error::InvalidFile {
            path: path.to_owned(),
            reason: format!("not a usable CA certificate: {e}"),
        })?;
    }
    Ok(roots)
}

/// A server presenting `node.crt`, asking clients for no certificate. The files are read
/// once; a node that reloads them builds its configurations from [`NodeCerts`] instead.
pub fn server_config(dir: &CertsDir) -> Result<ServerConfig> {
    NodeCerts::load(dir)?.server_config(ClientAuth::Off)
}

/// A node serving SQL clients in secure mode: it presents `node.crt` and accepts, without
/// requiring one, a client certificate signed by `ca.crt` (a client presenting
/// `client.<user>.crt` logs in as `<user>` without a password; see
/// [`crate::certificate_common_name`]). A certificate the CA did not sign fails the handshake.
pub fn sql_server_config(dir: &CertsDir) -> Result<ServerConfig> {
    NodeCerts::load(dir)?.server_config(ClientAuth::Optional)
}

/// A server presenting `node.crt` and requiring a client certificate signed by `ca.crt`.
pub fn mutual_server_config(dir: &CertsDir) -> Result<ServerConfig> {
    NodeCerts::load(dir)?.server_config(ClientAuth::Required)
}

/// A client trusting `ca.crt` and presenting `identity`.
pub fn client_config(dir: &CertsDir, identity: &ClientIdentity) -> Result<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(load_roots(&dir.ca_cert())?);
    let Some((cert, key)) = identity.files(dir) else {
        return Ok(builder.with_no_client_auth());
    };
    Ok(builder.with_client_auth_cert(load_certs(&cert)?, load_key(&key)?)?)
}
