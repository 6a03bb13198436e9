//! Graceful shutdown: stop accepting, let running statements finish, then close.

use std::time::Duration;

use tokio_postgres::error::SqlState;

use crate::fake::{Fake, TestServer};

const DEADLINE: Duration = Duration::from_secs(20);

/// Waits until connecting to the server's port is refused (the listener is closed).
async fn wait_until_refused(server: &TestServer) {
    tokio::time::timeout(DEADLINE, async {
        while tokio::net::TcpStream::connect(server.addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the listener closes");
}

#[tokio::test]
async fn running_statements_finish_and_new_ones_are_refused() {
    let mut server = TestServer::start(Fake::new(false)).await;
    let busy = server.client().await;
    let idle = server.client().await;
    let running = tokio::spawn(async move { busy.simple_query("block").await });
    server.fake.started.notified().await;

    server.request_shutdown();
    wait_until_refused(&server).await;
    let err = idle.simple_query("select ints").await.unwrap_err();
    assert!(
        err.code() == Some(&SqlState::ADMIN_SHUTDOWN) || err.is_closed(),
        "{err:?}"
    );

    server.fake.release.notify_one();
    let messages = running
        .await
        .unwrap()
        .expect("the running statement completes");
    assert!(matches!(
        messages.last(),
        Some(tokio_postgres::SimpleQueryMessage::CommandComplete(0))
    ));
    server.join(DEADLINE).await.unwrap();
}

#[tokio::test]
async fn statements_still_running_after_the_grace_period_are_cut_off() {
    let mut server = TestServer::start_with(Fake::new(false), Duration::from_millis(100)).await;
    let busy = server.client().await;
    let running = tokio::spawn(async move { busy.simple_query("block").await });
    server.fake.started.notified().await;

    server.request_shutdown();
    server.join(DEADLINE).await.unwrap();
    let err = running.await.unwrap().unwrap_err();
    assert!(err.is_closed(), "{err:?}");
}

#[tokio::test]
async fn an_idle_server_stops_at_once() {
    let server = TestServer::start(Fake::new(false)).await;
    let client = server.client().await;
    server.stop().await.unwrap();
    assert!(client.simple_query("select ints").await.is_err());
}
