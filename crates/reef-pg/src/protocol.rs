//! Framing and decoding of frontend messages.
//!
//! pgwire's message decoders trust the lengths inside a message and panic on truncated bodies,
//! and its `Framed` codec has no configurable size limit, so frontend messages are framed and
//! decoded here with every read bounds-checked. A message whose frame is intact but whose body
//! is malformed becomes [`Frontend::Invalid`], an ordinary error that leaves the connection
//! usable; a broken frame (bad length, unknown type) is fatal. Backend messages are encoded with
//! pgwire's message types (see `conn.rs`).

use bytes::{Buf, Bytes};
use reef_sql::{sqlstate, SqlError};

use crate::codec::utf8;
use crate::error::PgError;

/// The longest startup packet accepted, as in PostgreSQL.
pub(crate) const MAX_STARTUP_PACKET: usize = 10_000;

const SSL_REQUEST_CODE: u32 = 80_877_103;
const GSSENC_REQUEST_CODE: u32 = 80_877_104;
const CANCEL_REQUEST_CODE: u32 = 80_877_102;

/// The first packet of a connection.
#[derive(Debug, PartialEq)]
pub(crate) enum StartupPacket {
    /// SSLRequest.
    Ssl,
    /// GSSENCRequest.
    GssEnc,
    /// CancelRequest for a backend.
    Cancel {
        /// The backend's process ID.
        pid: i32,
        /// The backend's secret key.
        key: Bytes,
    },
    /// StartupMessage.
    Startup {
        /// Major protocol version.
        major: u16,
        /// Minor protocol version.
        minor: u16,
        /// Name-value pairs (user, database, options, ...).
        params: Vec<(String, String)>,
    },
}

/// A decoded frontend message after startup.
#[derive(Debug, PartialEq)]
pub(crate) enum Frontend {
    /// Simple query.
    Query(String),
    /// Parse: statement name, SQL, declared parameter type OIDs.
    Parse {
        name: String,
        sql: String,
        param_oids: Vec<u32>,
    },
    /// Bind: portal, statement, parameter formats, values and result formats.
    Bind {
        portal: String,
        statement: String,
        param_formats: Vec<i16>,
        params: Vec<Option<Bytes>>,
        result_formats: Vec<i16>,
    },
    /// Describe a statement (`b'S'`) or portal (`b'P'`).
    Describe { kind: u8, name: String },
    /// Execute a portal, returning at most `max_rows` rows (0 = all).
    Execute { portal: String, max_rows: i32 },
    /// Close a statement (`b'S'`) or portal (`b'P'`).
    Close { kind: u8, name: String },
    /// Sync.
    Sync,
    /// Flush.
    Flush,
    /// Terminate.
    Terminate,
    /// A password-family message (SASLInitialResponse, SASLResponse): its raw body.
    Password(Bytes),
    /// CopyData: rows of a COPY FROM STDIN.
    CopyData(Bytes),
    /// CopyDone: the end of a COPY FROM STDIN's rows.
    CopyDone,
    /// CopyFail: the client abandons a COPY FROM STDIN, with its reason.
    CopyFail(String),
    /// A well-framed message that could not be decoded or is not supported. `extended` tells
    /// whether it belongs to the extended-query protocol (then messages are skipped until Sync).
    Invalid { extended: bool, error: SqlError },
}

/// True for message type bytes that this server accepts after startup.
pub(crate) fn known_message_type(ty: u8) -> bool {
    matches!(
        ty,
        b'Q' | b'P'
            | b'B'
            | b'D'
            | b'E'
            | b'C'
            | b'S'
            | b'H'
            | b'X'
            | b'd'
            | b'c'
            | b'f'
            | b'F'
            | b'p'
    )
}

/// A bounds-checked cursor over a message body.
struct Body {
    buf: Bytes,
}

fn short() -> SqlError {
    SqlError::new(
        sqlstate::PROTOCOL_VIOLATION,
        "insufficient data left in message",
    )
}

impl Body {
    fn u8(&mut self) -> Result<u8, SqlError> {
        if self.buf.remaining() < 1 {
            return Err(short());
        }
        Ok(self.buf.get_u8())
    }

    fn i16(&mut self) -> Result<i16, SqlError> {
        if self.buf.remaining() < 2 {
            return Err(short());
        }
        Ok(self.buf.get_i16())
    }

    fn i32(&mut self) -> Result<i32, SqlError> {
        if self.buf.remaining() < 4 {
            return Err(short());
        }
        Ok(self.buf.get_i32())
    }

