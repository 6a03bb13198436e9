//! A fake SQL backend with canned answers, and a test server running on it.
//!
//! Statements (split on `;`, whitespace-normalised, case-insensitive):
//! - `select ints`: columns `a int4`, `b text`; rows (1, 'one'), (2, NULL)
//! - `select types`: one row of every type
//! - `select who`: the session's user and database
//! - `select many N`: N rows of one `int8` column `n`
//! - `create ...`: `CREATE TABLE`; `insert ...`: `INSERT 0 3`
//! - `begin` opens a transaction block, `commit`/`rollback` end it; an error inside the
//!   block fails it, and statements of a failed block get 25P02
//! - `fail`: error 42P01 with detail, hint and position
//! - `block`: signals `started`, then waits for `release` before completing with `BLOCK`
//! - `bad row`: a row narrower than its columns (a backend bug)
//! - anything else: syntax error 42601
//!
//! As the real engine does, `execute` stops after the first error.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meridian_pgwire::{
    ColumnInfo, Datum, PgServerConfig, SqlBackend, SqlError, SqlType, StatementResult, TxnStatus,
};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

/// Microseconds since 1970 of 2024-02-29 12:34:56.789.
pub const TIMESTAMP_MICROS: i64 = 1_709_210_096_789_000;

pub struct Fake {
    /// Whether `describe` answers (the real engine may not yet).
    pub can_describe: bool,
    /// Every statement run, in order.
    pub executed: Mutex<Vec<String>>,
    /// Signalled when a `block` statement starts.
    pub started: Notify,
    /// Lets one waiting `block` statement finish.
    pub release: Notify,
}

impl Fake {
    pub fn new(can_describe: bool) -> Fake {
        Fake {
            can_describe,
            executed: Mutex::new(Vec::new()),
            started: Notify::new(),
            release: Notify::new(),
        }
    }

    pub fn executed(&self) -> Vec<String> {
        self.executed.lock().unwrap().clone()
    }
}

pub struct FakeSession {
    user: String,
    database: String,
    /// `begin` opens a block, `commit` / `rollback` end it, an error inside fails it.
    txn: TxnStatus,
}

fn col(name: &str, ty: SqlType) -> ColumnInfo {
    ColumnInfo {
        name: name.to_owned(),
        ty,
    }
}

fn err(code: &'static str, message: &str) -> SqlError {
    SqlError {
        code,
        message: message.to_owned(),
        detail: None,
        hint: None,
        position: None,
    }
}

fn columns_of(stmt: &str) -> Option<Vec<ColumnInfo>> {
    Some(match stmt {
        "select ints" => vec![col("a", SqlType::Int4), col("b", SqlType::Text)],
        "select types" => vec![
            col("bool", SqlType::Bool),
            col("int2", SqlType::Int2),
            col("int8", SqlType::Int8),
            col("float8", SqlType::Float8),
            col("text", SqlType::Text),
            col("ts", SqlType::Timestamp),
        ],
        "select who" => vec![col("user", SqlType::Text), col("database", SqlType::Text)],
        "bad row" => vec![col("a", SqlType::Int4), col("b", SqlType::Int4)],
        s if s.starts_with("select many ") => vec![col("n", SqlType::Int8)],
        _ => return None,
    })
}

impl Fake {
    async fn run_one(
        &self,
        session: &FakeSession,
        stmt: &str,
    ) -> Result<StatementResult, SqlError> {
        let rows = match stmt {
            "select ints" => vec![
                vec![Datum::Int(1), Datum::Text("one".into())],
                vec![Datum::Int(2), Datum::Null],
            ],
            "select types" => vec![vec![
                Datum::Bool(true),
                Datum::Int(-7),
                Datum::Int(1 << 40),
                Datum::Float(2.5),
                Datum::Text("héllo".into()),
                Datum::Timestamp(TIMESTAMP_MICROS),
            ]],
            "select who" => vec![vec![
                Datum::Text(session.user.clone()),
                Datum::Text(session.database.clone()),
            ]],
            "bad row" => vec![vec![Datum::Int(1)]],
            s if s.starts_with("select many ") => {
                let n: i64 = s["select many ".len()..]
                    .parse()
                    .map_err(|_| err("22P02", "bad count"))?;
                (0..n).map(|i| vec![Datum::Int(i)]).collect()
            }
            "fail" => {
                return Err(SqlError {
                    code: "42P01",
                    message: "relation \"nope\" does not exist".into(),
                    detail: Some("some detail".into()),
                    hint: Some("some hint".into()),
                    position: Some(3),
                });
            }
            "block" => {
                self.started.notify_one();
                self.release.notified().await;
                return Ok(command("BLOCK"));
            }
            "begin" => return Ok(command("BEGIN")),
            "commit" => return Ok(command("COMMIT")),
            s if s.starts_with("create") => return Ok(command("CREATE TABLE")),
            s if s.starts_with("insert") => return Ok(command("INSERT 0 3")),
            _ => return Err(err("42601", &format!("syntax error at or near \"{stmt}\""))),
        };
        Ok(StatementResult::Query {
            columns: columns_of(stmt).expect("row-returning statements have columns"),
            rows,
        })
    }
}

