//! A node's certificates, read again while it runs.
//!
//! ```text
//!  certs/node.crt node.key ca.crt ──load / reload──▶ NodeCerts: the set in use (one Arc)
//!                                                        ▲ asked at every handshake by
//!  ServerConfig (SQL, gRPC, HTTP): the certificate to present, the CA to check clients with
//!  ClientConfig (node to node):    the certificate to present, the CA to check servers with
//! ```
//!
//! The configurations built here are fixed once a listener or a client holds them, as rustls
//! and tonic want; what changes is the set they consult, so [`NodeCerts::reload`] changes
//! what every new connection presents and accepts. Connections already open keep the
//! certificates they were made with. A reload reads and checks every file before it replaces
//! anything: a missing or malformed file, a key that is not the certificate's, or a
//! certificate the CA does not accept leaves the previous set in use.
//!
//! The servers send no session tickets and keep no session cache: a resumed session skips
//! both certificates, so a client could otherwise go on after a reload on what the previous
//! set admitted. Nodes keep their connections open for long, so little is lost.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{
    ClientHello, NoServerSessionStorage, ResolvesServerCert, WebPkiClientVerifier,
};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme,
};

use crate::certs::CertsDir;
use crate::error::{Error, Result};
use crate::tls::{load_certs, load_key, load_roots, provider};

/// Whether a server asks its clients for a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// It does not ask (the HTTP endpoint).
    Off,
    /// It asks, and accepts a certificate signed by `ca.crt` or none (SQL: a client without
    /// one logs in with a password).
    Optional,
    /// It completes the handshake only with a certificate signed by `ca.crt` (gRPC).
    Required,
}

/// The certificates a node presents and trusts: `node.crt` and its key, and `ca.crt`. A cheap
/// handle: clones share the set, so a reload through any of them reaches every configuration
/// built from any of them.
#[derive(Clone)]
pub struct NodeCerts {
    dir: CertsDir,
    current: Arc<RwLock<Arc<CertSet>>>,
}

/// One consistent reading of the certificates directory.
struct CertSet {
    /// `node.crt` (and any chain after it) with `node.key`.
    key: Arc<CertifiedKey>,
    /// Accepts a peer's client certificate only if `ca.crt` signed it.
    clients: Arc<dyn ClientCertVerifier>,
    /// Accepts a server's certificate only if `ca.crt` signed it and it names the host dialled.
    servers: Arc<WebPkiServerVerifier>,
}

impl NodeCerts {
    /// Reads and checks the certificates of `dir` (see [`NodeCerts::reload`] for the checks).
    pub fn load(dir: &CertsDir) -> Result<NodeCerts> {
        let set = CertSet::read(dir)?;
        Ok(NodeCerts {
            dir: dir.clone(),
            current: Arc::new(RwLock::new(Arc::new(set))),
        })
    }

    /// The directory the certificates are read from.
    pub fn dir(&self) -> &CertsDir {
        &self.dir
    }

    /// Reads the directory again and, if every file is usable, makes the new set the one new
    /// connections use. Fails, leaving the set in use as it was, when a file is missing or
    /// malformed, when `node.key` is not the key of `node.crt`, or when `ca.crt` does not
    /// accept `node.crt` (another CA's certificate, or one that has expired).
    pub fn reload(&self) -> Result<()> {
        let set = CertSet::read(&self.dir)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
        Ok(())
    }

    /// The certificate the node presents now (the first of `node.crt`).
    pub fn certificate(&self) -> CertificateDer<'static> {
        self.get().key.cert[0].clone()
    }

    /// A server presenting the current `node.crt`, asking clients for a certificate as
    /// `clients` says and checking it against the current `ca.crt`. ALPN is left empty.
    pub fn server_config(&self, clients: ClientAuth) -> Result<ServerConfig> {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?;
        let builder = match clients {
            ClientAuth::Off => builder.with_no_client_auth(),
            ClientAuth::Optional | ClientAuth::Required => {
                builder.with_client_cert_verifier(Arc::new(CurrentClientVerifier {
                    certs: self.clone(),
                    mandatory: clients == ClientAuth::Required,
                }))
            }
        };
        let mut config = builder.with_cert_resolver(Arc::new(CurrentKey(self.clone())));
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        Ok(config)
    }

    /// A client presenting the current `node.crt` and trusting servers the current `ca.crt`
    /// signed, when they name the host dialled (how nodes reach each other). ALPN is left
    /// empty.
    pub fn client_config(&self) -> Result<ClientConfig> {
        // "Dangerous" because a custom verifier could accept anything; this one asks the
        // current set's WebPKI verifier, which checks exactly what the default one would.
        Ok(ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(CurrentServerVerifier(self.clone())))
            .with_client_cert_resolver(Arc::new(CurrentKey(self.clone()))))
    }

    fn get(&self) -> Arc<CertSet> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl fmt::Debug for NodeCerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeCerts")
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl CertSet {
    fn read(dir: &CertsDir) -> Result<CertSet> {
        let provider = provider();
        let (cert_path, key_path, ca_path) = (dir.node_cert(), dir.node_key(), dir.ca_cert());
        let chain = load_certs(&cert_path)?;
        let signing_key = provider
            .key_provider
            .load_private_key(load_key(&key_path)?)
            .map_err(|e| Error::InvalidFile {
                path: key_path.clone(),
                reason: format!("not a usable private key: {e}"),
            })?;
        let key = CertifiedKey::new(chain, signing_key);
        match key.keys_match() {
            // A key type whose public half rustls cannot derive is taken on trust.
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(e) => {
                return Err(Error::InvalidFile {
                    path: key_path,
                    reason: format!("not the key of {}: {e}", cert_path.display()),
                });
            }
        }
        let roots = Arc::new(load_roots(&ca_path)?);
        let clients =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone()).build()?;
        let servers = WebPkiServerVerifier::builder_with_provider(roots, provider).build()?;
        // Other nodes check this certificate as a client's (every node certificate is both), so
        // that check here refuses a set the cluster would refuse. Validity is calendar time.
        let accepted = match key.cert.split_first() {
            Some((leaf, chain)) => clients
                .verify_client_cert(leaf, chain, UnixTime::now())
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => Err("holds no certificate".to_owned()),
        };
        accepted.map_err(|e| Error::InvalidFile {
            path: cert_path,
            reason: format!("not accepted by {}: {e}", ca_path.display()),
        })?;
        Ok(CertSet {
            key: Arc::new(key),
            clients,
            servers,
        })
    }
}

/// Presents the current `node.crt`, as a server and as a client.
#[derive(Debug)]
struct CurrentKey(NodeCerts);

impl ResolvesServerCert for CurrentKey {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.get().key.clone())
    }
}

impl ResolvesClientCert for CurrentKey {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.get().key.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Checks client certificates against the current `ca.crt`.
#[derive(Debug)]
struct CurrentClientVerifier {
    certs: NodeCerts,
    mandatory: bool,
}

impl ClientCertVerifier for CurrentClientVerifier {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    /// No hints: they would have to outlive a reload. An empty list asks a client for any
    /// certificate it has, which is what a client of one cluster holds.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        self.certs
            .get()
            .clients
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.certs
            .get()
            .clients
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.certs
            .get()
            .clients
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.certs.get().clients.supported_verify_schemes()
    }
}

/// Checks server certificates against the current `ca.crt`.
#[derive(Debug)]
struct CurrentServerVerifier(NodeCerts);

impl ServerCertVerifier for CurrentServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        self.0.get().servers.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .get()
            .servers
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0
            .get()
            .servers
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.get().servers.supported_verify_schemes()
    }
}
