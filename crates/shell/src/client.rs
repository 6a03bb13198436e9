//! A small PostgreSQL-protocol client for the simple query protocol.
//!
//! tokio-postgres parses the connection URL, but its `simple_query` drops what a psql-like
//! display needs: command tags (`INSERT 0 1`, `CREATE TABLE`) and result column types (psql
//! right-aligns numeric columns). This client speaks the protocol itself with the message
//! codecs and SCRAM/MD5 helpers of `postgres-protocol`, over TCP, TLS (`tls.rs`) or a Unix
//! socket.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::backend::{ErrorFields, Message};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_postgres::config::{Config, Host, SslMode};

use crate::error::{Error, Result};
use crate::tls::TlsFiles;

/// Used when the URL sets no `connect_timeout`, so that an unreachable host does not hang.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// An error or notice reported by the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerError {
    /// `ERROR`, `FATAL`, `NOTICE`, ...
    pub severity: String,
    /// SQLSTATE.
    pub code: String,
    /// Primary message.
    pub message: String,
    /// Optional detail.
    pub detail: Option<String>,
    /// Optional hint.
    pub hint: Option<String>,
    /// 1-based character position in the statement.
    pub position: Option<u32>,
}

/// A result column: its name and type OID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The column label.
    pub name: String,
    /// The PostgreSQL type OID.
    pub type_oid: u32,
}

/// The rows of a row-returning statement, in text format (`None` is NULL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResultSet {
    /// Result columns.
    pub columns: Vec<Column>,
    /// Rows, one value per column.
    pub rows: Vec<Vec<Option<String>>>,
}

/// The outcome of one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementOutput {
    /// Rows, and the command tag (`SELECT 2`).
    Rows(ResultSet, String),
    /// A statement without rows, with its command tag.
    Command(String),
    /// The query string held no statement.
    Empty,
    /// The data of a `COPY ... TO STDOUT`.
    CopyOut(Vec<u8>),
}

/// Everything the server answered to one query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryResponse {
    /// Outcomes of the statements that completed, in order.
    pub outputs: Vec<StatementOutput>,
    /// The error that ended the query string, if any.
    pub error: Option<ServerError>,
    /// Notices and warnings sent along the way.
    pub notices: Vec<ServerError>,
}

trait Socket: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Socket for T {}

/// An open session with a server.
pub struct Connection {
    socket: Box<dyn Socket>,
    buf: BytesMut,
    parameters: HashMap<String, String>,
    database: String,
}

/// Connection settings drawn from the URL (and `PGPASSWORD`).
struct Target {
    config: Config,
    user: String,
    database: String,
    password: Option<Vec<u8>>,
}

impl Target {
    fn parse(url: &str) -> Result<Target> {
        let config: Config = url.parse().map_err(Error::InvalidUrl)?;
        let user = match config.get_user() {
            Some(user) => user.to_owned(),
            None => std::env::var("PGUSER")
                .or_else(|_| std::env::var("USER"))
                .unwrap_or_else(|_| "root".to_owned()),
        };
        let database = config
            .get_dbname()
            .map_or_else(|| user.clone(), str::to_owned);
        let password = config
            .get_password()
            .map(<[u8]>::to_vec)
            .or_else(|| std::env::var_os("PGPASSWORD").map(|p| p.into_encoded_bytes()));
        Ok(Target {
            config,
            user,
            database,
            password,
        })
    }

    /// The endpoints to try, in order, as (description, host).
    fn endpoints(&self) -> Vec<(String, Host, u16)> {
        let hosts = self.config.get_hosts();
        let ports = self.config.get_ports();
        let port_of = |i: usize| match ports {
            [] => 5432,
            [one] => *one,
            many => many.get(i).copied().unwrap_or(5432),
        };
        if hosts.is_empty() {
            return vec![(
                "localhost:5432".to_owned(),
                Host::Tcp("localhost".to_owned()),
                port_of(0),
            )];
        }
        hosts
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let port = port_of(i);
                let shown = match host {
                    Host::Tcp(name) => format!("{name}:{port}"),
                    Host::Unix(dir) => dir.join(format!(".s.PGSQL.{port}")).display().to_string(),
                };
                (shown, host.clone(), port)
            })
            .collect()
    }
}

/// Opens a socket to `host`, over TLS when `tls` is set (TCP only, as in libpq).
async fn open_socket(
    shown: &str,
    host: &Host,
    port: u16,
    tls: Option<&TlsFiles>,
) -> Result<Box<dyn Socket>> {
    let connect_error = |source| Error::Connect {
        target: shown.to_owned(),
        source,
    };
    Ok(match host {
        Host::Tcp(name) => {
            let stream = tokio::net::TcpStream::connect((name.as_str(), port))
                .await
                .map_err(connect_error)?;
            stream.set_nodelay(true).map_err(connect_error)?;
            match tls {
                Some(files) => Box::new(crate::tls::start_tls(stream, name, files).await?),
                None => Box::new(stream),
            }
        }
        Host::Unix(_) if tls.is_some() => {
            return Err(Error::Tls(
                "sslmode=require needs a TCP host, not a Unix socket".to_owned(),
            ));
        }
        Host::Unix(dir) => Box::new(
            tokio::net::UnixStream::connect(dir.join(format!(".s.PGSQL.{port}")))
                .await
                .map_err(connect_error)?,
        ),
    })
}

