//! A node's configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use anyhow::Context as _;
use meridian_clock::{PhysicalClock, SystemClock, TrueTimeConfig};
use meridian_pgwire::PgServerConfig;
use meridian_security::{CertsDir, ClientAuth, NodeCerts};

use crate::netsim::NetworkSim;
use crate::tls::NodeDialer;

/// Everything a node needs to start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Where the node keeps its data (one fjall database per store: a cluster node has one,
    /// a single node one per in-process replica).
    pub data_dir: PathBuf,
    /// PostgreSQL wire protocol address (port 0: pick a free port).
    pub sql_addr: SocketAddr,
    /// gRPC address for node-to-node and client API traffic.
    pub listen_addr: SocketAddr,
    /// HTTP address for `/health`, `/ready` and `/metrics`.
    pub http_addr: SocketAddr,
    /// Accept SQL connections without authentication or TLS (TLS is still offered when
    /// `certs_dir` is set) and talk plaintext gRPC and HTTP. Otherwise (secure mode) SQL
    /// clients must use TLS and log in with a password or a client certificate, every gRPC
    /// connection between nodes is mutual TLS, and the HTTP endpoint is HTTPS (see `tls.rs`).
    pub insecure: bool,
    /// A certificates directory made by `meridian cert`: the SQL port presents its
    /// `node.crt` and accepts client certificates its `ca.crt` signed; in secure mode the
    /// gRPC and HTTP listeners and the node's gRPC clients use `node.crt` too. Required in
    /// secure mode. The node reads it again on `Node::reload_certificates`.
    pub certs_dir: Option<PathBuf>,
    /// Listen addresses of the nodes to form a cluster with. Empty: a single node that is its
    /// own cluster (no `meridian init` needed).
    pub join: Vec<String>,
    /// Locality: region.
    pub region: String,
    /// Locality: zone.
    pub zone: String,
    /// Single node only: number of replicas of every tablet, all in this process (1: a plain
    /// single node; 3: three-replica Raft groups replicating through an in-memory transport).
    pub replicas: usize,
    /// Clock uncertainty model.
    pub clock: TrueTimeConfig,
    /// The physical clock TrueTime reads (the system clock; tests inject skewed ones).
    pub physical_clock: Arc<dyn PhysicalClock>,
    /// Listen addresses of the time masters this node polls. Empty, or naming this node:
    /// trust the local source.
    pub time_masters: Vec<String>,
    /// Faults and latency applied to this node's traffic to other nodes (none by default;
    /// tests and the simulated-region demo share one between their nodes).
    pub network: Arc<NetworkSim>,
    /// Length of a Raft tick.
    pub raft_tick: Duration,
    /// How often the clock re-synchronises (with its time masters or its local source).
    pub clock_sync_interval: Duration,
    /// How long a request keeps retrying through elections and unreachable replicas.
    pub request_timeout: Duration,
    /// A tablet splits once about this many bytes were written to it; neighbours that are
    /// cold and together under a quarter of this merge.
    pub range_max_bytes: u64,
    /// A tablet whose leader serves more than this many requests per second for
    /// `range_split_after` splits where its load divides in half (0: no splits by load).
    pub range_split_qps: u64,
    /// See `range_split_qps`.
    pub range_split_after: Duration,
    /// A tablet whose requests come from another node's gateway at this many per second and
    /// more than twice as often as from its leader's node hands its leadership there (0: off;
    /// see `meridian_tablet`'s `follow.rs`).
    pub leader_follow_qps: u64,
    /// Bytes for the cache of newest versions in front of the storage engine (0: none).
    pub cache_size: u64,
    /// A transaction whose writes in a tablet exceed this many bytes is shipped there in
    /// pieces of about this size, one Raft entry each (`meridian_tablet::txn`).
    pub txn_piece_bytes: u64,
    /// Whether idle Raft groups stop ticking.
    pub raft_quiesce: bool,
    /// A tablet replica compacts its Raft log once it holds more than this many entries (0:
    /// no limit by count).
    pub raft_log_max_entries: u64,
    /// A tablet replica compacts its Raft log once its entries take more than this many bytes
    /// (0: no limit by size).
    pub raft_log_max_bytes: u64,
    /// A cluster member whose liveness record expired this long ago is dead, and its replicas
    /// are replaced on other nodes.
    pub dead_node_timeout: Duration,
    /// How long a node's liveness record lasts (it is renewed three times as often).
    pub liveness_ttl: Duration,
}

