use std::path::PathBuf;

/// Errors of the test kit. Each variant names the step that failed so a test failure reads as a
/// sentence.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `reef` binary could not be found.
    #[error(
        "cannot find the reef binary: set REEF_BIN, or build it with `cargo build -p reef-node` \
         (looked in: {looked_in})"
    )]
    BinaryNotFound {
        /// The places searched, comma separated.
        looked_in: String,
    },
    /// An I/O operation on a file, directory or process failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The server exited before it became ready.
    #[error("reef exited with {status} before becoming ready; log {log}:\n{tail}")]
    ExitedEarly {
        /// The exit status as text.
        status: String,
        /// The server's log file.
        log: PathBuf,
        /// The last lines of the log.
        tail: String,
    },
    /// The server did not become ready in time.
    #[error("reef did not become ready within {secs}s; log {log}:\n{tail}")]
    StartTimeout {
        /// The timeout in seconds.
        secs: u64,
        /// The server's log file.
        log: PathBuf,
        /// The last lines of the log.
        tail: String,
    },
    /// The server did not exit in time after SIGTERM.
    #[error("reef did not exit within {secs}s of SIGTERM; it was killed. Its threads then:\n{stacks}\nThe end of its log:\n{tail}")]
    StopTimeout {
        /// The timeout in seconds.
        secs: u64,
        /// The stacks of the process's threads (from gdb, when installed) before it was killed.
        stacks: String,
        /// The last lines of the server log.
        tail: String,
    },
    /// The operation needs a running server.
    #[error("the server is not running")]
    NotRunning,
    /// Connecting to the server failed.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// A storage cluster did not do what was asked in time.
    #[error("storage cluster: {0}")]
    Cluster(String),
    /// A file could not be parsed.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}
