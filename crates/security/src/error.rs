//! The crate's error type.

use std::path::PathBuf;

/// Errors of certificate generation, TLS configuration and SCRAM credentials.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A file would be replaced without `overwrite`.
    #[error("{} already exists (pass --overwrite to replace it)", path.display())]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// A file does not hold what it should (a PEM certificate or private key).
    #[error("{}: {reason}", path.display())]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Generating or signing a certificate failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificates or keys.
    #[error("invalid TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The CA certificate cannot verify client certificates.
    #[error("invalid client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// A node certificate host is neither an IP address nor a valid DNS name.
    #[error("invalid host name {0:?}")]
    InvalidHost(String),
    /// A client certificate user name cannot be used in a file name.
    #[error(
        "invalid user name {0:?}: use letters, digits, '_', '-' and '.', not starting with '.'"
    )]
    InvalidUser(String),
    /// A node certificate needs at least one host.
    #[error("a node certificate needs at least one host name or IP address")]
    NoHosts,
    /// A stored SCRAM verifier could not be parsed.
    #[error("invalid SCRAM-SHA-256 verifier: {0}")]
    InvalidVerifier(&'static str),
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
