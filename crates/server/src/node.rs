//! Starting and stopping a node.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use meridian_clock::{SystemClock, TrueTime};
use meridian_pgwire::{PgServerConfig, SqlBackend};
use meridian_proto::v1::node_server::NodeServer;
use meridian_sql::{Engine, Session, SqlError, StatementResult};
use meridian_storage::{FjallEngine, KvEngine};
use meridian_tablet::{LocalGroup, ReplicaConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::NodeConfig;
use crate::grpc::NodeService;
use crate::http;

/// The id of the single tablet that holds the whole keyspace until tablets split.
pub const ROOT_TABLET: u64 = 1;

/// A running node.
pub struct Node {
    sql_addr: SocketAddr,
    listen_addr: SocketAddr,
    http_addr: SocketAddr,
    tablet: Arc<LocalGroup>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Runs SQL sessions of the wire protocol server on the SQL engine.
struct SqlService(Engine);

#[async_trait::async_trait]
impl SqlBackend for SqlService {
    type Session = Session;

    fn open_session(&self, user: &str, database: &str) -> Result<Session, SqlError> {
        Ok(self.0.session(user, database))
    }

    async fn execute(
        &self,
        session: &mut Session,
        sql: &str,
    ) -> Vec<Result<StatementResult, SqlError>> {
        session.execute(sql).await
    }
}

impl Node {
    /// Opens the data directory, starts the tablet and every listener, and returns once the
    /// node serves SQL.
    pub async fn start(config: NodeConfig) -> anyhow::Result<Node> {
        anyhow::ensure!(
            config.insecure,
            "secure mode (TLS and passwords) is not available yet: start with --insecure"
        );
        anyhow::ensure!(config.replicas >= 1, "a node needs at least one replica");
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
        let clock = Arc::new(TrueTime::new(Arc::new(SystemClock), config.clock.clone()));
        clock.now().context("the local clock is unusable")?;

        let engines = open_engines(&config)?;
        let mut replica = ReplicaConfig::single(ROOT_TABLET, config.clock.max_epsilon);
        replica.tick_interval = config.raft_tick;
        let tablet = Arc::new(
            LocalGroup::start(replica, engines, clock.clone())
                .context("cannot start the tablet")?,
        );
        tablet
            .wait_for_leader()
            .await
            .context("the tablet elected no leader")?;

        let sql_listener = bind(config.sql_addr, "SQL").await?;
        let grpc_listener = bind(config.listen_addr, "gRPC").await?;
        let http_listener = bind(config.http_addr, "HTTP").await?;
        let sql_addr = sql_listener.local_addr()?;
        let listen_addr = grpc_listener.local_addr()?;
        let http_addr = http_listener.local_addr()?;

        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();

        let engine = Engine::new(tablet.clone());
        let pg_config = PgServerConfig {
            insecure: true,
            server_version: format!("15.0 (Meridian {})", env!("CARGO_PKG_VERSION")),
            ..PgServerConfig::default()
        };
        let backend = Arc::new(SqlService(engine));
        let rx = shutdown_rx.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = meridian_pgwire::serve(sql_listener, backend, pg_config, wait(rx)).await
            {
                tracing::error!(error = %e, "SQL server failed");
            }
        }));

        let service = NodeService {
            node_id: 1,
            sql_addr: sql_addr.to_string(),
            listen_addr: listen_addr.to_string(),
            clock: clock.clone(),
            tablet: tablet.clone(),
        };
        let rx = shutdown_rx.clone();
        tasks.push(tokio::spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(grpc_listener);
            let result = tonic::transport::Server::builder()
                .add_service(NodeServer::new(service))
                .serve_with_incoming_shutdown(incoming, wait(rx))
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "gRPC server failed");
            }
        }));

        let rx = shutdown_rx.clone();
        let app = http::router(clock.clone(), tablet.clone());
        tasks.push(tokio::spawn(async move {
            let result = axum::serve(http_listener, app)
                .with_graceful_shutdown(wait(rx))
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "HTTP server failed");
            }
        }));

        // With only the local source, re-syncing resets the drift term of epsilon; time-master
        // polling replaces this when nodes form clusters.
        let rx = shutdown_rx.clone();
        let sync_clock = clock.clone();
        let interval = config.clock_sync_interval;
        tasks.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            let stop = wait(rx);
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    _ = &mut stop => break,
                    _ = ticker.tick() => sync_clock.sync_local(),
                }
            }
        }));

        tracing::info!(%sql_addr, %listen_addr, %http_addr, data_dir = %config.data_dir.display(),
            replicas = config.replicas, "node started");
        Ok(Node {
            sql_addr,
            listen_addr,
            http_addr,
            tablet,
            shutdown,
            tasks,
        })
    }

    /// The PostgreSQL wire protocol address.
    pub fn sql_addr(&self) -> SocketAddr {
        self.sql_addr
    }

    /// The gRPC address.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    /// The HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// A connection URL for psql and drivers.
    pub fn postgres_url(&self) -> String {
        format!(
            "postgresql://root@{}:{}/defaultdb?sslmode=disable",
            self.sql_addr.ip(),
            self.sql_addr.port()
        )
    }

    /// The tablet this node serves.
    pub fn tablet(&self) -> &Arc<LocalGroup> {
        &self.tablet
    }

    /// Graceful shutdown: stop accepting, let in-flight statements finish, stop the tablet.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        self.tablet.shutdown().await;
        tracing::info!("node stopped");
    }
}

/// One fjall database per in-process replica, in `replica-N` subdirectories. A data directory
/// keeps the replica count it was created with: the Raft group's voters are fixed at creation.
fn open_engines(config: &NodeConfig) -> anyhow::Result<Vec<Arc<dyn KvEngine>>> {
    let existing = std::fs::read_dir(&config.data_dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("replica-"))
        .count();
    anyhow::ensure!(
        existing == 0 || existing == config.replicas,
        "{} holds {existing} replica(s) but {} were requested; use the count it was created with",
        config.data_dir.display(),
        config.replicas
    );
    (1..=config.replicas)
        .map(|i| {
            let dir = config.data_dir.join(format!("replica-{i}"));
            let engine = FjallEngine::open(&dir)
                .with_context(|| format!("cannot open the storage engine in {}", dir.display()))?;
            Ok(Arc::new(engine) as Arc<dyn KvEngine>)
        })
        .collect()
}

async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for {what} on {addr}"))
}

/// Resolves when the shutdown flag is raised (or its sender is gone).
async fn wait(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}
