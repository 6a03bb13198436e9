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

/// Reads until the server closes and checks that its only answer was a FATAL error with
/// `code`; returns the error's message.
async fn expect_fatal(raw: &mut Raw, code: &str) -> String {
    let messages = raw.until_closed().await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let Msg::Error(fields) = &messages[0] else {
        panic!("not an error: {messages:?}");
    };
    let field = |t: u8| fields.iter().find(|(f, _)| *f == t).map(|(_, v)| v.clone());
    assert_eq!(field(b'S').as_deref(), Some("FATAL"), "{fields:?}");
    assert_eq!(field(b'C').as_deref(), Some(code), "{fields:?}");
    field(b'M').unwrap_or_default()
}

/// A startup packet with any protocol version and raw parameter bytes.
fn startup_packet(major: u16, minor: u16, params: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&major.to_be_bytes());
    body.extend_from_slice(&minor.to_be_bytes());
    for param in params {
        body.extend_from_slice(param);
        body.push(0);
    }
    body.push(0);
    let mut packet = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    packet
}

async fn raw_with(addr: SocketAddr, bytes: &[u8]) -> Raw {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    Raw::from_stream(stream)
}

#[tokio::test]
async fn oversized_messages_are_refused_before_their_body_arrives() {
    let config = meridian_pgwire::PgServerConfig {
        max_message_size: 1 << 20,
        ..Default::default()
    };
    let server = TestServer::start_config(Fake::new(false), config).await;
    let bystander = server.client().await;

    // Only the header of a 2 MiB query: the server answers without waiting for the body.
    let (mut raw, _) = Raw::connect(server.addr).await;
    raw.send(|b| {
        b.extend_from_slice(b"Q");
        b.extend_from_slice(&(2u32 << 20).to_be_bytes());
    })
    .await;
    let message = expect_fatal(&mut raw, "08P01").await;
    assert_eq!(
        message,
        "message of type 'Q' is 2097152 bytes long, more than the maximum of 1048576 bytes"
    );

    // Just under the limit is fine.
    let (mut raw, _) = Raw::connect(server.addr).await;
    let padded = format!("select ints{}", " ".repeat((1 << 20) - 100));
    raw.query(&padded).await;
    let messages = raw.until_ready().await;
    assert!(
        messages.contains(&Msg::CommandComplete("SELECT 2".into())),
        "{messages:?}"
    );

    // A length below the header's own size.
    let (mut raw, _) = Raw::connect(server.addr).await;
    raw.send(|b| b.extend_from_slice(&[b'Q', 0, 0, 0, 3])).await;
    expect_fatal(&mut raw, "08P01").await;

    bystander.simple_query("select ints").await.unwrap();
}

#[tokio::test]
async fn the_default_limit_is_64_mib() {
    assert_eq!(meridian_pgwire::DEFAULT_MAX_MESSAGE_SIZE, 64 << 20);
    let server = TestServer::start(Fake::new(false)).await;
    let (mut raw, _) = Raw::connect(server.addr).await;
    raw.send(|b| {
        b.extend_from_slice(b"P");
        b.extend_from_slice(&((64u32 << 20) + 1).to_be_bytes());
    })
    .await;
    let message = expect_fatal(&mut raw, "08P01").await;
    assert!(
        message.contains("more than the maximum of 67108864 bytes"),
        "{message}"
    );
}

#[tokio::test]
async fn unsupported_protocol_versions_are_refused() {
    let server = TestServer::start(Fake::new(false)).await;
    for (major, minor) in [(2, 0), (1, 0), (4, 0), (0, 0)] {
        let packet = startup_packet(major, minor, &[b"user", b"anyone"]);
        let mut raw = raw_with(server.addr, &packet).await;
        let message = expect_fatal(&mut raw, "0A000").await;
        assert_eq!(
            message,
            format!("unsupported frontend protocol {major}.{minor}: server supports 3.0 to 3.2")
        );
    }
    // A newer 3.x minor version is negotiated down, as in PostgreSQL.
    let packet = startup_packet(3, 7, &[b"user", b"anyone", b"database", b"defaultdb"]);
    let mut raw = raw_with(server.addr, &packet).await;
    let messages = raw.until_ready().await;
    assert_eq!(messages[0], Msg::Other(b'v'), "{messages:?}");
    assert!(messages.contains(&Msg::AuthOk), "{messages:?}");
    raw.query("select ints").await;
    assert!(
        raw.until_ready()
            .await
            .contains(&Msg::CommandComplete("SELECT 2".into()))
    );
}

#[tokio::test]
async fn invalid_utf8_is_refused_with_22021() {
    let server = TestServer::start(Fake::new(false)).await;
    let bystander = server.client().await;

    // In a startup parameter.
    let packet = startup_packet(3, 0, &[b"user", b"any\xffone"]);
    let mut raw = raw_with(server.addr, &packet).await;
    let message = expect_fatal(&mut raw, "22021").await;
    assert_eq!(
        message,
        "invalid byte sequence for encoding \"UTF8\": 0xff 0x6f"
    );

    // In a simple query.
    let (mut raw, _) = Raw::connect(server.addr).await;
    raw.send(|b| {
        let body = b"select \xc3\x28\0";
        b.extend_from_slice(b"Q");
        b.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        b.extend_from_slice(body);
    })
    .await;
    let message = expect_fatal(&mut raw, "22021").await;
    assert_eq!(
        message,
        "invalid byte sequence for encoding \"UTF8\": 0xc3 0x28"
    );

    // In the statement name and in the text of a Parse.
    for body in [
        &b"st\xfe\0select ints\0\0\0"[..],
        b"\0select \xe2\x82\0\0\0",
    ] {
        let (mut raw, _) = Raw::connect(server.addr).await;
        raw.send(|b| {
            b.extend_from_slice(b"P");
            b.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
            b.extend_from_slice(body);
        })
        .await;
        expect_fatal(&mut raw, "22021").await;
    }

    // Valid multi-byte text arrives intact (the fake echoes unknown statements).
    let (mut raw, _) = Raw::connect(server.addr).await;
    raw.query("héllo ✓").await;
    let messages = raw.until_ready().await;
    let Msg::Error(fields) = &messages[0] else {
        panic!("{messages:?}");
    };
    assert!(
        fields.contains(&(b'M', "syntax error at or near \"héllo ✓\"".to_owned())),
        "{fields:?}"
    );

    bystander.simple_query("select ints").await.unwrap();
}

#[tokio::test]
async fn malformed_messages_get_a_protocol_error_before_the_close() {
    let server = TestServer::start(Fake::new(false)).await;
    for case in [
        &[0xffu8, 0, 0, 0, 4][..], // unknown message type
        &[b'B', 0, 0, 0, 12, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0], // negative counts
        &[b'D', 0, 0, 0, 4],       // Describe without a target
    ] {
        let (mut raw, _) = Raw::connect(server.addr).await;
        raw.send(|b| b.extend_from_slice(case)).await;
        expect_fatal(&mut raw, "08P01").await;
    }
    // A startup packet of a silly length.
    let mut raw = raw_with(server.addr, &[0, 0, 0x40, 0, 0, 3, 0, 0]).await;
    let message = expect_fatal(&mut raw, "08P01").await;
    assert_eq!(message, "invalid length of startup packet");
}
