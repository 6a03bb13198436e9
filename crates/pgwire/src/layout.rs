//! The layout of each frontend message body, checked before pgwire decodes it.
//!
//! pgwire's decoders read fields without bounds checks (a short `Describe` panics) and stop at
//! the first NUL of a string (bytes after it would be read as the next message). So every
//! message it decodes is first checked here to have exactly the layout the protocol gives it:
//! every field present, counts not negative, nothing after the last field, and every string
//! valid UTF-8.

use crate::frames::{FrameError, invalid_utf8, violation};

/// A cursor over a message body.
struct Body<'a> {
    rest: &'a [u8],
}

fn bad_format() -> FrameError {
    violation("08P01", "invalid message format")
}

impl<'a> Body<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if self.rest.len() < n {
            return Err(bad_format());
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    /// A NUL-terminated string, which must be UTF-8.
    fn string(&mut self) -> Result<&'a str, FrameError> {
        let end = self
            .rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(bad_format)?;
        let bytes = self.take(end + 1)?;
        std::str::from_utf8(&bytes[..end]).map_err(|_| invalid_utf8(&bytes[..end]))
    }

    fn i16(&mut self) -> Result<i16, FrameError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, FrameError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A count, which may not be negative.
    fn count(&mut self) -> Result<usize, FrameError> {
        usize::try_from(self.i16()?).map_err(|_| bad_format())
    }

    /// A length-prefixed value: -1 is NULL, other negative lengths are invalid.
    fn value(&mut self) -> Result<(), FrameError> {
        match self.i32()? {
            -1 => Ok(()),
            len => {
                let len = usize::try_from(len).map_err(|_| bad_format())?;
                self.take(len).map(|_| ())
            }
        }
    }

    fn end(self) -> Result<(), FrameError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(bad_format())
        }
    }
}

/// Checks the body of a message of type `tag`. `sasl_initial` says that a password-family
/// message (`p`) is a SASLInitialResponse (the first one of a SCRAM exchange); other `p`
/// messages carry opaque data.
pub(crate) fn check_body(tag: u8, body: &[u8], sasl_initial: bool) -> Result<(), FrameError> {
    let mut b = Body { rest: body };
    match tag {
        // Query: the text.
        b'Q' => {
            b.string()?;
        }
        // Parse: name, text, parameter type OIDs.
        b'P' => {
            b.string()?;
            b.string()?;
            let types = b.count()?;
            b.take(types * 4)?;
        }
        // Bind: portal, statement, parameter formats, parameters, result formats.
        b'B' => {
            b.string()?;
            b.string()?;
            let formats = b.count()?;
            b.take(formats * 2)?;
            for _ in 0..b.count()? {
                b.value()?;
            }
            let results = b.count()?;
            b.take(results * 2)?;
        }
        // Close and Describe: a kind byte and a name.
        b'C' | b'D' => {
            b.take(1)?;
            b.string()?;
        }
        // Execute: portal and row limit.
        b'E' => {
            b.string()?;
            b.i32()?;
        }
        // CopyFail: a message.
        b'f' => {
            b.string()?;
        }
        // SASLInitialResponse: mechanism, then length-prefixed data.
        b'p' if sasl_initial => {
            b.string()?;
            b.value()?;
        }
        // Flush, Sync, Terminate, CopyDone: nothing.
        b'H' | b'S' | b'X' | b'c' => {}
        // CopyData and SASLResponse carry opaque bytes; pgwire refuses unknown types itself.
        _ => return Ok(()),
    }
    b.end()
}

/// Checks the parameters of a startup packet (after the length and version): pairs of a
/// non-empty name and a value, then a final NUL.
pub(crate) fn check_startup_parameters(params: &[u8]) -> Result<(), FrameError> {
    let mut b = Body { rest: params };
    loop {
        match b.rest {
            [0] => return Ok(()),
            [] => {
                return Err(violation(
                    "08P01",
                    "invalid startup packet layout: expected terminator as last byte",
                ));
            }
            _ => {
                if b.string()?.is_empty() {
                    return Err(bad_format());
                }
                b.string()?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(tag: u8, body: &[u8]) {
        check_body(tag, body, false).unwrap_or_else(|e| panic!("{}: {e}", tag as char));
    }

    fn bad(tag: u8, body: &[u8], code: &str) {
        let err = check_body(tag, body, false).expect_err(&format!("{} accepted", tag as char));
        assert_eq!(err.code, code, "{}: {err}", tag as char);
    }

    #[test]
    fn well_formed_messages_pass() {
        ok(b'Q', b"select 1\0");
        ok(b'P', b"s1\0select 1\0\0\0");
        ok(b'P', b"\0select $1\0\0\x01\0\0\0\x17");
        ok(
            b'B',
            b"\0s1\0\0\x01\0\x01\0\x02\0\0\0\x02hi\xff\xff\xff\xff\0\x01\0\x01",
        );
        ok(b'D', b"Sname\0");
        ok(b'C', b"P\0");
        ok(b'E', b"\0\0\0\0\0");
        ok(b'S', b"");
        ok(b'd', b"any bytes \xff\0");
        check_body(b'p', b"SCRAM-SHA-256\0\0\0\0\x03abc", true).unwrap();
        check_body(b'p', b"SCRAM-SHA-256\0\xff\xff\xff\xff", true).unwrap();
        check_body(b'p', b"c=biws,r=...", false).unwrap();
    }

    #[test]
    fn malformed_messages_fail() {
        let cases: &[(u8, &[u8])] = &[
            (b'Q', b"select 1"),                           // no terminator
            (b'Q', b"select 1\0extra"),                    // bytes after the text
            (b'P', b"s1\0select 1\0"),                     // no type count
            (b'P', b"s1\0select 1\0\0\x02\0\0\0\x17"),     // fewer types than counted
            (b'P', b"s1\0select 1\0\xff\xff"),             // negative count
            (b'B', b"\0\0\0\0\0\x01\0\0\0\x09hi\0\0"),     // value shorter than its length
            (b'B', b"\0\0\0\0\0\x01\xff\xff\xff\xfe\0\0"), // length -2
            (b'D', b""),
            (b'D', b"S"),
            (b'C', b"Sname\0\0"),
            (b'E', b"\0\0\0"),
            (b'S', b"x"),
            (b'X', b"\0"),
        ];
        for (tag, body) in cases {
            bad(*tag, body, "08P01");
        }
        let err = check_body(b'p', b"SCRAM-SHA-256\0\0\0\0\x09abc", true).unwrap_err();
        assert_eq!(err.code, "08P01");
        bad(b'Q', b"select \xff\0", "22021");
        bad(b'E', b"p\xc3\0\0\0\0\0", "22021");
    }

    #[test]
    fn startup_parameters_need_pairs_and_a_terminator() {
        check_startup_parameters(b"user\0bob\0database\0\0\0").unwrap();
        check_startup_parameters(b"\0").unwrap();
        for bad in [&b""[..], b"user\0bob\0", b"user\0bob", b"user\0", b"\0\0"] {
            assert!(check_startup_parameters(bad).is_err(), "{bad:?}");
        }
        let err = check_startup_parameters(b"user\0b\xffb\0\0").unwrap_err();
        assert_eq!(err.code, "22021");
    }
}
