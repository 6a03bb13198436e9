//! Meridian's security material: certificates, TLS configurations and password credentials.
//!
//! ```text
//!  meridian cert create-ca | create-node HOSTS | create-client USER     (cli.rs)
//!          │ writes PEM files into a certificates directory                (certs.rs)
//!          ▼
//!  certs/ca.crt ca.key node.crt node.key client.<user>.crt client.<user>.key
//!          │ loaded into rustls configurations on the ring provider        (tls.rs)
//!          ▼
//!  ServerConfig for the SQL port and for node-to-node connections, ClientConfig for clients
//!  NodeCerts: a running node's set, which its configurations consult at every handshake,
//!          │ read again on reload (SIGHUP)                                  (node_certs.rs)
//!          │ a client certificate's common name is the SQL user it logs in as   (identity.rs)
//!
//!  CREATE USER ... PASSWORD  ──▶  ScramCredentials (salt, iterations, StoredKey, ServerKey)
//!                                  checked by the PostgreSQL server's SCRAM-SHA-256  (scram.rs)
//! ```
//!
//! Read first: `certs.rs` (what is generated and where), then `tls.rs` and `node_certs.rs`,
//! then `scram.rs`.
//!
//! Everything uses `ring` (through rcgen and rustls), never aws-lc. The binary adds the
//! certificate commands with one line: a `Cert { #[command(subcommand)] cmd: CertCommand }`
//! variant whose handler calls [`run`].

mod certs;
mod cli;
mod error;
mod identity;
mod node_certs;
mod scram;
mod tls;

pub use certs::{CertsDir, NODE_COMMON_NAME, create_ca, create_client, create_node};
pub use cli::{CertArgs, CertCommand, run};
pub use error::{Error, Result};
pub use identity::{certificate_common_name, certificate_fingerprint};
pub use node_certs::{ClientAuth, NodeCerts};
pub use scram::{DEFAULT_ITERATIONS, SALT_LEN, ScramCredentials};
pub use tls::{
    ClientIdentity, client_config, load_certs, load_key, load_roots, mutual_server_config,
    provider, server_config, sql_server_config,
};

/// The rustls crate this crate's configurations belong to.
pub use rustls;
