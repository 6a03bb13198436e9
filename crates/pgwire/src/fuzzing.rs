//! Entry points for the frontend message decoder's fuzz target and randomized tests.
//!
//! [`decode_frontend`] runs arbitrary bytes through what a connection does with them before
//! any handler sees a message: the frame checks of this crate, then pgwire's decoder, with
//! the connection's phase following the messages (startup packet, then regular messages).
//! It must never panic, whatever the input.

use bytes::BytesMut;
use pgwire::messages::{DecodeContext, PgWireFrontendMessage, ProtocolVersion};

use crate::frames::FrameChecker;

/// What became of a byte string.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DecodeOutcome {
    /// Messages decoded before the input ran out or was refused.
    pub messages: usize,
    /// The SQLSTATE the connection would be closed with, if the input was refused.
    pub refused: Option<&'static str>,
}

/// Decodes `input` as the frontend side of a connection whose encryption negotiation is
/// over, with messages limited to `max_message_size` bytes.
pub fn decode_frontend(input: &[u8], max_message_size: usize) -> DecodeOutcome {
    let mut checker = FrameChecker::new(max_message_size);
    let mut ctx = DecodeContext::new(ProtocolVersion::PROTOCOL3_0);
    ctx.awaiting_frontend_ssl = false;
    ctx.awaiting_frontend_startup = true;
    let mut rest = input;
    let mut outcome = DecodeOutcome::default();
    let mut passwords = 0;
    loop {
        let len = match checker.check(rest) {
            Ok(Some(len)) => len,
            Ok(None) => return outcome,
            Err(err) => {
                outcome.refused = Some(err.code);
                return outcome;
            }
        };
        let mut buf = BytesMut::from(&rest[..len]);
        rest = &rest[len..];
        // pgwire decodes from a buffer that may hold the following messages too; a checked
        // message must be consumed exactly.
        buf.extend_from_slice(rest);
        let before = buf.len();
        match PgWireFrontendMessage::decode(&mut buf, &ctx) {
            Ok(Some(PgWireFrontendMessage::PasswordMessageFamily(message))) => {
                // What the SCRAM exchange does with password messages: the first is a
                // SASLInitialResponse, the next ones are SASLResponses.
                let coerced = if passwords == 0 {
                    message.into_sasl_initial_response().map(drop)
                } else {
                    message.into_sasl_response().map(drop)
                };
                passwords += 1;
                if coerced.is_err() {
                    outcome.refused = Some("08P01");
                    return outcome;
                }
                outcome.messages += 1;
            }
            Ok(Some(_)) => outcome.messages += 1,
            // A checked frame is always complete, so pgwire never asks for more; if it does,
            // the connection would wait forever, which the fuzz target reports.
            Ok(None) => panic!("pgwire wants more than a complete frame"),
            Err(_) => {
                outcome.refused = Some("08P01");
                return outcome;
            }
        }
        assert_eq!(
            before - buf.len(),
            len,
            "pgwire consumed a different length than the message's"
        );
        ctx.awaiting_frontend_startup = false;
    }
}
