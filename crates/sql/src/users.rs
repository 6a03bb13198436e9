//! SQL users, kept in the keyspace beside the catalog:
//!
//! ```text
//!  /sys/users/<name>   -> the user's password verifier in PostgreSQL's text form
//!                         (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`),
//!                         empty when the user has no password
//! ```
//!
//! Only verifiers are stored, never passwords: `CREATE USER ... PASSWORD 'pw'` derives one
//! (`meridian_security::ScramCredentials`), and a verifier given in place of a password (as
//! `psql`'s `\password` sends) is kept as it is. `root`, the bootstrap user, always exists;
//! its key appears once a password is set for it. User names share nothing with relation
//! names.

use meridian_clock::Timestamp;
use meridian_tablet::KvClient;

use crate::error::{Error, Result};

/// Prefix of the user keys.
pub(crate) const USERS_PREFIX: &[u8] = b"/sys/users/";

/// The bootstrap user, who always exists.
pub(crate) const ROOT: &str = "root";

/// The key of user `name`.
pub(crate) fn user_key(name: &str) -> Vec<u8> {
    let mut k = USERS_PREFIX.to_vec();
    k.extend_from_slice(name.as_bytes());
    k
}

/// User `name` as of `ts`: `None` when there is no such user, else its verifier (empty for
/// no password).
pub(crate) async fn get(kv: &dyn KvClient, name: &str, ts: Timestamp) -> Result<Option<String>> {
    match kv.get(&user_key(name), ts).await.map_err(Error::Read)? {
        Some(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| Error::Corrupt(format!("the verifier of user {name:?} is not UTF-8"))),
        None if name == ROOT => Ok(Some(String::new())),
        None => Ok(None),
    }
}

/// The names of all users as of `ts`, `root` included, in name order.
pub(crate) async fn list(kv: &dyn KvClient, ts: Timestamp) -> Result<Vec<String>> {
    let pairs = crate::catalog::scan_prefix(kv, USERS_PREFIX, ts).await?;
    let mut names: Vec<String> = pairs
        .iter()
        .filter_map(|(k, _)| k.strip_prefix(USERS_PREFIX))
        .filter_map(|n| String::from_utf8(n.to_vec()).ok())
        .collect();
    if !names.iter().any(|n| n == ROOT) {
        names.push(ROOT.to_string());
        names.sort();
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_keys_sort_with_the_system_keys() {
        assert!(user_key("zz").as_slice() < crate::keys::TABLE_DATA_PREFIX);
        assert!(user_key("a").starts_with(USERS_PREFIX));
    }
}
