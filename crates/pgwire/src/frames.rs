//! Checks on the raw frontend byte stream, before pgwire decodes it.
//!
//! pgwire accepts messages of up to 1 GiB and decodes strings leniently (invalid UTF-8 becomes
//! U+FFFD). [`FrameGuard`] sits between the socket (plain or TLS) and pgwire's codec, reads
//! whole messages, and hands one on only after [`FrameChecker`] has found nothing wrong with
//! it. A violation becomes an I/O error carrying a [`FrameError`], which the connection loop
//! (`conn.rs`) reports as a FATAL error with its SQLSTATE before closing the connection.
//!
//! Checked: the length of every message (a startup packet between 8 and 10,000 bytes, any
//! other message between 4 bytes and the configured maximum), the protocol version of the
//! startup packet (3.x only), and the layout of every message pgwire decodes, including UTF-8
//! in every string (`layout.rs`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::io::poll_read_buf;

use crate::layout::{check_body, check_startup_parameters};

/// Longest startup packet accepted (PostgreSQL and pgwire use the same limit).
const MAX_STARTUP_PACKET: usize = 10_000;
/// Shortest startup packet: the length and the protocol code.
const MIN_STARTUP_PACKET: usize = 8;
const CANCEL_REQUEST_CODE: u32 = 80_877_102;
/// Length, protocol code, process id and a 4-byte secret key.
const CANCEL_REQUEST_LEN: usize = 16;
const SSL_REQUEST_CODE: u32 = 80_877_103;
const GSSENC_REQUEST_CODE: u32 = 80_877_104;
/// Bytes of outgoing messages held back at most before they are sent.
const WRITE_BUFFER: usize = 64 << 10;
/// Largest read from the socket at once while a long message is arriving.
const READ_CHUNK: usize = 64 << 10;

/// A protocol violation in the frontend byte stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub(crate) struct FrameError {
    /// SQLSTATE.
    pub code: &'static str,
    /// The message for the client.
    pub message: String,
}

pub(crate) fn violation(code: &'static str, message: impl Into<String>) -> FrameError {
    FrameError {
        code,
        message: message.into(),
    }
}

pub(crate) fn invalid_utf8(bytes: &[u8]) -> FrameError {
    let bad = std::str::from_utf8(bytes)
        .err()
        .map_or(0, |e| e.valid_up_to());
    let shown: Vec<String> = bytes[bad..]
        .iter()
        .take(2)
        .map(|b| format!("0x{b:02x}"))
        .collect();
    violation(
        "22021",
        format!(
            "invalid byte sequence for encoding \"UTF8\": {}",
            shown.join(" ")
        ),
    )
}

/// What the next message looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A startup packet or cancel request: a length, then a protocol code, no type byte.
    Startup,
    /// Regular messages: a type byte, then a length.
    Typed,
}

/// Finds message boundaries in the frontend byte stream and checks each message.
#[derive(Debug, Clone)]
pub(crate) struct FrameChecker {
    phase: Phase,
    max_message_size: usize,
    /// Whether a password-family message has been seen.
    password_seen: bool,
}

impl FrameChecker {
    /// A checker for a connection whose SSL/GSS negotiation is over, so the next message is a
    /// startup packet or a cancel request.
    pub(crate) fn new(max_message_size: usize) -> FrameChecker {
        FrameChecker {
            phase: Phase::Startup,
            max_message_size,
            password_seen: false,
        }
    }

    /// The length of the complete, valid message at the start of `buf`; `None` when more
    /// bytes are needed to tell. Errors are reported as soon as the bytes that show them
    /// have arrived (an oversized length after the 5-byte header, without reading the body).
    pub(crate) fn check(&mut self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        match self.phase {
            Phase::Startup => self.check_startup(buf),
            Phase::Typed => self.check_typed(buf),
        }
    }

    fn check_startup(&mut self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        if buf.len() < MIN_STARTUP_PACKET {
            return Ok(None);
        }
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if !(MIN_STARTUP_PACKET..=MAX_STARTUP_PACKET).contains(&len) {
            return Err(violation("08P01", "invalid length of startup packet"));
        }
        let code = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        match code {
            // pgwire decodes the 4-byte secret key of protocol 3.0 only (the key a 3.0
            // session is given); anything longer would be left in the buffer.
            CANCEL_REQUEST_CODE if len != CANCEL_REQUEST_LEN => {
                return Err(violation("08P01", "invalid length of cancel request"));
            }
            CANCEL_REQUEST_CODE => {}
            SSL_REQUEST_CODE | GSSENC_REQUEST_CODE => {
                return Err(violation(
                    "08P01",
                    "encryption request after the connection's encryption was negotiated",
                ));
            }
            _ if code >> 16 != 3 => {
                return Err(violation(
                    "0A000",
                    format!(
                        "unsupported frontend protocol {}.{}: server supports 3.0 to 3.2",
                        code >> 16,
                        code & 0xffff
                    ),
                ));
            }
            _ => {}
        }
        if buf.len() < len {
            return Ok(None);
        }
        if code != CANCEL_REQUEST_CODE {
            check_startup_parameters(&buf[MIN_STARTUP_PACKET..len])?;
        }
        self.phase = Phase::Typed;
        Ok(Some(len))
    }

