//! Garbage on the port closes that connection and nothing else.

use std::net::SocketAddr;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::fake::{Fake, TestServer};
use crate::raw::{Msg, Raw};

/// Writes `bytes` on a fresh connection, half-closes it, and checks the server closes it.
async fn send_garbage(addr: SocketAddr, bytes: &[u8]) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may already have closed the connection; a failed write is fine.
    let _ = stream.write_all(bytes).await;
    let _ = stream.shutdown().await;
    let mut raw = Raw::from_stream(stream);
    let messages = raw.until_closed().await;
    assert!(
        messages
            .iter()
            .all(|m| matches!(m, Msg::Error(_) | Msg::Other(b'N'))),
        "garbage got answers: {messages:?}"
    );
}

/// A deterministic byte generator (64-bit LCG), so failures replay.
fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect()
}

#[tokio::test]
async fn garbage_closes_only_its_own_connection() {
    let server = TestServer::start(Fake::new(false)).await;
    // A connection made before the garbage arrives.
    let bystander = server.client().await;

    send_garbage(server.addr, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    send_garbage(server.addr, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03").await; // TLS hello
    send_garbage(server.addr, &[0, 0, 0, 8]).await; // truncated startup packet
    send_garbage(server.addr, &[0, 0, 0, 4, 0, 3, 0, 0]).await; // too short a startup packet
    send_garbage(server.addr, &[0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0]).await; // huge length
    for seed in 0..40 {
        let len = 1 + (seed as usize * 37) % 300;
        send_garbage(server.addr, &pseudo_random_bytes(seed, len)).await;
    }

    bystander.simple_query("select ints").await.unwrap();
    server
        .client()
        .await
        .simple_query("select ints")
        .await
        .unwrap();
}

#[tokio::test]
async fn garbage_after_startup_closes_the_connection() {
    let server = TestServer::start(Fake::new(false)).await;
    let bystander = server.client().await;
    let cases: [&[u8]; 4] = [
        b"GET / HTTP/1.1\r\n\r\n",       // unknown message type 'G'
        &[b'Q', 0x7f, 0xff, 0xff, 0xff], // query longer than allowed
        &[0xff, 0, 0, 0, 4],             // unknown message type 0xff
        &[b'B', 0, 0, 0, 12, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0], // negative counts
    ];
    for case in cases {
        let (mut raw, _) = Raw::connect(server.addr).await;
        raw.send(|b| b.extend_from_slice(case)).await;
        raw.until_closed().await;
    }
    // A truncated message followed by a hang-up.
    let (mut raw, _) = Raw::connect(server.addr).await;
    raw.send(|b| b.extend_from_slice(&[b'Q', 0, 0, 0, 100, b's']))
        .await;
    raw.shutdown_write().await;
    raw.until_closed().await;

    bystander.simple_query("select ints").await.unwrap();
}
