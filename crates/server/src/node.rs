//! Starting and stopping a node.
//!
//! A single node (`--single-node`, the demo) opens its replicas in-process and serves SQL at
//! once. A cluster member first serves gRPC only; once `meridian init` (or its stored cluster
//! descriptor, on restart) tells it the members, it starts its replica of the root tablet,
//! exchanges Raft messages with the other members over gRPC, and serves SQL, forwarding
//! requests to the tablet's leader wherever it is.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, RwLock};

use anyhow::Context;
use meridian_clock::TrueTime;
use meridian_pgwire::{PgServerConfig, SqlBackend, StatementInfo};
use meridian_proto::v1 as pb;
use meridian_proto::v1::node_server::NodeServer;
use meridian_sql::{CopyIn, Datum, Engine, Session, SqlError, SqlType, StatementResult, TxnStatus};
use meridian_storage::{FjallEngine, KvEngine};
use meridian_tablet::{KvClient, LocalGroup, Replica, ReplicaConfig, ReplicaEndpoint, Router};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster;
use crate::config::NodeConfig;
use crate::grpc::NodeService;
use crate::http;
use crate::remote::{RemoteReplica, channel};
use crate::state::{ClusterMode, Mode, NodeState};
use crate::timesync;
use crate::transport::GrpcTransport;

/// The id of the single tablet that holds the whole keyspace until tablets split.
pub const ROOT_TABLET: u64 = 1;

/// A running node.
pub struct Node {
    sql_addr: SocketAddr,
    listen_addr: SocketAddr,
    http_addr: SocketAddr,
    state: Arc<NodeState>,
    /// Single-node mode: the in-process tablet group.
    group: Option<Arc<LocalGroup>>,
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

    async fn prepare(
        &self,
        session: &mut Session,
        sql: &str,
        types: &[Option<SqlType>],
    ) -> Result<Option<StatementInfo>, SqlError> {
        let p = session.prepare_named(sql, types).await?;
        Ok(Some(StatementInfo {
            params: p.param_types().to_vec(),
            columns: p.columns().to_vec(),
        }))
    }

    async fn execute_prepared(
        &self,
        session: &mut Session,
        sql: &str,
        types: &[Option<SqlType>],
        params: Vec<Datum>,
    ) -> Result<StatementResult, SqlError> {
        session.execute_named(sql, types, params).await
    }

    async fn copy_in(
        &self,
        session: &mut Session,
        copy: &CopyIn,
        data: Vec<u8>,
    ) -> Result<u64, SqlError> {
        session.copy_in(copy, &data).await
    }

    fn transaction_status(&self, session: &Session) -> TxnStatus {
        session.transaction_status()
    }
}

impl Node {
    /// Opens the data directory and starts every listener. A single node returns once it
    /// serves SQL; a cluster member returns at once and serves SQL after `meridian init`.
    pub async fn start(config: NodeConfig) -> anyhow::Result<Node> {
        anyhow::ensure!(
            config.insecure,
            "secure mode (TLS and passwords) is not available yet: start with --insecure"
        );
        anyhow::ensure!(config.replicas >= 1, "a node needs at least one replica");
        anyhow::ensure!(
            config.join.is_empty() || config.replicas == 1,
            "in-process replicas are for single nodes; a cluster places one replica per node"
        );
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
        let clock = Arc::new(TrueTime::new(
            config.physical_clock.clone(),
            config.clock.clone(),
        ));
        clock.now().context("the local clock is unusable")?;

        let sql_listener = bind(config.sql_addr, "SQL").await?;
        let grpc_listener = bind(config.listen_addr, "gRPC").await?;
        let http_listener = bind(config.http_addr, "HTTP").await?;
        let sql_addr = sql_listener.local_addr()?;
        let listen_addr = grpc_listener.local_addr()?;
        let http_addr = http_listener.local_addr()?;

        let (mode, store) = if config.join.is_empty() {
            (Mode::Single, None)
        } else {
            let engine = open_engine(&config.data_dir.join("store"))?;
            let loaded = cluster::load(engine.as_ref())?;
            let (joined, _) = watch::channel(loaded);
            let mode = ClusterMode {
                engine: engine.clone(),
                join: config.join.clone(),
                joined,
            };
            (Mode::Cluster(mode), Some(engine))
        };
        let state = Arc::new(NodeState {
            clock: clock.clone(),
            listen_addr: listen_addr.to_string(),
            sql_addr: sql_addr.to_string(),
            region: config.region.clone(),
            zone: config.zone.clone(),
            mode,
            node_id: OnceLock::new(),
            cluster_id: OnceLock::new(),
            replicas: RwLock::new(Vec::new()),
        });

        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut node = Node {
            sql_addr,
            listen_addr,
            http_addr,
            state: state.clone(),
            group: None,
            shutdown,
            tasks: Vec::new(),
        };
        node.spawn_grpc(grpc_listener, shutdown_rx.clone());
        node.spawn_http(http_listener, shutdown_rx.clone());
        node.spawn_clock_sync(&config, shutdown_rx.clone());

        match store {
            None => {
                let group = start_single(&config, &clock).await?;
                let _ = state.node_id.set(1);
                for r in group.replicas() {
                    state.add_replica(r.clone());
                }
                node.group = Some(group.clone());
                node.spawn_sql(sql_listener, group, shutdown_rx);
                tracing::info!(%sql_addr, %listen_addr, %http_addr,
                    data_dir = %config.data_dir.display(), replicas = config.replicas, "node started");
            }
            Some(engine) => {
                let task = tokio::spawn(run_member(
                    config.clone(),
                    state,
                    engine,
                    sql_listener,
                    shutdown_rx,
                ));
                node.tasks.push(task);
                tracing::info!(%sql_addr, %listen_addr, %http_addr,
                    data_dir = %config.data_dir.display(), join = ?config.join, "cluster node started");
            }
        }
        Ok(node)
    }

