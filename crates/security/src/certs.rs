//! A local certificate authority, and the node and client certificates it signs, as PEM files
//! in a certificates directory named as CockroachDB names them.
//!
//! ```text
//!  certs/ca.crt             the CA certificate every node and client trusts
//!  certs/ca.key             the CA key (or wherever --ca-key points; keep it off the nodes)
//!  certs/node.crt, .key     a node's certificate: server and client auth, one SAN per host
//!  certs/client.<user>.crt  a client certificate whose common name is the SQL user
//! ```
//!
//! Keys are ECDSA P-256, written with mode 0600 on Unix. Nothing is replaced unless
//! `overwrite` is set.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::error::{Error, Result};

/// How long a CA certificate is valid.
const CA_LIFETIME_DAYS: i64 = 10 * 366;
/// How long node and client certificates are valid.
const LEAF_LIFETIME_DAYS: i64 = 5 * 366;
/// Certificates start to be valid this long before they are made, so that a peer whose clock
/// is a little behind accepts them at once.
const BACKDATE_HOURS: i64 = 1;

/// The common name of node certificates.
pub const NODE_COMMON_NAME: &str = "node";

/// A certificates directory and the names of the files in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertsDir {
    root: PathBuf,
}

impl CertsDir {
    /// The directory at `root` (created when certificates are written).
    pub fn new(root: impl Into<PathBuf>) -> CertsDir {
        CertsDir { root: root.into() }
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `ca.crt`.
    pub fn ca_cert(&self) -> PathBuf {
        self.root.join("ca.crt")
    }

    /// `ca.key`, where the CA key goes when no other place is given.
    pub fn default_ca_key(&self) -> PathBuf {
        self.root.join("ca.key")
    }

    /// `node.crt`.
    pub fn node_cert(&self) -> PathBuf {
        self.root.join("node.crt")
    }

    /// `node.key`.
    pub fn node_key(&self) -> PathBuf {
        self.root.join("node.key")
    }

    /// `client.<user>.crt`.
    pub fn client_cert(&self, user: &str) -> PathBuf {
        self.root.join(format!("client.{user}.crt"))
    }

    /// `client.<user>.key`.
    pub fn client_key(&self, user: &str) -> PathBuf {
        self.root.join(format!("client.{user}.key"))
    }
}

/// Creates a CA: writes `ca.crt` into `dir` and its key to `ca_key`.
pub fn create_ca(dir: &CertsDir, ca_key: &Path, overwrite: bool) -> Result<()> {
    let cert_path = dir.ca_cert();
    refuse_existing(&[&cert_path, ca_key], overwrite)?;
    let key = KeyPair::generate()?;
    let cert = ca_params(CA_LIFETIME_DAYS)?.self_signed(&key)?;
    create_dir(dir.path())?;
    if let Some(parent) = ca_key.parent() {
        create_dir(parent)?;
    }
    write_file(ca_key, key.serialize_pem().as_bytes(), true)?;
    write_file(&cert_path, cert.pem().as_bytes(), false)
}

/// Creates `node.crt` and `node.key`, valid for every name and address in `hosts` and usable
/// both to serve and to connect to other nodes, signed by the CA of `dir` and `ca_key`.
pub fn create_node(dir: &CertsDir, ca_key: &Path, hosts: &[String], overwrite: bool) -> Result<()> {
    if hosts.is_empty() {
        return Err(Error::NoHosts);
    }
    let mut params = leaf_params(NODE_COMMON_NAME)?;
    params.subject_alt_names = hosts
        .iter()
        .map(|host| san(host))
        .collect::<Result<Vec<_>>>()?;
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    issue(
        dir,
        ca_key,
        params,
        &dir.node_cert(),
        &dir.node_key(),
        overwrite,
    )
}

/// Creates `client.<user>.crt` and `.key`: a client certificate whose common name is `user`,
/// signed by the CA of `dir` and `ca_key`.
pub fn create_client(dir: &CertsDir, ca_key: &Path, user: &str, overwrite: bool) -> Result<()> {
    check_user(user)?;
    let mut params = leaf_params(user)?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    issue(
        dir,
        ca_key,
        params,
        &dir.client_cert(user),
        &dir.client_key(user),
        overwrite,
    )
}

fn issue(
    dir: &CertsDir,
    ca_key: &Path,
    params: CertificateParams,
    cert_path: &Path,
    key_path: &Path,
    overwrite: bool,
) -> Result<()> {
    refuse_existing(&[cert_path, key_path], overwrite)?;
    let issuer = load_issuer(dir, ca_key)?;
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    write_file(key_path, key.serialize_pem().as_bytes(), true)?;
    write_file(cert_path, cert.pem().as_bytes(), false)
}

/// The CA of `dir` (its certificate) with the key at `ca_key`.
fn load_issuer(dir: &CertsDir, ca_key: &Path) -> Result<Issuer<'static, KeyPair>> {
    let cert_path = dir.ca_cert();
    let cert_pem = read_text(&cert_path)?;
    let key_pem = read_text(ca_key)?;
    let key = KeyPair::from_pem(&key_pem).map_err(|e| Error::InvalidFile {
        path: ca_key.to_owned(),
        reason: format!("not a PEM private key: {e}"),
    })?;
    Issuer::from_ca_cert_pem(&cert_pem, key).map_err(|e| Error::InvalidFile {
        path: cert_path,
        reason: format!("not a PEM CA certificate: {e}"),
    })
}

