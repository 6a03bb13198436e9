//! Connections to the database under test.

use tokio_postgres::{Client, Config, NoTls};

use crate::error::{Error, Result};

/// Parses a connection URL once, so that workers open connections without reparsing and a bad
/// URL is reported before anything starts.
#[derive(Clone)]
pub struct Target {
    config: Config,
    display: String,
}

impl Target {
    /// Parses `url` (`postgresql://user[:password]@host:port/db` or `key=value` pairs).
    pub fn parse(url: &str) -> Result<Target> {
        let mut config: Config = url.parse().map_err(|cause| Error::InvalidUrl {
            url: redact(url),
            cause,
        })?;
        // An unreachable host should fail with a message, not hang the command.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        Ok(Target {
            config,
            display: redact(url),
        })
    }

    /// The URL with any password hidden, for messages.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Opens a connection. The transactions rely on serializable isolation for their
    /// correctness (the one `FOR UPDATE`, on New-Order's district row, only makes concurrent
    /// New-Orders queue), so the session default is set to serializable;
    /// a database that rejects the setting is assumed to offer only serializable.
    pub async fn connect(&self) -> Result<Client> {
        let (client, connection) =
            self.config
                .connect(NoTls)
                .await
                .map_err(|cause| Error::Connect {
                    url: self.display.clone(),
                    cause,
                })?;
        tokio::spawn(async move {
            // The connection's own error surfaces on the client's next request.
            let _ = connection.await;
        });
        let _ = client
            .batch_execute("SET default_transaction_isolation = 'serializable'")
            .await;
        Ok(client)
    }
}

/// `url` with the password between `:` and `@` of the authority replaced by `***`.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &authority[..colon],
            &url[scheme_end + 3 + at..]
        ),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:secret@h:5/db"),
            "postgres://u:***@h:5/db"
        );
        assert_eq!(redact("postgres://u@h:5/db"), "postgres://u@h:5/db");
        assert_eq!(redact("host=h user=u"), "host=h user=u");
    }
}