    fn check_typed(&mut self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        if buf.len() < 5 {
            return Ok(None);
        }
        let tag = buf[0];
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if len < 4 {
            return Err(violation("08P01", "invalid message length"));
        }
        if len > self.max_message_size {
            return Err(violation(
                "08P01",
                format!(
                    "message of type {} is {len} bytes long, more than the maximum of {} bytes",
                    shown_tag(tag),
                    self.max_message_size
                ),
            ));
        }
        let total = len + 1;
        if buf.len() < total {
            return Ok(None);
        }
        // The only password exchange the server runs is SCRAM, whose first message is a
        // SASLInitialResponse; in trust mode any password message ends the connection.
        let sasl_initial = tag == b'p' && !self.password_seen;
        self.password_seen |= tag == b'p';
        check_body(tag, &buf[5..total], sasl_initial)?;
        Ok(Some(total))
    }
}

fn shown_tag(tag: u8) -> String {
    if tag.is_ascii_graphic() {
        format!("'{}'", tag as char)
    } else {
        format!("0x{tag:02x}")
    }
}

/// A stream that hands its reader only whole messages [`FrameChecker`] accepted; see the
/// module documentation.
#[derive(Debug)]
pub(crate) struct FrameGuard<S> {
    io: S,
    checker: FrameChecker,
    /// Bytes read from `io` and not yet checked.
    unchecked: BytesMut,
    /// Checked bytes not yet read by the reader.
    checked: BytesMut,
    /// The violation found, reported on every read from then on.
    failed: Option<FrameError>,
    /// Messages written and not yet sent (see [`FrameGuard`]'s `AsyncWrite`).
    out: BytesMut,
}

impl<S> FrameGuard<S> {
    /// Wraps `io`; `pending` holds bytes already read from it (after SSL negotiation).
    pub(crate) fn new(io: S, pending: BytesMut, checker: FrameChecker) -> FrameGuard<S> {
        FrameGuard {
            io,
            checker,
            unchecked: pending,
            checked: BytesMut::new(),
            failed: None,
            out: BytesMut::new(),
        }
    }

    /// Moves every complete message at the start of `unchecked` to `checked`.
    fn advance(&mut self) -> Result<(), FrameError> {
        while let Some(len) = self.checker.check(&self.unchecked)? {
            let message = self.unchecked.split_to(len);
            self.checked.extend_from_slice(&message);
        }
        Ok(())
    }
}

impl<S: AsyncWrite + Unpin> FrameGuard<S> {
    /// Sends everything in `out` and flushes `io`.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out.advance(n);
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }
}

fn frame_io_error(err: FrameError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

/// The protocol violation an I/O error from a [`FrameGuard`] carries, if it is one.
pub(crate) fn frame_error(err: &io::Error) -> Option<&FrameError> {
    err.get_ref()?.downcast_ref::<FrameError>()
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for FrameGuard<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.checked.is_empty() {
                let n = this.checked.len().min(buf.remaining());
                buf.put_slice(&this.checked[..n]);
                this.checked.advance(n);
                return Poll::Ready(Ok(()));
            }
            if let Some(err) = &this.failed {
                return Poll::Ready(Err(frame_io_error(err.clone())));
            }
            if let Err(err) = this.advance() {
                this.failed = Some(err);
                continue;
            }
            if !this.checked.is_empty() {
                continue;
            }
            // About to wait for the client: whatever was written for it goes out first.
            ready!(this.poll_send(cx))?;
            this.unchecked.reserve(READ_CHUNK);
            let n = ready!(poll_read_buf(
                Pin::new(&mut this.io),
                cx,
                &mut this.unchecked
            ))?;
            if n == 0 {
                // End of stream; an incomplete message left behind is dropped with it.
                return Poll::Ready(Ok(()));
            }
        }
    }
}

