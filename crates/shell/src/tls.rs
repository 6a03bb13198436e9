//! TLS for `sslmode=require`: the SSLRequest exchange, then a rustls handshake.
//!
//! With a CA certificate (`ShellOptions::ca_cert`, else the certificates directory's
//! `ca.crt`, else `$PGSSLROOTCERT`) the server's certificate must chain to it and name the
//! host connected to (libpq's `verify-full`). Without one the connection is encrypted but the
//! server is not authenticated, which is what `sslmode=require` means in libpq too. A client
//! certificate (`client.<user>.crt` of the certificates directory) is presented when there is
//! one: Meridian logs its user in without a password.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::error::{Error, Result};

/// The SSLRequest packet: length 8, code 1234.5679.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// The files TLS uses: the CA certificate to verify the server with, and the client's
/// certificate and key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    pub ca_cert: Option<PathBuf>,
    pub client: Option<(PathBuf, PathBuf)>,
}

impl TlsFiles {
    /// `ca_cert` (else the directory's `ca.crt`), and `client.<user>.crt` / `.key` from
    /// `certs_dir` when both exist.
    pub(crate) fn new(ca_cert: Option<&Path>, certs_dir: Option<&Path>, user: &str) -> TlsFiles {
        let dir = certs_dir.map(meridian_security::CertsDir::new);
        let client = dir.as_ref().and_then(|d| {
            let (cert, key) = (d.client_cert(user), d.client_key(user));
            (cert.is_file() && key.is_file()).then_some((cert, key))
        });
        TlsFiles {
            ca_cert: ca_cert
                .map(Path::to_owned)
                .or_else(|| dir.map(|d| d.ca_cert())),
            client,
        }
    }
}

/// Asks the server for TLS on `tcp` and completes the handshake for `host`.
pub(crate) async fn start_tls(
    mut tcp: TcpStream,
    host: &str,
    files: &TlsFiles,
) -> Result<TlsStream<TcpStream>> {
    let config = client_config(files)?;
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| Error::Tls(format!("{host:?} is not a valid TLS server name")))?;
    tcp.write_all(&SSL_REQUEST).await?;
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).await?;
    if answer[0] != b'S' {
        return Err(Error::Tls(
            "the server does not accept TLS connections (sslmode=require)".to_owned(),
        ));
    }
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| Error::Tls(e.to_string()))
}

fn client_config(files: &TlsFiles) -> Result<ClientConfig> {
    let tls_error = |e: meridian_security::Error| Error::Tls(e.to_string());
    let builder = ClientConfig::builder_with_provider(meridian_security::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?;
    let from_env = std::env::var_os("PGSSLROOTCERT").filter(|p| !p.is_empty());
    let ca_cert = files
        .ca_cert
        .as_deref()
        .or(from_env.as_deref().map(Path::new));
    let builder = match ca_cert {
        Some(path) => {
            builder.with_root_certificates(meridian_security::load_roots(path).map_err(tls_error)?)
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(meridian_security::provider()))),
    };
    let mut config = match &files.client {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                meridian_security::load_certs(cert).map_err(tls_error)?,
                meridian_security::load_key(key).map_err(tls_error)?,
            )
            .map_err(|e| Error::Tls(e.to_string()))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(config)
}

/// Accepts any server certificate (but still checks the handshake signatures made with it):
/// `sslmode=require` without a CA certificate.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
