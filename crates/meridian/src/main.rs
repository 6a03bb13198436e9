//! The `meridian` command: run a node (`start`), an embedded demo (`demo`), the SQL shell
//! (`sql`), or a benchmark workload against any PostgreSQL-wire database (`workload`).

mod config_file;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use meridian_security::ClientIdentity;
use meridian_server::{LocalCluster, Node, NodeConfig, NodeDialer};
use meridian_shell::{OutputFormat, ShellOptions};

/// Meridian's own events at info; the storage engine's and raft-rs's routine chatter only from
/// warnings up.
const DEFAULT_LOG: &str = "info,fjall=warn,lsm_tree=warn,raft=warn";

/// What interactive commands log unless told otherwise: problems only.
const QUIET_LOG: &str = "warn,fjall=error,lsm_tree=error";

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Meridian: a globally distributed SQL database with TrueTime-ordered transactions.
#[derive(Parser)]
#[command(name = "meridian", version, about, propagate_version = true)]
struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `info,meridian_tablet=debug`.
    #[arg(long, global = true, env = "MERIDIAN_LOG", default_value = DEFAULT_LOG)]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node in the foreground until SIGINT or SIGTERM; SIGHUP reloads its certificates.
    Start(StartArgs),
    /// Initialise a cluster of nodes started with --join (run once, against any node).
    Init(InitArgs),
    /// Inspect nodes.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Start an embedded node with its data in a temporary directory and open the SQL shell on it.
    Demo(DemoArgs),
    /// Open the SQL shell on any PostgreSQL-wire endpoint.
    Sql(SqlArgs),
    /// Create a local certificate authority and node/client certificates (for TLS).
    #[command(subcommand)]
    Cert(meridian_security::CertCommand),
    /// Run a benchmark workload (TPC-C) against Meridian or any PostgreSQL-wire database.
    #[command(subcommand)]
    Workload(meridian_workload::WorkloadCommand),
}