/// Writes are held back until the connection is about to wait for the client (a read that
/// finds no complete message, see `poll_read`), until [`WRITE_BUFFER`] bytes are waiting, or
/// until shutdown: the messages answering one round of requests (BindComplete, DataRows,
/// CommandComplete, ReadyForQuery, ...) leave in one send, as PostgreSQL's do, where pgwire
/// flushes after each. A flush therefore only sends when the buffer is full; the connection
/// loop closes the socket (which sends the rest) when it ends.
impl<S: AsyncWrite + Unpin> AsyncWrite for FrameGuard<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.out.len() >= WRITE_BUFFER {
            ready!(this.poll_send(cx))?;
        }
        this.out.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.out.len() >= WRITE_BUFFER {
            ready!(this.poll_send(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream that counts the writes reaching it.
    struct Counted {
        inner: tokio::io::DuplexStream,
        writes: usize,
    }

    impl AsyncRead for Counted {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Counted {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.writes += 1;
            Pin::new(&mut self.inner).poll_write(cx, buf)
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    #[tokio::test]
    async fn answers_leave_in_one_send_when_the_connection_waits_for_the_client() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (server, mut client) = tokio::io::duplex(1 << 20);
        let mut checker = FrameChecker::new(100);
        checker.phase = Phase::Typed;
        let io = Counted {
            inner: server,
            writes: 0,
        };
        let mut guard = FrameGuard::new(io, BytesMut::new(), checker);
        // Three answers, each flushed as pgwire does: nothing reaches the socket yet.
        for m in [&b"2\0\0\0\x04"[..], b"C\0\0\0\x0bSELECT\0", b"Z\0\0\0\x05I"] {
            guard.write_all(m).await.unwrap();
            guard.flush().await.unwrap();
        }
        assert_eq!(guard.io.writes, 0);
        // The connection reads the client's next message: the answers go first, in one send.
        client.write_all(b"S\0\0\0\x04").await.unwrap();
        let mut sync = [0u8; 5];
        guard.read_exact(&mut sync).await.unwrap();
        assert_eq!(&sync, b"S\0\0\0\x04");
        assert_eq!(guard.io.writes, 1);
        let mut answers = vec![0u8; 5 + 12 + 6];
        client.read_exact(&mut answers).await.unwrap();
        assert!(answers.starts_with(b"2\0\0\0\x04C") && answers.ends_with(b"Z\0\0\0\x05I"));
        // A large answer is sent once the buffer is full; shutting down sends the rest.
        let big = vec![b'x'; WRITE_BUFFER + 10];
        guard.write_all(&big).await.unwrap();
        guard.write_all(b"tail").await.unwrap();
        assert_eq!(guard.io.writes, 2);
        guard.shutdown().await.unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest.len(), big.len() + 4);
        assert!(rest.ends_with(b"tail"));
    }

    fn startup(version: u32, params: &[u8]) -> Vec<u8> {
        let mut packet = ((8 + params.len()) as u32).to_be_bytes().to_vec();
        packet.extend_from_slice(&version.to_be_bytes());
        packet.extend_from_slice(params);
        packet
    }

    #[test]
    fn the_first_message_is_a_startup_packet_then_messages_are_typed() {
        let mut checker = FrameChecker::new(100);
        let packet = startup(3 << 16, b"user\0bob\0\0");
        // Incomplete: wait for more.
        assert_eq!(checker.check(&packet[..7]), Ok(None));
        assert_eq!(checker.check(&packet[..packet.len() - 1]), Ok(None));
        assert_eq!(checker.check(&packet), Ok(Some(packet.len())));
        // Now typed: a Sync is 5 bytes.
        assert_eq!(checker.check(b"S\0\0\0\x04"), Ok(Some(5)));
        assert_eq!(checker.check(b"S\0\0"), Ok(None));
    }

    #[test]
    fn oversized_messages_are_refused_from_their_header() {
        let mut checker = FrameChecker::new(100);
        checker.phase = Phase::Typed;
        assert_eq!(checker.check(b"Q\0\0\0\x64"), Ok(None));
        let err = checker.check(b"Q\0\0\0\x65").unwrap_err();
        assert_eq!(err.code, "08P01");
        assert!(err.message.contains("101 bytes long"), "{err}");
        assert_eq!(checker.check(b"Q\0\0\0\x03").unwrap_err().code, "08P01");
    }

    #[test]
    fn startup_packets_are_checked() {
        let cases: [(Vec<u8>, &str); 5] = [
            (startup(2 << 16, b"\0"), "0A000"),
            (startup(80_877_103, b""), "08P01"),
            (startup(3 << 16, b"user\0b\xffb\0\0"), "22021"),
            (startup(3 << 16, b"user\0bob\0"), "08P01"),
            (vec![0, 0, 0x40, 0, 0, 3, 0, 0], "08P01"),
        ];
        for (packet, code) in cases {
            let err = FrameChecker::new(100).check(&packet).unwrap_err();
            assert_eq!(err.code, code, "{packet:?}: {err}");
        }
        // A cancel request is a complete first message.
        let mut cancel = startup(80_877_102, &[0, 0, 0, 7]);
        cancel.extend_from_slice(&[1, 2, 3, 4]);
        cancel[3] = 16;
        assert_eq!(FrameChecker::new(100).check(&cancel), Ok(Some(16)));
        // Found by the fuzz target: a longer cancel request left bytes behind in pgwire.
        let mut long = cancel.clone();
        long.extend_from_slice(&[0; 8]);
        long[3] = 24;
        let err = FrameChecker::new(100).check(&long).unwrap_err();
        assert_eq!(err.message, "invalid length of cancel request");
    }
}
