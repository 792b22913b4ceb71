//! One client connection: startup, the simple and extended query protocols, and teardown.
//!
//! A connection is a single tokio task. It reads one frontend message at a time, runs the SQL
//! session's (blocking) calls on tokio's blocking pool, and buffers backend messages, writing
//! them out at ReadyForQuery, at Flush, and whenever the buffer grows past a threshold. The
//! session lives behind a `std::sync::Mutex` in an `Arc` so that blocking closures can own a
//! handle to it; only this task ever uses it, so the lock is never contended.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, BytesMut};
use pgwire::messages::copy::{CopyDone, CopyInResponse, CopyOutResponse};
use pgwire::messages::data::{
    DataRow, FieldDescription, NoData, ParameterDescription, RowDescription,
};
use pgwire::messages::extendedquery::{
    BindComplete, CloseComplete, ParseComplete, PortalSuspended,
};
use pgwire::messages::response::{
    CommandComplete, EmptyQueryResponse, ErrorResponse, ReadyForQuery, SslResponse,
    TransactionStatus,
};
use pgwire::messages::startup::{
    Authentication, BackendKeyData, NegotiateProtocolVersion, ParameterStatus, SecretKey,
};
use pgwire::messages::Message;
use reef_sql::copy::CopyTransfer;
use reef_sql::{sqlstate, Column, DataType, ExecResult, SqlError, TxnStatus, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{timeout_at, Instant};

use crate::auth;
use crate::backend::{SqlDatabase, SqlSession};
use crate::codec::{decode_param, RowEncoder, FORMAT_BINARY, FORMAT_TEXT};
use crate::error::PgError;
use crate::protocol::{
    decode_message, decode_startup, known_message_type, Frontend, StartupPacket, MAX_STARTUP_PACKET,
};
use crate::PgConfig;
use reef_sql::role::Verifier;

/// Pending output beyond this size is written out even before ReadyForQuery.
const FLUSH_THRESHOLD: usize = 64 * 1024;
/// The read buffer grows by at most this much at a time, so that a client announcing a huge
/// message cannot make the server allocate memory it never sends.
const READ_CHUNK: usize = 1024 * 1024;
/// Protocol 3.0, the version this server speaks.
const PROTOCOL_3_0: i32 = 196_608;
/// The text type's OID, reported for parameters whose type nothing constrains.
const TEXT_OID: u32 = 25;
/// SQLSTATE: too many connections.
const TOO_MANY_CONNECTIONS: &str = "53300";
/// SQLSTATE: a portal with that name already exists.
const DUPLICATE_CURSOR: &str = "42P03";
/// COPY FROM STDIN data is handed to the session in batches of about this many bytes.
const COPY_BATCH_BYTES: usize = 1 << 20;

/// State shared by all connections of one server.
pub(crate) struct Shared<D> {
    /// The database sessions are opened on.
    pub db: D,
    /// The server's configuration.
    pub config: PgConfig,
    /// The next backend process ID handed out in BackendKeyData.
    pub next_pid: AtomicI32,
    /// Connections that hold a session.
    pub active: Arc<AtomicUsize>,
    /// Sessions by backend process ID: their secret key and cancel flag, for CancelRequest.
    pub backends: Arc<Mutex<HashMap<i32, (i32, Arc<AtomicBool>)>>>,
    /// The sockets of connections served on threads of their own, by backend process ID: at
    /// shutdown their reading side is shut, which wakes a thread waiting for the client.
    pub threads: Arc<Mutex<HashMap<i32, std::net::TcpStream>>>,
    /// Those threads, joined when the server goes (see the `Drop` impl).
    pub handles: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl<D> Drop for Shared<D> {
    /// Waits for the connections' threads, after shutting their sockets so that none waits
    /// for its client: a session outliving the server could still be rolling back when the
    /// process exits.
    fn drop(&mut self) {
        self.shut_threads(std::net::Shutdown::Both);
        let handles = match self.handles.get_mut() {
            Ok(handles) => std::mem::take(handles),
            Err(_) => return,
        };
        for handle in handles {
            let _ = handle.join();
        }
    }
}

/// Unlists the socket of the connection with backend process ID `pid` (None: never listed).
fn unlist(threads: &Mutex<HashMap<i32, std::net::TcpStream>>, pid: Option<i32>) {
    if let (Some(pid), Ok(mut threads)) = (pid, threads.lock()) {
        threads.remove(&pid);
    }
}

impl<D> Shared<D> {
    /// Shuts `how` of every socket served on a thread of its own.
    pub fn shut_threads(&self, how: std::net::Shutdown) {
        if let Ok(threads) = self.threads.lock() {
            for socket in threads.values() {
                let _ = socket.shutdown(how);
            }
        }
    }
}

/// Removes a session from the cancel registry when its connection ends.
struct Registered {
    backends: Arc<Mutex<HashMap<i32, (i32, Arc<AtomicBool>)>>>,
    pid: i32,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut b) = self.backends.lock() {
            b.remove(&self.pid);
        }
    }
}

/// Releases a connection slot when dropped.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A prepared statement of the extended protocol.
struct Statement<P> {
    /// The engine's handle; None for an empty query string.
    handle: Option<P>,
    param_types: Vec<DataType>,
    columns: Option<Vec<Column>>,
}

/// How far a portal has run.
enum PortalState {
    /// Not executed yet.
    Ready,
    /// Executed; rows remain to be sent by later Execute messages.
    Suspended {
        columns: Vec<Column>,
        rows: std::vec::IntoIter<Vec<Value>>,
        tag: String,
    },
    /// Ran to completion with this command tag.
    Done { tag: String },
    /// Execution failed; the portal cannot run again.
    Failed,
}

/// A bound statement of the extended protocol.
struct Portal<P> {
    stmt: Arc<Statement<P>>,
    params: Vec<Value>,
    result_formats: Vec<i16>,
    state: PortalState,
}

