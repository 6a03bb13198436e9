//! SCRAM-SHA-256 credentials (RFC 5802 / RFC 7677), as PostgreSQL stores them.
//!
//! A server never needs the password: it keeps the salt, the iteration count, `StoredKey =
//! H(HMAC(SaltedPassword, "Client Key"))` and `ServerKey = HMAC(SaltedPassword, "Server
//! Key")`, which are enough to check a client's proof and to prove itself to the client.
//! [`ScramCredentials::from_password`] derives them (for `CREATE USER ... PASSWORD`), and
//! [`ScramCredentials::to_verifier`] / `parse` use PostgreSQL's text form
//! `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64), so verifiers can move
//! between Meridian and PostgreSQL.

use std::borrow::Cow;
use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac, pbkdf2};

use crate::error::{Error, Result};

/// PBKDF2 iterations for new credentials (PostgreSQL's default).
pub const DEFAULT_ITERATIONS: u32 = 4096;
/// Bytes of salt for new credentials (PostgreSQL's default).
pub const SALT_LEN: usize = 16;

const KEY_LEN: usize = digest::SHA256_OUTPUT_LEN;
const PREFIX: &str = "SCRAM-SHA-256$";

/// What a server stores to check SCRAM-SHA-256 passwords. `Debug` hides the keys.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    /// The salt sent to the client.
    pub salt: Vec<u8>,
    /// The PBKDF2 iteration count sent to the client (at least 1).
    pub iterations: u32,
    /// `H(ClientKey)`: checks the client's proof.
    pub stored_key: [u8; KEY_LEN],
    /// `HMAC(SaltedPassword, "Server Key")`: signs the server's final message.
    pub server_key: [u8; KEY_LEN],
}

impl fmt::Debug for ScramCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredentials")
            .field("salt", &BASE64.encode(&self.salt))
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredentials {
    /// Credentials for `password` with a fresh random salt and [`DEFAULT_ITERATIONS`].
    pub fn from_password(password: &str) -> Result<ScramCredentials> {
        let mut salt = vec![0; SALT_LEN];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| Error::Random)?;
        Ok(ScramCredentials::derive(
            password,
            salt,
            NonZeroU32::new(DEFAULT_ITERATIONS).expect("nonzero"),
        ))
    }

    /// Credentials for `password` with the given salt and iteration count.
    ///
    /// The password is normalised with SASLprep first, as PostgreSQL clients do; a password
    /// SASLprep rejects is used as it is (PostgreSQL does the same).
    pub fn derive(password: &str, salt: Vec<u8>, iterations: NonZeroU32) -> ScramCredentials {
        let normalized = stringprep::saslprep(password).unwrap_or(Cow::Borrowed(password));
        let mut salted = [0u8; KEY_LEN];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            &salt,
            normalized.as_bytes(),
            &mut salted,
        );
        let salted_key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
        let client_key = hmac::sign(&salted_key, b"Client Key");
        let server_key = hmac::sign(&salted_key, b"Server Key");
        ScramCredentials {
            salt,
            iterations: iterations.get(),
            stored_key: to_key(digest::digest(&digest::SHA256, client_key.as_ref()).as_ref()),
            server_key: to_key(server_key.as_ref()),
        }
    }

    /// Whether `password` is the password these credentials were made from.
    pub fn matches_password(&self, password: &str) -> bool {
        let Some(iterations) = NonZeroU32::new(self.iterations) else {
            return false;
        };
        let other = ScramCredentials::derive(password, self.salt.clone(), iterations);
        constant_time_eq(&self.stored_key, &other.stored_key)
    }

    /// PostgreSQL's text form: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
    pub fn to_verifier(&self) -> String {
        format!(
            "{PREFIX}{}:{}${}:{}",
            self.iterations,
            BASE64.encode(&self.salt),
            BASE64.encode(self.stored_key),
            BASE64.encode(self.server_key)
        )
    }

    /// Parses PostgreSQL's text form (see [`ScramCredentials::to_verifier`]).
    pub fn parse(verifier: &str) -> Result<ScramCredentials> {
        let rest = verifier
            .strip_prefix(PREFIX)
            .ok_or(Error::InvalidVerifier("does not start with SCRAM-SHA-256$"))?;
        let (params, keys) = rest
            .split_once('$')
            .ok_or(Error::InvalidVerifier("missing '$' before the keys"))?;
        let (iterations, salt) = params.split_once(':').ok_or(Error::InvalidVerifier(
            "missing ':' after the iteration count",
        ))?;
        let (stored_key, server_key) = keys
            .split_once(':')
            .ok_or(Error::InvalidVerifier("missing ':' between the keys"))?;
        let iterations: u32 = iterations
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or(Error::InvalidVerifier("invalid iteration count"))?;
        let salt = BASE64
            .decode(salt)
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or(Error::InvalidVerifier("invalid salt"))?;
        let decode_key = |text: &str| -> Result<[u8; KEY_LEN]> {
            let bytes = BASE64
                .decode(text)
                .map_err(|_| Error::InvalidVerifier("a key is not base64"))?;
            bytes
                .try_into()
                .map_err(|_| Error::InvalidVerifier("a key is not 32 bytes long"))
        };
        Ok(ScramCredentials {
            salt,
            iterations,
            stored_key: decode_key(stored_key)?,
            server_key: decode_key(server_key)?,
        })
    }
}