    /// A count (of formats, parameters, ...) that must not be negative.
    fn count(&mut self) -> Result<usize, SqlError> {
        let n = self.i16()?;
        usize::try_from(n).map_err(|_| {
            SqlError::new(
                sqlstate::PROTOCOL_VIOLATION,
                format!("invalid count {n} in message"),
            )
        })
    }

    fn bytes(&mut self, n: usize) -> Result<Bytes, SqlError> {
        if self.buf.remaining() < n {
            return Err(short());
        }
        Ok(self.buf.split_to(n))
    }

    /// A NUL-terminated UTF-8 string.
    fn cstr(&mut self) -> Result<String, SqlError> {
        let end = self.buf.iter().position(|b| *b == 0).ok_or_else(|| {
            SqlError::new(sqlstate::PROTOCOL_VIOLATION, "invalid string in message")
        })?;
        let s = utf8(&self.buf[..end])?.to_owned();
        self.buf.advance(end + 1);
        Ok(s)
    }

    fn end(&self) -> Result<(), SqlError> {
        if self.buf.has_remaining() {
            return Err(SqlError::new(
                sqlstate::PROTOCOL_VIOLATION,
                "invalid message format",
            ));
        }
        Ok(())
    }
}

/// Decodes the body of a startup-phase packet (the bytes after its length word).
pub(crate) fn decode_startup(body: Bytes) -> Result<StartupPacket, PgError> {
    let mut b = Body { buf: body };
    let code = b
        .i32()
        .map_err(|_| PgError::protocol("invalid length of startup packet"))? as u32;
    match code {
        SSL_REQUEST_CODE => Ok(StartupPacket::Ssl),
        GSSENC_REQUEST_CODE => Ok(StartupPacket::GssEnc),
        CANCEL_REQUEST_CODE => {
            let pid = b
                .i32()
                .map_err(|_| PgError::protocol("invalid cancel request"))?;
            let key = b.buf.split_off(0);
            Ok(StartupPacket::Cancel { pid, key })
        }
        _ => {
            let (major, minor) = ((code >> 16) as u16, (code & 0xffff) as u16);
            let mut params = Vec::new();
            if major == 3 {
                let bad = |e: SqlError| {
                    PgError::protocol(format!("invalid startup packet layout: {}", e.message))
                };
                loop {
                    let name = b.cstr().map_err(bad)?;
                    if name.is_empty() {
                        break;
                    }
                    let value = b.cstr().map_err(bad)?;
                    params.push((name, value));
                }
                b.end().map_err(bad)?;
            }
            Ok(StartupPacket::Startup {
                major,
                minor,
                params,
            })
        }
    }
}

/// Decodes the body of a regular frontend message of type `ty`.
pub(crate) fn decode_message(ty: u8, body: Bytes) -> Frontend {
    let extended = matches!(ty, b'P' | b'B' | b'D' | b'E' | b'C' | b'S' | b'H');
    match decode_checked(ty, Body { buf: body }) {
        Ok(msg) => msg,
        Err(error) => Frontend::Invalid { extended, error },
    }
}