/// Serves one accepted connection until the client leaves, a fatal error occurs, or the server
/// shuts down. Never panics on client input; errors end only this connection.
pub(crate) async fn run<D: SqlDatabase>(
    shared: Arc<Shared<D>>,
    stream: TcpStream,
    mut stop: watch::Receiver<bool>,
) {
    let peer = stream.peer_addr().ok();
    let _ = stream.set_nodelay(true);
    // A second handle on the socket, for serving the connection on a thread of its own once
    // the startup is done (see `Conn::hand_off`).
    let spare = stream
        .into_std()
        .and_then(|s| Ok((s.try_clone()?, s)))
        .and_then(|(spare, s)| Ok((spare, TcpStream::from_std(s)?)));
    let (spare, stream) = match spare {
        Ok((spare, stream)) => (Some(spare), stream),
        Err(e) => {
            tracing::warn!(?peer, error = %e, "cannot take the connection's socket");
            return;
        }
    };
    let mut conn: Conn<D::Session> = Conn {
        stream: Box::new(stream),
        spare,
        inline: false,
        loopback: peer.is_some_and(|p| p.ip().is_loopback()),
        rbuf: BytesMut::with_capacity(8192),
        wbuf: BytesMut::with_capacity(8192),
        max_message: shared.config.max_message_bytes,
        session: None,
        slot: None,
        statements: HashMap::new(),
        portals: HashMap::new(),
        skip_until_sync: false,
        settings_dirty: false,
        reported: Vec::new(),
        row_buf: BytesMut::new(),
        encoder: RowEncoder::default(),
        registered: None,
        status: TxnStatus::Idle,
    };
    let result = match conn.startup(&shared).await {
        Ok(true) => match conn.spare.take() {
            Some(socket) => return conn.hand_off(&shared, socket, stop, peer).await,
            None => conn.serve(&mut stop).await,
        },
        Ok(false) => Ok(()),
        Err(e) => Err(e),
    };
    conn.finish(result, peer).await;
}

/// A TCP socket in blocking mode, for a connection served on a thread of its own: reads and
/// writes block that thread, so they are always ready to the executor driving it.
struct BlockingTcp(std::net::TcpStream);

impl AsyncRead for BlockingTcp {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::io::Read;
        let read = loop {
            match (&self.0).read(buf.initialize_unfilled()) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        std::task::Poll::Ready(read.map(|n| buf.advance(n)))
    }
}

impl AsyncWrite for BlockingTcp {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::io::Write;
        std::task::Poll::Ready((&self.0).write(buf))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(self.0.shutdown(std::net::Shutdown::Write))
    }
}

/// A connection's byte stream: plain TCP, or TLS over it.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}

struct Conn<S: SqlSession> {
    stream: Box<dyn Io>,
    /// A second handle on a plain TCP socket, until the connection is handed to a thread of
    /// its own or turns to TLS.
    spare: Option<std::net::TcpStream>,
    /// Set on a connection served on a thread of its own: session calls run on that thread.
    inline: bool,
    /// Whether the client connected from a loopback address.
    loopback: bool,
    rbuf: BytesMut,
    wbuf: BytesMut,
    max_message: usize,
    session: Option<Arc<Mutex<S>>>,
    slot: Option<Slot>,
    statements: HashMap<String, Arc<Statement<S::Statement>>>,
    portals: HashMap<String, Portal<S::Statement>>,
    /// Set after an error in an extended-protocol message: everything up to Sync is ignored.
    skip_until_sync: bool,
    /// Set when a statement may have changed a setting reported in ParameterStatus.
    settings_dirty: bool,
    /// The settings last reported to the client.
    reported: Vec<(String, String)>,
    row_buf: BytesMut,
    encoder: RowEncoder,
    /// The session's entry in the cancel registry.
    registered: Option<Registered>,
    /// The session's transaction status after the last call on it, for ReadyForQuery.
    status: TxnStatus,
}

/// The settings in a startup packet's `options` (`-c name=value`, `--name=value`, separated by
/// spaces; a backslash escapes the next character).
fn parse_options(options: &str) -> Result<Vec<(String, String)>, PgError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = options.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => word.extend(chars.next()),
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let mut out = Vec::new();
    let mut words = words.into_iter();
    while let Some(w) = words.next() {
        let setting = if w == "-c" {
            words.next()
        } else if let Some(rest) = w.strip_prefix("-c") {
            Some(rest.to_owned())
        } else {
            w.strip_prefix("--").map(str::to_owned)
        };
        let bad = || {
            PgError::Rejected(SqlError::new(
                sqlstate::INVALID_PARAMETER_VALUE,
                format!("invalid command-line argument for server process: {w}"),
            ))
        };
        let setting = setting.ok_or_else(bad)?;
        let (name, value) = setting.split_once('=').ok_or_else(bad)?;
        out.push((name.replace('-', "_"), value.to_owned()));
    }
    Ok(out)
}

/// A frontend message's name, for errors.
fn frontend_name(msg: &Frontend) -> &'static str {
    match msg {
        Frontend::Query(_) => "Query",
        Frontend::Parse { .. } => "Parse",
        Frontend::Bind { .. } => "Bind",
        Frontend::Describe { .. } => "Describe",
        Frontend::Execute { .. } => "Execute",
        Frontend::Close { .. } => "Close",
        Frontend::Sync => "Sync",
        Frontend::Flush => "Flush",
        Frontend::Terminate => "Terminate",
        Frontend::CopyData(_) => "CopyData",
        Frontend::Password(_) => "a password message",
        Frontend::CopyDone => "CopyDone",
        Frontend::CopyFail(_) => "CopyFail",
        Frontend::Invalid { .. } => "an invalid message",
    }
}

fn txn_indicator(status: TxnStatus) -> TransactionStatus {
    match status {
        TxnStatus::Idle => TransactionStatus::Idle,
        TxnStatus::InBlock => TransactionStatus::Transaction,
        TxnStatus::Failed => TransactionStatus::Error,
    }
}

/// True if a command with this tag may change settings reported by ParameterStatus.
fn may_change_settings(tag: &str) -> bool {
    matches!(
        tag.split(' ').next(),
        Some("SET" | "RESET" | "DISCARD" | "ROLLBACK" | "COMMIT")
    )
}

/// The result format of column `i` from Bind's format codes.
fn format_for(formats: &[i16], i: usize) -> i16 {
    match formats {
        [] => FORMAT_TEXT,
        [one] => *one,
        many => many.get(i).copied().unwrap_or(FORMAT_TEXT),
    }
}

