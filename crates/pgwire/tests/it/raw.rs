//! A minimal hand-driven protocol client, for flows the drivers do not produce (Describe of a
//! portal before Execute, row limits, pipelined errors) and for reading raw messages.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use postgres_protocol::IsNull;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const DEADLINE: Duration = Duration::from_secs(10);

/// A backend message, decoded just enough for assertions.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    AuthOk,
    ParameterStatus(String, String),
    BackendKeyData,
    Ready(u8),
    ParseComplete,
    BindComplete,
    CloseComplete,
    NoData,
    PortalSuspended,
    EmptyQuery,
    ParameterDescription(Vec<u32>),
    /// (name, type oid, format) of each field.
    RowDescription(Vec<(String, u32, i16)>),
    DataRow(Vec<Option<Vec<u8>>>),
    CommandComplete(String),
    /// (field type, value) pairs.
    Error(Vec<(u8, String)>),
    Other(u8),
}

impl Msg {
    /// The SQLSTATE of an error message.
    pub fn code(&self) -> Option<&str> {
        match self {
            Msg::Error(fields) => fields
                .iter()
                .find(|(t, _)| *t == b'C')
                .map(|(_, v)| v.as_str()),
            _ => None,
        }
    }

    /// A data row of text values.
    pub fn text_row(values: &[Option<&str>]) -> Msg {
        Msg::DataRow(
            values
                .iter()
                .map(|v| v.map(|s| s.as_bytes().to_vec()))
                .collect(),
        )
    }
}

/// A byte stream to a server: TCP, or TLS over TCP.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

pub struct Raw {
    stream: Box<dyn Stream>,
    buf: BytesMut,
    /// The (pid, secret key) of the last BackendKeyData received.
    pub backend_key: Option<(i32, Vec<u8>)>,
}

impl Raw {
    /// Connects and completes startup as `anyone` on `defaultdb`; returns the startup messages.
    pub async fn connect(addr: SocketAddr) -> (Raw, Vec<Msg>) {
        let stream = TcpStream::connect(addr).await.unwrap();
        let mut raw = Raw::from_stream(stream);
        raw.startup(&[
            ("user", "anyone"),
            ("database", "defaultdb"),
            ("application_name", "raw-test"),
        ])
        .await;
        let messages = raw.until_ready().await;
        (raw, messages)
    }

    /// Sends a startup packet with these parameters.
    pub async fn startup(&mut self, params: &[(&str, &str)]) {
        self.send(|b| frontend::startup_message(params.iter().copied(), b).unwrap())
            .await;
    }

    pub async fn send(&mut self, build: impl FnOnce(&mut BytesMut)) {
        let mut out = BytesMut::new();
        build(&mut out);
        self.stream.write_all(&out).await.unwrap();
    }

    pub async fn parse(&mut self, name: &str, sql: &str) {
        self.send(|b| frontend::parse(name, sql, std::iter::empty(), b).unwrap())
            .await;
    }

    /// Binds without parameters, with the given result format codes.
    pub async fn bind(&mut self, portal: &str, statement: &str, result_formats: &[i16]) {
        self.send(|b| {
            frontend::bind(
                portal,
                statement,
                std::iter::empty(),
                std::iter::empty::<()>(),
                |(), _| Ok(IsNull::No),
                result_formats.iter().copied(),
                b,
            )
            .map_err(|_| "bind")
            .unwrap()
        })
        .await;
    }

    pub async fn describe_portal(&mut self, portal: &str) {
        self.send(|b| frontend::describe(b'P', portal, b).unwrap())
            .await;
    }

    pub async fn describe_statement(&mut self, statement: &str) {
        self.send(|b| frontend::describe(b'S', statement, b).unwrap())
            .await;
    }

    pub async fn execute(&mut self, portal: &str, max_rows: i32) {
        self.send(|b| frontend::execute(portal, max_rows, b).unwrap())
            .await;
    }

    pub async fn sync(&mut self) {
        self.send(frontend::sync).await;
    }

    pub async fn query(&mut self, sql: &str) {
        self.send(|b| frontend::query(sql, b).unwrap()).await;
    }

    /// The next message; panics after a deadline or at end of stream.
    pub async fn recv(&mut self) -> Msg {
        tokio::time::timeout(DEADLINE, self.recv_inner())
            .await
            .expect("a message within the deadline")
            .expect("connection open")
    }