impl Connection {
    /// Connects to the first host of `url` that accepts, and starts a session.
    /// `url` is a `postgresql://` URL or a `key=value` connection string; with
    /// `sslmode=require`, or with a certificates directory and no `sslmode=disable`, the
    /// connection uses TLS, verified against `ca_cert` (or the directory's `ca.crt`, or
    /// `$PGSSLROOTCERT`) when given, presenting the user's client certificate from the
    /// directory when it has one (see `tls.rs`).
    pub async fn connect(
        url: &str,
        ca_cert: Option<&Path>,
        certs_dir: Option<&Path>,
    ) -> Result<Connection> {
        let target = Target::parse(url)?;
        let mode = target.config.get_ssl_mode();
        let files = TlsFiles::new(ca_cert, certs_dir, &target.user);
        let tls = (mode == SslMode::Require || (certs_dir.is_some() && mode != SslMode::Disable))
            .then_some(&files);
        let timeout = target
            .config
            .get_connect_timeout()
            .copied()
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let mut last_error = None;
        for (shown, host, port) in target.endpoints() {
            let attempt = async {
                let socket = open_socket(&shown, &host, port, tls).await?;
                Connection::start(socket, &target).await
            };
            match tokio::time::timeout(timeout, attempt).await {
                Ok(Ok(conn)) => return Ok(conn),
                // The server answered: trying another host would not change its mind.
                Ok(Err(err @ Error::Refused(_))) => return Err(err),
                Ok(Err(err)) => last_error = Some(err),
                Err(_) => last_error = Some(Error::ConnectTimeout { target: shown }),
            }
        }
        Err(last_error.unwrap_or(Error::Unsupported("a URL without hosts")))
    }

    async fn start(socket: Box<dyn Socket>, target: &Target) -> Result<Connection> {
        let mut conn = Connection {
            socket,
            buf: BytesMut::with_capacity(8192),
            parameters: HashMap::new(),
            database: target.database.clone(),
        };
        let application_name = target
            .config
            .get_application_name()
            .unwrap_or("meridian sql");
        let mut params = vec![
            ("user", target.user.as_str()),
            ("database", target.database.as_str()),
            ("application_name", application_name),
            ("client_encoding", "UTF8"),
        ];
        if let Some(options) = target.config.get_options() {
            params.push(("options", options));
        }
        conn.send(|buf| frontend::startup_message(params, buf))
            .await?;
        conn.authenticate(target).await?;
        loop {
            match conn.recv().await? {
                Message::ReadyForQuery(_) => return Ok(conn),
                Message::ParameterStatus(body) => {
                    let (name, value) = (body.name()?.to_owned(), body.value()?.to_owned());
                    conn.parameters.insert(name, value);
                }
                Message::ErrorResponse(body) => {
                    return Err(Error::Refused(Box::new(server_error(body.fields())?)));
                }
                Message::BackendKeyData(_) | Message::NoticeResponse(_) => {}
                _ => return Err(Error::Protocol("unexpected message during startup".into())),
            }
        }
    }

    async fn authenticate(&mut self, target: &Target) -> Result<()> {
        let password = || target.password.as_deref().ok_or(Error::PasswordRequired);
        loop {
            match self.recv().await? {
                Message::AuthenticationOk => return Ok(()),
                Message::AuthenticationCleartextPassword => {
                    let pw = password()?;
                    self.send(|buf| frontend::password_message(pw, buf)).await?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let hash = md5_hash(target.user.as_bytes(), password()?, body.salt());
                    self.send(|buf| frontend::password_message(hash.as_bytes(), buf))
                        .await?;
                }
                Message::AuthenticationSasl(body) => {
                    let mut mechanisms = body.mechanisms();
                    let mut scram_offered = false;
                    while let Some(mechanism) = mechanisms.next()? {
                        scram_offered |= mechanism == SCRAM_SHA_256;
                    }
                    if !scram_offered {
                        return Err(Error::Unsupported(
                            "SASL authentication other than SCRAM-SHA-256",
                        ));
                    }
                    self.scram(password()?).await?;
                }
                Message::ErrorResponse(body) => {
                    return Err(Error::Refused(Box::new(server_error(body.fields())?)));
                }
                Message::NoticeResponse(_) => {}
                _ => return Err(Error::Unsupported("this authentication method")),
            }
        }
    }