fn row_description(columns: &[Column], formats: &[i16]) -> RowDescription {
    let fields = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            FieldDescription::new(
                c.name.clone(),
                0,
                0,
                c.data_type.oid(),
                c.data_type.type_len(),
                c.data_type.type_modifier(),
                format_for(formats, i),
            )
        })
        .collect();
    RowDescription::new(fields)
}

fn param_oid(ty: &DataType) -> u32 {
    match ty {
        DataType::Unknown => TEXT_OID,
        other => other.oid(),
    }
}

fn statement_missing(name: &str) -> SqlError {
    let what = if name.is_empty() {
        "unnamed prepared statement".to_owned()
    } else {
        format!("prepared statement \"{name}\"")
    };
    SqlError::new(
        sqlstate::UNDEFINED_PREPARED_STATEMENT,
        format!("{what} does not exist"),
    )
}

fn portal_missing(name: &str) -> SqlError {
    let what = if name.is_empty() {
        "unnamed portal".to_owned()
    } else {
        format!("portal \"{name}\"")
    };
    SqlError::new(
        sqlstate::INVALID_CURSOR_NAME,
        format!("{what} does not exist"),
    )
}

fn protocol_error(message: String) -> SqlError {
    SqlError::new(sqlstate::PROTOCOL_VIOLATION, message)
}

fn check_format(code: i16) -> Result<(), SqlError> {
    if code == FORMAT_TEXT || code == FORMAT_BINARY {
        Ok(())
    } else {
        Err(SqlError::new(
            sqlstate::INVALID_PARAMETER_VALUE,
            format!("unsupported format code: {code}"),
        ))
    }
}

impl<S: SqlSession> Conn<S> {
    // ----- I/O -----

    /// Encodes a backend message into the output buffer.
    fn put<M: Message>(&mut self, msg: &M) -> Result<(), PgError> {
        let start = self.wbuf.len();
        msg.encode(&mut self.wbuf).map_err(|e| {
            // Drop a partially written message so the stream stays well-formed.
            self.wbuf.truncate(start);
            PgError::from(e)
        })
    }

    async fn flush(&mut self) -> Result<(), PgError> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    async fn maybe_flush(&mut self) -> Result<(), PgError> {
        if self.wbuf.len() >= FLUSH_THRESHOLD {
            self.flush().await?;
        }
        Ok(())
    }

    /// Reads until the buffer holds `n` bytes. Returns false on EOF before any byte of the
    /// awaited unit arrived (`at_boundary`), and an error on EOF in the middle of one.
    async fn fill(&mut self, n: usize) -> Result<bool, PgError> {
        while self.rbuf.len() < n {
            let want = (n - self.rbuf.len()).clamp(8192, READ_CHUNK);
            self.rbuf.reserve(want);
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                if self.rbuf.is_empty() {
                    return Ok(false);
                }
                return Err(PgError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
        Ok(true)
    }

    /// Reads one startup-phase packet; None on EOF.
    async fn read_startup(&mut self) -> Result<Option<StartupPacket>, PgError> {
        if !self.fill(4).await? {
            return Ok(None);
        }
        let len =
            u32::from_be_bytes([self.rbuf[0], self.rbuf[1], self.rbuf[2], self.rbuf[3]]) as usize;
        if !(8..=MAX_STARTUP_PACKET).contains(&len) {
            return Err(PgError::protocol("invalid length of startup packet"));
        }
        self.fill(len).await?;
        let mut packet = self.rbuf.split_to(len);
        packet.advance(4);
        decode_startup(packet.freeze()).map(Some)
    }

    /// Reads one regular message; None on EOF at a message boundary.
    async fn read_message(&mut self) -> Result<Option<Frontend>, PgError> {
        if !self.fill(5).await? {
            return Ok(None);
        }
        let ty = self.rbuf[0];
        if !known_message_type(ty) {
            return Err(PgError::protocol(format!(
                "invalid frontend message type {ty}"
            )));
        }
        let len = i32::from_be_bytes([self.rbuf[1], self.rbuf[2], self.rbuf[3], self.rbuf[4]]);
        if len < 4 {
            return Err(PgError::protocol(format!("invalid message length {len}")));
        }
        let body_len = len as usize - 4;
        if body_len > self.max_message {
            return Err(PgError::MessageTooLarge {
                len: body_len,
                limit: self.max_message,
            });
        }
        self.fill(5 + body_len).await?;
        let mut frame = self.rbuf.split_to(5 + body_len);
        frame.advance(5);
        Ok(Some(decode_message(ty, frame.freeze())))
    }

    /// Runs `f` on the session (in tokio's blocking pool, or on the connection's own thread),
    /// and notes the session's transaction status afterwards.
    async fn blocking<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut S) -> R + Send + 'static,
    ) -> Result<R, PgError> {
        let session = self
            .session
            .clone()
            .ok_or_else(|| PgError::Internal("no session".into()))?;
        let call = move || {
            let mut guard = session
                .lock()
                .map_err(|_| PgError::Internal("session state is poisoned".into()))?;
            let result = f(&mut guard);
            Ok::<_, PgError>((result, guard.txn_status()))
        };
        let (result, status) = if self.inline {
            call()?
        } else {
            tokio::task::spawn_blocking(call)
                .await
                .map_err(|e| PgError::Internal(format!("the SQL engine failed: {e}")))??
        };
        self.status = status;
        Ok(result)
    }

    fn put_error(&mut self, severity: &str, e: &SqlError) -> Result<(), PgError> {
        let mut fields = vec![
            (b'S', severity.to_owned()),
            (b'V', severity.to_owned()),
            (b'C', e.code.to_owned()),
            (b'M', e.message.clone()),
        ];
        if let Some(d) = &e.detail {
            fields.push((b'D', d.clone()));
        }
        if let Some(h) = &e.hint {
            fields.push((b'H', h.clone()));
        }
        if let Some(o) = &e.object {
            for (tag, value) in [
                (b's', &o.schema),
                (b't', &o.table),
                (b'c', &o.column),
                (b'n', &o.constraint),
            ] {
                if let Some(v) = value {
                    fields.push((tag, v.clone()));
                }
            }
        }
        self.put(&ErrorResponse::new(fields))
    }

