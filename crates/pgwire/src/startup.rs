//! Connection startup: protocol negotiation, the TLS requirement, authentication (trust, or
//! SCRAM-SHA-256 in secure mode), the session, the cancel key, and the `ParameterStatus`
//! values clients expect.

use std::collections::HashMap;
use std::fmt::Debug;

use futures::{Sink, SinkExt};
use pgwire::api::auth::mechanism::AuthMechanismFactory;
use pgwire::api::auth::{
    AuthOutcome, ServerParameterProvider, StartupHandler, finish_authentication,
    protocol_negotiation, save_startup_parameters_to_metadata,
};
use pgwire::api::{
    ClientInfo, METADATA_APPLICATION_NAME, METADATA_DATABASE, METADATA_USER, PidSecretKeyGenerator,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::startup::{Authentication, Startup};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use crate::auth::CertificateUser;
use crate::backend::SqlBackend;
use crate::error::{Severity, pg_error, sql_error};
use crate::server::Handler;
use crate::session::SessionSlot;

/// The `ParameterStatus` values sent after authentication.
#[derive(Debug)]
pub(crate) struct ServerParameters {
    pub server_version: String,
}

impl ServerParameterProvider for ServerParameters {
    fn server_parameters<C: ClientInfo>(&self, client: &C) -> Option<HashMap<String, String>> {
        let metadata = client.metadata();
        let user = metadata.get(METADATA_USER).cloned().unwrap_or_default();
        let application_name = metadata
            .get(METADATA_APPLICATION_NAME)
            .cloned()
            .unwrap_or_default();
        let params = [
            ("server_version", self.server_version.clone()),
            ("server_encoding", "UTF8".to_owned()),
            // Meridian speaks UTF8 only, whatever encoding the client asked for.
            ("client_encoding", "UTF8".to_owned()),
            ("DateStyle", "ISO, MDY".to_owned()),
            ("IntervalStyle", "postgres".to_owned()),
            ("TimeZone", "UTC".to_owned()),
            ("integer_datetimes", "on".to_owned()),
            ("standard_conforming_strings", "on".to_owned()),
            ("application_name", application_name),
            ("session_authorization", user),
            ("is_superuser", "off".to_owned()),
            ("default_transaction_read_only", "off".to_owned()),
            ("in_hot_standby", "off".to_owned()),
        ];
        Some(params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }
}

#[async_trait::async_trait]
impl<B: SqlBackend> StartupHandler for Handler<B> {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(startup) => {
                self.on_startup_message(client, &startup).await
            }
            PgWireFrontendMessage::PasswordMessageFamily(message)
                if self.security.scram.is_some() =>
            {
                let step = self.driver.advance_authentication(client, message).await;
                self.after_auth_step(client, step).await
            }
            _ => Err(pg_error(
                sql_error("08P01", "unexpected message during startup"),
                Severity::Fatal,
            )),
        }
    }
}

impl<B: SqlBackend> Handler<B> {
    /// The startup packet: protocol version, parameters, then authentication.
    async fn on_startup_message<C>(&self, client: &mut C, startup: &Startup) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        protocol_negotiation(client, startup).await?;
        save_startup_parameters_to_metadata(client, startup);
        if !matches!(client.metadata().get(METADATA_USER), Some(user) if !user.is_empty()) {
            return Err(PgWireError::UserNameRequired);
        }
        if self.security.require_tls && !client.is_secure() {
            // PostgreSQL's answer when no hostssl rule matches a plain connection.
            return Err(pg_error(
                sql_error(
                    "28000",
                    "connection requires TLS: reconnect with sslmode=require",
                ),
                Severity::Fatal,
            ));
        }
        let user = client
            .metadata()
            .get(METADATA_USER)
            .cloned()
            .unwrap_or_default();
        match &self.security.scram {
            // A client certificate naming the user stands in for a password (see `auth.rs`).
            Some(_)
                if client
                    .session_extensions()
                    .get::<CertificateUser>()
                    .is_some_and(|c| c.0 == user) =>
            {
                self.start_session(client, None).await
            }
            Some(scram) => {
                let step = self
                    .driver
                    .begin_authentication(client, scram.create())
                    .await;
                self.after_auth_step(client, step).await
            }
            None => self.start_session(client, None).await,
        }
    }

    /// Continues after a step of the SCRAM exchange: wait for the client's next message,
    /// start the session, or fail.
    async fn after_auth_step<C>(
        &self,
        client: &mut C,
        step: PgWireResult<AuthOutcome>,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match step {
            Ok(AuthOutcome::InProgress) => Ok(()),
            Ok(AuthOutcome::Authenticated { final_message, .. }) => {
                self.start_session(client, final_message).await
            }
            Err(err) => Err(authentication_failed(client, err)),
        }
    }

    /// After authentication: the session, the cancel key, the parameters, ReadyForQuery.
    async fn start_session<C>(
        &self,
        client: &mut C,
        final_message: Option<Authentication>,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Some(message) = final_message {
            client
                .send(PgWireBackendMessage::Authentication(message))
                .await?;
        }
        let metadata = client.metadata();
        let user = metadata.get(METADATA_USER).cloned().unwrap_or_default();
        // As in PostgreSQL, the database defaults to the user name.
        let database = metadata
            .get(METADATA_DATABASE)
            .filter(|db| !db.is_empty())
            .cloned()
            .unwrap_or_else(|| user.clone());

        let session = self
            .backend
            .open_session(&user, &database)
            .map_err(|err| pg_error(err, Severity::Fatal))?;
        tracing::debug!(%user, %database, peer = %client.socket_addr(), tls = client.is_secure(), "session opened");
        client.session_extensions().insert(SessionSlot {
            session: tokio::sync::Mutex::new(session),
        });

        let (pid, secret_key) = self.pid_generator.generate(client);
        client
            .session_extensions()
            .insert(self.cancels.register(pid, &secret_key));
        client.set_pid_and_secret_key(pid, secret_key);
        finish_authentication(client, self.parameters.as_ref()).await
    }
}

/// Every authentication failure looks the same to the client (wrong password, unknown user,
/// malformed SCRAM message), as in PostgreSQL; the reason goes to the log. Errors of the user
/// store keep their own SQLSTATE.
fn authentication_failed<C: ClientInfo>(client: &C, err: PgWireError) -> PgWireError {
    let user = client
        .metadata()
        .get(METADATA_USER)
        .cloned()
        .unwrap_or_default();
    if let PgWireError::UserError(info) = &err
        && !info.code.starts_with("28")
    {
        return err;
    }
    tracing::info!(%user, peer = %client.socket_addr(), reason = %err, "authentication failed");
    pg_error(
        sql_error(
            "28P01",
            format!("password authentication failed for user \"{user}\""),
        ),
        Severity::Fatal,
    )
}