impl NodeConfig {
    /// Defaults for a node storing its data in `data_dir`, listening on loopback ports chosen
    /// by the operating system.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        NodeConfig {
            data_dir: data_dir.into(),
            sql_addr: any,
            listen_addr: any,
            http_addr: any,
            insecure: true,
            certs_dir: None,
            join: Vec::new(),
            region: String::new(),
            zone: String::new(),
            replicas: 1,
            clock: TrueTimeConfig {
                // The clock here is the local OS clock; 100 ms is far above what NTP-disciplined
                // clocks are off by, and bounds the extra wait of a newly elected leader.
                max_epsilon: Duration::from_millis(100),
                ..TrueTimeConfig::default()
            },
            physical_clock: Arc::new(SystemClock),
            time_masters: Vec::new(),
            network: Arc::new(NetworkSim::new()),
            raft_tick: Duration::from_millis(50),
            clock_sync_interval: Duration::from_secs(1),
            request_timeout: Duration::from_secs(10),
            range_max_bytes: 64 << 20,
            range_split_qps: 0,
            leader_follow_qps: 10,
            range_split_after: Duration::from_secs(5),
            cache_size: 128 << 20,
            txn_piece_bytes: meridian_tablet::DEFAULT_TXN_PIECE_BYTES,
            raft_quiesce: true,
            raft_log_max_entries: 10_000,
            raft_log_max_bytes: 16 << 20,
            dead_node_timeout: Duration::from_secs(300),
            liveness_ttl: Duration::from_millis(4500),
        }
    }

    /// The node's certificates, read from `certs_dir` (`None` without one). Fails when secure
    /// mode has no certificates directory, or its files cannot be used.
    pub(crate) fn node_certs(&self) -> anyhow::Result<Option<NodeCerts>> {
        self.secure_certs_dir()?;
        self.certs_dir.as_deref().map(load_certs).transpose()
    }

    /// The certificates the gRPC and HTTP listeners and the node's gRPC clients use: those of
    /// [`Self::node_certs`] in secure mode, none in insecure mode.
    pub(crate) fn secure<'a>(&self, certs: Option<&'a NodeCerts>) -> Option<&'a NodeCerts> {
        certs.filter(|_| !self.insecure)
    }

    /// The wire server's configuration: in insecure mode every user is trusted (and TLS
    /// offered when there are certificates); in secure mode TLS is required, and a client logs
    /// in with a SCRAM-SHA-256 password of a user made with `CREATE USER ... PASSWORD`, or with
    /// a client certificate (`client.<user>.crt`) naming the user. `root` has no password
    /// until one is set, so it first logs in with `client.root.crt`. The users are the
    /// catalog's, filled in when SQL is served. `certs` are [`Self::node_certs`].
    pub(crate) fn pg_server_config(
        &self,
        certs: Option<&NodeCerts>,
    ) -> anyhow::Result<PgServerConfig> {
        let tls = certs
            .map(|certs| certs.server_config(ClientAuth::Optional).map(Arc::new))
            .transpose()?;
        Ok(PgServerConfig {
            insecure: self.insecure,
            server_version: format!("15.0 (Meridian {})", env!("CARGO_PKG_VERSION")),
            tls,
            ..PgServerConfig::default()
        })
    }

    /// How this node reaches other nodes' gRPC listeners: mutual TLS with its `node.crt` in
    /// secure mode, plaintext in insecure mode.
    pub fn node_dialer(&self) -> anyhow::Result<NodeDialer> {
        self.dialer(self.node_certs()?.as_ref())
    }

    /// [`Self::node_dialer`] with `certs` ([`Self::node_certs`]).
    pub(crate) fn dialer(&self, certs: Option<&NodeCerts>) -> anyhow::Result<NodeDialer> {
        match self.secure(certs) {
            Some(certs) => NodeDialer::node(certs),
            None => Ok(NodeDialer::plaintext()),
        }
    }

    /// The certificates directory in secure mode (an error when there is none); `None` in
    /// insecure mode.
    fn secure_certs_dir(&self) -> anyhow::Result<Option<&Path>> {
        if self.insecure {
            return Ok(None);
        }
        match &self.certs_dir {
            Some(dir) => Ok(Some(dir)),
            None => anyhow::bail!(
                "secure mode needs a certificates directory (--certs-dir, made with `meridian \
                 cert`); or start with --insecure"
            ),
        }
    }
}

fn load_certs(dir: &Path) -> anyhow::Result<NodeCerts> {
    NodeCerts::load(&CertsDir::new(dir))
        .with_context(|| format!("cannot load the certificates in {}", dir.display()))
}