    /// Best effort: reports a fatal error to the client before the connection closes.
    async fn send_fatal(&mut self, e: &PgError) {
        let err = match e {
            PgError::Io(_) => return,
            PgError::Sql(e) | PgError::Rejected(e) => e.clone(),
            other => SqlError::new(other.sqlstate(), other.to_string()),
        };
        if self.put_error("FATAL", &err).is_ok() {
            let _ = self.flush().await;
        }
    }

    /// Drops the session (dropping rolls back its transaction, which may block on storage, so
    /// in the blocking pool unless the connection has a thread of its own) and closes the
    /// socket.
    async fn close(&mut self) {
        self.statements.clear();
        self.portals.clear();
        if let Some(session) = self.session.take() {
            if self.inline {
                drop(session);
            } else {
                let _ = tokio::task::spawn_blocking(move || drop(session)).await;
            }
        }
        self.slot = None;
        let _ = self.stream.shutdown().await;
    }

    /// Ends the connection after its message loop (or startup) ended with `result`.
    async fn finish(&mut self, result: Result<(), PgError>, peer: Option<std::net::SocketAddr>) {
        match &result {
            Ok(()) => tracing::debug!(?peer, "connection closed"),
            Err(PgError::Io(e)) => tracing::debug!(?peer, error = %e, "connection lost"),
            Err(e) => {
                tracing::info!(?peer, error = %e, "connection terminated");
                self.send_fatal(e).await;
            }
        }
        self.close().await;
    }

    /// Serves the rest of a plain TCP connection on a thread of its own, as PostgreSQL serves
    /// each in a process of its own: the thread reads the client's messages, runs the session
    /// and writes the answers, so a statement costs no switch between threads beyond the
    /// client's own. Returns when the thread ends. TLS connections stay on the runtime.
    async fn hand_off<D: SqlDatabase<Session = S>>(
        mut self,
        shared: &Shared<D>,
        socket: std::net::TcpStream,
        mut stop: watch::Receiver<bool>,
        peer: Option<std::net::SocketAddr>,
    ) {
        // Dropping the runtime's handle deregisters the socket from the runtime; the spare
        // handle keeps it open.
        self.stream = Box::new(tokio::io::join(tokio::io::empty(), tokio::io::sink()));
        let key = self.registered.as_ref().map(|r| r.pid);
        let taken = socket.set_nonblocking(false).and_then(|()| {
            if let (Some(pid), Ok(mut threads)) = (key, shared.threads.lock()) {
                threads.insert(pid, socket.try_clone()?);
            }
            Ok(())
        });
        if let Err(e) = taken {
            tracing::warn!(?peer, error = %e, "cannot serve the connection on a thread");
            return;
        }
        self.stream = Box::new(BlockingTcp(socket));
        self.inline = true;
        let threads = shared.threads.clone();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("reef-session".into())
            .stack_size(reef_common::THREAD_STACK_BYTES)
            .spawn(move || {
                futures::executor::block_on(async {
                    // Stopped before the thread could listen: nothing wakes a blocked read.
                    let result = if *stop.borrow() {
                        Err(PgError::Shutdown)
                    } else {
                        self.serve(&mut stop).await
                    };
                    self.finish(result, peer).await;
                });
                unlist(&threads, key);
                let _ = done_tx.send(());
            });
        match spawned {
            Ok(handle) => {
                if let Ok(mut handles) = shared.handles.lock() {
                    handles.retain(|h| !h.is_finished());
                    handles.push(handle);
                }
                let _ = done_rx.await;
            }
            Err(e) => {
                tracing::warn!(?peer, error = %e, "cannot start a session thread");
                unlist(&shared.threads, key);
            }
        }
    }

    // ----- Startup -----

