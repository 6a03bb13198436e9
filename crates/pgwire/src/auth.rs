//! Password authentication: the store of SCRAM-SHA-256 credentials the server checks
//! passwords against, and its adapter to pgwire's SCRAM implementation.
//!
//! An unknown user goes through the same exchange as a known one, with credentials derived
//! from a per-server secret that no password matches (as PostgreSQL does), so a client cannot
//! tell "no such user" from "wrong password": both end in FATAL `28P01`.
//!
//! A client that presented a certificate during the TLS handshake (which the server's TLS
//! configuration verified against its CA, see `meridian_security::sql_server_config`) whose
//! common name is the user it connects as logs in without a password: that is how `root`
//! logs in before it has one, with `client.root.crt` (CockroachDB's rule).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use meridian_security::ScramCredentials;
use meridian_sql::{Engine, SqlError};
use pgwire::api::auth::sasl::scram::ScramSecret;
use pgwire::api::auth::{AuthSource, LoginInfo, Password};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::tokio::server::MaybeTls;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{Severity, pg_error, sql_error};

/// Where the server finds the password credentials of users.
///
/// The node implements it over the catalog (users made with `CREATE USER ... PASSWORD`, whose
/// credentials come from [`ScramCredentials::from_password`]); tests use [`StaticUsers`].
#[async_trait::async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// The SCRAM-SHA-256 credentials of `user`, or `None` when there is no such user or it
    /// has no password; login then fails exactly as with a wrong password. An error (the
    /// catalog cannot be read, ...) is sent to the client as a FATAL error with its SQLSTATE.
    async fn scram_credentials(&self, user: &str) -> Result<Option<ScramCredentials>, SqlError>;
}

/// A fixed set of users and their credentials.
#[derive(Debug, Clone, Default)]
pub struct StaticUsers {
    users: HashMap<String, ScramCredentials>,
}

impl StaticUsers {
    /// No users.
    pub fn new() -> StaticUsers {
        StaticUsers::default()
    }

    /// Adds (or replaces) `user` with credentials derived from `password`.
    pub fn with_password(
        mut self,
        user: &str,
        password: &str,
    ) -> meridian_security::Result<StaticUsers> {
        self.insert(user, ScramCredentials::from_password(password)?);
        Ok(self)
    }

    /// Adds (or replaces) `user` with the given credentials.
    pub fn insert(&mut self, user: &str, credentials: ScramCredentials) {
        self.users.insert(user.to_owned(), credentials);
    }
}

#[async_trait::async_trait]
impl UserStore for StaticUsers {
    async fn scram_credentials(&self, user: &str) -> Result<Option<ScramCredentials>, SqlError> {
        Ok(self.users.get(user).cloned())
    }
}

/// The users of an engine's catalog (`CREATE USER ... PASSWORD`, see `meridian_sql`), read at
/// each login: what a node checks passwords against.
#[derive(Clone)]
pub struct CatalogUsers {
    engine: Engine,
}

impl CatalogUsers {
    /// The users of `engine`'s catalog.
    pub fn new(engine: Engine) -> CatalogUsers {
        CatalogUsers { engine }
    }
}

#[async_trait::async_trait]
impl UserStore for CatalogUsers {
    async fn scram_credentials(&self, user: &str) -> Result<Option<ScramCredentials>, SqlError> {
        let Some(verifier) = self.engine.password_verifier(user).await? else {
            return Ok(None);
        };
        ScramCredentials::parse(&verifier).map(Some).map_err(|e| {
            sql_error(
                "XX000",
                format!("internal error: the stored verifier of user \"{user}\" is malformed: {e}"),
            )
        })
    }
}

/// The user the client's certificate names, kept in the session's extensions (which, unlike
/// startup parameters, the client cannot set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertificateUser(pub String);

impl CertificateUser {
    /// The common name of the certificate the client presented in the TLS handshake, which
    /// checked that the CA signed it (a server that asks for no certificate never gets one).
    pub(crate) fn of(io: &MaybeTls) -> Option<CertificateUser> {
        let MaybeTls::Tls(tls) = io else {
            return None;
        };
        let leaf = tls.get_ref().1.peer_certificates()?.first()?;
        meridian_security::certificate_common_name(leaf.as_ref()).map(CertificateUser)
    }
}

/// pgwire's SCRAM credential source, backed by a [`UserStore`].
pub(crate) struct ScramSource {
    users: Arc<dyn UserStore>,
    /// Derives the stand-in credentials of unknown users.
    mock_key: hmac::Key,
}

impl fmt::Debug for ScramSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramSource").finish_non_exhaustive()
    }
}

impl ScramSource {
    pub(crate) fn new(users: Arc<dyn UserStore>) -> std::io::Result<ScramSource> {
        let mut secret = [0u8; 32];
        SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| std::io::Error::other("the system random number generator failed"))?;
        Ok(ScramSource {
            users,
            mock_key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
        })
    }

    /// Credentials for a user that does not exist: stable per user name (so repeated
    /// attempts see the same salt, as for a real user) and matched by no password.
    fn mock(&self, user: &str) -> ScramSecret {
        let derive = |purpose: &str| {
            let mut ctx = hmac::Context::with_key(&self.mock_key);
            ctx.update(purpose.as_bytes());
            ctx.update(&[0]);
            ctx.update(user.as_bytes());
            ctx.sign().as_ref().to_vec()
        };
        ScramSecret::Verifier {
            salt: derive("salt")[..meridian_security::SALT_LEN].to_vec(),
            iterations: meridian_security::DEFAULT_ITERATIONS as usize,
            stored_key: derive("stored key"),
            server_key: derive("server key"),
        }
    }
}

// The trait declares `&LoginInfo` with an elided lifetime; spelling it `<'_>` here makes
// async-trait bind it differently from the trait and the impl no longer matches.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl AuthSource for ScramSource {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        // Only SCRAM is offered, and it asks for verifiers through `get_scram_secret`.
        Err(PgWireError::InvalidPassword(
            login.user().unwrap_or_default().to_owned(),
        ))
    }

    async fn get_scram_secret(&self, login: &LoginInfo) -> PgWireResult<(ScramSecret, Option<()>)> {
        let user = login.user().unwrap_or_default();
        let secret = match self.users.scram_credentials(user).await {
            Ok(Some(creds)) => ScramSecret::Verifier {
                salt: creds.salt,
                iterations: creds.iterations as usize,
                stored_key: creds.stored_key.to_vec(),
                server_key: creds.server_key.to_vec(),
            },
            Ok(None) => self.mock(user),
            Err(err) => return Err(pg_error(err, Severity::Fatal)),
        };
        Ok((secret, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_users_get_stable_distinct_stand_ins() {
        let source = ScramSource::new(Arc::new(StaticUsers::new())).unwrap();
        let salt = |user: &str| match source.mock(user) {
            ScramSecret::Verifier { salt, .. } => salt,
            ScramSecret::SaltedPassword { .. } => unreachable!("mock credentials are verifiers"),
        };
        assert_eq!(salt("ghost"), salt("ghost"));
        assert_ne!(salt("ghost"), salt("ghost2"));
        assert_eq!(salt("ghost").len(), meridian_security::SALT_LEN);
        let other = ScramSource::new(Arc::new(StaticUsers::new())).unwrap();
        let other_salt = match other.mock("ghost") {
            ScramSecret::Verifier { salt, .. } => salt,
            ScramSecret::SaltedPassword { .. } => unreachable!("mock credentials are verifiers"),
        };
        assert_ne!(salt("ghost"), other_salt);
    }
}