    /// The data of the next authentication message (SASLContinue or SASLFinal).
    pub async fn recv_auth_data(&mut self) -> Vec<u8> {
        tokio::time::timeout(DEADLINE, async {
            loop {
                if self.buf.len() >= 9 {
                    let len = i32::from_be_bytes(self.buf[1..5].try_into().unwrap()) as usize;
                    if self.buf.len() > len {
                        assert_eq!(self.buf[0], b'R', "not an authentication message");
                        let mut body = self.buf.split_to(len + 1);
                        body.advance(9);
                        return body.to_vec();
                    }
                }
                let n = self.stream.read_buf(&mut self.buf).await.unwrap();
                assert!(n > 0, "connection closed");
            }
        })
        .await
        .expect("an authentication message within the deadline")
    }

    /// Messages up to and including the next ReadyForQuery.
    pub async fn until_ready(&mut self) -> Vec<Msg> {
        let mut out = Vec::new();
        loop {
            let msg = self.recv().await;
            let done = matches!(msg, Msg::Ready(_));
            out.push(msg);
            if done {
                return out;
            }
        }
    }

    /// Reads until the server closes the connection, returning any messages seen on the way;
    /// panics if it stays open past the deadline.
    pub async fn until_closed(&mut self) -> Vec<Msg> {
        let mut out = Vec::new();
        tokio::time::timeout(DEADLINE, async {
            while let Some(msg) = self.recv_inner().await {
                out.push(msg);
            }
        })
        .await
        .expect("server closes the connection within the deadline");
        out
    }

    async fn recv_inner(&mut self) -> Option<Msg> {
        loop {
            if self.buf.len() >= 5 {
                let len = i32::from_be_bytes(self.buf[1..5].try_into().unwrap()) as usize;
                if self.buf.len() > len {
                    let tag = self.buf[0];
                    self.buf.advance(5);
                    let body = self.buf.split_to(len - 4);
                    if tag == b'K' && body.len() >= 4 {
                        let pid = i32::from_be_bytes(body[..4].try_into().unwrap());
                        self.backend_key = Some((pid, body[4..].to_vec()));
                    }
                    return Some(decode(tag, body));
                }
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }
}

fn cstr(body: &mut BytesMut) -> String {
    let end = body.iter().position(|&b| b == 0).unwrap();
    let s = String::from_utf8(body[..end].to_vec()).unwrap();
    body.advance(end + 1);
    s
}

fn decode(tag: u8, mut body: BytesMut) -> Msg {
    match tag {
        b'R' if body.get_i32() == 0 => Msg::AuthOk,
        b'S' => Msg::ParameterStatus(cstr(&mut body), cstr(&mut body)),
        b'K' => Msg::BackendKeyData,
        b'Z' => Msg::Ready(body.get_u8()),
        b'1' => Msg::ParseComplete,
        b'2' => Msg::BindComplete,
        b'3' => Msg::CloseComplete,
        b'n' => Msg::NoData,
        b's' => Msg::PortalSuspended,
        b'I' => Msg::EmptyQuery,
        b't' => {
            let n = body.get_i16();
            Msg::ParameterDescription((0..n).map(|_| body.get_u32()).collect())
        }
        b'T' => {
            let n = body.get_i16();
            let fields = (0..n)
                .map(|_| {
                    let name = cstr(&mut body);
                    let _table = body.get_u32();
                    let _column = body.get_i16();
                    let oid = body.get_u32();
                    let _size = body.get_i16();
                    let _modifier = body.get_i32();
                    (name, oid, body.get_i16())
                })
                .collect();
            Msg::RowDescription(fields)
        }
        b'D' => {
            let n = body.get_i16();
            let values = (0..n)
                .map(|_| {
                    let len = body.get_i32();
                    (len >= 0).then(|| body.split_to(len as usize).to_vec())
                })
                .collect();
            Msg::DataRow(values)
        }
        b'C' => Msg::CommandComplete(cstr(&mut body)),
        b'E' => {
            let mut fields = Vec::new();
            while body[0] != 0 {
                let t = body.get_u8();
                fields.push((t, cstr(&mut body)));
            }
            Msg::Error(fields)
        }
        other => Msg::Other(other),
    }
}

impl Raw {
    /// Wraps an already connected stream, without startup.
    pub fn from_stream(stream: impl Stream + 'static) -> Raw {
        Raw {
            stream: Box::new(stream),
            buf: BytesMut::new(),
            backend_key: None,
        }
    }

    /// Half-closes the connection (no more requests).
    pub async fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}
