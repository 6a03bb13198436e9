//! Connection startup: protocol negotiation, (no) authentication, the session, and the
//! `ParameterStatus` values clients expect.

use std::collections::HashMap;
use std::fmt::Debug;

use futures::Sink;
use pgwire::api::auth::{
    ServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::{
    ClientInfo, METADATA_APPLICATION_NAME, METADATA_DATABASE, METADATA_USER, PidSecretKeyGenerator,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

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
        let PgWireFrontendMessage::Startup(startup) = message else {
            // No authentication exchange is ever started, so nothing but a startup message
            // is expected here.
            return Err(pg_error(
                sql_error("08P01", "unexpected message during startup"),
                Severity::Fatal,
            ));
        };
        protocol_negotiation(client, &startup).await?;
        save_startup_parameters_to_metadata(client, &startup);

        let metadata = client.metadata();
        let user = match metadata.get(METADATA_USER) {
            Some(user) if !user.is_empty() => user.clone(),
            _ => return Err(PgWireError::UserNameRequired),
        };
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
        tracing::debug!(%user, %database, peer = %client.socket_addr(), "session opened");
        client.session_extensions().insert(SessionSlot {
            session: tokio::sync::Mutex::new(session),
        });

        let (pid, secret_key) = self.pid_generator.generate(client);
        client.set_pid_and_secret_key(pid, secret_key);
        finish_authentication(client, &self.parameters).await
    }
}