fn ca_params(lifetime_days: i64) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Meridian");
    params
        .distinguished_name
        .push(DnType::CommonName, "Meridian CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, lifetime_days);
    Ok(params)
}

fn leaf_params(common_name: &str) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Meridian");
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, LEAF_LIFETIME_DAYS);
    Ok(params)
}

fn set_validity(params: &mut CertificateParams, lifetime_days: i64) {
    // Certificate validity is calendar time, checked by peers against their own clocks.
    #[allow(clippy::disallowed_methods)]
    let now = time::OffsetDateTime::from(std::time::SystemTime::now());
    params.not_before = now - time::Duration::hours(BACKDATE_HOURS);
    params.not_after = now + time::Duration::days(lifetime_days);
}

fn san(host: &str) -> Result<SanType> {
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let valid = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'*')
        });
    if !valid {
        return Err(Error::InvalidHost(host.to_owned()));
    }
    let name = host
        .to_owned()
        .try_into()
        .map_err(|_| Error::InvalidHost(host.to_owned()))?;
    Ok(SanType::DnsName(name))
}

/// User names become file names, so they are limited to a safe set of characters.
fn check_user(user: &str) -> Result<()> {
    let valid = !user.is_empty()
        && !user.starts_with('.')
        && user.len() <= 63
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidUser(user.to_owned()))
    }
}

fn refuse_existing(paths: &[&Path], overwrite: bool) -> Result<()> {
    if overwrite {
        return Ok(());
    }
    match paths.iter().find(|p| p.exists()) {
        Some(path) => Err(Error::AlreadyExists {
            path: path.to_path_buf(),
        }),
        None => Ok(()),
    }
}

fn create_dir(path: &Path) -> Result<()> {
    if path.as_os_str().is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(path).map_err(Error::io(path))
}

pub(crate) fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(Error::io(path))
}

/// Writes a file, replacing an existing one; private keys are readable by the owner only.
fn write_file(path: &Path, contents: &[u8], private: bool) -> Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(Error::io(path))?;
    #[cfg(unix)]
    if private {
        // An existing file keeps its mode on open; make sure it is private.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(Error::io(path))?;
    }
    file.write_all(contents).map_err(Error::io(path))?;
    file.sync_all().map_err(Error::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_become_ip_or_dns_names() {
        assert!(matches!(san("127.0.0.1"), Ok(SanType::IpAddress(_))));
        assert!(matches!(san("::1"), Ok(SanType::IpAddress(_))));
        assert!(matches!(san("node1.example.com"), Ok(SanType::DnsName(_))));
        assert!(matches!(san("localhost"), Ok(SanType::DnsName(_))));
        for bad in ["", "a..b", "white space", "x/y", &"a".repeat(64)] {
            assert!(matches!(san(bad), Err(Error::InvalidHost(_))), "{bad:?}");
        }
    }

    #[test]
    fn user_names_are_safe_file_names() {
        for good in ["root", "alice", "app_user-1", "a.b"] {
            check_user(good).unwrap();
        }
        for bad in ["", ".hidden", "../etc", "a/b", "a b", "é"] {
            assert!(check_user(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn existing_files_are_kept_unless_overwriting() {
        let dir = tempfile::tempdir().unwrap();
        let certs = CertsDir::new(dir.path());
        create_ca(&certs, &certs.default_ca_key(), false).unwrap();
        let before = std::fs::read(certs.ca_cert()).unwrap();
        let err = create_ca(&certs, &certs.default_ca_key(), false).unwrap_err();
        assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
        assert_eq!(std::fs::read(certs.ca_cert()).unwrap(), before);
        create_ca(&certs, &certs.default_ca_key(), true).unwrap();
        assert_ne!(std::fs::read(certs.ca_cert()).unwrap(), before);
    }

    #[cfg(unix)]
    #[test]
    fn keys_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let certs = CertsDir::new(dir.path().join("certs"));
        let ca_key = dir.path().join("safe").join("ca.key");
        create_ca(&certs, &ca_key, false).unwrap();
        create_client(&certs, &ca_key, "alice", false).unwrap();
        for key in [ca_key, certs.client_key("alice")] {
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", key.display());
        }
        assert!(!certs.default_ca_key().exists());
    }

    #[test]
    fn signing_needs_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let certs = CertsDir::new(dir.path());
        let err = create_node(
            &certs,
            &certs.default_ca_key(),
            &["localhost".into()],
            false,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        let err = create_node(&certs, &certs.default_ca_key(), &[], false).unwrap_err();
        assert!(matches!(err, Error::NoHosts), "{err}");
    }
}