    async fn scram(&mut self, password: &[u8]) -> Result<()> {
        let mut scram = ScramSha256::new(password, ChannelBinding::unsupported());
        self.send(|buf| frontend::sasl_initial_response(SCRAM_SHA_256, scram.message(), buf))
            .await?;
        match self.recv().await? {
            Message::AuthenticationSaslContinue(body) => scram.update(body.data())?,
            Message::ErrorResponse(body) => {
                return Err(Error::Refused(Box::new(server_error(body.fields())?)));
            }
            _ => return Err(Error::Protocol("expected SASL continue".into())),
        }
        self.send(|buf| frontend::sasl_response(scram.message(), buf))
            .await?;
        match self.recv().await? {
            Message::AuthenticationSaslFinal(body) => Ok(scram.finish(body.data())?),
            Message::ErrorResponse(body) => {
                Err(Error::Refused(Box::new(server_error(body.fields())?)))
            }
            _ => Err(Error::Protocol("expected SASL final".into())),
        }
    }

    /// The database the session was opened on.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// A `ParameterStatus` value reported by the server (`server_version`, ...).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters.get(name).map(String::as_str)
    }

    /// Runs a query string with the simple query protocol and collects everything the server
    /// answers up to ReadyForQuery. SQL errors are part of the response; an `Err` means the
    /// connection itself failed.
    pub async fn query(&mut self, sql: &str) -> Result<QueryResponse> {
        self.send(|buf| frontend::query(sql, buf)).await?;
        let mut response = QueryResponse::default();
        let mut current: Option<ResultSet> = None;
        let mut copy_out: Option<Vec<u8>> = None;
        loop {
            match self.recv().await? {
                Message::RowDescription(body) => {
                    let columns = body
                        .fields()
                        .map(|f| {
                            Ok(Column {
                                name: f.name().to_owned(),
                                type_oid: f.type_oid(),
                            })
                        })
                        .collect()?;
                    current = Some(ResultSet {
                        columns,
                        rows: Vec::new(),
                    });
                }
                Message::DataRow(body) => {
                    let Some(set) = current.as_mut() else {
                        return Err(Error::Protocol("data row without row description".into()));
                    };
                    let data = body.buffer();
                    let row = body
                        .ranges()
                        .map(|r| Ok(r.map(|r| String::from_utf8_lossy(&data[r]).into_owned())))
                        .collect()?;
                    set.rows.push(row);
                }
                Message::CommandComplete(body) => {
                    let tag = body.tag()?.to_owned();
                    response
                        .outputs
                        .push(match (current.take(), copy_out.take()) {
                            (Some(set), _) => StatementOutput::Rows(set, tag),
                            (None, Some(data)) => StatementOutput::CopyOut(data),
                            (None, None) => StatementOutput::Command(tag),
                        });
                }
                Message::EmptyQueryResponse => response.outputs.push(StatementOutput::Empty),
                Message::ErrorResponse(body) => {
                    current = None;
                    response.error = Some(server_error(body.fields())?);
                }
                Message::NoticeResponse(body) => {
                    response.notices.push(server_error(body.fields())?)
                }
                Message::ParameterStatus(body) => {
                    let (name, value) = (body.name()?.to_owned(), body.value()?.to_owned());
                    self.parameters.insert(name, value);
                }
                Message::CopyOutResponse(_) => copy_out = Some(Vec::new()),
                Message::CopyData(body) => {
                    if let Some(data) = copy_out.as_mut() {
                        data.extend_from_slice(body.data());
                    }
                }
                Message::CopyInResponse(_) => {
                    self.send(|buf| {
                        frontend::copy_fail(
                            "COPY FROM STDIN is not supported by meridian sql yet",
                            buf,
                        )
                    })
                    .await?;
                }
                Message::ReadyForQuery(_) => return Ok(response),
                Message::CopyDone | Message::NotificationResponse(_) => {}
                _ => return Err(Error::Protocol("unexpected message during a query".into())),
            }
        }
    }

    async fn send<E>(
        &mut self,
        build: impl FnOnce(&mut BytesMut) -> std::result::Result<(), E>,
    ) -> Result<()>
    where
        Error: From<E>,
    {
        let mut out = BytesMut::new();
        build(&mut out)?;
        self.socket.write_all(&out).await.map_err(lost)?;
        Ok(())
    }

    async fn recv(&mut self) -> Result<Message> {
        loop {
            if let Some(message) = Message::parse(&mut self.buf)? {
                return Ok(message);
            }
            if self.socket.read_buf(&mut self.buf).await.map_err(lost)? == 0 {
                return Err(Error::ConnectionLost);
            }
        }
    }
}

/// Socket failures after the session started mean the connection is gone.
fn lost(_: std::io::Error) -> Error {
    Error::ConnectionLost
}

impl From<std::convert::Infallible> for Error {
    fn from(never: std::convert::Infallible) -> Error {
        match never {}
    }
}

fn server_error(mut fields: ErrorFields<'_>) -> Result<ServerError> {
    let mut err = ServerError::default();
    while let Some(field) = fields.next()? {
        let value = String::from_utf8_lossy(field.value_bytes()).into_owned();
        match field.type_() {
            b'S' => err.severity = value,
            b'C' => err.code = value,
            b'M' => err.message = value,
            b'D' => err.detail = Some(value),
            b'H' => err.hint = Some(value),
            b'P' => err.position = value.parse().ok(),
            _ => {}
        }
    }
    Ok(err)
}