#[derive(Args)]
#[command(args_override_self = true)]
struct StartArgs {
    /// A TOML file of settings: each key is one of these flags' long names (`data-dir =
    /// "/var/lib/meridian"`, `join = ["h:p", ...]`, `insecure = true`). Flags on the command
    /// line override the file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Run a one-node cluster that needs no `meridian init` (instead of --join).
    #[arg(long, conflicts_with = "join")]
    single_node: bool,
    /// Accept SQL connections without TLS or passwords, and talk plaintext gRPC to other
    /// nodes. Without it the node runs in secure mode and needs --certs-dir.
    #[arg(long)]
    insecure: bool,
    /// Certificates directory (`meridian cert`). Secure mode requires TLS with its `node.crt`
    /// on every port: SQL clients log in with a password or a client certificate signed by
    /// its `ca.crt`; other nodes and `root`'s commands must present such a certificate; the
    /// HTTP endpoint is HTTPS. SIGHUP reads the directory again.
    #[arg(long, value_name = "DIR")]
    certs_dir: Option<PathBuf>,
    /// Directory for the node's data; created if missing, reused on restart.
    #[arg(long, value_name = "DIR")]
    data_dir: PathBuf,
    /// Address for PostgreSQL wire protocol clients (psql, drivers, `meridian sql`).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:26257")]
    sql_addr: SocketAddr,
    /// Address for gRPC traffic from other nodes and clients.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:26258")]
    listen_addr: SocketAddr,
    /// Address of the HTTP endpoint (`/health`, `/ready`, `/metrics`; HTTPS in secure mode).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    http_addr: SocketAddr,
    /// Listen addresses of the cluster's nodes (this one may be among them); then run
    /// `meridian init` once against any of them.
    #[arg(long, value_name = "HOST:PORT,...", value_delimiter = ',')]
    join: Vec<String>,
    /// Listen addresses of time masters to synchronise the clock with (Marzullo's algorithm
    /// over their answers). A node that lists itself, or none, trusts its local clock.
    #[arg(long, value_name = "HOST:PORT,...", value_delimiter = ',')]
    time_masters: Vec<String>,
    /// This node's region (locality), e.g. `us-east1`.
    #[arg(long, default_value = "")]
    region: String,
    /// This node's zone within its region, e.g. `us-east1-b`.
    #[arg(long, default_value = "")]
    zone: String,
    /// Split a tablet once about this many bytes were written to it (small, cold neighbours
    /// whose sizes add up to a quarter of this merge).
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20,
        value_parser = clap::value_parser!(u64).range(4096..))]
    range_max_bytes: u64,
    /// Split a tablet whose leader served more than this many requests per second (reads,
    /// writes, scans, transaction steps) for five seconds, where its load divides in half; 0
    /// turns splits by load off. Tablets serving more than a quarter of it are not merged.
    #[arg(long, value_name = "QPS", default_value_t = 0, value_parser = split_qps)]
    range_split_qps: u64,
    /// A tablet whose requests come from another node's SQL gateway at this many per second,
    /// and more than twice as often as from its leader's node, hands its leadership to that
    /// node's replica (leaders follow the workload); 0 leaves leaders where leader-count
    /// balancing puts them.
    #[arg(long, value_name = "QPS", default_value_t = 10, value_parser = follow_qps)]
    leader_follow_qps: u64,
    /// Bytes of memory for the cache of each key's newest version, which serves point reads
    /// of hot rows without searching the storage engine (0 turns it off).
    #[arg(long, value_name = "BYTES", default_value_t = 128 << 20)]
    cache_size: u64,
    /// A transaction whose writes in one tablet exceed this many bytes is shipped to it in
    /// pieces of about this size, each its own Raft entry, so that no entry carries a whole
    /// large transaction.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20,
        value_parser = clap::value_parser!(u64).range(1024..))]
    txn_piece_bytes: u64,
    /// Whether idle tablets stop ticking (`false` keeps every Raft group ticking, for
    /// comparison).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    raft_quiesce: bool,
    /// Compact a tablet's Raft log once it holds more than this many entries (0: no limit by
    /// count). A leader keeps the entries its live followers still need, up to four times this.
    #[arg(long, value_name = "ENTRIES", default_value_t = 10_000)]
    raft_log_max_entries: u64,
    /// Compact a tablet's Raft log once its entries take more than this many bytes (0: no
    /// limit by size).
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    raft_log_max_bytes: u64,
    /// Seconds after which a node that stopped renewing its liveness is declared dead and its
    /// replicas are rebuilt on other nodes.
    #[arg(long, value_name = "SECONDS", default_value_t = 300,
        value_parser = clap::value_parser!(u64).range(1..=86_400))]
    dead_node_timeout: u64,
    /// Seconds a request to a tablet keeps trying (through elections, unreachable replicas and
    /// a stalled engine) before it fails as unavailable; a write that fails so has an unknown
    /// outcome (SQLSTATE 40003). A lock wait gives up after a quarter of it.
    #[arg(long, value_name = "SECONDS", default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=3_600))]
    request_timeout: u64,
}

#[derive(Args)]
struct InitArgs {
    #[command(flatten)]
    security: GrpcSecurityArgs,
    /// The listen (gRPC) address of any node started with --join.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:26258")]
    host: String,
}

/// How `meridian init` and `meridian node` reach a node's gRPC listener.
#[derive(Args)]
struct GrpcSecurityArgs {
    /// Talk plaintext gRPC, to nodes started with --insecure.
    #[arg(long, conflicts_with = "certs_dir")]
    insecure: bool,
    /// Certificates directory of a secure cluster: connect over TLS, verify the node with its
    /// `ca.crt` and present `client.root.crt` (`meridian cert create-client root`).
    #[arg(long, value_name = "DIR")]
    certs_dir: Option<PathBuf>,
}

impl GrpcSecurityArgs {
    fn dialer(&self) -> anyhow::Result<NodeDialer> {
        if self.insecure {
            return Ok(NodeDialer::plaintext());
        }
        let Some(dir) = &self.certs_dir else {
            anyhow::bail!(
                "pass --certs-dir DIR (with ca.crt and client.root.crt) for a secure cluster, \
                 or --insecure for one started with --insecure"
            );
        };
        NodeDialer::tls(dir, &ClientIdentity::User("root".to_owned())).with_context(|| {
            format!(
                "cannot use the certificates in {} (root's client certificate is made with \
                 `meridian cert create-client root`)",
                dir.display()
            )
        })
    }
}

