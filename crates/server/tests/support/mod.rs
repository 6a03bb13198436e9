//! Helpers shared by the node-level tests.

#![allow(dead_code)] // each test binary uses its own subset

use std::net::SocketAddr;

/// A tokio-postgres client on the SQL address `addr` (user root, database defaultdb), its
/// connection driven by a spawned task.
pub async fn connect(addr: SocketAddr) -> tokio_postgres::Client {
    let url = format!(
        "host={} port={} user=root dbname=defaultdb",
        addr.ip(),
        addr.port()
    );
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// The first column of every row `sql` returns, as text (`NULL` for NULL).
pub async fn values(client: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    client
        .simple_query(sql)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some(r.get(0).unwrap_or("NULL").to_string())
            }
            _ => None,
        })
        .collect()
}

/// Every column of every row `sql` returns, as text (`None` for NULL).
pub async fn rows(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    client
        .simple_query(sql)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

/// The commit timestamp (nanoseconds) of the session's last write, from `SHOW LAST COMMIT
/// TIMESTAMP`; `None` before the session wrote anything.
pub async fn last_commit_nanos(client: &tokio_postgres::Client) -> Option<u64> {
    let row = rows(client, "SHOW LAST COMMIT TIMESTAMP").await.remove(0);
    row[1].as_deref().map(|n| n.parse().unwrap())
}

/// The system clock shifted by an adjustable offset.
#[derive(Debug, Default)]
pub struct SkewedClock {
    offset_nanos: std::sync::atomic::AtomicI64,
}

impl SkewedClock {
    /// A clock `offset` ahead of (or behind) the system clock.
    pub fn new(offset: std::time::Duration, ahead: bool) -> SkewedClock {
        let c = SkewedClock::default();
        c.set_offset(offset, ahead);
        c
    }

    /// Moves the clock to `offset` ahead of (or behind) the system clock.
    pub fn set_offset(&self, offset: std::time::Duration, ahead: bool) {
        let n = offset.as_nanos() as i64;
        self.offset_nanos.store(
            if ahead { n } else { -n },
            std::sync::atomic::Ordering::SeqCst,
        );
    }
}

impl meridian_clock::PhysicalClock for SkewedClock {
    #[allow(clippy::disallowed_methods)] // built on the system clock
    fn now(&self) -> meridian_clock::Timestamp {
        let real = meridian_clock::SystemClock.now().as_nanos() as i64;
        meridian_clock::Timestamp::from_nanos(
            (real + self.offset_nanos.load(std::sync::atomic::Ordering::SeqCst)) as u64,
        )
    }
}
