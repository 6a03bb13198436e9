//! `meridian cert ...`: the certificate commands, as a clap subcommand.

use std::path::PathBuf;

use crate::certs::{self, CertsDir};

/// Options every certificate command takes.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct CertArgs {
    /// The certificates directory (`ca.crt`, `node.crt`, `client.<user>.crt`, ...).
    #[arg(long, env = "MERIDIAN_CERTS_DIR", default_value = "certs")]
    pub certs_dir: PathBuf,
    /// The CA key; keep it somewhere safer than the certificates directory.
    /// Defaults to `<certs-dir>/ca.key`.
    #[arg(long)]
    pub ca_key: Option<PathBuf>,
    /// Replace existing files.
    #[arg(long)]
    pub overwrite: bool,
}

impl CertArgs {
    fn dir(&self) -> CertsDir {
        CertsDir::new(&self.certs_dir)
    }

    fn ca_key(&self) -> PathBuf {
        self.ca_key
            .clone()
            .unwrap_or_else(|| self.dir().default_ca_key())
    }
}

/// `meridian cert <command>`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum CertCommand {
    /// Create a certificate authority: `ca.crt` and its key.
    CreateCa {
        #[command(flatten)]
        args: CertArgs,
    },
    /// Create `node.crt` and `node.key`, signed by the CA, for the given host names and IP
    /// addresses (the names clients and other nodes use to reach this node).
    CreateNode {
        /// Host names and IP addresses, e.g. `localhost 127.0.0.1 node1.example.com`.
        #[arg(required = true)]
        hosts: Vec<String>,
        #[command(flatten)]
        args: CertArgs,
    },
    /// Create `client.<user>.crt` and `.key`, signed by the CA, for a SQL user.
    CreateClient {
        /// The SQL user the certificate identifies.
        user: String,
        #[command(flatten)]
        args: CertArgs,
    },
}

/// Runs a certificate command and prints the files it wrote.
pub fn run(cmd: CertCommand) -> anyhow::Result<()> {
    let written = match &cmd {
        CertCommand::CreateCa { args } => {
            let (dir, key) = (args.dir(), args.ca_key());
            certs::create_ca(&dir, &key, args.overwrite)?;
            vec![dir.ca_cert(), key]
        }
        CertCommand::CreateNode { hosts, args } => {
            let dir = args.dir();
            certs::create_node(&dir, &args.ca_key(), hosts, args.overwrite)?;
            vec![dir.node_cert(), dir.node_key()]
        }
        CertCommand::CreateClient { user, args } => {
            let dir = args.dir();
            certs::create_client(&dir, &args.ca_key(), user, args.overwrite)?;
            vec![dir.client_cert(user), dir.client_key(user)]
        }
    };
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::{Parser, Subcommand};

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: CertCommand,
    }

    #[test]
    fn commands_parse_like_cockroach() {
        let cli = Cli::try_parse_from([
            "cert",
            "create-node",
            "localhost",
            "127.0.0.1",
            "--certs-dir",
            "/tmp/c",
            "--ca-key",
            "/safe/ca.key",
        ])
        .unwrap();
        let CertCommand::CreateNode { hosts, args } = cli.cmd else {
            panic!("not create-node");
        };
        assert_eq!(hosts, ["localhost", "127.0.0.1"]);
        assert_eq!(args.certs_dir, PathBuf::from("/tmp/c"));
        assert_eq!(args.ca_key(), PathBuf::from("/safe/ca.key"));

        let cli = Cli::try_parse_from(["cert", "create-client", "alice", "--overwrite"]).unwrap();
        let CertCommand::CreateClient { user, args } = cli.cmd else {
            panic!("not create-client");
        };
        assert_eq!(user, "alice");
        assert!(args.overwrite);
        assert_eq!(args.ca_key(), args.dir().default_ca_key());

        assert!(Cli::try_parse_from(["cert", "create-node"]).is_err());
        CertCommand::augment_subcommands(clap::Command::new("x")).debug_assert();
    }

    #[test]
    fn run_writes_a_usable_set() {
        let dir = tempfile::tempdir().unwrap();
        let args = CertArgs {
            certs_dir: dir.path().join("certs"),
            ca_key: None,
            overwrite: false,
        };
        run(CertCommand::CreateCa { args: args.clone() }).unwrap();
        run(CertCommand::CreateNode {
            hosts: vec!["localhost".into()],
            args: args.clone(),
        })
        .unwrap();
        run(CertCommand::CreateClient {
            user: "root".into(),
            args: args.clone(),
        })
        .unwrap();
        let certs = args.dir();
        for path in [
            certs.ca_cert(),
            certs.default_ca_key(),
            certs.node_cert(),
            certs.node_key(),
            certs.client_cert("root"),
            certs.client_key("root"),
        ] {
            assert!(path.is_file(), "{}", path.display());
        }
        let err = run(CertCommand::CreateClient {
            user: "root".into(),
            args,
        })
        .unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
    }
}
