//! Cancel requests: the right (pid, secret key) stops the statement running on that
//! connection with 57014; anything else stops nothing.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::fake::{Fake, TestServer};
use crate::raw::{Msg, Raw};

const DEADLINE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn cancel_stops_a_running_simple_query() {
    let server = TestServer::start(Fake::new(false)).await;
    let client = server.client().await;
    let token = client.cancel_token();
    let started = server.fake.started.notified();
    let running = tokio::spawn(async move {
        let result = client.simple_query("block").await;
        (client, result)
    });
    tokio::time::timeout(DEADLINE, started)
        .await
        .expect("the statement starts");
    token.cancel_query(NoTls).await.unwrap();
    let (client, result) = tokio::time::timeout(DEADLINE, running)
        .await
        .expect("the statement ends after the cancel")
        .unwrap();
    let err = result.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err}");
    assert_eq!(
        err.as_db_error().unwrap().message(),
        "canceling statement due to user request"
    );
    // The connection goes on.
    let rows = client.simple_query("select ints").await.unwrap();
    // RowDescription, two rows, CommandComplete.
    assert_eq!(rows.len(), 4);
}

#[tokio::test]
async fn cancel_stops_a_running_extended_query() {
    let server = TestServer::start(Fake::new(true)).await;
    let client = server.client().await;
    let token = client.cancel_token();
    let started = server.fake.started.notified();
    let running = tokio::spawn(async move {
        let result = client.execute("block", &[]).await;
        (client, result)
    });
    tokio::time::timeout(DEADLINE, started)
        .await
        .expect("the statement starts");
    token.cancel_query(NoTls).await.unwrap();
    let (client, result) = tokio::time::timeout(DEADLINE, running)
        .await
        .expect("the statement ends after the cancel")
        .unwrap();
    assert_eq!(result.unwrap_err().code(), Some(&SqlState::QUERY_CANCELED));
    assert_eq!(client.query("select ints", &[]).await.unwrap().len(), 2);
}

/// Sends a CancelRequest on a connection of its own and waits until the server closes it,
/// which it does after handling the request.
async fn send_cancel(server: &TestServer, pid: i32, key: &[u8]) {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut packet = Vec::new();
    packet.extend_from_slice(&(12 + key.len() as u32).to_be_bytes());
    packet.extend_from_slice(&80_877_102u32.to_be_bytes());
    packet.extend_from_slice(&pid.to_be_bytes());
    packet.extend_from_slice(key);
    stream.write_all(&packet).await.unwrap();
    let mut raw = Raw::from_stream(stream);
    let answer = raw.until_closed().await;
    assert!(
        answer.is_empty(),
        "a cancel request gets no answer: {answer:?}"
    );
}

#[tokio::test]
async fn a_wrong_key_cancels_nothing() {
    let server = TestServer::start(Fake::new(false)).await;
    let (mut raw, _) = Raw::connect(server.addr).await;
    let (pid, key) = raw.backend_key.clone().expect("BackendKeyData");
    let started = server.fake.started.notified();
    raw.query("block").await;
    tokio::time::timeout(DEADLINE, started)
        .await
        .expect("the statement starts");

    let mut wrong_key = key.clone();
    wrong_key[0] ^= 1;
    send_cancel(&server, pid, &wrong_key).await;
    send_cancel(&server, pid + 1, &key).await;
    // The statement is still running: releasing it completes it normally.
    server.fake.release.notify_one();
    let messages = raw.until_ready().await;
    assert_eq!(messages[0], Msg::CommandComplete("BLOCK".into()));

    // A cancel between statements is a no-op for the next one.
    send_cancel(&server, pid, &key).await;
    raw.query("select ints").await;
    let messages = raw.until_ready().await;
    assert!(
        messages.contains(&Msg::CommandComplete("SELECT 2".into())),
        "{messages:?}"
    );

    // The right key stops the running statement.
    let started = server.fake.started.notified();
    raw.query("block").await;
    tokio::time::timeout(DEADLINE, started)
        .await
        .expect("the statement starts");
    send_cancel(&server, pid, &key).await;
    let messages = raw.until_ready().await;
    assert_eq!(messages[0].code(), Some("57014"), "{messages:?}");
}

#[tokio::test]
async fn a_closed_connection_cannot_be_cancelled_any_more() {
    let server = TestServer::start(Fake::new(false)).await;
    let (raw, _) = Raw::connect(server.addr).await;
    let (pid, key) = raw.backend_key.clone().expect("BackendKeyData");
    drop(raw);
    // Nothing to check but that the server takes it calmly and keeps serving.
    send_cancel(&server, pid, &key).await;
    let client = server.client().await;
    client.simple_query("select ints").await.unwrap();
}