#[derive(Subcommand)]
enum NodeCommand {
    /// Show a node's identity, clock and replicas.
    Status {
        #[command(flatten)]
        security: GrpcSecurityArgs,
        /// The listen (gRPC) address of the node.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:26258")]
        host: String,
    },
    /// List the cluster's nodes (as the node at --host knows them), whether each answers,
    /// and how many tablet replicas and leaders it holds.
    Ls {
        #[command(flatten)]
        security: GrpcSecurityArgs,
        /// The listen (gRPC) address of any node.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:26258")]
        host: String,
    },
    /// Move every replica off a node before removing it: the placement driver rebuilds them
    /// on the other nodes. Waits until none is left unless --wait=false.
    Decommission {
        /// The node's id (see `meridian node ls`).
        node_id: u64,
        #[command(flatten)]
        security: GrpcSecurityArgs,
        /// The listen (gRPC) address of any node.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:26258")]
        host: String,
        /// Wait until the node holds no replica.
        #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
        wait: bool,
    },
    /// Cancel a decommission: the node takes replicas again.
    Recommission {
        /// The node's id (see `meridian node ls`).
        node_id: u64,
        #[command(flatten)]
        security: GrpcSecurityArgs,
        /// The listen (gRPC) address of any node.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:26258")]
        host: String,
    },
    /// Drain a node before maintenance: it hands every leadership to other nodes, takes no
    /// more, and its /ready endpoint answers 503. It keeps serving SQL as a gateway.
    Drain {
        #[command(flatten)]
        security: GrpcSecurityArgs,
        /// The listen (gRPC) address of the node to drain.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:26258")]
        host: String,
    },
}

#[derive(Args)]
struct DemoArgs {
    /// Number of nodes, all in this process, talking gRPC over loopback (the data is
    /// replicated on three of them).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=9))]
    nodes: u16,
    /// Put the nodes in three simulated regions with realistic latency between them (node to
    /// node traffic only, as `cockroach demo --global`).
    #[arg(long)]
    global: bool,
    /// Keep data in this directory instead of a temporary one (reused on restart).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Do not open the shell: print the connection URL and serve until interrupted.
    #[arg(long)]
    no_shell: bool,
    /// Address for PostgreSQL wire protocol clients; if the port is taken, a free one is used.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:26257")]
    sql_addr: SocketAddr,
}

#[derive(Args)]
struct SqlArgs {
    /// Connection URL [default: postgresql://root@127.0.0.1:26257/defaultdb, with
    /// `?sslmode=disable` unless --certs-dir is given].
    #[arg(long)]
    url: Option<String>,
    /// Execute this SQL and exit (repeatable; runs in order, stops at the first error).
    #[arg(short = 'e', long = "execute", value_name = "SQL")]
    execute: Vec<String>,
    /// Execute the statements in FILE and exit.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Output format: table (psql's aligned format), csv, tsv or json.
    #[arg(long, value_name = "table|csv|tsv|json", value_parser = parse_format)]
    format: Option<OutputFormat>,
    /// CA certificate to verify the server with when the URL asks for TLS (`sslmode=require`);
    /// defaults to `$PGSSLROOTCERT`.
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Certificates directory (`meridian cert`) of a secure cluster: connect over TLS,
    /// verify the server with its `ca.crt` and log in with `client.<user>.crt` when it has
    /// one (else with the URL's password).
    #[arg(long, value_name = "DIR")]
    certs_dir: Option<PathBuf>,
}

fn parse_format(s: &str) -> Result<OutputFormat, String> {
    s.parse::<OutputFormat>()
}

/// Below this many requests per second, a cluster's own upkeep (liveness records, meta
/// lookups) could split tablets, or move leaderships, for load no client puts on them.
const MIN_LOAD_QPS: u64 = 10;