    /// Runs the startup phase. Returns false if the connection should close quietly (EOF,
    /// CancelRequest, startup timeout).
    async fn startup<D: SqlDatabase<Session = S>>(
        &mut self,
        shared: &Shared<D>,
    ) -> Result<bool, PgError> {
        let deadline = Instant::now() + shared.config.startup_timeout;
        let (mut ssl_done, mut gss_done) = (false, false);
        let (major, minor, params) = loop {
            let packet = match timeout_at(deadline, self.read_startup()).await {
                Err(_) => {
                    tracing::debug!("startup timed out");
                    return Ok(false);
                }
                Ok(packet) => packet?,
            };
            match packet {
                None => return Ok(false),
                Some(StartupPacket::Ssl) if !ssl_done => {
                    ssl_done = true;
                    match &shared.config.tls {
                        Some(tls) => {
                            self.put(&SslResponse::Accept)?;
                            self.flush().await?;
                            if !self.rbuf.is_empty() {
                                return Err(PgError::protocol(
                                    "received unencrypted data after SSL request",
                                ));
                            }
                            // TLS connections are served on the runtime.
                            self.spare = None;
                            let acceptor = tokio_rustls::TlsAcceptor::from(tls.0.clone());
                            let plain = std::mem::replace(
                                &mut self.stream,
                                Box::new(tokio::io::join(tokio::io::empty(), tokio::io::sink())),
                            );
                            let tls_stream =
                                timeout_at(deadline, acceptor.accept(plain))
                                    .await
                                    .map_err(|_| PgError::protocol("TLS handshake timed out"))??;
                            self.stream = Box::new(tls_stream);
                        }
                        None => {
                            // The client continues in plain text or gives up.
                            self.put(&SslResponse::Refuse)?;
                            self.flush().await?;
                        }
                    }
                }
                Some(StartupPacket::GssEnc) if !gss_done => {
                    gss_done = true;
                    self.wbuf.extend_from_slice(b"N");
                    self.flush().await?;
                }
                Some(StartupPacket::Ssl | StartupPacket::GssEnc) => {
                    return Err(PgError::protocol("duplicate encryption request"));
                }
                Some(StartupPacket::Cancel { pid, key }) => {
                    // The running statement of the session with this process ID and secret key
                    // stops with SQLSTATE 57014. A request that matches no session is ignored,
                    // as in PostgreSQL; the requester gets no answer either way.
                    let flag = shared.backends.lock().ok().and_then(|b| {
                        b.get(&pid)
                            .filter(|(secret, _)| key.as_ref() == secret.to_be_bytes())
                            .map(|(_, flag)| flag.clone())
                    });
                    match flag {
                        Some(flag) => {
                            tracing::debug!(pid, "cancel request");
                            flag.store(true, Ordering::Relaxed);
                        }
                        None => tracing::debug!(pid, "cancel request for no session"),
                    }
                    return Ok(false);
                }
                Some(StartupPacket::Startup {
                    major,
                    minor,
                    params,
                }) => break (major, minor, params),
            }
        };
        if major != 3 {
            return Err(PgError::Protocol {
                code: sqlstate::FEATURE_NOT_SUPPORTED,
                message: format!(
                    "unsupported frontend protocol {major}.{minor}: server supports 3.0 to 3.0"
                ),
            });
        }
        let mut user = None;
        let mut database = None;
        let mut unsupported = Vec::new();
        // Settings the client sets at startup: parameters, and `-c name=value` in `options`.
        let mut settings = Vec::new();
        for (name, value) in params {
            match name.as_str() {
                "user" if !value.is_empty() => user = Some(value),
                "database" if !value.is_empty() => database = Some(value),
                "user" | "database" => {}
                "replication" => {
                    return Err(PgError::Rejected(SqlError::unsupported(
                        "replication connections are not supported",
                    )))
                }
                "options" => settings.extend(parse_options(&value)?),
                _ if name.starts_with("_pq_.") => unsupported.push(name),
                _ => settings.push((name, value)),
            }
        }
        if minor > 0 || !unsupported.is_empty() {
            self.put(&NegotiateProtocolVersion::new(PROTOCOL_3_0, unsupported))?;
        }
        let user = user.unwrap_or_else(|| "reef".to_owned());
        let database = database.unwrap_or_else(|| "reef".to_owned());

        let active = shared.active.fetch_add(1, Ordering::AcqRel) + 1;
        let slot = Slot(shared.active.clone());
        if active > shared.config.max_connections {
            return Err(PgError::Rejected(SqlError::new(
                TOO_MANY_CONNECTIONS,
                "sorry, too many clients already",
            )));
        }

        self.authenticate(shared, &user, deadline).await?;
        let db = shared.db.clone();
        let opened = tokio::task::spawn_blocking(move || {
            db.session(&user, &database)
                .and_then(|mut s| {
                    for (name, value) in &settings {
                        let sql = format!(
                            "SET \"{}\" = '{}'",
                            name.replace('"', "\"\""),
                            value.replace('\'', "''")
                        );
                        if let Some(Err(e)) = s.execute_simple(&sql).pop() {
                            return Err(e);
                        }
                    }
                    Ok(s)
                })
                .map(|s| {
                    let params = s.parameter_status();
                    let status = s.txn_status();
                    let cancel = s.cancel_flag();
                    (s, params, status, cancel)
                })
        })
        .await
        .map_err(|e| PgError::Internal(format!("the SQL engine failed: {e}")))?;
        let (session, params, status, cancel) = opened.map_err(PgError::Rejected)?;
        self.session = Some(Arc::new(Mutex::new(session)));
        self.status = status;
        self.slot = Some(slot);

        for (name, value) in &params {
            self.put(&ParameterStatus::new(name.clone(), value.clone()))?;
        }
        self.reported = params;
        let pid = shared.next_pid.fetch_add(1, Ordering::Relaxed) & i32::MAX;
        let secret: i32 = rand::random();
        if let Ok(mut b) = shared.backends.lock() {
            b.insert(pid, (secret, cancel));
        }
        self.registered = Some(Registered {
            backends: shared.backends.clone(),
            pid,
        });
        self.put(&BackendKeyData::new(pid, SecretKey::I32(secret)))?;
        self.put(&ReadyForQuery::new(txn_indicator(status)))?;
        self.flush().await?;
        Ok(true)
    }

    /// Authenticates the startup's user (see `auth`) and sends AuthenticationOk; a refusal is
    /// a fatal 28000 or 28P01 error.
    async fn authenticate<D: SqlDatabase<Session = S>>(
        &mut self,
        shared: &Shared<D>,
        user: &str,
        deadline: Instant,
    ) -> Result<(), PgError> {
        let db = shared.db.clone();
        let name = user.to_owned();
        let role = tokio::task::spawn_blocking(move || db.role(&name))
            .await
            .map_err(|e| PgError::Internal(format!("the SQL engine failed: {e}")))?
            .map_err(PgError::Rejected)?;
        let trusted = self.loopback && !shared.config.require_password;
        let not_permitted = || {
            PgError::Rejected(SqlError::new(
                sqlstate::INVALID_AUTHORIZATION,
                format!("role \"{user}\" is not permitted to log in"),
            ))
        };
        // (verifier, whether a correct proof may log in).
        let (verifier, login) = match role {
            Some(r) => match r.verifier.as_deref().map(Verifier::parse) {
                Some(Some(v)) => (v, r.login),
                Some(None) => {
                    return Err(PgError::Internal(format!(
                        "the stored password verifier of role \"{user}\" is corrupt"
                    )))
                }
                None if trusted && r.login => {
                    self.put(&Authentication::Ok)?;
                    return Ok(());
                }
                None if trusted => return Err(not_permitted()),
                None => (auth::mock_verifier(user), false),
            },
            None if trusted => {
                return Err(PgError::Rejected(SqlError::new(
                    sqlstate::INVALID_AUTHORIZATION,
                    format!("role \"{user}\" does not exist"),
                )))
            }
            None => (auth::mock_verifier(user), false),
        };
        self.put(&Authentication::SASL(vec![auth::MECHANISM.into()]))?;
        self.flush().await?;
        let first = self.read_password(deadline).await?;
        let (scram, server_first) = auth::Scram::start(&first, &verifier)?;
        self.put(&Authentication::SASLContinue(server_first.into()))?;
        self.flush().await?;
        let last = self.read_password(deadline).await?;
        match scram.finish(&last, &verifier)? {
            Some(_) if !login => Err(not_permitted()),
            Some(server_final) => {
                self.put(&Authentication::SASLFinal(server_final.into()))?;
                self.put(&Authentication::Ok)?;
                Ok(())
            }
            None => Err(auth::failed(user)),
        }
    }

