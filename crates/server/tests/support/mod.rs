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