impl FromStr for ScramCredentials {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        ScramCredentials::parse(s)
    }
}

impl fmt::Display for ScramCredentials {
    /// The PostgreSQL verifier text; it holds no password, but it does allow an offline
    /// guessing attack, so treat it as a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_verifier())
    }
}

fn to_key(bytes: &[u8]) -> [u8; KEY_LEN] {
    let mut key = [0u8; KEY_LEN];
    key.copy_from_slice(bytes);
    key
}

/// Compares two keys without an early exit.
fn constant_time_eq(a: &[u8; KEY_LEN], b: &[u8; KEY_LEN]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==,
    /// 4096 iterations. The keys below follow from those inputs (as PostgreSQL computes them).
    #[test]
    fn derivation_matches_the_rfc_example() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let creds = ScramCredentials::derive("pencil", salt, NonZeroU32::new(4096).unwrap());
        // The RFC's server signature for its example exchange is computed from ServerKey;
        // check the AuthMessage signature against it.
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
            r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
            c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let server_signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &creds.server_key),
            auth_message.as_bytes(),
        );
        assert_eq!(
            BASE64.encode(server_signature.as_ref()),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        // And the client proof of the example verifies against StoredKey.
        let proof = BASE64
            .decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap();
        let client_signature = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &creds.stored_key),
            auth_message.as_bytes(),
        );
        let client_key: Vec<u8> = proof
            .iter()
            .zip(client_signature.as_ref())
            .map(|(a, b)| a ^ b)
            .collect();
        assert_eq!(
            digest::digest(&digest::SHA256, &client_key).as_ref(),
            creds.stored_key
        );
    }

    #[test]
    fn verifiers_round_trip_through_text() {
        let creds = ScramCredentials::from_password("s3cret").unwrap();
        assert_eq!(creds.salt.len(), SALT_LEN);
        assert_eq!(creds.iterations, DEFAULT_ITERATIONS);
        let text = creds.to_verifier();
        assert!(text.starts_with("SCRAM-SHA-256$4096:"), "{text}");
        assert_eq!(text.parse::<ScramCredentials>().unwrap(), creds);
        assert!(creds.matches_password("s3cret"));
        assert!(!creds.matches_password("s3cret "));
        assert!(!format!("{creds:?}").contains(&BASE64.encode(creds.stored_key)));
    }

    #[test]
    fn fresh_credentials_use_fresh_salts() {
        let a = ScramCredentials::from_password("same").unwrap();
        let b = ScramCredentials::from_password("same").unwrap();
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.stored_key, b.stored_key);
    }

    #[test]
    fn malformed_verifiers_are_rejected() {
        let good = ScramCredentials::from_password("x").unwrap().to_verifier();
        let (head, keys) = good.rsplit_once('$').unwrap();
        let (stored, _) = keys.split_once(':').unwrap();
        let cases = [
            "md5abcdef".to_owned(),
            "SCRAM-SHA-256$".to_owned(),
            good.replace("$4096:", "$0:"),
            good.replace("$4096:", "$many:"),
            format!("{head}${stored}"),
            format!("{head}${stored}:AAAA"),
            format!("{head}$!!!:{stored}"),
        ];
        for case in cases {
            assert!(ScramCredentials::parse(&case).is_err(), "{case}");
        }
    }
}