    /// Reads a password-family message during authentication.
    async fn read_password(&mut self, deadline: Instant) -> Result<bytes::Bytes, PgError> {
        match timeout_at(deadline, self.read_message()).await {
            Err(_) => Err(PgError::protocol("authentication timed out")),
            Ok(msg) => match msg? {
                Some(Frontend::Password(body)) => Ok(body),
                Some(_) => Err(PgError::protocol(
                    "expected a SASL response during authentication",
                )),
                None => Err(PgError::Io(std::io::ErrorKind::UnexpectedEof.into())),
            },
        }
    }

    // ----- Message loop -----

    async fn serve(&mut self, stop: &mut watch::Receiver<bool>) -> Result<(), PgError> {
        loop {
            let next = {
                let stopped = async {
                    let _ = stop.wait_for(|stop| *stop).await;
                };
                tokio::select! {
                    biased;
                    msg = self.read_message() => Some(msg),
                    _ = stopped => None,
                }
            };
            let Some(msg) = next.ok_or(PgError::Shutdown)?? else {
                // At shutdown the reading side of a connection served on its own thread is
                // shut, which reads as the client leaving.
                if *stop.borrow() {
                    return Err(PgError::Shutdown);
                }
                return Ok(());
            };
            match msg {
                Frontend::Terminate => return Ok(()),
                Frontend::Sync => self.sync().await?,
                _ if self.skip_until_sync => {}
                Frontend::Flush => self.flush().await?,
                Frontend::Password(_) => {
                    return Err(PgError::protocol("unexpected password message"));
                }
                // Outside COPY FROM STDIN, copy messages are dropped, as the protocol requires.
                Frontend::CopyData(_) | Frontend::CopyDone | Frontend::CopyFail(_) => {}
                Frontend::Query(sql) => self.simple_query(sql).await?,
                Frontend::Invalid { extended, error } => {
                    self.put_error("ERROR", &error)?;
                    if extended {
                        self.skip_until_sync = true;
                    } else {
                        self.ready_for_query(self.status, None).await?;
                    }
                }
                msg => match self.extended(msg).await {
                    Ok(()) => {}
                    Err(PgError::Sql(e)) => {
                        self.put_error("ERROR", &e)?;
                        self.skip_until_sync = true;
                    }
                    Err(fatal) => return Err(fatal),
                },
            }
        }
    }

    /// Sends ParameterStatus for changed settings, then ReadyForQuery, and flushes. Portals
    /// end with their transaction, so they are dropped when the session is idle.
    async fn ready_for_query(
        &mut self,
        status: TxnStatus,
        params: Option<Vec<(String, String)>>,
    ) -> Result<(), PgError> {
        if let Some(params) = params {
            for (name, value) in &params {
                if !self.reported.iter().any(|(n, v)| n == name && v == value) {
                    self.put(&ParameterStatus::new(name.clone(), value.clone()))?;
                }
            }
            self.reported = params;
        }
        if status == TxnStatus::Idle {
            self.portals.clear();
        }
        self.put(&ReadyForQuery::new(txn_indicator(status)))?;
        self.flush().await
    }

    /// Answers Sync. Statements outside a transaction block commit as they run, so Sync only
    /// reports the status; the session is asked only when a setting may have changed.
    async fn sync(&mut self) -> Result<(), PgError> {
        self.skip_until_sync = false;
        let params = if std::mem::take(&mut self.settings_dirty) {
            Some(self.blocking(|s| s.parameter_status()).await?)
        } else {
            None
        };
        self.ready_for_query(self.status, params).await
    }

    async fn simple_query(&mut self, sql: String) -> Result<(), PgError> {
        // A simple Query destroys the unnamed statement and portal.
        self.statements.remove("");
        self.portals.remove("");
        let (mut results, mut status, mut params) = self
            .blocking(move |s| {
                let results = s.execute_simple(&sql);
                let dirty = results
                    .iter()
                    .any(|r| r.as_ref().is_ok_and(|r| may_change_settings(&r.tag)));
                (results, s.txn_status(), dirty.then(|| s.parameter_status()))
            })
            .await?;
        if results.is_empty() {
            self.put(&EmptyQueryResponse::new())?;
        }
        // A COPY FROM STDIN ends the results; once the client's rows are in, the statements
        // after it run.
        loop {
            let mut copy_in = None;
            for result in results {
                let sent = match result {
                    Ok(ExecResult {
                        copy: Some(CopyTransfer::In { columns }),
                        ..
                    }) => {
                        copy_in = Some(columns);
                        Ok(())
                    }
                    Ok(result) => self.send_result(result).await,
                    Err(e) => Err(PgError::Sql(e)),
                };
                match sent {
                    Ok(()) => {}
                    Err(PgError::Sql(e)) => {
                        self.put_error("ERROR", &e)?;
                        break;
                    }
                    Err(fatal) => return Err(fatal),
                }
            }
            let Some(columns) = copy_in else { break };
            match self.copy_in(columns).await? {
                Ok(done) => self.put(&CommandComplete::new(done.tag))?,
                Err(e) => self.put_error("ERROR", &e)?,
            }
            (results, status, params) = self
                .blocking(|s| {
                    let results = s.resume();
                    (results, s.txn_status(), Some(s.parameter_status()))
                })
                .await?;
        }
        self.ready_for_query(status, params).await
    }

    /// Sends a statement's rows (or COPY TO's data) and its CommandComplete.
    async fn send_result(&mut self, result: ExecResult) -> Result<(), PgError> {
        if let Some(CopyTransfer::Out {
            columns,
            data,
            ends,
        }) = &result.copy
        {
            self.copy_out(*columns, data, ends).await?;
        } else if let Some(columns) = &result.columns {
            self.put(&row_description(columns, &[]))?;
            for row in &result.rows {
                self.put_row(row, columns, &[])?;
                self.maybe_flush().await?;
            }
        }
        self.put(&CommandComplete::new(result.tag))
    }