    fn spawn_grpc(&mut self, listener: TcpListener, rx: watch::Receiver<bool>) {
        let service = NodeService {
            state: self.state.clone(),
        };
        self.tasks.push(tokio::spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            let result = tonic::transport::Server::builder()
                .add_service(
                    NodeServer::new(service)
                        .max_decoding_message_size(crate::remote::MAX_MESSAGE_BYTES)
                        .max_encoding_message_size(crate::remote::MAX_MESSAGE_BYTES),
                )
                .serve_with_incoming_shutdown(incoming, wait(rx))
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "gRPC server failed");
            }
        }));
    }

    fn spawn_http(&mut self, listener: TcpListener, rx: watch::Receiver<bool>) {
        let app = http::router(self.state.clone());
        self.tasks.push(tokio::spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(wait(rx))
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "HTTP server failed");
            }
        }));
    }

    /// Keeps the clock synchronised (see `timesync.rs`). A node listed among its own time
    /// masters is a master: it trusts its local source.
    fn spawn_clock_sync(&mut self, config: &NodeConfig, rx: watch::Receiver<bool>) {
        let me = self.listen_addr.to_string();
        let masters: Vec<String> = if config.time_masters.contains(&me) {
            Vec::new()
        } else {
            config.time_masters.clone()
        };
        let clock = self.state.clock.clone();
        let interval = config.clock_sync_interval;
        self.tasks.push(tokio::spawn(timesync::run(
            clock,
            masters,
            interval,
            wait(rx),
        )));
    }

    fn spawn_sql(
        &mut self,
        listener: TcpListener,
        kv: Arc<dyn KvClient>,
        rx: watch::Receiver<bool>,
    ) {
        let clock = self.state.clock.clone();
        self.tasks
            .push(tokio::spawn(serve_sql(listener, kv, clock, rx)));
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

    /// Single-node mode: the in-process tablet group.
    pub fn local_group(&self) -> Option<&Arc<LocalGroup>> {
        self.group.as_ref()
    }

    /// Replicas hosted by this node.
    pub fn replicas(&self) -> Vec<Replica> {
        self.state.all_replicas()
    }

    /// This node's id, once known.
    pub fn node_id(&self) -> Option<u64> {
        self.state.node_id.get().copied()
    }

    /// Graceful shutdown: stop accepting, let in-flight statements finish, stop the replicas.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        match &self.group {
            Some(group) => group.shutdown().await,
            None => {
                for r in self.state.all_replicas() {
                    r.stop();
                }
            }
        }
        tracing::info!("node stopped");
    }
}

async fn start_single(
    config: &NodeConfig,
    clock: &Arc<TrueTime>,
) -> anyhow::Result<Arc<LocalGroup>> {
    let engines = open_replica_engines(config)?;
    let group = LocalGroup::start(replica_config(config, 1, vec![]), engines, clock.clone())
        .context("cannot start the tablet")?;
    let group = Arc::new(group);
    group
        .wait_for_leader()
        .await
        .context("the tablet elected no leader")?;
    Ok(group)
}

