//! Starting and stopping a node.
//!
//! A single node (`--single-node`, the demo) opens its stores in-process (one per replica)
//! and serves SQL at once. A cluster member first serves gRPC only; once `meridian init` (or
//! its stored cluster descriptor, on restart) tells it the members, it opens its store (a new
//! member bootstraps the root tablet's replica; a restarted one starts every tablet replica it
//! holds), exchanges Raft messages with the other members over gRPC, and serves SQL through a
//! range client that sends each request to the leader of the tablet holding its keys, wherever
//! it is. Range upkeep (meta records, size splits, recovery of prepared transactions) runs in
//! the background on every node.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use anyhow::Context;
use meridian_clock::TrueTime;
use meridian_pgwire::{CatalogUsers, PgServerConfig, SqlBackend, StatementInfo};
use meridian_proto::v1 as pb;
use meridian_proto::v1::node_client::NodeClient;
use meridian_proto::v1::node_server::NodeServer;
use meridian_security::rustls::ServerConfig;
use meridian_security::{NodeCerts, certificate_fingerprint};
use meridian_sql::{CopyIn, Datum, Engine, Session, SqlError, SqlType, StatementResult, TxnStatus};
use meridian_storage::mvcc::VersionCache;
use meridian_storage::{FjallEngine, KvEngine};
use meridian_tablet::range::{self, ROOT_TABLET};
use meridian_tablet::{
    KvClient, LocalStores, RangeClient, RangeDescriptor, RangeSettings, Replica, ReplicaConfig,
    ReplicaEndpoint, Resolver, Store, StoreEndpoint, spawn_upkeep,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;

use crate::cluster;
use crate::config::NodeConfig;
use crate::grpc::NodeService;
use crate::http;
use crate::remote::RemoteReplica;
use crate::state::{ClusterMode, Mode, NodeState};
use crate::timesync;
use crate::tls::{self, TlsListener};
use crate::transport::GrpcTransport;

/// A running node.
pub struct Node {
    sql_addr: SocketAddr,
    listen_addr: SocketAddr,
    http_addr: SocketAddr,
    state: Arc<NodeState>,
    /// The certificates every TLS listener and client of the node consults (none without a
    /// certificates directory).
    certs: Option<NodeCerts>,
    /// Single-node mode: the in-process tablet group.
    local: Option<Arc<LocalStores>>,
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
        let certs = config.node_certs()?;
        let pg_config = config.pg_server_config(certs.as_ref())?;
        // gRPC and HTTP use TLS in secure mode only; SQL offers it whenever there are
        // certificates.
        let dialer = config.dialer(certs.as_ref())?;
        let secure = config.secure(certs.as_ref());
        let grpc_tls = secure.map(tls::grpc_server_config).transpose()?;
        let http_tls = secure.map(tls::http_server_config).transpose()?;
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
            let engine = open_engine(&config.data_dir.join("store"), config.cache_size)?;
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
            dialer,
            listen_addr: listen_addr.to_string(),
            sql_addr: sql_addr.to_string(),
            region: config.region.clone(),
            zone: config.zone.clone(),
            mode,
            node_id: OnceLock::new(),
            cluster_id: OnceLock::new(),
            stores: RwLock::new(Vec::new()),
            client: OnceLock::new(),
            draining: std::sync::atomic::AtomicBool::new(false),
            settings: range_settings(&config),
        });

        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut node = Node {
            sql_addr,
            listen_addr,
            http_addr,
            state: state.clone(),
            certs,
            local: None,
            shutdown,
            tasks: Vec::new(),
        };
        node.spawn_grpc(grpc_listener, grpc_tls, shutdown_rx.clone());
        node.spawn_http(http_listener, http_tls, shutdown_rx.clone());
        node.spawn_clock_sync(&config, shutdown_rx.clone());

        match store {
            None => {
                let local = start_single(&config, &clock, state.settings.clone()).await?;
                let _ = state.node_id.set(1);
                for s in local.stores() {
                    state.add_store(s.clone());
                }
                let _ = state.client.set(local.client());
                node.local = Some(local.clone());
                node.spawn_sql(sql_listener, local.client(), pg_config, shutdown_rx);
                tracing::info!(%sql_addr, %listen_addr, %http_addr,
                    data_dir = %config.data_dir.display(), replicas = config.replicas, "node started");
            }
            Some(engine) => {
                let task = tokio::spawn(run_member(
                    config.clone(),
                    state,
                    engine,
                    sql_listener,
                    pg_config,
                    shutdown_rx,
                ));
                node.tasks.push(task);
                tracing::info!(%sql_addr, %listen_addr, %http_addr,
                    data_dir = %config.data_dir.display(), join = ?config.join, "cluster node started");
            }
        }
        Ok(node)
    }

    /// Serves the node API; with `tls` (secure mode) only over mutual TLS, and only to nodes
    /// and `root` (see `tls.rs`).
    fn spawn_grpc(
        &mut self,
        listener: TcpListener,
        tls: Option<Arc<ServerConfig>>,
        rx: watch::Receiver<bool>,
    ) {
        let service = NodeServer::new(NodeService {
            state: self.state.clone(),
        })
        .max_decoding_message_size(crate::remote::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(crate::remote::MAX_MESSAGE_BYTES);
        let secure = tls.is_some();
        let service = InterceptedService::new(service, move |req| {
            if secure {
                tls::check_peer(req)
            } else {
                Ok(req)
            }
        });
        let router = tonic::transport::Server::builder().add_service(service);
        self.tasks.push(tokio::spawn(async move {
            let result = match tls {
                Some(tls) => {
                    let incoming = TlsListener::new(listener, tls).into_stream();
                    router
                        .serve_with_incoming_shutdown(incoming, wait(rx))
                        .await
                }
                None => {
                    // Raft messages and forwarded requests are small and latency-bound:
                    // without TCP_NODELAY, Nagle's algorithm and delayed ACKs add ~40 ms to
                    // each answer. (The TLS listener sets it too.)
                    let incoming = tonic::transport::server::TcpIncoming::from(listener)
                        .with_nodelay(Some(true));
                    router
                        .serve_with_incoming_shutdown(incoming, wait(rx))
                        .await
                }
            };
            if let Err(e) = result {
                tracing::error!(error = %e, "gRPC server failed");
            }
        }));
    }

    /// Serves `/health`, `/ready` and `/metrics`; with `tls` (secure mode) only over TLS.
    fn spawn_http(
        &mut self,
        listener: TcpListener,
        tls: Option<Arc<ServerConfig>>,
        rx: watch::Receiver<bool>,
    ) {
        let app = http::router(self.state.clone());
        self.tasks.push(tokio::spawn(async move {
            let result = match tls {
                Some(tls) => {
                    axum::serve(TlsListener::new(listener, tls), app)
                        .with_graceful_shutdown(wait(rx))
                        .await
                }
                None => {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(wait(rx))
                        .await
                }
            };
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
            self.state.dialer.clone(),
            interval,
            wait(rx),
        )));
    }

    fn spawn_sql(
        &mut self,
        listener: TcpListener,
        kv: Arc<dyn KvClient>,
        pg_config: PgServerConfig,
        rx: watch::Receiver<bool>,
    ) {
        let clock = self.state.clock.clone();
        self.tasks
            .push(tokio::spawn(serve_sql(listener, kv, clock, pg_config, rx)));
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

    /// Reads the certificates directory again (on SIGHUP): if `node.crt`, `node.key` and
    /// `ca.crt` are all usable, every new connection from then on (SQL, gRPC in and out,
    /// HTTP) presents and trusts the new ones; otherwise the error is logged and returned and
    /// the node goes on with the certificates it had. Open connections keep theirs.
    pub fn reload_certificates(&self) -> anyhow::Result<()> {
        let Some(certs) = &self.certs else {
            tracing::warn!(
                "no certificates to reload: the node runs without a certificates directory"
            );
            anyhow::bail!("the node has no certificates directory to reload");
        };
        let dir = certs.dir().path().display();
        match certs.reload() {
            Ok(()) => {
                let fingerprint = certificate_fingerprint(&certs.certificate());
                tracing::info!(%dir, node_cert_sha256 = %fingerprint, "reloaded the certificates");
                Ok(())
            }
            Err(e) => {
                tracing::error!(%dir, error = %e,
                    "cannot reload the certificates; the node goes on with the ones it had");
                Err(e).with_context(|| format!("cannot reload the certificates in {dir}"))
            }
        }
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
    /// A single node's in-process stores (`None` for a cluster member).
    pub fn local_stores(&self) -> Option<&Arc<LocalStores>> {
        self.local.as_ref()
    }

    /// Replicas hosted by this node.
    pub fn replicas(&self) -> Vec<Replica> {
        self.state.all_replicas()
    }

    /// The node's clock (operators and tests fence it with [`TrueTime::fence`]).
    pub fn clock(&self) -> &Arc<TrueTime> {
        &self.state.clock
    }

    /// This node's id, once known.
    pub fn node_id(&self) -> Option<u64> {
        self.state.node_id.get().copied()
    }

    /// Graceful shutdown: a cluster member first hands the leadership of its tablets to other
    /// nodes; then the node stops accepting, lets in-flight statements finish and stops the
    /// replicas.
    pub async fn shutdown(self) {
        // While the node still exchanges Raft messages: hand its leaderships over.
        if self.local.is_none() {
            drain_leases(&self.state.all_replicas()).await;
        }
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        match &self.local {
            Some(local) => local.shutdown().await,
            None => {
                for s in self.state.stores() {
                    s.shutdown().await;
                }
            }
        }
        tracing::info!("node stopped");
    }
}

/// The replicas of `replicas` that lead a group with other voters (which could lead instead).
pub(crate) fn leading(replicas: &[Replica]) -> Vec<&Replica> {
    replicas
        .iter()
        .filter(|r| r.is_leader() && r.descriptor().replicas.len() > 1)
        .collect()
}

/// Hands the leadership of every group of `replicas` that has other voters to a follower, and
/// waits up to `within` until none of them leads; whether all of them handed over.
pub(crate) async fn hand_over_leaderships(replicas: &[Replica], within: Duration) -> bool {
    let leading = leading(replicas);
    for r in &leading {
        r.transfer_leadership();
    }
    let moved = async {
        while leading.iter().any(|r| r.status().is_leader) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(within, moved).await.is_ok()
}

/// Before a cluster member stops: hands its leaderships over, so those tablets need no election
/// timeout to go on. Waits a few seconds at most.
async fn drain_leases(replicas: &[Replica]) {
    let tablets = leading(replicas).len();
    if tablets == 0 {
        return;
    }
    if hand_over_leaderships(replicas, Duration::from_secs(3)).await {
        tracing::info!(tablets, "handed over leadership before shutdown");
    } else {
        tracing::warn!("some tablets did not hand over leadership before shutdown");
    }
}

async fn start_single(
    config: &NodeConfig,
    clock: &Arc<TrueTime>,
    settings: RangeSettings,
) -> anyhow::Result<Arc<LocalStores>> {
    let engines = open_replica_engines(config)?;
    let local = LocalStores::start(replica_config(config), engines, clock.clone(), settings)
        .context("cannot start the tablets")?;
    let local = Arc::new(local);
    local
        .ready()
        .await
        .context("the root tablet elected no leader")?;
    Ok(local)
}

/// The settings every replica of the node starts from (ids and ranges are filled in per
/// tablet).
fn replica_config(config: &NodeConfig) -> ReplicaConfig {
    let mut replica = ReplicaConfig::single(ROOT_TABLET, config.clock.max_epsilon);
    replica.tick_interval = config.raft_tick;
    replica.request_timeout = config.request_timeout;
    replica.quiesce = config.raft_quiesce;
    replica.raft_log_max_entries = config.raft_log_max_entries;
    replica.raft_log_max_bytes = config.raft_log_max_bytes;
    replica
}

fn range_settings(config: &NodeConfig) -> RangeSettings {
    RangeSettings {
        split_bytes: config.range_max_bytes,
        merge_bytes: config.range_max_bytes / 4,
        split_qps: config.range_split_qps,
        split_qps_after: config.range_split_after,
        liveness_ttl: config.liveness_ttl,
        dead_after: config.dead_node_timeout,
        region: config.region.clone(),
        zone: config.zone.clone(),
        // A single node's stores live and die together: nothing to place.
        placement: !config.join.is_empty(),
        balance_leaders: true,
        follow_qps: config.leader_follow_qps as f64,
        learner_patience: config.request_timeout * 3 + Duration::from_secs(5),
        txn_piece_bytes: config.txn_piece_bytes,
        ..RangeSettings::default()
    }
}

/// The other members of the cluster, as this node reaches them: a gRPC client each, for the
/// requests it routes and for its Raft messages. Nodes that join later are added.
struct Peers {
    node_id: u64,
    clients: RwLock<std::collections::HashMap<u64, NodeClient<tonic::transport::Channel>>>,
    transport: Arc<GrpcTransport>,
    dialer: crate::tls::NodeDialer,
    timeout: Duration,
}

impl Peers {
    /// Starts talking to `m` (nothing if it is this node or known already).
    fn add(&self, m: &pb::ClusterMember) -> anyhow::Result<()> {
        let mut clients = self.clients.write().unwrap_or_else(|e| e.into_inner());
        if m.node_id == self.node_id || clients.contains_key(&m.node_id) {
            return Ok(());
        }
        let client = self
            .dialer
            .client(&m.listen_addr, self.timeout)
            .with_context(|| format!("bad address {} for node {}", m.listen_addr, m.node_id))?;
        self.transport.add_peer(m.node_id, client.clone());
        clients.insert(m.node_id, client);
        Ok(())
    }

    fn client(&self, id: u64) -> Option<NodeClient<tonic::transport::Channel>> {
        let clients = self.clients.read().unwrap_or_else(|e| e.into_inner());
        clients.get(&id).cloned()
    }
}

/// Endpoints of a cluster node: its own store's replicas, and the other members over gRPC.
struct ClusterResolver {
    node_id: u64,
    store: Arc<Store>,
    peers: Arc<Peers>,
    net: Arc<crate::netsim::NetworkSim>,
}

impl Resolver for ClusterResolver {
    fn endpoints(&self, desc: &RangeDescriptor) -> Vec<Arc<dyn ReplicaEndpoint>> {
        let mut out: Vec<Arc<dyn ReplicaEndpoint>> = Vec::new();
        for &id in &desc.replicas {
            if id == self.node_id {
                out.push(Arc::new(StoreEndpoint::new(
                    self.store.clone(),
                    desc.tablet_id,
                )));
            } else if let Some(client) = self.peers.client(id) {
                out.push(Arc::new(RemoteReplica {
                    tablet_id: desc.tablet_id,
                    node_id: id,
                    client,
                    from_node: self.node_id,
                    net: self.net.clone(),
                }));
            }
        }
        out
    }
}

/// How often a member looks for nodes that joined the cluster.
const MEMBER_REFRESH: Duration = Duration::from_secs(2);

/// Until shutdown: picks up the nodes that joined the cluster after `init` (from the root
/// tablet), so that this node routes requests and Raft messages to them too.
async fn follow_members(
    cluster: &ClusterMode,
    peers: &Peers,
    client: &RangeClient,
    shutdown: watch::Receiver<bool>,
) {
    let stop = wait(shutdown);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(MEMBER_REFRESH) => {}
        }
        let joined = match client.joined_nodes().await {
            Ok(j) => j,
            Err(e) => {
                tracing::debug!(error = %e, "cannot read the records of joined nodes");
                continue;
            }
        };
        match cluster::add_members(cluster, joined) {
            Ok(new) if !new.is_empty() => {
                for m in &new {
                    if let Err(e) = peers.add(m) {
                        tracing::warn!(error = %format!("{e:#}"), "cannot reach a joined node");
                    }
                    tracing::info!(node_id = m.node_id, listen_addr = %m.listen_addr,
                        "a node joined the cluster");
                }
                if let Some((desc, _)) = cluster.joined.borrow().as_ref() {
                    client.set_members(desc.members.iter().map(|m| m.node_id).collect());
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "cannot store new members"),
        }
    }
}

/// How often a node that is not initialised asks its --join addresses to let it join.
const JOIN_RETRY: Duration = Duration::from_secs(1);

/// Range upkeep for `stores` until shutdown.
async fn keep_ranges(
    stores: Vec<Arc<Store>>,
    client: Arc<RangeClient>,
    settings: RangeSettings,
    shutdown: watch::Receiver<bool>,
) {
    let tasks = spawn_upkeep(stores, client, settings);
    wait(shutdown).await;
    for task in tasks {
        task.abort();
        let _ = task.await;
    }
}

/// A cluster member's life: wait for the cluster descriptor, start the replica and the router,
/// serve SQL until shutdown.
async fn run_member(
    config: NodeConfig,
    state: Arc<NodeState>,
    engine: Arc<dyn KvEngine>,
    sql_listener: TcpListener,
    pg_config: PgServerConfig,
    shutdown: watch::Receiver<bool>,
) {
    let Mode::Cluster(cluster) = &state.mode else {
        return;
    };
    let mut joined = cluster.joined.subscribe();
    let stop = wait(shutdown.clone());
    tokio::pin!(stop);
    let asking = cluster::keep_asking_to_join(&state, cluster, JOIN_RETRY);
    tokio::pin!(asking);
    let mut asked = false;
    let (desc, node_id) = loop {
        if let Some(found) = joined.borrow_and_update().clone() {
            break found;
        }
        tracing::info!(
            "waiting for `meridian init` or for a member of the --join list to let this node join"
        );
        tokio::select! {
            _ = &mut stop => return,
            changed = joined.changed() => if changed.is_err() { return },
            _ = &mut asking, if !asked => asked = true,
        }
    };
    let (store, client, peers) = match activate(&config, &state, engine, &desc, node_id) {
        Ok(started) => started,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot start the node's replicas");
            return;
        }
    };
    let _ = state.client.set(client.clone());
    let upkeep = tokio::spawn(keep_ranges(
        vec![store],
        client.clone(),
        state.settings.clone(),
        shutdown.clone(),
    ));
    let members = {
        let (state, client, shutdown) = (state.clone(), client.clone(), shutdown.clone());
        tokio::spawn(async move {
            if let Mode::Cluster(cluster) = &state.mode {
                follow_members(cluster, &peers, &client, shutdown).await;
            }
        })
    };
    tracing::info!(node_id, cluster_id = %desc.cluster_id, "serving SQL");
    serve_sql(
        sql_listener,
        client,
        state.clock.clone(),
        pg_config,
        shutdown,
    )
    .await;
    let _ = upkeep.await;
    let _ = members.await;
}

/// Starts this member's store (with the root tablet's replica on a new member that holds one)
/// and the range client over the cluster.
fn activate(
    config: &NodeConfig,
    state: &NodeState,
    engine: Arc<dyn KvEngine>,
    desc: &pb::ClusterDescriptor,
    node_id: u64,
) -> anyhow::Result<(Arc<Store>, Arc<RangeClient>, Arc<Peers>)> {
    let _ = state.node_id.set(node_id);
    let _ = state.cluster_id.set(desc.cluster_id.clone());
    let transport = Arc::new(GrpcTransport::start(
        node_id,
        desc.cluster_id.clone(),
        Vec::new(),
        config.network.clone(),
    ));
    let peers = Arc::new(Peers {
        node_id,
        clients: RwLock::new(std::collections::HashMap::new()),
        transport: transport.clone(),
        dialer: state.dialer.clone(),
        timeout: config.request_timeout,
    });
    for m in &desc.members {
        peers.add(m)?;
    }
    let root = range::whole_keyspace(ROOT_TABLET, desc.root_replicas.clone());
    let bootstrap = desc.root_replicas.contains(&node_id).then_some(root);
    let store = Store::open(
        node_id,
        engine,
        state.clock.clone(),
        transport,
        replica_config(config),
        bootstrap,
    )?;
    state.add_store(store.clone());
    let resolver = Arc::new(ClusterResolver {
        node_id,
        store: store.clone(),
        peers: peers.clone(),
        net: config.network.clone(),
    });
    let client = Arc::new(RangeClient::new(
        resolver,
        state.clock.clone(),
        desc.root_replicas.clone(),
        config.request_timeout,
    ));
    client.set_members(desc.members.iter().map(|m| m.node_id).collect());
    client.set_txn_piece_bytes(config.txn_piece_bytes);
    Ok((store, client, peers))
}

/// Serves SQL with `pg_config` (see [`NodeConfig::pg_server_config`]); logins are checked
/// against the users of the engine's catalog.
async fn serve_sql(
    listener: TcpListener,
    kv: Arc<dyn KvClient>,
    clock: Arc<TrueTime>,
    pg_config: PgServerConfig,
    rx: watch::Receiver<bool>,
) {
    let engine = Engine::with_clock(kv, clock);
    let pg_config = PgServerConfig {
        users: Some(Arc::new(CatalogUsers::new(engine.clone()))),
        ..pg_config
    };
    let backend = Arc::new(SqlService(engine));
    if let Err(e) = meridian_pgwire::serve(listener, backend, pg_config, wait(rx)).await {
        tracing::error!(error = %e, "SQL server failed");
    }
}

/// The storage engine in `dir`, behind the cache of newest versions when it has a size.
fn open_engine(dir: &std::path::Path, cache_size: u64) -> anyhow::Result<Arc<dyn KvEngine>> {
    let engine: Arc<dyn KvEngine> = Arc::new(
        FjallEngine::open(dir)
            .with_context(|| format!("cannot open the storage engine in {}", dir.display()))?,
    );
    if cache_size == 0 {
        return Ok(engine);
    }
    Ok(Arc::new(VersionCache::new(engine, cache_size)))
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
        .map(|i| {
            open_engine(
                &config.data_dir.join(format!("replica-{i}")),
                config.cache_size / config.replicas.max(1) as u64,
            )
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
