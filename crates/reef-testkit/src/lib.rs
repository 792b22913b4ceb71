//! Test support for reefdb.
//!
//! This crate sits beside the engine rather than inside it: it drives the real `reef` binary as a
//! child process and talks to it only through the PostgreSQL wire protocol, exactly as a user's
//! client would. It depends on no reef crate, so nothing it does can reach around the server's
//! public surface, and it can point the same tests at a real PostgreSQL to check that the
//! expectations themselves are right.
//!
//! It provides three things:
//!
//! - [`TestServer`]: starts `reef start` on a free loopback port with a temporary data directory,
//!   waits until it accepts connections, and can kill it with SIGKILL, stop it with SIGTERM and
//!   restart it on the same data directory and port. The process is killed when the value drops.
//! - [`slt::PgDb`]: a [`sqllogictest::AsyncDB`] driver over tokio-postgres, used by the golden
//!   `.slt` files under `tests/sql/`.
//! - [`corpus`]: a parser and runner for the SQLite sqllogictest corpus with the original runner's
//!   rules (hash threshold, row and value sorting, `I`/`R`/`T` formatting, `skipif`/`onlyif`), used
//!   by the `slt-corpus` binary for conformance runs and pass-rate baselines.
//!
//! The design and the conventions the tests follow are described in
//! [docs/architecture/reef-testkit.md](../../../docs/architecture/reef-testkit.md).

pub mod corpus;
mod error;
mod server;
pub mod slt;
pub mod store_cluster;

pub use error::Error;
pub use server::{find_reef_bin, Builder, TestServer, READY_MARKER};

/// Connects to `url` with tokio-postgres without TLS and drives the connection on a spawned tokio
/// task, returning the client. Must be called inside a tokio runtime.
pub async fn connect(url: &str) -> Result<tokio_postgres::Client, Error> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e: tokio_postgres::Error| Error::Connect(format!("{url}: {e}")))?;
    connect_config(&config).await
}

/// Formats an error with its chain of sources, as "outer: inner: ...".
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}

/// Connects with an explicit tokio-postgres configuration; see [`connect`].
pub async fn connect_config(
    config: &tokio_postgres::Config,
) -> Result<tokio_postgres::Client, Error> {
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| Error::Connect(error_chain(&e)))?;
    tokio::spawn(async move {
        // The connection ends with an error when the server is killed under it, which the
        // crash tests do on purpose; the client reports that on its next call.
        let _ = connection.await;
    });
    Ok(client)
}