    /// Sends COPY TO STDOUT's rows: CopyOutResponse, one CopyData per row, CopyDone.
    async fn copy_out(
        &mut self,
        columns: usize,
        data: &[u8],
        ends: &[usize],
    ) -> Result<(), PgError> {
        self.put(&CopyOutResponse::new(0, columns as i16, vec![0; columns]))?;
        let mut start = 0;
        for &end in ends {
            let row = &data[start..end];
            self.wbuf.put_u8(b'd');
            self.wbuf.put_i32(4 + row.len() as i32);
            self.wbuf.put_slice(row);
            start = end;
            self.maybe_flush().await?;
        }
        self.put(&CopyDone::new())
    }

    /// Carries out COPY FROM STDIN: CopyInResponse, then CopyData until CopyDone or CopyFail.
    /// Returns the COPY's result, or its error (the COPY is then over and none of its rows
    /// stay). Data is handed to the session in batches, not one hop per message.
    async fn copy_in(&mut self, columns: usize) -> Result<Result<ExecResult, SqlError>, PgError> {
        self.put(&CopyInResponse::new(0, columns as i16, vec![0; columns]))?;
        self.flush().await?;
        let mut batch = BytesMut::new();
        loop {
            let msg = match self.read_message().await? {
                Some(msg) => msg,
                None => return Err(PgError::Io(std::io::ErrorKind::UnexpectedEof.into())),
            };
            match msg {
                Frontend::CopyData(data) => {
                    batch.extend_from_slice(&data);
                    if batch.len() >= COPY_BATCH_BYTES {
                        let data = std::mem::take(&mut batch).freeze();
                        if let Err(e) = self.blocking(move |s| s.copy_data(&data)).await? {
                            return Ok(Err(e));
                        }
                    }
                }
                Frontend::CopyDone => {
                    let data = batch.freeze();
                    return self
                        .blocking(move |s| s.copy_data(&data).and_then(|()| s.copy_done()))
                        .await;
                }
                Frontend::CopyFail(message) => {
                    return Ok(Err(self.blocking(move |s| s.copy_fail(&message)).await?));
                }
                // Flush and Sync are ignored during copy-in.
                Frontend::Flush | Frontend::Sync => {}
                Frontend::Terminate => {
                    return Err(PgError::Io(std::io::ErrorKind::UnexpectedEof.into()))
                }
                other => {
                    let message = format!(
                        "unexpected message during COPY from stdin: {}",
                        frontend_name(&other)
                    );
                    let mut e = self.blocking(move |s| s.copy_fail(&message)).await?;
                    e.code = sqlstate::PROTOCOL_VIOLATION;
                    return Ok(Err(e));
                }
            }
        }
    }

    /// Encodes one DataRow, reusing the row buffer.
    fn put_row(
        &mut self,
        row: &[Value],
        columns: &[Column],
        formats: &[i16],
    ) -> Result<(), PgError> {
        if row.len() != columns.len() {
            return Err(SqlError::internal(format!(
                "a row of {} values for {} columns",
                row.len(),
                columns.len()
            ))
            .into());
        }
        let mut data = std::mem::take(&mut self.row_buf);
        data.clear();
        let mut encoded = Ok(());
        for (i, (v, c)) in row.iter().zip(columns).enumerate() {
            encoded = self
                .encoder
                .put_field(v, &c.data_type, format_for(formats, i), &mut data);
            if encoded.is_err() {
                break;
            }
        }
        let msg = DataRow::new(data, row.len() as i16);
        let put = match encoded {
            Ok(()) => self.put(&msg),
            Err(e) => Err(e.into()),
        };
        self.row_buf = msg.data;
        put
    }

    // ----- Extended protocol -----

    async fn extended(&mut self, msg: Frontend) -> Result<(), PgError> {
        match msg {
            Frontend::Parse {
                name,
                sql,
                param_oids,
            } => self.parse(name, sql, param_oids).await,
            Frontend::Bind {
                portal,
                statement,
                param_formats,
                params,
                result_formats,
            } => self.bind(portal, statement, param_formats, params, result_formats),
            Frontend::Describe { kind, name } => self.describe(kind, &name),
            Frontend::Execute { portal, max_rows } => self.execute(portal, max_rows).await,
            Frontend::Close { kind, name } => {
                if kind == b'S' {
                    self.statements.remove(&name);
                } else {
                    self.portals.remove(&name);
                }
                self.put(&CloseComplete::new())
            }
            _ => Ok(()),
        }
    }