fn replica_config(config: &NodeConfig, replica_id: u64, voters: Vec<u64>) -> ReplicaConfig {
    let mut replica = ReplicaConfig::single(ROOT_TABLET, config.clock.max_epsilon);
    replica.replica_id = replica_id;
    replica.initial_voters = voters;
    replica.tick_interval = config.raft_tick;
    replica.request_timeout = config.request_timeout;
    replica
}

/// A cluster member's life: wait for the cluster descriptor, start the replica and the router,
/// serve SQL until shutdown.
async fn run_member(
    config: NodeConfig,
    state: Arc<NodeState>,
    engine: Arc<dyn KvEngine>,
    sql_listener: TcpListener,
    shutdown: watch::Receiver<bool>,
) {
    let Mode::Cluster(cluster) = &state.mode else {
        return;
    };
    let mut joined = cluster.joined.subscribe();
    let stop = wait(shutdown.clone());
    tokio::pin!(stop);
    let (desc, node_id) = loop {
        if let Some(found) = joined.borrow_and_update().clone() {
            break found;
        }
        tracing::info!("waiting for `meridian init`");
        tokio::select! {
            _ = &mut stop => return,
            changed = joined.changed() => if changed.is_err() { return },
        }
    };
    let router = match activate(&config, &state, engine, &desc, node_id) {
        Ok(router) => router,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot start the node's replicas");
            return;
        }
    };
    tracing::info!(node_id, cluster_id = %desc.cluster_id, "serving SQL");
    serve_sql(sql_listener, router, state.clock.clone(), shutdown).await;
}

/// Starts this member's replica (if it hosts one) and a router over all replicas.
fn activate(
    config: &NodeConfig,
    state: &NodeState,
    engine: Arc<dyn KvEngine>,
    desc: &pb::ClusterDescriptor,
    node_id: u64,
) -> anyhow::Result<Arc<Router>> {
    let _ = state.node_id.set(node_id);
    let _ = state.cluster_id.set(desc.cluster_id.clone());
    let mut clients = std::collections::HashMap::new();
    for m in desc.members.iter().filter(|m| m.node_id != node_id) {
        let ch = channel(&m.listen_addr, config.request_timeout)
            .with_context(|| format!("bad address {} for node {}", m.listen_addr, m.node_id))?;
        clients.insert(m.node_id, crate::remote::node_client(ch));
    }
    let peers = clients.iter().map(|(id, c)| (*id, c.clone())).collect();
    let transport = Arc::new(GrpcTransport::start(
        node_id,
        desc.cluster_id.clone(),
        peers,
        config.network.clone(),
    ));
    let mut endpoints: Vec<Arc<dyn ReplicaEndpoint>> = Vec::new();
    for &id in &desc.root_replicas {
        if id == node_id {
            let rc = replica_config(config, node_id, desc.root_replicas.clone());
            let (replica, _task) =
                Replica::start(rc, engine.clone(), state.clock.clone(), transport.clone())?;
            state.add_replica(replica.clone());
            endpoints.push(Arc::new(replica));
        } else if let Some(client) = clients.get(&id) {
            endpoints.push(Arc::new(RemoteReplica {
                tablet_id: ROOT_TABLET,
                node_id: id,
                client: client.clone(),
                from_node: node_id,
                net: config.network.clone(),
            }));
        }
    }
    Ok(Arc::new(Router::new(
        ROOT_TABLET,
        endpoints,
        config.request_timeout,
    )))
}

async fn serve_sql(
    listener: TcpListener,
    kv: Arc<dyn KvClient>,
    clock: Arc<TrueTime>,
    rx: watch::Receiver<bool>,
) {
    let pg_config = PgServerConfig {
        insecure: true,
        server_version: format!("15.0 (Meridian {})", env!("CARGO_PKG_VERSION")),
        ..PgServerConfig::default()
    };
    let backend = Arc::new(SqlService(Engine::with_clock(kv, clock)));
    if let Err(e) = meridian_pgwire::serve(listener, backend, pg_config, wait(rx)).await {
        tracing::error!(error = %e, "SQL server failed");
    }
}

fn open_engine(dir: &std::path::Path) -> anyhow::Result<Arc<dyn KvEngine>> {
    let engine = FjallEngine::open(dir)
        .with_context(|| format!("cannot open the storage engine in {}", dir.display()))?;
    Ok(Arc::new(engine))
}

/// One fjall database per in-process replica, in `replica-N` subdirectories. A data directory
/// keeps the replica count it was created with: the Raft group's voters are fixed at creation.
fn open_replica_engines(config: &NodeConfig) -> anyhow::Result<Vec<Arc<dyn KvEngine>>> {
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
        .map(|i| open_engine(&config.data_dir.join(format!("replica-{i}"))))
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
