//! The PostgreSQL wire-protocol front end of reefdb.
//!
//! `reef-pg` sits between the SQL layer and the node binary
//! (`reef-common -> reef-storage -> reef-txn -> reef-sql -> reef-pg -> reef-node`). It turns
//! TCP connections speaking PostgreSQL's frontend/backend protocol 3.0 into calls on a
//! [`reef_sql::Session`], so that psql, libpq, JDBC, tokio-postgres and other drivers can use
//! reefdb unchanged. It knows nothing of storage, transactions or Raft: everything below the
//! session API is reef-sql's business, and this crate must never reach past it.
//!
//! [`serve`] accepts connections until its shutdown future completes. Each connection is one
//! tokio task that runs the startup handshake (TLS when configured, SCRAM-SHA-256 or loopback trust,
//! see `auth`), then the
//! simple and extended query protocols. Session calls are synchronous and may block on storage,
//! so they run on tokio's blocking pool. Frontend messages are framed and decoded here with
//! every read bounds-checked and a configurable size limit ([`PgConfig::max_message_bytes`]);
//! backend messages are encoded with the `pgwire` crate's message types. A malformed message,
//! an oversized one or a vanished client ends only its own connection, and dropping the
//! connection's session rolls back its transaction.
//!
//! Values travel in PostgreSQL's text or binary formats (`codec`), chosen per parameter and per
//! result column by the client.
//!
//! See `docs/architecture/reef-pg.md` for the design notes.

#![warn(missing_docs)]

mod auth;
mod backend;
mod codec;
mod conn;
mod error;
mod protocol;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::atomic::{AtomicI32, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

pub use auth::TlsConfig;
pub use error::PgError;

use backend::SqlDatabase;
use conn::Shared;

/// Settings of the PostgreSQL front end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgConfig {
    /// The largest frontend message body accepted, in bytes; a longer message ends the
    /// connection with SQLSTATE 54000. PostgreSQL allows up to 1 GiB; the default is 64 MiB.
    pub max_message_bytes: usize,
    /// How long a client may take to complete the startup handshake before it is dropped.
    pub startup_timeout: Duration,
    /// The most sessions served at once; further clients are refused with SQLSTATE 53300.
    pub max_connections: usize,
    /// After shutdown is requested, how long open connections may take to finish their current
    /// message before they are cut off.
    pub shutdown_grace: Duration,
    /// Whether every role must give a password, even from loopback (otherwise a role without
    /// a password is trusted from loopback only).
    pub require_password: bool,
    /// TLS for clients that ask for it (`sslmode=require`); None refuses TLS.
    pub tls: Option<TlsConfig>,
}

impl Default for PgConfig {
    fn default() -> Self {
        PgConfig {
            max_message_bytes: 64 << 20,
            startup_timeout: Duration::from_secs(60),
            max_connections: 1000,
            shutdown_grace: Duration::from_secs(10),
            require_password: false,
            tls: None,
        }
    }
}

/// Serves `db` over the PostgreSQL wire protocol on `listener` until `shutdown` completes.
///
/// Accept errors (for example, running out of file descriptors) are logged and retried; errors
/// of a single connection end only that connection. When `shutdown` completes, the server stops
/// accepting, each connection finishes the message it is working on and is then terminated
/// with SQLSTATE 57P01, and connections still running after [`PgConfig::shutdown_grace`] are
/// aborted. Returns once every connection has ended.
pub async fn serve(
    db: reef_sql::Database,
    listener: TcpListener,
    config: PgConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), PgError> {
    serve_with(db, listener, config, shutdown).await
}

/// [`serve`] for any database implementation.
pub(crate) async fn serve_with<D: SqlDatabase>(
    db: D,
    listener: TcpListener,
    config: PgConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), PgError> {
    let grace = config.shutdown_grace;
    let shared = Arc::new(Shared {
        db,
        config,
        next_pid: AtomicI32::new(1),
        active: Arc::new(AtomicUsize::new(0)),
        backends: Default::default(),
        threads: Default::default(),
        handles: Default::default(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "PostgreSQL front end listening");
    }
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(conn::run(shared.clone(), stream, stop_rx.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = done {
                    tracing::error!(error = %e, "connection task failed");
                }
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    shared.shut_threads(std::net::Shutdown::Read);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drain).await.is_err() {
        tracing::warn!(
            remaining = connections.len(),
            "aborting connections after the shutdown grace period"
        );
        connections.abort_all();
        // A connection on a thread of its own ends at its next read or write.
        shared.shut_threads(std::net::Shutdown::Both);
        while connections.join_next().await.is_some() {}
    }
    Ok(())
}