    async fn parse(
        &mut self,
        name: String,
        sql: String,
        param_oids: Vec<u32>,
    ) -> Result<(), PgError> {
        if !name.is_empty() && self.statements.contains_key(&name) {
            return Err(SqlError::new(
                sqlstate::DUPLICATE_PREPARED_STATEMENT,
                format!("prepared statement \"{name}\" already exists"),
            )
            .into());
        }
        let declared = param_oids
            .iter()
            .map(|&oid| match oid {
                0 => Ok(None),
                oid => DataType::from_oid(oid).map(Some).ok_or_else(|| {
                    SqlError::unsupported(format!("parameter type with OID {oid} is not supported"))
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let stmt = if sql
            .trim_matches(|c: char| c.is_whitespace() || c == ';')
            .is_empty()
        {
            Statement {
                handle: None,
                param_types: declared
                    .iter()
                    .map(|t| t.unwrap_or(DataType::Unknown))
                    .collect(),
                columns: None,
            }
        } else {
            let described = self.blocking(move |s| s.prepare(&sql, &declared)).await??;
            Statement {
                handle: Some(described.handle),
                param_types: described.param_types,
                columns: described.columns,
            }
        };
        self.statements.insert(name, Arc::new(stmt));
        self.put(&ParseComplete::new())
    }

    fn bind(
        &mut self,
        portal: String,
        statement: String,
        param_formats: Vec<i16>,
        params: Vec<Option<bytes::Bytes>>,
        result_formats: Vec<i16>,
    ) -> Result<(), PgError> {
        let stmt = self
            .statements
            .get(&statement)
            .cloned()
            .ok_or_else(|| statement_missing(&statement))?;
        if !portal.is_empty() && self.portals.contains_key(&portal) {
            return Err(SqlError::new(
                DUPLICATE_CURSOR,
                format!("portal \"{portal}\" already exists"),
            )
            .into());
        }
        if params.len() != stmt.param_types.len() {
            return Err(protocol_error(format!(
                "bind message supplies {} parameters, but prepared statement \"{statement}\" requires {}",
                params.len(),
                stmt.param_types.len()
            ))
            .into());
        }
        if param_formats.len() > 1 && param_formats.len() != params.len() {
            return Err(protocol_error(format!(
                "bind message has {} parameter formats but {} parameters",
                param_formats.len(),
                params.len()
            ))
            .into());
        }
        let ncols = stmt.columns.as_ref().map_or(0, Vec::len);
        if result_formats.len() > 1 && result_formats.len() != ncols {
            return Err(protocol_error(format!(
                "bind message has {} result formats but query has {ncols} columns",
                result_formats.len()
            ))
            .into());
        }
        for code in param_formats.iter().chain(&result_formats) {
            check_format(*code)?;
        }
        let mut values = Vec::with_capacity(params.len());
        for (i, (param, ty)) in params.iter().zip(&stmt.param_types).enumerate() {
            let value = match param {
                None => Value::Null,
                Some(bytes) => {
                    decode_param(bytes, format_for(&param_formats, i), ty).map_err(|e| {
                        if e.code == sqlstate::INVALID_BINARY_REPRESENTATION {
                            SqlError::new(
                                e.code,
                                format!("incorrect binary data format in bind parameter {}", i + 1),
                            )
                        } else {
                            e
                        }
                    })?
                }
            };
            values.push(value);
        }
        self.portals.insert(
            portal,
            Portal {
                stmt,
                params: values,
                result_formats,
                state: PortalState::Ready,
            },
        );
        self.put(&BindComplete::new())
    }

    fn describe(&mut self, kind: u8, name: &str) -> Result<(), PgError> {
        if kind == b'S' {
            let stmt = self
                .statements
                .get(name)
                .cloned()
                .ok_or_else(|| statement_missing(name))?;
            self.put(&ParameterDescription::new(
                stmt.param_types.iter().map(param_oid).collect(),
            ))?;
            match &stmt.columns {
                Some(columns) => self.put(&row_description(columns, &[])),
                None => self.put(&NoData::new()),
            }
        } else {
            let portal = self.portals.get(name).ok_or_else(|| portal_missing(name))?;
            let description = portal
                .stmt
                .columns
                .as_ref()
                .map(|c| row_description(c, &portal.result_formats));
            match description {
                Some(d) => self.put(&d),
                None => self.put(&NoData::new()),
            }
        }
    }

    async fn execute(&mut self, name: String, max_rows: i32) -> Result<(), PgError> {
        let mut portal = self
            .portals
            .remove(&name)
            .ok_or_else(|| portal_missing(&name))?;
        let result = self.run_portal(&mut portal, &name, max_rows).await;
        if matches!(result, Err(PgError::Sql(_))) {
            portal.state = PortalState::Failed;
        }
        self.portals.insert(name, portal);
        result
    }

    async fn run_portal(
        &mut self,
        portal: &mut Portal<S::Statement>,
        name: &str,
        max_rows: i32,
    ) -> Result<(), PgError> {
        if portal.stmt.handle.is_none() {
            return self.put(&EmptyQueryResponse::new());
        }
        match &portal.state {
            PortalState::Failed => {
                return Err(SqlError::new(
                    sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE,
                    format!("portal \"{name}\" cannot be run"),
                )
                .into())
            }
            PortalState::Done { tag } => {
                // A finished portal returns no more rows and is never run twice.
                let tag = if tag.starts_with("SELECT") {
                    "SELECT 0".to_owned()
                } else {
                    tag.clone()
                };
                return self.put(&CommandComplete::new(tag));
            }
            PortalState::Ready => {
                let stmt = portal.stmt.clone();
                let params = std::mem::take(&mut portal.params);
                let result = self
                    .blocking(move |s| match &stmt.handle {
                        Some(handle) => s.execute_prepared(handle, &params),
                        None => Err(SqlError::internal("executing an empty statement")),
                    })
                    .await??;
                if may_change_settings(&result.tag) {
                    self.settings_dirty = true;
                }
                let tag = match result.copy {
                    Some(CopyTransfer::In { columns }) => Some(self.copy_in(columns).await??.tag),
                    Some(CopyTransfer::Out {
                        columns,
                        ref data,
                        ref ends,
                    }) => {
                        self.copy_out(columns, data, ends).await?;
                        Some(result.tag.clone())
                    }
                    None => None,
                };
                if let Some(tag) = tag {
                    self.put(&CommandComplete::new(tag.clone()))?;
                    portal.state = PortalState::Done { tag };
                    return Ok(());
                }
                match result.columns {
                    Some(columns) => {
                        portal.state = PortalState::Suspended {
                            columns,
                            rows: result.rows.into_iter(),
                            tag: result.tag,
                        };
                    }
                    None => {
                        self.put(&CommandComplete::new(result.tag.clone()))?;
                        portal.state = PortalState::Done { tag: result.tag };
                        return Ok(());
                    }
                }
            }
            PortalState::Suspended { .. } => {}
        }
        let PortalState::Suspended { columns, rows, tag } = &mut portal.state else {
            return Ok(());
        };
        let limit = if max_rows > 0 {
            max_rows as usize
        } else {
            usize::MAX
        };
        let mut sent = 0;
        while sent < limit {
            let Some(row) = rows.next() else { break };
            self.put_row(&row, columns, &portal.result_formats)?;
            sent += 1;
            self.maybe_flush().await?;
        }
        if rows.len() > 0 {
            return self.put(&PortalSuspended::new());
        }
        let tag = if sent < usize::MAX && tag.starts_with("SELECT") && max_rows > 0 {
            format!("SELECT {sent}")
        } else {
            std::mem::take(tag)
        };
        self.put(&CommandComplete::new(tag.clone()))?;
        portal.state = PortalState::Done { tag };
        Ok(())
    }
}