fn command(tag: &str) -> StatementResult {
    StatementResult::Command {
        tag: tag.to_owned(),
    }
}

fn statements(sql: &str) -> impl Iterator<Item = String> + '_ {
    sql.split(';')
        .map(|s| {
            s.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase()
        })
        .filter(|s| !s.is_empty() && !s.starts_with("--"))
}

#[async_trait::async_trait]
impl SqlBackend for Fake {
    type Session = FakeSession;

    fn open_session(&self, user: &str, database: &str) -> Result<FakeSession, SqlError> {
        if database == "nodb" {
            return Err(err("3D000", "database \"nodb\" does not exist"));
        }
        Ok(FakeSession {
            user: user.to_owned(),
            database: database.to_owned(),
            txn: TxnStatus::Idle,
        })
    }

    async fn execute(
        &self,
        session: &mut FakeSession,
        sql: &str,
    ) -> Vec<Result<StatementResult, SqlError>> {
        let mut results = Vec::new();
        for stmt in statements(sql) {
            self.executed.lock().unwrap().push(stmt.clone());
            let result = match stmt.as_str() {
                "begin" => {
                    session.txn = TxnStatus::InBlock;
                    Ok(command("BEGIN"))
                }
                "commit" | "rollback" => {
                    session.txn = TxnStatus::Idle;
                    Ok(command(&stmt.to_uppercase()))
                }
                _ if session.txn == TxnStatus::Failed => Err(err("25P02", "block failed")),
                _ => self.run_one(session, &stmt).await,
            };
            if result.is_err() && session.txn == TxnStatus::InBlock {
                session.txn = TxnStatus::Failed;
            }
            let failed = result.is_err();
            results.push(result);
            if failed {
                break;
            }
        }
        results
    }

    fn transaction_status(&self, session: &FakeSession) -> TxnStatus {
        session.txn
    }

    async fn describe(
        &self,
        _session: &mut FakeSession,
        sql: &str,
    ) -> Result<Option<Vec<ColumnInfo>>, SqlError> {
        if !self.can_describe {
            return Ok(None);
        }
        let stmt = statements(sql).next().unwrap_or_default();
        Ok(Some(columns_of(&stmt).unwrap_or_default()))
    }
}

/// A server on 127.0.0.1 with a fake backend.
pub struct TestServer {
    pub addr: SocketAddr,
    pub fake: Arc<Fake>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start(fake: Fake) -> TestServer {
        Self::start_with(fake, Duration::from_secs(10)).await
    }

    pub async fn start_with(fake: Fake, shutdown_grace: Duration) -> TestServer {
        let config = PgServerConfig {
            insecure: true,
            server_version: "15.0 (Meridian test)".to_owned(),
            shutdown_grace,
            ..PgServerConfig::default()
        };
        Self::start_config(fake, config).await
    }

    pub async fn start_config(fake: Fake, config: PgServerConfig) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let fake = Arc::new(fake);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(meridian_pgwire::serve(
            listener,
            Arc::clone(&fake),
            config,
            async {
                let _ = rx.await;
            },
        ));
        TestServer {
            addr,
            fake,
            shutdown: Some(tx),
            task,
        }
    }

    pub fn url(&self, database: &str) -> String {
        format!(
            "postgresql://anyone@127.0.0.1:{}/{database}?connect_timeout=10",
            self.addr.port()
        )
    }

    /// A connected tokio-postgres client (user `anyone`, database `defaultdb`).
    pub async fn client(&self) -> tokio_postgres::Client {
        self.try_client("defaultdb").await.expect("connect")
    }

    pub async fn try_client(
        &self,
        database: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) =
            tokio_postgres::connect(&self.url(database), tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// Asks the server to shut down, without waiting.
    pub fn request_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Shuts the server down and returns what `serve` returned.
    pub async fn stop(mut self) -> std::io::Result<()> {
        self.request_shutdown();
        tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .expect("serve returns after shutdown")
            .expect("serve task")
    }

    /// Waits for `serve` to return, with a deadline.
    pub async fn join(&mut self, deadline: Duration) -> std::io::Result<()> {
        tokio::time::timeout(deadline, &mut self.task)
            .await
            .expect("serve returns within the deadline")
            .expect("serve task")
    }
}