/// A load threshold: 0 (the feature is off), or a rate from `MIN_LOAD_QPS` to a million;
/// `off` names what 0 turns off, `upkeep` what too low a rate would do.
fn load_qps(s: &str, off: &str, upkeep: &str) -> Result<u64, String> {
    let qps: u64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number of requests per second"))?;
    match qps {
        0 => Ok(0),
        q if q < MIN_LOAD_QPS => Err(format!(
            "{q} requests per second is too low (the cluster's own upkeep would {upkeep}): \
             use at least {MIN_LOAD_QPS}, or 0 to turn {off} off"
        )),
        q if q > 1_000_000 => Err(format!(
            "{q} requests per second is more than a tablet ever serves: use at most \
             1000000, or 0 to turn {off} off"
        )),
        q => Ok(q),
    }
}

/// `--range-split-qps`.
fn split_qps(s: &str) -> Result<u64, String> {
    load_qps(s, "splits by load", "split tablets")
}

/// `--leader-follow-qps`.
fn follow_qps(s: &str) -> Result<u64, String> {
    load_qps(s, "leaders following the load", "move leaderships")
}

fn main() -> ExitCode {
    let args = {
        use clap::CommandFactory;
        let command = Cli::command();
        let start = command
            .find_subcommand("start")
            .expect("the start subcommand exists");
        match config_file::expand(std::env::args().collect(), start) {
            Ok(args) => args,
            Err(e) => {
                eprintln!("meridian: {e:#}");
                return ExitCode::FAILURE;
            }
        }
    };
    let cli = Cli::parse_from(args);
    init_logging(
        &cli.log,
        matches!(
            cli.command,
            Command::Sql(_) | Command::Demo(_) | Command::Workload(_)
        ),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("meridian: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Start(args) => start(args).await.map(|()| 0),
            Command::Init(args) => init(args).await.map(|()| 0),
            Command::Node(NodeCommand::Status { security, host }) => {
                node_status(&security.dialer()?, &host).await.map(|()| 0)
            }
            Command::Node(NodeCommand::Ls { security, host }) => {
                node_ls(&security.dialer()?, &host).await
            }
            Command::Node(NodeCommand::Decommission {
                node_id,
                security,
                host,
                wait,
            }) => node_decommission(&security.dialer()?, &host, node_id, wait).await,
            Command::Node(NodeCommand::Recommission {
                node_id,
                security,
                host,
            }) => {
                meridian_server::decommission_node(&host, &security.dialer()?, node_id, false)
                    .await?;
                println!("node {node_id} takes replicas again");
                Ok(0)
            }
            Command::Node(NodeCommand::Drain { security, host }) => {
                let r = meridian_server::drain_node(&host, &security.dialer()?).await?;
                if r.leaders == 0 {
                    println!("node drained: it leads no tablet");
                    Ok(0)
                } else {
                    println!(
                        "node draining: it still leads {} tablet(s) no other replica can take",
                        r.leaders
                    );
                    Ok(1)
                }
            }
            Command::Demo(args) => demo(args).await,
            Command::Sql(args) => sql(args).await,
            Command::Cert(cmd) => meridian_security::run(cmd).map(|()| 0),
            Command::Workload(cmd) => meridian_workload::cli::run(cmd).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("meridian: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr. Interactive commands log only warnings by default so that the shell
/// stays readable.
fn init_logging(filter: &str, quiet: bool) {
    let filter = if quiet && filter == DEFAULT_LOG {
        QUIET_LOG
    } else {
        filter
    };
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn start(args: StartArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.single_node || !args.join.is_empty(),
        "say how this node forms a cluster: --single-node, or --join HOST:PORT,... followed by \
         `meridian init`"
    );
    anyhow::ensure!(
        args.insecure || args.certs_dir.is_some(),
        "secure mode needs --certs-dir DIR (make one with `meridian cert`); or pass --insecure"
    );
    // Caught from before the node starts: SIGHUP's default action would end the process.
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .context("cannot install a SIGHUP handler")?;
    let mut config = NodeConfig::new(&args.data_dir);
    config.insecure = args.insecure;
    config.certs_dir = args.certs_dir.clone();
    config.sql_addr = args.sql_addr;
    config.listen_addr = args.listen_addr;
    config.http_addr = args.http_addr;
    config.join = args.join.clone();
    config.time_masters = args.time_masters;
    config.region = args.region;
    config.zone = args.zone;
    config.range_max_bytes = args.range_max_bytes;
    config.range_split_qps = args.range_split_qps;
    config.leader_follow_qps = args.leader_follow_qps;
    config.cache_size = args.cache_size;
    config.txn_piece_bytes = args.txn_piece_bytes;
    config.raft_quiesce = args.raft_quiesce;
    config.raft_log_max_entries = args.raft_log_max_entries;
    config.raft_log_max_bytes = args.raft_log_max_bytes;
    config.dead_node_timeout = std::time::Duration::from_secs(args.dead_node_timeout);
    config.request_timeout = std::time::Duration::from_secs(args.request_timeout);
    let node = Node::start(config).await?;
    if args.single_node {
        eprintln!("meridian node ready");
    } else {
        eprintln!("meridian node started; it serves SQL once the cluster is initialised");
        let security = match &args.certs_dir {
            Some(dir) if !args.insecure => format!("--certs-dir {}", dir.display()),
            _ => "--insecure".to_owned(),
        };
        eprintln!(
            "  init:     meridian init {security} --host {}",
            node.listen_addr()
        );
    }
    let (host, port) = (node.sql_addr().ip(), node.sql_addr().port());
    match &args.certs_dir {
        // Secure mode: root logs in with its client certificate until it has a password.
        Some(dir) if !args.insecure => {
            let dir = dir.display();
            eprintln!(
                "  sql:      postgresql://root@{host}:{port}/defaultdb?sslmode=verify-full\
                 &sslrootcert={dir}/ca.crt&sslcert={dir}/client.root.crt\
                 &sslkey={dir}/client.root.key"
            );
            eprintln!(
                "  psql:     psql \"host={host} port={port} user=root dbname=defaultdb \
                 sslmode=verify-full sslrootcert={dir}/ca.crt sslcert={dir}/client.root.crt \
                 sslkey={dir}/client.root.key\""
            );
        }
        _ => {
            eprintln!("  sql:      {}", node.postgres_url());
            eprintln!("  psql:     psql -h {host} -p {port} -U root defaultdb");
        }
    }
    eprintln!("  grpc:     {}", node.listen_addr());
    let http_scheme = if args.insecure { "http" } else { "https" };
    eprintln!("  http:     {http_scheme}://{}/health", node.http_addr());
    eprintln!("  data dir: {}", args.data_dir.display());
    run_until_shutdown(&node, hangups).await?;
    tracing::info!("shutting down");
    node.shutdown().await;
    Ok(())
}

async fn demo(args: DemoArgs) -> anyhow::Result<i32> {
    anyhow::ensure!(
        !args.global || args.nodes >= 3,
        "--global needs --nodes 3 or more"
    );
    let temp;
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => {
            temp = tempfile::Builder::new()
                .prefix("meridian-demo-")
                .tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let mut sql_addr = args.sql_addr;
    if std::net::TcpListener::bind(sql_addr).is_err() {
        sql_addr = SocketAddr::new(sql_addr.ip(), 0);
    }
    let nodes = usize::from(args.nodes);
    let (url, first_sql, running) = if nodes == 1 {
        let mut config = NodeConfig::new(&data_dir);
        config.sql_addr = sql_addr;
        config.listen_addr = SocketAddr::new(sql_addr.ip(), 0);
        config.http_addr = SocketAddr::new(sql_addr.ip(), 0);
        let node = Node::start(config).await?;
        (node.postgres_url(), node.sql_addr(), Demo::Single(node))
    } else {
        let cluster = start_demo_cluster(&data_dir, nodes, sql_addr, args.global).await?;
        let first = cluster.node(0);
        (
            first.postgres_url(),
            first.sql_addr(),
            Demo::Cluster(cluster),
        )
    };
    let shape = match (nodes, args.global) {
        (1, _) => "1 node".to_string(),
        (n, false) => format!("{n} nodes"),
        (n, true) => format!("{n} nodes in 3 simulated regions ({})", REGIONS.join(", ")),
    };
    println!("# Meridian demo: {shape}, data in {}", data_dir.display());
    println!("# Connection URL: {url}");
    println!(
        "# psql: psql -h {} -p {} -U root defaultdb",
        first_sql.ip(),
        first_sql.port()
    );
    if let Demo::Cluster(c) = &running {
        for i in 1..c.len() {
            println!("#   node {}: {}", i + 1, c.node(i).postgres_url());
        }
    }
    let code = if args.no_shell {
        println!("# Serving until interrupted (Ctrl-C).");
        shutdown_signal().await?;
        0
    } else {
        meridian_shell::run(ShellOptions {
            url,
            ..ShellOptions::default()
        })
        .await?
    };
    match running {
        Demo::Single(node) => node.shutdown().await,
        Demo::Cluster(cluster) => cluster.shutdown().await,
    }
    Ok(code)
}

/// What `meridian demo` runs.
enum Demo {
    Single(Node),
    Cluster(LocalCluster),
}

/// Regions of `meridian demo --global`, assigned round-robin, and the one-way latency between
/// them (about half of typical cloud round trips).
const REGIONS: [&str; 3] = ["us-east1", "us-west1", "europe-west1"];

fn region_latency(a: &str, b: &str) -> Option<std::time::Duration> {
    let ms = match (a.min(b), a.max(b)) {
        ("us-east1", "us-west1") => 33,
        ("europe-west1", "us-east1") => 40,
        ("europe-west1", "us-west1") => 70,
        _ => return None,
    };
    Some(std::time::Duration::from_millis(ms))
}

/// Nodes of a multi-node demo: node i listens on consecutive ports after the SQL port (so a
/// reused --data-dir finds its peers again), SQL connections are never delayed.
async fn start_demo_cluster(
    data_dir: &std::path::Path,
    nodes: usize,
    sql_addr: SocketAddr,
    global: bool,
) -> anyhow::Result<LocalCluster> {
    let ip = sql_addr.ip();
    let base = sql_addr.port();
    let cluster = LocalCluster::start(data_dir, nodes, |i, c| {
        if base != 0 {
            let port = |offset: usize| base.saturating_add(u16::try_from(offset).unwrap_or(0));
            c.sql_addr = SocketAddr::new(ip, port(i));
            c.listen_addr = SocketAddr::new(ip, port(100 + i));
        }
        c.http_addr = SocketAddr::new(ip, 0);
        if global {
            c.region = REGIONS[i % REGIONS.len()].to_string();
            c.zone = format!(
                "{}-{}",
                c.region,
                (b'a' + (i / REGIONS.len()) as u8) as char
            );
        }
    })
    .await?;
    if global {
        cluster.set_region_latency(region_latency);
    }
    Ok(cluster)
}

async fn sql(args: SqlArgs) -> anyhow::Result<i32> {
    let url = args.url.unwrap_or_else(|| {
        let url = "postgresql://root@127.0.0.1:26257/defaultdb";
        if args.certs_dir.is_some() {
            url.to_owned()
        } else {
            format!("{url}?sslmode=disable")
        }
    });
    let opts = ShellOptions {
        url,
        execute: args.execute,
        file: args.file,
        format: args.format,
        ca_cert: args.ca_cert,
        certs_dir: args.certs_dir,
        ..ShellOptions::default()
    };
    meridian_shell::run(opts).await
}

async fn init(args: InitArgs) -> anyhow::Result<()> {
    let desc = meridian_server::init_cluster(&args.host, &args.security.dialer()?).await?;
    println!(
        "Cluster {} initialised with {} node(s):",
        desc.cluster_id,
        desc.members.len()
    );
    for m in &desc.members {
        println!(
            "  node {}  listen {}  sql {}",
            m.node_id, m.listen_addr, m.sql_addr
        );
    }
    Ok(())
}

async fn node_status(dialer: &NodeDialer, host: &str) -> anyhow::Result<()> {
    let s = meridian_server::node_status(host, dialer).await?;
    let earliest = meridian_clock::Timestamp::from_nanos(s.tt_earliest);
    let latest = meridian_clock::Timestamp::from_nanos(s.tt_latest);
    println!("node {} (version {})", s.node_id, s.version);
    println!("  listen {}  sql {}", s.listen_addr, s.sql_addr);
    println!(
        "  clock  [{earliest}, {latest}]  epsilon {:?}",
        latest.duration_since(earliest) / 2
    );
    println!(
        "  {:>6} {:>7} {:>6} {:>6} {:>10} {:>10} {:>12} {:<10} range",
        "tablet", "replica", "leader", "term", "commit", "applied", "approx_bytes", "replicas"
    );
    for t in &s.tablets {
        let replicas = t
            .replicas
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let key = |k: &[u8], none: &str| {
            if k.is_empty() {
                none.to_string()
            } else {
                meridian_tablet::range::pretty_key(k)
            }
        };
        println!(
            "  {:>6} {:>7} {:>6} {:>6} {:>10} {:>10} {:>12} {:<10} [{}, {})",
            t.tablet_id,
            t.replica_id,
            t.leader_id,
            t.term,
            t.commit_index,
            t.applied_index,
            t.approx_bytes,
            replicas,
            key(&t.start_key, "-inf"),
            key(&t.end_key, "+inf")
        );
    }
    Ok(())
}

/// `meridian node decommission`: marks the node as leaving, then (with `wait`) reports the
/// replicas left on it every second until there are none.
async fn node_decommission(
    dialer: &NodeDialer,
    host: &str,
    node_id: u64,
    wait: bool,
) -> anyhow::Result<i32> {
    loop {
        let r = meridian_server::decommission_node(host, dialer, node_id, true).await?;
        println!(
            "node {node_id}: decommissioning, {} replica(s) left",
            r.replicas
        );
        if r.replicas == 0 {
            println!("node {node_id} is decommissioned: it can be stopped");
            return Ok(0);
        }
        if !wait {
            return Ok(0);
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// `meridian node ls`: every member, asked in turn; exit code 1 when one does not answer.
async fn node_ls(dialer: &NodeDialer, host: &str) -> anyhow::Result<i32> {
    let s = meridian_server::node_status(host, dialer).await?;
    anyhow::ensure!(
        !s.members.is_empty(),
        "the node at {host} is not part of an initialised cluster yet (run `meridian init`)"
    );
    println!(
        "{:>4}  {:<22} {:<22} {:<12} {:<12} {:<12} {:>8} {:>8}",
        "id", "listen", "sql", "region", "zone", "status", "replicas", "leaders"
    );
    let mut unreachable = 0;
    for m in &s.members {
        let answer = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            meridian_server::node_status(&m.listen_addr, dialer),
        )
        .await;
        let (status, replicas, leaders) = match answer {
            Ok(Ok(n)) => {
                let leaders = n
                    .tablets
                    .iter()
                    .filter(|t| t.leader_id == t.replica_id)
                    .count();
                (
                    "live".to_string(),
                    n.tablets.len().to_string(),
                    leaders.to_string(),
                )
            }
            _ => {
                unreachable += 1;
                ("unreachable".to_string(), "-".to_string(), "-".to_string())
            }
        };
        println!(
            "{:>4}  {:<22} {:<22} {:<12} {:<12} {:<12} {:>8} {:>8}",
            m.node_id, m.listen_addr, m.sql_addr, m.region, m.zone, status, replicas, leaders
        );
    }
    Ok(if unreachable == 0 { 0 } else { 1 })
}

/// Runs `node` until SIGINT or SIGTERM, reloading its certificates on every SIGHUP (as
/// CockroachDB does). A reload that fails leaves the node on the certificates it had; the
/// node logs either outcome.
async fn run_until_shutdown(
    node: &Node,
    mut hangups: tokio::signal::unix::Signal,
) -> anyhow::Result<()> {
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            stop = &mut shutdown => return stop,
            _ = hangups.recv() => {
                // Logged by the node, with the reason when it failed.
                let _ = node.reload_certificates();
            }
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot install a SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("cannot listen for SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}
