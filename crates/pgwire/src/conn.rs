//! One client connection: encryption negotiation, the frame guard, and the message loop.
//!
//! This is pgwire's `process_socket` with two differences: the byte stream passes through a
//! [`FrameGuard`] (message size, protocol version and UTF-8 checks), and a message that cannot
//! be decoded is answered with a FATAL `ErrorResponse` carrying a SQLSTATE before the
//! connection closes, instead of a silent close.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pgwire::api::{ClientInfo, PgWireConnectionState};
use pgwire::error::{ErrorInfo, PgWireError};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::TlsAcceptor;
use pgwire::tokio::server::{negotiate_tls, process_error, process_message};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, FramedParts};

use crate::auth::CertificateUser;
use crate::backend::SqlBackend;
use crate::error::{Severity, error_info, sql_error};
use crate::extended::PreparedSql;
use crate::frames::{FrameChecker, FrameGuard, frame_error};
use crate::server::Handler;

/// A connection that has not completed startup by then is closed.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves one connection until the client leaves, a FATAL error, or a protocol violation.
pub(crate) async fn serve_connection<B: SqlBackend>(
    tcp: TcpStream,
    tls: Option<TlsAcceptor>,
    handler: Arc<Handler<B>>,
    max_message_size: usize,
) -> io::Result<()> {
    let startup_deadline = tokio::time::sleep(STARTUP_TIMEOUT);
    tokio::pin!(startup_deadline);
    let negotiated = tokio::select! {
        () = &mut startup_deadline => return Ok(()),
        negotiated = negotiate_tls::<PreparedSql>(tcp, tls) => negotiated?,
    };
    // `None`: a direct TLS handshake while TLS is off; not a PostgreSQL client to talk to.
    let Some(negotiated) = negotiated else {
        return Ok(());
    };
    let old = negotiated.into_parts();
    let certificate_user = CertificateUser::of(&old.io);
    let guard = FrameGuard::new(old.io, old.read_buf, FrameChecker::new(max_message_size));
    let mut parts = FramedParts::new::<PgWireBackendMessage>(guard, old.codec);
    parts.write_buf = old.write_buf;
    let mut socket = Framed::from_parts(parts);
    if let Some(user) = certificate_user {
        socket.session_extensions().insert(user);
    }

    loop {
        let starting = matches!(
            socket.state(),
            PgWireConnectionState::AwaitingStartup
                | PgWireConnectionState::AuthenticationInProgress
        );
        let next = if starting {
            tokio::select! {
                () = &mut startup_deadline => None,
                next = socket.next() => next,
            }
        } else {
            socket.next().await
        };
        let message = match next {
            None => break,
            Some(Ok(message)) => message,
            Some(Err(err)) => {
                report_undecodable(&mut socket, err).await;
                break;
            }
        };
        // The client is leaving; PostgreSQL closes without an answer.
        if matches!(message, PgWireFrontendMessage::Terminate(_)) {
            break;
        }
        // pgwire ignores these once the session has started; PostgreSQL refuses them.
        if !starting
            && matches!(
                message,
                PgWireFrontendMessage::PasswordMessageFamily(_)
                    | PgWireFrontendMessage::Startup(_)
                    | PgWireFrontendMessage::SslNegotiation(_)
            )
        {
            let err = sql_error("08P01", "unexpected startup or authentication message");
            send_fatal(&mut socket, error_info(err, Severity::Fatal)).await;
            break;
        }
        // A cancel request comes on a connection of its own, which ends with it.
        let is_cancel = matches!(message, PgWireFrontendMessage::CancelRequest(_));
        let extended = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => message.is_extended_query(),
        };
        let processed = process_message(
            message,
            &mut socket,
            Arc::clone(&handler),
            Arc::clone(&handler),
            Arc::clone(&handler),
            Arc::clone(&handler),
            Arc::clone(&handler),
        )
        .await;
        if let Err(err) = processed {
            if err.is_fatal() {
                // As in PostgreSQL, a FATAL error is the connection's last message.
                send_fatal(&mut socket, err.into()).await;
                break;
            }
            process_error(&mut socket, err, extended).await?;
        }
        if is_cancel {
            break;
        }
    }
    // Sends what the frame guard still holds (a FATAL error, say) and closes.
    let _ = socket.close().await;
    Ok(())
}

/// Answers a message that could not be read with a FATAL error, then closes. A plain socket
/// failure has nobody to answer.
async fn report_undecodable<S>(socket: &mut S, err: PgWireError)
where
    S: futures::Sink<PgWireBackendMessage> + Unpin,
{
    let err = match &err {
        PgWireError::IoError(io) => match frame_error(io) {
            Some(violation) => sql_error(violation.code, violation.message.clone()),
            None => {
                tracing::debug!(%err, "connection failed");
                return;
            }
        },
        // pgwire's decoders fail only on malformed messages.
        other => sql_error("08P01", format!("invalid message: {other}")),
    };
    tracing::debug!(code = err.code, message = %err.message, "protocol violation");
    send_fatal(socket, error_info(err, Severity::Fatal)).await;
}

/// Sends a FATAL error and closes the connection.
async fn send_fatal<S>(socket: &mut S, info: ErrorInfo)
where
    S: futures::Sink<PgWireBackendMessage> + Unpin,
{
    // The client may be gone already; the connection closes either way.
    let _ = socket
        .send(PgWireBackendMessage::ErrorResponse(info.into()))
        .await;
    let _ = socket.close().await;
}
