//! A cluster of N real nodes in one process, talking gRPC over loopback and sharing one
//! [`NetworkSim`], so links between chosen nodes can be cut or delayed; each node has its own
//! injectable physical clock (through [`NodeConfig`]). Tests use it as their cluster harness,
//! and `meridian demo --nodes N [--global]` runs one, with simulated inter-region latency.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::{NetworkSim, Node, NodeConfig, init_cluster};

/// A cluster of in-process nodes.
pub struct LocalCluster {
    configs: Vec<NodeConfig>,
    nodes: Vec<Option<Node>>,
    /// The network between the nodes.
    pub net: Arc<NetworkSim>,
}

/// A free loopback address for a node to listen on. The port is taken below the range the OS
/// hands out for outgoing connections (32768 and up on Linux), so that no connection of a
/// running cluster can occupy it between this choice and the node's bind, and never twice in
/// one process.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU16, Ordering};
    const FIRST: u16 = 20_000;
    const SPAN: u16 = 12_000;
    // Processes start at different offsets, so that test binaries run side by side rarely
    // probe the same ports.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let offset = (std::process::id() % u32::from(SPAN)) as u16;
    for _ in 0..SPAN {
        let port = FIRST + (offset + NEXT.fetch_add(7, Ordering::Relaxed)) % SPAN;
        let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if handed.contains(&port) {
            continue;
        }
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            handed.push(port);
            return Ok(listener.local_addr()?);
        }
    }
    anyhow::bail!("no free loopback port between {FIRST} and {}", FIRST + SPAN)
}

impl LocalCluster {
    /// Starts `n` nodes with data under `base` (`node-1`, ...), forms the cluster and waits
    /// until every node serves. `tune` adjusts each node's configuration (addresses, clocks,
    /// timings, localities) before it starts; nodes restarted on an existing `base` rejoin.
    pub async fn start(
        base: &Path,
        n: usize,
        tune: impl Fn(usize, &mut NodeConfig),
    ) -> anyhow::Result<LocalCluster> {
        let net = Arc::new(NetworkSim::new());
        let mut configs = Vec::new();
        for i in 0..n {
            let mut c = NodeConfig::new(base.join(format!("node-{}", i + 1)));
            c.sql_addr = free_addr()?;
            c.listen_addr = free_addr()?;
            c.http_addr = free_addr()?;
            c.raft_tick = Duration::from_millis(20);
            c.request_timeout = Duration::from_secs(2);
            c.network = net.clone();
            configs.push(c);
        }
        for (i, c) in configs.iter_mut().enumerate() {
            tune(i, c);
        }
        let join: Vec<String> = configs.iter().map(|c| c.listen_addr.to_string()).collect();
        for c in &mut configs {
            c.join = join.clone();
        }
        let mut nodes = Vec::new();
        for c in &configs {
            nodes.push(Some(Node::start(c.clone()).await?));
        }
        // Idempotent: on restart the nodes already share a descriptor and init re-sends it.
        init_cluster(&join[0], &configs[0].node_dialer()?)
            .await
            .context("init")?;
        let cluster = LocalCluster {
            configs,
            nodes,
            net,
        };
        for i in 0..n {
            cluster.wait_serving(i).await?;
        }
        Ok(cluster)
    }

    /// Starts one more node, joining the running cluster by itself (with the first node's
    /// settings, its own addresses and data directory, and `tune` applied); returns its
    /// position once it serves.
    pub async fn add_node(&mut self, tune: impl Fn(&mut NodeConfig)) -> anyhow::Result<usize> {
        let i = self.configs.len();
        let base = self.configs[0]
            .data_dir
            .parent()
            .context("node data directories have a parent")?
            .to_path_buf();
        let mut c = self.configs[0].clone();
        c.data_dir = base.join(format!("node-{}", i + 1));
        c.sql_addr = free_addr()?;
        c.listen_addr = free_addr()?;
        c.http_addr = free_addr()?;
        tune(&mut c);
        self.nodes.push(Some(Node::start(c.clone()).await?));
        self.configs.push(c);
        self.wait_serving(i).await?;
        Ok(i)
    }

    /// The running node at position `i`.
    pub fn node(&self, i: usize) -> &Node {
        self.nodes[i].as_ref().expect("node is running")
    }

    /// How many nodes (running or stopped).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Never true: a cluster has nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node id of position `i` (assigned at init).
    pub fn node_id(&self, i: usize) -> u64 {
        self.node(i).node_id().expect("initialised node has an id")
    }

    /// Every node id.
    pub fn node_ids(&self) -> Vec<u64> {
        (0..self.len())
            .filter(|i| self.nodes[*i].is_some())
            .map(|i| self.node_id(i))
            .collect()
    }

    /// The position of the node whose replica leads the root tablet, if one is known.
    pub fn leader(&self) -> Option<usize> {
        (0..self.len()).find(|&i| {
            self.nodes[i]
                .as_ref()
                .is_some_and(|n| n.replicas().iter().any(|r| r.status().is_leader))
        })
    }

    /// Delays every link between nodes of different regions by `delay(region_a, region_b)`
    /// (one way), as `cockroach demo --global` does; SQL connections are not delayed.
    pub fn set_region_latency(&self, delay: impl Fn(&str, &str) -> Option<Duration>) {
        for a in 0..self.len() {
            for b in (a + 1)..self.len() {
                let (ra, rb) = (&self.configs[a].region, &self.configs[b].region);
                if let Some(d) = (ra != rb).then(|| delay(ra, rb)).flatten() {
                    self.net
                        .set(self.node_id(a), self.node_id(b), crate::Link::Delay(d));
                }
            }
        }
    }

    /// The data directory of position `i`.
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.configs[i].data_dir.clone()
    }

    /// Stops node `i` gracefully.
    pub async fn stop(&mut self, i: usize) {
        if let Some(node) = self.nodes[i].take() {
            node.shutdown().await;
        }
    }

    /// Starts node `i` again on its data directory and waits until it serves.
    pub async fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        self.nodes[i] = Some(Node::start(self.configs[i].clone()).await?);
        self.wait_serving(i).await
    }

    /// Waits until node `i` belongs to the cluster and knows a leader.
    async fn wait_serving(&self, i: usize) -> anyhow::Result<()> {
        let node = self.node(i);
        let wait = async {
            loop {
                let known = node.node_id().is_some()
                    && node.replicas().iter().all(|r| r.status().leader_id != 0);
                if known {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .with_context(|| format!("node {} never joined a serving cluster", i + 1))
    }

    /// Stops every node.
    pub async fn shutdown(mut self) {
        for i in 0..self.len() {
            self.stop(i).await;
        }
    }
}