fn decode_checked(ty: u8, mut b: Body) -> Result<Frontend, SqlError> {
    let msg = match ty {
        b'Q' => Frontend::Query(b.cstr()?),
        b'P' => {
            let name = b.cstr()?;
            let sql = b.cstr()?;
            let n = b.count()?;
            let mut param_oids = Vec::with_capacity(n.min(b.buf.remaining() / 4));
            for _ in 0..n {
                param_oids.push(b.i32()? as u32);
            }
            Frontend::Parse {
                name,
                sql,
                param_oids,
            }
        }
        b'B' => {
            let portal = b.cstr()?;
            let statement = b.cstr()?;
            let n = b.count()?;
            let mut param_formats = Vec::with_capacity(n.min(b.buf.remaining() / 2));
            for _ in 0..n {
                param_formats.push(b.i16()?);
            }
            let n = b.count()?;
            let mut params = Vec::with_capacity(n.min(b.buf.remaining() / 4));
            for _ in 0..n {
                let len = b.i32()?;
                params.push(match len {
                    -1 => None,
                    len if len >= 0 => Some(b.bytes(len as usize)?),
                    _ => {
                        return Err(SqlError::new(
                            sqlstate::PROTOCOL_VIOLATION,
                            format!("invalid parameter length {len}"),
                        ))
                    }
                });
            }
            let n = b.count()?;
            let mut result_formats = Vec::with_capacity(n.min(b.buf.remaining() / 2));
            for _ in 0..n {
                result_formats.push(b.i16()?);
            }
            Frontend::Bind {
                portal,
                statement,
                param_formats,
                params,
                result_formats,
            }
        }
        b'D' | b'C' => {
            let kind = b.u8()?;
            if kind != b'S' && kind != b'P' {
                return Err(SqlError::new(
                    sqlstate::PROTOCOL_VIOLATION,
                    format!(
                        "invalid {} message subtype {kind}",
                        if ty == b'D' { "DESCRIBE" } else { "CLOSE" }
                    ),
                ));
            }
            let name = b.cstr()?;
            if ty == b'D' {
                Frontend::Describe { kind, name }
            } else {
                Frontend::Close { kind, name }
            }
        }
        b'E' => {
            let portal = b.cstr()?;
            let max_rows = b.i32()?;
            Frontend::Execute { portal, max_rows }
        }
        b'S' => Frontend::Sync,
        b'H' => Frontend::Flush,
        b'X' => Frontend::Terminate,
        b'd' => return Ok(Frontend::CopyData(b.buf.split_off(0))),
        b'p' => return Ok(Frontend::Password(b.buf.split_off(0))),
        // Read leniently: outside COPY these are dropped whatever their body.
        b'c' => return Ok(Frontend::CopyDone),
        b'f' => {
            let raw = b.buf.split_off(0);
            let text = raw.strip_suffix(b"\0").unwrap_or(&raw);
            return Ok(Frontend::CopyFail(
                String::from_utf8_lossy(text).into_owned(),
            ));
        }
        b'F' => {
            return Err(SqlError::unsupported(
                "the function call protocol is not supported",
            ))
        }
        _ => {
            return Err(SqlError::new(
                sqlstate::PROTOCOL_VIOLATION,
                format!("invalid frontend message type {ty}"),
            ))
        }
    };
    b.end()?;
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[&[u8]]) -> Bytes {
        Bytes::from(parts.concat())
    }

    #[test]
    fn decodes_bind_with_null_and_formats() {
        let msg = decode_message(
            b'B',
            body(&[
                b"p\0s\0",
                &1i16.to_be_bytes(),
                &1i16.to_be_bytes(),
                &2i16.to_be_bytes(),
                &(-1i32).to_be_bytes(),
                &2i32.to_be_bytes(),
                b"hi",
                &0i16.to_be_bytes(),
            ]),
        );
        assert_eq!(
            msg,
            Frontend::Bind {
                portal: "p".into(),
                statement: "s".into(),
                param_formats: vec![1],
                params: vec![None, Some(Bytes::from_static(b"hi"))],
                result_formats: vec![],
            }
        );
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        let cases: &[(u8, &[u8])] = &[
            (b'Q', b"no terminator"),
            (b'P', b"s\0select\0"),
            (b'P', b"s\0select\0\x00\x02\x00\x00\x00\x17"),
            (b'B', b"\0\0\x00\x01"),
            (b'B', b"\0\0\x00\x00\x00\x01\x7f\xff\xff\xff"),
            (b'B', b"\0\0\x00\x00\x00\x01\xff\xff\xff\xfe"),
            (b'B', b"\0\0\xff\xff"),
            (b'D', b""),
            (b'D', b"X\0"),
            (b'E', b"\0\x00\x01"),
            (b'S', b"extra"),
            (b'Q', b"\xff\xfe\0"),
            (b'F', b""),
        ];
        for (ty, bytes) in cases {
            match decode_message(*ty, Bytes::from_static(bytes)) {
                Frontend::Invalid { .. } => {}
                other => panic!("{} {bytes:?} decoded as {other:?}", *ty as char),
            }
        }
    }

    #[test]
    fn decodes_startup_packets() {
        let ssl = body(&[&SSL_REQUEST_CODE.to_be_bytes()]);
        assert_eq!(decode_startup(ssl).unwrap(), StartupPacket::Ssl);
        let startup = body(&[
            &0x0003_0000u32.to_be_bytes(),
            b"user\0bob\0database\0db\0\0",
        ]);
        assert_eq!(
            decode_startup(startup).unwrap(),
            StartupPacket::Startup {
                major: 3,
                minor: 0,
                params: vec![
                    ("user".into(), "bob".into()),
                    ("database".into(), "db".into())
                ],
            }
        );
        let truncated = body(&[&0x0003_0000u32.to_be_bytes(), b"user\0bob"]);
        assert!(decode_startup(truncated).unwrap_err().is_fatal());
        assert!(decode_startup(Bytes::from_static(b"ab")).is_err());
    }
}
